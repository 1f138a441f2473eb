"""Every catalog rule, proven both ways.

``SCENARIOS`` maps each rule id of :data:`orderfsm.rules.CATALOG` to a :class:`Scenario`:

* ``violate(engine)`` drives a fresh :class:`Engine` into exactly that rule's rejection and
  returns a :class:`Violation` (the SquareError plus the template values the catalog's
  :class:`RuleError` is rendered with for that case). ``None`` for behaviour rules that reject
  nothing.
* ``satisfy(engine)`` performs the nearest allowed operation and asserts the specific behaviour.
* ``variants`` maps every non-default value of the rule's :class:`Variant` to a check run on
  ``Engine(variants={name: value})``.

Rules the HTTP simulator enforces (the engine never sees those requests) are listed in
:data:`ENFORCED_BY_SIMULATOR`; the simulator's own tests cover them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import pytest

from orderfsm.engine import DECLINE_NONCES, Engine
from orderfsm.errors import SquareError
from orderfsm.rules import CATALOG, SOURCES, VARIANTS, Confidence

USD = "USD"

# Enforced by the HTTP simulator (auth headers, idempotency replay, cursors, batch sizes): the
# engine has no request for these to reject. The simulator's tests cover them.
ENFORCED_BY_SIMULATOR = {
    "api.unauthorized",
    "api.idempotency_key_reused",
    "api.invalid_cursor",
    "api.too_many_ids",
    # Webhooks: subscriptions, delivery and signatures live in simulator/outbox.py and
    # simulator/routes/webhooks.py; tests/simulator/test_webhooks*.py cover them.
    "webhook.envelope",
    "webhook.signature",
    "webhook.delivery_retries",
    "webhook.event_id_idempotency",
    "webhook.event_type_unknown",
    "webhook.subscription_field_required",
    "webhook.notification_url_invalid",
    "webhook.subscription_not_found",
    "webhook.test_event_type",
}


# ============================================================================ helpers
def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": USD}


def line(amount: int = 1000, qty: str = "1", name: str = "Item") -> dict[str, Any]:
    return {"name": name, "quantity": qty, "base_price_money": usd(amount)}


PICKUP = {"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "Ann"}}}


def new_order(eng: Engine, *, amount: int = 1000, pickup: bool = True, state: str | None = None,
              lines: list | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"location_id": eng.main_location_id,
                            "line_items": lines if lines is not None else [line(amount)]}
    if pickup:
        body["fulfillments"] = [dict(PICKUP, pickup_details=dict(PICKUP["pickup_details"]))]
    if state:
        body["state"] = state
    body.update(extra)
    return eng.create_order(body)


_keys = iter(range(10**9))


def pay(eng: Engine, order_id: str | None, amount: int, *, autocomplete: bool = True,
        source: str = "cnon:card-nonce-ok", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"source_id": source, "idempotency_key": f"k{next(_keys)}",
                            "amount_money": usd(amount), "autocomplete": autocomplete}
    if order_id is not None:
        body["order_id"] = order_id
    body.update(extra)
    return eng.create_payment(body)


def refund(eng: Engine, payment_id: str, amount: int, **extra: Any) -> dict[str, Any]:
    body = {"payment_id": payment_id, "amount_money": usd(amount),
            "idempotency_key": f"r{next(_keys)}"}
    body.update(extra)
    return eng.refund_payment(body)


def update(eng: Engine, order_id: str, patch: dict[str, Any] | None = None,
           clear: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    body = dict(patch or {})
    body.update(fields)
    body.setdefault("version", eng.get_order(order_id)["version"])
    return eng.update_order(order_id, body, clear)


def fulfillment_to(eng: Engine, order_id: str, fstate: str, /, **fields: Any) -> dict[str, Any]:
    """Move the order's (only) fulfillment to ``fstate``; ``fields`` go into the same update."""
    uid = eng.get_order(order_id)["fulfillments"][0]["uid"]
    return update(eng, order_id, fulfillments=[{"uid": uid, "state": fstate}], **fields)


def paid_order(eng: Engine, *, amount: int = 1000, pickup: bool = True) -> tuple[dict, dict]:
    o = new_order(eng, amount=amount, pickup=pickup)
    p = pay(eng, o["id"], amount)
    return eng.get_order(o["id"]), p


def catch(fn: Callable[[], Any]) -> SquareError:
    with pytest.raises(SquareError) as info:
        fn()
    return info.value


class Violation(NamedTuple):
    error: SquareError
    ctx: dict[str, Any]


def V(fn: Callable[[], Any], **ctx: Any) -> Violation:
    """Run ``fn``, which must be rejected; ``ctx`` renders the rule's expected error."""
    return Violation(catch(fn), ctx)


@dataclass(frozen=True)
class Scenario:
    violate: Callable[[Engine], Violation] | None
    satisfy: Callable[[Engine], None]
    variants: dict[str, Callable[[Engine], None]] = field(default_factory=dict)
    # Variant values the violation needs (a rule whose default never rejects).
    violate_variants: dict[str, str] | None = None


SCENARIOS: dict[str, Scenario] = {}


def scenario(rule_id: str, *, variants: dict[str, Callable[[Engine], None]] | None = None,
             violate_variants: dict[str, str] | None = None):
    """Register ``violate``/``satisfy`` defined in a class body named after the rule."""

    def deco(cls: type) -> type:
        SCENARIOS[rule_id] = Scenario(
            violate=getattr(cls, "violate", None),
            satisfy=cls.satisfy,
            variants={k: v for k, v in (getattr(cls, "variants", None) or variants or {}).items()},
            violate_variants=violate_variants,
        )
        return cls

    return deco


# ============================================================================ orders
def _refunded_order_with_pickup(eng: Engine) -> dict[str, Any]:
    """The seed story: a paid order with a pickup, fully refunded (refund settled)."""
    o, p = paid_order(eng)
    r = refund(eng, p["id"], 1000)
    eng.advance(10)
    assert eng.get_refund(r["id"])["status"] == "COMPLETED"
    o = eng.get_order(o["id"])
    assert o["state"] == "OPEN"
    return o


def _cancel_after_payment_never(eng: Engine) -> None:
    o = _refunded_order_with_pickup(eng)
    # Canceling the fulfillment in the same request does not help ...
    err = catch(lambda: fulfillment_to(eng, o["id"], "CANCELED", state="CANCELED"))
    assert err.rule_id == "order.cancel_after_payment"
    # ... nor does canceling it first.
    fulfillment_to(eng, o["id"], "CANCELED")
    err = catch(lambda: update(eng, o["id"], state="CANCELED"))
    assert err.rule_id == "order.cancel_after_payment"
    assert eng.get_order(o["id"])["state"] == "OPEN"
    # Unpaid orders can still be canceled under `never`.
    u = new_order(eng, pickup=False)
    assert update(eng, u["id"], state="CANCELED")["state"] == "CANCELED"


@scenario("order.cancel_after_payment",
          variants={"never": _cancel_after_payment_never})
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = _refunded_order_with_pickup(eng)
        return V(lambda: update(eng, o["id"], state="CANCELED"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = _refunded_order_with_pickup(eng)
        o = fulfillment_to(eng, o["id"], "CANCELED")
        assert o["state"] == "OPEN" and o["fulfillments"][0]["state"] == "CANCELED"
        done = update(eng, o["id"], state="CANCELED")
        assert done["state"] == "CANCELED"
        assert done["closed_at"]
        # Canceling the fulfillment in the cancel request itself works as well.
        o = _refunded_order_with_pickup(eng)
        done = fulfillment_to(eng, o["id"], "CANCELED", state="CANCELED")
        assert (done["state"], done["fulfillments"][0]["state"]) == ("CANCELED", "CANCELED")
        # A FAILED fulfillment does not lift the ban: every one must be CANCELED.
        o = _refunded_order_with_pickup(eng)
        fulfillment_to(eng, o["id"], "FAILED")
        assert catch(lambda: update(eng, o["id"], state="CANCELED")).rule_id == \
            "order.cancel_after_payment"
        # A paid order without fulfillments has nothing to cancel first: it stays uncancelable.
        eng2 = Engine(variants={"autocomplete_order_on_payment": "leave_open"})
        o2, _p = paid_order(eng2, pickup=False)
        assert catch(lambda: update(eng2, o2["id"], state="CANCELED")).rule_id == \
            "order.cancel_after_payment"


@scenario("order.fulfillment_added_after_payment")
class _:
    violate = None  # the cancel it blocks fails with order.cancel_after_payment

    @staticmethod
    def satisfy(eng: Engine) -> None:
        # A fulfillment-less order with part of its total captured stays OPEN and uncancelable.
        o = new_order(eng, pickup=False)
        eng.complete_payment(pay(eng, o["id"], 400, autocomplete=False)["id"])
        assert eng.get_order(o["id"])["state"] == "OPEN"
        # Adding a pickup to it and canceling the pickup is allowed ...
        added = update(eng, o["id"], fulfillments=[dict(PICKUP)])
        assert added["fulfillments"][0]["state"] == "PROPOSED"
        assert fulfillment_to(eng, o["id"], "CANCELED")["fulfillments"][0]["state"] == "CANCELED"
        # ... but does not make the order cancelable, in a call of its own or together.
        err = catch(lambda: update(eng, o["id"], state="CANCELED"))
        assert err.rule_id == "order.cancel_after_payment"
        o2 = new_order(eng, pickup=False)
        eng.complete_payment(pay(eng, o2["id"], 400, autocomplete=False)["id"])
        err = catch(lambda: update(eng, o2["id"], state="CANCELED",
                                   fulfillments=[dict(PICKUP, state="CANCELED")]))
        assert err.rule_id == "order.cancel_after_payment"
        assert eng.get_order(o2["id"])["state"] == "OPEN"
        # A pickup added while the only payment was still APPROVED counts once it is captured.
        o3 = new_order(eng, pickup=False)
        p3 = pay(eng, o3["id"], 1000, autocomplete=False)
        update(eng, o3["id"], fulfillments=[dict(PICKUP)])
        eng.complete_payment(p3["id"])
        refund(eng, p3["id"], 1000)
        fulfillment_to(eng, o3["id"], "CANCELED")
        assert update(eng, o3["id"], state="CANCELED")["state"] == "CANCELED"


def _cancel_open_fulfillments_cascade(eng: Engine) -> None:
    o = new_order(eng)
    done = update(eng, o["id"], state="CANCELED")
    assert done["state"] == "CANCELED"
    assert done["fulfillments"][0]["state"] == "CANCELED"
    assert done["fulfillments"][0]["pickup_details"]["canceled_at"]
    # Terminal fulfillments stay as they were.
    o2 = new_order(eng)
    fulfillment_to(eng, o2["id"], "FAILED")
    assert update(eng, o2["id"], state="CANCELED")["fulfillments"][0]["state"] == "FAILED"


@scenario("order.cancel_open_fulfillments",
          variants={"cascade": _cancel_open_fulfillments_cascade})
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        return V(lambda: update(eng, o["id"], state="CANCELED"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        uid = o["fulfillments"][0]["uid"]
        done = update(eng, o["id"], state="CANCELED",
                      fulfillments=[{"uid": uid, "state": "CANCELED"}])
        assert done["state"] == "CANCELED"
        assert done["fulfillments"][0]["state"] == "CANCELED"
        assert done["net_amount_due_money"] == usd(1000)  # canceled unpaid keeps the amount due
        o2 = new_order(eng)
        fulfillment_to(eng, o2["id"], "FAILED")
        assert update(eng, o2["id"], state="CANCELED")["state"] == "CANCELED"


@scenario("order.terminal_frozen")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng, pickup=False)
        update(eng, o["id"], state="CANCELED")
        return V(lambda: update(eng, o["id"], metadata={"a": "b"}), state="CANCELED")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng, pickup=False)
        assert update(eng, o["id"], metadata={"a": "b"})["metadata"] == {"a": "b"}
        d = new_order(eng, pickup=False, state="DRAFT")
        assert update(eng, d["id"], metadata={"a": "c"})["metadata"] == {"a": "c"}
        # A COMPLETED order is frozen too.
        c, _p = paid_order(eng, pickup=False)
        assert c["state"] == "COMPLETED"
        err = catch(lambda: update(eng, c["id"], metadata={"a": "b"}))
        assert err.rule_id == "order.terminal_frozen"
        assert err.detail == "Orders in state COMPLETED cannot be updated."


@scenario("order.version_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        eng.update_order(o["id"], {"version": 1, "reference_id": "a"})
        return V(lambda: eng.update_order(o["id"], {"version": 1, "reference_id": "b"}),
                 given=1, current=2, order_id=o["id"])

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        o = eng.update_order(o["id"], {"version": 1, "reference_id": "a"})
        o = eng.update_order(o["id"], {"version": 2, "reference_id": "b"})
        assert (o["version"], o["reference_id"]) == (3, "b")


@scenario("order.version_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        return V(lambda: eng.update_order(o["id"], {"reference_id": "a"}))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        assert eng.update_order(o["id"], {"version": 1, "reference_id": "a"})["version"] == 2


@scenario("order.version_increments")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        assert o["version"] == 1
        assert update(eng, o["id"], reference_id="x")["version"] == 2
        pay(eng, o["id"], 1000)  # a payment applied
        assert eng.get_order(o["id"])["version"] == 3
        assert fulfillment_to(eng, o["id"], "COMPLETED")["version"] == 4
        # PayOrder: created (1), two APPROVED payments (2, 3), PayOrder (4).
        o = new_order(eng, pickup=False)
        a = pay(eng, o["id"], 600, autocomplete=False)
        b = pay(eng, o["id"], 400, autocomplete=False)
        assert eng.get_order(o["id"])["version"] == 3
        assert eng.pay_order(o["id"], [a["id"], b["id"]])["version"] == 4
        # A rejected update leaves the version alone.
        o = new_order(eng)
        catch(lambda: eng.update_order(o["id"], {"version": 7}))
        assert eng.get_order(o["id"])["version"] == 1


@scenario("order.line_items_locked")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o, _p = paid_order(eng)
        return V(lambda: update(eng, o["id"], line_items=[line(5)]))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        # Before a payment is processed, line items change freely ...
        o = new_order(eng)
        o = update(eng, o["id"], line_items=[line(500, name="Extra")])
        assert o["total_money"] == usd(1500)
        # ... including while only an APPROVED (uncaptured) payment exists.
        a = pay(eng, o["id"], 1000, autocomplete=False)
        assert a["status"] == "APPROVED"
        uid = o["line_items"][1]["uid"]
        o = update(eng, o["id"], clear=[f"line_items[{uid}]"])
        assert o["total_money"] == usd(1000)
        # After capture, other fields still change.
        eng.complete_payment(a["id"])
        o = update(eng, o["id"], metadata={"k": "v"})
        assert o["metadata"] == {"k": "v"}
        assert fulfillment_to(eng, o["id"], "RESERVED")["fulfillments"][0]["state"] == "RESERVED"
        # Clearing line items of a paid order is a modification too.
        err = catch(lambda: update(eng, o["id"], clear=[f"line_items[{o['line_items'][0]['uid']}]"]))
        assert err.rule_id == "order.line_items_locked"


@scenario("order.draft_not_payable")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng, state="DRAFT")
        return V(lambda: pay(eng, o["id"], 1000))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng, state="DRAFT")
        assert o["state"] == "DRAFT"
        assert update(eng, o["id"], state="OPEN")["state"] == "OPEN"
        assert pay(eng, o["id"], 1000)["status"] == "COMPLETED"
        # PayOrder of a DRAFT is refused by the same rule.
        d = new_order(eng, state="DRAFT", pickup=False, lines=[])
        assert catch(lambda: eng.pay_order(d["id"], [])).rule_id == "order.draft_not_payable"


@scenario("order.draft_not_fulfillable")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng, state="DRAFT")
        return V(lambda: fulfillment_to(eng, o["id"], "RESERVED"), index=0)

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng, state="DRAFT")
        # Moving it together with opening the order is judged against OPEN.
        o = fulfillment_to(eng, o["id"], "RESERVED", state="OPEN")
        assert (o["state"], o["fulfillments"][0]["state"]) == ("OPEN", "RESERVED")
        # A DRAFT's fulfillment may be CANCELED.
        d = new_order(eng, state="DRAFT")
        assert fulfillment_to(eng, d["id"], "CANCELED")["fulfillments"][0]["state"] == "CANCELED"


@scenario("order.draft_opens")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        return V(lambda: update(eng, o["id"], state="DRAFT"), old="OPEN", new="DRAFT")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        d = new_order(eng, state="DRAFT", pickup=False)
        assert update(eng, d["id"], state="OPEN")["state"] == "OPEN"
        d = new_order(eng, state="DRAFT", pickup=False)
        err = catch(lambda: update(eng, d["id"], state="COMPLETED"))
        assert err.rule_id == "order.draft_opens"
        assert err.detail == "An order cannot move from DRAFT to COMPLETED."
        # DRAFT -> CANCELED is allowed.
        assert update(eng, d["id"], state="CANCELED")["state"] == "CANCELED"


@scenario("order.closed_not_payable")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng, pickup=False)
        update(eng, o["id"], state="CANCELED")
        return V(lambda: pay(eng, o["id"], 1000), state="CANCELED")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng, pickup=False)
        assert pay(eng, o["id"], 1000)["status"] == "COMPLETED"
        o = eng.get_order(o["id"])
        assert o["state"] == "COMPLETED"
        err = catch(lambda: pay(eng, o["id"], 1))
        assert err.rule_id == "order.closed_not_payable"
        assert err.detail == "Orders in state COMPLETED cannot be paid."


@scenario("order.complete_requires_terminal_fulfillments")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o, _p = paid_order(eng)
        return V(lambda: update(eng, o["id"], state="COMPLETED"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o, _p = paid_order(eng)
        done = fulfillment_to(eng, o["id"], "COMPLETED", state="COMPLETED")
        assert (done["state"], done["fulfillments"][0]["state"]) == ("COMPLETED", "COMPLETED")
        assert done["fulfillments"][0]["pickup_details"]["picked_up_at"]
        o, _p = paid_order(eng)
        fulfillment_to(eng, o["id"], "CANCELED")
        assert update(eng, o["id"], state="COMPLETED")["state"] == "COMPLETED"


@scenario("order.complete_requires_payment")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng, pickup=False)
        return V(lambda: update(eng, o["id"], state="COMPLETED"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        # A zero-total order is fully paid.
        z = new_order(eng, pickup=False, lines=[line(0)])
        assert update(eng, z["id"], state="COMPLETED")["state"] == "COMPLETED"
        # A paid order with a pickup completes once the pickup is done.
        o, _p = paid_order(eng)
        assert fulfillment_to(eng, o["id"], "COMPLETED", state="COMPLETED")["state"] == "COMPLETED"
        # Partially paid is not enough.
        o = new_order(eng, pickup=False)
        pay(eng, o["id"], 400, autocomplete=False)
        err = catch(lambda: update(eng, o["id"], state="COMPLETED"))
        assert err.rule_id == "order.complete_requires_payment"


@scenario("order.one_fulfillment")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.create_order({"location_id": "main", "line_items": [line()],
                                           "fulfillments": [PICKUP, PICKUP]}))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        assert len(o["fulfillments"]) == 1
        # Adding a second one by UpdateOrder is refused too; patching the first by uid is fine.
        err = catch(lambda: update(eng, o["id"], fulfillments=[PICKUP]))
        assert err.rule_id == "order.one_fulfillment"
        uid = o["fulfillments"][0]["uid"]
        o = update(eng, o["id"], fulfillments=[{"uid": uid, "pickup_details": {"note": "x"}}])
        assert len(o["fulfillments"]) == 1 and o["fulfillments"][0]["pickup_details"]["note"] == "x"
        n = new_order(eng, pickup=False)
        assert len(update(eng, n["id"], fulfillments=[PICKUP])["fulfillments"]) == 1


@scenario("order.location_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.create_order({"line_items": [line()]}))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = eng.create_order({"location_id": "main", "line_items": [line()]})
        assert o["location_id"] == eng.main_location_id
        assert eng.create_order({"location_id": eng.main_location_id})["total_money"] == usd(0)


@scenario("order.sparse_update")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng, lines=[dict(line(100), note="n1"), dict(line(200), note="n2")],
                      metadata={"a": "1", "b": "2"}, reference_id="ref")
        u1, u2 = (li["uid"] for li in o["line_items"])
        o = update(eng, o["id"], line_items=[{"uid": u1, "note": "changed"},
                                             dict(line(50), uid="new-uid")],
                   metadata={"c": "3"}, reference_id=None)
        by_uid = {li["uid"]: li for li in o["line_items"]}
        assert [li["uid"] for li in o["line_items"]] == [u1, u2, "new-uid"]
        assert by_uid[u1]["note"] == "changed" and by_uid[u1]["base_price_money"] == usd(100)
        assert by_uid[u2]["note"] == "n2"
        assert o["metadata"] == {"a": "1", "b": "2", "c": "3"}
        assert "reference_id" not in o
        o = update(eng, o["id"], clear=[f"line_items[{u2}]", f"line_items[{u1}].note", "metadata.a"])
        assert [li["uid"] for li in o["line_items"]] == [u1, "new-uid"]
        assert "note" not in o["line_items"][0]
        assert o["metadata"] == {"b": "2", "c": "3"}
        assert o["total_money"] == usd(150)


@scenario("order.not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.get_order("nope"), id="nope")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        assert eng.get_order(o["id"])["id"] == o["id"]
        err = catch(lambda: eng.update_order("nope", {"version": 1}))
        assert err.rule_id == "order.not_found" and err.field == "order_id"


@scenario("order.clone_is_draft")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        src = new_order(eng, metadata={"a": "b"},
                        taxes=[{"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}])
        pay(eng, src["id"], 1100)
        src = eng.get_order(src["id"])
        c = eng.clone_order(src["id"])
        assert c["id"] != src["id"]
        assert (c["state"], c["version"]) == ("DRAFT", 1)
        assert [li["name"] for li in c["line_items"]] == [li["name"] for li in src["line_items"]]
        assert c["taxes"][0]["uid"] == "t" and c["total_money"] == usd(1100)
        for absent in ("fulfillments", "metadata", "tenders", "closed_at"):
            assert absent not in c
        assert c["net_amount_due_money"] == usd(1100)
        assert eng.get_order(src["id"]) == src  # the source is untouched


# ============================================================================ PayOrder
def _two_approved(eng: Engine, *, pickup: bool = False) -> tuple[dict, dict, dict]:
    o = new_order(eng, pickup=pickup)
    a = pay(eng, o["id"], 600, autocomplete=False)
    b = pay(eng, o["id"], 400, autocomplete=False)
    return eng.get_order(o["id"]), a, b


@scenario("pay_order.amount_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o, a, _b = _two_approved(eng)
        return V(lambda: eng.pay_order(o["id"], [a["id"]]), paid=600, total=1000)

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o, a, b = _two_approved(eng)
        done = eng.pay_order(o["id"], [a["id"], b["id"]])
        assert done["state"] == "COMPLETED" and done["net_amount_due_money"] == usd(0)
        z = new_order(eng, pickup=False, lines=[])
        done = eng.pay_order(z["id"], [])
        assert done["state"] == "COMPLETED" and done["total_money"] == usd(0)


@scenario("pay_order.payment_not_approved")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o, p = paid_order(eng)  # COMPLETED payment, order stays OPEN (it has a pickup)
        return V(lambda: eng.pay_order(o["id"], [p["id"]]), payment_id=p["id"], status="COMPLETED")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        a = pay(eng, o["id"], 1000, autocomplete=False)
        done = eng.pay_order(o["id"], [a["id"]])
        assert eng.get_payment(a["id"])["status"] == "COMPLETED"
        assert done["state"] == "OPEN" and done["net_amount_due_money"] == usd(0)


@scenario("pay_order.payment_wrong_order")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o1 = new_order(eng)
        o2 = new_order(eng)
        p = pay(eng, o2["id"], 1000, autocomplete=False)
        return V(lambda: eng.pay_order(o1["id"], [p["id"]]), payment_id=p["id"], order_id=o1["id"])

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o1 = new_order(eng)
        o2 = new_order(eng)
        p = pay(eng, o2["id"], 1000, autocomplete=False)
        assert eng.pay_order(o2["id"], [p["id"]])["net_amount_due_money"] == usd(0)
        assert eng.get_order(o1["id"])["net_amount_due_money"] == usd(1000)


@scenario("pay_order.version_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o, a, b = _two_approved(eng)
        return V(lambda: eng.pay_order(o["id"], [a["id"], b["id"]], order_version=1),
                 given=1, current=3, order_id=o["id"])

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o, a, b = _two_approved(eng)
        done = eng.pay_order(o["id"], [a["id"], b["id"]], order_version=3)
        assert done["version"] == 4


@scenario("pay_order.settles")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        # With a pickup: captured, order stays OPEN and paid.
        o, a, b = _two_approved(eng, pickup=True)
        done = eng.pay_order(o["id"], [a["id"], b["id"]])
        assert done["state"] == "OPEN" and "closed_at" not in done
        assert done["net_amount_due_money"] == usd(0)
        assert {t["payment_id"] for t in done["tenders"]} == {a["id"], b["id"]}
        # Without: COMPLETED; unlisted APPROVED payments are canceled.
        o, a, b = _two_approved(eng)
        uid = o["line_items"][0]["uid"]
        update(eng, o["id"], line_items=[{"uid": uid, "base_price_money": usd(600)}])
        done = eng.pay_order(o["id"], [a["id"]])
        assert done["state"] == "COMPLETED" and done["closed_at"]
        assert eng.get_payment(a["id"])["status"] == "COMPLETED"
        assert eng.get_payment(b["id"])["status"] == "CANCELED"


# ============================================================================ payments
def _autocomplete_leave_open(eng: Engine) -> None:
    o, p = paid_order(eng, pickup=False)
    assert p["status"] == "COMPLETED"
    assert o["state"] == "OPEN" and o["net_amount_due_money"] == usd(0)
    assert update(eng, o["id"], state="COMPLETED")["state"] == "COMPLETED"
    # Payments made without an order still complete their implicit order.
    p = pay(eng, None, 300)
    assert eng.get_order(p["order_id"])["state"] == "COMPLETED"


@scenario("payment.autocomplete_order", variants={"leave_open": _autocomplete_leave_open})
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o, _p = paid_order(eng, pickup=False)
        assert o["state"] == "COMPLETED" and o["closed_at"]
        # A partial capture does not complete it.
        o = new_order(eng, pickup=False)
        a = pay(eng, o["id"], 600, autocomplete=False)
        pay(eng, o["id"], 400, autocomplete=False)
        eng.complete_payment(a["id"])
        assert eng.get_order(o["id"])["state"] == "OPEN"


@scenario("payment.order_total_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        return V(lambda: pay(eng, o["id"], 999))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        a = pay(eng, o["id"], 600, autocomplete=False)  # delayed capture may cover part
        assert a["status"] == "APPROVED"
        err = catch(lambda: pay(eng, o["id"], 401, autocomplete=False))  # over what is left
        assert err.rule_id == "payment.order_total_mismatch"
        assert pay(eng, o["id"], 400, autocomplete=False)["status"] == "APPROVED"
        o2 = new_order(eng)
        assert pay(eng, o2["id"], 1000)["status"] == "COMPLETED"


def _approved(eng: Engine, **kw: Any) -> dict[str, Any]:
    o = new_order(eng)
    return pay(eng, o["id"], 1000, autocomplete=False, **kw)


@scenario("payment.already_captured")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        p = _approved(eng)
        eng.complete_payment(p["id"])
        return V(lambda: eng.complete_payment(p["id"]))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = _approved(eng)
        done = eng.complete_payment(p["id"])
        assert done["status"] == "COMPLETED" and done["card_details"]["status"] == "CAPTURED"
        for fn in (eng.cancel_payment, lambda pid: eng.update_payment(pid, {"amount_money": usd(1)})):
            assert catch(lambda: fn(p["id"])).rule_id == "payment.already_captured"


@scenario("payment.already_canceled")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        p = _approved(eng)
        eng.cancel_payment(p["id"])
        return V(lambda: eng.complete_payment(p["id"]))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = _approved(eng)
        done = eng.cancel_payment(p["id"])
        assert done["status"] == "CANCELED" and done["card_details"]["status"] == "VOIDED"
        assert catch(lambda: eng.cancel_payment(p["id"])).rule_id == "payment.already_canceled"


@scenario("payment.expired")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        p = _approved(eng, delay_duration="PT1M")
        eng.advance(61)
        return V(lambda: eng.complete_payment(p["id"]))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = _approved(eng, delay_duration="PT1M")
        eng.advance(59)
        assert eng.complete_payment(p["id"])["status"] == "COMPLETED"
        # An explicit cancel is "canceled", not "expired".
        q = _approved(eng, delay_duration="PT1M")
        eng.cancel_payment(q["id"])
        eng.advance(120)
        assert catch(lambda: eng.complete_payment(q["id"])).rule_id == "payment.already_canceled"


def _declined(eng: Engine, nonce: str = "cnon:card-nonce-declined") -> dict[str, Any]:
    err = catch(lambda: pay(eng, None, 1000, source=nonce))
    return err.body()["payment"]


@scenario("payment.already_failed")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        p = _declined(eng)
        return V(lambda: eng.complete_payment(p["id"]))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = _declined(eng)
        assert eng.get_payment(p["id"])["status"] == "FAILED"
        # Retrying with a good card works.
        assert pay(eng, None, 1000)["status"] == "COMPLETED"


@scenario("payment.pending_locked")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        p = pay(eng, o["id"], 1000, source="bnon:bank-nonce-ok")
        assert p["status"] == "PENDING"
        return V(lambda: eng.complete_payment(p["id"]), payment_id=p["id"])

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        p = pay(eng, o["id"], 1000, source="bnon:bank-nonce-ok")
        err = catch(lambda: eng.cancel_payment(p["id"]))
        assert err.rule_id == "payment.pending_locked"
        assert err.detail == f"Payment {p['id']} is PENDING and cannot be changed."
        eng.advance(60)
        assert eng.get_payment(p["id"])["status"] == "COMPLETED"


@scenario("payment.version_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        p = _approved(eng)
        old = p["version_token"]
        eng.update_payment(p["id"], {"amount_money": usd(900), "version_token": old})
        return V(lambda: eng.complete_payment(p["id"], old), given=old, payment_id=p["id"])

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = _approved(eng)
        q = eng.update_payment(p["id"], {"amount_money": usd(900), "version_token": p["version_token"]})
        assert q["version_token"] != p["version_token"] and q["amount_money"] == usd(900)
        assert eng.complete_payment(p["id"], q["version_token"])["status"] == "COMPLETED"
        # Stale token on UpdatePayment too.
        r = _approved(eng)
        eng.update_payment(r["id"], {"tip_money": usd(5)})
        err = catch(lambda: eng.update_payment(r["id"], {"tip_money": usd(6),
                                                         "version_token": r["version_token"]}))
        assert err.rule_id == "payment.version_mismatch"


@scenario("payment.delayed_action")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = _approved(eng, delay_duration="PT1M")
        assert p["delay_action"] == "CANCEL" and p["delayed_until"] == "2026-01-05T15:01:00.000Z"
        eng.advance(60)
        p = eng.get_payment(p["id"])
        assert p["status"] == "CANCELED" and p["card_details"]["status"] == "VOIDED"
        o = new_order(eng)
        q = pay(eng, o["id"], 1000, autocomplete=False, delay_duration="PT1M", delay_action="COMPLETE")
        eng.advance(59)
        assert eng.get_payment(q["id"])["status"] == "APPROVED"
        eng.advance(1)
        assert eng.get_payment(q["id"])["status"] == "COMPLETED"
        assert eng.get_order(o["id"])["net_amount_due_money"] == usd(0)
        # The default delay is seven days.
        r = _approved(eng)
        assert r["delay_duration"] == "PT168H"


@scenario("payment.delay_duration_bounds")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: _approved(eng, delay_duration="PT30S"), maximum="P7D")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert _approved(eng, delay_duration="PT1M")["delay_duration"] == "PT1M"
        assert _approved(eng, delay_duration="P7D")["delay_duration"] == "PT168H"
        err = catch(lambda: _approved(eng, delay_duration="P8D"))
        assert err.rule_id == "payment.delay_duration_bounds"


@scenario("payment.delay_needs_delayed_capture")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 100, delay_action="COMPLETE"), param="delay_action")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = pay(eng, None, 100, autocomplete=False, delay_action="COMPLETE", delay_duration="PT2M")
        assert p["delay_action"] == "COMPLETE" and p["status"] == "APPROVED"
        err = catch(lambda: pay(eng, None, 100, delay_duration="PT2M"))
        assert err.rule_id == "payment.delay_needs_delayed_capture"
        assert err.field == "delay_duration"


def _decline_scenario(rule_id: str, nonce: str) -> Scenario:
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 1000, source=nonce))

    def satisfy(eng: Engine) -> None:
        # The declined payment is recorded FAILED and returned beside the error.
        err = catch(lambda: pay(eng, None, 1000, source=nonce))
        failed = err.body()["payment"]
        assert failed["status"] == "FAILED" and failed["card_details"]["status"] == "FAILED"
        assert failed["card_details"]["errors"] == [e.to_json() for e in err.errors]
        assert eng.get_payment(failed["id"])["status"] == "FAILED"
        # The good nonce succeeds.
        assert pay(eng, None, 1000)["status"] == "COMPLETED"

    return Scenario(violate, satisfy)


for _nonce, _rule in DECLINE_NONCES.items():
    SCENARIOS[_rule] = _decline_scenario(_rule, _nonce)


# ---------------------------------------------------------------- fidelity (issue 11)
def _events(eng: Engine) -> list[tuple[str, str]]:
    return [(e.type, e.object_id) for e in eng.drain_events()]


@scenario("payment.card_token_used")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 1000, source="cnon:card-nonce-already-used"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        # Refused before any card is tried: nothing is recorded, unlike a decline.
        catch(lambda: pay(eng, None, 1000, source="cnon:card-nonce-already-used"))
        assert eng.payments == {} and eng.orders == {}
        assert pay(eng, None, 1000)["status"] == "COMPLETED"


@scenario("payment.card_nonce_not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 1000, source="cnon:made-up"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        catch(lambda: pay(eng, None, 1000, source="cnon:made-up"))
        assert eng.payments == {}
        gift = pay(eng, None, 1000, source="cnon:gift-card-nonce-ok")
        assert gift["card_details"]["card"]["card_brand"] == "SQUARE_GIFT_CARD"


@scenario("payment.card_on_file_not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 1000, source="ccof:made-up"), card_id="made-up")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = pay(eng, None, 1000, source="ccof:customer-card-id-ok")
        assert p["card_details"]["entry_method"] == "ON_FILE"
        v = pay(eng, None, 1000, source="ccof:customer-card-id-requires-verification",
                verification_token="verf:ok")
        assert v["status"] == "COMPLETED"


@scenario("payment.amount_zero")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 0, tip_money=usd(100)))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert pay(eng, None, 1)["amount_money"] == usd(1)
        z = new_order(eng, pickup=False, lines=[])
        assert eng.pay_order(z["id"], [])["state"] == "COMPLETED"


@scenario("payment.ach_autocomplete_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 1000, source="bnon:bank-nonce-ok", autocomplete=False))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert pay(eng, None, 1000, source="bnon:bank-nonce-ok")["status"] == "PENDING"
        assert eng.payments and all(p["status"] == "PENDING" for p in eng.payments.values())


@scenario("payment.delay_card_only")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 100, source="CASH", autocomplete=False,
                             cash_details={"buyer_supplied_money": usd(100)},
                             delay_action="COMPLETE"), param="delay_action")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        c = pay(eng, None, 100, source="CASH", autocomplete=False,
                cash_details={"buyer_supplied_money": usd(100)})
        assert c["status"] == "APPROVED" and "delay_duration" not in c and "delayed_until" not in c
        err = catch(lambda: pay(eng, None, 100, source="EXTERNAL", autocomplete=False,
                                external_details={"type": "CHECK", "source": "x"},
                                delay_duration="PT1H"))
        assert err.rule_id == "payment.delay_card_only" and err.field == "delay_duration"
        card = pay(eng, None, 100, autocomplete=False, delay_duration="PT1H")
        assert card["delay_duration"] == "PT1H"


@scenario("payment.app_fee_too_high")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 1000, app_fee_money=usd(901)))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert pay(eng, None, 1000, app_fee_money=usd(900))["app_fee_money"] == usd(900)
        # The tip counts towards the total the fee is measured against.
        assert pay(eng, None, 1000, tip_money=usd(100), app_fee_money=usd(990))["status"] == \
            "COMPLETED"


@scenario("payment.request_checked_before_card")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        err = catch(lambda: pay(eng, "nope", 1000, source="cnon:card-nonce-declined"))
        assert err.rule_id == "order.not_found" and eng.payments == {}
        o = new_order(eng, pickup=False)
        err = catch(lambda: pay(eng, o["id"], 999, source="cnon:card-nonce-declined"))
        assert err.rule_id == "payment.order_total_mismatch" and eng.payments == {}
        err = catch(lambda: pay(eng, None, 1000, source="cnon:card-nonce-declined",
                                location_id="nowhere"))
        assert err.rule_id == "location.not_found" and eng.payments == {}
        # A valid request with a declining card is a decline, recorded FAILED.
        err = catch(lambda: pay(eng, o["id"], 1000, source="cnon:card-nonce-declined"))
        assert err.rule_id == "payment.card_declined"
        assert eng.get_order(o["id"])["version"] == o["version"]


@scenario("pay_order.cash_payment")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng, pickup=False)
        c = pay(eng, o["id"], 1000, source="CASH", autocomplete=False,
                cash_details={"buyer_supplied_money": usd(2000)})
        assert c["status"] == "APPROVED" and "delayed_until" not in c
        done = eng.pay_order(o["id"], [c["id"]])
        assert done["state"] == "COMPLETED"
        assert eng.get_payment(c["id"])["status"] == "COMPLETED"
        assert done["tenders"][0]["type"] == "CASH"


@scenario("refund.cash_settles_at_once")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        c = pay(eng, None, 500, source="CASH", cash_details={"buyer_supplied_money": usd(500)})
        assert refund(eng, c["id"], 200)["status"] == "COMPLETED"
        e = pay(eng, None, 500, source="EXTERNAL", external_details={"type": "CHECK", "source": "x"})
        assert refund(eng, e["id"], 500)["status"] == "COMPLETED"
        card = pay(eng, None, 500)
        assert refund(eng, card["id"], 500)["status"] == "PENDING"


@scenario("order.pricing_locked")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o, _p = paid_order(eng)
        return V(lambda: update(eng, o["id"], discounts=[
            {"name": "Late", "type": "FIXED_AMOUNT", "amount_money": usd(100), "scope": "ORDER"}]),
            list_name="discounts")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        o = update(eng, o["id"], discounts=[
            {"name": "Early", "type": "FIXED_AMOUNT", "amount_money": usd(100), "scope": "ORDER"}])
        assert o["total_money"] == usd(900)
        p = pay(eng, o["id"], 900)
        err = catch(lambda: update(eng, o["id"], clear=[f"discounts[{o['discounts'][0]['uid']}]"]))
        assert err.rule_id == "order.pricing_locked" and err.field == "order.discounts"
        assert p["status"] == "COMPLETED"


@scenario("order.fulfillment_locked_when_paid")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o, _p = paid_order(eng)
        uid = o["fulfillments"][0]["uid"]
        return V(lambda: update(eng, o["id"], clear=[f"fulfillments[{uid}]"]),
                 field="fields_to_clear")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        # Unpaid: the fulfillment can be removed.
        o = new_order(eng)
        uid = o["fulfillments"][0]["uid"]
        assert not update(eng, o["id"], clear=[f"fulfillments[{uid}]"]).get("fulfillments")
        # Paid: it cannot be removed, not even with an explicit null, but it can be CANCELED.
        o, _p = paid_order(eng)
        err = catch(lambda: update(eng, o["id"], fulfillments=None))
        assert err.rule_id == "order.fulfillment_locked_when_paid"
        assert err.field == "order.fulfillments"
        assert fulfillment_to(eng, o["id"], "CANCELED")["fulfillments"][0]["state"] == "CANCELED"


@scenario("order.line_item_needs_name_and_price")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: new_order(eng, lines=[{"quantity": "1",
                                                 "base_price_money": usd(100)}]),
                 index=0, name="name")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        err = catch(lambda: new_order(eng, lines=[line(), {"name": "Gift", "quantity": "1"}]))
        assert err.field == "order.line_items[1].base_price_money"
        o = new_order(eng)
        # A patch of an existing line item by uid needs neither.
        uid = o["line_items"][0]["uid"]
        assert update(eng, o["id"], line_items=[{"uid": uid, "note": "x"}])["line_items"][0][
            "note"] == "x"
        err = catch(lambda: update(eng, o["id"], line_items=[{"quantity": "2"}]))
        assert err.rule_id == "order.line_item_needs_name_and_price"
        err = catch(lambda: eng.calculate_order({"location_id": eng.main_location_id,
                                                 "line_items": [{"quantity": "1"}]}))
        assert err.rule_id == "order.line_item_needs_name_and_price"


@scenario("order.search_location_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.search_orders(location_ids=[]))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        page, _ = eng.search_orders(location_ids=[eng.main_location_id])
        assert [r["id"] for r in page] == [o["id"]]


@scenario("order.search_closed_at_open")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.search_orders(location_ids=[eng.main_location_id],
                                           states=["OPEN", "COMPLETED"], sort_field="closed_at"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        new_order(eng)
        done, _p = paid_order(eng, pickup=False)
        page, _ = eng.search_orders(location_ids=[eng.main_location_id], states=["COMPLETED"],
                                    sort_field="closed_at")
        assert [r["id"] for r in page] == [done["id"]]


@scenario("webhook.order_created_only_by_create_order")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        eng = Engine(record_events=True)
        o = new_order(eng, pickup=False)
        assert _events(eng) == [("order.created", o["id"])]
        clone = eng.clone_order(o["id"])
        assert _events(eng) == []
        p = pay(eng, None, 500)
        r = refund(eng, p["id"], 100)
        created = [e for e in _events(eng) if e[0] == "order.created"]
        assert created == [] and clone["state"] == "DRAFT" and r["order_id"]


@scenario("webhook.order_follows_payment_and_refund")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        eng = Engine(record_events=True)
        p = pay(eng, None, 500)
        assert _events(eng) == [("payment.created", p["id"]), ("order.updated", p["order_id"])]
        r = refund(eng, p["id"], 500)
        assert _events(eng) == [("refund.created", r["id"]), ("order.updated", r["order_id"]),
                                ("payment.updated", p["id"])]
        eng.advance(10)
        assert _events(eng) == [("refund.updated", r["id"]), ("order.updated", r["order_id"])]


@scenario("webhook.payment_refund_sequence")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        eng = Engine(record_events=True)
        p = pay(eng, None, 500, autocomplete=False)
        eng.complete_payment(p["id"])
        r = refund(eng, p["id"], 500)
        eng.advance(10)
        a, ret = p["order_id"], r["order_id"]
        assert _events(eng) == [
            ("payment.created", p["id"]), ("order.updated", a),
            ("payment.updated", p["id"]), ("order.updated", a),
            ("refund.created", r["id"]), ("order.updated", ret), ("payment.updated", p["id"]),
            ("refund.updated", r["id"]), ("order.updated", ret),
        ]


@scenario("payment.invalid_source")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 100, source="tok_visa"))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert pay(eng, None, 100, source="ccof:customer-card-id-ok")["source_type"] == "CARD"
        assert pay(eng, None, 100, source="bnon:bank-nonce-ok")["source_type"] == "BANK_ACCOUNT"
        assert pay(eng, None, 100, source="CASH",
                   cash_details={"buyer_supplied_money": usd(100)})["source_type"] == "CASH"
        assert pay(eng, None, 100, source="EXTERNAL",
                   external_details={"type": "CHECK", "source": "x"})["source_type"] == "EXTERNAL"


@scenario("payment.cash_details_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: pay(eng, None, 100, source="CASH"), field="cash_details.buyer_supplied_money")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = pay(eng, None, 100, source="CASH", cash_details={"buyer_supplied_money": usd(150)})
        assert p["cash_details"]["change_back_money"] == usd(50)
        err = catch(lambda: pay(eng, None, 100, source="EXTERNAL", external_details={"type": "CHECK"}))
        assert err.rule_id == "payment.cash_details_required"
        assert err.field == "external_details.source"


@scenario("payment.amount_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.create_payment({"source_id": "cnon:card-nonce-ok",
                                             "idempotency_key": "x"}))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = pay(eng, None, 100, tip_money=usd(20))
        assert p["total_money"] == usd(120) and p["amount_money"] == usd(100)


@scenario("payment.not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.get_payment("nope"), id="nope", field="payment_id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = pay(eng, None, 100)
        assert eng.get_payment(p["id"]) == p
        err = catch(lambda: eng.complete_payment("nope"))
        assert err.rule_id == "payment.not_found" and err.field is None


@scenario("payment.cancel_by_idempotency_key")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        before = eng.snapshot()
        assert eng.cancel_payment_by_idempotency_key("unknown") is None
        assert eng.snapshot() == before
        o = new_order(eng)
        p = eng.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": "key-1",
                                "amount_money": usd(1000), "autocomplete": False,
                                "order_id": o["id"]})
        done = eng.cancel_payment_by_idempotency_key("key-1")
        assert done["id"] == p["id"] and done["status"] == "CANCELED"


@scenario("payment.bank_settles")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng, pickup=False)
        p = pay(eng, o["id"], 1000, source="bnon:bank-nonce-ok")
        assert p["status"] == "PENDING"
        assert eng.get_order(o["id"])["net_amount_due_money"] == usd(1000)
        eng.advance(59)
        assert eng.get_payment(p["id"])["status"] == "PENDING"
        eng.advance(1)
        assert eng.get_payment(p["id"])["status"] == "COMPLETED"
        o = eng.get_order(o["id"])
        assert o["net_amount_due_money"] == usd(0) and o["state"] == "COMPLETED"
        # A failing bank nonce ends FAILED.
        q = pay(eng, None, 100, source="bnon:bank-nonce-failure")
        eng.advance(60)
        assert eng.get_payment(q["id"])["status"] == "FAILED"


# ============================================================================ refunds
@scenario("refund.return_order")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o, p = paid_order(eng)
        r = refund(eng, p["id"], 400)
        assert r["order_id"] != o["id"] and r["id"].startswith(p["id"] + "_")
        ret = eng.get_order(r["order_id"])
        assert ret["state"] == "COMPLETED"
        assert ret["returns"][0]["source_order_id"] == o["id"]
        assert ret["return_amounts"]["total_money"] == usd(400)
        p = eng.get_payment(p["id"])
        assert p["status"] == "COMPLETED"
        assert p["refunded_money"] == usd(400) and p["refund_ids"] == [r["id"]]


@scenario("refund.original_order_unchanged")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o, p = paid_order(eng)
        refund(eng, p["id"], 1000)
        eng.advance(10)
        after = eng.get_order(o["id"])
        assert after == o
        c, q = paid_order(eng, pickup=False)
        assert c["state"] == "COMPLETED"
        refund(eng, q["id"], 1000)
        assert eng.get_order(c["id"]) == c


@scenario("refund.payment_needs_completion")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        p = _approved(eng)
        return V(lambda: refund(eng, p["id"], 100))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        p = _approved(eng)
        eng.complete_payment(p["id"])
        assert refund(eng, p["id"], 100)["status"] == "PENDING"


@scenario("refund.payment_not_refundable")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        p = _approved(eng)
        eng.cancel_payment(p["id"])
        return V(lambda: refund(eng, p["id"], 100), status="CANCELED")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        assert refund(eng, p["id"], 1000)["status"] == "PENDING"
        f = _declined(eng)
        err = catch(lambda: refund(eng, f["id"], 100))
        assert err.rule_id == "refund.payment_not_refundable"
        assert err.detail == "The payment is not refundable because it is FAILED."


@scenario("refund.amount_exceeds")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        return V(lambda: refund(eng, p["id"], 1001))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        refund(eng, p["id"], 600)  # PENDING counts
        err = catch(lambda: refund(eng, p["id"], 401))
        assert err.rule_id == "refund.amount_exceeds"
        refund(eng, p["id"], 400)
        assert eng.get_payment(p["id"])["refunded_money"] == usd(1000)


@scenario("refund.amount_positive")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        return V(lambda: refund(eng, p["id"], 0))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        assert refund(eng, p["id"], 1)["amount_money"] == usd(1)


@scenario("refund.max_count")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        for _ in range(20):
            refund(eng, p["id"], 1)
        return V(lambda: refund(eng, p["id"], 1))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        for _ in range(20):
            refund(eng, p["id"], 1)
        p = eng.get_payment(p["id"])
        assert len(p["refund_ids"]) == 20 and p["refunded_money"] == usd(20)


@scenario("refund.too_old")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        eng.advance(366 * 86400)
        return V(lambda: refund(eng, p["id"], 100))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        eng.advance(364 * 86400)
        assert refund(eng, p["id"], 100)["status"] == "PENDING"


@scenario("refund.after_failed")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        r = refund(eng, p["id"], 100)
        eng.fail_refund(r["id"])
        return V(lambda: refund(eng, p["id"], 100))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        r = refund(eng, p["id"], 100)
        eng.reject_refund(r["id"])  # REJECTED does not block later refunds
        assert refund(eng, p["id"], 1000)["status"] == "PENDING"


@scenario("refund.version_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        token = p["version_token"]
        refund(eng, p["id"], 100, payment_version_token=token)
        return V(lambda: refund(eng, p["id"], 100, payment_version_token=token),
                 given=token, payment_id=p["id"])

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        refund(eng, p["id"], 100, payment_version_token=p["version_token"])
        token = eng.get_payment(p["id"])["version_token"]
        assert refund(eng, p["id"], 100, payment_version_token=token)["status"] == "PENDING"


def _refund_while_pending_reject(eng: Engine) -> None:
    _o, p = paid_order(eng)
    r = refund(eng, p["id"], 100)
    err = catch(lambda: refund(eng, p["id"], 100))
    assert (err.rule_id, err.code) == ("refund.already_pending", "REFUND_ALREADY_PENDING")
    eng.advance(10)
    assert eng.get_refund(r["id"])["status"] == "COMPLETED"
    assert refund(eng, p["id"], 100)["status"] == "PENDING"


@scenario("refund.already_pending", variants={"reject": _refund_while_pending_reject},
          violate_variants={"refund_while_pending": "reject"})
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        refund(eng, p["id"], 100)
        return V(lambda: refund(eng, p["id"], 100))

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        a = refund(eng, p["id"], 100)
        b = refund(eng, p["id"], 200)
        assert (a["status"], b["status"]) == ("PENDING", "PENDING")
        assert eng.get_payment(p["id"])["refunded_money"] == usd(300)


@scenario("refund.settlement")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        r = refund(eng, p["id"], 100)
        assert r["status"] == "PENDING"
        eng.advance(9)
        assert eng.get_refund(r["id"])["status"] == "PENDING"
        eng.advance(1)
        done = eng.get_refund(r["id"])
        assert done["status"] == "COMPLETED" and done["processing_fee"]
        r2 = refund(eng, p["id"], 100)
        assert eng.reject_refund(r2["id"])["status"] == "REJECTED"


@scenario("refund.not_pending")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        _o, p = paid_order(eng)
        r = refund(eng, p["id"], 100)
        eng.settle_refund(r["id"])
        return V(lambda: eng.settle_refund(r["id"]), refund_id=r["id"], status="COMPLETED")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        for fn, status in ((eng.settle_refund, "COMPLETED"), (eng.reject_refund, "REJECTED"),
                           (eng.fail_refund, "FAILED")):
            r = refund(eng, p["id"], 100)
            assert fn(r["id"])["status"] == status


@scenario("refund.not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.get_refund("nope"), id="nope", field="refund_id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        _o, p = paid_order(eng)
        r = refund(eng, p["id"], 100)
        assert eng.get_refund(r["id"]) == r
        err = catch(lambda: eng.settle_refund("nope"))
        assert err.rule_id == "refund.not_found" and err.field is None


# ============================================================================ fulfillments
@scenario("fulfillment.forward_only")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        fulfillment_to(eng, o["id"], "PREPARED")
        return V(lambda: fulfillment_to(eng, o["id"], "RESERVED"),
                 index=0, old="PREPARED", new="RESERVED")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        o = fulfillment_to(eng, o["id"], "PREPARED")  # skipping RESERVED is allowed
        assert o["fulfillments"][0]["state"] == "PREPARED"
        assert o["fulfillments"][0]["pickup_details"]["ready_at"]
        err = catch(lambda: fulfillment_to(eng, o["id"], "PROPOSED"))
        assert err.rule_id == "fulfillment.forward_only"


@scenario("fulfillment.terminal_absorbs")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        o = fulfillment_to(eng, o["id"], "CANCELED")
        uid = o["fulfillments"][0]["uid"]
        return V(lambda: fulfillment_to(eng, o["id"], "PROPOSED"),
                 index=0, old="CANCELED", new="PROPOSED", uid=uid)

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        o = fulfillment_to(eng, o["id"], "FAILED")
        uid = o["fulfillments"][0]["uid"]
        # Re-sending the same terminal state, or changing details, is not a move.
        o = update(eng, o["id"], fulfillments=[{"uid": uid, "state": "FAILED",
                                                 "pickup_details": {"note": "n"}}])
        assert o["fulfillments"][0]["state"] == "FAILED"
        for target in ("COMPLETED", "CANCELED", "RESERVED"):
            assert catch(lambda: fulfillment_to(eng, o["id"], target)).rule_id == \
                "fulfillment.terminal_absorbs"


@scenario("fulfillment.cancel_any_time")
class _:
    violate = None

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o, p = paid_order(eng)
        refund(eng, p["id"], 1000)
        done = fulfillment_to(eng, o["id"], "CANCELED")
        assert done["fulfillments"][0]["state"] == "CANCELED"
        assert done["fulfillments"][0]["pickup_details"]["canceled_at"]
        for start in ("PROPOSED", "RESERVED", "PREPARED"):
            for end in ("CANCELED", "FAILED"):
                o = new_order(eng)
                if start != "PROPOSED":
                    fulfillment_to(eng, o["id"], start)
                assert fulfillment_to(eng, o["id"], end)["fulfillments"][0]["state"] == end


def _complete_before_payment_allow(eng: Engine) -> None:
    o = new_order(eng)
    done = fulfillment_to(eng, o["id"], "COMPLETED")
    assert done["fulfillments"][0]["state"] == "COMPLETED"
    assert done["net_amount_due_money"] == usd(1000)
    # The order itself still needs the money before it completes.
    err = catch(lambda: update(eng, o["id"], state="COMPLETED"))
    assert err.rule_id == "order.complete_requires_payment"


@scenario("fulfillment.complete_requires_payment",
          variants={"allow": _complete_before_payment_allow})
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        o = new_order(eng)
        return V(lambda: fulfillment_to(eng, o["id"], "COMPLETED"), index=0)

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        a = pay(eng, o["id"], 1000, autocomplete=False)
        # An APPROVED payment is not payment yet.
        assert catch(lambda: fulfillment_to(eng, o["id"], "COMPLETED")).rule_id == \
            "fulfillment.complete_requires_payment"
        eng.pay_order(o["id"], [a["id"]])
        assert fulfillment_to(eng, o["id"], "COMPLETED")["fulfillments"][0]["state"] == "COMPLETED"


@scenario("fulfillment.details_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.create_order({"location_id": "main",
                                           "fulfillments": [{"type": "PICKUP"}]}),
                 index=0, details="pickup_details")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        for ftype, details in (("PICKUP", "pickup_details"), ("SHIPMENT", "shipment_details"),
                               ("DELIVERY", "delivery_details")):
            o = eng.create_order({"location_id": "main",
                                  "fulfillments": [{"type": ftype, details: {}}]})
            f = o["fulfillments"][0]
            assert f["state"] == "PROPOSED" and f[details]["placed_at"]
        err = catch(lambda: eng.create_order({"location_id": "main", "fulfillments": [
            {"type": "SHIPMENT", "pickup_details": {}}]}))
        assert err.field == "order.fulfillments[0].shipment_details"


@scenario("fulfillment.type_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.create_order({"location_id": "main", "fulfillments": [
            {"pickup_details": {}}]}), index=0)

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = new_order(eng)
        assert o["fulfillments"][0]["type"] == "PICKUP"


# ============================================================================ money / api
@scenario("money.currency_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.create_payment({"source_id": "cnon:card-nonce-ok",
                                             "idempotency_key": "x",
                                             "amount_money": {"amount": 100, "currency": "EUR"}}),
                 currency="EUR", expected="USD", field="amount_money.currency")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert pay(eng, None, 100)["amount_money"] == usd(100)
        err = catch(lambda: eng.create_order({"location_id": "main", "line_items": [
            {"name": "x", "quantity": "1", "base_price_money": {"amount": 1, "currency": "CAD"}}]}))
        assert err.rule_id == "money.currency_mismatch"
        assert err.field == "order.line_items[0].base_price_money.currency"


@scenario("money.non_negative")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: new_order(eng, amount=-1),
                 field="order.line_items[0].base_price_money.amount")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert new_order(eng, amount=0)["total_money"] == usd(0)
        err = catch(lambda: pay(eng, None, -5))
        assert err.rule_id == "money.non_negative" and err.field == "amount_money.amount"


# ============================================================================ pricing
def pline(amount: int = 1000, qty: str = "1", **extra: Any) -> dict[str, Any]:
    return dict(line(amount, qty), **extra)


def _priced(eng: Engine, lines: list, **extra: Any) -> dict[str, Any]:
    return new_order(eng, pickup=False, lines=lines, **extra)


def _adjustment_rounding_down(eng: Engine) -> None:
    def off(amount: int) -> int:
        return _priced(eng, [line(amount)], discounts=[
            {"uid": "d", "name": "10", "percentage": "10", "scope": "ORDER"}])["total_discount_money"]["amount"]
    assert off(915) == 91  # 91.5 rounded down (half to even would give 92)
    assert off(919) == 91  # 91.9: down, not to the nearest
    # Taxes and service charges too; line amounts for fractional quantities stay half to even.
    o = _priced(eng, [line(819)], taxes=[{"uid": "t", "name": "5", "percentage": "5",
                                          "scope": "ORDER"}])
    assert o["total_tax_money"] == usd(40)  # 40.95
    o = _priced(eng, [line(819)], service_charges=[
        {"uid": "s", "name": "5", "percentage": "5", "calculation_phase": "SUBTOTAL_PHASE"}])
    assert o["total_service_charge_money"] == usd(40)
    assert _priced(eng, [line(1, qty="3.5")])["total_money"] == usd(4)
    # Read back and paid for at the same total.
    made = _priced(eng, [line(915)], discounts=[
        {"uid": "d", "name": "10", "percentage": "10", "scope": "ORDER"}])
    assert eng.get_order(made["id"])["total_money"] == usd(824)
    assert pay(eng, made["id"], 824)["status"] == "COMPLETED"


@scenario("pricing.bankers_rounding", variants={"down": _adjustment_rounding_down})
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        def off(amount: int) -> int:
            return _priced(eng, [line(amount)], discounts=[
                {"uid": "d", "name": "5", "percentage": "5", "scope": "ORDER"}])["total_discount_money"]["amount"]
        assert off(250) == 12  # 12.5: 12 is even (half up would give 13)
        assert off(270) == 14  # 13.5: 14 is even
        assert off(230) == 12  # 11.5: 12 is even
        assert _priced(eng, [line(1, qty="2.5")])["total_money"] == usd(2)
        assert _priced(eng, [line(1, qty="3.5")])["total_money"] == usd(4)


@scenario("pricing.discount_sequence")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        # Listed fixed first; the 10 % order discount is still taken before the $1 item discount.
        o = _priced(eng, [pline(1000, applied_discounts=[{"discount_uid": "one"}])], discounts=[
            {"uid": "one", "name": "$1", "amount_money": usd(100), "scope": "LINE_ITEM"},
            {"uid": "ten", "name": "10%", "percentage": "10", "scope": "ORDER"}])
        applied = {d["uid"]: d["applied_money"]["amount"] for d in o["discounts"]}
        assert applied == {"ten": 100, "one": 100}  # 10 % of 1000, then 100 off the 900 left
        # Item-level percentage before order-level percentage: 10 % of 1000, then 50 % of 900.
        o = _priced(eng, [pline(1000, applied_discounts=[{"discount_uid": "i"}])], discounts=[
            {"uid": "o", "name": "half", "percentage": "50", "scope": "ORDER"},
            {"uid": "i", "name": "ten", "percentage": "10", "scope": "LINE_ITEM"}])
        applied = {d["uid"]: d["applied_money"]["amount"] for d in o["discounts"]}
        assert applied == {"i": 100, "o": 450}


@scenario("pricing.discount_step_order")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        for listed in (["labor", "member"], ["member", "labor"]):
            specs = {"labor": {"uid": "labor", "name": "Labor", "percentage": "5", "scope": "ORDER"},
                     "member": {"uid": "member", "name": "M", "percentage": "0.5", "scope": "ORDER"}}
            o = _priced(eng, [line(1599), line(4500)], discounts=[specs[u] for u in listed])
            assert [(d["uid"], d["applied_money"]["amount"]) for d in o["discounts"]] == [
                ("member", 30), ("labor", 303)]


@scenario("pricing.order_scope_apportioned")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = _priced(eng, [line(1512), line(4154)],
                    taxes=[{"uid": "t", "name": "T", "percentage": "9", "scope": "ORDER"}])
        shares = [li["applied_taxes"][0]["applied_money"]["amount"] for li in o["line_items"]]
        assert shares == [136, 374] and o["taxes"][0]["applied_money"] == usd(510)
        uids = [li["applied_taxes"][0]["uid"] for li in o["line_items"]]
        assert len(set(uids)) == 2 and all(uids)
        # The generated references are stored: a later read shows the same uids.
        again = eng.get_order(o["id"])
        assert [li["applied_taxes"][0]["uid"] for li in again["line_items"]] == uids


@scenario("pricing.line_item_fixed_shared")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        ref = [{"discount_uid": "d"}]
        o = _priced(eng, [pline(300, applied_discounts=ref), pline(100, applied_discounts=ref),
                          pline(50)],
                    discounts=[{"uid": "d", "name": "$1", "amount_money": usd(100),
                                "scope": "LINE_ITEM"}])
        assert [li["total_discount_money"]["amount"] for li in o["line_items"]] == [75, 25, 0]


@scenario("pricing.taxes_after_discounts")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = _priced(eng, [line(1000)],
                    discounts=[{"uid": "d", "name": "D", "percentage": "10", "scope": "ORDER"}],
                    taxes=[{"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}])
        assert o["total_tax_money"] == usd(90) and o["total_money"] == usd(990)
        o = _priced(eng, [line(1100)], taxes=[
            {"uid": "v", "name": "VAT", "percentage": "10", "type": "INCLUSIVE", "scope": "ORDER"}])
        li = o["line_items"][0]
        assert o["total_money"] == usd(1100) and o["total_tax_money"] == usd(100)
        assert li["gross_sales_money"] == usd(1000) and o["taxes"][0]["type"] == "INCLUSIVE"


@scenario("pricing.service_charge_phases")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = _priced(eng, [line(1000)],
                    taxes=[{"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}],
                    service_charges=[{"uid": "s", "name": "Tip", "percentage": "10",
                                      "calculation_phase": "TOTAL_PHASE"}])
        assert o["service_charges"][0]["applied_money"] == usd(110)
        assert o["total_money"] == usd(1210)
        o = _priced(eng, [line(1000)],
                    taxes=[{"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}],
                    service_charges=[{"uid": "s", "name": "Svc", "percentage": "10", "taxable": True,
                                      "calculation_phase": "SUBTOTAL_PHASE"}])
        sc = o["service_charges"][0]
        assert sc["applied_money"] == usd(100) and sc["total_tax_money"] == usd(10)
        assert o["total_tax_money"] == usd(110) and o["total_money"] == usd(1210)


@scenario("pricing.service_charge_phase")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: _priced(eng, [line(1000)], service_charges=[
            {"uid": "s", "name": "S", "percentage": "10",
             "calculation_phase": "APPORTIONED_AMOUNT_PHASE"}]),
                 phase="APPORTIONED_AMOUNT_PHASE", field="order.service_charges[0].calculation_phase")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = _priced(eng, [line(1000)], service_charges=[
            {"uid": "s", "name": "S", "percentage": "10",
             "calculation_phase": "APPORTIONED_PERCENTAGE_PHASE"}])
        assert o["line_items"][0]["total_service_charge_money"] == usd(100)
        err = catch(lambda: _priced(eng, [line(1000)], service_charges=[
            {"uid": "s", "name": "S", "amount_money": usd(5), "taxable": True,
             "calculation_phase": "TOTAL_PHASE"}]))
        assert err.rule_id == "pricing.service_charge_phase"
        assert err.field == "order.service_charges[0].taxable"


@scenario("pricing.percentage_range")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: _priced(eng, [line(1000)], discounts=[
            {"uid": "d", "name": "D", "percentage": "100.01", "scope": "ORDER"}]),
                 value="100.01", maximum=100, field="order.discounts[0].percentage")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = _priced(eng, [line(1000)], discounts=[
            {"uid": "d", "name": "D", "percentage": "100", "scope": "ORDER"}])
        assert o["total_money"] == usd(0)


@scenario("pricing.quantity_precision")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: _priced(eng, [line(1000, qty="1.123456")]),
                 value="1.123456", places=5, field="order.line_items[0].quantity")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert _priced(eng, [line(100000, qty="1.12345")])["total_money"] == usd(112345)
        err = catch(lambda: _priced(eng, [pline(1000, qty="1.25",
                                                quantity_unit={"precision": 1})]))
        assert err.rule_id == "pricing.quantity_precision"


@scenario("pricing.unique_uids")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: _priced(eng, [line(1000)], discounts=[
            {"uid": "x", "name": "5 %", "percentage": "5", "scope": "ORDER"},
            {"uid": "x", "name": "$1 off", "amount_money": usd(100), "scope": "ORDER"}]),
                 uid="x", list="discounts", field="order.discounts[1].uid")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        o = _priced(eng, [line(1000), line(3000)], discounts=[
            {"uid": "x", "name": "5 %", "percentage": "5", "scope": "ORDER"},
            {"uid": "y", "name": "$1 off", "amount_money": usd(100), "scope": "ORDER"}])
        assert [d["applied_money"] for d in o["discounts"]] == [usd(200), usd(100)]
        shares = [a["applied_money"]["amount"] for li in o["line_items"]
                  for a in li["applied_discounts"]]
        assert sum(shares) == 300 and o["total_money"] == usd(3700)
        # A sparse UpdateOrder body is checked too, with its own field path.
        err = catch(lambda: eng.update_order(o["id"], {"version": o["version"], "line_items": [
            dict(line(500), uid="new"), dict(line(700), uid="new")]}))
        assert err.rule_id == "pricing.unique_uids" and err.field == "order.line_items[1].uid"
        assert eng.get_order(o["id"])["version"] == o["version"]


@scenario("pricing.amount_overflow")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: _priced(eng, [line(2**62, qty="2")]),
                 field="order.line_items[0].variation_total_price_money")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        before = eng.snapshot()
        catch(lambda: _priced(eng, [line(2**62), line(2**62)]))  # each fits, the sum does not
        assert eng.snapshot() == before
        o = _priced(eng, [line(2**62), line(2**62 - 1)])
        assert o["total_money"] == usd(2**63 - 1)


@scenario("api.invalid_value")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: new_order(eng, state="COMPLETED"), field="order.state",
                 reason="An order cannot be created in state COMPLETED.")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert new_order(eng, state="OPEN")["state"] == "OPEN"
        err = catch(lambda: new_order(eng, lines=[line(qty="abc")]))
        assert err.rule_id == "api.invalid_value"
        assert err.field == "order.line_items[0].quantity"


@scenario("location.not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.create_order({"location_id": "nope"}), id="nope",
                 field="order.location_id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert eng.get_location("main")["id"] == eng.main_location_id
        assert new_order(eng)["location_id"] == eng.main_location_id


# ============================================================================ catalog
def _usd_price(amount: int) -> dict[str, Any]:
    return {"pricing_type": "FIXED_PRICING", "price_money": usd(amount)}


def cat_upsert(eng: Engine, *objects: dict[str, Any]) -> dict[str, Any]:
    """Upsert ``objects`` as one batch; returns the response with ``ids`` (temporary -> real)."""
    out = eng.catalog_command(lambda: eng.catalog.upsert([list(objects)]))
    out["ids"] = {m["client_object_id"]: m["object_id"] for m in out.get("id_mappings", [])}
    return out


def cat_item(iid: str = "#tea", name: str = "Tea", vid: str = "#cup", amount: int | None = 250,
             **data: Any) -> dict[str, Any]:
    vdata: dict[str, Any] = {"name": "Cup"}
    vdata.update(_usd_price(amount) if amount is not None else {"pricing_type": "VARIABLE_PRICING"})
    return {"type": "ITEM", "id": iid, "item_data": {"name": name, "variations": [
        {"type": "ITEM_VARIATION", "id": vid, "item_variation_data": vdata}], **data}}


def cat_tax(tid: str = "#tax", pct: str = "10", **extra: Any) -> dict[str, Any]:
    return {"type": "TAX", "id": tid, "tax_data": {"name": "Tax", "percentage": pct,
                                                   "enabled": True}, **extra}


def cat_order(eng: Engine, lines: list[dict], **extra: Any) -> dict[str, Any]:
    return eng.create_order({"location_id": eng.main_location_id, "line_items": lines, **extra})


@scenario("catalog.object_not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: eng.catalog.retrieve("NOPE"), id="NOPE")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        ids = cat_upsert(eng, cat_item())["ids"]
        assert eng.catalog.retrieve(ids["#cup"])["object"]["type"] == "ITEM_VARIATION"


@scenario("catalog.item_needs_variation")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: cat_upsert(eng, {"type": "ITEM", "id": "#Tea", "item_data": {"name": "Tea"}}),
                 name="Tea", token="#Tea")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        out = cat_upsert(eng, cat_item())
        assert len(out["objects"][0]["item_data"]["variations"]) == 1


@scenario("catalog.reference_unknown")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: cat_upsert(eng, cat_item("#Tea", category_id="#Beverages")),
                 token="#Tea", type="ITEM", ref="#Beverages", attr="category_id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        out = cat_upsert(eng, {"type": "CATEGORY", "id": "#Beverages", "category_data": {"name": "B"}},
                         cat_item("#Tea", category_id="#Beverages"))
        assert out["objects"][1]["item_data"]["category_id"] == out["ids"]["#Beverages"]


@scenario("catalog.version_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        first = cat_upsert(eng, cat_tax())["objects"][0]
        eng.advance(1)
        cat_upsert(eng, dict(cat_tax(first["id"]), version=first["version"]))
        return V(lambda: cat_upsert(eng, dict(cat_tax(first["id"]), version=first["version"])),
                 field="batches[0].objects[0].version")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        first = cat_upsert(eng, cat_tax())["objects"][0]
        second = cat_upsert(eng, dict(cat_tax(first["id"], "12"), version=first["version"]))
        obj = second["objects"][0]
        assert obj["version"] > first["version"] and obj["tax_data"]["percentage"] == "12"
        # Without a version the write wins.
        assert cat_upsert(eng, cat_tax(first["id"], "13"))["objects"][0]["version"] > obj["version"]


@scenario("catalog.new_object_id")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: cat_upsert(eng, cat_tax("NOT_THERE")), id="NOT_THERE", type="TAX",
                 field="batches[0].objects[0].id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        out = cat_upsert(eng, cat_tax("#new"))
        assert out["id_mappings"] == [{"client_object_id": "#new", "object_id": out["objects"][0]["id"]}]


@scenario("catalog.type_mismatch")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        item_id = cat_upsert(eng, cat_item())["ids"]["#tea"]
        return V(lambda: cat_upsert(eng, cat_tax(item_id)), id=item_id, current="ITEM",
                 type="TAX", field="batches[0].objects[0].type")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        tax_id = cat_upsert(eng, cat_tax())["ids"]["#tax"]
        assert cat_upsert(eng, cat_tax(tax_id, "3"))["objects"][0]["id"] == tax_id


@scenario("catalog.duplicate_id")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: cat_upsert(eng, cat_tax("#a"), cat_tax("#a")), id="#a",
                 field="batches[0].objects[1].id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert len(cat_upsert(eng, cat_tax("#a"), cat_tax("#b"))["objects"]) == 2


@scenario("catalog.data_required")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: cat_upsert(eng, {"type": "TAX", "id": "#t"}), detail="Field must be set",
                 field="batches[0].objects[0].tax_data")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        assert cat_upsert(eng, cat_tax())["objects"][0]["tax_data"]["name"] == "Tax"


@scenario("catalog.type_unsupported")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: cat_upsert(eng, {"type": "IMAGE", "id": "#i", "image_data": {}}),
                 type="IMAGE", field="batches[0].objects[0].type")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        out = cat_upsert(eng, {"type": "TIME_PERIOD", "id": "#tp", "time_period_data": {
            "event": "DTSTART:20260101T090000\nDURATION:PT1H"}})
        assert out["objects"][0]["type"] == "TIME_PERIOD"


@scenario("catalog.child_type")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        bad = {"type": "ITEM", "id": "#i", "item_data": {"name": "I", "variations": [cat_tax()]}}
        return V(lambda: cat_upsert(eng, bad), parent="ITEM", expected="ITEM_VARIATION",
                 field="batches[0].objects[0].item_data.variations[0].type")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        out = cat_upsert(eng, {"type": "MODIFIER_LIST", "id": "#ml", "modifier_list_data": {
            "name": "Milk", "modifiers": [{"type": "MODIFIER", "id": "#m", "modifier_data": {
                "name": "Oat", "price_money": usd(50)}}]}})
        (mod,) = out["objects"][0]["modifier_list_data"]["modifiers"]
        assert mod["modifier_data"]["modifier_list_id"] == out["ids"]["#ml"]


@scenario("catalog.delete_cascades")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        ids = cat_upsert(eng, cat_item())["ids"]
        out = eng.catalog_command(lambda: eng.catalog.delete([ids["#tea"], "NOPE"]))
        assert set(out["deleted_object_ids"]) == {ids["#tea"], ids["#cup"]}
        assert catch(lambda: eng.catalog.retrieve(ids["#cup"])).rule_id == "catalog.object_not_found"
        assert eng.catalog.list(["ITEM", "ITEM_VARIATION"]) == []
        found = eng.catalog.search(object_types=["ITEM_VARIATION"], deleted=True, begin_time=None,
                                   query=None)
        assert [(o["id"], o["is_deleted"]) for o in found] == [(ids["#cup"], True)]


@scenario("catalog.children_replaced")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        obj = cat_upsert(eng, cat_item())["objects"][0]
        big = {"type": "ITEM_VARIATION", "id": "#big",
               "item_variation_data": {"name": "Big", **_usd_price(400)}}
        obj["item_data"]["variations"].append(big)
        two = cat_upsert(eng, obj)["objects"][0]
        assert len(two["item_data"]["variations"]) == 2
        keep = two["item_data"]["variations"][1]
        two["item_data"]["variations"] = [keep]
        one = cat_upsert(eng, two)["objects"][0]
        assert [v["id"] for v in one["item_data"]["variations"]] == [keep["id"]]


@scenario("catalog.batch_upsert_partial")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        bad = {"type": "ITEM", "id": "#bad", "item_data": {"name": "Bad"}}
        out = eng.catalog_command(lambda: eng.catalog.upsert([[cat_tax()], [bad, cat_tax("#x")]]))
        assert [o["type"] for o in out["objects"]] == ["TAX"]
        assert out["errors"][0]["code"] == "BAD_REQUEST"
        assert len(eng.catalog.list(["TAX", "ITEM"])) == 1  # the failed batch wrote nothing
        err = catch(lambda: eng.catalog_command(lambda: eng.catalog.upsert([[bad]])))
        assert err.rule_id == "catalog.item_needs_variation"
        assert len(eng.catalog.list(None)) == 1


@scenario("catalog.query_combination")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        query = {"exact_query": {"attribute_name": "name", "attribute_value": "Tea"},
                 "items_for_tax_query": {"tax_ids": ["X"]}}
        return V(lambda: eng.catalog.search(object_types=None, deleted=False, begin_time=None,
                                            query=query),
                 kinds="exact_query, items_for_tax_query")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        cat_upsert(eng, cat_item())
        query = {"exact_query": {"attribute_name": "name", "attribute_value": "Tea"},
                 "prefix_query": {"attribute_name": "name", "attribute_prefix": "t"}}
        found = eng.catalog.search(object_types=None, deleted=False, begin_time=None, query=query)
        assert [o["type"] for o in found] == ["ITEM"]


@scenario("catalog.attribute_not_searchable")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        query = {"exact_query": {"attribute_name": "color", "attribute_value": "red"}}
        return V(lambda: eng.catalog.search(object_types=None, deleted=False, begin_time=None,
                                            query=query),
                 attr="color", allowed="name, description, abbreviation, upc, sku, display_name",
                 field="query.exact_query.attribute_name")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        cat_upsert(eng, cat_item())
        query = {"range_query": {"attribute_name": "price_money", "attribute_min_value": 200,
                                 "attribute_max_value": 300}}
        found = eng.catalog.search(object_types=["ITEM_VARIATION"], deleted=False,
                                   begin_time=None, query=query)
        assert len(found) == 1


@scenario("catalog.version_updated_event")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        eng = Engine(record_events=True)
        cat_upsert(eng, cat_tax())
        catch(lambda: cat_upsert(eng, cat_tax("NOT_THERE")))
        events = eng.drain_events()
        assert [e.type for e in events] == ["catalog.version.updated"]
        assert events[0].data == {"catalog_version": {"updated_at": eng.catalog.updated_at}}


@scenario("order.catalog_object_not_found")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        return V(lambda: cat_order(eng, [{"catalog_object_id": "NOPE", "quantity": "1"}]),
                 kind="Item variation", id="NOPE", field="order.line_items[0].catalog_object_id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        ids = cat_upsert(eng, cat_item())["ids"]
        line = cat_order(eng, [{"catalog_object_id": ids["#cup"], "quantity": "1"}])["line_items"][0]
        assert (line["name"], line["variation_name"], line["base_price_money"]["amount"]) == \
            ("Tea", "Cup", 250)
        eng.catalog_command(lambda: eng.catalog.delete([ids["#tea"]]))
        err = catch(lambda: cat_order(eng, [{"catalog_object_id": ids["#cup"], "quantity": "1"}]))
        assert err.rule_id == "order.catalog_object_not_found"


@scenario("order.catalog_not_at_location")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        obj = dict(cat_item(), present_at_all_locations=False)
        ids = cat_upsert(eng, obj)["ids"]
        return V(lambda: cat_order(eng, [{"catalog_object_id": ids["#cup"], "quantity": "1"}]),
                 id=ids["#cup"], location_id=eng.main_location_id,
                 field="order.line_items[0].catalog_object_id")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        obj = dict(cat_item(), present_at_all_locations=False,
                   present_at_location_ids=[eng.main_location_id])
        obj["item_data"]["variations"][0]["present_at_location_ids"] = [eng.main_location_id]
        ids = cat_upsert(eng, obj)["ids"]
        assert cat_order(eng, [{"catalog_object_id": ids["#cup"], "quantity": "1"}])["total_money"][
            "amount"] == 250


@scenario("order.catalog_variable_price")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        ids = cat_upsert(eng, cat_item(amount=None))["ids"]
        return V(lambda: cat_order(eng, [{"catalog_object_id": ids["#cup"], "quantity": "1"}]),
                 id=ids["#cup"], field="order.line_items[0].base_price_money")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        ids = cat_upsert(eng, cat_item(amount=None), cat_item("#b", "Bun", "#bun", 100))["ids"]
        order = cat_order(eng, [
            {"catalog_object_id": ids["#cup"], "quantity": "1", "base_price_money": usd(333)},
            {"catalog_object_id": ids["#bun"], "quantity": "1", "base_price_money": usd(90)}])
        assert order["total_money"]["amount"] == 423  # a request price overrides the catalog's
        assert order["line_items"][1]["catalog_version"] == eng.catalog.version


@scenario("order.catalog_variable_discount")
class _:
    @staticmethod
    def violate(eng: Engine) -> Violation:
        ids = cat_upsert(eng, {"type": "DISCOUNT", "id": "#d", "discount_data": {
            "name": "Any", "discount_type": "VARIABLE_PERCENTAGE"}})["ids"]
        return V(lambda: cat_order(eng, [line(1000)], discounts=[
            {"catalog_object_id": ids["#d"], "scope": "ORDER"}]),
            id=ids["#d"], field="order.discounts[0].percentage")

    @staticmethod
    def satisfy(eng: Engine) -> None:
        ids = cat_upsert(eng, {"type": "DISCOUNT", "id": "#d", "discount_data": {
            "name": "Any", "discount_type": "VARIABLE_PERCENTAGE"}})["ids"]
        order = cat_order(eng, [line(1000)], discounts=[
            {"catalog_object_id": ids["#d"], "scope": "ORDER", "percentage": "25"}])
        assert order["total_discount_money"]["amount"] == 250
        assert order["discounts"][0]["name"] == "Any"


@scenario("order.auto_apply_taxes")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        ids = cat_upsert(eng, cat_tax(), cat_item(tax_ids=["#tax"]))["ids"]
        lines = [{"catalog_object_id": ids["#cup"], "quantity": "2"},
                 {"catalog_object_id": ids["#cup"], "quantity": "1", "pricing_blocklists": {
                     "blocked_taxes": [{"tax_catalog_object_id": ids["#tax"]}]}}]
        order = cat_order(eng, lines, pricing_options={"auto_apply_taxes": True})
        assert order["total_tax_money"]["amount"] == 50
        assert order["taxes"][0]["auto_applied"] is True
        assert cat_order(eng, lines)["total_tax_money"]["amount"] == 0


@scenario("order.auto_apply_discounts")
class _:
    @staticmethod
    def satisfy(eng: Engine) -> None:
        ids = cat_upsert(
            eng, cat_item(),
            {"type": "DISCOUNT", "id": "#d", "discount_data": {
                "name": "Half", "discount_type": "FIXED_PERCENTAGE", "percentage": "50"}},
            {"type": "PRODUCT_SET", "id": "#set", "product_set_data": {"product_ids_any": ["#tea"]}},
            {"type": "PRICING_RULE", "id": "#rule", "pricing_rule_data": {
                "discount_id": "#d", "match_products_id": "#set"}})["ids"]
        lines = [{"catalog_object_id": ids["#cup"], "quantity": "2"}, line(100)]
        order = cat_order(eng, lines, pricing_options={"auto_apply_discounts": True})
        assert order["total_discount_money"]["amount"] == 250
        assert order["discounts"][0]["pricing_rule_id"] == ids["#rule"]
        lines[0]["pricing_blocklists"] = {"blocked_discounts": [
            {"discount_catalog_object_id": ids["#d"]}]}
        blocked = cat_order(eng, lines, pricing_options={"auto_apply_discounts": True})
        assert blocked["total_discount_money"]["amount"] == 0



# ============================================================================ tests
ENGINE_RULES = sorted(set(CATALOG) - ENFORCED_BY_SIMULATOR)
VIOLABLE = sorted(r for r in SCENARIOS if SCENARIOS[r].violate is not None)
VARIANT_CASES = sorted(
    (rule_id, value)
    for rule_id, sc in SCENARIOS.items()
    for value in sc.variants
)


def _variant_name(rule_id: str) -> str:
    variant = CATALOG[rule_id].variant
    assert variant is not None, f"{rule_id} has no Variant"
    return variant.name


@pytest.mark.parametrize("rule_id", VIOLABLE)
def test_rule_violated(rule_id: str) -> None:
    sc = SCENARIOS[rule_id]
    eng = Engine(variants=sc.violate_variants)
    result = sc.violate(eng)
    assert isinstance(result, Violation), "violate must return V(...)"
    err, ctx = result
    assert err.rule_id == rule_id, str(err)
    rule = CATALOG[rule_id]
    assert rule.error is not None
    expected = rule.error.render(**ctx)
    assert err.status == rule.error.status
    assert len(err.errors) == 1
    got = err.first
    assert (got.category, got.code, got.field, got.detail) == \
        (expected.category, expected.code, expected.field, expected.detail)
    assert "{" not in (got.detail or ""), f"unrendered placeholder in {got.detail!r}"
    assert "{" not in (got.field or ""), f"unrendered placeholder in {got.field!r}"
    body = err.body()
    assert body["errors"][0] == expected.to_json()


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_rule_satisfied(rule_id: str) -> None:
    SCENARIOS[rule_id].satisfy(Engine())


@pytest.mark.parametrize("rule_id,value", VARIANT_CASES)
def test_rule_variant(rule_id: str, value: str) -> None:
    name = _variant_name(rule_id)
    eng = Engine(variants={name: value})
    assert eng.variants[name] == value
    SCENARIOS[rule_id].variants[value](eng)


def test_every_rule_has_scenarios() -> None:
    problems: list[str] = []
    for rule_id in ENGINE_RULES:
        if rule_id not in SCENARIOS:
            problems.append(f"{rule_id}: no scenario")
            continue
        rule, sc = CATALOG[rule_id], SCENARIOS[rule_id]
        if rule.error is not None and sc.violate is None:
            problems.append(f"{rule_id}: has an error but violate=None")
        if rule.error is None and sc.violate is not None:
            problems.append(f"{rule_id}: rejects nothing but has a violate")
        if rule.variant is not None:
            wanted = set(rule.variant.values) - {rule.variant.default}
            missing = wanted - set(sc.variants)
            if missing:
                problems.append(f"{rule_id}: no check for variant value(s) {sorted(missing)}")
        extra = set(sc.variants) - (set(rule.variant.values) if rule.variant else set())
        if extra:
            problems.append(f"{rule_id}: checks unknown variant value(s) {sorted(extra)}")
        if sc.violate_variants:
            for name, value in sc.violate_variants.items():
                if name not in VARIANTS or value not in VARIANTS[name][1].values:
                    problems.append(f"{rule_id}: bad violate_variants {name}={value}")
    for rule_id in SCENARIOS:
        if rule_id not in CATALOG:
            problems.append(f"{rule_id}: scenario for a rule not in the catalog")
        if rule_id in ENFORCED_BY_SIMULATOR:
            problems.append(f"{rule_id}: both a scenario and ENFORCED_BY_SIMULATOR")
    for rule_id in ENFORCED_BY_SIMULATOR:
        if rule_id not in CATALOG:
            problems.append(f"{rule_id}: ENFORCED_BY_SIMULATOR names an unknown rule")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rule_id", sorted(CATALOG))
def test_rule_metadata(rule_id: str) -> None:
    rule = CATALOG[rule_id]
    assert rule.sources, f"{rule_id} has no source"
    unknown = [s for s in rule.sources if s not in SOURCES]
    assert not unknown, f"{rule_id}: sources {unknown} not in SOURCES"
    assert rule.confidence in set(Confidence) and len(set(Confidence)) == 3
    assert str(rule.confidence) in {"CONFIRMED", "REPORTED", "INFERRED"}
    assert rule.id.split(".")[0] == rule.resource or rule.id.startswith("pay_order.")
    if rule.error is not None:
        assert rule.error.wording in {"SEEN", "DOC", "GUESS"}
        assert 400 <= rule.error.status < 500
    if rule.variant is not None:
        assert rule.variant.default in rule.variant.values
        assert len(rule.variant.values) >= 2
    rendered = rule.to_json()
    assert rendered["source"] == [SOURCES[s] for s in rule.sources]

"""Focused unit tests of the Engine: computed fields, sparse updates, PayOrder, timers,
snapshots, determinism and events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orderfsm.clock import ManualClock
from orderfsm.engine import Engine
from orderfsm.errors import SquareError

USD = "USD"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": USD}


def line(amount: int = 1000, qty: str = "1", name: str = "Item", **extra: Any) -> dict[str, Any]:
    return {"name": name, "quantity": qty, "base_price_money": usd(amount), **extra}


PICKUP = {"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "Ann"}}}


class Client:
    """Small request helpers around one engine."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.n = 0

    def key(self) -> str:
        self.n += 1
        return f"key-{self.n}"

    def order(self, *, amount: int = 1000, pickup: bool = True, lines: list | None = None,
              **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"location_id": self.eng.main_location_id,
                                "line_items": lines if lines is not None else [line(amount)]}
        if pickup:
            body["fulfillments"] = [json.loads(json.dumps(PICKUP))]
        body.update(extra)
        return self.eng.create_order(body)

    def pay(self, order_id: str | None, amount: int, *, autocomplete: bool = True,
            source: str = "cnon:card-nonce-ok", **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"source_id": source, "idempotency_key": self.key(),
                                "amount_money": usd(amount), "autocomplete": autocomplete}
        if order_id is not None:
            body["order_id"] = order_id
        body.update(extra)
        return self.eng.create_payment(body)

    def refund(self, payment_id: str, amount: int, **extra: Any) -> dict[str, Any]:
        return self.eng.refund_payment({"payment_id": payment_id, "amount_money": usd(amount),
                                        "idempotency_key": self.key(), **extra})

    def update(self, order_id: str, clear: list[str] | None = None, **fields: Any) -> dict[str, Any]:
        fields.setdefault("version", self.eng.get_order(order_id)["version"])
        return self.eng.update_order(order_id, fields, clear)


@pytest.fixture
def eng() -> Engine:
    return Engine()


@pytest.fixture
def c(eng: Engine) -> Client:
    return Client(eng)


# ============================================================================ computed fields
def test_total_money_with_quantity(c: Client) -> None:
    o = c.order(lines=[line(1000, qty="2")], pickup=False)
    li = o["line_items"][0]
    assert li["gross_sales_money"] == usd(2000)
    assert li["total_money"] == usd(2000)
    assert o["total_money"] == usd(2000)
    assert o["net_amount_due_money"] == usd(2000)
    assert "tenders" not in o


def test_decimal_quantity_rounds_half_to_even(c: Client) -> None:
    # Square rounds half to even ("Bankers' Rounding",
    # https://developer.squareup.com/docs/orders-api/price-adjustments), not half up.
    o = c.order(lines=[line(333, qty="1.5")], pickup=False)  # 499.5 -> 500
    assert o["total_money"] == usd(500)
    o = c.order(lines=[line(5, qty="0.5")], pickup=False)  # 2.5 -> 2 (half up would give 3)
    assert o["total_money"] == usd(2)


def test_taxes_discounts_service_charges(c: Client) -> None:
    o = c.order(
        pickup=False,
        lines=[line(1000, qty="2", name="A"), line(500, name="B")],
        taxes=[{"uid": "tax", "name": "Sales", "percentage": "10", "scope": "ORDER"}],
        discounts=[{"uid": "disc", "name": "Ten off", "percentage": "10", "scope": "ORDER"}],
        service_charges=[{"uid": "sc", "name": "Bag", "amount_money": usd(100)}],
    )
    # gross 2000 + 500; discount 10 %: 200 + 50; tax 10 % of the rest: 180 + 45
    a, b = o["line_items"]
    assert a["total_discount_money"] == usd(200) and b["total_discount_money"] == usd(50)
    assert a["total_tax_money"] == usd(180) and b["total_tax_money"] == usd(45)
    assert a["total_money"] == usd(1980) and b["total_money"] == usd(495)
    assert o["discounts"][0]["applied_money"] == usd(250)
    assert o["taxes"][0]["applied_money"] == usd(225)
    assert o["service_charges"][0]["applied_money"] == usd(100)
    assert o["service_charges"][0]["total_money"] == usd(100)
    assert o["total_discount_money"] == usd(250)
    assert o["total_tax_money"] == usd(225)
    assert o["total_service_charge_money"] == usd(100)
    assert o["total_tip_money"] == usd(0)
    assert o["total_money"] == usd(2250 + 225 + 100)
    assert o["net_amounts"]["total_money"] == usd(2575)


def test_line_item_scoped_tax_and_fixed_discount(c: Client) -> None:
    o = c.order(
        pickup=False,
        lines=[line(1000, name="A", applied_taxes=[{"tax_uid": "t"}]),
               line(1000, name="B", applied_discounts=[{"discount_uid": "d"}])],
        taxes=[{"uid": "t", "name": "T", "percentage": "8.5"}],
        discounts=[{"uid": "d", "name": "D", "type": "FIXED_AMOUNT", "amount_money": usd(300)}],
    )
    a, b = o["line_items"]
    assert a["total_tax_money"] == usd(85) and a["total_discount_money"] == usd(0)
    assert b["total_tax_money"] == usd(0) and b["total_discount_money"] == usd(300)
    assert o["total_money"] == usd(1085 + 700)


def test_inclusive_tax_is_not_added(c: Client) -> None:
    o = c.order(pickup=False, lines=[line(1100)],
                taxes=[{"uid": "t", "name": "VAT", "percentage": "10", "type": "INCLUSIVE",
                        "scope": "ORDER"}])
    assert o["total_money"] == usd(1100)
    assert o["total_tax_money"] == usd(100)


def test_percentage_service_charge(c: Client) -> None:
    o = c.order(pickup=False, lines=[line(2000)],
                service_charges=[{"uid": "s", "name": "Svc", "percentage": "12.5"}])
    assert o["total_service_charge_money"] == usd(250)
    assert o["total_money"] == usd(2250)


def test_net_amount_due_and_tenders(c: Client, eng: Engine) -> None:
    o = c.order()
    a = c.pay(o["id"], 600, autocomplete=False)
    o = eng.get_order(o["id"])
    # APPROVED payments are tenders but do not reduce what is due.
    assert [t["payment_id"] for t in o["tenders"]] == [a["id"]]
    assert o["tenders"][0]["type"] == "CARD"
    assert o["tenders"][0]["transaction_id"] == o["id"]
    assert o["tenders"][0]["card_details"]["status"] == "AUTHORIZED"
    assert o["net_amount_due_money"] == usd(1000)
    eng.complete_payment(a["id"])
    o = eng.get_order(o["id"])
    assert o["net_amount_due_money"] == usd(400)
    assert o["tenders"][0]["card_details"]["status"] == "CAPTURED"
    b = c.pay(o["id"], 400, source="CASH", cash_details={"buyer_supplied_money": usd(500)})
    o = eng.get_order(o["id"])
    assert o["net_amount_due_money"] == usd(0)
    assert [t["type"] for t in o["tenders"]] == ["CARD", "CASH"]
    assert o["tenders"][1]["cash_details"]["change_back_money"] == usd(100)
    assert o["tenders"][1]["payment_id"] == b["id"]


def test_canceled_and_failed_payments_are_not_tenders(c: Client, eng: Engine) -> None:
    o = c.order()
    a = c.pay(o["id"], 1000, autocomplete=False)
    eng.cancel_payment(a["id"])
    with pytest.raises(SquareError):
        c.pay(o["id"], 1000, source="cnon:card-nonce-declined")
    o = eng.get_order(o["id"])
    assert "tenders" not in o
    assert o["net_amount_due_money"] == usd(1000)


def test_return_order_fields(c: Client, eng: Engine) -> None:
    o = c.order()
    p = c.pay(o["id"], 1000)
    r = c.refund(p["id"], 300, reason="broken")
    ret = eng.get_order(r["order_id"])
    assert ret["state"] == "COMPLETED" and ret["version"] == 1 and ret["closed_at"]
    assert len(ret["returns"]) == 1
    assert ret["returns"][0]["source_order_id"] == o["id"]
    rli = ret["returns"][0]["return_line_items"]
    assert len(rli) == 1 and rli[0]["total_money"] == usd(300)
    assert ret["return_amounts"]["total_money"] == usd(300)
    assert ret["net_amounts"]["total_money"] == usd(-300)
    assert ret["total_money"] == usd(0)
    assert ret["net_amount_due_money"] == usd(0)
    assert ret["refunds"][0]["id"] == r["id"]
    assert ret["refunds"][0]["status"] == "PENDING"
    assert ret["refunds"][0]["reason"] == "broken"
    assert ret["refunds"][0]["tender_id"] == p["id"]
    eng.advance(10)
    ret = eng.get_order(r["order_id"])
    assert ret["refunds"][0]["status"] == "APPROVED"  # the v1 Refund status set
    assert ret["version"] == 2
    # The original order is untouched.
    assert eng.get_order(o["id"])["version"] == 2
    assert "returns" not in eng.get_order(o["id"])


# ============================================================================ sparse updates
def test_sparse_update_by_uid(c: Client) -> None:
    o = c.order(pickup=False, lines=[line(100, name="A", note="a"), line(200, name="B")])
    ua, ub = (li["uid"] for li in o["line_items"])
    o = c.update(o["id"], line_items=[{"uid": ub, "quantity": "3"}, line(50, uid="C", name="C")])
    names = {li["uid"]: (li["name"], li["quantity"]) for li in o["line_items"]}
    assert names == {ua: ("A", "1"), ub: ("B", "3"), "C": ("C", "1")}
    assert o["line_items"][0]["note"] == "a"
    assert o["total_money"] == usd(100 + 600 + 50)
    assert o["version"] == 2


def test_new_line_item_without_uid_gets_one(c: Client) -> None:
    o = c.order(pickup=False)
    o = c.update(o["id"], line_items=[line(5, name="X")])
    assert len(o["line_items"]) == 2 and all(li["uid"] for li in o["line_items"])


def test_fields_to_clear(c: Client) -> None:
    o = c.order(pickup=False, lines=[line(100, note="keep?"), line(200)],
                metadata={"a": "1", "b": "2"})
    u1, u2 = (li["uid"] for li in o["line_items"])
    o = c.update(o["id"], clear=[f"line_items[{u2}]", f"line_items[{u1}].note", "metadata.a"])
    assert [li["uid"] for li in o["line_items"]] == [u1]
    assert "note" not in o["line_items"][0]
    assert o["metadata"] == {"b": "2"}
    assert o["total_money"] == usd(100)
    # Unknown paths are ignored.
    o = c.update(o["id"], clear=["line_items[nope]", "metadata.zzz", "ticket_name"])
    assert [li["uid"] for li in o["line_items"]] == [u1]


def test_fields_to_clear_and_patch_in_one_request(c: Client) -> None:
    o = c.order(pickup=False, metadata={"a": "1"})
    o = c.update(o["id"], clear=["metadata"], metadata={"b": "2"})
    assert o["metadata"] == {"b": "2"}


def test_explicit_null_clears(c: Client) -> None:
    o = c.order(pickup=False, lines=[line(100, note="n")], metadata={"a": "1", "b": "2"},
                reference_id="ref", ticket_name="t")
    uid = o["line_items"][0]["uid"]
    o = c.update(o["id"], reference_id=None, metadata={"a": None},
                 line_items=[{"uid": uid, "note": None}])
    assert "reference_id" not in o
    assert o["metadata"] == {"b": "2"}
    assert "note" not in o["line_items"][0]
    assert o["ticket_name"] == "t"


def test_read_only_fields_are_ignored(c: Client) -> None:
    o = c.order(pickup=False)
    o2 = c.update(o["id"], total_money=usd(1), id="other", created_at="2000-01-01T00:00:00Z")
    assert o2["id"] == o["id"] and o2["total_money"] == usd(1000)
    assert o2["created_at"] == o["created_at"]


def test_update_does_not_alias_the_request(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False)
    meta = {"a": "1"}
    c.update(o["id"], metadata=meta)
    meta["a"] = "changed"
    assert eng.get_order(o["id"])["metadata"] == {"a": "1"}
    got = eng.get_order(o["id"])
    got["metadata"]["a"] = "mutated"
    assert eng.get_order(o["id"])["metadata"] == {"a": "1"}


# ============================================================================ clone / calculate
def test_clone_order_is_a_draft_copy(c: Client, eng: Engine) -> None:
    o = c.order(taxes=[{"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}],
                discounts=[{"uid": "d", "name": "D", "amount_money": usd(100), "scope": "ORDER"}],
                metadata={"m": "1"}, reference_id="r1")
    c.pay(o["id"], 990)
    src = eng.get_order(o["id"])
    cl = eng.clone_order(o["id"], version=src["version"])
    assert cl["state"] == "DRAFT" and cl["version"] == 1
    assert cl["id"] != o["id"]
    assert cl["line_items"] == src["line_items"]
    assert cl["taxes"] == src["taxes"] and cl["discounts"] == src["discounts"]
    assert cl["reference_id"] == "r1"
    assert "fulfillments" not in cl and "metadata" not in cl and "tenders" not in cl
    assert cl["net_amount_due_money"] == usd(990)
    # The clone is independent.
    c.update(cl["id"], line_items=[line(1)])
    assert eng.get_order(o["id"]) == src
    with pytest.raises(SquareError) as info:
        eng.clone_order(o["id"], version=1)
    assert info.value.rule_id == "order.version_mismatch"


def test_calculate_order_stores_nothing(eng: Engine) -> None:
    before = eng.snapshot()
    out = eng.calculate_order({"location_id": "main",
                               "line_items": [line(1000, qty="3")],
                               "taxes": [{"uid": "t", "name": "T", "percentage": "5",
                                          "scope": "ORDER"}]})
    assert out["total_money"] == usd(3150)
    assert out["total_tax_money"] == usd(150)
    assert "id" not in out
    assert eng.snapshot() == before
    with pytest.raises(SquareError) as info:
        eng.calculate_order({"line_items": []})
    assert info.value.rule_id == "order.location_required"


# ============================================================================ PayOrder
def test_pay_order_split_payments(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False, lines=[line(2000)])
    assert o["version"] == 1
    a = c.pay(o["id"], 1500, autocomplete=False)
    b = c.pay(o["id"], 500, autocomplete=False)
    assert (a["status"], b["status"]) == ("APPROVED", "APPROVED")
    assert eng.get_order(o["id"])["version"] == 3
    done = eng.pay_order(o["id"], [a["id"], b["id"]], order_version=3)
    assert done["version"] == 4  # as in Square's PayOrderResponse example
    assert done["state"] == "COMPLETED" and done["closed_at"]
    assert done["net_amount_due_money"] == usd(0)
    assert done["net_amounts"]["total_money"] == usd(2000)
    assert [t["payment_id"] for t in done["tenders"]] == [a["id"], b["id"]]
    for p in (a, b):
        q = eng.get_payment(p["id"])
        assert q["status"] == "COMPLETED" and q["card_details"]["status"] == "CAPTURED"
        assert q["receipt_url"] and q["processing_fee"]


def test_pay_order_cancels_unlisted_approved(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False, lines=[line(600, name="A"), line(400, name="B")])
    a = c.pay(o["id"], 600, autocomplete=False)
    b = c.pay(o["id"], 400, autocomplete=False)
    # The buyer drops B: the order now totals 600, which A alone covers.
    c.update(o["id"], clear=[f"line_items[{o['line_items'][1]['uid']}]"])
    done = eng.pay_order(o["id"], [a["id"]])
    assert done["state"] == "COMPLETED"
    assert eng.get_payment(a["id"])["status"] == "COMPLETED"
    voided = eng.get_payment(b["id"])
    assert voided["status"] == "CANCELED" and voided["card_details"]["status"] == "VOIDED"
    assert [t["payment_id"] for t in done["tenders"]] == [a["id"]]


def test_pay_order_zero_total_without_payments(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False, lines=[line(0)])
    done = eng.pay_order(o["id"], [])
    assert done["state"] == "COMPLETED" and done["version"] == 2
    assert "tenders" not in done
    # With a pickup it stays OPEN but counts as paid: the pickup may complete.
    p = c.order(lines=[])
    paid = eng.pay_order(p["id"], None)
    assert paid["state"] == "OPEN"
    uid = p["fulfillments"][0]["uid"]
    done = c.update(p["id"], fulfillments=[{"uid": uid, "state": "COMPLETED"}], state="COMPLETED")
    assert done["state"] == "COMPLETED"


def test_pay_order_rejection_changes_nothing(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False)
    a = c.pay(o["id"], 600, autocomplete=False)
    before = eng.snapshot()
    with pytest.raises(SquareError) as info:
        eng.pay_order(o["id"], [a["id"]])
    assert info.value.rule_id == "pay_order.amount_mismatch"
    assert eng.snapshot() == before


# ============================================================================ timers
def test_delayed_capture_with_delay_action_complete(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False)
    p = c.pay(o["id"], 1000, autocomplete=False, delay_duration="PT10M", delay_action="COMPLETE")
    assert p["status"] == "APPROVED"
    assert p["delayed_until"] == "2026-01-05T15:10:00.000Z"
    assert p["card_details"]["status"] == "AUTHORIZED"
    assert eng.advance(599) == 0
    assert eng.get_payment(p["id"])["status"] == "APPROVED"
    assert eng.advance(1) == 1
    q = eng.get_payment(p["id"])
    assert q["status"] == "COMPLETED" and q["card_details"]["status"] == "CAPTURED"
    assert q["updated_at"] == "2026-01-05T15:10:00.000Z"
    o = eng.get_order(o["id"])
    assert o["state"] == "COMPLETED" and o["net_amount_due_money"] == usd(0)


def test_delay_action_cancel_marks_expired(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False)
    p = c.pay(o["id"], 1000, autocomplete=False, delay_duration="PT1M")
    eng.advance(3600)
    q = eng.get_payment(p["id"])
    assert q["status"] == "CANCELED" and q["approved_money"] == usd(0)
    assert q["updated_at"] == "2026-01-05T15:01:00.000Z"  # fired at its own due time
    with pytest.raises(SquareError) as info:
        eng.complete_payment(p["id"])
    assert info.value.rule_id == "payment.expired"
    assert eng.get_order(o["id"])["state"] == "OPEN"


def test_update_payment_delay_action(c: Client, eng: Engine) -> None:
    p = c.pay(None, 500, autocomplete=False, delay_duration="PT1M")
    eng.update_payment(p["id"], {"delay_action": "COMPLETE"})
    eng.advance(60)
    assert eng.get_payment(p["id"])["status"] == "COMPLETED"


def test_bank_nonce_pending_then_completed(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False)
    p = c.pay(o["id"], 1000, source="bnon:bank-nonce-ok")
    assert p["status"] == "PENDING" and p["source_type"] == "BANK_ACCOUNT"
    assert "receipt_number" not in p
    o1 = eng.get_order(o["id"])
    assert o1["state"] == "OPEN" and o1["net_amount_due_money"] == usd(1000)
    assert o1["tenders"][0]["type"] == "BANK_ACCOUNT"
    eng.advance(59)
    assert eng.get_payment(p["id"])["status"] == "PENDING"
    eng.advance(1)
    q = eng.get_payment(p["id"])
    assert q["status"] == "COMPLETED" and q["receipt_number"]
    o2 = eng.get_order(o["id"])
    assert o2["state"] == "COMPLETED" and o2["net_amount_due_money"] == usd(0)


def test_bank_nonce_failure(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False)
    p = c.pay(o["id"], 1000, source="bnon:bank-nonce-failure")
    eng.advance(60)
    assert eng.get_payment(p["id"])["status"] == "FAILED"
    o = eng.get_order(o["id"])
    assert o["state"] == "OPEN" and "tenders" not in o
    assert "_bank_fails" not in eng.payments[p["id"]]


def test_refund_settles_after_ten_seconds(c: Client, eng: Engine) -> None:
    o = c.order()
    p = c.pay(o["id"], 1000)
    r = c.refund(p["id"], 400)
    assert r["status"] == "PENDING"
    eng.advance(9.999)
    assert eng.get_refund(r["id"])["status"] == "PENDING"
    eng.advance(0.001)
    done = eng.get_refund(r["id"])
    assert done["status"] == "COMPLETED"
    assert done["updated_at"] == "2026-01-05T15:00:10.000Z"
    assert eng.get_payment(p["id"])["refunded_money"] == usd(400)


def test_refund_settle_delay_is_configurable(c: Client) -> None:
    from datetime import timedelta

    eng = Engine(refund_settle_delay=timedelta(seconds=3))
    c = Client(eng)
    p = c.pay(None, 100)
    r = c.refund(p["id"], 100)
    eng.advance(3)
    assert eng.get_refund(r["id"])["status"] == "COMPLETED"


@pytest.mark.parametrize("finish,status", [("reject_refund", "REJECTED"), ("fail_refund", "FAILED")])
def test_reject_or_fail_restores_refundable_amount(c: Client, eng: Engine, finish: str,
                                                   status: str) -> None:
    o = c.order()
    p = c.pay(o["id"], 1000)
    keep = c.refund(p["id"], 300)
    gone = c.refund(p["id"], 700)
    assert eng.get_payment(p["id"])["refunded_money"] == usd(1000)
    with pytest.raises(SquareError) as info:
        c.refund(p["id"], 1)
    assert info.value.rule_id == "refund.amount_exceeds"
    token = eng.get_payment(p["id"])["version_token"]
    assert getattr(eng, finish)(gone["id"])["status"] == status
    q = eng.get_payment(p["id"])
    assert q["refunded_money"] == usd(300)
    assert q["version_token"] != token
    assert q["refund_ids"] == [keep["id"], gone["id"]]
    ret = eng.get_order(gone["order_id"])
    assert ret["refunds"][0]["status"] == status
    if status == "REJECTED":
        assert c.refund(p["id"], 700)["status"] == "PENDING"
    else:
        with pytest.raises(SquareError) as info:
            c.refund(p["id"], 700)
        assert info.value.rule_id == "refund.after_failed"
    # Rejecting the only refund drops refunded_money altogether.
    p2 = c.pay(None, 50)
    r2 = c.refund(p2["id"], 50)
    getattr(eng, finish)(r2["id"])
    assert "refunded_money" not in eng.get_payment(p2["id"])


def test_rejected_refund_never_settles_later(c: Client, eng: Engine) -> None:
    p = c.pay(None, 100)
    r = c.refund(p["id"], 100)
    eng.reject_refund(r["id"])
    eng.advance(3600)
    assert eng.get_refund(r["id"])["status"] == "REJECTED"


def test_advance_rejects_negative_and_real_clock() -> None:
    from orderfsm.clock import SystemClock

    with pytest.raises(ValueError):
        Engine().advance(-1)
    with pytest.raises(TypeError):
        Engine(clock=SystemClock()).advance(1)


# ============================================================================ snapshot
def _busy_engine(seed: int | str = 7, **kw: Any) -> Engine:
    eng = Engine(seed=seed, **kw)
    c = Client(eng)
    o = c.order(metadata={"k": "v"})
    p = c.pay(o["id"], 1000)
    c.refund(p["id"], 250)
    d = c.order(pickup=False)
    c.pay(d["id"], 400, autocomplete=False, delay_duration="PT5M")
    c.pay(None, 300, source="bnon:bank-nonce-ok")
    with pytest.raises(SquareError):
        c.pay(None, 100, source="cnon:card-nonce-declined")
    eng.advance(5)
    uid = o["fulfillments"][0]["uid"]
    c.update(o["id"], fulfillments=[{"uid": uid, "state": "RESERVED"}])
    return eng


def test_snapshot_restore_round_trip() -> None:
    eng = _busy_engine()
    snap = eng.snapshot()
    json.dumps(snap)  # JSON-ready
    copy = Engine.restore(json.loads(json.dumps(snap)))
    assert copy.snapshot() == snap
    # Both continue identically, including pending timers and id generation.
    for e in (eng, copy):
        e.advance(600)
        c = Client(e)
        c.pay(None, 123)
    assert copy.snapshot() == eng.snapshot()
    assert {p["status"] for p in copy.payments.values()} >= {"CANCELED", "COMPLETED", "FAILED"}


def test_restore_keeps_indexes_and_variants() -> None:
    eng = _busy_engine(variants={"cancel_after_payment": "never"})
    copy = Engine.restore(eng.snapshot())
    assert copy.variants["cancel_after_payment"] == "never"
    assert list(copy.payment_index.walk()) == list(eng.payment_index.walk())
    assert list(copy.refund_index.walk()) == list(eng.refund_index.walk())
    for state in (None, "OPEN", "COMPLETED"):
        assert copy.order_index.count(eng.main_location_id, state, "created_at") == \
            eng.order_index.count(eng.main_location_id, state, "created_at")


def test_snapshot_is_a_copy() -> None:
    eng = _busy_engine()
    snap = eng.snapshot()
    next(iter(snap["orders"].values()))["state"] = "MUTATED"
    assert eng.snapshot() != snap


# ============================================================================ determinism
def _script(eng: Engine) -> None:
    c = Client(eng)
    o = c.order()
    p = c.pay(o["id"], 1000)
    r = c.refund(p["id"], 1000)
    eng.advance(10)
    uid = o["fulfillments"][0]["uid"]
    c.update(o["id"], fulfillments=[{"uid": uid, "state": "CANCELED"}])
    c.update(o["id"], state="CANCELED")
    eng.clone_order(o["id"])
    assert eng.get_refund(r["id"])["status"] == "COMPLETED"


def test_same_seed_same_snapshot() -> None:
    a, b = Engine(seed=42), Engine(seed=42)
    _script(a)
    _script(b)
    assert a.snapshot() == b.snapshot()


def test_different_seeds_different_ids() -> None:
    a, b = Engine(seed=1), Engine(seed=2)
    _script(a)
    _script(b)
    assert a.merchant_id != b.merchant_id
    assert a.main_location_id != b.main_location_id
    assert set(a.orders).isdisjoint(b.orders)
    assert set(a.payments).isdisjoint(b.payments)


def test_rejected_command_does_not_consume_ids() -> None:
    a, b = Engine(seed=3), Engine(seed=3)
    with pytest.raises(SquareError):
        a.create_order({"location_id": "main", "fulfillments": [PICKUP, PICKUP]})
    assert a.create_order({"location_id": "main"})["id"] == b.create_order({"location_id": "main"})["id"]


def test_ids_look_like_square() -> None:
    eng = Engine()
    c = Client(eng)
    o = c.order()
    p = c.pay(o["id"], 1000)
    assert len(o["id"]) == 29 and o["id"].endswith("eY")
    assert len(p["id"]) == 29
    r = c.refund(p["id"], 1)
    assert r["id"].startswith(p["id"] + "_")


# ============================================================================ events
def test_events_of_the_seed_story() -> None:
    eng = Engine(record_events=True, clock=ManualClock())
    c = Client(eng)
    o = c.order()
    p = c.pay(o["id"], 1000)
    r = c.refund(p["id"], 1000)
    eng.advance(10)
    with pytest.raises(SquareError):
        c.update(o["id"], state="CANCELED")
    uid = o["fulfillments"][0]["uid"]
    c.update(o["id"], fulfillments=[{"uid": uid, "state": "CANCELED"}])
    c.update(o["id"], state="CANCELED")
    events = eng.drain_events()
    assert [(e.type, e.object_id) for e in events] == [
        ("order.created", o["id"]),
        ("payment.created", p["id"]),
        ("order.updated", o["id"]),
        # The refund's return order is updated with it (refunds-api webhooks page, S17).
        ("refund.created", r["id"]),
        ("order.updated", r["order_id"]),
        ("payment.updated", p["id"]),
        ("refund.updated", r["id"]),
        ("order.updated", r["order_id"]),
        ("order.updated", o["id"]),
        ("order.fulfillment.updated", o["id"]),
        ("order.updated", o["id"]),
    ]
    assert eng.events == []
    created, pay_created, upd = events[0], events[1], events[2]
    assert created.data["order_created"]["version"] == 1
    assert created.data["order_created"]["state"] == "OPEN"
    assert pay_created.data["payment"]["status"] == "COMPLETED"
    assert upd.data["order_updated"]["version"] == 2
    assert events[3].data["refund"]["status"] == "PENDING"
    assert events[3].data["refund"]["version"] == 1
    assert events[4].data["order_updated"]["version"] == 1
    assert events[6].data["refund"]["status"] == "COMPLETED"
    assert events[6].data["refund"]["version"] == 2
    assert events[6].at == eng.clock.now()
    assert events[7].data["order_updated"]["version"] == 2
    fu = events[9].data["order_fulfillment_updated"]
    assert fu["fulfillment_update"] == [
        {"fulfillment_uid": uid, "old_state": "PROPOSED", "new_state": "CANCELED"}]
    assert events[10].data["order_updated"]["state"] == "CANCELED"
    assert all(e.location_id == eng.main_location_id for e in events)


def test_no_events_unless_recorded(c: Client, eng: Engine) -> None:
    o = c.order()
    c.pay(o["id"], 1000)
    assert eng.events == []


def test_rejected_command_emits_nothing() -> None:
    eng = Engine(record_events=True)
    with pytest.raises(SquareError):
        eng.create_order({"location_id": "main", "fulfillments": [{"type": "PICKUP"}]})
    assert eng.events == []


def test_declined_payment_emits_payment_created_only() -> None:
    eng = Engine(record_events=True)
    c = Client(eng)
    with pytest.raises(SquareError) as info:
        c.pay(None, 100, source="cnon:card-nonce-declined")
    assert info.value.rule_id == "payment.card_declined"
    assert [e.type for e in eng.events] == ["payment.created"]
    assert eng.events[0].data["payment"]["status"] == "FAILED"


# ============================================================================ regressions
def test_pending_bank_payment_counts_as_processed_for_cancel(c: Client, eng: Engine) -> None:
    """A PENDING (ACH) payment cannot be voided and settles by itself, so an order holding one
    must not become CANCELED under order.cancel_after_payment's terms: otherwise the transfer
    later completes on a CANCELED order (found by test_engine_properties)."""
    # Without fulfillments: nothing can be canceled first, so the order stays uncancelable.
    o = c.order(pickup=False)
    p = c.pay(o["id"], 1000, source="bnon:bank-nonce-ok")
    with pytest.raises(SquareError) as info:
        c.update(o["id"], state="CANCELED")
    assert info.value.rule_id == "order.cancel_after_payment"
    # With a pickup moved to FAILED in the same request: still refused (it is not CANCELED).
    f = c.order()
    q = c.pay(f["id"], 1000, source="bnon:bank-nonce-ok")
    uid = f["fulfillments"][0]["uid"]
    with pytest.raises(SquareError) as info:
        c.update(f["id"], state="CANCELED", fulfillments=[{"uid": uid, "state": "FAILED"}])
    assert info.value.rule_id == "order.cancel_after_payment"
    # Line items are locked as for a captured payment.
    with pytest.raises(SquareError) as info:
        c.update(f["id"], line_items=[line(1)])
    assert info.value.rule_id == "order.line_items_locked"
    eng.advance(60)
    assert eng.get_payment(p["id"])["status"] == "COMPLETED"
    assert eng.get_payment(q["id"])["status"] == "COMPLETED"
    assert eng.get_order(o["id"])["state"] == "COMPLETED"
    assert eng.get_order(f["id"])["state"] == "OPEN"


def test_failed_bank_payment_releases_the_order(c: Client, eng: Engine) -> None:
    o = c.order(pickup=False)
    c.pay(o["id"], 1000, source="bnon:bank-nonce-failure")
    eng.advance(60)
    assert c.update(o["id"], state="CANCELED")["state"] == "CANCELED"


def test_terminal_error_details_are_rendered(c: Client, eng: Engine) -> None:
    """Rejections raised without a context used to leave {placeholders} in the detail."""
    o = c.order(pickup=False)
    c.update(o["id"], state="CANCELED")
    with pytest.raises(SquareError) as info:
        c.update(o["id"], metadata={"a": "b"})
    assert info.value.detail == "Orders in state CANCELED cannot be updated."
    p = c.pay(None, 100, source="bnon:bank-nonce-ok")
    with pytest.raises(SquareError) as info:
        eng.cancel_payment(p["id"])
    assert info.value.detail == f"Payment {p['id']} is PENDING and cannot be changed."

"""The hypothesis state machine: random SDK call sequences, oracle and server side by side.

Every rule builds its calls (:class:`Call`) from the oracle's current state (the amount still
due, the order's version, which payments are APPROVED), runs them on both sides through the
:class:`Session`, and lets the session compare. Most rules make one call; a few follow a common
integration flow (pay an order in full, refund and cancel, two partial refunds) so that
sequences reach paid and refunded states often. Parameters are chosen so that most calls are
plausible and some are deliberately wrong (stale versions, wrong amounts, declined cards),
because the rules are about what gets rejected as much as about what succeeds.
"""

from __future__ import annotations

from typing import Any, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from ..lifecycles.order import TERMINAL_FULFILLMENT
from ._calls import KEY, LOCATION, Call, NamedKey, Produce, Ref, Token
from ._session import Session

__all__ = ["ConformanceMachine", "MachineContext"]

PICKUP_DETAILS = {"recipient": {"display_name": "Conformance"}, "pickup_at": "2026-02-01T12:00:00Z"}
CARD_OK = "cnon:card-nonce-ok"
CARD_DECLINED = "cnon:card-nonce-declined"

INDEX = st.integers(min_value=0, max_value=5)
# Which object a rule acts on: an index (0 = newest) among the live ones (orders still OPEN or
# DRAFT, payments not yet void), or, one time in ten, among the finished ones.
TARGET = st.tuples(INDEX, st.sampled_from([False] * 9 + [True]))
VERSION = st.sampled_from(["current", "current", "current", "stale", "missing"])
TOKEN = st.sampled_from([None, None, "current", "initial"])
LINES = st.lists(st.tuples(st.integers(1, 3), st.sampled_from([1000, 250, 1999, 0])),
                 min_size=1, max_size=2)
ORDER_STATE = st.sampled_from(["OPEN", "OPEN", "OPEN", "OPEN", "OPEN", "DRAFT"])
ORDER_FLAW = st.sampled_from([None, None, None, None, None, None, "two_fulfillments",
                              "negative_price", "no_location"])
FULFILLMENT_STATES = st.sampled_from(["CANCELED", "RESERVED", "PREPARED", "COMPLETED", "FAILED",
                                      "PROPOSED"])


class MachineContext(Protocol):
    """What the machine needs from the runner."""

    currency: str
    has_clock: bool

    def new_session(self) -> Session: ...

    def finished(self, session: Session) -> None: ...


def _pick(items: list[str], i: int) -> str:
    """0 is the newest, so sequences dwell on one object and shrink towards it."""
    return items[-1 - i % len(items)]


def _choose(items: list[str], live: list[str], target: tuple[int, bool]) -> str | None:
    """The target among the live items, or among the finished ones when asked (and there are
    any); None when there is nothing to act on, and the rule then does nothing. (Liveness is
    not a precondition: a precondition that flips back and forth changes which rule a choice
    means when hypothesis deletes steps, and minimal sequences come out longer.)"""
    i, finished = target
    done = [x for x in items if x not in live]
    pool = done if finished and done else live
    return _pick(pool, i) if pool else None


class ConformanceMachine(RuleBasedStateMachine):
    """Oracle (orderfsm Engine) versus server (any base URL, through the SDK)."""

    def __init__(self, ctx: MachineContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.session = ctx.new_session()
        self.orders: list[str] = []
        self.payments: list[str] = []
        self.payment_keys: dict[str, str] = {}
        self._uids = 0
        self._own_uids: set[str] = set()

    # --------------------------------------------------------------- oracle reads
    @property
    def engine(self) -> Any:
        return self.session.oracle.engine

    def _order(self, label: str) -> dict[str, Any]:
        return self.engine.orders[self.session.oracle.ids[label]]

    def _payment(self, label: str) -> dict[str, Any]:
        return self.engine.payments[self.session.oracle.ids[label]]

    def _money(self, amount: int) -> dict[str, Any]:
        return {"amount": amount, "currency": self.ctx.currency}

    def _uid(self, prefix: str) -> str:
        self._uids += 1
        return f"{prefix}{self._uids}"

    def _processed(self, order: dict[str, Any]) -> bool:
        return any(self.engine.payments[pid]["status"] == "COMPLETED"
                   for pid in order.get("_payment_ids", ()))

    def _with_fulfillments(self) -> list[str]:
        return [lb for lb in self.orders if self._order(lb).get("fulfillments")]

    def _target_order(self, target: tuple[int, bool],
                      among: list[str] | None = None) -> str | None:
        items = self.orders if among is None else among
        live = [lb for lb in items if self._order(lb)["state"] in ("OPEN", "DRAFT")]
        return _choose(items, live, target)

    def _target_payment(self, target: tuple[int, bool]) -> str | None:
        live = [lb for lb in self.payments
                if self._payment(lb)["status"] in ("APPROVED", "COMPLETED", "PENDING")]
        return _choose(self.payments, live, target)

    def _track(self, step: Any) -> None:
        for label in step.produced:
            if label[0] in "op":
                (self.orders if label[0] == "o" else self.payments).append(label)

    def _versioned(self, label: str, mode: str) -> dict[str, Any]:
        body: dict[str, Any] = {"location_id": LOCATION}
        version = self._order(label)["version"]
        if mode == "current":
            body["version"] = version
        elif mode == "stale":
            body["version"] = version - 1 if version > 1 else version + 1
        return body

    def _update(self, label: str, order: dict[str, Any], rules: list[str],
                fields_to_clear: list[str] | None = None) -> None:
        kwargs: dict[str, Any] = {"order": order}
        if fields_to_clear:
            kwargs["fields_to_clear"] = fields_to_clear
        kwargs["idempotency_key"] = KEY
        if "version" not in order:
            rules = ["order.version_required", *rules]
        rules.append("order.version_increments")
        self.session.step(Call("orders", "update", (Ref(label),), kwargs), rules=rules)

    # ---------------------------------------------------------------------- orders
    def _create_order(self, lines: list[tuple[int, int]], pickup: bool, state: str,
                      flaw: str | None) -> None:
        label = self.session.next_label("o")
        order: dict[str, Any] = {} if flaw == "no_location" else {"location_id": LOCATION}
        items = [{"uid": self._uid("li"), "name": f"Item {k}", "quantity": str(qty),
                  "base_price_money": self._money(price)}
                 for k, (qty, price) in enumerate(lines, start=1)]
        if flaw == "negative_price":
            items[0]["base_price_money"] = self._money(-1)
        self._own_uids.update(item["uid"] for item in items)
        if items:
            order["line_items"] = items
        count = 2 if flaw == "two_fulfillments" else int(pickup)
        if count:
            order["fulfillments"] = [
                {"uid": f"f{k}", "type": "PICKUP", "state": "PROPOSED",
                 "pickup_details": dict(PICKUP_DETAILS)} for k in range(1, count + 1)]
        if state == "DRAFT":
            order["state"] = "DRAFT"
        rules = {"two_fulfillments": ["order.one_fulfillment"],
                 "no_location": ["order.location_required"],
                 "negative_price": ["money.non_negative"],
                 }.get(flaw or "", ["order.version_increments"])
        step = self.session.step(
            Call("orders", "create", (), {"order": order, "idempotency_key": KEY},
                 (Produce(label),)), rules=rules)
        self._track(step)

    @rule(lines=LINES, pickup=st.booleans(), state=ORDER_STATE, flaw=ORDER_FLAW)
    def create_order(self, lines: list[tuple[int, int]], pickup: bool, state: str,
                     flaw: str | None) -> None:
        self._create_order(lines, pickup, state, flaw)

    @rule(lines=LINES, pickup=st.sampled_from([True, False]))
    def paid_order(self, lines: list[tuple[int, int]], pickup: bool) -> None:
        """An order paid in full right away, so later steps start from a paid state."""
        self._create_order(lines, pickup, "OPEN", None)
        if self.session.steps[-1].produced:
            self._pay_in_full(self.orders[-1])

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET, state=st.sampled_from(["CANCELED", "COMPLETED", "OPEN", "DRAFT"]),
          fulfillment=st.sampled_from([None, "CANCELED", "COMPLETED"]), version=VERSION)
    def change_order_state(self, which: tuple[int, bool], state: str, fulfillment: str | None,
                           version: str) -> None:
        self._change_state(which, state, fulfillment, version)

    def _change_state(self, which: tuple[int, bool], target: str, fulfillment: str | None,
                      version: str) -> None:
        label = self._target_order(which)
        if label is not None:
            self._change_state_of(label, target, fulfillment, version)

    def _change_state_of(self, label: str, target: str, fulfillment: str | None,
                         version: str) -> None:
        rec = self._order(label)
        order = self._versioned(label, version)
        fulfillments = rec.get("fulfillments") or []
        states = [f["state"] for f in fulfillments]
        if fulfillment is not None and fulfillments:
            order["fulfillments"] = [{"uid": f["uid"], "state": fulfillment} for f in fulfillments]
            states = [fulfillment] * len(fulfillments)
        order["state"] = target
        rules: list[str] = []
        if target == "CANCELED":
            if self._processed(rec):
                rules.append("order.cancel_after_payment")
            if any(s not in TERMINAL_FULFILLMENT for s in states):
                rules.append("order.cancel_open_fulfillments")
        elif target == "COMPLETED":
            rules += ["order.complete_requires_terminal_fulfillments",
                      "order.complete_requires_payment"]
        elif rec["state"] == "DRAFT" or target == "DRAFT":
            rules.append("order.draft_opens")
        if rec["state"] in ("COMPLETED", "CANCELED"):
            rules.insert(0, "order.terminal_frozen")
        self._update(label, order, rules)

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET, together=st.sampled_from([True, False]))
    def cancel_order(self, which: tuple[int, bool], together: bool) -> None:
        """The seed thread's question: cancel an order, with its fulfillments canceled in the
        same request or alone."""
        self._change_state(which, "CANCELED", "CANCELED" if together else None, "current")

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET)
    def refund_then_cancel(self, which: tuple[int, bool]) -> None:
        """The seed thread's flow: refund what was captured in full, then cancel the order and
        its fulfillments."""
        label = self._target_order(which)
        if label is None:
            return
        order_id = self.session.oracle.ids[label]
        for p in self.payments:
            rec = self._payment(p)
            if rec.get("order_id") == order_id and rec["status"] == "COMPLETED":
                remaining = rec["total_money"]["amount"] - (
                    rec.get("refunded_money") or {}).get("amount", 0)
                if remaining > 0:
                    self._refund(p, remaining, None)
        self._change_state_of(label, "CANCELED", "CANCELED", "current")

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET)
    def hand_over(self, which: tuple[int, bool]) -> None:
        """The customer picks the order up: its fulfillment goes straight to COMPLETED."""
        self._move_fulfillment(which, "COMPLETED", "current")

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET, state=FULFILLMENT_STATES, version=VERSION)
    def move_fulfillment(self, which: tuple[int, bool], state: str, version: str) -> None:
        self._move_fulfillment(which, state, version)

    def _move_fulfillment(self, which: tuple[int, bool], state: str, version: str) -> None:
        label = self._target_order(which, self._with_fulfillments())
        if label is None:
            return
        f = self._order(label)["fulfillments"][0]
        order = self._versioned(label, version)
        order["fulfillments"] = [{"uid": f["uid"], "state": state}]
        rules = ["fulfillment.forward_only"]
        if state == "COMPLETED":
            rules.insert(0, "fulfillment.complete_requires_payment")
        elif state in ("CANCELED", "FAILED"):
            rules.insert(0, "fulfillment.cancel_any_time")
        if f["state"] in TERMINAL_FULFILLMENT:
            rules.insert(0, "fulfillment.terminal_absorbs")
        self._update(label, order, rules)

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET, action=st.sampled_from(["add", "quantity", "clear"]), version=VERSION)
    def edit_line_items(self, which: tuple[int, bool], action: str, version: str) -> None:
        label = self._target_order(which)
        if label is None:
            return
        rec = self._order(label)
        order = self._versioned(label, version)
        # Only uids this machine chose are the same on both sides (servers pick the others).
        existing = [li["uid"] for li in rec.get("line_items") or [] if li["uid"] in self._own_uids]
        clear = None
        if action == "quantity" and existing:
            order["line_items"] = [{"uid": existing[0], "quantity": "3"}]
        elif action == "clear" and existing:
            clear = [f"line_items[{existing[-1]}]"]
        else:
            uid = self._uid("extra")
            self._own_uids.add(uid)
            order["line_items"] = [{"uid": uid, "name": "Extra", "quantity": "1",
                                    "base_price_money": self._money(500)}]
        rules = ["order.line_items_locked" if self._processed(rec) else "order.sparse_update"]
        self._update(label, order, rules, clear)

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET, version=VERSION)
    def add_fulfillment(self, which: tuple[int, bool], version: str) -> None:
        label = self._target_order(which)
        if label is None:
            return
        order = self._versioned(label, version)
        order["fulfillments"] = [{"uid": self._uid("f-new"), "type": "PICKUP", "state": "PROPOSED",
                                  "pickup_details": dict(PICKUP_DETAILS)}]
        self._update(label, order, ["order.one_fulfillment"])

    # -------------------------------------------------------------------- payments
    @rule(which=st.one_of(TARGET, st.none()),
          source=st.sampled_from([CARD_OK, CARD_OK, CARD_OK, CARD_OK, CARD_DECLINED, "CASH"]),
          autocomplete=st.booleans(),
          amount=st.sampled_from(["due", "due", "less", "more", "half"]),
          delay=st.sampled_from([None, None, ("PT1M", None), ("PT1M", "COMPLETE"),
                                 (None, "COMPLETE")]))
    def create_payment(self, which: tuple[int, bool] | None, source: str, autocomplete: bool,
                       amount: str, delay: tuple[str | None, str | None] | None) -> None:
        """``which`` None: a payment without an order (Square makes one for it)."""
        order_label = None if which is None else self._target_order(which)
        self._create_payment(order_label, source, autocomplete, amount, delay)

    def _create_payment(self, order_label: str | None, source: str, autocomplete: bool,
                        amount: str, delay: tuple[str | None, str | None] | None) -> None:
        label = self.session.next_label("p")
        key_name = f"{label}-{len(self.session.steps) + 1}"
        kwargs: dict[str, Any] = {"source_id": source, "idempotency_key": NamedKey(key_name)}
        produces = [Produce(label)]
        rules: list[str] = []
        if order_label is None:
            value = 1000
            produces.append(Produce(self.session.next_label("o"), "order_id"))
        else:
            rec = self._order(order_label)
            held = sum(self.engine.payments[pid]["amount_money"]["amount"]
                       for pid in rec.get("_payment_ids", ())
                       if self.engine.payments[pid]["status"] in ("APPROVED", "PENDING"))
            available = self.engine.amount_due(rec) - held
            value = {"due": available, "less": available - 1, "more": available + 1,
                     "half": available // 2}[amount]
            if value <= 0:
                value = available + 100
            kwargs["order_id"] = Ref(order_label)
            rules.append("payment.order_total_mismatch")
            if rec["state"] != "OPEN":
                rules.insert(0, "order.draft_not_payable" if rec["state"] == "DRAFT"
                             else "order.closed_not_payable")
            if autocomplete and not rec.get("fulfillments") and value == available:
                rules.append("payment.autocomplete_order")
        kwargs["amount_money"] = self._money(value)
        kwargs["autocomplete"] = autocomplete
        if not autocomplete and delay is not None:
            duration, action = delay
            if duration is not None:
                kwargs["delay_duration"] = duration
            if action is not None:
                kwargs["delay_action"] = action
        if source == "CASH":
            kwargs["cash_details"] = {"buyer_supplied_money": self._money(value)}
        step = self.session.step(Call("payments", "create", (), kwargs, tuple(produces)),
                                 rules=rules or ["payment.order_total_mismatch"])
        if label in step.produced:
            self.payment_keys[label] = key_name
        self._track(step)

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET)
    def pay_in_full(self, which: tuple[int, bool]) -> None:
        """A good card for exactly what is still due, captured at once (the common path);
        an order that totals zero is paid with PayOrder and no payments."""
        label = self._target_order(which)
        if label is not None:
            self._pay_in_full(label)

    def _pay_in_full(self, label: str) -> None:
        rec = self._order(label)
        if rec["state"] == "OPEN" and self.engine.render_order(rec)["total_money"]["amount"] == 0:
            self.session.step(Call("orders", "pay", (Ref(label),), {
                "idempotency_key": KEY, "order_version": rec["version"], "payment_ids": []}),
                rules=["pay_order.amount_mismatch", "pay_order.settles"])
            return
        self._create_payment(label, CARD_OK, True, "due", None)

    @precondition(lambda self: bool(self.payments))
    @rule(which=TARGET, token=TOKEN)
    def complete_payment(self, which: tuple[int, bool], token: str | None) -> None:
        label = self._target_payment(which)
        if label is None:
            return
        kwargs = {"version_token": Token(label, token)} if token else {}
        rules = ["payment.version_mismatch"] if token else []
        p = self._payment(label)
        order = self.engine.orders.get(p.get("order_id") or "")
        if order is not None and not order.get("fulfillments"):
            rules.append("payment.autocomplete_order")
        self.session.step(Call("payments", "complete", (Ref(label),), kwargs),
                          rules=rules or ["payment.already_captured"])

    @precondition(lambda self: bool(self.payments))
    @rule(which=TARGET, by_key=st.booleans())
    def cancel_payment(self, which: tuple[int, bool], by_key: bool) -> None:
        label = self._target_payment(which)
        if label is None:
            return
        if by_key:
            self.session.step(Call("payments", "cancel_by_idempotency_key", (),
                                   {"idempotency_key": NamedKey(self.payment_keys[label])}),
                              rules=["payment.cancel_by_idempotency_key"])
            return
        self.session.step(Call("payments", "cancel", (Ref(label),)),
                          rules=["payment.already_canceled"])

    @precondition(lambda self: bool(self.orders))
    @rule(which=TARGET, payments=st.sampled_from(["approved", "approved", "none", "other"]),
          j=INDEX, version=st.sampled_from(["current", "missing", "stale"]))
    def pay_order(self, which: tuple[int, bool], payments: str, j: int, version: str) -> None:
        label = self._target_order(which)
        if label is None:
            return
        rec = self._order(label)
        if payments == "approved":
            ids = [lb for lb in self.payments
                   if self._payment(lb).get("order_id") == rec["id"]
                   and self._payment(lb)["status"] == "APPROVED"]
        elif payments == "other" and self.payments:
            ids = [_pick(self.payments, j)]
        else:
            ids = []
        kwargs: dict[str, Any] = {"idempotency_key": KEY}
        if version != "missing":
            kwargs["order_version"] = rec["version"] + (0 if version == "current" else 1)
        kwargs["payment_ids"] = [Ref(lb) for lb in ids]
        rules = ["pay_order.amount_mismatch", "pay_order.settles"]
        if version == "stale":
            rules.insert(0, "pay_order.version_mismatch")
        self.session.step(Call("orders", "pay", (Ref(label),), kwargs), rules=rules)

    # --------------------------------------------------------------------- refunds
    @precondition(lambda self: bool(self.payments))
    @rule(which=TARGET, amount=st.sampled_from(["full", "part", "part", "over"]), token=TOKEN)
    def refund_payment(self, which: tuple[int, bool], amount: str, token: str | None) -> None:
        label = self._target_payment(which)
        if label is None:
            return
        p = self._payment(label)
        remaining = p["total_money"]["amount"] - (p.get("refunded_money") or {}).get("amount", 0)
        value = {"full": remaining, "part": remaining // 2, "over": remaining + 1}[amount]
        if value <= 0:
            value = remaining + 100
        self._refund(label, value, token)

    @precondition(lambda self: bool(self.payments))
    @rule(which=TARGET)
    def partial_refunds(self, which: tuple[int, bool]) -> None:
        """Two items returned one after the other: two partial refunds back to back."""
        label = self._target_payment(which)
        if label is None:
            return
        for _ in range(2):
            p = self._payment(label)
            remaining = p["total_money"]["amount"] - (
                p.get("refunded_money") or {}).get("amount", 0)
            self._refund(label, max(remaining // 3, 1), None)

    def _refund(self, label: str, value: int, token: str | None) -> None:
        p = self._payment(label)
        kwargs: dict[str, Any] = {"idempotency_key": KEY, "payment_id": Ref(label),
                                  "amount_money": self._money(value), "reason": "conformance"}
        if token:
            kwargs["payment_version_token"] = Token(label, token)
        rules = ["refund.return_order", "refund.original_order_unchanged", "refund.amount_exceeds"]
        if any(self.engine.refunds[r]["status"] == "PENDING" for r in p.get("refund_ids", ())):
            rules.insert(0, "refund.already_pending")
        watch = [lb for lb in self.orders if self.session.oracle.ids[lb] == p.get("order_id")]
        step = self.session.step(
            Call("refunds", "refund_payment", (), kwargs, (Produce(self.session.next_label("r")),)),
            rules=rules, watch=watch)
        self._track(step)

    # ----------------------------------------------------------------------- clock
    @precondition(lambda self: self.ctx.has_clock and bool(self.payments))
    @rule(seconds=st.sampled_from([11, 61, 3600, 7 * 24 * 3600 + 60]))
    def time_passes(self, seconds: int) -> None:
        rules = []
        if any(p["status"] in ("APPROVED", "PENDING") for p in self.engine.payments.values()):
            rules.append("payment.delayed_action")
        if any(r["status"] == "PENDING" for r in self.engine.refunds.values()):
            rules.append("refund.settlement")
        self.session.step(Call("sim", "advance_clock", (seconds,)), rules=rules)

    def teardown(self) -> None:
        self.ctx.finished(self.session)

"""Property tests: random command sequences against the Engine, invariants after every step.

The number of examples comes from the hypothesis profile loaded in ``tests/conftest.py``
(``ORDERFSM_HYPOTHESIS_PROFILE=ci|deep``).
"""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from orderfsm.clock import ManualClock
from orderfsm.engine import DECLINE_NONCES, Engine
from orderfsm.errors import SquareError
from orderfsm.rules import VARIANTS

USD = "USD"
ORDER_TERMINAL = {"COMPLETED", "CANCELED"}
PAYMENT_TERMINAL = {"COMPLETED", "CANCELED", "FAILED"}
REFUND_TERMINAL = {"COMPLETED", "REJECTED", "FAILED"}
FULFILLMENT_TERMINAL = {"COMPLETED", "CANCELED", "FAILED"}
FULFILLMENT_STATES = ["PROPOSED", "RESERVED", "PREPARED", "COMPLETED", "CANCELED", "FAILED"]
ORDER_STATES = ["OPEN", "CANCELED", "COMPLETED", "DRAFT"]
DECLINE_RULES = set(DECLINE_NONCES.values())
# Weighted: good cards and bank transfers most, each decline nonce once.
SOURCES = ["cnon:card-nonce-ok"] * 3 + ["ccof:customer-card-id-ok", "CASH", "CASH",
           "bnon:bank-nonce-ok", "bnon:bank-nonce-ok", "bnon:bank-nonce-ok",
           "bnon:bank-nonce-failure", *DECLINE_NONCES]
DAY = 86400
SECONDS = st.one_of(
    st.sampled_from([0, 1, 9, 10, 59, 60, 61, 3600, DAY, 7 * DAY - 1, 7 * DAY, 8 * DAY]),
    st.integers(0, 8 * DAY),
)


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": USD}


def _amount(m: Any) -> int:
    return m["amount"] if isinstance(m, dict) else 0


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.eng = Engine(clock=ManualClock(), seed=0)
        self.keys = 0
        self.used_keys: list[str] = []
        self.seen: dict[tuple[str, str], str] = {}  # (kind, id) -> last state
        self.versions: dict[str, int] = {}
        self.recent_order: str | None = None
        self.recent_payment: str | None = None

    # ------------------------------------------------------------------ plumbing
    @initialize(data=st.data())
    def choose_variants(self, data: st.DataObject) -> None:
        chosen = {}
        for name, (_rule, variant) in sorted(VARIANTS.items()):
            chosen[name] = data.draw(st.sampled_from(sorted(variant.values)), label=name)
        self.eng = Engine(clock=ManualClock(), seed=0, variants=chosen)

    def key(self) -> str:
        self.keys += 1
        k = f"k{self.keys}"
        self.used_keys.append(k)
        return k

    def attempt(self, fn: Callable[[], Any], name: str) -> tuple[Any, SquareError | None]:
        """Run one command; a rejection must leave the aggregate exactly as it was."""
        before = self.eng.snapshot()
        try:
            out = fn()
        except SquareError as err:
            event(f"{name}: {err.rule_id}")
            after = self.eng.snapshot()
            if err.rule_id in DECLINE_RULES:
                self._check_decline(before, after, err)
            else:
                assert after == before, f"rejected command changed the engine: {err}"
            return None, err
        event(f"{name}: ok")
        return out, None

    @staticmethod
    def _check_decline(before: dict, after: dict, err: SquareError) -> None:
        """A declined card payment adds exactly one FAILED payment (and its key) and nothing else."""
        new = set(after["payments"]) - set(before["payments"])
        assert len(new) == 1, f"decline must add exactly one payment, added {new}"
        pid = new.pop()
        failed = after["payments"][pid]
        assert failed["status"] == "FAILED"
        assert err.extra["payment"]["id"] == pid
        assert {k: v for k, v in after["payments"].items() if k != pid} == before["payments"]
        added_keys = {k: v for k, v in after["payment_keys"].items()
                      if k not in before["payment_keys"]}
        assert set(added_keys.values()) <= {pid}
        same = {k for k in before if k not in ("payments", "payment_keys", "id_counter")}
        for k in same:
            assert after[k] == before[k], f"decline changed {k}"
        assert after["id_counter"] > before["id_counter"]

    def orders(self) -> list[str]:
        return [oid for oid, o in self.eng.orders.items() if not o.get("returns")]

    def pick(self, data: st.DataObject, items: list[str], label: str) -> str:
        return data.draw(st.sampled_from(items), label=label)

    # Commands favour the order / payment touched last, so that multi-step stories (pay, then
    # cancel, then let the clock run) on one record are common; then live records; then any.
    def pick_order(self, data: st.DataObject) -> str:
        live = [oid for oid in self.orders() if self.eng.orders[oid]["state"] in ("OPEN", "DRAFT")]
        how = data.draw(st.sampled_from(["recent", "recent", "live", "any"]), label="which_order")
        if how == "recent" and self.recent_order in self.eng.orders:
            oid = self.recent_order
        elif how != "any" and live:
            oid = self.pick(data, live, "order")
        else:
            oid = self.pick(data, self.orders(), "order")
        self.recent_order = oid
        return oid

    def pick_payment(self, data: st.DataObject, *prefer: str) -> str:
        good = self._payments(*prefer)
        how = data.draw(st.sampled_from(["recent", "recent", "preferred", "any"]),
                        label="which_payment")
        if how == "recent" and self.recent_payment in self.eng.payments:
            pid = self.recent_payment
        elif how != "any" and good:
            pid = self.pick(data, good, "payment")
        else:
            pid = self.pick(data, self._payments(), "payment")
        self.recent_payment = pid
        return pid

    def held(self, oid: str) -> int:
        return sum(_amount(p["amount_money"]) for p in self.eng.payments.values()
                   if p.get("order_id") == oid and p["status"] in ("APPROVED", "PENDING")
                   and p["id"] in self.eng.orders[oid].get("_payment_ids", ()))

    # ------------------------------------------------------------------ commands
    @rule(data=st.data(), n_lines=st.integers(1, 3), pickup=st.booleans(),
          draft=st.booleans())
    def create_order(self, data: st.DataObject, n_lines: int, pickup: bool, draft: bool) -> None:
        lines = [{"name": f"L{i}",
                  "quantity": data.draw(st.sampled_from(["1", "2", "3", "0.5"]), label="qty"),
                  "base_price_money": usd(data.draw(st.integers(0, 3000), label="price"))}
                 for i in range(n_lines)]
        body: dict[str, Any] = {"location_id": "main", "line_items": lines}
        if pickup:
            body["fulfillments"] = [{"type": "PICKUP", "pickup_details": {"note": "p"}}]
        if draft:
            body["state"] = "DRAFT"
        if data.draw(st.booleans(), label="with_tax"):
            body["taxes"] = [{"uid": "tax", "name": "T", "percentage": "8.25", "scope": "ORDER"}]
        out, err = self.attempt(lambda: self.eng.create_order(body), "create_order")
        assert err is None, err
        self.recent_order = out["id"]
        assert out["version"] == 1
        assert out["state"] == ("DRAFT" if draft else "OPEN")

    @precondition(lambda self: self.orders())
    @rule(data=st.data(), kind=st.sampled_from(
        ["cancel", "cancel", "cancel", "complete", "complete", "open", "draft", "fulfillment",
         "fulfillment", "add_fulfillment", "clear_fulfillment", "lines", "metadata"]))
    def update_order(self, data: st.DataObject, kind: str) -> None:
        oid = self.pick_order(data)
        rec = self.eng.orders[oid]
        version = rec["version"]
        patch: dict[str, Any] = {}
        clear: list[str] = []
        fulfillments = rec.get("fulfillments") or []
        lines = rec.get("line_items") or []

        def move(states: list[str | None]) -> None:
            target = data.draw(st.sampled_from(states), label="fstate")
            if target is not None and fulfillments:
                patch["fulfillments"] = [{"uid": fulfillments[0]["uid"], "state": target}]

        if kind == "cancel":
            patch["state"] = "CANCELED"
            move([None, "CANCELED", "FAILED", "COMPLETED"])
        elif kind == "complete":
            patch["state"] = "COMPLETED"
            move([None, "COMPLETED", "CANCELED", "FAILED"])
        elif kind == "open":
            patch["state"] = "OPEN"
            move([None, "RESERVED"])
        elif kind == "draft":
            patch["state"] = "DRAFT"
        elif kind == "fulfillment":
            move(FULFILLMENT_STATES)
        elif kind == "add_fulfillment":
            patch["fulfillments"] = [{"type": "PICKUP", "pickup_details": {},
                                      "state": data.draw(st.sampled_from(FULFILLMENT_STATES),
                                                         label="fstate")}]
        elif kind == "clear_fulfillment" and fulfillments:
            clear.append(f"fulfillments[{fulfillments[0]['uid']}]")
        elif kind == "lines":
            op = data.draw(st.sampled_from(["add", "edit", "clear"]), label="line_op")
            if op == "add" or not lines:
                patch["line_items"] = [{"name": "new", "quantity": "1",
                                        "base_price_money": usd(data.draw(st.integers(0, 2000)))}]
            elif op == "edit":
                patch["line_items"] = [{"uid": lines[0]["uid"],
                                        "base_price_money": usd(data.draw(st.integers(0, 2000)))}]
            else:
                clear.append(f"line_items[{lines[-1]['uid']}]")
        else:
            patch["metadata"] = {"k": str(data.draw(st.integers(0, 9)))}
        stale = data.draw(st.sampled_from([0] * 9 + [None, -1, 1]), label="stale")
        if stale is not None:
            patch["version"] = version + stale
        out, err = self.attempt(lambda: self.eng.update_order(oid, patch, clear or None),
                                f"update_order[{kind}]")
        if err is None:
            assert stale == 0
            assert out["version"] == version + 1, "an accepted UpdateOrder adds exactly 1"
            self.versions[oid] = out["version"]
        elif stale is None:
            assert err.rule_id == "order.version_required"
        elif stale != 0:
            assert err.rule_id in ("order.version_mismatch", "order.terminal_frozen")

    @rule(data=st.data())
    def create_payment(self, data: st.DataObject) -> None:
        orders = self.orders()
        oid = None
        if orders and data.draw(st.integers(0, 4), label="with_order") > 0:
            oid = self.pick_order(data)
        source = data.draw(st.sampled_from(SOURCES), label="source")
        autocomplete = data.draw(st.booleans(), label="autocomplete")
        if oid is not None:
            due = _amount(self.eng.get_order(oid)["net_amount_due_money"])
            left = max(due - self.held(oid), 0)
            amount = data.draw(st.sampled_from(["left", "left", "due", "any"]), label="amount")
            amount = {"left": left, "due": due}.get(amount) if amount != "any" else \
                data.draw(st.integers(0, 3000), label="any_amount")
        else:
            amount = data.draw(st.integers(0, 3000), label="amount")
        body: dict[str, Any] = {"source_id": source, "idempotency_key": self.key(),
                                "amount_money": usd(amount), "autocomplete": autocomplete}
        if oid is not None:
            body["order_id"] = oid
        if data.draw(st.integers(0, 5), label="tip") == 0:
            body["tip_money"] = usd(data.draw(st.integers(0, 300)))
        if source == "CASH":
            body["cash_details"] = {"buyer_supplied_money": usd(
                amount + _amount(body.get("tip_money")) + data.draw(st.integers(0, 500)))}
        if not autocomplete and data.draw(st.booleans(), label="delay"):
            body["delay_duration"] = data.draw(st.sampled_from(["PT1M", "PT1H", "P1D", "P7D"]))
            body["delay_action"] = data.draw(st.sampled_from(["CANCEL", "COMPLETE"]))
        before = self.eng.snapshot() if source in DECLINE_NONCES else None
        out, err = self.attempt(lambda: self.eng.create_payment(body), f"create_payment[{source}]")
        if err is not None and before is not None:
            # Request checks run before the card is tried (payment.request_checked_before_card):
            # the same request with a good card fails the same way, or succeeds when this one
            # was a decline.
            twin = Engine.restore(before)
            try:
                twin.create_payment(dict(body, source_id="cnon:card-nonce-ok"))
                twin_err = None
            except SquareError as exc:
                twin_err = exc
            if err.rule_id == DECLINE_NONCES[source]:
                assert twin_err is None, f"a bad request was reported as a decline: {twin_err}"
            else:
                assert twin_err is not None and twin_err.rule_id == err.rule_id
        if out is not None:
            self.recent_payment = out["id"]
            self.recent_order = out["order_id"]
            expected = "APPROVED" if not autocomplete else (
                "PENDING" if source.startswith("bnon:") else "COMPLETED")
            assert out["status"] == expected

    def _payments(self, *statuses: str) -> list[str]:
        return [pid for pid, p in self.eng.payments.items() if not statuses or p["status"] in statuses]

    @precondition(lambda self: self.eng.payments)
    @rule(data=st.data(), token=st.sampled_from([None, "current", "stale"]))
    def complete_payment(self, data: st.DataObject, token: str | None) -> None:
        pid = self.pick_payment(data, "APPROVED")
        tok = {None: None, "current": self.eng.payments[pid].get("version_token"),
               "stale": "stale-token"}[token]
        _out, err = self.attempt(lambda: self.eng.complete_payment(pid, tok), "complete_payment")
        if err is None:
            assert self.eng.payments[pid]["status"] == "COMPLETED"

    @precondition(lambda self: self.eng.payments)
    @rule(data=st.data())
    def cancel_payment(self, data: st.DataObject) -> None:
        pid = self.pick_payment(data, "APPROVED")
        was = self.eng.payments[pid]["status"]
        _out, err = self.attempt(lambda: self.eng.cancel_payment(pid), "cancel_payment")
        assert (err is None) == (was == "APPROVED"), err

    @precondition(lambda self: self.used_keys)
    @rule(data=st.data())
    def cancel_by_key(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from([*self.used_keys, "unknown-key"]), label="key")
        self.attempt(lambda: self.eng.cancel_payment_by_idempotency_key(key), "cancel_by_key")

    @precondition(lambda self: self._payments("APPROVED"))
    @rule(data=st.data())
    def update_payment(self, data: st.DataObject) -> None:
        pid = self.pick(data, self._payments("APPROVED"), "payment")
        amount = data.draw(st.integers(0, 3000), label="amount")
        self.attempt(lambda: self.eng.update_payment(pid, {"amount_money": usd(amount)}),
                     "update_payment")

    @precondition(lambda self: self.orders())
    @rule(data=st.data())
    def pay_order(self, data: st.DataObject) -> None:
        oid = self.pick_order(data)
        mine = [pid for pid, p in self.eng.payments.items() if p.get("order_id") == oid]
        approved = [pid for pid in mine if self.eng.payments[pid]["status"] == "APPROVED"]
        pool = mine + self._payments()[:3]
        listed = data.draw(st.one_of(st.just(approved),
                                     st.lists(st.sampled_from(pool), max_size=3) if pool
                                     else st.just([])), label="payment_ids")
        version = self.eng.orders[oid]["version"]
        order_version = data.draw(st.sampled_from([None, version, version - 1]), label="version")
        before = self.eng.orders[oid]["version"]
        out, err = self.attempt(lambda: self.eng.pay_order(oid, listed, order_version),
                                "pay_order")
        if err is None:
            assert out["version"] == before + 1
            assert out["net_amount_due_money"]["amount"] == 0
            for pid in mine:
                if pid in approved:
                    assert self.eng.payments[pid]["status"] in ("COMPLETED", "CANCELED")

    @precondition(lambda self: self.eng.payments)
    @rule(data=st.data(), token=st.sampled_from([None, None, "current", "stale"]))
    def refund(self, data: st.DataObject, token: str | None) -> None:
        pid = self.pick_payment(data, "COMPLETED")
        p = self.eng.payments[pid]
        total = _amount(p["total_money"])
        left = total - _amount(p.get("refunded_money"))
        amount = data.draw(st.one_of(st.just(left), st.integers(0, total + 50)), label="amount")
        body: dict[str, Any] = {"payment_id": pid, "amount_money": usd(amount),
                                "idempotency_key": self.key()}
        if token:
            body["payment_version_token"] = p["version_token"] if token == "current" else "old"
        out, err = self.attempt(lambda: self.eng.refund_payment(body), "refund")
        if err is None:
            assert amount <= left
            assert out["status"] in ("PENDING", "COMPLETED")
        elif amount > left and p["status"] == "COMPLETED" and amount > 0 and token != "stale":
            assert err.rule_id in ("refund.amount_exceeds", "refund.after_failed",
                                   "refund.max_count", "refund.already_pending")

    @precondition(lambda self: self.eng.refunds)
    @rule(data=st.data(), action=st.sampled_from(["settle_refund", "reject_refund", "fail_refund"]))
    def finish_refund(self, data: st.DataObject, action: str) -> None:
        pending = [rid for rid, r in self.eng.refunds.items() if r["status"] == "PENDING"]
        if pending and data.draw(st.integers(0, 3), label="pending_refund") > 0:
            rid = self.pick(data, pending, "refund")
        else:
            rid = self.pick(data, list(self.eng.refunds), "refund")
        was = self.eng.refunds[rid]["status"]
        _out, err = self.attempt(lambda: getattr(self.eng, action)(rid), action)
        assert (err is None) == (was == "PENDING"), err

    @rule(seconds=SECONDS)
    def advance(self, seconds: int) -> None:
        self.eng.advance(seconds)
        assert self.eng.next_due() is None or self.eng.next_due() > self.eng.now()

    # ------------------------------------------------------------------ invariants
    @invariant()
    def terminal_states_absorb(self) -> None:
        eng = self.eng
        current: dict[tuple[str, str], str] = {}
        for oid, o in eng.orders.items():
            current[("order", oid)] = o["state"]
            for f in o.get("fulfillments") or []:
                current[("fulfillment", f"{oid}/{f['uid']}")] = f["state"]
        for pid, p in eng.payments.items():
            current[("payment", pid)] = p["status"]
        for rid, r in eng.refunds.items():
            current[("refund", rid)] = r["status"]
        terminal = {"order": ORDER_TERMINAL, "payment": PAYMENT_TERMINAL,
                    "refund": REFUND_TERMINAL, "fulfillment": FULFILLMENT_TERMINAL}
        for key, old in self.seen.items():
            if old in terminal[key[0]]:
                if key[0] == "fulfillment" and key not in current:
                    continue  # removed with fields_to_clear; checked below
                assert current.get(key) == old, f"{key} left terminal state {old}"
        for key in self.seen:
            if key[0] != "fulfillment":
                assert key in current, f"{key} disappeared"
        self.seen = current

    @invariant()
    def refunds_never_exceed_capture(self) -> None:
        eng = self.eng
        held: dict[str, int] = {}
        for r in eng.refunds.values():
            if r["status"] in ("PENDING", "COMPLETED"):
                held[r["payment_id"]] = held.get(r["payment_id"], 0) + _amount(r["amount_money"])
        for pid, p in eng.payments.items():
            h = held.get(pid, 0)
            assert h <= _amount(p["total_money"]), f"{pid} refunds {h} > total"
            assert _amount(p.get("refunded_money")) == h, f"{pid} refunded_money != {h}"
            if h:
                assert p["status"] == "COMPLETED"
            assert len(p.get("refund_ids", [])) <= 20

    @invariant()
    def no_canceled_order_keeps_captured_money_and_live_fulfillment(self) -> None:
        eng = self.eng
        captured = {p["order_id"] for p in eng.payments.values()
                    if p["status"] == "COMPLETED" and p.get("order_id")}
        for oid, o in eng.orders.items():
            if o["state"] != "CANCELED" or oid not in captured:
                continue
            states = [f["state"] for f in o.get("fulfillments") or []]
            live = [st_ for st_ in states if st_ != "CANCELED"]
            assert not live, f"CANCELED order {oid} has a COMPLETED payment and fulfillments {live}"
            # order.cancel_after_payment: only "after every fulfillment is CANCELED", so an order
            # with captured money and no fulfillment at all must never be CANCELED either.
            assert states, f"CANCELED order {oid} has a COMPLETED payment and no fulfillment"
            assert self.eng.variants["cancel_after_payment"] != "never", oid

    @invariant()
    def net_amount_due(self) -> None:
        eng = self.eng
        captured: dict[str, int] = {}
        for p in eng.payments.values():
            if p["status"] == "COMPLETED" and p.get("order_id"):
                captured[p["order_id"]] = captured.get(p["order_id"], 0) + _amount(p["amount_money"])
        for oid in self.orders():
            out = eng.render_order(eng.orders[oid])
            expected = max(out["total_money"]["amount"] - captured.get(oid, 0), 0)
            assert out["net_amount_due_money"]["amount"] == expected, oid

    @invariant()
    def versions_never_decrease(self) -> None:
        for oid, v in self.versions.items():
            assert self.eng.orders[oid]["version"] >= v
        for oid, o in self.eng.orders.items():
            self.versions[oid] = o["version"]


TestEngineMachine = EngineMachine.TestCase

"""A hypothesis state machine: random commands against two simulators, one keeping state in a
SQLite file that is closed and reopened at random points, the other in memory and never
restarted. Every response, and the whole state at every reopening and at the end, must be the
same: a restart is invisible to clients."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from simulator import create_app

from .conftest import TestClient, auth

H = auth("machine")
SOURCES = ["cnon:card-nonce-ok", "cnon:card-nonce-ok", "cnon:card-nonce-declined", "CASH",
           "bnon:bank-nonce-ok"]


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def _app(db: Any) -> TestClient:
    app = create_app(seed=11, db=db)
    app.state.config.log_requests = False
    return TestClient(app)


class ReopenMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="orderfsm-machine-")
        self.path = f"{self.dir}/state.sqlite3"
        self.memory = _app(None)
        self.durable = _app(self.path)
        self.orders: list[str] = []
        self.payments: list[str] = []
        self.refunds: list[str] = []
        self.keys: list[tuple[str, str, dict]] = []
        self.n = 0
        self.reopened = 0

    def _both(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        kw = {"headers": H} if body is None else {"headers": H, "json": body}
        a = self.memory.request(method, path, **kw)
        b = self.durable.request(method, path, **kw)
        assert (a.status_code, a.json()) == (b.status_code, b.json()), (method, path, body)
        return a.json() if a.status_code == 200 else {}

    def _key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    def _same_state(self) -> None:
        a = self.memory.get("/_sim/state", headers=H).json()
        b = self.durable.get("/_sim/state", headers=H).json()
        assert a == b

    @rule(amount=st.integers(0, 5000), with_line=st.booleans())
    def create_order(self, amount: int, with_line: bool) -> None:
        order: dict[str, Any] = {"location_id": "main"}
        if with_line:
            order["line_items"] = [{"name": "x", "quantity": "1", "base_price_money": usd(amount)}]
        body = {"idempotency_key": self._key(), "order": order}
        out = self._both("POST", "/v2/orders", body)
        if out:
            self.orders.append(out["order"]["id"])
            self.keys.append(("/v2/orders", body["idempotency_key"], body))

    @rule(amount=st.integers(1, 5000), source=st.sampled_from(SOURCES),
          autocomplete=st.booleans(), order=st.integers(0, 50), on_order=st.booleans())
    def create_payment(self, amount: int, source: str, autocomplete: bool, order: int,
                       on_order: bool) -> None:
        body: dict[str, Any] = {"idempotency_key": self._key(), "source_id": source,
                                "amount_money": usd(amount), "autocomplete": autocomplete}
        if source == "CASH":
            body["cash_details"] = {"buyer_supplied_money": usd(amount + 100)}
        if on_order and self.orders:
            body["order_id"] = self.orders[order % len(self.orders)]
        out = self._both("POST", "/v2/payments", body)
        if out:
            self.payments.append(out["payment"]["id"])
        self.keys.append(("/v2/payments", body["idempotency_key"], body))

    @precondition(lambda self: self.payments)
    @rule(i=st.integers(0, 50), action=st.sampled_from(["complete", "cancel", "get"]))
    def touch_payment(self, i: int, action: str) -> None:
        pid = self.payments[i % len(self.payments)]
        if action == "get":
            self._both("GET", f"/v2/payments/{pid}")
        else:
            self._both("POST", f"/v2/payments/{pid}/{action}", {})

    @precondition(lambda self: self.payments)
    @rule(i=st.integers(0, 50), amount=st.integers(1, 3000))
    def refund(self, i: int, amount: int) -> None:
        body = {"idempotency_key": self._key(), "payment_id": self.payments[i % len(self.payments)],
                "amount_money": usd(amount)}
        out = self._both("POST", "/v2/refunds", body)
        if out:
            self.refunds.append(out["refund"]["id"])

    @precondition(lambda self: self.keys)
    @rule(i=st.integers(0, 50), same=st.booleans())
    def replay(self, i: int, same: bool) -> None:
        path, key, body = self.keys[i % len(self.keys)]
        if not same:
            body = {**body, "note": "changed"} if path == "/v2/payments" else \
                {**body, "order": {**body["order"], "reference_id": "changed"}}
        self._both("POST", path, body)

    @rule(seconds=st.sampled_from([1, 10, 61, 3600, 86400, 7 * 86400]))
    def advance(self, seconds: int) -> None:
        self._both("POST", "/_sim/clock/advance", {"seconds": seconds})

    @rule(value=st.sampled_from(["allow", "reject"]))
    def variant(self, value: str) -> None:
        self._both("POST", "/_sim/variants", {"refund_while_pending": value})

    @rule()
    def search(self) -> None:
        self._both("POST", "/v2/orders/search", {"location_ids": ["main"], "limit": 50})

    @rule()
    def reopen(self) -> None:
        self._same_state()
        self.durable.app.state.store.close()
        self.durable = _app(self.path)
        self.reopened += 1
        assert self.durable.app.state.store.restored == 1

    @invariant()
    def same_clock(self) -> None:
        self._both("GET", "/_sim/clock")

    def teardown(self) -> None:
        try:
            self._same_state()
            self._both("GET", "/_sim/events")
        finally:
            self.durable.app.state.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)


ReopenMachine.TestCase.settings = settings(
    settings.default, max_examples=max(5, settings.default.max_examples // 8),
    stateful_step_count=25)
test_reopening_is_invisible = ReopenMachine.TestCase

"""The cancellation strategies' predictions, checked against the simulator.

A hypothesis state machine builds random reachable worlds through the official SDK against an
in-process simulator (orders with and without a pickup, captured and delayed-capture payments,
split payments settled by PayOrder, partial and full refunds, rejected refunds, fulfillment
progress, declined cards, clock advances that expire authorizations and settle refunds). At
any step it runs a strategy on an order, sometimes crashing the client halfway, and checks:

* the plan's prediction is what the server did (every step's success or exact error, the end
  states, the money refunded and voided);
* ``auto`` reaches the goal: the order CANCELED where the active variant allows it, otherwise
  the order left as it was with its fulfillments CANCELED; every captured cent refunded by
  exactly one refund; no APPROVED payment left;
* ``naive_refund_then_cancel`` fails with the seed thread's exact error whenever a captured
  payment exists and the order has no fulfillment or one that is not CANCELED;
* running the executor again changes nothing and refunds nothing.

It runs once per server variant of ``cancel_after_payment``. The example count comes from the
hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, precondition, rule

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette prefers httpx2; the SDK needs an httpx.Client
    from starlette.testclient import TestClient

from square import Square
from square.core.api_error import ApiError

from orderfsm.rules import Variants
from orderfsm.simulator import InThreadTransport, cache_sdk_type_hints
from orderfsm.strategies import STRATEGIES, Outcome, cancel_order
from simulator import create_app
from simulator.store import SimulatorConfig

pytestmark = pytest.mark.filterwarnings(
    "ignore:You should not use the 'timeout' argument with the TestClient")

RO: dict[str, Any] = {"max_retries": 0}
USD = "USD"
REASON = "Customer changed their mind"
SEED_ERROR = {
    "code": "BAD_REQUEST",
    "detail": "Orders cannot be canceled after payments have been processed.",
    "field": "order.state",
    "category": "INVALID_REQUEST_ERROR",
}
DAY = 86400
_tokens = itertools.count()
_servers: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.Client] = {}
# How the SDK reaches the in-process simulator: "testclient" (starlette's TestClient, which
# hops to a portal thread for every request) or "inthread" (the ASGI app driven on this thread's
# own event loop: the same requests and responses, about 4 ms less per call).
TRANSPORT = os.environ.get("ORDERFSM_STRATEGY_TRANSPORT", "inthread")


# The in-thread transport is public: orderfsm.simulator.InThreadTransport.
InThreadASGI = InThreadTransport
# Memoizing the SDK's type-hint lookups changes no result and halves the cost of a call
# (bench/property_clients.py); bench/strategies.py turns it off to measure without it.
if os.environ.get("ORDERFSM_CACHE_SDK_TYPE_HINTS", "1") == "1":
    cache_sdk_type_hints()


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": USD}


def server(variants: dict[str, str], transport: str | None = None) -> httpx.Client:
    """One in-process simulator per variant set for the whole run; each example gets a fresh
    token, hence a fresh merchant."""
    transport = transport or TRANSPORT
    key = (transport, tuple(sorted(variants.items())))
    client = _servers.get(key)
    if client is None:
        app = create_app(SimulatorConfig(log_requests=False, webhooks=False), variants=variants)
        if transport == "testclient":
            client = TestClient(app)
        else:
            client = httpx.Client(transport=InThreadASGI(app), base_url="http://testserver")
        _servers[key] = client
    return client


PAY_MODES = ["capture", "authorize", "split_then_pay_order", "split_authorized", "split_mixed"]
DELAYS = st.sampled_from([None, None, ("PT1M", "CANCEL"), ("PT1M", "COMPLETE")])


class ResponseLost(Exception):
    """The connection dropped after the server had answered."""


class CrashingHttp:
    """An httpx client stand-in: the first ``writes`` POST/PUT calls go through, the next one
    reaches the server and is applied, and then its response is lost."""

    def __init__(self, inner: httpx.Client, writes: int) -> None:
        self.inner = inner
        self.left = writes
        self.timeout = inner.timeout

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        response = self.inner.request(method, url, **kwargs)
        if method.upper() in ("POST", "PUT"):
            if self.left == 0:
                raise ResponseLost(f"{method} {url}")
            self.left -= 1
        return response


@dataclass
class PaymentModel:
    id: str
    total: int
    refunded: int = 0
    refunds: int = 0
    last_refund: str | None = None


@dataclass
class OrderModel:
    id: str
    total: int
    draft: bool
    fulfillment: str | None
    payments: list[PaymentModel] = field(default_factory=list)
    paid_attempted: bool = False


def cancel_expected(start: Any, variants: Variants) -> bool:
    """Whether ``auto`` should end with the order CANCELED, from the seed thread's answers as
    the server variants read them (written independently of the library on purpose)."""
    if start.order_state == "CANCELED":
        return True
    if start.order_state == "COMPLETED":
        return False
    captured = any(s == "COMPLETED" for s in start.payments.values())
    if not captured:
        return True
    if variants["cancel_after_payment"] == "never":
        return False
    states = list(start.fulfillments.values())
    return bool(states) and all(s not in ("COMPLETED", "FAILED") for s in states)


class StrategyWorld(RuleBasedStateMachine):
    VARIANTS: dict[str, str] = {}
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.http = server(self.VARIANTS)
        self.token = f"strategies-{next(_tokens)}"
        self.sdk = Square(token=self.token, base_url="http://testserver", httpx_client=self.http)
        self.variants = Variants(self.VARIANTS)
        self.n = 0
        self.models: list[OrderModel] = []
        self.checked = False

    # ------------------------------------------------------------------------ plumbing
    def key(self) -> str:
        self.n += 1
        return f"{self.token}-{self.n}"

    def attempt(self, call: Callable[[], Any]) -> Any:
        """Run a setup call that the world may refuse (an expired authorization, a fulfillment
        that cannot complete yet); a refusal must be a Square 4xx error."""
        try:
            return call()
        except ApiError as exc:
            assert 400 <= exc.status_code < 500, exc.body
            assert isinstance(exc.body, dict) and exc.body.get("errors"), exc.body
            return None

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.post(path, json=body or {}, headers={"Authorization": f"Bearer {self.token}"})
        return r

    def create_payment(self, order: OrderModel, amount: int, *, autocomplete: bool,
                       delay: tuple[str, str] | None = None) -> PaymentModel | None:
        extra: dict[str, Any] = {}
        if delay is not None and not autocomplete:
            extra = {"delay_duration": delay[0], "delay_action": delay[1]}
        p = self.attempt(lambda: self.sdk.payments.create(
            source_id="cnon:card-nonce-ok", idempotency_key=self.key(), amount_money=usd(amount),
            order_id=order.id, autocomplete=autocomplete, request_options=RO, **extra).payment)
        if p is None:
            return None
        model = PaymentModel(p.id, p.total_money.amount)
        order.payments.append(model)
        return model

    # --------------------------------------------------------------------------- rules
    @initialize(target=orders, amount=st.sampled_from([500, 1250, 2000]), pickup=st.booleans(),
                mode=st.sampled_from([None, *PAY_MODES]), delay=DELAYS)
    def first_order(self, amount: int, pickup: bool, mode: str | None,
                    delay: tuple[str, str] | None) -> OrderModel:
        order = self.create_order(amount, pickup, False)
        if mode is not None:
            self.pay(order, mode, delay)
        return order

    @precondition(lambda self: len(self.models) < 2)
    @rule(target=orders, amount=st.sampled_from([500, 1250, 2000]), pickup=st.booleans(),
          draft=st.sampled_from([False, False, False, False, True]))
    def another_order(self, amount: int, pickup: bool, draft: bool) -> OrderModel:
        return self.create_order(amount, pickup, draft)

    def create_order(self, amount: int, pickup: bool, draft: bool) -> OrderModel:
        body: dict[str, Any] = {"location_id": "main", "line_items": [
            {"name": "Latte", "quantity": "1", "base_price_money": usd(amount)}]}
        if pickup:
            body["fulfillments"] = [{"type": "PICKUP",
                                     "pickup_details": {"recipient": {"display_name": "Ann"}}}]
        if draft:
            body["state"] = "DRAFT"
        o = self.sdk.orders.create(order=body, idempotency_key=self.key(), request_options=RO).order
        model = OrderModel(o.id, amount, draft, o.fulfillments[0].uid if o.fulfillments else None)
        self.models.append(model)
        return model

    @rule(order=orders, mode=st.sampled_from(PAY_MODES), delay=DELAYS)
    def pay(self, order: OrderModel, mode: str, delay: tuple[str, str] | None) -> None:
        if order.draft or order.paid_attempted:
            return
        order.paid_attempted = True
        if mode == "capture":
            self.create_payment(order, order.total, autocomplete=True)
        elif mode == "authorize":
            self.create_payment(order, order.total, autocomplete=False, delay=delay)
        else:
            first = order.total * 2 // 5
            a = self.create_payment(order, first, autocomplete=False, delay=delay)
            b = self.create_payment(order, order.total - first, autocomplete=(mode == "split_mixed"))
            if mode == "split_then_pay_order" and a and b:
                self.attempt(lambda: self.sdk.orders.pay(
                    order.id, idempotency_key=self.key(), payment_ids=[a.id, b.id],
                    request_options=RO))

    @rule(order=orders)
    def decline(self, order: OrderModel) -> None:
        if order.draft:
            return
        try:
            self.sdk.payments.create(source_id="cnon:card-nonce-declined", idempotency_key=self.key(),
                                     amount_money=usd(order.total), order_id=order.id,
                                     request_options=RO)
        except ApiError as exc:
            assert exc.status_code == 400
            assert exc.body["errors"][0]["category"] in ("PAYMENT_METHOD_ERROR", "INVALID_REQUEST_ERROR")
        else:  # pragma: no cover - a declined card must not be charged
            raise AssertionError("a declined card was charged")

    @rule(order=orders, which=st.integers(0, 1))
    def capture(self, order: OrderModel, which: int) -> None:
        if not order.payments:
            return
        p = order.payments[which % len(order.payments)]
        self.attempt(lambda: self.sdk.payments.complete(p.id, request_options=RO))

    @rule(order=orders, which=st.integers(0, 1), full=st.booleans())
    def refund(self, order: OrderModel, which: int, full: bool) -> None:
        if not order.payments:
            return
        p = order.payments[which % len(order.payments)]
        left = p.total - p.refunded
        amount = left if full else left // 2
        if amount <= 0:
            return
        r = self.attempt(lambda: self.sdk.refunds.refund_payment(
            idempotency_key=self.key(), payment_id=p.id, amount_money=usd(amount),
            reason="partial refund", request_options=RO).refund)
        if r is not None:
            p.refunded += amount
            p.refunds += 1
            p.last_refund = r.id

    @rule(order=orders)
    def reject_last_refund(self, order: OrderModel) -> None:
        for p in order.payments:
            if p.last_refund is None:
                continue
            r = self.control(f"/_sim/refunds/{p.last_refund}/reject")
            if r.status_code == 200:
                p.refunded -= r.json()["refund"]["amount_money"]["amount"]
            else:
                assert r.status_code == 400, r.text  # it settled already
            p.last_refund = None
            return

    @rule(order=orders, target_state=st.sampled_from(
        ["RESERVED", "PREPARED", "COMPLETED", "CANCELED", "FAILED"]))
    def progress_fulfillment(self, order: OrderModel, target_state: str) -> None:
        if order.fulfillment is None:
            return
        version = self.sdk.orders.get(order.id, request_options=RO).order.version
        self.attempt(lambda: self.sdk.orders.update(
            order.id, order={"version": version,
                             "fulfillments": [{"uid": order.fulfillment, "state": target_state}]},
            idempotency_key=self.key(), request_options=RO))

    @rule(seconds=st.sampled_from([11, 61, 3600, 8 * DAY]))
    def advance_clock(self, seconds: int) -> None:
        r = self.control("/_sim/clock/advance", {"seconds": seconds})
        assert r.status_code == 200, r.text

    @rule(order=orders, strategy=st.sampled_from(STRATEGIES),
          crash_after=st.sampled_from([None, None, None, 0, 1, 2, 3]))
    def run_strategy(self, order: OrderModel, strategy: str, crash_after: int | None) -> None:
        self.check(order, strategy, crash_after)

    def teardown(self) -> None:
        # Every example checks something: the last order gets `auto` if nothing ran yet.
        if not self.checked and self.models:
            self.check(self.models[-1], "auto", None)

    # -------------------------------------------------------------------------- checks
    def run(self, order: OrderModel, strategy: str, client: Square | None = None) -> Outcome:
        return cancel_order(client or self.sdk, order.id, reason=REASON, strategy=strategy,
                            variants=self.variants)

    def check(self, order: OrderModel, strategy: str, crash_after: int | None) -> None:
        self.checked = True
        crashed = False
        if crash_after is not None:
            crashy = Square(token=self.token, base_url="http://testserver",
                            httpx_client=CrashingHttp(self.http, crash_after))  # type: ignore[arg-type]
            try:
                out = self.run(order, strategy, crashy)
            except ResponseLost:
                crashed = True
        if crash_after is None or crashed:
            out = self.run(order, strategy)
        self.check_prediction(out)
        if crashed:
            self.check_refund_counts(order)
        else:
            self.check_money_moved_once(order, out)
        if strategy == "auto":
            self.check_auto_goal(order, out)
        if strategy == "naive_refund_then_cancel":
            self.check_naive(out)
        self.check_rerun(order, strategy, out)
        self.sync(order, out, counted=crashed)

    def check_prediction(self, out: Outcome) -> None:
        plan = out.plan
        assert not out.unpredicted, (plan.describe(), out.describe())
        assert out.clock == "/_sim/clock"
        assert out.final == plan.predicted, (plan.describe(), out.describe())
        assert len(out.steps) == len(plan.steps), (plan.describe(), out.describe())
        for step, result in zip(plan.steps, out.steps):
            assert result.ok == (step.expect is None), (plan.describe(), out.describe())
            if step.expect is not None:
                assert result.rule == step.expect
                assert dict(result.errors[0]) == dict(step.expect_error)
        assert out.refunded_money == plan.refund_money
        assert out.voided_money == plan.void_money
        assert (out.error is None) == (plan.failure is None)

    def check_money_moved_once(self, order: OrderModel, out: Outcome) -> None:
        """Each payment gets at most one refund per run, for exactly what was left on it."""
        refunded: dict[str, int] = {}
        for r in out.steps:
            if r.ok and r.step.action == "RefundPayment":
                assert r.step.target not in refunded, out.describe()
                refunded[r.step.target] = r.step.amount
        for pid, amount in refunded.items():
            assert out.final.refunded[pid] == out.plan.start.refunded[pid] + amount

    def check_refund_counts(self, order: OrderModel) -> None:
        """After a crash and a second run, no payment received more than one new refund."""
        for p in order.payments:
            current = self.sdk.payments.get(p.id, request_options=RO).payment
            count = len(current.refund_ids or [])
            assert count - p.refunds in (0, 1), (p, current.refund_ids)
            p.refunds = count

    def check_auto_goal(self, order: OrderModel, out: Outcome) -> None:
        start, final = out.plan.start, out.final
        assert out.ok, out.describe()
        totals = {p.id: p.total for p in order.payments}
        for pid, status in final.payments.items():
            assert status != "APPROVED", out.describe()
            if status == "COMPLETED":
                assert final.refunded[pid] == totals[pid], out.describe()
        for uid, state in final.fulfillments.items():
            assert state in ("COMPLETED", "CANCELED", "FAILED"), out.describe()
            if start.fulfillments[uid] not in ("COMPLETED", "CANCELED", "FAILED"):
                assert state == "CANCELED"
        if cancel_expected(start, self.variants):
            assert final.order_state == "CANCELED", out.describe()
        else:
            assert final.order_state == start.order_state, out.describe()
            assert out.plan.ruled_out or start.order_state == "CANCELED"

    def check_naive(self, out: Outcome) -> None:
        start = out.plan.start
        captured = any(s == "COMPLETED" for s in start.payments.values())
        states = list(start.fulfillments.values())
        if start.order_state == "OPEN" and captured and (
                not states or any(s != "CANCELED" for s in states)):
            assert out.error is not None, out.describe()
            assert out.error.step.state == "CANCELED"
            assert out.error.status == 400
            assert dict(out.error.errors[0]) == SEED_ERROR
            assert out.error.rule == "order.cancel_after_payment"
            assert "order.cancel_after_payment" in out.rules_hit

    def check_rerun(self, order: OrderModel, strategy: str, out: Outcome) -> None:
        again = self.run(order, strategy)
        assert again.refunded_money == 0 and again.voided_money == 0, again.describe()
        assert again.final.order_state == out.final.order_state
        assert again.final.fulfillments == out.final.fulfillments
        for pid, status in again.final.payments.items():
            assert out.final.payments[pid] == status
            assert out.final.refunded[pid] == again.final.refunded[pid]
        for r in again.steps:
            assert not r.ok or r.step.action == "UpdateOrder" and r.response.get("skipped"), again.describe()
        if strategy == "auto":
            assert again.steps == ()

    def sync(self, order: OrderModel, out: Outcome, *, counted: bool) -> None:
        """Bring the local model up to date with what the run did."""
        made = {r.step.target for r in out.steps if r.ok and r.step.action == "RefundPayment"}
        for p in order.payments:
            if p.id in out.final.refunded:
                p.refunded = out.final.refunded[p.id]
            if p.id in made and not counted:
                p.refunds += 1
                p.last_refund = None


SETTINGS = settings(stateful_step_count=6, deadline=None)


class DefaultVariants(StrategyWorld):
    VARIANTS: dict[str, str] = {}


class NeverCancelAfterPayment(StrategyWorld):
    VARIANTS = {"cancel_after_payment": "never"}


TestStrategiesDefaultVariants = DefaultVariants.TestCase
TestStrategiesDefaultVariants.settings = SETTINGS
TestStrategiesCancelAfterPaymentNever = NeverCancelAfterPayment.TestCase
TestStrategiesCancelAfterPaymentNever.settings = SETTINGS

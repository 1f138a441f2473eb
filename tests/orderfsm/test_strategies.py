"""Unit tests of the cancellation planner and executor (orderfsm.strategies)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette prefers httpx2; the SDK needs an httpx.Client
    from starlette.testclient import TestClient

from square import Square
from square.core.api_error import ApiError

from orderfsm.engine import Engine
from orderfsm.rules import CATALOG
from orderfsm.strategies import (
    STRATEGIES,
    Step,
    cancel_order,
    plan_cancellation,
    rule_for_error,
)
from simulator import create_app
from simulator.store import SimulatorConfig

pytestmark = pytest.mark.filterwarnings(
    "ignore:You should not use the 'timeout' argument with the TestClient")

RO: dict[str, Any] = {"max_retries": 0}
REASON = "Customer changed their mind"
SEED_ERROR = {
    "code": "BAD_REQUEST",
    "detail": "Orders cannot be canceled after payments have been processed.",
    "field": "order.state",
    "category": "INVALID_REQUEST_ERROR",
}
NEVER = {"cancel_after_payment": "never"}
SEED_FILE = Path("/work/shared/seed/forum-thread-cancel-order-after-refund.txt")


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


# ================================================================ worlds on a bare engine
class World:
    """Orders, payments and refunds made on an Engine: the same JSON the API returns."""

    def __init__(self, **engine_kwargs: Any) -> None:
        self.eng = Engine(**engine_kwargs)
        self.n = 0

    def key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    def order(self, amount: int = 1000, *, pickup: bool = True) -> str:
        body: dict[str, Any] = {"location_id": self.eng.main_location_id, "line_items": [
            {"name": "Latte", "quantity": "1", "base_price_money": usd(amount)}]}
        if pickup:
            body["fulfillments"] = [{"type": "PICKUP",
                                     "pickup_details": {"recipient": {"display_name": "Ann"}}}]
        return self.eng.create_order(body)["id"]

    def pay(self, order_id: str, amount: int, *, autocomplete: bool = True,
            source: str = "cnon:card-nonce-ok") -> dict[str, Any]:
        return self.eng.create_payment({
            "source_id": source, "idempotency_key": self.key(), "amount_money": usd(amount),
            "order_id": order_id, "autocomplete": autocomplete})

    def refund(self, payment_id: str, amount: int) -> dict[str, Any]:
        return self.eng.refund_payment({"payment_id": payment_id, "amount_money": usd(amount),
                                        "idempotency_key": self.key()})

    def records(self, order_id: str) -> tuple[dict, list[dict], list[dict]]:
        order = self.eng.get_order(order_id)
        payments = [p for p in self.eng.payments.values() if p.get("order_id") == order_id]
        refunds = [r for r in self.eng.refunds.values()
                   if any(r["payment_id"] == p["id"] for p in payments)]
        return order, [self.eng.render_payment(p) for p in payments], refunds

    def plan(self, order_id: str, strategy: str = "auto", **kwargs: Any):
        order, payments, refunds = self.records(order_id)
        return plan_cancellation(order, payments, refunds, strategy=strategy, reason=REASON,
                                 **kwargs)


def seed_world(**engine_kwargs: Any) -> tuple[World, str, dict]:
    """The seed thread: an order with a pickup, paid in full, then fully refunded."""
    w = World(**engine_kwargs)
    oid = w.order(1000)
    p = w.pay(oid, 1000)
    w.refund(p["id"], 1000)
    return w, oid, p


# ====================================================================== planner (pure)
def test_naive_predicts_the_seed_error() -> None:
    w, oid, _ = seed_world()
    plan = w.plan(oid, "naive_refund_then_cancel")
    assert [s.action for s in plan.steps] == ["UpdateOrder"]  # the refund was already made
    assert plan.failure is plan.steps[-1]
    assert plan.failure.expect == "order.cancel_after_payment"
    assert dict(plan.failure.expect_error) == SEED_ERROR
    assert plan.predicted.order_state == "OPEN"
    assert "order.cancel_after_payment" in plan.rules
    assert not plan.goal_reached


def test_auto_under_default_variants_cancels_fulfillments_then_the_order() -> None:
    w, oid, p = seed_world()
    plan = w.plan(oid)
    assert plan.picked == "refund_then_cancel_fulfillments_then_cancel"
    # Nothing left to refund; the pickup is canceled in a call of its own, then the order.
    assert [(s.action, s.fulfillments != (), s.state) for s in plan.steps] == [
        ("UpdateOrder", True, None), ("UpdateOrder", False, "CANCELED")]
    assert plan.predicted.order_state == "CANCELED"
    assert set(plan.predicted.fulfillments.values()) == {"CANCELED"}
    assert plan.predicted.refunded == {p["id"]: 1000}


def test_auto_refunds_and_cancels_a_paid_order() -> None:
    w = World()
    oid = w.order(1000)
    p = w.pay(oid, 1000)
    plan = w.plan(oid)
    assert plan.picked == "refund_then_cancel_fulfillments_then_cancel"
    assert [s.describe().split()[0] for s in plan.steps] == ["RefundPayment", "UpdateOrder",
                                                            "UpdateOrder"]
    assert plan.steps[0].amount == 1000 and plan.refund_money == 1000
    assert plan.predicted.order_state == "CANCELED"
    assert plan.predicted.refunded == {p["id"]: 1000}


def test_auto_under_never_returns_the_money_and_cancels_the_fulfillment() -> None:
    w = World(variants=NEVER)
    oid = w.order(1000)
    p = w.pay(oid, 1000)
    plan = w.plan(oid, variants=NEVER)
    assert plan.picked == "refund_only+cancel_fulfillments_only"
    assert plan.predicted.order_state == "OPEN"
    assert set(plan.predicted.fulfillments.values()) == {"CANCELED"}
    assert plan.predicted.refunded == {p["id"]: 1000}
    [left_out] = plan.ruled_out
    assert left_out.step.state == "CANCELED" and left_out.rule == "order.cancel_after_payment"
    assert dict(left_out.error) == SEED_ERROR
    assert any("order.cancel_after_payment" in n for n in plan.notes)


def test_the_same_records_plan_differently_under_each_variant() -> None:
    w, oid, _ = seed_world()
    default = w.plan(oid, "refund_then_cancel_fulfillments_then_cancel")
    never = w.plan(oid, "refund_then_cancel_fulfillments_then_cancel", variants=NEVER)
    assert default.failure is None and default.predicted.order_state == "CANCELED"
    assert never.failure is not None and never.failure.expect == "order.cancel_after_payment"
    assert never.predicted.fulfillments == default.predicted.fulfillments


def test_void_then_cancel_for_delayed_capture() -> None:
    w = World(variants=NEVER)
    oid = w.order(1000)
    a = w.pay(oid, 400, autocomplete=False)
    b = w.pay(oid, 600, autocomplete=False)
    plan = w.plan(oid, variants=NEVER)
    assert plan.picked == "void_then_cancel"
    assert [s.action for s in plan.steps] == ["CancelPayment", "CancelPayment", "UpdateOrder"]
    assert plan.steps[-1].state == "CANCELED" and plan.steps[-1].fulfillments
    assert plan.void_money == 1000 and plan.refund_money == 0
    assert plan.predicted.payments == {a["id"]: "CANCELED", b["id"]: "CANCELED"}
    assert plan.predicted.order_state == "CANCELED"


def test_naive_on_an_authorized_order_hits_the_open_fulfillment_rule() -> None:
    w = World()
    oid = w.order(1000)
    w.pay(oid, 1000, autocomplete=False)
    plan = w.plan(oid, "naive_refund_then_cancel")
    assert plan.failure is not None
    assert plan.failure.expect == "order.cancel_open_fulfillments"


def test_completed_orders_get_their_money_back_and_stay_completed() -> None:
    w = World()
    oid = w.order(1000, pickup=False)
    p = w.pay(oid, 1000)
    assert w.eng.get_order(oid)["state"] == "COMPLETED"
    plan = w.plan(oid)
    assert plan.picked == "refund_only"
    assert [s.action for s in plan.steps] == ["RefundPayment"]
    assert plan.predicted.order_state == "COMPLETED"
    assert plan.predicted.refunded == {p["id"]: 1000}
    assert [r.rule for r in plan.ruled_out] == ["order.terminal_frozen"]


def test_partial_refunds_are_topped_up_not_repeated() -> None:
    w = World()
    oid = w.order(1000)
    p = w.pay(oid, 1000)
    w.refund(p["id"], 300)
    plan = w.plan(oid, "refund_only")
    assert [(s.action, s.amount) for s in plan.steps] == [("RefundPayment", 700)]
    assert plan.predicted.refunded == {p["id"]: 1000}


def test_refunds_not_given_are_stood_in_for_by_refunded_money() -> None:
    w = World()
    oid = w.order(1000)
    p = w.pay(oid, 1000)
    w.refund(p["id"], 250)
    order, payments, _ = w.records(oid)
    plan = plan_cancellation(order, payments, strategy="refund_only")  # no refunds passed
    assert [(s.action, s.amount) for s in plan.steps] == [("RefundPayment", 750)]


def test_a_failed_refund_stops_further_refunds_and_auto_says_so() -> None:
    w = World()
    oid = w.order(1000)
    p = w.pay(oid, 1000)
    r = w.refund(p["id"], 300)
    w.eng.fail_refund(r["id"])
    plan = w.plan(oid)
    assert [x.rule for x in plan.ruled_out if x.step.action == "RefundPayment"] == ["refund.after_failed"]
    assert plan.refund_money == 0
    named = w.plan(oid, "refund_only")
    assert named.failure is not None and named.failure.expect == "refund.after_failed"


def test_a_pending_bank_payment_cannot_be_refunded_yet() -> None:
    w = World()
    oid = w.order(1000)
    p = w.pay(oid, 1000, source="bnon:bank-nonce-ok")
    assert p["status"] == "PENDING"
    plan = w.plan(oid)
    assert [(x.step.action, x.rule) for x in plan.ruled_out] == [
        ("RefundPayment", "refund.payment_not_refundable")]
    assert plan.predicted.payments == {p["id"]: "PENDING"}


def test_an_already_canceled_order_needs_nothing() -> None:
    w = World()
    oid = w.order(1000)
    plan = w.plan(oid)
    assert plan.picked == "void_then_cancel" and plan.predicted.order_state == "CANCELED"
    w.eng.update_order(oid, {"version": w.eng.get_order(oid)["version"], "state": "CANCELED",
                             "fulfillments": [{"uid": f, "state": "CANCELED"}
                                              for f in plan.predicted.fulfillments]})
    again = w.plan(oid)
    assert again.steps == () and again.picked == "nothing_to_do" and again.goal_reached


def test_cancel_fulfillments_only_moves_no_money() -> None:
    w = World()
    oid = w.order(1000)
    p = w.pay(oid, 1000)
    plan = w.plan(oid, "cancel_fulfillments_only")
    assert [s.action for s in plan.steps] == ["UpdateOrder"]
    assert plan.steps[0].state is None
    assert plan.refund_money == plan.void_money == 0
    assert plan.predicted.order_state == "OPEN"
    assert plan.predicted.payments == {p["id"]: "COMPLETED"}
    assert plan.predicted.refunded == {p["id"]: 0}


def test_every_cited_rule_is_in_the_catalog() -> None:
    w = World()
    oid = w.order(1000)
    w.pay(oid, 400, autocomplete=False)
    w.pay(oid, 600)
    for strategy in STRATEGIES:
        for variants in (None, NEVER):
            plan = w.plan(oid, strategy, variants=variants)
            assert plan.rules, strategy
            assert set(plan.rules) <= set(CATALOG), plan.rules


def test_planner_inputs_are_checked() -> None:
    w = World()
    oid = w.order(1000)
    w.pay(oid, 1000)
    order, payments, refunds = w.records(oid)
    with pytest.raises(ValueError, match="unknown strategy"):
        plan_cancellation(order, payments, strategy="shout")
    with pytest.raises(ValueError, match="were not given"):
        plan_cancellation(order, [])
    # Payments of other orders are ignored.
    plan = plan_cancellation(order, [*payments, {"id": "X", "order_id": "ELSEWHERE",
                                                 "status": "COMPLETED"}])
    assert set(plan.start.payments) == {payments[0]["id"]}


def test_step_http_calls() -> None:
    assert Step("CancelPayment", "P1").http == "POST /v2/payments/P1/cancel"
    assert Step("RefundPayment", "P1", 5).http == "POST /v2/refunds"
    assert Step("UpdateOrder", "O1", state="CANCELED").http == "PUT /v2/orders/O1"


# ======================================================================= error -> rule
def test_rule_for_error() -> None:
    assert rule_for_error(SEED_ERROR) == "order.cancel_after_payment"
    mismatch = {"code": "VERSION_MISMATCH", "category": "INVALID_REQUEST_ERROR",
                "detail": "Supplied version 1 does not match the current version 7 of order "
                          "AzlCrafSsgqjLxOJDfhGiqLOEyPZY.", "field": "order.version"}
    assert rule_for_error(mismatch) == "order.version_mismatch"
    assert rule_for_error({**mismatch, "field": "order_version"}) == "pay_order.version_mismatch"
    assert rule_for_error({"code": "NOPE", "detail": "?"}) is None


def test_every_catalog_error_maps_back_to_its_rule() -> None:
    from orderfsm.reference import error_body

    for rule in CATALOG.values():
        if rule.error is not None:
            assert rule_for_error(error_body(rule)["errors"][0]) == rule.id


def test_the_seed_error_is_the_one_in_the_thread() -> None:
    if not SEED_FILE.exists():
        pytest.skip("the shared seed thread is not available here")
    text = SEED_FILE.read_text()
    match = re.search(r'\{"errors": \[.*?\]\}', text)
    assert match is not None
    assert json.loads(match.group(0)) == {"errors": [SEED_ERROR]}


# ================================================================== executor (simulator)
@pytest.fixture(scope="module")
def http() -> Any:
    apps = {}

    def get(variants: dict[str, str] | None = None) -> TestClient:
        key = json.dumps(variants or {}, sort_keys=True)
        if key not in apps:
            apps[key] = TestClient(create_app(SimulatorConfig(log_requests=False, webhooks=False),
                                              variants=variants or {}))
        return apps[key]

    yield get
    for tc in apps.values():
        tc.close()


_token = iter(range(10**9))


class Merchant:
    """A fresh merchant on the in-process simulator, driven through the SDK."""

    def __init__(self, http: Any, variants: dict[str, str] | None = None) -> None:
        self.http = http(variants)
        self.token = f"unit-{next(_token)}"
        self.sdk = self.client()
        self.n = 0

    def client(self, wrap: Callable[[Any], Any] | None = None) -> Square:
        inner = self.http if wrap is None else wrap(self.http)
        return Square(token=self.token, base_url="http://testserver", httpx_client=inner)

    def key(self) -> str:
        self.n += 1
        return f"{self.token}-{self.n}"

    def order(self, amount: int = 1000, *, pickup: bool = True) -> str:
        body: dict[str, Any] = {"location_id": "main", "line_items": [
            {"name": "Latte", "quantity": "1", "base_price_money": usd(amount)}]}
        if pickup:
            body["fulfillments"] = [{"type": "PICKUP",
                                     "pickup_details": {"recipient": {"display_name": "Ann"}}}]
        return self.sdk.orders.create(order=body, idempotency_key=self.key(),
                                      request_options=RO).order.id

    def pay(self, order_id: str, amount: int, autocomplete: bool = True) -> Any:
        return self.sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=self.key(),
                                        amount_money=usd(amount), order_id=order_id,
                                        autocomplete=autocomplete, request_options=RO).payment

    def refund(self, payment_id: str, amount: int) -> Any:
        return self.sdk.refunds.refund_payment(idempotency_key=self.key(), payment_id=payment_id,
                                               amount_money=usd(amount), request_options=RO).refund

    def payment(self, payment_id: str) -> Any:
        return self.sdk.payments.get(payment_id, request_options=RO).payment


class ResponseLost(Exception):
    pass


class Wrapped:
    """An httpx client stand-in that lets a test act around each request."""

    def __init__(self, inner: Any, before: Callable[[str, str], Any] | None = None,
                 after: Callable[[str, str, Any], Any] | None = None) -> None:
        self.inner = inner
        self.timeout = inner.timeout
        self.before = before
        self.after = after

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        if self.before is not None:
            replaced = self.before(method.upper(), str(url))
            if replaced is not None:
                return replaced
        response = self.inner.request(method, url, **kwargs)
        if self.after is not None:
            self.after(method.upper(), str(url), response)
        return response


def crash_after(writes: int) -> Callable[[Any], Wrapped]:
    """The first ``writes`` POST/PUT calls go through; the next is applied by the server and
    then its response is lost."""
    left = [writes]

    def after(method: str, url: str, response: Any) -> None:
        if method in ("POST", "PUT"):
            if left[0] == 0:
                raise ResponseLost(url)
            left[0] -= 1

    return lambda inner: Wrapped(inner, after=after)


def test_naive_strategy_reports_the_seed_error_without_raising(http: Any) -> None:
    m = Merchant(http)
    oid = m.order()
    p = m.pay(oid, 1000)
    out = cancel_order(m.sdk, oid, reason=REASON, strategy="naive_refund_then_cancel")
    assert not out.ok and not out.canceled
    assert [r.ok for r in out.steps] == [True, False]
    assert out.steps[0].request == "POST /v2/refunds" and out.refunded_money == 1000
    assert out.error is out.steps[-1]
    assert out.error.status == 400 and [dict(e) for e in out.error.errors] == [SEED_ERROR]
    assert out.error.rule == "order.cancel_after_payment"
    assert out.rules_hit == ("order.cancel_after_payment",)
    assert m.payment(p.id).refunded_money.amount == 1000
    assert out.final == out.plan.predicted


def test_auto_cancels_the_seed_order_through_the_sdk(http: Any) -> None:
    m = Merchant(http)
    oid = m.order()
    p = m.pay(oid, 1000)
    m.refund(p.id, 1000)
    out = cancel_order(m.sdk, oid, reason=REASON)
    assert out.ok and out.canceled and out.picked == "refund_then_cancel_fulfillments_then_cancel"
    assert out.refunded_money == 0 and len(out.steps) == 2
    order = m.sdk.orders.get(oid, request_options=RO).order
    assert order.state == "CANCELED"
    assert order.fulfillments[0].state == "CANCELED"
    assert order.fulfillments[0].pickup_details.cancel_reason == REASON
    assert out.final == out.plan.predicted


def test_auto_under_never_leaves_the_order_open_with_its_pickup_canceled(http: Any) -> None:
    m = Merchant(http, NEVER)
    oid = m.order()
    p = m.pay(oid, 1000)
    out = cancel_order(m.sdk, oid, reason=REASON, variants=NEVER)
    assert out.ok and not out.canceled
    assert out.picked == "refund_only+cancel_fulfillments_only"
    assert out.final.order_state == "OPEN"
    assert set(out.final.fulfillments.values()) == {"CANCELED"}
    assert out.final.refunded == {p.id: 1000}
    assert out.final == out.plan.predicted
    again = cancel_order(m.sdk, oid, reason=REASON, variants=NEVER)
    assert again.steps == () and again.final == out.final


def test_a_wrong_variant_guess_still_cancels_the_fulfillment(http: Any) -> None:
    m = Merchant(http, NEVER)
    oid = m.order()
    p = m.pay(oid, 1000)
    m.refund(p.id, 1000)
    guessed = cancel_order(m.sdk, oid, reason=REASON)  # assumes the default variants
    # The cancel was predicted to succeed: its rejection is reported as unpredicted, the
    # executor re-plans without it and finds nothing else to do.
    assert not guessed.ok and guessed.error is None
    [surprise] = guessed.unpredicted
    assert surprise.rule == "order.cancel_after_payment" and surprise.step.state == "CANCELED"
    assert dict(surprise.errors[0]) == SEED_ERROR
    assert len(guessed.plans) == 2 and guessed.plans[1].steps == ()
    assert guessed.plans[1].ruled_out[0].rule == "order.cancel_after_payment"
    assert set(guessed.final.fulfillments.values()) == {"CANCELED"}
    assert guessed.final.order_state == "OPEN"
    told = cancel_order(m.sdk, oid, reason=REASON, variants=NEVER)
    assert told.ok and told.steps == () and told.picked == "nothing_to_do"
    assert told.plan.ruled_out[0].rule == "order.cancel_after_payment"


def test_refund_reason_and_deterministic_keys(http: Any) -> None:
    m = Merchant(http)
    oid = m.order()
    p = m.pay(oid, 1000)
    out = cancel_order(m.sdk, oid, reason=REASON, strategy="refund_only")
    [step] = out.steps
    assert step.body["reason"] == REASON
    assert step.body["idempotency_key"].startswith("ofsm-rf-") and len(step.body["idempotency_key"]) <= 45
    refund = m.sdk.refunds.get(step.response["refund_id"], request_options=RO).refund
    assert refund.reason == REASON and refund.amount_money.amount == 1000 and refund.payment_id == p.id


def test_a_version_conflict_is_retried_once_after_reading_again(http: Any) -> None:
    m = Merchant(http)
    oid = m.order()
    other = m.client()
    bumps = [1]

    def before(method: str, url: str) -> None:
        if method == "PUT" and bumps[0]:
            bumps[0] -= 1  # someone else edits the order between our read and our write
            version = other.orders.get(oid, request_options=RO).order.version
            other.orders.update(oid, order={"version": version, "metadata": {"k": "v"}},
                                idempotency_key=m.key(), request_options=RO)

    out = cancel_order(m.client(lambda inner: Wrapped(inner, before=before)), oid, reason=REASON)
    assert out.ok and out.canceled
    assert out.steps[-1].retried
    assert "order.version_mismatch" in out.rules_hit


def test_a_second_version_conflict_is_reported(http: Any) -> None:
    m = Merchant(http)
    oid = m.order()
    other = m.client()

    def before(method: str, url: str) -> None:
        if method == "PUT":
            version = other.orders.get(oid, request_options=RO).order.version
            other.orders.update(oid, order={"version": version, "metadata": {"k": m.key()}},
                                idempotency_key=m.key(), request_options=RO)

    out = cancel_order(m.client(lambda inner: Wrapped(inner, before=before)), oid, reason=REASON)
    assert not out.ok and out.error is not None
    assert out.error.retried and out.error.rule == "order.version_mismatch"
    assert out.final.order_state == "OPEN"


def test_reading_a_missing_order_raises(http: Any) -> None:
    m = Merchant(http)
    with pytest.raises(ApiError) as info:
        cancel_order(m.sdk, "nope", reason=REASON)
    assert info.value.status_code == 404


@pytest.mark.parametrize("writes_before_crash", [0, 1, 2, 3])
def test_a_crash_halfway_then_a_rerun_ends_as_one_clean_run(http: Any,
                                                           writes_before_crash: int) -> None:
    m = Merchant(http)
    oid = m.order(1000)
    authorized = m.pay(oid, 400, autocomplete=False)
    captured = m.pay(oid, 600)
    with pytest.raises(ResponseLost):
        cancel_order(m.client(crash_after(writes_before_crash)), oid, reason=REASON)
    out = cancel_order(m.sdk, oid, reason=REASON)
    assert out.ok and out.canceled
    assert out.final == out.plan.predicted
    payment = m.payment(captured.id)
    assert payment.refunded_money.amount == 600
    assert len(payment.refund_ids) == 1
    assert m.payment(authorized.id).status == "CANCELED"
    assert cancel_order(m.sdk, oid, reason=REASON).steps == ()


def test_a_rerun_on_stale_reads_replays_the_refund_instead_of_refunding_twice(http: Any) -> None:
    """Reads can lag writes. A second run that still sees the payment as it was before the
    first run's refund plans the same refund with the same key, and the server replays it."""
    m = Merchant(http)
    oid = m.order(1000, pickup=False)
    p = m.pay(oid, 1000)  # COMPLETED order: refund_only
    seen: dict[str, Any] = {}

    def record(method: str, url: str, response: Any) -> None:
        if method == "GET" and "/v2/payments/" in url:
            seen.setdefault(url, response)

    def stale(method: str, url: str) -> Any:
        return seen.get(url) if method == "GET" else None

    with pytest.raises(ResponseLost):
        cancel_order(m.client(lambda inner: crash_after(0)(Wrapped(inner, after=record))), oid,
                     reason=REASON)
    assert m.payment(p.id).refunded_money.amount == 1000
    out = cancel_order(m.client(lambda inner: Wrapped(inner, before=stale)), oid, reason=REASON)
    assert [s.step.action for s in out.steps] == ["RefundPayment"]
    assert out.steps[0].ok
    payment = m.payment(p.id)
    assert len(payment.refund_ids) == 1 and payment.refunded_money.amount == 1000
    assert out.steps[0].response["refund_id"] == payment.refund_ids[0]


def test_sdk_models_and_dicts_plan_alike(http: Any) -> None:
    m = Merchant(http)
    oid = m.order(1000)
    a = m.pay(oid, 400, autocomplete=False)
    b = m.pay(oid, 600)
    r = m.refund(b.id, 100)
    order = m.sdk.orders.get(oid, request_options=RO).order
    payments = [m.payment(a.id), m.payment(b.id)]
    refunds = [m.sdk.refunds.get(r.id, request_options=RO).refund]
    from_models = plan_cancellation(order, payments, refunds, reason=REASON)
    from_dicts = plan_cancellation(order.model_dump(mode="json", exclude_none=True),
                                   [p.model_dump(mode="json", exclude_none=True) for p in payments],
                                   [x.model_dump(mode="json", exclude_none=True) for x in refunds],
                                   reason=REASON)
    assert from_models.steps == from_dicts.steps
    assert from_models.predicted == from_dicts.predicted
    assert [(s.action, s.amount) for s in from_models.steps[:2]] == [("CancelPayment", 400),
                                                                    ("RefundPayment", 500)]


def test_client_errors_outside_square_propagate(http: Any) -> None:
    m = Merchant(http)
    oid = m.order()

    def boom(method: str, url: str) -> None:
        raise httpx.ConnectError("no route")

    with pytest.raises(httpx.ConnectError):
        cancel_order(m.client(lambda inner: Wrapped(inner, before=boom)), oid, reason=REASON)


# ============================================================ server time and re-planning
YEAR_AND_A_MONTH = 400 * 86400


def paid_pickup_left_alone(m: Merchant) -> tuple[str, Any]:
    """The regression story: a paid pickup order nobody touched for more than a year."""
    oid = m.order(1000)
    p = m.pay(oid, 1000)
    r = m.http.post("/_sim/clock/advance", json={"seconds": YEAR_AND_A_MONTH},
                    headers={"Authorization": f"Bearer {m.token}"})
    assert r.status_code == 200, r.text
    return oid, p


class NoSimClock:
    """An httpx client stand-in for a server without /_sim/clock; ``date`` (a datetime) is sent
    as the Date header of every answer, as a real server would."""

    def __init__(self, inner: Any, date: Any = None) -> None:
        self.inner = inner
        self.timeout = inner.timeout
        self.date = date

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        if "/_sim/" in str(url):
            return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND"}]},
                                  request=httpx.Request(method, str(url)))
        response = self.inner.request(method, url, **kwargs)
        if self.date is not None:
            from email.utils import format_datetime

            response.headers["date"] = format_datetime(self.date, usegmt=True)
        return response


def test_a_paid_pickup_left_for_400_days_is_canceled_by_auto(http: Any) -> None:
    """The counterexample: the refund is too old, the pickup and the order can still go."""
    m = Merchant(http)
    oid, p = paid_pickup_left_alone(m)
    out = cancel_order(m.sdk, oid, reason=REASON, strategy="auto")
    assert out.clock == "/_sim/clock"
    assert out.ok and out.canceled, out.describe()
    assert [r.rule for r in out.plan.ruled_out] == ["refund.too_old"]
    assert [(r.step.action, r.step.state) for r in out.steps] == [
        ("UpdateOrder", None), ("UpdateOrder", "CANCELED")]
    order = m.sdk.orders.get(oid, request_options=RO).order
    assert order.state == "CANCELED" and order.fulfillments[0].state == "CANCELED"
    assert m.payment(p.id).refunded_money is None  # nothing could be refunded
    assert out.final == out.plan.predicted
    assert cancel_order(m.sdk, oid, reason=REASON).steps == ()


@pytest.mark.parametrize("strategy,rule", [
    ("naive_refund_then_cancel", "refund.too_old"),
    ("refund_then_cancel_fulfillments_then_cancel", "refund.too_old"),
    ("refund_only", "refund.too_old"),
])
def test_named_strategies_predict_the_too_old_refund(http: Any, strategy: str, rule: str) -> None:
    m = Merchant(http)
    oid, _ = paid_pickup_left_alone(m)
    out = cancel_order(m.sdk, oid, reason=REASON, strategy=strategy)
    assert out.plan.failure is not None and out.plan.failure.expect == rule
    assert out.error is not None and out.error.rule == rule and not out.unpredicted
    assert out.final == out.plan.predicted


def test_the_date_header_dates_the_plan_without_a_sim_clock(http: Any) -> None:
    m = Merchant(http)
    oid, _ = paid_pickup_left_alone(m)
    server_now = m.sdk.orders.get(oid, request_options=RO).order  # just to have the records
    clock_now = http(None).get("/_sim/clock", headers={"Authorization": f"Bearer {m.token}"})
    from orderfsm.clock import parse_rfc3339

    now = parse_rfc3339(clock_now.json()["now"])
    out = cancel_order(m.client(lambda inner: NoSimClock(inner, now)), oid, reason=REASON)
    assert out.clock == "Date header" and out.now == now
    assert out.ok and out.canceled and not out.unpredicted
    assert server_now.state == "OPEN"


def test_the_now_argument_dates_the_plan(http: Any) -> None:
    m = Merchant(http)
    oid, _ = paid_pickup_left_alone(m)
    from datetime import timedelta

    from orderfsm.clock import parse_rfc3339

    created = parse_rfc3339(m.sdk.orders.get(oid, request_options=RO).order.created_at)
    out = cancel_order(m.client(lambda inner: NoSimClock(inner)), oid, reason=REASON,
                       now=created + timedelta(days=400))
    assert out.clock == "argument"
    assert out.ok and out.canceled and not out.unpredicted


def test_an_unpredicted_refund_rejection_does_not_stop_the_cancellation(http: Any) -> None:
    """Without any server time the planner dates "now" from the records and expects the refund
    to work; the server rejects it, and the executor re-plans and cancels anyway."""
    m = Merchant(http)
    oid, p = paid_pickup_left_alone(m)
    out = cancel_order(m.client(lambda inner: NoSimClock(inner)), oid, reason=REASON)
    assert out.clock == "records"
    assert out.canceled and not out.ok and out.error is None, out.describe()
    [surprise] = out.unpredicted
    assert surprise.step.action == "RefundPayment" and surprise.rule == "refund.too_old"
    assert "refund.too_old" in out.rules_hit
    assert len(out.plans) == 2
    assert [r.rule for r in out.plans[1].ruled_out] == ["refund.too_old"]
    assert [(r.step.action, r.ok) for r in out.steps] == [
        ("RefundPayment", False), ("UpdateOrder", True), ("UpdateOrder", True)]
    assert "not predicted" in out.describe() and "re-planned 1 time" in out.describe()
    order = m.sdk.orders.get(oid, request_options=RO).order
    assert order.state == "CANCELED" and order.fulfillments[0].state == "CANCELED"
    assert m.payment(p.id).refunded_money is None


def test_plan_cancellation_judges_age_at_the_given_now() -> None:
    from datetime import timedelta

    from orderfsm.clock import parse_rfc3339

    w = World()
    oid = w.order(1000)
    w.pay(oid, 1000)
    created = parse_rfc3339(w.eng.get_order(oid)["created_at"])
    young = w.plan(oid)
    old = w.plan(oid, now=created + timedelta(days=400))
    assert young.steps[0].action == "RefundPayment" and young.now == created
    assert old.now == created + timedelta(days=400)
    assert [r.rule for r in old.ruled_out] == ["refund.too_old"]
    assert old.goal_reached and old.picked == "refund_then_cancel_fulfillments_then_cancel"
    # A now before the records is taken as the newest record's time.
    assert w.plan(oid, now=created - timedelta(days=3)).now == created


def test_a_pickup_added_after_payment_does_not_make_auto_cancel(http: Any) -> None:
    """order.fulfillment_added_after_payment: auto does not add a pickup to cancel a paid
    fulfillment-less order, and by hand that path fails too."""
    m = Merchant(http)
    oid = m.order(1000, pickup=False)
    p = m.pay(oid, 400, autocomplete=False)
    m.sdk.payments.complete(p.id, request_options=RO)  # part of the total captured: stays OPEN
    out = cancel_order(m.sdk, oid, reason=REASON)
    assert out.ok and not out.canceled and out.final.order_state == "OPEN"
    assert [s.action for s in out.plan.steps] == ["RefundPayment"]
    assert [r.rule for r in out.plan.ruled_out] == ["order.cancel_after_payment"]
    version = m.sdk.orders.get(oid, request_options=RO).order.version
    m.sdk.orders.update(oid, order={"version": version, "fulfillments": [
        {"type": "PICKUP", "state": "CANCELED",
         "pickup_details": {"recipient": {"display_name": "Ann"}}}]},
        idempotency_key=m.key(), request_options=RO)
    version = m.sdk.orders.get(oid, request_options=RO).order.version
    with pytest.raises(ApiError) as info:
        m.sdk.orders.update(oid, order={"version": version, "state": "CANCELED"},
                            idempotency_key=m.key(), request_options=RO)
    assert info.value.body["errors"][0] == SEED_ERROR

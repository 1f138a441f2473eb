"""The cancellation strategies judged by an oracle that does not share their rules.

tests/orderfsm/test_strategies_machine.py compares each plan with what the simulator did; the
planner and the simulator run the same engine, so a rule both get wrong passes there. This suite
judges only by reading state back through the official SDK, against properties stated here:

* refunds (PENDING and COMPLETED) never exceed a payment's captured money, and no run, nor a
  crash followed by a rerun, gives a payment more than one new refund;
* after ``auto``: no APPROVED payment is left, every fulfillment that was open is CANCELED, and
  the order is CANCELED exactly when one of a few by-hand call sequences, tried on a copy of
  the merchant made from ``/_sim/state``, ends with it CANCELED (see ``by_hand``);
* a second run, with a fresh client, changes nothing (order version included);
* a response lost after each write the run makes, followed by a rerun with a fresh client,
  ends where the uninterrupted run ended, and keeps all of the above.

Histories are random: orders with and without a pickup, captured, authorized, split, partly
captured and bank payments, partial and full refunds, rejected and failed refunds, fulfillment
progress, a pickup added after payment, and clock jumps of up to 400 days. Every example runs on
a fresh merchant from ``orderfsm.simulator.merchant``, under the default variants and under
``cancel_after_payment=never``. The example count is half the hypothesis profile's (100 with
``ci``, 1,000 with ``deep``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from square.core.api_error import ApiError

from orderfsm.simulator import SimulatorMerchant, merchant
from orderfsm.strategies import STRATEGIES, cancel_order

RO: dict[str, Any] = {"max_retries": 0}
REASON = "Customer changed their mind"
DAY = 86400
OPEN_FULFILLMENT = ("PROPOSED", "RESERVED", "PREPARED")
NEVER = {"cancel_after_payment": "never"}
EXAMPLES = max(10, settings.default.max_examples // 2)
ORACLE = settings(max_examples=EXAMPLES, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


PICKUP = {"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "Ann"}}}


# ================================================================================ histories
@dataclass
class History:
    """What was built on the merchant (ids only: the oracle reads everything else back)."""

    order_id: str
    payments: list[str] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)


_keys = itertools.count()


def key() -> str:
    return f"oracle-{next(_keys)}"


def attempt(call: Callable[[], Any]) -> Any:
    """A history step the rules may refuse; a refusal must be a Square 4xx error."""
    try:
        return call()
    except ApiError as exc:
        assert 400 <= exc.status_code < 500, exc.body
        assert exc.body["errors"][0]["category"], exc.body
        return None


PAY_MODES = ["none", "capture", "authorize", "authorize_expiring", "partial_capture", "split",
             "split_mixed", "bank"]
STEPS = st.one_of(
    st.tuples(st.just("capture"), st.integers(0, 1)),
    st.tuples(st.just("refund"), st.integers(0, 1), st.sampled_from([1, 2])),
    st.tuples(st.just("refund_outcome"), st.sampled_from(["reject", "fail", "settle"])),
    st.tuples(st.just("fulfillment"),
              st.sampled_from(["RESERVED", "PREPARED", "COMPLETED", "CANCELED", "FAILED"])),
    st.tuples(st.just("add_pickup"), st.sampled_from(["PROPOSED", "CANCELED"])),
    st.tuples(st.just("clock"), st.sampled_from([11, 61, 3600, 8 * DAY, 200 * DAY, 400 * DAY])),
)


@st.composite
def histories(draw: Any) -> dict[str, Any]:
    return {
        "amount": draw(st.sampled_from([500, 1250, 2000])),
        "pickup": draw(st.booleans()),
        "pay": draw(st.sampled_from(PAY_MODES)),
        "steps": draw(st.lists(STEPS, max_size=5)),
        # The last thing before the run: often a long wait (stale orders are the usual case).
        "wait": draw(st.sampled_from([0, 0, 61, 8 * DAY, 400 * DAY, 400 * DAY])),
        "strategy": draw(st.sampled_from(STRATEGIES + ("auto", "auto", "auto"))),
    }


def build(m: SimulatorMerchant, spec: dict[str, Any]) -> History:
    sdk = m.client
    body: dict[str, Any] = {"location_id": "main", "line_items": [
        {"name": "Latte", "quantity": "1", "base_price_money": usd(spec["amount"])}]}
    if spec["pickup"]:
        body["fulfillments"] = [dict(PICKUP)]
    order = sdk.orders.create(order=body, idempotency_key=key(), request_options=RO).order
    h = History(order.id)
    total = spec["amount"]

    def pay(amount: int, *, autocomplete: bool = True, source: str = "cnon:card-nonce-ok",
            **extra: Any) -> str | None:
        p = attempt(lambda: sdk.payments.create(
            source_id=source, idempotency_key=key(), amount_money=usd(amount), order_id=h.order_id,
            autocomplete=autocomplete, request_options=RO, **extra).payment)
        if p is not None:
            h.payments.append(p.id)
        return p.id if p is not None else None

    mode = spec["pay"]
    if mode == "capture":
        pay(total)
    elif mode == "authorize":
        pay(total, autocomplete=False)
    elif mode == "authorize_expiring":
        pay(total, autocomplete=False, delay_duration="PT1M", delay_action="CANCEL")
    elif mode == "partial_capture":
        pid = pay(total * 2 // 5, autocomplete=False)
        if pid:
            attempt(lambda: sdk.payments.complete(pid, request_options=RO))
    elif mode in ("split", "split_mixed"):
        pay(total * 2 // 5, autocomplete=False)
        pay(total - total * 2 // 5, autocomplete=(mode == "split_mixed"))
    elif mode == "bank":
        pay(total, source="bnon:bank-nonce-ok")

    for step in spec["steps"]:
        kind = step[0]
        if kind == "capture" and h.payments:
            pid = h.payments[step[1] % len(h.payments)]
            attempt(lambda: sdk.payments.complete(pid, request_options=RO))
        elif kind == "refund" and h.payments:
            p = sdk.payments.get(h.payments[step[1] % len(h.payments)], request_options=RO).payment
            left = (p.total_money.amount if p.total_money else 0) - (
                p.refunded_money.amount if p.refunded_money else 0)
            amount = left // step[2]
            if amount > 0:
                r = attempt(lambda: sdk.refunds.refund_payment(
                    idempotency_key=key(), payment_id=p.id, amount_money=usd(amount),
                    request_options=RO).refund)
                if r is not None:
                    h.refunds.append(r.id)
        elif kind == "refund_outcome" and h.refunds:
            r = m.http.post(f"/_sim/refunds/{h.refunds[-1]}/{step[1]}")
            assert r.status_code in (200, 400), r.text  # 400: it is no longer PENDING
        elif kind in ("fulfillment", "add_pickup"):
            o = sdk.orders.get(h.order_id, request_options=RO).order
            if kind == "fulfillment" and o.fulfillments:
                change = [{"uid": o.fulfillments[0].uid, "state": step[1]}]
            elif kind == "add_pickup" and not o.fulfillments:
                change = [dict(PICKUP, state=step[1])]
            else:
                continue
            attempt(lambda: sdk.orders.update(h.order_id, order={
                "version": o.version, "fulfillments": change}, idempotency_key=key(),
                request_options=RO))
        elif kind == "clock":
            m.clock.advance(step[1])
    if spec.get("wait"):
        m.clock.advance(spec["wait"])
    return h


# ================================================================================== reading
def observe(sdk: Any, h: History) -> dict[str, Any]:
    """The order and its payments and refunds, as the SDK reads them back."""
    o = sdk.orders.get(h.order_id, request_options=RO).order
    payments = {}
    for pid in h.payments:
        p = sdk.payments.get(pid, request_options=RO).payment
        refunds = {}
        for rid in p.refund_ids or []:
            r = sdk.refunds.get(rid, request_options=RO).refund
            refunds[rid] = (r.status, r.amount_money.amount)
        payments[pid] = {
            "status": p.status,
            "total": p.total_money.amount if p.total_money else 0,
            "refunded": p.refunded_money.amount if p.refunded_money else 0,
            "refunds": refunds,
        }
    return {
        "state": o.state,
        "version": o.version,
        "fulfillments": {f.uid: f.state for f in o.fulfillments or []},
        "payments": payments,
    }


def outcome_of(seen: dict[str, Any]) -> dict[str, Any]:
    """What a run decides: states and money, without versions or refund ids."""
    return {
        "state": seen["state"],
        "fulfillments": seen["fulfillments"],
        "payments": {pid: (p["status"], p["refunded"], sorted(
            (s, a) for s, a in p["refunds"].values())) for pid, p in seen["payments"].items()},
    }


# ================================================================================= by hand
def by_hand(m: SimulatorMerchant, h: History) -> str | None:
    """Whether plain SDK calls can cancel the order, each sequence tried on its own copy of the
    merchant: void every APPROVED payment, then optionally refund what is refundable, then
    either cancel the order together with its open fulfillments, cancel the fulfillments first
    and the order next, or (for an order without fulfillments) add a canceled pickup first.
    Returns the name of the first sequence that ends with the order CANCELED, or None."""
    state = m.state()
    sequences = {
        "void, cancel with fulfillments": ("void", "cancel_with_fulfillments"),
        "void, cancel fulfillments, cancel": ("void", "cancel_fulfillments", "cancel"),
        "void, refund, cancel fulfillments, cancel": ("void", "refund", "cancel_fulfillments",
                                                      "cancel"),
        "void, add a canceled pickup, cancel": ("void", "add_canceled_pickup", "cancel"),
    }
    for name, calls in sequences.items():
        with m.copy(state) as twin:
            sdk = twin.client
            for call in calls:
                attempt(lambda: _by_hand_call(sdk, h, call))
            if sdk.orders.get(h.order_id, request_options=RO).order.state == "CANCELED":
                return name
    return None


def _by_hand_call(sdk: Any, h: History, call: str) -> None:
    o = sdk.orders.get(h.order_id, request_options=RO).order
    open_ones = [{"uid": f.uid, "state": "CANCELED"} for f in o.fulfillments or []
                 if f.state in OPEN_FULFILLMENT]
    if call == "void":
        for pid in h.payments:
            if sdk.payments.get(pid, request_options=RO).payment.status == "APPROVED":
                attempt(lambda: sdk.payments.cancel(pid, request_options=RO))
    elif call == "refund":
        for pid in h.payments:
            p = sdk.payments.get(pid, request_options=RO).payment
            left = (p.total_money.amount if p.total_money else 0) - (
                p.refunded_money.amount if p.refunded_money else 0)
            if p.status == "COMPLETED" and left > 0:
                attempt(lambda: sdk.refunds.refund_payment(
                    idempotency_key=key(), payment_id=pid, amount_money=usd(left),
                    request_options=RO))
    elif call == "cancel_with_fulfillments":
        body: dict[str, Any] = {"version": o.version, "state": "CANCELED"}
        if open_ones:
            body["fulfillments"] = open_ones
        sdk.orders.update(h.order_id, order=body, idempotency_key=key(), request_options=RO)
    elif call == "cancel_fulfillments" and open_ones:
        sdk.orders.update(h.order_id, order={"version": o.version, "fulfillments": open_ones},
                          idempotency_key=key(), request_options=RO)
    elif call == "add_canceled_pickup" and not o.fulfillments:
        sdk.orders.update(h.order_id, order={"version": o.version, "fulfillments": [
            dict(PICKUP, state="CANCELED")]}, idempotency_key=key(), request_options=RO)
    elif call == "cancel":
        sdk.orders.update(h.order_id, order={"version": o.version, "state": "CANCELED"},
                          idempotency_key=key(), request_options=RO)


# ================================================================================ the checks
class ResponseLost(Exception):
    """The connection dropped after the server had applied the write."""


class Writes:
    """An httpx client stand-in that counts the writes (POST/PUT) going through and, when
    ``crash_at`` is set, loses the answer to that write after the server applied it."""

    def __init__(self, inner: Any, crash_at: int | None = None) -> None:
        self.inner = inner
        self.timeout = inner.timeout
        self.crash_at = crash_at
        self.count = 0

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        response = self.inner.request(method, url, **kwargs)
        if method.upper() in ("POST", "PUT") and "/_sim/" not in str(url):
            self.count += 1
            if self.crash_at is not None and self.count - 1 == self.crash_at:
                raise ResponseLost(f"{method} {url}")
        return response


def check_money(before: dict[str, Any], after: dict[str, Any], what: str) -> None:
    for pid, p in after["payments"].items():
        held = sum(a for s, a in p["refunds"].values() if s in ("PENDING", "COMPLETED"))
        captured = p["total"] if p["status"] == "COMPLETED" else 0
        assert held <= captured, (what, pid, p)
        new = set(p["refunds"]) - set(before["payments"][pid]["refunds"])
        assert len(new) <= 1, (what, "refunded twice", pid, p)


def check_auto(before: dict[str, Any], after: dict[str, Any], cancelable: str | None,
               what: str) -> None:
    for pid, p in after["payments"].items():
        assert p["status"] != "APPROVED", (what, pid, after)
    for uid, state in before["fulfillments"].items():
        if state in OPEN_FULFILLMENT:
            assert after["fulfillments"][uid] == "CANCELED", (what, uid, after)
    assert (after["state"] == "CANCELED") == (cancelable is not None), (what, cancelable, after)


def run(m: SimulatorMerchant, h: History, strategy: str, variants: dict[str, str],
        http: Any = None) -> Any:
    sdk = m.new_client(httpx_client=http) if http is not None else m.new_client()
    return cancel_order(sdk, h.order_id, reason=REASON, strategy=strategy, variants=variants)


def judge(variants: dict[str, str], spec: dict[str, Any]) -> None:
    with merchant(variants=variants, cache_type_hints=True) as m:
        h = build(m, spec)
        strategy = spec["strategy"]
        start_state = m.state()
        before = observe(m.client, h)
        cancelable = by_hand(m, h) if strategy == "auto" else None

        counter = Writes(m.raw_http)
        run(m, h, strategy, variants, counter)
        after = observe(m.new_client(), h)
        check_money(before, after, "run")
        if strategy == "auto":
            check_auto(before, after, cancelable, "run")

        run(m, h, strategy, variants)
        again = observe(m.new_client(), h)
        assert again == after, ("a second run changed something", after, again)

        for position in range(counter.count):
            with m.copy(start_state) as twin:
                with pytest.raises(ResponseLost):
                    run(twin, h, strategy, variants, Writes(twin.raw_http, position))
                run(twin, h, strategy, variants)  # a fresh client, as after a restart
                crashed = observe(twin.new_client(), h)
                what = f"crash after write {position}"
                check_money(before, crashed, what)
                assert outcome_of(crashed) == outcome_of(after), (what, after, crashed)
                if strategy == "auto":
                    check_auto(before, crashed, cancelable, what)
                run(twin, h, strategy, variants)
                assert observe(twin.new_client(), h) == crashed, (what, "rerun changed it")


@ORACLE
@given(spec=histories())
def test_strategies_by_the_oracle_default_variants(spec: dict[str, Any]) -> None:
    judge({}, spec)


@ORACLE
@given(spec=histories())
def test_strategies_by_the_oracle_cancel_after_payment_never(spec: dict[str, Any]) -> None:
    judge(NEVER, spec)


# ========================================================================== fixed examples
def test_the_400_day_counterexample_by_the_oracle() -> None:
    """A paid pickup order left alone for 400 days: by hand the pickup and the order can be
    canceled (the refund is too old), so auto must cancel both."""
    spec = {"amount": 1250, "pickup": True, "pay": "capture",
            "steps": [("clock", 400 * DAY)], "strategy": "auto"}
    with merchant(cache_type_hints=True) as m:
        h = build(m, spec)
        assert by_hand(m, h) == "void, cancel with fulfillments"
    judge({}, spec)


def test_the_oracle_sees_a_cancelable_order_left_open() -> None:
    """The oracle can fail: cancel_fulfillments_only leaves a cancelable order OPEN, which
    check_auto rejects."""
    spec = {"amount": 500, "pickup": True, "pay": "authorize", "steps": [],
            "strategy": "cancel_fulfillments_only"}
    with merchant(cache_type_hints=True) as m:
        h = build(m, spec)
        before = observe(m.client, h)
        cancelable = by_hand(m, h)
        assert cancelable is not None
        run(m, h, "cancel_fulfillments_only", {})
        with pytest.raises(AssertionError):
            check_auto(before, observe(m.client, h), cancelable, "cancel_fulfillments_only")


def test_a_pickup_added_after_payment_leaves_no_by_hand_path() -> None:
    spec = {"amount": 1250, "pickup": False, "pay": "partial_capture",
            "steps": [("add_pickup", "PROPOSED")], "strategy": "auto"}
    with merchant(cache_type_hints=True) as m:
        h = build(m, spec)
        assert observe(m.client, h)["fulfillments"]
        assert by_hand(m, h) is None
    judge({}, spec)

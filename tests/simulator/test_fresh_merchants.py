"""orderfsm.simulator.merchant/client: fresh in-process merchants for hypothesis examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from square.core.api_error import ApiError

import orderfsm.simulator as simulator
from orderfsm.simulator import client, merchant

LINE = {"name": "Tea", "quantity": "1", "base_price_money": {"amount": 500, "currency": "USD"}}


def make_order(sdk, key: str = "k1") -> str:
    return sdk.orders.create(idempotency_key=key, order={"location_id": "main",
                                                        "line_items": [LINE]}).order.id


def test_every_merchant_is_fresh_and_shares_the_app() -> None:
    a, b = merchant(), merchant()
    assert a.token != b.token and a.app is b.app
    order_id = make_order(a.client)
    with pytest.raises(ApiError) as info:
        b.client.orders.get(order_id)
    assert info.value.status_code == 404
    # The same idempotency key on another merchant makes a new order, not a replay.
    assert make_order(b.client) != order_id


def test_configuration_picks_the_app() -> None:
    never = merchant(variants={"cancel_after_payment": "never"}, seed=7)
    assert never.engine.variants["cancel_after_payment"] == "never"
    assert merchant().engine.variants["cancel_after_payment"] == "after_fulfillments_canceled"
    assert never.app is merchant(variants=["cancel_after_payment=never"], seed=7).app
    with pytest.raises(ValueError, match="unknown transport"):
        merchant(transport="carrier-pigeon")
    with pytest.raises(ValueError, match="unknown variant"):
        merchant(variants={"nope": "x"})


def test_client_is_an_sdk_client_with_retries_off() -> None:
    sdk = client()
    assert type(sdk).__module__.startswith("square")
    assert sdk.locations.list().locations[0].status == "ACTIVE"


def test_clock_state_copy_and_close() -> None:
    with merchant() as m:
        order_id = make_order(m.client)
        start = m.clock.now()
        assert (m.clock.advance(3600) - start).total_seconds() == 3600
        snapshot = m.state()
        twin = m.copy()
        assert twin.token != m.token
        assert twin.client.orders.get(order_id).order.id == order_id
        assert twin.clock.now() == m.clock.now()
        # Changing the copy leaves the original alone.
        version = twin.client.orders.get(order_id).order.version
        twin.client.orders.update(order_id, order={"version": version, "state": "CANCELED"})
        assert m.client.orders.get(order_id).order.state == "OPEN"
        # A copy of an earlier snapshot, and restoring one.
        m.clock.advance(60)
        assert (m.clock.now() - start).total_seconds() == 3660
        assert (m.copy(snapshot).clock.now() - start).total_seconds() == 3600
        m.restore(twin.state())
        assert m.client.orders.get(order_id).order.state == "CANCELED"
        token = m.token
    assert token not in m.app.state.store.merchants


def test_the_testclient_transport_works_too() -> None:
    m = merchant(transport="testclient")
    assert m.client.orders.get(make_order(m.client)).order.state == "OPEN"


def test_caching_type_hints_changes_no_result() -> None:
    m = merchant()
    order_id = make_order(m.client)
    before = m.client.orders.get(order_id).order.model_dump()
    assert simulator.cache_sdk_type_hints() is True
    assert simulator.cache_sdk_type_hints() is True  # idempotent
    assert m.client.orders.get(order_id).order.model_dump() == before


@settings(max_examples=15, deadline=None)
@given(amount=st.integers(1, 10_000))
def test_one_fresh_merchant_per_example(amount: int) -> None:
    with merchant(cache_type_hints=True) as m:
        # The same key in every example: each merchant has its own idempotency store.
        order = m.client.orders.create(idempotency_key="same-key", order={
            "location_id": "main", "line_items": [dict(LINE, base_price_money={
                "amount": amount, "currency": "USD"})]}).order
        assert order.total_money.amount == amount
        assert len(m.engine.orders) == 1

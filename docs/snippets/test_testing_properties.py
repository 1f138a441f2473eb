# Properties of your own code, checked on many generated cases. Each hypothesis example gets a
# fresh in-process merchant, so examples never see each other's orders, keys or clock.
from hypothesis import given, settings
from hypothesis import strategies as st

from orderfsm.simulator import merchant
from orderfsm.strategies import cancel_order


def take_deposit(client, order_id, percent):
    """The code under test: authorize a deposit of `percent` of the order, capture later."""
    order = client.orders.get(order_id).order
    amount = max(1, order.total_money.amount * percent // 100)
    return client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key=f"deposit-{order_id}", order_id=order_id,
        amount_money={"amount": amount, "currency": "USD"}, autocomplete=False).payment


def new_order(client, prices):
    return client.orders.create(order={"location_id": "main", "line_items": [
        {"name": f"Item {i}", "quantity": "1",
         "base_price_money": {"amount": price, "currency": "USD"}}
        for i, price in enumerate(prices)]}).order


@settings(max_examples=25, deadline=None)
@given(prices=st.lists(st.integers(1, 5000), min_size=1, max_size=4),
       percent=st.integers(1, 100), days=st.sampled_from([0, 3, 8]))
def test_a_deposit_stays_within_the_order_and_lapses_after_a_week(prices, percent, days):
    with merchant(cache_type_hints=True) as m:  # forgotten again when the example ends
        order = new_order(m.client, prices)
        deposit = take_deposit(m.client, order.id, percent)
        assert 0 < deposit.amount_money.amount <= order.total_money.amount
        m.clock.advance(days * 24 * 3600)
        status = m.client.payments.get(deposit.id).payment.status
        assert status == ("CANCELED" if days > 7 else "APPROVED")


@settings(max_examples=10, deadline=None)
@given(never=st.booleans())
def test_a_deposit_never_blocks_the_cancellation(square_merchant_factory, never):
    variants = {"cancel_after_payment": "never"} if never else {}
    with square_merchant_factory(variants=variants) as m:
        order = new_order(m.client, [1200])
        take_deposit(m.client, order.id, 20)
        outcome = cancel_order(m.client, order.id, reason="Out of stock", variants=variants)
        assert outcome.ok and outcome.canceled  # a voided deposit is not a processed payment

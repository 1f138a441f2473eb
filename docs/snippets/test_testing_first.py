import pytest
from square.core.api_error import ApiError


def charge(client, items, card="cnon:card-nonce-ok", key="checkout-1"):
    """The code under test: create an order for (name, cents, quantity) items and pay it."""
    location_id = client.locations.list().locations[0].id
    order = client.orders.create(idempotency_key=f"{key}-order", order={
        "location_id": location_id,
        "line_items": [{"name": name, "quantity": str(qty),
                        "base_price_money": {"amount": cents, "currency": "USD"}}
                       for name, cents, qty in items],
    }).order
    payment = client.payments.create(
        source_id=card, idempotency_key=f"{key}-payment", order_id=order.id,
        amount_money={"amount": order.total_money.amount, "currency": "USD"},
    ).payment
    return order.id, payment.id


def test_charge_pays_the_order(square_client):
    order_id, payment_id = charge(square_client, [("Latte", 450, 2), ("Bagel", 300, 1)])
    payment = square_client.payments.get(payment_id).payment
    assert payment.status == "COMPLETED"
    assert payment.amount_money.amount == 1200
    assert payment.order_id == order_id


def test_a_declined_card_raises_and_records_a_failed_payment(square_client, square_simulator):
    with pytest.raises(ApiError) as err:
        charge(square_client, [("Latte", 450, 1)], card="cnon:card-nonce-declined")
    assert err.value.status_code == 400
    assert err.value.errors[0].code == "GENERIC_DECLINE"
    # Look inside the simulator when the API alone cannot show it:
    (failed,) = square_simulator.engine.payments.values()
    assert failed["status"] == "FAILED"

import pytest
from square.core.api_error import ApiError

CANNOT_CANCEL = "Orders cannot be canceled after payments have been processed."


def paid_pickup_order(client, *, capture=True):
    """A pickup order for $15.00 and a card payment for it (captured, or only authorized)."""
    location_id = client.locations.list().locations[0].id
    order = client.orders.create(idempotency_key="order-1", order={
        "location_id": location_id,
        "line_items": [{"name": "Cake", "quantity": "1",
                        "base_price_money": {"amount": 1500, "currency": "USD"}}],
        "fulfillments": [{"type": "PICKUP",
                          "pickup_details": {"recipient": {"display_name": "Ann"}}}],
    }).order
    payment = client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key="pay-1", order_id=order.id,
        amount_money={"amount": 1500, "currency": "USD"}, autocomplete=capture).payment
    return client.orders.get(order.id).order, payment


def refund_in_full(client, payment):
    client.refunds.refund_payment(idempotency_key=f"refund-{payment.id}", payment_id=payment.id,
                                  amount_money={"amount": 1500, "currency": "USD"})


def cancel_fulfillments(client, order):
    return client.orders.update(order.id, order={
        "version": order.version,
        "fulfillments": [{"uid": f.uid, "state": "CANCELED"} for f in order.fulfillments],
    }).order


def cancel_order(client, order):
    return client.orders.update(order.id, order={"version": order.version,
                                                 "state": "CANCELED"}).order


def test_a_refund_does_not_make_a_paid_order_cancelable(square_client):
    order, payment = paid_pickup_order(square_client)
    refund_in_full(square_client, payment)
    with pytest.raises(ApiError) as err:
        cancel_order(square_client, square_client.orders.get(order.id).order)
    assert err.value.errors[0].code == "BAD_REQUEST"
    assert err.value.errors[0].detail == CANNOT_CANCEL


def test_refund_cancel_the_fulfillments_then_the_order(square_client):
    order, payment = paid_pickup_order(square_client)
    refund_in_full(square_client, payment)
    order = cancel_fulfillments(square_client, square_client.orders.get(order.id).order)
    assert order.state == "OPEN"  # already off the POS and Dashboard queues
    assert cancel_order(square_client, order).state == "CANCELED"  # the default variant


def test_before_capture_void_the_payment_instead(square_client):
    order, payment = paid_pickup_order(square_client, capture=False)
    square_client.payments.cancel(payment.id)  # void: no money moved, nothing to refund
    order = cancel_fulfillments(square_client, square_client.orders.get(order.id).order)
    assert cancel_order(square_client, order).state == "CANCELED"

import pytest
from square.core.api_error import ApiError


def paid_pickup_order(client):
    location_id = client.locations.list().locations[0].id
    order = client.orders.create(idempotency_key="order-1", order={
        "location_id": location_id,
        "line_items": [{"name": "Tea", "quantity": "1",
                        "base_price_money": {"amount": 500, "currency": "USD"}}],
        "fulfillments": [{"type": "PICKUP",
                          "pickup_details": {"recipient": {"display_name": "Ann"}}}],
    }).order
    client.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="pay-1",
                           order_id=order.id, amount_money={"amount": 500, "currency": "USD"})
    return client.orders.get(order.id).order


def test_a_paid_order_cannot_be_canceled(square_client):
    order = paid_pickup_order(square_client)
    with pytest.raises(ApiError) as err:
        square_client.orders.update(order.id, order={"version": order.version,
                                                     "state": "CANCELED"})
    assert err.value.status_code == 400


def test_a_pickup_is_marked_ready(square_client):
    order = paid_pickup_order(square_client)
    uid = order.fulfillments[0].uid
    order = square_client.orders.update(order.id, order={
        "version": order.version, "fulfillments": [{"uid": uid, "state": "PREPARED"}]}).order
    assert order.fulfillments[0].state == "PREPARED"

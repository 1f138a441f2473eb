import pytest
from square.core.api_error import ApiError


@pytest.fixture
def square_simulator_options():
    # Every test in this module runs against a simulator where a paid order can never be
    # canceled (Square staff's answer), not the default that allows it once every fulfillment
    # is canceled.
    return {"variants": {"cancel_after_payment": "never"}}


def test_a_paid_order_stays_open(square_client):
    location_id = square_client.locations.list().locations[0].id
    order = square_client.orders.create(order={
        "location_id": location_id,
        "line_items": [{"name": "Tea", "quantity": "1",
                        "base_price_money": {"amount": 500, "currency": "USD"}}],
        "fulfillments": [{"type": "PICKUP",
                          "pickup_details": {"recipient": {"display_name": "Ann"}}}],
    }).order
    square_client.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="pay-1",
                                  order_id=order.id,
                                  amount_money={"amount": 500, "currency": "USD"})
    order = square_client.orders.get(order.id).order
    order = square_client.orders.update(order.id, order={
        "version": order.version,
        "fulfillments": [{"uid": order.fulfillments[0].uid, "state": "CANCELED"}],
    }).order
    with pytest.raises(ApiError) as err:
        square_client.orders.update(order.id, order={"version": order.version,
                                                     "state": "CANCELED"})
    assert err.value.errors[0].detail == ("Orders cannot be canceled after payments have been "
                                          "processed.")


def test_switch_a_variant_for_one_test(square_client, square_simulator):
    square_simulator.http.post("/_sim/variants", json={"cancel_after_payment": "never"})
    assert square_simulator.engine.variants["cancel_after_payment"] == "never"

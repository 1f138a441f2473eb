# Cancel an order that was paid and then refunded: the forum question this project started from.
import os
import uuid
from contextlib import nullcontext

from square import Square
from square.core.api_error import ApiError

from orderfsm.simulator import running
from orderfsm.strategies import cancel_order

CAKE = {"amount": 1500, "currency": "USD"}


def paid_and_refunded_pickup(client):
    """The thread's situation: a pickup order, paid by card, then refunded in full."""
    location_id = client.locations.list().locations[0].id
    order = client.orders.create(idempotency_key=str(uuid.uuid4()), order={
        "location_id": location_id,
        "line_items": [{"name": "Cake", "quantity": "1", "base_price_money": CAKE}],
        "fulfillments": [{"type": "PICKUP",
                          "pickup_details": {"recipient": {"display_name": "Ann"}}}],
    }).order
    payment = client.payments.create(source_id="cnon:card-nonce-ok", order_id=order.id,
                                     idempotency_key=str(uuid.uuid4()), amount_money=CAKE).payment
    client.refunds.refund_payment(idempotency_key=str(uuid.uuid4()), payment_id=payment.id,
                                  amount_money=CAKE, reason="Customer changed their mind")
    return order.id


def main(client, variants=None):
    order_id = paid_and_refunded_pickup(client)

    # What the thread tried: state=CANCELED right after the refund.
    order = client.orders.get(order_id).order
    try:
        client.orders.update(order_id, order={"version": order.version, "state": "CANCELED"})
    except ApiError as err:
        print(err.errors[0].detail)  # Orders cannot be canceled after payments have been processed.

    # What works: plan from the order as it is now, and make only the calls the rules allow.
    # Pass the variants the server follows; without them the defaults are assumed.
    outcome = cancel_order(client, order_id, reason="Customer changed their mind",
                           variants=variants)
    print(outcome.describe())
    print("canceled" if outcome.canceled else "still " + outcome.final.order_state,
          outcome.final.fulfillments)
    return outcome


if __name__ == "__main__":
    # Against a server you already run (SQUARE_BASE_URL), or a simulator started just for this.
    base_url = os.environ.get("SQUARE_BASE_URL")
    with nullcontext(base_url) if base_url else running() as url:
        main(Square(token="sandbox-token", base_url=url))

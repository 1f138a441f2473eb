# Run `orderfsm serve` in another terminal first.
import os

from square import Square

base_url = os.environ.get("SQUARE_BASE_URL", "http://127.0.0.1:8000")
client = Square(token="sandbox-token", base_url=base_url)

location = client.locations.list().locations[0]
order = client.orders.create(order={
    "location_id": location.id,
    "line_items": [{"name": "Latte", "quantity": "2",
                    "base_price_money": {"amount": 450, "currency": "USD"}}],
}).order
print(order.id, order.state, order.total_money.amount)  # e.g. 3AgQ... OPEN 900

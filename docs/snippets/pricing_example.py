# The order from Square's CreateOrder reference example, priced by CalculateOrder.
# Run `orderfsm serve` in another terminal first.
import os

from square import Square

base_url = os.environ.get("SQUARE_BASE_URL", "http://127.0.0.1:8000")
client = Square(token="sandbox-token", base_url=base_url)
usd = lambda amount: {"amount": amount, "currency": "USD"}  # noqa: E731

order = client.orders.calculate(order={
    "location_id": "main",
    "line_items": [
        {"uid": "strip", "name": "New York Strip Steak", "quantity": "1",
         "base_price_money": usd(1599)},
        {"uid": "steak", "name": "New York Steak", "variation_name": "Larger", "quantity": "2",
         "base_price_money": usd(2200),
         "modifiers": [{"name": "Well", "base_price_money": usd(50)}],
         "applied_discounts": [{"discount_uid": "one-dollar-off"}]},
    ],
    "discounts": [  # listed in this order; applied in Square's sequence
        {"uid": "labor-day-sale", "name": "Labor Day Sale", "percentage": "5", "scope": "ORDER"},
        {"uid": "membership-discount", "name": "Membership Discount", "percentage": "0.5",
         "scope": "ORDER"},
        {"uid": "one-dollar-off", "name": "Sale - $1.00 off", "amount_money": usd(100),
         "scope": "LINE_ITEM"},
    ],
    "taxes": [{"uid": "state-sales-tax", "name": "State Sales Tax", "percentage": "9",
               "scope": "ORDER"}],
}).order

for line in order.line_items:
    discounts = {a.discount_uid: a.applied_money.amount for a in line.applied_discounts}
    print(line.name, "gross", line.gross_sales_money.amount, "discounts", discounts,
          "tax", line.total_tax_money.amount, "total", line.total_money.amount)
for d in order.discounts:
    print(d.uid, d.type, d.applied_money.amount)
print("total", order.total_money.amount)

assert order.total_money.amount == 6176
assert [d.applied_money.amount for d in order.discounts] == [30, 303, 100]
assert [line.total_money.amount for line in order.line_items] == [1648, 4528]

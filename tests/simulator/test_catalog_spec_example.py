"""Square's own CreateOrder example (the 2025-08-20 spec's CreateOrderRequest example) runs
verbatim once its three catalog ids are seeded, and gives the numbers of Square's example
response (CreateOrderResponse): total 6176, tax 510, discounts 433."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import RO

SPEC = Path(__file__).resolve().parents[3] / "shared" / "square-api" / "api.json"
LOCATION = "057P5VYJ4A5X1"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


# The request, as the spec prints it.
EXAMPLE = {
    "idempotency_key": "8193148c-9586-11e6-99f9-28cfe92138cf",
    "order": {
        "discounts": [
            {"name": "Labor Day Sale", "percentage": "5", "scope": "ORDER",
             "uid": "labor-day-sale"},
            {"catalog_object_id": "DB7L55ZH2BGWI4H23ULIWOQ7", "scope": "ORDER",
             "uid": "membership-discount"},
            {"amount_money": usd(100), "name": "Sale - $1.00 off", "scope": "LINE_ITEM",
             "uid": "one-dollar-off"},
        ],
        "line_items": [
            {"base_price_money": usd(1599), "name": "New York Strip Steak", "quantity": "1"},
            {"applied_discounts": [{"discount_uid": "one-dollar-off"}],
             "catalog_object_id": "BEMYCSMIJL46OCDV4KYIKXIB",
             "modifiers": [{"catalog_object_id": "CHQX7Y4KY6N5KINJKZCFURPZ"}],
             "quantity": "2"},
        ],
        "location_id": LOCATION,
        "reference_id": "my-order-001",
        "taxes": [{"name": "State Sales Tax", "percentage": "9", "scope": "ORDER",
                   "uid": "state-sales-tax"}],
    },
}

# What the example response says the three catalog objects are.
CATALOG = [
    {"type": "ITEM", "id": "NEW_YORK_STEAK", "item_data": {"name": "New York Steak", "variations": [
        {"type": "ITEM_VARIATION", "id": "BEMYCSMIJL46OCDV4KYIKXIB", "item_variation_data": {
            "name": "Larger", "pricing_type": "FIXED_PRICING", "price_money": usd(2200)}}]}},
    {"type": "MODIFIER_LIST", "id": "DONENESS", "modifier_list_data": {"name": "Doneness", "modifiers": [
        {"type": "MODIFIER", "id": "CHQX7Y4KY6N5KINJKZCFURPZ", "modifier_data": {
            "name": "Well", "price_money": usd(50)}}]}},
    {"type": "DISCOUNT", "id": "DB7L55ZH2BGWI4H23ULIWOQ7", "discount_data": {
        "name": "Membership Discount", "discount_type": "FIXED_PERCENTAGE", "percentage": "0.5"}},
]


@pytest.mark.skipif(not SPEC.is_file(), reason=f"Square spec not present at {SPEC}")
def test_the_embedded_request_is_the_spec_example() -> None:
    spec = json.loads(SPEC.read_text())
    assert spec["components"]["schemas"]["CreateOrderRequest"]["example"] == EXAMPLE


@pytest.fixture
def square_example_merchant(raw) -> None:
    """The example's catalog seeded, and the main location renamed to the example's id."""
    assert raw.post("/_sim/catalog", json=CATALOG).status_code == 200
    state = raw.get("/_sim/state").json()
    records = state["records"]
    old = records["meta"]["engine"]["main_location_id"]
    loc = records["location"].pop(old)
    records["location"][LOCATION] = dict(loc, id=LOCATION)
    records["meta"]["engine"]["main_location_id"] = LOCATION
    assert raw.post("/_sim/state", json=state).status_code == 200


def test_spec_create_order_example_gives_squares_numbers(sdk, square_example_merchant) -> None:
    order = sdk.orders.create(**copy.deepcopy(EXAMPLE), request_options=RO).order
    assert order.total_money.amount == 6176
    assert order.total_tax_money.amount == 510
    assert order.total_discount_money.amount == 433
    strip, steak = order.line_items
    assert (strip.total_money.amount, strip.total_discount_money.amount) == (1648, 87)
    assert (steak.name, steak.variation_name) == ("New York Steak", "Larger")
    assert steak.base_price_money.amount == 2200
    assert steak.modifiers[0].name == "Well"
    assert steak.modifiers[0].base_price_money.amount == 50
    assert steak.gross_sales_money.amount == 4500
    assert (steak.total_money.amount, steak.total_discount_money.amount,
            steak.total_tax_money.amount) == (4528, 346, 374)
    applied = {d.uid: d.applied_money.amount for d in order.discounts}
    assert applied == {"membership-discount": 30, "labor-day-sale": 303, "one-dollar-off": 100}
    membership = next(d for d in order.discounts if d.uid == "membership-discount")
    assert (membership.name, membership.percentage, membership.type) == \
        ("Membership Discount", "0.5", "FIXED_PERCENTAGE")

"""Orders priced from the catalog, through the official SDK: line items, modifiers, taxes and
discounts by catalog id, variable prices, auto-applied taxes and pricing rules with blocklists,
and the errors for unknown, deleted and absent catalog objects."""

from __future__ import annotations

from typing import Any

import pytest
from square.core.api_error import ApiError

from .conftest import RO


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


SEED = [
    {"type": "CATEGORY", "id": "CAT_PASTRY", "category_data": {"name": "Pastry"}},
    {"type": "TAX", "id": "TAX_CITY", "tax_data": {"name": "City tax", "percentage": "10",
                                                   "inclusion_type": "ADDITIVE", "enabled": True}},
    {"type": "TAX", "id": "TAX_OFF", "tax_data": {"name": "Disabled", "percentage": "50",
                                                  "enabled": False}},
    {"type": "ITEM", "id": "ITEM_CROISSANT", "item_data": {
        "name": "Croissant", "category_id": "CAT_PASTRY", "tax_ids": ["TAX_CITY", "TAX_OFF"],
        "variations": [
            {"type": "ITEM_VARIATION", "id": "VAR_PLAIN", "item_variation_data": {
                "name": "Plain", "pricing_type": "FIXED_PRICING", "price_money": usd(300)}},
            {"type": "ITEM_VARIATION", "id": "VAR_ALMOND", "item_variation_data": {
                "name": "Almond", "pricing_type": "FIXED_PRICING", "price_money": usd(400)}}]}},
    {"type": "ITEM", "id": "ITEM_CAKE", "item_data": {"name": "Cake by weight", "variations": [
        {"type": "ITEM_VARIATION", "id": "VAR_CAKE", "item_variation_data": {
            "name": "Per slice", "pricing_type": "VARIABLE_PRICING"}}]}},
    {"type": "ITEM", "id": "ITEM_ELSEWHERE", "present_at_all_locations": False,
     "present_at_location_ids": ["SOME_OTHER_LOCATION"], "item_data": {
         "name": "Elsewhere", "variations": [
             {"type": "ITEM_VARIATION", "id": "VAR_ELSEWHERE", "item_variation_data": {
                 "name": "Only there", "price_money": usd(100)}}]}},
    {"type": "MODIFIER_LIST", "id": "ML_EXTRA", "modifier_list_data": {"name": "Extras", "modifiers": [
        {"type": "MODIFIER", "id": "MOD_JAM", "modifier_data": {"name": "Jam", "price_money": usd(50)}}]}},
    {"type": "DISCOUNT", "id": "DISC_TEN", "discount_data": {
        "name": "Ten percent", "discount_type": "FIXED_PERCENTAGE", "percentage": "10"}},
    {"type": "DISCOUNT", "id": "DISC_ANY", "discount_data": {
        "name": "Manager's call", "discount_type": "VARIABLE_AMOUNT"}},
    {"type": "DISCOUNT", "id": "DISC_PASTRY", "discount_data": {
        "name": "Pastry day", "discount_type": "FIXED_AMOUNT", "amount_money": usd(100)}},
    {"type": "PRODUCT_SET", "id": "SET_PASTRY", "product_set_data": {
        "name": "Two pastries", "product_ids_any": ["CAT_PASTRY"], "quantity_min": 2}},
    {"type": "PRODUCT_SET", "id": "SET_ALMOND", "product_set_data": {
        "name": "Almond", "product_ids_any": ["VAR_ALMOND"]}},
    {"type": "PRICING_RULE", "id": "RULE_PASTRY", "pricing_rule_data": {
        "name": "Pastry day", "discount_id": "DISC_PASTRY", "match_products_id": "SET_PASTRY",
        "exclude_products_id": "SET_ALMOND"}},
]


@pytest.fixture
def seeded(raw, sdk) -> str:
    r = raw.post("/_sim/catalog", json=SEED)
    assert r.status_code == 200, r.text
    return sdk.locations.list(request_options=RO).locations[0].id


def create(sdk, location: str, **order: Any):
    return sdk.orders.create(order={"location_id": location, **order}, request_options=RO).order


def error_of(call) -> dict[str, Any]:
    with pytest.raises(ApiError) as info:
        call()
    return {"status": info.value.status_code, **info.value.body["errors"][0]}


def test_line_item_takes_name_price_and_version_from_the_catalog(sdk, seeded) -> None:
    version = sdk.catalog.object.get(object_id="VAR_PLAIN", request_options=RO).object.version
    order = create(sdk, seeded, line_items=[{
        "catalog_object_id": "VAR_PLAIN", "quantity": "2",
        "modifiers": [{"catalog_object_id": "MOD_JAM"}]}])
    (line,) = order.line_items
    assert (line.name, line.variation_name) == ("Croissant", "Plain")
    assert line.base_price_money.amount == 300
    assert line.catalog_version == version
    assert line.modifiers[0].name == "Jam" and line.modifiers[0].base_price_money.amount == 50
    assert line.gross_sales_money.amount == 700
    assert order.total_money.amount == 700


def test_taxes_and_discounts_by_catalog_id(sdk, seeded) -> None:
    order = create(sdk, seeded,
                   line_items=[{"catalog_object_id": "VAR_ALMOND", "quantity": "1"}],
                   taxes=[{"uid": "t", "catalog_object_id": "TAX_CITY", "scope": "ORDER"}],
                   discounts=[{"uid": "d", "catalog_object_id": "DISC_TEN", "scope": "ORDER"},
                              {"uid": "m", "catalog_object_id": "DISC_ANY", "scope": "ORDER",
                               "amount_money": usd(20)}])
    tax = order.taxes[0]
    assert (tax.name, tax.percentage, tax.type) == ("City tax", "10", "ADDITIVE")
    ten = next(d for d in order.discounts if d.uid == "d")
    assert (ten.name, ten.type, ten.percentage) == ("Ten percent", "FIXED_PERCENTAGE", "10")
    assert ten.applied_money.amount == 40
    assert order.total_discount_money.amount == 60
    assert order.total_tax_money.amount == 34
    assert order.total_money.amount == 374


def test_variable_priced_variation_needs_a_price(sdk, seeded) -> None:
    err = error_of(lambda: create(sdk, seeded, line_items=[
        {"catalog_object_id": "VAR_CAKE", "quantity": "1"}]))
    assert (err["status"], err["code"], err["field"]) == (
        400, "MISSING_REQUIRED_PARAMETER", "order.line_items[0].base_price_money")
    order = create(sdk, seeded, line_items=[{"catalog_object_id": "VAR_CAKE", "quantity": "1",
                                             "base_price_money": usd(525)}])
    assert order.line_items[0].name == "Cake by weight"
    assert order.total_money.amount == 525


def test_variable_catalog_discount_needs_a_value(sdk, seeded) -> None:
    err = error_of(lambda: create(sdk, seeded, line_items=[
        {"catalog_object_id": "VAR_PLAIN", "quantity": "1"}],
        discounts=[{"catalog_object_id": "DISC_ANY", "scope": "ORDER"}]))
    assert (err["status"], err["field"]) == (400, "order.discounts[0].amount_money")


@pytest.mark.parametrize("order, field", [
    ({"line_items": [{"catalog_object_id": "NOPE", "quantity": "1"}]},
     "order.line_items[0].catalog_object_id"),
    ({"line_items": [{"catalog_object_id": "", "quantity": "1"}]},
     "order.line_items[0].catalog_object_id"),
    ({"line_items": [{"catalog_object_id": "ITEM_CROISSANT", "quantity": "1"}]},
     "order.line_items[0].catalog_object_id"),
    ({"line_items": [{"catalog_object_id": "VAR_PLAIN", "quantity": "1",
                      "modifiers": [{"catalog_object_id": "TAX_CITY"}]}]},
     "order.line_items[0].modifiers[0].catalog_object_id"),
    ({"line_items": [{"name": "x", "quantity": "1", "base_price_money": usd(1)}],
      "taxes": [{"catalog_object_id": "DISC_TEN", "scope": "ORDER"}]}, "order.taxes[0].catalog_object_id"),
    ({"line_items": [{"name": "x", "quantity": "1", "base_price_money": usd(1)}],
      "discounts": [{"catalog_object_id": "NOPE", "scope": "ORDER"}]},
     "order.discounts[0].catalog_object_id"),
])
def test_unknown_catalog_ids_answer_not_found(sdk, seeded, order, field) -> None:
    """An empty id, a wrong type or a missing object: all NOT_FOUND."""
    err = error_of(lambda: create(sdk, seeded, **order))
    assert (err["status"], err["code"], err["field"]) == (404, "NOT_FOUND", field)
    assert "with catalog object ID" in err["detail"]


def test_catalog_version_out_of_range_is_refused(raw, seeded) -> None:
    r = raw.post("/v2/orders", json={"order": {"location_id": seeded, "line_items": [
        {"catalog_object_id": "VAR_PLAIN", "quantity": "1", "catalog_version": 2**70}]}})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "order.line_items[0].catalog_version"


def test_deleted_and_absent_catalog_objects_are_refused(sdk, seeded) -> None:
    err = error_of(lambda: create(sdk, seeded, line_items=[
        {"catalog_object_id": "VAR_ELSEWHERE", "quantity": "1"}]))
    assert (err["status"], err["code"]) == (400, "INVALID_VALUE")
    sdk.catalog.object.delete(object_id="ITEM_CROISSANT", request_options=RO)
    err = error_of(lambda: create(sdk, seeded, line_items=[
        {"catalog_object_id": "VAR_PLAIN", "quantity": "1"}]))
    assert (err["status"], err["code"]) == (404, "NOT_FOUND")
    assert not sdk.orders.search(location_ids=[seeded], request_options=RO).orders


def test_auto_apply_taxes_with_blocklist(sdk, seeded) -> None:
    order = create(sdk, seeded, pricing_options={"auto_apply_taxes": True}, line_items=[
        {"uid": "a", "catalog_object_id": "VAR_PLAIN", "quantity": "1"},
        {"uid": "b", "catalog_object_id": "VAR_ALMOND", "quantity": "1",
         "pricing_blocklists": {"blocked_taxes": [{"tax_catalog_object_id": "TAX_CITY"}]}}])
    (tax,) = order.taxes  # the disabled tax is not applied
    assert (tax.catalog_object_id, tax.auto_applied, tax.scope) == ("TAX_CITY", True, "LINE_ITEM")
    lines = {li.uid: li for li in order.line_items}
    assert lines["a"].total_tax_money.amount == 30
    assert lines["b"].total_tax_money.amount == 0
    assert order.total_money.amount == 730
    plain = create(sdk, seeded, line_items=[{"catalog_object_id": "VAR_PLAIN", "quantity": "1"}])
    assert plain.taxes is None and plain.total_money.amount == 300


def test_auto_apply_discounts_from_pricing_rules(sdk, seeded) -> None:
    one = create(sdk, seeded, pricing_options={"auto_apply_discounts": True},
                 line_items=[{"catalog_object_id": "VAR_PLAIN", "quantity": "1"}])
    assert one.discounts is None  # the product set needs two pastries
    two = create(sdk, seeded, pricing_options={"auto_apply_discounts": True}, line_items=[
        {"uid": "p", "catalog_object_id": "VAR_PLAIN", "quantity": "2"},
        {"uid": "a", "catalog_object_id": "VAR_ALMOND", "quantity": "1"}])
    (disc,) = two.discounts
    assert (disc.pricing_rule_id, disc.catalog_object_id) == ("RULE_PASTRY", "DISC_PASTRY")
    lines = {li.uid: li for li in two.line_items}
    assert lines["p"].total_discount_money.amount == 100
    assert lines["a"].total_discount_money.amount == 0  # excluded by SET_ALMOND
    blocked = create(sdk, seeded, pricing_options={"auto_apply_discounts": True}, line_items=[
        {"catalog_object_id": "VAR_PLAIN", "quantity": "2", "pricing_blocklists": {
            "blocked_discounts": [{"discount_catalog_object_id": "DISC_PASTRY"}]}}])
    assert blocked.discounts is None and blocked.total_money.amount == 600


def test_catalog_order_is_paid(sdk, seeded) -> None:
    order = create(sdk, seeded, pricing_options={"auto_apply_taxes": True},
                   line_items=[{"catalog_object_id": "VAR_ALMOND", "quantity": "1"}])
    payment = sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="pay-catalog",
                                  amount_money=usd(order.total_money.amount), order_id=order.id,
                                  request_options=RO).payment
    assert payment.status == "COMPLETED"
    paid = sdk.orders.get(order_id=order.id, request_options=RO).order
    assert paid.net_amount_due_money.amount == 0 and paid.state == "COMPLETED"


def test_calculate_and_update_resolve_catalog_lines(sdk, seeded) -> None:
    calc = sdk.orders.calculate(order={"location_id": seeded, "line_items": [
        {"catalog_object_id": "VAR_ALMOND", "quantity": "3"}]}, request_options=RO).order
    assert calc.total_money.amount == 1200 and calc.line_items[0].name == "Croissant"
    order = create(sdk, seeded, line_items=[{"name": "Coffee", "quantity": "1",
                                             "base_price_money": usd(200)}])
    updated = sdk.orders.update(order_id=order.id, order={
        "location_id": seeded, "version": order.version,
        "line_items": [{"catalog_object_id": "VAR_PLAIN", "quantity": "1"}]},
        request_options=RO).order
    assert updated.total_money.amount == 500
    assert [li.name for li in updated.line_items] == ["Coffee", "Croissant"]

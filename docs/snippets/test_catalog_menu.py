import pytest
from square.core.api_error import ApiError

USD = "USD"


def build_menu(client):
    """A latte in two sizes, an oat-milk modifier and a sales tax, created in one batch.
    Temporary ids start with '#'; the response maps them to the ids the server chose."""
    response = client.catalog.batch_upsert(idempotency_key="menu-v1", batches=[{"objects": [
        {"type": "TAX", "id": "#sales-tax", "tax_data": {
            "name": "Sales tax", "percentage": "8.5", "inclusion_type": "ADDITIVE",
            "enabled": True}},
        {"type": "MODIFIER_LIST", "id": "#milk", "modifier_list_data": {
            "name": "Milk", "modifiers": [
                {"type": "MODIFIER", "id": "#oat", "modifier_data": {
                    "name": "Oat milk", "price_money": {"amount": 75, "currency": USD}}}]}},
        {"type": "ITEM", "id": "#latte", "item_data": {
            "name": "Latte", "tax_ids": ["#sales-tax"],
            "modifier_list_info": [{"modifier_list_id": "#milk"}],
            "variations": [
                {"type": "ITEM_VARIATION", "id": "#latte-12", "item_variation_data": {
                    "name": "12 oz", "pricing_type": "FIXED_PRICING",
                    "price_money": {"amount": 450, "currency": USD}}},
                {"type": "ITEM_VARIATION", "id": "#latte-16", "item_variation_data": {
                    "name": "16 oz", "pricing_type": "FIXED_PRICING",
                    "price_money": {"amount": 550, "currency": USD}}}]}},
    ]}])
    return {m.client_object_id: m.object_id for m in response.id_mappings}


def take_order(client, ids, key="order-1"):
    """Two 16 oz oat lattes, priced by the catalog, with the item's taxes applied."""
    location_id = client.locations.list().locations[0].id
    return client.orders.create(idempotency_key=key, order={
        "location_id": location_id,
        "pricing_options": {"auto_apply_taxes": True},
        "line_items": [{"catalog_object_id": ids["#latte-16"], "quantity": "2",
                        "modifiers": [{"catalog_object_id": ids["#oat"]}]}],
    }).order


def test_menu_order_and_payment(square_client):
    ids = build_menu(square_client)
    order = take_order(square_client, ids)
    line = order.line_items[0]
    assert (line.name, line.variation_name, line.base_price_money.amount) == ("Latte", "16 oz", 550)
    assert line.catalog_version > 0
    assert order.total_tax_money.amount == 106  # 8.5% of 2 x (550 + 75)
    assert order.total_money.amount == 1356

    payment = square_client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key="order-1-payment", order_id=order.id,
        amount_money={"amount": order.total_money.amount, "currency": USD}).payment
    assert payment.status == "COMPLETED"
    assert square_client.orders.get(order.id).order.state == "COMPLETED"


def test_a_deleted_item_cannot_be_ordered(square_client):
    ids = build_menu(square_client)
    deleted = square_client.catalog.object.delete(ids["#latte"]).deleted_object_ids
    assert set(deleted) == {ids["#latte"], ids["#latte-12"], ids["#latte-16"]}
    with pytest.raises(ApiError) as err:
        take_order(square_client, ids, key="order-2")
    assert err.value.status_code == 404
    assert err.value.errors[0].code == "NOT_FOUND"

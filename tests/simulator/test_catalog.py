"""Catalog API through the official SDK (``client.catalog.*``): every endpoint's happy path and
errors, temporary ids, versions, deletes, search, seeding, snapshots and webhooks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from square.core.api_error import ApiError

from .conftest import RO, TOKEN, auth

IRE = "INVALID_REQUEST_ERROR"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def variation(vid: str, name: str, amount: int | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "pricing_type": "FIXED_PRICING" if amount is not None
                            else "VARIABLE_PRICING"}
    if amount is not None:
        data["price_money"] = usd(amount)
    data.update(extra)
    return {"type": "ITEM_VARIATION", "id": vid, "item_variation_data": data}


def item(iid: str, name: str, *variations: dict, **data: Any) -> dict[str, Any]:
    return {"type": "ITEM", "id": iid,
            "item_data": {"name": name, "variations": list(variations), **data}}


def tax(tid: str, name: str = "Sales tax", pct: str = "10", **data: Any) -> dict[str, Any]:
    return {"type": "TAX", "id": tid, "tax_data": {"name": name, "percentage": pct,
                                                   "enabled": True, **data}}


def error_of(call) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def first_error(err: ApiError) -> dict[str, Any]:
    return err.body["errors"][0]


@pytest.fixture
def menu(sdk) -> dict[str, str]:
    """Coffee (two variations, taxed), a category, a tax and a modifier list; returns real ids."""
    resp = sdk.catalog.batch_upsert(idempotency_key="menu", batches=[{"objects": [
        {"type": "CATEGORY", "id": "#drinks", "category_data": {"name": "Drinks"}},
        tax("#tax"),
        {"type": "MODIFIER_LIST", "id": "#milk", "modifier_list_data": {"name": "Milk", "modifiers": [
            {"type": "MODIFIER", "id": "#oat", "modifier_data": {"name": "Oat milk",
                                                                 "price_money": usd(75)}}]}},
        item("#coffee", "Coffee", variation("#small", "Small", 300, sku="CF-S"),
             variation("#large", "Large", 450, sku="CF-L"),
             category_id="#drinks", tax_ids=["#tax"], description="Strong filter coffee",
             modifier_list_info=[{"modifier_list_id": "#milk"}]),
    ]}], request_options=RO)
    return {m.client_object_id.lstrip("#"): m.object_id for m in resp.id_mappings}


# ============================================================================ upsert
def test_upsert_assigns_ids_versions_and_nests_variations(sdk) -> None:
    resp = sdk.catalog.object.upsert(
        idempotency_key="u1", object=item("#tea", "Tea", variation("#cup", "Cup", 250)),
        request_options=RO)
    obj = resp.catalog_object
    mapping = {m.client_object_id: m.object_id for m in resp.id_mappings}
    assert set(mapping) == {"#tea", "#cup"}
    assert obj.id == mapping["#tea"] and len(obj.id) == 24 and obj.id.isalnum()
    assert obj.is_deleted is False and obj.present_at_all_locations is True
    assert obj.version > 0 and obj.updated_at
    (var,) = obj.item_data.variations
    assert var.id == mapping["#cup"]
    assert var.item_variation_data.item_id == obj.id
    assert var.item_variation_data.price_money.amount == 250
    assert var.version == obj.version


def test_upsert_update_with_current_version_and_stale_version(sdk) -> None:
    first = sdk.catalog.object.upsert(idempotency_key="v1", object=tax("#t", pct="5"),
                                      request_options=RO).catalog_object
    second = sdk.catalog.object.upsert(idempotency_key="v2", object={
        "type": "TAX", "id": first.id, "version": first.version,
        "tax_data": {"name": "Sales tax", "percentage": "6"}}, request_options=RO).catalog_object
    assert second.id == first.id and second.version > first.version
    assert second.tax_data.percentage == "6"
    err = error_of(lambda: sdk.catalog.object.upsert(idempotency_key="v3", object={
        "type": "TAX", "id": first.id, "version": first.version,
        "tax_data": {"name": "Sales tax", "percentage": "7"}}, request_options=RO))
    assert err.status_code == 400
    assert first_error(err) == {"category": IRE, "code": "VERSION_MISMATCH",
                                "detail": "Object version does not match latest database version.",
                                "field": "object.version"}
    assert sdk.catalog.object.get(object_id=first.id, request_options=RO).object.tax_data.percentage == "6"


def test_item_without_variation_and_unknown_reference_are_rejected(sdk) -> None:
    err = error_of(lambda: sdk.catalog.object.upsert(
        idempotency_key="nv", object={"type": "ITEM", "id": "#Tea", "item_data": {"name": "Tea"}},
        request_options=RO))
    assert (err.status_code, first_error(err)["code"]) == (400, "BAD_REQUEST")
    assert first_error(err)["detail"] == \
        "Item with name Tea and token #Tea must have at least one variation."
    err = error_of(lambda: sdk.catalog.object.upsert(
        idempotency_key="ref", object=item("#Tea", "Tea", variation("#v", "Cup", 100),
                                           category_id="#Beverages"), request_options=RO))
    assert first_error(err)["code"] == "INVALID_VALUE"
    assert "references unknown object #Beverages" in first_error(err)["detail"]
    assert list(sdk.catalog.list(request_options=RO)) == []


def test_fixed_id_that_does_not_exist_and_type_change_are_rejected(sdk, menu) -> None:
    err = error_of(lambda: sdk.catalog.object.upsert(
        idempotency_key="fx", object=tax("NOT_THERE"), request_options=RO))
    assert first_error(err)["code"] == "INVALID_VALUE"
    assert first_error(err)["field"] == "object.id"
    err = error_of(lambda: sdk.catalog.object.upsert(
        idempotency_key="ty", object=tax(menu["coffee"]), request_options=RO))
    assert first_error(err)["field"] == "object.type"


def test_upsert_idempotency_replays_and_refuses_a_changed_body(sdk) -> None:
    a = sdk.catalog.object.upsert(idempotency_key="same", object=tax("#t"), request_options=RO)
    b = sdk.catalog.object.upsert(idempotency_key="same", object=tax("#t"), request_options=RO)
    assert a.catalog_object.id == b.catalog_object.id
    assert len(sdk.catalog.search(object_types=["TAX"], request_options=RO).objects) == 1
    err = error_of(lambda: sdk.catalog.object.upsert(idempotency_key="same",
                                                     object=tax("#t", pct="9"), request_options=RO))
    assert first_error(err)["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_batch_upsert_failing_batch_changes_nothing(sdk) -> None:
    err = error_of(lambda: sdk.catalog.batch_upsert(idempotency_key="b", batches=[
        {"objects": [tax("#a"), {"type": "ITEM", "id": "#bad", "item_data": {"name": "Bad"}}]},
    ], request_options=RO))
    assert err.status_code == 400
    assert sdk.catalog.search(object_types=["TAX", "ITEM"], request_options=RO).objects is None
    resp = sdk.catalog.batch_upsert(idempotency_key="b2", batches=[
        {"objects": [tax("#a")]},
        {"objects": [tax("#b"), {"type": "ITEM", "id": "#bad", "item_data": {"name": "Bad"}}]},
    ], request_options=RO)
    assert [o.type for o in resp.objects] == ["TAX"]
    assert resp.errors[0].code == "BAD_REQUEST"
    assert len(sdk.catalog.search(object_types=["TAX", "ITEM"], request_options=RO).objects) == 1


def test_upserting_an_item_with_fewer_variations_deletes_the_rest(sdk, menu) -> None:
    coffee = sdk.catalog.object.get(object_id=menu["coffee"], request_options=RO).object
    small = next(v for v in coffee.item_data.variations if v.id == menu["small"])
    body = json.loads(coffee.json(exclude_none=True))
    body["item_data"]["variations"] = [json.loads(small.json(exclude_none=True))]
    sdk.catalog.object.upsert(idempotency_key="trim", object=body, request_options=RO)
    err = error_of(lambda: sdk.catalog.object.get(object_id=menu["large"], request_options=RO))
    assert err.status_code == 404
    got = sdk.catalog.object.get(object_id=menu["coffee"], request_options=RO).object
    assert [v.id for v in got.item_data.variations] == [menu["small"]]


# ============================================================================ reads
def test_retrieve_with_related_objects(sdk, menu) -> None:
    plain = sdk.catalog.object.get(object_id=menu["coffee"], request_options=RO)
    assert plain.related_objects is None
    resp = sdk.catalog.object.get(object_id=menu["coffee"], include_related_objects=True,
                                  request_options=RO)
    assert {o.id for o in resp.related_objects} == {menu["drinks"], menu["tax"], menu["milk"]}
    err = error_of(lambda: sdk.catalog.object.get(object_id="NOPE", request_options=RO))
    assert err.status_code == 404
    assert first_error(err) == {"category": IRE, "code": "NOT_FOUND",
                                "detail": "Catalog object with ID `NOPE` not found."}


def test_retrieve_an_older_catalog_version(sdk, menu) -> None:
    old = sdk.catalog.object.get(object_id=menu["tax"], request_options=RO).object
    sdk.catalog.object.upsert(idempotency_key="t2", object={
        "type": "TAX", "id": old.id, "tax_data": {"name": "New tax", "percentage": "12"}},
        request_options=RO)
    then = sdk.catalog.object.get(object_id=old.id, catalog_version=old.version, request_options=RO)
    assert then.object.tax_data.name == "Sales tax"
    assert sdk.catalog.object.get(object_id=old.id, request_options=RO).object.tax_data.name == "New tax"


def test_batch_retrieve(sdk, menu) -> None:
    resp = sdk.catalog.batch_get(object_ids=[menu["tax"], menu["small"], "NOPE"],
                                 include_related_objects=True, request_options=RO)
    assert {o.id for o in resp.objects} == {menu["tax"], menu["small"]}
    assert menu["coffee"] in {o.id for o in resp.related_objects}
    err = error_of(lambda: sdk.catalog.batch_get(object_ids=["x"] * 1001, request_options=RO))
    assert first_error(err)["field"] == "object_ids"


def test_list_types_and_cursor(sdk) -> None:
    sdk.catalog.batch_upsert(idempotency_key="many", batches=[{"objects": [
        tax(f"#t{i}", name=f"Tax {i}") for i in range(130)] + [
        item("#i", "Item", variation("#v", "V", 100))]}], request_options=RO)
    pager = sdk.catalog.list(types="tax", request_options=RO)
    first = pager.response
    assert len(first.objects) == 100 and first.cursor
    taxes = list(pager)
    assert len(taxes) == 130 and {o.type for o in taxes} == {"TAX"}
    nested = list(sdk.catalog.list(types="ITEM_VARIATION,ITEM", request_options=RO))
    assert sorted(o.type for o in nested) == ["ITEM", "ITEM_VARIATION"]
    err = error_of(lambda: sdk.catalog.list(types="SPACESHIP", request_options=RO))
    assert first_error(err)["code"] == "INVALID_ENUM_VALUE"


def test_catalog_info(sdk) -> None:
    limits = sdk.catalog.info(request_options=RO).limits
    assert limits.batch_delete_max_object_ids == 200
    assert limits.batch_upsert_max_objects_per_batch == 1000


# ============================================================================ delete
def test_delete_item_deletes_its_variations(sdk, menu) -> None:
    resp = sdk.catalog.object.delete(object_id=menu["coffee"], request_options=RO)
    assert set(resp.deleted_object_ids) == {menu["coffee"], menu["small"], menu["large"]}
    assert resp.deleted_at
    for oid in (menu["coffee"], menu["small"]):
        assert error_of(lambda: sdk.catalog.object.get(object_id=oid, request_options=RO)).status_code == 404
    assert [o.id for o in sdk.catalog.list(types="ITEM", request_options=RO)] == []
    gone = sdk.catalog.search(object_types=["ITEM"], include_deleted_objects=True,
                              request_options=RO).objects
    assert [(o.id, o.is_deleted) for o in gone] == [(menu["coffee"], True)]
    err = error_of(lambda: sdk.catalog.object.delete(object_id=menu["coffee"], request_options=RO))
    assert err.status_code == 404


def test_batch_delete_skips_unknown_ids(sdk, menu) -> None:
    resp = sdk.catalog.batch_delete(object_ids=[menu["tax"], "NOPE"], request_options=RO)
    assert resp.deleted_object_ids == [menu["tax"]]
    err = error_of(lambda: sdk.catalog.batch_delete(object_ids=["x"] * 201, request_options=RO))
    assert first_error(err)["code"] == "VALUE_TOO_LONG"


def test_a_deleted_reference_cannot_be_used(sdk, menu) -> None:
    sdk.catalog.batch_delete(object_ids=[menu["drinks"]], request_options=RO)
    err = error_of(lambda: sdk.catalog.object.upsert(idempotency_key="x", object=item(
        "#n", "New", variation("#nv", "V", 100), category_id=menu["drinks"]), request_options=RO))
    assert "references unknown object" in first_error(err)["detail"]


# ============================================================================ search
def test_search_queries(sdk, menu) -> None:
    def ids(**kw: Any) -> set[str]:
        return {o.id for o in sdk.catalog.search(request_options=RO, **kw).objects or []}

    assert ids(query={"exact_query": {"attribute_name": "name", "attribute_value": "Coffee"}}) == {menu["coffee"]}
    assert ids(query={"exact_query": {"attribute_name": "name", "attribute_value": "coffee"}}) == set()
    assert ids(query={"prefix_query": {"attribute_name": "name", "attribute_prefix": "cof"}}) == {menu["coffee"]}
    assert ids(object_types=["ITEM_VARIATION"],
               query={"prefix_query": {"attribute_name": "sku", "attribute_prefix": "CF-L"}}) == {menu["large"]}
    assert ids(query={"text_query": {"keywords": ["filter", "strong"]}}) == {menu["coffee"]}
    assert ids(query={"text_query": {"keywords": ["tea"]}}) == set()
    assert ids(object_types=["ITEM_VARIATION"], query={"range_query": {
        "attribute_name": "price_money", "attribute_min_value": 400}}) == {menu["large"]}
    assert ids(query={"items_for_tax_query": {"tax_ids": [menu["tax"]]}}) == {menu["coffee"]}
    assert ids(query={"items_for_modifier_list_query": {"modifier_list_ids": [menu["milk"]]}}) == {menu["coffee"]}
    assert ids(object_types=["TAX", "CATEGORY"]) == {menu["tax"], menu["drinks"]}


def test_search_item_variations_for_item_option_values(sdk) -> None:
    resp = sdk.catalog.batch_upsert(idempotency_key="opts", batches=[{"objects": [
        {"type": "ITEM_OPTION", "id": "#size", "item_option_data": {"name": "Size", "values": [
            {"type": "ITEM_OPTION_VAL", "id": "#s", "item_option_value_data": {"name": "S"}},
            {"type": "ITEM_OPTION_VAL", "id": "#l", "item_option_value_data": {"name": "L"}}]}},
        item("#shirt", "Shirt",
             variation("#shirt-s", "S", 1000, item_option_values=[
                 {"item_option_id": "#size", "item_option_value_id": "#s"}]),
             variation("#shirt-l", "L", 1200, item_option_values=[
                 {"item_option_id": "#size", "item_option_value_id": "#l"}]),
             item_options=[{"item_option_id": "#size"}]),
    ]}], request_options=RO)
    ids = {m.client_object_id: m.object_id for m in resp.id_mappings}
    found = sdk.catalog.search(object_types=["ITEM_VARIATION"], query={
        "item_variations_for_item_option_values_query": {"item_option_value_ids": [ids["#l"]]}},
        request_options=RO).objects
    assert [o.id for o in found] == [ids["#shirt-l"]]


def test_search_paging_begin_time_and_errors(sdk, menu) -> None:
    page = sdk.catalog.search(object_types=["ITEM", "TAX", "CATEGORY"], limit=2, request_options=RO)
    assert len(page.objects) == 2 and page.cursor and page.latest_time
    rest = sdk.catalog.search(object_types=["ITEM", "TAX", "CATEGORY"], limit=2,
                              cursor=page.cursor, request_options=RO)
    assert len(rest.objects) == 1 and rest.cursor is None
    assert sdk.catalog.search(begin_time=page.latest_time, request_options=RO).objects is None
    err = error_of(lambda: sdk.catalog.search(query={
        "exact_query": {"attribute_name": "name", "attribute_value": "Coffee"},
        "items_for_tax_query": {"tax_ids": [menu["tax"]]}}, request_options=RO))
    assert first_error(err)["field"] == "query"
    err = error_of(lambda: sdk.catalog.search(query={
        "exact_query": {"attribute_name": "colour", "attribute_value": "red"}}, request_options=RO))
    assert first_error(err)["field"] == "query.exact_query.attribute_name"
    err = error_of(lambda: sdk.catalog.search(cursor="garbage", request_options=RO))
    assert first_error(err)["code"] == "INVALID_CURSOR"


def test_search_catalog_items(sdk, menu) -> None:
    resp = sdk.catalog.search_items(text_filter="coffee", request_options=RO)
    assert [i.id for i in resp.items] == [menu["coffee"]]
    assert sdk.catalog.search_items(text_filter="tea", request_options=RO).items is None
    assert [i.id for i in sdk.catalog.search_items(category_ids=[menu["drinks"]],
                                                   request_options=RO).items] == [menu["coffee"]]
    hit = sdk.catalog.search_items(text_filter="large", request_options=RO)
    assert hit.matched_variation_ids == [menu["large"]]
    err = error_of(lambda: sdk.catalog.search_items(stock_levels=["OUT"], request_options=RO))
    assert (err.status_code, first_error(err)["field"]) == (400, "stock_levels")
    err = error_of(lambda: sdk.catalog.search_items(sort_order="SIDEWAYS", request_options=RO))
    assert first_error(err)["code"] == "INVALID_ENUM_VALUE"


# ============================================================================ item links
def test_update_item_taxes_and_modifier_lists(sdk, menu) -> None:
    new_tax = sdk.catalog.object.upsert(idempotency_key="nt", object=tax("#t2", name="City"),
                                        request_options=RO).catalog_object.id
    resp = sdk.catalog.update_item_taxes(item_ids=[menu["coffee"]], taxes_to_enable=[new_tax],
                                         taxes_to_disable=[menu["tax"]], request_options=RO)
    assert resp.updated_at and resp.errors is None
    got = sdk.catalog.object.get(object_id=menu["coffee"], request_options=RO).object
    assert got.item_data.tax_ids == [new_tax]
    sdk.catalog.update_item_modifier_lists(item_ids=[menu["coffee"]],
                                           modifier_lists_to_disable=[menu["milk"]],
                                           request_options=RO)
    got = sdk.catalog.object.get(object_id=menu["coffee"], request_options=RO).object
    assert got.item_data.modifier_list_info is None
    err = error_of(lambda: sdk.catalog.update_item_taxes(item_ids=["NOPE"], request_options=RO))
    assert (err.status_code, first_error(err)["field"]) == (404, "item_ids[0]")
    err = error_of(lambda: sdk.catalog.update_item_modifier_lists(
        item_ids=[menu["coffee"]], modifier_lists_to_enable=[menu["tax"]], request_options=RO))
    assert (err.status_code, first_error(err)["field"]) == (404, "modifier_lists_to_enable[0]")


# ============================================================================ control API
def test_seed_with_fixed_ids_and_reset(raw, sdk) -> None:
    r = raw.post("/_sim/catalog", json=[item("FIXED_ITEM", "Cake", variation("FIXED_VAR", "Slice", 350))])
    assert r.status_code == 200, r.text
    got = sdk.catalog.object.get(object_id="FIXED_VAR", request_options=RO).object
    assert got.item_variation_data.item_id == "FIXED_ITEM"
    raw.post("/_sim/reset")
    assert error_of(lambda: sdk.catalog.object.get(object_id="FIXED_VAR", request_options=RO)).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"objects": 3}, "objects"),
    ([{"type": "ITEM", "id": "A", "item_data": {"name": "No variations"}}], None),
    ([{"type": "TAX", "id": "T", "tax_data": {"percentage": 5}}], "objects[0].tax_data.percentage"),
])
def test_seed_rejects_bad_objects_and_writes_nothing(raw, sdk, body, field) -> None:
    r = raw.post("/_sim/catalog", json=body)
    assert r.status_code == 400
    assert r.json()["errors"][0].get("field") == field
    assert list(sdk.catalog.list(request_options=RO)) == []


def test_serve_catalog_config_seeds_every_merchant(make_app, make_sdk) -> None:
    from simulator.store import SimulatorConfig

    app = make_app(SimulatorConfig(catalog=[tax("FIXED_TAX", pct="8")]))
    for token in ("one", "two"):
        got = make_sdk(token, app).catalog.object.get(object_id="FIXED_TAX", request_options=RO)
        assert got.object.tax_data.percentage == "8"


def test_catalog_is_part_of_the_snapshot(raw, sdk, menu, make_raw) -> None:
    state = raw.get("/_sim/state").json()
    assert menu["coffee"] in state["records"]["catalog"]
    other = make_raw("restored-merchant")
    assert other.post("/_sim/state", json=state).status_code == 200
    again = other.get(f"/v2/catalog/object/{menu['coffee']}").json()["object"]
    assert again["item_data"]["name"] == "Coffee"


# ============================================================================ webhooks
def test_every_catalog_change_records_catalog_version_updated(raw, sdk, menu) -> None:
    def catalog_events() -> list[dict]:
        r = raw.get("/_sim/events", params={"type": "catalog.version.updated"})
        assert r.status_code == 200, r.text
        return r.json()["events"]

    assert len(catalog_events()) == 1  # the menu fixture's batch upsert
    sdk.catalog.update_item_taxes(item_ids=[menu["coffee"]], taxes_to_disable=[menu["tax"]],
                                  request_options=RO)
    sdk.catalog.object.delete(object_id=menu["tax"], request_options=RO)
    events = catalog_events()
    assert len(events) == 3
    payload = events[-1]
    body = payload.get("payload") or payload
    assert body["type"] == "catalog.version.updated"
    assert body["data"]["type"] == "catalog_version"
    assert body["data"]["object"]["catalog_version"]["updated_at"]
    error_of(lambda: sdk.catalog.object.delete(object_id="NOPE", request_options=RO))
    assert len(catalog_events()) == 3  # a rejected command records nothing


# ============================================================================ bad input
@pytest.mark.parametrize("method, path, body", [
    ("POST", "/v2/catalog/object", {"idempotency_key": "k"}),
    ("POST", "/v2/catalog/object", {"idempotency_key": "k", "object": {"type": "TAX"}}),
    ("POST", "/v2/catalog/object", {"idempotency_key": "k", "object": {
        "type": "TAX", "id": "#t", "tax_data": {"name": 5}}}),
    ("POST", "/v2/catalog/object", {"idempotency_key": "k", "object": {
        "type": "ITEM", "id": "#i", "item_data": {"name": "I", "variations": [variation(
            "#v", "V", 0) | {"item_variation_data": {"price_money": {"amount": 1e400}}}]}}}),
    ("POST", "/v2/catalog/object", {"idempotency_key": "k", "object": {
        "type": "ITEM", "id": "#i", "item_data": {"name": "I", "variations": [{
            "type": "ITEM_VARIATION", "id": "#v", "item_variation_data": {
                "price_money": {"amount": 2**63, "currency": "USD"}}}]}}}),
    ("POST", "/v2/catalog/object", {"idempotency_key": "k", "object": {
        "type": "IMAGE", "id": "#i", "image_data": {"name": "x"}}}),
    ("POST", "/v2/catalog/batch-upsert", {"idempotency_key": "k"}),
    ("POST", "/v2/catalog/batch-upsert", {"idempotency_key": "k", "batches": {"objects": []}}),
    ("POST", "/v2/catalog/batch-upsert", {"idempotency_key": "k", "batches": [
        {"objects": [tax("#a"), tax("#a")]}]}),
    ("POST", "/v2/catalog/batch-retrieve", {}),
    ("POST", "/v2/catalog/batch-retrieve", {"object_ids": "A"}),
    ("POST", "/v2/catalog/batch-delete", {"object_ids": [1]}),
    ("POST", "/v2/catalog/search", {"limit": "ten"}),
    ("POST", "/v2/catalog/search", {"object_types": ["SPACESHIP"]}),
    ("POST", "/v2/catalog/search", {"begin_time": "yesterday"}),
    ("POST", "/v2/catalog/search", {"query": {"text_query": {"keywords": []}}}),
    ("POST", "/v2/catalog/search", {"query": {"range_query": {"attribute_name": "price_money",
                                                              "attribute_min_value": "NaN"}}}),
    ("POST", "/v2/catalog/search-catalog-items", {"limit": 1.5}),
    ("POST", "/v2/catalog/update-item-taxes", {}),
    ("POST", "/v2/catalog/update-item-modifier-lists", {"item_ids": ["x"] * 1001}),
    ("GET", "/v2/catalog/list?catalog_version=soon", None),
    ("GET", "/v2/catalog/list?catalog_version=99999999999999999999", None),
    ("POST", "/v2/catalog/batch-retrieve", {"object_ids": ["A"], "catalog_version": 2**64}),
    ("POST", "/v2/catalog/search", {"query": {"range_query": {"attribute_name": "ordinal",
                                                              "attribute_max_value": -2**64}}}),
    ("GET", "/v2/catalog/object/X?include_related_objects=maybe", None),
])
def test_bad_input_gets_square_errors_and_changes_nothing(raw, method, path, body) -> None:
    before = raw.get("/_sim/state").json()["records"]["catalog"]
    if body is None:
        r = raw.request(method, path)
    else:
        r = raw.request(method, path, content=json.dumps(body, allow_nan=True).replace(
            "Infinity", "1e400"), headers={"content-type": "application/json"})
    assert r.status_code in (400, 404), r.text
    errors = r.json()["errors"]
    assert errors and all(e["category"] == IRE for e in errors)
    assert raw.get("/_sim/state").json()["records"]["catalog"] == before


def test_malformed_json_body(raw) -> None:
    r = raw.post("/v2/catalog/batch-upsert", content=b"{not json",
                 headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["category"] == IRE


def test_catalogs_are_per_merchant(sdk, make_sdk, menu) -> None:
    other = make_sdk("someone-else")
    assert error_of(lambda: other.catalog.object.get(object_id=menu["coffee"],
                                                     request_options=RO)).status_code == 404
    assert auth()  # the default token owns the menu

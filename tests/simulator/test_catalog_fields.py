"""Catalog request fields that no other suite exercises, through the official SDK: each test would
fail if its fields were accepted and ignored (docs/fields.md names these tests). Source: the spec
(S1) descriptions of SearchCatalogObjectsRequest.query, SearchCatalogItemsRequest and
RetrieveCatalogObject."""

from __future__ import annotations

from typing import Any

from .conftest import RO


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def _item(iid: str, name: str, **data: Any) -> dict[str, Any]:
    return {"type": "ITEM", "id": iid, "item_data": {"name": name, "variations": [
        {"type": "ITEM_VARIATION", "id": f"{iid}-v", "item_variation_data": {
            "name": "Regular", "pricing_type": "FIXED_PRICING", "price_money": usd(100)}}],
        **data}}


def _ids(sdk, objects: list[dict[str, Any]]) -> dict[str, str]:
    resp = sdk.catalog.batch_upsert(idempotency_key=f"k-{len(objects)}-{objects[0]['id']}",
                                    batches=[{"objects": objects}], request_options=RO)
    return {m.client_object_id: m.object_id for m in resp.id_mappings}


def _names(objects) -> list[str]:
    return [o.item_data.name for o in objects or []]


def test_search_sorted_attribute_query_and_set_query(sdk) -> None:
    # S1 CatalogQuery: sorted_attribute_query orders by an attribute; set_query keeps objects
    # whose attribute is one of attribute_values.
    _ids(sdk, [_item("#a", "Apple"), _item("#b", "Banana"), _item("#c", "Cherry")])
    desc = sdk.catalog.search(object_types=["ITEM"], request_options=RO, query={
        "sorted_attribute_query": {"attribute_name": "name", "sort_order": "DESC"}})
    assert _names(desc.objects) == ["Cherry", "Banana", "Apple"]
    picked = sdk.catalog.search(object_types=["ITEM"], request_options=RO, query={
        "set_query": {"attribute_name": "name", "attribute_values": ["Apple", "Cherry"]}})
    assert sorted(_names(picked.objects)) == ["Apple", "Cherry"]


def test_search_items_for_item_options_query(sdk) -> None:
    # S1 CatalogQueryItemsForItemOptions: items that use any of item_option_ids.
    ids = _ids(sdk, [
        {"type": "ITEM_OPTION", "id": "#size", "item_option_data": {"name": "Size", "values": [
            {"type": "ITEM_OPTION_VAL", "id": "#s", "item_option_value_data": {"name": "S"}}]}},
        _item("#shirt", "Shirt", item_options=[{"item_option_id": "#size"}]),
        _item("#mug", "Mug"),
    ])
    found = sdk.catalog.search(object_types=["ITEM"], request_options=RO, query={
        "items_for_item_options_query": {"item_option_ids": [ids["#size"]]}})
    assert _names(found.objects) == ["Shirt"]


def test_search_catalog_items_locations_product_types_and_archived_state(sdk) -> None:
    # S1 SearchCatalogItemsRequest: enabled_location_ids, product_types and archived_state
    # (default: not archived) each narrow the items.
    loc = sdk.locations.get("main", request_options=RO).location.id
    _ids(sdk, [
        _item("#tea", "Tea"),
        _item("#cut", "Haircut", product_type="APPOINTMENTS_SERVICE"),
        _item("#old", "Old blend", is_archived=True),
        dict(_item("#away", "Elsewhere"), present_at_all_locations=False),
    ])
    everywhere = sdk.catalog.search_items(request_options=RO)
    assert sorted(_names(everywhere.items)) == ["Elsewhere", "Haircut", "Tea"]
    here = sdk.catalog.search_items(enabled_location_ids=[loc], request_options=RO)
    assert sorted(_names(here.items)) == ["Haircut", "Tea"]
    services = sdk.catalog.search_items(product_types=["APPOINTMENTS_SERVICE"], request_options=RO)
    assert _names(services.items) == ["Haircut"]
    archived = sdk.catalog.search_items(archived_state="ARCHIVED_STATE_ARCHIVED", request_options=RO)
    assert _names(archived.items) == ["Old blend"]
    both = sdk.catalog.search_items(archived_state="ARCHIVED_STATE_ALL", request_options=RO)
    assert len(both.items) == 4


def test_retrieve_include_category_path_to_root(sdk) -> None:
    # S1 RetrieveCatalogObject.include_category_path_to_root: a category's path_to_root lists
    # its ancestors.
    ids = _ids(sdk, [
        {"type": "CATEGORY", "id": "#food", "category_data": {"name": "Food"}},
        {"type": "CATEGORY", "id": "#fruit", "category_data": {
            "name": "Fruit", "parent_category": {"id": "#food"}}},
    ])
    plain = sdk.catalog.object.get(ids["#fruit"], request_options=RO).object
    assert plain.category_data.path_to_root is None
    with_path = sdk.catalog.object.get(ids["#fruit"], include_category_path_to_root=True,
                                       request_options=RO).object
    assert [(p.category_id, p.category_name) for p in with_path.category_data.path_to_root] == \
        [(ids["#food"], "Food")]


def test_search_related_objects_deleted_objects_and_item_pages(sdk) -> None:
    # S1: SearchCatalogObjects.include_related_objects adds what the results reference;
    # BatchRetrieveCatalogObjects.include_deleted_objects returns deleted objects;
    # SearchCatalogItems pages with limit and cursor.
    ids = _ids(sdk, [
        {"type": "CATEGORY", "id": "#cat", "category_data": {"name": "Snacks"}},
        _item("#chips", "Chips", categories=[{"id": "#cat"}]),
        _item("#nuts", "Nuts"),
    ])
    found = sdk.catalog.search(object_types=["ITEM"], include_related_objects=True,
                               request_options=RO)
    assert ids["#cat"] in {o.id for o in found.related_objects}
    bare = sdk.catalog.search(object_types=["ITEM"], request_options=RO)
    assert bare.related_objects is None
    sdk.catalog.object.delete(ids["#nuts"], request_options=RO)
    assert not sdk.catalog.batch_get(object_ids=[ids["#nuts"]], request_options=RO).objects
    deleted = sdk.catalog.batch_get(object_ids=[ids["#nuts"]], include_deleted_objects=True,
                                    request_options=RO).objects
    assert [o.id for o in deleted] == [ids["#nuts"]] and deleted[0].is_deleted
    _ids(sdk, [_item("#pop", "Popcorn")])
    page = sdk.catalog.search_items(limit=1, request_options=RO)
    assert _names(page.items) == ["Chips"] and page.cursor
    rest = sdk.catalog.search_items(limit=1, cursor=page.cursor, request_options=RO)
    assert _names(rest.items) == ["Popcorn"]

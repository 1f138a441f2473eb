"""Catalog API (``client.catalog.*``) and the control API's catalog seeding (POST /_sim/catalog).

Routes parse and check the request, call one command of the merchant's catalog
(:class:`orderfsm.catalog.Catalog`) and render Square's response. Writes run through
``engine.catalog_command`` so a rejected request changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from orderfsm.catalog import LIMITS
from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.rules import violation
from simulator._schemas import SCHEMAS

from ..http import (decode_cursor, encode_cursor, execute, json_response, merchant_of, read_body,
                    strip_nulls)
from ..validation import validate_body, validate_query

router = APIRouter()

OBJECT_TYPES = tuple(SCHEMAS["CatalogObject"]["properties"]["type"]["enum"])
LIST_PAGE = 100  # ListCatalog's page size (spec)
SEARCH_PAGE = 100


def _too_many(ids: list, maximum: int, field: str) -> None:
    if len(ids) > maximum:
        raise violation("api.too_many_ids", maximum=maximum, field=field)


def _types(values: Any, field: str) -> list[str] | None:
    if not values:
        return None
    out = []
    for i, raw in enumerate(values):
        name = raw.strip().upper()
        if name not in OBJECT_TYPES:
            raise SquareError(400, [ErrorDetail(
                "INVALID_REQUEST_ERROR", "INVALID_ENUM_VALUE",
                f"`{raw}` is not a valid enum value for `{field}`.", field)])
        out.append(name)
    return out


def _page(rows: list, limit: int, cursor: str | None, shape: Any) -> tuple[list, str | None]:
    pos = decode_cursor(cursor, shape)
    start = int(pos[0]) if pos else 0
    page = rows[start:start + limit]
    nxt = start + limit
    return page, (encode_cursor((str(nxt), ""), shape) if nxt < len(rows) else None)


def _query(request: Request, operation: str) -> dict[str, Any]:
    q = validate_query(operation, request.query_params)
    _int64(q.get("catalog_version"), "catalog_version")
    return q


def _int64(value: Any, field: str) -> None:
    if isinstance(value, int) and not -(2 ** 63) <= value < 2 ** 63:
        raise violation("api.invalid_value", field=field,
                        reason="The value does not fit in a 64-bit integer.")


# ================================================================ writes
@router.post("/v2/catalog/object")
async def upsert_catalog_object(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "UpsertCatalogObjectRequest")
    obj = strip_nulls(body["object"])
    catalog = m.engine.catalog

    def run() -> dict[str, Any]:
        out = m.engine.catalog_command(lambda: catalog.upsert([[obj]], prefix="object",
                                                              partial=False))
        result: dict[str, Any] = {"catalog_object": out["objects"][0]}
        if out.get("id_mappings"):
            result["id_mappings"] = out["id_mappings"]
        return result

    return execute(m, "UpsertCatalogObject", body, run)


@router.post("/v2/catalog/batch-upsert")
async def batch_upsert_catalog_objects(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "BatchUpsertCatalogObjectsRequest")
    batches = [strip_nulls(b["objects"]) for b in body["batches"]]
    total = 0
    for i, objects in enumerate(batches):
        _too_many(objects, LIMITS["batch_upsert_max_objects_per_batch"], f"batches[{i}].objects")
        total += len(objects)
    if total > LIMITS["batch_upsert_max_total_objects"]:
        raise violation("api.too_many_ids", maximum=LIMITS["batch_upsert_max_total_objects"],
                        field="batches")
    catalog = m.engine.catalog
    return execute(m, "BatchUpsertCatalogObjects", body,
                   lambda: m.engine.catalog_command(lambda: catalog.upsert(batches)))


@router.delete("/v2/catalog/object/{object_id}")
async def delete_catalog_object(object_id: str, request: Request):
    m = merchant_of(request)
    catalog = m.engine.catalog
    return json_response(m.engine.catalog_command(
        lambda: catalog.delete([object_id], single=True)))


@router.post("/v2/catalog/batch-delete")
async def batch_delete_catalog_objects(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "BatchDeleteCatalogObjectsRequest")
    ids = body["object_ids"]
    _too_many(ids, LIMITS["batch_delete_max_object_ids"], "object_ids")
    catalog = m.engine.catalog
    return json_response(m.engine.catalog_command(lambda: catalog.delete(ids)))


@router.post("/v2/catalog/update-item-taxes")
async def update_item_taxes(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "UpdateItemTaxesRequest")
    return _links(m, body, "TAX", ("taxes_to_enable", "taxes_to_disable"), "update_item_taxes")


@router.post("/v2/catalog/update-item-modifier-lists")
async def update_item_modifier_lists(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "UpdateItemModifierListsRequest")
    return _links(m, body, "MODIFIER_LIST",
                  ("modifier_lists_to_enable", "modifier_lists_to_disable"),
                  "update_item_modifier_lists")


def _links(m: Any, body: dict, kind: str, names: tuple[str, str], limit: str) -> Any:
    items = body["item_ids"]
    _too_many(items, LIMITS[f"{limit}_max_item_ids"], "item_ids")
    enable = body.get(names[0]) or []
    disable = body.get(names[1]) or []
    _too_many(enable, LIMITS[f"{limit}_max_{names[0]}"], names[0])
    _too_many(disable, LIMITS[f"{limit}_max_{names[1]}"], names[1])
    catalog = m.engine.catalog
    return json_response(m.engine.catalog_command(
        lambda: catalog.update_item_links(items, enable, disable, kind)))


# ================================================================ reads
@router.get("/v2/catalog/object/{object_id}")
async def retrieve_catalog_object(object_id: str, request: Request):
    m = merchant_of(request)
    q = _query(request, "RetrieveCatalogObject")
    return json_response(m.engine.catalog.retrieve(
        object_id, related=q.get("include_related_objects", False),
        version=q.get("catalog_version"),
        path_to_root=q.get("include_category_path_to_root", False)))


@router.post("/v2/catalog/batch-retrieve")
async def batch_retrieve_catalog_objects(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "BatchRetrieveCatalogObjectsRequest")
    ids = body["object_ids"]
    _too_many(ids, LIMITS["batch_retrieve_max_object_ids"], "object_ids")
    _int64(body.get("catalog_version"), "catalog_version")
    if body.get("include_deleted_objects") and body.get("include_category_path_to_root"):
        raise violation("api.invalid_value", field="include_category_path_to_root",
                        reason="`include_deleted_objects` and `include_category_path_to_root` "
                               "cannot both be true.")
    return json_response(m.engine.catalog.batch_retrieve(
        ids, related=bool(body.get("include_related_objects")),
        version=body.get("catalog_version"), deleted=bool(body.get("include_deleted_objects")),
        path_to_root=bool(body.get("include_category_path_to_root"))))


@router.get("/v2/catalog/list")
async def list_catalog(request: Request):
    m = merchant_of(request)
    q = _query(request, "ListCatalog")
    types_text = q.get("types")
    types = _types(types_text.split(",") if types_text else None, "types")
    version = q.get("catalog_version")
    rows = m.engine.catalog.list(types, version=version)
    shape = {"types": types, "catalog_version": version, "_list": "catalog"}
    page, cursor = _page(rows, LIST_PAGE, q.get("cursor"), shape)
    out: dict[str, Any] = {"objects": page} if page else {}
    if cursor:
        out["cursor"] = cursor
    return json_response(out)


@router.post("/v2/catalog/search")
async def search_catalog_objects(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "SearchCatalogObjectsRequest")
    if body.get("include_deleted_objects") and body.get("include_category_path_to_root"):
        raise violation("api.invalid_value", field="include_category_path_to_root",
                        reason="`include_deleted_objects` and `include_category_path_to_root` "
                               "cannot both be true.")
    for name in ("attribute_min_value", "attribute_max_value"):
        rq = (body.get("query") or {}).get("range_query") or {}
        _int64(rq.get(name), f"query.range_query.{name}")
    begin = body.get("begin_time")
    if begin is not None:
        from ..http import query_time

        begin = query_time(begin, "begin_time")
    catalog = m.engine.catalog
    types = _types(body.get("object_types"), "object_types")
    rows = catalog.search(object_types=types, deleted=bool(body.get("include_deleted_objects")),
                          begin_time=begin, query=strip_nulls(body.get("query") or {}))
    limit = body.get("limit")
    # The spec: a limit that is negative, zero or over 1,000 is ignored.
    if limit is None or limit <= 0 or limit > LIMITS["search_max_page_limit"]:
        limit = SEARCH_PAGE
    shape = {k: v for k, v in body.items() if k not in ("cursor", "limit")}
    page, cursor = _page(rows, limit, body.get("cursor"), shape)
    path = bool(body.get("include_category_path_to_root"))
    out: dict[str, Any] = {}
    if page:
        out["objects"] = [catalog.render(r, path_to_root=path) for r in page]
        if body.get("include_related_objects"):
            related = catalog._related(page, {r["id"] for r in page})
            if related:
                out["related_objects"] = related
    if cursor:
        out["cursor"] = cursor
    if catalog.updated_at:
        out["latest_time"] = catalog.updated_at
    return json_response(out)


@router.post("/v2/catalog/search-catalog-items")
async def search_catalog_items(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "SearchCatalogItemsRequest")
    for name in ("stock_levels", "custom_attribute_filters"):
        if body.get(name):
            raise violation("api.invalid_value", field=name,
                            reason=f"`{name}` filters need the Inventory and custom attribute "
                                   "APIs, which this server does not implement.")
    limit = body.get("limit")
    if limit is None or limit <= 0 or limit > 100:
        limit = 100
    items, matched = m.engine.catalog.search_items(
        text=body.get("text_filter"), category_ids=body.get("category_ids"),
        location_ids=body.get("enabled_location_ids"), product_types=body.get("product_types"),
        descending=body.get("sort_order") == "DESC")
    archived = body.get("archived_state") or "ARCHIVED_STATE_NOT_ARCHIVED"
    if archived == "ARCHIVED_STATE_NOT_ARCHIVED":
        items = [i for i in items if not i["item_data"].get("is_archived")]
    elif archived == "ARCHIVED_STATE_ARCHIVED":
        items = [i for i in items if i["item_data"].get("is_archived")]
    shape = {k: v for k, v in body.items() if k not in ("cursor", "limit")}
    page, cursor = _page(items, limit, body.get("cursor"), shape)
    out: dict[str, Any] = {}
    if page:
        out["items"] = page
        ids = {v["id"] for i in page for v in i["item_data"].get("variations") or []}
        hits = [v for v in matched if v in ids]
        if hits:
            out["matched_variation_ids"] = hits
    if cursor:
        out["cursor"] = cursor
    return json_response(out)


@router.get("/v2/catalog/info")
async def catalog_info(request: Request):
    m = merchant_of(request)
    return json_response(m.engine.catalog.info())


# ================================================================ control API
def seed_objects(engine: Any, objects: Any, *, emit: bool = True) -> dict[str, Any]:
    """Write CatalogObjects with fixed ids (``#`` ids get new ones) into ``engine``'s catalog.
    Each object is checked against Square's CatalogObject schema first."""
    if isinstance(objects, dict) and "objects" in objects:
        objects = objects["objects"]
    if not isinstance(objects, list):
        raise SquareError(400, [ErrorDetail(
            "INVALID_REQUEST_ERROR", "EXPECTED_ARRAY",
            "Expected an array of CatalogObjects (or {\"objects\": [...]}).", "objects")])
    for i, obj in enumerate(objects):
        try:
            validate_body("UpsertCatalogObjectRequest", {"idempotency_key": "seed", "object": obj})
        except SquareError as err:
            err.errors[:] = [ErrorDetail(e.category, e.code, e.detail,
                                         f"objects[{i}]" + e.field[len("object"):]
                                         if e.field and e.field.startswith("object") else e.field)
                             for e in err.errors]
            raise
    objects = strip_nulls(objects)
    catalog = engine.catalog
    return engine.catalog_command(lambda: catalog.upsert([objects], prefix="objects",
                                                         partial=False, seeding=True, emit=emit))


@router.post("/_sim/catalog")
async def seed_catalog(request: Request):
    """Write CatalogObjects with fixed ids into this merchant's catalog (a list, or `{"objects": [...]}`); see catalog.md."""
    m = merchant_of(request)
    body = await read_body(request)
    out = seed_objects(m.engine, body)
    return json_response({"objects": out["objects"], "id_mappings": out.get("id_mappings", []),
                          "updated_at": out.get("updated_at")})

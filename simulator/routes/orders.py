"""Orders API."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.rules import violation

from ..http import (decode_cursor, encode_cursor, execute, json_response, merchant_of, read_body,
                    query_limit, query_time, strip_nulls)

router = APIRouter()

# Sparse update bodies leave out what the order already has.
_SPARSE = frozenset({"order.location_id", "order.line_items[].quantity"})
_SORT_FIELDS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "CLOSED_AT": "closed_at"}


def _order_json(m: Any, rec: dict) -> bytes:
    """The JSON of a stored order; the renderer caches it (``Engine.order_json``)."""
    return m.engine.order_json(rec)


@router.post("/v2/orders")
async def create_order(request: Request):
    m = merchant_of(request)
    # A missing location is the engine's rule (order.location_required), not a blank string.
    body = await read_body(request, "CreateOrderRequest", frozenset({"order.location_id"}))
    if body.get("order") is None:  # optional in the spec, but there is nothing to create without it
        raise SquareError(400, [ErrorDetail("INVALID_REQUEST_ERROR", "MISSING_REQUIRED_PARAMETER",
                                            "Field must be set", "order")])
    order = strip_nulls(body["order"])
    return execute(m, "CreateOrder", body, lambda: {"order": m.engine.create_order(order)})


@router.post("/v2/orders/batch-retrieve")
async def batch_retrieve_orders(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "BatchRetrieveOrdersRequest")
    ids = body["order_ids"]
    if len(ids) > 100:
        raise violation("api.too_many_ids", maximum=100, field="order_ids")
    location = body.get("location_id")
    m.engine.fire_due()
    orders = []
    for oid in dict.fromkeys(ids):
        rec = m.engine.orders.get(oid)
        if rec is not None and (location is None or rec["location_id"] == location):
            orders.append(_order_json(m, rec))
    return Response(b'{"orders":[' + b",".join(orders) + b"]}", media_type="application/json")


@router.post("/v2/orders/calculate")
async def calculate_order(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "CalculateOrderRequest")
    return json_response({"order": m.engine.calculate_order(strip_nulls(body["order"]))})


@router.post("/v2/orders/clone")
async def clone_order(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "CloneOrderRequest")
    return execute(m, "CloneOrder", body, lambda: {
        "order": m.engine.clone_order(body["order_id"], body.get("version"))})


@router.post("/v2/orders/search")
async def search_orders(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "SearchOrdersRequest")
    engine = m.engine
    # "Your request must specify at least one location to search" (engine rule
    # order.search_location_required); no default to every location.
    locations = body.get("location_ids") or []
    if len(locations) > 10:
        raise violation("api.too_many_ids", maximum=10, field="location_ids")
    known = []
    for loc in locations:
        if loc == "main":
            known.append(engine.main_location_id)
        elif loc in engine.locations:
            known.append(loc)
        else:
            raise violation("location.not_found", id=loc, field="location_ids")
    query = body.get("query") or {}
    filt = query.get("filter") or {}
    sort = query.get("sort") or {}
    sort_field = _SORT_FIELDS[sort.get("sort_field") or "CREATED_AT"]
    descending = (sort.get("sort_order") or "DESC") == "DESC"
    start = end = None
    dates = filt.get("date_time_filter") or {}
    used = [name for name in ("created_at", "updated_at", "closed_at") if dates.get(name)]
    if len(used) > 1:
        raise violation("api.invalid_value", field="query.filter.date_time_filter",
                        reason="Only one date_time_filter field may be set.")
    if used:
        if used[0] != sort_field:
            raise violation("api.invalid_value", field="query.sort.sort_field",
                            reason=f"A date_time_filter on `{used[0]}` requires sorting by "
                                   f"`{used[0].upper()}`.")
        rng = dates[used[0]]
        start = query_time(rng.get("start_at"), f"query.filter.date_time_filter.{used[0]}.start_at")
        end = query_time(rng.get("end_at"), f"query.filter.date_time_filter.{used[0]}.end_at")
    states = (filt.get("state_filter") or {}).get("states")
    customers = (filt.get("customer_filter") or {}).get("customer_ids")
    fulfillment = filt.get("fulfillment_filter") or {}
    sources = (filt.get("source_filter") or {}).get("source_names")
    if sources is not None and len(sources) > 10:
        raise violation("api.too_many_ids", maximum=10, field="query.filter.source_filter.source_names")
    limit = query_limit(body.get("limit"), 500, 1000)
    shape = {"l": sorted(known), "q": query}
    after = decode_cursor(body.get("cursor"), shape)

    def run() -> Response:
        page, nxt = engine.search_orders(
            location_ids=known, states=states, customer_ids=customers, sort_field=sort_field,
            descending=descending, start=start, end=end, limit=limit, after=after,
            fulfillment_types=fulfillment.get("fulfillment_types"),
            fulfillment_states=fulfillment.get("fulfillment_states"), source_names=sources)
        out: dict = {}
        if body.get("return_entries"):
            out["order_entries"] = [{"order_id": o["id"], "version": o.get("version"),
                                     "location_id": o["location_id"]} for o in page]
        else:
            # The same bytes json_response would send for {"orders": [...], "cursor": ...}.
            parts = [b'{"orders":[', b",".join(_order_json(m, o) for o in page), b"]"]
            if nxt is not None:
                parts.append(b',"cursor":' + json.dumps(encode_cursor(nxt, shape)).encode())
            parts.append(b"}")
            return Response(b"".join(parts), media_type="application/json")
        if nxt is not None:
            out["cursor"] = encode_cursor(nxt, shape)
        return json_response(out)

    # A page of up to 1,000 orders, rendered cold, is bulk work: off the event loop, so other
    # merchants' requests go on meanwhile (this merchant's wait for their turn).
    return await run_in_threadpool(run)


@router.get("/v2/orders/{order_id}")
async def retrieve_order(order_id: str, request: Request):
    m = merchant_of(request)
    m.engine.fire_due()
    rec = m.engine.orders.get(order_id)
    if rec is None:
        return json_response({"order": m.engine.get_order(order_id)})  # NOT_FOUND
    return Response(b'{"order":' + _order_json(m, rec) + b"}", media_type="application/json")


@router.put("/v2/orders/{order_id}")
async def update_order(order_id: str, request: Request):
    m = merchant_of(request)
    body = await read_body(request, "UpdateOrderRequest", _SPARSE)
    engine = m.engine
    key = body.get("idempotency_key")
    endpoint = f"UpdateOrder:{order_id}"
    if m.idempotency.seen(endpoint, key):
        # Square: a reused key answers 200 with the latest order and applies nothing.
        return json_response({"order": engine.get_order(order_id)})
    order = body.get("order") or {}
    result = {"order": engine.update_order(order_id, order, body.get("fields_to_clear"))}
    m.idempotency.remember(endpoint, key, body, 200, result)
    return json_response(result)


@router.post("/v2/orders/{order_id}/pay")
async def pay_order(order_id: str, request: Request):
    m = merchant_of(request)
    body = await read_body(request, "PayOrderRequest")
    return execute(m, f"PayOrder:{order_id}", body, lambda: {"order": m.engine.pay_order(
        order_id, body.get("payment_ids"), body.get("order_version"))})

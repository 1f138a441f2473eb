"""Payments API."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..http import (decode_cursor, execute, json_response, list_shape, list_sort_field,
                    list_updated_window, list_window, merchant_of, page_response, query_time,
                    read_body, strip_nulls)
from ..validation import validate_query

router = APIRouter()


@router.post("/v2/payments")
async def create_payment(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "CreatePaymentRequest")
    req = strip_nulls(body)
    return execute(m, "CreatePayment", body, lambda: {"payment": m.engine.create_payment(req)})


@router.get("/v2/payments")
async def list_payments(request: Request):
    m = merchant_of(request)
    q = validate_query("ListPayments", request.query_params)
    engine = m.engine
    start, end, descending, limit = list_window(engine.now(), q)
    updated_start, updated_end = list_updated_window(q)
    filters = {k: q[k] for k in ("total", "last_4", "card_brand") if q.get(k) is not None}
    # Offline payments: none can be made here, but the filters still mean what they say.
    offline = q.get("is_offline_payment", False)
    offline_window = any(q.get(k) is not None for k in ("offline_begin_time", "offline_end_time"))
    for k in ("offline_begin_time", "offline_end_time"):
        query_time(q.get(k), k)

    def keep(p: dict) -> bool:
        is_offline = bool(p.get("offline_payment_details"))
        if is_offline != offline:
            return False
        if offline_window and not (p.get("offline_payment_details") or {}).get("client_created_at"):
            return False
        if "total" in filters and p["total_money"]["amount"] != filters["total"]:
            return False
        card = (p.get("card_details") or {}).get("card") or {}
        if "last_4" in filters and card.get("last_4") != filters["last_4"]:
            return False
        if "card_brand" in filters and card.get("card_brand") != filters["card_brand"]:
            return False
        return True

    shape = list_shape(q, "payments")
    page, nxt = engine.list_payments(start=start, end=end, location_id=q.get("location_id"),
                                     descending=descending, limit=limit,
                                     after=decode_cursor(q.get("cursor"), shape),
                                     keep=keep, sort_field=list_sort_field(q),
                                     updated_start=updated_start, updated_end=updated_end)
    return page_response("payments", page, nxt, shape)


@router.post("/v2/payments/cancel")
async def cancel_payment_by_idempotency_key(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "CancelPaymentByIdempotencyKeyRequest")
    m.engine.cancel_payment_by_idempotency_key(body["idempotency_key"])
    return json_response({})


@router.get("/v2/payments/{payment_id}")
async def get_payment(payment_id: str, request: Request):
    m = merchant_of(request)
    return json_response({"payment": m.engine.get_payment(payment_id)})


@router.put("/v2/payments/{payment_id}")
async def update_payment(payment_id: str, request: Request):
    m = merchant_of(request)
    body = await read_body(request, "UpdatePaymentRequest")
    patch = strip_nulls(body.get("payment") or {})
    return execute(m, f"UpdatePayment:{payment_id}", body,
                   lambda: {"payment": m.engine.update_payment(payment_id, patch)})


@router.post("/v2/payments/{payment_id}/complete")
async def complete_payment(payment_id: str, request: Request):
    m = merchant_of(request)
    body = await read_body(request, "CompletePaymentRequest")
    return json_response({"payment": m.engine.complete_payment(payment_id, body.get("version_token"))})


@router.post("/v2/payments/{payment_id}/cancel")
async def cancel_payment(payment_id: str, request: Request):
    m = merchant_of(request)
    await read_body(request)  # the SDK sends no body; anything sent must still be JSON
    return json_response({"payment": m.engine.cancel_payment(payment_id)})

"""Refunds API."""

from __future__ import annotations

from fastapi import APIRouter, Request

from orderfsm.errors import ErrorDetail, SquareError

from ..http import (decode_cursor, execute, json_response, list_shape, list_sort_field,
                    list_updated_window, list_window, merchant_of, page_response, read_body,
                    strip_nulls)
from ..validation import validate_query

router = APIRouter()
_KEY_MAX = 45  # RefundPayment keys, as for the other Payments API keys


@router.post("/v2/refunds")
async def refund_payment(request: Request):
    m = merchant_of(request)
    body = await read_body(request, "RefundPaymentRequest")
    key = body.get("idempotency_key")
    if isinstance(key, str) and len(key) > _KEY_MAX:
        raise SquareError(400, [ErrorDetail("INVALID_REQUEST_ERROR", "VALUE_TOO_LONG",
                                            f"Field must not be greater than {_KEY_MAX} length",
                                            "idempotency_key")])
    req = strip_nulls(body)
    return execute(m, "RefundPayment", body, lambda: {"refund": m.engine.refund_payment(req)})


@router.get("/v2/refunds")
async def list_refunds(request: Request):
    m = merchant_of(request)
    q = validate_query("ListPaymentRefunds", request.query_params)
    engine = m.engine
    start, end, descending, limit = list_window(engine.now(), q)
    updated_start, updated_end = list_updated_window(q)
    status = q.get("status")
    source_type = q.get("source_type")

    def keep(r: dict) -> bool:
        if status is not None and r["status"] != status:
            return False
        if source_type is not None:
            payment = engine.payments.get(r["payment_id"]) or {}
            if payment.get("source_type") != source_type:
                return False
        return True

    shape = list_shape(q, "refunds")
    page, nxt = engine.list_refunds(
        start=start, end=end, location_id=q.get("location_id"), descending=descending,
        limit=limit, after=decode_cursor(q.get("cursor"), shape),
        keep=keep if (status or source_type) else None, sort_field=list_sort_field(q),
        updated_start=updated_start, updated_end=updated_end)
    return page_response("refunds", page, nxt, shape)


@router.get("/v2/refunds/{refund_id}")
async def get_refund(refund_id: str, request: Request):
    m = merchant_of(request)
    return json_response({"refund": m.engine.get_refund(refund_id)})

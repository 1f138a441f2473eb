"""Refunds API."""

from __future__ import annotations

from fastapi import APIRouter, Request

from orderfsm.clock import rfc3339
from orderfsm.errors import ErrorDetail, SquareError

from ..http import (decode_cursor, encode_cursor, execute, json_response, merchant_of, query_limit,
                    query_sort_order, query_time, read_body, strip_nulls)
from ..validation import validate_query

router = APIRouter()
_KEY_MAX = 45  # RefundPayment keys, as for the other Payments API keys
_YEAR_SECONDS = 365 * 24 * 3600


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
    now = engine.now()
    start = query_time(q.get("begin_time"), "begin_time") or rfc3339(
        now.fromtimestamp(now.timestamp() - _YEAR_SECONDS, now.tzinfo))
    end = query_time(q.get("end_time"), "end_time")
    descending = query_sort_order(q.get("sort_order"))
    limit = query_limit(q.get("limit"), 100, 100)
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

    shape = {k: v for k, v in q.items() if k not in ("cursor", "limit")}
    shape["_list"] = "refunds"  # a payments cursor is not a refunds cursor
    after = decode_cursor(q.get("cursor"), shape)
    page, nxt = engine.list_refunds(
        start=start, end=end, location_id=q.get("location_id"), descending=descending,
        limit=limit, after=after, keep=keep if (status or source_type) else None)
    out: dict = {"refunds": page}
    if nxt is not None:
        out["cursor"] = encode_cursor(nxt, shape)
    return json_response(out)


@router.get("/v2/refunds/{refund_id}")
async def get_refund(refund_id: str, request: Request):
    m = merchant_of(request)
    return json_response({"refund": m.engine.get_refund(refund_id)})

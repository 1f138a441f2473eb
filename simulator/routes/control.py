"""The control API (not Square's): the merchant's virtual clock, reset, snapshots, variants and
refund outcomes. Everything here is scoped to the caller's token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from orderfsm.clock import rfc3339
from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.rules import Variants

from ..http import json_response, merchant_of, read_body
from ..snapshot import (STATE_FORMAT, STATE_VERSION, dump_state_chunks, parse_snapshot,
                        rows_from_snapshot)

router = APIRouter(prefix="/_sim")


def _bad(field: str, detail: str, code: str = "INVALID_VALUE") -> SquareError:
    return SquareError(400, [ErrorDetail("INVALID_REQUEST_ERROR", code, detail, field)])


def advance_merchant(merchant: Any, seconds: float) -> int:
    """Move one merchant's clock, firing engine timers and anything else that listens."""
    fired = merchant.engine.advance(seconds)
    for hook in merchant.extra.get("on_advance", ()):
        hook(merchant)
    merchant.flush()
    return fired


@router.get("/clock")
async def get_clock(request: Request):
    m = merchant_of(request)
    return json_response({"now": rfc3339(m.engine.now())})


@router.post("/clock/advance")
async def advance_clock(request: Request):
    m = merchant_of(request)
    body = await read_body(request)
    if not isinstance(body, dict) or "seconds" not in body or body["seconds"] is None:
        raise _bad("seconds", "Field must be set", "MISSING_REQUIRED_PARAMETER")
    seconds = body["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise _bad("seconds", "Expected a number.", "EXPECTED_INTEGER")
    if seconds < 0 or seconds > 10 * 365 * 24 * 3600:
        raise _bad("seconds", "seconds must be between 0 and ten years.")
    fired = advance_merchant(m, float(seconds))
    return json_response({"now": rfc3339(m.engine.now()), "fired": fired})


@router.post("/reset")
async def reset(request: Request):
    m = merchant_of(request)
    store = request.app.state.store
    # Deleting a large merchant's records is bulk work: off the event loop.
    fresh = await run_in_threadpool(store.reset, m.token)
    return json_response({"reset": True, "merchant_id": fresh.engine.merchant_id,
                          "now": rfc3339(fresh.engine.now())})


@router.get("/state")
async def get_state(request: Request):
    """Everything the merchant has, as one versioned JSON document (see snapshot.py)."""
    m = merchant_of(request)
    m.flush()
    # Built off the event loop in pieces of about a megabyte (one 34 MiB join or copy would
    # hold every other merchant's requests up for tens of milliseconds), then sent piece by
    # piece, with its length known in advance.
    chunks = await run_in_threadpool(dump_state_chunks, m)

    async def pieces() -> Any:
        for chunk in chunks:
            yield chunk

    return StreamingResponse(pieces(), media_type="application/json",
                             headers={"content-length": str(sum(map(len, chunks)))})


@router.post("/state")
async def put_state(request: Request):
    """Replace the merchant with a snapshot (any version this server reads)."""
    # The token, not the merchant: a worker thread may hold on to restore() a while after it
    # ran, and the merchant it replaces should be freed as soon as the restore is done.
    token = merchant_of(request).token
    store = request.app.state.store
    raw = [chunk async for chunk in request.stream()]  # joined off the event loop

    def restore() -> Any:
        body = parse_snapshot(raw)
        if not isinstance(body, dict) or body.get("format") != STATE_FORMAT:
            raise _bad("format", f"Expected a snapshot with format `{STATE_FORMAT}`.")
        if body.get("version") not in (1, STATE_VERSION):
            raise _bad("version", f"Unsupported snapshot version {body.get('version')!r}; "
                                  f"this server reads versions 1 to {STATE_VERSION}.")
        try:
            rows = rows_from_snapshot(body, record_events=store.config.webhooks)
            return store.restore(token, rows)
        except SquareError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise _bad("engine", f"The snapshot is not valid: {exc!r}.") from None

    fresh = await run_in_threadpool(restore)
    return json_response({"restored": True, "merchant_id": fresh.engine.merchant_id,
                          "now": rfc3339(fresh.engine.now())})


@router.get("/variants")
async def get_variants(request: Request):
    m = merchant_of(request)
    return json_response({"variants": dict(m.engine.variants)})


@router.post("/variants")
async def set_variants(request: Request):
    """Switch rule variants for this merchant only, e.g. {"cancel_after_payment": "never"}."""
    m = merchant_of(request)
    body = await read_body(request)
    if not isinstance(body, dict):
        raise _bad("", "Expected an object of variant names to values.", "EXPECTED_OBJECT")
    updated = Variants(dict(m.engine.variants))
    for key, value in body.items():
        try:
            updated.set(key, value)
        except ValueError as exc:
            raise _bad(key, str(exc)) from None
    m.engine.variants = updated
    return json_response({"variants": dict(updated)})


@router.post("/refunds/{refund_id}/{outcome}")
async def finish_refund(refund_id: str, outcome: str, request: Request):
    """Decide a PENDING refund now: settle (COMPLETED), reject (REJECTED) or fail (FAILED)."""
    m = merchant_of(request)
    actions = {"settle": m.engine.settle_refund, "reject": m.engine.reject_refund,
               "fail": m.engine.fail_refund}
    if outcome not in actions:
        raise _bad("outcome", "Outcome must be one of settle, reject, fail.")
    return json_response({"refund": actions[outcome](refund_id)})

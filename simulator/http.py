"""Small HTTP helpers shared by the routes: auth, bodies, responses, cursors, query values."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Mapping

from fastapi import Request
from starlette.responses import Response

from orderfsm.clock import parse_rfc3339, rfc3339
from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.rules import violation

from .idempotency import fingerprint
from .store import Merchant
from .validation import parse_json, validate_body

__all__ = [
    "json_response", "merchant_of", "read_body", "strip_nulls", "encode_cursor", "decode_cursor",
    "execute", "query_time", "query_limit", "query_sort_order", "MISSING_AUTH", "MALFORMED_AUTH",
]

MISSING_AUTH = (
    "Your request did not include an `Authorization` http header with an access token. The header "
    "value is expected to be of the format \"Bearer TOKEN\" (without quotation marks), where TOKEN "
    "is to be replaced with your access token (e.g. \"Bearer ABC123def456GHI789jkl0\"). For more "
    "information, see https://docs.connect.squareup.com/api/connect/v2/#requestandresponseheaders. "
    "If you are seeing this error message while using one of our officially supported client "
    "libraries, please report this to developers@squareup.com. "
)
MALFORMED_AUTH = (
    "The `Authorization` http header of your request was malformed. The header value is expected "
    "to be of the format \"Bearer TOKEN\" (without quotation marks), where TOKEN is to be replaced "
    "with your access token (e.g. \"Bearer ABC123def456GHI789jkl0\"). For more information, see "
    "https://docs.connect.squareup.com/api/connect/v2/#requestandresponseheaders. If you are "
    "seeing this error message while using one of our officially supported SDKs, please report "
    "this to developers@squareup.com."
)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status,
                    media_type="application/json")


def merchant_of(request: Request) -> Merchant:
    """The caller's merchant, from ``Authorization: Bearer <token>`` (401 otherwise)."""
    header = request.headers.get("authorization")
    if header is None:
        err = violation("api.unauthorized")
        err.errors[0] = ErrorDetail("AUTHENTICATION_ERROR", "UNAUTHORIZED", MISSING_AUTH)
        raise err
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        err = violation("api.unauthorized")
        err.errors[0] = ErrorDetail("AUTHENTICATION_ERROR", "UNAUTHORIZED", MALFORMED_AUTH)
        raise err
    return request.app.state.store.merchant(token)


async def read_body(request: Request, schema: str | None = None,
                    ignore_required: frozenset[str] = frozenset()) -> Any:
    raw = await request.body()
    request.scope["orderfsm.body"] = raw  # for the inspector's rejection log
    body = parse_json(raw)
    if schema is not None:
        validate_body(schema, body, ignore_required=ignore_required)
    return body


def strip_nulls(value: Any) -> Any:
    """Creates treat an explicit null like an absent field."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def execute(merchant: Merchant, endpoint: str, body: Mapping[str, Any],
            run: Callable[[], Any], *, key: str | None = None) -> Response:
    """Run one command under idempotency: replay a stored response, or run and remember it.

    A rejected command is not remembered (it changed nothing, so a retry may succeed), except
    when the engine recorded something while rejecting (a declined card payment)."""
    key = key if key is not None else body.get("idempotency_key")
    stored = merchant.idempotency.lookup(endpoint, key, body)
    if stored is not None:
        return Response(stored.text.encode(), status_code=stored.status,
                        media_type="application/json")
    try:
        result = run()
    except SquareError as err:
        if "payment" in err.extra:
            merchant.idempotency.remember(endpoint, key, body, err.status, err.body())
        raise
    text = merchant.idempotency.remember(endpoint, key, body, 200, result)
    return Response(text.encode(), media_type="application/json")


def encode_cursor(key: tuple[str, str], query: Any) -> str:
    raw = json.dumps([key[0], key[1], fingerprint(query)[:64]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, query: Any) -> tuple[str, str] | None:
    """The keyset position a cursor encodes; INVALID_CURSOR when it is not one of ours or
    belongs to a different query."""
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, ident, fp = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not (isinstance(when, str) and isinstance(ident, str)) or fp != fingerprint(query)[:64]:
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise violation("api.invalid_cursor", cursor=cursor) from None
    return when, ident


def query_time(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return rfc3339(parse_rfc3339(value))
    except ValueError:
        raise violation("api.invalid_value", field=field,
                        reason=f"`{value}` is not a valid RFC 3339 timestamp.") from None


def query_limit(value: int | None, default: int, maximum: int, field: str = "limit") -> int:
    if value is None:
        return default
    if value < 1 or value > maximum:
        raise violation("api.invalid_value", field=field,
                        reason=f"`{field}` must be between 1 and {maximum}.")
    return value


def query_sort_order(value: str | None, field: str = "sort_order") -> bool:
    """True for descending (DESC, the default)."""
    if value is None:
        return True
    if value not in ("ASC", "DESC"):
        raise SquareError(400, [ErrorDetail(
            "INVALID_REQUEST_ERROR", "INVALID_ENUM_VALUE",
            f"`{value}` is not a valid enum value for `{field}`.", field)])
    return value == "DESC"


_YEAR_SECONDS = 365 * 24 * 3600


def list_window(now: Any, q: Mapping[str, Any]) -> tuple[str, str | None, bool, int]:
    """The time window, direction and page size of a GET list endpoint (ListPayments,
    ListPaymentRefunds): ``begin_time`` defaults to one year before ``now``. A ``limit`` above
    100 is not an error: the spec says it is ignored (ListPayments) or capped (ListPaymentRefunds),
    either way a page holds at most 100."""
    start = query_time(q.get("begin_time"), "begin_time") or rfc3339(
        now.fromtimestamp(now.timestamp() - _YEAR_SECONDS, now.tzinfo))
    end = query_time(q.get("end_time"), "end_time")
    limit = q.get("limit")
    if limit is not None and limit > 100:
        limit = 100
    return start, end, query_sort_order(q.get("sort_order")), query_limit(limit, 100, 100)


def list_updated_window(q: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``updated_at_begin_time`` / ``updated_at_end_time`` of the GET list endpoints."""
    return (query_time(q.get("updated_at_begin_time"), "updated_at_begin_time"),
            query_time(q.get("updated_at_end_time"), "updated_at_end_time"))


_LIST_SORT_FIELDS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at",
                     "OFFLINE_CREATED_AT": "created_at"}


def list_sort_field(q: Mapping[str, Any]) -> str:
    """The record field a list is sorted by. No offline payments exist here, so
    OFFLINE_CREATED_AT orders by created_at (docs/fields.md lists it as a known difference)."""
    return _LIST_SORT_FIELDS[q.get("sort_field") or "CREATED_AT"]


def list_shape(q: Mapping[str, Any], name: str) -> dict[str, Any]:
    """What a list cursor is bound to: the query without its paging, and the list's name."""
    shape = {k: v for k, v in q.items() if k not in ("cursor", "limit")}
    shape["_list"] = name
    return shape


def page_response(name: str, page: list, nxt: tuple[str, str] | None, shape: Any) -> Response:
    out: dict[str, Any] = {name: page}
    if nxt is not None:
        out["cursor"] = encode_cursor(nxt, shape)
    return json_response(out)


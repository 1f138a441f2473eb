"""Webhook Subscriptions API (Square's paths) and the outbox control API (``/_sim/...``).

The work happens in :mod:`simulator.outbox`; this module parses requests and renders answers.
:func:`install` wires the outbox into an app: one :class:`~simulator.outbox.Dispatcher`, an
outbox per merchant, a hook on clock advances, and a small middleware that moves the engine's
recorded events into the outbox before each response starts (so an event exists, and its
delivery is under way, by the time the client sees the answer of the call that caused it).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.rules import violation

from ..http import (decode_cursor, encode_cursor, execute, json_response, merchant_of, query_limit,
                    query_sort_order, read_body, strip_nulls)
from ..outbox import (EVENT_TYPES, RETRY_WINDOW, STATUSES, Attempt, Dispatcher, Outbox,
                      Subscription,
                      _deliverer, host_problem, url_problem)
from ..validation import validate_query

__all__ = ["router", "install"]

log = logging.getLogger("orderfsm.simulator.webhooks")
router = APIRouter()
DEFAULT_API_VERSION = "2025-08-20"
_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UPDATABLE = ("name", "enabled", "event_types", "notification_url", "api_version")
_PROBABILITY_FAULTS = ("duplicate", "drop", "reorder")
_MAX_TIMEOUT = 60.0
_MAX_FLUSH = 600.0


# ================================================================ wiring
class _DrainEvents:
    """Pure ASGI middleware: when a response starts, move the caller's new engine events into
    the outbox (cheap: no I/O; the worker thread does the sending)."""

    def __init__(self, app: Any, dispatcher: Dispatcher) -> None:
        self.app = app
        self.dispatcher = dispatcher

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, rest = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and rest.strip():
                    token = rest.strip()
                break
        if token is None:
            await self.app(scope, receive, send)
            return
        outboxes = self.dispatcher.outboxes
        done = False

        async def send_wrapper(message: dict) -> None:
            nonlocal done
            if not done and message["type"] == "http.response.start":
                done = True
                ob = outboxes.get(token)
                if ob is not None:
                    try:
                        ob.drain()
                    except Exception:  # pragma: no cover - a bug; never fail the response
                        log.exception("could not record webhook events")
            await send(message)

        await self.app(scope, receive, send_wrapper)


def install(app: Any) -> None:
    """Give the app a delivery worker and every merchant (present and future) an outbox."""
    store = app.state.store
    dispatcher = Dispatcher(store if store.state.shared else None)
    app.state.webhooks = dispatcher
    if dispatcher.shared is not None:
        threading.Thread(target=_deliverer, args=(weakref.ref(dispatcher),),
                         name="orderfsm-deliverer", daemon=True).start()
    store.on_new_merchant.append(dispatcher.attach)
    for merchant in list(store.merchants.values()):
        dispatcher.attach(merchant)
    app.add_middleware(_DrainEvents, dispatcher=dispatcher)


def _outbox(request: Request) -> tuple[Any, Outbox]:
    m = merchant_of(request)
    ob = m.extra.get("webhooks")
    if ob is None:
        ob = request.app.state.webhooks.attach(m)
    return m, ob


def _subscription(ob: Outbox, subscription_id: str) -> Subscription:
    sub = ob.subscriptions.get(subscription_id)
    if sub is None:
        raise violation("webhook.subscription_not_found", id=subscription_id)
    return sub


def _bad(field: str | None, detail: str, code: str = "INVALID_VALUE") -> SquareError:
    return SquareError(400, [ErrorDetail("INVALID_REQUEST_ERROR", code, detail, field)])


# ================================================================ Square's API
def _checked(sub: dict[str, Any], *, creating: bool, allow: Any = ()) -> dict[str, Any]:
    """The subscription fields of a create/update body, checked; nulls mean "not given"."""
    out: dict[str, Any] = {}
    for name in ("notification_url", "event_types"):
        if creating and not sub.get(name):
            raise violation("webhook.subscription_field_required", name=name)
    if "event_types" in sub:
        types = sub["event_types"]
        if not types:
            raise violation("webhook.subscription_field_required", name="event_types")
        for i, etype in enumerate(types):
            if etype not in EVENT_TYPES:
                raise violation("webhook.event_type_unknown", event_type=etype, index=i)
        out["event_types"] = list(dict.fromkeys(types))
    if "notification_url" in sub:
        reason = url_problem(sub["notification_url"])
        if reason is None:
            reason = host_problem(sub["notification_url"], allow)
        if reason is not None:
            raise violation("webhook.notification_url_invalid", reason=reason)
        out["notification_url"] = sub["notification_url"]
    if "api_version" in sub:
        if not _VERSION_RE.fullmatch(sub["api_version"]):
            raise violation("api.invalid_value", field="subscription.api_version",
                            reason="api_version must be a Square API version such as "
                                   f"{DEFAULT_API_VERSION}.")
        out["api_version"] = sub["api_version"]
    for name in ("name", "enabled"):
        if name in sub:
            out[name] = sub[name]
    return out


def _api_version(request: Request) -> str:
    header = request.headers.get("square-version")
    return header if header and _VERSION_RE.fullmatch(header) else DEFAULT_API_VERSION


@router.get("/v2/webhooks/event-types")
async def list_webhook_event_types(request: Request):
    merchant_of(request)
    q = validate_query("ListWebhookEventTypes", request.query_params)
    version = q.get("api_version")
    if version is not None and not _VERSION_RE.fullmatch(version):
        raise violation("api.invalid_value", field="api_version",
                        reason=f"`{version}` is not a Square API version.")
    names = sorted(t for t, (since, _) in EVENT_TYPES.items()
                   if version is None or since <= version)
    return json_response({
        "event_types": names,
        "metadata": [{"event_type": t, "api_version_introduced": EVENT_TYPES[t][0],
                      "release_status": EVENT_TYPES[t][1]} for t in names],
    })


@router.get("/v2/webhooks/subscriptions")
async def list_webhook_subscriptions(request: Request):
    _, ob = _outbox(request)
    q = validate_query("ListWebhookSubscriptions", request.query_params)
    descending = query_sort_order(q.get("sort_order") or "ASC")
    limit = query_limit(q.get("limit"), 100, 100)
    include_disabled = q.get("include_disabled", False)
    shape = {"include_disabled": include_disabled, "sort_order": "DESC" if descending else "ASC"}
    after = decode_cursor(q.get("cursor"), shape)
    subs = [s for s in ob.subscriptions.values() if include_disabled or s.enabled]
    keyed = sorted(((s.created_at, f"{s.seq:012d}"), s) for s in subs)
    if descending:
        keyed.reverse()
    if after is not None:
        keyed = [(k, s) for k, s in keyed if (k < after if descending else k > after)]
    page = keyed[:limit]
    out: dict[str, Any] = {"subscriptions": [s.to_json(with_key=False) for _, s in page]}
    if len(keyed) > limit:
        out["cursor"] = encode_cursor(page[-1][0], shape)
    return json_response(out)


@router.post("/v2/webhooks/subscriptions")
async def create_webhook_subscription(request: Request):
    m, ob = _outbox(request)
    body = await read_body(request, "CreateWebhookSubscriptionRequest")
    version = _api_version(request)

    def run() -> dict[str, Any]:
        fields = _checked(strip_nulls(body["subscription"]), creating=True,
                          allow=request.app.state.config.webhook_allow)
        sub = ob.create_subscription(
            name=fields.get("name"), event_types=fields["event_types"],
            notification_url=fields["notification_url"],
            api_version=fields.get("api_version", version), enabled=fields.get("enabled", True))
        return {"subscription": sub.to_json()}

    return execute(m, "CreateWebhookSubscription", body, run)


@router.get("/v2/webhooks/subscriptions/{subscription_id}")
async def retrieve_webhook_subscription(subscription_id: str, request: Request):
    _, ob = _outbox(request)
    return json_response({"subscription": _subscription(ob, subscription_id).to_json()})


@router.put("/v2/webhooks/subscriptions/{subscription_id}")
async def update_webhook_subscription(subscription_id: str, request: Request):
    _, ob = _outbox(request)
    body = await read_body(request, "UpdateWebhookSubscriptionRequest")
    sub = _subscription(ob, subscription_id)
    given = strip_nulls(body.get("subscription") or {})
    fields = _checked({k: v for k, v in given.items() if k in _UPDATABLE}, creating=False,
                      allow=request.app.state.config.webhook_allow)
    ob.update_subscription(sub, fields)
    return json_response({"subscription": sub.to_json(with_key=False)})


@router.delete("/v2/webhooks/subscriptions/{subscription_id}")
async def delete_webhook_subscription(subscription_id: str, request: Request):
    _, ob = _outbox(request)
    ob.delete_subscription(_subscription(ob, subscription_id))
    return json_response({})  # 200 with a JSON body: the SDK treats 204 as an error


@router.post("/v2/webhooks/subscriptions/{subscription_id}/signature-key")
async def update_webhook_subscription_signature_key(subscription_id: str, request: Request):
    m, ob = _outbox(request)
    body = await read_body(request, "UpdateWebhookSubscriptionSignatureKeyRequest")
    sub = _subscription(ob, subscription_id)
    return execute(m, f"UpdateWebhookSubscriptionSignatureKey/{subscription_id}", body,
                   lambda: {"signature_key": ob.rotate_key(sub)})


@router.post("/v2/webhooks/subscriptions/{subscription_id}/test")
async def test_webhook_subscription(subscription_id: str, request: Request):
    store = request.app.state.store
    if store.state.shared:
        return await _test_shared(subscription_id, request)
    _, ob = _outbox(request)
    body = await read_body(request, "TestWebhookSubscriptionRequest")
    sub = _subscription(ob, subscription_id)
    event_type = body.get("event_type")
    if event_type is not None and event_type not in sub.event_types:
        raise violation("webhook.test_event_type", event_type=event_type, id=sub.id)
    event, delivery = ob.test_event(sub, event_type)
    attempt = await run_in_threadpool(ob.send_now, delivery)
    return _test_result(event, delivery, attempt)


async def _test_shared(subscription_id: str, request: Request):
    """TestWebhookSubscription on a shared store. The merchant's row is held only to record
    the test event and, afterwards, its attempt; never while the receiver answers, which may
    call back into this merchant through another process."""
    store = request.app.state.store
    body = await read_body(request, "TestWebhookSubscriptionRequest")
    token = merchant_of(request).token
    event_type = body.get("event_type")
    with store.locked(token) as m:
        ob = m.extra.get("webhooks") or request.app.state.webhooks.attach(m)
        sub = _subscription(ob, subscription_id)
        if event_type is not None and event_type not in sub.event_types:
            raise violation("webhook.test_event_type", event_type=event_type, id=sub.id)
        event, delivery = ob.test_event(sub, event_type)
        with ob.lock:
            job = ob._job(delivery, test=True)
    if job is None:
        attempt = Attempt(1, event.at, None, None, "subscription gone")
    else:
        attempt = await run_in_threadpool(ob.send_once, job)
    with store.locked(token) as m:
        current = m.extra.get("webhooks")
        found = current.by_id.get(event.event_id) if current is not None else None
        if found is not None and found.deliveries:
            current.record_test_attempt(found.deliveries[0], attempt, job)
    return _test_result(event, delivery, attempt)


def _test_result(event: Any, delivery: Any, attempt: Any):
    result: dict[str, Any] = {"id": event.event_id}
    if attempt.status_code is not None:
        result["status_code"] = attempt.status_code
    stamp = event.payload()["created_at"]
    result.update(payload=event.body.decode("utf-8"), created_at=stamp, updated_at=stamp,
                  notification_url=delivery.url)
    return json_response({"subscription_test_result": result})


# ================================================================ control API (not Square's)
@router.get("/_sim/events")
async def list_events(request: Request):
    """Every recorded event, oldest first, with its deliveries (attempts, next attempt, final
    status). Filters: type, object_id, status (pending, delivered, failed, dropped),
    subscription_id."""
    _, ob = _outbox(request)
    q = request.query_params
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise _bad("status", f"status must be one of {', '.join(STATUSES)}.")
    events = ob.list_events(type=q.get("type"), object_id=q.get("object_id"), status=status,
                            subscription_id=q.get("subscription_id"))
    return json_response({"events": events})


@router.get("/_sim/events/{event_id}")
async def get_event(event_id: str, request: Request):
    """One recorded event with its deliveries."""
    _, ob = _outbox(request)
    event = ob.get_event(event_id)
    if event is None:
        raise SquareError(404, [ErrorDetail("INVALID_REQUEST_ERROR", "NOT_FOUND",
                                            f"Event `{event_id}` not found.")])
    return json_response({"event": ob.event_json(event)})


@router.post("/_sim/events/{event_id}/redeliver")
async def redeliver_event(event_id: str, request: Request):
    """Send an event again, now, to its subscribers (or to `{"subscription_id": ...}`)."""
    _, ob = _outbox(request)
    body = await read_body(request)
    if not isinstance(body, dict):
        raise _bad(None, "Expected a JSON object.", "EXPECTED_OBJECT")
    sub_id = body.get("subscription_id")
    if sub_id is not None:
        if not isinstance(sub_id, str):
            raise _bad("subscription_id", "Expected a string value.", "EXPECTED_STRING")
        _subscription(ob, sub_id)
    event = ob.get_event(event_id)
    if event is None:
        raise SquareError(404, [ErrorDetail("INVALID_REQUEST_ERROR", "NOT_FOUND",
                                            f"Event `{event_id}` not found.")])
    count = ob.redeliver(event, sub_id)
    return json_response({"redelivered": count, "event": ob.event_json(event)})


@router.post("/_sim/webhooks/flush")
async def flush(request: Request):
    """Wait (up to `timeout_seconds` real seconds, default 30) until every delivery due on
    this merchant's clock has been attempted. `idle` says whether that happened."""
    _, ob = _outbox(request)
    body = await read_body(request)
    if not isinstance(body, dict):
        raise _bad(None, "Expected a JSON object.", "EXPECTED_OBJECT")
    timeout = body.get("timeout_seconds", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 <= timeout <= _MAX_FLUSH:
        raise _bad("timeout_seconds", f"timeout_seconds must be a number from 0 to {_MAX_FLUSH:g}.")
    if ob.dispatcher.shared is not None:
        idle, summary = await run_in_threadpool(_wait_shared, ob.dispatcher.shared,
                                                ob.merchant.token, float(timeout))
        return json_response({"idle": idle, **summary})
    ob.drain()
    idle = await run_in_threadpool(ob.dispatcher.wait_idle, ob, float(timeout))
    return json_response({"idle": idle, **ob.summary()})


def _wait_shared(store: Any, token: str, timeout: float) -> tuple[bool, dict[str, Any]]:
    """Shared stores: another process may be the one delivering, so look at the merchant as
    the database has it, until nothing due is left unattempted."""
    deadline = time.monotonic() + timeout
    while True:
        with store.locked(token) as m:
            ob = m.extra.get("webhooks")
            with ob.lock:
                busy = ob.busy(ob.now()) or token in ob.dispatcher.sending_tokens
                summary = ob.summary()
        if not busy:
            return True, summary
        if time.monotonic() >= deadline:
            return False, summary
        time.sleep(0.02)


@router.get("/_sim/webhooks")
async def webhooks_summary(request: Request):
    """Counts of deliveries by status, how many are held by the reorder fault, and the
    merchant's clock."""
    _, ob = _outbox(request)
    ob.drain()
    return json_response(ob.summary())


@router.get("/_sim/webhooks/subscriptions/{subscription_id}/faults")
async def get_faults(subscription_id: str, request: Request):
    """A subscription's fault settings."""
    _, ob = _outbox(request)
    return json_response({"faults": _subscription(ob, subscription_id).faults.to_json()})


@router.post("/_sim/webhooks/subscriptions/{subscription_id}/faults")
async def set_faults(subscription_id: str, request: Request):
    """Merge fault settings: duplicate / drop / reorder take true, false or a probability
    0..1; delay_seconds holds each first attempt that many virtual seconds; null resets a
    fault; seed re-seeds the subscription's random draws."""
    _, ob = _outbox(request)
    body = await read_body(request)
    if not isinstance(body, dict):
        raise _bad(None, "Expected an object of fault names to values.", "EXPECTED_OBJECT")
    sub = _subscription(ob, subscription_id)
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if key == "seed":
            continue
        if key in _PROBABILITY_FAULTS:
            if value is None or isinstance(value, bool):
                changes[key] = value
            elif isinstance(value, (int, float)) and 0 <= value <= 1:
                changes[key] = value
            else:
                raise _bad(key, f"{key} must be true, false, null or a probability from 0 to 1.")
        elif key == "delay_seconds":
            limit = RETRY_WINDOW.total_seconds()
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value <= limit):
                raise _bad(key, f"delay_seconds must be a number from 0 to {limit:g}.")
            changes[key] = value
        else:
            raise _bad(key, f"Unknown fault `{key}`; known: duplicate, drop, delay_seconds, "
                            "reorder, seed.")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, str))):
        raise _bad("seed", "seed must be an integer or a string.")
    faults = ob.set_faults(sub, changes, seed)
    return json_response({"faults": faults.to_json()})


@router.get("/_sim/webhooks/settings")
async def get_settings(request: Request):
    """The merchant's delivery settings (`timeout_seconds`)."""
    _, ob = _outbox(request)
    return json_response({"timeout_seconds": ob.timeout})


@router.post("/_sim/webhooks/settings")
async def set_settings(request: Request):
    """`{"timeout_seconds": N}`: how long (real seconds) a receiver may take; Square's is 10."""
    _, ob = _outbox(request)
    body = await read_body(request)
    if not isinstance(body, dict):
        raise _bad(None, "Expected a JSON object.", "EXPECTED_OBJECT")
    for key in body:
        if key != "timeout_seconds":
            raise _bad(key, f"Unknown setting `{key}`; known: timeout_seconds.")
    if "timeout_seconds" in body:
        value = body["timeout_seconds"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value <= _MAX_TIMEOUT:
            raise _bad("timeout_seconds",
                       f"timeout_seconds must be a number above 0 and at most {_MAX_TIMEOUT:g}.")
        ob.timeout = float(value)
    return json_response({"timeout_seconds": ob.timeout})

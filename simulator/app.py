"""The FastAPI application: Square's HTTP API in front of the orderfsm engine."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from typing import Any, Iterable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from orderfsm.errors import ErrorDetail, SquareError

from .http import json_response
from .routes.inspector import record_rejection
from .store import SimulatorConfig, Store

__all__ = ["create_app"]

log = logging.getLogger("orderfsm.simulator")
SQUARE_VERSION = "2025-08-20"


INTERNAL_ERROR_DETAIL = ("An internal error has occurred, and the API was unable to service "
                         "your request.")
TOO_LARGE_DETAIL = "The request body is larger than {limit} bytes."


def merchant_tag(token: str | None) -> str:
    """A short, stable, non-reversible name for a merchant's token, for logs."""
    if not token:
        return "-"
    return hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=4).hexdigest()


class _BodyTooLarge(Exception):
    pass


def _error_bytes(code: str, detail: str, category: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "detail": detail, "category": category}]},
                      separators=(",", ":")).encode()


class _RequestLog:
    """Pure ASGI middleware, outermost: the request log, the ``square-version`` header, the
    request size cap and the last line of defence against bugs.

    * One log record per request: method, path, status, duration, the merchant as a hashed
      token and, on a rejection, the rule id (INFO; ERROR with one traceback on a 500).
    * Every response carries ``square-version`` (the request's, or the simulator's).
    * A body over ``max_body`` bytes is refused with 413 REQUEST_ENTITY_TOO_LARGE, from its
      Content-Length before reading or while it streams in.
    * An unexpected exception answers Square's INTERNAL_SERVER_ERROR body (500) and is not
      re-raised, so the server logs it once."""

    def __init__(self, app: Any, config: SimulatorConfig) -> None:
        self.app = app
        self.config = config  # read per request: log_requests and max_body_bytes may change

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        version = SQUARE_VERSION
        token = None
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"square-version":
                version = value.decode("latin-1")
            elif name == b"authorization":
                scheme, _, rest = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    token = rest.strip() or None
            elif name == b"content-length":
                length = value
        encoded_version = version.encode("latin-1")
        state = {"status": 0}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"square-version", encoded_version))
                message = {**message, "headers": headers}
            await send(message)

        limit = self.config.max_body_bytes
        if scope.get("path") == "/_sim/state":  # a snapshot of a large merchant is large
            limit = self.config.max_state_bytes
        received = 0

        async def receive_capped() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        failure: BaseException | None = None
        try:
            if limit is not None and length is not None and length.isdigit() \
                    and int(length[:20]) > limit:
                raise _BodyTooLarge
            await self.app(scope, receive_capped if limit is not None else receive, send_wrapper)
        except _BodyTooLarge:
            scope["orderfsm.rule"] = "REQUEST_ENTITY_TOO_LARGE"
            if state["status"] == 0:
                await self._answer(send_wrapper, 413, _error_bytes(
                    "REQUEST_ENTITY_TOO_LARGE", TOO_LARGE_DETAIL.format(limit=limit),
                    "INVALID_REQUEST_ERROR"))
        except Exception as exc:  # a bug: answer like Square, log once, keep serving
            failure = exc
            scope["orderfsm.rule"] = "INTERNAL_SERVER_ERROR"
            if state["status"] == 0:
                await self._answer(send_wrapper, 500, _error_bytes(
                    "INTERNAL_SERVER_ERROR", INTERNAL_ERROR_DETAIL, "API_ERROR"))
        finally:
            status = state["status"] or 500
            # orderfsm.quiet: a route (the inspector's polling) asks for no line unless it fails.
            quiet = scope.get("orderfsm.quiet") and status < 400
            if (self.config.log_requests and not quiet) or failure is not None:
                self._log(scope, status, started, token, failure)

    @staticmethod
    async def _answer(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: dict, status: int, started: float, token: str | None,
             failure: BaseException | None) -> None:
        ms = (time.perf_counter() - started) * 1000
        rule = scope.get("orderfsm.rule")
        fields = {"method": scope["method"], "path": scope["path"], "status": status,
                  "duration_ms": round(ms, 1), "merchant": merchant_tag(token)}
        if rule:
            fields["rule"] = rule
        # "METHOD PATH STATUS [rule=ID] 1.2ms merchant=TAG": the rule sits next to the status.
        text = (f"{fields['method']} {fields['path']} {status}"
                + (f" rule={rule}" if rule else "")
                + f" {ms:.1f}ms merchant={fields['merchant']}")
        if failure is not None:
            log.error("%s", text, exc_info=(type(failure), failure, failure.__traceback__),
                      extra={"http": fields})
        else:
            log.info("%s", text, extra={"http": fields})


# Requests that wait on something other than the merchant (webhook receivers, which may call
# back into this merchant): they run without holding the merchant's turn.
_UNGATED = re.compile(r"^(/_sim/webhooks/flush|/v2/webhooks/subscriptions/[^/]+/test)$")


def _bearer(scope: dict) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            token = rest.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class _MerchantTurns:
    """Pure ASGI middleware: one merchant's requests take turns, and their changes are
    committed before the response starts.

    The whole body is read before the request waits for its merchant's turn, and the merchant
    is looked up only when the turn comes, so a write racing a ``/_sim/reset`` or a restore
    lands entirely before it or entirely in the new merchant. Different merchants never wait
    for each other: their turns are separate locks, and bulk work (restores, dumps, large
    searches) runs off the event loop."""

    def __init__(self, app: Any, store: Store) -> None:
        self.app = app
        self.store = store
        self.locks: dict[str, asyncio.Lock] = {}
        self._pool: Any = None

    @property
    def pool(self) -> Any:
        """Threads for a shared store's round trips (made on first use)."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(8, thread_name_prefix="orderfsm-db")
        return self._pool

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        # Handed on as they came, not joined here: joining a 34 MiB snapshot is tens of
        # milliseconds of the event loop (the route that reads it joins it off the loop).
        pending = chunks[::-1]

        async def replay() -> dict:
            if pending:
                body = pending.pop()
                return {"type": "http.request", "body": body, "more_body": bool(pending)}
            return await receive()

        store = self.store

        async def send_committed(message: dict) -> None:
            if message["type"] == "http.response.start":
                m = store.merchants.get(token)
                if m is not None:
                    m.flush()
            await send(message)

        shared = store.state.shared
        path = scope.get("path", "")
        if _UNGATED.match(path):
            await self.app(scope, replay, send_committed)
            return
        lock = self.locks.get(token)
        if lock is None:
            lock = self.locks[token] = asyncio.Lock()
        async with lock:
            if shared:
                await self._in_session(token, scope, replay, send)
            else:
                await self.app(scope, replay, send_committed)

    async def _in_session(self, token: str, scope: dict, receive: Any, send: Any) -> None:
        """A shared store: the request runs in a transaction holding the merchant's row, with
        this process's copy brought up to date first; the response starts after COMMIT."""
        store = self.store
        state = store.state
        loop = asyncio.get_running_loop()
        # The round trips to the database run on threads: while one request waits for its
        # lock or its COMMIT, the event loop serves other merchants' requests.
        session = state.lock(token, wait=False)
        if session is None:  # another process has the merchant: wait off the event loop
            session = await loop.run_in_executor(self.pool, state.lock, token)
        bound = state.bind(session)
        committed = False
        try:
            if not store.is_current(session):
                # A reload reads the whole merchant: off the event loop as well.
                await loop.run_in_executor(self.pool, store.enter, session)

            async def send_committed(message: dict) -> None:
                nonlocal committed
                if message["type"] == "http.response.start" and not committed:
                    m = store.merchants.get(token)
                    if m is not None:
                        m.flush()
                    store.finish(session)
                    committed = True
                await send(message)

            await self.app(scope, receive, send_committed)
        finally:
            if not committed:
                store.abandon(session)
            state.unbind(bound)


def _square_error(request: Request, err: SquareError) -> Any:
    request.scope["orderfsm.rule"] = err.rule_id or err.code
    record_rejection(request, err)
    return json_response(err.body(), err.status)


def create_app(
    config: SimulatorConfig | None = None,
    *,
    variants: Mapping[str, str] | Iterable[str] | None = None,
    seed: int | None = None,
    refund_settle_seconds: float | None = None,
    db: Any = None,
    durability: str | None = None,
) -> FastAPI:
    """Build a simulator app. Keyword arguments override the matching ``config`` fields;
    ``variants`` accepts a mapping or ``NAME=VALUE`` strings. ``db`` is where state lives:
    memory by default, or a SQLite path, ``sqlite:///PATH`` URL or store object; merchants it
    holds are restored now (``app.state.store.restored`` says how many)."""
    config = config or SimulatorConfig()
    if variants is not None:
        from orderfsm.rules import Variants

        config.variants = dict(Variants(variants))
    if seed is not None:
        config.seed = seed
    if refund_settle_seconds is not None:
        config.refund_settle_seconds = refund_settle_seconds
    if db is not None:
        config.db = db
    if durability is not None:
        config.durability = durability
    from orderfsm.store import open_store

    store = Store(config, open_store(config.db, durability=config.durability))
    app = FastAPI(title="orderfsm Square simulator", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.store = store
    app.state.config = config

    from .routes import catalog, control, inspector, locations, orders, payments, refunds

    for module in (locations, orders, payments, refunds, control, catalog, inspector):
        app.include_router(module.router)
    try:
        from .routes import webhooks  # noqa: F401  (present once webhooks exist)
    except ImportError:
        pass
    else:
        app.include_router(webhooks.router)
        webhooks.install(app)

    @app.exception_handler(SquareError)
    async def on_square_error(request: Request, err: SquareError) -> Any:
        return _square_error(request, err)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, err: RequestValidationError) -> Any:
        first = err.errors()[0] if err.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return _square_error(request, SquareError(400, [ErrorDetail(
            "INVALID_REQUEST_ERROR", "INVALID_VALUE", first.get("msg", "Invalid value."),
            ".".join(loc) or None)]))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code in (404, 405):
            detail = (f"API endpoint for URL path `{request.url.path}` and HTTP method "
                      f"`{request.method}` is not found.")
            return _square_error(request, SquareError(404, [ErrorDetail(
                "INVALID_REQUEST_ERROR", "NOT_FOUND", detail)]))
        return _square_error(request, SquareError(exc.status_code, [ErrorDetail(
            "INVALID_REQUEST_ERROR", "BAD_REQUEST", str(exc.detail))]))

    store.load()
    app.add_middleware(_MerchantTurns, store=store)
    # Unexpected exceptions are answered by _RequestLog (outermost), which also logs them.
    app.add_middleware(_RequestLog, config=config)
    from . import pauses

    if pauses.enabled():  # benchmarks only: GC, event-loop and request pauses (pauses.py)
        app.state.pauses = pauses.PauseMonitor(store=store.state).install()
        app.add_middleware(pauses.PauseMiddleware, monitor=app.state.pauses)
    return app

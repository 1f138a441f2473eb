"""The FastAPI application: Square's HTTP API in front of the orderfsm engine."""

from __future__ import annotations

import logging
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


class _RequestLog:
    """Pure ASGI middleware: one log line per request (method, path, status, rule id) and the
    ``square-version`` response header echoing the request's."""

    def __init__(self, app: Any, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        version = SQUARE_VERSION
        for name, value in scope.get("headers", ()):
            if name == b"square-version":
                version = value.decode("latin-1")
                break
        status_box = [0]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"square-version", version.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if self.enabled and not (scope.get("orderfsm.quiet") and status_box[0] < 400):
                rule = scope.get("orderfsm.rule")
                log.info("%s %s %s%s", scope["method"], scope["path"], status_box[0],
                         f" rule={rule}" if rule else "")


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
) -> FastAPI:
    """Build a simulator app. Keyword arguments override the matching ``config`` fields;
    ``variants`` accepts a mapping or ``NAME=VALUE`` strings."""
    config = config or SimulatorConfig()
    if variants is not None:
        from orderfsm.rules import Variants

        config.variants = dict(Variants(variants))
    if seed is not None:
        config.seed = seed
    if refund_settle_seconds is not None:
        config.refund_settle_seconds = refund_settle_seconds
    store = Store(config)
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

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> Any:  # pragma: no cover - a bug
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _square_error(request, SquareError(500, [ErrorDetail(
            "API_ERROR", "INTERNAL_SERVER_ERROR",
            "An internal error has occurred, and the API was unable to service your request.")]))

    app.add_middleware(_RequestLog, enabled=config.log_requests)
    return app

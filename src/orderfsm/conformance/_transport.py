"""A synchronous in-process transport for ASGI apps (the simulator) without threads.

starlette's TestClient runs the app in a worker thread and hands every request across; this
transport runs each request to completion on one private event loop in the calling thread,
which makes a request about five times cheaper. Use it with the sync SDK:
``Square(token=..., base_url="http://testserver", httpx_client=asgi_client(app))``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

__all__ = ["ASGITransportSync", "asgi_client"]


class ASGITransportSync(httpx.BaseTransport):
    """httpx's ASGITransport, driven synchronously on a private event loop."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._loop = asyncio.new_event_loop()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers,
                                  content=body, extensions=request.extensions)

        async def send() -> httpx.Response:
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=content, extensions=response.extensions)

        return self._loop.run_until_complete(send())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.close()


def asgi_client(app: Any, base_url: str = "http://testserver") -> httpx.Client:
    """An ``httpx.Client`` that sends every request to ``app`` in-process."""
    return httpx.Client(transport=ASGITransportSync(app), base_url=base_url)

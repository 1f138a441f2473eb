"""Run the simulator from Python.

* ``create_app`` builds the FastAPI app, for in-process use.
* ``running`` starts a real uvicorn server on loopback (for code under test that needs a base
  URL, not a client).
* ``merchant`` and ``client`` give a fresh merchant and an official ``square.Square`` client for
  it, in-process and cheap enough to make one per hypothesis example (the pytest fixtures are
  per test, which does not suit ``@given``). Apps are built once per configuration and shared;
  every merchant gets its own token, hence its own data, clock and idempotency keys.
"""

from __future__ import annotations

import asyncio
import sys
import contextlib
import itertools
import socket
import threading
import time
import warnings
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import httpx

if TYPE_CHECKING:  # pragma: no cover
    from square import Square

__all__ = ["create_app", "running", "serve_forever", "merchant", "client", "SimulatorMerchant",
           "MerchantClock", "InThreadTransport", "cache_sdk_type_hints", "TRANSPORTS"]

BASE_URL = "http://testserver"
# How an in-process client reaches the app: "inthread" drives the ASGI app on a private event
# loop in the calling thread; "testclient" is starlette's TestClient, which hands every request
# to a portal thread (slower, but usable from a thread that already runs an event loop).
TRANSPORTS = ("inthread", "testclient")


def create_app(*args: Any, **kwargs: Any) -> Any:
    from simulator import create_app as _create

    return _create(*args, **kwargs)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    app: Any = None,
    variants: Mapping[str, str] | None = None,
    seed: int | None = None,
    log_level: str = "warning",
    db: Any = None,
) -> Iterator[str]:
    """Start a real uvicorn server in a background thread and yield its base URL.

    ``port=0`` picks a free port. The server stops when the block exits. State is in memory
    unless ``db`` names a store (a SQLite path, ``sqlite:///PATH``, or a store object)."""
    import uvicorn

    if app is None:
        app = create_app(variants=variants, seed=seed, db=db)
    if port == 0:
        port = _free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"orderfsm-sim-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the simulator did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


#: The GIL switch interval of a serving process (seconds; see serve_forever).
SWITCH_INTERVAL = 0.0005


def prepare_serving_process() -> None:
    """What every process that serves requests does once its app is built (``serve`` and each
    ``serve --workers`` worker alike)."""
    from simulator.gc_policy import settle

    settle()  # garbage collection without long pauses (see simulator/gc_policy.py)
    # A thread doing bulk work (a restore, a dump) gives the GIL up after this long when the
    # event loop asks for it, and the loop asks once per socket read or write it made without
    # the GIL: at CPython's default 5 ms, one GET waited 20 to 60 ms behind a restore.
    sys.setswitchinterval(SWITCH_INTERVAL)


def serve_forever(host: str, port: int, app: Any, log_level: str = "info") -> None:
    import uvicorn

    prepare_serving_process()
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


# ====================================================================== fresh merchants
class InThreadTransport(httpx.BaseTransport):
    """A synchronous httpx transport that runs an ASGI app on a private event loop in the
    calling thread (httpx's own ``ASGITransport`` is async-only). It cannot be used from a
    thread whose event loop is running: use the ``testclient`` transport there."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        forwarded = httpx.Request(request.method, request.url, headers=request.headers,
                                  content=request.read())

        async def send() -> "httpx.Response":
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=content, request=request)

        return self._loop.run_until_complete(send())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.close()


_APPS: dict[tuple, tuple[Any, "httpx.Client"]] = {}
_APPS_LOCK = threading.Lock()
_TOKENS = itertools.count(1)


def _shared_app(variants: Mapping[str, str] | Iterable[str] | None, seed: int | None,
                webhooks: bool, refund_settle_seconds: float | None,
                transport: str) -> tuple[Any, "httpx.Client"]:
    from orderfsm.rules import Variants

    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; known: {', '.join(TRANSPORTS)}")
    resolved = Variants(variants)
    key = (tuple(sorted(resolved.items())), seed, webhooks, refund_settle_seconds, transport,
           threading.get_ident() if transport == "inthread" else None)
    with _APPS_LOCK:
        found = _APPS.get(key)
        if found is not None:
            return found
        from simulator import create_app as _create
        from simulator.store import SimulatorConfig

        app = _create(SimulatorConfig(log_requests=False, webhooks=webhooks),
                      variants=dict(resolved), seed=seed,
                      refund_settle_seconds=refund_settle_seconds)
        if transport == "inthread":
            http = httpx.Client(transport=InThreadTransport(app), base_url=BASE_URL)
        else:
            from .pytest_plugin import _test_client

            http = _test_client(app)
        _APPS[key] = (app, http)
        return app, http


class MerchantClock:
    """The merchant's virtual clock, moved through the control API (``/_sim/clock``)."""

    def __init__(self, merchant: "SimulatorMerchant") -> None:
        self._merchant = merchant

    def now(self) -> datetime:
        from .clock import parse_rfc3339

        return parse_rfc3339(self._merchant._control("GET", "/_sim/clock")["now"])

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move the clock forward, firing what falls due on the way; returns the new time."""
        from .clock import parse_rfc3339

        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        body = self._merchant._control("POST", "/_sim/clock/advance", {"seconds": seconds})
        return parse_rfc3339(body["now"])


class SimulatorMerchant:
    """A fresh merchant on an in-process simulator, with an official SDK client.

    ``client`` is a ``square.Square`` for this merchant with automatic retries off;
    ``new_client()`` makes another one (a fresh client after a crash, or one wrapping its own
    httpx client). ``http`` is an httpx client that reaches the app with this merchant's token
    (for the control API). ``clock`` moves the virtual clock; ``state()`` and ``restore()``
    read and load ``/_sim/state`` snapshots; ``copy()`` is another fresh merchant holding a copy
    of this one's data, to try calls on without touching this one. ``close()`` (or leaving a
    ``with`` block) forgets the merchant, so long hypothesis runs do not pile up memory.
    """

    def __init__(self, app: Any, http: "httpx.Client", token: str, config: dict[str, Any]) -> None:
        self.app = app
        self.token = token
        self._http = http
        self._config = config
        self.http = _TokenHttp(http, token)
        self.client = self.new_client()
        self.clock = MerchantClock(self)

    @property
    def base_url(self) -> str:
        return BASE_URL

    @property
    def engine(self) -> Any:
        """The merchant's :class:`orderfsm.engine.Engine` (read it; change it through the API)."""
        return self.app.state.store.merchant(self.token).engine

    def new_client(self, httpx_client: Any = None, **kwargs: Any) -> "Square":
        """Another SDK client for this merchant, retries off. ``httpx_client`` replaces the
        in-process one (for example a wrapper that drops a response); keyword arguments go to
        ``square.Square``."""
        from square import Square

        from .pytest_plugin import disable_retries

        kwargs.setdefault("token", self.token)
        return disable_retries(Square(base_url=BASE_URL, httpx_client=httpx_client or self._http,
                                      **kwargs))

    @property
    def raw_http(self) -> "httpx.Client":
        """The shared in-process httpx client (no token set); wrap it to inject faults."""
        return self._http

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code != 200:
            raise AssertionError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    def state(self) -> dict[str, Any]:
        """The merchant's data as a ``/_sim/state`` snapshot."""
        return self._control("GET", "/_sim/state")

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace the merchant's data with a snapshot from :meth:`state`."""
        self._control("POST", "/_sim/state", dict(state))

    def copy(self, state: Mapping[str, Any] | None = None) -> "SimulatorMerchant":
        """A new merchant on the same app holding a copy of this one's data, or of ``state``
        (a snapshot taken earlier with :meth:`state`)."""
        twin = _new_merchant(self.app, self._http, self._config)
        twin.restore(state if state is not None else self.state())
        return twin

    def close(self) -> None:
        self.app.state.store.merchants.pop(self.token, None)

    def __enter__(self) -> "SimulatorMerchant":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _TokenHttp:
    """The shared httpx client with this merchant's token on every request."""

    def __init__(self, http: "httpx.Client", token: str) -> None:
        self._http = http
        self._auth = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, url: str, **kwargs: Any) -> "httpx.Response":
        kwargs["headers"] = {**self._auth, **(kwargs.get("headers") or {})}
        return self._http.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> "httpx.Response":
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> "httpx.Response":
        return self.request("POST", url, **kwargs)


def _new_merchant(app: Any, http: "httpx.Client", config: dict[str, Any]) -> SimulatorMerchant:
    return SimulatorMerchant(app, http, f"orderfsm-merchant-{next(_TOKENS)}", config)


def merchant(
    *,
    variants: Mapping[str, str] | Iterable[str] | None = None,
    seed: int | None = None,
    webhooks: bool = False,
    refund_settle_seconds: float | None = None,
    transport: str = "inthread",
    cache_type_hints: bool = False,
) -> SimulatorMerchant:
    """A fresh merchant on an in-process simulator, and an SDK client for it.

    ``variants`` and ``seed`` configure the simulator as ``orderfsm serve --variant`` and
    ``--seed`` do; ``webhooks=True`` records webhook events (``GET /_sim/events``), at some
    cost per call. ``transport`` is ``inthread`` (the default, fastest) or ``testclient``.
    ``cache_type_hints=True`` calls :func:`cache_sdk_type_hints` first. Cheap after the first
    call with a given configuration: one app per configuration is shared, each merchant has
    its own token. Use it as a context manager (or call ``close()``) to forget the merchant.
    """
    if cache_type_hints:
        cache_sdk_type_hints()
    config = {"variants": variants, "seed": seed, "webhooks": webhooks,
              "refund_settle_seconds": refund_settle_seconds, "transport": transport}
    app, http = _shared_app(variants, seed, webhooks, refund_settle_seconds, transport)
    return _new_merchant(app, http, config)


def client(**kwargs: Any) -> "Square":
    """An official ``square.Square`` client for a fresh in-process merchant (retries off).

    Takes the keyword arguments of :func:`merchant`. The merchant lives as long as the app;
    prefer ``with merchant(...) as m:`` in long hypothesis runs."""
    return merchant(**kwargs).client


_HINTS_CACHED = False


def cache_sdk_type_hints() -> bool:
    """Memoize the type-hint lookups the ``squareup`` SDK repeats for every nested model of
    every response it parses (the answer for a class never changes). Process-wide; the SDK's
    classes and results are unchanged, only faster. Returns False when this SDK version does
    not parse responses that way (nothing is changed then)."""
    global _HINTS_CACHED
    if _HINTS_CACHED:
        return True
    try:
        import types

        import typing_extensions

        import square.core.serialization as serialization
    except ImportError:  # pragma: no cover - another SDK layout
        return False
    if getattr(serialization, "typing_extensions", None) is not typing_extensions:
        return False  # pragma: no cover - another SDK layout
    original = typing_extensions.get_type_hints
    memo: dict[Any, Any] = {}

    def get_type_hints(obj: Any, globalns: Any = None, localns: Any = None,
                       include_extras: bool = False) -> Any:
        key = (obj, include_extras)
        try:
            return memo[key]
        except (KeyError, TypeError):
            pass
        hints = original(obj, globalns, localns, include_extras=include_extras)
        if globalns is None and localns is None:
            with contextlib.suppress(TypeError):
                memo[key] = hints
        return hints

    shim = types.SimpleNamespace(**{name: getattr(typing_extensions, name)
                                    for name in dir(typing_extensions) if not name.startswith("__")})
    shim.get_type_hints = get_type_hints
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serialization.typing_extensions = shim
    _HINTS_CACHED = True
    return True

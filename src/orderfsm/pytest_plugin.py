"""pytest fixtures for testing code that talks to Square, against the orderfsm simulator.

The plugin is registered through the ``pytest11`` entry point, so installing orderfsm is enough:
every test in the environment can ask for these fixtures.

Fixtures (each test gets its own merchant):

``square_simulator``
    The in-process simulator: ``.app`` (the FastAPI app), ``.token``, ``.base_url``, ``.http``
    (an httpx client that reaches the app in-process, token already set), ``.merchant``,
    ``.engine`` and ``.clock``. Not available against a live server.
``square_client``
    ``square.Square`` wired to the simulator (in-process) or to ``--square-base-url``, with
    the SDK's automatic retries turned off (pass ``request_options={"max_retries": N}`` to a
    call to retry it).
``square_clock``
    The merchant's virtual clock: ``.now()`` and ``.advance(seconds)``, which fires what falls
    due (delayed-capture expiry, refund settlement, webhook deliveries).
``square_events``
    The webhook events recorded for the merchant, read from ``GET /_sim/events``.
``square_simulator_options``
    Keyword arguments for ``create_app`` (``variants``, ``seed``, ``refund_settle_seconds``,
    ``db``); override it in a conftest.py or a test module to configure the in-process
    simulator. State is in memory unless ``db`` names a SQLite file (``db=tmp_path / "s.db"``).
``square_merchant_factory``
    Session-scoped, for hypothesis: ``square_merchant_factory(variants=..., seed=...)`` makes a
    fresh in-process merchant with its SDK client (``orderfsm.simulator.merchant``), one per
    example. Function-scoped fixtures are not reset between hypothesis examples; this one
    hands out a new merchant each call.

Command-line options ``--square-base-url URL`` and ``--square-token TOKEN`` point the same tests
at a running server instead (another fake, or Square's sandbox). Then only tests marked
``@pytest.mark.square_live_compatible`` run; the others are skipped with a reason.
``square_clock`` and ``square_events`` need the simulator's control API (``/_sim``) and skip
the test when the server does not have it.
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:  # pragma: no cover
    import httpx
    from square import Square

__all__ = [
    "MARKER",
    "SquareClock",
    "SquareEvents",
    "Simulator",
    "disable_retries",
]

MARKER = "square_live_compatible"
DEFAULT_TOKEN = "sandbox-token"
IN_PROCESS_URL = "http://testserver"
# The fixture every other one of this plugin depends on; a test that (indirectly) uses it
# needs a Square server.
_TARGET = "_square_target"


# ------------------------------------------------------------------------------ options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("orderfsm", "orderfsm Square simulator")
    group.addoption(
        "--square-base-url", dest="square_base_url", default=None, metavar="URL",
        help="Run the Square fixtures against this server (another fake, or "
             "https://connect.squareupsandbox.com) instead of the in-process simulator. Only "
             f"tests marked @pytest.mark.{MARKER} run.")
    group.addoption(
        "--square-token", dest="square_token", default=None, metavar="TOKEN",
        help="Access token for --square-base-url. Without it each test uses a fresh random "
             "token, which on a simulator is a fresh merchant.")
    group.addoption(
        "--square-coverage", dest="square_coverage", action="store_true", default=False,
        help="After the run, print which catalog rules the tests triggered (a rejection) and "
             "satisfied, and which lifecycle transitions they took; never exercised first.")
    group.addoption(
        "--square-coverage-json", dest="square_coverage_json", default=None, metavar="PATH",
        help="Write the rule coverage of the run to PATH as JSON "
             "(render it with `orderfsm coverage PATH`).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test passes against a real Square server as well as the simulator, so "
        "it also runs when --square-base-url is given.")
    if config.getoption("square_coverage", False) or config.getoption("square_coverage_json", None):
        from ._coverage_plugin import PLUGIN_NAME, CoverageCollector

        if not config.pluginmanager.has_plugin(PLUGIN_NAME):
            config.pluginmanager.register(CoverageCollector(config), PLUGIN_NAME)


def _coverage(config: pytest.Config) -> Any:
    """The rule coverage collector of this run, or None when coverage is off."""
    from ._coverage_plugin import PLUGIN_NAME

    return config.pluginmanager.get_plugin(PLUGIN_NAME)


def pytest_report_header(config: pytest.Config) -> str | None:
    url = config.getoption("square_base_url", None)
    if url:
        return f"orderfsm: Square fixtures use {url} (only @pytest.mark.{MARKER} tests run)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    url = config.getoption("square_base_url", None)
    if not url:
        return
    skip = pytest.mark.skip(
        reason=f"needs the in-process simulator: not marked @pytest.mark.{MARKER}, and "
               f"--square-base-url={url} was given")
    for item in items:
        if _TARGET in getattr(item, "fixturenames", ()) and item.get_closest_marker(MARKER) is None:
            item.add_marker(skip)


# ------------------------------------------------------------------------------ helpers


def disable_retries(client: "Square") -> "Square":
    """Turn off the SDK's automatic retries (of 408, 409, 429 and 5xx answers) for every call
    made through ``client``, unless a call asks for them with ``request_options``.

    Returns the same client."""
    try:
        http = client._client_wrapper.httpx_client
        original = http.request
    except AttributeError as exc:  # pragma: no cover - a future SDK layout
        raise RuntimeError("this version of the Square SDK is not supported by "
                           "orderfsm.pytest_plugin.disable_retries") from exc

    def request(*args: Any, request_options: Any = None, **kwargs: Any) -> Any:
        options = {"max_retries": 0, **(request_options or {})}
        return original(*args, request_options=options, **kwargs)

    http.request = request
    return client


_CLIENT_CLASS: Any = None


def _test_client(app: Any) -> "httpx.Client":
    """An httpx client that calls ``app`` in-process, without starlette's warnings: the import
    warning about httpx, and the per-request one about ``timeout`` that the SDK would trigger
    on every call (it always passes a timeout, which means nothing in-process)."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        class InProcessClient(TestClient):
            def request(self, method: str, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                kwargs.pop("timeout", None)
                return super().request(method, url, **kwargs)

        _CLIENT_CLASS = InProcessClient
    # raise_server_exceptions=False: a crash answers 500 with Square's body, as a server would.
    return _CLIENT_CLASS(app, base_url=IN_PROCESS_URL, raise_server_exceptions=False)


@dataclass
class Simulator:
    """An in-process simulator app and the token of this test's merchant."""

    app: Any
    token: str
    http: "httpx.Client"
    base_url: str = IN_PROCESS_URL

    @property
    def store(self) -> Any:
        return self.app.state.store

    @property
    def merchant(self) -> Any:
        """This test's merchant (created on first use): its engine, idempotency keys and clock."""
        return self.store.merchant(self.token)

    @property
    def engine(self) -> Any:
        """The merchant's :class:`orderfsm.engine.Engine`: read its orders, payments, refunds."""
        return self.merchant.engine

    @property
    def clock(self) -> Any:
        """The merchant's ManualClock (prefer ``square_clock.advance``, which fires timers)."""
        return self.merchant.clock

    def client(self, **kwargs: Any) -> "Square":
        """A new SDK client for this merchant, retries off (keyword arguments go to Square)."""
        from square import Square

        kwargs.setdefault("token", self.token)
        return disable_retries(Square(base_url=self.base_url, httpx_client=self.http, **kwargs))


@dataclass
class _Target:
    """Where this test's Square calls go: a base URL, a token, and a raw HTTP client."""

    base_url: str
    token: str
    http: "httpx.Client"
    simulator: Simulator | None = None
    _control: bool | None = field(default=None, repr=False)
    _control_status: int | None = field(default=None, repr=False)

    def require_control_api(self, fixture: str) -> None:
        """Skip the test when the server has no /_sim control API."""
        if self._control is None:
            try:
                response = self.http.get("/_sim/clock")
                self._control_status = response.status_code
                self._control = response.status_code == 200 and "now" in response.json()
            except Exception:  # noqa: BLE001 - no answer, or not JSON: no control API
                self._control, self._control_status = False, None
        if not self._control:
            got = (f"GET /_sim/clock answered {self._control_status}"
                   if self._control_status is not None else "GET /_sim/clock failed")
            pytest.skip(f"{fixture} needs the simulator's control API (/_sim), which "
                        f"{self.base_url} does not have ({got})")


def _check(response: Any, what: str) -> Any:
    if response.status_code != 200:
        raise AssertionError(f"{what} answered {response.status_code}: {response.text}")
    return response.json()


class SquareClock:
    """The merchant's virtual clock, moved through the control API."""

    def __init__(self, target: _Target) -> None:
        self._target = target
        self.fired: int | None = None  # timers fired by the last advance()

    def now(self) -> datetime:
        """The merchant's current time (UTC)."""
        from .clock import parse_rfc3339

        return parse_rfc3339(_check(self._target.http.get("/_sim/clock"), "GET /_sim/clock")["now"])

    def advance(self, seconds: float | timedelta) -> datetime:
        """Move the clock forward, firing everything that falls due on the way, in order.
        Returns the new time."""
        from .clock import parse_rfc3339

        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        body = _check(self._target.http.post("/_sim/clock/advance", json={"seconds": seconds}),
                      "POST /_sim/clock/advance")
        self.fired = body.get("fired")
        return parse_rfc3339(body["now"])


class SquareEvents:
    """The webhook events the server recorded for this merchant, oldest first, read from
    ``GET /_sim/events``.

    Each record has ``event_id``, ``type``, ``object_id``, ``location_id``, ``created_at``,
    ``payload`` (Square's event envelope: exactly what a subscriber receives) and
    ``deliveries`` (one per subscription, with its attempts)."""

    def __init__(self, target: _Target) -> None:
        self._target = target

    def all(self, **filters: str) -> list[dict[str, Any]]:
        """Every event, or those matching ``type``, ``object_id``, ``status`` (a delivery
        status) or ``subscription_id``."""
        body = _check(self._target.http.get("/_sim/events", params=filters), "GET /_sim/events")
        return list(body.get("events") or [])

    def types(self) -> list[str]:
        """The event types in order, e.g. ``["order.created", "payment.created", ...]``."""
        return [e["type"] for e in self.all()]

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return self.all(type=event_type)

    def payloads(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Square's event envelopes (``merchant_id``, ``type``, ``event_id``, ``created_at``,
        ``data``), as a subscriber receives them."""
        events = self.all() if event_type is None else self.of_type(event_type)
        return [e["payload"] for e in events]

    def flush(self, timeout_seconds: float = 30) -> dict[str, Any]:
        """Wait until every delivery due on the merchant's clock has been attempted; returns
        the server's summary (``idle`` says whether that happened in time)."""
        return _check(self._target.http.post("/_sim/webhooks/flush",
                                             json={"timeout_seconds": timeout_seconds}),
                      "POST /_sim/webhooks/flush")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self.all())


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def square_simulator_options() -> dict[str, Any]:
    """Keyword arguments for the in-process simulator's ``create_app``; override to configure
    it, e.g. ``return {"variants": {"cancel_after_payment": "never"}}``."""
    return {}


@pytest.fixture
def _square_target(request: pytest.FixtureRequest,
                   square_simulator_options: dict[str, Any]) -> Iterator[_Target]:
    config = request.config
    url = config.getoption("square_base_url", None)
    token = config.getoption("square_token", None)
    coverage = _coverage(config)
    if url:
        import httpx

        fresh = token is None
        token = token or f"orderfsm-test-{uuid.uuid4().hex}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as http:
            if coverage is not None:
                coverage.remote_started(http, url, token, fresh)
            yield _Target(base_url=url.rstrip("/"), token=token, http=http)
            if coverage is not None:
                coverage.remote_finished(http, url, token)
        return
    from .simulator import create_app

    token = token or DEFAULT_TOKEN
    app = create_app(**square_simulator_options)
    with _test_client(app) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        sim = Simulator(app=app, token=token, http=http)
        yield _Target(base_url=IN_PROCESS_URL, token=token, http=http, simulator=sim)
    if coverage is not None:
        coverage.add_app(app)


@pytest.fixture
def square_simulator(_square_target: _Target) -> Simulator:
    """The in-process simulator with a fresh merchant for this test."""
    if _square_target.simulator is None:
        pytest.skip("square_simulator is the in-process simulator, which is not used when "
                    f"--square-base-url is given ({_square_target.base_url})")
    return _square_target.simulator


@pytest.fixture
def square_client(_square_target: _Target) -> "Square":
    """The official Square SDK client for this test's merchant, automatic retries off."""
    if _square_target.simulator is not None:
        return _square_target.simulator.client()
    from square import Square

    return disable_retries(Square(token=_square_target.token, base_url=_square_target.base_url))


@pytest.fixture
def square_clock(_square_target: _Target) -> SquareClock:
    """The merchant's virtual clock: ``now()`` and ``advance(seconds)``."""
    _square_target.require_control_api("square_clock")
    return SquareClock(_square_target)


@pytest.fixture
def square_events(_square_target: _Target) -> SquareEvents:
    """The webhook events recorded for this test's merchant."""
    _square_target.require_control_api("square_events")
    status = _square_target.http.get("/_sim/events").status_code
    if status != 200:
        pytest.skip(f"square_events needs GET /_sim/events, which {_square_target.base_url} "
                    f"answered with {status}")
    return SquareEvents(_square_target)


@pytest.fixture(scope="session")
def square_merchant_factory() -> Any:
    """Make fresh in-process merchants, e.g. one per hypothesis example:
    ``with square_merchant_factory(variants={...}) as m: m.client.orders.create(...)``.
    Takes the keyword arguments of :func:`orderfsm.simulator.merchant`."""
    from .simulator import merchant

    return merchant

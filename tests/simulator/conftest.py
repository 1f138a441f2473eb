"""Fixtures for the simulator suites: an app factory, the official SDK wired to an app in-process
(through starlette's TestClient), the SDK over a real uvicorn socket, and a raw HTTP client.

Every SDK call in these suites passes ``request_options=RO`` so a 409/5xx is reported at once
instead of being retried three times with sleeps.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

with warnings.catch_warnings():
    # starlette 1.x warns at import that it prefers httpx2; the SDK needs an httpx.Client.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from square import Square

from orderfsm.simulator import running
from simulator import create_app

RO: dict[str, Any] = {"max_retries": 0}
TOKEN = "sandbox-token-a"
OTHER_TOKEN = "sandbox-token-b"

_HERE = Path(__file__).resolve().parent
# TestClient warns on import (httpx instead of httpx2) and on every SDK call, because the SDK
# always passes `timeout=`; neither says anything about the simulator.
_TESTCLIENT_WARNINGS = (
    "ignore:Using `httpx` with `starlette.testclient` is deprecated",
    "ignore:You should not use the 'timeout' argument with the TestClient",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            for spec in _TESTCLIENT_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_app() -> Callable[..., Any]:
    """``make_app(**kwargs)`` builds a fresh simulator (kwargs go to ``create_app``)."""
    return create_app


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


@pytest.fixture
def merchant(app: Any) -> Any:
    """The store's merchant for TOKEN (its engine, clock and idempotency store)."""
    return app.state.store.merchant(TOKEN)


@pytest.fixture
def make_sdk(app: Any) -> Iterator[Callable[..., Square]]:
    """``make_sdk(token=TOKEN, app=None)``: a sync ``Square`` talking to the app in-process."""
    clients: list[TestClient] = []

    def factory(token: str = TOKEN, app_: Any = None) -> Square:
        tc = TestClient(app_ if app_ is not None else app)
        clients.append(tc)
        return Square(token=token, base_url="http://testserver", httpx_client=tc)

    yield factory
    for tc in clients:
        tc.close()


@pytest.fixture
def sdk(make_sdk: Callable[..., Square]) -> Square:
    return make_sdk(TOKEN)


@pytest.fixture
def raw(app: Any) -> Iterator[TestClient]:
    """A plain TestClient carrying ``Authorization: Bearer TOKEN``; server errors come back as
    responses (status 500) instead of being raised, so a test can assert there are none."""
    with TestClient(app, headers=auth(TOKEN), raise_server_exceptions=False) as tc:
        yield tc


@pytest.fixture
def make_raw(app: Any) -> Iterator[Callable[..., TestClient]]:
    """``make_raw(token=TOKEN, app_=None)``: a raw TestClient for another token or app."""
    clients: list[TestClient] = []

    def factory(token: str = TOKEN, app_: Any = None) -> TestClient:
        tc = TestClient(app_ if app_ is not None else app, headers=auth(token),
                        raise_server_exceptions=False)
        clients.append(tc)
        return tc

    yield factory
    for tc in clients:
        tc.close()


@pytest.fixture
def anon(app: Any) -> Iterator[TestClient]:
    """A TestClient with no Authorization header."""
    with TestClient(app, raise_server_exceptions=False) as tc:
        yield tc


@pytest.fixture
def served(app: Any) -> Iterator[str]:
    """The same app behind a real uvicorn socket on loopback; yields the base URL."""
    with running(app=app) as base_url:
        yield base_url


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    """An httpx.Client for SDK instances that talk to a real socket (closed after the test)."""
    with httpx.Client() as client:
        yield client


@pytest.fixture(params=["in_process", "uvicorn"])
def any_sdk(request: pytest.FixtureRequest, app: Any, make_sdk: Callable[..., Square]) -> Iterator[Square]:
    """The sync SDK in-process and over a real socket (the test runs once for each)."""
    if request.param == "in_process":
        yield make_sdk(TOKEN)
        return
    with running(app=app) as base_url, httpx.Client() as http:
        yield Square(token=TOKEN, base_url=base_url, httpx_client=http)


@pytest.fixture
def sim_state(anon: TestClient) -> Callable[[str], dict[str, Any]]:
    """``sim_state(token=TOKEN)``: GET /_sim/state, the merchant's whole snapshot."""

    def get(token: str = TOKEN) -> dict[str, Any]:
        r = anon.get("/_sim/state", headers=auth(token))
        assert r.status_code == 200, r.text
        return r.json()

    return get

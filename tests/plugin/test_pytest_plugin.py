"""The pytest plugin (orderfsm.pytest_plugin), driven through pytester: each test writes a small
test module, runs pytest on it in-process and checks the outcome."""

from __future__ import annotations

import httpx
import pytest
from square import Square
from square.core.api_error import ApiError

from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.pytest_plugin import MARKER, disable_retries

ORDER_HELPERS = '''
USD = "USD"

def make_order(client, key="order-1", amount=500):
    loc = client.locations.list().locations[0].id
    return client.orders.create(idempotency_key=key, order={
        "location_id": loc,
        "line_items": [{"name": "Tea", "quantity": "1",
                        "base_price_money": {"amount": amount, "currency": USD}}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {
            "recipient": {"display_name": "Ann"}}}],
    }).order

def authorize(client, key="pay-1", amount=500, **extra):
    return client.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=key,
                                  amount_money={"amount": amount, "currency": USD},
                                  autocomplete=False, **extra).payment
'''


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-rs", *args)


def skip_reasons(reprec: pytest.HookRecorder) -> dict[str, str | None]:
    """Test name -> skip reason, or None for a test that ran and passed."""
    out: dict[str, str | None] = {}
    for rep in reprec.getreports("pytest_runtest_logreport"):
        name = rep.nodeid.rsplit("::", 1)[-1]
        if rep.skipped:
            out[name] = rep.longrepr[2].removeprefix("Skipped: ")
        elif rep.when == "call":
            assert rep.passed, rep.longrepr
            out[name] = None
    return out


# ------------------------------------------------------------------------------ in-process


def test_fixtures_reach_one_in_process_merchant(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ORDER_HELPERS + '''
from fastapi import FastAPI
from square import Square

def test_objects(square_simulator, square_client):
    assert isinstance(square_simulator.app, FastAPI)
    assert isinstance(square_client, Square)
    assert square_simulator.token == "sandbox-token"
    assert square_simulator.base_url == "http://testserver"
    assert square_simulator.merchant.token == square_simulator.token

def test_client_and_engine_share_state(square_simulator, square_client):
    order = make_order(square_client)
    assert order.id in square_simulator.engine.orders
    assert square_simulator.engine.get_order(order.id)["state"] == "OPEN"
    raw = square_simulator.http.get(f"/v2/orders/{order.id}")
    assert raw.status_code == 200 and raw.json()["order"]["id"] == order.id
    loc = square_client.locations.list().locations[0]
    assert loc.merchant_id == square_simulator.engine.merchant_id
''')
    run(pytester).assert_outcomes(passed=2)


def test_each_test_gets_a_fresh_merchant(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ORDER_HELPERS + '''
import datetime
seen = {}

def test_first(square_simulator, square_client, square_clock):
    order = make_order(square_client, key="same-key", amount=500)
    square_clock.advance(3600)
    seen["app"] = square_simulator.app
    seen["order"] = order.id
    seen["now"] = square_clock.now()

def test_second(square_simulator, square_client, square_clock):
    assert square_simulator.app is not seen["app"]
    assert square_simulator.engine.orders == {}
    loc = square_client.locations.list().locations[0].id
    assert not square_client.orders.search(location_ids=[loc]).orders
    # the same idempotency key with a different body is a new request here, not a reuse
    order = make_order(square_client, key="same-key", amount=900)
    assert order.total_money.amount == 900
    assert square_clock.now() == seen["now"] - datetime.timedelta(hours=1)
''')
    run(pytester).assert_outcomes(passed=2)


def test_clock_advance_fires_delayed_capture_expiry(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ORDER_HELPERS + '''
from datetime import timedelta

def test_cancel_action(square_client, square_clock):
    start = square_clock.now()
    payment = authorize(square_client)
    assert payment.status == "APPROVED"
    assert payment.delay_action == "CANCEL"
    square_clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert square_clock.fired == 0
    assert square_client.payments.get(payment.id).payment.status == "APPROVED"
    now = square_clock.advance(1)
    assert square_clock.fired == 1
    assert now == start + timedelta(days=7)
    assert square_client.payments.get(payment.id).payment.status == "CANCELED"

def test_complete_action(square_client, square_clock):
    payment = authorize(square_client, delay_action="COMPLETE", delay_duration="PT1H")
    square_clock.advance(3600)
    assert square_client.payments.get(payment.id).payment.status == "COMPLETED"
''')
    run(pytester).assert_outcomes(passed=2)


def test_square_client_does_not_retry(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest
from square.core.api_error import ApiError
from orderfsm.errors import ErrorDetail, SquareError

def test_503_is_raised_at_once(square_simulator, square_client):
    calls = []
    def unavailable(location_id):
        calls.append(location_id)
        raise SquareError(503, [ErrorDetail("API_ERROR", "SERVICE_UNAVAILABLE", "down")])
    square_simulator.engine.get_location = unavailable
    with pytest.raises(ApiError) as err:
        square_client.locations.get("main")
    assert err.value.status_code == 503
    assert calls == ["main"]
''')
    run(pytester).assert_outcomes(passed=1)


def test_simulator_options_fixture_configures_the_app(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ORDER_HELPERS + '''
import pytest
from square.core.api_error import ApiError

@pytest.fixture
def square_simulator_options():
    return {"variants": {"cancel_after_payment": "never"}, "refund_settle_seconds": 60}

def test_variant_applies(square_simulator, square_client):
    assert square_simulator.engine.variants["cancel_after_payment"] == "never"
    assert square_simulator.engine.refund_settle_delay.total_seconds() == 60
''')
    run(pytester).assert_outcomes(passed=1)


def test_in_process_calls_raise_no_warnings(pytester: pytest.Pytester) -> None:
    """starlette's TestClient warns on every request that passes a timeout, which the SDK
    always does; the fixtures must not, or `-W error` suites break."""
    pytester.makepyfile(ORDER_HELPERS + '''
def test_calls(square_client, square_clock, square_events):
    make_order(square_client)
    square_clock.advance(1)
    assert square_events.types()
''')
    # Whether pytest can still rewrite the asserts of the already-imported `simulator` package
    # depends on what an earlier test put on sys.path, not on the fixtures: that warning aside,
    # any warning fails the run.
    run(pytester, "-W", "error", "-W", "ignore::pytest.PytestAssertRewriteWarning",
        ).assert_outcomes(passed=1)


def test_token_option_applies_in_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
def test_token(square_simulator, square_client):
    square_client.locations.list()
    assert square_simulator.token == "my-token"
    assert list(square_simulator.store.merchants) == ["my-token"]
''')
    run(pytester, "--square-token", "my-token").assert_outcomes(passed=1)


def test_unmarked_tests_run_in_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f'''
import pytest

def test_plain(square_client):
    assert square_client.locations.list().locations

@pytest.mark.{MARKER}
def test_marked(square_client):
    assert square_client.locations.list().locations
''')
    run(pytester).assert_outcomes(passed=2)


def test_events_fixture_reads_the_outbox(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ORDER_HELPERS + '''
def test_events(square_client, square_events, square_simulator):
    assert square_events.all() == []
    order = make_order(square_client)
    payment = authorize(square_client, order_id=order.id)
    types = square_events.types()
    assert types[:2] == ["order.created", "payment.created"]
    (created,) = square_events.of_type("payment.created")
    assert created["object_id"] == payment.id
    envelope = created["payload"]
    assert envelope["type"] == "payment.created"
    assert envelope["merchant_id"] == square_simulator.engine.merchant_id
    assert envelope["data"]["object"]["payment"]["status"] == "APPROVED"
    assert square_events.payloads("payment.created") == [envelope]
    assert [e["type"] for e in square_events.all(object_id=order.id)] == [
        t for t in types if t.startswith("order.")]
    assert len(square_events) == len(types) == len(list(square_events))
    assert square_events.flush(timeout_seconds=5)["idle"] is True

def test_events_are_per_test(square_events):
    assert len(square_events) == 0
''')
    run(pytester).assert_outcomes(passed=2)


def test_live_events_fixture_reads_the_server(pytester: pytest.Pytester, live_server) -> None:
    pytester.makepyfile(ORDER_HELPERS + f'''
import pytest

@pytest.mark.{MARKER}
def test_events(square_client, square_events):
    payment = authorize(square_client)
    assert [e["object_id"] for e in square_events.of_type("payment.created")] == [payment.id]
''')
    run(pytester, "--square-base-url", live_server.base_url).assert_outcomes(passed=1)


# ------------------------------------------------------------------------------ live server


def test_live_options_route_the_client_to_the_server(pytester: pytest.Pytester,
                                                     live_server) -> None:
    pytester.makepyfile(ORDER_HELPERS + f'''
import pytest

@pytest.mark.{MARKER}
def test_create(square_client):
    order = make_order(square_client)
    with open("order_id.txt", "w") as fh:
        fh.write(order.id)
''')
    result = run(pytester, "--square-base-url", live_server.base_url,
                 "--square-token", "live-token")
    result.assert_outcomes(passed=1)
    order_id = (pytester.path / "order_id.txt").read_text()
    assert order_id in live_server.merchants["live-token"].engine.orders
    result.stdout.fnmatch_lines([f"orderfsm: Square fixtures use {live_server.base_url}*"])


def test_live_without_token_uses_a_fresh_merchant_per_test(pytester: pytest.Pytester,
                                                          live_server) -> None:
    before = set(live_server.merchants)
    pytester.makepyfile(ORDER_HELPERS + f'''
import pytest

pytestmark = pytest.mark.{MARKER}

def test_one(square_client):
    make_order(square_client)

def test_two(square_client):
    loc = square_client.locations.list().locations[0].id
    assert not square_client.orders.search(location_ids=[loc]).orders
    make_order(square_client)
''')
    run(pytester, "--square-base-url", live_server.base_url).assert_outcomes(passed=2)
    new = set(live_server.merchants) - before
    assert len(new) == 2
    assert all(t.startswith("orderfsm-test-") for t in new)
    assert all(len(live_server.merchants[t].engine.orders) == 1 for t in new)


def test_live_mode_runs_only_marked_tests(pytester: pytest.Pytester, live_server) -> None:
    pytester.makepyfile(f'''
import pytest

def test_unmarked(square_client):
    raise AssertionError("must not run against a live server")

def test_unmarked_clock(square_clock):
    raise AssertionError("must not run against a live server")

def test_no_square_fixture():
    pass

@pytest.mark.{MARKER}
def test_marked(square_client):
    assert square_client.locations.list().locations

@pytest.mark.{MARKER}
def test_marked_needs_the_in_process_app(square_simulator):
    raise AssertionError("square_simulator must skip against a live server")
''')
    reasons = skip_reasons(pytester.inline_run("-p", "no:cacheprovider",
                                                "--square-base-url", live_server.base_url))
    unmarked = (f"needs the in-process simulator: not marked @pytest.mark.{MARKER}, and "
                f"--square-base-url={live_server.base_url} was given")
    assert reasons == {
        "test_unmarked": unmarked,
        "test_unmarked_clock": unmarked,
        "test_no_square_fixture": None,
        "test_marked": None,
        "test_marked_needs_the_in_process_app":
            "square_simulator is the in-process simulator, which is not used when "
            f"--square-base-url is given ({live_server.base_url})",
    }


def test_live_clock_uses_the_control_api(pytester: pytest.Pytester, live_server) -> None:
    pytester.makepyfile(ORDER_HELPERS + f'''
import pytest

@pytest.mark.{MARKER}
def test_expiry(square_client, square_clock):
    payment = authorize(square_client, delay_duration="PT10M")
    square_clock.advance(600)
    assert square_client.payments.get(payment.id).payment.status == "CANCELED"
''')
    run(pytester, "--square-base-url", live_server.base_url).assert_outcomes(passed=1)


def test_live_clock_skips_without_control_api(pytester: pytest.Pytester, bare_server) -> None:
    pytester.makepyfile(f'''
import pytest

@pytest.mark.{MARKER}
def test_clock(square_clock):
    raise AssertionError("must skip")

@pytest.mark.{MARKER}
def test_events(square_events):
    raise AssertionError("must skip")
''')
    result = run(pytester, "--square-base-url", bare_server)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        f"*square_clock needs the simulator's control API (/_sim), which {bare_server} does not "
        "have (GET /_sim/clock answered 404)*",
        "*square_events needs the simulator's control API*",
    ])


def test_live_client_does_not_retry(pytester: pytest.Pytester, live_server) -> None:
    engine = live_server.app.state.store.merchant("retry-token").engine
    calls: list[str] = []

    def unavailable(location_id: str) -> dict:
        calls.append(location_id)
        raise SquareError(503, [ErrorDetail("API_ERROR", "SERVICE_UNAVAILABLE", "down")])

    engine.get_location = unavailable
    pytester.makepyfile(f'''
import pytest
from square.core.api_error import ApiError

@pytest.mark.{MARKER}
def test_503(square_client):
    with pytest.raises(ApiError) as err:
        square_client.locations.get("main")
    assert err.value.status_code == 503
''')
    run(pytester, "--square-base-url", live_server.base_url,
        "--square-token", "retry-token").assert_outcomes(passed=1)
    assert calls == ["main"]


# ------------------------------------------------------------------------------ registration


def test_marker_and_options_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines([f"@pytest.mark.{MARKER}: *"])
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--square-base-url=URL*", "*--square-token=TOKEN*"])


def test_marker_is_known_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f'''
import pytest

@pytest.mark.{MARKER}
def test_marked():
    pass
''')
    run(pytester, "--strict-markers").assert_outcomes(passed=1)


# ------------------------------------------------------------------------------ disable_retries


def _counting_client(status: int, calls: list[int]) -> Square:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json={"errors": [{"category": "API_ERROR", "code": "X"}]})

    return Square(token="t", base_url="http://fake",
                  httpx_client=httpx.Client(transport=httpx.MockTransport(handler)))


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
def test_disable_retries_makes_one_attempt(status: int) -> None:
    calls: list[int] = []
    client = disable_retries(_counting_client(status, calls))
    with pytest.raises(ApiError) as err:
        client.locations.list()
    assert err.value.status_code == status
    assert len(calls) == 1


def test_disable_retries_keeps_an_explicit_request_option(monkeypatch: pytest.MonkeyPatch) -> None:
    import square.core.http_client as sdk_http

    monkeypatch.setattr(sdk_http, "_retry_timeout", lambda response, retries: 0)
    calls: list[int] = []
    client = disable_retries(_counting_client(503, calls))
    with pytest.raises(ApiError):
        client.locations.list(request_options={"max_retries": 2})
    assert len(calls) == 3


def test_fixtures_keep_state_in_a_file_when_given_db(pytester: pytest.Pytester) -> None:
    """``square_simulator_options`` may name a SQLite file: the fixtures' merchant lives there
    and a second simulator on the same file sees it."""
    pytester.makepyfile(ORDER_HELPERS + '''
import pytest
from orderfsm.simulator import create_app
from orderfsm.store import SQLiteStore

@pytest.fixture
def square_simulator_options(tmp_path):
    return {"db": str(tmp_path / "state.sqlite3")}

def test_state_is_in_the_file(square_simulator, square_client, tmp_path):
    assert isinstance(square_simulator.store.state, SQLiteStore)
    order = make_order(square_client)
    again = create_app(db=str(tmp_path / "state.sqlite3"))
    assert again.state.store.restored >= 1
    [m] = [m for m in again.state.store.merchants.values() if order.id in m.engine.orders]
    assert m.engine.get_order(order.id)["line_items"][0]["name"] == "Tea"

def test_memory_by_default_elsewhere():
    from orderfsm.store import MemoryStore
    assert isinstance(create_app().state.store.state, MemoryStore)
''')
    run(pytester).assert_outcomes(passed=2)

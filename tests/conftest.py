"""Shared pytest configuration for the whole test tree."""

# ---------------------------------------------------------------------------------------------
# Hypothesis profiles
#
#   ci   (default) max_examples=200, no deadline, too_slow health check suppressed
#   deep           max_examples=2000, same otherwise
#
# Choose one with ORDERFSM_HYPOTHESIS_PROFILE=deep.
# ---------------------------------------------------------------------------------------------
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("ORDERFSM_HYPOTHESIS_PROFILE", "ci"))

# pytester drives the orderfsm pytest plugin's tests (tests/plugin/); pytest accepts
# pytest_plugins only in this top-level conftest.
pytest_plugins = ["pytester"]


# ---------------------------------------------------------------------------------------------
# PostgreSQL
#
#   pg_server (session)  a TempPostgres of the test run's own, started on first use
#   pg_url               a fresh, empty database on it, one per test
#
# Tests that use them skip only when the machine has no PostgreSQL server binaries.
# ---------------------------------------------------------------------------------------------
import itertools

import pytest

_pg_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server():
    from orderfsm.pgtemp import FAST, PostgresUnavailable, TempPostgres, find_binaries

    if find_binaries() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on this machine")
    try:
        server = TempPostgres(FAST).start()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL binaries exist but the server did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    name = f"t{os.getpid()}_{next(_pg_names)}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


# ---------------------------------------------------------------------------------------------
# Webhook receivers
#
#   http_receiver(on_post)   start a loopback HTTP server in a thread; on_post(path, body)
#                            answers each POST with a status (None: 200). The server has
#                            .url(path="/hook") and .close(); it is closed after the test.
# ---------------------------------------------------------------------------------------------
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackReceiver:
    def __init__(self, on_post) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = on_post(self.path, body) or 200
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender went away (killed) while we waited
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.closed = False

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def http_receiver():
    started: list[LoopbackReceiver] = []

    def start(on_post) -> LoopbackReceiver:
        receiver = LoopbackReceiver(on_post)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()

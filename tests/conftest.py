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

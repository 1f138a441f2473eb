"""Schemathesis against the simulator, in-process, from the committed spec subset.

``square_subset.json`` is the part of Square's OpenAPI spec the simulator implements (written by
``tools/gen_fuzz_spec.py``; test_subset_current.py checks it against ../shared when present).
Every generated request goes through the ASGI app with a bearer token, and every answer must
pass four checks: no server error, a body that conforms to the operation's response schema
(2xx and the documented 4xx alike), a documented status code, and the documented content type.

The bounded run (the default) generates FUZZ_EXAMPLES cases per operation; ``pytest -m
fuzz_long`` runs FUZZ_LONG_EXAMPLES per operation. Each run prints how many cases it made and
how many 5xx it saw.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

from simulator import create_app
from simulator.store import SimulatorConfig

SUBSET = Path(__file__).with_name("square_subset.json")
TOKEN = "fuzz-token"
FUZZ_EXAMPLES = int(os.environ.get("ORDERFSM_FUZZ_EXAMPLES", "15"))
FUZZ_LONG_EXAMPLES = int(os.environ.get("ORDERFSM_FUZZ_LONG_EXAMPLES", "1000"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]

#: Where the simulator knowingly answers something the spec does not describe. Only one:
#: Square returns the error code VERSION_MISMATCH (an UpdateOrder, PayOrder or UpdatePayment
#: with a stale version; docs/simulator.md and the reference of observed error bodies), but the
#: spec's ErrorCode enum does not list it. It is added to the enum here and nowhere else.
ALLOWED_SPEC_GAPS = {"ErrorCode": ["VERSION_MISMATCH"]}


def load_subset() -> dict[str, Any]:
    spec = json.loads(SUBSET.read_text())
    spec = copy.deepcopy(spec)
    for schema, values in ALLOWED_SPEC_GAPS.items():
        enum = spec["components"]["schemas"][schema]["enum"]
        assert not set(values) & set(enum), f"{schema} now lists {values}; drop the exception"
        enum.extend(values)
    return spec


def _schema(*, coverage: bool) -> Any:
    """The subset as a schemathesis schema over a fresh simulator. The bounded run uses the
    examples and fuzzing phases; the long run adds the coverage phase (every boundary and
    type violation schemathesis derives from each schema: thousands of cases)."""
    config = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": coverage},
                                                       "stateful": {"enabled": False}}})
    loaded = schemathesis.openapi.from_dict(load_subset(), config=config)
    # Webhook targets: the fuzzer makes up URLs; deliveries must never leave the machine, so
    # the default loopback-only policy stays on and webhooks are not sent at all.
    loaded.app = create_app(SimulatorConfig(log_requests=False, webhooks=False))
    return loaded


schema = _schema(coverage=False)
long_schema = _schema(coverage=True)
def _run(case: Any, count: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    count("schemathesis", response.status_code)
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_bounded(case: Any, fuzz_count: Any) -> None:
    _run(case, fuzz_count)


@pytest.mark.fuzz_long
@long_schema.parametrize()
@settings(max_examples=FUZZ_LONG_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_long(case: Any, fuzz_count: Any) -> None:
    _run(case, fuzz_count)


def test_the_checks_catch_a_server_error_and_a_body_off_the_schema(monkeypatch) -> None:
    """The suite can fail: a crash and a malformed body are both reported."""
    from schemathesis.core.failures import FailureGroup

    from orderfsm.engine import Engine

    case = schema["/v2/locations"]["GET"].Case()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    monkeypatch.setattr(Engine, "list_locations", lambda self: [{"id": 5}])
    response = case.call(headers=auth)
    assert response.status_code == 200
    with pytest.raises(FailureGroup, match="violates schema"):
        case.validate_response(response, checks=CHECKS)
    monkeypatch.setattr(Engine, "list_locations", lambda self: 1 / 0)
    response = case.call(headers=auth)
    assert response.status_code == 500
    with pytest.raises(FailureGroup, match="Server error"):
        case.validate_response(response, checks=CHECKS)


def test_version_mismatch_is_the_one_allowed_gap() -> None:
    """A stale-version UpdateOrder answers VERSION_MISMATCH, which conforms only because the
    test adds it to ErrorCode; the committed subset itself does not list it."""
    raw = json.loads(SUBSET.read_text())
    assert "VERSION_MISMATCH" not in raw["components"]["schemas"]["ErrorCode"]["enum"]
    assert ALLOWED_SPEC_GAPS == {"ErrorCode": ["VERSION_MISMATCH"]}
    app = create_app(SimulatorConfig(log_requests=False))
    loaded = schemathesis.openapi.from_dict(load_subset())
    loaded.app = app
    auth = {"Authorization": f"Bearer {TOKEN}"}
    created = loaded["/v2/orders"]["POST"].Case(
        body={"order": {"location_id": "main"}}).call(headers=auth)
    order_id = created.json()["order"]["id"]
    case = loaded["/v2/orders/{order_id}"]["PUT"].Case(
        path_parameters={"order_id": order_id}, body={"order": {"version": 7, "note": "x"}})
    response = case.call(headers=auth)
    assert response.json()["errors"][0]["code"] == "VERSION_MISMATCH"
    case.validate_response(response, checks=CHECKS)


def test_every_served_operation_is_fuzzed() -> None:
    """The subset covers the simulator's /v2 routes (so nothing escapes the fuzzer)."""
    ops = {(op.method.upper(), op.path) for op in
           (result.ok() for result in schema.get_all_operations())}
    assert len(ops) >= 40
    assert ("POST", "/v2/orders") in ops and ("GET", "/v2/payments") in ops

"""End to end: ``orderfsm conform`` against simulators served over real loopback HTTP.

A simulator started with a non-default variant must fail conformance against the default
oracle and name the rule; the printed script must be valid Python and, run on its own against
that server, reproduce the divergence; the same server must pass once the oracle assumes its
variant; ``--detect-variants`` must name the variants the server was started with.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from orderfsm.cli import app
from orderfsm.simulator import create_app, running

runner = CliRunner()
WIDE = {"COLUMNS": "200"}
# A seed whose sequences reach the diverging cancel early; the run stops at the first
# divergence, so the larger budget only matters if the machine's strategies change.
SEED = "8"


def _serve(**variants: str) -> Iterator[str]:
    application = create_app(variants=variants)
    application.state.config.log_requests = False
    with running(app=application) as base:
        yield base


@pytest.fixture(scope="module")
def never_server() -> Iterator[str]:
    yield from _serve(cancel_after_payment="never")


@pytest.fixture(scope="module")
def default_server() -> Iterator[str]:
    yield from _serve()


def conform(base: str, *args: str) -> Any:
    return runner.invoke(app, ["conform", "--base-url", base, "--token", "e2e-token", *args],
                         env=WIDE)


def _snippet(output: str) -> str:
    start = output.index('"""Reproduces a divergence')
    end_marker = 'print("no divergence: the server agrees with orderfsm on every step")'
    end = output.index(end_marker, start) + len(end_marker)
    return output[start:end] + "\n"


def _run_script(source: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SQUARE_TOKEN"}
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture(scope="module")
def diverging_run(never_server: str) -> Any:
    return conform(never_server, "--examples", "150", "--seed", SEED)


def test_default_oracle_fails_against_a_never_cancel_server(diverging_run: Any) -> None:
    assert diverging_run.exit_code == 1, diverging_run.output
    out = diverging_run.stdout
    row = next(line for line in out.splitlines()
               if line.strip().startswith("order.cancel_after_payment "))
    assert row.split()[-1] == "1"  # diverged
    assert "1 divergence(s)" in out
    assert "orderfsm accepts it; the server rejects it with 400 INVALID_REQUEST_ERROR/BAD_REQUEST" \
        in out
    assert f"seed={SEED}" in out


def test_printed_snippet_reproduces_the_divergence(diverging_run: Any, never_server: str,
                                                   default_server: str) -> None:
    source = _snippet(diverging_run.stdout)
    compile(source, "snippet.py", "exec")
    assert f"BASE_URL = {never_server!r}" in source
    # Against the server that diverged: the script fails on the rule's assertion.
    failed = _run_script(source)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "AssertionError: order.cancel_after_payment" in failed.stderr
    # Against a server that follows the default: the same calls all agree.
    fixed = source.replace(f"BASE_URL = {never_server!r}", f"BASE_URL = {default_server!r}")
    passed = _run_script(fixed)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "no divergence" in passed.stdout


def test_oracle_with_the_servers_variant_passes(never_server: str) -> None:
    result = conform(never_server, "--examples", "25", "--seed", SEED, "--variant",
                     "cancel_after_payment=never", "--report", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["divergences"] == []
    assert report["variants"]["cancel_after_payment"] == "never"
    assert report["seed"] == int(SEED) and report["examples"] == 25
    assert report["examples_run"] >= 25
    rules = {r["rule"]: r for r in report["rules"]}
    assert rules["order.cancel_after_payment"]["checked"] > 0
    assert all(r["diverged"] == 0 and r["checked"] == r["passed"] for r in rules.values())
    assert report["server"]["clock"] is True and report["server"]["reset"] is True


def test_default_server_passes_the_default_oracle(default_server: str) -> None:
    result = conform(default_server, "--examples", "20", "--seed", SEED)
    assert result.exit_code == 0, result.output
    assert "no divergence" in result.stdout
    assert re.search(r"order\.version_increments\s+\d+\s+\d+\s+0", result.stdout)


def test_detect_variants_names_the_servers_variants() -> None:
    for base in _serve(cancel_after_payment="never", autocomplete_order_on_payment="leave_open"):
        result = conform(base, "--detect-variants", "--report", "json")
        assert result.exit_code == 0, result.output
        found = json.loads(result.stdout)["variants"]
        assert found["cancel_after_payment"] == "never"
        assert found["autocomplete_order_on_payment"] == "leave_open"
        assert found["cancel_open_fulfillments"] == "reject"
        table = conform(base, "--detect-variants")
        assert table.exit_code == 0, table.output
        assert "--variant cancel_after_payment=never" in table.stdout
        assert "--variant autocomplete_order_on_payment=leave_open" in table.stdout


@pytest.mark.parametrize("args, message", [
    (["--variant", "cancel_after_payment=sometimes"], "unknown value"),
    (["--variant", "nonsense"], "expected RULE=VALUE"),
    (["--detect-variants", "--variant", "cancel_after_payment=never"], "cannot be combined"),
])
def test_usage_errors_exit_2(default_server: str, args: list[str], message: str) -> None:
    result = conform(default_server, "--examples", "1", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_unreachable_server_exits_2_with_a_message() -> None:
    result = conform("http://127.0.0.1:9", "--examples", "1")
    assert result.exit_code == 2
    assert "cannot reach http://127.0.0.1:9" in result.output


def test_missing_token_and_bad_example_count_are_usage_errors(default_server: str) -> None:
    no_token = runner.invoke(app, ["conform", "--base-url", default_server],
                             env={**WIDE, "SQUARE_TOKEN": ""})
    assert no_token.exit_code == 2
    zero = conform(default_server, "--examples", "0")
    assert zero.exit_code == 2


def test_require_all_rules_fails_a_run_that_left_rules_unchecked(default_server: str) -> None:
    short = ("--examples", "1", "--steps", "2", "--seed", SEED)
    lenient = conform(default_server, *short)
    assert lenient.exit_code == 0, lenient.output
    assert "zero checks: " in lenient.stdout
    strict = conform(default_server, *short, "--require-all-rules")
    assert strict.exit_code == 1, strict.output
    assert "--require-all-rules:" in strict.stdout and "with zero checks" in strict.stdout
    report = json.loads(conform(default_server, *short, "--report", "json").stdout)
    assert report["ok"] is True and report["unchecked"]
    assert report["out_of_reach"] and all(report["out_of_reach"].values())

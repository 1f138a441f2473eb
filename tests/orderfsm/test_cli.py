"""The orderfsm command line, driven through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orderfsm.cli import app
from orderfsm.diagrams import render
from orderfsm.lifecycles import LIFECYCLES
from orderfsm.reference import rules_markdown
from orderfsm.rules import CATALOG

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
RULE_KEYS = {"id", "resource", "statement", "source", "confidence", "error", "variants", "example"}
ERROR_KEYS = {"status", "category", "code", "detail", "field", "wording"}
VARIANT_KEYS = {"name", "values", "default", "meanings"}


def invoke(*args: str):
    return runner.invoke(app, list(args), env=WIDE)


def test_rules_table_lists_every_rule() -> None:
    result = invoke("rules")
    assert result.exit_code == 0, result.output
    for rule_id in CATALOG:
        assert rule_id in result.stdout


def test_rules_json_is_the_catalog() -> None:
    result = invoke("rules", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["id"] for d in data] == list(CATALOG)
    for entry in data:
        assert set(entry) == RULE_KEYS
        assert entry == CATALOG[entry["id"]].to_json()
        if entry["error"] is not None:
            assert set(entry["error"]) == ERROR_KEYS
        if entry["variants"] is not None:
            assert set(entry["variants"]) == VARIANT_KEYS


def test_rules_markdown_is_the_reference() -> None:
    result = invoke("rules", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.stdout == rules_markdown()


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_rules_filter_by_resource(fmt: str) -> None:
    result = invoke("rules", "--format", fmt, "--resource", "refund")
    assert result.exit_code == 0, result.output
    for rule_id, rule in CATALOG.items():
        if rule.resource == "refund":
            assert rule_id in result.stdout
        elif fmt != "markdown":  # the markdown may mention other rules in prose
            assert rule_id not in result.stdout
    if fmt == "json":
        assert {d["resource"] for d in json.loads(result.stdout)} == {"refund"}


def test_rules_unknown_resource_exits_2() -> None:
    result = invoke("rules", "--resource", "invoice")
    assert result.exit_code == 2


def test_explain_shows_exact_error_and_variant() -> None:
    result = invoke("explain", "order.cancel_after_payment")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Orders cannot be canceled after payments have been processed." in out
    assert "HTTP 400" in out
    assert '"code": "BAD_REQUEST"' in out
    assert '"category": "INVALID_REQUEST_ERROR"' in out
    assert '"field": "order.state"' in out
    assert "after_fulfillments_canceled (default)" in out
    assert "never" in out
    assert "https://developer.squareup.com/forums/t/best-method-to-cancel-order-after-refund/922" \
        in out
    assert "order: guard of cancel" in out
    assert CATALOG["order.cancel_after_payment"].example in out


def test_explain_error_body_parses() -> None:
    result = invoke("explain", "refund.amount_exceeds")
    assert result.exit_code == 0, result.output
    start = result.stdout.index('{\n  "errors"')
    end = result.stdout.index("\n}\n", start) + 2
    body = json.loads(result.stdout[start:end])
    err = CATALOG["refund.amount_exceeds"].error
    assert body == {"errors": [{"code": err.code, "detail": err.detail, "field": err.field,
                                "category": err.category}]}
    assert list(body["errors"][0]) == ["code", "detail", "field", "category"]


def test_explain_rule_without_error() -> None:
    result = invoke("explain", "order.version_increments")
    assert result.exit_code == 0, result.output
    assert "does not reject" in result.stdout


def test_explain_unknown_id_suggests_close_match() -> None:
    result = invoke("explain", "order.cancel_after_paymnt")
    assert result.exit_code == 2
    assert "unknown rule id" in result.stderr
    assert "order.cancel_after_payment" in result.stderr
    assert "Traceback" not in result.output


def test_explain_unknown_id_matches_on_name_part() -> None:
    result = invoke("explain", "terminal_frozen")
    assert result.exit_code == 2
    assert "order.terminal_frozen" in result.stderr


@pytest.mark.parametrize("resource", sorted(LIFECYCLES))
@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_diagram(resource: str, fmt: str) -> None:
    result = invoke("diagram", resource, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert result.stdout == render(resource, fmt)
    with_rej = invoke("diagram", resource, "--format", fmt, "--rejections")
    assert with_rej.exit_code == 0, with_rej.output
    assert with_rej.stdout == render(resource, fmt, include_rejections=True)


def test_diagram_unknown_resource_exits_2() -> None:
    result = invoke("diagram", "ordr")
    assert result.exit_code == 2
    assert "unknown resource" in result.stderr
    assert "order" in result.stderr
    assert "Traceback" not in result.output


def test_diagram_unknown_format_exits_2() -> None:
    assert invoke("diagram", "order", "--format", "svg").exit_code == 2


@pytest.mark.parametrize("command", [[], ["rules"], ["explain"], ["diagram"]])
def test_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout

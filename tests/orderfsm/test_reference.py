"""The generated rule reference (docs/rules.md)."""

from __future__ import annotations

import json
import re

import pytest

from orderfsm.diagrams import to_mermaid
from orderfsm.lifecycles import LIFECYCLES
from orderfsm.reference import (
    RESOURCES,
    error_body,
    lifecycle_references,
    rules_markdown,
    source_parts,
)
from orderfsm.rules import CATALOG, SOURCES

MD = rules_markdown()


def test_every_rule_has_a_heading() -> None:
    for rule_id in CATALOG:
        assert f"#### `{rule_id}`" in MD


def test_four_mermaid_blocks_one_per_lifecycle() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)```", MD, flags=re.S)
    assert len(blocks) == 4 == len(LIFECYCLES)
    assert "## Lifecycles" in MD
    for name, block in zip(LIFECYCLES, blocks):
        assert block == to_mermaid(name)


def test_resources_in_catalog_order() -> None:
    positions = [MD.index(f"### Resource `{res}`") for res in RESOURCES]
    assert positions == sorted(positions)
    assert set(RESOURCES) == {r.resource for r in CATALOG.values()}


def test_error_bodies_are_json_and_exact() -> None:
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", MD, flags=re.S)]
    expected = [error_body(r) for r in CATALOG.values() if r.error is not None]
    assert blocks == expected
    body = error_body(CATALOG["order.cancel_after_payment"])
    assert body == {"errors": [{
        "code": "BAD_REQUEST",
        "detail": "Orders cannot be canceled after payments have been processed.",
        "field": "order.state",
        "category": "INVALID_REQUEST_ERROR",
    }]}


def test_error_body_omits_null_field() -> None:
    body = error_body(CATALOG["payment.already_captured"])
    assert "field" not in body["errors"][0]


def test_sources_are_links() -> None:
    for key, text in SOURCES.items():
        url, _ = source_parts(key)
        if text.startswith("https://"):
            assert f"[{key}]({url})" in MD
        else:
            assert url is None


def test_variants_mark_their_default() -> None:
    for rule in CATALOG.values():
        if rule.variant is not None:
            assert f"| `{rule.variant.default}` (default) |" in MD
            for value in rule.variant.values:
                assert f"| `{value}`" in MD


def test_lifecycle_references_cover_the_tables() -> None:
    for name, lc in LIFECYCLES.items():
        for rule_id in lc.rule_ids():
            refs = lifecycle_references(rule_id)
            assert any(ref.lifecycle == name for ref in refs)
    refs = lifecycle_references("order.cancel_after_payment")
    assert [r.describe() for r in refs] == ["order: guard of cancel (DRAFT, OPEN -> CANCELED)"]


@pytest.mark.parametrize("resource", RESOURCES)
def test_single_resource(resource: str) -> None:
    md = rules_markdown(resource)
    ids = [r.id for r in CATALOG.values() if r.resource == resource]
    for rule_id in ids:
        assert f"#### `{rule_id}`" in md
    assert md.count("#### `") == len(ids)
    assert md.count("```mermaid") == (1 if resource in LIFECYCLES else 0)


def test_unknown_resource() -> None:
    with pytest.raises(ValueError):
        rules_markdown("invoice")

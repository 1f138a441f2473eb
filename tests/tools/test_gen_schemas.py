"""The committed simulator/_schemas.py must equal a fresh compile of Square's spec."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "square-api" / "api.json"
SCRIPT = REPO / "tools" / "gen_schemas.py"
COMMITTED = REPO / "simulator" / "_schemas.py"

needs_spec = pytest.mark.skipif(not SPEC.is_file(), reason=f"Square spec not present at {SPEC}")


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_schemas_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_spec
def test_committed_module_matches_regeneration(tmp_path: Path) -> None:
    out = tmp_path / "_schemas.py"
    assert _load_generator().main([str(SPEC), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8"), (
        "simulator/_schemas.py is stale: run `python tools/gen_schemas.py`"
    )


@needs_spec
def test_cli_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}.py"
        subprocess.run(
            [sys.executable, str(SCRIPT), str(SPEC), "--out", str(out)],
            check=True, capture_output=True,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_committed_module_is_plain_data() -> None:
    """Runs without the spec: the module loads and has the promised shape."""
    namespace: dict = {}
    exec(compile(COMMITTED.read_text(encoding="utf-8"), str(COMMITTED), "exec"), namespace)
    schemas, query, roots = namespace["SCHEMAS"], namespace["QUERY_PARAMS"], namespace["ROOTS"]
    assert COMMITTED.stat().st_size < 300_000
    for root in roots:
        assert root in schemas
    for name, schema in schemas.items():
        assert set(schema) <= {"required", "properties"}, name
        for req in schema.get("required", ()):
            assert req in schema["properties"], (name, req)
        for pname, prop in schema["properties"].items():
            for ref in (prop.get("$ref"), prop.get("items", {}).get("$ref")):
                assert ref is None or ref in schemas, (name, pname, ref)
    assert schemas["Order"]["properties"]["state"]["enum"] == ["OPEN", "COMPLETED", "CANCELED", "DRAFT"]
    assert schemas["Money"]["properties"]["amount"]["type"] == "integer"
    assert "USD" in schemas["Money"]["properties"]["currency"]["enum"]
    assert set(query) == {
        "ListPayments", "ListPaymentRefunds", "ListWebhookSubscriptions", "ListWebhookEventTypes",
        "ListCatalog", "RetrieveCatalogObject",
    }
    assert query["ListPayments"]["limit"]["type"] == "integer"

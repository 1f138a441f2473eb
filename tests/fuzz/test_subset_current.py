"""The committed spec subset is what tools/gen_fuzz_spec.py writes from Square's spec today."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "square-api" / "api.json"
SUBSET = Path(__file__).with_name("square_subset.json")


def _tool():
    spec = importlib.util.spec_from_file_location("gen_fuzz_spec",
                                                  REPO / "tools" / "gen_fuzz_spec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not SPEC.is_file(), reason=f"Square spec not present at {SPEC}")
def test_committed_subset_is_current(tmp_path: Path) -> None:
    out = tmp_path / "subset.json"
    assert _tool().main([str(SPEC), "--out", str(out)]) == 0
    assert out.read_text() == SUBSET.read_text(), "run python tools/gen_fuzz_spec.py"


def test_subset_matches_the_simulator_routes() -> None:
    """Without ../shared: every route the simulator serves has an operation in the subset, and
    every operation documents the error statuses with its own response schema."""
    tool = _tool()
    served = tool.served_operations()
    data = json.loads(SUBSET.read_text())
    ops = {(m, tool._PARAM.sub("{}", p)) for p, item in data["paths"].items() for m in item
           if m != "parameters"}
    assert ops == served
    for item in data["paths"].values():
        for method, op in item.items():
            if method == "parameters":
                continue
            ok = op["responses"]["200"]["content"]
            for status in tool.ERROR_STATUSES:
                assert op["responses"][status]["content"] == ok
            assert "security" not in op


def test_check_mode_reports_a_stale_file(tmp_path: Path, capsys) -> None:
    if not SPEC.is_file():
        pytest.skip(f"Square spec not present at {SPEC}")
    stale = tmp_path / "subset.json"
    stale.write_text("{}\n")
    assert _tool().main([str(SPEC), "--out", str(stale), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out

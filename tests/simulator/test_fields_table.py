"""docs/fields.md, the committed table of every request field, is complete and checkable.

Runs without Square's spec: it reads the committed table. Each row must be honoured, rejected
or a known difference; an honoured row must name a test that exists and whose code mentions the
field (so the test can notice the field being ignored); a rejected row must name an error code;
a known difference must say why. With the spec present, the table must also equal a fresh
generation (tools/gen_fields.py).
"""

from __future__ import annotations

import ast
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "docs" / "fields.md"
SPEC = REPO.parent / "shared" / "square-api" / "api.json"
SCRIPT = REPO / "tools" / "gen_fields.py"

ROW = re.compile(r"^\| `(?P<field>[^`]+)` \| (?P<kind>query|body) \| (?P<status>[^|]+?) \| "
                 r"(?P<detail>.*) \|$")
TEST_ID = re.compile(r"^`(?P<file>tests/[\w/]+\.py)::(?P<name>\w+)`")
CODE = re.compile(r"^`[A-Z][A-Z_]+`")
STATUSES = {"honoured", "rejected", "known difference"}


def _rows() -> list[tuple[str, str, str, str]]:
    """(operation, field, status, detail) of every row of the committed table."""
    out, op = [], None
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            op = line[3:].strip()
            continue
        m = ROW.match(line)
        if m:
            out.append((op, m["field"], m["status"], m["detail"]))
    return out


ROWS = _rows()


@lru_cache(maxsize=None)
def _functions(file: str) -> dict[str, str]:
    """Test function name -> its source, for one test file."""
    path = REPO / file
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    return {node.name: ast.get_source_segment(source, node) or ""
            for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_the_table_covers_every_implemented_operation() -> None:
    from simulator import create_app

    ops = {op for op, *_ in ROWS}
    headings = {line[3:].strip() for line in TABLE.read_text().splitlines()
                if line.startswith("## ")}
    square_routes = [p for p in create_app().openapi()["paths"] if not p.startswith("/_sim")]
    # One heading per Square operation the simulator serves (some have no fields).
    assert len(headings) == sum(len(m) for p, m in create_app().openapi()["paths"].items()
                                if p in square_routes)
    assert ops <= headings
    assert len(ROWS) > 150


@pytest.mark.parametrize("op,field,status,detail", ROWS, ids=[f"{r[0]}.{r[1]}" for r in ROWS])
def test_every_field_is_marked(op: str, field: str, status: str, detail: str) -> None:
    assert status in STATUSES, f"{op} {field}: {status} - mark it in simulator/fields.py"
    if status == "honoured":
        m = TEST_ID.match(detail)
        assert m, f"{op} {field}: an honoured field names the test that covers it"
        functions = _functions(m["file"])
        assert m["name"] in functions, f"{op} {field}: {m['file']} has no {m['name']}"
        leaf = field.replace("[]", "").rsplit(".", 1)[-1]
        assert leaf in functions[m["name"]], (
            f"{op} {field}: {m['name']} never mentions `{leaf}`, so it cannot notice it ignored")
    elif status == "rejected":
        assert CODE.match(detail), f"{op} {field}: a rejected field names its error code"
    else:
        assert len(detail) > 20, f"{op} {field}: a known difference says why"


def test_marks_and_table_agree() -> None:
    """Every mark in simulator/fields.py appears in the table (no stale marks)."""
    from simulator.fields import FIELDS

    in_table = {(op, field) for op, field, *_ in ROWS}
    stale = [(op, f) for op, marks in FIELDS.items() for f in marks if (op, f) not in in_table]
    assert stale == []


@pytest.mark.skipif(not SPEC.is_file(), reason=f"Square spec not present at {SPEC}")
def test_committed_table_matches_regeneration(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_fields_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "fields.md"
    assert module.main([str(SPEC), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == TABLE.read_text(encoding="utf-8"), (
        "docs/fields.md is stale: run `python tools/gen_fields.py`")

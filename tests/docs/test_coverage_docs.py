"""docs/testing.md's rule-coverage section: its documented command runs, and what the page
says about the result (the counts it names and the JSON excerpt) is what the run produces."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from orderfsm.cli import app
from orderfsm.coverage import SEED_HINT

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "testing.md"
SNIPPET = "docs/snippets/test_testing_coverage.py"


def test_the_documented_coverage_run(tmp_path: Path) -> None:
    text = PAGE.read_text()
    assert f"python -m pytest {SNIPPET} --square-coverage\n" in text
    out = tmp_path / "coverage.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         SNIPPET, "--square-coverage", f"--square-coverage-json={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout
    assert "orderfsm rule coverage:" in proc.stdout
    assert SEED_HINT not in proc.stdout  # the snippet does try to cancel a paid order
    data = json.loads(out.read_text())

    # The JSON excerpt on the page is a part of the real file.
    (excerpt,) = re.findall(r"```json\n(.*?)\n```", text[text.index("## Rule coverage"):], re.S)
    shown = json.loads(excerpt)
    for rule, counts in shown["rules"].items():
        assert data["rules"][rule] == counts
    for resource, edges in shown["transitions"].items():
        for edge, n in edges.items():
            assert data["transitions"][resource][edge] == n
    # The counts the prose names.
    assert data["transitions"]["order"]["OPEN->OPEN"] == 3
    assert "`OPEN->OPEN` three times" in text

    result = CliRunner().invoke(app, ["coverage", str(out), "--format", "markdown"])
    assert result.exit_code == 0
    assert "| `order.cancel_after_payment` | 1 | 0 |  |" in result.output

"""The docs cannot rot: generated files are current, every code block is a snippet file, and
every snippet runs."""

from __future__ import annotations

import importlib.util
import json
import re
import runpy
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("orderfsm_docs_helpers",
                                               Path(__file__).with_name("_docs.py"))
docs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = docs
_spec.loader.exec_module(docs)

from orderfsm.reference import error_body, rules_markdown  # noqa: E402
from orderfsm.rules import CATALOG  # noqa: E402

REPO = docs.REPO
PAGES = docs.own_pages()
ALL_BLOCKS = [b for page in PAGES for b in docs.blocks(page)]
INCLUDED = sorted({b.snippet for b in ALL_BLOCKS if b.snippet})
TEST_SNIPPETS = [s for s in INCLUDED if Path(s).name.startswith("test_")]
SCRIPT_SNIPPETS = [s for s in INCLUDED
                   if s.endswith(".py") and not Path(s).name.startswith("test_")]


# ------------------------------------------------------------------------------ generated


def test_rules_md_is_generated_from_the_catalog() -> None:
    rules_md = REPO / "docs" / "rules.md"
    assert rules_md.read_text() == rules_markdown(), (
        "docs/rules.md is out of date: run `python tools/gen_docs.py`")


def test_generated_docs_are_current() -> None:
    gen = docs.load_tool("gen_docs")
    stale = [str(path.relative_to(REPO)) for path, text in gen.expected().items()
             if not path.is_file() or path.read_text() != text]
    assert stale == [], f"out of date: {stale}; run `python tools/gen_docs.py`"


def test_generator_check_mode_reports_a_stale_block(tmp_path: Path, monkeypatch) -> None:
    gen = docs.load_tool("gen_docs")
    snippet = tmp_path / "s.py"
    snippet.write_text("print('new')\n")
    page = f"<!-- snippet: {snippet} -->\n```python\nprint('old')\n```\n"
    assert gen.render(page) == f"<!-- snippet: {snippet} -->\n```python\nprint('new')\n```\n"
    table = gen.render("<!-- generated: variants -->\nold\n<!-- end generated -->")
    assert "| `cancel_after_payment` |" in table and "old" not in table
    with pytest.raises(KeyError):
        gen.render("<!-- generated: nothing -->\n<!-- end generated -->")


def test_generated_tables_list_every_route_and_variant() -> None:
    from orderfsm.rules import VARIANTS
    from simulator import create_app

    page = (REPO / "docs" / "simulator.md").read_text()
    for path, operations in create_app().openapi()["paths"].items():
        for method in operations:
            assert f"| `{method.upper()}` | `{path}` |" in page
    for name, (rule, variant) in VARIANTS.items():
        assert f"| `{name}` | [`{rule.id}`]" in page
        assert f"`{variant.default}` (default)" in page


# ------------------------------------------------------------------------------ code blocks


def test_the_pages_exist() -> None:
    for page in ("README.md", "docs/index.md", "docs/testing.md", "docs/simulator.md",
                 "docs/cancelling.md"):
        assert page in PAGES


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.lang == "python"], ids=str)
def test_every_python_block_is_a_snippet_file(block) -> None:
    assert block.snippet is not None, f"{block}: put the code in docs/snippets/ and include it"
    path = REPO / block.snippet
    assert path.is_file(), f"{block}: {block.snippet} does not exist"
    assert block.body == path.read_text(), f"{block}: differs from {block.snippet}"


def test_every_snippet_file_is_used_by_a_page() -> None:
    texts = "".join(p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")])
    orphans = [p.name for p in sorted(docs.SNIPPETS.glob("*.py"))
               if f"docs/snippets/{p.name}" not in texts]
    assert orphans == [], "snippet files no page includes"


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if b.lang == "json"], ids=str)
def test_json_blocks_are_exact_error_bodies(block) -> None:
    body = json.loads(block.body)
    if "errors" in body:
        assert body in [error_body(r) for r in CATALOG.values()], f"{block}: not a catalog error"


def test_only_known_block_languages() -> None:
    assert {b.lang for b in ALL_BLOCKS} <= {"python", "bash", "json"}


def test_readme_keeps_the_two_setup_commands_verbatim() -> None:
    lines = docs.shell_lines("README.md")
    assert "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && orderfsm serve" \
        in lines
    assert ("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && "
            "python -m pytest -q") in lines


def test_readme_example_is_about_ten_lines() -> None:
    (block,) = [b for b in docs.blocks("README.md") if b.lang == "python"]
    assert block.snippet == "docs/snippets/test_readme.py"
    assert len(block.body.splitlines()) <= 12


# ------------------------------------------------------------------------------ running them


def test_test_snippets_pass(tmp_path: Path) -> None:
    """Every included test_*.py snippet, in one pytest run, as a user would run them."""
    assert len(TEST_SNIPPETS) >= 5
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junitxml={report}", *TEST_SNIPPETS],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = ET.parse(report).getroot().iter("testcase")
    per_file: dict[str, int] = {}
    for case in cases:
        assert not list(case), f"{case.get('name')}: {ET.tostring(case, encoding='unicode')}"
        per_file[case.get("classname").rsplit(".", 1)[-1]] = \
            per_file.get(case.get("classname").rsplit(".", 1)[-1], 0) + 1
    assert sorted(per_file) == sorted(Path(s).stem for s in TEST_SNIPPETS)


@pytest.mark.parametrize("snippet", SCRIPT_SNIPPETS)
def test_script_snippets_run(snippet: str, server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SQUARE_BASE_URL", server.base_url)
    runpy.run_path(str(REPO / snippet), run_name="__main__")
    assert capsys.readouterr().out.strip(), f"{snippet} printed nothing"


def test_quickstart_talks_to_the_given_server(server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SQUARE_BASE_URL", server.base_url)
    runpy.run_path(str(REPO / "docs" / "snippets" / "quickstart.py"), run_name="__main__")
    order_id, state, total = capsys.readouterr().out.split()
    engine = server.app.state.store.merchants["sandbox-token"].engine
    assert engine.orders[order_id]["state"] == state == "OPEN"
    assert total == "900"


def test_quickstart_defaults_to_what_serve_listens_on() -> None:
    import typer.main

    from orderfsm.cli import app

    params = {p.name: p.default for p in typer.main.get_command(app).commands["serve"].params}
    assert docs.DOC_URL == f"http://{params['host']}:{params['port']}"
    text = (REPO / "docs" / "snippets" / "quickstart.py").read_text()
    assert f'"{docs.DOC_URL}"' in text


# ------------------------------------------------------------------------------ links


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, spaces to dashes, other punctuation dropped."""
    text = heading.strip().lower().replace(" ", "-")
    return "".join(ch for ch in text if ch.isalnum() or ch in "-_")


def _anchors(path: Path) -> set[str]:
    text = docs.FENCE_RE.sub("", path.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


LINK_RE = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page: str) -> None:
    source = REPO / page
    text = docs.FENCE_RE.sub("", source.read_text())
    broken = []
    for m in LINK_RE.finditer(text):
        target = m["target"]
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        dest = (source.parent / file).resolve() if file else source
        if not dest.is_file():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert broken == []

"""Diagrams are generated from the lifecycle tables: every edge of every table is drawn."""

from __future__ import annotations

import re

import pytest

from orderfsm.diagrams import (
    DOT_START,
    FORMATS,
    edges,
    rejection_label,
    render,
    to_dot,
    to_mermaid,
    transition_label,
)
from orderfsm.lifecycles import LIFECYCLES, Creation, Lifecycle, Transition

NAMES = sorted(LIFECYCLES)

MERMAID_EDGE = re.compile(r"^    (\[\*\]|\w+) --> (\[\*\]|\w+)(?: : (.+))?$")
DOT_EDGE = re.compile(r'^    ("(?:[^"\\]|\\.)*") -> ("(?:[^"\\]|\\.)*")( \[(.*)\])?;$')
DOT_NODE = re.compile(r'^    ("(?:[^"\\]|\\.)*")( \[(.*)\])?;$')
DOT_ATTR = re.compile(r'\w+=(?:"(?:[^"\\]|\\.)*"|[\w.]+)')


def _mermaid_edges(text: str) -> list[tuple[str, str, str | None]]:
    out = []
    for line in text.splitlines():
        if "-->" in line:
            m = MERMAID_EDGE.match(line)
            assert m, f"malformed mermaid edge: {line!r}"
            out.append(m.groups())
    return out


def _dot_unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _dot_edges(text: str) -> list[tuple[str, str, dict[str, str]]]:
    out = []
    for line in text.splitlines():
        if "->" not in line:
            continue
        m = DOT_EDGE.match(line)
        assert m, f"malformed DOT edge: {line!r}"
        attrs = {}
        if m.group(4):
            for pair in DOT_ATTR.findall(m.group(4)):
                key, _, value = pair.partition("=")
                attrs[key] = _dot_unquote(value) if value.startswith('"') else value
        out.append((_dot_unquote(m.group(1)), _dot_unquote(m.group(2)), attrs))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_mermaid_has_every_creation_and_transition(name: str) -> None:
    lc = LIFECYCLES[name]
    drawn = _mermaid_edges(to_mermaid(lc))
    for c in lc.creations:
        assert ("[*]", c.dest, c.label) in drawn
    for t in lc.transitions:
        for src in t.source:
            dest = src if t.dest is None else t.dest
            assert (src, dest, transition_label(t)) in drawn
            for guard in t.guards:
                assert guard in transition_label(t)


@pytest.mark.parametrize("name", NAMES)
def test_dot_has_every_creation_and_transition(name: str) -> None:
    lc = LIFECYCLES[name]
    drawn = [(s, d, a.get("label")) for s, d, a in _dot_edges(to_dot(lc))]
    for c in lc.creations:
        assert (DOT_START, c.dest, c.label) in drawn
    for t in lc.transitions:
        for src in t.source:
            dest = src if t.dest is None else t.dest
            assert (src, dest, transition_label(t)) in drawn


@pytest.mark.parametrize("name", NAMES)
def test_edge_count_matches_table(name: str) -> None:
    lc = LIFECYCLES[name]
    expected = len(lc.creations) + sum(len(t.source) for t in lc.transitions)
    assert len(edges(lc)) == expected
    assert len(_dot_edges(to_dot(lc))) == expected
    assert len(_mermaid_edges(to_mermaid(lc))) == expected + len(lc.terminal)


@pytest.mark.parametrize("name", NAMES)
def test_terminal_states_marked(name: str) -> None:
    lc = LIFECYCLES[name]
    mermaid = to_mermaid(lc)
    dot = to_dot(lc)
    for state in lc.states:
        to_end = f"    {state} --> [*]" in mermaid.splitlines()
        double = f'    "{state}" [shape="doublecircle"];' in dot.splitlines()
        assert to_end == (state in lc.terminal)
        assert double == (state in lc.terminal)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rejections", [False, True])
def test_dot_is_structurally_valid(name: str, rejections: bool) -> None:
    dot = to_dot(name, include_rejections=rejections)
    lines = dot.splitlines()
    assert lines[0] == f'digraph "{name}" {{'
    assert lines[-1] == "}"
    # Braces balance outside quoted strings.
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', dot)
    assert unquoted.count("{") == unquoted.count("}") == 1
    assert unquoted.count("[") == unquoted.count("]")
    states = set(LIFECYCLES[name].states) | {DOT_START}
    for line in lines[1:-1]:
        assert line.endswith(";"), line
        if "->" in line:
            continue  # checked by _dot_edges below
        m = DOT_NODE.match(line)
        if m:
            assert _dot_unquote(m.group(1)) in states
        else:
            assert re.match(r"^    (rankdir=\w+|(node|edge) \[.*\]);$", line), line
    for src, dest, _ in _dot_edges(dot):
        assert src in states and dest in states


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rejections", [False, True])
def test_mermaid_labels_have_no_second_colon(name: str, rejections: bool) -> None:
    text = to_mermaid(name, include_rejections=rejections)
    assert text.startswith("stateDiagram-v2\n")
    for _, _, label in _mermaid_edges(text):
        if label is not None:
            assert ":" not in label and ";" not in label


def test_mermaid_escapes_colons_and_semicolons() -> None:
    lc = Lifecycle(
        "demo",
        states=("A", "B"),
        terminal=("B",),
        creations=(Creation("Create: with colon; and semicolon", "A"),),
        transitions=(Transition("go", ("A",), "B"),),
        rejections=(),
        guards={},
    )
    text = to_mermaid(lc)
    line = next(ln for ln in text.splitlines() if ln.startswith("    [*] --> A"))
    assert line.count(":") == 1
    assert line.endswith(": Create#58; with colon#59; and semicolon")
    assert 'label="Create: with colon; and semicolon"' in to_dot(lc)


@pytest.mark.parametrize("name", NAMES)
def test_rejections_only_when_asked(name: str) -> None:
    lc = LIFECYCLES[name]
    plain_dot, plain_mmd = to_dot(lc), to_mermaid(lc)
    assert "dashed" not in plain_dot and "✗" not in plain_mmd
    dot = to_dot(lc, include_rejections=True)
    mmd = to_mermaid(lc, include_rejections=True)
    dashed = [(s, d, a) for s, d, a in _dot_edges(dot) if a.get("style") == "dashed"]
    assert len(dashed) == sum(len(r.source) for r in lc.rejections)
    dashed_edges = [(s, d, a["label"]) for s, d, a in dashed]
    mermaid_edges = _mermaid_edges(mmd)
    for r in lc.rejections:
        assert r.rule in rejection_label(r)
        for src in r.source:
            assert (src, src, rejection_label(r)) in dashed_edges
            assert (src, src, rejection_label(r)) in mermaid_edges


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_render_dispatches(name: str, fmt: str) -> None:
    expected = {"mermaid": to_mermaid, "dot": to_dot}[fmt](LIFECYCLES[name])
    assert render(name, fmt) == expected


def test_render_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown lifecycle"):
        render("invoice", "mermaid")
    with pytest.raises(ValueError, match="unknown diagram format"):
        render("order", "svg")

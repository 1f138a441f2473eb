"""Lifecycle diagrams (Mermaid ``stateDiagram-v2`` and Graphviz DOT), drawn from the tables only.

Both renderers walk the same edge list (:func:`edges`):

* a start node with one edge per creation, labelled with the creation label;
* one edge per (transition, source), labelled ``trigger [guard rule ids]``; an internal
  transition (``dest is None``) is a self-loop;
* terminal states are marked (Mermaid: an edge to ``[*]``; DOT: ``doublecircle``);
* with ``include_rejections=True``, one self-loop per (rejection, source) labelled
  ``✗ triggers [rule]``. DOT draws these dashed; Mermaid state diagrams cannot dash an
  edge, so there the ``✗`` prefix is the only mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .lifecycles import LIFECYCLES, Lifecycle, Rejection, Transition

__all__ = [
    "Edge",
    "FORMATS",
    "edges",
    "transition_label",
    "rejection_label",
    "to_mermaid",
    "to_dot",
    "render",
]

FORMATS = ("mermaid", "dot")
REJECTION_MARK = "✗"
DOT_START = "__start__"

EdgeKind = Literal["creation", "transition", "internal", "rejection"]


@dataclass(frozen=True, slots=True)
class Edge:
    """One drawn edge. ``source`` None is the start node."""

    source: str | None
    dest: str
    label: str
    kind: EdgeKind
    note: str = ""


def transition_label(t: Transition) -> str:
    """``trigger`` plus its guard rule ids in brackets, e.g. ``cancel [a.b, c.d]``."""
    return f"{t.trigger} [{', '.join(t.guards)}]" if t.guards else t.trigger


def rejection_label(r: Rejection) -> str:
    """``✗ trig1/trig2 [rule]``; a rejection narrowed by a predicate says so."""
    cond = " (conditional)" if r.when is not None else ""
    return f"{REJECTION_MARK} {'/'.join(r.trigger)} [{r.rule}]{cond}"


def _resolve(lifecycle: Lifecycle | str) -> Lifecycle:
    if isinstance(lifecycle, Lifecycle):
        return lifecycle
    try:
        return LIFECYCLES[lifecycle]
    except KeyError:
        known = ", ".join(LIFECYCLES)
        raise ValueError(f"unknown lifecycle {lifecycle!r}; known: {known}") from None


def edges(lifecycle: Lifecycle | str, *, include_rejections: bool = False) -> list[Edge]:
    """Every edge of the lifecycle diagram, in table order (terminal markers excluded)."""
    lc = _resolve(lifecycle)
    out = [Edge(None, c.dest, c.label, "creation") for c in lc.creations]
    for t in lc.transitions:
        for src in t.source:
            if t.dest is None:
                out.append(Edge(src, src, transition_label(t), "internal", t.note))
            else:
                out.append(Edge(src, t.dest, transition_label(t), "transition", t.note))
    if include_rejections:
        for r in lc.rejections:
            for src in r.source:
                out.append(Edge(src, src, rejection_label(r), "rejection"))
    return out


# ----------------------------------------------------------------------------- Mermaid

_MERMAID_ESCAPES = str.maketrans({":": "#58;", ";": "#59;", "\n": " ", "\r": " "})


def _mermaid_label(text: str) -> str:
    """Make ``text`` safe after the ``:`` of a Mermaid state transition.

    The state diagram grammar ends a label at ``:``, ``;`` or a newline, so those become
    Mermaid entity codes (rendered back as the original characters).
    """
    return text.translate(_MERMAID_ESCAPES).strip()


def _mermaid_id(state: str) -> str:
    # Lifecycle states are upper-case words; anything else is reduced to a safe identifier.
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in state)


def to_mermaid(lifecycle: Lifecycle | str, *, include_rejections: bool = False) -> str:
    """Render a lifecycle as a Mermaid ``stateDiagram-v2`` (valid for GitHub rendering)."""
    lc = _resolve(lifecycle)
    lines = ["stateDiagram-v2", "    direction LR"]
    for state in lc.states:
        lid = _mermaid_id(state)
        if lid == state:
            lines.append(f"    {lid}")
        else:
            lines.append(f'    state "{_mermaid_label(state)}" as {lid}')
    for e in edges(lc, include_rejections=include_rejections):
        src = "[*]" if e.source is None else _mermaid_id(e.source)
        lines.append(f"    {src} --> {_mermaid_id(e.dest)} : {_mermaid_label(e.label)}")
    for state in lc.states:
        if state in lc.terminal:
            lines.append(f"    {_mermaid_id(state)} --> [*]")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- DOT

def _dot_quote(text: str) -> str:
    """A DOT double-quoted string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot_attrs(**attrs: str) -> str:
    body = ", ".join(f"{k}={_dot_quote(v)}" for k, v in attrs.items() if v != "")
    return f" [{body}]" if body else ""


def to_dot(lifecycle: Lifecycle | str, *, include_rejections: bool = False) -> str:
    """Render a lifecycle as a Graphviz ``digraph``; terminal states are ``doublecircle``."""
    lc = _resolve(lifecycle)
    lines = [
        f"digraph {_dot_quote(lc.name)} {{",
        "    rankdir=LR;",
        '    node [shape=circle, fontname="Helvetica", fontsize=11];',
        '    edge [fontname="Helvetica", fontsize=9];',
        f'    {_dot_quote(DOT_START)} [shape=point, width=0.2, label=""];',
    ]
    for state in lc.states:
        shape = "doublecircle" if state in lc.terminal else "circle"
        lines.append(f"    {_dot_quote(state)}{_dot_attrs(shape=shape)};")
    for e in edges(lc, include_rejections=include_rejections):
        src = DOT_START if e.source is None else e.source
        if e.kind == "rejection":
            attrs = _dot_attrs(label=e.label, style="dashed", color="firebrick",
                               fontcolor="firebrick")
        else:
            attrs = _dot_attrs(label=e.label, tooltip=e.note)
        lines.append(f"    {_dot_quote(src)} -> {_dot_quote(e.dest)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_RENDERERS = {"mermaid": to_mermaid, "dot": to_dot}


def render(name: str, fmt: str, *, include_rejections: bool = False) -> str:
    """Render the lifecycle called ``name`` in ``fmt`` (``mermaid`` or ``dot``)."""
    lc = _resolve(name)
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown diagram format {fmt!r}; known: {', '.join(FORMATS)}") from None
    return renderer(lc, include_rejections=include_rejections)

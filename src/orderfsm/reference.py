"""The rule reference: Markdown for docs/rules.md, plus helpers the CLI shares.

Everything here is derived from :data:`orderfsm.rules.CATALOG`, :data:`orderfsm.rules.SOURCES`
and the lifecycle tables; nothing is written by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .diagrams import to_mermaid
from .errors import ErrorDetail
from .lifecycles import LIFECYCLES
from .rules import CATALOG, SOURCES, Confidence, Rule

__all__ = [
    "LifecycleReference",
    "RESOURCES",
    "error_body",
    "lifecycle_references",
    "rules_markdown",
    "source_parts",
]

# Resources in catalog order (order, payment, refund, fulfillment, money, api, location).
RESOURCES: tuple[str, ...] = tuple(dict.fromkeys(r.resource for r in CATALOG.values()))

_CONFIDENCE_MEANING = {
    Confidence.CONFIRMED: "Square's spec, docs or SDK say so",
    Confidence.REPORTED: "developers saw it (forums, staff answers, third-party sandbox notes)",
    Confidence.INFERRED: "deduced; the simulator's best guess where no source settles it",
}


@dataclass(frozen=True, slots=True)
class LifecycleReference:
    """A place in a lifecycle table that names a rule: a transition guard or a rejection."""

    lifecycle: str
    kind: str  # "guard" or "rejection"
    triggers: tuple[str, ...]
    sources: tuple[str, ...]
    dest: str | None = None  # guards only; None for an internal transition
    conditional: bool = False  # rejections narrowed by a predicate

    def describe(self) -> str:
        """One line, e.g. ``order: guard of cancel (DRAFT, OPEN -> CANCELED)``."""
        src = ", ".join(self.sources)
        trig = "/".join(self.triggers)
        if self.kind == "guard":
            dest = "itself" if self.dest is None else self.dest
            return f"{self.lifecycle}: guard of {trig} ({src} -> {dest})"
        cond = ", when its condition holds" if self.conditional else ""
        return f"{self.lifecycle}: rejects {trig} from {src}{cond}"


def lifecycle_references(rule_id: str) -> list[LifecycleReference]:
    """Every transition guard and rejection in the lifecycle tables that names ``rule_id``."""
    refs: list[LifecycleReference] = []
    for name, lc in LIFECYCLES.items():
        for t in lc.transitions:
            if rule_id in t.guards:
                refs.append(LifecycleReference(name, "guard", (t.trigger,), t.source, t.dest))
        for r in lc.rejections:
            if r.rule == rule_id:
                refs.append(LifecycleReference(name, "rejection", r.trigger, r.source,
                                               conditional=r.when is not None))
    return refs


def error_body(rule: Rule) -> dict[str, Any] | None:
    """The JSON body Square answers with for ``rule`` (placeholders left as written)."""
    if rule.error is None:
        return None
    e = rule.error
    return {"errors": [ErrorDetail(e.category, e.code, e.detail, e.field).to_json()]}


def source_parts(key: str) -> tuple[str | None, str]:
    """Split a SOURCES entry into (url or None, remark). Unknown keys are returned as remark."""
    text = SOURCES.get(key, key)
    if text.startswith(("http://", "https://")):
        url, _, rest = text.partition(" ")
        return url, rest.strip()
    return None, text


def _source_md(key: str) -> str:
    url, remark = source_parts(key)
    if url is None:
        return f"{key}: {remark}"
    return f"[{key}]({url})" + (f" {remark}" if remark else "")


def _source_order(key: str) -> tuple[int, int, str]:
    # Square's own pages (S) first, then forums (F), then the rest; numerically within each.
    rank = {"S": 0, "F": 1}.get(key[:1], 2)
    return rank, int(key[1:]) if key[1:].isdigit() else 0, key


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(rule_id: str) -> str:
    # GitHub heading anchors: lower case, punctuation other than - and _ dropped.
    return "".join(ch for ch in rule_id.lower() if ch.isalnum() or ch in "-_")


def _rule_md(rule: Rule) -> list[str]:
    out = [f"#### `{rule.id}`", "", rule.statement, ""]
    out.append(f"- **Confidence:** {rule.confidence}")
    out.append("- **Sources:** " + "; ".join(_source_md(s) for s in rule.sources))
    refs = lifecycle_references(rule.id)
    if refs:
        out.append("- **Lifecycles:** " + "; ".join(r.describe() for r in refs))
    if rule.example:
        out.append(f"- **Example:** {rule.example}")
    out.append("")
    body = error_body(rule)
    if body is not None and rule.error is not None:
        out += [f"**Error:** HTTP {rule.error.status}, wording {rule.error.wording}", "",
                "```json", json.dumps(body, indent=2, ensure_ascii=False), "```", ""]
    if rule.variant is not None:
        v = rule.variant
        out += [f"**Variant** `{v.name}` (switch with `--variant {v.name}=VALUE`):", "",
                "| value | meaning |", "| --- | --- |"]
        for value, meaning in v.values.items():
            mark = " (default)" if value == v.default else ""
            out.append(f"| `{value}`{mark} | {_cell(meaning)} |")
        out.append("")
    return out


def rules_markdown(resource: str | None = None, *, include_lifecycles: bool = True) -> str:
    """The rule reference as Markdown: lifecycle diagrams, then the rules grouped by resource.

    ``resource`` narrows it to one resource (and that resource's lifecycle, if it has one).
    """
    resources = RESOURCES if resource is None else (resource,)
    if resource is not None and resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}")
    lines = [
        "# orderfsm rule reference",
        "",
        "<!-- Generated by `orderfsm rules --format markdown`; do not edit by hand. -->",
        "",
        "Each rule has an id, a statement, its sources, a confidence and, when it rejects a "
        "request, the exact error body Square returns (`{placeholders}` are filled per request). "
        "Rules the sources disagree on carry a variant, chosen per server with "
        "`--variant NAME=VALUE`.",
        "",
        "| confidence | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| {c} | {m} |" for c, m in _CONFIDENCE_MEANING.items()]
    lines.append("")
    lifecycles = [n for n in LIFECYCLES if resource is None or n == resource]
    if include_lifecycles and lifecycles:
        lines += ["## Lifecycles", "",
                  "Edges are labelled `trigger [guard rule ids]`; `[*]` on the left is creation, "
                  "on the right a terminal state.", ""]
        for name in lifecycles:
            lines += [f"### {name}", "", "```mermaid", to_mermaid(name).rstrip("\n"), "```", ""]
    lines += ["## Rules", ""]
    for res in resources:
        rules = [r for r in CATALOG.values() if r.resource == res]
        lines += [f"### Resource `{res}`", ""]
        lines += [f"- [`{r.id}`](#{_anchor(r.id)}) ({r.confidence})" for r in rules]
        lines.append("")
        for r in rules:
            lines += _rule_md(r)
    keys = set(SOURCES) if resource is None else {
        s for r in CATALOG.values() if r.resource == resource for s in r.sources}
    used = sorted(keys, key=_source_order)
    lines += ["## Sources", ""]
    lines += [f"- {_source_md(k)}" for k in used]
    return "\n".join(lines).rstrip("\n") + "\n"

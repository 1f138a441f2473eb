"""Rule coverage: which catalog rules and lifecycle transitions a test run exercised.

Two counts per rule:

* **triggered**: a request was rejected with an error naming the rule (the simulator counts
  these as it answers);
* **satisfied**: a lifecycle table checked the rule and let the command through. When a command
  fires a trigger and commits, every guard of the transition it took and every rejection the
  table lists for that trigger counts once. Rules the engine checks outside the tables (request
  validation, amounts, refund limits) can only be seen when they reject.

Transitions count per resource as ``"SOURCE->TARGET"`` (an internal transition is
``"STATE->STATE"``), from the lifecycle tables, once per committed command that took them.

The JSON form is exactly::

    {"rules": {RULE_ID: {"triggered": N, "satisfied": N}},
     "transitions": {RESOURCE: {"SOURCE->TARGET": N}}}
"""

from __future__ import annotations

import html
import json
from typing import Any, Iterable, Mapping

from .lifecycles import LIFECYCLES, Lifecycle
from .rules import CATALOG

__all__ = [
    "Coverage",
    "Observer",
    "SEED_RULE",
    "FORMATS",
    "table_checked_rules",
    "render",
    "load",
]

SEED_RULE = "order.cancel_after_payment"
SEED_HINT = ("order.cancel_after_payment was never triggered: your tests never try to cancel a "
             "paid order. Square refuses that cancel; add a test that pays an order, tries to "
             "cancel it, and checks what your code does with the rejection.")
FORMATS = ("table", "markdown", "html")
ZERO_ROW = ' class="zero"'


def _edge_keys(lc: Lifecycle) -> list[str]:
    keys: list[str] = []
    for t in lc.transitions:
        for src in t.source:
            key = f"{src}->{t.dest or src}"
            if key not in keys:
                keys.append(key)
    return keys


_CHECKED: frozenset[str] | None = None


def table_checked_rules() -> frozenset[str]:
    """Rule ids that some lifecycle table checks (so they can be satisfied, not only triggered)."""
    global _CHECKED
    if _CHECKED is None:
        _CHECKED = frozenset(r for lc in LIFECYCLES.values() for r in lc.rule_ids())
    return _CHECKED


class Coverage:
    """Counters for one merchant, or the sum of many."""

    __slots__ = ("triggered", "_satisfied", "_transitions", "steps")

    def __init__(self) -> None:
        self.triggered: dict[str, int] = {}
        self._satisfied: dict[str, int] = {}
        self._transitions: dict[str, dict[str, int]] = {}
        # (lifecycle, trigger, source, target) -> count: what an Observer records per commit,
        # folded into the rule and transition counts only when they are read.
        self.steps: dict[tuple[Lifecycle, str, str, str], int] = {}

    @property
    def satisfied(self) -> dict[str, int]:
        self._fold()
        return self._satisfied

    @property
    def transitions(self) -> dict[str, dict[str, int]]:
        self._fold()
        return self._transitions

    def _fold(self) -> None:
        if not self.steps:
            return
        steps, self.steps = self.steps, {}
        for (lc, trigger, source, target), n in steps.items():
            edges = self._transitions.setdefault(lc.name, {})
            key = f"{source}->{target}"
            edges[key] = edges.get(key, 0) + n
            for rule_id in lc.checked_by(trigger, source):
                self._satisfied[rule_id] = self._satisfied.get(rule_id, 0) + n

    # ------------------------------------------------------------------ counting
    def trigger(self, rule_id: str) -> None:
        self.triggered[rule_id] = self.triggered.get(rule_id, 0) + 1

    def satisfy(self, rule_id: str) -> None:
        self._satisfied[rule_id] = self._satisfied.get(rule_id, 0) + 1

    def take(self, resource: str, source: str, target: str) -> None:
        edges = self._transitions.setdefault(resource, {})
        key = f"{source}->{target}"
        edges[key] = edges.get(key, 0) + 1

    def add(self, other: "Coverage | Mapping[str, Any]") -> "Coverage":
        """Add another coverage (or its JSON form) into this one; returns self."""
        data = other.to_json(complete=False) if isinstance(other, Coverage) else other
        for rule_id, counts in (data.get("rules") or {}).items():
            for kind, store in (("triggered", self.triggered), ("satisfied", self._satisfied)):
                n = int(counts.get(kind, 0) or 0)
                if n:
                    store[rule_id] = store.get(rule_id, 0) + n
        for resource, edges in (data.get("transitions") or {}).items():
            for key, n in edges.items():
                if n:
                    mine = self._transitions.setdefault(resource, {})
                    mine[key] = mine.get(key, 0) + int(n)
        return self

    def minus(self, base: "Coverage | Mapping[str, Any]") -> "Coverage":
        """A new coverage with ``base`` subtracted (counts since a baseline); never negative."""
        data = base.to_json(complete=False) if isinstance(base, Coverage) else base
        out = Coverage().add(self)
        for rule_id, counts in (data.get("rules") or {}).items():
            for kind, store in (("triggered", out.triggered), ("satisfied", out.satisfied)):
                if rule_id in store:
                    store[rule_id] = max(store[rule_id] - int(counts.get(kind, 0) or 0), 0)
        for resource, edges in (data.get("transitions") or {}).items():
            mine = out.transitions.get(resource, {})
            for key, n in edges.items():
                if key in mine:
                    mine[key] = max(mine[key] - int(n), 0)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Coverage":
        if not isinstance(data, Mapping) or not isinstance(data.get("rules", {}), Mapping) \
                or not isinstance(data.get("transitions", {}), Mapping):
            raise ValueError('expected {"rules": {...}, "transitions": {...}}')
        return cls().add(data)

    # ------------------------------------------------------------------ output
    def to_json(self, *, complete: bool = True) -> dict[str, Any]:
        """The JSON form. ``complete`` lists every catalog rule and every table transition,
        zeros included; otherwise only what was counted."""
        rules: dict[str, dict[str, int]] = {}
        ids = list(CATALOG) if complete else []
        ids += [r for r in (*self.triggered, *self.satisfied) if r not in ids]
        for rule_id in ids:
            if rule_id in rules:
                continue
            rules[rule_id] = {"triggered": self.triggered.get(rule_id, 0),
                              "satisfied": self.satisfied.get(rule_id, 0)}
        transitions: dict[str, dict[str, int]] = {}
        names = list(LIFECYCLES) if complete else []
        names += [n for n in self.transitions if n not in names]
        for name in names:
            counted = self.transitions.get(name, {})
            keys = _edge_keys(LIFECYCLES[name]) if complete and name in LIFECYCLES else []
            keys += [k for k in counted if k not in keys]
            transitions[name] = {k: counted.get(k, 0) for k in keys}
        return {"rules": rules, "transitions": transitions}

    def __bool__(self) -> bool:
        return bool(self.triggered or self.satisfied or self.transitions)


class Observer:
    """The engine's recording hook for one merchant: coverage counts, and each record's path
    through its lifecycle (for the inspector).

    The engine hands it the transitions a command took only when the command commits."""

    __slots__ = ("coverage", "paths", "commits", "max_paths")

    def __init__(self, coverage: Coverage | None = None, *, max_paths: int = 200_000) -> None:
        self.coverage = coverage if coverage is not None else Coverage()
        # (resource, record id) -> [(source, target, trigger, at)]
        self.paths: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {}
        self.commits = 0
        self.max_paths = max_paths

    def committed(self, taken: list[tuple[Lifecycle, dict, str, str, str]], at: str) -> None:
        self.commits += 1
        steps = self.coverage.steps
        paths = self.paths
        for lc, record, trigger, source, target in taken:
            key = (lc, trigger, source, target)
            steps[key] = steps.get(key, 0) + 1
            ident = record.get("id") or record.get("uid")
            if ident is None:
                continue
            where = (lc.name, ident)
            path = paths.get(where)
            if path is None:
                if len(paths) >= self.max_paths:
                    continue
                path = paths[where] = []
            path.append((source, target, trigger, at))

    def rejected(self, rule_id: str | None) -> None:
        if rule_id:
            self.coverage.trigger(rule_id)

    def path(self, resource: str, ident: str) -> list[dict[str, str]]:
        """The steps a record took, oldest first; empty when it never moved."""
        return [{"from": s, "to": t, "trigger": trig, "at": at}
                for s, t, trig, at in self.paths.get((resource, ident), ())]


# ============================================================================ rendering

def load(path: str) -> Coverage:
    """Read a file written by ``--square-coverage-json``."""
    with open(path, encoding="utf-8") as fh:
        return Coverage.from_json(json.load(fh))


def countable(rule_id: str) -> tuple[bool, bool]:
    """(can be triggered, can be satisfied) for a rule: it rejects something, and a lifecycle
    table checks it. A rule that does neither describes behaviour and is not counted."""
    rule = CATALOG.get(rule_id)
    return (rule is None or rule.error is not None, rule_id in table_checked_rules())


Row = tuple[str, "int | None", "int | None"]


def _rows(cov: Coverage) -> tuple[list[Row], list[tuple[str, str, int]]]:
    """Rules (id, triggered, satisfied; None where the rule cannot be counted that way) and
    transitions (resource, edge, count). Never-exercised first, behaviour-only rules last,
    otherwise catalog and table order."""
    data = cov.to_json()
    rules: list[Row] = []
    for rule_id, c in data["rules"].items():
        can_trigger, can_satisfy = countable(rule_id)
        rules.append((rule_id, c["triggered"] if can_trigger or c["triggered"] else None,
                      c["satisfied"] if can_satisfy or c["satisfied"] else None))
    rules.sort(key=_rule_rank)
    edges = [(res, key, n) for res, keys in data["transitions"].items() for key, n in keys.items()]
    edges.sort(key=lambda e: e[2] > 0)
    return rules, edges


def _rule_rank(row: Row) -> int:
    _, t, s = row
    if t is None and s is None:
        return 2
    return 1 if (t or s) else 0


def _status(t: int | None, s: int | None) -> str:
    if t is None and s is None:
        return "behaviour, not counted"
    return "" if (t or s) else "never exercised"


def hints(cov: Coverage) -> list[str]:
    if cov.triggered.get(SEED_RULE, 0) == 0:
        return [SEED_HINT]
    return []


def _summary(cov: Coverage) -> str:
    rules, edges = _rows(cov)
    counted = [r for r in rules if not (r[1] is None and r[2] is None)]
    hit_rules = sum(1 for _, t, s in counted if t or s)
    hit_edges = sum(1 for *_, n in edges if n)
    return (f"{hit_rules} of {len(counted)} rules exercised, "
            f"{hit_edges} of {len(edges)} transitions taken")


def _num(n: int | None) -> str:
    return "-" if n is None else str(n)


def to_table(cov: Coverage) -> str:
    """Plain-text table (what ``pytest --square-coverage`` prints)."""
    rules, edges = _rows(cov)
    width = max(len(r[0]) for r in rules) if rules else 10
    lines = ["orderfsm rule coverage: " + _summary(cov), ""]
    lines.append(f"{'rule':<{width}}  {'triggered':>9}  {'satisfied':>9}")
    lines.append("-" * (width + 22))
    for rule_id, t, s in rules:
        mark = _status(t, s)
        lines.append(f"{rule_id:<{width}}  {_num(t):>9}  {_num(s):>9}{'  ' + mark if mark else ''}")
    lines.append("")
    ewidth = max((len(f"{r} {k}") for r, k, _ in edges), default=10)
    lines.append(f"{'transition':<{ewidth}}  {'taken':>7}")
    lines.append("-" * (ewidth + 9))
    for res, key, n in edges:
        mark = "  never taken" if not n else ""
        lines.append(f"{res + ' ' + key:<{ewidth}}  {n:>7}{mark}")
    lines.append("")
    lines.append("'-' under satisfied: checked outside the lifecycle tables, so counted only when "
                 "it rejects; under both: the rule describes behaviour and rejects nothing.")
    for hint in hints(cov):
        lines.append("hint: " + hint)
    return "\n".join(lines) + "\n"


def to_markdown(cov: Coverage) -> str:
    rules, edges = _rows(cov)
    out = ["# Rule coverage", "", _summary(cov) + ".", ""]
    for hint in hints(cov):
        out += [f"> **Hint:** {hint}", ""]
    out += ["| rule | triggered | satisfied | |", "| --- | ---: | ---: | --- |"]
    for rule_id, t, s in rules:
        out.append(f"| `{rule_id}` | {_num(t)} | {_num(s)} | {_status(t, s)} |")
    out += ["", "| resource | transition | taken |", "| --- | --- | ---: |"]
    for res, key, n in edges:
        out.append(f"| {res} | `{key}` | {n} |")
    out += ["", "`-` under satisfied: the rule is checked outside the lifecycle tables, so it is "
                "counted only when it rejects; under both: the rule describes behaviour and "
                "rejects nothing.", ""]
    return "\n".join(out)


def to_html(cov: Coverage) -> str:
    rules, edges = _rows(cov)
    esc = html.escape
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>orderfsm rule coverage</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#1b1f24}"
        "table{border-collapse:collapse;margin:1em 0}td,th{padding:.25em .8em;border-bottom:1px "
        "solid #ddd;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}"
        "tr.zero td{background:#fff4e5}.hint{background:#fdecea;padding:.6em 1em;border-left:4px "
        "solid #c62828}code{font-size:13px}</style></head><body>",
        "<h1>Rule coverage</h1>", f"<p>{esc(_summary(cov))}.</p>",
    ]
    for hint in hints(cov):
        parts.append(f'<p class="hint">{esc(hint)}</p>')
    parts.append("<table><thead><tr><th>rule</th><th>triggered</th><th>satisfied</th><th></th>"
                 "</tr></thead><tbody>")
    for rule_id, t, s in rules:
        status = _status(t, s)
        zero = status == "never exercised"
        parts.append(f'<tr{ZERO_ROW if zero else ""}><td><code>{esc(rule_id)}</code></td>'
                     f'<td class="n">{_num(t)}</td><td class="n">{_num(s)}</td>'
                     f'<td>{esc(status)}</td></tr>')
    parts.append("</tbody></table><table><thead><tr><th>resource</th><th>transition</th>"
                 "<th>taken</th></tr></thead><tbody>")
    for res, key, n in edges:
        parts.append(f'<tr{ZERO_ROW if not n else ""}><td>{esc(res)}</td>'
                     f'<td><code>{esc(key)}</code></td><td class="n">{n}</td></tr>')
    parts.append("</tbody></table><p>- under satisfied: the rule is checked outside the "
                 "lifecycle tables, so it is counted only when it rejects; under both: the rule "
                 "describes behaviour and rejects nothing.</p></body></html>")
    return "\n".join(parts) + "\n"


def render(cov: Coverage, fmt: str = "table") -> str:
    try:
        renderer = {"table": to_table, "markdown": to_markdown, "html": to_html}[fmt]
    except KeyError:
        raise ValueError(f"unknown coverage format {fmt!r}; known: {', '.join(FORMATS)}") from None
    return renderer(cov)


def total(parts: Iterable[Coverage | Mapping[str, Any]]) -> Coverage:
    out = Coverage()
    for part in parts:
        out.add(part)
    return out

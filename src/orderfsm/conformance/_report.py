"""Results of a conformance run and of variant detection, as data, JSON and rich tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..rules import VARIANTS

__all__ = ["RuleStats", "DivergenceReport", "Report", "VariantFinding", "VariantReport"]


@dataclass(slots=True)
class RuleStats:
    """Per rule: steps compared on both sides, how many agreed, how many diverged."""

    checked: int = 0
    passed: int = 0
    diverged: int = 0

    def to_json(self) -> dict[str, int]:
        return {"checked": self.checked, "passed": self.passed, "diverged": self.diverged}


@dataclass(slots=True)
class DivergenceReport:
    rule_id: str
    attributed_by: str  # oracle | variant | server-error | field | step | none
    summary: str
    mismatches: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    snippet: str
    flaky: bool = False
    # decision: one side accepted what the other rejected; error: both rejected, with another
    # status, category, code or field; state: both accepted (or rejected) and an object differs
    kind: str = "state"
    found_after_examples: int = 0  # sequences run when it was first seen
    found_after_seconds: float = 0.0
    shrink_seconds: float = 0.0

    @property
    def headline(self) -> str:
        """The rule and what kind of difference it is, in words."""
        what = {"decision": "a different decision (accepted vs rejected)",
                "error": "a different error (status, category, code or field)",
                "state": "a different resulting state"}[self.kind]
        return f"{self.rule_id}: {what}"

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "kind": self.kind, "attributed_by": self.attributed_by,
                "summary": self.summary, "mismatches": self.mismatches, "steps": self.steps,
                "snippet": self.snippet, "flaky": self.flaky,
                "found_after_examples": self.found_after_examples,
                "found_after_seconds": round(self.found_after_seconds, 3),
                "shrink_seconds": round(self.shrink_seconds, 3)}


@dataclass(slots=True)
class Report:
    """What ``orderfsm conform`` found. ``ok`` is True when nothing diverged."""

    base_url: str
    seed: int
    examples: int  # requested
    examples_run: int  # sequences executed, including hypothesis' shrinking replays
    steps_run: int  # steps compared in sequences that agreed throughout
    stateful_step_count: int
    duration_seconds: float
    variants: dict[str, str]
    server: dict[str, Any]
    rules: dict[str, RuleStats] = field(default_factory=dict)
    divergences: list[DivergenceReport] = field(default_factory=list)
    targeted: list[str] = field(default_factory=list)  # rules the runner has steps for here
    out_of_reach: dict[str, str] = field(default_factory=dict)  # other catalog rules, and why
    search_seconds: float = 0.0  # generating and comparing, before shrinking
    shrink_replays: int = 0

    @property
    def ok(self) -> bool:
        return not self.divergences

    @property
    def unchecked(self) -> list[str]:
        """Rules the runner can reach on this server that this run never checked."""
        return [r for r in self.targeted if r not in self.rules or not self.rules[r].checked]

    @property
    def checked(self) -> list[str]:
        return sorted(r for r, s in self.rules.items() if s.checked)

    @property
    def examples_per_second(self) -> float:
        return self.examples_run / self.duration_seconds if self.duration_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "base_url": self.base_url,
            "seed": self.seed,
            "examples": self.examples,
            "examples_run": self.examples_run,
            "steps_run": self.steps_run,
            "stateful_step_count": self.stateful_step_count,
            "duration_seconds": round(self.duration_seconds, 3),
            "search_seconds": round(self.search_seconds, 3),
            "shrink_replays": self.shrink_replays,
            "examples_per_second": round(self.examples_per_second, 2),
            "variants": dict(self.variants),
            "server": dict(self.server),
            "rules": [{"rule": rid, **stats.to_json()}
                      for rid, stats in sorted(self.rules.items())],
            "unchecked": self.unchecked,
            "out_of_reach": dict(self.out_of_reach),
            "divergences": [d.to_json() for d in self.divergences],
        }

    def render(self, console: Console) -> None:
        table = Table(title="conformance by rule", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("rule", style="bold cyan", no_wrap=True)
        table.add_column("checks", justify="right")
        table.add_column("passed", justify="right")
        table.add_column("diverged", justify="right")
        for rid, s in sorted(self.rules.items()):
            style = "red" if s.diverged else None
            table.add_row(rid, str(s.checked), str(s.passed), str(s.diverged), style=style)
        console.print(table)
        clock = "clock rules on" if self.server.get("clock") else "no control API: clock rules off"
        console.print(Text(
            f"{self.examples_run} sequences (examples={self.examples}, up to "
            f"{self.stateful_step_count} steps, seed={self.seed}) against {self.base_url} in "
            f"{self.duration_seconds:.1f}s; {clock}"))
        changed = {k: v for k, v in self.variants.items()
                   if k in VARIANTS and v != VARIANTS[k][1].default}
        if changed:
            console.print(Text("oracle variants: "
                               + ", ".join(f"{k}={v}" for k, v in changed.items())))
        reached = len(self.targeted) - len(self.unchecked)
        console.print(Text(f"{reached} of the {len(self.targeted)} rules the runner can reach on "
                           f"this server were checked; {len(self.out_of_reach)} catalog rules "
                           "are out of its reach (--report json lists them, with the reason)"))
        if self.unchecked:
            console.print(Text("zero checks: " + ", ".join(self.unchecked), style="yellow"),
                          soft_wrap=True)
        if self.ok:
            console.print(Text("no divergence", style="bold green"))
            return
        console.print(Text(f"{len(self.divergences)} divergence(s)", style="bold red"))
        for d in self.divergences:
            console.print(Text(f"\n{d.headline}", style="bold red")
                          + Text(f"  ({d.attributed_by}{', flaky' if d.flaky else ''}): "
                                 f"{d.summary}"))
            console.print(Text("minimal sequence, as a script (python snippet.py):", style="dim"))
            console.print(d.snippet, markup=False, highlight=False, soft_wrap=True)


@dataclass(slots=True)
class VariantFinding:
    variant: str
    rule_id: str
    default: str
    detected: str | None  # None: no value explains the server (or several do)
    matches: list[str]
    differences: dict[str, str]  # value -> first way the oracle with that value disagrees
    steps: list[str]

    @property
    def status(self) -> str:
        if len(self.matches) == 1:
            return "detected"
        return "ambiguous" if self.matches else "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, "rule": self.rule_id, "default": self.default,
                "detected": self.detected, "status": self.status, "matches": self.matches,
                "differences": self.differences, "probe": self.steps}


@dataclass(slots=True)
class VariantReport:
    base_url: str
    findings: list[VariantFinding]

    @property
    def ok(self) -> bool:
        return all(f.status == "detected" for f in self.findings)

    @property
    def variants(self) -> dict[str, str]:
        """The detected values, ready for ``run(variants=...)`` or ``--variant``."""
        return {f.variant: f.detected for f in self.findings if f.detected is not None}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "base_url": self.base_url, "variants": self.variants,
                "findings": [f.to_json() for f in self.findings]}

    def render(self, console: Console) -> None:
        table = Table(title="variants the server behaves like", title_justify="left",
                      box=box.SIMPLE_HEAD)
        table.add_column("variant / rule", no_wrap=True)
        table.add_column("server", no_wrap=True)
        table.add_column("default", overflow="fold")
        notes = []
        for f in self.findings:
            if f.status == "detected":
                style = "green" if f.detected == f.default else "yellow"
                value = Text(f.detected or "", style=style)
            else:
                value = Text(f.status, style="bold red")
                why = "; ".join(f"{v}: {d}" for v, d in f.differences.items() if v not in f.matches)
                notes.append(f"{f.variant}: " + (f"matches {', '.join(f.matches)}" if f.matches
                                                  else why))
            table.add_row(Text(f.variant, style="bold cyan") + Text(f"\n{f.rule_id}", style="dim"),
                          value, f.default)
        console.print(table)
        for note in notes:
            console.print(Text(note, style="red"), soft_wrap=True)
        flags = [f"--variant {f.variant}={f.detected}" for f in self.findings
                 if f.detected is not None and f.detected != f.default]
        if flags:
            console.print(Text("conform against this server with: " + " ".join(flags)),
                          soft_wrap=True)

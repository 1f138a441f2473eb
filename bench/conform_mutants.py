"""Mutation score of the conformance runner, and what each catch costs.

Runs ``orderfsm.conformance.run`` at its default settings (100 examples, 12 steps, a few
seconds of shrinking at most) against the simulator with each mutant of
tests/conformance/mutants/mutants.py in place, one at a time, in-process, for one or more
seeds. A mutant is *caught* when the run reports a divergence, and *blamed right* when the
first divergence names the mutant's rule with one of the kinds of difference it declares.

For every mutant and seed the table shows the sequences run until the divergence was first seen,
the seconds until then (generation and comparison), the seconds spent shrinking it and the
length of the shrunk reproducer; then the mutation score (caught / mutants, blamed right /
mutants) and seconds per catch. A clean run (no mutant) is timed too: wall and CPU seconds,
the rules it checked, and the share of the catalog that is.

Run: ``python bench/conform_mutants.py`` (``--seeds 1 2 3`` for several seeds,
``--only NAME`` for some mutants, ``--json`` for machine-readable output).
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory comes first on sys.path, and bench/http.py would
# shadow the standard library's ``http`` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _mutants() -> Any:
    name = "orderfsm_conformance_mutants"
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "tests" / "conformance" / "mutants" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run(app: Any, seed: int) -> tuple[Any, float, float]:
    from orderfsm.conformance import asgi_client, run

    wall, cpu = time.perf_counter(), time.process_time()
    with asgi_client(app) as http:
        report = run("http://testserver", "bench-token", httpx_client=http, seed=seed)
    return report, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--only", nargs="*", default=None, help="mutant names")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from orderfsm.rules import CATALOG

    M = _mutants()
    mutants = [m for m in M.MUTANTS if not args.only or m.name in args.only]
    rows: list[dict[str, Any]] = []
    clean: list[dict[str, Any]] = []
    for seed in args.seeds:
        app, patches = M.mutated_app(None)
        with patches:
            report, wall, cpu = _run(app, seed)
        clean.append({"seed": seed, "ok": report.ok, "wall_s": round(wall, 2),
                      "cpu_s": round(cpu, 2), "examples_run": report.examples_run,
                      "steps_run": report.steps_run, "rules_checked": len(report.checked),
                      "catalog": len(CATALOG), "unchecked": report.unchecked})
        for m in mutants:
            app, patches = M.mutated_app(m.patch)
            with patches:
                report, wall, cpu = _run(app, seed)
            row: dict[str, Any] = {"mutant": m.name, "seed": seed, "rule": m.rule,
                                   "caught": not report.ok, "wall_s": round(wall, 2),
                                   "cpu_s": round(cpu, 2)}
            if not report.ok:
                d = report.divergences[0]
                row.update(blamed=d.rule_id, kind=d.kind,
                           right=d.rule_id == m.rule and d.kind in m.kind.split(),
                           examples=d.found_after_examples,
                           found_s=round(d.found_after_seconds, 2),
                           shrink_s=round(d.shrink_seconds, 2), steps=len(d.steps))
            rows.append(row)
            if not args.json:
                print(f"  seed {seed} {m.name:36} "
                      + (f"caught after {row['examples']:3} sequences, {row['found_s']:5.1f}s; "
                         f"shrunk to {row['steps']} steps in {row['shrink_s']:.1f}s; "
                         f"{row['blamed']} ({row['kind']}){'' if row['right'] else '  WRONG RULE'}"
                         if row["caught"] else "MISSED"), flush=True)

    caught = [r for r in rows if r["caught"]]
    right = [r for r in caught if r["right"]]
    summary = {
        "mutants": len(mutants), "seeds": args.seeds, "runs": len(rows),
        "caught": len(caught), "blamed_right": len(right),
        "mutation_score": round(len(caught) / len(rows), 3) if rows else None,
        "blame_score": round(len(right) / len(rows), 3) if rows else None,
        "seconds_per_catch": round(sum(r["wall_s"] for r in caught) / len(caught), 2)
        if caught else None,
        "cpu_seconds_per_catch": round(sum(r["cpu_s"] for r in caught) / len(caught), 2)
        if caught else None,
        "median_examples_to_catch": sorted(r["examples"] for r in caught)[len(caught) // 2]
        if caught else None,
        "max_shrink_seconds": max((r["shrink_s"] for r in caught), default=None),
        "clean_runs": clean,
    }
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2))
        return
    print()
    print(f"mutation score: {len(caught)}/{len(rows)} caught, {len(right)}/{len(rows)} "
          f"blamed on the right rule and kind ({len(mutants)} mutants x {len(args.seeds)} seeds)")
    print(f"per catch: {summary['seconds_per_catch']} s wall, "
          f"{summary['cpu_seconds_per_catch']} s CPU (run start to report, shrinking "
          f"included); median {summary['median_examples_to_catch']} sequences to the first "
          f"divergence; longest shrink {summary['max_shrink_seconds']} s")
    for c in clean:
        print(f"clean run, seed {c['seed']}: {'no divergence' if c['ok'] else 'DIVERGED'} in "
              f"{c['wall_s']} s wall / {c['cpu_s']} s CPU, {c['examples_run']} sequences, "
              f"{c['steps_run']} steps; {c['rules_checked']} of {c['catalog']} catalog rules "
              f"checked ({c['rules_checked'] / c['catalog']:.0%}); zero checks: "
              f"{', '.join(c['unchecked']) or 'none'}")


if __name__ == "__main__":
    main()

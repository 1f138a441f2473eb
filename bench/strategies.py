"""Time the cancellation-strategy state machine (tests/orderfsm/test_strategies_machine.py).

    python bench/strategies.py                       # 1,000 examples, default variants
    python bench/strategies.py --variant never       # cancel_after_payment=never
    python bench/strategies.py --transport testclient  # starlette's TestClient instead
    python bench/strategies.py --examples 200 --profile

Runs the same machine the test suite runs, in-process, for a fixed number of examples (no
example database, no shrinking beyond what a passing run does), and prints wall time, CPU time,
HTTP calls and executor runs. Target: 1,000 examples in under 60 s. The machine is shared, so
the load average at the start and end is printed too: wall time above CPU time means the
process waited for a core.
"""

from __future__ import annotations

import argparse
import cProfile
import collections
import importlib.util
import io
import os
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# bench/ holds http.py, which would shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

MACHINE = REPO / "tests" / "orderfsm" / "test_strategies_machine.py"
TARGET_SECONDS = 60.0


def load_machine(transport: str):
    os.environ["ORDERFSM_STRATEGY_TRANSPORT"] = transport
    spec = importlib.util.spec_from_file_location("strategies_machine_bench", MACHINE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--variant", choices=("default", "never"), default="default")
    ap.add_argument("--transport", choices=("inthread", "testclient"), default="inthread")
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    ap.add_argument("--cache-sdk-type-hints", action="store_true",
                    help="memoize the type-hint lookups the SDK repeats while parsing every "
                         "response (orderfsm.simulator.cache_sdk_type_hints; the test suite "
                         "does; changes nothing but speed)")
    args = ap.parse_args(argv)

    import warnings

    warnings.simplefilter("ignore")
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    import orderfsm.strategies as strategies

    # The test module caches the SDK's type hints unless told not to; the flag decides here.
    os.environ["ORDERFSM_CACHE_SDK_TYPE_HINTS"] = "1" if args.cache_sdk_type_hints else "0"
    machine = load_machine(args.transport)
    cls = machine.DefaultVariants if args.variant == "default" else machine.NeverCancelAfterPayment

    calls: collections.Counter[str] = collections.Counter()
    runs = [0]
    real_cancel = strategies.cancel_order

    def counted_cancel(*a, **k):
        runs[0] += 1
        return real_cancel(*a, **k)

    machine.cancel_order = counted_cancel
    if args.transport == "inthread":
        real_handle = machine.InThreadASGI.handle_request

        def counted_handle(self, request):
            calls[request.method] += 1
            return real_handle(self, request)

        machine.InThreadASGI.handle_request = counted_handle

    config = settings(max_examples=args.examples, stateful_step_count=machine.SETTINGS.stateful_step_count,
                      deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
    load_before = os.getloadavg()
    profiler = cProfile.Profile() if args.profile else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    run_state_machine_as_test(cls, settings=config)
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    load_after = os.getloadavg()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"strategy machine: {args.examples} examples, variant {args.variant}, "
          f"transport {args.transport}, {machine.SETTINGS.stateful_step_count} steps max"
          + (", SDK type hints cached" if args.cache_sdk_type_hints else ""))
    per_1000 = wall * 1000 / args.examples
    print(f"  wall {wall:.1f} s ({wall / args.examples * 1000:.0f} ms/example), "
          f"cpu {cpu:.1f} s ({cpu / args.examples * 1000:.0f} ms/example)")
    print(f"  1,000 examples: {per_1000:.0f} s wall, {cpu * 1000 / args.examples:.0f} s cpu; "
          f"target < {TARGET_SECONDS:.0f} s wall: {'met' if per_1000 < TARGET_SECONDS else 'NOT met'}")
    print(f"  cancel_order runs: {runs[0]} ({runs[0] / args.examples:.1f}/example)")
    if calls:
        total = sum(calls.values())
        detail = ", ".join(f"{m} {n}" for m, n in calls.most_common())
        print(f"  HTTP calls: {total} ({total / args.examples:.1f}/example: {detail})")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())

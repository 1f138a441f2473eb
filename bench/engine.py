"""Engine micro-benchmarks.

    python bench/engine.py            # the table
    python bench/engine.py --observer # the same with a coverage observer on every engine, as
                                      # the simulator runs them (pytest --square-coverage, inspector)
    python bench/engine.py --profile  # plus cProfile of both engine commands and a tracemalloc
                                      # breakdown of where an order's memory goes

(a) Time of one engine command, against a bare ``transitions`` trigger on a plain object whose
    Machine was built with ``model=obj`` (two states, triggered back and forth):
      * update_order moving a PICKUP fulfillment PROPOSED -> RESERVED
      * complete_payment of an APPROVED payment
    Target: engine command <= 2x the bare trigger.
(b) Memory the engine keeps per order (one line item, one PICKUP fulfillment): 10,000 orders
    created in one Engine, measured with tracemalloc. Target: < 4 KiB.

Every timing is the median of several runs; each run times many repetitions with
time.perf_counter.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import time
import tracemalloc
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from transitions import Machine  # noqa: E402

from orderfsm.clock import ManualClock  # noqa: E402
from orderfsm.coverage import Observer  # noqa: E402
from orderfsm.engine import Engine  # noqa: E402

RUNS = 7
N_COMMANDS = 2_000  # engine commands per run
N_TRIGGERS = 100_000  # bare triggers per run
N_ORDERS = 10_000  # memory test
TIME_TARGET = 2.0
MEMORY_TARGET = 4 * 1024

ORDER = {
    "location_id": "main",
    "line_items": [{"name": "Latte", "quantity": "1",
                    "base_price_money": {"amount": 450, "currency": "USD"}}],
    "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "Ann"}}}],
}


# ============================================================================ setups
OBSERVE = False  # --observer


def _engine() -> Engine:
    eng = Engine(clock=ManualClock(), seed="bench")
    if OBSERVE:
        eng.observer = Observer()
    return eng


def _orders(n: int) -> tuple[Engine, list[tuple[str, int, str]]]:
    eng = _engine()
    out = []
    for _ in range(n):
        o = eng.create_order(ORDER)
        out.append((o["id"], o["version"], o["fulfillments"][0]["uid"]))
    return eng, out


def _approved(n: int) -> tuple[Engine, list[str]]:
    eng = _engine()
    ids = []
    for i in range(n):
        o = eng.create_order(ORDER)
        p = eng.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": f"k{i}",
                                "amount_money": {"amount": 450, "currency": "USD"},
                                "order_id": o["id"], "autocomplete": False})
        ids.append(p["id"])
    return eng, ids


# ============================================================================ timed bodies
def run_fulfillment_update(n: int = N_COMMANDS) -> float:
    eng, orders = _orders(n)
    update = eng.update_order
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    for oid, version, uid in orders:
        update(oid, {"version": version, "fulfillments": [{"uid": uid, "state": "RESERVED"}]})
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def run_complete_payment(n: int = N_COMMANDS) -> float:
    eng, ids = _approved(n)
    complete = eng.complete_payment
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    for pid in ids:
        complete(pid)
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


class _Plain:
    pass


def run_bare_trigger(n: int = N_TRIGGERS) -> float:
    obj = _Plain()
    Machine(model=obj, states=["a", "b"], initial="a", auto_transitions=False,
            transitions=[{"trigger": "go", "source": "a", "dest": "b"},
                         {"trigger": "back", "source": "b", "dest": "a"}])
    go, back = obj.go, obj.back
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n // 2):
        go()
        back()
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def median_of(fn: Callable[[], tuple[float, float]], runs: int = RUNS) -> dict[str, float]:
    """Median (and spread) of per-operation wall time, plus the median CPU time.

    The CPU-time column (time.process_time) is a sanity check for a shared machine: when other
    processes compete for the cores, wall time inflates but CPU time much less."""
    samples = [fn() for _ in range(runs)]
    wall = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    return {"median": statistics.median(wall), "min": min(wall), "max": max(wall),
            "cpu": statistics.median(cpu)}


# ============================================================================ memory
def memory_per_order(n: int = N_ORDERS) -> tuple[float, int]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    eng = _engine()
    empty = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        eng.create_order(ORDER)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(eng.orders) == n
    del base
    return (used - empty) / n, used - empty


def memory_breakdown(n: int = N_ORDERS) -> str:
    """Where the bytes per order go: records vs indexes, and the top allocation sites."""
    gc.collect()
    tracemalloc.start(5)
    eng = _engine()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(n):
        eng.create_order(ORDER)
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    out = io.StringIO()
    out.write(f"  deep size per order, by structure (sys.getsizeof walk, {n} orders):\n")
    sizes = {
        "orders dict + records": _deep_size(eng.orders),
        "order_index": _deep_size(eng.order_index._lists),
    }
    for name, size in sizes.items():
        out.write(f"    {name:<24} {size / n:8.0f} B\n")
    one = next(iter(eng.orders.values()))
    out.write("  one order record, by top-level key:\n")
    for key, value in sorted(one.items(), key=lambda kv: -_deep_size(kv[1])):
        out.write(f"    {key:<24} {_deep_size(value):8d} B\n")
    out.write("  top allocation sites (bytes per order):\n")
    stats = snap1.compare_to(snap0, "lineno")
    for stat in stats[:10]:
        frame = stat.traceback[0]
        out.write(f"    {stat.size_diff / n:8.0f} B  {os.path.relpath(frame.filename)}:{frame.lineno}\n")
    return out.getvalue()


def _deep_size(obj: object, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(_deep_size(v, seen) for v in obj)
    elif hasattr(obj, "__slots__"):
        size += sum(_deep_size(getattr(obj, s), seen) for s in obj.__slots__ if hasattr(obj, s))
    elif hasattr(obj, "__dict__"):
        size += _deep_size(vars(obj), seen)
    return size


# ============================================================================ profile
def _timed_only_profile(kind: str, n: int = N_COMMANDS) -> str:
    """Profile only the timed loop (not the setup)."""
    if kind == "update":
        eng, orders = _orders(n)
        prof = cProfile.Profile()
        prof.enable()
        for oid, version, uid in orders:
            eng.update_order(oid, {"version": version,
                                   "fulfillments": [{"uid": uid, "state": "RESERVED"}]})
        prof.disable()
    else:
        eng, ids = _approved(n)
        prof = cProfile.Profile()
        prof.enable()
        for pid in ids:
            eng.complete_payment(pid)
        prof.disable()
    buf = io.StringIO()
    title = "update_order (fulfillment move)" if kind == "update" else "complete_payment"
    buf.write(f"--- cProfile of {n} x {title}, timed loop only ---\n")
    st = pstats.Stats(prof, stream=buf).strip_dirs()
    st.sort_stats("tottime").print_stats(15)
    st.sort_stats("cumulative").print_stats(20)
    return buf.getvalue()


# ============================================================================ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="store_true", help="print cProfile / tracemalloc detail")
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--observer", action="store_true",
                    help="give every engine a coverage observer (what the simulator does)")
    args = ap.parse_args(argv)
    global OBSERVE
    OBSERVE = args.observer

    bare = median_of(run_bare_trigger, args.runs)
    upd = median_of(run_fulfillment_update, args.runs)
    comp = median_of(run_complete_payment, args.runs)
    per_order, total = memory_per_order()

    def us(x: float) -> str:
        return f"{x * 1e6:9.2f}"

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; median of {args.runs} runs{' (coverage observer on)' if OBSERVE else ''} "
          f"({N_COMMANDS} engine commands / {N_TRIGGERS} bare triggers per run)")
    print()
    print(f"{'measure':<44} {'median µs':>9} {'min µs':>9} {'max µs':>9} {'cpu µs':>9} "
          f"{'x bare':>7} {'cpu x':>6}  target <= 2x")
    print("-" * 107)
    print(f"{'bare transitions trigger (model=obj)':<44} {us(bare['median'])} {us(bare['min'])} "
          f"{us(bare['max'])} {us(bare['cpu'])} {1.0:7.1f} {1.0:6.1f}")
    for name, r in (("update_order: fulfillment PROPOSED->RESERVED", upd),
                    ("complete_payment: APPROVED->COMPLETED", comp)):
        ratio = r["median"] / bare["median"]
        cpu_ratio = r["cpu"] / bare["cpu"]
        verdict = "ok" if ratio <= TIME_TARGET else "MISS"
        print(f"{name:<44} {us(r['median'])} {us(r['min'])} {us(r['max'])} {us(r['cpu'])} "
              f"{ratio:7.1f} {cpu_ratio:6.1f}  {verdict}")
    print()
    verdict = "ok" if per_order < MEMORY_TARGET else "MISS"
    print(f"{'memory per order (1 line item, 1 PICKUP)':<44} {per_order:9.0f} B  "
          f"({per_order / 1024:.2f} KiB; {N_ORDERS} orders = {total / 2**20:.1f} MiB)  "
          f"target < 4 KiB: {verdict}")

    if args.profile:
        print()
        print(_timed_only_profile("update"))
        print(_timed_only_profile("complete"))
        print("--- memory ---")
        print(memory_breakdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

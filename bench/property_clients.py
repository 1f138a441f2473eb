"""What an in-process SDK call costs, and how many property-test examples a second that allows.

    python bench/property_clients.py                 # both parts, 60 oracle examples per setup
    python bench/property_clients.py --examples 200 --calls 500
    python bench/property_clients.py --only calls

Part one times single calls against a fresh in-process merchant (orderfsm.simulator.merchant):
the official SDK over starlette's TestClient (what the pytest fixtures use), the SDK over the
in-thread transport, the same with the SDK's type-hint lookups cached
(orderfsm.simulator.cache_sdk_type_hints), and a plain httpx client that skips the SDK's
response parsing (the floor: what the server side costs).

Part two runs the oracle suite's check (tests/orderfsm/test_strategies_oracle.py, ``judge``) on
the same derandomized hypothesis examples under each client setup and prints examples per
second. Each setup runs in its own process, because caching the type hints is process-wide.
The machine is shared: the load average is printed, and wall time above CPU time means the
process waited for a core. Quote ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# bench/ holds http.py, which would shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

ORACLE = REPO / "tests" / "orderfsm" / "test_strategies_oracle.py"
SETUPS = {
    "sdk-testclient": ("testclient", False),
    "sdk-inthread": ("inthread", False),
    "sdk-inthread-cached-hints": ("inthread", True),
    "sdk-testclient-cached-hints": ("testclient", True),
}
LINE = {"name": "Latte", "quantity": "1", "base_price_money": {"amount": 500, "currency": "USD"}}


def time_calls(setup: str, calls: int) -> dict[str, float]:
    """CPU milliseconds per call (every thread of the process, so starlette's portal thread
    counts): RetrieveOrder, CreateOrder and CreatePayment. CPU time, not wall time, because
    the machine is shared and wall time mostly measures waiting for a core."""
    from orderfsm.simulator import merchant

    if setup == "plain-httpx":
        m = merchant()
        http = m.http

        def get(oid: str) -> None:
            http.get(f"/v2/orders/{oid}").json()

        def create(i: int) -> str:
            return http.post("/v2/orders", json={"idempotency_key": f"o{i}", "order": {
                "location_id": "main", "line_items": [LINE]}}).json()["order"]["id"]

        def pay(i: int, oid: str) -> None:
            http.post("/v2/payments", json={
                "idempotency_key": f"p{i}", "source_id": "cnon:card-nonce-ok", "order_id": oid,
                "amount_money": LINE["base_price_money"]}).json()
    else:
        transport, cached = SETUPS[setup]
        m = merchant(transport=transport, cache_type_hints=cached)
        sdk = m.client

        def get(oid: str) -> None:
            sdk.orders.get(oid)

        def create(i: int) -> str:
            return sdk.orders.create(idempotency_key=f"o{i}", order={
                "location_id": "main", "line_items": [LINE]}).order.id

        def pay(i: int, oid: str) -> None:
            sdk.payments.create(idempotency_key=f"p{i}", source_id="cnon:card-nonce-ok",
                                order_id=oid, amount_money=LINE["base_price_money"])

    create(-1)  # warm up: routes, imports, first parses
    out = {}
    clock = time.process_time
    t = clock()
    ids = [create(i) for i in range(calls)]
    out["CreateOrder"] = (clock() - t) * 1000 / calls
    t = clock()
    for oid in ids:
        get(oid)
    out["RetrieveOrder"] = (clock() - t) * 1000 / calls
    t = clock()
    for i, oid in enumerate(ids):
        pay(i, oid)
    out["CreatePayment"] = (clock() - t) * 1000 / calls
    return out


def time_oracle(setup: str, examples: int) -> dict[str, float]:
    """Examples per second of the oracle's ``judge`` on derandomized examples."""
    import importlib.util
    import warnings

    warnings.simplefilter("ignore")
    from hypothesis import HealthCheck, Phase, given, settings

    import orderfsm.simulator as simulator

    transport, cached = SETUPS[setup]
    spec = importlib.util.spec_from_file_location("oracle_bench", ORACLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    real = simulator.merchant
    module.merchant = lambda **kw: real(**{**kw, "transport": transport,
                                           "cache_type_hints": cached})
    count = [0]

    def one(spec_: dict, variants: dict) -> None:
        count[0] += 1
        module.judge(variants, spec_)

    config = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for variants in ({}, {"cancel_after_payment": "never"}):
        config(given(spec_=module.histories())(lambda spec_: one(spec_, variants)))()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"examples": count[0], "wall": wall, "cpu": cpu,
            "per_second_wall": count[0] / wall, "per_second_cpu": count[0] / cpu}


def child(args: argparse.Namespace) -> int:
    if args.part == "calls":
        result = time_calls(args.setup, args.calls)
    else:
        result = time_oracle(args.setup, args.examples)
    print(json.dumps(result))
    return 0


def spawn(part: str, setup: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", part, "--setup", setup,
           "--examples", str(args.examples), "--calls", str(args.calls)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{part}/{setup} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=60, help="oracle examples per variant")
    ap.add_argument("--calls", type=int, default=300, help="calls of each kind in part one")
    ap.add_argument("--only", choices=("calls", "oracle"))
    ap.add_argument("--child", choices=("calls", "oracle"), dest="part", help=argparse.SUPPRESS)
    ap.add_argument("--setup", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.part:
        return child(args)

    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), load average {load[0]:.1f}")
    if args.only in (None, "calls"):
        print(f"\nCPU ms per in-process call ({args.calls} of each, fresh merchant):")
        rows = {s: spawn("calls", s, args) for s in [*SETUPS, "plain-httpx"]}
        base = rows["sdk-testclient"]
        print(f"  {'setup':30} {'CreateOrder':>12} {'RetrieveOrder':>14} {'CreatePayment':>14}")
        for name, r in rows.items():
            cells = "".join(f" {r[k]:>8.2f} ({base[k] / r[k]:.1f}x)" for k in
                            ("CreateOrder", "RetrieveOrder", "CreatePayment"))
            print(f"  {name:30}{cells}")
    if args.only in (None, "oracle"):
        print(f"\noracle examples per second ({args.examples} per variant, both variants, "
              "derandomized: every setup runs the same examples):")
        rows = {s: spawn("oracle", s, args) for s in SETUPS}
        base = rows["sdk-testclient"]["per_second_cpu"]
        for name, r in rows.items():
            print(f"  {name:30} {r['examples']:4d} examples  wall {r['wall']:6.1f} s "
                  f"({r['per_second_wall']:5.2f}/s)  cpu {r['cpu']:6.1f} s "
                  f"({r['per_second_cpu']:5.2f}/s, {r['per_second_cpu'] / base:.1f}x)")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Memory of the simulator around an oversize request, with and without the body cap.

The request is a CreateOrder of about 10 MB holding 120,000 line items. Each mode runs in its
own fresh process: the app is built and warmed with one small request, the body is built,
then the process's resident memory (VmRSS) is read before the request, after it (and a
``gc.collect()``), and its peak (ru_maxrss) over the whole run.

* ``capped``: the default ``SimulatorConfig`` (1 MiB body cap). The answer is 413 from the
  Content-Length header, before the body is read.
* ``uncapped``: ``max_body_bytes=None``. The body is read and parsed; the order is then refused
  by the 500-line-items limit (400), so nothing is stored either way.
* ``uncapped, no item limit``: also lifts the line-item limit, which is how the simulator
  behaved before the limits existed (the order is stored).

Run: ``python bench/hardening.py``. In-process (starlette's TestClient); nothing is written.
The fuzz suites (tests/fuzz) print their own figures: cases run and 5xx seen.
"""

from __future__ import annotations

import gc
import json
import multiprocessing as mp
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/http.py would shadow the standard library's ``http`` package: keep bench/ off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(ROOT), str(ROOT / "src")] + [
    p for p in sys.path if Path(p or ".").resolve() != _HERE]

LINES = 120_000


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run(mode: str, out: "mp.Queue") -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    import simulator.validation as validation
    from simulator import create_app
    from simulator.store import SimulatorConfig

    config = SimulatorConfig(log_requests=False, webhooks=False)
    if mode != "capped":
        config.max_body_bytes = None
    if mode == "uncapped, no item limit":
        for key in list(validation.ARRAY_LIMITS):
            validation.ARRAY_LIMITS[key] = 10**9
        validation._OBJECTS = validation._compile(validation.SCHEMAS)
    client = TestClient(create_app(config), headers={"Authorization": "Bearer bench"})
    client.get("/v2/locations")
    body = json.dumps({"idempotency_key": "big", "order": {"location_id": "main", "line_items": [
        {"name": f"item {i}", "quantity": "1",
         "base_price_money": {"amount": 100, "currency": "USD"}} for i in range(LINES)]}}
    ).encode()
    gc.collect()
    before = _rss_mb()
    started = time.perf_counter()
    r = client.post("/v2/orders", content=body, headers={"content-type": "application/json"})
    elapsed = time.perf_counter() - started
    del body
    gc.collect()
    after = _rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    code = r.json()["errors"][0]["code"] if r.status_code >= 400 else "stored"
    out.put((mode, r.status_code, code, before, after, peak, elapsed))


def main() -> None:
    ctx = mp.get_context("spawn")
    rows = []
    for mode in ("capped", "uncapped", "uncapped, no item limit"):
        q = ctx.Queue()
        p = ctx.Process(target=_run, args=(mode, q))
        p.start()
        rows.append(q.get(timeout=600))
        p.join()
    size = len(json.dumps({"order": {"line_items": [
        {"name": "item 100000", "quantity": "1",
         "base_price_money": {"amount": 100, "currency": "USD"}}] * LINES}}))
    print(f"CreateOrder with {LINES:,} line items, about {size / 1e6:.1f} MB, one run per mode\n")
    print(f"{'mode':<26}{'status':>7}  {'answer':<26}{'RSS before':>11}{'after':>9}"
          f"{'growth':>9}{'peak':>9}{'time':>9}")
    for mode, status, code, before, after, peak, elapsed in rows:
        print(f"{mode:<26}{status:>7}  {code:<26}{before:>9.0f}MB{after:>7.0f}MB"
              f"{after - before:>7.0f}MB{peak:>7.0f}MB{elapsed * 1000:>7.0f}ms")


if __name__ == "__main__":
    main()

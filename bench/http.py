"""HTTP benchmarks for the simulator, measured in one run and printed as one table.

1. Requests per second of CreatePayment and RetrieveOrder over a real uvicorn socket, next to a
   bare FastAPI route that returns a body of the same size under the same uvicorn settings
   (target: the simulator reaches at least 60% of the bare route). Each server runs in its own
   process; the load comes from this process over keep-alive httpx connections on loopback,
   bounded by a request count and a time limit. Besides req/s (which also depends on how fast
   the client is), the server process's CPU time per request is read from /proc, which gives
   each server's capacity on one core. The simulator runs as ``create_app()`` with no log
   handler installed, like ``orderfsm serve --quiet``.
2. Server CPU per request without uvicorn (requests sent straight into the ASGI app), split
   into the engine command, the rest of the simulator, and webhook event recording.
3. p50 latency of one in-process SDK call (``payments.get``), both with the sync ``Square``
   through starlette's TestClient and with ``AsyncSquare`` through ``httpx.ASGITransport``
   (target: under 1 ms), with the same request without the SDK and the bare engine call beside
   it, so the table shows where the time goes.
4. p50 latency of SearchOrders in a merchant holding 100,000 orders (target: under 20 ms): a
   typical query (state_filter OPEN, limit 100) and the default limit of 500, as raw HTTP
   through the app in-process and over a uvicorn socket; once with the per-merchant cache of
   rendered orders warm (repeated searches) and once dropping it before every call.

5. Durable state (issue 12), each against a SQLite store in a temporary directory, with request
   logging on as ``orderfsm serve`` does it (lines go to /dev/null) and ``--durability normal``:
   - ``stored``: CreatePayment throughput with 100,000 payments already stored (the server
     loads them at start, then ``gc.freeze()``s them) next to an empty store, in one run
     (target: within 15%), with p99.9 and the slowest request of each run as the client saw
     it, and the pauses the server measured in itself (target: no pause over 50 ms): the
     longest garbage collection by generation, and the longest event-loop stall split into the
     loop thread's own CPU time, its wait for a CPU (other processes on a shared machine) and
     the time it was blocked (the GIL held by another thread, a lock, the disk). "Server-caused"
     is the stall minus the CPU wait. The servers run with ``ORDERFSM_PAUSES=1``, which adds
     ``GET /_sim/pauses`` (simulator/pauses.py) and a 2 ms probe task; the load average is
     printed beside each figure;
   - ``memory``: resident memory per stored payment, with its events and idempotency record,
     measured as a server's RSS after loading the 100,000-payment store minus an empty one's
     (target: under 4 KiB);
   - ``isolation``: merchant B's GET /v2/locations p99 and max while merchant A restores a
     100,000-order snapshot, dumps it, and runs a cold 1,000-order search (target: < 50 ms),
     B's client running in a process of its own, with the server's pauses as above.
   Section 1 also runs the simulator this way (durable, logging on).

Run: ``python bench/http.py`` (``--quick`` for a short smoke run, ``--help`` for the knobs;
``--only stored --stored-db PATH --only isolation --isolation-db PATH`` reuses filled stores).
Loopback only; the durable parts write SQLite files under a temporary directory.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory comes first on sys.path, and the file's name would
# shadow the standard library's ``http`` package that httpx and uvicorn import.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any, Callable  # noqa: E402

import httpx  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

HOST = "127.0.0.1"
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The settings `orderfsm serve` uses (uvicorn picks its HTTP parser and event loop itself).
UVICORN = dict(log_level="warning", access_log=False)


# ====================================================================== servers (child processes)

def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _serve_simulator(port: int, db: str | None = None, pauses: bool = False) -> None:
    """The simulator as ``orderfsm serve`` runs it: a SQLite store (a fresh one in a temporary
    directory unless ``db`` is given) and one log line per request (to /dev/null here). With
    ``pauses``, the server measures its own pauses (``GET /_sim/pauses``, see
    simulator/pauses.py)."""
    import logging
    import tempfile


    if pauses:
        os.environ["ORDERFSM_PAUSES"] = "1"
    from simulator import create_app

    handler = logging.StreamHandler(open(os.devnull, "w"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    if db is None:
        db = os.path.join(tempfile.mkdtemp(prefix="orderfsm-bench-"), "state.sqlite3")
    app = create_app(db=db)
    app.state.config.log_requests = True
    # serve_forever is what `orderfsm serve` runs: its GC policy, then uvicorn with UVICORN's
    # settings.
    from orderfsm.simulator import serve_forever

    serve_forever(HOST, port, app, log_level=UVICORN["log_level"])


def _serve_bare(port: int, payment_body: bytes, order_body: bytes) -> None:
    import uvicorn

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v2/payments")
    async def create(request: Request) -> Response:
        await request.body()
        return Response(payment_body, media_type="application/json")

    @app.get("/v2/orders/{order_id}")
    async def retrieve(order_id: str) -> Response:
        return Response(order_body, media_type="application/json")

    uvicorn.run(app, host=HOST, port=port, **UVICORN)


class Server:
    """A uvicorn server in a child process, stopped on exit."""

    def __init__(self, target: Callable[..., None], *args: Any, start_timeout: float = 30) -> None:
        self.start_timeout = start_timeout
        self.port = _free_port()
        self.proc = mp.get_context("spawn").Process(target=target, args=(self.port, *args),
                                                     daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> "Server":
        self.proc.start()
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                httpx.get(self.url + "/", timeout=1)
                return self
            except httpx.TransportError:
                if not self.proc.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("benchmark server did not start")
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far (Linux /proc)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: Any) -> None:
        self.proc.terminate()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)


# ============================================================================ load generator

def _load(server: Server, make: Callable[[int], tuple[str, str, bytes | None]], *, requests: int,
          seconds: float, connections: int, warmup: int, pauses: bool = False) -> dict[str, Any]:
    """Send requests over ``connections`` keep-alive connections (one thread each) until
    ``requests`` were sent or ``seconds`` passed. Returns rps, latency percentiles (ms) and the
    server's CPU time per request (ms), which does not depend on how fast the client is. With
    ``pauses`` (a server started with pauses on), also the server's own pause report for the
    measured part, and the load average before and after it."""
    url = server.url
    counter = iter(range(10**9))
    lock = threading.Lock()
    headers = {**AUTH, "Content-Type": "application/json"}

    def next_index() -> int:
        with lock:
            return next(counter)

    def worker(stop_at: float, budget: int) -> list[float]:
        lat: list[float] = []
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            while True:
                i = next_index()
                if i >= budget or time.perf_counter() >= stop_at:
                    return lat
                method, path, body = make(i)
                t0 = time.perf_counter()
                r = client.request(method, path, content=body)
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{method} {path} -> {r.status_code} {r.text[:200]}")

    # Warm-up (connections, code paths), not measured.
    worker(time.perf_counter() + 30, warmup)
    counter = iter(range(warmup, 10**9))
    if pauses:
        httpx.get(url + "/_sim/pauses?reset=1")
    load0 = os.getloadavg()[0]
    cpu0 = server.cpu_seconds()
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        results = list(pool.map(lambda _: worker(start + seconds, warmup + requests),
                                range(connections)))
    elapsed = time.perf_counter() - start
    cpu = server.cpu_seconds() - cpu0
    lat = sorted(x for r in results for x in r)
    out: dict[str, Any] = {
        "n": len(lat), "rps": len(lat) / elapsed, "p50": _pct(lat, 50) * 1e3,
        "p99": _pct(lat, 99) * 1e3, "p999": _pct(lat, 99.9) * 1e3,
        "max": (lat[-1] if lat else 0) * 1e3, "cpu": cpu / max(len(lat), 1) * 1e3}
    if pauses:
        out["pauses"] = httpx.get(url + "/_sim/pauses").json()
        out["load"] = max(load0, os.getloadavg()[0])
    return out


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def _p50(fn: Callable[[], Any], n: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


async def _ap50(fn: Callable[[], Any], n: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        await fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# ================================================================================ benchmarks

def payment_body(i: int) -> bytes:
    return json.dumps({"idempotency_key": f"bench-{os.getpid()}-{i}",
                       "source_id": "cnon:card-nonce-ok",
                       "amount_money": {"amount": 1000 + i % 500, "currency": "USD"}},
                      separators=(",", ":")).encode()


def bench_throughput(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    load = dict(requests=args.requests, seconds=args.seconds, connections=args.connections,
                warmup=args.warmup)
    with Server(_serve_simulator) as sim:
        with httpx.Client(base_url=sim.url, headers=AUTH) as c:
            pay = c.post("/v2/payments", content=payment_body(-1),
                         headers={"Content-Type": "application/json"})
            order_id = pay.json()["payment"]["order_id"]
            order = c.get(f"/v2/orders/{order_id}")
            assert pay.status_code == order.status_code == 200
        create = lambda i: ("POST", "/v2/payments", payment_body(i))  # noqa: E731
        get = lambda i: ("GET", f"/v2/orders/{order_id}", None)  # noqa: E731
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in ("sc", "bc", "sg", "bg")}
        with Server(_serve_bare, pay.content, order.content) as bare:
            # Alternate simulator and bare runs so that a change in machine load hits both.
            for _ in range(args.rounds):
                runs["sc"].append(_load(sim, create, **load))
                runs["bc"].append(_load(bare, create, **load))
                runs["sg"].append(_load(sim, get, **load))
                runs["bg"].append(_load(bare, get, **load))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    for name, s, b, size in (("CreatePayment", med["sc"], med["bc"], len(pay.content)),
                             ("RetrieveOrder", med["sg"], med["bg"], len(order.content))):
        for label, r in ((f"{name} over uvicorn ({size} B response)", s),
                         ("  bare FastAPI route, same response size", b)):
            rows.append((label, f"{r['rps']:,.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms"
                                f"  server CPU {r['cpu']:.3f} ms/req", ""))
        ratio = s["rps"] / b["rps"]
        capacity = b["cpu"] / s["cpu"]
        rows.append((f"  {name} / bare, measured req/s", f"{ratio:.0%}",
                     _verdict(ratio >= 0.50, ">= 50%")))
        rows.append((f"  {name} / bare, server capacity (1 / CPU per request)", f"{capacity:.0%}",
                     _verdict(capacity >= 0.50, ">= 50%")))
    rows.append((f"  (medians of {args.rounds} alternating rounds, each <= {args.requests:,} "
                 f"requests or {args.seconds:g} s)", "", ""))


async def _asgi(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request straight into an ASGI app: no client library, no server, no socket."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "client": (HOST, 1), "server": ("sim", 80),
             "headers": [(b"host", b"sim"), (b"authorization", AUTH["Authorization"].encode()),
                         (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    out: list[dict] = []

    async def receive() -> dict:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        out.append(message)

    await app(scope, receive, send)
    return out[0]["status"], b"".join(m.get("body", b"") for m in out[1:])


def bench_breakdown(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    """Server-side CPU per request without uvicorn, to show where a request's time goes."""
    from simulator import create_app

    n = args.calls

    async def cpu_per_call(app: Any, make: Callable[[int], tuple[str, str, bytes]]) -> float:
        for i in range(200):
            await _asgi(app, *make(-1 - i))
        t0 = time.process_time()
        for i in range(n):
            status, _ = await _asgi(app, *make(i))
            assert status == 200, status
        return (time.process_time() - t0) / n * 1e3

    async def run() -> dict[str, float]:
        sim = create_app()
        _, paid = await _asgi(sim, "POST", "/v2/payments", payment_body(10**8))
        order_id = json.loads(paid)["payment"]["order_id"]
        _, order = await _asgi(sim, "GET", f"/v2/orders/{order_id}")
        bare = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

        @bare.post("/v2/payments")
        async def create(request: Request) -> Response:
            await request.body()
            return Response(paid, media_type="application/json")

        @bare.get("/v2/orders/{order_id}")
        async def retrieve(order_id: str) -> Response:
            return Response(order, media_type="application/json")

        engine = sim.state.store.merchant(TOKEN).engine
        real_create, spent = engine.create_payment, [0.0]

        def timed_create(request: Any) -> Any:  # CPU spent inside the engine command
            t0 = time.process_time()
            try:
                return real_create(request)
            finally:
                spent[0] += time.process_time() - t0

        engine.create_payment = timed_create
        out = {
            "sim_create": await cpu_per_call(sim, lambda i: ("POST", "/v2/payments", payment_body(i))),
            "engine_create": spent[0] / n * 1e3,
            "bare_create": await cpu_per_call(bare, lambda i: ("POST", "/v2/payments", payment_body(i))),
            "sim_get": await cpu_per_call(sim, lambda i: ("GET", f"/v2/orders/{order_id}", b"")),
            "bare_get": await cpu_per_call(bare, lambda i: ("GET", f"/v2/orders/{order_id}", b"")),
        }
        from simulator.store import SimulatorConfig

        quiet = create_app(SimulatorConfig(webhooks=False))  # the engine records no events
        out["noevents_create"] = await cpu_per_call(
            quiet, lambda i: ("POST", "/v2/payments", payment_body(3 * 10**8 + i)))
        canned = json.loads(paid)["payment"]
        sim.state.store.merchant(TOKEN).engine.create_payment = lambda request: canned
        out["stub_create"] = await cpu_per_call(
            sim, lambda i: ("POST", "/v2/payments", payment_body(2 * 10**8 + i)))
        return out

    r = asyncio.run(run())
    rows.append(("Server CPU per request without uvicorn (direct ASGI call)", "", ""))
    rows.append(("  CreatePayment: simulator / bare route",
                 f"{r['sim_create']:.3f} / {r['bare_create']:.3f} ms", ""))
    rows.append(("    of which inside engine.create_payment (incl. webhook events)",
                 f"{r['engine_create']:.3f} ms", ""))
    rows.append(("    simulator with the engine call replaced by a canned answer",
                 f"{r['stub_create']:.3f} ms", ""))
    rows.append(("    simulator with webhook event recording off",
                 f"{r['noevents_create']:.3f} ms", ""))
    rows.append(("  RetrieveOrder: simulator / bare route",
                 f"{r['sim_get']:.3f} / {r['bare_get']:.3f} ms", ""))


def bench_inprocess_sdk(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from square import AsyncSquare, Square

    from simulator import create_app

    n = args.calls
    app = create_app()
    ro = {"max_retries": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tc = TestClient(app, headers=AUTH)
        sdk = Square(token=TOKEN, base_url="http://testserver", httpx_client=tc)
        pid = sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="p",
                                  amount_money={"amount": 1000, "currency": "USD"},
                                  request_options=ro).payment.id
        sync_sdk = _p50(lambda: sdk.payments.get(pid, request_options=ro), n)
        sync_raw = _p50(lambda: tc.get(f"/v2/payments/{pid}"), n)
        tc.close()
    engine = app.state.store.merchant(TOKEN).engine
    engine_call = _p50(lambda: engine.get_payment(pid), n * 10) * 1e3  # in µs

    async def async_part() -> tuple[float, float]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://sim", headers=AUTH) as http:
            asq = AsyncSquare(token=TOKEN, base_url="http://sim", httpx_client=http)
            a_sdk = await _ap50(lambda: asq.payments.get(pid, request_options=ro), n)
            a_raw = await _ap50(lambda: http.get(f"/v2/payments/{pid}"), n)
            return a_sdk, a_raw

    async_sdk, async_raw = asyncio.run(async_part())
    parse = _sdk_parse_cost(pid, app, n)
    rows.append(("SDK payments.get p50, AsyncSquare + ASGITransport", f"{async_sdk:.3f} ms",
                 _verdict(async_sdk < 1.0, "< 1 ms")))
    rows.append(("  same request without the SDK (httpx + ASGITransport)", f"{async_raw:.3f} ms", ""))
    rows.append(("SDK payments.get p50, Square + starlette TestClient", f"{sync_sdk:.3f} ms",
                 _verdict(sync_sdk < 1.0, "< 1 ms")))
    rows.append(("  same request without the SDK (TestClient)", f"{sync_raw:.3f} ms", ""))
    rows.append(("  SDK response parsing alone (GetPaymentResponse)", f"{parse:.3f} ms", ""))
    rows.append(("  engine.get_payment alone", f"{engine_call:.1f} µs", ""))


def _sdk_parse_cost(pid: str, app: Any, n: int) -> float:
    """What the SDK spends turning the JSON into its models (construct_type)."""
    from square.core.unchecked_base_model import construct_type
    from square.types.get_payment_response import GetPaymentResponse

    body = {"payment": app.state.store.merchant(TOKEN).engine.get_payment(pid)}
    return _p50(lambda: construct_type(type_=GetPaymentResponse, object_=body), n)


def build_orders(engine: Any, total: int) -> float:
    """``total`` orders through the engine's own commands: one in ten DRAFT, one in five
    canceled, the rest OPEN, spread over time."""
    t0 = time.perf_counter()
    line = [{"name": "Coffee", "quantity": "1", "base_price_money": {"amount": 450, "currency": "USD"}}]
    for i in range(total):
        state = "DRAFT" if i % 10 == 0 else "OPEN"
        o = engine.create_order({"location_id": "main", "line_items": line, "state": state,
                                 "customer_id": f"C{i % 1000}"})
        if i % 5 == 1:
            engine.update_order(o["id"], {"version": 1, "state": "CANCELED"})
        if i % 100 == 99:
            engine.clock.advance(7)
    return time.perf_counter() - t0


def bench_search(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    from orderfsm.simulator import running
    from simulator import create_app
    from simulator.store import SimulatorConfig

    app = create_app(SimulatorConfig(log_requests=False))
    merchant = app.state.store.merchant(TOKEN)
    engine = merchant.engine
    built = build_orders(engine, args.orders)
    engine.drain_events()  # webhook events recorded while building; nobody subscribed
    counts = {s: engine.order_index.count(engine.main_location_id, s, "created_at")
              for s in ("OPEN", "DRAFT", "CANCELED")}
    queries = {
        "state_filter OPEN, limit 100": {"location_ids": ["main"], "limit": 100, "query": {
            "filter": {"state_filter": {"states": ["OPEN"]}},
            "sort": {"sort_field": "CREATED_AT", "sort_order": "DESC"}}},
        "default query (limit 500)": {"location_ids": ["main"]},
    }
    n = args.search_calls

    def forget() -> None:  # drop the per-merchant cache of rendered orders
        merchant.engine._json_cache.clear()

    results: dict[str, dict[str, float]] = {name: {} for name in queries}

    async def inprocess() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://sim", headers=AUTH) as http:
            for name, q in queries.items():
                async def cold() -> Any:
                    forget()
                    return await http.post("/v2/orders/search", json=q)

                async def warm() -> Any:
                    return await http.post("/v2/orders/search", json=q)

                r = await warm()
                results[name]["orders"] = len(r.json()["orders"])
                results[name]["cold"] = await _ap50(cold, n, warmup=2)
                results[name]["warm"] = await _ap50(warm, n, warmup=2)

    asyncio.run(inprocess())
    with running(app=app) as url, httpx.Client(base_url=url, headers=AUTH) as http:
        for name, q in queries.items():
            results[name]["socket"] = _p50(lambda: http.post("/v2/orders/search", json=q), n,
                                           warmup=3)
    rows.append((f"SearchOrders, {args.orders:,} orders in one merchant",
                 f"built in {built:.1f} s via Engine ({counts['OPEN']:,} OPEN, "
                 f"{counts['DRAFT']:,} DRAFT, {counts['CANCELED']:,} CANCELED)", ""))
    for name, r in results.items():
        rows.append((f"  {name}: p50 in-process, raw HTTP (ASGITransport)",
                     f"{r['warm']:.2f} ms ({r['orders']:.0f} orders)",
                     _verdict(r["warm"] < 20, "< 20 ms")))
        rows.append((f"    same, every call renders its page afresh (cache dropped)",
                     f"{r['cold']:.2f} ms", _verdict(r["cold"] < 20, "< 20 ms")))
        rows.append((f"    same, over the uvicorn socket", f"{r['socket']:.2f} ms", ""))
    loc = [engine.main_location_id]
    page = engine.search_orders(location_ids=loc, limit=500)[0]
    walk = _p50(lambda: engine.search_orders(location_ids=loc, limit=500), n, warmup=3)
    render = _p50(lambda: [engine.render_order(o) for o in page], n, warmup=3)
    rendered = [engine.render_order(o) for o in page]
    encode = _p50(lambda: [json.dumps(o, separators=(",", ":")).encode() for o in rendered], n,
                  warmup=3)
    rows.append(("  limit 500 parts: index walk / render_order x500 / JSON-encode x500",
                 f"{walk:.2f} / {render:.2f} / {encode:.2f} ms", ""))


# ============================================================================ durable state

def _fill_store(path: str, payments: int) -> float:
    """A SQLite store whose merchant ``TOKEN`` has ``payments`` card payments, each made the
    way the CreatePayment route makes it (``simulator.http.execute`` with its own idempotency
    key, so each has its implicit order, its webhook events and its idempotency record), and
    committed in batches of 500 (the route's HTTP parsing is skipped to save time)."""
    from simulator import create_app
    from simulator.http import execute

    app = create_app(db=path)
    m = app.state.store.merchant(TOKEN)
    outbox = m.extra.get("webhooks")
    t0 = time.perf_counter()
    for i in range(payments):
        body = json.loads(payment_body(5 * 10**8 + i))
        execute(m, "CreatePayment", body, lambda: {"payment": m.engine.create_payment(body)})
        if outbox is not None:
            outbox.drain()
        if i % 500 == 499:
            m.flush()
    m.flush()
    app.state.store.close()
    return time.perf_counter() - t0


def _copy_store(src: str, dst_dir: str) -> str:
    import shutil

    os.makedirs(dst_dir, exist_ok=True)
    dst = os.path.join(dst_dir, "state.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(src + suffix):
            shutil.copy(src + suffix, dst + suffix)
    return dst


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pause_figures(p: dict[str, Any]) -> tuple[float, str]:
    """The longest pause the server caused (ms) and a line describing the server's pauses."""
    loop = p["loop"]
    stall = loop["longest_stall"]
    store = p.get("store", {})
    gc_gen = p["gc_max_generation"]
    gc_cpu = p["gc"][str(gc_gen)]["max_cpu_ms"]
    caused = max(p["gc_max_ms"], loop["longest_server_stall_ms"])
    own = loop["longest_server_stall"]
    text = (f"GC max {p['gc_max_ms']:.1f} ms (gen {gc_gen}, {gc_cpu:.1f} ms CPU; "
            f"{p['gc']['2']['count']} full)  loop stall max {stall['ms']:.1f} ms "
            f"(own CPU {stall['cpu_ms']:.1f} / CPU wait {stall['runqueue_ms']:.1f} / blocked "
            f"{stall['blocked_ms']:.1f}, other threads' CPU wait "
            f"{stall['others_runqueue_ms']:.1f})  server-caused stall max "
            f"{loop['longest_server_stall_ms']:.1f} ms (of a {own['ms']:.1f} ms stall: own CPU "
            f"{own['cpu_ms']:.1f} / blocked {own['blocked_ms']:.1f})")
    if store:
        text += (f"  commit max {store['commit_max_ms']:.1f} ms  checkpoints "
                 f"{store['checkpoints']} (max {store['checkpoint_max_ms']:.1f} ms, in the "
                 f"background; {store['locked_checkpoints']} holding writers)")
    return caused, text


def _numeric_median(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {m: statistics.median(r[m] for r in runs) for m, v in runs[0].items()
            if isinstance(v, (int, float))}


def bench_stored(args: argparse.Namespace, rows: list[tuple[str, str, str]], filled: str) -> None:
    import tempfile

    tmp = tempfile.mkdtemp(prefix="orderfsm-bench-")
    load = dict(requests=args.requests, seconds=args.seconds, connections=args.connections,
                warmup=args.warmup, pauses=True)
    runs: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
    rss: dict[str, int] = {}
    for rnd in range(args.rounds):
        for name in ("empty", "full"):
            db = os.path.join(tmp, f"{name}-{rnd}", "state.sqlite3")
            if name == "full":
                _copy_store(filled, os.path.dirname(db))
            with Server(_serve_simulator, db, True, start_timeout=600) as sim:
                time.sleep(0.5)
                rss.setdefault(name, _rss(sim.proc.pid))
                runs[name].append(_load(sim, lambda i: ("POST", "/v2/payments",
                                                        payment_body(7 * 10**8 + i)), **load))
    med = {k: _numeric_median(v) for k, v in runs.items()}
    for name, label in (("empty", "empty store"), ("full", f"{args.stored:,} stored payments")):
        r = med[name]
        # The worst round's figures: a pause is a pause even if the other rounds had none.
        worst = max(runs[name], key=lambda x: x["max"])
        caused = max(_pause_figures(x["pauses"])[0] for x in runs[name])
        worst_pause = max(runs[name], key=lambda x: _pause_figures(x["pauses"])[0])
        rows.append((f"CreatePayment, durable, logging on, {label}",
                     f"{r['rps']:,.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms  "
                     f"p99.9 {r['p999']:.2f} ms", ""))
        rows.append(("  slowest request, client-side (includes CPU waits on a shared machine)",
                     f"{worst['max']:.1f} ms (server-side {worst['pauses']['requests']['max_ms']:.1f}"
                     f" ms; load average {worst['load']:.2f})",
                     _verdict(worst["max"] <= 50, "<= 50 ms")))
        rows.append(("  longest pause the server caused (GC, or event loop held: stall - CPU wait)",
                     f"{caused:.1f} ms", _verdict(caused <= 50, "no pause > 50 ms")))
        rows.append(("    " + _pause_figures(worst_pause["pauses"])[1], "", ""))
    ratio = med["full"]["rps"] / med["empty"]["rps"]
    rows.append((f"  {args.stored:,} stored / empty, req/s", f"{ratio:.0%}",
                 _verdict(ratio >= 0.85, "within 15%")))
    capacity = med["empty"]["cpu"] / med["full"]["cpu"]
    rows.append((f"  {args.stored:,} stored / empty, server capacity (1 / CPU per request: "
                 f"{med['full']['cpu']:.3f} / {med['empty']['cpu']:.3f} ms)", f"{capacity:.0%}",
                 _verdict(capacity >= 0.85, "within 15%")))
    per = (rss["full"] - rss["empty"]) / args.stored
    rows.append(("Resident memory per stored payment (server RSS loaded - empty) / "
                 f"{args.stored:,}", f"{per / 1024:.2f} KiB", _verdict(per < 4096, "< 4 KiB")))
    rows.append(("  (with its implicit order, webhook events and idempotency record; server RSS "
                 f"{rss['empty'] / 2**20:.0f} MiB empty, {rss['full'] / 2**20:.0f} MiB loaded)",
                 "", ""))


def _build_orders_store(path: str, orders: int) -> None:
    from simulator import create_app

    app = create_app(db=path)
    m = app.state.store.merchant("merchant-a")
    line = [{"name": "Tea", "quantity": "1",
             "base_price_money": {"amount": 300, "currency": "USD"}}]
    for i in range(orders):
        m.engine.create_order({"location_id": "main", "line_items": line})
        if i % 2000 == 1999:
            m.engine.drain_events()
            m.flush()
    m.engine.drain_events()
    m.flush()
    app.state.store.close()


def _probe_b(url: str, ready: Any, stop: Any, out: Any) -> None:
    """Merchant B's client, in a process of its own so that A's client (uploading or reading
    a 34 MiB snapshot in the benchmark's process) never holds up B's calls: GET /v2/locations
    in a loop until ``stop`` is set; the latencies (seconds) go to ``out``."""
    lat: list[float] = []
    with httpx.Client(base_url=url, headers={"Authorization": "Bearer merchant-b"},
                      timeout=10) as b:
        b.get("/v2/locations")
        ready.set()
        while not stop.is_set():
            t = time.perf_counter()
            r = b.get("/v2/locations")
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"GET /v2/locations -> {r.status_code}")
            time.sleep(0.002)
    out.send(lat)


def bench_isolation(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    import tempfile

    tmp = tempfile.mkdtemp(prefix="orderfsm-bench-")
    built = args.isolation_db or os.path.join(tmp, "built", "state.sqlite3")
    took_build = None
    if not os.path.exists(built):
        t0 = time.perf_counter()
        _build_orders_store(built, args.isolation_orders)
        took_build = time.perf_counter() - t0
    path = _copy_store(built, os.path.join(tmp, "run"))
    a_auth = {"Authorization": "Bearer merchant-a"}
    ctx = mp.get_context("spawn")
    with Server(_serve_simulator, path, True, start_timeout=600) as sim, \
            httpx.Client(base_url=sim.url, timeout=600) as a:
        snapshot = a.get("/_sim/state", headers=a_auth).content
        phases = {
            f"restores a {args.isolation_orders:,}-order snapshot "
            f"({len(snapshot) / 2**20:.0f} MiB)": lambda: a.post(
                "/_sim/state", headers={**a_auth, "content-type": "application/json"},
                content=snapshot),
            "dumps it (GET /_sim/state)": lambda: a.get("/_sim/state", headers=a_auth),
            "runs a cold 1,000-order search": lambda: a.post(
                "/v2/orders/search", headers=a_auth,
                json={"location_ids": ["main"], "limit": 1000}),
        }
        for label, work in phases.items():
            ready, stop = ctx.Event(), ctx.Event()
            receive, send = ctx.Pipe(duplex=False)
            prober = ctx.Process(target=_probe_b, args=(sim.url, ready, stop, send), daemon=True)
            prober.start()
            if not ready.wait(60):
                raise RuntimeError("merchant B's client did not start")
            time.sleep(0.2)
            httpx.get(sim.url + "/_sim/pauses?reset=1")
            load0 = os.getloadavg()[0]
            t = time.perf_counter()
            r = work()
            took = time.perf_counter() - t
            pauses = httpx.get(sim.url + "/_sim/pauses").json()
            stop.set()
            lat = sorted(receive.recv())
            prober.join(30)
            assert r.status_code == 200, r.text[:300]
            p99 = _pct(lat, 99) * 1e3
            worst = lat[-1] * 1e3
            caused, text = _pause_figures(pauses)
            rows.append((f"Merchant B GET /v2/locations while A {label}",
                         f"p99 {p99:.1f} ms  max {worst:.1f} ms  ({len(lat)} calls "
                         f"during A's {took:.1f} s; load average "
                         f"{max(load0, os.getloadavg()[0]):.2f})",
                         _verdict(p99 < 50, "p99 < 50 ms")))
            rows.append(("  B's slowest call (client-side, includes CPU waits)", f"{worst:.1f} ms",
                         _verdict(worst < 50, "max < 50 ms")))
            rows.append(("  longest pause the server caused (GC, or event loop held)",
                         f"{caused:.1f} ms", _verdict(caused <= 50, "no pause > 50 ms")))
            rows.append(("    " + text, "", ""))
    if took_build is not None:
        rows.append((f"  (A's {args.isolation_orders:,} orders built in {took_build:.0f} s; "
                     "SQLite store)", "", ""))


def _verdict(ok: bool, target: str) -> str:
    return f"{'met' if ok else 'MISSED'} ({target})"


def print_table(rows: list[tuple[str, str, str]]) -> None:
    """Rows of (measure, result, target); a row with neither result nor target is a note,
    printed as is and not counted in the column widths."""
    w1 = max(len(r[0]) for r in rows if r[1] or r[2])
    w2 = max(len(r[1]) for r in rows)
    print(f"{'measure':<{w1}}  {'result':<{w2}}  target")
    print(f"{'-' * w1}  {'-' * w2}  {'-' * 16}")
    for a, b, c in rows:
        print(f"{a:<{w1}}  {b:<{w2}}  {c}" if b or c else a)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks. Every temporary store (the server processes' too) goes under one
    directory that is removed at the end; only ``--stored-db`` / ``--isolation-db`` stay."""
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix="orderfsm-bench-")
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tempfile.tempdir = root
    try:
        return _main(argv)
    finally:
        tempfile.tempdir = None
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
        shutil.rmtree(root, ignore_errors=True)


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20_000, help="max requests per throughput run")
    ap.add_argument("--seconds", type=float, default=4.0, help="max seconds per throughput run")
    ap.add_argument("--connections", type=int, default=1,
                    help="keep-alive connections (one client thread each)")
    ap.add_argument("--warmup", type=int, default=300, help="unmeasured requests before each run")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating simulator/bare rounds per throughput figure (median kept)")
    ap.add_argument("--calls", type=int, default=2000, help="calls per in-process p50")
    ap.add_argument("--orders", type=int, default=100_000, help="orders for the search benchmark")
    ap.add_argument("--search-calls", type=int, default=40, help="calls per search p50")
    ap.add_argument("--stored", type=int, default=100_000,
                    help="payments in the store for the stored-state throughput and memory")
    ap.add_argument("--stored-db", metavar="PATH",
                    help="keep the store filled with --stored payments here and reuse it in "
                         "later runs (filling 100,000 takes minutes)")
    ap.add_argument("--isolation-orders", type=int, default=100_000,
                    help="orders in merchant A for the isolation benchmark")
    ap.add_argument("--isolation-db", metavar="PATH",
                    help="keep merchant A's store (--isolation-orders orders) here and reuse it "
                         "in later runs (a copy is used)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--only", choices=["throughput", "breakdown", "sdk", "search", "stored",
                                       "isolation"], action="append",
                    help="run only these parts (repeatable)")
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.seconds, args.warmup, args.rounds = 500, 1.0, 50, 1
        args.calls, args.orders, args.search_calls = 200, 5_000, 10
        args.stored, args.isolation_orders = 5_000, 5_000
    parts = args.only or ["throughput", "breakdown", "sdk", "search", "stored", "isolation"]
    rows: list[tuple[str, str, str]] = []
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), uvicorn {UVICORN}, "
          f"{args.connections} connection(s)\n", flush=True)
    if "throughput" in parts:
        bench_throughput(args, rows)
    if "breakdown" in parts:
        bench_breakdown(args, rows)
    if "sdk" in parts:
        bench_inprocess_sdk(args, rows)
    if "search" in parts:
        bench_search(args, rows)
    if "stored" in parts:
        import tempfile

        filled = args.stored_db or os.path.join(tempfile.mkdtemp(prefix="orderfsm-bench-"),
                                                "state.sqlite3")
        if not os.path.exists(filled):
            took = _fill_store(filled, args.stored)
            rows.append((f"Stored {args.stored:,} payments as CreatePayment does (SQLite)",
                         f"{took:.0f} s", ""))
        bench_stored(args, rows, filled)
    if "isolation" in parts:
        bench_isolation(args, rows)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

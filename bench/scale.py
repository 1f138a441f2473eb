"""Scale-out benchmark: CreatePayment requests per second for one simulator process on SQLite
and for 1 and 2 workers sharing one PostgreSQL, measured in one run.

Each configuration is started the way a user starts it, as ``orderfsm serve --db URL
[--workers N]`` with its default request logging (lines go to /dev/null). The load comes from
this process: ``--connections`` keep-alive connections, each the client of a merchant of its
own (merchant-parallel load: different merchants never wait on each other), sending prepared
CreatePayment requests with fresh idempotency keys and reading the responses, on one asyncio
loop over raw sockets so the load generator costs as little CPU as it can.

Everything runs on this machine, so the load generator and PostgreSQL share the cores with the
workers ("with the load generator counted"). Besides requests per second and latency, the
table shows where the CPU time goes, per request: the simulator's processes, PostgreSQL's
processes, the load generator, and the rest of the machine (other programs), read from /proc.

Target: 2 workers give at least 1.6x the requests per second of 1 worker on PostgreSQL.

Run: ``python bench/scale.py`` (``--quick`` for a smoke run, ``--help`` for the knobs). It
starts its own PostgreSQL (:class:`orderfsm.pgtemp.TempPostgres`, as the ``postgres`` user
when run as root) with PostgreSQL's default durability, or uses ``--pg-url`` (a database the
benchmark may fill).
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's directory comes first on sys.path, and bench/http.py would
# shadow the standard library's ``http`` package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")


# ===================================================================================== /proc

def _proc_cpu(pid: int) -> float:
    """User + system seconds of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _tree(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


class CpuMeter:
    """CPU seconds of process trees between :meth:`start` and :meth:`stop`. A tree is read
    by its root pid; processes that appear under it (PostgreSQL's backends for new
    connections) are counted from when they are first seen."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.base: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: _proc_cpu(pid) for pid in _tree(root)}
                for name, root in self.roots.items()}

    def start(self) -> None:
        self.base = self._sample()

    def stop(self) -> dict[str, float]:
        now = self._sample()
        return {name: sum(v - self.base[name].get(pid, 0.0) for pid, v in pids.items())
                for name, pids in now.items()}


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / TICK, total / TICK


# ============================================================================= load generator

def _request(token: str, key: str, amount: int) -> bytes:
    body = json.dumps({"idempotency_key": key, "source_id": "cnon:card-nonce-ok",
                       "amount_money": {"amount": amount, "currency": "USD"}},
                      separators=(",", ":")).encode()
    head = (f"POST /v2/payments HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


@dataclass
class LoadResult:
    n: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        lat = sorted(self.latencies)
        if not lat:
            return 0.0
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e3


class _Client(asyncio.Protocol):
    """One keep-alive connection of one merchant: sends a request, waits for the whole
    response (status line, Content-Length, body), records it and sends the next, until
    ``stop_at``. A protocol rather than streams, so the client costs little CPU."""

    def __init__(self, token: str, run: str, stop_at: float, measure_from: float,
                 result: LoadResult, done: asyncio.Future) -> None:
        self.token, self.run, self.result, self.done = token, run, result, done
        self.stop_at, self.measure_from = stop_at, measure_from
        self.buf = b""
        self.i = 0
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        now = time.perf_counter()
        if now >= self.stop_at:
            self.transport.close()  # type: ignore[union-attr]
            return
        self.i += 1
        # Keys are unique per merchant and run, and within Square's 45 characters.
        self.sent = now
        self.transport.write(  # type: ignore[union-attr]
            _request(self.token, f"{self.run}-{self.i}", 100 + self.i % 900))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return
        head = buf[:end]
        at = head.lower().find(b"content-length:")
        length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0
                          else None]) if at >= 0 else 0
        if len(buf) < end + 4 + length:
            self.buf = buf
            return
        self.buf = buf[end + 4 + length:]
        took = time.perf_counter() - self.sent
        result = self.result
        if head[9:12] != b"200":
            result.errors.append(f"HTTP {head[9:12].decode()}: {buf[end + 4:][:200]!r}")
            if len(result.errors) > 20:
                self.done.set_exception(RuntimeError(f"CreatePayment failed: {result.errors[:3]}"))
                self.transport.close()  # type: ignore[union-attr]
                return
        elif self.sent >= self.measure_from:
            result.n += 1
            result.latencies.append(took)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _connection(port: int, token: str, run: str, stop_at: float, measure_from: float,
                      result: LoadResult) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    await loop.create_connection(
        lambda: _Client(token, run, stop_at, measure_from, result, done), HOST, port)
    await done


async def _load(port: int, tokens: list[str], run: str, warmup: float,
                seconds: float) -> LoadResult:
    result = LoadResult()
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    await asyncio.gather(*(_connection(port, t, run, stop_at, measure_from, result)
                           for t in tokens))
    result.seconds = seconds
    return result


# ================================================================================== servers

def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Serve:
    """``orderfsm serve`` in a child process (its own process group), stopped on exit."""

    def __init__(self, db: str, workers: int | None) -> None:
        self.port = _free_port()
        cmd = [sys.executable, "-m", "orderfsm.cli", "serve", "--port", str(self.port),
               "--db", db]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        self.cmd = cmd
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Serve":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     cwd=tempfile.gettempdir())  # bench/http.py shadows http
        deadline = time.monotonic() + 60
        url = f"http://{HOST}:{self.port}/v2/locations"
        while True:
            try:
                req = urllib.request.Request(url, headers={"Authorization": "Bearer warmup"})
                urllib.request.urlopen(req, timeout=2).read()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(self.cmd)} did not start") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


# =================================================================================== runs

@dataclass
class Row:
    label: str
    result: LoadResult
    cpu: dict[str, float]
    busy: float
    total: float


def run_config(label: str, db: str, workers: int | None, args: argparse.Namespace,
               pg_root: int | None) -> Row:
    with Serve(db, workers) as server:
        tokens = [f"scale-{c}" for c in range(args.connections)]  # one database each run
        # Each merchant exists before the measured run (first use creates it).
        asyncio.run(_load(server.port, tokens, "prime", 0.0, 0.3))
        roots = {"simulator": server.proc.pid}  # type: ignore[union-attr]
        if pg_root is not None:
            roots["postgres"] = pg_root
        meter = CpuMeter(roots)
        load0 = os.times()
        busy0, total0 = _machine_busy()
        meter.start()
        result = asyncio.run(_load(server.port, tokens, f"run{time.time_ns():x}", args.warmup,
                                   args.seconds))
        cpu = meter.stop()
        busy1, total1 = _machine_busy()
        load1 = os.times()
        # The counters cover the warm-up too; per-request figures scale them to the run.
        scale = args.seconds / (args.seconds + args.warmup)
        cpu = {k: v * scale for k, v in cpu.items()}
        cpu["load generator"] = ((load1.user - load0.user) + (load1.system - load0.system)) * scale
        return Row(label, result, cpu, (busy1 - busy0) * scale, (total1 - total0) * scale)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per run")
    ap.add_argument("--connections", type=int, default=16,
                    help="keep-alive connections, one merchant each")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds over the three configurations (the best of each is kept)")
    ap.add_argument("--pg-url", help="use this PostgreSQL database instead of starting one "
                                     "(CPU time of PostgreSQL is then not shown)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.connections, args.rounds = 2.0, 0.5, 4, 1

    from orderfsm.pgtemp import TempPostgres

    tmp = Path(tempfile.mkdtemp(prefix="orderfsm-scale-"))
    pg = None
    try:
        pg_root = None
        if args.pg_url:
            pg_urls = [args.pg_url, args.pg_url]
        else:
            pg = TempPostgres().start()
            pg_root = _postmaster_pid(pg.dir / "data")  # type: ignore[operator]
            pg_urls = [pg.create_database("scale_1"), pg.create_database("scale_2")]
        configs = [("SQLite, 1 process", f"sqlite:///{tmp / 'state.sqlite3'}", None, None),
                   ("PostgreSQL, 1 worker", pg_urls[0], 1, pg_root),
                   ("PostgreSQL, 2 workers", pg_urls[1], 2, pg_root)]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), "
              f"{args.connections} connections (one merchant each), {args.seconds:g} s per run, "
              f"{args.rounds} round(s), load average {os.getloadavg()[0]:.1f}\n", flush=True)
        best: dict[str, Row] = {}
        for round_no in range(args.rounds):
            for label, db, workers, root in configs:
                row = run_config(label, db, workers, args, root)
                print(f"  round {round_no + 1}: {label:<24} {row.result.rps:8.0f} req/s "
                      f"({len(row.result.errors)} errors)", flush=True)
                if label not in best or row.result.rps > best[label].result.rps:
                    best[label] = row
        print_table(list(best.values()))
        one = best["PostgreSQL, 1 worker"].result.rps
        two = best["PostgreSQL, 2 workers"].result.rps
        speedup = two / one if one else 0.0
        verdict = "met" if speedup >= 1.6 else "NOT met"
        print(f"\nmerchant-parallel speed-up, 2 workers / 1 worker on PostgreSQL: "
              f"{speedup:.2f}x (target >= 1.6x: {verdict})")
        sqlite = best["SQLite, 1 process"].result.rps
        print(f"1 PostgreSQL worker / 1 SQLite process: {one / sqlite:.2f}x" if sqlite else "")
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def print_table(rows: list[Row]) -> None:
    head = (f"{'configuration':<24} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} | CPU ms per request:"
            f" {'simulator':>9} {'postgres':>8} {'loadgen':>8} {'other':>6} | machine busy")
    print("\n" + head)
    print("-" * len(head))
    for row in rows:
        n = max(row.result.n, 1)
        per = {k: v / n * 1e3 for k, v in row.cpu.items()}
        other = row.busy - sum(row.cpu.values())
        print(f"{row.label:<24} {row.result.rps:8.0f} {row.result.pct(50):7.2f} "
              f"{row.result.pct(99):7.2f} | {'':19} {per.get('simulator', 0):9.3f} "
              f"{per.get('postgres', 0):8.3f} {per.get('load generator', 0):8.3f} "
              f"{max(other, 0) / n * 1e3:6.3f} | {row.busy / row.total * 100 if row.total else 0:5.1f}%")


if __name__ == "__main__":
    sys.exit(main())

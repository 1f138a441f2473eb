"""Pause measurements inside the server, for benchmarks (``bench/http.py``): not part of the API.

With ``ORDERFSM_PAUSES=1`` in its environment, ``create_app()`` installs a :class:`PauseMonitor`
and answers ``GET /_sim/pauses`` (``?reset=1`` starts a new measurement); without it the path
does not exist. The monitor records:

* every garbage collection (``gc.callbacks``): how long it took, by generation, both wall time
  and the CPU time of the thread that ran it;
* event-loop stalls: a task wakes every ``interval`` seconds and records how late it woke. Each
  late wake-up is split, from the loop thread's ``/proc/thread-self/schedstat``, into the time
  the thread ran (the server's own work: a collection, a long computation), the time it was
  ready but waited for a CPU (other processes on the machine), and the rest, "blocked"
  (waiting for the GIL held by another of the server's threads, a lock, or the disk). Blocked
  time counts as CPU wait as far as the server's other threads were waiting for a CPU
  meanwhile (a GIL holder that is not given a CPU). ``server_ms`` is the late wake-up minus
  the CPU wait: what the server caused, however busy the machine was;
* how long each request took inside the server, from its first byte to its last;
* the SQLite store's commit and checkpoint durations, when the store keeps them (``timings``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from typing import Any

__all__ = ["PauseMonitor", "ENV_VAR", "enabled"]

ENV_VAR = "ORDERFSM_PAUSES"


def enabled() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off")


class _Stat:
    __slots__ = ("count", "total", "max", "max_cpu")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.max_cpu = 0.0

    def add(self, seconds: float, cpu: float = 0.0) -> None:
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
            self.max_cpu = cpu

    def json(self, cpu: bool = False) -> dict[str, Any]:
        out = {"count": self.count, "total_ms": round(self.total * 1e3, 3),
               "max_ms": round(self.max * 1e3, 3)}
        if cpu:
            out["max_cpu_ms"] = round(self.max_cpu * 1e3, 3)
        return out


class _SchedStat:
    """(on-CPU ns, runqueue-wait ns) of the calling thread, and the runqueue wait of the
    process's other threads, from /proc (zeros without it)."""

    def __init__(self) -> None:
        self.tid = threading.get_native_id()
        self.fd = self._open("/proc/thread-self/schedstat")
        self.others: dict[str, int] = {}  # tid -> fd
        self.calls = 0

    @staticmethod
    def _open(path: str) -> int | None:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            return None

    def read(self) -> tuple[int, int]:
        if self.fd is None:
            return 0, 0
        fields = os.pread(self.fd, 128, 0).split()
        return int(fields[0]), int(fields[1])

    def others_wait(self) -> dict[str, int]:
        """Runqueue wait (ns) so far of each of the process's other threads; the list of
        threads is refreshed every 50 calls (threads come and go: workers, the checkpointer)."""
        if self.fd is None:
            return {}
        self.calls += 1
        if self.calls % 50 == 1:
            self._refresh()
        out = {}
        for tid, fd in list(self.others.items()):
            try:
                out[tid] = int(os.pread(fd, 128, 0).split()[1])
            except (OSError, IndexError, ValueError):  # the thread is gone
                os.close(fd)
                del self.others[tid]
        return out

    def _refresh(self) -> None:
        try:
            tids = set(os.listdir("/proc/self/task")) - {str(self.tid)}
        except OSError:
            return
        for tid in tids - set(self.others):
            fd = self._open(f"/proc/self/task/{tid}/schedstat")
            if fd is not None:
                self.others[tid] = fd

    def close(self) -> None:
        for fd in [self.fd, *self.others.values()]:
            if fd is not None:
                os.close(fd)
        self.fd, self.others = None, {}


class PauseMonitor:
    """GC collections, event-loop stalls and request durations (see the module docstring)."""

    def __init__(self, interval: float = 0.002, store: Any = None) -> None:
        self.interval = interval
        self.store = store
        self._lock = threading.Lock()
        self._gc_start: tuple[float, float] | None = None
        self._task: asyncio.Task | None = None
        self._installed = False
        self.reset()

    # ------------------------------------------------------------------ recording
    def reset(self) -> None:
        with self._lock:
            self.started = time.perf_counter()
            self.gc = {g: _Stat() for g in range(3)}
            self.requests = _Stat()
            self.ticks = 0
            zero = {"ms": 0.0, "cpu_ms": 0.0, "runqueue_ms": 0.0, "blocked_ms": 0.0,
                    "others_runqueue_ms": 0.0, "server_ms": 0.0}
            self.stall = dict(zero)
            self.server_stall = dict(zero)
            self.stalls_over = {20: 0, 50: 0}
            self.runqueue_ms = 0.0
            stats = getattr(self.store, "timings", None)
            if stats is not None:
                stats.reset()

    def install(self) -> "PauseMonitor":
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True
        return self

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = (time.perf_counter(), time.thread_time())
        elif self._gc_start is not None:
            t0, c0 = self._gc_start
            self._gc_start = None
            self.gc[info["generation"]].add(time.perf_counter() - t0, time.thread_time() - c0)

    def request_done(self, seconds: float) -> None:
        self.requests.add(seconds)

    def start_probe(self) -> None:
        """Start the event-loop probe on the running loop (once; from a coroutine)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probe())

    async def _probe(self) -> None:
        sched = _SchedStat()
        interval = self.interval
        try:
            cpu0, wait0 = sched.read()
            other0 = sched.others_wait()
            t0 = time.perf_counter()
            while True:
                await asyncio.sleep(interval)
                t1 = time.perf_counter()
                cpu1, wait1 = sched.read()
                other1 = sched.others_wait()
                other = sum(w - other0[t] for t, w in other1.items() if t in other0)
                self._tick(t1 - t0 - interval, (cpu1 - cpu0) / 1e9, (wait1 - wait0) / 1e9,
                           other / 1e9)
                t0, cpu0, wait0, other0 = t1, cpu1, wait1, other1
        finally:
            sched.close()

    def _tick(self, late: float, cpu: float, runqueue: float, others: float = 0.0) -> None:
        """One wake-up of the probe, ``late`` seconds after it was due; ``cpu`` and
        ``runqueue`` are the loop thread's CPU time and CPU wait since the previous one, and
        ``others`` the CPU wait of the process's other threads meanwhile. Time the loop was
        blocked (neither running nor waiting for a CPU: mostly waiting for the GIL) counts as
        CPU wait as far as the other threads waited for a CPU: a worker thread that holds the
        GIL and is not given a CPU stalls the loop because of the machine, not the server."""
        self.ticks += 1
        self.runqueue_ms += runqueue * 1e3
        late_ms = max(late, 0.0) * 1e3
        blocked_ms = max(late_ms - cpu * 1e3 - runqueue * 1e3, 0.0)
        wait_ms = runqueue * 1e3 + min(blocked_ms, others * 1e3)
        server_ms = max(late_ms - wait_ms, 0.0)
        parts = {"ms": late_ms, "cpu_ms": cpu * 1e3, "runqueue_ms": runqueue * 1e3,
                 "blocked_ms": blocked_ms, "others_runqueue_ms": others * 1e3,
                 "server_ms": server_ms}
        if late_ms > self.stall["ms"]:
            self.stall = parts
        if server_ms > self.server_stall["server_ms"]:
            self.server_stall = parts
        for limit in self.stalls_over:
            if server_ms > limit:
                self.stalls_over[limit] += 1

    # ------------------------------------------------------------------ reading
    def report(self) -> dict[str, Any]:
        longest_gc = max(self.gc.values(), key=lambda s: s.max)
        out: dict[str, Any] = {
            "seconds": round(time.perf_counter() - self.started, 3),
            "gc": {str(g): s.json(cpu=True) for g, s in self.gc.items()},
            "gc_max_ms": round(longest_gc.max * 1e3, 3),
            "gc_max_generation": next(g for g, s in self.gc.items() if s is longest_gc),
            "gc_frozen": gc.get_freeze_count(),
            "gc_threshold": list(gc.get_threshold()),
            "loop": {"interval_ms": self.interval * 1e3, "ticks": self.ticks,
                     "longest_stall": {k: round(v, 3) for k, v in self.stall.items()},
                     "longest_server_stall": {k: round(v, 3)
                                              for k, v in self.server_stall.items()},
                     "longest_server_stall_ms": round(self.server_stall["server_ms"], 3),
                     "server_stalls_over_ms": {str(k): v for k, v in self.stalls_over.items()},
                     "runqueue_ms": round(self.runqueue_ms, 3)},
            "requests": self.requests.json(),
        }
        stats = getattr(self.store, "timings", None)
        if stats is not None:
            out["store"] = stats.json()
        return out


class PauseMiddleware:
    """Pure ASGI middleware, outermost: starts the probe and times every request."""

    def __init__(self, app: Any, monitor: PauseMonitor) -> None:
        self.app = app
        self.monitor = monitor

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.monitor.start_probe()
        if scope.get("path") == "/_sim/pauses" and scope.get("method") == "GET":
            await self._answer(scope, send)
            return
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.monitor.request_done(time.perf_counter() - t0)

    async def _answer(self, scope: dict, send: Any) -> None:
        """The report so far; with ``reset=1`` in the query, a new measurement starts."""
        body = json.dumps(self.monitor.report()).encode()
        if b"reset=1" in scope.get("query_string", b"").split(b"&"):
            self.monitor.reset()
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

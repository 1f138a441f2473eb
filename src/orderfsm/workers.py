"""``orderfsm serve --workers N``: N simulator processes on one port, sharing one PostgreSQL
database.

The parent process checks the options, applies the schema migrations and prints the banner,
then starts N worker processes and watches them: a worker that dies is replaced. Each worker
listens on the port with a socket of its own (``SO_REUSEPORT``), so the kernel spreads new
connections over the workers evenly. (One socket shared by all workers, as uvicorn's own
multi-process mode has it, lets whichever worker wakes first accept every connection that is
waiting; a burst of keep-alive connections then all lands on one worker.)

Workers are fresh interpreters (``spawn``); each builds its app with :func:`worker_app` from the
options the parent passes (JSON, also left in ``ORDERFSM_SERVE_CONFIG`` for the app factory).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

__all__ = ["CONFIG_ENV", "worker_app", "run_workers"]

CONFIG_ENV = "ORDERFSM_SERVE_CONFIG"
log = logging.getLogger("orderfsm.workers")
#: A worker that exits this soon after starting, this many times in a row, means the workers
#: cannot start at all (the database went away, the port is taken): the parent gives up.
QUICK_EXIT = 5.0
QUICK_EXITS = 5


def worker_app() -> Any:
    """The app of one worker process."""
    from .logs import configure
    from .simulator import create_app

    options = json.loads(os.environ[CONFIG_ENV])
    configure(options["log_level"], options["log_format"], quiet=options["quiet"])
    app = create_app(variants=options["variants"], seed=options["seed"],
                     refund_settle_seconds=options["refund_settle_seconds"], db=options["db"],
                     durability=options["durability"])
    app.state.config.catalog = options["catalog"]
    app.state.config.webhook_allow = tuple(options["webhook_allow"])
    return app


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(addr)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker_main(host: str, port: int, options: str) -> None:
    import uvicorn

    from .simulator import prepare_serving_process

    os.environ[CONFIG_ENV] = options
    sock = _listen(host, port)
    app = worker_app()
    prepare_serving_process()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Serve with ``workers`` processes until SIGINT or SIGTERM."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError("--workers needs SO_REUSEPORT (Linux, the BSDs, macOS)")
    ctx = multiprocessing.get_context("spawn")
    text = json.dumps(options)
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        proc = ctx.Process(target=_worker_main, args=(host, port, text),
                           name="orderfsm-worker", daemon=False)
        proc.start()
        return proc, time.monotonic()

    procs = [start() for _ in range(workers)]
    quick = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (proc, started) in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                quick = quick + 1 if time.monotonic() - started < QUICK_EXIT else 0
                if quick >= QUICK_EXITS:
                    print("orderfsm: the workers keep exiting at start; giving up",
                          file=sys.stderr)
                    stopping = True
                    break
                print(f"orderfsm: worker {proc.pid} exited ({proc.exitcode}); starting another",
                      file=sys.stderr)
                procs[i] = start()
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc, _ in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

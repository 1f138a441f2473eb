"""Run the simulator from Python: ``create_app`` for in-process use, ``running`` for a real
uvicorn server on loopback (for code under test that needs a base URL, not a client)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Iterator, Mapping

__all__ = ["create_app", "running", "serve_forever"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    from simulator import create_app as _create

    return _create(*args, **kwargs)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    app: Any = None,
    variants: Mapping[str, str] | None = None,
    seed: int | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """Start a real uvicorn server in a background thread and yield its base URL.

    ``port=0`` picks a free port. The server stops when the block exits."""
    import uvicorn

    if app is None:
        app = create_app(variants=variants, seed=seed)
    if port == 0:
        port = _free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"orderfsm-sim-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the simulator did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve_forever(host: str, port: int, app: Any, log_level: str = "info") -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)

"""``orderfsm serve --workers N``: N simulator processes on one port, sharing one PostgreSQL
database.

The parent process checks the options, applies the schema migrations and prints the banner;
uvicorn's multi-process mode then starts N worker processes that accept connections on the
same listening socket (and starts a new one when a worker dies). Each worker builds its app with
:func:`worker_app`, from the options the parent put in the ``ORDERFSM_SERVE_CONFIG``
environment variable (JSON), since uvicorn starts workers as fresh interpreters.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["CONFIG_ENV", "worker_app", "run_workers"]

CONFIG_ENV = "ORDERFSM_SERVE_CONFIG"


def worker_app() -> Any:
    """The app of one worker process (uvicorn calls it: ``factory=True``)."""
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


def run_workers(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Serve with ``workers`` processes until interrupted."""
    import uvicorn

    os.environ[CONFIG_ENV] = json.dumps(options)
    uvicorn.run("orderfsm.workers:worker_app", factory=True, host=host, port=port,
                workers=workers, log_level="warning", access_log=False)

"""``pytest --square-coverage`` and ``--square-coverage-json PATH``: rule coverage of a test run.

Registered by :mod:`orderfsm.pytest_plugin` when either option is given. Every test that uses
the Square fixtures adds its merchants' counts when it finishes:

* in-process: the counts of every merchant of the test's simulator app;
* ``--square-base-url``: ``GET /_sim/coverage`` for the test's token, minus what that token had
  when the run first used it (so a shared ``--square-token`` counts this run only).

Under pytest-xdist each worker sends its sum to the controller, which adds them up and reports.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .coverage import Coverage, render

__all__ = ["CoverageCollector", "PLUGIN_NAME"]

PLUGIN_NAME = "orderfsm-square-coverage"
_WORKER_KEY = "orderfsm_square_coverage"


class CoverageCollector:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.table = bool(config.getoption("square_coverage", False))
        self.json_path: str | None = config.getoption("square_coverage_json", None)
        self.total = Coverage()
        self._baseline: dict[tuple[str, str], Coverage] = {}
        self._latest: dict[tuple[str, str], Coverage] = {}
        self.unavailable: dict[str, str] = {}  # base URL -> why no coverage came from it
        self.workers = 0

    # ------------------------------------------------------------------ collecting
    def add_app(self, app: Any) -> None:
        """Add every merchant of an in-process simulator app (call once per app)."""
        store = getattr(app.state, "store", None)
        for cov in getattr(store, "coverage", {}).values():
            self.total.add(cov)

    def _fetch(self, http: Any, base_url: str) -> Coverage | None:
        if base_url in self.unavailable:
            return None
        try:
            response = http.get("/_sim/coverage")
        except Exception as exc:  # noqa: BLE001 - any failure means: no coverage from there
            self.unavailable[base_url] = f"GET /_sim/coverage failed: {exc}"
            return None
        if response.status_code != 200:
            self.unavailable[base_url] = f"GET /_sim/coverage answered {response.status_code}"
            return None
        try:
            return Coverage.from_json(response.json())
        except ValueError as exc:
            self.unavailable[base_url] = f"GET /_sim/coverage is not coverage JSON: {exc}"
            return None

    def remote_started(self, http: Any, base_url: str, token: str, fresh_token: bool) -> None:
        key = (base_url, token)
        if key in self._baseline:
            return
        if fresh_token:
            self._baseline[key] = Coverage()
            return
        base = self._fetch(http, base_url)
        if base is not None:
            self._baseline[key] = base

    def remote_finished(self, http: Any, base_url: str, token: str) -> None:
        key = (base_url, token)
        if key not in self._baseline:
            return
        latest = self._fetch(http, base_url)
        if latest is not None:
            self._latest[key] = latest

    def result(self) -> Coverage:
        out = Coverage().add(self.total)
        for key, latest in self._latest.items():
            out.add(latest.minus(self._baseline[key]))
        return out

    # ------------------------------------------------------------------ pytest hooks
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: add what a worker counted."""
        data = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if data:
            self.total.add(json.loads(data))
            self.workers += 1

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: hand the counts to the controller
            workeroutput[_WORKER_KEY] = json.dumps(self.result().to_json(complete=False))
            return
        if self.json_path:
            with open(self.json_path, "w", encoding="utf-8") as fh:
                json.dump(self.result().to_json(), fh, indent=2, sort_keys=False)
                fh.write("\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        tr = terminalreporter
        for url, why in self.unavailable.items():
            tr.write_line(f"orderfsm: no rule coverage from {url}: {why}")
        if self.table:
            tr.write_sep("=", "orderfsm rule coverage")
            if self.workers:
                tr.write_line(f"(summed over {self.workers} workers)")
            tr.write(render(self.result(), "table"))
        if self.json_path:
            tr.write_line(f"orderfsm: rule coverage written to {self.json_path}")

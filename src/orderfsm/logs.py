"""Logging set-up for ``orderfsm serve``: a level, a text or JSON format, library noise off.

The simulator logs one record per request on the ``orderfsm.simulator`` logger; each carries
its fields (method, path, status, duration_ms, merchant, rule) in ``record.http`` so the JSON
format can emit them as keys instead of parsing the text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import IO

__all__ = ["configure", "JsonFormatter", "LEVELS", "NOISY_LIBRARIES"]

LEVELS = ("debug", "info", "warning", "error", "critical")

#: Loggers whose INFO lines say nothing to a simulator user: ``transitions`` logs every state
#: entry and exit ("Finished processing state PROPOSED exit callbacks."), ``httpx`` every
#: webhook delivery request.
NOISY_LIBRARIES = ("transitions", "httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request fields if any, and
    the traceback (as one string) if any."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "http", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), default=str)


def configure(level: str = "info", fmt: str = "text", *, quiet: bool = False,
              stream: IO[str] | None = None) -> logging.Handler:
    """Send orderfsm's logs to ``stream`` (stderr) at ``level``; ``quiet`` means warnings and
    errors only. Third-party chatter (NOISY_LIBRARIES) is kept to warnings unless ``level`` is
    debug. Returns the installed handler."""
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; choose one of {', '.join(LEVELS)}")
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}; choose text or json")
    numeric = logging.WARNING if quiet else getattr(logging, level.upper())
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_orderfsm", False):
            root.removeHandler(old)
    handler._orderfsm = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    library_level = logging.DEBUG if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)
    return handler

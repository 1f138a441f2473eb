"""orderfsm.logs: levels, the JSON format, --quiet, and the state-machine library kept quiet."""

from __future__ import annotations

import io
import json
import logging
from typing import Iterator

import pytest
from typer.testing import CliRunner

from orderfsm.cli import app
from orderfsm.engine import Engine
from orderfsm.logs import JsonFormatter, configure


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level,
             {n: logging.getLogger(n).level for n in ("transitions", "httpx", "httpcore")})
    yield
    for h in list(root.handlers):
        if getattr(h, "_orderfsm", False):
            root.removeHandler(h)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def _drive_engine() -> None:
    """A paid order: the order and payment machines fire (transitions logs each at INFO)."""
    eng = Engine()
    usd = {"amount": 100, "currency": "USD"}
    order = eng.create_order({"location_id": eng.main_location_id, "line_items": [
        {"name": "x", "quantity": "1", "base_price_money": usd}]})
    eng.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": "k",
                        "amount_money": usd, "order_id": order["id"]})


def test_the_library_does_chatter_without_configure(restore_logging) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("transitions").setLevel(logging.NOTSET)
    try:
        _drive_engine()
    finally:
        logging.getLogger().removeHandler(handler)
    assert "processing state" in out.getvalue()  # what configure() keeps out


def test_text_at_info_has_no_state_machine_chatter(restore_logging) -> None:
    out = io.StringIO()
    configure("info", "text", stream=out)
    _drive_engine()
    logging.getLogger("orderfsm.simulator").info("GET /v2/locations 200")
    text = out.getvalue()
    assert "GET /v2/locations 200" in text and " INFO " in text
    assert "transitions" not in text and "processing state" not in text


def test_debug_lets_library_lines_through(restore_logging) -> None:
    configure("debug", "text", stream=io.StringIO())
    assert logging.getLogger("transitions").getEffectiveLevel() == logging.DEBUG


def test_quiet_keeps_warnings_and_errors(restore_logging) -> None:
    out = io.StringIO()
    configure("debug", "text", quiet=True, stream=out)
    log = logging.getLogger("orderfsm.simulator")
    log.info("a request line")
    log.warning("a warning")
    log.error("an error")
    assert "a request line" not in out.getvalue()
    assert "a warning" in out.getvalue() and "an error" in out.getvalue()


def test_json_lines_carry_the_request_fields(restore_logging) -> None:
    out = io.StringIO()
    configure("info", "json", stream=out)
    fields = {"method": "GET", "path": "/v2/x", "status": 404, "duration_ms": 1.5,
              "merchant": "abcd1234", "rule": "order.not_found"}
    logging.getLogger("orderfsm.simulator").info("GET /v2/x 404", extra={"http": fields})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("orderfsm.simulator").exception("crash")
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {k: first[k] for k in fields} == fields
    assert first["level"] == "info" and first["message"] == "GET /v2/x 404"
    assert first["time"].endswith("Z")
    assert second["level"] == "error" and "ValueError: boom" in second["traceback"]


def test_configure_twice_keeps_one_handler(restore_logging) -> None:
    configure("info", "text", stream=io.StringIO())
    configure("info", "json", stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_orderfsm", False)]
    assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)


@pytest.mark.parametrize("args,needle", [
    (("--log-level", "loud"), "unknown log level"),
    (("--log-format", "xml"), "unknown log format"),
])
def test_serve_rejects_bad_log_options(args: tuple[str, ...], needle: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "0", *args])
    assert result.exit_code == 2
    assert needle in result.output + (result.stderr if result.stderr_bytes else "")

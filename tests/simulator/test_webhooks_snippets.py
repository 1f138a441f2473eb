"""The webhook snippets in docs/snippets run and print what docs/webhooks.md says they print."""

from __future__ import annotations

import json
import runpy
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from simulator.outbox import sign

SNIPPETS = Path(__file__).resolve().parents[2] / "docs" / "snippets"


def _expected_output(path: Path) -> list[str]:
    """The ``# ...`` lines right after the last print in a snippet: its documented output."""
    lines = path.read_text().splitlines()
    last_print = max(i for i, line in enumerate(lines) if "print(" in line)
    out = []
    for line in lines[last_print + 1:]:
        stripped = line.strip()
        if not stripped.startswith("# "):
            break
        out.append(stripped[2:])
    return out


def _run(name: str, capsys: pytest.CaptureFixture[str]):
    namespace = runpy.run_path(str(SNIPPETS / name))
    result = namespace["main"]()
    printed = capsys.readouterr().out.splitlines()
    assert printed == _expected_output(SNIPPETS / name)
    return result


def test_receiver_snippet_verifies_every_notification(capsys) -> None:
    events = _run("webhook_receiver.py", capsys)
    assert [e["type"] for e in events] == ["payment.created", "payment.updated"]
    assert len({e["event_id"] for e in events}) == 2


def test_receiver_snippet_rejects_a_bad_signature() -> None:
    namespace = runpy.run_path(str(SNIPPETS / "webhook_receiver.py"))
    handler = namespace["WebhookHandler"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/square/webhooks"
        handler.notification_url, handler.signature_key = url, "the-right-key"
        body = json.dumps({"event_id": "e1", "type": "payment.created"}).encode()
        with httpx.Client(trust_env=False) as client:
            forged = client.post(url, content=body, headers={
                "x-square-hmacsha256-signature": sign("wrong", url, body)})
            genuine = client.post(url, content=body, headers={
                "x-square-hmacsha256-signature": sign("the-right-key", url, body)})
        assert (forged.status_code, genuine.status_code) == (403, 200)
        assert list(handler.seen) == ["e1"]
    finally:
        server.shutdown()
        server.server_close()


def test_retries_snippet_shows_the_schedule(capsys) -> None:
    delivery = _run("webhook_retries.py", capsys)
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 200]

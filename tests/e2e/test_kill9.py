"""``orderfsm serve`` killed with SIGKILL mid-stream and started again on the same state file:
every write the server acknowledged is there, no id is handed out twice, pre-crash idempotency
keys replay, and the clock, variants, subscriptions and a pending webhook retry survive."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from square import Square
from square.core.api_error import ApiError

RO = {"max_retries": 0}
URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
RESTORED = re.compile(r"state: (.+); restored (\d+) merchant")
TOKEN = "crash-test"


def _hook(http_receiver) -> SimpleNamespace:
    """A webhook receiver on loopback that answers ``status`` and records events; with
    ``hang`` set it holds each request until ``release`` is."""
    hook = SimpleNamespace(status=503, events=[], hang=threading.Event(),
                           release=threading.Event())

    def on_post(path: str, body: bytes) -> int:
        hook.events.append(json.loads(body))
        if hook.hang.is_set():
            hook.release.wait(30)
        return hook.status

    hook.receiver = http_receiver(on_post)
    hook.url = hook.receiver.url()
    return hook


def _serve(cwd: Path, *extra: str) -> tuple[subprocess.Popen, str, str]:
    return _serve_env(cwd, None, *extra)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()


def test_nothing_acknowledged_is_lost_on_kill_9(tmp_path: Path, http_receiver) -> None:
    hook = _hook(http_receiver)
    proc, base, banner = _serve(tmp_path)
    try:
        state_file = tmp_path / ".orderfsm" / "state.sqlite3"
        assert RESTORED.search(banner).groups() == (str(state_file), "0")
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=10)
        sdk = Square(token=TOKEN, base_url=base)
        # Before the stream: a subscription whose receiver fails, a variant, a moved clock.
        sub = sdk.webhooks.subscriptions.create(
            subscription={"name": "crash", "event_types": ["order.created"],
                          "notification_url": hook.url}, request_options=RO).subscription
        http.post("/_sim/variants", json={"cancel_after_payment": "never"}).raise_for_status()
        clock = http.post("/_sim/clock/advance", json={"seconds": 3600}).json()["now"]
        order = sdk.orders.create(order={"location_id": "main"}, idempotency_key="order-1",
                                  request_options=RO).order
        http.post("/_sim/webhooks/flush", json={"timeout_seconds": 30}).raise_for_status()
        assert [e["type"] for e in hook.events] == ["order.created"]  # failed: retry in 1 min
        # The retry falls due and is in flight (the receiver hangs) when the server is killed.
        hook.hang.set()
        http.post("/_sim/clock/advance", json={"seconds": 60}).raise_for_status()
        deadline = time.monotonic() + 30
        while len(hook.events) < 2:
            assert time.monotonic() < deadline, "the retry was not sent"
            time.sleep(0.01)

        # A stream of payments from a thread; SIGKILL lands in the middle of it.
        acked: dict[str, Any] = {}
        stop = threading.Event()

        def write() -> None:
            n = 0
            while not stop.is_set():
                key = f"pay-{n}"
                try:
                    p = sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=key,
                                            amount_money={"amount": 100 + n, "currency": "USD"},
                                            request_options=RO).payment
                except Exception:
                    return  # the server is gone
                acked[key] = p.model_dump(mode="json", exclude_none=True)
                n += 1

        writer = threading.Thread(target=write)
        writer.start()
        while len(acked) < 40:
            time.sleep(0.01)
        _kill(proc)
        stop.set()
        writer.join(30)
        assert len(acked) >= 40

        hook.status = 200
        hook.hang.clear()
        hook.release.set()
        proc, base, banner = _serve(tmp_path)
        assert RESTORED.search(banner).groups() == (str(state_file), "1")
        # The delivery that was due at the crash goes out again, without any request.
        deadline = time.monotonic() + 30
        while len(hook.events) < 3:
            assert time.monotonic() < deadline, "the due delivery was not resumed"
            time.sleep(0.02)
        assert {e["event_id"] for e in hook.events} == {hook.events[0]["event_id"]}
        assert hook.events[-1]["data"]["id"] == order.id
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=10)
        sdk = Square(token=TOKEN, base_url=base)
        # Every acknowledged payment is there, as it was acknowledged (or later).
        for key, p in acked.items():
            got = sdk.payments.get(p["id"], request_options=RO).payment
            assert got.amount_money.amount == p["amount_money"]["amount"]
        # A pre-crash key replays; with another body it is refused.
        first_key, first = next(iter(acked.items()))
        again = sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=first_key,
                                    amount_money={"amount": 100, "currency": "USD"},
                                    request_options=RO).payment
        assert again.id == first["id"]
        with pytest.raises(ApiError) as err:
            sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=first_key,
                                amount_money={"amount": 5, "currency": "USD"}, request_options=RO)
        assert err.value.body["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
        # No id is handed out twice.
        known = {p["id"] for p in acked.values()} | {p["order_id"] for p in acked.values()}
        known.add(order.id)
        new = sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="after",
                                  amount_money={"amount": 1, "currency": "USD"},
                                  request_options=RO).payment
        assert new.id not in known and new.order_id not in known
        # Clock, variants and the subscription survived.
        assert http.get("/_sim/clock").json()["now"] >= clock
        assert http.get("/_sim/variants").json()["variants"]["cancel_after_payment"] == "never"
        subs = sdk.webhooks.subscriptions.list(request_options=RO).items
        assert [s.id for s in subs] == [sub.id]
        assert http.post("/_sim/webhooks/flush", json={"timeout_seconds": 30}).json()["idle"]
        [event] = http.get("/_sim/events", params={"type": "order.created"}).json()["events"]
        assert event["deliveries"][0]["status"] == "delivered"
        assert len(event["deliveries"][0]["attempts"]) >= 2
    finally:
        _kill(proc)
        hook.release.set()


def test_where_state_lives_follows_db_env_and_fresh(tmp_path: Path, monkeypatch) -> None:
    """--db PATH, ORDERFSM_DB, --fresh and --db memory, as the start-up line reports them."""
    path = tmp_path / "shop" / "state.db"
    runs = [(("--db", f"sqlite:///{path}"), None, (str(path), "0")),
            ((), str(path), (str(path), "1")),  # ORDERFSM_DB names the same file
            (("--fresh",), str(path), (str(path), "0")),
            (("--db", "memory"), None, None)]
    for extra, env_db, expected in runs:
        if env_db is None:
            monkeypatch.delenv("ORDERFSM_DB", raising=False)
        else:
            monkeypatch.setenv("ORDERFSM_DB", env_db)
        proc, base, banner = _serve_env(tmp_path, env_db, *extra)
        try:
            found = RESTORED.search(banner)
            if expected is None:
                assert found.group(1).startswith("memory")
            else:
                assert found.groups() == expected, banner
            r = httpx.post(base + "/v2/orders", headers={"Authorization": "Bearer t"},
                           json={"idempotency_key": "o", "order": {"location_id": "main"}})
            assert r.status_code == 200
        finally:
            _kill(proc)
    assert not (tmp_path / ".orderfsm").exists()  # the default file was never used


def _serve_env(cwd: Path, env_db: str | None, *extra: str):
    saved = os.environ.get("ORDERFSM_DB")
    try:
        if env_db is not None:
            os.environ["ORDERFSM_DB"] = env_db
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        if env_db is None:
            env.pop("ORDERFSM_DB", None)
        proc = subprocess.Popen([sys.executable, "-m", "orderfsm.cli", "serve", "--port", "0",
                                 "--quiet", *extra], cwd=cwd, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finally:
        if saved is None:
            os.environ.pop("ORDERFSM_DB", None)
        else:
            os.environ["ORDERFSM_DB"] = saved
    lines: list[str] = []
    base = None
    deadline = time.monotonic() + 60
    while base is None or not any(RESTORED.search(x) for x in lines):
        line = proc.stdout.readline()
        assert line, f"serve exited: {''.join(lines)}"
        lines.append(line)
        m = URL.search(line)
        base = base or (m.group(1) if m else None)
        assert time.monotonic() < deadline
    while True:
        try:
            httpx.get(base + "/v2/locations", timeout=1)
            break
        except httpx.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    return proc, base, "".join(lines)

"""``orderfsm serve --db postgresql://... --workers 2``: two worker processes on one port, one
database. Races that must have one winner across processes, timers that fire once, a worker
killed with SIGKILL under load, and a webhook delivery whose worker is killed mid-flight.

Every request here opens its own connection, so the kernel hands requests to either worker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import httpx
import pytest

from .conftest import stop_process

URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
N = 50


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class Workers:
    def __init__(self, proc: subprocess.Popen, base: str, url: str, log: Path) -> None:
        self.proc, self.base, self.url, self.log = proc, base, url, log

    def pids(self) -> list[int]:
        return [p for p in _children(self.proc.pid) if "spawn_main" in _cmdline(p)]

    def call(self, method: str, path: str, token: str, body: Any = None,
             timeout: float = 30) -> httpx.Response:
        # A connection of its own: consecutive calls may land on different workers.
        return httpx.request(method, self.base + path, json=body, timeout=timeout,
                             headers={"Authorization": f"Bearer {token}"})

    def ok(self, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        r = self.call(method, path, token, body)
        assert r.status_code == 200, r.text
        return r.json()

    def deliverer(self) -> int | None:
        """The OS pid of the worker holding the delivery lock (it names its connection)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            rows = db.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND a.application_name LIKE 'orderfsm-deliverer-%'").fetchall()
        return int(rows[0][0].rsplit("-", 1)[1]) if rows else None


def _start(tmp: Path, url: str) -> Iterator[Workers]:
    log = tmp / "workers.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    env.pop("ORDERFSM_DB", None)
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "orderfsm.cli", "serve", "--port", "0",
                                 "--quiet", "--db", url, "--workers", "2"], cwd=tmp, env=env,
                                text=True, stdout=subprocess.PIPE, stderr=err)
    try:
        base = None
        deadline = time.monotonic() + 60
        while base is None:
            line = proc.stdout.readline()
            assert line, f"serve exited: {log.read_text()}"
            m = URL.search(line)
            base = m.group(1) if m else None
        server = Workers(proc, base, url, log)
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the workers did not start"
            try:
                if len(server.pids()) >= 2 and server.call(
                        "GET", "/v2/locations", "warm", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield server
    finally:
        stop_process(proc, 15)


@pytest.fixture(scope="module")
def workers(pg_server, tmp_path_factory) -> Iterator[Workers]:
    url = pg_server.create_database(f"workers_{os.getpid()}")
    yield from _start(tmp_path_factory.mktemp("workers"), url)


def _together(calls: list) -> list[Any]:
    """Run the calls at once (a barrier releases them together); their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def test_both_workers_serve_and_one_idempotency_key_gives_one_payment(workers) -> None:
    before = {pid: _cpu_ticks(pid) for pid in workers.pids()}
    body = {"idempotency_key": "same-key", "source_id": "cnon:card-nonce-ok",
            "amount_money": _usd(500)}
    results = _together([lambda: workers.call("POST", "/v2/payments", "race-pay", body)] * N)
    assert [r.status_code for r in results] == [200] * N
    ids = {r.json()["payment"]["id"] for r in results}
    assert len(ids) == 1
    listed = workers.ok("GET", "/v2/payments", "race-pay")["payments"]
    assert [p["id"] for p in listed] == list(ids)
    # The same key with another body is refused, whichever worker answers.
    again = [workers.call("POST", "/v2/payments", "race-pay", {**body, "amount_money": _usd(7)})
             for _ in range(4)]
    assert {r.json()["errors"][0]["code"] for r in again} == {"IDEMPOTENCY_KEY_REUSED"}
    # Both processes did part of the work.
    assert all(_cpu_ticks(pid) - ticks >= 5 for pid, ticks in before.items()), before


def test_one_order_version_has_one_winner(workers) -> None:
    order = workers.ok("POST", "/v2/orders", "race-version", {
        "idempotency_key": "o", "order": {"location_id": "main", "line_items": [
            {"name": "Tea", "quantity": "1", "base_price_money": _usd(300)}]}})["order"]
    calls = [lambda i=i: workers.call("PUT", f"/v2/orders/{order['id']}", "race-version", {
        "idempotency_key": f"u{i}", "order": {"version": order["version"],
                                              "reference_id": f"r{i}"}}) for i in range(N)]
    results = _together(calls)
    winners = [r for r in results if r.status_code == 200]
    losers = [r for r in results if r.status_code != 200]
    assert len(winners) == 1 and len(losers) == N - 1
    assert {(r.status_code, r.json()["errors"][0]["code"]) for r in losers} == \
        {(400, "VERSION_MISMATCH")}
    final = workers.ok("GET", f"/v2/orders/{order['id']}", "race-version")["order"]
    assert final["version"] == order["version"] + 1
    assert final["reference_id"] == winners[0].json()["order"]["reference_id"]


def test_concurrent_refunds_never_exceed_the_captured_amount(workers) -> None:
    payment = workers.ok("POST", "/v2/payments", "race-refund", {
        "idempotency_key": "p", "source_id": "cnon:card-nonce-ok",
        "amount_money": _usd(1000)})["payment"]
    calls = [lambda i=i: workers.call("POST", "/v2/refunds", "race-refund", {
        "idempotency_key": f"r{i}", "payment_id": payment["id"],
        "amount_money": _usd(150)}) for i in range(30)]
    results = _together(calls)
    accepted = [r for r in results if r.status_code == 200]
    assert len(accepted) == 6  # 6 x 150 = 900; a seventh would pass 1000
    assert all(r.status_code == 400 for r in results if r.status_code != 200)
    refunds = workers.ok("GET", "/v2/refunds", "race-refund")["refunds"]
    assert sum(r["amount_money"]["amount"] for r in refunds) == 900
    got = workers.ok("GET", f"/v2/payments/{payment['id']}", "race-refund")["payment"]
    assert got["refunded_money"]["amount"] == 900


def test_cancel_and_pay_never_leave_a_canceled_order_with_a_completed_payment(workers) -> None:
    token = "race-cancel"
    outcomes = set()
    for n in range(8):
        order = workers.ok("POST", "/v2/orders", token, {
            "idempotency_key": f"o{n}", "order": {"location_id": "main", "line_items": [
                {"name": "Cake", "quantity": "1", "base_price_money": _usd(400)}]}})["order"]
        cancel = lambda: workers.call("PUT", f"/v2/orders/{order['id']}", token, {  # noqa: E731
            "idempotency_key": f"c{n}", "order": {"version": order["version"],
                                                   "state": "CANCELED"}})
        pay = lambda: workers.call("POST", "/v2/payments", token, {  # noqa: E731
            "idempotency_key": f"p{n}", "source_id": "cnon:card-nonce-ok",
            "amount_money": _usd(400), "order_id": order["id"]})
        c, p = _together([cancel, pay])
        outcomes.add((c.status_code, p.status_code))
        final = workers.ok("GET", f"/v2/orders/{order['id']}", token)["order"]
        payments = [x for x in workers.ok("GET", "/v2/payments", token)["payments"]
                    if x.get("order_id") == order["id"]]
        completed = [x for x in payments if x["status"] == "COMPLETED"]
        assert not (final["state"] == "CANCELED" and completed), (final, payments)
        assert (c.status_code == 200) != (p.status_code == 200 and bool(completed)), (c.text,
                                                                                     p.text)


def test_timers_fire_once_when_workers_advance_the_clock_together(workers) -> None:
    token = "race-timers"
    for i in range(5):
        workers.ok("POST", "/v2/payments", token, {
            "idempotency_key": f"hold{i}", "source_id": "cnon:card-nonce-ok",
            "amount_money": _usd(100 + i), "autocomplete": False, "delay_duration": "PT1M"})
    start = workers.ok("GET", "/_sim/clock", token)["now"]
    results = _together([lambda: workers.call("POST", "/_sim/clock/advance", token,
                                              {"seconds": 60})] * 10)
    assert [r.status_code for r in results] == [200] * 10
    assert sum(r.json()["fired"] for r in results) == 5
    payments = workers.ok("GET", "/v2/payments", token)["payments"]
    assert sorted(p["status"] for p in payments) == ["CANCELED"] * 5
    from datetime import datetime

    moved = (datetime.fromisoformat(workers.ok("GET", "/_sim/clock", token)["now"])
             - datetime.fromisoformat(start)).total_seconds()
    assert moved == 600  # ten advances of a minute, none lost


def _hook(http_receiver) -> SimpleNamespace:
    """A loopback webhook receiver: records each delivery; the first one hangs until
    ``release`` is set (its sender is killed meanwhile) and is answered 500, later ones 200."""
    hook = SimpleNamespace(received=[], release=threading.Event(), arrived=threading.Event())

    def on_post(path: str, body: bytes) -> int:
        first = not hook.received
        status = 500 if first else 200
        hook.received.append((json.loads(body)["event_id"], status))  # (event_id, status)
        if first:
            hook.arrived.set()
            hook.release.wait(30)
        return status

    hook.url = http_receiver(on_post).url()
    return hook


def test_a_delivery_whose_worker_is_killed_is_retried_and_delivered_once(workers,
                                                                          http_receiver) -> None:
    token = "deliver-kill"
    hook = _hook(http_receiver)
    try:
        workers.ok("POST", "/v2/webhooks/subscriptions", token, {"subscription": {
            "event_types": ["order.created"], "notification_url": hook.url}})
        order = workers.ok("POST", "/v2/orders", token, {
            "idempotency_key": "o", "order": {"location_id": "main"}})["order"]
        assert hook.arrived.wait(20), "the delivery never started"
        sender = workers.deliverer()
        assert sender in workers.pids()
        os.kill(sender, signal.SIGKILL)
        hook.release.set()
        body = workers.ok("POST", "/_sim/webhooks/flush", token, {"timeout_seconds": 30})
        assert body["idle"] and body["deliveries"]["delivered"] == 1, body
        [event] = workers.ok("GET", "/_sim/events", token)["events"]
        assert event["object_id"] == order["id"]
        [delivery] = event["deliveries"]
        # The attempt cut off by the kill was never recorded; the retry was, once.
        assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 1
        assert hook.received == [(event["event_id"], 500), (event["event_id"], 200)]
        deadline = time.monotonic() + 30
        while workers.deliverer() in (None, sender):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        hook.release.set()


def test_kill_9_of_a_worker_under_load_loses_nothing_acknowledged(workers) -> None:
    acked: dict[str, tuple[str, str, int]] = {}  # key -> (token, payment id, amount)
    stop = threading.Event()
    errors: list[str] = []

    def write(w: int) -> None:
        token = f"load-{w % 3}"
        n = 0
        while not stop.is_set():
            key = f"w{w}-{n}"
            amount = 100 + n
            try:
                r = workers.call("POST", "/v2/payments", token, {
                    "idempotency_key": key, "source_id": "cnon:card-nonce-ok",
                    "amount_money": _usd(amount)}, timeout=10)
            except httpx.TransportError as exc:  # the worker holding the connection died
                errors.append(type(exc).__name__)
                continue
            if r.status_code == 200:
                acked[key] = (token, r.json()["payment"]["id"], amount)
            n += 1

    writers = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in writers:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 60:
            assert time.monotonic() < deadline, "no load"
            time.sleep(0.01)
        while len(workers.pids()) < 2:  # a worker killed by an earlier test is back
            assert time.monotonic() < deadline, "uvicorn did not replace a killed worker"
            time.sleep(0.05)
        victim, survivor = workers.pids()[:2]
        os.kill(victim, signal.SIGKILL)
        count = len(acked)
        while len(acked) < count + 60:  # the other worker keeps serving
            assert time.monotonic() < deadline + 30, "nothing served after the kill"
            time.sleep(0.01)
        assert Path(f"/proc/{survivor}").exists()
    finally:
        stop.set()
        for t in writers:
            t.join(30)
    for key, (token, pid, amount) in acked.items():
        got = workers.ok("GET", f"/v2/payments/{pid}", token)["payment"]
        assert got["amount_money"]["amount"] == amount
    for token in {t for t, _, _ in acked.values()}:
        listed = workers.ok("GET", "/v2/payments?limit=100", token)
        ids = {p["id"] for p in listed["payments"]}
        cursor = listed.get("cursor")
        while cursor:
            listed = workers.ok("GET", f"/v2/payments?limit=100&cursor={cursor}", token)
            ids |= {p["id"] for p in listed["payments"]}
            cursor = listed.get("cursor")
        assert {pid for t, pid, _ in acked.values() if t == token} <= ids
    # A key used before the kill replays; no id was handed out twice.
    key, (token, pid, amount) = next(iter(acked.items()))
    replay = workers.ok("POST", "/v2/payments", token, {
        "idempotency_key": key, "source_id": "cnon:card-nonce-ok", "amount_money": _usd(amount)})
    assert replay["payment"]["id"] == pid
    assert len({pid for _, pid, _ in acked.values()}) == len(acked)


def test_a_test_notification_whose_receiver_calls_back_does_not_wait_for_itself(
        workers, http_receiver):
    """TestWebhookSubscription holds the merchant only around recording the event and the
    attempt: a receiver that calls the same merchant before answering gets its answer."""
    token = "test-callback"
    seen: list[int] = []

    def on_post(path: str, body: bytes) -> int:
        for _ in range(3):  # any worker may take these
            seen.append(workers.call("GET", "/v2/orders/nope", token, timeout=5).status_code)
        return 200

    receiver = http_receiver(on_post)
    sub = workers.ok("POST", "/v2/webhooks/subscriptions", token, {"subscription": {
        "event_types": ["payment.created"], "notification_url": receiver.url()}})
    started = time.monotonic()
    result = workers.ok("POST", f"/v2/webhooks/subscriptions/{sub['subscription']['id']}"
                                "/test", token, {})["subscription_test_result"]
    assert result["status_code"] == 200 and seen == [404, 404, 404]
    assert time.monotonic() - started < 8
    [event] = workers.ok("GET", "/_sim/events", token)["events"]
    assert event["event_id"] == result["id"] and event["test"]
    assert [d["status"] for d in event["deliveries"]] == ["delivered"]


def test_each_delivery_is_attempted_once_whichever_worker_recorded_it(workers,
                                                                      http_receiver) -> None:
    token = "deliver-once"
    got: list[str] = []
    receiver = http_receiver(lambda path, body: got.append(json.loads(body)["event_id"]))
    workers.ok("POST", "/v2/webhooks/subscriptions", token, {"subscription": {
        "event_types": ["payment.created"], "notification_url": receiver.url()}})
    _together([lambda i=i: workers.call("POST", "/v2/payments", token, {
        "idempotency_key": f"k{i}", "source_id": "cnon:card-nonce-ok",
        "amount_money": _usd(100 + i)}) for i in range(20)])
    body = workers.ok("POST", "/_sim/webhooks/flush", token, {"timeout_seconds": 30})
    assert body["idle"] and body["deliveries"]["delivered"] == 20, body
    events = workers.ok("GET", "/_sim/events?type=payment.created", token)["events"]
    assert len(events) == 20
    assert sorted(got) == sorted(e["event_id"] for e in events)  # each once
    assert all(len(e["deliveries"][0]["attempts"]) == 1 for e in events)


def test_a_reset_and_a_restore_are_seen_by_every_worker(workers) -> None:
    token = "switch-gen"
    for i in range(3):
        workers.ok("POST", "/v2/payments", token, {
            "idempotency_key": f"k{i}", "source_id": "cnon:card-nonce-ok",
            "amount_money": _usd(100 + i)})
    workers.ok("POST", "/_sim/clock/advance", token, {"seconds": 3600})
    snapshot = workers.call("GET", "/_sim/state", token).content
    # Warm both workers' copies, then reset on one of them.
    assert all(len(workers.ok("GET", "/v2/payments", token)["payments"]) == 3
               for _ in range(6))
    workers.ok("POST", "/_sim/reset", token, {})
    for _ in range(6):  # whichever worker answers, the merchant is the new one
        assert workers.ok("GET", "/v2/payments", token).get("payments", []) == []
    restored = httpx.post(workers.base + "/_sim/state", content=snapshot, timeout=30,
                          headers={"Authorization": f"Bearer {token}",
                                   "content-type": "application/json"})
    assert restored.status_code == 200, restored.text
    for _ in range(6):
        assert len(workers.ok("GET", "/v2/payments", token)["payments"]) == 3
    # The restored idempotency keys replay on every worker.
    replays = {workers.ok("POST", "/v2/payments", token, {
        "idempotency_key": "k0", "source_id": "cnon:card-nonce-ok",
        "amount_money": _usd(100)})["payment"]["id"] for _ in range(6)}
    assert len(replays) == 1

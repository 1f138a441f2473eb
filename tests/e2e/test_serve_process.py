"""End to end: ``orderfsm serve`` as a real subprocess on a loopback port, driven by the official
SDK over HTTP, exactly as a developer would use it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from square import Square
from square.core.api_error import ApiError

from .conftest import stop_process

RO = {"max_retries": 0}
URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
CANCEL_AFTER_PAYMENT = {"errors": [{
    "code": "BAD_REQUEST",
    "detail": "Orders cannot be canceled after payments have been processed.",
    "field": "order.state",
    "category": "INVALID_REQUEST_ERROR",
}]}


class Server:
    def __init__(self, proc: subprocess.Popen, base_url: str, stdout: str, log: Path,
                 http: httpx.Client | None = None) -> None:
        self.proc, self.base_url, self.stdout, self.log = proc, base_url, stdout, log
        self.http = http or httpx.Client()

    def client(self, token: str) -> Square:
        return Square(token=token, base_url=self.base_url, httpx_client=self.http)


def _cli(*args: str, **kw: Any) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "orderfsm.cli", *args], env=env, text=True, **kw)


def _start(tmp: Path, *extra: str, http: httpx.Client | None = None) -> Iterator[Server]:
    log = tmp / "server.log"
    with log.open("w") as err:
        # The working directory holds the default state file (.orderfsm/state.sqlite3).
        proc = _cli("serve", "--port", "0", *extra, stdout=subprocess.PIPE, stderr=err, cwd=tmp)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 30
        base = None
        while base is None:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited early ({proc.wait()}): {''.join(seen)} "
                                     f"{log.read_text()}")
            seen.append(line)
            m = URL.search(line)
            base = m.group(1) if m else None
            assert time.monotonic() < deadline, "serve printed no base URL"
        # The URL is printed just before uvicorn binds: wait until it answers.
        while True:
            try:
                httpx.get(base + "/v2/locations", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "serve never accepted connections"
                time.sleep(0.05)
        # The rest of the banner (variants, a usage snippet) ends with the snippet's last line.
        while "print(client.locations" not in seen[-1]:
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
        server = Server(proc, base, "".join(seen), log, http)
        try:
            yield server
        finally:
            server.http.close()
    finally:
        stop_process(proc, 10)


#: The suite runs against the default SQLite store, and against two worker processes sharing a
#: PostgreSQL database (``pg_server``). There the client opens a new connection per request, so
#: consecutive requests land on either worker and each must see what the other one did.
STORES = ["sqlite", "postgres-2-workers"]


def _store_args(request: pytest.FixtureRequest, name: str) -> tuple[tuple[str, ...], Any]:
    if request.param == "sqlite":
        return (), None
    url = request.getfixturevalue("pg_server").create_database(f"{name}_{os.getpid()}")
    return (("--db", url, "--workers", "2"),
            httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)))


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args, http = _store_args(request, "e2e_serve")
    yield from _start(tmp_path_factory.mktemp("serve"), "--seed", "3", *args, http=http)


@pytest.fixture(scope="module", params=STORES)
def strict_server(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args, http = _store_args(request, "e2e_strict")
    yield from _start(tmp_path_factory.mktemp("serve-never"), "--variant",
                      "cancel_after_payment=never", "--refund-settle-seconds", "60", *args,
                      http=http)


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def _paid_refunded_order(sq: Square):
    order = sq.orders.create(order={
        "location_id": "main",
        "line_items": [{"name": "Sandwich", "quantity": "2", "base_price_money": usd(650)}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {
            "recipient": {"display_name": "Sam"}, "pickup_at": "2026-01-06T12:00:00Z"}}],
    }, idempotency_key="order-1", request_options=RO).order
    payment = sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="pay-1",
                                 amount_money=usd(1300), order_id=order.id,
                                 request_options=RO).payment
    sq.refunds.refund_payment(idempotency_key="refund-1", payment_id=payment.id,
                              amount_money=usd(1300), reason="changed my mind", request_options=RO)
    return sq.orders.get(order.id, request_options=RO).order


def test_banner(server: Server) -> None:
    assert server.proc.poll() is None
    assert server.base_url.startswith("http://127.0.0.1:")
    assert not server.base_url.endswith(":0")


def test_seed_story_over_http(server: Server) -> None:
    sq = server.client("e2e-seed")
    order = _paid_refunded_order(sq)
    with pytest.raises(ApiError) as info:
        sq.orders.update(order.id, order={"version": order.version, "state": "CANCELED"},
                         idempotency_key="cancel-1", request_options=RO)
    assert info.value.status_code == 400
    assert info.value.body == CANCEL_AFTER_PAYMENT
    uid = order.fulfillments[0].uid
    step = sq.orders.update(order.id, order={"version": order.version, "fulfillments": [
        {"uid": uid, "state": "CANCELED"}]}, idempotency_key="ful-1", request_options=RO).order
    done = sq.orders.update(order.id, order={"version": step.version, "state": "CANCELED"},
                            idempotency_key="cancel-2", request_options=RO).order
    assert done.state == "CANCELED"
    # The server logs one line per request, with the rule that rejected the first cancel.
    deadline = time.monotonic() + 5
    while "rule=order.cancel_after_payment" not in server.log.read_text():
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)
    assert re.search(rf"PUT /v2/orders/{order.id} 400 rule=order.cancel_after_payment",
                     server.log.read_text())


def test_void_then_cancel_over_http(server: Server) -> None:
    sq = server.client("e2e-void")
    order = sq.orders.create(order={"location_id": "main", "line_items": [
        {"name": "Soup", "quantity": "1", "base_price_money": usd(800)}]}, request_options=RO).order
    p = sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="hold",
                           amount_money=usd(800), order_id=order.id, autocomplete=False,
                           request_options=RO).payment
    assert sq.payments.cancel(p.id, request_options=RO).payment.status == "CANCELED"
    version = sq.orders.get(order.id, request_options=RO).order.version
    done = sq.orders.update(order.id, order={"version": version, "state": "CANCELED"},
                            request_options=RO).order
    assert done.state == "CANCELED"


def test_seeded_ids_and_clock_over_http(server: Server) -> None:
    sq = server.client("e2e-clock")
    p = sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="k", amount_money=usd(9),
                           autocomplete=False, delay_duration="PT1M", request_options=RO).payment
    headers = {"Authorization": "Bearer e2e-clock"}
    r = httpx.post(server.base_url + "/_sim/clock/advance", json={"seconds": 60}, headers=headers)
    assert r.json()["fired"] == 1
    assert sq.payments.get(p.id, request_options=RO).payment.status == "CANCELED"
    assert httpx.get(server.base_url + "/v2/locations").status_code == 401


def test_variant_changes_behaviour(strict_server: Server) -> None:
    assert "cancel_after_payment=never" in strict_server.stdout
    sq = strict_server.client("e2e-strict")
    order = _paid_refunded_order(sq)
    uid = order.fulfillments[0].uid
    step = sq.orders.update(order.id, order={"version": order.version, "fulfillments": [
        {"uid": uid, "state": "CANCELED"}]}, request_options=RO).order
    assert step.fulfillments[0].state == "CANCELED"
    with pytest.raises(ApiError) as info:
        sq.orders.update(order.id, order={"version": step.version, "state": "CANCELED"},
                         request_options=RO)
    assert info.value.body == CANCEL_AFTER_PAYMENT


def test_settle_seconds_option(strict_server: Server) -> None:
    sq = strict_server.client("e2e-settle")
    p = sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="k", amount_money=usd(9),
                           request_options=RO).payment
    r = sq.refunds.refund_payment(idempotency_key="r", payment_id=p.id, amount_money=usd(9),
                                  request_options=RO).refund
    headers = {"Authorization": "Bearer e2e-settle"}
    httpx.post(strict_server.base_url + "/_sim/clock/advance", json={"seconds": 59}, headers=headers)
    assert sq.refunds.get(r.id, request_options=RO).refund.status == "PENDING"
    httpx.post(strict_server.base_url + "/_sim/clock/advance", json={"seconds": 1}, headers=headers)
    assert sq.refunds.get(r.id, request_options=RO).refund.status == "COMPLETED"


@pytest.mark.parametrize("variant,message", [
    ("no_such_rule=yes", "unknown variant 'no_such_rule'"),
    ("cancel_after_payment=sometimes", "unknown value 'sometimes' for cancel_after_payment"),
    ("cancel_after_payment", "expected RULE=VALUE"),
])
def test_bad_variant_exits_with_a_message(variant: str, message: str) -> None:
    proc = _cli("serve", "--port", "0", "--variant", variant, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    assert message in err
    assert "Traceback" not in err
    assert "listening" not in out


# ------------------------------------------------------------------------------ logs
def _wait_for(log: Path, needle: str) -> str:
    deadline = time.monotonic() + 10
    while needle not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return log.read_text()


def test_json_logs_one_line_per_request_without_library_noise(tmp_path: Path) -> None:
    with contextlib.contextmanager(_start)(tmp_path, "--log-format", "json",
                                           "--webhook-allow", "hooks.test") as server:
        sq = server.client("log-token")
        _paid_refunded_order(sq)
        server.http.get(server.base_url + "/v2/orders/nope",
                        headers={"Authorization": "Bearer log-token"})
        text = _wait_for(server.log, "/v2/orders/nope")
        lines = [json.loads(raw) for raw in text.splitlines() if raw.strip()]
        requests = [entry for entry in lines if "method" in entry]
        assert [(e["method"], e["status"]) for e in requests][-4:] == [
            ("POST", 200), ("POST", 200), ("GET", 200), ("GET", 404)]
        miss = requests[-1]
        assert miss["rule"] == "order.not_found" and miss["level"] == "info"
        assert set(miss) >= {"time", "path", "duration_ms", "merchant"}
        assert "log-token" not in text
        assert len(lines) == len(requests), "only request lines at the default level"
        assert "Finished processing state" not in text
        # The allow list reached the app: a subscription to the allowed host is accepted.
        r = server.http.post(server.base_url + "/v2/webhooks/subscriptions",
                             headers={"Authorization": "Bearer log-token"},
                             json={"subscription": {"event_types": ["payment.created"],
                                                    "notification_url": "https://hooks.test/x"}})
        assert r.status_code == 200, r.text


def test_quiet_drops_request_lines(tmp_path: Path) -> None:
    with contextlib.contextmanager(_start)(tmp_path, "--quiet") as server:
        server.http.get(server.base_url + "/v2/orders/nope",
                        headers={"Authorization": "Bearer t"})
        time.sleep(0.3)
        assert "/v2/orders/nope" not in server.log.read_text()

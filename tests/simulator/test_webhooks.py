"""Webhooks end to end: the official SDK drives a real simulator (uvicorn on loopback) and a real
receiver (http.server on loopback) records what arrives. Retries run on the merchant's virtual
clock, so nothing here sleeps waiting for a schedule; ``/_sim/webhooks/flush`` waits until every
due delivery was attempted."""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from square import Square
from square.core.api_error import ApiError
from square.utils.webhooks_helper import verify_signature

from orderfsm.clock import parse_rfc3339
from orderfsm.engine import Engine
from orderfsm.rules import CATALOG
from orderfsm.simulator import create_app, running
from simulator.outbox import (EMITTED_EVENT_TYPES, EVENT_TYPES, RETRY_WINDOW, retry_offsets, sign,
                              url_problem)

RO = {"max_retries": 0}
ALL = list(EMITTED_EVENT_TYPES)
SPEC = Path(__file__).resolve().parents[3] / "shared" / "square-api" / "api.json"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# ============================================================================ receiver
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A loopback HTTP server that records every POST and answers what a path's rule says.

    ``rules[path](n, event)`` returns the status for the n-th request (0-based) to that path;
    the default is 200. ``gates[path]`` holds requests until the event is set."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.rules: dict[str, Callable[[int, dict], int]] = {}
        self.gates: dict[str, threading.Event] = {}
        self.waiting: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                path = self.path
                with receiver.lock:
                    n = sum(1 for r in receiver.requests if r.path == path)
                    receiver.requests.append(Received(path, {k.lower(): v for k, v in
                                                             self.headers.items()}, body))
                gate = receiver.gates.get(path)
                if gate is not None:
                    with receiver.lock:
                        receiver.waiting[path] = receiver.waiting.get(path, 0) + 1
                    gate.wait(30)
                rule = receiver.rules.get(path)
                status = rule(n, json.loads(body)) if rule else 200
                reply = b"ack" if status < 300 else b"nope"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "/elsewhere")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def types(self, path: str) -> list[str]:
        return [r.event["type"] for r in self.at(path)]

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def base_url():
    with running(app=create_app(seed=7)) as url:
        yield url


@pytest.fixture(scope="module")
def shared_http():
    # One client for every merchant: building an httpx client (its TLS context) is slow.
    with httpx.Client(timeout=60, trust_env=False) as client:
        yield client


class _Control:
    """The control API for one token, over the shared client."""

    def __init__(self, client: httpx.Client, base_url: str, token: str) -> None:
        self.client = client
        self.base_url = base_url
        self.headers = {"authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, self.base_url + path, headers=self.headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


class Sim:
    """One merchant: the SDK client, the control API, and small helpers."""

    def __init__(self, base_url: str, token: str, receiver: Receiver,
                 client: httpx.Client) -> None:
        self.token = token
        self.receiver = receiver
        self.sq = Square(token=token, base_url=base_url, httpx_client=client)
        self.http = _Control(client, base_url, token)
        self.location_id = self.sq.locations.list(request_options=RO).locations[0].id
        self._keys = iter(range(10**6))

    def key(self) -> str:
        return f"k{next(self._keys)}"

    # ---------------------------------------------------------------- control API
    def advance(self, seconds: float) -> None:
        r = self.http.post("/_sim/clock/advance", json={"seconds": seconds})
        assert r.status_code == 200, r.text

    def flush(self) -> dict[str, Any]:
        r = self.http.post("/_sim/webhooks/flush", json={"timeout_seconds": 30})
        assert r.status_code == 200, r.text
        assert r.json()["idle"] is True
        return r.json()

    def events(self, **params: Any) -> list[dict[str, Any]]:
        r = self.http.get("/_sim/events", params=params)
        assert r.status_code == 200, r.text
        return r.json()["events"]

    def faults(self, sub_id: str, **faults: Any) -> dict[str, Any]:
        r = self.http.post(f"/_sim/webhooks/subscriptions/{sub_id}/faults", json=faults)
        assert r.status_code == 200, r.text
        return r.json()["faults"]

    def now(self):
        return parse_rfc3339(self.http.get("/_sim/clock").json()["now"])

    # ---------------------------------------------------------------- Square API
    def subscribe(self, path: str, types: list[str] | None = None, **extra: Any):
        sub = {"name": path.strip("/")[-64:], "event_types": types or ALL,
               "notification_url": self.receiver.url(path), **extra}
        return self.sq.webhooks.subscriptions.create(subscription=sub,
                                                     request_options=RO).subscription

    def order(self, amount: int = 1000, pickup: bool = False):
        order: dict[str, Any] = {"location_id": self.location_id, "line_items": [
            {"name": "Latte", "quantity": "1",
             "base_price_money": {"amount": amount, "currency": "USD"}}]}
        if pickup:
            order["fulfillments"] = [{"type": "PICKUP",
                                      "pickup_details": {"recipient": {"display_name": "Ann"}}}]
        return self.sq.orders.create(order=order, idempotency_key=self.key(),
                                     request_options=RO).order

    def pay(self, order_id: str | None, amount: int = 1000, **extra: Any):
        kwargs: dict[str, Any] = {"source_id": "cnon:card-nonce-ok", "idempotency_key": self.key(),
                                  "amount_money": {"amount": amount, "currency": "USD"}, **extra}
        if order_id is not None:
            kwargs["order_id"] = order_id
        return self.sq.payments.create(**kwargs, request_options=RO).payment

    def rename(self, order):
        return self.sq.orders.update(order.id, order={"version": order.version,
                                                      "reference_id": self.key()},
                                     request_options=RO).order


@pytest.fixture
def sim(base_url, receiver, shared_http, request):
    return Sim(base_url, f"tok-{request.node.name}", receiver, shared_http)


def path_for(request, suffix: str = "") -> str:
    return f"/{request.node.name}{suffix}"


def verified(r: Received, key: str, url: str) -> bool:
    return verify_signature(request_body=r.body.decode("utf-8"),
                            signature_header=r.headers["x-square-hmacsha256-signature"],
                            signature_key=key, notification_url=url)


def api_error(call: Callable[[], Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def first_error(err: ApiError) -> tuple[int, str, str, str | None]:
    e = err.body["errors"][0]
    return err.status_code, e["category"], e["code"], e.get("field")


def attempt_offsets(sim: Sim, delivery: dict[str, Any], event: dict[str, Any]) -> list[int]:
    start = parse_rfc3339(event["created_at"])
    return [int((parse_rfc3339(a["at"]) - start).total_seconds()) for a in delivery["attempts"]]


# ============================================================================ pure helpers
def test_signature_matches_square_test_vector() -> None:
    """The published vector from the SDK's own helper tests (rule webhook.signature)."""
    body = ('{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":'
            '"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z",'
            '"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}')
    url = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
    got = sign("Ibxx_5AKakO-3qeNVR61Dw", url, body.encode())
    assert got == "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
    assert verify_signature(request_body=body, signature_header=got,
                            signature_key="Ibxx_5AKakO-3qeNVR61Dw", notification_url=url)


def test_retry_offsets_follow_square_schedule() -> None:
    offsets = retry_offsets()
    minutes = [o // 60 for o in offsets[:8]]
    assert minutes == [0, 1, 3, 7, 15, 31, 63, 123]
    assert all(b - a == 3600 for a, b in zip(offsets[6:], offsets[7:]))
    assert offsets[-1] <= RETRY_WINDOW.total_seconds() < offsets[-1] + 3600
    assert len(offsets) == 77  # the first attempt and 76 retries fit in 72 hours


@pytest.mark.parametrize("url,ok", [
    ("https://example.com/hooks", True),
    ("http://127.0.0.1:8080/hook", True),
    ("http://localhost/hook", True),
    ("http://[::1]:9000/x", True),
    ("http://example.com/hook", False),
    ("http://10.0.0.5/hook", False),
    ("ftp://127.0.0.1/x", False),
    ("not a url", False),
    ("https://example.com/a#frag", False),
    ("http://127.0.0.1:99999/x", False),
])
def test_notification_url_rules(url: str, ok: bool) -> None:
    assert (url_problem(url) is None) is ok


@pytest.mark.skipif(not SPEC.exists(), reason="Square's OpenAPI spec is not present")
def test_event_type_table_matches_the_spec() -> None:
    spec = json.loads(SPEC.read_text())
    table = {s["x-webhook"]["event"]: (s.get("x-since"), s.get("x-release-status"))
             for s in spec["components"]["schemas"].values() if "x-webhook" in s}
    assert EVENT_TYPES == table


def test_every_webhook_rule_is_in_the_catalog() -> None:
    ids = {r for r in CATALOG if r.startswith("webhook.")}
    assert ids == {
        "webhook.envelope", "webhook.signature", "webhook.delivery_retries",
        "webhook.event_id_idempotency", "webhook.event_type_unknown",
        "webhook.subscription_field_required", "webhook.notification_url_invalid",
        "webhook.subscription_not_found", "webhook.test_event_type",
        "webhook.order_created_only_by_create_order", "webhook.order_follows_payment_and_refund",
        "webhook.payment_refund_sequence"}


# ============================================================================ engine events
def _engine_story(name: str) -> list[str]:
    """Event types the engine records for one transition (after a common setup)."""
    e = Engine(record_events=True, refund_settle_delay=timedelta(seconds=10))
    usd = {"amount": 1000, "currency": "USD"}
    line = [{"name": "x", "quantity": "1", "base_price_money": usd}]
    keys = iter(range(100))

    def order(**kw: Any) -> dict:
        return e.create_order({"location_id": e.main_location_id, "line_items": line, **kw})

    def pay(order_id: str | None = None, **kw: Any) -> dict:
        body = {"source_id": "cnon:card-nonce-ok", "idempotency_key": f"k{next(keys)}",
                "amount_money": usd, **kw}
        if order_id:
            body["order_id"] = order_id
        return e.create_payment(body)

    if name == "auto_void":
        p = pay(order()["id"], autocomplete=False, delay_duration="PT1M")
        e.drain_events()
        e.advance(60)
    elif name == "delayed_complete":
        p = pay(order()["id"], autocomplete=False, delay_duration="PT1M", delay_action="COMPLETE")
        e.drain_events()
        e.advance(60)
    elif name == "bank_settle":
        pay(None, source_id="bnon:bank-nonce-ok")
        e.drain_events()
        e.advance(60)
    elif name == "refund_settle":
        p = pay(None)
        e.refund_payment({"payment_id": p["id"], "amount_money": usd, "idempotency_key": "r"})
        e.drain_events()
        e.advance(10)
    elif name == "refund_reject":
        p = pay(None)
        r = e.refund_payment({"payment_id": p["id"], "amount_money": usd, "idempotency_key": "r"})
        e.drain_events()
        e.reject_refund(r["id"])
    elif name == "pay_order":
        o = order()
        p = pay(o["id"], autocomplete=False)
        e.drain_events()
        e.pay_order(o["id"], [p["id"]])
    elif name == "complete_payment":
        p = pay(order()["id"], autocomplete=False)
        e.drain_events()
        e.complete_payment(p["id"])
    elif name == "cancel_payment":
        p = pay(order()["id"], autocomplete=False)
        e.drain_events()
        e.cancel_payment(p["id"])
    elif name == "update_payment":
        p = pay(None, autocomplete=False)
        e.drain_events()
        e.update_payment(p["id"], {"tip_money": {"amount": 100, "currency": "USD"}})
    elif name == "clone_order":
        o = order()
        e.drain_events()
        e.clone_order(o["id"])
    elif name == "declined":
        try:
            pay(None, source_id="cnon:card-nonce-declined")
        except Exception:
            pass
    return [ev.type for ev in e.drain_events()]


@pytest.mark.parametrize("name,expected", [
    ("auto_void", ["payment.updated", "order.updated"]),
    ("delayed_complete", ["payment.updated", "order.updated"]),
    ("bank_settle", ["payment.updated", "order.updated"]),
    # A refund's status change also updates its return order (S17).
    ("refund_settle", ["refund.updated", "order.updated"]),
    ("refund_reject", ["refund.updated", "order.updated", "payment.updated"]),
    ("pay_order", ["payment.updated", "order.updated"]),
    ("complete_payment", ["payment.updated", "order.updated"]),
    ("cancel_payment", ["payment.updated", "order.updated"]),
    ("update_payment", ["payment.updated"]),
    # order.created is "triggered only by the CreateOrder endpoint call" (spec): none here.
    ("clone_order", []),
    ("declined", ["payment.created"]),
])
def test_engine_records_an_event_for_every_transition(name: str, expected: list[str]) -> None:
    assert _engine_story(name) == expected


# ============================================================================ subscriptions API
def test_subscription_lifecycle_through_the_sdk(sim: Sim, request) -> None:
    url = sim.receiver.url(path_for(request))
    created = sim.subscribe(path_for(request), ["payment.created", "payment.updated"])
    assert created.id.startswith("wbhk_") and len(created.id) == 37
    assert created.enabled is True and created.notification_url == url
    assert created.event_types == ["payment.created", "payment.updated"]
    assert re.fullmatch(r"[0-9A-Za-z]{22}", created.signature_key)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", created.api_version)
    assert created.created_at == created.updated_at

    got = sim.sq.webhooks.subscriptions.get(created.id, request_options=RO).subscription
    assert got.signature_key == created.signature_key and got.name == created.name

    sim.advance(5)
    updated = sim.sq.webhooks.subscriptions.update(
        created.id, subscription={"name": "renamed", "enabled": False,
                                  "event_types": ["refund.created"]},
        request_options=RO).subscription
    assert (updated.name, updated.enabled, updated.event_types) == \
        ("renamed", False, ["refund.created"])
    assert updated.updated_at > created.updated_at and updated.created_at == created.created_at
    assert updated.notification_url == url

    assert list(sim.sq.webhooks.subscriptions.list(request_options=RO)) == []
    listed = list(sim.sq.webhooks.subscriptions.list(include_disabled=True, request_options=RO))
    assert [s.id for s in listed] == [created.id]
    assert listed[0].signature_key is None  # lists never show keys

    rotated = sim.sq.webhooks.subscriptions.update_signature_key(
        created.id, idempotency_key=sim.key(), request_options=RO).signature_key
    assert rotated != created.signature_key
    assert sim.sq.webhooks.subscriptions.get(created.id, request_options=RO) \
        .subscription.signature_key == rotated

    raw = sim.http.delete(f"/v2/webhooks/subscriptions/{created.id}")
    assert (raw.status_code, raw.json()) == (200, {})
    err = api_error(lambda: sim.sq.webhooks.subscriptions.get(created.id, request_options=RO))
    assert first_error(err) == (404, "INVALID_REQUEST_ERROR", "NOT_FOUND", None)
    err = api_error(lambda: sim.sq.webhooks.subscriptions.delete(created.id, request_options=RO))
    assert err.status_code == 404


def test_delete_through_the_sdk_is_not_an_error(sim: Sim, request) -> None:
    sub = sim.subscribe(path_for(request))
    resp = sim.sq.webhooks.subscriptions.delete(sub.id, request_options=RO)
    assert resp.errors is None
    assert list(sim.sq.webhooks.subscriptions.list(include_disabled=True)) == []


def test_list_pages_and_sorts(sim: Sim, request) -> None:
    ids = []
    for i in range(5):
        ids.append(sim.subscribe(path_for(request, f"/{i}")).id)
        sim.advance(1)
    pager = sim.sq.webhooks.subscriptions.list(limit=2, request_options=RO)
    assert [s.id for s in pager.items] == ids[:2] and pager.has_next
    assert [s.id for s in pager] == ids
    desc = sim.sq.webhooks.subscriptions.list(limit=2, sort_order="DESC", request_options=RO)
    assert [s.id for s in desc] == ids[::-1]
    # A cursor belongs to its query.
    cursor = sim.http.get("/v2/webhooks/subscriptions", params={"limit": 2}).json()["cursor"]
    r = sim.http.get("/v2/webhooks/subscriptions", params={"cursor": cursor, "sort_order": "DESC"})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "INVALID_CURSOR")
    for params, code in [({"limit": 0}, "INVALID_VALUE"), ({"limit": 101}, "INVALID_VALUE"),
                         ({"limit": "x"}, "EXPECTED_INTEGER"),
                         ({"sort_order": "UP"}, "INVALID_ENUM_VALUE"),
                         ({"include_disabled": "maybe"}, "EXPECTED_BOOLEAN")]:
        r = sim.http.get("/v2/webhooks/subscriptions", params=params)
        assert (r.status_code, r.json()["errors"][0]["code"]) == (400, code), params


@pytest.mark.parametrize("subscription,status,code,field", [
    ({"event_types": ["payment.created", "payment.exploded"]}, 400, "INVALID_VALUE",
     "subscription.event_types[1]"),
    ({"notification_url": None}, 400, "MISSING_REQUIRED_PARAMETER",
     "subscription.notification_url"),
    ({"event_types": []}, 400, "MISSING_REQUIRED_PARAMETER", "subscription.event_types"),
    ({"notification_url": "http://example.com/hook"}, 400, "INVALID_VALUE",
     "subscription.notification_url"),
    ({"notification_url": "mailto:me@example.com"}, 400, "INVALID_VALUE",
     "subscription.notification_url"),
    ({"name": "n" * 65}, 400, "VALUE_TOO_LONG", "subscription.name"),
    ({"event_types": "payment.created"}, 400, "EXPECTED_ARRAY", "subscription.event_types"),
    ({"enabled": "yes"}, 400, "EXPECTED_BOOLEAN", "subscription.enabled"),
    ({"api_version": "latest"}, 400, "INVALID_VALUE", "subscription.api_version"),
])
def test_create_rejects_bad_input(sim: Sim, request, subscription, status, code, field) -> None:
    body = {"name": "x", "event_types": ["payment.created"],
            "notification_url": sim.receiver.url(path_for(request))}
    body.update(subscription)
    r = sim.http.post("/v2/webhooks/subscriptions", json={"subscription": body})
    assert r.status_code == status, r.text
    err = r.json()["errors"][0]
    assert (err["category"], err["code"], err["field"]) == ("INVALID_REQUEST_ERROR", code, field)
    assert sim.http.get("/v2/webhooks/subscriptions",
                        params={"include_disabled": "true"}).json() == {"subscriptions": []}


def test_create_error_bodies_come_from_the_catalog(sim: Sim, request) -> None:
    url = sim.receiver.url(path_for(request))
    r = sim.http.post("/v2/webhooks/subscriptions", json={"subscription": {
        "event_types": ["payment.exploded"], "notification_url": url}})
    assert r.json()["errors"][0]["detail"] == "`payment.exploded` is not a valid event type."
    r = sim.http.post("/v2/webhooks/subscriptions", json={})
    assert r.json()["errors"][0]["code"] == "MISSING_REQUIRED_PARAMETER"
    assert r.json()["errors"][0]["field"] == "subscription"
    r = sim.http.post("/v2/webhooks/subscriptions", content=b"{not json")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "BAD_REQUEST")
    r = sim.http.post("/v2/webhooks/subscriptions", json={"subscription": {
        "event_types": ["payment.created"], "notification_url": "http://example.com/x"}})
    assert r.json()["errors"][0]["detail"].startswith("URL is not valid")


def test_update_rejects_bad_input_and_changes_nothing(sim: Sim, request) -> None:
    sub = sim.subscribe(path_for(request), ["payment.created"])
    for change, code in [({"event_types": ["nope.nope"]}, "INVALID_VALUE"),
                         ({"notification_url": "http://example.org/"}, "INVALID_VALUE"),
                         ({"event_types": []}, "MISSING_REQUIRED_PARAMETER")]:
        r = sim.http.put(f"/v2/webhooks/subscriptions/{sub.id}", json={"subscription": change})
        assert (r.status_code, r.json()["errors"][0]["code"]) == (400, code)
    r = sim.http.put("/v2/webhooks/subscriptions/wbhk_missing", json={"subscription": {}})
    assert r.status_code == 404
    now = sim.sq.webhooks.subscriptions.get(sub.id, request_options=RO).subscription
    assert now.event_types == ["payment.created"] and now.updated_at == sub.updated_at


def test_create_is_idempotent(sim: Sim, request) -> None:
    body = {"name": "once", "event_types": ["payment.created"],
            "notification_url": sim.receiver.url(path_for(request))}
    a = sim.sq.webhooks.subscriptions.create(subscription=body, idempotency_key="same",
                                             request_options=RO).subscription
    b = sim.sq.webhooks.subscriptions.create(subscription=body, idempotency_key="same",
                                             request_options=RO).subscription
    assert a.id == b.id and a.signature_key == b.signature_key
    err = api_error(lambda: sim.sq.webhooks.subscriptions.create(
        subscription={**body, "name": "twice"}, idempotency_key="same", request_options=RO))
    assert first_error(err)[2] == "IDEMPOTENCY_KEY_REUSED"
    assert len(list(sim.sq.webhooks.subscriptions.list())) == 1


def test_event_types_list(sim: Sim) -> None:
    resp = sim.sq.webhooks.event_types.list(request_options=RO)
    assert set(EMITTED_EVENT_TYPES) <= set(resp.event_types)
    assert len(resp.event_types) == len(EVENT_TYPES) == len(resp.metadata)
    meta = {m.event_type: m for m in resp.metadata}
    assert meta["order.created"].api_version_introduced == "2020-04-22"
    assert meta["payment.updated"].release_status == "PUBLIC"
    old = sim.sq.webhooks.event_types.list(api_version="2020-03-01", request_options=RO)
    assert "payment.created" in old.event_types and "order.created" not in old.event_types
    r = sim.http.get("/v2/webhooks/event-types", params={"api_version": "soon"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (400, "api_version")


def test_subscribing_to_types_the_simulator_never_emits_is_accepted(sim: Sim, request) -> None:
    sub = sim.subscribe(path_for(request), ["customer.created", "payment.created"])
    assert sub.event_types == ["customer.created", "payment.created"]


# ============================================================================ delivery
def test_every_delivery_is_signed_and_shaped_like_square(sim: Sim, request) -> None:
    path = path_for(request)
    url = sim.receiver.url(path)
    sub = sim.subscribe(path)
    order = sim.order(pickup=True)
    payment = sim.pay(order.id)
    sim.flush()
    got = sim.receiver.at(path)
    assert [r.event["type"] for r in got] == ["order.created", "payment.created", "order.updated"]
    outbox = {e["event_id"]: e for e in sim.events()}
    merchant_id = sim.sq.locations.list().locations[0].merchant_id
    for r in got:
        assert verified(r, sub.signature_key, url)
        assert not verified(r, sub.signature_key, url + "/")
        assert r.headers["content-type"] == "application/json"
        assert r.headers["square-environment"] == "Sandbox"
        assert "square-retry-number" not in r.headers
        ev = r.event
        assert list(ev) == ["merchant_id", "location_id", "type", "event_id", "created_at", "data"]
        assert ev["merchant_id"] == merchant_id and ev["location_id"] == sim.location_id
        assert UUID_RE.match(ev["event_id"])
        assert r.headers["square-initial-delivery-timestamp"] == ev["created_at"]
        # The outbox shows the exact payload that went out.
        assert outbox[ev["event_id"]]["payload"] == ev
    created, paid, updated = (r.event["data"] for r in got)
    assert created == {"type": "order_created", "id": order.id, "object": {"order_created": {
        "order_id": order.id, "version": 1, "location_id": sim.location_id, "state": "OPEN",
        "created_at": order.created_at}}}
    assert paid["type"] == "payment" and paid["id"] == payment.id
    assert paid["object"]["payment"]["status"] == "COMPLETED"
    assert paid["object"]["payment"]["order_id"] == order.id
    assert updated["type"] == "order_updated"
    assert updated["object"]["order_updated"]["version"] == 2
    assert set(updated["object"]["order_updated"]) == {
        "order_id", "version", "location_id", "state", "created_at", "updated_at"}


def test_seed_story_event_sequence(sim: Sim, request) -> None:
    """The forum thread's story: order with pickup, pay, refund, cancel fails, cancel the
    fulfillment, cancel the order; then the refund settles on the clock."""
    path = path_for(request)
    sub = sim.subscribe(path)
    order = sim.order(pickup=True)
    payment = sim.pay(order.id)
    refund = sim.sq.refunds.refund_payment(
        idempotency_key=sim.key(), payment_id=payment.id,
        amount_money={"amount": 1000, "currency": "USD"}, request_options=RO).refund
    order = sim.sq.orders.get(order.id, request_options=RO).order
    err = api_error(lambda: sim.sq.orders.update(
        order.id, order={"version": order.version, "state": "CANCELED"}, request_options=RO))
    assert first_error(err) == (400, "INVALID_REQUEST_ERROR", "BAD_REQUEST", "order.state")
    uid = order.fulfillments[0].uid
    order = sim.sq.orders.update(order.id, order={
        "version": order.version, "fulfillments": [{"uid": uid, "state": "CANCELED"}]},
        request_options=RO).order
    order = sim.sq.orders.update(order.id, order={"version": order.version, "state": "CANCELED"},
                                 request_options=RO).order
    assert order.state == "CANCELED"
    sim.flush()
    sim.advance(10)  # the refund settles
    sim.flush()
    got = sim.receiver.at(path)
    story = [(r.event["type"], r.event["data"]["id"]) for r in got]
    assert story == [
        ("order.created", order.id),
        ("payment.created", payment.id),
        ("order.updated", order.id),
        # The refund's return order is updated along with the refund (S17).
        ("refund.created", refund.id),
        ("order.updated", refund.order_id),
        ("payment.updated", payment.id),
        ("order.updated", order.id),
        ("order.fulfillment.updated", order.id),
        ("order.updated", order.id),
        ("refund.updated", refund.id),
        ("order.updated", refund.order_id),
    ]
    events = [r.event for r in got]
    assert events[3]["data"]["object"]["refund"]["status"] == "PENDING"
    assert events[5]["data"]["object"]["payment"]["refund_ids"] == [refund.id]
    fu = events[7]["data"]["object"]["order_fulfillment_updated"]
    assert fu["fulfillment_update"] == [{"fulfillment_uid": uid, "old_state": "PROPOSED",
                                         "new_state": "CANCELED"}]
    assert events[8]["data"]["object"]["order_updated"]["state"] == "CANCELED"
    settled = events[9]["data"]["object"]["refund"]
    assert (settled["status"], settled["version"]) == ("COMPLETED", 2)
    assert parse_rfc3339(events[9]["created_at"]) - parse_rfc3339(events[3]["created_at"]) == \
        timedelta(seconds=10)
    versions = [e["data"]["object"][e["data"]["type"]]["version"] for e in events
                if e["type"].startswith("order.") and e["data"]["id"] == order.id]
    assert versions == sorted(versions) and len(set(versions)) == len(versions) - 1
    assert all(verified(r, sub.signature_key, sub.notification_url) for r in got)


def test_clock_driven_auto_void_is_delivered_at_its_due_time(sim: Sim, request) -> None:
    path = path_for(request)
    sim.subscribe(path, ["payment.updated"])
    order = sim.order()
    payment = sim.pay(order.id, autocomplete=False, delay_duration="PT10M")
    sim.flush()
    assert sim.receiver.at(path) == []
    sim.advance(3600)
    sim.flush()
    (r,) = sim.receiver.at(path)
    voided = r.event["data"]["object"]["payment"]
    assert (voided["id"], voided["status"]) == (payment.id, "CANCELED")
    assert r.event["created_at"] == payment.delayed_until


def test_retries_follow_the_schedule_on_the_virtual_clock(sim: Sim, request) -> None:
    path = path_for(request)
    sim.receiver.rules[path] = lambda n, ev: 500 if n < 4 else 200
    sub = sim.subscribe(path, ["order.created"])
    order = sim.order()
    sim.flush()
    assert len(sim.receiver.at(path)) == 1
    sim.advance(59)
    sim.flush()
    assert len(sim.receiver.at(path)) == 1  # not due yet
    for step, total in [(1, 2), (120, 3), (240, 4), (480, 5)]:
        sim.advance(step)
        sim.flush()
        assert len(sim.receiver.at(path)) == total
    sim.advance(24 * 3600)
    sim.flush()
    got = sim.receiver.at(path)
    assert len(got) == 5  # delivered on the fifth attempt; nothing more
    assert len({r.event["event_id"] for r in got}) == 1
    assert all(verified(r, sub.signature_key, sub.notification_url) for r in got)
    assert [r.headers.get("square-retry-number") for r in got] == [None, "1", "2", "3", "4"]
    assert [r.headers.get("square-retry-reason") for r in got] == [None] + ["http_error"] * 4
    assert {r.headers["square-initial-delivery-timestamp"] for r in got} == {order.created_at}
    (event,) = sim.events(object_id=order.id)
    (delivery,) = event["deliveries"]
    assert delivery["status"] == "delivered" and delivery["next_attempt_at"] is None
    assert attempt_offsets(sim, delivery, event) == [0, 60, 180, 420, 900]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 500, 200]
    assert delivery["attempts"][0]["response_body"] == "nope"


def test_gives_up_72_hours_after_the_event(sim: Sim, request) -> None:
    path = path_for(request)
    sim.receiver.rules[path] = lambda n, ev: 503
    sim.subscribe(path, ["order.created"])
    order = sim.order()
    sim.advance(71 * 3600)
    sim.flush()
    (event,) = sim.events(object_id=order.id)
    assert event["deliveries"][0]["status"] == "pending"
    sim.advance(2 * 3600)
    sim.flush()
    (event,) = sim.events(object_id=order.id)
    (delivery,) = event["deliveries"]
    assert delivery["status"] == "failed" and delivery["next_attempt_at"] is None
    assert attempt_offsets(sim, delivery, event) == retry_offsets()
    assert len(sim.receiver.at(path)) == len(retry_offsets())
    assert sim.receiver.at(path)[-1].headers["square-retry-number"] == str(len(retry_offsets()) - 1)
    assert sim.events(status="failed") == [event]


@pytest.mark.parametrize("status", [302, 404, 500])
def test_non_2xx_answers_are_failures(sim: Sim, request, status: int) -> None:
    path = path_for(request)
    sim.receiver.rules[path] = lambda n, ev: status if n == 0 else 204
    sim.subscribe(path, ["order.created"])
    order = sim.order()
    sim.flush()
    (event,) = sim.events(object_id=order.id)
    delivery = event["deliveries"][0]
    assert delivery["status"] == "pending"
    assert parse_rfc3339(delivery["next_attempt_at"]) - parse_rfc3339(event["created_at"]) == \
        timedelta(minutes=1)
    sim.advance(60)
    sim.flush()
    (event,) = sim.events(object_id=order.id)
    assert event["deliveries"][0]["status"] == "delivered"
    assert [a["status_code"] for a in event["deliveries"][0]["attempts"]] == [status, 204]


def test_connection_errors_and_timeouts_are_retried(sim: Sim, request) -> None:
    # Nothing listens on a port that was just closed.
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{closed.server_port}/gone"
    closed.server_close()
    sim.sq.webhooks.subscriptions.create(subscription={
        "event_types": ["order.created"], "notification_url": dead_url}, request_options=RO)
    slow = path_for(request, "/slow")
    gate = threading.Event()
    sim.receiver.gates[slow] = gate
    sim.subscribe(slow, ["order.created"])
    r = sim.http.post("/_sim/webhooks/settings", json={"timeout_seconds": 0.3})
    assert r.json() == {"timeout_seconds": 0.3}
    order = sim.order()
    sim.flush()
    gate.set()
    (event,) = sim.events(object_id=order.id)
    by_url = {d["notification_url"]: d for d in event["deliveries"]}
    dead = by_url[dead_url]["attempts"][0]
    assert "status_code" not in dead and dead["error"].startswith("ConnectError")
    timed_out = by_url[sim.receiver.url(slow)]["attempts"][0]
    assert timed_out["error"].startswith("timeout")
    assert all(d["status"] == "pending" for d in event["deliveries"])
    sim.advance(60)
    sim.flush()
    second = sim.receiver.at(slow)[-1]
    assert second.headers["square-retry-reason"] == "http_timeout"
    (event,) = sim.events(object_id=order.id)
    by_url = {d["notification_url"]: d for d in event["deliveries"]}
    assert by_url[sim.receiver.url(slow)]["status"] == "delivered"
    assert by_url[dead_url]["status"] == "pending" and len(by_url[dead_url]["attempts"]) == 2


def test_events_for_one_object_are_delivered_in_order(sim: Sim, request) -> None:
    path = path_for(request)
    first_create = {"done": False}

    def rule(n: int, ev: dict) -> int:
        if ev["type"] == "order.created" and not first_create["done"]:
            first_create["done"] = True
            return 500
        return 200

    sim.receiver.rules[path] = rule
    sim.subscribe(path, ["order.created", "order.updated"])
    order = sim.order()
    sim.rename(order)
    other = sim.order()
    sim.flush()
    # The update waits behind the failed create of the same order; the other order does not.
    assert [(r.event["type"], r.event["data"]["id"]) for r in sim.receiver.at(path)] == [
        ("order.created", order.id), ("order.created", other.id)]
    (waiting,) = sim.events(object_id=order.id, type="order.updated")
    assert waiting["deliveries"][0]["attempts"] == []
    sim.advance(60)
    sim.flush()
    assert [(r.event["type"], r.event["data"]["id"]) for r in sim.receiver.at(path)][2:] == [
        ("order.created", order.id), ("order.updated", order.id)]
    (done,) = sim.events(object_id=order.id, type="order.updated")
    assert attempt_offsets(sim, done["deliveries"][0], done) == [60]


def test_api_calls_do_not_wait_for_a_stuck_receiver(sim: Sim, request) -> None:
    path = path_for(request)
    gate = threading.Event()
    sim.receiver.gates[path] = gate
    sim.subscribe(path, ["order.created"])
    try:
        first = sim.order()
        # The worker is now inside the receiver, which will not answer until the gate opens.
        for _ in range(200):
            if sim.receiver.waiting.get(path):
                break
            threading.Event().wait(0.01)
        assert sim.receiver.waiting.get(path) == 1
        later = [sim.order() for _ in range(3)]
        assert len(later) == 3 and sim.receiver.waiting.get(path) == 1
        assert [e["deliveries"][0]["status"] for e in sim.events()] == ["pending"] * 4
    finally:
        gate.set()
    sim.flush()
    assert [r.event["data"]["id"] for r in sim.receiver.at(path)] == \
        [first.id] + [o.id for o in later]


def test_disabled_deleted_and_unsubscribed_receive_nothing(sim: Sim, request) -> None:
    on, off, gone, other = (path_for(request, s) for s in ("/on", "/off", "/gone", "/other"))
    sim.subscribe(on, ["order.created"])
    disabled = sim.subscribe(off, ["order.created"])
    sim.sq.webhooks.subscriptions.update(disabled.id, subscription={"enabled": False},
                                         request_options=RO)
    deleted = sim.subscribe(gone, ["order.created"])
    sim.sq.webhooks.subscriptions.delete(deleted.id, request_options=RO)
    sim.subscribe(other, ["payment.created"])
    created = sim.subscribe(path_for(request, "/born-disabled"), ["order.created"],
                            enabled=False)
    assert created.enabled is False
    sim.order()
    sim.flush()
    assert len(sim.receiver.at(on)) == 1
    for path in (off, gone, other, path_for(request, "/born-disabled")):
        assert sim.receiver.at(path) == []


def test_deleting_or_disabling_stops_pending_retries(sim: Sim, request) -> None:
    a, b = path_for(request, "/a"), path_for(request, "/b")
    for p in (a, b):
        sim.receiver.rules[p] = lambda n, ev: 500
    sub_a = sim.subscribe(a, ["order.created"])
    sub_b = sim.subscribe(b, ["order.created"])
    order = sim.order()
    sim.flush()
    sim.sq.webhooks.subscriptions.delete(sub_a.id, request_options=RO)
    sim.sq.webhooks.subscriptions.update(sub_b.id, subscription={"enabled": False},
                                         request_options=RO)
    sim.advance(3600)
    sim.flush()
    assert len(sim.receiver.at(a)) == len(sim.receiver.at(b)) == 1
    (event,) = sim.events(object_id=order.id)
    errors = sorted((d["status"], d["error"]) for d in event["deliveries"])
    assert errors == [("failed", "subscription deleted"), ("failed", "subscription disabled")]


def test_rotated_key_signs_later_deliveries(sim: Sim, request) -> None:
    path = path_for(request)
    sub = sim.subscribe(path, ["order.created"])
    sim.order()
    new_key = sim.sq.webhooks.subscriptions.update_signature_key(
        sub.id, request_options=RO).signature_key
    sim.order()
    sim.flush()
    before, after = sim.receiver.at(path)
    assert verified(before, sub.signature_key, sub.notification_url)
    assert verified(after, new_key, sub.notification_url)
    assert not verified(after, sub.signature_key, sub.notification_url)


# ============================================================================ faults
def test_duplicate_fault_sends_each_event_twice(sim: Sim, request) -> None:
    path = path_for(request)
    sub = sim.subscribe(path, ["order.created", "order.updated"])
    assert sim.faults(sub.id, duplicate=True)["duplicate"] == 1.0
    order = sim.order()
    sim.rename(order)
    sim.flush()
    got = sim.receiver.at(path)
    assert [r.event["type"] for r in got] == ["order.created"] * 2 + ["order.updated"] * 2
    assert got[0].body == got[1].body and got[2].body == got[3].body
    assert all(verified(r, sub.signature_key, sub.notification_url) for r in got)
    for event in sim.events():
        (d,) = event["deliveries"]
        assert d["notes"] == {"duplicated": True}
        assert [a.get("duplicate", False) for a in d["attempts"]] == [False, True]


def test_probabilistic_faults_are_deterministic(sim: Sim, request) -> None:
    def run() -> tuple[list[str], list[str]]:
        sim.http.post("/_sim/reset")
        path = path_for(request, f"/{uuid.uuid4().hex[:6]}")
        sub = sim.subscribe(path, ["order.created"])
        sim.faults(sub.id, duplicate=0.5, drop=0.3, seed=42)
        for _ in range(12):
            sim.order()
        sim.flush()
        statuses = [e["deliveries"][0]["status"] + ("+dup" if e["deliveries"][0].get(
            "notes", {}).get("duplicated") else "") for e in sim.events()]
        return statuses, [r.event["event_id"] for r in sim.receiver.at(path)]

    first, first_ids = run()
    second, second_ids = run()
    assert first == second and first_ids == second_ids
    assert "dropped" in first and "delivered+dup" in first and "delivered" in first
    assert len(first_ids) == first.count("delivered") + 2 * first.count("delivered+dup")


def test_drop_fault_records_and_never_sends(sim: Sim, request) -> None:
    path = path_for(request)
    sub = sim.subscribe(path, ["order.created", "order.updated"])
    sim.faults(sub.id, drop=True)
    order = sim.order()
    sim.flush()
    assert sim.receiver.at(path) == []
    (event,) = sim.events(object_id=order.id)
    assert event["deliveries"][0]["status"] == "dropped"
    assert event["deliveries"][0]["attempts"] == []
    assert sim.events(status="dropped") == [event]
    # A dropped event does not hold back the next one for the same object.
    sim.faults(sub.id, drop=None)
    sim.rename(order)
    sim.flush()
    assert sim.receiver.types(path) == ["order.updated"]


def test_delay_fault_holds_the_first_attempt_on_the_clock(sim: Sim, request) -> None:
    path = path_for(request)
    sub = sim.subscribe(path, ["order.created"])
    sim.faults(sub.id, delay_seconds=300)
    order = sim.order()
    sim.flush()
    sim.advance(299)
    sim.flush()
    assert sim.receiver.at(path) == []
    sim.advance(1)
    sim.flush()
    assert len(sim.receiver.at(path)) == 1
    (event,) = sim.events(object_id=order.id)
    assert attempt_offsets(sim, event["deliveries"][0], event) == [300]
    assert event["deliveries"][0]["notes"] == {"delayed_seconds": 300.0}


def test_reorder_fault_swaps_adjacent_events(sim: Sim, request) -> None:
    path = path_for(request)
    sub = sim.subscribe(path, ["order.created", "order.updated"])
    sim.faults(sub.id, reorder=True)
    order = sim.order()
    order = sim.rename(order)
    order = sim.rename(order)
    sim.flush()
    got = [(r.event["type"], r.event["data"]["object"]["order_" + r.event["type"][6:]]["version"])
           for r in sim.receiver.at(path)]
    assert got == [("order.updated", 2), ("order.created", 1)]
    summary = sim.http.get("/_sim/webhooks").json()
    assert summary["held"] == 1  # the third waits for a partner
    sim.faults(sub.id, reorder=False)  # clearing the fault releases it
    sim.flush()
    assert [r.event["data"]["object"]["order_updated"]["version"]
            for r in sim.receiver.at(path)[2:]] == [3]


# ============================================================================ test endpoint
def test_test_endpoint_sends_a_test_notification(sim: Sim, request) -> None:
    path = path_for(request)
    sub = sim.subscribe(path, ["payment.created"])
    result = sim.sq.webhooks.subscriptions.test(sub.id, request_options=RO).subscription_test_result
    assert result.status_code == 200
    (r,) = sim.receiver.at(path)
    assert r.body.decode() == result.payload
    ev = r.event
    assert ev["type"] == "webhooks.test_notification"
    assert ev["data"]["type"] == "webhooks" and UUID_RE.match(ev["data"]["id"])
    assert ev["event_id"] == result.id
    assert verified(r, sub.signature_key, sub.notification_url)

    typed = sim.sq.webhooks.subscriptions.test(sub.id, event_type="payment.created",
                                               request_options=RO).subscription_test_result
    ev = json.loads(typed.payload)
    assert ev["type"] == "payment.created" and ev["data"]["type"] == "payment"
    assert ev["data"]["object"]["payment"]["id"] == ev["data"]["id"]

    err = api_error(lambda: sim.sq.webhooks.subscriptions.test(
        sub.id, event_type="refund.created", request_options=RO))
    assert first_error(err) == (400, "INVALID_REQUEST_ERROR", "INVALID_VALUE", "event_type")
    err = api_error(lambda: sim.sq.webhooks.subscriptions.test("wbhk_nope", request_options=RO))
    assert err.status_code == 404


def test_test_endpoint_reports_failures_and_never_retries(sim: Sim, request) -> None:
    path = path_for(request)
    sim.receiver.rules[path] = lambda n, ev: 500
    sub = sim.subscribe(path, ["payment.created"], enabled=False)  # tests reach disabled ones
    result = sim.sq.webhooks.subscriptions.test(sub.id, request_options=RO).subscription_test_result
    assert result.status_code == 500
    sim.advance(3600)
    sim.flush()
    assert len(sim.receiver.at(path)) == 1
    (event,) = sim.events(type="webhooks.test_notification")
    assert event["test"] is True and event["deliveries"][0]["status"] == "failed"


# ============================================================================ outbox control API
def test_outbox_filters_and_redelivery(sim: Sim, request) -> None:
    path = path_for(request)
    sim.subscribe(path, ["order.created", "payment.created"])
    order = sim.order()
    payment = sim.pay(order.id)
    sim.flush()
    everything = sim.events()
    assert [e["type"] for e in everything] == ["order.created", "payment.created", "order.updated"]
    assert everything[2]["deliveries"] == []  # recorded, but nobody subscribed to it
    assert [e["type"] for e in sim.events(type="payment.created")] == ["payment.created"]
    assert [e["object_id"] for e in sim.events(object_id=payment.id)] == [payment.id]
    assert len(sim.events(status="delivered")) == 2 and sim.events(status="pending") == []
    r = sim.http.get("/_sim/events", params={"status": "lost"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (400, "status")

    event_id = everything[0]["event_id"]
    single = sim.http.get(f"/_sim/events/{event_id}").json()["event"]
    assert single == everything[0]
    r = sim.http.post(f"/_sim/events/{event_id}/redeliver")
    assert r.status_code == 200 and r.json()["redelivered"] == 1
    sim.flush()
    again = sim.receiver.at(path)
    assert [x.event["event_id"] for x in again] == [event_id, everything[1]["event_id"], event_id]
    assert again[0].body == again[2].body
    (d,) = sim.http.get(f"/_sim/events/{event_id}").json()["event"]["deliveries"]
    assert len(d["attempts"]) == 2 and d["notes"] == {"redelivered": 1}
    assert "square-retry-number" not in again[2].headers  # the first attempt succeeded
    assert sim.http.get("/_sim/events/nope").status_code == 404
    assert sim.http.post("/_sim/events/nope/redeliver").status_code == 404


def test_outbox_is_scoped_to_the_token(sim: Sim, base_url, receiver, shared_http,
                                       request) -> None:
    sim.subscribe(path_for(request), ["order.created"])
    sim.order()
    stranger = Sim(base_url, f"other-{request.node.name}", receiver, shared_http)
    assert stranger.events() == []
    assert list(stranger.sq.webhooks.subscriptions.list()) == []
    assert len(sim.events()) == 1


def test_reset_forgets_subscriptions_and_events(sim: Sim, request) -> None:
    path = path_for(request)
    sim.subscribe(path, ["order.created"])
    sim.order()
    sim.flush()
    sim.http.post("/_sim/reset")
    assert sim.events() == [] and list(sim.sq.webhooks.subscriptions.list()) == []
    sim.order()
    sim.flush()
    assert len(sim.receiver.at(path)) == 1


@pytest.mark.parametrize("path,body,field", [
    ("faults", {"drop": 2}, "drop"),
    ("faults", {"duplicate": "often"}, "duplicate"),
    ("faults", {"delay_seconds": -1}, "delay_seconds"),
    ("faults", {"delay_seconds": True}, "delay_seconds"),
    ("faults", {"explode": True}, "explode"),
    ("faults", {"seed": 1.5}, "seed"),
    ("settings", {"timeout_seconds": 0}, "timeout_seconds"),
    ("settings", {"timeout_seconds": 61}, "timeout_seconds"),
    ("settings", {"retries": 3}, "retries"),
    ("flush", {"timeout_seconds": "soon"}, "timeout_seconds"),
])
def test_control_api_rejects_bad_input(sim: Sim, request, path, body, field) -> None:
    sub = sim.subscribe(path_for(request), ["order.created"])
    url = {"faults": f"/_sim/webhooks/subscriptions/{sub.id}/faults",
           "settings": "/_sim/webhooks/settings", "flush": "/_sim/webhooks/flush"}[path]
    r = sim.http.post(url, json=body)
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert (err["category"], err["field"]) == ("INVALID_REQUEST_ERROR", field)
    assert sim.http.get(f"/_sim/webhooks/subscriptions/{sub.id}/faults").json()["faults"] == {
        "duplicate": 0.0, "drop": 0.0, "delay_seconds": 0.0, "reorder": 0.0}
    assert sim.http.get("/_sim/webhooks/settings").json() == {"timeout_seconds": 10.0}


def test_faults_for_unknown_subscription_is_not_found(sim: Sim) -> None:
    r = sim.http.post("/_sim/webhooks/subscriptions/wbhk_nope/faults", json={"drop": True})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "NOT_FOUND")

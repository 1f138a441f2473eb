"""Durable state in-process: a merchant kept in a SQLite file comes back whole when the app is
rebuilt on the same file (orders, payments, ids, idempotency, clock, variants, webhooks with
their faults and retry schedule), version 1 snapshots still load, and writes racing a reset or
a restore land in the merchant that answers them."""

from __future__ import annotations

import asyncio
import json
import threading
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from orderfsm.engine import Engine
from simulator import create_app

from .conftest import TestClient, auth

TOKEN = "durable-token"
H = auth(TOKEN)


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


@pytest.fixture
def receiver(http_receiver) -> SimpleNamespace:
    """A loopback webhook receiver answering ``status`` (changeable) and recording events."""
    hook = SimpleNamespace(status=200, events=[])

    def on_post(path: str, body: bytes) -> int:
        hook.events.append(json.loads(body))
        return hook.status

    hook.url = http_receiver(on_post).url()
    return hook


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> str:
    """A SQLite file, or a PostgreSQL database (``pg_url``): a reopen is then a second app on
    the same database, as another process would be."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "state.sqlite3")


def _client(db: str) -> TestClient:
    app = create_app(db=db)
    app.state.config.log_requests = False
    return TestClient(app)


def _state(c: TestClient) -> dict[str, Any]:
    r = c.get("/_sim/state", headers=H)
    assert r.status_code == 200
    return r.json()


def _pay(c: TestClient, key: str, amount: int = 500, **extra: Any) -> httpx.Response:
    return c.post("/v2/payments", headers=H, json={
        "idempotency_key": key, "source_id": "cnon:card-nonce-ok", "amount_money": usd(amount),
        **extra})


def test_everything_a_merchant_has_survives_a_reopen(db, receiver) -> None:
    c = _client(db)
    sub = c.post("/v2/webhooks/subscriptions", headers=H, json={"subscription": {
        "name": "all", "event_types": ["payment.created", "payment.updated"],
        "notification_url": receiver.url}}).json()["subscription"]
    assert c.post(f"/_sim/webhooks/subscriptions/{sub['id']}/faults", headers=H,
                  json={"duplicate": 0.5, "seed": 3}).status_code == 200
    assert c.post("/_sim/variants", headers=H, json={"refund_while_pending": "reject"}).status_code == 200
    order = c.post("/v2/orders", headers=H, json={"idempotency_key": "o1", "order": {
        "location_id": "main", "line_items": [{"name": "Tea", "quantity": "2",
                                               "base_price_money": usd(250)}]}}).json()["order"]
    paid = _pay(c, "p1", order_id=order["id"])
    held = _pay(c, "p2", 300, autocomplete=False, delay_duration="PT10M").json()["payment"]
    refund = c.post("/v2/refunds", headers=H, json={
        "idempotency_key": "r1", "payment_id": paid.json()["payment"]["id"],
        "amount_money": usd(100)}).json()["refund"]
    assert c.post("/_sim/clock/advance", headers=H, json={"seconds": 5}).status_code == 200
    assert c.post("/_sim/webhooks/flush", headers=H, json={}).json()
    before = _state(c)
    assert before["records"]["event"] and before["records"]["subscription"]

    c2 = _client(db)
    assert c2.app.state.store.restored == 1
    assert _state(c2) == before
    # Idempotency: the same key replays byte for byte, another body is refused.
    assert _pay(c2, "p1", order_id=order["id"]).content == paid.content
    reused = _pay(c2, "p1", 999)
    assert reused.status_code == 400
    assert reused.json()["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Ids go on from where they were; the clock, the variants and the faults are the same.
    fresh = _pay(c2, "p3").json()["payment"]
    known = set(before["records"]["payment"]) | set(before["records"]["order"])
    assert fresh["id"] not in known and fresh["order_id"] not in known
    assert c2.get("/_sim/variants", headers=H).json()["variants"]["refund_while_pending"] == "reject"
    assert c2.get(f"/_sim/webhooks/subscriptions/{sub['id']}/faults", headers=H).json()[
        "faults"]["duplicate"] == 0.5
    # Timers kept: the refund settles and the delayed payment expires on the restored clock.
    assert c2.post("/_sim/clock/advance", headers=H, json={"seconds": 600}).json()["fired"] == 2
    assert c2.get(f"/v2/refunds/{refund['id']}", headers=H).json()["refund"]["status"] == "COMPLETED"
    assert c2.get(f"/v2/payments/{held['id']}", headers=H).json()["payment"]["status"] == "CANCELED"
    search = c2.post("/v2/orders/search", headers=H, json={"location_ids": ["main"]}).json()
    assert order["id"] in [o["id"] for o in search["orders"]]


def test_a_pending_retry_resumes_after_a_reopen(db, receiver) -> None:
    c = _client(db)
    c.post("/v2/webhooks/subscriptions", headers=H, json={"subscription": {
        "event_types": ["payment.created"], "notification_url": receiver.url}})
    receiver.status = 503
    payment = _pay(c, "k").json()["payment"]
    assert c.post("/_sim/webhooks/flush", headers=H, json={}).json()["idle"] is True
    [event] = c.get("/_sim/events", headers=H, params={"type": "payment.created"}).json()["events"]
    [delivery] = event["deliveries"]
    assert delivery["status"] == "pending" and len(delivery["attempts"]) == 1
    assert len(receiver.events) == 1

    receiver.status = 200
    c2 = _client(db)
    [again] = c2.get("/_sim/events", headers=H, params={"type": "payment.created"}).json()["events"]
    assert again["deliveries"][0]["next_attempt_at"] == delivery["next_attempt_at"]
    c2.post("/_sim/clock/advance", headers=H, json={"seconds": 60})
    assert c2.post("/_sim/webhooks/flush", headers=H, json={}).json()["idle"] is True
    assert [e["event_id"] for e in receiver.events] == [event["event_id"]] * 2
    assert receiver.events[1]["data"]["object"]["payment"]["id"] == payment["id"]
    [done] = c2.get("/_sim/events", headers=H, params={"type": "payment.created"}).json()["events"]
    assert done["deliveries"][0]["status"] == "delivered"
    c3 = _client(db)  # and the outcome was stored
    [kept] = c3.get("/_sim/events", headers=H, params={"type": "payment.created"}).json()["events"]
    assert kept["deliveries"][0]["status"] == "delivered"


def test_snapshots_carry_webhooks_between_merchants(db, receiver) -> None:
    c = _client(db)
    c.post("/v2/webhooks/subscriptions", headers=H, json={"subscription": {
        "event_types": ["payment.created"], "notification_url": receiver.url}})
    _pay(c, "k")
    c.post("/_sim/webhooks/flush", headers=H, json={})
    snap = _state(c)
    other = {"Authorization": "Bearer another"}
    assert c.post("/_sim/state", headers=other, json=snap).status_code == 200
    subs = c.get("/v2/webhooks/subscriptions", headers=other).json()["subscriptions"]
    assert [s["notification_url"] for s in subs] == [receiver.url]
    assert c.get("/_sim/events", headers=other).json()["events"] == \
        c.get("/_sim/events", headers=H).json()["events"]
    reopened = _client(db)  # the restored copy is stored too
    assert reopened.get("/_sim/state", headers=other).json() == snap


def test_a_version_1_snapshot_still_loads(db) -> None:
    engine = Engine(seed="v1")
    order = engine.create_order({"location_id": engine.main_location_id})
    payment = engine.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": "p",
                                     "amount_money": usd(700)})
    body = {"source_id": "cnon:card-nonce-ok", "idempotency_key": "p", "amount_money": usd(700)}
    v1 = {"format": "orderfsm.simulator.state", "version": 1, "engine": engine.snapshot(),
          "idempotency": [["CreatePayment", "p",
                           json.dumps(body, sort_keys=True, separators=(",", ":")),
                           200, {"payment": payment}]]}
    c = _client(db)
    r = c.post("/_sim/state", headers=H, json=v1)
    assert r.status_code == 200, r.text
    assert c.get(f"/v2/orders/{order['id']}", headers=H).json()["order"]["id"] == order["id"]
    replay = c.post("/v2/payments", headers=H, json=body)
    assert replay.json() == {"payment": payment}
    assert c.post("/v2/payments", headers=H, json={**body, "note": "x"}).status_code == 400
    snap = _state(c)
    assert snap["version"] == 2 and snap["records"]["meta"]["engine"]["merchant_id"] == \
        engine.merchant_id


def test_a_write_racing_a_reset_lands_in_the_new_merchant(db) -> None:
    """The merchant is resolved after the body is read: a write whose body is still arriving
    when a reset completes is applied to (and kept by) the merchant after the reset."""
    app = create_app(db=db)
    app.state.config.log_requests = False

    async def scenario() -> tuple[httpx.Response, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            await client.get("/v2/locations", headers=H)
            old_merchant = app.state.store.merchants[TOKEN].engine.merchant_id
            half = asyncio.Event()
            reset_done = asyncio.Event()
            body = json.dumps({"idempotency_key": "racer", "source_id": "cnon:card-nonce-ok",
                               "amount_money": usd(100)}).encode()

            async def slow_body():
                yield body[:20]
                half.set()
                await reset_done.wait()
                yield body[20:]

            write = asyncio.create_task(client.post("/v2/payments", headers=H,
                                                    content=slow_body()))
            await half.wait()
            r = await client.post("/_sim/reset", headers=H)
            assert r.status_code == 200 and r.json()["merchant_id"] == old_merchant  # same seed
            reset_done.set()
            return await write, r.json()["merchant_id"]

    response, _ = asyncio.run(scenario())
    assert response.status_code == 200, response.text
    pid = response.json()["payment"]["id"]
    c = TestClient(app)
    assert c.get(f"/v2/payments/{pid}", headers=H).status_code == 200
    assert pid in _state(_client(db))["records"]["payment"]


def test_a_write_during_a_restore_waits_for_it(db) -> None:
    """Commands of one merchant take turns with its restore: a write sent while a restore runs
    is applied to the restored merchant, never to the one being replaced."""
    app = create_app(db=db)
    app.state.config.log_requests = False
    c = TestClient(app)
    _pay(c, "before")
    snap = _state(c)
    _pay(c, "not-in-snapshot")
    store = app.state.store
    entered, release = threading.Event(), threading.Event()
    real_restore = store.restore

    def slow_restore(token: str, rows: Any) -> Any:
        entered.set()
        release.wait(10)
        return real_restore(token, rows)

    store.restore = slow_restore

    async def scenario() -> tuple[httpx.Response, httpx.Response, bool]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            restore = asyncio.create_task(client.post("/_sim/state", headers=H, json=snap))
            await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
            write = asyncio.create_task(client.post("/v2/payments", headers=H, json={
                "idempotency_key": "during", "source_id": "cnon:card-nonce-ok",
                "amount_money": usd(100)}))
            other = await client.get("/v2/locations", headers=auth("someone-else"))
            await asyncio.sleep(0.05)
            waited = not write.done()  # the write waits for its merchant's restore
            release.set()
            return await restore, await write, waited and other.status_code == 200

    restored, write, waited = asyncio.run(scenario())
    assert restored.status_code == 200 and write.status_code == 200 and waited
    records = _state(c)["records"]
    assert write.json()["payment"]["id"] in records["payment"]
    assert "CreatePayment|not-in-snapshot" not in records["idem"]
    assert "CreatePayment|before" in records["idem"]


def test_the_catalog_survives_a_reopen(db) -> None:
    c = _client(db)
    r = c.post("/v2/catalog/object", headers=H, json={"idempotency_key": "cat", "object": {
        "type": "ITEM", "id": "#tea", "item_data": {"name": "Tea", "variations": [{
            "type": "ITEM_VARIATION", "id": "#tea-cup", "item_variation_data": {
                "name": "Cup", "pricing_type": "FIXED_PRICING", "price_money": usd(300)}}]}}})
    assert r.status_code == 200, r.text
    item = r.json()["catalog_object"]
    variation = item["item_data"]["variations"][0]["id"]
    renamed = c.post("/v2/catalog/object", headers=H, json={"idempotency_key": "cat2", "object": {
        **item, "item_data": {**item["item_data"], "name": "Green tea"}}})
    assert renamed.status_code == 200, renamed.text
    before = c.get(f"/v2/catalog/object/{item['id']}", headers=H).json()

    c2 = _client(db)
    assert c2.get(f"/v2/catalog/object/{item['id']}", headers=H).json() == before
    old = c2.get(f"/v2/catalog/object/{item['id']}", headers=H,
                 params={"catalog_version": item["version"]}).json()["object"]
    assert old["item_data"]["name"] == "Tea"  # earlier versions are kept too
    order = c2.post("/v2/orders", headers=H, json={"idempotency_key": "o", "order": {
        "location_id": "main", "line_items": [{"catalog_object_id": variation,
                                               "quantity": "2"}]}})
    assert order.status_code == 200, order.text
    assert order.json()["order"]["total_money"]["amount"] == 600


def test_a_large_snapshot_is_read_record_by_record(db) -> None:
    """Snapshots over 1 MiB are parsed one record at a time (so other merchants keep being
    served); the result is the same as for any snapshot, and bad JSON is still a 400."""
    c = _client(db)
    m = c.app.state.store.merchant(TOKEN)
    for i in range(1100):
        m.engine.create_order({"location_id": m.engine.main_location_id, "reference_id": f"r{i}",
                               "metadata": {"note": "x" * 1000}})
    m.flush()
    snap = c.get("/_sim/state", headers=H)
    assert len(snap.content) > 1 << 20
    other = auth("big-copy")
    pretty = json.dumps(snap.json(), indent=1).encode()  # whitespace everywhere
    for body in (snap.content, pretty):
        r = c.post("/_sim/state", headers={**other, "content-type": "application/json"},
                   content=body)
        assert r.status_code == 200, r.text
        assert c.get("/_sim/state", headers=other).json() == snap.json()
    broken = snap.content[:-3] + b",}}"
    r = c.post("/_sim/state", headers={**other, "content-type": "application/json"},
               content=broken)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert c.get("/_sim/state", headers=other).json() == snap.json()


def test_running_takes_a_db_too(db) -> None:
    from orderfsm.simulator import running

    with running(db=db) as url:
        r = httpx.post(url + "/v2/orders", headers=H, json={
            "idempotency_key": "o", "order": {"location_id": "main"}})
        assert r.status_code == 200
    order_id = r.json()["order"]["id"]
    assert _client(db).get(f"/v2/orders/{order_id}", headers=H).json()["order"]["id"] == order_id

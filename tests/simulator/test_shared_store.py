"""Two apps on one PostgreSQL database, as two worker processes would be: a copy in memory is
reloaded only when the other one changed the merchant, and what either serves is the same."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from simulator import create_app

H = {"Authorization": "Bearer shared"}


def _pair(url: str) -> tuple[TestClient, TestClient, dict[int, list[int]]]:
    reloads: dict[int, list[int]] = {}
    clients = []
    for n in (1, 2):
        app = create_app(db=url)
        app.state.config.log_requests = False
        store = app.state.store
        original = store._reload

        def counted(*args: Any, n: int = n, original: Any = original) -> Any:
            reloads.setdefault(n, []).append(args[2])
            return original(*args)

        store._reload = counted
        clients.append(TestClient(app))
    return clients[0], clients[1], reloads


def _pay(c: TestClient, key: str, amount: int = 100) -> dict[str, Any]:
    r = c.post("/v2/payments", headers=H, json={
        "idempotency_key": key, "source_id": "cnon:card-nonce-ok",
        "amount_money": {"amount": amount, "currency": "USD"}})
    assert r.status_code == 200, r.text
    return r.json()["payment"]


def test_a_merchant_that_stays_on_one_process_is_never_reloaded(pg_url) -> None:
    a, b, reloads = _pair(pg_url)
    for i in range(20):
        _pay(a, f"k{i}")
    assert a.get("/v2/payments", headers=H).status_code == 200
    assert reloads == {}  # a created the merchant and kept it current
    assert len(b.get("/v2/payments", headers=H).json()["payments"]) == 20
    assert len(reloads[2]) == 1  # b loads it once
    b.get("/v2/locations", headers=H)
    assert len(reloads[2]) == 1  # and reads change nothing
    _pay(b, "from-b")
    _pay(a, "from-a")
    assert len(reloads.get(1, [])) == 1  # a reloads once, after b's write


def test_both_processes_serve_the_same_merchant(pg_url) -> None:
    a, b, _ = _pair(pg_url)
    order = a.post("/v2/orders", headers=H, json={"idempotency_key": "o", "order": {
        "location_id": "main", "line_items": [{"name": "Pie", "quantity": "1",
                                               "base_price_money": {"amount": 900,
                                                                    "currency": "USD"}}]}}
                   ).json()["order"]
    paid = b.post("/v2/payments", headers=H, json={
        "idempotency_key": "p", "source_id": "cnon:card-nonce-ok", "order_id": order["id"],
        "amount_money": {"amount": 900, "currency": "USD"}}).json()["payment"]
    assert a.post("/v2/refunds", headers=H, json={
        "idempotency_key": "r", "payment_id": paid["id"],
        "amount_money": {"amount": 900, "currency": "USD"}}).status_code == 200
    over = b.post("/v2/refunds", headers=H, json={
        "idempotency_key": "r2", "payment_id": paid["id"],
        "amount_money": {"amount": 1, "currency": "USD"}})
    assert over.status_code == 400  # the ceiling a's refund reached holds in b
    b.post("/_sim/clock/advance", headers=H, json={"seconds": 120})
    assert a.get("/_sim/clock", headers=H).json() == b.get("/_sim/clock", headers=H).json()
    search = {"location_ids": ["main"], "query": {"filter": {"state_filter": {
        "states": ["COMPLETED"]}}}}
    found_a = a.post("/v2/orders/search", headers=H, json=search).json()
    found_b = b.post("/v2/orders/search", headers=H, json=search).json()
    assert found_a == found_b and order["id"] in [o["id"] for o in found_a["orders"]]
    # Either dumps the same merchant (records and their versions).
    state_a = a.get("/_sim/state", headers=H).json()
    state_b = b.get("/_sim/state", headers=H).json()
    assert state_a == state_b


@pytest.mark.parametrize("first", [0, 1])
def test_a_merchant_created_by_both_at_once_is_one_merchant(pg_url, first: int) -> None:
    import threading

    a, b, _ = _pair(pg_url)
    clients = [a, b]
    barrier = threading.Barrier(2)
    ids: list[str] = []

    def create(c: TestClient) -> None:
        barrier.wait()
        ids.append(c.get("/v2/locations", headers=H).json()["locations"][0]["id"])

    threads = [threading.Thread(target=create, args=(clients[(first + i) % 2],))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 2 and ids[0] == ids[1]
    assert a.app.state.store.state.stats()["merchants"] == 1

"""The inspector's JSON endpoints under /_sim, the rejection log, /_sim/coverage and the page's
assets (the page itself runs in a browser in tests/inspector/)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from orderfsm import diagrams
from orderfsm.lifecycles import LIFECYCLES
from simulator import create_app

USD = "USD"
PICKUP = {"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "Ann"}}}


@pytest.fixture
def app() -> Any:
    return create_app(seed=3)


def client(app: Any, token: str | None = "insp") -> TestClient:
    tc = TestClient(app, raise_server_exceptions=False)
    if token:
        tc.headers["Authorization"] = f"Bearer {token}"
    return tc


def paid_order_with_refund(c: TestClient) -> dict[str, Any]:
    loc = c.get("/v2/locations").json()["locations"][0]["id"]
    order = c.post("/v2/orders", json={"idempotency_key": "o", "order": {
        "location_id": loc, "fulfillments": [PICKUP], "line_items": [
            {"name": "Tea", "quantity": "2", "base_price_money": {"amount": 250, "currency": USD}}]}}
                   ).json()["order"]
    payment = c.post("/v2/payments", json={
        "idempotency_key": "p", "source_id": "cnon:card-nonce-ok", "order_id": order["id"],
        "amount_money": {"amount": 500, "currency": USD}}).json()["payment"]
    refund = c.post("/v2/refunds", json={
        "idempotency_key": "r", "payment_id": payment["id"],
        "amount_money": {"amount": 200, "currency": USD}}).json()["refund"]
    rejected = c.put(f"/v2/orders/{order['id']}", json={"order": {"version": 2,
                                                                  "state": "CANCELED"}})
    assert rejected.status_code == 400
    return {"order": order, "payment": payment, "refund": refund}


def test_the_rejection_log_names_the_rule_and_keeps_the_request(app: Any) -> None:
    c = client(app)
    ids = paid_order_with_refund(c)
    c.get("/_sim/orders/nope")  # the inspector's own failed reads are not logged
    body = c.get("/_sim/rejections").json()
    assert body["total"] == 1 and body["kept"] == 1
    (entry,) = body["rejections"]
    assert entry["rule_id"] == "order.cancel_after_payment"
    assert entry["method"] == "PUT" and entry["path"] == f"/v2/orders/{ids['order']['id']}"
    assert entry["status"] == 400
    assert entry["errors"][0]["detail"] == \
        "Orders cannot be canceled after payments have been processed."
    assert entry["request"] == {"order": {"version": 2, "state": "CANCELED"}}
    rule = entry["rule"]
    assert rule["statement"].startswith("An order with a processed (captured) payment")
    assert rule["confidence"] == "REPORTED"
    assert {"key": "F1", "url": "https://developer.squareup.com/forums/t/"
            "best-method-to-cancel-order-after-refund/922", "remark": ""} in rule["sources"]
    assert rule["variant"]["name"] == "cancel_after_payment"
    # Another merchant sees none of it.
    other = client(app, "other")
    other.get("/v2/locations")
    assert other.get("/_sim/rejections").json()["rejections"] == []


def test_rejections_without_a_rule_and_without_a_merchant(app: Any) -> None:
    c = client(app)
    c.get("/v2/locations")
    r = c.post("/v2/orders", content=b'{"order": ')
    assert r.status_code == 400
    (entry,) = c.get("/_sim/rejections").json()["rejections"]
    assert entry["request"] == '{"order": '  # not JSON: kept as text
    assert client(app, None).get("/v2/locations").status_code == 401  # no token: nowhere to log
    assert client(app, "never-seen").get("/_sim/rejections").json()["total"] == 0


def test_the_log_keeps_the_newest_thousand(app: Any) -> None:
    c = client(app)
    for _ in range(1005):
        c.get("/v2/orders/missing")
    body = c.get("/_sim/rejections?limit=2").json()
    assert body["total"] == 1005 and body["kept"] == 1000
    assert [e["seq"] for e in body["rejections"]] == [1005, 1004]
    assert c.get("/_sim/rejections?offset=999&limit=5").json()["rejections"][0]["seq"] == 6


def test_orders_are_paged_newest_first_and_filtered(app: Any) -> None:
    c = client(app)
    eng = app.state.store.merchant("insp").engine
    made = [eng.create_order({"location_id": eng.main_location_id, "reference_id": f"ref-{i}"})
            for i in range(120)]
    eng.update_order(made[5]["id"], {"version": 1, "state": "CANCELED"})
    page = c.get("/_sim/orders?limit=50").json()
    assert page["total"] == 120 and len(page["orders"]) == 50
    assert page["orders"][0]["id"] == made[-1]["id"]
    assert c.get("/_sim/orders?offset=100&limit=50").json()["orders"][-1]["id"] == made[0]["id"]
    canceled = c.get("/_sim/orders?state=CANCELED").json()
    assert canceled["total"] == 1 and canceled["orders"][0]["id"] == made[5]["id"]
    assert canceled["orders"][0]["version"] == 2
    found = c.get("/_sim/orders?q=ref-11").json()
    assert [o["reference_id"] for o in found["orders"]] == ["ref-119", "ref-118", "ref-117",
                                                            "ref-116", "ref-115", "ref-114",
                                                            "ref-113", "ref-112", "ref-111",
                                                            "ref-110", "ref-11"]
    bad = c.get("/_sim/orders?limit=500")
    assert bad.status_code == 400
    assert bad.json() == {"errors": [{"code": "INVALID_VALUE", "detail":
                                      "`limit` must be between 1 and 200.", "field": "limit",
                                      "category": "INVALID_REQUEST_ERROR"}]}
    assert c.get("/_sim/orders?offset=x").status_code == 400


def test_an_orders_detail_has_its_records_and_paths(app: Any) -> None:
    c = client(app)
    ids = paid_order_with_refund(c)
    oid, pid, rid = ids["order"]["id"], ids["payment"]["id"], ids["refund"]["id"]
    c.post("/_sim/clock/advance", json={"seconds": 60})  # the refund settles
    row = next(o for o in c.get("/_sim/orders").json()["orders"] if o["id"] == oid)
    assert row["state"] == "OPEN" and row["version"] == 2
    assert row["total_money"] == {"amount": 500, "currency": USD}
    assert row["net_amount_due_money"] == {"amount": 0, "currency": USD}
    assert row["fulfillments"][0]["state"] == "PROPOSED"
    d = c.get(f"/_sim/orders/{oid}").json()
    assert d["order"]["line_items"][0]["name"] == "Tea"
    assert d["order"]["tenders"][0]["payment_id"] == pid
    assert [p["id"] for p in d["payments"]] == [pid]
    assert [(r["id"], r["status"]) for r in d["refunds"]] == [(rid, "COMPLETED")]
    (ret,) = d["return_orders"]
    assert ret["id"] == ids["refund"]["order_id"] and ret["returns"][0]["source_order_id"] == oid
    assert d["paths"]["refund"][rid] == [{"from": "PENDING", "to": "COMPLETED",
                                          "trigger": "settle", "at": "2026-01-05T15:00:10.000Z"}]
    assert [s["trigger"] for s in d["paths"]["order"][oid]] == ["pay"]
    assert d["paths"]["payment"][pid] == []  # created COMPLETED, never moved
    back = c.get(f"/_sim/orders/{ret['id']}").json()
    assert back["source_order_ids"] == [oid]
    missing = c.get("/_sim/orders/nope")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"


def test_a_declined_payment_shows_in_its_orders_detail(app: Any) -> None:
    c = client(app)
    loc = c.get("/v2/locations").json()["locations"][0]["id"]
    order = c.post("/v2/orders", json={"order": {"location_id": loc, "line_items": [
        {"name": "x", "quantity": "1", "base_price_money": {"amount": 100, "currency": USD}}]}}
                   ).json()["order"]
    assert c.post("/v2/payments", json={
        "idempotency_key": "d", "source_id": "cnon:card-nonce-declined", "order_id": order["id"],
        "amount_money": {"amount": 100, "currency": USD}}).status_code == 400
    d = c.get(f"/_sim/orders/{order['id']}").json()
    assert [p["status"] for p in d["payments"]] == ["FAILED"]
    log = c.get("/_sim/rejections").json()["rejections"]
    assert log[0]["rule_id"] == "payment.card_declined"


def test_lifecycles_are_the_diagram_edges(app: Any) -> None:
    graphs = client(app).get("/_sim/lifecycles").json()["lifecycles"]
    assert set(graphs) == set(LIFECYCLES)
    for name, lc in LIFECYCLES.items():
        g = graphs[name]
        assert g["states"] == list(lc.states)
        assert [(e["source"], e["dest"], e["label"], e["kind"]) for e in g["edges"]] == [
            (e.source, e.dest, e.label, e.kind)
            for e in diagrams.edges(lc, include_rejections=True)]
        # Every transition goes left to right in the layout; no two states share a cell.
        cells = [tuple(v) for v in g["layout"].values()]
        assert len(set(cells)) == len(cells)
        for t in lc.transitions:
            for src in t.source:
                if t.dest is not None:
                    assert g["layout"][src][0] < g["layout"][t.dest][0], (name, src, t.dest)


def test_coverage_per_merchant_survives_a_reset(app: Any) -> None:
    c = client(app)
    paid_order_with_refund(c)
    cov = c.get("/_sim/coverage").json()
    assert cov["rules"]["order.cancel_after_payment"] == {"triggered": 1, "satisfied": 0}
    assert cov["transitions"]["order"]["OPEN->OPEN"] == 1
    other = client(app, "other").get("/_sim/coverage").json()
    assert other["rules"]["order.cancel_after_payment"]["triggered"] == 0
    c.post("/_sim/reset")
    assert c.get("/_sim/coverage").json() == cov
    # A restored snapshot keeps counting into the same merchant's coverage.
    state = c.get("/_sim/state").json()
    assert c.post("/_sim/state", json=state).status_code == 200
    c.get("/v2/orders/missing")
    assert c.get("/_sim/coverage").json()["rules"]["order.not_found"]["triggered"] == 1


def test_overview_and_outbox(app: Any) -> None:
    c = client(app)
    paid_order_with_refund(c)
    o = c.get("/_sim/overview").json()
    assert o["orders"] == 2 and o["payments"] == 1 and o["refunds"] == 1
    assert o["rejections"] == 1 and o["now"] == "2026-01-05T15:00:00.000Z"
    box = c.get("/_sim/outbox?limit=3").json()
    assert box["enabled"] is True
    # Newest first: the refund's events come last in time; the refund's return order is
    # updated with it (refunds-api webhooks page, S17).
    assert [e["type"] for e in box["events"]] == ["payment.updated", "order.updated",
                                                  "refund.created"]
    assert box["summary"]["events"] == 6


def test_the_pages_polling_stays_out_of_the_request_log(app: Any, caplog: Any) -> None:
    c = client(app)
    with caplog.at_level("INFO", logger="orderfsm.simulator"):
        c.get("/v2/locations")
        for path in ("/_sim/ui", "/_sim/ui/ui.js", "/_sim/overview", "/_sim/orders",
                     "/_sim/lifecycles", "/_sim/rejections", "/_sim/outbox", "/_sim/coverage"):
            assert c.get(path).status_code == 200, path
        c.get("/_sim/orders/nope")
    # Request lines end with the duration and the merchant tag; compare what comes before.
    logged = [re.sub(r" \d+\.\dms merchant=\S+$", "", r.getMessage())
              for r in caplog.records if r.name == "orderfsm.simulator"]
    assert logged == ["GET /v2/locations 200", "GET /_sim/orders/nope 404 rule=NOT_FOUND"]


def test_the_page_and_its_assets_are_local(app: Any) -> None:
    anon = client(app, None)
    page = anon.get("/_sim/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(r.startswith("/_sim/ui/") for r in refs), refs
    for name, kind in (("ui.js", "text/javascript"), ("ui.css", "text/css")):
        asset = anon.get(f"/_sim/ui/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", asset.text), name
    assert anon.get("/_sim/ui/../app.py").status_code == 404
    missing = anon.get("/_sim/ui/other.js")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"
    assert anon.get("/_sim/orders").status_code == 401  # the data needs the merchant's token

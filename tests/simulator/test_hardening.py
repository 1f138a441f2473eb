"""Regression tests for the hardening issue: every hostile input found by hand answers a 4xx in
Square's shape naming the field, a crash midway through a command leaves nothing behind, a 500
looks like Square's and is logged once, bodies are capped, and webhook targets are limited."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from orderfsm.engine import Engine
from orderfsm.errors import SquareError
from orderfsm.numbers import INT64_MAX, decimal_problem, integer_problem
from simulator.store import SimulatorConfig

IRE = "INVALID_REQUEST_ERROR"
HOSTILE_DECIMALS = ["NaN", "sNaN", "Infinity", "-Infinity", "1e400", "1E3", "0x10", " 1",
                    "+1", "１", "1_000", "", ".", "-", "1.2.3", "1,5"]


def usd(amount: Any) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def line(quantity: str = "1", amount: int = 100) -> dict[str, Any]:
    return {"name": "Tea", "quantity": quantity, "base_price_money": usd(amount)}


def error_of(r) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert list(body) == ["errors"], body
    return body["errors"][0]


def still_readable(raw) -> list[dict]:
    """The merchant's reads all answer 200; returns its orders."""
    for path in ("/v2/payments", "/v2/refunds", "/v2/locations"):
        assert raw.get(path).status_code == 200, path
    r = raw.post("/v2/orders/search", json={"location_ids": ["main"]})
    assert r.status_code == 200, r.text
    orders = r.json().get("orders", [])
    for o in orders:
        assert raw.get(f"/v2/orders/{o['id']}").status_code == 200
    return orders


# ============================================================================ decimal strings
@pytest.mark.parametrize("text", HOSTILE_DECIMALS)
def test_decimal_problem_refuses_anything_but_plain_decimals(text: str) -> None:
    assert decimal_problem(text) is not None


@pytest.mark.parametrize("text", ["0", "7.25", "-1", "100.00000", "12345678901", "5.", ".5"])
def test_decimal_problem_accepts_plain_decimals(text: str) -> None:
    assert decimal_problem(text) is None


def test_decimal_problem_limits() -> None:
    assert decimal_problem("1.123456", max_fraction_digits=5) is not None
    assert decimal_problem("1.12345", max_fraction_digits=5) is None
    assert decimal_problem("12345678901", max_length=10) is not None
    assert decimal_problem(7.25) is not None  # a JSON number is not a decimal string


@pytest.mark.parametrize("kind", ["discounts", "taxes", "service_charges"])
@pytest.mark.parametrize("pct", ["NaN", "sNaN", "Infinity", "1e400"])
def test_hostile_percentage_is_refused_before_anything_is_stored(raw, kind: str, pct: str) -> None:
    entry: dict[str, Any] = {"uid": "x", "name": "x", "percentage": pct}
    if kind == "service_charges":
        entry["calculation_phase"] = "SUBTOTAL_PHASE"
    order = {"location_id": "main", "line_items": [line()], kind: [entry]}
    for path in ("/v2/orders", "/v2/orders/calculate"):
        err = error_of(raw.post(path, json={"order": order}))
        assert (err["code"], err["field"]) == ("INVALID_VALUE", f"order.{kind}[0].percentage")
        assert pct in err["detail"]
    assert still_readable(raw) == []


def test_hostile_percentage_on_update_leaves_the_order_as_it_was(raw) -> None:
    created = raw.post("/v2/orders", json={"order": {"location_id": "main",
                                                     "line_items": [line()]}}).json()["order"]
    r = raw.put(f"/v2/orders/{created['id']}", json={"order": {
        "version": 1, "taxes": [{"uid": "t", "name": "t", "percentage": "Infinity"}]}})
    assert error_of(r)["field"] == "order.taxes[0].percentage"
    assert raw.get(f"/v2/orders/{created['id']}").json()["order"] == created
    assert [o["id"] for o in still_readable(raw)] == [created["id"]]


@pytest.mark.parametrize("qty", ["1e30", "NaN", "Infinity", "1e-3"])
def test_hostile_quantity_is_refused(raw, qty: str) -> None:
    r = raw.post("/v2/orders", json={"order": {"location_id": "main", "line_items": [line(qty)]}})
    err = error_of(r)
    assert (err["code"], err["field"]) == ("INVALID_VALUE", "order.line_items[0].quantity")
    assert still_readable(raw) == []


@pytest.mark.parametrize("field,value", [("quantity", "1e30"), ("percentage", "NaN")])
def test_engine_refuses_hostile_decimals_without_http(field: str, value: str) -> None:
    eng = Engine()
    order: dict[str, Any] = {"location_id": eng.main_location_id, "line_items": [line()]}
    if field == "quantity":
        order["line_items"][0]["quantity"] = value
        where = "order.line_items[0].quantity"
    else:
        order["discounts"] = [{"uid": "d", "name": "d", "percentage": value}]
        where = "order.discounts[0].percentage"
    with pytest.raises(SquareError) as info:
        eng.create_order(order)
    assert info.value.field == where
    assert eng.orders == {}


# ============================================================================ integers
def test_amount_above_int64_is_refused(raw) -> None:
    r = raw.post("/v2/payments", json={"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                                       "amount_money": usd(2**64 + 5)})
    err = error_of(r)
    assert (err["code"], err["field"]) == ("VALUE_TOO_HIGH", "amount_money.amount")
    assert raw.get("/v2/payments").json().get("payments", []) == []


def test_amount_at_int64_max_is_accepted(raw) -> None:
    r = raw.post("/v2/payments", json={"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                                       "amount_money": usd(INT64_MAX)})
    assert r.status_code == 200, r.text
    assert r.json()["payment"]["total_money"]["amount"] == INT64_MAX


def test_engine_refuses_amount_above_int64() -> None:
    eng = Engine()
    with pytest.raises(SquareError) as info:
        eng.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": "k",
                            "amount_money": usd(2**64 + 5)})
    assert info.value.field == "amount_money.amount"
    assert eng.payments == {}


def test_32_bit_integers_are_bounded(raw) -> None:
    r = raw.post("/v2/orders/search", json={"location_ids": ["main"], "limit": 2**31})
    assert error_of(r)["code"] == "VALUE_TOO_HIGH"
    assert integer_problem(2**31, None) is not None and integer_problem(2**31 - 1, None) is None
    assert integer_problem(-(2**63) - 1) is not None and integer_problem(-(2**63)) is None


@pytest.mark.parametrize("path,name", [("/v2/payments", "limit"), ("/v2/payments", "total"),
                                       ("/v2/refunds", "limit")])
def test_integers_over_4300_digits_in_a_query(raw, path: str, name: str) -> None:
    for text in ("9" * 5000, "-" + "9" * 5000, "0" * 30 + "5"):
        r = raw.get(path, params={name: text})
        if text.startswith("0"):
            assert r.status_code in (200, 400)  # 5 with leading zeros is just 5
            continue
        err = error_of(r)
        assert err["code"] in ("VALUE_TOO_HIGH", "VALUE_TOO_LOW") and err["field"] == name


@pytest.mark.parametrize("path", ["/v2/orders", "/v2/payments", "/v2/orders/search",
                                  "/v2/orders/batch-retrieve", "/v2/webhooks/subscriptions"])
@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 4400, "1e400", "-1e400"])
def test_huge_numbers_anywhere_in_a_json_body(raw, path: str, number: str) -> None:
    body = '{"idempotency_key":"k","unknown":' + number + "}"
    r = raw.post(path, content=body.encode(), headers={"content-type": "application/json"})
    err = error_of(r)
    assert err["code"] == "BAD_REQUEST" and "Malformed JSON" in err["detail"]


def test_deep_nesting_is_refused(raw) -> None:
    deep = "[" * 200 + "]" * 200
    body = '{"order":{"location_id":"main","line_items":[{"name":"x","quantity":"1","x":' \
        + deep + "}]}}"
    r = raw.post("/v2/orders", content=body.encode(), headers={"content-type": "application/json"})
    assert error_of(r)["code"] == "BAD_REQUEST"
    assert still_readable(raw) == []


# ============================================================================ time
EDGE = "9999-12-31T23:59:59-23:59"


@pytest.mark.parametrize("path", ["/v2/payments", "/v2/refunds"])
@pytest.mark.parametrize("name", ["begin_time", "end_time"])
@pytest.mark.parametrize("value", [EDGE, "0001-01-01T00:00:00+23:59"])
def test_timestamps_near_the_calendar_ends_on_lists(raw, path: str, name: str, value: str) -> None:
    err = error_of(raw.get(path, params={name: value}))
    assert (err["code"], err["field"]) == ("INVALID_VALUE", name)


def test_timestamp_near_the_calendar_end_in_search_orders(raw) -> None:
    r = raw.post("/v2/orders/search", json={"location_ids": ["main"], "query": {
        "filter": {"date_time_filter": {"created_at": {"start_at": EDGE}}}}})
    err = error_of(r)
    assert err["field"] == "query.filter.date_time_filter.created_at.start_at"


@pytest.mark.parametrize("duration", ["P99999999999D", "PT" + "9" * 400 + "S", "P1.2.3D"])
def test_durations_beyond_range(raw, duration: str) -> None:
    r = raw.post("/v2/payments", json={
        "idempotency_key": "k", "source_id": "cnon:card-nonce-ok", "amount_money": usd(100),
        "autocomplete": False, "delay_duration": duration})
    assert error_of(r)["field"] == "delay_duration"
    assert raw.get("/v2/payments").json().get("payments", []) == []


# ============================================================================ atomic commands
def _order_with_payment(raw) -> tuple[dict, dict]:
    order = raw.post("/v2/orders", json={"order": {"location_id": "main",
                                                   "line_items": [line(amount=500)]}}).json()
    payment = raw.post("/v2/payments", json={
        "idempotency_key": "p1", "source_id": "cnon:card-nonce-ok", "amount_money": usd(500),
        "order_id": order["order"]["id"], "autocomplete": False}).json()
    return order["order"], payment["payment"]


def test_a_crash_after_staging_leaves_the_merchant_unchanged_and_readable(
        raw, merchant, monkeypatch, caplog) -> None:
    order, payment = _order_with_payment(raw)
    order = raw.get(f"/v2/orders/{order['id']}").json()["order"]  # with its tender
    before = merchant.engine.snapshot()

    def boom(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected failure after staging")

    # Completing the payment stages the payment and the order, then settles the order.
    monkeypatch.setattr(Engine, "_settle_order_after_capture", boom)
    caplog.set_level(logging.INFO, logger="orderfsm.simulator")
    r = raw.post(f"/v2/payments/{payment['id']}/complete", json={},
                 headers={"square-version": "2025-01-23"})
    assert r.status_code == 500
    assert r.headers["square-version"] == "2025-01-23"
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"errors": [{
        "code": "INTERNAL_SERVER_ERROR", "category": "API_ERROR",
        "detail": "An internal error has occurred, and the API was unable to service your "
                  "request."}]}
    # One record: the request line at ERROR with the one traceback.
    records = [rec for rec in caplog.records if rec.name == "orderfsm.simulator"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].getMessage().startswith(
        f"POST /v2/payments/{payment['id']}/complete 500 rule=INTERNAL_SERVER_ERROR")
    assert records[0].exc_info is not None and "injected failure" in str(records[0].exc_info[1])
    assert sum(1 for rec in caplog.records if rec.exc_info) == 1

    assert merchant.engine.snapshot() == before
    assert raw.get(f"/v2/orders/{order['id']}").json()["order"] == order
    assert raw.get(f"/v2/payments/{payment['id']}").json()["payment"] == payment
    still_readable(raw)
    monkeypatch.undo()
    done = raw.post(f"/v2/payments/{payment['id']}/complete", json={})
    assert done.json()["payment"]["status"] == "COMPLETED"


def test_a_pricing_crash_during_an_update_stores_nothing(raw, merchant, monkeypatch) -> None:
    created = raw.post("/v2/orders", json={"order": {"location_id": "main",
                                                     "line_items": [line()]}}).json()["order"]
    before = merchant.engine.snapshot()
    import orderfsm.engine._core as engine_module  # where the transaction prices staged orders

    real = engine_module.price_order

    def fragile(order: Any, currency: str) -> Any:
        if any(li.get("name") == "poison" for li in order.get("line_items") or []):
            raise ArithmeticError("injected pricing failure")
        return real(order, currency)

    monkeypatch.setattr(engine_module, "price_order", fragile)
    r = raw.put(f"/v2/orders/{created['id']}", json={"order": {
        "version": 1, "line_items": [{"name": "poison", "quantity": "1",
                                      "base_price_money": usd(1)}]}})
    assert r.status_code == 500
    assert merchant.engine.snapshot() == before
    assert raw.get(f"/v2/orders/{created['id']}").json()["order"] == created
    still_readable(raw)


def test_a_crash_in_a_timer_command_changes_nothing(monkeypatch) -> None:
    eng = Engine()
    eng.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": "k",
                        "amount_money": usd(100), "autocomplete": False})
    before = eng.snapshot()
    monkeypatch.setattr(Engine, "_void_effects", lambda self, *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        eng.advance(8 * 24 * 3600)
    after = eng.snapshot()
    # The clock moved and the due timer was consumed; no record changed.
    for key in ("orders", "payments", "refunds", "payment_keys", "id_counter"):
        assert after[key] == before[key], key


# ============================================================================ limits
def test_a_body_over_the_cap_is_refused_from_its_length(raw) -> None:
    big = json.dumps({"order": {"location_id": "main",
                                "line_items": [line() for _ in range(12_000)]}}).encode()
    assert len(big) > 1024 * 1024
    r = raw.post("/v2/orders", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["errors"][0]["code"] == "REQUEST_ENTITY_TOO_LARGE"
    assert r.json()["errors"][0]["category"] == IRE
    assert "square-version" in r.headers
    assert still_readable(raw) == []


def test_a_streamed_body_over_the_cap_is_refused(raw) -> None:
    def chunks():
        yield b'{"order":{"location_id":"main","note":"'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}}'

    r = raw.post("/v2/orders", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert still_readable(raw) == []


def test_the_cap_is_configurable(make_app, make_raw) -> None:
    app = make_app(SimulatorConfig(max_body_bytes=200))
    client = make_raw(app_=app)
    assert client.post("/v2/orders/search", json={"location_ids": ["main"]}).status_code == 200
    r = client.post("/v2/orders", json={"order": {"location_id": "main", "note": "x" * 300}})
    assert r.status_code == 413


def test_too_many_line_items(raw) -> None:
    order = {"location_id": "main", "line_items": [line() for _ in range(501)]}
    err = error_of(raw.post("/v2/orders", json={"order": order}))
    assert (err["code"], err["field"]) == ("VALUE_TOO_LONG", "order.line_items")
    order["line_items"].pop()
    assert raw.post("/v2/orders", json={"order": order}).status_code == 200


# ============================================================================ webhook targets
def _subscribe(client, url: str):
    return client.post("/v2/webhooks/subscriptions", json={"subscription": {
        "name": "h", "event_types": ["payment.created"], "notification_url": url}})


def test_webhook_targets_are_loopback_only_by_default(raw) -> None:
    err = error_of(_subscribe(raw, "https://example.com/hook"))
    assert (err["code"], err["field"]) == ("INVALID_VALUE", "subscription.notification_url")
    assert "--webhook-allow" in err["detail"]
    assert _subscribe(raw, "http://127.0.0.1:9/hook").status_code == 200
    listed = raw.get("/v2/webhooks/subscriptions").json()["subscriptions"]
    assert [s["notification_url"] for s in listed] == ["http://127.0.0.1:9/hook"]


def test_webhook_allow_list(make_app, make_raw) -> None:
    app = make_app(SimulatorConfig(webhook_allow=("hooks.example.com",)))
    client = make_raw(app_=app)
    ok = _subscribe(client, "https://HOOKS.example.com/x")
    assert ok.status_code == 200
    sub = ok.json()["subscription"]
    assert error_of(_subscribe(client, "https://other.example.com/x"))["code"] == "INVALID_VALUE"
    r = client.put(f"/v2/webhooks/subscriptions/{sub['id']}", json={
        "subscription": {"notification_url": "https://evil.example.net/"}})
    assert error_of(r)["field"] == "subscription.notification_url"

    anything = make_raw(app_=make_app(SimulatorConfig(webhook_allow=("*",))))
    assert _subscribe(anything, "https://anywhere.example.org/x").status_code == 200

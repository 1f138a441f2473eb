"""Idempotency keys: per merchant, endpoint and key. The same key with the same body replays the
first response exactly; with a different body it is IDEMPOTENCY_KEY_REUSED; UpdateOrder replays
answer with the latest order and apply nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from square.core.api_error import ApiError

RO = {"max_retries": 0}
REUSED = {"errors": [{
    "code": "IDEMPOTENCY_KEY_REUSED",
    "detail": "The idempotency key can only be retried with the same request data.",
    "field": "idempotency_key",
    "category": "INVALID_REQUEST_ERROR",
}]}


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def payment_body(key: str, amount: int = 1000, **extra: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "source_id": "cnon:card-nonce-ok", "amount_money": usd(amount),
            **extra}


def order_body(key: str | None, price: int = 500) -> dict[str, Any]:
    body: dict[str, Any] = {"order": {"location_id": "main", "line_items": [
        {"name": "Bagel", "quantity": "1", "base_price_money": usd(price)}]}}
    if key is not None:
        body["idempotency_key"] = key
    return body


def test_create_payment_replays_the_first_response_exactly(raw, sim_state) -> None:
    first = raw.post("/v2/payments", json=payment_body("same", autocomplete=False))
    assert first.status_code == 200
    pid = first.json()["payment"]["id"]
    # The payment changes afterwards; the replay is still the first response, byte for byte.
    assert raw.post(f"/v2/payments/{pid}/cancel").status_code == 200
    before = sim_state()
    again = raw.post("/v2/payments", json=payment_body("same", autocomplete=False))
    assert again.status_code == 200
    assert again.content == first.content
    assert sim_state() == before
    assert len(raw.get("/v2/payments").json()["payments"]) == 1


def test_same_key_different_body_is_rejected(raw, sim_state) -> None:
    raw.post("/v2/payments", json=payment_body("k1", 1000))
    before = sim_state()
    r = raw.post("/v2/payments", json=payment_body("k1", 1001))
    assert r.status_code == 400
    assert r.json() == REUSED
    assert sim_state() == before


def test_sdk_sees_the_same_payment_on_replay(sdk) -> None:
    kw = dict(source_id="cnon:card-nonce-ok", idempotency_key="sdk-k", amount_money=usd(250),
              note="retry me", request_options=RO)
    a = sdk.payments.create(**kw).payment
    b = sdk.payments.create(**kw).payment
    assert a == b
    with pytest.raises(ApiError) as info:
        sdk.payments.create(**{**kw, "note": "changed"})
    assert info.value.status_code == 400
    assert info.value.body == REUSED


def test_create_order_replay_and_reuse(raw) -> None:
    first = raw.post("/v2/orders", json=order_body("ok1"))
    again = raw.post("/v2/orders", json=order_body("ok1"))
    assert again.status_code == 200 and again.content == first.content
    r = raw.post("/v2/orders", json=order_body("ok1", price=501))
    assert (r.status_code, r.json()) == (400, REUSED)
    assert len(raw.post("/v2/orders/search", json={"location_ids": ["main"]}).json()["orders"]) == 1


def test_orders_without_a_key_are_never_deduplicated(raw) -> None:
    a = raw.post("/v2/orders", json=order_body(None)).json()["order"]
    b = raw.post("/v2/orders", json=order_body(None)).json()["order"]
    assert a["id"] != b["id"]


def test_keys_are_per_endpoint(raw) -> None:
    order = raw.post("/v2/orders", json=order_body("shared-key")).json()["order"]
    pay = raw.post("/v2/payments", json=payment_body("shared-key", 500, order_id=order["id"]))
    assert pay.status_code == 200
    refund = raw.post("/v2/refunds", json={"idempotency_key": "shared-key",
                                           "payment_id": pay.json()["payment"]["id"],
                                           "amount_money": usd(100)})
    assert refund.status_code == 200


def test_keys_are_per_merchant(make_raw) -> None:
    a, b = make_raw("merchant-a"), make_raw("merchant-b")
    pa = a.post("/v2/payments", json=payment_body("same-key")).json()["payment"]
    pb = b.post("/v2/payments", json=payment_body("same-key")).json()["payment"]
    assert pa["id"] != pb["id"]
    other = b.post("/v2/payments", json=payment_body("k2", 1)).json()["payment"]
    assert a.post("/v2/payments", json=payment_body("k2", 2)).json()["payment"]["id"] != other["id"]


def test_refund_replay(raw) -> None:
    pid = raw.post("/v2/payments", json=payment_body("p")).json()["payment"]["id"]
    body = {"idempotency_key": "r", "payment_id": pid, "amount_money": usd(1000)}
    first = raw.post("/v2/refunds", json=body)
    # A second refund of the full amount would exceed the total; the replay does not refund again.
    again = raw.post("/v2/refunds", json=body)
    assert again.status_code == 200 and again.content == first.content
    assert raw.get(f"/v2/payments/{pid}").json()["payment"]["refunded_money"]["amount"] == 1000
    r = raw.post("/v2/refunds", json={**body, "reason": "different"})
    assert (r.status_code, r.json()) == (400, REUSED)


def test_pay_order_replay(raw) -> None:
    order = raw.post("/v2/orders", json=order_body(None)).json()["order"]
    pid = raw.post("/v2/payments", json=payment_body("p", 500, order_id=order["id"],
                                                     autocomplete=False)).json()["payment"]["id"]
    body = {"idempotency_key": "pay-1", "payment_ids": [pid]}
    first = raw.post(f"/v2/orders/{order['id']}/pay", json=body)
    assert first.status_code == 200
    again = raw.post(f"/v2/orders/{order['id']}/pay", json=body)
    assert again.status_code == 200 and again.content == first.content
    # A fresh key runs PayOrder again, and the order is no longer payable.
    r = raw.post(f"/v2/orders/{order['id']}/pay", json={**body, "idempotency_key": "pay-2"})
    assert r.status_code == 400


def test_update_order_replay_returns_latest_and_applies_nothing(sdk) -> None:
    order = sdk.orders.create(order=order_body(None)["order"], request_options=RO).order
    first = sdk.orders.update(order.id, order={"version": 1, "reference_id": "one"},
                              idempotency_key="upd", request_options=RO).order
    assert (first.version, first.reference_id) == (2, "one")
    sdk.orders.update(order.id, order={"version": 2, "note": None, "ticket_name": "T"},
                      idempotency_key="other", request_options=RO)
    # Same key, a different change: 200 with the latest order, nothing applied.
    replay = sdk.orders.update(order.id, order={"version": 3, "reference_id": "two"},
                               idempotency_key="upd", request_options=RO).order
    latest = sdk.orders.get(order.id, request_options=RO).order
    assert replay == latest
    assert (latest.version, latest.reference_id, latest.ticket_name) == (3, "one", "T")


def test_update_order_key_is_per_order(sdk) -> None:
    a = sdk.orders.create(order=order_body(None)["order"], request_options=RO).order
    b = sdk.orders.create(order=order_body(None)["order"], request_options=RO).order
    sdk.orders.update(a.id, order={"version": 1, "reference_id": "a"}, idempotency_key="k",
                      request_options=RO)
    got = sdk.orders.update(b.id, order={"version": 1, "reference_id": "b"}, idempotency_key="k",
                            request_options=RO).order
    assert (got.version, got.reference_id) == (2, "b")


def test_update_payment_replay(sdk) -> None:
    p = sdk.payments.create(**{**payment_body("p-up"), "autocomplete": False},
                            request_options=RO).payment
    kw = dict(idempotency_key="u1", payment={"amount_money": usd(900)}, request_options=RO)
    first = sdk.payments.update(p.id, **kw).payment
    assert sdk.payments.update(p.id, **kw).payment == first
    with pytest.raises(ApiError) as info:
        sdk.payments.update(p.id, idempotency_key="u1", payment={"amount_money": usd(800)},
                            request_options=RO)
    assert info.value.body == REUSED


def test_rejected_requests_are_not_remembered(raw) -> None:
    order = raw.post("/v2/orders", json=order_body(None)).json()["order"]
    bad = raw.post("/v2/payments", json=payment_body("fix-me", 499, order_id=order["id"]))
    assert bad.status_code == 400
    # Nothing was created, so the corrected request may use the same key.
    good = raw.post("/v2/payments", json=payment_body("fix-me", 500, order_id=order["id"]))
    assert good.status_code == 200


@pytest.mark.parametrize("method,path,extra,limit", [
    ("POST", "/v2/payments", {"source_id": "cnon:card-nonce-ok", "amount_money": usd(5)}, 45),
    ("POST", "/v2/refunds", {"payment_id": "{done}", "amount_money": usd(1)}, 45),
    ("PUT", "/v2/payments/{approved}", {"payment": {"amount_money": usd(90)}}, 45),
    ("POST", "/v2/payments/cancel", {}, 45),
    ("POST", "/v2/orders", {"order": {"location_id": "main"}}, 192),
    ("PUT", "/v2/orders/{order}", {"order": {"version": 2}}, 192),  # the payment made version 2
    ("POST", "/v2/orders/{order}/pay", {"payment_ids": ["{approved}"]}, 192),
])
def test_key_length_limits(raw, method: str, path: str, extra: dict, limit: int) -> None:
    order = raw.post("/v2/orders", json=order_body(None, price=100)).json()["order"]
    approved = raw.post("/v2/payments", json=payment_body("ap", 100, order_id=order["id"],
                                                          autocomplete=False)).json()["payment"]
    done = raw.post("/v2/payments", json=payment_body("dn", 100)).json()["payment"]
    ids = {"{order}": order["id"], "{approved}": approved["id"], "{done}": done["id"]}

    def fill(text: str) -> str:
        for k, v in ids.items():
            text = text.replace(k, v)
        return text

    body = json.loads(fill(json.dumps(extra)))
    too_long = raw.request(method, fill(path), json={**body, "idempotency_key": "x" * (limit + 1)})
    assert too_long.status_code == 400
    assert too_long.json()["errors"] == [{
        "code": "VALUE_TOO_LONG", "detail": f"Field must not be greater than {limit} length",
        "field": "idempotency_key", "category": "INVALID_REQUEST_ERROR"}]
    ok = raw.request(method, fill(path), json={**body, "idempotency_key": "x" * limit})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("path,body", [
    ("/v2/payments", {"source_id": "cnon:card-nonce-ok", "amount_money": usd(5)}),
    ("/v2/refunds", {"payment_id": "x", "amount_money": usd(1)}),
    ("/v2/payments/cancel", {}),
])
@pytest.mark.parametrize("key", [None, ""])
def test_payments_and_refunds_need_a_key(raw, path: str, body: dict, key: str | None) -> None:
    if key is not None:
        body = {**body, "idempotency_key": key}
    r = raw.post(path, json=body)
    assert r.status_code == 400
    assert r.json()["errors"][0] == {"code": "VALUE_EMPTY", "detail": "Field must not be blank",
                                     "field": "idempotency_key",
                                     "category": "INVALID_REQUEST_ERROR"}

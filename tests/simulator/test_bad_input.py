"""Bad input gets Square's error body (never a 500, never FastAPI's 422), with ``field`` spelled
as Square spells it, and a rejected request changes nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from square.core.api_error import ApiError

RO = {"max_retries": 0}
IRE = "INVALID_REQUEST_ERROR"


def usd(amount: Any) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


@pytest.fixture
def ids(raw) -> dict[str, str]:
    """An OPEN order with a pickup, an APPROVED payment for it, and a COMPLETED card payment."""
    order = raw.post("/v2/orders", json={"idempotency_key": "fixture-order", "order": {
        "location_id": "main",
        "line_items": [{"name": "Tea", "quantity": "1", "base_price_money": usd(400)}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "A"}}}],
    }}).json()["order"]
    approved = raw.post("/v2/payments", json={
        "idempotency_key": "fixture-approved", "source_id": "cnon:card-nonce-ok",
        "amount_money": usd(400), "order_id": order["id"], "autocomplete": False}).json()["payment"]
    done = raw.post("/v2/payments", json={
        "idempotency_key": "fixture-done", "source_id": "cnon:card-nonce-ok",
        "amount_money": usd(900)}).json()["payment"]
    return {"order": order["id"], "approved": approved["id"], "done": done["id"]}


def check_error_shape(r) -> list[dict[str, Any]]:
    assert r.status_code in (400, 404), (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["errors"], body  # never FastAPI's {"detail": ...}
    for err in body["errors"]:
        assert set(err) <= {"code", "detail", "field", "category"}
        assert {"code", "category"} <= set(err)
        assert err.get("field", "x") is not None
    return body["errors"]


# Every POST/PUT endpoint that reads a JSON body.
BODY_ENDPOINTS = [
    ("POST", "/v2/orders"),
    ("PUT", "/v2/orders/{order}"),
    ("POST", "/v2/orders/{order}/pay"),
    ("POST", "/v2/orders/batch-retrieve"),
    ("POST", "/v2/orders/search"),
    ("POST", "/v2/orders/clone"),
    ("POST", "/v2/orders/calculate"),
    ("POST", "/v2/payments"),
    ("PUT", "/v2/payments/{approved}"),
    ("POST", "/v2/payments/{approved}/complete"),
    ("POST", "/v2/payments/{approved}/cancel"),
    ("POST", "/v2/payments/cancel"),
    ("POST", "/v2/refunds"),
    ("POST", "/_sim/clock/advance"),
    ("POST", "/_sim/state"),
]


@pytest.mark.parametrize("method,path", BODY_ENDPOINTS)
@pytest.mark.parametrize("content", [b"{", b'{"a": }', b"\xff\xfe{}", b'{"n": NaN}', b"[1"])
def test_malformed_json(raw, ids, sim_state, method: str, path: str, content: bytes) -> None:
    before = sim_state()
    r = raw.request(method, path.format(**ids), content=content,
                    headers={"Content-Type": "application/json"})
    (err,) = check_error_shape(r)
    assert r.status_code == 400
    assert (err["code"], err["category"]) == ("BAD_REQUEST", IRE)
    assert err["detail"].startswith("Malformed JSON")
    assert "field" not in err
    assert sim_state() == before


# CancelPayment takes no body: anything sent must parse as JSON but is otherwise ignored.
@pytest.mark.parametrize("method,path", [e for e in BODY_ENDPOINTS if not e[1].startswith("/_sim")
                                         and not e[1].endswith("/cancel")])
@pytest.mark.parametrize("body", [[], "text", 5, None, True])
def test_body_that_is_not_an_object(raw, ids, sim_state, method: str, path: str, body: Any) -> None:
    before = sim_state()
    r = raw.request(method, path.format(**ids), content=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"})
    (err,) = check_error_shape(r)
    assert r.status_code == 400
    assert err["code"] == "EXPECTED_JSON_BODY"
    assert sim_state() == before


# (method, path, body, code, field); the status is 400 unless the code is NOT_FOUND.
CASES = [
    # ---- missing required fields
    ("POST", "/v2/orders", {"idempotency_key": "k"}, "MISSING_REQUIRED_PARAMETER", "order"),
    # Required strings with a minimum length answer VALUE_EMPTY, as Square does for source_id.
    ("POST", "/v2/orders", {"order": {"line_items": []}}, "MISSING_REQUIRED_PARAMETER", "order.location_id"),
    ("POST", "/v2/orders", {"order": {"location_id": "main", "line_items": [{"name": "x"}]}},
     "VALUE_EMPTY", "order.line_items[0].quantity"),
    ("POST", "/v2/orders", {"order": {"location_id": "main", "fulfillments": [{"type": "PICKUP"}]}},
     "MISSING_REQUIRED_PARAMETER", "order.fulfillments[0].pickup_details"),
    ("POST", "/v2/orders/batch-retrieve", {}, "MISSING_REQUIRED_PARAMETER", "order_ids"),
    ("POST", "/v2/orders/clone", {}, "MISSING_REQUIRED_PARAMETER", "order_id"),
    ("POST", "/v2/orders/calculate", {}, "MISSING_REQUIRED_PARAMETER", "order"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok"},
     "MISSING_REQUIRED_PARAMETER", "amount_money"),
    ("POST", "/v2/refunds", {"idempotency_key": "k", "payment_id": "{done}"},
     "MISSING_REQUIRED_PARAMETER", "amount_money"),
    ("POST", "/v2/payments", {"source_id": "cnon:card-nonce-ok", "amount_money": usd(1)},
     "VALUE_EMPTY", "idempotency_key"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "", "amount_money": usd(1)},
     "VALUE_EMPTY", "source_id"),
    ("POST", "/v2/orders/{order}/pay", {"payment_ids": ["{approved}"]}, "VALUE_EMPTY",
     "idempotency_key"),
    ("PUT", "/v2/orders/{order}", {"order": {"reference_id": "x"}}, "BAD_REQUEST", "order.version"),
    ("POST", "/_sim/clock/advance", {}, "MISSING_REQUIRED_PARAMETER", "seconds"),
    # ---- wrong types
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd("10")}, "EXPECTED_INTEGER", "amount_money.amount"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd(10.5)}, "EXPECTED_INTEGER", "amount_money.amount"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": 5, "amount_money": usd(1)},
     "EXPECTED_STRING", "source_id"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd(1), "autocomplete": "false"},
     "EXPECTED_BOOLEAN", "autocomplete"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": "1000"}, "EXPECTED_OBJECT", "amount_money"),
    ("POST", "/v2/orders/batch-retrieve", {"order_ids": "{order}"}, "EXPECTED_ARRAY", "order_ids"),
    ("POST", "/v2/orders", {"order": {"location_id": "main", "line_items": [
        {"name": "x", "quantity": 2}]}}, "EXPECTED_STRING", "order.line_items[0].quantity"),
    ("POST", "/v2/orders", {"order": {"location_id": "main", "line_items": [
        {"name": "x", "quantity": "1", "base_price_money": {"amount": True}}]}},
     "EXPECTED_INTEGER", "order.line_items[0].base_price_money.amount"),
    ("PUT", "/v2/orders/{order}", {"order": {"version": "1"}}, "EXPECTED_INTEGER", "order.version"),
    ("POST", "/v2/orders/search", {"return_entries": 1}, "EXPECTED_BOOLEAN", "return_entries"),
    ("POST", "/v2/orders/search", {"query": {"filter": {"state_filter": {"states": "OPEN"}}}},
     "EXPECTED_ARRAY", "query.filter.state_filter.states"),
    ("POST", "/_sim/clock/advance", {"seconds": "60"}, "EXPECTED_INTEGER", "seconds"),
    # ---- bad enum values
    ("POST", "/v2/orders", {"order": {"location_id": "main", "state": "PAID"}},
     "INVALID_ENUM_VALUE", "order.state"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": {"amount": 1, "currency": "DOLLARS"}},
     "INVALID_ENUM_VALUE", "amount_money.currency"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd(1), "autocomplete": False, "delay_action": "LATER"},
     "INVALID_VALUE", "delay_action"),  # a plain string in the spec, checked by the engine
    ("PUT", "/v2/payments/{approved}", {"idempotency_key": "k", "payment": {"delay_action": "NOW"}},
     "INVALID_VALUE", "payment.delay_action"),
    ("POST", "/v2/orders/search", {"query": {"sort": {"sort_field": "CREATED_AT",
                                                      "sort_order": "UP"}}},
     "INVALID_ENUM_VALUE", "query.sort.sort_order"),
    ("POST", "/v2/orders/search", {"query": {"filter": {"state_filter": {"states": ["PAID"]}}}},
     "INVALID_ENUM_VALUE", "query.filter.state_filter.states[0]"),
    ("PUT", "/v2/orders/{order}", {"order": {"version": 1, "fulfillments": [
        {"type": "TELEPORT"}]}}, "INVALID_ENUM_VALUE", "order.fulfillments[0].type"),
    # ---- over-long values
    ("POST", "/v2/payments", {"idempotency_key": "k" * 46, "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd(1)}, "VALUE_TOO_LONG", "idempotency_key"),
    ("POST", "/v2/refunds", {"idempotency_key": "k" * 46, "payment_id": "{done}",
                             "amount_money": usd(1)}, "VALUE_TOO_LONG", "idempotency_key"),
    ("POST", "/v2/payments/cancel", {"idempotency_key": "k" * 46}, "VALUE_TOO_LONG",
     "idempotency_key"),
    ("POST", "/v2/orders", {"idempotency_key": "k" * 193, "order": {"location_id": "main"}},
     "VALUE_TOO_LONG", "idempotency_key"),
    ("PUT", "/v2/orders/{order}", {"idempotency_key": "k" * 193, "order": {"version": 1}},
     "VALUE_TOO_LONG", "idempotency_key"),
    ("POST", "/v2/orders/{order}/pay", {"idempotency_key": "k" * 193}, "VALUE_TOO_LONG",
     "idempotency_key"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd(1), "note": "n" * 501},
     "VALUE_TOO_LONG", "note"),
    ("POST", "/v2/orders/batch-retrieve", {"order_ids": ["x"] * 101}, "VALUE_TOO_LONG", "order_ids"),
    ("POST", "/v2/orders/search", {"location_ids": ["main"] * 11}, "VALUE_TOO_LONG", "location_ids"),
    # ---- bad cursors
    ("POST", "/v2/orders/search", {"cursor": "garbage"}, "INVALID_CURSOR", "cursor"),
    # ---- unknown ids
    ("PUT", "/v2/orders/nope", {"order": {"version": 1}}, "NOT_FOUND", "order_id"),
    ("POST", "/v2/orders/nope/pay", {"idempotency_key": "k"}, "NOT_FOUND", "order_id"),
    ("POST", "/v2/orders/clone", {"order_id": "nope"}, "NOT_FOUND", "order_id"),
    ("POST", "/v2/orders/{order}/pay", {"idempotency_key": "k", "payment_ids": ["nope"]},
     "NOT_FOUND", "payment_ids[0]"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd(1), "order_id": "nope"}, "NOT_FOUND", "order_id"),
    ("POST", "/v2/payments", {"idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
                              "amount_money": usd(1), "location_id": "nope"},
     "NOT_FOUND", "location_id"),
    ("POST", "/v2/orders", {"order": {"location_id": "nope"}}, "NOT_FOUND", "order.location_id"),
    ("POST", "/v2/refunds", {"idempotency_key": "k", "payment_id": "nope", "amount_money": usd(1)},
     "NOT_FOUND", "payment_id"),
    ("PUT", "/v2/payments/nope", {"idempotency_key": "k", "payment": {}}, "NOT_FOUND", None),
    ("POST", "/v2/payments/nope/complete", {}, "NOT_FOUND", None),
    ("POST", "/v2/orders/search", {"location_ids": ["nope"]}, "NOT_FOUND", "location_ids"),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    return json.loads(json.dumps(value).replace("{order}", ids["order"])
                      .replace("{approved}", ids["approved"]).replace("{done}", ids["done"]))


@pytest.mark.parametrize("method,path,body,code,field", CASES,
                         ids=[f"{c[3]}:{c[4]}:{i}" for i, c in enumerate(CASES)])
def test_bad_input_gets_square_error(raw, ids, sim_state, method: str, path: str, body: Any,
                                     code: str, field: str | None) -> None:
    before = sim_state()
    r = raw.request(method, _fill(path, ids), json=_fill(body, ids))
    errors = check_error_shape(r)
    assert r.status_code == (404 if code == "NOT_FOUND" else 400)
    assert (errors[0]["code"], errors[0].get("field")) == (code, field), errors
    assert errors[0]["category"] == IRE
    assert sim_state() == before


@pytest.mark.parametrize("path,params,code,field", [
    ("/v2/payments", {"limit": "ten"}, "EXPECTED_INTEGER", "limit"),
    ("/v2/payments", {"limit": "0"}, "INVALID_VALUE", "limit"),
    ("/v2/payments", {"total": "1.5"}, "EXPECTED_INTEGER", "total"),
    ("/v2/payments", {"sort_order": "NEWEST"}, "INVALID_ENUM_VALUE", "sort_order"),
    ("/v2/payments", {"begin_time": "last tuesday"}, "INVALID_VALUE", "begin_time"),
    ("/v2/payments", {"cursor": "garbage"}, "INVALID_CURSOR", "cursor"),
    ("/v2/payments", {"is_offline_payment": "perhaps"}, "EXPECTED_BOOLEAN", "is_offline_payment"),
    ("/v2/payments", {"sort_field": "AMOUNT"}, "INVALID_ENUM_VALUE", "sort_field"),
    ("/v2/refunds", {"end_time": "2026-13-45"}, "INVALID_VALUE", "end_time"),
    ("/v2/refunds", {"cursor": "eyJhIjoxfQ"}, "INVALID_CURSOR", "cursor"),
])
def test_bad_query_parameters(raw, sim_state, path: str, params: dict, code: str, field: str) -> None:
    before = sim_state()
    r = raw.get(path, params=params)
    (err,) = check_error_shape(r)
    assert r.status_code == 400
    assert (err["code"], err["field"], err["category"]) == (code, field, IRE)
    assert sim_state() == before


def test_several_problems_are_reported_together(raw) -> None:
    r = raw.post("/v2/payments", json={})
    errors = check_error_shape(r)
    assert [(e["code"], e["field"]) for e in errors] == [
        ("VALUE_EMPTY", "source_id"), ("VALUE_EMPTY", "idempotency_key")]
    assert errors[0]["detail"] == "Field must not be blank"


def test_cursor_from_another_query_is_rejected(raw) -> None:
    for i in range(3):
        raw.post("/v2/payments", json={"idempotency_key": f"c{i}", "source_id": "cnon:card-nonce-ok",
                                       "amount_money": usd(100 + i)})
    page = raw.get("/v2/payments", params={"limit": 2}).json()
    assert page["cursor"]
    r = raw.get("/v2/payments", params={"limit": 2, "cursor": page["cursor"], "sort_order": "ASC"})
    assert r.json()["errors"][0]["code"] == "INVALID_CURSOR"
    r = raw.get("/v2/refunds", params={"cursor": page["cursor"]})
    assert r.json()["errors"][0]["code"] == "INVALID_CURSOR"


def test_bad_input_through_the_sdk(sdk, sim_state) -> None:
    """The SDK sends whatever it is given; the simulator answers as Square does."""
    before = sim_state()
    with pytest.raises(ApiError) as info:
        sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="k",
                            amount_money={"amount": "ten", "currency": "USD"}, request_options=RO)
    assert info.value.status_code == 400
    assert (info.value.errors[0].code, info.value.errors[0].field) == (
        "EXPECTED_INTEGER", "amount_money.amount")
    with pytest.raises(ApiError) as info:
        sdk.orders.search(query={"sort": {"sort_field": "TOTAL"}}, request_options=RO)
    assert (info.value.errors[0].code, info.value.errors[0].field) == (
        "INVALID_ENUM_VALUE", "query.sort.sort_field")
    with pytest.raises(ApiError) as info:
        sdk.payments.list(cursor="garbage", request_options=RO)
    assert info.value.errors[0].code == "INVALID_CURSOR"
    with pytest.raises(ApiError) as info:
        sdk.orders.update("nope", order={"version": 1}, request_options=RO)
    assert info.value.status_code == 404
    assert sim_state() == before


# -------------------------------------------------------------------------- explicit nulls

def test_explicit_nulls_on_optional_fields_are_accepted(sdk, raw) -> None:
    order = sdk.orders.create(order={"location_id": "main", "reference_id": None, "customer_id": None,
                                     "line_items": [{"name": "A", "quantity": "1", "note": None,
                                                     "base_price_money": usd(100)}]},
                              idempotency_key=None, request_options=RO).order
    assert order.reference_id is None and order.line_items[0].note is None
    p = sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="null-pay",
                            amount_money=usd(100), order_id=order.id, tip_money=None, note=None,
                            autocomplete=None, location_id=None, reference_id=None,
                            delay_action=None, delay_duration=None, request_options=RO).payment
    assert p.status == "COMPLETED" and p.tip_money is None
    found = sdk.orders.search(cursor=None, limit=None, query=None, location_ids=["main"],
                              return_entries=None, request_options=RO)
    assert order.id in [o.id for o in found.orders]
    r = sdk.refunds.refund_payment(idempotency_key="null-ref", payment_id=p.id, amount_money=usd(50),
                                   reason=None, payment_version_token=None, request_options=RO)
    assert r.refund.status == "PENDING"
    free = raw.post("/v2/orders", json={"order": {"location_id": "main", "reference_id": None}})
    free_id = free.json()["order"]["id"]
    done = raw.post(f"/v2/orders/{free_id}/pay", json={"idempotency_key": "x", "order_version": None,
                                                       "payment_ids": None})
    assert done.status_code == 200, done.text
    assert done.json()["order"]["state"] == "COMPLETED"
    cal = raw.post("/v2/orders/calculate", json={"order": {"location_id": "main", "taxes": None},
                                                  "proposed_rewards": None})
    assert cal.status_code == 200


# ---------------------------------------------------------------------- mutated requests

VALID = [
    ("POST", "/v2/orders", {"idempotency_key": "h-o", "order": {
        "location_id": "main", "reference_id": "r", "customer_id": "c", "state": "OPEN",
        "line_items": [{"name": "A", "quantity": "2", "base_price_money": usd(100)}],
        "taxes": [{"uid": "t", "name": "T", "percentage": "5", "scope": "ORDER"}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "x"}}}]}}),
    ("PUT", "/v2/orders/{order}", {"idempotency_key": "h-u", "order": {
        "version": 1, "reference_id": "r2", "line_items": [{"uid": "n", "name": "B", "quantity": "1",
                                                           "base_price_money": usd(5)}]},
        "fields_to_clear": ["reference_id"]}),
    ("POST", "/v2/orders/{order}/pay", {"idempotency_key": "h-p", "order_version": 1,
                                        "payment_ids": ["{approved}"]}),
    ("POST", "/v2/orders/search", {"location_ids": ["main"], "limit": 5, "return_entries": False,
                                   "query": {"filter": {"state_filter": {"states": ["OPEN"]},
                                                        "customer_filter": {"customer_ids": ["c"]},
                                                        "date_time_filter": {"created_at": {
                                                            "start_at": "2026-01-01T00:00:00Z"}}},
                                             "sort": {"sort_field": "CREATED_AT",
                                                      "sort_order": "ASC"}}}),
    ("POST", "/v2/orders/clone", {"order_id": "{order}", "version": 1, "idempotency_key": "h-c"}),
    ("POST", "/v2/payments", {"idempotency_key": "h-pay", "source_id": "CASH",
                              "amount_money": usd(100), "tip_money": usd(5),
                              "cash_details": {"buyer_supplied_money": usd(200)}, "note": "n"}),
    ("PUT", "/v2/payments/{approved}", {"idempotency_key": "h-up", "payment": {
        "amount_money": usd(300), "tip_money": usd(10)}}),
    ("POST", "/v2/refunds", {"idempotency_key": "h-r", "payment_id": "{done}",
                             "amount_money": usd(100), "reason": "r"}),
    ("POST", "/_sim/clock/advance", {"seconds": 5}),
]
_JUNK = st.sampled_from([None, 0, -1, 1.5, "", "x", "OPEN", True, [], {}, [None], {"a": 1},
                         "k" * 300, 10 ** 20, "2026-01-01T00:00:00Z"])


def _mutate(value: Any, data: st.DataObject) -> Any:
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        k = data.draw(st.sampled_from(sorted(value)))
        out = dict(value)
        if data.draw(st.integers(0, 5)) == 0:
            del out[k]
        else:
            out[k] = _mutate(out[k], data)
        return out
    if isinstance(value, list) and value and data.draw(st.booleans()):
        out = list(value)
        i = data.draw(st.integers(0, len(out) - 1))
        out[i] = _mutate(out[i], data)
        return out
    return data.draw(_JUNK)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_requests_never_crash(raw, ids, sim_state, data: st.DataObject) -> None:
    method, path, body = data.draw(st.sampled_from(VALID))
    body = _fill(copy.deepcopy(body), ids)
    for _ in range(data.draw(st.integers(1, 3))):
        body = _mutate(body, data)
    before = sim_state()
    r = raw.request(method, _fill(path, ids), content=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code not in (422, 500), r.text
    assert r.headers["content-type"].startswith("application/json")
    if r.status_code >= 400:
        check_error_shape(r)
        assert sim_state() == before, (method, path, body, r.text)
    else:
        assert r.status_code == 200 and "errors" not in r.json()

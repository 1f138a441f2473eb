"""Order pricing over HTTP: Square's CreateOrder example through the official SDK, CalculateOrder
equal to CreateOrder, and bad percentages, quantities and overflowing totals rejected with
Square's error shape and the exact field."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import RO

_spec = importlib.util.spec_from_file_location(
    "pricing_examples", Path(__file__).resolve().parents[1] / "pricing" / "_examples.py")
examples = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = examples
_spec.loader.exec_module(examples)


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def example_body() -> dict[str, Any]:
    body = examples.resolve(examples.EXAMPLES["CreateOrderRequest"]["order"])
    body["location_id"] = "main"
    return body


def test_create_order_example_through_the_sdk(sdk) -> None:
    order = sdk.orders.create(order=example_body(), idempotency_key="ex-1", request_options=RO).order
    assert order.total_money.amount == 6176
    assert order.total_tax_money.amount == 510 and order.total_discount_money.amount == 433
    assert order.net_amounts.total_money.amount == 6176
    first, second = order.line_items
    assert [(a.discount_uid, a.applied_money.amount) for a in first.applied_discounts] == [
        ("membership-discount", 8), ("labor-day-sale", 79)]
    assert [(a.discount_uid, a.applied_money.amount) for a in second.applied_discounts] == [
        ("membership-discount", 22), ("labor-day-sale", 224), ("one-dollar-off", 100)]
    assert second.modifiers[0].total_price_money.amount == 100
    assert second.variation_total_price_money.amount == 4400
    assert second.gross_sales_money.amount == 4500
    assert [d.type for d in order.discounts] == ["FIXED_PERCENTAGE", "FIXED_PERCENTAGE",
                                                 "FIXED_AMOUNT"]
    assert order.taxes[0].type == "ADDITIVE"
    # The uids the server generated are kept: RetrieveOrder shows the same ones.
    again = sdk.orders.get(order.id, request_options=RO).order
    assert [a.uid for a in again.line_items[0].applied_taxes] == [
        a.uid for a in first.applied_taxes]


def test_the_spec_request_verbatim_against_the_example_catalog(raw) -> None:
    seeded = raw.post("/_sim/catalog", json=examples.EXAMPLES["catalog"])
    assert seeded.status_code == 200, seeded.text
    request = copy.deepcopy(examples.EXAMPLES["CreateOrderRequest"])
    request["order"]["location_id"] = "main"
    made = raw.post("/v2/orders", json=request)
    assert made.status_code == 200, made.text
    examples.assert_same_money(made.json()["order"], examples.EXAMPLES["CreateOrderResponse"]["order"])
    calc = raw.post("/v2/orders/calculate", json={"order": request["order"]})
    assert calc.json()["order"]["total_money"]["amount"] == 6176


def test_calculate_order_gives_what_create_order_gives(raw) -> None:
    body = example_body()
    calc = raw.post("/v2/orders/calculate", json={"order": body})
    made = raw.post("/v2/orders", json={"order": body, "idempotency_key": "ex-2"})
    assert calc.status_code == made.status_code == 200, (calc.text, made.text)
    c, m = calc.json()["order"], made.json()["order"]
    gen = {a["uid"] for o in (c, m) for li in o["line_items"]
           for key in ("applied_discounts", "applied_taxes") for a in li.get(key, [])}
    assert examples.money_view(c, generated=gen) == examples.money_view(m, generated=gen)
    assert len({li["uid"] for li in c["line_items"]}) == 2


BAD_PERCENTAGES = ["NaN", "Infinity", "1e2", "-5", "abc", "5%", "", " 5", "1.2.3", "100.01"]


@pytest.mark.parametrize("pct", BAD_PERCENTAGES)
@pytest.mark.parametrize("path", ["/v2/orders", "/v2/orders/calculate"])
def test_bad_discount_percentage_is_rejected(raw, sim_state, path: str, pct: str) -> None:
    before = sim_state()
    body = {"order": {"location_id": "main",
                      "line_items": [{"name": "A", "quantity": "1", "base_price_money": usd(100)}],
                      "discounts": [{"uid": "ok", "name": "ok", "percentage": "5", "scope": "ORDER"},
                                    {"uid": "d", "name": "D", "percentage": pct, "scope": "ORDER"}]},
            "idempotency_key": f"bad-{pct}"}
    r = raw.post(path, json=body)
    assert r.status_code == 400, r.text
    err = r.json()["errors"]
    assert err[0]["category"] == "INVALID_REQUEST_ERROR"
    assert err[0]["field"] == "order.discounts[1].percentage"
    assert err[0]["code"] in ("INVALID_VALUE", "VALUE_EMPTY")
    assert sim_state() == before


@pytest.mark.parametrize("qty", ["NaN", "1e3", "-1", "1.123456", "abc"])
def test_bad_quantity_is_rejected_with_its_field(raw, sim_state, qty: str) -> None:
    before = sim_state()
    r = raw.post("/v2/orders", json={"order": {"location_id": "main", "line_items": [
        {"name": "A", "quantity": "1", "base_price_money": usd(100)},
        {"name": "B", "quantity": qty, "base_price_money": usd(100)}]}})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "order.line_items[1].quantity"
    assert sim_state() == before


def test_update_order_reports_the_request_index(raw) -> None:
    made = raw.post("/v2/orders", json={"order": {"location_id": "main", "line_items": [
        {"uid": "a", "name": "A", "quantity": "1", "base_price_money": usd(100)}],
        "taxes": [{"uid": "t", "name": "T", "percentage": "5", "scope": "ORDER"}]}}).json()["order"]
    r = raw.put(f"/v2/orders/{made['id']}", json={"order": {"version": 1, "taxes": [
        {"uid": "t2", "name": "T2", "percentage": "1e1", "scope": "ORDER"}]}})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "order.taxes[0].percentage"
    again = raw.get(f"/v2/orders/{made['id']}").json()["order"]
    assert again["version"] == 1 and len(again["taxes"]) == 1


def test_totals_beyond_int64_are_rejected_not_wrapped(raw, sim_state) -> None:
    before = sim_state()
    big = 2**62
    body = {"order": {"location_id": "main", "line_items": [
        {"name": "A", "quantity": "1", "base_price_money": usd(big)},
        {"name": "B", "quantity": "1", "base_price_money": usd(big)}]}}
    for path in ("/v2/orders", "/v2/orders/calculate"):
        r = raw.post(path, json=copy.deepcopy(body))
        assert r.status_code == 400, r.text
        err = r.json()["errors"][0]
        assert (err["code"], err["field"]) == ("INVALID_VALUE", "order.total_money")
        assert str(big * 2) not in r.text  # nothing wrapped or echoed
    assert sim_state() == before
    # One cent less fits exactly.
    body["order"]["line_items"][1]["base_price_money"] = usd(big - 1)
    ok = raw.post("/v2/orders", json=body)
    assert ok.status_code == 200
    assert ok.json()["order"]["total_money"]["amount"] == 2**63 - 1
    # A tax that would push it over is rejected at UpdateOrder, and the order is unchanged.
    order = ok.json()["order"]
    r = raw.put(f"/v2/orders/{order['id']}", json={"order": {"version": order["version"], "taxes": [
        {"uid": "t", "name": "T", "percentage": "1", "scope": "ORDER"}]}})
    assert r.status_code == 400 and r.json()["errors"][0]["field"].startswith("order.")
    assert raw.get(f"/v2/orders/{order['id']}").json()["order"]["version"] == order["version"]

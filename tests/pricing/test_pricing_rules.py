"""Pricing cases one at a time: taxes, service-charge phases, modifiers, references kept and
dropped, and the pure function's contract."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from orderfsm.engine import Engine
from orderfsm.errors import SquareError
from orderfsm.pricing import price_order, round_half_even


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def line(amount: int, qty: str = "1", uid: str | None = None, **extra: Any) -> dict[str, Any]:
    out = {"name": "Item", "quantity": qty, "base_price_money": usd(amount), **extra}
    if uid:
        out["uid"] = uid
    return out


def amounts(entries: list[dict[str, Any]], ref: str) -> dict[str, int]:
    return {a[ref]: a["applied_money"]["amount"] for a in entries}


@pytest.mark.parametrize("num,den,want", [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (25, 10, 2),
                                          (35, 10, 4), (251, 100, 3), (0, 7, 0)])
def test_round_half_even(num: int, den: int, want: int) -> None:
    assert round_half_even(num, den) == want


def test_fractional_quantities_round_half_even() -> None:
    o = price_order({"line_items": [line(5, "0.5"), line(7, "0.5"), line(333, "1.5")]}, "USD")
    assert [li["total_money"]["amount"] for li in o["line_items"]] == [2, 4, 500]


def test_modifiers_are_priced_per_unit_of_the_line() -> None:
    o = price_order({"line_items": [line(1000, "3", modifiers=[
        {"name": "Cheese", "base_price_money": usd(75)},
        {"name": "Bacon", "base_price_money": usd(100), "quantity": "2"},
        {"name": "No onion", "base_price_money": usd(0), "quantity": "0"}])]}, "USD")
    li = o["line_items"][0]
    assert [m["total_price_money"]["amount"] for m in li["modifiers"]] == [225, 600, 0]
    assert li["variation_total_price_money"] == usd(3000)
    assert li["gross_sales_money"] == usd(3825) and o["total_money"] == usd(3825)


def test_several_inclusive_taxes_share_the_combined_rate() -> None:
    o = price_order({"line_items": [line(1150)], "taxes": [
        {"uid": "a", "name": "A", "percentage": "10", "type": "INCLUSIVE", "scope": "ORDER"},
        {"uid": "b", "name": "B", "percentage": "5", "type": "INCLUSIVE", "scope": "ORDER"}]},
        "USD")
    li = o["line_items"][0]
    # 1150 holds 1000 of price at 15 %: 100 and 50, not 1150 - 1150/1.10 = 105 and 55.
    assert amounts(li["applied_taxes"], "tax_uid") == {"a": 100, "b": 50}
    assert li["total_tax_money"] == usd(150) and li["total_money"] == usd(1150)
    assert li["gross_sales_money"] == usd(1000)
    assert o["total_money"] == usd(1150) and o["total_tax_money"] == usd(150)


def test_inclusive_tax_stays_in_gross_sales_outside_north_america_and_japan() -> None:
    o = price_order({"line_items": [line(1100)], "taxes": [
        {"uid": "v", "name": "VAT", "percentage": "10", "type": "INCLUSIVE", "scope": "ORDER"}]},
        "EUR")
    assert o["line_items"][0]["gross_sales_money"] == {"amount": 1100, "currency": "EUR"}
    assert o["total_tax_money"]["amount"] == 100


def test_additive_tax_applies_to_the_price_net_of_inclusive_tax() -> None:
    o = price_order({"line_items": [line(1100)], "taxes": [
        {"uid": "v", "name": "VAT", "percentage": "10", "type": "INCLUSIVE", "scope": "ORDER"},
        {"uid": "s", "name": "Sales", "percentage": "5", "scope": "ORDER"}]}, "USD")
    assert amounts(o["line_items"][0]["applied_taxes"], "tax_uid") == {"v": 100, "s": 50}
    assert o["total_money"] == usd(1150)


def test_line_item_tax_applies_only_where_referenced() -> None:
    o = price_order({"line_items": [line(1000, applied_taxes=[{"tax_uid": "t"}]), line(1000)],
                     "taxes": [{"uid": "t", "name": "T", "percentage": "8.5",
                                "scope": "LINE_ITEM"}]}, "USD")
    a, b = o["line_items"]
    assert a["total_tax_money"] == usd(85) and "applied_taxes" not in b
    assert o["taxes"][0]["applied_money"] == usd(85)


def test_line_item_fixed_discount_on_two_lines_is_shared() -> None:
    o = price_order({"line_items": [line(300, applied_discounts=[{"discount_uid": "d"}]),
                                    line(100, applied_discounts=[{"discount_uid": "d"}])],
                     "discounts": [{"uid": "d", "name": "D", "amount_money": usd(100),
                                    "scope": "LINE_ITEM"}]}, "USD")
    assert [amounts(li["applied_discounts"], "discount_uid")["d"] for li in o["line_items"]] == [
        75, 25]
    assert o["discounts"][0]["applied_money"] == usd(100)


def test_a_discount_never_takes_a_line_below_zero() -> None:
    o = price_order({"line_items": [line(300), line(100)], "discounts": [
        {"uid": "big", "name": "Big", "amount_money": usd(1000), "scope": "ORDER"},
        {"uid": "pct", "name": "Pct", "percentage": "100", "scope": "ORDER"}]}, "USD")
    assert o["total_money"] == usd(0)
    applied = {d["uid"]: d["applied_money"]["amount"] for d in o["discounts"]}
    assert applied == {"pct": 400, "big": 0}  # percentage first; nothing left for the fixed one


def test_apportioned_service_charges_compound_and_land_on_the_lines() -> None:
    o = price_order({
        "line_items": [line(1000, uid="a"), line(3000, uid="b")],
        "taxes": [{"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}],
        "service_charges": [
            {"uid": "fee", "name": "Fee", "amount_money": usd(200), "taxable": True,
             "calculation_phase": "APPORTIONED_AMOUNT_PHASE"},
            {"uid": "pct", "name": "Pct", "percentage": "10",
             "calculation_phase": "APPORTIONED_PERCENTAGE_PHASE"}]}, "USD")
    a, b = o["line_items"]
    # 10 % first (400: 100 + 300), then 200 on 1100 : 3300 (50 + 150).
    ref = "service_charge_uid"
    assert amounts(a["applied_service_charges"], ref) == {"fee": 50, "pct": 100}
    assert amounts(b["applied_service_charges"], ref) == {"fee": 150, "pct": 300}
    assert a["total_service_charge_money"] == usd(150)
    # The fee is taxable, the percentage charge is not: tax on 1000 + 50 and 3000 + 150.
    assert a["total_tax_money"] == usd(105) and b["total_tax_money"] == usd(315)
    assert a["total_money"] == usd(1000 + 150 + 105)
    sc = {s["uid"]: s for s in o["service_charges"]}
    assert sc["fee"]["applied_money"] == usd(200) and sc["pct"]["applied_money"] == usd(400)
    assert sc["fee"]["scope"] == "ORDER" and sc["fee"]["treatment_type"] == "APPORTIONED_TREATMENT"
    assert o["total_service_charge_money"] == usd(600)
    assert o["total_money"] == usd(4000 + 600 + 420)


def test_line_item_apportioned_charge_only_on_referenced_lines() -> None:
    o = price_order({
        "line_items": [line(1000, applied_service_charges=[{"service_charge_uid": "s"}]),
                       line(1000)],
        "service_charges": [{"uid": "s", "name": "S", "percentage": "5", "scope": "LINE_ITEM",
                             "calculation_phase": "APPORTIONED_PERCENTAGE_PHASE"}]}, "USD")
    a, b = o["line_items"]
    assert a["total_service_charge_money"] == usd(50)
    assert b["total_service_charge_money"] == usd(0) and "applied_service_charges" not in b


def test_subtotal_and_total_phase_charges() -> None:
    o = price_order({
        "line_items": [line(2000)],
        "discounts": [{"uid": "d", "name": "D", "percentage": "10", "scope": "ORDER"}],
        "taxes": [{"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}],
        "service_charges": [
            {"uid": "sub", "name": "Sub", "percentage": "12.5", "taxable": True},
            {"uid": "bag", "name": "Bag", "amount_money": usd(5)},
            {"uid": "tip", "name": "Tip", "percentage": "20", "calculation_phase": "TOTAL_PHASE"}]},
        "USD")
    sc = {s["uid"]: s for s in o["service_charges"]}
    # Subtotal 1800; 12.5 % = 225 taxed at 10 %: 22.5 -> 22 (half to even) of a 202.5 split.
    assert sc["sub"]["applied_money"] == usd(225)
    assert sc["sub"]["calculation_phase"] == "SUBTOTAL_PHASE" and sc["sub"]["type"] == "CUSTOM"
    assert amounts(sc["sub"]["applied_taxes"], "tax_uid") == {"t": 22}
    assert sc["sub"]["total_money"] == usd(247)
    assert o["taxes"][0]["applied_money"] == usd(202)  # 10 % of 1800 + 225 = 202.5 -> 202
    assert o["line_items"][0]["total_tax_money"] == usd(180)
    before_tip = 1800 + 180 + 247 + 5
    assert sc["tip"]["applied_money"] == usd(round_half_even(before_tip * 20, 100))
    assert o["total_money"] == usd(before_tip + sc["tip"]["applied_money"]["amount"])
    assert o["total_service_charge_money"] == usd(225 + 5 + sc["tip"]["applied_money"]["amount"])


def test_price_order_is_pure() -> None:
    body = {"line_items": [line(1000)], "taxes": [
        {"uid": "t", "name": "T", "percentage": "10", "scope": "ORDER"}]}
    frozen = copy.deepcopy(body)
    first = price_order(body, "USD")
    assert body == frozen
    assert price_order(body, "USD") == first  # generated uids are derived, not random
    assert json.loads(json.dumps(first)) == first


def test_stored_references_follow_updates() -> None:
    eng = Engine()
    o = eng.create_order({"location_id": "main", "line_items": [line(1000, uid="a")],
                          "discounts": [{"uid": "d", "name": "D", "percentage": "10",
                                         "scope": "ORDER"}]})
    first_uid = o["line_items"][0]["applied_discounts"][0]["uid"]
    # A new line gets its own reference to the ORDER-scope discount; the old one keeps its uid.
    o = eng.update_order(o["id"], {"version": o["version"], "line_items": [line(500, uid="b")]})
    a, b = o["line_items"]
    assert a["applied_discounts"][0]["uid"] == first_uid
    assert amounts(b["applied_discounts"], "discount_uid") == {"d": 50}
    assert b["applied_discounts"][0]["uid"] != first_uid
    # Clearing the discount drops the references with it.
    o = eng.update_order(o["id"], {"version": o["version"]}, ["discounts"])
    assert all(not li.get("applied_discounts") for li in o["line_items"])
    assert o["total_money"] == usd(1500)
    assert eng.get_order(o["id"]) == o


def test_unknown_references_are_ignored() -> None:
    o = price_order({"line_items": [line(1000, applied_discounts=[{"discount_uid": "gone"}])]},
                    "USD")
    assert o["line_items"][0]["applied_discounts"] == []
    assert o["total_money"] == usd(1000)


def test_calculate_order_lines_keep_their_own_money() -> None:
    eng = Engine()
    out = eng.calculate_order({"location_id": "main", "line_items": [
        line(100), line(200), line(300, modifiers=[{"name": "m", "base_price_money": usd(1)}])]})
    assert [li["total_money"]["amount"] for li in out["line_items"]] == [100, 200, 301]
    uids = [li["uid"] for li in out["line_items"]] + [out["line_items"][2]["modifiers"][0]["uid"]]
    assert len(set(uids)) == 4


@pytest.mark.parametrize("body,field", [
    ({"taxes": [{"uid": "t", "name": "T", "percentage": "5%"}]}, "order.taxes[0].percentage"),
    ({"service_charges": [{"uid": "s", "name": "S", "percentage": "Infinity"}]},
     "order.service_charges[0].percentage"),
    ({"service_charges": [{"uid": "s", "name": "S", "amount_money": usd(1),
                           "calculation_phase": "SOMETIME"}]},
     "order.service_charges[0].calculation_phase"),
    ({"line_items": [line(1, modifiers=[{"name": "m", "base_price_money": usd(1),
                                         "quantity": "-1"}])]},
     "order.line_items[0].modifiers[0].quantity"),
])
def test_bad_adjustments_are_rejected_with_their_field(body: dict, field: str) -> None:
    eng = Engine()
    order = {"location_id": "main", "line_items": [line(100)], **body}
    for call in (eng.create_order, eng.calculate_order):
        with pytest.raises(SquareError) as info:
            call(order)
        assert info.value.status == 400 and info.value.field == field
        assert info.value.code == "INVALID_VALUE"

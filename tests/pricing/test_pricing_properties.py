"""Properties of the order math over random orders: up to 20 lines, discounts, taxes and service
charges of every scope, type and phase."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given, strategies as st

from orderfsm.engine import Engine
from orderfsm.errors import SquareError
from orderfsm.pricing import INT64_MAX, price_order, spread

USD = "USD"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": USD}


quantities = st.sampled_from(["1", "2", "3", "10", "0.5", "1.25", "2.333", "0.00001", "7.5"])
percentages = st.builds(
    lambda whole, frac: f"{whole}.{frac}" if frac and whole < 100 else str(whole),
    st.integers(0, 100), st.sampled_from(["", "5", "25", "125", "0"]))


@st.composite
def orders(draw: st.DrawFn, max_price: int = 10**7) -> dict[str, Any]:
    n = draw(st.integers(1, 20))
    lines = []
    for i in range(n):
        li: dict[str, Any] = {"uid": f"L{i}", "name": f"Item {i}", "quantity": draw(quantities),
                              "base_price_money": usd(draw(st.integers(0, max_price)))}
        if draw(st.booleans()):
            li["modifiers"] = [{"uid": f"M{i}", "name": "mod",
                                "base_price_money": usd(draw(st.integers(0, max_price // 10))),
                                "quantity": draw(st.sampled_from(["1", "2", "0"]))}]
        lines.append(li)

    def attach(key: str, ref: str, uid: str) -> None:
        for li in draw(st.lists(st.sampled_from(lines), min_size=1, max_size=n, unique_by=id)):
            li.setdefault(key, []).append({ref: uid})

    discounts = []
    for k in range(draw(st.integers(0, 5))):
        d: dict[str, Any] = {"uid": f"D{k}", "name": f"Discount {k}",
                             "scope": draw(st.sampled_from(["ORDER", "LINE_ITEM"]))}
        if draw(st.booleans()):
            d["percentage"] = draw(percentages)
        else:
            d["amount_money"] = usd(draw(st.integers(0, max_price)))
        if d["scope"] == "LINE_ITEM":
            attach("applied_discounts", "discount_uid", d["uid"])
        discounts.append(d)
    taxes = []
    for k in range(draw(st.integers(0, 3))):
        t: dict[str, Any] = {"uid": f"T{k}", "name": f"Tax {k}", "percentage": draw(percentages),
                             "type": draw(st.sampled_from(["ADDITIVE", "INCLUSIVE"])),
                             "scope": draw(st.sampled_from(["ORDER", "LINE_ITEM"]))}
        if t["scope"] == "LINE_ITEM":
            attach("applied_taxes", "tax_uid", t["uid"])
        taxes.append(t)
    charges = []
    for k in range(draw(st.integers(0, 3))):
        phase = draw(st.sampled_from(["SUBTOTAL_PHASE", "TOTAL_PHASE", "APPORTIONED_AMOUNT_PHASE",
                                      "APPORTIONED_PERCENTAGE_PHASE"]))
        s: dict[str, Any] = {"uid": f"S{k}", "name": f"Charge {k}", "calculation_phase": phase}
        percent = phase == "APPORTIONED_PERCENTAGE_PHASE" or (
            phase != "APPORTIONED_AMOUNT_PHASE" and draw(st.booleans()))
        if percent:
            s["percentage"] = draw(percentages)
        else:
            s["amount_money"] = usd(draw(st.integers(0, max_price)))
        if phase != "TOTAL_PHASE":
            s["taxable"] = draw(st.booleans())
        if phase.startswith("APPORTIONED"):
            s["scope"] = draw(st.sampled_from(["ORDER", "LINE_ITEM"]))
            if s["scope"] == "LINE_ITEM":
                attach("applied_service_charges", "service_charge_uid", s["uid"])
        charges.append(s)
    order: dict[str, Any] = {"location_id": "main", "line_items": lines}
    for key, value in (("discounts", discounts), ("taxes", taxes), ("service_charges", charges)):
        if value:
            order[key] = value
    return order


def amt(m: dict[str, Any]) -> int:
    return m["amount"]


def walk_amounts(value: Any):
    if isinstance(value, dict):
        if set(value) == {"amount", "currency"}:
            yield value["amount"]
        for v in value.values():
            yield from walk_amounts(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_amounts(v)


def money_by_uid(priced: dict[str, Any]) -> dict[str, Any]:
    """Every computed amount, keyed by the uids it belongs to (independent of list order)."""
    out: dict[str, Any] = {k: amt(priced[k]) for k in priced if k.startswith("total_")}
    for top in ("discounts", "taxes", "service_charges"):
        for e in priced.get(top, []):
            out[e["uid"]] = sorted((k, amt(v)) for k, v in e.items()
                                   if k.endswith("_money") and isinstance(v, dict))
    for li in priced["line_items"]:
        out[li["uid"]] = sorted((k, amt(v)) for k, v in li.items() if k.endswith("_money"))
        for key, ref in (("applied_discounts", "discount_uid"), ("applied_taxes", "tax_uid"),
                         ("applied_service_charges", "service_charge_uid")):
            for a in li.get(key, []):
                out[(li["uid"], a[ref])] = amt(a["applied_money"])
    return out


@given(orders())
def test_shares_add_up_and_totals_balance(order: dict[str, Any]) -> None:
    p = price_order(order, USD)
    tax_type = {t["uid"]: t["type"] for t in p.get("taxes", [])}
    # Apportioned shares add up to their order-level amount.
    for top, key, ref in (("discounts", "applied_discounts", "discount_uid"),
                          ("taxes", "applied_taxes", "tax_uid"),
                          ("service_charges", "applied_service_charges", "service_charge_uid")):
        for e in p.get(top, []):
            shares = [amt(a["applied_money"]) for li in p["line_items"] for a in li.get(key, [])
                      if a[ref] == e["uid"]]
            if top == "taxes":
                shares += [amt(a["applied_money"]) for s in p.get("service_charges", [])
                           for a in s.get("applied_taxes", []) if a["tax_uid"] == e["uid"]]
            if top == "service_charges" and not e["calculation_phase"].startswith("APPORTIONED"):
                assert shares == []
                continue
            assert sum(shares) == amt(e["applied_money"]), (top, e["uid"])
    # total = gross - discounts + additive taxes + service charges, on every line ...
    pre_tax_gross = 0
    additive = 0
    for li in p["line_items"]:
        gross = amt(li["variation_total_price_money"]) + sum(
            amt(m["total_price_money"]) for m in li.get("modifiers", []))
        add = sum(amt(a["applied_money"]) for a in li.get("applied_taxes", [])
                  if tax_type[a["tax_uid"]] == "ADDITIVE")
        incl = sum(amt(a["applied_money"]) for a in li.get("applied_taxes", [])
                   if tax_type[a["tax_uid"]] == "INCLUSIVE")
        assert amt(li["total_money"]) == (gross - amt(li["total_discount_money"]) + add
                                          + amt(li["total_service_charge_money"]))
        assert amt(li["total_tax_money"]) == add + incl
        # In the US inclusive tax is taken out of gross sales (the part on a taxable apportioned
        # service charge stays with the charge).
        taken = gross - amt(li["gross_sales_money"])
        assert 0 <= taken <= incl
        if not li.get("applied_service_charges"):
            assert taken == incl
        assert amt(li["total_discount_money"]) == sum(
            amt(a["applied_money"]) for a in li.get("applied_discounts", []))
        assert amt(li["total_service_charge_money"]) == sum(
            amt(a["applied_money"]) for a in li.get("applied_service_charges", []))
        assert amt(li["total_discount_money"]) <= gross
        pre_tax_gross += gross
        additive += add
    # ... and on the order.
    for s in p.get("service_charges", []):
        additive += sum(amt(a["applied_money"]) for a in s.get("applied_taxes", [])
                        if tax_type[a["tax_uid"]] == "ADDITIVE")
        assert amt(s["total_money"]) == amt(s["applied_money"]) + sum(
            amt(a["applied_money"]) for a in s.get("applied_taxes", [])
            if tax_type[a["tax_uid"]] == "ADDITIVE")
    assert amt(p["total_money"]) == (pre_tax_gross - amt(p["total_discount_money"]) + additive
                                     + amt(p["total_service_charge_money"]))
    assert amt(p["total_discount_money"]) == sum(amt(d["applied_money"])
                                                 for d in p.get("discounts", []))
    assert amt(p["total_service_charge_money"]) == sum(amt(s["applied_money"])
                                                       for s in p.get("service_charges", []))
    assert amt(p["total_tax_money"]) == sum(amt(t["applied_money"]) for t in p.get("taxes", []))
    # No amount is negative or leaves int64.
    assert all(0 <= a <= INT64_MAX for a in walk_amounts(p))


@given(orders(), st.randoms(use_true_random=False))
def test_listing_order_does_not_matter(order: dict[str, Any], rnd: random.Random) -> None:
    want = money_by_uid(price_order(order, USD))
    shuffled = dict(order)
    for key in ("discounts", "taxes", "service_charges"):
        if key in order:
            shuffled[key] = rnd.sample(order[key], len(order[key]))
    lines = []
    for li in order["line_items"]:
        li = dict(li)
        for key in ("applied_discounts", "applied_taxes", "applied_service_charges"):
            if key in li:
                li[key] = rnd.sample(li[key], len(li[key]))
        lines.append(li)
    shuffled["line_items"] = lines
    assert money_by_uid(price_order(shuffled, USD)) == want


@given(orders())
def test_calculate_order_equals_create_order(order: dict[str, Any]) -> None:
    eng = Engine()
    calc = eng.calculate_order(order)
    made = eng.create_order(order)
    assert money_by_uid(calc) == money_by_uid(made)
    assert money_by_uid(made) == money_by_uid(price_order(order, USD))
    assert made["net_amounts"]["total_money"] == made["total_money"]


def scribble(priced: dict[str, Any]) -> None:
    """Write into every object pricing computed something for."""
    for li in priced["line_items"]:
        li["total_money"] = None
        for mod in li.get("modifiers", []):
            mod["total_price_money"] = None
        for key in ("applied_discounts", "applied_taxes", "applied_service_charges"):
            for entry in li.get(key, []):
                entry["applied_money"] = None
    for key in ("discounts", "taxes", "service_charges"):
        for entry in priced.get(key, []):
            entry["applied_money"] = None
            for applied in entry.get("applied_taxes", []):
                applied["applied_money"] = None


@given(orders())
def test_pricing_writes_nothing_it_is_given_and_is_stable(order: dict[str, Any]) -> None:
    frozen = copy.deepcopy(order)
    priced = price_order(order, USD)
    assert order == frozen  # nothing inside the order given is written to
    # The engine prices a stored order (references and uids attached) on every read: pricing a
    # priced order again keeps every uid and every amount.
    kept = copy.deepcopy(priced)
    again = price_order(priced, USD)
    assert again == priced == kept
    # Writing into a priced copy reaches neither order it came from.
    scribble(again)
    assert priced == kept
    scribble(priced)
    assert order == frozen


@given(orders(max_price=2**61))
def test_huge_orders_are_rejected_or_fit_in_int64(order: dict[str, Any]) -> None:
    eng = Engine()
    before = eng.snapshot()
    try:
        made = eng.create_order(order)
    except SquareError as err:
        assert err.rule_id == "pricing.amount_overflow" and err.status == 400
        assert err.field and err.field.startswith("order.")
        assert eng.snapshot() == before
        return
    assert all(0 <= a <= INT64_MAX for a in walk_amounts(made))


@given(st.integers(0, 10**12),
       st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_spread_is_exact_and_bounded(total: int, weights: list[int]) -> None:
    shares = spread(total, weights)
    if sum(weights) == 0:
        assert shares == [0] * len(weights)
        return
    assert sum(shares) == total
    whole = sum(weights)
    for share, w in zip(shares, weights):
        exact = total * w / whole
        assert abs(share - exact) < 1 + 1e-9 * max(1.0, exact)
        if total <= whole:
            assert share <= w

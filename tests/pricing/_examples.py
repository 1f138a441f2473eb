"""Helpers for Square's published examples (used by tests/pricing and tests/simulator).

The request and response bodies are the spec's own examples (square_examples.json, a verbatim
copy; test_square_examples.py checks the copy against api.json when the spec is present). Each response
is compared on everything pricing computes: every money field of every line item, modifier,
applied reference, tax, discount and service charge, the order totals and ``net_amounts``, plus
the order and uids of the adjustments and ``type`` / ``scope``. Server-generated uids cannot
match Square's random ones; they are checked to exist and be distinct.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXAMPLES = json.loads((HERE / "square_examples.json").read_text())
REPO = HERE.parents[1]
# Square's spec sits in ../shared beside a checkout; ORDERFSM_SQUARE_SPEC points elsewhere.
SPEC = Path(os.environ.get("ORDERFSM_SQUARE_SPEC",
                           REPO.parent / "shared" / "square-api" / "api.json"))

APPLIED = (("applied_discounts", "discount_uid"), ("applied_taxes", "tax_uid"),
           ("applied_service_charges", "service_charge_uid"))


def catalog_objects() -> dict[str, dict[str, Any]]:
    """The example's CatalogObjects by id, nested variations and modifiers included."""
    out = {}
    for obj in EXAMPLES["catalog"]:
        out[obj["id"]] = obj
        for child in (obj.get("item_data", {}).get("variations", [])
                      + obj.get("modifier_list_data", {}).get("modifiers", [])):
            out[child["id"]] = child
    return out


def resolve(order: dict[str, Any]) -> dict[str, Any]:
    """Fill in what the example's catalog objects give (names, prices, the discount) and drop
    the references, so the order prices without a catalog."""
    catalog = catalog_objects()
    out = json.loads(json.dumps(order))
    for li in out.get("line_items", []):
        var = catalog.get(li.pop("catalog_object_id", None))
        if var:
            data = var["item_variation_data"]
            li.setdefault("name", catalog[data["item_id"]]["item_data"]["name"])
            li.setdefault("variation_name", data["name"])
            li.setdefault("base_price_money", data["price_money"])
        for mod in li.get("modifiers", []):
            data = catalog[mod.pop("catalog_object_id")]["modifier_data"]
            mod.setdefault("name", data["name"])
            mod.setdefault("base_price_money", data["price_money"])
    for d in out.get("discounts", []):
        obj = catalog.get(d.pop("catalog_object_id", None))
        if obj:
            data = obj["discount_data"]
            d.setdefault("name", data["name"])
            d.setdefault("type", data["discount_type"])
            d.setdefault("percentage", data["percentage"])
    return out


def _money_fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v["amount"] for k, v in obj.items() if k.endswith("_money") and isinstance(v, dict)}


def money_view(order: dict[str, Any], *, generated: set[str]) -> dict[str, Any]:
    """What pricing decides, in a form two orders can be compared on."""
    view: dict[str, Any] = {"order": _money_fields(order),
                            "net_amounts": _money_fields(order.get("net_amounts", {}))}
    for top in ("discounts", "taxes", "service_charges"):
        view[top] = [dict(_money_fields(e), uid=e["uid"] if e["uid"] not in generated else "*",
                          type=e.get("type"), scope=e.get("scope"))
                     for e in order.get(top, [])]
    lines = []
    for li in order.get("line_items", []):
        entry: dict[str, Any] = {"name": li.get("name"), "money": _money_fields(li),
                                 "modifiers": [_money_fields(m) for m in li.get("modifiers", [])]}
        for key, ref in APPLIED:
            if li.get(key):
                refs = [a[ref] if a[ref] not in generated else "*" for a in li[key]]
                entry[key] = list(zip(refs, [a["applied_money"]["amount"] for a in li[key]]))
        lines.append(entry)
    view["line_items"] = lines
    return view


def assert_same_money(actual: dict[str, Any], expected: dict[str, Any],
                      generated: tuple[set[str], set[str]] = (set(), set())) -> None:
    got = money_view(actual, generated=generated[0])
    want = money_view(expected, generated=generated[1])
    # Square's examples leave out fields that are zero in some places (PayOrder has no
    # variation_total_price_money, UpdateOrder's net_amounts no tip_money): compare what the
    # example shows.
    def trim(g: Any, w: Any) -> Any:
        if isinstance(g, dict) and isinstance(w, dict):
            return {k: trim(g.get(k), w[k]) for k in w}
        if isinstance(g, list) and isinstance(w, list) and len(g) == len(w):
            return [trim(a, b) for a, b in zip(g, w)]
        return g
    assert trim(got, want) == want


def assert_generated_uids(order: dict[str, Any]) -> None:
    uids = [a["uid"] for li in order["line_items"] for key, _ in APPLIED for a in li.get(key, [])]
    uids += [li["uid"] for li in order["line_items"]]
    uids += [m["uid"] for li in order["line_items"] for m in li.get("modifiers", [])]
    assert all(isinstance(u, str) and 0 < len(u) <= 60 for u in uids)
    assert len(set(uids)) == len(uids), "every line, modifier and applied entry has its own uid"



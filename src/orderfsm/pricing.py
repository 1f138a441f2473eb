"""Order arithmetic: the money fields Square computes (line totals, taxes, discounts, service
charges, order totals). Amounts are integers in the smallest currency unit; fractions are
rounded half up, per line, as Square does.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = ["price_order", "money", "parse_quantity"]


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_quantity(text: Any) -> Decimal:
    """Quantities are decimal strings ("2", "1.5"); anything else raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("quantity must be a string")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"quantity must be positive: {text!r}")
    return value


def _pct(text: Any) -> Decimal:
    try:
        return Decimal(str(text)) if text is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _amount(m: Any) -> int:
    return int(m.get("amount") or 0) if isinstance(m, dict) else 0


def _spread(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` across ``weights`` proportionally; remainders go to the largest parts."""
    whole = sum(weights)
    if whole <= 0 or total <= 0:
        return [0] * len(weights)
    total = min(total, whole)
    shares = [total * w // whole for w in weights]
    rest = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:rest]:
        shares[i] += 1
    return shares


def price_order(order: dict[str, Any], currency: str) -> dict[str, Any]:
    """Return the computed fields of ``order`` (which is not modified).

    The result has ``line_items`` (per-line computed money keyed by uid), ``taxes`` and
    ``discounts`` (applied amounts keyed by uid), ``service_charges`` (amounts keyed by uid)
    and the order rollups ``total_money``, ``total_tax_money``, ``total_discount_money``,
    ``total_tip_money`` and ``total_service_charge_money`` as integers.
    """
    lines = order.get("line_items") or []
    taxes = order.get("taxes") or []
    discounts = order.get("discounts") or []
    gross: list[int] = []
    for line in lines:
        qty = parse_quantity(line.get("quantity", "1"))
        unit = _amount(line.get("base_price_money"))
        unit += sum(_amount(m.get("base_price_money")) for m in line.get("modifiers") or [])
        gross.append(_round(qty * unit))
    n = len(lines)
    line_discount = [0] * n
    discount_applied: dict[str, int] = {}
    for d in discounts:
        uid = d.get("uid")
        scope = d.get("scope") or ("LINE_ITEM" if _applies(lines, "applied_discounts", "discount_uid", uid)
                                   else "ORDER")
        targets = [i for i in range(n)
                   if scope == "ORDER" or _applied_to(lines[i], "applied_discounts", "discount_uid", uid)]
        remaining = [gross[i] - line_discount[i] for i in targets]
        if d.get("type") == "FIXED_AMOUNT" or (d.get("amount_money") and not d.get("percentage")):
            shares = _spread(_amount(d.get("amount_money")), remaining)
        else:
            pct = _pct(d.get("percentage"))
            shares = [min(r, _round(Decimal(r) * pct / 100)) for r in remaining]
        for i, share in zip(targets, shares):
            line_discount[i] += share
        discount_applied[uid] = sum(shares)
    line_tax = [0] * n
    line_incl_tax = [0] * n
    tax_applied: dict[str, int] = {}
    for t in taxes:
        uid = t.get("uid")
        scope = t.get("scope") or ("LINE_ITEM" if _applies(lines, "applied_taxes", "tax_uid", uid)
                                   else "ORDER")
        pct = _pct(t.get("percentage"))
        applied = 0
        for i in range(n):
            if scope != "ORDER" and not _applied_to(lines[i], "applied_taxes", "tax_uid", uid):
                continue
            base = Decimal(gross[i] - line_discount[i])
            if t.get("type") == "INCLUSIVE":
                amount = _round(base - base / (1 + pct / 100))
                line_incl_tax[i] += amount
            else:
                amount = _round(base * pct / 100)
                line_tax[i] += amount
            applied += amount
        tax_applied[uid] = applied
    line_out: dict[str, dict[str, int]] = {}
    for i, line in enumerate(lines):
        line_out[line.get("uid", str(i))] = {
            "gross_sales_money": gross[i],
            "variation_total_price_money": gross[i],
            "total_discount_money": line_discount[i],
            "total_tax_money": line_tax[i] + line_incl_tax[i],
            "total_money": gross[i] - line_discount[i] + line_tax[i],
        }
    subtotal = sum(gross) - sum(line_discount)
    charges: dict[str, int] = {}
    for sc in order.get("service_charges") or []:
        if sc.get("amount_money"):
            amount = _amount(sc.get("amount_money"))
        else:
            amount = _round(Decimal(subtotal) * _pct(sc.get("percentage")) / 100)
        charges[sc.get("uid")] = amount
    total = subtotal + sum(line_tax) + sum(charges.values())
    return {
        "line_items": line_out,
        "taxes": tax_applied,
        "discounts": discount_applied,
        "service_charges": charges,
        "total_money": total,
        "total_tax_money": sum(line_tax) + sum(line_incl_tax),
        "total_discount_money": sum(line_discount),
        "total_tip_money": 0,
        "total_service_charge_money": sum(charges.values()),
        "currency": currency,
    }


def _applied_to(line: dict, key: str, ref: str, uid: Any) -> bool:
    return any(a.get(ref) == uid for a in line.get(key) or [])


def _applies(lines: list[dict], key: str, ref: str, uid: Any) -> bool:
    return any(_applied_to(line, key, ref, uid) for line in lines)

"""Order arithmetic: every money field Square computes on an order, to the cent.

Pure functions: no HTTP, no engine state. :func:`price_order` takes an order (line items with
prices, modifiers and applied references; taxes, discounts and service charges) and returns a
priced copy with every computed field filled in. The engine renders that copy and adds what
pricing does not know about (tenders, returns, amount due). CreateOrder, UpdateOrder,
CalculateOrder and RetrieveOrder all go through it.

The algorithm (docs/pricing.md explains it with a worked example):

1. **Lines.** ``variation_total_price_money = base_price × quantity``; each modifier's
   ``total_price_money = base_price × modifier quantity × line quantity``;
   ``gross = variation total + modifiers``.
2. **Discounts**, in Square's documented sequence whatever order the request lists them in:
   item-level percentage, order-level percentage, item-level fixed amount, order-level fixed
   amount. Within one step they compound in ascending order of their value (then uid); that is
   the order that reproduces the spec's CreateOrder example (the 0.5 % membership discount is
   taken before the 5 % Labor Day sale although the request lists it second).
3. **Apportioned service charges** (APPORTIONED_PERCENTAGE_PHASE, then APPORTIONED_AMOUNT_PHASE),
   compounding on the discounted lines.
4. **Subtotal-phase service charges** on the discounted subtotal.
5. **Taxes** on the discounted lines and on taxable subtotal-phase charges. Inclusive taxes on one
   line share the combined rate; additive taxes apply to the amount net of inclusive tax.
6. **Total-phase service charges** on everything above.

Every adjustment (whatever its scope) is computed **once** on the sum of the bases of the items it
applies to, rounded half to even, then apportioned to those items by the largest-remainder
method (:func:`spread`): each item gets the floor of its exact proportional share and the cents
left over go to the items with the largest fractional parts (ties: the larger base, then the
earlier item). The shares add up to the adjustment's amount exactly and no share exceeds its
item's base. This reproduces every split in Square's published examples (membership 30 → 8 + 22,
Labor Day 303 → 79 + 224, state tax 510 → 136 + 374, 50 % off 550 → 250 + 300), and unlike
"the last line takes the remainder" it does not depend on the order the lines are listed in.
"""

from __future__ import annotations

import base64
import hashlib
import re
from fractions import Fraction
from typing import Any, Callable, Mapping

from .rules import violation

__all__ = [
    "INT64_MAX",
    "price_order",
    "apply_pricing",
    "attach_applied",
    "money",
    "parse_quantity",
    "parse_percentage",
    "spread",
    "round_half_even",
    "derived_uid",
    "check_request",
]

INT64_MAX = 2**63 - 1

#: Currencies of the countries where Square deducts inclusive tax from ``gross_sales_money``
#: (US, Canada, Japan; OrderLineItem.gross_sales_money in the spec). Elsewhere it stays in.
_INCLUSIVE_OUT_OF_GROSS = frozenset({"USD", "CAD", "JPY"})

_DECIMAL = re.compile(r"(\d*)(?:\.(\d*))?\Z")
_PHASES = ("APPORTIONED_PERCENTAGE_PHASE", "APPORTIONED_AMOUNT_PHASE", "SUBTOTAL_PHASE",
           "TOTAL_PHASE")
_MAX_QUANTITY_DECIMALS = 5  # OrderQuantityUnit.precision: "Min: 0. Max: 5."


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def round_half_even(num: int, den: int) -> int:
    """``num / den`` rounded to an integer, half to even (Square's "Bankers' Rounding")."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def _decimal(text: Any) -> tuple[int, int] | None:
    """A plain decimal string ("2", "0.5", "7.25") as (numerator, 10**decimals), else None."""
    if type(text) is not str or not text:
        return None
    m = _DECIMAL.match(text)
    if m is None:
        return None
    whole, frac = m.group(1), m.group(2) or ""
    if not whole and not frac:
        return None
    return int(whole + frac or "0"), 10 ** len(frac)


def parse_quantity(text: Any, field: str = "quantity", *, allow_zero: bool = False,
                   precision: int | None = None) -> tuple[int, int]:
    """A quantity as (numerator, denominator). Square's quantities are decimal strings with at
    most five decimals (or the line's ``quantity_unit.precision``)."""
    value = _decimal(text)
    if value is None:
        raise violation("api.invalid_value", field=field,
                        reason=f"Quantity must be a decimal string, got {text!r}.")
    num, den = value
    decimals = len(str(den)) - 1
    limit = _MAX_QUANTITY_DECIMALS if precision is None else precision
    if decimals > limit:
        raise violation("pricing.quantity_precision", field=field, value=text, places=limit)
    if num == 0 and not allow_zero:
        raise violation("api.invalid_value", field=field,
                        reason="Quantity must be a positive decimal string.")
    return num, den


def parse_percentage(text: Any, field: str, *, maximum: int | None = None) -> tuple[int, int]:
    """A percentage string ("9", "0.5") as the fraction (numerator, denominator) of 1."""
    value = _decimal(text)
    if value is None:
        raise violation("api.invalid_value", field=field,
                        reason=f"Percentage must be a decimal string such as \"7.25\", got {text!r}.")
    num, den = value
    if maximum is not None and num > maximum * den:
        raise violation("pricing.percentage_range", field=field, value=text, maximum=maximum)
    return num, den * 100



def _line_quantity(li: Mapping[str, Any], path: str) -> tuple[int, int]:
    unit = li.get("quantity_unit")
    precision = unit.get("precision") if isinstance(unit, dict) else None
    return parse_quantity(li.get("quantity", "1"), f"{path}.quantity",
                          precision=precision if type(precision) is int else None)


def _modifier_quantity(mod: Mapping[str, Any], path: str) -> tuple[int, int]:
    mq = mod.get("quantity")
    return (1, 1) if mq is None else parse_quantity(mq, f"{path}.quantity", allow_zero=True)


def _discount_rate(d: Mapping[str, Any], path: str) -> tuple[str, tuple[int, int] | None]:
    """The discount's type and, for a percentage discount, its rate."""
    dtype = d.get("type")
    pct = d.get("percentage")
    if dtype in ("FIXED_PERCENTAGE", "VARIABLE_PERCENTAGE") or (
            dtype not in ("FIXED_AMOUNT", "VARIABLE_AMOUNT") and pct is not None):
        rate = parse_percentage(pct if pct is not None else "0", f"{path}.percentage", maximum=100)
        return (dtype if dtype in ("FIXED_PERCENTAGE", "VARIABLE_PERCENTAGE")
                else "FIXED_PERCENTAGE"), rate
    return (dtype if dtype in ("FIXED_AMOUNT", "VARIABLE_AMOUNT") else "FIXED_AMOUNT"), None


def _tax_rate(t: Mapping[str, Any], path: str) -> tuple[str, tuple[int, int]]:
    ttype = t.get("type")
    if ttype not in ("ADDITIVE", "INCLUSIVE"):
        ttype = "ADDITIVE"
    return ttype, parse_percentage(t.get("percentage", "0"), f"{path}.percentage")


def _charge_rate(s: Mapping[str, Any], path: str) -> tuple[str, tuple[int, int] | None]:
    """The service charge's calculation phase and, for a percentage charge, its rate."""
    phase = s.get("calculation_phase") or "SUBTOTAL_PHASE"
    if phase not in _PHASES:
        raise violation("api.invalid_value", field=f"{path}.calculation_phase",
                        reason=f"Unknown calculation phase {phase}.")
    pct = s.get("percentage")
    rate = parse_percentage(pct, f"{path}.percentage") if pct is not None else None
    if (phase == "APPORTIONED_PERCENTAGE_PHASE" and rate is None) or (
            phase == "APPORTIONED_AMOUNT_PHASE" and rate is not None):
        raise violation("pricing.service_charge_phase", field=f"{path}.calculation_phase",
                        phase=phase)
    if phase == "TOTAL_PHASE" and s.get("taxable"):
        raise violation("pricing.service_charge_phase", field=f"{path}.taxable", phase=phase)
    return phase, rate


def check_request(order: Mapping[str, Any], prefix: str = "order") -> None:
    """Reject, with the request's own field paths, what pricing could not compute: malformed or
    out-of-range quantities and percentages and impossible service-charge phases. Used on
    request bodies (a sparse UpdateOrder body included) before they are merged."""
    for i, li in enumerate(order.get("line_items") or ()):
        if not isinstance(li, dict):
            continue
        path = f"{prefix}.line_items[{i}]"
        if "quantity" in li:
            _line_quantity(li, path)
        for j, mod in enumerate(li.get("modifiers") or ()):
            if isinstance(mod, dict):
                _modifier_quantity(mod, f"{path}.modifiers[{j}]")
    for i, d in enumerate(order.get("discounts") or ()):
        if isinstance(d, dict):
            _discount_rate(d, f"{prefix}.discounts[{i}]")
    for i, t in enumerate(order.get("taxes") or ()):
        if isinstance(t, dict):
            _tax_rate(t, f"{prefix}.taxes[{i}]")
    for i, sc in enumerate(order.get("service_charges") or ()):
        if isinstance(sc, dict):
            _charge_rate(sc, f"{prefix}.service_charges[{i}]")


def spread(total: int, weights: list) -> list[int]:
    """Split ``total`` over ``weights`` (non-negative ints or Fractions) by largest remainder.

    The shares sum to ``total``. When ``total <= sum(weights)`` no share exceeds its weight.
    With no weight at all the total goes to nobody (all shares 0), as Square spreads order-level
    amounts over non-zero lines only.
    """
    n = len(weights)
    whole = sum(weights)
    if n == 0 or whole <= 0 or total == 0:
        return [0] * n
    if n == 1:
        return [total]
    if all(type(w) is int for w in weights):
        shares = [total * w // whole for w in weights]
        rest = total - sum(shares)
        if rest:
            order = sorted(range(n), key=lambda i: (-(total * weights[i] % whole), -weights[i], i))
            for i in order[:rest]:
                shares[i] += 1
        return shares
    exact = [Fraction(total) * w / whole for w in weights]
    shares = [int(e) for e in exact]  # floor: all non-negative
    rest = total - sum(shares)
    if rest:
        order = sorted(range(n), key=lambda i: (-(exact[i] - shares[i]), -weights[i], i))
        for i in order[:rest]:
            shares[i] += 1
    return shares


def _amount(m: Any) -> int:
    if isinstance(m, dict):
        a = m.get("amount")
        if type(a) is int:
            return a
    return 0


def derived_uid(*parts: str) -> str:
    """A stable uid for an entry Square would generate (a pure function of what it refers to)."""
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=18).digest()
    return base64.b64encode(digest).translate(bytes.maketrans(b"+/", b"xZ")).decode()[:22]


def _clone(value: Any) -> Any:
    if type(value) is dict:
        return {k: _clone(v) for k, v in value.items()}
    if type(value) is list:
        return [_clone(v) for v in value]
    return value


# ------------------------------------------------------------------------------ references
_REFS = (("applied_discounts", "discount_uid", "discounts"),
         ("applied_taxes", "tax_uid", "taxes"),
         ("applied_service_charges", "service_charge_uid", "service_charges"))


def _order_scoped(order: Mapping[str, Any], lines: list) -> dict[str, set]:
    """uids of the ORDER-scope discounts, taxes and apportioned service charges."""
    out: dict[str, set] = {}
    for key, ref, top in _REFS:
        referenced = {a.get(ref) for li in lines for a in li.get(key) or () if isinstance(a, dict)}
        scoped = set()
        for entry in order.get(top) or ():
            if not isinstance(entry, dict):
                continue
            if top == "service_charges" and not str(entry.get("calculation_phase") or "").startswith(
                    "APPORTIONED"):
                continue
            scope = entry.get("scope")
            if scope == "ORDER" or (scope is None and entry.get("uid") not in referenced):
                scoped.add(entry.get("uid"))
        out[key] = scoped
    return out


def attach_applied(order: dict, new_uid: Callable[[], str]) -> None:
    """Give every line item the applied references Square generates, in place.

    For each ORDER-scope discount and tax (and ORDER-scope apportioned service charge) a line
    without a reference gets one, with its own uid from ``new_uid``; references to adjustments
    the order no longer has are dropped. The engine calls this when it stores an order, so the
    generated uids stay the same from one read to the next.
    """
    lines = [li for li in order.get("line_items") or () if isinstance(li, dict)]
    if not lines:
        return
    for li in lines:
        for mod in li.get("modifiers") or ():
            if isinstance(mod, dict) and not mod.get("uid"):
                mod["uid"] = new_uid()
    scoped = _order_scoped(order, lines)
    for key, ref, top in _REFS:
        known = {e.get("uid") for e in order.get(top) or () if isinstance(e, dict)}
        wanted = scoped[key]
        for li in lines:
            current = [a for a in li.get(key) or () if isinstance(a, dict) and a.get(ref) in known]
            have = {a.get(ref) for a in current}
            for uid in (e.get("uid") for e in order.get(top) or () if isinstance(e, dict)):
                if uid in wanted and uid not in have:
                    current.append({"uid": new_uid(), ref: uid})
            for a in current:
                if not a.get("uid"):
                    a["uid"] = new_uid()
            if current or key in li:
                li[key] = current


# ------------------------------------------------------------------------------ pricing
def price_order(order: Mapping[str, Any], currency: str, prefix: str = "order") -> dict[str, Any]:
    """Return a priced copy of ``order`` (which is not modified). See :func:`apply_pricing`."""
    out = _clone(dict(order))
    apply_pricing(out, currency, prefix)
    return out


class _Item:
    """A taxable thing: a line item or a subtotal-phase service charge."""

    __slots__ = ("base", "entries", "incl", "tax_add", "tax_incl")

    def __init__(self, base: int, entries: dict) -> None:
        self.base = base
        self.entries = entries  # tax uid -> applied-tax dict
        self.incl = 0
        self.tax_add = 0
        self.tax_incl = 0


def apply_pricing(order: dict, currency: str, prefix: str = "order") -> dict[str, Any]:
    """Fill in every computed money field of ``order`` in place and return it.

    ``order`` must be a fresh copy the caller owns. ``prefix`` is the field path used in errors
    ("order" for a request body). Raises a Square error for a malformed percentage or quantity,
    and for a computed amount beyond int64.
    """
    m = lambda amount: {"amount": amount, "currency": currency}  # noqa: E731
    lines = [li for li in order.get("line_items") or () if isinstance(li, dict)]
    discounts = [d for d in order.get("discounts") or () if isinstance(d, dict)]
    taxes = [t for t in order.get("taxes") or () if isinstance(t, dict)]
    charges = [s for s in order.get("service_charges") or () if isinstance(s, dict)]
    for name, entries in (("discounts", discounts), ("taxes", taxes),
                          ("service_charges", charges)):
        for i, e in enumerate(entries):
            if not e.get("uid"):
                e["uid"] = derived_uid(name, str(i))
    scoped = _order_scoped(order, lines)
    n = len(lines)

    # 1. line amounts
    gross = [0] * n
    for i, li in enumerate(lines):
        path = f"{prefix}.line_items[{i}]"
        qn, qd = _line_quantity(li, path)
        base = _amount(li.get("base_price_money"))
        variation = round_half_even(base * qn, qd)
        li["variation_total_price_money"] = m(_check(variation, f"{path}.variation_total_price_money"))
        total = variation
        for j, mod in enumerate(li.get("modifiers") or ()):
            if not isinstance(mod, dict):
                continue
            mn, md = _modifier_quantity(mod, f"{path}.modifiers[{j}]")
            price = round_half_even(_amount(mod.get("base_price_money")) * mn * qn, md * qd)
            mod["total_price_money"] = m(_check(price, f"{path}.modifiers[{j}].total_price_money"))
            total += price
        gross[i] = _check(total, f"{path}.gross_sales_money")

    # Applied references: each line's entries by adjustment uid (ORDER scope ones generated).
    by_line: list[dict[str, dict]] = [{} for _ in range(n)]
    for key, ref, top in _REFS:
        known = {e["uid"] for e in (discounts if top == "discounts" else
                                    taxes if top == "taxes" else charges)}
        wanted = scoped[key]
        for i, li in enumerate(lines):
            current = [a for a in li.get(key) or () if isinstance(a, dict) and a.get(ref) in known]
            have = {a[ref] for a in current}
            line_uid = str(li.get("uid") or i)
            for uid in wanted:
                if uid not in have:
                    current.append({"uid": derived_uid("applied", line_uid, uid), ref: uid})
            for a in current:
                if not a.get("uid"):
                    a["uid"] = derived_uid("applied", line_uid, a[ref])
                by_line[i][(key, a[ref])] = a
            if current or key in li:
                li[key] = current

    # 2. discounts
    remaining = gross[:]
    line_disc = [0] * n
    plan = []
    for k, d in enumerate(discounts):
        d["type"], rate = _discount_rate(d, f"{prefix}.discounts[{k}]")
        if rate is not None:
            value: Any = Fraction(*rate)
            step = 0
        else:
            value = _amount(d.get("amount_money"))
            step = 2
        order_scope = d["uid"] in scoped["applied_discounts"]
        if order_scope:
            step += 1
        d.setdefault("scope", "ORDER" if order_scope else "LINE_ITEM")
        plan.append((step, value, str(d["uid"]), d, rate))
    plan.sort(key=lambda p: p[:3])
    for _step, value, uid, d, rate in plan:
        members = [i for i in range(n) if ("applied_discounts", uid) in by_line[i]]
        base = sum(remaining[i] for i in members)
        if rate is not None:
            amount = round_half_even(base * rate[0], rate[1])
        else:
            amount = min(value, base)
        shares = spread(amount, [remaining[i] for i in members])
        for i, share in zip(members, shares):
            remaining[i] -= share
            line_disc[i] += share
            by_line[i][("applied_discounts", uid)]["applied_money"] = m(share)
        d["applied_money"] = m(amount)
    if plan:
        rank = {p[2]: r for r, p in enumerate(plan)}
        order["discounts"] = [p[3] for p in plan] + [d for d in order["discounts"]
                                                     if not isinstance(d, dict)]
        for li in lines:
            if li.get("applied_discounts"):
                li["applied_discounts"].sort(key=lambda a: rank[a["discount_uid"]])

    # 3.-4. service charges before taxes
    line_sc = [0] * n
    taxable_sc = [0] * n
    running = remaining[:]  # discounted line amounts, plus apportioned charges as they compound
    subtotal_charges = []
    total_charges = []
    apportioned = []
    for k, s in enumerate(charges):
        phase, rate = _charge_rate(s, f"{prefix}.service_charges[{k}]")
        s.setdefault("calculation_phase", phase)
        s.setdefault("type", "CUSTOM")
        entry = (phase, Fraction(*rate) if rate else _amount(s.get("amount_money")),
                 str(s["uid"]), s, rate, k)
        if phase.startswith("APPORTIONED"):
            s.setdefault("scope", "ORDER" if s["uid"] in scoped["applied_service_charges"]
                         else "LINE_ITEM")
            s.setdefault("treatment_type", "APPORTIONED_TREATMENT")
            apportioned.append(entry)
        elif phase == "SUBTOTAL_PHASE":
            subtotal_charges.append(entry)
        else:
            total_charges.append(entry)
    apportioned.sort(key=lambda e: (_PHASES.index(e[0]), e[1], e[2]))
    for _phase, value, uid, s, rate, _k in apportioned:
        members = [i for i in range(n) if ("applied_service_charges", uid) in by_line[i]]
        weights = [running[i] for i in members]
        amount = round_half_even(sum(weights) * rate[0], rate[1]) if rate else value
        if not members:
            amount = 0
        elif amount and not any(weights):  # a fixed charge on lines that are all zero: even split
            weights = [1] * len(members)
        shares = spread(amount, weights)
        for i, share in zip(members, shares):
            running[i] += share
            line_sc[i] += share
            if s.get("taxable"):
                taxable_sc[i] += share
            by_line[i][("applied_service_charges", uid)]["applied_money"] = m(share)
        s["applied_money"] = m(amount)
    subtotal = sum(running)
    for _phase, value, _uid_, s, rate, k in subtotal_charges:
        amount = round_half_even(subtotal * rate[0], rate[1]) if rate else value
        s["applied_money"] = m(_check(amount, f"{prefix}.service_charges[{k}].applied_money"))

    # 5. taxes
    items = []
    for i, li in enumerate(lines):
        entries = {u: a for (key, u), a in by_line[i].items() if key == "applied_taxes"}
        items.append(_Item(remaining[i] + taxable_sc[i], entries))
    charge_items = {}
    order_taxes = [t["uid"] for t in taxes if t["uid"] in scoped["applied_taxes"]]
    known_taxes = {t["uid"] for t in taxes}
    for _phase, _value, _u, s, _rate, k in subtotal_charges:
        if not s.get("taxable"):
            continue
        current = [a for a in s.get("applied_taxes") or ()
                   if isinstance(a, dict) and a.get("tax_uid") in known_taxes]
        have = {a["tax_uid"] for a in current}
        for uid in order_taxes:
            if uid not in have:
                current.append({"uid": derived_uid("applied", str(s["uid"]), uid), "tax_uid": uid})
        for a in current:
            a.setdefault("uid", derived_uid("applied", str(s["uid"]), a["tax_uid"]))
        s["applied_taxes"] = current
        item = _Item(s["applied_money"]["amount"], {a["tax_uid"]: a for a in current})
        charge_items[k] = item
        items.append(item)
    rates = {}
    for k, t in enumerate(taxes):
        t["type"], rate = _tax_rate(t, f"{prefix}.taxes[{k}]")
        t.setdefault("scope", "ORDER" if t["uid"] in scoped["applied_taxes"] else "LINE_ITEM")
        rates[t["uid"]] = (t["type"], rate)
    inclusive = [t["uid"] for t in taxes if rates[t["uid"]][0] == "INCLUSIVE"]
    if inclusive:
        combined = {}
        for it in items:
            r = sum((Fraction(*rates[u][1]) for u in inclusive if u in it.entries), Fraction(0))
            combined[id(it)] = r
        for uid in inclusive:
            rate = Fraction(*rates[uid][1])
            members = [it for it in items if uid in it.entries]
            exact = [it.base * rate / (1 + combined[id(it)]) for it in members]
            whole = sum(exact, Fraction(0))
            amount = round_half_even(whole.numerator, whole.denominator)
            for it, share in zip(members, spread(amount, exact)):
                it.incl += share
                it.tax_incl += share
                it.entries[uid]["applied_money"] = m(share)
            rates[uid] = rates[uid] + (amount,)
    for t in taxes:
        uid = t["uid"]
        kind, rate = rates[uid][:2]
        if kind == "INCLUSIVE":
            t["applied_money"] = m(rates[uid][2])
            continue
        members = [it for it in items if uid in it.entries]
        weights = [it.base - it.incl for it in members]
        amount = round_half_even(sum(weights) * rate[0], rate[1])
        for it, share in zip(members, spread(amount, weights)):
            it.tax_add += share
            it.entries[uid]["applied_money"] = m(share)
        t["applied_money"] = m(_check(amount, f"{prefix}.total_tax_money"))

    # line results
    deduct_inclusive = currency in _INCLUSIVE_OUT_OF_GROSS
    total = 0
    tax_total = 0
    for i, li in enumerate(lines):
        path = f"{prefix}.line_items[{i}]"
        it = items[i]
        sales_incl = it.tax_incl
        if sales_incl and taxable_sc[i]:  # the part of it that falls on the line's own sales
            sales_incl = round_half_even(sales_incl * remaining[i], it.base)
        li["gross_sales_money"] = m(gross[i] - sales_incl if deduct_inclusive else gross[i])
        li["total_tax_money"] = m(_check(it.tax_add + it.tax_incl, f"{path}.total_tax_money"))
        li["total_discount_money"] = m(line_disc[i])
        li["total_service_charge_money"] = m(line_sc[i])
        line_total = _check(remaining[i] + line_sc[i] + it.tax_add, f"{path}.total_money")
        li["total_money"] = m(line_total)
        total += line_total
        tax_total += it.tax_add + it.tax_incl
    charge_total = sum(line_sc)
    for _phase, _value, _u, s, _rate, k in subtotal_charges:
        path = f"{prefix}.service_charges[{k}]"
        applied = s["applied_money"]["amount"]
        it = charge_items.get(k)
        add, incl = (it.tax_add, it.tax_incl) if it else (0, 0)
        s["total_tax_money"] = m(add + incl)
        s["total_money"] = m(_check(applied + add, f"{path}.total_money"))
        total += applied + add
        tax_total += add + incl
        charge_total += applied
    for _phase, _value, _u, s, _rate, k in apportioned:
        s["total_tax_money"] = m(0)
        s["total_money"] = s["applied_money"]
    # 6. total-phase charges on everything so far
    before_total_phase = total
    for _phase, value, _u, s, rate, k in total_charges:
        path = f"{prefix}.service_charges[{k}]"
        amount = round_half_even(before_total_phase * rate[0], rate[1]) if rate else value
        s["applied_money"] = m(_check(amount, f"{path}.applied_money"))
        s["total_tax_money"] = m(0)
        s["total_money"] = m(amount)
        total += amount
        charge_total += amount
    order["total_money"] = m(_check(total, f"{prefix}.total_money"))
    order["total_tax_money"] = m(_check(tax_total, f"{prefix}.total_tax_money"))
    order["total_discount_money"] = m(sum(line_disc))
    order["total_tip_money"] = m(0)
    order["total_service_charge_money"] = m(_check(charge_total,
                                                   f"{prefix}.total_service_charge_money"))
    return order


def _check(amount: int, field: str) -> int:
    if amount > INT64_MAX:
        raise violation("pricing.amount_overflow", field=field)
    return amount


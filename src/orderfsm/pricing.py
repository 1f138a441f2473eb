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
applies to, rounded half to even (or down, under the ``adjustment_rounding`` variant), then
apportioned to those items by the largest-remainder method (:func:`spread`): each item gets the
floor of its exact proportional share and the cents left over go to the items with the largest
fractional parts (ties: the larger base, then the earlier item). The shares add up to the adjustment's amount exactly and no share exceeds its
item's base. This reproduces every split in Square's published examples (membership 30 → 8 + 22,
Labor Day 303 → 79 + 224, state tax 510 → 136 + 374, 50 % off 550 → 250 + 300), and unlike
"the last line takes the remainder" it does not depend on the order the lines are listed in.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from fractions import Fraction
from itertools import chain, repeat
from operator import add as _add, sub as _sub
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
    "round_down",
    "ROUNDING",
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
# Quantities already parsed and found valid with the default precision (whole ones up front).
_SIMPLE_QUANTITIES = {str(q): (q, 1) for q in range(1, 1000)}


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def round_half_even(num: int, den: int) -> int:
    """``num / den`` rounded to an integer, half to even (Square's "Bankers' Rounding")."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def round_down(num: int, den: int) -> int:
    """``num / den`` rounded down: the ``adjustment_rounding=down`` variant."""
    return num // den


#: How computed adjustments are rounded, by value of the ``adjustment_rounding`` variant.
ROUNDING: dict[str, Callable[[int, int], int]] = {"half_even": round_half_even,
                                                  "down": round_down}


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


_UID_LISTS = ("line_items", "discounts", "taxes", "service_charges")


def check_request(order: Mapping[str, Any], prefix: str = "order") -> None:
    """Reject, with the request's own field paths, what pricing could not compute: malformed or
    out-of-range quantities and percentages and impossible service-charge phases. Used on
    request bodies (a sparse UpdateOrder body included) before they are merged. Also rejects
    two entries of one list with the same uid (rule pricing.unique_uids)."""
    for list_name in _UID_LISTS:
        seen = set()
        for i, entry in enumerate(order.get(list_name) or ()):
            uid = entry.get("uid") if isinstance(entry, dict) else None
            if type(uid) is not str or not uid:
                continue
            if uid in seen:
                raise violation("pricing.unique_uids", field=f"{prefix}.{list_name}[{i}].uid",
                                uid=uid, list=list_name)
            seen.add(uid)
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
    if type(whole) is int:  # all weights are ints
        # total * w = q * whole + r: each item gets q, and the `rest` with the largest r one more
        # (ties: the larger weight, then the earlier item). Few big-integer operations per item:
        # they are most of the cost.
        rems = [total * w % whole for w in weights]
        rest = sum(rems) // whole  # what the floors leave over
        if not rest:
            return [total * w // whole for w in weights]
        ranked = sorted(rems, reverse=True)
        cut = ranked[rest - 1]
        if rest == n or ranked[rest] != cut:
            # r >= cut exactly when total * w + (whole - cut) reaches the next multiple of whole
            lift = whole - cut
            return [(total * w + lift) // whole for w in weights]
        shares = [(total * w + whole - cut - 1) // whole for w in weights]  # r > cut
        tied = [i for i, r in enumerate(rems) if r == cut]
        tied.sort(key=lambda i: -weights[i])  # stable: the earlier first among equal weights
        for i in tied[:rest - ranked.index(cut)]:
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


_B64_ALNUM = bytes.maketrans(b"+/", b"xZ")
_blake2b = hashlib.blake2b
_b2a = binascii.b2a_base64  # what base64.b64encode calls


def derived_uid(*parts: str) -> str:
    """A stable uid for an entry Square would generate (a pure function of what it refers to)."""
    digest = _blake2b("|".join(parts).encode(), digest_size=18).digest()
    return _b2a(digest, newline=False).translate(_B64_ALNUM).decode()[:22]


# Halves of generated uids, kept across calls: the same lines and adjustments are priced again
# and again (every read of an order). Bounded: emptied when full.
_HALVES: dict[str, dict[str, str]] = {"owner": {}, "adjustment": {}}
_HALVES_MAX = 1 << 14


def _half(kind: str, uid: Any) -> str:
    """``derived_uid(kind, uid)[:11]``: the first 9 bytes of the digest encode to 12 characters."""
    text = uid if type(uid) is str else f"{uid}"
    cache = _HALVES[kind]
    got = cache.get(text)
    if got is None:
        if len(cache) >= _HALVES_MAX:
            cache.clear()
        digest = _blake2b(f"{kind}|{text}".encode(), digest_size=18).digest()
        got = cache[text] = _b2a(digest[:9], newline=False).translate(_B64_ALNUM).decode()[:11]
    return got


# ------------------------------------------------------------------------------ references
_REFS = (("applied_discounts", "discount_uid", "discounts"),
         ("applied_taxes", "tax_uid", "taxes"),
         ("applied_service_charges", "service_charge_uid", "service_charges"))


def _order_scoped(order: Mapping[str, Any], lines: list) -> dict[str, set]:
    """uids of the ORDER-scope discounts, taxes and apportioned service charges. An adjustment
    without a scope is ORDER scope unless a line refers to it."""
    out: dict[str, set] = {}
    for key, ref, top in _REFS:
        scoped = set()
        unscoped = []
        for entry in order.get(top) or ():
            if not isinstance(entry, dict):
                continue
            if top == "service_charges" and not str(entry.get("calculation_phase") or "").startswith(
                    "APPORTIONED"):
                continue
            scope = entry.get("scope")
            if scope == "ORDER":
                scoped.add(entry.get("uid"))
            elif scope is None:
                unscoped.append(entry.get("uid"))
        if unscoped:
            referenced = {a.get(ref) for li in lines for a in li.get(key) or ()
                          if isinstance(a, dict)}
            scoped.update(uid for uid in unscoped if uid not in referenced)
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
    if not (order.get("discounts") or order.get("taxes") or order.get("service_charges")):
        for li in lines:
            for key, _ref, _top in _REFS:
                if li.get(key):
                    li[key] = []
        return
    scoped = _order_scoped(order, lines)
    for key, ref, top in _REFS:
        known = {e.get("uid") for e in order.get(top) or () if isinstance(e, dict)}
        wanted = scoped[key]
        for li in lines:
            current = []
            have = set()
            for a in li.get(key) or ():
                if isinstance(a, dict) and a.get(ref) in known and a.get(ref) not in have:
                    current.append(a)
                    have.add(a.get(ref))
            for uid in (e.get("uid") for e in order.get(top) or () if isinstance(e, dict)):
                if uid in wanted and uid not in have:
                    current.append({"uid": new_uid(), ref: uid})
            for a in current:
                if not a.get("uid"):
                    a["uid"] = new_uid()
            if current or key in li:
                li[key] = current


# ------------------------------------------------------------------------------ pricing
class _Column:
    """The applied entries of one adjustment (a discount, a tax or a service charge).

    ``ids`` are the items it applies to, in item order (lines first, then, for taxes, the taxable
    subtotal-phase charges). ``srcs`` holds, for each, the entry the order already had, or None
    where Square generates one; ``srcs`` is None when every entry is generated, and ``whole`` is
    true when every entry exists and has its uid. ``entries`` are the priced entries, built once
    the adjustment's shares are known."""

    __slots__ = ("ids", "srcs", "whole", "entries")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.srcs: list | None = []
        self.whole = False
        self.entries: list | None = None

    def add(self, idx: int, src: dict | None) -> int:
        """Append item ``idx`` (with its existing entry, or None) and return its position."""
        if src is None and self.srcs is None:
            self.ids.append(idx)
            return len(self.ids) - 1
        if self.srcs is None:
            self.srcs = [None] * len(self.ids)
        self.whole = False
        self.ids.append(idx)
        self.srcs.append(src)
        return len(self.ids) - 1


_dict_get = dict.get
_dict_copy = dict.copy
_UNTOUCHED = "untouched"  # no line gets this kind of reference: lines keep what they have
_CLEARED = "cleared"  # the order has no adjustment of this kind: lines' references are emptied


def _reference_pass(lines: list, key: str, ref: str, known: set, wanted: list) -> tuple[dict, Any]:
    """Which entries each line's ``key`` list will hold, and of which adjustments.

    A line keeps its entries that name a known adjustment (the first for each), in the order it
    lists them, and gets a generated entry for each ORDER-scope adjustment in ``wanted`` it does
    not name. Returns the columns by adjustment uid and a layout: :data:`_CLEARED`,
    :data:`_UNTOUCHED`, ``("uniform", seq)`` when every line holds one entry for each uid of
    ``seq`` in that order (column position = line index), or ``("slots", slots)`` with, per
    line, None (left as it is) or its ``(uid, position in the column)`` pairs in order."""
    if not known:
        return {}, _CLEARED
    cols = {uid: _Column() for uid in known}
    n = len(lines)
    gots = list(map(_dict_get, lines, repeat(key)))
    listed = any(gots)
    distinct = bool(wanted) and len(set(wanted)) == len(wanted)
    if not listed:
        if not wanted:
            return cols, _UNTOUCHED
        if distinct:  # every entry generated, one column per adjustment
            for uid in wanted:
                col = cols[uid]
                col.ids = list(range(n))
                col.srcs = None
            return cols, ("uniform", wanted)
    elif distinct and all(gots):
        # The usual stored order: every line lists the same ORDER-scope adjustments in the same
        # order, each entry with its uid. Checked on all the entries at once.
        k = len(wanted)
        try:
            if set(map(len, gots)) == {k}:
                flat = list(chain.from_iterable(gots))
                seqs = list(map(_dict_get, flat, repeat(ref)))
                first = seqs[:k]
                if (seqs == first * n and set(first) == set(wanted)
                        and all(map(_dict_get, flat, repeat("uid")))):
                    for p, uid in enumerate(first):
                        col = cols[uid]
                        col.ids = list(range(n))
                        col.srcs = flat[p::k]
                        col.whole = True
                    return cols, ("uniform", first)
        except TypeError:  # a list that is not one, or an entry that is not an object
            pass
    elif distinct:
        # As above, where some lines list nothing and get every entry generated.
        first = None
        rows = []
        refs, uids = repeat(ref), repeat("uid")
        for got in gots:
            if not got:
                seq = wanted
                rows.append(None)
            else:
                try:
                    seq = list(map(_dict_get, got, refs))
                    named = all(map(_dict_get, got, uids))
                except TypeError:  # an entry that is not an object
                    break
                if not named:
                    break
                rows.append(got)
            if first is None:
                if len(seq) != len(wanted) or set(seq) != set(wanted):
                    break
                first = seq
            elif seq != first:
                break
        else:
            for p, uid in enumerate(first or ()):
                col = cols[uid]
                col.ids = list(range(n))
                col.srcs = [row[p] if row is not None else None for row in rows]
            return cols, ("uniform", first)
    slots: list = [None] * n
    for i, got in enumerate(gots):
        slot = []
        if not got:
            if not wanted:
                continue
            for uid in wanted:
                slot.append((uid, cols[uid].add(i, None)))
            slots[i] = slot
            continue
        have = set()
        for a in got:
            if type(a) is dict:
                r = a.get(ref)
                if r in known and r not in have:
                    have.add(r)
                    slot.append((r, cols[r].add(i, a)))
        if len(have) < len(wanted) or not have.issuperset(wanted):
            for uid in wanted:
                if uid not in have:
                    slot.append((uid, cols[uid].add(i, None)))
        slots[i] = slot
    return cols, ("slots", slots)


def _price_column(col: _Column, ref: str, uid: Any, owners: list, shares: list | None,
                  cur: str) -> None:
    """Build the column's entries: the existing ones copied, the missing uids and the generated
    entries derived from their item and adjustment, each with its share (no ``applied_money``
    when ``shares`` is None: an adjustment that does not apply to items, such as a subtotal-phase
    service charge a line names)."""
    h = _half("adjustment", uid)
    ids = col.ids
    srcs = col.srcs
    if shares is None:
        col.entries = [dict(a) if a.get("uid") else {**a, "uid": owners[i] + h}
                       for i, a in zip(ids, srcs or ())]
        return
    if col.whole:
        col.entries = entries = list(map(_dict_copy, srcs))
        for e, s in zip(entries, shares):
            e["applied_money"] = {"amount": s, "currency": cur}
        return
    if srcs is None:
        os = owners if len(ids) == len(owners) else [owners[i] for i in ids]
        col.entries = [{"uid": o + h, ref: uid, "applied_money": {"amount": s, "currency": cur}}
                       for o, s in zip(os, shares)]
        return
    out = []
    append = out.append
    for i, a, s in zip(ids, srcs, shares):
        m = {"amount": s, "currency": cur}
        if a is None:
            append({"uid": owners[i] + h, ref: uid, "applied_money": m})
        elif a.get("uid"):
            append({**a, "applied_money": m})
        else:
            append({**a, "uid": owners[i] + h, "applied_money": m})
    col.entries = out


def _rows(cols: dict, layout: Any, lines: list, key: str, rank: dict | None) -> list | None:
    """Each line's new ``key`` list (None for all lines, or for one line: leave its list as it
    is). The layout :data:`_CLEARED` empties the lists of the lines that list anything. With
    ``rank``, a line's entries are ordered by it (stable)."""
    if layout is _UNTOUCHED:
        return None
    if layout is _CLEARED:
        return [[] if li.get(key) else None for li in lines]
    n = len(lines)
    kind, data = layout
    if kind == "uniform":
        seq = data
        if rank is not None and len(seq) > 1:
            seq = sorted(seq, key=rank.__getitem__)
        columns = [cols[uid].entries for uid in seq]
        return [list(row) for row in zip(*columns)] if columns else [[] for _ in range(n)]
    out = []
    for slot in data:
        if slot is None:
            out.append(None)
            continue
        if rank is not None and len(slot) > 1:
            slot = sorted(slot, key=lambda t: rank[t[0]])
        out.append([cols[uid].entries[j] for uid, j in slot])
    return out


def _shared_out(totals: list, ids: list, shares: list, every: bool,
                op: Callable[[int, int], int]) -> list:
    """``totals`` with each item's share combined in by ``op`` (add or subtract). ``every``: the
    shares are one per item, in item order (a new list is returned); otherwise ``ids`` names the
    item of each share and ``totals`` is updated in place."""
    if every:
        return list(map(op, totals, shares))
    for i, share in zip(ids, shares):
        totals[i] = op(totals[i], share)
    return totals


def _with_dicts_replaced(entries: Any, new: list) -> list:
    """``entries`` (a list) with its dicts replaced, in order, by those of ``new``."""
    if len(new) == len(entries):
        return new
    it = iter(new)
    return [next(it) if type(e) is dict else e for e in entries]


def price_order(order: Mapping[str, Any], currency: str, prefix: str = "order", *,
                rounding: str = "half_even") -> dict[str, Any]:
    """Return a priced copy of ``order`` (which is not modified). See :func:`apply_pricing`.

    The copy shares the values pricing only reads (money objects, metadata...) with ``order``;
    treat both as read-only, or deep-copy the result before changing it in place."""
    out = dict(order)
    apply_pricing(out, currency, prefix, rounding=rounding)
    return out


def apply_pricing(order: dict, currency: str, prefix: str = "order", *,
                  rounding: str = "half_even") -> dict[str, Any]:
    """Fill in every computed money field of ``order`` and return it.

    ``order``'s own keys are set; the objects in it are left as they are: every line item,
    modifier, applied entry, discount, tax and service charge that gets a computed field is
    replaced by a new one. ``prefix`` is the field path used in errors ("order" for a request
    body). ``rounding`` is how a computed discount, tax or service charge is rounded:
    "half_even" (Square's documented rule) or "down" (a key of :data:`ROUNDING`). Raises a Square
    error for a malformed percentage or quantity, and for a computed amount beyond int64.
    """
    adjust = ROUNDING[rounding]
    cur = currency
    tops: dict[str, list] = {}
    for name in ("discounts", "taxes", "service_charges"):
        got = order.get(name)
        entries: list = []
        if got and (type(got) is list or type(got) is tuple):
            listed = []
            for e in got:
                if type(e) is dict:
                    e = dict(e)
                    entries.append(e)
                listed.append(e)
            order[name] = listed
            for i, e in enumerate(entries):
                if not e.get("uid"):
                    e["uid"] = derived_uid(name, str(i))
        tops[name] = entries
    discounts, taxes, charges = tops["discounts"], tops["taxes"], tops["service_charges"]
    items = order.get("line_items")
    source = items if type(items) is list or type(items) is tuple else ()
    lines = [li for li in source if type(li) is dict]
    n = len(lines)

    # 1. line amounts
    gross = [0] * n
    variations = [0] * n
    modifiers: list = [None] * n  # each line's priced modifiers, if it has any
    for i, li in enumerate(lines):
        q = li.get("quantity")
        if type(q) is str and q in _SIMPLE_QUANTITIES and "quantity_unit" not in li:
            qn, qd = _SIMPLE_QUANTITIES[q]
        else:
            qn, qd = _line_quantity(li, f"{prefix}.line_items[{i}]")
            if type(q) is str and "quantity_unit" not in li and len(_SIMPLE_QUANTITIES) < 4096:
                _SIMPLE_QUANTITIES[q] = (qn, qd)  # valid with the default precision
        price = li.get("base_price_money")
        price = price.get("amount") if type(price) is dict else None
        variation = (price if type(price) is int else 0) * qn
        if qd != 1:
            variation = round_half_even(variation, qd)
        variations[i] = total = variation
        mods = li.get("modifiers")
        if mods and (type(mods) is list or type(mods) is tuple):
            priced = []
            for j, mod in enumerate(mods):
                if type(mod) is not dict:
                    priced.append(mod)
                    continue
                if mod.get("quantity") is None:
                    mn = md = 1
                else:
                    mn, md = _modifier_quantity(mod, f"{prefix}.line_items[{i}].modifiers[{j}]")
                price = mod.get("base_price_money")
                price = price.get("amount") if type(price) is dict else None
                price = (price if type(price) is int else 0) * mn * qn
                if md * qd != 1:
                    price = round_half_even(price, md * qd)
                if price > INT64_MAX:
                    _overflow(f"{prefix}.line_items[{i}].modifiers[{j}].total_price_money")
                priced.append({**mod, "total_price_money": {"amount": price, "currency": cur}})
                total += price
            modifiers[i] = priced
        if total > INT64_MAX:
            _overflow(f"{prefix}.line_items[{i}]." + (
                "variation_total_price_money" if variation > INT64_MAX else "gross_sales_money"))
        gross[i] = total

    if not discounts and not taxes and not charges:  # nothing to adjust: the common order
        new_lines = []
        for li, amount, variation, mods in zip(lines, gross, variations, modifiers):
            out = li.copy()
            out["variation_total_price_money"] = {"amount": variation, "currency": cur}
            if mods is not None:
                out["modifiers"] = mods
            for key, _ref, _top in _REFS:
                if li.get(key):
                    out[key] = []
            out["gross_sales_money"] = {"amount": amount, "currency": cur}
            out["total_tax_money"] = {"amount": 0, "currency": cur}
            out["total_discount_money"] = {"amount": 0, "currency": cur}
            out["total_service_charge_money"] = {"amount": 0, "currency": cur}
            out["total_money"] = {"amount": amount, "currency": cur}
            new_lines.append(out)
        if type(items) is list or type(items) is tuple:
            order["line_items"] = _with_dicts_replaced(items, new_lines)
        total = sum(gross)
        if total > INT64_MAX:
            _overflow(f"{prefix}.total_money")
        order["total_money"] = {"amount": total, "currency": cur}
        for key in ("total_tax_money", "total_discount_money", "total_tip_money",
                    "total_service_charge_money"):
            order[key] = {"amount": 0, "currency": cur}
        return order

    scoped = _order_scoped(tops, lines)
    # The discounts in the sequence they are taken (step 2 below). Percentages are compared as
    # integers over their common denominator (a power of ten); amounts as they are.
    plan = []
    den = 1
    discount_rates = []
    for k, d in enumerate(discounts):
        d["type"], rate = _discount_rate(d, f"{prefix}.discounts[{k}]")
        discount_rates.append(rate)
        if rate is not None:
            den = max(den, rate[1])
    for d, rate in zip(discounts, discount_rates):
        if rate is not None:
            value = rate[0] * (den // rate[1])
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
    rank = {p[3]["uid"]: r for r, p in enumerate(plan)}

    # Each line's half of a generated uid (the other half names the adjustment).
    half = _half
    known_owners = _HALVES["owner"]
    owners = []
    for i, li in enumerate(lines):
        text = str(li.get("uid") or i)
        owners.append(known_owners.get(text) or half("owner", text))
    refs = {}
    for key, ref, top in _REFS:
        entries = tops[top]
        wanted = [e["uid"] for e in entries if e["uid"] in scoped[key]]
        if key == "applied_discounts":
            wanted.sort(key=rank.__getitem__)  # generated references come in the plan's order
        refs[key] = _reference_pass(lines, key, ref, {e["uid"] for e in entries}, wanted)

    # 2. discounts
    remaining = gross[:]  # each line's gross less its discounts so far
    disc_cols = refs["applied_discounts"][0]
    for _step, value, _s, d, rate in plan:
        col = disc_cols[d["uid"]]
        ids = col.ids
        every_line = len(ids) == n  # ids come in line order, one per line
        weights = remaining if every_line else [remaining[i] for i in ids]
        base = sum(weights)
        amount = adjust(base * rate[0], rate[1]) if rate is not None else min(value, base)
        shares = spread(amount, weights)
        remaining = _shared_out(remaining, ids, shares, every_line, _sub)
        _price_column(col, "discount_uid", d["uid"], owners, shares, cur)
        d["applied_money"] = {"amount": amount, "currency": cur}
    if len(plan) > 1:
        order["discounts"] = [p[3] for p in plan] + [d for d in order["discounts"]
                                                     if type(d) is not dict]

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
    sc_cols = refs["applied_service_charges"][0]
    for _phase, value, _s, s, rate, _k in apportioned:
        col = sc_cols[s["uid"]]
        ids = col.ids
        weights = [running[i] for i in ids]
        amount = adjust(sum(weights) * rate[0], rate[1]) if rate else value
        if not ids:
            amount = 0
        elif amount and not any(weights):  # a fixed charge on lines that are all zero: even split
            weights = [1] * len(ids)
        taxable = bool(s.get("taxable"))
        shares = spread(amount, weights)
        for i, share in zip(ids, shares):
            running[i] += share
            line_sc[i] += share
            if taxable:
                taxable_sc[i] += share
        _price_column(col, "service_charge_uid", s["uid"], owners, shares, cur)
        s["applied_money"] = {"amount": amount, "currency": cur}
    subtotal = sum(running)
    for _phase, value, _s, s, rate, k in subtotal_charges:
        amount = adjust(subtotal * rate[0], rate[1]) if rate else value
        if amount > INT64_MAX:
            _overflow(f"{prefix}.service_charges[{k}].applied_money")
        s["applied_money"] = {"amount": amount, "currency": cur}

    # 5. taxes, on "items": the lines (0..n-1), then the taxable subtotal-phase charges
    tax_base = list(map(_add, remaining, taxable_sc))
    tax_cols = refs["applied_taxes"][0]
    item_owners = owners
    charge_item: dict[int, int] = {}
    charge_slots = []  # (charge, its (tax uid, position in the column) pairs)
    order_taxes = [t["uid"] for t in taxes if t["uid"] in scoped["applied_taxes"]]
    for _phase, _value, _s, s, _rate, k in subtotal_charges:
        if not s.get("taxable"):
            continue
        if item_owners is owners:
            item_owners = owners[:]
        idx = len(tax_base)
        charge_item[k] = idx
        tax_base.append(s["applied_money"]["amount"])
        item_owners.append(half("owner", str(s["uid"])))
        slot = []
        have = set()
        for a in s.get("applied_taxes") or ():
            if type(a) is dict and a.get("tax_uid") in tax_cols and a["tax_uid"] not in have:
                have.add(a["tax_uid"])
                slot.append((a["tax_uid"], tax_cols[a["tax_uid"]].add(idx, a)))
        for uid in order_taxes:
            if uid not in have:
                slot.append((uid, tax_cols[uid].add(idx, None)))
        charge_slots.append((s, slot))
    n_items = len(tax_base)
    incl = [0] * n_items
    add = [0] * n_items
    rates = {}
    for k, t in enumerate(taxes):
        t["type"], rate = _tax_rate(t, f"{prefix}.taxes[{k}]")
        t.setdefault("scope", "ORDER" if t["uid"] in scoped["applied_taxes"] else "LINE_ITEM")
        rates[t["uid"]] = rate
    inclusive = [t["uid"] for t in taxes if t["type"] == "INCLUSIVE"]
    applied_tax: dict[Any, int] = {}
    if inclusive:
        # Rates over one common denominator D: a tax of a/D on an item whose inclusive rates add
        # up to A/D holds base * a / (D + A) of the item's price.
        den = max(rates[uid][1] for uid in inclusive)  # powers of ten: the largest is common
        scaled = {uid: rates[uid][0] * (den // rates[uid][1]) for uid in inclusive}
        combined: list | None = None  # with one inclusive tax, its rate is every item's combined
        if len(inclusive) > 1:
            combined = [0] * n_items
            for uid in inclusive:
                a_rate = scaled[uid]
                for idx in tax_cols[uid].ids:
                    combined[idx] += a_rate
        for uid in inclusive:
            a_rate = scaled[uid]
            col = tax_cols[uid]
            ids = col.ids
            every_item = len(ids) == n_items  # one per item, lines first, in order
            weights: list
            if combined is None:
                dens = {den + a_rate} if ids else set()
            else:
                dens = {den + combined[idx] for idx in ids}
            if len(dens) <= 1:  # one combined rate (the usual case): the bases are the weights
                d_all = dens.pop() if dens else 1
                weights = tax_base if every_item else [tax_base[idx] for idx in ids]
                amount = adjust(sum(weights) * a_rate, d_all)
            else:
                weights = [Fraction(tax_base[idx] * a_rate, den + combined[idx]) for idx in ids]
                whole = sum(weights, Fraction(0))
                amount = adjust(whole.numerator, whole.denominator)
            shares = spread(amount, weights)
            incl = _shared_out(incl, ids, shares, every_item, _add)
            _price_column(col, "tax_uid", uid, item_owners, shares, cur)
            applied_tax[uid] = amount
    net_of_inclusive: list | None = None  # each item's base less its inclusive taxes
    for t in taxes:
        uid = t["uid"]
        if t["type"] == "INCLUSIVE":
            t["applied_money"] = {"amount": applied_tax[uid], "currency": cur}
            continue
        rate = rates[uid]
        col = tax_cols[uid]
        ids = col.ids
        every_item = len(ids) == n_items  # one per item, lines first, in order
        if every_item:
            if net_of_inclusive is None:
                net_of_inclusive = list(map(_sub, tax_base, incl))
            weights = net_of_inclusive
        else:
            weights = [tax_base[idx] - incl[idx] for idx in ids]
        amount = adjust(sum(weights) * rate[0], rate[1])
        shares = spread(amount, weights)
        add = _shared_out(add, ids, shares, every_item, _add)
        _price_column(col, "tax_uid", uid, item_owners, shares, cur)
        t["applied_money"] = {"amount": amount, "currency": cur}
    for s, slot in charge_slots:
        s["applied_taxes"] = [tax_cols[uid].entries[j] for uid, j in slot]
    # entries of adjustments that apply to no item (a line naming a subtotal-phase charge)
    for key, ref, _top in _REFS:
        for uid, col in refs[key][0].items():
            if col.entries is None:
                _price_column(col, ref, uid, owners, None, cur)

    # line results
    rows = [(key, _rows(refs[key][0], refs[key][1], lines, key,
                        rank if key == "applied_discounts" and len(plan) > 1 else None))
            for key, _ref, _top in _REFS]
    rows = [(key, got) for key, got in rows if got is not None]
    deduct_inclusive = cur in _INCLUSIVE_OUT_OF_GROSS
    total = 0
    tax_total = 0
    discount_total = 0
    new_lines = []
    for i, li, g, net, sc, l_add, l_incl in zip(range(n), lines, gross, remaining, line_sc, add,
                                                incl):
        sales_incl = l_incl
        if l_incl and taxable_sc[i]:  # the part of it that falls on the line's own sales
            sales_incl = round_half_even(l_incl * net, tax_base[i])
        line_tax = l_add + l_incl
        line_total = net + sc + l_add
        if line_total > INT64_MAX or line_tax > INT64_MAX:
            _overflow(f"{prefix}.line_items[{i}]." + (
                "total_money" if line_total > INT64_MAX else "total_tax_money"))
        out = li.copy()
        out["variation_total_price_money"] = {"amount": variations[i], "currency": cur}
        if modifiers[i] is not None:
            out["modifiers"] = modifiers[i]
        for key, got in rows:
            if got[i] is not None:
                out[key] = got[i]
        out["gross_sales_money"] = {"amount": g - sales_incl if deduct_inclusive else g,
                                    "currency": cur}
        out["total_tax_money"] = {"amount": line_tax, "currency": cur}
        out["total_discount_money"] = {"amount": g - net, "currency": cur}
        out["total_service_charge_money"] = {"amount": sc, "currency": cur}
        out["total_money"] = {"amount": line_total, "currency": cur}
        new_lines.append(out)
        total += line_total
        tax_total += line_tax
        discount_total += g - net
    if type(items) is list or type(items) is tuple:
        order["line_items"] = _with_dicts_replaced(items, new_lines)
    charge_total = sum(line_sc)
    for _phase, _value, _s, s, _rate, k in subtotal_charges:
        applied = s["applied_money"]["amount"]
        idx = charge_item.get(k)
        c_add, c_incl = (add[idx], incl[idx]) if idx is not None else (0, 0)
        if applied + c_add > INT64_MAX:
            _overflow(f"{prefix}.service_charges[{k}].total_money")
        s["total_tax_money"] = {"amount": c_add + c_incl, "currency": cur}
        s["total_money"] = {"amount": applied + c_add, "currency": cur}
        total += applied + c_add
        tax_total += c_add + c_incl
        charge_total += applied
    for _phase, _value, _s, s, _rate, k in apportioned:
        s["total_tax_money"] = {"amount": 0, "currency": cur}
        s["total_money"] = dict(s["applied_money"])
    # 6. total-phase charges on everything so far
    before_total_phase = total
    for _phase, value, _s, s, rate, k in total_charges:
        amount = adjust(before_total_phase * rate[0], rate[1]) if rate else value
        if amount > INT64_MAX:
            _overflow(f"{prefix}.service_charges[{k}].applied_money")
        s["applied_money"] = {"amount": amount, "currency": cur}
        s["total_tax_money"] = {"amount": 0, "currency": cur}
        s["total_money"] = {"amount": amount, "currency": cur}
        total += amount
        charge_total += amount
    for key, amount in (("total_money", total), ("total_tax_money", tax_total),
                        ("total_service_charge_money", charge_total)):
        if amount > INT64_MAX:
            _overflow(f"{prefix}.{key}")
    order["total_money"] = {"amount": total, "currency": cur}
    order["total_tax_money"] = {"amount": tax_total, "currency": cur}
    order["total_discount_money"] = {"amount": discount_total, "currency": cur}
    order["total_tip_money"] = {"amount": 0, "currency": cur}
    order["total_service_charge_money"] = {"amount": charge_total, "currency": cur}
    return order


def _overflow(field: str) -> None:
    raise violation("pricing.amount_overflow", field=field)

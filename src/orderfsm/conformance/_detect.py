"""Which value of each disputed rule a server behaves like.

For every variant there is a small probe: a fixed call sequence whose outcome differs between
the variant's values. The probe runs once on the server (through the SDK), recording every
answer and every object's compared fields after each call; then an oracle per value replays it.
A value is detected when its oracle agrees with the server on every step, and only that value
does.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import httpx

from ..rules import VARIANTS, Variants
from ._calls import KEY, LOCATION, Call, Produce, Ref, Version
from ._report import VariantFinding, VariantReport
from ._runner import ConformanceError, Target, _Context, connect
from ._session import Step, disagreement
from ._sides import KIND_OF, ServerSide, ServerUnreachable

__all__ = ["detect_variants", "PROBES"]

_PICKUP = {"uid": "f1", "type": "PICKUP", "state": "PROPOSED",
           "pickup_details": {"recipient": {"display_name": "Probe"},
                              "pickup_at": "2026-02-01T12:00:00Z"}}


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def _order(currency: str, pickup: bool) -> Call:
    order: dict[str, Any] = {
        "location_id": LOCATION,
        "line_items": [{"uid": "li1", "name": "Probe", "quantity": "1",
                        "base_price_money": _money(1000, currency)}],
    }
    if pickup:
        order["fulfillments"] = [dict(_PICKUP)]
    return Call("orders", "create", (), {"order": order, "idempotency_key": KEY}, (Produce("o1"),))


def _pay(currency: str) -> Call:
    return Call("payments", "create", (), {
        "source_id": "cnon:card-nonce-ok", "idempotency_key": KEY,
        "amount_money": _money(1000, currency), "order_id": Ref("o1"), "autocomplete": True,
    }, (Produce("p1"),))


def _refund(currency: str, amount: int, label: str) -> Call:
    return Call("refunds", "refund_payment", (), {
        "idempotency_key": KEY, "payment_id": Ref("p1"), "amount_money": _money(amount, currency),
        "reason": "probe"}, (Produce(label),))


def _update(**fields: Any) -> Call:
    order = {"location_id": LOCATION, "version": Version("o1"), **fields}
    return Call("orders", "update", (Ref("o1"),), {"order": order, "idempotency_key": KEY})


def _cancel_after_payment(c: str) -> list[Call]:
    # Paid, refunded, pickup canceled: only the order's own cancel is left to decide.
    return [_order(c, True), _pay(c), _refund(c, 1000, "r1"),
            _update(fulfillments=[{"uid": "f1", "state": "CANCELED"}]), _update(state="CANCELED")]


def _cancel_open_fulfillments(c: str) -> list[Call]:
    return [_order(c, True), _update(state="CANCELED")]


def _autocomplete(c: str) -> list[Call]:
    return [_order(c, False), _pay(c)]


def _refund_while_pending(c: str) -> list[Call]:
    # A pickup keeps the paid order OPEN whatever autocomplete_order_on_payment says.
    return [_order(c, True), _pay(c), _refund(c, 300, "r1"), _refund(c, 300, "r2")]


def _complete_before_payment(c: str) -> list[Call]:
    return [_order(c, True), _update(fulfillments=[{"uid": "f1", "state": "COMPLETED"}])]


def _adjustment_rounding(c: str) -> list[Call]:
    # 10 % of 915 is 91.5: 92 half to even, 91 rounded down (the forum's JPY order).
    order = {"location_id": LOCATION,
             "line_items": [{"uid": "li1", "name": "Probe", "quantity": "1",
                             "base_price_money": _money(915, c)}],
             "discounts": [{"uid": "d1", "name": "Ten", "percentage": "10", "scope": "ORDER"}]}
    return [Call("orders", "create", (), {"order": order, "idempotency_key": KEY},
                 (Produce("o1"),))]


# In the order they run: later probes are judged with the values found by earlier ones.
PROBES: dict[str, Callable[[str], list[Call]]] = {
    "autocomplete_order_on_payment": _autocomplete,
    "cancel_open_fulfillments": _cancel_open_fulfillments,
    "fulfillment_complete_before_payment": _complete_before_payment,
    "cancel_after_payment": _cancel_after_payment,
    "refund_while_pending": _refund_while_pending,
    "adjustment_rounding": _adjustment_rounding,
}


def _record(server: ServerSide, calls: list[Call]) -> list[Step]:
    """Run the probe on the server alone; keep its answers and every object's fields."""
    steps = []
    for call in calls:
        s = server.execute(call)
        st = Step(call, (), {}, s.summary(), server_object=s.obj is not None)
        produced = []
        if s.obj is not None:
            for p in call.produces:
                ident = getattr(s.obj, p.attr)
                if ident:
                    server.register(p.label, ident)
                    produced.append(p.label)
        st.produced = tuple(produced)
        for label in server.ids:
            obj = server.read(KIND_OF[label[0]], label)
            st.server_views[label] = None if obj is None else server.view(KIND_OF[label[0]], obj)
        steps.append(st)
    return steps


def _same(kind: str, name: str, expected: Any, actual: Any) -> bool:
    return expected == actual


def detect_variants(
    base_url: str,
    token: str,
    *,
    httpx_client: httpx.Client | None = None,
    variants: Iterable[str] | None = None,
    target: Target | None = None,
) -> VariantReport:
    """Probe the server once per disputed rule and name the variant value it behaves like.

    ``variants`` limits the probes to those variant names (all of them by default)."""
    wanted = list(variants) if variants is not None else list(VARIANTS)
    unknown = [n for n in wanted if n not in PROBES]
    if unknown:
        raise ConformanceError(f"no probe for {', '.join(unknown)}; known: {', '.join(PROBES)}")
    names = [n for n in PROBES if n in wanted]
    own_target = target is None
    if target is None:
        target = connect(base_url, token, httpx_client=httpx_client)
    ctx = _Context(target, Variants(), sweep=False,
                   refund_settle_seconds=target.control.refund_settle_seconds or 10.0)
    findings = []
    base = Variants()
    try:
        for name in names:
            rule, variant = VARIANTS[name]
            calls = PROBES[name](target.currency)
            server = ServerSide(target.client, target.control, target.location_id)
            try:
                steps = _record(server, calls)
            except ServerUnreachable as exc:
                raise ConformanceError(str(exc)) from None
            matches, differences = [], {}
            for value in variant.values:
                oracle = ctx.make_oracle({**base, name: value})
                why = disagreement(steps, oracle, _same)
                if why is None:
                    matches.append(value)
                else:
                    differences[value] = why
            detected = matches[0] if len(matches) == 1 else None
            if detected is not None:
                base[name] = detected
            findings.append(VariantFinding(name, rule.id, variant.default, detected, matches,
                                           differences, [st.call.describe() for st in steps]))
    finally:
        if own_target:
            target.close()
    return VariantReport(base_url, findings)


"""Cancelling an order that may already be paid, partly refunded or being fulfilled.

Square will not cancel an order once a payment on it was captured, not even after a full refund
(rule ``order.cancel_after_payment``). What a caller can do depends on the payments (APPROVED
ones are voided, COMPLETED ones refunded), the fulfillments, and the rule variant the server
follows. This module has two halves:

* :func:`plan_cancellation` turns an order with its payments and refunds (SDK models or plain
  dicts) into a :class:`Plan`: the API calls to make, in order, and the end state they lead to.
  The planner proposes; a throwaway :class:`~orderfsm.engine.Engine` loaded with the same records
  decides. Every prediction (which call succeeds, which one fails and with which catalog rule,
  the final states) comes from running the plan on that engine, so the rules live in one place.
* :func:`cancel_order` runs a plan through a ``square.Square`` client and returns an
  :class:`Outcome`. It plans at the server's time (``now=``, ``GET /_sim/clock`` or the
  ``Date`` header), re-reads the order before every UpdateOrder, retries once after a
  VERSION_MISMATCH, re-plans after a rejection the plan did not predict, and derives
  idempotency keys from what it observed, so running it again after a crash replays or skips
  what was done instead of refunding twice.

Strategies (see docs/strategies.md for the trade-offs):

``naive_refund_then_cancel``
    Refund every captured payment, then UpdateOrder ``state=CANCELED``. The seed thread's
    anti-pattern: it fails with "Orders cannot be canceled after payments have been processed."
    It can stop earlier, at a refund the rules reject (``refund.after_failed`` once a refund of
    the payment failed, ``refund.too_old`` for a payment over a year old).
``refund_then_cancel_fulfillments_then_cancel``
    Void APPROVED payments, refund captured ones, cancel the open fulfillments, then cancel the
    order (the last post of the seed thread). Stops at the first call the rules reject.
``void_then_cancel``
    Void APPROVED payments, then one UpdateOrder that cancels the fulfillments and the order
    together. Meant for orders with nothing captured, or nothing left to refund: captured money
    is left alone (with nothing to void it is that single UpdateOrder).
``cancel_fulfillments_only``
    Cancel the open fulfillments and nothing else: the order stays OPEN but leaves the POS and
    dashboard queues. No money moves.
``refund_only``
    Void APPROVED payments and refund captured ones; the order is not touched (COMPLETED orders
    cannot be updated at all).
``auto``
    The first of ``void_then_cancel`` (only when nothing was ever captured) and
    ``refund_then_cancel_fulfillments_then_cancel`` that the engine predicts to succeed in full;
    otherwise every call of the latter that the engine accepts, the rejected ones left out and
    reported in :attr:`Plan.ruled_out` (``picked`` then names what is left, for example
    ``refund_only+cancel_fulfillments_only``). It never adds a fulfillment to a paid order to
    make it cancelable (``order.fulfillment_added_after_payment``).
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from .clock import ManualClock, parse_rfc3339, rfc3339
from .engine import Engine
from .errors import SquareError
from .lifecycles.fulfillment import TERMINAL as FULFILLMENT_TERMINAL
from .lifecycles.fulfillment import TYPES as FULFILLMENT_DETAILS
from .rules import CATALOG, Variants

__all__ = [
    "STRATEGIES",
    "Step",
    "RuledOut",
    "EndState",
    "Plan",
    "StepResult",
    "Outcome",
    "plan_cancellation",
    "cancel_order",
    "rule_for_error",
]

STRATEGIES = (
    "auto",
    "naive_refund_then_cancel",
    "refund_then_cancel_fulfillments_then_cancel",
    "void_then_cancel",
    "cancel_fulfillments_only",
    "refund_only",
)

CANCEL_PAYMENT = "CancelPayment"
REFUND_PAYMENT = "RefundPayment"
UPDATE_ORDER = "UpdateOrder"

# The catalog rules behind each kind of step (why the step exists and what it must respect).
_VOID_RULES = ("refund.payment_needs_completion", "order.cancel_after_payment")
_REFUND_RULES = ("refund.amount_exceeds", "refund.original_order_unchanged")
_FULFILLMENT_RULES = ("fulfillment.cancel_any_time", "order.version_mismatch")
_CANCEL_RULES = ("order.cancel_after_payment", "order.cancel_open_fulfillments",
                 "order.version_mismatch")
for _rule in (*_VOID_RULES, *_REFUND_RULES, *_FULFILLMENT_RULES, *_CANCEL_RULES):
    if _rule not in CATALOG:  # pragma: no cover - guards the tables above
        raise RuntimeError(f"strategies cite unknown rule {_rule}")

_CANCEL_REASON_MAX = 100  # *_details.cancel_reason
_REFUND_REASON_MAX = 192  # RefundPaymentRequest.reason
_DEFAULT_RO: dict[str, Any] = {"max_retries": 0}


# ===================================================================================== data
@dataclass(frozen=True, slots=True)
class Step:
    """One API call of a plan.

    ``action`` is CancelPayment, RefundPayment or UpdateOrder; ``target`` the payment or order
    id. ``amount`` is the money a refund returns or a void releases. An UpdateOrder moves the
    ``fulfillments`` (uids) to CANCELED and, when ``state`` is set, the order to that state.
    ``expect`` is the catalog rule the engine predicts will reject the call (None: it succeeds).
    """

    action: str
    target: str
    amount: int = 0
    currency: str = "USD"
    fulfillments: tuple[str, ...] = ()
    state: str | None = None
    rules: tuple[str, ...] = ()
    expect: str | None = None
    expect_error: Mapping[str, Any] | None = None

    @property
    def http(self) -> str:
        if self.action == CANCEL_PAYMENT:
            return f"POST /v2/payments/{self.target}/cancel"
        if self.action == REFUND_PAYMENT:
            return "POST /v2/refunds"
        return f"PUT /v2/orders/{self.target}"

    def describe(self) -> str:
        if self.action == CANCEL_PAYMENT:
            return f"CancelPayment {self.target} (releases {self.amount} {self.currency})"
        if self.action == REFUND_PAYMENT:
            return f"RefundPayment {self.target} {self.amount} {self.currency}"
        parts = [f"fulfillments {','.join(self.fulfillments)} -> CANCELED"] if self.fulfillments else []
        if self.state:
            parts.append(f"state={self.state}")
        return f"UpdateOrder {self.target} " + " + ".join(parts)


@dataclass(frozen=True, slots=True)
class RuledOut:
    """A step ``auto`` left out because the engine rejects it, with the rule and its error."""

    step: Step
    rule: str | None
    error: Mapping[str, Any]


@dataclass(frozen=True)
class EndState:
    """Order state, each fulfillment's state (by uid), each payment's status and the money
    refunded on it (pending plus completed refunds, as ``refunded_money``)."""

    order_state: str
    fulfillments: dict[str, str]
    payments: dict[str, str]
    refunded: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"order_state": self.order_state, "fulfillments": dict(self.fulfillments),
                "payments": dict(self.payments), "refunded": dict(self.refunded)}


@dataclass(frozen=True)
class Plan:
    """What a strategy will do to one order and where the engine says it ends.

    ``steps`` are the calls to make; the last one may carry ``expect`` (predicted to fail), and
    execution stops there (``unreached`` holds what comes after). ``picked`` is the strategy
    ``auto`` chose (equal to ``strategy`` otherwise). ``refund_money`` and ``void_money`` are the
    predicted new refunds and released authorizations. ``rules`` lists every catalog rule that
    shaped the plan, including the ones behind predicted or avoided rejections. ``now`` is the
    server time the time-based rules (``refund.too_old``) were judged at.
    """

    strategy: str
    picked: str
    order_id: str
    currency: str
    steps: tuple[Step, ...]
    start: EndState
    predicted: EndState
    refund_money: int
    void_money: int
    unreached: tuple[Step, ...] = ()
    ruled_out: tuple[RuledOut, ...] = ()
    rules: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    now: datetime | None = None

    @property
    def failure(self) -> Step | None:
        """The step predicted to be rejected, if any."""
        return self.steps[-1] if self.steps and self.steps[-1].expect else None

    @property
    def goal_reached(self) -> bool:
        return self.predicted.order_state == "CANCELED"

    def describe(self) -> str:
        lines = [f"{self.strategy}" + (f" (picked {self.picked})" if self.picked != self.strategy else "")
                 + f" for order {self.order_id}:"]
        for i, s in enumerate(self.steps, 1):
            verdict = f"  -> rejected [{s.expect}]" if s.expect else ""
            lines.append(f"  {i}. {s.describe()}{verdict}")
        for r in self.ruled_out:
            lines.append(f"  left out: {r.step.describe()} [{r.rule}]")
        p = self.predicted
        lines.append(f"  ends: order {p.order_state}, fulfillments {p.fulfillments or '{}'}, "
                     f"payments {p.payments or '{}'}, refunds {self.refund_money}, "
                     f"voids {self.void_money} {self.currency}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class StepResult:
    """One executed call: what was sent and what came back. ``unpredicted`` marks a rejection
    the plan did not foresee (the executor re-planned and went on)."""

    step: Step
    request: str
    body: Mapping[str, Any]
    ok: bool
    status: int = 200
    errors: tuple[Mapping[str, Any], ...] = ()
    rule: str | None = None
    response: Mapping[str, Any] = field(default_factory=dict)
    retried: bool = False
    unpredicted: bool = False

    def describe(self) -> str:
        head = f"{self.request} -> {self.status}"
        if self.ok:
            return head + (" (after a VERSION_MISMATCH retry)" if self.retried else "")
        e = self.errors[0] if self.errors else {}
        tail = " (not predicted: re-planned)" if self.unpredicted else ""
        return f"{head} {e.get('code')}: {e.get('detail')} [{self.rule}]{tail}"


@dataclass(frozen=True)
class Outcome:
    """The result of :func:`cancel_order`.

    ``final`` is read back from the server after the last call. ``refunded_money`` and
    ``voided_money`` count what the server accepted during this run. ``error`` is the step whose
    rejection the plan predicted, which ends the run; ``unpredicted`` the rejections the plan did
    not foresee, after each of which the executor read the order again, re-planned without the
    rejected call and went on (``plans`` holds every plan, ``plan`` the first). ``rules_hit``
    lists the catalog rules of every rejection met, including a VERSION_MISMATCH that was
    retried. ``now`` is the server time the plans used and ``clock`` where it came from
    (``argument``, ``/_sim/clock``, ``Date header`` or ``records``).
    """

    order_id: str
    strategy: str
    picked: str
    plan: Plan
    steps: tuple[StepResult, ...]
    final: EndState
    refunded_money: int
    voided_money: int
    rules_hit: tuple[str, ...]
    error: StepResult | None = None
    plans: tuple[Plan, ...] = ()
    now: datetime | None = None
    clock: str = "records"

    @property
    def unpredicted(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.steps if r.unpredicted)

    @property
    def ok(self) -> bool:
        """Every call was accepted: nothing was rejected, predicted or not."""
        return self.error is None and not self.unpredicted

    @property
    def canceled(self) -> bool:
        return self.final.order_state == "CANCELED"

    def describe(self) -> str:
        lines = [f"{self.strategy}" + (f" (picked {self.picked})" if self.picked != self.strategy else "")
                 + f" on order {self.order_id}:"]
        lines.extend(f"  {r.describe()}" for r in self.steps)
        f = self.final
        lines.append(f"  final: order {f.order_state}, fulfillments {f.fulfillments or '{}'}, "
                     f"payments {f.payments or '{}'}; refunded {self.refunded_money}, "
                     f"voided {self.voided_money} {self.plan.currency}")
        if len(self.plans) > 1:
            lines.append(f"  re-planned {len(self.plans) - 1} time(s); last plan picked "
                         f"{self.plans[-1].picked}")
        return "\n".join(lines)


# ============================================================================ plain records
_ALIASES: dict[type, dict[str, str]] = {}


def _aliases(cls: type) -> dict[str, str]:
    table = _ALIASES.get(cls)
    if table is None:
        fields = getattr(cls, "model_fields", {}) or {}
        table = {name: f.alias for name, f in fields.items() if getattr(f, "alias", None)}
        _ALIASES[cls] = table
    return table


def _plain(value: Any) -> Any:
    """JSON-shaped data from SDK models (pydantic), dicts or lists; ``None`` values dropped.

    Walks the model's attributes directly: the SDK's own ``model_dump`` costs milliseconds per
    order."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if type(value) is list:
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    attrs = getattr(value, "__dict__", None)
    if attrs is not None and hasattr(type(value), "model_fields"):
        aliases = _aliases(type(value))
        out = {aliases.get(k, k): _plain(v) for k, v in attrs.items() if v is not None}
        extra = getattr(value, "__pydantic_extra__", None) or {}
        out.update({k: _plain(v) for k, v in extra.items() if v is not None})
        return out
    enum_value = getattr(value, "value", None)
    if isinstance(enum_value, str):
        return enum_value
    raise TypeError(f"cannot read {type(value).__name__} as Square JSON")


def _amount(m: Any) -> int:
    return int(m.get("amount") or 0) if isinstance(m, Mapping) else 0


def _payment_total(p: Mapping[str, Any]) -> int:
    if isinstance(p.get("total_money"), Mapping):
        return _amount(p["total_money"])
    return _amount(p.get("amount_money")) + _amount(p.get("tip_money"))


def _refundable(p: Mapping[str, Any]) -> int:
    return max(_payment_total(p) - _amount(p.get("refunded_money")), 0)


def _open_fulfillments(order: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(f["uid"] for f in order.get("fulfillments") or []
                 if f.get("uid") and f.get("state", "PROPOSED") not in FULFILLMENT_TERMINAL)


def _tender_payment_ids(order: Mapping[str, Any]) -> list[str]:
    ids = []
    for t in order.get("tenders") or []:
        pid = t.get("payment_id") or t.get("id")
        if pid and pid not in ids:
            ids.append(pid)
    return ids


def _end_state(order: Mapping[str, Any], payments: Iterable[Mapping[str, Any]]) -> EndState:
    return EndState(
        order_state=order.get("state", "OPEN"),
        fulfillments={f["uid"]: f.get("state", "PROPOSED")
                      for f in order.get("fulfillments") or [] if f.get("uid")},
        payments={p["id"]: p.get("status") for p in payments},
        refunded={p["id"]: _amount(p.get("refunded_money")) for p in payments},
    )


# ================================================================== the throwaway engine
# Order fields Square computes; the engine derives them again from the line items.
_COMPUTED_ORDER_FIELDS = frozenset({
    "tenders", "refunds", "return_amounts", "net_amounts", "rounding_adjustment", "total_money",
    "total_tax_money", "total_discount_money", "total_tip_money", "total_service_charge_money",
    "net_amount_due_money", "rewards",
})


class _World:
    """The records of one order, ready to be loaded into fresh throwaway engines."""

    def __init__(self, order: Any, payments: Iterable[Any], refunds: Iterable[Any] | None,
                 variants: Variants, now: datetime | None) -> None:
        o = _plain(order)
        if not isinstance(o, dict) or not o.get("id"):
            raise ValueError("the order must have an id")
        self.order_id: str = o["id"]
        given = [_plain(p) for p in payments]
        mine = {p["id"]: p for p in given if p.get("id") and p.get("order_id") in (None, self.order_id)}
        missing = [pid for pid in _tender_payment_ids(o) if pid not in mine]
        if missing:
            raise ValueError(f"payments {', '.join(missing)} of order {self.order_id} were not given")
        self.payments = sorted(mine.values(), key=lambda p: (p.get("created_at") or "", p["id"]))
        for p in self.payments:
            p.setdefault("order_id", self.order_id)
            p.setdefault("total_money", {"amount": _payment_total(p),
                                         "currency": (p.get("amount_money") or {}).get("currency")})
        self.order = o
        self.currency = self._currency()
        self.refunds = self._refunds(refunds)
        self.variants = variants
        latest = self._latest()
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        # The server's time is never before the records it wrote (a Date header has whole
        # seconds only).
        self.now = max(now, latest) if now is not None else latest
        self._snapshot = self._build_snapshot()

    def _currency(self) -> str:
        for m in (self.order.get("total_money"),
                  *(p.get("amount_money") for p in self.payments)):
            if isinstance(m, Mapping) and m.get("currency"):
                return m["currency"]
        return "USD"

    def _refunds(self, refunds: Iterable[Any] | None) -> dict[str, dict]:
        known = {r["id"]: r for r in (_plain(x) for x in (refunds or ())) if r.get("id")}
        out: dict[str, dict] = {}
        for p in self.payments:
            ids = list(p.get("refund_ids") or [])
            unknown = [rid for rid in ids if rid not in known]
            # Refunds not given are stood in for by records that add up to refunded_money;
            # give the refunds to have FAILED ones (which stop further refunds) taken into account.
            left = _amount(p.get("refunded_money")) - sum(
                _amount(known[r].get("amount_money")) for r in ids if r in known
                and known[r].get("status") in ("PENDING", "COMPLETED"))
            for i, rid in enumerate(unknown):
                amount = max(left, 0) if i == len(unknown) - 1 else 0
                known[rid] = {"id": rid, "status": "COMPLETED", "payment_id": p["id"],
                              "amount_money": {"amount": amount, "currency": self.currency},
                              "created_at": p.get("created_at"), "location_id": p.get("location_id")}
            out.update({rid: known[rid] for rid in ids})
        return out

    def _latest(self) -> datetime:
        stamps = [self.order.get("updated_at"), self.order.get("created_at")]
        for rec in (*self.payments, *self.refunds.values()):
            stamps += [rec.get("updated_at"), rec.get("created_at")]
        parsed = []
        for s in stamps:
            try:
                parsed.append(parse_rfc3339(s))
            except (ValueError, TypeError):
                continue
        return max(parsed) if parsed else ManualClock().now()

    def _build_snapshot(self) -> dict[str, Any]:
        order = {k: v for k, v in self.order.items() if k not in _COMPUTED_ORDER_FIELDS}
        order["_payment_ids"] = [p["id"] for p in self.payments]
        location = order.get("location_id") or "L"
        order["location_id"] = location
        order.setdefault("created_at", rfc3339(self.now))
        order.setdefault("updated_at", order["created_at"])
        for rec in (*self.payments, *self.refunds.values()):
            rec.setdefault("location_id", location)
            if not rec.get("created_at"):
                rec["created_at"] = order["created_at"]
        return {
            "merchant_id": "MPLAN", "main_location_id": location, "currency": self.currency,
            "now": rfc3339(self.now), "id_counter": 0, "seed": "orderfsm-plan",
            "variants": dict(self.variants),
            "locations": {location: {"id": location, "currency": self.currency}},
            "orders": {self.order_id: order},
            "payments": {p["id"]: p for p in self.payments},
            "refunds": self.refunds, "payment_keys": {}, "timers": [], "timer_seq": 0,
            "refund_settle_delay": 10,
        }

    def engine(self) -> Engine:
        return Engine.restore(self._snapshot)

    def start(self) -> EndState:
        return _end_state(self.order, self.payments)


def _update_body(order: Mapping[str, Any], step: Step, reason: str) -> dict[str, Any] | None:
    """The UpdateOrder ``order`` object for ``step`` against the order as it is now, or None
    when nothing is left to change. The planner and the executor both build it here."""
    fulfillments = []
    current = {f.get("uid"): f for f in order.get("fulfillments") or []}
    for uid in step.fulfillments:
        f = current.get(uid)
        if f is None or f.get("state", "PROPOSED") in FULFILLMENT_TERMINAL:
            continue
        entry: dict[str, Any] = {"uid": uid, "state": "CANCELED"}
        details = FULFILLMENT_DETAILS.get(f.get("type"))
        if details and reason:
            entry[details] = {"cancel_reason": reason[:_CANCEL_REASON_MAX]}
        fulfillments.append(entry)
    if not fulfillments and step.state is None:
        return None
    body: dict[str, Any] = {}
    if order.get("version") is not None:
        body["version"] = order["version"]
    if fulfillments:
        body["fulfillments"] = fulfillments
    if step.state is not None:
        body["state"] = step.state
    return body


def _apply(eng: Engine, order_id: str, step: Step, reason: str) -> SquareError | None:
    """Run one step on a throwaway engine; the SquareError of its rule, or None."""
    try:
        if step.action == CANCEL_PAYMENT:
            eng.cancel_payment(step.target)
        elif step.action == REFUND_PAYMENT:
            p = eng.payments[step.target]
            request: dict[str, Any] = {
                "idempotency_key": "plan", "payment_id": step.target,
                "amount_money": {"amount": step.amount, "currency": step.currency}}
            if reason:
                request["reason"] = reason[:_REFUND_REASON_MAX]
            if p.get("version_token"):
                request["payment_version_token"] = p["version_token"]
            eng.refund_payment(request)
        else:
            body = _update_body(eng.orders[order_id], step, reason)
            if body is not None:
                eng.update_order(order_id, body)
    except SquareError as err:
        return err
    return None


# ================================================================================ planning
def _void_steps(world: _World) -> list[Step]:
    return [Step(CANCEL_PAYMENT, p["id"], _payment_total(p), world.currency, rules=_VOID_RULES)
            for p in world.payments if p.get("status") == "APPROVED"]


def _refund_steps(world: _World, statuses: tuple[str, ...] = ("COMPLETED",)) -> list[Step]:
    return [Step(REFUND_PAYMENT, p["id"], _refundable(p), world.currency, rules=_REFUND_RULES)
            for p in world.payments if p.get("status") in statuses and _refundable(p) > 0]


def _fulfillment_step(world: _World) -> list[Step]:
    uids = _open_fulfillments(world.order)
    if not uids or world.order.get("state") == "CANCELED":
        return []
    return [Step(UPDATE_ORDER, world.order_id, fulfillments=uids, rules=_FULFILLMENT_RULES)]


def _cancel_step(world: _World, *, with_fulfillments: bool = False) -> list[Step]:
    if world.order.get("state") == "CANCELED":
        return []
    uids = _open_fulfillments(world.order) if with_fulfillments else ()
    rules = _CANCEL_RULES + (("fulfillment.cancel_any_time",) if uids else ())
    return [Step(UPDATE_ORDER, world.order_id, fulfillments=uids, state="CANCELED", rules=rules)]


def _named_steps(name: str, world: _World) -> list[Step]:
    if name == "naive_refund_then_cancel":
        return _refund_steps(world) + _cancel_step(world)
    if name == "refund_then_cancel_fulfillments_then_cancel":
        return (_void_steps(world) + _refund_steps(world) + _fulfillment_step(world)
                + _cancel_step(world))
    if name == "void_then_cancel":
        return _void_steps(world) + _cancel_step(world, with_fulfillments=True)
    if name == "cancel_fulfillments_only":
        return _fulfillment_step(world)
    if name == "refund_only":
        return _void_steps(world) + _refund_steps(world)
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")


@dataclass
class _Run:
    steps: list[Step]
    unreached: list[Step]
    ruled_out: list[RuledOut]
    engine: Engine


def _simulate(world: _World, steps: Sequence[Step], reason: str, *, drop_rejected: bool) -> _Run:
    eng = world.engine()
    kept: list[Step] = []
    ruled: list[RuledOut] = []
    for i, step in enumerate(steps):
        err = _apply(eng, world.order_id, step, reason)
        if err is None:
            kept.append(step)
            continue
        error = err.first.to_json()
        if drop_rejected:
            ruled.append(RuledOut(step, err.rule_id, error))
            continue
        kept.append(replace(step, expect=err.rule_id, expect_error=error))
        return _Run(kept, list(steps[i + 1:]), ruled, eng)
    return _Run(kept, [], ruled, eng)


def _label(steps: Sequence[Step]) -> str:
    parts = []
    if any(s.action in (CANCEL_PAYMENT, REFUND_PAYMENT) for s in steps):
        parts.append("refund_only")
    if any(s.action == UPDATE_ORDER and s.state == "CANCELED" for s in steps):
        return "refund_then_cancel_fulfillments_then_cancel"
    if any(s.action == UPDATE_ORDER and s.fulfillments for s in steps):
        parts.append("cancel_fulfillments_only")
    return "+".join(parts) or "nothing_to_do"


def _finish(world: _World, strategy: str, picked: str, run: _Run, reason: str) -> Plan:
    eng = run.engine
    predicted = _end_state(eng.orders[world.order_id],
                           [eng.payments[p["id"]] for p in world.payments])
    done = [s for s in run.steps if s.expect is None]
    rules: list[str] = []
    notes: list[str] = []
    for s in run.steps:
        rules.extend(s.rules)
        if s.expect:
            rules.append(s.expect)
            notes.append(_rejection_note(s, s.expect))
    for r in run.ruled_out:
        rules.extend(r.step.rules)
        if r.rule:
            rules.append(r.rule)
            notes.append(_rejection_note(r.step, r.rule, left_out=True))
    if strategy == "auto" and predicted.order_state != "CANCELED":
        notes.append(f"The order ends {predicted.order_state}: every call the rules allow is made "
                     f"and the money is returned; the calls left out are listed with their rules.")
    return Plan(
        strategy=strategy, picked=picked, order_id=world.order_id, currency=world.currency,
        steps=tuple(run.steps), start=world.start(), predicted=predicted,
        refund_money=sum(s.amount for s in done if s.action == REFUND_PAYMENT),
        void_money=sum(s.amount for s in done if s.action == CANCEL_PAYMENT),
        unreached=tuple(run.unreached), ruled_out=tuple(run.ruled_out),
        rules=tuple(dict.fromkeys(rules)), notes=tuple(notes), now=world.now,
    )


def _rejection_note(step: Step, rule_id: str, *, left_out: bool = False) -> str:
    rule = CATALOG.get(rule_id)
    why = rule.statement if rule else "rejected"
    verb = "left out" if left_out else "will be rejected"
    return f"{step.describe()} {verb}: {why} [{rule_id}]"


def plan_cancellation(
    order: Any,
    payments: Iterable[Any] = (),
    refunds: Iterable[Any] | None = None,
    *,
    strategy: str = "auto",
    variants: Variants | Mapping[str, str] | Iterable[str] | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Plan:
    """Plan how ``strategy`` cancels ``order`` and predict where it ends.

    ``order``, ``payments`` and ``refunds`` are what the API returns (``square`` SDK models or
    plain dicts). ``payments`` must include every payment listed in the order's tenders; others
    of the order may be given too, payments of other orders are ignored. ``refunds`` are the
    payments' refunds; refunds not given are assumed COMPLETED and to add up to each payment's
    ``refunded_money``. ``variants`` are the rule variants of the server (defaults if None).
    ``now`` is the server time (default: the latest timestamp in the records), used by
    time-based rules such as ``refund.too_old``.

    Raises ValueError for an unknown strategy or a tender payment that was not given.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    active = variants if isinstance(variants, Variants) else Variants(variants)
    world = _World(order, payments, refunds, active, now)
    return _plan(world, strategy, reason, {})


def _step_key(step: Step) -> tuple[str, str, str | None]:
    """What identifies a call across re-plans: its kind, its target and the order state it sets."""
    return (step.action, step.target, step.state if step.action == UPDATE_ORDER else None)


def _without(steps: Sequence[Step], skip: Mapping[tuple, RuledOut]) -> tuple[list[Step], list[RuledOut]]:
    kept, dropped = [], []
    for step in steps:
        found = skip.get(_step_key(step))
        if found is None:
            kept.append(step)
        else:
            dropped.append(RuledOut(step, found.rule, found.error))
    return kept, dropped


def _plan(world: _World, strategy: str, reason: str, skip: Mapping[tuple, RuledOut]) -> Plan:
    """Plan ``strategy`` on ``world``, leaving out the calls in ``skip`` (calls the server
    rejected in this run although the engine accepted them; they are reported in ruled_out)."""
    if strategy != "auto":
        steps, dropped = _without(_named_steps(strategy, world), skip)
        run = _simulate(world, steps, reason, drop_rejected=False)
        run.ruled_out[:0] = dropped
        return _finish(world, strategy, strategy, run, reason)
    # auto: the cheapest complete plan the engine accepts, else everything it accepts.
    money = _void_steps(world) + _refund_steps(world, ("COMPLETED", "PENDING"))
    full = money + _fulfillment_step(world) + _cancel_step(world)
    candidates: list[tuple[str, list[Step]]] = []
    if world.order.get("state") != "CANCELED":
        # One combined UpdateOrder only when nothing was ever captured. Otherwise the
        # fulfillments are canceled in a call of their own, so that they are canceled even
        # when the server refuses the order's cancellation (a variant the caller got wrong).
        if not any(p.get("status") in ("COMPLETED", "PENDING") for p in world.payments):
            candidates.append(("void_then_cancel", _named_steps("void_then_cancel", world)))
        candidates.append(("refund_then_cancel_fulfillments_then_cancel", full))
    for name, steps in candidates:
        if any(_step_key(s) in skip for s in steps):
            continue
        run = _simulate(world, steps, reason, drop_rejected=False)
        if not run.unreached and all(s.expect is None for s in run.steps):
            return _finish(world, "auto", name, run, reason)
    steps, dropped = _without(full, skip)
    run = _simulate(world, steps, reason, drop_rejected=True)
    run.ruled_out[:0] = dropped
    return _finish(world, "auto", _label(run.steps), run, reason)


# ============================================================================ error → rule
def _template(text: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^{}]*\})", text)
    return re.compile("".join(".*?" if p.startswith("{") and p.endswith("}") else re.escape(p)
                              for p in parts) + r"\Z", re.S)


def _literal_length(text: str) -> int:
    return len(re.sub(r"\{[^{}]*\}", "", text))


_ERROR_INDEX: list[tuple[str, str, re.Pattern[str], re.Pattern[str] | None, int]] = [
    (rule.id, rule.error.code, _template(rule.error.detail),
     _template(rule.error.field) if rule.error.field else None,
     _literal_length(rule.error.detail) + _literal_length(rule.error.field or ""))
    for rule in CATALOG.values() if rule.error is not None
]


def rule_for_error(error: Mapping[str, Any] | Any) -> str | None:
    """The catalog rule whose error matches one Square error entry (code, detail, field), or
    None. Accepts a dict or the SDK's ``Error`` model. When several rules match, the one whose
    field matches too and whose templates are the most specific wins."""
    e = _plain(error)
    code, detail, fld = e.get("code"), e.get("detail") or "", e.get("field")
    best: tuple[tuple[bool, int], str] | None = None
    for rule_id, rcode, rdetail, rfield, literal in _ERROR_INDEX:
        if rcode != code or not rdetail.match(detail):
            continue
        field_matches = rfield is not None and fld is not None and bool(rfield.match(fld))
        score = (field_matches, literal)
        if best is None or score > best[0]:
            best = (score, rule_id)
    return best[1] if best else None


# ================================================================================ executor
def _key(kind: str, *parts: Any) -> str:
    """A deterministic idempotency key (40 characters; RefundPayment allows 45)."""
    digest = hashlib.sha256("|".join(map(str, (kind, *parts))).encode()).hexdigest()[:32]
    return f"ofsm-{kind}-{digest}"


def _api_errors(exc: Any) -> tuple[list[dict[str, Any]], int]:
    body = getattr(exc, "body", None)
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(errors, list):
        errors = [{"category": "API_ERROR", "code": "UNKNOWN", "detail": str(body)}]
    return [dict(e) for e in errors if isinstance(e, Mapping)], int(getattr(exc, "status_code", 0) or 0)


def _is_version_mismatch(errors: Sequence[Mapping[str, Any]]) -> bool:
    return any(e.get("code") == "VERSION_MISMATCH" for e in errors)


class _Executor:
    def __init__(self, client: Any, order_id: str, reason: str, ro: Mapping[str, Any]) -> None:
        from square.core.api_error import ApiError

        self.ApiError = ApiError
        self.client = client
        self.order_id = order_id
        self.reason = reason
        self.ro = dict(ro)
        self.rules_hit: list[str] = []
        self.order_after_write: dict[str, Any] | None = None  # from a successful UpdateOrder
        self.payments_after_write: dict[str, dict[str, Any]] = {}  # from CancelPayment
        self.date_header: str | None = None  # of the last order read

    # ---------------------------------------------------------------------- reads
    def order(self) -> dict[str, Any]:
        raw = getattr(self.client.orders, "with_raw_response", None)
        if raw is None:  # pragma: no cover - an SDK without raw responses
            return _plain(self.client.orders.get(self.order_id, request_options=self.ro).order)
        response = raw.get(self.order_id, request_options=self.ro)
        self.date_header = response.headers.get("date")
        return _plain(response.data.order)

    def server_time(self, given: datetime | None) -> tuple[datetime | None, str]:
        """The server's time and where it came from: the caller's ``now``, the simulator's
        ``GET /_sim/clock`` (probed once per client; a server without it is remembered), the
        ``Date`` header of the last order read, or nothing (the planner then dates "now" from
        the newest record)."""
        if given is not None:
            return given, "argument"
        found = _sim_clock(self.client, self.ro)
        if found is not None:
            return found, "/_sim/clock"
        if self.date_header:
            try:
                return email.utils.parsedate_to_datetime(self.date_header), "Date header"
            except (TypeError, ValueError):
                pass
        return None, "records"

    def payment(self, payment_id: str) -> dict[str, Any]:
        return _plain(self.client.payments.get(payment_id, request_options=self.ro).payment)

    def load(self) -> tuple[dict, list[dict], list[dict]]:
        order = self.order()
        payments = [self.payment(pid) for pid in _tender_payment_ids(order)]
        refunds = []
        for p in payments:
            # Only refunds of payments that still have money to return can change the plan.
            if p.get("status") == "COMPLETED" and _refundable(p) > 0:
                for rid in p.get("refund_ids") or []:
                    refunds.append(_plain(self.client.refunds.get(rid, request_options=self.ro).refund))
        return order, payments, refunds

    # ---------------------------------------------------------------------- writes
    def _failed(self, step: Step, request: str, body: Mapping[str, Any], exc: Any,
                retried: bool = False) -> StepResult:
        errors, status = _api_errors(exc)
        rule = rule_for_error(errors[0]) if errors else None
        if rule:
            self.rules_hit.append(rule)
        return StepResult(step, request, body, False, status, tuple(errors), rule, {}, retried)

    def cancel_payment(self, step: Step) -> StepResult:
        request = step.http
        try:
            p = _plain(self.client.payments.cancel(step.target, request_options=self.ro).payment)
        except self.ApiError as exc:
            return self._failed(step, request, {}, exc)
        self.payments_after_write[step.target] = p
        return StepResult(step, request, {}, True,
                          response={"payment_id": p.get("id"), "status": p.get("status"),
                                    "released": _payment_total(p)})

    def refund(self, step: Step, payment: Mapping[str, Any]) -> StepResult:
        retried = False
        amount = step.amount
        for attempt in (1, 2):
            token = payment.get("version_token")
            # Derived from what was observed: a re-run that sees the same payment sends the same
            # key and body, so the server replays the first refund instead of making a second.
            observed = token or (_amount(payment.get("refunded_money")),
                                 len(payment.get("refund_ids") or []))
            key = _key("rf", self.order_id, step.target, observed, amount)
            body: dict[str, Any] = {
                "idempotency_key": key, "payment_id": step.target,
                "amount_money": {"amount": amount, "currency": step.currency}}
            if self.reason:
                body["reason"] = self.reason[:_REFUND_REASON_MAX]
            if token:
                body["payment_version_token"] = token
            try:
                r = _plain(self.client.refunds.refund_payment(**body, request_options=self.ro).refund)
            except self.ApiError as exc:
                errors, _ = _api_errors(exc)
                if attempt == 1 and _is_version_mismatch(errors):
                    self.rules_hit.append(rule_for_error(errors[0]) or "refund.version_mismatch")
                    payment = self.payment(step.target)
                    amount = _refundable(payment)
                    retried = True
                    if amount <= 0:
                        return StepResult(replace(step, amount=0), step.http, body, True,
                                          response={"skipped": "nothing left to refund"},
                                          retried=True)
                    step = replace(step, amount=amount)
                    continue
                return self._failed(step, step.http, body, exc, retried)
            return StepResult(step, step.http, body, True,
                              response={"refund_id": r.get("id"), "status": r.get("status"),
                                        "amount": _amount(r.get("amount_money"))},
                              retried=retried)
        raise AssertionError("unreachable")  # pragma: no cover

    def update(self, step: Step) -> StepResult:
        retried = False
        request = step.http
        body: dict[str, Any] = {}
        for attempt in (1, 2):
            current = self.order()  # always the latest version
            patch = _update_body(current, step, self.reason)
            if patch is None:
                return StepResult(step, request, {}, True, response={"skipped": "already done"},
                                  retried=retried)
            key = _key("uo", self.order_id, patch.get("version"), ",".join(step.fulfillments),
                       step.state)
            body = {"order": patch, "idempotency_key": key}
            try:
                o = _plain(self.client.orders.update(self.order_id, order=patch, idempotency_key=key,
                                                     request_options=self.ro).order)
            except self.ApiError as exc:
                errors, _ = _api_errors(exc)
                if attempt == 1 and _is_version_mismatch(errors):
                    self.rules_hit.append(rule_for_error(errors[0]) or "order.version_mismatch")
                    retried = True
                    continue
                return self._failed(step, request, body, exc, retried)
            self.order_after_write = o
            return StepResult(step, request, body, True,
                              response={"state": o.get("state"), "version": o.get("version")},
                              retried=retried)
        raise AssertionError("unreachable")  # pragma: no cover


# Clients whose server answered GET /_sim/clock with something other than a clock.
_NO_SIM_CLOCK: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


def _sim_clock(client: Any, ro: Mapping[str, Any]) -> datetime | None:
    try:
        if _NO_SIM_CLOCK.get(client):
            return None
    except TypeError:  # pragma: no cover - a client that cannot be weakly referenced
        pass
    try:
        http = client._client_wrapper.httpx_client
        response = http.request("_sim/clock", method="GET", request_options=dict(ro))
        if response.status_code == 200:
            return parse_rfc3339(response.json()["now"])
    except Exception:  # noqa: BLE001 - no clock there (another SDK layout, not JSON, ...)
        pass
    try:
        _NO_SIM_CLOCK[client] = True
    except TypeError:  # pragma: no cover
        pass
    return None


def cancel_order(
    client: Any,
    order_id: str,
    *,
    reason: str,
    strategy: str = "auto",
    variants: Variants | Mapping[str, str] | Iterable[str] | None = None,
    request_options: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Cancel ``order_id`` with ``strategy`` through a ``square.Square`` client.

    Reads the order, its payments (from the tenders) and the refunds that matter, learns the
    server's time, plans with :func:`plan_cancellation`, and makes the calls in order.
    ``reason`` goes into the refunds and the fulfillments' ``cancel_reason``. ``variants`` are
    the server's rule variants as far as the caller knows them (defaults if None).
    ``request_options`` are passed to every SDK call (``max_retries`` defaults to 0). ``now``
    is the server's time if the caller knows it; otherwise it is read from the simulator's
    ``GET /_sim/clock`` where the server has one, else from the ``Date`` header of the order
    read (time-based rules such as ``refund.too_old`` depend on it).

    A rejection the plan predicted ends the run and is reported in ``Outcome.error``, since for
    some strategies it is the expected answer. A rejection the plan did not predict is
    reported in ``Outcome.unpredicted`` (with its catalog rule); the executor then reads the
    order again, re-plans without the rejected call and goes on with the calls still allowed,
    so a refund that is no longer possible does not stop the cancellations that are. Errors
    reading the order (for example NOT_FOUND) raise the SDK's ``ApiError``, and transport
    errors propagate unchanged. Running it again is safe: the plan is recomputed from what the
    server holds now, and refund keys are derived from the payment as observed.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    active = variants if isinstance(variants, Variants) else Variants(variants)
    ro = {**_DEFAULT_RO, **(request_options or {})}
    ex = _Executor(client, order_id, reason, ro)
    order, payments, refunds = ex.load()
    server_now, clock = ex.server_time(now)
    world = _World(order, payments, refunds, active, server_now)
    plan = _plan(world, strategy, reason, {})
    plans = [plan]
    known = {p["id"]: p for p in payments}  # the latest read of every payment met
    skip: dict[tuple, RuledOut] = {}
    results: list[StepResult] = []
    refunded = voided = 0
    error: StepResult | None = None
    queue = list(plan.steps)
    while queue:
        step = queue.pop(0)
        if step.action == CANCEL_PAYMENT:
            res = ex.cancel_payment(step)
            if res.ok:
                voided += res.response.get("released", 0)
        elif step.action == REFUND_PAYMENT:
            res = ex.refund(step, known[step.target])
            if res.ok:
                refunded += res.response.get("amount", 0)
        else:
            res = ex.update(step)
        if res.ok:
            results.append(res)
            continue
        # A predicted rejection ends the run, and so does a second VERSION_MISMATCH: another
        # writer keeps changing the order, which is contention, not a wrong prediction.
        if (step.expect is not None or _is_version_mismatch(res.errors)
                or len(plans) > 2 * len(STRATEGIES) + len(known) + 4):
            results.append(res)
            error = res
            break
        # Not predicted: read everything again and plan what is still allowed without it.
        results.append(replace(res, unpredicted=True))
        skip[_step_key(step)] = RuledOut(step, res.rule, dict(res.errors[0]) if res.errors else {})
        order, payments, refunds = ex.load()
        known.update({p["id"]: p for p in payments})
        world = _World(order, payments, refunds, active, server_now)
        plan = _plan(world, strategy, reason, skip)
        plans.append(plan)
        queue = list(plan.steps)
    final = plans[0].start
    if results:
        # Read back what the run may have changed: the order (unless the last call was an
        # accepted UpdateOrder, whose response is the order now) and the refunded payments;
        # a voided payment is as CancelPayment returned it, the others as last read.
        last = results[-1]
        order_now = (ex.order_after_write if last.ok and last.step.action == UPDATE_ORDER
                     and ex.order_after_write is not None else ex.order())
        refunded_ids = {r.step.target for r in results if r.step.action == REFUND_PAYMENT}
        payments_now = []
        for pid in [*plans[0].start.payments, *(k for k in known if k not in plans[0].start.payments)]:
            if pid in refunded_ids:
                payments_now.append(ex.payment(pid))
            else:
                payments_now.append(ex.payments_after_write.get(pid, known[pid]))
        final = _end_state(order_now, payments_now)
    return Outcome(order_id=order_id, strategy=strategy, picked=plans[-1].picked, plan=plans[0],
                   steps=tuple(results), final=final, refunded_money=refunded,
                   voided_money=voided, rules_hit=tuple(dict.fromkeys(ex.rules_hit)), error=error,
                   plans=tuple(plans), now=plans[0].now, clock=clock)


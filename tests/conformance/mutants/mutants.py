"""Server mutants: the simulator with one plausible bug each, made in-process.

A mutant patches one guard, one timer or one rendering of the code the simulator runs, and the
patch takes effect only while the simulator handles a request: the wrapped app marks its
requests with a context variable, and every patched function dispatches on it. The conformance
runner's oracle is the same orderfsm engine, called outside any request, so it keeps the
original behaviour. No code is copied: each patch wraps the original function and changes one
input, one output or one branch.

Each mutant names the catalog rule a correct report blames and the kind of difference it
shows (decision, error or state). tests/conformance/mutants/test_mutants.py requires the
runner at its default settings to catch every one with that rule; bench/conform_mutants.py
reports the score and what each catch cost.
"""

from __future__ import annotations

import contextvars
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from orderfsm.engine import Engine
from orderfsm.errors import SquareError
from orderfsm.lifecycles._table import Lifecycle
from orderfsm.rules import violation
from orderfsm.simulator import create_app
from simulator.idempotency import IdempotencyStore, digest, fingerprint

__all__ = ["MUTANTS", "Mutant", "SERVING", "mutated_app", "server_only"]

# (No mutant removes a lifecycle rejection: the transitions tables define no edge from the
# states the rejections guard, so such a server fails with a 500, which is a different bug.)

#: True while the simulator handles a request (set by :func:`mutated_app`'s wrapper).
SERVING: contextvars.ContextVar[bool] = contextvars.ContextVar("orderfsm_serving", default=False)


@contextmanager
def server_only(owner: Any, name: str, mutate: Callable[[Callable[..., Any]], Callable[..., Any]]
                ) -> Iterator[None]:
    """Replace ``owner.name`` by ``mutate(original)`` inside requests, and keep the original
    everywhere else (the oracle, the test itself)."""
    # The attribute as defined on the class or the first base that has it (Engine's commands
    # live in the per-resource classes it combines).
    own = name in owner.__dict__
    original = next(k.__dict__[name] for k in owner.__mro__ if name in k.__dict__)
    mutated = mutate(original)

    def dispatch(*args: Any, **kwargs: Any) -> Any:
        return (mutated if SERVING.get() else original)(*args, **kwargs)

    setattr(owner, name, dispatch)
    try:
        yield
    finally:
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)


def mutated_app(patch: Callable[[ExitStack], None] | None = None) -> tuple[Any, ExitStack]:
    """A quiet simulator whose requests run under ``SERVING``, and the stack holding the
    mutant's patches (close it to undo them)."""
    app = create_app()
    app.state.config.log_requests = False
    stack = ExitStack()
    if patch is not None:
        patch(stack)

    async def serving(scope: dict, receive: Callable, send: Callable) -> None:
        token = SERVING.set(True)
        try:
            await app(scope, receive, send)
        finally:
            SERVING.reset(token)

    serving.state = app.state  # type: ignore[attr-defined]
    return serving, stack


@dataclass(frozen=True)
class Mutant:
    name: str
    rule: str  # the rule a correct report blames
    kind: str  # what the difference shows as: decision, error or state (several: any of them)
    bug: str  # what is wrong, in words
    patch: Callable[[ExitStack], None]


# ------------------------------------------------------------------------- the patches

def _forget_payment_keys(stack: ExitStack) -> None:
    def mutate(lookup: Callable) -> Callable:
        def forgetful(self: IdempotencyStore, endpoint: str, key: Any, body: Any) -> Any:
            return None if endpoint == "CreatePayment" else lookup(self, endpoint, key, body)
        return forgetful
    stack.enter_context(server_only(IdempotencyStore, "lookup", mutate))


def _replay_any_body(stack: ExitStack) -> None:
    def mutate(lookup: Callable) -> Callable:
        def lenient(self: IdempotencyStore, endpoint: str, key: Any, body: Any) -> Any:
            stored = self._get(endpoint, key) if key else None
            if stored is not None and stored.fingerprint != digest(fingerprint(body)):
                return stored  # the guard on the body is gone
            return lookup(self, endpoint, key, body)
        return lenient
    stack.enter_context(server_only(IdempotencyStore, "lookup", mutate))


def _pay_order_overpayment(stack: ExitStack) -> None:
    """PayOrder's ``paid != total`` became ``paid < total``: the order's total is read as at
    least what the listed payments add up to."""
    def mutate(pay_order: Callable) -> Callable:
        def lenient(self: Engine, order_id: str, payment_ids: Any = None,
                    order_version: Any = None) -> Any:
            paid = sum(self.payments[p]["amount_money"]["amount"] for p in payment_ids or ()
                       if p in self.payments)

            def total(order: Any, *args: Any, **kwargs: Any) -> int:
                return max(Engine._total(self, order, *args, **kwargs), paid)
            self._total = total  # type: ignore[method-assign]
            try:
                return pay_order(self, order_id, payment_ids, order_version)
            finally:
                del self._total
        return lenient
    stack.enter_context(server_only(Engine, "pay_order", mutate))


def _timer_off(kind: str) -> Callable[[ExitStack], None]:
    def patch(stack: ExitStack) -> None:
        def mutate(fire: Callable) -> Callable:
            def skip(self: Engine, timer: str, ident: str) -> None:
                if timer != kind:
                    fire(self, timer, ident)
            return skip
        stack.enter_context(server_only(Engine, "_fire_timer", mutate))
    return patch


def _refund_completes_at_once(stack: ExitStack) -> None:
    """Card refunds are created the way cash refunds are: COMPLETED at once."""
    def mutate(create: Callable) -> Callable:
        def instant(self: Lifecycle, record: dict, label: str) -> None:
            create(self, record, "RefundPayment (cash / external)"
                   if label == "RefundPayment (card)" else label)
        return instant
    stack.enter_context(server_only(Lifecycle, "create", mutate))


def _recode(rule_id: str, code: str) -> Callable[[ExitStack], None]:
    """The rule's error is rendered with another code (the guard itself is right)."""
    def patch(stack: ExitStack) -> None:
        def mutate(body: Callable) -> Callable:
            def recoded(self: SquareError) -> dict:
                out = body(self)
                if self.rule_id == rule_id:
                    out["errors"][0]["code"] = code
                return out
            return recoded
        stack.enter_context(server_only(SquareError, "body", mutate))
    return patch


def _update_ignores_version(stack: ExitStack) -> None:
    """UpdateOrder's version guard compares the order's version with itself."""
    def mutate(update: Callable) -> Callable:
        def lenient(self: Engine, order_id: str, order: Any, fields_to_clear: Any = None) -> Any:
            rec = self.orders.get(order_id)
            if rec is not None and isinstance(order, dict) and "version" in order:
                order = {**order, "version": rec["version"]}
            return update(self, order_id, order, fields_to_clear)
        return lenient
    stack.enter_context(server_only(Engine, "update_order", mutate))


def _line_items_unlocked(stack: ExitStack) -> None:
    """UpdateOrder never sees a processed payment, so line items stay editable."""
    stack.enter_context(server_only(Engine, "_has_processed_payment",
                                    lambda original: lambda self, tx, order: False))


def _full_refund_rejected(stack: ExitStack) -> None:
    """RefundPayment's ``held + amount > total`` became ``>=``: the last cent is refused."""
    def mutate(refund: Callable) -> Callable:
        def strict(self: Engine, request: Any) -> Any:
            p = self.payments.get(request.get("payment_id") or "")
            money = request.get("amount_money") or {}
            amount = money.get("amount")
            # where the guard sits: after the status, token and currency checks passed
            if (p is not None and p["status"] == "COMPLETED" and isinstance(amount, int)
                    and money.get("currency") == self.currency
                    and request.get("payment_version_token") in (None, p.get("version_token"))):
                held = (p.get("refunded_money") or {}).get("amount", 0)
                if amount > 0 and held + amount == p["total_money"]["amount"]:
                    raise violation("refund.amount_exceeds")
            return refund(self, request)
        return strict
    stack.enter_context(server_only(Engine, "refund_payment", mutate))


def _version_not_bumped(stack: ExitStack) -> None:
    """UpdateOrder leaves the version as it was (other writes still bump it)."""
    def mutate(update: Callable) -> Callable:
        def frozen(self: Engine, order_id: str, order: Any, fields_to_clear: Any = None) -> Any:
            out = update(self, order_id, order, fields_to_clear)
            self.orders[order_id]["version"] -= 1
            return {**out, "version": out["version"] - 1}
        return frozen
    stack.enter_context(server_only(Engine, "update_order", mutate))


def _refunded_money_hidden(stack: ExitStack) -> None:
    def mutate(render: Callable) -> Callable:
        def hidden(self: Engine, rec: Any) -> dict:
            out = render(self, rec)
            out.pop("refunded_money", None)
            return out
        return hidden
    stack.enter_context(server_only(Engine, "render_payment", mutate))


def _payment_over_due(stack: ExitStack) -> None:
    """CreatePayment reads what is due as a large amount: payments above it are accepted."""
    def mutate(create: Callable) -> Callable:
        def lenient(self: Engine, request: Any) -> Any:
            self.amount_due = lambda order, tx=None: 10**9  # type: ignore[method-assign]
            try:
                return create(self, request)
            finally:
                del self.amount_due
        return lenient
    stack.enter_context(server_only(Engine, "create_payment", mutate))


def _refund_token_ignored(stack: ExitStack) -> None:
    """RefundPayment drops payment_version_token before its guard reads it."""
    def mutate(refund: Callable) -> Callable:
        def lenient(self: Engine, request: Any) -> Any:
            return refund(self, {k: v for k, v in request.items()
                                 if k != "payment_version_token"})
        return lenient
    stack.enter_context(server_only(Engine, "refund_payment", mutate))


def _expiry_captures(stack: ExitStack) -> None:
    """At delayed_until every payment is captured, whatever its delay_action."""
    def mutate(expire: Callable) -> Callable:
        def capture(self: Engine, tx: Any, payment_id: str) -> None:
            self.payments[payment_id]["delay_action"] = "COMPLETE"
            expire(self, tx, payment_id)
        return capture
    stack.enter_context(server_only(Engine, "_expire", mutate))


def _cancel_by_key_ignored(stack: ExitStack) -> None:
    stack.enter_context(server_only(Engine, "cancel_payment_by_idempotency_key",
                                    lambda original: lambda self, key: None))


def _pay_order_leaves_open(stack: ExitStack) -> None:
    """PayOrder captures the payments but leaves an order without fulfillments OPEN."""
    def mutate(pay_order: Callable) -> Callable:
        def open_(self: Engine, order_id: str, payment_ids: Any = None,
                  order_version: Any = None) -> Any:
            out = pay_order(self, order_id, payment_ids, order_version)
            rec = self.orders[order_id]
            if rec["state"] == "COMPLETED":
                rec["state"] = "OPEN"
                rec.pop("closed_at", None)
            return self.render_order(rec)
        return open_
    stack.enter_context(server_only(Engine, "pay_order", mutate))


def _delay_floor_missing(stack: ExitStack) -> None:
    """delay_duration below one minute is taken as one minute instead of being refused."""
    def mutate(create: Callable) -> Callable:
        def lenient(self: Engine, request: Any) -> Any:
            if request.get("delay_duration") in ("PT30S", "PT1S", "PT0S"):
                request = {**request, "delay_duration": "PT1M"}
            return create(self, request)
        return lenient
    stack.enter_context(server_only(Engine, "create_payment", mutate))


def _order_created_open(stack: ExitStack) -> None:
    """CloneOrder's copy comes out OPEN instead of DRAFT."""
    def mutate(clone: Callable) -> Callable:
        def opened(self: Engine, order_id: str, version: Any = None) -> Any:
            out = clone(self, order_id, version)
            self.orders[out["id"]]["state"] = "OPEN"
            return {**out, "state": "OPEN"}
        return opened
    stack.enter_context(server_only(Engine, "clone_order", mutate))


MUTANTS: list[Mutant] = [
    Mutant("replay_creates_payment", "api.idempotency_key_reused", "state decision error",
           "CreatePayment with a key already used runs again and makes a second payment",
           _forget_payment_keys),
    Mutant("replay_ignores_body", "api.idempotency_key_reused", "decision error",
           "a key reused with another body replays the first answer instead of "
           "IDEMPOTENCY_KEY_REUSED", _replay_any_body),
    Mutant("pay_order_overpayment", "pay_order.amount_mismatch", "decision",
           "PayOrder accepts payments that add up to more than what is due", _pay_order_overpayment),
    Mutant("delayed_capture_never_expires", "payment.delayed_action", "state",
           "an uncaptured payment stays APPROVED past delayed_until", _timer_off("payment_delay")),
    Mutant("bank_transfer_never_settles", "payment.bank_settles", "state",
           "a bank transfer stays PENDING forever", _timer_off("bank_settle")),
    Mutant("refund_completes_at_once", "refund.settlement", "state",
           "a card refund is COMPLETED when created instead of PENDING", _refund_completes_at_once),
    Mutant("stale_order_version_code", "order.version_mismatch", "error",
           "a stale order version is refused with BAD_REQUEST instead of VERSION_MISMATCH",
           _recode("order.version_mismatch", "BAD_REQUEST")),
    Mutant("stale_order_version_accepted", "order.version_mismatch", "decision",
           "UpdateOrder accepts a stale version", _update_ignores_version),
    Mutant("expired_reported_as_canceled", "payment.expired", "error",
           "completing an expired payment answers DELAYED_TRANSACTION_CANCELED",
           _recode("payment.expired", "DELAYED_TRANSACTION_CANCELED")),
    Mutant("line_items_editable_after_payment", "order.line_items_locked", "decision",
           "line items of a paid order can still be changed", _line_items_unlocked),
    Mutant("full_refund_rejected", "refund.amount_exceeds", "decision",
           "refunding exactly what is left is refused as too much", _full_refund_rejected),
    Mutant("update_keeps_version", "order.version_increments", "state",
           "UpdateOrder does not increment the order's version", _version_not_bumped),
    Mutant("refunded_money_missing", "refund.return_order", "state",
           "payments never show refunded_money", _refunded_money_hidden),
    Mutant("payment_above_due_accepted", "payment.order_total_mismatch", "decision",
           "CreatePayment accepts an amount above what the order still owes", _payment_over_due),
    Mutant("refund_token_ignored", "refund.version_mismatch", "decision",
           "RefundPayment accepts a stale payment_version_token", _refund_token_ignored),
    Mutant("expiry_always_captures", "payment.delayed_action", "state",
           "an uncaptured payment with delay_action CANCEL is captured at delayed_until",
           _expiry_captures),
    Mutant("cancel_by_key_ignored", "payment.cancel_by_idempotency_key", "state",
           "CancelPaymentByIdempotencyKey leaves the payment APPROVED", _cancel_by_key_ignored),
    Mutant("pay_order_leaves_order_open", "pay_order.settles", "state",
           "PayOrder leaves an order without fulfillments OPEN", _pay_order_leaves_open),
    Mutant("delay_floor_missing", "payment.delay_duration_bounds", "decision",
           "a delay_duration under one minute is accepted", _delay_floor_missing),
    Mutant("clone_is_open", "order.clone_is_draft", "state",
           "CloneOrder's copy is OPEN", _order_created_open),
]

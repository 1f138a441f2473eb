"""Order lifecycle: DRAFT -> OPEN -> COMPLETED | CANCELED (the last two terminal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._table import Creation, Lifecycle, Rejection, Transition

STATES = ("DRAFT", "OPEN", "COMPLETED", "CANCELED")
TERMINAL = ("COMPLETED", "CANCELED")
TERMINAL_FULFILLMENT = frozenset({"COMPLETED", "CANCELED", "FAILED"})


@dataclass(slots=True)
class OrderContext:
    """What the order guards look at, computed by the engine for one command."""

    has_processed_payment: bool = False
    amount_due: int = 0
    fulfillment_states: tuple[str, ...] = ()
    # The states of the fulfillments the order had before a payment was processed (None: all).
    fulfillment_states_before_payment: tuple[str, ...] | None = None
    variants: dict[str, str] = field(default_factory=dict)
    fmt: dict[str, Any] = field(default_factory=dict)  # values for the error templates


def _cancel_after_payment(ctx: OrderContext) -> bool:
    if not ctx.has_processed_payment:
        return True
    if ctx.variants.get("cancel_after_payment") == "never":
        return False
    states = ctx.fulfillment_states
    # order.fulfillment_added_after_payment: a fulfillment added to a paid order does not count.
    counted = states if ctx.fulfillment_states_before_payment is None \
        else ctx.fulfillment_states_before_payment
    return bool(counted) and all(s == "CANCELED" for s in states)


def _cancel_open_fulfillments(ctx: OrderContext) -> bool:
    if ctx.variants.get("cancel_open_fulfillments") == "cascade":
        return True
    return all(s in TERMINAL_FULFILLMENT for s in ctx.fulfillment_states)


def _complete_terminal_fulfillments(ctx: OrderContext) -> bool:
    return all(s in TERMINAL_FULFILLMENT for s in ctx.fulfillment_states)


def _complete_paid(ctx: OrderContext) -> bool:
    return ctx.amount_due <= 0


GUARDS = {
    "order.cancel_after_payment": _cancel_after_payment,
    "order.cancel_open_fulfillments": _cancel_open_fulfillments,
    "order.complete_requires_terminal_fulfillments": _complete_terminal_fulfillments,
    "order.complete_requires_payment": _complete_paid,
}

CREATIONS = (
    Creation("CreateOrder", "OPEN"),
    Creation("CreateOrder state=DRAFT / CloneOrder", "DRAFT"),
    Creation("RefundPayment (return order)", "COMPLETED"),
)

TRANSITIONS = (
    Transition("open", ("DRAFT",), "OPEN", note="UpdateOrder state=OPEN"),
    Transition("cancel", ("DRAFT", "OPEN"), "CANCELED",
               ("order.cancel_after_payment", "order.cancel_open_fulfillments"),
               note="UpdateOrder state=CANCELED"),
    Transition("complete", ("OPEN",), "COMPLETED",
               ("order.complete_requires_terminal_fulfillments", "order.complete_requires_payment"),
               note="UpdateOrder state=COMPLETED"),
    Transition("settle", ("OPEN",), "COMPLETED", note="PayOrder or a payment pays a fulfillment-less order"),
    Transition("update", ("DRAFT", "OPEN"), None, note="UpdateOrder (sparse merge)"),
    Transition("pay", ("OPEN",), None, note="a payment is applied"),
)

REJECTIONS = (
    Rejection(("update", "open", "cancel", "complete", "settle"), TERMINAL, "order.terminal_frozen"),
    Rejection(("pay",), ("DRAFT",), "order.draft_not_payable"),
    Rejection(("pay",), TERMINAL, "order.closed_not_payable"),
    Rejection(("complete", "settle"), ("DRAFT",), "order.draft_opens"),
    Rejection(("draft",), ("OPEN",), "order.draft_opens"),
)

LIFECYCLE = Lifecycle(
    "order",
    states=STATES,
    terminal=TERMINAL,
    creations=CREATIONS,
    transitions=TRANSITIONS,
    rejections=REJECTIONS,
    guards=GUARDS,
)

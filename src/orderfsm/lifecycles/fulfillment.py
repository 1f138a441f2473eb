"""Fulfillment lifecycle: PROPOSED -> RESERVED -> PREPARED -> COMPLETED, or CANCELED / FAILED."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._table import Creation, Lifecycle, Rejection, Transition

STATES = ("PROPOSED", "RESERVED", "PREPARED", "COMPLETED", "CANCELED", "FAILED")
TERMINAL = ("COMPLETED", "CANCELED", "FAILED")
OPEN_STATES = ("PROPOSED", "RESERVED", "PREPARED")
TYPES = {"PICKUP": "pickup_details", "SHIPMENT": "shipment_details", "DELIVERY": "delivery_details"}

# The trigger that moves a fulfillment into each state.
TRIGGER_FOR = {
    "PROPOSED": "propose",
    "RESERVED": "reserve",
    "PREPARED": "prepare",
    "COMPLETED": "complete",
    "CANCELED": "cancel",
    "FAILED": "fail",
}

# Timestamps Square sets on the details object when a state is reached.
TIMESTAMPS = {
    "pickup_details": {"RESERVED": "accepted_at", "PREPARED": "ready_at",
                       "COMPLETED": "picked_up_at", "CANCELED": "canceled_at",
                       "FAILED": "rejected_at", "PROPOSED": "placed_at"},
    "shipment_details": {"RESERVED": "in_progress_at", "PREPARED": "packaged_at",
                         "COMPLETED": "shipped_at", "CANCELED": "canceled_at",
                         "FAILED": "failed_at", "PROPOSED": "placed_at"},
    "delivery_details": {"RESERVED": "in_progress_at", "PREPARED": "ready_at",
                         "COMPLETED": "completed_at", "CANCELED": "canceled_at",
                         "FAILED": "rejected_at", "PROPOSED": "placed_at"},
}


@dataclass(slots=True)
class FulfillmentContext:
    order_state: str = "OPEN"
    order_paid: bool = False
    variants: dict[str, str] = field(default_factory=dict)
    fmt: dict[str, Any] = field(default_factory=dict)


def _not_draft(ctx: FulfillmentContext) -> bool:
    return ctx.order_state != "DRAFT"


def _paid(ctx: FulfillmentContext) -> bool:
    if ctx.variants.get("fulfillment_complete_before_payment") == "allow":
        return True
    return ctx.order_paid


GUARDS = {
    "order.draft_not_fulfillable": _not_draft,
    "fulfillment.complete_requires_payment": _paid,
}

CREATIONS = (Creation("CreateOrder / UpdateOrder adds it", "PROPOSED"),)

_FORWARD = ("order.draft_not_fulfillable",)
TRANSITIONS = (
    Transition("reserve", ("PROPOSED",), "RESERVED", _FORWARD),
    Transition("prepare", ("PROPOSED", "RESERVED"), "PREPARED", _FORWARD),
    Transition("complete", OPEN_STATES, "COMPLETED",
               ("order.draft_not_fulfillable", "fulfillment.complete_requires_payment")),
    Transition("cancel", OPEN_STATES, "CANCELED"),
    Transition("fail", OPEN_STATES, "FAILED", _FORWARD),
)

REJECTIONS = (
    Rejection(tuple(TRIGGER_FOR.values()), TERMINAL, "fulfillment.terminal_absorbs"),
    Rejection(("propose",), ("RESERVED", "PREPARED"), "fulfillment.forward_only"),
    Rejection(("reserve",), ("PREPARED",), "fulfillment.forward_only"),
)

LIFECYCLE = Lifecycle(
    "fulfillment",
    states=STATES,
    terminal=TERMINAL,
    creations=CREATIONS,
    transitions=TRANSITIONS,
    rejections=REJECTIONS,
    guards=GUARDS,
)

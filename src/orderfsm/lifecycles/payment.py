"""Payment lifecycle: APPROVED (delayed capture), PENDING (bank), COMPLETED, CANCELED, FAILED."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ._table import Creation, Lifecycle, Rejection, Transition

STATES = ("APPROVED", "PENDING", "COMPLETED", "CANCELED", "FAILED")
TERMINAL = ("COMPLETED", "CANCELED", "FAILED")

DELAY_ACTIONS = ("CANCEL", "COMPLETE")
DEFAULT_DELAY_CARD_NOT_PRESENT = timedelta(days=7)  # P7D, rendered PT168H
DEFAULT_DELAY_CARD_PRESENT = timedelta(hours=36)  # PT36H
MIN_DELAY = timedelta(minutes=1)
BANK_SETTLE_DELAY = timedelta(seconds=60)


@dataclass(slots=True)
class PaymentContext:
    version_token: str | None = None  # the token the caller sent, if any
    fmt: dict[str, Any] = field(default_factory=dict)
    record_token: str | None = None


def _token_matches(ctx: PaymentContext | None) -> bool:
    if ctx is None or ctx.version_token is None:
        return True
    return ctx.version_token == ctx.record_token


GUARDS = {"payment.version_mismatch": _token_matches}

CREATIONS = (
    Creation("CreatePayment autocomplete=true", "COMPLETED"),
    Creation("CreatePayment autocomplete=false", "APPROVED"),
    Creation("CreatePayment bank transfer", "PENDING"),
    Creation("CreatePayment declined", "FAILED"),
)

TRANSITIONS = (
    Transition("complete", ("APPROVED",), "COMPLETED", ("payment.version_mismatch",),
               note="CompletePayment / PayOrder"),
    Transition("cancel", ("APPROVED",), "CANCELED", note="CancelPayment / PayOrder (unlisted)"),
    Transition("expire_cancel", ("APPROVED",), "CANCELED", note="delayed_until, delay_action=CANCEL"),
    Transition("expire_complete", ("APPROVED",), "COMPLETED", note="delayed_until, delay_action=COMPLETE"),
    Transition("update", ("APPROVED",), None, ("payment.version_mismatch",), note="UpdatePayment"),
    Transition("settle", ("PENDING",), "COMPLETED", note="bank transfer clears"),
    Transition("fail", ("PENDING",), "FAILED", note="bank transfer fails"),
)

_MUTATORS = ("complete", "cancel", "update")

REJECTIONS = (
    Rejection(_MUTATORS, ("COMPLETED",), "payment.already_captured"),
    Rejection(_MUTATORS, ("CANCELED",), "payment.expired", when=lambda p: bool(p.get("_expired"))),
    Rejection(_MUTATORS, ("CANCELED",), "payment.already_canceled"),
    Rejection(_MUTATORS, ("FAILED",), "payment.already_failed"),
    Rejection(_MUTATORS, ("PENDING",), "payment.pending_locked"),
)

LIFECYCLE = Lifecycle(
    "payment",
    states=STATES,
    terminal=TERMINAL,
    creations=CREATIONS,
    transitions=TRANSITIONS,
    rejections=REJECTIONS,
    guards=GUARDS,
    state_field="status",
)

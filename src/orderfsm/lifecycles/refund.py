"""PaymentRefund lifecycle: PENDING -> COMPLETED | REJECTED | FAILED."""

from __future__ import annotations

from datetime import timedelta

from ._table import Creation, Lifecycle, Rejection, Transition

STATES = ("PENDING", "COMPLETED", "REJECTED", "FAILED")
TERMINAL = ("COMPLETED", "REJECTED", "FAILED")
DEFAULT_SETTLE_DELAY = timedelta(seconds=10)

CREATIONS = (
    Creation("RefundPayment (card)", "PENDING"),
    Creation("RefundPayment (cash / external)", "COMPLETED"),
)

TRANSITIONS = (
    Transition("settle", ("PENDING",), "COMPLETED", note="processor completes"),
    Transition("reject", ("PENDING",), "REJECTED", note="Square rejects"),
    Transition("fail", ("PENDING",), "FAILED", note="funds cannot be secured"),
)

REJECTIONS = (
    Rejection(("settle", "reject", "fail"), TERMINAL, "refund.not_pending"),
)

LIFECYCLE = Lifecycle(
    "refund",
    states=STATES,
    terminal=TERMINAL,
    creations=CREATIONS,
    transitions=TRANSITIONS,
    rejections=REJECTIONS,
    guards={},
    state_field="status",
)

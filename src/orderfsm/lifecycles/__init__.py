"""The four resource lifecycles, as data tables run by one shared machine each."""

from ._table import Creation, Lifecycle, Rejection, Transition
from .fulfillment import LIFECYCLE as FULFILLMENT
from .order import LIFECYCLE as ORDER
from .payment import LIFECYCLE as PAYMENT
from .refund import LIFECYCLE as REFUND

LIFECYCLES = {"order": ORDER, "payment": PAYMENT, "refund": REFUND, "fulfillment": FULFILLMENT}

__all__ = ["Creation", "Lifecycle", "Rejection", "Transition", "LIFECYCLES",
           "ORDER", "PAYMENT", "REFUND", "FULFILLMENT"]

"""The engine: one merchant's orders, payments, refunds and fulfillments as a pure aggregate.

No HTTP and no I/O. Time comes from an injected clock, ids from a seeded generator. Each
command either applies completely or raises a :class:`SquareError` built from a catalog rule
and leaves the aggregate exactly as it was (the one documented exception: a declined card
payment is recorded as FAILED and then reported as an error, as Square does).

Records are plain dicts in Square's JSON shape holding only what callers wrote plus server
state; the fields Square computes (totals, tenders, net amounts) are derived when a record is
rendered. Keys starting with ``_`` are internal and never rendered.

The package has one module per resource, each a part of :class:`Engine`: ``orders``,
``payments``, ``capture`` (what happens when a payment is captured or voided), ``refunds``,
``timers``, ``rendering`` and ``queries``, over ``_core`` (records and the shared transaction).
"""

from __future__ import annotations

from ._core import (
    EngineCore,
    DECLINE_NONCES,
    DomainEvent,
    PRICED_LISTS,
    SANDBOX_TOKENS,
    clone,
)
from .orders import (
    OrderCommands,
    CREATABLE_ORDER_FIELDS,
    ORDER_LISTS,
    READ_ONLY_ORDER_FIELDS,
)
from .payments import PaymentCommands, BANK_FAIL_NONCES
from .capture import CaptureEffects
from .refunds import RefundCommands, MAX_REFUNDS, REFUND_YEAR
from .timers import Timers
from .rendering import Rendering, JSON_CACHE_MAX
from .queries import Queries

__all__ = [
    'Engine',
    'BANK_FAIL_NONCES',
    'CREATABLE_ORDER_FIELDS',
    'DECLINE_NONCES',
    'DomainEvent',
    'JSON_CACHE_MAX',
    'MAX_REFUNDS',
    'ORDER_LISTS',
    'PRICED_LISTS',
    'READ_ONLY_ORDER_FIELDS',
    'REFUND_YEAR',
    'SANDBOX_TOKENS',
    'clone',
]


class Engine(
    OrderCommands,
    PaymentCommands,
    CaptureEffects,
    RefundCommands,
    Timers,
    Rendering,
    Queries,
    EngineCore,
):
    """One merchant. Commands return rendered Square objects (fresh copies)."""

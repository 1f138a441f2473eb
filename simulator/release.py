"""Letting go of a replaced merchant without stalling the others.

A merchant replaced by ``POST /_sim/reset`` or ``POST /_sim/state`` may hold a 100,000-order
engine: its record tables, caches and indexes are millions of objects. Dropped in one go, they
are freed by one chain of deallocations in C that holds the GIL (so every other merchant's
requests) for as long as it takes, hundreds of milliseconds. And the merchant and its webhook
outbox refer to each other, so without help nothing but a full garbage collection frees them,
and a merchant loaded in bulk is frozen out of the collector's sight (``bulk_gc``): it would
never be freed at all.

:func:`release` therefore empties the large containers piece by piece, in Python code between
whose steps other threads run, and breaks the merchant's cycle, so what is left is freed by
reference counting as soon as the last request holding the old merchant is done (the merchant
and its outbox, the engine and its catalog refer to each other).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from orderfsm.store import RecordMap

__all__ = ["release", "break_cycles", "drain"]

#: Engine attributes that hold a merchant's records, caches and indexes.
ENGINE_PARTS = ("orders", "payments", "refunds", "payment_keys", "order_index",
                "payment_index", "refund_index", "_json_cache", "timer_table", "_timers")
#: A container at least this long is emptied piece by piece; a shorter one is freed at once.
BIG = 512


def drain(obj: Any) -> None:
    """Empty ``obj`` (a dict, list, set, deque, record table or index) one item at a time,
    recursing into items that are large containers themselves."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            while item:
                _, value = item.popitem()
                _push(stack, value)
        elif isinstance(item, (list, deque)):
            while item:
                _push(stack, item.pop())
        elif isinstance(item, set):
            item.clear()  # ids and index keys: strings and tuples, a few ms for 100,000
        elif isinstance(item, RecordMap):
            stack.extend((item.cache, item.pending, item.flushing))
            if item.known is not None:
                stack.append(item.known)
        else:
            _push_parts(stack, item)


def _push(stack: list, value: Any) -> None:
    if isinstance(value, (dict, list, set, deque)):
        if len(value) >= BIG:
            stack.append(value)
    elif not isinstance(value, (str, int, float, tuple, bytes, type(None))):
        _push_parts(stack, value)


def _push_parts(stack: list, obj: Any) -> None:
    """The containers inside an index (``_Sorted``, ``TimeIndex``, ``OrderIndex``, and the
    ``SortedList`` under them)."""
    module = type(obj).__module__ or ""
    if not (module.startswith("orderfsm.index") or module.startswith("sortedcontainers")):
        return
    names = getattr(obj, "__slots__", ()) or tuple(getattr(obj, "__dict__", {}))
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, (dict, list, set, deque)) or (
                value is not None and not isinstance(value, (str, int, float, tuple))):
            stack.append(value)


def release(merchant: Any) -> None:
    """Let go of a merchant that was replaced (and closed): its records, caches, indexes and
    webhook events are emptied piece by piece, then its cycles are broken
    (:func:`break_cycles`). Call it off the event loop. Its outbox is no longer served (the
    dispatcher has the new merchant's), and a delivery still in flight from it looks events
    up with ``get``, so emptying them is safe."""
    engine = merchant.engine
    for name in ENGINE_PARTS:
        part = getattr(engine, name, None)
        if part is not None:
            drain(part)
    drain(merchant.idempotency._seen)
    outbox = merchant.extra.get("webhooks")
    if outbox is not None:  # up to 10,000 events with their payloads and deliveries
        drain(outbox.by_id)
        drain(outbox.events)
    break_cycles(merchant)


def break_cycles(merchant: Any) -> None:
    """Drop a closed merchant's ``extra`` (webhook outbox, hooks), which ends the merchant <->
    outbox cycle, and the engine <-> catalog one, so the merchant is freed by reference
    counting. Without this, a copy that a full collection had seen alive (and the serving
    GC policy froze, see gc_policy.py) would never be freed."""
    merchant.extra = {}
    engine = merchant.engine
    catalog = getattr(engine, "catalog", None)
    if getattr(catalog, "_engine", None) is engine:
        catalog._engine = None

"""``GET/POST /_sim/state``: a merchant as one versioned JSON document.

Version 2 (today) is the merchant's records, grouped by kind and id, exactly as the store keeps
them, with the records' own version::

    {"format": "orderfsm.simulator.state", "version": 2, "record_version": 1,
     "records": {"meta": {"engine": {...}, "webhooks": {...}}, "location": {...},
                 "order": {...}, "payment": {...},
                 "refund": {...}, "payment_key": {...}, "timer": {...}, "catalog": {...},
                 "idem": {...}, "subscription": {...}, "event": {...}}}

so it carries everything a merchant has: orders, payments, refunds, locations, id counters,
idempotency records, the clock, variants, the catalog with every object's versions, webhook
subscriptions with their faults, events and deliveries with their retry schedule. Version 1 (``engine`` and ``idempotency``, no webhooks)
still loads.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from orderfsm.engine import Engine
from orderfsm.store.records import engine_rows
from orderfsm.store.schema import RECORD_VERSION, migrate_record

from .idempotency import IdempotencyStore
from .store import Merchant

__all__ = ["STATE_FORMAT", "STATE_VERSION", "KINDS", "dump_state", "rows_from_snapshot"]

STATE_FORMAT = "orderfsm.simulator.state"
STATE_VERSION = 2
#: Every kind of record a merchant has, in dump order.
KINDS = ["meta", "location", "order", "payment", "refund", "payment_key", "timer", "catalog",
         "idem", "subscription", "event"]


def dump_state(m: Merchant) -> bytes:
    """The merchant's snapshot as JSON bytes, straight from its store (no record is parsed
    when the store keeps JSON text). Call :meth:`Merchant.flush` first."""
    state = m.state
    assert state is not None
    parts = [json.dumps({"format": STATE_FORMAT, "version": STATE_VERSION,
                         "record_version": RECORD_VERSION})[:-1], ',"records":{']
    for i, kind in enumerate(KINDS):
        if i:
            parts.append(",")
        parts.append(json.dumps(kind) + ":{")
        parts.append(",".join(json.dumps(ident) + ":" + text
                              for ident, text in state.scan_json(m.gen, kind)))
        parts.append("}")
    parts.append("}}")
    return "".join(parts).encode("utf-8")


def rows_from_snapshot(body: dict[str, Any], *, record_events: bool
                       ) -> Iterator[tuple[str, str, Any]]:
    """The records a snapshot describes, migrated to today's record version."""
    if body.get("version") == 1:
        yield from _rows_from_v1(body, record_events)
        return
    version = body.get("record_version", RECORD_VERSION)
    if not isinstance(version, int):
        raise ValueError("record_version must be an integer")
    records = body["records"]
    if not isinstance(records, dict) or "engine" not in records.get("meta", {}):
        raise KeyError("records.meta.engine")
    for kind, table in records.items():
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}")
        for ident, data in table.items():
            yield kind, ident, migrate_record(kind, version, data)


def _rows_from_v1(body: dict[str, Any], record_events: bool) -> Iterator[tuple[str, str, Any]]:
    engine = Engine.restore(body["engine"], record_events=record_events)
    yield from engine_rows(engine)
    for ident, value in IdempotencyStore.rows_from_snapshot(body.get("idempotency") or []):
        yield "idem", ident, value

"""An engine as records, and back.

Kinds: ``meta/engine`` (ids, clock, variants: everything small), ``location``, ``order``,
``payment``, ``refund`` (the engine's records as they are), ``payment_key`` (idempotency key ->
payment id, for CancelPaymentByIdempotencyKey), ``timer`` (sequence -> [due, kind, id]),
``catalog`` (object id -> every version of the object) and ``meta/catalog`` (its version).
Indexes are not stored: :func:`load_engine` rebuilds them.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any, Iterator, Mapping

from ..clock import ManualClock, parse_rfc3339
from ..engine import Engine
from .base import RecordMap, StateStore

__all__ = ["ENGINE_TABLES", "engine_header", "attach", "engine_rows", "load_engine",
           "engine_from_rows"]

#: Engine attribute -> record kind, for the records kept one per row.
ENGINE_TABLES = {"orders": "order", "payments": "payment", "refunds": "refund",
                 "payment_keys": "payment_key"}


def engine_header(engine: Engine) -> dict[str, Any]:
    return {
        "merchant_id": engine.merchant_id,
        "main_location_id": engine.main_location_id,
        "currency": engine.currency,
        "now": engine.clock.now().isoformat(),
        "id_counter": engine.ids.counter,
        "seed": engine.ids.seed,
        "variants": dict(engine.variants),
        "timer_seq": engine._timer_seq,
        "refund_settle_delay": engine.refund_settle_delay.total_seconds(),
    }


def catalog_changes(engine: Engine) -> dict[tuple[str, str], Any]:
    """The catalog objects changed since the last call, and the catalog's version."""
    catalog = engine.catalog
    if not catalog.dirty:
        return {}
    dirty, catalog.dirty = catalog.dirty, set()
    out: dict[tuple[str, str], Any] = {("catalog", oid): catalog.history[oid]
                                       for oid in dirty if oid in catalog.history}
    out[("meta", "catalog")] = {"version": catalog.version, "updated_at": catalog.updated_at}
    return out


def _load_catalog(eng: Engine, meta: Mapping[str, Any] | None,
                  history: Mapping[str, Any]) -> None:
    if meta is None and not history:
        return
    meta = meta or {}
    eng.catalog.restore({"version": meta.get("version", 0), "updated_at": meta.get("updated_at"),
                         "history": dict(history)})
    eng.catalog.dirty = set()


def location_changes(engine: Engine) -> dict[tuple[str, str], Any]:
    """The locations, as changes to commit (they are written once, with the merchant)."""
    return {("location", ident): loc for ident, loc in engine.locations.items()}


def attach(engine: Engine, store: StateStore, gen: int) -> None:
    """Point an engine's tables at a store generation. What the engine holds is written to the
    tables (as changes to commit, for a store that collects them)."""
    for attr, kind in ENGINE_TABLES.items():
        table = store.table(gen, kind)
        current = getattr(engine, attr)
        if current is not table:
            for key, value in current.items():
                table[key] = value
            setattr(engine, attr, table)
    timers = store.table(gen, "timer")
    for due, seq, kind, ident in engine._timers:
        timers[str(seq)] = [due.isoformat(), kind, ident]
    engine.timer_table = timers


def engine_rows(engine: Engine) -> Iterator[tuple[str, str, Any]]:
    """Every record of an engine (header first)."""
    yield "meta", "engine", engine_header(engine)
    for ident, loc in engine.locations.items():
        yield "location", ident, loc
    for attr, kind in ENGINE_TABLES.items():
        for key, value in getattr(engine, attr).items():
            yield kind, key, value
    for due, seq, kind, ident in engine._timers:
        yield "timer", str(seq), [due.isoformat(), kind, ident]
    catalog = engine.catalog
    if catalog.history:
        yield "meta", "catalog", {"version": catalog.version, "updated_at": catalog.updated_at}
        for oid, versions in catalog.history.items():
            yield "catalog", oid, versions


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return parse_rfc3339(text)


def _new_engine(header: Mapping[str, Any], record_events: bool,
                clock: ManualClock | None = None) -> Engine:
    eng = Engine.from_header(header, _parse_time(header["now"]), clock=clock,
                             record_events=record_events)
    if "locations" in header:
        eng.locations = dict(header["locations"])
    eng.ids.counter = header["id_counter"]
    eng._timer_seq = header.get("timer_seq", 0)
    return eng


def _index(eng: Engine) -> None:
    for rec in eng.orders.values():
        eng.order_index.add(rec)
    for rec in eng.payments.values():
        eng.payment_index.add(rec["id"], rec["created_at"], rec["location_id"])
    for rec in eng.refunds.values():
        eng.refund_index.add(rec["id"], rec["created_at"], rec["location_id"])


def load_engine(store: StateStore, gen: int, *, record_events: bool) -> Engine | None:
    """The engine kept in a generation, with its indexes rebuilt, or None if it has none."""
    header = store.get(gen, "meta", "engine")
    if header is None:
        return None
    eng = _new_engine(header, record_events)
    locations = dict(store.scan(gen, "location"))
    if locations:
        eng.locations = locations
    for attr, kind in ENGINE_TABLES.items():
        setattr(eng, attr, store.table(gen, kind))
    # Rebuild the indexes one record at a time (never all records in memory at once); the
    # tables' sets of known ids share the id strings with the indexes.
    ids: list[str] = []

    def orders() -> Iterator[Mapping[str, Any]]:
        for _, rec in store.scan(gen, "order"):
            ids.append(rec["id"])
            yield rec

    eng.order_index.add_many(orders())
    _track(eng.orders, ids)
    for attr, index in (("payments", eng.payment_index), ("refunds", eng.refund_index)):
        ids = []
        items = []
        for _, rec in store.scan(gen, ENGINE_TABLES[attr]):
            items.append((rec["id"], rec["created_at"], rec["location_id"]))
            ids.append(rec["id"])
        index.add_many(items)
        _track(getattr(eng, attr), ids)
    eng._timers = [(_parse_time(due), int(seq), kind, ident)
                   for seq, (due, kind, ident) in store.scan(gen, "timer")]
    heapq.heapify(eng._timers)
    eng.timer_table = store.table(gen, "timer")
    _load_catalog(eng, store.get(gen, "meta", "catalog"), dict(store.scan(gen, "catalog")))
    return eng


def _track(table: Any, ids: list[str]) -> None:
    if isinstance(table, RecordMap):
        table.track(ids)


def engine_from_rows(tables: Mapping[str, Mapping[str, Any]], *, record_events: bool) -> Engine:
    """An in-memory engine from records grouped by kind (a snapshot's ``records``)."""
    header = tables["meta"]["engine"]
    eng = _new_engine(header, record_events)
    if tables.get("location"):
        eng.locations = dict(tables["location"])
    for attr, kind in ENGINE_TABLES.items():
        setattr(eng, attr, dict(tables.get(kind, {})))
    _index(eng)
    eng._timers = [(_parse_time(due), int(seq), kind, ident)
                   for seq, (due, kind, ident) in tables.get("timer", {}).items()]
    heapq.heapify(eng._timers)
    _load_catalog(eng, tables["meta"].get("catalog"), tables.get("catalog", {}))
    return eng

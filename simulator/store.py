"""Merchants: one per access token, each with its own engine, clock and idempotency store,
kept in a :class:`~orderfsm.store.StateStore` (memory by default, SQLite for ``orderfsm serve``).

A merchant's changes collect in its tables while a request runs and are committed together by
:meth:`Merchant.flush`, which the app calls before a response starts: an answer the client sees
is already stored. Reset and restore build the merchant's next generation beside the live one
and switch the token over in one short transaction (see :mod:`orderfsm.store.base`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Mapping

from orderfsm.clock import ManualClock
from orderfsm.coverage import Coverage, Observer
from orderfsm.engine import Engine
from orderfsm.rules import Variants
from orderfsm.store import MemoryStore, RecordMap, StateStore
from orderfsm.store.records import (ENGINE_TABLES, attach, catalog_changes, engine_header,
                                    load_engine, location_changes)

from .idempotency import IdempotencyStore

__all__ = ["SimulatorConfig", "Merchant", "Store", "bulk_gc"]

_bulk_lock = threading.Lock()
_bulk_depth = 0
_bulk_freeze = False
#: Records in a load or restore from which what it built is frozen (see bulk_gc).
FREEZE_FROM = 20_000


class _Bulk:
    records = 0


@contextlib.contextmanager
def bulk_gc() -> Iterator[_Bulk]:
    """Around loading a merchant: no garbage collection while it runs, and when it loaded
    many records (``FREEZE_FROM``), what it built is frozen afterwards (``gc.freeze``).
    Without this, the millions of objects a 100,000-order restore creates trigger full
    collections that stop every thread, and so every other merchant's requests, for up to a
    second; frozen, they are never looked at by a collection again."""
    global _bulk_depth, _bulk_freeze
    bulk = _Bulk()
    with _bulk_lock:
        _bulk_depth += 1
        if _bulk_depth == 1:
            gc.disable()
    try:
        yield bulk
    finally:
        with _bulk_lock:
            _bulk_depth -= 1
            _bulk_freeze = _bulk_freeze or bulk.records >= FREEZE_FROM
            if _bulk_depth == 0:
                if _bulk_freeze:
                    gc.freeze()
                _bulk_freeze = False
                gc.enable()


def _break_cycles(m: "Merchant") -> None:
    from .release import break_cycles

    break_cycles(m)


def _counted(rows: Iterable[Any], bulk: _Bulk) -> Iterator[Any]:
    for row in rows:
        bulk.records += 1
        yield row


@dataclass
class SimulatorConfig:
    """How a simulator behaves. ``variants`` holds rule variants (``NAME=VALUE``). ``db`` is
    where state lives: None or ``"memory"``, a SQLite path or ``sqlite:///PATH`` URL, or a
    :class:`~orderfsm.store.StateStore`; ``durability`` is ``normal`` (survives the process
    being killed) or ``full`` (also survives power loss)."""

    variants: Mapping[str, str] | None = None
    seed: int = 0
    refund_settle_seconds: float = 10.0
    clock_start: datetime | None = None
    log_requests: bool = True
    webhooks: bool = True
    #: CatalogObjects every merchant starts with (``orderfsm serve --catalog FILE``).
    catalog: list[dict[str, Any]] | None = None
    #: Largest request body accepted, in bytes (413 REQUEST_ENTITY_TOO_LARGE above it).
    max_body_bytes: int | None = 1024 * 1024
    #: The same for ``POST /_sim/state`` (a snapshot of 100,000 orders is about 35 MiB).
    max_state_bytes: int | None = 1024 ** 3
    #: Hosts webhook deliveries may go to besides loopback ("*" allows any host).
    webhook_allow: tuple[str, ...] = ()
    db: Any = None
    durability: str = "normal"

    def resolved_variants(self) -> Variants:
        return Variants(self.variants)


@dataclass(eq=False)
class Merchant:
    token: str
    engine: Engine
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)
    extra: dict[str, Any] = field(default_factory=dict)
    gen: int = 0
    state: StateStore | None = None
    closed: bool = False
    #: The merchant's change counter this copy reflects (shared stores; -1: reload it).
    seq: int = -1
    _flush_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _header: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def clock(self) -> ManualClock:
        return self.engine.clock  # type: ignore[return-value]

    def _tables(self) -> list[RecordMap]:
        tables = [getattr(self.engine, attr) for attr in ENGINE_TABLES]
        tables += [self.engine.timer_table, self.idempotency._seen]
        return [t for t in tables if isinstance(t, RecordMap)]

    def flush(self) -> None:
        """Commit everything this merchant changed since the last flush, in one transaction."""
        state = self.state
        if state is None:
            return
        with self._flush_lock:
            if self.closed:
                return
            tables = self._tables()
            changes: dict[tuple[str, str], Any] = {}
            for table in tables:
                kind = table.kind
                for key, value in table.take().items():
                    changes[(kind, key)] = value
            header = engine_header(self.engine)
            if header != self._header:
                changes[("meta", "engine")] = header
            changes.update(catalog_changes(self.engine))
            ob = self.extra.get("webhooks")
            if ob is not None:
                from .outbox import take_outbox_changes

                changes.update(take_outbox_changes(ob))
            if changes:
                state.commit(self.gen, changes)  # on failure, the tables keep their changes
            self._header = header
            for table in tables:
                table.done()

    def persist_outbox(self) -> None:
        """Commit the webhook outbox's changes only (delivery results, from its threads)."""
        state = self.state
        ob = self.extra.get("webhooks")
        if state is None or ob is None:
            return
        from .outbox import take_outbox_changes

        with self._flush_lock:
            if self.closed:
                return
            changes = take_outbox_changes(ob)
            if changes:
                state.commit(self.gen, changes)

    def close(self) -> None:
        """Stop writing: the merchant was replaced (reset or restore)."""
        with self._flush_lock:
            self.closed = True


class Store:
    """Token -> merchant, created on first use with one ACTIVE main location."""

    def __init__(self, config: SimulatorConfig, state: StateStore | None = None) -> None:
        self.config = config
        self.variants = config.resolved_variants()
        self.state: StateStore = state if state is not None else MemoryStore()
        self.merchants: dict[str, Merchant] = {}
        self.on_new_merchant: list = []  # callbacks(merchant), e.g. the webhook outbox
        self.restored = 0
        self._lock = threading.RLock()
        self.coverage: dict[str, Coverage] = {}  # per token; a reset keeps it

    def coverage_for(self, token: str) -> Coverage:
        cov = self.coverage.get(token)
        if cov is None:
            cov = self.coverage[token] = Coverage()
        return cov

    def observe(self, engine: Engine, token: str) -> Engine:
        """Give ``engine`` a fresh observer that counts into the token's coverage."""
        engine.observer = Observer(self.coverage_for(token))
        return engine

    def _seed_for(self, token: str) -> str:
        digest = hashlib.blake2b(token.encode(), digest_size=8).hexdigest()
        return f"{self.config.seed}:{digest}"

    def new_engine(self, token: str) -> Engine:
        engine = self._engine(token)
        if self.config.catalog:
            from .routes.catalog import seed_objects

            seed_objects(engine, self.config.catalog, emit=False)
        return engine

    def _engine(self, token: str) -> Engine:
        return self.observe(Engine(
            clock=ManualClock(self.config.clock_start),
            seed=self._seed_for(token),
            variants=Variants(dict(self.variants)),
            refund_settle_delay=timedelta(seconds=self.config.refund_settle_seconds),
            record_events=self.config.webhooks,
        ), token)

    # ---------------------------------------------------------------- loading
    def load(self) -> int:
        """Bring back every merchant the state store holds; returns how many. A shared store's
        merchants are loaded when first used instead (other processes change them)."""
        if self.state.shared:
            self.restored = len(self.state.merchants())
            return self.restored
        count = 0
        # Variants the server was started with (``serve --variant``) win over stored ones.
        chosen = self.variants.non_default()
        with bulk_gc() as bulk:  # what was loaded stays: frozen, no collection looks at it
            for token, gen in sorted(self.state.merchants().items()):
                m = self._load(token, gen)
                if m is None:
                    continue
                bulk.records += sum(len(getattr(m.engine, attr)) for attr in ENGINE_TABLES)
                if chosen:
                    m.engine.variants = Variants({**dict(m.engine.variants), **chosen})
                self._publish(m)
                count += 1
        self.restored = count
        return count

    def _load(self, token: str, gen: int) -> Merchant | None:
        engine = load_engine(self.state, gen, record_events=self.config.webhooks)
        if engine is None:
            return None
        self.observe(engine, token)
        m = Merchant(token=token, engine=engine,
                     idempotency=IdempotencyStore(self.state.table(gen, "idem")),
                     gen=gen, state=self.state)
        m._header = engine_header(engine)
        return m

    def _load_outbox(self, m: Merchant) -> None:
        ob = m.extra.get("webhooks")
        if ob is None:
            return
        from .outbox import load_outbox

        state = self.state
        load_outbox(ob, state.get(m.gen, "meta", "webhooks"),
                    [rec for _, rec in state.scan(m.gen, "subscription")],
                    [rec for _, rec in state.scan(m.gen, "event")])
        if ob.pending:
            ob.dispatcher.start()  # retries that are due go out without waiting for a request

    def _publish(self, m: Merchant, *, stored: bool = True) -> None:
        """Make ``m`` the token's merchant and give it its outbox (filled from the store)."""
        self.merchants[m.token] = m
        for callback in self.on_new_merchant:
            callback(m)
        if stored:
            self._load_outbox(m)

    # ---------------------------------------------------------------- merchants
    def _fresh(self, token: str) -> Merchant:
        engine = self.new_engine(token)
        gen = self.state.new_generation()
        attach(engine, self.state, gen)
        m = Merchant(token=token, engine=engine,
                     idempotency=IdempotencyStore(self.state.table(gen, "idem")),
                     gen=gen, state=self.state)
        self.state.commit(gen, location_changes(engine))
        m.flush()
        return m

    def merchant(self, token: str) -> Merchant:
        if self.state.shared:
            session = self.state.current()  # type: ignore[attr-defined]
            if session is None or session.token != token:
                with self.locked(token) as m:  # outside a request's session: a short one
                    return m
        m = self.merchants.get(token)
        if m is None:
            with self._lock:
                m = self.merchants.get(token)
                if m is None:
                    m = self._fresh(token)
                    self.state.activate(token, m.gen)
                    self._publish(m, stored=False)
        return m

    def _replace(self, token: str, m: Merchant, *, stored: bool) -> Merchant:
        with self._lock:
            old = self.merchants.get(token)
            if old is not None:
                old.close()
            previous = self.state.activate(token, m.gen)
            self._publish(m, stored=stored)
        for gen in {previous, old.gen if old is not None else None} - {None, m.gen}:
            self.state.discard(gen)  # type: ignore[arg-type]
        if old is not None and old is not m:
            from .release import release

            release(old)  # piece by piece, and not kept by a cycle (see release.py)
        return m

    def reset(self, token: str) -> Merchant:
        """A brand-new merchant for ``token``; the old one's records are deleted."""
        return self._replace(token, self._fresh(token), stored=False)

    def restore(self, token: str, rows: Iterable[tuple[str, str, Any]]) -> Merchant:
        """Replace the token's merchant with the one ``rows`` describe (records by kind and
        id). Raises KeyError/TypeError/ValueError, and changes nothing, when they do not make
        a merchant."""
        gen = self.state.new_generation()
        with bulk_gc() as bulk:
            try:
                self.state.write_bulk(gen, _counted(rows, bulk))
                m = self._load(token, gen)
                if m is None:
                    raise KeyError("meta/engine")
            except BaseException:
                self.state.discard(gen)
                raise
            return self._replace(token, m, stored=True)

    def flush_all(self) -> None:
        if self.state.shared:
            return  # every session committed its changes; a write now would not hold the row
        for m in list(self.merchants.values()):
            m.flush()

    # ---------------------------------------------------------------- shared stores
    # A shared store (PostgreSQL) has other processes changing the same merchants. A request
    # (or a webhook delivery) runs in a session holding the merchant's row: ``enter`` brings
    # this process's copy up to date, ``finish`` commits and records the counter the copy now
    # reflects, ``abandon`` rolls back and marks the copy for a reload.
    def is_current(self, session: Any) -> bool:
        """This process's copy is what the session's row says (``enter`` has nothing to do)."""
        m = self.merchants.get(session.token)
        return (m is not None and m.gen == session.gen and m.seq == session.seq
                and not m.closed)

    def enter(self, session: Any) -> Merchant | None:
        """The token's merchant as the database has it now (None: not created yet)."""
        token = session.token
        m = self.merchants.get(token)
        if session.gen == 0:
            if m is not None:  # the store no longer has it (wiped)
                with self._lock:
                    self.merchants.pop(token, None)
                m.close()
                _break_cycles(m)
            return None
        if m is not None and m.gen == session.gen and m.seq == session.seq and not m.closed:
            return m
        return self._reload(token, session.gen, session.seq, m)

    def _reload(self, token: str, gen: int, seq: int, old: Merchant | None) -> Merchant:
        chosen = self.variants.non_default()
        # No collection while it loads, but nothing frozen either (as a start-up load is):
        # a merchant reloaded again and again would leave every frozen copy behind.
        with bulk_gc():
            m = self._load(token, gen)
            if m is None:
                raise RuntimeError(f"generation {gen} of a merchant has no engine record")
            if chosen:
                m.engine.variants = Variants({**dict(m.engine.variants), **chosen})
            m.seq = seq
            with self._lock:
                if old is not None:
                    old.close()
                self._publish(m)
        if old is not None:
            _break_cycles(old)  # freed now, not left to (or frozen by) the collector
        return m

    def pending_deliveries(self, token: str) -> int:
        m = self.merchants.get(token)
        ob = m.extra.get("webhooks") if m is not None else None
        return len(ob.pending) if ob is not None else 0

    def finish(self, session: Any) -> None:
        """Commit the session; the token's merchant reflects the counter it left."""
        self.state.finish(session, pending=self.pending_deliveries(session.token))  # type: ignore[attr-defined]
        m = self.merchants.get(session.token)
        if m is not None and m.gen == session.gen and not m.closed:
            m.seq = session.seq

    def abandon(self, session: Any) -> None:
        """Roll the session back; the copy in memory may hold what was rolled back."""
        try:
            self.state.abort(session)  # type: ignore[attr-defined]
        finally:
            m = self.merchants.get(session.token)
            if m is not None:
                m.seq = -1

    @contextlib.contextmanager
    def locked(self, token: str) -> Iterator[Merchant]:
        """A session of its own (blocking): the merchant, current, for the block; what the
        block changed is committed when it ends."""
        state = self.state
        session = state.lock(token)  # type: ignore[attr-defined]
        bound = state.bind(session)  # type: ignore[attr-defined]
        done = False
        try:
            m = self.enter(session) or self.merchant(token)
            yield m
            m = self.merchants.get(token) or m
            ob = m.extra.get("webhooks")
            if ob is not None:
                ob.drain()
            m.flush()
            self.finish(session)
            done = True
        finally:
            if not done:
                self.abandon(session)
            state.unbind(bound)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.flush_all()
        self.state.close()


def merchant_rows(m: Merchant) -> Iterable[tuple[str, str, Any]]:
    """Every record of a merchant, as they are now (for a snapshot)."""
    from orderfsm.store.records import engine_rows

    from .outbox import outbox_rows

    yield from engine_rows(m.engine)
    for key, value in m.idempotency._seen.items():
        yield "idem", key, value
    ob = m.extra.get("webhooks")
    if ob is not None:
        yield from outbox_rows(ob)


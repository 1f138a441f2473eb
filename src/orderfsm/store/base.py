"""The store interface: what the simulator needs to keep merchants across restarts.

A store holds *records*: JSON values addressed by (generation, kind, id). A generation is one
life of one merchant. ``POST /_sim/reset`` and ``POST /_sim/state`` never rewrite a merchant in
place: they write a new generation beside the live one (in small transactions, so other
merchants' writes never queue behind a bulk load) and then point the merchant's token at it in
one short transaction. The old generation is deleted afterwards, also in small steps.

Everything else is :meth:`StateStore.commit`: one transaction per request with every record the
request changed, called before the response is sent. Reads by id serve records that are not in
memory (SQLite keeps a bounded cache in front of them, see :class:`RecordMap`).

The interface is deliberately small (ten methods over plain SQL in the SQLite store) so that a
PostgreSQL store can implement it with the same schema and migrations.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, Iterable, Iterator, Mapping, MutableMapping

__all__ = ["StateStore", "RecordMap", "DELETE", "Key", "store_stats"]

Key = tuple[str, str]  # (kind, id)


class _Delete:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DELETE"


#: The value of a record to delete in a :meth:`StateStore.commit`.
DELETE: Any = _Delete()


class StateStore(ABC):
    """Where merchants' records live. Implementations are safe to call from any thread."""

    #: A short description for the start-up line (a path, ``memory``, ...).
    location: str = ""
    #: True when records outlive the process.
    durable: bool = False
    #: True when other processes change the same merchants (PostgreSQL): each request then
    #: runs in a transaction holding the merchant's row (see ``orderfsm.store.postgres``).
    shared: bool = False
    #: The schema version the database had when this store opened it (SQL stores).
    upgraded_from: int | None = None

    def stats(self) -> dict[str, int]:
        """The schema version and the counts ``orderfsm db check`` prints."""
        raise NotImplementedError(f"{type(self).__name__} keeps no schema")

    @abstractmethod
    def merchants(self) -> dict[str, int]:
        """Every merchant token and its live generation."""

    @abstractmethod
    def new_generation(self) -> int:
        """A generation number never handed out before."""

    @abstractmethod
    def activate(self, token: str, gen: int) -> int | None:
        """Make ``gen`` the token's live generation, atomically; returns the previous one."""

    @abstractmethod
    def commit(self, gen: int, changes: Mapping[Key, Any]) -> None:
        """Write (or, for :data:`DELETE`, remove) records of ``gen`` in one transaction."""

    @abstractmethod
    def write_bulk(self, gen: int, rows: Iterable[tuple[str, str, Any]]) -> None:
        """Fill a generation that is not live yet, in as many transactions as suits the store."""

    @abstractmethod
    def get(self, gen: int, kind: str, ident: str) -> Any | None:
        """One record, migrated to the current schema, or None."""

    @abstractmethod
    def scan(self, gen: int, kind: str) -> Iterator[tuple[str, Any]]:
        """(id, record) of every record of a kind, migrated, in the order the records were
        first written."""

    @abstractmethod
    def ids(self, gen: int, kind: str) -> Iterator[str]:
        """The ids of every record of a kind (no record is read)."""

    @abstractmethod
    def scan_json(self, gen: int, kind: str) -> Iterator[tuple[str, str]]:
        """(id, JSON text) of every record of a kind, for dumps that need no parsing."""

    @abstractmethod
    def discard(self, gen: int) -> None:
        """Delete every record of a generation that is no longer live."""

    @abstractmethod
    def wipe(self) -> None:
        """Forget every merchant (``orderfsm serve --fresh``)."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def table(self, gen: int, kind: str, cache: int = 0) -> MutableMapping[str, Any]:
        """The records of one kind as a mapping the engine reads and writes. Writes are
        collected until :meth:`RecordMap.take` hands them to :meth:`commit`."""
        return RecordMap(self, gen, kind, cache)


class RecordMap(MutableMapping):
    """A kind's records: written changes (until committed), a bounded cache, then the store.

    ``pending`` holds what the engine wrote since the last commit; ``flushing`` what a commit
    in progress is writing (readers must still see it there until the store has it). ``known``
    is the set of ids the kind has, once :meth:`track` filled it: then a lookup of an id that
    does not exist (every new record's id, when it is first written) never reaches the store."""

    __slots__ = ("store", "gen", "kind", "cache", "limit", "pending", "flushing", "known",
                 "_lock")

    def __init__(self, store: StateStore, gen: int, kind: str, cache: int = 0) -> None:
        self.store = store
        self.gen = gen
        self.kind = kind
        self.cache: dict[str, Any] = {}
        self.limit = cache
        self.pending: dict[str, Any] = {}
        self.flushing: dict[str, Any] = {}
        self.known: set[str] | None = None
        self._lock = threading.Lock()

    def track(self, ids: Iterable[str] | None = None) -> "RecordMap":
        """Keep the set of ids in memory (read from the store unless given)."""
        self.known = set(self.store.ids(self.gen, self.kind) if ids is None else ids)
        return self

    def _cached(self, key: str, value: Any) -> None:
        if not self.limit:
            return
        cache = self.cache
        if len(cache) >= self.limit:
            try:
                del cache[next(iter(cache))]
            except (StopIteration, KeyError, RuntimeError):
                pass
        cache[key] = value

    def get(self, key: Any, default: Any = None) -> Any:
        if type(key) is not str:
            return default
        for layer in (self.pending, self.flushing):
            if key in layer:
                value = layer[key]
                return default if value is DELETE else value
        value = self.cache.get(key)
        if value is not None:
            return value
        if self.known is not None and key not in self.known:
            return default
        value = self.store.get(self.gen, self.kind, key)
        if value is None:
            return default
        self._cached(key, value)
        return value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, DELETE)
        if value is DELETE:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key, DELETE) is not DELETE

    def __setitem__(self, key: str, value: Any) -> None:
        self.pending[key] = value
        if self.known is not None:
            self.known.add(key)
        if self.limit:
            self.cache.pop(key, None)
            self._cached(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.pending[key] = DELETE
        self.cache.pop(key, None)
        if self.known is not None:
            self.known.discard(key)

    def pop(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = self.get(key, DELETE)
        if value is DELETE:
            return default
        del self[key]
        return value

    def _merged(self) -> dict[str, Any]:
        out = {k: v for k, v in self.store.scan(self.gen, self.kind)}
        for layer in (self.flushing, self.pending):
            for k, v in layer.items():
                if v is DELETE:
                    out.pop(k, None)
                else:
                    out[k] = v
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged())

    def __len__(self) -> int:
        if self.known is not None:
            return len(self.known)
        return len(self._merged())

    def items(self):  # type: ignore[override]
        return self._merged().items()

    def values(self):  # type: ignore[override]
        return self._merged().values()

    def take(self) -> dict[str, Any]:
        """Move the written changes to ``flushing`` and return them (see :meth:`done`)."""
        with self._lock:
            taken, self.pending = self.pending, {}
            if self.flushing:
                taken = {**self.flushing, **taken}
            self.flushing = taken
            return taken

    def done(self) -> None:
        """The changes handed out by :meth:`take` are in the store now."""
        self.flushing = {}

    def __repr__(self) -> str:
        return f"RecordMap({self.kind!r}, gen={self.gen})"


def store_stats(db: Any) -> dict[str, int]:
    """``stats`` for a SQL store, over a DB-API connection (the SQL is the same for both)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except Exception:  # an empty database: no tables yet
        return {"schema_version": 0, "merchants": 0, "orders": 0, "payments": 0, "refunds": 0}
    out = {"schema_version": int(row[0]) if row else 0}
    out["merchants"] = int(db.execute(
        "SELECT COUNT(*) FROM merchants WHERE gen > 0").fetchone()[0])
    counts = dict(db.execute(
        "SELECT r.kind, COUNT(*) FROM records r JOIN merchants m ON r.gen = m.gen "
        "WHERE r.kind IN ('order', 'payment', 'refund') GROUP BY r.kind").fetchall())
    for kind, name in (("order", "orders"), ("payment", "payments"), ("refund", "refunds")):
        out[name] = int(counts.get(kind, 0))
    return out

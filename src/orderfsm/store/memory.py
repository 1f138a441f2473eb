"""The memory store: records live in dicts for the process's lifetime.

It is the default for in-process use (``create_app()``, ``running()``, the pytest fixtures).
Its tables are plain dicts that the engine writes directly, so keeping state costs nothing on
the request path; a second app built on the same :class:`MemoryStore` object restores its
merchants like a SQLite file would. Committed records are shared, never copied: the engine never
changes a committed record in place.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any, Iterable, Iterator, Mapping, MutableMapping

from .base import DELETE, Key, StateStore

__all__ = ["MemoryStore"]


class MemoryStore(StateStore):
    location = "memory"
    durable = False

    def __init__(self) -> None:
        self._tokens: dict[str, int] = {}
        self._gens: dict[int, dict[str, dict[str, Any]]] = {}
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def _kind(self, gen: int, kind: str) -> dict[str, Any]:
        tables = self._gens.setdefault(gen, {})
        table = tables.get(kind)
        if table is None:
            table = tables[kind] = {}
        return table

    def merchants(self) -> dict[str, int]:
        with self._lock:
            return dict(self._tokens)

    def new_generation(self) -> int:
        with self._lock:
            gen = next(self._next)
            self._gens[gen] = {}
            return gen

    def activate(self, token: str, gen: int) -> int | None:
        with self._lock:
            old = self._tokens.get(token)
            self._tokens[token] = gen
            return old

    def commit(self, gen: int, changes: Mapping[Key, Any]) -> None:
        with self._lock:
            for (kind, ident), value in changes.items():
                table = self._kind(gen, kind)
                if value is DELETE:
                    table.pop(ident, None)
                else:
                    table[ident] = value

    def write_bulk(self, gen: int, rows: Iterable[tuple[str, str, Any]]) -> None:
        for kind, ident, value in rows:
            self._kind(gen, kind)[ident] = value

    def get(self, gen: int, kind: str, ident: str) -> Any | None:
        return self._gens.get(gen, {}).get(kind, {}).get(ident)

    def scan(self, gen: int, kind: str) -> Iterator[tuple[str, Any]]:
        table = self._gens.get(gen, {}).get(kind, {})
        return iter(list(table.items()))

    def ids(self, gen: int, kind: str) -> Iterator[str]:
        return iter(list(self._gens.get(gen, {}).get(kind, {})))

    def scan_json(self, gen: int, kind: str) -> Iterator[tuple[str, str]]:
        for ident, value in self.scan(gen, kind):
            yield ident, json.dumps(value, separators=(",", ":"))

    def discard(self, gen: int) -> None:
        with self._lock:
            self._gens.pop(gen, None)

    def wipe(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._gens.clear()

    def table(self, gen: int, kind: str, cache: int = 0) -> MutableMapping[str, Any]:
        """The live dict itself: the engine's writes are the store's writes."""
        return self._kind(gen, kind)

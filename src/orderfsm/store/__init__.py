"""Durable state for the simulator: a small store interface, a memory store, a SQLite store
and a PostgreSQL store (shared by many processes).

``open_store`` turns what ``--db`` / ``ORDERFSM_DB`` / ``db=`` accept into a store:
``memory``, a path, a ``sqlite:///PATH`` URL (``sqlite:////abs/path`` for an absolute one), or
``postgresql://USER@HOST:PORT/DB`` (needs ``pip install 'orderfsm[postgres]'``).
"""

from __future__ import annotations

import os
from typing import Any

from .base import DELETE, RecordMap, StateStore
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["StateStore", "RecordMap", "MemoryStore", "SQLiteStore", "DELETE", "open_store",
           "DEFAULT_DB", "ENV_VAR", "is_postgres"]

#: Where ``orderfsm serve`` keeps state unless told otherwise (relative to the working directory).
DEFAULT_DB = os.path.join(".orderfsm", "state.sqlite3")
ENV_VAR = "ORDERFSM_DB"


def is_postgres(db: Any) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def open_store(db: Any = None, *, durability: str = "normal") -> StateStore:
    """A store from ``db``: a :class:`StateStore` (returned as is), None or ``"memory"`` (a new
    memory store), ``sqlite:///PATH`` or a file path (a SQLite store), or a
    ``postgresql://`` URL (a PostgreSQL store: ``durability`` normal commits without waiting
    for the server's disk, full waits)."""
    if isinstance(db, StateStore):
        return db
    if db is None or db == "memory" or db == ":memory:":
        return MemoryStore()
    if isinstance(db, os.PathLike):
        db = os.fspath(db)
    if not isinstance(db, str) or not db:
        raise ValueError(f"not a store: {db!r}")
    if is_postgres(db):
        from .postgres import PostgresStore

        return PostgresStore(db, durability=durability)
    if db.startswith("sqlite:"):
        if not db.startswith("sqlite:///"):
            raise ValueError("a SQLite URL looks like sqlite:///relative/path or "
                             "sqlite:////absolute/path")
        db = db[len("sqlite:///"):]
        if not db:
            raise ValueError("the SQLite URL has no path")
    elif "://" in db:
        scheme = db.split("://", 1)[0]
        raise ValueError(f"unsupported store URL scheme {scheme!r}: use memory, a path, "
                         f"sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    return SQLiteStore(db, durability=durability)

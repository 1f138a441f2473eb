"""The schema every SQL store shares, its migrations, and the records' own versions.

Two versions move independently:

* ``SCHEMA_VERSION``: the tables. ``MIGRATIONS[n]`` takes a database from version n to n + 1
  with plain SQL that SQLite and PostgreSQL both accept; the version lives in ``meta``.
* ``RECORD_VERSION``: the JSON inside a row. Each row carries the version it was written with
  and :func:`migrate_record` brings an old row up to date when it is read, so a schema change
  inside records never needs a rewrite of the whole database.

Snapshots (``GET /_sim/state``) carry the record version too; version 1 snapshots, from before
records existed, are converted by :mod:`orderfsm.store.records`.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

__all__ = ["SCHEMA_VERSION", "MIGRATIONS", "CHURN_KINDS", "RECORD_VERSION",
           "RECORD_MIGRATIONS", "migrate_record", "META_TABLE", "apply_migrations", "TABLES",
           "table_of", "dump_record", "rows_by_table"]

MIGRATIONS: list[list[str]] = [
    # 0 -> 1: merchants point at a generation of records.
    [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS merchants (token TEXT PRIMARY KEY, gen BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS generations (gen BIGINT PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS records (gen BIGINT NOT NULL, kind TEXT NOT NULL, "
        "id TEXT NOT NULL, v INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (gen, kind, id))",
    ],
    # 1 -> 2: records that are written and deleted all the time (webhook events, at most
    # 10,000 per merchant, the oldest dropped first) get a table of their own, so the pages
    # they free are whole pages the database reuses, not holes between payments that never
    # close (the file grew by every event ever recorded).
    [
        "CREATE TABLE IF NOT EXISTS churn (gen BIGINT NOT NULL, kind TEXT NOT NULL, "
        "id TEXT NOT NULL, v INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (gen, kind, id))",
        "INSERT INTO churn (gen, kind, id, v, data) "
        "SELECT gen, kind, id, v, data FROM records WHERE kind IN ('event', 'timer')",
        "DELETE FROM records WHERE kind IN ('event', 'timer')",
    ],
    # 2 -> 3: several processes share one database (PostgreSQL). A merchant's change counter
    # (seq), bumped by every transaction that changes it, tells a process whether its copy in
    # memory is still current; pending counts its webhook deliveries not finished yet, so the
    # process that delivers finds the merchants with work. Records remember the order they were
    # first written in (ord, from a counter per generation): PostgreSQL has no rowid. A
    # generation's creation time (Unix seconds) tells a process starting up which generations
    # no token points at are left over, not being written by another process right now.
    [
        "ALTER TABLE merchants ADD COLUMN seq BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE merchants ADD COLUMN pending BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE generations ADD COLUMN next_ord BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE generations ADD COLUMN created BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE records ADD COLUMN ord BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE churn ADD COLUMN ord BIGINT NOT NULL DEFAULT 0",
    ],
]
#: Where every store keeps its schema version (``key = 'schema_version'``); created first.
META_TABLE = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def apply_migrations(execute: Callable[[str], Any], version: int, where: str, *,
                     hint: str = "", upto: int | None = None) -> None:
    """Run, through ``execute(sql)``, the statements of every migration a database at schema
    ``version`` lacks (up to ``upto``, the current version by default), in order. A database
    newer than this orderfsm is refused: ``where`` names it and ``hint`` ends the message."""
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"{where} has schema version {version}; this orderfsm knows up to "
                           f"{SCHEMA_VERSION}. Upgrade orderfsm{hint}.")
    for step in MIGRATIONS[version:upto]:
        for statement in step:
            execute(statement)


#: Record kinds kept in the ``churn`` table; every other kind is in ``records``.
CHURN_KINDS = frozenset({"event", "timer"})
SCHEMA_VERSION = len(MIGRATIONS)

#: The tables records live in.
TABLES = ("records", "churn")


def table_of(kind: str) -> str:
    return "churn" if kind in CHURN_KINDS else "records"


#: A record as the JSON text a row holds.
dump_record = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def rows_by_table(gen: int, changes: Mapping[tuple[str, str], Any],
                  delete: Any) -> tuple[dict[str, list], dict[str, list]]:
    """A commit's changes as rows per table: ``[gen, kind, id, version, JSON]`` to write, and
    ``(gen, kind, id)`` to delete (the records whose value is ``delete``)."""
    puts: dict[str, list] = {t: [] for t in TABLES}
    deletes: dict[str, list] = {t: [] for t in TABLES}
    for (kind, ident), value in changes.items():
        if value is delete:
            deletes[table_of(kind)].append((gen, kind, ident))
        else:
            puts[table_of(kind)].append([gen, kind, ident, RECORD_VERSION, dump_record(value)])
    return puts, deletes


#: Version of the JSON written into records today.
RECORD_VERSION = 1
#: RECORD_MIGRATIONS[n](kind, data) turns a version-n record into a version-(n + 1) record.
RECORD_MIGRATIONS: dict[int, Callable[[str, Any], Any]] = {}


def migrate_record(kind: str, version: int, data: Any) -> Any:
    if version > RECORD_VERSION:
        raise ValueError(f"a {kind} record has version {version}; this orderfsm reads up to "
                         f"{RECORD_VERSION}. Upgrade orderfsm to read this store.")
    while version < RECORD_VERSION:
        data = RECORD_MIGRATIONS[version](kind, data)
        version += 1
    return data

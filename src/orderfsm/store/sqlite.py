"""The SQLite store (the standard library's ``sqlite3``), in WAL mode.

One connection writes, behind a lock; each thread that reads has its own connection, so a read
never waits for a write (WAL readers see the last commit). ``durability="normal"`` syncs at WAL
checkpoints: a commit survives the process being killed. ``durability="full"`` syncs the WAL on
every commit, so a commit also survives losing power.

Bulk writes (restores, deletes of an old generation) go in chunks of ``CHUNK`` rows, each its own
transaction, so another merchant's commit waits at most for one chunk.

Checkpoints (copying the WAL back into the database file, with its disk syncs) never run inside a
commit: SQLite's automatic checkpoint is off (``wal_autocheckpoint=0``) and a background thread
runs a PASSIVE checkpoint, which writers do not wait for, every ``checkpoint_every`` seconds after
commits. If writes keep coming so that the checkpoints never catch up and the WAL passes
``wal_limit`` pages, a few more passes try, and then one holds the write lock to finish, so the
WAL starts over and its file stays bounded (``journal_size_limit``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any, Iterable, Iterator, Mapping

from .base import DELETE, Key, RecordMap, StateStore, store_stats
from .schema import dump_record as _dumps
from .schema import table_of as _table
from .schema import (META_TABLE, RECORD_VERSION, SCHEMA_VERSION, TABLES, rows_by_table,
                     apply_migrations, migrate_record)

__all__ = ["SQLiteStore"]

CHUNK = 1000
#: Seconds between background checkpoints (when something was committed).
CHECKPOINT_EVERY = 0.25
#: WAL pages (4 KiB each) beyond which checkpoints try to catch up with the writers, and
#: finally hold them up (see SQLiteStore.checkpoint). A CreatePayment writes about 13 pages, so
#: a steady stream of them reaches this every few thousand requests.
WAL_LIMIT = 65536
#: Passes that try to catch up without holding writers before one does.
CATCH_UP = 3


class StoreTimings:
    """Durations of commits and checkpoints (for benchmarks: ``/_sim/pauses``)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.commits = 0
        self.commit_max = 0.0
        self.checkpoints = 0
        self.checkpoint_max = 0.0
        self.locked_checkpoints = 0
        self.locked_checkpoint_max = 0.0
        self.wal_pages_max = 0

    def json(self) -> dict[str, Any]:
        return {"commits": self.commits, "commit_max_ms": round(self.commit_max * 1e3, 3),
                "checkpoints": self.checkpoints,
                "checkpoint_max_ms": round(self.checkpoint_max * 1e3, 3),
                "locked_checkpoints": self.locked_checkpoints,
                "locked_checkpoint_max_ms": round(self.locked_checkpoint_max * 1e3, 3),
                "wal_pages_max": self.wal_pages_max}


_loads = json.loads


class SQLiteStore(StateStore):
    durable = True

    def __init__(self, path: str, *, durability: str = "normal", cache: int = 5000,
                 checkpoint_every: float | None = CHECKPOINT_EVERY,
                 wal_limit: int = WAL_LIMIT) -> None:
        if durability not in ("normal", "full"):
            raise ValueError("durability must be 'normal' or 'full'")
        self.path = os.path.abspath(path)
        self.location = self.path
        self.durability = durability
        self.cache = cache
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self.wal_limit = wal_limit
        self.timings = StoreTimings()
        self._dirty = threading.Event()  # set by commits, cleared by checkpoints
        self._db = self._connect()
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in the background
        self._db.execute(f"PRAGMA journal_size_limit={wal_limit * 4096}")
        self._migrate()
        self._drop_orphans()
        self._checkpointer: threading.Thread | None = None
        self._ckpt_db: sqlite3.Connection | None = None
        if checkpoint_every:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, args=(checkpoint_every,), daemon=True,
                name=f"orderfsm-checkpoint-{os.path.basename(self.path)}")
            self._checkpointer.start()

    # ---------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                             timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self.durability == 'full' else 'NORMAL'}")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
                raise RuntimeError("the store is closed")
            db = self._local.db = self._connect()
            db.execute("PRAGMA query_only=ON")
            with self._write_lock:
                self._readers.append(db)
        return db

    def _migrate(self) -> None:
        with self._write_lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(META_TABLE)
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
                apply_migrations(db.execute, version, str(self.path),
                                 hint=", or start with --fresh")
                self.upgraded_from = version
                db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           (str(SCHEMA_VERSION),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _drop_orphans(self) -> None:
        """Generations no token points at: a restore cut short by a crash, or an old
        generation whose deletion did not finish."""
        rows = self._db.execute(
            "SELECT gen FROM generations WHERE gen NOT IN (SELECT gen FROM merchants)").fetchall()
        for (gen,) in rows:
            self.discard(gen)

    # ---------------------------------------------------------------- the interface
    def stats(self) -> dict[str, int]:
        return store_stats(self._reader())

    def merchants(self) -> dict[str, int]:
        return dict(self._reader().execute("SELECT token, gen FROM merchants").fetchall())

    def new_generation(self) -> int:
        with self._write_lock:
            cur = self._db.execute(
                "INSERT INTO generations (gen) SELECT COALESCE(MAX(gen), 0) + 1 FROM generations "
                "RETURNING gen")
            return int(cur.fetchone()[0])

    def activate(self, token: str, gen: int) -> int | None:
        with self._write_lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT gen FROM merchants WHERE token = ?", (token,)).fetchone()
                db.execute("INSERT INTO merchants (token, gen) VALUES (?, ?) "
                           "ON CONFLICT (token) DO UPDATE SET gen = excluded.gen", (token, gen))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return int(row[0]) if row else None

    def commit(self, gen: int, changes: Mapping[Key, Any]) -> None:
        if not changes:
            return
        puts, deletes = rows_by_table(gen, changes, DELETE)
        started = time.perf_counter()
        with self._write_lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for table in TABLES:
                    if puts[table]:
                        db.executemany(
                            f"INSERT INTO {table} (gen, kind, id, v, data) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (gen, kind, id) DO UPDATE SET v = excluded.v, "
                            "data = excluded.data", puts[table])
                    if deletes[table]:
                        db.executemany(
                            f"DELETE FROM {table} WHERE gen = ? AND kind = ? AND id = ?",
                            deletes[table])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._committed(started)

    def _committed(self, started: float) -> None:
        took = time.perf_counter() - started
        stats = self.timings
        stats.commits += 1
        if took > stats.commit_max:
            stats.commit_max = took
        self._dirty.set()

    # ---------------------------------------------------------------- checkpoints
    def checkpoint(self) -> tuple[int, int]:
        """PASSIVE checkpoints from the checkpoint connection, which writers do not wait for.

        SQLite starts the WAL over only when a write begins with every page of it copied, and
        steady writes leave no such moment. So when the WAL is past ``wal_limit`` pages, up to
        ``CATCH_UP`` more passes copy what was written meanwhile (less each time), and if the
        WAL has still not started over, a last pass holds the write lock while it copies the
        little that is left and syncs: the one time writers wait for a checkpoint. Returns the
        WAL's pages and how many of them are copied."""
        db = self._ckpt_db
        if db is None:
            db = self._ckpt_db = self._connect()
        self._dirty.clear()
        pages, done = self._pass(db)
        for _ in range(CATCH_UP):
            if pages <= self.wal_limit:
                return pages, done
            if done == pages and not self._dirty.is_set():
                # All copied and nothing written since: the next write starts the WAL over.
                return pages, done
            before = pages
            pages, done = self._pass(db)
            if pages < before:  # a write found everything copied and started the WAL over
                return pages, done
        if pages > self.wal_limit:
            with self._write_lock:
                pages, done = self._pass(db, locked=True)
        return pages, done

    def _pass(self, db: sqlite3.Connection, locked: bool = False) -> tuple[int, int]:
        stats = self.timings
        t0 = time.perf_counter()
        _, pages, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        took = time.perf_counter() - t0
        if locked:
            stats.locked_checkpoints += 1
            stats.locked_checkpoint_max = max(stats.locked_checkpoint_max, took)
        else:
            stats.checkpoints += 1
            stats.checkpoint_max = max(stats.checkpoint_max, took)
            stats.wal_pages_max = max(stats.wal_pages_max, pages)
        return pages, done

    def _checkpoint_loop(self, every: float) -> None:
        while not self._closed:
            self._dirty.wait()
            time.sleep(every)
            if self._closed:
                break
            try:
                self.checkpoint()
            except sqlite3.Error:
                pass  # the database is busy or going away; the next pass tries again

    def write_bulk(self, gen: int, rows: Iterable[tuple[str, str, Any]]) -> None:
        batch: dict[Key, Any] = {}
        for kind, ident, value in rows:
            batch[(kind, ident)] = value
            if len(batch) >= CHUNK:
                self.commit(gen, batch)
                batch = {}
        if batch:
            self.commit(gen, batch)

    def get(self, gen: int, kind: str, ident: str) -> Any | None:
        row = self._reader().execute(
            f"SELECT v, data FROM {_table(kind)} WHERE gen = ? AND kind = ? AND id = ?",
            (gen, kind, ident)).fetchone()
        if row is None:
            return None
        data = _loads(row[1])
        return data if row[0] == RECORD_VERSION else migrate_record(kind, row[0], data)

    def scan(self, gen: int, kind: str) -> Iterator[tuple[str, Any]]:
        cur = self._reader().execute(
            f"SELECT id, v, data FROM {_table(kind)} WHERE gen = ? AND kind = ? ORDER BY rowid",
            (gen, kind))
        for ident, version, text in cur:
            data = _loads(text)
            yield ident, (data if version == RECORD_VERSION
                          else migrate_record(kind, version, data))

    def ids(self, gen: int, kind: str) -> Iterator[str]:
        cur = self._reader().execute(f"SELECT id FROM {_table(kind)} WHERE gen = ? AND kind = ?",
                                     (gen, kind))
        return (row[0] for row in cur)

    def scan_json(self, gen: int, kind: str) -> Iterator[tuple[str, str]]:
        cur = self._reader().execute(
            f"SELECT id, v, data FROM {_table(kind)} WHERE gen = ? AND kind = ? ORDER BY rowid",
            (gen, kind))
        for ident, version, text in cur:
            if version != RECORD_VERSION:
                text = _dumps(migrate_record(kind, version, _loads(text)))
            yield ident, text

    def discard(self, gen: int) -> None:
        for table in TABLES:
            while True:
                with self._write_lock:
                    cur = self._db.execute(
                        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                        "WHERE gen = ? LIMIT ?)", (gen, CHUNK))
                if cur.rowcount < CHUNK:
                    break
        with self._write_lock:
            self._db.execute("DELETE FROM generations WHERE gen = ?", (gen,))
        self._dirty.set()

    def wipe(self) -> None:
        with self._write_lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            for table in (*TABLES, "merchants", "generations"):
                db.execute(f"DELETE FROM {table}")
            db.execute("COMMIT")

    def table(self, gen: int, kind: str, cache: int | None = None) -> RecordMap:
        """A kind's records behind a bounded cache, with their ids kept in memory (read now;
        a caller that has the ids at hand passes them to ``track`` instead)."""
        return RecordMap(self, gen, kind, self.cache if cache is None else cache).track()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._dirty.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join()
        if self._ckpt_db is not None:
            self._ckpt_db.close()
        with self._write_lock:
            for db in self._readers:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()

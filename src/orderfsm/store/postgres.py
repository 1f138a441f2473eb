"""The PostgreSQL store (psycopg 3): one database that many simulator processes share.

The tables and migrations are the SQLite store's (:mod:`orderfsm.store.schema`); only the
driver, the placeholders and the locking differ.

**Sessions.** Every process keeps the merchants it serves in memory, so two processes must never
run commands of one merchant at the same time, and a process must notice when another one
changed a merchant it holds. A request therefore runs in a *session*: a transaction that holds
the merchant's row (``SELECT ... FROM merchants WHERE token = %s FOR UPDATE``) from before the
command starts until its changes are committed, just before the response. The row carries the
merchant's live generation and a change counter (``seq``) that every session that wrote
something bumps; a process whose copy has another generation or counter reloads the merchant
before running the command. A merchant's commands are serialized across all processes, and
different merchants' sessions never wait for each other.

A session is bound to the current context (a :class:`contextvars.ContextVar`), so the store's
methods called while a request runs (``commit``, ``activate``, reads) use its connection and see
its uncommitted writes; ``discard`` of a replaced generation waits until the session commits.
Outside a session, ``commit`` runs its own short transaction and bumps the merchant's counter
too, so other processes notice the change.

Connections come from a small pool; the driver is imported only when a ``postgresql://`` URL is
used, so the rest of orderfsm works without it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import threading
import time
from typing import Any, Iterable, Iterator, Mapping

from .base import DELETE, Key, RecordMap, StateStore, store_stats
from .schema import dump_record as _dumps
from .schema import table_of as _table
from .schema import (META_TABLE, RECORD_VERSION, SCHEMA_VERSION, TABLES, rows_by_table,
                     apply_migrations, migrate_record)

__all__ = ["PostgresStore", "Session", "driver", "MISSING_DRIVER", "NOTIFY_CHANNEL"]

CHUNK = 1000
#: Advisory lock keys (pg_advisory_*): migrations, handing out generations, the delivering
#: process.
MIGRATE_LOCK = 0x6F72646672_01
GENERATION_LOCK = 0x6F72646672_02
DELIVERY_LOCK = 0x6F72646672_03
#: LISTEN/NOTIFY channel on which a commit that leaves webhook deliveries pending names its
#: merchant's token.
NOTIFY_CHANNEL = "orderfsm_outbox"
#: Idle connections kept per store.
POOL = 16
#: Seconds after which a generation no token points at is taken for left over.
ORPHAN_AGE = 3600.0
MISSING_DRIVER = ("a postgresql:// store needs the PostgreSQL driver psycopg 3: "
                  "pip install 'orderfsm[postgres]'")

_loads = json.loads


def driver() -> Any:
    """The psycopg module, or a RuntimeError that names the extra to install."""
    try:
        import psycopg
    except ImportError:
        raise RuntimeError(MISSING_DRIVER) from None
    return psycopg




def redact(url: str) -> str:
    """The URL without its password, for logs and the start-up line."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


class Session:
    """A transaction holding one merchant's row. ``gen`` and ``seq`` are the row's values
    (updated when the session changes them); ``dirty`` says whether anything was written."""

    __slots__ = ("conn", "token", "gen", "seq", "dirty", "done", "after", "queued", "written")

    def __init__(self, conn: Any, token: str, gen: int, seq: int) -> None:
        self.conn = conn
        self.token = token
        self.gen = gen
        self.seq = seq
        self.dirty = False
        self.done = False
        self.after: list[int] = []  # generations to discard once committed
        # Writes not sent yet: they go with the COMMIT, in one round trip (or before the
        # session's next read).
        self.queued: list[tuple[int, Mapping[Key, Any]]] = []
        self.written = 0  # rows put so far (their positions follow one another)

    def __repr__(self) -> str:
        return f"Session({self.token!r}, gen={self.gen}, seq={self.seq})"


class PostgresStore(StateStore):
    durable = True
    shared = True

    def __init__(self, url: str, *, durability: str = "normal", cache: int = 5000,
                 migrate: bool = True) -> None:
        if durability not in ("normal", "full"):
            raise ValueError("durability must be 'normal' or 'full'")
        self._pg = driver()
        self.url = url
        self.durability = durability
        # normal: a commit is in the server's memory before the response, and survives the
        # simulator being killed (the server writes it out within a fraction of a second);
        # full: the server has flushed it to disk, so it survives the server's machine too.
        self._options = "-c synchronous_commit=" + ("on" if durability == "full" else "off")
        self.location = redact(url)
        self.cache = cache
        self._pool: list[Any] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        self._bound: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
            f"orderfsm-session-{id(self)}", default=None)
        try:
            conn = self._connect()
        except self._pg.Error as exc:
            raise RuntimeError(f"cannot connect to {self.location}: {exc}".strip()) from None
        self._give(conn)
        if migrate:
            self.migrate()
            self.drop_orphans()

    # ---------------------------------------------------------------- connections
    def _connect(self) -> Any:
        if self._closed:
            raise RuntimeError("the store is closed")
        return self._pg.connect(self.url, autocommit=True, options=self._options)

    def _take(self) -> Any:
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        return self._connect()

    def _give(self, conn: Any) -> None:
        ok = (not conn.closed
              and conn.info.transaction_status == self._pg.pq.TransactionStatus.IDLE)
        if ok:
            with self._pool_lock:
                if not self._closed and len(self._pool) < POOL:
                    self._pool.append(conn)
                    return
        conn.close()

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """A connection for statements outside any transaction (autocommit)."""
        conn = self._take()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        self._give(conn)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """A connection inside a transaction, committed when the block ends."""
        conn = self._take()
        try:
            with conn.transaction():
                yield conn
        except BaseException:
            conn.close()
            raise
        self._give(conn)

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        """The rows of a query on the bound session's connection (which sees its own
        writes), or on a pooled one."""
        s = self._bound.get()
        if s is not None and not s.done:
            self._send_queued(s)
            return s.conn.execute(sql, params).fetchall()
        with self._conn() as conn:
            return conn.execute(sql, params).fetchall()

    # ---------------------------------------------------------------- schema
    def migrate(self) -> tuple[int, int]:
        """Apply the migrations this database lacks; returns (version before, version now).
        Processes starting together take turns (an advisory lock)."""
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            conn.execute(META_TABLE)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            apply_migrations(conn.execute, version, self.location)
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (str(SCHEMA_VERSION),))
        self.upgraded_from = version
        return version, SCHEMA_VERSION

    def drop_orphans(self, older_than: float = ORPHAN_AGE) -> list[int]:
        """Delete generations no token points at that were created more than ``older_than``
        seconds ago: a restore cut short by a crash, or an old generation whose deletion did
        not finish. Younger ones may be a restore another process is writing now."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT gen FROM generations WHERE created < %s "
                "AND gen NOT IN (SELECT gen FROM merchants)",
                (int(time.time() - older_than),)).fetchall()
        for (gen,) in rows:
            self.discard(int(gen))
        return [int(gen) for (gen,) in rows]

    def stats(self) -> dict[str, int]:
        with self._conn() as conn:
            return store_stats(conn)

    # ---------------------------------------------------------------- sessions
    def lock(self, token: str, *, wait: bool = True) -> Session | None:
        """Begin a session on ``token``'s row. A token no process has created yet gets a
        placeholder row (generation 0) so that two processes creating it take turns. With
        ``wait=False``, returns None at once when another session holds the row. A pooled
        connection the server dropped (a restart) is replaced once, transparently."""
        try:
            return self._lock(token, wait)
        except self._pg.OperationalError:
            with self._pool_lock:  # every pooled connection predates the same outage
                pool, self._pool = self._pool, []
            for conn in pool:
                conn.close()
            return self._lock(token, wait)

    def _lock(self, token: str, wait: bool) -> Session | None:
        conn = self._take()
        suffix = "" if wait else " NOWAIT"
        try:
            try:
                with conn.pipeline():  # one round trip
                    conn.execute("BEGIN")
                    cur = conn.execute("SELECT gen, seq FROM merchants WHERE token = %s "
                                       "FOR UPDATE" + suffix, (token,))
                row = cur.fetchone()
                if row is None:
                    conn.execute("INSERT INTO merchants (token, gen, seq) VALUES (%s, 0, 0) "
                                 "ON CONFLICT (token) DO NOTHING", (token,))
                    row = conn.execute("SELECT gen, seq FROM merchants WHERE token = %s "
                                       "FOR UPDATE" + suffix, (token,)).fetchone()
            except self._pg.errors.LockNotAvailable:
                conn.execute("ROLLBACK")
                self._give(conn)
                return None
        except BaseException:
            conn.close()
            raise
        return Session(conn, token, int(row[0]), int(row[1]))

    def bind(self, session: Session | None) -> contextvars.Token:
        """Make ``session`` the current context's (``unbind`` with the returned token)."""
        return self._bound.set(session)

    def unbind(self, token: contextvars.Token) -> None:
        self._bound.reset(token)

    def current(self) -> Session | None:
        s = self._bound.get()
        return None if s is None or s.done else s

    def finish(self, s: Session, *, pending: int | None = None) -> None:
        """Commit the session. When it wrote something the merchant's counter moves on
        (``s.seq`` is the new value) and, if ``pending`` deliveries are left, the process that
        delivers webhooks is told."""
        if s.done:
            return
        conn = s.conn
        try:
            with conn.pipeline():  # the writes, the counter and COMMIT: one round trip
                self._session_writes(s)
                cur = None
                if s.dirty and s.gen:
                    cur = conn.execute(
                        "UPDATE merchants SET seq = seq + 1, pending = COALESCE(%s, pending) "
                        "WHERE token = %s RETURNING gen, seq", (pending, s.token))
                    if pending:
                        conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, s.token))
                conn.execute("COMMIT")
            if cur is not None:
                row = cur.fetchone()
                s.gen, s.seq = int(row[0]), int(row[1])
        except BaseException:
            s.done = True
            conn.close()
            raise
        s.done = True
        self._give(conn)
        for gen in s.after:
            self.discard(gen)

    def abort(self, s: Session) -> None:
        """Roll the session back (a request that failed): nothing it wrote is kept."""
        if s.done:
            return
        s.done = True
        try:
            s.conn.execute("ROLLBACK")
        except Exception:
            s.conn.close()
            return
        self._give(s.conn)

    # ---------------------------------------------------------------- the interface
    def merchants(self) -> dict[str, int]:
        rows = self._read("SELECT token, gen FROM merchants WHERE gen > 0", ())
        return {token: int(gen) for token, gen in rows}

    def versions(self, tokens: Iterable[str] | None = None) -> dict[str, tuple[int, int, int]]:
        """token -> (generation, change counter, pending deliveries), for every merchant or
        the ones named."""
        if tokens is None:
            cur = self._read("SELECT token, gen, seq, pending FROM merchants WHERE gen > 0", ())
        else:
            cur = self._read("SELECT token, gen, seq, pending FROM merchants "
                             "WHERE gen > 0 AND token = ANY(%s)", (list(tokens),))
        return {t: (int(g), int(s), int(p)) for t, g, s, p in cur}

    def new_generation(self) -> int:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (GENERATION_LOCK,))
            row = conn.execute("INSERT INTO generations (gen, created) "
                               "SELECT COALESCE(MAX(gen), 0) + 1, %s FROM generations "
                               "RETURNING gen", (int(time.time()),)).fetchone()
            return int(row[0])

    def activate(self, token: str, gen: int) -> int | None:
        s = self.current()
        if s is not None and s.token == token:
            previous = s.gen
            self._send_queued(s)
            s.conn.execute("UPDATE merchants SET gen = %s WHERE token = %s", (gen, token))
            s.gen = gen
            s.dirty = True
            return previous or None
        with self._tx() as conn:
            row = conn.execute("SELECT gen FROM merchants WHERE token = %s FOR UPDATE",
                               (token,)).fetchone()
            conn.execute("INSERT INTO merchants (token, gen) VALUES (%s, %s) "
                         "ON CONFLICT (token) DO UPDATE SET gen = excluded.gen, "
                         "seq = merchants.seq + 1", (token, gen))
        return (int(row[0]) or None) if row else None

    def _write(self, conn: Any, gen: int, changes: Mapping[Key, Any],
               base: int | None = None) -> int:
        """Write ``changes``; returns how many rows were put. New rows take positions
        (``ord``) from ``base`` on, or, without one, from the generation's own counter."""
        puts, deletes = rows_by_table(gen, changes, DELETE)
        count = len(puts["records"]) + len(puts["churn"])
        # Positions in the order first written (an update keeps the row's position). A live
        # merchant's writes are numbered from its change counter (``base``: the counter the
        # commit leaves, shifted left 32 bits), so they need no statement of their own; a
        # generation being filled (a restore) counts in its generations row instead, and the
        # server computes the positions so that no answer is awaited before the inserts.
        if count and base is None:
            conn.execute("UPDATE generations SET next_ord = next_ord + %s WHERE gen = %s",
                         (count, gen))
            behind = count
            for table in TABLES:
                for put in puts[table]:
                    put += (gen, behind)
                    behind -= 1
            position = ("COALESCE((SELECT next_ord FROM generations WHERE gen = %s), 0) "
                        "- %s + 1")
        else:
            for table in TABLES:
                for put in puts[table]:
                    base += 1  # type: ignore[operator]
                    put.append(base)
            position = "%s"
        with conn.cursor() as cur:
            for table in TABLES:
                if puts[table]:
                    cur.executemany(
                        f"INSERT INTO {table} (gen, kind, id, v, data, ord) "
                        f"VALUES (%s, %s, %s, %s, %s, {position}) "
                        "ON CONFLICT (gen, kind, id) "
                        "DO UPDATE SET v = excluded.v, data = excluded.data", puts[table])
                if deletes[table]:
                    cur.executemany(f"DELETE FROM {table} WHERE gen = %s AND kind = %s "
                                    "AND id = %s", deletes[table])
        return count

    def _session_writes(self, s: Session) -> None:
        queued, s.queued = s.queued, []
        for gen, changes in queued:
            s.written += self._write(s.conn, gen, changes,
                                     ((s.seq + 1) << 32) + s.written)

    def _send_queued(self, s: Session) -> None:
        if s.queued:
            with s.conn.pipeline():
                self._session_writes(s)

    def commit(self, gen: int, changes: Mapping[Key, Any]) -> None:
        if not changes:
            return
        s = self.current()
        if s is not None:
            s.queued.append((gen, dict(changes)))
            s.dirty = True
            return
        with self._tx() as conn:
            # Take the merchant's row first (when the generation is live), as a session would,
            # and move its counter on so other processes reload it.
            row = conn.execute("UPDATE merchants SET seq = seq + 1 WHERE gen = %s "
                               "RETURNING seq", (gen,)).fetchone()
            self._write(conn, gen, changes, int(row[0]) << 32 if row else None)

    def write_bulk(self, gen: int, rows: Iterable[tuple[str, str, Any]]) -> None:
        batch: dict[Key, Any] = {}
        for kind, ident, value in rows:
            batch[(kind, ident)] = value
            if len(batch) >= CHUNK:
                with self._tx() as conn:
                    self._write(conn, gen, batch)
                batch = {}
        if batch:
            with self._tx() as conn:
                self._write(conn, gen, batch)

    def get(self, gen: int, kind: str, ident: str) -> Any | None:
        row = self._read(f"SELECT v, data FROM {_table(kind)} WHERE gen = %s AND kind = %s "
                         "AND id = %s", (gen, kind, ident))
        if not row:
            return None
        row = row[0]
        data = _loads(row[1])
        return data if row[0] == RECORD_VERSION else migrate_record(kind, row[0], data)

    def scan(self, gen: int, kind: str) -> Iterator[tuple[str, Any]]:
        cur = self._read(f"SELECT id, v, data FROM {_table(kind)} WHERE gen = %s AND kind = %s "
                         "ORDER BY ord", (gen, kind))
        for ident, version, text in cur:
            data = _loads(text)
            yield ident, (data if version == RECORD_VERSION
                          else migrate_record(kind, version, data))

    def ids(self, gen: int, kind: str) -> Iterator[str]:
        cur = self._read(f"SELECT id FROM {_table(kind)} WHERE gen = %s AND kind = %s",
                         (gen, kind))
        return (row[0] for row in cur)

    def scan_json(self, gen: int, kind: str) -> Iterator[tuple[str, str]]:
        cur = self._read(f"SELECT id, v, data FROM {_table(kind)} WHERE gen = %s AND kind = %s "
                         "ORDER BY ord", (gen, kind))
        for ident, version, text in cur:
            if version != RECORD_VERSION:
                text = _dumps(migrate_record(kind, version, _loads(text)))
            yield ident, text

    def discard(self, gen: int) -> None:
        s = self.current()
        if s is not None:
            s.after.append(gen)  # the session may still roll back to it
            return
        for table in TABLES:
            while True:
                with self._conn() as conn:
                    cur = conn.execute(
                        f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} "
                        "WHERE gen = %s LIMIT %s)", (gen, CHUNK))
                if cur.rowcount < CHUNK:
                    break
        with self._conn() as conn:
            conn.execute("DELETE FROM generations WHERE gen = %s", (gen,))

    def wipe(self) -> None:
        with self._tx() as conn:
            for table in (*TABLES, "merchants", "generations"):
                conn.execute(f"DELETE FROM {table}")

    def table(self, gen: int, kind: str, cache: int | None = None) -> RecordMap:
        return RecordMap(self, gen, kind, self.cache if cache is None else cache).track()

    def listener(self, name: str = "orderfsm") -> Any:
        """A connection of its own (autocommit), for advisory locks held as long as it lives
        and for LISTEN. ``name`` is its application_name (pg_stat_activity shows it)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        return self._pg.connect(self.url, autocommit=True, application_name=name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._pool_lock:
            pool, self._pool = self._pool, []
        for conn in pool:
            try:
                conn.close()
            except Exception:
                pass

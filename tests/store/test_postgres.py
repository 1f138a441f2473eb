"""What only the PostgreSQL store does: migrations shared with SQLite, sessions that hold a
merchant's row across processes, and the change counter other processes read. Against a real
server (the ``pg_url`` fixture)."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time

import pytest

from orderfsm.store import DELETE, SQLiteStore, open_store, schema
from orderfsm.store.postgres import MISSING_DRIVER, PostgresStore


def _raw(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_open_store_picks_postgres_and_migrates_to_the_current_schema(pg_url) -> None:
    s = open_store(pg_url)
    assert isinstance(s, PostgresStore) and s.durable and s.shared
    assert s.upgraded_from == 0
    assert s.stats() == {"schema_version": schema.SCHEMA_VERSION, "merchants": 0, "orders": 0,
                         "payments": 0, "refunds": 0}
    s.close()
    again = PostgresStore(pg_url)
    assert again.upgraded_from == schema.SCHEMA_VERSION  # nothing left to apply
    again.close()


def test_the_same_migrations_take_a_version_2_database_to_the_current_one(pg_url, tmp_path):
    # Build a version 2 database with the shared MIGRATIONS, on both servers' SQL.
    with _raw(pg_url) as db:
        db.execute(schema.META_TABLE)
        schema.apply_migrations(db.execute, 0, "a test database", upto=2)
        db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        db.execute("INSERT INTO merchants VALUES ('t', 1)")
        db.execute("INSERT INTO generations VALUES (1)")
        db.execute("INSERT INTO records VALUES (1, 'order', 'o1', 1, %s)", ('{"id": "o1"}',))
    s = PostgresStore(pg_url)
    assert s.upgraded_from == 2
    assert s.merchants() == {"t": 1} and s.get(1, "order", "o1") == {"id": "o1"}
    assert s.stats()["orders"] == 1 and s.stats()["schema_version"] == schema.SCHEMA_VERSION
    s.close()
    lite = tmp_path / "v2.db"
    db = sqlite3.connect(lite)
    db.execute(schema.META_TABLE)
    schema.apply_migrations(db.execute, 0, "a test database", upto=2)
    db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    db.commit()
    db.close()
    s2 = SQLiteStore(str(lite))
    assert s2.upgraded_from == 2 and s2.stats()["schema_version"] == schema.SCHEMA_VERSION
    s2.close()


def test_a_newer_schema_is_refused(pg_url) -> None:
    PostgresStore(pg_url).close()
    with _raw(pg_url) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="schema version 99"):
        PostgresStore(pg_url)


def test_processes_starting_together_migrate_once(pg_url) -> None:
    stores: list = []
    errors: list = []

    def start() -> None:
        try:
            stores.append(PostgresStore(pg_url))
        except Exception as exc:  # pragma: no cover - what the test is looking for
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(s.upgraded_from for s in stores) == [0] + [schema.SCHEMA_VERSION] * 5
    for s in stores:
        s.close()


def test_generations_are_unique_across_stores(pg_url) -> None:
    stores = [PostgresStore(pg_url) for _ in range(3)]
    got: list[int] = []

    def take(s: PostgresStore) -> None:
        for _ in range(20):
            got.append(s.new_generation())

    threads = [threading.Thread(target=take, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 60 == len(set(got))
    for s in stores:
        s.close()


def test_a_session_holds_the_merchant_until_it_commits(pg_url) -> None:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    gen = a.new_generation()
    a.commit(gen, {("meta", "engine"): {"n": 0}})
    a.activate("tok", gen)
    first = a.lock("tok")
    assert first.gen == gen
    seq = first.seq
    assert b.lock("tok", wait=False) is None  # held by the other process
    other = b.lock("other", wait=False)  # another merchant is not
    assert other is not None and other.gen == 0  # a placeholder: not created yet
    b.abort(other)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(b.lock("tok")))
    waiter.start()
    time.sleep(0.2)
    assert not got  # still waiting
    bound = a.bind(first)
    a.commit(gen, {("order", "o"): {"id": "o"}})
    assert a.get(gen, "order", "o") == {"id": "o"}  # the session reads its own writes
    assert b.get(gen, "order", "o") is None  # others do not, until it commits
    a.finish(first)
    a.unbind(bound)
    waiter.join(5)
    [second] = got
    assert (second.gen, second.seq) == (gen, seq + 1)  # the commit moved the counter on
    assert b.get(gen, "order", "o") == {"id": "o"}
    b.finish(second)  # wrote nothing: the counter stays
    assert b.versions(["tok"]) == {"tok": (gen, seq + 1, 0)}
    a.close()
    b.close()


def test_an_aborted_session_keeps_nothing_and_a_discard_waits_for_the_commit(pg_url) -> None:
    s = PostgresStore(pg_url)
    old = s.new_generation()
    s.commit(old, {("order", "o"): {"v": 1}})
    s.activate("tok", old)
    session = s.lock("tok")
    bound = s.bind(session)
    s.commit(old, {("order", "o"): DELETE, ("order", "p"): {"v": 2}})
    new = s.new_generation()
    assert s.activate("tok", new) == old
    s.discard(old)  # deferred: the session could still roll back to it
    s.abort(session)
    s.unbind(bound)
    assert s.merchants() == {"tok": old}
    assert s.get(old, "order", "o") == {"v": 1} and s.get(old, "order", "p") is None
    session = s.lock("tok")
    bound = s.bind(session)
    s.activate("tok", new)
    s.discard(old)
    assert s.get(old, "order", "o") == {"v": 1}
    s.finish(session)
    s.unbind(bound)
    assert s.merchants() == {"tok": new} and s.get(old, "order", "o") is None
    s.close()


def test_a_commit_outside_a_session_moves_the_counter_on(pg_url) -> None:
    s = PostgresStore(pg_url)
    gen = s.new_generation()
    s.activate("tok", gen)
    before = s.versions()["tok"][1]
    s.commit(gen, {("order", "o"): {}})
    assert s.versions()["tok"][1] == before + 1
    s.close()


def test_scan_keeps_the_order_first_written_across_updates(pg_url) -> None:
    s = PostgresStore(pg_url)
    gen = s.new_generation()
    s.write_bulk(gen, ((("order", f"o{i:04}", {"i": i}) for i in range(2500))))
    s.commit(gen, {("order", "o0000"): {"i": "again"}, ("order", "zz"): {}})
    ids = [k for k, _ in s.scan(gen, "order")]
    assert ids == [f"o{i:04}" for i in range(2500)] + ["zz"]
    assert s.get(gen, "order", "o0000") == {"i": "again"}
    s.close()


def test_a_postgres_url_without_the_driver_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(RuntimeError) as info:
        open_store("postgresql://postgres@127.0.0.1:1/x")
    assert str(info.value) == MISSING_DRIVER and "orderfsm[postgres]" in MISSING_DRIVER


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="cannot connect to postgresql://u:\\*\\*\\*@"):
        PostgresStore("postgresql://u:secret@127.0.0.1:1/x?connect_timeout=2")


def test_left_over_generations_are_dropped_at_open_but_not_young_ones(pg_url) -> None:
    s = PostgresStore(pg_url)
    live, old, young = s.new_generation(), s.new_generation(), s.new_generation()
    s.commit(live, {("meta", "engine"): {}})
    s.activate("t", live)
    s.write_bulk(old, [("order", "o", {})])  # a restore cut short, long ago
    s.write_bulk(young, [("order", "y", {})])  # one being written right now
    with _raw(pg_url) as db:
        db.execute("UPDATE generations SET created = created - 7200 WHERE gen = %s", (old,))
    s.close()
    again = PostgresStore(pg_url)
    assert again.get(old, "order", "o") is None
    assert again.get(young, "order", "y") == {}
    assert again.get(live, "meta", "engine") == {}
    again.close()


def test_a_session_survives_the_server_dropping_pooled_connections(pg_url) -> None:
    s = PostgresStore(pg_url)
    gen = s.new_generation()
    s.activate("tok", gen)
    s.finish(s.lock("tok"))  # leaves a connection in the pool
    with _raw(pg_url) as db:  # the server drops every other connection (as a restart would)
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    session = s.lock("tok")
    assert session.gen == gen
    s.finish(session)
    s.close()


def test_rows_a_live_merchant_writes_come_after_what_it_was_restored_with(pg_url) -> None:
    s = PostgresStore(pg_url)
    gen = s.new_generation()
    s.write_bulk(gen, [("order", f"r{i}", {"i": i}) for i in range(5)])  # a restore
    s.activate("tok", gen)
    for n in range(3):  # sessions, then a commit outside any
        session = s.lock("tok")
        bound = s.bind(session)
        s.commit(gen, {("order", f"s{n}a"): {}, ("order", "r0"): {"n": n}})
        s.commit(gen, {("order", f"s{n}b"): {}})
        s.finish(session)
        s.unbind(bound)
    s.commit(gen, {("order", "after"): {}})
    assert [k for k, _ in s.scan(gen, "order")] == [
        "r0", "r1", "r2", "r3", "r4", "s0a", "s0b", "s1a", "s1b", "s2a", "s2b", "after"]
    assert s.get(gen, "order", "r0") == {"n": 2}
    s.close()

"""The store interface, the same contract for the memory, the SQLite and the PostgreSQL store
(against a real server from the ``pg_url`` fixture)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from orderfsm.store import DELETE, MemoryStore, RecordMap, SQLiteStore, open_store
from orderfsm.store import schema


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "postgres":
        from orderfsm.store.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("pg_url"))
    elif request.param == "memory":
        s = MemoryStore()
    else:
        s = SQLiteStore(str(tmp_path / "s.db"))
    yield s
    s.close()


def test_commit_get_scan_delete(store) -> None:
    gen = store.new_generation()
    store.commit(gen, {("order", "b"): {"id": "b", "n": 2}, ("order", "a"): {"id": "a"},
                       ("payment", "p"): [1, "x"]})
    assert store.get(gen, "order", "b") == {"id": "b", "n": 2}
    assert store.get(gen, "order", "zz") is None
    assert [k for k, _ in store.scan(gen, "order")] == ["b", "a"]  # in the order written
    assert dict(store.scan_json(gen, "payment")) == {"p": '[1,"x"]'}
    store.commit(gen, {("order", "a"): DELETE, ("order", "b"): {"id": "b", "n": 3}})
    assert dict(store.scan(gen, "order")) == {"b": {"id": "b", "n": 3}}


def test_generations_switch_atomically_and_are_discarded(store) -> None:
    first = store.new_generation()
    store.commit(first, {("meta", "engine"): {"v": 1}})
    assert store.activate("tok", first) is None
    second = store.new_generation()
    assert second != first
    store.write_bulk(second, (("order", f"o{i:04}", {"i": i}) for i in range(2500)))
    assert store.merchants() == {"tok": first}  # not live until activated
    assert store.activate("tok", second) == first
    assert store.merchants() == {"tok": second}
    store.discard(first)
    assert store.get(first, "meta", "engine") is None
    assert sum(1 for _ in store.scan(second, "order")) == 2500
    store.wipe()
    assert store.merchants() == {}


def test_record_map_reads_its_own_writes_until_committed(store) -> None:
    gen = store.new_generation()
    store.commit(gen, {("order", "old"): {"v": 0}})
    table = RecordMap(store, gen, "order", cache=2)
    table["new"] = {"v": 1}
    del table["old"]
    assert "old" not in table and table["new"] == {"v": 1}
    assert store.get(gen, "order", "new") is None  # nothing written yet
    assert sorted(table) == ["new"]
    changes = table.take()
    assert table.get("new") == {"v": 1}  # visible while the commit runs
    store.commit(gen, {("order", k): v for k, v in changes.items()})
    table.done()
    assert store.get(gen, "order", "old") is None
    assert table.get("new") == {"v": 1} and len(table) == 1
    for i in range(5):  # the cache stays bounded; records still come back from the store
        table[f"x{i}"] = i + 1
    store.commit(gen, {("order", k): v for k, v in table.take().items()})
    table.done()
    assert len(table.cache) <= 2 and [table[f"x{i}"] for i in range(5)] == [1, 2, 3, 4, 5]


def test_sqlite_survives_reopen_and_refuses_a_newer_schema(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path)
    gen = s.new_generation()
    s.commit(gen, {("meta", "engine"): {"x": 1}})
    s.activate("t", gen)
    s.close()
    s = SQLiteStore(path, durability="full")
    assert s.merchants() == {"t": gen} and s.get(gen, "meta", "engine") == {"x": 1}
    assert s.new_generation() > gen
    s.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="schema version 99"):
        SQLiteStore(path)


def test_sqlite_drops_generations_no_token_points_at(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path)
    live, orphan = s.new_generation(), s.new_generation()
    s.commit(live, {("meta", "engine"): {}})
    s.activate("t", live)
    s.write_bulk(orphan, [("order", "o", {})])  # a restore cut short
    s.close()
    s = SQLiteStore(path)
    assert s.get(orphan, "order", "o") is None and s.get(live, "meta", "engine") == {}
    s.close()


def test_old_records_are_migrated_when_read(tmp_path, monkeypatch) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path)
    gen = s.new_generation()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO records (gen, kind, id, v, data) VALUES (?, 'order', 'o', 0, ?)",
               (gen, '{"id": "o"}'))
    db.commit()
    db.close()
    with pytest.raises(KeyError):  # no migration from version 0 is registered
        s.get(gen, "order", "o")
    monkeypatch.setitem(schema.RECORD_MIGRATIONS, 0, lambda kind, data: {**data, "kind": kind})
    assert s.get(gen, "order", "o") == {"id": "o", "kind": "order"}
    assert dict(s.scan_json(gen, "order")) == {"o": '{"id":"o","kind":"order"}'}
    with pytest.raises(ValueError, match="version 7"):
        schema.migrate_record("order", 7, {})
    s.close()


def test_sqlite_reads_from_other_threads_while_one_writes(tmp_path) -> None:
    s = SQLiteStore(str(tmp_path / "s.db"))
    gen = s.new_generation()
    s.commit(gen, {("order", "o"): {"n": 0}})
    seen: list = []

    def read() -> None:
        for _ in range(200):
            seen.append(s.get(gen, "order", "o")["n"])

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(1, 200):
        s.commit(gen, {("order", "o"): {"n": n}})
    reader.join()
    assert seen == sorted(seen) and len(seen) == 200  # never goes back in time
    s.close()


@pytest.mark.parametrize("db, kind", [
    (None, MemoryStore), ("memory", MemoryStore), ("sqlite:///{tmp}/a.db", SQLiteStore),
    ("{tmp}/b.db", SQLiteStore),
])
def test_open_store(tmp_path, db, kind) -> None:
    s = open_store(db.format(tmp=tmp_path) if db else db)
    assert isinstance(s, kind) and s.durable is (kind is SQLiteStore)
    assert open_store(s) is s
    s.close()


@pytest.mark.parametrize("db", ["mysql://x/y", "sqlite://relative", "sqlite:///", ""])
def test_open_store_refuses(db) -> None:
    with pytest.raises(ValueError):
        open_store(db)


@pytest.mark.parametrize("durability, level", [("normal", 1), ("full", 2)])
def test_sqlite_durability_sets_how_often_sqlite_syncs(tmp_path, durability, level) -> None:
    s = SQLiteStore(str(tmp_path / "s.db"), durability=durability)
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._db.execute("PRAGMA synchronous").fetchone()[0] == level
    s.close()
    with pytest.raises(ValueError):
        SQLiteStore(str(tmp_path / "t.db"), durability="sometimes")


def test_a_version_1_database_is_migrated(tmp_path) -> None:
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for statement in schema.MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute("INSERT INTO merchants VALUES ('t', 1)")
    db.execute("INSERT INTO generations VALUES (1)")
    for kind, ident in (("event", "e1"), ("timer", "3"), ("order", "o1")):
        db.execute("INSERT INTO records VALUES (1, ?, ?, 1, ?)", (kind, ident, f'"{ident}"'))
    db.commit()
    db.close()
    s = SQLiteStore(path)
    assert [s.get(1, k, i) for k, i in (("event", "e1"), ("timer", "3"), ("order", "o1"))] == \
        ["e1", "3", "o1"]
    assert s._db.execute("SELECT value FROM meta").fetchone()[0] == str(schema.SCHEMA_VERSION)
    assert s._db.execute("SELECT kind FROM records").fetchall() == [("order",)]
    assert sorted(s._db.execute("SELECT kind FROM churn").fetchall()) == [("event",), ("timer",)]
    s.close()

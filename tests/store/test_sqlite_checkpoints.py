"""SQLite checkpoints run beside commits, never inside them, and the WAL stays bounded."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from orderfsm.store import SQLiteStore

BLOB = "x" * 3000  # about one page per record


def _fill(store: SQLiteStore, gen: int, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.commit(gen, {("order", f"o{i}"): {"i": i, "b": BLOB}})


def test_a_commit_never_checkpoints(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path, checkpoint_every=None)
    assert s._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    gen = s.new_generation()
    _fill(s, gen, 1500)
    # SQLite's own checkpoint would have run inside the commit that took the WAL past 1,000
    # pages, and started the WAL over; here every page of every commit is still in it.
    assert os.path.getsize(path + "-wal") > 1500 * 4096
    assert s.timings.commits >= 1500 and s.timings.checkpoints == 0
    s.close()


def test_a_checkpoint_past_the_limit_starts_the_wal_over(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path, checkpoint_every=None, wal_limit=64)
    gen = s.new_generation()
    _fill(s, gen, 300)
    pages, done = s.checkpoint()
    assert pages > 64 and done == pages
    assert s.timings.checkpoints == 1 and s.timings.locked_checkpoints == 0  # nothing to catch up
    s.commit(gen, {("order", "after"): {"b": 1}})
    # The next write found everything copied: the WAL started over, cut to the limit.
    assert os.path.getsize(path + "-wal") <= 64 * 4096
    assert sum(1 for _ in s.scan(gen, "order")) == 301
    s.close()


def _scripted(s: SQLiteStore, results: list[tuple[int, int]], seen: list) -> None:
    """Replace the store's checkpoint passes by ``results`` (unlocked passes), recording
    whether each ran holding the write lock."""
    real = s._pass

    def fake(db, locked=False):
        seen.append(("locked" if locked else "pass", s._write_lock.locked()))
        if locked:
            return real(db, locked=True)
        s._dirty.set()  # as if commits went on during the pass
        return results.pop(0)

    s._pass = fake


def test_writers_are_held_up_only_when_passes_cannot_catch_up(tmp_path) -> None:
    from orderfsm.store import sqlite as module

    s = SQLiteStore(str(tmp_path / "s.db"), checkpoint_every=None, wal_limit=64)
    seen: list = []
    growing = [(100 + 10 * i, 95 + 10 * i) for i in range(module.CATCH_UP + 1)]
    _scripted(s, growing, seen)
    s.checkpoint()
    assert seen == [("pass", False)] * (module.CATCH_UP + 1) + [("locked", True)]
    assert s.timings.locked_checkpoints == 1
    seen.clear()
    _scripted(s, [(100, 95), (120, 110), (3, 3)], seen)  # the WAL started over meanwhile
    s.checkpoint()
    assert seen == [("pass", False)] * 3 and s.timings.locked_checkpoints == 1
    seen.clear()
    _scripted(s, [(30, 30)], seen)  # under the limit: one pass
    s.checkpoint()
    assert seen == [("pass", False)]
    s.close()


def test_checkpoints_run_in_a_background_thread(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path, checkpoint_every=0.01, wal_limit=64)
    assert s._checkpointer is not None and s._checkpointer.is_alive()
    gen = s.new_generation()
    stop = threading.Event()

    def write() -> None:  # steady writes while the checkpoints run
        i = 0
        while not stop.is_set():
            _fill(s, gen, 10, start=i)
            i += 10

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 30
    while s.timings.checkpoints < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    writer.join()
    assert s.timings.checkpoints >= 5
    s.close()
    assert not s._checkpointer.is_alive()  # close() stops it
    # Everything committed is in the file, readable by a plain connection.
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM records WHERE kind = 'order'").fetchone()[0] >= 10
    db.close()

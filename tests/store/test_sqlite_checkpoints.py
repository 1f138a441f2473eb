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
    assert s.stats.commits >= 1500 and s.stats.checkpoints == 0
    s.close()


def test_a_checkpoint_past_the_limit_starts_the_wal_over(tmp_path) -> None:
    path = str(tmp_path / "s.db")
    s = SQLiteStore(path, checkpoint_every=None, wal_limit=64)
    gen = s.new_generation()
    _fill(s, gen, 300)
    pages, done = s.checkpoint()
    assert pages > 64 and done == pages
    assert s.stats.checkpoints == 1 and s.stats.locked_checkpoints == 1
    s.commit(gen, {("order", "after"): {"b": 1}})
    # The next write found everything copied: the WAL started over, cut to the limit.
    assert os.path.getsize(path + "-wal") <= 64 * 4096
    assert sum(1 for _ in s.scan(gen, "order")) == 301
    small = SQLiteStore(str(tmp_path / "t.db"), checkpoint_every=None, wal_limit=10_000)
    g = small.new_generation()
    _fill(small, g, 20)
    small.checkpoint()
    assert small.stats.locked_checkpoints == 0  # under the limit: writers are never held up
    small.close()
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
    while s.stats.locked_checkpoints < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    writer.join()
    assert s.stats.checkpoints >= 2 and s.stats.locked_checkpoints >= 2
    s.close()
    assert not s._checkpointer.is_alive()  # close() stops it
    # Everything committed is in the file, readable by a plain connection.
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM records WHERE kind = 'order'").fetchone()[0] >= 10
    db.close()

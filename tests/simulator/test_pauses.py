"""What keeps the server from pausing: the pause monitor benchmarks read (ORDERFSM_PAUSES), the
GC policy of a serving process, a replaced merchant let go piece by piece, index loads sorted in
short runs, and snapshots handled in pieces. Timing itself is measured in bench/http.py."""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import textwrap
import weakref

import pytest

from orderfsm.index import SORT_RUN, OrderIndex, TimeIndex, _Sorted, sorted_in_runs
from simulator import create_app
from simulator.pauses import PauseMonitor
from simulator.release import drain
from simulator.snapshot import dump_state, dump_state_chunks, parse_snapshot

from .conftest import TestClient, auth

H = auth("pause-token")


# ------------------------------------------------------------------ the monitor
def test_the_pause_report_exists_only_when_asked_for(monkeypatch) -> None:
    monkeypatch.delenv("ORDERFSM_PAUSES", raising=False)
    c = TestClient(create_app())
    r = c.get("/_sim/pauses", headers=H)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"


def test_the_pause_report_counts_collections_and_requests(monkeypatch) -> None:
    monkeypatch.setenv("ORDERFSM_PAUSES", "1")
    app = create_app()
    try:
        with TestClient(app) as c:
            c.get("/_sim/pauses?reset=1")
            for _ in range(3):
                assert c.get("/v2/locations", headers=H).status_code == 200
            gc.collect()
            report = c.get("/_sim/pauses").json()
            assert report["requests"]["count"] == 3
            assert report["gc"]["2"]["count"] >= 1 and report["gc_max_ms"] > 0
            assert report["loop"]["ticks"] >= 1
            after = c.get("/_sim/pauses?reset=1").json()  # the report, then a new measurement
            assert after["requests"]["count"] == 3
            assert c.get("/_sim/pauses").json()["requests"]["count"] == 0
    finally:
        app.state.pauses.uninstall()


def test_a_late_wake_up_is_split_into_own_work_cpu_wait_and_blocked_time() -> None:
    m = PauseMonitor()
    m._tick(0.080, cpu=0.010, runqueue=0.060)  # 80 ms late: 60 ms waiting for a CPU
    m._tick(0.030, cpu=0.029, runqueue=0.0)  # 30 ms of the server's own work
    # 70 ms blocked (the GIL), 40 of them while the thread holding it waited for a CPU.
    m._tick(0.075, cpu=0.005, runqueue=0.0, others=0.040)
    report = m.report()["loop"]
    assert report["longest_stall"] == {"ms": 80.0, "cpu_ms": 10.0, "runqueue_ms": 60.0,
                                       "blocked_ms": 10.0, "others_runqueue_ms": 0.0,
                                       "server_ms": 20.0}
    assert report["longest_server_stall_ms"] == 35.0  # 75 - 40
    assert report["longest_server_stall"]["blocked_ms"] == 70.0
    assert report["server_stalls_over_ms"] == {"20": 2, "50": 0}  # over, not at, 20 ms


# ------------------------------------------------------------------ the GC policy
def test_serving_freezes_what_survives_each_full_collection() -> None:
    code = textwrap.dedent("""
        import gc, weakref
        from simulator import gc_policy

        gc_policy.settle()
        frozen = gc.get_freeze_count()
        assert frozen > 1000, frozen
        kept = [[i] for i in range(5000)]

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a
        cycle = weakref.ref(a)
        del a, b
        gc.collect()
        assert cycle() is None  # garbage made since is still collected
        assert gc.get_freeze_count() >= frozen + 5000  # the survivors are frozen
        gc_policy.uninstall()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_serve_forever_settles_before_serving(monkeypatch) -> None:
    import uvicorn

    from orderfsm import simulator as sim
    from simulator import gc_policy

    calls: list[str] = []
    monkeypatch.setattr(gc_policy, "settle", lambda: calls.append("settle"))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(
        f"run with switch interval {sys.getswitchinterval()}"))
    before = sys.getswitchinterval()
    try:
        sim.serve_forever("127.0.0.1", 1, object())
    finally:
        sys.setswitchinterval(before)
    assert calls == ["settle", f"run with switch interval {sim.SWITCH_INTERVAL}"]
    assert sim.SWITCH_INTERVAL < before  # shorter than CPython's default


def test_each_serve_workers_process_settles_before_serving(monkeypatch) -> None:
    """A ``serve --workers`` worker builds its app, then takes the same garbage-collection and
    switch-interval policy as a single ``serve`` process, before uvicorn serves."""
    import json

    import uvicorn

    from orderfsm import simulator as sim
    from orderfsm import workers
    from simulator import gc_policy

    calls: list[str] = []
    monkeypatch.setattr(gc_policy, "settle", lambda: calls.append("settle"))
    monkeypatch.setattr(workers, "worker_app", lambda: calls.append("app") or object())
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls.append(
        f"run with switch interval {sys.getswitchinterval()}"))
    monkeypatch.delenv(workers.CONFIG_ENV, raising=False)
    before = sys.getswitchinterval()
    try:
        workers._worker_main("127.0.0.1", 0, json.dumps({}))
    finally:
        sys.setswitchinterval(before)
    assert calls == ["app", "settle", f"run with switch interval {sim.SWITCH_INTERVAL}"]


# ------------------------------------------------------------------ letting go of a merchant
@pytest.mark.parametrize("db", ["memory", "sqlite"])
def test_a_replaced_merchant_is_freed_without_a_collection(db, tmp_path) -> None:
    app = create_app(db=None if db == "memory" else str(tmp_path / "s.db"))
    app.state.config.log_requests = False
    c = TestClient(app)
    for i in range(30):
        assert c.post("/v2/payments", headers=H, json={
            "idempotency_key": f"k{i}", "source_id": "cnon:card-nonce-ok",
            "amount_money": {"amount": 100 + i, "currency": "USD"}}).status_code == 200
    snap = c.get("/_sim/state", headers=H).content
    for replace in (lambda: c.post("/_sim/state", headers=H, content=snap),
                    lambda: c.post("/_sim/reset", headers=H)):
        old = app.state.store.merchants["pause-token"]
        merchant, engine = weakref.ref(old), weakref.ref(old.engine)
        del old
        gc.disable()  # freed by reference counting alone: no cycle keeps it
        try:
            assert replace().status_code == 200
            assert merchant() is None and engine() is None
        finally:
            gc.enable()
    assert c.get("/v2/payments", headers=H).json().get("payments", []) == []  # reset: empty


def test_drain_empties_tables_and_indexes() -> None:
    index = OrderIndex()
    orders = [{"id": f"o{i}", "location_id": "L", "state": "OPEN",
               "created_at": f"2024-01-01T00:00:{i % 60:02}.000Z",
               "updated_at": f"2024-01-01T00:00:{i % 60:02}.000Z"} for i in range(3000)]
    index.add_many(orders)
    times = TimeIndex()
    times.add_many((f"p{i}", "2024-01-01T00:00:00.000Z", "L") for i in range(3000))
    table = {f"o{i}": {"nested": [{"x": i}] * 3} for i in range(3000)}
    lists = [list(range(2000)), set(range(2000))]
    for thing in (index, times, table, lists):
        drain(thing)
    assert all(len(lst.keys._lists) == 0 for lst in index._lists.values())
    assert len(times.all.keys._lists) == 0 and not table and not lists


# ------------------------------------------------------------------ index loads
def test_keys_loaded_in_runs_come_out_sorted() -> None:
    rng = random.Random(7)
    keys = [(f"2024-{rng.randrange(10**6):07}", f"id{i}") for i in range(3 * SORT_RUN + 17)]
    assert sorted_in_runs(list(keys)) == sorted(keys)
    loaded = _Sorted()
    loaded.update(keys)
    loaded.keys._check()  # sortedcontainers' own consistency check
    assert list(loaded.keys) == sorted(keys)
    loaded.add("2024-0000000", "first")
    loaded.remove(*keys[5])
    loaded.keys._check()
    assert list(loaded.keys)[0] == ("2024-0000000", "first") and len(loaded) == len(keys)
    again = _Sorted()  # a list that already has keys takes more the usual way
    again.add("2030", "z")
    again.update(keys[:10])
    assert list(again.keys) == sorted(keys[:10] + [("2030", "z")])


# ------------------------------------------------------------------ snapshots in pieces
def test_a_snapshot_is_dumped_and_read_in_pieces(monkeypatch) -> None:
    from simulator import snapshot

    app = create_app()
    app.state.config.log_requests = False
    c = TestClient(app)
    m = app.state.store.merchant("pause-token")
    for i in range(300):
        m.engine.create_order({"location_id": m.engine.main_location_id,
                               "reference_id": f"r{i}", "metadata": {"note": "é€" * 200}})
    m.flush()
    monkeypatch.setattr(snapshot, "DUMP_PIECE", 16 * 1024)
    pieces = dump_state_chunks(m)
    assert len(pieces) > 5 and all(len(p) < 64 * 1024 for p in pieces)
    whole = b"".join(pieces)
    assert whole == dump_state(m) and json.loads(whole)["version"] == 2
    r = c.get("/_sim/state", headers=H)
    assert r.content == whole and int(r.headers["content-length"]) == len(whole)
    # Read back from pieces cut anywhere, even inside a multi-byte character.
    cuts = [whole[i:i + 1001] for i in range(0, len(whole), 1001)]
    parsed = parse_snapshot(cuts)
    assert {k: dict(v.items()) for k, v in parsed["records"].items()} == \
        json.loads(whole)["records"]


@pytest.mark.parametrize("piece", [5, 64, 4096])
def test_a_large_snapshot_is_parsed_from_a_window_of_its_text(monkeypatch, piece) -> None:
    """Records are cut out of the text a piece at a time, whatever falls on a piece's edge
    (numbers, literals, multi-byte characters, whitespace, a value larger than the window)."""
    from simulator import snapshot

    monkeypatch.setattr(snapshot, "PIECE", piece)
    doc = {"format": "orderfsm.simulator.state", "version": 2, "n": 12345, "flag": True,
           "pad": "é" * 600_000, "records": {
               "meta": {"engine": {"now": "2024-01-01T00:00:00Z", "v": [1, 2.5, None]}},
               "timer": {str(i): [f"2024-01-0{i % 9 + 1}", "x", 10 ** i] for i in range(30)},
               "order": {f"o{i}": {"id": f"o{i}", "note": "€" * i, "ok": i % 2 == 0}
                         for i in range(300)},
               "location": [], "empty": {}}}
    text = json.dumps(doc, indent=1, ensure_ascii=False).encode()
    assert len(text) > 1 << 20
    parsed = parse_snapshot([text[i:i + 777] for i in range(0, len(text), 777)])
    records = parsed.pop("records")
    assert parsed == {k: v for k, v in doc.items() if k != "records"}
    assert "engine" in records["meta"] and records["meta"]["engine"]["v"] == [1, 2.5, None]
    assert {k: v if isinstance(v, list) else dict(v.items()) for k, v in records.items()} == \
        doc["records"]
    assert not records["order"].records  # read once: forgotten as read


@pytest.mark.parametrize("tail", [b"", b",}", b"} x", b'"'])
def test_a_broken_large_snapshot_is_refused_as_bad_json(tail) -> None:
    from orderfsm.errors import SquareError

    text = json.dumps({"format": "orderfsm.simulator.state", "version": 2, "records": {
        "order": {f"o{i}": {"note": "x" * 500} for i in range(3000)}}}).encode()
    broken = text[:-2] + tail
    with pytest.raises(SquareError) as err:
        parse_snapshot([broken[i:i + 65536] for i in range(0, len(broken), 65536)])
    assert err.value.status == 400


def test_a_reloaded_copy_of_a_shared_merchant_is_freed_without_a_collection(pg_url) -> None:
    """Two processes on one PostgreSQL database: when one changes the merchant, the other
    reloads its copy, and the old copy goes at once (a copy the serving GC policy had frozen
    would otherwise stay for good)."""
    apps = [create_app(db=pg_url), create_app(db=pg_url)]
    for app in apps:
        app.state.config.log_requests = False
    writer, reader = (TestClient(app) for app in apps)

    def pay(key: str) -> None:
        assert writer.post("/v2/payments", headers=H, json={
            "idempotency_key": key, "source_id": "cnon:card-nonce-ok",
            "amount_money": {"amount": 100, "currency": "USD"}}).status_code == 200

    pay("one")
    assert len(reader.get("/v2/payments", headers=H).json()["payments"]) == 1
    old = apps[1].state.store.merchants["pause-token"]
    copy = weakref.ref(old)
    del old
    pay("two")
    gc.disable()
    try:
        assert len(reader.get("/v2/payments", headers=H).json()["payments"]) == 2  # reloaded
        assert copy() is None
    finally:
        gc.enable()

"""The throwaway PostgreSQL server the PostgreSQL tests and benchmarks run on."""

import os

import psycopg
import pytest

from orderfsm.pgtemp import PostgresUnavailable, TempPostgres, find_binaries


def test_each_test_gets_an_empty_database_of_its_own(pg_server, pg_url):
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert pg_url.endswith("/" + name)
    assert name in {row[0] for row in pg_server.sql("SELECT datname FROM pg_database")}


def test_the_server_does_not_run_as_root(pg_server):
    user = pg_server.sql("SELECT usename FROM pg_user WHERE usesuper LIMIT 1")[0][0]
    assert user == "postgres"
    pid = int((pg_server.dir / "data" / "postmaster.pid").read_text().split()[0])
    assert os.stat(f"/proc/{pid}").st_uid != 0


def test_stop_removes_the_directory_and_the_server():
    pg = TempPostgres().start()
    directory, url = pg.dir, pg.url()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pg.stop()
    assert not directory.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_missing_binaries_are_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("ORDERFSM_PG_BIN", str(tmp_path))
    monkeypatch.setattr("glob.glob", lambda pattern: [])
    assert find_binaries() is None
    with pytest.raises(PostgresUnavailable, match="no PostgreSQL server binaries"):
        TempPostgres()


def test_database_names_are_checked(pg_server):
    with pytest.raises(ValueError):
        pg_server.create_database('x"; DROP DATABASE postgres; --')

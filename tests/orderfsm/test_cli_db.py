"""``orderfsm db upgrade`` and ``orderfsm db check`` on SQLite files and on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from orderfsm.cli import app
from orderfsm.simulator import create_app
from orderfsm.store import schema

runner = CliRunner()
V = schema.SCHEMA_VERSION


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200", "ORDERFSM_DB": ""})


def _version_2_sqlite(path) -> None:
    db = sqlite3.connect(path)
    db.execute(schema.META_TABLE)
    schema.apply_migrations(db.execute, 0, "a test database", upto=2)
    db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    db.execute("INSERT INTO merchants VALUES ('t', 1)")
    db.execute("INSERT INTO generations VALUES (1)")
    for kind, ident in (("order", "o1"), ("order", "o2"), ("payment", "p1"), ("refund", "r1")):
        db.execute("INSERT INTO records VALUES (1, ?, ?, 1, '{}')", (kind, ident))
    db.execute("INSERT INTO records VALUES (2, 'order', 'gone', 1, '{}')")  # no token: not counted
    db.commit()
    db.close()


def test_check_reports_without_upgrading_then_upgrade_migrates(tmp_path) -> None:
    path = tmp_path / "old.db"
    _version_2_sqlite(path)
    check = invoke("db", "check", "--db", f"sqlite:///{path}")
    assert check.exit_code == 0, check.output
    assert check.stdout.splitlines() == [
        f"database: {path}", f"schema version: 2 (this orderfsm uses {V}: run `orderfsm db "
        "upgrade`)", "merchants: 1", "orders: 2", "payments: 1", "refunds: 1"]
    assert invoke("db", "check", "--db", str(path), "--json").stdout.strip() == json.dumps({
        "database": str(path), "schema_version": 2, "merchants": 1, "orders": 2, "payments": 1,
        "refunds": 1, "current_schema_version": V})
    up = invoke("db", "upgrade", "--db", str(path))
    assert up.exit_code == 0 and up.stdout.strip() == f"{path}: schema version {V} (was 2)"
    assert json.loads(invoke("db", "check", "--db", str(path), "--json").stdout)[
        "schema_version"] == V
    again = invoke("db", "upgrade", "--db", str(path))
    assert again.stdout.strip() == f"{path}: schema version {V} (already current)"


def test_check_refuses_what_is_not_a_database(tmp_path) -> None:
    missing = invoke("db", "check", "--db", str(tmp_path / "nope.db"))
    assert missing.exit_code == 2 and "no database at" in missing.stderr
    assert not (tmp_path / "nope.db").exists()  # check never creates one
    for db in ("memory", "mysql://x/y"):
        result = invoke("db", "check", "--db", db)
        assert result.exit_code == 2 and "not a database URL or path" in result.stderr
    assert invoke("db", "upgrade", "--db", "memory").exit_code == 2


def test_on_postgres_check_counts_what_the_simulator_wrote(pg_url) -> None:
    empty = invoke("db", "check", "--db", pg_url, "--json")
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.stdout)["schema_version"] == 0  # nothing there yet
    up = invoke("db", "upgrade", "--db", pg_url)
    assert up.exit_code == 0 and up.stdout.strip().endswith(f"schema version {V} (was 0)")
    from fastapi.testclient import TestClient

    client = TestClient(create_app(db=pg_url))
    for token in ("a", "b"):
        h = {"Authorization": f"Bearer {token}"}
        pay = client.post("/v2/payments", headers=h, json={
            "idempotency_key": "k", "source_id": "cnon:card-nonce-ok",
            "amount_money": {"amount": 500, "currency": "USD"}}).json()["payment"]
        assert client.post("/v2/refunds", headers=h, json={
            "idempotency_key": "r", "payment_id": pay["id"],
            "amount_money": {"amount": 100, "currency": "USD"}}).status_code == 200
    client.post("/_sim/reset", headers={"Authorization": "Bearer b"})  # b starts over
    state = client.get("/_sim/state", headers={"Authorization": "Bearer a"}).json()["records"]
    orders = len(state["order"])  # the payment's order, and the refund's return
    assert orders >= 1
    client.app.state.store.state.close()
    check = invoke("db", "check", "--db", pg_url)
    assert check.exit_code == 0, check.output
    assert check.stdout.splitlines()[1:] == [f"schema version: {V} (current)", "merchants: 2",
                                             f"orders: {orders}", "payments: 1", "refunds: 1"]


def test_upgrade_names_an_unreachable_server() -> None:
    result = invoke("db", "upgrade", "--db", "postgresql://postgres@127.0.0.1:1/x"
                                             "?connect_timeout=3")
    assert result.exit_code == 2
    assert "cannot connect to postgresql://postgres@127.0.0.1:1/x" in result.stderr


@pytest.mark.parametrize("command", ["upgrade", "check"])
def test_db_help_names_the_option(command: str) -> None:
    result = invoke("db", command, "--help")
    assert result.exit_code == 0 and "--db" in result.stdout

"""Every orderfsm command explains itself (`--help`), and user errors end with a message and
exit code 2, never a traceback."""

from __future__ import annotations

import socket

import pytest
import typer.main
from typer.testing import CliRunner

from orderfsm.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}
COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)


def invoke(*args: str):
    return runner.invoke(app, list(args), env=WIDE)


def test_the_documented_commands_exist() -> None:
    assert {"serve", "rules", "explain", "diagram"} <= set(COMMANDS)


def test_top_level_help_lists_every_command_with_its_summary() -> None:
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        summary = COMMAND.commands[name].help.strip().splitlines()[0]
        assert name in result.stdout
        assert summary[:40] in result.stdout


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "Usage" in result.output
    assert all(name in result.output for name in COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_help(name: str) -> None:
    command = COMMAND.commands[name]
    result = invoke(name, "--help")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Usage: orderfsm {name}" in out
    assert command.help and command.help.strip().splitlines()[0][:40] in out
    for param in command.params:
        if param.param_type_name == "option":
            assert param.help, f"{name} {param.opts[0]} has no help text"
            assert param.opts[0] in out
            assert param.help.split()[0] in out
        else:
            assert param.help, f"{name} {param.name} has no help text"
            assert (param.metavar or param.name.upper()) in out


def test_unknown_command_exits_2() -> None:
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_serve_rejects_a_bad_variant() -> None:
    result = invoke("serve", "--variant", "cancel_after_payment=sometimes")
    assert result.exit_code == 2
    assert "error:" in result.stderr
    assert "sometimes" in result.stderr
    assert "Traceback" not in result.output


def test_serve_rejects_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("serve", "--port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port 0" in result.stderr
    assert "listening" not in result.stdout


@pytest.mark.parametrize("db, message", [
    ("mysql://localhost/shop", "unsupported store URL scheme 'mysql'"),
    ("postgresql://postgres@127.0.0.1:1/shop?connect_timeout=3",
     "cannot connect to postgresql://postgres@127.0.0.1:1/shop"),
    ("sqlite://relative.db", "sqlite:///relative/path"),
])
def test_serve_rejects_a_store_it_cannot_open(db: str, message: str) -> None:
    result = invoke("serve", "--port", "0", "--db", db)
    assert result.exit_code == 2
    assert "cannot open the state store" in result.stderr and message in result.stderr
    assert "listening" not in result.stdout


@pytest.mark.parametrize("db", [None, "memory", "sqlite:///x.db"])
def test_serve_refuses_several_workers_without_postgres(db) -> None:
    result = invoke("serve", "--port", "0", "--workers", "2", *(("--db", db) if db else ()))
    assert result.exit_code == 2
    assert "--workers 2 needs a PostgreSQL database" in result.stderr
    assert "listening" not in result.stdout


def test_serve_rejects_a_file_that_is_not_a_store(tmp_path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    result = invoke("serve", "--port", "0", "--db", str(junk))
    assert result.exit_code == 2
    assert "cannot open the state store" in result.stderr
    assert "Traceback" not in result.output


def test_serve_rejects_an_unknown_durability() -> None:
    result = invoke("serve", "--port", "0", "--durability", "sometimes")
    assert result.exit_code == 2
    assert "--durability must be normal or full" in result.stderr

"""Every command line in the docs' bash blocks runs: `orderfsm ...` commands for real (a server
for `serve`), `python -m pytest ...` against a running simulator. Only the set-up lines listed
below are not run here (CI runs the README's test command itself)."""

from __future__ import annotations

import importlib.util
import os
import re
import selectors
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

_spec = importlib.util.spec_from_file_location("orderfsm_docs_helpers",
                                               Path(__file__).with_name("_docs.py"))
docs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = docs
_spec.loader.exec_module(docs)

from orderfsm.cli import app  # noqa: E402
from orderfsm.simulator import running  # noqa: E402

REPO = docs.REPO
NOT_RUN = {
    # Installing and CI's own command.
    "pip install -e .",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && orderfsm serve",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && "
    "python -m pytest -q",
    "pip install -e '.[postgres]'",
}
LINES = sorted({(page, line) for page in docs.own_pages() for line in docs.shell_lines(page)})


def kind(line: str) -> str:
    if line in NOT_RUN:
        return "setup"
    if "postgresql://" in line or line.startswith(("pg_dump ", "pg_restore ")):
        return "postgres"  # run in page order against a PostgreSQL server (test_deploy.py)
    if line.startswith("orderfsm serve"):
        return "serve"
    if line.startswith("orderfsm conform"):
        return "conform"
    if line.startswith("orderfsm "):
        return "cli"
    if line.startswith("python -m pytest "):
        return "pytest"
    return "unknown"


def test_every_command_line_is_run_or_listed() -> None:
    unknown = [f"{page}: {line}" for page, line in LINES if kind(line) == "unknown"]
    assert unknown == []
    assert {kind(line) for _, line in LINES} >= {"serve", "cli", "conform", "pytest"}


@pytest.mark.parametrize("line", sorted({line for _, line in LINES if kind(line) == "cli"}))
def test_cli_lines(line: str) -> None:
    args = shlex.split(line)[1:]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


@pytest.mark.parametrize("line", sorted({line for _, line in LINES if kind(line) == "conform"}))
def test_conform_lines(line: str) -> None:
    """Against the local URL the documented run happens, on a server of ours (started with the
    variants the line assumes); against another server only the arguments are checked."""
    args = shlex.split(line.replace("$SQUARE_SANDBOX_TOKEN", "sandbox-token"))[1:]
    if docs.DOC_URL not in args:
        typer.main.get_command(app).commands["conform"].make_context("conform", args[1:])
        return
    variants = dict(re.findall(r"--variant (\w+)=(\w+)", line))
    with running(variants=variants) as base_url:
        args = [base_url if a == docs.DOC_URL else a for a in args]
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    if "--detect-variants" in args:
        assert "variants the server behaves like" in result.stdout
    else:
        assert "no divergence" in result.stdout




def _read_banner(proc: subprocess.Popen, deadline: float) -> str:
    """Stdout up to the end of the banner's SDK snippet (its `print(...)` line)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out = ""
    while "print(client.locations" not in out:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"no banner; got {out!r}"
        if sel.select(timeout=left):
            chunk = os.read(proc.stdout.fileno(), 4096).decode()
            assert chunk, f"serve exited; got {out!r}"
            out += chunk
    return out


@pytest.mark.parametrize("line", sorted({line for _, line in LINES if kind(line) == "serve"}))
def test_serve_lines(line: str, tmp_path: Path) -> None:
    """Start the documented command on a free port (in an empty directory, which holds its
    state file), check the banner, run the banner's own SDK snippet against it, and check any
    --variant it sets."""
    args = shlex.split(line)[2:]
    if "--port" in args:
        del args[args.index("--port"):args.index("--port") + 2]
    port = docs.free_port()
    args += ["--port", str(port), "--quiet"]
    # Files the command names (--catalog docs/...) are relative to the repository.
    args = [str(REPO / a) if "/" in a and (REPO / a).is_file() else a for a in args]
    proc = subprocess.Popen([*docs.orderfsm_command(), "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
                            cwd=tmp_path)
    try:
        banner = _read_banner(proc, time.monotonic() + 60)
        base = f"http://127.0.0.1:{port}"
        assert f"listening on {base}" in banner
        assert "sandbox-token" in banner
        snippet = banner[banner.index("from square import Square"):]
        namespace: dict = {}
        for _ in range(100):  # the banner is printed just before uvicorn binds the port
            try:
                exec(compile(snippet, "banner", "exec"), namespace)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        else:
            pytest.fail("the server never accepted a connection")
        variants = httpx.get(f"{base}/_sim/variants",
                             headers={"Authorization": "Bearer sandbox-token"}).json()["variants"]
        for name, value in re.findall(r"--variant (\w+)=(\w+)", line):
            assert variants[name] == value
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("line", sorted({line for _, line in LINES if kind(line) == "pytest"}))
def test_pytest_lines(line: str, server) -> None:
    """Run the documented pytest command. Against the local URL it runs for real, on a server
    of ours; against any other server (the sandbox) only collection is checked, as this
    machine has no network."""
    args = shlex.split(line.replace("$SQUARE_SANDBOX_TOKEN", "sandbox-token"))[3:]
    local = docs.DOC_URL in args
    args = [server.base_url if a == docs.DOC_URL else a for a in args]
    if not local:
        args.append("--collect-only")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if local:
        assert re.search(r"\b[1-9]\d* passed", proc.stdout), proc.stdout
        assert "square_live_compatible" in proc.stdout  # the unmarked test's skip reason
        assert server.app.state.store.merchants, "the tests did not reach the server"

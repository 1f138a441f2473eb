"""docs/deploy.md, run as a reader would: its command lines, in page order, against a
PostgreSQL server of the test run's own. Serve a merchant, check and upgrade the schema, back
the database up with pg_dump and restore it elsewhere, and find the same counts there."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx

_spec = importlib.util.spec_from_file_location("orderfsm_docs_helpers",
                                               Path(__file__).with_name("_docs.py"))
docs = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = docs
_spec.loader.exec_module(docs)

PAGE = "docs/deploy.md"
URL_RE = re.compile(r"postgresql://\S+")
LINES = [line for line in docs.shell_lines(PAGE) if not line.startswith("pip install")]




def _counts(output: str) -> dict[str, int]:
    return {name: int(n) for name, n in
            re.findall(r"\b(merchants|orders|payments|refunds)\b\D{0,20}?(\d+)", output)}


def test_the_page_shows_every_step():
    kinds = [line.split()[0] + (" " + line.split()[1] if line.startswith("orderfsm") else "")
             for line in LINES]
    assert kinds == ["orderfsm serve", "orderfsm db", "orderfsm db", "pg_dump", "pg_restore"]
    assert all(URL_RE.search(line) for line in LINES)


def test_deploy_page_runs_in_order(pg_server, tmp_path):
    from orderfsm.pgtemp import find_binaries

    # Every database the page names becomes a fresh database on the test server.
    names = {}
    for line in LINES:
        for url in URL_RE.findall(line):
            if url not in names:
                names[url] = f"deploy_{os.getpid()}_{len(names)}"
                pg_server.create_database(names[url])
    try:
        def run_line(line: str):  # a CompletedProcess, or (Popen, port) for serve
            line = URL_RE.sub(lambda m: pg_server.url(names[m.group(0)]), line)
            args = shlex.split(line)
            if args[0] == "orderfsm":
                args = [*docs.orderfsm_command(), *args[1:]]
            else:
                args[0] = str(find_binaries() / args[0])
            if args[len(docs.orderfsm_command())] == "serve":
                port = docs.free_port()
                return subprocess.Popen([*args, "--port", str(port), "--quiet"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        cwd=tmp_path, text=True), port
            return subprocess.run(args, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=120)

        serve_line, check_line, upgrade_line, dump_line, restore_line = LINES
        proc, port = run_line(serve_line)
        try:
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": "Bearer deploy-doc"}
            for _ in range(600):
                try:
                    httpx.get(f"{base}/v2/locations", headers=auth, timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stdout.read()
                    time.sleep(0.1)
            for i in range(3):
                r = httpx.post(f"{base}/v2/payments", headers=auth, json={
                    "idempotency_key": f"deploy-{i}", "source_id": "cnon:card-nonce-ok",
                    "amount_money": {"amount": 500 + i, "currency": "USD"}})
                assert r.status_code == 200, r.text
        finally:
            proc.terminate()
            proc.wait(timeout=30)

        checked = run_line(check_line)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        before = _counts(checked.stdout)
        assert before["merchants"] == 1 and before["payments"] == 3, checked.stdout
        assert re.search(r"schema\D*\d+", checked.stdout), checked.stdout

        upgraded = run_line(upgrade_line)
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr

        dumped = run_line(dump_line)
        assert dumped.returncode == 0, dumped.stderr
        assert (tmp_path / "orderfsm.dump").stat().st_size > 0
        restored = run_line(restore_line)
        assert restored.returncode == 0, restored.stderr

        # The restored database holds the same merchant: db check on it, and a server on it
        # that replays a pre-backup idempotency key.
        target = URL_RE.findall(restore_line)[0]
        again = run_line(check_line.replace(URL_RE.findall(check_line)[0], target))
        assert again.returncode == 0, again.stderr
        assert _counts(again.stdout) == before
        proc, port = run_line(serve_line.replace(URL_RE.findall(serve_line)[0], target))
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    r = httpx.post(f"{base}/v2/payments", headers=auth, json={
                        "idempotency_key": "deploy-0", "source_id": "cnon:card-nonce-ok",
                        "amount_money": {"amount": 500, "currency": "USD"}}, timeout=5)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stdout.read()
                    time.sleep(0.1)
            assert r.status_code == 200
            assert r.json()["payment"]["amount_money"]["amount"] == 500
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        after = _counts(run_line(check_line.replace(URL_RE.findall(check_line)[0],
                                                    target)).stdout)
        assert after == before  # the replay created nothing
    finally:
        for name in names.values():
            pg_server.drop_database(name)

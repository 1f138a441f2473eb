"""A throwaway PostgreSQL server for tests and benchmarks.

:class:`TempPostgres` runs ``initdb`` into a temporary directory and starts ``postgres`` on a
free loopback port with password-less (``trust``) access for the ``postgres`` role. It is what
the project's own tests use for the PostgreSQL store, and it suits a user's test suite just as
well::

    with TempPostgres() as pg:
        url = pg.create_database("checkout_tests")
        # orderfsm serve --db <url> --workers 2 ...

PostgreSQL refuses to run as root. When the current user is root, the server runs as the
``postgres`` system user (override with ``ORDERFSM_PG_USER``), which must exist. The binaries
are found on ``PATH``, in ``ORDERFSM_PG_BIN``, or under ``/usr/lib/postgresql/<version>/bin``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

__all__ = ["TempPostgres", "find_binaries", "PostgresUnavailable"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (or no user allowed to run them)."""


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[str] = []
    if os.environ.get("ORDERFSM_PG_BIN"):
        candidates.append(os.environ["ORDERFSM_PG_BIN"])
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        d = Path(directory)
        if all((d / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Settings for a server whose data may be lost with the machine: tests never survive a
#: power cut, so they do not pay for flushing to disk.
FAST: Mapping[str, str] = {"fsync": "off", "synchronous_commit": "off",
                           "full_page_writes": "off"}


class TempPostgres:
    """A PostgreSQL server of its own, in a temporary directory, removed by :meth:`stop`.

    ``settings`` are passed to the server as ``-c name=value`` (for example :data:`FAST`);
    ``max_connections`` defaults to 200 so that several simulator workers with their pools and
    a test's own connections fit."""

    def __init__(self, settings: Mapping[str, str] | None = None, *,
                 max_connections: int = 200) -> None:
        bindir = find_binaries()
        if bindir is None:
            raise PostgresUnavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH, in "
                "ORDERFSM_PG_BIN or under /usr/lib/postgresql/*/bin")
        self.bindir = bindir
        self.settings = {"max_connections": str(max_connections), **(settings or {})}
        self.host = "127.0.0.1"
        self.port = 0
        self.dir: Path | None = None
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            name = os.environ.get("ORDERFSM_PG_USER", "postgres")
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, and PostgreSQL refuses root; no {name!r} user to run "
                    "it as (set ORDERFSM_PG_USER)") from None
            self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            self._owner = (entry.pw_uid, entry.pw_gid)
        else:
            self._owner = None

    # ------------------------------------------------------------------ lifecycle
    def _run(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], check=True,
                              capture_output=True, text=True, cwd=self.dir,
                              **self._run_as, **kw)

    def start(self) -> "TempPostgres":
        self.dir = Path(tempfile.mkdtemp(prefix="orderfsm-pg-"))
        if self._owner is not None:
            os.chown(self.dir, *self._owner)
        data = self.dir / "data"
        try:
            self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--locale=C", "--no-sync")
        except subprocess.CalledProcessError as exc:
            self._cleanup()
            raise PostgresUnavailable(f"initdb failed: {exc.stderr.strip()}") from exc
        options = [f"-c {k}={v}" for k, v in self.settings.items()]
        last: subprocess.CalledProcessError | None = None
        for _ in range(5):  # a port found free can be taken before the server binds it
            self.port = _free_port()
            opts = " ".join([f"-p {self.port}", f"-h {self.host}",
                             f"-k {self.dir}", *options])
            try:
                self._run("pg_ctl", "-D", str(data), "-o", opts, "-l",
                          str(self.dir / "server.log"), "-w", "-t", "60", "start")
                return self
            except subprocess.CalledProcessError as exc:
                last = exc
                time.sleep(0.2)
        log = (self.dir / "server.log").read_text(errors="replace")[-2000:]
        self._cleanup()
        raise PostgresUnavailable(f"PostgreSQL did not start: {last and last.stderr}\n{log}")

    def stop(self) -> None:
        """Stop the server (immediate shutdown: its data is thrown away) and remove it."""
        if self.dir is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w",
                      "stop")
        except subprocess.CalledProcessError:
            pass
        self._cleanup()

    def _cleanup(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "TempPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and _ only")
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple]:
        """Run one statement outside a transaction (as CREATE DATABASE needs) and return its
        rows, if any."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(statement)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def log(self) -> str:
        """The server's log so far (to explain a failure)."""
        if self.dir is None:
            return ""
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

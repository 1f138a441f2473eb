"""The ``orderfsm`` command line.

Each command is one function decorated with ``@app.command()``; add new commands the same way.
User errors (unknown rule id, unknown resource) print a message to stderr and exit with code 2,
never a traceback.
"""

from __future__ import annotations

import difflib
import errno
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import diagrams
from .lifecycles import LIFECYCLES
from .reference import RESOURCES, error_body, lifecycle_references, rules_markdown, source_parts
from .rules import CATALOG, Rule

__all__ = ["app", "main"]

app = typer.Typer(
    name="orderfsm",
    help="Square's order, payment, refund and fulfillment rules as executable state machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


class RulesFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class DiagramFormat(str, Enum):
    mermaid = "mermaid"
    dot = "dot"


# Every resource named in the catalog, in catalog order.
Resource = Enum("Resource", [(r, r) for r in RESOURCES], type=str)  # type: ignore[misc]


def _out() -> Console:
    return Console(highlight=False)


def _fail(message: str, hints: list[str] | None = None) -> NoReturn:
    """Print a user error (and optional hints) to stderr and exit with code 2."""
    err = Console(stderr=True, highlight=False)
    err.print(Text("error: ", style="bold red") + Text(message))
    for hint in hints or ():
        err.print(Text(hint, style="yellow"))
    raise typer.Exit(code=2)


def _suggest(word: str, choices: list[str]) -> list[str]:
    """Close matches for ``word``, also comparing the part after the dot of dotted ids."""
    found = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    tails = {c.split(".", 1)[-1]: c for c in choices}
    for tail in difflib.get_close_matches(word.split(".", 1)[-1], list(tails), n=3, cutoff=0.6):
        if tails[tail] not in found:
            found.append(tails[tail])
    return found[:5]


# ------------------------------------------------------------------------------ rules

def _variant_cell(rule: Rule) -> str:
    v = rule.variant
    if v is None:
        return ""
    # Values only: --variant also accepts the rule id as the key.
    return ", ".join(f"{x}*" if x == v.default else x for x in v.values)


@app.command()
def rules(
    fmt: Annotated[RulesFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="table: a summary table; json: the catalog as Rule.to_json() objects; "
             "markdown: the full reference with lifecycle diagrams.")] = RulesFormat.table,
    resource: Annotated[Resource | None, typer.Option(  # type: ignore[valid-type]
        "--resource", "-r", case_sensitive=False,
        help="Only the rules of this resource.")] = None,
) -> None:
    """List the rule catalog: ids, confidence, the Square error each rule produces, variants."""
    res = resource.value if resource is not None else None
    selected = [r for r in CATALOG.values() if res is None or r.resource == res]
    if fmt is RulesFormat.json:
        typer.echo(json.dumps([r.to_json() for r in selected], indent=2, ensure_ascii=False))
        return
    if fmt is RulesFormat.markdown:
        typer.echo(rules_markdown(res), nl=False)
        return
    # The id starts with the resource, so there is no resource column: it keeps the table narrow.
    table = Table(title=f"{len(selected)} rules", title_justify="left", box=box.SIMPLE_HEAD,
                  caption="`orderfsm explain RULE_ID` shows a rule's sources and exact error",
                  caption_justify="left")
    table.add_column("id", style="bold cyan", no_wrap=True)
    table.add_column("confidence", no_wrap=True)
    table.add_column("error", overflow="fold", min_width=12)
    table.add_column("variant (*default)", overflow="fold", min_width=10)
    for r in selected:
        error = f"{r.error.status} {r.error.code}" if r.error else ""
        table.add_row(r.id, str(r.confidence), error, _variant_cell(r))
    _out().print(table)


# ---------------------------------------------------------------------------- explain

@app.command()
def explain(
    rule_id: Annotated[str, typer.Argument(
        metavar="RULE_ID", help="A catalog rule id, for example order.cancel_after_payment.",
        show_default=False)],
) -> None:
    """Explain one rule: statement, sources, exact Square error, variants, lifecycle use."""
    rule = CATALOG.get(rule_id)
    if rule is None:
        close = _suggest(rule_id, list(CATALOG))
        hints = [f"did you mean: {', '.join(close)}?"] if close else []
        hints.append("run `orderfsm rules` to list every rule id")
        _fail(f"unknown rule id {rule_id!r}", hints)
    out = _out()
    out.print(Text(rule.id, style="bold cyan") + Text(f"  ({rule.resource}, {rule.confidence})"))
    out.print(Text(rule.statement))

    out.print(Text("\nSources", style="bold"))
    for key in rule.sources:
        url, remark = source_parts(key)
        line = Text(f"  {key}  ", style="dim")
        line += Text(url, style="link " + url) if url else Text(remark)
        if url and remark:
            line += Text(f" {remark}")
        out.print(line, soft_wrap=True)

    body = error_body(rule)
    if body is None or rule.error is None:
        out.print(Text("\nError", style="bold") + Text("  none: this rule does not reject requests"))
    else:
        out.print(Text("\nError", style="bold")
                  + Text(f"  HTTP {rule.error.status} (wording {rule.error.wording})"))
        out.print_json(data=body, indent=2)

    if rule.variant is not None:
        v = rule.variant
        out.print(Text("\nVariant ", style="bold") + Text(v.name, style="cyan")
                  + Text(f"  (switch with --variant {v.name}=VALUE)"))
        for value, meaning in v.values.items():
            mark = " (default)" if value == v.default else ""
            out.print(Text(f"  {value}", style="green") + Text(mark, style="bold")
                      + Text(f": {meaning}"))

    refs = lifecycle_references(rule.id)
    out.print(Text("\nLifecycles", style="bold"))
    if refs:
        for ref in refs:
            out.print(Text(f"  {ref.describe()}"))
    else:
        out.print(Text("  not referenced by any lifecycle table"))

    if rule.example:
        out.print(Text("\nExample", style="bold"))
        out.print(Text(f"  {rule.example}"))


# ---------------------------------------------------------------------------- diagram

@app.command()
def diagram(
    resource: Annotated[str, typer.Argument(
        metavar="RESOURCE", help=f"The lifecycle to draw: {', '.join(LIFECYCLES)}.",
        show_default=False)],
    fmt: Annotated[DiagramFormat, typer.Option(
        "--format", "-f", case_sensitive=False,
        help="mermaid (stateDiagram-v2, renders on GitHub) or dot (Graphviz).",
    )] = DiagramFormat.mermaid,
    rejections: Annotated[bool, typer.Option(
        "--rejections", help="Also draw the table's rejections, labelled with their rule "
                             "(dashed in DOT).")] = False,
) -> None:
    """Print a lifecycle diagram generated from its transition table."""
    if resource not in LIFECYCLES:
        close = _suggest(resource, list(LIFECYCLES))
        hints = [f"did you mean: {', '.join(close)}?"] if close else []
        _fail(f"unknown resource {resource!r}; choose one of {', '.join(LIFECYCLES)}", hints)
    typer.echo(diagrams.render(resource, fmt.value, include_rejections=rejections), nl=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8000,
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", metavar="NAME=VALUE", help="Switch a disputed rule, NAME=VALUE (repeatable). "
                          "See `orderfsm rules --format json` for names and values.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for ids; the same seed and requests give the "
                                           "same responses.")] = 0,
    refund_settle_seconds: Annotated[float, typer.Option(
        help="Virtual seconds before a PENDING card refund settles.")] = 10.0,
    quiet: Annotated[bool, typer.Option(
        help="Log warnings and errors only (no line per request).")] = False,
    log_level: Annotated[str, typer.Option(
        "--log-level", help="debug, info (one line per request), warning, error or critical."
    )] = "info",
    log_format: Annotated[str, typer.Option(
        "--log-format", help="text, or json (one object per line).")] = "text",
    webhook_allow: Annotated[str | None, typer.Option(
        "--webhook-allow", metavar="HOST[,HOST...]",
        help="Hosts webhook subscriptions may deliver to besides loopback; * allows any.",
    )] = None,
    catalog: Annotated[Path | None, typer.Option(
        "--catalog", metavar="FILE", help="JSON file: a list of CatalogObjects (fixed ids) that "
                                          "every merchant's catalog starts with.")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", envvar="ORDERFSM_DB", show_default=False,
        help="Where state lives: a SQLite file path, a sqlite:///PATH URL, 'memory', or "
             "postgresql://USER@HOST:PORT/DB (shared by --workers and other hosts). "
             "Default: .orderfsm/state.sqlite3 under the working directory.")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Wipe the stored state before starting.")] = False,
    durability: Annotated[str, typer.Option(
        "--durability", help="normal: a response is stored before it is sent and survives "
                             "kill -9; full: also survives power loss (slower).")] = "normal",
    workers: Annotated[int, typer.Option(
        "--workers", envvar="ORDERFSM_WORKERS", min=1,
        help="Worker processes on the one port; more than 1 needs a postgresql:// --db.")] = 1,
) -> None:
    """Run the Square simulator under uvicorn and print its base URL."""
    from .logs import LEVELS, configure
    from .store import DEFAULT_DB, is_postgres, open_store
    from .rules import Variants
    from .simulator import _free_port, create_app, serve_forever

    try:
        variants = Variants(variant or [])
    except ValueError as exc:
        _fail(str(exc))
    seed_catalog = _load_catalog(catalog) if catalog is not None else None
    if port == 0:
        port = _free_port(host)
    else:
        problem = _bind_problem(host, port)
        if problem is not None:
            in_use = problem.errno == errno.EADDRINUSE
            _fail(f"cannot listen on {host}:{port}: {problem.strerror or problem}",
                  ["pass --port 0 to pick a free port"] if in_use else None)
    if log_level.lower() not in LEVELS:
        _fail(f"unknown log level {log_level!r}; choose one of {', '.join(LEVELS)}")
    if log_format not in ("text", "json"):
        _fail(f"unknown log format {log_format!r}; choose text or json")
    if durability not in ("normal", "full"):
        _fail(f"--durability must be normal or full, not {durability!r}")
    allow = tuple(h.strip().lower() for h in (webhook_allow or "").split(",") if h.strip())
    if workers > 1 and not is_postgres(db):
        _fail(f"--workers {workers} needs a PostgreSQL database (--db postgresql://USER@HOST:"
              "PORT/DB): with a SQLite file or memory each process would keep its own copy of "
              "every merchant and they would disagree")
    try:
        state = open_store(db or DEFAULT_DB, durability=durability)
    except (ValueError, OSError, RuntimeError) as exc:
        _fail(f"cannot open the state store {db or DEFAULT_DB}: {exc}")
    except Exception as exc:  # sqlite3.DatabaseError: not a database, locked, ...
        _fail(f"cannot open the state store {db or DEFAULT_DB}: {exc}")
    if fresh:
        state.wipe()
    if workers > 1:
        # The workers open the database themselves; the migrations ran above, once.
        application = None
        restored = len(state.merchants())
        state.close()
    else:
        configure(log_level, log_format, quiet=quiet)
        application = create_app(variants=dict(variants), seed=seed,
                                 refund_settle_seconds=refund_settle_seconds, db=state)
        application.state.config.catalog = seed_catalog
        application.state.config.webhook_allow = allow
        restored = application.state.store.restored
    base = f"http://{host}:{port}"
    out = _out()
    out.print(f"orderfsm simulator listening on [bold]{base}[/bold]")
    where = state.location if state.durable else "memory (lost when the server stops)"
    detail = f" (durability {durability})" if state.durable else ""
    if state.shared:
        detail = f"; {workers} worker{'s' if workers != 1 else ''}{detail}"
    out.print(f"state: {where}; restored {restored} merchant{'s' if restored != 1 else ''}"
              + detail, markup=False, soft_wrap=True)
    changed = variants.non_default()
    if changed:
        out.print("variants: " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    out.print("any non-empty bearer token is a merchant, e.g. [bold]sandbox-token[/bold]")
    out.print(f"inspector: {base}/_sim/ui?token=sandbox-token", markup=False)
    out.print(
        "\nfrom square import Square\n"
        f'client = Square(token="sandbox-token", base_url="{base}")\n'
        "print(client.locations.list().locations[0].id)\n", markup=False)
    sys.stdout.flush()
    if application is None:
        from .workers import run_workers

        run_workers(host, port, workers, {
            "db": db, "variants": dict(variants), "seed": seed,
            "refund_settle_seconds": refund_settle_seconds, "catalog": seed_catalog,
            "webhook_allow": list(allow), "log_level": log_level, "log_format": log_format,
            "quiet": quiet, "durability": durability})
        return
    serve_forever(host, port, application, log_level="warning")


# --------------------------------------------------------------------------------- db

db_app = typer.Typer(name="db", help="The state store's schema: upgrade it, check it.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")

DbOption = Annotated[str | None, typer.Option(
    "--db", envvar="ORDERFSM_DB", show_default=False,
    help="A SQLite file path, a sqlite:///PATH URL, or postgresql://USER@HOST:PORT/DB. "
         "Default: .orderfsm/state.sqlite3 under the working directory.")]


def _sqlite_path(db: str) -> str:
    return db[len("sqlite:///"):] if db.startswith("sqlite:///") else db


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Apply the schema migrations the database lacks (serve applies them at start too)."""
    from .store import DEFAULT_DB, open_store
    from .store.schema import SCHEMA_VERSION

    target = db or DEFAULT_DB
    if target in ("memory", ":memory:"):
        _fail("a memory store has no schema to upgrade")
    try:
        state = open_store(target)
    except Exception as exc:
        _fail(f"cannot open the state store {target}: {exc}")
    try:
        before = state.upgraded_from
        where = state.location
    finally:
        state.close()
    if before == SCHEMA_VERSION:
        typer.echo(f"{where}: schema version {SCHEMA_VERSION} (already current)")
    else:
        typer.echo(f"{where}: schema version {SCHEMA_VERSION} (was {before})")


@db_app.command("check")
def db_check(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Print the schema version and the counts of merchants, orders, payments and refunds
    (nothing is changed: an old schema is reported, not upgraded)."""
    import os
    import sqlite3

    from .store import DEFAULT_DB, is_postgres
    from .store.base import store_stats
    from .store.schema import SCHEMA_VERSION

    target = db or DEFAULT_DB
    try:
        if is_postgres(target):
            from .store.postgres import PostgresStore

            state = PostgresStore(target, migrate=False)
            where = state.location
            try:
                stats = state.stats()
            finally:
                state.close()
        else:
            if target in ("memory", ":memory:") or "://" in target \
                    and not target.startswith("sqlite:///"):
                _fail(f"not a database URL or path: {target}")
            path = os.path.abspath(_sqlite_path(target))
            if not os.path.exists(path):
                _fail(f"no database at {path}")
            where = path
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                stats = store_stats(conn)
            finally:
                conn.close()
    except typer.Exit:
        raise
    except Exception as exc:
        _fail(f"cannot read the state store {target}: {exc}")
    version = stats["schema_version"]
    if as_json:
        typer.echo(json.dumps({"database": where, **stats, "current_schema_version":
                               SCHEMA_VERSION}))
        return
    note = ("current" if version == SCHEMA_VERSION
            else f"this orderfsm uses {SCHEMA_VERSION}: run `orderfsm db upgrade`"
            if version < SCHEMA_VERSION else f"newer than this orderfsm's {SCHEMA_VERSION}")
    typer.echo(f"database: {where}")
    typer.echo(f"schema version: {version} ({note})")
    for name in ("merchants", "orders", "payments", "refunds"):
        typer.echo(f"{name}: {stats[name]}")


def _load_catalog(path: Path) -> list:
    """Read and check a --catalog file by seeding a scratch merchant with it."""
    from simulator.routes.catalog import seed_objects

    from .engine import Engine
    from .errors import SquareError

    try:
        objects = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read catalog file {path}: {exc.strerror or exc}")
    except ValueError as exc:
        _fail(f"catalog file {path} is not valid JSON: {exc}")
    try:
        seed_objects(Engine(), objects, emit=False)
    except SquareError as err:
        first = err.errors[0]
        where = f" ({first.field})" if first.field else ""
        _fail(f"catalog file {path} was rejected: {first.code}{where}: {first.detail}")
    return objects


def _bind_problem(host: str, port: int) -> OSError | None:
    """Why a server could not listen on host:port (port taken, unknown host), or None."""
    import socket

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
    except OSError as exc:
        return exc
    return None


class ConformReport(str, Enum):
    table = "table"
    json = "json"


@app.command()
def conform(
    base_url: Annotated[str, typer.Option(
        "--base-url", help="The server under test, without /v2 (e.g. http://127.0.0.1:8000 or "
                           "https://connect.squareupsandbox.com).", show_default=False)],
    token: Annotated[str, typer.Option(
        "--token", envvar="SQUARE_TOKEN", help="Access token (any token on the simulator).",
        show_default=False)],
    examples: Annotated[int, typer.Option(
        min=1, help="Random call sequences to try.")] = 100,
    seed: Annotated[int | None, typer.Option(
        help="Seed for a reproducible run (a random one is chosen and printed otherwise).",
        show_default=False)] = None,
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", metavar="NAME=VALUE",
        help="The rule variant the oracle assumes, NAME=VALUE (repeatable).")] = None,
    report: Annotated[ConformReport, typer.Option(
        "--report", case_sensitive=False,
        help="table: per-rule table and scripts; json: a machine-readable report.")
    ] = ConformReport.table,
    detect_variants: Annotated[bool, typer.Option(
        "--detect-variants", help="Only probe which value of each disputed rule the server "
                                  "behaves like.")] = False,
    steps: Annotated[int, typer.Option(
        min=1, max=100, help="Longest call sequence.")] = 12,
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="After the first divergence look for divergences of other rules "
                             "too (each is shrunk separately).")] = False,
    require_all_rules: Annotated[bool, typer.Option(
        "--require-all-rules", help="Fail (exit 1) when a rule the runner can reach on this "
                                    "server got zero checks.")] = False,
) -> None:
    """Check a Square-compatible server against orderfsm's rules (exit 1 on any divergence).

    Random sequences of orders, updates, payments, PayOrder, refunds and (on servers with the
    simulator's control API) clock advances go through the official SDK to the server and to
    the orderfsm engine; every answer and resulting state is compared, per rule. A divergence
    is shrunk to a minimal sequence and printed as a runnable SDK script."""
    from .conformance import ConformanceError
    from .conformance import detect_variants as probe_variants
    from .conformance import run

    as_json = report is ConformReport.json
    try:
        if detect_variants:
            if variant:
                _fail("--variant sets the oracle of a conformance run; it cannot be combined "
                      "with --detect-variants")
            found = probe_variants(base_url, token)
            if as_json:
                typer.echo(json.dumps(found.to_json(), indent=2))
            else:
                found.render(_out())
            raise typer.Exit(code=0 if found.ok else 1)
        result = run(base_url, token, examples=examples, seed=seed, variants=variant or [],
                     steps=steps, keep_going=keep_going)
    except ConformanceError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        result.render(_out())
    if require_all_rules and result.unchecked:
        if not as_json:
            _out().print(f"--require-all-rules: {len(result.unchecked)} rule(s) with zero "
                         "checks", style="bold red")
        raise typer.Exit(code=1)
    raise typer.Exit(code=0 if result.ok else 1)


class CoverageFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    html = "html"


@app.command()
def coverage(
    path: Annotated[str, typer.Argument(
        metavar="PATH", help="A file written by `pytest --square-coverage-json PATH`.",
        show_default=False)],
    fmt: Annotated[CoverageFormat, typer.Option(
        "--format", "-f", case_sensitive=False, help="table (plain text), markdown or html.",
    )] = CoverageFormat.table,
) -> None:
    """Render a saved rule-coverage file: rules triggered and satisfied, transitions taken."""
    from .coverage import load, render

    try:
        cov = load(path)
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError as exc:
        _fail(f"{path} is not a rule-coverage file: {exc}",
              ["write one with `pytest --square-coverage-json PATH`"])
    typer.echo(render(cov, fmt.value), nl=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

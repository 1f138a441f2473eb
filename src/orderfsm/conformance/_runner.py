"""Connect to a server, run the state machine under hypothesis, and build the report."""

from __future__ import annotations

import random
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable, Mapping

import httpx
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from ..clock import ManualClock
from ..engine import Engine
from ..rules import Variants
from ._machine import ConformanceMachine
from ._report import DivergenceReport, Report, RuleStats
from ._session import Divergence, Session
from ._sides import RO, Control, OracleSide, ServerSide, ServerUnreachable
from ._snippet import describe_steps, render_snippet

__all__ = ["ConformanceError", "Target", "connect", "run", "DEFAULT_STEPS"]

DEFAULT_STEPS = 12


class ConformanceError(Exception):
    """The run could not start: bad arguments, an unreachable server, a rejected token."""


@dataclass
class Target:
    """A server ready for conformance calls."""

    base_url: str
    token: str
    client: Any  # square.Square
    control: Control
    location_id: str
    currency: str
    fresh_token: bool  # a random token was used, so the run had a merchant of its own
    own_http: httpx.Client | None = None

    @property
    def has_reset(self) -> bool:
        return self.control.has_reset

    @property
    def has_clock(self) -> bool:
        return self.control.has_clock

    def describe(self) -> dict[str, Any]:
        return {"reset": self.has_reset, "clock": self.has_clock, "fresh_token": self.fresh_token,
                "location_id": self.location_id, "currency": self.currency,
                "refund_settle_seconds": self.control.refund_settle_seconds}

    def close(self) -> None:
        if self.own_http is not None:
            self.own_http.close()


def _sdk(token: str, base_url: str, httpx_client: httpx.Client | None) -> Any:
    from square import Square

    return Square(token=token, base_url=base_url, httpx_client=httpx_client)


def _main_location(client: Any, base_url: str) -> Any:
    from square.core.api_error import ApiError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return client.locations.get("main", request_options=RO).location
            except ApiError as err:
                if err.status_code == 401:
                    raise
                return client.locations.list(request_options=RO).locations[0]
    except ApiError as err:
        if err.status_code == 401:
            raise ConformanceError(f"{base_url} rejected the access token (401).") from None
        raise ConformanceError(
            f"{base_url} did not list a location: {err.status_code} {err.body}") from None
    except httpx.TransportError as exc:
        raise ConformanceError(f"cannot reach {base_url}: {exc}") from None
    except (IndexError, TypeError):
        raise ConformanceError(f"{base_url} has no location to sell at.") from None


def connect(base_url: str, token: str, *, httpx_client: httpx.Client | None = None) -> Target:
    """Check the server answers, reset its merchant when it can (otherwise use a fresh random
    token if the server takes any token), and find out whether it has a controllable clock."""
    if not base_url.startswith(("http://", "https://")):
        raise ConformanceError(f"--base-url must be an http(s) URL, got {base_url!r}")
    if not token:
        raise ConformanceError("an access token is required")
    own = None if httpx_client is not None else httpx.Client(timeout=30.0)
    http = httpx_client if httpx_client is not None else own
    try:
        control = Control(http, base_url, token)
        control.has_reset = control.reset()
        fresh = False
        if not control.has_reset:
            candidate = "conform-" + uuid.uuid4().hex
            try:
                _main_location(_sdk(candidate, base_url, http), base_url)
            except ConformanceError:
                pass
            else:
                token, fresh = candidate, True
                control = Control(http, base_url, token)
        control.probe_clock()
        client = _sdk(token, base_url, http)
        loc = _main_location(client, base_url)
    except ServerUnreachable as exc:
        if own is not None:
            own.close()
        raise ConformanceError(str(exc)) from None
    except BaseException:
        if own is not None:
            own.close()
        raise
    return Target(base_url, token, client, control, loc.id, loc.currency or "USD", fresh, own)


class _Context:
    """Shared by every sequence of one run: the target, the oracle's settings, the counts."""

    def __init__(self, target: Target, variants: Variants, *, sweep: bool,
                 refund_settle_seconds: float) -> None:
        self.target = target
        self.variants = variants
        self.sweep = sweep
        self.settle = refund_settle_seconds
        self.currency = target.currency
        self.has_clock = target.has_clock
        self.passed: Counter[str] = Counter()
        self.runs = 0
        self.steps = 0

    def make_oracle(self, variants: Mapping[str, str]) -> OracleSide:
        engine = Engine(clock=ManualClock(), variants=Variants(dict(variants)),
                        currency=self.currency,
                        refund_settle_delay=timedelta(seconds=self.settle))
        return OracleSide(engine)

    def new_session(self) -> Session:
        self.runs += 1
        if self.target.has_reset and self.runs > 1:
            self.target.control.reset()
        server = ServerSide(self.target.client, self.target.control, self.target.location_id)
        return Session(self.make_oracle(self.variants), server, make_oracle=self.make_oracle,
                       settles_by_itself=not self.has_clock)

    def finished(self, session: Session) -> None:
        if self.sweep:
            session.sweep()
        if not session.diverged:
            self.passed.update(session.passed)
            self.steps += len(session.steps)


def _flatten(exc: BaseException, flaky: bool = False) -> list[tuple[BaseException, bool]]:
    if isinstance(exc, BaseExceptionGroup):
        is_flaky = flaky or isinstance(exc, Flaky)
        out = []
        for inner in exc.exceptions:
            out += _flatten(inner, is_flaky)
        return out
    return [(exc, flaky or isinstance(exc, Flaky))]


def run(
    base_url: str,
    token: str,
    *,
    examples: int = 100,
    seed: int | None = None,
    variants: Mapping[str, str] | Iterable[str] | None = None,
    httpx_client: httpx.Client | None = None,
    steps: int = DEFAULT_STEPS,
    sweep: bool = True,
    refund_settle_seconds: float | None = None,
    keep_going: bool = False,
) -> Report:
    """Run random call sequences against the server at ``base_url`` and against the orderfsm
    engine configured with ``variants``, and report where they differ, per rule.

    ``httpx_client`` lets the SDK talk to an in-process app (:func:`asgi_client` or a
    starlette ``TestClient``). ``seed`` makes the run reproducible. ``steps`` bounds the length
    of a sequence. The run stops at the first divergence and shrinks it, unless ``keep_going``
    (then every distinct diverging rule found in ``examples`` sequences is shrunk and
    reported). ``sweep`` compares every object once more at the end of each sequence.
    Raises :class:`ConformanceError` when the run cannot start."""
    if examples < 1:
        raise ConformanceError("--examples must be at least 1")
    if steps < 1:
        raise ConformanceError("--steps must be at least 1")
    try:
        oracle_variants = Variants(variants)
    except ValueError as exc:
        raise ConformanceError(str(exc)) from None
    if seed is None:
        seed = random.randrange(2**32)
    target = connect(base_url, token, httpx_client=httpx_client)
    try:
        settle = refund_settle_seconds
        if settle is None:
            settle = target.control.refund_settle_seconds or 10.0
        ctx = _Context(target, oracle_variants, sweep=sweep, refund_settle_seconds=settle)
        settings = Settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
            suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
            report_multiple_bugs=keep_going, phases=[Phase.explicit, Phase.generate, Phase.shrink],
            print_blob=False)

        def factory() -> ConformanceMachine:
            return ConformanceMachine(ctx)

        started = time.perf_counter()
        found: list[tuple[BaseException, bool]] = []
        try:
            run_state_machine_as_test(hypothesis_seed(seed)(factory), settings=settings)
        except BaseException as exc:  # noqa: BLE001 - sorted below; anything else re-raised
            found = _flatten(exc)
            others = [e for e, _ in found if not isinstance(e, Divergence)]
            if others:
                if isinstance(others[0], ServerUnreachable):
                    raise ConformanceError(str(others[0])) from None
                raise others[0]
        duration = time.perf_counter() - started
    finally:
        target.close()

    stats: dict[str, RuleStats] = {}
    for rule_id, n in ctx.passed.items():
        stats[rule_id] = RuleStats(checked=n, passed=n)
    divergences = []
    seen = set()
    for exc, flaky in found:
        assert isinstance(exc, Divergence)
        key = (exc.rule_id, str(exc))
        if key in seen:
            continue
        seen.add(key)
        s = stats.setdefault(exc.rule_id, RuleStats())
        s.checked += 1
        s.diverged += 1
        divergences.append(DivergenceReport(
            exc.rule_id, exc.how, "; ".join(m.describe() for m in exc.mismatches),
            [m.to_json() for m in exc.mismatches], describe_steps(exc.steps),
            render_snippet(exc, base_url=base_url, reset=target.has_reset), flaky))
    return Report(
        base_url=base_url, seed=seed, examples=examples, examples_run=ctx.runs,
        steps_run=ctx.steps, stateful_step_count=steps, duration_seconds=duration,
        variants=dict(oracle_variants), server=target.describe(), rules=stats,
        divergences=divergences)

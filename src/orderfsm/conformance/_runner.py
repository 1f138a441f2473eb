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
from hypothesis.errors import Flaky, FlakyStrategyDefinition
from hypothesis.stateful import run_state_machine_as_test

from ..clock import ManualClock
from ..engine import Engine
from ..rules import Variants
from ..rules import CATALOG
from ._machine import CLOCK_RULES, ConformanceMachine, aim_targets
from ._report import DivergenceReport, Report, RuleStats
from ._calls import Ref, Token
from ._session import SWEEP, Divergence, Session
from ._sides import RO, Control, OracleSide, ServerSide, ServerUnreachable
from ._snippet import describe_steps, render_snippet

__all__ = ["ConformanceError", "Target", "connect", "run", "DEFAULT_STEPS", "DEFAULT_SHRINK_SECONDS",
           "reach"]

DEFAULT_STEPS = 12
DEFAULT_SHRINK_SECONDS = 4.0  # time spent shrinking each divergence, at most
SHRINK_REPLAYS = 150  # and replays per divergence, at most

# Catalog rules no step of the runner exercises, and why.
OUT_OF_REACH = {
    "webhook.": "webhook events and their deliveries (envelope, signature, retries, order) "
                "need a receiver; the runner checks the subscription API only",
    "catalog.version_updated_event": "an event, seen only by a webhook receiver",
    "order.auto_apply_discounts": "needs pricing rules over product sets, which the runner "
                                  "does not build",
    "order.catalog_variable_discount": "needs a catalog discount, which the runner does not "
                                       "build",
}


def reach(has_clock: bool) -> tuple[list[str], dict[str, str]]:
    """The catalog rules a run checks on a server (with or without a controllable clock) and
    the others, each with the reason it is out of reach."""
    targets = aim_targets(has_clock)
    out: dict[str, str] = {}
    for rule_id in CATALOG:
        if rule_id in targets:
            continue
        why = next((w for prefix, w in OUT_OF_REACH.items() if rule_id.startswith(prefix)), None)
        if why is None:
            why = ("needs the server's control API (clock, processor decisions)"
                   if rule_id in CLOCK_RULES else "no step of the runner exercises it yet")
        out[rule_id] = why
    return targets, out


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
                 refund_settle_seconds: float, adopt: bool = False) -> None:
        self.target = target
        self.adopt = adopt
        self.variants = variants
        self.sweep = sweep
        self.settle = refund_settle_seconds
        self.currency = target.currency
        self.has_clock = target.has_clock
        self.passed: Counter[str] = Counter()
        self.aimed: Counter[str] = Counter()
        self.frozen: dict[str, int] | None = None
        self.runs = 0
        self.steps = 0
        self.replays = 0
        self.started = time.perf_counter()
        # The first divergence of each rule: (divergence, sequences run, seconds) when found.
        self.found: dict[str, tuple[Divergence, int, float]] = {}

    def make_oracle(self, variants: Mapping[str, str]) -> OracleSide:
        engine = Engine(clock=ManualClock(), variants=Variants(dict(variants)),
                        currency=self.currency,
                        refund_settle_delay=timedelta(seconds=self.settle))
        return OracleSide(engine)

    def new_session(self, replay: bool = False,
                    variants: Mapping[str, str] | None = None) -> Session:
        if replay:
            self.replays += 1
        else:
            self.runs += 1
        if self.target.has_reset and (self.runs > 1 or replay):
            self.target.control.reset()
        server = ServerSide(self.target.client, self.target.control, self.target.location_id)
        chosen = self.variants if variants is None else variants
        return Session(self.make_oracle(chosen), server, make_oracle=self.make_oracle,
                       settles_by_itself=not self.has_clock)

    def aim_counts(self) -> dict[str, int]:
        return dict(self.frozen if self.frozen is not None else self.passed)

    def note_aim(self, rule_id: str) -> None:
        self.aimed[rule_id] += 1

    def finished(self, session: Session, start_counts: dict[str, int]) -> None:
        try:
            if self.sweep:
                session.sweep()
        finally:
            div = session.divergence
            if div is None:
                self.passed.update(session.passed)
                self.steps += len(session.steps)
            else:
                if self.frozen is None:
                    self.frozen = dict(start_counts)
                if div.rule_id not in self.found:
                    self.found[div.rule_id] = (div, self.runs,
                                               time.perf_counter() - self.started)
                if self.adopt and session.explained is not None:
                    # --keep-going: the server follows another variant value; take it on, so
                    # later sequences get past this rule and can find other differences.
                    name, value = session.explained
                    self.variants = Variants({**self.variants, name: value})


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
    shrink_seconds: float = DEFAULT_SHRINK_SECONDS,
) -> Report:
    """Run random call sequences against the server at ``base_url`` and against the orderfsm
    engine configured with ``variants``, and report where they differ, per rule.

    ``httpx_client`` lets the SDK talk to an in-process app (:func:`asgi_client` or a
    starlette ``TestClient``). ``seed`` makes the run reproducible. ``steps`` bounds the length
    of a sequence. The run stops at the first divergence and shrinks it, unless ``keep_going``
    (then every distinct diverging rule found in ``examples`` sequences is shrunk and
    reported). ``sweep`` compares every object once more at the end of each sequence.
    ``shrink_seconds`` bounds the time spent shrinking each divergence (by replaying shorter
    call lists against a reset server). Raises :class:`ConformanceError` when the run cannot start."""
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
    # The SDK looks up the same type hints for every nested model it parses; memoizing them
    # (process-wide, results unchanged) makes each compared call about a third cheaper.
    from ..simulator import cache_sdk_type_hints

    cache_sdk_type_hints()
    target = connect(base_url, token, httpx_client=httpx_client)
    try:
        settle = refund_settle_seconds
        if settle is None:
            settle = target.control.refund_settle_seconds or 10.0
        ctx = _Context(target, oracle_variants, sweep=sweep, refund_settle_seconds=settle,
                       adopt=keep_going)
        def factory() -> ConformanceMachine:
            return ConformanceMachine(ctx)

        started = ctx.started = time.perf_counter()
        attempt = 0
        while True:
            runs_before = ctx.runs
            settings = Settings(
                max_examples=examples - ctx.runs, stateful_step_count=steps, deadline=None,
                database=None, suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet, report_multiple_bugs=keep_going,
                phases=[Phase.explicit, Phase.generate], print_blob=False)
            try:
                run_state_machine_as_test(hypothesis_seed(seed + attempt)(factory),
                                          settings=settings)
                found = []
            except BaseException as exc:  # noqa: BLE001 - sorted below; others re-raised
                found = _flatten(exc)
            # Divergences are taken from the context (the first of each rule, as found); a
            # Flaky only says hypothesis' final replay of one did not diverge the same way.
            # Once a sequence diverged, a later one with the same choices may diverge at
            # another step (the coverage aims read the run's counts, not only the choices),
            # which hypothesis reports as inconsistent data generation: harmless then, but it
            # ends hypothesis' run, so --keep-going carries on with the next seed.
            others = [e for e, _ in found
                      if not isinstance(e, (Divergence, Flaky))
                      or (isinstance(e, FlakyStrategyDefinition) and not ctx.found)]
            if others:
                if isinstance(others[0], ServerUnreachable):
                    raise ConformanceError(str(others[0])) from None
                raise others[0]
            # hypothesis stops looking soon after a failure (and at once after inconsistent
            # data); --keep-going goes on with the next seed until the examples are spent.
            if not keep_going or ctx.runs >= examples or ctx.runs == runs_before:
                break
            attempt += 1
        search = time.perf_counter() - started
        firsts = sorted(ctx.found.values(), key=lambda f: f[1])
        if not keep_going:
            firsts = firsts[:1]
        shrunk = []
        for div, runs, seconds in firsts:
            t0 = time.perf_counter()
            small, flaky = _shrink(ctx, div, shrink_seconds)
            shrunk.append((small, flaky, runs, seconds, time.perf_counter() - t0))
        duration = time.perf_counter() - started
    finally:
        target.close()

    stats: dict[str, RuleStats] = {}
    for rule_id, n in ctx.passed.items():
        stats[rule_id] = RuleStats(checked=n, passed=n)
    divergences = []
    for exc, flaky, runs, seconds, shrink in shrunk:
        s = stats.setdefault(exc.rule_id, RuleStats())
        s.checked += 1
        s.diverged += 1
        divergences.append(DivergenceReport(
            exc.rule_id, exc.how, "; ".join(m.describe() for m in exc.mismatches),
            [m.to_json() for m in exc.mismatches], describe_steps(exc.steps),
            render_snippet(exc, base_url=base_url, reset=target.has_reset), flaky,
            kind=exc.kind, found_after_examples=runs, found_after_seconds=seconds,
            shrink_seconds=shrink))
    targets, out_of_reach = reach(target.has_clock)
    return Report(
        base_url=base_url, seed=seed, examples=examples, examples_run=ctx.runs,
        steps_run=ctx.steps, stateful_step_count=steps, duration_seconds=duration,
        variants=dict(oracle_variants), server=target.describe(), rules=stats,
        divergences=divergences, targeted=targets, out_of_reach=out_of_reach,
        search_seconds=search, shrink_replays=ctx.replays)


def _labels(value: Any, out: set[str]) -> None:
    if isinstance(value, (Ref, Token)):
        out.add(value.label)
    elif isinstance(value, dict):
        for v in value.values():
            _labels(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _labels(v, out)


def _slice(steps: list[Any]) -> list[Any]:
    """The steps that made or touched the objects the last step involves, transitively, and
    the clock's steps."""
    last = steps[-1]
    wanted: set[str] = set(last.produced) | set(last.server_views) | set(last.watch)
    _labels(last.call.args, wanted)
    _labels(dict(last.call.kwargs), wanted)
    if last.call.same_as:
        wanted.add(last.call.same_as)
    for m in last.mismatches:
        if m.label:
            wanted.add(m.label)
    kept = [last]
    for st in reversed(steps[:-1]):
        mine: set[str] = set(st.produced)
        _labels(st.call.args, mine)
        _labels(dict(st.call.kwargs), mine)
        if st.call.resource == "sim" or mine & wanted:
            kept.append(st)
            wanted |= mine
    return kept[::-1]


def _shrink(ctx: _Context, div: Divergence, budget: float) -> tuple[Divergence, bool]:
    """A shorter call list that diverges on the same rule, found by replaying candidates
    (chunks of steps left out, largest first) against a reset server for at most ``budget``
    seconds. Returns the smallest divergence found and whether the original failed to
    reproduce (flaky)."""
    steps = [st for st in div.steps if st.call.method != SWEEP]
    sweep = div.steps[-1].call.method == SWEEP
    variants = dict(div.variants)
    deadline = time.perf_counter() + budget
    replays = 0

    def attempt(candidate: list[Any]) -> Divergence | None:
        nonlocal replays
        replays += 1
        session = ctx.new_session(replay=True, variants=variants)
        try:
            for st in candidate:
                session.step(st.call, rules=st.rules, watch=st.watch)
            if sweep:
                session.sweep()
        except Divergence as found:
            return found if found.rule_id == div.rule_id else None
        except (KeyError, TypeError):  # a step refers to an object no kept step made
            return None
        return None

    # First the slice of the sequence that touches the objects of the diverging step (and the
    # clock), which is most often already minimal; then chunks of what is left, largest first.
    first = attempt(_slice(steps))
    if first is None:
        first = attempt(steps)
        if first is None:
            return div, True
    best_div = first
    best = [st for st in first.steps if st.call.method != SWEEP]
    chunks = 2
    while len(best) > 1 and time.perf_counter() < deadline and replays < SHRINK_REPLAYS:
        size = max(1, (len(best) - 1) // chunks)
        improved = False
        # the last step is where the divergence shows: keep it
        for start in range(len(best) - 1 - size, -1, -size):
            if time.perf_counter() >= deadline or replays >= SHRINK_REPLAYS:
                break
            found = attempt(best[:start] + best[start + size:])
            if found is not None:
                best_div = found
                best = [st for st in found.steps if st.call.method != SWEEP]
                improved = True
                break
        if improved:
            chunks = max(chunks - 1, 2)
        elif size == 1:
            break
        else:
            chunks = min(chunks * 2, max(len(best) - 1, 1))
    return best_div, False

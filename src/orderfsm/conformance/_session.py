"""Run calls on both sides, compare, and attribute each divergence to a catalog rule."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from ..rules import CATALOG, VARIANTS
from ._calls import Call, Ref, dig
from ._sides import KIND_OF, OracleSide, Outcome, ServerSide

__all__ = ["Mismatch", "Step", "Divergence", "Session", "rule_for_error", "divergence_type",
           "SWEEP", "disagreement", "KINDS", "kind_of"]

SWEEP = "check_state"  # the pseudo call that compares every object at the end of a sequence


@dataclass(slots=True)
class Mismatch:
    """One difference between the oracle (expected) and the server (actual)."""

    # "outcome" (accepted vs rejected), "error" (status/category/code/field), "response" (the
    # main object is missing or extra), "field" (an object's compared field)
    what: str
    expected: Any
    actual: Any
    label: str | None = None
    kind: str | None = None
    field: str | None = None

    def describe(self) -> str:
        if self.what == "field" and self.field == "id":
            return (f"a replay with the same idempotency key: orderfsm answers with "
                    f"{self.expected}, the server with {self.actual}")
        if self.what == "outcome":
            return f"orderfsm {_verdict(self.expected)}; the server {_verdict(self.actual)}"
        if self.what == "error":
            return (f"error differs: orderfsm {_error_text(self.expected)}, "
                    f"server {_error_text(self.actual)}")
        if self.what == "response":
            return (f"the response {'lacks' if self.expected else 'has'} the {self.kind} object "
                    f"orderfsm {'returns' if self.expected else 'does not return'}")
        return (f"{self.label}.{self.field}: orderfsm expects {self.expected!r}, "
                f"the server has {self.actual!r}")

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "label": self.label, "kind": self.kind, "field": self.field,
                "expected": _jsonable(self.expected), "actual": _jsonable(self.actual)}


def _verdict(summary: Mapping[str, Any]) -> str:
    if summary.get("accepted"):
        return "accepts it"
    return f"rejects it with {_error_text(summary)}"


def _error_text(e: Any) -> str:
    if isinstance(e, Mapping):
        e = (e.get("status"), e.get("category"), e.get("code"), e.get("field"))
    status, category, code, fld = e
    where = f" ({fld})" if fld else ""
    return f"{status} {category}/{code}{where}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# What kind of difference a divergence is: the server decided otherwise (accepted what the
# oracle rejects, or the reverse), rejected with another error (status, category, code or
# field), or left another state behind (objects, their fields, the response's object).
KINDS = {"outcome": "decision", "error": "error", "response": "state", "field": "state"}


def kind_of(mismatches: list[Mismatch]) -> str:
    """decision, error or state (a decision difference outranks the others)."""
    found = {KINDS[m.what] for m in mismatches}
    for kind in ("decision", "error", "state"):
        if kind in found:
            return kind
    return "state"


@dataclass(slots=True)
class Step:
    call: Call
    rules: tuple[str, ...] = ()  # rules the step exercises when both sides accept
    oracle: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    produced: tuple[str, ...] = ()
    server_object: bool = False  # whether the server's answer held the main object
    server_views: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    watch: tuple[str, ...] = ()  # objects re-read after the step even if the oracle's did not change

    @property
    def label(self) -> str | None:
        """The step's main object: what it created, or the object it acted on."""
        if self.produced:
            return self.produced[0]
        if self.call.args and isinstance(self.call.args[0], Ref):
            return self.call.args[0].label
        return None


class Divergence(AssertionError):
    """The server and the oracle disagree. Carries the sequence that led there."""

    rule_id: str = "unattributed"
    variants: dict[str, str] = {}  # the oracle's variants when it was found

    def __init__(self, rule_id: str, steps: list[Step], how: str) -> None:
        self.rule_id = rule_id
        self.steps = list(steps)
        self.how = how  # how the rule was found: oracle, variant, server-error, step
        last = self.steps[-1]
        text = "; ".join(m.describe() for m in last.mismatches)
        super().__init__(f"[{rule_id}] step {len(self.steps)} {last.call.describe()}: {text}")

    @property
    def mismatches(self) -> list[Mismatch]:
        return self.steps[-1].mismatches

    @property
    def kind(self) -> str:
        return kind_of(self.mismatches)


_TYPES: dict[str, type[Divergence]] = {}


def divergence_type(rule_id: str) -> type[Divergence]:
    """One exception class per rule, so hypothesis shrinks each diverging rule separately."""
    cls = _TYPES.get(rule_id)
    if cls is None:
        cls = _TYPES[rule_id] = type(f"Divergence[{rule_id}]", (Divergence,), {})
    return cls


# ----------------------------------------------------------------- server error -> rule

def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{\w+\}", template)
    return re.compile("^" + ".+?".join(re.escape(p) for p in parts) + "$", re.S)


_ERROR_INDEX = [(rule.id, rule.error.code, rule.error.field, _pattern(rule.error.detail))
                for rule in CATALOG.values() if rule.error is not None]


def rule_for_error(code: str | None, field: str | None, detail: str | None) -> str | None:
    """The catalog rule a Square error most likely comes from: same code and detail wording,
    else the only rule with that code and field, else the only rule with that code."""
    if code is None:
        return None
    same_code = [r for r in _ERROR_INDEX if r[1] == code]
    if detail:
        by_detail = [r for r in same_code if r[3].match(detail)]
        if len(by_detail) == 1:
            return by_detail[0][0]
        if by_detail:
            same_code = by_detail
    by_field = [r for r in same_code if r[2] == field]
    if len(by_field) == 1:
        return by_field[0][0]
    if len(same_code) == 1:
        return same_code[0][0]
    return None


# ------------------------------------------------------------------------------ session

class Session:
    """One sequence: both sides, the labels they share, the step log and the pass counts."""

    def __init__(self, oracle: OracleSide, server: ServerSide, *,
                 make_oracle: Callable[[Mapping[str, str]], OracleSide],
                 settles_by_itself: bool = False) -> None:
        self.oracle = oracle
        self.server = server
        self.make_oracle = make_oracle
        # Without a controllable clock a real server settles refunds on its own time.
        self.settles_by_itself = settles_by_itself
        self.steps: list[Step] = []
        self.kinds: dict[str, str] = {}
        self.oracle_views: dict[str, dict[str, Any]] = {}
        self.passed: Counter[str] = Counter()
        self.diverged = False
        self.divergence: Divergence | None = None
        self.explained: tuple[str, str] | None = None  # the variant value the server follows
        self._counters: Counter[str] = Counter()

    def next_label(self, prefix: str) -> str:
        """The label the next object with this prefix gets once both sides create it."""
        return f"{prefix}{self._counters[prefix] + 1}"

    # ------------------------------------------------------------------ comparing
    def same(self, kind: str, name: str, expected: Any, actual: Any) -> bool:
        if expected == actual:
            return True
        if self.settles_by_itself and kind == "refund" and name == "status":
            return expected == "PENDING" and actual == "COMPLETED"
        return False

    def _compare_views(self, label: str, expected: dict[str, Any] | None,
                       actual: dict[str, Any] | None, out: list[Mismatch]) -> None:
        _compare_views(self.same, label, expected, actual, out)

    # ---------------------------------------------------------------------- steps
    def step(self, call: Call, *, rules: Iterable[str] = (), watch: Iterable[str] = (),
             either: Iterable[str] = ()) -> Step:
        """Run ``call`` on both sides and compare; raise a :class:`Divergence` on a difference."""
        o = self.oracle.execute(call)
        s = self.server.execute(call)
        st = Step(call, tuple(rules), o.summary(), s.summary(), server_object=s.obj is not None,
                  watch=tuple(watch))
        self.steps.append(st)
        st.mismatches = _compare_outcomes(o, st.server)
        if o.ok and s.ok and call.result_name and (o.obj is None) != (s.obj is None):
            st.mismatches.append(Mismatch(
                "response", o.obj is not None, s.obj is not None, kind=call.result_name))
        if st.mismatches:
            self._diverge(st)

        produced = []
        if o.obj is not None and s.obj is not None:
            for p in call.produces:
                oid, sid = dig(o.obj, p.attr), dig(s.obj, p.attr)
                if oid and sid:
                    self.oracle.register(p.label, oid)
                    self.server.register(p.label, sid)
                    self.kinds[p.label] = KIND_OF[p.label[0]]
                    self._counters[p.label[0]] += 1
                    if p.label.startswith("p"):
                        self.oracle.first_tokens[p.label] = o.obj.version_token
                        self.server.first_tokens[p.label] = s.obj.version_token
                    produced.append(p.label)
        st.produced = tuple(produced)
        if call.same_as and o.obj is not None and s.obj is not None:
            expected = self.oracle.labels.get(o.obj.id, "a new object")
            actual = self.server.labels.get(s.obj.id, "a new object")
            if expected != actual:
                st.mismatches.append(Mismatch("field", expected, actual, call.same_as,
                                              self.kinds.get(call.same_as), "id"))

        after = {label: _side_view(self.oracle, label) for label in self.kinds}
        main = st.label
        if (main is not None and main in self.kinds and call.result_name
                and o.obj is not None and s.obj is not None):
            kind = self.kinds[main]
            st.server_views[main] = self.server.view(kind, s.obj)
            self._compare_views(main, self.oracle.view(kind, o.obj), st.server_views[main],
                                st.mismatches)
        recheck = [label for label in self.kinds
                   if label not in st.server_views
                   and (after[label] != self.oracle_views.get(label) or label in st.watch)]
        for label in recheck:
            st.server_views[label] = _side_view(self.server, label)
            self._compare_views(label, after[label], st.server_views[label], st.mismatches)
        self.oracle_views = after
        if st.mismatches:
            self._diverge(st)
        # ``either``: rules the step checks whether the call is accepted or rejected (which
        # of a request's checks comes first, for instance).
        self.passed.update(either)
        if o.ok:
            self.passed.update(st.rules)
        else:
            rule = o.rule_id or rule_for_error(o.code, o.field, o.detail)
            self.passed[rule or "api.invalid_value"] += 1
        return st

    def sweep(self) -> None:
        """Compare every object the sequence made, as the server holds it now."""
        if self.diverged or not self.kinds:
            return
        st = Step(Call("sim", SWEEP), (), {"accepted": True}, {"accepted": True})
        self.steps.append(st)
        for label in self.kinds:
            st.server_views[label] = _side_view(self.server, label)
            self._compare_views(label, self.oracle_views.get(label), st.server_views[label],
                                st.mismatches)
        if st.mismatches:
            self._diverge(st)

    # ---------------------------------------------------------------- attribution
    def _diverge(self, st: Step) -> None:
        self.diverged = True
        rule, how = self.attribute(st)
        self.divergence = divergence_type(rule)(rule, self.steps, how)
        self.divergence.variants = dict(self.oracle.engine.variants)
        raise self.divergence

    def attribute(self, st: Step) -> tuple[str, str]:
        variant = self.explaining_variant()
        if variant is not None:
            self.explained = variant
            return VARIANTS[variant[0]][0].id, "variant"
        if st.call.same_as:
            return "api.idempotency_key_reused", "replay"
        o = st.oracle
        if not o.get("accepted") and o.get("rule"):
            return o["rule"], "oracle"
        s = st.server
        if not s.get("accepted"):
            rule = rule_for_error(s.get("code"), s.get("field"), s.get("detail"))
            if rule is not None:
                return rule, "server-error"
        field_rule = self._field_rule(st)
        if field_rule is not None:
            return field_rule, "field"
        previous = [p for p in self.steps[:-1] if p.rules] if st.call.method == SWEEP else [st]
        if previous and previous[-1].rules:
            rules = previous[-1].rules
            if kind_of(st.mismatches) == "state" and previous[-1].oracle.get("accepted"):
                # Both sides let the call through, so no guard differs: the rule is one that
                # says what the call does (a rule without an error of its own), when it has one.
                effects = [r for r in rules if CATALOG[r].error is None]
                rules = tuple(effects) or rules
            return rules[0], "step"
        return "unattributed", "none"

    def _field_rule(self, st: Step) -> str | None:
        """The rule that owns the differing state, when the fields say so on their own."""
        fields = {(m.kind, m.field) for m in st.mismatches if m.what == "field"}
        if not fields:
            return None
        if any(f == "id" for _, f in fields):
            return "api.idempotency_key_reused"
        if {f for _, f in fields} == {"version"}:
            return "order.version_increments"
        if ("refund", "status") in fields:
            return "refund.settlement"
        if st.call.method == "advance_clock":
            for m in st.mismatches:
                if m.kind == "payment" and m.field == "status" and m.label:
                    rec = self.oracle.read("payment", m.label)
                    if rec is not None and rec.source_type == "BANK_ACCOUNT":
                        return "payment.bank_settles"
                    return "payment.delayed_action"
        if st.call.resource == "refunds" and fields & {("payment", "refunded_money"),
                                                         ("payment", "refund_ids")}:
            return "refund.return_order"
        return None

    def explaining_variant(self) -> tuple[str, str] | None:
        """The variant whose other value makes the oracle agree with the server on every step
        (None when a replay cannot tell, i.e. the oracle as configured agrees too)."""
        current = dict(self.oracle.engine.variants)
        if self.replay(current):
            return None
        for name, (_, variant) in VARIANTS.items():
            for value in variant.values:
                if value == current.get(name):
                    continue
                if self.replay({**current, name: value}):
                    return name, value
        return None

    def replay(self, variants: Mapping[str, str]) -> bool:
        """Whether an oracle with ``variants`` agrees with everything the server showed."""
        return disagreement(self.steps, self.make_oracle(variants), self.same) is None


def _compare_views(same: Callable[[str, str, Any, Any], bool], label: str,
                   expected: dict[str, Any] | None, actual: dict[str, Any] | None,
                   out: list[Mismatch]) -> None:
    kind = KIND_OF[label[0]]
    if expected is None or actual is None:
        if expected is not actual:
            out.append(Mismatch("field", "present" if expected else "missing",
                                "present" if actual else "missing", label, kind, "exists"))
        return
    for name, value in expected.items():
        if not same(kind, name, value, actual.get(name)):
            out.append(Mismatch("field", value, actual.get(name), label, kind, name))


def _compare_outcomes(o: Outcome | dict[str, Any], s: dict[str, Any]) -> list[Mismatch]:
    osum = o.summary() if isinstance(o, Outcome) else o
    if osum["accepted"] != s["accepted"]:
        return [Mismatch("outcome", osum, s)]
    if not osum["accepted"]:
        ok = (osum["status"], osum["category"], osum["code"], osum["field"])
        sk = (s["status"], s["category"], s["code"], s["field"])
        if ok != sk:
            return [Mismatch("error", ok, sk)]
    return []


def _side_view(side: Any, label: str) -> dict[str, Any] | None:
    kind = KIND_OF[label[0]]
    obj = side.read(kind, label)
    return None if obj is None else side.view(kind, obj)


def disagreement(steps: list[Step], side: OracleSide,
                 same: Callable[[str, str, Any, Any], bool]) -> str | None:
    """Replay ``steps`` on ``side`` (an oracle) and return the first way it disagrees with
    what the server showed, or None when it agrees with every step."""
    for n, st in enumerate(steps, start=1):
        if st.call.method != SWEEP:
            try:
                o = side.execute(st.call)
            except KeyError:  # refers to an object this oracle never created
                return f"step {n}: {st.call.describe()} refers to an object the oracle lacks"
            found = _compare_outcomes(o, st.server)
            if found:
                return f"step {n}: {found[0].describe()}"
            if (st.server.get("accepted") and st.call.result_name
                    and (o.obj is not None) != st.server_object):
                return f"step {n}: the response's {st.call.result_name} object differs"
            for p in st.call.produces:
                if p.label not in st.produced:
                    continue
                ident = dig(o.obj, p.attr) if o.obj is not None else None
                if not ident:
                    return f"step {n}: the oracle creates no {p.label}"
                side.register(p.label, ident)
                if p.label.startswith("p"):
                    side.first_tokens[p.label] = o.obj.version_token
        found = []
        for label, actual in st.server_views.items():
            _compare_views(same, label, _side_view(side, label), actual, found)
        if found:
            return f"step {n}: {found[0].describe()}"
    return None

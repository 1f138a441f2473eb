"""Lifecycle tables and the shared machine that executes them.

A lifecycle is data: states, creation edges, guarded transitions and rejections. Guards and
rejections name catalog rules. One :class:`transitions.Machine` per resource type evaluates the
table; records stay plain dicts and are moved through a small cursor object, never registered
as models (a machine per record costs tens of microseconds and kilobytes each).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from transitions import Machine, MachineError

from ..rules import CATALOG, violation

__all__ = ["Creation", "Transition", "Rejection", "Lifecycle", "RECORDING"]

#: While an engine command runs with an observer, the list the transitions it takes are
#: appended to, as ``(lifecycle, record, trigger, source, target)``; None otherwise.
RECORDING: ContextVar[list | None] = ContextVar("orderfsm_recording", default=None)


@dataclass(frozen=True, slots=True)
class Creation:
    """How a record comes to exist in ``dest`` (drawn from the diagram's start node)."""

    label: str
    dest: str


@dataclass(frozen=True, slots=True)
class Transition:
    trigger: str
    source: tuple[str, ...]
    dest: str | None  # None: an internal transition (the state stays)
    guards: tuple[str, ...] = ()  # rule ids, checked in order
    note: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """``trigger`` from any of ``source`` is refused with ``rule``.

    ``when`` narrows it to records matching a predicate; the first matching rejection wins.
    """

    trigger: tuple[str, ...]
    source: tuple[str, ...]
    rule: str
    when: Callable[[Mapping[str, Any]], bool] | None = None


Guard = Callable[[Any], bool]


class _Cursor:
    """Lets the shared machine read and write the state field of a plain dict."""

    __slots__ = ("record", "field")

    def __init__(self, record: dict, field_name: str) -> None:
        self.record = record
        self.field = field_name

    @property
    def state(self) -> str:
        return self.record[self.field]

    @state.setter
    def state(self, value: str) -> None:
        self.record[self.field] = value


class Lifecycle:
    def __init__(
        self,
        name: str,
        *,
        states: tuple[str, ...],
        terminal: tuple[str, ...],
        creations: tuple[Creation, ...],
        transitions: tuple[Transition, ...],
        rejections: tuple[Rejection, ...],
        guards: Mapping[str, Guard],
        state_field: str = "state",
    ) -> None:
        self.name = name
        self.states = states
        self.terminal = frozenset(terminal)
        self.creations = creations
        self.transitions = transitions
        self.rejections = rejections
        self.guards = dict(guards)
        self.state_field = state_field
        self._check()
        self._rejections: dict[tuple[str, str], list[Rejection]] = {}
        for rej in rejections:
            for trig in rej.trigger:
                for src in rej.source:
                    self._rejections.setdefault((trig, src), []).append(rej)
        self.machine = Machine(
            model=None,
            states=list(states),
            transitions=[
                {
                    "trigger": t.trigger,
                    "source": list(t.source),
                    "dest": t.dest,
                    "conditions": [self._condition(rule) for rule in t.guards],
                }
                for t in transitions
            ],
            initial=None,
            send_event=True,
            auto_transitions=False,
        )
        self.triggers = tuple(dict.fromkeys(t.trigger for t in transitions))
        # Internal transitions without guards change nothing once the rejections passed;
        # they are answered from the table without a trip through the machine.
        self._passive = {
            (t.trigger, src) for t in transitions if t.dest is None and not t.guards
            for src in t.source
        }
        # The rules a successful (trigger, source) passed: the guards of the transition taken,
        # then every rejection the table lists for the trigger.
        by_trigger: dict[str, list[str]] = {}
        for rej in rejections:
            for trig in rej.trigger:
                if rej.rule not in by_trigger.setdefault(trig, []):
                    by_trigger[trig].append(rej.rule)
        self._checked: dict[tuple[str, str], tuple[str, ...]] = {}
        for t in transitions:
            for src in t.source:
                ids = list(self._checked.get((t.trigger, src), ()))
                ids += [g for g in (*t.guards, *by_trigger.get(t.trigger, ())) if g not in ids]
                self._checked[(t.trigger, src)] = tuple(ids)

    def _check(self) -> None:
        for t in self.transitions:
            for g in t.guards:
                if g not in CATALOG:
                    raise ValueError(f"{self.name}: guard names unknown rule {g}")
                if g not in self.guards:
                    raise ValueError(f"{self.name}: no predicate for guard {g}")
            for s in (*t.source, t.dest):
                if s is not None and s not in self.states:
                    raise ValueError(f"{self.name}: unknown state {s}")
        for r in self.rejections:
            if r.rule not in CATALOG:
                raise ValueError(f"{self.name}: rejection names unknown rule {r.rule}")

    def _condition(self, rule_id: str) -> Callable[[Any], bool]:
        predicate = self.guards[rule_id]

        def condition(event_data: Any) -> bool:
            ctx = event_data.kwargs.get("ctx")
            if not predicate(ctx):
                fmt = getattr(ctx, "fmt", None) or {}
                raise violation(rule_id, **fmt)
            return True

        condition.__name__ = f"guard[{rule_id}]"
        return condition

    # ------------------------------------------------------------------ running
    def create(self, record: dict, label: str) -> None:
        for c in self.creations:
            if c.label == label:
                record[self.state_field] = c.dest
                return
        raise ValueError(f"{self.name}: no creation edge {label!r}")

    def fire(self, record: dict, trigger: str, ctx: Any = None) -> str:
        """Apply ``trigger`` to ``record`` in place, or raise the SquareError of the rule
        that forbids it. Returns the new state."""
        state = record[self.state_field]
        for rej in self._rejections.get((trigger, state), ()):
            if rej.when is None or rej.when(record):
                fmt = getattr(ctx, "fmt", None) or {}
                raise violation(rej.rule, **fmt)
        if (trigger, state) in self._passive:
            taken = RECORDING.get()
            if taken is not None:
                taken.append((self, record, trigger, state, state))
            return state
        event = self.machine.events.get(trigger)
        if event is None:
            raise ValueError(f"{self.name}: unknown trigger {trigger!r}")
        try:
            event.trigger(_Cursor(record, self.state_field), ctx=ctx)
        except MachineError as exc:
            raise ValueError(f"{self.name}: {trigger} is not defined from {state}") from exc
        new = record[self.state_field]
        taken = RECORDING.get()
        if taken is not None:
            taken.append((self, record, trigger, state, new))
        return new

    def checked_by(self, trigger: str, source: str) -> tuple[str, ...]:
        """Rule ids a successful ``trigger`` from ``source`` was checked against."""
        return self._checked.get((trigger, source), ())

    def rejection_for(self, trigger: str, record: Mapping[str, Any]) -> str | None:
        for rej in self._rejections.get((trigger, record[self.state_field]), ()):
            if rej.when is None or rej.when(record):
                return rej.rule
        return None

    def can_fire(self, trigger: str, state: str) -> bool:
        return bool(self.machine.get_transitions(trigger=trigger, source=state))

    def rule_ids(self) -> set[str]:
        ids = {g for t in self.transitions for g in t.guards}
        ids.update(r.rule for r in self.rejections)
        return ids

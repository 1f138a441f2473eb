"""Clocks. Nothing in orderfsm reads the wall clock directly; a clock is injected."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["Clock", "SystemClock", "ManualClock", "DEFAULT_EPOCH", "rfc3339", "parse_rfc3339",
           "parse_duration", "format_duration"]

DEFAULT_EPOCH = datetime(2026, 1, 5, 15, 0, 0, tzinfo=timezone.utc)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that moves only when told to (the simulator gives one to every merchant)."""

    __slots__ = ("_now",)

    def __init__(self, start: datetime | None = None) -> None:
        start = start or DEFAULT_EPOCH
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("a ManualClock never moves backwards")
        self._now = when

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._now = self._now + timedelta(seconds=seconds)
        return self._now


def rfc3339(when: datetime) -> str:
    """Square's timestamp form: UTC with milliseconds, e.g. 2020-04-16T23:16:30.789Z."""
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; raises ValueError when it is not one."""
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {text!r}")
    try:
        # Near the calendar's ends an offset can move the instant out of what datetime holds
        # (9999-12-31T23:59:59-23:59 is in year 10000 in UTC).
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {text!r}") from None


def parse_duration(text: str) -> timedelta:
    """Parse the RFC 3339 / ISO 8601 durations Square uses (P7D, PT36H, PT1M30S, P1DT2H)."""
    if not isinstance(text, str) or not text.startswith("P") or text in ("P", "PT"):
        raise ValueError(f"not a duration: {text!r}")
    date_part, _, time_part = text[1:].partition("T")
    if _ and not time_part:
        raise ValueError(f"not a duration: {text!r}")
    total = timedelta()
    try:
        return _sum_duration(text, date_part, time_part, total)
    except (OverflowError, ValueError):
        raise ValueError(f"not a duration in range: {text!r}") from None


def _sum_duration(text: str, date_part: str, time_part: str, total: timedelta) -> timedelta:
    # timedelta holds at most 999,999,999 days; P99999999999D overflows it.
    for part, units in ((date_part, {"W": 604800, "D": 86400}),
                        (time_part, {"H": 3600, "M": 60, "S": 1})):
        number = ""
        for ch in part:
            if ch.isdigit() or ch == ".":
                number += ch
            elif ch in units and number:
                total += timedelta(seconds=float(number) * units[ch])
                number = ""
            else:
                raise ValueError(f"not a duration: {text!r}")
        if number:
            raise ValueError(f"not a duration: {text!r}")
    return total


def format_duration(delta: timedelta) -> str:
    """Render a duration the way Square echoes it (hours, e.g. PT168H)."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or out == "PT":
        out += f"{secs}S"
    return out

"""Indexes the engine keeps so that list and search calls never scan every record.

Timestamps are Square's fixed-width RFC 3339 strings (millisecond precision, ``Z``), which sort
in time order as strings. Records are appended in creation order, which is time order because
an engine's clock never moves backwards.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any, Iterable, Iterator, Mapping

__all__ = ["TimeIndex", "OrderIndex"]


class _Sorted:
    """Ids kept sorted by (timestamp, id), with bisect lookups on the timestamps."""

    __slots__ = ("keys", "ids")

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.ids: list[str] = []

    def add(self, when: str, ident: str) -> None:
        key = (when, ident)
        if not self.keys or key >= self.keys[-1]:
            self.keys.append(key)
            self.ids.append(ident)
            return
        pos = bisect_left(self.keys, key)
        self.keys.insert(pos, key)
        self.ids.insert(pos, ident)

    def remove(self, when: str, ident: str) -> None:
        pos = bisect_left(self.keys, (when, ident))
        if pos < len(self.keys) and self.keys[pos] == (when, ident):
            del self.keys[pos]
            del self.ids[pos]

    def span(self, start: str | None, end: str | None) -> tuple[int, int]:
        lo = 0 if start is None else bisect_left(self.keys, (start, ""))
        hi = len(self.keys) if end is None else bisect_left(self.keys, (end, ""))
        return lo, max(lo, hi)

    def walk(self, start: str | None, end: str | None, descending: bool,
             after: tuple[str, str] | None = None) -> Iterator[tuple[str, str]]:
        """(timestamp, id) keys with ``start <= timestamp < end``, strictly past ``after``
        in the walking direction (keyset pagination: no duplicates when records are added)."""
        lo, hi = self.span(start, end)
        keys = self.keys
        if descending:
            if after is not None:
                hi = min(hi, bisect_left(keys, after))
            for i in range(hi - 1, lo - 1, -1):
                yield keys[i]
        else:
            if after is not None:
                lo = max(lo, bisect_right(keys, after))
            for i in range(lo, hi):
                yield keys[i]

    def __len__(self) -> int:
        return len(self.ids)


class TimeIndex:
    """Payments or refunds by creation time, overall and per location."""

    def __init__(self) -> None:
        self.all = _Sorted()
        self.by_location: dict[str, _Sorted] = {}

    def add(self, ident: str, created_at: str, location_id: str | None) -> None:
        self.all.add(created_at, ident)
        if location_id:
            self.by_location.setdefault(location_id, _Sorted()).add(created_at, ident)

    def walk(self, *, start: str | None = None, end: str | None = None,
             location_id: str | None = None, descending: bool = True,
             after: tuple[str, str] | None = None) -> Iterator[tuple[str, str]]:
        """(created_at, id) keys with ``start <= created_at < end``, newest first unless
        ``descending`` is False, continuing past ``after``."""
        idx = self.all if location_id is None else self.by_location.get(location_id)
        if idx is None:
            return iter(())
        return idx.walk(start, end, descending, after)


_SORT_FIELDS = ("created_at", "updated_at", "closed_at")


class OrderIndex:
    """Orders sorted by each of Square's sort fields, per location and per (location, state).

    SearchOrders filters by location (always) and often by state; with one sorted list per
    (location, state, sort field) a page costs O(log n + page) instead of a scan.
    """

    def __init__(self) -> None:
        # (location_id, state or None, field) -> sorted ids
        self._lists: dict[tuple[str, str | None, str], _Sorted] = {}

    def _list(self, location: str, state: str | None, fld: str) -> _Sorted:
        key = (location, state, fld)
        lst = self._lists.get(key)
        if lst is None:
            lst = self._lists[key] = _Sorted()
        return lst

    def _entries(self, order: Mapping[str, Any]) -> Iterable[tuple[str, str | None, str, str]]:
        loc = order.get("location_id")
        for fld in _SORT_FIELDS:
            when = order.get(fld)
            if when is None:
                continue
            yield loc, None, fld, when
            yield loc, order.get("state"), fld, when

    def add(self, order: Mapping[str, Any]) -> None:
        for loc, state, fld, when in self._entries(order):
            self._list(loc, state, fld).add(when, order["id"])

    def update(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        old = set(self._entries(before))
        new = set(self._entries(after))
        for loc, state, fld, when in old - new:
            self._list(loc, state, fld).remove(when, before["id"])
        for loc, state, fld, when in new - old:
            self._list(loc, state, fld).add(when, after["id"])

    def walk(self, location_id: str, state: str | None, sort_field: str,
             start: str | None, end: str | None, descending: bool,
             after: tuple[str, str] | None = None) -> Iterator[tuple[str, str]]:
        lst = self._lists.get((location_id, state, sort_field))
        if lst is None:
            return iter(())
        return lst.walk(start, end, descending, after)

    def count(self, location_id: str, state: str | None, sort_field: str) -> int:
        lst = self._lists.get((location_id, state, sort_field))
        return len(lst) if lst is not None else 0

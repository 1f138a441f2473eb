"""Indexes the engine keeps so that list and search calls never scan every record.

Timestamps are Square's fixed-width RFC 3339 strings (millisecond precision, ``Z``), which sort
in time order as strings. Keys are (timestamp, id) pairs, so records made at the same instant
are ordered by id.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterable, Iterator, Mapping

from sortedcontainers import SortedList

__all__ = ["TimeIndex", "OrderIndex"]

#: Keys sorted in one call at most when many are added at once. One ``sorted()`` of 100,000
#: keys holds the GIL, and so every other thread (other merchants' requests), for 100 to 200 ms;
#: runs this long sort in a few milliseconds each and are then merged in Python code, which
#: lets other threads in.
SORT_RUN = 4096


def sorted_in_runs(keys: list[Any]) -> list[Any]:
    """``sorted(keys)``, without holding the GIL for long (see ``SORT_RUN``)."""
    if len(keys) <= SORT_RUN:
        return sorted(keys)
    runs = [sorted(keys[i:i + SORT_RUN]) for i in range(0, len(keys), SORT_RUN)]
    return list(heapq.merge(*runs))


class _Sorted:
    """(timestamp, id) keys kept sorted, with bisect lookups on the timestamps.

    A ``SortedList`` (a list of short sorted lists) rather than one flat list: records made at
    the same virtual instant sort by id, so a new key usually lands in the middle, and
    inserting into the middle of a flat list of 100,000 keys moves half of them each time."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: SortedList = SortedList()

    def add(self, when: str, ident: str) -> None:
        self.keys.add((when, ident))

    def update(self, keys: Iterable[tuple[str, str]]) -> None:
        """Many keys at once (for loading). They are put in order first, in short runs (see
        ``SORT_RUN``), so that the sort ``SortedList.update`` does finds them in order."""
        ordered = sorted_in_runs(list(keys))
        sl = self.keys
        if sl or not hasattr(sl, "_lists"):
            sl.update(ordered)
            return
        # An empty SortedList filled the way its update() fills one, minus the sort of all the
        # keys (one C call, tens of milliseconds for 100,000 keys, holding the GIL).
        load = sl._load
        sl._lists.extend(ordered[i:i + load] for i in range(0, len(ordered), load))
        sl._maxes.extend(sub[-1] for sub in sl._lists)
        sl._len = len(ordered)
        del sl._index[:]

    def remove(self, when: str, ident: str) -> None:
        self.keys.discard((when, ident))

    def span(self, start: str | None, end: str | None) -> tuple[int, int]:
        keys = self.keys
        lo = 0 if start is None else keys.bisect_left((start, ""))
        hi = len(keys) if end is None else keys.bisect_left((end, ""))
        return lo, max(lo, hi)

    def walk(self, start: str | None, end: str | None, descending: bool,
             after: tuple[str, str] | None = None) -> Iterator[tuple[str, str]]:
        """(timestamp, id) keys with ``start <= timestamp < end``, strictly past ``after``
        in the walking direction (keyset pagination: no duplicates when records are added)."""
        lo, hi = self.span(start, end)
        keys = self.keys
        if descending:
            if after is not None:
                hi = min(hi, keys.bisect_left(after))
        elif after is not None:
            lo = max(lo, keys.bisect_right(after))
        if lo >= hi:
            return iter(())
        return keys.islice(lo, hi, reverse=descending)

    def __len__(self) -> int:
        return len(self.keys)


class TimeIndex:
    """Payments or refunds by creation time, overall and per location."""

    def __init__(self) -> None:
        self.all = _Sorted()
        self.by_location: dict[str, _Sorted] = {}

    def add(self, ident: str, created_at: str, location_id: str | None) -> None:
        self.all.add(created_at, ident)
        if location_id:
            self.by_location.setdefault(location_id, _Sorted()).add(created_at, ident)

    def add_many(self, items: Iterable[tuple[str, str, str | None]]) -> None:
        """Many (id, created_at, location_id) at once, sorted once at the end (loading)."""
        keys: dict[str | None, list[tuple[str, str]]] = {None: []}
        for ident, created_at, location_id in items:
            keys[None].append((created_at, ident))
            if location_id:
                keys.setdefault(location_id, []).append((created_at, ident))
        for location_id, batch in keys.items():
            lst = self.all if location_id is None else self.by_location.setdefault(location_id,
                                                                                   _Sorted())
            lst.update(batch)

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

    def add_many(self, orders: Iterable[Mapping[str, Any]]) -> None:
        """Many orders at once, each list sorted once at the end (loading)."""
        keys: dict[tuple[str, str | None, str], list[tuple[str, str]]] = {}
        for order in orders:
            for loc, state, fld, when in self._entries(order):
                keys.setdefault((loc, state, fld), []).append((when, order["id"]))
        for (loc, state, fld), batch in keys.items():
            self._list(loc, state, fld).update(batch)

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

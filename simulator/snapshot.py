"""``GET/POST /_sim/state``: a merchant as one versioned JSON document.

Version 2 (today) is the merchant's records, grouped by kind and id, exactly as the store keeps
them, with the records' own version::

    {"format": "orderfsm.simulator.state", "version": 2, "record_version": 1,
     "records": {"meta": {"engine": {...}, "webhooks": {...}}, "location": {...},
                 "order": {...}, "payment": {...},
                 "refund": {...}, "payment_key": {...}, "timer": {...}, "catalog": {...},
                 "idem": {...}, "subscription": {...}, "event": {...}}}

so it carries everything a merchant has: orders, payments, refunds, locations, id counters,
idempotency records, the clock, variants, the catalog with every object's versions, webhook
subscriptions with their faults, events and deliveries with their retry schedule. Version 1 (``engine`` and ``idempotency``, no webhooks)
still loads.
"""

from __future__ import annotations

import codecs
import json
from typing import Any, Iterator

from orderfsm.engine import Engine
from orderfsm.store.records import engine_rows
from orderfsm.store.schema import RECORD_VERSION, migrate_record

from .idempotency import IdempotencyStore
from .store import Merchant

__all__ = ["STATE_FORMAT", "STATE_VERSION", "KINDS", "dump_state", "dump_state_chunks",
           "rows_from_snapshot", "parse_snapshot"]

STATE_FORMAT = "orderfsm.simulator.state"
STATE_VERSION = 2
#: Every kind of record a merchant has, in dump order.
KINDS = ["meta", "location", "order", "payment", "refund", "payment_key", "timer", "catalog",
         "idem", "subscription", "event"]


#: Size of the pieces a dump is built in (see :func:`dump_state_chunks`).
DUMP_PIECE = 1 << 20


def dump_state_chunks(m: Merchant) -> list[bytes]:
    """The merchant's snapshot as JSON, in pieces of about ``DUMP_PIECE`` bytes, straight from
    its store (no record is parsed when the store keeps JSON text). Call
    :meth:`Merchant.flush` first. Pieces rather than one document: building (and encoding) 34
    MiB in one go holds the GIL, and so every other merchant's requests, for tens of
    milliseconds at a time."""
    state = m.state
    assert state is not None
    out: list[bytes] = []
    parts: list[str] = []
    size = 0

    def add(text: str) -> None:
        nonlocal size
        parts.append(text)
        size += len(text)
        if size >= DUMP_PIECE:
            out.append("".join(parts).encode("utf-8"))
            parts.clear()
            size = 0

    add(json.dumps({"format": STATE_FORMAT, "version": STATE_VERSION,
                    "record_version": RECORD_VERSION}, separators=(",", ":"))[:-1])
    add(',"records":{')
    for i, kind in enumerate(KINDS):
        add(("," if i else "") + json.dumps(kind) + ":{")
        first = True
        for ident, text in state.scan_json(m.gen, kind):
            add(("" if first else ",") + json.dumps(ident) + ":" + text)
            first = False
        add("}")
    add("}}")
    out.append("".join(parts).encode("utf-8"))
    return out


def dump_state(m: Merchant) -> bytes:
    """The merchant's snapshot as one JSON document (see :func:`dump_state_chunks`)."""
    return b"".join(dump_state_chunks(m))


def rows_from_snapshot(body: dict[str, Any], *, record_events: bool
                       ) -> Iterator[tuple[str, str, Any]]:
    """The records a snapshot describes, migrated to today's record version."""
    if body.get("version") == 1:
        yield from _rows_from_v1(body, record_events)
        return
    version = body.get("record_version", RECORD_VERSION)
    if not isinstance(version, int):
        raise ValueError("record_version must be an integer")
    records = body["records"]
    if not isinstance(records, dict) or "engine" not in records.get("meta", {}):
        raise KeyError("records.meta.engine")
    for kind, table in records.items():
        if not isinstance(table, (dict, _Records)):
            raise TypeError(f"records.{kind} must be an object")
    for kind, table in records.items():
        if kind not in KINDS:
            raise ValueError(f"unknown record kind {kind!r}")
        for ident, data in table.items():
            yield kind, ident, migrate_record(kind, version, data)


def _rows_from_v1(body: dict[str, Any], record_events: bool) -> Iterator[tuple[str, str, Any]]:
    engine = Engine.restore(body["engine"], record_events=record_events)
    yield from engine_rows(engine)
    for ident, value in IdempotencyStore.rows_from_snapshot(body.get("idempotency") or []):
        yield "idem", ident, value


_decoder = json.JSONDecoder()
_WS = " \t\n\r"


class _Lazy(dict):
    """A snapshot whose ``records`` are parsed one record at a time, as they are read."""


def parse_snapshot(raw: bytes | list[bytes]) -> Any:
    """The snapshot in a request body (bytes, or the pieces it arrived in). A large one
    (``records`` of a version 2 snapshot) is parsed record by record, from the body decoded a
    piece at a time: one call to ``json.loads`` on a 100,000-order document, or even one
    decode or join of the whole 34 MiB text, holds the interpreter (and every other merchant's
    requests) for tens to hundreds of milliseconds. Anything that is not laid out as a version
    2 snapshot is parsed whole (errors as for any body)."""
    from .validation import parse_json

    pieces = [raw] if isinstance(raw, (bytes, bytearray)) else raw
    if sum(map(len, pieces)) < 1 << 20:
        return parse_json(b"".join(pieces))
    try:
        return _parse_v2(_Window(_decoded(pieces)))
    except (ValueError, UnicodeDecodeError, IndexError):
        return parse_json(b"".join(pieces))


#: Bytes decoded at a time.
PIECE = 1 << 16


def _decoded(pieces: list[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    for piece in pieces:
        view = memoryview(piece)
        for i in range(0, len(view), PIECE):
            yield decoder.decode(view[i:i + PIECE])
    yield decoder.decode(b"", final=True)


class _Window:
    """The snapshot text, decoded as far as the parser has needed: ``text`` holds what is left
    of it from the start of the unit being parsed on."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self._pieces = pieces
        self.text = ""

    def more(self, start: int) -> bool:
        """Drop the text before ``start`` and add at least as much again (so a unit that
        keeps being cut short is re-parsed O(log n) times); False when there is no more."""
        want = max(len(self.text) - start, PIECE)
        added: list[str] = []
        size = 0
        for piece in self._pieces:
            added.append(piece)
            size += len(piece)
            if size >= want:
                break
        if not size:
            return False
        self.text = self.text[start:] + "".join(added)
        return True

    def unit(self, parse: Any, i: int) -> tuple[Any, int]:
        """``parse(text, i)``, which returns (result, next index) and raises ValueError or
        IndexError on text that is cut short or wrong: retried with more text until it
        succeeds or there is no more. Indexes before ``i`` are invalid afterwards."""
        while True:
            try:
                return parse(self.text, i)
            except (ValueError, IndexError):
                if not self.more(i):
                    raise
                i = 0

    def rest_is_blank(self, i: int) -> bool:
        if self.text[i:].strip():
            return False
        return all(not piece.strip() for piece in self._pieces)


def _skip(text: str, i: int) -> int:
    while text[i] in _WS:
        i += 1
    return i


def _expect(text: str, i: int, char: str) -> int:
    i = _skip(text, i)
    if text[i] != char:
        raise ValueError(f"expected {char!r} at {i}")
    return i + 1


_END = object()


def _open(text: str, i: int) -> tuple[Any, int]:
    """``{``, then either ``}`` (returns _END) or the start of the first member."""
    i = _skip(text, _expect(text, i, "{"))
    return (_END, i + 1) if text[i] == "}" else (None, i)


def _next(text: str, i: int) -> tuple[Any, int]:
    """After a member: ``,`` (another one follows) or ``}`` (returns _END)."""
    i = _skip(text, i)
    if text[i] == "}":
        return _END, i + 1
    return None, _expect(text, i, ",")


def _member(text: str, i: int, opens: Any = None) -> tuple[Any, int]:
    """``"key": value``, returned as (key, the value's JSON text). The value's end must be
    followed by another character in ``text``, so a value cut short at the end of the window
    (a number, say) is never taken whole. When ``opens(key)`` and the value is an object, only
    the key is consumed and the value is None (its members are parsed one by one)."""
    key, i = _decoder.raw_decode(text, _skip(text, i))
    if not isinstance(key, str):
        raise ValueError("expected a key")
    i = _skip(text, _expect(text, i, ":"))
    if opens is not None and text[i] == "{" and opens(key):
        return (key, None), i
    end = _decoder.raw_decode(text, i)[1]
    text[_skip(text, end)]  # IndexError when cut short
    return (key, text[i:end]), end


def _parse_v2(w: _Window) -> dict[str, Any]:
    """Top-level fields are parsed whole, except ``records``, whose records are kept as their
    text and parsed when :func:`rows_from_snapshot` reads them."""
    out = _Lazy()
    end, i = w.unit(_open, 0)
    while end is not _END:
        (key, value), i = w.unit(lambda t, j: _member(t, j, _records_key), i)
        if value is None:
            out[key], i = _records(w, i)
        else:
            out[key] = _decoder.raw_decode(value)[0]
        end, i = w.unit(_next, i)
    if not w.rest_is_blank(i):
        raise ValueError("extra data")
    return out


def _records(w: _Window, i: int) -> tuple[dict[str, Any], int]:
    """``{"kind": {"id": {...}, ...}, ...}`` as kind -> _Records."""
    kinds: dict[str, Any] = {}
    end, i = w.unit(_open, i)
    while end is not _END:
        (kind, value), i = w.unit(lambda t, j: _member(t, j, _every_key), i)
        if value is not None:
            kinds[kind] = _decoder.raw_decode(value)[0]  # not an object: left to validation
        else:
            records: list[tuple[str, str]] = []
            done, i = w.unit(_open, i)
            while done is not _END:
                record, i = w.unit(_member, i)
                records.append(record)
                done, i = w.unit(_next, i)
            kinds[kind] = _Records(records)
        end, i = w.unit(_next, i)
    return kinds, i


def _records_key(key: str) -> bool:
    return key == "records"


def _every_key(key: str) -> bool:
    return True


class _Records:
    """One kind's records as their JSON text, parsed when iterated. Iterating forgets each
    record as it goes (a snapshot's records are read once), so that 100,000 of them are not
    freed in one go, holding the GIL, when the restore is done."""

    def __init__(self, records: list[tuple[str, str]]) -> None:
        self.records = records

    def items(self) -> Iterator[tuple[str, Any]]:
        records = self.records
        records.reverse()
        while records:
            ident, text = records.pop()
            yield ident, _decoder.raw_decode(text)[0]

    def __contains__(self, key: object) -> bool:
        return any(ident == key for ident, _ in self.records)

    def __getitem__(self, key: str) -> Any:
        for ident, text in self.records:
            if ident == key:
                return _decoder.raw_decode(text)[0]
        raise KeyError(key)

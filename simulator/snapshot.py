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
        if not isinstance(table, (dict, _Spans)):
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
    (``records`` of a version 2 snapshot) is parsed record by record: one call to
    ``json.loads`` on a 100,000-order document would hold the interpreter for the whole parse,
    and every other merchant's requests with it. It is also decoded piece by piece, so the
    whole body is copied once (into the text), not twice. Anything that is not laid out as a
    version 2 snapshot is parsed whole (errors as for any body)."""
    from .validation import parse_json

    pieces = [raw] if isinstance(raw, (bytes, bytearray)) else raw
    if sum(map(len, pieces)) < 1 << 20:
        return parse_json(b"".join(pieces))
    try:
        return _parse_v2(_decode(pieces))
    except (ValueError, UnicodeDecodeError, IndexError):
        return parse_json(b"".join(pieces))


def _decode(pieces: list[bytes]) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")()
    texts = [decoder.decode(piece) for piece in pieces]
    texts.append(decoder.decode(b"", final=True))
    return "".join(texts)


def _skip(text: str, i: int) -> int:
    while text[i] in _WS:
        i += 1
    return i


def _expect(text: str, i: int, char: str) -> int:
    i = _skip(text, i)
    if text[i] != char:
        raise ValueError(f"expected {char!r} at {i}")
    return i + 1


def _parse_v2(text: str) -> dict[str, Any]:
    """Top-level fields are parsed whole, except ``records``, whose records are parsed on
    demand by :func:`rows_from_snapshot` (spans into ``text`` are kept until then)."""
    out = _Lazy()
    i = _expect(text, 0, "{")
    i = _skip(text, i)
    if text[i] == "}":
        return out
    while True:
        key, i = _decoder.raw_decode(text, _skip(text, i))
        i = _expect(text, i, ":")
        i = _skip(text, i)
        if key == "records" and text[i] == "{":
            out[key], i = _record_spans(text, i)
        else:
            out[key], i = _decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] == "}":
            if text[i + 1:].strip():
                raise ValueError("extra data")
            return out
        i = _expect(text, i, ",")


def _record_spans(text: str, i: int) -> tuple[dict[str, Any], int]:
    """``{"kind": {"id": {...}, ...}, ...}`` as kind -> list of (id, start, end) spans."""
    kinds: dict[str, Any] = {}
    i = _expect(text, i, "{")
    if text[_skip(text, i)] == "}":
        return kinds, _skip(text, i) + 1
    while True:
        kind, i = _decoder.raw_decode(text, _skip(text, i))
        i = _expect(text, i, ":")
        i = _skip(text, i)
        if text[i] != "{":
            kinds[kind], i = _decoder.raw_decode(text, i)  # not an object: left to validation
        else:
            spans: list[tuple[str, int, int]] = []
            i += 1
            if text[_skip(text, i)] == "}":
                i = _skip(text, i) + 1
            else:
                while True:
                    ident, i = _decoder.raw_decode(text, _skip(text, i))
                    i = _skip(text, _expect(text, i, ":"))
                    end = _value_end(text, i)
                    spans.append((ident, i, end))
                    i = _skip(text, end)
                    if text[i] == "}":
                        i += 1
                        break
                    i = _expect(text, i, ",")
            kinds[kind] = _Spans(text, spans)
        i = _skip(text, i)
        if text[i] == "}":
            return kinds, i + 1
        i = _expect(text, i, ",")


def _value_end(text: str, i: int) -> int:
    """Where the JSON value starting at ``i`` ends: parsed (and checked) now, kept as a span."""
    _, end = _decoder.raw_decode(text, i)
    return end


class _Spans:
    """One kind's records as spans of the request text, parsed when iterated."""

    def __init__(self, text: str, spans: list[tuple[str, int, int]]) -> None:
        self.text, self.spans = text, spans

    def items(self) -> Iterator[tuple[str, Any]]:
        text = self.text
        for ident, start, end in self.spans:
            yield ident, _decoder.raw_decode(text, start)[0]

    def __contains__(self, key: object) -> bool:
        return any(ident == key for ident, _, _ in self.spans)

    def __getitem__(self, key: str) -> Any:
        for ident, start, _ in self.spans:
            if ident == key:
                return _decoder.raw_decode(self.text, start)[0]
        raise KeyError(key)

"""Idempotency keys, per merchant and endpoint.

The same key with the same body replays the first response exactly (status and body); the same
key with a different body is IDEMPOTENCY_KEY_REUSED. How long Square keeps keys is not
documented; the simulator keeps them for the merchant's lifetime, in the merchant's store (so a
key used before a restart replays after it).

A record is ``[body digest, status, response JSON text]``: the digest of the canonical request
body instead of the body itself, and the response as the exact text that was sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, MutableMapping

from orderfsm.rules import violation

__all__ = ["IdempotencyStore", "fingerprint", "digest"]

_compact = json.JSONEncoder(separators=(",", ":")).encode


def fingerprint(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def digest(text: str) -> str:
    """What is kept of a request body: a 128-bit digest of its canonical JSON."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    fingerprint: str  # digest(fingerprint(body))
    status: int
    text: str  # the response body as sent

    @property
    def body(self) -> Any:
        return json.loads(self.text)


def _record_id(endpoint: str, key: str) -> str:
    return f"{endpoint}|{key}"


class IdempotencyStore:
    def __init__(self, table: MutableMapping[str, Any] | None = None) -> None:
        self._seen: MutableMapping[str, Any] = {} if table is None else table

    def _get(self, endpoint: str, key: str) -> Stored | None:
        row = self._seen.get(_record_id(endpoint, key))
        return None if row is None else Stored(row[0], row[1], row[2])

    def lookup(self, endpoint: str, key: str | None, body: Any) -> Stored | None:
        """The stored response to replay, or None to run the request.

        Raises the catalog's IDEMPOTENCY_KEY_REUSED error when the body differs."""
        if not key:
            return None
        stored = self._get(endpoint, key)
        if stored is None:
            return None
        if stored.fingerprint != digest(fingerprint(body)):
            raise violation("api.idempotency_key_reused")
        return stored

    def seen(self, endpoint: str, key: str | None) -> bool:
        return bool(key) and _record_id(endpoint, key) in self._seen  # type: ignore[arg-type]

    def remember(self, endpoint: str, key: str | None, body: Any, status: int,
                 response: Any) -> str:
        """Keep the response for ``key``; returns its JSON text (what to send)."""
        text = _compact(response)
        if key:
            self._seen[_record_id(endpoint, key)] = [digest(fingerprint(body)), status, text]
        return text

    def snapshot(self) -> list[list[Any]]:
        """The records as ``[endpoint, key, digest, status, response]`` rows."""
        out = []
        for rid, (fp, status, text) in self._seen.items():
            endpoint, _, key = rid.partition("|")
            out.append([endpoint, key, fp, status, json.loads(text)])
        return out

    @staticmethod
    def rows_from_snapshot(rows: list[list[Any]]) -> list[tuple[str, list[Any]]]:
        """Record ids and values from :meth:`snapshot` rows, or from version 1 snapshots whose
        third field is the request body's canonical JSON rather than its digest."""
        out = []
        for endpoint, key, fp, status, body in rows:
            if not (isinstance(fp, str) and len(fp) == 32 and all(c in "0123456789abcdef"
                                                                   for c in fp)):
                fp = digest(fp)
            out.append((_record_id(endpoint, key), [fp, int(status), _compact(body)]))
        return out

    def restore(self, rows: list[list[Any]]) -> None:
        for rid, value in self.rows_from_snapshot(rows):
            self._seen[rid] = value

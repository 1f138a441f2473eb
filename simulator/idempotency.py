"""Idempotency keys, per merchant and endpoint.

The same key with the same body replays the first response exactly (status and body); the same
key with a different body is IDEMPOTENCY_KEY_REUSED. How long Square keeps keys is not
documented; the simulator keeps them for the merchant's lifetime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orderfsm.rules import violation

__all__ = ["IdempotencyStore", "fingerprint"]


def fingerprint(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Stored:
    fingerprint: str
    status: int
    body: Any


class IdempotencyStore:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], Stored] = {}

    def lookup(self, endpoint: str, key: str | None, body: Any) -> Stored | None:
        """The stored response to replay, or None to run the request.

        Raises the catalog's IDEMPOTENCY_KEY_REUSED error when the body differs."""
        if not key:
            return None
        stored = self._seen.get((endpoint, key))
        if stored is None:
            return None
        if stored.fingerprint != fingerprint(body):
            raise violation("api.idempotency_key_reused")
        return stored

    def seen(self, endpoint: str, key: str | None) -> bool:
        return bool(key) and (endpoint, key) in self._seen

    def remember(self, endpoint: str, key: str | None, body: Any, status: int, response: Any) -> None:
        if key:
            self._seen[(endpoint, key)] = Stored(fingerprint(body), status, response)

    def snapshot(self) -> list[list[Any]]:
        return [[e, k, s.fingerprint, s.status, s.body] for (e, k), s in self._seen.items()]

    def restore(self, rows: list[list[Any]]) -> None:
        self._seen = {(e, k): Stored(f, st, b) for e, k, f, st, b in rows}

"""Deterministic, Square-looking ids from a seed and a counter.

The counter is the generator's whole state, so an engine can roll it back when a command is
rejected and the same seed with the same requests always yields the same ids.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["IdGenerator"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UPPER = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# base64 without its two punctuation characters, and base32: both alphanumeric, both done in C.
_B64_ALNUM = bytes.maketrans(b"+/", b"xZ")


def _encode(data: bytes, alphabet: str, length: int) -> str:
    if alphabet is _UPPER:
        return base64.b32encode(data).decode("ascii")[:length]
    if alphabet is _ALPHABET:
        return base64.b64encode(data).translate(_B64_ALNUM).decode("ascii")[:length]
    return data.hex()[:length]


class IdGenerator:
    __slots__ = ("seed", "counter", "_prefix")

    def __init__(self, seed: int | str = 0, counter: int = 0) -> None:
        self.seed = seed
        self.counter = counter
        self._prefix = f"{seed}/".encode()

    def _bytes(self) -> bytes:
        self.counter += 1
        return hashlib.blake2b(self._prefix + str(self.counter).encode(), digest_size=24).digest()

    def object_id(self) -> str:
        """Orders and payments: 29 characters ending in Y, like Square's."""
        return _encode(self._bytes(), _ALPHABET, 27) + "eY"

    def location_id(self) -> str:
        return _encode(self._bytes(), _UPPER, 13)

    def merchant_id(self) -> str:
        return "M" + _encode(self._bytes(), _UPPER, 12)

    def catalog_id(self) -> str:
        """Catalog objects: 24 upper-case letters and digits."""
        return _encode(self._bytes(), _UPPER, 24)

    def uid(self) -> str:
        return _encode(self._bytes(), _ALPHABET, 22)

    def suffix(self) -> str:
        return _encode(self._bytes(), _ALPHABET, 22)

    def uuid(self) -> str:
        raw = _encode(self._bytes(), "0123456789abcdef", 32)
        return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:32]}"

"""Input checks for the numbers Square's API carries: integer ranges and decimal strings.

Square types money amounts and catalog versions as int64 and other integers (versions, limits,
precisions) as 32-bit; its typed SDKs (Java, Go, .NET) cannot decode a wider value, so a number
outside those ranges is refused at the door. Percentages and quantities travel as decimal
strings ("7.25", "1.5"): only finite, plain decimals are accepted, never ``NaN``, ``Infinity``
or an exponent such as ``1e400`` (which ``decimal.Decimal`` would happily parse).

Everything here is pure and cheap; :func:`decimal_problem` and :func:`integer_problem` return
``None`` for a good value or a sentence saying what is wrong, so callers can word their own
error (the simulator's request validation, the engine, pricing).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

__all__ = [
    "INT32_MIN", "INT32_MAX", "INT64_MIN", "INT64_MAX", "MAX_INT_DIGITS",
    "PERCENTAGE_MAX_LENGTH", "QUANTITY_MAX_LENGTH", "QUANTITY_MAX_PRECISION",
    "integer_problem", "int_bounds", "decimal_problem", "parse_decimal",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: CPython refuses to convert integer text longer than this (sys.get_int_max_str_digits); the
#: simulator refuses it first, with a 400, instead of letting the conversion raise.
MAX_INT_DIGITS = 4300

#: Square's spec: ``percentage`` on taxes, discounts and service charges has maxLength 10;
#: a line item's ``quantity`` has maxLength 12, and OrderQuantityUnit.precision is 0 to 5.
PERCENTAGE_MAX_LENGTH = 10
QUANTITY_MAX_LENGTH = 12
QUANTITY_MAX_PRECISION = 5

_PLAIN_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.([0-9]*))?|\.([0-9]+))", re.ASCII)


def int_bounds(fmt: str | None) -> tuple[int, int]:
    """The range of a spec integer: ``format: int64`` is 64-bit, anything else 32-bit."""
    return (INT64_MIN, INT64_MAX) if fmt == "int64" else (INT32_MIN, INT32_MAX)


def integer_problem(value: int, fmt: str | None = "int64") -> str | None:
    """Why ``value`` does not fit the spec integer type ``fmt``, or None."""
    lo, hi = int_bounds(fmt)
    if lo <= value <= hi:
        return None
    bits = 64 if fmt == "int64" else 32
    return f"The value must be a {bits}-bit integer, between {lo} and {hi}."


def decimal_problem(text: Any, *, max_length: int | None = None,
                    max_fraction_digits: int | None = None) -> str | None:
    """Why ``text`` is not a plain, finite decimal string within the given limits, or None.

    Accepted: an optional ``-`` and digits with an optional decimal point ("7.25", "-1",
    "0.5", "5.", ".5"; pricing reads the same forms). Refused: exponents ("1e3"), ``NaN``/``sNaN``/``Infinity``, signs other than a
    leading minus, spaces, non-ASCII digits, and empty or over-long strings. Whether a value
    is allowed to be negative or zero is a rule of its field, not of the syntax.
    """
    if not isinstance(text, str):
        return "Expected a decimal number written as a string, such as \"7.25\"."
    if max_length is not None and len(text) > max_length:
        return f"The decimal must not be longer than {max_length} characters."
    match = _PLAIN_DECIMAL.fullmatch(text)
    if match is None:
        return (f"`{text}` is not a plain decimal number: use digits with an optional "
                "decimal point, such as \"7.25\" (no exponent, NaN or Infinity).")
    fraction = match.group(1) or match.group(2)
    if max_fraction_digits is not None and fraction and len(fraction) > max_fraction_digits:
        return f"The decimal must not have more than {max_fraction_digits} digits after the point."
    return None


def parse_decimal(text: Any, **limits: Any) -> Decimal:
    """The Decimal of a checked decimal string; ValueError (with the reason) otherwise."""
    problem = decimal_problem(text, **limits)
    if problem is not None:
        raise ValueError(problem)
    return Decimal(text)

"""Request validation against Square's published schemas, with Square's error bodies.

The schemas come from :mod:`simulator._schemas` (compiled from Square's OpenAPI spec by
``tools/gen_schemas.py``). At import they are turned into small slotted objects so a walk is a
handful of dict lookups and ``type() is`` tests per field; no jsonschema library is involved.

Public API:

* :func:`parse_json` turns the raw request body into a JSON value (empty body -> ``{}``).
* :func:`validate_body` checks a parsed body against a request schema.
* :func:`validate_query` converts and checks the query string of the GET list endpoints.

All three raise :class:`orderfsm.errors.SquareError` with HTTP 400 and category
``INVALID_REQUEST_ERROR``. Wording follows the reference of observed Square error bodies (§12);
where Square's text was never observed the choice is marked GUESS below.

Policy decisions (Square's behaviour was not observed for these):

* Unknown body fields, and read-only fields (dropped by the generator), are ignored, not
  rejected with UNKNOWN_BODY_PARAMETER. This is the lenient choice: a client that echoes a
  retrieved object back (ids, totals, timestamps) keeps working.
* Explicit ``null`` on an optional field is accepted (the Python SDK sends ``null`` for
  arguments passed as ``None``). ``null`` on a required field counts as missing.
* A required string with ``minLength >= 1`` that is missing or null gives VALUE_EMPTY, not
  MISSING_REQUIRED_PARAMETER: Square answered CreatePayment ``{}`` with VALUE_EMPTY for
  ``source_id`` and ``idempotency_key`` (reference §12, SEEN). Other missing required fields
  (objects, arrays, enums, strings without a minimum length) give MISSING_REQUIRED_PARAMETER.
* JSON numbers with a fraction or exponent (even ``10.0``) are not integers.
* Integers must fit the type Square gives them: ``format: int64`` fields (money amounts,
  catalog versions) are 64-bit, other integers 32-bit (VALUE_TOO_HIGH / VALUE_TOO_LOW).
* Decimal strings (``percentage``, ``quantity``) must be plain finite decimals (INVALID_VALUE):
  see :mod:`orderfsm.numbers`.
* A body nested deeper than :data:`MAX_DEPTH`, or holding a number JSON allows but Python
  cannot hold (more than 4,300 digits, or a float beyond the double range), is a BAD_REQUEST.
* Arrays the spec leaves unbounded but that must be bounded (see :data:`ARRAY_LIMITS`) get
  their maximum from here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Set
from typing import Any

from orderfsm.errors import ErrorDetail, SquareError
from orderfsm.numbers import (MAX_INT_DIGITS, PERCENTAGE_MAX_LENGTH, QUANTITY_MAX_LENGTH,
                              decimal_problem, int_bounds)
from simulator._schemas import QUERY_PARAMS, SCHEMAS

__all__ = ["parse_json", "validate_body", "validate_query", "ERROR_CODES", "MAX_DEPTH",
           "ARRAY_LIMITS", "DECIMAL_FIELDS"]

CATEGORY = "INVALID_REQUEST_ERROR"

#: Every code this module can produce.
ERROR_CODES = frozenset(
    {
        "BAD_REQUEST",
        "EXPECTED_JSON_BODY",
        "MISSING_REQUIRED_PARAMETER",
        "VALUE_EMPTY",
        "EXPECTED_STRING",
        "EXPECTED_INTEGER",
        "EXPECTED_BOOLEAN",
        "EXPECTED_FLOAT",
        "EXPECTED_OBJECT",
        "EXPECTED_ARRAY",
        "EXPECTED_MAP",
        "INVALID_ENUM_VALUE",
        "VALUE_TOO_LONG",
        "VALUE_TOO_SHORT",
        "VALUE_TOO_HIGH",
        "VALUE_TOO_LOW",
        "INVALID_VALUE",
    }
)

#: Deepest JSON nesting accepted. Square's deepest request object (an order's line item's
#: applied tax's money) is well under ten levels; anything far deeper is hostile.
MAX_DEPTH = 32

#: Limits Square's spec does not state as ``maxItems`` (docs/simulator.md, "Limits").
#: (schema, property) -> maximum number of items.
ARRAY_LIMITS = {
    ("Order", "line_items"): 500,
    ("Order", "taxes"): 500,
    ("Order", "discounts"): 500,
    ("Order", "service_charges"): 500,
    ("Order", "fulfillments"): 100,
    ("OrderLineItem", "modifiers"): 500,
    ("OrderLineItem", "applied_taxes"): 500,
    ("OrderLineItem", "applied_discounts"): 500,
}

#: Decimal-string fields: (schema, property) -> limits for orderfsm.numbers.decimal_problem.
DECIMAL_FIELDS = {
    # Decimal places (at most OrderQuantityUnit.precision) are pricing's rule
    # (pricing.quantity_precision), checked when the order is priced.
    ("OrderLineItem", "quantity"): {"max_length": QUANTITY_MAX_LENGTH},
    ("OrderLineItemModifier", "quantity"): {"max_length": QUANTITY_MAX_LENGTH},
    ("OrderLineItemTax", "percentage"): {"max_length": PERCENTAGE_MAX_LENGTH},
    ("OrderLineItemDiscount", "percentage"): {"max_length": PERCENTAGE_MAX_LENGTH},
    ("OrderServiceCharge", "percentage"): {"max_length": PERCENTAGE_MAX_LENGTH},
}

# Details. SEEN in §12: MISSING, EMPTY, EXPECTED_STRING/OBJECT/ARRAY, TOO_LONG, enum form.
# GUESS (by analogy): EXPECTED_INTEGER/BOOLEAN/FLOAT/MAP, TOO_SHORT/HIGH/LOW, item counts,
# EXPECTED_JSON_BODY (spec description) and the malformed-JSON text.
_MISSING = "Field must be set"
_EMPTY = "Field must not be blank"
_EXPECTED = {
    "EXPECTED_STRING": "Expected a string value.",
    "EXPECTED_INTEGER": "Expected an integer value.",
    "EXPECTED_BOOLEAN": "Expected a boolean value.",
    "EXPECTED_FLOAT": "Expected a float value.",
    "EXPECTED_OBJECT": "Expected an object value.",
    "EXPECTED_ARRAY": "Expected an array.",
    "EXPECTED_MAP": "Expected a map value.",
}
_NOT_OBJECT_BODY = "The request body is not a JSON object."

# Field kinds (small ints: cheap identity comparisons in the hot loop).
_STR, _INT, _NUM, _BOOL, _OBJ, _MAP, _ARR = range(7)
_KIND_BY_TYPE = {"string": _STR, "integer": _INT, "number": _NUM, "boolean": _BOOL, "array": _ARR}
_EXPECTED_BY_KIND = {
    _STR: "EXPECTED_STRING",
    _INT: "EXPECTED_INTEGER",
    _NUM: "EXPECTED_FLOAT",
    _BOOL: "EXPECTED_BOOLEAN",
    _OBJ: "EXPECTED_OBJECT",
    _MAP: "EXPECTED_MAP",
    _ARR: "EXPECTED_ARRAY",
}
_INDEX_RE = re.compile(r"\[\d+\]")


def _err(code: str, detail: str | None, field: str | None = None) -> ErrorDetail:
    return ErrorDetail(CATEGORY, code, detail, field)


# -- compiled schema objects ------------------------------------------------------------------
class _Field:
    """One property, array item or map value, ready for the walker."""

    __slots__ = (
        "kind", "required", "enum", "min_len", "max_len", "minimum", "maximum",
        "min_items", "max_items", "target", "sub", "checked", "decimal",
    )

    def __init__(self, spec: Mapping[str, Any], objects: Mapping[str, "_Obj"], required: bool,
                 where: tuple[str, str] | None = None):
        stype = spec["type"]
        if stype == "object":
            self.kind = _MAP if "additionalProperties" in spec else _OBJ
        else:
            self.kind = _KIND_BY_TYPE[stype]
        self.required = required
        self.enum = frozenset(spec["enum"]) if "enum" in spec else None
        self.min_len = spec.get("minLength", 0)
        self.max_len = spec.get("maxLength")
        self.minimum = spec.get("minimum")
        self.maximum = spec.get("maximum")
        if self.kind == _INT:
            # Every integer is bounded by its wire type (int64 or 32-bit), spec limits or not.
            lo, hi = int_bounds(spec.get("format"))
            self.minimum = lo if self.minimum is None else max(self.minimum, lo)
            self.maximum = hi if self.maximum is None else min(self.maximum, hi)
        self.min_items = spec.get("minItems", 0)
        self.max_items = spec.get("maxItems")
        if where in ARRAY_LIMITS and self.max_items is None:
            self.max_items = ARRAY_LIMITS[where]
        self.decimal = DECIMAL_FIELDS.get(where) if where is not None else None
        self.target = objects[spec["$ref"]] if "$ref" in spec else None
        if "items" in spec:
            self.sub = _Field(spec["items"], objects, False)
        elif "additionalProperties" in spec:
            self.sub = _Field(spec["additionalProperties"], objects, False)
        else:
            self.sub = None
        # Whether a value of the right type still needs a look at its content.
        self.checked = bool(
            self.enum is not None or self.min_len or self.max_len is not None
            or self.minimum is not None or self.maximum is not None
            or self.min_items or self.max_items is not None or self.decimal is not None
        )


class _Obj:
    """An object schema: its fields in spec order (the order errors are reported in)."""

    __slots__ = ("name", "fields")

    def __init__(self, name: str) -> None:
        self.name = name
        self.fields: tuple[tuple[str, _Field], ...] = ()


def _compile(schemas: Mapping[str, Any]) -> dict[str, _Obj]:
    objects = {name: _Obj(name) for name in schemas}
    for name, schema in schemas.items():
        required = set(schema.get("required", ()))
        objects[name].fields = tuple(
            (pname, _Field(pspec, objects, pname in required, (name, pname)))
            for pname, pspec in schema["properties"].items()
        )
    return objects


_OBJECTS = _compile(SCHEMAS)


# -- walker -----------------------------------------------------------------------------------
def _ignored(path: str, ignore: Set[str]) -> bool:
    return path in ignore or _INDEX_RE.sub("[]", path) in ignore


def _walk_object(obj: _Obj, value: dict, prefix: str, errs: list, ignore: Set[str]) -> None:
    """Check the fields of ``value`` (a dict) against ``obj``; ``prefix`` ends with '.' or ''."""
    get = value.get
    for name, field in obj.fields:
        v = get(name)
        if v is None:  # missing or explicit null
            if field.required:
                path = prefix + name
                if ignore and _ignored(path, ignore):
                    continue
                if field.kind == _STR and field.min_len and field.enum is None:
                    errs.append(_err("VALUE_EMPTY", _EMPTY, path))
                else:
                    errs.append(_err("MISSING_REQUIRED_PARAMETER", _MISSING, path))
            continue
        _check(field, v, prefix, name, errs, ignore)


def _check(field: _Field, v: Any, prefix: str, name: str, errs: list, ignore: Set[str]) -> None:
    """Check one non-null value; its path is ``prefix + name`` (built only when needed)."""
    kind = field.kind
    t = type(v)
    if kind == _STR:
        if t is not str:
            errs.append(_err("EXPECTED_STRING", _EXPECTED["EXPECTED_STRING"], prefix + name))
        elif field.checked:
            _check_string(field, v, prefix + name, errs)
    elif kind == _OBJ:
        if t is not dict:
            errs.append(_err("EXPECTED_OBJECT", _EXPECTED["EXPECTED_OBJECT"], prefix + name))
        else:
            _walk_object(field.target, v, prefix + name + ".", errs, ignore)
    elif kind == _INT:
        # bool is a subclass of int and float is not int: `type() is` rejects both.
        if t is not int:
            errs.append(_err("EXPECTED_INTEGER", _EXPECTED["EXPECTED_INTEGER"], prefix + name))
        elif field.checked:
            _check_number(field, v, prefix + name, errs)
    elif kind == _BOOL:
        if t is not bool:
            errs.append(_err("EXPECTED_BOOLEAN", _EXPECTED["EXPECTED_BOOLEAN"], prefix + name))
    elif kind == _ARR:
        if t is not list:
            errs.append(_err("EXPECTED_ARRAY", _EXPECTED["EXPECTED_ARRAY"], prefix + name))
            return
        path = prefix + name
        n = len(v)
        if field.max_items is not None and n > field.max_items:
            errs.append(_err(
                "VALUE_TOO_LONG", f"Field must not have more than {field.max_items} items", path
            ))
        elif n < field.min_items:
            errs.append(_err(
                "VALUE_TOO_SHORT", f"Field must have at least {field.min_items} items", path
            ))
        sub = field.sub
        for i, item in enumerate(v):
            if item is None:  # a null element is not an omitted optional field
                code = _EXPECTED_BY_KIND[sub.kind]
                errs.append(_err(code, _EXPECTED[code], f"{path}[{i}]"))
            else:
                _check(sub, item, path, f"[{i}]", errs, ignore)
    elif kind == _MAP:
        if t is not dict:
            errs.append(_err("EXPECTED_MAP", _EXPECTED["EXPECTED_MAP"], prefix + name))
            return
        path = prefix + name + "."
        sub = field.sub
        for key, item in v.items():
            if item is None:
                code = _EXPECTED_BY_KIND[sub.kind]
                errs.append(_err(code, _EXPECTED[code], f"{path}{key}"))
            else:
                _check(sub, item, path, str(key), errs, ignore)
    elif kind == _NUM:
        if (t is not int and t is not float) or t is bool:
            errs.append(_err("EXPECTED_FLOAT", _EXPECTED["EXPECTED_FLOAT"], prefix + name))
        elif field.checked:
            _check_number(field, v, prefix + name, errs)


def _check_string(field: _Field, v: str, path: str, errs: list) -> None:
    if field.decimal is not None:
        before = len(errs)
        _check_text(field, v, path, errs)
        if len(errs) == before:
            problem = decimal_problem(v, **field.decimal)
            if problem is not None:
                errs.append(_err("INVALID_VALUE", problem, path))
        return
    _check_text(field, v, path, errs)


def _check_text(field: _Field, v: str, path: str, errs: list) -> None:
    if field.enum is not None:
        if v not in field.enum:
            errs.append(_err(
                "INVALID_ENUM_VALUE", f"`{v}` is not a valid enum value for `{path}`.", path
            ))
        return
    n = len(v)  # characters, not UTF-8 bytes
    if field.max_len is not None and n > field.max_len:
        errs.append(_err(
            "VALUE_TOO_LONG", f"Field must not be greater than {field.max_len} length", path
        ))
    elif n < field.min_len:
        if n == 0:
            errs.append(_err("VALUE_EMPTY", _EMPTY, path))
        else:
            errs.append(_err(
                "VALUE_TOO_SHORT", f"Field must be at least {field.min_len} length", path
            ))


def _check_number(field: _Field, v: int | float, path: str, errs: list) -> None:
    if field.maximum is not None and v > field.maximum:
        errs.append(_err("VALUE_TOO_HIGH", f"Field must not be greater than {field.maximum}", path))
    elif field.minimum is not None and v < field.minimum:
        errs.append(_err("VALUE_TOO_LOW", f"Field must not be less than {field.minimum}", path))


# -- public API -------------------------------------------------------------------------------
def parse_json(raw: bytes) -> object:
    """Parse a request body. Empty (or all-whitespace) -> ``{}``; bad JSON -> 400 BAD_REQUEST."""
    if not raw or raw.isspace():
        return {}
    try:
        # Decode explicitly: json.loads(bytes) would also accept UTF-16/32 bodies.
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                           parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        detail = f"Malformed JSON: {exc.msg} (line {exc.lineno}, character {exc.colno})."
    except UnicodeDecodeError:
        detail = "Malformed JSON: the body is not valid UTF-8 text."
    except _NonFiniteNumber as exc:
        detail = f"Malformed JSON: {exc.args[0]} is not a valid JSON number."
    except RecursionError:
        detail = "Malformed JSON: the document is nested too deeply."
    else:
        if _too_deep(value):
            detail = f"Malformed JSON: the document is nested deeper than {MAX_DEPTH} levels."
        else:
            return value
    raise SquareError(400, [_err("BAD_REQUEST", detail)])


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf, which has no JSON form to echo
        raise _NonFiniteNumber(f"{text[:40]} (out of range)")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:  # int() itself would raise ValueError past 4,300 digits
        raise _NonFiniteNumber(f"an integer of {len(text)} digits")
    return int(text)


def _too_deep(value: object) -> bool:
    """Whether ``value`` nests containers deeper than MAX_DEPTH (iterative: no recursion)."""
    if type(value) not in (dict, list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if type(node) is dict else node
        for child in children:
            if type(child) is dict or type(child) is list:
                if depth >= MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


class _NonFiniteNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; JSON (and Square) does not.
    raise _NonFiniteNumber(name)


def validate_body(
    schema_name: str, body: object, *, ignore_required: Set[str] = frozenset()
) -> dict:
    """Check ``body`` against request schema ``schema_name`` and return it unchanged.

    Raises ``SquareError(400, [...])`` listing every problem found, in spec field order.
    ``ignore_required`` holds dotted paths whose required check is skipped; ``[]`` matches any
    array index (``"order.line_items[].quantity"``). Unknown fields are ignored.
    """
    if type(body) is not dict:
        raise SquareError(400, [_err("EXPECTED_JSON_BODY", _NOT_OBJECT_BODY)])
    errs: list[ErrorDetail] = []
    _walk_object(_OBJECTS[schema_name], body, "", errs, ignore_required)
    if errs:
        raise SquareError(400, errs)
    return body


# Query parameters: operationId -> ((name, _Field), ...) in spec order.
_QUERY = {
    op: tuple((name, _Field(spec, _OBJECTS, False)) for name, spec in params.items())
    for op, params in QUERY_PARAMS.items()
}
_INT_TEXT = re.compile(r"-?[0-9]+", re.ASCII)
_BOOL_TEXT = {"true": True, "false": False}


def validate_query(operation: str, params: Mapping[str, str]) -> dict:
    """Convert the query parameters of ``operation`` (an operationId such as ``ListPayments``)
    to typed values and return them; unknown parameters are dropped, absent ones are not
    filled with defaults (``QUERY_PARAMS`` lists the spec's defaults)."""
    out: dict[str, Any] = {}
    errs: list[ErrorDetail] = []
    for name, field in _QUERY[operation]:
        if name not in params:
            continue
        raw = params[name]
        kind = field.kind
        if kind == _INT:
            if not _INT_TEXT.fullmatch(raw):
                errs.append(_err("EXPECTED_INTEGER", _EXPECTED["EXPECTED_INTEGER"], name))
                continue
            if len(raw.lstrip("-").lstrip("0")) > 20:  # beyond int64 whatever the digits
                code = "VALUE_TOO_LOW" if raw.startswith("-") else "VALUE_TOO_HIGH"
                bound = field.minimum if code == "VALUE_TOO_LOW" else field.maximum
                word = "less" if code == "VALUE_TOO_LOW" else "greater"
                errs.append(_err(code, f"Field must not be {word} than {bound}", name))
                continue
            value: Any = int(raw)
            if field.checked:
                before = len(errs)
                _check_number(field, value, name, errs)
                if len(errs) != before:
                    continue
        elif kind == _BOOL:
            value = _BOOL_TEXT.get(raw.lower())
            if value is None:
                errs.append(_err("EXPECTED_BOOLEAN", _EXPECTED["EXPECTED_BOOLEAN"], name))
                continue
        elif kind == _NUM:
            try:
                value = float(raw)
                if not math.isfinite(value):
                    raise ValueError(raw)
            except ValueError:
                errs.append(_err("EXPECTED_FLOAT", _EXPECTED["EXPECTED_FLOAT"], name))
                continue
        else:
            value = raw
            if field.checked:
                before = len(errs)
                _check_string(field, value, name, errs)
                if len(errs) != before:
                    continue
        out[name] = value
    if errs:
        raise SquareError(400, errs)
    return out

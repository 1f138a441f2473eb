#!/usr/bin/env python3
"""Compile the request schemas the simulator validates from Square's OpenAPI spec.

Reads Square's ``api.json`` (OpenAPI 3.0) and writes ``simulator/_schemas.py``: a plain data
module with ``SCHEMAS`` (object schemas reachable from the request roots below) and
``QUERY_PARAMS`` (query parameters of the GET list endpoints). Only what validation needs is
kept: types, ``$ref`` targets, inlined enum values, length and range limits, ``required`` and
``nullable``. Descriptions, examples and read-only properties are dropped.

The output is deterministic (schemas sorted by name, properties in spec order, a fixed
pretty-printer), so the committed module can be compared byte for byte with a regeneration.

Usage: ``python tools/gen_schemas.py [API_JSON] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "square-api" / "api.json"
DEFAULT_OUT = REPO_ROOT / "simulator" / "_schemas.py"

ROOTS = (
    "CreateOrderRequest",
    "UpdateOrderRequest",
    "PayOrderRequest",
    "BatchRetrieveOrdersRequest",
    "SearchOrdersRequest",
    "CloneOrderRequest",
    "CalculateOrderRequest",
    "CreatePaymentRequest",
    "UpdatePaymentRequest",
    "CompletePaymentRequest",
    "CancelPaymentByIdempotencyKeyRequest",
    "RefundPaymentRequest",
    "CreateWebhookSubscriptionRequest",
    "UpdateWebhookSubscriptionRequest",
    "UpdateWebhookSubscriptionSignatureKeyRequest",
    "TestWebhookSubscriptionRequest",
    "UpsertCatalogObjectRequest",
    "BatchUpsertCatalogObjectsRequest",
    "BatchRetrieveCatalogObjectsRequest",
    "BatchDeleteCatalogObjectsRequest",
    "SearchCatalogObjectsRequest",
    "SearchCatalogItemsRequest",
    "UpdateItemTaxesRequest",
    "UpdateItemModifierListsRequest",
)

# operationId -> (method, path) of the GET list endpoints whose query strings are validated.
QUERY_OPERATIONS = {
    "ListPayments": ("get", "/v2/payments"),
    "ListPaymentRefunds": ("get", "/v2/refunds"),
    "ListWebhookSubscriptions": ("get", "/v2/webhooks/subscriptions"),
    "ListWebhookEventTypes": ("get", "/v2/webhooks/event-types"),
    "ListCatalog": ("get", "/v2/catalog/list"),
    "RetrieveCatalogObject": ("get", "/v2/catalog/object/{object_id}"),
}

# Keys copied from a spec (sub)schema, in output order. ``enum`` is inlined from enum refs.
_LIMIT_KEYS = ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems")
_SCALAR_TYPES = {"string", "integer", "boolean", "number"}
WIDTH = 100


class SpecError(Exception):
    """The spec uses a construct this compiler does not understand."""


def _ref_name(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise SpecError(f"unsupported $ref {ref!r}")
    return ref[len(prefix):]


class Compiler:
    """Turns spec schemas into the compact form, collecting object schemas transitively."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.components: dict[str, Any] = spec["components"]["schemas"]
        self.objects: dict[str, dict[str, Any]] = {}
        self._pending: list[str] = []

    # -- schemas ---------------------------------------------------------------------------
    def compile_roots(self, roots: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        for name in roots:
            self._want(name)
        while self._pending:
            name = self._pending.pop()
            self.objects[name] = self._compile_object(name, self.components[name])
        return {name: self.objects[name] for name in sorted(self.objects)}

    def _want(self, name: str) -> None:
        if name not in self.components:
            raise SpecError(f"unknown schema {name!r}")
        if name not in self.objects and name not in self._pending:
            self.objects[name] = {}  # placeholder, keeps recursion finite
            self._pending.append(name)

    def _compile_object(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        if schema.get("type", "object") != "object" or "allOf" in schema or "oneOf" in schema:
            raise SpecError(f"{name}: not a plain object schema")
        props: dict[str, Any] = {}
        read_only: set[str] = set()
        for pname, pschema in schema.get("properties", {}).items():
            if pschema.get("readOnly"):
                read_only.add(pname)  # server-set: ignored on input like unknown fields
                continue
            props[pname] = self._compile_value(pschema, f"{name}.{pname}")
        out: dict[str, Any] = {}
        required = [r for r in schema.get("required", []) if r not in read_only]
        if required:
            out["required"] = required
        out["properties"] = props
        return out

    def _compile_value(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        """One property / array item / map value schema."""
        out: dict[str, Any] = {}
        if "$ref" in schema:
            target_name = _ref_name(schema["$ref"])
            # The 2025-08-20 spec names one schema it never defines
            # (CatalogModifierToggleOverrideType, an enum by its name): a plain string.
            target = self.components.get(target_name, {"type": "string"})
            ttype = target.get("type", "object")
            if ttype == "object" and "enum" not in target:
                self._want(target_name)
                out["type"] = "object"
                out["$ref"] = target_name
            elif ttype in _SCALAR_TYPES:
                # Enum-typed fields are refs to `{type: string, enum: [...]}` schemas: inline them.
                out.update(self._compile_scalar(target, where))
            else:
                raise SpecError(f"{where}: unsupported ref target {target_name} ({ttype})")
        else:
            stype = schema.get("type")
            if stype in _SCALAR_TYPES:
                out.update(self._compile_scalar(schema, where))
            elif stype == "array":
                out["type"] = "array"
                out["items"] = self._compile_value(schema["items"], where + "[]")
            elif stype == "object":
                addl = schema.get("additionalProperties")
                if "properties" in schema or not isinstance(addl, dict):
                    raise SpecError(f"{where}: inline object schemas are not supported")
                out["type"] = "object"
                out["additionalProperties"] = self._compile_value(addl, where + "{}")
            else:
                raise SpecError(f"{where}: no type and no $ref")
        for key in _LIMIT_KEYS:
            if key in schema:
                out[key] = schema[key]
        if schema.get("nullable"):
            out["nullable"] = True
        return out

    @staticmethod
    def _compile_scalar(schema: dict[str, Any], where: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": schema["type"]}
        if "format" in schema and schema["type"] in ("integer", "number"):
            out["format"] = schema["format"]
        if "enum" in schema:
            out["enum"] = list(schema["enum"])
        for key in _LIMIT_KEYS:
            if key in schema:
                out[key] = schema[key]
        return out

    # -- query parameters ------------------------------------------------------------------
    def compile_query(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for op_id, (method, path) in QUERY_OPERATIONS.items():
            operation = self.spec["paths"][path][method]
            if operation.get("operationId") != op_id:
                raise SpecError(f"{method.upper()} {path} is not {op_id}")
            params: dict[str, Any] = {}
            for param in operation.get("parameters", []):
                if param.get("in") != "query":
                    continue
                where = f"{op_id}?{param['name']}"
                entry = self._compile_value(param["schema"], where)
                if entry["type"] not in _SCALAR_TYPES:
                    raise SpecError(f"{where}: non-scalar query parameter")
                if "default" in param["schema"]:
                    entry["default"] = param["schema"]["default"]
                if param.get("required"):
                    entry["required"] = True
                params[param["name"]] = entry
            result[op_id] = params
        return result


# -- deterministic pretty-printer ---------------------------------------------------------------
def _fmt(value: Any, indent: int, col: int | None = None) -> str:
    """Python literal for ``value`` in a block indented by ``indent``; it starts at column
    ``col`` (default ``indent``) and stays on one line when it fits in WIDTH."""
    flat = _flat(value)
    start = indent if col is None else col
    if start + len(flat) + 1 <= WIDTH or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + 4
    pad = " " * inner
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            key = _flat(k) + ": "
            lines.append(f"{pad}{key}{_fmt(v, inner, inner + len(key))},")
        return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
    if all(not isinstance(v, (dict, list)) for v in value):
        # Pack scalars (e.g. enum values) several to a line.
        lines, cur = [], ""
        for item in (_flat(v) + "," for v in value):
            if cur and inner + len(cur) + 1 + len(item) > WIDTH:
                lines.append(pad + cur)
                cur = ""
            cur = f"{cur} {item}" if cur else item
        lines.append(pad + cur)
        return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"
    lines = [f"{pad}{_fmt(v, inner)}," for v in value]
    return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)  # stable double-quoted form
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    raise TypeError(f"cannot format {type(value).__name__}")


def render(spec: dict[str, Any]) -> str:
    """The full text of ``simulator/_schemas.py`` for ``spec``."""
    compiler = Compiler(spec)
    schemas = compiler.compile_roots(ROOTS)
    query = compiler.compile_query()
    version = ""
    for header in spec.get("x-fern-global-headers", []):
        if header.get("header") == "Square-Version":
            version = header.get("type", "").removeprefix('literal<"').removesuffix('">')
    parts = [
        '"""Request schemas compiled from Square\'s OpenAPI spec.',
        "",
        "GENERATED by tools/gen_schemas.py; do not edit by hand. Regenerate with",
        "``python tools/gen_schemas.py`` (tests/tools/test_gen_schemas.py checks it is current).",
        '"""',
        "",
        "# fmt: off",
        f"SPEC_SQUARE_VERSION = {_flat(version)}",
        "",
        f"ROOTS = {_fmt(list(ROOTS), 0, len('ROOTS = '))}",
        "",
        f"SCHEMAS = {_fmt(schemas, 0, len('SCHEMAS = '))}",
        "",
        f"QUERY_PARAMS = {_fmt(query, 0, len('QUERY_PARAMS = '))}",
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help="api.json path")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output module path")
    args = parser.parse_args(argv)
    with open(args.spec, encoding="utf-8") as fh:
        spec = json.load(fh)
    text = render(spec)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode())} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

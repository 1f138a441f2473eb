#!/usr/bin/env python3
"""Write the part of Square's OpenAPI spec that the simulator implements, for the fuzz suite.

Reads Square's ``api.json`` and writes ``tests/fuzz/square_subset.json``: every operation whose
method and path the simulator serves (found from the ``APIRouter`` of each module under
``simulator/routes``), with the component schemas those operations reach, and nothing else.
Each operation also documents the 4xx statuses in ERROR_STATUSES with its own response
schema (Square's response objects carry ``errors``). Security requirements are dropped (the fuzz tests send a bearer token themselves) and so are
the ``servers`` list (the tests run in-process against the ASGI app) and the schemas' prose.

The output is deterministic (sorted keys, fixed indentation) so the committed file can be
compared byte for byte with a regeneration (tests/fuzz/test_subset_current.py).

Usage: ``python tools/gen_fuzz_spec.py [API_JSON] [--out PATH] [--check]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any, Iterable

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "square-api" / "api.json"
DEFAULT_OUT = REPO_ROOT / "tests" / "fuzz" / "square_subset.json"
METHODS = ("get", "post", "put", "delete", "patch")

#: Square's spec documents only each operation's 200, yet every Square response object carries
#: an ``errors`` list and Square answers errors with 4xx statuses (its docs' "Handling errors"
#: page). The subset documents the 4xx statuses the simulator uses, with the operation's own
#: response schema, so the fuzz suite can check error bodies against the spec like 2xx ones.
ERROR_STATUSES = {
    "400": "Bad request: the errors list says which field and rule.",
    "401": "Missing or malformed access token (AUTHENTICATION_ERROR).",
    "404": "Unknown object id or endpoint (NOT_FOUND).",
    "413": "Request body too large (REQUEST_ENTITY_TOO_LARGE).",
}
_PARAM = re.compile(r"\{[^}]+\}")


def served_operations() -> set[tuple[str, str]]:
    """(method, path template with ``{}`` for parameters) of every /v2 route the simulator has."""
    sys.path.insert(0, str(REPO_ROOT))
    sys.path.insert(0, str(REPO_ROOT / "src"))
    import simulator.routes as package

    out: set[tuple[str, str]] = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"simulator.routes.{info.name}")
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", ()):
            path = getattr(route, "path", "")
            if not path.startswith("/v2/"):
                continue
            for method in getattr(route, "methods", ()):
                out.add((method.lower(), _PARAM.sub("{}", path)))
    return out


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def subset(spec: dict[str, Any], served: set[tuple[str, str]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        key = _PARAM.sub("{}", path)
        kept = {}
        for method, op in item.items():
            if method in METHODS and (method, key) in served:
                op = {k: v for k, v in op.items() if k != "security"}
                ok = op["responses"]["200"]
                op["responses"] = {**op["responses"], **{
                    status: {"description": text, "content": ok["content"]}
                    for status, text in ERROR_STATUSES.items()}}
                kept[method] = op
        if kept:
            if "parameters" in item:
                kept["parameters"] = item["parameters"]
            paths[path] = kept
    missing = served - {(m, _PARAM.sub("{}", p)) for p, item in paths.items() for m in item}
    if missing:
        raise SystemExit(f"routes without a spec operation: {sorted(missing)}")
    schemas = spec["components"]["schemas"]
    wanted: set[str] = set()
    dangling: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        ref = pending.pop()
        prefix = "#/components/schemas/"
        if not ref.startswith(prefix):
            raise SystemExit(f"unsupported $ref {ref!r}")
        name = ref[len(prefix):]
        if name not in schemas:
            dangling.add(ref)  # Square's spec names a few schemas it never defines
        elif name not in wanted:
            wanted.add(name)
            pending.extend(_refs(schemas[name]))
    if dangling:
        paths = _unref(paths, dangling)
        schemas = {name: _unref(schemas[name], dangling) for name in wanted}
    return {
        "openapi": spec["openapi"],
        "info": {"title": "Square API (operations the orderfsm simulator implements)",
                 "version": spec["info"]["version"]},
        "paths": paths,
        "components": {"schemas": {name: _without_prose(schemas[name])
                                   for name in sorted(wanted)}},
    }


def _unref(node: Any, dangling: set[str]) -> Any:
    """``node`` with every ``$ref`` to an undefined schema replaced by a plain string schema,
    as tools/gen_schemas.py reads it (CatalogModifierToggleOverrideType is an enum by name)."""
    if isinstance(node, dict):
        if node.get("$ref") in dangling:
            return {**{k: v for k, v in node.items() if k != "$ref"}, "type": "string"}
        return {k: _unref(v, dangling) for k, v in node.items()}
    if isinstance(node, list):
        return [_unref(v, dangling) for v in node]
    return node


def _without_prose(node: Any) -> Any:
    """A schema without its string ``description``s (properties named "description" are dicts
    and stay): the fuzzer reads types and limits, not prose."""
    if isinstance(node, dict):
        return {k: _without_prose(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [_without_prose(v) for v in node]
    return node


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed file differs from a regeneration")
    args = parser.parse_args(argv)
    text = render(subset(json.loads(args.spec.read_text()), served_operations()))
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run python tools/gen_fuzz_spec.py")
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Render a diverging sequence as a standalone Python script that uses the official SDK.

The script replays the calls against the server and ends with assertions of what orderfsm
expects at the diverging step: against the server that diverged it fails with an
AssertionError naming the rule; against a conforming server it prints that all is well.
"""

from __future__ import annotations

from typing import Any

from ._calls import Call, Token, source
from ._session import SWEEP, Divergence, Mismatch, Step
from ._sides import FIELDS

__all__ = ["render_snippet"]

_HELPERS = '''\
RO = {{"max_retries": 0}}
RUN = uuid.uuid4().hex[:12]
client = Square(token=TOKEN, base_url=BASE_URL)
first_token = {{}}


def key(name=None):
    """A fresh idempotency key; a named one can be used again by a later call."""
    return f"{{RUN}}-{{name}}" if name else str(uuid.uuid4())


def call(method, *args, auth=None, **kwargs):
    """Call the SDK; a rejection is returned (as the ApiError), not raised. ``auth`` replaces
    the Authorization header."""
    options = RO if auth is None else {{**RO, "additional_headers": {{"Authorization": auth}}}}
    try:
        return method(*args, request_options=options, **kwargs)
    except ApiError as exc:
        return exc


def obj(res, name):
    """The object a call returned (a declined payment comes back inside the error body)."""
    if isinstance(res, ApiError):
        return SimpleNamespace(**res.body[name])
    return getattr(res, name)


def read(resource, object_id):
    try:
        return getattr(getattr(client, resource + "s").get(object_id, request_options=RO), resource)
    except ApiError:
        return None


def token(payment_id):
    return read("payment", payment_id).version_token


def version(order_id):
    return read("order", order_id).version


def control(path, body):
    response = httpx.post(BASE_URL + path, json=body,
                          headers={{"Authorization": "Bearer " + TOKEN}})
    response.raise_for_status()
    return response.json()


def advance_clock(seconds):
    return control("/_sim/clock/advance", {{"seconds": seconds}})


def finish_refund(refund_id, outcome):
    """Have the processor settle, reject or fail a refund now (a rejection is returned)."""
    response = httpx.post(f"{{BASE_URL}}/_sim/refunds/{{refund_id}}/{{outcome}}", json={{}},
                          headers={{"Authorization": "Bearer " + TOKEN}})
    if response.status_code != 200:
        return ApiError(status_code=response.status_code, body=response.json())
    return response.json()


def expect_accepted(res):
    assert not isinstance(res, ApiError), (
        f"{{RULE}}: orderfsm accepts this call; the server answered "
        f"{{res.status_code}} {{res.body}}")


def expect_error(res, status, category, code, field):
    assert isinstance(res, ApiError), (
        f"{{RULE}}: orderfsm rejects this call with {{status}} {{category}}/{{code}} "
        f"({{field}}); the server accepted it")
    error = res.errors[0]
    got = (res.status_code, error.category, error.code, error.field)
    assert got == (status, category, code, field), (
        f"{{RULE}}: orderfsm answers {{(status, category, code, field)}}, the server {{got}}")


def expect_value(what, actual, expected):
    assert actual == expected, (
        f"{{RULE}}: {{what}} is {{actual!r}}; orderfsm expects {{expected!r}}")
'''


def _call_source(call: Call) -> str:
    if call.resource == "sim":
        args = ", ".join(source(a) for a in call.args)
        return f"{call.method}({args})"
    parts = [f"client.{call.resource}.{call.method}"]
    parts += [source(a) for a in call.args]
    parts += [f"{k}={source(v)}" for k, v in call.kwargs.items()]
    if call.auth is not None:
        parts.append(f"auth={call.auth!r}")
    return "call(" + ", ".join(parts) + ")"


def _expected_literal(m: Mismatch) -> str:
    _, is_ref = FIELDS[m.kind or "order"].get(m.field or "", ("", False))
    if is_ref and isinstance(m.expected, str) and m.expected != "?":
        return m.expected
    return repr(m.expected)


def _initial_tokens(steps: list[Step]) -> set[str]:
    """Payments whose creation-time version token a later call sends."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Token) and value.which == "initial":
            found.add(value.label)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    for st in steps:
        walk(st.call.args)
        walk(dict(st.call.kwargs))
    return found


def _step_lines(n: int, st: Step, last: bool, rule: str, tokens: set[str]) -> list[str]:
    lines = [f"# step {n}" + (f": diverges ({rule})" if last else "")]
    if st.call.method != SWEEP:
        lines.append(f"res = {_call_source(st.call)}")
        result = st.call.result_name
        for p in st.call.produces:
            if p.label in st.produced:
                lines.append(f"{p.label} = obj(res, {result!r}).{p.attr}")
                if p.label in tokens:
                    lines.append(f"first_token[{p.label}] = "
                                 f"getattr(obj(res, {result!r}), 'version_token', None)")
    if not last:
        return lines
    for m in st.mismatches:
        if m.what in ("outcome", "error"):
            expected = m.expected
            if isinstance(expected, dict) and expected.get("accepted"):
                lines.append("expect_accepted(res)")
            else:
                if isinstance(expected, dict):
                    expected = (expected["status"], expected["category"], expected["code"],
                                expected["field"])
                args = ", ".join(repr(v) for v in expected)
                lines.append(f"expect_error(res, {args})")
    for m in st.mismatches:
        if m.what == "response":
            lines.append(f"expect_value({'the response ' + str(m.kind)!r}, "
                         f"getattr(res, {m.kind!r}, None) is not None, {m.expected!r})")
    reads: dict[str, str] = {}
    for m in st.mismatches:
        if m.what != "field" or m.label is None or m.kind is None:
            continue
        if m.field == "id":
            lines.append(f"expect_value({m.label + ' answers the replay'!r}, "
                         f"obj(res, {st.call.result_name!r}).id == {m.label}, True)")
            continue
        if m.label not in reads:
            var = f"{m.kind}_{m.label}"
            reads[m.label] = var
            lines.append(f"{var} = read({m.kind!r}, {m.label})")
        var = reads[m.label]
        if m.field == "exists":
            lines.append(f"expect_value({m.label + ' exists'!r}, {var} is not None, "
                         f"{m.expected == 'present'!r})")
            continue
        expr = FIELDS[m.kind][m.field][0]
        expr = _bind(expr, var)
        lines.append(f"expect_value({m.label + '.' + m.field!r}, {expr}, {_expected_literal(m)})")
    return lines


def _bind(expr: str, var: str) -> str:
    """Replace the field expression's ``x`` with the variable holding the object."""
    import re

    return re.sub(r"\bx\b", var, expr)


def render_snippet(div: Divergence, *, base_url: str, reset: bool) -> str:
    """A runnable script reproducing ``div`` against ``base_url``."""
    steps = div.steps
    summary = "; ".join(m.describe() for m in div.mismatches)
    head = [
        f'"""Reproduces a divergence found by `orderfsm conform` (rule {div.rule_id}).',
        "",
        f"At step {len(steps)}: {summary}.",
        "",
        "Runs against the server with the official SDK and fails with an AssertionError while the",
        "server still diverges. Set SQUARE_TOKEN to use a real account's access token.",
        '"""',
        "import os",
        "import uuid",
        "from types import SimpleNamespace",
        "",
        "import httpx",
        "from square import Square",
        "from square.core.api_error import ApiError",
        "",
        f"BASE_URL = {base_url!r}",
        'TOKEN = os.environ.get("SQUARE_TOKEN") or "conform-" + uuid.uuid4().hex',
        f"RULE = {div.rule_id!r}",
    ]
    body: list[str] = []
    if reset:
        body.append('control("/_sim/reset", {})')
    body.append('LOCATION = client.locations.get("main", request_options=RO).location.id')
    tokens = _initial_tokens(steps)
    for n, st in enumerate(steps, start=1):
        body.append("")
        body += _step_lines(n, st, n == len(steps), div.rule_id, tokens)
    body += ["", 'print("no divergence: the server agrees with orderfsm on every step")']
    return "\n".join(head) + "\n" + _HELPERS.format() + "\n\n" + "\n".join(body) + "\n"


def describe_steps(steps: list[Step]) -> list[dict[str, Any]]:
    out = []
    for n, st in enumerate(steps, start=1):
        out.append({
            "step": n,
            "call": "compare every object" if st.call.method == SWEEP else st.call.describe(),
            "oracle": st.oracle,
            "server": st.server,
            "created": list(st.produced),
        })
    return out

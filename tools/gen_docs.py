#!/usr/bin/env python3
"""Regenerate the generated parts of the documentation.

* ``docs/rules.md``: the whole file, from the rule catalog (``orderfsm.reference.rules_markdown``).
* Code blocks included from files: a line ``<!-- snippet: docs/snippets/NAME.py -->`` followed by
  a fenced code block; the block's body is replaced by the file's contents.
* Generated sections: ``<!-- generated: NAME -->`` ... ``<!-- end generated -->``; the text in
  between is replaced by ``SECTIONS[NAME]()`` (tables built from the code: the variants, the
  simulator's endpoints).

Applies to README.md and every docs/*.md. ``--check`` writes nothing and exits 1 when a file is
out of date, listing it.

Usage: ``python tools/gen_docs.py [--check]``
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
RULES_MD = REPO / "docs" / "rules.md"

SNIPPET_RE = re.compile(
    r"(?P<head><!-- snippet: (?P<path>\S+) -->\n```[\w-]*\n)(?P<body>.*?)(?P<tail>^```$)",
    re.S | re.M)
GENERATED_RE = re.compile(
    r"(?P<head><!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<tail><!-- end generated -->)",
    re.S)


# ------------------------------------------------------------------------------ sections


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def variants_table() -> str:
    """Every rule variant: name, rule, values (default first) and what each one means."""
    from orderfsm.rules import VARIANTS

    lines = ["| variant | rule | value | behaviour |", "| --- | --- | --- | --- |"]
    for name, (rule, variant) in VARIANTS.items():
        values = sorted(variant.values, key=lambda v: v != variant.default)
        for i, value in enumerate(values):
            default = " (default)" if value == variant.default else ""
            first = (f"`{name}`", f"[`{rule.id}`](rules.md#{_anchor(rule.id)})") if i == 0 \
                else ("", "")
            lines.append(f"| {first[0]} | {first[1]} | `{value}`{default} | "
                         f"{_cell(variant.values[value])} |")
    return "\n".join(lines) + "\n"


def _anchor(rule_id: str) -> str:
    return "".join(ch for ch in rule_id.lower() if ch.isalnum() or ch in "-_")


# Square endpoint -> the squareup SDK call that reaches it.
SDK_CALLS = {
    ("GET", "/v2/locations"): "locations.list()",
    ("GET", "/v2/locations/{location_id}"): "locations.get(location_id)",
    ("POST", "/v2/orders"): "orders.create(...)",
    ("POST", "/v2/orders/batch-retrieve"): "orders.batch_get(...)",
    ("POST", "/v2/orders/calculate"): "orders.calculate(...)",
    ("POST", "/v2/orders/clone"): "orders.clone(...)",
    ("POST", "/v2/orders/search"): "orders.search(...)",
    ("GET", "/v2/orders/{order_id}"): "orders.get(order_id)",
    ("PUT", "/v2/orders/{order_id}"): "orders.update(order_id, ...)",
    ("POST", "/v2/orders/{order_id}/pay"): "orders.pay(order_id, ...)",
    ("GET", "/v2/payments"): "payments.list(...)",
    ("POST", "/v2/payments"): "payments.create(...)",
    ("POST", "/v2/payments/cancel"): "payments.cancel_by_idempotency_key(...)",
    ("GET", "/v2/payments/{payment_id}"): "payments.get(payment_id)",
    ("PUT", "/v2/payments/{payment_id}"): "payments.update(payment_id, ...)",
    ("POST", "/v2/payments/{payment_id}/complete"): "payments.complete(payment_id)",
    ("POST", "/v2/payments/{payment_id}/cancel"): "payments.cancel(payment_id)",
    ("GET", "/v2/refunds"): "refunds.list(...)",
    ("POST", "/v2/refunds"): "refunds.refund_payment(...)",
    ("GET", "/v2/refunds/{refund_id}"): "refunds.get(refund_id)",
    ("POST", "/v2/catalog/object"): "catalog.object.upsert(...)",
    ("POST", "/v2/catalog/batch-upsert"): "catalog.batch_upsert(...)",
    ("GET", "/v2/catalog/object/{object_id}"): "catalog.object.get(object_id, ...)",
    ("DELETE", "/v2/catalog/object/{object_id}"): "catalog.object.delete(object_id)",
    ("POST", "/v2/catalog/batch-retrieve"): "catalog.batch_get(...)",
    ("POST", "/v2/catalog/batch-delete"): "catalog.batch_delete(...)",
    ("GET", "/v2/catalog/list"): "catalog.list(...)",
    ("POST", "/v2/catalog/search"): "catalog.search(...)",
    ("POST", "/v2/catalog/search-catalog-items"): "catalog.search_items(...)",
    ("POST", "/v2/catalog/update-item-taxes"): "catalog.update_item_taxes(...)",
    ("POST", "/v2/catalog/update-item-modifier-lists"): "catalog.update_item_modifier_lists(...)",
    ("GET", "/v2/catalog/info"): "catalog.info()",
    ("GET", "/v2/webhooks/event-types"): "webhooks.event_types.list()",
    ("GET", "/v2/webhooks/subscriptions"): "webhooks.subscriptions.list()",
    ("POST", "/v2/webhooks/subscriptions"): "webhooks.subscriptions.create(...)",
    ("GET", "/v2/webhooks/subscriptions/{subscription_id}"):
        "webhooks.subscriptions.get(subscription_id)",
    ("PUT", "/v2/webhooks/subscriptions/{subscription_id}"):
        "webhooks.subscriptions.update(subscription_id, ...)",
    ("DELETE", "/v2/webhooks/subscriptions/{subscription_id}"):
        "webhooks.subscriptions.delete(subscription_id)",
    ("POST", "/v2/webhooks/subscriptions/{subscription_id}/signature-key"):
        "webhooks.subscriptions.update_signature_key(subscription_id, ...)",
    ("POST", "/v2/webhooks/subscriptions/{subscription_id}/test"):
        "webhooks.subscriptions.test(subscription_id, ...)",
}


def simulator_routes() -> list[tuple[str, str, str, str]]:
    """(method, path, summary, description) of every route of a fresh simulator app, in the
    order the app declares them."""
    from simulator import create_app

    out = []
    for path, operations in create_app().openapi()["paths"].items():
        for method, op in operations.items():
            out.append((method.upper(), path, op.get("summary") or "",
                        op.get("description") or ""))
    return out


def square_endpoints_table() -> str:
    lines = ["| method | path | operation | SDK call (`client.`...) |",
             "| --- | --- | --- | --- |"]
    for method, path, summary, _ in simulator_routes():
        if path.startswith("/_sim"):
            continue
        call = SDK_CALLS.get((method, path), "")
        lines.append(f"| `{method}` | `{path}` | {summary} | {f'`{call}`' if call else ''} |")
    return "\n".join(lines) + "\n"


# Control endpoint -> what it does (routes missing here fall back to their docstring).
CONTROL_DOCS = {
    ("GET", "/_sim/clock"): "The merchant's virtual time.",
    ("POST", "/_sim/clock/advance"): "Move the clock `{\"seconds\": N}` forward, firing what "
                                      "falls due on the way.",
    ("POST", "/_sim/reset"): "Replace the merchant with a fresh one.",
    ("GET", "/_sim/state"): "The merchant's whole state as a JSON snapshot.",
    ("POST", "/_sim/state"): "Restore a snapshot taken with `GET /_sim/state`.",
    ("GET", "/_sim/variants"): "The merchant's rule variants.",
    ("POST", "/_sim/variants"): "Switch variants for this merchant, "
                                "`{\"cancel_after_payment\": \"never\"}`.",
    ("POST", "/_sim/refunds/{refund_id}/{outcome}"): "Decide a PENDING refund now: `settle`, "
                                                     "`reject` or `fail`.",
    ("GET", "/_sim/ui"): "The [inspector](inspector.md) page (no token needed to load it).",
    ("GET", "/_sim/ui/{name}"): "The inspector's script and stylesheet.",
    ("GET", "/_sim/overview"): "Clock, record counts and webhook delivery counts.",
    ("GET", "/_sim/orders"): "Orders newest first: `offset`, `limit` (up to 200), `state`, "
                             "`q` (part of an id or reference id).",
    ("GET", "/_sim/orders/{order_id}"): "One order with its payments, refunds, return orders "
                                        "and each record's path through its lifecycle.",
    ("GET", "/_sim/lifecycles"): "The lifecycle tables as graphs (the `orderfsm diagram` edges).",
    ("GET", "/_sim/rejections"): "Rejected requests, newest first, with rule, explanation and "
                                 "request body (the last 1000).",
    ("GET", "/_sim/outbox"): "The newest webhook events with their delivery attempts.",
    ("GET", "/_sim/coverage"): "The merchant's [rule coverage](testing.md#rule-coverage).",
    ("GET", "/_sim/events"): "Recorded webhook events with their deliveries; filters `type`, "
                             "`object_id`, `status`, `subscription_id`.",
    ("GET", "/_sim/events/{event_id}"): "One recorded event.",
    ("POST", "/_sim/events/{event_id}/redeliver"): "Send an event to its subscribers again.",
    ("POST", "/_sim/webhooks/flush"): "Wait until every delivery due on the merchant's clock "
                                      "has been attempted.",
    ("GET", "/_sim/webhooks"): "Counts of events and deliveries by status.",
    ("GET", "/_sim/webhooks/subscriptions/{subscription_id}/faults"):
        "A subscription's injected delivery faults.",
    ("POST", "/_sim/webhooks/subscriptions/{subscription_id}/faults"):
        "Inject faults: `duplicate`, `drop`, `reorder`, `delay_seconds`.",
    ("GET", "/_sim/webhooks/settings"): "Delivery settings (receiver timeout).",
    ("POST", "/_sim/webhooks/settings"): "Change the receiver timeout `{\"timeout_seconds\": N}`.",
}


def control_endpoints_table() -> str:
    lines = ["| method | path | what it does |", "| --- | --- | --- |"]
    for method, path, summary, description in simulator_routes():
        if path.startswith("/_sim"):
            text = CONTROL_DOCS.get((method, path)) or description or summary
            lines.append(f"| `{method}` | `{path}` | {_cell(text)} |")
    return "\n".join(lines) + "\n"


# What each kind of sandbox token is, for the table's first column.
_TOKEN_KINDS = (("cnon:gift-card-nonce", "gift card nonce"), ("cnon:", "card nonce"),
                ("ccof:", "card on file"), ("bnon:", "ACH bank nonce"))


def sandbox_test_values_table() -> str:
    """Every test source_id of Square's sandbox payments page, with what the simulator does."""
    from orderfsm.engine import SANDBOX_TOKENS
    from orderfsm.rules import CATALOG

    lines = ["| `source_id` | kind | outcome | rule | error code |",
             "| --- | --- | --- | --- | --- |"]
    for token, rule_id in SANDBOX_TOKENS.items():
        kind = next(k for prefix, k in _TOKEN_KINDS if token.startswith(prefix))
        if token.startswith("bnon:"):
            outcome = "`PENDING`, then `COMPLETED`" if rule_id is None else \
                "`PENDING`, then `FAILED`"
            code = ""
        elif rule_id is None:
            outcome = "accepted: `COMPLETED` (`APPROVED` with `autocomplete=false`)"
            code = ""
        else:
            rule = CATALOG[rule_id]
            code = f"`{rule.error.code}`" if rule.error else ""
            if rule_id == "payment.card_token_used":
                outcome = "refused, nothing recorded"
            elif rule_id == "payment.verification_required":
                outcome = "declined (`FAILED`) without `verification_token`; accepted with one"
            else:
                outcome = "declined: recorded `FAILED`, returned beside the error"
        link = f"[`{rule_id}`](rules.md#{_anchor(rule_id)})" if rule_id else ""
        lines.append(f"| `{token}` | {kind} | {outcome} | {link} | {code} |")
    for token, rule_id in (("any other `cnon:` value", "payment.card_nonce_not_found"),
                           ("any other `ccof:` value", "payment.card_on_file_not_found")):
        rule = CATALOG[rule_id]
        lines.append(f"| {token} | | not found, nothing recorded | "
                     f"[`{rule_id}`](rules.md#{_anchor(rule_id)}) | `{rule.error.code}` |")
    return "\n".join(lines) + "\n"


SECTIONS: dict[str, Callable[[], str]] = {
    "variants": variants_table,
    "sandbox-test-values": sandbox_test_values_table,
    "square-endpoints": square_endpoints_table,
    "control-endpoints": control_endpoints_table,
}


# ------------------------------------------------------------------------------ files


def doc_files() -> list[Path]:
    """README.md and docs/*.md, except the wholly generated rules.md."""
    docs = sorted(p for p in (REPO / "docs").glob("*.md") if p != RULES_MD)
    return [REPO / "README.md", *docs]


def render(text: str, *, where: str = "") -> str:
    """``text`` with its snippet blocks and generated sections brought up to date."""
    def snippet(m: re.Match[str]) -> str:
        path = REPO / m["path"]
        if not path.is_file():
            raise FileNotFoundError(f"{where}: snippet file {m['path']} does not exist")
        body = path.read_text()
        if not body.endswith("\n"):
            body += "\n"
        return m["head"] + body + m["tail"]

    def generated(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in SECTIONS:
            raise KeyError(f"{where}: unknown generated section {name!r}")
        return m["head"] + SECTIONS[name]() + m["tail"]

    text = SNIPPET_RE.sub(snippet, text)
    return GENERATED_RE.sub(generated, text)


def expected() -> dict[Path, str]:
    """Every generated file's path and the contents it should have."""
    from orderfsm.reference import rules_markdown

    out = {RULES_MD: rules_markdown()}
    for path in doc_files():
        if path.is_file():
            out[path] = render(path.read_text(), where=str(path.relative_to(REPO)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected().items():
        current = path.read_text() if path.is_file() else None
        if current == text:
            continue
        stale.append(path.relative_to(REPO))
        if not args.check:
            path.write_text(text)
    verb = "out of date" if args.check else "updated"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO))
    sys.exit(main())

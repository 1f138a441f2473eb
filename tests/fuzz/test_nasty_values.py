"""Hostile values in every field of every implemented operation.

For each operation the simulator serves (the committed spec subset), hypothesis picks one field
of its request (a body field at any depth up to MAX_DEPTH, an unknown extra field, a query
parameter or a path id) and puts a hostile value there, inside an otherwise valid request:
NaN and infinities (as JSON literals and as strings), exponents, huge and negative integers,
int64 and int32 edges, integers of thousands of digits, unicode and NUL, lone surrogates,
deep nesting, timestamps at the calendar's ends and durations beyond range.

Properties, after every case: no 5xx, and the merchant's reads (its orders, payments, refunds,
locations and webhook subscriptions) all still answer 200.

The default run makes NASTY_EXAMPLES cases; ``pytest -m fuzz_long`` makes NASTY_LONG_EXAMPLES.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from simulator import create_app
from simulator._schemas import SCHEMAS
from simulator.store import SimulatorConfig

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated")

SUBSET = Path(__file__).with_name("square_subset.json")
TOKEN = "nasty-token"
MAX_DEPTH = 6
NASTY_EXAMPLES = int(os.environ.get("ORDERFSM_NASTY_EXAMPLES", "300"))
NASTY_LONG_EXAMPLES = int(os.environ.get("ORDERFSM_NASTY_LONG_EXAMPLES", "20000"))


class Raw(str):
    """JSON text spliced into the body as is (NaN, 1e400, 5000-digit integers, deep nests)."""


NASTY: list[Any] = [
    # numbers as JSON literals Python's json would accept or choke on
    Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("-1e400"), Raw("1e-400"),
    Raw("9" * 5000), Raw("-" + "9" * 4301), Raw("1" + "0" * 4300), Raw("[" * 5000 + "]" * 5000),
    Raw('{"a":' * 60 + "1" + "}" * 60), Raw("[" * 40 + "]" * 40),
    # integers at and past the edges
    2**64 + 5, 2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**31, 2**31 - 1, -(2**31) - 1,
    -1, 0, 1, 10**30,
    # floats
    1.5, -0.0, 1e308, -1e308, 5e-324,
    # decimal strings
    "NaN", "sNaN", "Infinity", "-Infinity", "1e400", "1e30", "1E3", "-0", "0x1A", "1_000",
    "１２", "٣", " 7", "7 ", "+1", ".5", "5.", "-", "1.123456789012345",
    # strings
    "", " ", "\u0000", "a\u0000b", "\ud800", "\udfff", "\u202e\u0645", "😀" * 300,
    "x" * 70_000, "%00", "../../etc/passwd", "<script>", "' OR 1=1 --", "\r\nX-Injected: 1",
    # time
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999Z",
    "0000-00-00T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-05T15:00:00",
    "P99999999999D", "PT" + "9" * 400 + "S", "P1.2.3D", "PT-1S", "P", "PT", "P0D", "P1Y",
    # shapes
    None, True, False, {}, [], [None], [[]], {"": None}, {"\u0000": 1},
]
NASTY_PATH_IDS = ["", " ", "%00", "..", "%2e%2e", "x" * 5000, "😀", "%F0%9F%98%80", "NaN",
                  "9" * 5000, "%ud800", "a%2Fb", "null"]


def usd(amount: Any) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def _operations() -> list[tuple[str, str, str | None, list[str]]]:
    """(METHOD, path, request schema or None, query parameter names) of every operation."""
    spec = json.loads(SUBSET.read_text())
    out = []
    for path, item in sorted(spec["paths"].items()):
        for method, op in sorted(item.items()):
            if method == "parameters":
                continue
            ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref"))
            body = ref.rsplit("/", 1)[-1] if ref else None
            query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            out.append((method.upper(), path, body, query))
    return out


OPERATIONS = _operations()


def field_paths(name: str, depth: int = 0) -> Iterator[tuple]:
    """Every field path of request schema ``name`` (list index 0, map key "k"), to MAX_DEPTH,
    plus an unknown field at every object level."""
    yield ("x_unknown",)
    if depth >= MAX_DEPTH:
        return
    for pname, spec in SCHEMAS[name]["properties"].items():
        yield (pname,)
        sub, tail = spec, ()
        if spec["type"] == "array":
            sub, tail = spec["items"], (0,)
        elif spec["type"] == "object" and "additionalProperties" in spec:
            sub, tail = spec["additionalProperties"], ("k",)
        if tail:
            yield (pname, *tail)
        if "$ref" in sub:
            for rest in field_paths(sub["$ref"], depth + 1):
                yield (pname, *tail, *rest)


PATHS = {body: sorted(set(field_paths(body)), key=repr)
         for _, _, body, _ in OPERATIONS if body is not None}


class Merchant:
    """A simulator with one merchant holding an order, payments, a refund and a subscription
    (so path ids can name real objects), and the reads that must keep answering 200."""

    def __init__(self) -> None:
        self.app = create_app(SimulatorConfig(log_requests=False))
        self.http = TestClient(self.app, headers={"Authorization": f"Bearer {TOKEN}"},
                               raise_server_exceptions=False)
        self.n = 0
        order = self.post("/v2/orders", {"idempotency_key": self.key(), "order": ORDER})["order"]
        approved = self.post("/v2/payments", {
            "idempotency_key": self.key(), "source_id": "cnon:card-nonce-ok",
            "amount_money": usd(100), "autocomplete": False})["payment"]
        done = self.post("/v2/payments", {
            "idempotency_key": self.key(), "source_id": "cnon:card-nonce-ok",
            "amount_money": usd(900)})["payment"]
        refund = self.post("/v2/refunds", {
            "idempotency_key": self.key(), "payment_id": done["id"],
            "amount_money": usd(100)})["refund"]
        sub = self.post("/v2/webhooks/subscriptions", {"idempotency_key": self.key(),
                                                       "subscription": SUBSCRIPTION})
        item = self.post("/v2/catalog/object", {"idempotency_key": self.key(),
                                                "object": CATALOG_ITEM})["catalog_object"]
        self.ids = {"order_id": order["id"], "payment_id": approved["id"],
                    "object_id": item["id"],
                    "refund_id": refund["id"], "location_id": order["location_id"],
                    "subscription_id": sub["subscription"]["id"], "completed": done["id"]}

    def key(self) -> str:
        self.n += 1
        return f"nasty-{self.n}"

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def reads_ok(self) -> None:
        ids = self.ids
        for path in ("/v2/locations", "/v2/payments", "/v2/refunds", "/v2/catalog/list",
                     "/v2/webhooks/subscriptions", f"/v2/orders/{ids['order_id']}",
                     f"/v2/payments/{ids['payment_id']}", f"/v2/refunds/{ids['refund_id']}"):
            r = self.http.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        # Every order renders in the search page (newest first); the newest few one by one too.
        r = self.http.post("/v2/orders/search", json={"location_ids": ["main"], "limit": 1000})
        assert r.status_code == 200, r.text[:300]
        for o in r.json().get("orders", [])[:3]:
            assert self.http.get(f"/v2/orders/{o['id']}").status_code == 200


ORDER = {
    "location_id": "main",
    "reference_id": "ref",
    "line_items": [{"uid": "l1", "name": "Tea", "quantity": "2", "base_price_money": usd(500),
                    "note": "hot", "applied_taxes": [{"tax_uid": "t1"}],
                    "applied_discounts": [{"discount_uid": "d1"}],
                    "modifiers": [{"name": "milk", "base_price_money": usd(50)}]}],
    "taxes": [{"uid": "t1", "name": "VAT", "percentage": "7.25", "scope": "LINE_ITEM"}],
    "discounts": [{"uid": "d1", "name": "Promo", "percentage": "10", "scope": "LINE_ITEM"}],
    "service_charges": [{"uid": "s1", "name": "Service", "percentage": "5",
                         "calculation_phase": "SUBTOTAL_PHASE"}],
    "fulfillments": [{"type": "PICKUP", "pickup_details": {
        "recipient": {"display_name": "Sam"}, "pickup_at": "2026-01-06T12:00:00Z"}}],
    "metadata": {"k": "v"},
}
CATALOG_ITEM = {"type": "ITEM", "id": "#tea", "item_data": {"name": "Tea", "variations": [
    {"type": "ITEM_VARIATION", "id": "#tea-regular", "item_variation_data": {
        "name": "Regular", "pricing_type": "FIXED_PRICING", "price_money": usd(300)}}]}}
SUBSCRIPTION = {"name": "hook", "event_types": ["payment.created"],
                "notification_url": "http://127.0.0.1:9/hook", "api_version": "2025-08-20"}


def template(body: str, m: Merchant) -> dict[str, Any]:
    """A valid request for ``body`` (so a hostile value is not stopped by a missing field)."""
    ids, key = m.ids, m.key()
    version = m.http.get(f"/v2/orders/{ids['order_id']}").json().get("order", {}).get("version")
    return json.loads(json.dumps({
        "CreateOrderRequest": {"idempotency_key": key, "order": ORDER},
        "CalculateOrderRequest": {"order": ORDER},
        "UpdateOrderRequest": {"idempotency_key": key, "order": {
            "version": version, "note": "n", "line_items": ORDER["line_items"]}},
        "PayOrderRequest": {"idempotency_key": key, "order_version": version,
                            "payment_ids": [ids["payment_id"]]},
        "BatchRetrieveOrdersRequest": {"order_ids": [ids["order_id"]], "location_id": "main"},
        "SearchOrdersRequest": {"location_ids": ["main"], "limit": 10, "return_entries": False,
                                "query": {"filter": {"date_time_filter": {"created_at": {
                                    "start_at": "2026-01-01T00:00:00Z"}}},
                                    "sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"}}},
        "CloneOrderRequest": {"order_id": ids["order_id"], "version": version,
                              "idempotency_key": key},
        "CreatePaymentRequest": {"idempotency_key": key, "source_id": "cnon:card-nonce-ok",
                                 "amount_money": usd(100), "tip_money": usd(5),
                                 "autocomplete": False, "delay_duration": "PT1H",
                                 "delay_action": "CANCEL", "note": "n", "reference_id": "r",
                                 "buyer_email_address": "a@example.com"},
        "UpdatePaymentRequest": {"idempotency_key": key, "payment": {
            "amount_money": usd(100), "tip_money": usd(10)}},
        "CompletePaymentRequest": {},
        "CancelPaymentByIdempotencyKeyRequest": {"idempotency_key": key},
        "RefundPaymentRequest": {"idempotency_key": key, "payment_id": ids["completed"],
                                 "amount_money": usd(10), "reason": "r"},
        "CreateWebhookSubscriptionRequest": {"idempotency_key": key,
                                             "subscription": SUBSCRIPTION},
        "UpdateWebhookSubscriptionRequest": {"subscription": {"name": "n", "enabled": True}},
        "UpdateWebhookSubscriptionSignatureKeyRequest": {"idempotency_key": key},
        "TestWebhookSubscriptionRequest": {"event_type": "payment.created"},
        "UpsertCatalogObjectRequest": {"idempotency_key": key, "object": CATALOG_ITEM},
        "BatchUpsertCatalogObjectsRequest": {"idempotency_key": key,
                                             "batches": [{"objects": [CATALOG_ITEM]}]},
        "BatchRetrieveCatalogObjectsRequest": {"object_ids": [ids["object_id"]],
                                               "include_related_objects": True},
        "BatchDeleteCatalogObjectsRequest": {"object_ids": ["NO-SUCH-OBJECT"]},
        "SearchCatalogObjectsRequest": {"object_types": ["ITEM"], "limit": 10, "query": {
            "prefix_query": {"attribute_name": "name", "attribute_prefix": "T"}}},
        "SearchCatalogItemsRequest": {"text_filter": "tea", "limit": 10},
        "UpdateItemModifierListsRequest": {"item_ids": [ids["object_id"]],
                                           "modifier_lists_to_disable": ["NO-SUCH-LIST"]},
        "UpdateItemTaxesRequest": {"item_ids": [ids["object_id"]],
                                   "taxes_to_disable": ["NO-SUCH-TAX"]},
    }.get(body, {})))


def put_at(body: Any, path: tuple, value: Any) -> Any:
    """``body`` with ``value`` at ``path`` (creating the containers on the way)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = body if isinstance(body, list) and body else [{}]
        items[0] = put_at(items[0], rest, value)
        return items
    node = body if isinstance(body, dict) else {}
    node[head] = put_at(node.get(head), rest, value)
    return node


def encode(body: Any) -> bytes:
    """JSON with Raw values spliced in as they are."""
    raws: list[str] = []

    def swap(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(str(v))
            return f"__raw_{len(raws) - 1}__"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(body), allow_nan=True)
    for i, raw in enumerate(raws):
        text = text.replace(f'"__raw_{i}__"', raw)
    return text.encode("utf-8", "surrogatepass")


values = st.one_of(
    st.sampled_from(NASTY),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)


@st.composite
def cases(draw: Any) -> tuple:
    method, path, body, query = draw(st.sampled_from(OPERATIONS))
    places = ["path"] if "{" in path else []
    places += ["query"] * bool(query) + ["body"] * (body is not None)
    place = draw(st.sampled_from(places or ["none"]))
    field = None
    if place == "body":
        field = draw(st.sampled_from(PATHS[body]))
    elif place == "query":
        field = draw(st.sampled_from(query))
    value = draw(st.sampled_from(NASTY_PATH_IDS) if place == "path" else values)
    return method, path, body, place, field, value


def run_case(m: Merchant, case: tuple, count: Any) -> None:
    method, path, body_name, place, field, value = case
    ids = dict(m.ids)
    if place == "path":
        ids = {k: value for k in ids}
    url = path.format(**ids)
    body: Any = template(body_name, m) if body_name else None
    if place == "query":
        text = value if isinstance(value, str) else encode(value).decode("utf-8", "surrogatepass")
        text = text[:10_000]  # httpx refuses URLs over 64 KiB; servers cap far lower anyway
        url += f"?{field}=" + quote(text.encode("utf-8", "surrogatepass"), safe="")
    elif place == "body":
        body = put_at(body, field, value)
    content = encode(body) if body is not None else None
    headers = {"content-type": "application/json"} if content is not None else {}
    r = m.http.request(method, url, content=content, headers=headers)
    count("nasty values", r.status_code)
    assert r.status_code < 500, (method, url, place, field, repr(value)[:200], r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    if r.status_code >= 400:
        assert list(r.json()) == ["errors"], r.text[:300]
    m.reads_ok()


@pytest.fixture(scope="module")
def merchant() -> Merchant:
    return Merchant()


@given(case=cases())
@settings(max_examples=NASTY_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_nasty_values(merchant: Merchant, fuzz_count: Any, case: tuple) -> None:
    run_case(merchant, case, fuzz_count)


@pytest.mark.fuzz_long
@given(case=cases())
@settings(max_examples=NASTY_LONG_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_nasty_values_long(merchant: Merchant, fuzz_count: Any, case: tuple) -> None:
    run_case(merchant, case, fuzz_count)


def test_every_field_of_every_operation_is_reachable() -> None:
    """Every implemented operation is drawn, and every request field is a candidate."""
    assert len(OPERATIONS) >= 40
    bodies = {b for _, _, b, _ in OPERATIONS if b}
    assert bodies <= set(SCHEMAS)
    create = PATHS["CreateOrderRequest"]
    assert ("order", "line_items", 0, "quantity") in create
    assert ("order", "taxes", 0, "percentage") in create
    assert ("order", "line_items", 0, "base_price_money", "amount") in create
    assert ("order", "fulfillments", 0, "pickup_details", "pickup_at") in create
    assert ("delay_duration",) in PATHS["CreatePaymentRequest"]

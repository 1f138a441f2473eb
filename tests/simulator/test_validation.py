"""Request validation: Square's error codes, details and field paths."""

from __future__ import annotations

import copy
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderfsm.errors import SquareError
from simulator._schemas import SCHEMAS
from simulator.validation import ERROR_CODES, parse_json, validate_body, validate_query

CAT = "INVALID_REQUEST_ERROR"
SPARSE_ORDER = {"order.location_id", "order.line_items[].quantity"}


def errors_of(schema: str, body: object, **kw) -> list[tuple[str, str | None, str | None]]:
    """(code, detail, field) triples of the SquareError raised for ``body``."""
    with pytest.raises(SquareError) as info:
        validate_body(schema, body, **kw)
    err = info.value
    assert err.status == 400
    assert err.rule_id is None
    assert all(e.category == CAT for e in err.errors)
    return [(e.code, e.detail, e.field) for e in err.errors]


def one_error(schema: str, body: object, **kw) -> tuple[str, str | None, str | None]:
    errs = errors_of(schema, body, **kw)
    assert len(errs) == 1, errs
    return errs[0]


def payment(**over) -> dict:
    body = {
        "source_id": "cnon:card-nonce-ok",
        "idempotency_key": "k-pmt-1",
        "amount_money": {"amount": 1000, "currency": "USD"},
    }
    body.update(over)
    return body


def create_order() -> dict:
    return {
        "idempotency_key": "k-create-1",
        "order": {
            "location_id": "L1",
            "reference_id": "cart-42",
            "line_items": [
                {"name": "Latte", "quantity": "2", "base_price_money": {"amount": 500, "currency": "USD"}}
            ],
            "fulfillments": [
                {
                    "type": "PICKUP",
                    "state": "PROPOSED",
                    "pickup_details": {
                        "recipient": {"display_name": "Ann"},
                        "pickup_at": "2026-01-01T12:00:00Z",
                    },
                }
            ],
        },
    }


# -- valid bodies -------------------------------------------------------------------------------
def test_valid_create_order_with_pickup_fulfillment() -> None:
    body = create_order()
    assert validate_body("CreateOrderRequest", body) is body


def test_valid_create_payment_delayed_capture() -> None:
    body = payment(
        autocomplete=False, delay_action="CANCEL", delay_duration="PT10M",
        order_id="O1", location_id="L1", reference_id="cart-42",
    )
    snapshot = copy.deepcopy(body)
    assert validate_body("CreatePaymentRequest", body) == snapshot == body


def test_valid_refund_payment() -> None:
    body = {
        "idempotency_key": "k-ref-1", "payment_id": "P1", "reason": "customer request",
        "amount_money": {"amount": 500, "currency": "USD"},
    }
    assert validate_body("RefundPaymentRequest", body) is body


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ("PayOrderRequest", {"idempotency_key": "k-pay-1", "order_version": 2, "payment_ids": ["P1"]}),
        ("CompletePaymentRequest", {}),
        ("CompletePaymentRequest", {"version_token": "vt1"}),
        ("UpdateOrderRequest", {"order": {"version": 1, "fulfillments": [{"uid": "f1", "state": "PREPARED"}]},
                                "fields_to_clear": ["fulfillments[f1].pickup_details.note"],
                                "idempotency_key": "k-upd-1"}),
        ("SearchOrdersRequest", {"location_ids": ["L1"], "limit": 10, "return_entries": False,
                                 "query": {"filter": {"state_filter": {"states": ["OPEN", "COMPLETED"]},
                                                      "fulfillment_filter": {"fulfillment_types": ["PICKUP"]}},
                                           "sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"}}}),
        ("BatchRetrieveOrdersRequest", {"order_ids": ["O1", "O2"]}),
        ("CreateWebhookSubscriptionRequest", {"idempotency_key": "k", "subscription": {
            "name": "hook", "event_types": ["payment.updated"], "notification_url": "https://x.test/h",
            "api_version": "2025-08-20", "enabled": True}}),
        ("CancelPaymentByIdempotencyKeyRequest", {"idempotency_key": "k-pmt-1"}),
    ],
)
def test_other_valid_bodies(schema: str, body: dict) -> None:
    ignore = SPARSE_ORDER if schema == "UpdateOrderRequest" else frozenset()
    assert validate_body(schema, body, ignore_required=ignore) is body


def test_unknown_and_read_only_fields_are_ignored() -> None:
    body = create_order()
    body["surprise"] = {"x": [1, 2]}
    body["order"]["id"] = 12  # read-only, wrong type: ignored like an unknown field
    body["order"]["total_money"] = "lots"
    body["order"]["line_items"][0]["made_up"] = None
    validate_body("CreateOrderRequest", body)


# -- nulls --------------------------------------------------------------------------------------
def test_explicit_null_accepted_on_optional_fields() -> None:
    validate_body("CreatePaymentRequest", payment(
        amount_money=None, autocomplete=None, delay_action=None, note=None, billing_address=None,
    ))
    validate_body("SearchOrdersRequest", {"cursor": None, "limit": None, "query": {"sort": None}})
    validate_body("CreateOrderRequest", {"order": {"location_id": "L1", "line_items": None, "state": None,
                                                   "metadata": None}})
    validate_body("UpdateOrderRequest", {"order": None, "fields_to_clear": None, "idempotency_key": None})
    validate_body("CreatePaymentRequest", payment(amount_money={"amount": None, "currency": None}))


def test_explicit_null_on_required_field_counts_as_missing() -> None:
    assert one_error("RefundPaymentRequest", {"idempotency_key": "k", "amount_money": None}) == (
        "MISSING_REQUIRED_PARAMETER", "Field must be set", "amount_money")
    assert one_error("CreatePaymentRequest", payment(source_id=None)) == (
        "VALUE_EMPTY", "Field must not be blank", "source_id")


# -- missing and blank ---------------------------------------------------------------------------
def test_missing_required_object() -> None:
    assert one_error("RefundPaymentRequest", {"idempotency_key": "k-ref-1"}) == (
        "MISSING_REQUIRED_PARAMETER", "Field must be set", "amount_money")


@pytest.mark.parametrize(
    ("schema", "body", "field"),
    [
        ("CloneOrderRequest", {"version": 1}, "order_id"),  # string without minLength
        ("BatchRetrieveOrdersRequest", {}, "order_ids"),  # array
        ("CalculateOrderRequest", {}, "order"),  # object
        ("SearchOrdersRequest", {"query": {"sort": {"sort_order": "ASC"}}}, "query.sort.sort_field"),  # enum
        ("SearchOrdersRequest", {"query": {"filter": {"state_filter": {}}}}, "query.filter.state_filter.states"),
        ("CreateWebhookSubscriptionRequest", {"idempotency_key": "k"}, "subscription"),
    ],
)
def test_missing_required_parameter(schema: str, body: dict, field: str) -> None:
    assert one_error(schema, body) == ("MISSING_REQUIRED_PARAMETER", "Field must be set", field)


def test_create_payment_empty_body_reports_blank_strings_in_spec_order() -> None:
    # Square answered `{}` with VALUE_EMPTY for both strings (reference §12). The third error
    # seen there (amount_money MISSING_REQUIRED_PARAMETER) is not in the current spec's
    # `required` list, so it is a business rule elsewhere, not schema validation.
    assert errors_of("CreatePaymentRequest", {}) == [
        ("VALUE_EMPTY", "Field must not be blank", "source_id"),
        ("VALUE_EMPTY", "Field must not be blank", "idempotency_key"),
    ]


@pytest.mark.parametrize("field", ["source_id", "idempotency_key"])
def test_blank_required_string(field: str) -> None:
    assert one_error("CreatePaymentRequest", payment(**{field: ""})) == (
        "VALUE_EMPTY", "Field must not be blank", field)


def test_blank_string_with_min_length_nested() -> None:
    body = create_order()
    body["order"]["line_items"][0]["quantity"] = ""
    assert one_error("CreateOrderRequest", body) == (
        "VALUE_EMPTY", "Field must not be blank", "order.line_items[0].quantity")


def test_blank_optional_string_without_min_length_is_fine() -> None:
    validate_body("CreatePaymentRequest", payment(note="", order_id=""))


def test_missing_nested_required_fields_have_indexed_paths() -> None:
    body = create_order()
    del body["order"]["location_id"]
    body["order"]["line_items"].append({"name": "Tea"})
    assert errors_of("CreateOrderRequest", body) == [
        ("VALUE_EMPTY", "Field must not be blank", "order.location_id"),
        ("VALUE_EMPTY", "Field must not be blank", "order.line_items[1].quantity"),
    ]


# -- ignore_required ------------------------------------------------------------------------------
def test_ignore_required_wildcard_for_sparse_update() -> None:
    body = {"order": {"version": 3, "line_items": [{"uid": "a", "note": "x"}, {"uid": "b"}]},
            "idempotency_key": "k"}
    validate_body("UpdateOrderRequest", body, ignore_required=SPARSE_ORDER)
    assert errors_of("UpdateOrderRequest", body) == [
        ("VALUE_EMPTY", "Field must not be blank", "order.location_id"),
        ("VALUE_EMPTY", "Field must not be blank", "order.line_items[0].quantity"),
        ("VALUE_EMPTY", "Field must not be blank", "order.line_items[1].quantity"),
    ]


def test_ignore_required_accepts_concrete_paths_and_only_skips_presence() -> None:
    body = {"order": {"version": 3, "line_items": [{"uid": "a"}, {"uid": "b"}]}}
    assert errors_of("UpdateOrderRequest", body,
                     ignore_required={"order.location_id", "order.line_items[0].quantity"}) == [
        ("VALUE_EMPTY", "Field must not be blank", "order.line_items[1].quantity"),
    ]
    # A present but wrong value is still checked.
    body = {"order": {"location_id": 5, "line_items": [{"quantity": ""}]}}
    assert errors_of("UpdateOrderRequest", body, ignore_required=SPARSE_ORDER) == [
        ("EXPECTED_STRING", "Expected a string value.", "order.location_id"),
        ("VALUE_EMPTY", "Field must not be blank", "order.line_items[0].quantity"),
    ]


# -- wrong types ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [True, False, 10.5, 10.0, "10", "abc", [10], {"v": 10}])
def test_expected_integer(value: object) -> None:
    assert one_error("CreatePaymentRequest", payment(amount_money={"amount": value, "currency": "USD"})) == (
        "EXPECTED_INTEGER", "Expected an integer value.", "amount_money.amount")


def test_large_integers_are_integers() -> None:
    validate_body("CreatePaymentRequest", payment(amount_money={"amount": 2**62, "currency": "USD"}))
    validate_body("CreatePaymentRequest", payment(amount_money={"amount": -5, "currency": "USD"}))


@pytest.mark.parametrize("value", [14, 1.5, True, ["a"], {"a": "b"}])
def test_expected_string(value: object) -> None:
    assert one_error("CreatePaymentRequest", payment(source_id=value)) == (
        "EXPECTED_STRING", "Expected a string value.", "source_id")


@pytest.mark.parametrize("value", [0, 1, "true", "false", [], {}])
def test_expected_boolean(value: object) -> None:
    assert one_error("CreatePaymentRequest", payment(autocomplete=value)) == (
        "EXPECTED_BOOLEAN", "Expected a boolean value.", "autocomplete")


@pytest.mark.parametrize("value", ["USD 10", 10, [], True])
def test_expected_object(value: object) -> None:
    assert one_error("CreatePaymentRequest", payment(amount_money=value)) == (
        "EXPECTED_OBJECT", "Expected an object value.", "amount_money")


@pytest.mark.parametrize("value", ["P1", {"0": "P1"}, 3])
def test_expected_array(value: object) -> None:
    assert one_error("PayOrderRequest", {"idempotency_key": "k", "payment_ids": value}) == (
        "EXPECTED_ARRAY", "Expected an array.", "payment_ids")


def test_array_elements_are_checked_with_indexes() -> None:
    assert errors_of("PayOrderRequest", {"idempotency_key": "k", "payment_ids": ["P1", 2, None]}) == [
        ("EXPECTED_STRING", "Expected a string value.", "payment_ids[1]"),
        ("EXPECTED_STRING", "Expected a string value.", "payment_ids[2]"),
    ]
    body = create_order()
    body["order"]["line_items"] = [body["order"]["line_items"][0], "latte"]
    assert one_error("CreateOrderRequest", body) == (
        "EXPECTED_OBJECT", "Expected an object value.", "order.line_items[1]")


def test_deep_nested_path_with_index() -> None:
    body = create_order()
    body["order"]["line_items"][0]["base_price_money"]["amount"] = "500"
    assert one_error("CreateOrderRequest", body) == (
        "EXPECTED_INTEGER", "Expected an integer value.", "order.line_items[0].base_price_money.amount")
    body = create_order()
    body["order"]["fulfillments"][0]["pickup_details"]["recipient"]["display_name"] = 7
    assert one_error("CreateOrderRequest", body) == (
        "EXPECTED_STRING", "Expected a string value.",
        "order.fulfillments[0].pickup_details.recipient.display_name")


def test_metadata_map_values_must_be_strings() -> None:
    body = create_order()
    body["order"]["metadata"] = {"ok": "yes", "bad": 1}
    assert one_error("CreateOrderRequest", body) == (
        "EXPECTED_STRING", "Expected a string value.", "order.metadata.bad")
    body["order"]["metadata"] = ["not", "a", "map"]
    assert one_error("CreateOrderRequest", body) == ("EXPECTED_MAP", "Expected a map value.", "order.metadata")


# -- enums -------------------------------------------------------------------------------------------
def test_invalid_enum_value_sort_order() -> None:
    body = {"query": {"sort": {"sort_field": "CREATED_AT", "sort_order": "ASCS"}}}
    assert one_error("SearchOrdersRequest", body) == (
        "INVALID_ENUM_VALUE", "`ASCS` is not a valid enum value for `query.sort.sort_order`.",
        "query.sort.sort_order")


def test_invalid_fulfillment_type() -> None:
    body = create_order()
    body["order"]["fulfillments"][0]["type"] = "TELEPORT"
    assert one_error("CreateOrderRequest", body) == (
        "INVALID_ENUM_VALUE", "`TELEPORT` is not a valid enum value for `order.fulfillments[0].type`.",
        "order.fulfillments[0].type")


def test_invalid_enum_values_order_state_fulfillment_state_currency() -> None:
    body = create_order()
    body["order"]["state"] = "open"  # case matters
    body["order"]["fulfillments"][0]["state"] = "DONE"
    body["order"]["line_items"][0]["base_price_money"]["currency"] = "usd"
    assert errors_of("CreateOrderRequest", body) == [
        ("INVALID_ENUM_VALUE", "`usd` is not a valid enum value for "
         "`order.line_items[0].base_price_money.currency`.", "order.line_items[0].base_price_money.currency"),
        ("INVALID_ENUM_VALUE", "`DONE` is not a valid enum value for `order.fulfillments[0].state`.",
         "order.fulfillments[0].state"),
        ("INVALID_ENUM_VALUE", "`open` is not a valid enum value for `order.state`.", "order.state"),
    ]


def test_enum_with_non_string_value_is_expected_string() -> None:
    body = {"query": {"filter": {"state_filter": {"states": ["OPEN", 1, "NOPE"]}}}}
    assert errors_of("SearchOrdersRequest", body) == [
        ("EXPECTED_STRING", "Expected a string value.", "query.filter.state_filter.states[1]"),
        ("INVALID_ENUM_VALUE", "`NOPE` is not a valid enum value for `query.filter.state_filter.states[2]`.",
         "query.filter.state_filter.states[2]"),
    ]


# -- lengths -------------------------------------------------------------------------------------------
def test_payments_idempotency_key_too_long() -> None:
    validate_body("CreatePaymentRequest", payment(idempotency_key="k" * 45))
    assert one_error("CreatePaymentRequest", payment(idempotency_key="k" * 46)) == (
        "VALUE_TOO_LONG", "Field must not be greater than 45 length", "idempotency_key")


def test_orders_idempotency_key_too_long() -> None:
    body = create_order()
    body["idempotency_key"] = "k" * 192
    validate_body("CreateOrderRequest", body)
    body["idempotency_key"] = "k" * 193
    assert one_error("CreateOrderRequest", body) == (
        "VALUE_TOO_LONG", "Field must not be greater than 192 length", "idempotency_key")
    assert one_error("PayOrderRequest", {"idempotency_key": "é" * 193}) == (
        "VALUE_TOO_LONG", "Field must not be greater than 192 length", "idempotency_key")


def test_max_length_counts_characters_not_bytes() -> None:
    validate_body("CreatePaymentRequest", payment(idempotency_key="é" * 45))  # 90 UTF-8 bytes


def test_nested_too_long() -> None:
    body = create_order()
    body["order"]["line_items"][0]["quantity"] = "1" * 13
    assert one_error("CreateOrderRequest", body) == (
        "VALUE_TOO_LONG", "Field must not be greater than 12 length", "order.line_items[0].quantity")


def test_synthetic_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits the current spec does not use on these roots (minLength > 1, min/max, maxItems)."""
    import simulator.validation as v

    schemas = {
        "Probe": {
            "properties": {
                "code": {"type": "string", "minLength": 3, "maxLength": 5},
                "count": {"type": "integer", "minimum": 1, "maximum": 10},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "names": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            }
        }
    }
    monkeypatch.setitem(v._OBJECTS, "Probe", v._compile(schemas)["Probe"])
    validate_body("Probe", {"code": "abc", "count": 10, "tags": ["a", "b"], "names": ["n"]})
    assert errors_of("Probe", {"code": "ab", "count": 11, "tags": ["a", "b", "c"], "names": []}) == [
        ("VALUE_TOO_SHORT", "Field must be at least 3 length", "code"),
        ("VALUE_TOO_HIGH", "Field must not be greater than 10", "count"),
        ("VALUE_TOO_LONG", "Field must not have more than 2 items", "tags"),
        ("VALUE_TOO_SHORT", "Field must have at least 1 items", "names"),
    ]
    assert errors_of("Probe", {"code": "", "count": 0}) == [
        ("VALUE_EMPTY", "Field must not be blank", "code"),
        ("VALUE_TOO_LOW", "Field must not be less than 1", "count"),
    ]


# -- several errors at once -----------------------------------------------------------------------
def test_collects_all_errors_in_one_body() -> None:
    body = payment(idempotency_key="k" * 46, autocomplete="no",
                   amount_money={"amount": "1000", "currency": "EURO"})
    assert errors_of("CreatePaymentRequest", body) == [
        ("VALUE_TOO_LONG", "Field must not be greater than 45 length", "idempotency_key"),
        ("EXPECTED_INTEGER", "Expected an integer value.", "amount_money.amount"),
        ("INVALID_ENUM_VALUE", "`EURO` is not a valid enum value for `amount_money.currency`.",
         "amount_money.currency"),
        ("EXPECTED_BOOLEAN", "Expected a boolean value.", "autocomplete"),
    ]


def test_error_body_shape() -> None:
    with pytest.raises(SquareError) as info:
        validate_body("CreatePaymentRequest", payment(source_id=""))
    assert info.value.body() == {"errors": [{
        "code": "VALUE_EMPTY", "detail": "Field must not be blank", "field": "source_id",
        "category": "INVALID_REQUEST_ERROR"}]}


# -- body-level: not an object, malformed, empty ------------------------------------------------
@pytest.mark.parametrize("body", [[], [{}], "x", 1, 1.5, True, None])
def test_non_object_body(body: object) -> None:
    assert one_error("CreatePaymentRequest", body) == (
        "EXPECTED_JSON_BODY", "The request body is not a JSON object.", None)


@pytest.mark.parametrize("raw", [b"", b"   ", b"\r\n"])
def test_empty_body_parses_as_empty_object(raw: bytes) -> None:
    assert parse_json(raw) == {}
    validate_body("CompletePaymentRequest", parse_json(raw))


def test_parse_json_values() -> None:
    assert parse_json(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert parse_json(b"[1]") == [1]
    assert parse_json('{"n": "caf\u00e9"}'.encode()) == {"n": "caf\u00e9"}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"a": 1,}', "Malformed JSON: Expecting property name enclosed in double quotes (line 1, character 9)."),
        (b'{"source_id": }', "Malformed JSON: Expecting value (line 1, character 15)."),
        (b'{\n  "a": 1\n  "b": 2\n}', "Malformed JSON: Expecting ',' delimiter (line 3, character 3)."),
        (b'{"a": 1} x', "Malformed JSON: Extra data (line 1, character 10)."),
        (b"not json", "Malformed JSON: Expecting value (line 1, character 1)."),
        (b'{"a": NaN}', "Malformed JSON: NaN is not a valid JSON number."),
        (b'[Infinity]', "Malformed JSON: Infinity is not a valid JSON number."),
        (b'{"a": "\xff"}', "Malformed JSON: the body is not valid UTF-8 text."),
        (b"[" * 100_000, "Malformed JSON: the document is nested too deeply."),
    ],
)
def test_malformed_json(raw: bytes, detail: str) -> None:
    with pytest.raises(SquareError) as info:
        parse_json(raw)
    err = info.value
    assert err.status == 400
    assert [(e.category, e.code, e.detail, e.field) for e in err.errors] == [(CAT, "BAD_REQUEST", detail, None)]


# -- query strings ---------------------------------------------------------------------------------
def test_validate_query_types() -> None:
    got = validate_query("ListPayments", {
        "limit": "10", "total": "-5", "is_offline_payment": "true", "sort_field": "UPDATED_AT",
        "cursor": "c2", "sort_order": "anything", "unknown": "ignored",
    })
    assert got == {"cursor": "c2", "sort_order": "anything", "total": -5, "limit": 10,
                   "is_offline_payment": True, "sort_field": "UPDATED_AT"}
    assert validate_query("ListWebhookSubscriptions", {"include_disabled": "false", "sort_order": "ASC"}) == {
        "include_disabled": False, "sort_order": "ASC"}
    assert validate_query("ListWebhookEventTypes", {"api_version": "2025-08-20"}) == {"api_version": "2025-08-20"}
    assert validate_query("ListPaymentRefunds", {}) == {}


@pytest.mark.parametrize("raw", ["ten", "10.5", "", " 10", "+3", "1e3", "\u0661\u0662"])
def test_validate_query_bad_integer(raw: str) -> None:
    with pytest.raises(SquareError) as info:
        validate_query("ListPaymentRefunds", {"limit": raw})
    assert [(e.code, e.detail, e.field) for e in info.value.errors] == [
        ("EXPECTED_INTEGER", "Expected an integer value.", "limit")]


def test_validate_query_bad_boolean_and_enums_collected() -> None:
    with pytest.raises(SquareError) as info:
        validate_query("ListWebhookSubscriptions", {"include_disabled": "yes", "sort_order": "UP", "limit": "x"})
    assert info.value.status == 400
    assert [(e.category, e.code, e.detail, e.field) for e in info.value.errors] == [
        (CAT, "EXPECTED_BOOLEAN", "Expected a boolean value.", "include_disabled"),
        (CAT, "INVALID_ENUM_VALUE", "`UP` is not a valid enum value for `sort_order`.", "sort_order"),
        (CAT, "EXPECTED_INTEGER", "Expected an integer value.", "limit"),
    ]


def test_validate_query_accepts_starlette_query_params() -> None:
    from starlette.datastructures import QueryParams

    assert validate_query("ListPayments", QueryParams("limit=5&sort_field=CREATED_AT&x=1")) == {
        "limit": 5, "sort_field": "CREATED_AT"}


# -- speed ------------------------------------------------------------------------------------------
def test_create_payment_validation_is_fast() -> None:
    body = payment(autocomplete=False, delay_action="CANCEL", delay_duration="PT10M",
                   order_id="O1", location_id="L1", reference_id="cart-42")
    n = 2000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            validate_body("CreatePaymentRequest", body)
        best = min(best, (time.perf_counter() - start) / n)
    assert best < 50e-6, f"{best * 1e6:.1f} us per CreatePayment body"


# -- property-based: never anything but a 400 SquareError ---------------------------------------------
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _guided(schema_name: str, depth: int = 0) -> st.SearchStrategy:
    """Objects using the schema's real field names, with arbitrary or plausible values."""
    props = SCHEMAS[schema_name]["properties"]
    optional = {}
    for name, prop in props.items():
        optional[name] = json_values | _plausible(prop, depth)
    return st.fixed_dictionaries({}, optional=optional)


def _plausible(prop: dict, depth: int) -> st.SearchStrategy:
    kind = prop["type"]
    if "enum" in prop:
        return st.sampled_from(prop["enum"]) | st.text(max_size=8)
    if kind == "string":
        return st.text(max_size=prop.get("maxLength", 20) + 2)
    if kind == "integer":
        return st.integers()
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(_plausible(prop["items"], depth), max_size=3)
    if "$ref" in prop and depth < 3:
        return st.deferred(lambda: _guided(prop["$ref"], depth + 1))
    if "additionalProperties" in prop:
        return st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)
    return json_values


def _check_outcome(schema: str, body: object, **kw) -> None:
    try:
        result = validate_body(schema, body, **kw)
    except SquareError as err:
        assert err.status == 400
        assert err.errors
        for e in err.errors:
            assert e.category == CAT
            assert e.code in ERROR_CODES
            assert e.detail
    else:
        assert result is body


@pytest.mark.parametrize("schema", ["CreatePaymentRequest", "UpdateOrderRequest"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_json_never_crashes(schema: str, data: st.DataObject) -> None:
    body = data.draw(json_values | _guided(schema))
    _check_outcome(schema, body)
    _check_outcome(schema, body, ignore_required=SPARSE_ORDER)


@given(raw=st.binary(max_size=60) | json_values.map(lambda v: repr(v).encode()))
@settings(max_examples=300, deadline=None)
def test_parse_json_only_raises_square_errors(raw: bytes) -> None:
    try:
        parse_json(raw)
    except SquareError as err:
        assert err.status == 400 and err.code == "BAD_REQUEST"

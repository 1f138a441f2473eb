"""The conformance runner against the simulator, in-process.

The state machine is run with the orderfsm engine as the oracle and the simulator (through the
official SDK over an in-process transport) as the server under test: it must agree with the
simulator it was built from, and it must find the simulator's behaviour wrong when the two are
configured differently or the server is broken on purpose.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Callable

import pytest
from hypothesis import settings
from square import Square

from orderfsm.conformance import (
    ConformanceError,
    asgi_client,
    detect_variants,
    rule_for_error,
    run,
)
from orderfsm.conformance._sides import FIELDS, Obj, read_field
from orderfsm.rules import CATALOG, VARIANTS
from orderfsm.simulator import create_app

TOKEN = "conformance-token"
SEED = 4
NON_DEFAULT = {name: next(v for v in variant.values if v != variant.default)
               for name, (_, variant) in VARIANTS.items()}


def quiet_app(**variants: str) -> Any:
    app = create_app(variants=variants)
    app.state.config.log_requests = False
    return app


def conform(app: Any, **kwargs: Any):
    with asgi_client(app) as http:
        return run("http://testserver", TOKEN, httpx_client=http, **kwargs)


def failure_text(report: Any) -> str:
    if report.ok:
        return "no divergence"
    d = report.divergences[0]
    return f"{d.rule_id}: {d.summary}\n{d.snippet}"


# ------------------------------------------------------------------------- agreement

def test_simulator_conforms_to_its_own_engine() -> None:
    """A default run (100 examples) agrees with the simulator and checks every rule the
    runner can reach: at least 90% of the catalog."""
    report = conform(quiet_app(), seed=SEED)
    assert report.ok, failure_text(report)
    assert report.examples_run >= 100
    assert report.steps_run > 5 * 100
    assert report.server["reset"] and report.server["clock"]
    assert report.unchecked == [], report.unchecked
    assert len(report.checked) >= 0.9 * len(CATALOG), sorted(set(CATALOG) - set(report.checked))
    # What stays out of reach is said, with the reason.
    assert report.out_of_reach and all(report.out_of_reach.values())
    assert "needs the server's control API" not in " ".join(report.out_of_reach.values())
    without_clock = conform(_without_control_api(quiet_app()), examples=1, seed=SEED, steps=1)
    assert "refund.settlement" in without_clock.out_of_reach
    assert "control API" in without_clock.out_of_reach["refund.settlement"]
    assert set(report.targeted) | set(report.out_of_reach) == set(CATALOG)
    for stats in report.rules.values():
        assert stats.checked == stats.passed and stats.diverged == 0
    as_json = report.to_json()
    assert as_json["unchecked"] == [] and set(as_json["out_of_reach"]) == set(report.out_of_reach)


def test_a_short_run_lists_the_rules_it_never_checked() -> None:
    report = conform(quiet_app(), examples=1, seed=SEED, steps=2)
    assert report.ok
    assert report.unchecked and set(report.unchecked) <= set(report.targeted)
    for rule in report.unchecked:
        assert rule not in report.rules or report.rules[rule].checked == 0


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_non_default_variant_conforms_when_the_oracle_assumes_it(name: str) -> None:
    value = NON_DEFAULT[name]
    report = conform(quiet_app(**{name: value}), examples=10, seed=SEED,
                     variants=[f"{name}={value}"])
    assert report.ok, failure_text(report)
    assert report.variants[name] == value


# ------------------------------------------------------------------------ divergence

def test_autocomplete_variant_divergence_is_found_shrunk_and_attributed() -> None:
    report = conform(quiet_app(autocomplete_order_on_payment="leave_open"), examples=100,
                     seed=SEED)
    assert not report.ok
    (d,) = report.divergences
    assert d.rule_id == "payment.autocomplete_order"
    assert d.attributed_by == "variant"
    # Shrunk to: create an order without fulfillments, pay it in full.
    assert [s["call"].split("(")[0] for s in d.steps] == [
        "client.orders.create", "client.payments.create"]
    (m,) = d.mismatches
    assert (m["kind"], m["field"], m["expected"], m["actual"]) == (
        "order", "state", "COMPLETED", "OPEN")
    compile(d.snippet, "snippet.py", "exec")
    stats = report.rules["payment.autocomplete_order"]
    assert stats.diverged == 1 and stats.checked == stats.passed + 1
    assert json.loads(json.dumps(report.to_json()))["divergences"][0]["rule"] == d.rule_id


def test_keep_going_reports_each_diverging_rule() -> None:
    app = quiet_app(autocomplete_order_on_payment="leave_open", refund_while_pending="reject")
    report = conform(app, examples=80, seed=SEED, keep_going=True)
    assert {d.rule_id for d in report.divergences} == {
        "payment.autocomplete_order", "refund.already_pending"}
    for d in report.divergences:
        compile(d.snippet, "snippet.py", "exec")


def _rewrite(app: Any, prefix: str, method: str, change: Callable[[dict], None]) -> Callable:
    """An ASGI wrapper: the simulator with the JSON answers under ``prefix`` altered."""

    async def wrapped(scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] != "http" or not scope["path"].startswith(prefix)
                or scope["method"] != method):
            await app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = json.loads(b"".join(chunks) or b"{}")
            if start["status"] == 200:
                change(body)
            raw = json.dumps(body).encode()
            headers = [(k, v) for k, v in start.get("headers", [])
                       if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(raw)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": raw})

        await app(scope, receive, capture)

    return wrapped


def _rewrite_payments(app: Any) -> Callable:
    """A server that never reports refunded_money on payments."""
    return _rewrite(app, "/v2/payments/", "GET",
                    lambda body: body.get("payment", {}).pop("refunded_money", None))


def test_wrong_money_field_is_a_divergence() -> None:
    report = conform(_rewrite_payments(quiet_app()), examples=150, seed=SEED)
    assert not report.ok
    d = report.divergences[0]
    assert d.rule_id == "refund.return_order"
    assert {m["field"] for m in d.mismatches} == {"refunded_money"}
    assert d.steps[-1]["call"].startswith("client.refunds.refund_payment")


def test_missing_response_object_is_a_divergence() -> None:
    app = _rewrite(quiet_app(), "/v2/refunds", "POST", lambda body: body.pop("refund", None))
    report = conform(app, examples=100, seed=SEED)
    assert not report.ok
    d = report.divergences[0]
    assert [m["what"] for m in d.mismatches] == ["response"]
    assert d.steps[-1]["call"].startswith("client.refunds.refund_payment")
    compile(d.snippet, "snippet.py", "exec")
    assert "expect_value('the response refund'" in d.snippet


def _versions_bump_on_rejection(app: Any) -> Callable:
    """A server whose rejected UpdateOrder still bumps the order's version."""
    store = app.state.store

    async def wrapped(scope: dict, receive: Callable, send: Callable) -> None:
        status: list[int] = []

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await app(scope, receive, watch)
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] == "PUT" and path.startswith(
                "/v2/orders/") and status and status[0] == 400:
            token = dict(scope["headers"])[b"authorization"].decode().split()[-1]
            order = store.merchants[token].engine.orders.get(path.rsplit("/", 1)[-1])
            if order is not None:
                order["version"] += 1

    return wrapped


def test_state_changed_by_a_rejected_request_is_caught() -> None:
    report = conform(_versions_bump_on_rejection(quiet_app()), examples=100, seed=SEED)
    assert not report.ok
    d = report.divergences[0]
    # Seen either in the order's own version (the end-of-sequence comparison) or in the next
    # update, which the server now refuses as stale.
    last = d.steps[-1]["server"]
    assert ("version" in {m["field"] for m in d.mismatches}
            or (last.get("code"), last.get("field")) == ("VERSION_MISMATCH", "order.version")), \
        d.mismatches
    rejected_by_both = [s for s in d.steps[:-1]
                        if s["oracle"]["accepted"] is False and s["server"]["accepted"] is False]
    assert rejected_by_both and rejected_by_both[0]["call"].startswith("client.orders.update")


# ------------------------------------------------------------------ servers and setup

def _without_control_api(app: Any) -> Callable:
    async def wrapped(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_sim/"):
            body = b'{"errors":[{"code":"NOT_FOUND","category":"INVALID_REQUEST_ERROR"}]}'
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def test_server_without_control_api_runs_without_clock_rules() -> None:
    report = conform(_without_control_api(quiet_app()), examples=20, seed=SEED)
    assert report.ok, failure_text(report)
    assert report.server["clock"] is False and report.server["reset"] is False
    # The simulator takes any token, so the run used a fresh merchant of its own.
    assert report.server["fresh_token"] is True
    assert "refund.settlement" not in report.rules
    assert "payment.delayed_action" not in report.rules


@pytest.mark.parametrize("kwargs, message", [
    ({"examples": 0}, "at least 1"),
    ({"variants": ["cancel_after_payment=sometimes"]}, "unknown value"),
    ({"variants": ["nonsense=1"]}, "unknown variant"),
])
def test_bad_arguments_are_conformance_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConformanceError, match=message):
        conform(quiet_app(), **kwargs)


def test_unreachable_server_is_a_conformance_error() -> None:
    with pytest.raises(ConformanceError, match="cannot reach"):
        run("http://127.0.0.1:9", TOKEN, examples=1)
    with pytest.raises(ConformanceError, match="http"):
        run("ftp://example", TOKEN, examples=1)


# ------------------------------------------------------------------------ detection

def test_detect_variants_on_the_default_simulator() -> None:
    with asgi_client(quiet_app()) as http:
        report = detect_variants("http://testserver", TOKEN, httpx_client=http)
    assert report.ok
    assert report.variants == {name: v.default for name, (_, v) in VARIANTS.items()}


def test_detect_variants_names_every_non_default_value() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        with TestClient(quiet_app(**NON_DEFAULT)) as client:
            report = detect_variants("http://testserver", TOKEN, httpx_client=client)
    assert report.ok, [f.to_json() for f in report.findings if f.status != "detected"]
    assert report.variants == NON_DEFAULT


def test_detect_variants_reports_a_server_that_matches_no_value() -> None:
    # Stripping refunded_money breaks the refund probe for every value of refund_while_pending.
    with asgi_client(_rewrite_payments(quiet_app())) as http:
        report = detect_variants("http://testserver", TOKEN, httpx_client=http,
                                 variants=["refund_while_pending", "autocomplete_order_on_payment"])
    by_name = {f.variant: f for f in report.findings}
    assert by_name["autocomplete_order_on_payment"].detected == "complete"
    refund = by_name["refund_while_pending"]
    assert refund.status == "unknown" and refund.detected is None
    assert set(refund.differences) == {"allow", "reject"}
    assert not report.ok


# --------------------------------------------------------------------- small pieces

@pytest.mark.parametrize("code, field, detail, rule", [
    ("BAD_REQUEST", "order.state", "Orders cannot be canceled after payments have been processed.",
     "order.cancel_after_payment"),
    ("VERSION_MISMATCH", "order.version",
     "Supplied version 1 does not match the current version 2 of order X.",
     "order.version_mismatch"),
    ("REFUND_AMOUNT_INVALID", "amount_money.amount", "anything", "refund.amount_exceeds"),
    ("GENERIC_DECLINE", None, "Authorization error: 'GENERIC_DECLINE'", "payment.card_declined"),
    ("NO_SUCH_CODE", None, "?", None),
])
def test_server_errors_map_to_catalog_rules(code: str, field: str | None, detail: str,
                                            rule: str | None) -> None:
    assert rule_for_error(code, field, detail) == rule


def test_fields_read_the_same_from_sdk_models_and_raw_json() -> None:
    with asgi_client(quiet_app()) as http:
        _compare_fields(http)


def _compare_fields(http: Any) -> None:
    client = Square(token=TOKEN, base_url="http://testserver", httpx_client=http)
    ro = {"max_retries": 0}
    loc = client.locations.get("main", request_options=ro).location.id
    order = client.orders.create(order={
        "location_id": loc,
        "line_items": [{"uid": "a", "name": "A", "quantity": "2",
                        "base_price_money": {"amount": 700, "currency": "USD"}}],
        "fulfillments": [{"uid": "f", "type": "PICKUP",
                          "pickup_details": {"recipient": {"display_name": "x"}}}],
    }, request_options=ro).order
    payment = client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key="k1", order_id=order.id,
        amount_money={"amount": 1400, "currency": "USD"}, request_options=ro).payment
    client.refunds.refund_payment(idempotency_key="k2", payment_id=payment.id,
                                  amount_money={"amount": 400, "currency": "USD"},
                                  request_options=ro)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for kind, ident in (("order", order.id), ("payment", payment.id)):
        raw = Obj(http.get(f"/v2/{kind}s/{ident}", headers=auth).json()[kind])
        model = getattr(getattr(client, kind + "s").get(ident, request_options=ro), kind)
        for name in FIELDS[kind]:
            assert read_field(kind, name, model) == read_field(kind, name, raw), name
    raw_payment = Obj(http.get(f"/v2/payments/{payment.id}", headers=auth).json()["payment"])
    assert read_field("payment", "refunded_money", raw_payment) == 400
    raw_order = Obj(http.get(f"/v2/orders/{order.id}", headers=auth).json()["order"])
    assert read_field("order", "fulfillments", raw_order) == [["f", "PROPOSED"]]
    assert read_field("order", "line_items", raw_order) == [["2", 700]]


# ------------------------------------------------------------------ idempotency oracle

def test_the_oracle_replays_a_key_and_refuses_it_with_another_body() -> None:
    from orderfsm.clock import ManualClock
    from orderfsm.conformance._calls import LOCATION, Call, NamedKey, Produce, Ref
    from orderfsm.conformance._sides import OracleSide
    from orderfsm.engine import Engine

    oracle = OracleSide(Engine(clock=ManualClock()))
    body = {"location_id": LOCATION, "line_items": [
        {"uid": "a", "name": "A", "quantity": "1",
         "base_price_money": {"amount": 700, "currency": "USD"}}]}
    create = Call("orders", "create", (), {"order": body, "idempotency_key": NamedKey("c")},
                  (Produce("o1"),))
    first = oracle.execute(create)
    oracle.register("o1", first.obj.id)
    again = oracle.execute(create)
    assert again.ok and again.obj.id == first.obj.id and len(oracle.engine.orders) == 1
    other = oracle.execute(Call("orders", "create", (), {
        "order": {**body, "reference_id": "x"}, "idempotency_key": NamedKey("c")}))
    assert (other.ok, other.code, other.rule_id) == (
        False, "IDEMPOTENCY_KEY_REUSED", "api.idempotency_key_reused")
    # UpdateOrder: a reused key answers the current order and applies nothing.
    update = {"order": {"location_id": LOCATION, "version": 1, "reference_id": "u"},
              "idempotency_key": NamedKey("u")}
    assert oracle.execute(Call("orders", "update", (Ref("o1"),), update)).obj.version == 2
    update["order"] = {"location_id": LOCATION, "version": 2, "reference_id": "v"}
    replayed = oracle.execute(Call("orders", "update", (Ref("o1"),), update))
    assert replayed.ok and replayed.obj.version == 2 and replayed.obj.reference_id == "u"


def test_shrinking_is_bounded_by_its_budget() -> None:
    app = quiet_app(autocomplete_order_on_payment="leave_open")
    report = conform(app, seed=SEED, shrink_seconds=0.0)
    (d,) = report.divergences
    assert d.rule_id == "payment.autocomplete_order" and d.kind == "state"
    assert d.shrink_seconds < 1.0
    assert report.shrink_replays <= 2  # the slice of the sequence, and nothing more
    assert d.headline == "payment.autocomplete_order: a different resulting state"


def test_the_report_says_what_kind_of_difference_a_divergence_is() -> None:
    report = conform(quiet_app(cancel_after_payment="never"), seed=SEED)
    d = report.divergences[0]
    assert (d.rule_id, d.kind) == ("order.cancel_after_payment", "decision")
    assert d.to_json()["kind"] == "decision"
    assert d.found_after_examples >= 1 and d.found_after_seconds > 0

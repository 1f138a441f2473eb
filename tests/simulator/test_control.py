"""The control API under /_sim: the merchant's virtual clock and what fires when it moves, reset,
state snapshots, per-merchant variants; plus the request log and seeded determinism."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from square.core.api_error import ApiError

from simulator.app import merchant_tag

TOKEN = "sandbox-token-a"  # the raw fixture's token (tests/simulator/conftest.py)

RO = {"max_retries": 0}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now(raw) -> str:
    r = raw.get("/_sim/clock")
    assert r.status_code == 200
    return r.json()["now"]


def advance(raw, seconds: float) -> dict:
    r = raw.post("/_sim/clock/advance", json={"seconds": seconds})
    assert r.status_code == 200, r.text
    return r.json()


def delayed(raw, key: str, amount: int = 1000, **extra: Any) -> dict:
    r = raw.post("/v2/payments", json={"idempotency_key": key, "source_id": "cnon:card-nonce-ok",
                                       "amount_money": usd(amount), "autocomplete": False, **extra})
    assert r.status_code == 200, r.text
    return r.json()["payment"]


# ----------------------------------------------------------------------------------- clock

def test_clock_reads_and_advances(raw) -> None:
    start = now(raw)
    assert RFC3339.match(start)
    moved = advance(raw, 90.5)
    assert moved == {"now": moved["now"], "fired": 0}
    assert ts(moved["now"]) - ts(start) == timedelta(seconds=90.5)
    assert now(raw) == moved["now"]
    assert advance(raw, 0)["now"] == moved["now"]


@pytest.mark.parametrize("body,code", [
    ({"seconds": -1}, "INVALID_VALUE"),
    ({"seconds": 11 * 365 * 24 * 3600}, "INVALID_VALUE"),
    ({"seconds": True}, "EXPECTED_INTEGER"),
    ({"seconds": None}, "MISSING_REQUIRED_PARAMETER"),
])
def test_bad_advance_changes_nothing(raw, sim_state, body: dict, code: str) -> None:
    before = sim_state()
    r = raw.post("/_sim/clock/advance", json=body)
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == code
    assert r.json()["errors"][0]["field"] == "seconds"
    assert sim_state() == before


def test_delayed_capture_expiry_applies_cancel(sdk, raw) -> None:
    p = delayed(raw, "exp-1", delay_duration="PT10M")
    assert advance(raw, 599)["fired"] == 0
    assert sdk.payments.get(p["id"], request_options=RO).payment.status == "APPROVED"
    assert advance(raw, 1)["fired"] == 1
    expired = sdk.payments.get(p["id"], request_options=RO).payment
    assert expired.status == "CANCELED"
    assert expired.card_details.status == "VOIDED"
    assert expired.updated_at == p["delayed_until"]
    with pytest.raises(ApiError) as info:
        sdk.payments.complete(p["id"], request_options=RO)
    assert info.value.errors[0].code == "DELAYED_TRANSACTION_EXPIRED"


def test_delayed_capture_expiry_applies_complete(sdk, raw) -> None:
    order = raw.post("/v2/orders", json={"order": {"location_id": "main", "line_items": [
        {"name": "Lamp", "quantity": "1", "base_price_money": usd(1000)}]}}).json()["order"]
    p = delayed(raw, "exp-2", delay_duration="PT1H", delay_action="COMPLETE", order_id=order["id"])
    advance(raw, 3600)
    done = sdk.payments.get(p["id"], request_options=RO).payment
    assert done.status == "COMPLETED"
    assert done.card_details.status == "CAPTURED"
    assert done.processing_fee
    assert done.card_details.card_payment_timeline.captured_at == p["delayed_until"]
    assert sdk.orders.get(order["id"], request_options=RO).order.state == "COMPLETED"


def test_default_delay_is_seven_days(sdk, raw) -> None:
    p = delayed(raw, "exp-3")
    advance(raw, 7 * 24 * 3600 - 1)
    assert sdk.payments.get(p["id"], request_options=RO).payment.status == "APPROVED"
    advance(raw, 1)
    assert sdk.payments.get(p["id"], request_options=RO).payment.status == "CANCELED"


def test_one_advance_fires_everything_due_in_order(sdk, raw) -> None:
    late = delayed(raw, "late", delay_duration="PT3M", delay_action="COMPLETE")
    early = delayed(raw, "early", delay_duration="PT1M")
    card = raw.post("/v2/payments", json={"idempotency_key": "c", "source_id": "cnon:card-nonce-ok",
                                          "amount_money": usd(500)}).json()["payment"]
    advance(raw, 30)
    refund = raw.post("/v2/refunds", json={"idempotency_key": "r", "payment_id": card["id"],
                                           "amount_money": usd(500)}).json()["refund"]
    untouched = delayed(raw, "later", delay_duration="PT1H")
    assert advance(raw, 600)["fired"] == 3
    e = sdk.payments.get(early["id"], request_options=RO).payment
    l_ = sdk.payments.get(late["id"], request_options=RO).payment
    r = sdk.refunds.get(refund["id"], request_options=RO).refund
    # Each fired at its own due time, not at the end of the jump.
    assert e.updated_at == early["delayed_until"] and e.status == "CANCELED"
    assert ts(r.updated_at) == ts(refund["created_at"]) + timedelta(seconds=10)
    assert r.status == "COMPLETED"
    assert l_.updated_at == late["delayed_until"] and l_.status == "COMPLETED"
    assert ts(r.updated_at) < ts(e.updated_at) < ts(l_.updated_at)  # 40 s, 60 s, 180 s
    assert sdk.payments.get(untouched["id"], request_options=RO).payment.status == "APPROVED"


def test_completed_before_expiry_is_not_touched(sdk, raw) -> None:
    p = delayed(raw, "early-capture", delay_duration="PT5M")
    sdk.payments.complete(p["id"], request_options=RO)
    assert advance(raw, 600)["fired"] == 1  # the timer fires and finds nothing to do
    assert sdk.payments.get(p["id"], request_options=RO).payment.status == "COMPLETED"


# ----------------------------------------------------------------------------------- reset

def test_reset_starts_the_merchant_over(raw, sdk) -> None:
    start = now(raw)
    location = sdk.locations.get("main", request_options=RO).location
    p = delayed(raw, "gone")
    advance(raw, 100)
    r = raw.post("/_sim/reset")
    assert r.status_code == 200
    assert r.json()["reset"] is True
    assert r.json()["now"] == start
    assert now(raw) == start
    assert raw.get(f"/v2/payments/{p['id']}").status_code == 404
    assert raw.get("/v2/payments").json() == {"payments": []}
    assert sdk.locations.get("main", request_options=RO).location.id == location.id
    # Idempotency keys are forgotten too: the same key creates a new payment.
    again = delayed(raw, "gone")
    assert again["status"] == "APPROVED"


def test_reset_only_touches_the_caller(make_raw) -> None:
    a, b = make_raw("reset-a"), make_raw("reset-b")
    pb = delayed(b, "keep")
    delayed(a, "drop")
    assert a.post("/_sim/reset").status_code == 200
    assert b.get(f"/v2/payments/{pb['id']}").status_code == 200


# ------------------------------------------------------------------------------- snapshots

def _populate(raw) -> dict[str, Any]:
    order = raw.post("/v2/orders", json={"idempotency_key": "o", "order": {
        "location_id": "main", "line_items": [{"name": "Pen", "quantity": "3",
                                               "base_price_money": usd(200)}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "Z"}}}],
    }}).json()["order"]
    pay = raw.post("/v2/payments", json={"idempotency_key": "p", "source_id": "cnon:card-nonce-ok",
                                         "amount_money": usd(600), "order_id": order["id"]})
    advance(raw, 5)
    refund = raw.post("/v2/refunds", json={"idempotency_key": "r", "amount_money": usd(100),
                                           "payment_id": pay.json()["payment"]["id"]})
    held = delayed(raw, "held", delay_duration="PT2M")
    return {"order": order, "pay": pay, "refund": refund.json()["refund"], "held": held}


def test_state_snapshot_shape(raw, sim_state) -> None:
    _populate(raw)
    snap = sim_state()
    assert snap["format"] == "orderfsm.simulator.state"
    assert snap["version"] == 2 and snap["record_version"] == 1
    records = snap["records"]
    assert len(records["order"]) == 3  # the order, the refund's return order, held's own order
    assert len(records["payment"]) == 2 and len(records["refund"]) == 1
    assert len(records["timer"]) == 2  # refund settlement and held's expiry
    assert records["meta"]["engine"]["now"].startswith(now(raw)[:19])
    assert len(records["idem"]) == 4


def test_snapshot_round_trip(raw, sim_state, sdk) -> None:
    made = _populate(raw)
    snap = sim_state()
    assert raw.post("/_sim/reset").status_code == 200
    assert sim_state() != snap
    r = raw.post("/_sim/state", json=snap)
    assert r.status_code == 200, r.text
    assert r.json()["restored"] is True
    assert sim_state() == snap
    # The restored merchant keeps working: reads, idempotent replays, timers, new ids.
    assert sdk.orders.get(made["order"]["id"], request_options=RO).order.line_items[0].name == "Pen"
    replay = raw.post("/v2/payments", json={"idempotency_key": "p", "source_id": "cnon:card-nonce-ok",
                                            "amount_money": usd(600),
                                            "order_id": made["order"]["id"]})
    assert replay.content == made["pay"].content
    assert advance(raw, 600)["fired"] == 2
    assert sdk.refunds.get(made["refund"]["id"], request_options=RO).refund.status == "COMPLETED"
    assert sdk.payments.get(made["held"]["id"], request_options=RO).payment.status == "CANCELED"
    fresh = delayed(raw, "after-restore")
    existing = set(snap["records"]["payment"]) | set(snap["records"]["order"])
    assert fresh["id"] not in existing and fresh["order_id"] not in existing


def test_snapshot_moves_between_tokens(make_raw, sim_state) -> None:
    a, b = make_raw("snap-a"), make_raw("snap-b")
    pa = delayed(a, "x")
    snap = sim_state("snap-a")
    assert b.post("/_sim/state", json=snap).status_code == 200
    assert b.get(f"/v2/payments/{pa['id']}").json()["payment"] == pa
    assert sim_state("snap-b") == snap


def _meta(s: dict, **changes: Any) -> dict:
    records = s["records"]
    return {**s, "records": {**records, "meta": {
        **records["meta"], "engine": {**records["meta"]["engine"], **changes}}}}


@pytest.mark.parametrize("mutate", [
    lambda s: {**s, "format": "something.else"},
    lambda s: {**s, "version": 99},
    lambda s: {**s, "record_version": 99},
    lambda s: {**s, "records": {"order": []}},
    lambda s: {**s, "records": {**s["records"], "meta": {}}},
    lambda s: _meta(s, now="yesterday"),
    lambda s: {**s, "records": {**s["records"], "order": [1, 2]}},
    lambda s: {**s, "records": {**s["records"], "gadget": {}}},
    lambda s: [s],
])
def test_bad_snapshot_changes_nothing(raw, sim_state, mutate) -> None:
    _populate(raw)
    before = sim_state()
    r = raw.post("/_sim/state", json=mutate(before))
    assert r.status_code == 400
    assert r.json()["errors"][0]["category"] == "INVALID_REQUEST_ERROR"
    assert sim_state() == before


# -------------------------------------------------------------------------------- variants

def test_variants_are_per_merchant(make_raw) -> None:
    a, b = make_raw("var-a"), make_raw("var-b")
    r = a.post("/_sim/variants", json={"cancel_after_payment": "never"})
    assert r.status_code == 200
    assert a.get("/_sim/variants").json()["variants"]["cancel_after_payment"] == "never"
    assert b.get("/_sim/variants").json()["variants"]["cancel_after_payment"] == \
        "after_fulfillments_canceled"
    bad = a.post("/_sim/variants", json={"no_such_variant": "x"})
    assert bad.status_code == 400
    assert "unknown variant" in bad.json()["errors"][0]["detail"]


# ------------------------------------------------------------------------------ request log

def test_one_log_line_per_request(raw, caplog) -> None:
    caplog.set_level(logging.INFO, logger="orderfsm.simulator")
    raw.get("/v2/locations")
    raw.get("/v2/payments/nope")
    raw.post("/v2/payments", json={"idempotency_key": "k", "source_id": "cnon:card-nonce-ok"})
    raw.post("/v2/orders", content=b"{")
    records = [r for r in caplog.records if r.name == "orderfsm.simulator"]
    tag = merchant_tag(TOKEN)
    assert len(tag) == 8 and TOKEN not in tag
    lines = [re.sub(r" \d+\.\dms ", " Tms ", r.getMessage()) for r in records]
    assert lines == [
        f"GET /v2/locations 200 Tms merchant={tag}",
        f"GET /v2/payments/nope 404 rule=payment.not_found Tms merchant={tag}",
        f"POST /v2/payments 400 rule=payment.amount_required Tms merchant={tag}",
        f"POST /v2/orders 400 rule=BAD_REQUEST Tms merchant={tag}",
    ]
    assert all(r.levelno == logging.INFO for r in records)
    assert records[1].http == {"method": "GET", "path": "/v2/payments/nope", "status": 404,
                               "duration_ms": records[1].http["duration_ms"],
                               "merchant": tag, "rule": "payment.not_found"}


def test_log_can_be_switched_off(make_app, make_raw, caplog) -> None:
    from simulator.store import SimulatorConfig

    app = make_app(SimulatorConfig(log_requests=False))
    caplog.set_level(logging.INFO, logger="orderfsm.simulator")
    make_raw(app_=app).get("/v2/locations")
    assert [r for r in caplog.records if r.name == "orderfsm.simulator"] == []


# ---------------------------------------------------------------------------- determinism

def _script(raw) -> list[bytes]:
    out = [raw.get("/v2/locations").content]
    out.append(raw.post("/v2/orders", json={"order": {"location_id": "main"}}).content)
    out.append(raw.post("/v2/payments", json={"idempotency_key": "a", "source_id": "CASH",
                                              "amount_money": usd(5),
                                              "cash_details": {"buyer_supplied_money": usd(5)}}).content)
    return out


def test_same_seed_same_responses(make_app, make_raw) -> None:
    one = _script(make_raw(app_=make_app(seed=7)))
    two = _script(make_raw(app_=make_app(seed=7)))
    other = _script(make_raw(app_=make_app(seed=8)))
    assert one == two
    assert one[1] != other[1]

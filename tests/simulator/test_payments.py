"""Payments API through the official SDK: card, cash and external sources, delayed capture,
complete / cancel / update, cancel by idempotency key, and listing with cursors."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from square.core.api_error import ApiError

RO = {"max_retries": 0}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PAYMENT_ID = re.compile(r"^[0-9A-Za-z]{27}eY$")
_keys = itertools.count()


def key(prefix: str = "pay") -> str:
    return f"{prefix}-{next(_keys)}"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def card(sdk, amount: int = 1000, **kw: Any):
    kw.setdefault("idempotency_key", key())
    return sdk.payments.create(source_id="cnon:card-nonce-ok", amount_money=usd(amount),
                               request_options=RO, **kw).payment


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------- create

def test_card_payment_completes_with_square_fields(any_sdk) -> None:
    sdk = any_sdk
    p = card(sdk, 1000, tip_money=usd(150), reference_id="ref-1", note="thanks")
    assert PAYMENT_ID.match(p.id)
    assert p.status == "COMPLETED"
    assert p.source_type == "CARD"
    assert (p.amount_money.amount, p.tip_money.amount, p.total_money.amount) == (1000, 150, 1150)
    assert p.approved_money.amount == 1150
    assert RFC3339.match(p.created_at) and RFC3339.match(p.updated_at)
    assert p.location_id == sdk.locations.get("main", request_options=RO).location.id
    cd = p.card_details
    assert cd.status == "CAPTURED"
    assert cd.card.card_brand == "VISA" and cd.card.last4 == "1111"
    assert cd.entry_method == "KEYED"
    assert RFC3339.match(cd.card_payment_timeline.authorized_at)
    assert RFC3339.match(cd.card_payment_timeline.captured_at)
    assert p.receipt_number == p.id[:4].upper()
    assert p.receipt_url.endswith(p.id)
    assert p.processing_fee[0].amount_money.amount > 0
    assert p.version_token
    assert (p.reference_id, p.note) == ("ref-1", "thanks")
    # Square makes an order for a payment that names none; it is paid and closed.
    assert p.order_id
    order = sdk.orders.get(p.order_id, request_options=RO).order
    assert order.state == "COMPLETED"
    assert order.total_money.amount == 1000
    assert [t.payment_id for t in order.tenders] == [p.id]
    assert sdk.payments.get(p.id, request_options=RO).payment == p


def test_card_on_file(sdk) -> None:
    p = sdk.payments.create(source_id="ccof:customer-card-id-ok", idempotency_key=key(),
                            amount_money=usd(500), customer_id="CUST", request_options=RO).payment
    assert p.card_details.entry_method == "ON_FILE"
    assert p.customer_id == "CUST"


def test_cash_payment(sdk) -> None:
    p = sdk.payments.create(source_id="CASH", idempotency_key=key(), amount_money=usd(725),
                            cash_details={"buyer_supplied_money": usd(1000)},
                            request_options=RO).payment
    assert p.status == "COMPLETED"
    assert p.source_type == "CASH"
    assert p.cash_details.buyer_supplied_money.amount == 1000
    assert p.cash_details.change_back_money.amount == 275
    assert p.card_details is None
    assert p.processing_fee is None  # Square charges no fee on cash
    assert p.receipt_url


def test_cash_needs_enough_supplied_money(sdk) -> None:
    with pytest.raises(ApiError) as info:
        sdk.payments.create(source_id="CASH", idempotency_key=key(), amount_money=usd(725),
                            request_options=RO)
    assert info.value.errors[0].code == "MISSING_REQUIRED_PARAMETER"
    assert info.value.errors[0].field == "cash_details.buyer_supplied_money"
    with pytest.raises(ApiError) as info:
        sdk.payments.create(source_id="CASH", idempotency_key=key(), amount_money=usd(725),
                            cash_details={"buyer_supplied_money": usd(700)}, request_options=RO)
    assert info.value.errors[0].field == "cash_details.buyer_supplied_money"


def test_external_payment(sdk) -> None:
    p = sdk.payments.create(source_id="EXTERNAL", idempotency_key=key(), amount_money=usd(300),
                            external_details={"type": "CHECK", "source": "Front desk",
                                              "source_id": "chk-17"},
                            request_options=RO).payment
    assert p.status == "COMPLETED"
    assert p.source_type == "EXTERNAL"
    assert (p.external_details.type, p.external_details.source) == ("CHECK", "Front desk")
    with pytest.raises(ApiError) as info:
        sdk.payments.create(source_id="EXTERNAL", idempotency_key=key(), amount_money=usd(300),
                            external_details={"type": "CHECK"}, request_options=RO)
    assert info.value.errors[0].field == "external_details.source"


def test_unknown_source_is_invalid_card_data(sdk) -> None:
    with pytest.raises(ApiError) as info:
        sdk.payments.create(source_id="tok_visa", idempotency_key=key(), amount_money=usd(300),
                            request_options=RO)
    assert info.value.errors[0].code == "INVALID_CARD_DATA"


def test_declined_card_returns_failed_payment_beside_the_error(raw, sdk) -> None:
    body = {"source_id": "cnon:card-nonce-declined", "idempotency_key": key(),
            "amount_money": usd(1000)}
    r = raw.post("/v2/payments", json=body)
    assert r.status_code == 400
    data = r.json()
    assert data["errors"] == [{"code": "GENERIC_DECLINE",
                               "detail": "Authorization error: 'GENERIC_DECLINE'",
                               "category": "PAYMENT_METHOD_ERROR"}]
    assert data["payment"]["status"] == "FAILED"
    assert data["payment"]["card_details"]["status"] == "FAILED"
    stored = sdk.payments.get(data["payment"]["id"], request_options=RO).payment
    assert stored.status == "FAILED"
    # A retry with the same key replays the decline instead of charging again.
    again = raw.post("/v2/payments", json=body)
    assert (again.status_code, again.json()) == (400, data)


@pytest.mark.parametrize("nonce,code", [
    ("cnon:card-nonce-rejected-cvv", "CVV_FAILURE"),
    ("cnon:card-nonce-rejected-postalcode", "ADDRESS_VERIFICATION_FAILURE"),
    ("cnon:card-nonce-rejected-expiration", "INVALID_EXPIRATION"),
])
def test_decline_nonces(sdk, nonce: str, code: str) -> None:
    with pytest.raises(ApiError) as info:
        sdk.payments.create(source_id=nonce, idempotency_key=key(), amount_money=usd(100),
                            request_options=RO)
    assert info.value.status_code == 400
    assert info.value.errors[0].code == code


def test_payment_for_an_order_must_match_what_is_due(sdk) -> None:
    order = sdk.orders.create(order={"location_id": "main", "line_items": [
        {"name": "A", "quantity": "1", "base_price_money": usd(1000)}]}, request_options=RO).order
    with pytest.raises(ApiError) as info:
        card(sdk, 999, order_id=order.id)
    assert info.value.body == {"errors": [{
        "code": "BAD_REQUEST", "detail": "The payment total does not match the order total.",
        "field": "amount_money", "category": "INVALID_REQUEST_ERROR"}]}
    p = card(sdk, 1000, order_id=order.id)
    assert p.order_id == order.id
    assert sdk.orders.get(order.id, request_options=RO).order.state == "COMPLETED"


# ---------------------------------------------------------------------- delayed capture

def test_delayed_capture_then_complete(sdk) -> None:
    p = card(sdk, 2000, autocomplete=False)
    assert p.status == "APPROVED"
    assert p.card_details.status == "AUTHORIZED"
    assert p.delay_action == "CANCEL"
    assert p.delay_duration == "PT168H"  # Square writes the 7-day default in hours
    assert ts(p.delayed_until) - ts(p.created_at) == timedelta(days=7)
    assert p.processing_fee is None
    assert p.card_details.card_payment_timeline.captured_at is None
    done = sdk.payments.complete(p.id, version_token=p.version_token, request_options=RO).payment
    assert done.status == "COMPLETED"
    assert done.card_details.status == "CAPTURED"
    assert RFC3339.match(done.card_details.card_payment_timeline.captured_at)
    assert done.processing_fee and done.processing_fee[0].type == "INITIAL"
    assert done.version_token != p.version_token
    with pytest.raises(ApiError) as info:
        sdk.payments.complete(p.id, request_options=RO)
    assert info.value.errors[0].code == "DELAYED_TRANSACTION_CAPTURED"


def test_complete_with_stale_version_token(sdk) -> None:
    p = card(sdk, 2000, autocomplete=False)
    updated = sdk.payments.update(p.id, idempotency_key=key("upd"), payment={
        "amount_money": usd(1800), "version_token": p.version_token}, request_options=RO).payment
    assert updated.amount_money.amount == 1800
    assert updated.version_token != p.version_token
    with pytest.raises(ApiError) as info:
        sdk.payments.complete(p.id, version_token=p.version_token, request_options=RO)
    assert info.value.status_code == 400
    assert info.value.errors[0].code == "VERSION_MISMATCH"
    assert info.value.errors[0].field == "version_token"
    assert sdk.payments.get(p.id, request_options=RO).payment.status == "APPROVED"


def test_delay_options_need_delayed_capture(sdk) -> None:
    with pytest.raises(ApiError) as info:
        card(sdk, 100, delay_action="COMPLETE")
    assert info.value.errors[0].field == "delay_action"
    with pytest.raises(ApiError) as info:
        card(sdk, 100, autocomplete=False, delay_duration="PT30S")
    assert info.value.errors[0].field == "delay_duration"


def test_cancel_sends_no_body(sdk, raw) -> None:
    p = card(sdk, 700, autocomplete=False)
    canceled = sdk.payments.cancel(p.id, request_options=RO).payment
    assert canceled.status == "CANCELED"
    assert canceled.card_details.status == "VOIDED"
    assert RFC3339.match(canceled.card_details.card_payment_timeline.voided_at)
    assert canceled.version_token != p.version_token
    q = card(sdk, 700, autocomplete=False)
    r = raw.post(f"/v2/payments/{q.id}/cancel")  # no body, no Content-Type
    assert "content-type" not in r.request.headers
    assert r.status_code == 200
    assert r.json()["payment"]["status"] == "CANCELED"
    with pytest.raises(ApiError) as info:
        sdk.payments.cancel(p.id, request_options=RO)
    assert info.value.errors[0].code == "DELAYED_TRANSACTION_CANCELED"
    with pytest.raises(ApiError) as info:
        sdk.payments.cancel(card(sdk, 5).id, request_options=RO)
    assert info.value.errors[0].code == "DELAYED_TRANSACTION_CAPTURED"


def test_cancel_by_idempotency_key(sdk) -> None:
    k = key("byk")
    p = card(sdk, 900, autocomplete=False, idempotency_key=k)
    resp = sdk.payments.cancel_by_idempotency_key(idempotency_key=k, request_options=RO)
    assert resp.errors is None
    assert sdk.payments.get(p.id, request_options=RO).payment.status == "CANCELED"


def test_cancel_by_unknown_idempotency_key_is_a_no_op(raw, sim_state) -> None:
    before = sim_state()
    r = raw.post("/v2/payments/cancel", json={"idempotency_key": "never-used"})
    assert (r.status_code, r.json()) == (200, {})
    assert sim_state() == before


def test_update_payment(sdk) -> None:
    p = card(sdk, 1000, autocomplete=False)
    u = sdk.payments.update(p.id, idempotency_key=key("upd"), payment={
        "amount_money": usd(900), "tip_money": usd(100)}, request_options=RO).payment
    assert (u.amount_money.amount, u.tip_money.amount, u.total_money.amount) == (900, 100, 1000)
    assert u.status == "APPROVED"
    with pytest.raises(ApiError) as info:
        sdk.payments.update(card(sdk, 5).id, idempotency_key=key("upd"),
                            payment={"amount_money": usd(4)}, request_options=RO)
    assert info.value.errors[0].code == "DELAYED_TRANSACTION_CAPTURED"


def test_unknown_payment(sdk) -> None:
    for call in (lambda: sdk.payments.get("nope", request_options=RO),
                 lambda: sdk.payments.complete("nope", request_options=RO),
                 lambda: sdk.payments.cancel("nope", request_options=RO)):
        with pytest.raises(ApiError) as info:
            call()
        assert info.value.status_code == 404
        assert info.value.errors[0].code == "NOT_FOUND"


# -------------------------------------------------------------------------------- listing

def test_list_filters(sdk, raw) -> None:
    early = [card(sdk, 100 + i) for i in range(3)]
    raw.post("/_sim/clock/advance", json={"seconds": 3600})
    late = [card(sdk, 200 + i) for i in range(2)]
    all_ids = [p.id for p in sdk.payments.list(request_options=RO)]
    assert set(all_ids) == {p.id for p in early + late}
    assert set(all_ids[:2]) == {p.id for p in late}  # newest first by default
    asc = [p.id for p in sdk.payments.list(sort_order="ASC", request_options=RO)]
    assert set(asc[:3]) == {p.id for p in early}
    since = [p.id for p in sdk.payments.list(begin_time=late[0].created_at, request_options=RO)]
    assert set(since) == {p.id for p in late}
    before = [p.id for p in sdk.payments.list(end_time=late[0].created_at, request_options=RO)]
    assert set(before) == {p.id for p in early}
    loc = early[0].location_id
    assert len(list(sdk.payments.list(location_id=loc, request_options=RO))) == 5
    assert list(sdk.payments.list(location_id="ELSEWHERE", request_options=RO)) == []
    assert [p.id for p in sdk.payments.list(total=201, request_options=RO)] == [late[1].id]
    # Spec ListPayments.limit: "If the provided value is greater than 100, it is ignored and
    # the default value is used instead" - not an error.
    assert len(list(sdk.payments.list(limit=101, request_options=RO))) == 5


def test_list_default_window_is_one_year(sdk, raw) -> None:
    old = card(sdk, 100)
    raw.post("/_sim/clock/advance", json={"seconds": 366 * 24 * 3600})
    new = card(sdk, 200)
    assert [p.id for p in sdk.payments.list(request_options=RO)] == [new.id]
    assert len(list(sdk.payments.list(begin_time=old.created_at, request_options=RO))) == 2


@pytest.mark.parametrize("sort_order", ["DESC", "ASC"])
def test_list_pagination_has_no_duplicates(sdk, raw, sort_order: str) -> None:
    existing = set()
    for i in range(12):
        existing.add(card(sdk, 100 + i).id)
        if i % 5 == 4:
            raw.post("/_sim/clock/advance", json={"seconds": 2})
    page = sdk.payments.list(limit=5, sort_order=sort_order, request_options=RO)
    seen: list[str] = []
    while page is not None:
        assert len(page.items) <= 5
        seen.extend(p.id for p in page.items)
        card(sdk, 999)  # a payment created between pages never shifts the pages
        page = page.next_page() if page.has_next else None
        assert len(seen) < 40
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


def test_list_cursor_survives_the_clock_moving(sdk, raw) -> None:
    made = {card(sdk, 100 + i).id for i in range(3)}
    page = sdk.payments.list(limit=2, request_options=RO)
    assert page.has_next
    raw.post("/_sim/clock/advance", json={"seconds": 3600})  # the default window moves too
    rest = page.next_page()
    assert {p.id for p in page.items} | {p.id for p in rest.items} == made
    assert not rest.has_next

"""Refunds API through the official SDK: linked refunds, their return orders, the checks on what
can be refunded, settlement on the virtual clock, and listing with filters and cursors."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from square.core.api_error import ApiError

RO = {"max_retries": 0}
_keys = itertools.count()


def key(prefix: str = "ref") -> str:
    return f"{prefix}-{next(_keys)}"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def card(sdk, amount: int = 1000, **kw: Any):
    return sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=key("pay"),
                               amount_money=usd(amount), request_options=RO, **kw).payment


def refund(sdk, payment, amount: int, **kw: Any):
    return sdk.refunds.refund_payment(idempotency_key=key(), payment_id=payment.id,
                                      amount_money=usd(amount), request_options=RO, **kw).refund


def advance(raw, seconds: float) -> dict:
    r = raw.post("/_sim/clock/advance", json={"seconds": seconds})
    assert r.status_code == 200, r.text
    return r.json()


def test_card_refund_is_pending_and_updates_the_payment(any_sdk) -> None:
    sdk = any_sdk
    order = sdk.orders.create(order={"location_id": "main", "line_items": [
        {"name": "Mug", "quantity": "1", "base_price_money": usd(1000)}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "A"}}}]},
        request_options=RO).order
    p = card(sdk, 1000, order_id=order.id)
    before = sdk.orders.get(order.id, request_options=RO).order
    r = refund(sdk, p, 400, reason="chipped")
    assert r.id.startswith(p.id + "_")
    assert r.status == "PENDING"
    assert (r.amount_money.amount, r.payment_id, r.reason) == (400, p.id, "chipped")
    assert r.location_id == p.location_id
    assert r.created_at == r.updated_at
    assert r.processing_fee is None
    paid = sdk.payments.get(p.id, request_options=RO).payment
    assert paid.status == "COMPLETED"
    assert paid.refunded_money.amount == 400
    assert paid.refund_ids == [r.id]
    assert paid.version_token != p.version_token
    # The refund makes a return order and leaves the original order alone.
    ret = sdk.orders.get(r.order_id, request_options=RO).order
    assert ret.state == "COMPLETED"
    assert ret.returns[0].source_order_id == order.id
    assert ret.refunds[0].id == r.id
    assert sdk.orders.get(order.id, request_options=RO).order == before
    assert sdk.refunds.get(r.id, request_options=RO).refund == r


def test_cash_refund_completes_at_once(sdk) -> None:
    p = sdk.payments.create(source_id="CASH", idempotency_key=key("pay"), amount_money=usd(500),
                            cash_details={"buyer_supplied_money": usd(500)},
                            request_options=RO).payment
    r = refund(sdk, p, 500)
    assert r.status == "COMPLETED"
    assert r.processing_fee[0].amount_money.amount == 0


def test_partial_refunds_cannot_exceed_the_total(sdk, sim_state) -> None:
    p = card(sdk, 1000)
    refund(sdk, p, 600)
    before = sim_state()
    with pytest.raises(ApiError) as info:
        refund(sdk, p, 401)
    assert info.value.status_code == 400
    assert info.value.body == {"errors": [{
        "code": "REFUND_AMOUNT_INVALID",
        "detail": "The requested refund amount exceeds the amount available to refund.",
        "field": "amount_money.amount", "category": "REFUND_ERROR"}]}
    assert sim_state() == before
    refund(sdk, p, 400)
    assert sdk.payments.get(p.id, request_options=RO).payment.refunded_money.amount == 1000


def test_what_cannot_be_refunded(sdk) -> None:
    approved = card(sdk, 300, autocomplete=False)
    with pytest.raises(ApiError) as info:
        refund(sdk, approved, 100)
    assert info.value.errors[0].code == "REFUND_ERROR_PAYMENT_NEEDS_COMPLETION"
    sdk.payments.cancel(approved.id, request_options=RO)
    with pytest.raises(ApiError) as info:
        refund(sdk, approved, 100)
    assert info.value.errors[0].code == "PAYMENT_NOT_REFUNDABLE"
    with pytest.raises(ApiError) as info:
        refund(sdk, card(sdk, 300), 0)
    assert info.value.errors[0].field == "amount_money.amount"
    with pytest.raises(ApiError) as info:
        sdk.refunds.refund_payment(idempotency_key=key(), payment_id="nope", amount_money=usd(1),
                                   request_options=RO)
    assert info.value.status_code == 404
    assert info.value.errors[0].field == "payment_id"


def test_refund_with_stale_payment_version_token(sdk) -> None:
    p = card(sdk, 1000)
    refund(sdk, p, 100, payment_version_token=p.version_token)
    with pytest.raises(ApiError) as info:
        refund(sdk, p, 100, payment_version_token=p.version_token)
    assert info.value.status_code == 400
    assert info.value.errors[0].code == "VERSION_MISMATCH"
    assert info.value.errors[0].field == "payment_version_token"
    fresh = sdk.payments.get(p.id, request_options=RO).payment.version_token
    assert refund(sdk, p, 100, payment_version_token=fresh).status == "PENDING"


def test_unknown_refund(sdk) -> None:
    with pytest.raises(ApiError) as info:
        sdk.refunds.get("nope", request_options=RO)
    assert info.value.status_code == 404
    assert info.value.errors[0].code == "NOT_FOUND"


# ------------------------------------------------------------------------------ settlement

def test_refund_settles_after_default_delay(sdk, raw) -> None:
    r = refund(sdk, card(sdk, 800), 800)
    assert advance(raw, 9.5)["fired"] == 0
    assert sdk.refunds.get(r.id, request_options=RO).refund.status == "PENDING"
    assert advance(raw, 0.5)["fired"] == 1
    settled = sdk.refunds.get(r.id, request_options=RO).refund
    assert settled.status == "COMPLETED"
    assert ts(settled.updated_at) - ts(settled.created_at) == timedelta(seconds=10)
    assert settled.processing_fee is not None
    ret = sdk.orders.get(settled.order_id, request_options=RO).order
    assert ret.refunds[0].status == "APPROVED"


def test_settle_delay_is_configurable(make_app, make_sdk, make_raw) -> None:
    app = make_app(refund_settle_seconds=30)
    sdk, raw = make_sdk(app_=app), make_raw(app_=app)
    r = refund(sdk, card(sdk, 800), 800)
    advance(raw, 10)
    assert sdk.refunds.get(r.id, request_options=RO).refund.status == "PENDING"
    advance(raw, 20)
    settled = sdk.refunds.get(r.id, request_options=RO).refund
    assert settled.status == "COMPLETED"
    assert ts(settled.updated_at) - ts(settled.created_at) == timedelta(seconds=30)


def test_refunds_settle_in_due_order(sdk, raw) -> None:
    p = card(sdk, 1000)
    first = refund(sdk, p, 100)
    advance(raw, 4)
    second = refund(sdk, p, 200)
    assert advance(raw, 60)["fired"] == 2
    a = sdk.refunds.get(first.id, request_options=RO).refund
    b = sdk.refunds.get(second.id, request_options=RO).refund
    assert a.status == b.status == "COMPLETED"
    assert ts(b.updated_at) - ts(a.updated_at) == timedelta(seconds=4)


def test_rejected_refund_gives_the_money_back(sdk, raw) -> None:
    p = card(sdk, 1000)
    r = refund(sdk, p, 700)
    resp = raw.post(f"/_sim/refunds/{r.id}/reject")
    assert resp.status_code == 200
    assert resp.json()["refund"]["status"] == "REJECTED"
    assert sdk.payments.get(p.id, request_options=RO).payment.refunded_money is None
    assert refund(sdk, p, 1000).status == "PENDING"


# --------------------------------------------------------------------------------- listing

def test_list_refunds_filters(sdk, raw) -> None:
    cash = sdk.payments.create(source_id="CASH", idempotency_key=key("pay"), amount_money=usd(500),
                               cash_details={"buyer_supplied_money": usd(500)},
                               request_options=RO).payment
    r_cash = refund(sdk, cash, 500)
    advance(raw, 3600)
    r_card = refund(sdk, card(sdk, 500), 300)
    assert {r.id for r in sdk.refunds.list(request_options=RO)} == {r_cash.id, r_card.id}
    assert [r.id for r in sdk.refunds.list(request_options=RO)][0] == r_card.id
    assert [r.id for r in sdk.refunds.list(sort_order="ASC", request_options=RO)][0] == r_cash.id
    assert [r.id for r in sdk.refunds.list(status="PENDING", request_options=RO)] == [r_card.id]
    assert [r.id for r in sdk.refunds.list(source_type="CASH", request_options=RO)] == [r_cash.id]
    assert [r.id for r in sdk.refunds.list(begin_time=r_card.created_at, request_options=RO)] == [r_card.id]
    assert [r.id for r in sdk.refunds.list(end_time=r_card.created_at, request_options=RO)] == [r_cash.id]
    assert list(sdk.refunds.list(location_id="ELSEWHERE", request_options=RO)) == []
    with pytest.raises(ApiError) as info:
        sdk.refunds.list(cursor="not-a-cursor", request_options=RO)
    assert info.value.errors[0].code == "INVALID_CURSOR"


def test_list_refunds_pages_without_duplicates(sdk) -> None:
    p = card(sdk, 10_000)
    existing = {refund(sdk, p, 10).id for _ in range(7)}
    page = sdk.refunds.list(limit=3, request_options=RO)
    seen: list[str] = []
    while page is not None:
        seen.extend(r.id for r in page.items)
        refund(sdk, p, 10)
        page = page.next_page() if page.has_next else None
        assert len(seen) < 30
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)

"""Request fields the simulator stores and returns or filters on, through the official SDK: each
test would fail if its fields were accepted and ignored (docs/fields.md names these tests).
Sources: the spec (S1) describes each field on its request and response objects."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from square.core.api_error import ApiError

RO: dict[str, Any] = {"max_retries": 0}
_keys = itertools.count()


def key() -> str:
    return f"echo-{next(_keys)}"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def pay(sdk, amount: int = 1000, **kw: Any):
    kw.setdefault("source_id", "cnon:card-nonce-ok")
    return sdk.payments.create(idempotency_key=key(), amount_money=usd(amount),
                               request_options=RO, **kw).payment


def test_order_fields_round_trip(sdk) -> None:
    # S1 Order: reference_id, metadata, ticket_name are stored; taxes, discounts and
    # service_charges price the order.
    order = {
        "location_id": "main", "reference_id": "ref-7", "ticket_name": "Table 4",
        "metadata": {"channel": "web"},
        "line_items": [{"uid": "a", "name": "Tea", "quantity": "2", "base_price_money": usd(500)}],
        "taxes": [{"uid": "t", "name": "Tax", "percentage": "10", "scope": "ORDER"}],
        "discounts": [{"uid": "d", "name": "Off", "type": "FIXED_AMOUNT",
                       "amount_money": usd(100), "scope": "ORDER"}],
        "service_charges": [{"uid": "s", "name": "Service", "amount_money": usd(50),
                             "calculation_phase": "SUBTOTAL_PHASE"}],
    }
    k = key()
    created = sdk.orders.create(order=order, idempotency_key=k, request_options=RO).order
    again = sdk.orders.create(order=order, idempotency_key=k, request_options=RO).order
    assert again.id == created.id  # the same idempotency_key replays the first order
    got = sdk.orders.get(created.id, request_options=RO).order
    assert (got.reference_id, got.ticket_name, got.metadata) == ("ref-7", "Table 4",
                                                                 {"channel": "web"})
    assert got.total_discount_money.amount == 100
    assert got.total_service_charge_money.amount == 50
    assert got.total_tax_money.amount > 0
    assert [t.uid for t in got.taxes] == ["t"] and [d.uid for d in got.discounts] == ["d"]
    assert [s.uid for s in got.service_charges] == ["s"]
    assert got.total_money.amount == 1000 - 100 + 50 + got.total_tax_money.amount


def test_batch_retrieve_location_id(sdk) -> None:
    # S1 BatchRetrieveOrdersRequest.location_id: the location of the orders to retrieve.
    o = sdk.orders.create(order={"location_id": "main"}, request_options=RO).order
    loc = sdk.locations.get("main", request_options=RO).location.id
    assert [x.id for x in sdk.orders.batch_get(order_ids=[o.id], location_id=loc,
                                               request_options=RO).orders] == [o.id]
    assert sdk.orders.batch_get(order_ids=[o.id], location_id="ELSEWHERE",
                                request_options=RO).orders in (None, [])


def test_clone_version_and_key(sdk) -> None:
    # S1 CloneOrderRequest: version must be the order's current one; a replayed
    # idempotency_key returns the original clone.
    o = sdk.orders.create(order={"location_id": "main"}, request_options=RO).order
    with pytest.raises(ApiError) as info:
        sdk.orders.clone(order_id=o.id, version=o.version + 1, request_options=RO)
    assert info.value.body["errors"][0]["code"] == "VERSION_MISMATCH"
    k = key()
    first = sdk.orders.clone(order_id=o.id, version=o.version, idempotency_key=k,
                             request_options=RO).order
    again = sdk.orders.clone(order_id=o.id, version=o.version, idempotency_key=k,
                             request_options=RO).order
    assert first.id == again.id


def test_list_payments_card_filters(sdk) -> None:
    # S1 ListPayments: last_4 and card_brand filter card payments.
    card = pay(sdk, 100)
    pay(sdk, 100, source_id="CASH", cash_details={"buyer_supplied_money": usd(100)})
    gift = pay(sdk, 100, source_id="cnon:gift-card-nonce-ok")
    # The SDK spells the last_4 query parameter `last4`.
    assert [p.id for p in sdk.payments.list(last4="1111", request_options=RO)] == [card.id]
    assert list(sdk.payments.list(last4="9999", request_options=RO)) == []
    assert [p.id for p in sdk.payments.list(card_brand="VISA", request_options=RO)] == [card.id]
    assert [p.id for p in sdk.payments.list(card_brand="SQUARE_GIFT_CARD",
                                            request_options=RO)] == [gift.id]


def test_payment_fields_round_trip(sdk) -> None:
    # S1 CreatePaymentRequest fields that Payment returns as sent.
    address = {"address_line_1": "1 Main St", "locality": "Springfield", "country": "US"}
    p = pay(sdk, 100, team_member_id="TM1", reference_id="R-9", note="gift wrap",
            buyer_email_address="ann@example.com", billing_address=address,
            shipping_address=address, statement_description_identifier="SHOP")
    got = sdk.payments.get(p.id, request_options=RO).payment
    assert (got.team_member_id, got.reference_id, got.note) == ("TM1", "R-9", "gift wrap")
    assert got.buyer_email_address == "ann@example.com"
    assert got.billing_address.locality == "Springfield"
    assert got.shipping_address.address_line1 == "1 Main St"
    assert got.statement_description_identifier == "SHOP"


def test_update_payment_app_fee_and_team_member(sdk) -> None:
    # S1 UpdatePaymentRequest.payment: app_fee_money (at most 90% of the total),
    # team_member_id and delay_action of an APPROVED payment.
    p = pay(sdk, 1000, autocomplete=False)
    up = sdk.payments.update(p.id, idempotency_key=key(), payment={
        "app_fee_money": usd(200), "team_member_id": "TM2", "delay_action": "COMPLETE",
        "version_token": p.version_token}, request_options=RO).payment
    assert (up.app_fee_money.amount, up.team_member_id, up.delay_action) == (200, "TM2", "COMPLETE")
    with pytest.raises(ApiError) as info:  # the version_token read before the update is stale
        sdk.payments.update(p.id, idempotency_key=key(), payment={
            "tip_money": usd(1), "version_token": p.version_token}, request_options=RO)
    assert info.value.body["errors"][0]["code"] == "VERSION_MISMATCH"
    with pytest.raises(ApiError) as info:
        sdk.payments.update(p.id, idempotency_key=key(), payment={"app_fee_money": usd(950)},
                            request_options=RO)
    assert info.value.body["errors"][0]["code"] == "INVALID_FEES"


def test_list_refunds_time_window(sdk, raw) -> None:
    # S1 ListPaymentRefunds: end_time bounds created_at, sort_order orders, location_id filters.
    p = pay(sdk, 1000)
    early = sdk.refunds.refund_payment(idempotency_key=key(), payment_id=p.id,
                                       amount_money=usd(10), request_options=RO).refund
    raw.post("/_sim/clock/advance", json={"seconds": 3600})
    late = sdk.refunds.refund_payment(idempotency_key=key(), payment_id=p.id,
                                      amount_money=usd(10), request_options=RO).refund
    assert [r.id for r in sdk.refunds.list(end_time=late.created_at, request_options=RO)] == \
        [early.id]
    page = raw.get("/v2/refunds", params={"limit": 1}).json()
    rest = raw.get("/v2/refunds", params={"limit": 1, "cursor": page["cursor"]}).json()
    assert [page["refunds"][0]["id"], rest["refunds"][0]["id"]] == [late.id, early.id]
    assert [r.id for r in sdk.refunds.list(sort_order="ASC", request_options=RO)] == \
        [early.id, late.id]
    assert [r.id for r in sdk.refunds.list(location_id=p.location_id, request_options=RO)] == \
        [late.id, early.id]
    assert list(sdk.refunds.list(location_id="ELSEWHERE", request_options=RO)) == []


def test_refund_fields(sdk) -> None:
    # S1 RefundPaymentRequest: reason and team_member_id are kept; app_fee_money is at most
    # amount_money and only for a payment with an app fee; location_id and customer_id are
    # "only allowed when unlinked=true".
    p = pay(sdk, 1000, app_fee_money=usd(100))
    r = sdk.refunds.refund_payment(idempotency_key=key(), payment_id=p.id, amount_money=usd(300),
                                   app_fee_money=usd(30), reason="damaged", team_member_id="TM3",
                                   request_options=RO).refund
    got = sdk.refunds.get(r.id, request_options=RO).refund
    assert (got.reason, got.team_member_id, got.app_fee_money.amount) == ("damaged", "TM3", 30)
    for extra, field in (({"app_fee_money": usd(400)}, "app_fee_money.amount"),
                         ({"location_id": p.location_id}, "location_id"),
                         ({"customer_id": "C1"}, "customer_id")):
        with pytest.raises(ApiError) as info:
            sdk.refunds.refund_payment(idempotency_key=key(), payment_id=p.id,
                                       amount_money=usd(300), request_options=RO, **extra)
        assert info.value.body["errors"][0]["field"] == field
    plain = pay(sdk, 1000)
    with pytest.raises(ApiError) as info:
        sdk.refunds.refund_payment(idempotency_key=key(), payment_id=plain.id,
                                   amount_money=usd(300), app_fee_money=usd(1), request_options=RO)
    assert info.value.body["errors"][0]["field"] == "app_fee_money"


def test_subscription_api_version(sdk, raw) -> None:
    # S1 WebhookSubscription.api_version: the version of the event payloads.
    sub = sdk.webhooks.subscriptions.create(idempotency_key=key(), subscription={
        "notification_url": "https://localhost/hook", "event_types": ["payment.created"],
        "api_version": "2024-01-18"}, request_options=RO).subscription
    assert sub.api_version == "2024-01-18"
    up = sdk.webhooks.subscriptions.update(sub.id, subscription={"api_version": "2025-08-20"},
                                           request_options=RO).subscription
    assert up.api_version == "2025-08-20"
    with pytest.raises(ApiError) as info:
        sdk.webhooks.subscriptions.update(sub.id, subscription={"api_version": "latest"},
                                          request_options=RO)
    assert info.value.body["errors"][0]["field"] == "subscription.api_version"

"""Merchants are fully isolated: another merchant's ids answer 404 NOT_FOUND exactly like ids that
never existed, lists and searches never mix, and the control API only touches the caller."""

from __future__ import annotations

from typing import Any

import pytest
from square import Square
from square.core.api_error import ApiError

RO = {"max_retries": 0}


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


@pytest.fixture
def alice_world(make_sdk) -> dict[str, Any]:
    alice = make_sdk("alice-token")
    order = alice.orders.create(order={"location_id": "main", "line_items": [
        {"name": "Tea", "quantity": "1", "base_price_money": usd(300)}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "A"}}}]},
        idempotency_key="a-order", request_options=RO).order
    held = alice.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="a-held",
                                 amount_money=usd(300), order_id=order.id, autocomplete=False,
                                 request_options=RO).payment
    paid = alice.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="a-paid",
                                 amount_money=usd(900), request_options=RO).payment
    refund = alice.refunds.refund_payment(idempotency_key="a-ref", payment_id=paid.id,
                                          amount_money=usd(100), request_options=RO).refund
    location = alice.locations.get("main", request_options=RO).location
    return {"sdk": alice, "order": order, "held": held, "paid": paid, "refund": refund,
            "location": location}


def _not_found(call) -> dict:
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.status_code == 404
    assert info.value.errors[0].code == "NOT_FOUND"
    return info.value.body


def test_other_merchants_ids_are_not_found(alice_world, make_sdk) -> None:
    w = alice_world
    bob = make_sdk("bob-token")
    body = _not_found(lambda: bob.orders.get(w["order"].id, request_options=RO))
    assert body == {"errors": [{"code": "NOT_FOUND",
                                "detail": f"Could not find order with id: {w['order'].id}",
                                "field": "order_id", "category": "INVALID_REQUEST_ERROR"}]}
    _not_found(lambda: bob.payments.get(w["paid"].id, request_options=RO))
    _not_found(lambda: bob.refunds.get(w["refund"].id, request_options=RO))
    _not_found(lambda: bob.locations.get(w["location"].id, request_options=RO))
    _not_found(lambda: bob.orders.update(w["order"].id, order={"version": 2, "state": "CANCELED"},
                                         request_options=RO))
    _not_found(lambda: bob.orders.pay(w["order"].id, idempotency_key="b", payment_ids=[],
                                      request_options=RO))
    _not_found(lambda: bob.orders.clone(order_id=w["order"].id, request_options=RO))
    _not_found(lambda: bob.payments.complete(w["held"].id, request_options=RO))
    _not_found(lambda: bob.payments.cancel(w["held"].id, request_options=RO))
    _not_found(lambda: bob.payments.update(w["held"].id, idempotency_key="b",
                                           payment={"amount_money": usd(1)}, request_options=RO))
    _not_found(lambda: bob.refunds.refund_payment(idempotency_key="b", payment_id=w["paid"].id,
                                                  amount_money=usd(1), request_options=RO))
    _not_found(lambda: bob.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="b",
                                           amount_money=usd(300), order_id=w["order"].id,
                                           request_options=RO))
    _not_found(lambda: bob.orders.create(order={"location_id": w["location"].id},
                                         request_options=RO))
    _not_found(lambda: bob.orders.search(location_ids=[w["location"].id], request_options=RO))


def test_alice_is_untouched_by_bob(alice_world, make_sdk) -> None:
    w = alice_world
    alice, bob = w["sdk"], make_sdk("bob-token")
    for call in (lambda: bob.payments.cancel(w["held"].id, request_options=RO),
                 lambda: bob.orders.update(w["order"].id, order={"version": 2, "state": "CANCELED"},
                                           request_options=RO)):
        with pytest.raises(ApiError):
            call()
    bob.payments.cancel_by_idempotency_key(idempotency_key="a-held", request_options=RO)
    assert alice.payments.get(w["held"].id, request_options=RO).payment.status == "APPROVED"
    assert alice.orders.get(w["order"].id, request_options=RO).order.state == "OPEN"


def test_lists_and_searches_never_mix(alice_world, make_sdk) -> None:
    w = alice_world
    bob = make_sdk("bob-token")
    mine = bob.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="a-paid",
                               amount_money=usd(900), request_options=RO).payment
    assert mine.id != w["paid"].id  # same key, other merchant: a new payment
    assert [p.id for p in bob.payments.list(request_options=RO)] == [mine.id]
    assert list(bob.refunds.list(request_options=RO)) == []
    assert [o.id for o in bob.orders.search(location_ids=["main"], request_options=RO).orders] == [mine.order_id]
    assert bob.orders.batch_get(order_ids=[w["order"].id, w["paid"].order_id],
                                request_options=RO).orders == []
    alice_ids = {p.id for p in w["sdk"].payments.list(request_options=RO)}
    assert alice_ids == {w["held"].id, w["paid"].id}


def test_control_api_is_scoped_to_the_caller(alice_world, make_raw) -> None:
    w = alice_world
    alice, bob = make_raw("alice-token"), make_raw("bob-token")
    before = alice.get("/_sim/state").json()
    assert bob.post("/_sim/clock/advance", json={"seconds": 30 * 24 * 3600}).status_code == 200
    assert bob.post("/_sim/reset").status_code == 200
    assert alice.get("/_sim/state").json() == before
    assert w["sdk"].payments.get(w["held"].id, request_options=RO).payment.status == "APPROVED"
    assert bob.post(f"/_sim/refunds/{w['refund'].id}/settle").status_code == 404


def test_isolation_over_a_real_socket(served, http_client) -> None:
    a = Square(token="sock-a", base_url=served, httpx_client=http_client)
    b = Square(token="sock-b", base_url=served, httpx_client=http_client)
    p = a.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="k", amount_money=usd(5),
                          request_options=RO).payment
    _not_found(lambda: b.payments.get(p.id, request_options=RO))
    assert a.payments.get(p.id, request_options=RO).payment == p

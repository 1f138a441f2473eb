"""Orders API through the official SDK: the seed story, every endpoint's happy path, search and
its pagination."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from square.core.api_error import ApiError

RO = {"max_retries": 0}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ORDER_ID = re.compile(r"^[0-9A-Za-z]{27}eY$")
CANCEL_AFTER_PAYMENT = {"errors": [{
    "code": "BAD_REQUEST",
    "detail": "Orders cannot be canceled after payments have been processed.",
    "field": "order.state",
    "category": "INVALID_REQUEST_ERROR",
}]}
_keys = itertools.count()


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def new_order(sdk, *, price: int = 500, quantity: str = "2", pickup: bool = True, **extra: Any):
    order: dict[str, Any] = {
        "location_id": "main",
        "line_items": [{"name": "Latte", "quantity": quantity, "base_price_money": usd(price)}],
        **extra,
    }
    if pickup:
        order["fulfillments"] = [{"type": "PICKUP", "pickup_details": {
            "recipient": {"display_name": "Ann"}, "pickup_at": "2026-01-06T12:00:00Z"}}]
    return sdk.orders.create(order=order, idempotency_key=key("order"), request_options=RO).order


def pay_card(sdk, order, *, autocomplete: bool = True, amount: int | None = None):
    amount = order.total_money.amount if amount is None else amount
    return sdk.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=key("pay"),
                               amount_money=usd(amount), order_id=order.id,
                               autocomplete=autocomplete, request_options=RO).payment


def advance(raw, seconds: float) -> None:
    r = raw.post("/_sim/clock/advance", json={"seconds": seconds})
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------------------ seed story

def test_seed_story_refund_then_cancel(any_sdk) -> None:
    """The forum thread: refund a paid order, try to cancel it (Square refuses), cancel the
    fulfillment, then cancel the order."""
    sdk = any_sdk
    order = new_order(sdk)
    payment = pay_card(sdk, order)
    assert payment.status == "COMPLETED"
    refund = sdk.refunds.refund_payment(idempotency_key=key("refund"), payment_id=payment.id,
                                        amount_money=usd(1000), reason="customer request",
                                        request_options=RO).refund
    assert refund.status == "PENDING"
    current = sdk.orders.get(order.id, request_options=RO).order
    assert current.state == "OPEN"

    with pytest.raises(ApiError) as info:
        sdk.orders.update(order.id, order={"version": current.version, "state": "CANCELED"},
                          idempotency_key=key("cancel"), request_options=RO)
    assert info.value.status_code == 400
    assert info.value.body == CANCEL_AFTER_PAYMENT
    assert sdk.orders.get(order.id, request_options=RO).order.version == current.version

    uid = current.fulfillments[0].uid
    step = sdk.orders.update(order.id, order={"version": current.version, "fulfillments": [
        {"uid": uid, "state": "CANCELED", "pickup_details": {"cancel_reason": "Customer cancelled"}}]},
        idempotency_key=key("ful"), request_options=RO).order
    assert step.fulfillments[0].state == "CANCELED"
    assert step.version == current.version + 1
    done = sdk.orders.update(order.id, order={"version": step.version, "state": "CANCELED"},
                             idempotency_key=key("cancel"), request_options=RO).order
    assert done.state == "CANCELED"
    assert RFC3339.match(done.closed_at)


def test_seed_story_void_approved_payment_then_cancel(any_sdk) -> None:
    """The staff's alternative: a delayed-capture payment is not processed, so voiding it lets
    the order be canceled (together with its fulfillment)."""
    sdk = any_sdk
    order = new_order(sdk)
    payment = pay_card(sdk, order, autocomplete=False)
    assert payment.status == "APPROVED"
    assert payment.card_details.status == "AUTHORIZED"
    voided = sdk.payments.cancel(payment.id, request_options=RO).payment
    assert voided.status == "CANCELED"
    assert voided.card_details.status == "VOIDED"
    current = sdk.orders.get(order.id, request_options=RO).order
    uid = current.fulfillments[0].uid
    done = sdk.orders.update(order.id, order={
        "version": current.version, "state": "CANCELED",
        "fulfillments": [{"uid": uid, "state": "CANCELED"}]},
        idempotency_key=key("cancel"), request_options=RO).order
    assert done.state == "CANCELED"
    assert done.fulfillments[0].state == "CANCELED"


def test_cancel_with_open_fulfillment_alone_is_rejected(sdk) -> None:
    order = new_order(sdk)
    with pytest.raises(ApiError) as info:
        sdk.orders.update(order.id, order={"version": 1, "state": "CANCELED"}, request_options=RO)
    assert info.value.status_code == 400
    assert info.value.errors[0].code == "INVALID_VALUE"
    assert info.value.errors[0].field == "order.state"


def test_unpaid_order_without_fulfillments_cancels(sdk) -> None:
    order = new_order(sdk, pickup=False)
    done = sdk.orders.update(order.id, order={"version": 1, "state": "CANCELED"},
                             request_options=RO).order
    assert done.state == "CANCELED"
    assert done.version == 2


# ------------------------------------------------------------------------------ create/get

def test_create_order_shape(sdk) -> None:
    order = new_order(sdk, reference_id="cart-42", customer_id="CUST1",
                      metadata={"channel": "web"})
    assert ORDER_ID.match(order.id)
    assert order.state == "OPEN"
    assert order.version == 1
    assert order.location_id == sdk.locations.get("main", request_options=RO).location.id
    assert RFC3339.match(order.created_at) and order.created_at == order.updated_at
    assert order.closed_at is None
    assert order.reference_id == "cart-42"
    assert order.customer_id == "CUST1"
    assert order.metadata == {"channel": "web"}
    line = order.line_items[0]
    assert line.uid and line.quantity == "2"
    assert line.total_money.amount == 1000
    assert order.total_money.amount == 1000
    assert order.net_amount_due_money.amount == 1000
    assert order.fulfillments[0].state == "PROPOSED"
    assert order.fulfillments[0].uid
    assert sdk.orders.get(order.id, request_options=RO).order == order


def test_create_draft_order(sdk) -> None:
    order = new_order(sdk, state="DRAFT")
    assert order.state == "DRAFT"
    opened = sdk.orders.update(order.id, order={"version": 1, "state": "OPEN"},
                               request_options=RO).order
    assert opened.state == "OPEN"


def test_unknown_order_is_not_found(sdk) -> None:
    with pytest.raises(ApiError) as info:
        sdk.orders.get("nope", request_options=RO)
    assert info.value.status_code == 404
    assert info.value.errors[0].code == "NOT_FOUND"


# ---------------------------------------------------------------------------------- update

def test_update_is_sparse_and_bumps_version(sdk) -> None:
    order = new_order(sdk, pickup=False)
    uid = order.line_items[0].uid
    updated = sdk.orders.update(order.id, order={
        "version": 1,
        "line_items": [{"uid": uid, "note": "oat milk"},
                       {"name": "Scone", "quantity": "1", "base_price_money": usd(300)}],
    }, idempotency_key=key("upd"), request_options=RO).order
    assert updated.version == 2
    assert [li.name for li in updated.line_items] == ["Latte", "Scone"]
    assert updated.line_items[0].note == "oat milk"
    assert updated.line_items[0].quantity == "2"
    assert updated.total_money.amount == 1300
    assert updated.updated_at >= order.updated_at
    cleared = sdk.orders.update(order.id, order={"version": 2},
                                fields_to_clear=[f"line_items[{uid}].note"],
                                idempotency_key=key("upd"), request_options=RO).order
    assert cleared.version == 3
    assert cleared.line_items[0].note is None


def test_version_mismatch(sdk) -> None:
    order = new_order(sdk, pickup=False)
    sdk.orders.update(order.id, order={"version": 1, "reference_id": "a"}, request_options=RO)
    with pytest.raises(ApiError) as info:
        sdk.orders.update(order.id, order={"version": 1, "reference_id": "b"}, request_options=RO)
    assert info.value.status_code == 400
    assert info.value.body == {"errors": [{
        "code": "VERSION_MISMATCH",
        "detail": f"Supplied version 1 does not match the current version 2 of order {order.id}.",
        "field": "order.version",
        "category": "INVALID_REQUEST_ERROR"}]}
    assert sdk.orders.get(order.id, request_options=RO).order.reference_id == "a"


def test_update_without_version(sdk) -> None:
    order = new_order(sdk, pickup=False)
    with pytest.raises(ApiError) as info:
        sdk.orders.update(order.id, order={"reference_id": "x"}, request_options=RO)
    assert info.value.body == {"errors": [{
        "code": "BAD_REQUEST", "detail": "Missing required parameter.", "field": "order.version",
        "category": "INVALID_REQUEST_ERROR"}]}


def test_line_items_locked_after_payment(sdk) -> None:
    order = new_order(sdk)
    pay_card(sdk, order)
    version = sdk.orders.get(order.id, request_options=RO).order.version
    with pytest.raises(ApiError) as info:
        sdk.orders.update(order.id, order={"version": version, "line_items": [
            {"name": "Extra", "quantity": "1", "base_price_money": usd(1)}]}, request_options=RO)
    assert info.value.errors[0].detail == "LineItems cannot be modified for finalized tenders."


# ------------------------------------------------------------------------------------- pay

def test_pay_order_captures_listed_and_voids_others(sdk) -> None:
    order = new_order(sdk, pickup=False)
    first = pay_card(sdk, order, autocomplete=False, amount=600)
    second = pay_card(sdk, order, autocomplete=False, amount=400)
    stray_order = sdk.orders.get(order.id, request_options=RO).order
    assert stray_order.net_amount_due_money.amount == 1000  # approved money is not captured
    paid = sdk.orders.pay(order.id, idempotency_key=key("pay"), payment_ids=[first.id, second.id],
                          order_version=stray_order.version, request_options=RO).order
    assert paid.state == "COMPLETED"  # no fulfillments: PayOrder completes it
    assert paid.net_amount_due_money.amount == 0
    assert {t.payment_id for t in paid.tenders} == {first.id, second.id}
    for pid in (first.id, second.id):
        p = sdk.payments.get(pid, request_options=RO).payment
        assert p.status == "COMPLETED"
        assert p.card_details.status == "CAPTURED"


def test_pay_order_with_fulfillment_stays_open(sdk) -> None:
    order = new_order(sdk)
    p = pay_card(sdk, order, autocomplete=False)
    other = new_order(sdk, price=100, quantity="1", pickup=False)
    paid = sdk.orders.pay(order.id, idempotency_key=key("pay"), payment_ids=[p.id],
                          request_options=RO).order
    assert paid.state == "OPEN"
    assert paid.net_amount_due_money.amount == 0
    q = pay_card(sdk, other, autocomplete=False, amount=50)
    with pytest.raises(ApiError) as info:  # the listed payments do not cover what is due
        sdk.orders.pay(other.id, idempotency_key=key("pay"), payment_ids=[q.id], request_options=RO)
    assert info.value.errors[0].field == "payment_ids"
    assert sdk.payments.get(q.id, request_options=RO).payment.status == "APPROVED"


def test_pay_order_stale_version(sdk) -> None:
    order = new_order(sdk, pickup=False)
    p = pay_card(sdk, order, autocomplete=False)
    with pytest.raises(ApiError) as info:
        sdk.orders.pay(order.id, idempotency_key=key("pay"), payment_ids=[p.id], order_version=1,
                       request_options=RO)
    assert info.value.errors[0].code == "VERSION_MISMATCH"
    assert info.value.errors[0].field == "order_version"
    assert sdk.payments.get(p.id, request_options=RO).payment.status == "APPROVED"


def test_zero_total_order_is_paid_with_no_payments(sdk) -> None:
    order = new_order(sdk, price=0, pickup=False)
    paid = sdk.orders.pay(order.id, idempotency_key=key("pay"), payment_ids=[], request_options=RO).order
    assert paid.state == "COMPLETED"


# --------------------------------------------------------------------- batch, clone, calc

def test_batch_retrieve_ignores_unknown_ids(sdk) -> None:
    a = new_order(sdk)
    b = new_order(sdk, pickup=False)
    got = sdk.orders.batch_get(order_ids=[b.id, "nope", a.id, a.id], request_options=RO).orders
    assert [o.id for o in got] == [b.id, a.id]
    assert sdk.orders.batch_get(order_ids=["nope"], request_options=RO).orders == []
    other_loc = sdk.orders.batch_get(order_ids=[a.id], location_id="ELSEWHERE", request_options=RO)
    assert other_loc.orders == []


def test_batch_retrieve_caps_at_100_ids(sdk) -> None:
    a = new_order(sdk)
    assert len(sdk.orders.batch_get(order_ids=[a.id] * 100, request_options=RO).orders) == 1
    with pytest.raises(ApiError) as info:
        sdk.orders.batch_get(order_ids=[a.id] * 101, request_options=RO)
    assert info.value.status_code == 400
    assert info.value.errors[0].field == "order_ids"


def test_clone_is_a_draft_copy_of_core_fields(sdk) -> None:
    src = new_order(sdk, customer_id="C9", taxes=[{"uid": "tax", "name": "VAT", "percentage": "10",
                                                   "scope": "ORDER"}])
    pay_card(sdk, src)
    version = sdk.orders.get(src.id, request_options=RO).order.version
    k = key("clone")
    clone = sdk.orders.clone(order_id=src.id, version=version, idempotency_key=k,
                             request_options=RO).order
    assert clone.id != src.id
    assert clone.state == "DRAFT"
    assert clone.version == 1
    assert [li.name for li in clone.line_items] == ["Latte"]
    assert clone.taxes[0].name == "VAT"
    assert clone.customer_id == "C9"
    assert clone.fulfillments is None
    assert clone.tenders is None
    assert clone.total_money.amount == 1100
    again = sdk.orders.clone(order_id=src.id, version=version, idempotency_key=k,
                             request_options=RO).order
    assert again == clone  # replay returns the originally cloned order
    with pytest.raises(ApiError) as info:
        sdk.orders.clone(order_id=src.id, version=version - 1, request_options=RO)
    assert info.value.errors[0].code == "VERSION_MISMATCH"


def test_calculate_prices_without_storing(sdk, sim_state) -> None:
    before = sim_state()
    calc = sdk.orders.calculate(order={
        "location_id": "main",
        "line_items": [{"name": "Latte", "quantity": "3", "base_price_money": usd(250)}],
        "discounts": [{"uid": "d", "name": "10% off", "percentage": "10", "scope": "ORDER"}],
    }, request_options=RO).order
    assert calc.total_money.amount == 675
    assert calc.total_discount_money.amount == 75
    assert calc.discounts[0].applied_money.amount == 75
    assert sim_state() == before


# ---------------------------------------------------------------------------------- search

def _ids(resp) -> list[str]:
    return [o.id for o in resp.orders or []]


def test_search_filters_and_sorts(sdk, raw) -> None:
    t0 = [new_order(sdk, customer_id="ALICE") for _ in range(2)]
    advance(raw, 60)
    t1 = [new_order(sdk, pickup=False, customer_id="BOB") for _ in range(2)]
    advance(raw, 60)
    t2 = new_order(sdk, pickup=False)
    advance(raw, 5)
    canceled = sdk.orders.update(t1[0].id, order={"version": 1, "state": "CANCELED"},
                                 request_options=RO).order

    everything = sdk.orders.search(location_ids=["main"], request_options=RO)
    assert set(_ids(everything)) == {o.id for o in [*t0, *t1, t2]}
    newest_first = [o.created_at for o in everything.orders]
    assert newest_first == sorted(newest_first, reverse=True)
    assert everything.cursor is None

    asc = sdk.orders.search(location_ids=["main"], query={"sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"}},
                            request_options=RO)
    assert _ids(asc)[:2] == sorted(o.id for o in t0)  # equal timestamps tie-break on id
    assert _ids(asc)[-1] == t2.id

    only_open = sdk.orders.search(location_ids=["main"], query={"filter": {"state_filter": {"states": ["OPEN"]}}},
                                  request_options=RO)
    assert canceled.id not in _ids(only_open)
    assert len(_ids(only_open)) == 4
    only_canceled = sdk.orders.search(location_ids=["main"], query={"filter": {"state_filter": {"states": ["CANCELED"]}}},
                                      request_options=RO)
    assert _ids(only_canceled) == [canceled.id]

    window = {"start_at": t1[0].created_at, "end_at": t2.created_at}
    mid = sdk.orders.search(location_ids=["main"], query={"filter": {"date_time_filter": {"created_at": window}}},
                            request_options=RO)
    assert set(_ids(mid)) == {o.id for o in t1}

    closed = sdk.orders.search(location_ids=["main"], query={
        "filter": {"date_time_filter": {"closed_at": {"start_at": t0[0].created_at}}},
        "sort": {"sort_field": "CLOSED_AT"}}, request_options=RO)
    assert _ids(closed) == [canceled.id]

    by_updated = sdk.orders.search(location_ids=["main"], query={"sort": {"sort_field": "UPDATED_AT", "sort_order": "DESC"}},
                                   request_options=RO)
    assert _ids(by_updated)[0] == canceled.id  # updated last

    bob = sdk.orders.search(location_ids=["main"], query={"filter": {"customer_filter": {"customer_ids": ["BOB"]}}},
                            request_options=RO)
    assert set(_ids(bob)) == {o.id for o in t1}

    entries = sdk.orders.search(location_ids=["main"], return_entries=True, limit=2, request_options=RO)
    assert entries.orders is None
    assert len(entries.order_entries) == 2
    first = entries.order_entries[0]
    assert first.order_id == t2.id and first.version == 1 and first.location_id == t2.location_id


def test_search_date_filter_needs_matching_sort(sdk) -> None:
    with pytest.raises(ApiError) as info:
        sdk.orders.search(location_ids=["main"], query={"filter": {"date_time_filter": {
            "closed_at": {"start_at": "2026-01-01T00:00:00Z"}}}}, request_options=RO)
    assert info.value.status_code == 400
    assert info.value.errors[0].field == "query.sort.sort_field"


def test_search_limits(sdk) -> None:
    with pytest.raises(ApiError) as info:
        sdk.orders.search(location_ids=["main"] * 11, request_options=RO)
    assert info.value.errors[0].field == "location_ids"
    for bad in (0, 1001):
        with pytest.raises(ApiError) as info:
            sdk.orders.search(location_ids=["main"], limit=bad, request_options=RO)
        assert info.value.errors[0].field == "limit"
    with pytest.raises(ApiError) as info:
        sdk.orders.search(location_ids=["NOPE"], request_options=RO)
    assert info.value.errors[0].code == "NOT_FOUND"


def test_search_default_limit_is_500(raw, merchant) -> None:
    # Raw HTTP: the SDK takes ~7 ms to parse each order, the simulator does not.
    for _ in range(501):
        merchant.engine.create_order({"location_id": "main"})
    page = raw.post("/v2/orders/search", json={"location_ids": ["main"]}).json()
    assert len(page["orders"]) == 500
    assert page["cursor"]
    rest = raw.post("/v2/orders/search", json={"location_ids": ["main"], "cursor": page["cursor"]}).json()
    assert len(rest["orders"]) == 1 and "cursor" not in rest
    seen = [o["id"] for o in page["orders"] + rest["orders"]]
    assert len(set(seen)) == 501
    assert len(raw.post("/v2/orders/search", json={"location_ids": ["main"], "limit": 1000}).json()["orders"]) == 501


@pytest.mark.parametrize("order", ["DESC", "ASC"])
def test_search_pagination_has_no_duplicates(sdk, raw, order: str) -> None:
    existing = []
    for i in range(11):
        existing.append(new_order(sdk, pickup=False).id)
        if i % 4 == 3:
            advance(raw, 1)
    query = {"sort": {"sort_field": "CREATED_AT", "sort_order": order}}
    seen: list[str] = []
    page = sdk.orders.search(location_ids=["main"], query=query, limit=3, request_options=RO)
    pages = 1
    while True:
        seen.extend(_ids(page))
        # Orders created between pages (same and later timestamps) must not shift the pages.
        new_order(sdk, pickup=False)
        if not page.cursor:
            break
        page = sdk.orders.search(location_ids=["main"], query=query, limit=3, cursor=page.cursor, request_options=RO)
        pages += 1
        assert pages < 20
    assert len(seen) == len(set(seen))
    assert set(existing) <= set(seen)


def test_search_cursor_is_tied_to_its_query(sdk) -> None:
    for _ in range(3):
        new_order(sdk, pickup=False)
    page = sdk.orders.search(location_ids=["main"], limit=2, request_options=RO)
    assert page.cursor
    with pytest.raises(ApiError) as info:
        sdk.orders.search(location_ids=["main"], limit=2, cursor=page.cursor,
                          query={"filter": {"state_filter": {"states": ["OPEN"]}}},
                          request_options=RO)
    assert info.value.errors[0].code == "INVALID_CURSOR"
    # the same query with another page size may continue
    assert len(sdk.orders.search(location_ids=["main"], limit=5, cursor=page.cursor, request_options=RO).orders) == 1


def test_search_renders_orders_exactly_as_retrieve(raw, sdk, merchant) -> None:
    order = new_order(sdk)
    pay_card(sdk, order, autocomplete=False, amount=400)
    plain = new_order(sdk, pickup=False)

    def check() -> None:
        found = raw.post("/v2/orders/search", json={"location_ids": ["main"]}).json()["orders"]
        assert found == [raw.get(f"/v2/orders/{o['id']}").json()["order"] for o in found]
        assert found == [merchant.engine.get_order(o["id"]) for o in found]
        ids = [o["id"] for o in found]
        assert raw.post("/v2/orders/batch-retrieve", json={"order_ids": ids}).json()["orders"] == found

    check()
    sdk.orders.update(plain.id, order={"version": 1, "reference_id": "changed"}, request_options=RO)
    check()
    found = {o["id"]: o for o in raw.post("/v2/orders/search", json={"location_ids": ["main"]}).json()["orders"]}
    assert found[plain.id]["reference_id"] == "changed"


def test_search_sees_payment_changes_that_leave_the_order_alone(raw, sdk) -> None:
    """An APPROVED payment on a CANCELED order can still be voided; the order record does not
    change, but its tenders do."""
    order = new_order(sdk, pickup=False)
    p = pay_card(sdk, order, autocomplete=False)
    version = sdk.orders.get(order.id, request_options=RO).order.version
    sdk.orders.update(order.id, order={"version": version, "state": "CANCELED"}, request_options=RO)
    before = raw.post("/v2/orders/search", json={"location_ids": ["main"]}).json()["orders"][0]
    assert [t["payment_id"] for t in before["tenders"]] == [p.id]
    sdk.payments.cancel(p.id, request_options=RO)
    after = raw.post("/v2/orders/search", json={"location_ids": ["main"]}).json()["orders"][0]
    assert after["version"] == before["version"]
    assert "tenders" not in after
    assert raw.get(f"/v2/orders/{order.id}").json()["order"] == after
    assert raw.post("/v2/orders/batch-retrieve", json={"order_ids": [order.id]}).json() == {
        "orders": [after]}

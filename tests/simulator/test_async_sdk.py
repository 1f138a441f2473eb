"""The async SDK (AsyncSquare) against the app in-process through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import httpx
import pytest
from square import AsyncSquare
from square.core.api_error import ApiError

RO = {"max_retries": 0}


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def run(app: Any, body: Callable[[AsyncSquare], Awaitable[Any]], token: str = "async-token") -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            client = AsyncSquare(token=token, base_url="http://simulator", httpx_client=http)
            return await body(client)

    return asyncio.run(main())


def test_seed_story_async(app) -> None:
    async def story(sq: AsyncSquare) -> None:
        order = (await sq.orders.create(order={
            "location_id": "main",
            "line_items": [{"name": "Cake", "quantity": "1", "base_price_money": usd(1500)}],
            "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "B"}}}],
        }, idempotency_key="o", request_options=RO)).order
        p = (await sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="p",
                                      amount_money=usd(1500), order_id=order.id,
                                      request_options=RO)).payment
        await sq.refunds.refund_payment(idempotency_key="r", payment_id=p.id,
                                        amount_money=usd(1500), request_options=RO)
        current = (await sq.orders.get(order.id, request_options=RO)).order
        with pytest.raises(ApiError) as info:
            await sq.orders.update(order.id, order={"version": current.version, "state": "CANCELED"},
                                   request_options=RO)
        assert info.value.body == {"errors": [{
            "code": "BAD_REQUEST",
            "detail": "Orders cannot be canceled after payments have been processed.",
            "field": "order.state", "category": "INVALID_REQUEST_ERROR"}]}
        uid = current.fulfillments[0].uid
        step = (await sq.orders.update(order.id, order={
            "version": current.version, "fulfillments": [{"uid": uid, "state": "CANCELED"}]},
            request_options=RO)).order
        done = (await sq.orders.update(order.id, order={"version": step.version, "state": "CANCELED"},
                                       request_options=RO)).order
        assert done.state == "CANCELED"

    run(app, story)


def test_empty_body_cancel_and_cancel_by_key_async(app) -> None:
    async def body(sq: AsyncSquare) -> None:
        a = (await sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="a",
                                      amount_money=usd(100), autocomplete=False,
                                      request_options=RO)).payment
        b = (await sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="b",
                                      amount_money=usd(100), autocomplete=False,
                                      request_options=RO)).payment
        assert (await sq.payments.cancel(a.id, request_options=RO)).payment.status == "CANCELED"
        resp = await sq.payments.cancel_by_idempotency_key(idempotency_key="b", request_options=RO)
        assert resp.errors is None
        assert (await sq.payments.get(b.id, request_options=RO)).payment.status == "CANCELED"

    run(app, body)


def test_concurrent_requests(app) -> None:
    async def body(sq: AsyncSquare) -> None:
        distinct = await asyncio.gather(*(
            sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=f"k{i}",
                               amount_money=usd(100 + i), request_options=RO)
            for i in range(20)))
        assert len({r.payment.id for r in distinct}) == 20
        same = await asyncio.gather(*(
            sq.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="one-key",
                               amount_money=usd(42), request_options=RO)
            for _ in range(10)))
        assert len({r.payment.id for r in same}) == 1
        listed = [p async for p in await sq.payments.list(limit=7, request_options=RO)]
        assert len(listed) == 21
        assert len({p.id for p in listed}) == 21

    run(app, body)


def test_async_errors_and_isolation(app) -> None:
    async def create(sq: AsyncSquare) -> str:
        return (await sq.payments.create(source_id="CASH", idempotency_key="c",
                                         amount_money=usd(10),
                                         cash_details={"buyer_supplied_money": usd(10)},
                                         request_options=RO)).payment.id

    pid = run(app, create, token="owner")

    async def other(sq: AsyncSquare) -> None:
        with pytest.raises(ApiError) as info:
            await sq.payments.get(pid, request_options=RO)
        assert info.value.status_code == 404

    run(app, other, token="stranger")

    async def anonymous(sq: AsyncSquare) -> None:
        with pytest.raises(ApiError) as info:
            await sq.locations.list(request_options=RO)
        assert info.value.status_code == 401

    run(app, anonymous, token=None)  # type: ignore[arg-type]

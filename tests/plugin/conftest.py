"""Helpers for the pytest plugin's tests. The pytester fixture itself is enabled in the
top-level tests/conftest.py (pytest reads ``pytest_plugins`` only there)."""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from orderfsm.simulator import create_app, running


class LiveServer:
    """A real simulator on loopback, and the app behind it (to look inside from the test)."""

    def __init__(self, app: Any, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    @property
    def merchants(self) -> dict[str, Any]:
        return self.app.state.store.merchants


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    app = create_app()
    with running(app=app) as base_url:
        yield LiveServer(app, base_url)


@pytest.fixture(scope="module")
def bare_server() -> Iterator[str]:
    """A server that answers 404 to everything: no Square API, no /_sim control API."""
    from fastapi import FastAPI

    with running(app=FastAPI()) as base_url:
        yield base_url


def _exercise(client: Any) -> None:
    """One pass over the SDK calls the plugin tests make, so their modules get imported."""
    from square.core.api_error import ApiError

    usd = {"amount": 100, "currency": "USD"}
    loc = client.locations.list().locations[0].id
    client.locations.get("main")
    order = client.orders.create(idempotency_key="warm", order={
        "location_id": loc, "line_items": [{"name": "a", "quantity": "1", "base_price_money": usd}],
        "fulfillments": [{"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "A"}}}],
    }).order
    client.orders.get(order.id)
    client.orders.search(location_ids=[loc])
    payment = client.payments.create(source_id="cnon:card-nonce-ok", idempotency_key="warm",
                                     amount_money=usd, order_id=order.id).payment
    client.payments.get(payment.id)
    refund = client.refunds.refund_payment(idempotency_key="warm", payment_id=payment.id,
                                           amount_money=usd).refund
    client.refunds.get(refund.id)
    order = client.orders.get(order.id).order
    client.orders.update(order.id, order={"version": order.version, "fulfillments": [
        {"uid": order.fulfillments[0].uid, "state": "CANCELED"}]})
    try:
        client.payments.create(source_id="cnon:card-nonce-declined", idempotency_key="warm-2",
                               amount_money=usd)
    except ApiError:
        pass


@pytest.fixture(scope="session", autouse=True)
def _import_once() -> None:
    """pytester's in-process runs forget every module first imported inside them, so each run
    would import the SDK, the simulator and the HTTP stack again (seconds, and a race with
    server threads importing at the same time). Import them all once, up front."""
    from orderfsm.pytest_plugin import Simulator, _test_client, disable_retries
    from square import Square

    app = create_app()
    with _test_client(app) as http:
        _exercise(Simulator(app=app, token="warm", http=http).client())
        http.get("/_sim/events", headers={"Authorization": "Bearer warm"})
    # The live client's connections are closed here: a socket left for the garbage collector
    # surfaces later as an unraisable ResourceWarning inside a `-W error` pytester run.
    with running(app=app) as base_url, httpx.Client() as http_client:
        _exercise(disable_retries(Square(token="warm-live", base_url=base_url,
                                         httpx_client=http_client)))

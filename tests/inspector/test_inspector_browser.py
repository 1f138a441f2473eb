"""The inspector in a real headless chromium, against a simulator on a loopback socket.

The scenario of the issue: an order with a pickup is paid, part of it is refunded, and an attempt
to cancel it is rejected. The page must show each record's state, the lit state of each
lifecycle diagram, and the rejection with its rule; advancing the clock from the page must
update it without a reload. Screenshots go to the artifacts directory, and one of them to
docs/img/inspector.png (the picture docs/inspector.md shows).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from square import Square
from square.core.api_error import ApiError

from orderfsm.simulator import create_app, running

ROOT = Path(__file__).resolve().parents[2]
DOCS_SHOT = ROOT / "docs" / "img" / "inspector.png"
TOKEN = "inspector-demo"
RO = {"max_retries": 0}
WAIT = 15
RECEIVER_PORT = 48414


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server interface
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Any, str, str]]:
    """The simulator on a socket, and a webhook receiver that answers 200."""
    try:  # a fixed port keeps docs/img/inspector.png the same from run to run
        receiver = ThreadingHTTPServer(("127.0.0.1", RECEIVER_PORT), _Receiver)
    except OSError:
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    app = create_app(seed=14)
    try:
        with running(app=app) as base_url:
            yield app, base_url, f"http://127.0.0.1:{receiver.server_address[1]}/square"
    finally:
        receiver.shutdown()
        receiver.server_close()


def scenario(base_url: str, token: str, hook_url: str) -> dict[str, str]:
    """Order with a pickup, paid, partly refunded, then a cancel that Square refuses."""
    with httpx.Client() as http:
        sq = Square(token=token, base_url=base_url, httpx_client=http)
        sq.webhooks.subscriptions.create(idempotency_key="w-1", subscription={
            "name": "shop", "notification_url": hook_url, "api_version": "2025-08-20",
            "event_types": ["order.created", "order.updated", "payment.created",
                            "payment.updated", "refund.created", "refund.updated"]},
            request_options=RO)
        location = sq.locations.list(request_options=RO).locations[0].id
        order = sq.orders.create(idempotency_key="o-1", order={
            "location_id": location,
            "reference_id": "demo-42",
            "line_items": [
                {"name": "Flat white", "quantity": "2",
                 "base_price_money": {"amount": 450, "currency": "USD"}},
                {"name": "Croissant", "quantity": "1",
                 "base_price_money": {"amount": 375, "currency": "USD"}},
            ],
            "fulfillments": [{"type": "PICKUP", "pickup_details": {
                "recipient": {"display_name": "Ada"}, "pickup_at": "2026-01-05T16:00:00Z"}}],
        }, request_options=RO).order
        payment = sq.payments.create(
            source_id="cnon:card-nonce-ok", idempotency_key="p-1", order_id=order.id,
            amount_money={"amount": order.total_money.amount, "currency": "USD"},
            request_options=RO).payment
        refund = sq.refunds.refund_payment(
            idempotency_key="r-1", payment_id=payment.id, reason="one croissant was missing",
            amount_money={"amount": 375, "currency": "USD"}, request_options=RO).refund
        version = sq.orders.get(order.id, request_options=RO).order.version
        with pytest.raises(ApiError) as rejected:
            sq.orders.update(order.id, order={"location_id": location, "version": version,
                                              "state": "CANCELED"}, request_options=RO)
        assert rejected.value.status_code == 400
        flushed = http.post(f"{base_url}/_sim/webhooks/flush", json={"timeout_seconds": 20},
                            headers={"Authorization": f"Bearer {token}"}).json()
        assert flushed["idle"], flushed
    return {"order": order.id, "payment": payment.id, "refund": refund.id}


def _wait(driver: Any, what: str, check: Callable[[], Any]) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def probe(_: Any) -> Any:
        try:
            return check()
        except (StaleElementReferenceException, WebDriverException):
            return None

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(probe)
    except Exception as exc:
        raise AssertionError(f"the page never showed {what}") from exc


def _css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _lit(driver: Any, resource: str, ident: str) -> str:
    """The text of the lit (current) state in the diagram of one record."""
    return _css(driver, f'svg[data-diagram="{resource}"][data-id="{ident}"] .node.current').text


def _full_page(driver: Any, path: Path, selector: str = "body") -> None:
    """A PNG of the page from the top down to the bottom of ``selector`` (beyond the window)."""
    import base64

    bottom = driver.execute_script(
        "window.scrollTo(0, 0);"
        "return Math.ceil(document.querySelector(arguments[0]).getBoundingClientRect().bottom)",
        selector)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1440, "height": int(bottom) + 12, "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def test_the_inspector_shows_the_scenario_live(browser: Any, served: tuple[Any, str],
                                               artifacts: Path) -> None:
    _, base_url, hook = served
    ids = scenario(base_url, TOKEN, hook)
    browser.get(f"{base_url}/_sim/ui?token={TOKEN}")

    # The newest order is the refund's return order; pick ours from the list.
    row = _wait(browser, "the order in the list",
                lambda: _css(browser, f'#orders tr[data-order-id="{ids["order"]}"]'))
    row.click()
    _wait(browser, "the order's detail",
          lambda: _css(browser, f'#detail .summary[data-order-id="{ids["order"]}"]'))

    assert _css(browser, "#order-state").text == "OPEN"
    assert _lit(browser, "order", ids["order"]) == "OPEN"
    payment = _css(browser, f'.record[data-record="payment"][data-id="{ids["payment"]}"]')
    assert payment.get_attribute("data-state") == "COMPLETED"
    assert _lit(browser, "payment", ids["payment"]) == "COMPLETED"
    refund = _css(browser, f'.record[data-record="refund"][data-id="{ids["refund"]}"]')
    assert refund.get_attribute("data-state") == "PENDING"
    assert _lit(browser, "refund", ids["refund"]) == "PENDING"
    fulfillment = _css(browser, '.record[data-record="fulfillment"]')
    assert fulfillment.get_attribute("data-state") == "PROPOSED"
    assert _lit(browser, "fulfillment", fulfillment.get_attribute("data-id")) == "PROPOSED"
    assert "PICKUP" in fulfillment.text
    # Amounts: 2 x 4.50 + 3.75 = 12.75, all of it captured.
    summary = _css(browser, "#detail .summary").text
    assert "$12.75" in summary and "$0.00" in summary
    assert _css(browser, "#return-orders").text.count("COMPLETED") == 1

    rejection = _css(browser, '.rej[data-rule="order.cancel_after_payment"]')
    text = rejection.text
    assert f"PUT /v2/orders/{ids['order']}" in text
    assert "Orders cannot be canceled after payments have been processed." in text
    assert "cannot be CANCELED" in text  # the rule's statement, as `orderfsm explain` gives it
    assert "https://developer.squareup.com/forums/t/best-method-to-cancel-order-after-refund/922" in text
    _full_page(browser, artifacts / "inspector-before-advance.png")

    # Live: one virtual minute settles the refund; the page follows without a reload.
    marker = browser.execute_script("return window.__inspectorMarker = Math.random()")
    clock_before = _css(browser, "#clock").text
    _css(browser, 'button[data-advance="60"]').click()
    _wait(browser, "the refund settled",
          lambda: _css(browser, f'.record[data-record="refund"][data-id="{ids["refund"]}"]')
          .get_attribute("data-state") == "COMPLETED")
    assert browser.execute_script("return window.__inspectorMarker") == marker  # no reload
    assert _lit(browser, "refund", ids["refund"]) == "COMPLETED"
    assert _css(browser, "#clock").text != clock_before
    # The path so far is marked: the refund's PENDING->COMPLETED edge, PENDING as visited.
    diagram = f'svg[data-diagram="refund"][data-id="{ids["refund"]}"]'
    assert _css(browser, f'{diagram} path.edge.taken[data-edge="PENDING->COMPLETED"]')
    assert "visited" in _css(browser, f'{diagram} .node[data-state="PENDING"]').get_attribute("class")
    # The outbox lists the events with their delivery attempts.
    _wait(browser, "the refund.updated delivery", lambda: _css(
        browser, '#outbox .event[data-event-type="refund.updated"] .attempt.ok'))
    created = _css(browser, '#outbox .event[data-event-type="order.created"]').text
    assert hook in created and "DELIVERED" in created and "#1" in created

    shot = artifacts / "inspector.png"
    _full_page(browser, shot)
    assert shot.stat().st_size > 10_000


def test_the_docs_screenshot_is_regenerated(browser: Any, served: tuple[Any, str],
                                            artifacts: Path) -> None:
    """docs/img/inspector.png: the same scenario on its own merchant, with the pickup
    reserved and the clock a minute on (so every diagram shows a path)."""
    app, base_url, hook = served
    token = "inspector-docs"
    ids = scenario(base_url, token, hook)
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as http:
        order = http.get(f"/v2/orders/{ids['order']}").json()["order"]
        uid = order["fulfillments"][0]["uid"]
        r = http.put(f"/v2/orders/{ids['order']}", json={"order": {
            "version": order["version"], "fulfillments": [{"uid": uid, "state": "RESERVED"}]}})
        assert r.status_code == 200, r.text
        assert http.post("/_sim/clock/advance", json={"seconds": 60}).status_code == 200
    browser.get(f"{base_url}/_sim/ui?token={token}")
    _wait(browser, "the order in the list",
          lambda: _css(browser, f'#orders tr[data-order-id="{ids["order"]}"]')).click()
    _wait(browser, "the refund settled", lambda: _lit(browser, "refund", ids["refund"]) == "COMPLETED")
    assert _lit(browser, "fulfillment", uid) == "RESERVED"
    _full_page(browser, DOCS_SHOT, "main")
    assert DOCS_SHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (artifacts / "inspector-docs.png").write_bytes(DOCS_SHOT.read_bytes())


def test_ten_thousand_orders_are_paged(browser: Any, served: tuple[Any, str]) -> None:
    app, base_url, _ = served
    token = "inspector-10k"
    engine = app.state.store.merchant(token).engine
    body = {"location_id": engine.main_location_id, "line_items": [
        {"name": "Tea", "quantity": "1", "base_price_money": {"amount": 300, "currency": "USD"}}]}
    for _ in range(10_000):
        engine.create_order(body)
    browser.get(f"{base_url}/_sim/ui?token={token}")
    _wait(browser, "the order count", lambda: "10,000 total" in _css(browser, "#orders-count").text)
    rows = browser.find_elements("css selector", "#orders tbody tr")
    assert len(rows) == 50
    first = rows[0].get_attribute("data-order-id")
    assert _css(browser, "#page-info").text == "1–50 of 10,000"
    _css(browser, "#next-page").click()
    _wait(browser, "the second page", lambda: _css(browser, "#page-info").text == "51–100 of 10,000")
    assert _css(browser, "#orders tbody tr").get_attribute("data-order-id") != first

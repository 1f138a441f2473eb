"""One merchant's slow webhook receiver does not hold up another merchant's deliveries."""

from __future__ import annotations

import threading
import time

from simulator import create_app

from .conftest import TestClient, auth


def test_a_hanging_receiver_delays_only_its_own_merchant(http_receiver) -> None:
    release = threading.Event()
    arrived: dict[str, float] = {}

    def on_post(path: str, body: bytes) -> int:
        arrived.setdefault(path, time.monotonic())
        if path == "/slow":
            release.wait(20)
        return 200

    base = http_receiver(on_post).url("")
    app = create_app()
    app.state.config.log_requests = False
    c = TestClient(app)
    try:
        for token, path in (("slow-shop", "/slow"), ("fast-shop", "/fast")):
            r = c.post("/v2/webhooks/subscriptions", headers=auth(token), json={"subscription": {
                "event_types": ["order.created"], "notification_url": base + path}})
            assert r.status_code == 200, r.text
        c.post("/v2/orders", headers=auth("slow-shop"),
               json={"idempotency_key": "a", "order": {"location_id": "main"}})
        deadline = time.monotonic() + 10
        while "/slow" not in arrived:  # the slow shop's delivery is now hanging
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        c.post("/v2/orders", headers=auth("fast-shop"),
               json={"idempotency_key": "b", "order": {"location_id": "main"}})
        flushed = c.post("/_sim/webhooks/flush", headers=auth("fast-shop"),
                         json={"timeout_seconds": 5}).json()
        assert flushed["idle"] is True and "/fast" in arrived
        assert arrived["/fast"] - started < 3  # not after the slow receiver's 20 s
        assert not release.is_set()
    finally:
        release.set()

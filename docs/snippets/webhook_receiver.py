# A webhook receiver that checks every notification with the Square SDK's own helper.
# Run it as is: it starts a simulator and the receiver on loopback, subscribes, takes a
# payment and prints what arrived.
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from square import Square
from square.utils.webhooks_helper import verify_signature

from orderfsm.simulator import running

SIGNATURE_HEADER = "x-square-hmacsha256-signature"


class WebhookHandler(BaseHTTPRequestHandler):
    notification_url = ""  # exactly the URL the subscription was created with
    signature_key = ""  # from the subscription; rotate it with update_signature_key
    seen: dict = {}  # event_id -> event: Square may send an event more than once

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["content-length"])).decode("utf-8")
        valid = verify_signature(
            request_body=raw,  # the raw body, not re-serialized JSON
            signature_header=self.headers.get(SIGNATURE_HEADER, ""),
            signature_key=self.signature_key,
            notification_url=self.notification_url,
        )
        if not valid:
            self.send_response(403)
            self.end_headers()
            return
        event = json.loads(raw)
        self.seen.setdefault(event["event_id"], event)
        self.send_response(200)  # answer 2xx within 10 seconds, or Square retries
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), WebhookHandler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    WebhookHandler.notification_url = f"http://127.0.0.1:{receiver.server_port}/square/webhooks"

    with running() as base_url:
        client = Square(token="sandbox-token", base_url=base_url)
        subscription = client.webhooks.subscriptions.create(subscription={
            "name": "payments",
            "event_types": ["payment.created", "payment.updated"],
            "notification_url": WebhookHandler.notification_url,
        }).subscription
        WebhookHandler.signature_key = subscription.signature_key

        payment = client.payments.create(
            source_id="cnon:card-nonce-ok", idempotency_key="pay-1",
            amount_money={"amount": 1500, "currency": "USD"}, autocomplete=False).payment
        client.payments.complete(payment.id)

        # Deliveries run in the background; wait until everything due has been attempted.
        httpx.post(f"{base_url}/_sim/webhooks/flush",
                   headers={"authorization": "Bearer sandbox-token"}, json={})

    receiver.shutdown()
    events = list(WebhookHandler.seen.values())
    for event in events:
        print(event["type"], event["data"]["object"]["payment"]["status"])
    # payment.created APPROVED
    # payment.updated COMPLETED
    return events


if __name__ == "__main__":
    main()

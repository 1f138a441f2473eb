# Retries run on the merchant's virtual clock: advance it and read the outbox.
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from square import Square

from orderfsm.simulator import running


class FlakyHandler(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        FlakyHandler.calls += 1
        self.send_response(503 if FlakyHandler.calls <= 2 else 200)  # fail twice, then accept
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    with running() as base_url:
        client = Square(token="sandbox-token", base_url=base_url)
        control = httpx.Client(base_url=base_url,
                               headers={"authorization": "Bearer sandbox-token"})
        client.webhooks.subscriptions.create(subscription={
            "event_types": ["order.created"],
            "notification_url": f"http://127.0.0.1:{receiver.server_port}/hooks",
        })
        location_id = client.locations.list().locations[0].id
        order = client.orders.create(order={"location_id": location_id}).order

        control.post("/_sim/webhooks/flush", json={})  # first attempt: 503
        for seconds in (60, 120):  # retries after 1 minute, then 2 more minutes
            control.post("/_sim/clock/advance", json={"seconds": seconds})
            control.post("/_sim/webhooks/flush", json={})

        event = control.get("/_sim/events", params={"object_id": order.id}).json()["events"][0]
        delivery = event["deliveries"][0]
        for attempt in delivery["attempts"]:
            print(attempt["at"], attempt["status_code"])
        print(delivery["status"])
        # 2026-01-05T15:00:00.000Z 503
        # 2026-01-05T15:01:00.000Z 503
        # 2026-01-05T15:03:00.000Z 200
        # delivered
        control.close()

    receiver.shutdown()
    return delivery


if __name__ == "__main__":
    main()

"""The webhook outbox: events, signatures, the retry schedule and the delivery worker.

Each merchant (access token) has an :class:`Outbox` holding its webhook subscriptions and every
event its engine recorded. A :class:`Dispatcher` (one per app) owns one background thread with
its own ``httpx.Client`` that POSTs due deliveries to the subscribers. API requests never wait
for a receiver: they only append events under a lock and wake the thread.

Time is the merchant's virtual clock. An event's first attempt is due when it happens; a failed
attempt is retried 1, 2, 4, 8, 16 and 32 minutes later, then hourly, until 72 hours after the
event (rule ``webhook.delivery_retries``). Attempts are stamped with the virtual instant they
were due, so advancing the clock by an hour against a receiver that keeps failing makes the
attempts at +0, +1, +3, +7, +15, +31 and +63 minutes, one after another.

Deliveries for one (subscription, object) pair go out in the order the events happened: event
N+1 waits until event N was delivered, discarded or dropped. The per-subscription faults
(duplicate, drop, delay, reorder) exist to test consumers against the cases Square does not
promise away.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import httpx

from orderfsm.clock import rfc3339
from orderfsm.ids import IdGenerator
from orderfsm.urls import is_loopback, url_problem

__all__ = [
    "EVENT_TYPES", "EMITTED_EVENT_TYPES", "TEST_EVENT_TYPE", "SIGNATURE_HEADER",
    "RETRY_DELAYS", "RETRY_WINDOW", "DELIVERY_TIMEOUT", "STATUSES",
    "sign", "retry_delay", "retry_offsets", "url_problem", "host_problem",
    "Faults", "Subscription", "Attempt", "Delivery", "Event", "Outbox", "Dispatcher",
    "outbox_for",
]

log = logging.getLogger("orderfsm.simulator.webhooks")

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
TEST_EVENT_TYPE = "webhooks.test_notification"
#: Seconds between a failed attempt number n (1-based) and the next one, for n = 1..6.
RETRY_DELAYS = (60, 120, 240, 480, 960, 1920)
RETRY_HOURLY = 3600
#: No attempt is made later than this after the event (Square: "retried for up to 72 hours").
RETRY_WINDOW = timedelta(hours=72)
#: A receiver must answer within this many (real) seconds.
DELIVERY_TIMEOUT = 10.0
STATUSES = ("pending", "delivered", "failed", "dropped")
SNIPPET = 500
MAX_EVENTS = 10_000  # finished events beyond this are forgotten, oldest first
ENVIRONMENT = "Sandbox"
USER_AGENT = "Square Connect v2"

# Square's webhook event types (x-webhook in the 2025-08-20 OpenAPI spec): the API version that
# introduced them and their release status. The engine emits those in EMITTED_EVENT_TYPES;
# subscribing to the others is accepted and simply never fires.
_EVENT_TABLE = """
2019-06-12 PUBLIC
    inventory.count.updated
2019-09-25 PUBLIC
    catalog.version.updated
2019-11-20 DEPRECATED
    labor.shift.created labor.shift.deleted labor.shift.updated
2020-02-26 DEPRECATED
    dispute.evidence.added dispute.evidence.removed dispute.state.changed
2020-02-26 PUBLIC
    bank_account.created bank_account.disabled bank_account.verified dispute.created
    payment.created payment.updated refund.created refund.updated
2020-04-22 BETA
    order.created order.fulfillment.updated order.updated
2020-04-22 PUBLIC
    device.code.paired terminal.checkout.created terminal.checkout.updated
2020-05-28 PUBLIC
    loyalty.account.created loyalty.account.deleted loyalty.account.updated
    loyalty.event.created loyalty.program.updated
2020-07-22 PUBLIC
    invoice.canceled invoice.created invoice.deleted invoice.payment_made
    invoice.published invoice.refunded invoice.scheduled_charge_failed invoice.updated
2020-08-12 PUBLIC
    subscription.created subscription.updated
2020-08-26 PUBLIC
    oauth.authorization.revoked
2020-10-28 BETA
    location.created location.updated
2020-10-28 PUBLIC
    terminal.refund.created terminal.refund.updated
2020-12-16 PUBLIC
    booking.created booking.updated
2021-02-26 PUBLIC
    customer.created customer.deleted customer.updated
2021-04-21 PUBLIC
    loyalty.program.created team_member.created team_member.updated
    team_member.wage_setting.updated
2021-06-16 PUBLIC
    card.automatically_updated card.created card.disabled card.forgotten card.updated
    dispute.evidence.created dispute.evidence.deleted dispute.state.updated
    gift_card.activity.created gift_card.created gift_card.customer_linked
    gift_card.customer_unlinked gift_card.updated
2022-03-16 BETA
    vendor.created vendor.updated
2022-04-20 PUBLIC
    payout.failed payout.paid payout.sent
2022-05-12 BETA
    terminal.action.created terminal.action.updated
2022-05-12 DEPRECATED
    customer.custom_attribute.deleted customer.custom_attribute.public.deleted
    customer.custom_attribute.public.updated customer.custom_attribute.updated
    customer.custom_attribute_definition.created
    customer.custom_attribute_definition.deleted
    customer.custom_attribute_definition.public.created
    customer.custom_attribute_definition.public.deleted
    customer.custom_attribute_definition.public.updated
    customer.custom_attribute_definition.updated
2022-06-16 PUBLIC
    gift_card.activity.updated
2022-08-17 PUBLIC
    customer.custom_attribute.owned.deleted customer.custom_attribute.owned.updated
    customer.custom_attribute.visible.deleted customer.custom_attribute.visible.updated
    customer.custom_attribute_definition.owned.created
    customer.custom_attribute_definition.owned.deleted
    customer.custom_attribute_definition.owned.updated
    customer.custom_attribute_definition.visible.created
    customer.custom_attribute_definition.visible.deleted
    customer.custom_attribute_definition.visible.updated loyalty.promotion.created
    loyalty.promotion.updated
2022-11-16 BETA
    order.custom_attribute.owned.deleted order.custom_attribute.owned.updated
    order.custom_attribute.visible.deleted order.custom_attribute.visible.updated
    order.custom_attribute_definition.owned.created
    order.custom_attribute_definition.owned.deleted
    order.custom_attribute_definition.owned.updated
    order.custom_attribute_definition.visible.created
    order.custom_attribute_definition.visible.deleted
    order.custom_attribute_definition.visible.updated
2022-11-16 PUBLIC
    booking.custom_attribute.owned.deleted booking.custom_attribute.owned.updated
    booking.custom_attribute.visible.deleted booking.custom_attribute.visible.updated
    booking.custom_attribute_definition.owned.created
    booking.custom_attribute_definition.owned.deleted
    booking.custom_attribute_definition.owned.updated
    booking.custom_attribute_definition.visible.created
    booking.custom_attribute_definition.visible.deleted
    booking.custom_attribute_definition.visible.updated
2023-01-19 BETA
    location.custom_attribute.owned.deleted location.custom_attribute.owned.updated
    location.custom_attribute.visible.deleted location.custom_attribute.visible.updated
    location.custom_attribute_definition.owned.created
    location.custom_attribute_definition.owned.deleted
    location.custom_attribute_definition.owned.updated
    location.custom_attribute_definition.visible.created
    location.custom_attribute_definition.visible.deleted
    location.custom_attribute_definition.visible.updated
2023-05-17 BETA
    merchant.custom_attribute.owned.deleted merchant.custom_attribute.owned.updated
    merchant.custom_attribute.visible.deleted merchant.custom_attribute.visible.updated
    merchant.custom_attribute_definition.owned.created
    merchant.custom_attribute_definition.owned.deleted
    merchant.custom_attribute_definition.owned.updated
    merchant.custom_attribute_definition.visible.created
    merchant.custom_attribute_definition.visible.deleted
    merchant.custom_attribute_definition.visible.updated
2023-09-25 BETA
    device.created
2023-12-13 BETA
    online_checkout.location_settings.updated online_checkout.merchant_settings.updated
2024-12-18 BETA
    job.created job.updated
2025-05-21 BETA
    labor.scheduled_shift.created labor.scheduled_shift.deleted
    labor.scheduled_shift.published labor.scheduled_shift.updated
2025-05-21 PUBLIC
    labor.timecard.created labor.timecard.deleted labor.timecard.updated
"""


def _parse_table(text: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    since = status = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith(" "):
            for name in line.split():
                out[name] = (since, status)
        else:
            since, status = line.split()
    return out


#: event type -> (api_version_introduced, release_status)
EVENT_TYPES: dict[str, tuple[str, str]] = _parse_table(_EVENT_TABLE)
EMITTED_EVENT_TYPES = (
    "order.created", "order.updated", "order.fulfillment.updated",
    "payment.created", "payment.updated", "refund.created", "refund.updated",
    "catalog.version.updated",
)


# ================================================================ pure helpers
def sign(signature_key: str, notification_url: str, body: bytes) -> str:
    """Square's signature: base64(HMAC-SHA256(key, notification_url + raw body))."""
    mac = hmac.new(signature_key.encode("utf-8"), notification_url.encode("utf-8") + body,
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def retry_delay(failed_attempts: int) -> int:
    """Seconds to wait after the ``failed_attempts``-th failed attempt."""
    if failed_attempts <= len(RETRY_DELAYS):
        return RETRY_DELAYS[failed_attempts - 1]
    return RETRY_HOURLY


def retry_offsets() -> list[int]:
    """Seconds after the event of every attempt a receiver that always fails gets."""
    offsets = [0]
    limit = RETRY_WINDOW.total_seconds()
    while True:
        nxt = offsets[-1] + retry_delay(len(offsets))
        if nxt > limit:
            return offsets
        offsets.append(nxt)


def host_problem(url: str, allow: Iterable[str] = ()) -> str | None:
    """Why deliveries may not go to ``url``'s host, or None when they may.

    Loopback hosts are always allowed; other hosts only when named in ``allow`` (exact host
    names, case-insensitive) or when ``allow`` holds ``*``. This keeps a shared simulator
    from making requests wherever a caller points it."""
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return "it is not a URL."
    if is_loopback(host):
        return None
    allowed = {h.lower().rstrip(".") for h in allow}
    if "*" in allowed or host in allowed:
        return None
    return (f"deliveries to `{host}` are not allowed by this server: only loopback hosts "
            "are, unless it runs with `--webhook-allow HOST` (or `*`).")


def _probability(value: float | bool) -> float:
    return 1.0 if value is True else 0.0 if value is False else float(value)


# ================================================================ records
@dataclass
class Faults:
    """Per-subscription fault injection. Probabilities are 0.0..1.0 (True means 1.0)."""

    duplicate: float = 0.0
    drop: float = 0.0
    delay_seconds: float = 0.0
    reorder: float = 0.0

    def any(self) -> bool:
        return bool(self.duplicate or self.drop or self.delay_seconds or self.reorder)

    def to_json(self) -> dict[str, Any]:
        return {"duplicate": self.duplicate, "drop": self.drop,
                "delay_seconds": self.delay_seconds, "reorder": self.reorder}


@dataclass
class Subscription:
    id: str
    name: str | None
    enabled: bool
    event_types: list[str]
    notification_url: str
    api_version: str
    signature_key: str
    created_at: str
    updated_at: str
    seq: int
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=random.Random)
    held: "Delivery | None" = None

    def to_json(self, *, with_key: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.name is not None:
            out["name"] = self.name
        out.update(enabled=self.enabled, event_types=list(self.event_types),
                   notification_url=self.notification_url, api_version=self.api_version)
        if with_key:
            out["signature_key"] = self.signature_key
        out.update(created_at=self.created_at, updated_at=self.updated_at)
        return out


@dataclass
class Attempt:
    number: int
    at: datetime
    status_code: int | None
    response_body: str | None
    error: str | None
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def reason(self) -> str:
        """Square's square-retry-reason for this failure."""
        if self.status_code is not None:
            return "http_error"
        if self.error and self.error.startswith("timeout"):
            return "http_timeout"
        return "other_error"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attempt": self.number, "at": rfc3339(self.at)}
        if self.status_code is not None:
            out["status_code"] = self.status_code
            out["response_body"] = self.response_body or ""
        if self.error is not None:
            out["error"] = self.error
        if self.duplicate:
            out["duplicate"] = True
        return out


@dataclass
class Delivery:
    """One event for one subscription."""

    event: "Event"
    subscription_id: str
    next_at: datetime | None
    status: str = "pending"
    seq: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    held: bool = False
    in_flight: bool = False
    duplicate: bool = False
    retry: bool = True
    notes: dict[str, Any] = field(default_factory=dict)  # faults applied, redeliveries
    error: str | None = None
    url: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.subscription_id, self.event.object_id

    def failures(self) -> int:
        return sum(1 for a in self.attempts if not a.duplicate and not a.ok)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"subscription_id": self.subscription_id,
                               "notification_url": self.url, "status": self.status,
                               "attempts": [a.to_json() for a in self.attempts],
                               "next_attempt_at": (rfc3339(self.next_at)
                                                   if self.status == "pending" and self.next_at
                                                   else None)}
        if self.held:
            out["held"] = True
        if self.notes:
            out["notes"] = dict(self.notes)
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Event:
    event_id: str
    type: str
    object_id: str
    location_id: str | None
    at: datetime
    envelope: dict[str, Any]
    test: bool = False
    deliveries: list[Delivery] = field(default_factory=list)
    _body: bytes | None = None
    n: int = 0  # position among the merchant's events (the event counter when recorded)

    @property
    def body(self) -> bytes:
        """The exact bytes sent (and signed): compact JSON, UTF-8."""
        if self._body is None:
            self._body = json.dumps(self.envelope, separators=(",", ":"),
                                    ensure_ascii=False).encode("utf-8")
        return self._body

    def finished(self) -> bool:
        return all(d.status != "pending" for d in self.deliveries)

    def payload(self) -> dict[str, Any]:
        """The envelope; kept in memory only as the bytes sent once the event is recorded."""
        return self.envelope if self.envelope is not None else json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event_id": self.event_id, "type": self.type,
                               "object_id": self.object_id, "location_id": self.location_id,
                               "created_at": rfc3339(self.at)}
        if self.test:
            out["test"] = True
        out["payload"] = self.payload()
        out["deliveries"] = [d.to_json() for d in self.deliveries]
        return out


@dataclass
class _Job:
    """What the worker needs to send one delivery, copied under the lock."""

    outbox: "Outbox"
    delivery: Delivery
    at: datetime
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float
    duplicate: bool


# ================================================================ one merchant
class Outbox:
    """One merchant's subscriptions, events and deliveries. Every method that touches state
    takes the dispatcher's lock; none of them does I/O except :meth:`send_now`."""

    def __init__(self, dispatcher: "Dispatcher", merchant: Any) -> None:
        self.dispatcher = dispatcher
        self.lock = dispatcher.cv
        self.merchant = merchant
        self.seed = f"{merchant.engine.ids.seed}/webhooks"
        self.ids = IdGenerator(self.seed)
        self._event_counter = 0
        self.subscriptions: dict[str, Subscription] = {}
        self.events: list[Event] = []
        self.by_id: dict[str, Event] = {}
        self.pending: list[Delivery] = []  # queued, not final, ordered by seq
        self.timeout = DELIVERY_TIMEOUT
        self._seq = 0
        self._sub_seq = 0
        # What changed since the merchant's store last took the changes (see take_changes).
        self._dirty_events: set[str] = set()
        self._dirty_subs: set[str] = set()
        self._gone: set[tuple[str, str]] = set()
        self._written_meta: dict[str, Any] | None = None
        self.sending = False  # one delivery of this merchant in flight at a time

    # ------------------------------------------------------------ time and events
    def now(self) -> datetime:
        return self.merchant.engine.now()

    def drain(self) -> int:
        """Move the engine's recorded events into the outbox; wake the worker if any."""
        engine = self.merchant.engine
        if not engine.events:
            return 0
        recorded = engine.drain_events()
        with self.lock:
            queued = sum(len(self._record(ev).deliveries) for ev in recorded)
            self.lock.notify_all()
        if queued:
            self.dispatcher.start()
        return len(recorded)

    def _record(self, ev: Any) -> Event:
        envelope: dict[str, Any] = {"merchant_id": self.merchant.engine.merchant_id}
        if ev.location_id:
            envelope["location_id"] = ev.location_id
        event_id = self._event_id()
        envelope.update(type=ev.type, event_id=event_id, created_at=rfc3339(ev.at),
                        data={"type": ev.object_type, "id": ev.object_id, "object": ev.data})
        event = Event(event_id, ev.type, ev.object_id, ev.location_id, ev.at, envelope)
        for sub in self.subscriptions.values():
            if sub.enabled and ev.type in sub.event_types:
                self._enqueue(event, sub)
        self._remember(event)
        return event

    def _event_id(self) -> str:
        """A version-4-shaped UUID from the seed and a counter (the same run, the same ids)."""
        self._event_counter += 1
        digest = hashlib.blake2b(f"{self.seed}/event/{self._event_counter}".encode(),
                                 digest_size=16).digest()
        return str(uuid.UUID(bytes=digest, version=4))

    def _remember(self, event: Event) -> None:
        event.body  # noqa: B018 - encode once; the bytes are what is kept
        event.envelope = None  # type: ignore[assignment]
        event.n = self._event_counter
        self.events.append(event)
        self.by_id[event.event_id] = event
        self._dirty_events.add(event.event_id)
        if len(self.events) > MAX_EVENTS + MAX_EVENTS // 10:  # prune in batches
            keep: list[Event] = []
            excess = len(self.events) - MAX_EVENTS
            for e in self.events:
                if excess and e.finished():
                    excess -= 1
                    del self.by_id[e.event_id]
                    self._dirty_events.discard(e.event_id)
                    self._gone.add(("event", e.event_id))
                else:
                    keep.append(e)
            self.events = keep

    def _queue(self, d: Delivery) -> None:
        self._dirty_events.add(d.event.event_id)
        self._seq += 1
        d.seq = self._seq
        d.held = False
        self.pending.append(d)

    def _enqueue(self, event: Event, sub: Subscription) -> Delivery:
        """Create the delivery of ``event`` to ``sub``, applying the subscription's faults.
        Random draws happen in a fixed order (drop, duplicate, reorder) so a seed replays."""
        d = Delivery(event, sub.id, next_at=event.at, url=sub.notification_url)
        event.deliveries.append(d)
        f = sub.faults
        if f.any() or sub.held is not None:
            self._dirty_subs.add(sub.id)
        if f.drop and sub.rng.random() < f.drop:
            d.status = "dropped"
            d.next_at = None
            d.notes["dropped"] = True
            return d
        if f.delay_seconds:
            d.next_at = event.at + timedelta(seconds=f.delay_seconds)
            d.notes["delayed_seconds"] = f.delay_seconds
        if f.duplicate and sub.rng.random() < f.duplicate:
            d.duplicate = True
            d.notes["duplicated"] = True
        if sub.held is not None:
            held, sub.held = sub.held, None
            self._queue(d)
            held.next_at = max(held.next_at or d.next_at, d.next_at)  # type: ignore[type-var]
            self._queue(held)
            held.notes["reordered_after"] = event.event_id
            d.notes["reordered_before"] = held.event.event_id
        elif f.reorder and sub.rng.random() < f.reorder:
            d.held = True
            sub.held = d
        else:
            self._queue(d)
        return d

    # ------------------------------------------------------------ the schedule
    def _eligible(self, now: datetime) -> Iterable[Delivery]:
        """Queue heads per (subscription, object) that are due and not being sent."""
        blocked: set[tuple[str, str]] = set()
        for d in self.pending:
            key = d.key
            if key in blocked:
                continue
            blocked.add(key)
            if not d.in_flight and d.next_at is not None and d.next_at <= now:
                yield d

    def next_due(self, now: datetime) -> Delivery | None:
        best = None
        for d in self._eligible(now):
            if best is None or (d.next_at, d.seq) < (best.next_at, best.seq):
                best = d
        return best

    def busy(self, now: datetime) -> bool:
        """Something is being sent, or is due and could be sent now."""
        if any(d.in_flight for d in self.pending):
            return True
        return next(iter(self._eligible(now)), None) is not None

    def _job(self, d: Delivery, *, test: bool = False) -> _Job | None:
        """Mark ``d`` in flight and copy what sending it needs (signed with the
        subscription's current URL and key). A test notification goes to a disabled
        subscription too."""
        sub = self.subscriptions.get(d.subscription_id)
        if sub is None or not (sub.enabled or test):  # deletes and disables cancel eagerly
            self._finish(d, "failed", d.next_at or self.now(), "subscription gone")
            return None
        assert d.next_at is not None
        d.in_flight = True
        d.url = sub.notification_url
        body = d.event.body
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            SIGNATURE_HEADER: sign(sub.signature_key, sub.notification_url, body),
            "square-environment": ENVIRONMENT,
            "square-initial-delivery-timestamp": rfc3339(
                d.attempts[0].at if d.attempts else d.next_at),
        }
        prior = [a for a in d.attempts if not a.duplicate]
        failed = [a for a in prior if not a.ok]
        if failed:  # Square adds these once a delivery of the event has failed
            headers["square-retry-number"] = str(len(prior))
            headers["square-retry-reason"] = failed[-1].reason
        return _Job(self, d, d.next_at, sub.notification_url, body, headers, self.timeout,
                    d.duplicate)

    def _finish(self, d: Delivery, status: str, at: datetime, error: str | None = None) -> None:
        self._dirty_events.add(d.event.event_id)
        d.status = status
        d.in_flight = False
        d.next_at = None
        if error:
            d.error = error
        if d in self.pending:
            self.pending.remove(d)
        # The next event for the same object cannot go out before this one ended.
        for other in self.pending:
            if other.key == d.key and other.next_at is not None and other.next_at < at:
                other.next_at = at

    def _result(self, job: _Job, attempt: Attempt, extra: Attempt | None) -> None:
        d = job.delivery
        d.in_flight = False
        self._dirty_events.add(d.event.event_id)
        d.attempts.append(attempt)
        if extra is not None:
            d.attempts.append(extra)
        if d.status != "pending":  # canceled while in flight
            return
        if attempt.ok:
            self._finish(d, "delivered", job.at)
            return
        nxt = job.at + timedelta(seconds=retry_delay(d.failures()))
        if nxt > d.event.at + RETRY_WINDOW or not d.retry:
            self._finish(d, "failed", job.at)
        else:
            d.next_at = nxt

    def cancel_deliveries(self, sub: Subscription, reason: str) -> None:
        """Fail what is still pending for ``sub`` (deleted or disabled)."""
        now = self.now()
        if sub.held is not None:
            held, sub.held = sub.held, None
            held.held = False
            self._finish(held, "failed", now, reason)
        for d in [d for d in self.pending if d.subscription_id == sub.id]:
            if d.in_flight:
                self._dirty_events.add(d.event.event_id)
                d.status = "failed"
                d.error = reason
                self.pending.remove(d)
            else:
                self._finish(d, "failed", now, reason)

    # ------------------------------------------------------------ subscriptions
    def create_subscription(self, *, name: str | None, event_types: list[str],
                            notification_url: str, api_version: str,
                            enabled: bool = True) -> Subscription:
        with self.lock:
            now = rfc3339(self.now())
            self._sub_seq += 1
            sub_id = "wbhk_" + self.ids.uuid().replace("-", "")
            sub = Subscription(
                id=sub_id, name=name, enabled=enabled, event_types=list(event_types),
                notification_url=notification_url, api_version=api_version,
                signature_key=self.ids.suffix(), created_at=now, updated_at=now,
                seq=self._sub_seq, rng=random.Random(f"{self.seed}/{sub_id}"))
            self.subscriptions[sub_id] = sub
            self._dirty_subs.add(sub_id)
            return sub

    def update_subscription(self, sub: Subscription, changes: Mapping[str, Any]) -> Subscription:
        with self.lock:
            for key in ("name", "event_types", "notification_url", "api_version", "enabled"):
                if key in changes:
                    setattr(sub, key, list(changes[key]) if key == "event_types" else changes[key])
            sub.updated_at = rfc3339(self.now())
            self._dirty_subs.add(sub.id)
            if not sub.enabled:
                self.cancel_deliveries(sub, "subscription disabled")
            self.lock.notify_all()
            return sub

    def delete_subscription(self, sub: Subscription) -> None:
        with self.lock:
            self.subscriptions.pop(sub.id, None)
            self._dirty_subs.discard(sub.id)
            self._gone.add(("subscription", sub.id))
            self.cancel_deliveries(sub, "subscription deleted")
            self.lock.notify_all()

    def rotate_key(self, sub: Subscription) -> str:
        with self.lock:
            sub.signature_key = self.ids.suffix()
            sub.updated_at = rfc3339(self.now())
            self._dirty_subs.add(sub.id)
            return sub.signature_key

    def set_faults(self, sub: Subscription, changes: Mapping[str, Any],
                   seed: Any = None) -> Faults:
        with self.lock:
            for key, value in changes.items():
                default = getattr(Faults(), key)
                if value is None:
                    value = default
                elif key != "delay_seconds":
                    value = _probability(value)
                setattr(sub.faults, key, float(value))
            self._dirty_subs.add(sub.id)
            if seed is not None:
                sub.rng.seed(f"{self.seed}/{sub.id}/{seed}")
            if not sub.faults.reorder and sub.held is not None:
                held, sub.held = sub.held, None
                self._queue(held)
            self.lock.notify_all()
        self.dispatcher.start()
        return sub.faults

    # ------------------------------------------------------------ outbox queries
    def list_events(self, *, type: str | None = None, object_id: str | None = None,
                    status: str | None = None, subscription_id: str | None = None,
                    ) -> list[dict[str, Any]]:
        self.drain()
        with self.lock:
            out = []
            for e in self.events:
                if type is not None and e.type != type:
                    continue
                if object_id is not None and e.object_id != object_id:
                    continue
                ds = e.deliveries
                if subscription_id is not None:
                    ds = [d for d in ds if d.subscription_id == subscription_id]
                    if not ds:
                        continue
                if status is not None and not any(d.status == status for d in ds):
                    continue
                out.append(e.to_json())
            return out

    def get_event(self, event_id: str) -> Event | None:
        self.drain()
        return self.by_id.get(event_id)

    def event_json(self, event: Event) -> dict[str, Any]:
        with self.lock:
            return event.to_json()

    def redeliver(self, event: Event, subscription_id: str | None = None) -> int:
        """Send ``event`` again now to its subscribers (or one of them). Returns how many."""
        with self.lock:
            now = self.now()
            count = 0
            for d in event.deliveries:
                if subscription_id is not None and d.subscription_id != subscription_id:
                    continue
                sub = self.subscriptions.get(d.subscription_id)
                if sub is None or not sub.enabled or d.in_flight or d.held:
                    continue
                if d in self.pending:
                    self.pending.remove(d)
                d.status = "pending"
                d.error = None
                d.next_at = now
                d.notes["redelivered"] = d.notes.get("redelivered", 0) + 1
                self._dirty_events.add(event.event_id)
                self._queue(d)
                count += 1
            self.lock.notify_all()
        if count:
            self.dispatcher.start()
        return count

    def summary(self) -> dict[str, Any]:
        with self.lock:
            counts = {s: 0 for s in STATUSES}
            held = 0
            for e in self.events:
                for d in e.deliveries:
                    counts[d.status] += 1
                    held += d.held
            return {"now": rfc3339(self.now()), "events": len(self.events),
                    "deliveries": counts, "held": held}

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until every delivery due now has been attempted (True), or ``timeout`` real
        seconds passed (False). Never call it on the thread that runs the server's loop."""
        self.drain()
        return self.dispatcher.wait_idle(self, timeout)

    # ------------------------------------------------------------ test notifications
    def test_event(self, sub: Subscription, event_type: str | None) -> tuple[Event, Delivery]:
        """A one-off event for TestWebhookSubscription: recorded, sent once, never retried."""
        with self.lock:
            now = self.now()
            engine = self.merchant.engine
            etype = event_type or TEST_EVENT_TYPE
            data = self._sample_data(etype, now)
            envelope: dict[str, Any] = {"merchant_id": engine.merchant_id}
            if etype != TEST_EVENT_TYPE:
                envelope["location_id"] = engine.main_location_id
            event_id = self._event_id()
            envelope.update(type=etype, event_id=event_id, created_at=rfc3339(now), data=data)
            event = Event(event_id, etype, data["id"], envelope.get("location_id"), now,
                          envelope, test=True)
            d = Delivery(event, sub.id, next_at=now, url=sub.notification_url, retry=False)
            event.deliveries.append(d)
            self._remember(event)
            return event, d

    def _sample_data(self, etype: str, now: datetime) -> dict[str, Any]:
        if etype == TEST_EVENT_TYPE:
            return {"type": "webhooks", "id": self._event_id()}
        engine = self.merchant.engine
        stamp = rfc3339(now)
        money = {"amount": 100, "currency": engine.currency}
        loc = engine.main_location_id
        ident = self.ids.object_id()
        if etype.startswith("payment."):
            obj = {"payment": {
                "id": ident, "created_at": stamp, "updated_at": stamp, "amount_money": money,
                "total_money": dict(money), "approved_money": dict(money), "status": "COMPLETED",
                "source_type": "CARD", "location_id": loc, "order_id": self.ids.object_id(),
                "version_token": self.ids.suffix()}}
            return {"type": "payment", "id": ident, "object": obj}
        if etype.startswith("refund."):
            obj = {"refund": {
                "id": f"{ident}_{self.ids.suffix()}", "status": "PENDING", "amount_money": money,
                "payment_id": ident, "order_id": self.ids.object_id(), "location_id": loc,
                "created_at": stamp, "updated_at": stamp, "version": 1}}
            return {"type": "refund", "id": obj["refund"]["id"], "object": obj}
        if etype == "catalog.version.updated":
            return {"type": "catalog_version", "id": "",
                    "object": {"catalog_version": {"updated_at": stamp}}}
        if etype.startswith("order."):
            summary: dict[str, Any] = {"order_id": ident, "version": 1, "location_id": loc,
                                       "state": "OPEN", "created_at": stamp}
            kind = etype.replace("order.", "order_").replace(".", "_")
            if etype != "order.created":
                summary["updated_at"] = stamp
            if etype == "order.fulfillment.updated":
                summary["fulfillment_update"] = [{"fulfillment_uid": self.ids.uid(),
                                                  "old_state": "PROPOSED",
                                                  "new_state": "RESERVED"}]
            return {"type": kind, "id": ident, "object": {kind: summary}}
        return {"type": etype.split(".")[0], "id": ident}

    def send_now(self, d: Delivery) -> Attempt:
        """Attempt ``d`` once on the calling thread, outside the worker's queue (for
        TestWebhookSubscription). Call it off the server's event loop."""
        with self.lock:
            job = self._job(d, test=True)
        if job is None:
            return Attempt(1, d.event.at, None, None, "subscription gone")
        attempt = self.send_once(job)
        self.record_test_attempt(d, attempt, job)
        return attempt

    def send_once(self, job: _Job) -> Attempt:
        """Send a test delivery's job (on the calling thread, off the event loop)."""
        with self.dispatcher.test_client_lock:
            attempt, _ = _send(self.dispatcher.test_client(), job)
        return attempt

    def record_test_attempt(self, d: Delivery, attempt: Attempt, job: _Job | None) -> None:
        with self.lock:
            d.in_flight = False
            self._dirty_events.add(d.event.event_id)
            if job is None:
                return
            d.attempts.append(attempt)
            self._finish(d, "delivered" if attempt.ok else "failed", job.at)
            self.lock.notify_all()


# ================================================================ sending
_SSL: Any = None
_SSL_LOCK = threading.Lock()


def _client() -> httpx.Client:
    """A client for deliveries: no redirects followed (3xx is a failure), no proxies from the
    environment, and one TLS context per process (building one costs a noticeable fraction
    of a second)."""
    global _SSL
    with _SSL_LOCK:
        if _SSL is None:
            _SSL = httpx.create_ssl_context()
    return httpx.Client(follow_redirects=False, trust_env=False, verify=_SSL)


def _send(client: httpx.Client, job: _Job) -> tuple[Attempt, Attempt | None]:
    number = len(job.delivery.attempts) + 1
    attempt = _post(client, job, number, duplicate=False)
    extra = None
    if attempt.ok and job.duplicate:
        extra = _post(client, job, number + 1, duplicate=True)
    return attempt, extra


def _post(client: httpx.Client, job: _Job, number: int, *, duplicate: bool) -> Attempt:
    try:
        resp = client.post(job.url, content=job.body, headers=job.headers,
                           timeout=httpx.Timeout(job.timeout))
        text = resp.content[:SNIPPET * 4].decode("utf-8", "replace")[:SNIPPET]
        return Attempt(number, job.at, resp.status_code, text, None, duplicate)
    except httpx.TimeoutException:
        return Attempt(number, job.at, None, None, f"timeout: no answer within {job.timeout:g} s",
                       duplicate)
    except Exception as exc:  # connection refused, bad URL, protocol errors, ...
        return Attempt(number, job.at, None, None, f"{type(exc).__name__}: {exc}", duplicate)


# ================================================================ the worker
class Dispatcher:
    """The app's delivery workers: daemon threads, started on demand, that send every merchant's
    due deliveries in due-time order. One merchant has at most one delivery in flight (its
    receivers see its deliveries one at a time, in order), and a merchant whose receiver is
    slow holds one thread only: another thread is started for the others, up to
    ``MAX_WORKERS``. Threads hold only a weak reference to the dispatcher between deliveries,
    so they end once the app is gone."""

    IDLE_TICK = 1.0
    MAX_WORKERS = 16
    #: Shared stores: how often (real seconds) the delivering process looks for merchants
    #: with pending deliveries that no notification named.
    POLL = 5.0

    def __init__(self, shared: Any = None) -> None:
        #: The simulator's Store when its state store is shared by several processes (see
        #: :func:`_deliverer`); None otherwise.
        self.shared = shared
        #: Shared stores: this process is the one that delivers (holds the advisory lock).
        self.leader = False
        self.sending_tokens: set[str] = set()
        self.cv = threading.Condition(threading.RLock())
        self.outboxes: dict[str, Outbox] = {}
        self._thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._test_client: httpx.Client | None = None
        self.test_client_lock = threading.Lock()
        self.closed = False

    def test_client(self) -> httpx.Client:
        """The client TestWebhookSubscription sends with (callers hold test_client_lock)."""
        if self._test_client is None:
            self._test_client = _client()
        return self._test_client

    def attach(self, merchant: Any) -> Outbox:
        """Give ``merchant`` a fresh outbox (a reset merchant starts with none of the old
        subscriptions or events)."""
        ob = Outbox(self, merchant)
        with self.cv:
            self.outboxes[merchant.token] = ob  # the old one, if any, is no longer served
        merchant.extra["webhooks"] = ob
        merchant.extra.setdefault("on_advance", []).append(_drain_hook)
        return ob

    def start(self) -> None:
        with self.cv:
            if self.closed:
                return
            if self.shared is not None and not self.leader:
                return  # another process delivers
            self._threads = [t for t in self._threads if t.is_alive()]
            if not self._threads or (self._idle == 0 and len(self._threads) < self.MAX_WORKERS):
                thread = threading.Thread(target=_worker, args=(weakref.ref(self),),
                                          name="orderfsm-webhooks", daemon=True)
                self._threads.append(thread)
                self._thread = thread
                self._idle += 1
                thread.start()
            self.cv.notify_all()

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify_all()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=DELIVERY_TIMEOUT + 1)

    def _take(self) -> _Job | None:
        if self.shared is not None:
            return self._take_shared()
        with self.cv:
            if self.closed:
                return None
            best: tuple[datetime, int, Outbox, Delivery] | None = None
            for ob in list(self.outboxes.values()):
                if ob.sending:
                    continue
                d = ob.next_due(ob.now())
                if d is not None and (best is None or (d.next_at, d.seq) < best[:2]):
                    best = (d.next_at, d.seq, ob, d)  # type: ignore[assignment]
            if best is None:
                self.cv.wait(self.IDLE_TICK)
                return None
            job = best[2]._job(best[3])
            if job is not None:
                job.outbox.sending = True
                self._idle -= 1
                if self._idle == 0:  # keep one thread free for the other merchants
                    self.start()
            return job

    def _best(self) -> Outbox | None:
        """The outbox whose next due delivery is due first (shared stores: by token, since a
        reload replaces the outbox while its delivery is in flight)."""
        best: tuple[datetime, int, Outbox] | None = None
        for ob in list(self.outboxes.values()):
            if ob.sending or ob.merchant.token in self.sending_tokens:
                continue
            d = ob.next_due(ob.now())
            if d is not None and (best is None or (d.next_at, d.seq) < best[:2]):
                best = (d.next_at, d.seq, ob)  # type: ignore[assignment]
        return best[2] if best is not None else None

    def _take_shared(self) -> _Job | None:
        """Shared stores: the candidate comes from this process's copy, but the delivery is
        taken in a session on the merchant's row, from the merchant as the database has it."""
        with self.cv:
            if self.closed or not self.leader:
                self.cv.wait(self.IDLE_TICK)
                return None
            ob = self._best()
            if ob is None:
                self.cv.wait(self.IDLE_TICK)
                return None
            token = ob.merchant.token
            self.sending_tokens.add(token)
            self._idle -= 1
        job = None
        try:
            with self.shared.locked(token) as m:
                current = m.extra.get("webhooks")
                if current is not None:
                    with self.cv:
                        d = current.next_due(current.now())
                        job = current._job(d) if d is not None else None
        except Exception:
            log.exception("could not take a webhook delivery")
        finally:
            with self.cv:
                if job is None:
                    self.sending_tokens.discard(token)
                    self._idle += 1
                elif self._idle == 0:
                    self.start()
        return job

    def _done_shared(self, job: _Job, attempt: Attempt, extra: Attempt | None) -> None:
        token = job.outbox.merchant.token
        try:
            with self.shared.locked(token) as m:
                current = m.extra.get("webhooks")
                with self.cv:
                    if current is not None and current is not job.outbox:
                        # The merchant was reloaded meanwhile: the same delivery, as loaded.
                        event = current.by_id.get(job.delivery.event.event_id)
                        found = [d for d in (event.deliveries if event else ())
                                 if d.subscription_id == job.delivery.subscription_id]
                        job = dataclasses.replace(job, outbox=current,
                                                  delivery=found[0]) if found else None
                    elif current is None:
                        job = None
                    if job is not None:
                        job.outbox._result(job, attempt, extra)
        except Exception:
            log.exception("could not store a webhook delivery result")
        finally:
            with self.cv:
                self.sending_tokens.discard(token)
                self._idle += 1
                self.cv.notify_all()

    def sync(self, tokens: Iterable[str] | None = None) -> None:
        """Shared stores, in the delivering process: bring up to date the merchants (all, or
        the ones named) that have deliveries pending, so their due deliveries are seen."""
        store = self.shared
        for token, (gen, seq, pending) in store.state.versions(tokens).items():
            if not pending or token in self.sending_tokens:
                continue
            m = store.merchants.get(token)
            if m is None or m.gen != gen or m.seq != seq:
                with store.locked(token):
                    pass
        with self.cv:
            self.cv.notify_all()

    def _done(self, job: _Job, attempt: Attempt, extra: Attempt | None) -> None:
        if self.shared is not None:
            self._done_shared(job, attempt, extra)
            return
        with self.cv:
            job.outbox._result(job, attempt, extra)
            job.outbox.sending = False
            self._idle += 1
            self.cv.notify_all()
        persist = getattr(job.outbox.merchant, "persist_outbox", None)
        if persist is not None:
            try:
                persist()
            except Exception:  # pragma: no cover - a full disk; the next request retries
                log.exception("could not store webhook delivery results")

    def wait_idle(self, ob: Outbox, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        self.start()
        with self.cv:
            while ob.busy(ob.now()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cv.wait(min(remaining, self.IDLE_TICK))
            return True


def _worker(ref: "weakref.ReferenceType[Dispatcher]") -> None:
    idle_ticks = 0
    with _client() as client:
        while True:
            dispatcher = ref()
            if dispatcher is None or dispatcher.closed:
                return
            try:
                job = dispatcher._take()
                if job is not None:
                    idle_ticks = 0
                    try:
                        attempt, extra = _send(client, job)
                    except BaseException as exc:  # pragma: no cover - a bug in sending
                        attempt, extra = Attempt(len(job.delivery.attempts) + 1, job.at, None,
                                                 None, f"{type(exc).__name__}: {exc}"), None
                    dispatcher._done(job, attempt, extra)
                else:
                    idle_ticks += 1
                    with dispatcher.cv:  # extra threads leave after a few idle seconds
                        if idle_ticks >= 5 and dispatcher._idle > 1:
                            dispatcher._idle -= 1
                            dispatcher._threads = [t for t in dispatcher._threads
                                                   if t is not threading.current_thread()]
                            return
            except Exception:  # pragma: no cover - a bug; keep delivering the rest
                log.exception("webhook worker error")
                time.sleep(0.05)
            del dispatcher


def _deliverer(ref: "weakref.ReferenceType[Dispatcher]") -> None:
    """Shared stores: one process of all those sharing the database delivers webhooks, the
    one holding a PostgreSQL advisory lock on its own connection. When that process dies its
    connection closes, the lock is free, and another process takes over within a second; the
    deliveries it had in flight were never marked done, so they go out again. The deliverer
    learns of new pending deliveries from notifications sent by the committing sessions, and
    looks for any it missed every ``Dispatcher.POLL`` seconds."""
    from orderfsm.store.postgres import DELIVERY_LOCK, NOTIFY_CHANNEL

    conn = None
    last_poll = 0.0
    failing = False
    while True:
        dispatcher = ref()
        if dispatcher is None or dispatcher.closed:
            break
        try:
            tokens = _deliverer_step(dispatcher, conn, last_poll, DELIVERY_LOCK, NOTIFY_CHANNEL)
            conn, last_poll = tokens.pop("conn"), tokens.pop("last_poll")
            failing = False
        except Exception as exc:
            if not failing:  # once per outage, not once a second
                log.warning("webhook deliverer: %s; retrying every second", exc)
            failing = True
            with dispatcher.cv:
                dispatcher.leader = False
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
            conn = None
            dispatcher = None
            time.sleep(1.0)
        dispatcher = None
    if conn is not None:
        conn.close()


def _deliverer_step(dispatcher: Dispatcher, conn: Any, last_poll: float, lock_key: int,
                    channel: str) -> dict[str, Any]:
    """One turn of :func:`_deliverer`: take the lock if free, then wait up to a second for
    notifications and bring the merchants they name up to date."""
    if conn is None:
        conn = dispatcher.shared.state.listener(f"orderfsm-deliverer-{os.getpid()}")
    if not dispatcher.leader:
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key,)).fetchone()[0]:
            time.sleep(1.0)
            return {"conn": conn, "last_poll": last_poll}
        conn.execute(f"LISTEN {channel}")
        with dispatcher.cv:
            dispatcher.leader = True
        last_poll = 0.0
    if time.monotonic() - last_poll > dispatcher.POLL:
        last_poll = time.monotonic()
        dispatcher.sync()
    dispatcher.start()
    tokens = {n.payload for n in conn.notifies(timeout=1.0, stop_after=1)}
    if tokens:  # a burst of commits: take what else arrived without waiting
        tokens |= {n.payload for n in conn.notifies(timeout=0.001, stop_after=1000)}
        dispatcher.sync(tokens)
    return {"conn": conn, "last_poll": last_poll}


def _drain_hook(merchant: Any) -> None:
    """Runs after the merchant's clock moved: record what the engine fired and let the worker
    look again, since retries may have become due without any new event."""
    ob = merchant.extra.get("webhooks")
    if ob is not None:
        ob.drain()
        if ob.pending:
            ob.dispatcher.start()


def outbox_for(app: Any, token: str) -> Outbox:
    """The outbox of the merchant behind ``token`` in a running simulator app (created on
    first use, like the merchant). For in-process tests: ``outbox_for(app, "tok").flush()``."""
    merchant = app.state.store.merchant(token)
    ob = merchant.extra.get("webhooks")
    if ob is None:
        ob = app.state.webhooks.attach(merchant)
    return ob


# ================================================================ records (durable state)
def _attempt_record(a: Attempt) -> list[Any]:
    return [a.number, a.at.isoformat(), a.status_code, a.response_body, a.error, a.duplicate]


def _attempt_from(row: list[Any]) -> Attempt:
    number, at, status, body, error, duplicate = row
    return Attempt(number, datetime.fromisoformat(at), status, body, error, duplicate)


def _event_record(e: Event) -> dict[str, Any]:
    return {
        "event_id": e.event_id, "type": e.type, "object_id": e.object_id,
        "location_id": e.location_id, "at": e.at.isoformat(), "test": e.test, "n": e.n,
        "body": e.body.decode("utf-8"),
        "deliveries": [{
            "subscription_id": d.subscription_id,
            "next_at": d.next_at.isoformat() if d.next_at is not None else None,
            "status": d.status, "seq": d.seq, "held": d.held, "duplicate": d.duplicate,
            "retry": d.retry, "notes": d.notes, "error": d.error, "url": d.url,
            "attempts": [_attempt_record(a) for a in d.attempts],
        } for d in e.deliveries],
    }


def _event_from(rec: Mapping[str, Any]) -> Event:
    e = Event(rec["event_id"], rec["type"], rec["object_id"], rec["location_id"],
              datetime.fromisoformat(rec["at"]), None, test=rec.get("test", False),  # type: ignore[arg-type]
              _body=rec["body"].encode("utf-8"), n=rec.get("n", 0))
    for d in rec["deliveries"]:
        e.deliveries.append(Delivery(
            e, d["subscription_id"],
            next_at=datetime.fromisoformat(d["next_at"]) if d["next_at"] else None,
            status=d["status"], seq=d["seq"], attempts=[_attempt_from(a) for a in d["attempts"]],
            held=d["held"], duplicate=d["duplicate"], retry=d["retry"], notes=dict(d["notes"]),
            error=d["error"], url=d["url"]))
    return e


def _subscription_record(sub: Subscription) -> dict[str, Any]:
    out = sub.to_json()
    out.update(seq=sub.seq, faults=sub.faults.to_json(),
               held=[sub.held.event.event_id] if sub.held is not None else None)
    if sub.faults.any():  # the random draws made so far, so a seeded run goes on the same way
        version, state, gauss = sub.rng.getstate()
        out["rng"] = [version, list(state), gauss]
    return out


def _subscription_from(rec: Mapping[str, Any], seed: str) -> Subscription:
    sub = Subscription(
        id=rec["id"], name=rec.get("name"), enabled=rec["enabled"],
        event_types=list(rec["event_types"]), notification_url=rec["notification_url"],
        api_version=rec["api_version"], signature_key=rec["signature_key"],
        created_at=rec["created_at"], updated_at=rec["updated_at"], seq=rec["seq"],
        faults=Faults(**rec["faults"]), rng=random.Random(f"{seed}/{rec['id']}"))
    if rec.get("rng"):
        version, state, gauss = rec["rng"]
        sub.rng.setstate((version, tuple(state), gauss))
    return sub


def _outbox_meta(ob: "Outbox") -> dict[str, Any]:
    return {"event_counter": ob._event_counter, "seq": ob._seq, "sub_seq": ob._sub_seq,
            "ids_counter": ob.ids.counter, "timeout": ob.timeout}


def outbox_rows(ob: "Outbox") -> list[tuple[str, str, Any]]:
    """Every record of an outbox (for a snapshot or a new generation)."""
    with ob.lock:
        rows: list[tuple[str, str, Any]] = [("meta", "webhooks", _outbox_meta(ob))]
        rows += [("subscription", s.id, _subscription_record(s))
                 for s in ob.subscriptions.values()]
        rows += [("event", e.event_id, _event_record(e)) for e in ob.events]
        return rows


def take_outbox_changes(ob: "Outbox") -> dict[tuple[str, str], Any]:
    """The records that changed since the last call, and the deletions (value ``DELETE``)."""
    from orderfsm.store import DELETE

    with ob.lock:
        out: dict[tuple[str, str], Any] = {}
        meta = _outbox_meta(ob)
        if meta != ob._written_meta:
            out[("meta", "webhooks")] = meta
            ob._written_meta = meta
        for key in ob._gone:
            out[key] = DELETE
        ob._gone = set()
        for sub_id in ob._dirty_subs:
            sub = ob.subscriptions.get(sub_id)
            if sub is not None:
                out[("subscription", sub_id)] = _subscription_record(sub)
        ob._dirty_subs = set()
        for event_id in ob._dirty_events:
            e = ob.by_id.get(event_id)
            if e is not None:
                out[("event", event_id)] = _event_record(e)
        ob._dirty_events = set()
        return out


def load_outbox(ob: "Outbox", meta: Mapping[str, Any] | None,
                subscriptions: Iterable[Mapping[str, Any]],
                events: Iterable[Mapping[str, Any]]) -> None:
    """Fill a fresh outbox from its records. Deliveries in flight when the process stopped are
    due again (a receiver may see one twice, as Square's at-least-once delivery allows)."""
    with ob.lock:
        if meta:
            ob._event_counter = meta["event_counter"]
            ob._seq = meta["seq"]
            ob._sub_seq = meta["sub_seq"]
            ob.ids.counter = meta["ids_counter"]
            ob.timeout = meta.get("timeout", DELIVERY_TIMEOUT)
        subs = [_subscription_from(rec, ob.seed) for rec in subscriptions]
        ob.subscriptions = {s.id: s for s in sorted(subs, key=lambda s: s.seq)}
        held_of = {}
        for rec in subscriptions:
            if rec.get("held"):
                held_of[rec["id"]] = rec["held"][0]
        loaded = sorted((_event_from(rec) for rec in events), key=lambda e: e.n)
        ob.events = loaded
        ob.by_id = {e.event_id: e for e in loaded}
        pending = []
        for e in loaded:
            for d in e.deliveries:
                if d.status != "pending":
                    continue
                sub = ob.subscriptions.get(d.subscription_id)
                if d.held and sub is not None and held_of.get(sub.id) == e.event_id:
                    sub.held = d
                elif d.seq is not None:
                    pending.append(d)
        ob.pending = sorted(pending, key=lambda d: d.seq)  # type: ignore[arg-type, return-value]
        ob._written_meta = _outbox_meta(ob)
        ob._dirty_events = set()
        ob._dirty_subs = set()
        ob._gone = set()

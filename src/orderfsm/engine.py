"""The engine: one merchant's orders, payments, refunds and fulfillments as a pure aggregate.

No HTTP and no I/O. Time comes from an injected clock, ids from a seeded generator. Each
command either applies completely or raises a :class:`SquareError` built from a catalog rule
and leaves the aggregate exactly as it was (the one documented exception: a declined card
payment is recorded as FAILED and then reported as an error, as Square does).

Records are plain dicts in Square's JSON shape holding only what callers wrote plus server
state; the fields Square computes (totals, tenders, net amounts) are derived when a record is
rendered. Keys starting with ``_`` are internal and never rendered.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from .catalog import Catalog
from .clock import Clock, ManualClock, format_duration, parse_duration, parse_rfc3339, rfc3339
from .errors import SquareError
from .ids import IdGenerator
from .index import OrderIndex, TimeIndex
from .lifecycles import FULFILLMENT, ORDER, PAYMENT, REFUND
from .lifecycles._table import RECORDING
from .lifecycles.fulfillment import TIMESTAMPS, TRIGGER_FOR, TYPES, FulfillmentContext
from .lifecycles.order import TERMINAL_FULFILLMENT, OrderContext
from .lifecycles.payment import (
    BANK_SETTLE_DELAY,
    DEFAULT_DELAY_CARD_NOT_PRESENT,
    MIN_DELAY,
    PaymentContext,
)
from .lifecycles.refund import DEFAULT_SETTLE_DELAY
from .numbers import INT64_MAX
from .pricing import apply_pricing, attach_applied, check_request, derived_uid, price_order
from .rules import Variants, violation

__all__ = ["Engine", "DomainEvent", "DECLINE_NONCES", "SANDBOX_TOKENS"]

# Every test source_id on Square's sandbox payments page (S18), with the rule its outcome
# follows: None is accepted. Other cnon:/ccof: values are not found.
SANDBOX_TOKENS: dict[str, str | None] = {
    "cnon:card-nonce-ok": None,
    "cnon:card-nonce-declined": "payment.card_declined",
    "cnon:card-nonce-rejected-cvv": "payment.cvv_failure",
    "cnon:card-nonce-rejected-postalcode": "payment.address_verification_failure",
    "cnon:card-nonce-rejected-expiration": "payment.invalid_expiration",
    "cnon:card-nonce-already-used": "payment.card_token_used",
    "ccof:customer-card-id-ok": None,
    "ccof:customer-card-id-requires-verification": "payment.verification_required",
    "ccof:customer-card-id-rejected-postalcode": "payment.address_verification_failure",
    "ccof:customer-card-id-rejected-expiration": "payment.invalid_expiration",
    "ccof:customer-card-id-declined": "payment.card_declined",
    "cnon:gift-card-nonce-ok": None,
    "cnon:gift-card-nonce-insufficient-funds": "payment.gift_card_insufficient_funds",
    "cnon:gift-card-nonce-insufficient-permission": "payment.gift_card_insufficient_permission",
    "bnon:bank-nonce-ok": None,
    "bnon:bank-nonce-failure": "payment.bank_settles",
    "bnon:bank-nonce-account-unusable": "payment.bank_settles",
    "bnon:bank-nonce-insufficient-funds": "payment.bank_settles",
    "bnon:bank-nonce-invalid-account": "payment.bank_settles",
    "bnon:bank-nonce-buyer-refused-payment": "payment.bank_settles",
}
# Card tokens that are declined: the payment is recorded FAILED and returned with the error.
# (cnon:card-nonce-already-used is refused before any card is tried; see SANDBOX_TOKENS.)
DECLINE_NONCES = {
    token: rule for token, rule in SANDBOX_TOKENS.items()
    if rule is not None and token.startswith(("cnon:", "ccof:")) and rule != "payment.card_token_used"
}
BANK_FAIL_NONCES = {t for t, rule in SANDBOX_TOKENS.items() if t.startswith("bnon:") and rule}
ORDER_LISTS = ("line_items", "taxes", "discounts", "service_charges", "fulfillments")
PRICED_LISTS = ("line_items", "taxes", "discounts", "service_charges")
READ_ONLY_ORDER_FIELDS = frozenset({
    "id", "version", "created_at", "updated_at", "closed_at", "tenders", "refunds", "returns",
    "return_amounts", "net_amounts", "rounding_adjustment", "total_money", "total_tax_money",
    "total_discount_money", "total_tip_money", "total_service_charge_money",
    "net_amount_due_money", "rewards",
})
CREATABLE_ORDER_FIELDS = frozenset({
    "location_id", "reference_id", "source", "customer_id", "line_items", "taxes", "discounts",
    "service_charges", "fulfillments", "metadata", "state", "ticket_name", "pricing_options",
})
REFUND_YEAR = timedelta(days=365)
JSON_CACHE_MAX = 10_000  # rendered orders kept per merchant
_json_bytes = (lambda enc: lambda value: enc(value).encode())(
    json.JSONEncoder(separators=(",", ":")).encode)
MAX_REFUNDS = 20


@dataclass(slots=True)
class DomainEvent:
    """Something that happened, for webhooks: ``data`` is Square's ``data.object``."""

    type: str
    object_type: str
    object_id: str
    location_id: str | None
    at: datetime
    data: dict[str, Any]


_CONTAINERS = (dict, list)


def clone(value: Any) -> Any:
    """Copy JSON-shaped data (dicts, lists, scalars); scalars are shared, not visited."""
    kind = type(value)
    if kind is dict:
        return {k: (clone(v) if type(v) in _CONTAINERS else v) for k, v in value.items()}
    if kind is list:
        return [clone(v) if type(v) in _CONTAINERS else v for v in value]
    return value


def _copy_payment(p: Mapping[str, Any]) -> dict[str, Any]:
    """A payment copy that is safe to change the way the engine changes payments: top-level
    keys, the card status and timeline, and the refund id list."""
    out = dict(p)
    card = out.get("card_details")
    if card is not None:
        card = out["card_details"] = dict(card)
        if "card_payment_timeline" in card:
            card["card_payment_timeline"] = dict(card["card_payment_timeline"])
    if "refund_ids" in out:
        out["refund_ids"] = list(out["refund_ids"])
    return out


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (clone(v) if type(v) in _CONTAINERS else v)
            for k, v in record.items() if k[0] != "_"}


class _Tx:
    """Staged changes of one command; nothing reaches the engine until commit."""

    __slots__ = ("orders", "shallow", "payments", "refunds", "timers", "events", "keys", "counter")

    def __init__(self, counter: int) -> None:
        self.orders: dict[str, dict] = {}
        # Orders staged as shallow copies: only top-level keys and _payment_ids may change.
        self.shallow: set[str] = set()
        self.payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.timers: list[tuple[datetime, str, str]] = []
        self.events: list[tuple[str, str, dict]] = []
        self.keys: dict[str, str] = {}
        self.counter = counter


class Engine:
    """One merchant. Commands return rendered Square objects (fresh copies)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int | str = 0,
        variants: Variants | Mapping[str, str] | Iterable[str] | None = None,
        currency: str = "USD",
        country: str = "US",
        business_name: str = "Default Test Account",
        refund_settle_delay: timedelta = DEFAULT_SETTLE_DELAY,
        record_events: bool = False,
    ) -> None:
        self.clock: Clock = clock if clock is not None else ManualClock()
        self.ids = IdGenerator(seed)
        self.variants = variants if isinstance(variants, Variants) else Variants(variants)
        self.currency = currency
        self.refund_settle_delay = refund_settle_delay
        self.record_events = record_events
        self.merchant_id = self.ids.merchant_id()
        self.orders: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.payment_keys: dict[str, str] = {}
        self.events: list[DomainEvent] = []
        self.order_index = OrderIndex()
        self.payment_index = TimeIndex()
        self.refund_index = TimeIndex()
        self._timers: list[tuple[datetime, int, str, str]] = []
        self._timer_seq = 0
        # Where a durable store wants timers written (seq -> [due, kind, id]); None otherwise.
        self.timer_table: Any = None
        self._tx: _Tx | None = None
        self.catalog = Catalog(self)
        self._json_cache: dict[str, tuple] = {}  # order id -> (record, payments, JSON)
        self._stamp_at: datetime | None = None
        self._stamp_text = ""
        # An orderfsm.coverage.Observer, told the transitions each committed command took.
        self.observer: Any = None
        now = self.clock.now()
        location_id = self.ids.location_id()
        self.main_location_id = location_id
        self.locations: dict[str, dict] = {
            location_id: {
                "id": location_id,
                "name": business_name,
                "address": {"address_line_1": "1600 Pennsylvania Ave NW", "locality": "Washington",
                            "administrative_district_level_1": "DC", "postal_code": "20500",
                            "country": country},
                "timezone": "UTC",
                "capabilities": ["CREDIT_CARD_PROCESSING", "AUTOMATIC_TRANSFERS"],
                "status": "ACTIVE",
                "created_at": rfc3339(now),
                "merchant_id": self.merchant_id,
                "country": country,
                "language_code": "en-US",
                "currency": currency,
                "business_name": business_name,
                "type": "PHYSICAL",
                "mcc": "7299",
            }
        }

    # ================================================================ plumbing
    def now(self) -> datetime:
        return self.clock.now()

    def _stamp(self) -> str:
        now = self.clock.now()
        if now != self._stamp_at:
            self._stamp_at = now
            self._stamp_text = rfc3339(now)
        return self._stamp_text

    def _run(self, body: Callable[[_Tx], Any], *, fire_due: bool = True,
             render: Callable[[Any, _Tx], Any] | None = None) -> Any:
        """Run one command atomically: stage, compute everything, then commit.

        ``body`` stages its changes in a :class:`_Tx`; ``render`` (if given) turns its result
        into the answer while the changes are still staged. Every staged order is priced and
        every event built before anything is committed, so an exception anywhere (a rule's
        SquareError or a bug) leaves the engine exactly as it was."""
        if fire_due:
            self.fire_due()
        tx = _Tx(self.ids.counter)
        self._tx = tx
        observer = self.observer
        taken = token = None
        if observer is not None:
            taken = []
            token = RECORDING.set(taken)
        try:
            result = body(tx)
            answer = render(result, tx) if render is not None else result
            for oid, rec in tx.orders.items():
                if render is None or rec is not result:
                    price_order(rec, self.currency)
            events = self._build_events(tx)
        except BaseException:
            self.ids.counter = tx.counter
            raise
        finally:
            self._tx = None
            if token is not None:
                RECORDING.reset(token)
        self._commit(tx, events)
        if taken is not None:
            observer.committed(taken, self._stamp())
        return answer

    def _build_events(self, tx: _Tx) -> list[DomainEvent]:
        if not self.record_events or not tx.events:
            return []
        at = self.clock.now()
        return [self._make_event(etype, ident, extra, at, tx) for etype, ident, extra in tx.events]

    def _commit(self, tx: _Tx, events: list[DomainEvent]) -> None:
        # Only assignments from here on: everything that could fail has run in _run.
        for oid, rec in tx.orders.items():
            before = self.orders.get(oid)
            self.orders[oid] = rec
            if before is None:
                self.order_index.add(rec)
            else:
                self.order_index.update(before, rec)
        for pid, rec in tx.payments.items():
            if pid not in self.payments:
                self.payment_index.add(pid, rec["created_at"], rec["location_id"])
            self.payments[pid] = rec
        for rid, rec in tx.refunds.items():
            if rid not in self.refunds:
                self.refund_index.add(rid, rec["created_at"], rec["location_id"])
            self.refunds[rid] = rec
        self.payment_keys.update(tx.keys)
        for due, kind, ident in tx.timers:
            self._timer_seq += 1
            heapq.heappush(self._timers, (due, self._timer_seq, kind, ident))
            if self.timer_table is not None:
                self.timer_table[str(self._timer_seq)] = [due.isoformat(), kind, ident]
        self.events.extend(events)

    # Reads that see the command's own staged changes. Committed records are never changed
    # in place: a command changes copies, and commit swaps them in.
    def _order(self, tx: _Tx, order_id: str, *, field: str | None = "order_id",
               deep: bool = True) -> dict:
        """The staged copy of an order. ``deep=False`` gives a shallow copy for commands that
        only touch top-level fields (state, version, timestamps) and the payment id list."""
        rec = tx.orders.get(order_id)
        if rec is None:
            base = self.orders.get(order_id) if isinstance(order_id, str) else None
            if base is None:
                raise violation("order.not_found", id=order_id, field=field)
            if deep:
                rec = clone(base)
            else:
                rec = dict(base)
                rec["_payment_ids"] = list(base.get("_payment_ids", ()))
                tx.shallow.add(order_id)
            tx.orders[order_id] = rec
        elif deep and order_id in tx.shallow:
            rec = tx.orders[order_id] = clone(rec)
            tx.shallow.discard(order_id)
        return rec

    def _read_order(self, order_id: str) -> dict:
        rec = self.orders.get(order_id) if isinstance(order_id, str) else None
        if rec is None:
            raise violation("order.not_found", id=order_id, field="order_id")
        return rec

    def _payment(self, tx: _Tx, payment_id: str, *, field: str | None = None) -> dict:
        rec = tx.payments.get(payment_id)
        if rec is None:
            base = self.payments.get(payment_id) if isinstance(payment_id, str) else None
            if base is None:
                raise violation("payment.not_found", id=payment_id, field=field)
            rec = tx.payments[payment_id] = _copy_payment(base)
        return rec

    def _refund(self, tx: _Tx, refund_id: str) -> dict:
        rec = tx.refunds.get(refund_id)
        if rec is None:
            base = self.refunds.get(refund_id) if isinstance(refund_id, str) else None
            if base is None:
                raise violation("refund.not_found", id=refund_id)
            rec = tx.refunds[refund_id] = dict(base)
        return rec

    def _peek_payment(self, tx: _Tx | None, payment_id: str) -> dict:
        if tx is not None and payment_id in tx.payments:
            return tx.payments[payment_id]
        return self.payments[payment_id]

    def _schedule(self, tx: _Tx, due: datetime, kind: str, ident: str) -> None:
        tx.timers.append((due, kind, ident))

    def _emit(self, tx: _Tx, etype: str, ident: str, **extra: Any) -> None:
        if not self.record_events:
            return
        if etype == "order.updated" and any(e[0] == etype and e[1] == ident for e in tx.events):
            return
        tx.events.append((etype, ident, extra))

    # ================================================================ rendering
    def render_order(self, rec: Mapping[str, Any], tx: _Tx | None = None) -> dict[str, Any]:
        out = _public(rec)
        currency = self.currency
        apply_pricing(out, currency)
        total = out["total_money"]["amount"]
        tenders = []
        captured = 0
        for pid in rec.get("_payment_ids", ()):
            p = self._peek_payment(tx, pid)
            if p["status"] not in ("APPROVED", "COMPLETED", "PENDING"):
                continue
            if p["status"] == "COMPLETED":
                captured += p["amount_money"]["amount"]
            tenders.append(self._tender(p, rec["id"]))
        if tenders:
            out["tenders"] = tenders
        returned = 0
        if rec.get("returns"):
            returned = sum(
                (li.get("total_money") or li.get("base_price_money") or {}).get("amount", 0)
                for r in rec["returns"] for li in r.get("return_line_items", []))
            out["return_amounts"] = {
                "total_money": {"amount": returned, "currency": currency},
                "tax_money": {"amount": 0, "currency": currency},
                "discount_money": {"amount": 0, "currency": currency},
                "tip_money": {"amount": 0, "currency": currency},
                "service_charge_money": {"amount": 0, "currency": currency},
            }
        out["net_amounts"] = {
            "total_money": {"amount": total - returned, "currency": currency},
            "tax_money": dict(out["total_tax_money"]),
            "discount_money": dict(out["total_discount_money"]),
            "tip_money": dict(out["total_tip_money"]),
            "service_charge_money": dict(out["total_service_charge_money"]),
        }
        due = self._amount_due_from(rec, total, captured)
        out["net_amount_due_money"] = {"amount": due, "currency": currency}
        return out

    def order_json(self, rec: Mapping[str, Any]) -> bytes:
        """``render_order(rec)`` as compact JSON bytes, cached.

        Rendering (pricing, tenders) and encoding are most of the cost of reading an order,
        and most orders read did not change since they were last read. Committed records are
        replaced, never changed, so an entry is current while the order record and the records
        of its payments (they give its tenders) are the very objects it was rendered from."""
        cache = self._json_cache
        payments = self.payments
        pids = rec.get("_payment_ids", ())
        hit = cache.get(rec["id"])
        if (hit is not None and hit[0] is rec and len(hit[1]) == len(pids)
                and all(payments.get(pid) is p for pid, p in zip(pids, hit[1]))):
            return hit[2]
        data = _json_bytes(self.render_order(rec))
        if len(cache) >= JSON_CACHE_MAX:
            try:
                del cache[next(iter(cache))]
            except (StopIteration, KeyError, RuntimeError):
                pass
        cache[rec["id"]] = (rec, tuple(payments.get(pid) for pid in pids), data)
        return data

    def _amount_due_from(self, rec: Mapping[str, Any], total: int, captured: int) -> int:
        if rec.get("returns"):
            return 0
        return max(total - captured, 0)

    def _tender(self, p: Mapping[str, Any], order_id: str) -> dict[str, Any]:
        tender: dict[str, Any] = {
            "id": p["id"],
            "location_id": p["location_id"],
            "transaction_id": order_id,
            "created_at": p["created_at"],
            "amount_money": clone(p["amount_money"]),
            "payment_id": p["id"],
        }
        if p.get("tip_money"):
            tender["tip_money"] = clone(p["tip_money"])
        source = p.get("source_type")
        if source == "CARD":
            tender["type"] = "CARD"
            cd = p.get("card_details", {})
            tender["card_details"] = {"status": cd.get("status"), "card": clone(cd.get("card")),
                                      "entry_method": cd.get("entry_method")}
        elif source == "CASH":
            tender["type"] = "CASH"
            tender["cash_details"] = clone(p.get("cash_details"))
        elif source == "BANK_ACCOUNT":
            tender["type"] = "BANK_ACCOUNT"
        else:
            tender["type"] = "OTHER"
        return tender

    def render_payment(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        return _public(rec)

    def render_refund(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        return _public(rec)

    def _make_event(self, etype: str, ident: str, extra: dict, at: datetime,
                    tx: _Tx | None = None) -> DomainEvent:
        if etype == "catalog.version.updated":
            return DomainEvent(etype, "catalog_version", ident, None, at,
                               {"catalog_version": {"updated_at": extra["updated_at"]}})
        if etype.startswith("order."):
            rec = tx.orders.get(ident) if tx is not None else None
            rec = rec if rec is not None else self.orders[ident]
            summary = {
                "order_id": ident,
                "version": rec.get("version"),
                "location_id": rec.get("location_id"),
                "state": rec.get("state"),
                "created_at": rec.get("created_at"),
            }
            if etype == "order.created":
                data = {"order_created": summary}
            else:
                summary["updated_at"] = rec.get("updated_at")
                if etype == "order.fulfillment.updated":
                    summary["fulfillment_update"] = extra["updates"]
                    data = {"order_fulfillment_updated": summary}
                else:
                    data = {"order_updated": summary}
            return DomainEvent(etype, etype.replace("order.", "order_").replace(".", "_"), ident,
                               rec.get("location_id"), at, data)
        if etype.startswith("payment."):
            rec = tx.payments.get(ident) if tx is not None else None
            rec = rec if rec is not None else self.payments[ident]
            return DomainEvent(etype, "payment", ident, rec.get("location_id"), at,
                               {"payment": self.render_payment(rec)})
        rec = tx.refunds.get(ident) if tx is not None else None
        rec = rec if rec is not None else self.refunds[ident]
        obj = self.render_refund(rec)
        obj["version"] = rec.get("_version", 1)
        return DomainEvent(etype, "refund", ident, rec.get("location_id"), at, {"refund": obj})

    def drain_events(self) -> list[DomainEvent]:
        out, self.events = self.events, []
        return out

    # ================================================================ helpers
    def _location(self, location_id: Any, field: str) -> dict:
        if location_id == "main":
            location_id = self.main_location_id
        loc = self.locations.get(location_id) if isinstance(location_id, str) else None
        if loc is None:
            raise violation("location.not_found", id=location_id, field=field)
        return loc

    def _check_money(self, m: Any, field: str, *, positive: bool = False) -> int:
        if not isinstance(m, dict):
            return 0
        amount = m.get("amount")
        currency = m.get("currency")
        if currency is not None and currency != self.currency:
            raise violation("money.currency_mismatch", currency=currency, expected=self.currency,
                            field=f"{field}.currency")
        if amount is None:
            return 0
        if type(amount) is not int or amount > INT64_MAX:
            raise violation("api.invalid_value", field=f"{field}.amount",
                            reason=f"An amount must be an integer no greater than {INT64_MAX}.")
        if amount < 0:
            raise violation("money.non_negative", field=f"{field}.amount")
        return amount

    def _check_order_money(self, order: Mapping[str, Any], prefix: str = "order") -> None:
        for list_name in PRICED_LISTS:
            for i, entry in enumerate(order.get(list_name) or []):
                if not isinstance(entry, dict):
                    continue
                base = f"{prefix}.{list_name}[{i}]"
                for key in ("base_price_money", "amount_money"):
                    self._check_money(entry.get(key), f"{base}.{key}")
                for j, mod in enumerate(entry.get("modifiers") or []):
                    self._check_money(mod.get("base_price_money"),
                                      f"{base}.modifiers[{j}].base_price_money")
        check_request(order, prefix)

    def _payments_of(self, tx: _Tx | None, order: Mapping[str, Any]) -> list[dict]:
        return [self._peek_payment(tx, pid) for pid in order.get("_payment_ids", ())]

    def _captured(self, tx: _Tx | None, order: Mapping[str, Any]) -> int:
        return sum(p["amount_money"]["amount"] for p in self._payments_of(tx, order)
                   if p["status"] == "COMPLETED")

    def _total(self, order: Mapping[str, Any]) -> int:
        return price_order(order, self.currency)["total_money"]["amount"]

    def _price_stored(self, rec: dict) -> None:
        """Give a stored order Square's generated references, then price it once so a request
        whose amounts cannot be computed (or would leave int64) is rejected before commit."""
        attach_applied(rec, self.ids.uid)
        price_order(rec, self.currency)

    def amount_due(self, order: Mapping[str, Any], tx: _Tx | None = None) -> int:
        return self._amount_due_from(order, self._total(order), self._captured(tx, order))

    def _has_processed_payment(self, tx: _Tx | None, order: Mapping[str, Any]) -> bool:
        return any(p["status"] in ("COMPLETED", "PENDING") for p in self._payments_of(tx, order))

    def _is_paid(self, tx: _Tx | None, order: Mapping[str, Any]) -> bool:
        if order.get("_zero_paid"):
            return True
        captured = self._captured(tx, order)
        return captured > 0 and captured >= self._total(order)

    def _touch_order(self, tx: _Tx, order: dict) -> None:
        order["version"] = order.get("version", 0) + 1
        order["updated_at"] = self._stamp()

    def _close_order(self, order: dict) -> None:
        order["closed_at"] = self._stamp()

    def _new_token(self) -> str:
        return self.ids.suffix()

    def catalog_command(self, body: Callable[[], Any]) -> Any:
        """Run a catalog write (``engine.catalog``) as one command: all or nothing."""
        return self._run(lambda tx: body())

    # ================================================================ orders
    def create_order(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """CreateOrder. ``order`` is the request's ``order`` object."""
        given = order

        def run(tx: _Tx) -> dict[str, Any]:
            order = given
            loc_id = order.get("location_id")
            if loc_id is None:
                raise violation("order.location_required")
            loc = self._location(loc_id, "order.location_id")
            order = self.catalog.resolve_order(given, loc["id"])
            state = order.get("state") or "OPEN"
            if state not in ("OPEN", "DRAFT"):
                raise violation("api.invalid_value", field="order.state",
                                reason=f"An order cannot be created in state {state}.")
            self._check_order_money(order)
            _check_ad_hoc_lines(order.get("line_items"))
            rec: dict[str, Any] = {k: clone(v) for k, v in order.items()
                                   if k in CREATABLE_ORDER_FIELDS and v is not None}
            oid = self.ids.object_id()
            now = self._stamp()
            rec.update(id=oid, location_id=loc["id"], state="OPEN" if state == "OPEN" else "DRAFT",
                       version=1, created_at=now, updated_at=now)
            rec["_payment_ids"] = []
            for list_name in ORDER_LISTS:
                for entry in rec.get(list_name) or []:
                    if isinstance(entry, dict) and not entry.get("uid"):
                        entry["uid"] = self.ids.uid()
            fulfillments = rec.get("fulfillments") or []
            if len(fulfillments) > 1:
                raise violation("order.one_fulfillment")
            for i, f in enumerate(fulfillments):
                self._new_fulfillment(tx, rec, f, i, paid=False)
            self._price_stored(rec)
            tx.orders[oid] = rec
            self._emit(tx, "order.created", oid)
            return rec

        return self._run(run, render=self.render_order)

    def _new_fulfillment(self, tx: _Tx, order: dict, f: dict, index: int, *, paid: bool) -> None:
        ftype = f.get("type")
        if ftype is None:
            raise violation("fulfillment.type_required", index=index)
        details = TYPES.get(ftype)
        if details is None:
            raise violation("api.invalid_value", field=f"order.fulfillments[{index}].type",
                            reason=f"Fulfillment type {ftype} is not supported.")
        if not isinstance(f.get(details), dict):
            raise violation("fulfillment.details_required", index=index, details=details)
        target = f.get("state") or "PROPOSED"
        f["state"] = "PROPOSED"
        f[details].setdefault("placed_at", self._stamp())
        if target != "PROPOSED":
            self._move_fulfillment(tx, order, f, target, index, paid=paid)

    def _move_fulfillment(self, tx: _Tx, order: dict, f: dict, target: str, index: int, *,
                          paid: bool) -> None:
        old = f["state"]
        if target == old:
            return
        trigger = TRIGGER_FOR.get(target)
        if trigger is None:
            raise violation("api.invalid_value", field=f"order.fulfillments[{index}].state",
                            reason=f"Unknown fulfillment state {target}.")
        ctx = FulfillmentContext(
            order_state=order["state"], order_paid=paid, variants=self.variants,
            fmt={"index": index, "old": old, "new": target, "uid": f.get("uid")})
        FULFILLMENT.fire(f, trigger, ctx)
        details = TYPES.get(f.get("type"))
        stamp = TIMESTAMPS.get(details, {}).get(target)
        if details and stamp and isinstance(f.get(details), dict):
            f[details][stamp] = self._stamp()

    def update_order(
        self,
        order_id: str,
        order: Mapping[str, Any],
        fields_to_clear: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """UpdateOrder: sparse merge by uid, ``fields_to_clear``, and state changes."""
        patch = order

        def run(tx: _Tx) -> dict[str, Any]:
            order = patch
            rec = self._order(tx, order_id)
            version = order.get("version")
            if version is None:
                raise violation("order.version_required")
            if version != rec.get("version"):
                raise violation("order.version_mismatch", given=version,
                                current=rec.get("version"), order_id=order_id)
            ORDER.fire(rec, "update", OrderContext(fmt={"state": rec["state"]}))
            processed = self._has_processed_payment(tx, rec)
            before_fulfillments = {f["uid"]: f["state"] for f in rec.get("fulfillments") or []}
            clears = list(fields_to_clear or [])
            touched_lists = {name for name in PRICED_LISTS if name in order}
            touched_lists.update(p.split("[")[0].split(".")[0] for p in clears)
            if processed:
                for name in PRICED_LISTS:
                    if name in touched_lists:
                        if name == "line_items":
                            raise violation("order.line_items_locked")
                        raise violation("order.pricing_locked", list_name=name)
                removes_fulfillment = ("fulfillments" in order and order["fulfillments"] is None)
                for path in clears:
                    parts = _split_path(path)
                    if parts[0][0] == "fulfillments" and len(parts) == 1:
                        removes_fulfillment = True
                if removes_fulfillment:
                    raise violation("order.fulfillment_locked_when_paid",
                                    field="fields_to_clear" if clears else "order.fulfillments")
            order = self.catalog.resolve_order(patch, rec["location_id"])
            self._check_order_money(order)
            known_lines = {e.get("uid") for e in rec.get("line_items") or [] if isinstance(e, dict)}
            _check_ad_hoc_lines(order.get("line_items"), known_lines)
            for path in clears:
                _clear_path(rec, path)
            fulfillment_patch_index: dict[str, int] = {}
            for key, value in order.items():
                if key in READ_ONLY_ORDER_FIELDS or key == "state":
                    continue
                if key == "location_id":
                    if value is not None and self._location(value, "order.location_id")["id"] != rec["location_id"]:
                        raise violation("api.invalid_value", field="order.location_id",
                                        reason="The location of an order cannot change.")
                    continue
                if key in ORDER_LISTS:
                    if value is None:
                        rec.pop(key, None)
                        continue
                    if key == "fulfillments":
                        for i, entry in enumerate(value):
                            if isinstance(entry, dict) and entry.get("uid"):
                                fulfillment_patch_index[entry["uid"]] = i
                    self._merge_list(tx, rec, key, value)
                    continue
                if key not in CREATABLE_ORDER_FIELDS:
                    continue
                if value is None:
                    rec.pop(key, None)
                elif isinstance(value, dict) and isinstance(rec.get(key), dict):
                    _merge_dict(rec[key], value)
                else:
                    rec[key] = clone(value)
            fulfillments = rec.get("fulfillments") or []
            if len(fulfillments) > 1:
                raise violation("order.one_fulfillment")
            target_state = order.get("state") or rec["state"]
            # Fulfillment moves are judged against the order state the request asks for.
            paid = self._is_paid(tx, rec)
            order_state_for_moves = target_state if target_state in ("DRAFT", "OPEN") else rec["state"]
            updates = []
            for pos, f in enumerate(fulfillments):
                index = fulfillment_patch_index.get(f.get("uid"), pos)
                old = before_fulfillments.get(f.get("uid"))
                wanted = f.get("state") or "PROPOSED"
                if old is None:
                    saved_state, rec["state"] = rec["state"], order_state_for_moves
                    self._new_fulfillment(tx, rec, f, index, paid=paid)
                    rec["state"] = saved_state
                    if processed:  # order.fulfillment_added_after_payment
                        rec["_fulfillments_after_payment"] = [
                            *rec.get("_fulfillments_after_payment", ()), f["uid"]]
                    updates.append({"fulfillment_uid": f["uid"], "new_state": f["state"]})
                elif wanted != old:
                    f["state"] = old
                    saved_state, rec["state"] = rec["state"], order_state_for_moves
                    self._move_fulfillment(tx, rec, f, wanted, index, paid=paid)
                    rec["state"] = saved_state
                    updates.append({"fulfillment_uid": f["uid"], "old_state": old, "new_state": f["state"]})
                elif f.get("uid") in fulfillment_patch_index:
                    updates.append({"fulfillment_uid": f["uid"], "old_state": old, "new_state": old})
            if touched_lists:
                self._price_stored(rec)
            if target_state != rec["state"]:
                updates.extend(self._change_order_state(tx, rec, target_state, processed))
            self._touch_order(tx, rec)
            self._emit(tx, "order.updated", order_id)
            if updates:
                self._emit(tx, "order.fulfillment.updated", order_id, updates=updates)
            return rec

        return self._run(run, render=self.render_order)

    def _change_order_state(self, tx: _Tx, rec: dict, target: str,
                            processed: bool) -> list[dict[str, str]]:
        """Move the order to ``target``; returns the fulfillment moves a cascade made."""
        states = tuple(f["state"] for f in rec.get("fulfillments") or [])
        late = rec.get("_fulfillments_after_payment")
        ctx = OrderContext(
            has_processed_payment=processed,
            amount_due=self.amount_due(rec, tx),
            fulfillment_states=states,
            fulfillment_states_before_payment=None if not late else tuple(
                f["state"] for f in rec.get("fulfillments") or [] if f["uid"] not in late),
            variants=self.variants,
            fmt={"old": rec["state"], "new": target, "state": rec["state"],
                 "order_id": rec["id"]},
        )
        trigger = {"OPEN": "open", "CANCELED": "cancel", "COMPLETED": "complete",
                   "DRAFT": "draft"}[target]
        ORDER.fire(rec, trigger, ctx)
        cascaded = []
        if target == "CANCELED":
            for i, f in enumerate(rec.get("fulfillments") or []):
                if f["state"] not in TERMINAL_FULFILLMENT:
                    old = f["state"]
                    self._move_fulfillment(tx, rec, f, "CANCELED", i, paid=False)
                    cascaded.append({"fulfillment_uid": f["uid"], "old_state": old,
                                     "new_state": "CANCELED"})
        if target in ("CANCELED", "COMPLETED"):
            self._close_order(rec)
        return cascaded

    def _merge_list(self, tx: _Tx, rec: dict, key: str, patch: list) -> None:
        current = rec.setdefault(key, [])
        by_uid = {e.get("uid"): e for e in current if isinstance(e, dict)}
        for entry in patch:
            if not isinstance(entry, dict):
                continue
            uid = entry.get("uid")
            if uid is not None and uid in by_uid:
                _merge_dict(by_uid[uid], entry)
            else:
                new = {k: clone(v) for k, v in entry.items() if v is not None}
                if not new.get("uid"):
                    new["uid"] = self.ids.uid()
                if key == "fulfillments":
                    new.setdefault("state", "PROPOSED")
                current.append(new)
                by_uid[new["uid"]] = new

    def clone_order(self, order_id: str, version: int | None = None) -> dict[str, Any]:
        """CloneOrder: a DRAFT copy of the core fields (line items, taxes, discounts)."""

        def run(tx: _Tx) -> dict[str, Any]:
            src = self._read_order(order_id)
            if version is not None and version != src.get("version"):
                raise violation("order.version_mismatch", given=version, current=src.get("version"),
                                order_id=order_id, field="version")
            oid = self.ids.object_id()
            now = self._stamp()
            rec: dict[str, Any] = {"id": oid, "location_id": src["location_id"]}
            for key in ("line_items", "taxes", "discounts", "customer_id", "reference_id"):
                if src.get(key):
                    rec[key] = clone(src[key])
            rec.update(state="DRAFT", version=1, created_at=now, updated_at=now, _payment_ids=[])
            tx.orders[oid] = rec
            # No order.created: it is "triggered only by the CreateOrder endpoint call".
            return rec

        return self._run(run, render=self.render_order)

    def calculate_order(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """CalculateOrder: the order with Square's computed fields; nothing is stored."""
        if order.get("location_id") is None:
            raise violation("order.location_required")
        loc = self._location(order["location_id"], "order.location_id")
        counter = self.ids.counter
        order = self.catalog.resolve_order(order, loc["id"])
        self.ids.counter = counter
        self._check_order_money(order)
        _check_ad_hoc_lines(order.get("line_items"))
        rec = {k: clone(v) for k, v in order.items() if k in CREATABLE_ORDER_FIELDS and v is not None}
        rec.update(location_id=loc["id"], state=rec.get("state", "OPEN"))
        rec.setdefault("id", "")
        # Nothing is stored, so the id counter stays put: the uids Square would generate are
        # derived from each entry's place in the request instead.
        for list_name in ORDER_LISTS:
            for i, entry in enumerate(rec.get(list_name) or []):
                if isinstance(entry, dict) and not entry.get("uid"):
                    entry["uid"] = derived_uid("calculate", list_name, str(i))
        count = iter(range(10**9))
        attach_applied(rec, lambda: derived_uid("calculate", "applied", str(next(count))))
        out = self.render_order(rec)
        out.pop("id", None)
        return out

    def pay_order(
        self,
        order_id: str,
        payment_ids: Iterable[str] | None = None,
        order_version: int | None = None,
    ) -> dict[str, Any]:
        """PayOrder: capture the listed APPROVED payments, cancel the other APPROVED ones."""

        def run(tx: _Tx) -> dict[str, Any]:
            order = self._order(tx, order_id, deep=False)
            ORDER.fire(order, "pay", OrderContext(fmt={"state": order["state"]}))
            if order_version is not None and order_version != order.get("version"):
                raise violation("pay_order.version_mismatch", given=order_version,
                                current=order.get("version"), order_id=order_id)
            ids = list(dict.fromkeys(payment_ids or []))
            listed = []
            for i, pid in enumerate(ids):
                p = self._payment(tx, pid, field=f"payment_ids[{i}]")
                if p.get("order_id") != order_id:
                    raise violation("pay_order.payment_wrong_order", payment_id=pid, order_id=order_id)
                if p["status"] != "APPROVED":
                    raise violation("pay_order.payment_not_approved", payment_id=pid,
                                    status=p["status"])
                listed.append(p)
            paid = sum(p["amount_money"]["amount"] for p in listed)
            total = self._total(order)  # "The payment total must match the order total."
            if paid != total:
                raise violation("pay_order.amount_mismatch", paid=paid, total=total)
            for p in listed:
                PAYMENT.fire(p, "complete", PaymentContext())
                self._capture_effects(p)
                self._emit(tx, "payment.updated", p["id"])
            for pid in order.get("_payment_ids", ()):
                if pid in ids:
                    continue
                other = self._payment(tx, pid)
                if other["status"] == "APPROVED":
                    PAYMENT.fire(other, "cancel")
                    self._void_effects(other)
                    self._emit(tx, "payment.updated", pid)
            if not listed:
                order["_zero_paid"] = True
            self._touch_order(tx, order)
            if not order.get("fulfillments"):
                ORDER.fire(order, "settle")
                self._close_order(order)
            self._emit(tx, "order.updated", order_id)
            return order

        return self._run(run, render=self.render_order)

    # ================================================================ payments
    def _capture_effects(self, payment: dict) -> None:
        """Card/receipt/fee fields of a capture, without touching the order."""
        now = self._stamp()
        card = payment.get("card_details")
        if card is not None:
            card["status"] = "CAPTURED"
            card.setdefault("card_payment_timeline", {})["captured_at"] = now
        payment["receipt_url"] = f"https://squareupsandbox.com/receipt/preview/{payment['id']}"
        payment.pop("capabilities", None)
        if payment.get("source_type") in ("CARD", "BANK_ACCOUNT"):
            total = payment["total_money"]["amount"]
            fee = (total * 29 + 500) // 1000 + 30 if total else 0
            payment["processing_fee"] = [{
                "effective_at": now, "type": "INITIAL",
                "amount_money": {"amount": fee, "currency": self.currency},
            }]
        payment["version_token"] = self._new_token()
        payment["updated_at"] = now

    def _void_effects(self, payment: dict, *, expired: bool = False) -> None:
        now = self._stamp()
        if expired:
            payment["_expired"] = True
        card = payment.get("card_details")
        if card is not None:
            card["status"] = "VOIDED"
            card.setdefault("card_payment_timeline", {})["voided_at"] = now
        payment.pop("capabilities", None)
        payment.pop("receipt_number", None)
        payment["approved_money"] = {"amount": 0, "currency": self.currency}
        payment["version_token"] = self._new_token()
        payment["updated_at"] = now

    def create_payment(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """CreatePayment. ``request`` is the whole request body.

        Every request check runs before the card is tried (payment.request_checked_before_card):
        a bad request is never reported as a decline."""
        declined: dict[str, Any] = {}

        def run(tx: _Tx) -> dict[str, Any]:
            source_id = request.get("source_id")
            amount_money = request.get("amount_money")
            if amount_money is None:
                raise violation("payment.amount_required")
            amount = self._check_money(amount_money, "amount_money")
            tip = self._check_money(request.get("tip_money"), "tip_money")
            fee = self._check_money(request.get("app_fee_money"), "app_fee_money")
            if amount == 0:
                raise violation("payment.amount_zero")
            total = amount + tip
            if fee * 10 > total * 9:
                raise violation("payment.app_fee_too_high")
            loc = self._location(request.get("location_id") or self.main_location_id, "location_id")
            autocomplete = request.get("autocomplete")
            autocomplete = True if autocomplete is None else autocomplete
            if autocomplete and request.get("accept_partial_authorization"):
                raise violation("api.invalid_value", field="accept_partial_authorization",
                                reason="`accept_partial_authorization` cannot be true when "
                                       "`autocomplete` is true.")
            source_type, extra = self._classify_source(source_id, request, total)
            for param in ("delay_duration", "delay_action"):
                if request.get(param) is not None:
                    if source_type != "CARD":
                        raise violation("payment.delay_card_only", param=param)
                    if autocomplete:
                        raise violation("payment.delay_needs_delayed_capture", param=param)
            if source_type == "BANK_ACCOUNT" and not autocomplete:
                raise violation("payment.ach_autocomplete_required")
            delay = None
            if not autocomplete and source_type == "CARD":
                delay = DEFAULT_DELAY_CARD_NOT_PRESENT
                if request.get("delay_duration") is not None:
                    try:
                        delay = parse_duration(request["delay_duration"])
                    except ValueError:
                        raise violation("api.invalid_value", field="delay_duration",
                                        reason="delay_duration must be an RFC 3339 duration.")
                    if delay < MIN_DELAY or delay > DEFAULT_DELAY_CARD_NOT_PRESENT:
                        raise violation("payment.delay_duration_bounds", maximum="P7D")
                delay_action = _delay_action(request.get("delay_action") or "CANCEL")
            order = None
            if request.get("order_id") is not None:
                order = self._order(tx, request["order_id"], deep=False)
                ORDER.fire(order, "pay", OrderContext(fmt={"state": order["state"]}))
                # Uncaptured payments already hold part of what is due.
                held = sum(p["amount_money"]["amount"] for p in self._payments_of(tx, order)
                           if p["status"] in ("APPROVED", "PENDING"))
                available = self.amount_due(order, tx) - held
                if amount > available or (autocomplete and amount != available):
                    raise violation("payment.order_total_mismatch")
            # The request is valid: now the card (or bank) token is tried.
            decline_rule = self._token_outcome(source_id, request) if source_type == "CARD" else None
            pid = self.ids.object_id()
            now_dt = self.clock.now()
            now = rfc3339(now_dt)
            rec: dict[str, Any] = {
                "id": pid,
                "created_at": now,
                "updated_at": now,
                "amount_money": {"amount": amount, "currency": self.currency},
            }
            if request.get("tip_money") is not None:
                rec["tip_money"] = {"amount": tip, "currency": self.currency}
            rec["total_money"] = {"amount": total, "currency": self.currency}
            if request.get("app_fee_money") is not None:
                rec["app_fee_money"] = {"amount": fee, "currency": self.currency}
            rec["approved_money"] = {"amount": total, "currency": self.currency}
            rec["status"] = "COMPLETED"
            rec["source_type"] = source_type
            rec.update(extra)
            rec["location_id"] = loc["id"]
            for key in ("reference_id", "customer_id", "team_member_id", "note", "buyer_email_address",
                        "billing_address", "shipping_address", "statement_description_identifier",
                        "offline_payment_details"):
                if request.get(key) is not None:
                    rec[key] = clone(request[key])
            rec["receipt_number"] = pid[:4].upper()
            rec["application_details"] = {"square_product": "ECOMMERCE_API",
                                          "application_id": "sandbox-sq0idb-orderfsm"}
            rec["version_token"] = self._new_token()
            if request.get("idempotency_key"):
                rec["_idempotency_key"] = request["idempotency_key"]
                tx.keys[request["idempotency_key"]] = pid
            # Declines are recorded as FAILED payments and reported as errors.
            if decline_rule is not None:
                rule_err = violation(decline_rule)
                PAYMENT.create(rec, "CreatePayment declined")
                rec["approved_money"] = {"amount": 0, "currency": self.currency}
                rec["card_details"]["status"] = "FAILED"
                rec["card_details"]["errors"] = [e.to_json() for e in rule_err.errors]
                rec["delay_action"] = "CANCEL"
                rec.pop("receipt_number", None)
                if order is not None:
                    rec["order_id"] = order["id"]
                    tx.orders.pop(order["id"], None)  # a decline leaves the order as it was
                    tx.shallow.discard(order["id"])
                tx.payments[pid] = rec
                self._emit(tx, "payment.created", pid)
                declined["error"] = rule_err
                declined["payment"] = rec
                return rec
            if order is not None:
                rec["order_id"] = order["id"]
            if delay is not None:
                rec["delay_duration"] = format_duration(delay)
                rec["delay_action"] = delay_action
                rec["delayed_until"] = rfc3339(now_dt + delay)
                rec["capabilities"] = ["EDIT_AMOUNT_UP", "EDIT_AMOUNT_DOWN", "EDIT_TIP_AMOUNT_UP",
                                       "EDIT_TIP_AMOUNT_DOWN", "EDIT_DELAY_ACTION"]
                PAYMENT.create(rec, "CreatePayment autocomplete=false")
                rec["card_details"]["status"] = "AUTHORIZED"
                self._schedule(tx, now_dt + delay, "payment_delay", pid)
            elif not autocomplete:
                # CASH and EXTERNAL wait APPROVED for PayOrder or CompletePayment (no delay window).
                PAYMENT.create(rec, "CreatePayment autocomplete=false")
            elif source_type == "BANK_ACCOUNT":
                PAYMENT.create(rec, "CreatePayment bank transfer")
                rec.pop("receipt_number", None)
                self._schedule(tx, now_dt + BANK_SETTLE_DELAY, "bank_settle", pid)
            else:
                PAYMENT.create(rec, "CreatePayment autocomplete=true")
                self._capture_effects(rec)
            tx.payments[pid] = rec
            if order is None:
                order = self._implicit_order(tx, rec)
            order["_payment_ids"].append(pid)
            self._emit(tx, "payment.created", pid)
            if rec["status"] == "COMPLETED":
                self._settle_order_after_capture(tx, order)
            else:
                self._touch_order(tx, order)
                self._emit(tx, "order.updated", order["id"])
            return rec

        rec = self._run(run)
        if declined:
            err: SquareError = declined["error"]
            err.extra["payment"] = self.render_payment(self.payments[rec["id"]])
            raise err
        return self.render_payment(rec)

    @staticmethod
    def _token_outcome(source_id: str, request: Mapping[str, Any]) -> str | None:
        """Try a card token: None when it is accepted, the decline rule when it is declined.
        Tokens that are not cards at all (unknown, already used) raise."""
        if source_id not in SANDBOX_TOKENS:
            if source_id.startswith("cnon:"):
                raise violation("payment.card_nonce_not_found")
            raise violation("payment.card_on_file_not_found", card_id=source_id[5:])
        rule = SANDBOX_TOKENS[source_id]
        if rule == "payment.card_token_used":
            raise violation(rule)
        if rule == "payment.verification_required" and request.get("verification_token"):
            return None
        return rule

    def _classify_source(self, source_id: Any, request: Mapping[str, Any],
                         total: int) -> tuple[str, dict[str, Any]]:
        if not isinstance(source_id, str) or not source_id:
            raise violation("payment.invalid_source")
        if source_id == "CASH":
            cash = request.get("cash_details")
            if not isinstance(cash, dict) or cash.get("buyer_supplied_money") is None:
                raise violation("payment.cash_details_required",
                                field="cash_details.buyer_supplied_money")
            supplied = self._check_money(cash["buyer_supplied_money"], "cash_details.buyer_supplied_money")
            if supplied < total:
                raise violation("api.invalid_value", field="cash_details.buyer_supplied_money",
                                reason="buyer_supplied_money must be at least the payment total.")
            return "CASH", {"cash_details": {
                "buyer_supplied_money": {"amount": supplied, "currency": self.currency},
                "change_back_money": {"amount": supplied - total, "currency": self.currency}}}
        if source_id == "EXTERNAL":
            ext = request.get("external_details")
            for key in ("type", "source"):
                if not isinstance(ext, dict) or not ext.get(key):
                    raise violation("payment.cash_details_required", field=f"external_details.{key}")
            details = {k: clone(v) for k, v in ext.items() if v is not None}
            return "EXTERNAL", {"external_details": details}
        if source_id.startswith("bnon:"):
            return "BANK_ACCOUNT", {"bank_account_details": {
                "bank_name": "Citizens Bank", "transfer_type": "ACH", "account_ownership_type": "INDIVIDUAL",
                "fingerprint": "sq-1-bank", "country": "US", "statement_description": "SQ *DEFAULT TEST ACCOUNT",
                "ach_details": {"routing_number": "011401533", "account_number_suffix": "000",
                                "account_type": "CHECKING"},
            }, "_bank_fails": source_id in BANK_FAIL_NONCES}
        if source_id.startswith(("cnon:", "ccof:")):
            now = self._stamp()
            gift = source_id.startswith("cnon:gift-card-nonce")
            card = {"card_brand": "VISA", "last_4": "1111", "exp_month": 11, "exp_year": 2030,
                    "fingerprint": "sq-1-orderfsm", "card_type": "CREDIT",
                    "prepaid_type": "NOT_PREPAID", "bin": "411111"}
            if gift:
                card = {"card_brand": "SQUARE_GIFT_CARD", "last_4": "0000",
                        "fingerprint": "sq-1-orderfsm-gift", "card_type": "DEBIT",
                        "prepaid_type": "PREPAID", "bin": "778332"}
            return "CARD", {"card_details": {
                "status": "CAPTURED",
                "card": card,
                "entry_method": "ON_FILE" if source_id.startswith("ccof:") else "KEYED",
                "cvv_status": "CVV_ACCEPTED",
                "avs_status": "AVS_ACCEPTED",
                "statement_description": "SQ *DEFAULT TEST ACCOUNT",
                "card_payment_timeline": {"authorized_at": now},
            }}
        raise violation("payment.invalid_source")

    def _implicit_order(self, tx: _Tx, payment: dict) -> dict:
        """Square creates an order for every payment made without one."""
        oid = self.ids.object_id()
        now = self._stamp()
        rec = {
            "id": oid, "location_id": payment["location_id"],
            "line_items": [{"uid": self.ids.uid(), "name": "Custom Amount", "quantity": "1",
                            "item_type": "CUSTOM_AMOUNT",
                            "base_price_money": clone(payment["amount_money"])}],
            "state": "OPEN", "version": 1, "created_at": now, "updated_at": now,
            "_payment_ids": [], "_implicit": True,
        }
        tx.orders[oid] = rec
        payment["order_id"] = oid
        return rec

    def _settle_order_after_capture(self, tx: _Tx, order: dict) -> None:
        if order["state"] not in ("OPEN", "DRAFT"):
            return  # a closed order is not bumped by a late capture
        self._touch_order(tx, order)
        if order["state"] == "OPEN" and not order.get("fulfillments") and self._is_paid(tx, order):
            if order.get("_implicit") or self.variants["autocomplete_order_on_payment"] == "complete":
                ORDER.fire(order, "settle")
                self._close_order(order)
        self._emit(tx, "order.updated", order["id"])

    def complete_payment(self, payment_id: str, version_token: str | None = None) -> dict[str, Any]:
        def run(tx: _Tx) -> dict[str, Any]:
            p = self._payment(tx, payment_id)
            order = self._order(tx, p["order_id"], deep=False) if p.get("order_id") else None
            due = None
            if order is not None and p["status"] == "APPROVED":
                ORDER.fire(order, "pay", OrderContext(fmt={"state": order["state"]},))
                due = self.amount_due(order, tx)
            PAYMENT.fire(p, "complete", PaymentContext(
                version_token=version_token, record_token=p.get("version_token"),
                fmt={"given": version_token, "payment_id": payment_id}))
            if due is not None and p["amount_money"]["amount"] > due:
                # The order's line items changed after the authorization.
                raise violation("payment.order_total_mismatch", field=None)
            self._capture_effects(p)
            self._emit(tx, "payment.updated", payment_id)
            if order is not None:
                self._settle_order_after_capture(tx, order)
            return p

        return self.render_payment(self._run(run))

    def cancel_payment(self, payment_id: str) -> dict[str, Any]:
        def run(tx: _Tx) -> dict[str, Any]:
            p = self._payment(tx, payment_id)
            PAYMENT.fire(p, "cancel", PaymentContext(fmt={"payment_id": payment_id}))
            self._void_effects(p)
            self._emit(tx, "payment.updated", payment_id)
            self._order_after_void(tx, p)
            return p

        return self.render_payment(self._run(run))

    def _order_after_void(self, tx: _Tx, payment: dict) -> None:
        if not payment.get("order_id"):
            return
        order = self._order(tx, payment["order_id"], deep=False)
        if order["state"] not in ("OPEN", "DRAFT"):
            return
        self._touch_order(tx, order)
        if order.get("_implicit") and not any(
                p["status"] in ("APPROVED", "COMPLETED", "PENDING") for p in self._payments_of(tx, order)):
            ORDER.fire(order, "cancel", OrderContext())
            self._close_order(order)
        self._emit(tx, "order.updated", order["id"])

    def cancel_payment_by_idempotency_key(self, idempotency_key: str) -> dict[str, Any] | None:
        """Cancel the payment created with this key; a no-op (None) when there is none."""
        self.fire_due()
        pid = self.payment_keys.get(idempotency_key)
        if pid is None:
            return None
        return self.cancel_payment(pid)

    def update_payment(self, payment_id: str, payment: Mapping[str, Any]) -> dict[str, Any]:
        """UpdatePayment: amount_money / tip_money of an APPROVED payment."""

        def run(tx: _Tx) -> dict[str, Any]:
            p = self._payment(tx, payment_id)
            token = payment.get("version_token")
            PAYMENT.fire(p, "update", PaymentContext(
                version_token=token, record_token=p.get("version_token"),
                fmt={"given": token, "payment_id": payment_id}))
            amount = p["amount_money"]["amount"]
            tip = (p.get("tip_money") or {}).get("amount", 0)
            if payment.get("amount_money") is not None:
                amount = self._check_money(payment["amount_money"], "payment.amount_money")
            if payment.get("tip_money") is not None:
                tip = self._check_money(payment["tip_money"], "payment.tip_money")
                p["tip_money"] = {"amount": tip, "currency": self.currency}
            if p.get("order_id") and amount != p["amount_money"]["amount"]:
                order = self._read_order(p["order_id"])
                others = sum(o["amount_money"]["amount"] for o in self._payments_of(tx, order)
                             if o["id"] != payment_id and o["status"] in ("APPROVED", "PENDING", "COMPLETED"))
                if amount + others > self._total(order):
                    raise violation("payment.order_total_mismatch", field="payment.amount_money")
            p["amount_money"] = {"amount": amount, "currency": self.currency}
            p["total_money"] = {"amount": amount + tip, "currency": self.currency}
            p["approved_money"] = {"amount": amount + tip, "currency": self.currency}
            for key in ("delay_action",):
                if payment.get(key) is not None:
                    p[key] = _delay_action(payment[key], "payment.delay_action")
            if payment.get("app_fee_money") is not None:
                fee = self._check_money(payment["app_fee_money"], "payment.app_fee_money")
                if fee * 10 > (amount + tip) * 9:
                    raise violation("payment.app_fee_too_high", field="payment.app_fee_money.amount")
                p["app_fee_money"] = {"amount": fee, "currency": self.currency}
            if payment.get("team_member_id") is not None:
                p["team_member_id"] = payment["team_member_id"]
            p["version_token"] = self._new_token()
            p["updated_at"] = self._stamp()
            self._emit(tx, "payment.updated", payment_id)
            return p

        return self.render_payment(self._run(run))

    # ================================================================ refunds
    def refund_payment(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """RefundPayment (linked refunds of a payment)."""

        def run(tx: _Tx) -> dict[str, Any]:
            if request.get("unlinked"):
                raise violation("api.invalid_value", field="unlinked",
                                reason="Unlinked refunds are not supported by this server.")
            pid = request.get("payment_id")
            if pid is None:
                raise violation("api.invalid_value", field="payment_id",
                                reason="payment_id is required when unlinked is false.")
            for key in ("location_id", "customer_id"):
                if request.get(key) is not None:  # spec: only allowed when unlinked=true
                    raise violation("api.invalid_value", field=key,
                                    reason=f"`{key}` is only allowed when `unlinked` is true.")
            p = self._payment(tx, pid, field="payment_id")
            if p["status"] == "APPROVED":
                raise violation("refund.payment_needs_completion")
            if p["status"] != "COMPLETED":
                raise violation("refund.payment_not_refundable", status=p["status"])
            token = request.get("payment_version_token")
            if token is not None and token != p.get("version_token"):
                raise violation("refund.version_mismatch", given=token, payment_id=pid)
            amount = self._check_money(request.get("amount_money"), "amount_money")
            if amount <= 0:
                raise violation("refund.amount_positive")
            app_fee = None
            if request.get("app_fee_money") is not None:
                app_fee = self._check_money(request["app_fee_money"], "app_fee_money")
                if not p.get("app_fee_money"):
                    raise violation("api.invalid_value", field="app_fee_money",
                                    reason="`app_fee_money` can be set only when the payment "
                                           "had an app fee.")
                if app_fee > amount:
                    raise violation("api.invalid_value", field="app_fee_money.amount",
                                    reason="`app_fee_money` cannot be more than `amount_money`.")
            mine = [self._peek_refund(tx, rid) for rid in p.get("refund_ids", [])]
            if any(r["status"] == "FAILED" for r in mine):
                raise violation("refund.after_failed")
            if len(mine) >= MAX_REFUNDS:
                raise violation("refund.max_count")
            if self.clock.now() - parse_rfc3339(p["created_at"]) > REFUND_YEAR:
                raise violation("refund.too_old")
            if (self.variants["refund_while_pending"] == "reject"
                    and any(r["status"] == "PENDING" for r in mine)):
                raise violation("refund.already_pending")
            held = sum(r["amount_money"]["amount"] for r in mine if r["status"] in ("PENDING", "COMPLETED"))
            if held + amount > p["total_money"]["amount"]:
                raise violation("refund.amount_exceeds")
            now_dt = self.clock.now()
            now = rfc3339(now_dt)
            rid = f"{pid}_{self.ids.suffix()}"
            return_order_id = self.ids.object_id()
            instant = p.get("source_type") in ("CASH", "EXTERNAL")
            refund: dict[str, Any] = {
                "id": rid,
                "status": "PENDING",
                "location_id": p["location_id"],
                "amount_money": {"amount": amount, "currency": self.currency},
                "payment_id": pid,
                "order_id": return_order_id,
                "created_at": now,
                "updated_at": now,
                "_version": 1,
            }
            for key in ("reason", "team_member_id"):
                if request.get(key) is not None:
                    refund[key] = request[key]
            if app_fee is not None:
                refund["app_fee_money"] = {"amount": app_fee, "currency": self.currency}
            REFUND.create(refund, "RefundPayment (cash / external)" if instant else "RefundPayment (card)")
            if refund["status"] == "COMPLETED":
                self._refund_completed(refund)
            tx.refunds[rid] = refund
            tx.orders[return_order_id] = self._return_order(return_order_id, p, refund)
            p.setdefault("refund_ids", []).append(rid)
            p["refunded_money"] = {"amount": held + amount, "currency": self.currency}
            p["version_token"] = self._new_token()
            p["updated_at"] = now
            if not instant:
                self._schedule(tx, now_dt + self.refund_settle_delay, "refund_settle", rid)
            self._emit(tx, "refund.created", rid)
            self._emit(tx, "order.updated", return_order_id)
            self._emit(tx, "payment.updated", pid)
            return refund

        return self.render_refund(self._run(run))

    def _peek_refund(self, tx: _Tx | None, refund_id: str) -> dict:
        if tx is not None and refund_id in tx.refunds:
            return tx.refunds[refund_id]
        return self.refunds[refund_id]

    def _refund_completed(self, refund: dict) -> None:
        refund["processing_fee"] = [{
            "effective_at": self._stamp(), "type": "INITIAL",
            "amount_money": {"amount": 0, "currency": self.currency},
        }]

    def _return_order(self, oid: str, payment: dict, refund: dict) -> dict:
        now = refund["created_at"]
        amount = clone(refund["amount_money"])
        rec: dict[str, Any] = {
            "id": oid,
            "location_id": payment["location_id"],
            "returns": [{
                "uid": self.ids.uid(),
                "source_order_id": payment.get("order_id"),
                "return_line_items": [{
                    "uid": self.ids.uid(), "quantity": "1", "name": "Refund",
                    "item_type": "CUSTOM_AMOUNT", "base_price_money": amount,
                    "total_money": clone(amount),
                }],
            }],
            "refunds": [{
                "id": refund["id"], "location_id": payment["location_id"], "transaction_id": oid,
                "tender_id": payment["id"], "created_at": now, "reason": refund.get("reason", ""),
                "amount_money": clone(amount), "status": _V1_REFUND_STATUS[refund["status"]],
            }],
            "state": "COMPLETED", "version": 1, "created_at": now, "updated_at": now,
            "closed_at": now, "_payment_ids": [],
        }
        return rec

    def _finish_refund(self, refund_id: str, trigger: str, *, fire_due: bool = True) -> dict[str, Any]:
        def run(tx: _Tx) -> dict[str, Any]:
            r = self._refund(tx, refund_id)
            REFUND.fire(r, trigger, _Fmt({"refund_id": refund_id, "status": r["status"]}))
            now = self._stamp()
            r["updated_at"] = now
            r["_version"] = r.get("_version", 1) + 1
            if r["status"] == "COMPLETED":
                self._refund_completed(r)
            ret = self._order(tx, r["order_id"])
            for entry in ret.get("refunds", []):
                if entry["id"] == refund_id:
                    entry["status"] = _V1_REFUND_STATUS[r["status"]]
            ret["version"] += 1
            ret["updated_at"] = now
            self._emit(tx, "refund.updated", refund_id)
            self._emit(tx, "order.updated", ret["id"])
            if r["status"] in ("REJECTED", "FAILED"):
                p = self._payment(tx, r["payment_id"])
                held = p["refunded_money"]["amount"] - r["amount_money"]["amount"]
                if held:
                    p["refunded_money"] = {"amount": held, "currency": self.currency}
                else:
                    p.pop("refunded_money", None)
                p["version_token"] = self._new_token()
                p["updated_at"] = now
                self._emit(tx, "payment.updated", p["id"])
            return r

        return self.render_refund(self._run(run, fire_due=fire_due))

    def settle_refund(self, refund_id: str) -> dict[str, Any]:
        """PENDING -> COMPLETED (what the processor does after the settle delay)."""
        return self._finish_refund(refund_id, "settle")

    def reject_refund(self, refund_id: str) -> dict[str, Any]:
        return self._finish_refund(refund_id, "reject")

    def fail_refund(self, refund_id: str) -> dict[str, Any]:
        return self._finish_refund(refund_id, "fail")

    # ================================================================ the clock
    def next_due(self) -> datetime | None:
        return self._timers[0][0] if self._timers else None

    def fire_due(self) -> int:
        """Apply every timer due at or before now, oldest first. Returns how many fired."""
        fired = 0
        now = self.clock.now()
        while self._timers and self._timers[0][0] <= now:
            _, seq, kind, ident = heapq.heappop(self._timers)
            if self.timer_table is not None:
                self.timer_table.pop(str(seq), None)
            self._fire_timer(kind, ident)
            fired += 1
        return fired

    def advance(self, seconds: float) -> int:
        """Move a ManualClock forward, firing what falls due at its own due time, in order."""
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("only a ManualClock can be advanced")
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        target = clock.now() + timedelta(seconds=seconds)
        fired = 0
        while self._timers and self._timers[0][0] <= target:
            due, seq, kind, ident = heapq.heappop(self._timers)
            if self.timer_table is not None:
                self.timer_table.pop(str(seq), None)
            if due > clock.now():
                clock.set(due)
            self._fire_timer(kind, ident)
            fired += 1
        clock.set(target)
        return fired

    def _fire_timer(self, kind: str, ident: str) -> None:
        if kind == "payment_delay":
            p = self.payments.get(ident)
            if p is None or p["status"] != "APPROVED":
                return
            if p.get("delayed_until") and parse_rfc3339(p["delayed_until"]) > self.clock.now():
                return  # the deadline moved; a newer timer exists
            self._run(lambda tx: self._expire(tx, ident), fire_due=False)
        elif kind == "refund_settle":
            r = self.refunds.get(ident)
            if r is not None and r["status"] == "PENDING":
                self._finish_refund(ident, "settle", fire_due=False)
        elif kind == "bank_settle":
            p = self.payments.get(ident)
            if p is not None and p["status"] == "PENDING":
                self._run(lambda tx: self._bank_settle(tx, ident), fire_due=False)

    def _expire(self, tx: _Tx, payment_id: str) -> None:
        p = self._payment(tx, payment_id)
        order = self._order(tx, p["order_id"], deep=False) if p.get("order_id") else None
        capture = p.get("delay_action") == "COMPLETE" and (
            order is None or (order["state"] == "OPEN"
                              and p["amount_money"]["amount"] <= self.amount_due(order, tx)))
        if capture:
            PAYMENT.fire(p, "expire_complete")
            self._capture_effects(p)
            self._emit(tx, "payment.updated", payment_id)
            if order is not None:
                self._settle_order_after_capture(tx, order)
        else:
            PAYMENT.fire(p, "expire_cancel")
            self._void_effects(p, expired=True)
            self._emit(tx, "payment.updated", payment_id)
            self._order_after_void(tx, p)

    def _bank_settle(self, tx: _Tx, payment_id: str) -> None:
        p = self._payment(tx, payment_id)
        if p.pop("_bank_fails", False):
            PAYMENT.fire(p, "fail")
            p["version_token"] = self._new_token()
            p["updated_at"] = self._stamp()
            self._emit(tx, "payment.updated", payment_id)
            self._order_after_void(tx, p)
            return
        PAYMENT.fire(p, "settle")
        self._capture_effects(p)
        p["receipt_number"] = payment_id[:4].upper()
        self._emit(tx, "payment.updated", payment_id)
        if p.get("order_id"):
            self._settle_order_after_capture(tx, self._order(tx, p["order_id"], deep=False))

    # ================================================================ queries
    def get_order(self, order_id: str) -> dict[str, Any]:
        self.fire_due()
        rec = self.orders.get(order_id) if isinstance(order_id, str) else None
        if rec is None:
            raise violation("order.not_found", id=order_id)
        return self.render_order(rec)

    def get_payment(self, payment_id: str) -> dict[str, Any]:
        self.fire_due()
        rec = self.payments.get(payment_id) if isinstance(payment_id, str) else None
        if rec is None:
            raise violation("payment.not_found", id=payment_id, field="payment_id")
        return self.render_payment(rec)

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        self.fire_due()
        rec = self.refunds.get(refund_id) if isinstance(refund_id, str) else None
        if rec is None:
            raise violation("refund.not_found", id=refund_id, field="refund_id")
        return self.render_refund(rec)

    def get_location(self, location_id: str) -> dict[str, Any]:
        return clone(self._location(location_id, "location_id"))

    def list_locations(self) -> list[dict[str, Any]]:
        return [clone(loc) for loc in self.locations.values()]

    def search_orders(
        self,
        *,
        location_ids: Iterable[str],
        states: Iterable[str] | None = None,
        customer_ids: Iterable[str] | None = None,
        sort_field: str = "created_at",
        descending: bool = True,
        start: str | None = None,
        end: str | None = None,
        limit: int = 500,
        after: tuple[str, str] | None = None,
        fulfillment_types: Iterable[str] | None = None,
        fulfillment_states: Iterable[str] | None = None,
        source_names: Iterable[str] | None = None,
    ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        """Orders of the given locations, sorted by ``sort_field``; ``start``/``end`` bound that
        same field. Returns one page and the key to continue after (None at the end)."""
        location_ids = list(location_ids)
        if not location_ids:
            raise violation("order.search_location_required")
        if sort_field == "closed_at" and states and "OPEN" in states:
            raise violation("order.search_closed_at_open")
        self.fire_due()
        state_list: list[str | None] = list(dict.fromkeys(states)) if states else [None]
        ftypes = set(fulfillment_types) if fulfillment_types else None
        fstates = set(fulfillment_states) if fulfillment_states else None
        sources = set(source_names) if source_names else None
        walks = [self.order_index.walk(loc, st, sort_field, start, end, descending, after)
                 for loc in dict.fromkeys(location_ids) for st in state_list]
        merged = walks[0] if len(walks) == 1 else heapq.merge(*walks, reverse=descending)
        customers = set(customer_ids) if customer_ids else None
        page: list[dict[str, Any]] = []
        last: tuple[str, str] | None = None
        for key in merged:
            rec = self.orders[key[1]]
            if customers is not None and rec.get("customer_id") not in customers:
                continue
            if ftypes is not None and not any(
                    f.get("type") in ftypes for f in rec.get("fulfillments") or ()):
                continue
            if fstates is not None and not any(
                    f.get("state") in fstates for f in rec.get("fulfillments") or ()):
                continue
            if sources is not None and (rec.get("source") or {}).get("name") not in sources:
                continue
            if len(page) == limit:
                return page, last
            page.append(rec)
            last = key
        return page, None

    def _list_page(self, index: Any, records: Mapping[str, dict], *, start: str | None,
                   end: str | None, location_id: str | None, descending: bool, limit: int,
                   after: tuple[str, str] | None,
                   keep: Callable[[dict], bool] | None,
                   sort_field: str = "created_at", updated_start: str | None = None,
                   updated_end: str | None = None) -> tuple[list[dict], tuple[str, str] | None]:
        self.fire_due()
        if updated_start is not None or updated_end is not None:
            inner = keep

            def keep(rec: dict) -> bool:  # noqa: F811 - the updated_at window, then the rest
                at = parse_rfc3339(rec["updated_at"])
                if updated_start is not None and at < parse_rfc3339(updated_start):
                    return False
                if updated_end is not None and at >= parse_rfc3339(updated_end):  # as end_time
                    return False
                return inner is None or inner(rec)
        if sort_field != "created_at":
            return self._scan_page(records, start=start, end=end, location_id=location_id,
                                   descending=descending, limit=limit, after=after, keep=keep,
                                   sort_field=sort_field)
        page: list[dict] = []
        last = None
        for key in index.walk(start=start, end=end, location_id=location_id,
                              descending=descending, after=after):
            rec = records[key[1]]
            if keep is not None and not keep(rec):
                continue
            if len(page) == limit:
                return page, last
            page.append(rec)
            last = key
        return page, None

    def _scan_page(self, records: Mapping[str, dict], *, start: str | None, end: str | None,
                   location_id: str | None, descending: bool, limit: int,
                   after: tuple[str, str] | None, keep: Callable[[dict], bool] | None,
                   sort_field: str) -> tuple[list[dict], tuple[str, str] | None]:
        """A page sorted by a field the time index does not keep (``updated_at``): a scan. The
        ``start``/``end`` window still bounds ``created_at``."""
        lo = parse_rfc3339(start) if start is not None else None
        hi = parse_rfc3339(end) if end is not None else None
        keyed = []
        for rec in records.values():
            if location_id is not None and rec.get("location_id") != location_id:
                continue
            created = parse_rfc3339(rec["created_at"])
            if (lo is not None and created < lo) or (hi is not None and created > hi):
                continue
            keyed.append(((rfc3339(parse_rfc3339(rec[sort_field])), rec["id"]), rec))
        keyed.sort(key=lambda kr: kr[0], reverse=descending)
        page: list[dict] = []
        last = None
        for key, rec in keyed:
            if after is not None and (key <= after if not descending else key >= after):
                continue
            if keep is not None and not keep(rec):
                continue
            if len(page) == limit:
                return page, last
            page.append(rec)
            last = key
        return page, None

    def list_payments(self, *, start: str | None = None, end: str | None = None,
                      location_id: str | None = None, descending: bool = True, limit: int = 100,
                      after: tuple[str, str] | None = None,
                      keep: Callable[[dict], bool] | None = None,
                      sort_field: str = "created_at", updated_start: str | None = None,
                      updated_end: str | None = None,
                      ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        page, nxt = self._list_page(self.payment_index, self.payments, start=start, end=end,
                                    location_id=location_id, descending=descending, limit=limit,
                                    after=after, keep=keep, sort_field=sort_field,
                                    updated_start=updated_start, updated_end=updated_end)
        return [self.render_payment(p) for p in page], nxt

    def list_refunds(self, *, start: str | None = None, end: str | None = None,
                     location_id: str | None = None, descending: bool = True, limit: int = 100,
                     after: tuple[str, str] | None = None,
                     keep: Callable[[dict], bool] | None = None,
                     sort_field: str = "created_at", updated_start: str | None = None,
                     updated_end: str | None = None,
                     ) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
        page, nxt = self._list_page(self.refund_index, self.refunds, start=start, end=end,
                                    location_id=location_id, descending=descending, limit=limit,
                                    after=after, keep=keep, sort_field=sort_field,
                                    updated_start=updated_start, updated_end=updated_end)
        return [self.render_refund(r) for r in page], nxt

    # ================================================================ snapshot
    def snapshot(self) -> dict[str, Any]:
        """Everything the aggregate holds, as JSON-ready data."""
        return {
            "merchant_id": self.merchant_id,
            "main_location_id": self.main_location_id,
            "currency": self.currency,
            "now": rfc3339(self.clock.now()),
            "id_counter": self.ids.counter,
            "seed": self.ids.seed,
            "variants": dict(self.variants),
            "locations": clone(self.locations),
            "orders": clone(self.orders),
            "payments": clone(self.payments),
            "refunds": clone(self.refunds),
            "payment_keys": dict(self.payment_keys),
            "timers": [[rfc3339(d), s, k, i] for d, s, k, i in sorted(self._timers)],
            "timer_seq": self._timer_seq,
            "refund_settle_delay": self.refund_settle_delay.total_seconds(),
            "catalog": self.catalog.snapshot(),
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any], *, clock: ManualClock | None = None,
                record_events: bool = False) -> "Engine":
        clock = clock or ManualClock(parse_rfc3339(data["now"]))
        if clock.now() < parse_rfc3339(data["now"]):
            clock.set(parse_rfc3339(data["now"]))
        eng = cls(clock=clock, seed=data.get("seed", 0), variants=data.get("variants"),
                  currency=data.get("currency", "USD"),
                  refund_settle_delay=timedelta(seconds=data.get("refund_settle_delay", 10)),
                  record_events=record_events)
        eng.merchant_id = data["merchant_id"]
        eng.main_location_id = data["main_location_id"]
        eng.locations = clone(data["locations"])
        eng.ids.counter = data["id_counter"]
        for rec in data["orders"].values():
            eng.orders[rec["id"]] = clone(rec)
            eng.order_index.add(eng.orders[rec["id"]])
        for rec in data["payments"].values():
            eng.payments[rec["id"]] = clone(rec)
            eng.payment_index.add(rec["id"], rec["created_at"], rec["location_id"])
        for rec in data["refunds"].values():
            eng.refunds[rec["id"]] = clone(rec)
            eng.refund_index.add(rec["id"], rec["created_at"], rec["location_id"])
        eng.payment_keys = dict(data.get("payment_keys", {}))
        eng._timers = [(parse_rfc3339(d), s, k, i) for d, s, k, i in data.get("timers", [])]
        heapq.heapify(eng._timers)
        eng._timer_seq = data.get("timer_seq", len(eng._timers))
        eng.catalog.restore(data.get("catalog"))
        return eng


_V1_REFUND_STATUS = {"PENDING": "PENDING", "COMPLETED": "APPROVED", "REJECTED": "REJECTED",
                     "FAILED": "FAILED"}


@dataclass(slots=True)
class _Fmt:
    fmt: dict[str, Any] = field(default_factory=dict)


def _delay_action(value: Any, field: str = "delay_action") -> str:
    """delay_action is a plain string in the spec, but only CANCEL and COMPLETE mean anything."""
    if value not in ("CANCEL", "COMPLETE"):
        raise violation("api.invalid_value", field=field,
                        reason=f"`{value}` is not a valid delay_action; use CANCEL or COMPLETE.")
    return value


def _check_ad_hoc_lines(lines: Any, known_uids: Iterable[Any] = ()) -> None:
    """A new line item that names no catalog object needs a name and a base price
    (order.line_item_needs_name_and_price). Entries patching a known uid are merges."""
    if not isinstance(lines, list):
        return
    known = set(known_uids)
    for i, line in enumerate(lines):
        if not isinstance(line, dict) or line.get("catalog_object_id") is not None:
            continue
        if line.get("uid") is not None and line.get("uid") in known:
            continue
        for name in ("name", "base_price_money"):
            if line.get(name) is None:
                raise violation("order.line_item_needs_name_and_price", index=i, name=name)


def _merge_dict(target: dict, patch: Mapping[str, Any]) -> None:
    """Sparse merge: nested objects merge, explicit nulls clear, lists and scalars replace."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_dict(target[key], value)
        else:
            target[key] = clone(value)


def _clear_path(rec: dict, path: str) -> None:
    """Apply one ``fields_to_clear`` entry such as ``line_items[uid].note`` or ``metadata.k``."""
    node: Any = rec
    parts = _split_path(path)
    for i, (name, uid) in enumerate(parts):
        last = i == len(parts) - 1
        if not isinstance(node, dict) or name not in node:
            return
        if uid is None:
            if last:
                node.pop(name, None)
                return
            node = node[name]
            continue
        items = node[name]
        if not isinstance(items, list):
            return
        match = next((e for e in items if isinstance(e, dict) and e.get("uid") == uid), None)
        if match is None:
            return
        if last:
            items.remove(match)
            return
        node = match


def _split_path(path: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for part in path.split("."):
        if "[" in part and part.endswith("]"):
            name, _, uid = part[:-1].partition("[")
            out.append((name, uid))
        else:
            out.append((part, None))
    return out

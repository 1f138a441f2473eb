"""The engine's core: one merchant's records, the shared transaction every command runs in,
and the checks several commands share. The commands themselves live one resource per module
(orders, payments, capture, refunds, timers, rendering, queries); ``Engine`` combines them.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ..catalog import Catalog
from ..clock import Clock, ManualClock, parse_rfc3339, rfc3339
from ..ids import IdGenerator
from ..index import OrderIndex, TimeIndex
from ..lifecycles._table import RECORDING
from ..lifecycles.refund import DEFAULT_SETTLE_DELAY
from ..numbers import INT64_MAX
from ..pricing import attach_applied, check_request, price_order
from ..rules import Variants, violation

if TYPE_CHECKING:
    from . import Engine


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

PRICED_LISTS = ("line_items", "taxes", "discounts", "service_charges")

_CONTAINERS = (dict, list)


@dataclass(slots=True)
class DomainEvent:
    """Something that happened, for webhooks: ``data`` is Square's ``data.object``."""

    type: str
    object_type: str
    object_id: str
    location_id: str | None
    at: datetime
    data: dict[str, Any]


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


class EngineCore:
    """Records, the shared transaction and shared checks (see ``Engine``)."""

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
                    price_order(rec, self.currency, rounding=self.variants["adjustment_rounding"])
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

    def _emit(self, tx: _Tx, etype: str, ident: str, **extra: Any) -> None:
        if not self.record_events:
            return
        if etype == "order.updated" and any(e[0] == etype and e[1] == ident for e in tx.events):
            return
        tx.events.append((etype, ident, extra))

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
        return price_order(order, self.currency, rounding=self.variants["adjustment_rounding"])[
            "total_money"]["amount"]

    def _price_stored(self, rec: dict) -> None:
        """Give a stored order Square's generated references, then price it once so a request
        whose amounts cannot be computed (or would leave int64) is rejected before commit."""
        attach_applied(rec, self.ids.uid)
        price_order(rec, self.currency, rounding=self.variants["adjustment_rounding"])

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
            "orders": {k: clone(v) for k, v in self.orders.items()},
            "payments": {k: clone(v) for k, v in self.payments.items()},
            "refunds": {k: clone(v) for k, v in self.refunds.items()},
            "payment_keys": dict(self.payment_keys),
            "timers": [[rfc3339(d), s, k, i] for d, s, k, i in sorted(self._timers)],
            "timer_seq": self._timer_seq,
            "refund_settle_delay": self.refund_settle_delay.total_seconds(),
            "catalog": self.catalog.snapshot(),
        }

    @classmethod
    def from_header(cls, header: Mapping[str, Any], now: datetime, *,
                    clock: ManualClock | None = None, record_events: bool = False) -> "Engine":
        """An engine with no records yet, with the settings and identity a snapshot's or a
        store's engine header gives; its clock reads ``now``, or later if ``clock`` does."""
        if clock is None:
            clock = ManualClock(now)
        elif clock.now() < now:
            clock.set(now)
        eng = cls(clock=clock, seed=header.get("seed", 0), variants=header.get("variants"),
                  currency=header.get("currency", "USD"),
                  refund_settle_delay=timedelta(seconds=header.get("refund_settle_delay", 10)),
                  record_events=record_events)
        eng.merchant_id = header["merchant_id"]
        eng.main_location_id = header["main_location_id"]
        return eng

    @classmethod
    def restore(cls, data: Mapping[str, Any], *, clock: ManualClock | None = None,
                record_events: bool = False) -> "Engine":
        eng = cls.from_header(data, parse_rfc3339(data["now"]), clock=clock,
                              record_events=record_events)
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

"""The clock: timers that fire when virtual time passes (delayed-capture deadlines, refund and
bank settlement).
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from ..clock import ManualClock, parse_rfc3339
from ..lifecycles import PAYMENT

from ._core import _Tx


class Timers:
    """Timers on the virtual clock (a part of :class:`~orderfsm.engine.Engine`)."""

    def _schedule(self, tx: _Tx, due: datetime, kind: str, ident: str) -> None:
        tx.timers.append((due, kind, ident))

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

"""What happens when a payment is captured, and when one is voided.

A capture (CompletePayment, PayOrder, autocomplete, a delayed capture with delay_action
COMPLETE, a bank transfer settling) marks the card CAPTURED, adds the receipt and the
processing fee, and may complete the order it pays for. A void does the opposite for the card
and may cancel the implicit order Square made for the payment.
"""

from __future__ import annotations

from ..lifecycles import ORDER
from ..lifecycles.order import OrderContext

from ._core import _Tx


class CaptureEffects:
    """The effects of a capture and of a void (a part of :class:`~orderfsm.engine.Engine`)."""

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

    def _settle_order_after_capture(self, tx: _Tx, order: dict) -> None:
        if order["state"] not in ("OPEN", "DRAFT"):
            return  # a closed order is not bumped by a late capture
        self._touch_order(tx, order)
        if order["state"] == "OPEN" and not order.get("fulfillments") and self._is_paid(tx, order):
            if order.get("_implicit") or self.variants["autocomplete_order_on_payment"] == "complete":
                ORDER.fire(order, "settle")
                self._close_order(order)
        self._emit(tx, "order.updated", order["id"])

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

"""Refunds: RefundPayment (linked refunds with their return orders) and how a PENDING refund
ends: settled, rejected or failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

from ..clock import parse_rfc3339, rfc3339
from ..lifecycles import REFUND
from ..rules import violation

from ._core import _Tx, clone


REFUND_YEAR = timedelta(days=365)

MAX_REFUNDS = 20

_V1_REFUND_STATUS = {"PENDING": "PENDING", "COMPLETED": "APPROVED", "REJECTED": "REJECTED",
                     "FAILED": "FAILED"}


class RefundCommands:
    """RefundPayment and how a refund ends (a part of :class:`~orderfsm.engine.Engine`)."""

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


@dataclass(slots=True)
class _Fmt:
    fmt: dict[str, Any] = field(default_factory=dict)

"""Rendering: the fields Square computes (totals, tenders, net amounts) are derived here, when a
record is read; webhook event payloads too.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from ..pricing import apply_pricing

from ._core import DomainEvent, _CONTAINERS, _Tx, clone


JSON_CACHE_MAX = 10_000  # rendered orders kept per merchant

_json_bytes = (lambda enc: lambda value: enc(value).encode())(
    json.JSONEncoder(separators=(",", ":")).encode)


class Rendering:
    """Records as Square's JSON (a part of :class:`~orderfsm.engine.Engine`)."""

    def render_order(self, rec: Mapping[str, Any], tx: _Tx | None = None) -> dict[str, Any]:
        out = _public(rec)
        currency = self.currency
        apply_pricing(out, currency, rounding=self.variants["adjustment_rounding"])
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


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (clone(v) if type(v) in _CONTAINERS else v)
            for k, v in record.items() if k[0] != "_"}

"""Reads: Retrieve*, ListLocations, SearchOrders, ListPayments and ListPaymentRefunds, over the
indexes.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, Iterable, Mapping

from ..clock import parse_rfc3339, rfc3339
from ..rules import violation

from ._core import clone


class Queries:
    """Reads over the indexes (a part of :class:`~orderfsm.engine.Engine`)."""

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

"""Orders: CreateOrder, UpdateOrder (sparse merge, fulfillment moves, state changes), CloneOrder,
CalculateOrder and PayOrder.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..lifecycles import FULFILLMENT, ORDER, PAYMENT
from ..lifecycles.fulfillment import TIMESTAMPS, TRIGGER_FOR, TYPES, FulfillmentContext
from ..lifecycles.order import TERMINAL_FULFILLMENT, OrderContext
from ..lifecycles.payment import PaymentContext
from ..pricing import attach_applied, derived_uid
from ..rules import violation

from ._core import PRICED_LISTS, _Tx, clone


ORDER_LISTS = ("line_items", "taxes", "discounts", "service_charges", "fulfillments")

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


class OrderCommands:
    """The Orders API's commands (a part of :class:`~orderfsm.engine.Engine`)."""

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

"""Payments: CreatePayment (card, cash, external and bank sources, declines, delayed capture),
CompletePayment, CancelPayment (also by idempotency key) and UpdatePayment.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..clock import format_duration, parse_duration, rfc3339
from ..errors import SquareError
from ..lifecycles import ORDER, PAYMENT
from ..lifecycles.order import OrderContext
from ..lifecycles.payment import (
    BANK_SETTLE_DELAY,
    DEFAULT_DELAY_CARD_NOT_PRESENT,
    MIN_DELAY,
    PaymentContext,
)
from ..rules import violation

from ._core import SANDBOX_TOKENS, _Tx, clone


BANK_FAIL_NONCES = {t for t, rule in SANDBOX_TOKENS.items() if t.startswith("bnon:") and rule}


class PaymentCommands:
    """The Payments API's commands (a part of :class:`~orderfsm.engine.Engine`)."""

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


def _delay_action(value: Any, field: str = "delay_action") -> str:
    """delay_action is a plain string in the spec, but only CANCEL and COMPLETE mean anything."""
    if value not in ("CANCEL", "COMPLETE"):
        raise violation("api.invalid_value", field=field,
                        reason=f"`{value}` is not a valid delay_action; use CANCEL or COMPLETE.")
    return value

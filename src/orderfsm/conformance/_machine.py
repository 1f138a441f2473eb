"""The hypothesis state machine: random SDK call sequences, oracle and server side by side.

Every rule builds its calls (:class:`Call`) from the oracle's current state (the amount still
due, the order's version, which payments are APPROVED), runs them on both sides through the
:class:`Session`, and lets the session compare. Most rules make one call; a few follow a common
integration flow (pay an order in full, refund and cancel, two partial refunds) so that
sequences reach paid and refunded states often. Parameters are chosen so that most calls are
plausible and some are deliberately wrong (stale versions, wrong amounts, declined cards),
because the rules are about what gets rejected as much as about what succeeds.

Steps aimed at rule families complete the everyday ones: replays under one idempotency key,
PayOrder with authorized payments adding up to more or less than what is due, clock jumps to
the next due time, requests with one flaw, webhook subscriptions, and the processor's refund
decisions. Coverage steers generation: each sequence opens with the scenario (:data:`AIMS`) of
a rule checked least so far in the run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from ..lifecycles.order import TERMINAL_FULFILLMENT
from ._calls import LOCATION, Call, NamedKey, Produce, Ref, Token
from ._session import Session

__all__ = ["ConformanceMachine", "MachineContext", "AIMS", "aim_targets", "aim_scenarios",
           "CLOCK_RULES"]

PICKUP_DETAILS = {"recipient": {"display_name": "Conformance"}, "pickup_at": "2026-02-01T12:00:00Z"}
CARD_OK = "cnon:card-nonce-ok"
CARD_DECLINED = "cnon:card-nonce-declined"

INDEX = st.integers(min_value=0, max_value=5)
# Which object a rule acts on: an index (0 = newest) among the live ones (orders still OPEN or
# DRAFT, payments not yet void), or, one time in ten, among the finished ones.
TARGET = st.tuples(INDEX, st.sampled_from([False] * 9 + [True]))
VERSION = st.sampled_from(["current", "current", "current", "stale", "missing"])
TOKEN = st.sampled_from([None, None, "current", "initial"])
LINES = st.lists(st.tuples(st.integers(1, 3), st.sampled_from([1000, 250, 1999, 0])),
                 min_size=1, max_size=2)
ORDER_STATE = st.sampled_from(["OPEN", "OPEN", "OPEN", "OPEN", "OPEN", "DRAFT"])
# What each pricing input checks (the order's totals and amount due are compared).
PRICING = {
    "tax": ["pricing.bankers_rounding", "pricing.order_scope_apportioned"],
    "inclusive_tax": ["pricing.taxes_after_discounts"],
    "order_discounts": ["pricing.discount_step_order", "pricing.order_scope_apportioned"],
    "fixed_discount": ["pricing.line_item_fixed_shared", "pricing.discount_sequence"],
    "service_charge": ["pricing.service_charge_phases"],
    "charge_phase": ["pricing.service_charge_phase"],
    "percentage": ["pricing.percentage_range"],
    "quantity": ["pricing.quantity_precision"],
    "overflow": ["pricing.amount_overflow"],
    "duplicate_uid": ["pricing.unique_uids"],
}
ORDER_FLAW = st.sampled_from([None, None, None, None, None, None, "two_fulfillments",
                              "negative_price", "no_location", "bare_line", *PRICING])
CATALOG_REQUESTS = ["item", "item", "no_variations", "unknown_reference", "new_id", "no_data",
                    "unsupported_type", "child_type", "duplicate_ids", "partial_batch", "missing",
                    "search_combination", "search_attribute", "stale", "type_mismatch", "delete",
                    "replace_children", "unknown_in_order", "elsewhere", "variable_price",
                    "auto_tax"]
SUBSCRIPTION_FLAWS = [None, None, "no_url", "no_types", "unknown_type", "bad_url", "missing"]
MISUSES = ["order", "update_order", "payment", "complete_payment", "refund", "location", "cursor",
           "limit", "batch", "auth", "search_everywhere", "search_closed_at"]
TIMER_RULES = {"payment_delay": "payment.delayed_action", "refund_settle": "refund.settlement",
               "bank_settle": "payment.bank_settles"}
PAYMENT_FLAWS = ["nonce_not_found", "card_on_file_not_found", "gift_card_funds",
                 "gift_card_permission", "verification", "bank_uncaptured", "amount_zero",
                 "app_fee", "declined_unknown_order",
                 "cvv", "postal_code", "expiration", "token_used", "invalid_source",
                 "cash_without_details", "no_amount", "negative", "currency", "delay_too_short",
                 "delay_with_autocomplete", "bank", "bank", "bank_failure"]
FULFILLMENT_STATES = st.sampled_from(["CANCELED", "RESERVED", "PREPARED", "COMPLETED", "FAILED",
                                      "PROPOSED"])


AIM_CHOICE = st.integers(min_value=0, max_value=3)

# Coverage aims: for each rule the machine can check, a short scenario that reaches it from a
# fresh order (method name and arguments). A sequence opens with the scenario of one of the
# rules checked least so far in the run, and the aim() step picks another one later.
AIMS: dict[str, tuple[Any, ...]] = {
    "order.cancel_after_payment": ("aim_paid", "state"),
    "order.cancel_open_fulfillments": ("aim_order", True, "OPEN", "state", "CANCELED", None),
    "order.terminal_frozen": ("aim_order", False, "OPEN", "state", "CANCELED", None, "edit"),
    "order.version_mismatch": ("aim_order", False, "OPEN", "edit", "add", "stale"),
    "order.version_required": ("aim_order", False, "OPEN", "edit", "add", "missing"),
    "order.version_increments": ("aim_order", False, "OPEN", "edit", "add", "current"),
    "order.line_items_locked": ("aim_paid", "edit"),
    "order.draft_not_payable": ("aim_order", False, "DRAFT", "pay", "due"),
    "order.draft_not_fulfillable": ("aim_order", True, "DRAFT", "move", "RESERVED"),
    "order.draft_opens": ("aim_order", False, "DRAFT", "state", "OPEN", None),
    "order.closed_not_payable": ("aim_order", False, "OPEN", "state", "CANCELED", None),
    "order.complete_requires_terminal_fulfillments": ("aim_paid", "finish"),
    "order.complete_requires_payment": ("aim_order", False, "OPEN", "state", "COMPLETED", None),
    "order.one_fulfillment": ("aim_flawed_order", "two_fulfillments"),
    "pricing.bankers_rounding": ("aim_flawed_order", "tax"),
    "pricing.taxes_after_discounts": ("aim_flawed_order", "inclusive_tax"),
    "pricing.discount_step_order": ("aim_flawed_order", "order_discounts"),
    "pricing.line_item_fixed_shared": ("aim_flawed_order", "fixed_discount"),
    "pricing.discount_sequence": ("aim_flawed_order", "fixed_discount"),
    "pricing.order_scope_apportioned": ("aim_flawed_order", "order_discounts"),
    "pricing.service_charge_phases": ("aim_flawed_order", "service_charge"),
    "pricing.service_charge_phase": ("aim_flawed_order", "charge_phase"),
    "pricing.percentage_range": ("aim_flawed_order", "percentage"),
    "pricing.quantity_precision": ("aim_flawed_order", "quantity"),
    "pricing.amount_overflow": ("aim_flawed_order", "overflow"),
    "pricing.unique_uids": ("aim_flawed_order", "duplicate_uid"),
    "order.location_required": ("aim_flawed_order", "no_location"),
    "order.sparse_update": ("aim_order", False, "OPEN", "edit", "quantity", "current"),
    "order.not_found": ("aim_misuse", "update_order"),
    "order.clone_is_draft": ("aim_order", False, "OPEN", "clone", "current"),
    "pay_order.amount_mismatch": ("aim_authorized", "pay", "clear"),
    "pay_order.amount_mismatch#less": ("aim_order", False, "OPEN", "authorize_pay", "half"),
    "pay_order.payment_not_approved": ("aim_paid", "pay_order"),
    "pay_order.payment_wrong_order": ("aim_authorized", "other_order"),
    "pay_order.version_mismatch": ("aim_authorized", "pay_stale"),
    "pay_order.settles": ("aim_order", False, "OPEN", "authorize_pay", "none"),
    "pay_order.settles#fulfillment": ("aim_authorized", "pay", "none"),
    "payment.autocomplete_order": ("aim_paid", "autocomplete"),
    "payment.order_total_mismatch": ("aim_order", False, "OPEN", "pay", "more"),
    "payment.already_captured": ("aim_paid", "complete"),
    "payment.already_canceled": ("aim_authorized", "cancel", False),
    "payment.expired": ("aim_authorized", "expired"),
    "payment.already_failed": ("aim_payment", None, CARD_DECLINED, "complete"),
    "payment.pending_locked": ("aim_payment", "bank", CARD_OK, "complete"),
    "payment.version_mismatch": ("aim_authorized", "complete"),
    "payment.delayed_action": ("aim_authorized", "expire"),
    "payment.delayed_action#complete": ("aim_authorized", "expire_complete"),
    "payment.delay_duration_bounds": ("aim_payment", "delay_too_short"),
    "payment.delay_needs_delayed_capture": ("aim_payment", "delay_with_autocomplete"),
    "payment.card_declined": ("aim_payment", None, CARD_DECLINED),
    "payment.cvv_failure": ("aim_payment", "cvv"),
    "payment.address_verification_failure": ("aim_payment", "postal_code"),
    "payment.invalid_expiration": ("aim_payment", "expiration"),
    "payment.card_token_used": ("aim_payment", "token_used"),
    "payment.invalid_source": ("aim_payment", "invalid_source"),
    "payment.cash_details_required": ("aim_payment", "cash_without_details"),
    "payment.amount_required": ("aim_payment", "no_amount"),
    "payment.not_found": ("aim_misuse", "complete_payment"),
    "payment.cancel_by_idempotency_key": ("aim_authorized", "cancel", True),
    "payment.bank_settles": ("aim_payment", "bank", CARD_OK, "settle"),
    "refund.return_order": ("aim_paid", "refund", "part"),
    "refund.original_order_unchanged": ("aim_paid", "refund", "full"),
    "refund.payment_needs_completion": ("aim_authorized", "refund"),
    "refund.payment_not_refundable": ("aim_authorized", "refund", "cancel"),
    "refund.amount_exceeds": ("aim_paid", "refund", "over"),
    "refund.amount_positive": ("aim_paid", "refund", "zero"),
    "refund.max_count": ("aim_paid", "many"),
    "refund.too_old": ("aim_paid", "old"),
    "refund.version_mismatch": ("aim_paid", "refund", "part", "stale"),
    "refund.already_pending": ("aim_paid", "refund", "part", "part"),
    "refund.settlement": ("aim_paid", "settle", 1),
    "refund.not_found": ("aim_misuse", "refund"),
    "fulfillment.forward_only": ("aim_order", True, "OPEN", "move", "PREPARED", "RESERVED"),
    "fulfillment.terminal_absorbs": ("aim_order", True, "OPEN", "move", "CANCELED", "PREPARED"),
    "fulfillment.cancel_any_time": ("aim_order", True, "OPEN", "move", "CANCELED"),
    "fulfillment.complete_requires_payment": ("aim_order", True, "OPEN", "move", "COMPLETED"),
    "fulfillment.details_required": ("aim_order", False, "OPEN", "fulfillment", "no_details"),
    "fulfillment.type_required": ("aim_order", False, "OPEN", "fulfillment", "no_type"),
    "money.currency_mismatch": ("aim_payment", "currency"),
    "money.non_negative": ("aim_flawed_order", "negative_price"),
    "api.unauthorized": ("aim_misuse", "auth"),
    "api.idempotency_key_reused": ("aim_order", False, "OPEN", "replay", False),
    "api.idempotency_key_reused#payment": ("aim_paid", "replay", True),
    "api.idempotency_key_reused#order": ("aim_order", False, "OPEN", "replay", True),
    "api.invalid_cursor": ("aim_misuse", "cursor"),
    "api.too_many_ids": ("aim_misuse", "batch"),
    "api.invalid_value": ("aim_misuse", "limit"),
    "location.not_found": ("aim_misuse", "location"),
    "refund.after_failed": ("aim_refund_outcome", "fail", "refund"),
    "refund.not_pending": ("aim_refund_outcome", "settle", "settle"),
    "payment.card_nonce_not_found": ("aim_payment", "nonce_not_found"),
    "payment.card_on_file_not_found": ("aim_payment", "card_on_file_not_found"),
    "payment.gift_card_insufficient_funds": ("aim_payment", "gift_card_funds"),
    "payment.gift_card_insufficient_permission": ("aim_payment", "gift_card_permission"),
    "payment.verification_required": ("aim_payment", "verification"),
    "payment.ach_autocomplete_required": ("aim_payment", "bank_uncaptured"),
    "payment.amount_zero": ("aim_payment", "amount_zero"),
    "payment.app_fee_too_high": ("aim_payment", "app_fee"),
    "payment.request_checked_before_card": ("aim_payment", "declined_unknown_order"),
    "refund.cash_settles_at_once": ("aim_payment", None, "CASH", "refund"),
    "pay_order.cash_payment": ("aim_cash_pay_order",),
    "order.line_item_needs_name_and_price": ("aim_flawed_order", "bare_line"),
    "order.pricing_locked": ("aim_paid", "discount"),
    "order.fulfillment_locked_when_paid": ("aim_paid", "clear_fulfillment"),
    "order.search_location_required": ("aim_misuse", "search_everywhere"),
    "order.search_closed_at_open": ("aim_misuse", "search_closed_at"),
    "catalog.object_not_found": ("aim_catalog", "missing"),
    "catalog.item_needs_variation": ("aim_catalog", "no_variations"),
    "catalog.reference_unknown": ("aim_catalog", "unknown_reference"),
    "catalog.version_mismatch": ("aim_catalog", "stale"),
    "catalog.new_object_id": ("aim_catalog", "new_id"),
    "catalog.type_mismatch": ("aim_catalog", "type_mismatch"),
    "catalog.duplicate_id": ("aim_catalog", "duplicate_ids"),
    "catalog.data_required": ("aim_catalog", "no_data"),
    "catalog.type_unsupported": ("aim_catalog", "unsupported_type"),
    "catalog.child_type": ("aim_catalog", "child_type"),
    "catalog.delete_cascades": ("aim_catalog", "delete"),
    "catalog.children_replaced": ("aim_catalog", "replace_children"),
    "catalog.batch_upsert_partial": ("aim_catalog", "partial_batch"),
    "catalog.query_combination": ("aim_catalog", "search_combination"),
    "catalog.attribute_not_searchable": ("aim_catalog", "search_attribute"),
    "order.catalog_object_not_found": ("aim_catalog", "unknown_in_order"),
    "order.catalog_not_at_location": ("aim_catalog", "elsewhere"),
    "order.catalog_variable_price": ("aim_catalog", "variable_price"),
    "order.auto_apply_taxes": ("aim_catalog", "auto_tax"),
    "webhook.event_type_unknown": ("aim_subscription", "unknown_type"),
    "webhook.subscription_field_required": ("aim_subscription", "no_url"),
    "webhook.notification_url_invalid": ("aim_subscription", "bad_url"),
    "webhook.subscription_not_found": ("aim_subscription", "missing"),
    "webhook.test_event_type": ("aim_subscription", None),
}
# Rules the machine reaches only through the server's control API (its clock, its processor).
CLOCK_RULES = frozenset({"payment.expired", "payment.delayed_action", "payment.bank_settles",
                         "refund.settlement", "refund.too_old", "refund.after_failed",
                         "refund.not_pending"})


def aim_scenarios(has_clock: bool) -> list[str]:
    """The aims a run uses on a server (those for clock rules need its control API)."""
    return [key for key in AIMS if has_clock or key.split("#")[0] not in CLOCK_RULES]


def aim_targets(has_clock: bool) -> list[str]:
    """The rules a run checks on a server, in catalog order."""
    return list(dict.fromkeys(key.split("#")[0] for key in aim_scenarios(has_clock)))


class MachineContext(Protocol):
    """What the machine needs from the runner."""

    currency: str
    has_clock: bool

    def new_session(self) -> Session: ...

    def aim_counts(self) -> dict[str, int]: ...

    def note_aim(self, rule_id: str) -> None: ...

    def finished(self, session: Session, start_counts: dict[str, int]) -> None: ...


def _pick(items: list[str], i: int) -> str:
    """0 is the newest, so sequences dwell on one object and shrink towards it."""
    return items[-1 - i % len(items)]


def _choose(items: list[str], live: list[str], target: tuple[int, bool]) -> str | None:
    """The target among the live items, or among the finished ones when asked (and there are
    any); None when there is nothing to act on, and the rule then does nothing. (Liveness is
    not a precondition: a precondition that flips back and forth changes which rule a choice
    means, and the coverage aims make the state depend on the run so far, which hypothesis must
    not see in its draws when hypothesis deletes steps, and minimal sequences come out longer.)"""
    i, finished = target
    done = [x for x in items if x not in live]
    pool = done if finished and done else live
    return _pick(pool, i) if pool else None


class ConformanceMachine(RuleBasedStateMachine):
    """Oracle (orderfsm Engine) versus server (any base URL, through the SDK)."""

    def __init__(self, ctx: MachineContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.session = ctx.new_session()
        self.orders: list[str] = []
        self.payments: list[str] = []
        self.refunds: list[str] = []
        self.catalog_items: list[str] = []
        self.payment_keys: dict[str, str] = {}
        self._uids = 0
        self._own_uids: set[str] = set()
        self._keys = 0
        # Calls made under a named idempotency key that a server remembers, with the label of
        # the object each one made or changed: what replay() sends again.
        self.keyed: list[tuple[Call, str]] = []
        # Per-rule checks so far in the run (frozen once a divergence was found, so that the
        # aims of a failing sequence are the same when it is run again).
        self.start_counts = ctx.aim_counts()
        self.counts = dict(self.start_counts)
        self.aimed: dict[str, int] = {}

    # --------------------------------------------------------------- oracle reads
    @property
    def engine(self) -> Any:
        return self.session.oracle.engine

    def _order(self, label: str) -> dict[str, Any]:
        return self.engine.orders[self.session.oracle.ids[label]]

    def _payment(self, label: str) -> dict[str, Any]:
        return self.engine.payments[self.session.oracle.ids[label]]

    def _money(self, amount: int) -> dict[str, Any]:
        return {"amount": amount, "currency": self.ctx.currency}

    def _uid(self, prefix: str) -> str:
        self._uids += 1
        return f"{prefix}{self._uids}"

    def _processed(self, order: dict[str, Any]) -> bool:
        return any(self.engine.payments[pid]["status"] == "COMPLETED"
                   for pid in order.get("_payment_ids", ()))

    def _with_fulfillments(self) -> list[str]:
        return [lb for lb in self.orders if self._order(lb).get("fulfillments")]

    def _target_order(self, target: tuple[int, bool],
                      among: list[str] | None = None) -> str | None:
        items = self.orders if among is None else among
        live = [lb for lb in items if self._order(lb)["state"] in ("OPEN", "DRAFT")]
        return _choose(items, live, target)

    def _target_payment(self, target: tuple[int, bool]) -> str | None:
        live = [lb for lb in self.payments
                if self._payment(lb)["status"] in ("APPROVED", "COMPLETED", "PENDING")]
        return _choose(self.payments, live, target)

    def _track(self, step: Any) -> None:
        for label in step.produced:
            lists = {"o": self.orders, "p": self.payments, "r": self.refunds}
            if label[0] in lists:
                lists[label[0]].append(label)

    def _key(self) -> NamedKey:
        self._keys += 1
        return NamedKey(f"k{self._keys}")

    def _keyed(self, call: Call, rules: list[str], watch: list[str] | None = None) -> Any:
        """Run a call made under a named idempotency key and remember it for replays."""
        step = self.session.step(call, rules=rules, watch=watch or ())
        label = step.label
        if label is not None and label in self.session.kinds and (
                step.oracle.get("accepted") or step.produced):
            self.keyed.append((call, label))
        return step

    def _versioned(self, label: str, mode: str) -> dict[str, Any]:
        body: dict[str, Any] = {"location_id": LOCATION}
        version = self._order(label)["version"]
        if mode == "current":
            body["version"] = version
        elif mode == "stale":
            body["version"] = version - 1 if version > 1 else version + 1
        return body

    def _update(self, label: str, order: dict[str, Any], rules: list[str],
                fields_to_clear: list[str] | None = None) -> None:
        kwargs: dict[str, Any] = {"order": order}
        if fields_to_clear:
            kwargs["fields_to_clear"] = fields_to_clear
        kwargs["idempotency_key"] = self._key()
        if "version" not in order:
            rules = ["order.version_required", *rules]
        rules.append("order.version_increments")
        self._keyed(Call("orders", "update", (Ref(label),), kwargs), rules)

    # ---------------------------------------------------------------------- orders
    def _create_order(self, lines: list[tuple[int, int]], pickup: bool, state: str,
                      flaw: str | None) -> None:
        label = self.session.next_label("o")
        order: dict[str, Any] = {} if flaw == "no_location" else {"location_id": LOCATION}
        items = [{"uid": self._uid("li"), "name": f"Item {k}", "quantity": str(qty),
                  "base_price_money": self._money(price)}
                 for k, (qty, price) in enumerate(lines, start=1)]
        if flaw == "negative_price":
            items[0]["base_price_money"] = self._money(-1)
        self._own_uids.update(item["uid"] for item in items)
        if items:
            order["line_items"] = items
        count = 2 if flaw == "two_fulfillments" else int(pickup)
        if count:
            order["fulfillments"] = [
                {"uid": f"f{k}", "type": "PICKUP", "state": "PROPOSED",
                 "pickup_details": dict(PICKUP_DETAILS)} for k in range(1, count + 1)]
        if state == "DRAFT":
            order["state"] = "DRAFT"
        rules = {"two_fulfillments": ["order.one_fulfillment"],
                 "no_location": ["order.location_required"],
                 "negative_price": ["money.non_negative"],
                 }.get(flaw or "", ["order.version_increments"])
        if flaw in PRICING:
            rules = self._priced(order, items, flaw)
        elif flaw == "bare_line":
            items[0] = {"uid": items[0]["uid"], "quantity": "1"}
            order["line_items"] = items
            rules = ["order.line_item_needs_name_and_price"]
        step = self._keyed(
            Call("orders", "create", (), {"order": order, "idempotency_key": self._key()},
                 (Produce(label),)), rules)
        self._track(step)

    def _priced(self, order: dict[str, Any], items: list[dict[str, Any]],
                flaw: str) -> list[str]:
        """Give the order what Square prices (taxes, discounts, service charges), or one
        pricing input out of range; returns the rules its totals check."""
        items[0]["base_price_money"] = self._money(250)
        if flaw == "tax":
            order["taxes"] = [{"uid": "tax", "name": "Tax", "percentage": "5", "scope": "ORDER"}]
        elif flaw == "inclusive_tax":
            items[0]["base_price_money"] = self._money(1100)
            order["taxes"] = [{"uid": "tax", "name": "VAT", "percentage": "10",
                               "type": "INCLUSIVE", "scope": "ORDER"}]
        elif flaw == "order_discounts":
            items[0]["base_price_money"] = self._money(6099)
            order["discounts"] = [
                {"uid": "d5", "name": "5 %", "percentage": "5", "scope": "ORDER"},
                {"uid": "d05", "name": "0.5 %", "percentage": "0.5", "scope": "ORDER"}]
        elif flaw == "fixed_discount":
            items[0]["base_price_money"] = self._money(300)
            items.append({"uid": self._uid("li"), "name": "Side", "quantity": "1",
                          "base_price_money": self._money(100)})
            self._own_uids.add(items[-1]["uid"])
            order["discounts"] = [
                {"uid": "off", "name": "1 off", "amount_money": self._money(100),
                 "scope": "LINE_ITEM"},
                {"uid": "d5", "name": "5 %", "percentage": "5", "scope": "ORDER"}]
            for item in items:
                item["applied_discounts"] = [{"discount_uid": "off"}]
        elif flaw == "service_charge":
            items[0]["base_price_money"] = self._money(1000)
            order["taxes"] = [{"uid": "tax", "name": "Tax", "percentage": "10", "scope": "ORDER"}]
            order["service_charges"] = [{"uid": "sc", "name": "Service", "percentage": "10",
                                         "calculation_phase": "TOTAL_PHASE"}]
        elif flaw == "charge_phase":
            order["service_charges"] = [{"uid": "sc", "name": "Service", "percentage": "10",
                                         "calculation_phase": "APPORTIONED_AMOUNT_PHASE"}]
        elif flaw == "percentage":
            order["discounts"] = [{"uid": "d", "name": "Too much", "percentage": "150",
                                   "scope": "ORDER"}]
        elif flaw == "quantity":
            items[0]["quantity"] = "1.123456"
        elif flaw == "overflow":
            items[0].update(quantity="10", base_price_money=self._money(2**62))
        elif flaw == "duplicate_uid":
            order["discounts"] = [
                {"uid": "same", "name": "5 %", "percentage": "5", "scope": "ORDER"},
                {"uid": "same", "name": "1 off", "amount_money": self._money(100),
                 "scope": "ORDER"}]
        return PRICING[flaw]

    @rule(lines=LINES, pickup=st.booleans(), state=ORDER_STATE, flaw=ORDER_FLAW)
    def create_order(self, lines: list[tuple[int, int]], pickup: bool, state: str,
                     flaw: str | None) -> None:
        self._create_order(lines, pickup, state, flaw)

    @rule(lines=LINES, pickup=st.sampled_from([True, False]))
    def paid_order(self, lines: list[tuple[int, int]], pickup: bool) -> None:
        """An order paid in full right away, so later steps start from a paid state."""
        self._create_order(lines, pickup, "OPEN", None)
        if self.session.steps[-1].produced:
            self._pay_in_full(self.orders[-1])

    @rule(which=TARGET, state=st.sampled_from(["CANCELED", "COMPLETED", "OPEN", "DRAFT"]),
          fulfillment=st.sampled_from([None, "CANCELED", "COMPLETED"]), version=VERSION)
    def change_order_state(self, which: tuple[int, bool], state: str, fulfillment: str | None,
                           version: str) -> None:
        self._change_state(which, state, fulfillment, version)

    def _change_state(self, which: tuple[int, bool], target: str, fulfillment: str | None,
                      version: str) -> None:
        label = self._target_order(which)
        if label is not None:
            self._change_state_of(label, target, fulfillment, version)

    def _change_state_of(self, label: str, target: str, fulfillment: str | None,
                         version: str) -> None:
        rec = self._order(label)
        order = self._versioned(label, version)
        fulfillments = rec.get("fulfillments") or []
        states = [f["state"] for f in fulfillments]
        if fulfillment is not None and fulfillments:
            order["fulfillments"] = [{"uid": f["uid"], "state": fulfillment} for f in fulfillments]
            states = [fulfillment] * len(fulfillments)
        order["state"] = target
        rules: list[str] = []
        if target == "CANCELED":
            if self._processed(rec):
                rules.append("order.cancel_after_payment")
            if any(s not in TERMINAL_FULFILLMENT for s in states):
                rules.append("order.cancel_open_fulfillments")
        elif target == "COMPLETED":
            rules += ["order.complete_requires_terminal_fulfillments",
                      "order.complete_requires_payment"]
        elif rec["state"] == "DRAFT" or target == "DRAFT":
            rules.append("order.draft_opens")
        if rec["state"] in ("COMPLETED", "CANCELED"):
            rules.insert(0, "order.terminal_frozen")
        self._update(label, order, rules)

    @rule(which=TARGET, together=st.sampled_from([True, False]))
    def cancel_order(self, which: tuple[int, bool], together: bool) -> None:
        """The seed thread's question: cancel an order, with its fulfillments canceled in the
        same request or alone."""
        self._change_state(which, "CANCELED", "CANCELED" if together else None, "current")

    @rule(which=TARGET)
    def refund_then_cancel(self, which: tuple[int, bool]) -> None:
        """The seed thread's flow: refund what was captured in full, then cancel the order and
        its fulfillments."""
        label = self._target_order(which)
        if label is None:
            return
        order_id = self.session.oracle.ids[label]
        for p in self.payments:
            rec = self._payment(p)
            if rec.get("order_id") == order_id and rec["status"] == "COMPLETED":
                remaining = rec["total_money"]["amount"] - (
                    rec.get("refunded_money") or {}).get("amount", 0)
                if remaining > 0:
                    self._refund(p, remaining, None)
        self._change_state_of(label, "CANCELED", "CANCELED", "current")

    @rule(which=TARGET)
    def hand_over(self, which: tuple[int, bool]) -> None:
        """The customer picks the order up: its fulfillment goes straight to COMPLETED."""
        self._move_fulfillment(which, "COMPLETED", "current")

    @rule(which=TARGET, state=FULFILLMENT_STATES, version=VERSION)
    def move_fulfillment(self, which: tuple[int, bool], state: str, version: str) -> None:
        self._move_fulfillment(which, state, version)

    def _move_fulfillment(self, which: tuple[int, bool], state: str, version: str) -> None:
        label = self._target_order(which, self._with_fulfillments())
        if label is not None:
            self._move_fulfillment_of(label, state, version)

    def _move_fulfillment_of(self, label: str, state: str, version: str) -> None:
        if not self._order(label).get("fulfillments"):
            return
        f = self._order(label)["fulfillments"][0]
        order = self._versioned(label, version)
        order["fulfillments"] = [{"uid": f["uid"], "state": state}]
        rules = ["fulfillment.forward_only"]
        if state == "COMPLETED":
            rules.insert(0, "fulfillment.complete_requires_payment")
        elif state in ("CANCELED", "FAILED"):
            rules.insert(0, "fulfillment.cancel_any_time")
        if f["state"] in TERMINAL_FULFILLMENT:
            rules.insert(0, "fulfillment.terminal_absorbs")
        self._update(label, order, rules)

    @rule(which=TARGET, action=st.sampled_from(["add", "quantity", "clear"]), version=VERSION)
    def edit_line_items(self, which: tuple[int, bool], action: str, version: str) -> None:
        label = self._target_order(which)
        if label is not None:
            self._edit_line_items(label, action, version)

    def _edit_line_items(self, label: str, action: str, version: str) -> None:
        rec = self._order(label)
        order = self._versioned(label, version)
        # Only uids this machine chose are the same on both sides (servers pick the others).
        existing = [li["uid"] for li in rec.get("line_items") or [] if li["uid"] in self._own_uids]
        clear = None
        if action == "quantity" and existing:
            order["line_items"] = [{"uid": existing[0], "quantity": "3"}]
        elif action == "clear" and existing:
            clear = [f"line_items[{existing[-1]}]"]
        else:
            uid = self._uid("extra")
            self._own_uids.add(uid)
            order["line_items"] = [{"uid": uid, "name": "Extra", "quantity": "1",
                                    "base_price_money": self._money(500)}]
        rules = ["order.line_items_locked" if self._processed(rec) else "order.sparse_update"]
        self._update(label, order, rules, clear)

    @rule(which=TARGET, version=VERSION,
          flaw=st.sampled_from([None, None, None, "no_type", "no_details"]))
    def add_fulfillment(self, which: tuple[int, bool], version: str, flaw: str | None) -> None:
        label = self._target_order(which)
        if label is not None:
            self._add_fulfillment(label, version, flaw)

    def _add_fulfillment(self, label: str, version: str, flaw: str | None) -> None:
        order = self._versioned(label, version)
        fulfillment: dict[str, Any] = {"uid": self._uid("f-new"), "type": "PICKUP",
                                       "state": "PROPOSED", "pickup_details": dict(PICKUP_DETAILS)}
        rules = ["order.one_fulfillment"]
        if flaw == "no_type":
            del fulfillment["type"]
            rules.insert(0, "fulfillment.type_required")
        elif flaw == "no_details":
            del fulfillment["pickup_details"]
            rules.insert(0, "fulfillment.details_required")
        order["fulfillments"] = [fulfillment]
        self._update(label, order, rules)

    # -------------------------------------------------------------------- payments
    @rule(which=st.one_of(TARGET, st.none()),
          source=st.sampled_from([CARD_OK, CARD_OK, CARD_OK, CARD_OK, CARD_DECLINED, "CASH"]),
          autocomplete=st.booleans(),
          amount=st.sampled_from(["due", "due", "less", "more", "half"]),
          delay=st.sampled_from([None, None, ("PT1M", None), ("PT1M", "COMPLETE"),
                                 (None, "COMPLETE")]))
    def create_payment(self, which: tuple[int, bool] | None, source: str, autocomplete: bool,
                       amount: str, delay: tuple[str | None, str | None] | None) -> None:
        """``which`` None: a payment without an order (Square makes one for it)."""
        order_label = None if which is None else self._target_order(which)
        self._create_payment(order_label, source, autocomplete, amount, delay)

    def _create_payment(self, order_label: str | None, source: str, autocomplete: bool,
                        amount: str, delay: tuple[str | None, str | None] | None,
                        flaw: str | None = None) -> str | None:
        """CreatePayment; ``flaw`` breaks the request one way (see PAYMENT_FLAWS). Returns the
        new payment's label when both sides made one."""
        label = self.session.next_label("p")
        key_name = f"{label}-{len(self.session.steps) + 1}"
        source = {"cvv": "cnon:card-nonce-rejected-cvv",
                  "postal_code": "cnon:card-nonce-rejected-postalcode",
                  "expiration": "cnon:card-nonce-rejected-expiration",
                  "token_used": "cnon:card-nonce-already-used",
                  "invalid_source": "not-a-payment-source",
                  "cash_without_details": "CASH",
                  "bank": "bnon:bank-nonce-ok",
                  "bank_uncaptured": "bnon:bank-nonce-ok",
                  "bank_failure": "bnon:bank-nonce-failure",
                  "nonce_not_found": "cnon:orderfsm-made-up",
                  "card_on_file_not_found": "ccof:orderfsm-made-up",
                  "gift_card_funds": "cnon:gift-card-nonce-insufficient-funds",
                  "gift_card_permission": "cnon:gift-card-nonce-insufficient-permission",
                  "verification": "ccof:customer-card-id-requires-verification",
                  "declined_unknown_order": CARD_DECLINED}.get(flaw or "", source)
        if flaw in ("bank", "bank_failure"):
            autocomplete, delay = True, None
        elif flaw == "bank_uncaptured":
            autocomplete, delay = False, None
        kwargs: dict[str, Any] = {"source_id": source, "idempotency_key": NamedKey(key_name)}
        produces = [Produce(label)]
        rules: list[str] = []
        if order_label is None:
            value = 1000
            produces.append(Produce(self.session.next_label("o"), "order_id"))
        else:
            rec = self._order(order_label)
            held = sum(self.engine.payments[pid]["amount_money"]["amount"]
                       for pid in rec.get("_payment_ids", ())
                       if self.engine.payments[pid]["status"] in ("APPROVED", "PENDING"))
            available = self.engine.amount_due(rec) - held
            value = {"due": available, "less": available - 1, "more": available + 1,
                     "half": available // 2}[amount]
            if value <= 0:
                value = available + 100
            kwargs["order_id"] = Ref(order_label)
            rules.append("payment.order_total_mismatch")
            if rec["state"] != "OPEN":
                rules.insert(0, "order.draft_not_payable" if rec["state"] == "DRAFT"
                             else "order.closed_not_payable")
            if autocomplete and not rec.get("fulfillments") and value == available:
                rules.append("payment.autocomplete_order")
        kwargs["amount_money"] = self._money(value)
        kwargs["autocomplete"] = autocomplete
        if not autocomplete and delay is not None:
            duration, action = delay
            if duration is not None:
                kwargs["delay_duration"] = duration
            if action is not None:
                kwargs["delay_action"] = action
        if source == "CASH" and flaw != "cash_without_details":
            kwargs["cash_details"] = {"buyer_supplied_money": self._money(value)}
        either = []
        if flaw == "no_amount":
            del kwargs["amount_money"]
        elif flaw == "amount_zero":
            kwargs["amount_money"] = self._money(0)
        elif flaw == "app_fee":
            kwargs["app_fee_money"] = self._money(value * 9 // 10 + 1)
        elif flaw == "declined_unknown_order":
            kwargs["order_id"] = "ORDERFSM_NO_SUCH_ORDER"
            either.append("payment.request_checked_before_card")
        elif flaw == "negative":
            kwargs["amount_money"] = self._money(-value if value else -1)
        elif flaw == "currency":
            kwargs["amount_money"] = {"amount": value,
                                      "currency": "EUR" if self.ctx.currency != "EUR" else "USD"}
        elif flaw == "delay_too_short":
            kwargs.update(autocomplete=False, delay_duration="PT30S")
        elif flaw == "delay_with_autocomplete":
            kwargs.update(autocomplete=True, delay_action="COMPLETE")
        step = self.session.step(Call("payments", "create", (), kwargs, tuple(produces)),
                                 rules=rules or ["payment.order_total_mismatch"], either=either)
        if label in step.produced:
            self.payment_keys[label] = key_name
            self.keyed.append((step.call, label))
        self._track(step)
        return label if label in step.produced else None

    @rule(which=st.one_of(TARGET, st.none()), flaw=st.sampled_from(PAYMENT_FLAWS))
    def create_flawed_payment(self, which: tuple[int, bool] | None, flaw: str) -> None:
        """A payment request with one thing wrong (a failing card, no amount, bad delay...) or
        an unusual source (a bank transfer that settles later)."""
        order_label = None if which is None else self._target_order(which)
        self._create_payment(order_label, CARD_OK, True, "due", None, flaw)

    @rule(which=TARGET)
    def pay_in_full(self, which: tuple[int, bool]) -> None:
        """A good card for exactly what is still due, captured at once (the common path);
        an order that totals zero is paid with PayOrder and no payments."""
        label = self._target_order(which)
        if label is not None:
            self._pay_in_full(label)

    def _pay_in_full(self, label: str) -> None:
        rec = self._order(label)
        if rec["state"] == "OPEN" and self.engine.render_order(rec)["total_money"]["amount"] == 0:
            self._keyed(Call("orders", "pay", (Ref(label),), {
                "idempotency_key": self._key(), "order_version": rec["version"],
                "payment_ids": []}), ["pay_order.amount_mismatch", "pay_order.settles"])
            return
        self._create_payment(label, CARD_OK, True, "due", None)

    @rule(which=TARGET, token=TOKEN)
    def complete_payment(self, which: tuple[int, bool], token: str | None) -> None:
        label = self._target_payment(which)
        if label is not None:
            self._complete(label, token)

    def _complete(self, label: str, token: str | None = None) -> None:
        kwargs = {"version_token": Token(label, token)} if token else {}
        rules = ["payment.version_mismatch"] if token else []
        p = self._payment(label)
        order = self.engine.orders.get(p.get("order_id") or "")
        if order is not None and not order.get("fulfillments"):
            rules.append("payment.autocomplete_order")
        self.session.step(Call("payments", "complete", (Ref(label),), kwargs),
                          rules=rules or ["payment.already_captured"])

    @rule(which=TARGET, by_key=st.booleans())
    def cancel_payment(self, which: tuple[int, bool], by_key: bool) -> None:
        label = self._target_payment(which)
        if label is not None:
            self._cancel_payment(label, by_key)

    def _cancel_payment(self, label: str, by_key: bool) -> None:
        if by_key:
            self.session.step(Call("payments", "cancel_by_idempotency_key", (),
                                   {"idempotency_key": NamedKey(self.payment_keys[label])}),
                              rules=["payment.cancel_by_idempotency_key"])
            return
        self.session.step(Call("payments", "cancel", (Ref(label),)),
                          rules=["payment.already_canceled"])

    @rule(which=TARGET, payments=st.sampled_from(["approved", "approved", "none", "other"]),
          j=INDEX, version=st.sampled_from(["current", "missing", "stale"]))
    def pay_order(self, which: tuple[int, bool], payments: str, j: int, version: str) -> None:
        label = self._target_order(which)
        if label is None:
            return
        rec = self._order(label)
        if payments == "approved":
            ids = [lb for lb in self.payments
                   if self._payment(lb).get("order_id") == rec["id"]
                   and self._payment(lb)["status"] == "APPROVED"]
        elif payments == "other" and self.payments:
            ids = [_pick(self.payments, j)]
        else:
            ids = []
        kwargs: dict[str, Any] = {"idempotency_key": self._key()}
        if version != "missing":
            kwargs["order_version"] = rec["version"] + (0 if version == "current" else 1)
        kwargs["payment_ids"] = [Ref(lb) for lb in ids]
        rules = ["pay_order.amount_mismatch", "pay_order.settles"]
        if version == "stale":
            rules.insert(0, "pay_order.version_mismatch")
        self._keyed(Call("orders", "pay", (Ref(label),), kwargs), rules)

    # --------------------------------------------------------------------- refunds
    @rule(which=TARGET, amount=st.sampled_from(["full", "part", "part", "over", "zero",
                                                "currency"]), token=TOKEN)
    def refund_payment(self, which: tuple[int, bool], amount: str, token: str | None) -> None:
        label = self._target_payment(which)
        if label is not None:
            self._refund_amount(label, amount, token)

    def _refund_amount(self, label: str, amount: str, token: str | None = None) -> None:
        p = self._payment(label)
        remaining = p["total_money"]["amount"] - (p.get("refunded_money") or {}).get("amount", 0)
        if amount == "zero":
            self._refund(label, 0, token)
            return
        value = {"full": remaining, "part": remaining // 2, "over": remaining + 1,
                 "currency": remaining}[amount]
        if value <= 0:
            value = remaining + 100
        self._refund(label, value, token, "EUR" if amount == "currency" else None)

    @rule(which=TARGET)
    def partial_refunds(self, which: tuple[int, bool]) -> None:
        """Two items returned one after the other: two partial refunds back to back."""
        label = self._target_payment(which)
        if label is None:
            return
        for _ in range(2):
            p = self._payment(label)
            remaining = p["total_money"]["amount"] - (
                p.get("refunded_money") or {}).get("amount", 0)
            self._refund(label, max(remaining // 3, 1), None)

    def _refund(self, label: str, value: int, token: str | None,
                currency: str | None = None) -> None:
        p = self._payment(label)
        money = self._money(value)
        if currency is not None:
            money["currency"] = currency if currency != self.ctx.currency else "USD"
        kwargs: dict[str, Any] = {"idempotency_key": self._key(), "payment_id": Ref(label),
                                  "amount_money": money, "reason": "conformance"}
        if token:
            kwargs["payment_version_token"] = Token(label, token)
        rules = ["refund.return_order", "refund.original_order_unchanged", "refund.amount_exceeds"]
        if p.get("source_type") in ("CASH", "EXTERNAL"):
            rules.insert(0, "refund.cash_settles_at_once")
        if any(self.engine.refunds[r]["status"] == "PENDING" for r in p.get("refund_ids", ())):
            rules.insert(0, "refund.already_pending")
        watch = [lb for lb in self.orders if self.session.oracle.ids[lb] == p.get("order_id")]
        self._track(self._keyed(
            Call("refunds", "refund_payment", (), kwargs, (Produce(self.session.next_label("r")),)),
            rules, watch))

    # ----------------------------------------------------------------------- clock
    def _live_timers(self) -> list[tuple[Any, str]]:
        """(due time, kind) of the oracle's timers that would still change something."""
        eng = self.engine
        out = []
        for due, _, kind, ident in sorted(eng._timers):
            if kind == "payment_delay":
                live = eng.payments.get(ident, {}).get("status") == "APPROVED"
            elif kind == "bank_settle":
                live = eng.payments.get(ident, {}).get("status") == "PENDING"
            else:
                live = eng.refunds.get(ident, {}).get("status") == "PENDING"
            if live:
                out.append((due, kind))
        return out

    def _advance(self, seconds: float) -> None:
        """Move both clocks; the step checks the clock rules whose timers fall due in it."""
        until = self.engine.now() + timedelta(seconds=seconds)
        fired = {kind for due, kind in self._live_timers() if due <= until}
        rules = [TIMER_RULES[k] for k in ("payment_delay", "refund_settle", "bank_settle")
                 if k in fired]
        self.session.step(Call("sim", "advance_clock", (seconds,)), rules=rules)

    @precondition(lambda self: self.ctx.has_clock)
    @rule(seconds=st.sampled_from([11, 61, 3600, 7 * 24 * 3600 + 60]))
    def time_passes(self, seconds: int) -> None:
        if self.payments:
            self._advance(seconds)

    @precondition(lambda self: self.ctx.has_clock)
    @rule(kind=st.sampled_from(["payment_delay", "refund_settle", "bank_settle"]),
          offset=st.sampled_from([0, 0, 1, -1]))
    def time_to_due(self, kind: str, offset: int) -> None:
        """Jump to the next due time of a kind of timer (delayed_until, a refund's or a bank
        transfer's settlement): just before it, at it, or just after it."""
        self._time_to(kind, offset)

    def _time_to(self, kind: str | None, offset: int) -> None:
        timers = [due for due, k in self._live_timers() if kind is None or k == kind]
        if not timers:
            return
        seconds = (timers[0] - self.engine.now()).total_seconds() + offset
        self._advance(max(seconds, 0))

    # ----------------------------------------------------------- refund outcomes
    @precondition(lambda self: self.ctx.has_clock)
    @rule(j=INDEX, outcome=st.sampled_from(["settle", "settle", "reject", "fail"]))
    def processor_decides(self, j: int, outcome: str) -> None:
        """The processor settles, rejects or fails a refund now (through the control API): a
        failed refund blocks later refunds of its payment, and a finished one cannot be
        decided again."""
        if self.refunds:
            self._finish_refund(_pick(self.refunds, j), outcome)

    def _finish_refund(self, label: str, outcome: str) -> None:
        watch = [self.session.oracle.labels.get(
            self.engine.refunds[self.session.oracle.ids[label]]["payment_id"], "")]
        self.session.step(Call("sim", "finish_refund", (Ref(label), outcome)),
                          rules=["refund.settlement"], watch=[w for w in watch if w])

    # ------------------------------------------------------- webhook subscriptions
    @rule(flaw=st.sampled_from(SUBSCRIPTION_FLAWS))
    def webhook_subscription(self, flaw: str | None) -> None:
        """CreateWebhookSubscription, well formed (then a test event of a type it does not
        subscribe to) or with one field wrong or missing; or an unknown subscription id."""
        self._subscription(flaw)

    def _subscription(self, flaw: str | None) -> None:
        if flaw == "missing":
            self.session.step(Call("webhooks.subscriptions", "get", ("wbhk_orderfsm_missing",)),
                              rules=["webhook.subscription_not_found"])
            return
        sub: dict[str, Any] = {"name": "conformance", "event_types": ["order.created"],
                               "notification_url": "https://localhost/orderfsm",
                               "enabled": False}
        rules = {"no_url": "webhook.subscription_field_required",
                 "no_types": "webhook.subscription_field_required",
                 "unknown_type": "webhook.event_type_unknown",
                 "bad_url": "webhook.notification_url_invalid"}
        if flaw == "no_url":
            del sub["notification_url"]
        elif flaw == "no_types":
            del sub["event_types"]
        elif flaw == "unknown_type":
            sub["event_types"] = ["order.created", "order.exploded"]
        elif flaw == "bad_url":
            sub["notification_url"] = "http://example.com/orderfsm"
        label = self.session.next_label("w")
        step = self._keyed(Call("webhooks.subscriptions", "create", (),
                                {"subscription": sub, "idempotency_key": self._key()},
                                (Produce(label),)),
                           [rules.get(flaw or "", "webhook.subscription_field_required")])
        if label in step.produced:
            self.session.step(Call("webhooks.subscriptions", "test", (Ref(label),),
                                   {"event_type": "payment.updated"}),
                              rules=["webhook.test_event_type"])

    # ------------------------------------------------------------------- catalog
    @rule(request=st.sampled_from(CATALOG_REQUESTS))
    def catalog_request(self, request: str) -> None:
        """Catalog API writes, reads and searches, well formed or with one flaw, and orders
        for what the catalog holds (temporary ids, nested variations, taxes applied on their
        own, variations priced at the counter, items sold elsewhere)."""
        self._catalog(request)

    def _money_of(self, amount: int) -> dict[str, Any]:
        return self._money(amount)

    def _variation(self, vid: str, amount: int | None, item: str = "#item") -> dict[str, Any]:
        data: dict[str, Any] = {"item_id": item, "name": f"Size {vid}",
                                "pricing_type": "FIXED_PRICING" if amount else "VARIABLE_PRICING"}
        if amount:
            data["price_money"] = self._money(amount)
        return {"type": "ITEM_VARIATION", "id": vid, "item_variation_data": data}

    def _upsert_item(self, variations: list[dict[str, Any]], **extra: Any) -> str | None:
        """Upsert one item; its label and its first variation's label (``c``) are made."""
        item = {"type": "ITEM", "id": "#item",
                "item_data": {"name": "Tea", "variations": variations}}
        item.update(extra.pop("top", {}))
        item["item_data"].update(extra)
        label = self.session.next_label("c")
        var_label = f"c{int(label[1:]) + 1}"
        step = self._keyed(Call("catalog.object", "upsert", (), {
            "object": item, "idempotency_key": self._key()}, (
                Produce(label), Produce(var_label, "item_data.variations.0.id"))),
            ["catalog.children_replaced"])
        if label in step.produced:
            self.catalog_items.append(label)
            return label
        return None

    def _order_catalog(self, variation: str, rules: list[str], **extra: Any) -> None:
        line: dict[str, Any] = {"catalog_object_id": Ref(variation), "quantity": "1"}
        order: dict[str, Any] = {"location_id": LOCATION, "line_items": [line]}
        order.update(extra)
        label = self.session.next_label("o")
        self._track(self._keyed(Call("orders", "create", (), {
            "order": order, "idempotency_key": self._key()}, (Produce(label),)), rules))

    def _catalog(self, request: str) -> None:
        key = self._key()

        def upsert(obj: dict[str, Any], rule_id: str) -> None:
            self._keyed(Call("catalog.object", "upsert", (), {
                "object": obj, "idempotency_key": key}), [rule_id])

        tax = {"type": "TAX", "id": "#tax", "tax_data": {
            "name": "Sales tax", "percentage": "10", "enabled": True}}
        if request == "item":
            item = self._upsert_item([self._variation("#small", 300),
                                      self._variation("#large", 450)])
            if item is not None:
                self._order_catalog(f"c{int(item[1:]) + 1}", ["order.version_increments"])
        elif request == "no_variations":
            upsert({"type": "ITEM", "id": "#item", "item_data": {"name": "Tea"}},
                   "catalog.item_needs_variation")
        elif request == "unknown_reference":
            upsert({"type": "ITEM", "id": "#item", "item_data": {
                "name": "Tea", "category_id": "#Beverages",
                "variations": [self._variation("#small", 300)]}}, "catalog.reference_unknown")
        elif request == "new_id":
            upsert({**tax, "id": "NOT_THERE"}, "catalog.new_object_id")
        elif request == "no_data":
            upsert({"type": "TAX", "id": "#tax"}, "catalog.data_required")
        elif request == "unsupported_type":
            upsert({"type": "IMAGE", "id": "#image", "image_data": {"name": "Tea"}},
                   "catalog.type_unsupported")
        elif request == "child_type":
            upsert({"type": "ITEM", "id": "#item", "item_data": {"name": "Tea",
                                                                 "variations": [tax]}},
                   "catalog.child_type")
        elif request in ("duplicate_ids", "partial_batch"):
            second = {"type": "ITEM", "id": "#item", "item_data": {"name": "Tea"}}
            batches = ([{"objects": [tax, {**tax, "tax_data": {**tax["tax_data"], "name": "B"}}]}]
                       if request == "duplicate_ids" else
                       [{"objects": [tax]}, {"objects": [second]}])
            self._keyed(Call("catalog", "batch_upsert", (), {
                "batches": batches, "idempotency_key": key}),
                ["catalog.duplicate_id" if request == "duplicate_ids"
                 else "catalog.batch_upsert_partial"])
        elif request == "missing":
            self.session.step(Call("catalog.object", "get", ("ORDERFSM_NO_SUCH_OBJECT",)),
                              rules=["catalog.object_not_found"])
        elif request == "search_combination":
            self.session.step(Call("catalog", "search", (), {"query": {
                "exact_query": {"attribute_name": "name", "attribute_value": "Tea"},
                "items_for_tax_query": {"tax_ids": ["ORDERFSM_TAX"]}}}),
                rules=["catalog.query_combination"])
        elif request == "search_attribute":
            self.session.step(Call("catalog", "search", (), {"query": {
                "exact_query": {"attribute_name": "color", "attribute_value": "red"}}}),
                rules=["catalog.attribute_not_searchable"])
        elif request in ("stale", "type_mismatch", "delete", "replace_children"):
            item = (self.catalog_items[-1] if self.catalog_items and request != "replace_children"
                    else self._upsert_item([self._variation("#small", 300),
                                            self._variation("#large", 450)]))
            if item is None:
                return
            if request == "stale":
                upsert({"type": "ITEM", "id": Ref(item), "version": 1,
                        "item_data": {"name": "Tea"}}, "catalog.version_mismatch")
            elif request == "type_mismatch":
                upsert({**tax, "id": Ref(item)}, "catalog.type_mismatch")
            elif request == "delete":
                self.session.step(Call("catalog.object", "delete", (Ref(item),)),
                                  rules=["catalog.delete_cascades"])
            else:
                variation = f"c{int(item[1:]) + 1}"
                upsert({"type": "ITEM", "id": Ref(item), "item_data": {"name": "Tea", "variations": [
                    {"type": "ITEM_VARIATION", "id": Ref(variation), "item_variation_data": {
                        "item_id": Ref(item), "name": "Only size", "pricing_type": "FIXED_PRICING",
                        "price_money": self._money(300)}}]}}, "catalog.children_replaced")
        elif request == "unknown_in_order":
            self._keyed(Call("orders", "create", (), {"order": {
                "location_id": LOCATION, "line_items": [
                    {"catalog_object_id": "ORDERFSM_NO_SUCH_OBJECT", "quantity": "1"}]},
                "idempotency_key": key}), ["order.catalog_object_not_found"])
        elif request == "elsewhere":
            item = self._upsert_item([self._variation("#small", 300)],
                                     top={"present_at_all_locations": False})
            if item is not None:
                self._order_catalog(f"c{int(item[1:]) + 1}", ["order.catalog_not_at_location"])
        elif request == "variable_price":
            item = self._upsert_item([self._variation("#small", None)])
            if item is not None:
                self._order_catalog(f"c{int(item[1:]) + 1}", ["order.catalog_variable_price"])
        elif request == "auto_tax":
            self._keyed(Call("catalog", "batch_upsert", (), {"batches": [{"objects": [
                tax, {"type": "ITEM", "id": "#item", "item_data": {
                    "name": "Tea", "tax_ids": ["#tax"],
                    "variations": [self._variation("#small", 250)]}}]}],
                "idempotency_key": key}), ["catalog.batch_upsert_partial"])
            # the batch's ids are the server's own: order the newest variation it made
            self._catalog_search_then_order()

    def _catalog_search_then_order(self) -> None:
        """An item taxed by a tax of the same batch, ordered with auto_apply_taxes."""
        label = self.session.next_label("c")
        step = self.session.steps[-1]
        if not step.oracle.get("accepted"):
            return
        # the batch's second object is the item; its first variation is what gets ordered
        found = self.session.step(Call("catalog", "batch_upsert", (), {"batches": [
            {"objects": [{"type": "TAX", "id": "#tax2", "tax_data": {
                "name": "City tax", "percentage": "5", "enabled": True}},
                {"type": "ITEM", "id": "#item2", "item_data": {
                    "name": "Cake", "tax_ids": ["#tax2"],
                    "variations": [self._variation("#slice", 250, "#item2")]}}]}],
            "idempotency_key": self._key()}, (
                Produce(label, "objects.1.item_data.variations.0.id"),)),
            rules=["catalog.batch_upsert_partial"])
        if label in found.produced:
            self._order_catalog(label, ["order.auto_apply_taxes"],
                                pricing_options={"auto_apply_taxes": True})

    # --------------------------------------------------------------------- replays
    @rule(j=INDEX, same_body=st.booleans())
    def replay(self, j: int, same_body: bool) -> None:
        """Send an earlier call again under its idempotency key: with the same body (the
        server answers as it did the first time, making nothing new) or with another body
        (IDEMPOTENCY_KEY_REUSED; UpdateOrder answers the current order and applies nothing)."""
        if self.keyed:
            call, label = self.keyed[-1 - j % len(self.keyed)]
            self._replay(call, label, same_body)

    def _replay(self, call: Call, label: str, same_body: bool) -> None:
        kwargs = dict(call.kwargs)
        if not same_body:
            if call.resource == "payments":
                kwargs["note"] = "replayed with another body"
            elif call.resource == "refunds":
                kwargs["reason"] = "replayed with another body"
            elif call.method == "pay":
                kwargs["order_version"] = (kwargs.get("order_version") or 0) + 100
            elif call.method == "clone":
                kwargs["version"] = (kwargs.get("version") or 0) + 100
            elif call.resource == "webhooks.subscriptions":
                kwargs["subscription"] = {**kwargs["subscription"], "name": "replayed"}
            elif call.resource == "catalog.object":
                kwargs["object"] = {**kwargs["object"], "present_at_location_ids": ["ELSEWHERE"]}
            elif call.resource == "catalog":
                kwargs["batches"] = [*kwargs["batches"], {"objects": [
                    {"type": "CATEGORY", "id": "#replayed", "category_data": {"name": "Again"}}]}]
            else:
                kwargs["order"] = {**kwargs["order"], "reference_id": "replayed"}
        self.session.step(Call(call.resource, call.method, call.args, kwargs, (),
                               same_as=label if same_body else None),
                          rules=["api.idempotency_key_reused"])

    # ------------------------------------------------------------- PayOrder sums
    @rule(which=TARGET, change=st.sampled_from(["none", "clear", "add", "half"]))
    def authorize_then_pay_order(self, which: tuple[int, bool], change: str) -> None:
        """Authorize a card without capture, maybe change what the order costs, then PayOrder
        with the authorized payments: their sum matches what is due, or is more (a line item
        was cleared) or less (an item was added, or only half was authorized)."""
        label = self._target_order(which)
        if label is not None:
            self._authorize_then_pay(label, change)

    def _authorize_then_pay(self, label: str, change: str, authorize: bool = True) -> None:
        amount = "half" if change == "half" else "due"
        if authorize and self._create_payment(label, CARD_OK, False, amount, None) is None:
            return
        if change in ("clear", "add"):
            self._edit_line_items(label, change, "current")
        rec = self._order(label)
        ids = [lb for lb in self.payments if self._payment(lb).get("order_id") == rec["id"]
               and self._payment(lb)["status"] == "APPROVED"]
        self._keyed(Call("orders", "pay", (Ref(label),), {
            "idempotency_key": self._key(), "order_version": rec["version"],
            "payment_ids": [Ref(lb) for lb in ids]}),
            ["pay_order.amount_mismatch", "pay_order.settles"])

    # ---------------------------------------------------------- lookups and misuse
    @rule(misuse=st.sampled_from(MISUSES))
    def api_misuse(self, misuse: str) -> None:
        """Requests any server must refuse the same way: unknown ids, a bad cursor, too many
        ids, a limit out of range, a malformed Authorization header."""
        self._misuse(misuse)

    def _misuse(self, misuse: str) -> None:
        ghost = "orderfsm-no-such-object"
        calls = {
            "order": (Call("orders", "get", (ghost,)), "order.not_found"),
            "update_order": (Call("orders", "update", (ghost,), {
                "order": {"location_id": LOCATION, "version": 1},
                "idempotency_key": self._key()}), "order.not_found"),
            "payment": (Call("payments", "get", (ghost,)), "payment.not_found"),
            "complete_payment": (Call("payments", "complete", (ghost,)), "payment.not_found"),
            "refund": (Call("refunds", "get", (ghost,)), "refund.not_found"),
            "location": (Call("locations", "get", (ghost,)), "location.not_found"),
            "cursor": (Call("payments", "list", (), {"cursor": "bm90LWEtY3Vyc29y"}),
                       "api.invalid_cursor"),
            "limit": (Call("payments", "list", (), {"limit": 0}), "api.invalid_value"),
            "batch": (Call("orders", "batch_get", (), {
                "order_ids": [f"{ghost}-{i}" for i in range(101)]}), "api.too_many_ids"),
            "auth": (Call("locations", "get", ("main",), auth="Basic b3JkZXJmc20="),
                     "api.unauthorized"),
            "search_everywhere": (Call("orders", "search", (), {"location_ids": []}),
                                  "order.search_location_required"),
            "search_closed_at": (Call("orders", "search", (), {
                "location_ids": [LOCATION], "query": {
                    "filter": {"state_filter": {"states": ["OPEN", "COMPLETED"]}},
                    "sort": {"sort_field": "CLOSED_AT"}}}), "order.search_closed_at_open"),
        }
        call, rule_id = calls[misuse]
        self.session.step(call, rules=[rule_id])

    @rule(which=TARGET, version=st.sampled_from(["current", "current", "stale", "missing"]))
    def clone_order(self, which: tuple[int, bool], version: str) -> None:
        """CloneOrder: a DRAFT copy of the order's line items."""
        items = list(self.orders)
        label = _choose(items, items, which)
        if label is not None:
            self._clone(label, version)

    def _clone(self, label: str, version: str) -> None:
        kwargs: dict[str, Any] = {"order_id": Ref(label)}
        current = self._order(label)["version"]
        if version != "missing":
            kwargs["version"] = current if version == "current" else current + 1
        kwargs["idempotency_key"] = self._key()
        step = self._keyed(Call("orders", "clone", (), kwargs,
                                (Produce(self.session.next_label("o")),)),
                           ["order.clone_is_draft"])
        self._track(step)

    # ------------------------------------------------------------- coverage aims
    @initialize(k=AIM_CHOICE)
    def open_with_aim(self, k: int) -> None:
        """Every sequence starts with a short scenario aimed at a rule checked least so far."""
        self._aim(k)

    @rule(k=AIM_CHOICE)
    def aim(self, k: int) -> None:
        self._aim(k)

    def _aim(self, k: int) -> None:
        # Rules never checked yet come first; then every scenario in turn, the least aimed
        # (and least checked) first.
        targets = aim_scenarios(self.ctx.has_clock)

        def urgency(key: str) -> tuple[bool, int, int, int]:
            checks = self.counts.get(key.split("#")[0], 0)
            return (checks > 0, self.aimed.get(key, 0), checks, targets.index(key))

        target = sorted(targets, key=urgency)[k % len(targets)]
        self.aimed[target] = self.aimed.get(target, 0) + 1
        self.ctx.note_aim(target)
        getattr(self, AIMS[target][0])(*AIMS[target][1:])

    def _new_order(self, pickup: bool = False, state: str = "OPEN",
                   lines: tuple[tuple[int, int], ...] = ((1, 1000),),
                   flaw: str | None = None) -> str | None:
        before = len(self.orders)
        self._create_order(list(lines), pickup, state, flaw)
        return self.orders[-1] if len(self.orders) > before else None

    def _paid(self, pickup: bool = True, amount: int = 1000) -> tuple[str, str] | None:
        o = self._new_order(pickup, lines=((1, amount),))
        if o is None:
            return None
        p = self._create_payment(o, CARD_OK, True, "due", None)
        return None if p is None else (o, p)

    def _authorized(self, delay: tuple[str | None, str | None] | None = None,
                    pickup: bool = True) -> tuple[str, str] | None:
        o = self._new_order(pickup)
        if o is None:
            return None
        p = self._create_payment(o, CARD_OK, False, "due", delay)
        return None if p is None else (o, p)

    def aim_order(self, pickup: bool, state: str, then: str, *args: Any) -> None:
        o = self._new_order(pickup, state)
        if o is None:
            return
        if then == "state":
            self._change_state_of(o, args[0], args[1], "current")
            if len(args) > 2:
                self._edit_line_items(o, "add", "current")
        elif then == "edit":
            self._edit_line_items(o, args[0], args[1])
        elif then == "move":
            for state_ in args:
                self._move_fulfillment_of(o, state_, "current")
        elif then == "pay":
            self._create_payment(o, CARD_OK, True, args[0], None)
        elif then == "fulfillment":
            self._add_fulfillment(o, "current", args[0])
        elif then == "clone":
            self._clone(o, args[0])
        elif then == "authorize_pay":
            self._authorize_then_pay(o, args[0])
        elif then == "replay":
            call, label = self.keyed[-1]
            self._replay(call, label, args[0])

    def aim_flawed_order(self, flaw: str) -> None:
        self._new_order(False, flaw=flaw)

    def aim_paid(self, then: str, *args: Any) -> None:
        found = self._paid(pickup=then != "autocomplete")
        if found is None:
            return
        o, p = found
        if then == "state":
            self._change_state_of(o, "CANCELED", "CANCELED", "current")
        elif then == "edit":
            self._edit_line_items(o, "add", "current")
        elif then == "complete":
            self._complete(p)
        elif then == "finish":
            self._move_fulfillment_of(o, "COMPLETED", "current")
            self._change_state_of(o, "COMPLETED", None, "current")
        elif then == "pay_order":
            self._keyed(Call("orders", "pay", (Ref(o),), {
                "idempotency_key": self._key(), "payment_ids": [Ref(p)]}),
                ["pay_order.amount_mismatch", "pay_order.settles"])
        elif then == "refund":
            for amount in args:
                if amount == "stale":
                    self._refund_amount(p, "part", "initial")
                else:
                    self._refund_amount(p, amount)
        elif then == "settle":
            self._refund_amount(p, "part")
            self._time_to("refund_settle", args[0])
        elif then == "old":
            self._advance(366 * 24 * 3600)
            self._refund_amount(p, "part")
        elif then == "replay":
            self._replay(self.keyed[-1][0], self.keyed[-1][1], args[0])
        elif then == "discount":
            order = self._versioned(o, "current")
            order["discounts"] = [{"uid": "late", "name": "Late", "percentage": "5",
                                   "scope": "ORDER"}]
            self._update(o, order, ["order.pricing_locked"])
        elif then == "clear_fulfillment":
            uid = self._order(o)["fulfillments"][0]["uid"]
            self._update(o, self._versioned(o, "current"), ["order.fulfillment_locked_when_paid"],
                         [f"fulfillments[{uid}]"])
        elif then == "many":
            for _ in range(21):
                self._refund(p, 1, None)

    def aim_authorized(self, then: str, *args: Any) -> None:
        delay = {"expire": ("PT1M", None), "expired": ("PT1M", None),
                 "expire_complete": ("PT1M", "COMPLETE")}.get(then)
        found = self._authorized(delay)
        if found is None:
            return
        o, p = found
        if then == "complete":
            self._complete(p, "current")
        elif then == "cancel":
            self._cancel_payment(p, args[0])
            self._complete(p)
        elif then == "refund":
            if args and args[0] == "cancel":
                self._cancel_payment(p, False)
            self._refund_amount(p, "part")
        elif then in ("expire", "expired", "expire_complete"):
            self._time_to("payment_delay", 1)
            if then == "expired":
                self._complete(p)
        elif then == "pay":
            self._authorize_then_pay(o, args[0], authorize=False)
        elif then == "pay_stale":
            self._keyed(Call("orders", "pay", (Ref(o),), {
                "idempotency_key": self._key(), "order_version": self._order(o)["version"] + 1,
                "payment_ids": [Ref(p)]}), ["pay_order.version_mismatch"])
        elif then == "other_order":
            other = self._new_order()
            if other is not None:
                self._keyed(Call("orders", "pay", (Ref(other),), {
                    "idempotency_key": self._key(), "payment_ids": [Ref(p)]}),
                    ["pay_order.payment_wrong_order"])

    def aim_payment(self, flaw: str | None, source: str = CARD_OK, then: str = "") -> None:
        o = self._new_order(True)
        p = self._create_payment(o, source, True, "due", None, flaw)
        if p is None:
            return
        if then == "complete":
            self._complete(p)
        elif then == "settle":
            self._time_to("bank_settle", 1)
        elif then == "refund":
            self._refund_amount(p, "part")

    def aim_cash_pay_order(self) -> None:
        o = self._new_order(False)
        if o is None:
            return
        p = self._create_payment(o, "CASH", False, "due", None)
        if p is not None:
            self._keyed(Call("orders", "pay", (Ref(o),), {
                "idempotency_key": self._key(), "payment_ids": [Ref(p)]}),
                ["pay_order.cash_payment", "pay_order.settles"])

    def aim_misuse(self, misuse: str) -> None:
        self._misuse(misuse)

    def aim_refund_outcome(self, first: str, then: str) -> None:
        found = self._paid()
        if found is None:
            return
        p = found[1]
        self._refund_amount(p, "part")
        if self.refunds:
            self._finish_refund(self.refunds[-1], first)
            if then == "refund":
                self._refund_amount(p, "part")
            else:
                self._finish_refund(self.refunds[-1], then)

    def aim_catalog(self, request: str) -> None:
        self._catalog(request)

    def aim_subscription(self, flaw: str | None) -> None:
        self._subscription(flaw)

    def teardown(self) -> None:
        self.ctx.finished(self.session, self.start_counts)

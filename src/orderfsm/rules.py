"""The rule catalog: the one place where a rule's words, sources and exact Square error live.

Every rule has an id (``resource.name``), a statement, one or more sources, a confidence
(CONFIRMED, REPORTED, INFERRED) and, when the rule rejects something, the exact Square error it
produces. Where sources disagree the rule carries a :class:`Variant`: named behaviours with a
default, switched per server with ``--variant NAME=VALUE``.

The engine raises errors only through :func:`violation`, so a rejection always names its rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Iterable, Mapping

from .errors import ErrorDetail, SquareError

__all__ = [
    "Confidence",
    "RuleError",
    "Variant",
    "Rule",
    "CATALOG",
    "SOURCES",
    "VARIANTS",
    "get_rule",
    "violation",
    "Variants",
]


class Confidence(StrEnum):
    CONFIRMED = "CONFIRMED"  # Square's spec, docs or SDK say so
    REPORTED = "REPORTED"  # developers saw it (forums, staff answers, third-party sandbox notes)
    INFERRED = "INFERRED"  # deduced; the simulator's best guess where no source settles it


SOURCES: dict[str, str] = {
    "S1": "https://github.com/square/connect-api-specification (api.json, Square-Version 2025-08-20)",
    "S2": "https://developer.squareup.com/docs/orders-api/pay-for-orders",
    "S3": "https://developer.squareup.com/docs/orders-api/manage-orders/update-orders",
    "S4": "https://developer.squareup.com/docs/orders-api/fulfillments",
    "S5": "https://developer.squareup.com/docs/orders-api/order-returns-exchanges",
    "S6": "https://developer.squareup.com/docs/refunds-api/retrieve-refunds",
    "S7": "https://developer.squareup.com/docs/payments-api/refund-payments",
    "S8": "https://developer.squareup.com/reference/square/refunds-api",
    "S9": "https://developer.squareup.com/docs/payments-api/take-payments/card-payments/delayed-capture",
    "S10": "https://developer.squareup.com/docs/payments-api/additional-payment-considerations",
    "S11": "https://developer.squareup.com/docs/build-basics/common-api-patterns/idempotency",
    "S12": "https://developer.squareup.com/docs/build-basics/general-considerations/handling-errors",
    "S13": "https://developer.squareup.com/docs/payments-api/error-codes",
    "S16": "https://developer.squareup.com/docs/payments-api/webhooks",
    "S17": "https://developer.squareup.com/docs/refunds-api/webhooks",
    "S18": "https://developer.squareup.com/docs/devtools/sandbox/payments",
    "S20": "https://developer.squareup.com/docs/payments-api/take-payments/ach-payments",
    "S21": "https://developer.squareup.com/docs/build-basics/clearing-fields",
    "S23": "https://developer.squareup.com/docs/orders-api/create-orders",
    "S14": "https://developer.squareup.com/docs/webhooks-api/validate-notifications",
    "S15": "https://developer.squareup.com/docs/webhooks-api/delivery-sla",
    "S19": "https://github.com/square/square-python-sdk (src/square/utils/webhooks_helper.py)",
    "S22": "https://developer.squareup.com/docs/webhooks/step4manage",
    "S24": "https://developer.squareup.com/docs/webhooks-api/subscribe-to-events",
    "CAT1": "https://developer.squareup.com/reference/square/catalog-api",
    "CAT2": "https://developer.squareup.com/docs/catalog-api/build-with-catalog",
    "CAT3": "https://developer.squareup.com/docs/orders-api/apply-taxes-and-discounts/auto-apply-taxes",
    "CAT4": "https://developer.squareup.com/docs/orders-api/apply-taxes-and-discounts/auto-apply-discounts",
    "CAT5": "https://developer.squareup.com/reference/square/catalog-api/webhooks/catalog.version.updated",
    "CAT6": "public GitHub notes file pasting live UpsertCatalogObject responses (2023; quoted in "
            "square-error-bodies.md, 'catalog notes file')",
    "CAT7": "https://github.com/square/square-nodejs-sdk/issues/150",
    "CAT8": "https://github.com/square/connect-php-sdk/issues/55 (Square staff answer)",
    "CAT9": "https://github.com/square/square-php-sdk/issues/47 (an upserted variation's response)",
    "F1": "https://developer.squareup.com/forums/t/best-method-to-cancel-order-after-refund/922",
    "F2": "https://developer.squareup.com/forums/t/update-order-created-via-payment-link/13601",
    "F3": "https://developer.squareup.com/forums/t/update-order-api-error/9477",
    "F4": "https://developer.squareup.com/forums/t/orders-with-fulfillment-dashboard-behavior/18972",
    "F5": "https://developer.squareup.com/forums/t/seeking-clarity-on-the-orders-api/11882/3",
    "F6": "https://community.squareup.com/t5/Orders-Menu-Items-Catalog/How-to-Manage-Status-with-cancellation-process-through-the-api/td-p/841996",
    "F9": "https://developer.squareup.com/forums/t/increase-time-limit-on-auth-delay-capture/3485/2",
    "F12": "https://sellercommunity.com/t5/E-Commerce-API/The-payment-total-does-not-match-the-order-total-It-does/td-p/151485",
    "F16": "https://developer.squareup.com/forums/t/multiple-fulfillments-per-order/2488",
    "F8": "https://developer.squareup.com/forums/t/ach-payment-pending-what-are-the-options/2638",
    "F17": "https://developer.squareup.com/forums/t/cannot-create-payment-with-amount-0/1866",
    "S25": "https://developer.squareup.com/docs/orders-api/manage-orders/search-orders",
    "S26": "https://square.github.io/mobile-payments-sdk-android/ (PaymentParameters.delayDuration)",
    "S27": "https://github.com/square/connect-ruby-sdk/blob/master/docs/CreateOrderRequestLineItem.md",
    "G4": "third-party code comments pasting Square's CreatePayment error bodies (NOT_FOUND "
          "'Card nonce not found', category INVALID_REQUEST_ERROR, HTTP 404)",
    "F13": "https://developer.squareup.com/forums/t/webhook-notification/4287",
    "G1": "public GitHub design notes recording a live Square sandbox spike (StockSmith, 2026-09-29)",
    "G3": "third-party test suites asserting sandbox nonce outcomes (Drupal commerce_square, "
          "activemerchant, a Django shop's tests); third-party constants copied from S18 that list "
          "every test token",
    # Order pricing (src/orderfsm/pricing.py)
    "P1": "https://developer.squareup.com/docs/orders-api/price-adjustments",
    "P2": "https://developer.squareup.com/docs/orders-api/discounts",
    "P3": "https://developer.squareup.com/docs/orders-api/taxes",
    "P4": "https://developer.squareup.com/docs/orders-api/service-charges",
    "P5": "https://developer.squareup.com/docs/orders-api/apply-taxes-and-discounts",
    "P6": "api.json examples: CreateOrderRequest/CreateOrderResponse, CalculateOrderRequest/"
          "CalculateOrderResponse (Square-Version 2025-08-20)",
    "F18": "https://developer.squareup.com/forums/t/order-calculation-with-discount-and-service-charges/16894",
}


class _Lenient(dict):
    """Template values; a placeholder with no value is left as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True, slots=True)
class RuleError:
    """The exact error a rule produces. ``detail`` and ``field`` may hold ``{placeholders}``.

    ``wording`` says how sure we are of the text: SEEN (recorded traffic), DOC (Square's own
    description) or GUESS (no source; the simulator's wording).
    """

    status: int
    category: str
    code: str
    detail: str
    field: str | None = None
    wording: str = "GUESS"

    def render(self, **ctx: Any) -> ErrorDetail:
        values = _Lenient(ctx)
        detail = self.detail.format_map(values) if "{" in self.detail else self.detail
        fld = self.field
        if fld is not None and "{" in fld:
            fld = fld.format_map(values)
        if "field" in ctx:
            fld = ctx["field"]
        return ErrorDetail(self.category, self.code, detail, fld)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "category": self.category,
            "code": self.code,
            "detail": self.detail,
            "field": self.field,
            "wording": self.wording,
        }


@dataclass(frozen=True, slots=True)
class Variant:
    """Behaviour that sources disagree on: named values and the default."""

    name: str
    values: Mapping[str, str]  # value -> what it means and who says so
    default: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values), "default": self.default,
                "meanings": dict(self.values)}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    resource: str
    statement: str
    sources: tuple[str, ...]
    confidence: Confidence
    error: RuleError | None = None
    variant: Variant | None = None
    example: str = ""

    @property
    def source_urls(self) -> list[str]:
        return [SOURCES.get(s, s) for s in self.sources]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "statement": self.statement,
            "source": self.source_urls,
            "confidence": str(self.confidence),
            "error": self.error.to_json() if self.error else None,
            "variants": self.variant.to_json() if self.variant else None,
            "example": self.example,
        }


IRE = "INVALID_REQUEST_ERROR"
C, R, I = Confidence.CONFIRMED, Confidence.REPORTED, Confidence.INFERRED


def _e(status: int, category: str, code: str, detail: str, field: str | None = None,
       wording: str = "GUESS") -> RuleError:
    return RuleError(status, category, code, detail, field, wording)


_RULES: list[Rule] = [
    # ------------------------------------------------------------------ orders
    Rule("order.cancel_after_payment", "order",
         "An order with a processed (captured) payment cannot be CANCELED, even after the payment "
         "is fully refunded. Whether canceling every fulfillment first lifts the ban is disputed.",
         ("F1", "G1"), R,
         _e(400, IRE, "BAD_REQUEST", "Orders cannot be canceled after payments have been processed.",
            "order.state", "SEEN"),
         Variant("cancel_after_payment", {
             "after_fulfillments_canceled": "allowed once the order has fulfillments and every one "
                                            "is CANCELED (last post of the seed thread, F1)",
             "never": "never allowed once a payment was captured (Square staff answer in F1; G1)",
         }, "after_fulfillments_canceled"),
         "Pay an order with a fulfillment, refund the payment, then PUT state=CANCELED."),
    Rule("order.fulfillment_added_after_payment", "order",
         "Under cancel_after_payment=after_fulfillments_canceled, only fulfillments the order had "
         "before a payment was processed lift the ban: adding a fulfillment to a paid order and "
         "canceling it leaves the order uncancelable (the cancel fails with "
         "order.cancel_after_payment). No source reports the reported workaround working for a "
         "fulfillment added after payment; Square staff say a paid order cannot be canceled, and "
         "a fulfillment added to a paid order shows the order on the POS as work to do.",
         ("F1", "S4"), I,
         example="Capture part of a fulfillment-less order, add a pickup, cancel the pickup, "
                 "then PUT state=CANCELED."),
    Rule("order.cancel_open_fulfillments", "order",
         "Canceling an order whose fulfillments are not terminal fails unless the same UpdateOrder "
         "moves every fulfillment to a terminal state.",
         ("G1",), R,
         _e(400, IRE, "INVALID_VALUE",
            "All fulfillments must be in a terminal state (COMPLETED, CANCELED or FAILED) to cancel "
            "the order.", "order.state", "SEEN"),
         Variant("cancel_open_fulfillments", {
             "reject": "reject with INVALID_VALUE unless the request cancels them (G1 sandbox spike)",
             "cascade": "cancel the open fulfillments along with the order",
         }, "reject"),
         "Create an unpaid order with a PROPOSED pickup, then PUT state=CANCELED alone."),
    Rule("order.terminal_frozen", "order",
         "COMPLETED and CANCELED orders cannot be updated.",
         ("S1",), C,
         _e(400, IRE, "BAD_REQUEST", "Orders in state {state} cannot be updated.", "order.state"),
         example="Complete an order, then send any UpdateOrder."),
    Rule("order.version_mismatch", "order",
         "UpdateOrder must carry the order's current version.",
         ("S3", "F2"), C,
         _e(400, IRE, "VERSION_MISMATCH",
            "Supplied version {given} does not match the current version {current} of order "
            "{order_id}.", "order.version", "SEEN"),
         example="Update an order twice with the same version."),
    Rule("order.version_required", "order",
         "UpdateOrder without order.version is rejected.",
         ("F2",), R,
         _e(400, IRE, "BAD_REQUEST", "Missing required parameter.", "order.version", "SEEN"),
         example="PUT /v2/orders/{id} with an order that has no version."),
    Rule("order.version_increments", "order",
         "A new order has version 1; each accepted mutation (update, payment applied, PayOrder) adds "
         "exactly 1. Only the UpdateOrder increment is documented (S1 Order.version, S3); that a "
         "payment or PayOrder adds exactly 1 is inferred (the PayOrder example ends at version 4, "
         "and F3 reports asynchronous bumps).", ("S1", "S3", "F3"), I,
         example="Create an order (version 1) and update it (version 2)."),
    Rule("order.line_items_locked", "order",
         "Line items cannot be added, changed or cleared once a payment on the order is processed.",
         ("F3",), R,
         _e(400, IRE, "BAD_REQUEST", "LineItems cannot be modified for finalized tenders.",
            "order.line_items", "SEEN"),
         example="Pay an order, then add a line item."),
    Rule("order.pricing_locked", "order",
         "Taxes, discounts and service charges, which price the line items, are locked the same way "
         "once a payment is processed. F3 only shows line items; extending the lock (and its error "
         "text) to the lists that change the total is inferred.",
         ("F3",), I,
         _e(400, IRE, "BAD_REQUEST", "LineItems cannot be modified for finalized tenders.",
            "order.{list_name}", "GUESS"),
         example="Pay an order, then add an order-level discount."),
    Rule("order.fulfillment_locked_when_paid", "order",
         "A fulfillment cannot be removed (fields_to_clear or an explicit null) from an order once "
         "a payment is processed; it can still be CANCELED. The fulfillments guide says most "
         "fulfillment fields become immutable as the state advances; removal after payment is the "
         "strictest reading, chosen here. No error body is published.",
         ("S4", "S2"), I,
         _e(400, IRE, "BAD_REQUEST",
            "Fulfillments cannot be removed from an order after payments have been processed; "
            "cancel the fulfillment instead.", "{field}"),
         example="Pay an order with a pickup, then UpdateOrder with fields_to_clear "
                 "['fulfillments[uid]']."),
    Rule("order.line_item_needs_name_and_price", "order",
         "A line item without catalog_object_id is an ad hoc item and needs both name and "
         "base_price_money (\"Line items can either reference objects from the merchant's catalog, "
         "or can alternatively specify a name and price instead\"; \"base_price_money is required "
         "for ad hoc line items\", S27). Those words come from the SDK docs of the older "
         "CreateOrderRequestLineItem type; the spec of OrderLineItem no longer states it, so the "
         "requirement is inferred for today's API. No error body is published.",
         ("S27", "S1"), I,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set",
            "order.line_items[{index}].{name}", "GUESS"),
         example="CreateOrder with a line item that has only a quantity."),
    Rule("order.draft_not_payable", "order",
         "DRAFT orders cannot be paid.", ("S1",), C,
         _e(400, IRE, "BAD_REQUEST", "Orders in state DRAFT cannot be paid.", "order_id"),
         example="Create a DRAFT order and CreatePayment with its order_id."),
    Rule("order.draft_not_fulfillable", "order",
         "Fulfillments of a DRAFT order cannot progress (only PROPOSED or CANCELED).", ("S1",), C,
         _e(400, IRE, "BAD_REQUEST", "Fulfillments of DRAFT orders cannot be fulfilled.",
            "order.fulfillments[{index}].state"),
         example="Create a DRAFT order with a pickup and move the pickup to RESERVED."),
    Rule("order.draft_opens", "order",
         "A DRAFT order becomes OPEN through UpdateOrder state=OPEN; the other way is not allowed.",
         ("S1", "S23"), I,
         _e(400, IRE, "INVALID_VALUE", "An order cannot move from {old} to {new}.", "order.state"),
         example="Update an OPEN order to state=DRAFT."),
    Rule("order.closed_not_payable", "order",
         "COMPLETED and CANCELED orders accept no payments.", ("S1",), I,
         _e(400, IRE, "BAD_REQUEST", "Orders in state {state} cannot be paid.", "order_id"),
         example="Cancel an order, then CreatePayment with its order_id."),
    Rule("order.complete_requires_terminal_fulfillments", "order",
         "An order cannot be COMPLETED while a fulfillment is PROPOSED, RESERVED or PREPARED.",
         ("S1",), C,
         _e(400, IRE, "BAD_REQUEST",
            "An order cannot be marked as COMPLETED before all fulfillments are COMPLETED, "
            "CANCELED, or FAILED.", "order.state", "DOC"),
         example="Pay an order with a PROPOSED pickup, then PUT state=COMPLETED alone."),
    Rule("order.complete_requires_payment", "order",
         "An order cannot be COMPLETED while money is still due (completed orders are fully paid).",
         ("S1",), I,
         _e(400, IRE, "BAD_REQUEST", "Orders cannot be completed before they are fully paid.",
            "order.state"),
         example="Create an order with a line item and PUT state=COMPLETED."),
    Rule("order.one_fulfillment", "order",
         "At most one fulfillment can be added to an order through the API.", ("S1", "S4", "F16"), C,
         _e(400, IRE, "BAD_REQUEST", "Orders cannot be created with more than one fulfillment.",
            "order.fulfillments", "SEEN"),
         example="CreateOrder with two fulfillments."),
    Rule("order.location_required", "order",
         "An order needs a location_id.", ("S1",), C,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set", "order.location_id", "SEEN"),
         example="CreateOrder without order.location_id."),
    Rule("order.sparse_update", "order",
         "UpdateOrder merges sparsely: list entries are matched by uid (a new uid adds one), "
         "fields_to_clear and explicit nulls clear fields.", ("S3", "S21"), C,
         example="Update one line item's note by uid and clear another with fields_to_clear."),
    Rule("order.not_found", "order",
         "Unknown order ids (or another merchant's) answer NOT_FOUND.", ("S12",), C,
         _e(404, IRE, "NOT_FOUND", "Could not find order with id: {id}", "order_id"),
         example="GET /v2/orders/nope."),
    Rule("order.search_location_required", "order",
         "SearchOrders must name at least one location (\"Your request must specify at least one "
         "location to search\"). No error body is published.", ("S25", "S1"), C,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set", "location_ids", "GUESS"),
         example="SearchOrders with no location_ids."),
    Rule("order.search_closed_at_open", "order",
         "SearchOrders cannot sort by CLOSED_AT while its state filter includes OPEN orders, which "
         "have no closed_at (the search-orders guide: \"returns an error\"). No error body is "
         "published.", ("S25",), C,
         _e(400, IRE, "INVALID_VALUE",
            "Orders in state OPEN have no closed_at; sort by CLOSED_AT only with a state filter of "
            "COMPLETED or CANCELED orders.", "query.sort.sort_field"),
         example="SearchOrders with states [OPEN, COMPLETED] sorted by CLOSED_AT."),
    Rule("order.clone_is_draft", "order",
         "CloneOrder creates a DRAFT order with only the core fields (line items, taxes, "
         "discounts) copied.", ("S1",), C,
         example="Clone a paid order and read its state."),
    # --------------------------------------------------------------- pay order
    Rule("pay_order.amount_mismatch", "order",
         "PayOrder: the listed payments must add up to the order's total_money (\"The payment "
         "total must match the order total\"); an order that totals 0 is paid with an empty "
         "payment_ids, and an empty payment_ids on an order that is not zero is rejected.",
         ("S1", "S2"), C,
         _e(400, IRE, "BAD_REQUEST",
            "The total of the payments ({paid}) does not match the order total ({total}).",
            "payment_ids"),
         example="PayOrder a 1000 order with one APPROVED 600 payment."),
    Rule("pay_order.payment_not_approved", "order",
         "PayOrder: every listed payment must be APPROVED (delayed capture).", ("S1", "S2"), C,
         _e(400, IRE, "BAD_REQUEST", "Payment {payment_id} is {status}, not APPROVED.", "payment_ids"),
         example="PayOrder listing a COMPLETED payment."),
    Rule("pay_order.payment_wrong_order", "order",
         "PayOrder: every listed payment must reference the order.", ("S1", "S2"), C,
         _e(400, IRE, "BAD_REQUEST", "Payment {payment_id} does not belong to order {order_id}.",
            "payment_ids"),
         example="PayOrder listing a payment created for another order."),
    Rule("pay_order.version_mismatch", "order",
         "PayOrder with order_version pays that version only.", ("S1",), I,
         _e(400, IRE, "VERSION_MISMATCH",
            "Supplied version {given} does not match the current version {current} of order "
            "{order_id}.", "order_version"),
         example="PayOrder with an old order_version."),
    Rule("pay_order.cash_payment", "order",
         "The documented CASH flow: CreatePayment with source_id CASH, the order_id and "
         "autocomplete=false gives an APPROVED payment (no delay window: that is card only), and "
         "PayOrder captures it. The guide names the two calls (S2); that the cash payment waits "
         "APPROVED is inferred from S10 (APPROVED \"has no impact\" for cash) and reference Q6.",
         ("S2", "S10"), I,
         example="CreatePayment(CASH, order_id, autocomplete=false), then PayOrder with its id."),
    Rule("pay_order.settles", "order",
         "PayOrder captures the listed payments, cancels the other APPROVED payments on the order, "
         "and completes the order only when it has no fulfillments.", ("S1", "S2"), C,
         example="PayOrder an order with a pickup: it stays OPEN and is paid."),
    Rule("order.catalog_object_not_found", "order",
         "A catalog_object_id on a line item (variation), modifier, tax or discount must name a "
         "live object of that type (or, with catalog_version, the object at that version).",
         ("CAT7", "S1"), R,
         _e(404, IRE, "NOT_FOUND", "{kind} with catalog object ID `{id}` not found.", "{field}",
            "SEEN"),
         example="CreateOrder with a line item catalog_object_id 'NOPE'."),
    Rule("order.catalog_not_at_location", "order",
         "A catalog object used on an order must be present at the order's location "
         "(present_at_all_locations, present_at_location_ids, absent_at_location_ids).",
         ("S1", "CAT1"), I,
         _e(400, IRE, "INVALID_VALUE",
            "Catalog object `{id}` is not present at location `{location_id}`.", "{field}"),
         example="Order a variation with present_at_all_locations=false at the main location."),
    Rule("order.catalog_variable_price", "order",
         "A line item for a VARIABLE_PRICING variation (or one without a price) needs "
         "base_price_money in the request; otherwise the line takes the variation's name, "
         "item name, price (a location override first) and catalog_version. A price in the "
         "request overrides the catalog price.", ("CAT8", "S1"), R,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER",
            "Item variation `{id}` has variable pricing; base_price_money must be set.",
            "{field}"),
         example="Order a VARIABLE_PRICING variation without base_price_money."),
    Rule("order.catalog_variable_discount", "order",
         "A catalog discount of type VARIABLE_PERCENTAGE or VARIABLE_AMOUNT needs the percentage "
         "or amount_money in the order; fixed catalog discounts and taxes bring their own.",
         ("S1",), I,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER",
            "Discount `{id}` has a variable value that the order must set.", "{field}"),
         example="CreateOrder with a VARIABLE_PERCENTAGE catalog discount and no percentage."),
    Rule("order.auto_apply_taxes", "order",
         "With pricing_options.auto_apply_taxes, each catalog line item gets its item's enabled "
         "taxes (tax_ids) as LINE_ITEM taxes marked auto_applied, unless the line's "
         "pricing_blocklists.blocked_taxes names the tax (catalog id or uid).", ("CAT3",), C,
         example="Order an item with tax_ids and auto_apply_taxes=true."),
    Rule("order.auto_apply_discounts", "order",
         "With pricing_options.auto_apply_discounts, every live pricing rule whose match product "
         "set is met (products, categories, quantities, dates, time periods, minimum subtotal) "
         "adds its discount, with pricing_rule_id, to the matched lines that the exclude set and "
         "the lines' pricing_blocklists.blocked_discounts leave.", ("CAT4",), C,
         example="A pricing rule over a product set, and an order for that product."),
    # ---------------------------------------------------------------- payments
    Rule("payment.autocomplete_order", "payment",
         "A captured payment that fully pays an OPEN order without fulfillments: whether the order "
         "becomes COMPLETED is disputed.", ("F5", "F6", "S2"), R,
         variant=Variant("autocomplete_order_on_payment", {
             "complete": "the order becomes COMPLETED (F6, 2026, API 2026-01-22)",
             "leave_open": "the order stays OPEN (F5, staff-reviewed answer)",
         }, "complete"),
         example="CreatePayment(order_id, autocomplete=true) for a fulfillment-less order."),
    Rule("payment.order_total_mismatch", "payment",
         "A payment for an order must not exceed what is due, and an autocompleted payment must "
         "pay exactly what is due.", ("S2", "F12"), C,
         _e(400, IRE, "BAD_REQUEST", "The payment total does not match the order total.",
            "amount_money", "SEEN"),
         example="CreatePayment(order_id) for 999 on a 1000 order."),
    Rule("payment.already_captured", "payment",
         "Complete, cancel and update work only on APPROVED payments; a COMPLETED one answers "
         "DELAYED_TRANSACTION_CAPTURED.", ("S1", "S9"), C,
         _e(400, IRE, "DELAYED_TRANSACTION_CAPTURED",
            "The application tried to capture a delayed-capture payment that was already captured.",
            None, "DOC"),
         example="Complete a payment twice."),
    Rule("payment.already_canceled", "payment",
         "A CANCELED payment cannot be completed, canceled or updated.", ("S1", "S9"), C,
         _e(400, IRE, "DELAYED_TRANSACTION_CANCELED",
            "The application tried to cancel a delayed-capture payment that was already cancelled.",
            None, "DOC"),
         example="Cancel an APPROVED payment, then complete it."),
    Rule("payment.expired", "payment",
         "A payment voided at delayed_until cannot be completed, canceled or updated any more.",
         ("S1", "S9"), C,
         _e(400, IRE, "DELAYED_TRANSACTION_EXPIRED",
            "The application tried to update a delayed-capture payment that has expired.",
            None, "DOC"),
         example="Advance the clock past delayed_until, then complete the payment."),
    Rule("payment.already_failed", "payment",
         "A FAILED payment cannot be completed, canceled or updated.", ("S1",), C,
         _e(400, IRE, "DELAYED_TRANSACTION_FAILED",
            "The application tried to update a delayed-capture payment that failed.", None, "DOC"),
         example="Complete a declined payment."),
    Rule("payment.pending_locked", "payment",
         "A PENDING (bank transfer) payment settles by itself; it cannot be completed, canceled "
         "or updated (the ACH guide: a pending bank payment completes or fails on its own).",
         ("S20",), C,
         _e(400, IRE, "BAD_REQUEST", "Payment {payment_id} is PENDING and cannot be changed.", None),
         example="Complete a bnon:bank-nonce-ok payment."),
    Rule("payment.version_mismatch", "payment",
         "CompletePayment and UpdatePayment with a stale version_token fail.", ("S1",), C,
         _e(400, IRE, "VERSION_MISMATCH",
            "The version token {given} does not match the current version of payment {payment_id}.",
            "version_token"),
         example="Update a payment, then complete it with the old version_token."),
    Rule("payment.delayed_action", "payment",
         "An APPROVED payment still unresolved at delayed_until gets its delay_action (default "
         "CANCEL) applied.", ("S1", "S9"), C,
         example="CreatePayment(autocomplete=false, delay_duration=PT1M) and advance 61 s."),
    Rule("payment.delay_duration_bounds", "payment",
         "delay_duration must be at least 1 minute and at most the default (P7D card not present, "
         "PT36H card present).", ("S1", "F9"), R,
         _e(400, IRE, "INVALID_VALUE",
            "The delay duration must be between 1 minute and {maximum}.", "delay_duration"),
         example="CreatePayment(autocomplete=false, delay_duration=PT30S)."),
    Rule("payment.delay_needs_delayed_capture", "payment",
         "delay_duration and delay_action apply only when autocomplete is false (spec: \"can only "
         "be set for a delayed capture payment\"). Rejecting rather than ignoring them is this "
         "server's choice; the Mobile Payments SDK says it ignores them (S26).", ("S1", "S26"), C,
         _e(400, IRE, "INVALID_VALUE",
            "`{param}` can only be set when `autocomplete` is false.", "{param}"),
         example="CreatePayment(autocomplete=true, delay_action=COMPLETE)."),
    Rule("payment.card_declined", "payment",
         "cnon:card-nonce-declined and ccof:customer-card-id-declined are declined with "
         "GENERIC_DECLINE; the payment is recorded as FAILED and returned beside the error.",
         ("S18", "S13", "G3"), R,
         _e(400, "PAYMENT_METHOD_ERROR", "GENERIC_DECLINE", "Authorization error: 'GENERIC_DECLINE'",
            None, "SEEN"),
         example="CreatePayment(source_id='cnon:card-nonce-declined')."),
    Rule("payment.cvv_failure", "payment",
         "cnon:card-nonce-rejected-cvv is declined with CVV_FAILURE.", ("S18", "S13", "G3"), R,
         _e(400, "PAYMENT_METHOD_ERROR", "CVV_FAILURE", "Authorization error: 'CVV_FAILURE'", None,
            "SEEN"),
         example="CreatePayment(source_id='cnon:card-nonce-rejected-cvv')."),
    Rule("payment.address_verification_failure", "payment",
         "cnon:card-nonce-rejected-postalcode and ccof:customer-card-id-rejected-postalcode are "
         "declined with ADDRESS_VERIFICATION_FAILURE.",
         ("S18", "S13", "G3"), R,
         _e(400, "PAYMENT_METHOD_ERROR", "ADDRESS_VERIFICATION_FAILURE",
            "Authorization error: 'ADDRESS_VERIFICATION_FAILURE'", None, "DOC"),
         example="CreatePayment(source_id='cnon:card-nonce-rejected-postalcode')."),
    Rule("payment.invalid_expiration", "payment",
         "cnon:card-nonce-rejected-expiration and ccof:customer-card-id-rejected-expiration are "
         "declined with INVALID_EXPIRATION.",
         ("S18", "S13", "G3"), R,
         _e(400, "PAYMENT_METHOD_ERROR", "INVALID_EXPIRATION",
            "Authorization error: 'INVALID_EXPIRATION'", None, "DOC"),
         example="CreatePayment(source_id='cnon:card-nonce-rejected-expiration')."),
    Rule("payment.card_token_used", "payment",
         "cnon:card-nonce-already-used is refused with CARD_TOKEN_USED, an INVALID_REQUEST_ERROR "
         "(spec ErrorCode category). The nonce never reaches a card network, so no FAILED payment "
         "is recorded. The body was seen on the older Charge endpoint and in the In-App Payments "
         "plugin (reference §11).", ("S18", "S1", "G3"), R,
         _e(400, IRE, "CARD_TOKEN_USED", "Card nonce already used; please request new nonce.",
            None, "SEEN"),
         example="CreatePayment(source_id='cnon:card-nonce-already-used')."),
    Rule("payment.verification_required", "payment",
         "ccof:customer-card-id-requires-verification is a card that needs buyer verification "
         "(SCA): without a verification_token it is declined with "
         "CARD_DECLINED_VERIFICATION_REQUIRED; with one it succeeds.", ("S18", "G3", "S1"), R,
         _e(400, "PAYMENT_METHOD_ERROR", "CARD_DECLINED_VERIFICATION_REQUIRED",
            "Authorization error: 'CARD_DECLINED_VERIFICATION_REQUIRED'", None, "SEEN"),
         example="CreatePayment(source_id='ccof:customer-card-id-requires-verification')."),
    Rule("payment.gift_card_insufficient_funds", "payment",
         "cnon:gift-card-nonce-insufficient-funds is declined with INSUFFICIENT_FUNDS. The nonce is "
         "on the sandbox page; its code is inferred from the spec's ErrorCode description.",
         ("S18", "S1", "S13"), I,
         _e(400, "PAYMENT_METHOD_ERROR", "INSUFFICIENT_FUNDS",
            "Authorization error: 'INSUFFICIENT_FUNDS'", None, "DOC"),
         example="CreatePayment(source_id='cnon:gift-card-nonce-insufficient-funds')."),
    Rule("payment.gift_card_insufficient_permission", "payment",
         "cnon:gift-card-nonce-insufficient-permission is declined with INSUFFICIENT_PERMISSIONS "
         "(\"Square may limit which merchants are allowed to receive gift card payments\"). The "
         "nonce is on the sandbox page; its code is inferred from the spec's ErrorCode text.",
         ("S18", "S1"), I,
         _e(400, "PAYMENT_METHOD_ERROR", "INSUFFICIENT_PERMISSIONS",
            "Authorization error: 'INSUFFICIENT_PERMISSIONS'", None, "GUESS"),
         example="CreatePayment(source_id='cnon:gift-card-nonce-insufficient-permission')."),
    Rule("payment.card_nonce_not_found", "payment",
         "A cnon: value that is not one of the sandbox test tokens is not a nonce Square issued: "
         "CreatePayment answers NOT_FOUND and records nothing.", ("G4", "S18"), R,
         _e(404, IRE, "NOT_FOUND", "Card nonce not found", None, "SEEN"),
         example="CreatePayment(source_id='cnon:made-up')."),
    Rule("payment.card_on_file_not_found", "payment",
         "A ccof: value that is not one of the sandbox's test cards on file names no stored card: "
         "NOT_FOUND, nothing recorded. No body is published for it.", ("S18",), I,
         _e(404, IRE, "NOT_FOUND", "Card with id {card_id} not found.", "source_id"),
         example="CreatePayment(source_id='ccof:made-up')."),
    Rule("payment.invalid_source", "payment",
         "source_id must be a card nonce (cnon:), a card on file (ccof:), a bank nonce (bnon:), "
         "CASH or EXTERNAL (S1). The error body was seen on CreateCard, not CreatePayment; using it "
         "here is inferred.", ("S1",), I,
         _e(400, IRE, "INVALID_CARD_DATA", "Invalid card data.", "source_id", "GUESS"),
         example="CreatePayment(source_id='tok_visa')."),
    Rule("payment.amount_zero", "payment",
         "CreatePayment cannot take an amount_money of 0, whatever the tip; a zero-total order is "
         "paid with PayOrder and no payment_ids (Square staff in F17). The forum shows the SDK's "
         "message \"total requested amount $0 is below the minimum allowed\" but not the code, "
         "so the code is a guess.", ("F17", "S2"), R,
         _e(400, IRE, "VALUE_TOO_LOW", "total requested amount $0 is below the minimum allowed",
            "amount_money.amount", "SEEN"),
         example="CreatePayment(amount_money={'amount': 0, 'currency': 'USD'})."),
    Rule("payment.ach_autocomplete_required", "payment",
         "\"For ACH payments, autocomplete must always be true\": a bnon: payment with "
         "autocomplete=false is rejected, never turned into an authorization. No error body is "
         "published.", ("S20",), C,
         _e(400, IRE, "INVALID_VALUE", "For ACH payments, `autocomplete` must be true.",
            "autocomplete"),
         example="CreatePayment(source_id='bnon:bank-nonce-ok', autocomplete=false)."),
    Rule("payment.delay_card_only", "payment",
         "delay_duration and delay_action are supported for card payments only (spec); CASH, "
         "EXTERNAL and bank payments that send them are rejected. No error body is published.",
         ("S1",), C,
         _e(400, IRE, "INVALID_VALUE", "`{param}` is only supported for card payments.", "{param}"),
         example="CreatePayment(source_id='CASH', autocomplete=false, delay_action='COMPLETE')."),
    Rule("payment.app_fee_too_high", "payment",
         "app_fee_money cannot be more than 90% of the payment's total (amount plus tip).",
         ("S1",), C,
         _e(400, "PAYMENT_METHOD_ERROR", "INVALID_FEES", "The app_fee_money on a payment is too high.",
            "app_fee_money.amount", "DOC"),
         example="CreatePayment of 1000 with app_fee_money 901."),
    Rule("payment.request_checked_before_card", "payment",
         "Request checks (location, order, amounts, fees, delay fields) run before the card is "
         "tried, so a bad request is never reported as a decline and records no FAILED payment. "
         "Square documents no order of checks; this is inferred from how the declines are "
         "described (authorization errors from the card network).", ("S13", "S1"), I,
         example="CreatePayment(source_id='cnon:card-nonce-declined', order_id='nope')."),
    Rule("payment.cash_details_required", "payment",
         "CASH payments need cash_details.buyer_supplied_money of at least the total; EXTERNAL "
         "payments need external_details with type and source.", ("S1",), C,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set", "{field}", "SEEN"),
         example="CreatePayment(source_id='CASH') without cash_details."),
    Rule("payment.amount_required", "payment",
         "CreatePayment needs amount_money (the spec leaves it optional; a charge cannot work "
         "without it).", ("S1",), I,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set", "amount_money", "SEEN"),
         example="CreatePayment without amount_money."),
    Rule("payment.not_found", "payment",
         "Unknown payment ids answer NOT_FOUND.", ("S12",), C,
         _e(404, IRE, "NOT_FOUND", "Could not find payment with id: {id}", None, "DOC"),
         example="GET /v2/payments/nope."),
    Rule("payment.cancel_by_idempotency_key", "payment",
         "CancelPaymentByIdempotencyKey cancels the APPROVED payment created with that key and is a "
         "successful no-op when none matches.", ("S1",), C,
         example="POST /v2/payments/cancel with an unknown key."),
    Rule("payment.bank_settles", "payment",
         "A bank transfer payment starts PENDING and settles to COMPLETED (S20); the bank test "
         "tokens other than bnon:bank-nonce-ok end FAILED instead. That it takes about a minute in "
         "the sandbox comes from a forum post (F8).", ("S20", "F8", "S18"), R,
         example="CreatePayment(source_id='bnon:bank-nonce-ok') and advance the clock 60 s."),
    # ------------------------------------------------------------------ refunds
    Rule("refund.return_order", "refund",
         "A refund creates a new return order (refund.order_id) whose returns[0].source_order_id "
         "is the original order; the payment gains refunded_money and refund_ids and stays "
         "COMPLETED.", ("S5", "S6", "S7"), C,
         example="Refund a payment and retrieve refund.order_id."),
    Rule("refund.original_order_unchanged", "refund",
         "A refund leaves the original order's state, version and net_amount_due_money unchanged.",
         ("F1", "G1"), R,
         example="Refund the payment of an OPEN order: it stays OPEN."),
    Rule("refund.payment_needs_completion", "refund",
         "Only COMPLETED payments can be refunded; APPROVED ones must be canceled or completed.",
         ("S7", "S8", "S1"), C,
         _e(400, "REFUND_ERROR", "REFUND_ERROR_PAYMENT_NEEDS_COMPLETION",
            "The payment is not refundable because the payment is approved and needs to be "
            "completed first before the refund is issued.", "payment_id", "DOC"),
         example="Refund an APPROVED payment."),
    Rule("refund.payment_not_refundable", "refund",
         "CANCELED, FAILED and PENDING payments cannot be refunded.", ("S7", "S1"), C,
         _e(400, "REFUND_ERROR", "PAYMENT_NOT_REFUNDABLE",
            "The payment is not refundable because it is {status}.", "payment_id"),
         example="Refund a CANCELED payment."),
    Rule("refund.amount_exceeds", "refund",
         "Refunds never exceed the payment's total_money. The spec counts previously completed "
         "refunds; counting PENDING refunds as well (so concurrent refunds cannot overshoot) is "
         "inferred.", ("S1", "S7"), I,
         _e(400, "REFUND_ERROR", "REFUND_AMOUNT_INVALID",
            "The requested refund amount exceeds the amount available to refund.",
            "amount_money.amount", "SEEN"),
         example="Refund 1001 of a 1000 payment."),
    Rule("refund.amount_positive", "refund",
         "A refund amount must be greater than zero.", ("S1",), I,
         _e(400, IRE, "VALUE_TOO_LOW", "`amount_money.amount` must be greater than 0.",
            "amount_money.amount", "GUESS"),
         example="Refund 0."),
    Rule("refund.max_count", "refund",
         "At most 20 refunds per payment.", ("S7",), C,
         _e(400, "REFUND_ERROR", "PAYMENT_NOT_REFUNDABLE",
            "The payment already has the maximum of 20 refunds.", "payment_id"),
         example="Refund 1 cent 21 times."),
    Rule("refund.too_old", "refund",
         "Payments older than one year cannot be refunded.", ("S7", "S1"), C,
         _e(400, "REFUND_ERROR", "PAYMENT_NOT_REFUNDABLE",
            "The payment is not refundable. The payment is too old to be refunded.", "payment_id",
            "DOC"),
         example="Advance the clock 366 days, then refund."),
    Rule("refund.after_failed", "refund",
         "After a refund of a payment FAILED, no further refunds of it are allowed.", ("S8",), C,
         _e(400, "REFUND_ERROR", "PAYMENT_NOT_REFUNDABLE",
            "The payment is not refundable because a previous refund failed.", "payment_id"),
         example="Fail a refund through the control API, then refund again."),
    Rule("refund.version_mismatch", "refund",
         "RefundPayment with a stale payment_version_token fails.", ("S1",), C,
         _e(400, IRE, "VERSION_MISMATCH",
            "The version token {given} does not match the current version of payment {payment_id}.",
            "payment_version_token"),
         example="Refund twice with the version token read before the first refund."),
    Rule("refund.already_pending", "refund",
         "Whether a refund may start while another refund of the payment is PENDING is disputed.",
         ("S1",), I,
         _e(400, "REFUND_ERROR", "REFUND_ALREADY_PENDING", "The payment already has a pending refund.",
            "payment_id", "DOC"),
         Variant("refund_while_pending", {
             "allow": "concurrent partial refunds are accepted (up to 20 per payment, S7)",
             "reject": "a second refund while one is PENDING fails (the REFUND_ALREADY_PENDING code)",
         }, "allow"),
         example="With refund_while_pending=reject, refund twice before settlement."),
    Rule("refund.settlement", "refund",
         "Card refunds start PENDING and settle to COMPLETED (REJECTED or FAILED by the processor).",
         ("S1", "S16", "S17"), C,
         example="Refund a card payment and advance the clock past the settle delay."),
    Rule("refund.cash_settles_at_once", "refund",
         "Refunds of CASH and EXTERNAL payments move no money through Square, so they are "
         "COMPLETED at once. Seller help says such refunds complete automatically; nothing in the "
         "developer docs or spec says so (reference Q16): inferred.", ("S1",), I,
         example="Refund a CASH payment: the refund is COMPLETED in the response."),
    Rule("refund.not_pending", "refund",
         "Only a PENDING refund can settle, be rejected or fail.", ("S1",), I,
         _e(400, IRE, "BAD_REQUEST", "Refund {refund_id} is {status}; only PENDING refunds change.",
            None),
         example="Settle a refund twice through the control API."),
    Rule("refund.not_found", "refund",
         "Unknown refund ids answer NOT_FOUND.", ("S12",), C,
         _e(404, IRE, "NOT_FOUND", "Could not find refund with id: {id}", None, "DOC"),
         example="GET /v2/refunds/nope."),
    # ------------------------------------------------------------- fulfillment
    Rule("fulfillment.forward_only", "fulfillment",
         "Fulfillments move forward PROPOSED -> RESERVED -> PREPARED -> COMPLETED (skips allowed); "
         "backward moves are rejected.", ("S1", "F4"), I,
         _e(400, IRE, "INVALID_VALUE", "A fulfillment cannot move from {old} to {new}.",
            "order.fulfillments[{index}].state"),
         example="Move a PREPARED pickup back to RESERVED."),
    Rule("fulfillment.terminal_absorbs", "fulfillment",
         "COMPLETED, CANCELED and FAILED fulfillments never change state again. The spec calls "
         "them terminal states but never says a move out of them is rejected; that is inferred.",
         ("S1",), I,
         _e(400, IRE, "INVALID_VALUE",
            "Fulfillment {uid} is {old}, a terminal state, and cannot move to {new}.",
            "order.fulfillments[{index}].state"),
         example="Move a CANCELED pickup to PROPOSED."),
    Rule("fulfillment.cancel_any_time", "fulfillment",
         "Any non-terminal fulfillment can be CANCELED or FAILED, on paid orders too.",
         ("S1", "F1"), R,
         example="Refund a paid order, then cancel its pickup."),
    Rule("fulfillment.complete_requires_payment", "fulfillment",
         "Whether a fulfillment can be COMPLETED before the order is paid is disputed: the "
         "pay-for-orders guide says not until after PayOrder (S2), while the spec's Fulfillment "
         "reference says fulfillments can be created and completed independently before order "
         "completion (S1). The default follows the guide.", ("S2", "S1"), I,
         _e(400, IRE, "BAD_REQUEST", "Fulfillments cannot be completed before the order is paid.",
            "order.fulfillments[{index}].state"),
         Variant("fulfillment_complete_before_payment", {
             "reject": "rejected until PayOrder or a payment covers the order (S2)",
             "allow": "allowed; fulfillments complete independently (the spec's Fulfillment "
                      "reference, S1)",
         }, "reject"),
         example="Move the pickup of an unpaid order to COMPLETED."),
    Rule("fulfillment.details_required", "fulfillment",
         "Each fulfillment type needs its own details object: pickup_details, shipment_details or "
         "delivery_details.", ("S1",), C,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set",
            "order.fulfillments[{index}].{details}", "SEEN"),
         example="CreateOrder with a PICKUP fulfillment and no pickup_details."),
    Rule("fulfillment.type_required", "fulfillment",
         "A new fulfillment needs a type: PICKUP, SHIPMENT or DELIVERY.", ("S1",), C,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set",
            "order.fulfillments[{index}].type", "SEEN"),
         example="CreateOrder with a fulfillment that has no type."),
    # ------------------------------------------------------------------- money
    Rule("money.currency_mismatch", "money",
         "Every money field uses the location's currency.", ("S1",), C,
         _e(400, IRE, "CURRENCY_MISMATCH",
            "The currency {currency} does not match the location currency {expected}.", "{field}"),
         example="CreatePayment with amount_money in EUR at a USD location."),
    Rule("money.non_negative", "money",
         "Money amounts in requests are non-negative integers in the smallest unit. The spec's "
         "Money type allows negative amounts in general (F17: \"a general statement for the Money "
         "object\"); refusing them on orders and payments is inferred.", ("S1", "F17"), I,
         _e(400, IRE, "VALUE_TOO_LOW", "Field must not be less than 0", "{field}", "SEEN"),
         example="A line item with base_price_money.amount = -1."),
    # ------------------------------------------------------------ api generics
    Rule("api.unauthorized", "api",
         "Every request needs Authorization: Bearer <token>.", ("S12",), C,
         _e(401, "AUTHENTICATION_ERROR", "UNAUTHORIZED", "This request could not be authorized.",
            None, "SEEN"),
         example="Call GET /v2/locations with no Authorization header."),
    Rule("api.idempotency_key_reused", "api",
         "An idempotency key reused with a different request body is rejected; the same body "
         "replays the first response.", ("S11", "S1"), C,
         _e(400, IRE, "IDEMPOTENCY_KEY_REUSED",
            "The idempotency key can only be retried with the same request data.",
            "idempotency_key", "SEEN"),
         example="CreatePayment twice with one key and two amounts."),
    Rule("api.invalid_cursor", "api",
         "A pagination cursor must be one the server handed out for the same query.", ("S1",), C,
         _e(400, IRE, "INVALID_CURSOR", "The provided cursor `{cursor}` was not found.", "cursor",
            "SEEN"),
         example="GET /v2/payments?cursor=garbage."),
    Rule("api.too_many_ids", "api",
         "BatchRetrieveOrders takes at most 100 ids; SearchOrders at most 10 location ids; list "
         "limits are capped.", ("S1",), C,
         _e(400, IRE, "VALUE_TOO_LONG", "Field must not have more than {maximum} items", "{field}"),
         example="BatchRetrieveOrders with 101 ids."),
    Rule("api.invalid_value", "api",
         "Values outside what an endpoint accepts (for example a limit over its maximum or a sort "
         "field a date filter cannot use) are rejected.", ("S1",), C,
         _e(400, IRE, "INVALID_VALUE", "{reason}", "{field}"),
         example="SearchOrders with limit 0."),
    Rule("location.not_found", "location",
         "Unknown location ids answer NOT_FOUND; 'main' names the main location.", ("S1",), C,
         _e(404, IRE, "NOT_FOUND", "Could not find location with id: {id}", None, "GUESS"),
         example="GET /v2/locations/nope."),
]

_RULES += [
    # ------------------------------------------------------------ webhooks (simulator/outbox.py)
    Rule("webhook.envelope", "webhook",
         "Every notification is one JSON event: merchant_id, location_id (when known), type, "
         "event_id (a UUID), created_at and data {type, id, object}. Order events carry an order "
         "summary (order_created / order_updated / order_fulfillment_updated), payment and refund "
         "events the whole object.", ("S1", "S16", "S17"), C,
         example="Subscribe to payment.created, then CreatePayment."),
    Rule("webhook.order_created_only_by_create_order", "webhook",
         "order.created is \"triggered only by the CreateOrder endpoint call\": CloneOrder, the "
         "order Square makes for a payment without one, and the return order of a refund send no "
         "order.created.", ("S1",), C,
         example="CloneOrder: the outbox records no order.created for the clone."),
    Rule("webhook.order_follows_payment_and_refund", "webhook",
         "\"Square creates an Order object for every payment and every refund. When the payment "
         "and refund are updated, the associated order is also updated\": each payment change "
         "sends order.updated for the payment's order, and a refund's creation and each of its "
         "status changes send order.updated for its return order.", ("S17",), C,
         example="Refund a payment: refund.created, then order.updated for refund.order_id."),
    Rule("webhook.payment_refund_sequence", "webhook",
         "A card payment taken with autocomplete=false, completed, refunded and settled sends, in "
         "order: payment.created, order.updated, payment.updated, order.updated (payment's "
         "order), refund.created, order.updated (return order), payment.updated, refund.updated, "
         "order.updated (return order). S17 shows the payment, refund and order events of such a "
         "sandbox run (12 in its example, in an image whose list is not in the text), so the exact "
         "list here is inferred from the rules above.", ("S17", "S16"), I,
         example="Create, complete and refund a card payment; advance the clock to settle it."),
    Rule("webhook.signature", "webhook",
         "The x-square-hmacsha256-signature header is base64(HMAC-SHA256(signature_key, "
         "notification_url + raw body)); the URL must match the subscription exactly.",
         ("S14", "S19"), C,
         example="square.utils.webhooks_helper.verify_signature(...) returns True."),
    Rule("webhook.delivery_retries", "webhook",
         "A delivery succeeds on a 2xx answer within 10 seconds; anything else (3xx, 4xx, 5xx, "
         "timeouts, connection errors) is retried 1, 2, 4, 8, 16 and 32 minutes later, then "
         "hourly, until 72 hours after the event, when it is discarded.", ("S15", "F13"), C,
         example="Answer 500 and advance the clock: attempts at +1, +3, +7, +15 minutes."),
    Rule("webhook.event_id_idempotency", "webhook",
         "A notification sent again (retry, duplicate, redelivery) carries the same event_id; "
         "consumers deduplicate on it.", ("S22",), C,
         example="Inject the duplicate fault: both copies have one event_id."),
    Rule("webhook.event_type_unknown", "webhook",
         "A subscription's event_types must be event types Square publishes "
         "(ListWebhookEventTypes).", ("S1",), I,
         _e(400, IRE, "INVALID_VALUE", "`{event_type}` is not a valid event type.",
            "subscription.event_types[{index}]"),
         example="CreateWebhookSubscription with event_types ['payment.exploded']."),
    Rule("webhook.subscription_field_required", "webhook",
         "CreateWebhookSubscription needs a notification_url and at least one event type.",
         ("S1", "S24"), I,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "Field must be set", "subscription.{name}",
            "SEEN"),
         example="CreateWebhookSubscription without notification_url."),
    Rule("webhook.notification_url_invalid", "webhook",
         "Square requires a well-formed, reachable HTTPS notification_url. This server also "
         "accepts http:// URLs on loopback hosts (localhost, 127.0.0.0/8, ::1) so receivers can "
         "run locally; other http:// URLs are rejected. Deliveries go to loopback hosts only "
         "unless the server allows more (`serve --webhook-allow HOST[,HOST...]` or `*`); a URL "
         "on any other host is rejected when the subscription is created or updated.",
         ("S24",), C,
         _e(400, IRE, "INVALID_VALUE", "URL is not valid: {reason}", "subscription.notification_url"),
         example="CreateWebhookSubscription with notification_url 'http://example.com/hook'."),
    Rule("webhook.subscription_not_found", "webhook",
         "Unknown subscription ids answer NOT_FOUND.", ("S1",), I,
         _e(404, IRE, "NOT_FOUND", "Subscription `{id}` not found."),
         example="GET /v2/webhooks/subscriptions/wbhk_nope."),
    Rule("webhook.test_event_type", "webhook",
         "TestWebhookSubscription's event_type must be one of the subscription's event types.",
         ("S1",), C,
         _e(400, IRE, "INVALID_VALUE",
            "`{event_type}` is not one of the event types of subscription `{id}`.", "event_type"),
         example="Test a payment.* subscription with event_type refund.created."),
    # ------------------------------------------------------------------ catalog
    Rule("catalog.object_not_found", "catalog",
         "Retrieving or deleting an id that is not a live catalog object answers NOT_FOUND; "
         "UpdateItemTaxes and UpdateItemModifierLists need live items, taxes and modifier lists.",
         ("S1", "CAT1"), C,
         _e(404, IRE, "NOT_FOUND", "Catalog object with ID `{id}` not found.", None, "SEEN"),
         example="GET /v2/catalog/object/NOPE."),
    Rule("catalog.item_needs_variation", "catalog",
         "An ITEM written through the API must carry at least one variation.", ("CAT6", "CAT2"), R,
         _e(400, IRE, "BAD_REQUEST",
            "Item with name {name} and token {token} must have at least one variation.", None,
            "SEEN"),
         example="UpsertCatalogObject with an ITEM whose item_data has no variations."),
    Rule("catalog.reference_unknown", "catalog",
         "Every id an object names (category, taxes, modifier lists, parent item, product sets, "
         "discount, time periods) must be a live catalog object or an object of the same request.",
         ("CAT6", "S1"), R,
         _e(400, IRE, "INVALID_VALUE",
            "Object `{token}` of type {type} references unknown object {ref} in attr {attr}", None,
            "SEEN"),
         example="Upsert an ITEM with category_id '#Beverages' that the batch does not define."),
    Rule("catalog.version_mismatch", "catalog",
         "An object written with a version must carry the version currently stored; without a "
         "version the write wins. Every write stamps a new, larger version and updated_at.",
         ("S1", "CAT6", "CAT9"), C,
         _e(400, IRE, "VERSION_MISMATCH", "Object version does not match latest database version.",
            "version", "SEEN"),
         example="Upsert an object twice with the version of the first read."),
    Rule("catalog.new_object_id", "catalog",
         "A new object takes a temporary id starting with '#'; the response maps it to the "
         "permanent id in id_mappings. A fixed id must name an existing, undeleted object.",
         ("S1", "CAT2"), I,
         _e(400, IRE, "INVALID_VALUE",
            "Object `{id}` of type {type} was not found; an object to create needs a temporary "
            "id that starts with `#`.", "{field}"),
         example="UpsertCatalogObject with id 'NOT_THERE' and no '#'."),
    Rule("catalog.type_mismatch", "catalog",
         "An existing object keeps its type.", ("S1",), I,
         _e(400, IRE, "INVALID_VALUE", "Object `{id}` has type {current}, not {type}.", "{field}"),
         example="Upsert a TAX with the id of an ITEM."),
    Rule("catalog.duplicate_id", "catalog",
         "An id appears at most once in an upsert request.", ("S1",), I,
         _e(400, IRE, "INVALID_VALUE", "Object id `{id}` appears more than once in the request.",
            "{field}"),
         example="BatchUpsert two objects both with id '#a'."),
    Rule("catalog.data_required", "catalog",
         "An object carries an id and the data field of its type (item_data for ITEM, tax_data "
         "for TAX, ...).", ("S1",), C,
         _e(400, IRE, "MISSING_REQUIRED_PARAMETER", "{detail}", "{field}", "SEEN"),
         example="Upsert {'type': 'TAX', 'id': '#t'} without tax_data."),
    Rule("catalog.type_unsupported", "catalog",
         "This server stores ITEM, ITEM_VARIATION, MODIFIER_LIST, MODIFIER, TAX, DISCOUNT, "
         "CATEGORY, PRICING_RULE, PRODUCT_SET, TIME_PERIOD, ITEM_OPTION and ITEM_OPTION_VAL; other "
         "CatalogObjectType values (IMAGE, SUBSCRIPTION_PLAN, ...) are refused, not dropped.",
         ("S1",), I,
         _e(400, IRE, "INVALID_VALUE", "Catalog object type `{type}` is not supported.",
            "{field}"),
         example="Upsert an object of type IMAGE."),
    Rule("catalog.child_type", "catalog",
         "Nested children have their parent's child type: an ITEM's variations are "
         "ITEM_VARIATION, a MODIFIER_LIST's modifiers are MODIFIER.", ("S1",), C,
         _e(400, IRE, "INVALID_VALUE", "A {parent} can only nest objects of type {expected}.",
            "{field}"),
         example="Upsert an ITEM whose variations list holds a TAX."),
    Rule("catalog.delete_cascades", "catalog",
         "Deleting an object deletes its children (an item's variations, a modifier list's "
         "modifiers). Deleted objects keep their record with is_deleted=true: ListCatalog and "
         "Retrieve leave them out, SearchCatalogObjects returns them with include_deleted_objects. "
         "BatchDelete skips ids that are not live objects.", ("S1", "CAT1"), C,
         example="Delete an item and retrieve its variation."),
    Rule("catalog.children_replaced", "catalog",
         "Upserting an item with a variations list (or a modifier list with a modifiers list) "
         "deletes the existing children the list leaves out.", ("CAT2",), I,
         example="Upsert an item with one of its two variations."),
    Rule("catalog.batch_upsert_partial", "catalog",
         "Each batch of BatchUpsertCatalogObjects is all or nothing, and a failing batch does not "
         "stop the others (the spec's description). When every batch fails the request is "
         "rejected with the first batch's error; when some succeed the response carries their "
         "objects and the failed batches' errors (that shape is this server's reading).",
         ("S1",), I,
         example="BatchUpsert two batches, the second with an item without variations."),
    Rule("catalog.query_combination", "catalog",
         "SearchCatalogObjects combines only exact, prefix, range, sorted-attribute and text "
         "queries; any other query kind must be alone.", ("S1",), C,
         _e(400, IRE, "INVALID_VALUE", "These query kinds cannot be combined: {kinds}.", "query"),
         example="Search with an exact_query and an items_for_tax_query."),
    Rule("catalog.attribute_not_searchable", "catalog",
         "Attribute queries name a searchable attribute: name, description, abbreviation, upc, "
         "sku, display_name (range queries: price_money, ordinal, inventory_alert_threshold).",
         ("S1",), C,
         _e(400, IRE, "INVALID_VALUE",
            "Attribute `{attr}` is not searchable here; use one of {allowed}.", "{field}"),
         example="An exact_query on attribute 'color'."),
    Rule("catalog.version_updated_event", "catalog",
         "Every catalog change (upsert, delete, tax or modifier list links, seeding through the "
         "control API) sends one catalog.version.updated event carrying the catalog's updated_at.",
         ("CAT5",), C,
         example="Upsert a tax and list the webhook events."),
]

_RULES += [
    # ------------------------------------------------------------ pricing (pricing.py)
    Rule("pricing.bankers_rounding", "pricing",
         "Every computed adjustment (discount, tax, service charge, fractional quantity) is "
         "rounded to the smallest currency unit half to even: 0.5 cent rounds to the even "
         "neighbour. A CreateOrder response posted on Square's forum disagrees: a 10 % "
         "ORDER-scope discount on a JPY 915 line is applied as 91 (half to even gives 92), and "
         "the order totals posted with it (a 5 % service charge on 824, 820 and 819) fit only "
         "rounding down.", ("P1", "F18"), C,
         variant=Variant("adjustment_rounding", {
             "half_even": "computed discounts, taxes and service charges round half to even "
                          "(P1, and every USD example of the spec)",
             "down": "they round down, as in the JPY order of F18; whether Square does so only "
                     "in JPY is not known, so this value applies to every currency",
         }, "half_even"),
         example="5 % of 250 is 12.5, applied as 12; 5 % of 270 is 13.5, applied as 14."),
    Rule("pricing.discount_sequence", "pricing",
         "Discounts apply in this sequence whatever order the request lists them in: item-level "
         "percentage, order-level percentage, item-level fixed amount, order-level fixed amount. "
         "Each works on what the earlier ones left.", ("P2",), C,
         example="A $1.00-off item discount is taken after a 5 % order discount."),
    Rule("pricing.discount_step_order", "pricing",
         "Within one step of the sequence, discounts compound in ascending order of their value "
         "(then uid), whatever order the request lists them in. This is the order that "
         "reproduces the spec's CreateOrder example, where the 0.5 % membership discount listed "
         "second is taken before the 5 % Labor Day sale; Square documents no order.",
         ("P6",), I,
         example="ORDER 5 % and 0.5 % on 6099: 30 then 303 (not 305 then 29)."),
    Rule("pricing.order_scope_apportioned", "pricing",
         "An ORDER-scope discount or tax is computed once on the summed base of the line items, "
         "then apportioned to them in proportion by largest remainder; the shares add up exactly. "
         "Every line gets a server-generated applied_discounts / applied_taxes entry with its own "
         "uid for each ORDER-scope discount and tax.", ("S1", "P1", "P6"), C,
         example="Spec CreateOrder: state tax 510 split 136 + 374, membership 30 split 8 + 22."),
    Rule("pricing.line_item_fixed_shared", "pricing",
         "A LINE_ITEM fixed-amount discount referenced by several line items is taken once and "
         "shared among them in proportion, like an order-level one; Square does not say whether "
         "each line gets the full amount.", ("S1",), I,
         example="$1.00 off on lines of 300 and 100: 75 + 25."),
    Rule("pricing.taxes_after_discounts", "pricing",
         "Taxes apply to the discounted amounts. ADDITIVE taxes are added to the total; INCLUSIVE "
         "taxes are contained in the price, several on one line sharing the combined rate; in the "
         "US, Canada and Japan inclusive tax is deducted from gross_sales_money.", ("P3", "S1"), C,
         example="1100 with a 10 % INCLUSIVE tax: total 1100, tax 100, gross sales 1000."),
    Rule("pricing.service_charge_phases", "pricing",
         "Service charges apply in their calculation_phase: APPORTIONED_PERCENTAGE_PHASE then "
         "APPORTIONED_AMOUNT_PHASE (compounding, spread onto the lines), SUBTOTAL_PHASE (after "
         "discounts, before taxes; taxable ones bear the order's taxes) and TOTAL_PHASE (after "
         "taxes, never taxable).", ("P4", "S1"), C,
         example="A 10 % TOTAL_PHASE charge on 1000 plus 10 % tax is 110."),
    Rule("pricing.service_charge_phase", "pricing",
         "A percentage service charge cannot use APPORTIONED_AMOUNT_PHASE, an amount one cannot use "
         "APPORTIONED_PERCENTAGE_PHASE, and a TOTAL_PHASE charge cannot be taxable.",
         ("P4", "S1"), I,
         _e(400, IRE, "INVALID_VALUE",
            "The service charge cannot be applied in {phase} this way.", "{field}"),
         example="A service charge with percentage 10 and APPORTIONED_AMOUNT_PHASE."),
    Rule("pricing.percentage_range", "pricing",
         "A discount percentage is a decimal string between 0 and 100.", ("S1", "P2"), I,
         _e(400, IRE, "INVALID_VALUE",
            "The percentage `{value}` must be between 0 and {maximum}.", "{field}"),
         example="A discount with percentage \"150\"."),
    Rule("pricing.quantity_precision", "pricing",
         "A quantity has at most 5 decimal places, or the line's quantity_unit.precision when "
         "it has one.", ("S1",), C,
         _e(400, IRE, "INVALID_VALUE",
            "The quantity `{value}` has more than {places} decimal places.", "{field}"),
         example="A line item with quantity \"1.123456\"."),
    Rule("pricing.unique_uids", "pricing",
         "Each line item, discount, tax and service charge of an order has its own uid (the spec: "
         "\"a unique ID that identifies the discount only within this order\", and so on): two "
         "entries of one list with the same uid are rejected. Applied entries name their "
         "discount, tax or service charge by uid, so a shared uid would make the order's amounts "
         "and the lines' shares disagree.", ("S1",), I,
         _e(400, IRE, "INVALID_VALUE",
            "The uid `{uid}` is given to more than one entry of {list}.", "{field}"),
         example="Two ORDER-scope discounts with the uid \"x\"."),
    Rule("pricing.amount_overflow", "pricing",
         "Every money amount is an int64; an order whose computed amounts would exceed "
         "9223372036854775807 is rejected, never wrapped.", ("S1",), I,
         _e(400, IRE, "INVALID_VALUE",
            "The computed amount would exceed the largest amount Square represents.", "{field}"),
         example="Quantity 10 of a line priced 2^62."),
]


CATALOG: dict[str, Rule] = {r.id: r for r in _RULES}
if len(CATALOG) != len(_RULES):  # pragma: no cover - guards the table itself
    raise RuntimeError("duplicate rule id in the catalog")

VARIANTS: dict[str, tuple[Rule, Variant]] = {
    r.variant.name: (r, r.variant) for r in _RULES if r.variant is not None
}


def get_rule(rule_id: str) -> Rule:
    try:
        return CATALOG[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule id {rule_id!r}") from None


def violation(rule_id: str, **ctx: Any) -> SquareError:
    """Build the SquareError for a catalog rule. ``field=`` in ctx overrides the field."""
    rule = CATALOG[rule_id]
    if rule.error is None:  # pragma: no cover - a programming error, caught by tests
        raise ValueError(f"rule {rule_id} does not reject anything")
    return SquareError(rule.error.status, [rule.error.render(**ctx)], rule_id=rule_id)


class Variants(dict):
    """Active variant values by variant name, defaults filled in.

    Accepts either the variant name or the id of its rule as the key.
    """

    def __init__(self, overrides: Mapping[str, str] | Iterable[str] | None = None) -> None:
        super().__init__({name: v.default for name, (_, v) in VARIANTS.items()})
        if overrides is None:
            return
        items = (
            overrides.items() if isinstance(overrides, Mapping)
            else (self._split(s) for s in overrides)
        )
        for key, value in items:
            self.set(key, value)

    @staticmethod
    def _split(text: str) -> tuple[str, str]:
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"expected RULE=VALUE, got {text!r}")
        return key.strip(), value.strip()

    def set(self, key: str, value: str) -> None:
        name = key
        if name not in VARIANTS:
            by_rule = {r.id: n for n, (r, _) in VARIANTS.items()}
            if key not in by_rule:
                known = ", ".join(sorted(VARIANTS))
                raise ValueError(f"unknown variant {key!r}; known: {known}")
            name = by_rule[key]
        allowed = VARIANTS[name][1].values
        if value not in allowed:
            raise ValueError(
                f"unknown value {value!r} for {name}; allowed: {', '.join(allowed)}")
        self[name] = value

    def non_default(self) -> dict[str, str]:
        return {k: v for k, v in self.items() if v != VARIANTS[k][1].default}

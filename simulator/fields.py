"""What the simulator does with every request field of the Square operations it implements.

``FIELDS[operationId][field path]`` is a :class:`Mark`: honoured (with the id of a test that
would fail if the field were ignored), rejected (with the error code) or a known difference
(with why). ``tools/gen_fields.py`` joins these marks with Square's spec into docs/fields.md, and
tests/simulator/test_fields_table.py checks the committed table: every row marked, every
honoured row naming a test that exists and mentions the field.

Paths are Square's, with ``[]`` after an array field. An object field's mark covers what is
nested in it, unless its path is in :data:`EXPAND`, whose fields get marks of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Mark", "FIELDS", "EXPAND", "lookup", "HONOURED", "REJECTED", "DIFFERENCE"]

HONOURED, REJECTED, DIFFERENCE = "honoured", "rejected", "known difference"

# Object fields whose own fields are listed (and marked) one by one.
EXPAND = frozenset({"order", "query", "query.filter", "query.sort", "payment", "subscription"})


@dataclass(frozen=True)
class Mark:
    status: str
    test: str = ""  # honoured: "tests/...py::test_name"
    error: str = ""  # rejected: the error code
    note: str = ""

    def detail(self) -> str:
        if self.status == HONOURED:
            text = f"`{self.test}`"
        elif self.status == REJECTED:
            text = f"`{self.error}`"
        else:
            text = ""
        if self.note:
            text = f"{text}: {self.note}" if text else self.note
        return text.replace("|", "\\|")


def H(test: str, note: str = "") -> Mark:
    return Mark(HONOURED, test=test, note=note)


def R(error: str, note: str) -> Mark:
    return Mark(REJECTED, error=error, note=note)


def D(why: str) -> Mark:
    return Mark(DIFFERENCE, note=why)


F = "tests/simulator/test_fidelity.py::"
E = "tests/simulator/test_fields_echo.py::"
O = "tests/simulator/test_orders.py::"
P = "tests/simulator/test_payments.py::"
RF = "tests/simulator/test_refunds.py::"
I = "tests/simulator/test_idempotency.py::"
W = "tests/simulator/test_webhooks.py::"
C = "tests/simulator/test_catalog.py::"
CO = "tests/simulator/test_catalog_orders.py::"
CF = "tests/simulator/test_catalog_fields.py::"

# The fields of an Order in CreateOrder, UpdateOrder and CalculateOrder.
_ORDER = {
    "order": H(E + "test_order_fields_round_trip", "the order to create"),
    "order.location_id": H(O + "test_create_order_shape", "required; `main` works"),
    "order.reference_id": H(E + "test_order_fields_round_trip", "stored and returned"),
    "order.source": H(F + "test_search_source_filter", "stored; SearchOrders filters on "
                                                        "`source.name`"),
    "order.customer_id": H(O + "test_search_filters_and_sorts", "stored; SearchOrders "
                                                                "customer_filter"),
    "order.line_items[]": H(F + "test_line_item_needs_catalog_id_or_name_and_price",
                            "priced; a `catalog_object_id` is resolved from the catalog, an ad "
                            "hoc item needs `name` and `base_price_money`"),
    "order.taxes[]": H(E + "test_order_fields_round_trip", "priced (additive and inclusive)"),
    "order.discounts[]": H(E + "test_order_fields_round_trip", "priced (fixed and percentage)"),
    "order.service_charges[]": H(E + "test_order_fields_round_trip", "priced"),
    "order.fulfillments[]": H(F + "test_fields_to_clear_cannot_remove_a_paid_orders_fulfillment",
                              "PICKUP, SHIPMENT, DELIVERY with their lifecycle"),
    "order.metadata": H(E + "test_order_fields_round_trip", "stored and returned"),
    "order.state": H(O + "test_create_draft_order", "OPEN or DRAFT on create; the lifecycle "
                                                    "on update"),
    "order.ticket_name": H(E + "test_order_fields_round_trip", "stored and returned"),
    "order.pricing_options": H(CO + "test_auto_apply_taxes_with_blocklist",
                               "auto_apply_taxes and auto_apply_discounts from the catalog on "
                               "create and calculate (docs/catalog.md: UpdateOrder does not "
                               "re-run them)"),
}
_CREATE_ORDER = dict(_ORDER, **{
    "order.version": D("ignored on create: a new order always starts at version 1"),
})
_UPDATE_ORDER = dict(_ORDER, **{
    "order.version": H(O + "test_version_mismatch", "must equal the current version"),
})
_CALC_ORDER = dict(_ORDER, **{
    "order.version": D("ignored: CalculateOrder stores nothing"),
    "order.state": D("ignored: CalculateOrder stores nothing and has no lifecycle"),
})

_LIST_TIMES = {
    "begin_time": H(P + "test_list_filters", "created_at window start; default one year ago"),
    "end_time": H(P + "test_list_filters", "created_at window end"),
    "sort_order": H(P + "test_list_filters", "ASC or DESC"),
    "cursor": H(P + "test_list_cursor_survives_the_clock_moving", "bound to its query"),
    "location_id": H(P + "test_list_filters"),
    "updated_at_begin_time": H(F + "test_list_payments_updated_window_and_sort_field",
                               "updated_at window start"),
    "updated_at_end_time": H(F + "test_list_payments_updated_window_and_sort_field",
                             "updated_at window end"),
}

FIELDS: dict[str, dict[str, Mark]] = {
    "ListLocations": {},
    "RetrieveLocation": {},
    "CreateOrder": dict(_CREATE_ORDER, **{
        "idempotency_key": H(E + "test_order_fields_round_trip", "a replay returns the first "
                                                                 "order"),
    }),
    "BatchRetrieveOrders": {
        "location_id": H(E + "test_batch_retrieve_location_id", "only orders of that location"),
        "order_ids[]": H(O + "test_batch_retrieve_ignores_unknown_ids", "at most 100; unknown "
                                                                         "ids are ignored"),
    },
    "CalculateOrder": dict(_CALC_ORDER, **{
        "proposed_rewards[]": D("loyalty rewards are not simulated; the field is not applied"),
    }),
    "CloneOrder": {
        "order_id": H(O + "test_clone_is_a_draft_copy_of_core_fields"),
        "version": H(E + "test_clone_version_and_key", "must match the source order's version"),
        "idempotency_key": H(E + "test_clone_version_and_key", "a replay returns the first clone"),
    },
    "SearchOrders": {
        "location_ids[]": H(F + "test_search_needs_a_location",
                            "at least one (the search-orders guide), at most 10"),
        "cursor": H(O + "test_search_cursor_is_tied_to_its_query"),
        "query": H(O + "test_search_filters_and_sorts"),
        "query.filter": H(O + "test_search_filters_and_sorts"),
        "query.filter.state_filter": H(O + "test_search_filters_and_sorts"),
        "query.filter.date_time_filter": H(O + "test_search_filters_and_sorts",
                                           "one field at a time; needs the same sort field"),
        "query.filter.fulfillment_filter": H(F + "test_search_fulfillment_filter",
                                             "fulfillment_types and fulfillment_states"),
        "query.filter.source_filter": H(F + "test_search_source_filter", "source_names"),
        "query.filter.customer_filter": H(O + "test_search_filters_and_sorts"),
        "query.sort": H(O + "test_search_filters_and_sorts"),
        "query.sort.sort_field": H(F + "test_search_closed_at_with_open_orders_is_an_error",
                                   "CREATED_AT, UPDATED_AT, CLOSED_AT"),
        "query.sort.sort_order": H(O + "test_search_filters_and_sorts"),
        "limit": H(O + "test_search_limits", "default 500, 1 to 1000"),
        "return_entries": H(O + "test_search_filters_and_sorts"),
    },
    "RetrieveOrder": {},
    "UpdateOrder": dict(_UPDATE_ORDER, **{
        "fields_to_clear[]": H(F + "test_fields_to_clear_cannot_remove_a_paid_orders_fulfillment",
                               "sparse clears; removing a paid order's fulfillment is refused"),
        "idempotency_key": H(I + "test_update_order_replay_returns_latest_and_applies_nothing"),
    }),
    "PayOrder": {
        "idempotency_key": H(I + "test_pay_order_replay"),
        "order_version": H(O + "test_pay_order_stale_version"),
        "payment_ids[]": H(F + "test_pay_order_sum_must_equal_the_order_total",
                           "must add up to the order total; empty only for a zero total"),
    },
    "ListPayments": dict(_LIST_TIMES, **{
        "total": H(P + "test_list_filters"),
        "last_4": H(E + "test_list_payments_card_filters"),
        "card_brand": H(E + "test_list_payments_card_filters"),
        "limit": H(F + "test_list_limit_above_the_maximum",
                   "above 100 is ignored and the default of 100 used (spec)"),
        "is_offline_payment": H(F + "test_list_payments_is_offline_payment",
                                "payments with offline_payment_details are offline"),
        "offline_begin_time": H(F + "test_list_payments_is_offline_payment",
                                "only payments with offline_payment_details.client_created_at"),
        "offline_end_time": H(F + "test_list_payments_is_offline_payment",
                              "only payments with offline_payment_details.client_created_at"),
        "sort_field": H(F + "test_list_payments_updated_window_and_sort_field",
                        "CREATED_AT and UPDATED_AT; OFFLINE_CREATED_AT sorts by created_at"),
    }),
    "CreatePayment": {
        "source_id": H(F + "test_sandbox_test_values_have_their_documented_outcomes"),
        "idempotency_key": H(I + "test_sdk_sees_the_same_payment_on_replay"),
        "amount_money": H(F + "test_zero_amount_payment_is_rejected", "required; not 0"),
        "tip_money": H(P + "test_card_payment_completes_with_square_fields"),
        "app_fee_money": H(F + "test_app_fee_above_ninety_percent_is_rejected",
                           "at most 90% of the total"),
        "delay_duration": H(F + "test_delay_fields_are_for_card_payments_only",
                            "card payments with autocomplete=false"),
        "delay_action": H(F + "test_delay_fields_are_for_card_payments_only",
                          "card payments with autocomplete=false"),
        "autocomplete": H(F + "test_ach_needs_autocomplete"),
        "order_id": H(P + "test_payment_for_an_order_must_match_what_is_due"),
        "customer_id": H(P + "test_card_on_file"),
        "location_id": H(F + "test_request_checks_run_before_the_card_is_tried"),
        "team_member_id": H(E + "test_payment_fields_round_trip"),
        "reference_id": H(E + "test_payment_fields_round_trip"),
        "verification_token": H(F + "test_sandbox_test_values_have_their_documented_outcomes",
                                "lets the requires-verification card through"),
        "accept_partial_authorization": D("with autocomplete=true it is rejected "
                                          "(`INVALID_VALUE`); otherwise no partial amount is "
                                          "ever approved: the test gift cards have no balance "
                                          "to run short of"),
        "buyer_email_address": H(E + "test_payment_fields_round_trip"),
        "buyer_phone_number": D("accepted and dropped: Square's Payment has no field that "
                                "returns it, and the simulator does no risk checks"),
        "billing_address": H(E + "test_payment_fields_round_trip"),
        "shipping_address": H(E + "test_payment_fields_round_trip"),
        "note": H(E + "test_payment_fields_round_trip"),
        "statement_description_identifier": H(E + "test_payment_fields_round_trip"),
        "cash_details": H(P + "test_cash_payment"),
        "external_details": H(P + "test_external_payment"),
        "customer_details": D("accepted and dropped: Square's Payment has no field that returns "
                              "it, and the simulator does no risk checks"),
        "offline_payment_details": H(F + "test_list_payments_is_offline_payment",
                                     "stored; marks the payment as offline"),
    },
    "CancelPaymentByIdempotencyKey": {
        "idempotency_key": H(P + "test_cancel_by_idempotency_key"),
    },
    "GetPayment": {},
    "UpdatePayment": {
        "payment": H(P + "test_update_payment"),
        "payment.amount_money": H(P + "test_update_payment"),
        "payment.tip_money": H(P + "test_update_payment"),
        "payment.app_fee_money": H(E + "test_update_payment_app_fee_and_team_member",
                                   "at most 90% of the new total"),
        "payment.approved_money": D("ignored: approved_money always follows the new total; "
                                    "reauthorization is not simulated"),
        "payment.delay_action": H(E + "test_update_payment_app_fee_and_team_member"),
        "payment.cash_details": D("ignored: cash payments keep the cash_details they were "
                                  "created with"),
        "payment.team_member_id": H(E + "test_update_payment_app_fee_and_team_member"),
        "payment.version_token": H(E + "test_update_payment_app_fee_and_team_member",
                                   "a stale token is VERSION_MISMATCH"),
        "idempotency_key": H(I + "test_update_payment_replay"),
    },
    "CompletePayment": {
        "version_token": H(P + "test_complete_with_stale_version_token"),
    },
    "CancelPayment": {},
    "ListPaymentRefunds": dict(_LIST_TIMES, **{
        "begin_time": H(RF + "test_list_refunds_filters"),
        "end_time": H(E + "test_list_refunds_time_window"),
        "sort_order": H(E + "test_list_refunds_time_window"),
        "cursor": H(E + "test_list_refunds_time_window"),
        "location_id": H(E + "test_list_refunds_time_window"),
        "status": H(RF + "test_list_refunds_filters"),
        "source_type": H(RF + "test_list_refunds_filters"),
        "limit": H(F + "test_list_limit_above_the_maximum", "above 100 gives at most 100"),
        "updated_at_begin_time": H(F + "test_list_refunds_updated_window_and_sort_field"),
        "updated_at_end_time": H(F + "test_list_refunds_updated_window_and_sort_field"),
        "sort_field": H(F + "test_list_refunds_updated_window_and_sort_field",
                        "CREATED_AT or UPDATED_AT"),
    }),
    "RefundPayment": {
        "idempotency_key": H(I + "test_refund_replay"),
        "amount_money": H(RF + "test_partial_refunds_cannot_exceed_the_total"),
        "app_fee_money": H(E + "test_refund_fields", "at most amount_money; only when the "
                                                     "payment had an app fee"),
        "payment_id": H(RF + "test_card_refund_is_pending_and_updates_the_payment"),
        "destination_id": D("ignored: a linked refund always goes back to the payment's "
                            "source; refunding to another method is not simulated"),
        "unlinked": R("INVALID_VALUE", "unlinked refunds are not supported"),
        "location_id": R("INVALID_VALUE", "only allowed when unlinked is true (spec)"),
        "customer_id": R("INVALID_VALUE", "only allowed when unlinked is true (spec)"),
        "reason": H(E + "test_refund_fields"),
        "payment_version_token": H(RF + "test_refund_with_stale_payment_version_token"),
        "team_member_id": H(E + "test_refund_fields"),
        "cash_details": D("ignored: it describes unlinked cash refunds, which are rejected"),
        "external_details": D("ignored: it describes unlinked external refunds, which are "
                              "rejected"),
    },
    "GetPaymentRefund": {},
    "ListWebhookEventTypes": {
        "api_version": H(W + "test_event_types_list"),
    },
    "ListWebhookSubscriptions": {
        "cursor": H(W + "test_list_pages_and_sorts"),
        "include_disabled": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "sort_order": H(W + "test_list_pages_and_sorts"),
        "limit": H(W + "test_list_pages_and_sorts"),
    },
    "CreateWebhookSubscription": {
        "idempotency_key": H(W + "test_create_is_idempotent"),
        "subscription": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.name": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.enabled": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.event_types[]": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.notification_url": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.api_version": H(E + "test_subscription_api_version"),
    },
    "RetrieveWebhookSubscription": {},
    "UpdateWebhookSubscription": {
        "subscription": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.name": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.enabled": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.event_types[]": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.notification_url": H(W + "test_subscription_lifecycle_through_the_sdk"),
        "subscription.api_version": H(E + "test_subscription_api_version"),
    },
    "DeleteWebhookSubscription": {},
    "UpdateWebhookSubscriptionSignatureKey": {
        "idempotency_key": H(W + "test_subscription_lifecycle_through_the_sdk",
                             "a new key each call"),
    },
    "TestWebhookSubscription": {
        "event_type": H(W + "test_test_endpoint_sends_a_test_notification"),
    },
    # ------------------------------------------------------------ Catalog API
    "UpsertCatalogObject": {
        "idempotency_key": H(C + "test_upsert_idempotency_replays_and_refuses_a_changed_body"),
        "object": H(C + "test_upsert_assigns_ids_versions_and_nests_variations"),
    },
    "BatchUpsertCatalogObjects": {
        "idempotency_key": H(C + "test_upsert_idempotency_replays_and_refuses_a_changed_body"),
        "batches[]": H(C + "test_batch_upsert_failing_batch_changes_nothing",
                       "each batch all or nothing"),
    },
    "DeleteCatalogObject": {},
    "RetrieveCatalogObject": {
        "include_related_objects": H(C + "test_retrieve_with_related_objects"),
        "catalog_version": H(C + "test_retrieve_an_older_catalog_version"),
        "include_category_path_to_root": H(CF + "test_retrieve_include_category_path_to_root"),
    },
    "BatchDeleteCatalogObjects": {
        "object_ids[]": H(C + "test_delete_item_deletes_its_variations"),
    },
    "UpdateItemTaxes": {
        "item_ids[]": H(C + "test_update_item_taxes_and_modifier_lists"),
        "taxes_to_enable[]": H(C + "test_update_item_taxes_and_modifier_lists"),
        "taxes_to_disable[]": H(C + "test_update_item_taxes_and_modifier_lists"),
    },
    "UpdateItemModifierLists": {
        "item_ids[]": H(C + "test_update_item_taxes_and_modifier_lists"),
        "modifier_lists_to_enable[]": H(C + "test_update_item_taxes_and_modifier_lists"),
        "modifier_lists_to_disable[]": H(C + "test_update_item_taxes_and_modifier_lists"),
    },
    "BatchRetrieveCatalogObjects": {
        "object_ids[]": H(C + "test_batch_retrieve"),
        "include_related_objects": H(C + "test_batch_retrieve"),
        "catalog_version": H(C + "test_retrieve_an_older_catalog_version"),
        "include_deleted_objects": H(CF + "test_search_related_objects_deleted_objects_and_item_pages"),
        "include_category_path_to_root": H(CF + "test_retrieve_include_category_path_to_root",
                                           "as for RetrieveCatalogObject"),
    },
    "ListCatalog": {
        "cursor": H(C + "test_list_types_and_cursor"),
        "types": H(C + "test_list_types_and_cursor"),
        "catalog_version": H(C + "test_retrieve_an_older_catalog_version"),
    },
    "SearchCatalogObjects": {
        "cursor": H(C + "test_search_paging_begin_time_and_errors"),
        "object_types[]": H(C + "test_search_queries"),
        "include_deleted_objects": H(C + "test_delete_item_deletes_its_variations"),
        "include_related_objects": H(CF + "test_search_related_objects_deleted_objects_and_item_pages"),
        "begin_time": H(C + "test_search_paging_begin_time_and_errors"),
        "query": H(C + "test_search_queries"),
        "query.sorted_attribute_query": H(CF + "test_search_sorted_attribute_query_and_set_query"),
        "query.exact_query": H(C + "test_search_queries"),
        "query.set_query": H(CF + "test_search_sorted_attribute_query_and_set_query"),
        "query.prefix_query": H(C + "test_search_queries"),
        "query.range_query": H(C + "test_search_queries"),
        "query.text_query": H(C + "test_search_queries"),
        "query.items_for_tax_query": H(C + "test_search_queries"),
        "query.items_for_modifier_list_query": H(C + "test_search_queries"),
        "query.items_for_item_options_query": H(CF + "test_search_items_for_item_options_query"),
        "query.item_variations_for_item_option_values_query":
            H(C + "test_search_item_variations_for_item_option_values"),
        "limit": H(C + "test_search_paging_begin_time_and_errors"),
        "include_category_path_to_root": H(CF + "test_retrieve_include_category_path_to_root",
                                           "as for RetrieveCatalogObject"),
    },
    "SearchCatalogItems": {
        "text_filter": H(C + "test_search_catalog_items"),
        "category_ids[]": H(C + "test_search_catalog_items"),
        "stock_levels[]": R("INVALID_VALUE", "needs the Inventory API, which is not simulated"),
        "enabled_location_ids[]": H(
            CF + "test_search_catalog_items_locations_product_types_and_archived_state"),
        "cursor": H(CF + "test_search_related_objects_deleted_objects_and_item_pages"),
        "limit": H(CF + "test_search_related_objects_deleted_objects_and_item_pages"),
        "sort_order": H(C + "test_search_catalog_items"),
        "product_types[]": H(
            CF + "test_search_catalog_items_locations_product_types_and_archived_state"),
        "custom_attribute_filters[]": R("INVALID_VALUE", "needs the custom attribute APIs, which "
                                                         "are not simulated"),
        "archived_state": H(
            CF + "test_search_catalog_items_locations_product_types_and_archived_state"),
    },
    "CatalogInfo": {},
}


def lookup(operation: str, field: str) -> Mark | None:
    return FIELDS.get(operation, {}).get(field)

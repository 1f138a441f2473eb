from datetime import timedelta

USD = "USD"


def authorize(client, key, **options):
    return client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key=key, autocomplete=False,
        amount_money={"amount": 2000, "currency": USD}, **options,
    ).payment


def test_an_authorization_expires(square_client, square_clock):
    payment = authorize(square_client, "auth-1", delay_duration="PT1H")
    square_clock.advance(timedelta(minutes=59))
    assert square_client.payments.get(payment.id).payment.status == "APPROVED"
    square_clock.advance(timedelta(minutes=1))
    assert square_client.payments.get(payment.id).payment.status == "CANCELED"


def test_delay_action_complete_captures_instead(square_client, square_clock):
    payment = authorize(square_client, "auth-2", delay_duration="PT1H", delay_action="COMPLETE")
    square_clock.advance(3600)
    assert square_client.payments.get(payment.id).payment.status == "COMPLETED"


def test_a_card_refund_settles_later(square_client, square_clock):
    payment = square_client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key="pay-1",
        amount_money={"amount": 2000, "currency": USD}).payment
    refund = square_client.refunds.refund_payment(
        idempotency_key="refund-1", payment_id=payment.id,
        amount_money={"amount": 500, "currency": USD}).refund
    assert refund.status == "PENDING"
    square_clock.advance(10)  # the simulator's default settle delay
    assert square_client.refunds.get(refund.id).refund.status == "COMPLETED"


def test_a_refund_can_be_rejected_on_demand(square_client, square_simulator):
    payment = square_client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key="pay-2",
        amount_money={"amount": 2000, "currency": USD}).payment
    refund = square_client.refunds.refund_payment(
        idempotency_key="refund-2", payment_id=payment.id,
        amount_money={"amount": 2000, "currency": USD}).refund
    square_simulator.http.post(f"/_sim/refunds/{refund.id}/reject").raise_for_status()
    assert square_client.refunds.get(refund.id).refund.status == "REJECTED"

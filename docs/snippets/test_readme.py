# A test of your own: the fixtures come with orderfsm, no Square account needed.
def test_an_uncaptured_payment_is_voided_after_a_week(square_client, square_clock):
    payment = square_client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key="pay-1",
        amount_money={"amount": 500, "currency": "USD"}, autocomplete=False,
    ).payment
    assert payment.status == "APPROVED"
    square_clock.advance(7 * 24 * 3600)  # a week passes, instantly
    assert square_client.payments.get(payment.id).payment.status == "CANCELED"

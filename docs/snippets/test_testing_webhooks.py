def test_a_capture_and_a_refund_raise_these_events(square_client, square_clock, square_events):
    payment = square_client.payments.create(
        source_id="cnon:card-nonce-ok", idempotency_key="pay-1",
        amount_money={"amount": 1000, "currency": "USD"}).payment
    refund = square_client.refunds.refund_payment(
        idempotency_key="refund-1", payment_id=payment.id,
        amount_money={"amount": 1000, "currency": "USD"}).refund
    square_clock.advance(10)  # the refund settles

    refund_events = square_events.all(object_id=refund.id)
    assert [e["type"] for e in refund_events] == ["refund.created", "refund.updated"]
    settled = refund_events[-1]["payload"]  # exactly what a subscriber would receive
    assert settled["data"]["object"]["refund"]["status"] == "COMPLETED"
    assert "payment.updated" in square_events.types()

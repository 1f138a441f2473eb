import pytest
from square.core.api_error import ApiError

REQUEST = {"source_id": "cnon:card-nonce-ok", "idempotency_key": "order-42-payment",
           "amount_money": {"amount": 1500, "currency": "USD"}}


def test_a_retry_with_the_same_key_charges_once(square_client, square_simulator):
    first = square_client.payments.create(**REQUEST).payment
    retry = square_client.payments.create(**REQUEST).payment  # e.g. after a timeout
    assert retry.id == first.id
    assert len(square_simulator.engine.payments) == 1


def test_the_same_key_with_another_body_is_rejected(square_client):
    square_client.payments.create(**REQUEST)
    with pytest.raises(ApiError) as err:
        square_client.payments.create(**{**REQUEST, "amount_money": {"amount": 1600,
                                                                      "currency": "USD"}})
    assert err.value.errors[0].code == "IDEMPOTENCY_KEY_REUSED"

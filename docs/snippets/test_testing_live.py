import uuid

import pytest
from square.core.api_error import ApiError


@pytest.mark.square_live_compatible
def test_locations_are_listed(square_client):
    # Runs in-process by default, and also with --square-base-url against a running server.
    locations = square_client.locations.list().locations
    assert locations and locations[0].status == "ACTIVE"


@pytest.mark.square_live_compatible
def test_a_declined_nonce_is_declined(square_client):
    with pytest.raises(ApiError) as err:
        square_client.payments.create(
            source_id="cnon:card-nonce-declined", idempotency_key=str(uuid.uuid4()),
            amount_money={"amount": 100, "currency": "USD"})
    assert err.value.errors[0].code == "GENERIC_DECLINE"


def test_needs_the_engine(square_simulator):
    # Not marked: skipped, with a reason, when the suite runs against another server.
    assert square_simulator.engine.orders == {}

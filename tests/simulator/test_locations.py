"""Locations API through the official SDK, plus the auth and header conventions every route shares."""

from __future__ import annotations

import re

import pytest
from square.core.api_error import ApiError

RO = {"max_retries": 0}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_new_merchant_has_one_active_main_location(any_sdk) -> None:
    locations = any_sdk.locations.list(request_options=RO).locations
    assert len(locations) == 1
    loc = locations[0]
    assert re.fullmatch(r"[0-9A-Z]{13}", loc.id)
    assert loc.status == "ACTIVE"
    assert loc.currency == "USD"
    assert loc.country == "US"
    assert re.fullmatch(r"M[0-9A-Z]{12}", loc.merchant_id)
    assert RFC3339.match(loc.created_at)
    assert "CREDIT_CARD_PROCESSING" in loc.capabilities


def test_get_by_id_and_main_alias(sdk) -> None:
    listed = sdk.locations.list(request_options=RO).locations[0]
    by_id = sdk.locations.get(listed.id, request_options=RO).location
    by_alias = sdk.locations.get("main", request_options=RO).location
    assert by_id == listed
    assert by_alias == listed


def test_unknown_location_is_not_found(sdk) -> None:
    with pytest.raises(ApiError) as info:
        sdk.locations.get("NOPE", request_options=RO)
    assert info.value.status_code == 404
    assert info.value.body == {"errors": [{
        "code": "NOT_FOUND", "detail": "Could not find location with id: NOPE",
        "field": "location_id", "category": "INVALID_REQUEST_ERROR"}]}


def test_each_token_is_its_own_merchant(make_sdk) -> None:
    a = make_sdk("token-one").locations.list(request_options=RO).locations[0]
    b = make_sdk("token-two").locations.list(request_options=RO).locations[0]
    again = make_sdk("token-one").locations.list(request_options=RO).locations[0]
    assert a.id != b.id
    assert a.merchant_id != b.merchant_id
    assert again == a


def test_missing_authorization_is_401(anon) -> None:
    r = anon.get("/v2/locations")
    assert r.status_code == 401
    (err,) = r.json()["errors"]
    assert err["category"] == "AUTHENTICATION_ERROR"
    assert err["code"] == "UNAUTHORIZED"
    assert "field" not in err
    assert err["detail"].startswith("Your request did not include an `Authorization` http header")
    assert err["detail"].endswith("developers@squareup.com. ")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer    ", "token-without-scheme"])
def test_malformed_authorization_is_401(anon, header: str) -> None:
    r = anon.get("/v2/locations", headers={"Authorization": header})
    assert r.status_code == 401
    (err,) = r.json()["errors"]
    assert (err["category"], err["code"]) == ("AUTHENTICATION_ERROR", "UNAUTHORIZED")
    assert err["detail"].startswith("The `Authorization` http header of your request was malformed.")


@pytest.mark.parametrize("path", ["/v2/locations", "/v2/orders/x", "/v2/payments", "/v2/refunds/x",
                                  "/_sim/clock", "/_sim/state"])
def test_every_route_needs_a_token(anon, path: str) -> None:
    r = anon.get(path)
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_no_token_gives_sdk_an_auth_error(make_sdk) -> None:
    client = make_sdk(None)  # the SDK leaves the Authorization header out
    with pytest.raises(ApiError) as info:
        client.locations.list(request_options=RO)
    assert info.value.status_code == 401
    assert info.value.errors[0].category == "AUTHENTICATION_ERROR"


def test_square_version_is_echoed(raw) -> None:
    r = raw.get("/v2/locations", headers={"Square-Version": "2024-01-18"})
    assert r.status_code == 200
    assert r.headers["square-version"] == "2024-01-18"
    # Errors echo it too, and a request without the header gets the server's version.
    r = raw.get("/v2/locations/NOPE", headers={"Square-Version": "2023-12-13"})
    assert r.status_code == 404
    assert r.headers["square-version"] == "2023-12-13"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.get("/v2/locations").headers["square-version"])


def test_sdk_version_header_round_trips(sdk) -> None:
    resp = sdk.locations.with_raw_response.list(request_options=RO)
    assert resp.status_code == 200
    # The SDK sends its own Square-Version; the simulator answers with the same value.
    sent = sdk._client_wrapper.get_headers()["Square-Version"]
    assert resp.headers["square-version"] == sent


def test_unknown_route_is_square_404(raw) -> None:
    r = raw.get("/v2/location")
    assert r.status_code == 404
    assert r.json() == {"errors": [{
        "code": "NOT_FOUND",
        "detail": "API endpoint for URL path `/v2/location` and HTTP method `GET` is not found.",
        "category": "INVALID_REQUEST_ERROR"}]}
    r = raw.delete("/v2/locations")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "NOT_FOUND"

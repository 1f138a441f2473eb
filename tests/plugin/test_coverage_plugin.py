"""``pytest --square-coverage`` / ``--square-coverage-json``, driven through pytester: a small
user suite runs in-process, under pytest-xdist, and against a served simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderfsm.coverage import SEED_HINT, Coverage
from orderfsm.lifecycles import LIFECYCLES
from orderfsm.rules import CATALOG

USER_SUITE = '''
import pytest
from square.core.api_error import ApiError

USD = "USD"


def make_order(client, key, pickup=True):
    loc = client.locations.list().locations[0].id
    order = {"location_id": loc, "line_items": [
        {"name": "Tea", "quantity": "1", "base_price_money": {"amount": 500, "currency": USD}}]}
    if pickup:
        order["fulfillments"] = [{"type": "PICKUP", "pickup_details": {
            "recipient": {"display_name": "Ann"}}}]
    return client.orders.create(idempotency_key=key, order=order).order


def pay(client, order, key):
    return client.payments.create(source_id="cnon:card-nonce-ok", idempotency_key=key,
                                  order_id=order.id,
                                  amount_money={"amount": 500, "currency": USD}).payment


@pytest.mark.square_live_compatible
def test_a_paid_order_cannot_be_canceled(square_client):
    order = make_order(square_client, "o1")
    pay(square_client, order, "p1")
    version = square_client.orders.get(order.id).order.version
    with pytest.raises(ApiError):
        square_client.orders.update(order.id, order={"version": version, "state": "CANCELED"})


@pytest.mark.square_live_compatible
def test_an_unpaid_order_can_be_canceled(square_client):
    order = make_order(square_client, "o2", pickup=False)
    square_client.orders.update(order.id, order={"version": order.version, "state": "CANCELED"})


@pytest.mark.square_live_compatible
def test_a_refund_settles(square_client):
    order = make_order(square_client, "o3", pickup=False)
    payment = pay(square_client, order, "p3")
    square_client.refunds.refund_payment(idempotency_key="r3", payment_id=payment.id,
                                         amount_money={"amount": 100, "currency": USD})
'''

SEEDLESS_SUITE = '''
def test_only_creates(square_client):
    loc = square_client.locations.list().locations[0].id
    square_client.orders.create(idempotency_key="k", order={"location_id": loc})
'''


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _check_shape(data: dict[str, Any]) -> None:
    assert set(data) == {"rules", "transitions"}
    assert set(data["rules"]) == set(CATALOG)
    for counts in data["rules"].values():
        assert set(counts) == {"triggered", "satisfied"}
        assert all(isinstance(n, int) and n >= 0 for n in counts.values())
    assert set(data["transitions"]) == set(LIFECYCLES)
    for edges in data["transitions"].values():
        assert all("->" in key and isinstance(n, int) for key, n in edges.items())


def test_the_table_and_the_json_of_an_in_process_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    out = pytester.path / "cov.json"
    result = pytester.runpytest("-p", "no:randomly", "--square-coverage",
                                f"--square-coverage-json={out}")
    result.assert_outcomes(passed=3)
    data = _json(out)
    _check_shape(data)
    rules, edges = data["rules"], data["transitions"]
    assert rules["order.cancel_after_payment"] == {"triggered": 1, "satisfied": 1}
    # The cancel of the unpaid order passed both cancel guards.
    assert rules["order.cancel_open_fulfillments"] == {"triggered": 0, "satisfied": 1}
    assert edges["order"]["OPEN->CANCELED"] == 1
    assert edges["order"]["OPEN->COMPLETED"] == 1  # the fulfillment-less order, paid, closes
    assert edges["refund"]["PENDING->COMPLETED"] == 0
    assert edges["fulfillment"]["PROPOSED->RESERVED"] == 0

    text = result.stdout.str()
    assert "orderfsm rule coverage" in text
    table = text[text.index("orderfsm rule coverage:"):]
    row = next(line for line in table.splitlines() if line.startswith("order.cancel_after_payment "))
    assert row.split()[1:3] == ["1", "1"]
    # Never-exercised rules and transitions come first.
    lines = table.splitlines()
    first_hit = next(i for i, line in enumerate(lines) if line.startswith("order.cancel_after_payment "))
    first_zero = next(i for i, line in enumerate(lines) if line.endswith("never exercised"))
    assert first_zero < first_hit
    assert lines.index(next(line for line in lines if line.endswith("never taken"))) < \
        lines.index(next(line for line in lines if line.startswith("order OPEN->CANCELED")))
    assert SEED_HINT not in text
    assert f"rule coverage written to {out}" in text


def test_the_seed_hint_when_no_test_cancels_a_paid_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SEEDLESS_SUITE)
    result = pytester.runpytest("-p", "no:randomly", "--square-coverage")
    result.assert_outcomes(passed=1)
    assert "hint: " + SEED_HINT in result.stdout.str()


def test_no_option_no_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SEEDLESS_SUITE)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "rule coverage" not in result.stdout.str()


def test_xdist_workers_are_merged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    alone = pytester.path / "alone.json"
    merged = pytester.path / "merged.json"
    pytester.runpytest_subprocess("-p", "no:randomly", f"--square-coverage-json={alone}"
                                  ).assert_outcomes(passed=3)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "--square-coverage",
                                           f"--square-coverage-json={merged}")
    result.assert_outcomes(passed=3)
    assert "2 workers" in result.stdout.str()
    assert _json(merged) == _json(alone)
    assert _json(merged)["rules"]["order.cancel_after_payment"]["triggered"] == 1
    # The controller prints one table; the workers print none.
    assert result.stdout.str().count("orderfsm rule coverage:") == 1


def test_a_served_simulator_through_sim_coverage(pytester: pytest.Pytester, live_server: Any
                                                 ) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    out = pytester.path / "cov.json"
    result = pytester.runpytest("-p", "no:randomly", f"--square-base-url={live_server.base_url}",
                                f"--square-coverage-json={out}")
    result.assert_outcomes(passed=3)
    data = _json(out)
    _check_shape(data)
    # Three fresh merchants on the server, summed.
    assert data["rules"]["order.cancel_after_payment"]["triggered"] == 1
    assert data["transitions"]["order"]["OPEN->CANCELED"] == 1
    assert data["transitions"]["order"]["OPEN->COMPLETED"] == 1


def test_a_shared_token_counts_this_run_only(pytester: pytest.Pytester, live_server: Any) -> None:
    token = "coverage-shared-token"
    # Before the run the merchant already rejected two cancels.
    with httpx.Client(base_url=live_server.base_url,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(2):
            loc = http.get("/v2/locations").json()["locations"][0]["id"]
            order = http.post("/v2/orders", json={"order": {"location_id": loc, "line_items": [
                {"name": "x", "quantity": "1",
                 "base_price_money": {"amount": 100, "currency": "USD"}}],
                "fulfillments": [{"type": "PICKUP", "pickup_details": {
                    "recipient": {"display_name": "Bo"}}}]}}).json()["order"]
            http.post("/v2/payments", json={
                "source_id": "cnon:card-nonce-ok", "idempotency_key": order["id"],
                "order_id": order["id"], "amount_money": {"amount": 100, "currency": "USD"}})
            r = http.put(f"/v2/orders/{order['id']}", json={"order": {"version": 2,
                                                                      "state": "CANCELED"}})
            assert r.status_code == 400
        before = Coverage.from_json(http.get("/_sim/coverage").json())
    assert before.triggered["order.cancel_after_payment"] == 2
    pytester.makepyfile(test_user=USER_SUITE.replace('"o1"', '"s-o1"').replace('"o2"', '"s-o2"')
                        .replace('"o3"', '"s-o3"').replace('"p1"', '"s-p1"')
                        .replace('"p3"', '"s-p3"').replace('"r3"', '"s-r3"'))
    out = pytester.path / "cov.json"
    pytester.runpytest("-p", "no:randomly", f"--square-base-url={live_server.base_url}",
                       f"--square-token={token}", f"--square-coverage-json={out}"
                       ).assert_outcomes(passed=3)
    assert _json(out)["rules"]["order.cancel_after_payment"]["triggered"] == 1


def test_a_server_without_coverage_is_reported(pytester: pytest.Pytester, bare_server: str
                                               ) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.square_live_compatible
def test_nothing(square_client):
    pass
''')
    result = pytester.runpytest("-p", "no:randomly", f"--square-base-url={bare_server}",
                                "--square-coverage")
    result.assert_outcomes(passed=1)
    assert f"no rule coverage from {bare_server}: GET /_sim/coverage answered 404" \
        in result.stdout.str()

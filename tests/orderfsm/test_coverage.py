"""Rule coverage: the engine's recording hook, the counters, and their renderings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orderfsm.cli import app
from orderfsm.coverage import SEED_HINT, Coverage, Observer, render
from orderfsm.engine import Engine
from orderfsm.errors import SquareError
from orderfsm.lifecycles import LIFECYCLES
from orderfsm.lifecycles._table import RECORDING
from orderfsm.rules import CATALOG

USD = "USD"
LINE = {"name": "Tea", "quantity": "1", "base_price_money": {"amount": 500, "currency": USD}}
PICKUP = {"type": "PICKUP", "pickup_details": {"recipient": {"display_name": "Ann"}}}


def observed() -> tuple[Engine, Observer]:
    eng = Engine(seed="cov")
    eng.observer = Observer()
    return eng, eng.observer


def order(eng: Engine, **extra: object) -> dict:
    return eng.create_order({"location_id": eng.main_location_id, "line_items": [LINE], **extra})


def authorize(eng: Engine, order_id: str, key: str = "p") -> dict:
    return eng.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": key,
                               "amount_money": {"amount": 500, "currency": USD},
                               "order_id": order_id, "autocomplete": False})


def test_a_committed_transition_counts_it_and_the_rules_it_passed() -> None:
    eng, obs = observed()
    o = order(eng, fulfillments=[PICKUP])
    p = authorize(eng, o["id"])
    eng.complete_payment(p["id"], p["version_token"])
    cov = obs.coverage
    assert cov.transitions["payment"] == {"APPROVED->COMPLETED": 1}
    # The guard of the transition, and the rejections the table lists for "complete".
    for rule in ("payment.version_mismatch", "payment.already_captured", "payment.expired",
                 "payment.already_canceled", "payment.already_failed", "payment.pending_locked"):
        assert cov.satisfied[rule] == 1, rule
    assert cov.transitions["order"] == {"OPEN->OPEN": 2}  # "pay" on authorize and on capture
    assert not cov.triggered  # the engine never counts rejections; the simulator does


def test_a_rejected_command_counts_nothing() -> None:
    eng, obs = observed()
    o = order(eng, fulfillments=[PICKUP])
    p = authorize(eng, o["id"])
    eng.complete_payment(p["id"])
    before = json.dumps(obs.coverage.to_json())
    commits = obs.commits
    # UpdateOrder passes the "update" transition, then is refused: line items are locked.
    with pytest.raises(SquareError) as err:
        eng.update_order(o["id"], {"version": eng.orders[o["id"]]["version"], "line_items": [LINE]})
    assert err.value.rule_id == "order.line_items_locked"
    assert json.dumps(obs.coverage.to_json()) == before
    assert obs.commits == commits
    assert RECORDING.get() is None


def test_paths_follow_each_record() -> None:
    eng, obs = observed()
    o = order(eng, fulfillments=[PICKUP])
    uid = o["fulfillments"][0]["uid"]
    for state in ("RESERVED", "PREPARED"):
        v = eng.orders[o["id"]]["version"]
        eng.update_order(o["id"], {"version": v, "fulfillments": [{"uid": uid, "state": state}]})
    steps = obs.path("fulfillment", uid)
    assert [(s["from"], s["to"], s["trigger"]) for s in steps] == [
        ("PROPOSED", "RESERVED", "reserve"), ("RESERVED", "PREPARED", "prepare")]
    assert obs.coverage.transitions["fulfillment"] == {"PROPOSED->RESERVED": 1,
                                                       "RESERVED->PREPARED": 1}


def test_timers_count_when_they_fire() -> None:
    eng, obs = observed()
    o = order(eng, fulfillments=[PICKUP])
    p = authorize(eng, o["id"])
    eng.advance(8 * 24 * 3600)  # past the delayed-capture deadline: the payment is voided
    assert eng.payments[p["id"]]["status"] == "CANCELED"
    assert obs.coverage.transitions["payment"] == {"APPROVED->CANCELED": 1}
    assert [s["trigger"] for s in obs.path("payment", p["id"])] == ["expire_cancel"]


def test_an_engine_without_observer_records_nothing() -> None:
    eng = Engine(seed="plain")
    o = order(eng)
    eng.update_order(o["id"], {"version": 1, "state": "CANCELED"})
    assert eng.observer is None
    assert RECORDING.get() is None


def test_add_minus_and_the_json_shape() -> None:
    a = Coverage()
    a.trigger("order.cancel_after_payment")
    a.satisfy("order.cancel_open_fulfillments")
    a.take("order", "OPEN", "CANCELED")
    b = Coverage.from_json(a.to_json()).add(a)
    assert b.triggered == {"order.cancel_after_payment": 2}
    assert b.transitions == {"order": {"OPEN->CANCELED": 2}}
    assert b.minus(a).to_json() == a.to_json()
    assert Coverage().minus(a).to_json() == Coverage().to_json()
    data = a.to_json()
    assert set(data) == {"rules", "transitions"}
    assert list(data["rules"]) == list(CATALOG)
    assert set(data["transitions"]) == set(LIFECYCLES)
    assert data["transitions"]["payment"]["APPROVED->COMPLETED"] == 0
    assert data["transitions"]["order"]["DRAFT->DRAFT"] == 0  # internal "update" on a DRAFT
    with pytest.raises(ValueError):
        Coverage.from_json({"rules": []})


def test_renderings_put_the_never_exercised_first_and_give_the_hint() -> None:
    cov = Coverage()
    cov.take("order", "OPEN", "CANCELED")
    cov.satisfy("order.cancel_after_payment")
    table = render(cov, "table")
    lines = table.splitlines()
    seed_row = next(i for i, line in enumerate(lines) if line.startswith("order.cancel_after_payment "))
    zero_row = next(i for i, line in enumerate(lines) if line.endswith("never exercised"))
    assert zero_row < seed_row
    assert lines[seed_row].split()[1:] == ["0", "1"]
    # Rules that reject nothing and no table checks are listed last and not counted.
    last_rule_row = lines[lines.index("", 3) - 1]
    assert last_rule_row.endswith("behaviour, not counted")
    assert last_rule_row.split()[1:3] == ["-", "-"]
    assert "hint: " + SEED_HINT in table  # satisfied, but a paid order was never refused
    cov.trigger("order.cancel_after_payment")
    assert SEED_HINT not in render(cov, "table")
    md = render(Coverage(), "markdown")
    assert md.startswith("# Rule coverage") and f"> **Hint:** {SEED_HINT}" in md
    assert "| `order.cancel_after_payment` | 0 | 0 | never exercised |" in md
    html = render(cov, "html")
    assert html.startswith("<!doctype html>") and "<code>order.cancel_after_payment</code>" in html
    with pytest.raises(ValueError):
        render(cov, "pdf")


def test_the_coverage_command(tmp_path: Path) -> None:
    cov = Coverage()
    cov.trigger("order.cancel_after_payment")
    path = tmp_path / "cov.json"
    path.write_text(json.dumps(cov.to_json()))
    runner = CliRunner()
    for fmt, marker in (("table", "orderfsm rule coverage:"), ("markdown", "# Rule coverage"),
                        ("html", "<!doctype html>")):
        result = runner.invoke(app, ["coverage", str(path), "--format", fmt])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(marker) or marker in result.output.splitlines()[0]
        assert "order.cancel_after_payment" in result.output
    assert runner.invoke(app, ["coverage", str(tmp_path / "missing.json")]).exit_code == 2
    path.write_text("[1, 2]")
    bad = runner.invoke(app, ["coverage", str(path)])
    assert bad.exit_code == 2 and "is not a rule-coverage file" in " ".join(bad.output.split())

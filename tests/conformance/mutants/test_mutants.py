"""The mutation suite: the conformance runner, at its default settings, against the simulator
with one plausible bug at a time (see mutants.py). Every mutant must be caught, blamed on the
rule it breaks, with the kind of difference it makes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from orderfsm.conformance import asgi_client, run
from orderfsm.engine import Engine
from orderfsm.errors import SquareError


def _load() -> Any:
    name = "orderfsm_conformance_mutants"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("mutants.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


M = _load()
SEED = 1  # the runner's other settings stay at their defaults (100 examples, 12 steps)


def conform(app: Any) -> Any:
    with asgi_client(app) as http:
        return run("http://testserver", "mutant-token", httpx_client=http, seed=SEED)


def test_the_suite_has_the_mutants_the_issue_names() -> None:
    names = {m.name for m in M.MUTANTS}
    assert len(names) == len(M.MUTANTS) >= 15
    for needed in ("replay_creates_payment", "pay_order_overpayment",
                   "delayed_capture_never_expires", "refund_completes_at_once",
                   "stale_order_version_code", "stale_order_version_accepted"):
        assert needed in names


@pytest.mark.parametrize("mutant", M.MUTANTS, ids=lambda m: m.name)
def test_mutant_is_caught_and_blamed_on_its_rule(mutant: Any) -> None:
    app, patches = M.mutated_app(mutant.patch)
    with patches:
        report = conform(app)
    assert not report.ok, f"{mutant.name} ({mutant.bug}) passed {report.examples_run} sequences"
    found = report.divergences[0]
    assert found.rule_id == mutant.rule, (found.rule_id, found.summary)
    assert found.kind in mutant.kind.split(), (found.kind, found.summary)
    assert found.headline.startswith(mutant.rule)
    assert found.flaky is False
    # Shrunk: the reproducer is short, and it compiles.
    assert len(found.steps) <= 8, [s["call"] for s in found.steps]
    compile(found.snippet, "snippet.py", "exec")


def test_a_mutant_changes_the_served_engine_only() -> None:
    """The oracle is the same Engine class: outside a request the original code runs, so an
    overpaying PayOrder is still refused there while the mutant is in place."""
    mutant = next(m for m in M.MUTANTS if m.name == "pay_order_overpayment")
    _, patches = M.mutated_app(mutant.patch)
    with patches:
        engine = Engine()
        order = engine.create_order({"location_id": engine.main_location_id, "line_items": [
            {"uid": "a", "name": "A", "quantity": "1",
             "base_price_money": {"amount": 500, "currency": "USD"}}]})
        pay = engine.create_payment({"source_id": "cnon:card-nonce-ok", "idempotency_key": "k",
                                     "order_id": order["id"], "autocomplete": False,
                                     "amount_money": {"amount": 500, "currency": "USD"}})
        current = engine.get_order(order["id"])["version"]
        engine.update_order(order["id"], {"version": current}, ["line_items[a]"])
        with pytest.raises(SquareError) as err:
            engine.pay_order(order["id"], [pay["id"]])
        assert err.value.rule_id == "pay_order.amount_mismatch"

"""docs/strategies.md: its snippet answers the seed question against a simulator, as printed."""

from __future__ import annotations

import importlib.util
import runpy
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette prefers httpx2; the SDK needs an httpx.Client
    from starlette.testclient import TestClient

from square import Square

from simulator import create_app

pytestmark = pytest.mark.filterwarnings(
    "ignore:You should not use the 'timeout' argument with the TestClient")

REPO = Path(__file__).resolve().parents[2]
SNIPPET = REPO / "docs" / "snippets" / "cancel_after_refund.py"
PAGE = REPO / "docs" / "strategies.md"
SEED_DETAIL = "Orders cannot be canceled after payments have been processed."
NEVER = {"cancel_after_payment": "never"}


@pytest.fixture(scope="module")
def snippet() -> Any:
    spec = importlib.util.spec_from_file_location("cancel_after_refund_snippet", SNIPPET)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def client_for(app: Any, token: str) -> Square:
    return Square(token=token, base_url="http://testserver", httpx_client=TestClient(app))


def test_default_variants_end_with_the_order_canceled(snippet: Any, capsys) -> None:
    client = client_for(create_app(), "docs-default")
    outcome = snippet.main(client)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == SEED_DETAIL
    assert outcome.ok and outcome.canceled
    assert outcome.picked == "refund_then_cancel_fulfillments_then_cancel"
    assert [r.request.split()[0] for r in outcome.steps] == ["PUT", "PUT"]
    order = client.orders.get(outcome.order_id).order
    assert order.state == "CANCELED"
    assert order.fulfillments[0].state == "CANCELED"
    assert order.fulfillments[0].pickup_details.cancel_reason == "Customer changed their mind"
    assert out.splitlines()[-1].startswith("canceled ")


def test_never_variant_leaves_the_order_open_off_the_queues(snippet: Any, capsys) -> None:
    client = client_for(create_app(variants=NEVER), "docs-never")
    outcome = snippet.main(client, variants=NEVER)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == SEED_DETAIL
    assert outcome.ok and not outcome.canceled
    assert outcome.picked == "cancel_fulfillments_only"
    assert [r.rule for r in outcome.plan.ruled_out] == ["order.cancel_after_payment"]
    assert outcome.final.order_state == "OPEN"
    assert set(outcome.final.fulfillments.values()) == {"CANCELED"}
    assert list(outcome.final.refunded.values()) == [1500]
    assert out.splitlines()[-1].startswith("still OPEN ")


def test_the_script_starts_its_own_simulator(monkeypatch, capsys) -> None:
    monkeypatch.delenv("SQUARE_BASE_URL", raising=False)
    runpy.run_path(str(SNIPPET), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == SEED_DETAIL
    assert lines[-1].startswith("canceled ")


def test_the_page_shows_the_snippet_as_it_is() -> None:
    text = PAGE.read_text()
    marker = "<!-- snippet: docs/snippets/cancel_after_refund.py -->\n```python\n"
    assert marker in text
    body = text.split(marker, 1)[1].split("\n```\n", 1)[0] + "\n"
    assert body == SNIPPET.read_text()

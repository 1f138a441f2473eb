"""Conformance: check any Square-compatible server against orderfsm's rules.

A hypothesis state machine sends random call sequences through the official SDK to the server
under test and, in the same order, to an orderfsm :class:`~orderfsm.engine.Engine` (the
oracle, with a manual clock and the chosen rule variants). After every call it compares what
each side accepted or rejected (status, category, code, field) and the resulting objects
(order state, version, totals and amount due, fulfillment and line item states; payment
status, amounts and refunded money; refund status and amount). Each difference is attributed to
a catalog rule and to a kind (a different decision, a different error or a different resulting
state), shrunk to a short sequence within a time budget, and rendered as a runnable SDK script.
Each sequence opens with a scenario aimed at a rule checked least so far, and the report lists
the reachable rules the run never checked.

    from orderfsm.conformance import run, detect_variants
    report = run("http://127.0.0.1:8000", "sandbox-token", examples=200, seed=1)
    assert report.ok, report.divergences[0].snippet
"""

from ._detect import PROBES, detect_variants
from ._machine import ConformanceMachine
from ._report import DivergenceReport, Report, RuleStats, VariantFinding, VariantReport
from ._runner import DEFAULT_STEPS, ConformanceError, Target, connect, run
from ._session import Divergence, Mismatch, rule_for_error
from ._transport import ASGITransportSync, asgi_client

__all__ = [
    "run",
    "detect_variants",
    "connect",
    "Report",
    "RuleStats",
    "DivergenceReport",
    "VariantReport",
    "VariantFinding",
    "ConformanceError",
    "ConformanceMachine",
    "Divergence",
    "Mismatch",
    "Target",
    "PROBES",
    "DEFAULT_STEPS",
    "rule_for_error",
    "asgi_client",
    "ASGITransportSync",
]

"""The fuzz suites report how many cases they ran and how many 5xx they saw, at the end of the
run (``STATS`` counters filled by tests/fuzz/test_*.py)."""

from __future__ import annotations

from collections import Counter

import pytest

#: suite name -> Counter(cases=..., 2xx=..., 4xx=..., 5xx=...)
STATS: dict[str, Counter] = {}


def count(suite: str, status: int) -> None:
    c = STATS.setdefault(suite, Counter())
    c["cases"] += 1
    c[f"{status // 100}xx"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for suite, c in STATS.items():
        terminalreporter.write_line(
            f"{suite}: {c['cases']} cases, 5xx seen: {c['5xx']} "
            f"(2xx {c['2xx']}, 4xx {c['4xx']})")


@pytest.fixture(scope="session")
def fuzz_count():
    """``fuzz_count(suite, status)``: count one case and its status for the end-of-run line."""
    return count

"""A running simulator for the documentation snippets and commands that need a URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from orderfsm.simulator import create_app, running


@dataclass
class Server:
    app: Any
    base_url: str


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A real simulator on a free loopback port, standing in for `orderfsm serve`."""
    app = create_app()
    with running(app=app) as base_url:
        yield Server(app, base_url)

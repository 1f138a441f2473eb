"""Helpers of the documentation tests: where the docs are and how to read their code blocks.
Test modules load this file by path (tests/ has no packages), as ``docs``."""

from __future__ import annotations

import importlib.util
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SNIPPETS = DOCS / "snippets"
# The pages these tests hold to "every code block is a tested file". rules.md is generated
# whole from the catalog and has its own test.
OWN_PAGES = ("README.md", "docs/index.md", "docs/testing.md", "docs/simulator.md",
             "docs/cancelling.md", "docs/conformance.md", "docs/catalog.md", "docs/pricing.md",
             "docs/inspector.md", "docs/storage.md", "docs/deploy.md")
# The URL the docs use for a local `orderfsm serve` (its default port); tests substitute a
# server of their own.
DOC_URL = "http://127.0.0.1:8000"

FENCE_RE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.S | re.M)
MARKER_RE = re.compile(r"<!-- snippet: (?P<path>\S+) -->\n$")


@dataclass(frozen=True)
class Block:
    page: str
    lang: str
    body: str
    snippet: str | None  # the snippet file it includes, when preceded by a marker
    line: int

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang or 'no language'})"


def own_pages() -> list[str]:
    return [p for p in OWN_PAGES if (REPO / p).is_file()]


def blocks(page: str) -> list[Block]:
    """The fenced code blocks of a page, in order."""
    text = (REPO / page).read_text()
    out = []
    for m in FENCE_RE.finditer(text):
        before = text[:m.start()]
        marker = MARKER_RE.search(before[-200:])
        out.append(Block(page, m["lang"], m["body"], marker["path"] if marker else None,
                         before.count("\n") + 1))
    return out


def shell_lines(page: str) -> list[str]:
    """The command lines in a page's bash blocks (comments and blank lines dropped)."""
    lines = []
    for block in blocks(page):
        if block.lang in ("bash", "sh", "console", "shell"):
            for line in block.body.splitlines():
                line = line.strip().removeprefix("$ ")
                if line and not line.startswith("#"):
                    lines.append(line)
    return lines


def load_tool(name: str) -> Any:
    """A script from tools/, imported as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def orderfsm_command() -> list[str]:
    """How to run the installed `orderfsm` command from a test (its script, or the module)."""
    script = Path(sys.executable).with_name("orderfsm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "orderfsm.cli"]

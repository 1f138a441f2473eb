"""A real headless browser for the inspector tests: Debian's chromium driven by selenium
through the system chromedriver. Nothing is downloaded; .ci/run installs both packages.

Without chromium the tests skip on a developer machine, and fail under CI=true."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ORDERFSM_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
    "--lang=en-US",
)


def _find(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # pragma: no cover - selenium is in the test extra
        chromium = None
    if chromium is None or driver_path is None:
        reason = ("the inspector's browser tests need Debian's chromium and chromium-driver "
                  "(apt-get install chromium chromium-driver) and selenium")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="orderfsm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1440,1000")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave screenshots (``ORDERFSM_TEST_ARTIFACTS`` or test-artifacts/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

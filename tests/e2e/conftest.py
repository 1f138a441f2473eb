"""Helpers shared by the end-to-end tests, which start real server processes."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """Ask a server process to stop (SIGTERM), kill it if it has not within ``timeout`` seconds,
    and close its output pipe."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    proc.stdout.close()

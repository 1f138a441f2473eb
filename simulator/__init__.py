"""A fake Square server that follows orderfsm's rules through Square's real HTTP API."""

from .app import create_app
from .store import SimulatorConfig

__all__ = ["create_app", "SimulatorConfig"]

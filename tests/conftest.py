"""Shared pytest configuration for the whole test tree."""

# ---------------------------------------------------------------------------------------------
# Hypothesis profiles
#
#   ci   (default) max_examples=200, no deadline, too_slow health check suppressed
#   deep           max_examples=2000, same otherwise
#
# Choose one with ORDERFSM_HYPOTHESIS_PROFILE=deep.
# ---------------------------------------------------------------------------------------------
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("ORDERFSM_HYPOTHESIS_PROFILE", "ci"))

# pytester drives the orderfsm pytest plugin's tests (tests/plugin/); pytest accepts
# pytest_plugins only in this top-level conftest.
pytest_plugins = ["pytester"]

"""Shared pytest configuration: bounded, deterministic-enough hypothesis profiles."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The whole suite must stay well under a minute on two cores: keep example
# counts modest and never time individual examples (the core may be rebuilt
# under us, and CI machines are noisy).
settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

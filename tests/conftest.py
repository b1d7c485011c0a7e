"""Shared fixtures and instance generators for qfsel's tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from benches.instances import explanation_like, hard  # noqa: F401  (re-exported for tests)

settings.register_profile("qfsel", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
settings.load_profile("qfsel")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

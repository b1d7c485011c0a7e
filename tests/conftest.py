"""Shared fixtures and instance generators for qfsel's tests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("qfsel", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
settings.load_profile("qfsel")


def explanation_like(rng: np.random.Generator, b: int, k: int, *, redundancy_weight: float = 1.0):
    """Relevance in (0, 1] (max 1) and |cos| redundancy of correlated random maps, like a real layer."""
    base = rng.normal(size=(b, 1, 49))
    maps = 0.6 * base + rng.normal(size=(b, k, 49))
    maps /= np.linalg.norm(maps, axis=2, keepdims=True)
    j = np.abs(maps @ maps.transpose(0, 2, 1)) * redundancy_weight
    j[:, np.arange(k), np.arange(k)] = 0.0
    h = rng.uniform(0.05, 1.0, size=(b, k))
    h /= h.max(axis=1, keepdims=True)
    return h, j


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

"""Instance families shaped like real explanations, shared by the benchmarks.

``explanation_like``: relevance in (0, 1] (largest 1), redundancy = |cos| of
feature maps that share a common component (correlated, as a conv layer's maps
are). ``hard``: the same with a 10x larger redundancy weight, where greedy
construction and local search stop short of the optimum.
"""

from __future__ import annotations

import numpy as np


def explanation_like(rng: np.random.Generator, b: int, k: int, *, redundancy_weight: float = 1.0, pixels: int = 49):
    base = rng.normal(size=(b, 1, pixels))
    maps = 0.6 * base + rng.normal(size=(b, k, pixels))
    maps /= np.linalg.norm(maps, axis=2, keepdims=True)
    j = np.abs(maps @ maps.transpose(0, 2, 1)) * redundancy_weight
    j[:, np.arange(k), np.arange(k)] = 0.0
    h = rng.uniform(0.05, 1.0, size=(b, k))
    h /= h.max(axis=1, keepdims=True)
    return np.ascontiguousarray(h), np.ascontiguousarray(j)


def hard(rng: np.random.Generator, b: int, k: int):
    return explanation_like(rng, b, k, redundancy_weight=10.0)

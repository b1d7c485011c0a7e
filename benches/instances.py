"""Instance families shaped like real explanations, shared by the benchmarks.

``explanation_like``: relevance in (0, 1] (largest 1), redundancy = |cos| of
feature maps that share a common component (correlated, as a conv layer's maps
are). ``hard``: the same with a 10x larger redundancy weight, where greedy
construction and local search stop short of the optimum.
"""

from __future__ import annotations

import math

import numpy as np


def tts99(t_read: float, p: float) -> float:
    """Time to solution with 99% confidence from the time per read and the success per read."""
    if p <= 0:
        return math.inf
    if p >= 0.99:
        return t_read
    return t_read * math.log(0.01) / math.log(1 - p)


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

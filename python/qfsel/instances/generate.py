"""Seeded synthetic instance families shaped like explanations (K = 8 .. 2048).

Every family builds ``K`` flattened "feature maps" and uses ``J_pq = |cos(map_p, map_q)|`` (zero
diagonal) as redundancy, as QFS-CAM does, with a relevance vector normalised to max 1:

* ``explanation``: uniform relevance in [0.05, 1]; maps share one common component (correlated,
  as a conv layer's maps are; off-diagonal ``|cos|`` ~ 0.25), 49 pixels.
* ``lognormal``: lognormal relevance; sparse ReLU maps mixed from 8 shared latent patterns, 196 pixels.
* ``redundant``: ``explanation`` with the redundancy weighted 10x: redundancy-dominated, where greedy
  construction and local search stop short of the optimum.
* ``few-dominant``: a few (``max(2, k // 4)``) maps of relevance ~1 that are near copies of each
  other (``|cos|`` ~ 0.9), the rest lognormal and small; 49 pixels.
* ``grouped``: maps in ``K / 8`` groups of near-duplicates (within-group ``|cos|`` ~ 0.8-0.95, across
  ~ 0.15), redundancy weighted 3x: the optimum takes at most one map per group.
* ``uniform``: uniform relevance in [0, 1], independent random maps (weak redundancy, ~ 0.1).

The default schedules were tuned on :data:`TUNING` (``explanation``, ``lognormal``, ``redundant``)
and validated on the held-out :data:`HELD_OUT` (``few-dominant``, ``grouped``, ``uniform``).
"""

from __future__ import annotations

import zlib
from typing import Callable, Iterable

import numpy as np

from .._checks import check_int, check_unit_interval
from ._format import Instance

__all__ = ["FAMILIES", "TUNING", "HELD_OUT", "default_k", "generate", "generate_suite"]


def _normalise(m: np.ndarray) -> np.ndarray:
    return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-12)


def _abs_cos(m: np.ndarray) -> np.ndarray:
    m = _normalise(m)
    j = np.abs(m @ m.T)
    np.fill_diagonal(j, 0.0)
    return (j + j.T) / 2


def _explanation(rng: np.random.Generator, n: int, k: int, weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    maps = 0.6 * rng.normal(size=(1, 49)) + rng.normal(size=(n, 49))
    h = rng.uniform(0.05, 1.0, size=n)
    return h / h.max(), _abs_cos(maps) * weight


def _lognormal(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    h = rng.lognormal(0.0, 1.0, size=n)
    a = rng.normal(size=(n, 8))
    z = rng.normal(size=(8, 196))
    m = np.maximum(a @ z + rng.normal(size=(n, 196)) - 1.0, 0.0)
    return h / h.max(), _abs_cos(m)


def _redundant(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return _explanation(rng, n, k, weight=10.0)


def _few_dominant(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    lead = max(2, k // 4)
    h = np.minimum(rng.lognormal(-2.5, 0.6, size=n), 0.3)
    idx = rng.choice(n, size=lead, replace=False)
    h[idx] = rng.uniform(0.85, 1.0, size=lead)
    maps = 0.4 * rng.normal(size=(1, 49)) + rng.normal(size=(n, 49))
    core = rng.normal(size=(1, 49))
    maps[idx] = 3.0 * core + 0.5 * rng.normal(size=(lead, 49))
    return h / h.max(), _abs_cos(maps)


def _grouped(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    groups = max(2, n // 8)
    g = rng.integers(0, groups, size=n)
    centres = rng.normal(size=(groups, 49)) + 0.3 * rng.normal(size=(1, 49))
    spread = rng.uniform(0.2, 0.5, size=(n, 1))
    maps = centres[g] + spread * rng.normal(size=(n, 49))
    h = rng.uniform(0.05, 1.0, size=n)
    return h / h.max(), 3.0 * _abs_cos(maps)


def _uniform(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    h = rng.uniform(0.0, 1.0, size=n)
    h[rng.integers(n)] = 1.0
    return h / h.max(), _abs_cos(rng.normal(size=(n, 49)))


FAMILIES: dict[str, Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]] = {
    "explanation": _explanation,
    "lognormal": _lognormal,
    "redundant": _redundant,
    "few-dominant": _few_dominant,
    "grouped": _grouped,
    "uniform": _uniform,
}
#: Families the default schedules were tuned on.
TUNING = ("explanation", "lognormal", "redundant")
#: Families held out for validation (different relevance and redundancy structure).
HELD_OUT = ("few-dominant", "grouped", "uniform")


def default_k(num_variables: int) -> int:
    """The ``k`` used when none is given: 3 (K <= 8), 4 (K <= 32), 8 (K <= 64), else 16.

    Example:
        >>> [default_k(n) for n in (8, 32, 64, 256)]
        [3, 4, 8, 16]
    """
    n = check_int("num_variables", num_variables, low=2)
    return 3 if n <= 8 else 4 if n <= 32 else 8 if n <= 64 else 16


def generate(family: str, num_variables: int, *, k: int | None = None, seed: int = 0, beta: float = 0.7) -> Instance:
    """One seeded instance of ``family`` with ``num_variables`` maps (``k``: :func:`default_k`).

    The same ``(family, num_variables, k, seed)`` always gives the same instance.
    """
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {family!r}")
    n = check_int("num_variables", num_variables, low=2, high=2048)
    kk = default_k(n) if k is None else check_int("k", k, low=1, high=n)
    s = check_int("seed", seed, low=0, high=2**32 - 1)
    beta = check_unit_interval("beta", beta)
    rng = np.random.default_rng([zlib.crc32(family.encode()), n, kk, s])
    h, j = FAMILIES[family](rng, n, kk)
    prov = {"source": "generated", "generator": f"qfsel.instances.generate.{family}", "seed": s,
            "num_variables": n, "k": kk}
    return Instance(name=f"{family}-K{n}-k{kk}-s{s}", relevance=h, redundancy=j, beta=beta, k=kk,
                    family=family, provenance=prov)


def generate_suite(families: Iterable[str], sizes: Iterable[int], *, seeds: Iterable[int] = (0,),
                   k: int | None = None, beta: float = 0.7) -> list[Instance]:
    """``generate`` over every family x size x seed, in that order."""
    return [generate(f, n, k=k, seed=s, beta=beta) for f in families for n in sizes for s in seeds]

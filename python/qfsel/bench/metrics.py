"""Benchmark metrics: success probability, TTS99 with bootstrap confidence intervals, approximation ratio.

Definitions (per instance, sampler and budget, over every read of every seed):

* success ``p``: fraction of reads that are feasible (exactly ``k`` ones) and reach the best known
  energy ``E*`` within ``1e-9 max(1, |E*|)``;
* feasibility rate: fraction of reads with exactly ``k`` ones;
* residual energy: mean ``E - E*`` over feasible reads;
* approximation ratio: mean over feasible reads of ``E / E*`` when ``E* < 0`` and ``E* / E`` when
  ``E* > 0`` (1 is optimal, smaller is worse; ``nan`` when ``E* = 0``);
* ``TTS99 = t_read ln(0.01) / ln(1 - p)`` (``t_read`` when ``p >= 0.99``, ``inf`` when ``p = 0``), with
  ``t_read`` the wall time of the sampler calls divided by the number of reads;
* confidence intervals: percentile bootstrap (95%, 1000 resamples of the reads, seeded).

Example:
    >>> round(tts99(1e-3, 0.5), 6)
    0.006644
    >>> tts99(1.0, 0.0)
    inf
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["tts99", "tts99_array", "bootstrap_tts", "bootstrap_median_tts", "success_mask", "approximation_ratio", "spearman", "jaccard"]

RELATIVE_TOLERANCE = 1e-9


def tts99(t_read: float, p: float) -> float:
    """Time to reach the best known energy with 99% confidence."""
    if not p > 0:
        return math.inf
    if p >= 0.99:
        return float(t_read)
    return float(t_read * math.log(0.01) / math.log1p(-p))


def tts99_array(t_read: np.ndarray | float, p: np.ndarray) -> np.ndarray:
    """Vectorised :func:`tts99`."""
    p = np.asarray(p, dtype=float)
    t = np.broadcast_to(np.asarray(t_read, dtype=float), p.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = t * math.log(0.01) / np.log1p(-np.minimum(p, 0.99))
    out = np.where(p >= 0.99, t, out)
    return np.where(p > 0, out, np.inf)


def success_mask(energies: np.ndarray, feasible: np.ndarray, best: float) -> np.ndarray:
    """Reads that are feasible and at the best known energy."""
    return np.asarray(feasible, bool) & (np.asarray(energies) <= best + RELATIVE_TOLERANCE * max(1.0, abs(best)))


def approximation_ratio(energies: np.ndarray, best: float) -> float:
    """Mean approximation ratio of (feasible) read energies (see module docs)."""
    e = np.asarray(energies, dtype=float)
    if e.size == 0 or best == 0:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        r = e / best if best < 0 else best / e
    r = np.where(np.isfinite(r), r, 0.0)
    return float(np.mean(r))


def bootstrap_tts(success: np.ndarray, t_read: float, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float, float, float]:
    """``(p_lo, p_hi, tts_lo, tts_hi)``: 95% percentile-bootstrap intervals of ``p`` and TTS99 over reads."""
    s = np.asarray(success, bool)
    if s.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    ps = rng.binomial(s.size, s.mean(), size=resamples) / s.size  # resampling reads = binomial draws
    tts = tts99_array(t_read, ps)
    p_lo, p_hi = np.percentile(ps, [2.5, 97.5], method="nearest")
    t_lo, t_hi = np.percentile(tts, [2.5, 97.5], method="nearest")
    return float(p_lo), float(p_hi), float(t_lo), float(t_hi)


def bootstrap_median_tts(num_reads: np.ndarray, p: np.ndarray, t_read: np.ndarray, *, resamples: int = 1000,
                         seed: int = 0) -> tuple[float, float, float]:
    """Median TTS99 over instances and its 95% bootstrap interval (instances, then their reads, resampled)."""
    n = np.asarray(num_reads, dtype=np.int64)
    p = np.asarray(p, dtype=float)
    t = np.asarray(t_read, dtype=float)
    if p.size == 0:
        return math.nan, math.nan, math.nan
    point = float(np.median(tts99_array(t, p)))
    rng = np.random.default_rng(seed)
    m = p.size
    pick = rng.integers(0, m, size=(resamples, m))
    nn = np.maximum(n[pick], 1)
    ps = rng.binomial(nn, p[pick]) / nn
    meds = np.median(tts99_array(t[pick], ps), axis=1)
    lo, hi = np.percentile(meds, [2.5, 97.5], method="nearest")
    return point, float(lo), float(hi)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two heatmaps (``nan`` when one is constant)."""
    from scipy.stats import rankdata

    x, y = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    if np.std(x) == 0 or np.std(y) == 0:
        return 1.0 if np.array_equal(np.ravel(a), np.ravel(b)) else math.nan
    return float(np.corrcoef(x, y)[0, 1])


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index of two selected sets given as 0/1 states (1 when both are empty)."""
    sa, sb = np.asarray(a, bool), np.asarray(b, bool)
    union = np.sum(sa | sb)
    return 1.0 if union == 0 else float(np.sum(sa & sb) / union)

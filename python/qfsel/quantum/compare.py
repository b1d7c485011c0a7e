"""Penalty encoding with the transverse field vs the XY mixer, on the same exactly-k problems."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._problems import as_problems
from .anneal import anneal_batch
from .spectrum import min_gap_batch

__all__ = ["compare_encodings"]


def compare_encodings(problems: Any, Ts: Any = (10, 50, 100), *, graph: str = "complete", gaps: bool = True, **kwargs: Any) -> dict:
    """Minimum gap and success probability of both encodings of exactly-k problems.

    Returns a dict ``{"penalty": {...}, "xy": {...}}``, each with ``success`` ``(P, len(Ts))``
    (ground-manifold weight of the feasible optimum), ``delta_min`` and ``s_star`` ``(P,)``
    (when ``gaps``), and ``d``. Both use the same schedule, Hamiltonian form and driver scale.

    Example:
        >>> import numpy as np
        >>> from qfsel import FeatureSelectionProblem
        >>> from qfsel.quantum import compare_encodings
        >>> rng = np.random.default_rng(0)
        >>> J = rng.uniform(0, 1, (5, 5)); J = (J + J.T) / 2; np.fill_diagonal(J, 0)
        >>> p = FeatureSelectionProblem(rng.uniform(0.2, 1, 5), J, k=2)
        >>> out = compare_encodings([p], Ts=[50], seed=0)
        >>> sorted(out), out["xy"]["success"].shape
        (['Ts', 'penalty', 'xy'], (1, 1))
    """
    probs = as_problems(problems)
    if any(p.k is None for p in probs):
        raise ValueError("problems: compare_encodings needs exactly-k problems (k set)")
    out: dict = {"Ts": np.atleast_1d(np.asarray(Ts, dtype=float))}
    gap_keys = ("schedule", "hamiltonian", "driver_scale", "max_qubits", "num_threads")
    for enc in ("penalty", "xy"):
        res = anneal_batch(probs, Ts, encoding=enc, graph=graph, **kwargs)
        entry = {"success": res.success, "shot_success": res.shot_success, "d": res.d}
        if gaps:
            g = min_gap_batch(probs, encoding=enc, graph=graph, **{k: v for k, v in kwargs.items() if k in gap_keys})
            entry["delta_min"] = np.array([x.delta_min for x in g])
            entry["s_star"] = np.array([x.s_star for x in g])
        out[enc] = entry
    return out

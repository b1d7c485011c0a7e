"""Ground truth of an instance: exact where enumerable, else the best known over several long runs."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from .._checks import check_int
from ._format import Instance

__all__ = ["EXACT_LIMIT", "exact_limit_ok", "ground_truth", "with_ground_truth"]

#: Largest number of candidate states (``C(K, k)``, or ``2**K`` without ``k``) searched exhaustively.
EXACT_LIMIT = 2_000_000


def exact_limit_ok(num_variables: int, k: int | None, limit: int = EXACT_LIMIT) -> bool:
    """Whether exhaustive search of ``C(K, k)`` (or ``2**K``) states is within ``limit``."""
    size = math.comb(num_variables, k) if k is not None else 2**num_variables
    return size <= limit


def ground_truth(instance: Instance, *, exact_limit: int = EXACT_LIMIT, effort: float = 1.0,
                 seed: int = 12345) -> tuple[float, np.ndarray, str, dict]:
    """``(energy, state, method, details)`` for ``instance``.

    ``method`` is ``"exact"`` (exhaustive search over ``C(K, k)`` states, when at most
    ``exact_limit``) or ``"best-known"``: the lowest energy over qfsel's swap tabu search (16 reads
    of ``50 effort`` ms each), swap SA with 2000 sweeps (32 reads) and with its defaults (128 reads),
    and greedy; ``details`` lists each one's best energy and how many of them reached the minimum.
    Without ``k`` the same runs use single flips. ``effort`` scales the run lengths.
    """
    from ..samplers.exact import exact_ground_states
    from ..samplers.greedy import greedy_descent
    from ..samplers.sa import simulated_annealing
    from ..samplers.tabu import tabu_search

    limit = check_int("exact_limit", exact_limit, low=0)
    if not (isinstance(effort, (int, float)) and effort > 0 and math.isfinite(effort)):
        raise ValueError(f"effort: expected a positive number, got {effort!r}")
    prob = instance.problem()
    k = instance.k
    q, off = prob.qubo(include_penalty=False)
    q3, off3 = q[None], np.array([off])
    n = instance.num_variables
    if exact_limit_ok(n, k, limit):
        energies, counts, ground, visited = exact_ground_states(q3, off3, k, max_ground_states=16)
        state = ground[0][0]
        return float(prob.energy(state)), state, "exact", {
            "solver": "qfsel exact_ground_states", "num_ground_states": int(counts[0]), "visited": int(visited[0])}
    cands: dict[str, tuple[float, np.ndarray]] = {}

    def keep(label: str, states: np.ndarray) -> None:
        states = np.atleast_2d(states)
        if k is not None:
            states = states[states.sum(axis=1) == k]
        if not len(states):
            return
        e = np.array([prob.energy(s) for s in states])
        i = int(np.argmin(e))
        cands[label] = (float(e[i]), states[i].copy())

    tb = tabu_search(q3, off3, k, num_reads=16, timeout=50.0 * effort, seed=seed, return_read_states=True)
    keep("qfsel tabu (16 reads x %g ms)" % (50.0 * effort), tb["read_states"][0])
    long = simulated_annealing(q3, off3, k=k, num_reads=32, num_sweeps=max(1, int(2000 * effort)), seed=seed + 1,
                               return_states=True)
    keep("qfsel SA (32 reads x %d sweeps)" % max(1, int(2000 * effort)), long["states"][0])
    dflt = simulated_annealing(q3, off3, k=k, num_reads=max(1, int(128 * effort)), seed=seed + 2, return_states=True)
    keep("qfsel SA defaults (%d reads)" % max(1, int(128 * effort)), dflt["states"][0])
    g_states, _, _ = greedy_descent(q3, off3, k)
    keep("qfsel greedy", g_states[0])
    best_label = min(cands, key=lambda lab: cands[lab][0])
    best_e, best_state = cands[best_label]
    tol = 1e-9 * max(1.0, abs(best_e))
    agree = [lab for lab, (e, _) in cands.items() if e <= best_e + tol]
    return best_e, best_state, "best-known", {
        "runs": {lab: e for lab, (e, _) in cands.items()}, "reached_by": agree, "num_reached": len(agree)}


def with_ground_truth(instances: Iterable[Instance], *, exact_limit: int = EXACT_LIMIT, effort: float = 1.0,
                      recompute: bool = False) -> list[Instance]:
    """Each instance with its ground truth (computed only where missing unless ``recompute``)."""
    out = []
    for inst in instances:
        if inst.ground_truth is not None and not recompute:
            out.append(inst)
            continue
        e, s, method, details = ground_truth(inst, exact_limit=exact_limit, effort=effort)
        out.append(inst.with_ground_truth(e, s, method, details))
    return out

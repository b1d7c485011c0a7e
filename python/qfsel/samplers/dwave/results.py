"""Per-problem results of the D-Wave routes, and the repair of infeasible reads.

Repair (documented contract): a read with ``m != k`` ones is fixed greedily
to exactly ``k`` ones on the objective ``E`` (no penalty). While ``m > k`` it
drops the selected variable whose removal lowers ``E`` the most (or raises it
the least); while ``m < k`` it adds the unselected variable whose inclusion
lowers ``E`` the most. Ties go to the lowest index, so the repair is
deterministic. The best state of a problem is the lowest-``E`` state among its
feasible reads and its repaired infeasible reads; ``repaired`` says whether it
came from a repair. Without ``k`` every read is feasible and nothing is
repaired (the best read by ``E``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ProblemResult", "JobRecord", "repair_to_k", "best_state"]


@dataclass
class ProblemResult:
    """What one problem of a batch got back from a D-Wave route.

    Attributes:
        index: position of the problem in the batch.
        job: index of the job (in ``info["jobs"]``) that carried it.
        state: ``(K,)`` uint8 best feasible state (after repair if needed).
        energy: ``E(state)`` (objective, no penalty).
        repaired: whether ``state`` came from repairing an infeasible read.
        num_reads: reads returned for this problem (sum of occurrences).
        feasible_fraction: fraction of those reads with exactly ``k`` ones, before repair
            (for the hybrid CQM route: the solver's own feasibility flag).
        chain_break_fraction: mean fraction of broken chains per read (QPU routes; 0 for hybrid).
        chain_strength: the chain strength used (QPU routes, on the normalised problem).
        embedding: ``{variable: qubits}`` used (QPU routes; empty for hybrid).
        timing: this problem's share of its job's SAPI timing, microseconds (see
            :mod:`qfsel.samplers.dwave.timing`).
    """

    index: int
    job: int
    state: np.ndarray
    energy: float
    repaired: bool
    num_reads: int
    feasible_fraction: float
    chain_break_fraction: float = 0.0
    chain_strength: float | None = None
    embedding: dict[int, tuple[int, ...]] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"ProblemResult(index={self.index}, job={self.job}, energy={self.energy:.6g}, repaired={self.repaired}, "
                f"num_reads={self.num_reads}, feasible_fraction={self.feasible_fraction:.3g}, "
                f"chain_break_fraction={self.chain_break_fraction:.3g})")


@dataclass
class JobRecord:
    """One submitted job (one programming cycle on a QPU, one hybrid run).

    Attributes:
        problems: batch indices the job carried.
        num_qubits: qubits used (QPU routes) or variables (hybrid).
        estimate_us: the pre-submission QPU access-time estimate (QPU routes).
        estimate_source: ``"dwave-cloud-client"`` or ``"qfsel model"``.
        timing: the job's SAPI timing as returned (microseconds).
        wall_s: client-side seconds from submission to the resolved answer.
        problem_id: SAPI's problem id when the answer has one.
        error: why the job failed (redacted), or ``None``.
    """

    problems: list[int]
    num_qubits: int
    estimate_us: float | None = None
    estimate_source: str | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    problem_id: str | None = None
    error: str | None = None


def repair_to_k(q: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Greedy repair of reads ``x (M, K)`` to exactly ``k`` ones on the upper-triangular QUBO ``q``."""
    x = np.array(x, dtype=np.float64, copy=True)
    lin = np.diagonal(q).copy()
    w = np.triu(q, 1)
    w = w + w.T
    fields = x @ w + lin  # energy change of adding i (when x_i = 0); minus it is that of removing i
    m = x.sum(axis=1)
    for _ in range(int(np.abs(m - k).max(initial=0))):
        over = m > k
        under = m < k
        if not over.any() and not under.any():
            break
        # removal delta for selected variables, addition delta for unselected ones
        cost = np.full_like(fields, np.inf)
        sel = x == 1
        cost[over] = np.where(sel[over], -fields[over], np.inf)
        cost[under] = np.where(~sel[under], fields[under], np.inf)
        rows = np.flatnonzero(over | under)
        cols = np.argmin(cost[rows], axis=1)  # first minimum: lowest index on ties
        sign = np.where(over[rows], -1.0, 1.0)
        x[rows, cols] += sign
        fields[rows] += sign[:, None] * w[cols]
        m[rows] += sign
    return x.astype(np.uint8)


def best_state(problem: Any, reads: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, float, bool, float]:
    """``(state, energy, repaired, feasible_fraction)`` of a problem's reads ``(M, K)`` with ``counts (M,)``."""
    reads = np.ascontiguousarray(reads, dtype=np.uint8)
    k = problem.k
    if k is None:
        feasible = np.ones(len(reads), dtype=bool)
        cand = reads
    else:
        feasible = reads.sum(axis=1) == k
        if feasible.all():
            cand = reads
        else:
            q, _ = problem.qubo(include_penalty=False)
            fixed = repair_to_k(q, reads[~feasible], k)
            cand = np.concatenate([reads[feasible], fixed])
    energies = np.atleast_1d(problem.energy(cand))
    best = int(np.argmin(energies))  # feasible reads come first: a tie prefers an unrepaired read
    repaired = best >= int(feasible.sum())
    frac = float(counts[feasible].sum() / counts.sum()) if counts.sum() else 0.0
    return cand[best].copy(), float(energies[best]), bool(repaired), frac

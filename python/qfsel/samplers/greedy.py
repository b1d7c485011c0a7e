"""Greedy construction + steepest local descent in Rust: microseconds per problem.

Construction: from the empty selection, add the variable whose inclusion
lowers the energy most, until no inclusion lowers it (unconstrained) or until
exactly ``k`` are chosen. Descent: apply the best single flip (unconstrained)
or the best swap of a selected with an unselected variable (exactly ``k``,
energy change ``f_j - f_i - W_ij`` from the local fields) until none
improves. The result is a local minimum of that neighbourhood; it is the
optimum when the couplings vanish (then it is the top-``k`` relevance), and
a strong start or baseline otherwise. Deterministic (ties go to the lowest
index).
"""

from __future__ import annotations

import time
from typing import Any

import dimod
import numpy as np

from .. import _core
from .._checks import check_int, check_num_reads, check_num_threads, check_seed
from ..qubo import ProblemBatch
from ..routing import Solution, register_solver
from ._base import bqm_to_dense, cardinality_from_cqm, check_cardinality, make_sampleset

__all__ = ["GreedySampler", "greedy_descent"]


def greedy_descent(
    q: np.ndarray, offsets: np.ndarray, k: int | None = None, *, num_threads: int | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Greedy + descent on ``B`` dense upper-triangular QUBOs ``q (B, n, n)``.

    Returns ``(states (B, n) uint8, energies (B,), kernel seconds)``.
    """
    q = np.ascontiguousarray(q, dtype=np.float64)
    offsets = np.ascontiguousarray(offsets, dtype=np.float64)
    if q.ndim != 3 or q.shape[1] != q.shape[2]:
        raise ValueError(f"q: expected shape (B, n, n), got shape {q.shape}")
    if not np.all(np.isfinite(q)) or not np.all(np.isfinite(offsets)):
        raise ValueError("q: expected finite biases, got a NaN or infinite bias")
    b, n = q.shape[0], q.shape[1]
    if k is not None:
        k = check_int("cardinality", k, low=0, high=n)
    states = np.zeros((b, n), np.uint8)
    energies = np.zeros(b)
    secs = _core.greedy_batch(q, offsets, k, states, energies, check_num_threads("num_threads", num_threads))
    return states, energies, float(secs)


def _check_parameters(num_reads: Any = None, seed: Any = None, num_threads: Any = None) -> None:
    """``num_reads`` and ``seed`` are accepted for a uniform ``solve()`` signature (one deterministic
    result) and checked as every other solver checks them."""
    if num_reads is not None:
        check_num_reads("num_reads", num_reads)
    if seed is not None:
        check_seed("seed", seed)
    check_num_threads("num_threads", num_threads)


def _solve_greedy(
    batch: ProblemBatch,
    *,
    num_reads: int | None = None,  # accepted for a uniform solve() signature; one deterministic result
    seed: Any = None,  # accepted, checked and ignored: the method is deterministic
    num_threads: int | None = None,
) -> Solution:
    """The ``"greedy"`` solver: swap descent on the objective when ``batch.k`` is set, else flip descent."""
    _check_parameters(num_reads, seed, num_threads)
    t0 = time.perf_counter()
    q, off = batch.qubo(include_penalty=False, num_threads=num_threads)
    t1 = time.perf_counter()
    states, _, secs = greedy_descent(q, off, batch.k, num_threads=num_threads)
    t2 = time.perf_counter()
    return Solution.from_states(
        batch, states, "greedy",
        {"total_s": time.perf_counter() - t0, "qubo_s": t1 - t0, "solve_s": t2 - t1, "kernel_s": secs},
    )


register_solver("greedy", _solve_greedy, validate=_check_parameters)


class GreedySampler(dimod.Sampler):
    """Greedy construction + steepest descent in Rust, as a ``dimod.Sampler`` (one sample).

    With ``cardinality=k`` it chooses exactly ``k`` ones (``k`` spins up) and
    descends with swaps; otherwise it adds variables while that helps and
    descends with single flips. ``info["timing"]`` has ``sampling_ns`` and
    ``total_s``.

    Example:
        >>> import dimod
        >>> from qfsel.samplers.greedy import GreedySampler
        >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -0.9, "c": 0.5}, {("a", "b"): 2}, 0, "BINARY")
        >>> {v: int(x) for v, x in GreedySampler().sample(bqm).first.sample.items()}
        {'a': 1, 'b': 0, 'c': 0}
        >>> sorted(v for v, x in GreedySampler().sample(bqm, cardinality=2).first.sample.items() if x)
        ['a', 'c']
    """

    @property
    def parameters(self) -> dict[str, list]:
        return {"cardinality": [], "num_threads": [], "seed": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {"deterministic": True}

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        cardinality: int | None = None,
        num_threads: int | None = None,
        seed: Any = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """Greedy + descent on ``bqm`` (exactly ``cardinality`` ones, if given). ``seed`` is checked and ignored."""
        self.remove_unknown_kwargs(**kwargs)
        if seed is not None:
            check_seed("seed", seed)
        t0 = time.perf_counter_ns()
        dense = bqm_to_dense(bqm)
        n = dense.num_variables
        k = check_cardinality(cardinality, n)
        t1 = time.perf_counter_ns()
        states, _, _ = greedy_descent(dense.q[None], np.array([dense.offset]), k, num_threads=num_threads)
        t2 = time.perf_counter_ns()
        timing: dict[str, float] = {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1}
        ss = make_sampleset(bqm, dense, states, {"timing": timing})
        ss.info["timing"]["total_s"] = (time.perf_counter_ns() - t0) * 1e-9
        return ss

    def sample_cqm(self, cqm: dimod.ConstrainedQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Sample a CQM whose only constraint is ``sum of all binaries == k``."""
        objective, k = cardinality_from_cqm(cqm)
        ss = self.sample(objective, cardinality=k, **parameters)
        return dimod.SampleSet.from_samples_cqm(ss, cqm, info=ss.info)

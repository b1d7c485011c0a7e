"""Exhaustive search in Rust: ground energy and *all* ground states.

Over all ``2^n`` states (``n <= 30``) or, with a cardinality ``k``, over all
``C(n, k)`` subsets (at most ``max_subsets``, default ``2^31``). Larger
problems raise :class:`qfsel.ProblemTooLargeError` stating the limit.

Precision: the ground states returned all have *exactly* the least energy
(as real-number sums of the given float64 coefficients), and that energy is
the minimum over the search space, whatever the spread of the coefficients
(``1e10`` beside ``1`` is resolved). The walk sums in float64 with an error
of at most ``n 2^-52 S`` per energy (``S = sum |Q_ij| + |offset|``); the
states within twice that of the least computed energy are candidates, and the
candidates are compared exactly (error-free summation), so rounding neither
hides the optimum nor merges different energies, and symmetric states (the
same coefficients) stay degenerate. This holds while the candidates fit in the
store (``max(max_ground_states, 1024)`` states within about ``1e-14 S`` of the
optimum); beyond it ``num_ground_states`` counts candidates unchecked. With
integer or dyadic coefficients (multiples of ``2^p`` with ``S <= 2^(53 + p)``)
every sum is exact and there is no window. ``ground_energies`` are the exact
sums rounded to float64 (within one unit in the last place).
"""

from __future__ import annotations

import time
from typing import Any

import dimod
import numpy as np

from .. import _core
from .._checks import check_int, check_num_threads, check_seed
from ..qubo import ProblemBatch
from ..routing import Solution, register_solver
from ._base import bqm_to_dense, cardinality_from_cqm, check_cardinality, make_sampleset

__all__ = ["ExactSampler", "exact_ground_states"]

MAX_UNCONSTRAINED_VARIABLES: int = _core.MAX_UNCONSTRAINED_VARIABLES
DEFAULT_MAX_SUBSETS: int = _core.DEFAULT_MAX_SUBSETS


def _check_parameters(
    max_ground_states: Any = 1024, max_subsets: Any = DEFAULT_MAX_SUBSETS, num_threads: Any = None, seed: Any = None
) -> tuple[int, int, int]:
    """Checked ``(max_ground_states, max_subsets, threads)``; ``seed`` is accepted for a uniform
    ``solve()`` signature (the search is deterministic) and checked as every other solver checks it."""
    max_ground_states = check_int("max_ground_states", max_ground_states, low=1, high=2**64 - 1)
    max_subsets = check_int("max_subsets", max_subsets, low=1, high=2**64 - 1)
    threads = check_num_threads("num_threads", num_threads)
    if seed is not None:
        check_seed("seed", seed)
    return max_ground_states, max_subsets, threads


def exact_ground_states(
    q: np.ndarray,
    offsets: np.ndarray,
    k: int | None = None,
    *,
    max_ground_states: int = 1024,
    max_subsets: int = DEFAULT_MAX_SUBSETS,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """Exhaustive search of ``B`` dense upper-triangular QUBOs ``q (B, n, n)``.

    Returns ``(energies (B,), counts (B,), ground_states, visited (B,))`` where
    ``ground_states[b]`` is ``(m_b, n)`` uint8 with ``m_b = min(counts[b], max_ground_states)``.
    """
    max_ground_states, max_subsets, threads = _check_parameters(max_ground_states, max_subsets, num_threads)
    b, n = q.shape[0], q.shape[1]
    energies, counts, stored, visited, raw = _core.exact_ground_states_batch(
        q, offsets, k, max_ground_states, max_subsets, threads
    )
    flat = np.frombuffer(raw, dtype=np.uint8)
    ground: list[np.ndarray] = []
    pos = 0
    for m in stored:
        ground.append(flat[pos : pos + m * n].reshape(m, n).copy())
        pos += m * n
    return np.asarray(energies), np.asarray(counts, dtype=np.int64), ground, np.asarray(visited, dtype=np.int64)


def _solve_exact(
    batch: ProblemBatch,
    *,
    max_ground_states: int = 1024,
    max_subsets: int = DEFAULT_MAX_SUBSETS,
    num_threads: int | None = None,
    seed: Any = None,  # accepted (and checked) for a uniform solve() signature; the search is deterministic
) -> Solution:
    _check_parameters(max_ground_states, max_subsets, num_threads, seed)
    t0 = time.perf_counter()
    q, off = batch.qubo(include_penalty=False)
    energies, counts, ground, visited = exact_ground_states(
        q, off, batch.k, max_ground_states=max_ground_states, max_subsets=max_subsets, num_threads=num_threads
    )
    t1 = time.perf_counter()
    states = np.stack([g[0] for g in ground]) if ground else np.zeros((0, batch.num_variables), np.uint8)
    return Solution.from_states(
        batch,
        states,
        "exact",
        {"total_s": time.perf_counter() - t0, "solve_s": t1 - t0},
        {"ground_energies": energies, "num_ground_states": counts, "ground_states": ground, "states_visited": visited},
    )


register_solver("exact", _solve_exact, validate=_check_parameters)


class ExactSampler(dimod.Sampler):
    """Exhaustive ground-state search in Rust, as a ``dimod.Sampler``.

    Unlike ``dimod.ExactSolver`` (which returns all ``2^n`` states), it returns
    every *ground* state (up to ``max_ground_states``), which is what the
    quantum analysis needs, and scales to ``n = 30`` on a laptop. With
    ``cardinality=k`` only states with exactly ``k`` ones (``k`` spins up) are
    searched.

    ``info`` holds ``timing`` (seconds), ``ground_energy``, ``num_ground_states``
    (all of them, even beyond those returned) and ``states_visited``.

    Example:
        >>> import dimod
        >>> from qfsel.samplers import ExactSampler
        >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -1}, {("a", "b"): 2}, 0, "BINARY")
        >>> ss = ExactSampler().sample(bqm)
        >>> sorted((int(s["a"]), int(s["b"])) for s in ss.samples())
        [(0, 1), (1, 0)]
    """

    @property
    def parameters(self) -> dict[str, list]:
        return {"cardinality": [], "max_ground_states": [], "max_subsets": [], "num_threads": []}

    @property
    def properties(self) -> dict[str, Any]:
        return {
            "max_unconstrained_variables": MAX_UNCONSTRAINED_VARIABLES,
            "default_max_subsets": DEFAULT_MAX_SUBSETS,
        }

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        cardinality: int | None = None,
        max_ground_states: int = 1024,
        max_subsets: int = DEFAULT_MAX_SUBSETS,
        num_threads: int | None = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """All ground states of ``bqm`` (with exactly ``cardinality`` ones, if given)."""
        self.remove_unknown_kwargs(**kwargs)
        t0 = time.perf_counter()
        dense = bqm_to_dense(bqm)
        n = dense.num_variables
        k = check_cardinality(cardinality, n)
        energies, counts, ground, visited = exact_ground_states(
            dense.q[None], np.array([dense.offset]), k,
            max_ground_states=max_ground_states, max_subsets=max_subsets, num_threads=num_threads,
        )
        t1 = time.perf_counter()
        timing = {"solve_s": t1 - t0}
        info = {
            "timing": timing,
            "ground_energy": float(energies[0]),
            "num_ground_states": int(counts[0]),
            "states_visited": int(visited[0]),
        }
        ss = make_sampleset(bqm, dense, ground[0], info)
        ss.info["timing"]["total_s"] = time.perf_counter() - t0
        return ss

    def sample_cqm(self, cqm: dimod.ConstrainedQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Ground states of a CQM whose only constraint is ``sum of all binaries == k``."""
        objective, k = cardinality_from_cqm(cqm)
        ss = self.sample(objective, cardinality=k, **parameters)
        return dimod.SampleSet.from_samples_cqm(ss, cqm, info=ss.info)

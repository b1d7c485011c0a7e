"""Multistart tabu search in Rust: one-flip moves, or swap moves that keep exactly ``k`` ones.

A drop-in for ``dwave.samplers.TabuSampler`` (same parameter names where they
exist) that also takes a cardinality: with ``cardinality=k`` every state the
search visits has exactly ``k`` ones (``k`` spins up), so no penalty term and
no infeasible samples.

One read is a sequence of simple tabu searches: each takes the best move that
is not tabu (or a tabu move that beats the best energy of the read:
aspiration) and ends after a number of moves without improvement; the next
one restarts from a randomly perturbed member of an elite set of the read's
best distinct states. A moved variable stays tabu for ``tenure + u`` moves,
``u`` uniform in ``[0, tenure // 4]``; by default ``tenure = min(20, n // 4)``
(Ocean's default) and, with a cardinality, ``min(max(1, k // 2), 20, (n - k) // 4)``
(longer tenures cut the swap search's success rate several-fold on
explanation-shaped problems). Reads run in
parallel; read ``r`` of problem ``b`` draws from its own random stream of
``(seed, b, r)``, so the thread count never changes a result (a ``timeout``
makes results depend on the clock).
"""

from __future__ import annotations

import numbers
import time
from typing import Any

import dimod
import numpy as np

from .. import _core
from .._checks import check_int, check_num_reads, check_num_threads, check_per_problem, check_seed, describe
from ..qubo import ProblemBatch
from ..routing import Solution, register_solver
from ._base import DenseQubo, bqm_to_dense, cardinality_from_cqm, check_cardinality, make_sampleset

__all__ = ["TabuSampler", "tabu_search"]

DEFAULT_NUM_RESTARTS = 5
DEFAULT_ELITE_SIZE = 8


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout: expected None or a positive number of milliseconds, got {describe(timeout)}")
    t = float(timeout)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"timeout: expected None or a positive number of milliseconds, got {timeout!r}")
    return t


def _check_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or np.isnan(float(value)):
        raise TypeError(f"energy_threshold: expected None or a real number, got {describe(value)}")
    return float(value)


def _check_parameters(
    num_reads: Any = 10,
    seed: Any = None,
    num_threads: Any = None,
    num_iterations: Any = None,
    timeout: Any = None,
    tenure: Any = None,
    num_restarts: Any = DEFAULT_NUM_RESTARTS,
    elite_size: Any = DEFAULT_ELITE_SIZE,
    *,
    energy_threshold: Any = None,
    max_tenure: int | None = None,
) -> dict[str, Any]:
    """The checks of :func:`tabu_search` that need no problem (``max_tenure``: ``n - 1`` when known)."""
    c: dict[str, Any] = {"num_reads": check_num_reads("num_reads", num_reads), "seed": check_seed("seed", seed)}
    c["num_iterations"] = None if num_iterations is None else check_int("num_iterations", num_iterations, low=1, high=2**64 - 1)
    c["timeout"] = _check_timeout(timeout)
    c["tenure"] = None if tenure is None else check_int("tenure", tenure, low=0, high=max_tenure)
    c["num_restarts"] = check_int("num_restarts", num_restarts, low=0, high=2**64 - 1)
    c["elite_size"] = check_int("elite_size", elite_size, low=1, high=2**64 - 1)
    c["energy_threshold"] = _check_threshold(energy_threshold)
    c["threads"] = check_num_threads("num_threads", num_threads)
    return c


def tabu_search(
    q: np.ndarray,
    offsets: np.ndarray,
    k: int | None = None,
    *,
    num_reads: int = 1,
    seed: int | None = None,
    num_iterations: int | None = None,
    timeout: float | None = None,
    tenure: int | None = None,
    num_restarts: int = DEFAULT_NUM_RESTARTS,
    elite_size: int = DEFAULT_ELITE_SIZE,
    energy_threshold: float | None = None,
    initial_states: np.ndarray | None = None,
    return_read_states: bool = False,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Tabu search on ``B`` dense upper-triangular QUBOs ``q (B, n, n)`` with offsets ``(B,)``.

    Args:
        q, offsets: the QUBOs (``E(x) = sum_i Q_ii x_i + sum_{i<j} Q_ij x_i x_j + offset``).
        k: ``None`` for one-flip tabu; an integer for swap tabu with exactly ``k`` ones.
        num_reads: independent reads per problem.
        seed: the random seed (``None``: drawn from the OS).
        num_iterations: moves per read, over all restarts (``None``: no limit).
        timeout: wall-clock milliseconds per read (``None``: no limit).
        tenure: tabu tenure in ``[0, n - 1]`` (``None``: ``min(20, n // 4)``).
        num_restarts: restarts per read from perturbed elite states.
        elite_size: number of best distinct states a read keeps for restarts.
        energy_threshold: a read stops once it reaches this energy.
        initial_states: ``None`` or ``(B, m, n)`` 0/1 with ``m <= num_reads``;
            reads ``0..m-1`` start there, the others at random.
        return_read_states: also return every read's best state.
        num_threads: threads (``None`` or 0: one per core).

    Returns:
        A dict with ``states (B, n)`` uint8, ``energies (B,)``, ``read_energies (B, R)``,
        ``read_states (B, R, n)`` (if asked), ``num_iterations``, ``num_restarts``
        (totals over reads) and ``kernel_s``.
    """
    q = np.ascontiguousarray(q, dtype=np.float64)
    offsets = np.ascontiguousarray(offsets, dtype=np.float64)
    if q.ndim != 3 or q.shape[1] != q.shape[2]:
        raise ValueError(f"q: expected shape (B, n, n), got shape {q.shape}")
    b, n = q.shape[0], q.shape[1]
    if not np.all(np.isfinite(q)) or not np.all(np.isfinite(offsets)):
        raise ValueError("q: expected finite biases, got a NaN or infinite bias")
    c = _check_parameters(num_reads, seed, num_threads, num_iterations, timeout, tenure, num_restarts, elite_size,
                          energy_threshold=energy_threshold, max_tenure=max(n - 1, 0))
    num_reads, seed, threads, num_iterations, timeout = c["num_reads"], c["seed"], c["threads"], c["num_iterations"], c["timeout"]
    tenure, num_restarts, elite_size, energy_threshold = c["tenure"], c["num_restarts"], c["elite_size"], c["energy_threshold"]
    check_per_problem("num_reads", num_reads, b)
    if k is not None:
        k = check_int("cardinality", k, low=0, high=n)
    states = np.zeros((b, n), np.uint8)
    energies = np.zeros(b)
    read_energies = np.zeros((b, num_reads))
    read_states = np.zeros((b, num_reads, n), np.uint8) if return_read_states else None
    iters, restarts, secs = _core.tabu_batch(
        q, offsets, k, num_reads, seed, num_iterations, timeout, tenure, num_restarts, elite_size,
        energy_threshold, initial_states, states, energies, read_energies, read_states, threads,
    )
    out = {
        "states": states,
        "energies": energies,
        "read_energies": read_energies,
        "num_iterations": int(iters),
        "num_restarts": int(restarts),
        "kernel_s": float(secs),
        "seed": seed,
    }
    if read_states is not None:
        out["read_states"] = read_states
    return out


def _solve_tabu(
    batch: ProblemBatch,
    *,
    num_reads: int = 10,
    seed: int | None = None,
    num_threads: int | None = None,
    num_iterations: int | None = None,
    timeout: float | None = None,
    tenure: int | None = None,
    num_restarts: int = DEFAULT_NUM_RESTARTS,
    elite_size: int = DEFAULT_ELITE_SIZE,
) -> Solution:
    """The ``"tabu"`` solver: swap tabu on the objective when ``batch.k`` is set, else one-flip tabu."""
    _check_parameters(num_reads, seed, num_threads, num_iterations, timeout, tenure, num_restarts, elite_size)
    t0 = time.perf_counter()
    q, off = batch.qubo(include_penalty=False, num_threads=num_threads)
    t1 = time.perf_counter()
    res = tabu_search(
        q, off, batch.k, num_reads=num_reads, seed=seed, num_iterations=num_iterations, timeout=timeout,
        tenure=tenure, num_restarts=num_restarts, elite_size=elite_size, num_threads=num_threads,
    )
    t2 = time.perf_counter()
    return Solution.from_states(
        batch,
        res["states"],
        "tabu",
        {"total_s": time.perf_counter() - t0, "qubo_s": t1 - t0, "solve_s": t2 - t1, "kernel_s": res["kernel_s"]},
        {"read_energies": res["read_energies"], "num_iterations": res["num_iterations"],
         "num_restarts": res["num_restarts"], "seed": res["seed"]},
    )


register_solver("tabu", _solve_tabu, validate=_check_parameters)


def _initial_states(
    dense: DenseQubo, initial_states: Any, generator: str, num_reads: int | None
) -> tuple[np.ndarray | None, int]:
    """Binary ``(m, n)`` initial states in the BQM's variable order (or None) and the number of reads."""
    if generator not in ("none", "tile", "random"):
        raise ValueError(f"initial_states_generator: expected 'none', 'tile' or 'random', got {generator!r}")
    n = dense.num_variables
    if initial_states is None or (hasattr(initial_states, "__len__") and len(initial_states) == 0):
        reads = 1 if num_reads is None else check_num_reads("num_reads", num_reads)
        if generator == "none" and initial_states is not None:
            raise ValueError(f"initial_states: expected at least num_reads = {reads} states with initial_states_generator='none', got 0")
        return None, reads
    try:
        arr, labels = dimod.as_samples(initial_states)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"initial_states: expected samples like a (m, n) array or a list of dicts, got {describe(initial_states)}") from exc
    bare = isinstance(initial_states, np.ndarray) or (
        isinstance(initial_states, list) and not isinstance(initial_states[0], (dict, tuple))
    )
    if bare and arr.shape[1] == n:
        labels = list(dense.labels)  # a bare array is in the BQM's variable order
    if arr.shape[1] != n or set(labels) != set(dense.labels):
        raise ValueError(
            f"initial_states: expected states over the BQM's {n} variables, got shape {arr.shape} over variables {list(labels)[:8]}"
        )
    order = [list(labels).index(v) for v in dense.labels]
    arr = np.asarray(arr)[:, order]
    allowed = (-1, 1) if dense.vartype is dimod.SPIN else (0, 1)
    bad = ~np.isin(arr, allowed)
    if bad.any():
        raise ValueError(f"initial_states: expected values in {allowed} for a {dense.vartype.name} BQM, got {arr[bad][0]!r}")
    binary = ((arr + 1) // 2 if dense.vartype is dimod.SPIN else arr).astype(np.uint8)
    m = binary.shape[0]
    reads = m if num_reads is None else check_num_reads("num_reads", num_reads)
    if m > reads:
        binary = binary[:reads]
    elif m < reads:
        if generator == "none":
            raise ValueError(f"initial_states: expected at least num_reads = {reads} states with initial_states_generator='none', got {m}")
        if generator == "tile":
            binary = np.resize(binary, (reads, n))
    return np.ascontiguousarray(binary), reads


class TabuSampler(dimod.Sampler):
    """Multistart tabu search in Rust, as a ``dimod.Sampler`` (a drop-in for Ocean's ``TabuSampler``).

    Reads run in parallel with the GIL released; Ctrl-C stops them within
    milliseconds. ``cardinality=k`` switches to swap moves that keep exactly
    ``k`` ones (``k`` spins up), the natural search space of "choose ``k``
    feature maps". ``info`` holds ``timing`` (``preprocessing_ns``,
    ``sampling_ns``, ``postprocessing_ns``, ``total_s``), ``num_iterations``
    and ``num_restarts`` (totals over the reads) and the ``seed`` used.

    Differences from ``dwave.samplers.TabuSampler``: ``timeout`` defaults to
    ``None`` (no time limit; the search is bounded by ``num_restarts`` and the
    stall rule, so results are reproducible), ``num_restarts`` defaults to 5,
    and ``num_iterations``, ``cardinality``, ``num_threads`` are added. The
    ``coefficient_z_*`` and ``lower_bound_z`` knobs of MST2 are not used.

    Example:
        >>> import dimod
        >>> from qfsel.samplers.tabu import TabuSampler
        >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -0.9, "c": 0.5}, {("a", "b"): 2}, 0, "BINARY")
        >>> ss = TabuSampler().sample(bqm, num_reads=4, seed=1)
        >>> float(ss.first.energy)
        -1.0
        >>> ss = TabuSampler().sample(bqm, cardinality=2, seed=1)
        >>> sorted(v for v, x in ss.first.sample.items() if x)
        ['a', 'c']
    """

    @property
    def parameters(self) -> dict[str, list]:
        return {
            "initial_states": [],
            "initial_states_generator": [],
            "num_reads": [],
            "seed": [],
            "tenure": [],
            "timeout": [],
            "num_restarts": [],
            "num_iterations": [],
            "energy_threshold": [],
            "elite_size": [],
            "cardinality": [],
            "num_threads": [],
        }

    @property
    def properties(self) -> dict[str, Any]:
        return {"default_num_restarts": DEFAULT_NUM_RESTARTS, "default_elite_size": DEFAULT_ELITE_SIZE}

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        initial_states: Any = None,
        initial_states_generator: str = "random",
        num_reads: int | None = None,
        seed: int | None = None,
        tenure: int | None = None,
        timeout: float | None = None,
        num_restarts: int = DEFAULT_NUM_RESTARTS,
        num_iterations: int | None = None,
        energy_threshold: float | None = None,
        elite_size: int = DEFAULT_ELITE_SIZE,
        cardinality: int | None = None,
        num_threads: int | None = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """Run ``num_reads`` tabu reads on ``bqm``; one sample (the read's best) per read.

        Args:
            bqm: the model (binary or spin).
            initial_states: samples to start from, one per read, in the BQM's vartype:
                anything ``dimod.as_samples`` takes; a bare array is in ``bqm.variables`` order.
            initial_states_generator: ``"random"`` (fill missing reads with random
                states), ``"tile"`` (repeat the given ones) or ``"none"`` (error if too few).
            num_reads: reads (default: the number of initial states, else 1).
            seed: random seed (``None``: from the OS).
            tenure: tabu tenure in ``[0, n - 1]`` (default: see the module docstring).
            timeout: milliseconds per read (default: none).
            num_restarts: restarts per read from perturbed elite states.
            num_iterations: moves per read over all restarts (default: no limit).
            energy_threshold: a read stops at this energy or below.
            elite_size: elite states kept per read.
            cardinality: keep exactly this many ones (spins up) with swap moves.
            num_threads: threads (``None``: one per core).
        """
        self.remove_unknown_kwargs(**kwargs)
        t0 = time.perf_counter_ns()
        dense = bqm_to_dense(bqm)
        n = dense.num_variables
        k = check_cardinality(cardinality, n)
        init, reads = _initial_states(dense, initial_states, initial_states_generator, num_reads)
        if init is not None and k is not None:
            ones = init.sum(axis=1)
            if np.any(ones != k):
                i = int(np.argmax(ones != k))
                raise ValueError(f"initial_states: expected exactly cardinality = {k} ones (spins up) per state, got {int(ones[i])} in state {i}")
        t1 = time.perf_counter_ns()
        res = tabu_search(
            dense.q[None], np.array([dense.offset]), k, num_reads=reads, seed=seed, num_iterations=num_iterations,
            timeout=timeout, tenure=tenure, num_restarts=num_restarts, elite_size=elite_size,
            energy_threshold=energy_threshold, initial_states=None if init is None else init[None],
            return_read_states=True, num_threads=num_threads,
        )
        t2 = time.perf_counter_ns()
        info = {
            "timing": {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1},
            "num_iterations": res["num_iterations"],
            "num_restarts": res["num_restarts"],
            "seed": res["seed"],
        }
        ss = make_sampleset(bqm, dense, res["read_states"][0], info)
        t3 = time.perf_counter_ns()
        info["timing"]["postprocessing_ns"] = t3 - t2
        info["timing"]["total_s"] = (t3 - t0) * 1e-9
        return ss

    def sample_cqm(self, cqm: dimod.ConstrainedQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Sample a CQM whose only constraint is ``sum of all binaries == k`` (every sample feasible)."""
        objective, k = cardinality_from_cqm(cqm)
        ss = self.sample(objective, cardinality=k, **parameters)
        return dimod.SampleSet.from_samples_cqm(ss, cqm, info=ss.info)

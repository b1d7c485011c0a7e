"""Simulated quantum annealing (path-integral Monte Carlo) in Rust.

The classical stand-in for a quantum annealer on problems too large for exact
simulation. A read anneals the transverse-field model

    H(s) = B(s) E(x) - A(s) sum_i X_i,     s = 0 .. 1 over ``num_sweeps`` sweeps,

at a fixed ``temperature`` T with ``num_slices`` = P Suzuki-Trotter slices:
P coupled copies of the classical state, each weighted by
``exp(-B E(x^s) / (P T))`` and each spin coupled to itself in the neighbouring
slices by ``K = -1/2 ln tanh(A / (P T))`` (dimensionless; the usual
``J_perp = -(P T / 2) ln tanh(Gamma / (P T))`` divided by ``P T``; derivation in
``rust/src/core/sqa.rs``). ``E`` is the QUBO energy with ``x_i = 1`` the up spin.
A is the transverse field Gamma, from ``gamma_range[0]`` (large) down to
``gamma_range[1]`` (small):

* ``"linear"``: ``A(s) = G0 + (G1 - G0) s``, ``B(s) = 1``;
* ``"dwave"``: ``A(s) = G1 + (G0 - G1) (1 - s)^3``, ``B(s) = 0.05 + 0.95 s^2``
  -- the qualitative shape of published D-Wave schedules (the transverse
  field is down to 10% by s = 0.55 while the problem term grows from a few
  percent quadratically); not any QPU's table;
* ``"custom"``: ``gamma_schedule`` (one A per sweep, per problem or shared)
  and ``scale_schedule`` (one B per sweep, default 1).

Moves: single-spin Metropolis flips in every slice, or, with a cardinality
``k``, swaps of a selected and an unselected variable inside a slice, so every
slice of every read has exactly ``k`` ones and every returned state is
feasible. With ``global_moves`` (default on) every sweep also tries to flip
each spin's whole worldline (or to exchange two worldlines, with ``k``),
which keeps the search moving late in the anneal when the slices are locked
together. A read returns its best slice (lowest classical energy); with
``readout="slice"`` slice 0 instead (a draw from the diagonal of the
Trotterized ``exp(-H / T)``, for statistics), and with ``descent=True`` the
returned slice is taken down to a local minimum of single flips (swaps) by
steepest descent (classical post-processing, off by default).

Defaults come from the instance, through simulated annealing's beta range
``(beta0, beta1)`` (``qfsel.samplers.sa.default_beta_range``): ``T = 0.5 / beta1``
(half SA's coldest temperature), ``G0 = 0.5 / beta0`` and ``G1 = 1e-3 G0``;
``num_slices = 16``, ``num_sweeps = 200``. Read ``r`` of problem ``b`` draws
from its own random stream of ``(seed, b, r)``: the thread count never
changes a result.

Example:
    >>> import dimod
    >>> from qfsel.samplers.sqa import SimulatedQuantumAnnealingSampler
    >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -0.9, "c": 0.5}, {("a", "b"): 2}, 0, "BINARY")
    >>> ss = SimulatedQuantumAnnealingSampler().sample(bqm, num_reads=4, seed=1)
    >>> float(ss.first.energy)
    -1.0
    >>> ss = SimulatedQuantumAnnealingSampler().sample(bqm, cardinality=2, num_reads=4, seed=1)
    >>> sorted(v for v, x in ss.first.sample.items() if x)
    ['a', 'c']
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

import dimod
import numpy as np

from .. import _core
from .._checks import (check_int, check_num_reads, check_num_sweeps, check_num_threads,
                       check_per_problem, check_seed, describe)
from ..qubo import ProblemBatch
from ..routing import Solution, register_solver
from ._base import bqm_to_dense, cardinality_from_cqm, check_cardinality
from .sa import SimulatedAnnealingSampler

__all__ = [
    "SCHEDULE_TYPES",
    "SQASampler",
    "SimulatedQuantumAnnealingSampler",
    "sqa_schedule",
    "simulated_quantum_annealing",
    "time_coupling",
]

SCHEDULE_TYPES = ("linear", "dwave", "custom")
DEFAULT_SLICES = 16
#: Largest ``num_slices`` x number of variables of one read (each thread holds every slice of the
#: read it anneals: about 13 bytes per slice and variable, 2**24 entries ~ 220 MB per thread).
MAX_SLICE_ENTRIES = 2**24
DEFAULT_SWEEPS = 200
#: ``G0 = GAMMA_HOT / beta0`` and ``T = TEMPERATURE_COLD / beta1`` from SA's beta range.
GAMMA_HOT = 0.5
TEMPERATURE_COLD = 0.5
#: ``G1 = GAMMA_END * G0``.
GAMMA_END = 1e-3


def time_coupling(gamma: float, num_slices: int, temperature: float) -> float:
    """The dimensionless inter-slice coupling ``K = -1/2 ln tanh(Gamma / (P T))`` (capped at 30).

    >>> round(time_coupling(1.0, 4, 0.25), 6)   # Gamma / (P T) = 1
    0.136171
    """
    num_slices = check_int("num_slices", num_slices, low=1)
    temperature = _check_positive("temperature", temperature)
    gamma = _check_nonnegative("gamma", gamma)
    return float(_core.sqa_time_coupling(gamma / (num_slices * temperature)))


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive real number, got {describe(value)}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a positive finite real number, got {value!r}")
    return v


def _check_nonnegative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number >= 0, got {describe(value)}")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}: expected a finite real number >= 0, got {value!r}")
    return v


def _check_gamma_range(gamma_range: Any) -> tuple[float, float] | None:
    if gamma_range is None:
        return None
    try:
        g0, g1 = gamma_range
    except (TypeError, ValueError):
        raise TypeError(f"gamma_range: expected a pair (Gamma_start, Gamma_end), got {describe(gamma_range)}") from None
    g0 = _check_nonnegative("gamma_range", g0)
    g1 = _check_nonnegative("gamma_range", g1)
    if g1 > g0:
        raise ValueError(f"gamma_range: expected Gamma to decrease (start >= end), got {tuple(gamma_range)!r}")
    return g0, g1


def sqa_schedule(num_sweeps: int, gamma_range: tuple[float, float], schedule_type: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """The per-sweep transverse field ``A`` and problem scale ``B`` of a named schedule.

    Args:
        num_sweeps: number of sweeps (``s = t / (num_sweeps - 1)``; one sweep sits at ``s = 1``).
        gamma_range: ``(G0, G1)``, the transverse field at ``s = 0`` and ``s = 1``.
        schedule_type: ``"linear"`` or ``"dwave"`` (see the module docstring).

    Returns:
        ``(A, B)``, two ``(num_sweeps,)`` float arrays.

    >>> a, b = sqa_schedule(3, (2.0, 0.0), "linear")
    >>> a.tolist(), b.tolist()
    ([2.0, 1.0, 0.0], [1.0, 1.0, 1.0])
    """
    num_sweeps = check_num_sweeps("num_sweeps", num_sweeps)
    rng = _check_gamma_range(gamma_range)
    if rng is None:
        raise TypeError("gamma_range: expected a pair (Gamma_start, Gamma_end), got None")
    g0, g1 = rng
    s = np.linspace(0.0, 1.0, num_sweeps) if num_sweeps > 1 else np.ones(1)
    if schedule_type == "linear":
        return g0 + (g1 - g0) * s, np.ones(num_sweeps)
    if schedule_type == "dwave":
        return g1 + (g0 - g1) * (1.0 - s) ** 3, 0.05 + 0.95 * s**2
    raise ValueError(f"schedule_type: expected 'linear' or 'dwave' here ('custom' takes gamma_schedule), got {schedule_type!r}")


def _custom_arrays(gamma_schedule: Any, scale_schedule: Any, b: int) -> tuple[np.ndarray, np.ndarray]:
    if gamma_schedule is None:
        raise ValueError("gamma_schedule: expected one transverse field per sweep with schedule_type='custom', got None")
    try:
        g = np.asarray(gamma_schedule, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"gamma_schedule: expected real numbers, got {describe(gamma_schedule)}") from None
    if g.ndim == 1:
        g = np.broadcast_to(g, (b, g.size))
    if g.ndim != 2 or g.shape[0] != b or g.shape[1] == 0:
        raise ValueError(f"gamma_schedule: expected shape (S,) or ({b}, S) with S >= 1, got shape {np.shape(gamma_schedule)}")
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError(f"gamma_schedule: expected finite transverse fields >= 0, got {g[~(np.isfinite(g) & (g >= 0))].flat[0]!r}")
    if scale_schedule is None:
        sc = np.ones(g.shape[1])
    else:
        try:
            sc = np.asarray(scale_schedule, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"scale_schedule: expected real numbers, got {describe(scale_schedule)}") from None
        if sc.shape != (g.shape[1],):
            raise ValueError(f"scale_schedule: expected shape ({g.shape[1]},) like gamma_schedule's sweeps, got shape {sc.shape}")
        if not np.all(np.isfinite(sc)) or np.any(sc < 0):
            raise ValueError(f"scale_schedule: expected finite problem scales >= 0, got {sc[~(np.isfinite(sc) & (sc >= 0))].flat[0]!r}")
    return np.ascontiguousarray(g), np.ascontiguousarray(sc)


def _initial(initial_states: Any, shape: tuple[int, int, int], k: int | None) -> np.ndarray | None:
    if initial_states is None:
        return None
    arr = np.asarray(initial_states)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"initial_states: expected 0/1 values, got {describe(initial_states)}")
    if arr.ndim == 2 and shape[0] == 1:
        arr = arr[None]
    if arr.shape != shape:
        raise ValueError(f"initial_states: expected shape {shape}, got shape {arr.shape}")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"initial_states: expected binary values 0/1, got {arr[(arr != 0) & (arr != 1)].flat[0]!r}")
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if k is not None and arr.size:
        ones = arr.sum(axis=-1)
        if np.any(ones != k):
            raise ValueError(f"initial_states: expected exactly k = {k} ones in every state, got a state with {ones[ones != k].flat[0]}")
    return arr


def simulated_quantum_annealing(
    q: np.ndarray,
    offsets: Any = None,
    k: int | None = None,
    *,
    num_reads: int = 16,
    num_sweeps: int | None = None,
    num_slices: int = DEFAULT_SLICES,
    temperature: Any = None,
    gamma_range: tuple[float, float] | None = None,
    schedule_type: str = "linear",
    gamma_schedule: Any = None,
    scale_schedule: Any = None,
    seed: int | None = None,
    initial_states: Any = None,
    global_moves: bool = True,
    readout: str = "best",
    descent: bool = False,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Path-integral annealing of ``B`` dense upper-triangular QUBOs ``q (B, n, n)`` (or one ``(n, n)``).

    Args:
        q, offsets: the QUBOs and their offsets (``(B,)``, a scalar, or None for 0).
        k: ``None`` for flip moves; an integer for swap moves keeping exactly ``k`` ones.
        num_reads: reads per problem (at most ``10**7``, and ``2**28`` over the batch, as SA).
        num_sweeps: sweeps (schedule points) per read (default 200; ignored for ``"custom"``;
            the same limits as ``num_reads``).
        num_slices: Trotter slices ``P >= 1`` (``P = 1`` is classical annealing at ``T / B``);
            ``P x n`` at most ``MAX_SLICE_ENTRIES = 2**24`` (each thread holds a read's slices).
        temperature: ``T > 0`` (a scalar or one per problem; default from the instance).
        gamma_range: ``(G0, G1)`` with ``G0 >= G1 >= 0`` (default from the instance).
        schedule_type: ``"linear"``, ``"dwave"`` or ``"custom"``.
        gamma_schedule, scale_schedule: the ``"custom"`` schedule, ``(S,)`` or ``(B, S)`` and ``(S,)``.
        seed: the random seed (``None``: drawn from the OS).
        initial_states: ``(B, num_reads, n)`` 0/1 classical starts (copied into every slice), or None.
        global_moves: worldline flips / exchanges after every sweep.
        readout: ``"best"`` (each read's lowest-energy slice) or ``"slice"`` (slice 0: a
            draw from one slice's marginal, the diagonal of the Trotterized ``exp(-H / T)``).
        descent: end each read with steepest descent from that slice to a local minimum
            of single flips (single swaps with ``k``): classical post-processing, off by default.
        num_threads: threads (``None`` or 0: one per core).

    Returns:
        A dict with ``best_states (B, n)``, ``best_energies (B,)``, ``states (B, R, n)`` (each read's
        best slice), ``energies (B, R)``, ``temperature (B,)``, ``gamma_range (B, 2)``,
        ``num_sweeps``, ``num_slices``, ``seed`` and ``timing`` (``kernel_s``).
    """
    try:
        q = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError):  # e.g. a ProblemBatch: qfsel.solve(batch, "sqa") takes those
        raise TypeError(f"q: expected an array of real numbers of shape (B, n, n) or (n, n), got {describe(q)}") from None
    if q.ndim == 2:
        q = q[None]
    if q.ndim != 3 or q.shape[1] != q.shape[2]:
        raise ValueError(f"q: expected shape (B, n, n) or (n, n), got shape {q.shape}")
    q = np.ascontiguousarray(q)
    b, n = q.shape[0], q.shape[1]
    off = np.zeros(b) if offsets is None else np.ascontiguousarray(np.broadcast_to(np.asarray(offsets, dtype=np.float64), (b,)))
    if not np.all(np.isfinite(q)) or not np.all(np.isfinite(off)):
        raise ValueError("q: expected finite biases, got a NaN or infinite bias")
    num_reads = check_per_problem("num_reads", check_num_reads("num_reads", num_reads), b)
    num_slices = check_int("num_slices", num_slices, low=1, high=MAX_SLICE_ENTRIES)
    if num_slices * max(n, 1) > MAX_SLICE_ENTRIES:
        raise ValueError(
            f"num_slices: expected num_slices x number of variables <= 2**24 ({MAX_SLICE_ENTRIES}), "
            f"got {num_slices} x {n} = {num_slices * n}"
        )
    if schedule_type not in SCHEDULE_TYPES:
        raise ValueError(f"schedule_type: expected one of {SCHEDULE_TYPES}, got {schedule_type!r}")
    if num_sweeps is not None:
        num_sweeps = check_per_problem("num_sweeps", check_num_sweeps("num_sweeps", num_sweeps), b)
    seed = check_seed("seed", seed)
    threads = check_num_threads("num_threads", num_threads)
    if k is not None:
        k = check_int("cardinality", k, low=0, high=n)
    if not isinstance(global_moves, (bool, np.bool_)):
        raise TypeError(f"global_moves: expected a bool, got {describe(global_moves)}")
    if not isinstance(descent, (bool, np.bool_)):
        raise TypeError(f"descent: expected a bool, got {describe(descent)}")
    if readout not in ("best", "slice"):
        raise ValueError(f"readout: expected 'best' or 'slice', got {readout!r}")
    grange = _check_gamma_range(gamma_range)
    if temperature is not None:
        if np.ndim(temperature) == 0:
            temps = np.full(b, _check_positive("temperature", temperature))
        else:
            temps = np.asarray(temperature, dtype=np.float64)
            if temps.shape != (b,) or not np.all(np.isfinite(temps) & (temps > 0)):
                raise ValueError(f"temperature: expected a positive number or {b} positive finite numbers, got {temperature!r}")
            temps = np.ascontiguousarray(temps)
    init = _initial(initial_states, (b, num_reads, n), k)
    needs_default = temperature is None or (grange is None and schedule_type != "custom")
    beta = np.ones((b, 2))
    if needs_default and n > 0:
        _core.sa_default_beta_ranges(q, off, k, None, threads, beta)
    if temperature is None:
        temps = TEMPERATURE_COLD / beta[:, 1]
    if schedule_type == "custom":
        if num_sweeps is not None and gamma_schedule is not None and np.shape(gamma_schedule)[-1] != num_sweeps:
            raise ValueError(f"num_sweeps: expected None or len(gamma_schedule) = {np.shape(gamma_schedule)[-1]} with schedule_type='custom', got {num_sweeps}")
        gam, scale = _custom_arrays(gamma_schedule, scale_schedule, b)
        granges = np.stack([gam[:, 0], gam[:, -1]], axis=1)
    else:
        if gamma_schedule is not None or scale_schedule is not None:
            raise ValueError(f"gamma_schedule: expected None unless schedule_type='custom', got a schedule with schedule_type={schedule_type!r}")
        sweeps = DEFAULT_SWEEPS if num_sweeps is None else num_sweeps
        if grange is None:
            g0 = GAMMA_HOT / beta[:, 0]
            granges = np.stack([g0, GAMMA_END * g0], axis=1)
        else:
            granges = np.tile(np.array(grange), (b, 1))
        unit_a, scale = sqa_schedule(sweeps, (1.0, 0.0), schedule_type)
        # A = G1 + (G0 - G1) * unit_a for both named shapes (unit_a runs from 1 to 0).
        gam = np.ascontiguousarray(granges[:, 1:2] + (granges[:, 0:1] - granges[:, 1:2]) * unit_a[None, :])
        scale = np.ascontiguousarray(scale)
    states = np.zeros((b, num_reads, n), np.uint8)
    energies = np.zeros((b, num_reads))
    t0 = time.perf_counter()
    _core.sqa_dense_batch(q, off, gam, scale, num_slices, np.ascontiguousarray(temps, dtype=np.float64), num_reads, seed, k,
                          init, bool(global_moves), readout == "best", bool(descent), None, threads,
                          states, energies)
    kernel_s = time.perf_counter() - t0
    best = np.argmin(energies, axis=1) if num_reads else np.zeros(b, int)
    return {
        "best_states": states[np.arange(b), best],
        "best_energies": energies[np.arange(b), best],
        "states": states,
        "energies": energies,
        "temperature": np.asarray(temps, dtype=np.float64),
        "gamma_range": granges,
        "num_sweeps": int(gam.shape[1]),
        "num_slices": num_slices,
        "seed": seed,
        "timing": {"kernel_s": kernel_s},
    }


# -- batch solver for qfsel.solve ------------------------------------------------


def _solve_sqa(batch: ProblemBatch, *, num_reads: int = 16, seed: int | None = None, num_threads: int | None = None,
               **params: Any) -> Solution:
    """Swap-move SQA on the objective when ``batch.k`` is set, else flip-move SQA on the QUBO."""
    t0 = time.perf_counter()
    q, off = batch.qubo(include_penalty=False)
    t1 = time.perf_counter()
    out = simulated_quantum_annealing(q, off, k=batch.k, num_reads=num_reads, seed=seed, num_threads=num_threads, **params)
    timing = {"qubo_s": t1 - t0, "kernel_s": out["timing"]["kernel_s"], "total_s": time.perf_counter() - t0}
    info = {key: out[key] for key in ("energies", "temperature", "gamma_range", "num_sweeps", "num_slices", "seed")}
    info["read_energies"] = info.pop("energies")
    return Solution.from_states(batch, out["best_states"], "sqa", timing, info)


_SQA_PARAMETERS = ["num_reads", "seed", "num_threads", "num_sweeps", "num_slices", "temperature", "gamma_range",
                   "schedule_type", "gamma_schedule", "scale_schedule", "initial_states", "global_moves", "readout", "descent"]
register_solver("sqa", _solve_sqa, parameters=_SQA_PARAMETERS)


# -- dimod sampler -----------------------------------------------------------------


class SimulatedQuantumAnnealingSampler(dimod.Sampler):
    """Simulated quantum annealing (discrete-time path-integral Monte Carlo) in Rust, as a ``dimod.Sampler``.

    Returns one sample per read: the read's best Trotter slice. With
    ``cardinality=k`` only states with exactly ``k`` ones (``k`` up-spins for a
    spin BQM) are visited, by swap moves inside each slice. ``info`` holds
    ``temperature``, ``gamma_range``, ``num_slices``, ``num_sweeps``,
    ``schedule_type``, ``seed`` and ``timing`` (``preprocessing_ns``,
    ``sampling_ns``, ``postprocessing_ns``, as dwave-samplers reports).
    Parameters as in :func:`simulated_quantum_annealing`; ``num_reads``
    defaults to 1 (or the number of initial states). Reads run in parallel with
    the GIL released; Ctrl-C stops them between chunks of reads.
    """

    @property
    def parameters(self) -> dict[str, list]:
        return {
            "num_reads": [],
            "num_sweeps": [],
            "num_slices": [],
            "temperature": [],
            "gamma_range": [],
            "schedule_type": ["schedule_options"],
            "gamma_schedule": [],
            "scale_schedule": [],
            "initial_states": [],
            "seed": [],
            "global_moves": [],
            "readout": [],
            "descent": [],
            "cardinality": [],
            "num_threads": [],
        }

    @property
    def properties(self) -> dict[str, Any]:
        return {"schedule_options": SCHEDULE_TYPES, "default_num_slices": DEFAULT_SLICES, "default_num_sweeps": DEFAULT_SWEEPS}

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        num_reads: int | None = None,
        num_sweeps: int | None = None,
        num_slices: int = DEFAULT_SLICES,
        temperature: float | None = None,
        gamma_range: tuple[float, float] | None = None,
        schedule_type: str = "linear",
        gamma_schedule: Any = None,
        scale_schedule: Any = None,
        initial_states: Any = None,
        seed: int | None = None,
        global_moves: bool = True,
        readout: str = "best",
        descent: bool = False,
        cardinality: int | None = None,
        num_threads: int | None = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """Anneal ``bqm``; one sample (the best slice) per read."""
        self.remove_unknown_kwargs(**kwargs)
        t0 = time.perf_counter_ns()
        dense = bqm_to_dense(bqm)
        n = dense.num_variables
        k = check_cardinality(cardinality, n)
        init = None
        if initial_states is not None:
            init = SimulatedAnnealingSampler._initial_states(initial_states, bqm, dense.labels)
        if num_reads is None:
            num_reads = 1 if init is None else init.shape[0]
        num_reads = check_num_reads("num_reads", num_reads)
        seed = check_seed("seed", seed)
        if init is not None:
            if k is not None and init.size and np.any(init.sum(axis=1) != k):
                bad = int(init.sum(axis=1)[init.sum(axis=1) != k][0])
                raise ValueError(f"initial_states: expected exactly cardinality = {k} ones (spins up) per state, got {bad}")
            init = SimulatedAnnealingSampler._fill_initial(init, num_reads, n, k, seed)[None]
        t1 = time.perf_counter_ns()
        out = simulated_quantum_annealing(
            dense.q, dense.offset, k, num_reads=num_reads, num_sweeps=num_sweeps, num_slices=num_slices,
            temperature=temperature, gamma_range=gamma_range, schedule_type=schedule_type,
            gamma_schedule=gamma_schedule, scale_schedule=scale_schedule, seed=seed, initial_states=init,
            global_moves=global_moves, readout=readout, descent=descent, num_threads=num_threads,
        )
        t2 = time.perf_counter_ns()
        info = {
            "temperature": float(out["temperature"][0]),
            "gamma_range": [float(v) for v in out["gamma_range"][0]],
            "num_slices": out["num_slices"],
            "num_sweeps": out["num_sweeps"],
            "schedule_type": schedule_type,
            "seed": seed,
        }
        ss = dimod.SampleSet.from_samples_bqm((dense.to_vartype(out["states"][0]), dense.labels), bqm, info=info)
        ss.info["timing"] = {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1, "postprocessing_ns": time.perf_counter_ns() - t2}
        return ss

    def sample_cqm(self, cqm: dimod.ConstrainedQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Anneal a CQM whose only constraint is ``sum of all binaries == k`` (swap moves; every sample feasible)."""
        objective, k = cardinality_from_cqm(cqm)
        ss = self.sample(objective, cardinality=k, **parameters)
        return dimod.SampleSet.from_samples_cqm(ss, cqm, info=ss.info)


#: Short alias.
SQASampler = SimulatedQuantumAnnealingSampler

"""Simulated annealing in Rust: single-flip Metropolis, or swap moves that keep exactly ``k`` ones.

Two kernels (``qfsel._core``, GIL released, parallel over reads and problems):

* **flip**: one sweep proposes to flip every variable once, in order; local
  fields make each proposal ``O(1)``. Dense QUBOs (the feature-selection case)
  or a sparse CSR form for large sparse BQMs.
* **swap** (``cardinality=k`` / ``batch.k``): a move swaps a random selected and
  a random unselected variable, so every state has exactly ``k`` ones and no
  penalty is needed. A sweep is ``n`` attempted swaps (``O(1)`` each: the
  local fields of all ``n`` variables are kept, an accepted swap updates them
  in ``O(n)`` f32 SIMD). Default: 10 sweeps (``DEFAULT_SWEEPS_SWAP``), then
  every read ends with a *tabu polish*: steepest 1-swap descent that goes on
  as a swap tabu search (best non-tabu swap, uphill if need be; aspiration;
  ``core::tabu``'s tenures) until ``tabu_stall`` moves bring no new best
  (default ``default_tabu_stall(n, k) = max(100, 16 k + n // 2)``, re-tuned with
  ``qfsel.benchmark`` on six generated families, see docs/benchmarks.md), then the
  best state seen, descended. Each move is ``O(k n / 8)`` vectorised. By default the
  reads that end above the batch's best energy are then kicked (3 random swaps) and
  polished again, up to 8 rounds (:func:`kick_losers`).

  Why: the annealer alone commits to a basin early. On explanation-shaped
  instances (``benches/sa_report.py``) 10 sweeps + plain descent reach the
  best known energy in 49% of reads at K = 256 (k = 16) and 28% at K = 512,
  and 1000-2000 sweeps only lift that to 63-83%: the misses are distinct
  local minima 2-5 swaps from the best. The polish crosses those barriers
  directly: 98% / 94% of reads (hard family 98% / 90%) at 6-8x the read
  time; TTS99 0.93 ms at K = 512 (was 1.1-1.5 ms) and 0.31 ms at K = 256
  (was 0.22-0.31 ms: the price of >= 90% per read; hard family: 0.37 ms,
  was 0.5-0.6 ms).
  The anneal still matters: it supplies diverse low-energy starts (swap tabu
  from random starts needs ~1.6 ms per read at K = 256). Measured and not
  kept: replica exchange inside a read (4-8 replicas: +3-11 points of
  success for 4-8x the time) and heat-bath choice of the entering variable
  (+3-25 points for 5-18x the time); more sweeps with the polish (3-50
  sweeps: same success).

Local fields are ``f32`` unless the bulk of the coefficients (largest to 1%
quantile of the nonzero magnitudes) spans more than four orders of magnitude;
reported energies are always recomputed in ``f64``.

Default beta range (when ``beta_range`` is not given), derived per instance:
from a deterministic start (all zeros, or the ``k`` lowest ``Q_ii``) steepest
descent reaches a local minimum, where every single move's energy change is
computed. Hot end: the 10% quantile ``q`` of the nonzero ``|delta|`` is
accepted with probability 1/2 (flips: ``beta_hot = ln 2 / q``) or 1/8 (swaps,
a colder start: ``beta_hot = ln 8 / q``); cold end: the smallest nonzero
``|delta|`` (floored at ``1e-3 max |delta|``) is accepted with probability
1/100 (``beta_cold = ln 100 / min |delta|``). The schedule is geometric.

Seeds: read ``r`` of problem ``p`` uses its own random stream derived from
``(seed, p, r)``, so results are identical whatever ``num_threads`` is.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Sequence

import dimod
import numpy as np

from .. import _core
from .._checks import (
    check_int,
    check_num_reads,
    check_num_sweeps,
    check_num_threads,
    check_per_problem,
    check_seed,
    describe,
)
from ..qubo import ProblemBatch
from ..routing import Solution, register_solver
from ._base import DenseQubo, bqm_to_dense, cardinality_from_cqm, check_cardinality

__all__ = ["SimulatedAnnealingSampler", "simulated_annealing", "default_beta_range", "default_tabu_stall", "coupling_contrast", "kick_losers"]

SCHEDULE_TYPES = ("geometric", "linear", "custom")
#: Largest ``n`` kept dense regardless of sparsity; beyond it sparse BQMs go to CSR.
DENSE_MAX_VARIABLES = 2048
#: Default sweeps of the single-flip kernel (``simulated_annealing`` / ``qfsel.solve``).
DEFAULT_SWEEPS_FLIP = 200
#: Default sweeps of the swap kernel (a sweep = ``n`` attempted swaps), followed by steepest
#: 1-swap descent. Measured (``benches/sa_report.py``): on explanation-shaped instances the success
#: per read barely grows from 10 to 1000 sweeps (the reads that miss end in distinct local minima
#: 2-5 swaps away), so short reads give the best time to solution.
DEFAULT_SWEEPS_SWAP = 10
#: Default kick-and-repolish rounds (:func:`kick_losers`) after the swap kernel's default polish
#: (issue 13: on the instances the polish alone left at 42-77% of reads, grouped K = 512 and uniform
#: K = 1280, 8 rounds on the reads above the batch's best reach >= 90%; reads at the best cost nothing).
DEFAULT_KICK_ROUNDS = 8
#: Random swaps of one kick (:func:`kick_losers`).
KICK_SWAPS = 3
#: Coefficient dynamic range above which a problem's fields are kept in f64 (Rust's constant).
SINGLE_PRECISION_MAX_RANGE: float = _core.SINGLE_PRECISION_MAX_RANGE


def default_tabu_stall(n: int, k: int, contrast: float | None = None) -> int:
    """Default stall limit of the swap kernel's final tabu polish.

    ``max(100, 16 k + n // 2)``, times ``clip(contrast / 4, 1, 2)`` when the problem's
    :func:`coupling_contrast` is given. ``simulated_annealing``'s default uses the plain
    ``max(100, 16 k + n // 2)`` followed by :func:`kick_losers` rounds (the contrast factor doubled
    the read time of small grouped/uniform instances that did not need it, and did not reach 90%
    on the large ones).

    Measured with ``qfsel.benchmark`` (docs/benchmarks.md, "Tuning the exactly-k annealer's
    defaults"; 64 reads per instance, one thread). The previous default ``max(50, 8 k + n // 4)`` reached
    the best known energy in 81-90% of reads on some tuning instances (explanation / redundant at
    K = 512, k = 16); doubling it lifts every tuning family to >= 95% up to K = 512 at 1.3-2.3x the
    read time. On the held-out families it still failed on ``grouped`` (near-duplicate maps: 72% on
    one instance at K = 256, 50% at K = 1280) and on ``uniform`` at K = 1280 (78-92%); those
    instances are the ones whose strongest coupling per map stands far above the typical one
    (contrast 4-9 against 2-3.7 for the rest), and a longer polish is what helps them (more sweeps,
    hotter or colder schedules do not), hence the contrast factor. Final validation on fresh
    instances: >= 90% of reads in 22 of 24 family x size cells up to K = 1280 (not grouped K = 512,
    77%, nor uniform K = 1280, 84%).

    Example:
        >>> default_tabu_stall(256, 16), default_tabu_stall(256, 16, contrast=2.5), default_tabu_stall(256, 16, contrast=6.0)
        (384, 384, 576)
    """
    base = max(100, 16 * int(k) + int(n) // 2)
    if contrast is None or not np.isfinite(contrast):
        return base if contrast is None else 2 * base
    return int(round(base * min(2.0, max(1.0, float(contrast) / 4.0))))


def coupling_contrast(q: np.ndarray, rows: int = 16) -> np.ndarray:
    """Per dense QUBO ``q (B, n, n)``: how far each variable's strongest coupling stands above the typical one.

    The median over (up to ``rows`` evenly spaced) variables of ``max_j |Q_ij|``, divided by the
    median nonzero off-diagonal ``|Q_ij|`` of those rows (1 for problems without couplings). About
    2-3.7 for explanation-shaped instances, ~4.5 for independent random maps, ~8 when maps come in
    groups of near-duplicates.

    Example:
        >>> import numpy as np
        >>> j = np.full((6, 6), 0.1); j[0, 1] = j[2, 3] = j[4, 5] = 0.8
        >>> float(coupling_contrast(np.triu(j, 1)[None])[0])
        8.0
    """
    qa = np.asarray(q, dtype=np.float64)
    if qa.ndim == 2:
        qa = qa[None]
    b, n = qa.shape[0], qa.shape[-1]
    if n < 2 or b == 0:
        return np.ones(b)
    idx = np.unique(np.linspace(0, n - 1, min(rows, n)).astype(np.int64))
    r = np.abs(qa[:, idx, :])
    r += np.abs(qa[:, :, idx]).transpose(0, 2, 1)  # full rows of the symmetric coupling (q is triangular)
    r[:, np.arange(idx.size), idx] = 0.0
    top = np.median(r.max(axis=2), axis=1)
    flat = r.reshape(b, -1)
    typical = np.median(flat, axis=1)
    out = np.ones(b)
    for i in np.flatnonzero(typical <= 0):  # mostly-zero couplings: the median of the nonzero ones
        nz = flat[i][flat[i] > 0]
        typical[i] = np.median(nz) if nz.size else 0.0
    ok = typical > 0
    out[ok] = top[ok] / typical[ok]
    return out


#: Coefficient magnitudes outside ``[2**-SCALE_EXPONENT, 2**SCALE_EXPONENT]`` are rescaled by a power of two.
SCALE_EXPONENT = 32


def _power_of_two_scales(maxabs: np.ndarray) -> np.ndarray:
    """Per problem, a power of two ``s`` that brings the largest ``|coefficient|`` near 1.

    Only for magnitudes outside ``[2**-32, 2**32]`` (else ``s = 1``: ordinary problems run
    bit for bit as before). The kernels see ``s Q`` and betas ``beta / s``: every
    ``beta * delta`` is unchanged (scaling by a power of two is exact), but f32 fields
    neither overflow (``|Q| ~ 1e39`` and up) nor flush to zero (``|Q| ~ 1e-40``), and the
    swap kernel's "selected" sentinel (``1e30``) stays above every real cost.
    """
    m = np.asarray(maxabs, dtype=np.float64)
    out = np.ones_like(m)
    if m.size and 2.0**-SCALE_EXPONENT <= m.min() and m.max() <= 2.0**SCALE_EXPONENT:
        return out  # the usual case, in two reductions
    ok = np.isfinite(m) & (m > 0) & ((m > 2.0**SCALE_EXPONENT) | (m < 2.0**-SCALE_EXPONENT))
    if np.any(ok):
        _, e = np.frexp(m[ok])
        out[ok] = np.ldexp(1.0, -e)
    return out


def _single_precision(q: np.ndarray) -> bool:
    """Whether every dense problem of ``q`` (``(n, n)`` or ``(B, n, n)``) anneals with f32 fields.

    The rule is Rust's ``sa::prefers_single``, applied per problem by the
    kernels themselves (a problem anneals the same alone or inside any batch):
    f32 unless the bulk of the coefficients spans more than
    ``SINGLE_PRECISION_MAX_RANGE``, measured from the largest magnitude to the
    1% quantile of the nonzero magnitudes on a fixed strided sample plus the
    diagonal. A few near-zero couplings (``|cos|`` of nearly orthogonal maps)
    do not call for f64; reported energies are recomputed in f64 anyway.
    """
    qa = np.ascontiguousarray(q, dtype=np.float64)
    if qa.ndim == 2:
        qa = qa[None]
    return all(_core.sa_single_precision(qa, 0))


def _single_precision_values(values: np.ndarray) -> bool:
    """The same rule on the coefficients of a sparse model (its linear and quadratic values)."""
    sample = values[:: max(1, values.size // 8192)]
    top = float(np.abs(sample).max()) if sample.size else 0.0
    nz = np.abs(sample[sample != 0])
    if top == 0 or nz.size == 0:
        return True
    low = float(np.partition(nz, nz.size // 100)[nz.size // 100])
    return top / low <= SINGLE_PRECISION_MAX_RANGE


def _check_beta_range(beta_range: Any) -> tuple[float, float] | None:
    if beta_range is None:
        return None
    if isinstance(beta_range, (str, bytes)) or not hasattr(beta_range, "__len__") or len(beta_range) != 2:
        raise TypeError(f"beta_range: expected a pair (beta_hot, beta_cold) of positive numbers, got {describe(beta_range)}")
    try:
        b0, b1 = (float(v) for v in beta_range)
    except (TypeError, ValueError):
        raise TypeError(f"beta_range: expected a pair of positive numbers, got {describe(beta_range)}") from None
    if not (np.isfinite(b0) and np.isfinite(b1)) or b0 <= 0 or b1 <= 0:
        raise ValueError(f"beta_range: expected two finite positive numbers, got {tuple(beta_range)!r}")
    if b0 > b1:
        raise ValueError(f"beta_range: expected beta_hot <= beta_cold (annealing cools), got {tuple(beta_range)!r}")
    return b0, b1


def _check_schedule(
    num_sweeps: Any, beta_schedule_type: Any, beta_schedule: Any, beta_range: Any, default_sweeps: int
) -> tuple[np.ndarray | None, int]:
    """The custom schedule (or ``None``) and the number of sweeps; every schedule argument checked."""
    if beta_schedule_type not in SCHEDULE_TYPES:
        raise ValueError(f"beta_schedule_type: expected one of {SCHEDULE_TYPES}, got {beta_schedule_type!r}")
    if beta_schedule_type == "custom":
        if beta_schedule is None:
            raise ValueError("beta_schedule: expected a 1-D array of betas with beta_schedule_type='custom', got None")
        sched = np.asarray(beta_schedule, dtype=float) if not isinstance(beta_schedule, (str, bytes)) else None
        if sched is None or sched.ndim != 1 or sched.size == 0:
            raise ValueError(f"beta_schedule: expected a non-empty 1-D array of betas, got {describe(beta_schedule)}")
        if not np.all(np.isfinite(sched)) or np.any(sched < 0):
            raise ValueError("beta_schedule: expected finite non-negative betas, got a negative or non-finite value")
        check_num_sweeps("beta_schedule length", sched.size)
        if num_sweeps is not None and check_num_sweeps("num_sweeps", num_sweeps) != sched.size:
            raise ValueError(f"num_sweeps: expected None or len(beta_schedule) = {sched.size} with a custom schedule, got {num_sweeps}")
        if beta_range is not None:
            raise ValueError("beta_range: expected None with beta_schedule_type='custom' (the schedule sets the betas)")
        return sched, sched.size
    if beta_schedule is not None:
        raise ValueError(f"beta_schedule: only used with beta_schedule_type='custom', got beta_schedule_type={beta_schedule_type!r}")
    return None, check_num_sweeps("num_sweeps", default_sweeps if num_sweeps is None else num_sweeps)


def _schedules(ranges: np.ndarray, sched: np.ndarray | None, s: int, beta_schedule_type: str) -> np.ndarray:
    """Betas ``(B, S)`` from per-problem ranges ``(B, 2)`` (or the custom schedule ``sched``)."""
    b = ranges.shape[0]
    check_per_problem("num_sweeps", s, b)
    if sched is not None:
        return np.ascontiguousarray(np.broadcast_to(sched, (b, sched.size)))
    t = np.arange(s) / max(s - 1, 1)
    b0, b1 = ranges[:, :1], ranges[:, 1:]
    if s == 1:
        return np.ascontiguousarray(b1.copy())
    if beta_schedule_type == "geometric":
        betas = b0 * (b1 / b0) ** t[None]
    else:
        betas = b0 + (b1 - b0) * t[None]
    betas[:, -1] = b1[:, 0]
    return np.ascontiguousarray(betas)


def _check_parameters(
    num_reads: Any = 16,
    num_sweeps: Any = None,
    beta_range: Any = None,
    beta_schedule_type: Any = "geometric",
    beta_schedule: Any = None,
    initial_states: Any = None,
    seed: Any = None,
    num_threads: Any = None,
    greedy_descent: Any = None,
    tabu_stall: Any = None,
    return_states: Any = False,
    *,
    default_sweeps: int = 0,
) -> dict[str, Any]:
    """The problem-independent checks of :func:`simulated_annealing`, in its order; the checked values.

    ``initial_states`` needs the problem's shape and is checked later;
    ``default_sweeps`` stands in for ``num_sweeps=None`` (the default depends on ``k``).
    """
    del initial_states, return_states
    checked: dict[str, Any] = {"num_reads": check_num_reads("num_reads", num_reads)}
    checked["seed"] = check_seed("seed", seed)
    checked["threads"] = check_num_threads("num_threads", num_threads)
    if greedy_descent is not None and not isinstance(greedy_descent, (bool, np.bool_)):
        raise TypeError(f"greedy_descent: expected a bool, got {describe(greedy_descent)}")
    checked["tabu_stall"] = None if tabu_stall is None else check_int("tabu_stall", tabu_stall, low=0)
    checked["beta_range"] = br = _check_beta_range(beta_range)
    checked["schedule"] = _check_schedule(
        num_sweeps, beta_schedule_type, beta_schedule, br, default_sweeps or DEFAULT_SWEEPS_FLIP
    )
    return checked


def default_beta_range(q: np.ndarray, offsets: np.ndarray | None = None, k: int | None = None, num_threads: int | None = None) -> np.ndarray:
    """The instance-derived ``(beta_hot, beta_cold)`` of each dense QUBO ``q (B, n, n)`` (see module docs)."""
    q = np.ascontiguousarray(q, dtype=np.float64)
    if q.ndim == 2:
        q = q[None]
    off = np.zeros(q.shape[0]) if offsets is None else np.ascontiguousarray(np.broadcast_to(offsets, (q.shape[0],)), dtype=np.float64)
    out = np.empty((q.shape[0], 2))
    _core.sa_default_beta_ranges(q, off, k, None, check_num_threads("num_threads", num_threads), out)
    return out


def simulated_annealing(
    q: Any,
    offsets: Any = None,
    *,
    k: int | None = None,
    num_reads: int = 16,
    num_sweeps: int | None = None,
    beta_range: Sequence[float] | None = None,
    beta_schedule_type: str = "geometric",
    beta_schedule: Any = None,
    initial_states: Any = None,
    seed: int | None = None,
    num_threads: int | None = None,
    greedy_descent: bool | None = None,
    tabu_stall: int | None = None,
    return_states: bool = False,
    kick_rounds: int | None = None,
) -> dict[str, Any]:
    """Anneal ``B`` dense QUBOs at once; arrays in, arrays out.

    Args:
        q: ``(B, n, n)`` (or ``(n, n)``) upper-triangular QUBOs.
        offsets: ``(B,)`` constant terms (default 0).
        k: keep exactly ``k`` ones (swap moves); ``None``: single flips.
        num_reads: independent reads per problem.
        num_sweeps: sweeps (one per beta); ``None``: ``DEFAULT_SWEEPS_SWAP`` (10) with ``k``,
            ``DEFAULT_SWEEPS_FLIP`` (200) without, the schedule's length with a custom one.
        beta_range: ``(beta_hot, beta_cold)`` for every problem; default per instance.
        beta_schedule_type: ``"geometric"``, ``"linear"`` or ``"custom"``.
        beta_schedule: the betas of a custom schedule.
        initial_states: ``(B, R, n)`` 0/1 starting states (exactly ``k`` ones with ``k``).
        seed: reproducible seed (``None``: fresh).
        num_threads: threads (``None``/0: all cores); results do not depend on it.
        greedy_descent: end every read with steepest descent to a local minimum
            (``None``: on for the swap kernel, off for single flips: the plain anneal, which samples
            the schedule's distribution; ``qfsel.solve`` turns it on for both).
        tabu_stall: swap kernel with ``greedy_descent``: the final descent continues as a short
            swap tabu search that stops after this many moves without a new best (``None``:
            ``default_tabu_stall(n, k)``, then ``kick_rounds``; 0: plain steepest 1-swap
            descent). Ignored otherwise.
        return_states: also return every read's final state ``(B, R, n)``.
        kick_rounds: swap kernel with the tabu polish: at most this many rounds in which every
            read that ended above its batch's best energy has ``KICK_SWAPS`` random swaps
            applied and is polished again (stall ``tabu_stall // 2``), keeping the better
            state (:func:`kick_losers`; ``None``: ``DEFAULT_KICK_ROUNDS`` (8) with the default
            ``tabu_stall``, 0 when ``tabu_stall`` is given; 0: off). Reads at the batch's best
            cost nothing; the reads are then not independent of each other.

    Returns:
        ``best_states (B, n)`` uint8, ``best_energies (B,)``, ``energies (B, R)``,
        ``states`` (or ``None``), ``beta_range (B, 2)``, ``num_sweeps``, ``seed``
        and ``timing`` (seconds).

    Example:
        >>> import numpy as np
        >>> q = np.array([[[-1.0, 2.0], [0.0, -1.0]]])
        >>> out = simulated_annealing(q, num_reads=4, seed=1)
        >>> float(out["best_energies"][0]), int(out["best_states"][0].sum())
        (-1.0, 1)
    """
    t0 = time.perf_counter()
    qa = np.asarray(q, dtype=np.float64) if not hasattr(q, "detach") else q.detach().cpu().numpy().astype(np.float64)
    if qa.ndim == 2:
        qa = qa[None]
    if qa.ndim != 3 or qa.shape[1] != qa.shape[2]:
        raise ValueError(f"q: expected shape (B, n, n) or (n, n), got shape {qa.shape}")
    qa = np.ascontiguousarray(qa)
    # Finiteness of q is checked by the kernel while it builds each problem's
    # couplings (the same pass over the data; a ValueError naming q).
    b, n = qa.shape[0], qa.shape[1]
    off = np.zeros(b) if offsets is None else np.asarray(offsets, dtype=np.float64)
    if off.shape != (b,):  # a scalar (or broadcastable) offset; np.broadcast_to is slow on the hot path
        off = np.broadcast_to(off, (b,))
    off = np.ascontiguousarray(off)
    if not np.all(np.isfinite(off)):
        raise ValueError("offsets: expected finite values, got a NaN or infinite value")
    if k is not None:
        k = check_int("k", k, low=0, high=n)
    checked = _check_parameters(
        num_reads, num_sweeps, beta_range, beta_schedule_type, beta_schedule, None, seed, num_threads,
        greedy_descent, tabu_stall, default_sweeps=DEFAULT_SWEEPS_FLIP if k is None else DEFAULT_SWEEPS_SWAP,
    )
    num_reads, seed, threads, br = checked["num_reads"], checked["seed"], checked["threads"], checked["beta_range"]
    check_per_problem("num_reads", num_reads, b)
    sched, s = checked["schedule"]
    if greedy_descent is None:
        greedy_descent = k is not None
    tabu_stall = checked["tabu_stall"]
    rounds = None if kick_rounds is None else check_int("kick_rounds", kick_rounds, low=0)
    if rounds is None:
        rounds = DEFAULT_KICK_ROUNDS if tabu_stall is None else 0
    if tabu_stall is None:
        tabu_stall = default_tabu_stall(n, k) if k is not None else 0
    polish = tabu_stall if (k is not None and greedy_descent) else 0
    if polish == 0 or k is None or not 0 < k < n or num_reads < 2:
        rounds = 0
    # Huge or tiny coefficients: anneal s*Q with betas/s (same dynamics, see _power_of_two_scales).
    scales = _power_of_two_scales(np.maximum(qa.max(axis=(1, 2)), -qa.min(axis=(1, 2)))) if qa.size else np.ones(b)
    rescaled = bool(np.any(scales != 1.0))
    if rescaled:
        qa = qa * scales[:, None, None]
        off = off * scales
    if beta_schedule_type == "custom" or br is not None:
        ranges = np.tile(np.asarray(br if br is not None else (1.0, 1.0), dtype=float), (b, 1))
    else:
        ranges = np.empty((b, 2))
        if n:
            _core.sa_default_beta_ranges(qa, off, k, None, threads, ranges)
            ranges *= scales[:, None]
        else:
            ranges[:] = (0.1, 1.0)
    betas = _schedules(ranges, sched, s, beta_schedule_type)
    if beta_schedule_type == "custom":
        ranges = np.tile([betas[0, 0], betas[0, -1]], (b, 1))
    init = None
    if initial_states is not None:
        init = _initial_array(initial_states, (b, num_reads, n), k)
    best_states = np.empty((b, n), dtype=np.uint8)
    best_e = np.empty(b)
    energies = np.empty((b, num_reads))
    states = np.empty((b, num_reads, n), dtype=np.uint8) if (return_states or rounds) else None
    t1 = time.perf_counter()
    kernel_betas = np.ascontiguousarray(betas / scales[:, None]) if rescaled else betas
    _core.sa_dense_batch(qa, off, kernel_betas, num_reads, seed, k, init, bool(greedy_descent), polish, None, threads, best_states, best_e, energies, states)
    if rounds:
        assert k is not None and states is not None
        kick_losers(qa, off, k, states, energies, best_states, best_e, seed=seed, rounds=rounds, stall=max(1, polish // 2),
                    num_threads=threads, beta=np.full(b, 1e9))
    if not return_states:
        states = None
    if rescaled:
        best_e /= scales
        energies /= scales[:, None]
    t2 = time.perf_counter()
    return {
        "best_states": best_states,
        "best_energies": best_e,
        "energies": energies,
        "states": states,
        "beta_range": ranges,
        "num_sweeps": s,
        "tabu_stall": polish,
        "seed": seed,
        "timing": {"preprocessing_s": t1 - t0, "sampling_s": t2 - t1},
    }


def kick_losers(q: np.ndarray, offsets: np.ndarray, k: int, states: np.ndarray, energies: np.ndarray, best_states: np.ndarray,
                best_energies: np.ndarray, *, seed: int, rounds: int, stall: int, num_threads: int, beta: np.ndarray) -> None:
    """Kick-and-repolish rounds for the reads above their problem's best energy (in place).

    In each of at most ``rounds`` rounds, every read of problem ``p`` whose energy is above
    ``best_energies[p]`` (1e-9 relative) gets ``min(KICK_SWAPS, k, n - k)`` random swaps (a
    selected variable out, an unselected one in) and one sweep at ``beta[p]`` (improving swaps
    only) followed by the tabu polish with ``stall``; the read keeps the new state when it is
    lower. Stops early when every read is at its problem's best. The kicks come from
    ``numpy.random.default_rng((seed, p, round))`` and the kernel's seed from the same generator,
    so results depend on ``seed`` only, not on the thread count.
    """
    b, r, n = states.shape
    swaps = min(KICK_SWAPS, k, n - k)
    for p in range(b):
        for rnd in range(rounds):
            tol = 1e-9 * max(1.0, abs(float(best_energies[p])))
            losers = np.flatnonzero(energies[p] > best_energies[p] + tol)
            if losers.size == 0:
                break
            rng = np.random.default_rng((seed, p, rnd))
            init = states[p, losers].copy()
            for row in init:
                row[rng.choice(np.flatnonzero(row), swaps, replace=False)] = 0
                row[rng.choice(np.flatnonzero(row == 0), swaps, replace=False)] = 1
            m = losers.size
            bs, be = np.empty((1, n), dtype=np.uint8), np.empty(1)
            en, st = np.empty((1, m)), np.empty((1, m, n), dtype=np.uint8)
            _core.sa_dense_batch(q[p:p + 1], offsets[p:p + 1], np.full((1, 1), float(beta[p])), m, int(rng.integers(2**63)), k,
                                 init[None], True, stall, None, num_threads, bs, be, en, st)
            better = en[0] < energies[p, losers]
            states[p, losers[better]] = st[0, better]
            energies[p, losers[better]] = en[0, better]
            if be[0] < best_energies[p]:
                best_energies[p] = be[0]
                best_states[p] = bs[0]


def _initial_array(initial_states: Any, shape: tuple[int, ...], k: int | None) -> np.ndarray:
    arr = np.asarray(initial_states)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"initial_states: expected 0/1 values, got {describe(initial_states)}")
    if arr.shape != shape:
        raise ValueError(f"initial_states: expected shape {shape}, got shape {arr.shape}")
    if arr.size and not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"initial_states: expected binary values 0/1, got {arr[(arr != 0) & (arr != 1)].flat[0]!r}")
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if k is not None and arr.size and np.any(arr.sum(axis=-1) != k):
        bad = arr.sum(axis=-1)[arr.sum(axis=-1) != k].flat[0]
        raise ValueError(f"initial_states: expected exactly k = {k} ones in every state, got a state with {bad}")
    return arr


# -- batch solvers for qfsel.solve --------------------------------------------


def _solution(batch: ProblemBatch, name: str, out: dict[str, Any], t0: float) -> Solution:
    timing = dict(out["timing"])
    timing["total_s"] = time.perf_counter() - t0
    info = {
        "read_energies": out["energies"],
        "best_qubo_energies": out["best_energies"],
        "beta_range": out["beta_range"],
        "num_sweeps": out["num_sweeps"],
        "tabu_stall": out["tabu_stall"],
        "seed": out["seed"],
    }
    if out["states"] is not None:
        info["read_states"] = out["states"]
    return Solution.from_states(batch, out["best_states"], name, timing, info)


def _solve_sa(batch: ProblemBatch, *, num_reads: int = 16, num_sweeps: int | None = None, seed: int | None = None,
              num_threads: int | None = None, beta_range: Any = None, **params: Any) -> Solution:
    """Swap-move SA on the objective when ``batch.k`` is set, else single-flip SA on the QUBO.

    Defaults: with ``batch.k``, ``DEFAULT_SWEEPS_SWAP`` (10) sweeps from the swap beta range, then
    a short swap tabu polish (stall ``default_tabu_stall(n, k)``) in every read, then up to
    ``DEFAULT_KICK_ROUNDS`` kick-and-repolish rounds for the reads above the best (:func:`kick_losers`); without, ``DEFAULT_SWEEPS_FLIP`` (200) single-flip
    sweeps. Every read ends in a local minimum (``greedy_descent`` defaults to on here, for single
    flips too: an optimiser's reads should not end one flip above one). ``info["read_energies"]``
    holds every read's energy (objective without penalty for the swap kernel, which never leaves
    the feasible set).
    """
    t0 = time.perf_counter()
    q, off = batch.qubo(include_penalty=False)
    params.setdefault("greedy_descent", True)
    out = simulated_annealing(q, off, k=batch.k, num_reads=num_reads, num_sweeps=num_sweeps, seed=seed,
                              num_threads=num_threads, beta_range=beta_range, **params)
    return _solution(batch, "sa", out, t0)


def _solve_sa_penalty(batch: ProblemBatch, *, num_reads: int = 16, num_sweeps: int | None = None, seed: int | None = None,
                      num_threads: int | None = None, beta_range: Any = None, **params: Any) -> Solution:
    """Single-flip SA on the penalty QUBO (``batch.qubo()``), every read descended to a local minimum
    (``greedy_descent`` defaults to on); ``info["read_energies"]`` include the penalty."""
    t0 = time.perf_counter()
    q, off = batch.qubo()
    params.setdefault("greedy_descent", True)
    out = simulated_annealing(q, off, k=None, num_reads=num_reads, num_sweeps=num_sweeps, seed=seed,
                              num_threads=num_threads, beta_range=beta_range, **params)
    return _solution(batch, "sa-penalty", out, t0)


# The batch solvers pass their keyword arguments on to simulated_annealing: accept exactly its own.
_SA_PARAMETERS = [p for p in inspect.signature(simulated_annealing).parameters if p not in ("q", "offsets", "k")]
register_solver("sa", _solve_sa, parameters=_SA_PARAMETERS, validate=_check_parameters)
register_solver("sa-penalty", _solve_sa_penalty, parameters=_SA_PARAMETERS, validate=_check_parameters)


# -- dimod sampler --------------------------------------------------------------


class SimulatedAnnealingSampler(dimod.Sampler):
    """Simulated annealing in Rust as a ``dimod.Sampler`` (a drop-in for
    ``dwave.samplers.SimulatedAnnealingSampler`` on the common parameters).

    Returns every read. ``info`` holds ``beta_range``, ``beta_schedule_type``
    and ``timing`` (``preprocessing_ns``, ``sampling_ns``, ``postprocessing_ns``,
    as dwave-samplers reports). With ``cardinality=k`` only states with exactly
    ``k`` ones (``k`` up-spins for a spin BQM) are visited, by swap moves.

    Example:
        >>> import dimod
        >>> from qfsel.samplers.sa import SimulatedAnnealingSampler
        >>> bqm = dimod.BinaryQuadraticModel({"a": -1, "b": -1}, {("a", "b"): 2}, 0, "BINARY")
        >>> ss = SimulatedAnnealingSampler().sample(bqm, num_reads=10, seed=3)
        >>> float(ss.first.energy), len(ss)
        (-1.0, 10)
    """

    @property
    def parameters(self) -> dict[str, list]:
        return {
            "beta_range": [],
            "num_reads": [],
            "num_sweeps": [],
            "beta_schedule_type": ["beta_schedule_options"],
            "beta_schedule": [],
            "seed": [],
            "initial_states": [],
            "num_threads": [],
            "greedy_descent": [],
            "tabu_stall": [],
            "cardinality": [],
        }

    @property
    def properties(self) -> dict[str, Any]:
        return {"beta_schedule_options": SCHEDULE_TYPES, "dense_max_variables": DENSE_MAX_VARIABLES}

    def sample(
        self,
        bqm: dimod.BinaryQuadraticModel,
        num_reads: int | None = None,
        num_sweeps: int | None = None,
        beta_range: Sequence[float] | None = None,
        beta_schedule_type: str = "geometric",
        beta_schedule: Any = None,
        initial_states: Any = None,
        seed: int | None = None,
        num_threads: int | None = None,
        greedy_descent: bool | None = None,
        tabu_stall: int | None = None,
        cardinality: int | None = None,
        **kwargs: Any,
    ) -> dimod.SampleSet:
        """Anneal ``bqm``; ``num_reads`` defaults to 1 (or the number of initial states),
        ``num_sweeps`` to 1000 (as dwave-samplers) for single flips and to ``DEFAULT_SWEEPS_SWAP``
        with ``cardinality``; ``greedy_descent`` to on with ``cardinality``, else off (a plain anneal, as
        dwave-samplers); ``tabu_stall``
        (cardinality only) as in :func:`simulated_annealing`."""
        self.remove_unknown_kwargs(**kwargs)
        t0 = time.perf_counter_ns()
        if not isinstance(bqm, dimod.BinaryQuadraticModel):
            raise TypeError(f"bqm: expected a dimod.BinaryQuadraticModel, got {type(bqm).__name__}")
        labels = list(bqm.variables)
        n = len(labels)
        k = check_cardinality(cardinality, n)
        init = None
        if initial_states is not None:
            init = self._initial_states(initial_states, bqm, labels)
        if num_reads is None:
            num_reads = 1 if init is None else init.shape[0]
        num_reads = check_num_reads("num_reads", num_reads)
        if num_sweeps is None and beta_schedule_type != "custom":
            num_sweeps = 1000 if k is None else DEFAULT_SWEEPS_SWAP
        if greedy_descent is None:
            greedy_descent = k is not None
        seed = check_seed("seed", seed)
        if init is not None:
            init = self._fill_initial(init, num_reads, n, k, seed)
        br = _check_beta_range(beta_range)
        threads = check_num_threads("num_threads", num_threads)
        if n == 0:
            _check_schedule(num_sweeps, beta_schedule_type, beta_schedule, br, 1000)
            ss = dimod.SampleSet.from_samples_bqm((np.zeros((num_reads, 0), dtype=np.int8), []), bqm)
            ss.info.update(beta_range=list(br) if br else [0.1, 1.0], beta_schedule_type=beta_schedule_type,
                           timing={"preprocessing_ns": time.perf_counter_ns() - t0, "sampling_ns": 0, "postprocessing_ns": 0})
            return ss
        sparse = self._use_sparse(bqm, n, k)
        if sparse:
            states, energies, ranges, t1, t2 = self._sample_sparse(
                bqm, labels, num_reads, num_sweeps, br, beta_schedule_type, beta_schedule, init, seed, threads, greedy_descent)
        else:
            dense = bqm_to_dense(bqm)
            t1 = time.perf_counter_ns()
            out = simulated_annealing(dense.q, dense.offset, k=k, num_reads=num_reads, num_sweeps=num_sweeps, beta_range=br,
                                      beta_schedule_type=beta_schedule_type, beta_schedule=beta_schedule,
                                      initial_states=None if init is None else init[None], seed=seed,
                                      num_threads=threads, greedy_descent=greedy_descent, tabu_stall=tabu_stall,
                                      return_states=True)
            t2 = time.perf_counter_ns()
            states, ranges = out["states"][0], out["beta_range"][0]
        samples = 2 * states.astype(np.int8) - 1 if bqm.vartype is dimod.SPIN else states.astype(np.int8)
        info = {"beta_range": [float(ranges[0]), float(ranges[1])], "beta_schedule_type": beta_schedule_type}
        ss = dimod.SampleSet.from_samples_bqm((samples, labels), bqm, info=info)
        info = ss.info
        info["timing"] = {
            "preprocessing_ns": t1 - t0,
            "sampling_ns": t2 - t1,
            "postprocessing_ns": time.perf_counter_ns() - t2,
        }
        return ss

    def sample_cqm(self, cqm: dimod.ConstrainedQuadraticModel, **parameters: Any) -> dimod.SampleSet:
        """Anneal a CQM whose only constraint is ``sum of all binaries == k`` (swap moves)."""
        objective, k = cardinality_from_cqm(cqm)
        ss = self.sample(objective, cardinality=k, **parameters)
        return dimod.SampleSet.from_samples_cqm(ss, cqm, info=ss.info)

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def _use_sparse(bqm: dimod.BinaryQuadraticModel, n: int, k: int | None) -> bool:
        if k is not None or n <= 256:
            return False
        density = bqm.num_interactions / (n * (n - 1) / 2)
        return n > DENSE_MAX_VARIABLES or density < 0.05

    @staticmethod
    def _initial_states(initial_states: Any, bqm: dimod.BinaryQuadraticModel, labels: list) -> np.ndarray:
        try:
            arr, init_labels = dimod.as_samples(initial_states)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"initial_states: expected samples-like (array, list of dicts, SampleSet), got {describe(initial_states)}") from exc
        arr = np.asarray(arr)
        init_labels = list(init_labels)
        bare = isinstance(initial_states, np.ndarray) or (
            isinstance(initial_states, list) and len(initial_states) > 0 and not isinstance(initial_states[0], (dict, tuple))
        )
        if bare and arr.ndim == 2 and arr.shape[1] == len(labels):
            init_labels = list(labels)  # a bare array is in the BQM's variable order (as TabuSampler)
        if arr.ndim != 2 or arr.shape[1] != len(labels) or set(init_labels) != set(labels):
            raise ValueError(
                f"initial_states: expected states over the BQM's {len(labels)} variables {labels[:8]}, "
                f"got shape {arr.shape} over variables {init_labels[:8]}"
            )
        order = [init_labels.index(v) for v in labels] if list(init_labels) != labels else slice(None)
        arr = arr[:, order]
        allowed = (-1, 1) if bqm.vartype is dimod.SPIN else (0, 1)
        if arr.size and not np.all(np.isin(arr, allowed)):
            bad = arr[~np.isin(arr, allowed)].flat[0]
            raise ValueError(f"initial_states: expected values in {allowed} for a {bqm.vartype.name} BQM, got {bad!r}")
        return np.ascontiguousarray((arr > 0).astype(np.uint8))

    @staticmethod
    def _fill_initial(init: np.ndarray, num_reads: int, n: int, k: int | None, seed: int) -> np.ndarray:
        """First ``num_reads`` initial states; missing ones drawn at random (from ``seed``)."""
        if init.shape[0] >= num_reads:
            return np.ascontiguousarray(init[:num_reads])
        rng = np.random.default_rng(seed)
        extra = num_reads - init.shape[0]
        if k is None:
            more = rng.integers(0, 2, size=(extra, n), dtype=np.uint8)
        else:
            more = np.zeros((extra, n), dtype=np.uint8)
            for r in range(extra):
                more[r, rng.choice(n, size=k, replace=False)] = 1
        return np.ascontiguousarray(np.concatenate([init, more]))

    @staticmethod
    def _sample_sparse(bqm, labels, num_reads, num_sweeps, br, schedule_type, beta_schedule, init, seed, threads, greedy):
        binary = bqm if bqm.vartype is dimod.BINARY else bqm.change_vartype(dimod.BINARY, inplace=False)
        lin, (rows, cols, vals), off = binary.to_numpy_vectors(variable_order=labels)
        lin = np.ascontiguousarray(lin, dtype=np.float64)
        vals = np.ascontiguousarray(vals, dtype=np.float64)
        if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(vals)) and np.isfinite(off)):
            raise ValueError("bqm: expected finite biases, got a NaN or infinite bias")
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        cols = np.ascontiguousarray(cols, dtype=np.int64)
        top = max(float(np.abs(lin).max()) if lin.size else 0.0, float(np.abs(vals).max()) if vals.size else 0.0)
        scale = float(_power_of_two_scales(np.array([top]))[0])
        if scale != 1.0:  # huge or tiny biases: anneal scale*Q with betas/scale (same dynamics)
            lin, vals, off = lin * scale, vals * scale, off * scale
        sched, s = _check_schedule(num_sweeps, schedule_type, beta_schedule, br, 1000)
        if schedule_type == "custom" or br is not None:
            rng_ = np.asarray([br if br is not None else (1.0, 1.0)], dtype=float)
        else:
            rng_ = np.asarray([_core.sa_sparse_default_beta_range(lin, rows, cols, vals)]) * scale
        betas = _schedules(rng_, sched, s, schedule_type)
        if schedule_type == "custom":
            rng_ = np.asarray([[betas[0, 0], betas[0, -1]]])
        n = len(labels)
        states = np.empty((num_reads, n), dtype=np.uint8)
        energies = np.empty(num_reads)
        single = _single_precision_values(np.concatenate([lin, vals]))
        t1 = time.perf_counter_ns()
        _core.sa_sparse(lin, rows, cols, vals, float(off), np.ascontiguousarray(betas[0] / scale), num_reads, seed, init,
                        bool(greedy), single, threads, states, energies)
        t2 = time.perf_counter_ns()
        return states, energies / scale, rng_[0], t1, t2

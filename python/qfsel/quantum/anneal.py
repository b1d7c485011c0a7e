"""Exact statevector anneals: :func:`anneal`, :func:`anneal_batch`, :func:`success_curve`.

``H(s) = A(s) H_driver + B(s) H_problem``, ``s = t / T``, from the driver's ground state. The
transverse-field driver is ``H_D = -c sum_i X_i`` with ``c = driver_scale`` (the paper:
``1/d``); the XY driver (``encoding="xy"``, exactly-k problems) is
``-c sum_{(i,j) in G} (X_i X_j + Y_i Y_j) / 2`` on the complete graph or a ring, evolved inside
the ``C(d, k)`` states of weight ``k``.

Methods: ``method="adaptive"`` (default) chooses the number of steps by step doubling until
the Richardson estimate of the final state's 2-norm error is below ``tol`` (the fidelity
error is at most ``tol**2``); ``method="fixed"`` runs ``round(T / dt)`` steps (the paper:
``dt = 0.01``). See :mod:`qfsel.quantum` for the integrators.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import _core
from .._checks import check_int, check_num_threads, check_positive_real, check_seed
from ..exceptions import QFSelWarning
from ._problems import DEFAULT_MAX_QUBITS, GRAPHS, Prepared, as_problems, prepare
from .schedules import Schedule, resolve_schedule

__all__ = ["AnnealResult", "BatchAnnealResult", "SuccessCurve", "anneal", "anneal_batch", "success_curve", "success_curve_batch"]

INTEGRATORS = ("strang", "suzuki4", "yoshida6")


@dataclass
class AnnealResult:
    """The end of one anneal.

    Attributes:
        success: probability weight on the whole ground manifold of the problem (for
            ``encoding="xy"``: of the weight-k states).
        overlap_lowest: the paper's measure, the weight on the single lowest-index ground state.
        ground_energy, ground_count: the problem's ground energy and manifold size.
        shot_energy: lowest energy among ``shots`` samples of the final state (the paper's
            readout of ``d^2`` shots); ``shot_success`` whether it is a ground state.
        shot_probability: ``1 - (1 - success)^shots``, the readout's success probability.
        steps, error_estimate, total_steps, converged: the integrator's record.
        state: the final amplitudes (``2^d``, or over ``basis`` for the XY encoding), when asked.
        basis: the full-space indices of the XY subspace states (``None`` otherwise).
    """

    T: float
    d: int
    success: float
    overlap_lowest: float
    ground_energy: float
    ground_count: int
    shot_energy: float
    shot_success: bool
    shots: int
    steps: int
    error_estimate: float
    total_steps: int
    converged: bool
    hamiltonian: str
    encoding: str
    state: np.ndarray | None = field(default=None, repr=False)
    basis: np.ndarray | None = field(default=None, repr=False)

    @property
    def shot_probability(self) -> float:
        return float(1.0 - (1.0 - min(self.success, 1.0)) ** self.shots) if self.shots else float("nan")

    @property
    def probabilities(self) -> np.ndarray:
        if self.state is None:
            raise ValueError("state: this result was computed with return_state=False")
        return np.abs(self.state) ** 2


@dataclass
class BatchAnnealResult:
    """Anneals of many problems (rows) at many times (columns); arrays of shape ``(P, len(Ts))``."""

    Ts: np.ndarray
    d: np.ndarray
    success: np.ndarray
    overlap_lowest: np.ndarray
    ground_count: np.ndarray
    shot_success: np.ndarray
    shot_energy: np.ndarray
    ground_energy: np.ndarray
    steps: np.ndarray
    error_estimate: np.ndarray
    converged: np.ndarray
    hamiltonian: str
    encoding: str


def _options(T: Any, method: str, dt: Any, integrator: Any, tol: Any) -> tuple[float, str, int | None, float]:
    T = check_positive_real("T", T, "a finite anneal time > 0")
    if method not in ("adaptive", "fixed"):
        raise ValueError(f"method: expected 'adaptive' or 'fixed', got {method!r}")
    if integrator is None:
        integrator = "suzuki4" if method == "adaptive" else "strang"
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator: expected one of {INTEGRATORS}, got {integrator!r}")
    tol = check_positive_real("tol", tol)
    # checked in both modes (the adaptive one does not use it), so a bad value never passes silently
    dt = check_positive_real("dt", dt, "a finite time step > 0")
    steps = None
    if method == "fixed":
        steps = max(1, int(round(T / dt)))
    return T, integrator, steps, tol


def _initial_steps(T: float) -> int:
    """First step count of the doubling (the same for every T, so a batch and a single anneal
    take the same steps; ~30 order-4 steps usually suffice in the adiabatic regime)."""
    return 8


def _schedule_arrays(sch: Schedule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.ascontiguousarray(sch.s), np.ascontiguousarray(sch.a), np.ascontiguousarray(sch.b)


def _encoding_of(problem: Any, encoding: str | None) -> str:
    return encoding if encoding is not None else "penalty"


def _check_graph(graph: Any) -> str:
    if graph not in GRAPHS:
        raise ValueError(f"graph: expected one of {GRAPHS}, got {graph!r}")
    return str(graph)


def anneal(
    problem: Any,
    T: float,
    *,
    schedule: Any = None,
    hamiltonian: str = "text",
    encoding: str | None = None,
    graph: str = "complete",
    driver_scale: float | None = None,
    method: str = "adaptive",
    dt: float = 0.01,
    integrator: str | None = None,
    tol: float = 1e-3,
    shots: int | None = None,
    seed: int | None = None,
    degeneracy_tol: float = 1e-9,
    return_state: bool = True,
    max_qubits: int = DEFAULT_MAX_QUBITS,
    num_threads: int | None = None,
) -> AnnealResult:
    """Anneal one problem for time ``T`` and read it out.

    Args:
        problem: a :class:`qfsel.FeatureSelectionProblem` (``d`` = its number of maps).
        T: anneal time (> 0); the paper used 10, 30, 50, 70, 100.
        schedule: ``"paper"`` (default, ``A = 1 - s``, ``B = s``), ``"dwave"``, a
            :class:`Schedule`, ``(A, B)`` callables or an ``(m, 3)`` table.
        hamiltonian: ``"text"`` (paper's formula), ``"script4"`` or ``"script8"``.
        encoding: for exactly-k problems ``"penalty"`` (default; transverse field) or ``"xy"``.
        graph: the XY mixer's graph, ``"complete"`` or ``"ring"``.
        driver_scale: ``c`` of the driver (default ``1/d``, the paper).
        method: ``"adaptive"`` (error-controlled) or ``"fixed"`` (``round(T/dt)`` steps).
        dt: the fixed step (the paper: 0.01).
        integrator: ``"strang"`` (order 2), ``"suzuki4"`` (4) or ``"yoshida6"`` (6); default
            ``suzuki4`` adaptive, ``strang`` fixed. (The XY encoding always uses its order-4
            Magnus integrator.)
        tol: adaptive mode: bound on the estimated 2-norm error of the final state.
        shots: samples of the readout (default ``d^2``, the paper; 0 for none).
        seed: seed of the shots.
        degeneracy_tol: energies within this of the minimum form the ground manifold.
        return_state: keep the final amplitudes in the result.
        max_qubits: refuse larger ``d`` (memory: ``40 x 2^d`` bytes).
        num_threads: threads (``None``: all cores).

    Raises:
        KeyboardInterrupt: on Ctrl-C, within one integrator stage plus 50 ms, even in the
            middle of a long anneal (nothing is returned).

    Example:
        >>> import numpy as np
        >>> from qfsel import FeatureSelectionProblem
        >>> from qfsel.quantum import anneal
        >>> p = FeatureSelectionProblem(np.array([1.0, 0.1]), np.array([[0, 0.9], [0.9, 0]]))
        >>> r = anneal(p, T=1000.0, seed=0)   # optimum: map 0 alone
        >>> bool(r.success > 0.99), r.ground_count, int(np.argmax(r.probabilities))
        (True, 1, 1)
    """
    probs = as_problems(problem)
    if len(probs) != 1:
        raise TypeError("problem: anneal takes one problem; use anneal_batch for many")
    p = probs[0]
    T, integ, steps, tol = _options(T, method, dt, integrator, tol)
    graph = _check_graph(graph)
    prep = prepare(p, hamiltonian, encoding, driver_scale, check_int("max_qubits", max_qubits, low=1, high=30))
    sch = resolve_schedule(schedule)
    n_shots = prep.d**2 if shots is None else check_int("shots", shots, low=0)
    seed = check_seed("seed", seed)
    threads = check_num_threads("num_threads", num_threads)
    if prep.k is None:
        dim = 2**prep.d
        basis = None
    else:
        basis = np.asarray(_core.qa_xy_basis(prep.d, prep.k), dtype=np.int64)
        dim = basis.size
    re, im = np.empty(dim), np.empty(dim)
    s, a, b = _schedule_arrays(sch)
    out = _core.qa_anneal_state(
        prep.q, prep.offset, prep.driver_scale, s, a, b, T, steps, integ, tol, _initial_steps(T), 1 << 22,
        prep.k, graph, max_qubits, float(check_positive_real("degeneracy_tol", degeneracy_tol)), n_shots, seed, re, im, threads,
    )
    state = (re + 1j * im) if return_state else None
    res = _result(out, T, prep, hamiltonian, _encoding_of(p, encoding), n_shots, state, basis)
    if not res.converged:
        warnings.warn(
            f"anneal: the error estimate {res.error_estimate:.2e} did not reach tol={tol} within the step limit", QFSelWarning, stacklevel=2
        )
    return res


def _result(out: tuple, T: float, prep: Prepared, hamiltonian: str, encoding: str, shots: int, state: Any, basis: Any) -> AnnealResult:
    w, low, cnt, e0, best, ok, steps, err, total, conv = out
    return AnnealResult(
        T=T, d=prep.d, success=float(w), overlap_lowest=float(low), ground_energy=float(e0), ground_count=int(cnt),
        shot_energy=float(best), shot_success=bool(ok), shots=shots, steps=int(steps), error_estimate=float(err),
        total_steps=int(total), converged=bool(conv), hamiltonian=hamiltonian, encoding=encoding, state=state, basis=basis,
    )


def _run_tasks(
    preps: Sequence[Prepared], tp: Sequence[int], tt: Sequence[float], ts: Sequence[int], fixed: Sequence[int | None],
    integ: str, tol: float, gs_tol: float, seed: int, graph: str, max_qubits: int, threads: int,
    s: np.ndarray, a: np.ndarray, b: np.ndarray,
) -> list:
    ks = {p.k for p in preps}
    if len(ks) > 1:
        raise ValueError(f"problem: expected the same k for every problem of the XY encoding, got {sorted(map(str, ks))}")
    k = ks.pop()
    return _core.qa_anneal_batch(
        [p.q for p in preps], [p.offset for p in preps], [p.driver_scale for p in preps], s, a, b,
        list(tp), [float(t) for t in tt], list(ts), list(fixed), integ, tol, _initial_steps(max(tt)), 1 << 22,
        float(check_positive_real("degeneracy_tol", gs_tol)), seed, k, graph, max_qubits, threads,
    )


def anneal_batch(
    problems: Any,
    Ts: Any,
    *,
    schedule: Any = None,
    hamiltonian: str = "text",
    encoding: str | None = None,
    graph: str = "complete",
    driver_scale: float | None = None,
    method: str = "adaptive",
    dt: float = 0.01,
    integrator: str | None = None,
    tol: float = 1e-3,
    shots: int | None = None,
    seed: int | None = None,
    degeneracy_tol: float = 1e-9,
    max_qubits: int = DEFAULT_MAX_QUBITS,
    num_threads: int | None = None,
) -> BatchAnnealResult:
    """Anneal every problem (a ProblemBatch or a list of problems of any sizes) at every
    time of ``Ts``, in parallel; options as :func:`anneal`. Shots of task ``(problem i, time
    j)`` draw from the stream of task ``i * len(Ts) + j``, so results do not depend on the
    thread count."""
    probs = as_problems(problems)
    t_list = np.atleast_1d(np.asarray(Ts, dtype=float))
    if t_list.ndim != 1 or t_list.size == 0:
        raise ValueError(f"Ts: expected one or more anneal times, got shape {np.shape(Ts)}")
    opts = [_options(float(t), method, dt, integrator, tol) for t in t_list]
    integ, tol_v = opts[0][1], opts[0][3]
    graph = _check_graph(graph)
    mq = check_int("max_qubits", max_qubits, low=1, high=30)
    preps = [prepare(p, hamiltonian, encoding, driver_scale, mq) for p in probs]
    sch = resolve_schedule(schedule)
    seed = check_seed("seed", seed)
    threads = check_num_threads("num_threads", num_threads)
    tp, tt, ts, fx = [], [], [], []
    for i, prep in enumerate(preps):
        n_shots = prep.d**2 if shots is None else check_int("shots", shots, low=0)
        for j, t in enumerate(t_list):
            tp.append(i)
            tt.append(float(t))
            ts.append(n_shots)
            fx.append(opts[j][2])
    s, a, b = _schedule_arrays(sch)
    out = _run_tasks(preps, tp, tt, ts, fx, integ, tol_v, degeneracy_tol, seed, graph, mq, threads, s, a, b)
    shape = (len(preps), t_list.size)
    cols = list(zip(*out))
    arr = lambda i, dt_: np.asarray(cols[i], dtype=dt_).reshape(shape)  # noqa: E731
    res = BatchAnnealResult(
        Ts=t_list, d=np.array([p.d for p in preps]), success=arr(0, float), overlap_lowest=arr(1, float),
        ground_count=arr(2, int), ground_energy=arr(3, float), shot_energy=arr(4, float), shot_success=arr(5, bool),
        steps=arr(6, int), error_estimate=arr(7, float), converged=arr(9, bool), hamiltonian=hamiltonian,
        encoding=_encoding_of(None, encoding),
    )
    if not res.converged.all():
        warnings.warn(f"anneal_batch: {int((~res.converged).sum())} anneals did not reach tol={tol}", QFSelWarning, stacklevel=2)
    return res


@dataclass
class SuccessCurve:
    """Success probability against anneal time, with the Landau-Zener comparison.

    ``success[j]`` is the ground-manifold weight at ``Ts[j]``; ``lz_prediction`` is
    ``1 - exp(-lz_c T delta_min^2)`` with ``lz_c`` fitted (least squares on
    ``-log(1 - P) = c T delta_min^2``) and ``delta_min`` the degeneracy-aware minimum gap.
    """

    Ts: np.ndarray
    success: np.ndarray
    overlap_lowest: np.ndarray
    shot_success: np.ndarray
    shot_probability: np.ndarray
    delta_min: float
    s_star: float
    lz_c: float
    lz_prediction: np.ndarray


def _lz_fit(Ts: np.ndarray, P: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    x = Ts * delta**2
    y = -np.log(np.clip(1.0 - P, 1e-12, 1.0))
    c = float((x @ y) / (x @ x)) if np.any(x > 0) else float("nan")
    return c, 1.0 - np.exp(-c * x)


def success_curve(problem: Any, Ts: Any = (10, 30, 50, 70, 100), *, landau_zener: bool = True, **kwargs: Any) -> SuccessCurve:
    """Success probability of one problem at each anneal time ``Ts`` (options of
    :func:`anneal`), the paper's ``d^2``-shot readout, and the Landau-Zener comparison
    (computes the minimum gap; ``landau_zener=False`` skips it).

    Example:
        >>> import numpy as np
        >>> from qfsel import FeatureSelectionProblem
        >>> from qfsel.quantum import success_curve
        >>> p = FeatureSelectionProblem(np.array([1.0, 0.6, 0.3]), np.array([[0, .8, .2], [.8, 0, .5], [.2, .5, 0]]))
        >>> c = success_curve(p, [1, 10, 100], seed=1)
        >>> bool(c.success[-1] > c.success[0])
        True
    """
    res = anneal_batch(as_problems(problem)[:1], Ts, **kwargs)
    return _curve(res, 0, problem, landau_zener, kwargs)


def _curve(res: BatchAnnealResult, i: int, problem: Any, landau_zener: bool, kwargs: dict) -> SuccessCurve:
    P = res.success[i]
    shots = np.asarray([res.d[i] ** 2 if kwargs.get("shots") is None else kwargs["shots"]] * len(res.Ts))
    shot_p = 1.0 - (1.0 - np.clip(P, 0, 1)) ** shots
    delta, s_star, c, pred = float("nan"), float("nan"), float("nan"), np.full(len(res.Ts), np.nan)
    if landau_zener:
        from .spectrum import min_gap

        keys = ("schedule", "hamiltonian", "encoding", "graph", "driver_scale", "max_qubits", "num_threads")
        g = min_gap(as_problems(problem)[0], **{k: v for k, v in kwargs.items() if k in keys})
        delta, s_star = g.delta_min, g.s_star
        c, pred = _lz_fit(res.Ts, P, delta)
    return SuccessCurve(
        Ts=res.Ts, success=P, overlap_lowest=res.overlap_lowest[i], shot_success=res.shot_success[i], shot_probability=shot_p,
        delta_min=delta, s_star=s_star, lz_c=c, lz_prediction=pred,
    )


def success_curve_batch(problems: Any, Ts: Any = (10, 30, 50, 70, 100), *, landau_zener: bool = False, **kwargs: Any) -> list[SuccessCurve]:
    """:func:`success_curve` of every problem, the anneals in one parallel call."""
    probs = as_problems(problems)
    res = anneal_batch(probs, Ts, **kwargs)
    return [_curve(res, i, probs[i], landau_zener, kwargs) for i in range(len(probs))]

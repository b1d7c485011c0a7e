"""Lowest levels of ``H(s)`` and the minimum gap, with degenerate optima handled.

The levels come from the matrix-free Lanczos of the Rust core (thick-restarted, partially
reorthogonalised, warm-started from the previous ``s``; two levels from one Krylov space, or
one level at a time with locking for more levels and near-degenerate pairs; a grid of a state
up to 2^17 amplitudes in up to 8 segments run in parallel, fixed by the grid so results do not
depend on threads; see docs/quantum.md).
Ctrl-C is checked before every ``s`` point.

**Gap with degeneracy.** When the problem's ground manifold has ``m`` states, the levels
``E_0(s) .. E_{m-1}(s)`` all end in it, and the gap that limits the anneal is
``Delta(s) = E_m(s) - E_0(s)``, to the first level that does not end in the ground manifold.
:func:`min_gap` reports its minimum ``delta_min`` and location ``s_star`` (refined around the
grid minimum), and beside it the paper's plain ``E_1 - E_0`` (which is 0 at ``s = 1`` for a
degenerate optimum). The levels are counted by index, which assumes that levels ending in the
ground manifold do not cross the others (true without symmetries; a symmetric, constructed
problem can have crossings between symmetry sectors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from .._checks import as_array, check_int, check_num_threads, check_positive_real
from ._problems import DEFAULT_MAX_QUBITS, GRAPHS, as_problems, energies, prepare
from .schedules import resolve_schedule

__all__ = ["Spectrum", "GapResult", "spectrum", "spectrum_batch", "min_gap", "min_gap_batch", "ground_count"]

MAX_LEVELS = 64


@dataclass
class Spectrum:
    """``energies[i, l]``: level ``l`` of ``H(s_i)``; ``ground_count``: size ``m`` of the final
    ground manifold; ``matvecs``: operator applications used."""

    s: np.ndarray
    energies: np.ndarray
    ground_count: int
    matvecs: int
    converged: bool
    hamiltonian: str
    encoding: str

    @property
    def gap(self) -> np.ndarray:
        """``E_m(s) - E_0(s)`` (degeneracy-aware)."""
        return self.energies[:, self.ground_count] - self.energies[:, 0]

    @property
    def plain_gap(self) -> np.ndarray:
        """``E_1(s) - E_0(s)`` (the paper's)."""
        return self.energies[:, 1] - self.energies[:, 0]


@dataclass
class GapResult:
    """``delta_min`` at ``s_star`` (degeneracy-aware), the paper's ``plain_delta_min`` at
    ``plain_s_star``, the ground manifold size and the spectrum on the grid."""

    delta_min: float
    s_star: float
    plain_delta_min: float
    plain_s_star: float
    ground_count: int
    spectrum: Spectrum


def ground_count(problem: Any, hamiltonian: str = "text", encoding: str | None = None, degeneracy_tol: float = 1e-9) -> int:
    """Size of the problem's ground manifold (in the weight-k subspace for the XY encoding)."""
    p = as_problems(problem)[0]
    xy = encoding == "xy"
    e = energies(p, hamiltonian, include_penalty=(p.k is not None and not xy))
    if xy:
        assert p.k is not None
        e = e[np.asarray(_core.qa_xy_basis(p.num_variables, p.k), dtype=np.int64)]
    return int(np.count_nonzero(e <= e.min() + degeneracy_tol))


def _grid(s_points: Any) -> np.ndarray:
    if isinstance(s_points, (int, np.integer)) and not isinstance(s_points, bool):
        n = check_int("s_points", s_points, low=2)
        return np.linspace(0.0, 1.0, n)
    s = as_array("s_points", s_points, ndim=1)
    if s.size == 0 or np.any(~np.isfinite(s)) or np.any(s < 0) or np.any(s > 1):
        raise ValueError(f"s_points: expected a number of points >= 2 or values in [0, 1], got {s_points!r}")
    return s


def _levels_of(problems: list, levels: Any, hamiltonian: str, encoding: str | None, tol: float) -> tuple[int, list[int]]:
    counts = [ground_count(p, hamiltonian, encoding, tol) for p in problems]
    if levels is None:
        need = max(2, max(counts) + 1)
        if need > MAX_LEVELS:
            raise ValueError(
                f"levels: the ground manifold has {max(counts)} states, so the gap needs {need} levels, over the limit of "
                f"{MAX_LEVELS}; pass levels= explicitly"
            )
        return need, counts
    return check_int("levels", levels, low=1, high=MAX_LEVELS), counts


def spectrum_batch(
    problems: Any,
    *,
    schedule: Any = None,
    s_points: Any = 101,
    levels: int | None = None,
    hamiltonian: str = "text",
    encoding: str | None = None,
    graph: str = "complete",
    driver_scale: float | None = None,
    tol: float = 1e-9,
    max_krylov: int = 40,
    degeneracy_tol: float = 1e-9,
    max_qubits: int = DEFAULT_MAX_QUBITS,
    num_threads: int | None = None,
) -> list[Spectrum]:
    """:func:`spectrum` of many problems (any sizes), in parallel over problems."""
    probs = as_problems(problems)
    if graph not in GRAPHS:
        raise ValueError(f"graph: expected one of {GRAPHS}, got {graph!r}")
    s = _grid(s_points)
    sch = resolve_schedule(schedule)
    tol = check_positive_real("tol", tol)
    mq = check_int("max_qubits", max_qubits, low=1, high=30)
    preps = [prepare(p, hamiltonian, encoding, driver_scale, mq) for p in probs]
    nlev, counts = _levels_of(probs, levels, hamiltonian, encoding, degeneracy_tol)
    dims = [2**p.d if p.k is None else len(_core.qa_xy_basis(p.d, p.k)) for p in preps]
    nlev_eff = min(nlev, min(dims))
    # Krylov basis memory: at most ~256 MiB of vectors for the largest problem
    krylov = max(8, min(check_int("max_krylov", max_krylov, low=4), 2**25 // max(dims)))
    out = np.empty((len(preps), s.size, nlev_eff))
    ks = {p.k for p in preps}
    if len(ks) > 1:
        raise ValueError("problem: expected the same k for every problem of the XY encoding")
    stats = _core.qa_spectrum_batch(
        [p.q for p in preps], [p.offset for p in preps], [p.driver_scale for p in preps],
        [float(x) for x in sch.A(s)], [float(x) for x in sch.B(s)], nlev_eff, tol, krylov,
        ks.pop(), graph, mq, out, check_num_threads("num_threads", num_threads),
    )
    enc = encoding or "penalty"
    return [Spectrum(s, out[i], counts[i], int(st[0]), bool(st[1]), hamiltonian, enc) for i, st in enumerate(stats)]


def spectrum(problem: Any, *, schedule: Any = None, s_points: Any = 101, levels: int | None = None, **kwargs: Any) -> Spectrum:
    """The lowest levels of ``H(s)`` on a grid of ``s``.

    Args:
        problem: a :class:`qfsel.FeatureSelectionProblem`.
        schedule: as in :func:`qfsel.quantum.anneal`.
        s_points: the number of equally spaced points in [0, 1] (default 101) or the points.
        levels: how many levels (default: ground manifold size + 1, at least 2).
        **kwargs: ``hamiltonian``, ``encoding``, ``graph``, ``driver_scale``, ``tol``
            (Lanczos residual, relative), ``max_krylov``, ``degeneracy_tol``, ``max_qubits``,
            ``num_threads``.

    Example:
        >>> import numpy as np
        >>> from qfsel import FeatureSelectionProblem
        >>> from qfsel.quantum import spectrum
        >>> p = FeatureSelectionProblem(np.array([1.0, 0.5]), np.array([[0, 0.3], [0.3, 0]]))
        >>> sp = spectrum(p, s_points=5)
        >>> sp.energies.shape, round(float(sp.energies[0, 0]), 6)   # s=0: -(1/d) sum X has E0 = -1
        ((5, 2), -1.0)
    """
    return spectrum_batch(as_problems(problem)[:1], schedule=schedule, s_points=s_points, levels=levels, **kwargs)[0]


def _refine(problem: Any, s_grid: np.ndarray, gap: np.ndarray, level: int, kwargs: dict, rounds: int = 2) -> tuple[float, float]:
    i = int(np.argmin(gap))
    best_s, best = float(s_grid[i]), float(gap[i])
    lo, hi = float(s_grid[max(i - 1, 0)]), float(s_grid[min(i + 1, len(s_grid) - 1)])
    for _ in range(rounds):
        if hi <= lo:
            break
        pts = np.linspace(lo, hi, 11)
        sp = spectrum_batch([problem], s_points=pts, **kwargs)[0]
        g = sp.energies[:, level] - sp.energies[:, 0]
        j = int(np.argmin(g))
        if g[j] < best:
            best, best_s = float(g[j]), float(pts[j])
        lo, hi = float(pts[max(j - 1, 0)]), float(pts[min(j + 1, 10)])
    return best, best_s


def min_gap(problem: Any, *, s_points: Any = 101, refine: bool = True, **kwargs: Any) -> GapResult:
    """The minimum gap of ``H(s)`` with degenerate optima handled (see the module text).

    Returns ``delta_min`` (to the first level not ending in the ground manifold) and its
    ``s_star``, refined by two rounds of 11 points around the grid minimum, and the paper's
    plain ``E1 - E0`` minimum beside it.

    Example:
        >>> import numpy as np
        >>> from qfsel import FeatureSelectionProblem
        >>> from qfsel.quantum import min_gap
        >>> # two independent maps: each qubit's gap is sqrt((1-s)^2 + (0.7 s)^2), least at s = 2/2.98
        >>> p = FeatureSelectionProblem(np.array([1.0, 1.0]), np.zeros((2, 2)))
        >>> g = min_gap(p)
        >>> g.ground_count, round(g.delta_min, 4), round(g.s_star, 3)
        (1, 0.5735, 0.671)
    """
    p = as_problems(problem)[0]
    sp = spectrum_batch([p], s_points=s_points, **kwargs)[0]
    return _gap_from(p, sp, refine, kwargs)


def _gap_from(p: Any, sp: Spectrum, refine: bool, kwargs: dict) -> GapResult:
    m = sp.ground_count
    gap, plain = sp.gap, sp.plain_gap
    if refine:
        kw = {k: v for k, v in kwargs.items() if k != "levels"}
        kw["levels"] = sp.energies.shape[1]
        d, s_star = _refine(p, sp.s, gap, m, kw)
        pd, ps = _refine(p, sp.s, plain, 1, kw) if m > 1 else (d, s_star)
    else:
        i, j = int(np.argmin(gap)), int(np.argmin(plain))
        d, s_star, pd, ps = float(gap[i]), float(sp.s[i]), float(plain[j]), float(sp.s[j])
    return GapResult(d, s_star, pd, ps, m, sp)


def min_gap_batch(problems: Any, *, s_points: Any = 101, refine: bool = True, **kwargs: Any) -> list[GapResult]:
    """:func:`min_gap` of many problems; the grid spectra in one parallel call."""
    probs = as_problems(problems)
    sps = spectrum_batch(probs, s_points=s_points, **kwargs)
    return [_gap_from(p, sp, refine, kwargs) for p, sp in zip(probs, sps)]

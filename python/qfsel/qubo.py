"""The feature-selection problem and its QUBO, one instance or a batch.

The energy of arXiv 2604.25649 (the method qfsel reproduces) for choosing a
subset ``x in {0,1}^K`` of feature maps is

.. math::

    E(x) = -\\beta \\sum_i h_i x_i + (1-\\beta) \\sum_{i<j} J_{ij} x_i x_j

with ``h`` the per-map relevance, ``J`` the symmetric redundancy (zero
diagonal) and ``beta`` in [0, 1] (the paper: 0.7). Without ``k`` the number of
selected maps is whatever minimises ``E`` (the paper). With ``k`` exactly ``k``
maps are asked for; solvers that take a constraint (the exact search, the
swap-move samplers, CQM solvers) use it directly, unconstrained ones get the
penalty form ``E(x) + lambda (sum_i x_i - k)^2``.

QUBO convention (``.qubo()``): a dense upper-triangular ``Q`` (lower triangle
zero) and an offset ``c`` with ``E(x) = sum_i Q_ii x_i + sum_{i<j} Q_ij x_i x_j + c``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _core
from ._checks import (
    as_array,
    check_finite,
    check_int,
    check_symmetric,
    check_unit_interval,
)
from .exceptions import InfeasibleError

__all__ = ["FeatureSelectionProblem", "ProblemBatch", "bisect_beta"]


_SYMMETRY_RTOL = 1e-9


def _validate(
    relevance: Any, redundancy: Any, batched: bool, copy: bool = True, penalty_beta: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Checked float64 arrays ``(B, K)``, ``(B, K, K)`` and, with ``penalty_beta``, the
    safe penalties ``(B,)`` -- all from one parallel pass in Rust."""
    if batched:
        h = as_array("relevance", relevance, ndim=2)
        b, k = h.shape
        j = as_array("redundancy", redundancy, ndim=3)
        if j.shape != (b, k, k):
            raise ValueError(f"redundancy: expected shape ({b}, {k}, {k}) to match relevance {h.shape}, got shape {j.shape}")
    else:
        h = as_array("relevance", relevance, ndim=1)
        (k,) = h.shape
        j = as_array("redundancy", redundancy, ndim=2)
        if j.shape[0] != j.shape[1]:
            raise ValueError(f"redundancy: expected a square (K, K) matrix, got shape {j.shape}")
        if j.shape != (k, k):
            raise ValueError(f"redundancy: expected shape ({k}, {k}) to match relevance of length {k}, got shape {j.shape}")
        h, j = h[None], j[None]
    lam = np.empty(h.shape[0])
    # With copy, the Rust pass writes the private copies while it checks (one pass over memory).
    h_copy, j_copy = (np.empty_like(h), np.empty_like(j)) if copy else (None, None)
    fault = _core.fs_check_batch(h, j, _SYMMETRY_RTOL, penalty_beta, lam, h_copy, j_copy, 0)
    if fault is not None:
        kind, index, value, other = fault
        where = tuple(index) if batched else tuple(index[1:])
        messages = {
            "relevance_not_finite": f"relevance: expected finite values, got {value!r} at index {where}",
            "redundancy_not_finite": f"redundancy: expected finite values, got {value!r} at index {where}",
            "not_symmetric": f"redundancy: expected a symmetric matrix, got {value!r} at {where} but {other!r} at its transpose",
            "nonzero_diagonal": f"redundancy: expected a zero diagonal, got {value!r} at index {where}",
        }
        raise ValueError(messages[kind])
    if h_copy is not None and j_copy is not None:
        h, j = h_copy, j_copy
    return h, j, (lam if penalty_beta is not None else None)


def _check_k(k: Any, num_variables: int) -> int | None:
    if k is None:
        return None
    k = check_int("k", k)
    if k <= 0 or k > num_variables:
        raise ValueError(f"k: expected an integer with 1 <= k <= K = {num_variables}, got {k}")
    return k


def _states_array(name: str, x: Any, num_variables: int, leading: tuple[int, ...] = ()) -> np.ndarray:
    """0/1 states of shape (*leading, M, K) or (*leading, K) as uint8."""
    arr = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected 0/1 values, got {arr.dtype}")
    if arr.shape[-1:] != (num_variables,) or arr.shape[: len(leading)] != leading:
        want = "(" + ", ".join(str(d) for d in leading) + (", " if leading else "") + f"[M,] {num_variables})"
        raise ValueError(f"{name}: expected shape {want}, got shape {arr.shape}")
    # For uint8 (the kernels' own states), 0/1 is max <= 1: one reduction.
    if arr.size and not (arr.max() <= 1 if arr.dtype == np.uint8 else np.all((arr == 0) | (arr == 1))):
        bad = arr[(arr != 0) & (arr != 1)].flat[0].item()
        raise ValueError(f"{name}: expected binary values 0/1, got {bad!r}")
    return np.ascontiguousarray(arr, dtype=np.uint8)


class ProblemBatch:
    """``B`` feature-selection problems of the same size ``K``, built and solved together.

    This is the hot path of dataset-scale explanation: the QUBOs of all
    problems are built in one Rust call, and every solver takes the batch at
    once.

    Args:
        relevance: ``(B, K)`` per-map relevance ``h`` of each problem.
        redundancy: ``(B, K, K)`` symmetric redundancy ``J`` with zero diagonal.
        beta: trade-off in [0, 1] between relevance and redundancy (paper: 0.7).
        k: ask for exactly ``k`` selected maps; ``None`` (paper) lets the energy decide.
        penalty: with ``k``, the weight ``lambda`` of ``(sum x - k)^2`` in the
            penalty form: a number, a ``(B,)`` array, or ``None`` for the safe
            automatic value of :class:`FeatureSelectionProblem`.
        copy: keep private copies of the arrays (default). ``copy=False`` uses
            float64 C-contiguous inputs in place, the fastest path for large
            batches; the caller must then not modify them.

    Only the upper triangle of each ``J`` enters the QUBO; the lower one must
    equal it up to a relative ``1e-9``.

    Example:
        >>> import numpy as np
        >>> from qfsel import ProblemBatch, solve
        >>> rng = np.random.default_rng(0)
        >>> h = rng.uniform(0.1, 1.0, size=(4, 6))
        >>> J = np.abs(rng.normal(size=(4, 6, 6))); J = (J + J.transpose(0, 2, 1)) / 2
        >>> J[:, range(6), range(6)] = 0
        >>> batch = ProblemBatch(h, J, beta=0.7, k=2)
        >>> sol = solve(batch, sampler="exact")
        >>> sol.num_selected.tolist()
        [2, 2, 2, 2]
    """

    def __init__(
        self, relevance: Any, redundancy: Any, beta: float = 0.7, k: int | None = None, penalty: Any = None, *, copy: bool = True
    ):
        self._init(relevance, redundancy, True, copy, beta, k, penalty)

    def _init(self, relevance: Any, redundancy: Any, batched: bool, copy: bool, beta: Any, k: Any, penalty: Any) -> None:
        self.beta = check_unit_interval("beta", beta)
        auto = k is not None and penalty is None
        h, j, lam = _validate(relevance, redundancy, batched, copy, self.beta if auto else None)
        self.relevance = h
        self.redundancy = j
        self.k = _check_k(k, h.shape[1])
        b = h.shape[0]
        if self.k is None:
            if penalty is not None:
                raise ValueError("penalty: only meaningful together with k; got a penalty but k=None")
            self.penalty: np.ndarray | None = None
        elif penalty is None:
            assert lam is not None
            if not np.all(np.isfinite(lam * (1.0 + float(self.k) ** 2))):
                worst = int(np.argmax(~np.isfinite(lam * (1.0 + float(self.k) ** 2))))
                raise ValueError(
                    f"relevance, redundancy: the automatic cardinality penalty of problem {worst} overflows float64 "
                    f"(largest |h| {float(np.abs(h[worst]).max()):.3g}, largest |J| {float(np.abs(j[worst]).max()):.3g}); "
                    "rescale the problem"
                )
            self.penalty = lam
        else:
            lam = as_array("penalty", penalty, ndim=(0, 1))
            lam = np.broadcast_to(lam, (b,)).copy() if lam.ndim == 0 else lam
            if lam.shape != (b,):
                raise ValueError(f"penalty: expected a number or shape ({b},), got shape {lam.shape}")
            check_finite("penalty", lam)
            if np.any(lam < 0):
                raise ValueError(f"penalty: expected non-negative values, got {float(lam.min())!r}")
            self.penalty = np.ascontiguousarray(lam)

    @classmethod
    def from_problems(cls, problems: "list[FeatureSelectionProblem]") -> "ProblemBatch":
        """Stack problems of equal ``K``, ``beta`` and ``k`` into one batch."""
        if not problems:
            raise ValueError("problems: expected at least one FeatureSelectionProblem, got an empty list")
        first = problems[0]
        for i, p in enumerate(problems):
            if not isinstance(p, FeatureSelectionProblem):
                raise TypeError(f"problems[{i}]: expected a FeatureSelectionProblem, got {type(p).__name__}")
            if (p.num_variables, p.beta, p.k) != (first.num_variables, first.beta, first.k):
                raise ValueError(
                    f"problems[{i}]: expected K={first.num_variables}, beta={first.beta}, k={first.k} like problems[0], "
                    f"got K={p.num_variables}, beta={p.beta}, k={p.k}"
                )
        pen = None if first.k is None else np.array([p.penalty for p in problems])
        return cls(np.stack([p.relevance for p in problems]), np.stack([p.redundancy for p in problems]), first.beta, first.k, pen)

    @classmethod
    def _trusted(cls, relevance: np.ndarray, redundancy: np.ndarray, beta: float, k: int | None = None) -> "ProblemBatch":
        """A batch of arrays qfsel computed itself (QFS-CAM's scoring), for the dataset pipeline.

        The caller guarantees what :meth:`__init__` checks (finite values, symmetric ``J`` with a
        zero diagonal, ``0 <= beta <= 1``, ``1 <= k <= K``) and hands over the arrays (no copy).
        Only O(1) checks run here: no pass over the data. With ``k`` the automatic penalty is
        computed on first use (the swap-move and exact solvers never ask for it).
        """
        if (relevance.dtype != np.float64 or redundancy.dtype != np.float64 or relevance.ndim != 2
                or redundancy.shape != relevance.shape + relevance.shape[1:]
                or not (relevance.flags.c_contiguous and redundancy.flags.c_contiguous)):
            raise ValueError(
                "ProblemBatch._trusted: expected C-contiguous float64 arrays (B, K) and (B, K, K), got "
                f"{relevance.dtype} {relevance.shape} and {redundancy.dtype} {redundancy.shape}"
            )
        batch = _TrustedProblemBatch.__new__(_TrustedProblemBatch)
        batch.relevance, batch.redundancy, batch.beta, batch.k = relevance, redundancy, float(beta), k
        batch._lazy_penalty = None
        batch._penalty_ready = k is None
        return batch

    # -- shape ---------------------------------------------------------------
    @property
    def num_problems(self) -> int:
        return int(self.relevance.shape[0])

    @property
    def num_variables(self) -> int:
        return int(self.relevance.shape[1])

    def __len__(self) -> int:
        return self.num_problems

    def __getitem__(self, i: int) -> "FeatureSelectionProblem":
        i = check_int("index", i)
        if not -self.num_problems <= i < self.num_problems:
            # IndexError (not ValueError): iteration, list(batch) and numpy rely on it to stop.
            raise IndexError(f"index: expected an integer in [{-self.num_problems}, {self.num_problems - 1}], got {i}")
        pen = None if self.penalty is None else float(self.penalty[i])
        return FeatureSelectionProblem(self.relevance[i], self.redundancy[i], self.beta, self.k, pen)

    def __repr__(self) -> str:
        return f"ProblemBatch(B={self.num_problems}, K={self.num_variables}, beta={self.beta}, k={self.k})"

    # -- QUBO ----------------------------------------------------------------
    def qubo(self, include_penalty: bool | None = None, num_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Upper-triangular QUBOs ``(B, K, K)`` and offsets ``(B,)``, built in one Rust call.

        Args:
            include_penalty: add ``lambda (sum x - k)^2``; default: when ``k`` is set.
            num_threads: threads for the build (``None``: all cores).
        """
        use_pen = self.k is not None if include_penalty is None else bool(include_penalty)
        if use_pen and self.k is None:
            raise ValueError("include_penalty: there is no penalty without k; got include_penalty=True and k=None")
        b, n = self.relevance.shape
        q = np.empty((b, n, n))
        off = np.empty(b)
        pen = self.penalty if use_pen and self.penalty is not None else np.zeros(b)
        _core.fs_qubo_batch(self.relevance, self.redundancy, self.beta, self.k if use_pen else None, pen, q, off, _threads(num_threads))
        return q, off

    def energy(self, states: Any, include_penalty: bool = False) -> np.ndarray:
        """Objective energy ``E(x)`` (without penalty unless asked) of each problem's state(s).

        ``states`` is ``(B, K)`` (one state per problem, returns ``(B,)``) or
        ``(B, M, K)`` (returns ``(B, M)``).
        """
        x = _states_array("states", states, self.num_variables, (self.num_problems,))
        if x.ndim not in (2, 3):
            raise ValueError(f"states: expected shape (B, K) or (B, M, K), got shape {x.shape}")
        return self._energies(x, include_penalty)

    def _energies(self, x: np.ndarray, include_penalty: bool = False) -> np.ndarray:
        """:meth:`energy` of checked states: C-contiguous uint8 0/1 of shape ``(B, K)`` or ``(B, M, K)``."""
        single = x.ndim == 2
        if single:
            x = x[:, None, :]
        out = np.empty(x.shape[:2])
        _core.fs_energies_batch(self.relevance, self.redundancy, self.beta, x, out, 0)
        if include_penalty and self.k is not None:
            assert self.penalty is not None
            out += self.penalty[:, None] * (x.sum(axis=-1, dtype=np.int64) - self.k) ** 2
        return out[:, 0] if single else out

    def is_feasible(self, states: Any) -> np.ndarray:
        """Whether each state has exactly ``k`` ones (always true without ``k``)."""
        x = _states_array("states", states, self.num_variables, (self.num_problems,))
        if self.k is None:
            return np.ones(x.shape[:-1], dtype=bool)
        return x.sum(axis=-1) == self.k

    def to_ising(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spin form of the (penalty) QUBOs, ``x = (1 + s) / 2``.

        Returns ``h (B, K)``, upper-triangular ``J (B, K, K)`` and ``offset (B,)``
        with ``E = sum_i h_i s_i + sum_{i<j} J_ij s_i s_j + offset``.
        """
        q, off = self.qubo()
        diag = np.diagonal(q, axis1=1, axis2=2).copy()
        upper = np.triu(q, 1)
        couple = upper / 4.0
        h = diag / 2.0 + (upper.sum(axis=2) + upper.sum(axis=1)) / 4.0
        offset = off + diag.sum(axis=1) / 2.0 + upper.sum(axis=(1, 2)) / 4.0
        return h, couple, offset

    def to_bqms(self) -> list:
        """One ``dimod.BinaryQuadraticModel`` per problem (penalty form when ``k`` is set)."""
        return [self[i].to_bqm() for i in range(self.num_problems)]


class _TrustedProblemBatch(ProblemBatch):
    """:meth:`ProblemBatch._trusted`'s batches: the automatic penalty is computed when first read."""

    _lazy_penalty: np.ndarray | None
    _penalty_ready: bool

    @property
    def penalty(self) -> np.ndarray | None:
        if not self._penalty_ready:
            lam = np.empty(self.relevance.shape[0])
            _core.fs_check_batch(self.relevance, self.redundancy, _SYMMETRY_RTOL, self.beta, lam, None, None, 0)
            self._lazy_penalty, self._penalty_ready = lam, True
        return self._lazy_penalty

    @penalty.setter
    def penalty(self, value: np.ndarray | None) -> None:
        self._lazy_penalty, self._penalty_ready = value, True


def _threads(num_threads: int | None) -> int:
    from ._checks import check_num_threads

    return check_num_threads("num_threads", num_threads)


class FeatureSelectionProblem:
    """The feature-selection QUBO of one prediction (arXiv 2604.25649).

    Minimise ``E(x) = -beta sum_i h_i x_i + (1-beta) sum_{i<j} J_ij x_i x_j``
    over ``x in {0,1}^K``, optionally with exactly ``k`` ones.

    Args:
        relevance: ``(K,)`` relevance ``h`` (the paper: GradCAM weight / largest weight).
        redundancy: ``(K, K)`` symmetric redundancy ``J`` with zero diagonal
            (the paper: absolute cosine similarity of the maps).
        beta: trade-off in [0, 1] (the paper: 0.7).
        k: exactly ``k`` maps; ``None`` lets the energy choose how many.
        penalty: the weight ``lambda`` of ``(sum x - k)^2`` in the penalty form
            used by unconstrained solvers. ``None`` chooses the smallest value
            that is provably safe: flipping one variable changes ``E`` by at most
            ``U_add = max_i(-beta h_i + (1-beta) sum_j max(J_ij, 0))`` when adding
            and ``U_rem = max_i(beta h_i + (1-beta) sum_j max(-J_ij, 0))`` when
            removing. A state with ``m != k`` ones reaches a feasible state in
            ``|m-k|`` such flips, lowering ``E`` by at most ``|m-k| U`` with
            ``U = max(U_add, U_rem, 0)``, while its penalty is
            ``lambda (m-k)^2 >= lambda |m-k|``. Hence every
            ``lambda > U`` makes each infeasible state strictly worse than some
            feasible one, so every minimiser of the penalty QUBO has exactly
            ``k`` ones; qfsel uses ``lambda = U (1 + 1e-6) + 1e-6``.

    Example:
        >>> import numpy as np
        >>> from qfsel import FeatureSelectionProblem
        >>> h = np.array([1.0, 0.8, 0.3])
        >>> J = np.array([[0, .9, .1], [.9, 0, .2], [.1, .2, 0]])
        >>> p = FeatureSelectionProblem(h, J, beta=0.7)
        >>> round(float(p.energy([1, 0, 1])), 4)   # -0.7*(1+0.3) + 0.3*0.1
        -0.88
    """

    def __init__(self, relevance: Any, redundancy: Any, beta: float = 0.7, k: int | None = None, penalty: float | None = None):
        if penalty is not None:
            from ._checks import describe

            if isinstance(penalty, bool) or not isinstance(penalty, (int, float, np.integer, np.floating)):
                raise TypeError(f"penalty: expected a non-negative real number or None, got {describe(penalty)}")
        self._batch = ProblemBatch.__new__(ProblemBatch)
        self._batch._init(relevance, redundancy, False, True, beta, k, penalty)

    @property
    def relevance(self) -> np.ndarray:
        return self._batch.relevance[0]

    @property
    def redundancy(self) -> np.ndarray:
        return self._batch.redundancy[0]

    @property
    def beta(self) -> float:
        return self._batch.beta

    @property
    def k(self) -> int | None:
        return self._batch.k

    @property
    def penalty(self) -> float | None:
        """``lambda`` of the penalty form (``None`` without ``k``)."""
        return None if self._batch.penalty is None else float(self._batch.penalty[0])

    @property
    def num_variables(self) -> int:
        return self._batch.num_variables

    def as_batch(self) -> ProblemBatch:
        """This problem as a batch of one (shares memory)."""
        return self._batch

    def __repr__(self) -> str:
        return f"FeatureSelectionProblem(K={self.num_variables}, beta={self.beta}, k={self.k})"

    def qubo(self, include_penalty: bool | None = None) -> tuple[np.ndarray, float]:
        """Dense upper-triangular ``Q (K, K)`` and offset (penalty form when ``k`` is set)."""
        q, off = self._batch.qubo(include_penalty)
        return q[0], float(off[0])

    def energy(self, x: Any, include_penalty: bool = False) -> Any:
        """``E(x)`` of one state ``(K,)`` (a float) or many ``(M, K)`` (an array)."""
        arr = _states_array("x", x, self.num_variables)
        if arr.ndim == 1:
            return float(self._batch.energy(arr[None], include_penalty)[0])
        if arr.ndim != 2:
            raise ValueError(f"x: expected shape (K,) or (M, K), got shape {arr.shape}")
        return self._batch.energy(arr[None], include_penalty)[0]

    def is_feasible(self, x: Any) -> Any:
        """Whether ``x`` (``(K,)`` or ``(M, K)``) has exactly ``k`` ones."""
        arr = _states_array("x", x, self.num_variables)
        res = self._batch.is_feasible(arr[None])[0]
        return bool(res) if arr.ndim == 1 else res

    def to_ising(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``h (K,)``, upper-triangular ``J (K, K)``, offset of the spin form (``x = (1+s)/2``)."""
        h, j, off = self._batch.to_ising()
        return h[0], j[0], float(off[0])

    def to_bqm(self):
        """A ``dimod.BinaryQuadraticModel`` over variables ``0..K-1`` (penalty form when ``k`` is set)."""
        import dimod

        q, off = self.qubo()
        return _dense_to_bqm(q, off)

    def to_cqm(self):
        """A ``dimod.ConstrainedQuadraticModel``: the objective ``E`` and, with ``k``, the
        constraint ``sum_i x_i == k`` (label ``"cardinality"``)."""
        import dimod

        q, off = self.qubo(include_penalty=False)
        n = self.num_variables
        objective = _dense_to_bqm(q, off)
        cqm = dimod.ConstrainedQuadraticModel()
        cqm.set_objective(objective)
        for v in range(n):
            if v not in cqm.variables:
                cqm.add_variable("BINARY", v)
        if self.k is not None:
            cqm.add_constraint_from_iterable([(v, 1.0) for v in range(n)], "==", rhs=self.k, label="cardinality")
        return cqm


def _dense_to_bqm(q: np.ndarray, offset: float):
    """A binary BQM over ``0..n-1`` from an upper-triangular ``Q`` (zero couplings left out,
    so a QPU embedding sees only real edges)."""
    import dimod

    n = q.shape[0]
    rows, cols = np.nonzero(np.triu(q, 1))
    return dimod.BinaryQuadraticModel.from_numpy_vectors(
        np.diagonal(q).copy(), (rows, cols, q[rows, cols]), offset, dimod.BINARY, variable_order=range(n)
    )


def bisect_beta(
    problem: FeatureSelectionProblem,
    k: int,
    *,
    solve_fn: Callable[[FeatureSelectionProblem], np.ndarray] | None = None,
    max_iter: int = 60,
) -> tuple[float, np.ndarray]:
    """Muecke et al.'s alternative to a cardinality constraint: bisect ``beta``
    until the unconstrained optimum selects exactly ``k`` maps.

    Lowering ``beta`` weighs redundancy more and (for non-negative ``J``) selects
    fewer maps. Returns ``(beta, x)``. Raises :class:`qfsel.InfeasibleError`
    when no ``beta`` in [0, 1] yields ``k`` ones (ties can make counts jump).

    Args:
        problem: the problem (its own ``beta`` and ``k`` are ignored).
        k: the wanted number of selected maps.
        solve_fn: maps an unconstrained problem to its best state (n values 0 or 1);
            default: the exact solver.
        max_iter: bisection steps.

    Raises:
        TypeError: ``problem`` is not a FeatureSelectionProblem, ``solve_fn`` not callable.
        ValueError: ``k`` outside [1, n]; ``solve_fn`` returned anything but n values 0 or 1.
        InfeasibleError: no beta gives exactly ``k`` ones.
    """
    if not isinstance(problem, FeatureSelectionProblem):
        raise TypeError(f"problem: expected a FeatureSelectionProblem, got {type(problem).__name__}")
    k = check_int("k", k, low=1, high=problem.num_variables)
    if solve_fn is not None and not callable(solve_fn):
        raise TypeError(f"solve_fn: expected a callable or None, got {type(solve_fn).__name__}")
    if solve_fn is None:
        from .routing import solve

        def solve_fn(p: FeatureSelectionProblem) -> np.ndarray:
            return solve(p, sampler="exact").states[0]

    def count(beta: float) -> tuple[int, np.ndarray]:
        p = FeatureSelectionProblem(problem.relevance, problem.redundancy, beta=beta)
        x = as_array("solve_fn's result", solve_fn(p), dtype=None, shape=(problem.num_variables,))
        if not np.isin(x, (0, 1)).all():
            raise ValueError(f"solve_fn's result: expected a state of 0s and 1s, got {x!r}")
        return int(x.sum()), x

    lo, hi = 0.0, 1.0
    for _ in range(check_int("max_iter", max_iter, low=1)):
        mid = 0.5 * (lo + hi)
        m, x = count(mid)
        if m == k:
            return mid, x
        if m > k:
            hi = mid
        else:
            lo = mid
    raise InfeasibleError(f"k: no beta in [0, 1] gives exactly {k} selected maps after {max_iter} bisection steps (last beta {mid:.6g} gave {m})")

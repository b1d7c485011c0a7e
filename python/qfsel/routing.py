"""One entry point that routes a problem, or a batch of them, to any solver.

>>> import numpy as np
>>> from qfsel import FeatureSelectionProblem, solve
>>> p = FeatureSelectionProblem([1.0, 0.9, 0.2], [[0, .95, 0], [.95, 0, 0], [0, 0, 0]], beta=0.3)
>>> sol = solve(p, sampler="exact")
>>> sol.states[0].tolist()
[1, 0, 1]
>>> repr(sol).split(", total_s")[0]
"Solution(sampler='exact', problems=1, K=3, energy=-0.36, selected=[0, 2]"
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .qubo import FeatureSelectionProblem, ProblemBatch, _states_array

__all__ = ["Solution", "solve", "validate_solver", "register_solver", "available_solvers"]


@dataclass
class Solution:
    """The best state found for each problem of a batch.

    Attributes:
        states: ``(B, K)`` uint8, the best state of each problem.
        energies: ``(B,)`` the objective ``E(x)`` of those states (no penalty).
        feasible: ``(B,)`` whether each state has exactly ``k`` ones (all true without ``k``).
        num_selected: ``(B,)`` number of ones.
        timing: seconds; ``total_s`` always, solver-specific keys beside it.
        sampler: the solver's name.
        info: solver-specific extras (for ``"exact"``: ``num_ground_states``, ``ground_states``).
    """

    states: np.ndarray
    energies: np.ndarray
    feasible: np.ndarray
    num_selected: np.ndarray
    timing: dict[str, float]
    sampler: str
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def __repr__(self) -> str:
        """One line: solver, sizes, energies, selection sizes, feasibility, time (no arrays)."""
        b, n = (int(d) for d in self.states.shape)
        parts = [f"sampler={self.sampler!r}", f"problems={b}", f"K={n}"]
        e = np.asarray(self.energies, dtype=float)
        sel = np.asarray(self.num_selected)
        if b == 1:
            parts += [f"energy={e[0]:.6g}", f"selected={self.selected(0).tolist() if n <= 16 else int(sel[0])}"]
        elif b > 1:
            parts.append(f"energy={e.min():.6g}..{e.max():.6g}")
            lo, hi = int(sel.min()), int(sel.max())
            parts.append(f"num_selected={lo}" if lo == hi else f"num_selected={lo}..{hi}")
        if b and not bool(np.all(self.feasible)):
            parts.append(f"feasible={int(np.count_nonzero(self.feasible))}/{b}")
        if "total_s" in self.timing:
            parts.append(f"total_s={self.timing['total_s']:.3g}")
        return f"Solution({', '.join(parts)})"

    def selected(self, i: int = 0) -> np.ndarray:
        """Indices of the variables set to one in problem ``i``."""
        return np.flatnonzero(self.states[i])

    @classmethod
    def from_states(cls, batch: ProblemBatch, states: np.ndarray, sampler: str, timing: dict[str, float], info: dict | None = None) -> "Solution":
        """Evaluate ``states`` (``(B, K)``) on ``batch`` and wrap them."""
        # Checked once here; energy() and is_feasible() would each check again.
        states = _states_array("states", states, batch.num_variables, (batch.num_problems,))
        if states.ndim != 2:
            raise ValueError(f"states: expected one state per problem, shape {(batch.num_problems, batch.num_variables)}, got {states.shape}")
        num_selected = states.sum(axis=1, dtype=np.int64)
        return cls(
            states=states,
            energies=batch._energies(states),
            feasible=num_selected == batch.k if batch.k is not None else np.ones(len(states), dtype=bool),
            num_selected=num_selected,
            timing=timing,
            sampler=sampler,
            info=info or {},
        )


SolverFn = Callable[..., Solution]
ValidatorFn = Callable[..., object]
_SOLVERS: dict[str, SolverFn] = {}
_PARAMETERS: dict[str, frozenset[str] | None] = {}
_VALIDATORS: dict[str, ValidatorFn | None] = {}


def register_solver(
    name: str, fn: SolverFn, *, parameters: Iterable[str] | None = None, validate: ValidatorFn | None = None
) -> None:
    """Make ``solve(..., sampler=name)`` call ``fn(batch, **params)``, which returns a :class:`Solution`.

    ``parameters`` names the keyword arguments the solver accepts; by default
    they come from ``fn``'s signature (any name when it takes ``**kwargs``).
    ``solve`` refuses other names with a ``TypeError`` listing the accepted ones.
    ``validate(**params)``, if given, raises the errors ``fn`` would raise for
    parameter values that are wrong whatever the problem (a bad seed, a
    negative number of reads, ...), in the same order: ``fn`` should call it
    first. :func:`validate_solver` calls it without solving.
    """
    if parameters is None:
        sig = inspect.signature(fn)
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            accepted = None
        else:
            accepted = frozenset(list(sig.parameters)[1:])
    else:
        accepted = frozenset(parameters)
    _SOLVERS[name] = fn
    _PARAMETERS[name] = accepted
    _VALIDATORS[name] = validate


def available_solvers() -> list[str]:
    """Names accepted by ``solve(sampler=...)`` (any ``dimod.Sampler`` instance is accepted too)."""
    from . import samplers  # noqa: F401  (registers the built-in solvers)

    return sorted(_SOLVERS)


def _as_batch(problem: Any) -> ProblemBatch:
    if isinstance(problem, ProblemBatch):
        return problem
    if isinstance(problem, FeatureSelectionProblem):
        return problem.as_batch()
    raise TypeError(f"problem: expected a FeatureSelectionProblem or ProblemBatch, got {type(problem).__name__}")


def solve(problem: FeatureSelectionProblem | ProblemBatch, sampler: Any = "sa", **params: Any) -> Solution:
    """Solve one problem or a batch with a named solver or any ``dimod.Sampler``.

    Args:
        problem: a :class:`FeatureSelectionProblem` (a batch of one) or :class:`ProblemBatch`.
        sampler: a name from :func:`available_solvers` (``"exact"``, ...), or a
            ``dimod.Sampler`` instance (it gets the penalty BQM of each problem,
            or the CQM when it has ``sample_cqm`` and ``k`` is set).
        **params: passed to the solver (``seed``, ``num_reads``, ``num_threads``, ...).

    Returns:
        A :class:`Solution` with one best state per problem.
    """
    batch = _as_batch(problem)
    # The solver runs its validator itself, first: no second pass here.
    if _check_solver(sampler, params, validate=False):
        return _SOLVERS[sampler](batch, **params)
    return _solve_with_dimod(batch, sampler, **params)


def validate_solver(sampler: Any = "sa", params: Mapping[str, Any] | None = None) -> None:
    """Raise the error ``solve(problem, sampler, **params)`` would raise for ``sampler`` and ``params``.

    Nothing is solved: this checks the sampler name (or that it is a
    ``dimod.Sampler``), that every key of ``params`` is a parameter of a named
    solver, and every value that is wrong whatever the problem (seed,
    ``num_reads``, ``num_sweeps``, ``timeout``, ...), with the same exception
    and message as :func:`solve`. Values that depend on the problem (an
    ``initial_states`` shape, a ``tenure`` beyond ``n - 1``) are checked when
    solving. Parameters of a ``dimod.Sampler`` instance are its own business
    and are not checked.

    Example:
        >>> from qfsel import validate_solver
        >>> validate_solver("sa", {"num_reads": 8, "seed": 1})
        >>> validate_solver("tabu", {"seed": -1})
        Traceback (most recent call last):
        ...
        ValueError: seed: expected an integer in [0, 18446744073709551615], got -1
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise TypeError(f"params: expected a mapping of parameter names to values, got {type(params).__name__}")
    _check_solver(sampler, dict(params), validate=True)


def _check_solver(sampler: Any, params: dict[str, Any], validate: bool) -> bool:
    """Check ``sampler`` and ``params`` as :func:`solve` needs them; ``True`` for a named solver."""
    available = available_solvers()
    if isinstance(sampler, str):
        if sampler not in _SOLVERS:
            raise ValueError(f"sampler: expected one of {available} or a dimod.Sampler instance, got {sampler!r}")
        accepted = _PARAMETERS.get(sampler)
        unknown = sorted(set(params) - accepted) if accepted is not None else []
        if unknown:
            raise TypeError(f"{unknown[0]}: not a parameter of sampler {sampler!r}; it takes {sorted(accepted or ())}")
        check = _VALIDATORS.get(sampler)
        if validate and check is not None:
            check(**params)
        return True
    import dimod

    if isinstance(sampler, dimod.Sampler) or hasattr(sampler, "sample_cqm"):
        return False
    raise TypeError(f"sampler: expected one of {available} or a dimod.Sampler instance, got {type(sampler).__name__}")


def _solve_with_dimod(batch: ProblemBatch, sampler: Any, **params: Any) -> Solution:
    t0 = time.perf_counter()
    states = np.zeros((batch.num_problems, batch.num_variables), dtype=np.uint8)
    use_cqm = batch.k is not None and hasattr(sampler, "sample_cqm")
    infos = []
    for i in range(batch.num_problems):
        p = batch[i]
        if use_cqm:
            ss = sampler.sample_cqm(p.to_cqm(), **params)
            feas = ss.filter(lambda d: d.is_feasible) if "is_feasible" in ss.record.dtype.names else ss
            ss = feas if len(feas) else ss
        else:
            ss = sampler.sample(p.to_bqm(), **params)
        best = ss.first.sample
        vt = ss.vartype
        for v, val in best.items():
            states[i, int(v)] = (val + 1) // 2 if vt is not None and vt.name == "SPIN" else val
        infos.append(ss.info)
    return Solution.from_states(
        batch, states, type(sampler).__name__, {"total_s": time.perf_counter() - t0}, {"sampleset_info": infos}
    )

"""D-Wave hardware as qfsel routes: QPUs and Leap hybrid solvers behind :func:`qfsel.solve`.

Routes (names for ``qfsel.solve(..., sampler=...)``, ``QFSCAM(sampler=...)``
and the CLI's ``--sampler``):

* ``"dwave"`` -- a QPU, minorminer embeddings (as ``EmbeddingComposite``), penalty BQM.
* ``"dwave-clique"`` -- a QPU with clique embeddings (as ``DWaveCliqueSampler``), the
  natural fit for qfsel's all-to-all couplings.
* ``"hybrid-cqm"`` -- ``LeapHybridCQMSampler`` with the cardinality as a true constraint.
* ``"hybrid-bqm"`` -- ``LeapHybridSampler`` with the BQM (meant for ``k=None``).

Any other dimod sampler or composite still goes to ``qfsel.solve`` unchanged.
Many problems share one QPU job on disjoint qubits (``pack=True``, default);
each problem gets a :class:`ProblemResult` in ``solution.info["problems"]``
and each job a :class:`JobRecord` in ``solution.info["jobs"]``. See
``docs/dwave.md`` for running on a real QPU and what it costs.

Example (``MockDWaveSampler`` stands in for ``DWaveSampler()``; without
``qpu=`` the route connects to Leap with your configured token):

    >>> import numpy as np
    >>> from dwave.system.testing import MockDWaveSampler
    >>> from qfsel import ProblemBatch, solve
    >>> rng = np.random.default_rng(0)
    >>> h = rng.uniform(0.1, 1.0, (8, 6))
    >>> J = np.abs(rng.normal(size=(8, 6, 6))); J = (J + J.transpose(0, 2, 1)) / 2
    >>> J[:, range(6), range(6)] = 0
    >>> qpu = MockDWaveSampler(topology_type="pegasus", topology_shape=[3])
    >>> sol = solve(ProblemBatch(h, J, k=2), "dwave-clique", qpu=qpu, num_reads=20)
    >>> sol.info["per_job"], sol.info["num_jobs"]    # eight problems, one QPU job
    (8, 1)
    >>> sol.num_selected.tolist()
    [2, 2, 2, 2, 2, 2, 2, 2]
    >>> sorted(sol.info["problems"][0].timing)[:3]
    ['post_processing_overhead_time', 'qpu_access_overhead_time', 'qpu_access_time']
"""

from __future__ import annotations

from typing import Any

from ...qubo import ProblemBatch
from ...routing import Solution, register_solver
from . import hybrid as _hybrid
from . import qpu as _qpu
from .embedding import EmbeddingCache, capacity, default_cache
from .results import JobRecord, ProblemResult, repair_to_k

__all__ = ["ROUTES", "EmbeddingCache", "JobRecord", "ProblemResult", "capacity", "default_cache", "plan", "repair_to_k"]

#: The route names this package registers.
ROUTES = ("dwave", "dwave-clique", "hybrid-cqm", "hybrid-bqm")


def _route(name: str, body: Any) -> Any:
    def solve_route(batch: ProblemBatch, **params: Any) -> Solution:
        return body(name, batch, params)

    solve_route.__name__ = f"solve_{name.replace('-', '_')}"
    solve_route.__doc__ = f"The {name!r} route (see qfsel.samplers.dwave)."
    return solve_route


register_solver("dwave", _route("dwave", _qpu.solve_qpu), parameters=_qpu.PARAMETERS)
register_solver("dwave-clique", _route("dwave-clique", _qpu.solve_qpu), parameters=_qpu.PARAMETERS)
register_solver("hybrid-cqm", _route("hybrid-cqm", _hybrid.solve_hybrid), parameters=_hybrid.PARAMETERS)
register_solver("hybrid-bqm", _route("hybrid-bqm", _hybrid.solve_hybrid), parameters=_hybrid.PARAMETERS)


def plan(problem: Any, sampler: str = "dwave-clique", **params: Any) -> dict[str, Any]:
    """What a QPU route would submit, and its estimated QPU access time, without submitting anything.

    Finds (or reuses) the embeddings, packs the batch into jobs and estimates
    each job's QPU access time (see :mod:`qfsel.samplers.dwave.timing`).
    Takes the parameters of the route (``num_reads``, ``annealing_time``,
    ``pack``, ``qpu``, ...).

    Returns:
        ``{"route", "solver", "per_job", "num_jobs", "jobs": [{"problems", "num_qubits",
        "estimate_us"}], "estimate_qpu_access_us", "estimate_source"}``.
    """
    from ...routing import _as_batch

    if sampler not in ("dwave", "dwave-clique"):
        raise ValueError(f"sampler: expected 'dwave' or 'dwave-clique' (hybrid runs cost their time_limit), got {sampler!r}")
    unknown = sorted(set(params) - _qpu.PARAMETERS)
    if unknown:
        raise TypeError(f"{unknown[0]}: not a parameter of sampler {sampler!r}; it takes {sorted(_qpu.PARAMETERS)}")
    return _qpu.solve_qpu(sampler, _as_batch(problem), dict(params), dry_run=True)

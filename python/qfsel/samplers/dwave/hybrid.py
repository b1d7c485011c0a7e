"""The Leap hybrid routes: ``"hybrid-cqm"`` (``LeapHybridCQMSampler``) and ``"hybrid-bqm"`` (``LeapHybridSampler``).

``"hybrid-cqm"`` sends the objective ``E`` with the cardinality ``sum x == k``
as a true constraint (label ``cardinality_<i>``); ``"hybrid-bqm"`` sends the
BQM (the objective when ``k`` is not set -- its natural use -- else the
penalty form). A hybrid run costs at least the solver's minimum time limit
(seconds, growing with the model's size), so with ``pack=True`` (default)
several problems go into one model on disjoint variables (variable
``slot * K + v``), as many as the solver's ``maximum_number_of_variables``
allows (or ``max_per_job``): one minimum time limit for the lot instead of one
per problem. The minimum time limit of every model is computed with the
sampler's own ``min_time_limit`` and checked against ``time_limit`` before
anything is submitted.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np

from ..._checks import check_positive_real, check_seed
from ...exceptions import ProblemTooLargeError, RemoteSolverError
from ...qubo import ProblemBatch
from . import _cloud, timing
from .qpu import _finish
from .results import JobRecord, ProblemResult, best_state

#: ``num_threads`` and ``seed`` are accepted for solve()'s uniform signature and ignored (the work is remote).
PARAMETERS = frozenset(("time_limit", "label", "pack", "max_per_job", "timeout", "progress", "num_threads", "seed")
                       + _cloud.CLIENT_PARAMETERS)


def _model(batch: ProblemBatch, members: list[int], kind: str) -> Any:
    import dimod

    n = batch.num_variables
    use_pen = kind == "bqm" and batch.k is not None
    q, off = batch.qubo(include_penalty=use_pen)
    lin, rows, cols, vals = [], [], [], []
    for slot, i in enumerate(members):
        lin.append(np.diagonal(q[i]))
        r, c = np.nonzero(np.triu(q[i], 1))
        rows.append(r + slot * n)
        cols.append(c + slot * n)
        vals.append(q[i][r, c])
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(
        np.concatenate(lin), (np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)),
        float(off[members].sum()), dimod.BINARY, variable_order=range(len(members) * n))
    if kind == "bqm":
        return bqm
    cqm = dimod.ConstrainedQuadraticModel()
    cqm.set_objective(bqm)
    for v in range(len(members) * n):
        if v not in cqm.variables:
            cqm.add_variable("BINARY", v)
    if batch.k is not None:
        for slot, i in enumerate(members):
            cqm.add_constraint_from_iterable([(slot * n + v, 1.0) for v in range(n)], "==", rhs=batch.k,
                                             label=f"cardinality_{i}")
    return cqm


def solve_hybrid(route: str, batch: ProblemBatch, params: dict[str, Any]) -> Any:
    """The body of the ``"hybrid-cqm"`` and ``"hybrid-bqm"`` routes."""
    t0 = time.perf_counter()
    p = dict(params)
    kind = "cqm" if route == "hybrid-cqm" else "bqm"
    if p.get("time_limit") is not None:
        p["time_limit"] = check_positive_real("time_limit", p["time_limit"])
    _cloud.check_job_options(p)
    if p.get("seed") is not None:
        check_seed("seed", p["seed"])

    config = _cloud.client_config(p)
    secrets = _cloud.check_credentials(route, config)
    from dwave.system import LeapHybridCQMSampler, LeapHybridSampler

    sampler = _cloud.connect(route, LeapHybridCQMSampler if kind == "cqm" else LeapHybridSampler, config, secrets)
    props = sampler.properties
    b, n = batch.num_problems, batch.num_variables
    max_vars = int(props.get("maximum_number_of_variables", n))
    if n > max_vars:
        raise ProblemTooLargeError(f"sampler {route!r}: K={n} variables exceed the solver's maximum of {max_vars}; "
                                   "use fewer candidate maps (QFSCAM(candidates=N))")
    per_job = max(1, max_vars // n) if p.get("pack", True) else 1
    if kind == "cqm" and batch.k is not None and "maximum_number_of_constraints" in props:
        per_job = min(per_job, max(1, int(props["maximum_number_of_constraints"])))
    if p.get("max_per_job") is not None:
        per_job = min(per_job, p["max_per_job"])
    per_job = min(per_job, b)
    jobs = [list(range(s, min(s + per_job, b))) for s in range(0, b, per_job)]

    # Build every model and check every time limit before the first submission.
    models, limits = [], []
    for members in jobs:
        model = _model(batch, members, kind)
        minimum = float(sampler.min_time_limit(model))
        if p.get("time_limit") is not None and p["time_limit"] < minimum:
            raise ValueError(f"time_limit: the solver's minimum for a job of {len(members)} problem(s) of K={n} is "
                             f"{minimum:.3g} s, got {p['time_limit']!r}")
        models.append(model)
        limits.append(p["time_limit"] if p.get("time_limit") is not None else minimum)

    records, pending = [], []
    for j, (members, model, tl) in enumerate(zip(jobs, models, limits)):
        label = p.get("label") or f"qfsel {route} B={b} K={n}"
        if len(jobs) > 1:
            label = f"{label} (job {j + 1}/{len(jobs)})"
        records.append(JobRecord(problems=list(members), num_qubits=len(members) * n))
        t_sub = time.perf_counter()
        try:
            if kind == "cqm":
                ss = sampler.sample_cqm(model, time_limit=tl, label=label)
            else:
                ss = sampler.sample(model, time_limit=tl, label=label)
        except Exception as exc:  # noqa: BLE001 - kept per job
            ss = exc
        pending.append((ss, members, t_sub, tl))

    iterator: Any = enumerate(pending)
    if p.get("progress"):
        iterator = importlib.import_module("tqdm.auto").tqdm(iterator, total=len(pending), desc=f"{route} jobs", unit="job")
    results: dict[int, ProblemResult] = {}
    failures: list[RemoteSolverError] = []
    remote = [float("inf"), float("-inf")]  # first submission, last answer
    for j, (ss, members, t_sub, tl) in iterator:
        rec = records[j]
        err = _cloud.collect(route, ss, rec, t_sub, remote, p.get("timeout"), secrets,
                             f"running job {j + 1}/{len(jobs)} (problems {rec.problems})")
        if err is not None:
            failures.append(err)
            continue
        rec.timing = {k: v for k, v in ss.info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        rec.timing["time_limit_s"] = float(tl)
        rec.problem_id = ss.info.get("problem_id")
        shared = timing.share(rec.timing, len(members))
        order = [ss.variables.index(v) for v in range(len(members) * n)]
        samples = np.asarray(ss.record.sample)[:, order].astype(np.uint8)
        counts = np.asarray(ss.record.num_occurrences, dtype=np.int64)
        for slot, i in enumerate(members):
            reads = samples[:, slot * n:(slot + 1) * n]
            state, energy, repaired, frac = best_state(batch[i], reads, counts)
            results[i] = ProblemResult(index=i, job=j, state=state, energy=energy, repaired=repaired,
                                       num_reads=int(counts.sum()), feasible_fraction=frac, timing=dict(shared))
    name = getattr(getattr(sampler, "solver", None), "name", type(sampler).__name__)
    return _finish(route, batch, results, records, failures, t0,
                   {"solver": str(name), "per_job": per_job, "capacity_is_exact": True, "remote": remote})

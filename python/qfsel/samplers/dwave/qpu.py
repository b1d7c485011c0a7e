"""The QPU routes ``"dwave"`` and ``"dwave-clique"``: penalty BQMs, embedded, packed, sampled, split back.

Each problem's penalty BQM (``k`` set) or objective BQM is converted to spin
form and scaled to largest absolute bias 1 (so the problems sharing a job
share the QPU's bias range fairly; the ranking of states is unchanged), then
embedded on its slot (see :mod:`qfsel.samplers.dwave.embedding`) with its own
chain strength: Ocean's ``uniform_torque_compensation`` unless
``chain_strength`` is given. With ``pack=True`` (default) up to ``per_job``
problems go into one BQM on disjoint qubits, one QPU job each; the reads are
unembedded per problem with Ocean's ``unembed_sampleset`` and the chosen
chain-break method. With ``pack=False`` each problem is sampled through Ocean's
``FixedEmbeddingComposite`` with the cached embedding, one job per problem.
All jobs are submitted before the first answer is awaited.
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any

import numpy as np

from ..._checks import check_positive_int, check_positive_real, check_seed
from ...exceptions import ProblemTooLargeError, RemoteSolverError
from ...qubo import ProblemBatch
from ...routing import Solution
from . import _cloud, timing
from .embedding import default_cache
from .results import JobRecord, ProblemResult, best_state

#: QPU solver parameters passed through unchanged (SAPI's names).
QPU_PARAMETERS = ("annealing_time", "anneal_schedule", "auto_scale", "answer_mode", "programming_thermalization",
                  "readout_thermalization", "reduce_intersample_correlation", "fast_anneal")
#: Everything the QPU routes accept.
PARAMETERS = frozenset(
    ("num_reads", "chain_strength", "chain_break_method", "label", "pack", "max_per_job", "qpu", "timeout",
     "embedding_cache_dir", "embedding_parameters", "seed", "progress", "num_threads")
    + QPU_PARAMETERS + _cloud.CLIENT_PARAMETERS
)

CHAIN_BREAK_METHODS = ("majority_vote", "minimize_energy", "discard", "weighted_random")


def _chain_break(name: Any, bqm: Any, emb: dict) -> Any:
    from dwave.embedding import chain_breaks

    if callable(name):
        return name
    if name == "minimize_energy":
        return chain_breaks.MinimizeEnergy(bqm, emb)
    return getattr(chain_breaks, name)


def _check(params: dict[str, Any]) -> dict[str, Any]:
    p = dict(params)
    p["num_reads"] = check_positive_int("num_reads", p.get("num_reads", 100))
    cbm = p.get("chain_break_method", "majority_vote")
    if not callable(cbm) and cbm not in CHAIN_BREAK_METHODS:
        raise ValueError(f"chain_break_method: expected one of {list(CHAIN_BREAK_METHODS)} or a callable, got {cbm!r}")
    p["chain_break_method"] = cbm
    cs = p.get("chain_strength")
    if cs is not None and not callable(cs):
        p["chain_strength"] = check_positive_real("chain_strength", cs)
    if p.get("annealing_time") is not None:
        p["annealing_time"] = check_positive_real("annealing_time", p["annealing_time"])
    p["seed"] = 0 if p.get("seed") is None else check_seed("seed", p["seed"])
    _cloud.check_job_options(p)
    cache_dir = p.get("embedding_cache_dir")
    if cache_dir is not None:  # else only the first new embedding's write (os.makedirs) found out
        if not isinstance(cache_dir, (str, os.PathLike)):
            raise TypeError(f"embedding_cache_dir: expected a directory path (str or os.PathLike), got {type(cache_dir).__name__}")
        if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise ValueError(f"embedding_cache_dir: expected a directory, got {os.fspath(cache_dir)!r}, an existing file")
    ep = p.get("embedding_parameters")
    if ep is not None and not isinstance(ep, dict):
        raise TypeError(f"embedding_parameters: expected a dict of minorminer.find_embedding options, got {type(ep).__name__}")
    return p


def _solver_name(qpu: Any) -> str:
    solver = getattr(qpu, "solver", None)
    name = getattr(solver, "name", None)
    if isinstance(name, str):
        return name
    props = getattr(qpu, "properties", None) or {}
    return str(props.get("chip_id", type(qpu).__name__))


def _source_edges(batch: ProblemBatch) -> frozenset[tuple[int, int]]:
    """Union over the batch of the couplings the penalty BQMs have (one embedding serves every problem)."""
    n = batch.num_variables
    if batch.k is not None and n > 1:  # the cardinality penalty couples every pair
        return frozenset((i, j) for i in range(n) for j in range(i + 1, n))
    nz = np.any(np.triu(batch.redundancy, 1) != 0, axis=0)
    rows, cols = np.nonzero(nz)
    return frozenset(zip(rows.tolist(), cols.tolist()))


def _spin_bqm(problem: Any) -> Any:
    bqm = problem.to_bqm().change_vartype("SPIN", inplace=False)
    lin = np.abs(list(bqm.linear.values())) if bqm.num_variables else np.zeros(1)
    quad = np.abs(list(bqm.quadratic.values())) if bqm.num_interactions else np.zeros(1)
    scale = float(max(lin.max(initial=0.0), quad.max(initial=0.0)))
    if scale > 0:
        bqm.scale(1.0 / scale)
    for v in range(problem.num_variables):
        bqm.add_variable(v)
    return bqm


def _too_large(route: str, qpu: Any, n: int) -> ProblemTooLargeError:
    graph = qpu.to_networkx_graph()
    extra = ""
    if graph.graph.get("family") in ("chimera", "pegasus"):
        try:
            busclique = importlib.import_module("minorminer.busclique")

            extra = f", largest clique embedding {len(busclique.busgraph_cache(graph).largest_clique())} variables"
        except Exception:  # noqa: BLE001 - the size hint is optional
            extra = ""
    return ProblemTooLargeError(
        f"sampler {route!r}: a problem with K={n} variables does not embed on solver {_solver_name(qpu)!r} "
        f"({graph.number_of_nodes()} working qubits{extra}); use fewer candidate maps (QFSCAM(candidates=N) "
        f"with a smaller N) or sampler='hybrid-cqm'"
    )


def solve_qpu(route: str, batch: ProblemBatch, params: dict[str, Any], dry_run: bool = False) -> Any:
    """The body of the ``"dwave"`` and ``"dwave-clique"`` routes (``dry_run``: the plan, nothing submitted)."""
    import dimod
    from dwave.embedding import embed_bqm, unembed_sampleset
    from dwave.embedding.chain_strength import uniform_torque_compensation

    t0 = time.perf_counter()
    p = _check(params)
    qpu = p.get("qpu")
    secrets: list[str] = []
    if qpu is None:
        config = _cloud.client_config(p)
        secrets = _cloud.check_credentials(route, config)
        from dwave.system import DWaveSampler

        qpu = _cloud.connect(route, DWaveSampler, config, secrets)
    elif not (hasattr(qpu, "sample") and hasattr(qpu, "to_networkx_graph")):
        raise TypeError(f"qpu: expected a structured dimod sampler such as DWaveSampler or MockDWaveSampler, got {type(qpu).__name__}")
    else:  # a sampler the caller built: still never show the configured token
        secrets = _cloud._secrets(_cloud.client_config(p))
    props = getattr(qpu, "properties", {}) or {}
    lo_hi = props.get("num_reads_range")
    if lo_hi and not lo_hi[0] <= p["num_reads"] <= lo_hi[1]:
        raise ValueError(f"num_reads: expected {lo_hi[0]} <= num_reads <= {lo_hi[1]} on this solver, got {p['num_reads']}")
    rng = props.get("annealing_time_range")
    if rng and p.get("annealing_time") is not None and not rng[0] <= p["annealing_time"] <= rng[1]:
        raise ValueError(f"annealing_time: expected {rng[0]} <= annealing_time <= {rng[1]} us on this solver, got {p['annealing_time']}")

    b, n = batch.num_problems, batch.num_variables
    method = "clique" if route == "dwave-clique" else "heuristic"
    edges = _source_edges(batch)
    wanted = b if p.get("pack", True) else 1
    if p.get("max_per_job") is not None:
        wanted = min(wanted, p["max_per_job"])
    t_emb = time.perf_counter()
    if b == 0 or n == 0:  # nothing to embed or submit (K = 0: every problem's only state is the empty one)
        slots: list[dict[int, tuple[int, ...]]] = []
    else:
        slots = default_cache.slots(qpu.to_networkx_graph(), n, edges, wanted, method=method, seed=p["seed"],
                                    cache_dir=p.get("embedding_cache_dir"), embedding_parameters=p.get("embedding_parameters"))
        if not slots:  # (an empty batch said 'a problem with K=6 variables does not embed')
            raise _too_large(route, qpu, n)
    embedding_s = time.perf_counter() - t_emb
    per_job = len(slots)
    entry_full = len(slots) < wanted
    jobs = [list(range(s, min(s + per_job, b))) for s in range(0, b, per_job)] if per_job else []

    qpu_params = {k: p[k] for k in QPU_PARAMETERS if p.get(k) is not None}
    adjacency = qpu.adjacency
    sub_adjacency: dict[int, dict[int, set[int]]] = {}
    records: list[JobRecord] = []
    pending: list[tuple[Any, list, float]] = []  # (sampleset or exception, per-problem data, submit time)
    bqms = {}
    for j, members in enumerate(jobs):
        label = p.get("label") or f"qfsel {route} B={b} K={n}"
        if len(jobs) > 1:
            label = f"{label} (job {j + 1}/{len(jobs)})"
        data = []
        for slot, i in enumerate(members):
            bqm = bqms[i] = _spin_bqm(batch[i])
            emb = slots[slot]
            cs = p.get("chain_strength")
            cs = float(cs(bqm, emb)) if callable(cs) else (cs if cs is not None else float(uniform_torque_compensation(bqm, emb)))
            data.append((i, emb, cs))
        num_qubits = sum(len(c) for _, emb, _ in data for c in emb.values())
        est, source = timing.estimate_access_time_us(qpu, num_qubits, p["num_reads"], p)
        records.append(JobRecord(problems=list(members), num_qubits=num_qubits, estimate_us=est, estimate_source=source))
        if dry_run:
            continue
        t_sub = time.perf_counter()
        try:
            if p.get("pack", True):
                target = dimod.BinaryQuadraticModel("SPIN")
                for slot, (i, emb, cs) in enumerate(data):
                    if slot not in sub_adjacency:  # the slot's own qubits: embed_bqm walks the whole adjacency it gets
                        qubits = {q for c in emb.values() for q in c}
                        sub_adjacency[slot] = {q: {r for r in adjacency[q] if r in qubits} for q in qubits}
                    target.update(embed_bqm(bqms[i], emb, sub_adjacency[slot], chain_strength=cs))
                ss = qpu.sample(target, num_reads=p["num_reads"], label=label, **qpu_params)
            else:
                from dwave.system import FixedEmbeddingComposite

                i, emb, cs = data[0]
                ss = FixedEmbeddingComposite(qpu, emb).sample(
                    bqms[i], chain_strength=cs, chain_break_method=_chain_break(p["chain_break_method"], bqms[i], emb),
                    chain_break_fraction=True, return_embedding=True, num_reads=p["num_reads"], label=label, **qpu_params)
        except Exception as exc:  # noqa: BLE001 - kept per job; the others still run
            ss = exc
        pending.append((ss, data, t_sub))

    if dry_run:
        return {"route": route, "solver": _solver_name(qpu), "per_job": per_job, "num_jobs": len(jobs),
                "jobs": [{"problems": r.problems, "num_qubits": r.num_qubits, "estimate_us": r.estimate_us} for r in records],
                "estimate_qpu_access_us": float(sum(r.estimate_us or 0.0 for r in records)),
                "estimate_source": records[0].estimate_source if records else None, "embedding_s": embedding_s}
    iterator: Any = enumerate(pending)
    if p.get("progress"):
        iterator = importlib.import_module("tqdm.auto").tqdm(iterator, total=len(pending), desc=f"{route} jobs", unit="job")
    results: dict[int, ProblemResult] = {}
    failures: list[RemoteSolverError] = []
    remote = [float("inf"), float("-inf")]  # first submission, last answer
    for j, (ss, data, t_sub) in iterator:
        rec = records[j]
        err = _cloud.collect(route, ss, rec, t_sub, remote, p.get("timeout"), secrets,
                             f"running job {j + 1}/{len(jobs)} (problems {rec.problems})")
        if err is not None:
            failures.append(err)
            continue
        info = ss.info
        rec.timing = dict(info.get("timing", {}))
        rec.problem_id = info.get("problem_id")
        shared = timing.share(rec.timing, len(data))
        for i, emb, cs in data:
            if p.get("pack", True):
                src = unembed_sampleset(ss, emb, bqms[i], chain_break_method=_chain_break(p["chain_break_method"], bqms[i], emb),
                                        chain_break_fraction=True)
            else:
                src = ss
            reads, counts, cbf = _reads(src, n)
            if not len(reads):  # "discard" dropped every read: fall back to majority vote
                src = unembed_sampleset(ss, emb, bqms[i], chain_break_method=_chain_break("majority_vote", None, emb),
                                        chain_break_fraction=True) if p.get("pack", True) else ss
                reads, counts, cbf = _reads(src, n)
            state, energy, repaired, frac = best_state(batch[i], reads, counts)
            results[i] = ProblemResult(index=i, job=j, state=state, energy=energy, repaired=repaired,
                                       num_reads=int(counts.sum()), feasible_fraction=frac, chain_break_fraction=cbf,
                                       chain_strength=cs, embedding=dict(emb), timing=dict(shared))
    return _finish(route, batch, results, records, failures, t0, {
        "solver": _solver_name(qpu), "per_job": per_job, "capacity_is_exact": entry_full,
        "embedding_method": method, "embedding_s": embedding_s, "remote": remote,
    })


def _reads(ss: Any, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """0/1 reads ``(M, n)`` in variable order, their occurrences and the mean chain-break fraction."""
    rec = ss.record
    if not len(rec):
        return np.zeros((0, n), np.uint8), np.zeros(0, np.int64), 0.0
    order = [ss.variables.index(v) for v in range(n)]
    samples = np.asarray(rec.sample)[:, order]
    if ss.vartype is not None and ss.vartype.name == "SPIN":
        samples = (samples + 1) // 2
    counts = np.asarray(rec.num_occurrences, dtype=np.int64)
    cbf = 0.0
    if "chain_break_fraction" in rec.dtype.names:
        cbf = float(np.sum(np.asarray(rec.chain_break_fraction) * counts) / max(counts.sum(), 1))
    return samples.astype(np.uint8), counts, cbf


def _finish(route: str, batch: ProblemBatch, results: dict[int, ProblemResult], records: list[JobRecord],
            failures: list[RemoteSolverError], t0: float, extra: dict[str, Any]) -> Solution:
    """The Solution of every solved problem; with failures, raise the first one carrying the partial result."""
    solved = sorted(results)
    us = lambda key: sum(float(r.timing.get(key, 0.0)) for r in records) / 1e6  # noqa: E731
    ok = [r for r in records if r.error is None]
    first, last = extra.pop("remote", (0.0, 0.0))
    wall = max(0.0, last - first) if ok else 0.0
    timing_s = {
        "total_s": time.perf_counter() - t0,
        "embedding_s": float(extra.get("embedding_s", 0.0)),
        "wall_s": wall,
        "qpu_access_s": us("qpu_access_time"),
        "qpu_programming_s": us("qpu_programming_time"),
        "qpu_sampling_s": us("qpu_sampling_time"),
    }
    if any("run_time" in r.timing for r in records):  # hybrid: the solver's run and charged time
        timing_s["hybrid_run_s"] = us("run_time")
        timing_s["charge_s"] = us("charge_time")
    timing_s["network_queue_s"] = max(0.0, wall - timing_s["qpu_access_s"]) if ok else 0.0
    est = [r.estimate_us for r in records if r.estimate_us is not None]
    info = {"route": route, **{k: v for k, v in extra.items() if k != "embedding_s"}, "num_jobs": len(records),
            "jobs": records, "problems": [results[i] for i in solved],
            "estimate_qpu_access_us": float(sum(est)) if est else None,
            "estimate_source": records[0].estimate_source if records else None}
    if not failures:
        states = (np.stack([results[i].state for i in range(batch.num_problems)]) if results
                  else np.zeros((batch.num_problems, batch.num_variables), np.uint8))
        return Solution.from_states(batch, states, route, timing_s, info)
    partial = None
    if solved:
        sub = ProblemBatch(batch.relevance[solved], batch.redundancy[solved], batch.beta, batch.k,
                           None if batch.penalty is None else batch.penalty[solved])
        info["indices"] = solved
        partial = Solution.from_states(sub, np.stack([results[i].state for i in solved]), route, timing_s, info)
    failed = {i: r.error for r in records if r.error for i in r.problems}
    first = failures[0]
    msg = f"{first} -- {len(failed)} of {batch.num_problems} problems failed, {len(solved)} solved (see .partial)"
    raise type(first)(msg, route=route, partial=partial, failed=failed)

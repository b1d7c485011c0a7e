"""Sampler entries of a benchmark: a name, a dimod sampler, or a callable, behind one ``run`` call.

Every entry answers ``run(instance, num_reads, num_sweeps, seed) -> RunOutput`` with one 0/1 state
per read; the harness evaluates energies itself (float64, objective without penalty), so every
sampler is scored the same way.

Named entries (:func:`entry_names`):

* qfsel's own: ``"sa"`` (swap-move exactly-k annealer with its defaults, one thread),
  ``"sa-penalty"`` (single-flip SA on the penalty QUBO), ``"tabu"``, ``"greedy"``, ``"exact"``,
  ``"sqa"`` / ``"sqa-penalty"`` (qfsel's path-integral SQA, swap moves / penalty QUBO, once
  ``qfsel.samplers.sqa`` exists: every read returned); any
  other name of :func:`qfsel.available_solvers` (for example ``"sqa"`` or the D-Wave routes once
  installed) runs through :func:`qfsel.solve`, with every read when the solver returns
  ``info["read_states"]``;
* ``"statevector"``: qfsel's exact statevector anneal (``qfsel.quantum``) when present;
* anchors when installed (``pip install 'qfsel[bench]'``): ``"dwave-sa"``, ``"dwave-tabu"``,
  ``"dwave-steepest"``, ``"dwave-pimc"`` (dwave-samplers' SimulatedAnnealing, Tabu,
  SteepestDescent and PathIntegralAnnealing samplers on the penalty BQM), ``"openjij-sa"``,
  ``"openjij-sqa"``, ``"simulated-bifurcation"``;
* ``"dwave-mock"``: ``dwave.system``'s ``MockDWaveSampler`` behind an ``EmbeddingComposite``,
  labelled *mock* in every output (it is a classical stand-in, not a QPU).

A ``dimod.Sampler`` instance gets the penalty BQM of each instance (``sample(bqm, num_reads=...,
seed=..., num_sweeps=...)``, passing only the parameters it declares). A callable gets
``(problem, num_reads, seed)`` and returns ``(R, K)`` states, a :class:`qfsel.Solution` or a
``dimod.SampleSet``.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._checks import describe
from ..instances import Instance

__all__ = ["RunOutput", "Entry", "as_entry", "entry_names", "ANCHORS"]

#: Outside anchors: name -> (module that must be importable, description).
ANCHORS = {
    "dwave-sa": ("dwave.samplers", "dwave-samplers SimulatedAnnealingSampler (penalty BQM)"),
    "dwave-tabu": ("dwave.samplers", "dwave-samplers TabuSampler (penalty BQM)"),
    "dwave-steepest": ("dwave.samplers", "dwave-samplers SteepestDescentSampler (penalty BQM)"),
    "dwave-pimc": ("dwave.samplers", "dwave-samplers PathIntegralAnnealingSampler (penalty BQM)"),
    "openjij-sa": ("openjij", "OpenJij SASampler (penalty BQM)"),
    "openjij-sqa": ("openjij", "OpenJij SQASampler (penalty BQM)"),
    "simulated-bifurcation": ("simulated_bifurcation", "simulated-bifurcation (ballistic, penalty QUBO)"),
    "dwave-mock": ("dwave.system", "MockDWaveSampler + EmbeddingComposite (MOCK: a classical stand-in for a QPU)"),
}


@dataclass
class RunOutput:
    """What one call of an entry returned: ``states (R, K)`` uint8 and optional timing extras (seconds)."""

    states: np.ndarray
    timing: dict[str, float] = field(default_factory=dict)


@dataclass
class Entry:
    """A sampler in a benchmark.

    Attributes:
        label: unique name in the results.
        run: ``run(instance, num_reads, num_sweeps, seed) -> RunOutput``.
        kind: ``"qfsel"``, ``"anchor"``, ``"dimod"`` or ``"callable"``.
        mock: whether it stands in for hardware it is not (labelled ``(mock)`` in every output).
        uses_sweeps: whether a budget's ``num_sweeps`` reaches it.
        description: one line for the report.
    """

    label: str
    run: Callable[[Instance, int, int | None, int], RunOutput]
    kind: str = "callable"
    mock: bool = False
    uses_sweeps: bool = False
    description: str = ""

    @property
    def display(self) -> str:
        return f"{self.label} (mock)" if self.mock else self.label


def _qubo(inst: Instance, penalty: bool) -> tuple[np.ndarray, np.ndarray]:
    q, off = inst.problem().qubo(include_penalty=penalty if inst.k is not None else None)
    return q[None], np.array([off])


def _qfsel_sa(params: dict[str, Any], penalty: bool) -> Callable[..., RunOutput]:
    from ..samplers.sa import simulated_annealing

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        q, off = _qubo(inst, penalty)
        k = None if penalty else inst.k
        kw = {"num_sweeps": sweeps, "num_threads": 1, **params}
        out = simulated_annealing(q, off, k=k, num_reads=reads, seed=seed, return_states=True, **kw)
        return RunOutput(out["states"][0])

    return run


def _qfsel_tabu(params: dict[str, Any]) -> Callable[..., RunOutput]:
    from ..samplers.tabu import tabu_search

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        q, off = _qubo(inst, False)
        out = tabu_search(q, off, inst.k, num_reads=reads, seed=seed, return_read_states=True, **{"num_threads": 1, **params})
        return RunOutput(out["read_states"][0])

    return run


def _qfsel_solver(name: str, params: dict[str, Any]) -> Callable[..., RunOutput]:
    from ..routing import _PARAMETERS, solve

    accepted = _PARAMETERS.get(name)

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        kw = dict(params)
        for key, val in (("num_reads", reads), ("seed", seed), ("num_sweeps", sweeps), ("num_threads", 1)):
            if val is not None and (accepted is None or key in accepted) and key not in kw:
                kw[key] = val
        sol = solve(inst.problem(), name, **kw)
        states = sol.info.get("read_states")
        states = np.asarray(states)[0] if states is not None else sol.states
        timing = {f"solver_{k}": float(v) for k, v in sol.timing.items() if isinstance(v, (int, float))}
        for key in ("qpu_access_s", "qpu_anneal_s", "qpu_sampling_s"):
            if key in sol.info:
                timing[key] = float(sol.info[key])
        return RunOutput(states, timing)

    return run


def _from_sampleset(ss: Any, n: int) -> np.ndarray:
    labels = list(ss.variables)
    rec = np.asarray(ss.record.sample)
    counts = np.asarray(ss.record.num_occurrences)
    order = [labels.index(v) for v in range(n)]
    x = rec[:, order]
    if ss.vartype.name == "SPIN":
        x = (x + 1) // 2
    return np.repeat(x.astype(np.uint8), counts, axis=0)


def _qpu_timing(info: dict[str, Any]) -> dict[str, float]:
    t = info.get("timing") or {}
    out = {}
    for src, dst in (("qpu_access_time", "qpu_access_s"), ("qpu_anneal_time_per_sample", "qpu_anneal_per_read_s"),
                     ("qpu_sampling_time", "qpu_sampling_s"), ("qpu_programming_time", "qpu_programming_s")):
        if src in t:
            out[dst] = float(t[src]) * 1e-6  # microseconds in D-Wave's timing dict
    return out


def _dimod(sampler: Any, params: dict[str, Any]) -> Callable[..., RunOutput]:
    declared = set(getattr(sampler, "parameters", {}) or {})

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        bqm = inst.problem().to_bqm()
        kw = dict(params)
        for key, val in (("num_reads", reads), ("seed", seed), ("num_sweeps", sweeps)):
            if val is not None and key in declared and key not in kw:
                kw[key] = val
        ss = sampler.sample(bqm, **kw)
        return RunOutput(_from_sampleset(ss, inst.num_variables), _qpu_timing(dict(ss.info)))

    return run


def _callable(fn: Callable[..., Any]) -> Callable[..., RunOutput]:
    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        out = fn(inst.problem(), reads, seed)
        if hasattr(out, "record") and hasattr(out, "variables"):
            return RunOutput(_from_sampleset(out, inst.num_variables))
        if hasattr(out, "states") and hasattr(out, "energies"):
            return RunOutput(np.asarray(out.states))
        arr = np.asarray(out)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != inst.num_variables or not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"callable sampler: expected (reads, {inst.num_variables}) 0/1 states, got {describe(out)}")
        return RunOutput(arr.astype(np.uint8))

    return run


def _openjij(kind: str, params: dict[str, Any]) -> Callable[..., RunOutput]:
    import openjij as oj

    sampler = oj.SASampler() if kind == "sa" else oj.SQASampler()

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        bqm = inst.problem().to_bqm()
        kw = {"num_reads": reads, "seed": int(seed % (2**31)), **params}
        if sweeps is not None:
            kw.setdefault("num_sweeps", sweeps)
        ss = sampler.sample(bqm, **kw)
        return RunOutput(_from_sampleset(ss, inst.num_variables))

    return run


def _simulated_bifurcation(params: dict[str, Any]) -> Callable[..., RunOutput]:
    import simulated_bifurcation as sb
    import torch

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        q, off = inst.problem().qubo()
        qs = np.triu(q)  # upper-triangular QUBO: x^T Q x
        torch.manual_seed(int(seed % (2**31)))
        kw = {"agents": reads, "verbose": False, "best_only": False, **params}
        if sweeps is not None:
            kw.setdefault("max_steps", sweeps)
        x, _ = sb.minimize(torch.tensor(qs, dtype=torch.float32), domain="binary", **kw)
        x = np.atleast_2d(x.detach().cpu().numpy()).astype(np.uint8)
        return RunOutput(x)

    return run


def _qfsel_sqa(params: dict[str, Any], penalty: bool) -> Callable[..., RunOutput]:  # pragma: no cover - needs branch i12b
    """qfsel's SQA (``qfsel.samplers.sqa.simulated_quantum_annealing``): swap moves with ``k``, or flips on the penalty QUBO."""
    sqa = importlib.import_module("qfsel.samplers.sqa")

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        q, off = _qubo(inst, penalty)
        kw = {"num_sweeps": sweeps, "num_threads": 1, **params}
        out = sqa.simulated_quantum_annealing(q, off, None if penalty else inst.k, num_reads=reads, seed=seed, **kw)
        return RunOutput(np.asarray(out["states"])[0])

    return run


def _statevector(params: dict[str, Any]) -> Callable[..., RunOutput]:  # pragma: no cover - needs qfsel.quantum (branch i12a)
    """Reads sampled from the final state of one exact anneal (``qfsel.quantum.anneal``, ``T`` default 50).

    The anneal's wall time is spread over the reads drawn from it (every read is one measurement
    of the same final state).
    """
    quantum = importlib.import_module("qfsel.quantum")

    def run(inst: Instance, reads: int, sweeps: int | None, seed: int) -> RunOutput:
        kw = {"T": 50.0, "shots": 0, "seed": seed, "return_state": True, "num_threads": 1, **params}
        res = quantum.anneal(inst.problem(), **kw)
        amp = np.asarray(res.state)
        prob = np.abs(amp) ** 2
        prob = prob / prob.sum()
        idx = np.random.default_rng(seed).choice(prob.size, size=reads, p=prob)
        basis = getattr(res, "basis", None)
        full = np.asarray(basis)[idx] if basis is not None else idx
        bits = (np.asarray(full, dtype=np.int64)[:, None] >> np.arange(inst.num_variables)) & 1  # x = sum_i x_i 2^i
        return RunOutput(bits.astype(np.uint8))

    return run


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def entry_names() -> list[str]:
    """Names usable right now: qfsel's solvers, ``"statevector"`` when present, installed anchors."""
    from ..routing import available_solvers

    names = list(available_solvers())
    if _have("qfsel.samplers.sqa"):
        names.append("sqa-penalty")
    if _have("qfsel.quantum"):
        names.append("statevector")
    names += [n for n, (mod, _) in ANCHORS.items() if _have(mod)]
    return names


def _named(name: str, label: str, params: dict[str, Any]) -> Entry:
    from ..routing import available_solvers

    if name in ("sa", "sa-penalty"):
        return Entry(label, _qfsel_sa(params, name == "sa-penalty"), "qfsel", uses_sweeps=True,
                     description="qfsel swap-move SA (defaults)" if name == "sa" else "qfsel single-flip SA, penalty QUBO")
    if name in ("sqa", "sqa-penalty") and _have("qfsel.samplers.sqa"):
        return Entry(label, _qfsel_sqa(params, name == "sqa-penalty"), "qfsel", uses_sweeps=True,
                     description="qfsel SQA (path-integral), " + ("penalty QUBO" if name == "sqa-penalty" else "swap moves"))
    if name == "tabu":
        return Entry(label, _qfsel_tabu(params), "qfsel", description="qfsel swap tabu search")
    if name in available_solvers():
        return Entry(label, _qfsel_solver(name, params), "qfsel", uses_sweeps=name in ("sqa",),
                     mock="mock" in name, description=f"qfsel.solve(..., {name!r})")
    if name == "statevector" and _have("qfsel.quantum"):
        return Entry(label, _statevector(params), "qfsel", description="qfsel exact statevector anneal")
    if name in ANCHORS:
        module, desc = ANCHORS[name]
        if not _have(module):
            raise ModuleNotFoundError(f"sampler {name!r} needs {module!r}: pip install 'qfsel[bench]'")
        if name.startswith("dwave-") and name != "dwave-mock":
            from dwave import samplers as ds

            cls: Any = {"dwave-sa": ds.SimulatedAnnealingSampler, "dwave-tabu": ds.TabuSampler,
                   "dwave-steepest": ds.SteepestDescentSampler, "dwave-pimc": ds.PathIntegralAnnealingSampler}[name]
            return Entry(label, _dimod(cls(), params), "anchor", uses_sweeps=name in ("dwave-sa", "dwave-pimc"), description=desc)
        if name == "dwave-mock":
            from dwave.system import EmbeddingComposite
            from dwave.system.testing import MockDWaveSampler

            return Entry(label, _dimod(EmbeddingComposite(MockDWaveSampler()), params), "anchor", mock=True, description=desc)
        if name.startswith("openjij-"):
            return Entry(label, _openjij(name.removeprefix("openjij-"), params), "anchor", uses_sweeps=True, description=desc)
        return Entry(label, _simulated_bifurcation(params), "anchor", uses_sweeps=True, description=desc)
    raise ValueError(f"samplers: unknown sampler name {name!r}; expected one of {entry_names()}, "
                     "a dimod.Sampler instance, a callable or an Entry")


def as_entry(spec: Any, label: str | None = None, **params: Any) -> Entry:
    """An :class:`Entry` from a name, a ``dimod.Sampler`` instance, a callable or an Entry.

    ``spec`` may also be a tuple ``(label, spec)`` or ``(label, spec, params)``.

    Example:
        >>> as_entry("sa").label, as_entry(("sa-20", "sa", {"num_sweeps": 20})).label
        ('sa', 'sa-20')
    """
    if isinstance(spec, Entry):
        return spec
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3) or not isinstance(spec[0], str):
            raise TypeError(f"samplers: expected (label, sampler) or (label, sampler, params), got {describe(spec)}")
        extra = dict(spec[2]) if len(spec) == 3 else {}
        return as_entry(spec[1], spec[0], **{**extra, **params})
    if isinstance(spec, str):
        return _named(spec, label or spec, params)
    import dimod

    if isinstance(spec, dimod.Sampler):
        name = label or type(spec).__name__
        mock = "mock" in type(spec).__name__.lower() or any(
            "mock" in type(c).__name__.lower() for c in getattr(spec, "children", []))
        return Entry(name, _dimod(spec, params), "dimod", mock=mock, uses_sweeps="num_sweeps" in (spec.parameters or {}),
                     description=f"dimod sampler {type(spec).__name__}")
    if callable(spec):
        return Entry(str(label or getattr(spec, "__name__", "callable")), _callable(spec), "callable",
                     description=f"callable {getattr(spec, '__qualname__', type(spec).__name__)}")
    raise TypeError(f"samplers: expected a sampler name, a dimod.Sampler instance, a callable or an Entry, got {describe(spec)}")

"""``qfsel.benchmark``: every sampler on every instance under the same budget, repeated over seeds.

A *cell* is one (instance, sampler, budget, seed). Each cell runs in a worker thread under a
per-cell wall-clock limit (``time_limit``): a sampler that raises is recorded as ``failed`` with its
error, one that runs past the limit as ``timeout`` (its thread is abandoned: Python cannot stop a
thread, so a truly hung native sampler keeps its core until the process ends), and the other cells
go on. With ``out``, every finished cell is appended at once to ``out/cells.csv`` and its reads to
``out/reads.csv``; running again with the same ``out`` skips finished cells, so a run can be resumed
after an interruption or extended with more samplers, budgets or seeds.

Budgets: ``num_reads`` reads per cell; ``num_sweeps`` reaches the samplers that take sweeps (qfsel
SA, dwave-samplers SA/PIMC, OpenJij, simulated-bifurcation's steps) and is ``None`` for each
sampler's default; with ``time_s`` the sampler is called again (``num_reads`` per call, new seed each
call) until the cell has used ``time_s`` seconds.
"""

from __future__ import annotations

import csv
import json
import math
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from .._checks import check_int, describe
from ..instances import Instance, load_many, save
from ..instances._format import ensure_dir
from ..instances.truth import EXACT_LIMIT, ground_truth
from .entries import Entry, as_entry
from .metrics import RELATIVE_TOLERANCE

if TYPE_CHECKING:
    from .results import BenchmarkResult

__all__ = ["Budget", "benchmark", "CELL_COLUMNS", "READ_COLUMNS"]

CELL_COLUMNS = ["instance", "family", "K", "k", "sampler", "budget", "seed", "status", "error", "reads", "calls",
                "wall_s", "t_read_s", "best_energy", "best_state", "qpu_access_s", "qpu_anneal_per_read_s",
                "qpu_sampling_s", "mock", "finished_at"]
READ_COLUMNS = ["instance", "sampler", "budget", "seed", "read", "energy", "feasible", "num_selected"]


@dataclass(frozen=True)
class Budget:
    """The same rule for every sampler: reads per cell, sweeps (``None``: defaults), optional wall time."""

    num_reads: int = 32
    num_sweeps: int | None = None
    time_s: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        check_int("num_reads", self.num_reads, low=1)
        if self.num_sweeps is not None:
            check_int("num_sweeps", self.num_sweeps, low=1)
        if self.time_s is not None:
            t = self.time_s
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
                raise ValueError(f"time_s: expected None or a positive number of seconds, got {t!r}")
        if self.name is None:
            parts = [f"r{self.num_reads}"] + ([f"s{self.num_sweeps}"] if self.num_sweeps else []) + (
                [f"t{self.time_s:g}"] if self.time_s else [])
            object.__setattr__(self, "name", "-".join(parts))


def _budgets(budgets: Any) -> list[Budget]:
    if budgets is None:
        return [Budget()]
    if isinstance(budgets, (Budget, dict)):
        budgets = [budgets]
    out = []
    for b in budgets:
        if isinstance(b, Budget):
            out.append(b)
        elif isinstance(b, dict):
            out.append(Budget(**b))
        else:
            raise TypeError(f"budgets: expected Budget objects or dicts of num_reads/num_sweeps/time_s, got {describe(b)}")
    if not out:
        raise ValueError("budgets: expected at least one Budget (None: the default Budget()), got none")
    names = [b.name for b in out]
    if len(set(names)) != len(names):
        raise ValueError(f"budgets: duplicate budget names {names}")
    return out


def _seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return list(range(check_int("seeds", seeds, low=1)))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds: expected a positive count or an iterable of distinct non-negative integers, got {describe(seeds)}")
    out = [check_int("seeds", s, low=0, high=2**32 - 1) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds: expected a positive count or distinct non-negative integers, got {seeds!r}")
    return out


def _entries(samplers: Any) -> list[Entry]:
    if samplers is None or isinstance(samplers, (str, bytes)) or not isinstance(samplers, Iterable):
        samplers = [samplers] if isinstance(samplers, str) else samplers
    if samplers is None:
        raise TypeError("samplers: expected a list of sampler names, dimod samplers, callables or entries, got None")
    entries = [as_entry(s) for s in samplers]
    if not entries:
        raise ValueError("samplers: expected at least one sampler, got an empty list")
    labels = [e.label for e in entries]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"samplers: duplicate sampler names {dup}; give each a unique label, e.g. ('sa-long', 'sa', {{'num_sweeps': 100}})")
    return entries


def _instances(instances: Any) -> list[Instance]:
    if isinstance(instances, Instance):
        instances = [instances]
    elif isinstance(instances, (str, os.PathLike)):
        instances = load_many(instances)
    out: list[Instance] = []
    for inst in instances:
        if isinstance(inst, Instance):
            out.append(inst)
        elif isinstance(inst, (str, os.PathLike)):
            out.extend(load_many(inst))
        else:
            raise TypeError(f"instances: expected Instance objects or instance file paths, got {describe(inst)}")
    if not out:
        raise ValueError("instances: expected at least one instance, got none")
    names = [i.name for i in out]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise ValueError(f"instances: duplicate instance names {dup}")
    return out


def _cell_seed(seed: int, name: str, call: int) -> int:
    # below 2**31: dwave-samplers and OpenJij take 32-bit signed seeds
    return (seed * 1_000_003 + zlib.crc32(name.encode()) + 7919 * call) % (2**31)


def _run_limited(fn: Any, limit: float | None) -> tuple[str, Any]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = fn()
        except BaseException as exc:  # recorded, never re-raised: the other cells go on
            box["err"] = exc

    th = threading.Thread(target=target, daemon=True, name="qfsel-bench-cell")
    th.start()
    th.join(limit)
    if th.is_alive():
        return "timeout", None
    if "err" in box:
        exc = box["err"]
        return "failed", f"{type(exc).__name__}: {exc}"
    return "ok", box["out"]


def _run_cell(entry: Entry, inst: Instance, budget: Budget, seed: int, limit: float | None
              ) -> tuple[dict, np.ndarray | None, np.ndarray | None]:
    """``(cell fields, (R, 3) energy/feasible/num_selected, (R, K) states)``; ``None`` tables on failure."""
    prob = inst.problem()
    chunks: list[np.ndarray] = []
    extra: dict[str, float] = {}
    wall = 0.0
    calls = 0
    deadline = None if limit is None else time.perf_counter() + limit
    while True:
        s = _cell_seed(seed, inst.name, calls)
        left = None if deadline is None else max(deadline - time.perf_counter(), 1e-3)

        def call() -> tuple[Any, float]:
            t0 = time.perf_counter()
            out = entry.run(inst, budget.num_reads, budget.num_sweeps if entry.uses_sweeps else None, s)
            return out, time.perf_counter() - t0

        status, res = _run_limited(call, left)
        if status != "ok":
            return {"status": status, "error": res if status == "failed" else f"timeout after {limit:g} s", "calls": calls,
                    "wall_s": wall}, None, None
        out, dt = res
        calls += 1
        wall += dt
        states = np.asarray(out.states)
        if states.ndim != 2 or states.shape[1] != inst.num_variables:
            return {"status": "failed", "error": f"ValueError: sampler returned states of shape {states.shape}, expected (reads, {inst.num_variables})",
                    "calls": calls, "wall_s": wall}, None, None
        chunks.append(states.astype(np.uint8))
        for key, val in out.timing.items():
            extra[key] = extra.get(key, 0.0) + float(val)
        if budget.time_s is None or wall >= budget.time_s:
            break
    states = np.concatenate(chunks)
    energies = prob._batch.energy(states[None])[0] if len(states) else np.empty(0)
    feasible = states.sum(axis=1) == inst.k if inst.k is not None else np.ones(len(states), bool)
    row = {"status": "ok", "error": "", "calls": calls, "wall_s": wall, **extra}
    table = np.column_stack([energies, feasible, states.sum(axis=1)]) if len(states) else np.empty((0, 3))
    return row, table, states


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class _Appender:
    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        self.fresh = not path.exists() or path.stat().st_size == 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if self.fresh:
                w.writeheader()
                self.fresh = False
            w.writerows(rows)


def benchmark(
    instances: Any,
    samplers: Sequence[Any],
    budgets: Any = None,
    *,
    seeds: int | Sequence[int] = 3,
    out: str | os.PathLike[str] | None = None,
    time_limit: float | None = 60.0,
    compute_ground_truth: bool = True,
    exact_limit: int = EXACT_LIMIT,
    retry_failed: bool = False,
    progress: bool = False,
) -> "BenchmarkResult":
    """Run every sampler on every instance under every budget, for every seed.

    Args:
        instances: :class:`qfsel.instances.Instance` objects, instance files or a directory of them.
        samplers: names (:func:`qfsel.bench.entry_names`), ``dimod.Sampler`` instances, callables
            ``(problem, num_reads, seed) -> states``, :class:`Entry` objects, or ``(label, spec)`` /
            ``(label, spec, params)`` tuples; labels must be unique.
        budgets: a :class:`Budget`, a dict of its fields, or a list of them (default ``Budget()``: 32
            reads at each sampler's default sweeps).
        seeds: how many seeds (0, 1, ...) or the seeds themselves.
        out: directory for ``cells.csv``, ``reads.csv``, ``run.json``, ``instances/``, ``summary.md`` and
            ``plots/``; finished cells found there are not run again.
        time_limit: seconds per cell (``None``: no limit); a cell past it is recorded as ``timeout``.
        compute_ground_truth: compute missing ground truth (:func:`qfsel.instances.ground_truth`).
        exact_limit: largest ``C(K, k)`` searched exhaustively for ground truth.
        retry_failed: run cells recorded as failed/timeout again.
        progress: print one line per finished cell to stderr.

    Returns:
        A :class:`BenchmarkResult` (tables, summary, markdown, plots).
    """
    import sys

    insts = _instances(instances)
    entries = _entries(samplers)
    bl = _budgets(budgets)
    seed_list = _seeds(seeds)
    if time_limit is not None:
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not (time_limit > 0):
            raise ValueError(f"time_limit: expected None or a positive number of seconds, got {time_limit!r}")
    for flag, value in (("progress", progress), ("retry_failed", retry_failed)):
        if not isinstance(value, bool):  # "no" would have meant True
            raise TypeError(f"{flag}: expected a bool, got {describe(value)}")
    outdir = None if out is None else ensure_dir("out", out)
    if outdir is not None:
        ensure_dir("out", outdir / "instances")
    # ground truth (stored instances in out/ keep theirs, so a resumed run does not recompute it)
    ready = []
    for inst in insts:
        stored = None if outdir is None else outdir / "instances" / f"{inst.name}.npz"
        if inst.ground_truth is None and stored is not None and stored.exists():
            from ..instances import load

            prev = load(stored)
            if np.array_equal(prev.relevance, inst.relevance) and np.array_equal(prev.redundancy, inst.redundancy):
                inst = prev
        if inst.ground_truth is None and compute_ground_truth:
            e, s, method, details = ground_truth(inst, exact_limit=exact_limit)
            inst = inst.with_ground_truth(e, s, method, details)
        if stored is not None:
            save(inst, stored)
        ready.append(inst)
    insts = ready
    cells_path = None if outdir is None else outdir / "cells.csv"
    reads_path = None if outdir is None else outdir / "reads.csv"
    prev_cells = _read_csv_rows(cells_path) if cells_path else []
    done = {(r["instance"], r["sampler"], r["budget"], int(r["seed"])): r for r in prev_cells
            if r["status"] == "ok" or not retry_failed}
    cell_w = _Appender(cells_path, CELL_COLUMNS) if cells_path else None
    read_w = _Appender(reads_path, READ_COLUMNS) if reads_path else None
    new_cells: list[dict[str, Any]] = []
    new_reads: list[dict[str, Any]] = []
    total = len(insts) * len(entries) * len(bl) * len(seed_list)
    count = 0
    for inst in insts:
        for entry in entries:
            for budget in bl:
                for seed in seed_list:
                    count += 1
                    key = (inst.name, entry.label, budget.name, seed)
                    if key in done:
                        continue
                    row, table, states = _run_cell(entry, inst, budget, seed, time_limit)
                    base = {"instance": inst.name, "family": inst.family, "K": inst.num_variables, "k": inst.k,
                            "sampler": entry.label, "budget": budget.name, "seed": seed, "mock": entry.mock,
                            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
                    cell = {**base, **row}
                    reads = []
                    if row["status"] == "ok" and table is not None and states is not None:
                        n = len(table)
                        cell["reads"] = n
                        cell["t_read_s"] = row["wall_s"] / max(n, 1)
                        feas = table[:, 1].astype(bool)
                        if feas.any():
                            i = int(np.argmin(np.where(feas, table[:, 0], np.inf)))
                            cell["best_energy"] = float(table[i, 0])
                            cell["best_state"] = " ".join(str(v) for v in np.flatnonzero(states[i]))
                        for r in range(n):
                            reads.append({"instance": inst.name, "sampler": entry.label, "budget": budget.name, "seed": seed,
                                          "read": r, "energy": repr(float(table[r, 0])), "feasible": int(table[r, 1]),
                                          "num_selected": int(table[r, 2])})
                    else:
                        cell["reads"] = 0
                    new_cells.append(cell)
                    new_reads.extend(reads)
                    if cell_w is not None and read_w is not None:
                        read_w.write(reads)
                        cell_w.write([cell])
                    if progress:
                        print(f"[{count}/{total}] {inst.name} {entry.display} {budget.name} seed {seed}: {cell['status']}"
                              f" ({row['wall_s']:.3g} s)", file=sys.stderr, flush=True)
    from .results import BenchmarkResult

    if outdir is not None:
        # every instance of the run directory (an extension may name only some of them)
        res = BenchmarkResult.load(outdir, entries=entries)
        meta: dict[str, Any] = {"format": "qfsel-bench", "version": 1, "samplers": {e.label: {"kind": e.kind, "mock": e.mock,
                "description": e.description} for e in entries}, "budgets": [b.__dict__ for b in bl], "seeds": seed_list,
                "time_limit_s": time_limit, "instances": [i.name for i in insts],
                "load_average_at_end": os.getloadavg()[0], "cpu_count": os.cpu_count()}
        old: dict[str, Any] = {}
        if (outdir / "run.json").exists():
            try:
                old = json.loads((outdir / "run.json").read_text())
            except json.JSONDecodeError:
                old = {}
        if old.get("samplers"):
            meta["samplers"] = {**old["samplers"], **meta["samplers"]}
        (outdir / "run.json").write_text(json.dumps(meta, indent=2, default=str))
        res.save_summary(outdir)
        return res
    return BenchmarkResult.from_rows(new_cells, new_reads, instances=insts, entries=entries)

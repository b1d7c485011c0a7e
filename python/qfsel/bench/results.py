"""Benchmark results: raw tables, per-instance and per-size figures, markdown and PNG plots."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..instances import Instance, load_many
from .entries import Entry
from .metrics import RELATIVE_TOLERANCE, approximation_ratio, bootstrap_median_tts, bootstrap_tts, jaccard, spearman, tts99

__all__ = ["BenchmarkResult"]


def _pd():
    try:
        import pandas as pd
    except ModuleNotFoundError as exc:  # pragma: no cover - pandas ships with the bench extra
        raise ModuleNotFoundError("qfsel.bench needs pandas: pip install 'qfsel[bench]'") from exc
    return pd


class BenchmarkResult:
    """Tables of one benchmark run.

    Attributes:
        cells: one row per (instance, sampler, budget, seed): status, error, reads, wall time, best.
        reads: one row per read: energy (objective, no penalty), feasible, number selected.
        instances: ``{name: Instance}`` with their ground truth.
        mock: ``{sampler label: bool}``.
        notes: messages about the run (ground truth improved by a sampler, failures).
    """

    def __init__(self, cells: Any, reads: Any, instances: Sequence[Instance], mock: dict[str, bool]) -> None:
        pd = _pd()
        # a failed cell run again (retry_failed) appears twice: its last record counts
        self.cells = cells.drop_duplicates(["instance", "sampler", "budget", "seed"], keep="last").reset_index(drop=True)
        self.reads = reads.reset_index(drop=True)
        self.instances = {i.name: i for i in instances}
        unknown = set(self.cells["instance"]) - set(self.instances)
        if unknown:  # cells of instances not given: left out (their ground truth is unknown here)
            self.cells = self.cells[self.cells["instance"].isin(list(self.instances))].reset_index(drop=True)
            self.reads = self.reads[self.reads["instance"].isin(list(self.instances))].reset_index(drop=True)
        self.mock = dict(mock)
        self.notes: list[str] = []
        if len(self.reads):
            self.reads["energy"] = pd.to_numeric(self.reads["energy"])
            self.reads["feasible"] = self.reads["feasible"].astype(int).astype(bool)
        self.best = self._best_known()

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_rows(cls, cells: list[dict], reads: list[dict], *, instances: Sequence[Instance], entries: Sequence[Entry]) -> "BenchmarkResult":
        from .harness import CELL_COLUMNS, READ_COLUMNS

        pd = _pd()
        c = pd.DataFrame(cells, columns=CELL_COLUMNS)
        r = pd.DataFrame(reads, columns=READ_COLUMNS)
        return cls(c, r, instances, {e.label: e.mock for e in entries})

    @classmethod
    def load(cls, out: str | os.PathLike[str], *, instances: Sequence[Instance] | None = None,
             entries: Sequence[Entry] | None = None) -> "BenchmarkResult":
        """Read a run directory written by :func:`qfsel.benchmark` (``cells.csv``, ``reads.csv``, ``instances/``)."""
        from .harness import CELL_COLUMNS, READ_COLUMNS

        pd = _pd()
        d = Path(out)
        if not (d / "cells.csv").exists():
            raise FileNotFoundError(f"out: no benchmark results (cells.csv) in {str(d)!r}")
        cells = pd.read_csv(d / "cells.csv", keep_default_na=False, na_values=[""])
        reads = pd.read_csv(d / "reads.csv") if (d / "reads.csv").exists() and (d / "reads.csv").stat().st_size else pd.DataFrame(columns=READ_COLUMNS)
        cells = cells.reindex(columns=CELL_COLUMNS)
        cells["error"] = cells["error"].astype(object).where(cells["error"].notna(), "")
        if instances is None:
            instances = load_many(d / "instances")
        mock = {}
        if (d / "run.json").exists():
            meta = json.loads((d / "run.json").read_text())
            mock = {k: bool(v.get("mock")) for k, v in meta.get("samplers", {}).items()}
        for e in entries or []:
            mock[e.label] = e.mock
        for lab in cells["sampler"].unique():
            mock.setdefault(lab, bool(cells.loc[cells["sampler"] == lab, "mock"].astype(str).eq("True").any()))
        return cls(cells, reads, instances, mock)

    # -- figures --------------------------------------------------------------------------
    def _best_known(self) -> dict[str, float]:
        best: dict[str, float] = {}
        seen = {}
        if len(self.reads):
            feas = self.reads[self.reads["feasible"]]
            seen = feas.groupby("instance")["energy"].min().to_dict()
        for name, inst in self.instances.items():
            gt = inst.best_energy
            obs = seen.get(name, math.inf)
            if gt is None:
                best[name] = obs
                continue
            tol = RELATIVE_TOLERANCE * max(1.0, abs(gt))
            if obs < gt - tol:
                method = inst.ground_truth["method"] if inst.ground_truth else "?"
                if method == "exact":
                    self.notes.append(f"{name}: a read reached {obs!r}, below the exact optimum {gt!r}: a bug somewhere")
                else:
                    self.notes.append(f"{name}: this run improved the best known energy {gt!r} -> {obs!r}")
            best[name] = min(gt, obs)
        return best

    def label(self, sampler: str) -> str:
        """The sampler's label as shown in outputs (``(mock)`` appended for mocks)."""
        return f"{sampler} (mock)" if self.mock.get(sampler) else sampler

    def per_instance(self) -> Any:
        """One row per (instance, sampler, budget): success p and its CI, feasibility, residual, ratio, t/read, TTS99 and CI."""
        pd = _pd()
        rows: list[dict[str, Any]] = []
        ok = self.cells[self.cells["status"] == "ok"]
        groups = self.reads.groupby(["instance", "sampler", "budget"]) if len(self.reads) else []
        for (name, sampler, budget), g in groups:
            best = self.best[name]
            inst = self.instances[name]
            e = g["energy"].to_numpy()
            f = g["feasible"].to_numpy()
            succ = f & (e <= best + RELATIVE_TOLERANCE * max(1.0, abs(best)))
            cs = ok[(ok["instance"] == name) & (ok["sampler"] == sampler) & (ok["budget"] == budget)]
            t_read = float(cs["wall_s"].astype(float).sum() / max(cs["reads"].astype(float).sum(), 1))
            p = float(succ.mean())
            p_lo, p_hi, t_lo, t_hi = bootstrap_tts(succ, t_read, seed=len(rows))
            row = {"instance": name, "family": inst.family, "K": inst.num_variables, "k": inst.k, "sampler": sampler,
                   "budget": budget, "reads": len(g), "success": p, "success_lo": p_lo, "success_hi": p_hi,
                   "feasible": float(f.mean()), "residual": float(np.mean(e[f] - best)) if f.any() else math.nan,
                   "approx_ratio": approximation_ratio(e[f], best), "t_read_s": t_read, "tts99_s": tts99(t_read, p),
                   "tts99_lo_s": t_lo, "tts99_hi_s": t_hi,
                   "gt_method": (inst.ground_truth or {}).get("method", "this run")}
            for key in ("qpu_access_s", "qpu_anneal_per_read_s", "qpu_sampling_s"):
                vals = pd.to_numeric(cs[key], errors="coerce")
                row[key] = float(vals.sum()) if vals.notna().any() else math.nan
            row.update(self._fidelity(inst, cs))
            rows.append(row)
        return pd.DataFrame(rows)

    def _fidelity(self, inst: Instance, cells: Any) -> dict[str, float]:
        """Heatmap rank correlation and selected-set Jaccard of each seed's best answer vs the optimum's."""
        if inst.maps is None or inst.ground_state is None or not len(cells):
            return {"heatmap_spearman": math.nan, "jaccard": math.nan}
        ref_state = inst.ground_state
        ref_map = inst.heatmap(ref_state)
        rho, jac = [], []
        for text in cells["best_state"]:
            if not isinstance(text, str):
                continue
            x = np.zeros(inst.num_variables, np.uint8)
            if text.strip():
                x[np.array(text.split(), dtype=np.int64)] = 1
            rho.append(spearman(inst.heatmap(x), ref_map))
            jac.append(jaccard(x, ref_state))
        return {"heatmap_spearman": float(np.nanmean(rho)) if rho else math.nan, "jaccard": float(np.mean(jac)) if jac else math.nan}

    def summary(self) -> Any:
        """One row per (family, K, sampler, budget): instances, mean/min success, feasibility, ratio, t/read, median TTS99 with CI."""
        pd = _pd()
        per = self.per_instance()
        rows = []
        if not len(per):
            return pd.DataFrame()
        for (fam, n, _k, sampler, budget), g in per.groupby(["family", "K", "k", "sampler", "budget"], dropna=False):
            med, lo, hi = bootstrap_median_tts(g["reads"].to_numpy(), g["success"].to_numpy(), g["t_read_s"].to_numpy())
            rows.append({"family": fam, "K": int(n), "k": int(g["k"].iloc[0]) if g["k"].notna().all() else None,
                         "sampler": self.label(sampler), "budget": budget, "instances": len(g), "reads": int(g["reads"].sum()),
                         "success": float(g["success"].mean()), "min_success": float(g["success"].min()),
                         "feasible": float(g["feasible"].mean()), "residual": float(g["residual"].mean()),
                         "approx_ratio": float(g["approx_ratio"].mean()), "t_read_s": float(g["t_read_s"].median()),
                         "tts99_s": med, "tts99_lo_s": lo, "tts99_hi_s": hi,
                         "qpu_access_s": float(g["qpu_access_s"].sum()) if g["qpu_access_s"].notna().any() else math.nan,
                         "heatmap_spearman": float(g["heatmap_spearman"].mean()) if g["heatmap_spearman"].notna().any() else math.nan,
                         "jaccard": float(g["jaccard"].mean()) if g["jaccard"].notna().any() else math.nan})
        return pd.DataFrame(rows)

    def failures(self) -> Any:
        """Cells that failed or timed out, with their error."""
        return self.cells[self.cells["status"] != "ok"][["instance", "sampler", "budget", "seed", "status", "error"]]

    # -- outputs --------------------------------------------------------------------------
    def markdown(self) -> str:
        """The summary as markdown: one table per budget, ground truth, explanation fidelity, failures, notes."""
        s = self.summary()
        lines = ["# qfsel benchmark", ""]
        mocks = sorted(k for k, v in self.mock.items() if v)
        if mocks:
            lines += [f"**Mock samplers** (classical stand-ins, not hardware): {', '.join(mocks)}.", ""]
        gt: dict[str, int] = {}
        for inst in self.instances.values():
            m = (inst.ground_truth or {}).get("method", "this run")
            gt[m] = gt.get(m, 0) + 1
        lines += ["Ground truth: " + ", ".join(f"{v} instance(s) {k}" for k, v in sorted(gt.items())) +
                  " (best-known = lowest over qfsel tabu, long SA, default SA and greedy runs, and every read of this run).", ""]
        if len(s):
            for budget, g in s.groupby("budget"):
                lines += [f"## Budget {budget}", "",
                          "| family | K (k) | sampler | inst. | reads | success | min success | feasible | approx. ratio | t/read (ms) | TTS99 (ms) [95% CI] |",
                          "|---|---|---|---|---|---|---|---|---|---|---|"]
                for _, r in g.sort_values(["family", "K", "k", "sampler"]).iterrows():
                    lines.append(
                        f"| {r['family']} | {r['K']} ({r['k']}) | {r['sampler']} | {r['instances']} | {r['reads']} | {r['success']:.1%} | "
                        f"{r['min_success']:.1%} | {r['feasible']:.1%} | {r['approx_ratio']:.4f} | {r['t_read_s'] * 1e3:.3g} | "
                        f"{_ms(r['tts99_s'])} [{_ms(r['tts99_lo_s'])}, {_ms(r['tts99_hi_s'])}] |")
                lines.append("")
                fid = g[g["jaccard"].notna()]
                if len(fid):
                    lines += ["Does solving better matter? (captured instances: each seed's best answer vs the optimum's explanation)", "",
                              "| family | K | sampler | success | heatmap Spearman | selected-set Jaccard |", "|---|---|---|---|---|---|"]
                    for _, r in fid.sort_values(["K", "sampler"]).iterrows():
                        lines.append(f"| {r['family']} | {r['K']} | {r['sampler']} | {r['success']:.1%} | {r['heatmap_spearman']:.4f} | {r['jaccard']:.4f} |")
                    lines.append("")
                qpu = g[g["qpu_access_s"].notna()]
                if len(qpu):
                    lines += ["QPU time (access, apart from network and queue):", ""]
                    lines += [f"- {r['sampler']} K={r['K']}: {r['qpu_access_s'] * 1e3:.3g} ms" for _, r in qpu.iterrows()]
                    lines.append("")
        fails = self.failures()
        if len(fails):
            lines += ["## Failed cells", "", "| instance | sampler | budget | seed | status | error |", "|---|---|---|---|---|---|"]
            for _, r in fails.iterrows():
                err = str(r["error"]).replace("|", "/").replace("\n", " ")[:160]
                lines.append(f"| {r['instance']} | {self.label(r['sampler'])} | {r['budget']} | {r['seed']} | {r['status']} | {err} |")
            lines.append("")
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(lines)

    def plot(self, directory: str | os.PathLike[str]) -> list[Path]:
        """PNG plots per budget: TTS99 vs K and success vs K, one panel per family; returns the paths."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        s = self.summary()
        out: list[Path] = []
        if not len(s):
            return out
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for budget, g in s.groupby("budget"):
            fams = sorted(g["family"].unique())
            samplers = sorted(g["sampler"].unique())
            cmap = plt.get_cmap("tab20" if len(samplers) > 10 else "tab10")
            colour = {name: cmap(i % cmap.N) for i, name in enumerate(samplers)}
            fig, axes = plt.subplots(2, len(fams), figsize=(max(3.6 * len(fams), 8.0), 7.2), squeeze=False)
            for c, fam in enumerate(fams):
                gf = g[g["family"] == fam]
                for sampler, gs in gf.groupby("sampler"):
                    gs = gs.sort_values("K")
                    tts = gs["tts99_s"].to_numpy() * 1e3
                    fin = np.isfinite(tts)
                    lo = np.where(np.isfinite(gs["tts99_lo_s"]), gs["tts99_lo_s"] * 1e3, np.nan)
                    hi = np.where(np.isfinite(gs["tts99_hi_s"]), gs["tts99_hi_s"] * 1e3, np.nan)
                    if fin.any():
                        yerr = np.vstack([np.clip(tts - lo, 0, None), np.clip(hi - tts, 0, None)])[:, fin]
                        axes[0, c].errorbar(gs["K"].to_numpy()[fin], tts[fin], yerr=np.nan_to_num(yerr), marker="o", capsize=3,
                                            label=sampler, color=colour[sampler])
                    axes[1, c].plot(gs["K"], gs["success"], marker="o", label=sampler, color=colour[sampler])
                axes[0, c].set_title(fam)
                axes[0, c].set_xscale("log", base=2)
                axes[0, c].set_yscale("log")
                axes[0, c].set_ylabel("TTS99 (ms)")
                axes[1, c].set_xscale("log", base=2)
                axes[1, c].set_ylim(-0.02, 1.02)
                axes[1, c].axhline(0.9, color="grey", lw=0.6, ls="--")
                axes[1, c].set_ylabel("success per read")
                axes[1, c].set_xlabel("K (variables)")
            handles, labels = axes[1, 0].get_legend_handles_labels()
            ncol = min(len(labels), 4 if len(fams) < 3 else 6)
            rows = -(-len(labels) // ncol)
            fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
            fig.suptitle(f"qfsel benchmark, budget {budget} (inf TTS not drawn)")
            fig.tight_layout(rect=(0, 0.035 * rows + 0.02, 1, 0.96))
            path = d / f"bench_{budget}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            out.append(path)
        return out

    def save_summary(self, directory: str | os.PathLike[str]) -> None:
        """Write ``summary.md``, ``summary.csv``, ``per_instance.csv`` (and Parquet copies when pyarrow is installed) and ``plots/``."""
        d = Path(directory)
        per = self.per_instance()
        s = self.summary()
        per.to_csv(d / "per_instance.csv", index=False)
        s.to_csv(d / "summary.csv", index=False)
        try:
            import pyarrow  # noqa: F401

            self.reads.to_parquet(d / "reads.parquet")
            self.cells.to_parquet(d / "cells.parquet")
        except ImportError:
            pass
        (d / "summary.md").write_text(self.markdown())
        self.plot(d / "plots")


def _ms(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "inf" if v is not None and not np.isnan(v) else "n/a"
    return f"{v * 1e3:.3g}"

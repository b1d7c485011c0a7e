"""``qfsel gap``: minimum gaps and anneal success on problems captured from the bundled models.

For each model, QFS-CAM (:func:`qfsel.explain_all`) explains ``--images`` correctly classified
test images of its dataset (MNIST for narrow-mnist-N, the shapes test split for
shapes-paper-N; the same number per class, as the paper); each image's problem (the ``d`` maps
with a positive GradCAM weight) is then annealed exactly, one d at a time. For large d,
``--spectra-cap D:N`` limits the (costly) spectra to N problems per d, ``--s-points-cap D:S``
coarsens their grid, and ``--problems-skip D:N`` / ``--problems-cap D:N`` keep a window of the
problems of each d (all but the first N / the first N), so that a large d can be split over
runs. Writes into ``--out``:

* ``gap_table.csv``: one row per problem and encoding (d, ground-manifold size, Delta_min, s*,
  the paper's plain E1-E0 (empty where ``--spectra-cap`` skipped the spectrum), success and
  d^2-shot readout at every T);
* ``gap_histogram.png``, ``success_vs_T.png``, ``success_vs_d.png`` (with the paper's fit
  ``0.90 exp(-0.35 d) - 0.03`` at T = 10), ``spectrum_examples.png``;
* ``gap_summary.json``: medians and ranges, the Hamiltonian form, the command's settings and
  the seconds spent per d (spectra and anneals).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._common import UserError, _jsonable, _prepare_out

_FILES = ("gap_table.csv", "gap_histogram.png", "success_vs_T.png", "success_vs_d.png", "spectrum_examples.png", "gap_summary.json")


def _floats(text: str, name: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{name}: expected comma-separated numbers, got {text!r}") from None
    if not vals or any(not (v > 0 and np.isfinite(v)) for v in vals):
        raise UserError(f"{name}: expected positive numbers, got {text!r}")
    return vals


def _progress(iterable: Any, **kw: Any) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, file=sys.stderr, **kw)


def _caps(items: list[str] | None, name: str, low: int) -> list[tuple[int, int]]:
    """``["17:5", "21:1"]`` -> ``[(21, 1), (17, 5)]`` (largest threshold first)."""
    out = []
    for item in items or []:
        try:
            d_text, n_text = item.split(":")
            d, n = int(d_text), int(n_text)
        except ValueError:
            raise UserError(f"{name}: expected D:N with integers (e.g. 17:5), got {item!r}") from None
        if d < 1 or n < low:
            raise UserError(f"{name}: expected D >= 1 and N >= {low} in D:N, got {item!r}")
        out.append((d, n))
    return sorted(out, reverse=True)


def _cap_for(d: int, caps: list[tuple[int, int]], default: int | None) -> int | None:
    return next((n for thr, n in caps if d >= thr), default)


def _cmd_gap(args: argparse.Namespace) -> int:
    from .. import quantum as qq
    from ..quantum.capture import capture_problems

    Ts = _floats(args.T, "--T")
    if args.images < 1 or args.images > 1000:
        raise UserError(f"--images: expected an integer in [1, 1000], got {args.images}")
    if args.max_d < 1 or args.max_d > qq.DEFAULT_MAX_QUBITS:
        raise UserError(f"--max-d: expected an integer in [1, {qq.DEFAULT_MAX_QUBITS}], got {args.max_d}")
    if args.min_d < 2 or args.min_d > args.max_d:
        raise UserError(f"--min-d: expected an integer in [2, --max-d = {args.max_d}], got {args.min_d}")
    if args.s_points < 3:
        raise UserError(f"--s-points: expected an integer >= 3, got {args.s_points}")
    if args.k is not None and args.k < 1:
        raise UserError(f"--k: expected an integer >= 1, got {args.k}")
    if args.pool is not None and args.pool < 2:
        raise UserError(f"--pool: expected an integer >= 2, got {args.pool}")
    if args.candidates is not None and args.candidates < 1:
        raise UserError(f"--candidates: expected an integer >= 1, got {args.candidates}")
    if not (args.spectrum_tol > 0 and np.isfinite(args.spectrum_tol)):
        raise UserError(f"--spectrum-tol: expected a positive number, got {args.spectrum_tol}")
    spectra_caps = _caps(args.spectra_cap, "--spectra-cap", 0)
    problem_caps = _caps(args.problems_cap, "--problems-cap", 1)
    problem_skips = _caps(args.problems_skip, "--problems-skip", 0)
    s_caps = _caps(args.s_points_cap, "--s-points-cap", 3)
    if args.encoding != "both" and args.k is None:
        raise UserError(f"--encoding {args.encoding}: needs --k (the encodings of exactly-k problems)")
    encodings = (["penalty", "xy"] if args.encoding == "both" else [args.encoding]) if args.k is not None else ["none"]
    out = Path(args.out)
    _prepare_out(out, [out / f for f in _FILES])
    rows: list[dict[str, Any]] = []
    spectra: list[tuple[str, Any]] = []
    timing: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for model in args.model:
        try:
            cap = capture_problems(model, args.images, dataset=args.dataset, k=args.k, candidates=args.candidates, pool=args.pool)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        keep = [i for i, p in enumerate(cap.problems) if args.min_d <= p.num_variables <= args.max_d and (args.k is None or p.num_variables > args.k)]
        if not keep:
            continue
        by_d: dict[int, list[int]] = {}
        for i in keep:
            by_d.setdefault(cap.problems[i].num_variables, []).append(i)
        for d, idx in list(by_d.items()):
            idx = idx[_cap_for(d, problem_skips, 0):]
            limit = _cap_for(d, problem_caps, None)
            by_d[d] = idx if limit is None else idx[:limit]
            if not by_d[d]:
                del by_d[d]
        if not by_d:
            continue
        for enc in encodings:
            kw: dict[str, Any] = {"hamiltonian": args.hamiltonian, "num_threads": args.threads}
            if enc != "none":
                kw["encoding"] = enc
            model_gaps: list[tuple[int, Any]] = []
            for d in _progress(sorted(by_d), desc=f"{model} {enc}: d", unit="d"):
                idx = by_d[d]
                probs = [cap.problems[i] for i in idx]
                n_gap = _cap_for(d, spectra_caps, len(idx))
                n_gap = len(idx) if n_gap is None else min(n_gap, len(idx))
                s_pts = _cap_for(d, s_caps, args.s_points)
                tg = time.perf_counter()
                gaps = qq.min_gap_batch(probs[:n_gap], s_points=s_pts, tol=args.spectrum_tol, **kw) if n_gap else []
                ta = time.perf_counter()
                res = qq.anneal_batch(probs, Ts, seed=args.seed, **kw)
                timing.append({"model": model, "encoding": enc, "d": d, "problems": len(idx), "spectra": n_gap, "s_points": s_pts,
                               "spectrum_seconds": ta - tg, "anneal_seconds": time.perf_counter() - ta})
                for j, i in enumerate(idx):
                    g = gaps[j] if j < n_gap else None
                    row = {
                        "model": model, "dataset": cap.dataset, "image": int(cap.indices[i]), "label": int(cap.labels[i]), "d": d,
                        "encoding": enc, "hamiltonian": args.hamiltonian, "ground_count": int(res.ground_count[j, 0]),
                        "delta_min": g.delta_min if g else float("nan"), "s_star": g.s_star if g else float("nan"),
                        "plain_delta_min": g.plain_delta_min if g else float("nan"),
                    }
                    for t_i, T in enumerate(Ts):
                        row[f"success_T{T:g}"] = float(res.success[j, t_i])
                        row[f"overlap_lowest_T{T:g}"] = float(res.overlap_lowest[j, t_i])
                        row[f"shot_success_T{T:g}"] = bool(res.shot_success[j, t_i])
                    rows.append(row)
                model_gaps.extend((i, g) for i, g in zip(idx, gaps))
            if model_gaps:
                model_gaps.sort(key=lambda x: x[1].delta_min)
                for what, (i, g) in (("smallest", model_gaps[0]), ("median", model_gaps[len(model_gaps) // 2])):
                    spectra.append((f"{model} {enc}: {what} gap (d={cap.problems[i].num_variables})", g.spectrum))
    if not rows:
        raise UserError("no captured problem fits --min-d..--max-d (and exceeds --k, and is left by --problems-skip); widen them")
    with (out / "gap_table.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary = _summary(rows, Ts, args, time.perf_counter() - t0)
    summary["timing_by_d"] = timing
    (out / "gap_summary.json").write_text(json.dumps(_jsonable(summary), indent=2))
    _plots(rows, Ts, spectra, out, args.hamiltonian)
    print(_table(summary))
    print(f"qfsel gap: wrote {', '.join(_FILES)} to {out}")
    return 0


def _summary(rows: list[dict], Ts: list[float], args: argparse.Namespace, seconds: float) -> dict:
    out: dict[str, Any] = {"hamiltonian": args.hamiltonian, "images_per_model": args.images, "T": Ts, "k": args.k, "seconds": seconds, "groups": []}
    for model in dict.fromkeys(r["model"] for r in rows):
        for enc in dict.fromkeys(r["encoding"] for r in rows):
            rs = [r for r in rows if r["model"] == model and r["encoding"] == enc]
            if not rs:
                continue
            g = np.array([r["delta_min"] for r in rs if np.isfinite(r["delta_min"])])
            pg = np.array([r["plain_delta_min"] for r in rs if np.isfinite(r["plain_delta_min"])])
            entry = {
                "model": model, "encoding": enc, "problems": len(rs), "d_range": [min(r["d"] for r in rs), max(r["d"] for r in rs)],
                "degenerate_problems": sum(r["ground_count"] > 1 for r in rs),
                "gap_problems": int(g.size),
                "delta_min_median": float(np.median(g)) if g.size else float("nan"),
                "delta_min_range": [float(g.min()), float(g.max())] if g.size else [float("nan")] * 2,
                "plain_delta_min_median": float(np.median(pg)) if pg.size else float("nan"),
                "median_success": {f"{T:g}": float(np.median([r[f"success_T{T:g}"] for r in rs])) for T in Ts},
                "shot_success_rate": {f"{T:g}": float(np.mean([r[f"shot_success_T{T:g}"] for r in rs])) for T in Ts},
            }
            out["groups"].append(entry)
    return out


def _table(summary: dict) -> str:
    lines = [f"Hamiltonian form: {summary['hamiltonian']}", "model              enc      n   d      Dmin med  [min, max]          succ@T (median)"]
    for g in summary["groups"]:
        succ = " ".join(f"T{t}:{v:.2f}" for t, v in g["median_success"].items())
        lines.append(
            f"{g['model']:<18} {g['encoding']:<8} {g['problems']:<3} {g['d_range'][0]}-{g['d_range'][1]:<4} "
            f"{g['delta_min_median']:.4f}  [{g['delta_min_range'][0]:.4f}, {g['delta_min_range'][1]:.4f}]  {succ}"
        )
    return "\n".join(lines)


def _plots(rows: list[dict], Ts: list[float], spectra: list, out: Path, form: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((r["model"], r["encoding"]) for r in rows))
    label = lambda m, e: m if e == "none" else f"{m} ({e})"  # noqa: E731
    fig, ax = plt.subplots(figsize=(6, 4))
    allg = np.array([r["delta_min"] for r in rows if np.isfinite(r["delta_min"])])
    if allg.size:
        bins = [float(b) for b in np.logspace(np.log10(max(allg.min(), 1e-4)), np.log10(allg.max() * 1.05), 30)]
        for m, e in groups:
            ax.hist([r["delta_min"] for r in rows if (r["model"], r["encoding"]) == (m, e) and np.isfinite(r["delta_min"])], bins=bins, alpha=0.5, label=label(m, e))
    ax.axvline(0.09, color="k", ls="--", lw=1, label="paper median 0.09")
    ax.set_xscale("log")
    ax.set_xlabel("minimum gap $\\Delta_{min}$ (degeneracy-aware)")
    ax.set_ylabel("problems")
    ax.set_title(f"Minimum gaps, Hamiltonian form '{form}'")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "gap_histogram.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, e in groups:
        rs = [r for r in rows if (r["model"], r["encoding"]) == (m, e)]
        ax.plot(Ts, [np.median([r[f"success_T{T:g}"] for r in rs]) for T in Ts], "o-", label=label(m, e))
    ax.set_xlabel("anneal time T")
    ax.set_ylabel("median success probability")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Success vs T, form '{form}'")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "success_vs_T.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    shown = [T for T in Ts if T in (10.0, 50.0, 100.0)] or Ts[:3]
    for m, e in groups:
        rs = [r for r in rows if (r["model"], r["encoding"]) == (m, e)]
        ds = sorted({r["d"] for r in rs})
        for T in shown:
            med = [np.median([r[f"success_T{T:g}"] for r in rs if r["d"] == d]) for d in ds]
            ax.plot(ds, med, "o-", ms=3, label=f"{label(m, e)}, T={T:g}")
    dd = np.linspace(1, max(r["d"] for r in rows), 100)
    ax.plot(dd, 0.90 * np.exp(-0.35 * dd) - 0.03, "k--", lw=1, label="paper fit T=10: 0.90 exp(-0.35 d) - 0.03")
    ax.set_xlabel("qubits d")
    ax.set_ylabel("median success probability")
    ax.set_ylim(-0.05, 1.02)
    ax.set_title(f"Success vs d, form '{form}'")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "success_vs_d.png", dpi=120)
    plt.close(fig)

    n = min(len(spectra), 6)
    if n == 0:  # every spectrum skipped (--spectra-cap D:0): say so instead of failing after the anneals
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no spectra computed\n(--spectra-cap D:0 for every d of this run)", ha="center", va="center", fontsize=9)
        fig.savefig(out / "spectrum_examples.png", dpi=120)
        plt.close(fig)
        return
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
    for ax, (title, sp) in zip(axes[0], spectra[:n]):
        e = sp.energies - sp.energies[:, :1]
        for lvl in range(e.shape[1]):
            ax.plot(sp.s, e[:, lvl], lw=1)
        ax.set_title(title, fontsize=7)
        ax.set_xlabel("s")
        ax.set_ylabel("$E_l - E_0$")
    fig.suptitle(f"Lowest levels of H(s), form '{form}'", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "spectrum_examples.png", dpi=120)
    plt.close(fig)


def register(sub: Any) -> None:
    from ..models import BUNDLED_MODELS
    from ..quantum.capture import DATASETS

    p = sub.add_parser(
        "gap",
        help="minimum gaps and anneal success of problems captured from the bundled models",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--model", nargs="+", default=["narrow-mnist-16"], choices=list(BUNDLED_MODELS), metavar="MODEL",
                   help=f"bundled models: {', '.join(BUNDLED_MODELS)} (default narrow-mnist-16)")
    p.add_argument("--dataset", default=None, choices=list(DATASETS),
                   help="test images: mnist, shapes (1000 test images, seed 0) or photos (default: each model's own: "
                        "shapes for shapes-paper-N, photos for efficientnet-lite0, mnist otherwise)")
    p.add_argument("--pool", type=int, default=None,
                   help="test images loaded before choosing --images correct ones (default all MNIST test images, 1000 shapes, all photos)")
    p.add_argument("--candidates", type=int, default=None,
                   help="keep only the N most relevant maps as qubits (default all positive maps; 64 for efficientnet-lite0)")
    p.add_argument("--images", type=int, default=200, help="correctly classified test images per model (default 200)")
    p.add_argument("--T", default="10,30,50,70,100", help="anneal times, comma-separated (default the paper's 10,30,50,70,100)")
    p.add_argument("--hamiltonian", default="text", choices=["text", "script4", "script8"], help="problem Hamiltonian form (default the paper's text)")
    p.add_argument("--k", type=int, default=None, help="exactly-k problems, compared in both encodings (penalty and XY mixer)")
    p.add_argument("--max-d", type=int, default=16, help="skip problems with more qubits (default 16)")
    p.add_argument("--min-d", type=int, default=2, help="skip problems with fewer qubits (default 2)")
    p.add_argument("--s-points", type=int, default=101, help="s grid of the spectra (default 101)")
    p.add_argument("--encoding", default="both", choices=["both", "penalty", "xy"],
                   help="with --k: the encodings compared (default both)")
    p.add_argument("--problems-cap", action="append", metavar="D:N",
                   help="for d >= D keep only the first N problems of each d (spectra and anneals); repeatable")
    p.add_argument("--problems-skip", action="append", metavar="D:N",
                   help="for d >= D skip the first N problems of each d (before --problems-cap), e.g. to split the costly "
                        "large-d problems over several runs; repeatable, the largest D that applies wins")
    p.add_argument("--spectra-cap", action="append", metavar="D:N",
                   help="for d >= D compute the spectrum and minimum gap of only the first N problems of each d "
                        "(the anneals still run on all); repeatable, the largest D that applies wins")
    p.add_argument("--s-points-cap", action="append", metavar="D:S",
                   help="for d >= D use an S-point s grid (then refined around its minimum as always); repeatable")
    p.add_argument("--spectrum-tol", type=float, default=1e-9, help="Lanczos residual tolerance of the spectra (default 1e-9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the d^2-shot readout")
    p.add_argument("--threads", type=int, default=None, help="threads (default all cores)")
    p.add_argument("--out", default="qfsel-gap", help="output folder (default qfsel-gap)")
    p.set_defaults(func=_cmd_gap)

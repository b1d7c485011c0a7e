"""``qfsel gap``: minimum gaps and anneal success on problems captured from the bundled MNIST models.

For each model, QFS-CAM (:func:`qfsel.explain_all`) explains ``--images`` correctly classified
test images (the same number per class, as the paper); each image's problem (the ``d`` maps
with a positive GradCAM weight) is then annealed exactly. Writes into ``--out``:

* ``gap_table.csv``: one row per problem and encoding (d, ground-manifold size, Delta_min, s*,
  the paper's plain E1-E0, success and d^2-shot readout at every T);
* ``gap_histogram.png``, ``success_vs_T.png``, ``success_vs_d.png`` (with the paper's fit
  ``0.90 exp(-0.35 d) - 0.03`` at T = 10), ``spectrum_examples.png``;
* ``gap_summary.json``: medians and ranges, the Hamiltonian form and the command's settings.
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


def _cmd_gap(args: argparse.Namespace) -> int:
    from .. import quantum as qq
    from ..quantum.capture import capture_problems

    Ts = _floats(args.T, "--T")
    if args.images < 1 or args.images > 1000:
        raise UserError(f"--images: expected an integer in [1, 1000], got {args.images}")
    if args.max_d < 1 or args.max_d > qq.DEFAULT_MAX_QUBITS:
        raise UserError(f"--max-d: expected an integer in [1, {qq.DEFAULT_MAX_QUBITS}], got {args.max_d}")
    if args.s_points < 3:
        raise UserError(f"--s-points: expected an integer >= 3, got {args.s_points}")
    if args.k is not None and args.k < 1:
        raise UserError(f"--k: expected an integer >= 1, got {args.k}")
    encodings = ["penalty", "xy"] if args.k is not None else ["none"]
    out = Path(args.out)
    _prepare_out(out, [out / f for f in _FILES])
    rows: list[dict[str, Any]] = []
    spectra: list[tuple[str, Any]] = []
    t0 = time.perf_counter()
    for model in _progress(args.model, desc="models", unit="model"):
        cap = capture_problems(model, args.images, k=args.k)
        keep = [i for i, p in enumerate(cap.problems) if p.num_variables <= args.max_d and (args.k is None or p.num_variables > args.k) and p.num_variables >= 2]
        if not keep:
            continue
        probs = [cap.problems[i] for i in keep]
        for enc in encodings:
            kw: dict[str, Any] = {"hamiltonian": args.hamiltonian, "num_threads": args.threads}
            if enc != "none":
                kw["encoding"] = enc
            gaps = qq.min_gap_batch(probs, s_points=args.s_points, **kw)
            res = qq.anneal_batch(probs, Ts, seed=args.seed, **kw)
            for j, (i, g) in enumerate(zip(keep, gaps)):
                row = {
                    "model": model, "image": int(cap.indices[i]), "label": int(cap.labels[i]), "d": probs[j].num_variables,
                    "encoding": enc, "hamiltonian": args.hamiltonian, "ground_count": g.ground_count,
                    "delta_min": g.delta_min, "s_star": g.s_star, "plain_delta_min": g.plain_delta_min,
                }
                for t_i, T in enumerate(Ts):
                    row[f"success_T{T:g}"] = float(res.success[j, t_i])
                    row[f"overlap_lowest_T{T:g}"] = float(res.overlap_lowest[j, t_i])
                    row[f"shot_success_T{T:g}"] = bool(res.shot_success[j, t_i])
                rows.append(row)
            order = np.argsort([g.delta_min for g in gaps])
            spectra.append((f"{model} {enc}: smallest gap (d={probs[order[0]].num_variables})", gaps[order[0]].spectrum))
            spectra.append((f"{model} {enc}: median gap (d={probs[order[len(order) // 2]].num_variables})", gaps[order[len(order) // 2]].spectrum))
    if not rows:
        raise UserError("no captured problem fits --max-d (and exceeds --k); raise --max-d")
    with (out / "gap_table.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary = _summary(rows, Ts, args, time.perf_counter() - t0)
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
            g = np.array([r["delta_min"] for r in rs])
            pg = np.array([r["plain_delta_min"] for r in rs])
            entry = {
                "model": model, "encoding": enc, "problems": len(rs), "d_range": [min(r["d"] for r in rs), max(r["d"] for r in rs)],
                "degenerate_problems": sum(r["ground_count"] > 1 for r in rs),
                "delta_min_median": float(np.median(g)), "delta_min_range": [float(g.min()), float(g.max())],
                "plain_delta_min_median": float(np.median(pg)),
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
    allg = np.array([r["delta_min"] for r in rows])
    bins = [float(b) for b in np.logspace(np.log10(max(allg.min(), 1e-4)), np.log10(allg.max() * 1.05), 30)]
    for m, e in groups:
        ax.hist([r["delta_min"] for r in rows if (r["model"], r["encoding"]) == (m, e)], bins=bins, alpha=0.5, label=label(m, e))
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
    p = sub.add_parser(
        "gap",
        help="minimum gaps and anneal success of problems captured from the bundled MNIST models",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--model", nargs="+", default=["narrow-mnist-16"], choices=["narrow-mnist-16", "narrow-mnist-24", "narrow-mnist-32"])
    p.add_argument("--images", type=int, default=200, help="correctly classified test images per model (default 200)")
    p.add_argument("--T", default="10,30,50,70,100", help="anneal times, comma-separated (default the paper's 10,30,50,70,100)")
    p.add_argument("--hamiltonian", default="text", choices=["text", "script4", "script8"], help="problem Hamiltonian form (default the paper's text)")
    p.add_argument("--k", type=int, default=None, help="exactly-k problems, compared in both encodings (penalty and XY mixer)")
    p.add_argument("--max-d", type=int, default=16, help="skip problems with more qubits (default 16)")
    p.add_argument("--s-points", type=int, default=101, help="s grid of the spectra (default 101)")
    p.add_argument("--seed", type=int, default=0, help="seed of the d^2-shot readout")
    p.add_argument("--threads", type=int, default=None, help="threads (default all cores)")
    p.add_argument("--out", default="qfsel-gap", help="output folder (default qfsel-gap)")
    p.set_defaults(func=_cmd_gap)

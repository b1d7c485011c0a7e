"""Markdown tables and comparison figures of `qfsel gap` runs (docs/quantum.md).

    python tools/gap_tables.py by-d TABLE.csv [TABLE.csv ...]
        per model, encoding and d: problems, spectra, median Delta_min, s* >= 0.99 share,
        median success at T = 10 / 50 / 100 beside the paper's T = 10 fit, d^2-shot rate at T = 10
    python tools/gap_tables.py k3 PENALTY.csv [PENALTY.csv ...] XY.csv
        penalty vs XY mixer on the same problems (matched by model and image); the last file is the XY run
    python tools/gap_tables.py k3-figure OUT.png TABLE.csv [TABLE.csv ...]
        median success vs d at T = 10 / 50 / 100, penalty (dashed) and XY (solid) per model
    python tools/gap_tables.py summary TABLE.csv [TABLE.csv ...]
        one line per model, encoding and form: problems (gaps), d range, median and 5-95% of
        Delta_min, median success at T = 50 / 100, the largest distance from the T = 10 fit
    python tools/gap_tables.py forms TABLE.csv [TABLE.csv ...]
        per model and d: form "text" beside form "script4" (problems, gaps, medians, the median
        per-problem gap ratio, median success at T = 10 / 50 / 100)
    python tools/gap_tables.py forms-figure OUT.png TABLE.csv [TABLE.csv ...]
        median Delta_min and median success at T = 10, 100 against d, both forms, per model
    python tools/gap_tables.py figures OUT_PREFIX TABLE.csv [TABLE.csv ...]
        OUT_PREFIX_gap_vs_d.png (every problem's Delta_min against d, medians, the paper's median
        and range) and OUT_PREFIX_success_vs_d.png (median success at T = 10 against d, the fit)
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict

import numpy as np


def fit(d: float) -> float:
    return 0.90 * np.exp(-0.35 * d) - 0.03


def load(paths: list[str]) -> list[dict]:
    rows = []
    for p in paths:
        with open(p) as fh:
            for r in csv.DictReader(fh):
                r["d"] = int(r["d"])
                for k, v in list(r.items()):
                    if k.startswith(("delta_min", "s_star", "plain_delta_min", "success_T")):
                        r[k] = float(v) if v not in ("", "nan") else float("nan")
                rows.append(r)
    # one row per (model, image, encoding, form): a row with a spectrum wins over one without, and
    # among rows with spectra the later file's (so list a rerun on a finer grid after the first run)
    best: dict = {}
    for r in rows:
        key = (r["model"], r["image"], r["encoding"], r["hamiltonian"])
        if key not in best or np.isfinite(r["delta_min"]) or not np.isfinite(best[key]["delta_min"]):
            best[key] = r
    return list(best.values())


def med(values: list[float]) -> float:
    v = np.array([x for x in values if np.isfinite(x)])
    return float(np.median(v)) if v.size else float("nan")


def f3(x: float) -> str:
    return "-" if not np.isfinite(x) else (f"{x:.3f}" if abs(x) >= 0.001 or x == 0 else f"{x:.1e}")


def by_d(rows: list[dict]) -> None:
    groups: dict = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["encoding"], r["hamiltonian"], r["d"])].append(r)
    last = None
    for (model, enc, form, d), rs in sorted(groups.items()):
        if (model, enc, form) != last:
            last = (model, enc, form)
            print(f"\n{model}, encoding {enc}, form {form}\n")
            print("| d | problems | spectra | median Delta_min | s* >= 0.99 | P(T=10) | paper fit T=10 | P(T=50) | P(T=100) | d^2 shots succeed, T=10 |")
            print("|---|---|---|---|---|---|---|---|---|---|")
        g = [r["delta_min"] for r in rs if np.isfinite(r["delta_min"])]
        late = [r["s_star"] >= 0.99 for r in rs if np.isfinite(r["s_star"])]
        shots = np.mean([r["shot_success_T10"] == "True" for r in rs]) if "shot_success_T10" in rs[0] else float("nan")
        print(f"| {d} | {len(rs)} | {len(g)} | {f3(med(g))} | {f'{np.mean(late):.0%}' if late else '-'} | "
              f"{f3(med([r['success_T10'] for r in rs]))} | {f3(fit(d))} | {f3(med([r['success_T50'] for r in rs]))} | "
              f"{f3(med([r['success_T100'] for r in rs]))} | {shots:.2f} |")
    for (model, enc, form) in dict.fromkeys((r["model"], r["encoding"], r["hamiltonian"]) for r in rows):
        mine = [r for r in rows if (r["model"], r["encoding"], r["hamiltonian"]) == (model, enc, form)]
        g = np.array([r["delta_min"] for r in mine if np.isfinite(r["delta_min"])])
        if g.size:
            q5, q95 = np.percentile(g, [5, 95])
            print(f"\n{model} {enc} {form}: {g.size} gaps, median {np.median(g):.4f}, range {g.min():.2g} - {g.max():.2g}, "
                  f"5-95% {q5:.2g} - {q95:.2g}, degenerate {sum(int(r['ground_count']) > 1 for r in mine)}")


def forms(rows: list[dict], first: str = "text", second: str = "script4") -> None:
    """Per model and d: the two Hamiltonian forms side by side, and the per-problem gap ratio."""
    by: dict = defaultdict(dict)
    for r in rows:
        if r["hamiltonian"] in (first, second):
            by[(r["model"], r["d"])].setdefault(r["hamiltonian"], {})[r["image"]] = r
    print(f"\n| model | d | problems {first} / {second} | gaps {first} / {second} | median Delta_min {first} / {second} | "
          f"median gap ratio {second}/{first} (problems with both) | P(T=10) | P(T=50) | P(T=100) |")
    print("|---|---|---|---|---|---|---|---|---|")
    last = None
    for (model, d), fs in sorted(by.items()):
        a, b = fs.get(first, {}), fs.get(second, {})
        ga = [r["delta_min"] for r in a.values() if np.isfinite(r["delta_min"])]
        gb = [r["delta_min"] for r in b.values() if np.isfinite(r["delta_min"])]
        ratio = [b[i]["delta_min"] / a[i]["delta_min"] for i in set(a) & set(b)
                 if np.isfinite(a[i]["delta_min"]) and np.isfinite(b[i]["delta_min"])]
        cells = [f"{f3(med([r[f'success_T{T}'] for r in a.values()]))} / {f3(med([r[f'success_T{T}'] for r in b.values()]))}" for T in (10, 50, 100)]
        rr = f"{np.median(ratio):.2f} ({len(ratio)})" if ratio else "-"
        print(f"| {model if model != last else ''} | {d} | {len(a)} / {len(b)} | {len(ga)} / {len(gb)} | {f3(med(ga))} / {f3(med(gb))} | {rr} | " + " | ".join(cells) + " |")
        last = model
    for form in (first, second):
        for model in dict.fromkeys(r["model"] for r in rows):
            g = np.array([r["delta_min"] for r in rows if r["model"] == model and r["hamiltonian"] == form and np.isfinite(r["delta_min"])])
            if g.size:
                q5, q95 = np.percentile(g, [5, 95])
                late = np.mean([r["s_star"] >= 0.99 for r in rows if r["model"] == model and r["hamiltonian"] == form and np.isfinite(r["s_star"])])
                print(f"{form} {model}: {g.size} gaps, median {np.median(g):.4f}, range {g.min():.2g} - {g.max():.2g}, 5-95% {q5:.2g} - {q95:.2g}, "
                      f"s*>=0.99 {late:.0%}")


def summary(rows: list[dict]) -> None:
    """One line per model, encoding and form: the columns of docs/quantum.md's side-by-side table."""
    print("| model | form | problems (gaps) | d | median Delta_min | 5-95% of Delta_min | median P(T=50) / P(T=100), all problems | "
          "largest gap of median P(T=10) from the paper's fit (d >= 3) |")
    print("|---|---|---|---|---|---|---|---|")
    for key in dict.fromkeys((r["model"], r["encoding"], r["hamiltonian"]) for r in rows):
        rs = [r for r in rows if (r["model"], r["encoding"], r["hamiltonian"]) == key]
        g = np.array([r["delta_min"] for r in rs if np.isfinite(r["delta_min"])])
        q5, q95 = np.percentile(g, [5, 95]) if g.size else (float("nan"),) * 2
        ds = sorted({r["d"] for r in rs})
        dev = [(abs(med([r["success_T10"] for r in rs if r["d"] == d]) - fit(d)), d) for d in ds if d >= 3]
        worst = max(dev) if dev else (float("nan"), 0)
        print(f"| {key[0]}{'' if key[1] == 'none' else ' ' + key[1]} | {key[2]} | {len(rs)} ({g.size}) | {ds[0]}-{ds[-1]} | {f3(med(list(g)))} | "
              f"{f3(q5)} - {f3(q95)} | {med([r['success_T50'] for r in rs]):.2f} / {med([r['success_T100'] for r in rs]):.2f} | "
              f"{worst[0]:.3f} (d = {worst[1]}) |")


def forms_figure(path: str, rows: list[dict], first: str = "text", second: str = "script4") -> None:
    """Median Delta_min and median success at T = 10 / 100 against d, both forms (solid / dashed) per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
    axes[0].axhspan(0.002, 0.25, color="0.92")
    axes[0].axhline(0.09, color="k", ls=":", lw=1, label="paper median ~0.09 (range shaded)")
    for m in models:
        for form, ls in ((first, "-"), (second, "--")):
            rs = [r for r in rows if r["model"] == m and r["hamiltonian"] == form]
            if not rs:
                continue
            ds = sorted({r["d"] for r in rs if np.isfinite(r["delta_min"])})
            axes[0].plot(ds, [med([r["delta_min"] for r in rs if r["d"] == d]) for d in ds], ls, marker="o", ms=3, color=colors[m], label=f"{m} {form}")
            ds = sorted({r["d"] for r in rs})
            for ax, T in zip(axes[1:], (10, 100)):
                ax.plot(ds, [med([r[f"success_T{T}"] for r in rs if r["d"] == d]) for d in ds], ls, marker="o", ms=3, color=colors[m])
    dd = np.linspace(2, 9.6, 100)  # the fit is negative beyond d = 9.7
    axes[1].plot(dd, fit(dd), "k:", lw=1.2, label="paper fit 0.90 exp(-0.35 d) - 0.03 (> 0 up to d = 9.7)")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("median $\\Delta_{min}$")
    axes[1].set_ylabel("median success")
    axes[1].set_yscale("log")
    axes[0].set_title("minimum gap", fontsize=9)
    axes[1].set_title("success, T = 10", fontsize=9)
    axes[2].set_title("success, T = 100", fontsize=9)
    for ax in axes:
        ax.set_xlabel("qubits d")
    axes[0].legend(fontsize=5)
    axes[1].legend(fontsize=6)
    fig.suptitle(f"Hamiltonian form '{first}' (solid) vs '{second}' (dashed), paper schedule, 1/d driver", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def k3(pen: list[dict], xy: list[dict]) -> None:
    xs = {(r["model"], r["image"]): r for r in xy}
    groups: dict = defaultdict(list)
    for r in pen:
        if (r["model"], r["image"]) in xs:
            groups[(r["model"], r["d"])].append((r, xs[(r["model"], r["image"])]))
    last = None
    for (model, d), pairs in sorted(groups.items()):
        if model != last:
            last = model
            print(f"\n{model}, k = 3, form {pairs[0][0]['hamiltonian']}\n")
            print("| d | problems (anneals) | gaps both | median Delta_min, penalty | median Delta_min, XY | XY gap larger | P(T=10) penalty / XY | P(T=50) | P(T=100) |")
            print("|---|---|---|---|---|---|---|---|---|")
        both = [(p, x) for p, x in pairs if np.isfinite(p["delta_min"]) and np.isfinite(x["delta_min"])]
        larger = f"{np.mean([x['delta_min'] > p['delta_min'] for p, x in both]):.0%}" if both else "-"
        cells = [f"{f3(med([p[f'success_T{T}'] for p, _ in pairs]))} / {f3(med([x[f'success_T{T}'] for _, x in pairs]))}" for T in (10, 50, 100)]
        print(f"| {d} | {len(pairs)} | {len(both)} | {f3(med([p['delta_min'] for p, _ in both]))} | "
              f"{f3(med([x['delta_min'] for _, x in both]))} | {larger} | " + " | ".join(cells) + " |")
    # XY alone on every problem it ran (the penalty run may be capped)
    xg: dict = defaultdict(list)
    for r in xy:
        xg[(r["model"], r["d"])].append(r)
    print("\nXY mixer on all its problems\n")
    print("| model | d | problems | median Delta_min | P(T=10) | P(T=50) | P(T=100) |")
    print("|---|---|---|---|---|---|---|")
    for (model, d), rs in sorted(xg.items()):
        print(f"| {model} | {d} | {len(rs)} | {f3(med([r['delta_min'] for r in rs]))} | "
              + " | ".join(f3(med([r[f'success_T{T}'] for r in rs])) for T in (10, 50, 100)) + " |")


def figures(prefix: str, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.axhspan(0.002, 0.25, color="0.9", label="paper's range ~0.002-0.25")
    ax.axhline(0.09, color="k", ls="--", lw=1, label="paper's median ~0.09")
    for i, m in enumerate(models):
        rs = [r for r in rows if r["model"] == m and np.isfinite(r["delta_min"])]
        off = (i - (len(models) - 1) / 2) * 0.12
        ax.scatter([r["d"] + off for r in rs], [r["delta_min"] for r in rs], s=5, alpha=0.35, color=colors[m])
        ds = sorted({r["d"] for r in rs})
        ax.plot([d + off for d in ds], [med([r["delta_min"] for r in rs if r["d"] == d]) for d in ds], "o-", ms=4, color=colors[m], label=m)
    ax.set_yscale("log")
    ax.set_xlabel("qubits d")
    ax.set_ylabel("$\\Delta_{min}$ (dots: problems; lines: medians)")
    ax.set_title(f"Minimum gap vs d, form '{rows[0]['hamiltonian']}'", fontsize=9)
    ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(f"{prefix}_gap_vs_d.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), sharey=True)
    for ax, T in zip(axes, (10, 50, 100)):
        for m in models:
            rs = [r for r in rows if r["model"] == m]
            ds = sorted({r["d"] for r in rs})
            ax.plot(ds, [med([r[f"success_T{T}"] for r in rs if r["d"] == d]) for d in ds], "o-", ms=3, color=colors[m], label=m)
        if T == 10:
            dd = np.linspace(2, max(r["d"] for r in rows), 100)
            ax.plot(dd, fit(dd), "k--", lw=1, label="paper fit 0.90 exp(-0.35 d) - 0.03")
        ax.set_title(f"T = {T}", fontsize=9)
        ax.set_xlabel("qubits d")
    axes[0].set_ylabel("median success probability")
    axes[0].legend(fontsize=6)
    fig.suptitle(f"Median success vs d, form '{rows[0]['hamiltonian']}'", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{prefix}_success_vs_d.png", dpi=100)
    plt.close(fig)


def k3_figure(path: str, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), sharey=True)
    for ax, T in zip(axes, (10, 50, 100)):
        for m in models:
            for enc, ls in (("penalty", "--"), ("xy", "-")):
                rs = [r for r in rows if r["model"] == m and r["encoding"] == enc]
                ds = sorted({r["d"] for r in rs})
                ax.plot(ds, [med([r[f"success_T{T}"] for r in rs if r["d"] == d]) for d in ds], ls, marker="o", ms=3,
                        color=colors[m], label=f"{m} {enc}")
        ax.set_title(f"T = {T}", fontsize=9)
        ax.set_xlabel("qubits d")
    axes[0].set_ylabel("median success (feasible optimum)")
    axes[0].legend(fontsize=5)
    fig.suptitle("Exactly k = 3: penalty + transverse field (dashed) vs XY mixer (solid), form 'text'", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "by-d":
        by_d(load(rest))
    elif cmd == "k3":
        k3(load(rest[:-1]), load(rest[-1:]))
    elif cmd == "k3-figure":
        k3_figure(rest[0], load(rest[1:]))
    elif cmd == "summary":
        summary(load(rest))
    elif cmd == "forms":
        forms(load(rest))
    elif cmd == "forms-figure":
        forms_figure(rest[0], load(rest[1:]))
    elif cmd == "figures":
        figures(rest[0], load(rest[1:]))
    else:
        raise SystemExit(__doc__)

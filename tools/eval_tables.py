"""Print Markdown tables of `qfsel evaluate` runs: python tools/eval_tables.py RUN_DIR [RUN_DIR ...]."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

LABEL = {"qfs": "QFS-CAM", "gradcam": "GradCAM", "gradcam++": "GradCAM++"}


def fmt(row: dict[str, str]) -> str:
    v, lo, hi = (float(row[k]) if row[k] not in ("", "nan") else float("nan") for k in ("value", "lo", "hi"))
    if v != v:
        return "-"
    return f"{v:.3f}" if lo != lo else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def main(dirs: list[str]) -> None:
    for d in dirs:
        folder = Path(d)
        meta = json.loads((folder / "metrics.json").read_text())
        s = meta["setup"]
        print(f"### {s['data']}\n")
        print(f"{s['n_explained']} of {s['n_images']} images explained (accuracy {s['accuracy']:.3f}), layer "
              f"`{s['layer']}` ({s['n_maps']} maps), {s['images_per_second']:.1f} images/s explained, total "
              f"{meta['seconds']:.0f} s wall on the shared machine. QFS-CAM selection: {meta.get('qfs_selection')}. "
              f"Flat maps: {meta['flat_maps']}.\n")
        rows = list(csv.DictReader(open(folder / "metrics.csv")))
        groups: dict[str, list[dict[str, str]]] = {}
        for r in rows:
            groups.setdefault(r["group"], []).append(r)
        for group, rs in groups.items():
            metrics = list(dict.fromkeys(r["metric"] for r in rs))
            cols = list(dict.fromkeys((r["method"], r["variant"]) for r in rs))
            print(f"**{group}**\n")
            print("| metric | " + " | ".join(f"{LABEL.get(m, m)} {v}".strip() for m, v in cols) + " |")
            print("|---" * (len(cols) + 1) + "|")
            for metric in metrics:
                cells = []
                for m, v in cols:
                    hit = [r for r in rs if r["metric"] == metric and r["method"] == m and r["variant"] == v]
                    cells.append(fmt(hit[0]) if hit else "")
                print(f"| {metric} | " + " | ".join(cells) + " |")
            print()
        q = meta.get("localization", {}).get("quantus_max_abs_difference")
        if q:
            print(f"Quantus cross-check (max |Quantus - qfsel| over the first 200 images): {q}\n")


if __name__ == "__main__":
    main(sys.argv[1:])

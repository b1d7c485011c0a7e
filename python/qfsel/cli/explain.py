"""``qfsel explain``: explain image files with a bundled model or a checkpoint."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from ._common import (
    _DEFAULT_OUT,
    _FILE_TAG,
    _PHOTO_CANDIDATES,
    _TITLE,
    UserError,
    _add_device_option,
    _add_qfs_options,
    _build_cam,
    _candidates_arg,
    _check_candidates,
    _check_common,
    _collect_images,
    _device,
    _effective_candidates,
    _enlarged,
    _jsonable,
    _methods,
    _prepare_out,
    _read_image,
    _run_cam,
    _unique_stems,
)


def _cmd_explain(args: argparse.Namespace) -> int:
    import torch

    from .. import viz
    from ..models import load_model, resolve_layer

    _check_common(args)
    _check_candidates(args)
    if args.batch_size < 1:
        raise UserError(f"--batch-size: expected an integer >= 1, got {args.batch_size}")
    device = _device(args.device)
    try:
        bundle = load_model(args.model)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    if args.layer is not None and not args.layer.strip():
        raise UserError("--layer: expected a layer name from model.named_modules(), got an empty string")
    layer = bundle.default_layer if args.layer is None else args.layer
    try:
        resolve_layer(bundle.model, layer)
    except ValueError as exc:
        raise UserError(f"--{exc}") from exc
    bundle.model.to(device)
    if not args.no_tune_malloc:
        from .._malloc import tune_malloc

        tune_malloc()  # one batch after another: keep the freed activations for reuse

    candidates = _effective_candidates(args.candidates, bundle.default_candidates)
    if args.k is not None and candidates is not None and args.k > candidates:
        raise UserError(
            f"--k: expected an integer <= the {candidates} candidate maps QFS-CAM keeps for {bundle.name} "
            f"(--candidates), got {args.k}; raise --candidates or pass --candidates all"
        )

    files, skipped = _collect_images(args.images)
    inputs, displays, names, conversions = [], [], [], []
    for path in files:
        try:
            image = _read_image(path)
            inputs.append(bundle.preprocess(image))
            displays.append(bundle.display(image))
            names.append(path)
        except (OSError, ValueError) as exc:
            print(f"qfsel: skipping {path}: {exc}", file=sys.stderr)
            skipped.append({"file": str(path), "reason": str(exc)})
            continue
        warning = bundle.conversion_warning(image)
        conversions.append(warning)
        if warning is not None:
            print(f"qfsel: warning: {path}: {warning}", file=sys.stderr)
    if not inputs:
        raise UserError("no readable images to explain")

    out = Path(args.out)
    methods = _methods(args.method)
    stems = _unique_stems(names)
    planned = [out / f"{stem}_{_FILE_TAG[m]}.png" for stem in stems for m in methods]
    _prepare_out(out, planned + [out / "explanations.json", out / "selections.csv"], inputs=files)
    cams = {m: _build_cam(m, bundle.model, layer, args, candidates=candidates) for m in methods}
    records: list[dict[str, Any]] = [
        {"file": str(p), "methods": {}, **({} if w is None else {"warning": w})} for p, w in zip(names, conversions)
    ]
    timing = {m: 0.0 for m in methods}
    notes: list[str] = []
    for start in range(0, len(inputs), args.batch_size):
        batch = torch.cat(inputs[start : start + args.batch_size]).to(device)
        for method in methods:
            t0 = time.perf_counter()
            try:
                result, method_notes = _run_cam(cams[method], batch)
            except ValueError as exc:  # its "sample index i" is the i-th file of this batch: name them
                files_of_batch = ", ".join(f"{j} = {names[start + j]}" for j in range(batch.shape[0]))
                raise UserError(f"{_TITLE[method]}: {exc} (sample index {files_of_batch})") from exc
            timing[method] += time.perf_counter() - t0
            notes.extend(method_notes)
            for j in range(batch.shape[0]):
                i = start + j
                rec = records[i]
                predicted = int(result.predicted[j])
                rec["predicted"] = predicted
                rec["class_name"] = bundle.class_names[predicted] if 0 <= predicted < len(bundle.class_names) else str(predicted)
                rec["score"] = float(result.scores[j])
                png = out / f"{stems[i]}_{_FILE_TAG[method]}.png"
                title = f"{rec['class_name']} - {_TITLE[method]}"
                if result.selections:
                    title += f", {len(result.selections[0].selected[j])} maps"
                viz.save_overlay(png, *_enlarged(displays[i], result.heatmaps[j]), title=title)
                entry: dict[str, Any] = {"png": png.name, "flat": bool(result.flat[j])}
                if result.selections:
                    sel = result.selections[0]
                    entry.update(
                        selected=[int(v) for v in sel.selected[j]],
                        num_selected=int(len(sel.selected[j])),
                        candidates=int(sel.d[j]),
                        energy=float(sel.energies[j]),
                        feasible=bool(sel.feasible[j]),
                        sampler=str(sel.sampler),
                    )
                rec["methods"][method] = entry
    n = len(records)
    summary = {
        "model": bundle.name,
        "layer": layer,
        "methods": methods,
        "beta": args.beta,
        "k": args.k,
        "sampler": args.sampler,
        "seed": args.seed,
        "candidates": candidates,
        "device": str(device),
        "images": records,
        "skipped": skipped,
        "seconds_per_image": {m: timing[m] / n for m in methods},
        "notes": notes,
    }
    (out / "explanations.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    with open(out / "selections.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["file", "method", "predicted", "class_name", "num_selected", "selected", "candidates", "energy", "feasible", "png"]
        )
        for rec in records:
            for method, entry in rec["methods"].items():
                writer.writerow(
                    [
                        rec["file"],
                        method,
                        rec["predicted"],
                        rec["class_name"],
                        entry.get("num_selected", ""),
                        " ".join(str(v) for v in entry.get("selected", [])),
                        entry.get("candidates", ""),
                        "" if "energy" not in entry else f"{entry['energy']:.6g}",
                        entry.get("feasible", ""),
                        entry["png"],
                    ]
                )
    for note in notes:
        print(f"qfsel: note: {note}", file=sys.stderr)
    print(f"explained {n} image(s) with {', '.join(methods)} on layer {layer!r} of {bundle.name} "
          f"({device}); skipped {len(skipped)}")
    if "qfs" in methods and candidates is not None:
        print(f"QFS-CAM candidates: top {candidates} maps by relevance")
    print(f"wrote {out}/ (PNG overlays, explanations.json, selections.csv)")
    return 0


def register(sub: Any) -> None:
    """Adds this command's parser to the ``qfsel`` subparsers."""
    ex = sub.add_parser(
        "explain",
        help="explain image files with a bundled model or a checkpoint",
        description="Explain each image's predicted class and write, to --out, one PNG overlay per "
        "image and method, explanations.json (predictions, selected maps, energies, timing) and "
        "selections.csv. Unreadable files are skipped with a message.",
    )
    ex.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                    help="image files, or folders whose image files (png, jpg, ...) are all explained")
    ex.add_argument("--model", default="narrow-mnist-16",
                    help="narrow-mnist-16, narrow-mnist-24, narrow-mnist-32, efficientnet-lite0, or a .pt "
                         "checkpoint written by python -m qfsel.train (default: narrow-mnist-16)")
    ex.add_argument("--layer", default=None, metavar="NAME",
                    help="explained layer, a name from model.named_modules() (default: head.bn for the "
                         "narrow models, _head_act for efficientnet-lite0)")
    ex.add_argument("--method", choices=["qfs", "gradcam", "gradcam++", "all"], default="all",
                    help="explanation method (default: all)")
    _add_qfs_options(ex, sampler_default="sa")
    ex.add_argument("--candidates", type=_candidates_arg, default=None, metavar="N",
                    help="QFS-CAM keeps only the N most relevant positive maps before the QUBO, or "
                         f"'all' (default: {_PHOTO_CANDIDATES} for efficientnet-lite0, as in "
                         "demo; all positive maps for the narrow MNIST models)")
    _add_device_option(ex)
    ex.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per forward/backward pass (default: 16)")
    ex.add_argument("--out", default=_DEFAULT_OUT, metavar="DIR",
                    help=f"output folder; files of the same names in it are replaced, and listed on stderr "
                         f"(default: ./{_DEFAULT_OUT})")
    ex.add_argument("--no-tune-malloc", action="store_true",
                    help="leave glibc's malloc thresholds alone (default: keep freed memory for reuse "
                         "between batches, see qfsel.tune_malloc)")
    ex.set_defaults(func=_cmd_explain)

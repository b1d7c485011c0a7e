"""The ``qfsel`` command line: ``explain``, ``demo`` and ``solve-demo``.

Entry point ``qfsel = qfsel.cli:main`` (also ``python -m qfsel``). User errors (bad
arguments, unknown layer names, missing files, an ``--out`` that cannot be written) print one
``qfsel: error: ...`` line and exit with status 2; no traceback.

Before anything is written, the files a run will write are checked: one that would replace an
input image is an error; existing files of the same names are listed on stderr
(``qfsel: note: replacing ...``) and then replaced.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np

__all__ = ["main"]

METHODS = ("qfs", "gradcam", "gradcam++")
"""Method names of ``--method`` (``all`` runs the three)."""

_FILE_TAG = {"qfs": "qfs", "gradcam": "gradcam", "gradcam++": "gradcampp"}
_TITLE = {"qfs": "QFS-CAM", "gradcam": "GradCAM", "gradcam++": "GradCAM++"}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
_DEFAULT_OUT = "qfsel-out"
_SOLVE_DEMO_MAX_ENTRIES = 2**26
"""Largest ``--batch x --k-maps^2`` of ``solve-demo`` (the redundancy matrices, 512 MiB of float64)."""


class UserError(Exception):
    """A mistake in the command line or its inputs: reported without a traceback."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _enlarged(display: np.ndarray, heatmap: np.ndarray, min_side: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Repeats the pixels of a small image and its heatmap (nearest neighbour, integer factor).

    A 28x28 MNIST overlay becomes 224x224, so the PNG is readable; images whose short side is
    already ``min_side`` or more are returned unchanged. The blending is left to :mod:`qfsel.viz`.
    """
    scale = max(1, int(math.ceil(min_side / max(1, min(display.shape[:2])))))
    if scale == 1:
        return display, heatmap
    return (
        np.repeat(np.repeat(display, scale, axis=0), scale, axis=1),
        np.repeat(np.repeat(heatmap, scale, axis=0), scale, axis=1),
    )


def _device(choice: str) -> Any:
    """``--device`` as a torch.device: ``auto`` is CUDA when available, else the CPU."""
    import torch

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise UserError(
            f"--device: cuda was asked for, but torch.cuda.is_available() is False (torch "
            f"{torch.__version__}, {built}); use --device cpu or --device auto"
        )
    return torch.device(choice)


def _check_candidates(args: argparse.Namespace) -> None:
    if args.candidates is None:
        return
    if args.candidates < 1:
        raise UserError(f"--candidates: expected an integer >= 1, got {args.candidates}")
    if args.k is not None and args.k > args.candidates:
        raise UserError(f"--k: expected an integer <= --candidates ({args.candidates}), got {args.k}")


def _prepare_out(out: Path, planned: Sequence[Path], inputs: Sequence[Path] = ()) -> None:
    """Creates the ``--out`` folder and checks the files about to be written into it.

    Raises :class:`UserError` when ``out`` is not a folder or cannot be created, when a planned
    file is a folder, or when it would replace one of ``inputs``; lists (stderr) the existing
    files that will be replaced.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: expected a folder, got {out}, an existing file; choose a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out: cannot create folder {out}: {exc.strerror or exc}") from exc
    sources = {p.resolve() for p in inputs}
    replaced = []
    for path in planned:
        if path.resolve() in sources:
            raise UserError(
                f"--out: writing {path} would replace the input image {path.name}; choose another --out"
            )
        if path.is_dir():
            raise UserError(f"--out: cannot write {path}: a folder of that name exists")
        if path.exists():
            replaced.append(path.name)
    if replaced:
        shown = ", ".join(replaced[:5]) + (f" and {len(replaced) - 5} more" if len(replaced) > 5 else "")
        print(f"qfsel: note: replacing {len(replaced)} existing file(s) in {out}: {shown}", file=sys.stderr)


_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB; 16-bit and floating-point greyscale files as floats in [0, 1].

    (PIL's ``convert("RGB")`` clips such pixels to 0..255 instead of scaling them: a 16-bit
    digit became a saturated one, a float one in [0, 1] almost black.)
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
                array = np.asarray(image, dtype=np.float64)
                top = 65535.0 if image.mode in _SIXTEEN_BIT_MODES else 1.0
                if not np.isfinite(array).all() or array.min() < 0 or array.max() > top:
                    raise ValueError(
                        f"{image.mode} pixels must lie in [0, {top:g}], got range [{array.min():.6g}, {array.max():.6g}]"
                    )
                return array / top
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from exc


def _collect_images(paths: Sequence[str]) -> tuple[list[Path], list[dict[str, str]]]:
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
            if not found:
                print(f"qfsel: note: no image files in folder {path}", file=sys.stderr)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            print(f"qfsel: skipping {path}: no such file or folder", file=sys.stderr)
            skipped.append({"file": str(path), "reason": "no such file or folder"})
    return files, skipped


def _build_cam(method: str, model: Any, layer: str, args: argparse.Namespace, *, candidates: int | None = None):
    from .cams import QFSCAM, GradCAM, GradCAMPlusPlus

    if method == "gradcam":
        return GradCAM(model, [layer])
    if method == "gradcam++":
        return GradCAMPlusPlus(model, [layer])
    return QFSCAM(
        model,
        [layer],
        beta=args.beta,
        k=args.k,
        sampler=args.sampler,
        seed=args.seed,
        candidates=candidates,
    )


def _run_cam(cam: Any, batch: Any) -> tuple[Any, list[str]]:
    """Explain ``batch``; flat-map warnings are collected and returned, not raised."""
    from .exceptions import QFSelWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QFSelWarning)
        result = cam.explain(batch)
    notes = []
    for w in caught:
        if issubclass(w.category, QFSelWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, notes


def _methods(choice: str) -> list[str]:
    return list(METHODS) if choice == "all" else [choice]


def _check_common(args: argparse.Namespace) -> None:
    if not 0.0 <= args.beta <= 1.0:
        raise UserError(f"--beta: expected a number in [0, 1], got {args.beta}")
    if args.k is not None and args.k < 1:
        raise UserError(f"--k: expected an integer >= 1, got {args.k}")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed: expected an integer >= 0, got {args.seed}")
    from . import available_solvers

    if args.sampler not in available_solvers():
        raise UserError(f"--sampler: expected one of {available_solvers()}, got {args.sampler!r}")


# --------------------------------------------------------------------------------------------
# explain
# --------------------------------------------------------------------------------------------


def _cmd_explain(args: argparse.Namespace) -> int:
    import torch

    from . import viz
    from .models import load_model, resolve_layer

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

    files, skipped = _collect_images(args.images)
    inputs, displays, names = [], [], []
    for path in files:
        try:
            image = _read_image(path)
            inputs.append(bundle.preprocess(image))
            displays.append(bundle.display(image))
            names.append(path)
        except (OSError, ValueError) as exc:
            print(f"qfsel: skipping {path}: {exc}", file=sys.stderr)
            skipped.append({"file": str(path), "reason": str(exc)})
    if not inputs:
        raise UserError("no readable images to explain")

    out = Path(args.out)
    methods = _methods(args.method)
    stems = _unique_stems(names)
    planned = [out / f"{stem}_{_FILE_TAG[m]}.png" for stem in stems for m in methods]
    _prepare_out(out, planned + [out / "explanations.json", out / "selections.csv"], inputs=files)
    cams = {m: _build_cam(m, bundle.model, layer, args, candidates=args.candidates) for m in methods}
    records: list[dict[str, Any]] = [
        {"file": str(p), "methods": {}} for p in names
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
                viz.save_overlay(png, *_enlarged(displays[i], result.heatmaps[j]))
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
        "candidates": args.candidates,
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
    if "qfs" in methods and args.candidates is not None:
        print(f"QFS-CAM candidates: top {args.candidates} maps by relevance")
    print(f"wrote {out}/ (PNG overlays, explanations.json, selections.csv)")
    return 0


def _unique_stems(paths: list[Path]) -> list[str]:
    """File stems made unique with ``-1``, ``-2``, ... (also against stems that already end so)."""
    taken: set[str] = set()
    stems = []
    for path in paths:
        base = path.stem or "image"
        stem, count = base, 0
        while stem in taken:
            count += 1
            stem = f"{base}-{count}"
        taken.add(stem)
        stems.append(stem)
    return stems


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _demo_section(
    title: str,
    bundle: Any,
    batch: Any,
    displays: list[np.ndarray],
    labels: list[str],
    args: argparse.Namespace,
    sampler: str,
    candidates: int | None,
    grid_path: Path,
) -> dict[str, Any]:
    import torch

    from . import viz

    layer = bundle.default_layer
    demo_args = argparse.Namespace(beta=args.beta, k=args.k, sampler=sampler, seed=args.seed)
    heatmaps: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    per_method: dict[str, Any] = {}
    predicted = None
    with torch.no_grad():  # warm-up pass, so the first method's time is not the model's start-up
        bundle.model(batch[:1])
    for method in METHODS:
        cam = _build_cam(method, bundle.model, layer, demo_args, candidates=candidates)
        t0 = time.perf_counter()
        result, notes = _run_cam(cam, batch)
        seconds = time.perf_counter() - t0
        predicted = result.predicted
        info: dict[str, Any] = {"seconds_per_image": seconds / len(displays), "flat_maps": int(result.flat.sum())}
        if result.selections:
            sel = result.selections[0]
            counts = sel.num_selected
            info.update(
                sampler=sel.sampler,
                candidates_per_image=[int(v) for v in sel.d],
                selected_per_image=[int(v) for v in counts],
                selected=[[int(v) for v in s] for s in sel.selected],
                energies=[float(v) for v in sel.energies],
                mean_selected=float(np.mean(counts)),
            )
            if candidates is not None:
                info["candidates_cap"] = candidates
        if notes:
            info["notes"] = notes
        per_method[method] = info
        heatmaps[_TITLE[method]] = result.heatmaps
        scores[_TITLE[method]] = result.scores
    assert predicted is not None
    pred_names = [bundle.class_names[int(p)] for p in predicted]
    viz.save_comparison_grid(
        grid_path,
        displays,
        heatmaps,
        class_names=[f"{name} ({lab})" for name, lab in zip(pred_names, labels)],
        scores=scores,
        num_selected={_TITLE["qfs"]: per_method["qfs"]["selected_per_image"]},
    )
    return {
        "title": title,
        "model": bundle.name,
        "layer": layer,
        "images": labels,
        "predicted": pred_names,
        "methods": per_method,
        "grid": grid_path.name,
    }


def _cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from . import available_solvers
    from .datasets import mnist5k, sample_photos
    from .models import load_model
    from .train import evaluate

    if not 1 <= args.n <= 100:
        raise UserError(f"--n: expected an integer in [1, 100], got {args.n}")
    if not 0.0 <= args.beta <= 1.0:
        raise UserError(f"--beta: expected a number in [0, 1], got {args.beta}")
    if args.k is not None and args.k < 1:
        raise UserError(f"--k: expected an integer >= 1, got {args.k}")
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed: expected an integer >= 0, got {args.seed}")
    _check_candidates(args)
    device = _device(args.device)
    out = Path(args.out)
    grids = ["mnist_grid.png"] + ([] if args.no_photos else ["photos_grid.png"])
    _prepare_out(out, [out / name for name in grids + ["summary.json", "summary.txt"]])
    t_start = time.perf_counter()
    solvers = available_solvers()
    summary: dict[str, Any] = {
        "beta": args.beta,
        "k": args.k,
        "seed": args.seed,
        "candidates": args.candidates,
        "device": str(device),
        "sections": [],
    }

    # --- MNIST with the narrow model (16 maps: exact search is instant) -------------------
    mnist = load_model("narrow-mnist-16")
    mnist.model.to(device)
    test_x, test_y = mnist5k("test")
    accuracy = evaluate(mnist.model, test_x.to(device), test_y.to(device))
    # one image of each digit first, in order, then the next ones
    order = torch.argsort(torch.arange(len(test_y)) % 100 * 10 + test_y, stable=True)
    pick = order[: args.n]
    displays = [np.repeat(img[0].numpy()[..., None], 3, axis=2) for img in test_x[pick]]
    batch = test_x[pick].to(device)
    labels = [f"label {int(y)}" for y in test_y[pick]]
    mnist_sampler = "exact" if "exact" in solvers else "sa"
    section = _demo_section(
        "MNIST test images, narrow-mnist-16", mnist, batch, displays, labels, args, mnist_sampler, None,
        out / "mnist_grid.png",
    )
    section["test_accuracy"] = accuracy
    section["test_images"] = int(len(test_y))
    summary["sections"].append(section)

    # --- photos with EfficientNet-Lite0 ---------------------------------------------------
    if not args.no_photos:
        photos = sample_photos()
        net = load_model("efficientnet-lite0")
        net.model.to(device)
        batch = torch.cat([net.preprocess(img) for img in photos.values()]).to(device)
        displays = [net.display(img) for img in photos.values()]
        if "sa" in solvers:
            photo_sampler, cap = "sa", args.candidates
        else:  # exhaustive search over at most the 20 most relevant maps
            photo_sampler, cap = "exact", min(args.candidates or 20, 20)
        section = _demo_section(
            "scikit-image photos, efficientnet-lite0", net, batch, displays, list(photos), args,
            photo_sampler, cap, out / "photos_grid.png",
        )
        summary["sections"].append(section)

    summary["total_seconds"] = time.perf_counter() - t_start
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    text = _summary_text(summary)
    (out / "summary.txt").write_text(text)
    print(text, end="")
    print(f"wrote {out.resolve()}/")
    return 0


def _summary_text(summary: dict[str, Any]) -> str:
    lines = [
        f"qfsel demo (beta={summary['beta']}, k={summary['k']}, seed={summary['seed']}, "
        f"device {summary['device']})",
        "",
    ]
    for sec in summary["sections"]:
        lines.append(f"{sec['title']} - layer {sec['layer']!r} - grid {sec['grid']}")
        if "test_accuracy" in sec:
            lines.append(f"  test accuracy: {sec['test_accuracy']:.4f} on {sec['test_images']} held-out images")
        lines.append("  predicted: " + ", ".join(f"{i}->{p}" for i, p in zip(sec["images"], sec["predicted"])))
        for method, info in sec["methods"].items():
            line = f"  {_TITLE[method]:<10} {1000 * info['seconds_per_image']:8.1f} ms/image"
            if "selected_per_image" in info:
                counts = info["selected_per_image"]
                line += (
                    f"   sampler {info['sampler']}: selected {min(counts)}-{max(counts)} maps "
                    f"(mean {info['mean_selected']:.1f}) of {min(info['candidates_per_image'])}-"
                    f"{max(info['candidates_per_image'])} candidates"
                )
                if "candidates_cap" in info:
                    line += f" (top {info['candidates_cap']} by relevance)"
            lines.append(line)
        lines.append("")
    lines.append(f"total time: {summary['total_seconds']:.1f} s")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# solve-demo
# --------------------------------------------------------------------------------------------


def random_explanation_batch(batch: int, k_maps: int, seed: int, beta: float = 0.7, k: int | None = None):
    """A seeded batch of feature-selection problems shaped like explanations.

    Relevance: ``u / max(u)`` with ``u ~ U(0, 1]`` (so in (0, 1], max 1). Redundancy: ``|cos|``
    between ``k_maps`` random vectors (dimension 49, like 7x7 maps) that share a common
    component of random strength, so they are correlated; zero diagonal.
    """
    from .qubo import ProblemBatch

    rng = np.random.default_rng(seed)
    relevance = 1.0 - rng.random((batch, k_maps))  # in (0, 1]
    relevance /= relevance.max(axis=1, keepdims=True)
    common = rng.standard_normal((batch, 1, 49))
    strength = rng.uniform(0.2, 0.8, size=(batch, k_maps, 1))
    vectors = strength * common + (1.0 - strength) * rng.standard_normal((batch, k_maps, 49))
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    redundancy = np.abs(vectors @ vectors.transpose(0, 2, 1))
    idx = np.arange(k_maps)
    redundancy[:, idx, idx] = 0.0
    redundancy = 0.5 * (redundancy + redundancy.transpose(0, 2, 1))
    return ProblemBatch(relevance, redundancy, beta=beta, k=k)


def _cmd_solve_demo(args: argparse.Namespace) -> int:
    from . import available_solvers, solve

    if args.batch < 1:
        raise UserError(f"--batch: expected an integer >= 1, got {args.batch}")
    if args.k_maps < 1:
        raise UserError(f"--k-maps: expected an integer >= 1, got {args.k_maps}")
    if args.batch * args.k_maps**2 > _SOLVE_DEMO_MAX_ENTRIES:
        raise UserError(
            f"--batch x --k-maps^2: expected at most {_SOLVE_DEMO_MAX_ENTRIES} redundancy entries "
            f"(2**26), got {args.batch} x {args.k_maps}^2 = {args.batch * args.k_maps**2}"
        )
    if args.k is not None and not 1 <= args.k <= args.k_maps:
        raise UserError(f"--k: expected an integer in [1, {args.k_maps}], got {args.k}")
    if not 0.0 <= args.beta <= 1.0:
        raise UserError(f"--beta: expected a number in [0, 1], got {args.beta}")
    if args.seed < 0:
        raise UserError(f"--seed: expected an integer >= 0, got {args.seed}")
    if args.sampler not in available_solvers():
        raise UserError(f"--sampler: expected one of {available_solvers()}, got {args.sampler!r}")
    problems = random_explanation_batch(args.batch, args.k_maps, args.seed, beta=args.beta, k=args.k)
    t0 = time.perf_counter()
    solution = solve(problems, args.sampler, seed=args.seed)
    wall = time.perf_counter() - t0
    per_problem = solution.timing.get("total_s", wall) / len(solution)
    print(
        f"{args.batch} random problems, {args.k_maps} maps each, beta={args.beta}, k={args.k}, "
        f"sampler {solution.sampler}, seed {args.seed}"
    )
    header = f"{'problem':>7}  {'selected indices':<40} {'energy':>10}  {'feasible':>8}  {'time (ms)':>9}"
    print(header)
    print("-" * len(header))
    for i in range(len(solution)):
        chosen = " ".join(str(int(v)) for v in np.flatnonzero(solution.states[i]))
        print(
            f"{i:>7}  {chosen:<40} {float(solution.energies[i]):>10.4f}  "
            f"{str(bool(solution.feasible[i])):>8}  {1000 * per_problem:>9.3f}"
        )
    print(f"total: {1000 * wall:.1f} ms wall ({1000 * solution.timing.get('total_s', wall):.1f} ms in the solver); "
          "time per problem is the batch's solver time divided by the batch size")
    return 0


# --------------------------------------------------------------------------------------------
# parser and entry point
# --------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors: status 2, no traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"qfsel: error: {message}\n")


def _add_qfs_options(parser: argparse.ArgumentParser, *, sampler_default: str | None) -> None:
    parser.add_argument("--beta", type=float, default=0.7,
                        help="QFS-CAM weight of relevance against redundancy, in [0, 1] (default: 0.7)")
    parser.add_argument("--k", type=int, default=None,
                        help="QFS-CAM selects exactly K maps (default: as many as minimise the energy)")
    if sampler_default is not None:
        parser.add_argument("--sampler", default=sampler_default,
                            help=f"QUBO solver for QFS-CAM, a name from qfsel.available_solvers() "
                                 f"(default: {sampler_default})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the QUBO solver (default: 0)")


def _add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                        help="where the model and the images run: cpu, cuda, or auto = cuda when "
                             "torch.cuda.is_available(), else cpu (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    """The ``qfsel`` argument parser (exposed for documentation and tests)."""
    from . import __version__

    parser = _Parser(
        prog="qfsel",
        description="Explain CNN predictions with the few feature maps that matter: QFS-CAM "
        "(maps chosen by a QUBO) next to GradCAM and GradCAM++.",
    )
    parser.add_argument("--version", action="version", version=f"qfsel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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
    ex.add_argument("--layer", default=None,
                    help="explained layer, a name from model.named_modules() (default: head.bn for the "
                         "narrow models, _head_act for efficientnet-lite0)")
    ex.add_argument("--method", choices=["qfs", "gradcam", "gradcam++", "all"], default="all",
                    help="explanation method (default: all)")
    _add_qfs_options(ex, sampler_default="sa")
    ex.add_argument("--candidates", type=int, default=None, metavar="N",
                    help="QFS-CAM keeps only the N most relevant positive maps before the QUBO "
                         "(default: all positive maps)")
    _add_device_option(ex)
    ex.add_argument("--batch-size", type=int, default=16, help="images per forward/backward pass (default: 16)")
    ex.add_argument("--out", default=_DEFAULT_OUT,
                    help=f"output folder; files of the same names in it are replaced, and listed on stderr "
                         f"(default: ./{_DEFAULT_OUT})")
    ex.set_defaults(func=_cmd_explain)

    demo = sub.add_parser(
        "demo",
        help="explain MNIST test digits and sample photos with all three methods",
        description="Explain --n MNIST test images with narrow-mnist-16 (QFS-CAM solved exactly over "
        "its positive maps of 16) and the scikit-image photos with efficientnet-lite0 (QFS-CAM by "
        "simulated annealing over the --candidates most relevant of its 1280 maps), with QFS-CAM, "
        "GradCAM and GradCAM++; write "
        "grids (mnist_grid.png, photos_grid.png) and a summary (summary.txt, summary.json: test "
        "accuracy, time per image per method, numbers of selected maps) to --out, and print it.",
    )
    demo.add_argument("--out", default=_DEFAULT_OUT,
                      help=f"output folder; files of the same names in it are replaced, and listed on stderr "
                           f"(default: ./{_DEFAULT_OUT})")
    demo.add_argument("--n", type=int, default=12, help="number of MNIST test images (default: 12)")
    demo.add_argument("--no-photos", action="store_true", help="skip the EfficientNet-Lite0 photos")
    _add_qfs_options(demo, sampler_default=None)
    demo.add_argument("--candidates", type=int, default=64, metavar="N",
                      help="on the photos, QFS-CAM keeps only the N most relevant positive maps of "
                           "efficientnet-lite0's 1280 before the QUBO (default: 64); the MNIST section "
                           "always uses all positive maps of its 16")
    _add_device_option(demo)
    demo.set_defaults(func=_cmd_demo)

    sd = sub.add_parser(
        "solve-demo",
        help="solve a seeded batch of random explanation-shaped QUBOs",
        description="Build --batch random feature-selection problems shaped like explanations "
        "(relevance in (0, 1], redundancy = |cos| of correlated random vectors), solve them with "
        "qfsel.solve and print the selected indices, energy, feasibility and time of each.",
    )
    sd.add_argument("--batch", type=int, default=8, help="number of problems (default: 8)")
    sd.add_argument("--k-maps", type=int, default=12, help="maps (QUBO variables) per problem (default: 12)")
    _add_qfs_options(sd, sampler_default="exact")
    sd.set_defaults(func=_cmd_solve_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qfsel`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and argparse's usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from .exceptions import QFSelError

    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"qfsel: error: {exc}", file=sys.stderr)
        return 2
    except (QFSelError, ValueError, OSError, ModuleNotFoundError) as exc:  # OSError: e.g. a file not writable
        print(f"qfsel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qfsel: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

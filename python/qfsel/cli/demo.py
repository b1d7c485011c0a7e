"""``qfsel demo``: the main job on bundled data (MNIST digits and sample photos)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._common import (
    _DEFAULT_OUT,
    _PHOTO_CANDIDATES,
    _TITLE,
    METHODS,
    UserError,
    _add_device_option,
    _add_qfs_options,
    _build_cam,
    _candidates_arg,
    _check_candidates,
    _check_seed,
    _device,
    _effective_candidates,
    _jsonable,
    _prepare_out,
    _run_cam,
)


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

    from .. import viz

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

    from .. import available_solvers
    from ..datasets import mnist5k, sample_photos
    from ..models import load_model
    from ..train import evaluate

    if not 1 <= args.n <= 100:
        raise UserError(f"--n: expected an integer in [1, 100], got {args.n}")
    if not 0.0 <= args.beta <= 1.0:
        raise UserError(f"--beta: expected a number in [0, 1], got {args.beta}")
    if args.k is not None and args.k < 1:
        raise UserError(f"--k: expected an integer >= 1, got {args.k}")
    _check_seed(args.seed)
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
        photo_cap = _effective_candidates(args.candidates, net.default_candidates)
        if "sa" in solvers:
            photo_sampler, cap = "sa", photo_cap
        else:  # exhaustive search over at most the 20 most relevant maps
            photo_sampler, cap = "exact", min(photo_cap or 20, 20)
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


def register(sub: Any) -> None:
    """Adds this command's parser to the ``qfsel`` subparsers."""
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
    demo.add_argument("--out", default=_DEFAULT_OUT, metavar="DIR",
                      help=f"output folder; files of the same names in it are replaced, and listed on stderr "
                           f"(default: ./{_DEFAULT_OUT})")
    demo.add_argument("--n", type=int, default=12, help="number of MNIST test images (default: 12)")
    demo.add_argument("--no-photos", action="store_true", help="skip the EfficientNet-Lite0 photos")
    _add_qfs_options(demo, sampler_default=None)
    demo.add_argument("--candidates", type=_candidates_arg, default=_PHOTO_CANDIDATES, metavar="N",
                      help="on the photos, QFS-CAM keeps only the N most relevant positive maps of "
                           f"efficientnet-lite0's 1280 before the QUBO, or 'all' (default: {_PHOTO_CANDIDATES}, "
                           "as explain); the MNIST section always uses all positive maps of its 16")
    _add_device_option(demo)
    demo.set_defaults(func=_cmd_demo)

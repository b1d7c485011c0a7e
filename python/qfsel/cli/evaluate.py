"""``qfsel evaluate``: explain a test split with every method and score the explanations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import UserError


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from .._malloc import tune_malloc
    from ..cams import method_names
    from ..evaluation import ABLATIONS, ablate, evaluate

    torch.set_num_threads(max(1, args.threads))
    if not args.no_tune_malloc:
        tune_malloc()  # for the ablations too
    try:
        methods = method_names([m.strip() for m in args.methods.split(",") if m.strip()])
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from exc
    for name in ("n", "faithfulness_n", "sanity_n", "n_boot", "steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < (1 if name in ("steps", "batch_size") else 0):
            raise UserError(f"--{name.replace('_', '-')}: expected a non-negative integer, got {value}")
    out = Path(args.out)
    qfs: dict[str, Any] = {"beta": args.beta, "k": args.k, "sampler": args.sampler}
    if args.relevance:
        qfs["relevance"] = args.relevance
    if "qfs" not in methods:
        qfs = {}
    result = evaluate(
        args.model, args.dataset, methods, out, n=args.n, correct_only=not args.all_images,
        batch_size=args.batch_size, n_boot=args.n_boot, faithfulness_n=args.faithfulness_n, steps=args.steps,
        sanity_n=args.sanity_n, road=not args.no_road, tsne=not args.no_tsne,
        parts=[p for p in args.parts.split(",") if p], seed=args.seed, progress=not args.quiet,
        tune_malloc=not args.no_tune_malloc, **qfs,
    )
    print(f"qfsel evaluate: {result['setup']['n_explained']} images explained in "
          f"{result['setup']['explain_seconds']:.1f} s ({result['setup']['images_per_second']:.1f} images/s); "
          f"total {result['seconds']:.1f} s; report: {out / 'report.html'}")
    for row in result["rows"]:
        if row["metric"] in ("mean_off_diagonal", "linear_probe", "relevance_mass", "deletion_auc", "insertion_auc"):
            ci = "" if row["lo"] != row["lo"] else f" [{row['lo']:.3f}, {row['hi']:.3f}]"
            print(f"  {row['group']:>15} {row['metric']:>18} {row['method']:>9} {row['variant']:>13}: {row['value']:.3f}{ci}")
    if args.ablations:
        studies = list(ABLATIONS) if args.ablations == "all" else [s for s in args.ablations.split(",") if s]
        unknown = [s for s in studies if s not in ABLATIONS]
        if unknown:
            raise UserError(f"--ablations: unknown {unknown}; expected 'all' or some of {','.join(ABLATIONS)}")
        report = ablate(args.model, args.dataset, studies, out, n=args.ablation_n, faithfulness_n=min(100, args.ablation_n),
                        n_boot=args.n_boot, seed=args.seed, progress=not args.quiet)
        print(f"ablations: {out / 'ablations.md'}")
        if args.quiet:
            return 0
        print((out / "ablations.md").read_text())
    return 0


def register(sub: Any) -> None:
    """Adds this command's parser to the ``qfsel`` subparsers."""
    p = sub.add_parser(
        "evaluate",
        help="score GradCAM, GradCAM++ and QFS-CAM on a test split (disentanglement, faithfulness, ...)",
        description="Explain the test split of --dataset with --model (correctly classified images only, as in "
        "the paper), compute the paper's class-disentanglement measure and its GradCAM/GradCAM++ counterparts, "
        "embedding separation (silhouette, Davies-Bouldin, linear probe, k-NN, between/within ratio), "
        "localization (shapes masks), faithfulness (deletion/insertion AUC, average drop/increase, ROAD) and "
        "sanity checks (cascading randomisation, random logit), all with bootstrap 95% CIs, and write "
        "metrics.json, metrics.csv, PNG figures and a self-contained report.html to --out.",
    )
    p.add_argument("--model", default="shapes-paper-16",
                   help="shapes-paper-16/24/32, narrow-mnist-16/24/32 or efficientnet-lite0 (default: shapes-paper-16)")
    p.add_argument("--dataset", default="shapes", choices=["shapes", "mnist", "photos"],
                   help="shapes (test split, seeded), mnist (mnist5k test split) or photos (scikit-image samples)")
    p.add_argument("--methods", default="gradcam,gradcam++,qfs", help="comma-separated (default: gradcam,gradcam++,qfs)")
    p.add_argument("--out", required=True, help="output folder (files of the same names are replaced)")
    p.add_argument("--n", type=int, default=None, help="images to load (default: 1000 shapes / all 1000 MNIST / 4 photos)")
    p.add_argument("--all-images", action="store_true", help="explain misclassified images too")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples per CI (default: 200)")
    p.add_argument("--faithfulness-n", type=int, default=200, help="images for faithfulness (default: 200)")
    p.add_argument("--steps", type=int, default=16, help="deletion/insertion steps (default: 16)")
    p.add_argument("--sanity-n", type=int, default=50, help="images for the sanity checks; 0 skips (default: 50)")
    p.add_argument("--parts", default="disentanglement,embeddings,localization,faithfulness,sanity",
                   help="metric groups to compute (comma-separated)")
    p.add_argument("--no-road", action="store_true", help="skip ROAD (the slowest faithfulness metric)")
    p.add_argument("--no-tsne", action="store_true", help="skip the t-SNE figure")
    p.add_argument("--beta", type=float, default=0.7, help="QFS-CAM beta (default: 0.7)")
    p.add_argument("--k", type=int, default=None, help="QFS-CAM exactly k maps (default: none, the paper)")
    p.add_argument("--sampler", default="sa", help="QFS-CAM solver (default: sa)")
    p.add_argument("--relevance", default=None, choices=["gradcam", "taylor", "ablation"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablations", default=None,
                   help="also run ablations: 'all' or some of k,beta,relevance,redundancy,objective,solver")
    p.add_argument("--ablation-n", type=int, default=300, help="images per ablation setting (default: 300)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-tune-malloc", action="store_true",
                   help="leave glibc's malloc thresholds alone (default: keep freed memory for reuse "
                        "between batches, see qfsel.tune_malloc)")
    p.set_defaults(func=_cmd_evaluate)

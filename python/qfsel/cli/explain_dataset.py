"""``qfsel explain-dataset``: explain a whole dataset into a resumable results store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import BETA_DEFAULT, UserError, _add_qfs_options, _check_candidates, _check_common, _device

#: The default of this command's ``--sampler``.
SAMPLER_DEFAULT = "sa"


def _cmd_explain_dataset(args: argparse.Namespace) -> int:
    from ..dataset import explain_dataset

    _check_common(args)
    _check_candidates(args)
    if args.preview < 0:
        raise UserError(f"--preview: expected a number of images >= 0, got {args.preview}")
    device = _device(args.device)
    from ..cams import method_names

    methods = method_names(["qfs", "gradcam", "gradcam++"] if args.method.strip().lower() == "all"
                           else [m.strip() for m in args.method.split(",")])  # ("QFS", "qfs-cam": qfs)
    qfs = {}
    if "qfs" in methods:
        qfs = {"beta": args.beta, "k": args.k, "sampler": args.sampler, "candidates": args.candidates}
    else:
        # (as the Python API refuses QFS-CAM parameters without qfs; a flag left at its default
        # cannot be told from one not given)
        given = [flag for flag, value, default in (("--beta", args.beta, BETA_DEFAULT), ("--k", args.k, None),
                                                    ("--sampler", args.sampler, SAMPLER_DEFAULT),
                                                    ("--candidates", args.candidates, None)) if value != default]
        if given:
            raise UserError(f"{', '.join(given)}: QFS-CAM options, but --method {args.method} has no qfs")
    try:
        summary = explain_dataset(
            args.model,
            args.dataset,
            args.layer,
            methods,
            out=args.out,
            batch_size=args.batch_size,
            seed=args.seed,
            dtype=args.dtype,
            store_raw=args.store_raw,
            overwrite=args.overwrite,
            num_workers=args.num_workers,
            device=device,
            backend=args.backend,
            scheduler=args.scheduler,
            n_workers=args.n_workers,
            timeout=args.timeout,
            progress=not args.no_progress,
            tune_malloc=not args.no_tune_malloc,
            channels_last=args.channels_last,
            **qfs,
        )
    except TypeError as exc:
        raise UserError(str(exc)) from exc
    print(summary)
    if summary.failed:
        print(f"qfsel: note: {summary.failed} image(s) could not be read or explained; see the failures table "
              f"(qfsel.open_results({str(summary.path)!r}).failures())", file=sys.stderr)
    if args.preview and summary.explained:
        from ..dataset import save_preview

        png = save_preview(args.out, args.dataset, n=args.preview, model=args.model)
        print(f"wrote {png} ({min(args.preview, summary.explained)} explained images, spread over the dataset)")
    return 0


def register(sub: Any) -> None:
    """Adds this command's parser to the ``qfsel`` subparsers."""
    p = sub.add_parser(
        "explain-dataset",
        help="explain every image of a dataset into a resumable store (Zarr + Parquet)",
        description="Explain every image of DATASET (an image folder with class subfolders or flat, or "
        "mnist5k-train / mnist5k-test) with every method from one forward/backward pass per batch, and "
        "write heatmaps (Zarr), per-image records and failures (Parquet) and a manifest to --out. "
        "Killed (even with kill -9), the same command continues from the last complete batch. Read the "
        "store with qfsel.open_results(PATH).",
    )
    p.add_argument("dataset", metavar="DATASET", help="image folder, or mnist5k-train / mnist5k-test")
    p.add_argument("--out", required=True, help="the results store folder (created; resumed when it exists)")
    p.add_argument("--model", default="narrow-mnist-16",
                   help="narrow-mnist-16, narrow-mnist-24, narrow-mnist-32, efficientnet-lite0, or a .pt "
                        "checkpoint written by python -m qfsel.train (default: narrow-mnist-16); its "
                        "preprocessing reads the images")
    p.add_argument("--layer", default=None, help="explained layer (default: the model's own)")
    p.add_argument("--method", default="all",
                   help="comma-separated methods from qfs, gradcam, gradcam++, or all (default: all)")
    _add_qfs_options(p, sampler_default=SAMPLER_DEFAULT)
    p.add_argument("--candidates", type=int, default=None, metavar="N",
                   help="QFS-CAM keeps only the N most relevant positive maps before the QUBO")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward/backward pass (default: 32)")
    p.add_argument("--num-workers", type=int, default=2,
                   help="processes that load images (0: the main process; default: 2)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                   help="heatmap dtype in the store (default: float16)")
    p.add_argument("--store-raw", action="store_true", help="also store the raw maps at layer resolution (float32)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a store written with another configuration (default: refuse)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                   help="where the model runs (auto = cuda when available; default: auto)")
    p.add_argument("--backend", choices=["local", "dask"], default="local",
                   help="local (this process) or dask (shards on Dask workers; default: local)")
    p.add_argument("--scheduler", default=None,
                   help="with --backend dask: a scheduler address tcp://host:port (default: a LocalCluster "
                        "on 127.0.0.1)")
    p.add_argument("--n-workers", type=int, default=2, help="worker processes of the LocalCluster (default: 2)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the scheduler to answer (default: 30)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-tune-malloc", action="store_true",
                   help="leave glibc's malloc thresholds alone (default: keep freed memory for reuse "
                        "between batches, see qfsel.tune_malloc)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="memory layout of the model's pass: channels-last (on every device) or the "
                        "images' own (--no-channels-last); default: channels-last on the CPU, "
                        "where CNNs run up to 1.55x faster")
    p.add_argument("--preview", type=int, default=6, metavar="N",
                   help="write OUT/preview.png with N explained images (spread over the dataset) and "
                        "every method's heatmap (0: none; default: 6)")
    p.set_defaults(func=_cmd_explain_dataset)

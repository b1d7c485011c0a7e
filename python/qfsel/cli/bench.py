"""``qfsel bench``: benchmark samplers on saved, generated or captured instances.

Sub-commands: ``run`` (the harness, resumable into ``--out``), ``generate`` and ``capture`` (write
instance files), ``report`` (rewrite ``summary.md`` and the plots of a run directory) and ``list``
(sampler names usable here).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import UserError


def _ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if not vals:
        raise UserError(f"{what}: expected at least one integer, got {text!r}")
    return vals


def _generated(args: argparse.Namespace) -> list[Any]:
    from ..instances import FAMILIES, generate_suite

    fams = [f for f in args.families.split(",") if f]
    bad = [f for f in fams if f not in FAMILIES]
    if bad:
        raise UserError(f"--families: unknown family {bad[0]!r}; expected some of {','.join(FAMILIES)}")
    sizes = _ints(args.sizes, "--sizes")
    if any(not 8 <= s <= 2048 for s in sizes):
        raise UserError(f"--sizes: expected sizes in [8, 2048], got {args.sizes}")
    if args.instance_seeds < 1:
        raise UserError(f"--instance-seeds: expected an integer >= 1, got {args.instance_seeds}")
    if args.k is not None and any(args.k > s for s in sizes):
        raise UserError(f"--k: expected at most the smallest size {min(sizes)}, got {args.k}")
    return generate_suite(fams, sizes, seeds=range(args.instance_seeds), k=args.k)


def _cmd_run(args: argparse.Namespace) -> int:
    from ..bench import Budget, benchmark, entry_names
    from ..instances import load_many

    insts: list[Any] = []
    for path in args.instances or []:
        try:
            insts += load_many(path)
        except FileNotFoundError as exc:
            raise UserError(f"--instances: {exc}") from None
    if args.families:
        insts += _generated(args)
    if not insts:
        raise UserError("no instances: give --instances PATH (files or directories) and/or --families F1,F2 --sizes ...")
    names = [s for s in args.samplers.split(",") if s]
    known = entry_names()
    bad = [s for s in names if s not in known]
    if bad:
        raise UserError(f"--samplers: unknown sampler {bad[0]!r}; usable here: {','.join(known)}")
    if len(set(names)) != len(names):
        raise UserError(f"--samplers: duplicate sampler names in {args.samplers!r}")
    for flag, val in (("--reads", args.reads), ("--sweeps", args.sweeps), ("--seeds", args.seeds)):
        if val is not None and val < 1:
            raise UserError(f"{flag}: expected an integer >= 1, got {val}")
    for flag, val in (("--time-s", args.time_s), ("--time-limit", args.time_limit)):
        if val is not None and not val > 0:
            raise UserError(f"{flag}: expected a positive number of seconds, got {val}")
    res = benchmark(insts, names, Budget(num_reads=args.reads, num_sweeps=args.sweeps, time_s=args.time_s),
                    seeds=args.seeds, out=args.out, time_limit=args.time_limit, retry_failed=args.retry_failed,
                    progress=not args.quiet)
    print(res.markdown())
    print(f"\nwrote {args.out}/cells.csv, reads.csv, per_instance.csv, summary.csv, summary.md, run.json, plots/", file=sys.stderr)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from ..instances import save_many, with_ground_truth

    insts = _generated(args)
    if not args.no_ground_truth:
        insts = with_ground_truth(insts)
    paths = save_many(insts, args.out)
    print(f"wrote {len(paths)} instance files to {args.out}")
    return 0


def _cmd_capture(args: argparse.Namespace) -> int:
    from ..instances import save_many, with_ground_truth
    from ..instances.capture import capture_bundled
    from ..models import BUNDLED_MODELS

    if args.model not in BUNDLED_MODELS:
        raise UserError(f"--model: expected one of {', '.join(BUNDLED_MODELS)}, got {args.model!r}")
    if args.n < 1:
        raise UserError(f"--n: expected an integer >= 1, got {args.n}")
    if args.k is not None and args.k < 1:
        raise UserError(f"--k: expected an integer >= 1, got {args.k}")
    if args.candidates is not None and args.candidates < 1:
        raise UserError(f"--candidates: expected an integer >= 1, got {args.candidates}")
    insts = capture_bundled(args.model, n=args.n, k=args.k, candidates=args.candidates, beta=args.beta)
    if not args.no_ground_truth:
        insts = with_ground_truth(insts)
    paths = save_many(insts, args.out)
    print(f"wrote {len(paths)} captured instance files to {args.out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..bench import BenchmarkResult

    try:
        res = BenchmarkResult.load(args.dir)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    res.save_summary(Path(args.dir))
    print(res.markdown())
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from ..bench import ANCHORS, entry_names

    usable = entry_names()
    for name in usable:
        print(name + ("  (mock)" if name == "dwave-mock" else ""))
    missing = [n for n in ANCHORS if n not in usable]
    if missing:
        print(f"not installed here (pip install 'qfsel[bench]'): {', '.join(missing)}")
    return 0


def _add_family_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--families", default=None if not required else "explanation,lognormal,redundant,few-dominant,grouped,uniform",
                   help="generated families, comma-separated (explanation, lognormal, redundant, few-dominant, grouped, uniform)")
    p.add_argument("--sizes", default="64,256", help="K values, comma-separated, 8..2048 (default: 64,256)")
    p.add_argument("--instance-seeds", type=int, default=1, help="instances per family and size (default: 1)")
    p.add_argument("--k", type=int, default=None, help="k of generated instances (default: 3/4/8/16 by K)")


def register(sub: Any) -> None:
    """Adds ``qfsel bench`` and its sub-commands to the ``qfsel`` subparsers."""
    b = sub.add_parser("bench", help="benchmark samplers on instances (classical, quantum, mocks)",
                       description="Benchmark every sampler on every instance under one budget, over seeds; "
                       "resumable runs, markdown summary, CSV tables and PNG plots. See docs/benchmarks.md.")
    bsub = b.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", parser_class=type(b))
    run = bsub.add_parser("run", help="run the harness (resumes and extends --out)")
    run.add_argument("--instances", nargs="*", help="instance files or directories of them")
    _add_family_options(run, required=False)
    run.add_argument("--samplers", default="sa,tabu,greedy", help="comma-separated names (see 'qfsel bench list'; default: sa,tabu,greedy)")
    run.add_argument("--reads", type=int, default=32, help="reads per cell (default: 32)")
    run.add_argument("--sweeps", type=int, default=None, help="sweeps for samplers that take them (default: each one's own)")
    run.add_argument("--time-s", type=float, default=None, help="call each sampler again until this many seconds per cell")
    run.add_argument("--seeds", type=int, default=3, help="seeds per instance and sampler (default: 3)")
    run.add_argument("--time-limit", type=float, default=60.0, help="seconds per cell before it is recorded as timeout (default: 60)")
    run.add_argument("--retry-failed", action="store_true", help="run failed/timed-out cells of --out again")
    run.add_argument("--quiet", action="store_true", help="no per-cell progress lines")
    run.add_argument("--out", required=True, help="run directory (created; finished cells in it are kept)")
    run.set_defaults(func=_cmd_run)
    gen = bsub.add_parser("generate", help="write generated instances (with ground truth) to a directory")
    _add_family_options(gen, required=True)
    gen.add_argument("--no-ground-truth", action="store_true", help="do not compute ground truth")
    gen.add_argument("--out", required=True, help="directory for the .npz instance files")
    gen.set_defaults(func=_cmd_generate)
    cap = bsub.add_parser("capture", help="capture instances from QFS-CAM explanations on bundled models and data")
    cap.add_argument("--model", default="narrow-mnist-16", help="narrow-mnist-16/24/32 or efficientnet-lite0")
    cap.add_argument("--n", type=int, default=8, help="images (MNIST test digits, at most 1000; EfficientNet: up to 4 photos)")
    cap.add_argument("--k", type=int, default=3, help="maps to select (default: 3)")
    cap.add_argument("--beta", type=float, default=0.7, help="relevance weight (default: 0.7)")
    cap.add_argument("--candidates", type=int, default=None, help="keep the N most relevant positive maps (default: all; docs/benchmarks.md uses 16..256 for EfficientNet)")
    cap.add_argument("--no-ground-truth", action="store_true", help="do not compute ground truth")
    cap.add_argument("--out", required=True, help="directory for the .npz instance files")
    cap.set_defaults(func=_cmd_capture)
    rep = bsub.add_parser("report", help="rewrite summary.md, summary.csv and plots/ of a run directory")
    rep.add_argument("dir", help="a run directory written by 'qfsel bench run'")
    rep.set_defaults(func=_cmd_report)
    lst = bsub.add_parser("list", help="sampler names usable here")
    lst.set_defaults(func=_cmd_list)
    b.set_defaults(func=lambda args: (b.print_help(), 2)[1])

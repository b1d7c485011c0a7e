"""Throughput of dataset-scale explanation, each figure next to its anchor in the same run.

Usage (prints markdown tables; ``--only`` picks sections)::

    .venv/bin/python -m benches.dataset_report [--only layout,methods,qfs,torchcam,qubo,dask,memory,malloc] [--threads 1]

Sections:
  layout    qfsel's GradCAM with the capture in channels-last layout (the CPU default) against the
            input's own layout, on seven CNN families (benches/cnn_families.py).
  methods   explain_dataset with all three methods (one capture per batch) against calling
            GradCAM, GradCAM++ and QFS-CAM separately on the same batches (MNIST CNN).
  qfs       QFS-CAM alone against qfsel's GradCAM alone, on the same pipeline (explain_dataset):
            MNIST CNN, and EfficientNet-Lite0 (K = 1280 maps, candidates = 128).
  torchcam  qfsel's GradCAM against torchcam's GradCAM, same model and batch (bench extra).
  qubo      (h, J) -> solver-ready batch against dimod BQMs one by one, each in a fresh process
            (page faults included), K = 64, B = 1000 and K = 512, B = 64.
  dask      explain_dataset(backend="dask") on a LocalCluster of 1 and of 2 worker processes.
  memory    resident memory over 20,000 synthetic 16x16 images (batch 256).
  malloc    explain_dataset with tune_malloc=False against True, each job in a fresh process
            (MNIST CNN with all methods; EfficientNet-Lite0 with GradCAM).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn, repeat: int = 3) -> float:
    """Best of ``repeat`` wall times (s) after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _interleaved(fns: list, rounds: int = 5) -> list[float]:
    """Best wall time (s) of each function, run in turn ``rounds`` times after one warm-up each:
    on a shared machine, load changes hit every row alike."""
    return _interleaved_wall_cpu(fns, rounds)[0]


def _interleaved_wall_cpu(fns: list, rounds: int = 5) -> tuple[list[float], list[float]]:
    """Best wall time and best process CPU time (s) of each function, run in turn ``rounds``
    times after one warm-up each, the order rotated every round (no row always runs right after
    the same one). With one torch thread the CPU time counts only the time the process ran, so
    it is less sensitive to other jobs' load than the wall time."""
    for fn in fns:
        fn()
    wall = [float("inf")] * len(fns)
    cpu = [float("inf")] * len(fns)
    order = list(range(len(fns)))
    for r in range(rounds):
        for i in order[r % len(fns):] + order[: r % len(fns)]:
            c, t = time.process_time(), time.perf_counter()
            fns[i]()
            wall[i] = min(wall[i], time.perf_counter() - t)
            cpu[i] = min(cpu[i], time.process_time() - c)
    return wall, cpu


def _store(tag: str) -> str:
    return tempfile.mkdtemp(prefix=f"qfsel-bench-{tag}-")


# --------------------------------------------------------------------------------------------


def section_methods(sizes: tuple[int, ...] = (512, 2048), batch: int = 64) -> None:
    import qfsel
    from qfsel.cams import GradCAM, GradCAMPlusPlus, QFSCAM
    from qfsel.datasets import mnist5k
    from qfsel.models import load_model

    bundle = load_model("narrow-mnist-16")
    model, layer = bundle.model, bundle.default_layer
    cams = [GradCAM(model, [layer]), GradCAMPlusPlus(model, [layer]), QFSCAM(model, [layer], seed=0)]
    print(f"\n### All three methods, MNIST CNN (narrow-mnist-16, layer {layer}), batch {batch}\n")
    print("A job's fixed costs (store creation, one probe image, the last batch's finishing work, "
          "which nothing overlaps) weigh more in the shorter job.\n")
    print("| images | pipeline | images/s | ratio |")
    print("|---|---|---|---|")
    for n in sizes:
        x = mnist5k("train")[0][:n]  # the test split has 1,000 images

        def separately():
            with warnings.catch_warnings():  # flat maps: explain_dataset records them, not warns
                warnings.filterwarnings("ignore", category=qfsel.QFSelWarning)
                for s in range(0, n, batch):
                    xb = x[s : s + batch]
                    for cam in cams:
                        cam(xb)

        def together():
            qfsel.explain_dataset(model, x, [layer], out=_store("m") + "/s", batch_size=batch, num_workers=0,
                                  progress=False)

        t_sep, t_all = _interleaved([separately, together], 5 if n <= 512 else 3)
        print(f"| {n} | GradCAM, GradCAM++, QFS-CAM called separately on the same batches (in memory) | "
              f"{n / t_sep:.0f} | 1.0 |")
        print(f"| {n} | explain_dataset, methods=all (one capture, QUBO overlapped, written to the store) | "
              f"{n / t_all:.0f} | {t_sep / t_all:.2f}x |")


def section_qfs() -> None:
    import qfsel
    from qfsel.datasets import mnist5k
    from qfsel.models import efficientnet_lite0, load_model

    print("\n### QFS-CAM alone against qfsel's GradCAM alone, same pipeline (explain_dataset)\n")
    print("| model | images, batch | GradCAM images/s | QFS-CAM images/s | QFS / GradCAM |")
    print("|---|---|---|---|---|")
    bundle = load_model("narrow-mnist-16")
    x = mnist5k("test")[0][:512]
    rows = [("narrow-mnist-16 (K = 16, sampler sa)", bundle.model, bundle.default_layer, x, 64, {})]
    eff = efficientnet_lite0()
    xe = torch.rand(24, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    rows.append(("EfficientNet-Lite0 _head_act (K = 1280, candidates = 128, sampler sa)", eff, "_head_act", xe, 8,
                 {"candidates": 128}))
    for name, model, layer, data, batch, extra in rows:
        def grad():
            qfsel.explain_dataset(model, data, [layer], "gradcam", out=_store("g") + "/s", batch_size=batch,
                                  num_workers=0, progress=False)

        def qfs():
            qfsel.explain_dataset(model, data, [layer], "qfs", out=_store("q") + "/s", batch_size=batch,
                                  num_workers=0, progress=False, **extra)

        tg, tq = _interleaved([grad, qfs], 5 if data.shape[-1] < 100 else 3)
        n = data.shape[0]
        print(f"| {name} | {n}, {batch} | {n / tg:.1f} | {n / tq:.1f} | {tg / tq:.2f}x |")


def section_layout(rounds: int = 7) -> None:
    from benches.cnn_families import families
    from qfsel.cams import GradCAM

    print("\n### The capture's memory layout: GradCAM with channels_last=None (channels-last on the CPU, "
          "the default) against channels_last=False (the input's own layout), same model and batch\n")
    print("| family, batch | own layout (ms) | channels-last (ms) | speed | largest map difference |")
    print("|---|---|---|---|---|")
    for name, model, layer, x in families():
        model.eval()
        cl, own = GradCAM(model, [layer], upsample=False), GradCAM(model, [layer], upsample=False, channels_last=False)
        diff = float(np.abs(cl(x) - own(x)).max())
        t_own, t_cl = _interleaved([lambda: own(x), lambda: cl(x)], rounds)
        print(f"| {name} | {t_own * 1e3:.1f} | {t_cl * 1e3:.1f} | {t_own / t_cl:.2f}x | {diff:.1e} |")


def section_torchcam(rounds_small: int = 30, rounds_large: int = 8) -> None:
    try:
        from torchcam.methods import GradCAM as TorchcamGradCAM
    except ImportError:
        print("\n(torchcam not installed: pip install 'qfsel[bench]')")
        return
    from qfsel.cams import GradCAM
    from qfsel.datasets import mnist5k
    from qfsel.models import efficientnet_lite0, load_model

    print("\n### qfsel's GradCAM against torchcam's GradCAM (same model, batch, layer; predicted class)\n")
    print("| model, batch | torchcam (ms) | qfsel, layer resolution (ms) | qfsel / torchcam speed | "
          "qfsel, upsampled to input (ms) | CPU ms torchcam / qfsel | CPU speed | correlation of the first maps | "
          "qfsel, channels_last=False (ms) | torchcam on a channels-last model (ms) | qfsel / that |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    bundle = load_model("narrow-mnist-16")
    cases = [("narrow-mnist-16, 64", bundle.model, bundle.default_layer, mnist5k("test")[0][:64]),
             ("EfficientNet-Lite0, 8", efficientnet_lite0(), "_head_act",
              torch.rand(8, 3, 224, 224, generator=torch.Generator().manual_seed(0)))]
    for name, model, layer, x in cases:
        model.eval()
        extractor = TorchcamGradCAM(model, target_layer=layer, input_shape=tuple(x.shape[1:]))

        def theirs():
            scores = model(x)
            maps = extractor(scores.argmax(1).tolist(), scores)
            model.zero_grad(set_to_none=True)
            return maps

        theirs_maps = theirs()[0]  # hooks enabled at construction
        mine_low = GradCAM(model, [layer], upsample=False)
        mine = GradCAM(model, [layer])
        own_layout = GradCAM(model, [layer], upsample=False, channels_last=False)
        low = mine_low(x)
        # torchcam's hooks act only during its own calls (disabled hooks return at once)
        extractor.disable_hooks()

        def theirs_hooked():
            extractor.enable_hooks()
            try:
                return theirs()
            finally:
                extractor.disable_hooks()

        # What a torchcam user can do by hand: the model's weights in channels-last layout (a
        # copy, so that qfsel's model is the user's own), the input converted on each call.
        model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        extractor_cl = TorchcamGradCAM(model_cl, target_layer=layer, input_shape=tuple(x.shape[1:]))
        extractor_cl.disable_hooks()

        def theirs_cl():
            extractor_cl.enable_hooks()
            try:
                scores = model_cl(x.contiguous(memory_format=torch.channels_last))
                maps = extractor_cl(scores.argmax(1).tolist(), scores)
                model_cl.zero_grad(set_to_none=True)
                return maps
            finally:
                extractor_cl.disable_hooks()

        (t_theirs, t_low, t_up, t_own, t_tcl), (c_theirs, c_low, *_) = _interleaved_wall_cpu(
            [theirs_hooked, lambda: mine_low(x), lambda: mine(x), lambda: own_layout(x), theirs_cl],
            rounds_small if x.shape[-1] < 100 else rounds_large)
        agree = float(np.corrcoef(low.reshape(len(x), -1)[0], theirs_maps.detach().reshape(len(x), -1)[0].numpy())[0, 1])
        print(f"| {name} | {t_theirs * 1e3:.1f} | {t_low * 1e3:.1f} | {t_theirs / t_low:.2f}x | {t_up * 1e3:.1f} |"
              f" {c_theirs * 1e3:.1f} / {c_low * 1e3:.1f} | {c_theirs / c_low:.2f}x | {agree:.4f} |"
              f" {t_own * 1e3:.1f} | {t_tcl * 1e3:.1f} | {t_tcl / t_low:.2f}x |")


_CHILD = r"""
import sys, time, json
import numpy as np
sys.path.insert(0, {root!r})
from benches.instances import explanation_like
from benches.test_bench_qubo import dimod_one_by_one, BETA, K_SEL
import qfsel
mode, b, k = {mode!r}, {b}, {k}
h, j = explanation_like(np.random.default_rng(k), b, k)
lam = qfsel.ProblemBatch(h[:1], j[:1], beta=BETA, k=K_SEL).penalty  # warms the imports, not the arrays
lam = np.full(b, float(lam[0]))
t = time.perf_counter()
if mode == "dimod":
    out = dimod_one_by_one(h, j, lam)
elif mode == "default":
    out = qfsel.ProblemBatch(h, j, beta=BETA, k=K_SEL)
elif mode == "trusted":
    out = qfsel.ProblemBatch._trusted(h, j, BETA, K_SEL)
elif mode == "trusted+qubo":
    out = qfsel.ProblemBatch._trusted(h, j, BETA, K_SEL).qubo(include_penalty=False)
print(json.dumps(time.perf_counter() - t))
"""


def _fresh(mode: str, b: int, k: int, runs: int) -> float:
    ts = []
    for _ in range(runs):
        code = _CHILD.format(root=str(ROOT), mode=mode, b=b, k=k)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        ts.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return statistics.median(ts)


def section_qubo(runs: int = 5) -> None:
    print("\n### (h, J) -> solver-ready batch, each call in a fresh process (median of "
          f"{runs} processes; page faults included)\n")
    print("| K, B | dimod BQMs one by one (ms) | ProblemBatch(h, J, k=8) default (ms) | ratio | "
          "ProblemBatch._trusted (pipeline) (ms) | ratio | _trusted + .qubo() dense Q (ms) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for k, b in ((64, 1000), (512, 64)):
        t = {m: _fresh(m, b, k, runs) for m in ("dimod", "default", "trusted", "trusted+qubo")}
        d = t["dimod"]
        print(f"| {k}, {b} | {d * 1e3:.1f} | {t['default'] * 1e3:.2f} | {d / t['default']:.0f}x | "
              f"{t['trusted'] * 1e3:.3f} | {d / t['trusted']:.0f}x | {t['trusted+qubo'] * 1e3:.1f} | "
              f"{d / t['trusted+qubo']:.0f}x |")


def section_dask(n: int = 4000, batch: int = 100) -> None:
    import qfsel
    from qfsel.datasets import mnist5k
    from qfsel.models import load_model

    bundle = load_model("narrow-mnist-16")
    # the training images: a job long enough that the per-job set-up (the model sent to every
    # worker by the plugin, the store opened per shard) does not hide the scaling
    x = mnist5k("train")[0][:n]
    print(f"\n### Dask backend, LocalCluster on 127.0.0.1, single-threaded workers ({n} MNIST images, batch {batch})\n")
    print("| backend | images/s (best of 3 jobs after a warm-up job; cluster start excluded) |")
    print("|---|---|")
    from distributed import Client

    from qfsel.dataset.dask_backend import local_cluster

    t = _timed(lambda: qfsel.explain_dataset(bundle.model, x, [bundle.default_layer], out=_store("l") + "/s",
                                             batch_size=batch, num_workers=0, progress=False), 3)
    print(f"| local (this process, torch threads: {torch.get_num_threads()}) | {n / t:.0f} |")
    for workers in (1, 2):
        with local_cluster(workers) as cluster, Client(cluster) as client:
            t = _timed(lambda: qfsel.explain_dataset(bundle.model, x, [bundle.default_layer], out=_store("d") + "/s",
                                                     batch_size=batch, backend="dask", scheduler=client,
                                                     progress=False), 3)
        print(f"| dask, {workers} worker process(es) | {n / t:.0f} |")


def section_memory(n: int = 20000, batch: int = 256) -> None:
    import qfsel
    from tests._tiny_models import GapNet

    class Synthetic(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            return torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(i)), i % 3

    s = qfsel.explain_dataset(GapNet(k=16, classes=3), Synthetic(), ["act"], out=_store("mem") + "/s",
                              batch_size=batch, num_workers=2, progress=False)
    print(f"\n### Resident memory over {n} synthetic 16x16 images, batch {batch}, all methods, 2 loader processes\n")
    print("| images done | RSS (MiB) |")
    print("|---|---|")
    shown = s.rss_mb[:: max(1, len(s.rss_mb) // 10)]
    for done, rss in shown + ([s.rss_mb[-1]] if shown[-1] != s.rss_mb[-1] else []):
        print(f"| {done} | {rss:.0f} |")
    print(f"\n{s}")


_CHILD_MALLOC = r"""
import sys, time, json, resource, tempfile
import torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
import qfsel
case, tune = {case!r}, {tune}
if case == "mnist":
    from qfsel.datasets import mnist5k
    from qfsel.models import load_model
    b = load_model("narrow-mnist-16")
    model, layer, x, methods, batch = b.model, b.default_layer, mnist5k("test")[0][:1024], "all", 64
else:
    from qfsel.models import efficientnet_lite0
    model, layer, methods, batch = efficientnet_lite0(), "_head_act", "gradcam", 8
    x = torch.rand(48, 3, 224, 224, generator=torch.Generator().manual_seed(0))
methods = ("qfs", "gradcam", "gradcam++") if methods == "all" else methods
def job():
    return qfsel.explain_dataset(model, x, [layer], methods, out=tempfile.mkdtemp(prefix="qfsel-bench-malloc-") + "/s",
                                 batch_size=batch, num_workers=0, progress=False, tune_malloc=tune)
job()  # warm-up (and, with tune, the thresholds set)
best, faults = float("inf"), []
for _ in range(3):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    job()
    best = min(best, time.perf_counter() - t)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(json.dumps([len(x) / best, min(faults) / len(x)]))
"""


def section_malloc() -> None:
    threads = torch.get_num_threads()
    print(f"\n### glibc malloc thresholds: explain_dataset(tune_malloc=False) against True, each job in a "
          f"fresh process (torch threads: {threads}; best of 3 jobs after a warm-up)\n")
    print("| job | tune_malloc=False images/s | page faults per image | tune_malloc=True images/s | "
          "page faults per image | speed-up |")
    print("|---|---|---|---|---|---|")
    for case, name in (("mnist", "narrow-mnist-16, 1024 images, batch 64, all three methods"),
                       ("efficientnet", "EfficientNet-Lite0, 48 images, batch 8, GradCAM")):
        res = {}
        for tune in (False, True):
            code = _CHILD_MALLOC.format(root=str(ROOT), threads=threads, case=case, tune=tune)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            res[tune] = json.loads(out.stdout.strip().splitlines()[-1])
        (r0, f0), (r1, f1) = res[False], res[True]
        print(f"| {name} | {r0:.1f} | {f0:.0f} | {r1:.1f} | {f1:.0f} | {r1 / r0:.2f}x |")


SECTIONS = {"layout": section_layout, "methods": section_methods, "qfs": section_qfs, "torchcam": section_torchcam, "qubo": section_qubo,
            "malloc": section_malloc, "dask": section_dask, "memory": section_memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections, of: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for every row, anchors included (default 1: on a shared machine "
                             "OpenMP's spinning threads make 2 threads several times slower than 1)")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(unknown)}; expected some of {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    torch.manual_seed(0)
    for name in names:
        SECTIONS[name]()
        sys.stdout.flush()


if __name__ == "__main__":
    main()

"""explain_dataset with all three methods (one capture per batch) against the three CAM classes
called separately on the same batches; same model, same images, same run.

Run with timing: ``./dev bench -k dataset`` (or ``python -m benches.dataset_report`` for the
ratio tables of issue 9). In the normal test run each case runs once as a correctness test.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

import qfsel
from qfsel.cams import GradCAM, GradCAMPlusPlus, QFSCAM
from qfsel.datasets import mnist5k
from qfsel.models import load_model

N, BATCH = 64, 32


@pytest.fixture(scope="module")
def setup():
    bundle = load_model("narrow-mnist-16")
    return bundle.model, bundle.default_layer, mnist5k("test")[0][:N]


def separately(model, layer, x):
    cams = [GradCAM(model, [layer]), GradCAMPlusPlus(model, [layer]), QFSCAM(model, [layer], seed=0)]
    out = {c.method: [] for c in cams}
    for s in range(0, N, BATCH):
        for cam in cams:
            out[cam.method].append(cam(x[s : s + BATCH]))
    return {m: np.concatenate(v) for m, v in out.items()}


def together(model, layer, x):
    out = tempfile.mkdtemp(prefix="qfsel-bench-") + "/s"
    qfsel.explain_dataset(model, x, [layer], out=out, batch_size=BATCH, num_workers=0, progress=False,
                          dtype="float32")
    return qfsel.open_results(out)


@pytest.mark.benchmark(group="dataset-methods")
def test_three_cams_separately(benchmark, setup):
    maps = benchmark(separately, *setup)
    assert maps["gradcam"].shape == (N, 28, 28)


@pytest.mark.benchmark(group="dataset-methods")
def test_explain_dataset_all_methods(benchmark, setup):
    res = benchmark(together, *setup)
    ref = separately(*setup)
    np.testing.assert_array_equal(res.heatmaps("gradcam")[:], ref["gradcam"])
    np.testing.assert_array_equal(res.heatmaps("gradcam++")[:], ref["gradcam++"])
    np.testing.assert_array_equal(res.heatmaps("qfs")[:], ref["qfs-cam"])

"""A small explain_dataset job run as a subprocess by tests/test_dataset.py (killed and resumed).

Usage: python tests/_dataset_job.py OUT [NUM_WORKERS]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._tiny_models import GapNet  # noqa: E402

NUM_IMAGES, BATCH = 60, 4


class SlowGapNet(GapNet):
    """GapNet whose forward pass also waits 40 ms: a job long enough to be killed mid-way.

    With ``QFSEL_TEST_FORWARDS=FILE`` every forward pass appends its batch size to FILE.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log = os.environ.get("QFSEL_TEST_FORWARDS")
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{x.shape[0]}\n".encode())
            os.close(fd)
        time.sleep(0.04)
        return super().forward(x)


def images() -> torch.Tensor:
    return torch.rand(NUM_IMAGES, 3, 10, 10, generator=torch.Generator().manual_seed(7))


def run(out: str, num_workers: int = 0, model: torch.nn.Module | None = None):
    import qfsel

    torch.set_num_threads(1)
    return qfsel.explain_dataset(
        model if model is not None else SlowGapNet(k=10, classes=3), images(), ["act"], out=out, batch_size=BATCH,
        num_workers=num_workers, progress=False, sampler="sa", k=3, seed=11,
    )


if __name__ == "__main__":
    from tests._dataset_job import run as _run  # the same classes as when imported by the tests

    print(_run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0), flush=True)

"""glibc malloc settings for long CPU jobs (:func:`tune_malloc`).

A CNN's forward pass on the CPU frees and allocates the same large activation tensors
(MiBs each) every batch. With glibc's default dynamic thresholds, the freed memory at the
top of the heap is handed back to the kernel (trimmed) after a batch, and tensors above
the mmap threshold are mapped afresh each time; the next batch then takes a page fault
per 4 KiB and the kernel zeroes every page again. Measured here on 2 cores
(``benches/dataset_report.py --only malloc``): 45,000-100,000 page faults per 1,024 MNIST
images, and 1.1-1.7x the images/s once the memory is kept for reuse.

:func:`tune_malloc` sets fixed thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`)
with ``mallopt``, so that those tensors come from the heap and are reused. Peak memory is
unchanged (each batch needs its working set anyway); what changes is that up to
:data:`TRIM_THRESHOLD` of freed memory per malloc arena stays with the process instead of
going back to the kernel between batches. The settings last for the rest of the process.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_malloc"]

#: Allocations below this are served from the heap (glibc's default starts at 128 KiB and
#: rises only up to 32 MiB, below a batch's larger activations, e.g. 38 MiB at batch 8 in
#: EfficientNet-Lite0's stem).
MMAP_THRESHOLD = 128 << 20
#: Free memory at the top of a heap beyond this is returned to the kernel.
TRIM_THRESHOLD = 256 << 20

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Environment variables by which a user configures malloc (left alone when set).
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

#: What a Dask nanny puts in its workers' environment unless told otherwise
#: (``distributed.nanny.pre-spawn-environ``): trim at 64 KiB, which also switches off glibc's
#: adaptive mmap threshold, so that every tensor above 128 KiB is mapped afresh.
DISTRIBUTED_TRIM_DEFAULT = "65536"
#: The highest mmap threshold glibc before 2.35 accepts on 64-bit systems.
_OLD_GLIBC_MMAP_MAX = 32 << 20

_done: bool | None = None  # None: not tried yet; else what the first call returned


def _initial_environ() -> dict[str, str]:
    """The environment this process started with, which is what glibc read: os.environ may
    have changed since (distributed's nanny, for one, writes its workers' MALLOC_* settings into
    the process that starts them)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environ)
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _skip_reason(dask_worker: bool = False) -> str | None:
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    env = _initial_environ()
    if dask_worker and env.get("MALLOC_TRIM_THRESHOLD_") == DISTRIBUTED_TRIM_DEFAULT:
        del env["MALLOC_TRIM_THRESHOLD_"]  # distributed's, not the user's
    if any(v in env for v in _USER_SETTINGS) or "glibc.malloc." in env.get("GLIBC_TUNABLES", ""):
        return "malloc is configured by the environment (MALLOC_*_ or GLIBC_TUNABLES)"
    preload = env.get("LD_PRELOAD", "").lower()
    if any(name in preload for name in _OTHER_ALLOCATORS):
        return "another allocator is preloaded (LD_PRELOAD)"
    return None


def _apply() -> bool:
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (present in glibc only)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap_set = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) or bool(mallopt(_M_MMAP_THRESHOLD, _OLD_GLIBC_MMAP_MAX))
    return mmap_set and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def tune_malloc() -> bool:
    """Keeps freed memory for reuse in long CPU jobs: sets glibc's mmap and trim thresholds.

    Called by :func:`qfsel.explain_dataset` and :func:`qfsel.evaluate` (``tune_malloc=True``,
    their default) and by the Dask workers of a job; call it yourself before a loop of your
    own over batches (``GradCAM(model)(batch)`` and the like). The settings last for the
    rest of the process (see the module :mod:`qfsel._malloc`). Nothing is changed on a
    system without glibc, when the environment configures malloc (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_``, or
    ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``), or when jemalloc, tcmalloc or
    mimalloc is preloaded.

    Returns:
        True when the thresholds are set (now or by an earlier call), False when nothing
        was changed.
    """
    return _tune(dask_worker=False)


def _tune(dask_worker: bool) -> bool:
    """:func:`tune_malloc`; in a Dask worker, distributed's own trim setting
    (:data:`DISTRIBUTED_TRIM_DEFAULT`) does not count as the user's."""
    global _done
    if _done is None:
        _done = _skip_reason(dask_worker) is None and _apply()
    return _done

"""Importing Quantus 0.6 on numpy 2.

Quantus 0.6 calls ``np.trapz``, which numpy 2.0 renamed ``np.trapezoid`` (``np.trapz`` was
removed in numpy 2.4). Before importing Quantus, :func:`quantus` sets ``np.trapz =
np.trapezoid`` when the old name is missing (same function, same arguments); nothing else is
changed. Quantus is an optional dependency (``pip install 'qfsel[eval]'``).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np


@functools.lru_cache(maxsize=1)
def quantus() -> Any:
    """The ``quantus`` module (imported once, with the numpy-2 shim)."""
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import quantus as q
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("this metric needs Quantus: pip install 'quantus>=0.6,<0.7'") from exc
    return q

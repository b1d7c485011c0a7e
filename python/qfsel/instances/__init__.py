"""Benchmark instances: feature-selection problems saved with where they came from and their ground truth.

An :class:`Instance` is one problem (relevance ``h (K,)``, redundancy ``J (K, K)``, ``beta``, ``k``,
``penalty``) plus its family, provenance (generator and seed, or model, layer and image) and,
once known, its ground truth (the lowest energy, one state reaching it, and how it was obtained).
Instances captured from real explanations also keep the candidate maps and their GradCAM weights,
so an explanation (heatmap) can be rebuilt from any selection.

File format ``qfsel-instance`` version 1 (one ``.npz`` per instance, :func:`save` / :func:`load`):

* ``meta``: a 0-d unicode array holding a JSON object with ``format = "qfsel-instance"``,
  ``version = 1``, ``name``, ``family``, ``num_variables``, ``beta``, ``k`` (or null), ``penalty``
  (or null: the safe automatic penalty of :class:`qfsel.ProblemBatch`), ``provenance`` (object) and
  ``ground_truth`` (null or ``{"energy", "method", "certified", "details"}``: ``method`` is
  ``"exact"`` (exhaustive search, certified) or ``"best-known"`` (lowest energy over the solvers and
  runs listed in ``details``));
* ``relevance`` ``(K,)`` float64 and ``redundancy`` ``(K, K)`` float64 (symmetric, zero diagonal);
* optional ``ground_state`` ``(K,)`` uint8, and for captured instances ``maps`` ``(K, h, w)``
  float32 (the candidate feature maps), ``alpha`` ``(K,)`` float64 (their GradCAM weights) and
  ``candidates`` ``(K,)`` int64 (their channel indices in the layer).

Example:
    >>> import tempfile, os
    >>> from qfsel.instances import generate, save, load
    >>> inst = generate("explanation", 12, k=3, seed=0)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = save(inst, os.path.join(d, "a.npz"))
    ...     back = load(path)
    >>> back.name == inst.name, back.k, back.problem().num_variables
    (True, 3, 12)
"""

from __future__ import annotations

from ._format import FORMAT, VERSION, Instance, load, load_many, save, save_many
from .generate import FAMILIES, HELD_OUT, TUNING, default_k, generate, generate_suite
from .truth import exact_limit_ok, ground_truth, with_ground_truth

__all__ = [
    "FORMAT",
    "VERSION",
    "Instance",
    "save",
    "load",
    "save_many",
    "load_many",
    "FAMILIES",
    "TUNING",
    "HELD_OUT",
    "default_k",
    "generate",
    "generate_suite",
    "ground_truth",
    "with_ground_truth",
    "exact_limit_ok",
    "capture",
]


def capture(*args, **kwargs):
    """Capture instances from real explanations (see :func:`qfsel.instances.capture.capture`; needs torch)."""
    from .capture import capture as _capture

    return _capture(*args, **kwargs)

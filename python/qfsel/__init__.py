"""qfsel: explain CNN predictions with the few feature maps that matter most.

For each prediction, qfsel chooses a handful of a conv layer's feature maps by
solving a binary feature-selection problem (a QUBO, optionally with exactly
``k`` maps) with fast Rust samplers or D-Wave's Ocean stack, and draws the
heatmap of just those maps next to GradCAM and GradCAM++.

The solver API (problems, samplers, :func:`solve`) does not import torch; the
explainers (:class:`GradCAM`, :class:`GradCAMPlusPlus`, :class:`QFSCAM`) and
the modules ``models``, ``datasets``, ``targets`` and ``viz`` load it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import exceptions
from .exceptions import InfeasibleError, ProblemTooLargeError, QFSelError, QFSelWarning
from ._malloc import tune_malloc
from .qubo import FeatureSelectionProblem, ProblemBatch, bisect_beta
from .routing import Solution, available_solvers, solve
from .routing import validate_solver
from . import samplers  # noqa: E402  (registers the built-in solvers)
from .samplers import ExactSampler, GreedySampler, SimulatedAnnealingSampler, TabuSampler
from .samplers import SQASampler, SimulatedQuantumAnnealingSampler

__version__ = "0.1.0"

# Names that need torch, resolved on first access (PEP 562).
_LAZY = {
    "GradCAM": "qfsel.cams",
    "GradCAMPlusPlus": "qfsel.cams",
    "QFSCAM": "qfsel.cams",
    "ExplanationResult": "qfsel.cams",
    "explain_all": "qfsel.cams",
    # issue 8 (i8b): pytorch-grad-cam style targets and overlay
    "ClassifierOutputTarget": "qfsel.targets",
    "ClassifierOutputSoftmaxTarget": "qfsel.targets",
    "BinaryClassifierOutputTarget": "qfsel.targets",
    "RegressionOutputTarget": "qfsel.targets",
    "show_cam_on_image": "qfsel.viz",
    # dataset-scale explanation (issue 9)
    "explain_dataset": "qfsel.dataset",
    "open_results": "qfsel.dataset",
    # issue 13: benchmarking (pandas loads on first use)
    "benchmark": "qfsel.bench",
    # evaluation (issue 10)
    "evaluate": "qfsel.evaluation",
}
_LAZY_MODULES = {"cams", "capture", "datasets", "heatmap", "models", "scoring", "targets", "viz"}
_LAZY_MODULES |= {"dataset"}
_LAZY_MODULES |= {"bench", "instances"}  # issue 13
# issue 12 (annealing physics, no torch): qfsel.quantum loads on first access
_LAZY_MODULES |= {"quantum"}
_LAZY_MODULES |= {"evaluation", "metrics", "paper_model", "shapes"}  # issue 10


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        return importlib.import_module(f"qfsel.{name}")
    raise AttributeError(f"module 'qfsel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _LAZY_MODULES)


__all__ = [
    # problems and solving
    "FeatureSelectionProblem",
    "ProblemBatch",
    "Solution",
    "solve",
    "validate_solver",
    "available_solvers",
    "bisect_beta",
    # samplers (dimod)
    "samplers",
    "SimulatedAnnealingSampler",
    "TabuSampler",
    "GreedySampler",
    "ExactSampler",
    "SimulatedQuantumAnnealingSampler",
    "SQASampler",
    # explanations (torch)
    "GradCAM",
    "GradCAMPlusPlus",
    "QFSCAM",
    "ExplanationResult",
    "explain_all",
    # targets and overlays (torch / matplotlib; issue 8)
    "ClassifierOutputTarget",
    "ClassifierOutputSoftmaxTarget",
    "BinaryClassifierOutputTarget",
    "RegressionOutputTarget",
    "show_cam_on_image",
    # dataset-scale explanation (torch, zarr, pyarrow)
    "explain_dataset",
    "open_results",
    # annealing physics (issue 12)
    "quantum",
    # evaluation (issue 10)
    "evaluate",
    # long CPU jobs: glibc malloc thresholds (issue 9)
    "tune_malloc",
    # errors
    "exceptions",
    "QFSelError",
    "ProblemTooLargeError",
    "InfeasibleError",
    "QFSelWarning",
    # benchmarking (issue 13)
    "benchmark",
    "bench",
    "instances",
    "__version__",
]

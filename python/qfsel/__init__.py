"""qfsel: explain CNN predictions with the few feature maps that matter most.

For each prediction, qfsel chooses a handful of a conv layer's feature maps by
solving a binary feature-selection problem (a QUBO, optionally with exactly
``k`` maps) with fast Rust samplers or D-Wave's Ocean stack, and draws the
heatmap of just those maps next to GradCAM and GradCAM++.
"""

from __future__ import annotations

from . import exceptions
from .exceptions import InfeasibleError, ProblemTooLargeError, QFSelError, QFSelWarning
from .qubo import FeatureSelectionProblem, ProblemBatch, bisect_beta
from .routing import Solution, available_solvers, solve
from . import samplers  # noqa: E402  (registers the built-in solvers)

__version__ = "0.1.0"

__all__ = [
    "FeatureSelectionProblem",
    "ProblemBatch",
    "Solution",
    "solve",
    "available_solvers",
    "bisect_beta",
    "samplers",
    "exceptions",
    "QFSelError",
    "ProblemTooLargeError",
    "InfeasibleError",
    "QFSelWarning",
    "__version__",
]

"""qfsel's own exception and warning classes.

Domain failures derive from :class:`QFSelError`; those caused by a bad argument
also derive from the matching built-in (``ValueError``), so ``except ValueError``
keeps working for callers who do not know qfsel's hierarchy.
"""

from __future__ import annotations

__all__ = [
    "QFSelError",
    "ProblemTooLargeError",
    "InfeasibleError",
    "QFSelWarning",
]


class QFSelError(Exception):
    """Base class of every error qfsel raises on purpose."""


class ProblemTooLargeError(QFSelError, ValueError):
    """The problem exceeds a documented size limit of the chosen solver.

    The message states the limit and what to use instead.
    """


class InfeasibleError(QFSelError, ValueError):
    """No state satisfies the constraint (for example ``k`` larger than the number of candidate maps)."""


class QFSelWarning(UserWarning):
    """Something was computed, but a user should look at it (for example a flat heatmap)."""

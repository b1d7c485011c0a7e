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


# --- remote D-Wave solvers (qfsel.samplers.dwave) ------------------------------------
__all__ += ["CredentialsError", "RemoteSolverError", "SolverUnavailableError", "SolverTimeoutError"]


class CredentialsError(QFSelError, RuntimeError):
    """No D-Wave API token was found (raised before any work is done); the message says how to configure one."""


class RemoteSolverError(QFSelError, RuntimeError):
    """A remote solver job failed (network, SAPI error). The message names the route.

    Attributes:
        route: the route's name (``"dwave"``, ``"hybrid-cqm"``, ...).
        partial: a :class:`qfsel.Solution` of the problems that were solved
            (``partial.info["indices"]`` are their positions in the batch), or ``None``.
        failed: ``{problem index: reason}`` for every problem without a result.
    """

    def __init__(self, message: str, route: str = "", partial=None, failed=None):
        super().__init__(message)
        self.route = route
        self.partial = partial
        self.failed = dict(failed or {})


class SolverUnavailableError(RemoteSolverError):
    """The selected solver does not exist, is offline, or refused the job."""


class SolverTimeoutError(RemoteSolverError):
    """A remote job did not finish within the time allowed."""

"""qfsel's samplers: Rust solvers behind the ``dimod.Sampler`` interface.

* :class:`SimulatedAnnealingSampler` -- single-flip Metropolis on dense or
  sparse models, or swap moves that keep exactly ``k`` ones (``cardinality=k``).
* :class:`TabuSampler` -- one-flip or swap-move tabu search with restarts.
* :class:`GreedySampler` -- greedy construction + steepest descent.
* :class:`ExactSampler` -- every ground state, exhaustively.
* :class:`SimulatedQuantumAnnealingSampler` (alias ``SQASampler``) -- path-integral
  Monte Carlo of the transverse-field model, flip or swap (``cardinality=k``) moves.

Importing this package registers the batch solvers ``"sa"``, ``"sa-penalty"``,
``"tabu"``, ``"greedy"``, ``"exact"`` and ``"sqa"`` with :func:`qfsel.solve`.
"""

from .exact import ExactSampler
from .greedy import GreedySampler
from .sa import SimulatedAnnealingSampler
from .tabu import TabuSampler
from .sqa import SQASampler, SimulatedQuantumAnnealingSampler

__all__ = ["ExactSampler", "GreedySampler", "SimulatedAnnealingSampler", "TabuSampler"]

# D-Wave routes "dwave", "dwave-clique", "hybrid-cqm", "hybrid-bqm" (issue 11; Ocean is imported on first use).
from . import dwave as dwave  # noqa: E402,F401
__all__ += ["SQASampler", "SimulatedQuantumAnnealingSampler"]

"""qfsel's samplers: Rust solvers behind the ``dimod.Sampler`` interface.

Importing this package registers them with :func:`qfsel.solve`.
"""

from .exact import ExactSampler

__all__ = ["ExactSampler"]

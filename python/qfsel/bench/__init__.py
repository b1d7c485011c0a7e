"""Benchmark classical and quantum samplers on feature-selection instances: one harness, honest figures.

* :func:`benchmark` (also ``qfsel.benchmark`` and ``qfsel bench`` on the command line): every sampler
  on every instance under the same :class:`Budget`, over seeds, with a per-cell time limit;
  failures are recorded and the rest goes on; runs resume and extend.
* :class:`BenchmarkResult`: raw reads and cells, per-instance and per-size figures (success, feasibility,
  residual energy, approximation ratio, TTS99 with bootstrap CIs, time per read, QPU times), the
  explanation fidelity of each sampler's answer on captured instances, markdown and PNG plots.
* Sampler entries (:func:`as_entry`, :func:`entry_names`): qfsel's solvers by name, outside anchors
  when installed, mocks labelled as mocks, any ``dimod.Sampler`` or callable.

Instances come from :mod:`qfsel.instances`. Metric definitions: :mod:`qfsel.bench.metrics`.

Example:
    >>> from qfsel.instances import generate
    >>> from qfsel.bench import benchmark, Budget
    >>> res = benchmark([generate("explanation", 10, k=3)], ["sa", "greedy"], Budget(num_reads=8), seeds=2)
    >>> res.summary()[["sampler", "success"]].to_dict("records")
    [{'sampler': 'greedy', 'success': 1.0}, {'sampler': 'sa', 'success': 1.0}]
"""

from __future__ import annotations

from .entries import ANCHORS, Entry, RunOutput, as_entry, entry_names
from .harness import Budget, benchmark
from .results import BenchmarkResult

__all__ = ["benchmark", "Budget", "BenchmarkResult", "Entry", "RunOutput", "as_entry", "entry_names", "ANCHORS"]

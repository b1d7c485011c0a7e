"""Offline stand-ins for the D-Wave tests: a counting MockDWaveSampler and a fake Leap transport.

Only the transport is fake: ``FakeClient`` replaces dwave-cloud-client's
``Client`` inside ``dwave.system``'s hybrid samplers, so the real
``LeapHybridCQMSampler`` / ``LeapHybridSampler`` code (model checks,
serialisation, ``min_time_limit``) runs and talks to a ``FakeSolver`` that
solves the uploaded model locally.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import dimod
import numpy as np
from dwave.cloud.testing.mocks import hybrid_bqm_solver_data, hybrid_cqm_solver_data
from dwave.system.testing import MockDWaveSampler

TOKEN = "DEV-0123456789abcdef0123456789abcdef01234567"


class CountingQPU(MockDWaveSampler):
    """MockDWaveSampler that counts and records its sample calls; ``fail_on`` makes chosen calls raise."""

    def __init__(self, *args: Any, fail_on: dict[int, BaseException] | None = None, **kwargs: Any):
        kwargs.setdefault("substitute_kwargs", {"seed": 7})
        kwargs.setdefault("exact_solver_cutoff", 0)
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.kwargs: list[dict] = []
        self.fail_on = fail_on or {}

    def sample(self, bqm, **kwargs):
        self.calls += 1
        self.kwargs.append(dict(kwargs))
        if self.calls in self.fail_on:
            raise self.fail_on[self.calls]
        return super().sample(bqm, **kwargs)


class _Answer:
    def __init__(self, sampleset):
        self.sampleset = sampleset


class FakeSolver:
    """What ``client.get_solver()`` returns: upload and sample calls answered locally."""

    def __init__(self, kind: str, fail_on: dict[int, BaseException] | None = None, hang: bool = False):
        data = hybrid_cqm_solver_data() if kind == "cqm" else hybrid_bqm_solver_data()
        self.name = data["identity"]["name"]
        self.properties = dict(data["properties"], category="hybrid", parameters={"time_limit": ""})
        self.supported_problem_types = [kind]
        self.kind = kind
        self.uploads = 0
        self.submissions: list[dict] = []
        self.fail_on = fail_on or {}
        self.hang = hang
        self.answers: list[dimod.SampleSet] = []

    def _upload(self, f):
        self.uploads += 1
        f.seek(0)
        model = dimod.ConstrainedQuadraticModel.from_file(f) if self.kind == "cqm" else dimod.BQM.from_file(f)
        fut = concurrent.futures.Future()
        fut.set_result(model)
        return fut

    upload_problem = _upload
    upload_bqm = _upload

    def _sample(self, model, time_limit, **kwargs):
        self.submissions.append(dict(kwargs, time_limit=time_limit))
        n = len(self.submissions)
        if n in self.fail_on:
            raise self.fail_on[n]
        if self.hang:
            return _Answer(dimod.SampleSet.from_future(concurrent.futures.Future()))
        from dwave.samplers import SimulatedAnnealingSampler

        bqm = dimod.cqm_to_bqm(model, lagrange_multiplier=10.0)[0] if self.kind == "cqm" else model
        ss = SimulatedAnnealingSampler().sample(bqm, num_reads=20, num_sweeps=200, seed=n)
        samples = dimod.as_samples(ss)
        if self.kind == "cqm":
            out = dimod.SampleSet.from_samples_cqm(samples, model)
        else:
            out = dimod.SampleSet.from_samples_bqm(samples, model)
        out.info.update(qpu_access_time=40_000, run_time=int(time_limit * 1e6), charge_time=int(time_limit * 1e6),
                        problem_id=f"fake-{n}")
        self.answers.append(out)
        return _Answer(out)

    sample_cqm = _sample
    sample_bqm = _sample


class FakeClient:
    """Stands in for ``dwave.cloud.Client`` (``from_config`` and ``get_solver`` only)."""

    solvers: dict[str, FakeSolver] = {}
    configs: list[dict] = []
    get_solver_error: BaseException | None = None

    def __init__(self, config: dict):
        self.config = config

    @classmethod
    def from_config(cls, **config: Any) -> "FakeClient":
        cls.configs.append(config)
        return cls(config)

    def get_solver(self) -> FakeSolver:
        if type(self).get_solver_error is not None:
            raise type(self).get_solver_error
        kind = self.config["defaults"]["solver"]["supported_problem_types__contains"]
        return type(self).solvers[kind]

    def close(self) -> None:
        pass


def random_batch(b: int, k_vars: int, k: int | None, seed: int = 0):
    from qfsel import ProblemBatch

    rng = np.random.default_rng(seed)
    h = rng.uniform(0.1, 1.0, (b, k_vars))
    j = np.abs(rng.normal(size=(b, k_vars, k_vars)))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, range(k_vars), range(k_vars)] = 0
    return ProblemBatch(h, j, beta=0.7, k=k)

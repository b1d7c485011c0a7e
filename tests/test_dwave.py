"""The D-Wave routes, offline: MockDWaveSampler as the QPU, a fake transport under the real hybrid samplers."""

from __future__ import annotations

import logging
import math
import types

import dimod
import numpy as np
import pytest
from dwave.cloud.testing.mocks import qpu_problem_timing_data

import qfsel
from qfsel.exceptions import (
    CredentialsError,
    ProblemTooLargeError,
    RemoteSolverError,
    SolverTimeoutError,
    SolverUnavailableError,
)
from qfsel.samplers import dwave as qd

from ._dwave_fakes import TOKEN, CountingQPU, FakeClient, FakeSolver, random_batch

PEGASUS_BROKEN = [3, 17, 40, 41, 90]


@pytest.fixture(autouse=True)
def _fresh_cache():
    qd.default_cache.clear()
    yield
    qd.default_cache.clear()


@pytest.fixture
def token(monkeypatch, tmp_path):
    """A fake token in DWAVE_API_TOKEN and an empty config file (no real configuration is read)."""
    conf = tmp_path / "dwave.conf"
    conf.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(conf))
    monkeypatch.setenv("DWAVE_API_TOKEN", TOKEN)
    monkeypatch.delenv("DWAVE_PROFILE", raising=False)
    return TOKEN


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    conf = tmp_path / "dwave.conf"
    conf.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(conf))
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.delenv("DWAVE_PROFILE", raising=False)


@pytest.fixture
def transport(monkeypatch, token):
    """The real Leap hybrid samplers over a fake client/solver pair."""
    import dwave.system.samplers.leap_hybrid_sampler as lh

    monkeypatch.setattr(lh, "Client", FakeClient)
    FakeClient.solvers = {"cqm": FakeSolver("cqm"), "bqm": FakeSolver("bqm")}
    FakeClient.configs = []
    FakeClient.get_solver_error = None
    return FakeClient


def pegasus(**kw):
    return CountingQPU(topology_type="pegasus", topology_shape=[3], broken_nodes=PEGASUS_BROKEN, **kw)


def zephyr(**kw):
    return CountingQPU(topology_type="zephyr", topology_shape=[2, 4], broken_nodes=[0, 5, 77], **kw)


def test_routes_are_registered():
    names = qfsel.available_solvers()
    for route in ("dwave", "dwave-clique", "hybrid-cqm", "hybrid-bqm"):
        assert route in names


def _check_embeddings(sol, qpu, n):
    graph = qpu.to_networkx_graph()
    from dwave.embedding import is_valid_embedding
    import networkx as nx

    by_job: dict[int, set] = {}
    for r in sol.info["problems"]:
        assert is_valid_embedding(r.embedding, nx.complete_graph(n), graph)
        qubits = {q for c in r.embedding.values() for q in c}
        assert not qubits & set(PEGASUS_BROKEN) or graph.graph["family"] != "pegasus"
        assert not qubits & by_job.setdefault(r.job, set()), "problems of one job must sit on disjoint qubits"
        by_job[r.job] |= qubits


@pytest.mark.parametrize("route", ["dwave-clique", "dwave"])
def test_packed_and_one_by_one_agree_with_exact(route):
    batch = random_batch(10, 6, 2, seed=1)
    exact = qfsel.solve(batch, "exact")
    packed_qpu, single_qpu = pegasus(), pegasus()
    packed = qfsel.solve(batch, route, qpu=packed_qpu, num_reads=30)
    single = qfsel.solve(batch, route, qpu=single_qpu, num_reads=30, pack=False)
    per_job = packed.info["per_job"]
    assert per_job > 1
    assert packed_qpu.calls == math.ceil(10 / per_job) == packed.info["num_jobs"]
    assert single_qpu.calls == 10 and single.info["per_job"] == 1
    for sol in (packed, single):
        assert sol.feasible.all() and (sol.num_selected == 2).all()
        np.testing.assert_allclose(sol.energies, batch.energy(sol.states))
        assert np.isclose(sol.energies, exact.energies).sum() >= 8, "the mock's descent should mostly find the optimum"
    both = np.isclose(packed.energies, exact.energies) & np.isclose(single.energies, exact.energies)
    assert both.sum() >= 7
    np.testing.assert_array_equal(packed.states[both], single.states[both])
    _check_embeddings(packed, packed_qpu, 6)


def test_zephyr_graph_with_broken_qubits():
    batch = random_batch(5, 5, 2, seed=2)
    exact = qfsel.solve(batch, "exact")
    for route in ("dwave", "dwave-clique"):
        qpu = zephyr()
        sol = qfsel.solve(batch, route, qpu=qpu, num_reads=20)
        assert qpu.calls == sol.info["num_jobs"] == math.ceil(5 / sol.info["per_job"])
        assert sol.feasible.all()
        assert np.isclose(sol.energies, exact.energies).sum() >= 4
        for r in sol.info["problems"]:
            assert not {0, 5, 77} & {q for c in r.embedding.values() for q in c}


def test_weak_chains_break_and_reads_are_repaired():
    batch = random_batch(6, 6, 3, seed=3)
    sol = qfsel.solve(batch, "dwave-clique", qpu=pegasus(), num_reads=20, chain_strength=0.02)
    cbf = [r.chain_break_fraction for r in sol.info["problems"]]
    assert max(cbf) > 0.05, cbf
    assert all(r.chain_strength == 0.02 for r in sol.info["problems"])
    assert sol.feasible.all() and (sol.num_selected == 3).all()
    default = qfsel.solve(batch, "dwave-clique", qpu=pegasus(), num_reads=20)
    from dwave.embedding.chain_strength import uniform_torque_compensation

    r0 = default.info["problems"][0]
    assert r0.chain_strength == pytest.approx(uniform_torque_compensation(qd._qpu._spin_bqm(batch[0]), r0.embedding))


def test_repair_is_the_documented_greedy_fix():
    rng = np.random.default_rng(4)
    batch = random_batch(1, 7, 3, seed=4)
    p = batch[0]
    q, _ = p.qubo(include_penalty=False)
    for _ in range(20):
        x = (rng.random((1, 7)) < rng.uniform(0.1, 0.9)).astype(np.uint8)
        fixed = qd.repair_to_k(q, x, 3)[0]
        assert fixed.sum() == 3
        m = int(x.sum())
        if m == 4:  # one removal: the best single removal by brute force
            cands = [np.where(np.arange(7) == i, 0, x[0]) for i in np.flatnonzero(x[0])]
            assert p.energy(fixed) == pytest.approx(min(p.energy(c) for c in cands))
        if m == 2:  # one addition
            cands = [np.where(np.arange(7) == i, 1, x[0]) for i in np.flatnonzero(x[0] == 0)]
            assert p.energy(fixed) == pytest.approx(min(p.energy(c) for c in cands))
        if m == 3:
            np.testing.assert_array_equal(fixed, x[0])
    # the best state is the best of the feasible reads and the repaired ones
    reads = np.array([[1, 1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0, 0]], np.uint8)
    state, energy, repaired, frac = qd.results.best_state(p, reads, np.array([3, 1]))
    expect = min(p.energy(qd.repair_to_k(q, reads[:1], 3)[0]), p.energy(qd.repair_to_k(q, reads[1:], 3)[0]))
    assert repaired and frac == 0 and energy == pytest.approx(expect) and state.sum() == 3


def test_max_per_job_and_capacity():
    batch = random_batch(7, 5, 2, seed=5)
    cap = qd.capacity(5, pegasus(), route="dwave-clique")
    assert cap >= 3
    qpu = pegasus()
    sol = qfsel.solve(batch, "dwave-clique", qpu=qpu, num_reads=10, max_per_job=3)
    assert qpu.calls == 3 and sol.info["per_job"] == 3
    assert [j.problems for j in sol.info["jobs"]] == [[0, 1, 2], [3, 4, 5], [6]]


def test_embedding_cache_process_and_disk(tmp_path):
    batch = random_batch(4, 6, 2, seed=6)
    qfsel.solve(batch, "dwave-clique", qpu=pegasus(), num_reads=5, embedding_cache_dir=tmp_path)
    searched = qd.default_cache.searches
    files = list(tmp_path.glob("qfsel-embedding-*.json"))
    assert len(files) == 1
    sol = qfsel.solve(random_batch(4, 6, 2, seed=7), "dwave-clique", qpu=pegasus(), num_reads=5)
    assert qd.default_cache.searches == searched, "same solver graph and K: no new search"
    qd.default_cache.clear()
    again = qfsel.solve(batch, "dwave-clique", qpu=pegasus(), num_reads=5, embedding_cache_dir=tmp_path)
    assert qd.default_cache.searches == searched, "read back from disk"
    assert [r.embedding for r in again.info["problems"]] == [r.embedding for r in sol.info["problems"]]
    # another yield is another graph: another key
    other = CountingQPU(topology_type="pegasus", topology_shape=[3], broken_nodes=[5])
    qfsel.solve(batch, "dwave-clique", qpu=other, num_reads=5, embedding_cache_dir=tmp_path)
    assert len(list(tmp_path.glob("qfsel-embedding-*.json"))) == 2
    # a cached embedding that no longer fits the graph is not used
    text = files[0].read_text()
    qubit = next(iter(sol.info["problems"][0].embedding[0]))
    files[0].write_text(text.replace(f"[{qubit},", "[3,", 1).replace(f", {qubit},", ", 3,", 1))
    qd.default_cache.clear()
    fresh = qfsel.solve(batch, "dwave-clique", qpu=pegasus(), num_reads=5, embedding_cache_dir=tmp_path)
    assert qd.default_cache.searches > searched
    assert all(3 not in c for r in fresh.info["problems"] for c in r.embedding.values())


def test_too_large_problem_names_candidates_and_hybrid():
    batch = random_batch(1, 40, 3, seed=8)
    for route in ("dwave-clique", "dwave"):
        qpu = pegasus()
        with pytest.raises(ProblemTooLargeError, match=r"candidates=N.*hybrid-cqm") as info:
            qfsel.solve(batch, route, qpu=qpu, embedding_parameters={"tries": 1, "timeout": 2})
        assert "K=40" in str(info.value) and qpu.calls == 0


def test_unknown_parameters_list_the_accepted_ones():
    batch = random_batch(1, 4, 2)
    with pytest.raises(TypeError, match=r"num_read: not a parameter of sampler 'dwave'.*chain_strength.*'num_reads'"):
        qfsel.solve(batch, "dwave", num_read=10)
    with pytest.raises(TypeError, match=r"'hybrid-cqm'.*time_limit"):
        qfsel.solve(batch, "hybrid-cqm", num_reads=10)
    with pytest.raises(ValueError, match="chain_break_method"):
        qfsel.solve(batch, "dwave", qpu=pegasus(), chain_break_method="vote")
    with pytest.raises(ValueError, match="num_reads"):
        qfsel.solve(batch, "dwave", qpu=pegasus(), num_reads=10**6)
    with pytest.raises(TypeError, match="qpu"):
        qfsel.solve(batch, "dwave", qpu=object())


def test_ocean_parameters_reach_the_qpu():
    qpu = pegasus(parameter_warnings=False)
    batch = random_batch(3, 4, 2)
    sol = qfsel.solve(batch, "dwave", qpu=qpu, num_reads=7, annealing_time=55.0, auto_scale=False, label="mine",
                      programming_thermalization=500.0, chain_break_method="minimize_energy")
    kw = qpu.kwargs[0]
    assert kw == {"num_reads": 7, "label": "mine", "annealing_time": 55.0, "auto_scale": False, "programming_thermalization": 500.0}
    assert all(r.num_reads == 7 for r in sol.info["problems"])
    from dwave.embedding import majority_vote

    for method in ("discard", "weighted_random", majority_vote):
        assert qfsel.solve(batch, "dwave", qpu=pegasus(), num_reads=5, chain_break_method=method).feasible.all()


def test_timing_is_shared_and_kept_apart():
    batch = random_batch(5, 5, 2, seed=9)
    sol = qfsel.solve(batch, "dwave-clique", qpu=pegasus(), num_reads=10)
    job = sol.info["jobs"][0]
    members = [r for r in sol.info["problems"] if r.job == 0]
    assert sum(r.timing["qpu_access_time"] for r in members) == pytest.approx(job.timing["qpu_access_time"])
    assert all(r.timing["qpu_anneal_time_per_sample"] == job.timing["qpu_anneal_time_per_sample"] for r in members)
    assert all(r.timing["shared_by"] == len(members) for r in members)
    t = sol.timing
    assert t["qpu_access_s"] == pytest.approx(sum(j.timing["qpu_access_time"] for j in sol.info["jobs"]) / 1e6)
    assert {"wall_s", "network_queue_s", "qpu_programming_s", "qpu_sampling_s", "embedding_s", "total_s"} <= set(t)


def test_estimate_before_submission():
    batch = random_batch(5, 5, 2, seed=10)
    qpu = pegasus()
    plan = qd.plan(batch, "dwave-clique", qpu=qpu, num_reads=50, annealing_time=40.0)
    assert qpu.calls == 0
    assert plan["estimate_source"] == "qfsel model"
    m = qd.timing.MODEL
    one = m["programming_us"] + m["programming_thermalization_us"] + 50 * (40.0 + m["readout_us"] + m["delay_us"])
    assert plan["jobs"][0]["estimate_us"] == pytest.approx(one)
    assert plan["estimate_qpu_access_us"] == pytest.approx(one * plan["num_jobs"])

    # a sampler with a cloud-client solver: its estimate_qpu_access_time is used
    from dwave.cloud.solver import StructuredSolver

    holder = types.SimpleNamespace(properties={"problem_timing_data": qpu_problem_timing_data("advantage")})
    cloud = pegasus()
    cloud.solver = types.SimpleNamespace(name="Advantage_mock",
                                         estimate_qpu_access_time=types.MethodType(StructuredSolver.estimate_qpu_access_time, holder))
    sol = qfsel.solve(batch, "dwave-clique", qpu=cloud, num_reads=50)
    job = sol.info["jobs"][0]
    assert job.estimate_source == "dwave-cloud-client" and sol.info["solver"] == "Advantage_mock"
    assert job.estimate_us == pytest.approx(cloud.solver.estimate_qpu_access_time(job.num_qubits, num_reads=50))


def test_missing_credentials_fail_before_any_work(no_token, monkeypatch):
    import dwave.system

    def forbidden(*a, **k):
        raise AssertionError("no work may start without credentials")

    monkeypatch.setattr(dwave.system, "DWaveSampler", forbidden)
    monkeypatch.setattr(dwave.system, "LeapHybridCQMSampler", forbidden)
    monkeypatch.setattr(qd.default_cache, "slots", forbidden)
    batch = random_batch(2, 4, 2)
    for route in qd.ROUTES:
        with pytest.raises(CredentialsError, match=r"DWAVE_API_TOKEN.*") as info:
            qfsel.solve(batch, route)
        assert route in str(info.value) and "dwave setup" in str(info.value)
    with pytest.raises(CredentialsError, match="could not read"):
        qfsel.solve(batch, "dwave", config_file="/nonexistent/dwave.conf")


def test_configured_token_reaches_the_client_but_no_result(token, monkeypatch, caplog):
    import dwave.system

    made = []

    def fake_dwave_sampler(**config):
        made.append(config)
        return pegasus()

    monkeypatch.setattr(dwave.system, "DWaveSampler", fake_dwave_sampler)
    caplog.set_level(logging.DEBUG)
    sol = qfsel.solve(random_batch(2, 4, 2), "dwave", solver={"topology__type": "pegasus"}, num_reads=5, token=token)
    assert made == [{"solver": {"topology__type": "pegasus"}, "token": token}]
    text = repr(sol) + repr(sol.info) + caplog.text
    assert token not in text and token[4:] not in text


def test_network_error_keeps_the_other_results(token, caplog):
    import requests

    batch = random_batch(6, 5, 2, seed=11)
    qpu = pegasus(fail_on={2: requests.exceptions.ConnectionError(f"Max retries (headers X-Auth-Token: {token})")})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RemoteSolverError, match=r"sampler 'dwave-clique'.*ConnectionError") as info:
        qfsel.solve(batch, "dwave-clique", qpu=qpu, num_reads=5, max_per_job=2)
    err = info.value
    assert token not in str(err) and token[4:] not in str(err) and "***" in str(err)
    assert err.route == "dwave-clique" and sorted(err.failed) == [2, 3]
    assert err.partial.info["indices"] == [0, 1, 4, 5] and len(err.partial) == 4
    for pos, i in enumerate(err.partial.info["indices"]):
        assert batch[i].energy(err.partial.states[pos]) == pytest.approx(err.partial.energies[pos])
    assert token not in caplog.text


def test_hybrid_cqm_end_to_end(transport):
    batch = random_batch(7, 6, 2, seed=12)
    sol = qfsel.solve(batch, "hybrid-cqm", max_per_job=3, label="run")
    solver = transport.solvers["cqm"]
    assert solver.uploads == len(solver.submissions) == 3 == sol.info["num_jobs"]
    assert [s["label"] for s in solver.submissions] == ["run (job 1/3)", "run (job 2/3)", "run (job 3/3)"]
    assert sol.feasible.all()
    # the real LeapHybridCQMSampler.min_time_limit set the default time limit
    from dwave.system import LeapHybridCQMSampler

    minimum = LeapHybridCQMSampler().min_time_limit(qd.hybrid._model(batch, [0, 1, 2], "cqm"))
    assert solver.submissions[0]["time_limit"] == pytest.approx(minimum)
    # each problem gets the best feasible read of its own variables
    for r in sol.info["problems"]:
        answer = solver.answers[r.job]
        slot = sol.info["jobs"][r.job].problems.index(r.index)
        samples = dimod.as_samples(answer)[0][:, slot * 6:(slot + 1) * 6]
        ok = samples.sum(axis=1) == 2
        if ok.any():
            assert r.energy == pytest.approx(min(batch[r.index].energy(samples[ok])))
            assert not r.repaired
    assert sol.timing["charge_s"] == pytest.approx(3 * minimum)


def test_hybrid_time_limit_checked_before_submitting(transport):
    batch = random_batch(4, 6, 2)
    with pytest.raises(ValueError, match="time_limit: the solver's minimum"):
        qfsel.solve(batch, "hybrid-cqm", time_limit=0.5)
    assert transport.solvers["cqm"].uploads == 0
    sol = qfsel.solve(batch, "hybrid-cqm", time_limit=3)
    assert [s["time_limit"] for s in transport.solvers["cqm"].submissions] == [3]
    assert sol.info["per_job"] == 4


def test_hybrid_bqm_without_k(transport):
    batch = random_batch(5, 6, None, seed=13)
    exact = qfsel.solve(batch, "exact")
    sol = qfsel.solve(batch, "hybrid-bqm")
    assert transport.solvers["bqm"].uploads == 1
    assert np.isclose(sol.energies, exact.energies).sum() >= 4


def test_hybrid_solver_unavailable_and_timeout(transport, token):
    from dwave.cloud.exceptions import SolverNotFoundError

    batch = random_batch(2, 4, 2)
    transport.get_solver_error = SolverNotFoundError(f"no solver for token {token}")
    with pytest.raises(SolverUnavailableError, match="sampler 'hybrid-cqm'") as info:
        qfsel.solve(batch, "hybrid-cqm")
    assert token not in str(info.value)
    transport.get_solver_error = None
    transport.solvers["cqm"] = FakeSolver("cqm", hang=True)
    with pytest.raises(SolverTimeoutError, match=r"sampler 'hybrid-cqm'.*timed out"):
        qfsel.solve(batch, "hybrid-cqm", timeout=0.1, pack=False)


def test_qfscam_routes_a_whole_batch_through_one_qpu_job():
    pytest.importorskip("torch")
    from qfsel.cams import QFSCAM

    from ._tiny_models import GapNet, images

    qpu = pegasus()
    model, x = GapNet(k=6), images(4)
    cam = QFSCAM(model, ["act"], k=2, sampler="dwave-clique", sampler_params={"qpu": qpu, "num_reads": 20}, seed=3)
    res = cam.explain(x)
    exact = QFSCAM(model, ["act"], k=2, sampler="exact").explain(x)
    # QFSCAM solves one ProblemBatch per distinct number of candidate maps d (here d = 3, 2, 3, 2):
    # each is one packed QPU job, whatever its number of images
    assert qpu.calls == len(set(res.selections[0].d.tolist())) == 2, "four explanations, one packed QPU job per d"
    assert all(len(s) == 2 for s in res.selected)
    same = [set(a.tolist()) == set(b.tolist()) for a, b in zip(res.selected, exact.selected)]
    assert sum(same) >= 3


def test_qpu_route_unavailable_solver_and_timeout(token, monkeypatch):
    import concurrent.futures

    import dwave.system
    from dwave.cloud.exceptions import SolverNotFoundError

    def no_solver(**config):
        raise SolverNotFoundError(f"Solver with the requested features not available (token {token})")

    monkeypatch.setattr(dwave.system, "DWaveSampler", no_solver)
    batch = random_batch(3, 4, 2)
    with pytest.raises(SolverUnavailableError, match=r"sampler 'dwave'.*connecting") as info:
        qfsel.solve(batch, "dwave", solver="Advantage_system99.9")
    assert token not in str(info.value)

    class Hanging(CountingQPU):
        def sample(self, bqm, **kwargs):
            self.calls += 1
            if self.calls == 1:
                return dimod.SampleSet.from_future(concurrent.futures.Future())
            return super().sample(bqm, **kwargs)

    qpu = Hanging(topology_type="pegasus", topology_shape=[3])
    with pytest.raises(SolverTimeoutError, match=r"sampler 'dwave-clique': timed out while running job 1/3") as info:
        qfsel.solve(batch, "dwave-clique", qpu=qpu, num_reads=5, pack=False, timeout=0.2)
    assert info.value.partial.info["indices"] == [1, 2] and sorted(info.value.failed) == [0]


@pytest.mark.parametrize("route", ["dwave", "dwave-clique"])
def test_empty_batch_and_zero_variables_submit_nothing(route, tmp_path):
    """An empty batch said 'a problem with K=6 variables does not embed'; K=0 the same about K=0."""
    for b, n in ((0, 6), (2, 0)):
        batch = qfsel.ProblemBatch(np.zeros((b, n)), np.zeros((b, n, n)), beta=0.7, k=None if n == 0 else 2)
        qpu = pegasus()
        sol = qfsel.solve(batch, route, qpu=qpu, num_reads=5)
        assert sol.states.shape == (b, n) and qpu.calls == 0 and sol.info["num_jobs"] == 0
        assert np.all(sol.energies == 0.0)
        assert qd.plan(batch, route, qpu=qpu, num_reads=5)["num_jobs"] == 0
    batch = random_batch(1, 4, 2)
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="embedding_cache_dir: expected a directory"):
        qfsel.solve(batch, route, qpu=pegasus(), embedding_cache_dir=tmp_path / "f")
    with pytest.raises(TypeError, match="embedding_cache_dir: expected a directory path"):
        qfsel.solve(batch, route, qpu=pegasus(), embedding_cache_dir=5)
    assert qd.capacity(10**6, pegasus(), route=route) == 0  # was a hang building K_n's edges


@pytest.mark.parametrize("route", ["dwave", "dwave-clique", "hybrid-cqm", "hybrid-bqm"])
@pytest.mark.parametrize(
    "bad, error, message",
    [
        ({"max_per_job": 0}, ValueError, "max_per_job"),
        ({"timeout": -1.0}, ValueError, "timeout"),
        ({"pack": "yes"}, TypeError, "pack: expected True or False"),
        ({"label": 3}, TypeError, "label: expected a string"),
        ({"num_threads": -1}, ValueError, "num_threads"),
    ],
)
def test_job_options_are_checked_alike_on_every_route(route, bad, error, message):
    qpu = pegasus()
    extra = {"qpu": qpu} if route.startswith("dwave") else {}
    with pytest.raises(error, match=message):
        qfsel.solve(random_batch(2, 4, None if route == "hybrid-bqm" else 2), route, **extra, **bad)
    assert qpu.calls == 0, "refused before any job"

"""qfsel.bench: budgets, entries, failures and time limits, resume/extend, metrics, outputs, CLI."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

import qfsel  # noqa: E402
from qfsel.bench import Budget, Entry, RunOutput, as_entry, benchmark, entry_names  # noqa: E402
from qfsel.bench.metrics import approximation_ratio, bootstrap_median_tts, bootstrap_tts, jaccard, spearman, tts99  # noqa: E402
from qfsel.cli import main  # noqa: E402
from qfsel.instances import Instance, generate, ground_truth, save_many  # noqa: E402


@pytest.fixture(scope="module")
def small():
    """Two small generated instances with exact ground truth."""
    out = []
    for fam in ("explanation", "redundant"):
        inst = generate(fam, 12, k=3, seed=0)
        out.append(inst.with_ground_truth(*ground_truth(inst)[:3]))
    return out


def half_optimal(inst_by_k):
    """A callable whose reads alternate between the optimum and a worse feasible state."""

    def run(problem, reads, seed):
        gs = inst_by_k.ground_state
        worse = np.zeros_like(gs)
        worse[np.flatnonzero(gs == 0)[: inst_by_k.k]] = 1
        return np.array([gs if r % 2 == 0 else worse for r in range(reads)])

    return run


def test_metrics_match_hand_formulas():
    assert tts99(2.0, 0.5) == pytest.approx(2.0 * math.log(0.01) / math.log(0.5))
    assert tts99(2.0, 0.995) == 2.0 and tts99(2.0, 0.0) == math.inf
    assert approximation_ratio(np.array([-2.0, -1.0]), -2.0) == pytest.approx(0.75)
    assert approximation_ratio(np.array([2.0, 4.0]), 2.0) == pytest.approx(0.75)
    assert jaccard(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == pytest.approx(1 / 3)
    assert spearman(np.arange(9.0), np.arange(9.0) ** 3) == pytest.approx(1.0)
    p_lo, p_hi, t_lo, t_hi = bootstrap_tts(np.array([True] * 50 + [False] * 50), 1e-3)
    assert 0.35 < p_lo < 0.5 < p_hi < 0.65 and t_lo < tts99(1e-3, 0.5) < t_hi
    med, lo, hi = bootstrap_median_tts(np.array([100, 100, 100]), np.array([0.5, 0.5, 0.5]), np.array([1.0, 1.0, 1.0]))
    assert med == pytest.approx(tts99(1.0, 0.5)) and lo <= med <= hi


def test_success_and_tts_from_known_reads(small):
    inst = small[0]
    res = benchmark([inst], [("half", half_optimal(inst)), "exact"], Budget(num_reads=10), seeds=2)
    per = res.per_instance().set_index("sampler")
    assert per.loc["half", "success"] == 0.5 and per.loc["half", "reads"] == 20
    assert per.loc["half", "feasible"] == 1.0 and per.loc["half", "residual"] > 0
    t = per.loc["half", "t_read_s"]
    assert per.loc["half", "tts99_s"] == pytest.approx(tts99(t, 0.5))
    assert per.loc["exact", "success"] == 1.0 and per.loc["exact", "reads"] == 2  # one deterministic read per seed
    assert per.loc["exact", "approx_ratio"] == pytest.approx(1.0)


def test_every_named_qfsel_entry_runs_and_sa_reaches_the_optimum(small):
    names = ["sa", "sa-penalty", "tabu", "greedy", "exact"]
    res = benchmark(small, names, Budget(num_reads=8, num_sweeps=50), seeds=1)
    s = res.summary()
    assert set(s["sampler"]) == set(names) and (res.cells["status"] == "ok").all()
    assert s[s["sampler"].isin(["sa", "exact", "tabu"])]["success"].min() == 1.0
    assert s[s["sampler"] == "sa-penalty"]["feasible"].between(0, 1).all()
    assert set(entry_names()) >= set(qfsel.available_solvers())


def test_bad_input_is_refused(small):
    with pytest.raises(ValueError, match="unknown sampler name 'nope'"):
        benchmark(small, ["sa", "nope"])
    with pytest.raises(ValueError, match=r"duplicate sampler names \['sa'\]"):
        benchmark(small, ["sa", "sa"])
    with pytest.raises(ValueError, match=r"duplicate sampler names \['x'\]"):
        benchmark(small, [("x", "sa"), ("x", "tabu")])
    for bad in ({"num_reads": 0}, {"num_reads": -3}, {"num_sweeps": 0}, {"time_s": 0.0}, {"time_s": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            benchmark(small, ["sa"], bad)
    with pytest.raises(ValueError, match="time_limit"):
        benchmark(small, ["sa"], time_limit=0)
    with pytest.raises(ValueError, match="seeds"):
        benchmark(small, ["sa"], seeds=[1, 1])
    with pytest.raises(TypeError, match="seeds: expected a positive count or an iterable"):
        benchmark(small, ["sa"], seeds=1.5)  # was "'float' object is not iterable"
    with pytest.raises(TypeError, match="out: expected a directory path"):  # was pathlib's TypeError
        benchmark(small, ["sa"], out=5)
    with pytest.raises(NotADirectoryError, match="out: expected a directory, got .*an existing file"):
        benchmark(small, ["sa"], out=__file__)  # was "[Errno 17] File exists: ..." naming no argument
    with pytest.raises(NotADirectoryError, match="directory: "):
        save_many(small, Path(__file__) / "sub")
    with pytest.raises(TypeError, match="progress: expected a bool"):
        benchmark(small, ["sa"], progress="no")
    with pytest.raises(ValueError, match="budgets: expected at least one"):
        benchmark(small, ["sa"], [])  # was an empty result, nothing run
    with pytest.raises(TypeError, match="samplers: expected"):
        as_entry(3.5)
    with pytest.raises(ValueError, match="duplicate instance names"):
        benchmark([small[0], small[0]], ["sa"])


def test_raising_and_hanging_samplers_are_recorded_and_others_go_on(small):
    release = threading.Event()

    def boom(problem, reads, seed):
        raise RuntimeError("sampler exploded")

    def hang(problem, reads, seed):
        release.wait(10)
        return np.zeros((reads, problem.num_variables))

    def wrong_shape(problem, reads, seed):
        return np.zeros((reads, 3))

    t0 = time.perf_counter()
    res = benchmark(small, [("boom", boom), ("hang", hang), ("bad", wrong_shape), "sa"], Budget(num_reads=4), seeds=1,
                    time_limit=0.2)
    release.set()
    assert time.perf_counter() - t0 < 5
    st = res.cells.groupby("sampler")["status"].unique().to_dict()
    assert list(st["boom"]) == ["failed"] and list(st["hang"]) == ["timeout"] and list(st["sa"]) == ["ok"]
    assert list(st["bad"]) == ["failed"]
    assert res.failures()["error"].str.contains("sampler exploded").any()
    md = res.markdown()
    assert "## Failed cells" in md and "timeout after 0.2 s" in md and "expected (reads, 12) 0/1 states" in md


def test_resume_and_extend_do_not_redo_cells(small, tmp_path):
    calls = []

    def counting(problem, reads, seed):
        calls.append(seed)
        return np.tile(small[0].ground_state if problem.num_variables == 12 else 0, (reads, 1))

    entry = ("count", counting)
    benchmark(small, [entry], Budget(num_reads=3), seeds=2, out=tmp_path)
    assert len(calls) == 4
    res = benchmark(small, [entry], Budget(num_reads=3), seeds=2, out=tmp_path)
    assert len(calls) == 4 and len(res.cells) == 4  # nothing re-run
    res = benchmark(small, [entry, "greedy"], Budget(num_reads=3), seeds=3, out=tmp_path)
    assert len(calls) == 6 and len(res.cells) == 6 + 6  # one new seed per instance for "count", all of greedy
    for name in ("cells.csv", "reads.csv", "run.json", "summary.md", "summary.csv", "per_instance.csv"):
        assert (tmp_path / name).exists()
    assert list((tmp_path / "plots").glob("*.png")) and len(list((tmp_path / "instances").glob("*.npz"))) == 2
    again = qfsel.bench.BenchmarkResult.load(tmp_path)
    assert len(again.reads) == len(res.reads)


def test_time_budget_calls_again_until_spent(small):
    res = benchmark(small[:1], ["sa"], Budget(num_reads=2, time_s=0.05), seeds=1)
    cell = res.cells.iloc[0]
    assert cell["status"] == "ok" and cell["calls"] >= 2 and cell["wall_s"] >= 0.05 and cell["reads"] == 2 * cell["calls"]


def test_dimod_samplers_and_mock_labels(small):
    import dimod

    class Labelled(dimod.ExactSolver):
        pass

    res = benchmark(small[:1], [Labelled(), ("mock-thing", Entry("mock-thing", lambda i, r, s, x=None: RunOutput(
        np.tile(small[0].ground_state, (r, 1))), mock=True))], Budget(num_reads=2), seeds=1)
    s = res.summary().set_index("sampler")
    assert "mock-thing (mock)" in s.index and "**Mock samplers**" in res.markdown()
    # ExactSolver returns all 2^12 states of the penalty BQM: the optimum is one of C(12, 3) feasible ones
    assert s.loc["Labelled", "feasible"] == pytest.approx(220 / 4096)
    assert s.loc["Labelled", "success"] * 4096 >= 1


def test_anchor_samplers_when_installed(small):
    pytest.importorskip("dwave.samplers")
    res = benchmark(small[:1], ["dwave-sa", "dwave-tabu", "dwave-steepest", "dwave-pimc"], Budget(num_reads=4, num_sweeps=100), seeds=1)
    assert (res.cells["status"] == "ok").all(), res.failures()
    assert res.per_instance()["reads"].min() >= 4


def test_explanation_fidelity_on_captured_like_instances():
    rng = np.random.default_rng(0)
    base = generate("explanation", 10, k=3, seed=1)
    inst = Instance("cap", base.relevance, base.redundancy, k=3, family="captured", maps=rng.random((10, 4, 4)),
                    alpha=rng.random(10) + 0.1)
    inst = inst.with_ground_truth(*ground_truth(inst)[:3])
    worst = np.zeros(10, np.uint8)
    worst[np.argsort(inst.relevance)[:3]] = 1

    res = benchmark([inst], ["exact", ("bad", lambda p, r, s: np.tile(worst, (r, 1)))], Budget(num_reads=2), seeds=1)
    s = res.summary().set_index("sampler")
    assert s.loc["exact", "jaccard"] == 1.0 and s.loc["exact", "heatmap_spearman"] == pytest.approx(1.0)
    assert s.loc["bad", "jaccard"] == pytest.approx(jaccard(worst, inst.ground_state))
    assert s.loc["bad", "heatmap_spearman"] == pytest.approx(spearman(inst.heatmap(worst), inst.heatmap(inst.ground_state)))
    assert "Does solving better matter?" in res.markdown()


def test_cli_bench(tmp_path, capsys):
    assert main(["bench", "run", "--families", "uniform", "--sizes", "10", "--k", "3", "--samplers", "sa,greedy",
                 "--reads", "4", "--seeds", "1", "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert "| uniform | 10 (3) | sa |" in capsys.readouterr().out
    assert main(["bench", "report", str(tmp_path / "run")]) == 0
    assert main(["bench", "run", "--families", "uniform", "--sizes", "10", "--samplers", "sa,nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown sampler 'nope'" in capsys.readouterr().err
    assert main(["bench", "run", "--families", "uniform", "--sizes", "10", "--samplers", "sa,sa", "--out", str(tmp_path / "x")]) == 2
    assert main(["bench", "run", "--families", "uniform", "--sizes", "10", "--reads", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--reads: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert main(["bench", "generate", "--families", "grouped", "--sizes", "12", "--k", "3", "--out", str(tmp_path / "g")]) == 0
    assert main(["bench", "run", "--instances", str(tmp_path / "g"), "--samplers", "exact", "--reads", "1", "--seeds", "1",
                 "--quiet", "--out", str(tmp_path / "r2")]) == 0
    assert main(["bench", "run", "--instances", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r3")]) == 2
    assert main(["bench", "report", str(tmp_path / "nowhere")]) == 2
    assert main(["bench", "list"]) == 0


def test_extending_with_some_instances_keeps_the_others(small, tmp_path):
    benchmark(small, ["greedy"], Budget(num_reads=1), seeds=1, out=tmp_path)
    res = benchmark(small[:1], ["exact"], Budget(num_reads=1), seeds=1, out=tmp_path)
    assert set(res.cells["instance"]) == {i.name for i in small} and len(res.cells) == 3
    assert set(res.summary()["sampler"]) == {"greedy", "exact"}


def test_retry_failed_replaces_the_failed_record(small, tmp_path):
    state = {"fail": True}

    def flaky(problem, reads, seed):
        if state["fail"]:
            raise RuntimeError("transient")
        return np.tile(small[0].ground_state, (reads, 1))

    res = benchmark(small[:1], [("flaky", flaky)], Budget(num_reads=2), seeds=1, out=tmp_path)
    assert list(res.cells["status"]) == ["failed"]
    state["fail"] = False
    assert list(benchmark(small[:1], [("flaky", flaky)], Budget(num_reads=2), seeds=1, out=tmp_path).cells["status"]) == ["failed"]
    res = benchmark(small[:1], [("flaky", flaky)], Budget(num_reads=2), seeds=1, out=tmp_path, retry_failed=True)
    assert list(res.cells["status"]) == ["ok"] and len(res.failures()) == 0 and res.per_instance()["success"].iloc[0] == 1.0

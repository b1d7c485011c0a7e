"""qfsel.instances: file format (round trip, version and shape errors), generators, ground truth."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from qfsel.instances import (
    FAMILIES,
    HELD_OUT,
    TUNING,
    Instance,
    generate,
    generate_suite,
    ground_truth,
    load,
    load_many,
    save,
    save_many,
    with_ground_truth,
)


def brute_force(inst: Instance) -> float:
    p = inst.problem()
    best = np.inf
    for sel in itertools.combinations(range(inst.num_variables), inst.k):
        x = np.zeros(inst.num_variables, np.uint8)
        x[list(sel)] = 1
        best = min(best, p.energy(x))
    return best


def test_round_trip_keeps_everything(tmp_path):
    inst = generate("grouped", 16, k=4, seed=3)
    maps = np.random.default_rng(0).random((16, 3, 3)).astype(np.float32)
    inst = Instance(inst.name, inst.relevance, inst.redundancy, 0.6, 4, 2.5, "captured", {"model": "m", "image": "i"},
                    maps=maps, alpha=np.linspace(1, 2, 16), candidates=np.arange(16) * 2)
    inst = inst.with_ground_truth(*ground_truth(inst)[:3], {"note": "x"})
    back = load(save(inst, tmp_path / "one"))  # .npz appended
    assert (tmp_path / "one.npz").exists()
    for key in ("relevance", "redundancy", "ground_state", "maps", "alpha", "candidates"):
        np.testing.assert_array_equal(getattr(back, key), getattr(inst, key))
    assert (back.name, back.beta, back.k, back.penalty, back.family) == (inst.name, 0.6, 4, 2.5, "captured")
    assert back.provenance == {"model": "m", "image": "i"}
    assert back.ground_truth == inst.ground_truth
    assert back.problem().energy(back.ground_state) == pytest.approx(back.best_energy)


def test_other_version_and_shape_are_refused(tmp_path):
    inst = generate("explanation", 10, k=3)
    path = save(inst, tmp_path / "a.npz")
    data = dict(np.load(path))
    meta = json.loads(str(data["meta"][()]))
    meta["version"] = 2
    np.savez(tmp_path / "v2.npz", **{**data, "meta": np.array(json.dumps(meta))})
    with pytest.raises(ValueError, match="version 1, got version 2"):
        load(tmp_path / "v2.npz")
    meta["version"] = 1
    np.savez(tmp_path / "shape.npz", **{**data, "meta": np.array(json.dumps(meta)), "redundancy": np.zeros((9, 9))})
    with pytest.raises(ValueError, match=r"K = 10, got relevance of shape \(10,\) and redundancy of shape \(9, 9\)"):
        load(tmp_path / "shape.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a qfsel-instance file"):
        load(tmp_path / "other.npz")
    meta["format"] = "something-else"
    np.savez(tmp_path / "fmt.npz", **{**data, "meta": np.array(json.dumps(meta))})
    with pytest.raises(ValueError, match="expected format 'qfsel-instance'"):
        load(tmp_path / "fmt.npz")
    with pytest.raises(FileNotFoundError, match="no instance file"):
        load(tmp_path / "missing.npz")
    (tmp_path / "sub").mkdir()
    with pytest.raises(FileNotFoundError, match="no .npz instance files"):
        load_many(tmp_path / "sub")


def test_bad_instance_fields():
    h, j = np.ones(4), np.zeros((4, 4))
    with pytest.raises(ValueError, match="redundancy: expected shape"):
        Instance("a", h, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        Instance("a", h, np.triu(np.ones((4, 4)), 1))
    with pytest.raises(ValueError, match=r"k: expected an integer in \[0, 4\]"):
        Instance("a", h, j, k=5)
    with pytest.raises(TypeError, match="name"):
        Instance("", h, j)
    for bad in ("../outside", "a/b", "a\\b", "..", "x\0y"):  # the name is save_many's file name
        with pytest.raises(ValueError, match="name: expected a file-name-safe string"):
            Instance(bad, h, j)


def test_save_many_stays_in_its_directory_and_load_refuses_other_files(tmp_path):
    h, j = np.ones(4), np.zeros((4, 4))
    (tmp_path / "notes.npz").write_text("not an archive")
    with pytest.raises(ValueError, match="not a zip archive"):  # numpy said 'pickled (object) data'
        load(tmp_path / "notes.npz")
    (tmp_path / "cut.npz").write_bytes(save(Instance("a", h, j), tmp_path / "a.npz").read_bytes()[:60])
    with pytest.raises(ValueError, match="not a qfsel-instance .npz file"):
        load(tmp_path / "cut.npz")
    with pytest.raises(TypeError, match="path: expected a file path"):
        load(5)
    with pytest.raises(ValueError, match=r"n: expected an integer in \[1, 1000\]"):
        from qfsel.instances.capture import capture_bundled

        capture_bundled("narrow-mnist-16", n=1001)
    with pytest.raises(ValueError, match="method"):
        Instance("a", h, j, k=2).with_ground_truth(0.0, None, "guess")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generated_families_are_seeded_and_shaped(family):
    a = generate(family, 40, seed=1)
    b = generate(family, 40, seed=1)
    c = generate(family, 40, seed=2)
    np.testing.assert_array_equal(a.redundancy, b.redundancy)
    assert not np.array_equal(a.redundancy, c.redundancy)
    assert a.k == 8 and a.relevance.max() == pytest.approx(1.0) and a.relevance.min() >= 0
    assert np.allclose(a.redundancy, a.redundancy.T) and np.all(np.diag(a.redundancy) == 0)
    assert a.provenance["seed"] == 1 and a.family == family


def test_families_have_their_structure():
    # redundancy-dominated: 10x the explanation family's couplings; grouped: near-duplicate groups
    e, r = generate("explanation", 64, seed=0), generate("redundant", 64, seed=0)
    assert r.redundancy.mean() > 5 * e.redundancy.mean()
    g = generate("grouped", 64, seed=0).redundancy / 3.0
    assert np.quantile(g[g > 0], 0.99) > 0.8 and np.median(g[g > 0]) < 0.4
    assert set(TUNING).isdisjoint(HELD_OUT) and set(TUNING) | set(HELD_OUT) == set(FAMILIES)
    assert len(generate_suite(["uniform", "grouped"], [8, 16], seeds=[0, 1])) == 8
    with pytest.raises(ValueError, match="family: expected one of"):
        generate("nope", 10)
    with pytest.raises(ValueError, match=r"num_variables: expected an integer in \[2, 2048\]"):
        generate("uniform", 4096)


def test_exact_ground_truth_matches_brute_force():
    for fam in ("redundant", "few-dominant"):
        inst = generate(fam, 12, k=4, seed=5)
        e, state, method, details = ground_truth(inst)
        assert method == "exact" and details["num_ground_states"] >= 1
        assert e == pytest.approx(brute_force(inst), abs=1e-12)
        assert inst.problem().energy(state) == pytest.approx(e, abs=1e-12)


def test_best_known_ground_truth_is_recorded_with_its_runs(tmp_path):
    inst = with_ground_truth([generate("redundant", 24, k=4, seed=0)], exact_limit=1000, effort=0.1)[0]
    gt = inst.ground_truth
    assert gt["method"] == "best-known" and not gt["certified"] and gt["details"]["num_reached"] >= 1
    assert min(gt["details"]["runs"].values()) == pytest.approx(gt["energy"])
    exact, _, method, _ = ground_truth(inst)  # C(24, 4) = 10626: enumerable with the default limit
    assert method == "exact" and gt["energy"] == pytest.approx(exact, abs=1e-12)
    save_many([inst], tmp_path)
    assert load_many(tmp_path)[0].ground_truth == gt
    with pytest.raises(ValueError, match="duplicate instance name"):
        save_many([inst, inst], tmp_path)


def test_captured_instances_equal_the_problems_qfscam_solves_one_by_one():
    """Captured from a batch whose images have different numbers of candidate maps d: each
    instance holds exactly its own image's problem (no padding from the batch's largest d)."""
    from qfsel.cams import QFSCAM
    from qfsel.datasets import mnist5k
    from qfsel.instances.capture import capture
    from qfsel.models import load_model

    bundle = load_model("narrow-mnist-16")
    x, y = mnist5k("test")
    x = x[[int(np.flatnonzero(y.numpy() == c)[0]) for c in range(10)]]  # one digit of each class
    insts = capture(bundle.model, x, bundle.default_layer, k=None)
    sizes = [inst.relevance.size for inst in insts]
    assert len(set(sizes)) > 1, "the test needs images of different d"
    for i in (sizes.index(max(sizes)), sizes.index(min(sizes))):
        one = QFSCAM(bundle.model, [bundle.default_layer], sampler="exact").explain(x[i : i + 1])
        assert inst_d(insts[i]) == int(one.d[0])
        assert (insts[i].relevance > 0).all() and insts[i].relevance.max() == 1.0
        np.testing.assert_array_equal(insts[i].candidates, one.selections[0].candidates[0])


def inst_d(inst):
    assert inst.redundancy.shape == (inst.relevance.size, inst.relevance.size)
    return inst.relevance.size

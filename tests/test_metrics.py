"""qfsel.metrics on constructed cases with known answers, bad input, and Quantus cross-checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from qfsel import metrics as M
from qfsel.exceptions import QFSelWarning


# -- disentanglement ----------------------------------------------------------------------------


def test_bhattacharyya_identical_and_disjoint():
    assert M.bhattacharyya([0.2, 0.3, 0.5], [2, 3, 5]) == pytest.approx(1.0)
    assert M.bhattacharyya([1, 1, 0, 0], [0, 0, 3, 1]) == 0.0
    # hand formula: sqrt(.5*.25) + sqrt(.5*.75)
    assert M.bhattacharyya([1, 1], [1, 3]) == pytest.approx(np.sqrt(0.125) + np.sqrt(0.375))


def test_overlap_matrix_identical_classes_is_ones_and_disjoint_is_identity():
    sel = np.array([[1, 1, 0, 0]] * 4)
    r = M.disentanglement(sel, [0, 0, 1, 1], n_boot=20)
    np.testing.assert_allclose(r["matrix"], np.ones((2, 2)))
    assert r["mean_off_diagonal"] == pytest.approx(1.0) and r["zero_pairs"] == 0
    sel = M.selection_indicator([[0], [0, 1], [2], [3, 2], [4], [4]], 5)
    r = M.disentanglement(sel, [0, 0, 1, 1, 2, 2], n_boot=20)
    np.testing.assert_allclose(r["matrix"], np.eye(3), atol=1e-12)
    assert (r["mean_off_diagonal"], r["zero_pairs"], r["n_pairs"]) == (0.0, 3, 3)
    assert r["ci95"] == (0.0, 0.0)


def test_class_histograms_are_paper_normalised_counts():
    sel = M.selection_indicator([[0, 1], [1], [2]], 3)
    h = M.class_histograms(sel, [0, 0, 1])
    np.testing.assert_allclose(h, [[1 / 3, 2 / 3, 0], [0, 0, 1]])


def test_counterparts():
    w = np.array([[0.5, -1.0, 0.2, 0.0], [0.1, 0.3, 0.2, 0.9]])
    np.testing.assert_array_equal(M.selection_from_weights(w, "positive"), [[1, 0, 1, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(M.selection_from_weights(w, "top-m", m=np.array([1, 2])), [[1, 0, 0, 0], [0, 1, 0, 1]])
    np.testing.assert_allclose(M.selection_from_weights(w, "proportional"), [[5 / 7, 0, 2 / 7, 0], [0.1 / 1.5, 0.2, 0.2 / 1.5, 0.6]])
    with pytest.raises(ValueError, match="m:"):
        M.selection_from_weights(w, "top-m")
    with pytest.raises(ValueError, match="mode"):
        M.selection_from_weights(w, "all")


def test_disentanglement_bad_input():
    sel = np.ones((4, 3))
    with pytest.raises(ValueError, match="labels: expected 4 labels"):
        M.disentanglement(sel, [0, 1, 0])
    with pytest.raises(ValueError, match="labels: expected at least 2 distinct"):
        M.disentanglement(sel, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="contributions: expected finite"):
        M.disentanglement(np.full((4, 3), np.nan), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"selected\[0\]"):
        M.selection_indicator([[5]], 3)


# -- embeddings ---------------------------------------------------------------------------------


def test_separated_clusters_score_near_perfect_and_mixed_near_chance():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 50, (4, 6))
    y = np.repeat(np.arange(4), 15)
    x = centres[y] + rng.normal(0, 0.5, (60, 6))
    s = M.embedding_scores(x, y, n_boot=50)
    assert s["silhouette"]["value"] > 0.9
    assert s["linear_probe"]["value"] == 1.0 and s["knn"]["value"] == 1.0
    assert s["davies_bouldin"]["value"] < 0.1 and s["between_within"]["value"] > 10
    assert s["silhouette"]["lo"] <= s["silhouette"]["value"] <= s["silhouette"]["hi"]
    mixed = M.embedding_scores(rng.normal(0, 1, (60, 6)), y, n_boot=0)
    assert abs(mixed["silhouette"]["value"]) < 0.1 and mixed["knn"]["value"] < 0.5


def test_embedding_bad_input():
    x = np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(ValueError, match="fewer than folds"):
        M.embedding_scores(x, [0, 0, 0, 1, 1, 1], folds=5)
    with pytest.raises(ValueError, match="labels: expected at least 2 distinct"):
        M.embedding_scores(x, [0] * 6, folds=2)
    with pytest.raises(ValueError, match="labels: expected 6 labels"):
        M.embedding_scores(x, [0, 1], folds=2)
    with pytest.raises(ValueError, match="embedding: expected finite"):
        M.embedding_scores(np.full((6, 2), np.nan), [0, 1] * 3, folds=2)


# -- localization -------------------------------------------------------------------------------


def _masks(n=6, size=12, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        r, c = rng.integers(0, size - 4, 2)
        masks[i, r : r + 4, c : c + 4] = True
    return masks


def test_heatmap_equal_to_mask_scores_one_and_outside_scores_zero():
    masks = _masks()
    r = M.localization(masks.astype(float), masks)
    assert r["pointing_game"].all()
    np.testing.assert_allclose(r["relevance_mass"], 1.0)
    np.testing.assert_allclose(r["relevance_rank"], 1.0)
    np.testing.assert_allclose(r["iou"], 1.0)
    r = M.localization((~masks).astype(float), masks)
    assert not r["pointing_game"].any() and np.all(r["relevance_mass"] == 0) and np.all(r["iou"] == 0)
    flat = M.localization(np.zeros(masks.shape), masks)
    assert flat["flat"].all() and not flat["pointing_game"].any()


def test_localization_hand_case():
    mask = np.zeros((1, 2, 2), bool)
    mask[0, 0, 0] = True
    h = np.array([[[3.0, 1.0], [0.0, 0.0]]])
    r = M.localization(h, mask, threshold=0.3)
    assert r["relevance_mass"][0] == pytest.approx(0.75)
    assert r["iou"][0] == pytest.approx(0.5)  # {00, 01} vs {00}


def test_localization_bad_input():
    masks = _masks()
    with pytest.raises(ValueError, match="masks: expected shape"):
        M.localization(np.ones((6, 10, 10)), masks)
    with pytest.raises(ValueError, match="heatmaps: expected finite"):
        M.localization(np.full(masks.shape, np.nan), masks)


# -- faithfulness -------------------------------------------------------------------------------


class _Linear(nn.Module):
    """Class-1 logit = 20 * sum of pixels in the left half, class-0 logit = 0."""

    def __init__(self, size=8):
        super().__init__()
        self.weight = torch.zeros(2, 1, size, size)
        self.weight[1, :, :, : size // 2] = 20.0 / (size * size / 2)

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x, self.weight) - 10.0


def test_deletion_of_the_evidence_first_beats_random_and_random_is_symmetric():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, (32, 1, 8, 8)).astype(np.float32)
    t = np.ones(32, dtype=np.int64)
    good = np.zeros((32, 8, 8))
    good[:, :, :4] = 1.0
    r_good = M.deletion_insertion(_Linear(), x, good, t, steps=8, insertion_baseline="zero")
    r_bad = M.deletion_insertion(_Linear(), x, 1 - good, t, steps=8, insertion_baseline="zero")
    assert r_good["deletion_auc"].mean() < r_bad["deletion_auc"].mean() - 0.2
    assert r_good["insertion_auc"].mean() > r_bad["insertion_auc"].mean() + 0.2
    # random saliency: deletion AUC ~ insertion AUC on average (zero baselines both ways)
    rand = rng.random((32, 8, 8))
    r_rand = M.deletion_insertion(_Linear(), x, rand, t, steps=16, insertion_baseline="zero")
    assert abs(r_rand["deletion_auc"].mean() - r_rand["insertion_auc"].mean()) < 0.05
    # the curve starts at the model's probability on the image
    p = torch.softmax(_Linear()(torch.from_numpy(x)), 1)[:, 1].numpy()
    np.testing.assert_allclose(r_good["deletion_curve"][:, 0], p, rtol=1e-6)


def test_confidence_change_hand_case():
    x = np.full((2, 1, 8, 8), 0.9, np.float32)
    t = np.array([1, 1])
    h = np.ones((2, 8, 8))
    r = M.confidence_change(_Linear(), x, h, t)
    assert r["average_drop"] == pytest.approx(0.0) and r["increase"] == 0.0
    h[1] = 0.0
    r = M.confidence_change(_Linear(), x, h, t)
    y = float(torch.sigmoid(torch.tensor(20 * 0.9)))  # logits (-10, 8): p = sigmoid(18)
    o = 0.5  # an all-black explanation: logits (-10, -10)
    assert r["average_drop"] == pytest.approx(100 * (y - o) / y / 2)


def test_faithfulness_bad_input():
    x = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="heatmaps: heatmaps of shape"):
        M.deletion_insertion(_Linear(), x, np.zeros((2, 4, 4)), [0, 1])
    with pytest.raises(ValueError, match="heatmaps: expected finite"):
        M.deletion_insertion(_Linear(), x, np.full((2, 8, 8), np.nan), [0, 1])
    with pytest.raises(ValueError, match="model: expected an output of shape"):
        M.deletion_insertion(nn.Flatten(0), x, np.zeros((2, 8, 8)), [0, 1])
    with pytest.raises(ValueError, match="targets: expected 2 labels"):
        M.confidence_change(_Linear(), x, np.zeros((2, 8, 8)), [0])


# -- sanity -------------------------------------------------------------------------------------


def test_spearman_rows_hand_cases():
    a = np.array([[1.0, 2, 3, 4], [1, 2, 3, 4]])
    b = np.array([[2.0, 4, 6, 8], [4, 3, 2, 1]])
    np.testing.assert_allclose(M.spearman_rows(a, b), [1.0, -1.0])
    assert M.spearman_rows(a[:1], np.zeros((1, 4)))[0] == 0.0


def test_cascading_randomisation_lowers_gradcam_correlation():
    from qfsel import explain_all
    from qfsel.datasets import shapes

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 16 * 16, 10),
    ).eval()
    images, labels, _ = shapes(12, size=16, seed=1)
    x = torch.from_numpy(images)

    def explain(m, xb, t):
        with warnings.catch_warnings():  # randomised models give flat maps (scored 0)
            warnings.simplefilter("ignore", QFSelWarning)
            res = explain_all(m, xb, ["3"], methods=("gradcam", "qfs"), targets=[int(v) for v in t], sampler="exact")
        return {k: v.heatmaps for k, v in res.items()}

    out = M.model_randomisation(explain, model, x, labels, layers=["5", "2", "0"], seed=0)
    for method, means in out["mean"].items():
        assert means[-1] < 0.6, (method, means)
    rl = M.random_logit(explain, model, x, labels, 10)
    assert set(rl["mean"]) == {"gradcam", "qfs"} and np.all(rl["other"] != labels)


# -- Quantus cross-checks -----------------------------------------------------------------------


def test_localization_matches_quantus():
    pytest.importorskip("quantus")
    rng = np.random.default_rng(3)
    masks = _masks(8, 12, seed=3)
    h = rng.random((8, 12, 12))
    h[0] = masks[0]  # one perfect map
    h[1] = 0.0  # one flat map (left out by the Quantus wrapper)
    mine = M.localization(h, masks)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 144, 2))
    q = M.quantus_localization(model, np.zeros((8, 3, 12, 12), np.float32), h, masks, np.zeros(8, int))
    idx = q["index"]
    assert list(idx) == [0, 2, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(q["pointing_game"], mine["pointing_game"][idx])
    np.testing.assert_allclose(q["relevance_mass"], mine["relevance_mass"][idx], rtol=1e-5)
    np.testing.assert_allclose(q["relevance_rank"], mine["relevance_rank"][idx], rtol=1e-6)


def test_road_by_quantus_ranks_evidence_first():
    pytest.importorskip("quantus")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.0, (16, 1, 8, 8)).astype(np.float32)
    t = np.ones(16, dtype=np.int64)
    good = np.zeros((16, 8, 8))
    good[:, :, :4] = 1.0
    good += 0.01 * rng.random(good.shape)
    r_good = M.road(_Linear().eval(), x, good, t, percentages=(25, 50, 75))
    r_bad = M.road(_Linear().eval(), x, 1.01 - good, t, percentages=(25, 50, 75))
    assert len(r_good["accuracy"]) == 3
    assert r_good["mean_accuracy"] <= r_bad["mean_accuracy"]


def test_pointing_game_counts_a_hit_on_any_maximal_pixel_like_quantus():
    mask = np.zeros((1, 3, 3), bool)
    mask[0, 2, 2] = True
    h = np.zeros((1, 3, 3))
    h[0, 0, 0] = h[0, 2, 2] = 1.0  # plateau: first maximum outside, another inside
    assert M.localization(h, mask)["pointing_game"][0]
    h[0, 2, 2] = 0.9
    assert not M.localization(h, mask)["pointing_game"][0]


def test_fast_davies_bouldin_matches_sklearn_on_resamples():
    """The bootstrap's vectorised Davies-Bouldin equals scikit-learn's on random resamples."""
    from sklearn.metrics import davies_bouldin_score

    from qfsel.metrics.embeddings import _davies_bouldin

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (120, 7)) + np.repeat(rng.normal(0, 3, (4, 7)), 30, axis=0)
    y = np.repeat([0, 2, 5, 9], 30)
    for _ in range(5):
        idx = rng.integers(0, 120, 120)
        assert _davies_bouldin(x[idx], y[idx]) == pytest.approx(davies_bouldin_score(x[idx], y[idx]), rel=1e-9)
    dup = np.r_[x[:3], x[:3]]  # two clusters with the same centroid: inf distance, as sklearn
    assert _davies_bouldin(dup, [0, 0, 0, 1, 1, 1]) == pytest.approx(davies_bouldin_score(dup, [0, 0, 0, 1, 1, 1]))

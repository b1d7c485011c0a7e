"""Class separation of explanation embeddings, with bootstrap 95% CIs.

Two embeddings per method and image (built by :func:`heatmap_embedding` and
:func:`contribution_embedding`): the heatmap at the explained layer's resolution, min-max
normalised and flattened; and the per-map contribution vector of length K (``w_p * mean(A_p)``,
the share of map p in the map before the ReLU). On each: silhouette (Euclidean)
and Davies-Bouldin indices of the true classes, cross-validated linear-probe and k-NN accuracy,
and the ratio of mean between-class to mean within-class distance.

CIs: the out-of-fold correctness of the probes, the per-sample silhouette values, and the
images for Davies-Bouldin and the distance ratio are resampled with replacement (``n_boot`` times).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import float_array, labels_array, positive_int

__all__ = ["contribution_embedding", "embedding_scores", "heatmap_embedding", "tsne"]


def heatmap_embedding(raw_maps: Any) -> np.ndarray:
    """(N, h, w) maps at layer resolution -> (N, h*w) rows min-max normalised (flat rows: 0)."""
    m = float_array("raw_maps", raw_maps, 3)
    flat = m.reshape(m.shape[0], -1)
    lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
    span = hi - lo
    return np.divide(flat - lo, span, out=np.zeros_like(flat), where=span > 0)


def contribution_embedding(weights: Any, activations_mean: Any) -> np.ndarray:
    """(N, K) per-map contributions ``w_p * mean_ij A_pij`` from weights and spatial means."""
    w = float_array("weights", weights, 2)
    a = float_array("activations_mean", activations_mean, 2)
    if a.shape != w.shape:
        raise ValueError(f"activations_mean: expected shape {w.shape} like weights, got {a.shape}")
    return w * a


def _between_within(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.spatial.distance import pdist, squareform

    d = squareform(pdist(x))
    same = y[:, None] == y[None, :]
    off = ~np.eye(len(y), dtype=bool)
    within = d[same & off]
    between = d[~same]
    if within.size == 0 or between.size == 0 or within.mean() == 0:
        return float("nan")
    return float(between.mean() / within.mean())


def _davies_bouldin(x: np.ndarray, y: np.ndarray) -> float:
    """Davies-Bouldin index, the same formula as ``sklearn.metrics.davies_bouldin_score``
    (mean over clusters of the largest (s_i + s_j) / d(c_i, c_j)) without its per-call input
    validation and per-cluster loop: the bootstrap calls it ``n_boot`` times."""
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    x = np.asarray(x, dtype=np.float64)
    centroids = np.zeros((counts.size, x.shape[1]))
    np.add.at(centroids, inv, x)
    centroids /= counts[:, None]
    intra = np.bincount(inv, weights=np.linalg.norm(x - centroids[inv], axis=1), minlength=counts.size) / counts
    diff = centroids[:, None, :] - centroids[None, :, :]
    cdist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    if np.allclose(intra, 0.0) or np.allclose(cdist, 0.0):
        return 0.0
    cdist[cdist == 0] = np.inf
    return float(np.mean(np.max((intra[:, None] + intra[None, :]) / cdist, axis=1)))


def _ci(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)])
    if v.size == 0:
        return (float("nan"), float("nan"))
    return (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))


def embedding_scores(
    embedding: Any,
    labels: Any,
    *,
    folds: int = 5,
    k: int = 5,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Silhouette, Davies-Bouldin, CV linear probe, CV k-NN and between/within ratio (with CIs).

    Args:
        embedding: (N, D) one row per image.
        labels: (N,) classes; at least two, each with at least ``folds`` samples.
        folds: stratified cross-validation folds of the probes (>= 2).
        k: neighbours of the k-NN probe.
        n_boot: bootstrap resamples for the CIs (0: no CIs).
        seed: seed of the folds, the probes and the bootstrap.

    Returns:
        ``{metric: {"value": v, "lo": ..., "hi": ...}}`` for ``silhouette`` (higher better),
        ``davies_bouldin`` (lower better), ``linear_probe``, ``knn`` (accuracies) and
        ``between_within`` (higher better).

    Example:
        >>> import numpy as np
        >>> from qfsel.metrics import embedding_scores
        >>> x = np.r_[np.zeros((10, 2)), np.ones((10, 2)) * 10] + np.random.default_rng(0).normal(0, .1, (20, 2))
        >>> s = embedding_scores(x, [0] * 10 + [1] * 10, n_boot=0)
        >>> round(s["silhouette"]["value"], 2), s["linear_probe"]["value"]
        (0.99, 1.0)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import davies_bouldin_score, silhouette_samples
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = float_array("embedding", embedding, 2)
    y = labels_array("labels", labels, x.shape[0], min_classes=2)
    folds = positive_int("folds", folds, low=2)
    k = positive_int("k", k)
    n_boot = positive_int("n_boot", n_boot, low=0)
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min())
    if smallest < folds:
        raise ValueError(
            f"labels: the smallest class has {smallest} samples, fewer than folds = {folds}; "
            "use fewer folds or more samples"
        )
    if np.all(x == x[0]):
        raise ValueError("embedding: every row is identical (e.g. all heatmaps flat); nothing to separate")
    rng = np.random.default_rng(seed)
    sil = silhouette_samples(x, y)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    lin_ok = cross_val_predict(probe, x, y, cv=cv) == y
    knn_ok = cross_val_predict(KNeighborsClassifier(n_neighbors=min(k, smallest * (folds - 1) // folds or 1)), x, y, cv=cv) == y
    db = float(davies_bouldin_score(x, y))
    ratio = _between_within(x, y)
    boots: dict[str, list[float]] = {"silhouette": [], "davies_bouldin": [], "linear_probe": [], "knn": [], "between_within": []}
    n = len(y)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        boots["silhouette"].append(float(sil[idx].mean()))
        boots["linear_probe"].append(float(lin_ok[idx].mean()))
        boots["knn"].append(float(knn_ok[idx].mean()))
        yb = y[idx]
        if np.unique(yb).size >= 2 and np.unique(yb).size < len(np.unique(idx)):
            boots["davies_bouldin"].append(_davies_bouldin(x[idx], yb))
            sub = idx[: min(n, 400)]  # the O(n^2) ratio on a 400-image part of the resample
            if np.unique(y[sub]).size >= 2:
                boots["between_within"].append(_between_within(x[sub], y[sub]))
    values = {
        "silhouette": float(sil.mean()),
        "davies_bouldin": db,
        "linear_probe": float(lin_ok.mean()),
        "knn": float(knn_ok.mean()),
        "between_within": ratio,
    }
    out = {}
    for name, value in values.items():
        lo, hi = _ci(boots[name]) if n_boot else (float("nan"), float("nan"))
        out[name] = {"value": value, "lo": lo, "hi": hi}
    return out


def tsne(embedding: Any, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of the rows of ``embedding`` (scikit-learn, PCA initialisation, seeded)."""
    from sklearn.manifold import TSNE

    x = float_array("embedding", embedding, 2)
    if x.shape[0] < 5:
        raise ValueError(f"embedding: t-SNE needs at least 5 rows, got {x.shape[0]}")
    perp = min(float(perplexity), (x.shape[0] - 1) / 3.0)
    return TSNE(2, perplexity=perp, init="pca", random_state=seed, max_iter=500).fit_transform(x)

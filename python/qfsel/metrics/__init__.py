"""Metrics for explanations: the paper's class disentanglement and the standard XAI measures.

Every metric takes arrays (heatmaps, selections, weights, labels, images) and, where it must
run the network, the model itself - never an explainer object - so the same functions score
explanations computed now (:func:`qfsel.evaluate`) or read back from a results store.

* :mod:`~qfsel.metrics.disentanglement` - per-class histograms of selected maps, Bhattacharyya
  overlap matrix, GradCAM/GradCAM++ counterparts;
* :mod:`~qfsel.metrics.embeddings` - silhouette, Davies-Bouldin, linear probe, k-NN,
  between/within ratio with bootstrap CIs, t-SNE;
* :mod:`~qfsel.metrics.faithfulness` - deletion/insertion AUC (RISE), average drop/increase,
  ROAD (Quantus);
* :mod:`~qfsel.metrics.localization` - pointing game, relevance mass/rank, IoU (+ Quantus);
* :mod:`~qfsel.metrics.sanity` - cascading parameter randomisation, random logit.
"""

from __future__ import annotations

from .disentanglement import (
    COUNTERPARTS,
    bhattacharyya,
    class_histograms,
    disentanglement,
    overlap_matrix,
    selection_from_weights,
    selection_indicator,
)
from .embeddings import contribution_embedding, embedding_scores, heatmap_embedding, tsne
from .faithfulness import confidence_change, deletion_insertion, gaussian_blur, road
from .localization import localization, quantus_localization
from .sanity import default_cascade, model_randomisation, random_logit, spearman_rows

__all__ = [
    "COUNTERPARTS",
    "bhattacharyya",
    "class_histograms",
    "confidence_change",
    "contribution_embedding",
    "default_cascade",
    "deletion_insertion",
    "disentanglement",
    "embedding_scores",
    "gaussian_blur",
    "heatmap_embedding",
    "localization",
    "model_randomisation",
    "overlap_matrix",
    "quantus_localization",
    "random_logit",
    "road",
    "selection_from_weights",
    "selection_indicator",
    "spearman_rows",
    "tsne",
]

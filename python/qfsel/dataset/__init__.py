"""Dataset-scale explanation: :func:`explain_dataset` streams every method's heatmaps and
per-image records of a whole dataset into a store (Zarr + Parquet + manifest) that survives a
kill -9, and :func:`open_results` reads it back. ``backend="dask"`` spreads the batches over a
Dask cluster (see docs/scaling.md); :func:`save_preview` draws the first explained images."""

from .pipeline import DatasetSummary, explain_dataset
from .preview import save_preview
from .sources import ImageFolder
from .store import ConfigMismatchError, Results, StoreWriteError, open_results

__all__ = [
    "ConfigMismatchError",
    "DatasetSummary",
    "ImageFolder",
    "Results",
    "StoreWriteError",
    "explain_dataset",
    "open_results",
    "save_preview",
]

"""The :class:`Instance` record and its versioned ``.npz`` + JSON file format (see the package docs)."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .._checks import as_array, check_finite, check_symmetric, check_unit_interval, check_int, describe
from ..qubo import FeatureSelectionProblem

FORMAT = "qfsel-instance"
VERSION = 1
_OPTIONAL_ARRAYS = ("ground_state", "maps", "alpha", "candidates")


@dataclass(frozen=True)
class Instance:
    """One benchmark problem with its provenance and (optionally) its ground truth.

    Attributes:
        name: unique name (used as the key of benchmark results).
        relevance: ``(K,)`` float64.
        redundancy: ``(K, K)`` float64, symmetric, zero diagonal.
        beta: weight of relevance in ``[0, 1]``.
        k: exactly ``k`` selected maps, or ``None`` (free cardinality).
        penalty: lambda of the penalty form (``None``: qfsel's safe automatic one).
        family: family name (``"explanation"``, ..., ``"captured"``).
        provenance: how it was made (generator, seed and parameters, or model, layer, image).
        ground_truth: ``None`` or ``{"energy", "method", "certified", "details"}``.
        ground_state: ``(K,)`` uint8 state reaching ``ground_truth["energy"]`` (or ``None``).
        maps, alpha, candidates: captured instances only: candidate maps ``(K, h, w)``, their GradCAM
            weights ``(K,)`` and channel indices ``(K,)`` (to rebuild heatmaps of any selection).
    """

    name: str
    relevance: np.ndarray
    redundancy: np.ndarray
    beta: float = 0.7
    k: int | None = None
    penalty: float | None = None
    family: str = "custom"
    provenance: dict[str, Any] = field(default_factory=dict)
    ground_truth: dict[str, Any] | None = None
    ground_state: np.ndarray | None = None
    maps: np.ndarray | None = None
    alpha: np.ndarray | None = None
    candidates: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name: expected a non-empty string, got {describe(self.name)}")
        if self.name in (".", "..") or any(c in self.name for c in "/\\\0"):
            # the name is the file name save_many writes: '../x' would land outside its directory
            raise ValueError(f"name: expected a file-name-safe string (no '/', '\\', NUL, '.' or '..'), got {self.name!r}")
        h = check_finite("relevance", as_array("relevance", self.relevance, ndim=1))
        n = h.shape[0]
        j = check_finite("redundancy", as_array("redundancy", self.redundancy, shape=(n, n)))
        check_symmetric("redundancy", j)
        object.__setattr__(self, "relevance", h)
        object.__setattr__(self, "redundancy", j)
        object.__setattr__(self, "beta", check_unit_interval("beta", self.beta))
        if self.k is not None:
            object.__setattr__(self, "k", check_int("k", self.k, low=0, high=n))
        if self.penalty is not None:
            pen = float(self.penalty)
            if not np.isfinite(pen) or pen < 0:
                raise ValueError(f"penalty: expected a finite non-negative number or None, got {self.penalty!r}")
            object.__setattr__(self, "penalty", pen)
        if not isinstance(self.provenance, dict):
            raise TypeError(f"provenance: expected a dict, got {describe(self.provenance)}")
        if self.ground_state is not None:
            gs = np.asarray(self.ground_state)
            if gs.shape != (n,) or not np.all((gs == 0) | (gs == 1)):
                raise ValueError(f"ground_state: expected a 0/1 vector of shape ({n},), got {describe(self.ground_state)}")
            object.__setattr__(self, "ground_state", gs.astype(np.uint8))
        if self.ground_truth is not None:
            gt = self.ground_truth
            if not isinstance(gt, dict) or "energy" not in gt or "method" not in gt:
                raise ValueError(f"ground_truth: expected None or a dict with 'energy' and 'method', got {describe(gt)}")
        if self.maps is not None:
            m = np.asarray(self.maps, dtype=np.float32)
            if m.ndim != 3 or m.shape[0] != n:
                raise ValueError(f"maps: expected shape ({n}, h, w), got {describe(self.maps)}")
            object.__setattr__(self, "maps", m)
        if self.alpha is not None:
            object.__setattr__(self, "alpha", as_array("alpha", self.alpha, shape=(n,)))
        if self.candidates is not None:
            object.__setattr__(self, "candidates", as_array("candidates", self.candidates, dtype=np.int64, shape=(n,)))

    @property
    def num_variables(self) -> int:
        """``K``, the number of binary variables (candidate maps)."""
        return int(self.relevance.shape[0])

    @property
    def best_energy(self) -> float | None:
        """The ground-truth energy, or ``None`` when not known yet."""
        return None if self.ground_truth is None else float(self.ground_truth["energy"])

    def problem(self) -> FeatureSelectionProblem:
        """The :class:`qfsel.FeatureSelectionProblem` of this instance."""
        return FeatureSelectionProblem(self.relevance, self.redundancy, beta=self.beta, k=self.k, penalty=self.penalty)

    def with_ground_truth(self, energy: float, state: np.ndarray | None, method: str, details: dict[str, Any] | None = None) -> "Instance":
        """A copy with the given ground truth (``method``: ``"exact"`` or ``"best-known"``)."""
        if method not in ("exact", "best-known"):
            raise ValueError(f"method: expected 'exact' or 'best-known', got {method!r}")
        gt = {"energy": float(energy), "method": method, "certified": method == "exact", "details": dict(details or {})}
        return replace(self, ground_truth=gt, ground_state=None if state is None else np.asarray(state, dtype=np.uint8))

    def heatmap(self, selected: Iterable[int] | np.ndarray) -> np.ndarray:
        """``ReLU(sum_{p in S} alpha_p A_p)`` at layer resolution for a selection (captured instances only).

        ``selected`` is a 0/1 state of length K or a list of variable indices.
        """
        if self.maps is None or self.alpha is None:
            raise ValueError(f"instance {self.name!r}: no maps/alpha stored (only captured instances rebuild heatmaps)")
        sel = np.asarray(list(selected) if not isinstance(selected, np.ndarray) else selected)
        if sel.shape == (self.num_variables,) and sel.dtype != np.int64 and np.all((sel == 0) | (sel == 1)):
            idx = np.flatnonzero(sel)
        else:
            idx = sel.astype(np.int64)
        w = self.alpha[idx][:, None, None]
        return np.maximum((w * self.maps[idx].astype(np.float64)).sum(axis=0), 0.0)

    def metadata(self) -> dict[str, Any]:
        """The JSON object stored as ``meta`` in the file."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "family": self.family,
            "num_variables": self.num_variables,
            "beta": self.beta,
            "k": self.k,
            "penalty": self.penalty,
            "provenance": self.provenance,
            "ground_truth": self.ground_truth,
        }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def ensure_dir(name: str, path: str | os.PathLike[str]) -> Path:
    """Creates the directory ``path`` (and its parents); an ``OSError`` of the same kind names ``name``.

    ``Path.mkdir`` alone said only ``[Errno 17] File exists: 'x'`` for an existing file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a directory path (str or os.PathLike), got {describe(path)}")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise NotADirectoryError(20, f"{name}: expected a directory, got {str(p)!r}, an existing file")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(exc.errno, f"{name}: cannot create the directory {str(p)!r}: {exc.strerror or exc}") from None
    return p


def save(instance: Instance, path: str | os.PathLike[str]) -> Path:
    """Write ``instance`` to ``path`` (``.npz`` is appended when missing); returns the path written."""
    if not isinstance(instance, Instance):
        raise TypeError(f"instance: expected a qfsel.instances.Instance, got {describe(instance)}")
    p = Path(path)
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    arrays: dict[str, Any] = {
        "meta": np.array(json.dumps(_jsonable(instance.metadata()), allow_nan=True)),
        "relevance": instance.relevance,
        "redundancy": instance.redundancy,
    }
    for key in _OPTIONAL_ARRAYS:
        val = getattr(instance, key)
        if val is not None:
            arrays[key] = val
    ensure_dir("path", p.parent)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, p)
    return p


def load(path: str | os.PathLike[str]) -> Instance:
    """Read an instance written by :func:`save`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a ``qfsel-instance`` file, another format version, or arrays whose shapes
            do not match the metadata.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path (str or os.PathLike), got {describe(path)}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: no instance file at {str(p)!r}")
    if not zipfile.is_zipfile(p):  # np.load would call a text file 'pickled (object) data'
        raise ValueError(f"path: {str(p)!r} is not a qfsel-instance .npz file (not a zip archive)")
    try:
        data = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"path: {str(p)!r} is not a qfsel-instance .npz file ({exc})") from None
    with data:
        if "meta" not in data.files:
            raise ValueError(f"path: {str(p)!r} has no 'meta' entry: not a {FORMAT} file")
        try:
            meta = json.loads(str(data["meta"][()]))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"path: {str(p)!r}: its 'meta' is not JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"path: {str(p)!r}: expected format {FORMAT!r}, got {meta.get('format') if isinstance(meta, dict) else meta!r}")
        if meta.get("version") != VERSION:
            raise ValueError(f"path: {str(p)!r}: expected {FORMAT} version {VERSION}, got version {meta.get('version')!r}")
        for key in ("name", "num_variables", "beta", "k"):
            if key not in meta:
                raise ValueError(f"path: {str(p)!r}: metadata lacks {key!r}")
        missing = [key for key in ("relevance", "redundancy") if key not in data.files]
        if missing:
            raise ValueError(f"path: {str(p)!r}: missing array {missing[0]!r}")
        h, j = data["relevance"], data["redundancy"]
        n = meta["num_variables"]
        if h.shape != (n,) or j.shape != (n, n):
            raise ValueError(
                f"path: {str(p)!r}: metadata says K = {n}, got relevance of shape {h.shape} and redundancy of shape {j.shape}"
            )
        extra = {key: data[key] for key in _OPTIONAL_ARRAYS if key in data.files}
    return Instance(
        name=meta["name"],
        relevance=h,
        redundancy=j,
        beta=meta["beta"],
        k=meta["k"],
        penalty=meta.get("penalty"),
        family=meta.get("family", "custom"),
        provenance=meta.get("provenance") or {},
        ground_truth=meta.get("ground_truth"),
        **extra,
    )


def save_many(instances: Iterable[Instance], directory: str | os.PathLike[str]) -> list[Path]:
    """Save each instance as ``directory/<name>.npz``; names must be unique."""
    out, seen = [], set()
    ensure_dir("directory", directory)
    for inst in instances:
        if inst.name in seen:
            raise ValueError(f"instances: duplicate instance name {inst.name!r}")
        seen.add(inst.name)
        out.append(save(inst, Path(directory) / f"{inst.name}.npz"))
    return out


def load_many(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Instance]:
    """Load instance files: a directory (every ``*.npz`` in it, sorted), one file, or a list of either."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Instance] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files = sorted(p.glob("*.npz"))
            if not files:
                raise FileNotFoundError(f"paths: no .npz instance files in directory {str(p)!r}")
            out.extend(load(f) for f in files)
        else:
            out.append(load(p))
    return out

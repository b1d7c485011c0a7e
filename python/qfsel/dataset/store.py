"""The results store of :func:`qfsel.explain_dataset`: Zarr heatmaps, Parquet records, a manifest.

Layout of a store folder::

    PATH/
      .qfsel-store          marker: this folder is a qfsel results store
      manifest.json         configuration (model, layers, methods, parameters, seed, version),
                            shapes, the class names of the labels ("classes", when the dataset
                            has them), and at the end the summary of the run
      heatmaps.zarr/        one chunked array per method, (N, H, W), float16 by default,
                            one chunk per batch along the image axis (NaN for failed images)
      raw.zarr/             optional: per method and target layer the raw maps (N, h, w),
                            float32 (not normalised: float16 would overflow)
      records/part-BBBBBB.parquet    one row per (image, method) of batch BBBBBB
      failures/part-BBBBBB.parquet   unreadable images of batch BBBBBB (path, reason)
      inflight/part-BBBBBB.capture   while batch BBBBBB is being finished: its saved capture

A batch is *complete* when its records part exists. The part is written last, to a temporary
name and renamed (an atomic step on POSIX file systems), after the batch's heatmap chunks and
failures part. So a job killed at any moment (kill -9 included) leaves a store whose complete
batches are whole, and a restart redoes only the batches without a records part.

**At most one batch of work is redone after a kill.** The pipeline finishes batch i (its QUBOs,
heatmaps and writes) while the model runs on batch i + 1, so two batches are in flight. Before
batch i is handed to the finishing thread, its capture (the layers' activations and gradients,
the output and the scores) is saved to ``inflight/`` (atomically, like the parts). It is deleted
once the batch is complete. A restart finishes a batch that has a saved capture from that capture,
without the model. So a kill costs at most the finishing work of batch i and the model pass of
batch i + 1. Captures larger than :data:`MAX_SAVED_CAPTURE_MB` are not saved; a kill then redoes
up to two batches. A saved capture is read back only by a job of the same configuration (any other
job replaces the store or is refused). Each batch
writes only its own chunks, so several processes (the Dask backend) write one store without
locks.

A batch's chunk is written whole, encoded with the array's own codecs (zarr's default: raw
little-endian bytes, then Zstandard) to the file zarr names it, through a temporary file and a
rename (:class:`_ChunkFiles`): the same bytes zarr writes, read back by zarr as usual, at a tenth
of the cost of zarr's own asynchronous write path (about 2.8 ms per chunk of 64 MNIST heatmaps
here, a third of the finishing work of a batch). An array with other codecs (another zarr
version's defaults) is written by zarr.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..exceptions import QFSelError

__all__ = [
    "ConfigMismatchError",
    "Results",
    "StoreWriteError",
    "open_results",
]

MARKER = ".qfsel-store"
MANIFEST = "manifest.json"
HEATMAPS = "heatmaps.zarr"
RAW = "raw.zarr"
RECORDS = "records"
FAILURES = "failures"
INFLIGHT = "inflight"
#: Captures larger than this (MiB) are not saved for a restart (see the module docs).
MAX_SAVED_CAPTURE_MB = 256
FORMAT_VERSION = 1
#: dtype of the raw maps (``store_raw=True``) whatever the heatmaps' dtype.
RAW_DTYPE = "float32"


class ConfigMismatchError(QFSelError, ValueError):
    """An existing store was written with another configuration (pass ``overwrite=True`` to replace it)."""


class StoreWriteError(QFSelError, OSError):
    """The store could not be written (full or read-only disk, ...); it stays readable up to the
    last complete batch, and running the same job again continues from there."""


# --------------------------------------------------------------------------------------------
# record schema
# --------------------------------------------------------------------------------------------


def _records_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("index", pa.int64()),
            ("batch", pa.int64()),
            ("path", pa.string()),
            ("label", pa.int64()),
            ("method", pa.string()),
            ("predicted", pa.int64()),
            ("score", pa.float64()),
            ("flat", pa.bool_()),
            ("selected", pa.list_(pa.int32())),
            ("num_selected", pa.int32()),
            ("candidates", pa.int32()),
            ("energy", pa.float64()),
            ("feasible", pa.bool_()),
            ("solver", pa.string()),
            ("solver_s", pa.float64()),
        ]
    )


def _failures_schema():
    import pyarrow as pa

    return pa.schema([("index", pa.int64()), ("batch", pa.int64()), ("path", pa.string()), ("reason", pa.string())])


TIMING_COLUMNS = ("solver_s",)
"""Record columns that measure time (differ between runs; everything else is reproducible)."""


def _write_error(path: Path, exc: OSError, last_complete: int | None) -> StoreWriteError:
    what = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied", errno.EDQUOT: "the disk quota is exceeded"}.get(
        exc.errno or -1, exc.strerror or str(exc))
    done = ("no batch is complete yet" if last_complete is None
            else f"the store stays readable with its complete batches (up to batch {last_complete})")
    err = StoreWriteError(
        exc.errno or errno.EIO,
        f"out: cannot write the results store {path}: {what} ({exc}); {done}; "
        "free space or fix the permissions and run the same job again to continue",
    )
    return err


def _makedirs(path: Path) -> None:
    """Creates a folder (and its parents) of the store."""
    os.makedirs(path, exist_ok=True)


def _atomic_write_bytes(target: Path, data: bytes) -> None:
    """Writes ``data`` to ``target`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        with _suppress_os():
            os.unlink(tmp)
        raise


class _suppress_os:
    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> bool:
        return typ is not None and issubclass(typ, OSError)


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


PARQUET, CAPTURE = ".parquet", ".capture"


def _part_name(batch: int, suffix: str = PARQUET) -> str:
    return f"part-{batch:06d}{suffix}"


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


class _ChunkFiles:
    """Writes whole chunks along axis 0 of a zarr v3 array in a local folder, encoded as zarr
    encodes them: the array's codecs must be little-endian bytes, optionally followed by
    Zstandard (zarr's default); :meth:`for_array` gives None for anything else."""

    def __init__(self, folder: Path, arr: Any, zstd: Any) -> None:
        md = arr.metadata
        self.folder, self.shape, self.chunk = folder, tuple(arr.shape), tuple(md.chunk_grid.chunk_shape)
        self.dtype = np.dtype(arr.dtype).newbyteorder("<")
        self.fill = md.fill_value
        self.key = md.chunk_key_encoding.encode_chunk_key
        self.zstd = zstd
        # zarr's default: a chunk holding only the fill value (a batch whose images all failed)
        # is not written, and an earlier file of it is deleted
        self.write_empty = bool(getattr(getattr(arr, "config", None), "write_empty_chunks", False))
        self._made: set[Path] = set()

    @classmethod
    def for_array(cls, folder: Path, arr: Any) -> "_ChunkFiles | None":
        try:
            from zarr.codecs import BytesCodec, ZstdCodec
            from zarr.core.chunk_grids import RegularChunkGrid
            from zarr.storage import LocalStore

            md = arr.metadata
            codecs = tuple(md.codecs)
            if (getattr(md, "zarr_format", None) != 3 or not isinstance(md.chunk_grid, RegularChunkGrid)
                    or not isinstance(arr.store_path.store, LocalStore)
                    or tuple(md.chunk_grid.chunk_shape[1:]) != tuple(arr.shape[1:])
                    or not codecs or type(codecs[0]) is not BytesCodec
                    or getattr(codecs[0].endian, "value", codecs[0].endian) != "little"
                    or len(codecs) > 2 or (len(codecs) == 2 and type(codecs[1]) is not ZstdCodec)):
                return None
            zstd = None
            if len(codecs) == 2:
                from numcodecs import Zstd

                zstd = Zstd(level=codecs[1].level, checksum=codecs[1].checksum)
            return cls(folder, arr, zstd)
        except (ImportError, AttributeError, TypeError, ValueError):
            return None  # another zarr: its own write path

    def write(self, start: int, rows: np.ndarray) -> bool:
        """Writes ``rows`` as the chunk starting at ``start``; False (nothing written) when they
        are not one whole chunk (the last one may be short: it is padded with the fill value)."""
        c = self.chunk[0]
        n = rows.shape[0]
        if start % c or not (n == c or (start + n == self.shape[0] and n < c)) or rows.shape[1:] != self.shape[1:]:
            return False
        data = np.ascontiguousarray(rows, dtype=self.dtype)
        if n < c:
            padded = np.full((c,) + self.shape[1:], self.fill, dtype=self.dtype)
            padded[:n] = data
            data = padded
        target = self.folder / self.key((start // c,) + (0,) * (len(self.shape) - 1))
        if not self.write_empty and _only_fill(data, self.fill):
            with _suppress_os():
                os.unlink(target)
            return True
        encoded = data.tobytes() if self.zstd is None else bytes(self.zstd.encode(data.tobytes()))
        if target.parent not in self._made:
            _makedirs(target.parent)
            self._made.add(target.parent)
        _atomic_write_bytes(target, encoded)
        return True


def _only_fill(data: np.ndarray, fill: Any) -> bool:
    """Whether every value of ``data`` is the fill value (NaN: every value is NaN)."""
    fill = np.asarray(fill, dtype=data.dtype)
    if data.dtype.kind in "fc" and bool(np.isnan(fill)):
        return bool(np.isnan(data).all())
    return bool((data == fill).all())


def _is_temporary(name: str) -> bool:
    """A temporary file of an atomic write inside the arrays, left by a kill mid-write: ours
    (``.0.XXXX.tmp``, :func:`_atomic_write_bytes`) or zarr's (``0.<hex>.partial``)."""
    return (name.startswith(".") and name.endswith(".tmp")) or name.endswith(".partial")


def _write_rows(arr: Any, files: "_ChunkFiles | None", start: int, rows: np.ndarray) -> None:
    if files is None or not files.write(start, rows):
        arr[start : start + rows.shape[0]] = rows


class StoreWriter:
    """Creates or reopens a store and writes one batch at a time (used by the pipeline)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._arrays: dict[str, Any] = {}
        self._raw: dict[tuple[str, str], Any] = {}
        self._files: dict[Any, _ChunkFiles | None] = {}

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], manifest: dict[str, Any], *, overwrite: bool) -> "StoreWriter":
        """Creates the store, or reopens one written with the same ``manifest["config"]``.

        Replacing a store (``overwrite``, or one without a complete batch) deletes only the
        store's own entries (:data:`STORE_ENTRIES`); other files in the folder are kept.

        Raises:
            ConfigMismatchError: the store holds complete batches of another configuration and
                ``overwrite`` is False (one with no complete batch is replaced).
            ValueError: ``path`` is a file, or a non-empty folder that is not a qfsel store.
            StoreWriteError: the folder cannot be created or written.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ValueError(f"out: expected a folder for the results store, got {path}, an existing file")
        existing = path / MANIFEST
        if path.is_dir() and any(path.iterdir()):
            if not (path / MARKER).exists():
                raise ValueError(
                    f"out: {path} is a non-empty folder that is not a qfsel results store; "
                    "choose a new or empty folder"
                )
            if existing.exists() and not overwrite:
                try:
                    old = read_manifest(path)
                except ValueError as exc:
                    raise ValueError(f"out: {exc}") from None
                if old.get("config") == manifest["config"]:
                    writer = cls(path, old)
                    writer._open_arrays()
                    return writer
                if _done_batches(path):
                    diff = _config_diff(old.get("config", {}), manifest["config"])
                    raise ConfigMismatchError(
                        f"out: the store {path} was written with another configuration ({diff}); "
                        "pass overwrite=True (--overwrite) to replace it, or choose another folder"
                    )
                # no complete batch: nothing of the other job would be lost (e.g. it failed on k > d)
            # overwrite, a store whose creation was interrupted before its manifest, or one with no
            # complete batch of another configuration: start anew.
            # The marker goes last, so a kill during the clean-up still leaves a folder we own.
            try:
                for child in path.iterdir():
                    if child.name == MARKER or not _written_by_store(child.name):
                        continue  # (what the user keeps in the folder is not ours to delete)
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            except OSError as exc:
                raise _write_error(path, exc, None) from exc
        writer = cls(path, manifest)
        try:
            writer._create()
        except OSError as exc:
            raise _write_error(path, exc, None) from exc
        return writer

    def _create(self) -> None:
        import zarr

        _makedirs(self.path)
        _atomic_write_bytes(self.path / MARKER, b"qfsel results store\n")
        _makedirs(self.path / RECORDS)
        _makedirs(self.path / FAILURES)
        m = self.manifest
        n, (h, w) = m["num_images"], m["heatmap_shape"]
        bs = min(m["config"]["batch_size"], n)  # (a chunk need not be larger than the dataset)
        group = zarr.open_group(str(self.path / HEATMAPS), mode="w")
        for method in m["config"]["methods"]:
            group.create_array(method, shape=(n, h, w), chunks=(bs, h, w), dtype=m["config"]["dtype"],
                               fill_value=np.nan)
        if m["config"]["store_raw"]:
            raw = zarr.open_group(str(self.path / RAW), mode="w")
            for method in m["config"]["methods"]:
                for layer, (lh, lw) in zip(m["config"]["target_layers"], m["raw_shapes"]):
                    raw.create_array(f"{method}/{layer}", shape=(n, lh, lw), chunks=(bs, lh, lw),
                                     dtype=RAW_DTYPE, fill_value=np.nan)
        self.write_manifest()  # last: a store without a manifest is recreated on the next run
        self._open_arrays()

    def _open_arrays(self) -> None:
        import zarr

        group = zarr.open_group(str(self.path / HEATMAPS), mode="r+")
        self._arrays = {m: group[m] for m in self.manifest["config"]["methods"]}
        self._files = {m: _ChunkFiles.for_array(self.path / HEATMAPS / m, a) for m, a in self._arrays.items()}
        if self.manifest["config"]["store_raw"]:
            raw = zarr.open_group(str(self.path / RAW), mode="r+")
            self._raw = {(m, layer): raw[f"{m}/{layer}"] for m in self.manifest["config"]["methods"]
                         for layer in self.manifest["config"]["target_layers"]}
            self._files.update({key: _ChunkFiles.for_array(self.path / RAW / key[0] / key[1], a)
                                for key, a in self._raw.items()})

    def write_manifest(self) -> None:
        _atomic_write_bytes(self.path / MANIFEST, (json.dumps(self.manifest, indent=2, sort_keys=True) + "\n").encode())

    # -- state ------------------------------------------------------------------------------
    def done_batches(self) -> set[int]:
        """Indices of the complete batches (those with a records part)."""
        return _done_batches(self.path)

    # -- saved captures of the batches in flight -------------------------------------------
    def capture_path(self, batch: int) -> Path:
        """Where the capture of batch ``batch`` is saved while it is being finished."""
        return self.path / INFLIGHT / _part_name(batch, CAPTURE)

    def save_capture(self, batch: int, data: bytes) -> None:
        """Saves a capture's bytes atomically (see the module docs).

        Raises:
            StoreWriteError: an OSError (full or read-only disk, ...) while writing.
        """
        try:
            _makedirs(self.path / INFLIGHT)
            _atomic_write_bytes(self.capture_path(batch), data)
        except OSError as exc:
            raise self._write_failed(exc) from exc

    def saved_captures(self) -> set[int]:
        """Batches with a saved capture."""
        return _parts(self.path / INFLIGHT, CAPTURE)

    def drop_capture(self, batch: int) -> None:
        """Deletes the saved capture of a complete batch (no error when there is none)."""
        with _suppress_os():
            os.unlink(self.capture_path(batch))

    def drop_stale_temporaries(self) -> None:
        """Deletes the temporary files that a kill in the middle of a chunk write left inside the
        arrays (no reader looks at them, but they would stay for good). Only while no batch is
        being written (at the start of a job, before any worker runs)."""
        for folder in (self.path / HEATMAPS, self.path / RAW):
            if folder.is_dir():
                for p in folder.rglob("*"):
                    if _is_temporary(p.name) and p.is_file():
                        with _suppress_os():
                            os.unlink(p)

    def drop_stale_captures(self) -> None:
        """Deletes saved captures of complete batches (a kill between the two steps leaves them)."""
        for b in self.saved_captures() & self.done_batches():
            self.drop_capture(b)
        with _suppress_os():
            os.rmdir(self.path / INFLIGHT)  # only when empty

    # -- one batch --------------------------------------------------------------------------
    def write_batch(
        self,
        batch: int,
        heatmaps: dict[str, np.ndarray],
        raw: dict[tuple[str, str], np.ndarray],
        records: dict[str, list[Any]],
        failures: dict[str, list[Any]],
    ) -> None:
        """Writes batch ``batch``: heatmap rows, raw maps, the failures part, then the records part.

        Raises:
            StoreWriteError: an OSError (full disk, read-only file system, ...) while writing.
        """
        import pyarrow as pa

        bs = self.manifest["config"]["batch_size"]
        start = batch * bs
        try:
            for method, arr in self._arrays.items():
                _write_rows(arr, self._files.get(method), start, heatmaps[method])
            for key, arr in self._raw.items():
                _write_rows(arr, self._files.get(key), start, raw[key])
            fail_table = pa.Table.from_pydict(failures, schema=_failures_schema())
            _atomic_write_bytes(self.path / FAILURES / _part_name(batch), _parquet_bytes(fail_table))
            table = pa.Table.from_pydict(records, schema=_records_schema())
            _atomic_write_bytes(self.path / RECORDS / _part_name(batch), _parquet_bytes(table))
        except OSError as exc:
            if isinstance(exc, StoreWriteError):
                raise
            raise self._write_failed(exc) from exc

    def _write_failed(self, exc: OSError) -> "StoreWriteError":
        """The error for a failed write, naming the last complete batch."""
        done = self.done_batches()
        return _write_error(self.path, exc, max(done) if done else None)


#: What a store writes at its top level (and nothing else is deleted when it is replaced).
STORE_ENTRIES = (MANIFEST, HEATMAPS, RAW, RECORDS, FAILURES, INFLIGHT, "preview.png")


def _written_by_store(name: str) -> bool:
    """Whether a top-level entry of a store folder is the store's: one of :data:`STORE_ENTRIES`
    or a temporary file of one (``.manifest.json.XXXX.tmp``, left by a kill)."""
    return name in STORE_ENTRIES or any(
        name.startswith(f".{entry}.") and name.endswith(".tmp") for entry in STORE_ENTRIES + (MARKER,))


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The differences of two configurations, top-level values first (methods, batch_size, ...),
    then those inside dicts (method_params.beta, ...), each entry of a dict both sides have."""
    items: list[tuple[str, Any, Any]] = []
    nested: list[tuple[str, Any, Any]] = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and a and b:
            nested += [(f"{k}.{s}", a.get(s), b.get(s)) for s in sorted(set(a) | set(b)) if a.get(s) != b.get(s)]
        else:
            items.append((k, a, b))
    items.sort(key=lambda d: isinstance(d[1], dict) or isinstance(d[2], dict))  # (stable: by name otherwise)
    diffs = items + nested
    shown = []
    for k, a, b in diffs[:4]:
        ta, tb = (json.dumps(v, sort_keys=True) for v in (a, b))
        ta, tb = (t if len(t) <= 60 else t[:57] + "..." for t in (ta, tb))
        shown.append(f"{k}: stored {ta}, now {tb}")
    more = f" and {len(diffs) - 4} more" if len(diffs) > 4 else ""
    return "; ".join(shown) + more


def _done_batches(path: Path) -> set[int]:
    return _parts(path / RECORDS, PARQUET)


def _parts(folder: Path, suffix: str) -> set[int]:
    """Batch numbers of the ``part-BBBBBB<suffix>`` files in ``folder`` (temporaries ignored)."""
    if not folder.is_dir():
        return set()
    out = set()
    for name in os.listdir(folder):
        if name.startswith("part-") and name.endswith(suffix):
            out.add(int(name[5 : -len(suffix)]))
    return out


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    """A results store opened for reading (see :func:`open_results`).

    Attributes:
        path: the store folder.
        manifest: the configuration and, for a finished job, its summary.
    """

    path: Path
    manifest: dict[str, Any]

    @property
    def methods(self) -> list[str]:
        """Method names, as in :data:`qfsel.cams.METHODS`."""
        return list(self.manifest["config"]["methods"])

    @property
    def num_images(self) -> int:
        """Images in the dataset (complete or not)."""
        return int(self.manifest["num_images"])

    @property
    def complete(self) -> bool:
        """Whether every batch is complete."""
        return len(self.done_batches()) == int(self.manifest["num_batches"])

    def done_batches(self) -> list[int]:
        """Indices of the complete batches, sorted."""
        return sorted(_done_batches(self.path))

    def done_indices(self) -> np.ndarray:
        """Image indices of the complete batches (read successfully or recorded as failures)."""
        bs, n = int(self.manifest["config"]["batch_size"]), self.num_images
        parts = [np.arange(b * bs, min(n, (b + 1) * bs)) for b in self.done_batches()]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def _table(self, folder: str, schema: Any, batches: Any = None) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        done = self.done_batches()
        wanted = self._batches(batches)
        if wanted is not None:
            done = sorted(set(done) & wanted)
        tables = [pq.read_table(self.path / folder / _part_name(b)) for b in done]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return schema.empty_table()
        return pa.concat_tables(tables)

    def records_table(self, batches: Any = None) -> Any:
        """The records of the complete batches (of those among ``batches`` when given) as a
        ``pyarrow.Table`` (by batch, then image, then method)."""
        return self._table(RECORDS, _records_schema(), batches)

    def records(self, method: str | None = None, *, batches: Any = None) -> Any:
        """The records as a ``pandas.DataFrame`` (one method's rows when ``method`` is given; only
        the complete batches among ``batches`` when given: a large store need not be read whole)."""
        df = self.records_table(batches).to_pandas()
        if method is not None:
            df = df[df["method"] == self._method(method)].reset_index(drop=True)
        return df

    def failures(self) -> Any:
        """Unreadable images of the complete batches: ``pandas.DataFrame`` (index, batch, path, reason)."""
        return self._table(FAILURES, _failures_schema()).to_pandas()

    def _method(self, method: str) -> str:
        from ..cams import _ALIASES

        if not isinstance(method, str):
            raise TypeError(f"method: expected a method name (str), one of the store's methods {self.methods}; "
                            f"got {type(method).__name__} {method!r:.60}")
        name = _ALIASES.get(method.lower(), method.lower())
        if name not in self.methods:
            raise ValueError(f"method: expected one of the store's methods {self.methods}, got {method!r}")
        return name

    def _layer(self, layer: str) -> str:
        layers = list(self.manifest["config"]["target_layers"])
        if layer not in layers:
            raise ValueError(f"layer: expected one of the store's target layers {layers}, got {layer!r:.60}")
        return layer

    def _batches(self, batches: Any) -> set[int] | None:
        """``batches`` (None, a batch number or an iterable of them) as a set."""
        if batches is None:
            return None
        many = (batches,) if isinstance(batches, (int, np.integer)) else batches
        if isinstance(batches, (str, bytes)) or not hasattr(many, "__iter__") or not all(
                isinstance(b, (int, np.integer)) and not isinstance(b, (bool, np.bool_)) for b in many):
            raise TypeError(f"batches: expected None, a batch number or an iterable of batch numbers (int), "
                            f"got {type(batches).__name__} {batches!r:.60}")
        return {int(b) for b in many}

    def heatmaps(self, method: str) -> Any:
        """The (N, H, W) heatmaps of ``method`` as a ``zarr.Array`` (index it to read; NaN rows:
        failed or not yet computed images). Only the rows of complete batches
        (:meth:`done_batches`) count: a job killed while writing a batch may have left that
        batch's rows written before its records, and the next run writes them again."""
        import zarr

        return zarr.open_group(str(self.path / HEATMAPS), mode="r")[self._method(method)]

    def raw_maps(self, method: str, layer: str) -> Any:
        """The raw maps (N, h, w) of ``method`` on ``layer`` (only with ``store_raw=True``)."""
        import zarr

        if not self.manifest["config"]["store_raw"]:
            raise ValueError("raw_maps: this store has no raw maps (the job ran with store_raw=False)")
        return zarr.open_group(str(self.path / RAW), mode="r")[f"{self._method(method)}/{self._layer(layer)}"]

    def arrays(self, method: str) -> dict[str, Any]:
        """One method's results as arrays, the form metrics take (failed images left out).

        Returns:
            ``{"index": (n,) int64, "heatmaps": (n, H, W) float32, "labels": (n,) int64 (-1:
            none), "predicted": (n,) int64, "scores": (n,) float64, "selected": list of int
            arrays (None for the baselines)}``, ordered by image index.
        """
        recs = self.records(method).sort_values("index", kind="stable")
        idx = recs["index"].to_numpy(np.int64)
        heat = self.heatmaps(method)
        maps = np.empty((len(idx), *heat.shape[1:]), np.float32)
        bs = int(self.manifest["config"]["batch_size"])
        pos = 0
        for b in np.unique(idx // bs):  # one chunk read per batch
            rows = idx[idx // bs == b]
            block = np.asarray(heat[b * bs : b * bs + bs], dtype=np.float32)
            maps[pos : pos + len(rows)] = block[rows - b * bs]
            pos += len(rows)
        sel = recs["selected"].tolist()
        return {
            "index": idx,
            "heatmaps": maps,
            "labels": recs["label"].to_numpy(np.int64),
            "predicted": recs["predicted"].to_numpy(np.int64),
            "scores": recs["score"].to_numpy(np.float64),
            "selected": None if all(v is None for v in sel) else [np.asarray(v, np.int64) for v in sel],
        }

    def counts(self) -> tuple[int, int]:
        """``(explained, failed)`` images of the complete batches, from the Parquet footers only
        (no rows are read: constant memory however large the store)."""
        import pyarrow.parquet as pq

        explained = failed = 0
        per_image = len(self.methods)
        for b in self.done_batches():
            explained += pq.read_metadata(self.path / RECORDS / _part_name(b)).num_rows // per_image
            fail = self.path / FAILURES / _part_name(b)
            if fail.exists():
                failed += pq.read_metadata(fail).num_rows
        return explained, failed

    def iter_batches(self, method: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(indices, heatmaps float32)`` per complete batch, without failed images: one batch
        in memory at a time (for evaluation metrics over a large store)."""
        import pyarrow.parquet as pq

        name = self._method(method)
        arr = self.heatmaps(name)
        bs = int(self.manifest["config"]["batch_size"])
        for b in self.done_batches():
            part = pq.read_table(self.path / RECORDS / _part_name(b), columns=["index", "method"])
            idx = np.asarray(part.column("index").to_numpy())[np.asarray(part.column("method").to_numpy()) == name]
            block = np.asarray(arr[b * bs : b * bs + bs], dtype=np.float32)
            yield idx, block[idx - b * bs]

    def __repr__(self) -> str:
        return (f"Results({str(self.path)!r}, methods={self.methods}, images={self.num_images}, "
                f"batches={len(self.done_batches())}/{self.manifest['num_batches']})")


def open_results(path: str | os.PathLike[str]) -> Results:
    """Opens a store written by :func:`qfsel.explain_dataset` (finished or not) for reading.

    Example:
        >>> import tempfile, torch
        >>> from torch import nn
        >>> import qfsel
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
        >>> out = tempfile.mkdtemp() + "/store"
        >>> _ = qfsel.explain_dataset(model, torch.rand(6, 3, 8, 8), ["1"], out=out, batch_size=4,
        ...                           methods=("gradcam",), num_workers=0, progress=False)
        >>> res = qfsel.open_results(out)
        >>> res.heatmaps("gradcam").shape, len(res.records())
        ((6, 8, 8), 6)

    Raises:
        FileNotFoundError: ``path`` holds no store manifest.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a store folder path (str or os.PathLike), got {type(path).__name__} {path!r:.60}")
    p = Path(path).expanduser()
    manifest = p / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(errno.ENOENT, f"path: no qfsel results store (no {MANIFEST}) at", str(p))
    return Results(p, read_manifest(p))


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the store at ``path``.

    Raises:
        ValueError: it is not JSON or lacks the configuration (edited by hand, a damaged disk).
    """
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        ok = (isinstance(manifest, dict) and isinstance(manifest.get("config"), dict)
              and all(k in manifest for k in ("num_images", "num_batches")))
        reason = "it lacks config, num_images or num_batches"
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        ok, reason = False, f"{type(exc).__name__}: {exc}"
    if not ok:
        raise ValueError(
            f"{path / MANIFEST} is not a valid qfsel store manifest ({reason}); explain_dataset(..., overwrite=True) "
            "(--overwrite) writes the store anew"
        )
    return manifest


def heatmap_chunk_files(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """The bytes of every heatmap chunk file of a store (relative path -> bytes), for comparisons."""
    root = Path(path) / HEATMAPS
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "zarr.json" and not _is_temporary(p.name):
            out[str(p.relative_to(root))] = p.read_bytes()
    return out

"""Helpers shared by the ``qfsel`` commands: argument checks, output folders, images, CAMs."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np

METHODS = ("qfs", "gradcam", "gradcam++")
"""Method names of ``--method`` (``all`` runs the three)."""

_FILE_TAG = {"qfs": "qfs", "gradcam": "gradcam", "gradcam++": "gradcampp"}
_TITLE = {"qfs": "QFS-CAM", "gradcam": "GradCAM", "gradcam++": "GradCAM++"}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
_DEFAULT_OUT = "qfsel-out"
_PHOTO_CANDIDATES = 64
"""Default ``--candidates`` for efficientnet-lite0 (``models.EFFICIENTNET_LITE0_CANDIDATES``,
repeated here so that building the parser does not import torch)."""
_SOLVE_DEMO_MAX_ENTRIES = 2**26
"""Largest ``--batch x --k-maps^2`` of ``solve-demo`` (the redundancy matrices, 512 MiB of float64)."""


class UserError(Exception):
    """A mistake in the command line or its inputs: reported without a traceback."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _enlarged(display: np.ndarray, heatmap: np.ndarray, min_side: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Repeats the pixels of a small image and its heatmap (nearest neighbour, integer factor).

    A 28x28 MNIST overlay becomes 224x224, so the PNG is readable; images whose short side is
    already ``min_side`` or more are returned unchanged. The blending is left to :mod:`qfsel.viz`.
    """
    scale = max(1, int(math.ceil(min_side / max(1, min(display.shape[:2])))))
    if scale == 1:
        return display, heatmap
    return (
        np.repeat(np.repeat(display, scale, axis=0), scale, axis=1),
        np.repeat(np.repeat(heatmap, scale, axis=0), scale, axis=1),
    )


def _device(choice: str) -> Any:
    """``--device`` as a torch.device: ``auto`` is CUDA when available, else the CPU."""
    import torch

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise UserError(
            f"--device: cuda was asked for, but torch.cuda.is_available() is False (torch "
            f"{torch.__version__}, {built}); use --device cpu or --device auto"
        )
    return torch.device(choice)


def _candidates_arg(text: str) -> int | str:
    """``--candidates``: an integer, or ``all`` (no cap)."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'all', got {text!r}") from None


def _effective_candidates(value: int | str | None, default: int | None) -> int | None:
    """The cap QFS-CAM gets: ``--candidates N``, None for ``all``, the model's default when not given."""
    if value is None:
        return default
    return None if value == "all" else int(value)


def _check_candidates(args: argparse.Namespace) -> None:
    if args.candidates is None or args.candidates == "all":
        return
    if args.candidates < 1:
        raise UserError(f"--candidates: expected an integer >= 1, got {args.candidates}")
    if args.k is not None and args.k > args.candidates:
        raise UserError(f"--k: expected an integer <= --candidates ({args.candidates}), got {args.k}")


def _prepare_out(out: Path, planned: Sequence[Path], inputs: Sequence[Path] = ()) -> None:
    """Creates the ``--out`` folder and checks the files about to be written into it.

    Raises :class:`UserError` when ``out`` is not a folder or cannot be created, when a planned
    file is a folder, or when it would replace one of ``inputs``; lists (stderr) the existing
    files that will be replaced.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: expected a folder, got {out}, an existing file; choose a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out: cannot create folder {out}: {exc.strerror or exc}") from exc
    sources = {p.resolve() for p in inputs}
    replaced = []
    for path in planned:
        if path.resolve() in sources:
            raise UserError(
                f"--out: writing {path} would replace the input image {path.name}; choose another --out"
            )
        if path.is_dir():
            raise UserError(f"--out: cannot write {path}: a folder of that name exists")
        if path.exists():
            replaced.append(path.name)
    if replaced:
        shown = ", ".join(replaced[:5]) + (f" and {len(replaced) - 5} more" if len(replaced) > 5 else "")
        print(f"qfsel: note: replacing {len(replaced)} existing file(s) in {out}: {shown}", file=sys.stderr)


_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB; 16-bit and floating-point greyscale files as floats in [0, 1].

    (PIL's ``convert("RGB")`` clips such pixels to 0..255 instead of scaling them: a 16-bit
    digit became a saturated one, a float one in [0, 1] almost black.)
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return _pil_array(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from exc


def _pil_array(image: Any) -> np.ndarray:
    """A PIL image as uint8 RGB (H, W, 3); 16-bit and floating-point greyscale ones as float (H, W) in [0, 1].

    Raises:
        ValueError: 16-bit or floating-point pixels outside [0, 65535] or [0, 1].
    """
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode in _SIXTEEN_BIT_MODES else 1.0
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > top:
            raise ValueError(
                f"{image.mode} pixels must lie in [0, {top:g}], got range [{array.min():.6g}, {array.max():.6g}]"
            )
        return array / top
    return np.asarray(image.convert("RGB"))


def _collect_images(paths: Sequence[str]) -> tuple[list[Path], list[dict[str, str]]]:
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
            if not found:
                print(f"qfsel: note: no image files in folder {path}", file=sys.stderr)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            print(f"qfsel: skipping {path}: no such file or folder", file=sys.stderr)
            skipped.append({"file": str(path), "reason": "no such file or folder"})
    return files, skipped


def _build_cam(method: str, model: Any, layer: str, args: argparse.Namespace, *, candidates: int | None = None):
    from ..cams import QFSCAM, GradCAM, GradCAMPlusPlus

    if method == "gradcam":
        return GradCAM(model, [layer])
    if method == "gradcam++":
        return GradCAMPlusPlus(model, [layer])
    return QFSCAM(
        model,
        [layer],
        beta=args.beta,
        k=args.k,
        sampler=args.sampler,
        seed=args.seed,
        candidates=candidates,
    )


def _run_cam(cam: Any, batch: Any) -> tuple[Any, list[str]]:
    """Explain ``batch``; flat-map warnings are collected and returned, not raised."""
    from ..exceptions import QFSelWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QFSelWarning)
        result = cam.explain(batch)
    notes = []
    for w in caught:
        if issubclass(w.category, QFSelWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, notes


def _methods(choice: str) -> list[str]:
    return list(METHODS) if choice == "all" else [choice]


_MAX_SEED = 2**64 - 1
"""Largest seed the solvers take (``qfsel._checks.check_seed``)."""


def _check_seed(seed: int | None) -> None:
    """``--seed`` in [0, 2**64 - 1], checked before anything is written (a larger one failed mid-run)."""
    if seed is not None and not 0 <= seed <= _MAX_SEED:
        raise UserError(f"--seed: expected an integer in [0, 2**64 - 1], got {seed}")


def _check_common(args: argparse.Namespace) -> None:
    if not 0.0 <= args.beta <= 1.0:
        raise UserError(f"--beta: expected a number in [0, 1], got {args.beta}")
    if args.k is not None and args.k < 1:
        raise UserError(f"--k: expected an integer >= 1, got {args.k}")
    _check_seed(args.seed)
    from .. import available_solvers

    if args.sampler not in available_solvers():
        raise UserError(f"--sampler: expected one of {available_solvers()}, got {args.sampler!r}")


def _unique_stems(paths: list[Path]) -> list[str]:
    """File stems made unique with ``-1``, ``-2``, ... (also against stems that already end so)."""
    taken: set[str] = set()
    stems = []
    for path in paths:
        base = path.stem or "image"
        stem, count = base, 0
        while stem in taken:
            count += 1
            stem = f"{base}-{count}"
        taken.add(stem)
        stems.append(stem)
    return stems


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors: status 2, no traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"qfsel: error: {message}\n")


#: The default of ``--beta`` (QFS-CAM's, the paper's).
BETA_DEFAULT = 0.7


def _add_qfs_options(parser: argparse.ArgumentParser, *, sampler_default: str | None) -> None:
    parser.add_argument("--beta", type=float, default=BETA_DEFAULT,
                        help=f"QFS-CAM weight of relevance against redundancy, in [0, 1] (default: {BETA_DEFAULT})")
    parser.add_argument("--k", type=int, default=None,
                        help="QFS-CAM selects exactly K maps (default: as many as minimise the energy)")
    if sampler_default is not None:
        parser.add_argument("--sampler", default=sampler_default,
                            help=f"QUBO solver for QFS-CAM, a name from qfsel.available_solvers() "
                                 f"(default: {sampler_default})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the QUBO solver (default: 0)")


def _add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                        help="where the model and the images run: cpu, cuda, or auto = cuda when "
                             "torch.cuda.is_available(), else cpu (default: auto)")

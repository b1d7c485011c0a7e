"""The ``qfsel`` command line: one module per command (``explain``, ``demo``, ``solve-demo``,
``explain-dataset``).

Entry point ``qfsel = qfsel.cli:main`` (also ``python -m qfsel``). User errors (bad
arguments, unknown layer names, missing files, an ``--out`` that cannot be written) print one
``qfsel: error: ...`` line and exit with status 2; no traceback.

Before anything is written, the files a run will write are checked: one that would replace an
input image is an error; existing files of the same names are listed on stderr
(``qfsel: note: replacing ...``) and then replaced.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import demo, explain, solve_demo
from . import explain_dataset
from . import bench  # issue 13
from . import gap  # issue 12
from . import evaluate as evaluate_cmd  # issue 10
from ._common import UserError, _Parser
from .solve_demo import random_explanation_batch

__all__ = ["main", "build_parser", "random_explanation_batch"]


def build_parser() -> argparse.ArgumentParser:
    """The ``qfsel`` argument parser (exposed for documentation and tests)."""
    from .. import __version__

    parser = _Parser(
        prog="qfsel",
        description="Explain CNN predictions with the few feature maps that matter: QFS-CAM "
        "(maps chosen by a QUBO) next to GradCAM and GradCAM++.",
    )
    parser.add_argument("--version", action="version", version=f"qfsel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    for command in (explain, demo, solve_demo, explain_dataset, bench, gap, evaluate_cmd):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qfsel`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and argparse's usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from ..exceptions import QFSelError

    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"qfsel: error: {exc}", file=sys.stderr)
        return 2
    except (QFSelError, ValueError, OSError, ModuleNotFoundError) as exc:  # OSError: e.g. a file not writable
        print(f"qfsel: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qfsel: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

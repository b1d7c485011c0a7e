"""``python -m qfsel``: the same command line as the ``qfsel`` entry point."""

from qfsel.cli import main

raise SystemExit(main())

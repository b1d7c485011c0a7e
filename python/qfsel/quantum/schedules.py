"""Annealing schedules ``A(s)``, ``B(s)`` of ``H(s) = A(s) H_driver + B(s) H_problem``.

A :class:`Schedule` is a table ``s_0 = 0 < s_1 < ... < s_m = 1`` with ``A, B >= 0``,
interpolated linearly in between (the Rust kernels evaluate the same interpolation).

* :meth:`Schedule.linear` -- the paper's ``A = 1 - s``, ``B = s`` (exact with two points).
* :meth:`Schedule.dwave_like` -- an analytic stand-in for the shape of D-Wave's published
  per-QPU schedules (see its docstring); not a fit to any particular QPU.
* :meth:`Schedule.from_file` -- an official per-QPU table (columns ``s``, ``A(s)``, ``B(s)``)
  exported as CSV.
* :meth:`Schedule.from_callables` -- any user ``A(s)``, ``B(s)``, sampled on a grid.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._checks import as_array, check_int, check_positive_real, describe

__all__ = ["Schedule", "resolve_schedule"]


class Schedule:
    """A validated, piecewise-linear annealing schedule.

    Args:
        s: strictly increasing points from exactly 0 to exactly 1.
        A: driver coefficients ``A(s_i) >= 0``.
        B: problem coefficients ``B(s_i) >= 0``.
        name: a label for plots and tables.

    Example:
        >>> from qfsel.quantum import Schedule
        >>> sch = Schedule.linear()
        >>> float(sch.A(0.25)), float(sch.B(0.25))
        (0.75, 0.25)
        >>> round(float(Schedule([0, 0.5, 1], [1, 0.4, 0], [0, 0.3, 1]).B(0.75)), 3)
        0.65
    """

    def __init__(self, s: Any, A: Any, B: Any, name: str = "table"):
        s_arr = as_array("schedule s", s, ndim=1)
        a_arr = as_array("schedule A", A, ndim=1)
        b_arr = as_array("schedule B", B, ndim=1)
        if not (len(s_arr) == len(a_arr) == len(b_arr)) or len(s_arr) < 2:
            raise ValueError(
                f"schedule: expected s, A and B of equal length >= 2, got lengths {len(s_arr)}, {len(a_arr)}, {len(b_arr)}"
            )
        for label, arr in (("s", s_arr), ("A", a_arr), ("B", b_arr)):
            if not np.all(np.isfinite(arr)):
                i = int(np.argmax(~np.isfinite(arr)))
                raise ValueError(f"schedule {label}: expected finite values, got {arr[i]!r} at index {i}")
        if s_arr[0] != 0.0 or s_arr[-1] != 1.0:
            raise ValueError(f"schedule s: expected points from 0 to 1, got {s_arr[0]!r} to {s_arr[-1]!r}")
        if np.any(np.diff(s_arr) <= 0):
            i = int(np.argmax(np.diff(s_arr) <= 0))
            raise ValueError(f"schedule s: expected strictly increasing points, got s[{i}]={s_arr[i]!r} >= s[{i + 1}]={s_arr[i + 1]!r}")
        for label, arr in (("A", a_arr), ("B", b_arr)):
            if np.any(arr < 0):
                i = int(np.argmax(arr < 0))
                raise ValueError(f"schedule {label}: expected values >= 0, got {arr[i]!r} at s={s_arr[i]!r}")
        if a_arr[0] <= 0:
            raise ValueError(f"schedule A: expected A(0) > 0 (the anneal starts in the driver's ground state), got {a_arr[0]!r}")
        if b_arr[-1] <= 0:
            raise ValueError(f"schedule B: expected B(1) > 0 (the anneal ends in the problem), got {b_arr[-1]!r}")
        self.s, self.a, self.b = s_arr, a_arr, b_arr
        self.name = str(name)

    def A(self, s: Any) -> Any:
        """Driver coefficient at ``s`` (scalar or array)."""
        return np.interp(s, self.s, self.a)

    def B(self, s: Any) -> Any:
        """Problem coefficient at ``s``."""
        return np.interp(s, self.s, self.b)

    def __repr__(self) -> str:
        return f"Schedule({self.name!r}, {len(self.s)} points)"

    # -- constructors ------------------------------------------------------
    @classmethod
    def linear(cls) -> "Schedule":
        """The paper's schedule ``A(s) = 1 - s``, ``B(s) = s``."""
        return cls([0.0, 1.0], [1.0, 0.0], [0.0, 1.0], name="paper (A=1-s, B=s)")

    @classmethod
    def dwave_like(cls, a0: float = 1.3, decay: float = 3.0, b0: float = 0.02, points: int = 1001) -> "Schedule":
        """An analytic schedule shaped like D-Wave's published per-QPU tables.

        ``A(s) = a0 (1 - s)^2 exp(-decay s)`` and ``B(s) = b0 + (1 - b0) s^2``, in units of
        ``B(1) = 1``. The shape follows the published Advantage tables qualitatively: the
        transverse field starts near ``1.3 B(1)`` and falls roughly exponentially to zero,
        the problem scale grows roughly quadratically from a few percent, and the two
        cross near ``s ~ 0.38``. It is a stand-in with the right qualitative features, not
        a fit; for a real QPU load its table with :meth:`from_file`. D-Wave writes
        ``H = -A/2 sum X + B/2 H_Ising``: use ``driver_scale=0.5`` to match that convention.
        """
        a0 = check_positive_real("a0", a0)
        decay = check_positive_real("decay", decay) if decay != 0 else 0.0
        if not (0 <= float(b0) < 1):
            raise ValueError(f"b0: expected a number in [0, 1), got {b0!r}")
        n = check_int("points", points, low=2)
        s = np.linspace(0.0, 1.0, n)
        return cls(s, a0 * (1 - s) ** 2 * np.exp(-decay * s), b0 + (1 - b0) * s**2, name="D-Wave-like (analytic)")

    @classmethod
    def from_callables(cls, A: Callable[[Any], Any], B: Callable[[Any], Any], points: int = 1001, name: str = "user") -> "Schedule":
        """Sample user functions ``A(s)``, ``B(s)`` on ``points`` equally spaced points of [0, 1]."""
        for label, f in (("A", A), ("B", B)):
            if not callable(f):
                raise TypeError(f"schedule {label}: expected a callable of s, got {describe(f)}")
        n = check_int("points", points, low=2)
        s = np.linspace(0.0, 1.0, n)
        vals = []
        for label, f in (("A", A), ("B", B)):
            try:
                v = np.asarray([float(f(float(x))) for x in s])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"schedule {label}: expected a real number for every s in [0, 1], got an error: {exc}") from exc
            vals.append(v)
        return cls(s, vals[0], vals[1], name=name)

    @classmethod
    def from_file(cls, path: str | Path, normalize: bool = True) -> "Schedule":
        """Load an official per-QPU schedule table saved as CSV.

        The header must name the columns ``s``, ``A(s)`` and ``B(s)`` (units in the header,
        e.g. ``A(s) (GHz)``, are ignored; matching is case-insensitive). With ``normalize``
        (default) ``A`` and ``B`` are divided by ``B(1)``, so the problem Hamiltonian's units
        are kept; otherwise the table's numbers are used as they are. Rows must cover
        ``s = 0`` to ``s = 1``.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"path: no schedule file at {str(p)!r}")
        with p.open(newline="") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
            rows = list(csv.reader(fh, dialect))
        if not rows:
            raise ValueError(f"path: {str(p)!r} is empty; expected a header s, A(s), B(s) and rows")
        header = [h.strip().lower() for h in rows[0]]

        def col(prefix: str) -> int:
            for i, h in enumerate(header):
                if h == prefix or h.startswith(prefix + "(") or h.startswith(prefix + " "):
                    return i
            raise ValueError(f"path: expected a column named {prefix!r} in the header, got {rows[0]!r}")

        ia, ib = col("a(s)") if any(h.startswith("a(s)") for h in header) else col("a"), (
            col("b(s)") if any(h.startswith("b(s)") for h in header) else col("b")
        )
        i_s = col("s")
        try:
            data = np.array([[float(r[i_s]), float(r[ia]), float(r[ib])] for r in rows[1:] if any(c.strip() for c in r)])
        except (ValueError, IndexError) as exc:
            raise ValueError(f"path: expected numbers in the s, A(s), B(s) columns of {str(p)!r}: {exc}") from exc
        if data.ndim != 2 or len(data) < 2:
            raise ValueError(f"path: expected at least two rows of numbers in {str(p)!r}")
        s, a, b = data.T
        if normalize:
            if b[-1] <= 0:
                raise ValueError(f"path: cannot normalise by B(1) = {b[-1]!r}")
            a, b = a / b[-1], b / b[-1]
        return cls(s, a, b, name=p.stem)


def resolve_schedule(schedule: Any) -> Schedule:
    """``None``/``"paper"``/``"linear"``, ``"dwave"``, a :class:`Schedule`, a pair of callables
    ``(A, B)`` or an ``(m, 3)`` table of rows ``s, A, B``."""
    if schedule is None or (isinstance(schedule, str) and schedule in ("paper", "linear")):
        return Schedule.linear()
    if isinstance(schedule, str):
        if schedule in ("dwave", "dwave_like", "d-wave"):
            return Schedule.dwave_like()
        raise ValueError(f"schedule: expected 'paper', 'dwave', a Schedule, (A, B) callables or an (m, 3) table, got {schedule!r}")
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, tuple) and len(schedule) == 2 and all(callable(f) for f in schedule):
        return Schedule.from_callables(*schedule)
    try:
        table = as_array("schedule", schedule, ndim=2)
    except (TypeError, ValueError):
        raise TypeError(
            f"schedule: expected 'paper', 'dwave', a Schedule, (A, B) callables or an (m, 3) table, got {describe(schedule)}"
        ) from None
    if table.shape[1] != 3:
        raise ValueError(f"schedule: expected an (m, 3) table of rows s, A, B, got shape {table.shape}")
    return Schedule(table[:, 0], table[:, 1], table[:, 2])


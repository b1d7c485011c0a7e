"""Markdown report: qfsel.quantum against QuTiP, the paper's method and scipy, side by side.

    .venv/bin/python benches/quantum_report.py [--d 16 18 20] [--skip-qutip-above 20]
        [--batch 200] [--spectrum-d 12 14] [--T 50] [--paper-steps 5]

Instances: explanation-shaped problems (``qfsel.cli.solve_demo.random_explanation_batch``:
relevance ``u / max u``, redundancy ``|cos|`` of correlated random maps), beta = 0.7, the
paper's text form, schedule ``A = 1 - s``, ``B = s``, driver ``-(1/d) sum X``.

1. **One anneal** (``T``, default 50) at each ``--d``: a converged reference (qfsel,
   Yoshida-6, ``tol = 1e-6`` on the state's 2-norm error, fidelity error <= 1e-12); qfsel's
   default (Suzuki-4, ``tol = 1e-3``, so the fidelity error is <= 1e-6); QuTiP ``sesolve``
   (sparse CSR ``H_D``, ``H_P``, its default adaptive ODE, ``atol = 1e-8``, ``rtol = 1e-6``);
   the paper's method (piecewise-constant ``expm_multiply`` with ``dt = 0.01``), timed on a
   few steps and extrapolated to ``T / dt`` steps. Fidelity errors ``1 - |<ref|psi>|^2``.
2. **Batch**: ``--batch`` problems with ``d`` drawn from 8..14, one call of
   ``anneal_batch`` on 1 and on 2 threads (results checked identical).
3. **Spectrum** on 101 s-points, two lowest levels: qfsel's warm-started Lanczos
   (``tol = 1e-9``) vs ``scipy.sparse.linalg.eigsh(k=2, which="SA", tol=1e-9)`` on the CSR
   ``H(s)`` at each point (matrix build included for scipy); matvecs per point for both
   (eigsh's counted on every tenth point through a LinearOperator, outside the timing).

OpenBLAS is limited to one thread (its spinning workers would steal a core).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sps  # noqa: E402
from scipy.sparse.linalg import eigsh, expm_multiply  # noqa: E402

import qfsel.quantum as qq  # noqa: E402
from qfsel.cli.solve_demo import random_explanation_batch  # noqa: E402


def instance(d: int, seed: int = 0):
    return random_explanation_batch(1, d, seed)[0]


def driver_csr(d: int) -> sps.csr_matrix:
    dim = 1 << d
    rows = np.tile(np.arange(dim, dtype=np.int32), d)
    cols = (rows ^ np.repeat((1 << np.arange(d)).astype(np.int32), dim)).astype(np.int32)
    return sps.csr_matrix((np.full(rows.size, -1.0 / d), (rows, cols)), shape=(dim, dim))


def fid_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - abs(np.vdot(a, b)) ** 2)


def one_anneal(ds: list[int], T: float, qutip_max: int, paper_steps: int) -> list[str]:
    out = [
        f"### One anneal, T = {T:g} (2 threads for qfsel)",
        "",
        "| d | qfsel default (s) | steps | 1-F | QuTiP sesolve (s) | 1-F | vs QuTiP | paper's method (s, extrapolated) | vs paper | reference (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in ds:
        p = instance(d, d)
        t = time.perf_counter()
        ref = qq.anneal(p, T, integrator="yoshida6", tol=1e-6, shots=0, num_threads=2)
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        ours = qq.anneal(p, T, shots=0, num_threads=2)
        t_ours = time.perf_counter() - t
        e_ours = fid_err(ref.state, ours.state)
        hd = driver_csr(d)
        e = qq.energies(p)
        t_q, e_q = float("nan"), float("nan")
        if d <= qutip_max:
            import qutip

            hq = [[qutip.Qobj(hd), lambda t_: 1 - t_ / T], [qutip.Qobj(sps.diags(e).tocsr()), lambda t_: t_ / T]]
            psi0 = qutip.Qobj(np.full((1 << d, 1), 2 ** (-d / 2), dtype=complex))
            t = time.perf_counter()
            res = qutip.sesolve(hq, psi0, [0.0, T], options={"atol": 1e-8, "rtol": 1e-6, "nsteps": 10**6})
            t_q = time.perf_counter() - t
            e_q = fid_err(ref.state, res.states[-1].full().ravel())
        # the paper's method: expm_multiply of the piecewise-constant H(t_k) over dt = 0.01
        dt = 0.01
        hp = sps.diags(e).tocsr()
        psi = np.full(1 << d, 2 ** (-d / 2), dtype=complex)
        t = time.perf_counter()
        for kstep in range(paper_steps):
            s = kstep * dt / T
            psi = expm_multiply(-1j * dt * ((1 - s) * hd + s * hp), psi)
        t_paper = (time.perf_counter() - t) / paper_steps * (T / dt)
        out.append(
            f"| {d} | {t_ours:.3g} | {ours.total_steps} ({ours.steps} kept) | {e_ours:.1e} | {t_q:.3g} | {e_q:.1e} | "
            f"{t_q / t_ours:.1f}x | {t_paper:.3g} ({paper_steps} steps timed) | {t_paper / t_ours:.0f}x | {t_ref:.3g} |"
        )
        print(out[-1], file=sys.stderr, flush=True)
    return out


def batch(n: int, T: float) -> list[str]:
    rng = np.random.default_rng(1)
    ds = rng.integers(8, 15, size=n)
    probs = [instance(int(d), 100 + i) for i, d in enumerate(ds)]
    times = {}
    results = {}
    for threads in (1, 2):
        t = time.perf_counter()
        results[threads] = qq.anneal_batch(probs, [T], seed=0, num_threads=threads)
        times[threads] = time.perf_counter() - t
    same = np.array_equal(results[1].success, results[2].success) and np.array_equal(results[1].shot_energy, results[2].shot_energy)
    print(f"batch: {times[1]:.3g} s on 1 thread, {times[2]:.3g} s on 2, {times[1] / times[2]:.2f}x, identical {same}", file=sys.stderr, flush=True)
    return [
        f"### {n} problems, d = 8..14, T = {T:g}, one anneal_batch call",
        "",
        "| 1 thread (s) | 2 threads (s) | speed-up | results identical |",
        "|---|---|---|---|",
        f"| {times[1]:.3g} | {times[2]:.3g} | {times[1] / times[2]:.2f}x | {same} |",
    ]


def eigsh_matvecs(h: sps.csr_matrix) -> int:
    """Operator applications eigsh makes on ``h`` (counted through a LinearOperator, untimed)."""
    from scipy.sparse.linalg import LinearOperator

    count = [0]

    def mv(x):
        count[0] += 1
        return h @ x

    eigsh(LinearOperator(h.shape, matvec=mv, dtype=float), k=2, which="SA", tol=1e-9)
    return count[0]


def spectrum(ds: list[int]) -> list[str]:
    out = [
        "### Spectrum, 101 s-points, two lowest levels (2 threads for qfsel; eigsh on one)",
        "",
        "| d | qfsel Lanczos (s) | matvecs per point | scipy eigsh (s) | eigsh matvecs per point (11 points) | speed-up | max abs diff of E0, E1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in ds:
        p = instance(d, 7 * d)
        t = time.perf_counter()
        sp = qq.spectrum(p, s_points=101, levels=2, tol=1e-9, num_threads=2)
        t_ours = time.perf_counter() - t
        hd = driver_csr(d)
        hp = sps.diags(qq.energies(p)).tocsr()
        vals = []
        t = time.perf_counter()
        for s in sp.s:
            h = (1 - s) * hd + s * hp
            vals.append(np.sort(eigsh(h, k=2, which="SA", tol=1e-9)[0]))
        t_sc = time.perf_counter() - t
        diff = float(np.abs(np.array(vals) - sp.energies).max())
        mv_sc = np.mean([eigsh_matvecs((1 - s) * hd + s * hp) for s in sp.s[::10]])
        out.append(
            f"| {d} | {t_ours:.3g} | {sp.matvecs / sp.s.size:.0f} | {t_sc:.3g} | {mv_sc:.0f} | {t_sc / t_ours:.1f}x | {diff:.1e} |"
        )
        print(out[-1], file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--d", type=int, nargs="*", default=[16, 18, 20])
    ap.add_argument("--skip-qutip-above", type=int, default=20)
    ap.add_argument("--paper-steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--spectrum-d", type=int, nargs="*", default=[12, 14])
    ap.add_argument("--T", type=float, default=50.0)
    args = ap.parse_args()
    lines = ["## qfsel.quantum benchmark", "", f"load average at start: {os.getloadavg()[0]:.1f}", ""]
    if args.batch:
        lines += batch(args.batch, args.T) + [""]
    if args.spectrum_d:
        lines += spectrum(args.spectrum_d) + [""]
    if args.d:
        lines += one_anneal(args.d, args.T, args.skip_qutip_above, args.paper_steps) + [""]
    lines.append(f"load average at end: {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

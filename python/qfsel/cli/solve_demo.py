"""``qfsel solve-demo``: a seeded batch of explanation-shaped QUBOs, solved and tabulated."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from ._common import (
    _SOLVE_DEMO_MAX_ENTRIES,
    UserError,
    _add_qfs_options,
    _check_seed,
)


def random_explanation_batch(batch: int, k_maps: int, seed: int, beta: float = 0.7, k: int | None = None):
    """A seeded batch of feature-selection problems shaped like explanations.

    Relevance: ``u / max(u)`` with ``u ~ U(0, 1]`` (so in (0, 1], max 1). Redundancy: ``|cos|``
    between ``k_maps`` random vectors (dimension 49, like 7x7 maps) that share a common
    component of random strength, so they are correlated; zero diagonal.
    """
    from ..qubo import ProblemBatch

    rng = np.random.default_rng(seed)
    relevance = 1.0 - rng.random((batch, k_maps))  # in (0, 1]
    relevance /= relevance.max(axis=1, keepdims=True)
    common = rng.standard_normal((batch, 1, 49))
    strength = rng.uniform(0.2, 0.8, size=(batch, k_maps, 1))
    vectors = strength * common + (1.0 - strength) * rng.standard_normal((batch, k_maps, 49))
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    redundancy = np.abs(vectors @ vectors.transpose(0, 2, 1))
    idx = np.arange(k_maps)
    redundancy[:, idx, idx] = 0.0
    redundancy = 0.5 * (redundancy + redundancy.transpose(0, 2, 1))
    return ProblemBatch(relevance, redundancy, beta=beta, k=k)


def _cmd_solve_demo(args: argparse.Namespace) -> int:
    from .. import available_solvers, solve

    if args.batch < 1:
        raise UserError(f"--batch: expected an integer >= 1, got {args.batch}")
    if args.k_maps < 1:
        raise UserError(f"--k-maps: expected an integer >= 1, got {args.k_maps}")
    if args.batch * args.k_maps**2 > _SOLVE_DEMO_MAX_ENTRIES:
        raise UserError(
            f"--batch x --k-maps^2: expected at most {_SOLVE_DEMO_MAX_ENTRIES} redundancy entries "
            f"(2**26), got {args.batch} x {args.k_maps}^2 = {args.batch * args.k_maps**2}"
        )
    if args.k is not None and not 1 <= args.k <= args.k_maps:
        raise UserError(f"--k: expected an integer in [1, {args.k_maps}], got {args.k}")
    if not 0.0 <= args.beta <= 1.0:
        raise UserError(f"--beta: expected a number in [0, 1], got {args.beta}")
    _check_seed(args.seed)
    if args.sampler not in available_solvers():
        raise UserError(f"--sampler: expected one of {available_solvers()}, got {args.sampler!r}")
    problems = random_explanation_batch(args.batch, args.k_maps, args.seed, beta=args.beta, k=args.k)
    t0 = time.perf_counter()
    solution = solve(problems, args.sampler, seed=args.seed)
    wall = time.perf_counter() - t0
    per_problem = solution.timing.get("total_s", wall) / len(solution)
    print(
        f"{args.batch} random problems, {args.k_maps} maps each, beta={args.beta}, k={args.k}, "
        f"sampler {solution.sampler}, seed {args.seed}"
    )
    header = f"{'problem':>7}  {'selected indices':<40} {'energy':>10}  {'feasible':>8}  {'time (ms)':>9}"
    print(header)
    print("-" * len(header))
    for i in range(len(solution)):
        chosen = " ".join(str(int(v)) for v in np.flatnonzero(solution.states[i]))
        print(
            f"{i:>7}  {chosen:<40} {float(solution.energies[i]):>10.4f}  "
            f"{str(bool(solution.feasible[i])):>8}  {1000 * per_problem:>9.3f}"
        )
    print(f"total: {1000 * wall:.1f} ms wall ({1000 * solution.timing.get('total_s', wall):.1f} ms in the solver); "
          "time per problem is the batch's solver time divided by the batch size")
    return 0


def register(sub: Any) -> None:
    """Adds this command's parser to the ``qfsel`` subparsers."""
    sd = sub.add_parser(
        "solve-demo",
        help="solve a seeded batch of random explanation-shaped QUBOs",
        description="Build --batch random feature-selection problems shaped like explanations "
        "(relevance in (0, 1], redundancy = |cos| of correlated random vectors), solve them with "
        "qfsel.solve and print the selected indices, energy, feasibility and time of each.",
    )
    sd.add_argument("--batch", type=int, default=8, help="number of problems (default: 8)")
    sd.add_argument("--k-maps", type=int, default=12, help="maps (QUBO variables) per problem (default: 12)")
    _add_qfs_options(sd, sampler_default="exact")
    sd.set_defaults(func=_cmd_solve_demo)

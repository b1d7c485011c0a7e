//! Simulated annealing: single-flip Metropolis on dense or sparse QUBOs, and a
//! cardinality-preserving annealer whose moves swap one selected and one
//! unselected variable.
//!
//! # Model
//!
//! A binary QUBO `E(x) = sum_i Q_ii x_i + sum_{i<j} W_ij x_i x_j + c` is held as
//! its diagonal and the *symmetric* off-diagonal couplings `W` (a full dense
//! `n x n` matrix, [`DenseModel`], or a symmetric CSR adjacency, [`CsrModel`]),
//! in `f32` or `f64` ([`Real`]). Each read keeps the local fields
//! `f_i = sum_j W_ij x_j`, so the energy change of flipping `i` is
//! `+(Q_ii + f_i)` when `x_i = 0` and `-(Q_ii + f_i)` when `x_i = 1`, an `O(1)`
//! test; an accepted flip adds or subtracts row `i` of `W` to the fields
//! (`O(n)` dense, `O(deg i)` sparse). Reported energies are always recomputed
//! in `f64` from the original coefficients, so `f32` fields never leak into the
//! results.
//!
//! # Moves and sweeps
//!
//! * Flip annealer ([`anneal_flip`]): a sweep visits `i = 0..n` in order and
//!   proposes to flip each once (as dwave-samplers does by default).
//! * Swap annealer ([`anneal_swap`]): a state has exactly `k` ones; a move picks
//!   a uniformly random selected `i` and unselected `j` and swaps them. With
//!   `d_v = Q_vv + f_v` its energy change is `d_j - d_i - W_ij` (the field at
//!   `j` still counts `i`). A sweep is `n` attempted swaps. The fields of all
//!   `n` variables are kept: an attempt is `O(1)`, an accepted swap `O(n)`
//!   (two rows of `W`, f32 SIMD). Keeping fields only for the `k` selected
//!   variables and gathering `f_j` from row `j` on the fly (`O(k)` per attempt
//!   and per accepted swap) was measured slower at K = 64..512 (14-25 vs
//!   10-20 ns/attempt; random gathers) and equal at K = 1280, so it was not
//!   kept. The optional final steepest 1-swap descent runs on fresh fields,
//!   each pass `O(k n / 8)` (contiguous masked minimum per selected row).
//! * Tabu polish ([`tabu_polish`], the default end of a swap read, see
//!   `ReadConfig::polish`): the descent goes on as a short swap tabu search
//!   (best non-tabu swap, aspiration, `core::tabu`'s tenures) until `stall`
//!   moves bring no new best; the best state seen is returned. The annealer
//!   alone commits to a basin early: on explanation-shaped instances 10 sweeps
//!   and a descent reach the best known energy in 49% of reads at K = 256 (k = 16),
//!   28% at K = 512, and 1000-2000 sweeps only 63-83% (the misses are local
//!   minima 2-5 swaps from the best). With the stall `max(50, 8k + n/4)` (the
//!   default until issue 13; now `max(100, 16k + n/2)` times a coupling-contrast
//!   factor, set in Python: docs/benchmarks.md section 7) the polish lifts that to 98% / 94%
//!   (hard family 98% / 90%) at 6-8x the read time. TTS99 at K = 512 drops
//!   from 1.1-1.5 to 0.93 ms (hard: 2.9-4.8 to 1.4 ms); at K = 256 it rises
//!   from 0.22-0.31 to 0.31 ms (hard: falls from 0.5-0.6 to 0.37 ms), the
//!   price of >= 90% per read (`benches/sa_report.py`, one thread). Measured and not kept:
//!   - replica exchange inside a read (4 or 8 replicas on the geometric
//!     ladder, exchange after every sweep, best state seen, then descent):
//!     49% -> 52-55% at K = 256, 28% -> 31-39% at K = 512 for 4-8x the time
//!     (TTS99 3-4x worse); with 50 sweeps 77% / 62% at 15x; with the polish
//!     no better than the polish alone (95% / 96% for 1.5x the time);
//!   - heat-bath choice of the entering `j` for a random leaving `i`
//!     (`O(n)` per move, `k` or `4k` moves per beta): 52-64% at K = 256,
//!     46-53% at K = 512 for 5-18x the time (TTS99 5-12x worse);
//!   - more sweeps with the polish (3-50 sweeps give the same success), a
//!     fixed iteration budget instead of a stall limit (same success per
//!     time), the polish without aspiration and tenure jitter (95% -> 80% at
//!     K = 256), longer tenures at k = 16 (95% -> 82%).
//!
//! Acceptance is Metropolis: `delta <= 0` always, otherwise with probability
//! `exp(-beta delta)` (skipped, i.e. rejected, when `beta delta` exceeds the
//! point where that probability is below the uniform variate's resolution).
//! One sweep is run at each beta of the schedule.
//!
//! # Lanes
//!
//! The flip annealer draws one uniform per attempt, whatever the decision, so
//! [`anneal_flip_lanes`] can run [`LANES`] reads of one dense `f32` model side
//! by side, one per SIMD lane, with every lane making exactly the draws,
//! decisions and field updates [`anneal_flip`] makes for its read: lane masks
//! replace the per-attempt branches (whose mispredictions dominate a scalar
//! attempt on short rows), and the rows are updated for all lanes at once when
//! any lane accepts. Which kernel runs a read never changes its result
//! (tested); [`run_flip_reads`] uses the lanes for `n <= LANES_MAX_N` when a
//! group has at least [`LANES_MIN_READS`] reads.
//!
//! # Default beta range
//!
//! [`default_beta_range_flip`] and [`default_beta_range_swap`] derive the range
//! from the instance: starting from a deterministic state (all zeros, or the
//! `k` variables with the lowest `Q_ii`), steepest descent reaches a local
//! minimum; there all single moves' energy changes `delta` are computed.
//! * hot:  `beta0 = ln 2 / q` (flips) or `ln 8 / q` (swaps, [`SWAP_HOT_ODDS`]:
//!   a colder start) with `q` the 10% quantile of the nonzero `|delta|`
//!   ([`HOT_QUANTILE`]): the easiest tenth of the excitations out of a
//!   low-energy state are accepted with probability >= 1/2 (1/8). (The classic
//!   rule, the *largest* change accepted with probability 1/2, starts so hot
//!   that most sweeps are wasted: measured 10x lower success per unit time.)
//! * cold: `beta1 = ln 100 / min |delta|` over the nonzero changes, with
//!   `min |delta|` floored at `1e-3 max |delta|` (the easiest excitation is
//!   accepted with probability 1/100 on the last sweep).
//!
//! # Reproducibility
//!
//! Read `r` of problem `p` draws every random number from
//! `rng::stream(seed, p, r)`, so results do not depend on the thread count.
//!
//! # Layout
//!
//! `real` (the float type), `model` (dense and CSR couplings, exact
//! energies), `flip` (single-flip kernel and descent), `lanes` (the flip
//! kernel on [`LANES`] reads at once), `swap` (swap kernel, descent, tabu
//! polish), `schedule` (precision rule, default beta ranges, schedules),
//! `reads` (initial states and the per-problem read loops); the Metropolis
//! tests shared by the kernels are here.

mod flip;
mod lanes;
mod model;
mod reads;
mod real;
mod schedule;
mod swap;
#[cfg(test)]
mod tests;

pub use flip::{anneal_flip, anneal_flip_fast, descend_flip};
pub use lanes::{anneal_flip_lanes, LANES, LANES_MAX_N, LANES_MIN_READS};
#[cfg(target_arch = "x86_64")]
pub(crate) use lanes::{exp_neg8, load_lane_words, store_lane_words, uniforms8, xoshiro_step4};
pub use model::{fields_of, Couplings, CsrModel, DenseModel};
pub use reads::{random_state, run_dense_reads, run_flip_reads, run_swap_reads, ReadConfig};
pub use real::Real;
pub use schedule::{
    default_beta_range_flip, default_beta_range_swap, default_beta_range_swap_q, geometric, linear, lowest_diagonal_state,
    prefers_single, HOT_QUANTILE, SINGLE_PRECISION_MAX_RANGE, SWAP_HOT_ODDS,
};
pub use swap::{anneal_swap, anneal_swap_fast, tabu_polish, tabu_polish_fast, POLISH_CAP};

use rand::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

/// `u < exp(-bd)` for `0 < bd <= CUTOFF`, decided by the bounds
/// `1 - x <= exp(-x) <= 1 / (1 + x + x^2 / 2)`, each widened by `margin`,
/// where they suffice (most draws) and by the exponential only in between.
#[inline(always)]
fn accept_by_bounds<F: Real>(bd: F, u: F, margin: f64) -> bool {
    let one = F::from_f64(1.0);
    if u * (one + bd * (one + bd * F::from_f64(0.5))) >= F::from_f64(1.0 + margin) {
        false
    } else if u <= (one - bd) * F::from_f64(1.0 - margin) {
        true
    } else {
        u < bd.exp_neg()
    }
}

/// Metropolis test of the swap annealer: `delta <= 0` accepted and
/// `beta delta > CUTOFF` rejected without a random draw; otherwise one uniform
/// `u`, decided by [`accept_by_bounds`] without margin.
#[inline(always)]
fn metropolis<F: Real>(beta: F, delta: F, rng: &mut Xoshiro256PlusPlus) -> bool {
    let bd = beta * delta;
    if !(bd > F::ZERO) {
        true
    } else if bd > F::CUTOFF {
        false
    } else {
        accept_by_bounds(bd, F::unit(rng.next_u64()), 0.0)
    }
}

/// Margin of the bounds in [`metropolis_flip`]: far wider than the rounding
/// of the bounds and the error of [`Real::exp_neg`] (below 2e-5 relative).
const BOUND_MARGIN: f64 = 1e-4;

/// The flip annealer's Metropolis test of `bd = beta delta` with the uniform
/// `u` drawn for this attempt. The decision is exactly
/// `bd <= 0 || (bd <= CUTOFF && u < exp_neg(bd))`, as [`anneal_flip_lanes`]
/// computes it: [`accept_by_bounds`] with [`BOUND_MARGIN`] to spare never
/// disagrees with the exponential.
#[inline(always)]
fn metropolis_flip<F: Real>(bd: F, u: F) -> bool {
    if !(bd > F::ZERO) {
        true
    } else if bd > F::CUTOFF {
        false
    } else {
        accept_by_bounds(bd, u, BOUND_MARGIN)
    }
}

/// Uniform index below `m` (`m < 2^32`) from 32 random bits (multiply-shift).
#[inline(always)]
fn below(bits32: u64, m: usize) -> usize {
    (((bits32 & 0xFFFF_FFFF) * m as u64) >> 32) as usize
}

pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

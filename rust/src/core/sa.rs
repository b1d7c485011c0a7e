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
//!   minima 2-5 swaps from the best). With the default stall
//!   (`max(50, 8k + n/4)`, set in Python) the polish lifts that to 98% / 94%
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

use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

use rand::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::error::{CoreError, CoreResult};
use super::rng::{open_stream, stream, xoshiro_step, OpenXoshiro};

/// The float type of couplings and local fields (`f32` or `f64`).
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + 'static
{
    const ZERO: Self;
    /// `beta * delta` above which the acceptance probability is below the
    /// resolution of [`Real::unit`].
    const CUTOFF: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    /// `exp(-self)` for `self` in [0, CUTOFF] (the f32 version is a fast
    /// polynomial with relative error below 2e-5).
    fn exp_neg(self) -> Self;
    /// A uniform variate in [0, 1) from 64 random bits.
    fn unit(bits: u64) -> Self;
    /// Run `f` on this thread's spare coupling buffer (see [`DenseModel`]).
    fn with_spare<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;
    /// `m` itself when `Self` is `f32` (see [`Couplings::as_dense_f32`]).
    fn dense_f32<'m, 'a>(m: &'m DenseModel<'a, Self>) -> Option<&'m DenseModel<'a, f32>>;
    /// `betas` themselves when `Self` is `f32`.
    fn dense_f32_betas(betas: &[Self]) -> Option<&[f32]>;
}

thread_local! {
    // One spare symmetric-matrix buffer per thread and float type: a batch
    // builds one model per problem, and reusing the memory saves the page
    // faults of a fresh n x n allocation each time (measured ~0.8 ms per
    // K = 1280 problem).
    static SPARE_F32: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    static SPARE_F64: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest spare buffer kept per thread (elements).
const SPARE_MAX: usize = 1 << 24;

impl Real for f32 {
    const ZERO: Self = 0.0;
    const CUTOFF: Self = 17.0;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    #[inline(always)]
    fn exp_neg(self) -> Self {
        // 2^t with t = -x log2(e) in [-24.6, 0]: split t = i + r, r in (0, 1].
        let t = self * -std::f32::consts::LOG2_E;
        let i = t as i32 - 1;
        let r = t - i as f32;
        // Estrin's scheme (shorter dependency chain than Horner).
        let r2 = r * r;
        let p01 = 1.0 + r * std::f32::consts::LN_2;
        let p23 = 0.240_226_5 + r * 0.055_504_11;
        let p45 = 0.009_618_129 + r * 0.001_333_355;
        let p456 = p45 + r2 * 0.000_154_035_3;
        let p = p01 + r2 * (p23 + r2 * p456);
        f32::from_bits(((i + 127).max(1) as u32) << 23) * p
    }
    #[inline(always)]
    fn unit(bits: u64) -> Self {
        (bits >> 40) as f32 * (1.0 / 16_777_216.0)
    }
    fn with_spare<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
        SPARE_F32.with(|c| f(&mut c.borrow_mut()))
    }
    fn dense_f32<'m, 'a>(m: &'m DenseModel<'a, Self>) -> Option<&'m DenseModel<'a, f32>> {
        Some(m)
    }
    fn dense_f32_betas(betas: &[Self]) -> Option<&[f32]> {
        Some(betas)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const CUTOFF: Self = 37.0;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn exp_neg(self) -> Self {
        f64::exp(-self)
    }
    #[inline(always)]
    fn unit(bits: u64) -> Self {
        (bits >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
    fn with_spare<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
        SPARE_F64.with(|c| f(&mut c.borrow_mut()))
    }
    fn dense_f32<'m, 'a>(_: &'m DenseModel<'a, Self>) -> Option<&'m DenseModel<'a, f32>> {
        None
    }
    fn dense_f32_betas(_: &[Self]) -> Option<&[f32]> {
        None
    }
}

/// Symmetric couplings of a QUBO as the annealers need them.
pub trait Couplings<F: Real>: Sync {
    fn n(&self) -> usize;
    /// `Q_ii`.
    fn diag(&self) -> &[F];
    /// `f += W_i` (row `i` of the symmetric couplings).
    fn add_row(&self, i: usize, f: &mut [F]);
    /// `f -= W_i`.
    fn sub_row(&self, i: usize, f: &mut [F]);
    /// `f += s W_i` with `s = +1 or -1` (one branch-free pass).
    fn axpy_row(&self, i: usize, s: F, f: &mut [F]);
    /// Exact `f64` energy of a 0/1 state, offset included.
    fn energy(&self, x: &[u8]) -> f64;
    /// Energy changes smaller than this count as zero (rounding of the fields).
    fn tolerance(&self) -> F;
    /// This model as a dense `f32` one, the kind [`anneal_flip_lanes`] runs.
    fn as_dense_f32(&self) -> Option<&DenseModel<'_, f32>> {
        None
    }
}

/// A dense QUBO: diagonal and full symmetric couplings in `F`, plus the
/// original upper-triangular `f64` matrix for exact energies.
pub struct DenseModel<'a, F: Real> {
    n: usize,
    diag: Vec<F>,
    w: Vec<F>,
    q: &'a [f64],
    offset: f64,
    tol: F,
}

impl<'a, F: Real> DenseModel<'a, F> {
    /// From a row-major `n x n` QUBO (upper-triangular by convention; a
    /// nonzero lower triangle is added to the upper one).
    pub fn new(q: &'a [f64], n: usize, offset: f64) -> CoreResult<Self> {
        if q.len() != n * n {
            return Err(CoreError::invalid("Q", format!("expected {n}x{n} = {} entries, got {}", n * n, q.len())));
        }
        let mut diag = Vec::with_capacity(n);
        // Reuse this thread's spare buffer: every entry is written below, so
        // stale contents need no clearing.
        let mut w = F::with_spare(std::mem::take);
        w.truncate(n * n);
        w.resize(n * n, F::ZERO);
        // Pass 1, contiguous: w = Q in F, and the largest |Q_ab|.
        for (wv, &qv) in w.iter_mut().zip(q) {
            *wv = F::from_f64(qv);
        }
        // Largest |Q_ab| and a finiteness probe (sum of 0 v: NaN as soon as
        // one entry is NaN or infinite), in 8 independent lanes.
        let mut lanes = [0.0f64; 8];
        let mut probe = [0.0f64; 8];
        let mut chunks = q.chunks_exact(8);
        for c in &mut chunks {
            for l in 0..8 {
                let v = c[l].abs();
                probe[l] += c[l] * 0.0;
                if v > lanes[l] {
                    lanes[l] = v;
                }
            }
        }
        let rest = chunks.remainder();
        if !(probe.iter().sum::<f64>() + rest.iter().map(|v| v * 0.0).sum::<f64>()).is_finite() {
            return Err(CoreError::invalid("q", "expected finite coefficients, got a NaN or infinite value"));
        }
        let qmax = rest.iter().chain(lanes.iter()).fold(0.0f64, |m, v| if v.abs() > m { v.abs() } else { m });
        for a in 0..n {
            diag.push(F::from_f64(q[a * n + a]));
            w[a * n + a] = F::ZERO;
        }
        // Pass 2, in 32 x 32 tiles of the upper triangle: W_ab = W_ba =
        // Q_ab + Q_ba (exact for the usual upper-triangular Q, whose lower
        // half is zero).
        const T: usize = 32;
        for a0 in (0..n).step_by(T) {
            for b0 in (a0..n).step_by(T) {
                for a in a0..(a0 + T).min(n) {
                    for b in b0.max(a + 1)..(b0 + T).min(n) {
                        let v = w[a * n + b] + w[b * n + a];
                        w[a * n + b] = v;
                        w[b * n + a] = v;
                    }
                }
            }
        }
        // |W_ab| <= 2 max |Q|: the scale of the rounding tolerance.
        let scale = 2.0 * qmax;
        let tol = F::from_f64(tolerance_for::<F>(scale, n));
        Ok(DenseModel { n, diag, w, q, offset, tol })
    }

    /// Row `i` of the symmetric couplings.
    #[inline(always)]
    pub fn row(&self, i: usize) -> &[F] {
        &self.w[i * self.n..(i + 1) * self.n]
    }

    /// Exact energy of the state whose ones are `ones`.
    pub fn energy_of_ones(&self, ones: &[u32]) -> f64 {
        let n = self.n;
        let mut e = self.offset;
        for (t, &a) in ones.iter().enumerate() {
            let a = a as usize;
            e += self.q[a * n + a];
            for &b in &ones[t + 1..] {
                let b = b as usize;
                e += self.q[a * n + b] + self.q[b * n + a];
            }
        }
        e
    }
}

impl<F: Real> Drop for DenseModel<'_, F> {
    fn drop(&mut self) {
        let w = std::mem::take(&mut self.w);
        if w.capacity() <= SPARE_MAX {
            F::with_spare(|spare| {
                if w.capacity() > spare.capacity() {
                    *spare = w;
                }
            });
        }
    }
}

fn tolerance_for<F: Real>(scale: f64, n: usize) -> f64 {
    // Rounding of a field after many updates: a few ulps of the largest
    // coefficient times the row length.
    let eps = if std::mem::size_of::<F>() == 4 { f32::EPSILON as f64 } else { f64::EPSILON };
    (scale * eps * (4.0 + (n as f64).sqrt())).max(f64::MIN_POSITIVE)
}

impl<F: Real> Couplings<F> for DenseModel<'_, F> {
    #[inline(always)]
    fn n(&self) -> usize {
        self.n
    }
    #[inline(always)]
    fn diag(&self) -> &[F] {
        &self.diag
    }
    #[inline(always)]
    fn add_row(&self, i: usize, f: &mut [F]) {
        for (fv, &wv) in f.iter_mut().zip(self.row(i)) {
            *fv += wv;
        }
    }
    #[inline(always)]
    fn sub_row(&self, i: usize, f: &mut [F]) {
        for (fv, &wv) in f.iter_mut().zip(self.row(i)) {
            *fv -= wv;
        }
    }
    #[inline(always)]
    fn axpy_row(&self, i: usize, s: F, f: &mut [F]) {
        for (fv, &wv) in f.iter_mut().zip(self.row(i)) {
            *fv += s * wv;
        }
    }
    fn energy(&self, x: &[u8]) -> f64 {
        let ones: Vec<u32> = (0..self.n as u32).filter(|&i| x[i as usize] != 0).collect();
        self.energy_of_ones(&ones)
    }
    fn tolerance(&self) -> F {
        self.tol
    }
    fn as_dense_f32(&self) -> Option<&DenseModel<'_, f32>> {
        F::dense_f32(self)
    }
}

/// A sparse QUBO: diagonal plus a symmetric CSR adjacency in `F`, and the
/// original `f64` linear terms and edge list for exact energies.
pub struct CsrModel<F: Real> {
    n: usize,
    diag: Vec<F>,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<F>,
    linear: Vec<f64>,
    edges: Vec<(u32, u32, f64)>,
    offset: f64,
    tol: F,
}

impl<F: Real> CsrModel<F> {
    /// From linear terms and an edge list `(rows, cols, values)` (as dimod's
    /// `to_numpy_vectors` gives it; duplicate edges add up).
    pub fn new(linear: &[f64], rows: &[i64], cols: &[i64], vals: &[f64], offset: f64) -> CoreResult<Self> {
        let n = linear.len();
        if rows.len() != cols.len() || rows.len() != vals.len() {
            return Err(CoreError::invalid("quadratic", "rows, cols and values must have the same length"));
        }
        let mut deg = vec![0usize; n + 1];
        let mut edges = Vec::with_capacity(rows.len());
        let mut scale = linear.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for ((&r, &c), &v) in rows.iter().zip(cols).zip(vals) {
            if r < 0 || c < 0 || r as usize >= n || c as usize >= n {
                return Err(CoreError::invalid("quadratic", format!("edge ({r}, {c}) outside 0..{n}")));
            }
            if r == c {
                return Err(CoreError::invalid("quadratic", format!("self-loop ({r}, {c})")));
            }
            deg[r as usize + 1] += 1;
            deg[c as usize + 1] += 1;
            edges.push((r as u32, c as u32, v));
            scale = scale.max(v.abs());
        }
        for i in 0..n {
            deg[i + 1] += deg[i];
        }
        let indptr = deg.clone();
        let mut fill = deg;
        let mut indices = vec![0u32; indptr[n]];
        let mut data = vec![F::ZERO; indptr[n]];
        for &(r, c, v) in &edges {
            for (a, b) in [(r, c), (c, r)] {
                let p = fill[a as usize];
                indices[p] = b;
                data[p] = F::from_f64(v);
                fill[a as usize] += 1;
            }
        }
        let max_deg = (0..n).map(|i| indptr[i + 1] - indptr[i]).max().unwrap_or(0);
        Ok(CsrModel {
            n,
            diag: linear.iter().map(|&v| F::from_f64(v)).collect(),
            indptr,
            indices,
            data,
            linear: linear.to_vec(),
            edges,
            offset,
            tol: F::from_f64(tolerance_for::<F>(scale, max_deg + 1)),
        })
    }
}

impl<F: Real> Couplings<F> for CsrModel<F> {
    fn n(&self) -> usize {
        self.n
    }
    fn diag(&self) -> &[F] {
        &self.diag
    }
    #[inline(always)]
    fn add_row(&self, i: usize, f: &mut [F]) {
        let (s, e) = (self.indptr[i], self.indptr[i + 1]);
        for (&j, &v) in self.indices[s..e].iter().zip(&self.data[s..e]) {
            f[j as usize] += v;
        }
    }
    #[inline(always)]
    fn sub_row(&self, i: usize, f: &mut [F]) {
        let (s, e) = (self.indptr[i], self.indptr[i + 1]);
        for (&j, &v) in self.indices[s..e].iter().zip(&self.data[s..e]) {
            f[j as usize] -= v;
        }
    }
    #[inline(always)]
    fn axpy_row(&self, i: usize, s: F, f: &mut [F]) {
        let (a, e) = (self.indptr[i], self.indptr[i + 1]);
        for (&j, &v) in self.indices[a..e].iter().zip(&self.data[a..e]) {
            f[j as usize] += s * v;
        }
    }
    fn energy(&self, x: &[u8]) -> f64 {
        let mut e = self.offset;
        for (i, &v) in self.linear.iter().enumerate() {
            if x[i] != 0 {
                e += v;
            }
        }
        for &(r, c, v) in &self.edges {
            if x[r as usize] != 0 && x[c as usize] != 0 {
                e += v;
            }
        }
        e
    }
    fn tolerance(&self) -> F {
        self.tol
    }
}

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

/// Recompute the local fields of `x` from scratch.
#[inline(always)]
pub fn fields_of<F: Real, C: Couplings<F>>(c: &C, x: &[u8], f: &mut [F]) {
    f.iter_mut().for_each(|v| *v = F::ZERO);
    for (i, &xi) in x.iter().enumerate() {
        if xi != 0 {
            c.add_row(i, f);
        }
    }
}

/// [`anneal_flip`] compiled for AVX2+FMA (wider row updates).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn anneal_flip_avx2<F: Real, C: Couplings<F>, R: RngCore + Clone>(
    c: &C,
    betas: &[F],
    rng: &mut R,
    x: &mut [u8],
    f: &mut [F],
    greedy: bool,
) {
    anneal_flip(c, betas, rng, x, f, greedy)
}

/// [`anneal_swap`] compiled for AVX2+FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn anneal_swap_avx2<F: Real>(
    m: &DenseModel<'_, F>,
    betas: &[F],
    rng: &mut Xoshiro256PlusPlus,
    x: &mut [u8],
    f: &mut [F],
    greedy: bool,
) -> Vec<u32> {
    anneal_swap(m, betas, rng, x, f, greedy)
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`anneal_flip`] in the widest instruction set the CPU offers (same results).
pub fn anneal_flip_fast<F: Real, C: Couplings<F>, R: RngCore + Clone>(
    c: &C,
    betas: &[F],
    rng: &mut R,
    x: &mut [u8],
    f: &mut [F],
    greedy: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the features were detected at run time.
        return unsafe { anneal_flip_avx2(c, betas, rng, x, f, greedy) };
    }
    anneal_flip(c, betas, rng, x, f, greedy)
}

/// [`anneal_swap`] in the widest instruction set the CPU offers (same results).
pub fn anneal_swap_fast<F: Real>(
    m: &DenseModel<'_, F>,
    betas: &[F],
    rng: &mut Xoshiro256PlusPlus,
    x: &mut [u8],
    f: &mut [F],
    greedy: bool,
) -> Vec<u32> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the features were detected at run time.
        return unsafe { anneal_swap_avx2(m, betas, rng, x, f, greedy) };
    }
    anneal_swap(m, betas, rng, x, f, greedy)
}

/// Single-flip annealing of `x` (in place) with one sweep per beta, then
/// optionally steepest single-flip descent to a local minimum.
#[inline(always)]
pub fn anneal_flip<F: Real, C: Couplings<F>, R: RngCore + Clone>(
    c: &C,
    betas: &[F],
    rng: &mut R,
    x: &mut [u8],
    f: &mut [F],
    greedy: bool,
) {
    let n = c.n();
    let diag = c.diag();
    assert!(x.len() == n && f.len() == n && diag.len() == n);
    fields_of(c, x, f);
    // g_i = Q_ii + f_i: one load per proposal instead of two.
    let g = f;
    for (gv, &d) in g.iter_mut().zip(diag) {
        *gv += d;
    }
    let one = F::from_f64(1.0);
    // A local copy keeps the generator's state in registers (through the
    // `&mut` it is stored back to memory after every draw).
    let mut r = rng.clone();
    for &beta in betas {
        for i in 0..n {
            // s = +1 to switch on, -1 to switch off: delta = s g_i, and an
            // accepted flip adds s W_i to the fields (no branch on x_i).
            let xi = x[i];
            let sgn = if xi != 0 { -one } else { one };
            let u = F::unit(r.next_u64());
            if metropolis_flip(beta * (sgn * g[i]), u) {
                x[i] = xi ^ 1;
                c.axpy_row(i, sgn, g);
            }
        }
    }
    *rng = r;
    let f = g;
    if greedy {
        // Fresh fields: no rounding carried over from the anneal.
        fields_of(c, x, f);
        descend_flip(c, x, f);
    } else {
        for (fv, &d) in f.iter_mut().zip(diag) {
            *fv -= d;
        }
    }
}

/// Reads [`anneal_flip_lanes`] anneals side by side.
pub const LANES: usize = 8;

/// Largest `n` the lane kernel runs: it updates every lane's fields when one
/// lane accepts (`n` multiply-adds of [`LANES`] floats), which beats the scalar
/// kernel's mispredicted branches only while rows are short. Measured on
/// explanation-shaped penalty QUBOs, 100 sweeps, 8 reads, one thread: 4.0 vs
/// 7.1 ns per attempt at n = 64, 6.5 vs 8.6 at n = 192, 8.8 vs 7.8 at n = 256.
pub const LANES_MAX_N: usize = 192;

/// Fewest reads in a group of [`LANES`] worth the lane kernel (the other
/// lanes run idle, and are discarded): a group costs about what 6 scalar
/// reads cost at n = 192, 4.5 at n = 64.
pub const LANES_MIN_READS: usize = 6;

/// Lane-major fields `g_j = Q_jj + f_j` of the states `xs` (lane `l` at
/// `xs[l n..]`), computed as the scalar kernel computes them, and the move
/// signs: +1 switches a 0 on, -1 a 1 off.
#[inline(always)]
fn lane_fields(m: &DenseModel<'_, f32>, xs: &[u8]) -> (Vec<[f32; LANES]>, Vec<[f32; LANES]>) {
    let n = m.n;
    let mut g = vec![[0.0f32; LANES]; n];
    let mut sg = vec![[0.0f32; LANES]; n];
    let mut f = vec![0.0f32; n];
    for l in 0..LANES {
        let x = &xs[l * n..(l + 1) * n];
        fields_of(m, x, &mut f);
        for j in 0..n {
            g[j][l] = f[j] + m.diag[j];
            sg[j][l] = if x[j] != 0 { -1.0 } else { 1.0 };
        }
    }
    (g, sg)
}

/// The states encoded by the move signs of [`lane_fields`] (a 1 moves by -1).
#[inline(always)]
fn lane_states(sg: &[[f32; LANES]], xs: &mut [u8]) {
    let n = sg.len();
    for l in 0..LANES {
        for j in 0..n {
            xs[l * n + j] = (sg[j][l] < 0.0) as u8;
        }
    }
}

/// [`LANES`] reads of [`anneal_flip`] (without its final descent) on one dense
/// `f32` model at once: lane `l` anneals `xs[l n..(l + 1) n]` (in place) with
/// generator `rngs[l]`, making exactly the draws, decisions and field updates
/// the scalar kernel makes, so its result is bit for bit the scalar one.
#[inline(always)]
pub fn anneal_flip_lanes(m: &DenseModel<'_, f32>, betas: &[f32], rngs: &mut [OpenXoshiro; LANES], xs: &mut [u8]) {
    let n = m.n;
    assert!(xs.len() == LANES * n);
    let (mut g, mut sg) = lane_fields(m, xs);
    let (mut s0, mut s1, mut s2, mut s3) = ([0u64; LANES], [0u64; LANES], [0u64; LANES], [0u64; LANES]);
    for l in 0..LANES {
        [s0[l], s1[l], s2[l], s3[l]] = rngs[l].s;
    }
    for &beta in betas {
        for i in 0..n {
            let (gi, si) = (g[i], sg[i]);
            let mut take = [false; LANES];
            let mut any = 0u32;
            for l in 0..LANES {
                let u = f32::unit(xoshiro_step(&mut s0[l], &mut s1[l], &mut s2[l], &mut s3[l]));
                let bd = beta * (si[l] * gi[l]);
                // The exponential of the clamped argument, used only where
                // the argument was in range (then it is the scalar one).
                let c = if bd > 0.0 { if bd < f32::CUTOFF { bd } else { f32::CUTOFF } } else { 0.0 };
                let e = c.exp_neg();
                let accept = !(bd > 0.0) || (bd <= f32::CUTOFF && u < e);
                take[l] = accept;
                any |= accept as u32;
            }
            if any != 0 {
                for l in 0..LANES {
                    sg[i][l] = if take[l] { -si[l] } else { si[l] };
                }
                // Rejecting lanes add +0 (not 0 * w, which is NaN for an infinite w).
                for (gj, &w) in g.iter_mut().zip(m.row(i)) {
                    for l in 0..LANES {
                        gj[l] += if take[l] { si[l] * w } else { 0.0 };
                    }
                }
            }
        }
    }
    for l in 0..LANES {
        rngs[l].s = [s0[l], s1[l], s2[l], s3[l]];
    }
    lane_states(&sg, xs);
}

/// [`anneal_flip_lanes`] in AVX2 intrinsics, one register per lane vector
/// (the compiler interleaved the portable version across rows instead). The
/// same operations in the same order per lane, no fused multiply-adds: the
/// results are the portable kernel's, bit for bit (tested).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn anneal_flip_lanes_avx2(m: &DenseModel<'_, f32>, betas: &[f32], rngs: &mut [OpenXoshiro; LANES], xs: &mut [u8]) {
    use std::arch::x86_64::*;
    let n = m.n;
    assert!(xs.len() == LANES * n && m.w.len() == n * n);
    let (mut g, mut sg) = lane_fields(m, xs);
    // Generator words: lanes 0-3 in `lo`, 4-7 in `hi`.
    let word = |w: usize, from: usize| {
        _mm256_set_epi64x(rngs[from + 3].s[w] as i64, rngs[from + 2].s[w] as i64, rngs[from + 1].s[w] as i64, rngs[from].s[w] as i64)
    };
    let mut lo = [word(0, 0), word(1, 0), word(2, 0), word(3, 0)];
    let mut hi = [word(0, 4), word(1, 4), word(2, 4), word(3, 4)];
    #[inline(always)]
    unsafe fn rotl(x: __m256i, k: i32) -> __m256i {
        // k is 23 or 45 (constant after inlining).
        _mm256_or_si256(_mm256_sll_epi64(x, _mm_cvtsi32_si128(k)), _mm256_srl_epi64(x, _mm_cvtsi32_si128(64 - k)))
    }
    #[inline(always)]
    unsafe fn step(s: &mut [__m256i; 4]) -> __m256i {
        let out = _mm256_add_epi64(rotl(_mm256_add_epi64(s[0], s[3]), 23), s[0]);
        let t = _mm256_slli_epi64::<17>(s[1]);
        s[2] = _mm256_xor_si256(s[2], s[0]);
        s[3] = _mm256_xor_si256(s[3], s[1]);
        s[1] = _mm256_xor_si256(s[1], s[2]);
        s[0] = _mm256_xor_si256(s[0], s[3]);
        s[2] = _mm256_xor_si256(s[2], t);
        s[3] = rotl(s[3], 45);
        out
    }
    let zero = _mm256_setzero_ps();
    let cut = _mm256_set1_ps(f32::CUTOFF);
    let sign = _mm256_set1_ps(-0.0);
    let inv24 = _mm256_set1_ps(1.0 / 16_777_216.0);
    let pack = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    let gp = g.as_mut_ptr() as *mut f32;
    let sp = sg.as_mut_ptr() as *mut f32;
    for &beta in betas {
        let vb = _mm256_set1_ps(beta);
        for i in 0..n {
            // u = (bits >> 40) 2^-24 per lane, lanes 0..7 in order.
            let a = _mm256_srli_epi64::<40>(step(&mut lo));
            let b = _mm256_slli_epi64::<32>(_mm256_srli_epi64::<40>(step(&mut hi)));
            let bits = _mm256_permutevar8x32_epi32(_mm256_or_si256(a, b), pack);
            let u = _mm256_mul_ps(_mm256_cvtepi32_ps(bits), inv24);
            let gi = _mm256_loadu_ps(gp.add(LANES * i));
            let si = _mm256_loadu_ps(sp.add(LANES * i));
            let bd = _mm256_mul_ps(vb, _mm256_mul_ps(si, gi));
            // exp_neg of the clamped argument, f32::exp_neg's operations.
            let c = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(bd, zero), _mm256_min_ps(bd, cut));
            let t = _mm256_mul_ps(c, _mm256_set1_ps(-std::f32::consts::LOG2_E));
            let ii = _mm256_sub_epi32(_mm256_cvttps_epi32(t), _mm256_set1_epi32(1));
            let r = _mm256_sub_ps(t, _mm256_cvtepi32_ps(ii));
            let r2 = _mm256_mul_ps(r, r);
            let p01 = _mm256_add_ps(_mm256_set1_ps(1.0), _mm256_mul_ps(r, _mm256_set1_ps(std::f32::consts::LN_2)));
            let p23 = _mm256_add_ps(_mm256_set1_ps(0.240_226_5), _mm256_mul_ps(r, _mm256_set1_ps(0.055_504_11)));
            let p45 = _mm256_add_ps(_mm256_set1_ps(0.009_618_129), _mm256_mul_ps(r, _mm256_set1_ps(0.001_333_355)));
            let p456 = _mm256_add_ps(p45, _mm256_mul_ps(r2, _mm256_set1_ps(0.000_154_035_3)));
            let p = _mm256_add_ps(p01, _mm256_mul_ps(r2, _mm256_add_ps(p23, _mm256_mul_ps(r2, p456))));
            let e2 = _mm256_slli_epi32::<23>(_mm256_max_epi32(_mm256_add_epi32(ii, _mm256_set1_epi32(127)), _mm256_set1_epi32(1)));
            let e = _mm256_mul_ps(_mm256_castsi256_ps(e2), p);
            let take = _mm256_and_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(bd, cut), _mm256_cmp_ps::<_CMP_LT_OQ>(u, e));
            let accept = _mm256_or_ps(_mm256_cmp_ps::<_CMP_NGT_UQ>(bd, zero), take);
            if _mm256_movemask_ps(accept) != 0 {
                _mm256_storeu_ps(sp.add(LANES * i), _mm256_xor_ps(si, _mm256_and_ps(accept, sign)));
                for (j, &w) in m.row(i).iter().enumerate() {
                    let q = gp.add(LANES * j);
                    // Rejecting lanes add +0 (not 0 * w, which is NaN for an infinite w).
                    let step = _mm256_and_ps(accept, _mm256_mul_ps(si, _mm256_set1_ps(w)));
                    _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), step));
                }
            }
        }
    }
    let mut words = [[0u64; 4]; 4];
    for (half, v) in [(0usize, &lo), (4, &hi)] {
        for (w, vw) in v.iter().enumerate() {
            _mm256_storeu_si256(words[w].as_mut_ptr() as *mut __m256i, *vw);
        }
        for l in 0..4 {
            rngs[half + l].s = [words[0][l], words[1][l], words[2][l], words[3][l]];
        }
    }
    lane_states(&sg, xs);
}

/// [`anneal_flip_lanes`] where the CPU has AVX2 (returns `true`); `false`
/// without (the scalar kernel is then the faster one).
fn anneal_flip_lanes_fast(m: &DenseModel<'_, f32>, betas: &[f32], rngs: &mut [OpenXoshiro; LANES], xs: &mut [u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the features were detected at run time.
        unsafe { anneal_flip_lanes_avx2(m, betas, rngs, xs) };
        return true;
    }
    let _ = (m, betas, rngs, xs);
    false
}

/// Steepest single-flip descent to a local minimum (fields must match `x`).
#[inline(always)]
pub fn descend_flip<F: Real, C: Couplings<F>>(c: &C, x: &mut [u8], f: &mut [F]) {
    let n = c.n();
    let diag = c.diag();
    let tol = -c.tolerance();
    for _ in 0..4 * n + 16 {
        let mut best = tol;
        let mut arg = usize::MAX;
        for i in 0..n {
            let d = diag[i] + f[i];
            let delta = if x[i] != 0 { -d } else { d };
            if delta < best {
                best = delta;
                arg = i;
            }
        }
        if arg == usize::MAX {
            return;
        }
        if x[arg] != 0 {
            x[arg] = 0;
            c.sub_row(arg, f);
        } else {
            x[arg] = 1;
            c.add_row(arg, f);
        }
    }
}

/// State of the swap annealer: which variables are selected, as two lists.
struct Subsets {
    sel: Vec<u32>,
    uns: Vec<u32>,
}

impl Subsets {
    fn of(x: &[u8]) -> Self {
        let mut sel = Vec::new();
        let mut uns = Vec::new();
        for (i, &v) in x.iter().enumerate() {
            if v != 0 {
                sel.push(i as u32);
            } else {
                uns.push(i as u32);
            }
        }
        Subsets { sel, uns }
    }
}

#[inline(always)]
fn apply_swap<F: Real>(m: &DenseModel<'_, F>, i: usize, j: usize, x: &mut [u8], f: &mut [F]) {
    x[i] = 0;
    x[j] = 1;
    let (wi, wj) = (m.row(i), m.row(j));
    for ((fv, &a), &b) in f.iter_mut().zip(wi).zip(wj) {
        *fv += b - a;
    }
}

/// Cardinality-preserving annealing of `x` (which must have exactly `k`
/// ones), `n` attempted swaps per beta, then optionally steepest 1-swap
/// descent. Returns the selected indices.
#[inline(always)]
pub fn anneal_swap<F: Real>(
    m: &DenseModel<'_, F>,
    betas: &[F],
    rng: &mut Xoshiro256PlusPlus,
    x: &mut [u8],
    f: &mut [F],
    greedy: bool,
) -> Vec<u32> {
    let n = m.n;
    assert!(x.len() == n && f.len() == n);
    fields_of(m, x, f);
    let mut s = Subsets::of(x);
    let k = s.sel.len();
    if k == 0 || k == n {
        return s.sel;
    }
    let u = n - k;
    let diag = &m.diag[..];
    for &beta in betas {
        for _ in 0..n {
            let r = rng.next_u64();
            let a = below(r, k);
            let b = below(r >> 32, u);
            let i = s.sel[a] as usize;
            let j = s.uns[b] as usize;
            let delta = (diag[j] + f[j]) - (diag[i] + f[i]) - m.w[i * n + j];
            if metropolis(beta, delta, rng) {
                s.sel[a] = j as u32;
                s.uns[b] = i as u32;
                apply_swap(m, i, j, x, f);
            }
        }
    }
    if greedy {
        // Fresh fields: no rounding carried over from the anneal.
        fields_of(m, x, f);
        descend_swap(m, &mut s, x, f);
    }
    s.sel
}

/// `(min_v (d[v] - w[v]), its first index)`; the minimum runs in 8 lanes.
#[inline(always)]
fn min_diff<F: Real>(d: &[F], w: &[F]) -> F {
    let big = F::from_f64(1e30);
    let mut acc = [big; 8];
    let mut cd = d.chunks_exact(8);
    let mut cw = w.chunks_exact(8);
    for (a, b) in (&mut cd).zip(&mut cw) {
        for l in 0..8 {
            let v = a[l] - b[l];
            if v < acc[l] {
                acc[l] = v;
            }
        }
    }
    let mut best = big;
    for (&a, &b) in cd.remainder().iter().zip(cw.remainder()) {
        let v = a - b;
        if v < best {
            best = v;
        }
    }
    for v in acc {
        if v < best {
            best = v;
        }
    }
    best
}

/// The best swap `(a, j, delta)` (slot in `sel`, unselected index), if one
/// improves by more than `-below_delta`. `d[v] = Q_vv + f_v` for unselected
/// `v` and a huge value for selected ones, so the inner minimum over all `v`
/// is contiguous and vectorised (`O(k n / 8)` per pass).
#[inline(always)]
fn best_swap<F: Real>(m: &DenseModel<'_, F>, s: &Subsets, f: &[F], d: &[F], below_delta: F) -> Option<(usize, usize, F)> {
    let mut best = below_delta;
    let mut arg = None;
    for (a, &i) in s.sel.iter().enumerate() {
        let i = i as usize;
        let low = min_diff(d, m.row(i));
        let delta = low - (m.diag[i] + f[i]);
        if delta < best {
            best = delta;
            arg = Some((a, low));
        }
    }
    let (a, low) = arg?;
    let wi = m.row(s.sel[a] as usize);
    // The first index reaching the row minimum (same arithmetic as min_diff).
    let j = (0..m.n).find(|&v| d[v] - wi[v] <= low)?;
    Some((a, j, best))
}

/// `d[v] = Q_vv + f_v` (unselected) or a huge value (selected).
#[inline(always)]
fn unselected_costs<F: Real>(m: &DenseModel<'_, F>, x: &[u8], f: &[F], d: &mut [F]) {
    let big = F::from_f64(1e30);
    for v in 0..m.n {
        d[v] = if x[v] != 0 { big } else { m.diag[v] + f[v] };
    }
}

/// Steepest 1-swap descent to a local minimum (fields must match `x`).
#[inline(always)]
fn descend_swap<F: Real>(m: &DenseModel<'_, F>, s: &mut Subsets, x: &mut [u8], f: &mut [F]) {
    let tol = -m.tol;
    let mut d = vec![F::ZERO; m.n];
    for _ in 0..4 * m.n + 16 {
        unselected_costs(m, x, f, &mut d);
        match best_swap(m, s, f, &d, tol) {
            None => return,
            Some((a, j, _)) => {
                let i = s.sel[a] as usize;
                let b = s.uns.iter().position(|&v| v as usize == j).expect("j is unselected");
                s.sel[a] = j as u32;
                s.uns[b] = i as u32;
                apply_swap(m, i, j, x, f);
            }
        }
    }
}

/// A [`tabu_polish`] runs at most `POLISH_CAP` times its stall limit.
pub const POLISH_CAP: usize = 20;

/// Tabu tenures `(t_in, t_out)` of [`tabu_polish`]: a variable that left may
/// not re-enter for `t_in` moves, one that entered may not leave for `t_out`.
/// `core::tabu`'s swap defaults (`t = min(max(1, k/2), 20, (n-k)/4)`,
/// `t_out = min(t, k/4)`) with floors 5 and 2: at k = 4..6 its tenures 2-3 / 1
/// let the polish cycle between two states (measured: one problem in three
/// stuck 0.04-0.4 above the optimum in every read, whatever the stall; with
/// the floors none at stall >= 50). Longer tenures at k = 16 (`t = (n-k)/4`
/// capped at 20) were measured worse (95% -> 82% at K = 256).
fn polish_tenures(n: usize, k: usize) -> (u32, u32) {
    let t = (k / 2).clamp(5, 20).min((n - k) / 4);
    (t as u32, t.min((k / 4).max(2)) as u32)
}

/// Short swap tabu search from `x` (exactly `k` ones, any fields; the fields
/// are recomputed): steepest 1-swap descent, then moves that each take the
/// best swap whose variables are not tabu (uphill when no swap improves), or
/// the best swap overall when it reaches a new best energy (aspiration). A
/// variable that left may not re-enter for `t_in + u` moves, one that entered
/// may not leave for `t_out + u'` (`u`, `u'` uniform in `[0, t/4]` from
/// `rng`; tenures as `core::tabu`'s swap search, [`polish_tenures`]). Stops
/// after `stall` moves without a new best (at most [`POLISH_CAP`]` stall` moves);
/// the best state seen is restored, given fresh fields and descended to a
/// local minimum. A move costs `O(k n / 8)` (one vectorised row minimum per
/// selected variable over the allowed entering ones; the few tabu entering
/// variables are priced one by one for the aspiration test). `stall = 0`: the
/// plain descent. Returns the selected indices.
#[inline(always)]
pub fn tabu_polish<F: Real>(m: &DenseModel<'_, F>, stall: usize, rng: &mut Xoshiro256PlusPlus, x: &mut [u8], f: &mut [F]) -> Vec<u32> {
    let n = m.n;
    fields_of(m, x, f);
    let mut s = Subsets::of(x);
    let k = s.sel.len();
    if k == 0 || k == n {
        return s.sel;
    }
    descend_swap(m, &mut s, x, f);
    let (t_in, t_out) = polish_tenures(n, k);
    if stall == 0 || t_in == 0 {
        return s.sel;
    }
    let diag = &m.diag[..];
    let big = F::from_f64(1e30);
    let half_big = F::from_f64(1e29);
    let tol = m.tol;
    // until[v]: first iteration at which v may move again.
    let mut until = vec![0u32; n];
    // d[v] = Q_vv + f_v for the unselected v that may enter, huge otherwise;
    // the few tabu unselected ones are priced separately (aspiration).
    let mut d = vec![F::ZERO; n];
    let mut tabu_in: Vec<u32> = Vec::with_capacity(2 * t_in as usize + 2);
    let (mut cur, mut best) = (F::ZERO, F::ZERO);
    let mut best_sel = s.sel.clone();
    let mut last = 0u32;
    for it in 1..=stall.saturating_mul(POLISH_CAP) as u32 {
        if it - last > stall as u32 {
            break;
        }
        tabu_in.clear();
        for v in 0..n {
            d[v] = if x[v] != 0 {
                big
            } else if until[v] > it {
                tabu_in.push(v as u32);
                big
            } else {
                diag[v] + f[v]
            };
        }
        // (delta, slot a, j or usize::MAX for "the first v reaching low", low)
        let mut all = (big, usize::MAX, usize::MAX, big);
        let mut ok = all;
        for (a, &i) in s.sel.iter().enumerate() {
            let i = i as usize;
            let gi = diag[i] + f[i];
            let wi = m.row(i);
            let low = min_diff(&d, wi);
            if until[i] <= it && low - gi < ok.0 {
                ok = (low - gi, a, usize::MAX, low);
            }
            if low - gi < all.0 {
                all = (low - gi, a, usize::MAX, low);
            }
            for &v in &tabu_in {
                let v = v as usize;
                let dv = (diag[v] + f[v]) - wi[v] - gi;
                if dv < all.0 {
                    all = (dv, a, v, big);
                }
            }
        }
        let aspire = cur + all.0 < best - tol;
        let (bd, a, jv, low) = if aspire || ok.1 == usize::MAX || ok.3 >= half_big { all } else { ok };
        if a == usize::MAX || bd >= half_big {
            break;
        }
        let i = s.sel[a] as usize;
        let j = if jv != usize::MAX {
            jv
        } else {
            let wi = m.row(i);
            match (0..n).find(|&v| d[v] - wi[v] <= low) {
                Some(j) => j,
                None => break,
            }
        };
        let b = s.uns.iter().position(|&v| v as usize == j).expect("j is unselected");
        s.sel[a] = j as u32;
        s.uns[b] = i as u32;
        apply_swap(m, i, j, x, f);
        let r = rng.next_u64();
        until[i] = it + 1 + t_in + below(r, t_in as usize / 4 + 1) as u32;
        until[j] = it + 1 + t_out + below(r >> 32, t_out as usize / 4 + 1) as u32;
        cur += bd;
        if cur < best - tol {
            best = cur;
            best_sel.copy_from_slice(&s.sel);
            last = it;
        }
    }
    x.iter_mut().for_each(|v| *v = 0);
    for &i in &best_sel {
        x[i as usize] = 1;
    }
    fields_of(m, x, f);
    let mut s = Subsets::of(x);
    descend_swap(m, &mut s, x, f);
    s.sel
}

/// [`tabu_polish`] compiled for AVX2+FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tabu_polish_avx2<F: Real>(
    m: &DenseModel<'_, F>,
    stall: usize,
    rng: &mut Xoshiro256PlusPlus,
    x: &mut [u8],
    f: &mut [F],
) -> Vec<u32> {
    tabu_polish(m, stall, rng, x, f)
}

/// [`tabu_polish`] in the widest instruction set the CPU offers (same results).
pub fn tabu_polish_fast<F: Real>(
    m: &DenseModel<'_, F>,
    stall: usize,
    rng: &mut Xoshiro256PlusPlus,
    x: &mut [u8],
    f: &mut [F],
) -> Vec<u32> {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the features were detected at run time.
        return unsafe { tabu_polish_avx2(m, stall, rng, x, f) };
    }
    tabu_polish(m, stall, rng, x, f)
}

/// Coefficient dynamic range above which a problem's fields are kept in f64.
pub const SINGLE_PRECISION_MAX_RANGE: f64 = 1e4;

/// Whether one dense problem (`n x n`, upper-triangular) can anneal with f32
/// fields: the span from its largest coefficient magnitude to the 1% quantile
/// of its nonzero magnitudes is at most [`SINGLE_PRECISION_MAX_RANGE`]. Both
/// come from a fixed strided sample of about 8k upper-triangle entries plus
/// every diagonal entry, so the rule costs far less than a pass over `Q`. A few
/// near-zero couplings (|cos| of nearly orthogonal maps) do not call for f64:
/// their rounding is far below any energy gap the anneal resolves, and the
/// reported energies are recomputed in f64 anyway. Decided per problem, so a
/// problem anneals the same alone or inside any batch.
pub fn prefers_single(q: &[f64], n: usize) -> bool {
    let nn = n * n;
    if nn == 0 {
        return true;
    }
    let step = (nn / 8192).max(1);
    let mut mags: Vec<f64> = Vec::with_capacity(nn / step + n + 1);
    mags.extend(q.iter().step_by(step).map(|v| v.abs()));
    mags.extend((0..n).map(|i| q[i * n + i].abs()));
    let top = mags.iter().cloned().fold(0.0, f64::max);
    mags.retain(|&v| v != 0.0);
    if top == 0.0 || mags.is_empty() {
        return true;
    }
    let at = mags.len() / 100;
    let (_, low, _) = mags.select_nth_unstable_by(at, |a, b| a.total_cmp(b));
    top / *low <= SINGLE_PRECISION_MAX_RANGE
}

/// Quantile of the nonzero `|delta|` at a local minimum that the hot end
/// accepts with probability 1/2.
pub const HOT_QUANTILE: f64 = 0.1;

/// The swap annealer's hot end accepts the [`HOT_QUANTILE`] excitation with
/// probability `1 / SWAP_HOT_ODDS` (a colder start than the flip annealer's
/// 1/2: measured on explanation-shaped instances, K = 64..512, the success
/// per read is the same from 1/2 to 1/1000 and the reads get 20-40% cheaper,
/// fewer accepted moves).
pub const SWAP_HOT_ODDS: f64 = 8.0;

fn range_from_deltas(deltas: impl Iterator<Item = f64>, hot_odds: f64) -> (f64, f64) {
    let mut nz: Vec<f64> = deltas.map(f64::abs).filter(|d| *d > 0.0 && d.is_finite()).collect();
    if nz.is_empty() {
        // Every move is free: any temperature samples uniformly.
        return (0.1, 1.0);
    }
    let max = nz.iter().cloned().fold(0.0, f64::max);
    let min = nz.iter().cloned().fold(f64::INFINITY, f64::min).max(1e-3 * max);
    let at = ((nz.len() as f64 * HOT_QUANTILE) as usize).min(nz.len() - 1);
    let typical = *nz.select_nth_unstable_by(at, |a, b| a.partial_cmp(b).unwrap()).1;
    let b0 = hot_odds.ln() / typical;
    let b1 = ((100.0f64).ln() / min).max(b0);
    (b0, b1)
}

/// Default `(beta0, beta1)` of the flip annealer (see the module docs).
pub fn default_beta_range_flip<F: Real, C: Couplings<F>>(c: &C) -> (f64, f64) {
    let n = c.n();
    let mut x = vec![0u8; n];
    let mut f = vec![F::ZERO; n];
    descend_flip(c, &mut x, &mut f);
    let diag = c.diag();
    range_from_deltas((0..n).map(|i| (diag[i] + f[i]).to_f64()), 2.0)
}

/// The `k` variables with the lowest `Q_ii` (ties: lower index).
pub fn lowest_diagonal_state<F: Real>(m: &DenseModel<'_, F>, k: usize) -> Vec<u8> {
    let mut idx: Vec<usize> = (0..m.n).collect();
    idx.sort_by(|&a, &b| m.q[a * m.n + a].partial_cmp(&m.q[b * m.n + b]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    let mut x = vec![0u8; m.n];
    for &i in idx.iter().take(k) {
        x[i] = 1;
    }
    x
}

/// Default `(beta0, beta1)` of the swap annealer with `k` ones (module docs).
pub fn default_beta_range_swap<F: Real>(m: &DenseModel<'_, F>, k: usize) -> (f64, f64) {
    default_beta_range_swap_q(m.q, m.n, k)
}

/// [`default_beta_range_swap`] straight from a row-major `n x n` QUBO, in
/// `f64`, without building the symmetric matrix: only the `k` rows of the
/// selected variables are kept (`rows[a][v] = W[sel[a]][v]`), so a descent
/// step costs `O(k n)` contiguous work plus one strided column read.
pub fn default_beta_range_swap_q(q: &[f64], n: usize, k: usize) -> (f64, f64) {
    if k == 0 || k >= n {
        return (0.1, 1.0);
    }
    let w_row = |i: usize, out: &mut [f64]| {
        for v in 0..n {
            out[v] = if v == i { 0.0 } else { q[i * n + v] + q[v * n + i] };
        }
    };
    let row_scale = |r: &[f64]| r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diag: Vec<f64> = (0..n).map(|i| q[i * n + i]).collect();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| diag[a].partial_cmp(&diag[b]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    let mut sel: Vec<usize> = idx[..k].to_vec();
    let mut x = vec![false; n];
    sel.iter().for_each(|&i| x[i] = true);
    let mut rows = vec![0.0f64; k * n];
    for (a, &i) in sel.iter().enumerate() {
        w_row(i, &mut rows[a * n..(a + 1) * n]);
    }
    let mut f = vec![0.0f64; n];
    for a in 0..k {
        for (fv, &w) in f.iter_mut().zip(&rows[a * n..(a + 1) * n]) {
            *fv += w;
        }
    }
    // Scale of the coefficients met (diagonal and the rows in use): no pass
    // over all n^2 entries.
    let mut scale = diag.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for a in 0..k {
        scale = scale.max(row_scale(&rows[a * n..(a + 1) * n]));
    }
    let mut tol = tolerance_for::<f64>(2.0 * scale, n);
    // Steepest 1-swap descent.
    for _ in 0..4 * n + 16 {
        let mut best = (-tol, usize::MAX, usize::MAX);
        for a in 0..k {
            let i = sel[a];
            let di = diag[i] + f[i];
            let r = &rows[a * n..(a + 1) * n];
            for j in 0..n {
                if !x[j] {
                    let d = (diag[j] + f[j]) - di - r[j];
                    if d < best.0 {
                        best = (d, a, j);
                    }
                }
            }
        }
        let (_, a, j) = best;
        if a == usize::MAX {
            break;
        }
        let i = sel[a];
        let r = &mut rows[a * n..(a + 1) * n];
        for (fv, &w) in f.iter_mut().zip(r.iter()) {
            *fv -= w;
        }
        w_row(j, r);
        scale = scale.max(row_scale(r));
        tol = tolerance_for::<f64>(2.0 * scale, n);
        for (fv, &w) in f.iter_mut().zip(r.iter()) {
            *fv += w;
        }
        x[i] = false;
        x[j] = true;
        sel[a] = j;
    }
    let mut deltas = Vec::with_capacity(k * (n - k));
    for a in 0..k {
        let i = sel[a];
        let di = diag[i] + f[i];
        let r = &rows[a * n..(a + 1) * n];
        for j in 0..n {
            if !x[j] {
                deltas.push((diag[j] + f[j]) - di - r[j]);
            }
        }
    }
    range_from_deltas(deltas.into_iter(), SWAP_HOT_ODDS)
}

/// Geometric schedule of `num` betas from `b0` to `b1` (one beta: `b1`).
pub fn geometric(b0: f64, b1: f64, num: usize) -> Vec<f64> {
    match num {
        0 => vec![],
        1 => vec![b1],
        _ => {
            let r = (b1 / b0).ln() / (num - 1) as f64;
            (0..num).map(|t| if t + 1 == num { b1 } else { b0 * (r * t as f64).exp() }).collect()
        }
    }
}

/// Linear schedule of `num` betas from `b0` to `b1` (one beta: `b1`).
pub fn linear(b0: f64, b1: f64, num: usize) -> Vec<f64> {
    match num {
        0 => vec![],
        1 => vec![b1],
        _ => (0..num).map(|t| b0 + (b1 - b0) * t as f64 / (num - 1) as f64).collect(),
    }
}

/// How the reads of a batch start and end.
#[derive(Clone, Debug)]
pub struct ReadConfig {
    pub seed: u64,
    /// `Some(k)`: swap annealer with exactly `k` ones; `None`: flip annealer.
    pub k: Option<usize>,
    pub greedy: bool,
    /// Swap annealer with `greedy`: stall limit of the final [`tabu_polish`]
    /// (0: plain steepest 1-swap descent).
    pub polish: usize,
    /// Run the reads on the calling thread (tiny calls: no pool hand-off).
    pub sequential: bool,
}

/// `f(t, state_t, energy_t)` for every read, in parallel unless `sequential`.
fn for_each_read(
    n: usize,
    sequential: bool,
    states: &mut [u8],
    energies: &mut [f64],
    f: impl Fn(usize, &mut [u8], &mut f64) + Sync + Send,
) {
    for_each_group(n, 1, sequential, states, energies, |t, x, e| f(t, x, &mut e[0]));
}

/// `f(g, states, energies)` for every group `g` of `per` consecutive reads
/// (the last one may be shorter), in parallel unless `sequential`.
fn for_each_group(
    n: usize,
    per: usize,
    sequential: bool,
    states: &mut [u8],
    energies: &mut [f64],
    f: impl Fn(usize, &mut [u8], &mut [f64]) + Sync + Send,
) {
    if sequential {
        states.chunks_mut(per * n).zip(energies.chunks_mut(per)).enumerate().for_each(|(g, (x, e))| f(g, x, e));
    } else {
        states
            .par_chunks_mut(per * n)
            .zip(energies.par_chunks_mut(per))
            .enumerate()
            .with_min_len(1)
            .for_each(|(g, (x, e))| f(g, x, e));
    }
}

/// Random initial state: uniform 0/1, or `k` ones at uniform positions.
pub fn random_state<R: RngCore>(rng: &mut R, n: usize, k: Option<usize>, x: &mut [u8]) {
    match k {
        None => {
            let mut bits = 0u64;
            for (t, v) in x.iter_mut().enumerate() {
                if t % 64 == 0 {
                    bits = rng.next_u64();
                }
                *v = (bits & 1) as u8;
                bits >>= 1;
            }
        }
        Some(k) => {
            let mut idx: Vec<u32> = (0..n as u32).collect();
            for t in 0..k.min(n) {
                let r = t + below(rng.next_u64() >> 32, n - t);
                idx.swap(t, r);
            }
            x.iter_mut().for_each(|v| *v = 0);
            for &i in &idx[..k.min(n)] {
                x[i as usize] = 1;
            }
        }
    }
}

/// Run reads `reads` of problem `p` on model `c` (flip annealer), writing
/// each read's final state and exact energy. `init` (if given) holds the
/// initial states of those reads.
#[allow(clippy::too_many_arguments)]
pub fn run_flip_reads<F: Real, C: Couplings<F>>(
    c: &C,
    betas: &[F],
    cfg: &ReadConfig,
    p: u64,
    first_read: u64,
    init: Option<&[u8]>,
    states: &mut [u8],
    energies: &mut [f64],
) {
    let n = c.n();
    // Read t's generator and initial state.
    let start = |t: usize, x: &mut [u8]| {
        let mut rng = open_stream(cfg.seed, p, first_read + t as u64);
        match init {
            Some(s) => x.copy_from_slice(&s[t * n..(t + 1) * n]),
            None => random_state(&mut rng, n, None, x),
        }
        rng
    };
    let finish = |x: &mut [u8], f: &mut [F], e: &mut f64| {
        if cfg.greedy {
            // Fresh fields: no rounding carried over from the anneal.
            fields_of(c, x, f);
            descend_flip(c, x, f);
        }
        *e = c.energy(x);
    };
    let run_one = |t: usize, x: &mut [u8], e: &mut f64| {
        let mut rng = start(t, x);
        let mut f = vec![F::ZERO; n];
        // The kernel's own descent works on the anneal's fields; `finish` starts afresh.
        anneal_flip_fast(c, betas, &mut rng, x, &mut f, false);
        finish(x, &mut f, e);
    };
    if n == 0 {
        energies.iter_mut().for_each(|e| *e = c.energy(&[]));
        return;
    }
    let lanes = match (c.as_dense_f32(), F::dense_f32_betas(betas)) {
        (Some(m), Some(b)) if n <= LANES_MAX_N && energies.len() >= LANES_MIN_READS && has_avx2() => Some((m, b)),
        _ => None,
    };
    let Some((m, b32)) = lanes else {
        for_each_read(n, cfg.sequential, states, energies, run_one);
        return;
    };
    // Groups of LANES consecutive reads: the lane kernel where enough of a
    // group is real, read by read otherwise (the same results either way).
    for_each_group(n, LANES, cfg.sequential, states, energies, |gi, xs, es| {
        let t0 = gi * LANES;
        let one_by_one = |xs: &mut [u8], es: &mut [f64]| {
            for (l, (x, e)) in xs.chunks_mut(n).zip(es.iter_mut()).enumerate() {
                run_one(t0 + l, x, e);
            }
        };
        let reads = es.len();
        if reads < LANES_MIN_READS {
            return one_by_one(xs, es);
        }
        let mut buf = vec![0u8; LANES * n];
        let mut rngs: [OpenXoshiro; LANES] = std::array::from_fn(|_| OpenXoshiro { s: [1, 2, 3, 4] });
        for (l, rng) in rngs.iter_mut().enumerate().take(reads) {
            *rng = start(t0 + l, &mut buf[l * n..(l + 1) * n]);
        }
        if !anneal_flip_lanes_fast(m, b32, &mut rngs, &mut buf) {
            return one_by_one(xs, es); // no AVX2 (excluded above; kept for safety)
        }
        let mut f = vec![F::ZERO; n];
        for (l, (x, e)) in xs.chunks_mut(n).zip(es.iter_mut()).enumerate() {
            x.copy_from_slice(&buf[l * n..(l + 1) * n]);
            finish(x, &mut f, e);
        }
    });
}

/// Like [`run_flip_reads`] for the swap annealer with `k` ones; initial
/// states, if given, must have exactly `k` ones (checked by the caller).
#[allow(clippy::too_many_arguments)]
pub fn run_swap_reads<F: Real>(
    m: &DenseModel<'_, F>,
    k: usize,
    betas: &[F],
    cfg: &ReadConfig,
    p: u64,
    first_read: u64,
    init: Option<&[u8]>,
    states: &mut [u8],
    energies: &mut [f64],
) {
    let n = m.n;
    if n == 0 {
        energies.iter_mut().for_each(|e| *e = m.offset);
        return;
    }
    for_each_read(n, cfg.sequential, states, energies, |t, x, e| {
            let mut rng = stream(cfg.seed, p, first_read + t as u64);
            match init {
                Some(s) => x.copy_from_slice(&s[t * n..(t + 1) * n]),
                None => random_state(&mut rng, n, Some(k), x),
            }
            let mut f = vec![F::ZERO; n];
            let mut ones = anneal_swap_fast(m, betas, &mut rng, x, &mut f, cfg.greedy && cfg.polish == 0);
            if cfg.greedy && cfg.polish > 0 {
                ones = tabu_polish_fast(m, cfg.polish, &mut rng, x, &mut f);
            }
            *e = m.energy_of_ones(&ones);
    });
}

/// Run every read of problem `p` (dense), dispatching on the annealer.
#[allow(clippy::too_many_arguments)]
pub fn run_dense_reads<F: Real>(
    m: &DenseModel<'_, F>,
    betas: &[f64],
    cfg: &ReadConfig,
    p: u64,
    first_read: u64,
    init: Option<&[u8]>,
    states: &mut [u8],
    energies: &mut [f64],
) {
    let b: Vec<F> = betas.iter().map(|&v| F::from_f64(v)).collect();
    match cfg.k {
        Some(k) => run_swap_reads(m, k, &b, cfg, p, first_read, init, states, energies),
        None => run_flip_reads(m, &b, cfg, p, first_read, init, states, energies),
    }
}

#[cfg(test)]
mod precision_tests {
    use super::prefers_single;

    #[test]
    fn a_few_tiny_couplings_keep_f32_a_wide_bulk_does_not() {
        let n = 64;
        let mut q = vec![0.0; n * n];
        for a in 0..n {
            for b in a..n {
                q[a * n + b] = 0.5 + ((a * 7 + b * 3) % 11) as f64 / 10.0;
            }
        }
        q[1] = 1e-9; // one near-orthogonal pair
        assert!(prefers_single(&q, n));
        for a in 0..n {
            for b in a + 1..n {
                if (a + b) % 2 == 0 {
                    q[a * n + b] = 1e-7;
                }
            }
        }
        assert!(!prefers_single(&q, n));
        assert!(prefers_single(&[], 0));
        assert!(prefers_single(&[0.0; 4], 2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::exact::ground_states;
    use crate::core::qubo::qubo_energy;

    fn random_q(n: usize, seed: u64) -> Vec<f64> {
        crate::core::greedy::tests::random_upper(n, seed)
    }

    #[test]
    fn lanes_reproduce_the_scalar_kernel_bit_for_bit() {
        for (n, seed) in [(1usize, 1u64), (5, 2), (17, 3), (64, 4), (100, 5), (4, 7)] {
            let mut q = random_q(n, seed);
            // A penalty-like diagonal: accepted and rejected moves both common.
            for a in 0..n {
                q[a * n + a] -= 3.0;
            }
            if n == 4 {
                // A coupling beyond f32's range (inf in W): a rejecting lane
                // must not add 0 * inf = NaN where the scalar kernel adds nothing.
                q[1] = 1e39;
            }
            let m = DenseModel::<f32>::new(&q, n, 0.0).unwrap();
            let betas: Vec<f32> = geometric(0.05, 4.0, 30).iter().map(|&b| b as f32).collect();
            let mut xs = vec![0u8; LANES * n];
            let mut rngs: [OpenXoshiro; LANES] = std::array::from_fn(|l| open_stream(seed, 0, l as u64));
            for (l, r) in rngs.iter_mut().enumerate() {
                random_state(r, n, None, &mut xs[l * n..(l + 1) * n]);
            }
            let (mut xs2, mut rngs2) = (xs.clone(), rngs.clone());
            let (mut xs3, mut rngs3) = (xs.clone(), rngs.clone());
            let (mut xs4, mut rngs4) = (xs.clone(), rngs.clone());
            anneal_flip_lanes(&m, &betas, &mut rngs, &mut xs);
            let mut f = vec![0.0f32; n];
            for l in 0..LANES {
                anneal_flip(&m, &betas, &mut rngs2[l], &mut xs2[l * n..(l + 1) * n], &mut f, false);
                anneal_flip_fast(&m, &betas, &mut rngs4[l], &mut xs4[l * n..(l + 1) * n], &mut f, false);
            }
            assert_eq!(xs, xs2, "n={n}");
            assert_eq!(rngs, rngs2, "n={n}");
            assert_eq!(xs, xs4, "n={n}");
            if anneal_flip_lanes_fast(&m, &betas, &mut rngs3, &mut xs3) {
                assert_eq!(xs, xs3, "avx2 n={n}");
                assert_eq!(rngs, rngs3, "avx2 n={n}");
            }
        }
    }

    #[test]
    fn flip_bounds_agree_with_the_exponential() {
        // Every shortcut of metropolis_flip gives the decision u < exp_neg(bd).
        let mut r = open_stream(9, 9, 9);
        for t in 0..2_000_000u32 {
            let bd = (t % 20_000) as f32 * (f32::CUTOFF / 20_000.0) + 1e-6;
            let u = f32::unit(r.next_u64());
            assert_eq!(metropolis_flip(bd, u), u < bd.exp_neg(), "bd={bd} u={u}");
            let bd64 = bd as f64;
            let u64_ = f64::unit(r.next_u64());
            assert_eq!(metropolis_flip(bd64, u64_), u64_ < bd64.exp_neg(), "bd={bd64} u={u64_}");
        }
    }

    #[test]
    fn fields_track_flips_and_energies_are_exact() {
        let n = 12;
        let q = random_q(n, 3);
        let m = DenseModel::<f64>::new(&q, n, 0.5).unwrap();
        let mut rng = stream(1, 0, 0);
        let mut x = vec![0u8; n];
        random_state(&mut rng, n, None, &mut x);
        let mut f = vec![0.0; n];
        let betas = geometric(0.1, 3.0, 20);
        anneal_flip(&m, &betas, &mut rng, &mut x, &mut f, true);
        let mut f2 = vec![0.0; n];
        fields_of(&m, &x, &mut f2);
        for (a, b) in f.iter().zip(&f2) {
            assert!((a - b).abs() < 1e-9);
        }
        assert!((m.energy(&x) - qubo_energy(&q, 0.5, &x)).abs() < 1e-12);
        // Greedy end state is a local minimum.
        for i in 0..n {
            let mut y = x.clone();
            y[i] ^= 1;
            assert!(qubo_energy(&q, 0.5, &y) >= qubo_energy(&q, 0.5, &x) - 1e-9);
        }
    }

    #[test]
    fn flip_and_swap_find_ground_states() {
        for seed in 0..6 {
            let n = 14;
            let q = random_q(n, seed);
            let m = DenseModel::<f32>::new(&q, n, 0.0).unwrap();
            let gs = ground_states(&q, n, 0.0, None, 1).unwrap();
            let (b0, b1) = default_beta_range_flip(&m);
            let betas: Vec<f32> = geometric(b0, b1, 200).iter().map(|&v| v as f32).collect();
            let mut best = f64::INFINITY;
            for r in 0..20 {
                let mut rng = stream(7, 0, r);
                let mut x = vec![0u8; n];
                random_state(&mut rng, n, None, &mut x);
                let mut f = vec![0.0f32; n];
                anneal_flip(&m, &betas, &mut rng, &mut x, &mut f, false);
                best = best.min(m.energy(&x));
            }
            assert!((best - gs.energy).abs() < 1e-9, "seed {seed}: {best} vs {}", gs.energy);
            let k = 5;
            let gk = ground_states(&q, n, 0.0, Some(k), 1).unwrap();
            let (b0, b1) = default_beta_range_swap(&m, k);
            let betas: Vec<f32> = geometric(b0, b1, 200).iter().map(|&v| v as f32).collect();
            let mut best = f64::INFINITY;
            for r in 0..20 {
                let mut rng = stream(7, 1, r);
                let mut x = vec![0u8; n];
                random_state(&mut rng, n, Some(k), &mut x);
                let mut f = vec![0.0f32; n];
                let ones = anneal_swap(&m, &betas, &mut rng, &mut x, &mut f, false);
                assert_eq!(x.iter().filter(|&&v| v == 1).count(), k);
                assert_eq!(ones.len(), k);
                best = best.min(m.energy(&x));
            }
            assert!((best - gk.energy).abs() < 1e-9, "seed {seed} k: {best} vs {}", gk.energy);
        }
    }

    #[test]
    fn tabu_polish_is_feasible_local_and_never_worse_than_descent() {
        let (n, k) = (16, 5);
        let mut hits = 0;
        for seed in 0..8 {
            let q = random_q(n, 100 + seed);
            let m = DenseModel::<f32>::new(&q, n, 0.0).unwrap();
            let gk = ground_states(&q, n, 0.0, Some(k), 1).unwrap();
            for r in 0..4 {
                let mut rng = stream(seed, 0, r);
                let mut x0 = vec![0u8; n];
                random_state(&mut rng, n, Some(k), &mut x0);
                let mut f = vec![0.0f32; n];
                // Plain descent from the same start.
                let mut xd = x0.clone();
                fields_of(&m, &xd, &mut f);
                let mut s = Subsets::of(&xd);
                descend_swap(&m, &mut s, &mut xd, &mut f);
                let mut xp = x0.clone();
                let ones = tabu_polish_fast(&m, 50, &mut rng, &mut xp, &mut f);
                assert_eq!(ones.len(), k);
                assert_eq!(xp.iter().filter(|&&v| v == 1).count(), k);
                let e = qubo_energy(&q, 0.0, &xp);
                assert!(e <= qubo_energy(&q, 0.0, &xd) + 1e-9);
                // A 1-swap local minimum, by brute force.
                for i in (0..n).filter(|&i| xp[i] == 1) {
                    for j in (0..n).filter(|&j| xp[j] == 0) {
                        let mut y = xp.clone();
                        y[i] = 0;
                        y[j] = 1;
                        assert!(qubo_energy(&q, 0.0, &y) >= e - 1e-6);
                    }
                }
                hits += ((e - gk.energy).abs() < 1e-9) as usize;
            }
        }
        // Stall 50 on 16 variables explores far beyond one basin.
        assert!(hits >= 30, "{hits} of 32 reads at the ground state");
    }

    #[test]
    fn csr_matches_dense() {
        let n = 10;
        let q = random_q(n, 9);
        let lin: Vec<f64> = (0..n).map(|i| q[i * n + i]).collect();
        let (mut r, mut c, mut v) = (vec![], vec![], vec![]);
        for a in 0..n {
            for b in a + 1..n {
                r.push(b as i64);
                c.push(a as i64);
                v.push(q[a * n + b]);
            }
        }
        let cm = CsrModel::<f64>::new(&lin, &r, &c, &v, 1.0).unwrap();
        let dm = DenseModel::<f64>::new(&q, n, 1.0).unwrap();
        let betas = geometric(0.2, 5.0, 30);
        let cfg = ReadConfig { seed: 5, k: None, greedy: false, polish: 0, sequential: false };
        let (mut s1, mut e1) = (vec![0u8; 4 * n], vec![0.0; 4]);
        let (mut s2, mut e2) = (vec![0u8; 4 * n], vec![0.0; 4]);
        run_flip_reads(&cm, &betas, &cfg, 0, 0, None, &mut s1, &mut e1);
        run_flip_reads(&dm, &betas, &cfg, 0, 0, None, &mut s2, &mut e2);
        assert_eq!(s1, s2);
        for (a, b) in e1.iter().zip(&e2) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn fast_exp_is_accurate() {
        let mut x = 0.0f32;
        while x <= 17.0 {
            let want = (-(x as f64)).exp();
            let got = x.exp_neg() as f64;
            assert!((got - want).abs() <= 2e-5 * want, "{x}: {got} vs {want}");
            x += 0.001;
        }
    }

    #[test]
    fn schedules() {
        let g = geometric(0.1, 10.0, 3);
        assert!((g[1] - 1.0).abs() < 1e-12 && g[2] == 10.0);
        assert_eq!(linear(1.0, 3.0, 3), vec![1.0, 2.0, 3.0]);
        assert_eq!(geometric(1.0, 2.0, 1), vec![2.0]);
    }
}

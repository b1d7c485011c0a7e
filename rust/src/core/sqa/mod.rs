//! Simulated quantum annealing: discrete-time path-integral Monte Carlo of the
//! transverse-field model of a dense QUBO, with single-flip or
//! cardinality-preserving swap moves.
//!
//! # Model and Suzuki-Trotter mapping
//!
//! A read anneals `H(t) = B_t E(x) - A_t sum_i X_i` at a fixed temperature
//! `T`, where `E(x)` is the QUBO energy of the computational basis state `x`
//! (`x_i = 1` is the up spin, `sigma_i = 2 x_i - 1`) and `A_t >= 0` (the
//! transverse field Gamma) and `B_t >= 0` change from sweep to sweep. With `P`
//! Trotter slices and `eps = 1 / (P T)`,
//!
//! `Tr e^{-H/T} ~ Tr (e^{-eps B E} e^{eps A sum X})^P
//!             = sum over x^1..x^P of prod_s e^{-eps B E(x^s)} prod_i <x_i^s| e^{eps A X} |x_i^{s+1}>`
//!
//! (periodic in `s`, error `O(eps^2)` per factor). One spin's transfer element
//! is `cosh(eps A)` when the neighbouring slices agree and `sinh(eps A)`
//! when they differ, i.e. `C e^{K sigma sigma'}` with `e^{2K} = coth(eps A)`:
//!
//! `K = -1/2 ln tanh(A / (P T))`     (dimensionless),
//!
//! the usual `J_perp = -(P T / 2) ln tanh(Gamma / (P T))` divided by the
//! slice temperature `P T`. The classical weight of a path is therefore
//! `exp(-sum_s B E(x^s) / (P T) + K sum_s sum_i sigma_i^s sigma_i^{s+1})`,
//! and a flip of spin `i` in slice `s` changes its negative logarithm by
//!
//! `delta = B dE_s / (P T) + 4 K (1 - m)`,
//!
//! `m` in {0, 1, 2} the number of the two time neighbours (slices `s - 1` and
//! `s + 1`, the same slice twice when `P = 2`) that disagree with spin `i`
//! before the flip. `P = 1` has no time coupling (`K = 0`: classical
//! annealing at temperature `T / B`). `K` is capped at [`MAX_TIME_COUPLING`]
//! (a flip against two agreeing neighbours then costs `4 * 30 = 120`: never
//! accepted), which also gives `A = 0` a finite value.
//!
//! # Moves
//!
//! * Flip moves ([`SqaConfig::k`] `None`): a sweep visits slices `s = 0..P` and
//!   in each the spins `i = 0..n` in order, one Metropolis flip attempt each
//!   (`P n` attempts). Each slice keeps its local fields `f_i = sum_j W_ij x_j`
//!   (the `sa` module's [`DenseModel`]), so an attempt is `O(1)` and an
//!   accepted flip `O(n)`. On a dense `f32` model with `n <=`
//!   [`LANES_MAX_N`], groups of [`LANES`] reads of one problem run side by
//!   side in AVX2 lanes (`lanes.rs`), each lane making exactly this loop's
//!   draws, decisions and field updates, so a read's result does not depend
//!   on its group ([`run_reads`]; 6.0 -> 2.8 ns per update at n = 64 in
//!   `benches/sqa_report.py`). (Measured and not kept: a checkerboard in
//!   imaginary time, spin by spin with all even slices at once in `f32`
//!   lanes, then all odd ones, branch-free decisions: 1.0-1.1x the time per
//!   update of this loop at mid-anneal acceptance, 2x at high acceptance and
//!   2.5x when nothing is accepted, at n = 64 and 256, P = 16.)
//! * Swap moves (`k` given, every slice holds exactly `k` ones): a sweep makes
//!   `n` attempts in each slice; an attempt swaps a random selected `i` and a
//!   random unselected `j` of that slice, `dE = d_j - d_i - W_ij`
//!   (`d_v = Q_vv + f_v`), and both spins' time terms change. Every slice is
//!   feasible at every step, so every returned state is.
//! * Global moves (`global_moves`, after every sweep): flip moves try to flip
//!   each spin's whole worldline (`n` attempts; the time term is unchanged, so
//!   `delta = B sum_s dE_s / (P T)`); swap moves try `n` worldline exchanges of
//!   a random pair (`i` selected and `j` unselected in slice 0, a symmetric
//!   proposal), which keep every slice's count and the time term. Both cost
//!   `O(P)` per attempt: late in an anneal, when `K` is large and single
//!   flips inside a slice are frozen, they keep the classical moves alive.
//!
//! Acceptance is Metropolis (`delta <= 0` accepted without a draw, `delta >`
//! [`Real::CUTOFF`] rejected without one, otherwise one uniform against
//! `exp(-delta)`).
//!
//! # Readout and reproducibility
//!
//! A read returns its best slice: the slice of the final path with the lowest
//! exact (`f64`) energy, the first one on ties (or, with
//! `best_slice = false`, slice 0: a draw from one slice's marginal), and
//! optionally (`descent`) takes it down to a local minimum of single flips or
//! swaps by steepest descent (the `sa` module's). Read `r` of problem `p` draws
//! from `rng::stream(seed, p, r)`, so results never depend on the thread count.

use rand::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::error::{CoreError, CoreResult};
use super::rng::{open_stream, stream, OpenXoshiro};
use super::sa::{random_state, Couplings, DenseModel, Real, LANES};

mod lanes;
pub use lanes::{LANES_MAX_N, LANES_MIN_READS};

/// Cap of the dimensionless time coupling `K` (see the module docs).
pub const MAX_TIME_COUPLING: f64 = 30.0;

/// `K = -1/2 ln tanh(x)` for `x = A / (P T) >= 0`, capped at [`MAX_TIME_COUPLING`].
pub fn time_coupling(x: f64) -> f64 {
    if !(x > 0.0) {
        return MAX_TIME_COUPLING;
    }
    let k = -0.5 * x.tanh().ln();
    if k.is_finite() {
        k.clamp(0.0, MAX_TIME_COUPLING)
    } else {
        MAX_TIME_COUPLING
    }
}

/// Per-sweep `(B / (P T), K)` of a schedule `a` (transverse field), `b`
/// (problem scale) at temperature `t` with `slices` Trotter slices.
pub fn sweep_weights(a: &[f64], b: &[f64], slices: usize, t: f64) -> CoreResult<Vec<(f64, f64)>> {
    if slices == 0 {
        return Err(CoreError::invalid("num_slices", "expected an integer >= 1, got 0"));
    }
    if !(t.is_finite() && t > 0.0) {
        return Err(CoreError::invalid("temperature", format!("expected a finite number > 0, got {t}")));
    }
    if a.len() != b.len() {
        return Err(CoreError::invalid("schedule", format!("expected A and B of equal length, got {} and {}", a.len(), b.len())));
    }
    if let Some(v) = a.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
        return Err(CoreError::invalid("gamma", format!("expected finite transverse fields >= 0, got {v}")));
    }
    if let Some(v) = b.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
        return Err(CoreError::invalid("schedule", format!("expected finite problem scales B >= 0, got {v}")));
    }
    let pt = slices as f64 * t;
    Ok(a.iter()
        .zip(b)
        .map(|(&av, &bv)| (bv / pt, if slices == 1 { 0.0 } else { time_coupling(av / pt) }))
        .collect())
}

/// How the reads run.
#[derive(Clone, Debug)]
pub struct SqaConfig {
    pub seed: u64,
    /// `Some(k)`: swap moves keeping exactly `k` ones per slice; `None`: flips.
    pub k: Option<usize>,
    /// Trotter slices `P >= 1`.
    pub slices: usize,
    /// Worldline flips / exchanges after every sweep.
    pub global_moves: bool,
    /// Return the best slice (true) or slice 0 (false: a sample of one
    /// slice's marginal, the diagonal of the Trotterized density matrix).
    pub best_slice: bool,
    /// End with steepest descent from the returned slice to a local minimum
    /// (single flips, or single swaps with `k`).
    pub descent: bool,
}

/// Metropolis decision for `delta` (already in units of the slice weight).
#[inline(always)]
fn accept<F: Real>(delta: F, rng: &mut Xoshiro256PlusPlus) -> bool {
    if !(delta > F::ZERO) {
        true
    } else if delta > F::CUTOFF {
        false
    } else {
        // u < exp(-delta), decided by 1 - d <= exp(-d) <= 1 / (1 + d + d^2 / 2)
        // (widened by BOUND_MARGIN) where they suffice, else by the exponential.
        let u = F::unit(rng.next_u64());
        let one = F::from_f64(1.0);
        if u * (one + delta * (one + delta * F::from_f64(0.5))) >= F::from_f64(1.0 + BOUND_MARGIN) {
            false
        } else if u <= (one - delta) * F::from_f64(1.0 - BOUND_MARGIN) {
            true
        } else {
            u < delta.exp_neg()
        }
    }
}

/// Far wider than the rounding of the bounds in [`accept`] and the error of
/// `Real::exp_neg` (below 2e-5 relative), so the bounds never contradict it.
const BOUND_MARGIN: f64 = 1e-4;

/// Uniform index below `m` from 32 random bits.
#[inline(always)]
fn below(bits32: u64, m: usize) -> usize {
    (((bits32 & 0xFFFF_FFFF) * m as u64) >> 32) as usize
}

/// The state of one read: `P` slices of `n` bits and their local fields.
struct Path<F: Real> {
    n: usize,
    p: usize,
    x: Vec<u8>,
    f: Vec<F>,
}

impl<F: Real> Path<F> {
    fn new(m: &DenseModel<'_, F>, p: usize, x0: &[u8]) -> Self {
        let n = m.n();
        let mut f0 = vec![F::ZERO; n];
        super::sa::fields_of(m, x0, &mut f0);
        let mut x = Vec::with_capacity(p * n);
        let mut f = Vec::with_capacity(p * n);
        for _ in 0..p {
            x.extend_from_slice(x0);
            f.extend_from_slice(&f0);
        }
        Path { n, p, x, f }
    }

    /// Index of the best slice (lowest exact energy, first on ties) and its energy.
    fn best_slice(&self, m: &DenseModel<'_, F>) -> (usize, f64) {
        let mut best = (0, f64::INFINITY);
        for s in 0..self.p {
            let e = m.energy(&self.x[s * self.n..(s + 1) * self.n]);
            if e < best.1 {
                best = (s, e);
            }
        }
        best
    }
}

/// Time-term change `4 K (1 - m)` for `m` = 0, 1, 2 disagreeing neighbours.
#[inline(always)]
fn time_table<F: Real>(k: f64) -> [F; 3] {
    [F::from_f64(4.0 * k), F::ZERO, F::from_f64(-4.0 * k)]
}

#[inline(always)]
/// One flip-move sweep over all slices, then (optionally) worldline flips.
fn sweep_flip<F: Real>(m: &DenseModel<'_, F>, wc: F, tt: [F; 3], global: bool, path: &mut Path<F>, rng: &mut Xoshiro256PlusPlus) {
    let (n, p) = (path.n, path.p);
    let diag = m.diag();
    let one = F::from_f64(1.0);
    let signs = [one, -one];
    assert!(diag.len() == n && path.x.len() == p * n && path.f.len() == p * n);
    for s in 0..p {
        let (sp, sn) = ((s + p - 1) % p, (s + 1) % p);
        let (b, bp, bn) = (s * n, sp * n, sn * n);
        for i in 0..n {
            // SAFETY: s, sp, sn < p and i < n; x and f hold p n entries, diag n (asserted above).
            let (xi, xa, xb, fi, qi) = unsafe {
                (
                    *path.x.get_unchecked(b + i),
                    *path.x.get_unchecked(bp + i),
                    *path.x.get_unchecked(bn + i),
                    *path.f.get_unchecked(b + i),
                    *diag.get_unchecked(i),
                )
            };
            let mis = ((xi ^ xa) + (xi ^ xb)) as usize;
            // dE of the flip: +d for 0 -> 1, -d for 1 -> 0.
            let sign = signs[(xi & 1) as usize];
            let delta = wc * (sign * (qi + fi)) + tt[mis & 3];
            if accept(delta, rng) {
                path.x[b + i] = xi ^ 1;
                let f = &mut path.f[b..b + n];
                if xi == 0 {
                    m.add_row(i, f);
                } else {
                    m.sub_row(i, f);
                }
            }
        }
    }
    if global && p > 1 {
        for i in 0..n {
            let mut de = F::ZERO;
            for s in 0..p {
                let d = diag[i] + path.f[s * n + i];
                de += if path.x[s * n + i] == 0 { d } else { -d };
            }
            if accept(wc * de, rng) {
                for s in 0..p {
                    let xi = path.x[s * n + i];
                    path.x[s * n + i] = xi ^ 1;
                    let sign = if xi == 0 { one } else { -one };
                    m.axpy_row(i, sign, &mut path.f[s * n..(s + 1) * n]);
                }
            }
        }
    }
}

/// Selected / unselected index lists of every slice, for swap moves.
struct Lists {
    k: usize,
    ones: Vec<u32>,
    zeros: Vec<u32>,
    /// Position of each variable in its slice's list.
    pos: Vec<u32>,
}

impl Lists {
    fn new(path: &Path<impl Real>, k: usize) -> Self {
        let (n, p) = (path.n, path.p);
        let mut ones = Vec::with_capacity(p * k);
        let mut zeros = Vec::with_capacity(p * (n - k));
        let mut pos = vec![0u32; p * n];
        for s in 0..p {
            for i in 0..n {
                if path.x[s * n + i] == 1 {
                    pos[s * n + i] = (ones.len() - s * k) as u32;
                    ones.push(i as u32);
                } else {
                    pos[s * n + i] = (zeros.len() - s * (n - k)) as u32;
                    zeros.push(i as u32);
                }
            }
        }
        Lists { k, ones, zeros, pos }
    }

    /// Record that in slice `s`, selected `i` and unselected `j` traded places.
    #[inline(always)]
    fn swap(&mut self, n: usize, s: usize, i: usize, j: usize) {
        let (pi, pj) = (self.pos[s * n + i] as usize, self.pos[s * n + j] as usize);
        self.ones[s * self.k + pi] = j as u32;
        self.zeros[s * (n - self.k) + pj] = i as u32;
        self.pos[s * n + i] = pj as u32;
        self.pos[s * n + j] = pi as u32;
    }
}

/// Apply the swap `i` (1 -> 0), `j` (0 -> 1) in slice `s`.
#[inline(always)]
fn apply_swap<F: Real>(m: &DenseModel<'_, F>, path: &mut Path<F>, lists: &mut Lists, s: usize, i: usize, j: usize) {
    let n = path.n;
    path.x[s * n + i] = 0;
    path.x[s * n + j] = 1;
    let f = &mut path.f[s * n..(s + 1) * n];
    let (ri, rj) = (m.row(i), m.row(j));
    for ((fv, &a), &b) in f.iter_mut().zip(ri).zip(rj) {
        *fv += b - a;
    }
    lists.swap(n, s, i, j);
}

#[inline(always)]
/// One swap-move sweep (`n` attempts per slice), then (optionally) worldline exchanges.
fn sweep_swap<F: Real>(
    m: &DenseModel<'_, F>,
    wc: F,
    tt: [F; 3],
    global: bool,
    path: &mut Path<F>,
    lists: &mut Lists,
    rng: &mut Xoshiro256PlusPlus,
) {
    let (n, p, k) = (path.n, path.p, lists.k);
    if k == 0 || k == n {
        return;
    }
    let diag = m.diag();
    for s in 0..p {
        let (sp, sn) = ((s + p - 1) % p, (s + 1) % p);
        for _ in 0..n {
            let r = rng.next_u64();
            let i = lists.ones[s * k + below(r, k)] as usize;
            let j = lists.zeros[s * (n - k) + below(r >> 32, n - k)] as usize;
            let x = &path.x;
            // i is 1, j is 0 in slice s.
            let mi = ((1 ^ x[sp * n + i]) + (1 ^ x[sn * n + i])) as usize;
            let mj = (x[sp * n + j] + x[sn * n + j]) as usize;
            let f = &path.f[s * n..(s + 1) * n];
            let de = (diag[j] + f[j]) - (diag[i] + f[i]) - m.row(i)[j];
            let delta = wc * de + tt[mi] + tt[mj];
            if accept(delta, rng) {
                apply_swap(m, path, lists, s, i, j);
            }
        }
    }
    if global && p > 1 {
        for _ in 0..n {
            let r = rng.next_u64();
            let i = lists.ones[below(r, k)] as usize;
            let j = lists.zeros[below(r >> 32, n - k)] as usize;
            let mut de = F::ZERO;
            for s in 0..p {
                let (xi, xj) = (path.x[s * n + i], path.x[s * n + j]);
                if xi != xj {
                    let f = &path.f[s * n..(s + 1) * n];
                    let (di, dj) = (diag[i] + f[i], diag[j] + f[j]);
                    let w = m.row(i)[j];
                    de += if xi == 1 { dj - di - w } else { di - dj - w };
                }
            }
            if accept(wc * de, rng) {
                for s in 0..p {
                    let (xi, xj) = (path.x[s * n + i], path.x[s * n + j]);
                    if xi == 1 && xj == 0 {
                        apply_swap(m, path, lists, s, i, j);
                    } else if xi == 0 && xj == 1 {
                        apply_swap(m, path, lists, s, j, i);
                    }
                }
            }
        }
    }
}

/// [`anneal_read`] compiled for AVX2 + FMA where the CPU has them (the same
/// IEEE operations, so the same results; the row updates get 8-wide vectors).
pub fn anneal_read_fast<F: Real>(
    m: &DenseModel<'_, F>,
    weights: &[(f64, f64)],
    cfg: &SqaConfig,
    x0: &[u8],
    rng: &mut Xoshiro256PlusPlus,
    out: &mut [u8],
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the features were detected at run time.
        return unsafe { anneal_read_avx2(m, weights, cfg, x0, rng, out) };
    }
    anneal_read(m, weights, cfg, x0, rng, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn anneal_read_avx2<F: Real>(
    m: &DenseModel<'_, F>,
    weights: &[(f64, f64)],
    cfg: &SqaConfig,
    x0: &[u8],
    rng: &mut Xoshiro256PlusPlus,
    out: &mut [u8],
) -> f64 {
    anneal_read(m, weights, cfg, x0, rng, out)
}

/// One read from the classical state `x0` (copied into every slice); writes
/// the best slice into `out` and returns its exact energy.
#[inline(always)]
pub fn anneal_read<F: Real>(
    m: &DenseModel<'_, F>,
    weights: &[(f64, f64)],
    cfg: &SqaConfig,
    x0: &[u8],
    rng: &mut Xoshiro256PlusPlus,
    out: &mut [u8],
) -> f64 {
    let n = m.n();
    let p = cfg.slices.max(1);
    let mut path = Path::new(m, p, x0);
    match cfg.k {
        None => {
            for &(wc, kt) in weights {
                sweep_flip(m, F::from_f64(wc), time_table(kt), cfg.global_moves, &mut path, rng);
            }
        }
        Some(k) => {
            let mut lists = Lists::new(&path, k);
            for &(wc, kt) in weights {
                sweep_swap(m, F::from_f64(wc), time_table(kt), cfg.global_moves, &mut path, &mut lists, rng);
            }
        }
    }
    let (s, e) = if cfg.best_slice { path.best_slice(m) } else { (0, m.energy(&path.x[..n])) };
    out.copy_from_slice(&path.x[s * n..(s + 1) * n]);
    if !cfg.descent || n == 0 {
        return e;
    }
    let f = &mut path.f[s * n..(s + 1) * n];
    match cfg.k {
        None => {
            super::sa::fields_of(m, out, f);
            super::sa::descend_flip(m, out, f);
        }
        // A stall limit of 0: steepest 1-swap descent only, no tabu search.
        Some(_) => {
            super::sa::tabu_polish(m, 0, rng, out, f);
        }
    }
    m.energy(out)
}

/// The readout of a flip-move path `x` (`p` slices of `n`), as
/// [`anneal_read`] makes it: best slice (or slice 0), then the descent.
fn readout_flip<F: Real>(m: &DenseModel<'_, F>, cfg: &SqaConfig, p: usize, x: &[u8], out: &mut [u8]) -> f64 {
    let n = m.n();
    let (mut s, mut e) = (0, m.energy(&x[..n]));
    if cfg.best_slice {
        for t in 1..p {
            let et = m.energy(&x[t * n..(t + 1) * n]);
            if et < e {
                (s, e) = (t, et);
            }
        }
    }
    out.copy_from_slice(&x[s * n..(s + 1) * n]);
    if !cfg.descent || n == 0 {
        return e;
    }
    let mut f = vec![F::ZERO; n];
    super::sa::fields_of(m, out, &mut f);
    super::sa::descend_flip(m, out, &mut f);
    m.energy(out)
}

/// Read `r` of problem `problem`: its initial state (given or random from its
/// stream), then [`anneal_read`].
#[allow(clippy::too_many_arguments)]
pub fn run_read<F: Real>(
    m: &DenseModel<'_, F>,
    weights: &[(f64, f64)],
    cfg: &SqaConfig,
    problem: u64,
    read: u64,
    init: Option<&[u8]>,
    out: &mut [u8],
) -> f64 {
    let n = m.n();
    let mut rng = stream(cfg.seed, problem, read);
    let mut x0 = vec![0u8; n];
    match init {
        Some(v) => x0.copy_from_slice(v),
        None => random_state(&mut rng, n, cfg.k, &mut x0),
    }
    anneal_read_fast(m, weights, cfg, &x0, &mut rng, out)
}

/// Reads `first_read..first_read + es.len()` (at most [`LANES`]) of problem
/// `problem`, states into `xs` (`n` each), energies into `es`; `init` holds
/// their initial states if given. Flip moves on a dense `f32` model with
/// `n <= LANES_MAX_N` and at least [`LANES_MIN_READS`] reads run in SIMD lanes
/// where the CPU has AVX2 and FMA; every read's result is the one
/// [`run_read`] gives it (tested), so the grouping never changes results.
#[allow(clippy::too_many_arguments)]
pub fn run_reads<F: Real>(
    m: &DenseModel<'_, F>,
    weights: &[(f64, f64)],
    cfg: &SqaConfig,
    problem: u64,
    first_read: u64,
    init: Option<&[u8]>,
    xs: &mut [u8],
    es: &mut [f64],
) {
    let n = m.n();
    let reads = es.len();
    assert!(reads <= LANES && xs.len() == reads * n && init.map_or(true, |v| v.len() == reads * n));
    let one_by_one = |xs: &mut [u8], es: &mut [f64]| {
        for (l, (x, e)) in xs.chunks_mut(n.max(1)).zip(es.iter_mut()).enumerate() {
            let ini = init.map(|v| &v[l * n..(l + 1) * n]);
            *e = run_read(m, weights, cfg, problem, first_read + l as u64, ini, x);
        }
    };
    #[cfg(target_arch = "x86_64")]
    if let Some(m32) = m.as_dense_f32() {
        if cfg.k.is_none() && n > 0 && n <= LANES_MAX_N && reads >= LANES_MIN_READS && super::sa::has_avx2() {
            let p = cfg.slices.max(1);
            let mut x0s = vec![0u8; LANES * n];
            let mut rngs: [OpenXoshiro; LANES] = std::array::from_fn(|_| OpenXoshiro { s: [1, 2, 3, 4] });
            for l in 0..reads {
                let mut rng = open_stream(cfg.seed, problem, first_read + l as u64);
                let x0 = &mut x0s[l * n..(l + 1) * n];
                match init {
                    Some(v) => x0.copy_from_slice(&v[l * n..(l + 1) * n]),
                    None => random_state(&mut rng, n, None, x0),
                }
                rngs[l] = rng;
            }
            let mut paths = vec![0u8; LANES * p * n];
            // SAFETY: AVX2 and FMA were detected at run time.
            unsafe { lanes::anneal_flip_lanes_x86(m32, weights, p, cfg.global_moves, &mut rngs, &x0s, &mut paths) };
            for (l, (x, e)) in xs.chunks_mut(n).zip(es.iter_mut()).enumerate() {
                *e = readout_flip(m, cfg, p, &paths[l * p * n..(l + 1) * p * n], x);
            }
            return;
        }
    }
    one_by_one(xs, es);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(n: usize, seed: u64) -> Vec<f64> {
        let mut r = stream(seed, 0, 0);
        let mut q = vec![0.0; n * n];
        for a in 0..n {
            for b in a..n {
                q[a * n + b] = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            }
        }
        q
    }

    #[test]
    fn time_coupling_matches_formula() {
        for x in [1e-3, 0.1, 1.0, 3.0] {
            let k = time_coupling(x);
            // e^{2K} = coth(x)
            assert!(((2.0 * k).exp() - 1.0 / x.tanh()).abs() < 1e-9 * (2.0 * k).exp());
        }
        assert_eq!(time_coupling(0.0), MAX_TIME_COUPLING);
        assert!(time_coupling(50.0) >= 0.0);
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(sweep_weights(&[1.0], &[1.0], 0, 1.0).is_err());
        assert!(sweep_weights(&[1.0], &[1.0], 4, 0.0).is_err());
        assert!(sweep_weights(&[-1.0], &[1.0], 4, 1.0).is_err());
        assert!(sweep_weights(&[1.0], &[f64::NAN], 4, 1.0).is_err());
        assert!(sweep_weights(&[1.0, 2.0], &[1.0], 4, 1.0).is_err());
    }

    #[test]
    fn fields_stay_exact_and_swaps_keep_k() {
        let n = 12;
        let q = model(n, 3);
        let m = DenseModel::<f64>::new(&q, n, 0.0).unwrap();
        let a: Vec<f64> = (0..50).map(|t| 2.0 * (1.0 - t as f64 / 49.0)).collect();
        let b = vec![1.0; 50];
        let w = sweep_weights(&a, &b, 6, 0.1).unwrap();
        for k in [None, Some(4)] {
            for global in [false, true] {
                let cfg = SqaConfig { seed: 5, k, slices: 6, global_moves: global, best_slice: true, descent: false };
                let mut rng = stream(5, 0, 0);
                let mut x0 = vec![0u8; n];
                random_state(&mut rng, n, k, &mut x0);
                let mut path = Path::new(&m, 6, &x0);
                let mut lists = k.map(|k| Lists::new(&path, k));
                for &(wc, kt) in &w {
                    match lists.as_mut() {
                        None => sweep_flip(&m, wc, time_table(kt), global, &mut path, &mut rng),
                        Some(l) => sweep_swap(&m, wc, time_table(kt), global, &mut path, l, &mut rng),
                    }
                }
                for s in 0..6 {
                    let xs = &path.x[s * n..(s + 1) * n];
                    let mut f = vec![0.0; n];
                    crate::core::sa::fields_of(&m, xs, &mut f);
                    for i in 0..n {
                        assert!((f[i] - path.f[s * n + i]).abs() < 1e-9);
                    }
                    if let Some(k) = k {
                        assert_eq!(xs.iter().filter(|&&v| v == 1).count(), k);
                        let l = lists.as_ref().unwrap();
                        for t in 0..k {
                            let i = l.ones[s * k + t] as usize;
                            assert_eq!(xs[i], 1);
                            assert_eq!(l.pos[s * n + i] as usize, t);
                        }
                    }
                }
                let mut out = vec![0u8; n];
                let e = run_read(&m, &w, &cfg, 0, 1, None, &mut out);
                assert!((e - m.energy(&out)).abs() < 1e-12);
                // The AVX2 build of a read makes the same decisions as the plain one (f32 too).
                let m32 = DenseModel::<f32>::new(&q, n, 0.0).unwrap();
                for (best, slices) in [(true, 6), (false, 6), (true, 16)] {
                    let cfg = SqaConfig { best_slice: best, slices, ..cfg.clone() };
                    let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
                    let ea = anneal_read(&m32, &w, &cfg, &x0, &mut stream(1, 2, 3), &mut a);
                    let eb = anneal_read_fast(&m32, &w, &cfg, &x0, &mut stream(1, 2, 3), &mut b);
                    assert_eq!((a, ea), (b, eb));
                }
            }
        }
    }

    #[test]
    fn lane_reads_equal_scalar_reads() {
        // Every read of a lane group is the scalar kernel's read, bit for bit,
        // over slices (1, 2, odd, many), global moves, readouts, group sizes,
        // and temperatures from frozen to hot.
        for (n, seed) in [(1usize, 1u64), (7, 2), (12, 3), (40, 4)] {
            let q = model(n, seed);
            let m32 = DenseModel::<f32>::new(&q, n, 0.5).unwrap();
            let steps = 30;
            let a: Vec<f64> = (0..steps).map(|t| 3.0 * (1.0 - t as f64 / (steps - 1) as f64)).collect();
            let b: Vec<f64> = (0..steps).map(|t| 0.2 + t as f64 / steps as f64).collect();
            for (slices, temp) in [(1usize, 0.3), (2, 0.05), (3, 1.0), (6, 0.1), (16, 0.02)] {
                let w = sweep_weights(&a, &b, slices, temp).unwrap();
                for (global, best, descent) in [(false, true, false), (true, true, true), (true, false, false), (false, false, true)] {
                    let cfg = SqaConfig { seed: 7 + n as u64, k: None, slices, global_moves: global, best_slice: best, descent };
                    for (reads, avx2) in [(LANES_MIN_READS, false), (LANES, false), (LANES, true)] {
                        lanes::FORCE_AVX2.with(|c| c.set(avx2));
                        let (mut xs, mut es) = (vec![0u8; reads * n], vec![0.0; reads]);
                        run_reads(&m32, &w, &cfg, 3, 16, None, &mut xs, &mut es);
                        let init: Vec<u8> = (0..reads * n).map(|t| ((t * 7 + 3) % 5 < 2) as u8).collect();
                        let (mut xi, mut ei) = (vec![0u8; reads * n], vec![0.0; reads]);
                        run_reads(&m32, &w, &cfg, 3, 16, Some(&init), &mut xi, &mut ei);
                        for r in 0..reads {
                            let mut x = vec![0u8; n];
                            let e = run_read(&m32, &w, &cfg, 3, 16 + r as u64, None, &mut x);
                            assert_eq!((&xs[r * n..(r + 1) * n], es[r]), (&x[..], e), "n {n} P {slices} read {r}");
                            let e = run_read(&m32, &w, &cfg, 3, 16 + r as u64, Some(&init[r * n..(r + 1) * n]), &mut x);
                            assert_eq!((&xi[r * n..(r + 1) * n], ei[r]), (&x[..], e), "n {n} P {slices} read {r} (init)");
                        }
                    }
                }
            }
        }
    }
}

//! Exact statevector physics of quantum annealing.
//!
//! `H(s) = A(s) H_driver + B(s) H_problem`, `s = t / T`, with `H_problem` the
//! diagonal energy `E(x)` of a QUBO over the `2^d` basis states.
//!
//! **Bit convention**: basis index `x = sum_i x_i 2^i`, i.e. variable (qubit)
//! `i` is bit `i` of the index, little-endian (qubit 0 is the least
//! significant bit). `numpy.kron(op_{d-1}, ..., op_0)` builds the same
//! ordering.
//!
//! * [`statevector`]: transverse-field evolution (Trotter-Suzuki splitting,
//!   fixed step or global error control by step doubling).
//! * [`xy`]: the Hamming-weight-preserving XY driver in the `C(d, k)`
//!   subspace (Krylov exponentials, 4th-order commutator-free Magnus).
//! * [`lanczos`]: matrix-free Lanczos with locking for the lowest levels.
//!
//! States are stored split (real and imaginary arrays), so the real
//! Walsh-Hadamard / rotation passes and the phase loops vectorise.

/// A vector kernel compiled twice, the baseline build and an AVX2 one chosen at run time.
/// AVX2 without FMA performs the same IEEE operations in the same order, only in wider
/// registers, so both builds give the same bits (the spectra do not depend on the CPU).
macro_rules! wide_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[inline]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                imp($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            {
                if $crate::core::quantum::has_avx2() {
                    // SAFETY: the CPU supports AVX2 (checked once by `has_avx2`).
                    return unsafe { wide($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}

/// Whether this CPU runs the AVX2 builds of the `wide_kernel!` kernels (checked once).
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

pub mod lanczos;
pub mod statevector;
pub mod tridiag;
pub mod vecops;
pub mod xy;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::core::error::{CoreError, CoreResult};

/// The cancel flag the long quantum kernels poll: another thread (the
/// bindings' thread, on Ctrl-C) sets it, and a kernel that sees it stops
/// within one step and returns [`CoreError::Cancelled`] (never a partial
/// result). The anneals poll it before every stage of every step
/// ([`statevector::evolve_steps`], [`xy::XySystem::evolve_steps`]) and between
/// the runs of the step doubling; an eigen-solver should poll
/// [`Cancel::check`] once per matrix-vector product (or restart) and return
/// its error.
#[derive(Debug, Default)]
pub struct Cancel(AtomicBool);

impl Cancel {
    pub const fn new() -> Self {
        Cancel(AtomicBool::new(false))
    }
    /// Ask the kernels polling this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// `Err(CoreError::Cancelled)` once the flag is set.
    #[inline]
    pub fn check(&self) -> CoreResult<()> {
        if self.is_cancelled() {
            Err(CoreError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A flag nobody raises, for callers that cannot be interrupted.
pub static NEVER: Cancel = Cancel::new();

/// Hard upper limit on qubits for the full `2^d` space (the Python layer
/// applies a lower, memory-based default).
pub const MAX_QUBITS: usize = 30;

/// Bytes per basis state held by one transverse-field anneal with error
/// control: energies (8), the state (16) and the previous run's state (16).
pub const BYTES_PER_AMPLITUDE: usize = 40;

/// Refuse `d` above `limit` with the memory it would need.
pub fn check_qubits(d: usize, limit: usize) -> CoreResult<()> {
    let limit = limit.min(MAX_QUBITS);
    if d > limit {
        let gib = (BYTES_PER_AMPLITUDE as f64) * (2f64).powi(d as i32) / (1u64 << 30) as f64;
        return Err(CoreError::TooLarge {
            message: format!(
                "d = {d} qubits is too large for exact statevector simulation: the limit is {limit} \
                 qubits, and d = {d} would need about {gib:.3} GiB ({BYTES_PER_AMPLITUDE} bytes per \
                 basis state x 2^{d}); use simulated quantum annealing (qfsel.samplers) instead"
            ),
        });
    }
    Ok(())
}

/// A piecewise-linear annealing schedule `A(s)`, `B(s)` on `0 = s_0 < ... < s_m = 1`.
#[derive(Clone, Debug)]
pub struct Schedule {
    s: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Schedule {
    /// Validate a table: at least 2 points, `s` strictly increasing from 0 to 1,
    /// `A`, `B` finite and non-negative.
    pub fn new(s: Vec<f64>, a: Vec<f64>, b: Vec<f64>) -> CoreResult<Self> {
        if s.len() < 2 || a.len() != s.len() || b.len() != s.len() {
            return Err(CoreError::invalid(
                "schedule",
                format!("expected >= 2 points with equal lengths, got {}, {}, {}", s.len(), a.len(), b.len()),
            ));
        }
        if s[0] != 0.0 || s[s.len() - 1] != 1.0 {
            return Err(CoreError::invalid("schedule", "expected s to run from 0 to 1"));
        }
        if s.windows(2).any(|w| !(w[1] > w[0])) {
            return Err(CoreError::invalid("schedule", "expected strictly increasing s"));
        }
        if a.iter().chain(b.iter()).any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(CoreError::invalid("schedule", "expected finite, non-negative A and B"));
        }
        Ok(Schedule { s, a, b })
    }

    /// The paper's linear schedule `A = 1 - s`, `B = s`.
    pub fn linear() -> Self {
        Schedule { s: vec![0.0, 1.0], a: vec![1.0, 0.0], b: vec![0.0, 1.0] }
    }

    /// `(A(s), B(s))` by linear interpolation (s clamped to [0, 1]).
    #[inline]
    pub fn at(&self, s: f64) -> (f64, f64) {
        let s = s.clamp(0.0, 1.0);
        let m = self.s.len();
        // index of the interval [s_i, s_{i+1}] holding s
        let i = match self.s.binary_search_by(|v| v.partial_cmp(&s).unwrap()) {
            Ok(i) => i.min(m - 2),
            Err(i) => i.saturating_sub(1).min(m - 2),
        };
        let w = (s - self.s[i]) / (self.s[i + 1] - self.s[i]);
        (
            self.a[i] + w * (self.a[i + 1] - self.a[i]),
            self.b[i] + w * (self.b[i + 1] - self.b[i]),
        )
    }
}

/// Diagonal energies `E(x) = sum_i Q_ii x_i + sum_{i<j} (Q_ij + Q_ji) x_i x_j + offset`
/// of all `2^n` basis states (bit convention of the module).
pub fn diagonal_energies(q: &[f64], n: usize, offset: f64) -> Vec<f64> {
    let dim = 1usize << n;
    let mut e = vec![0.0; dim];
    e[0] = offset;
    for i in 0..n {
        let half = 1usize << i;
        let qii = q[i * n + i];
        let coup: Vec<f64> = (0..i).map(|j| q[i * n + j] + q[j * n + i]).collect();
        let (lo, hi) = e[..2 * half].split_at_mut(half);
        for (x, (l, h)) in lo.iter().zip(hi.iter_mut()).enumerate() {
            let mut acc = *l + qii;
            let mut bits = x;
            while bits != 0 {
                let j = bits.trailing_zeros() as usize;
                acc += coup[j];
                bits &= bits - 1;
            }
            *h = acc;
        }
    }
    e
}

/// The ground manifold of `energies`: its energy and the indices within
/// `tol` of it (`tol` absolute).
pub fn ground_manifold(energies: &[f64], tol: f64) -> (f64, Vec<usize>) {
    let e0 = energies.iter().cloned().fold(f64::INFINITY, f64::min);
    let idx = energies
        .iter()
        .enumerate()
        .filter(|(_, &e)| e <= e0 + tol)
        .map(|(i, _)| i)
        .collect();
    (e0, idx)
}

/// A complex number (f64 pair) for the few scalar complex operations.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub fn new(re: f64, im: f64) -> Self {
        C64 { re, im }
    }
    pub fn cis(theta: f64) -> Self {
        let (s, c) = theta.sin_cos();
        C64 { re: c, im: s }
    }
    pub fn mul(self, o: C64) -> C64 {
        C64::new(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)
    }
    pub fn norm_sqr(self) -> f64 {
        self.re * self.re + self.im * self.im
    }
}

/// `(sin x, cos x)` for moderate |x| (< 2^40), branch-free so the loops over
/// amplitudes vectorise: reduction modulo 2 pi (two-part constant), a Taylor
/// polynomial on [-pi/8, pi/8], then three angle doublings. Absolute error
/// below 5e-15 for |x| < 1e4 (tested against `f64::sin_cos`).
#[inline(always)]
pub fn sincos(x: f64) -> (f64, f64) {
    const INV_2PI: f64 = 0.159_154_943_091_895_35;
    // 2 pi in three parts; the first two have 31 significant bits, so n * part is exact for |n| < 2^22
    const TWO_PI_1: f64 = 6.283_185_306_936_502_5;
    const TWO_PI_2: f64 = 2.430_840_201_437_384e-10;
    const TWO_PI_3: f64 = 1.165_092_822_437_342_4e-19;
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: round to nearest
    let n = (x * INV_2PI + MAGIC) - MAGIC;
    let r = ((x - n * TWO_PI_1) - n * TWO_PI_2) - n * TWO_PI_3; // in [-pi, pi]
    let z = r * 0.125;
    let z2 = z * z;
    // sin z, cos z to ~1e-17 on |z| <= pi/8
    let s = z
        * (1.0
            + z2 * (-1.0 / 6.0
                + z2 * (1.0 / 120.0
                    + z2 * (-1.0 / 5040.0 + z2 * (1.0 / 362_880.0 + z2 * (-1.0 / 39_916_800.0 + z2 * (1.0 / 6_227_020_800.0)))))));
    let c = 1.0
        + z2 * (-0.5
            + z2 * (1.0 / 24.0
                + z2 * (-1.0 / 720.0 + z2 * (1.0 / 40_320.0 + z2 * (-1.0 / 3_628_800.0 + z2 * (1.0 / 479_001_600.0))))));
    // three doublings: (s, c) -> (2 s c, c^2 - s^2)
    let (s, c) = (2.0 * s * c, c * c - s * s);
    let (s, c) = (2.0 * s * c, c * c - s * s);
    (2.0 * s * c, c * c - s * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sincos_matches_std() {
        let mut worst: f64 = 0.0;
        for i in 0..200_001 {
            let x = -1.0e4 + i as f64 * 0.1;
            let (s, c) = sincos(x);
            let (s0, c0) = x.sin_cos();
            worst = worst.max((s - s0).abs()).max((c - c0).abs());
        }
        assert!(worst < 5e-15, "worst {worst}");
    }

    #[test]
    fn energies_match_brute_force() {
        let n = 5;
        let q: Vec<f64> = (0..n * n).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.1).collect();
        let e = diagonal_energies(&q, n, 0.5);
        for x in 0..(1usize << n) {
            let mut want = 0.5;
            for i in 0..n {
                for j in 0..n {
                    if (x >> i) & 1 == 1 && (x >> j) & 1 == 1 && (i == j || i < j || j < i) {
                        if i == j {
                            want += q[i * n + i];
                        } else if i < j {
                            want += q[i * n + j] + q[j * n + i];
                        }
                    }
                }
            }
            assert!((e[x] - want).abs() < 1e-12);
        }
    }

    #[test]
    fn schedule_interpolates() {
        let s = Schedule::new(vec![0.0, 0.5, 1.0], vec![1.0, 0.2, 0.0], vec![0.0, 0.4, 1.0]).unwrap();
        let (a, b) = s.at(0.25);
        assert!((a - 0.6).abs() < 1e-15 && (b - 0.2).abs() < 1e-15);
        assert_eq!(s.at(1.0), (0.0, 1.0));
        assert!(Schedule::new(vec![0.0, 0.0, 1.0], vec![0.0; 3], vec![0.0; 3]).is_err());
        assert!(check_qubits(31, 24).is_err());
    }
}

//! The single-flip annealer and its descent.

use rand::RngCore;

use super::model::{fields_of, Couplings};
use super::real::Real;
use super::{has_avx2, metropolis_flip};

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

/// Steepest single-flip descent to a local minimum (fields must match `x`):
/// the flip that lowers the energy most among those whose change is below
/// `-tol_i` ([`Couplings::flip_tolerance`], the rounding of that variable's
/// own field: a tolerance scaled by the largest coefficient would leave small
/// variables beside huge ones unflipped).
#[inline(always)]
pub fn descend_flip<F: Real, C: Couplings<F>>(c: &C, x: &mut [u8], f: &mut [F]) {
    let n = c.n();
    let diag = c.diag();
    let tol = c.tolerance();
    for _ in 0..4 * n + 16 {
        let mut best = F::ZERO;
        let mut arg = usize::MAX;
        for i in 0..n {
            let d = diag[i] + f[i];
            let delta = if x[i] != 0 { -d } else { d };
            if delta < best && (delta < -tol || delta < -c.flip_tolerance(i)) {
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

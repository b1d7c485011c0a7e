//! Matrix-free Lanczos for the lowest levels of a real symmetric operator.
//!
//! One level at a time with locking: the Krylov space of level `l` is kept
//! orthogonal to the `l` converged (locked) vectors (full reorthogonalisation
//! against them), with partial reorthogonalisation against the Krylov basis
//! (a full classical Gram-Schmidt pass, repeated when needed, whenever the
//! measured loss of orthogonality exceeds sqrt(eps), and every 40 steps; a reorthogonalised
//! vector is always followed by a reorthogonalised next one, so that both vectors of the
//! three-term recurrence are clean), and explicit restarts from the current
//! Ritz vector when the basis reaches `max_krylov` vectors. Degenerate
//! levels are found one copy after another. Start vectors are the caller's
//! warm starts (the previous point of an `s` grid) plus a small
//! deterministic pseudo-random component, so that no symmetry sector is
//! missed.
//!
//! Dot products are summed over fixed chunks in a fixed order, so results
//! do not depend on the number of threads.

use rayon::prelude::*;

use super::tridiag::lowest_two;
use crate::core::rng::splitmix64;

/// A real symmetric linear operator applied matrix-free.
pub trait RealOperator: Sync {
    fn dim(&self) -> usize;
    /// `out = H v`.
    fn apply(&self, v: &[f64], out: &mut [f64]);
}

/// Chunk of the deterministic reductions and the parallel loops.
pub const CHUNK: usize = 1 << 13;
/// Vectors at least this long are processed in parallel.
pub const PAR_MIN: usize = 1 << 15;

/// `sum x_i y_i` of one chunk in 8 interleaved partial sums (so that it vectorises),
/// combined in a fixed order.
#[inline]
pub fn dot_chunk(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    if a.len() >= PAR_MIN {
        let parts: Vec<f64> = a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)).map(|(x, y)| dot_chunk(x, y)).collect();
        parts.iter().sum()
    } else {
        a.chunks(CHUNK).zip(b.chunks(CHUNK)).map(|(x, y)| dot_chunk(x, y)).sum()
    }
}

/// `y += alpha * x`.
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    if y.len() >= PAR_MIN {
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(yc, xc)| {
            for (p, q) in yc.iter_mut().zip(xc) {
                *p += alpha * q;
            }
        });
    } else {
        for (p, q) in y.iter_mut().zip(x) {
            *p += alpha * q;
        }
    }
}

pub fn scale(alpha: f64, y: &mut [f64]) {
    for p in y.iter_mut() {
        *p *= alpha;
    }
}

fn orthogonalise(w: &mut [f64], against: &[&[f64]]) {
    let before = dot(w, w).sqrt();
    for pass in 0..2 {
        let coef: Vec<f64> = against.iter().map(|u| dot(u, w)).collect();
        for (u, c) in against.iter().zip(coef) {
            axpy(-c, u, w);
        }
        // a second pass only when the first one removed most of the vector
        if pass == 0 && dot(w, w).sqrt() > 0.7 * before {
            break;
        }
    }
}

/// Deterministic pseudo-random entries in [-0.5, 0.5).
pub fn pseudo_random(dim: usize, seed: u64) -> Vec<f64> {
    let mut s = seed ^ 0x5EED_0F_1A2C_u64;
    (0..dim)
        .map(|_| (splitmix64(&mut s) >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        .collect()
}

/// Options of [`lowest_levels`].
#[derive(Clone, Copy, Debug)]
pub struct LanczosOptions {
    /// Converged when the residual `||H x - theta x||` is at most `tol * max(1, |theta|)`
    /// (ARPACK's test), or with `kato_temple` its bound `residual^2 / gap`.
    pub tol: f64,
    /// Largest Krylov basis before a restart.
    pub max_krylov: usize,
    /// Restarts per level before giving up (the level is then returned unconverged).
    pub max_restarts: usize,
    /// Weight of the pseudo-random component mixed into warm starts.
    pub mix: f64,
    /// Also accept the Kato-Temple bound `residual^2 / gap` (fewer iterations, but a level
    /// the Krylov space has not yet seen can make it wrong; off by default).
    pub kato_temple: bool,
}

impl Default for LanczosOptions {
    fn default() -> Self {
        LanczosOptions { tol: 1e-9, max_krylov: 60, max_restarts: 200, mix: 1e-8, kato_temple: false }
    }
}

/// What [`lowest_levels`] found.
#[derive(Clone, Debug)]
pub struct Levels {
    /// Eigenvalues, ascending.
    pub values: Vec<f64>,
    /// Unit eigenvectors in the order of `values`.
    pub vectors: Vec<Vec<f64>>,
    /// Residual norms.
    pub residuals: Vec<f64>,
    /// Operator applications used.
    pub matvecs: usize,
    /// Whether every level met the tolerance.
    pub converged: bool,
}

/// The `levels` lowest eigenpairs of `op`, warm-started from `starts`.
pub fn lowest_levels(op: &dyn RealOperator, levels: usize, starts: &[Vec<f64>], opts: LanczosOptions) -> Levels {
    let dim = op.dim();
    let levels = levels.min(dim);
    let mut locked: Vec<Vec<f64>> = Vec::with_capacity(levels);
    let mut values = Vec::with_capacity(levels);
    let mut residuals = Vec::with_capacity(levels);
    let mut matvecs = 0usize;
    let mut all_converged = true;
    let mut w = vec![0.0; dim];
    let mut next_ritz: Option<Vec<f64>> = None;
    for level in 0..levels {
        let mut v0 = pseudo_random(dim, level as u64 + 1);
        if let Some(st) = starts.get(level) {
            let r = dot(&v0, &v0).sqrt();
            scale(opts.mix / r.max(1e-300), &mut v0);
            axpy(1.0, st, &mut v0);
            // plus the next Ritz vector of the previous level's Krylov space, sign-aligned: the
            // same eigenvector when levels keep their order (a better start), a second
            // direction when they do not (so a degenerate copy is not lost)
            if let Some(nr) = next_ritz.take() {
                let c = dot(st, &nr);
                axpy(if c >= 0.0 { 1.0 } else { -1.0 }, &nr, &mut v0);
            }
        }
        let mut converged = false;
        let mut theta = 0.0;
        let mut res;
        let mut residual_norm = f64::INFINITY;
        let mut x = vec![0.0; dim];
        for restart in 0..=opts.max_restarts {
            {
                let refs: Vec<&[f64]> = locked.iter().map(|v| v.as_slice()).collect();
                orthogonalise(&mut v0, &refs);
            }
            let nrm = dot(&v0, &v0).sqrt();
            if !(nrm > 1e-12) {
                v0 = pseudo_random(dim, 1000 + level as u64 * 7919 + restart as u64);
                let refs: Vec<&[f64]> = locked.iter().map(|v| v.as_slice()).collect();
                orthogonalise(&mut v0, &refs);
                let n2 = dot(&v0, &v0).sqrt();
                scale(1.0 / n2, &mut v0);
            } else {
                scale(1.0 / nrm, &mut v0);
            }
            let room = dim - locked.len();
            let m_max = opts.max_krylov.max(2).min(room.max(1));
            let mut basis: Vec<Vec<f64>> = vec![std::mem::take(&mut v0)];
            let mut alpha: Vec<f64> = Vec::new();
            let mut beta: Vec<f64> = Vec::new();
            let mut ritz: (f64, Vec<f64>);
            let mut second_coef: Option<Vec<f64>>;
            // a reorthogonalisation of w_j is followed by one of w_{j+1}: both vectors of the
            // three-term recurrence must be clean, or the loss reappears at the next step
            let mut reorth_next = false;
            loop {
                let j = basis.len() - 1;
                op.apply(&basis[j], &mut w);
                matvecs += 1;
                let a = dot(&basis[j], &w);
                alpha.push(a);
                axpy(-a, &basis[j], &mut w);
                if j > 0 {
                    axpy(-beta[j - 1], &basis[j - 1], &mut w);
                }
                {
                    // Locked vectors: always. The Krylov basis: when the loss of orthogonality,
                    // measured against the start vector (the warm start, closest to the wanted
                    // eigenvector) and an older vector, exceeds sqrt(eps) (partial reorthogonalisation).
                    let locked_refs: Vec<&[f64]> = locked.iter().map(|v| v.as_slice()).collect();
                    orthogonalise(&mut w, &locked_refs);
                    let wn = dot(&w, &w).sqrt();
                    let probe = |u: &[f64]| dot(u, &w).abs() > 1.5e-8 * wn;
                    let again = std::mem::take(&mut reorth_next);
                    if j >= 2 && (again || probe(&basis[0]) || probe(&basis[j - 2]) || j % 40 == 39) {
                        reorth_next = !again;
                        let refs: Vec<&[f64]> = basis.iter().map(|v| v.as_slice()).collect();
                        orthogonalise(&mut w, &refs);
                        orthogonalise(&mut w, &locked_refs);
                    }
                }
                let b = dot(&w, &w).sqrt();
                let m = alpha.len();
                let last = m >= m_max || b < 1e-13 * a.abs().max(1.0);
                if last || m < 4 || m % 4 == 0 {
                    let ((t0, s), second) = lowest_two(&alpha, &beta);
                    theta = t0;
                    let r0 = b * s[m - 1].abs();
                    // Eigenvalue accuracy (the meaning of ARPACK's / eigsh's tol): the residual
                    // itself, or the Kato-Temple bound r0^2 / delta with delta the distance to the
                    // next Ritz value less that value's own residual, used only once that value
                    // is resolved to a tenth of the gap.
                    let delta = second.as_ref().map_or(0.0, |(t1, s1)| {
                        let r1 = b * s1[m - 1].abs();
                        if r1 <= 0.1 * (t1 - t0) {
                            t1 - r1 - t0
                        } else {
                            0.0
                        }
                    });
                    res = if opts.kato_temple && delta > 0.0 { r0.min(r0 * r0 / delta) } else { r0 };
                    residual_norm = r0;
                    ritz = (theta, s);
                    second_coef = second.map(|(_, s1)| s1);
                    if res <= opts.tol * theta.abs().max(1.0) || last {
                        break;
                    }
                }
                beta.push(b);
                let mut next = w.clone();
                scale(1.0 / b, &mut next);
                basis.push(next);
            }
            for p in x.iter_mut() {
                *p = 0.0;
            }
            for (c, v) in ritz.1.iter().zip(&basis) {
                axpy(*c, v, &mut x);
            }
            let nx = dot(&x, &x).sqrt();
            scale(1.0 / nx, &mut x);
            if res <= opts.tol * theta.abs().max(1.0) {
                converged = true;
                if level + 1 < levels && starts.len() > level + 1 {
                    if let Some(s1) = second_coef.take() {
                        let mut y = vec![0.0; dim];
                        for (c, v) in s1.iter().zip(&basis) {
                            axpy(*c, v, &mut y);
                        }
                        let ny = dot(&y, &y).sqrt();
                        scale(1.0 / ny.max(1e-300), &mut y);
                        next_ritz = Some(y);
                    }
                }
                break;
            }
            v0 = x.clone();
        }
        all_converged &= converged;
        values.push(theta);
        residuals.push(residual_norm);
        locked.push(x);
    }
    // Sort (a level found late can lie below one found earlier when a start missed it).
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].partial_cmp(&values[b]).unwrap_or(std::cmp::Ordering::Equal));
    Levels {
        values: order.iter().map(|&i| values[i]).collect(),
        residuals: order.iter().map(|&i| residuals[i]).collect(),
        vectors: order.iter().map(|&i| locked[i].clone()).collect(),
        matvecs,
        converged: all_converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Diag(Vec<f64>);
    impl RealOperator for Diag {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn apply(&self, v: &[f64], out: &mut [f64]) {
            // a path graph plus a diagonal: tridiagonal, known to be non-degenerate
            let n = self.0.len();
            for i in 0..n {
                let mut acc = self.0[i] * v[i];
                if i > 0 {
                    acc -= v[i - 1];
                }
                if i + 1 < n {
                    acc -= v[i + 1];
                }
                out[i] = acc;
            }
        }
    }

    #[test]
    fn path_laplacian_levels() {
        // H = 2 I - path adjacency: eigenvalues 2 - 2 cos(pi j / (n + 1))
        let n = 200;
        let op = Diag(vec![2.0; n]);
        let lv = lowest_levels(&op, 4, &[], LanczosOptions { max_krylov: 30, ..Default::default() });
        assert!(lv.converged);
        for (j, v) in lv.values.iter().enumerate() {
            let want = 2.0 - 2.0 * (std::f64::consts::PI * (j + 1) as f64 / (n as f64 + 1.0)).cos();
            assert!((v - want).abs() < 1e-8, "{j}: {v} vs {want}");
        }
    }

    #[test]
    fn degenerate_levels_found_in_full() {
        // diagonal operator with a triple lowest value
        struct D(Vec<f64>);
        impl RealOperator for D {
            fn dim(&self) -> usize {
                self.0.len()
            }
            fn apply(&self, v: &[f64], out: &mut [f64]) {
                for i in 0..v.len() {
                    out[i] = self.0[i] * v[i];
                }
            }
        }
        let mut d: Vec<f64> = (0..50).map(|i| i as f64 * 0.1 + 1.0).collect();
        d[7] = -1.0;
        d[20] = -1.0;
        d[33] = -1.0;
        let lv = lowest_levels(&D(d), 4, &[], LanczosOptions::default());
        assert!(lv.converged);
        assert!(lv.values[..3].iter().all(|v| (v + 1.0).abs() < 1e-9));
        assert!((lv.values[3] - 1.0).abs() < 1e-9);
    }
}

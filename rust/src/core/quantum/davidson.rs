//! Block Davidson with a diagonal (Jacobi) preconditioner for the lowest
//! levels of `H = offdiag + diag(D)`.
//!
//! `H(s) = A(s) H_driver + B(s) diag(E)`: the driver has no diagonal, so the
//! diagonal `D = B(s) E` carries the whole spectral width of the problem
//! part, which is what limits a Krylov method (its rate is set by
//! `gap / width`). Preconditioning the residual by `(D - theta)^{-1}`
//! removes that width; what is left is set by the driver's strength `A(s)`.
//!
//! * One block of `levels + guard` Ritz vectors; each iteration adds, for
//!   every requested level not yet converged (and the guards), the
//!   preconditioned residual with Olsen's correction
//!   `t = M^{-1} r - eps M^{-1} u`, `eps = (u' M^{-1} r) / (u' M^{-1} u)`
//!   (which keeps `t` from collapsing onto `u` when `M` is nearly exact),
//!   `M = D - theta` with `|M|` floored at `floor` (the driver's scale: the
//!   diagonal is no guide within that distance of `theta`). Near `s = 0`,
//!   where `D` is small, `M` is nearly constant and the step is the plain
//!   residual (a Krylov step).
//! * Rayleigh-Ritz on the whole basis (dense cyclic Jacobi, so degenerate
//!   levels get orthonormal vectors and are returned in full).
//! * Thick restart to the `keep` lowest Ritz vectors when the basis would
//!   exceed `max_basis`.
//! * Converged when `||H x - theta x|| <= tol * max(1, |theta|)` for every
//!   requested level (the meaning of ARPACK's / eigsh's `tol`), the residual
//!   computed explicitly from `H V` (kept beside the basis).
//! * Warm starts: the caller's vectors (the previous point of an `s` grid)
//!   plus a small deterministic pseudo-random component, so that no symmetry
//!   sector is missed; missing starts are pseudo-random.
//!
//! Reductions are summed over fixed chunks in a fixed order and the dense
//! steps are sequential, so results do not depend on the number of threads;
//! vectors at least [`PAR_MIN`] long are processed in parallel.

use rayon::prelude::*;

use super::lanczos::{dot_chunk, pseudo_random, RealOperator, CHUNK, PAR_MIN};

/// Eigenvalues (ascending) and orthonormal eigenvectors of the symmetric `n x n`
/// matrix `a` (row-major; only symmetric input is meaningful) by cyclic Jacobi.
/// Vector `j` is column `j`: `vecs[k * n + j]`.
pub fn sym_eig(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..60 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += m[p * n + q] * m[p * n + q];
            }
        }
        if off.sqrt() <= 1e-17 * total.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (m[p * n + p], m[q * n + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i * n + i].partial_cmp(&m[j * n + j]).unwrap_or(std::cmp::Ordering::Equal).then(i.cmp(&j)));
    let vals = order.iter().map(|&i| m[i * n + i]).collect();
    let mut vecs = vec![0.0; n * n];
    for (jn, &jo) in order.iter().enumerate() {
        for k in 0..n {
            vecs[k * n + jn] = v[k * n + jo];
        }
    }
    (vals, vecs)
}

/// Row chunk of the fused block operations (vectors' chunks stay in cache together).
const BLOCK_ROWS: usize = 1024;

/// `out[i] = sum_j coef[i][j] * vs[j]` for every output `i` (element-wise sums, so
/// the result does not depend on how rows are split).
fn combine(vs: &[&[f64]], coef: &[Vec<f64>], outs: &mut [Vec<f64>]) {
    let dim = outs.first().map_or(0, |o| o.len());
    let kernel = |lo: usize, len: usize, outs_c: &mut [&mut [f64]]| {
        for (o, c) in outs_c.iter_mut().zip(coef) {
            for x in o.iter_mut() {
                *x = 0.0;
            }
            for (v, &cj) in vs.iter().zip(c) {
                if cj == 0.0 {
                    continue;
                }
                let vc = &v[lo..lo + len];
                for (p, q) in o.iter_mut().zip(vc) {
                    *p += cj * q;
                }
            }
        }
    };
    let nrows = dim.div_ceil(BLOCK_ROWS);
    // split every output into row blocks, transposed into per-block lists
    let mut blocks: Vec<Vec<&mut [f64]>> = (0..nrows).map(|_| Vec::with_capacity(outs.len())).collect();
    for o in outs.iter_mut() {
        for (b, c) in o.chunks_mut(BLOCK_ROWS).enumerate() {
            blocks[b].push(c);
        }
    }
    if dim >= PAR_MIN {
        blocks.par_iter_mut().enumerate().for_each(|(b, outs_c)| {
            let len = outs_c[0].len();
            kernel(b * BLOCK_ROWS, len, outs_c)
        });
    } else {
        for (b, outs_c) in blocks.iter_mut().enumerate() {
            let len = outs_c[0].len();
            kernel(b * BLOCK_ROWS, len, outs_c);
        }
    }
}

/// `[vs[j] . w for j]`, each summed over fixed chunks of [`CHUNK`] in order.
fn multi_dot(vs: &[&[f64]], w: &[f64]) -> Vec<f64> {
    let m = vs.len();
    let part = |c: usize| -> Vec<f64> {
        let lo = c * CHUNK;
        let hi = (lo + CHUNK).min(w.len());
        let wc = &w[lo..hi];
        vs.iter().map(|v| dot_chunk(&v[lo..hi], wc)).collect()
    };
    let nch = w.len().div_ceil(CHUNK);
    let parts: Vec<Vec<f64>> = if w.len() >= PAR_MIN { (0..nch).into_par_iter().map(part).collect() } else { (0..nch).map(part).collect() };
    let mut out = vec![0.0; m];
    for p in &parts {
        for (o, x) in out.iter_mut().zip(p) {
            *o += x;
        }
    }
    out
}

/// `w -= sum_j c[j] vs[j]`.
fn subtract(vs: &[&[f64]], c: &[f64], w: &mut [f64]) {
    let kernel = |lo: usize, wc: &mut [f64]| {
        for (v, &cj) in vs.iter().zip(c) {
            let vc = &v[lo..lo + wc.len()];
            for (p, q) in wc.iter_mut().zip(vc) {
                *p -= cj * q;
            }
        }
    };
    if w.len() >= PAR_MIN {
        w.par_chunks_mut(BLOCK_ROWS).enumerate().for_each(|(b, wc)| kernel(b * BLOCK_ROWS, wc));
    } else {
        for (b, wc) in w.chunks_mut(BLOCK_ROWS).enumerate() {
            kernel(b * BLOCK_ROWS, wc);
        }
    }
}

fn norm(w: &[f64]) -> f64 {
    super::lanczos::dot(w, w).sqrt()
}

/// Orthogonalise `w` against the orthonormal `vs` (classical Gram-Schmidt, twice) and
/// normalise it; `false` when nothing independent is left.
fn orthonormalise(vs: &[&[f64]], w: &mut [f64]) -> bool {
    let before = norm(w);
    if !(before > 0.0) || !before.is_finite() {
        return false;
    }
    for _ in 0..2 {
        if vs.is_empty() {
            break;
        }
        let c = multi_dot(vs, w);
        subtract(vs, &c, w);
    }
    let after = norm(w);
    if !(after > 1e-10 * before) {
        return false;
    }
    let inv = 1.0 / after;
    for x in w.iter_mut() {
        *x *= inv;
    }
    true
}

/// Options of [`path_levels`].
#[derive(Clone, Copy, Debug)]
pub struct PathOptions {
    /// Converged when `||H x - theta x|| <= tol * max(1, |theta|)` for every requested level.
    pub tol: f64,
    /// Guard vectors carried beside the requested levels (not tested for convergence).
    pub guard: usize,
    /// Largest basis before a thick restart (0: automatic).
    pub max_basis: usize,
    /// Ritz vectors kept at a restart (0: automatic; at least the block).
    pub keep: usize,
    /// Basis expansions per point before giving up on it (unconverged).
    pub max_iters: usize,
    /// Weight of the pseudo-random vector added at every restart (relative to the Ritz vectors).
    pub mix: f64,
    /// Whether guard vectors are expanded too.
    pub expand_guards: bool,
    /// Floor of `|B E_x - theta|` in the preconditioner, in units of `A * driver_scale`.
    pub floor: f64,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions { tol: 1e-9, guard: 1, max_basis: 0, keep: 0, max_iters: 500, mix: 1e-8, expand_guards: true, floor: 1.0 }
    }
}

/// What [`path_levels`] found.
#[derive(Clone, Debug)]
pub struct PathLevels {
    /// `values[p * levels + l]`: level `l` at point `p`, ascending in `l`.
    pub values: Vec<f64>,
    /// Residual norms in the same layout.
    pub residuals: Vec<f64>,
    /// Driver applications used.
    pub matvecs: usize,
    /// Whether every level at every point met the tolerance.
    pub converged: bool,
}

/// The `levels` lowest eigenvalues of `H = a D + b diag(E)` at every point `(a, b)` of
/// `points`, in order, with one search space carried from point to point.
///
/// `driver` applies `D` (zero diagonal); `driver_scale` is the size of its matrix elements
/// (sets the preconditioner's floor). `D V` and `diag(E) V` are projected separately, so
/// the basis built at the previous points costs no operator application at the next:
/// moving along `s` is a Rayleigh-Ritz step on what is already known, and the basis
/// grows only by the corrections the residuals still ask for.
pub fn path_levels(driver: &dyn RealOperator, energies: &[f64], driver_scale: f64, points: &[(f64, f64)], levels: usize, opts: PathOptions) -> PathLevels {
    let dim = driver.dim();
    let levels = levels.min(dim);
    let nb = (levels + opts.guard).min(dim).max(levels);
    let max_basis = if opts.max_basis == 0 { (4 * nb).max(16) } else { opts.max_basis }.min(dim).max(nb + 1).min(dim);
    let keep = if opts.keep == 0 { 2 * nb } else { opts.keep }.clamp(nb, max_basis.saturating_sub(1).max(nb));
    let mut matvecs = 0usize;
    let mut out_vals = Vec::with_capacity(points.len() * levels);
    let mut out_res = Vec::with_capacity(points.len() * levels);
    let mut all_ok = true;

    // basis V, projections GD = V' D V and GE = V' diag(E) V (stride max_basis)
    let mut v: Vec<Vec<f64>> = Vec::with_capacity(max_basis + 1);
    let st = max_basis + 1;
    let mut gd = vec![0.0; st * st];
    let mut ge = vec![0.0; st * st];
    let mut restarts = 0u64;
    let mut scratch = vec![0.0; dim];
    // add a vector (orthonormalised here); false when it is dependent
    let push = |v: &mut Vec<Vec<f64>>, gd: &mut [f64], ge: &mut [f64], mut t: Vec<f64>, matvecs: &mut usize, scratch: &mut Vec<f64>| -> bool {
        let ok = {
            let refs: Vec<&[f64]> = v.iter().map(|x| x.as_slice()).collect();
            orthonormalise(&refs, &mut t)
        };
        if !ok {
            return false;
        }
        driver.apply(&t, scratch);
        *matvecs += 1;
        v.push(t);
        let k = v.len() - 1;
        let refs: Vec<&[f64]> = v.iter().map(|x| x.as_slice()).collect();
        let cd = multi_dot(&refs, scratch);
        for (x, (e, tk)) in scratch.iter_mut().zip(energies.iter().zip(&v[k])) {
            *x = e * tk;
        }
        let ce = multi_dot(&refs, scratch);
        for j in 0..=k {
            gd[j * st + k] = cd[j];
            gd[k * st + j] = cd[j];
            ge[j * st + k] = ce[j];
            ge[k * st + j] = ce[j];
        }
        true
    };
    let mut seed = 0u64;
    for i in 0..nb {
        loop {
            seed += 1;
            let x = pseudo_random(dim, 7 * i as u64 + seed);
            if push(&mut v, &mut gd, &mut ge, x, &mut matvecs, &mut scratch) {
                break;
            }
        }
    }

    let mut u: Vec<Vec<f64>> = (0..nb).map(|_| vec![0.0; dim]).collect();
    let mut r: Vec<Vec<f64>> = (0..nb).map(|_| vec![0.0; dim]).collect();
    let mut theta = vec![0.0; nb];
    let mut res = vec![f64::INFINITY; nb];
    for &(a, b) in points {
        let floor = (opts.floor * a * driver_scale).max(1e-10);
        let mut ok_point = false;
        for iter in 0..=opts.max_iters {
            let m = v.len();
            let mut gm = vec![0.0; m * m];
            for i in 0..m {
                for j in 0..m {
                    gm[i * m + j] = a * gd[i * st + j] + b * ge[i * st + j];
                }
            }
            let (vals, vecs) = sym_eig(&gm, m);
            let nr = nb.min(m);
            // Ritz vectors and residuals of the levels (and guards when they are expanded)
            let wanted = if opts.expand_guards { nr } else { levels.min(nr) };
            let coef: Vec<Vec<f64>> = (0..wanted).map(|i| (0..m).map(|k| vecs[k * m + i]).collect()).collect();
            {
                let vr: Vec<&[f64]> = v.iter().map(|x| x.as_slice()).collect();
                combine(&vr, &coef, &mut u[..wanted]);
            }
            for i in 0..wanted {
                theta[i] = vals[i];
                driver.apply(&u[i], &mut r[i]);
                matvecs += 1;
                let t = vals[i];
                for ((ri, x), e) in r[i].iter_mut().zip(&u[i]).zip(energies) {
                    *ri = a * *ri + (b * e - t) * x;
                }
                res[i] = norm(&r[i]);
            }
            let ok = |i: usize| res[i] <= opts.tol * theta[i].abs().max(1.0);
            if std::env::var("DAV_DEBUG").is_ok() {
                eprintln!("a {a:.3} it {iter} m {m} theta {:?} res {:?}", &theta[..wanted], &res[..wanted]);
            }
            if (0..levels).all(ok) {
                ok_point = true;
                break;
            }
            if iter == opts.max_iters {
                break;
            }
            let targets: Vec<usize> = (0..wanted).filter(|&i| i >= levels || !ok(i)).collect();
            let mut ts: Vec<Vec<f64>> = Vec::with_capacity(targets.len());
            for &i in &targets {
                ts.push(precondition(&u[i], &r[i], energies, b, theta[i], floor));
            }
            if m + ts.len() > max_basis {
                // thick restart on the `keep` lowest Ritz vectors, plus a pseudo-random one
                let kk = keep.min(m);
                let y: Vec<Vec<f64>> = (0..kk).map(|i| (0..m).map(|k| vecs[k * m + i]).collect()).collect();
                let mut nv: Vec<Vec<f64>> = (0..kk).map(|_| vec![0.0; dim]).collect();
                {
                    let vr: Vec<&[f64]> = v.iter().map(|x| x.as_slice()).collect();
                    combine(&vr, &y, &mut nv);
                }
                let project = |g: &[f64]| -> Vec<f64> {
                    // Y' G Y
                    let mut gy = vec![0.0; m * kk];
                    for i in 0..m {
                        for q in 0..kk {
                            gy[i * kk + q] = (0..m).map(|j| g[i * st + j] * y[q][j]).sum();
                        }
                    }
                    let mut o = vec![0.0; st * st];
                    for p in 0..kk {
                        for q in 0..kk {
                            o[p * st + q] = (0..m).map(|i| y[p][i] * gy[i * kk + q]).sum();
                        }
                    }
                    for p in 0..kk {
                        for q in 0..p {
                            let avg = 0.5 * (o[p * st + q] + o[q * st + p]);
                            o[p * st + q] = avg;
                            o[q * st + p] = avg;
                        }
                    }
                    o
                };
                gd = project(&gd);
                ge = project(&ge);
                v = nv;
                restarts += 1;
                if opts.mix > 0.0 {
                    let x = pseudo_random(dim, 0xA11CE + restarts);
                    push(&mut v, &mut gd, &mut ge, x, &mut matvecs, &mut scratch);
                }
            }
            let mut added = 0;
            for t in ts {
                if v.len() >= max_basis {
                    break;
                }
                if push(&mut v, &mut gd, &mut ge, t, &mut matvecs, &mut scratch) {
                    added += 1;
                }
            }
            if added == 0 {
                break;
            }
        }
        all_ok &= ok_point;
        out_vals.extend_from_slice(&theta[..levels]);
        out_res.extend_from_slice(&res[..levels]);
    }
    PathLevels { values: out_vals, residuals: out_res, matvecs, converged: all_ok }
}

/// Olsen-corrected Jacobi step `t = M^{-1} r - eps M^{-1} u`, `M = b E - theta` floored.
fn precondition(u: &[f64], r: &[f64], energies: &[f64], b: f64, theta: f64, floor: f64) -> Vec<f64> {
    let inv = |e: f64| {
        let mx = b * e - theta;
        if mx.abs() >= floor {
            1.0 / mx
        } else if mx >= 0.0 {
            1.0 / floor
        } else {
            -1.0 / floor
        }
    };
    let dim = u.len();
    let (mut num, mut den) = (0.0, 0.0);
    for c in 0..dim.div_ceil(CHUNK) {
        let (lo, hi) = (c * CHUNK, ((c + 1) * CHUNK).min(dim));
        let (mut p, mut q) = (0.0, 0.0);
        for k in lo..hi {
            let w = u[k] * inv(energies[k]);
            p += w * r[k];
            q += w * u[k];
        }
        num += p;
        den += q;
    }
    let eps = if den != 0.0 && den.abs() > 1e-14 * num.abs() { num / den } else { 0.0 };
    (0..dim).map(|k| inv(energies[k]) * (r[k] - eps * u[k])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dense {
        n: usize,
        a: Vec<f64>,
    }
    impl RealOperator for Dense {
        fn dim(&self) -> usize {
            self.n
        }
        fn apply(&self, v: &[f64], out: &mut [f64]) {
            for i in 0..self.n {
                out[i] = (0..self.n).map(|j| self.a[i * self.n + j] * v[j]).sum();
            }
        }
    }

    #[test]
    fn jacobi_eigen_of_a_known_matrix() {
        // path Laplacian-like: 2 on the diagonal, -1 off: eigenvalues 2 - 2 cos(pi j / (n + 1))
        let n = 9;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = 2.0;
            if i + 1 < n {
                a[i * n + i + 1] = -1.0;
                a[(i + 1) * n + i] = -1.0;
            }
        }
        let (vals, vecs) = sym_eig(&a, n);
        for (j, v) in vals.iter().enumerate() {
            let want = 2.0 - 2.0 * (std::f64::consts::PI * (j + 1) as f64 / (n as f64 + 1.0)).cos();
            assert!((v - want).abs() < 1e-13);
        }
        // orthonormal columns
        for p in 0..n {
            for q in 0..n {
                let d: f64 = (0..n).map(|k| vecs[k * n + p] * vecs[k * n + q]).sum();
                assert!((d - if p == q { 1.0 } else { 0.0 }).abs() < 1e-13);
            }
        }
    }

    #[test]
    fn degenerate_and_path_levels() {
        // a weak path coupling plus a diagonal with a triple lowest value on isolated sites
        let n = 120;
        let mut a = vec![0.0; n * n];
        for i in 0..n - 1 {
            if ![6usize, 7, 49, 50, 98, 99].contains(&i) {
                a[i * n + i + 1] = -0.1;
                a[(i + 1) * n + i] = -0.1;
            }
        }
        let mut e: Vec<f64> = (0..n).map(|i| 1.0 + 0.05 * i as f64).collect();
        for &i in &[7usize, 50, 99] {
            e[i] = -1.0;
        }
        let op = Dense { n, a: a.clone() };
        let pts = [(1.0, 0.0), (0.7, 0.3), (0.3, 0.7), (0.0, 1.0)];
        let lv = path_levels(&op, &e, 0.1, &pts, 4, PathOptions::default());
        assert!(lv.converged);
        for (p, &(pa, pb)) in pts.iter().enumerate() {
            let h: Vec<f64> = (0..n * n).map(|k| pa * a[k] + if k % (n + 1) == 0 { pb * e[k / n] } else { 0.0 }).collect();
            let (want, _) = sym_eig(&h, n);
            for l in 0..4 {
                assert!((lv.values[p * 4 + l] - want[l]).abs() < 1e-9, "{p} {l}: {} vs {}", lv.values[p * 4 + l], want[l]);
            }
        }
    }
}
#[cfg(test)]
mod timing {
    use super::*;
    use crate::core::quantum::diagonal_energies;
    use crate::core::quantum::lanczos::{lowest_levels, LanczosOptions};
    use crate::core::quantum::statevector::{TfHamiltonian, TfSystem};
    #[test]
    #[ignore]
    fn time_matvec_and_lanczos() {
        for n in [std::env::var("TN").map(|s| s.parse().unwrap()).unwrap_or(12usize)] {
            let mut s = 5u64;
            let mut q = vec![0.0; n * n];
            for i in 0..n {
                for j in i..n {
                    let r = (crate::core::rng::splitmix64(&mut s) >> 11) as f64 / (1u64 << 53) as f64;
                    q[i * n + j] = if i == j { -0.7 * r } else { 0.3 * r };
                }
            }
            let e = diagonal_energies(&q, n, 0.0);
            let sys = TfSystem { energies: &e, n, driver_scale: 1.0 / n as f64 };
            let op = TfHamiltonian { sys: &sys, a: 0.5, b: 0.5 };
            let dim = 1 << n;
            let v = pseudo_random(dim, 3);
            let mut out = vec![0.0; dim];
            let t = std::time::Instant::now();
            let reps = 200;
            for _ in 0..reps {
                op.apply(&v, &mut out);
            }
            let mv = t.elapsed().as_secs_f64() / reps as f64;
            let t = std::time::Instant::now();
            let mut starts: Vec<Vec<f64>> = vec![];
            let mut mvs = 0;
            for k in 0..11 {
                let sp = 0.4 + 0.01 * k as f64;
                let op = TfHamiltonian { sys: &sys, a: 1.0 - sp, b: sp };
                let lv = lowest_levels(&op, 2, &starts, LanczosOptions::default());
                mvs += lv.matvecs;
                starts = lv.vectors;
            }
            let tl = t.elapsed().as_secs_f64();
            eprintln!("n={n}: matvec {:.1} us; lanczos 11 pts {:.1} ms, {} matvecs, {:.1} us/matvec", mv * 1e6, tl * 1e3, mvs, tl / mvs as f64 * 1e6);
        }
    }
}

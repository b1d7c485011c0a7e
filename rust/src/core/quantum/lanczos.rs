//! Matrix-free Lanczos for the lowest levels of a real symmetric operator.
//!
//! One level at a time with locking: the Krylov space of level `l` is kept
//! orthogonal to the `l` converged (locked) vectors (Gram-Schmidt against them
//! at every step), so degenerate levels are found one copy after another. Start
//! vectors are the caller's warm starts (the previous point of an `s` grid) plus
//! a small deterministic pseudo-random component, so that no symmetry sector is
//! missed.
//!
//! * **Orthogonality** (partial reorthogonalisation): a full classical Gram-Schmidt
//!   pass against the Krylov basis (repeated when it removes most of the vector) whenever
//!   the loss of orthogonality exceeds sqrt(eps), as measured against two vectors (the
//!   first basis vector and an older one) or as estimated against every basis vector by
//!   Simon's recurrence, and every 40 steps; a reorthogonalised vector is always followed
//!   by a reorthogonalised next one, so that both vectors of the three-term recurrence are
//!   clean. (The two probes alone missed a loss towards a middle vector near `s = 0`, where
//!   the driver's excited levels form tight clusters.)
//! * **Thick restart**: when the basis reaches `max_krylov` vectors, the lowest
//!   `KEEP` (4) Ritz vectors and the residual direction become the new basis (the projected
//!   matrix an arrowhead, reduced to tridiagonal form once per restart), so a level that
//!   needs more steps than the basis holds loses little of its Krylov space.
//! * **Fused vector work**, so that each step makes few passes over memory: the
//!   operator returns `<v, H v>` with the product ([`RealOperator::apply_dot`]); one pass
//!   applies the three-term recurrence and measures the new vector's norm, its overlaps
//!   with the locked vectors and the two probes; one removes the locked components and
//!   measures the norm again; one writes the next basis vector. Gram-Schmidt against many
//!   vectors and the Ritz vectors are computed over cache-sized blocks of the output, every
//!   basis vector streamed once; the leaf kernels have an AVX2 build (same bits). The basis
//!   lives in one reusable [`Workspace`] (a sweep over an `s` grid allocates it once).
//!
//! Dot products are summed over fixed chunks in a fixed order, so results
//! do not depend on the number of threads.

use super::tridiag::lowest_two;
pub use super::vecops::{
    add_lanes, axpy, combination, combine_lanes, dot, dot_chunk, multi_dot, pseudo_random, scale, sub_combination, CHUNK, PAR_MIN,
};
use super::vecops::{fill_pseudo_random, orthogonalise, recurrence, sub_combination_norm, write_scaled};

/// A real symmetric linear operator applied matrix-free.
pub trait RealOperator: Sync {
    fn dim(&self) -> usize;
    /// `out = H v`.
    fn apply(&self, v: &[f64], out: &mut [f64]);
    /// `out = H v`, returning `<v, out>` summed exactly as [`dot`] sums it (an operator can
    /// fuse the two passes).
    fn apply_dot(&self, v: &[f64], out: &mut [f64]) -> f64 {
        self.apply(v, out);
        dot(v, out)
    }
}

/// Options of [`lowest_levels`].
#[derive(Clone, Copy, Debug)]
pub struct LanczosOptions {
    /// Converged when the residual `||H x - theta x||` is at most `tol * max(1, |theta|)`
    /// (ARPACK's test), or with `kato_temple` its bound `residual^2 / gap`.
    pub tol: f64,
    /// Largest Krylov basis before a (thick) restart.
    pub max_krylov: usize,
    /// Thick restarts per level before giving up (the level is then returned unconverged).
    pub max_restarts: usize,
    /// Weight of the pseudo-random component mixed into warm starts.
    pub mix: f64,
    /// Also accept the Kato-Temple bound `residual^2 / gap` (fewer iterations, but a level
    /// the Krylov space has not yet seen can make it wrong; off by default).
    pub kato_temple: bool,
    /// Two levels from one Krylov space (when `levels == 2` and both warm starts are given):
    /// the start mixes in the previous second level, and the run goes on until both lowest
    /// Ritz pairs converge. Safe only when the two levels are not (nearly) degenerate, which a
    /// single Krylov space cannot separate: the caller decides from the previous point's gap
    /// (the locked, one-level-at-a-time search is the fallback when the joint run fails).
    pub joint: bool,
}

/// Weight of the previous second level in the start of a joint two-level run.
pub const JOINT_WEIGHT: f64 = 1.0;

impl Default for LanczosOptions {
    fn default() -> Self {
        LanczosOptions { tol: 1e-9, max_krylov: 40, max_restarts: 200, mix: 1e-2, kato_temple: false, joint: false }
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

/// The storage of [`lowest_levels_in`]: the Krylov basis (one contiguous block, grown on first
/// use and kept) and the work vector. Reusing one across the points of a grid saves the
/// allocation and the first-touch page faults of every point.
#[derive(Default, Debug)]
pub struct Workspace {
    basis: Vec<f64>,
    w: Vec<f64>,
}

impl Workspace {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The `levels` lowest eigenpairs of `op`, warm-started from `starts`.
pub fn lowest_levels(op: &dyn RealOperator, levels: usize, starts: &[Vec<f64>], opts: LanczosOptions) -> Levels {
    lowest_levels_in(op, levels, starts, opts, &mut Workspace::new())
}

/// Ritz vectors a restart keeps (thick restart): the lowest few of the full basis, so that a
/// level that needs more than `max_krylov` steps loses little of its Krylov space.
const KEEP: usize = 4;

/// The kept part of a thick-restarted basis: `kept` Ritz vectors (the first basis vectors)
/// with Ritz values `theta`, coupled to the next basis vector by `sigma` (the arrowhead of the
/// projected matrix), and the orthogonal `q` (row `t` = reduced vector `t` in the Ritz
/// coordinates) that makes the arrowhead tridiagonal with the coupling at its end, so that the
/// usual tridiagonal solver serves the whole projected matrix.
#[derive(Default)]
struct Arrow {
    theta: Vec<f64>,
    sigma: Vec<f64>,
    q: Vec<Vec<f64>>,
    diag: Vec<f64>,
    off: Vec<f64>,
    coupling: f64,
}

impl Arrow {
    fn kept(&self) -> usize {
        self.theta.len()
    }

    /// Householder reduction of `[[diag(theta), sigma], [sigma^T, 0]]` to tridiagonal form,
    /// from the bottom up so that the last index (the coupling to the rest of the basis) is
    /// never rotated (LAPACK's `sytrd` with the upper triangle).
    fn reduce(&mut self) {
        let k = self.kept();
        let n = k + 1;
        let mut a = vec![vec![0.0f64; n]; n];
        for i in 0..k {
            a[i][i] = self.theta[i];
            a[i][k] = self.sigma[i];
            a[k][i] = self.sigma[i];
        }
        let mut q = vec![vec![0.0f64; n]; n];
        for (i, row) in q.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        for i in (2..n).rev() {
            // annihilate a[0..i-1][i] with a reflection of the indices 0..i
            let x: Vec<f64> = (0..i).map(|r| a[r][i]).collect();
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let above = x[..i - 1].iter().map(|v| v * v).sum::<f64>().sqrt();
            if !(above > 0.0) {
                continue;
            }
            let alpha = if x[i - 1] >= 0.0 { -norm } else { norm };
            let mut v = x.clone();
            v[i - 1] -= alpha;
            let vv: f64 = v.iter().map(|t| t * t).sum();
            // A <- H A H, Q <- Q H with H = I - 2 v v^T / (v^T v) on the indices 0..i
            let apply_left = |m: &mut Vec<Vec<f64>>| {
                for c in 0..n {
                    let s: f64 = (0..i).map(|r| v[r] * m[r][c]).sum::<f64>() * 2.0 / vv;
                    for r in 0..i {
                        m[r][c] -= s * v[r];
                    }
                }
            };
            let apply_right = |m: &mut Vec<Vec<f64>>| {
                for row in m.iter_mut() {
                    let s: f64 = (0..i).map(|c| v[c] * row[c]).sum::<f64>() * 2.0 / vv;
                    for c in 0..i {
                        row[c] -= s * v[c];
                    }
                }
            };
            apply_left(&mut a);
            apply_right(&mut a);
            apply_right(&mut q);
        }
        self.diag = (0..k).map(|t| a[t][t]).collect();
        self.off = (0..k.saturating_sub(1)).map(|t| a[t][t + 1]).collect();
        self.coupling = if k > 0 { a[k - 1][k] } else { 0.0 };
        // row t of `self.q` = column t of Q restricted to the Ritz coordinates
        self.q = (0..k).map(|t| (0..k).map(|i| q[i][t]).collect()).collect();
    }

    /// Coefficients on the stored basis of a vector with coefficients `y` on the reduced one.
    fn to_basis(&self, y: &[f64]) -> Vec<f64> {
        let k = self.kept();
        let mut c = vec![0.0; y.len()];
        for (t, q) in self.q.iter().enumerate() {
            for i in 0..k {
                c[i] += q[i] * y[t];
            }
        }
        c[k..].copy_from_slice(&y[k..]);
        c
    }
}

/// Estimated loss of orthogonality that triggers a full reorthogonalisation (sqrt(eps)).
const REORTH_LEVEL: f64 = 1.5e-8;

/// Simon's estimates `omega[k] ~ <v_j, v_k>` of the current basis vector against every
/// earlier one (Simon, Math. Comp. 42, 1984), advanced with the projected matrix at each step.
struct Omega {
    /// `omega_{j, k}` for `k <= j` (`omega_{j, j} = 1`).
    cur: Vec<f64>,
    /// `omega_{j - 1, k}` for `k < j`.
    prev: Vec<f64>,
    /// `omega_{j + 1, k}` once computed.
    next: Vec<f64>,
}

impl Omega {
    /// The estimates of basis vector `first` (the first Lanczos vector after `first` kept
    /// Ritz vectors, orthogonal to them to rounding).
    fn new(first: usize, eps1: f64) -> Self {
        let mut cur = vec![eps1; first + 1];
        cur[first] = 1.0;
        Omega { cur, prev: Vec::new(), next: Vec::new() }
    }

    /// `omega_{j + 1, .}` from the step that produced `w` of norm `b`; returns its largest
    /// magnitude (over the earlier vectors).
    #[allow(clippy::too_many_arguments)]
    fn next(&mut self, j: usize, kept: usize, arrow: &Arrow, alpha: &[f64], beta: &[f64], b: f64, eps1: f64) -> f64 {
        self.next.clear();
        if !(b > 0.0) || self.cur.len() != j + 1 {
            self.next.resize(j + 2, eps1);
            self.next[j + 1] = 1.0;
            return f64::INFINITY;
        }
        let t = j - kept;
        let aj = alpha[t];
        let bprev = if t > 0 { beta[t - 1] } else { 0.0 };
        let (cur, prev) = (&self.cur, &self.prev);
        let mut worst = 0.0f64;
        for k in 0..j {
            // (T omega_j)_k: the row of basis vector k of the projected matrix
            let tk = if k < kept {
                arrow.theta[k] * cur[k] + arrow.sigma[k] * cur[kept]
            } else {
                let s = k - kept;
                let below = if s == 0 {
                    (0..kept).map(|i| arrow.sigma[i] * cur[i]).sum::<f64>()
                } else {
                    beta[s - 1] * cur[k - 1]
                };
                below + alpha[s] * cur[k] + beta.get(s).map_or(0.0, |bs| bs * cur[k + 1])
            };
            let pk = if k < prev.len() { prev[k] } else { 0.0 };
            let bk = if k >= kept { beta.get(k - kept).copied().unwrap_or(b) } else { arrow.sigma[k].abs() };
            let mut o = (tk - aj * cur[k] - bprev * pk) / b;
            o += (eps1 * (bk + b) / b).copysign(o);
            worst = worst.max(o.abs());
            self.next.push(o);
        }
        self.next.push(eps1);
        self.next.push(1.0);
        worst
    }

    /// After a full reorthogonalisation of `w` (the vector `j + 1`): its estimates are rounding.
    fn reset_next(&mut self, j: usize, eps1: f64) {
        self.next.clear();
        self.next.resize(j + 2, eps1);
        self.next[j + 1] = 1.0;
    }

    /// Moves to the next basis vector.
    fn advance(&mut self) {
        std::mem::swap(&mut self.prev, &mut self.cur);
        std::mem::swap(&mut self.cur, &mut self.next);
    }
}

/// The unit vector along `sum_i coefs[i] refs[i]` (a Ritz vector of the basis `refs`).
fn unit_combination(refs: &[&[f64]], coefs: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; refs[0].len()];
    combination(&mut x, refs, coefs);
    let nx = dot(&x, &x).sqrt();
    scale(1.0 / nx.max(1e-300), &mut x);
    x
}

/// [`lowest_levels`] with the caller's reusable [`Workspace`].
pub fn lowest_levels_in(op: &dyn RealOperator, levels: usize, starts: &[Vec<f64>], opts: LanczosOptions, ws: &mut Workspace) -> Levels {
    let dim = op.dim();
    let levels = levels.min(dim);
    let capacity = opts.max_krylov.max(2).min(dim.max(1));
    let Workspace { basis, w } = ws;
    if basis.capacity() < capacity * dim {
        // reserved, not touched: a vector's pages are first written when the basis reaches it
        basis.reserve_exact(capacity * dim - basis.len());
    }
    if basis.len() < dim {
        basis.resize(dim, 0.0);
    }
    if w.len() != dim {
        *w = vec![0.0; dim];
    }
    let mut locked: Vec<Vec<f64>> = Vec::with_capacity(levels);
    let mut values = Vec::with_capacity(levels);
    let mut residuals = Vec::with_capacity(levels);
    let mut matvecs = 0usize;
    let mut all_converged = true;
    let mut next_ritz: Option<Vec<f64>> = None;
    // the projected matrix beyond the kept Ritz vectors: alpha[t], beta[t] of basis vector
    // `kept + t` (beta couples it to the next one)
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for level in 0..levels {
        let joint = opts.joint && level == 0 && levels == 2 && starts.len() >= 2;
        {
            let v0 = &mut basis[..dim];
            fill_pseudo_random(v0, level as u64 + 1);
            if let Some(st) = starts.get(level) {
                let r = dot(v0, v0).sqrt();
                scale(opts.mix / r.max(1e-300), v0);
                axpy(1.0, st, v0);
                if joint {
                    axpy(JOINT_WEIGHT, &starts[1], v0);
                }
                // plus the next Ritz vector of the previous level's Krylov space, sign-aligned: the
                // same eigenvector when levels keep their order (a better start), a second
                // direction when they do not (so a degenerate copy is not lost)
                if let Some(nr) = next_ritz.take() {
                    let c = dot(st, &nr);
                    axpy(if c >= 0.0 { 1.0 } else { -1.0 }, &nr, v0);
                }
            }
        }
        let locked_refs: Vec<&[f64]> = locked.iter().map(|v| v.as_slice()).collect();
        {
            let v0 = &mut basis[..dim];
            let nrm = orthogonalise(v0, &locked_refs).sqrt();
            if !(nrm > 1e-12) {
                fill_pseudo_random(v0, 1000 + level as u64 * 7919);
                let n2 = orthogonalise(v0, &locked_refs).sqrt();
                scale(1.0 / n2, v0);
            } else {
                scale(1.0 / nrm, v0);
            }
        }
        let room = dim - locked.len();
        let m_max = opts.max_krylov.max(2).min(room.max(1));
        let mut arrow = Arrow::default();
        alpha.clear();
        beta.clear();
        let mut converged;
        let mut theta;
        let mut residual_norm;
        let mut ritz: Vec<f64>;
        let mut second_coef: Option<Vec<f64>>;
        let mut restarts = 0usize;
        // a joint run's second level: (value, residual, converged)
        let mut joint_done: Option<(f64, f64, bool)> = None;
        // a reorthogonalisation of w_j is followed by one of w_{j+1}: both vectors of the
        // three-term recurrence must be clean, or the loss reappears at the next step
        let mut reorth_next = false;
        let mut omega = Omega::new(0, 0.0);
        loop {
            let kept = arrow.kept();
            let j = kept + alpha.len();
            if j + 1 < m_max && basis.len() < (j + 2) * dim {
                basis.resize((j + 2) * dim, 0.0);
            }
            let (head, tail) = basis.split_at_mut((j + 1) * dim);
            let head: &[f64] = head;
            let vec_at = |i: usize| &head[i * dim..(i + 1) * dim];
            let vj = vec_at(j);
            let a = op.apply_dot(vj, w);
            matvecs += 1;
            alpha.push(a);
            // One pass: the recurrence, the norm, the overlaps with the locked vectors and
            // (from j = 2) the two probes of the loss of orthogonality, measured against the
            // first basis vector (the warm start or the lowest kept Ritz vector, closest to the
            // wanted eigenvector) and an older one.
            let mut probes: Vec<&[f64]> = Vec::with_capacity(2 + locked.len());
            if j >= 2 {
                probes.push(vec_at(0));
                probes.push(vec_at(j - 2));
            }
            let first_locked = probes.len();
            probes.extend(locked_refs.iter().copied());
            let first_after_restart = kept > 0 && j == kept;
            let eps1 = f64::EPSILON * (dim as f64).sqrt() / 2.0;
            let prev = if j > kept { Some((beta[j - kept - 1], vec_at(j - 1))) } else { None };
            let mut d = recurrence(w, a, vj, prev, &probes);
            if first_after_restart {
                // the arrowhead: H v_k = sum_i sigma_i u_i + alpha v_k + beta v_{k+1}
                let us: Vec<&[f64]> = (0..kept).map(vec_at).collect();
                sub_combination(w, &us, &arrow.sigma);
                let mut list = vec![&*w as &[f64]];
                list.extend(probes.iter().copied());
                d = multi_dot(&list, w);
                arrow.reduce();
            }
            // the locked components removed at once, with the exact norm of what is left (one
            // pass), and a second Gram-Schmidt pass when they made up most of w
            let mut ww = d[0];
            if !locked.is_empty() {
                ww = sub_combination_norm(w, &locked_refs, &d[1 + first_locked..]);
                if ww <= 0.49 * d[0] {
                    ww = orthogonalise(w, &locked_refs);
                }
            }
            let wn = ww.max(0.0).sqrt();
            let again = std::mem::take(&mut reorth_next);
            // The loss of orthogonality: measured against two vectors, and estimated against
            // every one by Simon's recurrence (the rounding of each step propagated through the
            // projected matrix), which sees a loss towards a middle vector the probes miss.
            let lost = j >= 2 && (d[1].abs() > 1.5e-8 * wn || d[2].abs() > 1.5e-8 * wn);
            let predicted = omega.next(j, kept, &arrow, &alpha, &beta, wn, eps1);
            if j >= 1 && (again || lost || predicted > REORTH_LEVEL || first_after_restart || (j - kept) % 40 == 39) {
                reorth_next = !again;
                omega.reset_next(j, eps1);
                let refs: Vec<&[f64]> = (0..=j).map(vec_at).collect();
                orthogonalise(w, &refs);
                ww = orthogonalise(w, &locked_refs);
            }
            let b = ww.max(0.0).sqrt();
            omega.advance();
            let m = j + 1;
            let full = m >= m_max;
            let invariant = b < 1e-13 * a.abs().max(1.0);
            if full || invariant || alpha.len() < 4 || alpha.len() % 4 == 0 {
                let (diag, off) = if kept > 0 {
                    let mut dg = arrow.diag.clone();
                    dg.extend_from_slice(&alpha);
                    let mut of = arrow.off.clone();
                    of.push(arrow.coupling);
                    of.extend_from_slice(&beta);
                    (dg, of)
                } else {
                    (alpha.clone(), beta.clone())
                };
                let ((t0, s), second) = lowest_two(&diag, &off);
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
                let res = if opts.kato_temple && delta > 0.0 { r0.min(r0 * r0 / delta) } else { r0 };
                residual_norm = r0;
                ritz = arrow.to_basis(&s);
                second_coef = second.as_ref().map(|(_, s1)| arrow.to_basis(s1));
                converged = res <= opts.tol * theta.abs().max(1.0);
                if joint {
                    joint_done = second.as_ref().map(|(t1, s1)| {
                        let r1 = b * s1[m - 1].abs();
                        (*t1, r1, r1 <= opts.tol * t1.abs().max(1.0))
                    });
                }
                let both = !joint || joint_done.map_or(false, |(_, _, ok)| ok);
                let stuck = restarts >= opts.max_restarts;
                if (converged && both) || invariant || (full && (stuck || m_max < 3)) {
                    break;
                }
                if full {
                    // Thick restart: keep the lowest Ritz vectors, continue from the residual.
                    restarts += 1;
                    let (vals, vecs) = super::tridiag::eigh_tridiagonal(&diag, &off);
                    let keep = KEEP.min(m - 2);
                    let coefs: Vec<Vec<f64>> = (0..keep).map(|i| arrow.to_basis(&vecs[i * m..(i + 1) * m])).collect();
                    let sigma: Vec<f64> = (0..keep).map(|i| b * vecs[i * m + m - 1]).collect();
                    let refs: Vec<&[f64]> = (0..m).map(vec_at).collect();
                    let mut fresh = vec![0.0; keep * dim];
                    for (i, c) in coefs.iter().enumerate() {
                        combination(&mut fresh[i * dim..(i + 1) * dim], &refs, c);
                    }
                    // the residual direction becomes basis vector `keep` (it may be the slot
                    // `m` the basis has no room for: write it through the work vector)
                    let nw = {
                        let kept_refs: Vec<&[f64]> = fresh.chunks(dim).collect();
                        orthogonalise(w, &kept_refs).sqrt()
                    };
                    scale(1.0 / nw, w);
                    basis[..keep * dim].copy_from_slice(&fresh);
                    basis[keep * dim..(keep + 1) * dim].copy_from_slice(w);
                    arrow = Arrow { theta: vals[..keep].to_vec(), sigma, ..Default::default() };
                    alpha.clear();
                    beta.clear();
                    reorth_next = false;
                    omega = Omega::new(keep, f64::EPSILON * (dim as f64).sqrt() / 2.0);
                    continue;
                }
            }
            beta.push(b);
            write_scaled(&mut tail[..dim], w, 1.0 / b);
        }
        let m = arrow.kept() + alpha.len();
        let refs: Vec<&[f64]> = (0..m).map(|i| &basis[i * dim..(i + 1) * dim]).collect();
        let x = unit_combination(&refs, &ritz);
        if let (true, true, Some((t1, r1, true))) = (joint, converged, joint_done) {
            // both levels from this space
            let y = unit_combination(&refs, second_coef.as_deref().expect("a joint run's second Ritz vector"));
            drop(refs);
            drop(locked_refs);
            values.extend([theta, t1]);
            residuals.extend([residual_norm, r1]);
            locked.extend([x, y]);
            break;
        }
        if converged && level + 1 < levels && starts.len() > level + 1 {
            if let Some(s1) = second_coef.take() {
                next_ritz = Some(unit_combination(&refs, &s1));
            }
        }
        drop(refs);
        drop(locked_refs);
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
        vectors: order.iter().map(|&i| std::mem::take(&mut locked[i])).collect(),
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

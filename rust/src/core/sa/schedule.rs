//! Precision choice, default beta ranges and beta schedules.

use super::flip::descend_flip;
use super::model::{tolerance_for, Couplings, DenseModel};
use super::real::Real;

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

/// The range from the energy changes `deltas`; `None` when none is nonzero.
fn range_from_deltas(deltas: impl Iterator<Item = f64>, hot_odds: f64) -> Option<(f64, f64)> {
    let mut nz: Vec<f64> = deltas.map(f64::abs).filter(|d| *d > 0.0 && d.is_finite()).collect();
    if nz.is_empty() {
        return None;
    }
    let max = nz.iter().cloned().fold(0.0, f64::max);
    let min = nz.iter().cloned().fold(f64::INFINITY, f64::min).max(1e-3 * max);
    let at = ((nz.len() as f64 * HOT_QUANTILE) as usize).min(nz.len() - 1);
    let typical = *nz.select_nth_unstable_by(at, |a, b| a.partial_cmp(b).unwrap()).1;
    let b0 = hot_odds.ln() / typical;
    let b1 = ((100.0f64).ln() / min).max(b0);
    Some((b0, b1))
}

/// Range of a problem without a nonzero change at its local minimum
/// (every single move there is free, e.g. no linear terms): the scale comes
/// from the couplings, the changes a second move makes (a fixed range such as
/// (0.1, 1) anneals a problem of couplings ~0.01 hot to the end and one of
/// couplings ~100 frozen from the start). No couplings either: every state has
/// the same energy, any range samples them alike.
fn range_from_couplings(mags: impl Iterator<Item = f64>, hot_odds: f64) -> (f64, f64) {
    range_from_deltas(mags, hot_odds).unwrap_or((0.1, 1.0))
}

/// About 8k magnitudes of the couplings of `c`: whole rows, evenly spaced.
fn coupling_sample<F: Real, C: Couplings<F>>(c: &C) -> Vec<f64> {
    let n = c.n();
    let mut out = Vec::new();
    let mut f = vec![F::ZERO; n];
    let rows = n.min((8192 / n.max(1)).max(1));
    for t in 0..rows {
        let i = t * n / rows;
        c.add_row(i, &mut f);
        out.extend(f.iter().map(|v| v.to_f64()).filter(|v| *v != 0.0));
        f.iter_mut().for_each(|v| *v = F::ZERO);
    }
    out
}

/// Default `(beta0, beta1)` of the flip annealer (see the module docs).
pub fn default_beta_range_flip<F: Real, C: Couplings<F>>(c: &C) -> (f64, f64) {
    let n = c.n();
    let mut x = vec![0u8; n];
    let mut f = vec![F::ZERO; n];
    descend_flip(c, &mut x, &mut f);
    let diag = c.diag();
    range_from_deltas((0..n).map(|i| (diag[i] + f[i]).to_f64()), 2.0)
        .unwrap_or_else(|| range_from_couplings(coupling_sample(c).into_iter(), 2.0))
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
        return (0.1, 1.0); // no move at all
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
    range_from_deltas(deltas.into_iter(), SWAP_HOT_ODDS).unwrap_or_else(|| {
        let step = (n * n / 8192).max(1);
        let w = (0..n * n).step_by(step).filter(|&t| t / n != t % n).map(|t| q[t] + q[(t % n) * n + t / n]);
        range_from_couplings(w, SWAP_HOT_ODDS)
    })
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

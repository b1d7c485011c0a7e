//! Dense QUBOs and the feature-selection problem of arXiv 2604.25649.
//!
//! Convention used throughout qfsel: a QUBO on `n` binary variables is a dense
//! row-major `n x n` matrix `Q` whose lower triangle is zero, plus an offset,
//! with energy
//!
//! ```text
//! E(x) = sum_i Q_ii x_i + sum_{i<j} Q_ij x_i x_j + offset .
//! ```
//!
//! The feature-selection energy (paper, eq. for the QA-fGradCAM objective) is
//!
//! ```text
//! E(x) = -beta * sum_i h_i x_i + (1 - beta) * sum_{i<j} J_ij x_i x_j
//! ```
//!
//! and its penalty form adds `lambda * (sum_i x_i - k)^2`, which expands to
//! `lambda * (1 - 2k)` on the diagonal, `2 lambda` on every pair and
//! `lambda * k^2` in the offset.

use rayon::prelude::*;

/// Write the upper-triangular QUBO of one feature-selection problem into `q`
/// (`n*n`, overwritten) and return its offset.
///
/// `h` has `n` entries, `j` is the dense symmetric `n x n` redundancy (only
/// its upper triangle is read). `penalty = Some((lambda, k))` adds the
/// cardinality penalty.
pub fn feature_selection_qubo(
    h: &[f64],
    j: &[f64],
    beta: f64,
    penalty: Option<(f64, usize)>,
    q: &mut [f64],
) -> f64 {
    let n = h.len();
    debug_assert_eq!(j.len(), n * n);
    debug_assert_eq!(q.len(), n * n);
    let (diag_pen, pair_pen, offset) = match penalty {
        Some((lam, k)) => {
            let k = k as f64;
            (lam * (1.0 - 2.0 * k), 2.0 * lam, lam * k * k)
        }
        None => (0.0, 0.0, 0.0),
    };
    let w = 1.0 - beta;
    for a in 0..n {
        let row = &mut q[a * n..(a + 1) * n];
        for v in row[..a].iter_mut() {
            *v = 0.0;
        }
        row[a] = -beta * h[a] + diag_pen;
        let jrow = &j[a * n..(a + 1) * n];
        for b in a + 1..n {
            row[b] = w * jrow[b] + pair_pen;
        }
    }
    offset
}

/// Build `B` feature-selection QUBOs at once, in parallel over problems.
///
/// `h` is `(B, n)`, `j` is `(B, n, n)`, `penalties[b]` is lambda of problem
/// `b` (ignored when `k` is `None`). `q` receives `(B, n, n)`, `offsets` `(B,)`.
#[allow(clippy::too_many_arguments)]
pub fn feature_selection_qubo_batch(
    n: usize,
    h: &[f64],
    j: &[f64],
    beta: f64,
    k: Option<usize>,
    penalties: &[f64],
    q: &mut [f64],
    offsets: &mut [f64],
) {
    let nn = n * n;
    if n == 0 {
        offsets.iter_mut().zip(penalties).for_each(|(o, &lam)| {
            *o = k.map_or(0.0, |k| lam * (k * k) as f64);
        });
        return;
    }
    let one = |(b, (qb, off)): (usize, (&mut [f64], &mut f64))| {
        let pen = k.map(|k| (penalties[b], k));
        *off = feature_selection_qubo(
            &h[b * n..(b + 1) * n],
            &j[b * nn..(b + 1) * nn],
            beta,
            pen,
            qb,
        );
    };
    if is_small(q.len()) {
        q.chunks_mut(nn)
            .zip(offsets.iter_mut())
            .enumerate()
            .for_each(one);
    } else {
        q.par_chunks_mut(nn)
            .zip(offsets.par_iter_mut())
            .enumerate()
            .with_min_len(8)
            .for_each(one);
    }
}

/// Energy of binary state `x` (entries 0/1) under upper-triangular `q`.
pub fn qubo_energy(q: &[f64], offset: f64, x: &[u8]) -> f64 {
    let n = x.len();
    let mut e = offset;
    for a in 0..n {
        if x[a] == 0 {
            continue;
        }
        let row = &q[a * n..(a + 1) * n];
        e += row[a];
        for b in a + 1..n {
            if x[b] != 0 {
                e += row[b];
            }
        }
    }
    e
}

/// Energies of `m` states (`(m, n)` row-major) of one QUBO, in parallel.
pub fn qubo_energies(q: &[f64], offset: f64, n: usize, states: &[u8], out: &mut [f64]) {
    if n == 0 {
        out.iter_mut().for_each(|e| *e = offset);
        return;
    }
    out.par_iter_mut()
        .zip(states.par_chunks(n))
        .with_min_len(64)
        .for_each(|(e, x)| *e = qubo_energy(q, offset, x));
}

/// Objective `E(x) = -beta sum_i h_i x_i + (1-beta) sum_{i<j} J_ij x_i x_j`
/// of one state, reading only the pairs of selected variables (upper triangle).
pub fn feature_selection_energy(
    h: &[f64],
    j: &[f64],
    beta: f64,
    x: &[u8],
    scratch: &mut Vec<usize>,
) -> f64 {
    let n = h.len();
    scratch.clear();
    scratch.extend((0..n).filter(|&i| x[i] != 0));
    let mut lin = 0.0;
    let mut quad = 0.0;
    for (a, &i) in scratch.iter().enumerate() {
        lin += h[i];
        let row = &j[i * n..(i + 1) * n];
        for &c in &scratch[a + 1..] {
            quad += row[c];
        }
    }
    -beta * lin + (1.0 - beta) * quad
}

/// Objective energies of `m` states (`(m, n)`) of each of `B` problems, in parallel.
pub fn feature_selection_energies_batch(
    n: usize,
    h: &[f64],
    j: &[f64],
    beta: f64,
    m: usize,
    states: &[u8],
    out: &mut [f64],
) {
    if m == 0 {
        return;
    }
    let nn = n * n;
    let one = |(b, ob): (usize, &mut [f64])| {
        let mut scratch = Vec::with_capacity(n);
        let (hb, jb) = (&h[b * n..(b + 1) * n], &j[b * nn..(b + 1) * nn]);
        for (r, e) in ob.iter_mut().enumerate() {
            let x = &states[(b * m + r) * n..(b * m + r + 1) * n];
            *e = feature_selection_energy(hb, jb, beta, x, &mut scratch);
        }
    };
    if is_small(out.len() * n) {
        out.chunks_mut(m).enumerate().for_each(one);
    } else {
        out.par_chunks_mut(m)
            .enumerate()
            .with_min_len(4)
            .for_each(one);
    }
}

/// The smallest lambda for which every minimiser of the penalty QUBO has
/// exactly `k` ones, with a small safety margin (see the Python docstring of
/// `FeatureSelectionProblem` for the argument).
///
/// Flipping one variable changes the objective by at most
/// `U_add = max_i (-beta h_i + (1-beta) sum_j max(J_ij, 0))` when adding and
/// `U_rem = max_i (beta h_i + (1-beta) sum_j max(-J_ij, 0))` when removing.
/// A state with `m != k` ones reaches a feasible one in `|m-k|` flips of the
/// same kind, so its objective drops by at least `-|m-k| U`, while its penalty
/// is `lambda (m-k)^2 >= lambda |m-k|`; any `lambda > max(U, 0)` makes every
/// infeasible state strictly worse than some feasible one.
pub fn safe_penalty(h: &[f64], j: &[f64], beta: f64) -> f64 {
    let n = h.len();
    let w = 1.0 - beta;
    let mut u_add = f64::NEG_INFINITY;
    let mut u_rem = f64::NEG_INFINITY;
    for a in 0..n {
        let row = &j[a * n..(a + 1) * n];
        let mut pos = 0.0;
        let mut neg = 0.0;
        for (b, &v) in row.iter().enumerate() {
            if b == a {
                continue;
            }
            if v > 0.0 {
                pos += v;
            } else {
                neg -= v;
            }
        }
        u_add = u_add.max(-beta * h[a] + w * pos);
        u_rem = u_rem.max(beta * h[a] + w * neg);
    }
    margin(u_add.max(u_rem))
}

/// Sum of positive parts, sum of negative parts (as a positive number), the
/// largest magnitude and whether all entries are finite, with four
/// independent lanes so the compiler can vectorise.
#[inline(always)]
fn row_stats(row: &[f64]) -> (f64, f64, f64, bool) {
    let mut pos = [0.0f64; 4];
    let mut neg = [0.0f64; 4];
    let mut big = [0.0f64; 4];
    let mut bad = [0.0f64; 4];
    let chunks = row.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..4 {
            let v = c[l];
            // v - v is 0 for finite v and NaN otherwise.
            bad[l] += v - v;
            let a = v.abs();
            big[l] = if a > big[l] { a } else { big[l] };
            pos[l] += if v > 0.0 { v } else { 0.0 };
            neg[l] += if v < 0.0 { -v } else { 0.0 };
        }
    }
    for (l, &v) in rest.iter().enumerate() {
        bad[l] += v - v;
        let a = v.abs();
        big[l] = if a > big[l] { a } else { big[l] };
        pos[l] += if v > 0.0 { v } else { 0.0 };
        neg[l] += if v < 0.0 { -v } else { 0.0 };
    }
    let finite = bad.iter().all(|b| *b == 0.0);
    (
        pos.iter().sum(),
        neg.iter().sum(),
        big.iter().cloned().fold(0.0, f64::max),
        finite,
    )
}

/// Strictly above the bound `u` (and above 0), robust to rounding in the energies.
fn margin(u: f64) -> f64 {
    let u = u.max(0.0);
    u * (1.0 + 1e-6) + 1e-6
}

/// What is wrong with an input of the feature-selection problem.
#[derive(Debug, Clone, PartialEq)]
pub enum InputFault {
    /// `relevance[b, i]` is NaN or infinite.
    RelevanceNotFinite { b: usize, i: usize, value: f64 },
    /// `redundancy[b, i, j]` is NaN or infinite.
    RedundancyNotFinite {
        b: usize,
        i: usize,
        j: usize,
        value: f64,
    },
    /// `redundancy[b, i, j]` differs from `redundancy[b, j, i]`.
    NotSymmetric {
        b: usize,
        i: usize,
        j: usize,
        value: f64,
        transposed: f64,
    },
    /// `redundancy[b, i, i]` is not zero.
    NonZeroDiagonal { b: usize, i: usize, value: f64 },
}

/// Check problem `b` (see [`check_feature_selection_batch`]); writes its
/// safe penalty into `lam` when `beta` is given. Uses AVX2 where the CPU has
/// it (no FMA, so results are identical either way).
fn check_one(
    b: usize,
    n: usize,
    h: &[f64],
    j: &[f64],
    rtol: f64,
    beta: Option<f64>,
    lam: &mut f64,
    copy: Copy<'_>,
) -> Option<InputFault> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { check_one_avx2(b, n, h, j, rtol, beta, lam, copy) };
        }
    }
    check_one_generic::<false>(b, n, h, j, rtol, beta, lam, copy)
}

/// Where one problem's `h` and `J` are copied while they are checked.
type Copy<'a> = Option<(&'a mut [f64], &'a mut [f64])>;

/// [`check_one_generic`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn check_one_avx2(
    b: usize,
    n: usize,
    h: &[f64],
    j: &[f64],
    rtol: f64,
    beta: Option<f64>,
    lam: &mut f64,
    copy: Copy<'_>,
) -> Option<InputFault> {
    check_one_generic::<true>(b, n, h, j, rtol, beta, lam, copy)
}

#[inline(always)]
fn check_one_generic<const SIMD: bool>(
    b: usize,
    n: usize,
    h: &[f64],
    j: &[f64],
    rtol: f64,
    beta: Option<f64>,
    lam: &mut f64,
    mut copy: Copy<'_>,
) -> Option<InputFault> {
    let nn = n * n;
    let hb = &h[b * n..(b + 1) * n];
    if let Some(i) = hb.iter().position(|v| !v.is_finite()) {
        return Some(InputFault::RelevanceNotFinite { b, i, value: hb[i] });
    }
    let jb = &j[b * nn..(b + 1) * nn];
    if let Some((ho, _)) = copy.as_mut() {
        ho.copy_from_slice(hb);
    }
    let w = 1.0 - beta.unwrap_or(0.0);
    let bt = beta.unwrap_or(0.0);
    let (mut u_add, mut u_rem) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut scale: f64 = 1.0;
    for a in 0..n {
        let row = &jb[a * n..(a + 1) * n];
        // Branch-free sums over the row (vectorisable); faults located only when present.
        let (pos, neg, big, finite) = row_stats(row);
        if let Some((_, jo)) = copy.as_mut() {
            // The row is in cache now: copying it here saves a pass over memory.
            jo[a * n..(a + 1) * n].copy_from_slice(row);
        }
        if !finite {
            let c = row.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Some(InputFault::RedundancyNotFinite {
                b,
                i: a,
                j: c,
                value: row[c],
            });
        }
        let diag = row[a];
        if diag != 0.0 {
            return Some(InputFault::NonZeroDiagonal {
                b,
                i: a,
                value: diag,
            });
        }
        scale = scale.max(big);
        u_add = u_add.max(-bt * hb[a] + w * pos);
        u_rem = u_rem.max(bt * hb[a] + w * neg);
    }
    let worst = if SIMD {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `SIMD` is only set by `check_one_avx2`, called after detection.
            unsafe { asymmetry_avx2(jb, n) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            asymmetry(jb, n)
        }
    } else {
        asymmetry(jb, n)
    };
    if worst > rtol * scale {
        // Locate the first offending pair (rare path).
        for a in 0..n {
            for c in a + 1..n {
                let (u, l) = (jb[a * n + c], jb[c * n + a]);
                if (u - l).abs() > rtol * scale {
                    return Some(InputFault::NotSymmetric {
                        b,
                        i: a,
                        j: c,
                        value: u,
                        transposed: l,
                    });
                }
            }
        }
    }
    if beta.is_some() {
        *lam = margin(u_add.max(u_rem));
    }
    None
}

/// Largest `|J[a][c] - J[c][a]|` of a finite `n x n` matrix (row-major).
///
/// Row blocks of [`ASYM_BLOCK`], so the transposed reads stay in cache, and
/// one running maximum per row of the block: a single one would chain every
/// comparison to the previous (latency-bound, 1.5x slower at K = 512).
fn asymmetry(jb: &[f64], n: usize) -> f64 {
    const T: usize = ASYM_BLOCK;
    let mut worst: f64 = 0.0;
    for a0 in (0..n).step_by(T) {
        let a1 = (a0 + T).min(n);
        let mut lane = [0.0f64; T];
        for c in a0 + 1..n {
            let rowc = &jb[c * n + a0..c * n + a1];
            let colc = &jb[a0 * n + c..];
            for (t, (l, &r)) in lane.iter_mut().zip(rowc).enumerate().take(c.min(a1) - a0) {
                let d = (colc[t * n] - r).abs();
                *l = if d > *l { d } else { *l };
            }
        }
        worst = lane.iter().fold(worst, |w, &d| if d > w { d } else { w });
    }
    worst
}

/// Rows per block of [`asymmetry`].
const ASYM_BLOCK: usize = 16;

/// [`asymmetry`] with AVX2: 4 x 4 tiles of `J` compared with the mirror
/// tiles across the diagonal (transposed in registers), walked in
/// [`ASYM_TILE_BLOCK`]-square blocks so both sides stay in cache. The result
/// is exactly [`asymmetry`]'s (a maximum of the same absolute differences).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn asymmetry_avx2(jb: &[f64], n: usize) -> f64 {
    use std::arch::x86_64::*;
    assert!(jb.len() >= n * n);
    const BLOCK: usize = ASYM_TILE_BLOCK;
    let n4 = n / 4 * 4;
    let p = jb.as_ptr();
    let abs = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    let mut acc = [_mm256_setzero_pd(); 4];
    for ab in (0..n4).step_by(BLOCK) {
        for cb in (ab..n4).step_by(BLOCK) {
            for a0 in (ab..(ab + BLOCK).min(n4)).step_by(4) {
                // Tiles on or above the diagonal (a diagonal tile meets its own transpose).
                for c0 in (cb.max(a0)..(cb + BLOCK).min(n4)).step_by(4) {
                    // In bounds: a0 + 3 < n and c0 + 3 < n.
                    let r = |i: usize| _mm256_loadu_pd(p.add((a0 + i) * n + c0));
                    let s = |i: usize| _mm256_loadu_pd(p.add((c0 + i) * n + a0));
                    let (s0, s1, s2, s3) = (s(0), s(1), s(2), s(3));
                    let t0 = _mm256_unpacklo_pd(s0, s1);
                    let t1 = _mm256_unpackhi_pd(s0, s1);
                    let t2 = _mm256_unpacklo_pd(s2, s3);
                    let t3 = _mm256_unpackhi_pd(s2, s3);
                    // u[i] lane l = J[c0 + l][a0 + i], to meet J[a0 + i][c0 + l].
                    let u = [
                        _mm256_permute2f128_pd(t0, t2, 0x20),
                        _mm256_permute2f128_pd(t1, t3, 0x20),
                        _mm256_permute2f128_pd(t0, t2, 0x31),
                        _mm256_permute2f128_pd(t1, t3, 0x31),
                    ];
                    for (i, (a, ui)) in acc.iter_mut().zip(u).enumerate() {
                        let d = _mm256_and_pd(_mm256_sub_pd(r(i), ui), abs);
                        *a = _mm256_max_pd(d, *a);
                    }
                }
            }
        }
    }
    let mut lanes = [0.0f64; 16];
    for (i, a) in acc.iter().enumerate() {
        _mm256_storeu_pd(lanes.as_mut_ptr().add(4 * i), *a);
    }
    let mut worst = lanes.iter().fold(0.0f64, |w, &d| if d > w { d } else { w });
    // Pairs with a column past the last full tile.
    for c in n4..n {
        for a in 0..c {
            let d = (jb[a * n + c] - jb[c * n + a]).abs();
            worst = if d > worst { d } else { worst };
        }
    }
    worst
}

/// Side of the square blocks [`asymmetry_avx2`] walks.
const ASYM_TILE_BLOCK: usize = 32;

/// Check a batch in one pass over memory: finite values, symmetric `J` (up to
/// `rtol` times the largest magnitude of that problem, at least 1) and a zero
/// diagonal. Returns the first fault in problem order. When `penalty` is
/// `Some((beta, out))`, the same pass also writes each problem's
/// [`safe_penalty`] into `out`.
/// With `copy = Some((h_out, j_out))` it also copies the inputs there, row by
/// row while each row is in cache.
pub fn check_feature_selection_batch(
    n: usize,
    h: &[f64],
    j: &[f64],
    rtol: f64,
    penalty: Option<(f64, &mut [f64])>,
    copy: Option<(&mut [f64], &mut [f64])>,
) -> Option<InputFault> {
    let b_count = if n == 0 { 0 } else { h.len() / n };
    let (beta, mut scratch) = match penalty {
        Some((beta, out)) => (Some(beta), Some(out)),
        None => (None, None),
    };
    let mut dummy = vec![0.0; if scratch.is_some() { 0 } else { b_count }];
    let out: &mut [f64] = match scratch.as_mut() {
        Some(o) => o,
        None => &mut dummy,
    };
    let small = is_small(b_count * n * n);
    let first = |faults: Vec<Option<InputFault>>| faults.into_iter().flatten().next();
    match copy {
        None => {
            let one = |(b, lam): (usize, &mut f64)| check_one(b, n, h, j, rtol, beta, lam, None);
            if small {
                out[..b_count]
                    .iter_mut()
                    .enumerate()
                    .map(one)
                    .find(Option::is_some)
                    .flatten()
            } else {
                first(
                    out[..b_count]
                        .par_iter_mut()
                        .enumerate()
                        .with_min_len(8)
                        .map(one)
                        .collect(),
                )
            }
        }
        Some((h_out, j_out)) if n > 0 => {
            let one = |(b, ((lam, ho), jo)): (usize, ((&mut f64, &mut [f64]), &mut [f64]))| {
                check_one(b, n, h, j, rtol, beta, lam, Some((ho, jo)))
            };
            if small {
                let it = out[..b_count]
                    .iter_mut()
                    .zip(h_out.chunks_mut(n))
                    .zip(j_out.chunks_mut(n * n));
                it.enumerate().map(one).find(Option::is_some).flatten()
            } else {
                let it = out[..b_count]
                    .par_iter_mut()
                    .zip(h_out.par_chunks_mut(n))
                    .zip(j_out.par_chunks_mut(n * n));
                first(it.enumerate().with_min_len(8).map(one).collect())
            }
        }
        Some(_) => None,
    }
}

/// Work below this many matrix entries runs on the calling thread: a thread
/// hand-off costs more than the work itself.
pub const SMALL_WORK: usize = 1 << 15;

#[inline]
pub fn is_small(entries: usize) -> bool {
    entries <= SMALL_WORK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qubo_matches_hand_expansion() {
        // n = 2, h = (1, 2), J12 = 0.5, beta = 0.7, penalty (3, 1).
        let h = [1.0, 2.0];
        let j = [0.0, 0.5, 0.5, 0.0];
        let mut q = [0.0; 4];
        let off = feature_selection_qubo(&h, &j, 0.7, Some((3.0, 1)), &mut q);
        assert!((q[0] - (-0.7 + 3.0 * (1.0 - 2.0))).abs() < 1e-12);
        assert!((q[3] - (-1.4 - 3.0)).abs() < 1e-12);
        assert!((q[1] - (0.3 * 0.5 + 6.0)).abs() < 1e-12);
        assert_eq!(q[2], 0.0);
        assert_eq!(off, 3.0);
        // x = (1, 1): objective -0.7 - 1.4 + 0.15, penalty 3 * (2 - 1)^2.
        let e = qubo_energy(&q, off, &[1, 1]);
        assert!((e - (-2.1 + 0.15 + 3.0)).abs() < 1e-12);
    }

    #[test]
    fn objective_energy_matches_qubo() {
        let h = [0.3, 0.9, 0.5];
        let j = [0.0, 0.5, -0.2, 0.5, 0.0, 0.7, -0.2, 0.7, 0.0];
        let mut q = [0.0; 9];
        let off = feature_selection_qubo(&h, &j, 0.6, None, &mut q);
        let mut scratch = Vec::new();
        for s in 0..8u8 {
            let x: Vec<u8> = (0..3).map(|i| (s >> i) & 1).collect();
            let a = feature_selection_energy(&h, &j, 0.6, &x, &mut scratch);
            assert!((a - qubo_energy(&q, off, &x)).abs() < 1e-12);
        }
    }

    /// Symmetric test matrix with one asymmetric pair `(a, c)` of size `d`.
    fn with_asymmetry(n: usize, a: usize, c: usize, d: f64) -> Vec<f64> {
        let mut j = vec![0.0; n * n];
        for r in 0..n {
            for s in r + 1..n {
                // Multiples of 1/8: the asymmetry below is exact.
                let v = ((r * 31 + s * 17) % 13) as f64 / 8.0 - 0.75;
                j[r * n + s] = v;
                j[s * n + r] = v;
            }
        }
        j[a * n + c] += d;
        j
    }

    #[test]
    fn asymmetry_finds_every_position() {
        // Sizes around the 4 x 4 tiles and the 32-blocks, every off-diagonal
        // position in both triangles (also the untiled last rows/columns).
        for n in [2usize, 3, 4, 5, 7, 8, 9, 33, 37] {
            assert_eq!(asymmetry(&with_asymmetry(n, 0, 0, 0.0), n), 0.0);
            for a in 0..n {
                for c in 0..n {
                    if a == c {
                        continue;
                    }
                    let d = 0.25 + (a + c) as f64 / 64.0;
                    let j = with_asymmetry(n, a, c, d);
                    assert_eq!(asymmetry(&j, n), d, "n={n} a={a} c={c}");
                    #[cfg(target_arch = "x86_64")]
                    if std::is_x86_feature_detected!("avx2") {
                        // SAFETY: detected just above.
                        assert_eq!(unsafe { asymmetry_avx2(&j, n) }, d, "avx2 n={n} a={a} c={c}");
                    }
                }
            }
        }
    }

    #[test]
    fn faults_are_found_in_order() {
        let h = [1.0, 2.0, 1.0, f64::NAN];
        let good = [0.0, 0.5, 0.5, 0.0];
        let mut j = [good, good].concat();
        assert_eq!(
            check_feature_selection_batch(2, &h[..2], &good, 1e-9, None, None),
            None
        );
        assert!(matches!(
            check_feature_selection_batch(2, &h, &j, 1e-9, None, None),
            Some(InputFault::RelevanceNotFinite { b: 1, i: 1, .. })
        ));
        j[1] = 0.6;
        assert!(matches!(
            check_feature_selection_batch(2, &[1.0; 4], &j, 1e-9, None, None),
            Some(InputFault::NotSymmetric {
                b: 0,
                i: 0,
                j: 1,
                ..
            })
        ));
        j[1] = 0.5;
        j[7] = 1.0;
        assert!(matches!(
            check_feature_selection_batch(2, &[1.0; 4], &j, 1e-9, None, None),
            Some(InputFault::NonZeroDiagonal { b: 1, i: 1, .. })
        ));
        // The fused penalty equals safe_penalty.
        let h2 = [0.3, 0.9, 0.5, 0.1];
        let j2 = [0.0, 0.5, -0.2, 0.5, 0.0, 0.7, -0.2, 0.7, 0.0];
        let mut out = [0.0];
        assert_eq!(
            check_feature_selection_batch(3, &h2[..3], &j2, 1e-9, Some((0.7, &mut out)), None),
            None
        );
        assert_eq!(out[0], safe_penalty(&h2[..3], &j2, 0.7));
        // The fused copy is exact.
        let (mut hc, mut jc) = ([0.0; 3], [0.0; 9]);
        assert_eq!(
            check_feature_selection_batch(3, &h2[..3], &j2, 1e-9, None, Some((&mut hc, &mut jc))),
            None
        );
        assert_eq!((hc.to_vec(), jc.to_vec()), (h2[..3].to_vec(), j2.to_vec()));
    }
}

//! The cardinality-preserving (swap) annealer, its descent and the tabu polish.

use rand::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::model::{fields_of, Couplings, DenseModel};
use super::real::Real;
use super::{below, has_avx2, metropolis};

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

/// State of the swap annealer: which variables are selected, as two lists.
pub(super) struct Subsets {
    pub(super) sel: Vec<u32>,
    pub(super) uns: Vec<u32>,
}

impl Subsets {
    pub(super) fn of(x: &[u8]) -> Self {
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

/// The best swap `(a, j, delta)` (slot in `sel`, unselected index) among
/// those that surely improve: `delta < -(tol_i + tol_j)` with the per-variable
/// rounding bounds ([`Couplings::flip_tolerance`]; a tolerance scaled by
/// the largest coefficient hid the swaps of small variables beside huge
/// ones). `d[v] = Q_vv + f_v` for unselected `v` and a huge value for selected
/// ones, so the inner minimum over all `v` is contiguous and vectorised
/// (`O(k n / 8)` per pass); for each `i`, the entering `j` is its row's first
/// minimiser, looked up only when `i` would beat the best so far.
#[inline(always)]
fn best_swap<F: Real>(m: &DenseModel<'_, F>, s: &Subsets, f: &[F], d: &[F]) -> Option<(usize, usize, F)> {
    // tol_i + tol_j <= 2 m.tol: below -2 m.tol a swap improves for sure, and
    // its entering j is found once, at the end; above, only tiny rows can
    // make a swap sure, and j is needed to tell.
    let sure = -(m.tol + m.tol);
    let mut best = F::ZERO;
    // (slot a, row minimum, j if already found)
    let mut arg: Option<(usize, F, Option<usize>)> = None;
    let first_min = |wi: &[F], low: F| (0..m.n).find(|&v| d[v] - wi[v] <= low);
    for (a, &i) in s.sel.iter().enumerate() {
        let i = i as usize;
        let wi = m.row(i);
        let low = min_diff(d, wi);
        let delta = low - (m.diag[i] + f[i]);
        if delta >= best {
            continue;
        }
        if delta < sure {
            best = delta;
            arg = Some((a, low, None));
        } else if delta < -m.flip_tolerance(i) {
            // The first index reaching the row minimum (same arithmetic as min_diff).
            let Some(j) = first_min(wi, low) else { continue };
            if delta < -(m.flip_tolerance(i) + m.flip_tolerance(j)) {
                best = delta;
                arg = Some((a, low, Some(j)));
            }
        }
    }
    let (a, low, j) = arg?;
    let j = match j {
        Some(j) => j,
        None => first_min(m.row(s.sel[a] as usize), low)?,
    };
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
pub(super) fn descend_swap<F: Real>(m: &DenseModel<'_, F>, s: &mut Subsets, x: &mut [u8], f: &mut [F]) {
    let mut d = vec![F::ZERO; m.n];
    for _ in 0..4 * m.n + 16 {
        unselected_costs(m, x, f, &mut d);
        match best_swap(m, s, f, &d) {
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

//! The vector kernels of the Lanczos iteration ([`super::lanczos`]) and of the matrix-free
//! operators: deterministic chunked reductions (the sum of a chunk in 8 lanes combined in a
//! fixed order, chunks summed in order, so results do not depend on the thread count),
//! fused many-vector Gram-Schmidt and combinations over cache-sized blocks, each leaf kernel
//! with an AVX2 build that gives the same bits (the `wide_kernel!` macro).

use rayon::prelude::*;

use crate::core::rng::splitmix64;

/// Chunk of the deterministic reductions and the parallel loops.
pub const CHUNK: usize = 1 << 13;
/// Vectors at least this long are processed in parallel.
pub const PAR_MIN: usize = 1 << 15;
/// Block of the many-vector kernels: one block of the output (and one of each input) stays in
/// the L1 cache while every input vector streams past it.
const BLOCK: usize = 1 << 10;

/// `acc[i] += sum_k x[8k + i] y[8k + i]` (lengths multiples of 8): the lanes of [`dot_chunk`].
#[inline(always)]
pub fn add_lanes(acc: &mut [f64; 8], x: &[f64], y: &[f64]) {
    for (a, b) in x.chunks_exact(8).zip(y.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
}

/// The 8 lanes combined in the fixed order of [`dot_chunk`].
#[inline(always)]
pub fn combine_lanes(acc: &[f64; 8]) -> f64 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

wide_kernel! {
    /// `sum x_i y_i` of one chunk in 8 interleaved partial sums (so that it vectorises),
    /// combined in a fixed order.
    pub fn dot_chunk(x: &[f64], y: &[f64]) -> f64 {
        let mut acc = [0.0f64; 8];
        let n8 = x.len() / 8 * 8;
        add_lanes(&mut acc, &x[..n8], &y[..n8]);
        let mut s = combine_lanes(&acc);
        for (a, b) in x[n8..].iter().zip(&y[n8..]) {
            s += a * b;
        }
        s
    }
}

/// Runs `f(chunk_index)` over the chunks of a vector of length `n` (in parallel for long
/// vectors) and returns the results in chunk order.
pub(crate) fn map_chunks<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    let chunks = n.div_ceil(CHUNK);
    if n >= PAR_MIN {
        (0..chunks).into_par_iter().map(f).collect()
    } else {
        (0..chunks).map(f).collect()
    }
}

/// Runs `f(first index, chunk)` over the chunks of `y` (in parallel for long vectors) and
/// returns the results in chunk order.
pub(crate) fn map_chunks_mut<T: Send>(y: &mut [f64], f: impl Fn(usize, &mut [f64]) -> T + Sync + Send) -> Vec<T> {
    if y.len() >= PAR_MIN {
        y.par_chunks_mut(CHUNK).enumerate().map(|(k, c)| f(k * CHUNK, c)).collect()
    } else {
        y.chunks_mut(CHUNK).enumerate().map(|(k, c)| f(k * CHUNK, c)).collect()
    }
}

/// [`map_chunks_mut`] without results.
pub(crate) fn for_chunks_mut(y: &mut [f64], f: impl Fn(usize, &mut [f64]) + Sync + Send) {
    map_chunks_mut(y, f);
}

/// Per-chunk partial sums (`parts[chunk][i]`, `n` values each) summed over the chunks in order.
fn sum_over_chunks(parts: &[Vec<f64>], n: usize) -> Vec<f64> {
    (0..n).map(|i| parts.iter().map(|p| p[i]).sum()).collect()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    map_chunks(a.len(), |k| {
        let lo = k * CHUNK;
        let hi = (lo + CHUNK).min(a.len());
        dot_chunk(&a[lo..hi], &b[lo..hi])
    })
    .iter()
    .sum()
}

wide_kernel! {
    /// `<u, w>` of every `u` over the elements `lo..hi`, as [`dot_chunk`] sums them, `w`'s
    /// block held in cache while the `u` stream past it.
    fn multi_dot_chunk(us: &[&[f64]], w: &[f64], lo: usize, hi: usize) -> Vec<f64> {
        let n8 = lo + (hi - lo) / 8 * 8;
        let mut acc = vec![[0.0f64; 8]; us.len()];
        let mut s = lo;
        while s < n8 {
            let e = (s + BLOCK).min(n8);
            for (u, a) in us.iter().zip(acc.iter_mut()) {
                add_lanes(a, &u[s..e], &w[s..e]);
            }
            s = e;
        }
        us.iter()
            .zip(&acc)
            .map(|(u, a)| {
                let mut t = combine_lanes(a);
                for (x, y) in u[n8..hi].iter().zip(&w[n8..hi]) {
                    t += x * y;
                }
                t
            })
            .collect()
    }
}

/// `[dot(u, w) for u in us]`, bit for bit, in one pass over `w` (each `u` streamed once).
pub fn multi_dot(us: &[&[f64]], w: &[f64]) -> Vec<f64> {
    let n = w.len();
    let parts = map_chunks(n, |k| multi_dot_chunk(us, w, k * CHUNK, (k * CHUNK + CHUNK).min(n)));
    sum_over_chunks(&parts, us.len())
}

wide_kernel! {
    /// `out = (init or 0) - sum_i coefs[i] us[i][lo..]` over `out`'s elements (each element
    /// updated in the order of `us`, as repeated [`axpy`] calls would), then `out *= scale`
    /// unless `scale` is 1; block by block, every `u` streamed once.
    fn combine_chunk(out: &mut [f64], init: Option<&[f64]>, us: &[&[f64]], coefs: &[f64], sign: f64, scale: f64, lo: usize) {
        for (k, ob) in out.chunks_mut(BLOCK).enumerate() {
            let s = lo + k * BLOCK;
            let len = ob.len();
            match init {
                Some(w) => ob.copy_from_slice(&w[s..s + len]),
                None => {}
            }
            for (u, &c) in us.iter().zip(coefs) {
                let c = sign * c;
                for (p, q) in ob.iter_mut().zip(&u[s..s + len]) {
                    *p += c * q;
                }
            }
            if scale != 1.0 {
                for p in ob.iter_mut() {
                    *p *= scale;
                }
            }
        }
    }
}

/// [`combine_chunk`]'s `w -= sum_i coefs[i] us[i]` over one chunk, block by block, with the
/// chunk's `<w, w>` afterwards summed in the lanes of [`dot_chunk`] while each block is hot.
fn sub_norm_chunk(wc: &mut [f64], us: &[&[f64]], coefs: &[f64], lo: usize) -> f64 {
    let n8 = wc.len() / 8 * 8;
    let mut acc = [0.0f64; 8];
    for (k, wb) in wc.chunks_mut(BLOCK).enumerate() {
        combine_chunk(wb, None, us, coefs, -1.0, 1.0, lo + k * BLOCK);
        // only the chunk's last block can end off the lanes (BLOCK is a multiple of 8)
        let m = wb.len() / 8 * 8;
        add_lanes(&mut acc, &wb[..m], &wb[..m]);
    }
    let mut t = combine_lanes(&acc);
    for x in &wc[n8..] {
        t += x * x;
    }
    t
}

/// `w -= sum_i coefs[i] us[i]`, returning `<w, w>` of the result (one pass).
pub(crate) fn sub_combination_norm(w: &mut [f64], us: &[&[f64]], coefs: &[f64]) -> f64 {
    map_chunks_mut(w, |lo, wc| sub_norm_chunk(wc, us, coefs, lo)).iter().sum()
}

/// `w -= sum_i coefs[i] us[i]` (each element updated in the order of `us`, as repeated
/// [`axpy`] calls would), every `u` streamed once.
pub fn sub_combination(w: &mut [f64], us: &[&[f64]], coefs: &[f64]) {
    for_chunks_mut(w, |lo, wc| combine_chunk(wc, None, us, coefs, -1.0, 1.0, lo));
}

/// `out = sum_i coefs[i] us[i]` (summed in the order of `us`), every `u` streamed once.
pub fn combination(out: &mut [f64], us: &[&[f64]], coefs: &[f64]) {
    for_chunks_mut(out, |lo, oc| {
        oc.iter_mut().for_each(|p| *p = 0.0);
        combine_chunk(oc, None, us, coefs, 1.0, 1.0, lo)
    });
}

/// `out = w * inv` (the next basis vector).
pub(crate) fn write_scaled(out: &mut [f64], w: &[f64], inv: f64) {
    for_chunks_mut(out, |lo, oc| combine_chunk(oc, Some(w), &[], &[], 1.0, inv, lo));
}

/// `y += alpha * x`.
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for_chunks_mut(y, |lo, yc| combine_chunk(yc, None, &[x], &[alpha], 1.0, 1.0, lo));
}

pub fn scale(alpha: f64, y: &mut [f64]) {
    for p in y.iter_mut() {
        *p *= alpha;
    }
}

/// Gram-Schmidt of `w` against the orthonormal `against` (classical, a second pass when the
/// first removed most of the vector); returns the squared norm of the result.
pub(crate) fn orthogonalise(w: &mut [f64], against: &[&[f64]]) -> f64 {
    if against.is_empty() {
        return dot(w, w);
    }
    let (coef, before) = {
        let mut list = against.to_vec();
        list.push(&*w);
        let c = multi_dot(&list, w);
        (c[..against.len()].to_vec(), c[against.len()])
    };
    sub_combination(w, against, &coef);
    let mut after = dot(w, w);
    // a second pass only when the first one removed most of the vector
    if after <= 0.49 * before {
        let c = multi_dot(against, w);
        sub_combination(w, against, &c);
        after = dot(w, w);
    }
    after
}

wide_kernel! {
    /// One chunk of [`recurrence`]: `w -= a v + b u` over `w`'s elements (from `lo`), and
    /// `[<w, w>, <p, w> for p in probes]` of the result, each summed as [`dot_chunk`] would.
    fn recurrence_chunk(wc: &mut [f64], a: f64, v: &[f64], prev: Option<(f64, &[f64])>, probes: &[&[f64]], lo: usize) -> Vec<f64> {
        let len = wc.len();
        let n8 = len / 8 * 8;
        let vc = &v[lo..lo + len];
        let (b, uc) = match prev {
            Some((b, u)) => (b, &u[lo..lo + len]),
            None => (0.0, vc),
        };
        let mut ww = [0.0f64; 8];
        for ((wg, vg), ug) in wc[..n8].chunks_exact_mut(8).zip(vc.chunks_exact(8)).zip(uc.chunks_exact(8)) {
            for i in 0..8 {
                let t = if prev.is_some() { (wg[i] - a * vg[i]) - b * ug[i] } else { wg[i] - a * vg[i] };
                wg[i] = t;
                ww[i] += t * t;
            }
        }
        for i in n8..len {
            wc[i] = if prev.is_some() { (wc[i] - a * vc[i]) - b * uc[i] } else { wc[i] - a * vc[i] };
        }
        let wc: &[f64] = wc;
        let mut out = Vec::with_capacity(probes.len() + 1);
        let mut t = combine_lanes(&ww);
        for x in &wc[n8..] {
            t += x * x;
        }
        out.push(t);
        out.extend(multi_dot_chunk(&probes.iter().map(|p| &p[lo..lo + len]).collect::<Vec<_>>(), wc, 0, len));
        out
    }
}

/// One pass of the three-term recurrence: `w -= a v + b u`, returning
/// `[<w, w>, <p, w> for p in probes]` of the updated `w`.
pub(crate) fn recurrence(w: &mut [f64], a: f64, v: &[f64], prev: Option<(f64, &[f64])>, probes: &[&[f64]]) -> Vec<f64> {
    let parts = map_chunks_mut(w, |lo, c| recurrence_chunk(c, a, v, prev, probes, lo));
    sum_over_chunks(&parts, probes.len() + 1)
}

/// Deterministic pseudo-random entries in [-0.5, 0.5).
pub fn pseudo_random(dim: usize, seed: u64) -> Vec<f64> {
    let mut v = vec![0.0; dim];
    fill_pseudo_random(&mut v, seed);
    v
}

pub(crate) fn fill_pseudo_random(v: &mut [f64], seed: u64) {
    let mut s = seed ^ 0x5EED_0F_1A2C_u64;
    for p in v.iter_mut() {
        *p = (splitmix64(&mut s) >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused kernels against their one-vector definitions, bit for bit, on lengths that
    /// are not multiples of the lanes, the block or the chunk, and one above the parallel size.
    #[test]
    fn fused_kernels_equal_their_plain_definitions() {
        for n in [1usize, 7, 8, 13, 1000, 1031, 8191, 8200, PAR_MIN + 77] {
            let us: Vec<Vec<f64>> = (0..5).map(|i| pseudo_random(n, 10 + i)).collect();
            let refs: Vec<&[f64]> = us.iter().map(|u| u.as_slice()).collect();
            let w = pseudo_random(n, 3);
            let coefs = [0.3, -1.25, 2.0, 1e-3, -0.5];
            let md = multi_dot(&refs, &w);
            for (u, m) in refs.iter().zip(&md) {
                assert_eq!(dot(u, &w).to_bits(), m.to_bits(), "multi_dot, n = {n}");
            }
            let mut a = w.clone();
            sub_combination(&mut a, &refs, &coefs);
            let mut b = w.clone();
            for (u, c) in refs.iter().zip(&coefs) {
                for (p, q) in b.iter_mut().zip(u.iter()) {
                    *p -= c * q;
                }
            }
            assert_eq!(a, b, "sub_combination, n = {n}");
            let mut c = w.clone();
            let norm = sub_combination_norm(&mut c, &refs, &coefs);
            assert_eq!(c, b, "sub_combination_norm, n = {n}");
            assert!((norm - dot(&b, &b)).abs() <= 1e-12 * norm.max(1.0), "norm, n = {n}");
            let mut x = vec![7.0; n];
            combination(&mut x, &refs, &coefs);
            let mut y = vec![0.0; n];
            for (u, c) in refs.iter().zip(&coefs) {
                for (p, q) in y.iter_mut().zip(u.iter()) {
                    *p += c * q;
                }
            }
            assert_eq!(x, y, "combination, n = {n}");
            let mut r = w.clone();
            let d = recurrence(&mut r, 0.7, &us[0], Some((0.2, &us[1])), &refs[2..]);
            let want: Vec<f64> = w.iter().zip(&us[0]).zip(&us[1]).map(|((p, x), y)| (p - 0.7 * x) - 0.2 * y).collect();
            assert_eq!(r, want, "recurrence, n = {n}");
            assert!((d[0] - dot(&want, &want)).abs() <= 1e-12 * d[0].max(1.0));
            for (k, u) in refs[2..].iter().enumerate() {
                assert!((d[k + 1] - dot(u, &want)).abs() <= 1e-12, "probe {k}, n = {n}");
            }
        }
    }
}

//! The flip-move path-integral kernel on [`LANES`] reads at once, one per
//! SIMD lane (AVX2), making for every lane exactly the draws, decisions and
//! field updates the scalar [`sweep_flip`](super::sweep_flip) makes for its
//! read, so a read's result never depends on which kernel ran it (tested).
//!
//! Per attempt (slice `s`, spin `i`) the eight lanes compute their `delta`
//! together; a lane draws its uniform (advances its own xoshiro256++ stream)
//! only where the scalar kernel draws one (`0 < delta <= CUTOFF`: the other
//! lanes keep their generator state by a blend), and the decision is
//! `delta <= 0 or u < exp_neg(delta)`, which is the scalar decision (its
//! bounds never contradict `exp_neg`). The fields of slice `s` are updated for
//! all lanes at once (masked) when any lane accepts. What this saves is the
//! scalar loop's mispredicted branches and its per-attempt instruction count;
//! what it costs is a full `n`-long row update whenever any of the eight lanes
//! accepts, hence [`LANES_MAX_N`].

use super::super::rng::OpenXoshiro;
use super::super::sa::{fields_of, Couplings, DenseModel, LANES};

/// Largest `n` the lane kernel runs (the row update of all lanes costs `n`
/// vector operations whenever one lane accepts; see the module docs).
/// Measured (one thread, 16 vs 4 reads of explanation-shaped penalty QUBOs,
/// P = 16, ns per spin-slice update, lanes / scalar): at the benchmark's
/// physics (T = 0.2, Gamma 1 -> 0.001) 3.0 / 6.1 at n = 64, 1.7 / 4.2 at 192,
/// 1.5 / 3.4 at 256, 1.4 / 1.8 at 384; where most attempts are accepted
/// (T = 2, Gamma 30 -> 9) 4.4 / 12.7 at 64, 10.2 / 12.8 at 192, 11.0 / 11.7
/// at 256, but 13.5 / 12.5 at 384.
pub const LANES_MAX_N: usize = 256;

/// Fewest reads of a group worth the lane kernel (the other lanes run idle).
pub const LANES_MIN_READS: usize = 5;

/// Anneal [`LANES`] reads of the flip-move path integral on one dense `f32`
/// model: lane `l` starts every slice from `x0s[l n..(l + 1) n]` with
/// generator `rngs[l]` and ends with its path (slice `s` of lane `l` at
/// `paths[(l p + s) n..]`, `p` slices); `weights` as for
/// [`anneal_read`](super::anneal_read).
///
/// Compiled with AVX-512 (VL) where the CPU has it, for its 32 vector
/// registers (the AVX2 build spills generator state to the stack every
/// attempt): the same operations, so the same results (tested).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn anneal_flip_lanes_x86(
    m: &DenseModel<'_, f32>,
    weights: &[(f64, f64)],
    p: usize,
    global: bool,
    rngs: &mut [OpenXoshiro; LANES],
    x0s: &[u8],
    paths: &mut [u8],
) {
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl") && !force_avx2() {
        anneal_flip_lanes_avx512(m, weights, p, global, rngs, x0s, paths)
    } else {
        anneal_flip_lanes_avx2(m, weights, p, global, rngs, x0s, paths)
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: run the AVX2 build even where AVX-512 is available.
    pub(super) static FORCE_AVX2: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[inline(always)]
fn force_avx2() -> bool {
    #[cfg(test)]
    {
        FORCE_AVX2.with(|c| c.get())
    }
    #[cfg(not(test))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn anneal_flip_lanes_avx2(
    m: &DenseModel<'_, f32>,
    weights: &[(f64, f64)],
    p: usize,
    global: bool,
    rngs: &mut [OpenXoshiro; LANES],
    x0s: &[u8],
    paths: &mut [u8],
) {
    kernel(m, weights, p, global, rngs, x0s, paths)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn anneal_flip_lanes_avx512(
    m: &DenseModel<'_, f32>,
    weights: &[(f64, f64)],
    p: usize,
    global: bool,
    rngs: &mut [OpenXoshiro; LANES],
    x0s: &[u8],
    paths: &mut [u8],
) {
    kernel(m, weights, p, global, rngs, x0s, paths)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel(
    m: &DenseModel<'_, f32>,
    weights: &[(f64, f64)],
    p: usize,
    global: bool,
    rngs: &mut [OpenXoshiro; LANES],
    x0s: &[u8],
    paths: &mut [u8],
) {
    use std::arch::x86_64::*;

    use super::super::sa::{exp_neg8, load_lane_words, store_lane_words, uniforms8, xoshiro_step4};
    use super::super::sa::Real;

    let n = m.n();
    let diag = m.diag();
    assert!(p >= 1 && x0s.len() == LANES * n && paths.len() == LANES * p * n && diag.len() == n);
    // Lane-major path: entry (s, j) of lane l at ((s n + j) LANES + l).
    // sg: +1 where x = 0 (a flip adds +(Q_jj + f_j)), -1 where x = 1.
    let mut f = vec![0.0f32; p * n * LANES];
    let mut sg = vec![0.0f32; p * n * LANES];
    let mut f0 = vec![0.0f32; n];
    for l in 0..LANES {
        let x = &x0s[l * n..(l + 1) * n];
        fields_of(m, x, &mut f0);
        for s in 0..p {
            for j in 0..n {
                f[(s * n + j) * LANES + l] = f0[j];
                sg[(s * n + j) * LANES + l] = if x[j] != 0 { -1.0 } else { 1.0 };
            }
        }
    }
    let (mut lo, mut hi) = load_lane_words(rngs);
    let zero = _mm256_setzero_ps();
    let cut = _mm256_set1_ps(f32::CUTOFF);
    let sign = _mm256_set1_ps(-0.0);

    // The Metropolis decisions of the eight lanes for `delta`, drawing where
    // the scalar kernel draws.
    #[inline(always)]
    unsafe fn decide(
        delta: __m256,
        lo: &mut [__m256i; 4],
        hi: &mut [__m256i; 4],
        zero: __m256,
        cut: __m256,
    ) -> __m256 {
        let pos = _mm256_cmp_ps::<_CMP_GT_OQ>(delta, zero);
        let draw = _mm256_and_ps(pos, _mm256_cmp_ps::<_CMP_NGT_UQ>(delta, cut));
        let dm = _mm256_castps_si256(draw);
        let m_lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(dm));
        let m_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(dm));
        let (mut nlo, mut nhi) = (*lo, *hi);
        let u = uniforms8(xoshiro_step4(&mut nlo), xoshiro_step4(&mut nhi));
        for w in 0..4 {
            lo[w] = _mm256_blendv_epi8(lo[w], nlo[w], m_lo);
            hi[w] = _mm256_blendv_epi8(hi[w], nhi[w], m_hi);
        }
        let e = exp_neg8(_mm256_and_ps(pos, _mm256_min_ps(delta, cut)));
        _mm256_or_ps(_mm256_cmp_ps::<_CMP_NGT_UQ>(delta, zero), _mm256_and_ps(draw, _mm256_cmp_ps::<_CMP_LT_OQ>(u, e)))
    }

    // f_s += ms W_i for every lane (ms = +-1 where a lane accepted, +0
    // elsewhere): ms W_ij is exact, so the fused multiply-add rounds as the
    // scalar f +- W_ij does.
    #[inline(always)]
    unsafe fn update(fs: *mut f32, row: &[f32], ms: __m256) {
        for (j, &w) in row.iter().enumerate() {
            let q = fs.add(LANES * j);
            _mm256_storeu_ps(q, _mm256_fmadd_ps(ms, _mm256_set1_ps(w), _mm256_loadu_ps(q)));
        }
    }

    let fp = f.as_mut_ptr();
    let sp = sg.as_mut_ptr();
    for &(wc, kt) in weights {
        let vwc = _mm256_set1_ps(wc as f32);
        // 2K in f32; the scalar time term is +-f32(4K) = +-2 f32(2K) exactly.
        let vt2 = _mm256_set1_ps((2.0 * kt) as f32);
        for s in 0..p {
            let sa = if s == 0 { p - 1 } else { s - 1 };
            let sb = if s + 1 == p { 0 } else { s + 1 };
            let (fs, ss, sap, sbp) = (fp.add(s * n * LANES), sp.add(s * n * LANES), sp.add(sa * n * LANES), sp.add(sb * n * LANES));
            for i in 0..n {
                let o = LANES * i;
                let si = _mm256_loadu_ps(ss.add(o));
                let fi = _mm256_loadu_ps(fs.add(o));
                let nb = _mm256_add_ps(_mm256_loadu_ps(sap.add(o)), _mm256_loadu_ps(sbp.add(o)));
                // delta = wc (sign (Q_ii + f_i)) + 2K sign (sign_a + sign_b): the scalar's operations.
                let a = _mm256_mul_ps(vwc, _mm256_mul_ps(si, _mm256_add_ps(_mm256_set1_ps(*diag.get_unchecked(i)), fi)));
                let delta = _mm256_add_ps(a, _mm256_mul_ps(vt2, _mm256_mul_ps(si, nb)));
                let acc = decide(delta, &mut lo, &mut hi, zero, cut);
                if _mm256_movemask_ps(acc) != 0 {
                    _mm256_storeu_ps(ss.add(o), _mm256_xor_ps(si, _mm256_and_ps(acc, sign)));
                    update(fs, m.row(i), _mm256_and_ps(acc, si));
                }
            }
        }
        if global && p > 1 {
            for i in 0..n {
                let q = _mm256_set1_ps(*diag.get_unchecked(i));
                let mut de = zero;
                for s in 0..p {
                    let o = (s * n + i) * LANES;
                    de = _mm256_add_ps(de, _mm256_mul_ps(_mm256_loadu_ps(sp.add(o)), _mm256_add_ps(q, _mm256_loadu_ps(fp.add(o)))));
                }
                let acc = decide(_mm256_mul_ps(vwc, de), &mut lo, &mut hi, zero, cut);
                if _mm256_movemask_ps(acc) != 0 {
                    for s in 0..p {
                        let o = (s * n + i) * LANES;
                        let si = _mm256_loadu_ps(sp.add(o));
                        _mm256_storeu_ps(sp.add(o), _mm256_xor_ps(si, _mm256_and_ps(acc, sign)));
                        update(fp.add(s * n * LANES), m.row(i), _mm256_and_ps(acc, si));
                    }
                }
            }
        }
    }
    store_lane_words(&lo, &hi, rngs);
    for l in 0..LANES {
        for t in 0..p * n {
            paths[l * p * n + t] = (sg[t * LANES + l] < 0.0) as u8;
        }
    }
}

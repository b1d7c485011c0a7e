//! The flip annealer on [`LANES`] reads at once, one per SIMD lane.

use super::super::rng::{xoshiro_step, OpenXoshiro};
use super::has_avx2;
use super::model::{fields_of, DenseModel};
use super::real::Real;

/// Reads [`anneal_flip_lanes`] anneals side by side.
pub const LANES: usize = 8;

/// Largest `n` the lane kernel runs: it updates every lane's fields when one
/// lane accepts (`n` multiply-adds of [`LANES`] floats), which beats the scalar
/// kernel's mispredicted branches only while rows are short. Measured on
/// explanation-shaped penalty QUBOs, 100 sweeps, 8 reads, one thread: 4.0 vs
/// 7.1 ns per attempt at n = 64, 6.5 vs 8.6 at n = 192, 8.8 vs 7.8 at n = 256.
pub const LANES_MAX_N: usize = 192;

/// Fewest reads in a group of [`LANES`] worth the lane kernel (the other
/// lanes run idle, and are discarded): a group costs about what 6 scalar
/// reads cost at n = 192, 4.5 at n = 64.
pub const LANES_MIN_READS: usize = 6;

/// Lane-major fields `g_j = Q_jj + f_j` of the states `xs` (lane `l` at
/// `xs[l n..]`), computed as the scalar kernel computes them, and the move
/// signs: +1 switches a 0 on, -1 a 1 off.
#[inline(always)]
fn lane_fields(m: &DenseModel<'_, f32>, xs: &[u8]) -> (Vec<[f32; LANES]>, Vec<[f32; LANES]>) {
    let n = m.n;
    let mut g = vec![[0.0f32; LANES]; n];
    let mut sg = vec![[0.0f32; LANES]; n];
    let mut f = vec![0.0f32; n];
    for l in 0..LANES {
        let x = &xs[l * n..(l + 1) * n];
        fields_of(m, x, &mut f);
        for j in 0..n {
            g[j][l] = f[j] + m.diag[j];
            sg[j][l] = if x[j] != 0 { -1.0 } else { 1.0 };
        }
    }
    (g, sg)
}

/// The states encoded by the move signs of [`lane_fields`] (a 1 moves by -1).
#[inline(always)]
fn lane_states(sg: &[[f32; LANES]], xs: &mut [u8]) {
    let n = sg.len();
    for l in 0..LANES {
        for j in 0..n {
            xs[l * n + j] = (sg[j][l] < 0.0) as u8;
        }
    }
}

/// [`LANES`] reads of [`anneal_flip`](super::anneal_flip) (without its final descent) on one dense
/// `f32` model at once: lane `l` anneals `xs[l n..(l + 1) n]` (in place) with
/// generator `rngs[l]`, making exactly the draws, decisions and field updates
/// the scalar kernel makes, so its result is bit for bit the scalar one.
#[inline(always)]
pub fn anneal_flip_lanes(m: &DenseModel<'_, f32>, betas: &[f32], rngs: &mut [OpenXoshiro; LANES], xs: &mut [u8]) {
    let n = m.n;
    assert!(xs.len() == LANES * n);
    let (mut g, mut sg) = lane_fields(m, xs);
    let (mut s0, mut s1, mut s2, mut s3) = ([0u64; LANES], [0u64; LANES], [0u64; LANES], [0u64; LANES]);
    for l in 0..LANES {
        [s0[l], s1[l], s2[l], s3[l]] = rngs[l].s;
    }
    for &beta in betas {
        for i in 0..n {
            let (gi, si) = (g[i], sg[i]);
            let mut take = [false; LANES];
            let mut any = 0u32;
            for l in 0..LANES {
                let u = f32::unit(xoshiro_step(&mut s0[l], &mut s1[l], &mut s2[l], &mut s3[l]));
                let bd = beta * (si[l] * gi[l]);
                // The exponential of the clamped argument, used only where
                // the argument was in range (then it is the scalar one).
                let c = if bd > 0.0 { if bd < f32::CUTOFF { bd } else { f32::CUTOFF } } else { 0.0 };
                let e = c.exp_neg();
                let accept = !(bd > 0.0) || (bd <= f32::CUTOFF && u < e);
                take[l] = accept;
                any |= accept as u32;
            }
            if any != 0 {
                for l in 0..LANES {
                    sg[i][l] = if take[l] { -si[l] } else { si[l] };
                }
                // Rejecting lanes add +0 (not 0 * w, which is NaN for an infinite w).
                for (gj, &w) in g.iter_mut().zip(m.row(i)) {
                    for l in 0..LANES {
                        gj[l] += if take[l] { si[l] * w } else { 0.0 };
                    }
                }
            }
        }
    }
    for l in 0..LANES {
        rngs[l].s = [s0[l], s1[l], s2[l], s3[l]];
    }
    lane_states(&sg, xs);
}

/// `rotl` of each 64-bit lane by `k` (23 or 45, constant after inlining).
///
/// # Safety
/// Only inside a function compiled with AVX2 on a CPU that has it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn rotl4(x: std::arch::x86_64::__m256i, k: i32) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    _mm256_or_si256(_mm256_sll_epi64(x, _mm_cvtsi32_si128(k)), _mm256_srl_epi64(x, _mm_cvtsi32_si128(64 - k)))
}

/// One xoshiro256++ step of four generators (state word `w` of generator `g`
/// in 64-bit lane `g` of `s[w]`); returns their outputs.
///
/// # Safety
/// As [`rotl4`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn xoshiro_step4(s: &mut [std::arch::x86_64::__m256i; 4]) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let out = _mm256_add_epi64(rotl4(_mm256_add_epi64(s[0], s[3]), 23), s[0]);
    let t = _mm256_slli_epi64::<17>(s[1]);
    s[2] = _mm256_xor_si256(s[2], s[0]);
    s[3] = _mm256_xor_si256(s[3], s[1]);
    s[1] = _mm256_xor_si256(s[1], s[2]);
    s[0] = _mm256_xor_si256(s[0], s[3]);
    s[2] = _mm256_xor_si256(s[2], t);
    s[3] = rotl4(s[3], 45);
    out
}

/// The generator states of eight lanes in registers: state word `w` of lane
/// `l` in 64-bit lane `l % 4` of `lo[w]` (lanes 0-3) or `hi[w]` (lanes 4-7).
///
/// # Safety
/// As [`rotl4`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn load_lane_words(
    rngs: &[OpenXoshiro; LANES],
) -> ([std::arch::x86_64::__m256i; 4], [std::arch::x86_64::__m256i; 4]) {
    use std::arch::x86_64::*;
    let word = |w: usize, from: usize| {
        _mm256_set_epi64x(rngs[from + 3].s[w] as i64, rngs[from + 2].s[w] as i64, rngs[from + 1].s[w] as i64, rngs[from].s[w] as i64)
    };
    ([word(0, 0), word(1, 0), word(2, 0), word(3, 0)], [word(0, 4), word(1, 4), word(2, 4), word(3, 4)])
}

/// Writes the registers of [`load_lane_words`] back into the generators.
///
/// # Safety
/// As [`rotl4`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn store_lane_words(
    lo: &[std::arch::x86_64::__m256i; 4],
    hi: &[std::arch::x86_64::__m256i; 4],
    rngs: &mut [OpenXoshiro; LANES],
) {
    use std::arch::x86_64::*;
    let mut words = [[0u64; 4]; 4];
    for (half, v) in [(0usize, lo), (4, hi)] {
        for (w, vw) in v.iter().enumerate() {
            _mm256_storeu_si256(words[w].as_mut_ptr() as *mut __m256i, *vw);
        }
        for l in 0..4 {
            rngs[half + l].s = [words[0][l], words[1][l], words[2][l], words[3][l]];
        }
    }
}

/// The uniform draws `(bits >> 40) 2^-24` of eight lanes, in lane order, from
/// the outputs of [`xoshiro_step4`] for lanes 0-3 (`out_lo`) and 4-7 (`out_hi`):
/// the scalar kernel's `f32` uniform, bit for bit.
///
/// # Safety
/// As [`rotl4`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn uniforms8(
    out_lo: std::arch::x86_64::__m256i,
    out_hi: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let a = _mm256_srli_epi64::<40>(out_lo);
    let b = _mm256_slli_epi64::<32>(_mm256_srli_epi64::<40>(out_hi));
    let bits = _mm256_permutevar8x32_epi32(_mm256_or_si256(a, b), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    _mm256_mul_ps(_mm256_cvtepi32_ps(bits), _mm256_set1_ps(1.0 / 16_777_216.0))
}

/// `f32::exp_neg` of each lane of `c` (in [0, CUTOFF]), the same operations
/// in the same order, so the same bits.
///
/// # Safety
/// As [`rotl4`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn exp_neg8(c: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let t = _mm256_mul_ps(c, _mm256_set1_ps(-std::f32::consts::LOG2_E));
    let ii = _mm256_sub_epi32(_mm256_cvttps_epi32(t), _mm256_set1_epi32(1));
    let r = _mm256_sub_ps(t, _mm256_cvtepi32_ps(ii));
    let r2 = _mm256_mul_ps(r, r);
    let p01 = _mm256_add_ps(_mm256_set1_ps(1.0), _mm256_mul_ps(r, _mm256_set1_ps(std::f32::consts::LN_2)));
    let p23 = _mm256_add_ps(_mm256_set1_ps(0.240_226_5), _mm256_mul_ps(r, _mm256_set1_ps(0.055_504_11)));
    let p45 = _mm256_add_ps(_mm256_set1_ps(0.009_618_129), _mm256_mul_ps(r, _mm256_set1_ps(0.001_333_355)));
    let p456 = _mm256_add_ps(p45, _mm256_mul_ps(r2, _mm256_set1_ps(0.000_154_035_3)));
    let p = _mm256_add_ps(p01, _mm256_mul_ps(r2, _mm256_add_ps(p23, _mm256_mul_ps(r2, p456))));
    let e2 = _mm256_slli_epi32::<23>(_mm256_max_epi32(_mm256_add_epi32(ii, _mm256_set1_epi32(127)), _mm256_set1_epi32(1)));
    _mm256_mul_ps(_mm256_castsi256_ps(e2), p)
}

/// [`anneal_flip_lanes`] in AVX2 intrinsics, one register per lane vector
/// (the compiler interleaved the portable version across rows instead). The
/// same operations in the same order per lane, no fused multiply-adds: the
/// results are the portable kernel's, bit for bit (tested).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn anneal_flip_lanes_avx2(m: &DenseModel<'_, f32>, betas: &[f32], rngs: &mut [OpenXoshiro; LANES], xs: &mut [u8]) {
    use std::arch::x86_64::*;
    let n = m.n;
    assert!(xs.len() == LANES * n && m.w.len() == n * n);
    let (mut g, mut sg) = lane_fields(m, xs);
    let (mut lo, mut hi) = load_lane_words(rngs);
    let zero = _mm256_setzero_ps();
    let cut = _mm256_set1_ps(f32::CUTOFF);
    let sign = _mm256_set1_ps(-0.0);
    let gp = g.as_mut_ptr() as *mut f32;
    let sp = sg.as_mut_ptr() as *mut f32;
    for &beta in betas {
        let vb = _mm256_set1_ps(beta);
        for i in 0..n {
            let u = uniforms8(xoshiro_step4(&mut lo), xoshiro_step4(&mut hi));
            let gi = _mm256_loadu_ps(gp.add(LANES * i));
            let si = _mm256_loadu_ps(sp.add(LANES * i));
            let bd = _mm256_mul_ps(vb, _mm256_mul_ps(si, gi));
            // exp_neg of the clamped argument, f32::exp_neg's operations.
            let c = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(bd, zero), _mm256_min_ps(bd, cut));
            let e = exp_neg8(c);
            let take = _mm256_and_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(bd, cut), _mm256_cmp_ps::<_CMP_LT_OQ>(u, e));
            let accept = _mm256_or_ps(_mm256_cmp_ps::<_CMP_NGT_UQ>(bd, zero), take);
            if _mm256_movemask_ps(accept) != 0 {
                _mm256_storeu_ps(sp.add(LANES * i), _mm256_xor_ps(si, _mm256_and_ps(accept, sign)));
                for (j, &w) in m.row(i).iter().enumerate() {
                    let q = gp.add(LANES * j);
                    // Rejecting lanes add +0 (not 0 * w, which is NaN for an infinite w).
                    let step = _mm256_and_ps(accept, _mm256_mul_ps(si, _mm256_set1_ps(w)));
                    _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), step));
                }
            }
        }
    }
    store_lane_words(&lo, &hi, rngs);
    lane_states(&sg, xs);
}

/// [`anneal_flip_lanes`] where the CPU has AVX2 (returns `true`); `false`
/// without (the scalar kernel is then the faster one).
pub(super) fn anneal_flip_lanes_fast(m: &DenseModel<'_, f32>, betas: &[f32], rngs: &mut [OpenXoshiro; LANES], xs: &mut [u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the features were detected at run time.
        unsafe { anneal_flip_lanes_avx2(m, betas, rngs, xs) };
        return true;
    }
    let _ = (m, betas, rngs, xs);
    false
}

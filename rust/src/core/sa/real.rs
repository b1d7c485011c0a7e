//! The float type of the annealers' couplings and fields.

use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

use super::model::DenseModel;

/// The float type of couplings and local fields (`f32` or `f64`).
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + 'static
{
    const ZERO: Self;
    /// `beta * delta` above which the acceptance probability is below the
    /// resolution of [`Real::unit`].
    const CUTOFF: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    /// `exp(-self)` for `self` in [0, CUTOFF] (the f32 version is a fast
    /// polynomial with relative error below 2e-5).
    fn exp_neg(self) -> Self;
    /// A uniform variate in [0, 1) from 64 random bits.
    fn unit(bits: u64) -> Self;
    /// Run `f` on this thread's spare coupling buffer (see [`DenseModel`]).
    fn with_spare<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R;
    /// `m` itself when `Self` is `f32` (see [`Couplings::as_dense_f32`](super::Couplings::as_dense_f32)).
    fn dense_f32<'m, 'a>(m: &'m DenseModel<'a, Self>) -> Option<&'m DenseModel<'a, f32>>;
    /// `betas` themselves when `Self` is `f32`.
    fn dense_f32_betas(betas: &[Self]) -> Option<&[f32]>;
}

thread_local! {
    // One spare symmetric-matrix buffer per thread and float type: a batch
    // builds one model per problem, and reusing the memory saves the page
    // faults of a fresh n x n allocation each time (measured ~0.8 ms per
    // K = 1280 problem).
    static SPARE_F32: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    static SPARE_F64: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest spare buffer kept per thread (elements).
pub(super) const SPARE_MAX: usize = 1 << 24;

impl Real for f32 {
    const ZERO: Self = 0.0;
    const CUTOFF: Self = 17.0;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    #[inline(always)]
    fn exp_neg(self) -> Self {
        // 2^t with t = -x log2(e) in [-24.6, 0]: split t = i + r, r in (0, 1].
        let t = self * -std::f32::consts::LOG2_E;
        let i = t as i32 - 1;
        let r = t - i as f32;
        // Estrin's scheme (shorter dependency chain than Horner).
        let r2 = r * r;
        let p01 = 1.0 + r * std::f32::consts::LN_2;
        let p23 = 0.240_226_5 + r * 0.055_504_11;
        let p45 = 0.009_618_129 + r * 0.001_333_355;
        let p456 = p45 + r2 * 0.000_154_035_3;
        let p = p01 + r2 * (p23 + r2 * p456);
        f32::from_bits(((i + 127).max(1) as u32) << 23) * p
    }
    #[inline(always)]
    fn unit(bits: u64) -> Self {
        (bits >> 40) as f32 * (1.0 / 16_777_216.0)
    }
    fn with_spare<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
        SPARE_F32.with(|c| f(&mut c.borrow_mut()))
    }
    fn dense_f32<'m, 'a>(m: &'m DenseModel<'a, Self>) -> Option<&'m DenseModel<'a, f32>> {
        Some(m)
    }
    fn dense_f32_betas(betas: &[Self]) -> Option<&[f32]> {
        Some(betas)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const CUTOFF: Self = 37.0;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn exp_neg(self) -> Self {
        f64::exp(-self)
    }
    #[inline(always)]
    fn unit(bits: u64) -> Self {
        (bits >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
    fn with_spare<R>(f: impl FnOnce(&mut Vec<Self>) -> R) -> R {
        SPARE_F64.with(|c| f(&mut c.borrow_mut()))
    }
    fn dense_f32<'m, 'a>(_: &'m DenseModel<'a, Self>) -> Option<&'m DenseModel<'a, f32>> {
        None
    }
    fn dense_f32_betas(_: &[Self]) -> Option<&[f32]> {
        None
    }
}

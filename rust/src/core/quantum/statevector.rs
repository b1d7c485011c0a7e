//! Transverse-field anneals of the full `2^d` statevector.
//!
//! `H(t) = A(s) H_D + B(s) H_P`, `s = t / T`, `H_D = -c sum_i X_i` (the
//! paper: `c = 1/d`), `H_P = diag(E)`. The state starts in the ground state
//! of `H_D`, the uniform superposition.
//!
//! **Integrator.** The base step is the symmetric (time-reversible) Strang
//! splitting of the exponential midpoint rule,
//! `S(t, h) = P(B_m h / 2) D(A_m h) P(B_m h / 2)` with `A_m, B_m` taken at
//! `t + h / 2`, `P(phi) = exp(-i phi E)` a diagonal phase and
//! `D(tau) = exp(-i tau H_D) = prod_i exp(i tau c X_i)` a product of
//! single-qubit X rotations (exact, since the `X_i` commute). It has order 2;
//! symmetric compositions of it raise the order: Suzuki's five-stage fractal
//! (order 4) and Yoshida's seven-stage solution A (order 6). Adjacent
//! diagonal phases are merged, so a composition of `m` stages costs `m`
//! driver passes and `m` phase passes per step.
//!
//! **Error control.** In the adaptive mode the whole anneal is run with `N`
//! steps and again with `N' > N`; the Richardson estimate
//! `||psi_N' - psi_N|| / ((N'/N)^p - 1)` of the error of the finer run (in
//! the 2-norm of the state; the fidelity error `1 - |<psi|psi_exact>|^2` is at
//! most its square) decides whether to stop, and its `h^p` scaling predicts
//! the next `N'`. The fixed mode runs a given number of steps (the paper:
//! `dt = 0.01`) without an estimate.
//!
//! **Kernels.** Amplitudes are split into real and imaginary arrays. The
//! phase and the rotations of the lowest [`BLOCK_BITS`] qubits run block by
//! block in cache; the higher qubits are rotated two at a time (radix 4), so
//! one driver application reads the state about `1 + (d - 12) / 2` times.
//! The phase uses the branch-free [`super::sincos`]. Blocks are spread over
//! threads with rayon; every result is bitwise independent of the thread
//! count (no reductions inside a step; norms are summed in fixed chunks).

use rayon::prelude::*;

use super::lanczos::{CHUNK, PAR_MIN};
use super::{sincos, Cancel, Schedule, NEVER};
use crate::core::error::{CoreError, CoreResult};

/// Qubits handled inside one cache block.
pub const BLOCK_BITS: usize = 12;

/// The splitting scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrator {
    /// Strang splitting, order 2 (one stage).
    Strang,
    /// Suzuki's fractal composition, order 4 (five stages).
    Suzuki4,
    /// Yoshida's solution A, order 6 (seven stages).
    Yoshida6,
}

impl Integrator {
    pub fn order(self) -> u32 {
        match self {
            Integrator::Strang => 2,
            Integrator::Suzuki4 => 4,
            Integrator::Yoshida6 => 6,
        }
    }

    /// Stage coefficients (they sum to 1).
    pub fn stages(self) -> Vec<f64> {
        match self {
            Integrator::Strang => vec![1.0],
            Integrator::Suzuki4 => {
                let p = 1.0 / (4.0 - 4f64.powf(1.0 / 3.0));
                vec![p, p, 1.0 - 4.0 * p, p, p]
            }
            Integrator::Yoshida6 => {
                let w1 = -1.177_679_984_178_87;
                let w2 = 0.235_573_213_359_357;
                let w3 = 0.784_513_610_477_560;
                let w0 = 1.0 - 2.0 * (w1 + w2 + w3);
                vec![w3, w2, w1, w0, w1, w2, w3]
            }
        }
    }

    pub fn from_name(name: &str) -> CoreResult<Self> {
        match name {
            "strang" | "2" => Ok(Integrator::Strang),
            "suzuki4" | "4" => Ok(Integrator::Suzuki4),
            "yoshida6" | "6" => Ok(Integrator::Yoshida6),
            other => Err(CoreError::invalid(
                "integrator",
                format!("expected 'strang', 'suzuki4' or 'yoshida6', got {other:?}"),
            )),
        }
    }
}

/// The transverse-field system: energies of the `2^n` basis states and the
/// driver scale `c` of `H_D = -c sum_i X_i`.
pub struct TfSystem<'a> {
    pub energies: &'a [f64],
    pub n: usize,
    pub driver_scale: f64,
}

/// How the number of steps is chosen.
#[derive(Clone, Copy, Debug)]
pub enum StepMode {
    Fixed { steps: usize },
    Adaptive { tol: f64, initial_steps: usize, max_steps: usize },
}

/// The end of one anneal.
#[derive(Clone, Debug)]
pub struct Evolved {
    pub re: Vec<f64>,
    pub im: Vec<f64>,
    /// Steps of the returned run.
    pub steps: usize,
    /// Estimated 2-norm error of the returned state (NaN in the fixed mode).
    pub error_estimate: f64,
    /// Steps of all runs together (the work).
    pub total_steps: usize,
    /// False when the adaptive mode hit `max_steps` first.
    pub converged: bool,
}

#[inline(always)]
fn rotate_impl(c: f64, s: f64, ur: &mut [f64], ui: &mut [f64], vr: &mut [f64], vi: &mut [f64]) {
    let n = ur.len();
    let (ui, vr, vi) = (&mut ui[..n], &mut vr[..n], &mut vi[..n]);
    for i in 0..n {
        let (a, b, p, q) = (ur[i], ui[i], vr[i], vi[i]);
        ur[i] = c * a - s * q;
        ui[i] = c * b + s * p;
        vr[i] = c * p - s * b;
        vi[i] = c * q + s * a;
    }
}

/// Two rotations at once on four quarters (qubit q: (0,1), (2,3); qubit q+1: (0,2), (1,3)).
#[inline(always)]
fn rotate4_impl(c: f64, s: f64, r: [&mut [f64]; 4], m: [&mut [f64]; 4]) {
    let [r0, r1, r2, r3] = r;
    let [m0, m1, m2, m3] = m;
    let n = r0.len();
    let (r1, r2, r3) = (&mut r1[..n], &mut r2[..n], &mut r3[..n]);
    let (m0, m1, m2, m3) = (&mut m0[..n], &mut m1[..n], &mut m2[..n], &mut m3[..n]);
    for i in 0..n {
        // qubit q
        let (a0r, a0i, a1r, a1i) = (r0[i], m0[i], r1[i], m1[i]);
        let (a2r, a2i, a3r, a3i) = (r2[i], m2[i], r3[i], m3[i]);
        let (b0r, b0i) = (c * a0r - s * a1i, c * a0i + s * a1r);
        let (b1r, b1i) = (c * a1r - s * a0i, c * a1i + s * a0r);
        let (b2r, b2i) = (c * a2r - s * a3i, c * a2i + s * a3r);
        let (b3r, b3i) = (c * a3r - s * a2i, c * a3i + s * a2r);
        // qubit q + 1
        r0[i] = c * b0r - s * b2i;
        m0[i] = c * b0i + s * b2r;
        r2[i] = c * b2r - s * b0i;
        m2[i] = c * b2i + s * b0r;
        r1[i] = c * b1r - s * b3i;
        m1[i] = c * b1i + s * b3r;
        r3[i] = c * b3r - s * b1i;
        m3[i] = c * b3i + s * b1r;
    }
}

#[inline(always)]
fn phase(phi: f64, e: &[f64], re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let (e, im) = (&e[..n], &mut im[..n]);
    for i in 0..n {
        let (sn, cs) = sincos(phi * e[i]);
        let (r, m) = (re[i], im[i]);
        re[i] = r * cs + m * sn;
        im[i] = m * cs - r * sn;
    }
}

/// Phase, then the rotations of qubits `0..bits` inside one block.
#[inline(always)]
fn block_kernel_impl(phi: f64, c: f64, s: f64, bits: usize, e: &[f64], re: &mut [f64], im: &mut [f64], do_rot: bool) {
    if phi != 0.0 {
        phase(phi, e, re, im);
    }
    if !do_rot {
        return;
    }
    let mut q = 0;
    if bits >= 1 {
        // qubit 0: adjacent pairs
        let n = re.len();
        let im = &mut im[..n];
        let mut i = 0;
        while i + 1 < n {
            let (a, b, p, qq) = (re[i], im[i], re[i + 1], im[i + 1]);
            re[i] = c * a - s * qq;
            im[i] = c * b + s * p;
            re[i + 1] = c * p - s * b;
            im[i + 1] = c * qq + s * a;
            i += 2;
        }
        q = 1;
    }
    while q < bits {
        let half = 1usize << q;
        for (rc, mc) in re.chunks_mut(2 * half).zip(im.chunks_mut(2 * half)) {
            let (ur, vr) = rc.split_at_mut(half);
            let (ui, vi) = mc.split_at_mut(half);
            rotate_impl(c, s, ur, ui, vr, vi);
        }
        q += 1;
    }
}

/// Whether the AVX2 + FMA builds of the kernels can run here (checked once).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Each leaf kernel twice: the portable build and one compiled for AVX2 + FMA.
macro_rules! dispatch {
    ($name:ident, $avx:ident, $imp:ident, ($($arg:ident : $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx($($arg: $ty),*) {
            $imp($($arg),*)
        }
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                if avx2() {
                    // SAFETY: the CPU supports AVX2 and FMA (checked by `avx2`).
                    return unsafe { $avx($($arg),*) };
                }
            }
            $imp($($arg),*)
        }
    };
}

dispatch!(rotate, rotate_avx2, rotate_impl, (c: f64, s: f64, ur: &mut [f64], ui: &mut [f64], vr: &mut [f64], vi: &mut [f64]));
dispatch!(rotate4, rotate4_avx2, rotate4_impl, (c: f64, s: f64, r: [&mut [f64]; 4], m: [&mut [f64]; 4]));
dispatch!(block_kernel, block_kernel_avx2, block_kernel_impl, (phi: f64, c: f64, s: f64, bits: usize, e: &[f64], re: &mut [f64], im: &mut [f64], do_rot: bool));

fn quarters(x: &mut [f64]) -> [&mut [f64]; 4] {
    let l = x.len() / 4;
    let (a, rest) = x.split_at_mut(l);
    let (b, rest) = rest.split_at_mut(l);
    let (c, d) = rest.split_at_mut(l);
    [a, b, c, d]
}

/// `re, im <- D(theta_driver) P(phi) (re, im)`: the phase, then `exp(i theta X_i)` on every qubit
/// (`theta = 0` skips the rotations).
pub fn phase_then_driver(phi: f64, theta: f64, n: usize, e: &[f64], re: &mut [f64], im: &mut [f64]) {
    let dim = 1usize << n;
    let (s, c) = theta.sin_cos();
    let do_rot = theta != 0.0;
    let bb = n.min(BLOCK_BITS);
    let block = 1usize << bb;
    let par = dim >= PAR_MIN;
    if par {
        re.par_chunks_mut(block)
            .zip(im.par_chunks_mut(block))
            .zip(e.par_chunks(block))
            .for_each(|((r, m), eb)| block_kernel(phi, c, s, bb, eb, r, m, do_rot));
    } else {
        for ((r, m), eb) in re.chunks_mut(block).zip(im.chunks_mut(block)).zip(e.chunks(block)) {
            block_kernel(phi, c, s, bb, eb, r, m, do_rot);
        }
    }
    if !do_rot {
        return;
    }
    let mut q = bb;
    while q < n {
        if q + 1 < n {
            let span = 4usize << q;
            let l = 1usize << q;
            let piece = l.min(CHUNK);
            let work = |rc: &mut [f64], mc: &mut [f64]| {
                let [r0, r1, r2, r3] = quarters(rc);
                let [m0, m1, m2, m3] = quarters(mc);
                let it = r0
                    .chunks_mut(piece)
                    .zip(r1.chunks_mut(piece))
                    .zip(r2.chunks_mut(piece))
                    .zip(r3.chunks_mut(piece))
                    .zip(m0.chunks_mut(piece))
                    .zip(m1.chunks_mut(piece))
                    .zip(m2.chunks_mut(piece))
                    .zip(m3.chunks_mut(piece));
                if par {
                    let parts: Vec<_> = it.collect();
                    parts.into_par_iter().for_each(|(((((((a, b), cc), d), w), x), y), z)| {
                        rotate4(c, s, [a, b, cc, d], [w, x, y, z])
                    });
                } else {
                    for (((((((a, b), cc), d), w), x), y), z) in it {
                        rotate4(c, s, [a, b, cc, d], [w, x, y, z]);
                    }
                }
            };
            for (rc, mc) in re.chunks_mut(span).zip(im.chunks_mut(span)) {
                work(rc, mc);
            }
            q += 2;
        } else {
            let half = 1usize << q;
            let piece = half.min(CHUNK);
            for (rc, mc) in re.chunks_mut(2 * half).zip(im.chunks_mut(2 * half)) {
                let (ur, vr) = rc.split_at_mut(half);
                let (ui, vi) = mc.split_at_mut(half);
                let it = ur
                    .chunks_mut(piece)
                    .zip(ui.chunks_mut(piece))
                    .zip(vr.chunks_mut(piece))
                    .zip(vi.chunks_mut(piece));
                if par {
                    let parts: Vec<_> = it.collect();
                    parts.into_par_iter().for_each(|(((a, b), p), qq)| rotate(c, s, a, b, p, qq));
                } else {
                    for (((a, b), p), qq) in it {
                        rotate(c, s, a, b, p, qq);
                    }
                }
            }
            q += 1;
        }
    }
}

/// The uniform superposition (ground state of `-sum X`).
pub fn uniform_state(n: usize) -> (Vec<f64>, Vec<f64>) {
    let dim = 1usize << n;
    (vec![1.0 / (dim as f64).sqrt(); dim], vec![0.0; dim])
}

/// Run the anneal with exactly `steps` steps of `integrator`, from `(re, im)` in place.
pub fn evolve_steps(sys: &TfSystem<'_>, sched: &Schedule, t_total: f64, steps: usize, integrator: Integrator, re: &mut [f64], im: &mut [f64]) {
    let _ = evolve_steps_cancellable(sys, sched, t_total, steps, integrator, re, im, &NEVER);
}

/// [`evolve_steps`] polling `cancel` before every stage of every step (one
/// stage is a phase and a driver pass over the state: ~1-100 ms at d = 18-24);
/// on a cancel it stops there and returns [`CoreError::Cancelled`], the
/// state half-evolved.
#[allow(clippy::too_many_arguments)]
pub fn evolve_steps_cancellable(
    sys: &TfSystem<'_>,
    sched: &Schedule,
    t_total: f64,
    steps: usize,
    integrator: Integrator,
    re: &mut [f64],
    im: &mut [f64],
    cancel: &Cancel,
) -> CoreResult<()> {
    let stages = integrator.stages();
    let h = t_total / steps as f64;
    let mut pending = 0.0;
    let mut t = 0.0;
    for k in 0..steps {
        t = k as f64 * h; // no drift from summing h
        for &g in &stages {
            cancel.check()?;
            let tau = g * h;
            let (a, b) = sched.at((t + 0.5 * tau) / t_total);
            pending += 0.5 * b * tau;
            phase_then_driver(pending, a * tau * sys.driver_scale, sys.n, sys.energies, re, im);
            pending = 0.5 * b * tau;
            t += tau;
        }
    }
    let _ = t;
    if pending != 0.0 {
        phase_then_driver(pending, 0.0, sys.n, sys.energies, re, im);
    }
    Ok(())
}

/// `||a - b||` over split complex vectors, summed in fixed chunks.
pub fn distance(ar: &[f64], ai: &[f64], br: &[f64], bi: &[f64]) -> f64 {
    let part = |(((x, y), z), w): (((&[f64], &[f64]), &[f64]), &[f64])| -> f64 {
        x.iter().zip(z).map(|(p, q)| (p - q) * (p - q)).sum::<f64>() + y.iter().zip(w).map(|(p, q)| (p - q) * (p - q)).sum::<f64>()
    };
    let parts: Vec<f64> = if ar.len() >= PAR_MIN {
        ar.par_chunks(CHUNK).zip(ai.par_chunks(CHUNK)).zip(br.par_chunks(CHUNK)).zip(bi.par_chunks(CHUNK)).map(part).collect()
    } else {
        ar.chunks(CHUNK).zip(ai.chunks(CHUNK)).zip(br.chunks(CHUNK)).zip(bi.chunks(CHUNK)).map(part).collect()
    };
    parts.iter().sum::<f64>().sqrt()
}

/// Validate the common arguments.
pub fn check_args(sys: &TfSystem<'_>, t_total: f64, mode: &StepMode) -> CoreResult<()> {
    if sys.energies.len() != 1usize << sys.n {
        return Err(CoreError::invalid("energies", format!("expected 2^{} values, got {}", sys.n, sys.energies.len())));
    }
    if !(t_total.is_finite() && t_total > 0.0) {
        return Err(CoreError::invalid("T", format!("expected a finite anneal time > 0, got {t_total}")));
    }
    if !(sys.driver_scale.is_finite() && sys.driver_scale > 0.0) {
        return Err(CoreError::invalid("driver_scale", format!("expected a finite number > 0, got {}", sys.driver_scale)));
    }
    match *mode {
        StepMode::Fixed { steps } if steps == 0 => Err(CoreError::invalid("dt", "expected at least one step")),
        StepMode::Adaptive { tol, initial_steps, max_steps } if !(tol > 0.0 && tol.is_finite()) || initial_steps == 0 || max_steps < initial_steps => {
            Err(CoreError::invalid("tol", format!("expected tol > 0 and 1 <= initial_steps <= max_steps, got {tol}, {initial_steps}, {max_steps}")))
        }
        _ => Ok(()),
    }
}

/// One anneal from the uniform state.
pub fn anneal(sys: &TfSystem<'_>, sched: &Schedule, t_total: f64, integrator: Integrator, mode: StepMode) -> CoreResult<Evolved> {
    anneal_cancellable(sys, sched, t_total, integrator, mode, &NEVER)
}

/// [`anneal`] that stops with [`CoreError::Cancelled`] within one stage of a
/// step once `cancel` is raised.
pub fn anneal_cancellable(sys: &TfSystem<'_>, sched: &Schedule, t_total: f64, integrator: Integrator, mode: StepMode, cancel: &Cancel) -> CoreResult<Evolved> {
    check_args(sys, t_total, &mode)?;
    let run = |steps: usize| {
        let (mut re, mut im) = uniform_state(sys.n);
        evolve_steps_cancellable(sys, sched, t_total, steps, integrator, &mut re, &mut im, cancel)?;
        Ok((re, im))
    };
    adaptive(run, integrator.order(), mode)
}

/// The step-doubling driver shared by the transverse-field and XY anneals;
/// an error of `run` (a cancel) ends it.
pub fn adaptive(run: impl Fn(usize) -> CoreResult<(Vec<f64>, Vec<f64>)>, order: u32, mode: StepMode) -> CoreResult<Evolved> {
    match mode {
        StepMode::Fixed { steps } => {
            let (re, im) = run(steps)?;
            Ok(Evolved { re, im, steps, error_estimate: f64::NAN, total_steps: steps, converged: true })
        }
        StepMode::Adaptive { tol, initial_steps, max_steps } => {
            let p = order as f64;
            let mut n = initial_steps;
            let (mut re, mut im) = run(n)?;
            let mut total = n;
            loop {
                // next step count: double first, then as predicted (at least x2, at most x8)
                let next = (2 * n).min(max_steps.max(n + 1));
                let (r2, i2) = run(next)?;
                total += next;
                let ratio = next as f64 / n as f64;
                let est = distance(&r2, &i2, &re, &im) / (ratio.powf(p) - 1.0);
                re = r2;
                im = i2;
                let prev_n = n;
                n = next;
                if est <= tol {
                    return Ok(Evolved { re, im, steps: n, error_estimate: est, total_steps: total, converged: true });
                }
                if n >= max_steps {
                    return Ok(Evolved { re, im, steps: n, error_estimate: est, total_steps: total, converged: false });
                }
                // predicted steps for tol with a 1.25 safety factor, if larger than doubling
                let want = (n as f64 * (est / tol).powf(1.0 / p) * 1.25).ceil() as usize;
                let _ = prev_n;
                if want > 2 * n {
                    // jump: run at `want / 2` so that the doubling after it lands on `want`
                    let jump = (want / 2).min(max_steps / 2).max(n + 1);
                    let (r3, i3) = run(jump)?;
                    total += jump;
                    re = r3;
                    im = i3;
                    n = jump;
                }
            }
        }
    }
}

/// `H(s) = a H_D + b diag(E)` as a real operator for [`super::lanczos`].
pub struct TfHamiltonian<'a> {
    pub sys: &'a TfSystem<'a>,
    pub a: f64,
    pub b: f64,
}

wide_kernel! {
    /// `o = (b E + hop sum_q X_q) v` over the elements `lo..lo + o.len()` (a multiple of 8, `n >= 3`),
    /// returning their part of `<v, o>` in the lanes of `lanczos::dot_chunk`. One pass over `o`
    /// in aligned groups of 8 amplitudes: qubits 0-2 flip inside the group, every higher qubit
    /// maps the group onto another whole group of `v`.
    fn tf_matvec_chunk(v: &[f64], e: &[f64], n: usize, b: f64, hop: f64, lo: usize, o: &mut [f64]) -> f64 {
        let mut lanes = [0.0f64; 8];
        for (gi, og) in o.chunks_exact_mut(8).enumerate() {
            let g = lo + 8 * gi;
            let vg: &[f64; 8] = v[g..g + 8].try_into().expect("group of 8");
            let eg: &[f64; 8] = e[g..g + 8].try_into().expect("group of 8");
            let mut acc = [
                vg[1] + vg[2] + vg[4],
                vg[0] + vg[3] + vg[5],
                vg[3] + vg[0] + vg[6],
                vg[2] + vg[1] + vg[7],
                vg[5] + vg[6] + vg[0],
                vg[4] + vg[7] + vg[1],
                vg[7] + vg[4] + vg[2],
                vg[6] + vg[5] + vg[3],
            ];
            for q in 3..n {
                let p = g ^ (1usize << q);
                let vp: &[f64; 8] = v[p..p + 8].try_into().expect("group of 8");
                for i in 0..8 {
                    acc[i] += vp[i];
                }
            }
            for i in 0..8 {
                og[i] = b * eg[i] * vg[i] + hop * acc[i];
                lanes[i] += vg[i] * og[i];
            }
        }
        super::lanczos::combine_lanes(&lanes)
    }
}

impl super::lanczos::RealOperator for TfHamiltonian<'_> {
    fn dim(&self) -> usize {
        1usize << self.sys.n
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) {
        self.apply_dot(v, out);
    }

    fn apply_dot(&self, v: &[f64], out: &mut [f64]) -> f64 {
        let n = self.sys.n;
        if n < 3 {
            self.apply_plain(v, out);
            return super::lanczos::dot(v, out);
        }
        let e = self.sys.energies;
        let (b, hop) = (self.b, -self.a * self.sys.driver_scale);
        super::vecops::map_chunks_mut(out, |lo, o| tf_matvec_chunk(v, e, n, b, hop, lo, o)).iter().sum()
    }
}

impl TfHamiltonian<'_> {
    /// Reference kernel: one pass per qubit (any `n`).
    pub fn apply_plain(&self, v: &[f64], out: &mut [f64]) {
        let n = self.sys.n;
        let (b, hop) = (self.b, -self.a * self.sys.driver_scale);
        for (x, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0;
            for q in 0..n {
                acc += v[x ^ (1usize << q)];
            }
            *o = b * self.sys.energies[x] * v[x] + hop * acc;
        }
    }
}

/// `|psi_x|^2` of split complex amplitudes.
pub fn probabilities(re: &[f64], im: &[f64]) -> Vec<f64> {
    re.iter().zip(im).map(|(r, m)| r * r + m * m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::quantum::diagonal_energies;

    fn random_qubo(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut q = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let r = (crate::core::rng::splitmix64(&mut s) >> 11) as f64 / (1u64 << 53) as f64;
                q[i * n + j] = if i == j { -r } else { 0.3 * r };
            }
        }
        q
    }

    #[test]
    fn norm_preserved_and_orders_converge() {
        let n = 6;
        let q = random_qubo(n, 3);
        let e = diagonal_energies(&q, n, 0.0);
        let sys = TfSystem { energies: &e, n, driver_scale: 1.0 / n as f64 };
        let sched = Schedule::linear();
        let reference = anneal(&sys, &sched, 5.0, Integrator::Yoshida6, StepMode::Fixed { steps: 400 }).unwrap();
        for integ in [Integrator::Strang, Integrator::Suzuki4, Integrator::Yoshida6] {
            let a = anneal(&sys, &sched, 5.0, integ, StepMode::Fixed { steps: 10 }).unwrap();
            let b = anneal(&sys, &sched, 5.0, integ, StepMode::Fixed { steps: 20 }).unwrap();
            let ea = distance(&a.re, &a.im, &reference.re, &reference.im);
            let eb = distance(&b.re, &b.im, &reference.re, &reference.im);
            let rate = (ea / eb).log2();
            assert!((rate - integ.order() as f64).abs() < 0.6, "{integ:?}: rate {rate}");
            let norm: f64 = probabilities(&b.re, &b.im).iter().sum();
            assert!((norm - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn blocked_and_plain_driver_agree() {
        // n above BLOCK_BITS exercises the radix-4 and single high-qubit passes
        for n in [13usize, 14, 15] {
            let dim = 1 << n;
            let e: Vec<f64> = (0..dim).map(|x| (x as f64 * 0.37).sin()).collect();
            let mut re: Vec<f64> = (0..dim).map(|x| (x as f64 * 0.11).cos()).collect();
            let mut im: Vec<f64> = (0..dim).map(|x| (x as f64 * 0.07).sin()).collect();
            let (r0, i0) = (re.clone(), im.clone());
            phase_then_driver(0.3, 0.2, n, &e, &mut re, &mut im);
            // plain: phase then one qubit at a time
            let (mut pr, mut pi) = (r0, i0);
            for x in 0..dim {
                let (s, c) = (0.3 * e[x]).sin_cos();
                let (r, m) = (pr[x], pi[x]);
                pr[x] = r * c + m * s;
                pi[x] = m * c - r * s;
            }
            let (s, c) = 0.2f64.sin_cos();
            for qb in 0..n {
                for x in 0..dim {
                    if x >> qb & 1 == 0 {
                        let y = x | 1 << qb;
                        let (a, b, p, qq) = (pr[x], pi[x], pr[y], pi[y]);
                        pr[x] = c * a - s * qq;
                        pi[x] = c * b + s * p;
                        pr[y] = c * p - s * b;
                        pi[y] = c * qq + s * a;
                    }
                }
            }
            assert!(distance(&re, &im, &pr, &pi) < 1e-11, "n={n}");
        }
    }

    #[test]
    fn a_raised_cancel_flag_stops_an_anneal_within_a_step() {
        let n = 14;
        let q = random_qubo(n, 4);
        let e = diagonal_energies(&q, n, 0.0);
        let sys = TfSystem { energies: &e, n, driver_scale: 1.0 / n as f64 };
        let sched = Schedule::linear();
        let cancel = Cancel::new();
        // ~10^6 steps (minutes), cancelled from another thread after 50 ms.
        let t0 = std::time::Instant::now();
        let r = std::thread::scope(|sc| {
            sc.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                cancel.cancel();
            });
            anneal_cancellable(&sys, &sched, 1e4, Integrator::Strang, StepMode::Fixed { steps: 1_000_000 }, &cancel)
        });
        assert!(matches!(r, Err(CoreError::Cancelled)));
        assert!(t0.elapsed().as_secs_f64() < 2.0);
        // The step doubling stops too, and a raised flag stops an anneal before its first step.
        let mode = StepMode::Adaptive { tol: 1e-12, initial_steps: 4, max_steps: 1 << 22 };
        assert!(matches!(anneal_cancellable(&sys, &sched, 10.0, Integrator::Strang, mode, &cancel), Err(CoreError::Cancelled)));
        assert!(anneal(&sys, &sched, 1.0, Integrator::Strang, StepMode::Fixed { steps: 3 }).is_ok());
    }

    #[test]
    fn grouped_matvec_matches_plain() {
        use crate::core::quantum::lanczos::RealOperator;
        for n in [1usize, 2, 3, 4, 9, 16] {
            let dim = 1 << n;
            let e: Vec<f64> = (0..dim).map(|x| (x as f64 * 0.37).sin()).collect();
            let v: Vec<f64> = (0..dim).map(|x| (x as f64 * 0.11).cos()).collect();
            let sys = TfSystem { energies: &e, n, driver_scale: 1.0 / n as f64 };
            let op = TfHamiltonian { sys: &sys, a: 0.6, b: 0.4 };
            let (mut o1, mut o2) = (vec![0.0; dim], vec![0.0; dim]);
            op.apply(&v, &mut o1);
            op.apply_plain(&v, &mut o2);
            let worst = o1.iter().zip(&o2).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-13, "n={n}: {worst}");
        }
    }

    #[test]
    fn adaptive_meets_tolerance() {
        let n = 5;
        let q = random_qubo(n, 9);
        let e = diagonal_energies(&q, n, 0.0);
        let sys = TfSystem { energies: &e, n, driver_scale: 0.2 };
        let sched = Schedule::linear();
        let reference = anneal(&sys, &sched, 20.0, Integrator::Yoshida6, StepMode::Fixed { steps: 2000 }).unwrap();
        let a = anneal(&sys, &sched, 20.0, Integrator::Suzuki4, StepMode::Adaptive { tol: 1e-6, initial_steps: 4, max_steps: 100_000 }).unwrap();
        assert!(a.converged);
        let err = distance(&a.re, &a.im, &reference.re, &reference.im);
        assert!(err < 3e-6, "err {err} est {}", a.error_estimate);
        assert!(anneal(&sys, &sched, 0.0, Integrator::Strang, StepMode::Fixed { steps: 1 }).is_err());
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    #[test]
    #[ignore]
    fn time_parts() {
        for n in [18usize, 20] {
            let dim = 1 << n;
            let e: Vec<f64> = (0..dim).map(|x| (x as f64 * 0.37).sin()).collect();
            let (mut re, mut im) = uniform_state(n);
            for (name, phi, th) in [("phase", 0.3, 0.0), ("driver", 0.0, 0.2), ("both", 0.3, 0.2)] {
                let t = std::time::Instant::now();
                for _ in 0..10 {
                    phase_then_driver(phi, th, n, &e, &mut re, &mut im);
                }
                eprintln!("n={n} {name}: {:.2} ms", t.elapsed().as_secs_f64() * 100.0);
            }
        }
    }
}

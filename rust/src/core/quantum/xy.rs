//! The XY-mixer driver inside the weight-`k` subspace.
//!
//! `H_XY = -c sum_{(i,j) in G} (X_i X_j + Y_i Y_j) / 2`, `G` the complete
//! graph or the ring `(i, i+1 mod d)`. `(XX + YY) / 2 = s+ s- + s- s+` moves
//! a 1 from `j` to `i` (or back) with amplitude 1, so `H_XY` preserves the
//! Hamming weight and the anneal can live in the `C(d, k)` states of weight
//! `k`, listed in increasing order of their index (bit convention of
//! [`super`]); the Hamming weight is conserved exactly because no other
//! state is ever represented.
//!
//! Evolution: the fourth-order commutator-free Magnus integrator of Blanes
//! and Moan (two exponentials per step at the Gauss points), each
//! exponential by a Lanczos (Krylov) approximation with an a-posteriori
//! error check (the step is halved when a 40-vector Krylov space does not
//! reach `1e-13`). The number of steps is chosen by the same step doubling as
//! [`super::statevector::adaptive`], or fixed.

use super::lanczos::{lowest_levels, LanczosOptions, RealOperator};
use super::statevector::{adaptive, Evolved, StepMode};
use super::tridiag::eigh_tridiagonal;
use super::{Cancel, Schedule, NEVER};
use crate::core::error::{CoreError, CoreResult};

/// The graph of the XY mixer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Graph {
    Complete,
    Ring,
}

/// The weight-`k` subspace with the hopping structure of `H_XY`.
pub struct XySystem {
    pub n: usize,
    pub k: usize,
    /// Basis states (indices in the full space), ascending.
    pub basis: Vec<u64>,
    /// Energies of the basis states.
    pub energies: Vec<f64>,
    /// CSR neighbour lists (hops along an edge of the graph).
    pub offsets: Vec<usize>,
    pub neighbours: Vec<u32>,
    pub driver_scale: f64,
}

/// `C(n, k)` in f64 (for limits and messages).
pub fn binomial_f(n: usize, k: usize) -> f64 {
    let mut r = 1.0;
    for i in 0..k {
        r = r * (n - i) as f64 / (i + 1) as f64;
    }
    r
}

impl XySystem {
    /// Build the subspace; `energy(x)` gives the problem energy of a full index.
    pub fn new(n: usize, k: usize, graph: Graph, driver_scale: f64, max_dim: usize, energy: impl Fn(u64) -> f64) -> CoreResult<Self> {
        if k == 0 || k >= n {
            return Err(CoreError::invalid("k", format!("expected 1 <= k <= d - 1 = {}, got {k}", n.saturating_sub(1))));
        }
        if n > 62 {
            return Err(CoreError::TooLarge { message: format!("d = {n}: the XY subspace supports at most 62 qubits") });
        }
        let dim = binomial_f(n, k);
        if dim > max_dim as f64 {
            return Err(CoreError::TooLarge {
                message: format!(
                    "the weight-{k} subspace of d = {n} qubits has C({n}, {k}) = {dim:.0} states, over the limit of {max_dim} \
                     (about {:.3} GiB at ~{} bytes per state)",
                    dim * (48.0 + 4.0 * 2.0 * (k * (n - k)) as f64) / (1u64 << 30) as f64,
                    48 + 8 * k * (n - k)
                ),
            });
        }
        if !(driver_scale.is_finite() && driver_scale > 0.0) {
            return Err(CoreError::invalid("driver_scale", format!("expected a finite number > 0, got {driver_scale}")));
        }
        // weight-k states in increasing order (Gosper's hack)
        let mut basis = Vec::with_capacity(dim as usize);
        let mut x: u64 = (1u64 << k) - 1;
        let limit = 1u64 << n;
        while x < limit {
            basis.push(x);
            let c = x & x.wrapping_neg();
            let r = x + c;
            x = (((r ^ x) >> 2) / c) | r;
        }
        let edges: Vec<(usize, usize)> = match graph {
            Graph::Complete => (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect(),
            Graph::Ring => {
                if n == 2 {
                    vec![(0, 1)]
                } else {
                    (0..n).map(|i| (i, (i + 1) % n)).collect()
                }
            }
        };
        let mut offsets = Vec::with_capacity(basis.len() + 1);
        let mut neighbours = Vec::new();
        offsets.push(0);
        for &x in &basis {
            for &(i, j) in &edges {
                if ((x >> i) ^ (x >> j)) & 1 == 1 {
                    let y = x ^ (1u64 << i) ^ (1u64 << j);
                    let idx = basis.binary_search(&y).expect("hop stays in the subspace");
                    neighbours.push(idx as u32);
                }
            }
            offsets.push(neighbours.len());
        }
        let energies = basis.iter().map(|&x| energy(x)).collect();
        Ok(XySystem { n, k, basis, energies, offsets, neighbours, driver_scale })
    }

    pub fn dim(&self) -> usize {
        self.basis.len()
    }

    /// `out = (a H_XY + b E) v` on real vectors.
    fn apply_real(&self, a: f64, b: f64, v: &[f64], out: &mut [f64]) {
        let hop = -a * self.driver_scale;
        for i in 0..v.len() {
            let mut acc = b * self.energies[i] * v[i];
            let mut h = 0.0;
            for &j in &self.neighbours[self.offsets[i]..self.offsets[i + 1]] {
                h += v[j as usize];
            }
            acc += hop * h;
            out[i] = acc;
        }
    }

    /// Ground state of `H_XY` alone in the subspace (real, unit norm).
    pub fn driver_ground_state(&self) -> Vec<f64> {
        let op = XyHamiltonian { sys: self, a: 1.0, b: 0.0 };
        let lv = lowest_levels(&op, 1, &[], LanczosOptions { tol: 1e-12, ..Default::default() });
        let mut v = lv.vectors[0].clone();
        // fix the sign: largest component positive
        let big = v.iter().cloned().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            for x in v.iter_mut() {
                *x = -*x;
            }
        }
        v
    }

    /// `psi <- exp(-i tau (a H_XY + b E)) psi` by Krylov, halving tau when needed.
    pub fn expm_apply(&self, a: f64, b: f64, tau: f64, re: &mut [f64], im: &mut [f64]) {
        if !self.try_expm(a, b, tau, re, im) {
            self.expm_apply(a, b, 0.5 * tau, re, im);
            self.expm_apply(a, b, 0.5 * tau, re, im);
        }
    }

    fn try_expm(&self, a: f64, b: f64, tau: f64, re: &mut [f64], im: &mut [f64]) -> bool {
        const M_MAX: usize = 40;
        const TOL: f64 = 1e-13;
        let dim = self.dim();
        let nrm = (re.iter().map(|x| x * x).sum::<f64>() + im.iter().map(|x| x * x).sum::<f64>()).sqrt();
        if nrm == 0.0 {
            return true;
        }
        // complex Lanczos with a real symmetric operator (alpha, beta real)
        let mut qr: Vec<Vec<f64>> = vec![re.iter().map(|x| x / nrm).collect()];
        let mut qi: Vec<Vec<f64>> = vec![im.iter().map(|x| x / nrm).collect()];
        let mut alpha = Vec::new();
        let mut beta: Vec<f64> = Vec::new();
        let (mut wr, mut wi) = (vec![0.0; dim], vec![0.0; dim]);
        let m_cap = M_MAX.min(dim);
        loop {
            let j = alpha.len();
            self.apply_real(a, b, &qr[j], &mut wr);
            self.apply_real(a, b, &qi[j], &mut wi);
            // <q_j, w> is real for Hermitian H
            let al: f64 = qr[j].iter().zip(&wr).map(|(p, q)| p * q).sum::<f64>() + qi[j].iter().zip(&wi).map(|(p, q)| p * q).sum::<f64>();
            alpha.push(al);
            for t in 0..dim {
                wr[t] -= al * qr[j][t];
                wi[t] -= al * qi[j][t];
                if j > 0 {
                    wr[t] -= beta[j - 1] * qr[j - 1][t];
                    wi[t] -= beta[j - 1] * qi[j - 1][t];
                }
            }
            // full reorthogonalisation (complex Gram-Schmidt)
            for u in 0..=j {
                let cr: f64 = qr[u].iter().zip(&wr).map(|(p, q)| p * q).sum::<f64>() + qi[u].iter().zip(&wi).map(|(p, q)| p * q).sum::<f64>();
                let ci: f64 = qr[u].iter().zip(&wi).map(|(p, q)| p * q).sum::<f64>() - qi[u].iter().zip(&wr).map(|(p, q)| p * q).sum::<f64>();
                for t in 0..dim {
                    wr[t] -= cr * qr[u][t] - ci * qi[u][t];
                    wi[t] -= cr * qi[u][t] + ci * qr[u][t];
                }
            }
            let bt = (wr.iter().map(|x| x * x).sum::<f64>() + wi.iter().map(|x| x * x).sum::<f64>()).sqrt();
            let m = alpha.len();
            let (vals, vecs) = eigh_tridiagonal(&alpha, &beta);
            // y = exp(-i tau T) e1
            let mut yr = vec![0.0; m];
            let mut yi = vec![0.0; m];
            for jj in 0..m {
                let w0 = vecs[jj * m];
                let (s, c) = (-tau * vals[jj]).sin_cos();
                for kk in 0..m {
                    yr[kk] += vecs[jj * m + kk] * c * w0;
                    yi[kk] += vecs[jj * m + kk] * s * w0;
                }
            }
            let err = bt * (yr[m - 1] * yr[m - 1] + yi[m - 1] * yi[m - 1]).sqrt();
            let invariant = bt < 1e-14 * al.abs().max(1.0);
            if err < TOL || invariant || m == dim {
                for t in 0..dim {
                    let (mut sr, mut si) = (0.0, 0.0);
                    for kk in 0..m {
                        sr += yr[kk] * qr[kk][t] - yi[kk] * qi[kk][t];
                        si += yr[kk] * qi[kk][t] + yi[kk] * qr[kk][t];
                    }
                    re[t] = nrm * sr;
                    im[t] = nrm * si;
                }
                return true;
            }
            if m >= m_cap {
                return false;
            }
            beta.push(bt);
            qr.push(wr.iter().map(|x| x / bt).collect());
            qi.push(wi.iter().map(|x| x / bt).collect());
        }
    }

    /// Run `steps` CF4 Magnus steps from `(re, im)` in place.
    pub fn evolve_steps(&self, sched: &Schedule, t_total: f64, steps: usize, re: &mut [f64], im: &mut [f64]) {
        let _ = self.evolve_steps_cancellable(sched, t_total, steps, re, im, &NEVER);
    }

    /// [`XySystem::evolve_steps`] polling `cancel` before every exponential
    /// (two per step); on a cancel it stops there with [`CoreError::Cancelled`].
    pub fn evolve_steps_cancellable(&self, sched: &Schedule, t_total: f64, steps: usize, re: &mut [f64], im: &mut [f64], cancel: &Cancel) -> CoreResult<()> {
        let r3 = 3f64.sqrt();
        let (c1, c2) = (0.5 - r3 / 6.0, 0.5 + r3 / 6.0);
        let (a1, a2) = (0.25 + r3 / 6.0, 0.25 - r3 / 6.0);
        let h = t_total / steps as f64;
        for k in 0..steps {
            let t = k as f64 * h;
            let (aa1, bb1) = sched.at((t + c1 * h) / t_total);
            let (aa2, bb2) = sched.at((t + c2 * h) / t_total);
            cancel.check()?;
            self.expm_apply(a1 * aa1 + a2 * aa2, a1 * bb1 + a2 * bb2, h, re, im);
            cancel.check()?;
            self.expm_apply(a2 * aa1 + a1 * aa2, a2 * bb1 + a1 * bb2, h, re, im);
        }
        Ok(())
    }

    /// One anneal from the driver's ground state; the state is over [`XySystem::basis`].
    pub fn anneal(&self, sched: &Schedule, t_total: f64, mode: StepMode) -> CoreResult<Evolved> {
        self.anneal_cancellable(sched, t_total, mode, &NEVER)
    }

    /// [`XySystem::anneal`] that stops with [`CoreError::Cancelled`] within
    /// one exponential once `cancel` is raised.
    pub fn anneal_cancellable(&self, sched: &Schedule, t_total: f64, mode: StepMode, cancel: &Cancel) -> CoreResult<Evolved> {
        if !(t_total.is_finite() && t_total > 0.0) {
            return Err(CoreError::invalid("T", format!("expected a finite anneal time > 0, got {t_total}")));
        }
        let g = self.driver_ground_state();
        let run = |steps: usize| {
            let mut re = g.clone();
            let mut im = vec![0.0; g.len()];
            self.evolve_steps_cancellable(sched, t_total, steps, &mut re, &mut im, cancel)?;
            Ok((re, im))
        };
        adaptive(run, 4, mode)
    }
}

/// `a H_XY + b E` on the subspace as a real operator.
pub struct XyHamiltonian<'a> {
    pub sys: &'a XySystem,
    pub a: f64,
    pub b: f64,
}

impl RealOperator for XyHamiltonian<'_> {
    fn dim(&self) -> usize {
        self.sys.dim()
    }
    fn apply(&self, v: &[f64], out: &mut [f64]) {
        self.sys.apply_real(self.a, self.b, v, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subspace_has_binomial_size_and_dicke_ground_state() {
        let sys = XySystem::new(6, 2, Graph::Complete, 1.0, 1 << 20, |x| x.count_ones() as f64).unwrap();
        assert_eq!(sys.dim(), 15);
        assert!(sys.basis.iter().all(|x| x.count_ones() == 2));
        let g = sys.driver_ground_state();
        let u = 1.0 / 15f64.sqrt();
        assert!(g.iter().all(|x| (x - u).abs() < 1e-9));
        let ring = XySystem::new(6, 3, Graph::Ring, 1.0, 1 << 20, |_| 0.0).unwrap();
        assert_eq!(ring.neighbours.len(), ring.dim() * 0 + ring.offsets[ring.dim()]);
    }

    #[test]
    fn cf4_converges_at_order_four() {
        let e = |x: u64| ((x * 2654435761) % 97) as f64 / 97.0;
        let sys = XySystem::new(6, 3, Graph::Complete, 1.0 / 6.0, 1 << 20, e).unwrap();
        let sched = Schedule::linear();
        let reference = sys.anneal(&sched, 6.0, StepMode::Fixed { steps: 800 }).unwrap();
        let a = sys.anneal(&sched, 6.0, StepMode::Fixed { steps: 8 }).unwrap();
        let b = sys.anneal(&sched, 6.0, StepMode::Fixed { steps: 16 }).unwrap();
        let d = |x: &Evolved| super::super::statevector::distance(&x.re, &x.im, &reference.re, &reference.im);
        let rate = (d(&a) / d(&b)).log2();
        assert!((rate - 4.0).abs() < 0.6, "rate {rate}");
    }
}

//! The couplings the annealers run on: dense or sparse (CSR), with exact `f64` energies.

use super::super::error::{CoreError, CoreResult};
use super::real::{Real, SPARE_MAX};

/// Symmetric couplings of a QUBO as the annealers need them.
pub trait Couplings<F: Real>: Sync {
    fn n(&self) -> usize;
    /// `Q_ii`.
    fn diag(&self) -> &[F];
    /// `f += W_i` (row `i` of the symmetric couplings).
    fn add_row(&self, i: usize, f: &mut [F]);
    /// `f -= W_i`.
    fn sub_row(&self, i: usize, f: &mut [F]);
    /// `f += s W_i` with `s = +1 or -1` (one branch-free pass).
    fn axpy_row(&self, i: usize, s: F, f: &mut [F]);
    /// Exact `f64` energy of a 0/1 state, offset included.
    fn energy(&self, x: &[u8]) -> f64;
    /// Energy changes smaller than this count as zero (rounding of the fields).
    fn tolerance(&self) -> F;
    /// Per variable: a flip of `i` whose change is smaller than this counts
    /// as zero. Rounding of field `i` scales with row `i`'s coefficients, not
    /// the largest of the problem, whose tolerance would hide the changes of
    /// small variables beside huge ones; never above [`Couplings::tolerance`]
    /// (the largest row's), so callers test that first and ask for this
    /// (`O(n)` on a dense model) only for changes below it.
    fn flip_tolerance(&self, i: usize) -> F;
    /// This model as a dense `f32` one, the kind [`anneal_flip_lanes`](super::anneal_flip_lanes) runs.
    fn as_dense_f32(&self) -> Option<&DenseModel<'_, f32>> {
        None
    }
}

/// A dense QUBO: diagonal and full symmetric couplings in `F`, plus the
/// original upper-triangular `f64` matrix for exact energies.
pub struct DenseModel<'a, F: Real> {
    pub(super) n: usize,
    pub(super) diag: Vec<F>,
    pub(super) w: Vec<F>,
    pub(super) q: &'a [f64],
    pub(super) offset: f64,
    pub(super) tol: F,
}

impl<'a, F: Real> DenseModel<'a, F> {
    /// From a row-major `n x n` QUBO (upper-triangular by convention; a
    /// nonzero lower triangle is added to the upper one).
    pub fn new(q: &'a [f64], n: usize, offset: f64) -> CoreResult<Self> {
        if q.len() != n * n {
            return Err(CoreError::invalid("Q", format!("expected {n}x{n} = {} entries, got {}", n * n, q.len())));
        }
        let mut diag = Vec::with_capacity(n);
        // Reuse this thread's spare buffer: every entry is written below, so
        // stale contents need no clearing.
        let mut w = F::with_spare(std::mem::take);
        w.truncate(n * n);
        w.resize(n * n, F::ZERO);
        // Pass 1, contiguous: w = Q in F, and the largest |Q_ab|.
        for (wv, &qv) in w.iter_mut().zip(q) {
            *wv = F::from_f64(qv);
        }
        // Largest |Q_ab| and a finiteness probe (sum of 0 v: NaN as soon as
        // one entry is NaN or infinite), in 8 independent lanes.
        let mut lanes = [0.0f64; 8];
        let mut probe = [0.0f64; 8];
        let mut chunks = q.chunks_exact(8);
        for c in &mut chunks {
            for l in 0..8 {
                let v = c[l].abs();
                probe[l] += c[l] * 0.0;
                if v > lanes[l] {
                    lanes[l] = v;
                }
            }
        }
        let rest = chunks.remainder();
        if !(probe.iter().sum::<f64>() + rest.iter().map(|v| v * 0.0).sum::<f64>()).is_finite() {
            return Err(CoreError::invalid("q", "expected finite coefficients, got a NaN or infinite value"));
        }
        let qmax = rest.iter().chain(lanes.iter()).fold(0.0f64, |m, v| if v.abs() > m { v.abs() } else { m });
        for a in 0..n {
            diag.push(F::from_f64(q[a * n + a]));
            w[a * n + a] = F::ZERO;
        }
        // Pass 2, in 32 x 32 tiles of the upper triangle: W_ab = W_ba =
        // Q_ab + Q_ba (exact for the usual upper-triangular Q, whose lower
        // half is zero).
        const T: usize = 32;
        for a0 in (0..n).step_by(T) {
            for b0 in (a0..n).step_by(T) {
                for a in a0..(a0 + T).min(n) {
                    for b in b0.max(a + 1)..(b0 + T).min(n) {
                        let v = w[a * n + b] + w[b * n + a];
                        w[a * n + b] = v;
                        w[b * n + a] = v;
                    }
                }
            }
        }
        // |W_ab| <= 2 max |Q|: the scale of the rounding tolerance.
        let scale = 2.0 * qmax;
        let tol = F::from_f64(tolerance_for::<F>(scale, n));
        Ok(DenseModel { n, diag, w, q, offset, tol })
    }

    /// Row `i` of the symmetric couplings.
    #[inline(always)]
    pub fn row(&self, i: usize) -> &[F] {
        &self.w[i * self.n..(i + 1) * self.n]
    }

    /// Exact energy of the state whose ones are `ones`.
    pub fn energy_of_ones(&self, ones: &[u32]) -> f64 {
        let n = self.n;
        let mut e = self.offset;
        for (t, &a) in ones.iter().enumerate() {
            let a = a as usize;
            e += self.q[a * n + a];
            for &b in &ones[t + 1..] {
                let b = b as usize;
                e += self.q[a * n + b] + self.q[b * n + a];
            }
        }
        e
    }
}

impl<F: Real> Drop for DenseModel<'_, F> {
    fn drop(&mut self) {
        let w = std::mem::take(&mut self.w);
        if w.capacity() <= SPARE_MAX {
            F::with_spare(|spare| {
                if w.capacity() > spare.capacity() {
                    *spare = w;
                }
            });
        }
    }
}

pub(super) fn tolerance_for<F: Real>(scale: f64, n: usize) -> f64 {
    // Rounding of a field after many updates: a few ulps of the largest
    // coefficient times the row length.
    let eps = if std::mem::size_of::<F>() == 4 { f32::EPSILON as f64 } else { f64::EPSILON };
    (scale * eps * (4.0 + (n as f64).sqrt())).max(f64::MIN_POSITIVE)
}

impl<F: Real> Couplings<F> for DenseModel<'_, F> {
    #[inline(always)]
    fn n(&self) -> usize {
        self.n
    }
    #[inline(always)]
    fn diag(&self) -> &[F] {
        &self.diag
    }
    #[inline(always)]
    fn add_row(&self, i: usize, f: &mut [F]) {
        for (fv, &wv) in f.iter_mut().zip(self.row(i)) {
            *fv += wv;
        }
    }
    #[inline(always)]
    fn sub_row(&self, i: usize, f: &mut [F]) {
        for (fv, &wv) in f.iter_mut().zip(self.row(i)) {
            *fv -= wv;
        }
    }
    #[inline(always)]
    fn axpy_row(&self, i: usize, s: F, f: &mut [F]) {
        for (fv, &wv) in f.iter_mut().zip(self.row(i)) {
            *fv += s * wv;
        }
    }
    fn energy(&self, x: &[u8]) -> f64 {
        let ones: Vec<u32> = (0..self.n as u32).filter(|&i| x[i as usize] != 0).collect();
        self.energy_of_ones(&ones)
    }
    fn tolerance(&self) -> F {
        self.tol
    }
    fn flip_tolerance(&self, i: usize) -> F {
        let d = 2.0 * self.diag[i].to_f64().abs();
        let m = self.row(i).iter().fold(d, |m, v| m.max(v.to_f64().abs()));
        F::from_f64(tolerance_for::<F>(m, self.n))
    }
    fn as_dense_f32(&self) -> Option<&DenseModel<'_, f32>> {
        F::dense_f32(self)
    }
}

/// A sparse QUBO: diagonal plus a symmetric CSR adjacency in `F`, and the
/// original `f64` linear terms and edge list for exact energies.
pub struct CsrModel<F: Real> {
    n: usize,
    diag: Vec<F>,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<F>,
    linear: Vec<f64>,
    edges: Vec<(u32, u32, f64)>,
    offset: f64,
    tol: F,
    row_tol: Vec<F>,
}

impl<F: Real> CsrModel<F> {
    /// From linear terms and an edge list `(rows, cols, values)` (as dimod's
    /// `to_numpy_vectors` gives it; duplicate edges add up).
    pub fn new(linear: &[f64], rows: &[i64], cols: &[i64], vals: &[f64], offset: f64) -> CoreResult<Self> {
        let n = linear.len();
        if rows.len() != cols.len() || rows.len() != vals.len() {
            return Err(CoreError::invalid("quadratic", "rows, cols and values must have the same length"));
        }
        let mut deg = vec![0usize; n + 1];
        let mut edges = Vec::with_capacity(rows.len());
        let mut scale = linear.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for ((&r, &c), &v) in rows.iter().zip(cols).zip(vals) {
            if r < 0 || c < 0 || r as usize >= n || c as usize >= n {
                return Err(CoreError::invalid("quadratic", format!("edge ({r}, {c}) outside 0..{n}")));
            }
            if r == c {
                return Err(CoreError::invalid("quadratic", format!("self-loop ({r}, {c})")));
            }
            deg[r as usize + 1] += 1;
            deg[c as usize + 1] += 1;
            edges.push((r as u32, c as u32, v));
            scale = scale.max(v.abs());
        }
        for i in 0..n {
            deg[i + 1] += deg[i];
        }
        let indptr = deg.clone();
        let mut fill = deg;
        let mut indices = vec![0u32; indptr[n]];
        let mut data = vec![F::ZERO; indptr[n]];
        for &(r, c, v) in &edges {
            for (a, b) in [(r, c), (c, r)] {
                let p = fill[a as usize];
                indices[p] = b;
                data[p] = F::from_f64(v);
                fill[a as usize] += 1;
            }
        }
        let max_deg = (0..n).map(|i| indptr[i + 1] - indptr[i]).max().unwrap_or(0);
        let row_tol = (0..n)
            .map(|i| {
                let m = data[indptr[i]..indptr[i + 1]].iter().fold(linear[i].abs(), |m, v| m.max(v.to_f64().abs()));
                F::from_f64(tolerance_for::<F>(m, max_deg + 1))
            })
            .collect();
        Ok(CsrModel {
            n,
            diag: linear.iter().map(|&v| F::from_f64(v)).collect(),
            indptr,
            indices,
            data,
            linear: linear.to_vec(),
            edges,
            offset,
            tol: F::from_f64(tolerance_for::<F>(scale, max_deg + 1)),
            row_tol,
        })
    }
}

impl<F: Real> Couplings<F> for CsrModel<F> {
    fn n(&self) -> usize {
        self.n
    }
    fn diag(&self) -> &[F] {
        &self.diag
    }
    #[inline(always)]
    fn add_row(&self, i: usize, f: &mut [F]) {
        let (s, e) = (self.indptr[i], self.indptr[i + 1]);
        for (&j, &v) in self.indices[s..e].iter().zip(&self.data[s..e]) {
            f[j as usize] += v;
        }
    }
    #[inline(always)]
    fn sub_row(&self, i: usize, f: &mut [F]) {
        let (s, e) = (self.indptr[i], self.indptr[i + 1]);
        for (&j, &v) in self.indices[s..e].iter().zip(&self.data[s..e]) {
            f[j as usize] -= v;
        }
    }
    #[inline(always)]
    fn axpy_row(&self, i: usize, s: F, f: &mut [F]) {
        let (a, e) = (self.indptr[i], self.indptr[i + 1]);
        for (&j, &v) in self.indices[a..e].iter().zip(&self.data[a..e]) {
            f[j as usize] += s * v;
        }
    }
    fn energy(&self, x: &[u8]) -> f64 {
        let mut e = self.offset;
        for (i, &v) in self.linear.iter().enumerate() {
            if x[i] != 0 {
                e += v;
            }
        }
        for &(r, c, v) in &self.edges {
            if x[r as usize] != 0 && x[c as usize] != 0 {
                e += v;
            }
        }
        e
    }
    fn tolerance(&self) -> F {
        self.tol
    }
    fn flip_tolerance(&self, i: usize) -> F {
        self.row_tol[i]
    }
}

/// Recompute the local fields of `x` from scratch.
#[inline(always)]
pub fn fields_of<F: Real, C: Couplings<F>>(c: &C, x: &[u8], f: &mut [F]) {
    f.iter_mut().for_each(|v| *v = F::ZERO);
    for (i, &xi) in x.iter().enumerate() {
        if xi != 0 {
            c.add_row(i, f);
        }
    }
}

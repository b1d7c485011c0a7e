//! Greedy construction and steepest local descent for dense QUBOs.
//!
//! Notation (shared with `core::tabu`): an upper-triangular QUBO `Q` is turned
//! into a [`Dense`] problem with diagonal `a_i = Q_ii` and a symmetric,
//! zero-diagonal coupling `W_ij = W_ji = Q_ij` (`i < j`), so that
//!
//! ```text
//! E(x) = sum_i a_i x_i + sum_{i<j} W_ij x_i x_j + offset .
//! ```
//!
//! A [`LocalState`] keeps the local fields `f_i = a_i + sum_j W_ij x_j`, from
//! which every move is priced in `O(1)`:
//!
//! * flipping `i` changes `E` by `d_i = (1 - 2 x_i) f_i`;
//! * swapping a selected `i` (1 -> 0) with an unselected `j` (0 -> 1) changes
//!   it by `f_j - f_i - W_ij = d_i + d_j - W_ij` (the removal lowers `f_j` by
//!   `W_ij` before `j` enters), which keeps exactly `k` ones.
//!
//! A move updates all fields in `O(n)` (one row of `W`).
//!
//! The greedy solver of the feature-selection problem adds, one at a time, the
//! variable whose inclusion lowers `E` the most: until no inclusion lowers it
//! (unconstrained) or until exactly `k` are chosen. It then polishes the result
//! by steepest descent: best single flip (unconstrained) or best swap
//! (exactly `k`) until no move improves by more than a rounding tolerance. The
//! result is a local minimum of the respective neighbourhood. Deterministic:
//! ties go to the lowest index.

use rayon::prelude::*;

use super::qubo::qubo_energy;

/// A dense QUBO in symmetric form: diagonal, symmetric zero-diagonal coupling, offset.
#[derive(Debug, Clone)]
pub struct Dense {
    pub n: usize,
    /// `a_i = Q_ii`.
    pub diag: Vec<f64>,
    /// `W` row-major `n x n`, symmetric, zero diagonal.
    pub w: Vec<f64>,
    pub offset: f64,
    /// `R_i = |a_i| + sum_j |W_ij|`, which bounds every partial sum of `f_i`.
    pub row_abs: Vec<f64>,
    /// Energy comparisons of a long search (tabu's new best, elite states)
    /// count differences above this: `(4n + 64) 2^-52 max_i R_i`, a bound on
    /// the rounding of fields and energies kept over many moves.
    pub tol: f64,
    /// `max_i flip_tol(i)`: a change below minus this improves for sure.
    pub sure: f64,
}

impl Dense {
    /// From an upper-triangular `n x n` `Q` (the lower triangle is ignored).
    pub fn from_upper(q: &[f64], n: usize, offset: f64) -> Self {
        let mut w = q.to_vec();
        let diag = Self::symmetrize_in_place(&mut w, n);
        Self::from_parts(n, diag, w, offset)
    }

    /// Take ownership of an upper-triangular `Q` buffer and symmetrize it in
    /// place (no second `n^2` allocation).
    pub fn from_upper_owned(mut q: Vec<f64>, n: usize, offset: f64) -> Self {
        let diag = Self::symmetrize_in_place(&mut q, n);
        Self::from_parts(n, diag, q, offset)
    }

    fn symmetrize_in_place(w: &mut [f64], n: usize) -> Vec<f64> {
        debug_assert_eq!(w.len(), n * n);
        let mut diag = vec![0.0; n];
        for i in 0..n {
            diag[i] = w[i * n + i];
            w[i * n + i] = 0.0;
        }
        // Mirror the upper triangle in 32 x 32 tiles (cache-friendly transpose).
        const T: usize = 32;
        for bi in (0..n).step_by(T) {
            for bj in (bi..n).step_by(T) {
                for i in bi..(bi + T).min(n) {
                    for j in bj.max(i + 1)..(bj + T).min(n) {
                        w[j * n + i] = w[i * n + j];
                    }
                }
            }
        }
        diag
    }

    fn from_parts(n: usize, diag: Vec<f64>, w: Vec<f64>, offset: f64) -> Self {
        let abs_sum = |v: &[f64]| {
            // Four independent lanes: the reduction vectorises.
            let mut m = [0.0f64; 4];
            let mut c = v.chunks_exact(4);
            for x in &mut c {
                for l in 0..4 {
                    m[l] += x[l].abs();
                }
            }
            c.remainder().iter().map(|v| v.abs()).sum::<f64>() + (m[0] + m[1]) + (m[2] + m[3])
        };
        // (The lane sums round differently from a sequential sum, by far less
        // than the 2^-52 n R_i margin they feed.)
        let row_abs: Vec<f64> = (0..n).map(|i| diag[i].abs() + abs_sum(&w[i * n..(i + 1) * n])).collect();
        let r = row_abs.iter().fold(0.0f64, |a, &b| a.max(b));
        let tol = ((4 * n + 64) as f64 * f64::EPSILON * r).max(f64::MIN_POSITIVE);
        let sure = (2 * n + 4) as f64 * f64::EPSILON * r;
        Dense { n, diag, w, offset, row_abs, tol, sure }
    }

    /// Rounding bound of the field `f_i` computed afresh and updated by at
    /// most `n` moves since: each of its `<= 3n` roundings errs by at most
    /// `2^-53 R_i`, `R_i = |a_i| + sum_j |W_ij|` (which bounds every partial
    /// sum of `f_i`). A flip of `i` improves for sure when its computed change
    /// is below `-flip_tol(i)`, and only then counts (a global tolerance
    /// scaled by the largest coefficient hid the improvements of small ones).
    #[inline]
    pub fn flip_tol(&self, i: usize) -> f64 {
        (2 * self.n + 4) as f64 * f64::EPSILON * self.row_abs[i]
    }

    /// Whether a flip of `i` changing the energy by `d` surely lowers it.
    #[inline]
    pub fn surely_lowers(&self, i: usize, d: f64) -> bool {
        d < -self.sure || d < -self.flip_tol(i)
    }

    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.w[i * self.n..(i + 1) * self.n]
    }

    /// Exact energy of `x` (recomputed from scratch, `O(n^2)`).
    pub fn energy(&self, x: &[u8]) -> f64 {
        let n = self.n;
        let mut e = self.offset;
        for i in 0..n {
            if x[i] == 0 {
                continue;
            }
            e += self.diag[i];
            let r = self.row(i);
            for j in i + 1..n {
                if x[j] != 0 {
                    e += r[j];
                }
            }
        }
        e
    }
}

/// A state with its local fields and energy (kept incrementally).
#[derive(Debug, Clone)]
pub struct LocalState {
    pub x: Vec<u8>,
    /// `f_i = a_i + sum_j W_ij x_j`.
    pub f: Vec<f64>,
    pub energy: f64,
    pub ones: usize,
}

impl LocalState {
    /// The state `x` of problem `p`, fields and energy computed in `O(n^2)`.
    pub fn new(p: &Dense, x: &[u8]) -> Self {
        let n = p.n;
        let mut f = p.diag.clone();
        let mut ones = 0;
        for i in 0..n {
            if x[i] != 0 {
                ones += 1;
                let r = p.row(i);
                for j in 0..n {
                    f[j] += r[j];
                }
            }
        }
        let x: Vec<u8> = x.iter().map(|&v| u8::from(v != 0)).collect();
        let energy = p.energy(&x);
        LocalState { x, f, energy, ones }
    }

    /// All zeros (energy = offset).
    pub fn zeros(p: &Dense) -> Self {
        LocalState { x: vec![0; p.n], f: p.diag.clone(), energy: p.offset, ones: 0 }
    }

    /// Energy change of flipping `i`.
    #[inline]
    pub fn flip_delta(&self, i: usize) -> f64 {
        if self.x[i] == 0 {
            self.f[i]
        } else {
            -self.f[i]
        }
    }

    /// Energy change of the swap: selected `i` leaves, unselected `j` enters.
    #[inline]
    pub fn swap_delta(&self, p: &Dense, i: usize, j: usize) -> f64 {
        self.f[j] - self.f[i] - p.w[i * p.n + j]
    }

    /// Flip `i`, updating fields and energy in `O(n)`.
    #[inline]
    pub fn flip(&mut self, p: &Dense, i: usize) {
        self.energy += self.flip_delta(i);
        let r = p.row(i);
        if self.x[i] == 0 {
            self.x[i] = 1;
            self.ones += 1;
            for (f, &w) in self.f.iter_mut().zip(r) {
                *f += w;
            }
        } else {
            self.x[i] = 0;
            self.ones -= 1;
            for (f, &w) in self.f.iter_mut().zip(r) {
                *f -= w;
            }
        }
    }

    /// Swap selected `i` out and unselected `j` in (two flips, `O(n)`).
    #[inline]
    pub fn swap(&mut self, p: &Dense, i: usize, j: usize) {
        let d = self.swap_delta(p, i, j);
        let e = self.energy + d;
        let n = p.n;
        let (ri, rj) = (&p.w[i * n..(i + 1) * n], &p.w[j * n..(j + 1) * n]);
        for ((f, &a), &b) in self.f.iter_mut().zip(ri).zip(rj) {
            *f += b - a;
        }
        self.x[i] = 0;
        self.x[j] = 1;
        self.energy = e;
    }

    /// Recompute energy and fields from scratch (removes accumulated rounding).
    pub fn refresh(&mut self, p: &Dense) {
        *self = LocalState::new(p, &self.x.clone());
    }

    /// Set `x` to `y` by flipping the differing variables (`O(n)` per difference).
    pub fn assign(&mut self, p: &Dense, y: &[u8]) {
        for i in 0..p.n {
            if self.x[i] != y[i] {
                self.flip(p, i);
            }
        }
    }
}

/// The best flip `(i, delta)` (lowest index on ties); `None` when `n == 0`.
#[inline]
pub fn best_flip(s: &LocalState) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for i in 0..s.x.len() {
        let d = s.flip_delta(i);
        if best.map_or(true, |(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best
}

/// The best swap `(i out, j in, delta)`; `None` when no swap exists.
pub fn best_swap(p: &Dense, s: &LocalState) -> Option<(usize, usize, f64)> {
    best_swap_below(p, s, |_, _, _| true)
}

/// The best swap `(i, j, d)` for which `sure(i, j, d)` holds (lowest indices on ties).
#[inline]
fn best_swap_below(p: &Dense, s: &LocalState, sure: impl Fn(usize, usize, f64) -> bool) -> Option<(usize, usize, f64)> {
    let n = p.n;
    let mut best: Option<(usize, usize, f64)> = None;
    for i in 0..n {
        if s.x[i] == 0 {
            continue;
        }
        let r = p.row(i);
        let fi = s.f[i];
        for j in 0..n {
            if s.x[j] != 0 {
                continue;
            }
            let d = s.f[j] - fi - r[j];
            // The bound only where it decides (it costs more than the comparison).
            if best.map_or(true, |(_, _, b)| d < b) && sure(i, j, d) {
                best = Some((i, j, d));
            }
        }
    }
    best
}

/// The flip that lowers the energy most among those that lower it for sure
/// (`delta < -flip_tol(i)`), lowest index on ties.
fn best_sure_flip(p: &Dense, s: &LocalState) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for i in 0..p.n {
        let d = s.flip_delta(i);
        if best.map_or(true, |(_, b)| d < b) && p.surely_lowers(i, d) {
            best = Some((i, d));
        }
    }
    best
}

/// Steepest single-flip descent: the best flip that surely lowers the energy
/// (its change below `-flip_tol(i)`, a bound on that variable's own rounding),
/// until there is none. Fields are recomputed every `n` moves to keep the
/// bound. Returns the number of flips made.
pub fn descend_flip(p: &Dense, s: &mut LocalState) -> usize {
    let mut moves = 0;
    while let Some((i, _)) = best_sure_flip(p, s) {
        s.flip(p, i);
        moves += 1;
        if moves % p.n.max(1) == 0 {
            s.refresh(p);
        }
    }
    moves
}

/// Steepest swap descent (keeps the number of ones): the best swap whose
/// change is below `-(flip_tol(i) + flip_tol(j) + 2^-52 |W_ij|)`, until
/// there is none; fields recomputed every `n` moves. Returns the number of swaps made.
pub fn descend_swap(p: &Dense, s: &mut LocalState) -> usize {
    let mut moves = 0;
    let n = p.n;
    // The swap's change carries both fields' rounding and two more roundings
    // (at most 2^-52 |W_ij| <= 0.5 p.sure).
    let sure = 2.5 * p.sure;
    let bound = |i: usize, j: usize, d: f64| d < -sure || d < -(p.flip_tol(i) + p.flip_tol(j) + f64::EPSILON * p.w[i * n + j].abs());
    while let Some((i, j, _)) = best_swap_below(p, s, bound) {
        s.swap(p, i, j);
        moves += 1;
        if moves % n.max(1) == 0 {
            s.refresh(p);
        }
    }
    moves
}

/// Greedy construction: from all zeros, repeatedly add the unselected
/// variable with the lowest field (= inclusion cost) while it lowers the
/// energy (`k = None`) or until exactly `k` ones.
pub fn construct(p: &Dense, k: Option<usize>) -> LocalState {
    let mut s = LocalState::zeros(p);
    let target = k.unwrap_or(p.n).min(p.n);
    while s.ones < target {
        // With k: the cheapest inclusion; without: the cheapest that surely lowers E.
        let mut best: Option<(usize, f64)> = None;
        for j in 0..p.n {
            if s.x[j] == 0 && best.map_or(true, |(_, b)| s.f[j] < b) && (k.is_some() || p.surely_lowers(j, s.f[j])) {
                best = Some((j, s.f[j]));
            }
        }
        match best {
            Some((j, _)) => s.flip(p, j),
            None => break,
        }
    }
    s
}

/// Greedy construction followed by steepest descent; the energy returned is
/// recomputed exactly.
pub fn greedy_descent(p: &Dense, k: Option<usize>) -> LocalState {
    let mut s = construct(p, k);
    match k {
        None => descend_flip(p, &mut s),
        Some(_) => descend_swap(p, &mut s),
    };
    s.energy = p.energy(&s.x);
    s
}

/// Greedy + descent on `B` upper-triangular QUBOs `q` (`(B, n, n)`), in
/// parallel over problems on the current pool. Writes `states` `(B, n)` and
/// `energies` `(B,)`.
pub fn greedy_batch(q: &[f64], offsets: &[f64], n: usize, k: Option<usize>, states: &mut [u8], energies: &mut [f64]) {
    let nn = n * n;
    if n == 0 {
        energies.copy_from_slice(offsets);
        return;
    }
    states
        .par_chunks_mut(n)
        .zip(energies.par_iter_mut())
        .enumerate()
        .for_each(|(b, (x, e))| {
            let p = Dense::from_upper(&q[b * nn..(b + 1) * nn], n, offsets[b]);
            let s = greedy_descent(&p, k);
            x.copy_from_slice(&s.x);
            *e = qubo_energy(&q[b * nn..(b + 1) * nn], offsets[b], x);
        });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    pub(crate) fn random_upper(n: usize, seed: u64) -> Vec<f64> {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut q = vec![0.0; n * n];
        for a in 0..n {
            for b in a..n {
                q[a * n + b] = r.gen_range(-1.0..1.0);
            }
        }
        q
    }

    #[test]
    fn incremental_fields_match_recomputation() {
        let n = 12;
        let q = random_upper(n, 3);
        let p = Dense::from_upper(&q, n, 0.5);
        let mut r = Xoshiro256PlusPlus::seed_from_u64(9);
        let x0: Vec<u8> = (0..n).map(|_| r.gen_range(0..2)).collect();
        let mut s = LocalState::new(&p, &x0);
        assert!((s.energy - qubo_energy(&q, 0.5, &x0)).abs() < 1e-12);
        for _ in 0..200 {
            let i = r.gen_range(0..n);
            let before = s.energy;
            let d = s.flip_delta(i);
            s.flip(&p, i);
            assert!((s.energy - (before + d)).abs() < 1e-12);
            assert!((s.energy - qubo_energy(&q, 0.5, &s.x)).abs() < 1e-9);
            let ones: Vec<usize> = (0..n).filter(|&v| s.x[v] == 1).collect();
            let zeros: Vec<usize> = (0..n).filter(|&v| s.x[v] == 0).collect();
            if !ones.is_empty() && !zeros.is_empty() {
                let (a, b) = (ones[r.gen_range(0..ones.len())], zeros[r.gen_range(0..zeros.len())]);
                let d = s.swap_delta(&p, a, b);
                let before = s.energy;
                s.swap(&p, a, b);
                assert!((s.energy - (before + d)).abs() < 1e-12);
                assert!((s.energy - qubo_energy(&q, 0.5, &s.x)).abs() < 1e-9);
            }
        }
        let fresh = LocalState::new(&p, &s.x);
        for (a, b) in fresh.f.iter().zip(&s.f) {
            assert!((a - b).abs() < 1e-9);
        }
    }

    #[test]
    fn greedy_results_are_local_minima() {
        for seed in 0..20 {
            let n = 15;
            let q = random_upper(n, seed);
            let p = Dense::from_upper(&q, n, 0.0);
            let s = greedy_descent(&p, None);
            for i in 0..n {
                let mut y = s.x.clone();
                y[i] ^= 1;
                assert!(qubo_energy(&q, 0.0, &y) >= s.energy - 1e-9);
            }
            let s = greedy_descent(&p, Some(4));
            assert_eq!(s.ones, 4);
            for i in 0..n {
                for j in 0..n {
                    if s.x[i] == 1 && s.x[j] == 0 {
                        let mut y = s.x.clone();
                        y[i] = 0;
                        y[j] = 1;
                        assert!(qubo_energy(&q, 0.0, &y) >= s.energy - 1e-9);
                    }
                }
            }
        }
    }

    #[test]
    fn greedy_picks_top_k_without_couplings() {
        let n = 10;
        let mut q = vec![0.0; n * n];
        let h = [0.3, 0.9, 0.1, 0.5, 0.8, 0.2, 0.7, 0.05, 0.6, 0.4];
        for i in 0..n {
            q[i * n + i] = -h[i];
        }
        let p = Dense::from_upper(&q, n, 0.0);
        let s = greedy_descent(&p, Some(3));
        let chosen: Vec<usize> = (0..n).filter(|&i| s.x[i] == 1).collect();
        assert_eq!(chosen, vec![1, 4, 6]);
        let s = greedy_descent(&p, None);
        assert_eq!(s.ones, n);
    }
}

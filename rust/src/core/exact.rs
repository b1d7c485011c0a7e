//! Exhaustive solvers: every state of a dense QUBO, or every state with
//! exactly `k` ones, returning the ground energy and *all* ground states.
//!
//! The enumeration is a depth-first walk over the decision tree of the
//! variables. A node at depth `t` carries the energy of its partial
//! assignment and the local fields `g_j = sum_{i<t, x_i=1} Q_ij` of the
//! undecided variables `j >= t`; choosing `x_t = 1` costs `Q_tt + g_t` and
//! adds row `t` of `Q` to the fields. Because fields only change on an
//! inclusion, the field vectors are indexed by the number of ones chosen so
//! far and never copied. The whole walk costs `O(2^n)` (amortised `O(1)` per
//! state) against `O(n 2^n)` for a Gray-code walk with an `O(n)` field update
//! per flip, and no rounding error accumulates over more than `n` additions.
//! With a cardinality the walk prunes every branch that cannot end with
//! exactly `k` ones, so it visits only the `C(n, k)` feasible leaves.
//!
//! Parallelism: the first `p` variables are fixed in every way the
//! cardinality allows; each prefix is an independent task. Partial results are
//! merged in task order, so the output does not depend on the thread count.

use rayon::prelude::*;

use super::error::{CoreError, CoreResult};

/// Largest number of variables for exhaustive search over all `2^n` states.
pub const MAX_UNCONSTRAINED_VARIABLES: usize = 30;
/// Default largest number of feasible states for the exactly-`k` search.
pub const DEFAULT_MAX_SUBSETS: u64 = 1 << 31;

/// `C(n, k)` saturating at `u64::MAX`.
pub fn binomial(n: usize, k: usize) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut acc: u128 = 1;
    for i in 0..k {
        acc = acc * (n - i) as u128 / (i + 1) as u128;
        if acc > u64::MAX as u128 {
            return u64::MAX;
        }
    }
    acc as u64
}

/// Ground energy and ground states found by an exhaustive search.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundStates {
    pub n: usize,
    /// The minimum energy (offset included).
    pub energy: f64,
    /// The first `max_states` ground states in enumeration order, `(m, n)` row-major, entries 0/1.
    pub states: Vec<u8>,
    /// How many ground states exist (may exceed the number stored).
    pub count: u64,
    /// Number of states examined.
    pub visited: u64,
}

impl GroundStates {
    fn empty(n: usize) -> Self {
        GroundStates {
            n,
            energy: f64::INFINITY,
            states: Vec::new(),
            count: 0,
            visited: 0,
        }
    }

    pub fn num_stored(&self) -> usize {
        if self.n == 0 {
            usize::from(self.count > 0)
        } else {
            self.states.len() / self.n
        }
    }

    /// Fold `other` (a later task) into `self`, keeping task order.
    fn merge(&mut self, other: GroundStates, tol: f64, max_states: usize) {
        self.visited += other.visited;
        if other.count == 0 {
            return;
        }
        if other.energy < self.energy - tol {
            let visited = self.visited;
            *self = other;
            self.visited = visited;
        } else if other.energy <= self.energy + tol {
            self.energy = self.energy.min(other.energy);
            self.count += other.count;
            let room = max_states.saturating_sub(self.num_stored());
            let take = (other.states.len() / self.n.max(1)).min(room);
            self.states
                .extend_from_slice(&other.states[..take * self.n]);
        }
    }
}

/// One exhaustive search, split into independent prefix tasks.
pub struct Enumerator<'a> {
    q: &'a [f64],
    n: usize,
    offset: f64,
    k: Option<usize>,
    tol: f64,
    /// States stored during the walk: `keep`, or at least [`MIN_CANDIDATES`]
    /// when the window is not 0 (the exact check needs the candidates).
    max_states: usize,
    /// Ground states returned.
    keep: usize,
    prefix_len: usize,
    prefixes: Vec<u64>,
}

/// Candidate ground states stored at least when [`window`] is not 0.
pub const MIN_CANDIDATES: usize = 1024;

impl<'a> Enumerator<'a> {
    /// Prepare the search of `q` (`n x n` upper-triangular), optionally with
    /// exactly `k` ones. Fails when the search space exceeds its limit.
    pub fn new(
        q: &'a [f64],
        n: usize,
        offset: f64,
        k: Option<usize>,
        max_states: usize,
        max_subsets: u64,
    ) -> CoreResult<Self> {
        if q.len() != n * n {
            return Err(CoreError::invalid(
                "Q",
                format!("expected {n}x{n} = {} entries, got {}", n * n, q.len()),
            ));
        }
        match k {
            None if n > MAX_UNCONSTRAINED_VARIABLES => {
                return Err(CoreError::TooLarge {
                    message: format!(
                        "exact search over all 2^n states supports at most n = {MAX_UNCONSTRAINED_VARIABLES} variables, got n = {n}; use a heuristic sampler (\"sa\", \"tabu\")"
                    ),
                })
            }
            Some(k) if k > n => {
                return Err(CoreError::invalid("k", format!("expected 0 <= k <= {n}, got {k}")))
            }
            Some(k) => {
                let c = binomial(n, k);
                if c > max_subsets {
                    return Err(CoreError::TooLarge {
                        message: format!(
                            "exact search over all C({n}, {k}) = {} subsets exceeds the limit of {max_subsets} subsets; use a heuristic sampler (\"sa\", \"tabu\") or fewer candidate maps",
                            if c == u64::MAX { "more than 1.8e19".to_string() } else { c.to_string() }
                        ),
                    });
                }
            }
            None => {}
        }
        if !(q.iter().map(|v| v * 0.0).sum::<f64>() + offset * 0.0).is_finite() {
            return Err(CoreError::invalid("q", "expected finite coefficients, got a NaN or infinite value"));
        }
        let tol = window(q, n, offset);
        let prefix_len = if n <= 16 { 0 } else { (n - 12).min(12) };
        let mut prefixes = Vec::new();
        for p in 0u64..(1u64 << prefix_len) {
            let ones = p.count_ones() as usize;
            if let Some(k) = k {
                if ones > k || ones + (n - prefix_len) < k {
                    continue;
                }
            }
            prefixes.push(p);
        }
        Ok(Enumerator {
            q,
            n,
            offset,
            k,
            tol,
            max_states: if tol > 0.0 { max_states.max(MIN_CANDIDATES) } else { max_states.max(1) },
            keep: max_states.max(1),
            prefix_len,
            prefixes,
        })
    }

    pub fn num_tasks(&self) -> usize {
        self.prefixes.len()
    }

    /// Width of the window of candidate ground states (see [`window`]); 0 when
    /// every energy is computed exactly.
    pub fn tolerance(&self) -> f64 {
        self.tol
    }

    /// Keep, of the candidates a finished search stored, exactly those whose
    /// energy equals the least one, compared without rounding
    /// ([`compare_energies`]); `energy` becomes that minimum, faithfully
    /// rounded; at most `max_states` of them are returned. Exact as long as
    /// every candidate was stored (at most `max(max_states, MIN_CANDIDATES)`
    /// states within the window); `count` counts unstored candidates
    /// unchecked. Call once, after the last [`Enumerator::merge`].
    pub fn finish(&self, mut gs: GroundStates) -> GroundStates {
        let n = self.n;
        if self.tol == 0.0 || gs.count == 0 || n == 0 {
            gs.states.truncate(self.keep * n);
            return gs;
        }
        let states: Vec<&[u8]> = gs.states.chunks(n).collect();
        let mut best = 0;
        for (i, x) in states.iter().enumerate().skip(1) {
            if compare_energies(self.q, n, x, states[best]) == std::cmp::Ordering::Less {
                best = i;
            }
        }
        let kept: Vec<u8> = states
            .iter()
            .filter(|x| compare_energies(self.q, n, x, states[best]) == std::cmp::Ordering::Equal)
            .flat_map(|x| x.iter().copied())
            .collect();
        let removed = (states.len() - kept.len() / n) as u64;
        gs.energy = exact_energy(self.q, n, self.offset, states[best]);
        gs.count -= removed;
        gs.states = kept;
        gs.states.truncate(self.keep * n);
        gs
    }

    /// Run tasks `start..end` (in parallel on the current rayon pool).
    pub fn run(&self, start: usize, end: usize) -> GroundStates {
        let parts: Vec<GroundStates> = self.prefixes[start..end]
            .par_iter()
            .with_min_len(1)
            .map(|&p| self.run_prefix(p))
            .collect();
        let mut out = GroundStates::empty(self.n);
        for part in parts {
            out.merge(part, self.tol, self.max_states);
        }
        out
    }

    /// Run every task on the calling thread (for problems small enough that
    /// splitting them costs more than it gains; batches parallelise across problems).
    pub fn run_sequential(&self) -> GroundStates {
        let mut out = GroundStates::empty(self.n);
        for &p in &self.prefixes {
            let part = self.run_prefix(p);
            out.merge(part, self.tol, self.max_states);
        }
        self.finish(out)
    }

    /// Merge a later chunk's result into an earlier one.
    pub fn merge(&self, acc: &mut GroundStates, part: GroundStates) {
        acc.merge(part, self.tol, self.max_states);
    }

    /// Run every task (and [`Enumerator::finish`]).
    pub fn run_all(&self) -> GroundStates {
        self.finish(self.run(0, self.num_tasks()))
    }

    fn run_prefix(&self, prefix: u64) -> GroundStates {
        let n = self.n;
        let mut walk = Walk {
            q: self.q,
            n,
            k: self.k,
            tol: self.tol,
            max_states: self.max_states,
            x: vec![0u8; n],
            fields: vec![0.0; (n + 1) * n.max(1)],
            best: GroundStates::empty(n),
        };
        // Apply the prefix: variables 0..p fixed by the bits of `prefix`.
        let mut e = self.offset;
        let mut c = 0usize;
        for t in 0..self.prefix_len {
            if (prefix >> t) & 1 == 1 {
                e += walk.include(t, c);
                walk.x[t] = 1;
                c += 1;
            }
        }
        walk.dfs(self.prefix_len, e, c);
        walk.best
    }
}

/// Width of the window of candidate ground states of `q` (finite,
/// upper-triangular `n x n`) and `offset`.
///
/// A walk computes each energy as a sum of at most `2n` rounded additions of
/// coefficients (a field is a sum of up to `n - 1` of them, a step adds
/// `Q_tt` and that field, the energy adds up to `n` steps), so its error is
/// at most `Delta = n 2^-52 S` (the classic `gamma_{2n}` bound), where `S =
/// sum |Q_ij| + |offset|` bounds the coefficients in any one sum. Every
/// ground state is then computed within `2 Delta` of the least computed
/// energy; the window is `(4n + 8) 2^-52 S`, twice that. Its candidates are
/// told apart exactly by [`Enumerator::finish`].
///
/// 0 when every partial sum is exact: all coefficients are multiples of a
/// power of two `2^p` and `S <= 2^(53 + p)` (integers, halves, ... of
/// moderate size), so each sum is an integer multiple of `2^p` that `f64`
/// holds exactly.
pub fn window(q: &[f64], n: usize, offset: f64) -> f64 {
    let mut s = offset.abs();
    let mut low = i32::MAX;
    let mut note = |v: f64| {
        if v != 0.0 {
            let bits = v.to_bits();
            let (exp, mant) = (((bits >> 52) & 0x7ff) as i32, bits & ((1u64 << 52) - 1));
            let (m, e) = if exp == 0 { (mant, -1074) } else { (mant | (1u64 << 52), exp - 1075) };
            low = low.min(e + m.trailing_zeros() as i32);
        }
    };
    note(offset);
    for a in 0..n {
        for &v in &q[a * n + a..(a + 1) * n] {
            s += v.abs();
            note(v);
        }
    }
    if low == i32::MAX || s * (1.0 + 1e-12) <= 2f64.powi(53 + low) {
        return 0.0;
    }
    (4 * n + 8) as f64 * f64::EPSILON * s
}

/// Error-free running sum (Shewchuk's expansion, as `math.fsum` keeps it):
/// `partials` are non-overlapping, by increasing magnitude, and add up to the
/// exact sum of every value added.
fn add_exact(partials: &mut Vec<f64>, mut x: f64) {
    let mut i = 0;
    for j in 0..partials.len() {
        let mut y = partials[j];
        if x.abs() < y.abs() {
            std::mem::swap(&mut x, &mut y);
        }
        let hi = x + y;
        let lo = y - (hi - x);
        if lo != 0.0 {
            partials[i] = lo;
            i += 1;
        }
        x = hi;
    }
    partials.truncate(i);
    partials.push(x);
}

/// `sign * Q_ij` for the coefficients of the energy of `x` (upper triangle, offset excluded).
fn add_terms(partials: &mut Vec<f64>, q: &[f64], n: usize, x: &[u8], sign: f64) {
    for a in (0..n).filter(|&a| x[a] != 0) {
        add_exact(partials, sign * q[a * n + a]);
        for b in (a + 1..n).filter(|&b| x[b] != 0) {
            add_exact(partials, sign * q[a * n + b]);
        }
    }
}

/// The exact order of the energies of `x` and `y` (the real-number sums of
/// their coefficients, no rounding).
pub fn compare_energies(q: &[f64], n: usize, x: &[u8], y: &[u8]) -> std::cmp::Ordering {
    let mut p = Vec::new();
    add_terms(&mut p, q, n, x, 1.0);
    add_terms(&mut p, q, n, y, -1.0);
    // Non-overlapping partials: the largest nonzero one decides the sign.
    match p.iter().rev().find(|v| **v != 0.0) {
        None => std::cmp::Ordering::Equal,
        Some(v) if *v < 0.0 => std::cmp::Ordering::Less,
        Some(_) => std::cmp::Ordering::Greater,
    }
}

/// The energy of `x` from its exact sum, rounded once per partial (faithful).
pub fn exact_energy(q: &[f64], n: usize, offset: f64, x: &[u8]) -> f64 {
    let mut p = Vec::new();
    add_exact(&mut p, offset);
    add_terms(&mut p, q, n, x, 1.0);
    p.iter().sum()
}

struct Walk<'a> {
    q: &'a [f64],
    n: usize,
    k: Option<usize>,
    tol: f64,
    max_states: usize,
    x: Vec<u8>,
    fields: Vec<f64>,
    best: GroundStates,
}

impl Walk<'_> {
    /// Set `x_t = 1` with `c` ones chosen before it: return the energy change
    /// `Q_tt + g_t` and write the fields of level `c + 1` (those of level `c`
    /// plus row `t`) for the variables after `t`.
    #[inline]
    fn include(&mut self, t: usize, c: usize) -> f64 {
        let n = self.n;
        let delta = self.q[t * n + t] + self.fields[c * n + t];
        let (lo, hi) = self.fields.split_at_mut((c + 1) * n);
        let src = &lo[c * n..(c + 1) * n];
        let dst = &mut hi[..n];
        let row = &self.q[t * n..(t + 1) * n];
        for j in t + 1..n {
            dst[j] = src[j] + row[j];
        }
        delta
    }

    #[inline]
    fn leaf(&mut self, e: f64) {
        let b = &mut self.best;
        b.visited += 1;
        if e < b.energy - self.tol {
            b.energy = e;
            b.count = 1;
            b.states.clear();
            b.states.extend_from_slice(&self.x);
        } else if e <= b.energy + self.tol {
            b.count += 1;
            if e < b.energy {
                b.energy = e;
            }
            if b.states.len() / self.n.max(1) < self.max_states {
                b.states.extend_from_slice(&self.x);
            }
        }
    }

    fn dfs(&mut self, t: usize, e: f64, c: usize) {
        let n = self.n;
        if self.k == Some(c) {
            // Every remaining variable must stay 0 (x[t..] already is): one leaf.
            self.leaf(e);
            return;
        }
        if self.k == Some(c + 1) {
            // Exactly one more variable: a tight loop over the choices, no recursion.
            for u in t..n {
                let e1 = e + self.q[u * n + u] + self.fields[c * n + u];
                self.x[u] = 1;
                self.leaf(e1);
                self.x[u] = 0;
            }
            return;
        }
        if t == n {
            if self.k.map_or(true, |k| k == c) {
                self.leaf(e);
            }
            return;
        }
        let remaining = n - t;
        let (can_skip, can_take) = match self.k {
            Some(k) => (c + remaining > k, c < k),
            None => (true, true),
        };
        if can_skip {
            self.dfs(t + 1, e, c);
        }
        if can_take {
            let e1 = e + self.include(t, c);
            self.x[t] = 1;
            self.dfs(t + 1, e1, c + 1);
            self.x[t] = 0;
        }
    }
}

/// Exhaustive search of one QUBO with every task, on the current pool.
pub fn ground_states(
    q: &[f64],
    n: usize,
    offset: f64,
    k: Option<usize>,
    max_states: usize,
) -> CoreResult<GroundStates> {
    Ok(Enumerator::new(q, n, offset, k, max_states, DEFAULT_MAX_SUBSETS)?.run_all())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::qubo::qubo_energy;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn brute(q: &[f64], n: usize, k: Option<usize>) -> (f64, Vec<Vec<u8>>) {
        let mut best = f64::INFINITY;
        let mut all = Vec::new();
        for s in 0u64..(1 << n) {
            if let Some(k) = k {
                if s.count_ones() as usize != k {
                    continue;
                }
            }
            let x: Vec<u8> = (0..n).map(|i| ((s >> i) & 1) as u8).collect();
            let e = qubo_energy(q, 0.0, &x);
            all.push((e, x));
            best = best.min(e);
        }
        let gs = all
            .into_iter()
            .filter(|(e, _)| (*e - best).abs() < 1e-9)
            .map(|(_, x)| x)
            .collect();
        (best, gs)
    }

    fn random_q(n: usize, seed: u64, integer: bool) -> Vec<f64> {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut q = vec![0.0; n * n];
        for a in 0..n {
            for b in a..n {
                q[a * n + b] = if integer {
                    r.gen_range(-2i32..=2) as f64
                } else {
                    r.gen_range(-1.0..1.0)
                };
            }
        }
        q
    }

    #[test]
    fn matches_brute_force_with_degeneracy() {
        for n in [1usize, 2, 5, 9, 18] {
            for seed in 0..4 {
                let q = random_q(n, seed, true);
                for k in [None, Some(0), Some(n / 2), Some(n)] {
                    let gs = ground_states(&q, n, 0.0, k, usize::MAX).unwrap();
                    let (e, states) = brute(&q, n, k);
                    assert!((gs.energy - e).abs() < 1e-9, "n={n} k={k:?}");
                    assert_eq!(gs.count as usize, states.len());
                    let mut got: Vec<Vec<u8>> = gs.states.chunks(n).map(|c| c.to_vec()).collect();
                    let mut want = states;
                    got.sort();
                    want.sort();
                    assert_eq!(got, want);
                }
            }
        }
    }

    #[test]
    fn too_large_is_an_error_not_a_hang() {
        let q = vec![0.0; 31 * 31];
        assert!(matches!(
            ground_states(&q, 31, 0.0, None, 1),
            Err(CoreError::TooLarge { .. })
        ));
        let q = vec![0.0; 200 * 200];
        assert!(matches!(
            ground_states(&q, 200, 0.0, Some(100), 1),
            Err(CoreError::TooLarge { .. })
        ));
        assert!(matches!(
            ground_states(&q[..4], 2, 0.0, Some(3), 1),
            Err(CoreError::InvalidArgument { .. })
        ));
    }

    /// Brute force with exact comparisons: the least energy and every state reaching it exactly.
    fn brute_exact(q: &[f64], n: usize, k: Option<usize>) -> Vec<Vec<u8>> {
        let mut best: Vec<Vec<u8>> = Vec::new();
        for s in 0u64..(1 << n) {
            if k.is_some_and(|k| s.count_ones() as usize != k) {
                continue;
            }
            let x: Vec<u8> = (0..n).map(|i| ((s >> i) & 1) as u8).collect();
            match best.first().map(|b| compare_energies(q, n, &x, b)) {
                None | Some(std::cmp::Ordering::Less) => best = vec![x],
                Some(std::cmp::Ordering::Equal) => best.push(x),
                Some(std::cmp::Ordering::Greater) => {}
            }
        }
        best
    }

    fn diag(v: &[f64]) -> Vec<f64> {
        let n = v.len();
        let mut q = vec![0.0; n * n];
        for (i, &d) in v.iter().enumerate() {
            q[i * n + i] = d;
        }
        q
    }

    #[test]
    fn wide_spread_of_coefficients_keeps_the_true_optimum() {
        // Issue 8: a 1e10 coefficient widened the tolerance to ~1 and merged
        // energies 1.05 apart ("ground states" of different energies).
        for scale in [1.0, 0.3] {
            let v: Vec<f64> = [-1e10, -1.0, -0.5].iter().map(|x| x * scale).collect();
            let gs = ground_states(&diag(&v), 3, 0.0, None, 16).unwrap();
            assert_eq!((gs.count, gs.states.clone()), (1, vec![1, 1, 1]), "scale {scale}");
            assert_eq!(gs.energy, exact_energy(&diag(&v), 3, 0.0, &[1, 1, 1]));
            assert!((gs.energy - v.iter().sum::<f64>()).abs() < 1e-6);
            let v: Vec<f64> = [-1e10, -1.0, -0.5, -0.3].iter().map(|x| x * scale).collect();
            let gs = ground_states(&diag(&v), 4, 0.0, Some(3), 16).unwrap();
            assert_eq!((gs.count, gs.states.clone()), (1, vec![1, 1, 1, 0]), "scale {scale}");
        }
        // Dyadic coefficients: every sum exact, no window at all.
        assert_eq!(window(&diag(&[-1e10, -1.0, -0.5]), 3, 0.0), 0.0);
        assert!(window(&diag(&[-0.3, -0.1]), 2, 0.0) > 0.0);
    }

    #[test]
    fn spreads_up_to_1e9_match_exact_brute_force() {
        let mut r = Xoshiro256PlusPlus::seed_from_u64(11);
        for trial in 0..40 {
            let n = 3 + trial % 8;
            let mut q = vec![0.0; n * n];
            for a in 0..n {
                for b in a..n {
                    // Magnitudes log-uniform over 1e-9..1, random signs; a few exact ties.
                    let m = 10f64.powf(r.gen_range(-9.0..0.0));
                    q[a * n + b] = if r.gen_range(0..4) == 0 { 0.0 } else if r.gen_bool(0.5) { m } else { -m };
                }
            }
            if trial % 3 == 0 {
                q[0] = q[n + 1]; // two variables alike: degenerate optima possible
            }
            for k in [None, Some(n / 2)] {
                let want = brute_exact(&q, n, k);
                let gs = ground_states(&q, n, 0.0, k, usize::MAX).unwrap();
                let mut got: Vec<Vec<u8>> = gs.states.chunks(n).map(|c| c.to_vec()).collect();
                got.sort();
                let mut want = want;
                want.sort();
                assert_eq!(got, want, "trial {trial} k={k:?}");
                assert_eq!(gs.count as usize, got.len());
                assert_eq!(gs.energy, exact_energy(&q, n, 0.0, &got[0]));
            }
        }
    }

    #[test]
    fn degenerate_states_of_inexact_coefficients_stay_together() {
        // 0.1 and 0.7 are not dyadic: the walk rounds, the exact check still
        // finds the permutation-symmetric optima equal (same coefficients).
        let n = 4;
        let mut q = diag(&[-0.7, -0.7, -0.7, 0.1]);
        q[1] = 0.1; // (0, 1)
        q[n + 2] = 0.1; // (1, 2)
        q[2] = 0.1; // (0, 2)
        let gs = ground_states(&q, n, 0.1, Some(2), 16).unwrap();
        assert_eq!(gs.count, 3);
        assert!(window(&q, n, 0.1) > 0.0);
    }

    #[test]
    fn non_finite_coefficients_are_an_error() {
        for bad in [f64::NAN, f64::INFINITY] {
            let mut q = diag(&[1.0, 2.0]);
            q[1] = bad;
            assert!(matches!(ground_states(&q, 2, 0.0, None, 1), Err(CoreError::InvalidArgument { .. })));
            assert!(matches!(ground_states(&diag(&[1.0]), 1, bad, Some(1), 1), Err(CoreError::InvalidArgument { .. })));
        }
    }

    #[test]
    fn binomials() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(64, 8), 4_426_165_368);
        assert_eq!(binomial(3, 4), 0);
        assert_eq!(binomial(1000, 500), u64::MAX);
    }
}

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
    max_states: usize,
    prefix_len: usize,
    prefixes: Vec<u64>,
}

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
        let scale: f64 = q.iter().map(|v| v.abs()).sum::<f64>() + offset.abs();
        // Relative only: an absolute floor would merge every state of a tiny-scale problem (|Q| ~ 1e-40).
        let tol = 1e-10 * scale;
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
            max_states: max_states.max(1),
            prefix_len,
            prefixes,
        })
    }

    pub fn num_tasks(&self) -> usize {
        self.prefixes.len()
    }

    /// Energies within this tolerance of the minimum count as ground states.
    pub fn tolerance(&self) -> f64 {
        self.tol
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
        out
    }

    /// Merge a later chunk's result into an earlier one.
    pub fn merge(&self, acc: &mut GroundStates, part: GroundStates) {
        acc.merge(part, self.tol, self.max_states);
    }

    /// Run every task.
    pub fn run_all(&self) -> GroundStates {
        self.run(0, self.num_tasks())
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

    #[test]
    fn binomials() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(64, 8), 4_426_165_368);
        assert_eq!(binomial(3, 4), 0);
        assert_eq!(binomial(1000, 500), u64::MAX);
    }
}

//! Multistart tabu search for dense QUBOs: one-flip moves for the
//! unconstrained problem, swap moves for the exactly-`k` problem.
//!
//! Moves are priced from the incremental local fields of
//! [`LocalState`](super::greedy::LocalState) (see `core::greedy` for the
//! formulas): `O(n)` to evaluate all flips, `O(k (n - k))` to evaluate all
//! swaps, `O(n)` to apply a move. The swap search never leaves the feasible
//! set: every state has exactly `k` ones, so no penalty term is needed.
//!
//! One *read* is a sequence of simple tabu searches (STS):
//!
//! 1. Start from the given initial state or a random one (a uniformly random
//!    `k`-subset in the swap search).
//! 2. STS: take the best move that is not tabu; a tabu move is taken anyway
//!    when it reaches an energy below the best of the read (aspiration); when
//!    every move is tabu the best move is taken. A flipped variable is tabu
//!    for `t + u` iterations, `t` the tenure and `u` uniform in `[0, t/4]`.
//!    In a swap the removed variable may not re-enter for that long and the
//!    entering one may not leave for `min(t, k/4) + u'` iterations (so that
//!    some selected variable can always leave). The STS ends after `stall`
//!    iterations without improving its own best.
//! 3. The STS best joins an elite set (the `elite_size` best distinct states of
//!    the read). A restart picks an elite state uniformly at random and
//!    perturbs it: a uniform number in `[1, max(1, n/8)]` of random flips, or
//!    in `[1, max(1, min(k, n-k)/2)]` of random swaps.
//! 4. Stop after `num_restarts` restarts, `num_iterations` moves in total, the
//!    `timeout`, or when `energy_threshold` is reached; the best state is
//!    polished by steepest descent and its energy recomputed exactly.
//!
//! Default tenure: Ocean's `min(20, n/4)` for flips; `min(max(1, k/2), 20,
//! (n-k)/4)` for swaps (measured on explanation-shaped problems with K = 64 to
//! 512: longer tenures lower the success rate of the swap search several-fold). Every read draws from its own stream `rng::stream(seed, problem,
//! read)`, so without a timeout the results do not depend on the thread count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::error::{CoreError, CoreResult};
use super::greedy::{descend_flip, descend_swap, Dense, LocalState};
use super::rng;

/// Settings of one tabu read.
#[derive(Debug, Clone)]
pub struct TabuParams {
    /// Total moves per read over all restarts (`None`: no limit).
    pub num_iterations: Option<u64>,
    /// Wall-clock limit per read (`None`: no limit).
    pub timeout: Option<Duration>,
    /// Tabu tenure `t` (`None`: the default above).
    pub tenure: Option<usize>,
    /// Restarts per read from perturbed elite states.
    pub num_restarts: u64,
    /// Iterations without improvement that end one simple tabu search
    /// (`None`: `max(100, 10 n)` for flips, `max(100, 10 k + n/4)` for swaps).
    pub stall: Option<u64>,
    /// Size of the elite set.
    pub elite_size: usize,
    /// Stop a read once its best energy is at or below this.
    pub energy_threshold: Option<f64>,
}

impl Default for TabuParams {
    fn default() -> Self {
        TabuParams {
            num_iterations: None,
            timeout: None,
            tenure: None,
            num_restarts: 5,
            stall: None,
            elite_size: 8,
            energy_threshold: None,
        }
    }
}

impl TabuParams {
    /// Check the settings against a problem of `n` variables.
    pub fn validate(&self, n: usize, k: Option<usize>) -> CoreResult<()> {
        if let Some(t) = self.tenure {
            if n > 0 && t >= n {
                return Err(CoreError::invalid("tenure", format!("expected 0 <= tenure < n = {n}, got {t}")));
            }
        }
        if let Some(k) = k {
            if k > n {
                return Err(CoreError::invalid("k", format!("expected 0 <= k <= n = {n}, got {k}")));
            }
        }
        if self.elite_size == 0 {
            return Err(CoreError::invalid("elite_size", "expected at least 1, got 0"));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(CoreError::invalid("timeout", "expected a positive duration, got 0"));
        }
        Ok(())
    }
}

/// Outcome of one read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadResult {
    pub x: Vec<u8>,
    /// Exact energy of `x` (offset included).
    pub energy: f64,
    pub iterations: u64,
    pub restarts: u64,
}

struct Elite {
    size: usize,
    items: Vec<(f64, Vec<u8>)>,
}

impl Elite {
    fn insert(&mut self, e: f64, x: &[u8], tol: f64) {
        if self.items.iter().any(|(ee, xx)| (ee - e).abs() <= tol && xx.as_slice() == x) {
            return;
        }
        let pos = self.items.iter().position(|(ee, _)| e < *ee).unwrap_or(self.items.len());
        if pos >= self.size {
            return;
        }
        self.items.insert(pos, (e, x.to_vec()));
        self.items.truncate(self.size);
    }
}

fn random_state(n: usize, k: Option<usize>, r: &mut Xoshiro256PlusPlus) -> Vec<u8> {
    match k {
        None => (0..n).map(|_| (r.gen::<u32>() & 1) as u8).collect(),
        Some(k) => {
            let mut idx: Vec<usize> = (0..n).collect();
            let mut x = vec![0u8; n];
            for t in 0..k {
                let u = r.gen_range(t..n);
                idx.swap(t, u);
                x[idx[t]] = 1;
            }
            x
        }
    }
}

/// `(min_j (g_j - r_j), argmin)`, lowest index on ties; eight independent
/// lanes so the compiler can vectorise the scan.
#[inline]
fn argmin_diff(g: &[f64], r: &[f64]) -> (f64, usize) {
    const L: usize = 8;
    let mut mv = [f64::INFINITY; L];
    let mut mi = [usize::MAX; L];
    let full = g.len() / L * L;
    for (c, (gc, rc)) in g[..full].chunks_exact(L).zip(r[..full].chunks_exact(L)).enumerate() {
        for l in 0..L {
            let d = gc[l] - rc[l];
            let better = d < mv[l];
            mv[l] = if better { d } else { mv[l] };
            mi[l] = if better { c * L + l } else { mi[l] };
        }
    }
    let mut best = (f64::INFINITY, usize::MAX);
    for l in 0..L {
        if mv[l] < best.0 || (mv[l] == best.0 && mi[l] < best.1) {
            best = (mv[l], mi[l]);
        }
    }
    for j in full..g.len() {
        let d = g[j] - r[j];
        if d < best.0 {
            best = (d, j);
        }
    }
    best
}

/// One multistart tabu read on `p`; `k = Some(_)` for the swap search (the
/// initial state must then have exactly `k` ones).
pub fn tabu_read(
    p: &Dense,
    k: Option<usize>,
    init: Option<&[u8]>,
    params: &TabuParams,
    r: &mut Xoshiro256PlusPlus,
    cancel: &AtomicBool,
) -> ReadResult {
    let start = Instant::now();
    let n = p.n;
    let x0 = match init {
        Some(x) => x.to_vec(),
        None => random_state(n, k, r),
    };
    let mut s = LocalState::new(p, &x0);
    let swap_mode = k.is_some();
    let kk = s.ones;
    // Nothing to search: no variables, or (swap) no possible swap.
    if n == 0 || (swap_mode && (kk == 0 || kk == n)) {
        let e = p.energy(&s.x);
        return ReadResult { x: s.x, energy: e, iterations: 0, restarts: 0 };
    }
    let free = if swap_mode { n - kk } else { n };
    let t = params
        .tenure
        .unwrap_or_else(|| if swap_mode { (kk / 2).max(1).min(20).min(free / 4) } else { 20.min(free / 4) });
    let t_in = t.min(kk / 4);
    let stall = params
        .stall
        .unwrap_or_else(|| if swap_mode { (10 * kk as u64 + n as u64 / 4).max(100) } else { (10 * n as u64).max(100) });
    let max_iter = params.num_iterations.unwrap_or(u64::MAX);
    let tol = p.tol;

    let mut best_x = s.x.clone();
    let mut best_e = s.energy;
    let mut elite = Elite { size: params.elite_size, items: Vec::new() };
    let mut tabu_until = vec![0u64; n];
    let mut iter: u64 = 0;
    let mut restarts: u64 = 0;
    let mut stop = false;
    let reached = |e: f64| params.energy_threshold.map_or(false, |th| e <= th);
    let mut sts_x = s.x.clone();
    let mut g_all = vec![0.0f64; n];
    let mut g_ok = vec![0.0f64; n];

    loop {
        // ---- one simple tabu search from s ----
        tabu_until.iter_mut().for_each(|v| *v = 0);
        let mut sts_e = s.energy;
        sts_x.copy_from_slice(&s.x);
        let mut since = 0u64;
        while since < stall && iter < max_iter && !stop {
            if iter & 63 == 0 {
                if cancel.load(Ordering::Relaxed) || params.timeout.map_or(false, |to| start.elapsed() >= to) {
                    stop = true;
                    break;
                }
            }
            if swap_mode {
                // Best swap overall and best non-tabu swap: for each selected
                // i, min over j of (g_j - W_ij) with g_j = f_j on the allowed
                // entering variables and +inf elsewhere.
                for j in 0..n {
                    let free_j = s.x[j] == 0;
                    g_all[j] = if free_j { s.f[j] } else { f64::INFINITY };
                    g_ok[j] = if free_j && tabu_until[j] <= iter { s.f[j] } else { f64::INFINITY };
                }
                let mut all: (usize, usize, f64) = (usize::MAX, usize::MAX, f64::INFINITY);
                let mut ok: (usize, usize, f64) = (usize::MAX, usize::MAX, f64::INFINITY);
                for i in 0..n {
                    if s.x[i] == 0 {
                        continue;
                    }
                    let fi = s.f[i];
                    let row = p.row(i);
                    let (v, j) = argmin_diff(&g_all, row);
                    if v - fi < all.2 {
                        all = (i, j, v - fi);
                    }
                    if tabu_until[i] <= iter {
                        let (v, j) = argmin_diff(&g_ok, row);
                        if v - fi < ok.2 {
                            ok = (i, j, v - fi);
                        }
                    }
                }
                let (i, j, _) = if s.energy + all.2 < best_e - tol || ok.0 == usize::MAX { all } else { ok };
                s.swap(p, i, j);
                tabu_until[i] = iter + 1 + (t + r.gen_range(0..=t / 4)) as u64;
                tabu_until[j] = iter + 1 + (t_in + r.gen_range(0..=t_in / 4)) as u64;
            } else {
                let mut all: (usize, f64) = (usize::MAX, f64::INFINITY);
                let mut ok: (usize, f64) = (usize::MAX, f64::INFINITY);
                for i in 0..n {
                    let d = if s.x[i] == 0 { s.f[i] } else { -s.f[i] };
                    if d < all.1 {
                        all = (i, d);
                    }
                    if d < ok.1 && tabu_until[i] <= iter {
                        ok = (i, d);
                    }
                }
                let (i, _) = if s.energy + all.1 < best_e - tol || ok.0 == usize::MAX { all } else { ok };
                s.flip(p, i);
                tabu_until[i] = iter + 1 + (t + r.gen_range(0..=t / 4)) as u64;
            }
            iter += 1;
            if s.energy < sts_e - tol {
                sts_e = s.energy;
                sts_x.copy_from_slice(&s.x);
                since = 0;
                if s.energy < best_e - tol {
                    best_e = s.energy;
                    best_x.copy_from_slice(&s.x);
                    if reached(best_e) {
                        stop = true;
                    }
                }
            } else {
                since += 1;
            }
        }
        elite.insert(sts_e, &sts_x, tol);
        if stop || restarts >= params.num_restarts || iter >= max_iter {
            break;
        }
        // ---- restart from a perturbed elite state ----
        restarts += 1;
        let pick = r.gen_range(0..elite.items.len());
        let y = elite.items[pick].1.clone();
        s.assign(p, &y);
        s.refresh(p);
        if swap_mode {
            let m = kk.min(n - kk);
            let moves = r.gen_range(1..=(m / 2).max(1));
            for _ in 0..moves {
                // Uniform selected i and unselected j by rejection (both sets non-empty).
                let i = loop {
                    let v = r.gen_range(0..n);
                    if s.x[v] == 1 {
                        break v;
                    }
                };
                let j = loop {
                    let v = r.gen_range(0..n);
                    if s.x[v] == 0 {
                        break v;
                    }
                };
                s.swap(p, i, j);
            }
        } else {
            let moves = r.gen_range(1..=(n / 8).max(1));
            for _ in 0..moves {
                let i = r.gen_range(0..n);
                s.flip(p, i);
            }
        }
    }

    // Polish the best state and recompute its energy exactly.
    let mut fin = LocalState::new(p, &best_x);
    if swap_mode {
        descend_swap(p, &mut fin);
    } else {
        descend_flip(p, &mut fin);
    }
    let energy = p.energy(&fin.x);
    ReadResult { x: fin.x, energy, iterations: iter, restarts }
}

/// `reads` tabu reads of each problem, in parallel on the current pool.
///
/// `init`, when given, is `(states, m)`: `m` initial states per problem
/// (`(B, m, n)` row-major, `m <= reads`) used by reads `0..m`; later reads
/// start at random. Results are ordered problem-major: index `b * reads + r`.
/// Read `r` of `problems[b]` draws from `rng::stream(seed, first_problem + b, r)`
/// (`first_problem` lets a caller split a batch into chunks without changing results).
#[allow(clippy::too_many_arguments)]
pub fn tabu_batch(
    problems: &[Dense],
    k: Option<usize>,
    reads: usize,
    init: Option<(&[u8], usize)>,
    seed: u64,
    first_problem: u64,
    params: &TabuParams,
    cancel: &AtomicBool,
) -> CoreResult<Vec<ReadResult>> {
    let n = problems.first().map_or(0, |p| p.n);
    params.validate(n, k)?;
    if let Some((states, m)) = init {
        if m > reads || states.len() != problems.len() * m * n {
            return Err(CoreError::invalid("initial_states", format!("expected {} x {m} x {n} states", problems.len())));
        }
        if let Some(k) = k {
            for (idx, x) in states.chunks(n.max(1)).enumerate().take(problems.len() * m) {
                let ones = x.iter().filter(|&&v| v != 0).count();
                if n > 0 && ones != k {
                    return Err(CoreError::invalid(
                        "initial_states",
                        format!("expected exactly k = {k} ones in every state, got {ones} in state {} of problem {}", idx % m, idx / m),
                    ));
                }
            }
        }
    }
    let total = problems.len() * reads;
    let out: Vec<ReadResult> = (0..total)
        .into_par_iter()
        .with_max_len(1)
        .map(|t| {
            let (b, rd) = (t / reads, t % reads);
            let mut r = rng::stream(seed, first_problem + b as u64, rd as u64);
            let x0 = init.and_then(|(states, m)| (rd < m).then(|| &states[(b * m + rd) * n..(b * m + rd + 1) * n]));
            tabu_read(&problems[b], k, x0, params, &mut r, cancel)
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::exact::ground_states;
    use crate::core::greedy::tests::random_upper;
    use crate::core::parallel;

    #[test]
    fn finds_ground_states_of_small_problems() {
        let cancel = AtomicBool::new(false);
        for seed in 0..30u64 {
            let n = 14;
            let q = random_upper(n, 100 + seed);
            let p = Dense::from_upper(&q, n, 0.25);
            for k in [None, Some(5)] {
                let gs = ground_states(&q, n, 0.25, k, 1).unwrap();
                let res = tabu_batch(&[p.clone()], k, 4, None, seed, 0, &TabuParams::default(), &cancel).unwrap();
                let best = res.iter().map(|r| r.energy).fold(f64::INFINITY, f64::min);
                assert!((best - gs.energy).abs() < 1e-9, "seed {seed} k {k:?}: {best} vs {}", gs.energy);
                for r in &res {
                    if let Some(k) = k {
                        assert_eq!(r.x.iter().filter(|&&v| v == 1).count(), k);
                    }
                    assert!((r.energy - p.energy(&r.x)).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn thread_count_does_not_change_results() {
        let n = 40;
        let probs: Vec<Dense> = (0..3).map(|s| Dense::from_upper(&random_upper(n, s), n, 0.0)).collect();
        let cancel = AtomicBool::new(false);
        let params = TabuParams { num_iterations: Some(500), ..Default::default() };
        for k in [None, Some(7)] {
            let a = parallel::run(1, || tabu_batch(&probs, k, 5, None, 42, 0, &params, &cancel).unwrap());
            let b = parallel::run(3, || tabu_batch(&probs, k, 5, None, 42, 0, &params, &cancel).unwrap());
            assert_eq!(a, b);
            // A short run still depends on the seed.
            let short = TabuParams { num_iterations: Some(2), stall: Some(1), num_restarts: 0, ..Default::default() };
            let a = parallel::run(2, || tabu_batch(&probs, k, 5, None, 42, 0, &short, &cancel).unwrap());
            let c = parallel::run(2, || tabu_batch(&probs, k, 5, None, 43, 0, &short, &cancel).unwrap());
            assert_ne!(a, c);
        }
    }

    #[test]
    fn limits_and_cancel_are_honoured() {
        let n = 30;
        let p = Dense::from_upper(&random_upper(n, 5), n, 0.0);
        let cancel = AtomicBool::new(false);
        let params = TabuParams { num_iterations: Some(37), num_restarts: 1000, ..Default::default() };
        let res = tabu_batch(&[p.clone()], None, 2, None, 1, 0, &params, &cancel).unwrap();
        assert!(res.iter().all(|r| r.iterations == 37));
        let cancelled = AtomicBool::new(true);
        let params = TabuParams { num_restarts: u64::MAX, ..Default::default() };
        let res = tabu_batch(&[p.clone()], Some(3), 2, None, 1, 0, &params, &cancelled).unwrap();
        assert!(res.iter().all(|r| r.iterations == 0));
        let bad = TabuParams { tenure: Some(30), ..Default::default() };
        assert!(tabu_batch(&[p], None, 1, None, 1, 0, &bad, &cancel).is_err());
    }
}

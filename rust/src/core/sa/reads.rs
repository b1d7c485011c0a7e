//! Running the reads of one problem: initial states, kernel dispatch, energies.

use rand::RngCore;
use rayon::prelude::*;

use super::super::rng::{open_stream, stream, OpenXoshiro};
use super::flip::{anneal_flip_fast, descend_flip};
use super::lanes::{anneal_flip_lanes_fast, LANES, LANES_MAX_N, LANES_MIN_READS};
use super::model::{fields_of, Couplings, DenseModel};
use super::real::Real;
use super::swap::{anneal_swap_fast, tabu_polish_fast};
use super::{below, has_avx2};

/// How the reads of a batch start and end.
#[derive(Clone, Debug)]
pub struct ReadConfig {
    pub seed: u64,
    /// `Some(k)`: swap annealer with exactly `k` ones; `None`: flip annealer.
    pub k: Option<usize>,
    pub greedy: bool,
    /// Swap annealer with `greedy`: stall limit of the final [`tabu_polish`](super::tabu_polish)
    /// (0: plain steepest 1-swap descent).
    pub polish: usize,
    /// Run the reads on the calling thread (tiny calls: no pool hand-off).
    pub sequential: bool,
}

/// `f(t, state_t, energy_t)` for every read, in parallel unless `sequential`.
fn for_each_read(
    n: usize,
    sequential: bool,
    states: &mut [u8],
    energies: &mut [f64],
    f: impl Fn(usize, &mut [u8], &mut f64) + Sync + Send,
) {
    for_each_group(n, 1, sequential, states, energies, |t, x, e| f(t, x, &mut e[0]));
}

/// `f(g, states, energies)` for every group `g` of `per` consecutive reads
/// (the last one may be shorter), in parallel unless `sequential`.
fn for_each_group(
    n: usize,
    per: usize,
    sequential: bool,
    states: &mut [u8],
    energies: &mut [f64],
    f: impl Fn(usize, &mut [u8], &mut [f64]) + Sync + Send,
) {
    if sequential {
        states.chunks_mut(per * n).zip(energies.chunks_mut(per)).enumerate().for_each(|(g, (x, e))| f(g, x, e));
    } else {
        states
            .par_chunks_mut(per * n)
            .zip(energies.par_chunks_mut(per))
            .enumerate()
            .with_min_len(1)
            .for_each(|(g, (x, e))| f(g, x, e));
    }
}

/// Random initial state: uniform 0/1, or `k` ones at uniform positions.
pub fn random_state<R: RngCore>(rng: &mut R, n: usize, k: Option<usize>, x: &mut [u8]) {
    match k {
        None => {
            let mut bits = 0u64;
            for (t, v) in x.iter_mut().enumerate() {
                if t % 64 == 0 {
                    bits = rng.next_u64();
                }
                *v = (bits & 1) as u8;
                bits >>= 1;
            }
        }
        Some(k) => {
            let mut idx: Vec<u32> = (0..n as u32).collect();
            for t in 0..k.min(n) {
                let r = t + below(rng.next_u64() >> 32, n - t);
                idx.swap(t, r);
            }
            x.iter_mut().for_each(|v| *v = 0);
            for &i in &idx[..k.min(n)] {
                x[i as usize] = 1;
            }
        }
    }
}

/// Run reads `reads` of problem `p` on model `c` (flip annealer), writing
/// each read's final state and exact energy. `init` (if given) holds the
/// initial states of those reads.
#[allow(clippy::too_many_arguments)]
pub fn run_flip_reads<F: Real, C: Couplings<F>>(
    c: &C,
    betas: &[F],
    cfg: &ReadConfig,
    p: u64,
    first_read: u64,
    init: Option<&[u8]>,
    states: &mut [u8],
    energies: &mut [f64],
) {
    let n = c.n();
    // Read t's generator and initial state.
    let start = |t: usize, x: &mut [u8]| {
        let mut rng = open_stream(cfg.seed, p, first_read + t as u64);
        match init {
            Some(s) => x.copy_from_slice(&s[t * n..(t + 1) * n]),
            None => random_state(&mut rng, n, None, x),
        }
        rng
    };
    let finish = |x: &mut [u8], f: &mut [F], e: &mut f64| {
        if cfg.greedy {
            // Fresh fields: no rounding carried over from the anneal.
            fields_of(c, x, f);
            descend_flip(c, x, f);
        }
        *e = c.energy(x);
    };
    let run_one = |t: usize, x: &mut [u8], e: &mut f64| {
        let mut rng = start(t, x);
        let mut f = vec![F::ZERO; n];
        // The kernel's own descent works on the anneal's fields; `finish` starts afresh.
        anneal_flip_fast(c, betas, &mut rng, x, &mut f, false);
        finish(x, &mut f, e);
    };
    if n == 0 {
        energies.iter_mut().for_each(|e| *e = c.energy(&[]));
        return;
    }
    let lanes = match (c.as_dense_f32(), F::dense_f32_betas(betas)) {
        (Some(m), Some(b)) if n <= LANES_MAX_N && energies.len() >= LANES_MIN_READS && has_avx2() => Some((m, b)),
        _ => None,
    };
    let Some((m, b32)) = lanes else {
        for_each_read(n, cfg.sequential, states, energies, run_one);
        return;
    };
    // Groups of LANES consecutive reads: the lane kernel where enough of a
    // group is real, read by read otherwise (the same results either way).
    for_each_group(n, LANES, cfg.sequential, states, energies, |gi, xs, es| {
        let t0 = gi * LANES;
        let one_by_one = |xs: &mut [u8], es: &mut [f64]| {
            for (l, (x, e)) in xs.chunks_mut(n).zip(es.iter_mut()).enumerate() {
                run_one(t0 + l, x, e);
            }
        };
        let reads = es.len();
        if reads < LANES_MIN_READS {
            return one_by_one(xs, es);
        }
        let mut buf = vec![0u8; LANES * n];
        let mut rngs: [OpenXoshiro; LANES] = std::array::from_fn(|_| OpenXoshiro { s: [1, 2, 3, 4] });
        for (l, rng) in rngs.iter_mut().enumerate().take(reads) {
            *rng = start(t0 + l, &mut buf[l * n..(l + 1) * n]);
        }
        if !anneal_flip_lanes_fast(m, b32, &mut rngs, &mut buf) {
            return one_by_one(xs, es); // no AVX2 (excluded above; kept for safety)
        }
        let mut f = vec![F::ZERO; n];
        for (l, (x, e)) in xs.chunks_mut(n).zip(es.iter_mut()).enumerate() {
            x.copy_from_slice(&buf[l * n..(l + 1) * n]);
            finish(x, &mut f, e);
        }
    });
}

/// Like [`run_flip_reads`] for the swap annealer with `k` ones; initial
/// states, if given, must have exactly `k` ones (checked by the caller).
#[allow(clippy::too_many_arguments)]
pub fn run_swap_reads<F: Real>(
    m: &DenseModel<'_, F>,
    k: usize,
    betas: &[F],
    cfg: &ReadConfig,
    p: u64,
    first_read: u64,
    init: Option<&[u8]>,
    states: &mut [u8],
    energies: &mut [f64],
) {
    let n = m.n;
    if n == 0 {
        energies.iter_mut().for_each(|e| *e = m.offset);
        return;
    }
    for_each_read(n, cfg.sequential, states, energies, |t, x, e| {
            let mut rng = stream(cfg.seed, p, first_read + t as u64);
            match init {
                Some(s) => x.copy_from_slice(&s[t * n..(t + 1) * n]),
                None => random_state(&mut rng, n, Some(k), x),
            }
            let mut f = vec![F::ZERO; n];
            let mut ones = anneal_swap_fast(m, betas, &mut rng, x, &mut f, cfg.greedy && cfg.polish == 0);
            if cfg.greedy && cfg.polish > 0 {
                ones = tabu_polish_fast(m, cfg.polish, &mut rng, x, &mut f);
            }
            *e = m.energy_of_ones(&ones);
    });
}

/// Run every read of problem `p` (dense), dispatching on the annealer.
#[allow(clippy::too_many_arguments)]
pub fn run_dense_reads<F: Real>(
    m: &DenseModel<'_, F>,
    betas: &[f64],
    cfg: &ReadConfig,
    p: u64,
    first_read: u64,
    init: Option<&[u8]>,
    states: &mut [u8],
    energies: &mut [f64],
) {
    let b: Vec<F> = betas.iter().map(|&v| F::from_f64(v)).collect();
    match cfg.k {
        Some(k) => run_swap_reads(m, k, &b, cfg, p, first_read, init, states, energies),
        None => run_flip_reads(m, &b, cfg, p, first_read, init, states, energies),
    }
}

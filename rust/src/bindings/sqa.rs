//! Bindings of `core::sqa`: simulated quantum annealing on batches of dense
//! QUBOs. Inputs are checked and copied under the GIL; the reads (flattened
//! over problems) run with the GIL released in chunks of about
//! [`CHUNK_UPDATES`] spin-slice updates, Ctrl-C checked between chunks.

use pyo3::prelude::*;
use pyo3::wrap_pyfunction;

use super::buffers::{read, write, View};
use super::errors::{invalid, to_py};
use crate::core::parallel;
use crate::core::sa::{self, DenseModel};
use crate::core::sqa::{self, SqaConfig};

/// Spin-slice updates per chunk between two Ctrl-C checks (~25-100 ms on one
/// core; a chunk holds at least one read, which is never cut).
const CHUNK_UPDATES: usize = 1 << 24;
/// Below this many updates in a whole call, run on the calling thread.
const SEQUENTIAL_UPDATES: usize = 1 << 17;

enum Model<'a> {
    Single(DenseModel<'a, f32>),
    Double(DenseModel<'a, f64>),
}

impl Model<'_> {
    #[allow(clippy::too_many_arguments)]
    fn run(&self, w: &[(f64, f64)], cfg: &SqaConfig, p: usize, r0: usize, init: Option<&[u8]>, xs: &mut [u8], es: &mut [f64]) {
        match self {
            Model::Single(m) => sqa::run_reads(m, w, cfg, p as u64, r0 as u64, init, xs, es),
            Model::Double(m) => sqa::run_reads(m, w, cfg, p as u64, r0 as u64, init, xs, es),
        }
    }
}

/// sqa_dense_batch(q, offsets, gamma, scale, num_slices, temperature, num_reads, seed, k,
///                 initial_states, global_moves, best_slice, descent, single, num_threads, states_out, energies_out)
///
/// Path-integral annealing of B dense QUBOs q (B, n, n) f64 (upper-triangular)
/// with offsets (B,): one sweep per column of the schedule gamma (B, S) (the
/// transverse field A of each problem) and scale (S,) (the problem factor B),
/// num_slices Trotter slices at temperature (B,) T. k None: flip moves; k: swap moves keeping
/// exactly k ones in every slice. initial_states (B, R, n) uint8 or None
/// (random). global_moves: worldline flips / exchanges after each sweep.
/// best_slice: return each read's lowest-energy slice (else slice 0).
/// descent: then steepest descent (flips, or swaps with k) to a local minimum.
/// single: f32 (True) or f64 (False) fields, None: `sa::prefers_single`.
/// Writes every read's best slice into states_out (B, R, n) uint8 and its
/// exact energy into energies_out (B, R).
#[pyfunction]
#[pyo3(text_signature = "(q, offsets, gamma, scale, num_slices, temperature, num_reads, seed, k, initial_states, global_moves, best_slice, descent, single, num_threads, states_out, energies_out)")]
#[allow(clippy::too_many_arguments)]
fn sqa_dense_batch(
    py: Python<'_>,
    q: &PyAny,
    offsets: &PyAny,
    gamma: &PyAny,
    scale: &PyAny,
    num_slices: usize,
    temperature: &PyAny,
    num_reads: usize,
    seed: u64,
    k: Option<usize>,
    initial_states: Option<&PyAny>,
    global_moves: bool,
    best_slice: bool,
    descent: bool,
    single: Option<bool>,
    num_threads: usize,
    states_out: &PyAny,
    energies_out: &PyAny,
) -> PyResult<()> {
    let qv = View::<f64>::new(q, "Q", "float64", &[None, None, None])?;
    let qs = qv.shape().to_vec();
    let q = qv.as_slice();
    let (b, n) = (qs[0], qs[1]);
    if qs[2] != n {
        return Err(invalid("Q", "square matrices", format!("shape {qs:?}")));
    }
    let (off, _) = read::<f64>(py, offsets, "offsets", "float64", &[Some(b)])?;
    let (a, sh) = read::<f64>(py, gamma, "gamma", "float64", &[Some(b), None])?;
    let s_len = sh[1];
    let (bs, _) = read::<f64>(py, scale, "scale", "float64", &[Some(s_len)])?;
    let (temps, _) = read::<f64>(py, temperature, "temperature", "float64", &[Some(b)])?;
    if num_reads == 0 {
        return Err(invalid("num_reads", "a positive integer", 0));
    }
    if let Some(k) = k {
        if k > n {
            return Err(invalid("cardinality", &format!("an integer in [0, {n}]"), k));
        }
    }
    let mut weights = Vec::with_capacity(b);
    for p in 0..b {
        weights.push(sqa::sweep_weights(&a[p * s_len..(p + 1) * s_len], &bs, num_slices, temps[p]).map_err(|e| to_py(py, e))?);
    }
    let init = match initial_states {
        Some(obj) if !obj.is_none() => {
            let (v, _) = read::<u8>(py, obj, "initial_states", "uint8", &[Some(b), Some(num_reads), Some(n)])?;
            if let Some(pos) = v.iter().position(|&x| x > 1) {
                return Err(invalid("initial_states", "binary values 0/1", format!("{} at flat index {pos}", v[pos])));
            }
            if let (Some(k), true) = (k, n > 0) {
                for (t, x) in v.chunks(n).enumerate() {
                    let ones = x.iter().filter(|&&u| u == 1).count();
                    if ones != k {
                        return Err(invalid("initial_states", &format!("exactly k = {k} ones in every state"), format!("{ones} ones in state {t}")));
                    }
                }
            }
            Some(v)
        }
        _ => None,
    };
    let mut states = vec![0u8; b * num_reads * n];
    let mut energies = vec![0.0f64; b * num_reads];
    let nn = n * n;
    if n == 0 {
        for p in 0..b {
            energies[p * num_reads..(p + 1) * num_reads].iter_mut().for_each(|e| *e = off[p]);
        }
    } else {
        let mut models = Vec::with_capacity(b);
        for p in 0..b {
            let qp = &q[p * nn..(p + 1) * nn];
            let use_single = single.unwrap_or_else(|| sa::prefers_single(qp, n));
            models.push(if use_single {
                Model::Single(DenseModel::<f32>::new(qp, n, off[p]).map_err(|e| to_py(py, e))?)
            } else {
                Model::Double(DenseModel::<f64>::new(qp, n, off[p]).map_err(|e| to_py(py, e))?)
            });
        }
        let cfg = SqaConfig { seed, k, slices: num_slices, global_moves, best_slice, descent };
        let per_read = s_len.saturating_mul(num_slices).saturating_mul(n).saturating_mul(if global_moves { 2 } else { 1 }).max(1);
        let total = per_read.saturating_mul(b * num_reads);
        let sequential = total <= SEQUENTIAL_UPDATES || num_threads == 1;
        let per_chunk = (CHUNK_UPDATES / per_read).max(1);
        // Work units: groups of up to LANES consecutive reads of one problem
        // (`sqa::run_reads` gives every read the same result whatever its group).
        let units: Vec<(usize, usize, usize)> = (0..b)
            .flat_map(|p| (0..num_reads).step_by(sa::LANES).map(move |r0| (p, r0, sa::LANES.min(num_reads - r0))))
            .collect();
        let (mut st_rest, mut en_rest) = (&mut states[..], &mut energies[..]);
        let mut u0 = 0;
        while u0 < units.len() {
            // Units of this chunk: about per_chunk reads, at least one unit.
            let mut u1 = u0;
            let mut reads = 0;
            while u1 < units.len() && (u1 == u0 || reads + units[u1].2 <= per_chunk) {
                reads += units[u1].2;
                u1 += 1;
            }
            let mut jobs = Vec::with_capacity(u1 - u0);
            for &unit in &units[u0..u1] {
                let (xs, st_next) = std::mem::take(&mut st_rest).split_at_mut(unit.2 * n);
                let (es, en_next) = std::mem::take(&mut en_rest).split_at_mut(unit.2);
                (st_rest, en_rest) = (st_next, en_next);
                jobs.push((unit, xs, es));
            }
            let (models, weights, cfg, init) = (&models, &weights, &cfg, init.as_deref());
            let body = move |((p, r0, len), xs, es): ((usize, usize, usize), &mut [u8], &mut [f64])| {
                let t = p * num_reads + r0;
                let ini = init.map(|v| &v[t * n..(t + len) * n]);
                models[p].run(&weights[p], cfg, p, r0, ini, xs, es);
            };
            if sequential {
                jobs.into_iter().for_each(body);
            } else {
                py.allow_threads(|| {
                    parallel::run(num_threads, || {
                        use rayon::prelude::*;
                        jobs.into_par_iter().with_min_len(1).for_each(body)
                    })
                });
            }
            py.check_signals()?;
            u0 = u1;
        }
    }
    write(py, states_out, "states_out", "uint8", &[b, num_reads, n], &states)?;
    write(py, energies_out, "energies_out", "float64", &[b, num_reads], &energies)
}

/// sqa_time_coupling(x) -> float
///
/// The dimensionless time coupling K = -1/2 ln tanh(x) of x = A / (P T), capped.
#[pyfunction]
#[pyo3(text_signature = "(x)")]
fn sqa_time_coupling(x: f64) -> f64 {
    sqa::time_coupling(x)
}

pub fn register(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sqa_dense_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sqa_time_coupling, m)?)?;
    m.add("SQA_MAX_TIME_COUPLING", sqa::MAX_TIME_COUPLING)?;
    Ok(())
}

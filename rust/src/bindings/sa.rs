//! Bindings of `core::sa`: simulated annealing on batches of dense QUBOs and
//! on one sparse QUBO. Inputs are checked and copied under the GIL, the reads
//! run with the GIL released in chunks of about [`CHUNK_ATTEMPTS`] move
//! attempts, and Ctrl-C is checked between chunks. Outputs go into arrays the
//! caller allocated.

use pyo3::prelude::*;
use pyo3::wrap_pyfunction;

use super::buffers::{read, write, View};
use super::errors::{invalid, to_py};
use crate::core::parallel;
use crate::core::sa::{self, CsrModel, DenseModel, ReadConfig, Real};

/// Move attempts per chunk between two Ctrl-C checks (~30-100 ms on one core).
const CHUNK_ATTEMPTS: usize = 1 << 25;
/// Below this many attempts in a whole call, run on the calling thread.
const SEQUENTIAL_ATTEMPTS: usize = 1 << 17;

fn check_k(k: Option<usize>, n: usize) -> PyResult<()> {
    match k {
        Some(k) if k > n => Err(invalid("cardinality", &format!("an integer in [0, {n}]"), k)),
        _ => Ok(()),
    }
}

fn check_init(init: &[u8], n: usize, k: Option<usize>) -> PyResult<()> {
    if let Some(pos) = init.iter().position(|&v| v > 1) {
        return Err(invalid("initial_states", "binary values 0/1", format!("{} at flat index {pos}", init[pos])));
    }
    if let (Some(k), true) = (k, n > 0) {
        for (t, x) in init.chunks(n).enumerate() {
            let ones = x.iter().filter(|&&v| v == 1).count();
            if ones != k {
                return Err(invalid("initial_states", &format!("exactly k = {k} ones in every state"), format!("{ones} ones in state {t}")));
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// The reads of problem `p` on a model of precision `F` (read `r0` onwards).
#[allow(clippy::too_many_arguments)]
fn dense_reads<F: Real>(
    qp: &[f64],
    n: usize,
    off: f64,
    bs: &[f64],
    cfg: &ReadConfig,
    p: usize,
    ini: Option<&[u8]>,
    st: &mut [u8],
    en: &mut [f64],
) -> Result<(), crate::core::error::CoreError> {
    let m = DenseModel::<F>::new(qp, n, off)?;
    sa::run_dense_reads(&m, bs, cfg, p as u64, 0, ini, st, en);
    Ok(())
}

/// All reads of one large problem `p` in chunks of `reads_per_chunk`, Ctrl-C checked between them.
#[allow(clippy::too_many_arguments)]
fn large_problem<F: Real>(
    py: Python<'_>,
    qp: &[f64],
    n: usize,
    off: f64,
    bs: &[f64],
    cfg: &ReadConfig,
    p: usize,
    reads: usize,
    reads_per_chunk: usize,
    init: Option<&[u8]>,
    num_threads: usize,
    states: &mut [u8],
    energies: &mut [f64],
) -> PyResult<()> {
    let m = DenseModel::<F>::new(qp, n, off).map_err(|e| to_py(py, e))?;
    let mut r0 = 0;
    while r0 < reads {
        let r1 = (r0 + reads_per_chunk).min(reads);
        let st = &mut states[r0 * n..r1 * n];
        let en = &mut energies[r0..r1];
        let ini = init.map(|v| &v[r0 * n..r1 * n]);
        let mref = &m;
        py.allow_threads(|| parallel::run(num_threads, || sa::run_dense_reads(mref, bs, cfg, p as u64, r0 as u64, ini, st, en)));
        py.check_signals()?;
        r0 = r1;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_batch(
    py: Python<'_>,
    singles: &[bool],
    q: &[f64],
    off: &[f64],
    b: usize,
    n: usize,
    betas: &[f64],
    s: usize,
    reads: usize,
    cfg: &ReadConfig,
    init: Option<&[u8]>,
    num_threads: usize,
    states: &mut [u8],
    energies: &mut [f64],
) -> PyResult<()> {
    let nn = n * n;
    if n == 0 {
        for p in 0..b {
            energies[p * reads..(p + 1) * reads].iter_mut().for_each(|e| *e = off[p]);
        }
        return Ok(());
    }
    // Cost of a read in attempted-swap units: the sweeps, plus the tabu
    // polish (about 2 stall moves of ~(k + 4) n / 32 attempts each).
    let polish = match cfg.k {
        Some(k) if cfg.greedy => cfg.polish.saturating_mul(2).saturating_mul((k + 4).saturating_mul(n) / 32),
        _ => 0,
    };
    let per_read = (s * n).saturating_add(polish).max(1);
    let per_problem = per_read.saturating_mul(reads);
    let problems_per_chunk = (CHUNK_ATTEMPTS / per_problem.max(1)).max(1);
    let reads_per_chunk = if per_problem > CHUNK_ATTEMPTS {
        (CHUNK_ATTEMPTS / per_read).max(2 * parallel::default_threads()).min(reads)
    } else {
        reads
    };
    let mut p0 = 0;
    while p0 < b {
        let p1 = (p0 + problems_per_chunk).min(b);
        if reads_per_chunk >= reads {
            let st = &mut states[p0 * reads * n..p1 * reads * n];
            let en = &mut energies[p0 * reads..p1 * reads];
            let work = || -> Result<(), crate::core::error::CoreError> {
                let body = |(i, (st, en)): (usize, (&mut [u8], &mut [f64]))| {
                    let p = p0 + i;
                    let (qp, bs) = (&q[p * nn..(p + 1) * nn], &betas[p * s..(p + 1) * s]);
                    let ini = init.map(|v| &v[p * reads * n..(p + 1) * reads * n]);
                    if singles[p] {
                        dense_reads::<f32>(qp, n, off[p], bs, cfg, p, ini, st, en)
                    } else {
                        dense_reads::<f64>(qp, n, off[p], bs, cfg, p, ini, st, en)
                    }
                };
                if cfg.sequential {
                    st.chunks_mut(reads * n).zip(en.chunks_mut(reads)).enumerate().try_for_each(body)
                } else {
                    use rayon::prelude::*;
                    st.par_chunks_mut(reads * n).zip(en.par_chunks_mut(reads)).enumerate().with_min_len(1).try_for_each(body)
                }
            };
            if cfg.sequential {
                py.allow_threads(work).map_err(|e| to_py(py, e))?;
            } else {
                py.allow_threads(|| parallel::run(num_threads, work)).map_err(|e| to_py(py, e))?;
            }
        } else {
            // One large problem: its reads in chunks.
            for p in p0..p1 {
                let (qp, bs) = (&q[p * nn..(p + 1) * nn], &betas[p * s..(p + 1) * s]);
                let st = &mut states[p * reads * n..(p + 1) * reads * n];
                let en = &mut energies[p * reads..(p + 1) * reads];
                let ini = init.map(|v| &v[p * reads * n..(p + 1) * reads * n]);
                if singles[p] {
                    large_problem::<f32>(py, qp, n, off[p], bs, cfg, p, reads, reads_per_chunk, ini, num_threads, st, en)?;
                } else {
                    large_problem::<f64>(py, qp, n, off[p], bs, cfg, p, reads, reads_per_chunk, ini, num_threads, st, en)?;
                }
            }
        }
        py.check_signals()?;
        p0 = p1;
    }
    Ok(())
}

/// Per-problem precision: `single` when given, else `sa::prefers_single`.
fn precisions(py: Python<'_>, q: &[f64], b: usize, n: usize, single: Option<bool>, num_threads: usize, sequential: bool) -> Vec<bool> {
    let nn = n * n;
    match single {
        Some(s) => vec![s; b],
        None if sequential || b <= 1 => (0..b).map(|p| sa::prefers_single(&q[p * nn..(p + 1) * nn], n)).collect(),
        None => py.allow_threads(|| {
            use rayon::prelude::*;
            parallel::run(num_threads, || (0..b).into_par_iter().map(|p| sa::prefers_single(&q[p * nn..(p + 1) * nn], n)).collect())
        }),
    }
}

/// sa_single_precision(q, num_threads) -> list[bool]
///
/// The per-problem precision rule (`sa::prefers_single`) for q (B, n, n) f64.
#[pyfunction]
#[pyo3(text_signature = "(q, num_threads)")]
fn sa_single_precision(py: Python<'_>, q: &PyAny, num_threads: usize) -> PyResult<Vec<bool>> {
    let qv = View::<f64>::new(q, "Q", "float64", &[None, None, None])?;
    let (b, n) = (qv.shape()[0], qv.shape()[1]);
    if qv.shape()[2] != n {
        return Err(invalid("Q", "square matrices", format!("shape {:?}", qv.shape())));
    }
    Ok(precisions(py, qv.as_slice(), b, n, None, num_threads, b * n * n <= 1 << 15))
}

/// sa_dense_batch(q, offsets, betas, num_reads, seed, k, initial_states, greedy, polish, single,
///                num_threads, best_states_out, best_energies_out, energies_out, states_out)
///
/// Anneal B dense QUBOs q (B, n, n) f64 (upper-triangular) with offsets (B,),
/// R = num_reads reads each, one sweep per beta of betas (B, S) f64. k None:
/// single-flip moves; k: swap moves keeping exactly k ones. initial_states
/// (B, R, n) uint8 or None (random). greedy: end every read at a local minimum;
/// polish (swap moves with greedy only): stall limit of the final swap tabu
/// search (0: plain steepest 1-swap descent). single: f32 (True) or f64
/// (False) local fields, None: per problem by `sa::prefers_single`. Writes
/// best_states_out (B, n) uint8, best_energies_out (B,), energies_out (B, R)
/// and, if not None, states_out (B, R, n) uint8. Energies are exact (f64).
#[pyfunction]
#[pyo3(text_signature = "(q, offsets, betas, num_reads, seed, k, initial_states, greedy, polish, single, num_threads, best_states_out, best_energies_out, energies_out, states_out)")]
#[allow(clippy::too_many_arguments)]
fn sa_dense_batch(
    py: Python<'_>,
    q: &PyAny,
    offsets: &PyAny,
    betas: &PyAny,
    num_reads: usize,
    seed: u64,
    k: Option<usize>,
    initial_states: Option<&PyAny>,
    greedy: bool,
    polish: usize,
    single: Option<bool>,
    num_threads: usize,
    best_states_out: &PyAny,
    best_energies_out: &PyAny,
    energies_out: &PyAny,
    states_out: Option<&PyAny>,
) -> PyResult<()> {
    let qv = View::<f64>::new(q, "Q", "float64", &[None, None, None])?;
    let qs = qv.shape().to_vec();
    let q = qv.as_slice();
    let (b, n) = (qs[0], qs[1]);
    if qs[2] != n {
        return Err(invalid("Q", "square matrices", format!("shape {qs:?}")));
    }
    let (off, _) = read::<f64>(py, offsets, "offsets", "float64", &[Some(b)])?;
    let (betas, bs) = read::<f64>(py, betas, "beta_schedule", "float64", &[Some(b), None])?;
    let s = bs[1];
    if num_reads == 0 {
        return Err(invalid("num_reads", "a positive integer", 0));
    }
    check_k(k, n)?;
    let init = match initial_states {
        Some(obj) if !obj.is_none() => {
            let (v, _) = read::<u8>(py, obj, "initial_states", "uint8", &[Some(b), Some(num_reads), Some(n)])?;
            check_init(&v, n, k)?;
            Some(v)
        }
        _ => None,
    };
    let polish_attempts = match k {
        Some(k) if greedy => polish.saturating_mul(2).saturating_mul((k + 4).saturating_mul(n) / 32),
        _ => 0,
    };
    let attempts = b.saturating_mul(num_reads).saturating_mul(s.max(1).saturating_mul(n.max(1)).saturating_add(polish_attempts));
    let cfg = ReadConfig { seed, k, greedy, polish, sequential: attempts <= SEQUENTIAL_ATTEMPTS || num_threads == 1 && b * num_reads <= 1 };
    let mut states = vec![0u8; b * num_reads * n];
    let mut energies = vec![0.0f64; b * num_reads];
    let singles = precisions(py, q, b, n, single, num_threads, cfg.sequential);
    run_batch(py, &singles, q, &off, b, n, &betas, s, num_reads, &cfg, init.as_deref(), num_threads, &mut states, &mut energies)?;
    // Best read per problem: lowest energy, first read on ties.
    let mut best_states = vec![0u8; b * n];
    let mut best_e = vec![0.0f64; b];
    for p in 0..b {
        let en = &energies[p * num_reads..(p + 1) * num_reads];
        let mut arg = 0;
        for (r, &e) in en.iter().enumerate() {
            if e < en[arg] {
                arg = r;
            }
        }
        best_e[p] = en[arg];
        best_states[p * n..(p + 1) * n].copy_from_slice(&states[(p * num_reads + arg) * n..(p * num_reads + arg + 1) * n]);
    }
    write(py, best_states_out, "best_states_out", "uint8", &[b, n], &best_states)?;
    write(py, best_energies_out, "best_energies_out", "float64", &[b], &best_e)?;
    write(py, energies_out, "energies_out", "float64", &[b, num_reads], &energies)?;
    if let Some(obj) = states_out {
        if !obj.is_none() {
            write(py, obj, "states_out", "uint8", &[b, num_reads, n], &states)?;
        }
    }
    Ok(())
}

/// sa_default_beta_ranges(q, offsets, k, single, num_threads, out)
///
/// The instance-derived default (beta0, beta1) of each of B dense QUBOs for
/// the flip annealer (k None) or the swap annealer (k); single as in
/// sa_dense_batch (None: per problem); writes out (B, 2).
#[pyfunction]
#[pyo3(text_signature = "(q, offsets, k, single, num_threads, out)")]
fn sa_default_beta_ranges(
    py: Python<'_>,
    q: &PyAny,
    offsets: &PyAny,
    k: Option<usize>,
    single: Option<bool>,
    num_threads: usize,
    out: &PyAny,
) -> PyResult<()> {
    let qv = View::<f64>::new(q, "Q", "float64", &[None, None, None])?;
    let qs = qv.shape().to_vec();
    let q = qv.as_slice();
    let (b, n) = (qs[0], qs[1]);
    if qs[2] != n {
        return Err(invalid("Q", "square matrices", format!("shape {qs:?}")));
    }
    let (off, _) = read::<f64>(py, offsets, "offsets", "float64", &[Some(b)])?;
    check_k(k, n)?;
    let nn = n * n;
    fn one<F: Real>(q: &[f64], n: usize, off: f64, k: Option<usize>) -> (f64, f64) {
        match k {
            // No symmetric matrix needed: f64 straight from Q.
            Some(k) => sa::default_beta_range_swap_q(q, n, k),
            None => match DenseModel::<F>::new(q, n, off) {
                Ok(m) => sa::default_beta_range_flip(&m),
                Err(_) => (0.1, 1.0),
            },
        }
    }
    let ranges: Vec<(f64, f64)> = py.allow_threads(|| {
        let f = |p: usize| {
            let qp = &q[p * nn..(p + 1) * nn];
            // The swap range comes straight from Q (no model, precision moot).
            if k.is_none() && single.unwrap_or_else(|| sa::prefers_single(qp, n)) {
                one::<f32>(qp, n, off[p], k)
            } else {
                one::<f64>(qp, n, off[p], k)
            }
        };
        if b <= 1 {
            (0..b).map(f).collect()
        } else {
            use rayon::prelude::*;
            parallel::run(num_threads, || (0..b).into_par_iter().map(f).collect())
        }
    });
    let flat: Vec<f64> = ranges.iter().flat_map(|&(a, c)| [a, c]).collect();
    write(py, out, "out", "float64", &[b, 2], &flat)
}

fn read_sparse(
    py: Python<'_>,
    linear: &PyAny,
    rows: &PyAny,
    cols: &PyAny,
    vals: &PyAny,
) -> PyResult<(Vec<f64>, Vec<i64>, Vec<i64>, Vec<f64>)> {
    let (lin, _) = read::<f64>(py, linear, "linear", "float64", &[None])?;
    let (r, rs) = read::<i64>(py, rows, "rows", "int64", &[None])?;
    let (c, _) = read::<i64>(py, cols, "cols", "int64", &[Some(rs[0])])?;
    let (v, _) = read::<f64>(py, vals, "values", "float64", &[Some(rs[0])])?;
    Ok((lin, r, c, v))
}

/// sa_sparse(linear, rows, cols, values, offset, betas, num_reads, seed, initial_states,
///           greedy, single, num_threads, states_out, energies_out)
///
/// Single-flip annealing of one sparse binary QUBO: linear (n,) f64, edges
/// rows/cols (m,) int64 with values (m,) f64, offset; betas (S,) f64.
/// initial_states (R, n) uint8 or None. Writes states_out (R, n) uint8 and
/// energies_out (R,) (exact, f64).
#[pyfunction]
#[pyo3(text_signature = "(linear, rows, cols, values, offset, betas, num_reads, seed, initial_states, greedy, single, num_threads, states_out, energies_out)")]
#[allow(clippy::too_many_arguments)]
fn sa_sparse(
    py: Python<'_>,
    linear: &PyAny,
    rows: &PyAny,
    cols: &PyAny,
    values: &PyAny,
    offset: f64,
    betas: &PyAny,
    num_reads: usize,
    seed: u64,
    initial_states: Option<&PyAny>,
    greedy: bool,
    single: bool,
    num_threads: usize,
    states_out: &PyAny,
    energies_out: &PyAny,
) -> PyResult<()> {
    let (lin, r, c, v) = read_sparse(py, linear, rows, cols, values)?;
    let n = lin.len();
    let (betas, _) = read::<f64>(py, betas, "beta_schedule", "float64", &[None])?;
    if num_reads == 0 {
        return Err(invalid("num_reads", "a positive integer", 0));
    }
    let init = match initial_states {
        Some(obj) if !obj.is_none() => {
            let (x, _) = read::<u8>(py, obj, "initial_states", "uint8", &[Some(num_reads), Some(n)])?;
            check_init(&x, n, None)?;
            Some(x)
        }
        _ => None,
    };
    let per_read = (betas.len() * n).max(1) + r.len();
    let attempts = per_read.saturating_mul(num_reads);
    let cfg = ReadConfig { seed, k: None, greedy, polish: 0, sequential: attempts <= SEQUENTIAL_ATTEMPTS };
    let mut states = vec![0u8; num_reads * n];
    let mut energies = vec![0.0f64; num_reads];
    fn go<F: Real>(
        py: Python<'_>,
        m: &CsrModel<F>,
        betas: &[f64],
        cfg: &ReadConfig,
        init: Option<&[u8]>,
        num_threads: usize,
        per_read: usize,
        states: &mut [u8],
        energies: &mut [f64],
    ) -> PyResult<()> {
        let n = m_n(m);
        let reads = energies.len();
        let bs: Vec<F> = betas.iter().map(|&b| F::from_f64(b)).collect();
        let chunk = (CHUNK_ATTEMPTS / per_read).max(2 * parallel::default_threads()).min(reads).max(1);
        let mut r0 = 0;
        while r0 < reads {
            let r1 = (r0 + chunk).min(reads);
            let st = &mut states[r0 * n..r1 * n];
            let en = &mut energies[r0..r1];
            let ini = init.map(|v| &v[r0 * n..r1 * n]);
            let bsr = &bs;
            if cfg.sequential {
                py.allow_threads(|| sa::run_flip_reads(m, bsr, cfg, 0, r0 as u64, ini, st, en));
            } else {
                py.allow_threads(|| parallel::run(num_threads, || sa::run_flip_reads(m, bsr, cfg, 0, r0 as u64, ini, st, en)));
            }
            py.check_signals()?;
            r0 = r1;
        }
        Ok(())
    }
    fn m_n<F: Real>(m: &CsrModel<F>) -> usize {
        use crate::core::sa::Couplings;
        m.n()
    }
    if single {
        let m = CsrModel::<f32>::new(&lin, &r, &c, &v, offset).map_err(|e| to_py(py, e))?;
        go(py, &m, &betas, &cfg, init.as_deref(), num_threads, per_read, &mut states, &mut energies)?;
    } else {
        let m = CsrModel::<f64>::new(&lin, &r, &c, &v, offset).map_err(|e| to_py(py, e))?;
        go(py, &m, &betas, &cfg, init.as_deref(), num_threads, per_read, &mut states, &mut energies)?;
    }
    write(py, states_out, "states_out", "uint8", &[num_reads, n], &states)?;
    write(py, energies_out, "energies_out", "float64", &[num_reads], &energies)
}

/// sa_sparse_default_beta_range(linear, rows, cols, values) -> (beta0, beta1)
///
/// The instance-derived default beta range of the flip annealer on a sparse QUBO.
#[pyfunction]
#[pyo3(text_signature = "(linear, rows, cols, values)")]
fn sa_sparse_default_beta_range(
    py: Python<'_>,
    linear: &PyAny,
    rows: &PyAny,
    cols: &PyAny,
    values: &PyAny,
) -> PyResult<(f64, f64)> {
    let (lin, r, c, v) = read_sparse(py, linear, rows, cols, values)?;
    let m = CsrModel::<f64>::new(&lin, &r, &c, &v, 0.0).map_err(|e| to_py(py, e))?;
    Ok(py.allow_threads(|| sa::default_beta_range_flip(&m)))
}

pub fn register(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sa_dense_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sa_single_precision, m)?)?;
    m.add("SINGLE_PRECISION_MAX_RANGE", sa::SINGLE_PRECISION_MAX_RANGE)?;
    m.add_function(wrap_pyfunction!(sa_default_beta_ranges, m)?)?;
    m.add_function(wrap_pyfunction!(sa_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(sa_sparse_default_beta_range, m)?)?;
    Ok(())
}

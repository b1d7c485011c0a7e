//! Bindings of `core::tabu` (multistart tabu search) and `core::greedy`
//! (greedy construction + steepest descent).
//!
//! The QUBOs are copied from the caller's buffer in chunks of problems (at
//! most ~128 MiB of `f64` at a time), so a large batch is never held twice.
//! Each chunk runs with the GIL released as a job of qfsel's pool while this
//! thread checks for Ctrl-C every 50 ms; on an interrupt the kernels see a cancel
//! flag within 64 moves and the `KeyboardInterrupt` propagates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::wrap_pyfunction;

use super::buffers::{read, write};
use super::errors::{invalid, to_py};
use crate::core::greedy::{greedy_descent, Dense};
use crate::core::tabu::{tabu_batch, ReadResult, TabuParams};

const CHUNK_BYTES: usize = 128 << 20;

/// Run `f` as a job of the pool of `threads`, with the GIL released; check
/// for Ctrl-C every 50 ms and raise the cancel flag on one
/// ([`super::interrupt::run_interruptible`]).
fn run_interruptible<R: Send>(py: Python<'_>, threads: usize, f: impl FnOnce(&AtomicBool) -> R + Send) -> PyResult<R> {
    let cancel = AtomicBool::new(false);
    super::interrupt::run_interruptible(py, threads, &cancel, |c| c.store(true, Ordering::Relaxed), f)
}

/// Shape-check `q` as `(B, n, n)` float64 C-contiguous and return `(buffer, B, n)`.
fn q_buffer(obj: &PyAny) -> PyResult<(PyBuffer<f64>, usize, usize)> {
    let buf = PyBuffer::<f64>::get(obj).map_err(|_| {
        PyTypeError::new_err(format!(
            "Q: expected a C-contiguous numpy array of dtype float64, got {}",
            obj.get_type().name().unwrap_or("an object without a buffer")
        ))
    })?;
    if !buf.is_c_contiguous() {
        return Err(invalid("Q", "a C-contiguous array", "a strided view"));
    }
    let shape = buf.shape().to_vec();
    if shape.len() != 3 || shape[1] != shape[2] {
        return Err(invalid("Q", "shape (B, n, n)", format!("shape {shape:?}")));
    }
    Ok((buf, shape[0], shape[1]))
}

/// Problems `lo..hi` of `q` as symmetric dense problems (one copy each).
fn dense_chunk(py: Python<'_>, buf: &PyBuffer<f64>, n: usize, off: &[f64], lo: usize, hi: usize) -> Vec<Dense> {
    let cells = buf.as_slice(py).expect("C-contiguous f64 buffer");
    let nn = n * n;
    (lo..hi)
        .map(|b| {
            let v: Vec<f64> = cells[b * nn..(b + 1) * nn].iter().map(|c| c.get()).collect();
            Dense::from_upper_owned(v, n, off[b])
        })
        .collect()
}

fn chunk_len(n: usize, b: usize) -> usize {
    (CHUNK_BYTES / (8 * n * n).max(1)).clamp(1, b.max(1))
}

/// tabu_batch(q, offsets, k, num_reads, seed, num_iterations, timeout_ms, tenure,
///            num_restarts, elite_size, energy_threshold, initial_states,
///            best_states, best_energies, read_energies, read_states, num_threads)
///     -> (iterations, restarts, kernel_seconds)
///
/// Multistart tabu search on B upper-triangular QUBOs q (B, n, n) f64 with
/// offsets (B,), num_reads reads each. k None: one-flip tabu; k set: swap
/// tabu keeping exactly k ones. initial_states: None or (B, m, n) uint8 0/1
/// with m <= num_reads, used by the first m reads. Writes best_states (B, n)
/// uint8, best_energies (B,), read_energies (B, R) and, unless None,
/// read_states (B, R, n) uint8. Returns the total moves and restarts over all
/// reads and the seconds spent in the kernel.
#[pyfunction]
#[pyo3(
    name = "tabu_batch",
    text_signature = "(q, offsets, k, num_reads, seed, num_iterations, timeout_ms, tenure, num_restarts, elite_size, energy_threshold, initial_states, best_states, best_energies, read_energies, read_states, num_threads)"
)]
#[allow(clippy::too_many_arguments)]
fn tabu_batch_py(
    py: Python<'_>,
    q: &PyAny,
    offsets: &PyAny,
    k: Option<usize>,
    num_reads: usize,
    seed: u64,
    num_iterations: Option<u64>,
    timeout_ms: Option<f64>,
    tenure: Option<usize>,
    num_restarts: u64,
    elite_size: usize,
    energy_threshold: Option<f64>,
    initial_states: Option<&PyAny>,
    best_states: &PyAny,
    best_energies: &PyAny,
    read_energies: &PyAny,
    read_states: Option<&PyAny>,
    num_threads: usize,
) -> PyResult<(u64, u64, f64)> {
    let (qbuf, b, n) = q_buffer(q)?;
    let (off, _) = read::<f64>(py, offsets, "offsets", "float64", &[Some(b)])?;
    if num_reads == 0 {
        return Err(invalid("num_reads", "a positive integer", 0));
    }
    let timeout = match timeout_ms {
        None => None,
        // A positive timeout below the clock's nanosecond is one nanosecond (it was
        // rounded to 0 and refused as "got 0"); one beyond Duration's range never expires.
        Some(t) if t.is_finite() && t > 0.0 => {
            Some(Duration::try_from_secs_f64(t / 1000.0).unwrap_or(Duration::MAX).max(Duration::from_nanos(1)))
        }
        Some(t) => return Err(invalid("timeout", "a positive number of milliseconds", t)),
    };
    let params = TabuParams {
        num_iterations,
        timeout,
        tenure,
        num_restarts,
        stall: None,
        elite_size,
        energy_threshold,
    };
    params.validate(n, k).map_err(|e| to_py(py, e))?;
    let init: Option<(Vec<u8>, usize)> = match initial_states {
        None => None,
        Some(obj) => {
            let (x, xs) = read::<u8>(py, obj, "initial_states", "uint8", &[Some(b), None, Some(n)])?;
            if xs[1] > num_reads {
                return Err(invalid("initial_states", &format!("at most num_reads = {num_reads} states per problem"), xs[1]));
            }
            if let Some(bad) = x.iter().find(|&&v| v > 1) {
                return Err(invalid("initial_states", "values 0/1", bad));
            }
            Some((x, xs[1]))
        }
    };
    let t0 = Instant::now();
    let mut results: Vec<ReadResult> = Vec::with_capacity(b * num_reads);
    let step = chunk_len(n, b);
    let mut lo = 0;
    while lo < b {
        let hi = (lo + step).min(b);
        let problems = dense_chunk(py, &qbuf, n, &off, lo, hi);
        let init_chunk = init.as_ref().map(|(x, m)| (&x[lo * m * n..hi * m * n], *m));
        let part = run_interruptible(py, num_threads, |cancel| {
            tabu_batch(&problems, k, num_reads, init_chunk, seed, lo as u64, &params, cancel)
        })?
        .map_err(|e| to_py(py, e))?;
        results.extend(part);
        lo = hi;
    }
    let secs = t0.elapsed().as_secs_f64();
    // Gather outputs.
    let mut bs = vec![0u8; b * n];
    let mut be = vec![0.0f64; b];
    let mut re = vec![0.0f64; b * num_reads];
    let (mut iters, mut rest) = (0u64, 0u64);
    for p in 0..b {
        let rs = &results[p * num_reads..(p + 1) * num_reads];
        let mut best = 0;
        for (r, res) in rs.iter().enumerate() {
            re[p * num_reads + r] = res.energy;
            iters += res.iterations;
            rest += res.restarts;
            if res.energy < rs[best].energy {
                best = r;
            }
        }
        be[p] = rs[best].energy;
        bs[p * n..(p + 1) * n].copy_from_slice(&rs[best].x);
    }
    write(py, best_states, "best_states", "uint8", &[b, n], &bs)?;
    write(py, best_energies, "best_energies", "float64", &[b], &be)?;
    write(py, read_energies, "read_energies", "float64", &[b, num_reads], &re)?;
    if let Some(obj) = read_states {
        let mut all = Vec::with_capacity(b * num_reads * n);
        for r in &results {
            all.extend_from_slice(&r.x);
        }
        write(py, obj, "read_states", "uint8", &[b, num_reads, n], &all)?;
    }
    Ok((iters, rest, secs))
}

/// greedy_batch(q, offsets, k, states, energies, num_threads) -> kernel_seconds
///
/// Greedy construction + steepest descent (flip moves when k is None, swap
/// moves keeping exactly k ones otherwise) on B upper-triangular QUBOs q
/// (B, n, n) f64 with offsets (B,). Writes states (B, n) uint8 and energies (B,).
#[pyfunction]
#[pyo3(name = "greedy_batch", text_signature = "(q, offsets, k, states, energies, num_threads)")]
fn greedy_batch_py(
    py: Python<'_>,
    q: &PyAny,
    offsets: &PyAny,
    k: Option<usize>,
    states: &PyAny,
    energies: &PyAny,
    num_threads: usize,
) -> PyResult<f64> {
    let (qbuf, b, n) = q_buffer(q)?;
    let (off, _) = read::<f64>(py, offsets, "offsets", "float64", &[Some(b)])?;
    if let Some(k) = k {
        if k > n {
            return Err(invalid("k", &format!("0 <= k <= n = {n}"), k));
        }
    }
    let t0 = Instant::now();
    let mut xs = vec![0u8; b * n];
    let mut es = vec![0.0f64; b];
    let step = chunk_len(n, b);
    let mut lo = 0;
    while lo < b {
        let hi = (lo + step).min(b);
        let problems = dense_chunk(py, &qbuf, n, &off, lo, hi);
        let one = |p: &Dense| {
            let s = greedy_descent(p, k);
            let e = s.energy;
            (s.x, e)
        };
        let part: Vec<(Vec<u8>, f64)> = if crate::core::qubo::is_small((hi - lo) * n * n) {
            // Microseconds of work: no worker thread, no pool hand-off.
            problems.iter().map(one).collect()
        } else {
            run_interruptible(py, num_threads, |_cancel| {
                use rayon::prelude::*;
                problems.par_iter().map(one).collect()
            })?
        };
        for (i, (x, e)) in part.into_iter().enumerate() {
            xs[(lo + i) * n..(lo + i + 1) * n].copy_from_slice(&x);
            es[lo + i] = e;
        }
        lo = hi;
    }
    let secs = t0.elapsed().as_secs_f64();
    write(py, states, "states", "uint8", &[b, n], &xs)?;
    write(py, energies, "energies", "float64", &[b], &es)?;
    Ok(secs)
}

pub fn register(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tabu_batch_py, m)?)?;
    m.add_function(wrap_pyfunction!(greedy_batch_py, m)?)?;
    Ok(())
}

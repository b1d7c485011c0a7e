//! Bindings of `core::qubo`: batched QUBO construction and energies.

use pyo3::prelude::*;
use pyo3::wrap_pyfunction;

use super::buffers::{read, write};
use crate::core::{parallel, qubo};

/// fs_qubo_batch(h, J, beta, k, penalties, q_out, offsets_out, num_threads)
///
/// Build B feature-selection QUBOs: h (B, K) f64, J (B, K, K) f64,
/// penalties (B,) f64 (used when k is not None); writes q_out (B, K, K) and
/// offsets_out (B,).
#[pyfunction]
#[pyo3(text_signature = "(h, J, beta, k, penalties, q_out, offsets_out, num_threads)")]
#[allow(clippy::too_many_arguments)]
fn fs_qubo_batch(
    py: Python<'_>,
    h: &PyAny,
    #[allow(non_snake_case)] J: &PyAny,
    beta: f64,
    k: Option<usize>,
    penalties: &PyAny,
    q_out: &PyAny,
    offsets_out: &PyAny,
    num_threads: usize,
) -> PyResult<()> {
    let (h, hs) = read::<f64>(py, h, "relevance", "float64", &[None, None])?;
    let (b, n) = (hs[0], hs[1]);
    let (j, _) = read::<f64>(py, J, "redundancy", "float64", &[Some(b), Some(n), Some(n)])?;
    let (pen, _) = read::<f64>(py, penalties, "penalty", "float64", &[Some(b)])?;
    let (q, off) = py.allow_threads(|| {
        let mut q = vec![0.0; b * n * n];
        let mut off = vec![0.0; b];
        parallel::run(num_threads, || {
            qubo::feature_selection_qubo_batch(n, &h, &j, beta, k, &pen, &mut q, &mut off)
        });
        (q, off)
    });
    write(py, q_out, "q_out", "float64", &[b, n, n], &q)?;
    write(py, offsets_out, "offsets_out", "float64", &[b], &off)
}

/// qubo_energies_batch(q, offsets, states, out, num_threads)
///
/// Energies of M states of each of B QUBOs: q (B, n, n) f64, offsets (B,),
/// states (B, M, n) uint8 (0/1); writes out (B, M).
#[pyfunction]
#[pyo3(text_signature = "(q, offsets, states, out, num_threads)")]
fn qubo_energies_batch(
    py: Python<'_>,
    q: &PyAny,
    offsets: &PyAny,
    states: &PyAny,
    out: &PyAny,
    num_threads: usize,
) -> PyResult<()> {
    let (q, qs) = read::<f64>(py, q, "Q", "float64", &[None, None, None])?;
    let (b, n) = (qs[0], qs[1]);
    if qs[2] != n {
        return Err(super::errors::invalid("Q", "square matrices", format!("shape {qs:?}")));
    }
    let (off, _) = read::<f64>(py, offsets, "offsets", "float64", &[Some(b)])?;
    let (x, xs) = read::<u8>(py, states, "states", "uint8", &[Some(b), None, Some(n)])?;
    let m = xs[1];
    let energies = py.allow_threads(|| {
        let mut e = vec![0.0; b * m];
        parallel::run(num_threads, || {
            for p in 0..b {
                qubo::qubo_energies(
                    &q[p * n * n..(p + 1) * n * n],
                    off[p],
                    n,
                    &x[p * m * n..(p + 1) * m * n],
                    &mut e[p * m..(p + 1) * m],
                );
            }
        });
        e
    });
    write(py, out, "out", "float64", &[b, m], &energies)
}

/// safe_penalties(h, J, beta, out)
///
/// The smallest safe cardinality penalty of each of B problems (see
/// `core::qubo::safe_penalty`); writes out (B,).
#[pyfunction]
#[pyo3(text_signature = "(h, J, beta, out)")]
fn safe_penalties(
    py: Python<'_>,
    h: &PyAny,
    #[allow(non_snake_case)] J: &PyAny,
    beta: f64,
    out: &PyAny,
) -> PyResult<()> {
    let (h, hs) = read::<f64>(py, h, "relevance", "float64", &[None, None])?;
    let (b, n) = (hs[0], hs[1]);
    let (j, _) = read::<f64>(py, J, "redundancy", "float64", &[Some(b), Some(n), Some(n)])?;
    let lam: Vec<f64> = py.allow_threads(|| {
        (0..b)
            .map(|p| qubo::safe_penalty(&h[p * n..(p + 1) * n], &j[p * n * n..(p + 1) * n * n], beta))
            .collect()
    });
    write(py, out, "out", "float64", &[b], &lam)
}

pub fn register(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fs_qubo_batch, m)?)?;
    m.add_function(wrap_pyfunction!(qubo_energies_batch, m)?)?;
    m.add_function(wrap_pyfunction!(safe_penalties, m)?)?;
    Ok(())
}

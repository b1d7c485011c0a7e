//! Bindings of `core::qubo`: validation, batched QUBO construction, energies.
//!
//! These are on the hot path of dataset-scale explanation, so they read and
//! write the caller's numpy arrays in place (zero-copy views) and work with
//! the GIL released.

use pyo3::prelude::*;
use pyo3::wrap_pyfunction;

use super::buffers::View;
use super::release;
use crate::core::qubo::InputFault;
use crate::core::{parallel, qubo};

type Fault = (&'static str, Vec<usize>, f64, f64);

/// fs_check_batch(h, J, rtol, beta, penalties_out, h_copy, J_copy, num_threads) -> None | (kind, index, value, other)
///
/// One parallel pass over h (B, K) and J (B, K, K), float64: the first
/// non-finite value, asymmetric pair or non-zero diagonal entry, or None.
/// With beta not None, the same pass writes the safe penalties into
/// penalties_out (B,); with h_copy / J_copy (same shapes) not None, it also
/// copies the inputs there.
#[pyfunction]
#[pyo3(text_signature = "(h, J, rtol, beta, penalties_out, h_copy, J_copy, num_threads)")]
#[allow(clippy::too_many_arguments)]
fn fs_check_batch(
    py: Python<'_>,
    h: &PyAny,
    #[allow(non_snake_case)] J: &PyAny,
    rtol: f64,
    beta: Option<f64>,
    penalties_out: &PyAny,
    h_copy: Option<&PyAny>,
    #[allow(non_snake_case)] J_copy: Option<&PyAny>,
    num_threads: usize,
) -> PyResult<Option<Fault>> {
    let hv = View::<f64>::new(h, "relevance", "float64", &[None, None])?;
    let (b, n) = (hv.shape()[0], hv.shape()[1]);
    let jv = View::<f64>::new(J, "redundancy", "float64", &[Some(b), Some(n), Some(n)])?;
    let mut pv = View::<f64>::new_mut(penalties_out, "penalties_out", "float64", &[b])?;
    let mut copies = match (h_copy, J_copy) {
        (Some(hc), Some(jc)) => Some((
            View::<f64>::new_mut(hc, "h_copy", "float64", &[b, n])?,
            View::<f64>::new_mut(jc, "J_copy", "float64", &[b, n, n])?,
        )),
        (None, None) => None,
        _ => {
            return Err(super::errors::invalid(
                "h_copy, J_copy",
                "both or neither",
                "one of them",
            ))
        }
    };
    let (hs, js, ps) = (hv.as_slice(), jv.as_slice(), pv.as_mut_slice());
    let copy = copies
        .as_mut()
        .map(|(hc, jc)| (hc.as_mut_slice(), jc.as_mut_slice()));
    let small = qubo::is_small(b * n * n);
    let fault = release(py, num_threads, small, || {
        qubo::check_feature_selection_batch(n, hs, js, rtol, beta.map(|bt| (bt, ps)), copy)
    });
    Ok(fault.map(|f| match f {
        InputFault::RelevanceNotFinite { b, i, value } => {
            ("relevance_not_finite", vec![b, i], value, value)
        }
        InputFault::RedundancyNotFinite { b, i, j, value } => {
            ("redundancy_not_finite", vec![b, i, j], value, value)
        }
        InputFault::NotSymmetric {
            b,
            i,
            j,
            value,
            transposed,
        } => ("not_symmetric", vec![b, i, j], value, transposed),
        InputFault::NonZeroDiagonal { b, i, value } => {
            ("nonzero_diagonal", vec![b, i, i], value, value)
        }
    }))
}

/// fs_qubo_batch(h, J, beta, k, penalties, q_out, offsets_out, num_threads)
///
/// Build B feature-selection QUBOs: h (B, K) f64, J (B, K, K) f64 (upper
/// triangle read), penalties (B,) f64 (used when k is not None); writes
/// q_out (B, K, K) and offsets_out (B,) in place.
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
    let hv = View::<f64>::new(h, "relevance", "float64", &[None, None])?;
    let (b, n) = (hv.shape()[0], hv.shape()[1]);
    let jv = View::<f64>::new(J, "redundancy", "float64", &[Some(b), Some(n), Some(n)])?;
    let pv = View::<f64>::new(penalties, "penalty", "float64", &[Some(b)])?;
    let mut qv = View::<f64>::new_mut(q_out, "q_out", "float64", &[b, n, n])?;
    let mut ov = View::<f64>::new_mut(offsets_out, "offsets_out", "float64", &[b])?;
    let (hs, js, ps) = (hv.as_slice(), jv.as_slice(), pv.as_slice());
    let (qs, os) = (qv.as_mut_slice(), ov.as_mut_slice());
    let small = qubo::is_small(b * n * n);
    release(py, num_threads, small, || {
        qubo::feature_selection_qubo_batch(n, hs, js, beta, k, ps, qs, os)
    });
    Ok(())
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
    let qv = View::<f64>::new(q, "Q", "float64", &[None, None, None])?;
    let (b, n) = (qv.shape()[0], qv.shape()[1]);
    if qv.shape()[2] != n {
        return Err(super::errors::invalid(
            "Q",
            "square matrices",
            format!("shape {:?}", qv.shape()),
        ));
    }
    let ofv = View::<f64>::new(offsets, "offsets", "float64", &[Some(b)])?;
    let xv = View::<u8>::new(states, "states", "uint8", &[Some(b), None, Some(n)])?;
    let m = xv.shape()[1];
    let mut ev = View::<f64>::new_mut(out, "out", "float64", &[b, m])?;
    let (qs, ofs, xs) = (qv.as_slice(), ofv.as_slice(), xv.as_slice());
    let es = ev.as_mut_slice();
    py.allow_threads(|| {
        parallel::run(num_threads, || {
            for p in 0..b {
                qubo::qubo_energies(
                    &qs[p * n * n..(p + 1) * n * n],
                    ofs[p],
                    n,
                    &xs[p * m * n..(p + 1) * m * n],
                    &mut es[p * m..(p + 1) * m],
                );
            }
        })
    });
    Ok(())
}

/// fs_energies_batch(h, J, beta, states, out, num_threads)
///
/// Objective energies (no penalty) of M states of each of B problems straight
/// from h (B, K) and J (B, K, K) (upper triangle read), without building Q:
/// states (B, M, K) uint8; writes out (B, M).
#[pyfunction]
#[pyo3(text_signature = "(h, J, beta, states, out, num_threads)")]
fn fs_energies_batch(
    py: Python<'_>,
    h: &PyAny,
    #[allow(non_snake_case)] J: &PyAny,
    beta: f64,
    states: &PyAny,
    out: &PyAny,
    num_threads: usize,
) -> PyResult<()> {
    let hv = View::<f64>::new(h, "relevance", "float64", &[None, None])?;
    let (b, n) = (hv.shape()[0], hv.shape()[1]);
    let jv = View::<f64>::new(J, "redundancy", "float64", &[Some(b), Some(n), Some(n)])?;
    let xv = View::<u8>::new(states, "states", "uint8", &[Some(b), None, Some(n)])?;
    let m = xv.shape()[1];
    let mut ev = View::<f64>::new_mut(out, "out", "float64", &[b, m])?;
    let (hs, js, xs) = (hv.as_slice(), jv.as_slice(), xv.as_slice());
    let es = ev.as_mut_slice();
    let small = qubo::is_small(b * m * n);
    release(py, num_threads, small, || {
        qubo::feature_selection_energies_batch(n, hs, js, beta, m, xs, es)
    });
    Ok(())
}

pub fn register(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fs_check_batch, m)?)?;
    m.add_function(wrap_pyfunction!(fs_qubo_batch, m)?)?;
    m.add_function(wrap_pyfunction!(qubo_energies_batch, m)?)?;
    m.add_function(wrap_pyfunction!(fs_energies_batch, m)?)?;
    Ok(())
}

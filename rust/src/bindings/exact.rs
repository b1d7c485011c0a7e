//! Bindings of `core::exact`: exhaustive ground-state search.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::wrap_pyfunction;

use super::buffers::read;
use super::errors::to_py;
use crate::core::exact::{Enumerator, GroundStates};
use crate::core::parallel;

/// exact_ground_states_batch(q, offsets, k, max_states, max_subsets, num_threads)
///     -> (energies, counts, stored, visited, states_bytes)
///
/// Exhaustive search of B QUBOs q (B, n, n) f64 with offsets (B,), over all
/// 2^n states (k None) or all states with exactly k ones. Returns per problem
/// the ground energy, the number of ground states, how many of them were
/// stored (<= max_states) and the states examined; states_bytes holds the
/// stored ground states, problem after problem, n bytes (0/1) each.
#[pyfunction]
#[pyo3(text_signature = "(q, offsets, k, max_states, max_subsets, num_threads)")]
fn exact_ground_states_batch<'py>(
    py: Python<'py>,
    q: &PyAny,
    offsets: &PyAny,
    k: Option<usize>,
    max_states: usize,
    max_subsets: u64,
    num_threads: usize,
) -> PyResult<(Vec<f64>, Vec<u64>, Vec<usize>, Vec<u64>, &'py PyBytes)> {
    let (q, qs) = read::<f64>(py, q, "Q", "float64", &[None, None, None])?;
    let (b, n) = (qs[0], qs[1]);
    if qs[2] != n {
        return Err(super::errors::invalid(
            "Q",
            "square matrices",
            format!("shape {qs:?}"),
        ));
    }
    let (off, _) = read::<f64>(py, offsets, "offsets", "float64", &[Some(b)])?;
    let nn = n * n;
    let enums: Vec<Enumerator<'_>> = (0..b)
        .map(|p| {
            Enumerator::new(
                &q[p * nn..(p + 1) * nn],
                n,
                off[p],
                k,
                max_states,
                max_subsets,
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| to_py(py, e))?;
    // Cut the work so that Ctrl-C is checked every ~2^24 states: a large
    // problem is split into chunks of its prefix tasks, small problems are
    // grouped into chunks of problems.
    let leaves = match k {
        None => 1u64 << n.min(63),
        Some(k) => crate::core::exact::binomial(n, k),
    }
    .max(1);
    const CHUNK_STATES: u64 = 1 << 24;
    let mut results: Vec<GroundStates> = Vec::with_capacity(b);
    if leaves >= CHUNK_STATES / 4 {
        for e in &enums {
            let per_task = (leaves / e.num_tasks().max(1) as u64).max(1);
            let chunk = ((CHUNK_STATES / per_task) as usize).max(1);
            let mut acc: Option<GroundStates> = None;
            let mut start = 0;
            while start < e.num_tasks() {
                let end = (start + chunk).min(e.num_tasks());
                let part = py.allow_threads(|| parallel::run(num_threads, || e.run(start, end)));
                match acc.as_mut() {
                    None => acc = Some(part),
                    Some(a) => e.merge(a, part),
                }
                py.check_signals()?;
                start = end;
            }
            results.push(e.finish(acc.unwrap_or_else(|| e.run(0, 0))));
        }
    } else {
        use rayon::prelude::*;
        let chunk = ((CHUNK_STATES / leaves) as usize).clamp(1, 4096);
        for lo in (0..b).step_by(chunk) {
            let hi = (lo + chunk).min(b);
            let small = (hi - lo) as u64 * leaves <= 1 << 12;
            let part: Vec<GroundStates> = super::release(py, num_threads, small, || {
                if small {
                    enums[lo..hi].iter().map(|e| e.run_sequential()).collect()
                } else {
                    enums[lo..hi]
                        .par_iter()
                        .map(|e| e.run_sequential())
                        .collect()
                }
            });
            results.extend(part);
            py.check_signals()?;
        }
    }
    let energies = results.iter().map(|r| r.energy).collect();
    let counts = results.iter().map(|r| r.count).collect();
    let stored = results.iter().map(|r| r.num_stored()).collect();
    let visited = results.iter().map(|r| r.visited).collect();
    let mut bytes = Vec::new();
    for r in &results {
        bytes.extend_from_slice(&r.states);
    }
    Ok((energies, counts, stored, visited, PyBytes::new(py, &bytes)))
}

pub fn register(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(exact_ground_states_batch, m)?)?;
    Ok(())
}

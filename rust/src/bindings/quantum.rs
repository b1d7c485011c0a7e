//! Bindings of `core::quantum`: exact statevector anneals, spectra and ground
//! manifolds for lists of QUBO problems (each its own size `d`).
//!
//! Inputs are copied under the GIL; the kernels run with the GIL released,
//! in parallel over problems (small ones) or inside one state (large ones).
//! Anneals are interruptible inside a task: while the kernel runs, this
//! thread checks for Ctrl-C every 50 ms and raises the kernel's cancel flag,
//! which the evolution polls before every stage of every step
//! (`bindings::interrupt`); a `KeyboardInterrupt` then arrives within one
//! step and nothing is written to the outputs. Spectra are checked for
//! Ctrl-C between problems (a large one: between its s-points is up to the
//! eigen-solver, see `core::quantum::Cancel`). Shot readouts draw from the
//! stream `(seed, task, 0)` of `core::rng`, so results do not depend on the
//! number of threads.

use pyo3::prelude::*;
use pyo3::wrap_pyfunction;
use rand::Rng;
use rayon::prelude::*;

use super::buffers::{read, View};
use super::errors::{invalid, to_py};
use super::interrupt::run_interruptible;
use crate::core::quantum::lanczos::{lowest_levels_in, LanczosOptions, Workspace};
use crate::core::quantum::statevector::{self, Evolved, Integrator, StepMode, TfHamiltonian, TfSystem};
use crate::core::quantum::xy::{Graph, XyHamiltonian, XySystem};
use crate::core::quantum::{check_qubits, diagonal_energies, ground_manifold, Cancel, Schedule};
use crate::core::rng;
use crate::core::error::CoreError;

/// Largest XY subspace (states).
const MAX_XY_DIM: usize = 1 << 22;

struct Problem {
    n: usize,
    energies: Vec<f64>,
    xy: Option<XySystem>,
}

fn read_problems(py: Python<'_>, qs: &PyAny, offsets: Vec<f64>, max_qubits: usize) -> PyResult<Vec<(usize, Vec<f64>, f64)>> {
    let list: Vec<&PyAny> = qs.extract()?;
    if list.len() != offsets.len() {
        return Err(invalid("offsets", &format!("{} values (one per problem)", list.len()), offsets.len()));
    }
    let mut out = Vec::with_capacity(list.len());
    for (obj, off) in list.into_iter().zip(offsets) {
        let (q, shape) = read::<f64>(py, obj, "Q", "float64", &[None, None])?;
        if shape[0] != shape[1] {
            return Err(invalid("Q", "square matrices", format!("shape {shape:?}")));
        }
        if shape[0] == 0 {
            return Err(invalid("Q", "at least one variable", "shape (0, 0)"));
        }
        check_qubits(shape[0], max_qubits).map_err(|e| to_py(py, e))?;
        out.push((shape[0], q, off));
    }
    Ok(out)
}

fn schedule(py: Python<'_>, s: &PyAny, a: &PyAny, b: &PyAny) -> PyResult<Schedule> {
    let (s, _) = read::<f64>(py, s, "schedule s", "float64", &[None])?;
    let (a, _) = read::<f64>(py, a, "schedule A", "float64", &[None])?;
    let (b, _) = read::<f64>(py, b, "schedule B", "float64", &[None])?;
    Schedule::new(s, a, b).map_err(|e| to_py(py, e))
}

fn prepare(raw: Vec<(usize, Vec<f64>, f64)>, xy: Option<(usize, Graph)>, driver_scales: &[f64], num_threads: usize, py: Python<'_>) -> PyResult<Vec<Problem>> {
    let built: Vec<Result<Problem, crate::core::error::CoreError>> = py.allow_threads(|| {
        crate::core::parallel::run(num_threads, || {
            raw.into_par_iter()
                .zip(driver_scales.par_iter())
                .map(|((n, q, off), &scale)| {
                    let energies = diagonal_energies(&q, n, off);
                    let xy = match xy {
                        None => None,
                        Some((k, graph)) => {
                            let e = &energies;
                            Some(XySystem::new(n, k, graph, scale, MAX_XY_DIM, |x| e[x as usize])?)
                        }
                    };
                    Ok(Problem { n, energies, xy })
                })
                .collect()
        })
    });
    built.into_iter().map(|r| r.map_err(|e| to_py(py, e))).collect()
}

fn graph(name: &str) -> PyResult<Graph> {
    match name {
        "complete" => Ok(Graph::Complete),
        "ring" => Ok(Graph::Ring),
        other => Err(invalid("graph", "'complete' or 'ring'", format!("{other:?}"))),
    }
}

/// Per-task outcome returned to Python.
type Outcome = (f64, f64, usize, f64, f64, bool, usize, f64, usize, bool);

fn readout(p: &Problem, ev: &Evolved, gs_tol: f64, shots: usize, seed: u64, task: u64) -> Outcome {
    let (energies, index): (Vec<f64>, Option<&[u64]>) = match &p.xy {
        None => (p.energies.clone(), None),
        Some(sys) => (sys.energies.clone(), Some(&sys.basis)),
    };
    let _ = index;
    let (e0, manifold) = ground_manifold(&energies, gs_tol);
    let probs = statevector::probabilities(&ev.re, &ev.im);
    let weight: f64 = manifold.iter().map(|&i| probs[i]).sum();
    let lowest = manifold.first().map(|&i| probs[i]).unwrap_or(0.0);
    let (mut best, mut success) = (f64::INFINITY, false);
    if shots > 0 {
        let mut cum = Vec::with_capacity(probs.len());
        let mut acc = 0.0;
        for &q in &probs {
            acc += q;
            cum.push(acc);
        }
        let mut r = rng::stream(seed, task, 0);
        for _ in 0..shots {
            let u: f64 = r.gen::<f64>() * acc;
            let i = cum.partition_point(|&c| c <= u).min(probs.len() - 1);
            if energies[i] < best {
                best = energies[i];
            }
        }
        success = best <= e0 + gs_tol;
    }
    (weight, lowest, manifold.len(), e0, best, success, ev.steps, ev.error_estimate, ev.total_steps, ev.converged)
}

#[allow(clippy::too_many_arguments)]
fn run_one(p: &Problem, sched: &Schedule, t: f64, integ: Integrator, mode: StepMode, scale: f64, cancel: &Cancel) -> Result<Evolved, crate::core::error::CoreError> {
    match &p.xy {
        None => {
            let sys = TfSystem { energies: &p.energies, n: p.n, driver_scale: scale };
            statevector::anneal_cancellable(&sys, sched, t, integ, mode, cancel)
        }
        Some(sys) => sys.anneal_cancellable(sched, t, mode, cancel),
    }
}

/// `f(cancel)` on the pool with the GIL released, Ctrl-C raising `cancel`.
fn interruptible<R: Send>(py: Python<'_>, threads: usize, f: impl FnOnce(&Cancel) -> R + Send) -> PyResult<R> {
    let cancel = Cancel::new();
    run_interruptible(py, threads, &cancel, Cancel::cancel, f)
}

fn mode_of(fixed_steps: Option<usize>, tol: f64, initial_steps: usize, max_steps: usize) -> StepMode {
    match fixed_steps {
        Some(steps) => StepMode::Fixed { steps },
        None => StepMode::Adaptive { tol, initial_steps, max_steps },
    }
}

/// qa_anneal_batch(qs, offsets, driver_scales, s, a, b, tasks_problem, tasks_t, tasks_shots,
///     integrator, fixed_steps, tol, initial_steps, max_steps, gs_tol, seed, xy_k, xy_graph,
///     max_qubits, num_threads) -> list of (weight_ground, overlap_lowest, ground_count, e0,
///     shot_best_energy, shot_success, steps, error_estimate, total_steps, converged)
///
/// Anneals task t = (problem tasks_problem[t], time tasks_t[t]) from the driver's ground state.
/// fixed_steps[t] None selects the adaptive mode. With xy_k, the XY mixer in the weight-k subspace.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn qa_anneal_batch(
    py: Python<'_>,
    qs: &PyAny,
    offsets: Vec<f64>,
    driver_scales: Vec<f64>,
    s: &PyAny,
    a: &PyAny,
    b: &PyAny,
    tasks_problem: Vec<usize>,
    tasks_t: Vec<f64>,
    tasks_shots: Vec<usize>,
    fixed_steps: Vec<Option<usize>>,
    integrator: &str,
    tol: f64,
    initial_steps: usize,
    max_steps: usize,
    gs_tol: f64,
    seed: u64,
    xy_k: Option<usize>,
    xy_graph: &str,
    max_qubits: usize,
    num_threads: usize,
) -> PyResult<Vec<Outcome>> {
    let sched = schedule(py, s, a, b)?;
    let integ = Integrator::from_name(integrator).map_err(|e| to_py(py, e))?;
    let raw = read_problems(py, qs, offsets, max_qubits)?;
    if driver_scales.len() != raw.len() {
        return Err(invalid("driver_scales", &format!("{} values", raw.len()), driver_scales.len()));
    }
    let nt = tasks_problem.len();
    if tasks_t.len() != nt || tasks_shots.len() != nt || fixed_steps.len() != nt {
        return Err(invalid("tasks", "equal lengths", format!("{nt}, {}, {}, {}", tasks_t.len(), tasks_shots.len(), fixed_steps.len())));
    }
    if let Some(&bad) = tasks_problem.iter().find(|&&p| p >= raw.len()) {
        return Err(invalid("tasks_problem", &format!("indices below {}", raw.len()), bad));
    }
    let xy = match xy_k {
        None => None,
        Some(k) => Some((k, graph(xy_graph)?)),
    };
    let problems = prepare(raw, xy, &driver_scales, num_threads, py)?;
    // large states one at a time (parallel inside), small ones in parallel groups
    let large = |p: &Problem| p.xy.as_ref().map_or(1usize << p.n, |x| x.dim()) >= crate::core::quantum::lanczos::PAR_MIN;
    let mut results: Vec<Option<Result<Outcome, crate::core::error::CoreError>>> = (0..nt).map(|_| None).collect();
    let task = |t: usize, cancel: &Cancel| -> Result<Outcome, crate::core::error::CoreError> {
        let p = &problems[tasks_problem[t]];
        let mode = mode_of(fixed_steps[t], tol, initial_steps, max_steps);
        let ev = run_one(p, &sched, tasks_t[t], integ, mode, driver_scales[tasks_problem[t]], cancel)?;
        Ok(readout(p, &ev, gs_tol, tasks_shots[t], seed, t as u64))
    };
    let (big, small): (Vec<usize>, Vec<usize>) = (0..nt).partition(|&t| large(&problems[tasks_problem[t]]));
    for &t in &big {
        let r = interruptible(py, num_threads, |cancel| task(t, cancel))?;
        results[t] = Some(r);
        py.check_signals()?;
    }
    for group in small.chunks(256) {
        let part: Vec<_> = interruptible(py, num_threads, |cancel| group.par_iter().map(|&t| task(t, cancel)).collect())?;
        for (&t, r) in group.iter().zip(part) {
            results[t] = Some(r);
        }
        py.check_signals()?;
    }
    results.into_iter().map(|r| r.expect("every task ran").map_err(|e| to_py(py, e))).collect()
}

/// qa_anneal_state(q, offset, driver_scale, s, a, b, T, fixed_steps, integrator, tol,
///     initial_steps, max_steps, xy_k, xy_graph, max_qubits, gs_tol, shots, seed, out_re, out_im,
///     num_threads) -> the outcome tuple of qa_anneal_batch
///
/// One anneal writing the final state into out_re / out_im (2^d values, or C(d, k) with xy_k);
/// the readout is that of task 0 of qa_anneal_batch with the same seed.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn qa_anneal_state(
    py: Python<'_>,
    q: &PyAny,
    offset: f64,
    driver_scale: f64,
    s: &PyAny,
    a: &PyAny,
    b: &PyAny,
    t_total: f64,
    fixed_steps: Option<usize>,
    integrator: &str,
    tol: f64,
    initial_steps: usize,
    max_steps: usize,
    xy_k: Option<usize>,
    xy_graph: &str,
    max_qubits: usize,
    gs_tol: f64,
    shots: usize,
    seed: u64,
    out_re: &PyAny,
    out_im: &PyAny,
    num_threads: usize,
) -> PyResult<Outcome> {
    let sched = schedule(py, s, a, b)?;
    let integ = Integrator::from_name(integrator).map_err(|e| to_py(py, e))?;
    let list = pyo3::types::PyList::new(py, [q]);
    let raw = read_problems(py, list, vec![offset], max_qubits)?;
    let xy = match xy_k {
        None => None,
        Some(k) => Some((k, graph(xy_graph)?)),
    };
    let problems = prepare(raw, xy, &[driver_scale], num_threads, py)?;
    let p = &problems[0];
    let dim = p.xy.as_ref().map_or(1usize << p.n, |x| x.dim());
    let mut vr = View::<f64>::new_mut(out_re, "out_re", "float64", &[dim])?;
    let mut vi = View::<f64>::new_mut(out_im, "out_im", "float64", &[dim])?;
    let mode = mode_of(fixed_steps, tol, initial_steps, max_steps);
    let ev = interruptible(py, num_threads, |cancel| run_one(p, &sched, t_total, integ, mode, driver_scale, cancel))?.map_err(|e| to_py(py, e))?;
    vr.as_mut_slice().copy_from_slice(&ev.re);
    vi.as_mut_slice().copy_from_slice(&ev.im);
    Ok(py.allow_threads(|| readout(p, &ev, gs_tol, shots, seed, 0)))
}

/// Two levels closer than this (relative to `max(1, |E0|)`) at one point make the next point
/// search them one at a time (see `LanczosOptions::joint`).
const JOINT_MIN_GAP: f64 = 1e-3;

/// Points of the s grid per segment of a small problem's spectrum (see `qa_spectrum_batch`).
const SPECTRUM_SEGMENT_POINTS: usize = 16;
/// At most this many segments (the threads a single spectrum can use).
const MAX_SPECTRUM_SEGMENTS: usize = 8;
/// States up to this size are segmented (each running segment holds a Krylov basis of up to
/// `max_krylov` vectors: 40 x 2^17 x 8 bytes = 42 MB by default); larger ones sweep the grid once, the
/// vector work parallel inside.
const MAX_SEGMENTED_DIM: usize = 1 << 17;
/// (problem, first point, values, (matvecs, converged, max residual)) of one segment.
type Segment = (usize, usize, Vec<f64>, (usize, bool, f64));

/// qa_spectrum_batch(qs, offsets, driver_scales, a_points, b_points, levels, tol, max_krylov,
///     xy_k, xy_graph, max_qubits, out, num_threads) -> list of (matvecs, converged, max_residual)
///
/// The `levels` lowest eigenvalues of a(s) H_D + b(s) H_P at every point, warm-started along
/// the points (for a small state: along each of up to 8 segments of at least 16 points, run in
/// parallel); out has shape (problems, points, levels). Ctrl-C is checked before every point.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn qa_spectrum_batch(
    py: Python<'_>,
    qs: &PyAny,
    offsets: Vec<f64>,
    driver_scales: Vec<f64>,
    a_points: Vec<f64>,
    b_points: Vec<f64>,
    levels: usize,
    tol: f64,
    max_krylov: usize,
    xy_k: Option<usize>,
    xy_graph: &str,
    max_qubits: usize,
    out: &PyAny,
    num_threads: usize,
) -> PyResult<Vec<(usize, bool, f64)>> {
    let raw = read_problems(py, qs, offsets, max_qubits)?;
    if driver_scales.len() != raw.len() {
        return Err(invalid("driver_scales", &format!("{} values", raw.len()), driver_scales.len()));
    }
    if a_points.len() != b_points.len() || a_points.is_empty() {
        return Err(invalid("s_points", "at least one point with A and B", a_points.len()));
    }
    if !(tol > 0.0) || levels == 0 {
        return Err(invalid("tol, levels", "tol > 0 and levels >= 1", format!("{tol}, {levels}")));
    }
    let xy = match xy_k {
        None => None,
        Some(k) => Some((k, graph(xy_graph)?)),
    };
    let problems = prepare(raw, xy, &driver_scales, num_threads, py)?;
    let np = problems.len();
    let npts = a_points.len();
    let mut view = View::<f64>::new_mut(out, "out", "float64", &[np, npts, levels])?;
    let opts = LanczosOptions { tol, max_krylov: max_krylov.max(4), ..Default::default() };
    // The points lo..hi of problem i, each warm-started from the one before (the first cold);
    // Ctrl-C is checked before every point.
    let run = |i: usize, (lo, hi): (usize, usize), cancel: &Cancel| -> Result<Segment, CoreError> {
        let p = &problems[i];
        let scale = driver_scales[i];
        let mut vals = Vec::with_capacity((hi - lo) * levels);
        let mut starts: Vec<Vec<f64>> = Vec::new();
        let (mut mv, mut ok, mut worst) = (0usize, true, 0.0f64);
        let mut ws = Workspace::new();
        let mut joint = false;
        for (&a, &b) in a_points[lo..hi].iter().zip(&b_points[lo..hi]) {
            cancel.check()?;
            let lv = match &p.xy {
                None => {
                    let sys = TfSystem { energies: &p.energies, n: p.n, driver_scale: scale };
                    lowest_levels_in(&TfHamiltonian { sys: &sys, a, b }, levels, &starts, LanczosOptions { joint, ..opts }, &mut ws)
                }
                Some(x) => lowest_levels_in(&XyHamiltonian { sys: x, a, b }, levels, &starts, LanczosOptions { joint, ..opts }, &mut ws),
            };
            // the next point solves both levels in one Krylov space unless these two were
            // close (a near-degenerate pair needs the one-level-at-a-time search)
            joint = levels == 2
                && lv.converged
                && lv.values.len() == 2
                && lv.values[1] - lv.values[0] > JOINT_MIN_GAP * lv.values[0].abs().max(1.0);
            mv += lv.matvecs;
            ok &= lv.converged;
            worst = lv.residuals.iter().cloned().fold(worst, f64::max);
            for l in 0..levels {
                vals.push(*lv.values.get(l).unwrap_or(&f64::NAN));
            }
            starts = lv.vectors;
        }
        Ok((i, lo, vals, (mv, ok, worst)))
    };
    let large = |p: &Problem| p.xy.as_ref().map_or(1usize << p.n, |x| x.dim()) > MAX_SEGMENTED_DIM;
    let mut stats = vec![(0usize, true, 0.0f64); np];
    let out_slice = view.as_mut_slice();
    let mut store = |(i, lo, v, (mv, ok, worst)): Segment| {
        out_slice[(i * npts + lo) * levels..(i * npts + lo) * levels + v.len()].copy_from_slice(&v);
        let st = &mut stats[i];
        *st = (st.0 + mv, st.1 && ok, st.2.max(worst));
    };
    let (big, small): (Vec<usize>, Vec<usize>) = (0..np).partition(|&i| large(&problems[i]));
    // A large state: the whole grid in one warm-started sweep, the vector work parallel inside.
    for &i in &big {
        let seg = interruptible(py, num_threads, |cancel| run(i, (0, npts), cancel))?.map_err(|e| to_py(py, e))?;
        store(seg);
    }
    // Smaller states: the grid cut into segments (a number fixed by the grid, so results do not
    // depend on the thread count), problems and segments in parallel: a single problem's
    // spectrum uses every thread.
    let segments = (npts / SPECTRUM_SEGMENT_POINTS).clamp(1, MAX_SPECTRUM_SEGMENTS);
    let bounds: Vec<(usize, usize)> = (0..segments).map(|k| (k * npts / segments, (k + 1) * npts / segments)).collect();
    for group in small.chunks(64) {
        let tasks: Vec<(usize, (usize, usize))> = group.iter().flat_map(|&i| bounds.iter().map(move |&b| (i, b))).collect();
        let part: Vec<_> = interruptible(py, num_threads, |cancel| {
            tasks.par_iter().map(|&(i, b)| run(i, b, cancel)).collect::<Vec<_>>()
        })?;
        for seg in part {
            store(seg.map_err(|e| to_py(py, e))?);
        }
    }
    Ok(stats)
}

/// qa_energies(q, offset, max_qubits, out) -> None: the 2^d diagonal energies (bit i of the index = variable i).
#[pyfunction]
fn qa_energies(py: Python<'_>, q: &PyAny, offset: f64, max_qubits: usize, out: &PyAny) -> PyResult<()> {
    let list = pyo3::types::PyList::new(py, [q]);
    let raw = read_problems(py, list, vec![offset], max_qubits)?;
    let (n, q, off) = &raw[0];
    let mut view = View::<f64>::new_mut(out, "out", "float64", &[1usize << n])?;
    let e = py.allow_threads(|| diagonal_energies(q, *n, *off));
    view.as_mut_slice().copy_from_slice(&e);
    Ok(())
}

/// qa_xy_basis(d, k) -> list of the weight-k basis indices in the order of the XY subspace.
#[pyfunction]
fn qa_xy_basis(py: Python<'_>, d: usize, k: usize) -> PyResult<Vec<u64>> {
    let sys = XySystem::new(d, k, Graph::Ring, 1.0, MAX_XY_DIM, |_| 0.0).map_err(|e| to_py(py, e))?;
    Ok(sys.basis)
}

pub fn register(_py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add("QA_MAX_QUBITS", crate::core::quantum::MAX_QUBITS)?;
    m.add("QA_BYTES_PER_AMPLITUDE", crate::core::quantum::BYTES_PER_AMPLITUDE)?;
    m.add("QA_MAX_XY_DIM", MAX_XY_DIM)?;
    m.add_function(wrap_pyfunction!(qa_anneal_batch, m)?)?;
    m.add_function(wrap_pyfunction!(qa_anneal_state, m)?)?;
    m.add_function(wrap_pyfunction!(qa_spectrum_batch, m)?)?;
    m.add_function(wrap_pyfunction!(qa_energies, m)?)?;
    m.add_function(wrap_pyfunction!(qa_xy_basis, m)?)?;
    Ok(())
}

//! Ctrl-C during one long kernel call: the kernel runs as a job of qfsel's
//! pool with the GIL released while the calling thread wakes every
//! [`POLL_MS`] ms to run Python's signal handlers (`PyErr_CheckSignals`); on
//! an interrupt it raises the kernel's cancel flag, waits for the kernel to
//! stop (it polls the flag every step, well under 0.2 s), drops its result
//! and raises the `KeyboardInterrupt`.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::core::parallel;

/// How often the calling thread checks for Ctrl-C.
pub const POLL_MS: u64 = 50;

/// Run `f(cancel)` as a job of the pool of `threads`, with the GIL
/// released; check for Ctrl-C every [`POLL_MS`] ms and call `raise(cancel)`
/// on one, then wait for `f` to return and raise the interrupt. (A job of the
/// pool, not a thread of its own: spawning one cost ~100 us per call.)
pub fn run_interruptible<R: Send, C: Sync>(
    py: Python<'_>,
    threads: usize,
    cancel: &C,
    raise: impl Fn(&C),
    f: impl FnOnce(&C) -> R + Send,
) -> PyResult<R> {
    if rayon::current_thread_index().is_some() {
        // Called on a rayon worker (not from Python's threads): waiting there
        // for a job of the same pool could deadlock it; run inline instead.
        return Ok(py.allow_threads(|| parallel::run(threads, || f(cancel))));
    }
    let (tx, rx) = mpsc::channel::<R>();
    parallel::pool(threads).in_place_scope(|scope| {
        scope.spawn(move |_| {
            let _ = tx.send(f(cancel));
        });
        let mut rx = rx;
        loop {
            let (back, got) = py.allow_threads(move || {
                let got = rx.recv_timeout(Duration::from_millis(POLL_MS));
                (rx, got)
            });
            rx = back;
            match got {
                Ok(r) => return Ok(r),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        raise(cancel);
                        let _ = py.allow_threads(move || rx.recv());
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("qfsel kernel job ended without a result"))
                }
            }
        }
    })
}

//! qfsel's native core.
//!
//! * [`core`] holds the kernels in plain Rust (no Python anywhere below it), so
//!   `cargo test` and Rust benchmarks run without an interpreter.
//! * `bindings` (behind the `python` feature) is the thin pyo3 adapter that
//!   builds the private extension module `qfsel._core`.

pub mod core;

#[cfg(feature = "python")]
mod bindings;

#[cfg(feature = "python")]
use pyo3::prelude::*;

/// The extension module `qfsel._core`; registration only.
#[cfg(feature = "python")]
#[pymodule]
fn _core(py: Python<'_>, m: &PyModule) -> PyResult<()> {
    bindings::register(py, m)
}

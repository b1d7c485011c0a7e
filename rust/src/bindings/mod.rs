//! The pyo3 adapter: the only code that knows Python.
//!
//! Every binding follows "extract, then release": check and copy the input
//! buffers while holding the GIL, run the kernel with the GIL released, then
//! write into output arrays that the Python caller allocated. Long runs are
//! cut into chunks with `check_signals` between them so Ctrl-C is prompt.

use pyo3::prelude::*;

pub mod buffers;
pub mod errors;
mod exact;
mod interrupt;
mod qubo;
mod quantum;
mod sa;
mod sqa;
mod tabu;

/// Run `f` with the GIL released inside a pool of `num_threads`, or, for
/// `small` work, directly on this thread (a release and a pool hand-off cost
/// more than small work; the kernels run sequentially below the same size).
pub fn release<R: Send>(py: Python<'_>, num_threads: usize, small: bool, f: impl FnOnce() -> R + Send) -> R {
    if small {
        f()
    } else {
        py.allow_threads(|| crate::core::parallel::run(num_threads, f))
    }
}

pub fn register(py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add("__doc__", "qfsel's private Rust core. Import `qfsel`, not this module.")?;
    m.add("MAX_UNCONSTRAINED_VARIABLES", crate::core::exact::MAX_UNCONSTRAINED_VARIABLES)?;
    m.add("DEFAULT_MAX_SUBSETS", crate::core::exact::DEFAULT_MAX_SUBSETS)?;
    qubo::register(py, m)?;
    exact::register(py, m)?;
    sa::register(py, m)?;
    sqa::register(py, m)?;
    tabu::register(py, m)?;
    quantum::register(py, m)?;
    Ok(())
}

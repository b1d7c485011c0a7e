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
mod qubo;
mod sa;
mod tabu;

pub fn register(py: Python<'_>, m: &PyModule) -> PyResult<()> {
    m.add("__doc__", "qfsel's private Rust core. Import `qfsel`, not this module.")?;
    m.add("MAX_UNCONSTRAINED_VARIABLES", crate::core::exact::MAX_UNCONSTRAINED_VARIABLES)?;
    m.add("DEFAULT_MAX_SUBSETS", crate::core::exact::DEFAULT_MAX_SUBSETS)?;
    qubo::register(py, m)?;
    exact::register(py, m)?;
    sa::register(py, m)?;
    tabu::register(py, m)?;
    Ok(())
}

//! (placeholder, filled by the sampler work)

use pyo3::prelude::*;

pub fn register(_py: Python<'_>, _m: &PyModule) -> PyResult<()> {
    Ok(())
}

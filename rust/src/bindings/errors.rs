//! Mapping of kernel errors to Python exceptions, in one place.

use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;

use crate::core::error::CoreError;

/// `CoreError` as the matching Python exception: `ValueError` for invalid
/// arguments, `qfsel.exceptions.ProblemTooLargeError` (a `ValueError`) for
/// problems over a documented limit, `KeyboardInterrupt` for a cancelled kernel.
pub fn to_py(py: Python<'_>, err: CoreError) -> PyErr {
    match err {
        CoreError::InvalidArgument { .. } => PyValueError::new_err(err.to_string()),
        CoreError::TooLarge { message } => {
            let cls = py
                .import("qfsel.exceptions")
                .and_then(|m| m.getattr("ProblemTooLargeError"));
            match cls.and_then(|c| c.call1((message.clone(),))) {
                Ok(instance) => PyErr::from_value(instance),
                Err(_) => PyValueError::new_err(message),
            }
        }
        CoreError::Cancelled => PyKeyboardInterrupt::new_err("interrupted"),
    }
}

/// `ValueError` naming the argument, what was expected and what arrived.
pub fn invalid(name: &str, expected: &str, got: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{name}: expected {expected}, got {got}"))
}

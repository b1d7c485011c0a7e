//! The one error type of the kernels; the bindings map it to Python exceptions.

use std::fmt;

/// Errors a kernel can report instead of panicking.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// A value or shape the kernel cannot work with (maps to `ValueError`).
    InvalidArgument { name: &'static str, message: String },
    /// The problem is larger than the kernel's documented limit (maps to
    /// `qfsel.ProblemTooLargeError`, a `ValueError`).
    TooLarge { message: String },
    /// The caller raised the kernel's cancel flag (Ctrl-C); the bindings
    /// raise the interrupt itself, so this maps to `KeyboardInterrupt`.
    Cancelled,
}

impl CoreError {
    pub fn invalid(name: &'static str, message: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            name,
            message: message.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidArgument { name, message } => write!(f, "{name}: {message}"),
            CoreError::TooLarge { message } => write!(f, "{message}"),
            CoreError::Cancelled => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;

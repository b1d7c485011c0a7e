//! Pure-Rust kernels: QUBO construction, energies, exact enumeration,
//! samplers, random streams and the thread-pool helper.

pub mod error;
pub mod exact;
pub mod greedy;
pub mod quantum;
pub mod parallel;
pub mod qubo;
pub mod rng;
pub mod sa;
pub mod sqa;
pub mod tabu;

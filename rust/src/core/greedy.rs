//! (placeholder, filled by the sampler work)

//! Implementations of the contracts. `memory` is the embedded default and what tests use.

pub mod memory;

//! Implementations of the contracts. `memory` is the embedded default and what tests use;
//! `redis`, `kafka` and `postgres` make the production stack.

pub mod kafka;
pub mod memory;
pub mod postgres;
pub mod redis;

//! Implementations of the contracts. `memory` is the embedded default and what tests use;
//! `redis`, `kafka` and `postgres` make the production stack, with `cached` in front of the
//! catalogue.

pub mod cached;
pub mod kafka;
pub mod memory;
pub mod postgres;
pub mod redis;

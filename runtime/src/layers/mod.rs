//! The tower layers every function shares, one a file. Request ids, tracing, load shedding,
//! the concurrency limit and the timeout come from tower and tower-http; these are our own.

pub mod access_log;
pub mod auth;
pub mod cors;
pub mod errors;
pub mod metrics;

//! What every function and the runtime share: the domain, the contracts the functions
//! call (traits), their adapters, authentication and metrics.

pub mod adapters;
pub mod auth;
pub mod clock;
pub mod context;
pub mod contracts;
pub mod domain;
pub mod error;
pub mod metrics;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use context::Context;
pub use error::{ApiError, ErrorKind};

//! Every failure answered as JSON: a function's `ApiError`, and the runtime's own refusals
//! (load shedding, timeout).

use domain::{ApiError, ErrorKind};

use crate::http::response::{self, Response};

/// The answer to an error. A function's errors come here straight from its handler, not
/// boxed: no allocation, downcast or copy for an answer as common as `sold_out`.
pub fn answer(err: &ApiError) -> Response {
    if err.kind == ErrorKind::Internal {
        tracing::error!(code = err.code, "internal error answered");
    }
    response::error(err)
}

/// Past `MAX_IN_FLIGHT`: refused at once rather than queued.
pub fn overloaded() -> ApiError {
    ApiError::new(
        ErrorKind::Unavailable,
        "overloaded",
        "too many requests in flight, retry shortly",
    )
    .retry_after(1)
}

/// Past `REQUEST_TIMEOUT`.
pub fn timed_out() -> ApiError {
    ApiError::new(
        ErrorKind::Unavailable,
        "timeout",
        "the request took too long, retry shortly",
    )
    .retry_after(1)
}

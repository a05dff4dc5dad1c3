//! The one error shape every function returns to its caller, and the failure of a store.
//!
//! Domain code says what kind of failure happened; the runtime alone turns the kind into a
//! transport status (HTTP here), so no function knows about status codes. The contracts map
//! their own errors to this shape (`contracts.rs`); this module knows none of them.

use std::borrow::Cow;

/// What went wrong, in terms a transport can map to its own status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Gone,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    Unavailable,
    Internal,
}

/// Serialised as `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Stable, machine-readable (`sold_out`, `invalid_field`, ...).
    pub code: &'static str,
    /// For people; never contains secrets.
    pub message: Cow<'static, str>,
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the caller when to retry.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::BadRequest, "invalid_field", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }

    /// A failure of our own (a store is down, ...). The detail goes to the log, not the caller.
    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "internal", "internal error")
    }

    pub fn to_json(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(serde::Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
            },
        };
        // Two string fields: serialisation cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A store (memory, Redis, PostgreSQL, ...) could not do its work.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The detail is for operators; the caller learns only that it may retry.
        tracing::error!(error = %err, "store failure");
        ApiError::new(
            ErrorKind::Unavailable,
            "unavailable",
            "a backing store is unavailable, retry later",
        )
        .retry_after(1)
    }
}

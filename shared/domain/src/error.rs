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

    /// `{"error":{"code":...,"message":...}}`, written straight into one buffer of the right
    /// size: every refusal (a sold-out herd) makes one.
    pub fn to_json(&self) -> Vec<u8> {
        const OPEN: &[u8] = br#"{"error":{"code":"#;
        const BETWEEN: &[u8] = br#","message":"#;
        const CLOSE: &[u8] = b"}}";
        let quoted = |text: &str| text.len() + 2;
        let size = OPEN.len() + quoted(self.code) + BETWEEN.len() + quoted(&self.message);
        let mut body = Vec::with_capacity(size + CLOSE.len());
        body.extend_from_slice(OPEN);
        // A string always serialises (escaped as needed), and a Vec never fails to take it.
        let _ = serde_json::to_writer(&mut body, self.code);
        body.extend_from_slice(BETWEEN);
        let _ = serde_json::to_writer(&mut body, &*self.message);
        body.extend_from_slice(CLOSE);
        body
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_body_is_json_with_code_and_message() {
        let err = ApiError::new(ErrorKind::Conflict, "sold_out", "not \"enough\" left\n");
        let body: serde_json::Value = serde_json::from_slice(&err.to_json()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "sold_out", "message": "not \"enough\" left\n"}})
        );
        assert_eq!(
            ApiError::new(ErrorKind::Conflict, "sold_out", "none left").to_json(),
            br#"{"error":{"code":"sold_out","message":"none left"}}"#
        );
    }
}

//! Reading what a function needs out of a request: the JSON body, the path id, the caller.

use bytes::Bytes;
use domain::Caller;
use domain::{ApiError, ErrorKind};
use std::time::Duration;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

pub type Request = http::Request<Incoming>;

/// How much of a refused body is read and dropped before answering 413, at most.
const DISCARD_MAX_BYTES: usize = 8 * 1024 * 1024;
/// And for how long.
const DISCARD_MAX_TIME: Duration = Duration::from_secs(5);

/// A request as the router hands it to a function's handler: with the verified caller (on
/// routes that need a token) and the route's `{id}` segment, passed along rather than put in
/// the request's extensions (a map allocated per request).
pub struct Call {
    pub request: Request,
    pub(crate) caller: Option<Caller>,
    pub(crate) id: Option<String>,
}

impl Call {
    /// The verified caller; taken, since nothing after the handler reads it.
    pub fn caller(&mut self) -> Result<Caller, ApiError> {
        self.caller.take().ok_or_else(ApiError::internal)
    }

    /// The `{id}` path segment, parsed.
    pub fn path_id<T>(&self, parse: fn(&str) -> Result<T, String>) -> Result<T, ApiError> {
        let raw = self.id.as_deref().ok_or_else(ApiError::internal)?;
        parse(raw).map_err(ApiError::bad_request)
    }
}

/// Decodes the body as JSON into `T`, whose parsers check every field.
pub async fn json_body<T: DeserializeOwned>(request: Request, limit: usize) -> Result<T, ApiError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            "payload_too_large",
            format!("the body must be at most {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let expects_continue = request.headers().contains_key(EXPECT);
    let mut body = request.into_body();
    if declared.is_some_and(|length| length > limit as u64) {
        // A client waiting for "100 Continue" has sent nothing yet: refuse it before it does.
        if !expects_continue {
            discard(body).await;
        }
        return Err(too_large());
    }
    // A small body comes in one frame, read as it is; only a longer one is copied together.
    let mut first = Bytes::new();
    let mut joined = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::new(
                ErrorKind::BadRequest,
                "malformed_body",
                "the body could not be read",
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if first.len() + joined.len() + data.len() > limit {
                discard(body).await;
                return Err(too_large());
            }
            if first.is_empty() && joined.is_empty() {
                first = data;
            } else {
                joined.extend_from_slice(&std::mem::take(&mut first));
                joined.extend_from_slice(&data);
            }
        }
    }
    let body = if joined.is_empty() {
        &first[..]
    } else {
        &joined[..]
    };
    serde_json::from_slice(body).map_err(|err| {
        let code = match err.classify() {
            serde_json::error::Category::Data => "invalid_field",
            _ => "malformed_json",
        };
        ApiError::new(ErrorKind::BadRequest, code, err.to_string())
    })
}

/// Reads and drops the rest of a refused body, within a bound (nginx's lingering close):
/// a client still sending then reads its 413 instead of a broken pipe. Past the bound the
/// connection closes with the rest unread, as before.
async fn discard(mut body: Incoming) {
    let drain = async {
        let mut left = DISCARD_MAX_BYTES;
        while let Some(Ok(frame)) = body.frame().await {
            let Some(data) = frame.data_ref() else {
                continue;
            };
            if data.len() >= left {
                return;
            }
            left -= data.len();
        }
    };
    let _ = tokio::time::timeout(DISCARD_MAX_TIME, drain).await;
}

//! Reading what a function needs out of a request: the JSON body, the path id, the caller.

use domain::Caller;
use domain::{ApiError, ErrorKind};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

pub type Request = http::Request<Incoming>;

/// The `{id}` segment of the matched route, put there by the router.
#[derive(Debug, Clone)]
pub struct PathId(pub String);

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
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let body = Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map_err(|err| {
            if err.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(
                    ErrorKind::BadRequest,
                    "malformed_body",
                    "the body could not be read",
                )
            }
        })?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|err| {
        let code = match err.classify() {
            serde_json::error::Category::Data => "invalid_field",
            _ => "malformed_json",
        };
        ApiError::new(ErrorKind::BadRequest, code, err.to_string())
    })
}

/// The `{id}` path segment, parsed.
pub fn path_id<T>(request: &Request, parse: fn(&str) -> Result<T, String>) -> Result<T, ApiError> {
    let PathId(raw) = request
        .extensions()
        .get::<PathId>()
        .ok_or_else(ApiError::internal)?;
    parse(raw).map_err(ApiError::bad_request)
}

/// The verified caller, put there by the auth layer on every route that needs one.
pub fn caller(request: &Request) -> Result<Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(ApiError::internal)
}

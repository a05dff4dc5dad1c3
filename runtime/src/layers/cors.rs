//! CORS for browser front ends, from tower-http: the origins of `CORS_ALLOWED_ORIGINS` (none
//! by default) may call every route; a preflight (OPTIONS) is answered for every path.
//! Without origins there is no CORS layer at all: it would only add `Vary` and
//! `Access-Control-Expose-Headers` to every answer, at a cost on every request.

use std::time::Duration;

use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::access_log::X_REQUEST_ID;

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for these origins; `None` for none.
pub fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("admission"),
            HeaderName::from_static("last-event-id"),
        ])
        // A front end reads when to retry, and the id to quote in a support request.
        .expose_headers([RETRY_AFTER, X_REQUEST_ID])
        .max_age(PREFLIGHT_MAX_AGE);
    Some(layer)
}

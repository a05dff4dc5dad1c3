//! One access line per request, from tower-http's `TraceLayer`: method, route template,
//! status, latency, error code, inside a `request{request_id}` span (so every line the
//! request logs carries its id). Refusals that say "retry" (load shed, timeout, not ready)
//! are warnings; other 5xx are errors; everything else is info.

use std::time::Duration;

use http::Method;
use http::header::{HeaderName, HeaderValue};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use uuid::Uuid;

/// Put in a response's extensions by the router: the route that answered it.
#[derive(Debug, Clone, Copy)]
pub struct RouteTemplate {
    pub method: &'static str,
    /// The route's template (`/reservations/{id}`), never the raw path: ids stay out of logs.
    pub path: &'static str,
}

/// Put in a response's extensions with every JSON error: its stable code.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// 503s a client is told to retry, and nothing is broken: a warning, not an error.
const RETRY_LATER: [&str; 4] = [
    "overloaded",
    "timeout",
    "shutting_down",
    "dependency_unavailable",
];

pub type AccessLogLayer =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), AccessLine, (), (), ()>;

pub fn access_log() -> AccessLogLayer {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(AccessLine)
        .on_body_chunk(())
        .on_eos(())
        // The access line already reports every 5xx, once, at its level.
        .on_failure(())
}

#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        let span = tracing::info_span!("request", request_id = tracing::field::Empty);
        // The id is looked up only for a span that is logged (not under RUST_LOG=warn).
        if !span.is_disabled() {
            let id = request
                .headers()
                .get(X_REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-");
            span.record("request_id", id);
        }
        span
    }
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Makes each request's `x-request-id`: a random UUID, as tower-http's `MakeRequestUuid`, but
/// written straight into the header rather than through `to_string` and a parse.
#[derive(Debug, Clone, Copy)]
pub struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let text = Uuid::new_v4().hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AccessLine;

impl<B> OnResponse<B> for AccessLine {
    fn on_response(self, response: &http::Response<B>, latency: Duration, _: &Span) {
        let route = response.extensions().get::<RouteTemplate>();
        let code = response.extensions().get::<ErrorCode>().map(|code| code.0);
        let status = response.status();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    target: "access",
                    method = route.map_or("-", |route| route.method),
                    route = route.map_or("-", |route| route.path),
                    status = status.as_u16(),
                    latency_ms,
                    code = code.unwrap_or("-"),
                )
            };
        }
        if !status.is_server_error() {
            line!(info);
        } else if code.is_some_and(|code| RETRY_LATER.contains(&code)) {
            line!(warn);
        } else {
            line!(error);
        }
    }
}

/// The method as a static label (see `metrics::method_label`), for requests no route took.
pub fn unrouted(method: &Method, path: &'static str) -> RouteTemplate {
    RouteTemplate {
        method: super::metrics::method_label(method),
        path,
    }
}

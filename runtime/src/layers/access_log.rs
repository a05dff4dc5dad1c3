//! The outermost service: each request gets its `x-request-id` (the caller's, or a new UUID),
//! runs inside a `request{request_id}` span (so every line it logs carries the id), and is
//! answered with the id and one access line: method, route template, status, latency, error
//! code. Refusals that say "retry" (load shed, timeout, not ready) are warnings; other 5xx
//! are errors; everything else is info. Written here rather than stacked from tower-http's
//! request-id and trace layers: one future instead of three, and no copy of the id into the
//! request (see docs/benchmarks.md).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use http::header::{HeaderName, HeaderValue};
use tower::Service;
use tracing::Instrument;
use uuid::Uuid;

use crate::http::request::Request;
use crate::http::response::Response;

/// Put in a response's extensions by the router, once: what the access line reports.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub route: RouteTemplate,
    /// The stable code of an error answer.
    pub code: Option<&'static str>,
}

/// The route that answered a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteTemplate {
    pub method: &'static str,
    /// The route's template (`/reservations/{id}`), never the raw path: ids stay out of logs.
    pub path: &'static str,
}

/// 503s a client is told to retry, and nothing is broken: a warning, not an error.
const RETRY_LATER: [&str; 4] = [
    "overloaded",
    "timeout",
    "shutting_down",
    "dependency_unavailable",
];

/// Serves `inner` with request ids and the access log.
#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S> AccessLog<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = match request.headers().get(X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => new_request_id(),
        };
        let span = tracing::info_span!("request", request_id = tracing::field::Empty);
        // The id is written only into a span that is logged (not under RUST_LOG=warn).
        if !span.is_disabled() {
            span.record("request_id", id.to_str().unwrap_or("-"));
        }
        let started = Instant::now();
        let answered = self.inner.call(request);
        let served = async move {
            let Ok(mut response) = answered.await;
            log_access(&response, started.elapsed());
            response.headers_mut().insert(X_REQUEST_ID, id);
            Ok(response)
        };
        Box::pin(served.instrument(span))
    }
}

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A random UUID, written straight into the header rather than through `to_string` and a parse.
fn new_request_id() -> HeaderValue {
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    let text = Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"))
}

fn log_access(response: &Response, latency: Duration) {
    let answered = response.extensions().get::<Answered>();
    let route = answered.map(|answered| answered.route);
    let code = answered.and_then(|answered| answered.code);
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

//! Counts and times every answered request, labelled with the function that answered it.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{Method, StatusCode};
use prometheus::{Histogram, IntCounter};
use telemetry::{HTTP_DURATION, HTTP_REQUESTS};
use tower::{Layer, Service};

use crate::http::request::Request;
use crate::http::response::Response;

#[derive(Clone)]
pub struct MetricsLayer {
    function: &'static str,
    duration: Histogram,
    answered: Arc<Answered>,
}

impl MetricsLayer {
    /// The metrics of `function`, served at `method`.
    pub fn new(function: &'static str, method: &Method) -> Self {
        Self {
            function,
            // Resolved once here rather than per request.
            duration: HTTP_DURATION.with_label_values(&[function]),
            answered: Arc::new(Answered::new(method_label(method))),
        }
    }
}

/// `http_requests_total` of one route, by status: each resolved the first time it is
/// answered, then counted without a label lookup (a hash and a lock) per request.
struct Answered {
    /// The route's method, the only one the router lets through.
    method: &'static str,
    /// Statuses 100 to 599.
    by_status: Box<[OnceLock<IntCounter>]>,
}

impl Answered {
    fn new(method: &'static str) -> Self {
        Self {
            method,
            by_status: (100..600).map(|_| OnceLock::new()).collect(),
        }
    }

    fn count(&self, function: &'static str, method: &'static str, status: StatusCode) {
        let resolve = || HTTP_REQUESTS.with_label_values(&[function, method, status.as_str()]);
        let slot = status
            .as_u16()
            .checked_sub(100)
            .and_then(|index| self.by_status.get(usize::from(index)));
        match slot {
            Some(slot) if method == self.method => slot.get_or_init(resolve).inc(),
            _ => resolve().inc(),
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Metrics<S> {
        Metrics {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Metrics<S> {
    inner: S,
    layer: MetricsLayer,
}

impl<S> Service<Request> for Metrics<S>
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
        let started = Instant::now();
        let method = method_label(request.method());
        let response = self.inner.call(request);
        let layer = self.layer.clone();
        Box::pin(async move {
            let response = response.await?;
            layer.duration.observe(started.elapsed().as_secs_f64());
            layer
                .answered
                .count(layer.function, method, response.status());
            Ok(response)
        })
    }
}

/// Known methods by name, anything else as "other", so clients can't mint label values.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

//! Counts and times every answered request, labelled with the function that answered it.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::Method;
use prometheus::Histogram;
use telemetry::{HTTP_DURATION, HTTP_REQUESTS};
use tower::{Layer, Service};

use crate::http::request::Request;
use crate::http::response::Response;

#[derive(Clone)]
pub struct MetricsLayer {
    function: &'static str,
    duration: Histogram,
}

impl MetricsLayer {
    pub fn new(function: &'static str) -> Self {
        Self {
            function,
            // Resolved once here rather than per request.
            duration: HTTP_DURATION.with_label_values(&[function]),
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
            HTTP_REQUESTS
                .with_label_values(&[layer.function, method, response.status().as_str()])
                .inc();
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

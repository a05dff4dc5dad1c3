//! Counts and times every answered request, labelled with the function that answered it.

use std::sync::OnceLock;
use std::time::Duration;

use http::{Method, StatusCode};
use prometheus::{Histogram, IntCounter};
use telemetry::{HTTP_DURATION, HTTP_REQUESTS};

/// The metrics of one route, resolved when the router is built rather than per request (a
/// label lookup is a hash and a lock).
pub struct RouteMetrics {
    function: &'static str,
    method: &'static str,
    duration: Histogram,
    /// `http_requests_total` by status 100 to 599, each resolved the first time it is answered.
    by_status: Box<[OnceLock<IntCounter>]>,
}

impl RouteMetrics {
    /// The metrics of `function`, served at `method`.
    pub fn new(function: &'static str, method: &Method) -> Self {
        Self {
            function,
            method: method_label(method),
            duration: HTTP_DURATION.with_label_values(&[function]),
            by_status: (100..600).map(|_| OnceLock::new()).collect(),
        }
    }

    /// One answered request.
    pub fn record(&self, status: StatusCode, took: Duration) {
        self.duration.observe(took.as_secs_f64());
        let resolve =
            || HTTP_REQUESTS.with_label_values(&[self.function, self.method, status.as_str()]);
        let slot = status
            .as_u16()
            .checked_sub(100)
            .and_then(|index| self.by_status.get(usize::from(index)));
        match slot {
            Some(slot) => slot.get_or_init(resolve).inc(),
            None => resolve().inc(),
        }
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

//! `GET /metrics`: every metric of the process in the Prometheus text format.

/// The Prometheus text exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn get_metrics() -> String {
    telemetry::render()
}

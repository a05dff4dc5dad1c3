#[tokio::test]
async fn renders_the_seed_metrics() {
    telemetry::RESERVATIONS.inc();
    telemetry::HTTP_REQUESTS
        .with_label_values(&["reserve", "POST", "201"])
        .inc();

    let text = get_metrics::get_metrics().await;

    assert!(text.contains("# TYPE reservation_total counter"));
    assert!(text.contains(r#"http_requests_total{function="reserve",method="POST",status="201"}"#));
}

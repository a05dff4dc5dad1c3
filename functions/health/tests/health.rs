/// The body load balancers and probes read: its shape is a contract.
#[tokio::test]
async fn answers_ok_with_the_build_version() {
    let health = serde_json::to_value(health::health().await).unwrap();
    assert_eq!(
        health,
        serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
    );
}

#[tokio::test]
async fn reports_ok() {
    assert_eq!(health::health().await.status, "ok");
}

//! CORS: an allowed origin gets its preflight answered on every route and may read the
//! answers; any other origin gets no CORS headers, and without CORS_ALLOWED_ORIGINS none does.

use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, settings, spawn_app, spawn_app_with};

const FRONT_END: &str = "http://127.0.0.1:5173";

/// An app that lets [`FRONT_END`] call it.
async fn spawn_for_front_end() -> TestApp {
    spawn_app_with(ticketd::Settings {
        cors_allowed_origins: vec![FRONT_END.parse().unwrap()],
        ..settings()
    })
    .await
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn an_allowed_origin_gets_preflight_on_every_route() {
    let app = spawn_for_front_end().await;
    for (method, path) in ticketd::documented_routes() {
        let path = path.replace("{id}", "0193a0c0-0000-7000-8000-000000000000");
        let response = preflight(&app, &path, FRONT_END, method.as_str()).await;
        assert_eq!(response.status(), StatusCode::OK, "OPTIONS {path}");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            Some(FRONT_END)
        );
        let methods = header(&response, "access-control-allow-methods").unwrap();
        assert!(methods.contains(method.as_str()), "{path}: {methods}");
        let headers = header(&response, "access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        for needed in ["authorization", "content-type", "idempotency-key"] {
            assert!(headers.contains(needed), "{path}: {headers}");
        }
    }

    // The answer itself carries the origin and lets the page read the request id.
    let event_id = app.event_with_floor(1, None).await;
    let answer = app
        .client
        .get(app.url(&format!("/events/{event_id}/availability")))
        .header("origin", FRONT_END)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(FRONT_END)
    );
    let exposed = header(&answer, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = spawn_for_front_end().await;
    let response = preflight(&app, "/reserve", "http://evil.example", "POST").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);

    // The default: no origin at all.
    let closed = spawn_app().await;
    let response = preflight(&closed, "/reserve", FRONT_END, "POST").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

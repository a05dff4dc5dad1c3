use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// (method, path, needs a token) for every operation of the document.
fn operations(document: &Value) -> BTreeSet<(String, String, bool)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            operations.insert((method.to_uppercase(), path.clone(), secured));
        }
    }
    operations
}

#[test]
fn the_document_lists_exactly_the_runtime_routes() {
    let documented: BTreeSet<_> = operations(&document())
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let served: BTreeSet<_> = ticketd::documented_routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn each_documented_operation_is_served_with_the_documented_security() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(1, None).await;
    for (method, path, secured) in operations(&document()) {
        let url = app.url(&path.replace("{id}", &event_id));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), url)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not served ({status})"
        );
        assert_eq!(
            status == StatusCode::UNAUTHORIZED,
            secured,
            "{method} {path}: {status}"
        );
    }
}

/// The codes an error response may carry, as the document lists them.
fn documented_codes(document: &Value, path: &str, method: &str, status: &str) -> Vec<String> {
    let schema = &document["paths"][path][method]["responses"][status]["content"]["application/json"]
        ["schema"];
    let codes = &schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"];
    codes
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} {status}: no enum of codes"))
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_error_response_lists_its_codes_and_the_runtime_keeps_to_them() {
    let document = document();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in operation["responses"].as_object().unwrap().keys() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(!documented_codes(&document, path, method, status).is_empty());
                }
            }
        }
    }
    let app = spawn_app().await;
    let event_id = app.event_with_floor(1, None).await;
    app.hold("ann", &event_id, 1).await;
    let queue = format!("/events/{event_id}/queue");
    let no_room = app.post(&queue, Some(&app.user("bob")), &Value::Null).await;
    let roomed = app.event_with_floor(1, None).await;
    let settings = serde_json::json!({"enabled": true});
    let set = app
        .client
        .put(app.url(&format!("/events/{roomed}/waiting-room")))
        .bearer_auth(app.admin())
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let me = format!("/events/{roomed}/queue/me");
    let answers = [
        ("/reserve", "post", app.reserve("bob", &event_id, 1).await),
        ("/reserve", "post", app.reserve("bob", &event_id, 99).await),
        ("/reserve", "post", app.reserve("bob", "not-an-id", 1).await),
        ("/reserve", "post", app.reserve("bob", &roomed, 1).await),
        ("/events/{id}/queue", "post", no_room),
        (
            "/events/{id}/queue/me",
            "get",
            app.get(&me, Some(&app.user("bob"))).await,
        ),
    ];
    for (path, method, response) in answers {
        let status = response.status().as_u16().to_string();
        let code = crate::helpers::body(response).await["error"]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let documented = documented_codes(&document, path, method, &status);
        assert!(
            documented.contains(&code),
            "{method} {path} {status}: {code} not in {documented:?}"
        );
    }
}

use auth::Jwt;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Role;
use domain::UserId;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Attacks, SECRET, TestApp, error_code, spawn_app};

async fn reserve_with_header(app: &TestApp, authorization: &str) -> reqwest::Response {
    app.client
        .post(app.url("/reserve"))
        .header("authorization", authorization)
        .json(&json!({"event_id": uuid::Uuid::now_v7(), "category": "Floor", "qty": 1}))
        .send()
        .await
        .unwrap()
}

/// A token signed with the right secret whose claims are `claims`.
fn signed(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    use hmac::{Hmac, Mac};
    let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let signing_input = format!("{}.{}", encode(header), encode(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized() {
    let app = spawn_app().await;
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let claims = |exp: i64| json!({"sub": "ann", "role": "user", "iat": now(), "exp": exp});
    let other_secret = Jwt::new(b"another-secret")
        .issue(
            Role::User,
            &UserId::parse("ann").unwrap(),
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let cases = [
        ("garbage", "Bearer not-a-token".to_owned()),
        ("empty token", "Bearer ".to_owned()),
        ("three empty parts", "Bearer ..".to_owned()),
        ("not base64", "Bearer %%%.%%%.%%%".to_owned()),
        ("wrong scheme", format!("Basic {}", app.user("ann"))),
        ("wrong secret", format!("Bearer {other_secret}")),
        (
            "expired",
            format!("Bearer {}", signed(&hs256, &claims(now() - 120))),
        ),
        (
            "no exp",
            format!(
                "Bearer {}",
                signed(&hs256, &json!({"sub": "ann", "role": "user"}))
            ),
        ),
        (
            "not yet valid",
            format!(
                "Bearer {}",
                signed(
                    &hs256,
                    &json!({"sub": "ann", "role": "user", "exp": now() + 600, "nbf": now() + 300})
                )
            ),
        ),
        (
            "unknown role",
            format!(
                "Bearer {}",
                signed(
                    &hs256,
                    &json!({"sub": "ann", "role": "root", "exp": now() + 600})
                )
            ),
        ),
        ("alg none", {
            let token = signed(&json!({"alg": "none", "typ": "JWT"}), &claims(now() + 600));
            let unsigned = token.rsplit_once('.').unwrap().0;
            format!("Bearer {unsigned}.")
        }),
        (
            "alg HS512",
            format!(
                "Bearer {}",
                signed(&json!({"alg": "HS512", "typ": "JWT"}), &claims(now() + 600))
            ),
        ),
        (
            "alg RS256",
            format!(
                "Bearer {}",
                signed(&json!({"alg": "RS256", "typ": "JWT"}), &claims(now() + 600))
            ),
        ),
        (
            "alg ES256",
            format!(
                "Bearer {}",
                signed(&json!({"alg": "ES256", "typ": "JWT"}), &claims(now() + 600))
            ),
        ),
        ("kid header", {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": "other-key"});
            format!("Bearer {}", signed(&header, &claims(now() + 600)))
        }),
        ("jku header", {
            let header = json!({"alg": "HS256", "typ": "JWT", "jku": "http://127.0.0.1:1/keys"});
            format!("Bearer {}", signed(&header, &claims(now() + 600)))
        }),
    ];
    let mut attacks = Attacks::on(&app, "tokens: missing, malformed or forged").await;
    for (case, authorization) in cases {
        let response = reserve_with_header(&app, &authorization).await;
        attacks
            .refused(case, response, StatusCode::UNAUTHORIZED, "unauthorized")
            .await;
    }
    let missing = app.post("/reserve", None, &json!({})).await;
    attacks
        .refused("missing", missing, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    attacks.report().await;

    // The hand-made signer is right: the same claims, unexpired, are accepted.
    let valid = format!("Bearer {}", signed(&hs256, &claims(now() + 600)));
    let response = reserve_with_header(&app, &valid).await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "category_not_found"
    );
}

#[tokio::test]
async fn a_valid_token_of_the_wrong_role_is_forbidden() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    let event = json!({"name": "x", "date": "2030-01-01T00:00:00Z"});
    let category = json!({"name": "Balcony", "total_stock": 1, "price": 1});
    let reserve = json!({"event_id": event_id, "category": "Floor", "qty": 1});

    let mut attacks = Attacks::on(&app, "tokens: the wrong role").await;
    let cases = [
        (
            "user creates an event",
            app.post("/events", Some(&app.user("ann")), &event).await,
        ),
        (
            "user adds a category",
            app.post(
                &format!("/events/{event_id}/ticket-category"),
                Some(&app.user("ann")),
                &category,
            )
            .await,
        ),
        (
            "admin reserves",
            app.post("/reserve", Some(&app.admin()), &reserve).await,
        ),
        (
            "admin confirms",
            app.post(
                "/confirm",
                Some(&app.admin()),
                &json!({"reservation_id": uuid::Uuid::now_v7(), "payment_ok": true}),
            )
            .await,
        ),
    ];
    for (case, response) in cases {
        attacks
            .refused(case, response, StatusCode::FORBIDDEN, "forbidden")
            .await;
    }
    attacks.report().await;
}

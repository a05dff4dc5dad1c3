//! In a real browser, headless Chromium (Debian's `chromium`):
//! - CORS: a page from another local origin reads availability and reserves with a token.
//!   From an allowed origin the hold is made; from any other the browser blocks the calls and
//!   nothing is held.
//! - The waiting room: the fan's page, as ticketd serves it, joins the queue, follows its
//!   place on the event stream, and reserves once admitted; driven over the DevTools protocol.

#[path = "browser/devtools.rs"]
mod devtools;
#[allow(dead_code)] // Shared with the embedded suite; this binary uses part of it.
#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use devtools::{Browser, CHROMIUM_FLAGS};
use helpers::{body, settings, spawn_app, spawn_app_with};

/// A loopback port of its own: the origin of a page.
async fn page_origin() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    (listener, origin)
}

/// Serves `html` to every request on `listener`.
fn serve_page(listener: TcpListener, html: String) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut request = [0; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
}

/// The front end: availability, then a reservation; the outcome goes into `#out`.
fn page(api: &str, token: &str, event_id: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>ticketd front end</title>
<style>body{{font:16px sans-serif;margin:24px}} pre{{background:#eef;padding:12px}}</style></head>
<body><h1>Night Show: a front end on another origin</h1><pre id="out">running</pre>
<script>
const out = document.getElementById("out");
const lines = [location.origin + " -> {api}"];
(async () => {{
  try {{
    const a = await fetch("{api}/events/{event_id}/availability");
    const availability = await a.json();
    lines.push("availability " + a.status + " available=" + availability.categories[0].available);
    const r = await fetch("{api}/reserve", {{
      method: "POST",
      headers: {{"Authorization": "Bearer {token}", "Content-Type": "application/json",
                 "Idempotency-Key": "browser-1"}},
      body: JSON.stringify({{event_id: "{event_id}", category: "Floor", qty: 2}})
    }});
    const hold = await r.json();
    lines.push("reserve " + r.status + " " + hold.status
      + " request-id " + (r.headers.get("x-request-id") ? "readable" : "hidden"));
  }} catch (err) {{
    lines.push("blocked " + err.name);
  }}
  out.textContent = lines.join("\n");
  out.dataset.done = "yes";
}})();
</script></body></html>"#
    )
}

/// Runs headless Chromium on `url` with `args` (e.g. --dump-dom); returns its stdout.
async fn chromium(url: &str, args: &[&str]) -> String {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("chromium")
            .args(CHROMIUM_FLAGS)
            .args(["--virtual-time-budget=10000", "--window-size=760,300"])
            .args(args)
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished within 60 s")
    .expect("chromium runs (apt-get install chromium)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_an_allowed_origin_reserves_and_others_are_blocked() {
    let (allowed_page, allowed) = page_origin().await;
    let app = spawn_app_with(ticketd::Settings {
        cors_allowed_origins: vec![allowed.parse().unwrap()],
        ..settings()
    })
    .await;
    let event_id = app.event_with_floor(10, None).await;
    let html = page(&app.base, &app.user("browser-fan"), &event_id);

    // The allowed origin: the page reads availability and holds 2 tickets.
    serve_page(allowed_page, html.clone());
    let dom = chromium(&allowed, &["--dump-dom"]).await;
    assert!(dom.contains("availability 200 available=10"), "{dom}");
    assert!(
        dom.contains("reserve 201 held request-id readable"),
        "{dom}"
    );
    assert_eq!(app.floor(&event_id).await, (10, 8, 2, 0));
    // Loaded once more for the picture: the page's Idempotency-Key makes that the same hold.
    let screenshot = format!("{}/cors-browser.png", env!("CARGO_TARGET_TMPDIR"));
    let screenshot_arg = format!("--screenshot={screenshot}");
    chromium(&allowed, &[&screenshot_arg]).await;
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 0);

    // Any other origin: the browser refuses to hand over the answers, and the preflight of
    // the reservation fails, so nothing more is held.
    let (other_page, other) = page_origin().await;
    serve_page(other_page, html);
    let dom = chromium(&other, &["--dump-dom"]).await;
    assert!(dom.contains("blocked TypeError"), "{dom}");
    assert!(!dom.contains("reserve 201"), "{dom}");
    assert_eq!(app.floor(&event_id).await, (10, 8, 2, 0));
}

/// The fan's page, the one ticketd serves at `/events/{id}/waiting-room`, in Chromium: the
/// fan joins behind others, watches the place fall on one event stream (pushed, not
/// reconnected), is admitted, reserves, and holds the one ticket held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_in_the_browser_waits_is_admitted_and_reserves() {
    let app = spawn_app().await;
    let event_id = app.event_with_floor(10, None).await;
    // Two a second: a place every half second, a few seconds in all.
    let room = app
        .client
        .put(app.url(&format!("/events/{event_id}/waiting-room")))
        .bearer_auth(app.admin())
        .json(&json!({"enabled": true, "admit_per_second": 2, "admission_ttl": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(room.status(), StatusCode::OK);

    // A phone's width: docs/waiting-room.png is the two pictures below, side by side.
    let mut browser = Browser::launch("waiting-room", 400, 600).await;
    let fan = app.user("browser-fan");
    let page = format!("{}/events/{event_id}/waiting-room#token={fan}", app.base);
    browser.open(&page).await;
    let category = browser
        .until(
            r#"document.getElementById("category").value"#,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(category, "Floor");

    // Others first, just before the fan: the room lets a second's worth through at once,
    // and then one every half second, so the fan starts several places back.
    for n in 0..6 {
        let path = format!("/events/{event_id}/queue");
        let joined = app
            .post(&path, Some(&app.user(&format!("early-{n}"))), &json!(null))
            .await;
        assert_eq!(joined.status(), StatusCode::CREATED);
    }
    // Every place the page shows, as it shows it.
    browser
        .evaluate(
            r#"window.placesShown = [];
            new MutationObserver(() => {
              const shown = document.getElementById("position").textContent;
              if (shown && placesShown.at(-1) !== shown) placesShown.push(shown);
            }).observe(document.getElementById("place-card"),
                       {subtree: true, childList: true, characterData: true});
            document.getElementById("join").click();
            document.getElementById("join").click();"#,
        )
        .await;
    browser
        .until(
            r##"document.getElementById("position").textContent.startsWith("#")"##,
            Duration::from_secs(10),
        )
        .await;
    let waiting = browser.screenshot().await;
    let admitted = browser
        .until(
            r#"!document.getElementById("reserve-card").hidden
               && document.getElementById("status-line").textContent"#,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(admitted, "Admitted");
    let places: Vec<u64> =
        serde_json::from_value::<Vec<String>>(browser.evaluate("window.placesShown").await)
            .unwrap()
            .iter()
            .map(|shown| shown.trim_start_matches('#').parse().unwrap())
            .collect();
    assert!(
        places.len() >= 2 && places[0] > 1,
        "the page showed {places:?}"
    );
    assert!(
        places.windows(2).all(|pair| pair[1] < pair[0]),
        "{places:?}"
    );
    // One stream, though Join was pressed twice, and never reconnected: every place after the
    // first was pushed on it.
    let streams: Vec<_> = browser
        .take_events("Network.requestWillBeSent")
        .into_iter()
        .filter(|sent| {
            let url = sent["request"]["url"].as_str().unwrap_or_default();
            url.ends_with("/queue/stream")
        })
        .map(|sent| sent["requestId"].clone())
        .collect();
    assert_eq!(streams.len(), 1, "{streams:?}");

    browser
        .evaluate(
            r#"document.getElementById("reserve").click();
            document.getElementById("reserve").click();"#,
        )
        .await;
    let message = browser
        .until(
            r#"document.getElementById("message").textContent"#,
            Duration::from_secs(10),
        )
        .await;
    let message = message.as_str().unwrap().to_owned();
    assert!(message.starts_with("Reserved: 1 × Floor"), "{message}");
    let reservation_id = message
        .rsplit_once("(reservation ")
        .and_then(|(_, id)| uuid::Uuid::parse_str(id.strip_suffix(").")?).ok())
        .unwrap_or_else(|| panic!("no reservation id in {message:?}"));
    // Done with the queue, the page lets its stream go (else the admission's end, a minute
    // on, would tell a fan holding tickets that their turn had passed).
    let stream_closed = browser
        .event(
            "Network.loadingFailed",
            |failed| failed["requestId"] == streams[0],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(stream_closed["canceled"], true, "{stream_closed}");
    let reserved = browser.screenshot().await;
    browser.close().await;

    // Over HTTP: one ticket held in all (Reserve was pressed twice), and it is this fan's.
    assert_eq!(app.floor(&event_id).await, (10, 9, 1, 0));
    let hold = app
        .get(&format!("/reservations/{reservation_id}"), Some(&fan))
        .await;
    assert_eq!(hold.status(), StatusCode::OK);
    let hold = body(hold).await;
    assert_eq!(
        (&hold["user_id"], &hold["status"], &hold["qty"]),
        (&json!("browser-fan"), &json!("held"), &json!(1)),
        "{hold}"
    );
    for (name, png) in [("waiting", waiting), ("reserved", reserved)] {
        let path = format!("{}/waiting-room-{name}.png", env!("CARGO_TARGET_TMPDIR"));
        std::fs::write(path, png).unwrap();
    }
    app.stop().await;
}

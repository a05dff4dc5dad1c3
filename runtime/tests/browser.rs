//! CORS in a real browser: headless Chromium loads a page from another local origin that
//! reads availability and reserves with a token. From an allowed origin the hold is made; from
//! any other the browser blocks the calls and nothing is held. Needs Debian's `chromium`.

#[allow(dead_code)] // Shared with the embedded suite; this binary uses part of it.
#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use helpers::{settings, spawn_app_with};

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
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
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

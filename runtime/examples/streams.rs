//! Opens many waiting room streams against a running `ticketd`, for `infra/bench/streams.sh`:
//! each fan joins the event's queue and follows `GET /events/{id}/queue/stream`. Prints one
//! line when every stream has its first event, then, each second, how many events the
//! streams received and how many fans were admitted, until `--for` has passed.
//!
//!   cargo run --release --example streams -- http://127.0.0.1:18090 <event id> <secret> \
//!       --fans 10000 --for 30

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth::Jwt;
use domain::{Role, UserId};
use futures_util::StreamExt;

struct Counts {
    opened: AtomicU64,
    events: AtomicU64,
    admitted: AtomicU64,
    failed: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, event, secret, ..] = &args[..] else {
        return Err("usage: streams <base url> <event id> <secret> [--fans N] [--for SECS]".into());
    };
    let option = |name: &str, default: u64| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let (fans, seconds) = (option("--fans", 10_000), option("--for", 30));
    if !base.starts_with("http://127.0.0.1:") && !base.starts_with("http://localhost:") {
        return Err("streams only talks to 127.0.0.1 or localhost".into());
    }
    let jwt = Jwt::new(secret.as_bytes());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|err| err.to_string())?;
    let counts = Arc::new(Counts {
        opened: AtomicU64::new(0),
        events: AtomicU64::new(0),
        admitted: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let started = Instant::now();
    let run_until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    for fan in 0..fans {
        let user = UserId::parse(&format!("stream-fan-{fan}")).map_err(|err| err.to_string())?;
        let token = jwt
            .issue(Role::User, &user, Duration::from_secs(3600))
            .map_err(|err| err.to_string())?;
        let (client, counts) = (client.clone(), counts.clone());
        let (queue, stream) = (
            format!("{base}/events/{event}/queue"),
            format!("{base}/events/{event}/queue/stream"),
        );
        tokio::spawn(async move {
            let follow = async {
                client.post(&queue).bearer_auth(&token).send().await?;
                let response = client.get(&stream).bearer_auth(&token).send().await?;
                if !response.status().is_success() {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                let mut body = response.bytes_stream();
                let mut first = true;
                let mut admitted = false;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk?;
                    if first {
                        counts.opened.fetch_add(1, Ordering::Relaxed);
                        first = false;
                    }
                    let text = String::from_utf8_lossy(&chunk);
                    counts
                        .events
                        .fetch_add(text.matches("data:").count() as u64, Ordering::Relaxed);
                    if !admitted && text.contains(r#""status":"admitted""#) {
                        admitted = true;
                        counts.admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok::<_, reqwest::Error>(())
            };
            if tokio::time::timeout_at(run_until, follow)
                .await
                .is_ok_and(|r| r.is_err())
            {
                counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut all_open = false;
    while tokio::time::Instant::now() < run_until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let opened = counts.opened.load(Ordering::Relaxed);
        if !all_open && opened == fans {
            all_open = true;
            println!(
                "all {fans} streams open after {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        println!(
            "t={:>3}s open={opened} events={} admitted={} failed={}",
            started.elapsed().as_secs(),
            counts.events.load(Ordering::Relaxed),
            counts.admitted.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed),
        );
    }
    Ok(())
}

//! Baseline for `infra/bench/reserve.sh`: the thinnest hyper 1 HTTP/1.1 server, answering
//! every request with 200 and `{"status":"ok"}`. Measuring ticketd against it in the same run
//! gives a ratio that survives a noisy machine, where an absolute req/s figure would not.
//!
//! `cargo run --release -p ticketd --example bare_hyper -- 127.0.0.1:18081`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = br#"{"status":"ok"}"#;

async fn ok(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("bare_hyper listening on {addr}");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // One failed accept (e.g. a client that reset first) must not end the baseline.
            Err(err) => {
                eprintln!("accept failed: {err}");
                continue;
            }
        };
        // Same socket option as ticketd, so the comparison is like for like.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(ok))
                .await;
        });
    }
}

//! Accepts connections and serves HTTP/1.1 on each until shutdown, then lets in-flight
//! requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::Service;

/// What a connection may cost the server.
pub struct ConnectionLimits {
    /// Connections open at once; past it, accepting waits for one to close.
    pub max_connections: u32,
    /// Time to send a request's headers, which is also how long a keep-alive connection may
    /// sit idle: hyper starts the clock whenever it waits for the next request.
    pub header_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
}

pub async fn serve_connections<S, B>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    // A permit per open connection: at the cap, accepting waits for one to close.
    let open = Arc::new(Semaphore::new(limits.max_connections as usize));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        tokio::select! {
            accepted = listener.accept() => if let Some(stream) = accepted_stream(accepted).await {
                let service = TowerToHyperService::new(service.clone());
                let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(close_logged(connection, permit));
            },
            () = &mut shutdown => break,
        }
    }

    // Draining: the connections open now finish their request and close. Until they have,
    // new connections are still served, one request each, so that a load balancer asking
    // /ready hears 503 rather than a refused connection while it moves traffic away.
    let deadline = tokio::time::sleep(limits.drain_timeout);
    tokio::pin!(deadline);
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    let mut late = JoinSet::new();
    http.keep_alive(false);
    loop {
        tokio::select! {
            () = &mut drained => break,
            () = &mut deadline => {
                tracing::warn!("shutdown: gave up waiting for in-flight requests");
                return;
            }
            accepted = listener.accept() => if let Some(stream) = accepted_stream(accepted).await {
                let service = TowerToHyperService::new(service.clone());
                late.spawn(http.serve_connection(TokioIo::new(stream), service));
            },
        }
    }
    drop(listener);
    tokio::select! {
        _ = late.join_all() => tracing::info!("in-flight requests finished"),
        () = &mut deadline => tracing::warn!("shutdown: gave up waiting for in-flight requests"),
    }
}

/// The accepted stream, ready to serve; `None` after a failed accept.
async fn accepted_stream(
    accepted: std::io::Result<(TcpStream, std::net::SocketAddr)>,
) -> Option<TcpStream> {
    match accepted {
        Ok((stream, _)) => {
            let _ = stream.set_nodelay(true);
            Some(stream)
        }
        Err(err) => {
            // Out of file descriptors, most likely: back off rather than spin.
            tracing::warn!(%err, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

async fn close_logged<C, E>(connection: C, permit: OwnedSemaphorePermit)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    if let Err(err) = connection.await {
        tracing::debug!(%err, "connection closed with an error");
    }
    drop(permit);
}

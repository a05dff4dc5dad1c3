//! Assembles a process: adapters, the functions `Settings` mounts, and their triggers.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shared::adapters::memory::{Embedded, MemoryReservationStore, MemoryStockStore};
use shared::auth::Jwt;
use shared::clock::SystemClock;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{FunctionName, Settings};
use crate::http::handlers::AppState;
use crate::http::{router, serve_connections};
use crate::triggers;

/// How long a stopping process gives the stream trigger to store what it already received.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A process started by [`spawn`]: where it listens, its stores, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub stock: Arc<MemoryStockStore>,
    pub reservations: Arc<MemoryReservationStore>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Shuts down as on SIGTERM and waits until everything is flushed.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts a process in the background on `settings.listen_addr` (port 0 picks one).
pub async fn spawn(settings: Settings) -> io::Result<Running> {
    let listener = TcpListener::bind(settings.listen_addr).await?;
    let addr = listener.local_addr()?;
    let embedded = Embedded::new(Arc::new(SystemClock), ttl(&settings));
    let (stock, reservations) = (embedded.stock.clone(), embedded.reservations.clone());
    let (stop, mut stopped) = watch::channel(false);
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let task = tokio::spawn(run(settings, embedded, listener, shutdown));
    Ok(Running {
        addr,
        stock,
        reservations,
        stop,
        task,
    })
}

/// Serves until `shutdown` resolves (the CLI passes SIGTERM / Ctrl-C).
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let listener = TcpListener::bind(settings.listen_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let embedded = Embedded::new(Arc::new(SystemClock), ttl(&settings));
    run(settings, embedded, listener, shutdown).await;
    Ok(())
}

fn ttl(settings: &Settings) -> chrono::Duration {
    chrono::Duration::seconds(settings.reservation_ttl.into())
}

async fn run(
    settings: Settings,
    embedded: Embedded,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let Embedded {
        context: ctx,
        events,
        ..
    } = embedded;
    let (stop_triggers, triggers_stopped) = watch::channel(false);
    let expiring = settings.mounts(FunctionName::ExpireHolds).then(|| {
        tokio::spawn(triggers::timer::run_expire_holds(
            ctx.clone(),
            triggers_stopped.clone(),
        ))
    });
    // Without a consumer the stream's receiver is dropped here and events go nowhere.
    let persisting = settings.mounts(FunctionName::PersistReservations).then(|| {
        tokio::spawn(triggers::stream::run_persist_reservations(
            ctx.clone(),
            events,
            triggers_stopped,
        ))
    });

    let jwt = Arc::new(Jwt::new(settings.jwt_secret().as_bytes()));
    let state = Arc::new(AppState {
        ctx,
        body_limit: settings.body_limit,
    });
    let service = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .service(router(&settings, state, jwt));
    serve_connections(listener, service, shutdown).await;

    // HTTP has drained: no new state changes. Stop the timer, then flush the stream.
    let _ = stop_triggers.send(true);
    if let Some(expiring) = expiring {
        let _ = expiring.await;
    }
    if let Some(persisting) = persisting {
        match tokio::time::timeout(FLUSH_TIMEOUT, persisting).await {
            Ok(_) => tracing::info!("reservation events flushed"),
            Err(_) => tracing::warn!("shutdown: gave up flushing reservation events"),
        }
    }
}

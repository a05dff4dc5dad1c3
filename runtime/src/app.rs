//! Assembles a process: adapters, the functions `Settings` mounts, and their triggers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use auth::Jwt;
use domain::dependency::Dependency;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use watch_queue::RoomWatch;

use crate::config::{FunctionName, Settings};
use crate::http::handlers::AppState;
use crate::http::{ConnectionLimits, router, serve_connections};
use crate::layers::access_log::AccessLog;
use crate::layers::cors::cors;
use crate::readiness::Readiness;
use crate::stack::{MemoryStores, Stack, assemble};
use crate::triggers;

/// A process started by [`spawn`]: where it listens, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    /// The embedded stores (embedded default only), for checks.
    pub memory: Option<MemoryStores>,
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
pub async fn spawn(settings: Settings) -> Result<Running, String> {
    settings.validate()?;
    let stack = assemble(&settings).await?;
    let listener = bind(&settings).await?;
    let addr = listener.local_addr().map_err(|err| err.to_string())?;
    let memory = stack.memory.clone();
    let (stop, mut stopped) = watch::channel(false);
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let task = tokio::spawn(run(settings, stack, listener, shutdown));
    Ok(Running {
        addr,
        memory,
        stop,
        task,
    })
}

/// Serves until `shutdown` resolves (the CLI passes SIGTERM / Ctrl-C).
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    settings.validate()?;
    let stack = assemble(&settings).await?;
    let listener = bind(&settings).await?;
    if let Ok(addr) = listener.local_addr() {
        let adapters = if stack.memory.is_some() {
            "embedded"
        } else {
            "redis, kafka, postgres"
        };
        tracing::info!(%addr, adapters, "listening");
    }
    run(settings, stack, listener, shutdown).await;
    Ok(())
}

async fn bind(settings: &Settings) -> Result<TcpListener, String> {
    TcpListener::bind(settings.listen_addr)
        .await
        .map_err(|err| format!("LISTEN_ADDR {}: {err}", settings.listen_addr))
}

async fn run(
    settings: Settings,
    stack: Stack,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let Stack {
        context: ctx,
        events,
        relay,
        services,
        ..
    } = stack;
    let (stop_triggers, triggers_stopped) = watch::channel(false);
    let mut triggers = Vec::new();
    if settings.mounts(FunctionName::ExpireHolds) {
        let expiring = triggers::timer::run_every(
            "expire-holds",
            triggers::timer::EXPIRE_HOLDS_EVERY,
            ctx.clone(),
            expire_holds::expire_holds,
            triggers_stopped.clone(),
        );
        triggers.push(tokio::spawn(expiring));
    }
    if settings.mounts(FunctionName::ForgetFinishedHolds) {
        let forgetting = triggers::timer::run_every(
            "forget-finished-holds",
            triggers::timer::FORGET_FINISHED_HOLDS_EVERY,
            ctx.clone(),
            forget_finished_holds::forget_finished_holds,
            triggers_stopped.clone(),
        );
        triggers.push(tokio::spawn(forgetting));
    }
    if settings.mounts(FunctionName::AdmitFans) {
        let admitting = triggers::timer::run_every(
            "admit-fans",
            triggers::timer::ADMIT_FANS_EVERY,
            ctx.clone(),
            admit_fans::admit_fans,
            triggers_stopped.clone(),
        );
        triggers.push(tokio::spawn(admitting));
    }
    if let Some((redis, kafka)) = relay {
        let relaying = triggers::relay::run_outbox_relay(redis, kafka, triggers_stopped.clone());
        triggers.push(tokio::spawn(relaying));
    }
    // The stream consumer stops last, once the relay has flushed: it then reads what the
    // flush published.
    let (stop_stream, stream_stopped) = watch::channel(false);
    let persisting = events.map(|events| {
        let persisting =
            triggers::stream::run_persist_reservations(ctx.clone(), events, stream_stopped);
        tokio::spawn(persisting)
    });
    let gauges =
        triggers::gauges::run_gauges(ctx.stock.clone(), services.clone(), triggers_stopped);
    triggers.push(tokio::spawn(gauges));

    let jwt = Arc::new(Jwt::new(settings.jwt_secret().as_bytes()));
    let dependencies: Vec<Arc<dyn Dependency>> = match services {
        Some((redis, postgres)) => vec![redis, postgres],
        None => Vec::new(),
    };
    // Event streams end when shutdown starts, so that draining does not wait on them.
    let (stop_streams, streams_stopped) = watch::channel(false);
    let state = Arc::new(AppState {
        rooms: RoomWatch::new(ctx.waiting_room.clone(), streams_stopped),
        ctx,
        body_limit: settings.body_limit,
        readiness: Readiness::new(dependencies),
    });
    let readiness = state.clone();
    let shutdown = async move {
        shutdown.await;
        readiness.readiness.stop();
        let _ = stop_streams.send(true);
    };
    let service = AccessLog::new(
        ServiceBuilder::new()
            .option_layer(cors(&settings.cors_allowed_origins))
            .service(router(&settings, state, jwt)),
    );
    let limits = ConnectionLimits {
        max_connections: settings.max_connections,
        header_timeout: settings.header_timeout,
        drain_timeout: settings.shutdown_drain_timeout,
    };
    serve_connections(listener, service, limits, shutdown).await;

    // HTTP has drained: no new state changes. The timer stops and the relay flushes the
    // outbox; then the stream consumer reads on until it has stored all of it.
    let deadline = tokio::time::Instant::now() + settings.shutdown_flush_timeout;
    let _ = stop_triggers.send(true);
    let relayed = tokio::time::timeout_at(deadline, futures_util::future::join_all(triggers)).await;
    let _ = stop_stream.send(true);
    let stored = tokio::time::timeout_at(deadline, async {
        if let Some(persisting) = persisting {
            let _ = persisting.await;
        }
    })
    .await;
    let flushed = relayed.and(stored);
    match flushed {
        Ok(_) => tracing::info!("triggers stopped; pending events flushed"),
        Err(_) => tracing::warn!("shutdown: gave up waiting for the triggers to flush"),
    }
}

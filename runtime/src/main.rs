//! `ticketd`: runs the functions (`serve`, the default) or prints a token (`token`).

use std::process::ExitCode;
use std::time::Duration;

use auth::Jwt;
use clap::{Parser, Subcommand};
use domain::Role;
use domain::UserId;
use ticketd::Settings;
use ticketd::config::{DEV_SECRET, MIN_SECRET_BYTES, StackSettings};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's malloc: a request makes about 25 small allocations (hyper,
/// tower, the handler), and glibc's took an eighth of the instructions of a sold-out answer.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concert ticket booking backend: serverless-style functions on a small hyper + tower runtime.
///
/// Without a command, `ticketd` serves (same as `ticketd serve`). Every setting can be given
/// as a flag or as the environment variable named beside it. Logs: `RUST_LOG` filters them
/// (default `info`), `LOG_FORMAT=json` prints them as JSON.
#[derive(Parser)]
#[command(name = "ticketd", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Settings,
}

#[derive(Subcommand)]
// Parsed once at start-up: the size of `Serve` costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Serve the mounted functions over HTTP: in memory by default, on Redis, Kafka and
    /// PostgreSQL when REDIS_URL, KAFKA_BROKERS and DATABASE_URL are set.
    Serve(Settings),
    /// Print a signed HS256 token, alone on stdout.
    Token(TokenArgs),
    /// Rebuild, from PostgreSQL, every category Redis is missing or has broken (after Redis
    /// lost data). PostgreSQL is first brought up to date from the Redis outboxes and Kafka;
    /// if it cannot be, nothing is rebuilt. Sound categories are left alone, so it is safe
    /// while the stack serves.
    Reconcile(ReconcileArgs),
}

#[derive(clap::Args)]
struct ReconcileArgs {
    #[command(flatten)]
    stack: StackSettings,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// admin or user.
    #[arg(long)]
    role: Role,
    /// The subject: who the token is for.
    #[arg(long, value_parser = UserId::parse)]
    sub: UserId,
    /// The secret to sign with [default: dev-secret].
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// How long the token is valid (e.g. 1h, 30m, 7d).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => token(args),
        Some(Command::Serve(settings)) => serve(settings),
        Some(Command::Reconcile(args)) => reconcile(args),
        None => serve(cli.serve),
    }
}

fn reconcile(args: ReconcileArgs) -> ExitCode {
    init_logging();
    let restored =
        tokio_runtime().and_then(|runtime| runtime.block_on(ticketd::reconcile(&args.stack)));
    match restored {
        Ok(restored) => {
            println!("restored {restored} categories from PostgreSQL");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ticketd reconcile: {err}");
            ExitCode::FAILURE
        }
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|err| format!("cannot start the tokio runtime: {err}"))
}

fn token(args: TokenArgs) -> ExitCode {
    let secret = args.secret.as_deref().unwrap_or(DEV_SECRET);
    match Jwt::new(secret.as_bytes()).issue(args.role, &args.sub, args.ttl) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ticketd token: {err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> ExitCode {
    init_logging();
    match settings
        .jwt_secret
        .as_ref()
        .map(ticketd::config::Secret::expose)
    {
        None => tracing::warn!(
            "JWT_SECRET is not set: using the development secret {DEV_SECRET:?}. \
             Anyone can sign tokens for this server. Set JWT_SECRET outside development."
        ),
        Some(secret) if secret.len() < MIN_SECRET_BYTES => tracing::warn!(
            "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes: easy to guess, and refused \
             with TICKETD_ENV=production"
        ),
        Some(_) => {}
    }
    let served = tokio_runtime()
        .and_then(|runtime| runtime.block_on(ticketd::serve(settings, shutdown_signal())));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("ticketd cannot serve: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|format| format == "json") {
        // The current span (the request id) is enough; the full list repeats it.
        logs.json().with_span_list(false).init();
    } else {
        logs.init();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

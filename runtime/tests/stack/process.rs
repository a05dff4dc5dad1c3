//! `ticketd serve` as a separate OS process, configured like an in-process app.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use clap::ValueEnum;
use ticketd::Settings;
use tokio::process::{Child, Command};

use crate::helpers::{SECRET, TestApp};

pub struct Process {
    child: Child,
    pub addr: SocketAddr,
}

impl Process {
    /// Starts `ticketd serve` with `settings`' stack on a free loopback port; waits for /health.
    pub async fn start(settings: &Settings) -> Process {
        let addr = free_port();
        let stack = &settings.stack;
        let mut command = Command::new(env!("CARGO_BIN_EXE_ticketd"));
        // One Redis or a cluster: the two settings exclude each other, so only one is set.
        match &stack.redis_url {
            Some(url) => command.env("REDIS_URL", url.expose()),
            None => command
                .env("REDIS_CLUSTER_NODES", stack.redis_cluster_nodes.join(","))
                .env(
                    "REDIS_WAIT_TIMEOUT_MS",
                    stack.redis_wait_timeout_ms.to_string(),
                ),
        };
        let child = command
            .arg("serve")
            .env("LISTEN_ADDR", addr.to_string())
            .env("JWT_SECRET", SECRET)
            .env("RESERVATION_TTL", settings.reservation_ttl.to_string())
            .env("MAX_IN_FLIGHT", settings.max_in_flight.to_string())
            .env(
                "DATABASE_URL",
                stack.database_url.as_ref().map_or("", |url| url.expose()),
            )
            .env(
                "KAFKA_BROKERS",
                stack.kafka_brokers.as_deref().unwrap_or_default(),
            )
            .env("KAFKA_TOPIC", &stack.kafka_topic)
            .env("KAFKA_GROUP", &stack.kafka_group)
            .envs(functions(settings))
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("ticketd starts");
        let app = TestApp::at(addr);
        for _ in 0..150 {
            if let Ok(response) = app.client.get(app.url("/health")).send().await
                && response.status().is_success()
            {
                return Process { child, addr };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("ticketd on {addr} did not become healthy in 30 s");
    }

    /// SIGTERM, then wait for the graceful exit.
    pub async fn stop(mut self) {
        self.terminate();
        self.exited().await;
    }

    /// SIGKILL, as a crash or the OOM killer ends a process: no drain, no flush, no goodbye
    /// to the consumer group.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM, as an orchestrator stopping the process does.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }

    /// Waits (up to 30 s) for the process to exit, and asserts it exited cleanly.
    pub async fn exited(&mut self) {
        let exited = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        assert!(
            matches!(exited, Ok(Ok(status)) if status.success()),
            "ticketd did not stop cleanly: {exited:?}"
        );
    }
}

/// `FUNCTIONS` naming what `settings` mounts; unset (all of them) when it names nothing.
fn functions(settings: &Settings) -> Option<(&'static str, String)> {
    let names: Vec<String> = settings
        .functions
        .as_ref()?
        .iter()
        .filter_map(|function| Some(function.to_possible_value()?.get_name().to_owned()))
        .collect();
    Some(("FUNCTIONS", names.join(",")))
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

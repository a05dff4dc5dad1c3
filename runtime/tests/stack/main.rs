//! End-to-end tests on the real stack (Redis, Kafka-API broker, PostgreSQL), over HTTP.
//! `infra/local-stack.sh` starts the services; the README's test command runs it first.

#[allow(dead_code)] // Shared with the embedded suite; this binary uses part of it.
#[path = "../api/helpers.rs"]
mod helpers;
mod process;
mod real;

mod consumers;
mod flow;
mod processes;
mod readiness;
mod reconcile;
mod redelivery;
mod shutdown;

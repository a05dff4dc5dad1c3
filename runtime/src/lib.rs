//! `ticketd`: a small hyper + tower host for the function crates. It owns every trigger (HTTP
//! routes, the reservation stream, timers) and adapts each to a plain function call.

mod app;
pub mod config;
mod http;
mod layers;
mod readiness;
mod reconcile;
mod stack;
mod triggers;

pub use app::{Running, serve, spawn};
pub use config::{FunctionName, Settings};
pub use http::routes::documented_routes;
pub use reconcile::reconcile;
pub use stack::MemoryStores;

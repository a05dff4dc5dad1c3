//! The HTTP trigger: a hyper server, a router and one adapter per function.

pub mod handlers;
pub mod request;
pub mod response;
pub mod routes;
mod server;

pub use routes::router;
pub use server::{ConnectionLimits, serve_connections};

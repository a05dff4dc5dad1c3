//! What every function shares, one a file: the access log, auth, CORS, error answers and
//! metrics. Request ids, the request span and CORS come from tower-http; the router applies
//! the rest to each request, built once rather than as a tower stack cloned per request.

pub mod access_log;
pub mod auth;
pub mod cors;
pub mod errors;
pub mod metrics;

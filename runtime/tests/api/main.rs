//! HTTP end-to-end tests: each starts `ticketd` on an ephemeral loopback port with the
//! embedded adapters and talks to it over real connections.

mod auth;
mod bad_input;
mod catalogue;
mod cli;
mod concurrency;
mod confirm;
mod cors;
mod decoding;
mod expiry;
mod helpers;
mod openapi;
mod operations;
mod rate_limit;
mod reserve;
mod waiting_room;

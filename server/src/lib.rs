//! `sio-server`: one node of a sio-cluster, a Socket.IO v4 server built on axum and
//! socketioxide.
//!
//! The binary parses [`Config`], installs logging and calls [`node::run`]; tests and
//! embedders call [`node::spawn`]. See `ARCHITECTURE.md` at the repository root for how
//! the pieces fit.
//!
//! Module map:
//! - [`config`]: flags and `SIO_*` variables, validated.
//! - [`connect_reply`]: the `pid` added to Socket.IO CONNECT replies (connection state
//!   recovery), on polling bodies and websocket frames.
//! - [`node`]: assembles socket.io and the HTTP routes; runs and drains the node.
//! - [`http`]: the HTTP/1 accept loop, header and keep-alive idle timeouts.
//! - [`head`]: request heads copied out of hyper's read buffer before a session keeps them.
//! - [`routes`]: `/`, `/healthz`, `/readyz`, `/metrics`, and the gate in front of socket.io.
//! - [`entry`]: the process entry point (the `sio-server` binary).
//! - [`engine`]: Engine.IO query parsing and Node-compatible error answers.
//! - [`cluster`]: cluster mode's glue: reaching Redis, registering the node, socket info
//!   for other nodes, the session registry's background tasks.
//! - [`forward`]: routing a session's requests to the node that owns it (cluster mode).
//! - [`api`]: the HTTP emit API (`POST /api/v1/emit`, `SIO_API_KEY`).
//! - [`backend`]: the app's backend: connect and event proxies, signed requests.
//! - [`gateway`]: handshake auth and the `join` / `leave` / `publish` events.
//! - [`poll_replay`]: a lost polling answer answered again when the balancer retries it.
//! - [`recovery`]: connection state recovery: session pids, sessions kept in Redis,
//!   restoring them on any node.
//! - [`chat`]: the demo chat namespace and its history.
//! - [`auth`]: JWT verification.
//! - [`patterns`]: room globs.
//! - [`limits`]: per-IP handshake and per-socket event rate limits.
//! - [`metrics`]: the node's Prometheus registry.
//! - [`telemetry`]: logging set-up for the binary.

pub mod api;
pub mod auth;
pub mod backend;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod connect_reply;
pub mod engine;
pub mod entry;
pub mod forward;
pub mod gateway;
pub mod head;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod node;
pub mod patterns;
pub mod poll_replay;
pub mod recovery;
pub mod routes;
pub mod telemetry;

pub use config::Config;

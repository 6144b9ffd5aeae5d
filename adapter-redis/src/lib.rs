//! Redis plumbing for sio-cluster, wire-compatible with the Node.js
//! [`@socket.io/redis-adapter`](https://github.com/socketio/socket.io-redis-adapter) and
//! [`@socket.io/redis-emitter`](https://github.com/socketio/socket.io-redis-emitter).
//!
//! - [`RedisCluster`]: a node's connection to the cluster (a fred client and subscriber
//!   client, the dispatcher, one ordered publisher, liveness, counters), shared by all its
//!   namespaces; also the server-side-emit API socketioxide lacks.
//! - [`RedisAdapter`]: socketioxide's `CoreAdapter`, plugged in with
//!   `SocketIo::builder().with_adapter::<RedisAdapter<_>>(cluster)`.
//! - [`Wire`]: classic or sharded mode on the wire, shared with `sio-emitter`.
//!
//! The wire format lives in [`sio_protocol`] (re-exported as [`protocol`] and [`wire`]),
//! and reading a Redis URL in [`sio_redis_config`] (re-exported as [`redis_url`], [`tls`]).
//!
//! # Crate map
//!
//! - `cluster`: [`RedisCluster`], the glue between a node's namespaces and the transport.
//! - `transport`: how messages travel through Redis, one implementation per mode; the only
//!   place that knows the modes.
//! - `adapter`: [`RedisAdapter`], socketioxide's hooks turned into local delivery and wire
//!   messages.
//! - `requests`, `ack`: requests waiting for answers, acks of broadcasts.
//! - `server_side`, `hooks`, `ids`: server-side events and socket descriptions (the API
//!   socketioxide lacks), what the node plugs in, stand-in ids of Node's sockets.
//! - [`registry`]: the node and session registry.

mod ack;
mod adapter;
mod adapter_error;
mod cluster;
mod config;
mod convert;
mod hooks;
mod ids;
pub mod recovery;
pub mod registry;
mod requests;
mod server_side;
mod stats;
mod transport;

pub use ack::AckStream;
pub use adapter::{InitRes, RedisAdapter};
pub use adapter_error::AdapterError;
pub use cluster::{Reconnects, RedisCluster};
pub use config::RedisAdapterConfig;
pub use convert::decode_broadcast_for_delivery;
pub use hooks::{ServerSideEvent, SocketInfo};
/// The MessagePack value type used for event arguments, re-exported so callers use the same
/// version.
pub use rmpv;
pub use sio_protocol::ProtocolError;
pub use sio_protocol::sharded::SubscriptionMode;
pub use sio_protocol::streams::Session;
pub use sio_protocol::{self as protocol, error, wire};
pub use sio_protocol::{AdapterMode, Wire};
pub use sio_redis_config::{redis_url, tls};
pub use stats::StatsSnapshot;

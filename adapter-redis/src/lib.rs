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
//! # Crate map
//!
//! - [`protocol`]: the wire protocol, no I/O.
//!   - [`protocol::channels`]: channel names for a prefix and namespace, and parsing them back.
//!   - [`protocol::broadcast`]: the `[uid, packet, opts]` broadcast message.
//!   - [`protocol::request`]: requests between nodes and their type numbers.
//!   - [`protocol::response`]: responses to those requests.
//!   - [`protocol::sharded`]: the `{type, data, uid, nsp}` messages and channels of sharded mode.
//!   - [`protocol::msgpack`]: MessagePack exactly as notepack.io writes and reads it.
//! - [`wire`]: domain messages to and from either mode.
//! - [`error`]: [`ProtocolError`], what decoding and encoding report instead of panicking.
//!
//! # Compatibility
//!
//! Byte for byte with `@socket.io/redis-adapter` 8.3 in classic (`PUBLISH`/`PSUBSCRIBE`) mode
//! and `@socket.io/redis-emitter` 5.1, both on their default `notepack.io` 3.x parser, under
//! socket.io 4.8, and with `createShardedAdapter` (Redis 7 `SPUBLISH`/`SSUBSCRIBE`, all three
//! subscription modes). The golden tests (`tests/golden.rs`, `tests/golden_sharded.rs`)
//! compare against bytes produced by those very packages. Not covered: custom `parser`
//! options of the Node adapter.
//!
//! A few things Node does not do the way this crate does, on purpose:
//!
//! - broadcast flags are written in one fixed order (`volatile, compress, local, broadcast,
//!   binary, timeout`), while Node writes them in the order the program set them;
//! - whole numbers beyond 64 bits (`1e300`) are written as float 64; notepack writes them
//!   modulo 2^64, so Node peers would receive `0`;
//! - JSON numbers in server-side-emit data are formatted by `serde_json`, which differs from
//!   `JSON.stringify` for some floats (`1e21` vs `1e+21`);
//! - MessagePack timestamps (JS `Date`s) are decoded to ISO-8601 strings, which is what a
//!   Node peer's clients receive after `JSON.stringify`.
//!
//! # How it works
//!
//! For the prefix `socket.io` and namespace `/` ([`protocol::Channels`]):
//!
//! - **Broadcasts**: `io.to(room).emit(..)` publishes a MessagePack array
//!   `[uid, {type: 2, data: [event, ..args], nsp}, {rooms, except, flags}]`
//!   ([`protocol::BroadcastMessage`]) on `socket.io#/#`, or on `socket.io#/#<room>#` when
//!   exactly one room is targeted. Every node `PSUBSCRIBE`s to `socket.io#/#*`, drops its own
//!   messages by `uid`, and delivers the rest to its local sockets. The emitter publishes the
//!   same message with uid `"emitter"`.
//! - **Requests**: `socket.io-request#/#` carries JSON requests ([`protocol::Request`]): join,
//!   leave, disconnect, fetch sockets, all rooms, server-side emit; and the MessagePack
//!   broadcast-with-acknowledgements. `PUBSUB NUMSUB` on it counts the nodes.
//! - **Responses**: `socket.io-response#/#` (or `socket.io-response#/#<uid>#`) carries the
//!   answers ([`protocol::Response`]), matched to the pending request by `requestId`.
//!
//! ```
//! use sio_adapter_redis::protocol::{
//!     BroadcastMessage, BroadcastOptions, Channels, Layout, Packet,
//! };
//! use sio_adapter_redis::rmpv::Value;
//!
//! let channels = Channels::with_default_prefix("/");
//! let opts = BroadcastOptions::to_rooms(["room1"]);
//! let packet = Packet::event("/", "news", [Value::from("hello"), Value::Binary(vec![1, 2])]);
//! let message = BroadcastMessage::new("srv001", packet, opts);
//!
//! // What to PUBLISH, and where.
//! let channel = channels.for_rooms(&message.opts.rooms);
//! let bytes = message.encode(Layout::Adapter)?;
//! assert_eq!(channel, "socket.io#/#room1#");
//!
//! // What a receiving node reads back.
//! let received = BroadcastMessage::decode(&bytes)?;
//! assert_eq!(received.packet.event_name(), Some("news"));
//! assert_eq!(received, message);
//! # Ok::<(), sio_adapter_redis::ProtocolError>(())
//! ```

mod ack;
mod adapter;
mod adapter_error;
mod cluster;
mod config;
mod convert;
pub mod error;
pub mod protocol;
mod publisher;
pub mod redis_url;
pub mod registry;
mod remote;
mod requests;
mod sentinel;
pub mod tls;
pub mod wire;

pub use ack::AckStream;
pub use adapter::{InitRes, RedisAdapter};
pub use adapter_error::AdapterError;
pub use cluster::{Reconnects, RedisCluster, StatsSnapshot};
pub use config::RedisAdapterConfig;
pub use convert::decode_broadcast_for_delivery;
pub use error::ProtocolError;
pub use protocol::sharded::SubscriptionMode;
pub use remote::{ServerSideEvent, SocketInfo};
/// The MessagePack value type used for event arguments, re-exported so callers use the same
/// version.
pub use rmpv;
pub use wire::{AdapterMode, Wire};

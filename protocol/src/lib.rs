//! The wire protocol of a Socket.IO cluster on Redis, with no I/O: channel names and message
//! encodings of the Node.js [`@socket.io/redis-adapter`](https://github.com/socketio/socket.io-redis-adapter)
//! 8.x (classic mode, and sharded mode in [`sharded`]) and
//! [`@socket.io/redis-emitter`](https://github.com/socketio/socket.io-redis-emitter) 5.x.
//!
//! The node's adapter (`sio-adapter-redis`) and the emitter (`sio-emitter`) both build on this
//! crate, so there is one copy of every byte layout. It knows nothing of Redis clients or of
//! socketioxide: it turns domain messages into `(channel, bytes)` and back.
//!
//! # Crate map
//!
//! - [`channels`]: classic channel names for a prefix and namespace, and parsing them back.
//! - [`broadcast`]: the `[uid, packet, opts]` broadcast message.
//! - [`request`]: requests between nodes and their type numbers.
//! - [`response`]: responses to those requests.
//! - [`sharded`]: sharded mode: its subscription modes, channels and `{type, data, uid, nsp}`
//!   messages.
//! - [`streams`]: streams mode (`@socket.io/redis-streams-adapter`): the same messages as
//!   stream entries and `@msgpack/msgpack` pub/sub payloads, and which stream a namespace uses.
//! - [`msgpack`]: MessagePack exactly as notepack.io writes and reads it.
//! - [`wire`]: [`Wire`], domain messages to and from the mode a cluster speaks.
//! - [`ids`]: the emitter's uid and request ids.
//! - [`error`]: [`ProtocolError`], what decoding and encoding report instead of panicking.
//!
//! # Compatibility
//!
//! Byte for byte with `@socket.io/redis-adapter` 8.3 in classic (`PUBLISH`/`PSUBSCRIBE`) mode
//! and `@socket.io/redis-emitter` 5.1, both on their default `notepack.io` 3.x parser, under
//! socket.io 4.8, and with `createShardedAdapter` (Redis 7 `SPUBLISH`/`SSUBSCRIBE`, all three
//! subscription modes). The golden tests of `sio-adapter-redis` compare against bytes produced
//! by those very packages. Not covered: custom `parser` options of the Node adapter.
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
//! # Classic mode
//!
//! For the prefix `socket.io` and namespace `/` ([`Channels`]):
//!
//! - **Broadcasts**: `io.to(room).emit(..)` publishes a MessagePack array
//!   `[uid, {type: 2, data: [event, ..args], nsp}, {rooms, except, flags}]`
//!   ([`BroadcastMessage`]) on `socket.io#/#`, or on `socket.io#/#<room>#` when exactly one
//!   room is targeted. Every node `PSUBSCRIBE`s to `socket.io#/#*`, drops its own messages by
//!   `uid`, and delivers the rest to its local sockets. The emitter publishes the same
//!   message with uid [`EMITTER_UID`].
//! - **Requests**: `socket.io-request#/#` carries JSON requests ([`Request`]): join, leave,
//!   disconnect, fetch sockets, all rooms, server-side emit; and the MessagePack
//!   broadcast-with-acknowledgements. `PUBSUB NUMSUB` on it counts the nodes.
//! - **Responses**: `socket.io-response#/#` (or `socket.io-response#/#<uid>#`) carries the
//!   answers ([`Response`]), matched to the pending request by `requestId`.
//!
//! ```
//! use sio_protocol::{BroadcastMessage, BroadcastOptions, Channels, Layout, Packet};
//! use sio_protocol::rmpv::Value;
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
//! # Ok::<(), sio_protocol::ProtocolError>(())
//! ```

pub mod broadcast;
pub mod channels;
pub mod error;
pub mod ids;
pub mod msgpack;
pub mod request;
pub mod response;
pub mod sharded;
pub mod streams;
mod timestamp;
mod value;
pub mod wire;

pub(crate) use value::{
    json_from_msgpack as msgpack_value_to_json, msgpack_from_json as json_value_to_msgpack,
};

pub use broadcast::{
    BroadcastFlags, BroadcastMessage, BroadcastOptions, EMITTER_UID, Layout, Packet, PacketType,
};
pub use channels::{Channel, Channels, DEFAULT_PREFIX, parse_channel};
pub use error::ProtocolError;
pub use ids::new_request_id;
pub use request::{
    AllRoomsRequest, BroadcastRequest, DisconnectRequest, FetchRequest, Request, RequestOpts,
    RequestType, RoomsRequest, ServerSideEmitRequest, SocketsRequest,
};
pub use response::{
    AllRoomsResponse, BroadcastAckResponse, BroadcastClientCountResponse, FetchResponse,
    FetchedSocket, Handshake, IncomingResponse, Response, ServerSideEmitResponse, SocketsResponse,
};
pub use sharded::{
    MessageType, ShardedBody, ShardedBroadcast, ShardedChannel, ShardedChannels,
    ShardedDisconnectRequest, ShardedFetchRequest, ShardedMessage, ShardedRoomsRequest,
    ShardedServerSideEmit, ShardedServerSideEmitResponse, SubscriptionMode,
};

/// Event names Socket.IO reserves for itself: a server never emits them to clients.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Whether a request or response payload is JSON: the Node adapter's test, a leading `{`.
/// Anything else is MessagePack.
pub fn is_json(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
}

/// The MessagePack value type used for event arguments, re-exported so callers use the same
/// version.
pub use rmpv;
pub use streams::StreamsOptions;
pub use wire::{AdapterMode, Incoming, Outgoing, Wire};

//! The wire protocol of `@socket.io/redis-adapter` 8.x (classic mode, and sharded mode in
//! [`sharded`]) and `@socket.io/redis-emitter` 5.x: channel names and message encodings,
//! with no I/O.
//!
//! Both the adapter and the `sio-emitter` crate build on this module, so there is one copy of
//! every byte layout.

pub mod broadcast;
pub mod channels;
pub mod msgpack;
pub mod request;
pub mod response;
pub mod sharded;
mod timestamp;
mod value;

pub(crate) use value::{
    json_from_msgpack as msgpack_value_to_json, msgpack_from_json as json_value_to_msgpack,
};

pub use broadcast::{
    BroadcastFlags, BroadcastMessage, BroadcastOptions, EMITTER_UID, Layout, Packet, PacketType,
};
pub use channels::{Channel, Channels, DEFAULT_PREFIX, parse_channel};
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

/// Whether `url` names Redis the way fred reads it: `redis://`, `rediss://` (TLS),
/// `redis-sentinel://` or `redis-cluster://`.
///
/// ```
/// assert!(sio_adapter_redis::protocol::is_redis_url("redis://:pw@host:6379/2"));
/// assert!(!sio_adapter_redis::protocol::is_redis_url("http://host"));
/// ```
pub fn is_redis_url(url: &str) -> bool {
    [
        "redis://",
        "rediss://",
        "redis-sentinel://",
        "redis-cluster://",
    ]
    .iter()
    .any(|s| url.starts_with(s))
}

/// Whether a request or response payload is JSON: the Node adapter's test, a leading `{`.
/// Anything else is MessagePack.
pub fn is_json(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
}

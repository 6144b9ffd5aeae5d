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

/// Whether a request or response payload is JSON: the Node adapter's test, a leading `{`.
/// Anything else is MessagePack.
pub fn is_json(payload: &[u8]) -> bool {
    payload.first() == Some(&b'{')
}

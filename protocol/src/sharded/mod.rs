//! The sharded mode of `@socket.io/redis-adapter` 8.3 (`createShardedAdapter`, Redis 7
//! `SPUBLISH`/`SSUBSCRIBE`): channel names, subscription modes and the messages of
//! socket.io-adapter 2.5's `ClusterAdapter`, which the sharded adapter is built on. No I/O.
//!
//! # Messages
//!
//! Every message, request or response, is one object `{type, data, uid, nsp}` (keys in that
//! order; the heartbeats and `ADAPTER_CLOSE` have no `data`): [`ShardedMessage`]. `uid` is the
//! sender (16 hex characters in Node: `randomBytes(8)`), `nsp` its namespace.
//!
//! | code | type | `data` (keys in wire order) | published on |
//! |---|---|---|---|
//! | 1 | `INITIAL_HEARTBEAT` | none | main |
//! | 2 | `HEARTBEAT` | none | main |
//! | 3 | `BROADCAST` | `{packet, requestId?, opts}` | a room channel or main, see below |
//! | 4 | `SOCKETS_JOIN` | `{opts, rooms}` | main |
//! | 5 | `SOCKETS_LEAVE` | `{opts, rooms}` | main |
//! | 6 | `DISCONNECT_SOCKETS` | `{opts, close}` | main |
//! | 7 | `FETCH_SOCKETS` | `{opts, requestId}` | main |
//! | 8 | `FETCH_SOCKETS_RESPONSE` | `{requestId, sockets: [{id, handshake, rooms, data}]}` | requester's |
//! | 9 | `SERVER_SIDE_EMIT` | `{requestId?, packet: [event, ...args]}` | main |
//! | 10 | `SERVER_SIDE_EMIT_RESPONSE` | `{requestId, packet}` | requester's |
//! | 11 | `BROADCAST_CLIENT_COUNT` | `{requestId, clientCount}` | requester's |
//! | 12 | `BROADCAST_ACK` | `{requestId, packet}` | requester's |
//! | 13 | `ADAPTER_CLOSE` | none | main |
//!
//! `opts` is `{rooms, except, flags}` for every type that has it (a [`BroadcastOptions`](crate::BroadcastOptions): both
//! lists spread from JS Sets, `flags` as the program set them, `{}` when none). A broadcast's
//! `packet` is the Socket.IO packet *without* `nsp`: `{type: 2, data: [event, ...args]}`; the
//! receiver uses its own namespace. A `requestId` on a `BROADCAST` means "with
//! acknowledgements" and on a `SERVER_SIDE_EMIT` "answer me"; `SOCKETS_JOIN`'s `rooms` is the
//! caller's array as given (not de-duplicated).
//!
//! # Encoding
//!
//! `JSON.stringify`, except that the five types whose data may hold binaries (`BROADCAST`,
//! `BROADCAST_ACK`, `FETCH_SOCKETS_RESPONSE`, `SERVER_SIDE_EMIT`, `SERVER_SIDE_EMIT_RESPONSE`)
//! are notepack.io MessagePack when their data does hold one (a `Buffer`). A receiver tells them
//! apart by the first byte, `{` being JSON. In the JSON form a `Date` is its ISO-8601 string
//! (`null` when invalid), `NaN` and `±Infinity` are `null`, and `-0` is `0`; in the MessagePack
//! form a `Date` is a timestamp. Here a [`Value::Ext`](rmpv::Value::Ext) of type -1 holding a 32, 64 or 96-bit
//! timestamp stands for a `Date`; any other extension counts as binary.
//!
//! # Channels
//!
//! For the prefix `channelPrefix` (default `socket.io`, [`DEFAULT_PREFIX`](crate::DEFAULT_PREFIX)) and a namespace:
//!
//! | channel | name | carries |
//! |---|---|---|
//! | main | `socket.io#<nsp>#` | every message but responses and room broadcasts |
//! | response | `socket.io#<nsp>#<uid>#` | responses for node `uid` |
//! | room | `socket.io#<nsp>#<room>#` | broadcasts without ack to exactly that one room |
//!
//! These are the names of the classic mode's broadcast channels, but sharded Pub/Sub is a
//! separate space in Redis: an `SPUBLISH` never reaches a `PSUBSCRIBE`. Nothing is escaped, so a
//! room channel and a node's response channel cannot be told apart by name: a node reads its
//! own response channel as responses and every other channel as messages.
//!
//! A broadcast goes on a room channel ([`ShardedChannels::channel_for_broadcast`]) when it has
//! no `requestId` (the ack variant must reach every node, since the sender counts on
//! `serverCount()` answers), targets exactly one room (after de-duplication; `except` plays no
//! part) and the [`SubscriptionMode`] allows it: `dynamic` (the default) for a room that does not
//! look like a socket id (20 UTF-16 code units), `dynamic-private` for any room, `static` never.
//! Every other message goes on the main channel, and responses on the requester's response
//! channel.
//!
//! Each node `SSUBSCRIBE`s to the main channel and its own response channel; in the dynamic
//! modes also to the channel of every room it has local members in, from the room's creation to
//! its deletion: in `dynamic` only rooms that are not the id of one of its own sockets, in
//! `dynamic-private` all ([`SubscriptionMode::subscribes_to_room`]). The publisher's "looks like
//! a socket id" test and the subscriber's "is one of my sockets" test differ: a public room named
//! with exactly 20 characters is published on the main channel, which every node hears.
//!
//! # Counting nodes, and no heartbeat
//!
//! A node counts the servers with `PUBSUB SHARDNUMSUB <main channel>` (summed over the masters
//! of a Redis Cluster). `fetchSockets` and `serverSideEmit` with an ack then wait for
//! `count - 1` responses, or fail after the `timeout` flag, or [`DEFAULT_TIMEOUT_MS`]
//! (`serverSideEmit` always uses the default). A broadcast with acks waits for `count` client
//! counts (its own included) and for that many acknowledgements, until its `timeout` flag.
//!
//! The 8.3.0 sharded adapter extends `ClusterAdapter`, not `ClusterAdapterWithHeartbeat`: it
//! publishes nothing when it starts or closes (closing only `SUNSUBSCRIBE`s), and it ignores
//! the heartbeat types and `ADAPTER_CLOSE` when it receives them. Those belong to
//! `ClusterAdapterWithHeartbeat`, which sends `INITIAL_HEARTBEAT` from `init()`, answers one
//! with a `HEARTBEAT`, sends a `HEARTBEAT` after [`HEARTBEAT_INTERVAL_MS`] without publishing,
//! forgets a node silent for [`HEARTBEAT_TIMEOUT_MS`] (checked every second) and sends
//! `ADAPTER_CLOSE` from `close()`; they are here so that such a peer's messages can be read and
//! written. Every receiver drops messages whose `uid` is its own or whose `nsp` is not its
//! namespace.

mod channels;
mod message;
mod mode;
#[cfg(test)]
mod tests;

pub use channels::{ShardedChannel, ShardedChannels, parse_sharded_channel};
pub use message::{
    MessageType, ShardedBody, ShardedBroadcast, ShardedDisconnectRequest, ShardedFetchRequest,
    ShardedMessage, ShardedRoomsRequest, ShardedServerSideEmit, ShardedServerSideEmitResponse,
};
pub(crate) use message::{Scan, dates_to_iso};
pub use mode::{
    DEFAULT_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS, SOCKET_ID_LEN,
    SubscriptionMode, looks_like_a_socket_id,
};

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
//! `opts` is `{rooms, except, flags}` for every type that has it (a [`BroadcastOptions`]: both
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
//! form a `Date` is a timestamp. Here a [`Value::Ext`] of type -1 holding a 32, 64 or 96-bit
//! timestamp stands for a `Date`; any other extension counts as binary.
//!
//! # Channels
//!
//! For the prefix `channelPrefix` (default `socket.io`, [`DEFAULT_PREFIX`]) and a namespace:
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

use rmpv::Value;

use super::broadcast::{BroadcastOptions, Layout, Packet};
use super::channels::DEFAULT_PREFIX;
use super::response::{
    BroadcastAckResponse, BroadcastClientCountResponse, FetchResponse, fetched_socket, raw_field,
};
use super::{msgpack, value};
use crate::error::ProtocolError;

/// How long `fetchSockets` (without a `timeout` flag) and `serverSideEmit` with an ack wait for
/// the other nodes, in milliseconds (socket.io-adapter's `DEFAULT_TIMEOUT`).
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// `ClusterAdapterWithHeartbeat`'s default `heartbeatInterval`, in milliseconds: a node that has
/// published nothing for this long sends a `HEARTBEAT`. Not used by the 8.3.0 sharded adapter.
pub const HEARTBEAT_INTERVAL_MS: u64 = 5_000;

/// `ClusterAdapterWithHeartbeat`'s default `heartbeatTimeout`, in milliseconds: a node not heard
/// from for longer is considered gone. Not used by the 8.3.0 sharded adapter.
pub const HEARTBEAT_TIMEOUT_MS: u64 = 10_000;

/// The length, in UTF-16 code units, of a Socket.IO socket id, and so of a room the publisher
/// takes for a socket's private room.
pub const SOCKET_ID_LEN: usize = 20;

/// Whether the publisher takes `room` for a socket id: the sharded adapter's
/// `looksLikeASocketId`, which only checks that the JavaScript string length (UTF-16 code units,
/// not bytes or chars) is [`SOCKET_ID_LEN`].
pub fn looks_like_a_socket_id(room: &str) -> bool {
    room.chars().map(char::len_utf16).sum::<usize>() == SOCKET_ID_LEN
}

/// Which rooms get a channel of their own (the adapter's `subscriptionMode` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SubscriptionMode {
    /// `"static"`: only the main and response channels, 2 per namespace.
    Static,
    /// `"dynamic"`, the default: also one channel per public room (not a socket's own room).
    #[default]
    Dynamic,
    /// `"dynamic-private"`: one channel per room, sockets' own rooms included.
    DynamicPrivate,
}

impl SubscriptionMode {
    /// The option's value in Node: `static`, `dynamic` or `dynamic-private`.
    pub fn name(self) -> &'static str {
        match self {
            SubscriptionMode::Static => "static",
            SubscriptionMode::Dynamic => "dynamic",
            SubscriptionMode::DynamicPrivate => "dynamic-private",
        }
    }

    /// The mode an option value names, if any. (Node treats an unknown value like `static`.)
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "static" => Some(SubscriptionMode::Static),
            "dynamic" => Some(SubscriptionMode::Dynamic),
            "dynamic-private" => Some(SubscriptionMode::DynamicPrivate),
            _ => None,
        }
    }

    /// Publisher side: whether a broadcast without ack to exactly `room` goes on the room's
    /// channel rather than the main one.
    pub fn publishes_on_room_channel(self, room: &str) -> bool {
        match self {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !looks_like_a_socket_id(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Subscriber side: whether a node subscribes to the channel of a room while the room has
    /// local members. `is_local_socket_id`: the room is the id of a socket connected to this
    /// node in this namespace (that socket's own room).
    pub fn subscribes_to_room(self, is_local_socket_id: bool) -> bool {
        match self {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !is_local_socket_id,
            SubscriptionMode::DynamicPrivate => true,
        }
    }
}

/// The sharded channel names of one namespace under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedChannels {
    prefix: String,
    nsp: String,
    main: String,
}

/// What a received sharded channel name designates, for a node that knows its own uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardedChannel<'a> {
    /// The main channel `<prefix>#<nsp>#`.
    Main {
        /// The namespace, e.g. `/`.
        nsp: &'a str,
    },
    /// The node's own response channel `<prefix>#<nsp>#<uid>#`: its payloads are responses.
    Response {
        /// The namespace, e.g. `/`.
        nsp: &'a str,
        /// The node's uid.
        uid: &'a str,
    },
    /// A room channel `<prefix>#<nsp>#<room>#` (any `<x>#` that is not the own uid).
    Room {
        /// The namespace, e.g. `/`.
        nsp: &'a str,
        /// The room.
        room: &'a str,
    },
}

impl<'a> ShardedChannel<'a> {
    /// The namespace the channel belongs to.
    pub fn nsp(&self) -> &'a str {
        match *self {
            ShardedChannel::Main { nsp }
            | ShardedChannel::Response { nsp, .. }
            | ShardedChannel::Room { nsp, .. } => nsp,
        }
    }

    /// Whether payloads on this channel are responses (Node's `onResponse`) rather than
    /// messages (`onMessage`).
    pub fn carries_responses(&self) -> bool {
        matches!(self, ShardedChannel::Response { .. })
    }
}

impl ShardedChannels {
    /// The channels of namespace `nsp` (e.g. `/`) under `prefix` (`channelPrefix`, e.g.
    /// `socket.io`).
    pub fn new(prefix: impl Into<String>, nsp: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let nsp = nsp.into();
        Self {
            main: format!("{prefix}#{nsp}#"),
            prefix,
            nsp,
        }
    }

    /// The channels of namespace `nsp` under [`DEFAULT_PREFIX`].
    pub fn with_default_prefix(nsp: impl Into<String>) -> Self {
        Self::new(DEFAULT_PREFIX, nsp)
    }

    /// The prefix (`channelPrefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// `socket.io#<nsp>#`: every message but room broadcasts and responses. Every node
    /// subscribes to it, and `PUBSUB SHARDNUMSUB` on it counts the nodes.
    pub fn main(&self) -> &str {
        &self.main
    }

    /// `socket.io#<nsp>#<uid>#`: responses for node `uid`.
    pub fn response(&self, uid: &str) -> String {
        format!("{}{uid}#", self.main)
    }

    /// `socket.io#<nsp>#<room>#`: broadcasts without ack to exactly `room`, in the dynamic
    /// modes.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// Where a broadcast *without* ack to `opts` is published under `mode`: the room's channel
    /// when exactly one distinct room is targeted and `mode` publishes it there
    /// ([`SubscriptionMode::publishes_on_room_channel`]), else the main channel. A broadcast with
    /// ack always goes on the main channel ([`ShardedChannels::channel_for`]).
    pub fn channel_for_broadcast(&self, opts: &BroadcastOptions, mode: SubscriptionMode) -> String {
        match opts.rooms.split_first() {
            Some((room, rest))
                if rest.iter().all(|r| r == room) && mode.publishes_on_room_channel(room) =>
            {
                self.room(room)
            }
            _ => self.main.clone(),
        }
    }

    /// Where a message with `body` is published under `mode`, or `None` for a response, which
    /// goes on the requester's channel ([`ShardedChannels::response`] of the uid of the
    /// request's sender).
    pub fn channel_for(&self, body: &ShardedBody, mode: SubscriptionMode) -> Option<String> {
        if body.message_type().is_response() {
            return None;
        }
        Some(match body {
            ShardedBody::Broadcast(broadcast) if broadcast.request_id.is_none() => {
                self.channel_for_broadcast(&broadcast.opts, mode)
            }
            _ => self.main.clone(),
        })
    }

    /// Reads a received channel name, which must belong to this prefix and namespace; `own_uid`
    /// tells the node's response channel from a room channel. Exact even when the namespace or
    /// room holds a `#`.
    pub fn parse<'c>(
        &self,
        channel: &'c str,
        own_uid: &str,
    ) -> Result<ShardedChannel<'c>, ProtocolError> {
        let Some(rest) = channel.strip_prefix(self.main.as_str()) else {
            // Same prefix, other namespace? Say so rather than "foreign".
            parse_sharded_channel(&self.prefix, channel, own_uid)?;
            return Err(ProtocolError::ForeignNamespace {
                channel: channel.to_owned(),
                expected: self.nsp.clone(),
            });
        };
        let nsp = &channel[self.prefix.len() + 1..self.main.len() - 1];
        classify(channel, nsp, rest, own_uid)
    }
}

/// Reads any sharded channel name of `prefix`, whatever its namespace; `own_uid` tells the
/// node's response channel from a room channel.
///
/// The namespace runs up to the first `#` after the prefix, so a namespace containing `#` is
/// misread; use [`ShardedChannels::parse`] when the namespace is known.
pub fn parse_sharded_channel<'c>(
    prefix: &str,
    channel: &'c str,
    own_uid: &str,
) -> Result<ShardedChannel<'c>, ProtocolError> {
    let body = channel
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('#'))
        .ok_or_else(|| ProtocolError::ForeignChannel {
            channel: channel.to_owned(),
            prefix: prefix.to_owned(),
        })?;
    let Some((nsp, rest)) = body.split_once('#') else {
        return Err(malformed(channel, "channel must end with '#'"));
    };
    if nsp.is_empty() {
        return Err(malformed(channel, "empty namespace"));
    }
    classify(channel, nsp, rest, own_uid)
}

/// What follows the main channel `rest`: nothing, or `<uid|room>#`.
fn classify<'c>(
    channel: &'c str,
    nsp: &'c str,
    rest: &'c str,
    own_uid: &str,
) -> Result<ShardedChannel<'c>, ProtocolError> {
    if rest.is_empty() {
        return Ok(ShardedChannel::Main { nsp });
    }
    match rest.strip_suffix('#') {
        Some("") => Err(malformed(channel, "empty room")),
        Some(uid) if uid == own_uid => Ok(ShardedChannel::Response { nsp, uid }),
        Some(room) => Ok(ShardedChannel::Room { nsp, room }),
        None => Err(malformed(channel, "room channel must end with '#'")),
    }
}

fn malformed(channel: &str, reason: &'static str) -> ProtocolError {
    ProtocolError::MalformedChannel {
        channel: channel.to_owned(),
        reason,
    }
}

/// The `type` of a sharded message: socket.io-adapter 2.5's `MessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1: a `ClusterAdapterWithHeartbeat` node starts; the others answer with a heartbeat.
    InitialHeartbeat,
    /// 2: a `ClusterAdapterWithHeartbeat` node is alive.
    Heartbeat,
    /// 3: a broadcast, with acknowledgements when it has a request id.
    Broadcast,
    /// 4: make matching sockets join rooms.
    SocketsJoin,
    /// 5: make matching sockets leave rooms.
    SocketsLeave,
    /// 6: disconnect matching sockets.
    DisconnectSockets,
    /// 7: request: details of matching sockets.
    FetchSockets,
    /// 8: response to [`MessageType::FetchSockets`].
    FetchSocketsResponse,
    /// 9: an event for the other servers themselves.
    ServerSideEmit,
    /// 10: response: one server's acknowledgement of a [`MessageType::ServerSideEmit`].
    ServerSideEmitResponse,
    /// 11: response: how many clients a broadcast with acks reached on one node.
    BroadcastClientCount,
    /// 12: response: one client's acknowledgement of a broadcast.
    BroadcastAck,
    /// 13: a `ClusterAdapterWithHeartbeat` node closes.
    AdapterClose,
}

impl MessageType {
    /// Every type, in code order.
    pub const ALL: [MessageType; 13] = [
        MessageType::InitialHeartbeat,
        MessageType::Heartbeat,
        MessageType::Broadcast,
        MessageType::SocketsJoin,
        MessageType::SocketsLeave,
        MessageType::DisconnectSockets,
        MessageType::FetchSockets,
        MessageType::FetchSocketsResponse,
        MessageType::ServerSideEmit,
        MessageType::ServerSideEmitResponse,
        MessageType::BroadcastClientCount,
        MessageType::BroadcastAck,
        MessageType::AdapterClose,
    ];

    /// The number on the wire, 1 to 13.
    pub fn code(self) -> u8 {
        match self {
            MessageType::InitialHeartbeat => 1,
            MessageType::Heartbeat => 2,
            MessageType::Broadcast => 3,
            MessageType::SocketsJoin => 4,
            MessageType::SocketsLeave => 5,
            MessageType::DisconnectSockets => 6,
            MessageType::FetchSockets => 7,
            MessageType::FetchSocketsResponse => 8,
            MessageType::ServerSideEmit => 9,
            MessageType::ServerSideEmitResponse => 10,
            MessageType::BroadcastClientCount => 11,
            MessageType::BroadcastAck => 12,
            MessageType::AdapterClose => 13,
        }
    }

    /// The type of a wire number, if it has one.
    pub fn from_code(code: u64) -> Option<Self> {
        let index = usize::try_from(code.checked_sub(1)?).ok()?;
        Self::ALL.get(index).copied()
    }

    /// Whether it is a response, published on the requester's response channel.
    pub fn is_response(self) -> bool {
        matches!(
            self,
            MessageType::FetchSocketsResponse
                | MessageType::ServerSideEmitResponse
                | MessageType::BroadcastClientCount
                | MessageType::BroadcastAck
        )
    }

    /// Whether its data may hold binaries, and so travel as MessagePack when it does.
    pub fn may_contain_binary(self) -> bool {
        matches!(
            self,
            MessageType::Broadcast
                | MessageType::BroadcastAck
                | MessageType::FetchSocketsResponse
                | MessageType::ServerSideEmit
                | MessageType::ServerSideEmitResponse
        )
    }
}

/// `BROADCAST` (3): `{packet, requestId?, opts}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardedBroadcast {
    /// The packet to deliver. Its `nsp` is not sent; decoding sets it to the message's `nsp`.
    pub packet: Packet,
    /// Present for a broadcast with acknowledgements: the responses carry it.
    pub request_id: Option<String>,
    /// Who to deliver it to; `flags.timeout` is how long the sender waits for acks.
    pub opts: BroadcastOptions,
}

/// `SOCKETS_JOIN` (4) and `SOCKETS_LEAVE` (5): `{opts, rooms}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardedRoomsRequest {
    /// Which sockets (`{rooms, except, flags}`).
    pub opts: BroadcastOptions,
    /// The rooms to join or leave, as given (duplicates are kept).
    pub rooms: Vec<String>,
}

/// `DISCONNECT_SOCKETS` (6): `{opts, close}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardedDisconnectRequest {
    /// Which sockets (`{rooms, except, flags}`).
    pub opts: BroadcastOptions,
    /// Whether to close the underlying connection too.
    pub close: bool,
}

/// `FETCH_SOCKETS` (7): `{opts, requestId}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardedFetchRequest {
    /// Which sockets (`{rooms, except, flags}`; `flags.timeout` bounds the sender's wait).
    pub opts: BroadcastOptions,
    /// Correlates the responses.
    pub request_id: String,
}

/// `SERVER_SIDE_EMIT` (9): `{requestId?, packet}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardedServerSideEmit {
    /// Present when the sender waits for one acknowledgement per server.
    pub request_id: Option<String>,
    /// The event name followed by its arguments (`packet` on the wire; binaries allowed).
    pub packet: Vec<Value>,
}

/// `SERVER_SIDE_EMIT_RESPONSE` (10): `{requestId, packet}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardedServerSideEmitResponse {
    /// The request answered.
    pub request_id: String,
    /// The first argument the server acknowledged with; `None` for none (JS `undefined`).
    pub packet: Option<Value>,
}

/// What a sharded message carries: one variant per [`MessageType`], with its `data`.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardedBody {
    /// `INITIAL_HEARTBEAT` (1), no data.
    InitialHeartbeat,
    /// `HEARTBEAT` (2), no data.
    Heartbeat,
    /// `BROADCAST` (3).
    Broadcast(ShardedBroadcast),
    /// `SOCKETS_JOIN` (4).
    SocketsJoin(ShardedRoomsRequest),
    /// `SOCKETS_LEAVE` (5).
    SocketsLeave(ShardedRoomsRequest),
    /// `DISCONNECT_SOCKETS` (6).
    DisconnectSockets(ShardedDisconnectRequest),
    /// `FETCH_SOCKETS` (7).
    FetchSockets(ShardedFetchRequest),
    /// `FETCH_SOCKETS_RESPONSE` (8): `{requestId, sockets}`, as in the classic mode.
    FetchSocketsResponse(FetchResponse),
    /// `SERVER_SIDE_EMIT` (9).
    ServerSideEmit(ShardedServerSideEmit),
    /// `SERVER_SIDE_EMIT_RESPONSE` (10).
    ServerSideEmitResponse(ShardedServerSideEmitResponse),
    /// `BROADCAST_CLIENT_COUNT` (11): `{requestId, clientCount}`, as in the classic mode.
    BroadcastClientCount(BroadcastClientCountResponse),
    /// `BROADCAST_ACK` (12): `{requestId, packet}`, as in the classic mode.
    BroadcastAck(BroadcastAckResponse),
    /// `ADAPTER_CLOSE` (13), no data.
    AdapterClose,
}

impl ShardedBody {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            ShardedBody::InitialHeartbeat => MessageType::InitialHeartbeat,
            ShardedBody::Heartbeat => MessageType::Heartbeat,
            ShardedBody::Broadcast(_) => MessageType::Broadcast,
            ShardedBody::SocketsJoin(_) => MessageType::SocketsJoin,
            ShardedBody::SocketsLeave(_) => MessageType::SocketsLeave,
            ShardedBody::DisconnectSockets(_) => MessageType::DisconnectSockets,
            ShardedBody::FetchSockets(_) => MessageType::FetchSockets,
            ShardedBody::FetchSocketsResponse(_) => MessageType::FetchSocketsResponse,
            ShardedBody::ServerSideEmit(_) => MessageType::ServerSideEmit,
            ShardedBody::ServerSideEmitResponse(_) => MessageType::ServerSideEmitResponse,
            ShardedBody::BroadcastClientCount(_) => MessageType::BroadcastClientCount,
            ShardedBody::BroadcastAck(_) => MessageType::BroadcastAck,
            ShardedBody::AdapterClose => MessageType::AdapterClose,
        }
    }

    /// The request id: of the request for requests that expect responses, of the answered
    /// request for responses.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ShardedBody::Broadcast(b) => b.request_id.as_deref(),
            ShardedBody::FetchSockets(r) => Some(&r.request_id),
            ShardedBody::FetchSocketsResponse(r) => Some(&r.request_id),
            ShardedBody::ServerSideEmit(r) => r.request_id.as_deref(),
            ShardedBody::ServerSideEmitResponse(r) => Some(&r.request_id),
            ShardedBody::BroadcastClientCount(r) => Some(&r.request_id),
            ShardedBody::BroadcastAck(r) => Some(&r.request_id),
            ShardedBody::InitialHeartbeat
            | ShardedBody::Heartbeat
            | ShardedBody::SocketsJoin(_)
            | ShardedBody::SocketsLeave(_)
            | ShardedBody::DisconnectSockets(_)
            | ShardedBody::AdapterClose => None,
        }
    }

    /// The `data` object in Node's key order, or `None` for the types without data.
    fn data_value(&self) -> Result<Option<Value>, ProtocolError> {
        let opts = |opts: &BroadcastOptions| (key("opts"), opts.to_value(Layout::Adapter));
        let request_id = |id: &str| (key("requestId"), Value::from(id));
        let entries = match self {
            ShardedBody::InitialHeartbeat | ShardedBody::Heartbeat | ShardedBody::AdapterClose => {
                return Ok(None);
            }
            ShardedBody::Broadcast(b) => {
                // `{type, data}`: the sender's packet has no `nsp` yet when it is published.
                let packet = Value::Map(vec![
                    (key("type"), Value::from(b.packet.packet_type.code())),
                    (key("data"), Value::Array(b.packet.data.clone())),
                ]);
                let mut entries = vec![(key("packet"), packet)];
                entries.extend(b.request_id.as_deref().map(request_id));
                entries.push(opts(&b.opts));
                entries
            }
            ShardedBody::SocketsJoin(r) | ShardedBody::SocketsLeave(r) => {
                vec![opts(&r.opts), (key("rooms"), strings(&r.rooms))]
            }
            ShardedBody::DisconnectSockets(r) => {
                vec![opts(&r.opts), (key("close"), Value::Boolean(r.close))]
            }
            ShardedBody::FetchSockets(r) => vec![opts(&r.opts), request_id(&r.request_id)],
            ShardedBody::FetchSocketsResponse(r) => {
                let sockets = serde_json::to_value(&r.sockets)?;
                vec![
                    request_id(&r.request_id),
                    (key("sockets"), value::msgpack_from_json(sockets)),
                ]
            }
            ShardedBody::ServerSideEmit(r) => {
                let mut entries: Vec<_> = r
                    .request_id
                    .as_deref()
                    .map(request_id)
                    .into_iter()
                    .collect();
                entries.push((key("packet"), Value::Array(r.packet.clone())));
                entries
            }
            ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
                request_id: id,
                packet,
            })
            | ShardedBody::BroadcastAck(BroadcastAckResponse {
                request_id: id,
                packet,
            }) => {
                // JS drops an `undefined` property, in JSON and in notepack alike.
                let mut entries = vec![request_id(id)];
                entries.extend(packet.clone().map(|p| (key("packet"), p)));
                entries
            }
            ShardedBody::BroadcastClientCount(r) => vec![
                request_id(&r.request_id),
                (key("clientCount"), Value::from(r.client_count)),
            ],
        };
        Ok(Some(Value::Map(entries)))
    }

    /// Reads the `data` of a message of type `kind`; `nsp` is the message's namespace.
    fn from_data(
        kind: MessageType,
        data: Option<&Value>,
        nsp: &str,
    ) -> Result<Self, ProtocolError> {
        let map = || value::as_map(data.ok_or(ProtocolError::MissingField("data"))?, "data");
        let request_id = || value::string(map()?, "requestId", "data.requestId");
        let opt_request_id = || value::opt_string(map()?, "requestId", "data.requestId");
        let opts =
            || BroadcastOptions::from_value(Some(value::require(map()?, "opts", "data.opts")?));
        let rooms = || value::rooms(value::get(map()?, "rooms"), "data.rooms");
        let array = |key: &str, field: &'static str, expected: &'static str| match value::require(
            map()?,
            key,
            field,
        )? {
            Value::Array(items) => Ok(items),
            _ => Err(ProtocolError::InvalidField { field, expected }),
        };
        Ok(match kind {
            MessageType::InitialHeartbeat => ShardedBody::InitialHeartbeat,
            MessageType::Heartbeat => ShardedBody::Heartbeat,
            MessageType::AdapterClose => ShardedBody::AdapterClose,
            MessageType::Broadcast => {
                let mut packet =
                    Packet::from_value(value::require(map()?, "packet", "data.packet")?)?;
                // Node delivers it in the receiving namespace, whatever the packet says.
                nsp.clone_into(&mut packet.nsp);
                ShardedBody::Broadcast(ShardedBroadcast {
                    packet,
                    request_id: opt_request_id()?,
                    opts: opts()?,
                })
            }
            MessageType::SocketsJoin => ShardedBody::SocketsJoin(ShardedRoomsRequest {
                opts: opts()?,
                rooms: rooms()?,
            }),
            MessageType::SocketsLeave => ShardedBody::SocketsLeave(ShardedRoomsRequest {
                opts: opts()?,
                rooms: rooms()?,
            }),
            MessageType::DisconnectSockets => {
                ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
                    opts: opts()?,
                    close: value::opt_bool(map()?, "close", "data.close")?.unwrap_or(false),
                })
            }
            MessageType::FetchSockets => ShardedBody::FetchSockets(ShardedFetchRequest {
                opts: opts()?,
                request_id: request_id()?,
            }),
            MessageType::FetchSocketsResponse => {
                let sockets = array("sockets", "data.sockets", "an array of sockets")?;
                ShardedBody::FetchSocketsResponse(FetchResponse {
                    request_id: request_id()?,
                    sockets: sockets
                        .iter()
                        .map(fetched_socket)
                        .collect::<Result<_, _>>()?,
                })
            }
            MessageType::ServerSideEmit => ShardedBody::ServerSideEmit(ShardedServerSideEmit {
                request_id: opt_request_id()?,
                packet: array("packet", "data.packet", "an array [event, ...args]")?.clone(),
            }),
            MessageType::ServerSideEmitResponse => {
                ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
                    request_id: request_id()?,
                    packet: raw_field(map()?, "packet").cloned(),
                })
            }
            MessageType::BroadcastClientCount => {
                let count = value::require(map()?, "clientCount", "data.clientCount")?;
                ShardedBody::BroadcastClientCount(BroadcastClientCountResponse {
                    request_id: request_id()?,
                    client_count: value::as_whole_number(count).ok_or(
                        ProtocolError::InvalidField {
                            field: "data.clientCount",
                            expected: "a non-negative whole number",
                        },
                    )?,
                })
            }
            MessageType::BroadcastAck => ShardedBody::BroadcastAck(BroadcastAckResponse {
                request_id: request_id()?,
                packet: raw_field(map()?, "packet").cloned(),
            }),
        })
    }
}

/// A message between the nodes of a sharded cluster: `{type, data, uid, nsp}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardedMessage {
    /// The sending node. A node ignores its own messages.
    pub uid: String,
    /// The sender's namespace. A node ignores messages of other namespaces.
    pub nsp: String,
    /// The type and its data.
    pub body: ShardedBody,
}

impl ShardedMessage {
    /// A message from node `uid` in namespace `nsp`.
    pub fn new(uid: impl Into<String>, nsp: impl Into<String>, body: ShardedBody) -> Self {
        Self {
            uid: uid.into(),
            nsp: nsp.into(),
            body,
        }
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.body.message_type()
    }

    /// The bytes the Node sharded adapter publishes for this message: `JSON.stringify` output,
    /// or notepack.io MessagePack when the type may carry binaries and the data holds one.
    ///
    /// In JSON, timestamps become ISO-8601 strings as `Date`s do, and numbers are formatted by
    /// `serde_json` (which writes `1e21` where JavaScript writes `1e+21`).
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let kind = self.message_type();
        let data = self.body.data_value()?;
        let mut scan = Scan::default();
        if let Some(data) = &data {
            // Depth is counted from the message, which wraps `data` in one map.
            scan.visit(data, 1)?;
        }
        let as_msgpack = scan.binary && kind.may_contain_binary();
        let mut entries = vec![(key("type"), Value::from(kind.code()))];
        if let Some(data) = data {
            let data = if scan.dates && !as_msgpack {
                dates_to_iso(data)?
            } else {
                data
            };
            entries.push((key("data"), data));
        }
        entries.push((key("uid"), Value::from(self.uid.as_str())));
        entries.push((key("nsp"), Value::from(self.nsp.as_str())));
        let message = Value::Map(entries);
        if as_msgpack {
            msgpack::encode(&message)
        } else {
            // What `JSON.stringify` makes of the object notepack would have decoded; a binary
            // here (in a type that never carries one) becomes a Node `Buffer`'s JSON.
            Ok(serde_json::to_vec(&value::json_from_msgpack(&message))?)
        }
    }

    /// Reads a message published by any `ClusterAdapter` sender, JSON or MessagePack (told apart
    /// by a leading `{`).
    ///
    /// Tolerant like the Node adapter: unknown fields are ignored, `rooms`, `except` and `flags`
    /// may be absent, `close` defaults to `false`, whole-number floats are numbers, and
    /// MessagePack timestamps become ISO-8601 strings. `uid` and `nsp` are required (every
    /// sender sets them; Node drops a message whose `nsp` is not its own), and so is `opts`
    /// where the type has one (Node would throw without it).
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let message = value::decode_payload(payload)?;
        let map = value::as_map(&message, "message")?;
        let code = value::require(map, "type", "type")?;
        let code = value::as_whole_number(code).ok_or(ProtocolError::InvalidField {
            field: "type",
            expected: "a message type number",
        })?;
        let kind = MessageType::from_code(code).ok_or(ProtocolError::UnknownMessageType(code))?;
        let uid = value::string(map, "uid", "uid")?;
        let nsp = value::string(map, "nsp", "nsp")?;
        let body = ShardedBody::from_data(kind, value::get(map, "data"), &nsp)?;
        Ok(Self { uid, nsp, body })
    }
}

fn key(name: &str) -> Value {
    Value::from(name)
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().map(|s| Value::from(s.as_str())).collect())
}

/// Whether a value is a notepack `Date`: a timestamp extension of a valid size.
fn is_timestamp(value: &Value) -> bool {
    matches!(value, Value::Ext(-1, data) if matches!(data.len(), 4 | 8 | 12))
}

/// What a walk over the data found, as the adapter's `hasBinary` sees it.
#[derive(Default)]
struct Scan {
    /// A binary (a `Buffer`), or an extension that is not a date.
    binary: bool,
    /// A timestamp (a `Date`), which JSON writes as its ISO string.
    dates: bool,
}

impl Scan {
    /// Walks `value` at nesting `depth`, refusing what [`msgpack::encode`] would refuse, so that
    /// the JSON path has the same bound.
    fn visit(&mut self, value: &Value, depth: usize) -> Result<(), ProtocolError> {
        match value {
            Value::Binary(_) => self.binary = true,
            Value::Ext(..) if is_timestamp(value) => self.dates = true,
            Value::Ext(..) => self.binary = true,
            Value::Array(_) | Value::Map(_) if depth >= msgpack::MAX_DEPTH => {
                return Err(ProtocolError::Encode("value nests deeper than MAX_DEPTH"));
            }
            Value::Array(items) => {
                for item in items {
                    self.visit(item, depth + 1)?;
                }
            }
            Value::Map(entries) => {
                for (k, item) in entries {
                    self.visit(k, depth + 1)?;
                    self.visit(item, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A copy of `value` with every timestamp replaced by what a JS peer reads for the `Date`: its
/// ISO-8601 string, or nil for an invalid date. Called on values [`Scan`] has bounded.
fn dates_to_iso(value: Value) -> Result<Value, ProtocolError> {
    Ok(match value {
        ext @ Value::Ext(..) if is_timestamp(&ext) => msgpack::decode(&msgpack::encode(&ext)?)?,
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(dates_to_iso)
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| Ok((dates_to_iso(k)?, dates_to_iso(v)?)))
                .collect::<Result<_, ProtocolError>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `sharded_message` fuzz target: serde_json's default float parsing can
    /// be one ULP off, so a number a Node peer sent (JavaScript parses and prints floats
    /// exactly) reached clients changed, and decode∘encode was not stable. The
    /// `float_roundtrip` feature makes parsing exact.
    #[test]
    fn json_floats_pass_through_exactly() {
        let json = br#"{"type":3,"data":{"packet":{"type":2,"data":["n",4294967290907199254740992,4.2949672909072e+24,-0.15]},"opts":{}},"uid":"u","nsp":"/"}"#;
        let message = ShardedMessage::decode(json).expect("decodes");
        let ShardedBody::Broadcast(broadcast) = &message.body else {
            panic!("not a broadcast");
        };
        assert_eq!(
            broadcast.packet.args(),
            [
                Value::F64(4_294_967_290_907_199_254_740_992.0),
                Value::F64(4.2949672909072e24),
                Value::F64(-0.15)
            ]
        );
        let bytes = message.encode().expect("encodes");
        let again = ShardedMessage::decode(&bytes).expect("decodes again");
        assert_eq!(again, message);
        assert_eq!(again.encode().expect("encodes again"), bytes);
    }

    #[test]
    fn type_codes_match_socket_io_adapter() {
        for code in 1..=13 {
            let kind = MessageType::from_code(code).expect("known");
            assert_eq!(u64::from(kind.code()), code);
        }
        assert_eq!(MessageType::from_code(0), None);
        assert_eq!(MessageType::from_code(14), None);
        assert_eq!(MessageType::from_code(u64::MAX), None);
        assert_eq!(
            MessageType::ALL.iter().filter(|t| t.is_response()).count(),
            4
        );
        assert_eq!(
            MessageType::ALL
                .iter()
                .filter(|t| t.may_contain_binary())
                .count(),
            5
        );
    }

    #[test]
    fn room_channel_only_for_one_room_without_ack() {
        let c = ShardedChannels::with_default_prefix("/");
        let opts = |rooms: &[&str]| BroadcastOptions::to_rooms(rooms.iter().copied());
        let dynamic = SubscriptionMode::Dynamic;
        assert_eq!(c.channel_for_broadcast(&opts(&[]), dynamic), "socket.io#/#");
        assert_eq!(
            c.channel_for_broadcast(&opts(&["a", "a"]), dynamic),
            "socket.io#/#a#"
        );
        assert_eq!(
            c.channel_for_broadcast(&opts(&["a", "b"]), dynamic),
            "socket.io#/#"
        );
        let sid = "A".repeat(SOCKET_ID_LEN);
        assert_eq!(
            c.channel_for_broadcast(&opts(&[&sid]), dynamic),
            "socket.io#/#"
        );
        assert_eq!(
            c.channel_for_broadcast(&opts(&[&sid]), SubscriptionMode::DynamicPrivate),
            format!("socket.io#/#{sid}#")
        );
        assert_eq!(
            c.channel_for_broadcast(&opts(&["a"]), SubscriptionMode::Static),
            "socket.io#/#"
        );
        let with_ack = ShardedBody::Broadcast(ShardedBroadcast {
            request_id: Some("r".into()),
            opts: opts(&["a"]),
            ..ShardedBroadcast::default()
        });
        assert_eq!(
            c.channel_for(&with_ack, dynamic).as_deref(),
            Some("socket.io#/#")
        );
        let response = ShardedBody::BroadcastClientCount(BroadcastClientCountResponse::default());
        assert_eq!(c.channel_for(&response, dynamic), None);
    }

    #[test]
    fn socket_ids_are_measured_in_utf16() {
        assert!(looks_like_a_socket_id(&"😀".repeat(10)));
        assert!(!looks_like_a_socket_id(&"é".repeat(10)));
        assert!(looks_like_a_socket_id(&"é".repeat(20)));
    }

    #[test]
    fn modes_by_name() {
        for mode in [
            SubscriptionMode::Static,
            SubscriptionMode::Dynamic,
            SubscriptionMode::DynamicPrivate,
        ] {
            assert_eq!(SubscriptionMode::from_name(mode.name()), Some(mode));
        }
        assert_eq!(SubscriptionMode::from_name("Dynamic"), None);
        assert_eq!(SubscriptionMode::default(), SubscriptionMode::Dynamic);
    }

    #[test]
    fn parse_channels() {
        let c = ShardedChannels::with_default_prefix("/");
        assert_eq!(
            c.parse("socket.io#/#", "me").expect("main"),
            ShardedChannel::Main { nsp: "/" }
        );
        let response = c.parse("socket.io#/#me#", "me").expect("response");
        assert_eq!(
            response,
            ShardedChannel::Response {
                nsp: "/",
                uid: "me"
            }
        );
        assert!(response.carries_responses());
        assert_eq!(
            c.parse("socket.io#/#a#b#", "me").expect("room with #"),
            ShardedChannel::Room {
                nsp: "/",
                room: "a#b"
            }
        );
        assert!(matches!(
            c.parse("socket.io#/chat#", "me"),
            Err(ProtocolError::ForeignNamespace { .. })
        ));
        assert!(matches!(
            c.parse("other#/#", "me"),
            Err(ProtocolError::ForeignChannel { .. })
        ));
        assert!(matches!(
            c.parse("socket.io#/#room", "me"),
            Err(ProtocolError::MalformedChannel { .. })
        ));
        assert!(matches!(
            c.parse("socket.io#/##", "me"),
            Err(ProtocolError::MalformedChannel { .. })
        ));
        assert_eq!(
            parse_sharded_channel("myapp", "myapp#/chat#lobby#", "me").expect("room"),
            ShardedChannel::Room {
                nsp: "/chat",
                room: "lobby"
            }
        );
        assert_eq!(
            parse_sharded_channel("myapp", "myapp#/chat#", "me")
                .expect("main")
                .nsp(),
            "/chat"
        );
        assert!(matches!(
            parse_sharded_channel("socket.io", "socket.io##", "me"),
            Err(ProtocolError::MalformedChannel { .. })
        ));
        assert!(matches!(
            parse_sharded_channel("socket.io", "socket.io#/", "me"),
            Err(ProtocolError::MalformedChannel { .. })
        ));
        assert!(matches!(
            parse_sharded_channel("socket.io", "socket.io-request#/#", "me"),
            Err(ProtocolError::ForeignChannel { .. })
        ));
    }

    #[test]
    fn every_body_round_trips() {
        let opts = BroadcastOptions {
            rooms: vec!["a".into()],
            except: vec!["b".into()],
            ..BroadcastOptions::default()
        };
        let bodies = [
            ShardedBody::InitialHeartbeat,
            ShardedBody::Heartbeat,
            ShardedBody::Broadcast(ShardedBroadcast {
                packet: Packet::event("/x", "ev", [Value::Binary(vec![1])]),
                request_id: Some("r".into()),
                opts: opts.clone(),
            }),
            ShardedBody::SocketsJoin(ShardedRoomsRequest {
                opts: opts.clone(),
                rooms: vec!["c".into(), "c".into()],
            }),
            ShardedBody::SocketsLeave(ShardedRoomsRequest::default()),
            ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
                opts: opts.clone(),
                close: true,
            }),
            ShardedBody::FetchSockets(ShardedFetchRequest {
                opts,
                request_id: "r".into(),
            }),
            ShardedBody::FetchSocketsResponse(FetchResponse {
                request_id: "r".into(),
                sockets: vec![],
            }),
            ShardedBody::ServerSideEmit(ShardedServerSideEmit {
                request_id: None,
                packet: vec![Value::from("ev"), Value::from(1)],
            }),
            ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
                request_id: "r".into(),
                packet: Some(Value::Nil),
            }),
            ShardedBody::BroadcastClientCount(BroadcastClientCountResponse {
                request_id: "r".into(),
                client_count: 2,
            }),
            ShardedBody::BroadcastAck(BroadcastAckResponse {
                request_id: "r".into(),
                packet: None,
            }),
            ShardedBody::AdapterClose,
        ];
        for body in bodies {
            let message = ShardedMessage::new("u", "/x", body);
            let bytes = message.encode().expect("encodes");
            assert_eq!(
                bytes[0] == b'{',
                message.message_type() != MessageType::Broadcast,
                "{message:?}"
            );
            assert_eq!(ShardedMessage::decode(&bytes).expect("decodes"), message);
        }
    }

    #[test]
    fn dates_are_iso_strings_in_json_and_timestamps_in_msgpack() {
        let date = Value::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec());
        let emit = |args: Vec<Value>| {
            ShardedMessage::new(
                "u",
                "/",
                ShardedBody::ServerSideEmit(ShardedServerSideEmit {
                    request_id: None,
                    packet: args,
                }),
            )
        };
        let json = emit(vec![Value::from("ev"), date.clone()])
            .encode()
            .expect("encodes");
        assert_eq!(
            String::from_utf8(json).expect("utf-8"),
            r#"{"type":9,"data":{"packet":["ev","2023-11-14T22:13:20.000Z"]},"uid":"u","nsp":"/"}"#
        );
        let binary = emit(vec![Value::from("ev"), date, Value::Binary(vec![])])
            .encode()
            .expect("encodes");
        assert_ne!(binary[0], b'{');
        assert!(
            binary.windows(2).any(|w| w == [0xd6, 0xff]),
            "fixext 4 timestamp"
        );
    }

    #[test]
    fn too_deep_data_is_refused_on_both_paths() {
        let mut deep = Value::Nil;
        for _ in 0..msgpack::MAX_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        for extra in [Value::Nil, Value::Binary(vec![])] {
            let message = ShardedMessage::new(
                "u",
                "/",
                ShardedBody::ServerSideEmit(ShardedServerSideEmit {
                    request_id: None,
                    packet: vec![deep.clone(), extra],
                }),
            );
            assert!(matches!(message.encode(), Err(ProtocolError::Encode(_))));
        }
    }
}

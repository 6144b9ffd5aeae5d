//! The streams mode of [`@socket.io/redis-streams-adapter`](https://github.com/socketio/socket.io-redis-streams-adapter)
//! 0.3.1: Redis streams for what must not be lost, classic pub/sub for the rest. No I/O.
//!
//! The streams adapter extends socket.io-adapter 2.5's `ClusterAdapter` (not the heartbeat
//! variant), like the sharded adapter: its messages are the same `{type, data, uid, nsp}`
//! objects, [`ShardedMessage`](crate::ShardedMessage), with the same types and data ([`crate::sharded`] has the
//! table). What differs is how they travel.
//!
//! # Stream entries
//!
//! Every message that is not ephemeral ([`is_ephemeral`]) is appended to the namespace's
//! stream ([`StreamsOptions::stream_for`]) with
//!
//! ```text
//! XADD <stream> MAXLEN ~ <maxLen> * uid <uid> nsp <nsp> type <type> [data <data>]
//! ```
//!
//! ([`entry_fields`]): `type` is the decimal type code, and `data` (absent for the types without
//! data) is `JSON.stringify(data)`, or, for the five types whose data may hold binaries, the
//! base64 of its `@msgpack/msgpack` encoding when it does hold one. A reader tells the two apart
//! by a leading `{` ([`message_from_entry`]). These are the broadcasts without acknowledgements
//! and `SOCKETS_JOIN`, `SOCKETS_LEAVE`, `DISCONNECT_SOCKETS` (and the heartbeat types, should a
//! heartbeating sender use this encoding). The entry id `XADD` returns is the broadcast's
//! offset, which connection state recovery hands to clients.
//!
//! Each node reads every stream ([`StreamsOptions::streams`]) with `XREAD BLOCK 5000 COUNT 100
//! STREAMS <stream> <id>` ([`DEFAULT_BLOCK_MS`], [`DEFAULT_READ_COUNT`]), one connection per
//! stream, starting from `$` and then from the last id it got; it skips entries without `nsp`,
//! drops its own messages by `uid` and those of namespaces it does not serve.
//!
//! # Pub/sub
//!
//! The ephemeral messages — a broadcast with acknowledgements (a `BROADCAST` with a
//! `requestId`), `SERVER_SIDE_EMIT` and `FETCH_SOCKETS` — are `PUBLISH`ed on the namespace's
//! public channel, and every response on the requester's private channel, as `@msgpack/msgpack`'s
//! encoding of the whole message ([`encode_pubsub`], [`decode_pubsub`]). The channel names are
//! sharded mode's main and response channels ([`crate::ShardedChannels`]), used with classic
//! `PUBLISH`/`SUBSCRIBE` (the Node adapter's `useShardedPubSub` option, off by default, would
//! switch to `SPUBLISH`/`SSUBSCRIBE`):
//!
//! | channel | name | carries |
//! |---|---|---|
//! | public ([`ShardedChannels::main`](crate::ShardedChannels::main)) | `socket.io#<nsp>#` | ephemeral messages |
//! | private ([`ShardedChannels::response`](crate::ShardedChannels::response)) | `socket.io#<nsp>#<uid>#` | responses for node `uid` |
//!
//! Each node `SUBSCRIBE`s to both for every namespace, and counts the servers with `PUBSUB
//! NUMSUB <public channel>`. There are no room channels. The channel prefix is the adapter's
//! `channelPrefix` (default `socket.io`), independent of the stream name.
//!
//! ```
//! use sio_protocol::streams::{StreamsOptions, entry_fields, is_ephemeral, message_from_entry};
//! use sio_protocol::{BroadcastOptions, Packet, ShardedBody, ShardedBroadcast, ShardedMessage};
//!
//! let message = ShardedMessage::new("0123456789abcdef", "/", ShardedBody::Broadcast(
//!     ShardedBroadcast {
//!         packet: Packet::event("/", "news", ["hi".into()]),
//!         request_id: None,
//!         opts: BroadcastOptions::default(),
//!     },
//! ));
//! assert!(!is_ephemeral(&message.body)); // XADD it
//! let options = StreamsOptions::default();
//! let stream = options.stream_for(&message.nsp);
//! let fields = entry_fields(&message)?;
//! assert_eq!(stream, "socket.io");
//!
//! // What a reading node makes of the entry.
//! let read = message_from_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))?;
//! assert_eq!(read, Some(message));
//! # Ok::<(), sio_protocol::ProtocolError>(())
//! ```
//!
//! # Sessions
//!
//! With connection state recovery, a socket's session is stored under
//! [`SESSION_KEY_PREFIX`]`<pid>` ([`Session`]), and restoring it replays the stream's
//! `BROADCAST` entries after the client's offset, a stream id ([`is_stream_id`]).

mod entry;
mod options;
mod pubsub;
mod session;
#[cfg(test)]
mod tests;

pub use entry::{FIELD_DATA, FIELD_NSP, FIELD_TYPE, FIELD_UID, entry_fields, message_from_entry};
pub use options::{
    DEFAULT_BLOCK_MS, DEFAULT_MAX_LEN, DEFAULT_READ_COUNT, DEFAULT_STREAM_COUNT,
    DEFAULT_STREAM_NAME, SESSION_KEY_PREFIX, StreamsOptions, hash_code,
};
pub use pubsub::{JS_MSGPACK_MAX_DEPTH, decode_pubsub, encode_pubsub};
pub use session::{Session, compare_stream_ids, is_stream_id, session_key};

use crate::sharded::ShardedBody;

/// Whether the Node streams adapter sends a message with this body by pub/sub rather than
/// appending it to a stream (`isEphemeral`): a broadcast with acknowledgements, a server-side
/// emit, a fetch-sockets request.
///
/// This is the adapter's test for `doPublish`; responses never go through it: they are always
/// published on the requester's channel (and this returns `false` for them, as Node's does).
pub fn is_ephemeral(body: &ShardedBody) -> bool {
    match body {
        ShardedBody::Broadcast(broadcast) => broadcast.request_id.is_some(),
        ShardedBody::ServerSideEmit(_) | ShardedBody::FetchSockets(_) => true,
        _ => false,
    }
}

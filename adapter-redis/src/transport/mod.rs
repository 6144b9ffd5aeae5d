//! How messages travel through Redis: the seam between the cluster glue and the modes.
//!
//! A [`Transport`] publishes the adapter's domain messages (broadcasts, requests,
//! responses) in call order, subscribes to what a namespace needs, counts the nodes, and
//! hands every message it receives to a [`Receiver`] as an [`Inbound`]. There is one
//! implementation per mode, and this folder is the only place of the crate that knows the
//! modes exist:
//!
//! | mode | file | publish | receive | nodes |
//! |---|---|---|---|---|
//! | classic (`createAdapter`) | `classic.rs` | `PUBLISH` | `PSUBSCRIBE`/`SUBSCRIBE` | `PUBSUB NUMSUB` |
//! | sharded (`createShardedAdapter`) | `sharded.rs` | `SPUBLISH` | `SSUBSCRIBE`, per room too | `PUBSUB SHARDNUMSUB` |
//! | streams (`@socket.io/redis-streams-adapter`) | `streams.rs` | `XADD`; `PUBLISH` for acks, answers | `XREAD` from the last entry read; `SUBSCRIBE` | `PUBSUB NUMSUB` |
//! | in-process (unit tests) | `stub.rs` | a shared bus | the bus | the bus |
//!
//! Shared by the Redis modes: `link.rs` (the fred clients, the receive pump, the liveness
//! channel), `publisher.rs` (the one ordered outgoing queue) and `sentinel.rs` (following a
//! failover at once). Adding a mode means one new file here and one arm in [`connect`].

mod classic;
mod link;
mod publisher;
mod sentinel;
mod sharded;
mod streams;
#[cfg(test)]
pub(crate) mod stub;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;

use crate::AdapterError;
use crate::config::RedisAdapterConfig;
use crate::protocol::{BroadcastMessage, ProtocolError, Request, Response};
use crate::stats::Stats;
use crate::wire::AdapterMode;

/// A boxed future, as trait objects return them.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How one mode moves messages through Redis. Every method that sends queues the message
/// at once, in call order, and returns without waiting for Redis: per-sender order across
/// nodes rests on it.
pub(crate) trait Transport: Send + Sync + 'static {
    /// Starts receiving: every message for this node is handed to `receiver`, and each
    /// liveness probe that comes back is reported. Returns the tasks to stop on close.
    fn start(&self, receiver: Arc<dyn Receiver>) -> Vec<tokio::task::JoinHandle<()>>;

    /// Subscribes to what namespace `nsp` needs; resolves once the subscriptions are live.
    fn join_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>>;

    /// Undoes [`Transport::join_namespace`], room subscriptions included.
    fn leave_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>>;

    /// Whether some rooms have channels of their own, which must follow the local rooms
    /// ([`Transport::sync_rooms`]).
    fn follows_rooms(&self) -> bool {
        false
    }

    /// Brings the room subscriptions of `nsp` in line with its local `rooms`.
    fn sync_rooms(&self, nsp: &str, rooms: Vec<String>) -> BoxFuture<'static, ()> {
        let _ = (nsp, rooms);
        Box::pin(async {})
    }

    /// Queues a broadcast (without acks) for the other nodes. A volatile one is dropped,
    /// and counted, when the queue is full; any other is refused with
    /// [`AdapterError::Overloaded`].
    fn broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
        volatile: bool,
    ) -> Result<(), AdapterError>;

    /// Queues a request for the other nodes. `Ok(false)`: the mode has no such request
    /// (sharded mode has no all-rooms request), nothing was sent.
    fn request(&self, nsp: &str, request: Request) -> Result<bool, AdapterError>;

    /// Queues the answer to node `to`'s request.
    fn respond(&self, nsp: &str, to: Option<&str>, response: Response) -> Result<(), AdapterError>;

    /// How many nodes serve `nsp`, this one included.
    fn node_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>>;

    /// Sends this node a liveness probe through Redis; [`Receiver::on_alive`] when it
    /// comes back.
    fn probe(&self) -> BoxFuture<'static, ()>;

    /// Whether every connection is up.
    fn is_connected(&self) -> bool;

    /// The command client, for other uses of the same connection (registry, history).
    fn client(&self) -> &Client;

    /// Sends what is queued (at most `timeout`), then closes the connections.
    fn close(&self, timeout: Duration) -> BoxFuture<'_, ()>;

    /// Whether broadcasts travel through a log whose entry ids are offsets (streams
    /// mode): connection state recovery needs one.
    fn has_log(&self) -> bool {
        false
    }

    /// The log position of `nsp`'s stream: the last entry this node has handed to the
    /// receiver (or where it started reading). `None` without a log.
    fn log_position(&self, nsp: &str) -> Option<String> {
        let _ = nsp;
        None
    }

    /// Whether everything after entry `after` is still in `nsp`'s log (the entry itself is
    /// there, or nothing was ever trimmed when `after` is `0-0`).
    fn log_holds(&self, nsp: &str, after: &str) -> BoxFuture<'static, Result<bool, AdapterError>> {
        let _ = (nsp, after);
        Box::pin(async { Ok(false) })
    }

    /// The broadcasts of `nsp` logged after entry `after`, in log order, with their ids.
    fn log_after(
        &self,
        nsp: &str,
        after: &str,
    ) -> BoxFuture<'static, Result<Vec<(String, BroadcastMessage)>, AdapterError>> {
        let _ = (nsp, after);
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Where a transport hands what it receives.
pub(crate) trait Receiver: Send + Sync + 'static {
    /// A broadcast or request for namespace `nsp`.
    fn on_message(&self, nsp: &str, message: Inbound<'_>);
    /// An answer to a request (of this node, or of another one on a shared channel).
    fn on_response(&self, response: InboundResponse<'_>);
    /// This node's liveness probe came back.
    fn on_alive(&self);
}

/// A message for a namespace, as far as the transport decoded it.
#[derive(Debug)]
pub(crate) enum Inbound<'a> {
    /// A broadcast without acks; `room` when it came on that one room's own channel, so a
    /// node without members in it can skip decoding.
    Broadcast {
        /// The room of a room channel.
        room: Option<&'a str>,
        /// The message.
        message: Payload<'a, BroadcastMessage>,
        /// Its log entry id, when it came through a log (streams mode).
        offset: Option<&'a str>,
    },
    /// A request (a broadcast with acks included).
    Request(Payload<'a, Request>),
}

/// A received message: still encoded (decoded only if someone needs it), or decoded by
/// the transport already.
#[derive(Debug)]
pub(crate) enum Payload<'a, T> {
    /// The bytes as received.
    Encoded(&'a [u8]),
    /// Decoded already.
    Decoded(T),
}

/// Wire messages that decode from bytes on their own.
pub(crate) trait Decode: Sized {
    /// Reads one message.
    fn decode(bytes: &[u8]) -> Result<Self, ProtocolError>;
}

impl Decode for BroadcastMessage {
    fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        BroadcastMessage::decode(bytes)
    }
}

impl Decode for Request {
    fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        Request::decode(bytes)
    }
}

impl<T: Decode> Payload<'_, T> {
    /// The message.
    pub(crate) fn decode(self) -> Result<T, ProtocolError> {
        match self {
            Payload::Encoded(bytes) => T::decode(bytes),
            Payload::Decoded(message) => Ok(message),
        }
    }
}

/// An answer to a request.
#[derive(Debug)]
pub(crate) enum InboundResponse<'a> {
    /// Bytes whose shape depends on the request they answer: typed by the pending
    /// request they name.
    Untyped(&'a [u8]),
    /// Decoded already.
    Typed(Response),
}

/// Connects to Redis at `url` with the transport of `config.mode`, for node `uid`.
pub(crate) async fn connect(
    url: &str,
    config: &RedisAdapterConfig,
    uid: &str,
    stats: Arc<Stats>,
) -> Result<Box<dyn Transport>, AdapterError> {
    Ok(match config.mode {
        AdapterMode::Classic => Box::new(classic::Classic::connect(url, config, uid, stats).await?),
        AdapterMode::Sharded(mode) => {
            Box::new(sharded::Sharded::connect(url, config, uid, stats, mode).await?)
        }
        AdapterMode::Streams => Box::new(streams::Streams::connect(url, config, uid, stats).await?),
    })
}

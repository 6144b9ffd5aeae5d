//! Sharded mode's channel names: main, per-node response and per-room channels.

use super::SubscriptionMode;
use super::message::ShardedBody;
use crate::broadcast::BroadcastOptions;
use crate::channels::DEFAULT_PREFIX;
use crate::error::ProtocolError;

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

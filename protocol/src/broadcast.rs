//! The broadcast message: what `io.to(room).emit(..)` on one node publishes for the others.
//!
//! A MessagePack (notepack.io) array `[uid, packet, opts]` published on the broadcast channel,
//! or on the room channel when exactly one room is targeted (see
//! [`Channels::for_rooms`](super::Channels::for_rooms)):
//!
//! ```text
//! [ "<uid>",                                     // sender; "emitter" for the emitter
//!   { "type": 2, "data": [event, ...args], "nsp": "/" },
//!   { "rooms": [..], "except": [..], "flags": { "volatile"?, "compress"?, .. } } ]
//! ```
//!
//! The adapter writes the options in the order `rooms, except, flags`; the emitter in the order
//! `rooms, flags, except` ([`Layout`]). Arguments stay [`rmpv::Value`]s, so binaries travel as
//! MessagePack `bin`, as Node `Buffer`s do.

use std::collections::HashSet;

use rmpv::Value;

use super::{msgpack, value};
use crate::error::ProtocolError;

/// The `uid` the Node emitter (`@socket.io/redis-emitter`) puts in its messages.
pub const EMITTER_UID: &str = "emitter";

/// The Socket.IO packet type of a broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `EVENT` (2): what every current sender writes, with or without binary arguments.
    #[default]
    Event,
    /// `BINARY_EVENT` (5): written by older (socket.io 2 era) senders for events with binary
    /// arguments; read exactly like [`PacketType::Event`], since the binaries are inline.
    BinaryEvent,
}

impl PacketType {
    /// The number on the wire: 2 or 5.
    pub fn code(self) -> u8 {
        match self {
            PacketType::Event => 2,
            PacketType::BinaryEvent => 5,
        }
    }

    /// The packet type of a wire number, if it is one a broadcast can carry.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            2 => Some(PacketType::Event),
            5 => Some(PacketType::BinaryEvent),
            _ => None,
        }
    }
}

/// The Socket.IO packet of a broadcast: `{type, data, nsp}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Packet {
    /// The packet type (`type`).
    pub packet_type: PacketType,
    /// The event name followed by its arguments (`data`).
    pub data: Vec<Value>,
    /// The namespace (`nsp`); `/` when a sender left it out.
    pub nsp: String,
}

impl Packet {
    /// An `EVENT` packet for `event` with `args` in namespace `nsp`.
    pub fn event(
        nsp: impl Into<String>,
        event: impl Into<String>,
        args: impl IntoIterator<Item = Value>,
    ) -> Self {
        let mut data = vec![Value::from(event.into())];
        data.extend(args);
        Self {
            packet_type: PacketType::Event,
            data,
            nsp: nsp.into(),
        }
    }

    /// The event name, if `data` starts with a string.
    pub fn event_name(&self) -> Option<&str> {
        self.data.first().and_then(Value::as_str)
    }

    /// The arguments after the event name.
    pub fn args(&self) -> &[Value] {
        self.data.get(1..).unwrap_or_default()
    }

    /// `{type, data, nsp}` in that order, as the adapter and emitter build it.
    pub(crate) fn to_value(&self) -> Value {
        Value::Map(vec![
            (Value::from("type"), Value::from(self.packet_type.code())),
            (Value::from("data"), Value::Array(self.data.clone())),
            (Value::from("nsp"), Value::from(self.nsp.as_str())),
        ])
    }

    /// Reads a packet; `field` names it in errors (`packet`).
    pub(crate) fn from_value(packet: &Value) -> Result<Self, ProtocolError> {
        let map = value::as_map(packet, "packet")?;
        let code = value::require(map, "type", "packet.type")?;
        let code = value::as_whole_number(code).ok_or(ProtocolError::InvalidField {
            field: "packet.type",
            expected: "a packet type number",
        })?;
        let packet_type =
            PacketType::from_code(code).ok_or(ProtocolError::UnsupportedPacketType(code))?;
        let data = match value::require(map, "data", "packet.data")? {
            Value::Array(items) => items.clone(),
            _ => {
                return Err(ProtocolError::InvalidField {
                    field: "packet.data",
                    expected: "an array",
                });
            }
        };
        let nsp = value::opt_string(map, "nsp", "packet.nsp")?.unwrap_or_else(|| "/".to_owned());
        Ok(Self {
            packet_type,
            data,
            nsp,
        })
    }
}

/// The broadcast flags (`opts.flags`) of socket.io-adapter's `BroadcastFlags`.
///
/// `None` means "absent": `compress: Some(false)` is what `io.compress(false)` sends and is not
/// the same as no `compress` at all. Unknown flags (e.g. `expectSingleResponse`) are ignored
/// when reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// `volatile`: the event may be dropped if the client is not ready.
    pub volatile: Option<bool>,
    /// `compress`: whether to compress the event (websocket permessage-deflate).
    pub compress: Option<bool>,
    /// `local`: this node only. The Node adapter never publishes such a broadcast.
    pub local: Option<bool>,
    /// `broadcast`: legacy marker, carried through.
    pub broadcast: Option<bool>,
    /// `binary`: legacy (socket.io 2) hint that the event holds binaries, carried through.
    pub binary: Option<bool>,
    /// `timeout`: milliseconds to wait for client acknowledgements (broadcast with ack).
    pub timeout: Option<u64>,
}

impl BroadcastFlags {
    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The flags that are set, in socket.io-adapter's declaration order.
    ///
    /// Node writes flags in the order the program set them (`io.volatile.compress(true)` gives
    /// `volatile, compress`); this fixed order is that of the common chains.
    pub(crate) fn to_value(self) -> Value {
        let bools = [
            ("volatile", self.volatile),
            ("compress", self.compress),
            ("local", self.local),
            ("broadcast", self.broadcast),
            ("binary", self.binary),
        ];
        let mut entries: Vec<(Value, Value)> = bools
            .into_iter()
            .filter_map(|(name, flag)| flag.map(|f| (Value::from(name), Value::Boolean(f))))
            .collect();
        if let Some(timeout) = self.timeout {
            entries.push((Value::from("timeout"), Value::from(timeout)));
        }
        Value::Map(entries)
    }

    pub(crate) fn from_value(flags: Option<&Value>) -> Result<Self, ProtocolError> {
        let Some(flags) = flags else {
            return Ok(Self::default());
        };
        let map = value::as_map(flags, "opts.flags")?;
        Ok(Self {
            volatile: value::opt_bool(map, "volatile", "opts.flags.volatile")?,
            compress: value::opt_bool(map, "compress", "opts.flags.compress")?,
            local: value::opt_bool(map, "local", "opts.flags.local")?,
            broadcast: value::opt_bool(map, "broadcast", "opts.flags.broadcast")?,
            binary: value::opt_bool(map, "binary", "opts.flags.binary")?,
            timeout: value::opt_whole_number(map, "timeout", "opts.flags.timeout")?,
        })
    }
}

/// Who receives a broadcast (`opts`): sockets in any of `rooms` (all sockets when empty) and in
/// none of `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Target rooms; empty means the whole namespace.
    pub rooms: Vec<String>,
    /// Excluded rooms (a socket id excludes that socket: every socket is in its own room).
    pub except: Vec<String>,
    /// The flags.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// Options targeting `rooms`, excluding nothing, without flags.
    pub fn to_rooms<S: Into<String>>(rooms: impl IntoIterator<Item = S>) -> Self {
        Self {
            rooms: rooms.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// The options as Node writes them: each list de-duplicated (Node sends Sets), keys in the
    /// order of `layout`.
    pub(crate) fn to_value(&self, layout: Layout) -> Value {
        let rooms = (Value::from("rooms"), unique(&self.rooms));
        let except = (Value::from("except"), unique(&self.except));
        let flags = (Value::from("flags"), self.flags.to_value());
        Value::Map(match layout {
            Layout::Adapter => vec![rooms, except, flags],
            Layout::Emitter => vec![rooms, flags, except],
        })
    }

    /// Reads the options; absent options, lists or flags mean none.
    pub(crate) fn from_value(opts: Option<&Value>) -> Result<Self, ProtocolError> {
        let Some(opts) = opts else {
            return Ok(Self::default());
        };
        let map = value::as_map(opts, "opts")?;
        Ok(Self {
            rooms: value::rooms(value::get(map, "rooms"), "opts.rooms")?,
            except: value::rooms(value::get(map, "except"), "opts.except")?,
            flags: BroadcastFlags::from_value(value::get(map, "flags"))?,
        })
    }
}

/// A list as a JS `Set` spreads it: first occurrences, in order.
fn unique(list: &[String]) -> Value {
    let mut seen = HashSet::with_capacity(list.len());
    Value::Array(
        list.iter()
            .filter(|item| seen.insert(item.as_str()))
            .map(|item| Value::from(item.as_str()))
            .collect(),
    )
}

/// Which Node package's key order to reproduce when encoding the options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// `@socket.io/redis-adapter`: `{rooms, except, flags}`.
    #[default]
    Adapter,
    /// `@socket.io/redis-emitter`: `{rooms, flags, except}`.
    Emitter,
}

/// A broadcast between nodes: `[uid, packet, opts]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BroadcastMessage {
    /// The sending node's uid ([`EMITTER_UID`] for an emitter). A node ignores its own messages.
    pub uid: String,
    /// The packet to deliver.
    pub packet: Packet,
    /// Who to deliver it to.
    pub opts: BroadcastOptions,
}

impl BroadcastMessage {
    /// A message from node `uid`.
    pub fn new(uid: impl Into<String>, packet: Packet, opts: BroadcastOptions) -> Self {
        Self {
            uid: uid.into(),
            packet,
            opts,
        }
    }

    /// A message as the emitter sends it (uid [`EMITTER_UID`]).
    pub fn from_emitter(packet: Packet, opts: BroadcastOptions) -> Self {
        Self::new(EMITTER_UID, packet, opts)
    }

    /// Whether an emitter sent it.
    pub fn is_from_emitter(&self) -> bool {
        self.uid == EMITTER_UID
    }

    /// The notepack.io bytes the Node adapter ([`Layout::Adapter`]) or emitter
    /// ([`Layout::Emitter`]) publishes for this message.
    pub fn encode(&self, layout: Layout) -> Result<Vec<u8>, ProtocolError> {
        msgpack::encode(&self.to_value(layout))
    }

    /// The `[uid, packet, opts]` array.
    pub(crate) fn to_value(&self, layout: Layout) -> Value {
        Value::Array(vec![
            Value::from(self.uid.as_str()),
            self.packet.to_value(),
            self.opts.to_value(layout),
        ])
    }

    /// Reads a message published by any compatible sender.
    ///
    /// Tolerant like the Node adapter: a missing `nsp` means `/`; missing or `nil` `opts`,
    /// `rooms`, `except` or `flags` mean none; unknown flags and packet fields are ignored;
    /// timestamps in the arguments become ISO-8601 strings (see [`msgpack`]).
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        if payload.is_empty() {
            return Err(ProtocolError::EmptyPayload);
        }
        let Value::Array(items) = msgpack::decode(payload)? else {
            return Err(ProtocolError::InvalidField {
                field: "message",
                expected: "an array [uid, packet, opts]",
            });
        };
        let mut items = items.iter();
        let uid = items
            .next()
            .ok_or(ProtocolError::MissingField("uid"))?
            .as_str()
            .ok_or(ProtocolError::InvalidField {
                field: "uid",
                expected: "a string",
            })?
            .to_owned();
        let packet = match items.next() {
            Some(packet) if !packet.is_nil() => Packet::from_value(packet)?,
            _ => return Err(ProtocolError::MissingField("packet")),
        };
        let opts = BroadcastOptions::from_value(items.next().filter(|v| !v.is_nil()))?;
        Ok(Self { uid, packet, opts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_layouts() {
        let message = BroadcastMessage::new(
            "abc123",
            Packet::event("/", "ev", [Value::Binary(vec![1, 2]), Value::from(3)]),
            BroadcastOptions {
                rooms: vec!["a".into(), "b".into()],
                except: vec!["c".into()],
                flags: BroadcastFlags {
                    volatile: Some(true),
                    timeout: Some(5000),
                    ..BroadcastFlags::default()
                },
            },
        );
        for layout in [Layout::Adapter, Layout::Emitter] {
            let bytes = message.encode(layout).expect("encodes");
            assert_eq!(BroadcastMessage::decode(&bytes).expect("decodes"), message);
        }
    }

    #[test]
    fn lists_are_deduplicated_like_sets() {
        let message = BroadcastMessage {
            packet: Packet::event("/", "ev", []),
            opts: BroadcastOptions::to_rooms(["a", "b", "a"]),
            ..BroadcastMessage::default()
        };
        let decoded = BroadcastMessage::decode(&message.encode(Layout::Adapter).expect("encodes"))
            .expect("decodes");
        assert_eq!(decoded.opts.rooms, ["a", "b"]);
    }

    #[test]
    fn accessors() {
        let packet = Packet::event("/", "ev", [Value::from(1)]);
        assert_eq!(packet.event_name(), Some("ev"));
        assert_eq!(packet.args(), [Value::from(1)]);
        assert_eq!(Packet::default().args(), []);
        assert!(
            BroadcastMessage::from_emitter(packet, BroadcastOptions::default()).is_from_emitter()
        );
        assert!(BroadcastFlags::default().is_empty());
    }
}

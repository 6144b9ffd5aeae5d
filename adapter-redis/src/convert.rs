//! Between socketioxide's packets and options and the Node adapter's wire types.
//!
//! Event arguments go through socketioxide's own parser in both directions, so binary
//! attachments stay binary (`rmpv::Value::Binary` on the wire, attachments to clients)
//! whatever parser the server uses.

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use socketioxide_core::adapter::{BroadcastFlags, BroadcastOptions, Room};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::Parse;

use crate::AdapterError;
use crate::protocol;
use crate::rmpv::Value;

/// All elements of a packet's data array. Deserialized as a tuple so socketioxide's
/// parser hands over every element (not just the first).
struct AllArgs(Vec<Value>);

impl<'de> Deserialize<'de> for AllArgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AllArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AllArgs, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
                Ok(AllArgs(out))
            }
        }
        d.deserialize_tuple(usize::MAX, V)
    }
}

/// Arguments serialized as a tuple so the parser spreads them (`[event, ...args]`).
pub(crate) struct ArgsRef<'a>(pub(crate) &'a [Value]);

impl Serialize for ArgsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for v in self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// A socketioxide event packet and its options as the wire message's packet and opts.
pub(crate) fn to_wire(
    parser: &impl Parse,
    packet: &Packet,
    opts: &BroadcastOptions,
) -> Result<protocol::BroadcastMessage, AdapterError> {
    let (data, packet_type) = match &packet.inner {
        PacketData::Event(v, None) => (v, protocol::PacketType::Event),
        PacketData::BinaryEvent(v, None) => (v, protocol::PacketType::Event),
        other => {
            return Err(AdapterError::Parser(format!(
                "only events without ack are broadcast between nodes, not {other:?}"
            )));
        }
    };
    let mut data = data.clone();
    let AllArgs(mut args) = parser
        .decode_value(&mut data, false)
        .map_err(|e| AdapterError::Parser(e.to_string()))?;
    if !matches!(args.first(), Some(Value::String(_))) {
        return Err(AdapterError::Parser("event name missing".into()));
    }
    let event = args.remove(0);
    let event = event.as_str().unwrap_or_default().to_string();
    let mut wire = protocol::Packet::event(packet.ns.to_string(), event, args);
    wire.packet_type = packet_type;

    let mut wire_opts = protocol::BroadcastOptions {
        rooms: opts.rooms.iter().map(|r| r.to_string()).collect(),
        except: opts.except.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    if opts.has_flag(BroadcastFlags::Volatile) {
        wire_opts.flags.volatile = Some(true);
    }
    Ok(protocol::BroadcastMessage::new(
        String::new(),
        wire,
        wire_opts,
    ))
}

/// What a node does with a payload received on a namespace's broadcast channel
/// (`<prefix>#<nsp>#` or `<prefix>#<nsp>#<room>#`), messages from
/// `@socket.io/redis-emitter` included: decode the `[uid, packet, opts]` message, then
/// turn its event into the packet and options handed to the namespace's local sockets,
/// through the server's `parser`. An error is what the node counts in
/// `StatsSnapshot::malformed` and drops.
///
/// The adapter runs these same two steps (with its own-uid check between them); this
/// function exists so the fuzz targets in `fuzz/` exercise exactly that code.
///
/// ```
/// use sio_adapter_redis::decode_broadcast_for_delivery;
/// use socketioxide_parser_common::CommonParser;
///
/// use sio_adapter_redis::protocol::{BroadcastMessage, BroadcastOptions, EMITTER_UID, Layout, Packet};
/// use sio_adapter_redis::rmpv::Value;
///
/// // What `@socket.io/redis-emitter` publishes for `io.emit("hello", "world")`.
/// let packet = Packet::event("/", "hello", [Value::from("world")]);
/// let payload = BroadcastMessage::new(EMITTER_UID, packet, BroadcastOptions::default())
///     .encode(Layout::Emitter)?;
/// let (message, packet, _opts) = decode_broadcast_for_delivery(&CommonParser, "/", &payload)?;
/// assert_eq!(message.uid, "emitter");
/// assert_eq!(packet.ns, "/");
/// assert!(decode_broadcast_for_delivery(&CommonParser, "/", b"\xc1garbage").is_err());
/// # Ok::<(), sio_adapter_redis::AdapterError>(())
/// ```
pub fn decode_broadcast_for_delivery(
    parser: &impl Parse,
    nsp: &str,
    payload: &[u8],
) -> Result<(protocol::BroadcastMessage, Packet, BroadcastOptions), AdapterError> {
    let message = protocol::BroadcastMessage::decode(payload)?;
    let (packet, opts) = from_wire(parser, nsp, &message)?;
    Ok((message, packet, opts))
}

/// A received wire message as a socketioxide packet and options for local delivery.
pub(crate) fn from_wire(
    parser: &impl Parse,
    nsp: &str,
    message: &protocol::BroadcastMessage,
) -> Result<(Packet, BroadcastOptions), AdapterError> {
    let event = message
        .packet
        .event_name()
        .ok_or_else(|| AdapterError::Parser("event name missing".into()))?;
    let value = parser
        .encode_value(&ArgsRef(message.packet.args()), Some(event))
        .map_err(|e| AdapterError::Parser(e.to_string()))?;
    let packet = Packet::event(nsp.to_string(), value);
    let mut opts = BroadcastOptions::default();
    opts.rooms = message
        .opts
        .rooms
        .iter()
        .cloned()
        .map(Room::Owned)
        .collect();
    opts.except = message
        .opts
        .except
        .iter()
        .cloned()
        .map(Room::Owned)
        .collect();
    // Without `Broadcast`, socketioxide delivers a message with no rooms to nobody.
    opts.add_flag(BroadcastFlags::Broadcast);
    if message.opts.flags.volatile == Some(true) {
        opts.add_flag(BroadcastFlags::Volatile);
    }
    Ok((packet, opts))
}

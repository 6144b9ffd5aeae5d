//! Sharded mode's messages: `{type, data, uid, nsp}`, JSON or MessagePack.

use rmpv::Value;

use crate::broadcast::{BroadcastOptions, Layout, Packet};
use crate::error::ProtocolError;
use crate::response::{
    BroadcastAckResponse, BroadcastClientCountResponse, FetchResponse, fetched_socket, raw_field,
};
use crate::{msgpack, value};

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

    /// The `data` object in Node's key order, or `None` for the types without data. An
    /// `undefined` property (a response's absent `packet`) is left out, as `JSON.stringify` and
    /// notepack do.
    pub(crate) fn data_value(&self) -> Result<Option<Value>, ProtocolError> {
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
    pub(crate) fn from_data(
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
        Self::from_value(&value::decode_payload(payload)?)
    }

    /// Reads a decoded `{type, data, uid, nsp}` object, as [`ShardedMessage::decode`] does.
    pub(crate) fn from_value(message: &Value) -> Result<Self, ProtocolError> {
        let map = value::as_map(message, "message")?;
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
pub(crate) struct Scan {
    /// A binary (a `Buffer`), or an extension that is not a date.
    pub(crate) binary: bool,
    /// A timestamp (a `Date`), which JSON writes as its ISO string.
    pub(crate) dates: bool,
}

impl Scan {
    /// Walks `value` at nesting `depth`, refusing what [`msgpack::encode`] would refuse, so that
    /// the JSON path has the same bound.
    pub(crate) fn visit(&mut self, value: &Value, depth: usize) -> Result<(), ProtocolError> {
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
pub(crate) fn dates_to_iso(value: Value) -> Result<Value, ProtocolError> {
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

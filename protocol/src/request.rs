//! Requests between nodes, on the request channel `socket.io-request#<nsp>#`.
//!
//! Every request is a JSON object string, except [`RequestType::Broadcast`] (a broadcast that
//! waits for client acknowledgements), which is a notepack.io MessagePack map because its
//! packet may hold binaries. A receiver tells the two apart by the first byte: `{` is JSON.
//!
//! | type | sent by | shape (keys in wire order) | answered by |
//! |---|---|---|---|
//! | 0 `SOCKETS` | older adapters | `{uid, requestId, type, rooms}` | [`Response::Sockets`](super::Response::Sockets) |
//! | 1 `ALL_ROOMS` | `adapter.allRooms()` | `{uid, requestId, type}` | [`Response::AllRooms`](super::Response::AllRooms) |
//! | 2 `REMOTE_JOIN` | `io.socketsJoin(rooms)` | `{uid, type, opts: {rooms, except}, rooms}` | nothing |
//! | 3 `REMOTE_LEAVE` | `io.socketsLeave(rooms)` | `{uid, type, opts: {rooms, except}, rooms}` | nothing |
//! | 4 `REMOTE_DISCONNECT` | `io.disconnectSockets(close)` | `{uid, type, opts: {rooms, except}, close}` | nothing |
//! | 5 `REMOTE_FETCH` | `io.fetchSockets()` | `{uid, requestId, type, opts: {rooms, except}}` | [`Response::RemoteFetch`](super::Response::RemoteFetch) |
//! | 6 `SERVER_SIDE_EMIT` | `io.serverSideEmit(..)` | `{uid, requestId?, type, data}` | [`Response::ServerSideEmit`](super::Response::ServerSideEmit) if `requestId` |
//! | 7 `BROADCAST` | `io.timeout(t).emit(.., ack)` | msgpack `{uid, requestId, type, packet, opts: {rooms, except, flags}}` | [`Response::BroadcastClientCount`](super::Response::BroadcastClientCount), then [`Response::BroadcastAck`](super::Response::BroadcastAck) per client |
//!
//! Types 8 `BROADCAST_CLIENT_COUNT` and 9 `BROADCAST_ACK` are only ever responses. The emitter
//! sends types 2, 3 and 4 without `uid`, and type 6 with uid `"emitter"`. Senders apply join,
//! leave and disconnect to themselves when their own request comes back over Redis.
//!
//! Not supported: the pre-v6 single-socket forms of `REMOTE_JOIN`/`REMOTE_LEAVE`/
//! `REMOTE_DISCONNECT` (`{sid, room}`, no `opts`); they decode as a missing `opts` error.

use rmpv::Value;
use serde::Serialize;

use super::broadcast::{BroadcastOptions, Layout, Packet};
use super::{msgpack, value};
use crate::error::ProtocolError;

/// The `type` of a request or response, numbered as in `@socket.io/redis-adapter` 8.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// 0: ids of the sockets in some rooms (superseded by [`RequestType::RemoteFetch`]).
    Sockets,
    /// 1: every room of every node.
    AllRooms,
    /// 2: make matching sockets join rooms.
    RemoteJoin,
    /// 3: make matching sockets leave rooms.
    RemoteLeave,
    /// 4: disconnect matching sockets.
    RemoteDisconnect,
    /// 5: details of matching sockets.
    RemoteFetch,
    /// 6: an event for the other servers themselves.
    ServerSideEmit,
    /// 7: a broadcast that collects client acknowledgements.
    Broadcast,
    /// 8: response: how many clients a [`RequestType::Broadcast`] reached on a node.
    BroadcastClientCount,
    /// 9: response: one client's acknowledgement of a [`RequestType::Broadcast`].
    BroadcastAck,
}

impl RequestType {
    /// The number on the wire.
    pub fn code(self) -> u8 {
        match self {
            RequestType::Sockets => 0,
            RequestType::AllRooms => 1,
            RequestType::RemoteJoin => 2,
            RequestType::RemoteLeave => 3,
            RequestType::RemoteDisconnect => 4,
            RequestType::RemoteFetch => 5,
            RequestType::ServerSideEmit => 6,
            RequestType::Broadcast => 7,
            RequestType::BroadcastClientCount => 8,
            RequestType::BroadcastAck => 9,
        }
    }

    /// The type of a wire number, if it has one.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => RequestType::Sockets,
            1 => RequestType::AllRooms,
            2 => RequestType::RemoteJoin,
            3 => RequestType::RemoteLeave,
            4 => RequestType::RemoteDisconnect,
            5 => RequestType::RemoteFetch,
            6 => RequestType::ServerSideEmit,
            7 => RequestType::Broadcast,
            8 => RequestType::BroadcastClientCount,
            9 => RequestType::BroadcastAck,
            _ => return None,
        })
    }
}

/// Which sockets a request targets (`opts`): those in any of `rooms` (all when empty) and in
/// none of `except`. Unlike [`BroadcastOptions`] it has no flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOpts {
    /// Target rooms; empty means every socket of the namespace.
    pub rooms: Vec<String>,
    /// Excluded rooms.
    pub except: Vec<String>,
}

impl RequestOpts {
    fn from_value(opts: &Value) -> Result<Self, ProtocolError> {
        let map = value::as_map(opts, "opts")?;
        Ok(Self {
            rooms: value::rooms(value::get(map, "rooms"), "opts.rooms")?,
            except: value::rooms(value::get(map, "except"), "opts.except")?,
        })
    }
}

/// `SOCKETS` (0): `{uid, requestId, type, rooms}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketsRequest {
    /// The requesting node.
    pub uid: Option<String>,
    /// Correlates the responses.
    pub request_id: String,
    /// Rooms whose sockets are wanted; empty means all.
    pub rooms: Vec<String>,
}

/// `ALL_ROOMS` (1): `{uid, requestId, type}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllRoomsRequest {
    /// The requesting node.
    pub uid: Option<String>,
    /// Correlates the responses.
    pub request_id: String,
}

/// `REMOTE_JOIN` (2) and `REMOTE_LEAVE` (3): `{uid, type, opts, rooms}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomsRequest {
    /// The requesting node; absent when an emitter sends it.
    pub uid: Option<String>,
    /// Which sockets.
    pub opts: RequestOpts,
    /// The rooms to join or leave.
    pub rooms: Vec<String>,
}

/// `REMOTE_DISCONNECT` (4): `{uid, type, opts, close}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectRequest {
    /// The requesting node; absent when an emitter sends it.
    pub uid: Option<String>,
    /// Which sockets.
    pub opts: RequestOpts,
    /// Whether to close the underlying connection too.
    pub close: bool,
}

/// `REMOTE_FETCH` (5): `{uid, requestId, type, opts}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRequest {
    /// The requesting node.
    pub uid: Option<String>,
    /// Correlates the responses.
    pub request_id: String,
    /// Which sockets.
    pub opts: RequestOpts,
}

/// `SERVER_SIDE_EMIT` (6): `{uid, requestId?, type, data}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerSideEmitRequest {
    /// The sending node (`"emitter"` from an emitter); receivers ignore their own.
    pub uid: Option<String>,
    /// Present when the sender waits for one acknowledgement per server.
    pub request_id: Option<String>,
    /// The event name and its arguments (JSON: no binaries).
    pub data: Vec<serde_json::Value>,
}

/// `BROADCAST` (7), MessagePack: `{uid, requestId, type, packet, opts}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BroadcastRequest {
    /// The requesting node.
    pub uid: Option<String>,
    /// Correlates the responses.
    pub request_id: String,
    /// The packet to deliver.
    pub packet: Packet,
    /// Who to deliver it to; `flags.timeout` is how long the sender waits for acks.
    pub opts: BroadcastOptions,
}

/// A request between nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `SOCKETS` (0).
    Sockets(SocketsRequest),
    /// `ALL_ROOMS` (1).
    AllRooms(AllRoomsRequest),
    /// `REMOTE_JOIN` (2).
    RemoteJoin(RoomsRequest),
    /// `REMOTE_LEAVE` (3).
    RemoteLeave(RoomsRequest),
    /// `REMOTE_DISCONNECT` (4).
    RemoteDisconnect(DisconnectRequest),
    /// `REMOTE_FETCH` (5).
    RemoteFetch(FetchRequest),
    /// `SERVER_SIDE_EMIT` (6).
    ServerSideEmit(ServerSideEmitRequest),
    /// `BROADCAST` (7).
    Broadcast(BroadcastRequest),
}

impl ServerSideEmitRequest {
    /// The `data` of a server-side emit: the event name, then its arguments.
    pub fn data_for(event: &str, args: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
        std::iter::once(serde_json::Value::from(event))
            .chain(args)
            .collect()
    }
}

impl Request {
    /// The request's type.
    pub fn request_type(&self) -> RequestType {
        match self {
            Request::Sockets(_) => RequestType::Sockets,
            Request::AllRooms(_) => RequestType::AllRooms,
            Request::RemoteJoin(_) => RequestType::RemoteJoin,
            Request::RemoteLeave(_) => RequestType::RemoteLeave,
            Request::RemoteDisconnect(_) => RequestType::RemoteDisconnect,
            Request::RemoteFetch(_) => RequestType::RemoteFetch,
            Request::ServerSideEmit(_) => RequestType::ServerSideEmit,
            Request::Broadcast(_) => RequestType::Broadcast,
        }
    }

    /// The sending node, when the request names it.
    pub fn uid(&self) -> Option<&str> {
        match self {
            Request::Sockets(r) => r.uid.as_deref(),
            Request::AllRooms(r) => r.uid.as_deref(),
            Request::RemoteJoin(r) | Request::RemoteLeave(r) => r.uid.as_deref(),
            Request::RemoteDisconnect(r) => r.uid.as_deref(),
            Request::RemoteFetch(r) => r.uid.as_deref(),
            Request::ServerSideEmit(r) => r.uid.as_deref(),
            Request::Broadcast(r) => r.uid.as_deref(),
        }
    }

    /// The request id, for requests that expect responses.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Request::Sockets(r) => Some(&r.request_id),
            Request::AllRooms(r) => Some(&r.request_id),
            Request::RemoteFetch(r) => Some(&r.request_id),
            Request::ServerSideEmit(r) => r.request_id.as_deref(),
            Request::Broadcast(r) => Some(&r.request_id),
            Request::RemoteJoin(_) | Request::RemoteLeave(_) | Request::RemoteDisconnect(_) => None,
        }
    }

    /// The bytes the Node adapter (or emitter, for requests without `uid`) publishes:
    /// `JSON.stringify` output, or notepack.io MessagePack for [`Request::Broadcast`].
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let code = self.request_type().code();
        let json = match self {
            Request::Sockets(r) => serde_json::to_vec(&SocketsWire {
                uid: r.uid.as_deref(),
                request_id: &r.request_id,
                kind: code,
                rooms: &r.rooms,
            }),
            Request::AllRooms(r) => serde_json::to_vec(&AllRoomsWire {
                uid: r.uid.as_deref(),
                request_id: &r.request_id,
                kind: code,
            }),
            Request::RemoteJoin(r) | Request::RemoteLeave(r) => serde_json::to_vec(&RoomsWire {
                uid: r.uid.as_deref(),
                kind: code,
                opts: OptsWire::new(&r.opts),
                rooms: &r.rooms,
            }),
            Request::RemoteDisconnect(r) => serde_json::to_vec(&DisconnectWire {
                uid: r.uid.as_deref(),
                kind: code,
                opts: OptsWire::new(&r.opts),
                close: r.close,
            }),
            Request::RemoteFetch(r) => serde_json::to_vec(&FetchWire {
                uid: r.uid.as_deref(),
                request_id: &r.request_id,
                kind: code,
                opts: OptsWire::new(&r.opts),
            }),
            Request::ServerSideEmit(r) => serde_json::to_vec(&ServerSideEmitWire {
                uid: r.uid.as_deref(),
                request_id: r.request_id.as_deref(),
                kind: code,
                data: &r.data,
            }),
            Request::Broadcast(r) => return msgpack::encode(&broadcast_request_value(r)),
        };
        Ok(json?)
    }

    /// Reads a request, JSON or MessagePack (told apart by a leading `{`).
    ///
    /// Either encoding is accepted for every type, as the Node adapter does. Absent or `null`
    /// room lists mean none; `close` defaults to `false`.
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let message = value::decode_payload(payload)?;
        let map = value::as_map(&message, "request")?;
        let code = value::require(map, "type", "type")?;
        let code = value::as_whole_number(code).ok_or(ProtocolError::InvalidField {
            field: "type",
            expected: "a request type number",
        })?;
        let kind = RequestType::from_code(code).ok_or(ProtocolError::UnknownRequestType(code))?;
        let uid = value::opt_string(map, "uid", "uid")?;
        let request_id = || value::string(map, "requestId", "requestId");
        let opts = || RequestOpts::from_value(value::require(map, "opts", "opts")?);
        Ok(match kind {
            RequestType::Sockets => Request::Sockets(SocketsRequest {
                uid,
                request_id: request_id()?,
                rooms: value::rooms(value::get(map, "rooms"), "rooms")?,
            }),
            RequestType::AllRooms => Request::AllRooms(AllRoomsRequest {
                uid,
                request_id: request_id()?,
            }),
            RequestType::RemoteJoin | RequestType::RemoteLeave => {
                let request = RoomsRequest {
                    uid,
                    opts: opts()?,
                    rooms: value::rooms(value::get(map, "rooms"), "rooms")?,
                };
                if kind == RequestType::RemoteJoin {
                    Request::RemoteJoin(request)
                } else {
                    Request::RemoteLeave(request)
                }
            }
            RequestType::RemoteDisconnect => Request::RemoteDisconnect(DisconnectRequest {
                uid,
                opts: opts()?,
                close: value::opt_bool(map, "close", "close")?.unwrap_or(false),
            }),
            RequestType::RemoteFetch => Request::RemoteFetch(FetchRequest {
                uid,
                request_id: request_id()?,
                opts: opts()?,
            }),
            RequestType::ServerSideEmit => Request::ServerSideEmit(ServerSideEmitRequest {
                uid,
                request_id: value::opt_string(map, "requestId", "requestId")?,
                data: match value::require(map, "data", "data")? {
                    Value::Array(items) => items.iter().map(value::json_from_msgpack).collect(),
                    _ => {
                        return Err(ProtocolError::InvalidField {
                            field: "data",
                            expected: "an array",
                        });
                    }
                },
            }),
            RequestType::Broadcast => Request::Broadcast(BroadcastRequest {
                uid,
                request_id: request_id()?,
                packet: Packet::from_value(value::require(map, "packet", "packet")?)?,
                opts: BroadcastOptions::from_value(value::get(map, "opts"))?,
            }),
            RequestType::BroadcastClientCount | RequestType::BroadcastAck => {
                return Err(ProtocolError::NotARequest(kind));
            }
        })
    }
}

/// `{uid, requestId, type, packet, opts}` with the adapter's option order.
fn broadcast_request_value(r: &BroadcastRequest) -> Value {
    let mut entries = Vec::with_capacity(5);
    if let Some(uid) = &r.uid {
        entries.push((Value::from("uid"), Value::from(uid.as_str())));
    }
    entries.extend([
        (Value::from("requestId"), Value::from(r.request_id.as_str())),
        (
            Value::from("type"),
            Value::from(RequestType::Broadcast.code()),
        ),
        (Value::from("packet"), r.packet.to_value()),
        (Value::from("opts"), r.opts.to_value(Layout::Adapter)),
    ]);
    Value::Map(entries)
}

// Wire shapes for `serde_json`: field order is key order, as `JSON.stringify` writes them.

#[derive(Serialize)]
struct SocketsWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(rename = "type")]
    kind: u8,
    rooms: &'a [String],
}

#[derive(Serialize)]
struct AllRoomsWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(rename = "type")]
    kind: u8,
}

/// `opts` as Node writes it: both lists spread from Sets, so de-duplicated.
#[derive(Serialize)]
struct OptsWire<'a> {
    rooms: Vec<&'a str>,
    except: Vec<&'a str>,
}

impl<'a> OptsWire<'a> {
    fn new(opts: &'a RequestOpts) -> Self {
        fn unique(list: &[String]) -> Vec<&str> {
            let mut seen = std::collections::HashSet::with_capacity(list.len());
            list.iter()
                .map(String::as_str)
                .filter(|r| seen.insert(*r))
                .collect()
        }
        Self {
            rooms: unique(&opts.rooms),
            except: unique(&opts.except),
        }
    }
}

#[derive(Serialize)]
struct RoomsWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "type")]
    kind: u8,
    opts: OptsWire<'a>,
    rooms: &'a [String],
}

#[derive(Serialize)]
struct DisconnectWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "type")]
    kind: u8,
    opts: OptsWire<'a>,
    close: bool,
}

#[derive(Serialize)]
struct FetchWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(rename = "type")]
    kind: u8,
    opts: OptsWire<'a>,
}

#[derive(Serialize)]
struct ServerSideEmitWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: u8,
    data: &'a [serde_json::Value],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_codes_match_the_node_enum() {
        for code in 0..=9 {
            let kind = RequestType::from_code(code).expect("known");
            assert_eq!(u64::from(kind.code()), code);
        }
        assert_eq!(RequestType::from_code(10), None);
    }

    #[test]
    fn every_request_round_trips() {
        let opts = RequestOpts {
            rooms: vec!["a".into()],
            except: vec!["b".into()],
        };
        let requests = [
            Request::Sockets(SocketsRequest {
                uid: Some("u".into()),
                request_id: "r".into(),
                rooms: vec!["a".into()],
            }),
            Request::AllRooms(AllRoomsRequest {
                uid: Some("u".into()),
                request_id: "r".into(),
            }),
            Request::RemoteJoin(RoomsRequest {
                uid: None,
                opts: opts.clone(),
                rooms: vec!["c".into()],
            }),
            Request::RemoteLeave(RoomsRequest {
                uid: Some("u".into()),
                opts: opts.clone(),
                rooms: vec![],
            }),
            Request::RemoteDisconnect(DisconnectRequest {
                uid: None,
                opts: opts.clone(),
                close: true,
            }),
            Request::RemoteFetch(FetchRequest {
                uid: Some("u".into()),
                request_id: "r".into(),
                opts,
            }),
            Request::ServerSideEmit(ServerSideEmitRequest {
                uid: Some("u".into()),
                request_id: None,
                data: vec![serde_json::json!("ev"), serde_json::json!({"k": [1, 2.5]})],
            }),
            Request::Broadcast(BroadcastRequest {
                uid: Some("u".into()),
                request_id: "r".into(),
                packet: Packet::event("/", "ev", [Value::Binary(vec![0xff])]),
                opts: BroadcastOptions::to_rooms(["a"]),
            }),
        ];
        for request in requests {
            let bytes = request.encode().expect("encodes");
            assert_eq!(
                bytes[0] == b'{',
                request.request_type() != RequestType::Broadcast
            );
            assert_eq!(Request::decode(&bytes).expect("decodes"), request);
        }
    }

    #[test]
    fn json_broadcast_and_msgpack_join_are_accepted() {
        // A custom-parser sender could use either encoding for any type.
        let json = br#"{"uid":"u","requestId":"r","type":7,"packet":{"type":2,"data":["e"]},"opts":{"rooms":["x"]}}"#;
        let Request::Broadcast(request) = Request::decode(json).expect("json broadcast") else {
            panic!("not a broadcast");
        };
        assert_eq!(request.packet.nsp, "/");
        assert_eq!(request.opts.rooms, ["x"]);

        let join = Value::Map(vec![
            (Value::from("type"), Value::from(2)),
            (Value::from("opts"), Value::Map(vec![])),
            (Value::from("rooms"), Value::Array(vec![Value::from("r")])),
        ]);
        let bytes = msgpack::encode(&join).expect("encodes");
        assert!(matches!(Request::decode(&bytes), Ok(Request::RemoteJoin(r)) if r.rooms == ["r"]));
    }

    #[test]
    fn responses_and_unknown_types_are_not_requests() {
        assert!(matches!(
            Request::decode(br#"{"type":8,"requestId":"r","clientCount":1}"#),
            Err(ProtocolError::NotARequest(
                RequestType::BroadcastClientCount
            ))
        ));
        assert!(matches!(
            Request::decode(br#"{"type":42}"#),
            Err(ProtocolError::UnknownRequestType(42))
        ));
        assert!(matches!(
            Request::decode(br#"{"type":2,"sid":"x","room":"y"}"#),
            Err(ProtocolError::MissingField("opts"))
        ));
    }
}

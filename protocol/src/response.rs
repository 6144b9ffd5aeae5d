//! Responses to requests, on `socket.io-response#<nsp>#` (or the requester's own
//! `socket.io-response#<nsp>#<uid>#` when the responder sets `publishOnSpecificResponseChannel`;
//! `SERVER_SIDE_EMIT` acknowledgements always go to the shared channel).
//!
//! | answers | shape (keys in wire order) |
//! |---|---|
//! | `SOCKETS` | `{requestId, sockets: [id, ..]}` |
//! | `ALL_ROOMS` | `{requestId, rooms: [..]}` |
//! | `REMOTE_FETCH` | `{requestId, sockets: [{id, handshake, rooms, data}, ..]}` |
//! | `SERVER_SIDE_EMIT` | `{type: 6, requestId, data}` (`data` absent if the ack had no argument) |
//! | `BROADCAST` | `{type: 8, requestId, clientCount}`, then per client ack msgpack `{type: 9, requestId, packet}` |
//!
//! Most responses carry no `type`: like the Node adapter, a receiver reads them according to
//! the request it has pending under `requestId`. Hence the two steps: [`IncomingResponse::decode`]
//! reads the envelope, [`IncomingResponse::into_response`] the body once the pending request's
//! type is known.

use rmpv::Value;
use serde::{Deserialize, Serialize};

use super::request::RequestType;
use super::{msgpack, value};
use crate::error::ProtocolError;

/// The `handshake` of a fetched socket, as socket.io 4 builds it (field order kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Handshake {
    /// Request headers of the handshake; values are strings (or arrays of strings).
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// Creation date as `Date.toString()` text.
    pub time: String,
    /// The client's address.
    pub address: String,
    /// Whether the request had an `Origin` header.
    pub xdomain: bool,
    /// Whether the connection was encrypted.
    pub secure: bool,
    /// Creation date in milliseconds since the epoch. Read from any JSON number, as a JS peer
    /// may send one (a float beyond 2^53 when written by `@msgpack/msgpack`): truncated, and
    /// saturated to the `u64` range.
    #[serde(deserialize_with = "js_number_as_u64")]
    pub issued: u64,
    /// The request URL (path and query).
    pub url: String,
    /// The parsed query string.
    pub query: serde_json::Map<String, serde_json::Value>,
    /// The `auth` payload the client sent.
    pub auth: serde_json::Map<String, serde_json::Value>,
}

/// One socket of a `REMOTE_FETCH` response: `{id, handshake, rooms, data}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchedSocket {
    /// The socket id.
    pub id: String,
    /// Its handshake.
    pub handshake: Handshake,
    /// The rooms it is in (its own id included).
    pub rooms: Vec<String>,
    /// Its `socket.data`.
    pub data: serde_json::Value,
}

/// Answer to `SOCKETS`: `{requestId, sockets}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketsResponse {
    /// The request answered.
    pub request_id: String,
    /// Socket ids on the answering node.
    pub sockets: Vec<String>,
}

/// Answer to `ALL_ROOMS`: `{requestId, rooms}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllRoomsResponse {
    /// The request answered.
    pub request_id: String,
    /// Rooms on the answering node.
    pub rooms: Vec<String>,
}

/// Answer to `REMOTE_FETCH`: `{requestId, sockets}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchResponse {
    /// The request answered.
    pub request_id: String,
    /// Matching sockets on the answering node.
    pub sockets: Vec<FetchedSocket>,
}

/// Acknowledgement of a `SERVER_SIDE_EMIT`: `{type: 6, requestId, data}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerSideEmitResponse {
    /// The request answered.
    pub request_id: String,
    /// The first argument the receiving server acknowledged with; `None` for none.
    pub data: Option<serde_json::Value>,
}

/// How many clients a `BROADCAST` reached on one node: `{type: 8, requestId, clientCount}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastClientCountResponse {
    /// The request answered.
    pub request_id: String,
    /// Number of clients that will acknowledge.
    pub client_count: u64,
}

/// One client's acknowledgement of a `BROADCAST`, MessagePack: `{type: 9, requestId, packet}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BroadcastAckResponse {
    /// The request answered.
    pub request_id: String,
    /// The first argument the client acknowledged with; `None` for none.
    pub packet: Option<Value>,
}

/// A response to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// To `SOCKETS`.
    Sockets(SocketsResponse),
    /// To `ALL_ROOMS`.
    AllRooms(AllRoomsResponse),
    /// To `REMOTE_FETCH`.
    RemoteFetch(FetchResponse),
    /// To `SERVER_SIDE_EMIT` with a request id.
    ServerSideEmit(ServerSideEmitResponse),
    /// To `BROADCAST`: the client count of one node.
    BroadcastClientCount(BroadcastClientCountResponse),
    /// To `BROADCAST`: one client's acknowledgement.
    BroadcastAck(BroadcastAckResponse),
}

impl Response {
    /// The id of the request this answers.
    pub fn request_id(&self) -> &str {
        match self {
            Response::Sockets(r) => &r.request_id,
            Response::AllRooms(r) => &r.request_id,
            Response::RemoteFetch(r) => &r.request_id,
            Response::ServerSideEmit(r) => &r.request_id,
            Response::BroadcastClientCount(r) => &r.request_id,
            Response::BroadcastAck(r) => &r.request_id,
        }
    }

    /// The bytes the Node adapter publishes: `JSON.stringify` output, or notepack.io
    /// MessagePack for [`Response::BroadcastAck`].
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let json = match self {
            Response::Sockets(r) => serde_json::to_vec(&SocketsWire {
                request_id: &r.request_id,
                sockets: &r.sockets,
            }),
            Response::AllRooms(r) => serde_json::to_vec(&AllRoomsWire {
                request_id: &r.request_id,
                rooms: &r.rooms,
            }),
            Response::RemoteFetch(r) => serde_json::to_vec(&FetchWire {
                request_id: &r.request_id,
                sockets: &r.sockets,
            }),
            Response::ServerSideEmit(r) => serde_json::to_vec(&ServerSideEmitWire {
                kind: RequestType::ServerSideEmit.code(),
                request_id: &r.request_id,
                data: r.data.as_ref(),
            }),
            Response::BroadcastClientCount(r) => serde_json::to_vec(&ClientCountWire {
                kind: RequestType::BroadcastClientCount.code(),
                request_id: &r.request_id,
                client_count: r.client_count,
            }),
            Response::BroadcastAck(r) => {
                let mut entries = vec![
                    (
                        Value::from("type"),
                        Value::from(RequestType::BroadcastAck.code()),
                    ),
                    (Value::from("requestId"), Value::from(r.request_id.as_str())),
                ];
                if let Some(packet) = &r.packet {
                    entries.push((Value::from("packet"), packet.clone()));
                }
                return msgpack::encode(&Value::Map(entries));
            }
        };
        Ok(json?)
    }

    /// Reads a response to a pending request of type `pending` (see [`IncomingResponse`]).
    pub fn decode(payload: &[u8], pending: RequestType) -> Result<Self, ProtocolError> {
        IncomingResponse::decode(payload)?.into_response(pending)
    }
}

/// A response whose request id is known but whose body is not read yet.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingResponse {
    request_id: String,
    type_code: Option<u64>,
    body: Value,
}

impl IncomingResponse {
    /// Reads the envelope of a response, JSON or MessagePack (told apart by a leading `{`).
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let body = value::decode_payload(payload)?;
        let map = value::as_map(&body, "response")?;
        let request_id = value::string(map, "requestId", "requestId")?;
        let type_code = value::get(map, "type").and_then(value::as_whole_number);
        Ok(Self {
            request_id,
            type_code,
            body,
        })
    }

    /// The id of the request this answers: look the pending request up with it.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The explicit `type`, which only `SERVER_SIDE_EMIT`, `BROADCAST_CLIENT_COUNT` and
    /// `BROADCAST_ACK` responses carry.
    pub fn response_type(&self) -> Option<RequestType> {
        self.type_code.and_then(RequestType::from_code)
    }

    /// Reads the body as the answer to a pending request of type `pending`.
    ///
    /// An explicit `BROADCAST_CLIENT_COUNT` or `BROADCAST_ACK` type wins, as in the Node
    /// adapter. A missing `sockets` or `rooms` list is an error (Node counts such a response as
    /// received but adds nothing). Join, leave and disconnect get no responses:
    /// [`ProtocolError::UnexpectedResponse`].
    pub fn into_response(self, pending: RequestType) -> Result<Response, ProtocolError> {
        let map = value::as_map(&self.body, "response")?;
        let request_id = self.request_id.clone();
        let response = match (self.response_type(), pending) {
            (Some(RequestType::BroadcastClientCount), _) => {
                let count = value::require(map, "clientCount", "clientCount")?;
                Response::BroadcastClientCount(BroadcastClientCountResponse {
                    request_id,
                    client_count: value::as_whole_number(count).ok_or(
                        ProtocolError::InvalidField {
                            field: "clientCount",
                            expected: "a non-negative whole number",
                        },
                    )?,
                })
            }
            (Some(RequestType::BroadcastAck), _) => Response::BroadcastAck(BroadcastAckResponse {
                request_id,
                packet: raw_field(map, "packet").cloned(),
            }),
            (_, RequestType::Sockets) => Response::Sockets(SocketsResponse {
                request_id,
                sockets: value::rooms(Some(value::require(map, "sockets", "sockets")?), "sockets")?,
            }),
            (_, RequestType::AllRooms) => Response::AllRooms(AllRoomsResponse {
                request_id,
                rooms: value::rooms(Some(value::require(map, "rooms", "rooms")?), "rooms")?,
            }),
            (_, RequestType::RemoteFetch) => {
                let Value::Array(sockets) = value::require(map, "sockets", "sockets")? else {
                    return Err(ProtocolError::InvalidField {
                        field: "sockets",
                        expected: "an array of sockets",
                    });
                };
                Response::RemoteFetch(FetchResponse {
                    request_id,
                    sockets: sockets
                        .iter()
                        .map(fetched_socket)
                        .collect::<Result<_, _>>()?,
                })
            }
            (_, RequestType::ServerSideEmit) => Response::ServerSideEmit(ServerSideEmitResponse {
                request_id,
                data: raw_field(map, "data").map(value::json_from_msgpack),
            }),
            (_, other) => return Err(ProtocolError::UnexpectedResponse(other)),
        };
        Ok(response)
    }
}

/// A field whose `null` is a value (an ack argument), not an absence.
pub(crate) fn raw_field<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .rev()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Any JSON number as a `u64`: whole part, saturated (a float beyond the range, a negative).
fn js_number_as_u64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    Ok(match (number.as_u64(), number.as_i64(), number.as_f64()) {
        (Some(n), ..) => n,
        (None, Some(_), _) => 0, // negative
        // `as` truncates toward zero and saturates; JSON numbers are never NaN.
        (None, None, Some(f)) => f as u64,
        (None, None, None) => 0,
    })
}

/// One socket of a fetch response: `{id, handshake, rooms, data}`.
pub(crate) fn fetched_socket(socket: &Value) -> Result<FetchedSocket, ProtocolError> {
    let map = value::as_map(socket, "sockets[]")?;
    let handshake =
        match value::get(map, "handshake") {
            Some(handshake) => serde_json::from_value(value::json_from_msgpack(handshake))
                .map_err(|_| ProtocolError::InvalidField {
                    field: "sockets[].handshake",
                    expected: "a socket.io handshake object",
                })?,
            None => Handshake::default(),
        };
    Ok(FetchedSocket {
        id: value::string(map, "id", "sockets[].id")?,
        handshake,
        rooms: value::rooms(value::get(map, "rooms"), "sockets[].rooms")?,
        data: raw_field(map, "data").map_or(serde_json::Value::Null, value::json_from_msgpack),
    })
}

// Wire shapes for `serde_json`: field order is key order, as `JSON.stringify` writes them.

#[derive(Serialize)]
struct SocketsWire<'a> {
    #[serde(rename = "requestId")]
    request_id: &'a str,
    sockets: &'a [String],
}

#[derive(Serialize)]
struct AllRoomsWire<'a> {
    #[serde(rename = "requestId")]
    request_id: &'a str,
    rooms: &'a [String],
}

#[derive(Serialize)]
struct FetchWire<'a> {
    #[serde(rename = "requestId")]
    request_id: &'a str,
    sockets: &'a [FetchedSocket],
}

#[derive(Serialize)]
struct ServerSideEmitWire<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct ClientCountWire<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(rename = "clientCount")]
    client_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_response_round_trips() {
        let cases = [
            (
                RequestType::Sockets,
                Response::Sockets(SocketsResponse {
                    request_id: "r".into(),
                    sockets: vec!["s1".into()],
                }),
            ),
            (
                RequestType::AllRooms,
                Response::AllRooms(AllRoomsResponse {
                    request_id: "r".into(),
                    rooms: vec![],
                }),
            ),
            (
                RequestType::RemoteFetch,
                Response::RemoteFetch(FetchResponse {
                    request_id: "r".into(),
                    sockets: vec![FetchedSocket {
                        id: "s1".into(),
                        rooms: vec!["s1".into()],
                        data: serde_json::json!({"user": 1}),
                        ..FetchedSocket::default()
                    }],
                }),
            ),
            (
                RequestType::ServerSideEmit,
                Response::ServerSideEmit(ServerSideEmitResponse {
                    request_id: "r".into(),
                    data: None,
                }),
            ),
            (
                RequestType::Broadcast,
                Response::BroadcastClientCount(BroadcastClientCountResponse {
                    request_id: "r".into(),
                    client_count: 3,
                }),
            ),
            (
                RequestType::Broadcast,
                Response::BroadcastAck(BroadcastAckResponse {
                    request_id: "r".into(),
                    packet: Some(Value::Nil),
                }),
            ),
        ];
        for (pending, response) in cases {
            let bytes = response.encode().expect("encodes");
            assert_eq!(
                Response::decode(&bytes, pending).expect("decodes"),
                response
            );
        }
    }

    #[test]
    fn envelope_then_body() {
        let incoming = IncomingResponse::decode(br#"{"type":8,"requestId":"abc","clientCount":2}"#)
            .expect("envelope");
        assert_eq!(incoming.request_id(), "abc");
        assert_eq!(
            incoming.response_type(),
            Some(RequestType::BroadcastClientCount)
        );
        assert!(matches!(
            incoming.into_response(RequestType::Broadcast),
            Ok(Response::BroadcastClientCount(
                BroadcastClientCountResponse {
                    client_count: 2,
                    ..
                }
            ))
        ));
    }

    #[test]
    fn shape_errors() {
        assert!(matches!(
            Response::decode(br#"{"requestId":"r"}"#, RequestType::RemoteJoin),
            Err(ProtocolError::UnexpectedResponse(RequestType::RemoteJoin))
        ));
        assert!(matches!(
            Response::decode(br#"{"requestId":"r"}"#, RequestType::AllRooms),
            Err(ProtocolError::MissingField("rooms"))
        ));
        assert!(matches!(
            Response::decode(br#"{"sockets":[]}"#, RequestType::Sockets),
            Err(ProtocolError::MissingField("requestId"))
        ));
        assert!(matches!(
            Response::decode(
                br#"{"requestId":"r","sockets":[{"id":1}]}"#,
                RequestType::RemoteFetch
            ),
            Err(ProtocolError::InvalidField {
                field: "sockets[].id",
                ..
            })
        ));
    }
}

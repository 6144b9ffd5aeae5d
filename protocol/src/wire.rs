//! The three dialects on the wire, behind one interface: classic mode (`PUBLISH`, the
//! Node adapter's `createAdapter`), sharded mode (`SPUBLISH`, `createShardedAdapter`) and
//! streams mode (`XADD` and `PUBLISH`, `@socket.io/redis-streams-adapter`).
//!
//! The adapter and the emitter work with one set of domain types ([`BroadcastMessage`],
//! [`Request`], [`Response`]); [`Wire`] turns them into what to send in the configured mode
//! ([`Outgoing`]: a payload to publish on a channel, or an entry to append to a stream), and
//! [`incoming`] turns received sharded or streams messages back into them.
//!
//! ```
//! use sio_protocol::{BroadcastMessage, BroadcastOptions, Packet};
//! use sio_protocol::{AdapterMode, Outgoing, SubscriptionMode, Wire};
//!
//! let message = BroadcastMessage::new("node-1", Packet::event("/", "news", []), BroadcastOptions::to_rooms(["sport"]));
//!
//! let sharded = Wire::new(AdapterMode::Sharded(SubscriptionMode::Dynamic), "socket.io", "node-1");
//! let Outgoing::Publish { channel, .. } = sharded.broadcast("/", &message)? else { unreachable!() };
//! assert_eq!(channel, "socket.io#/#sport#"); // its room's own shard channel
//!
//! let streams = Wire::new(AdapterMode::Streams, "socket.io", "node-1");
//! let Outgoing::Append { stream, max_len, fields } = streams.broadcast("/", &message)? else { unreachable!() };
//! assert_eq!((stream.as_str(), max_len), ("socket.io", 10_000)); // XADD socket.io MAXLEN ~ 10000 *
//! assert_eq!(fields[2], ("type", "3".to_owned()));
//! # Ok::<(), sio_protocol::ProtocolError>(())
//! ```

use crate::ProtocolError;
use crate::sharded::{
    ShardedBody, ShardedBroadcast, ShardedChannels, ShardedDisconnectRequest, ShardedFetchRequest,
    ShardedMessage, ShardedRoomsRequest, ShardedServerSideEmit, ShardedServerSideEmitResponse,
    SubscriptionMode,
};
use crate::streams::{self, StreamsOptions};
use crate::{BroadcastMessage, json_value_to_msgpack, msgpack_value_to_json};
use crate::{
    BroadcastOptions, BroadcastRequest, Channels, DisconnectRequest, FetchRequest, FetchResponse,
    IncomingResponse, Layout, Request, RequestOpts, RequestType, Response, RoomsRequest,
    ServerSideEmitRequest, ServerSideEmitResponse,
};

/// Which protocol the cluster speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AdapterMode {
    /// `PUBLISH`/`PSUBSCRIBE`, as `createAdapter` (the default).
    #[default]
    Classic,
    /// Redis 7 sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), as `createShardedAdapter`:
    /// spreads the load of a Redis Cluster over its shards.
    Sharded(SubscriptionMode),
    /// Redis streams (`XADD`/`XREAD`) for broadcasts and room changes, classic pub/sub for the
    /// rest, as `@socket.io/redis-streams-adapter`'s `createAdapter` ([`crate::streams`]). Its
    /// options (stream name, count, length) are the [`Wire`]'s ([`Wire::with_streams`]).
    Streams,
}

/// What to send for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// `PUBLISH channel payload` (`SPUBLISH` in sharded mode): every message in classic and
    /// sharded mode; the ephemeral messages and the responses in streams mode.
    Publish {
        /// The channel.
        channel: String,
        /// The payload.
        payload: Vec<u8>,
    },
    /// `XADD stream MAXLEN ~ max_len * field value ...`: streams mode's other messages
    /// ([`streams::entry_fields`]).
    Append {
        /// The stream.
        stream: String,
        /// The approximate length to trim the stream to (`MAXLEN ~`).
        max_len: u64,
        /// The entry's fields and values, in order.
        fields: Vec<(&'static str, String)>,
    },
}

/// A sharded or streams message received, in the domain types.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A broadcast without acknowledgements.
    Broadcast(BroadcastMessage),
    /// A request (including a broadcast with acknowledgements).
    Request(Request),
    /// An answer to a request.
    Response(Response),
}

/// Encodes domain messages for one sender (`uid`) in one mode and prefix.
#[derive(Debug, Clone)]
pub struct Wire {
    pub(crate) mode: AdapterMode,
    pub(crate) prefix: String,
    pub(crate) uid: String,
    layout: Layout,
    streams: StreamsOptions,
}

fn request_opts_to_broadcast(opts: RequestOpts) -> BroadcastOptions {
    BroadcastOptions {
        rooms: opts.rooms,
        except: opts.except,
        ..Default::default()
    }
}

fn broadcast_to_request_opts(opts: BroadcastOptions) -> RequestOpts {
    RequestOpts {
        rooms: opts.rooms,
        except: opts.except,
    }
}

impl Wire {
    /// A wire for sender `uid` (`"emitter"` for an emitter) under `prefix`.
    pub fn new(mode: AdapterMode, prefix: impl Into<String>, uid: impl Into<String>) -> Self {
        Self {
            mode,
            prefix: prefix.into(),
            uid: uid.into(),
            layout: Layout::Adapter,
            streams: StreamsOptions::default(),
        }
    }

    /// Uses these streams-mode options (default: Node's, [`StreamsOptions::default`]). Only
    /// streams mode uses them; this does not change the mode.
    pub fn with_streams(mut self, options: StreamsOptions) -> Self {
        self.streams = options;
        self
    }

    /// The streams-mode options.
    pub fn streams(&self) -> &StreamsOptions {
        &self.streams
    }

    /// Writes classic broadcasts with this key order (the emitter's differs from the
    /// adapter's).
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The mode.
    pub fn mode(&self) -> AdapterMode {
        self.mode
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this is sharded mode (publish with `SPUBLISH`, subscribe with `SSUBSCRIBE`).
    pub fn is_sharded(&self) -> bool {
        matches!(self.mode, AdapterMode::Sharded(_))
    }

    /// Whether this is streams mode (some messages are [`Outgoing::Append`]; the others and
    /// the subscriptions use classic `PUBLISH`/`SUBSCRIBE`).
    pub fn is_streams(&self) -> bool {
        matches!(self.mode, AdapterMode::Streams)
    }

    fn classic(&self, nsp: &str) -> Channels {
        Channels::new(self.prefix.clone(), nsp.to_string())
    }

    fn sharded(&self, nsp: &str) -> ShardedChannels {
        ShardedChannels::new(self.prefix.clone(), nsp.to_string())
    }

    fn sharded_message(
        &self,
        nsp: &str,
        body: ShardedBody,
        mode: SubscriptionMode,
        to_uid: Option<&str>,
    ) -> Result<Outgoing, ProtocolError> {
        let channels = self.sharded(nsp);
        let channel = match channels.channel_for(&body, mode) {
            Some(c) => c,
            None => channels.response(to_uid.unwrap_or_default()),
        };
        let message = ShardedMessage::new(self.uid.clone(), nsp.to_string(), body);
        Ok(Outgoing::Publish {
            channel,
            payload: message.encode()?,
        })
    }

    /// Streams mode: an entry on the namespace's stream, or a payload on its public channel
    /// (ephemeral messages) or on the requester's channel (responses).
    fn streams_message(
        &self,
        nsp: &str,
        body: ShardedBody,
        to_uid: Option<&str>,
    ) -> Result<Outgoing, ProtocolError> {
        let response = body.message_type().is_response();
        let ephemeral = streams::is_ephemeral(&body);
        let message = ShardedMessage::new(self.uid.clone(), nsp.to_string(), body);
        if response || ephemeral {
            let channels = self.sharded(nsp);
            let channel = if response {
                channels.response(to_uid.unwrap_or_default())
            } else {
                channels.main().to_string()
            };
            return Ok(Outgoing::Publish {
                channel,
                payload: streams::encode_pubsub(&message)?,
            });
        }
        Ok(Outgoing::Append {
            stream: self.streams.stream_for(nsp),
            max_len: self.streams.max_len,
            fields: streams::entry_fields(&message)?,
        })
    }

    /// A message of sharded or streams mode (not classic).
    fn cluster_message(
        &self,
        nsp: &str,
        body: ShardedBody,
        to_uid: Option<&str>,
    ) -> Result<Outgoing, ProtocolError> {
        match self.mode {
            AdapterMode::Sharded(mode) => self.sharded_message(nsp, body, mode, to_uid),
            // Classic messages never get here: the callers encode them first.
            AdapterMode::Classic | AdapterMode::Streams => self.streams_message(nsp, body, to_uid),
        }
    }

    /// A broadcast (without ack) to the other nodes.
    pub fn broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
    ) -> Result<Outgoing, ProtocolError> {
        if self.mode == AdapterMode::Classic {
            return Ok(Outgoing::Publish {
                channel: self.classic(nsp).for_rooms(&message.opts.rooms),
                payload: message.encode(self.layout)?,
            });
        }
        let body = ShardedBody::Broadcast(ShardedBroadcast {
            packet: message.packet.clone(),
            request_id: None,
            opts: message.opts.clone(),
        });
        self.cluster_message(nsp, body, None)
    }

    /// A request to the other nodes; `None` when the mode has no such request (sharded
    /// and streams mode have no `ALL_ROOMS` / `SOCKETS`).
    pub fn request(&self, nsp: &str, request: Request) -> Result<Option<Outgoing>, ProtocolError> {
        if self.mode == AdapterMode::Classic {
            return Ok(Some(Outgoing::Publish {
                channel: self.classic(nsp).request().to_string(),
                payload: request.encode()?,
            }));
        }
        let body = match request {
            Request::RemoteJoin(r) => ShardedBody::SocketsJoin(ShardedRoomsRequest {
                opts: request_opts_to_broadcast(r.opts),
                rooms: r.rooms,
            }),
            Request::RemoteLeave(r) => ShardedBody::SocketsLeave(ShardedRoomsRequest {
                opts: request_opts_to_broadcast(r.opts),
                rooms: r.rooms,
            }),
            Request::RemoteDisconnect(r) => {
                ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
                    opts: request_opts_to_broadcast(r.opts),
                    close: r.close,
                })
            }
            Request::RemoteFetch(r) => ShardedBody::FetchSockets(ShardedFetchRequest {
                opts: request_opts_to_broadcast(r.opts),
                request_id: r.request_id,
            }),
            Request::ServerSideEmit(r) => ShardedBody::ServerSideEmit(ShardedServerSideEmit {
                request_id: r.request_id,
                packet: r.data.into_iter().map(json_value_to_msgpack).collect(),
            }),
            Request::Broadcast(r) => ShardedBody::Broadcast(ShardedBroadcast {
                packet: r.packet,
                request_id: Some(r.request_id),
                opts: r.opts,
            }),
            Request::AllRooms(_) | Request::Sockets(_) => return Ok(None),
        };
        self.cluster_message(nsp, body, None).map(Some)
    }

    /// An answer to node `to_uid`'s request.
    pub fn response(
        &self,
        nsp: &str,
        to_uid: Option<&str>,
        response: Response,
    ) -> Result<Option<Outgoing>, ProtocolError> {
        if self.mode == AdapterMode::Classic {
            return Ok(Some(Outgoing::Publish {
                channel: self.classic(nsp).response().to_string(),
                payload: response.encode()?,
            }));
        }
        let body = match response {
            Response::RemoteFetch(r) => ShardedBody::FetchSocketsResponse(r),
            Response::ServerSideEmit(r) => {
                ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
                    request_id: r.request_id,
                    packet: r.data.map(json_value_to_msgpack),
                })
            }
            Response::BroadcastClientCount(r) => ShardedBody::BroadcastClientCount(r),
            Response::BroadcastAck(r) => ShardedBody::BroadcastAck(r),
            Response::Sockets(_) | Response::AllRooms(_) => return Ok(None),
        };
        self.cluster_message(nsp, body, to_uid).map(Some)
    }

    /// Reads a payload received on this sender's response channel as the answer to
    /// request `id`, of type `kind`: `None` when it is something else (another request's
    /// answer, a sharded message that is not a response, garbage).
    pub fn read_response(&self, payload: &[u8], id: &str, kind: RequestType) -> Option<Response> {
        let response = match self.mode {
            AdapterMode::Classic => {
                let incoming = IncomingResponse::decode(payload).ok()?;
                if incoming.request_id() != id {
                    return None;
                }
                incoming.into_response(kind).ok()?
            }
            AdapterMode::Sharded(_) => match incoming(ShardedMessage::decode(payload).ok()?)? {
                Incoming::Response(r) => r,
                _ => return None,
            },
            AdapterMode::Streams => match incoming(streams::decode_pubsub(payload).ok()?)? {
                Incoming::Response(r) => r,
                _ => return None,
            },
        };
        (response.request_id() == id).then_some(response)
    }

    /// The channel answers to this sender's requests arrive on: the shared response
    /// channel in classic mode, the sender's own channel in sharded and streams mode.
    /// Subscribe to it (`SSUBSCRIBE` in sharded mode, `SUBSCRIBE` otherwise) before sending a
    /// request.
    pub fn response_channel(&self, nsp: &str) -> String {
        match self.mode {
            AdapterMode::Classic => self.classic(nsp).response().to_string(),
            AdapterMode::Sharded(_) | AdapterMode::Streams => self.sharded(nsp).response(&self.uid),
        }
    }
}

/// A received sharded or streams message ([`ShardedMessage::decode`],
/// [`streams::message_from_entry`], [`streams::decode_pubsub`]) as domain types (`None`:
/// heartbeats and close, which carry nothing to act on).
pub fn incoming(message: ShardedMessage) -> Option<Incoming> {
    let uid = Some(message.uid.clone());
    Some(match message.body {
        ShardedBody::Broadcast(b) => match b.request_id {
            None => Incoming::Broadcast(BroadcastMessage::new(message.uid, b.packet, b.opts)),
            Some(request_id) => Incoming::Request(Request::Broadcast(BroadcastRequest {
                uid,
                request_id,
                packet: b.packet,
                opts: b.opts,
            })),
        },
        ShardedBody::SocketsJoin(r) => Incoming::Request(Request::RemoteJoin(RoomsRequest {
            uid,
            opts: broadcast_to_request_opts(r.opts),
            rooms: r.rooms,
        })),
        ShardedBody::SocketsLeave(r) => Incoming::Request(Request::RemoteLeave(RoomsRequest {
            uid,
            opts: broadcast_to_request_opts(r.opts),
            rooms: r.rooms,
        })),
        ShardedBody::DisconnectSockets(r) => {
            Incoming::Request(Request::RemoteDisconnect(DisconnectRequest {
                uid,
                opts: broadcast_to_request_opts(r.opts),
                close: r.close,
            }))
        }
        ShardedBody::FetchSockets(r) => Incoming::Request(Request::RemoteFetch(FetchRequest {
            uid,
            request_id: r.request_id,
            opts: broadcast_to_request_opts(r.opts),
        })),
        ShardedBody::ServerSideEmit(r) => {
            Incoming::Request(Request::ServerSideEmit(ServerSideEmitRequest {
                uid,
                request_id: r.request_id,
                data: r.packet.iter().map(msgpack_value_to_json).collect(),
            }))
        }
        ShardedBody::FetchSocketsResponse(r) => {
            Incoming::Response(Response::RemoteFetch(FetchResponse {
                request_id: r.request_id,
                sockets: r.sockets,
            }))
        }
        ShardedBody::ServerSideEmitResponse(r) => {
            Incoming::Response(Response::ServerSideEmit(ServerSideEmitResponse {
                request_id: r.request_id,
                data: r.packet.as_ref().map(msgpack_value_to_json),
            }))
        }
        ShardedBody::BroadcastClientCount(r) => {
            Incoming::Response(Response::BroadcastClientCount(r))
        }
        ShardedBody::BroadcastAck(r) => Incoming::Response(Response::BroadcastAck(r)),
        ShardedBody::InitialHeartbeat | ShardedBody::Heartbeat | ShardedBody::AdapterClose => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use rmpv::Value;

    use super::*;
    use crate::{AllRoomsRequest, BroadcastAckResponse, Packet, RoomsRequest};

    fn streams_wire() -> Wire {
        Wire::new(AdapterMode::Streams, "socket.io", "node-1")
    }

    fn broadcast_message() -> BroadcastMessage {
        BroadcastMessage::new(
            "node-1",
            Packet::event("/", "news", [Value::from("hi")]),
            BroadcastOptions::to_rooms(["sport"]),
        )
    }

    fn join() -> Request {
        Request::RemoteJoin(RoomsRequest {
            uid: None,
            opts: RequestOpts::default(),
            rooms: vec!["r".into()],
        })
    }

    fn fetch() -> Request {
        Request::RemoteFetch(FetchRequest {
            uid: None,
            request_id: "rq".into(),
            opts: RequestOpts::default(),
        })
    }

    #[test]
    fn streams_broadcasts_are_appended_to_the_namespaces_stream() {
        let wire = streams_wire().with_streams(StreamsOptions {
            stream_count: 4,
            max_len: 50,
            ..StreamsOptions::default()
        });
        assert!(wire.is_streams() && !wire.is_sharded());
        let Outgoing::Append {
            stream,
            max_len,
            fields,
        } = wire
            .broadcast("/admin", &broadcast_message())
            .expect("encodes")
        else {
            panic!("not an append");
        };
        assert_eq!((stream.as_str(), max_len), ("socket.io-0", 50));
        let read =
            streams::message_from_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
                .expect("decodes")
                .expect("has nsp");
        assert_eq!((read.uid.as_str(), read.nsp.as_str()), ("node-1", "/admin"));
        let Some(Incoming::Broadcast(message)) = incoming(read) else {
            panic!("not a broadcast");
        };
        assert_eq!(message.packet.event_name(), Some("news"));
        assert_eq!(message.opts.rooms, ["sport"]);
    }

    #[test]
    fn streams_requests_are_appended_or_published_as_node_does() {
        let wire = streams_wire();
        let appended = wire.request("/", join()).expect("encodes");
        assert!(
            matches!(&appended, Some(Outgoing::Append { stream, .. }) if stream == "socket.io")
        );
        for request in [
            fetch(),
            Request::ServerSideEmit(ServerSideEmitRequest {
                uid: None,
                request_id: None,
                data: vec!["ev".into()],
            }),
            Request::Broadcast(BroadcastRequest {
                uid: None,
                request_id: "rq".into(),
                packet: Packet::event("/", "ask", []),
                opts: BroadcastOptions::default(),
            }),
        ] {
            let Some(Outgoing::Publish { channel, payload }) =
                wire.request("/", request.clone()).expect("encodes")
            else {
                panic!("{request:?} is not published");
            };
            assert_eq!(channel, "socket.io#/#");
            let Some(Incoming::Request(read)) =
                incoming(streams::decode_pubsub(&payload).expect("msgpack"))
            else {
                panic!("not a request");
            };
            assert_eq!(read.request_id(), request.request_id());
        }
        let all_rooms = Request::AllRooms(AllRoomsRequest::default());
        assert_eq!(wire.request("/", all_rooms).expect("encodes"), None);
    }

    #[test]
    fn streams_responses_are_published_to_the_requester_and_read_back() {
        let node = streams_wire();
        let response = Response::BroadcastAck(BroadcastAckResponse {
            request_id: "rq".into(),
            packet: Some(Value::from("yes")),
        });
        let Some(Outgoing::Publish { channel, payload }) = node
            .response("/", Some("emitter"), response.clone())
            .expect("encodes")
        else {
            panic!("not published");
        };
        assert_eq!(channel, "socket.io#/#emitter#");
        let emitter = Wire::new(AdapterMode::Streams, "socket.io", "emitter");
        assert_eq!(emitter.response_channel("/"), channel);
        assert_eq!(
            emitter.read_response(&payload, "rq", RequestType::Broadcast),
            Some(response)
        );
        assert_eq!(
            emitter.read_response(&payload, "other", RequestType::Broadcast),
            None
        );
        // A sharded reader does not take msgpack for JSON; a streams reader refuses JSON.
        let sharded = Wire::new(
            AdapterMode::Sharded(SubscriptionMode::Static),
            "socket.io",
            "emitter",
        );
        let Some(Outgoing::Publish { payload: json, .. }) = sharded
            .response(
                "/",
                Some("emitter"),
                Response::BroadcastClientCount(crate::BroadcastClientCountResponse {
                    request_id: "rq".into(),
                    client_count: 1,
                }),
            )
            .expect("encodes")
        else {
            panic!("not published");
        };
        assert_eq!(
            emitter.read_response(&json, "rq", RequestType::Broadcast),
            None
        );
    }

    #[test]
    fn classic_and_sharded_always_publish() {
        for mode in [
            AdapterMode::Classic,
            AdapterMode::Sharded(SubscriptionMode::Dynamic),
        ] {
            let wire = Wire::new(mode, "socket.io", "node-1");
            assert!(matches!(
                wire.broadcast("/", &broadcast_message()),
                Ok(Outgoing::Publish { .. })
            ));
            for request in [join(), fetch()] {
                assert!(matches!(
                    wire.request("/", request),
                    Ok(Some(Outgoing::Publish { .. }))
                ));
            }
        }
    }
}

//! The two dialects on the wire, behind one interface: classic mode (`PUBLISH`, the
//! Node adapter's `createAdapter`) and sharded mode (`SPUBLISH`, `createShardedAdapter`).
//!
//! The adapter and the emitter work with one set of domain types ([`BroadcastMessage`],
//! [`Request`], [`Response`]); [`Wire`] turns them into the channel and bytes of the
//! configured mode, and [`incoming`] turns received sharded messages back into them.
//!
//! ```
//! use sio_protocol::{BroadcastMessage, BroadcastOptions, Packet};
//! use sio_protocol::{AdapterMode, SubscriptionMode, Wire};
//!
//! let wire = Wire::new(AdapterMode::Sharded(SubscriptionMode::Dynamic), "socket.io", "node-1");
//! let message = BroadcastMessage::new("node-1", Packet::event("/", "news", []), BroadcastOptions::to_rooms(["sport"]));
//! let (channel, _bytes) = wire.broadcast("/", &message).unwrap();
//! assert_eq!(channel, "socket.io#/#sport#"); // its room's own shard channel
//! ```

use crate::ProtocolError;
use crate::sharded::{
    ShardedBody, ShardedBroadcast, ShardedChannels, ShardedDisconnectRequest, ShardedFetchRequest,
    ShardedMessage, ShardedRoomsRequest, ShardedServerSideEmit, ShardedServerSideEmitResponse,
    SubscriptionMode,
};
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
}

/// A message received on a sharded channel, in the domain types.
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
        }
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
    ) -> Result<(String, Vec<u8>), ProtocolError> {
        let channels = self.sharded(nsp);
        let channel = match channels.channel_for(&body, mode) {
            Some(c) => c,
            None => channels.response(to_uid.unwrap_or_default()),
        };
        let message = ShardedMessage::new(self.uid.clone(), nsp.to_string(), body);
        Ok((channel, message.encode()?))
    }

    /// A broadcast (without ack) to the other nodes: `(channel, payload)`.
    pub fn broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
    ) -> Result<(String, Vec<u8>), ProtocolError> {
        match self.mode {
            AdapterMode::Classic => Ok((
                self.classic(nsp).for_rooms(&message.opts.rooms),
                message.encode(self.layout)?,
            )),
            AdapterMode::Sharded(mode) => self.sharded_message(
                nsp,
                ShardedBody::Broadcast(ShardedBroadcast {
                    packet: message.packet.clone(),
                    request_id: None,
                    opts: message.opts.clone(),
                }),
                mode,
                None,
            ),
        }
    }

    /// A request to the other nodes; `None` when the mode has no such request (sharded
    /// mode has no `ALL_ROOMS` / `SOCKETS`).
    pub fn request(
        &self,
        nsp: &str,
        request: Request,
    ) -> Result<Option<(String, Vec<u8>)>, ProtocolError> {
        let AdapterMode::Sharded(mode) = self.mode else {
            return Ok(Some((
                self.classic(nsp).request().to_string(),
                request.encode()?,
            )));
        };
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
        self.sharded_message(nsp, body, mode, None).map(Some)
    }

    /// An answer to node `to_uid`'s request.
    pub fn response(
        &self,
        nsp: &str,
        to_uid: Option<&str>,
        response: Response,
    ) -> Result<Option<(String, Vec<u8>)>, ProtocolError> {
        let AdapterMode::Sharded(mode) = self.mode else {
            return Ok(Some((
                self.classic(nsp).response().to_string(),
                response.encode()?,
            )));
        };
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
        self.sharded_message(nsp, body, mode, to_uid).map(Some)
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
        };
        (response.request_id() == id).then_some(response)
    }

    /// The channel answers to this sender's requests arrive on: the shared response
    /// channel in classic mode, the sender's own channel in sharded mode. Subscribe to it
    /// (`SUBSCRIBE` or `SSUBSCRIBE`) before sending a request.
    pub fn response_channel(&self, nsp: &str) -> String {
        match self.mode {
            AdapterMode::Classic => self.classic(nsp).response().to_string(),
            AdapterMode::Sharded(_) => self.sharded(nsp).response(&self.uid),
        }
    }
}

/// A received sharded message as domain types (`None`: heartbeats and close, which
/// carry nothing to act on).
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

//! The two dialects on the wire, behind one interface: classic mode (`PUBLISH`, the
//! Node adapter's `createAdapter`) and sharded mode (`SPUBLISH`, `createShardedAdapter`).
//!
//! The adapter works with one set of domain types ([`BroadcastMessage`], [`Request`],
//! [`Response`]); this module turns them into the channel and bytes of the configured
//! mode, and turns received sharded messages back into them.

use fred::clients::Client;
use fred::interfaces::PubsubInterface;
use fred::types::Value as RedisValue;

use crate::AdapterError;
use crate::protocol::sharded::{
    ShardedBody, ShardedBroadcast, ShardedChannels, ShardedDisconnectRequest, ShardedFetchRequest,
    ShardedMessage, ShardedRoomsRequest, ShardedServerSideEmit, ShardedServerSideEmitResponse,
    SubscriptionMode,
};
use crate::protocol::{BroadcastMessage, json_value_to_msgpack, msgpack_value_to_json};
use crate::protocol::{
    BroadcastOptions, BroadcastRequest, Channels, DisconnectRequest, FetchRequest, FetchResponse,
    Layout, Request, RequestOpts, Response, RoomsRequest, ServerSideEmitRequest,
    ServerSideEmitResponse,
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

/// A message received on a sharded channel, in the adapter's domain types.
pub(crate) enum Incoming {
    Broadcast(BroadcastMessage),
    Request(Request),
    Response(Response),
}

/// Encodes for the configured mode.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub(crate) mode: AdapterMode,
    pub(crate) prefix: String,
    pub(crate) uid: String,
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
    pub(crate) fn is_sharded(&self) -> bool {
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
    ) -> Result<(String, Vec<u8>), AdapterError> {
        let channels = self.sharded(nsp);
        let channel = match channels.channel_for(&body, mode) {
            Some(c) => c,
            None => channels.response(to_uid.unwrap_or_default()),
        };
        let message = ShardedMessage::new(self.uid.clone(), nsp.to_string(), body);
        Ok((channel, message.encode()?))
    }

    /// A broadcast (without ack) to the other nodes.
    pub(crate) fn broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
    ) -> Result<(String, Vec<u8>), AdapterError> {
        match self.mode {
            AdapterMode::Classic => Ok((
                self.classic(nsp).for_rooms(&message.opts.rooms),
                message.encode(Layout::Adapter)?,
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
    pub(crate) fn request(
        &self,
        nsp: &str,
        request: Request,
    ) -> Result<Option<(String, Vec<u8>)>, AdapterError> {
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
    pub(crate) fn response(
        &self,
        nsp: &str,
        to_uid: Option<&str>,
        response: Response,
    ) -> Result<Option<(String, Vec<u8>)>, AdapterError> {
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

    /// How many nodes serve `nsp` (this one included).
    pub(crate) async fn node_count(
        &self,
        client: &Client,
        nsp: &str,
    ) -> Result<usize, AdapterError> {
        let reply: Vec<RedisValue> = match self.mode {
            AdapterMode::Classic => {
                client
                    .pubsub_numsub(self.classic(nsp).request().to_string())
                    .await?
            }
            AdapterMode::Sharded(_) => {
                client
                    .pubsub_shardnumsub(self.sharded(nsp).main().to_string())
                    .await?
            }
        };
        Ok(reply.get(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize)
    }
}

/// A received sharded message as the adapter's domain types (`None`: heartbeats and
/// close, which carry nothing to act on).
pub(crate) fn incoming(message: ShardedMessage) -> Option<Incoming> {
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

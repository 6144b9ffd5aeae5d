//! [`RedisAdapter`]: the socketioxide adapter of one namespace.
//!
//! Across nodes, in both directions with Node.js peers: broadcasts (rooms, except,
//! volatile, binary), `server_count`, `fetch_sockets`, remote join / leave / disconnect
//! (of fetched sockets and of operators), `rooms`, and answering other nodes'
//! broadcasts with acks. Sending a broadcast with acks collects local acks only.
//!
//! Sockets must be in a room named by their own id (Node's sockets are): that is how a
//! single remote socket is addressed on the wire.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use socketioxide_core::adapter::errors::BroadcastError;
use socketioxide_core::adapter::{
    BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, Room,
    SocketEmitter, Spawnable,
};
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::Parse;
use tracing::{debug, warn};

use crate::AdapterError;
use crate::ack::{AckStream, RemoteAcks};
use crate::cluster::RedisCluster;
use crate::convert::{self, ArgsRef};
use crate::ids::REMOTE_UID;
use crate::protocol::{
    self, AllRoomsRequest, BroadcastMessage, DisconnectRequest, FetchRequest, Request, RequestOpts,
    Response, RoomsRequest, new_request_id,
};
use crate::stats::Stats;

mod catch_up;
mod incoming;
#[cfg(test)]
mod tests;
pub(crate) use catch_up::{CatchUps, Logged};
use socketioxide_core::adapter::RemoteSocketData;

/// A socketioxide adapter that shares a namespace with every node on the same Redis,
/// speaking the `@socket.io/redis-adapter` protocol. Plug it in with
/// `SocketIo::builder().with_adapter::<RedisAdapter<_>>(cluster)`; its state is a
/// [`RedisCluster`].
pub struct RedisAdapter<E> {
    local: CoreLocalAdapter<E>,
    cluster: RedisCluster,
    /// Set in `init`, so acknowledgement streams can hold the adapter.
    me: std::sync::OnceLock<std::sync::Weak<Self>>,
    /// Connection state recovery: the sockets being caught up, the log position.
    catch_ups: CatchUps,
}

/// The future `io.ns(..)` returns with this adapter: it completes once the namespace's
/// channels are subscribed, so awaiting it means "this namespace is live in the cluster".
pub struct InitRes(Pin<Box<dyn Future<Output = Result<(), AdapterError>> + Send>>);

impl Future for InitRes {
    type Output = Result<(), AdapterError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl Spawnable for InitRes {
    fn spawn(self) {
        tokio::spawn(async move {
            if let Err(e) = self.await {
                warn!(error = %e, "namespace adapter failed to subscribe");
            }
        });
    }
}

impl<E> DefinedAdapter for RedisAdapter<E> {}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// The namespace's parser.
    pub(crate) fn local_parser(&self) -> impl Parse + '_ {
        self.local.parser()
    }

    fn stats(&self) -> &Stats {
        self.cluster.counters()
    }

    /// Delivers to this node's sockets, counting sockets whose buffer refused it.
    fn deliver_locally(&self, packet: Packet, opts: BroadcastOptions) {
        if let Err(errors) = self.local.broadcast(packet, opts) {
            Stats::add(&self.stats().local_delivery_failed, errors.len() as u64);
            debug!(failed = errors.len(), nsp = %self.local.path(), "some local sockets did not take a broadcast");
        }
    }
}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// socketioxide's options as a request's `opts`. A single socket (a fetched remote
    /// socket) is addressed by its own room; an excluded sender by except.
    fn request_opts(&self, opts: &BroadcastOptions) -> RequestOpts {
        let ids = self.cluster.ids();
        let mut out = RequestOpts {
            rooms: opts.rooms.iter().map(|r| r.to_string()).collect(),
            except: opts.except.iter().map(|r| r.to_string()).collect(),
        };
        if let Some(sid) = opts.sid {
            if opts.has_flag(BroadcastFlags::Broadcast) {
                out.except.push(ids.wire_id(sid));
            } else if out.rooms.is_empty() {
                out.rooms.push(ids.wire_id(sid));
            }
        }
        out
    }

    /// A request's `opts` as socketioxide options for the local sockets.
    fn local_opts(opts: &RequestOpts) -> BroadcastOptions {
        let mut out = BroadcastOptions::default();
        out.rooms = opts.rooms.iter().cloned().map(Room::Owned).collect();
        out.except = opts.except.iter().cloned().map(Room::Owned).collect();
        // Without `Broadcast`, empty rooms would select nobody instead of everybody.
        out.add_flag(BroadcastFlags::Broadcast);
        out
    }

    fn is_local_only(&self, opts: &BroadcastOptions) -> bool {
        opts.is_local(self.local.server_id())
    }

    /// Publishes a request that gets no answer (join, leave, disconnect).
    fn publish_request(&self, request: Request) -> Result<(), AdapterError> {
        self.cluster.publish_request(self.local.path(), request)
    }
}

impl<E: SocketEmitter> CoreAdapter<E> for RedisAdapter<E> {
    type Error = AdapterError;
    type State = RedisCluster;
    type AckStream = AckStream<E>;
    type InitRes = InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        Self {
            local,
            cluster: state.clone(),
            me: std::sync::OnceLock::new(),
            catch_ups: CatchUps::default(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        let _ = self.me.set(Arc::downgrade(&self));
        InitRes(Box::pin(async move {
            let nsp = self.local.path().to_string();
            self.cluster.join_namespace(&nsp, self.clone()).await?;
            debug!(nsp, "namespace subscribed");
            on_success();
            Ok(())
        }))
    }

    fn close(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.cluster.leave_namespace(self.local.path())
    }

    fn server_count(&self) -> impl Future<Output = Result<u16, Self::Error>> + Send {
        let cluster = self.cluster.clone();
        let nsp = self.local.path().to_string();
        async move {
            let count = cluster.node_count(&nsp).await?;
            Ok(u16::try_from(count).unwrap_or(u16::MAX))
        }
    }

    /// Delivers to local sockets at once and queues the message for the other nodes in
    /// call order (one ordered publish queue per node); the returned future completes once
    /// queued. With connection state recovery on, local sockets get it when it is read back
    /// from the log instead, with its offset, in the log's order.
    fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> impl Future<Output = Result<(), BroadcastError>> + Send {
        let uid = self.local.server_id();
        if opts.is_local(uid) || !is_event(&packet) {
            self.deliver_locally(packet, opts);
            return futures_util::future::ready(Ok(()));
        }
        // The other nodes' copy is queued before the local fan-out. Both are synchronous
        // pushes in call order, so per-sender order holds either way; but the queue's
        // task woken first is scheduled ahead of this node's socket writers instead of
        // behind them, so the other nodes start delivering while this one still does.
        let queued = convert::to_wire(&self.local.parser(), &packet, &opts)
            .map_err(|e| {
                warn!(error = %e, "broadcast not sent to other nodes: cannot encode it");
                BroadcastError::Adapter(e.into())
            })
            .and_then(|m| {
                let message = BroadcastMessage::new(self.cluster.uid(), m.packet, m.opts);
                let volatile = opts.has_flag(BroadcastFlags::Volatile);
                self.cluster
                    .publish_broadcast(self.local.path(), &message, volatile)
                    .map_err(|e| BroadcastError::Adapter(e.into()))
            });
        if !self.cluster.recovers() {
            self.deliver_locally(packet, opts);
        }
        futures_util::future::ready(queued)
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Self::AckStream, Self::Error>> + Send {
        let timeout = timeout.unwrap_or_else(|| self.local.ack_timeout());
        let me = self.me.get().and_then(std::sync::Weak::upgrade);
        let remote = match (self.is_local_only(&opts), me) {
            (false, Some(me)) => convert::to_wire(&self.local.parser(), &packet, &opts)
                .map(|mut wire| {
                    wire.opts.flags.timeout = Some(timeout.as_millis() as u64);
                    let request = Request::Broadcast(protocol::BroadcastRequest {
                        uid: Some(self.cluster.uid().to_string()),
                        request_id: new_request_id(),
                        packet: wire.packet,
                        opts: wire.opts,
                    });
                    (me, self.cluster.request_stream(self.local.path(), request))
                })
                .ok(),
            _ => None,
        };
        let (local, _count) = self.local.broadcast_with_ack(packet, opts, Some(timeout));
        let cluster = self.cluster.clone();
        let nsp = self.local.path().to_string();
        async move {
            let Some((adapter, registered)) = remote else {
                return Ok(AckStream::new(local, None));
            };
            let (guard, rx) = registered?;
            let nodes = cluster.node_count(&nsp).await?.saturating_sub(1);
            Ok(AckStream::new(
                local,
                Some(RemoteAcks {
                    decode: Box::new(move |arg| {
                        let parser = adapter.local_parser();
                        parser
                            .encode_value(&ArgsRef(std::slice::from_ref(arg)), None)
                            .ok()
                    }),
                    rx,
                    _guard: guard,
                    deadline: Box::pin(tokio::time::sleep(timeout)),
                    nodes,
                    counted: 0,
                    clients: 0,
                    acked: 0,
                    missing: None,
                }),
            ))
        }
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl socketioxide_core::adapter::RoomParam,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let wire = (!self.is_local_only(&opts)).then(|| {
            self.publish_request(Request::RemoteJoin(RoomsRequest {
                uid: Some(self.cluster.uid().to_string()),
                opts: self.request_opts(&opts),
                rooms: rooms.iter().map(|r| r.to_string()).collect(),
            }))
        });
        self.local.add_sockets(opts, rooms);
        let cluster = self.cluster.clone();
        let nsp = self.local.path().to_string();
        async move {
            cluster.sync_rooms(&nsp).await;
            wire.unwrap_or(Ok(()))
        }
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: impl socketioxide_core::adapter::RoomParam,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let rooms: Vec<Room> = rooms.into_room_iter().collect();
        let wire = (!self.is_local_only(&opts)).then(|| {
            self.publish_request(Request::RemoteLeave(RoomsRequest {
                uid: Some(self.cluster.uid().to_string()),
                opts: self.request_opts(&opts),
                rooms: rooms.iter().map(|r| r.to_string()).collect(),
            }))
        });
        self.local.del_sockets(opts, rooms);
        futures_util::future::ready(wire.unwrap_or(Ok(())))
    }

    fn disconnect_socket(
        &self,
        opts: BroadcastOptions,
    ) -> impl Future<Output = Result<(), BroadcastError>> + Send {
        let wire = (!self.is_local_only(&opts)).then(|| {
            self.publish_request(Request::RemoteDisconnect(DisconnectRequest {
                uid: Some(self.cluster.uid().to_string()),
                opts: self.request_opts(&opts),
                close: false,
            }))
        });
        let local = self.local.disconnect_socket(opts);
        futures_util::future::ready(
            wire.unwrap_or(Ok(()))
                .map_err(|e| BroadcastError::Adapter(e.into()))
                .and_then(|()| local.map_err(BroadcastError::Socket)),
        )
    }

    fn rooms(
        &self,
        opts: BroadcastOptions,
    ) -> impl Future<Output = Result<Vec<Room>, Self::Error>> + Send {
        let local: std::collections::HashSet<Room> = self.local.rooms(opts.clone());
        let only_local = opts.has_flag(BroadcastFlags::Local);
        let cluster = self.cluster.clone();
        let nsp_name = self.local.path().to_string();
        let timeout = cluster.request_timeout();
        async move {
            let mut all = local;
            if !only_local {
                let request = Request::AllRooms(AllRoomsRequest {
                    uid: Some(cluster.uid().to_string()),
                    request_id: new_request_id(),
                });
                for response in cluster.request(&nsp_name, request, timeout).await? {
                    if let Response::AllRooms(r) = response {
                        all.extend(r.rooms.into_iter().map(Room::Owned));
                    }
                }
            }
            Ok(all.into_iter().collect())
        }
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> impl Future<Output = Result<Vec<RemoteSocketData>, Self::Error>> + Send {
        let mut sockets = self.local.fetch_sockets(opts.clone());
        let remote = (!self.is_local_only(&opts)).then(|| {
            Request::RemoteFetch(FetchRequest {
                uid: Some(self.cluster.uid().to_string()),
                request_id: new_request_id(),
                opts: self.request_opts(&opts),
            })
        });
        let cluster = self.cluster.clone();
        let nsp_name = self.local.path().to_string();
        let nsp = self.local.path().clone();
        async move {
            if let Some(request) = remote {
                let timeout = cluster.request_timeout();
                for response in cluster.request(&nsp_name, request, timeout).await? {
                    let Response::RemoteFetch(r) = response else {
                        continue;
                    };
                    for s in r.sockets {
                        sockets.push(RemoteSocketData {
                            id: cluster.ids().to_sid(&s.id),
                            server_id: REMOTE_UID,
                            ns: nsp.clone(),
                        });
                    }
                }
            }
            Ok(sockets)
        }
    }

    fn get_local(&self) -> &CoreLocalAdapter<E> {
        &self.local
    }
}

/// Whether a socketioxide packet is an event this adapter sends to other nodes.
pub(crate) fn is_event(packet: &Packet) -> bool {
    matches!(
        packet.inner,
        PacketData::Event(_, None) | PacketData::BinaryEvent(_, None)
    )
}

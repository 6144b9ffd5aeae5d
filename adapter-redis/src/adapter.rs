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

use fred::interfaces::PubsubInterface;
use futures_util::FutureExt;
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
use crate::cluster::{NamespaceSink, RedisCluster, Stats};
use crate::convert;
use crate::protocol::{
    self, AllRoomsRequest, BroadcastAckResponse, BroadcastClientCountResponse, BroadcastMessage,
    Channels, DisconnectRequest, FetchRequest, FetchResponse, FetchedSocket, Request, RequestOpts,
    Response, RoomsRequest,
};
use crate::remote::REMOTE_UID;
use socketioxide_core::adapter::RemoteSocketData;

/// A socketioxide adapter that shares a namespace with every node on the same Redis,
/// speaking the `@socket.io/redis-adapter` protocol. Plug it in with
/// `SocketIo::builder().with_adapter::<RedisAdapter<_>>(cluster)`; its state is a
/// [`RedisCluster`].
pub struct RedisAdapter<E> {
    local: CoreLocalAdapter<E>,
    cluster: RedisCluster,
    channels: Channels,
    /// Set in `init`, so acknowledgement streams can hold the adapter.
    me: std::sync::OnceLock<std::sync::Weak<Self>>,
    /// Sharded mode: the room channels this namespace is subscribed to.
    room_subs: std::sync::Mutex<std::collections::HashSet<String>>,
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
        &self.cluster.inner.stats
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
        let ids = &self.cluster.inner.ids;
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

    /// Classic mode: the request and response channels of this namespace.
    fn classic_channels(&self) -> Vec<String> {
        vec![
            self.channels.request().to_string(),
            self.channels.response().to_string(),
            self.channels.specific_response(self.cluster.uid()),
        ]
    }

    /// Sharded mode: the main channel and this node's response channel.
    fn sharded_channels(&self) -> Vec<String> {
        let channels = crate::protocol::sharded::ShardedChannels::new(
            self.cluster.prefix().to_string(),
            self.local.path().to_string(),
        );
        vec![
            channels.main().to_string(),
            channels.response(self.cluster.uid()),
        ]
    }

    /// Sharded dynamic modes: subscribes to the channel of every local room that
    /// publishers send to its own channel, and unsubscribes from rooms gone empty.
    async fn sync_room_channels(&self) {
        let crate::wire::AdapterMode::Sharded(mode) = self.cluster.inner.wire.mode else {
            return;
        };
        let channels = crate::protocol::sharded::ShardedChannels::new(
            self.cluster.prefix().to_string(),
            self.local.path().to_string(),
        );
        let mut all = BroadcastOptions::default();
        all.add_flag(BroadcastFlags::Broadcast);
        let wanted: std::collections::HashSet<String> = self
            .local
            .rooms(all)
            .into_iter()
            .filter(|room| mode.publishes_on_room_channel(room))
            .map(|room| channels.room(&room))
            .collect();
        let (add, remove): (Vec<String>, Vec<String>) = {
            let subs = self.room_subs.lock().unwrap_or_else(|e| e.into_inner());
            (
                wanted.difference(&subs).cloned().collect(),
                subs.difference(&wanted).cloned().collect(),
            )
        };
        let sub = &self.cluster.inner.subscriber;
        if !add.is_empty() {
            match crate::cluster::per_slot(add.clone(), |c| sub.ssubscribe(c)).await {
                Ok(()) => self
                    .room_subs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(add),
                Err(e) => warn!(error = %e, "cannot subscribe to room channels"),
            }
        }
        if !remove.is_empty() {
            if let Err(e) = crate::cluster::per_slot(remove.clone(), |c| sub.sunsubscribe(c)).await
            {
                warn!(error = %e, "cannot unsubscribe from room channels");
            }
            let mut subs = self.room_subs.lock().unwrap_or_else(|e| e.into_inner());
            for channel in remove {
                subs.remove(&channel);
            }
        }
    }

    fn is_local_only(&self, opts: &BroadcastOptions) -> bool {
        opts.is_local(self.local.server_id())
    }

    /// Publishes a request that gets no answer (join, leave, disconnect).
    fn publish_request(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send + 'static {
        let queued = self
            .cluster
            .inner
            .wire
            .request(self.local.path(), request)
            .map(|m| {
                m.map(|(channel, payload)| self.cluster.inner.publisher.enqueue(channel, payload))
            });
        async move {
            match queued? {
                Some(fut) => fut.await,
                None => Ok(()),
            }
        }
    }

    /// Publishes a response to node `to`'s request: on the shared response channel in
    /// classic mode (as Node does unless `publishOnSpecificResponseChannel` is set), on
    /// the requester's channel in sharded mode.
    fn respond(&self, to: Option<&str>, response: Response) {
        match self
            .cluster
            .inner
            .wire
            .response(self.local.path(), to, response)
        {
            Ok(Some((channel, payload))) => {
                let fut = self.cluster.inner.publisher.enqueue(channel, payload);
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        debug!(error = %e, "response not sent");
                    }
                });
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "response not encodable"),
        }
    }

    fn fetched(&self, data: &RemoteSocketData) -> FetchedSocket {
        let provider = crate::cluster::read(&self.cluster.inner.socket_info).clone();
        let info = provider
            .and_then(|p| p(self.local.path(), data.id))
            .unwrap_or_else(|| crate::remote::SocketInfo {
                data: serde_json::Value::Object(Default::default()),
                ..Default::default()
            });
        FetchedSocket {
            id: data.id.to_string(),
            handshake: info.handshake,
            rooms: self
                .local
                .socket_rooms(data.id)
                .into_iter()
                .map(|r| r.to_string())
                .collect(),
            data: info.data,
        }
    }

    fn handle_request(self: Arc<Self>, request: Request) {
        let own = request.uid() == Some(self.cluster.uid());
        let from = request.uid().map(str::to_string);
        let from = from.as_deref();
        match request {
            // Applied locally when sent; our own echo is skipped.
            Request::RemoteJoin(r) if !own => {
                self.local.add_sockets(Self::local_opts(&r.opts), r.rooms);
                if self.cluster.inner.wire.is_sharded() {
                    let this = self.clone();
                    tokio::spawn(async move { this.sync_room_channels().await });
                }
            }
            Request::RemoteLeave(r) if !own => {
                self.local.del_sockets(Self::local_opts(&r.opts), r.rooms);
            }
            Request::RemoteDisconnect(r) if !own => {
                if let Err(e) = self.local.disconnect_socket(Self::local_opts(&r.opts)) {
                    debug!(failed = e.len(), "some sockets could not be disconnected");
                }
            }
            Request::RemoteFetch(r) if !own => {
                let sockets = self.local.fetch_sockets(Self::local_opts(&r.opts));
                self.respond(
                    from,
                    Response::RemoteFetch(FetchResponse {
                        request_id: r.request_id,
                        sockets: sockets.iter().map(|s| self.fetched(s)).collect(),
                    }),
                );
            }
            Request::AllRooms(r) if !own => {
                let rooms = self.local.rooms(Self::local_opts(&RequestOpts::default()));
                self.respond(
                    from,
                    Response::AllRooms(protocol::AllRoomsResponse {
                        request_id: r.request_id,
                        rooms: rooms.into_iter().map(|r| r.to_string()).collect(),
                    }),
                );
            }
            Request::Sockets(r) if !own => {
                let opts = Self::local_opts(&RequestOpts {
                    rooms: r.rooms,
                    except: Vec::new(),
                });
                self.respond(
                    from,
                    Response::Sockets(protocol::SocketsResponse {
                        request_id: r.request_id,
                        sockets: self
                            .local
                            .sockets(opts)
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    }),
                );
            }
            Request::ServerSideEmit(r) if !own => {
                self.cluster.dispatch_server_side(self.local.path(), r);
            }
            Request::Broadcast(r) if !own => self.answer_broadcast_with_ack(r),
            _ => {}
        }
    }

    /// Delivers another node's broadcast-with-ack here and reports back: how many
    /// clients got it, then each client's acknowledgement.
    fn answer_broadcast_with_ack(self: Arc<Self>, request: protocol::BroadcastRequest) {
        let message = BroadcastMessage::new(String::new(), request.packet, request.opts);
        let (packet, opts) =
            match convert::from_wire(&self.local.parser(), self.local.path(), &message) {
                Ok(p) => p,
                Err(e) => {
                    Stats::add(&self.stats().malformed, 1);
                    warn!(error = %e, "broadcast-with-ack request dropped");
                    return;
                }
            };
        let timeout = message.opts.flags.timeout.map(Duration::from_millis);
        let (stream, count) = self.local.broadcast_with_ack(packet, opts, timeout);
        let request_id = request.request_id;
        let from = request.uid;
        self.respond(
            from.as_deref(),
            Response::BroadcastClientCount(BroadcastClientCountResponse {
                request_id: request_id.clone(),
                client_count: u64::from(count),
            }),
        );
        if count == 0 {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let cluster = &this.cluster;
            use futures_util::StreamExt;
            let mut stream = std::pin::pin!(stream);
            while let Some((_sid, result)) = stream.next().await {
                let Ok(mut value) = result else { continue };
                let first: Option<crate::rmpv::Value> =
                    this.local.parser().decode_value(&mut value, false).ok();
                let response = Response::BroadcastAck(BroadcastAckResponse {
                    request_id: request_id.clone(),
                    packet: first,
                });
                let encoded =
                    cluster
                        .inner
                        .wire
                        .response(this.local.path(), from.as_deref(), response);
                if let Ok(Some((channel, payload))) = encoded
                    && let Err(e) = cluster.inner.publisher.enqueue(channel, payload).await
                {
                    debug!(error = %e, "broadcast ack not sent");
                }
            }
        });
    }
}

impl<E: SocketEmitter> CoreAdapter<E> for RedisAdapter<E> {
    type Error = AdapterError;
    type State = RedisCluster;
    type AckStream = AckStream<E>;
    type InitRes = InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let channels = Channels::new(state.prefix().to_string(), local.path().to_string());
        Self {
            local,
            cluster: state.clone(),
            channels,
            me: std::sync::OnceLock::new(),
            room_subs: Default::default(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        let _ = self.me.set(Arc::downgrade(&self));
        InitRes(Box::pin(async move {
            let nsp = self.local.path().to_string();
            self.cluster.register(&nsp, self.clone());
            let sub = &self.cluster.inner.subscriber;
            if self.cluster.inner.wire.is_sharded() {
                crate::cluster::per_slot(self.sharded_channels(), |c| sub.ssubscribe(c)).await?;
            } else {
                sub.psubscribe(self.channels.broadcast_pattern()).await?;
                sub.subscribe(self.classic_channels()).await?;
            }
            debug!(nsp, "namespace subscribed");
            on_success();
            Ok(())
        }))
    }

    fn close(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let nsp = self.local.path().to_string();
        self.cluster.unregister(&nsp);
        let sub = self.cluster.inner.subscriber.clone();
        let sharded = self.cluster.inner.wire.is_sharded();
        let pattern = self.channels.broadcast_pattern();
        let mut channels = if sharded {
            self.sharded_channels()
        } else {
            self.classic_channels()
        };
        if sharded {
            channels.extend(
                self.room_subs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain(),
            );
        }
        async move {
            if sharded {
                crate::cluster::per_slot(channels, |c| sub.sunsubscribe(c)).await?;
            } else {
                sub.punsubscribe(pattern).await?;
                sub.unsubscribe(channels).await?;
            }
            Ok(())
        }
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
    /// call order (one ordered publish queue per node); the returned future completes once queued.
    fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> impl Future<Output = Result<(), BroadcastError>> + Send {
        let uid = self.local.server_id();
        if opts.is_local(uid) || !is_event(&packet) {
            self.deliver_locally(packet, opts);
            return futures_util::future::ready(Ok(())).left_future();
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
                self.cluster
                    .inner
                    .wire
                    .broadcast(self.local.path(), &message)
                    .map_err(|e| BroadcastError::Adapter(e.into()))
            })
            .map(|(channel, payload)| {
                let publisher = &self.cluster.inner.publisher;
                if opts.has_flag(BroadcastFlags::Volatile) {
                    publisher.enqueue_volatile(channel, payload);
                    None
                } else {
                    Some(publisher.enqueue(channel, payload))
                }
            });
        self.deliver_locally(packet, opts);
        match queued {
            Ok(Some(queued)) => queued
                .map(|r| r.map_err(|e| BroadcastError::Adapter(e.into())))
                .right_future(),
            Ok(None) => futures_util::future::ready(Ok(())).left_future(),
            Err(e) => futures_util::future::ready(Err(e)).left_future(),
        }
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
                    let id = RedisCluster::request_id();
                    let request = Request::Broadcast(protocol::BroadcastRequest {
                        uid: Some(self.cluster.uid().to_string()),
                        request_id: id.clone(),
                        packet: wire.packet,
                        opts: wire.opts,
                    });
                    // Registered before publishing, so no early answer is missed.
                    let (guard, rx) = self
                        .cluster
                        .inner
                        .pending
                        .register_stream(id, protocol::RequestType::Broadcast);
                    let queued = self
                        .cluster
                        .inner
                        .wire
                        .request(self.local.path(), request)
                        .map(|m| {
                            m.map(|(channel, payload)| {
                                self.cluster.inner.publisher.enqueue(channel, payload)
                            })
                        });
                    (me, guard, rx, queued)
                })
                .ok(),
            _ => None,
        };
        let (local, _count) = self.local.broadcast_with_ack(packet, opts, Some(timeout));
        let cluster = self.cluster.clone();
        let nsp = self.local.path().to_string();
        async move {
            let Some((adapter, guard, rx, queued)) = remote else {
                return Ok(AckStream::new(local, None));
            };
            if let Some(queued) = queued? {
                queued.await?;
            }
            let nodes = cluster.node_count(&nsp).await?.saturating_sub(1);
            Ok(AckStream::new(
                local,
                Some(RemoteAcks {
                    adapter,
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
        let me = self.me.get().and_then(std::sync::Weak::upgrade);
        async move {
            if let Some(me) = me {
                me.sync_room_channels().await;
            }
            match wire {
                Some(fut) => fut.await,
                None => Ok(()),
            }
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
        async move {
            match wire {
                Some(fut) => fut.await,
                None => Ok(()),
            }
        }
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
        async move {
            if let Some(fut) = wire {
                fut.await.map_err(|e| BroadcastError::Adapter(e.into()))?;
            }
            local.map_err(BroadcastError::Socket)
        }
    }

    fn rooms(
        &self,
        opts: BroadcastOptions,
    ) -> impl Future<Output = Result<Vec<Room>, Self::Error>> + Send {
        let local: std::collections::HashSet<Room> = self.local.rooms(opts.clone());
        let only_local = opts.has_flag(BroadcastFlags::Local);
        let cluster = self.cluster.clone();
        let nsp_name = self.local.path().to_string();
        let timeout = cluster.inner.config.request_timeout;
        async move {
            let mut all = local;
            if !only_local {
                let request = Request::AllRooms(AllRoomsRequest {
                    uid: Some(cluster.uid().to_string()),
                    request_id: RedisCluster::request_id(),
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
                request_id: RedisCluster::request_id(),
                opts: self.request_opts(&opts),
            })
        });
        let cluster = self.cluster.clone();
        let nsp_name = self.local.path().to_string();
        let nsp = self.local.path().clone();
        async move {
            if let Some(request) = remote {
                let timeout = cluster.inner.config.request_timeout;
                for response in cluster.request(&nsp_name, request, timeout).await? {
                    let Response::RemoteFetch(r) = response else {
                        continue;
                    };
                    for s in r.sockets {
                        sockets.push(RemoteSocketData {
                            id: cluster.inner.ids.to_sid(&s.id),
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

impl<E: SocketEmitter> NamespaceSink for RedisAdapter<E> {
    fn on_broadcast(&self, room: Option<&str>, payload: &[u8]) {
        if let Some(room) = room {
            let mut probe = BroadcastOptions::default();
            probe.rooms.push(Room::Owned(room.to_string()));
            if self.local.sockets(probe).is_empty() {
                return; // nobody here is in that room: skip decoding
            }
        }
        let message = match BroadcastMessage::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                Stats::add(&self.stats().malformed, 1);
                warn!(nsp = %self.local.path(), error = %e, "malformed broadcast dropped");
                return;
            }
        };
        if message.uid == self.cluster.uid() {
            return; // our own, already delivered locally
        }
        match convert::from_wire(&self.local.parser(), self.local.path(), &message) {
            Ok((packet, opts)) => self.deliver_locally(packet, opts),
            Err(e) => {
                Stats::add(&self.stats().malformed, 1);
                warn!(nsp = %self.local.path(), from = %message.uid, error = %e, "broadcast with undeliverable data dropped");
            }
        }
    }

    fn on_broadcast_message(&self, room: Option<&str>, message: BroadcastMessage) {
        let _ = room; // a room channel only carries broadcasts to that room
        match convert::from_wire(&self.local.parser(), self.local.path(), &message) {
            Ok((packet, opts)) => self.deliver_locally(packet, opts),
            Err(e) => {
                Stats::add(&self.stats().malformed, 1);
                warn!(nsp = %self.local.path(), from = %message.uid, error = %e, "broadcast with undeliverable data dropped");
            }
        }
    }

    fn on_request_message(self: Arc<Self>, request: Request) {
        self.handle_request(request);
    }

    fn sync_rooms(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move { self.sync_room_channels().await })
    }

    fn on_request(self: Arc<Self>, payload: &[u8]) {
        match Request::decode(payload) {
            Ok(request) => self.handle_request(request),
            Err(e) => {
                Stats::add(&self.stats().malformed, 1);
                warn!(nsp = %self.local.path(), error = %e, "malformed request dropped");
            }
        }
    }
}

/// Whether a socketioxide packet is an event this adapter sends to other nodes.
pub(crate) fn is_event(packet: &Packet) -> bool {
    matches!(
        packet.inner,
        PacketData::Event(_, None) | PacketData::BinaryEvent(_, None)
    )
}

//! [`RedisAdapter`]: the socketioxide adapter of one namespace.
//!
//! What works across nodes today: broadcasts in both directions with Node.js peers
//! (rooms, except, volatile, binary), `server_count`. Cluster requests (fetch sockets,
//! remote join/leave/disconnect, rooms, server-side emit, broadcast with acks) answer
//! for the local node only until the request/response layer lands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fred::interfaces::PubsubInterface;
use fred::types::Value as RedisValue;
use futures_util::FutureExt;
use socketioxide_core::adapter::errors::BroadcastError;
use socketioxide_core::adapter::{
    BroadcastFlags, BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, Room,
    SocketEmitter, Spawnable,
};
use socketioxide_core::packet::{Packet, PacketData};
use tracing::{debug, warn};

use crate::AdapterError;
use crate::cluster::{NamespaceSink, RedisCluster, Stats};
use crate::convert;
use crate::protocol::{self, BroadcastMessage, Channels, Layout};

/// A socketioxide adapter that shares a namespace with every node on the same Redis,
/// speaking the `@socket.io/redis-adapter` protocol. Plug it in with
/// `SocketIo::builder().with_adapter::<RedisAdapter<_>>(cluster)`; its state is a
/// [`RedisCluster`].
pub struct RedisAdapter<E> {
    local: CoreLocalAdapter<E>,
    cluster: RedisCluster,
    channels: Channels,
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

impl<E: SocketEmitter> CoreAdapter<E> for RedisAdapter<E> {
    type Error = AdapterError;
    type State = RedisCluster;
    type AckStream = E::AckStream;
    type InitRes = InitRes;

    fn new(state: &Self::State, local: CoreLocalAdapter<E>) -> Self {
        let channels = Channels::new(state.prefix().to_string(), local.path().to_string());
        Self {
            local,
            cluster: state.clone(),
            channels,
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        InitRes(Box::pin(async move {
            let nsp = self.local.path().to_string();
            self.cluster.register(&nsp, self.clone());
            let sub = &self.cluster.inner.subscriber;
            sub.psubscribe(self.channels.broadcast_pattern()).await?;
            sub.subscribe(vec![
                self.channels.request().to_string(),
                self.channels.response().to_string(),
                self.channels.specific_response(self.cluster.uid()),
            ])
            .await?;
            debug!(nsp, "namespace subscribed");
            on_success();
            Ok(())
        }))
    }

    fn close(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let nsp = self.local.path().to_string();
        self.cluster.unregister(&nsp);
        let sub = self.cluster.inner.subscriber.clone();
        let pattern = self.channels.broadcast_pattern();
        let channels = vec![
            self.channels.request().to_string(),
            self.channels.response().to_string(),
            self.channels.specific_response(self.cluster.uid()),
        ];
        async move {
            sub.punsubscribe(pattern).await?;
            sub.unsubscribe(channels).await?;
            Ok(())
        }
    }

    fn server_count(&self) -> impl Future<Output = Result<u16, Self::Error>> + Send {
        let client = self.cluster.client().clone();
        let channel = self.channels.request().to_string();
        async move {
            let reply: Vec<RedisValue> = client.pubsub_numsub(channel).await?;
            let count = reply.get(1).and_then(|v| v.as_u64()).unwrap_or(0);
            Ok(u16::try_from(count).unwrap_or(u16::MAX))
        }
    }

    /// Delivers to local sockets at once and queues the message for the other nodes in
    /// call order (see [`crate::publisher`]); the returned future completes once queued.
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
        let remote = convert::to_wire(&self.local.parser(), &packet, &opts);
        self.deliver_locally(packet, opts.clone());
        let message = match remote {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "broadcast not sent to other nodes: cannot encode it");
                return futures_util::future::ready(Err(BroadcastError::Adapter(e.into())))
                    .left_future();
            }
        };
        let message = BroadcastMessage::new(self.cluster.uid(), message.packet, message.opts);
        let channel = self.channels.for_rooms(&message.opts.rooms);
        let payload = match message.encode(Layout::Adapter) {
            Ok(p) => p,
            Err(e) => {
                return futures_util::future::ready(Err(BroadcastError::Adapter(
                    AdapterError::from(e).into(),
                )))
                .left_future();
            }
        };
        if opts.has_flag(BroadcastFlags::Volatile) {
            self.cluster
                .inner
                .publisher
                .enqueue_volatile(channel, payload);
            return futures_util::future::ready(Ok(())).left_future();
        }
        self.cluster
            .inner
            .publisher
            .enqueue(channel, payload)
            .map(|r| r.map_err(|e| BroadcastError::Adapter(e.into())))
            .right_future()
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Self::AckStream, Self::Error>> + Send {
        // Local only until cluster requests (BROADCAST / CLIENT_COUNT / ACK) land.
        let (stream, _count) = self.local.broadcast_with_ack(packet, opts, timeout);
        futures_util::future::ready(Ok(stream))
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

    fn on_request(&self, payload: &[u8]) {
        match protocol::Request::decode(payload) {
            Ok(req) => {
                debug!(nsp = %self.local.path(), kind = ?req.request_type(), "cluster request not handled yet")
            }
            Err(e) => {
                Stats::add(&self.stats().malformed, 1);
                debug!(nsp = %self.local.path(), error = %e, "malformed request dropped");
            }
        }
    }

    fn on_response(&self, _payload: &[u8]) {
        // No request of ours is pending until cluster requests land.
    }
}

/// Whether a socketioxide packet is an event this adapter sends to other nodes.
pub(crate) fn is_event(packet: &Packet) -> bool {
    matches!(
        packet.inner,
        PacketData::Event(_, None) | PacketData::BinaryEvent(_, None)
    )
}

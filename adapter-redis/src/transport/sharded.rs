//! Sharded mode, as `createShardedAdapter` of `@socket.io/redis-adapter` (Redis 7):
//! `SPUBLISH`/`SSUBSCRIBE` of `{type, data, uid, nsp}` messages on a namespace's main
//! channel, each node's response channel and, in the dynamic subscription modes, one
//! channel per room; `PUBSUB SHARDNUMSUB` to count nodes.
//!
//! Every message is decoded here, once: its type says whether it is a broadcast, a
//! request or a response.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::PubsubInterface;
use tracing::{debug, warn};

use super::link::Link;
use super::publisher::Command;
use super::{BoxFuture, Inbound, InboundResponse, Payload, Receiver, Transport};
use crate::AdapterError;
use crate::config::RedisAdapterConfig;
use crate::protocol::sharded::{
    ShardedChannel, ShardedChannels, ShardedMessage, SubscriptionMode, parse_sharded_channel,
};
use crate::protocol::{BroadcastMessage, Request, Response};
use crate::stats::Stats;
use crate::wire::{AdapterMode, Incoming, Wire};

/// The sharded-mode transport.
pub(crate) struct Sharded {
    link: Link,
    prefix: String,
    uid: String,
    mode: SubscriptionMode,
    wire: Wire,
    /// Per namespace: the room channels subscribed to.
    room_subs: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

impl Sharded {
    /// Connects for node `uid`, with the subscription mode `mode`.
    pub(crate) async fn connect(
        url: &str,
        config: &RedisAdapterConfig,
        uid: &str,
        stats: Arc<Stats>,
        mode: SubscriptionMode,
    ) -> Result<Self, AdapterError> {
        let link = Link::connect(url, config, uid, stats, Command::SPublish).await?;
        Ok(Self {
            link,
            prefix: config.prefix.clone(),
            uid: uid.to_string(),
            mode,
            wire: Wire::new(AdapterMode::Sharded(mode), config.prefix.clone(), uid),
            room_subs: Default::default(),
        })
    }

    fn channels(&self, nsp: &str) -> ShardedChannels {
        ShardedChannels::new(self.prefix.clone(), nsp.to_string())
    }

    /// The main channel of `nsp` and this node's response channel.
    fn namespace_channels(&self, nsp: &str) -> Vec<String> {
        let channels = self.channels(nsp);
        vec![channels.main().to_string(), channels.response(&self.uid)]
    }

    fn room_subs(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.room_subs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Transport for Sharded {
    fn start(&self, receiver: Arc<dyn Receiver>) -> Vec<tokio::task::JoinHandle<()>> {
        let (prefix, uid, stats) = (
            self.prefix.clone(),
            self.uid.clone(),
            self.link.stats.clone(),
        );
        let mut tasks = self
            .link
            .spawn_receiving(receiver.clone(), move |channel, payload| {
                route(&prefix, &uid, &stats, receiver.as_ref(), channel, payload)
            });
        tasks.push(self.link.subscribe_liveness(true));
        tasks
    }

    fn join_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        let subscriber = self.link.subscriber.clone();
        let channels = self.namespace_channels(nsp);
        Box::pin(async move { per_slot(channels, |c| subscriber.ssubscribe(c)).await })
    }

    fn leave_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        let subscriber = self.link.subscriber.clone();
        let mut channels = self.namespace_channels(nsp);
        channels.extend(self.room_subs().remove(nsp).unwrap_or_default());
        Box::pin(async move { per_slot(channels, |c| subscriber.sunsubscribe(c)).await })
    }

    fn follows_rooms(&self) -> bool {
        true
    }

    /// Subscribes to the channel of every local room that publishers send to its own
    /// channel, and unsubscribes from rooms gone empty.
    fn sync_rooms(&self, nsp: &str, rooms: Vec<String>) -> BoxFuture<'static, ()> {
        let channels = self.channels(nsp);
        let wanted: HashSet<String> = rooms
            .into_iter()
            .filter(|room| self.mode.publishes_on_room_channel(room))
            .map(|room| channels.room(&room))
            .collect();
        let (add, remove): (Vec<String>, Vec<String>) = {
            let subs = self.room_subs();
            let subs = subs.get(nsp);
            let subs = subs.cloned().unwrap_or_default();
            (
                wanted.difference(&subs).cloned().collect(),
                subs.difference(&wanted).cloned().collect(),
            )
        };
        let subscriber = self.link.subscriber.clone();
        let room_subs = self.room_subs.clone();
        let nsp = nsp.to_string();
        Box::pin(async move {
            let lock = || room_subs.lock().unwrap_or_else(|e| e.into_inner());
            if !add.is_empty() {
                match per_slot(add.clone(), |c| subscriber.ssubscribe(c)).await {
                    Ok(()) => lock().entry(nsp.clone()).or_default().extend(add),
                    Err(e) => warn!(error = %e, "cannot subscribe to room channels"),
                }
            }
            if !remove.is_empty() {
                if let Err(e) = per_slot(remove.clone(), |c| subscriber.sunsubscribe(c)).await {
                    warn!(error = %e, "cannot unsubscribe from room channels");
                }
                if let Some(subs) = lock().get_mut(&nsp) {
                    for channel in remove {
                        subs.remove(&channel);
                    }
                }
            }
        })
    }

    fn broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
        volatile: bool,
    ) -> Result<(), AdapterError> {
        self.link.broadcast(&self.wire, nsp, message, volatile)
    }

    fn request(&self, nsp: &str, request: Request) -> Result<bool, AdapterError> {
        self.link.request(&self.wire, nsp, request)
    }

    fn respond(&self, nsp: &str, to: Option<&str>, response: Response) -> Result<(), AdapterError> {
        self.link.respond(&self.wire, nsp, to, response)
    }

    fn node_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        self.link
            .subscribers(self.channels(nsp).main().to_string(), true)
    }

    fn probe(&self) -> BoxFuture<'static, ()> {
        self.link.probe(true)
    }

    fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    fn client(&self) -> &Client {
        &self.link.client
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.link.close(timeout))
    }
}

/// Decodes a message once and hands it to the receiver as what its type says it is.
fn route(
    prefix: &str,
    uid: &str,
    stats: &Stats,
    receiver: &dyn Receiver,
    channel: &str,
    payload: &[u8],
) {
    let target = match parse_sharded_channel(prefix, channel, uid) {
        Ok(t) => t,
        Err(e) => {
            debug!(channel, error = %e, "message on a foreign channel ignored");
            return;
        }
    };
    let message = match ShardedMessage::decode(payload) {
        Ok(m) => m,
        Err(e) => {
            Stats::add(&stats.malformed, 1);
            warn!(channel, error = %e, "malformed sharded message dropped");
            return;
        }
    };
    if message.uid == uid {
        return; // our own: applied locally when sent
    }
    let room = match target {
        ShardedChannel::Room { room, .. } => Some(room),
        _ => None,
    };
    let nsp = message.nsp.clone();
    match crate::wire::incoming(message) {
        Some(Incoming::Broadcast(message)) => receiver.on_message(
            &nsp,
            Inbound::Broadcast {
                room,
                message: Payload::Decoded(message),
                offset: None,
            },
        ),
        Some(Incoming::Request(request)) => {
            receiver.on_message(&nsp, Inbound::Request(Payload::Decoded(request)))
        }
        Some(Incoming::Response(response)) => {
            receiver.on_response(InboundResponse::Typed(response))
        }
        None => {} // heartbeats, adapter close
    }
}

/// Runs a sharded pub/sub `command` (`SSUBSCRIBE`, `SUNSUBSCRIBE`) for `channels`. On
/// Redis Cluster one such command may only name channels of a single hash slot (else
/// `CROSSSLOT`), so it is sent once per slot, all together; on a single Redis the grouping
/// changes nothing but the batching.
async fn per_slot<F, Fut>(channels: Vec<String>, command: F) -> Result<(), AdapterError>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<(), fred::error::Error>>,
{
    futures_util::future::try_join_all(by_slot(channels).into_iter().map(command)).await?;
    Ok(())
}

/// `channels` grouped by Redis Cluster hash slot.
fn by_slot(channels: Vec<String>) -> Vec<Vec<String>> {
    let mut groups: std::collections::BTreeMap<u16, Vec<String>> = Default::default();
    for channel in channels {
        groups
            .entry(fred::util::redis_keyslot(channel.as_bytes()))
            .or_default()
            .push(channel);
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn channels_are_grouped_by_hash_slot() {
        // the `{a}` hash tag puts the first and third in one slot; `b` hashes elsewhere
        let groups = super::by_slot(vec!["{a}x".into(), "b".into(), "{a}y".into()]);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert!(groups.contains(&vec!["{a}x".to_string(), "{a}y".to_string()]));
        assert!(groups.contains(&vec!["b".to_string()]));
    }
}

//! The fred connections every Redis mode uses: a command client, a subscriber client,
//! the ordered publisher on the command client, the receive pump, and the liveness
//! channel.

use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Builder;
use fred::types::Value as RedisValue;
use fred::types::config::ReconnectPolicy;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::publisher::{Command, Publisher};
use super::{BoxFuture, Receiver};
use crate::AdapterError;
use crate::config::RedisAdapterConfig;
use crate::protocol::{BroadcastMessage, Request, Response};
use crate::stats::Stats;
use crate::wire::{Outgoing, Wire};

/// A node's two Redis connections and what runs on them.
pub(crate) struct Link {
    /// Commands and publishing.
    pub(crate) client: Client,
    /// Subscriptions; fred restores them after a reconnect.
    pub(crate) subscriber: SubscriberClient,
    /// The one ordered outgoing queue.
    pub(crate) publisher: Publisher,
    /// The counters.
    pub(crate) stats: Arc<Stats>,
    /// The channel this node sends itself liveness probes on.
    pub(crate) liveness_channel: String,
    /// Pub/sub messages buffered between the connection and the receiver.
    subscriber_buffer: usize,
    /// Sentinel failover watchers.
    watchers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Other clients of this node that move to a new master with the link's.
    followers: Arc<std::sync::Mutex<Vec<Client>>>,
}

impl Link {
    /// Connects both clients to `url` (fails if Redis cannot be reached now; once
    /// connected they reconnect on their own) and starts the publisher, which sends with
    /// `command`.
    pub(crate) async fn connect(
        url: &str,
        config: &RedisAdapterConfig,
        uid: &str,
        stats: Arc<Stats>,
        command: Command,
    ) -> Result<Self, AdapterError> {
        let mut redis_config =
            crate::redis_url::config_from_url(url).map_err(AdapterError::config)?;
        if let Some(ca) = &config.tls_ca_file {
            crate::tls::trust_ca_file(&mut redis_config, ca)
                .map_err(|e| AdapterError::Config(e.to_string()))?;
        }
        let mut builder = Builder::from_config(redis_config.clone());
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(5);
                c.internal_command_timeout = Duration::from_secs(5);
            });
        // fred gives every client nine notification channels of this capacity, allocated
        // up front: only the subscriber's message channel needs a deep one.
        builder
            .with_performance_config(|p| p.broadcast_channel_capacity = CONTROL_CHANNEL_CAPACITY);
        let client = builder.build().map_err(AdapterError::config)?;
        builder.with_performance_config(|p| {
            p.broadcast_channel_capacity =
                config.subscriber_buffer.min(SUBSCRIBER_CHANNEL_CAPACITY);
        });
        let subscriber = builder
            .build_subscriber_client()
            .map_err(AdapterError::config)?;
        client.init().await?;
        subscriber.init().await?;
        let followers: Arc<std::sync::Mutex<Vec<Client>>> = Arc::default();
        let watchers = super::sentinel::watch_failovers(&redis_config, {
            let (client, subscriber) = (client.clone(), subscriber.clone());
            let followers = followers.clone();
            move || {
                let (client, subscriber) = (client.clone(), subscriber.clone());
                let others = followers.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move {
                    if let Err(e) = client.force_reconnection().await {
                        warn!(error = %e, "cannot reconnect to the new master");
                    }
                    if let Err(e) = subscriber.force_reconnection().await {
                        warn!(error = %e, "cannot reconnect the subscriber to the new master");
                    }
                    for other in others {
                        if let Err(e) = other.force_reconnection().await {
                            warn!(error = %e, "cannot reconnect a stream reader to the new master");
                        }
                    }
                }
            }
        });
        info!(uid, prefix = %config.prefix, "connected to Redis");
        let publisher =
            Publisher::spawn(client.clone(), config.publish_queue, stats.clone(), command);
        Ok(Self {
            client,
            subscriber,
            publisher,
            stats,
            liveness_channel: format!("{}-liveness#{}#", config.prefix, uid),
            subscriber_buffer: config.subscriber_buffer,
            watchers: std::sync::Mutex::new(watchers),
            followers,
        })
    }

    /// Starts receiving: liveness probes go to `receiver`, every other message with a
    /// byte payload to `on_message(channel, payload)`. Returns the tasks.
    pub(crate) fn spawn_receiving<F>(
        &self,
        receiver: Arc<dyn Receiver>,
        mut on_message: F,
    ) -> Vec<JoinHandle<()>>
    where
        F: FnMut(&str, &[u8]) + Send + 'static,
    {
        let (tx, mut queue) = tokio::sync::mpsc::channel(self.subscriber_buffer.max(1));
        let pump = tokio::spawn(pump_messages(
            self.subscriber.message_rx(),
            tx,
            self.stats.clone(),
        ));
        let liveness = self.liveness_channel.clone();
        let stats = self.stats.clone();
        let dispatch = tokio::spawn(async move {
            // the pump ends with its dispatcher
            let _pump = tokio_util::task::AbortOnDropHandle::new(pump);
            while let Some(message) = queue.recv().await {
                let channel: &str = &message.channel;
                if channel == liveness {
                    receiver.on_alive();
                    continue;
                }
                let Some(payload) = message.value.as_bytes() else {
                    Stats::add(&stats.malformed, 1);
                    debug!(channel, "pub/sub message without a byte payload");
                    continue;
                };
                on_message(channel, payload);
            }
        });
        vec![self.subscriber.manage_subscriptions(), dispatch]
    }

    /// Queues `outgoing` in call order: a publish, or an entry for a stream. A volatile
    /// message is dropped, and counted, when the queue is full.
    pub(crate) fn send(&self, outgoing: Outgoing, volatile: bool) -> Result<(), AdapterError> {
        match outgoing {
            Outgoing::Publish { channel, payload } if volatile => {
                self.publisher.enqueue_volatile(channel, payload);
                Ok(())
            }
            Outgoing::Publish { channel, payload } => self.publisher.enqueue(channel, payload),
            Outgoing::Append {
                stream,
                max_len,
                fields,
            } => self.publisher.enqueue_append(stream, max_len, fields),
        }
    }

    /// Encodes and queues a broadcast (without acks) with `wire`.
    pub(crate) fn broadcast(
        &self,
        wire: &Wire,
        nsp: &str,
        message: &BroadcastMessage,
        volatile: bool,
    ) -> Result<(), AdapterError> {
        self.send(wire.broadcast(nsp, message)?, volatile)
    }

    /// Encodes and queues a request with `wire`; `Ok(false)` when the mode has none such.
    pub(crate) fn request(
        &self,
        wire: &Wire,
        nsp: &str,
        request: Request,
    ) -> Result<bool, AdapterError> {
        match wire.request(nsp, request)? {
            Some(outgoing) => self.send(outgoing, false).map(|()| true),
            None => Ok(false),
        }
    }

    /// Encodes and queues the answer to node `to`'s request with `wire`.
    pub(crate) fn respond(
        &self,
        wire: &Wire,
        nsp: &str,
        to: Option<&str>,
        response: Response,
    ) -> Result<(), AdapterError> {
        match wire.response(nsp, to, response)? {
            Some(outgoing) => self.send(outgoing, false),
            None => Ok(()),
        }
    }

    /// How many clients are subscribed to `channel` (`PUBSUB NUMSUB`, or `PUBSUB
    /// SHARDNUMSUB` for sharded pub/sub): the node count of the modes.
    pub(crate) fn subscribers(
        &self,
        channel: String,
        sharded: bool,
    ) -> BoxFuture<'static, Result<usize, AdapterError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let reply: Vec<RedisValue> = if sharded {
                client.pubsub_shardnumsub(channel).await?
            } else {
                client.pubsub_numsub(channel).await?
            };
            Ok(reply.get(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize)
        })
    }

    /// Sends this node's liveness probe (`PUBLISH`, or `SPUBLISH` for sharded pub/sub).
    pub(crate) fn probe(&self, sharded: bool) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        let channel = self.liveness_channel.clone();
        Box::pin(async move {
            let res: Result<i64, _> = if sharded {
                client.spublish(channel, "1").await
            } else {
                client.publish(channel, "1").await
            };
            if let Err(e) = res {
                debug!(error = %e, "liveness publish failed");
            }
        })
    }

    /// Subscribes to the liveness channel with a pattern matching only it (classic
    /// pub/sub: after a reconnect the round trip then succeeds only once every pattern is
    /// subscribed again, as they are restored in one `PSUBSCRIBE`), or with `SSUBSCRIBE`.
    pub(crate) fn subscribe_liveness(&self, sharded: bool) -> JoinHandle<()> {
        let subscriber = self.subscriber.clone();
        let channel = self.liveness_channel.clone();
        tokio::spawn(async move {
            let res = if sharded {
                subscriber.ssubscribe(channel).await
            } else {
                subscriber.psubscribe(glob_escape(&channel)).await
            };
            if let Err(e) = res {
                warn!(error = %e, "cannot subscribe to the liveness channel");
            }
        })
    }

    /// Makes `client` (a connection of the transport's own, e.g. a stream reader) move to
    /// the new master at once after a Sentinel failover, as the link's clients do.
    pub(crate) fn follow_failovers(&self, client: Client) {
        self.followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client);
    }

    /// Whether both clients are connected.
    pub(crate) fn is_connected(&self) -> bool {
        self.client.is_connected() && self.subscriber.is_connected()
    }

    /// Sends what is queued (at most `timeout`), stops the failover watchers, and closes
    /// both connections.
    pub(crate) async fn close(&self, timeout: Duration) {
        self.publisher.flush(timeout).await;
        let watchers: Vec<_> = self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for watcher in watchers {
            watcher.abort();
        }
        let _ = self.subscriber.quit().await;
        let _ = self.client.quit().await;
    }
}

/// Moves pub/sub messages from fred's fixed channel into the dispatcher's queue, which
/// grows only as far as the dispatcher falls behind. A lagging receiver is counted and
/// logged, never the end of the loop.
async fn pump_messages(
    mut rx: tokio::sync::broadcast::Receiver<fred::types::Message>,
    tx: tokio::sync::mpsc::Sender<fred::types::Message>,
    stats: Arc<Stats>,
) {
    loop {
        match rx.recv().await {
            Ok(m) => {
                if tx.send(m).await.is_err() {
                    return; // the dispatcher stopped
                }
            }
            Err(RecvError::Lagged(n)) => {
                Stats::add(&stats.lagged, n);
                warn!(
                    lost = n,
                    "pub/sub receiver lagged: messages lost (raise subscriber_buffer)"
                );
            }
            Err(RecvError::Closed) => {
                debug!("pub/sub message stream closed");
                return;
            }
        }
    }
}

/// Notification channel capacity of the command client (errors, reconnects: a few).
const CONTROL_CHANNEL_CAPACITY: usize = 32;

/// Capacity of fred's (preallocated, ~80 bytes a slot, nine channels) notification
/// channels on the subscriber; a pump moves messages on at once into the dispatcher's
/// queue of `subscriber_buffer` messages, which allocates only as it fills.
const SUBSCRIBER_CHANNEL_CAPACITY: usize = 8192;

/// `text` as a Redis glob pattern matching only itself.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

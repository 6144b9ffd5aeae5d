//! The connection to the cluster that every namespace adapter of a node shares: the
//! Redis clients, the ordered publisher, the subscription dispatcher, liveness and
//! counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Builder;
use fred::types::config::ReconnectPolicy;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::AdapterError;
use crate::config::RedisAdapterConfig;
use crate::protocol::{Channel, parse_channel};
use crate::publisher::Publisher;
use crate::remote::{IdMap, ServerSideHandler, SocketInfoProvider};
use crate::requests::{Pending, ResponseOutcome};
use crate::wire::{Incoming, Wire};

/// What a namespace adapter does with the messages of its channels.
pub(crate) trait NamespaceSink: Send + Sync {
    /// A message on `<prefix>#<nsp>#` (room `None`) or `<prefix>#<nsp>#<room>#`.
    fn on_broadcast(&self, room: Option<&str>, payload: &[u8]);
    /// A message on the request channel.
    fn on_request(self: Arc<Self>, payload: &[u8]);
    /// A decoded broadcast (sharded mode).
    fn on_broadcast_message(&self, room: Option<&str>, message: crate::protocol::BroadcastMessage);
    /// A decoded request (sharded mode).
    fn on_request_message(self: Arc<Self>, request: crate::protocol::Request);
    /// Brings the room-channel subscriptions in line with the local rooms (sharded mode).
    fn sync_rooms(
        self: Arc<Self>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// Counters of everything that can go wrong silently, for metrics and tests.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Broadcast and request messages published.
    pub published: AtomicU64,
    /// Messages that could not be published (Redis error); each one is also logged.
    pub publish_failed: AtomicU64,
    /// Pub/sub messages received for a namespace of this node.
    pub received: AtomicU64,
    /// Pub/sub messages lost because the subscriber buffer overflowed.
    pub lagged: AtomicU64,
    /// Received messages that could not be decoded (logged and dropped).
    pub malformed: AtomicU64,
    /// Deliveries to local sockets that failed because a socket's buffer was full or closed.
    pub local_delivery_failed: AtomicU64,
    /// Volatile broadcasts dropped because the publish queue was full.
    pub volatile_dropped: AtomicU64,
    /// Other messages refused because the publish queue was full.
    pub publish_dropped: AtomicU64,
}

/// A point-in-time copy of the adapter's counters. Every way a message can be lost
/// has its own counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Broadcast and request messages published.
    pub published: u64,
    /// Messages that could not be published (Redis error); each is also logged.
    pub publish_failed: u64,
    /// Pub/sub messages received for a namespace of this node.
    pub received: u64,
    /// Pub/sub messages lost because the subscriber buffer overflowed.
    pub lagged: u64,
    /// Received messages that could not be decoded (logged and dropped).
    pub malformed: u64,
    /// Deliveries to local sockets refused because a socket's buffer was full or closed.
    pub local_delivery_failed: u64,
    /// Volatile broadcasts dropped because the publish queue was full.
    pub volatile_dropped: u64,
    /// Other messages (broadcasts, requests) refused because the publish queue was full.
    pub publish_dropped: u64,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            published: get(&self.published),
            publish_failed: get(&self.publish_failed),
            received: get(&self.received),
            lagged: get(&self.lagged),
            malformed: get(&self.malformed),
            local_delivery_failed: get(&self.local_delivery_failed),
            volatile_dropped: get(&self.volatile_dropped),
            publish_dropped: get(&self.publish_dropped),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) uid: String,
    pub(crate) wire: Wire,
    pub(crate) config: RedisAdapterConfig,
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) publisher: Publisher,
    pub(crate) stats: Arc<Stats>,
    pub(crate) pending: Arc<Pending>,
    pub(crate) ids: IdMap,
    pub(crate) server_side: RwLock<HashMap<String, ServerSideHandler>>,
    pub(crate) socket_info: RwLock<Option<SocketInfoProvider>>,
    namespaces: RwLock<HashMap<String, Arc<dyn NamespaceSink>>>,
    liveness_channel: String,
    started: Instant,
    /// Milliseconds since `started` when our last liveness message came back.
    last_alive_ms: AtomicU64,
    closed: AtomicBool,
    pub(crate) tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// A node's connection to the cluster, shared by all its namespaces: the `State` of
/// [`RedisAdapter`](crate::RedisAdapter). Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), sio_adapter_redis::AdapterError> {
/// use sio_adapter_redis::{RedisAdapter, RedisAdapterConfig, RedisCluster};
/// use socketioxide::SocketIo;
///
/// let cluster = RedisCluster::connect("redis://127.0.0.1:6379", RedisAdapterConfig::default()).await?;
/// let (layer, io) = SocketIo::builder()
///     .with_adapter::<RedisAdapter<_>>(cluster.clone())
///     .build_layer();
/// io.ns("/", async |_: socketioxide::extract::SocketRef<RedisAdapter<_>>| {}).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisCluster {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("uid", &self.inner.uid)
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

impl RedisCluster {
    /// Connects to Redis at `url` (`redis://`, `rediss://`, `redis-sentinel://`,
    /// `redis-cluster://`, read by [`crate::redis_url::config_from_url`]) and starts the
    /// dispatcher, the publisher and the liveness probe. Fails if Redis cannot be reached
    /// now; once connected, it reconnects and resubscribes on its own.
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<Self, AdapterError> {
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
        let cluster = Self::start(client.clone(), subscriber.clone(), config);
        let watchers = crate::sentinel::watch_failovers(&redis_config, move || {
            let (client, subscriber) = (client.clone(), subscriber.clone());
            async move {
                if let Err(e) = client.force_reconnection().await {
                    warn!(error = %e, "cannot reconnect to the new master");
                }
                if let Err(e) = subscriber.force_reconnection().await {
                    warn!(error = %e, "cannot reconnect the subscriber to the new master");
                }
            }
        });
        lock(&cluster.inner.tasks).extend(watchers);
        Ok(cluster)
    }

    fn start(client: Client, subscriber: SubscriberClient, config: RedisAdapterConfig) -> Self {
        let uid = new_uid();
        let stats = Arc::new(Stats::default());
        let wire = Wire::new(config.mode, config.prefix.clone(), uid.clone());
        let publisher = Publisher::spawn(
            client.clone(),
            config.publish_queue,
            stats.clone(),
            wire.is_sharded(),
        );
        let liveness_channel = format!("{}-liveness#{}#", config.prefix, uid);
        let inner = Arc::new(Inner {
            uid,
            wire,
            config,
            client,
            subscriber,
            publisher,
            stats,
            pending: Arc::new(Pending::default()),
            ids: IdMap::default(),
            server_side: RwLock::new(HashMap::new()),
            socket_info: RwLock::new(None),
            namespaces: RwLock::new(HashMap::new()),
            liveness_channel,
            started: Instant::now(),
            last_alive_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        info!(uid = %inner.uid, prefix = %inner.config.prefix, "connected to Redis");
        let mut tasks = vec![
            inner.subscriber.manage_subscriptions(),
            tokio::spawn(dispatch_loop(inner.clone())),
            tokio::spawn(liveness_loop(inner.clone())),
        ];
        if inner.wire.is_sharded() {
            tasks.push(tokio::spawn(room_sync_loop(inner.clone())));
        }
        *lock(&inner.tasks) = tasks;
        Self { inner }
    }

    /// Signals each reconnect of the command client: state this node keeps in Redis
    /// may have to be written again.
    pub fn reconnects(&self) -> Reconnects {
        Reconnects(self.inner.client.reconnect_rx())
    }

    /// This node's id on the wire (the first element of every broadcast it publishes).
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The channel prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.config.prefix
    }

    /// A Redis client for other uses on the same connection (e.g. chat history).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Whether Redis is connected and a message this node published came back through
    /// its own subscription recently (within 3 liveness intervals).
    pub fn is_ready(&self) -> bool {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire)
            || !inner.client.is_connected()
            || !inner.subscriber.is_connected()
        {
            return false;
        }
        let last = inner.last_alive_ms.load(Ordering::Acquire);
        if last == 0 {
            return false;
        }
        let now = inner.started.elapsed().as_millis() as u64;
        now.saturating_sub(last) <= 3 * inner.config.liveness_interval.as_millis() as u64
    }

    /// Waits until [`RedisCluster::is_ready`] or `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.is_ready() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.is_ready()
    }

    /// The counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Flushes queued broadcasts (bounded by `timeout`), then stops the background tasks
    /// and closes the connections.
    pub async fn close(&self, timeout: Duration) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.publisher.flush(timeout).await;
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        let _ = self.inner.subscriber.quit().await;
        let _ = self.inner.client.quit().await;
    }

    /// Sharded dynamic modes: subscribes now to the channels of `nsp`'s local rooms
    /// (rooms joined with `socket.join` are otherwise picked up within 50 ms). Call it
    /// after a join and before telling the client it is in the room. Does nothing in
    /// classic mode.
    pub async fn sync_rooms(&self, nsp: &str) {
        if !self.inner.wire.is_sharded() {
            return;
        }
        let sink = read(&self.inner.namespaces).get(nsp).cloned();
        if let Some(sink) = sink {
            sink.sync_rooms().await;
        }
    }

    pub(crate) fn register(&self, nsp: &str, sink: Arc<dyn NamespaceSink>) {
        write(&self.inner.namespaces).insert(nsp.to_string(), sink);
    }

    pub(crate) fn unregister(&self, nsp: &str) {
        write(&self.inner.namespaces).remove(nsp);
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

/// Receives every pub/sub message and hands it to its namespace.
async fn dispatch_loop(inner: Arc<Inner>) {
    let (tx, mut queue) = tokio::sync::mpsc::channel(inner.config.subscriber_buffer.max(1));
    let pump = tokio::spawn(pump_messages(
        inner.subscriber.message_rx(),
        tx,
        inner.stats.clone(),
    ));
    // the pump ends with its dispatcher
    let _pump = tokio_util::task::AbortOnDropHandle::new(pump);
    while let Some(message) = queue.recv().await {
        let channel: &str = &message.channel;
        if channel == inner.liveness_channel {
            let now = inner.started.elapsed().as_millis() as u64;
            inner.last_alive_ms.store(now.max(1), Ordering::Release);
            continue;
        }
        let Some(payload) = message.value.as_bytes() else {
            Stats::add(&inner.stats.malformed, 1);
            debug!(channel, "pub/sub message without a byte payload");
            continue;
        };
        if inner.wire.is_sharded() {
            dispatch_sharded(&inner, channel, payload);
            continue;
        }
        let target = match parse_channel(&inner.config.prefix, channel) {
            Ok(t) => t,
            Err(e) => {
                debug!(channel, error = %e, "message on a foreign channel ignored");
                continue;
            }
        };
        if let Channel::Response { uid, .. } = target {
            // Answers to our requests, matched by request id whatever the namespace.
            if uid.is_none_or(|u| u == inner.uid) {
                match inner.pending.on_response(payload) {
                    ResponseOutcome::Delivered => Stats::add(&inner.stats.received, 1),
                    ResponseOutcome::Malformed => Stats::add(&inner.stats.malformed, 1),
                    ResponseOutcome::NotOurs => {}
                }
            }
            continue;
        }
        let sink = read(&inner.namespaces).get(target.nsp()).cloned();
        let Some(sink) = sink else {
            continue; // a namespace this node does not serve
        };
        Stats::add(&inner.stats.received, 1);
        match target {
            Channel::Broadcast { room, .. } => sink.on_broadcast(room, payload),
            Channel::Request { .. } => sink.on_request(payload),
            Channel::Response { .. } => {}
        }
    }
}

/// A message on a sharded channel: decoded once, then routed like the classic ones.
fn dispatch_sharded(inner: &Arc<Inner>, channel: &str, payload: &[u8]) {
    use crate::protocol::sharded::{ShardedChannel, ShardedMessage, parse_sharded_channel};
    let target = match parse_sharded_channel(&inner.config.prefix, channel, &inner.uid) {
        Ok(t) => t,
        Err(e) => {
            debug!(channel, error = %e, "message on a foreign channel ignored");
            return;
        }
    };
    let message = match ShardedMessage::decode(payload) {
        Ok(m) => m,
        Err(e) => {
            Stats::add(&inner.stats.malformed, 1);
            warn!(channel, error = %e, "malformed sharded message dropped");
            return;
        }
    };
    if message.uid == inner.uid {
        return; // our own: applied locally when sent
    }
    let room = match target {
        ShardedChannel::Room { room, .. } => Some(room.to_string()),
        _ => None,
    };
    let nsp = message.nsp.clone();
    let Some(incoming) = crate::wire::incoming(message) else {
        return; // heartbeats, adapter close
    };
    if let Incoming::Response(response) = incoming {
        if inner.pending.on_typed_response(response) {
            Stats::add(&inner.stats.received, 1);
        }
        return;
    }
    let Some(sink) = read(&inner.namespaces).get(&nsp).cloned() else {
        return;
    };
    Stats::add(&inner.stats.received, 1);
    match incoming {
        Incoming::Broadcast(m) => sink.on_broadcast_message(room.as_deref(), m),
        Incoming::Request(r) => sink.on_request_message(r),
        Incoming::Response(_) => {}
    }
}

/// Keeps each namespace's room-channel subscriptions in line with its local rooms
/// (sharded dynamic modes). Joins made through the adapter subscribe at once; this
/// catches `socket.join` calls, which socketioxide does not report to adapters.
async fn room_sync_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sinks: Vec<_> = read(&inner.namespaces).values().cloned().collect();
        for sink in sinks {
            sink.sync_rooms().await;
        }
    }
}

/// Publishes to our own liveness channel every interval; the dispatcher records when
/// it comes back. In sharded mode the round trip uses sharded pub/sub too.
async fn liveness_loop(inner: Arc<Inner>) {
    let channel = inner.liveness_channel.clone();
    let sharded = inner.wire.is_sharded();
    // Classic mode: a pattern (matching only this channel), so that after a reconnect
    // the round trip succeeds only once every pattern, the namespaces' broadcast
    // patterns included, is subscribed again (they are restored in one PSUBSCRIBE).
    let subscribed = if sharded {
        inner.subscriber.ssubscribe(channel.clone()).await
    } else {
        inner.subscriber.psubscribe(glob_escape(&channel)).await
    };
    if let Err(e) = subscribed {
        warn!(error = %e, "cannot subscribe to the liveness channel");
    }
    let mut tick = tokio::time::interval(inner.config.liveness_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let res: Result<i64, _> = if sharded {
            inner.client.spublish(channel.clone(), "1").await
        } else {
            inner.client.publish(channel.clone(), "1").await
        };
        if let Err(e) = res {
            debug!(error = %e, "liveness publish failed");
        }
    }
}

/// Runs a sharded pub/sub `command` (`SSUBSCRIBE`, `SUNSUBSCRIBE`) for `channels`. On
/// Redis Cluster one such command may only name channels of a single hash slot (else
/// `CROSSSLOT`), so it is sent once per slot, all together; on a single Redis the grouping
/// changes nothing but the batching.
pub(crate) async fn per_slot<F, Fut>(channels: Vec<String>, command: F) -> Result<(), AdapterError>
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

/// Each re-established connection of a [`RedisCluster`]'s command client to Redis
/// (after a restart, a failover, a cut): from [`RedisCluster::reconnects`].
pub struct Reconnects(tokio::sync::broadcast::Receiver<fred::types::config::Server>);

impl Reconnects {
    /// Waits for the next reconnect; `false` once the cluster's client is gone.
    pub async fn next(&mut self) -> bool {
        !matches!(self.0.recv().await, Err(RecvError::Closed))
    }
}

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

/// Notification channel capacity of the command client (errors, reconnects: a few).
const CONTROL_CHANNEL_CAPACITY: usize = 32;

/// Capacity of fred's (preallocated, ~80 bytes a slot, nine channels) notification
/// channels on the subscriber; a pump moves messages on at once into the dispatcher's
/// queue of `subscriber_buffer` messages, which allocates only as it fills.
const SUBSCRIBER_CHANNEL_CAPACITY: usize = 8192;

fn new_uid() -> String {
    // socketioxide's server ids are random 16-character ids; any unique string works on
    // the wire (Node uses 6 characters).
    socketioxide_core::Uid::new().to_string()
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
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

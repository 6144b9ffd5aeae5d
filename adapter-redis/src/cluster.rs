//! The connection to the cluster that every namespace adapter of a node shares: the
//! transport (whatever the mode), the namespaces it delivers to, requests waiting for
//! answers, liveness and counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fred::clients::Client;
use fred::interfaces::EventInterface;
use socketioxide_core::Sid;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::AdapterError;
use crate::config::RedisAdapterConfig;
use crate::hooks::{ServerSideHandler, SocketInfo, SocketInfoProvider};
use crate::ids::IdMap;
use crate::protocol::{BroadcastMessage, Request, Response};
use crate::requests::{Pending, ResponseOutcome, StreamGuard};
use crate::stats::{Stats, StatsSnapshot};
use crate::transport::{Inbound, InboundResponse, Receiver, Transport};
use tokio::sync::mpsc;

/// What a namespace adapter does with the messages of its namespace.
pub(crate) trait NamespaceSink: Send + Sync {
    /// A broadcast or request for the namespace.
    fn on_message(self: Arc<Self>, message: Inbound<'_>);
    /// The namespace's rooms with local members.
    fn local_rooms(&self) -> Vec<String>;
    /// Recovery: the last log entry delivered to the namespace's sockets.
    fn log_position(&self) -> Option<String>;
    /// Recovery: `sid` is recovering (see [`crate::recovery`]).
    fn begin_catch_up(&self, sid: Sid, rooms: Vec<String>);
    /// Recovery: `sid` is no longer recovering.
    fn abort_catch_up(&self, sid: Sid);
    /// Recovery: emits `logged` and what was kept for `sid`; `None` if it was not
    /// recovering.
    fn finish_catch_up(
        &self,
        sid: Sid,
        logged: Vec<(String, BroadcastMessage)>,
        fallback: Option<String>,
    ) -> Option<usize>;
}

pub(crate) struct Inner {
    pub(crate) uid: String,
    pub(crate) config: RedisAdapterConfig,
    pub(crate) transport: Box<dyn Transport>,
    stats: Arc<Stats>,
    pending: Arc<Pending>,
    ids: IdMap,
    server_side: RwLock<HashMap<String, ServerSideHandler>>,
    socket_info: RwLock<Option<SocketInfoProvider>>,
    pub(crate) namespaces: RwLock<HashMap<String, Arc<dyn NamespaceSink>>>,
    started: Instant,
    /// Milliseconds since `started` when our last liveness message came back.
    last_alive_ms: AtomicU64,
    closed: AtomicBool,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Receiver for Inner {
    fn on_message(&self, nsp: &str, message: Inbound<'_>) {
        let Some(sink) = read(&self.namespaces).get(nsp).cloned() else {
            return; // a namespace this node does not serve
        };
        Stats::add(&self.stats.received, 1);
        sink.on_message(message);
    }

    fn on_response(&self, response: InboundResponse<'_>) {
        // Answers to our requests, matched by request id whatever the namespace.
        let outcome = match response {
            InboundResponse::Untyped(payload) => self.pending.on_response(payload),
            InboundResponse::Typed(response) => self.pending.on_typed_response(response),
        };
        match outcome {
            ResponseOutcome::Delivered => Stats::add(&self.stats.received, 1),
            ResponseOutcome::Malformed => Stats::add(&self.stats.malformed, 1),
            ResponseOutcome::NotOurs => {}
        }
    }

    fn on_alive(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_alive_ms.store(now.max(1), Ordering::Release);
    }
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
        if config.recovery.is_some() && config.mode != crate::wire::AdapterMode::Streams {
            return Err(AdapterError::Config(
                "connection state recovery needs streams mode (a log of broadcasts)".into(),
            ));
        }
        let uid = new_uid();
        let stats = Arc::new(Stats::default());
        let transport = crate::transport::connect(url, &config, &uid, stats.clone()).await?;
        Ok(Self::start(uid, transport, config, stats))
    }

    /// Starts a cluster member on `transport`.
    pub(crate) fn start(
        uid: String,
        transport: Box<dyn Transport>,
        config: RedisAdapterConfig,
        stats: Arc<Stats>,
    ) -> Self {
        let inner = Arc::new(Inner {
            uid,
            config,
            transport,
            stats,
            pending: Arc::new(Pending::default()),
            ids: IdMap::default(),
            server_side: RwLock::new(HashMap::new()),
            socket_info: RwLock::new(None),
            namespaces: RwLock::new(HashMap::new()),
            started: Instant::now(),
            last_alive_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let mut tasks = inner.transport.start(inner.clone());
        tasks.push(tokio::spawn(liveness_loop(inner.clone())));
        if inner.transport.follows_rooms() {
            tasks.push(tokio::spawn(room_sync_loop(inner.clone())));
        }
        lock(&inner.tasks).extend(tasks);
        Self { inner }
    }

    /// Signals each reconnect of the command client: state this node keeps in Redis
    /// may have to be written again.
    pub fn reconnects(&self) -> Reconnects {
        Reconnects(self.client().reconnect_rx())
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
        self.inner.transport.client()
    }

    /// Whether Redis is connected and a message this node published came back through
    /// its own subscription recently (within 3 liveness intervals).
    pub fn is_ready(&self) -> bool {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) || !inner.transport.is_connected() {
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
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        self.inner.transport.close(timeout).await;
    }

    /// Transports with per-room channels: subscribes now to the channels of `nsp`'s local
    /// rooms (rooms joined with `socket.join` are otherwise picked up within 50 ms). Call
    /// it after a join and before telling the client it is in the room. Does nothing
    /// where rooms have no channels of their own.
    pub async fn sync_rooms(&self, nsp: &str) {
        if !self.inner.transport.follows_rooms() {
            return;
        }
        let sink = read(&self.inner.namespaces).get(nsp).cloned();
        if let Some(sink) = sink {
            self.inner
                .transport
                .sync_rooms(nsp, sink.local_rooms())
                .await;
        }
    }
}

/// What the namespace adapters ask of the cluster.
impl RedisCluster {
    /// Starts delivering `nsp`'s messages to `sink` and subscribes to its channels.
    pub(crate) async fn join_namespace(
        &self,
        nsp: &str,
        sink: Arc<dyn NamespaceSink>,
    ) -> Result<(), AdapterError> {
        write(&self.inner.namespaces).insert(nsp.to_string(), sink);
        self.inner.transport.join_namespace(nsp).await
    }

    /// Stops delivering to `nsp` and unsubscribes from its channels.
    pub(crate) fn leave_namespace(
        &self,
        nsp: &str,
    ) -> impl Future<Output = Result<(), AdapterError>> + Send + 'static {
        write(&self.inner.namespaces).remove(nsp);
        self.inner.transport.leave_namespace(nsp)
    }

    /// The counters, to count into.
    pub(crate) fn counters(&self) -> &Stats {
        &self.inner.stats
    }

    /// Stand-in ids of Node.js sockets.
    pub(crate) fn ids(&self) -> &IdMap {
        &self.inner.ids
    }

    /// How long a cluster request waits for answers.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout
    }

    /// Queues a broadcast (without acks) for the other nodes, in call order.
    pub(crate) fn publish_broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
        volatile: bool,
    ) -> Result<(), AdapterError> {
        self.inner.transport.broadcast(nsp, message, volatile)
    }

    /// Queues a request that gets no answer (join, leave, disconnect, server-side emit).
    pub(crate) fn publish_request(&self, nsp: &str, request: Request) -> Result<(), AdapterError> {
        self.inner.transport.request(nsp, request).map(|_| ())
    }

    /// Queues the answer to node `to`'s request; a failure is logged.
    pub(crate) fn respond(&self, nsp: &str, to: Option<&str>, response: Response) {
        match self.inner.transport.respond(nsp, to, response) {
            Ok(()) => {}
            Err(AdapterError::Protocol(e)) => warn!(nsp, error = %e, "response not encodable"),
            Err(e) => debug!(nsp, error = %e, "response not sent"),
        }
    }

    /// The requests waiting for answers.
    pub(crate) fn pending(&self) -> &Arc<Pending> {
        &self.inner.pending
    }

    /// How many nodes serve namespace `nsp` (this one included).
    pub(crate) async fn node_count(&self, nsp: &str) -> Result<usize, AdapterError> {
        self.inner.transport.node_count(nsp).await
    }

    /// Queues a request for the other nodes; `Ok(false)` when the mode has no such
    /// request.
    pub(crate) fn send_request(&self, nsp: &str, request: Request) -> Result<bool, AdapterError> {
        self.inner.transport.request(nsp, request)
    }

    /// How a local socket of `nsp` is described to nodes that fetch it.
    pub(crate) fn socket_info(&self, nsp: &str, sid: Sid) -> Option<SocketInfo> {
        let provider = read(&self.inner.socket_info).clone();
        provider.and_then(|p| p(nsp, sid))
    }

    /// Registers how local sockets are described (see [`RedisCluster::set_socket_info`]).
    pub(crate) fn set_socket_info_provider(&self, provider: SocketInfoProvider) {
        *write(&self.inner.socket_info) = Some(provider);
    }

    /// Registers the handler of `nsp`'s server-side events, replacing any other.
    pub(crate) fn set_server_side_handler(&self, nsp: &str, handler: ServerSideHandler) {
        write(&self.inner.server_side).insert(nsp.to_string(), handler);
    }

    /// The handler of `nsp`'s server-side events.
    pub(crate) fn server_side_handler(&self, nsp: &str) -> Option<ServerSideHandler> {
        read(&self.inner.server_side).get(nsp).cloned()
    }

    /// Keeps `task` running until the cluster closes.
    pub(crate) fn keep_task(&self, task: JoinHandle<()>) {
        lock(&self.inner.tasks).push(task);
    }
}

/// Requests to the other nodes.
impl RedisCluster {
    /// Publishes `request` to the nodes of `nsp` and waits for one answer from every
    /// other node, at most `timeout`. A request the transport does not carry (not every
    /// mode has the all-rooms request) gets no answers.
    pub(crate) async fn request(
        &self,
        nsp: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Vec<Response>, AdapterError> {
        let id = request_id(&request)?;
        let expected = self.node_count(nsp).await?.saturating_sub(1);
        if expected == 0 {
            return Ok(Vec::new());
        }
        let waiting = self
            .inner
            .pending
            .expect(id, request.request_type(), expected);
        if !self.send_request(nsp, request)? {
            return Ok(Vec::new());
        }
        waiting.answers(timeout).await
    }

    /// Publishes `request` to the nodes of `nsp`; its answers go to the returned receiver
    /// for as long as the guard lives (registered before publishing, so no early answer
    /// is missed).
    pub(crate) fn request_stream(
        &self,
        nsp: &str,
        request: Request,
    ) -> Result<(StreamGuard, mpsc::UnboundedReceiver<Response>), AdapterError> {
        let registered = self
            .inner
            .pending
            .register_stream(request_id(&request)?, request.request_type());
        self.send_request(nsp, request)?;
        Ok(registered)
    }
}

fn request_id(request: &Request) -> Result<String, AdapterError> {
    request
        .request_id()
        .map(str::to_string)
        .ok_or(AdapterError::Parser("a request without requestId".into()))
}

/// Keeps each namespace's room-channel subscriptions in line with its local rooms
/// (transports with room channels). Joins made through the adapter subscribe at once;
/// this catches `socket.join` calls, which socketioxide does not report to adapters.
async fn room_sync_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sinks: Vec<_> = read(&inner.namespaces)
            .iter()
            .map(|(nsp, sink)| (nsp.clone(), sink.clone()))
            .collect();
        for (nsp, sink) in sinks {
            inner.transport.sync_rooms(&nsp, sink.local_rooms()).await;
        }
    }
}

/// Sends this node a message through Redis every interval; the transport reports when
/// it comes back.
async fn liveness_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.config.liveness_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        inner.transport.probe().await;
    }
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

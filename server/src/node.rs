//! Assembling and running one node: socket.io, the HTTP routes, and the drain on
//! shutdown.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use sio_server::{Config, node};
//!
//! let config = Config::for_addr("127.0.0.1:0".parse()?);
//! let running = node::spawn(config).await?;
//! println!("listening on {}", running.addr);
//! running.shutdown().await?; // drain and stop
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::get;
use sio_adapter_redis::{RedisAdapter, RedisCluster};
use socketioxide::adapter::Adapter;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, SocketIoBuilder};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{info, warn};

use crate::backend::Backend;
use crate::chat::{self, Chat, History};
use crate::cluster;
use crate::config::{Config, CorsOrigins};
use crate::connect_reply::PidTable;
use crate::forward::Forwarder;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::recovery::Recovery;
use crate::routes::{self, AppState, NamespaceCount, NamespaceCounter};

pub use crate::chat::{CLIENT_SRI, CLIENT_VERSION};

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The local client bundle could not be read.
    #[error("cannot read client bundle: {0}")]
    ClientJs(std::io::Error),
    /// Redis could not be reached or set up.
    #[error("cannot start cluster mode: {0}")]
    // Not `#[source]`: the message already ends with the cause, and `{:#}` would print
    // it a second (and, through the adapter error, a third) time.
    Redis(sio_adapter_redis::AdapterError),
}

/// A node started with [`spawn`].
pub struct RunningNode {
    /// The bound address (the real port when `:0` was asked for).
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Starts the drain and waits for the node to stop.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }

    /// A token that starts the drain when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// Binds `config.listen` and runs the node in a background task.
pub async fn spawn(config: Config) -> Result<RunningNode, StartError> {
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let stop = CancellationToken::new();
    let metrics = Metrics::new();
    let pids = recovery_pids(&config);
    let app = build(&config, addr, metrics.clone(), pids.clone()).await?;
    let task = tokio::spawn(serve(
        listener,
        std::future::ready(Ok(app)),
        config,
        metrics,
        pids,
        stop.clone().cancelled_owned(),
    ));
    Ok(RunningNode { addr, stop, task })
}

/// Binds `config.listen` and runs the node until `shutdown` completes, then drains.
///
/// The HTTP port answers at once: until Redis is reached (cluster mode, retried with
/// backoff for as long as it takes), `/healthz` says the process is alive, `/readyz`
/// answers 503 and every other request 503, so an orchestrator keeps the node out of
/// rotation without restarting it.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let build_config = config.clone();
    let metrics = Metrics::new();
    let build_metrics = metrics.clone();
    let pids = recovery_pids(&config);
    let build_pids = pids.clone();
    let app = async move { build(&build_config, addr, build_metrics, build_pids).await };
    serve(listener, app, config, metrics, pids, shutdown).await
}

/// The table of pids waiting for their CONNECT reply, when connection state recovery is
/// on (`SIO_RECOVERY_WINDOW_MS`). Made before anything is served: the accept loop wraps
/// every connection's stream from the first one on (see [`crate::connect_reply`]).
fn recovery_pids(config: &Config) -> Option<PidTable> {
    config.recovery_window.map(|_| PidTable::new())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The assembled application, with the adapter type erased.
struct App {
    router: Router,
    live: Live,
}

/// What a serving node drains on shutdown.
struct Live {
    state: Arc<AppState>,
    /// Closes every socket.io transport (drain).
    close_io: Box<dyn FnOnce() -> BoxFuture + Send>,
    /// The cluster connection, in cluster mode.
    cluster: Option<RedisCluster>,
    /// Session forwarding, in cluster mode.
    forwarder: Option<Arc<Forwarder>>,
}

/// How a namespace registration finishes: at once for the in-memory adapter, once the
/// namespace's channels are subscribed for the Redis adapter.
trait NsReady: Send {
    fn ready(self) -> Pin<Box<dyn Future<Output = Result<(), StartError>> + Send>>;
}

impl NsReady for () {
    fn ready(self) -> Pin<Box<dyn Future<Output = Result<(), StartError>> + Send>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl NsReady for sio_adapter_redis::InitRes {
    fn ready(self) -> Pin<Box<dyn Future<Output = Result<(), StartError>> + Send>> {
        Box::pin(async move { self.await.map_err(StartError::Redis) })
    }
}

fn sio_builder(config: &Config) -> SocketIoBuilder {
    SocketIo::builder()
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_payload(config.max_payload)
        .ws_max_message_size(config.max_payload as usize)
        // Every open websocket keeps this buffer (socketioxide's default is 4 KiB).
        .ws_read_buffer_size(config.ws_read_buffer)
        // socketioxide's default of 128 queued packets per socket drops bursts; every
        // drop is still counted (sio_redis_local_delivery_failed_total).
        .max_buffer_size(MAX_BUFFERED_PACKETS)
}

/// Packets queued per socket before deliveries to it fail.
pub const MAX_BUFFERED_PACKETS: usize = 4096;

/// Builds the node's socket.io on the in-memory adapter, or in cluster mode on the Redis
/// adapter once Redis is reached and the node registered, then assembles the node.
async fn build(
    config: &Config,
    bound: SocketAddr,
    metrics: Metrics,
    recovery_pids: Option<PidTable>,
) -> Result<App, StartError> {
    match &config.redis_url {
        None => {
            let (layer, io) = sio_builder(config).build_layer();
            assemble(config, metrics, recovery_pids, layer, io, None).await
        }
        Some(url) => {
            let cluster = cluster::connect(url, config)
                .await
                .map_err(StartError::Redis)?;
            let (layer, io) = sio_builder(config)
                .with_adapter::<RedisAdapter<_>>(cluster.clone())
                .build_layer();
            cluster::register_node(&cluster, config, bound)
                .await
                .map_err(StartError::Redis)?;
            assemble(config, metrics, recovery_pids, layer, io, Some(cluster)).await
        }
    }
}

/// Assembles the node around socket.io `io`, in named steps: register the namespaces,
/// build the router, and in cluster mode start the cluster's tasks and hooks.
/// `recovery_pids` (connection state recovery on) ends up in [`AppState::recovery_pids`].
async fn assemble<A>(
    config: &Config,
    metrics: Metrics,
    recovery_pids: Option<PidTable>,
    sio_layer: SocketIoLayer<A>,
    io: SocketIo<A>,
    cluster: Option<RedisCluster>,
) -> Result<App, StartError>
where
    A: Adapter + DefinedAdapter,
    A::InitRes: NsReady,
{
    // connection state recovery: the gateway's connect middleware records each socket's
    // pid in `recovery_pids` before socketioxide sends the CONNECT reply
    let recovery = cluster
        .clone()
        .zip(recovery_pids.clone())
        .and_then(|(c, pids)| Recovery::start(c, pids, metrics.clone()));
    register_namespaces(config, &io, &metrics, cluster.as_ref(), recovery).await?;
    let state = app_state(config, metrics, &io, cluster.clone(), recovery_pids)?;
    let forwarder = cluster.as_ref().map(|c| {
        Forwarder::new(
            config.node_id.clone(),
            c.clone(),
            state.metrics.clone(),
            config.header_timeout,
        )
    });
    let api = config.api_key.clone().map(|key| {
        crate::api::EmitApi::new(
            io.clone(),
            key,
            config.max_payload as usize,
            state.metrics.clone(),
        )
    });
    let router = router(config, &state, sio_layer, forwarder.as_ref(), api);
    if let (Some(cluster), Some(fw)) = (&cluster, &forwarder) {
        cluster::spawn_session_tasks(cluster, fw, &io);
        cluster::install_socket_info(cluster, &io);
    }
    let close_io: Box<dyn FnOnce() -> BoxFuture + Send> =
        Box::new(move || Box::pin(async move { io.close().await }));
    Ok(App {
        router,
        live: Live {
            state,
            close_io,
            cluster,
            forwarder,
        },
    })
}

/// Runs the gateway on every configured namespace and, when on, the demo chat on
/// `/chat`; returns once every namespace is ready (in cluster mode: its channels
/// subscribed).
async fn register_namespaces<A>(
    config: &Config,
    io: &SocketIo<A>,
    metrics: &Metrics,
    cluster: Option<&RedisCluster>,
    recovery: Option<Arc<Recovery>>,
) -> Result<(), StartError>
where
    A: Adapter + DefinedAdapter,
    A::InitRes: NsReady,
{
    let gateway = Gateway::with_join_hook(
        config.jwt.clone(),
        config.client_publish.clone(),
        metrics.clone(),
        cluster.map(cluster::join_hook),
    )
    .with_event_limit(config.event_limit);
    let backend = config
        .backend
        .clone()
        .map(|b| Backend::new(b, config.node_id.clone(), metrics.clone()));
    let gateway = gateway.with_recovery(recovery).with_backend(backend);
    let mut pending: Vec<_> = config
        .namespaces
        .iter()
        .map(|ns| gateway.attach(io, ns.clone()).ready())
        .collect();
    if config.chat {
        let history = History::for_node(cluster, &config.redis_prefix);
        let chat = Chat::new(config.node_id.clone(), history, metrics.clone());
        pending.push(chat::register(io, &gateway, chat).ready());
    }
    for ns in pending {
        ns.await?;
    }
    Ok(())
}

/// What the HTTP routes share; reads the local client bundle.
fn app_state<A: Adapter>(
    config: &Config,
    metrics: Metrics,
    io: &SocketIo<A>,
    cluster: Option<RedisCluster>,
    recovery_pids: Option<PidTable>,
) -> Result<Arc<AppState>, StartError> {
    let client_js = match &config.client_js {
        Some(path) => Some(std::fs::read(path).map_err(StartError::ClientJs)?),
        None => None,
    };
    Ok(Arc::new(AppState {
        node_id: config.node_id.clone(),
        draining: AtomicBool::new(false),
        metrics,
        index_html: config
            .chat
            .then(|| chat::render_index(config.client_js.is_some())),
        client_js,
        cors: config.cors.clone(),
        namespaces: namespace_counter(config, io),
        cluster,
        handshake_limit: config
            .handshake_limit
            .map(|l| crate::limits::HandshakeLimiter::new(l, config.trusted_proxies.clone())),
        recovery_pids,
    }))
}

/// Counts the local rooms of every namespace the node serves, for `/metrics`.
fn namespace_counter<A: Adapter>(config: &Config, io: &SocketIo<A>) -> NamespaceCounter {
    let namespaces: Vec<String> = config
        .namespaces
        .iter()
        .cloned()
        .chain(config.chat.then(|| chat::NAMESPACE.to_string()))
        .collect();
    let io = io.clone();
    Arc::new(move || {
        let io = io.clone();
        let namespaces = namespaces.clone();
        Box::pin(async move {
            let mut out = Vec::with_capacity(namespaces.len());
            for ns in namespaces {
                if let Some(op) = io.of(&ns) {
                    let rooms = op.clone().local().rooms().await.map(|r| r.len());
                    let sockets = op.local().sockets().len();
                    out.push(NamespaceCount {
                        nsp: ns,
                        rooms: rooms.unwrap_or(0),
                        sockets,
                    });
                }
            }
            out
        })
    })
}

/// The node's router: the plain routes and socket.io, behind CORS, the session gate
/// and, in cluster mode, the forwarding gate. The last `.layer` wraps the others, so
/// the forwarding gate sees every request first, then the session gate. With connection
/// state recovery on, the polling CONNECT reply rewrite sits right around socket.io
/// (inside the forwarding gate: a forwarded poll is rewritten on the node that owns it).
fn router<A: Adapter>(
    config: &Config,
    state: &Arc<AppState>,
    sio_layer: SocketIoLayer<A>,
    forwarder: Option<&Arc<Forwarder>>,
    api: Option<Arc<crate::api::EmitApi<A>>>,
) -> Router {
    let mut router = Router::new()
        .route("/", get(routes::index))
        .route("/assets/socket.io.min.js", get(routes::client_js))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .with_state(state.clone());
    if let Some(api) = api {
        router = router.merge(crate::api::router(api));
    }
    let mut router = router.layer(sio_layer);
    if let Some(pids) = &state.recovery_pids {
        router = router.layer(axum::middleware::from_fn_with_state(
            pids.clone(),
            crate::connect_reply::polling::rewrite_polling,
        ));
    }
    // with recovery on, a poll whose answer was lost on the way (a forwarding node that
    // died) is answered again when the balancer retries it: outside the rewrite, so the
    // kept answer carries the pid too
    if state.recovery_pids.is_some() {
        router = router.layer(axum::middleware::from_fn_with_state(
            crate::poll_replay::PollReplay::default(),
            crate::poll_replay::replay_polls,
        ));
    }
    if let Some(cors) = cors_layer(&config.cors) {
        router = router.layer(cors);
    }
    router = router.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        routes::session_gate,
    ));
    // Cluster mode: outermost, requests for other nodes' sessions leave here.
    if let Some(fw) = forwarder {
        router = router.layer(axum::middleware::from_fn_with_state(
            fw.clone(),
            crate::forward::forward_gate,
        ));
    }
    router
}

fn cors_layer(cors: &CorsOrigins) -> Option<CorsLayer> {
    use axum::http::{Method, header};
    let origins = match cors {
        CorsOrigins::SameOrigin => return None,
        CorsOrigins::Any => AllowOrigin::mirror_request(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().filter_map(|o| o.parse().ok())),
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]),
    )
}

/// The router a node serves from the moment it listens: while Redis is being reached,
/// a stand-in that answers health probes ([`starting`]); once the node is assembled,
/// the node's router, installed once.
#[derive(Clone)]
struct StartupRouter {
    app: Arc<std::sync::OnceLock<Router>>,
    node_id: Arc<str>,
}

impl StartupRouter {
    fn new(node_id: &str) -> Self {
        Self {
            app: Arc::default(),
            node_id: node_id.into(),
        }
    }

    /// From now on every request goes to `router`.
    fn install(&self, router: Router) {
        let _ = self.app.set(router);
    }

    fn router(&self) -> Router {
        let startup = self.clone();
        Router::new().fallback(move |req: axum::extract::Request| {
            let startup = startup.clone();
            async move {
                use tower::ServiceExt as _;
                match startup.app.get() {
                    Some(router) => match router.clone().oneshot(req).await {
                        Ok(res) => res,
                        Err(never) => match never {},
                    },
                    None => starting(req.uri().path(), &startup.node_id),
                }
            }
        })
    }
}

/// The answer of a node that is still starting (waiting for Redis).
fn starting(path: &str, node_id: &str) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    let body = match path {
        "/healthz" => {
            let body = serde_json::json!({ "status": "starting", "node": node_id });
            return axum::Json(body).into_response();
        }
        "/readyz" => {
            serde_json::json!({ "status": "starting: waiting for Redis", "node": node_id })
        }
        _ => serde_json::json!({ "code": 3, "message": "Node starting: Redis not reachable yet" }),
    };
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Serves `listener` at once (the [`StartupRouter`]), then the node `app` assembles into
/// until `shutdown`, then drains.
async fn serve(
    listener: TcpListener,
    app: impl Future<Output = Result<App, StartError>> + Send,
    config: Config,
    metrics: Metrics,
    recovery_pids: Option<PidTable>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let startup = StartupRouter::new(&config.node_id);
    let mut server =
        HttpServer::start(listener, startup.router(), &config, metrics, recovery_pids)?;
    let mut shutdown = std::pin::pin!(shutdown);

    let app = tokio::select! {
        res = &mut server.task => {
            res?;
            return Ok(());
        }
        () = &mut shutdown => {
            info!("stopped while starting");
            return server.stop().await;
        }
        app = app => app?,
    };
    startup.install(app.router);
    if config.redis_url.is_none() {
        info!("no SIO_REDIS_URL: running as a single node with the in-memory adapter");
    }
    info!(node = %config.node_id, "serving");

    tokio::select! {
        res = &mut server.task => {
            // The server stopped on its own: its task panicked.
            res?;
            return Ok(());
        }
        () = &mut shutdown => {}
    }
    app.live.drain(&config, server).await
}

/// The HTTP side of a node: the accept loop's task and its stop.
struct HttpServer {
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl HttpServer {
    /// Logs the listen address and serves `router` on `listener` in a task (websocket
    /// CONNECT replies get their pids from `recovery_pids`, when recovery is on).
    fn start(
        listener: TcpListener,
        router: Router,
        config: &Config,
        metrics: Metrics,
        recovery_pids: Option<PidTable>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        info!(
            %addr,
            node = %config.node_id,
            header_timeout_ms = config.header_timeout.as_millis() as u64,
            body_timeout_ms = config.body_timeout.as_millis() as u64,
            max_connections = config.max_connections.unwrap_or(0),
            "listening"
        );
        let stop = CancellationToken::new();
        let settings = crate::http::HttpSettings {
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            max_connections: config.max_connections,
        };
        let task = tokio::spawn(crate::http::serve(
            listener,
            router,
            settings,
            metrics,
            stop.clone(),
            recovery_pids,
        ));
        Ok(Self { task, stop })
    }

    /// Stops accepting and waits until every connection has finished and closed.
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?;
        Ok(())
    }
}

impl Live {
    /// The drain, within `SIO_SHUTDOWN_GRACE_MS`: not ready, no new sessions, every
    /// socket.io transport closed, the node's session entries and registration removed
    /// from Redis, then the HTTP side stopped once its connections have closed.
    async fn drain(self, config: &Config, server: HttpServer) -> anyhow::Result<()> {
        let grace = config.shutdown_grace;
        info!(
            grace_ms = grace.as_millis() as u64,
            "draining: not ready, refusing new sessions, closing sockets"
        );
        self.state.draining.store(true, Ordering::Release);
        let drain = async {
            // Closing the transports (not a namespace DISCONNECT) makes clients reconnect,
            // through the load balancer, to a node that is still ready.
            (self.close_io)().await;
            if let Some(fw) = &self.forwarder {
                fw.forget_all().await;
            }
            if let Some(cluster) = &self.cluster {
                let _ = cluster.deregister_node(&config.node_id).await;
            }
            // Requests still in flight, and those arriving on open keep-alive connections
            // until they close, may be other nodes' sessions to forward, whose owner is
            // looked up in Redis: the Redis connection closes only once the HTTP side has
            // stopped (closed first, such a lookup hung, and its client with it).
            let stopped = server.stop().await;
            if let Some(cluster) = &self.cluster {
                cluster.close(std::time::Duration::from_secs(2)).await;
            }
            stopped
        };
        match tokio::time::timeout(grace, drain).await {
            Ok(res) => {
                res?;
                info!("drained, stopped");
            }
            Err(_) => warn!(
                grace_ms = grace.as_millis() as u64,
                "grace period ran out before every connection closed; stopping anyway"
            ),
        }
        Ok(())
    }
}

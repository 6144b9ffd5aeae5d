//! The node's cluster glue (cluster mode, `SIO_REDIS_URL` set): reaching Redis at
//! start-up, registering the node for session forwarding, describing this node's
//! sockets to the nodes that fetch them, and the background tasks that keep the session
//! registry right.
//!
//! Everything Redis itself is done by `sio-adapter-redis` ([`RedisCluster`]); this
//! module only wires it to the node's socket.io instance and its [`Forwarder`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sio_adapter_redis::protocol::Handshake;
use sio_adapter_redis::{AdapterError, RedisAdapterConfig, RedisCluster, SocketInfo};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use tracing::{info, warn};

use crate::backend::connect::SocketData;
use crate::config::Config;
use crate::forward::Forwarder;
use crate::gateway::{ConnectedAt, JoinHook};

/// A session that no namespace holds after this long has ended (socketioxide closes a
/// session that never connects a namespace after its 45 s connect timeout).
pub const SESSION_GRACE: Duration = Duration::from_secs(60);

/// The longest pause between two attempts to reach Redis at start-up.
pub const REDIS_RETRY_MAX: Duration = Duration::from_secs(5);

/// How often owned sessions that no namespace holds any more are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Connects to Redis, retrying an unreachable one with exponential backoff (capped at
/// [`REDIS_RETRY_MAX`]) until it answers. Errors that retrying cannot mend (a bad URL,
/// refused credentials) end the attempt at once.
pub async fn connect(url: &str, config: &Config) -> Result<RedisCluster, AdapterError> {
    let mut adapter_config = RedisAdapterConfig::default()
        .with_prefix(config.redis_prefix.clone())
        .with_mode(config.redis_mode)
        .with_streams(config.redis_streams.clone());
    if let Some(ca) = &config.redis_ca_file {
        adapter_config = adapter_config.with_tls_ca_file(ca.clone());
    }
    if let Some(window) = config.recovery_window {
        adapter_config = adapter_config.with_recovery(window);
    }
    let mut delay = Duration::from_millis(100);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        match RedisCluster::connect(url, adapter_config.clone()).await {
            Ok(cluster) => {
                info!(
                    uid = cluster.uid(),
                    mode = ?config.redis_mode,
                    "cluster mode: Redis adapter (Node.js @socket.io/redis-adapter and redis-streams-adapter protocols)"
                );
                return Ok(cluster);
            }
            // A bad URL or refused credentials will not get better by retrying.
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                warn!(
                    error = %e,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    "Redis not reachable yet: not ready, retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(REDIS_RETRY_MAX);
            }
        }
    }
}

/// Registers this node (id → the address other nodes forward to) for session
/// forwarding.
pub async fn register_node(
    cluster: &RedisCluster,
    config: &Config,
    bound: SocketAddr,
) -> Result<(), AdapterError> {
    let advertise = advertise_addr(config, bound);
    cluster.register_node(&config.node_id, &advertise).await?;
    info!(node = %config.node_id, advertise = %advertise, "registered for session forwarding");
    Ok(())
}

/// The address other nodes forward to: configured, or the bound one (loopback for an
/// unspecified IP).
fn advertise_addr(config: &Config, bound: SocketAddr) -> String {
    if let Some(addr) = &config.advertise_addr {
        return addr.clone();
    }
    let ip = if bound.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        bound.ip()
    };
    SocketAddr::new(ip, bound.port()).to_string()
}

/// The gateway's join hook in cluster mode: a room's channel subscriptions follow the
/// namespace's local rooms (sharded dynamic modes) before the `join` is acked.
pub fn join_hook(cluster: &RedisCluster) -> JoinHook {
    let cluster = cluster.clone();
    Arc::new(move |nsp: String| {
        let cluster = cluster.clone();
        Box::pin(async move { cluster.sync_rooms(&nsp).await })
    })
}

/// Lets the cluster answer other nodes' fetches of this node's sockets with
/// [`socket_info`].
pub fn install_socket_info<A: Adapter>(cluster: &RedisCluster, io: &SocketIo<A>) {
    let io = io.clone();
    cluster.set_socket_info(move |nsp, sid| io.of(nsp)?.get_socket(sid).map(|s| socket_info(&s)));
}

/// Spawns the tasks that keep the session registry right: after every reconnect to
/// Redis the owned sessions' entries are written again, and every 15 s the sessions
/// that no namespace holds any more (after [`SESSION_GRACE`]) are forgotten.
pub fn spawn_session_tasks<A: Adapter>(
    cluster: &RedisCluster,
    forwarder: &Arc<Forwarder>,
    io: &SocketIo<A>,
) {
    let fw = forwarder.clone();
    let mut reconnects = cluster.reconnects();
    tokio::spawn(async move {
        while reconnects.next().await {
            fw.record_all().await;
        }
    });
    let fw = forwarder.clone();
    let io = io.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            let io = io.clone();
            fw.sweep(SESSION_GRACE, move |sid| {
                let Ok(sid) = sid.parse() else { return false };
                io.nsps().iter().any(|ns| ns.get_socket(sid).is_some())
            })
            .await;
        }
    });
}

/// How this node describes one of its sockets to other nodes that fetch it: the
/// handshake (headers, url, query, address, time) and its `data` ([`SocketData`]). The handshake `auth` is left empty: tokens stay on this node.
pub fn socket_info<A: Adapter>(socket: &SocketRef<A>) -> SocketInfo {
    let parts = socket.req_parts();
    let connected = socket
        .extensions
        .get::<ConnectedAt>()
        .map(|c| c.0)
        .unwrap_or_else(std::time::SystemTime::now);
    let issued = connected
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    SocketInfo {
        handshake: Handshake {
            xdomain: parts.headers.contains_key("origin"),
            secure: parts
                .headers
                .get("x-forwarded-proto")
                .is_some_and(|p| p.as_bytes() == b"https"),
            headers: headers_json(&parts.headers),
            time: humantime::format_rfc3339_millis(connected).to_string(),
            address: client_address(parts),
            issued,
            url: parts.uri.to_string(),
            query: query_json(parts.uri.query()),
            auth: serde_json::Map::new(),
        },
        data: user_data(socket),
    }
}

/// The handshake's headers with text values, as a JSON object.
fn headers_json(headers: &axum::http::HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.into())))
        .collect()
}

/// The handshake's query string (`k=v` pairs, not decoded), as a JSON object.
fn query_json(query: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect()
}

/// The client's address: the first `X-Forwarded-For` entry, else the TCP peer's IP.
pub(crate) fn client_address(parts: &axum::http::request::Parts) -> String {
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string());
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    forwarded.or(peer).unwrap_or_default()
}

/// The socket's `data` as fetched sockets show it: `{user, ...}` (the user from the token's
/// `sub` or the connect proxy, and the connect proxy's `data`), else `{}`.
fn user_data<A: Adapter>(socket: &SocketRef<A>) -> serde_json::Value {
    socket
        .extensions
        .get::<SocketData>()
        .map_or_else(|| serde_json::json!({}), |d| d.to_json())
}

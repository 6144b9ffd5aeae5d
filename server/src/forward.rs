//! Any node accepts any session: a request for a session this node does not own is
//! forwarded to the node that does.
//!
//! - A polling handshake answered here is recorded (`sid → this node`) in Redis before
//!   the client sees its sid, so its next request, wherever it lands, can be routed.
//! - A request with `sid=` for a session owned elsewhere goes to the owner: polling
//!   `GET`/`POST` as plain HTTP over a pooled keep-alive client (no timeout: a long-poll
//!   lasts up to the ping interval), a websocket upgrade by forwarding the upgrade and
//!   then piping bytes both ways.
//! - Unknown sid, owner gone, owner unreachable: `400 {"code":1,"message":"Session ID
//!   unknown"}` at once (before any `101` for an upgrade), so the client reconnects.
//! - A forwarded request carries [`FORWARDED_HEADER`]; a node never forwards it again.
//!   The header grants nothing: a request carrying it is served only when this node
//!   owns the session, and is otherwise answered `400` code 1 (before any `101`), exactly
//!   like an unknown sid. A client that sends it itself can therefore only make its own
//!   request fail; it skips no check (origin, rate limits and auth run on the owner as
//!   for any request) and cannot reach a session this node does not own.
//!
//! Websocket-only sessions never need forwarding: they make no second HTTP request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sio_adapter_redis::registry::SessionOwner;
use sio_adapter_redis::{AdapterError, RedisCluster};
use tracing::{debug, info, warn};

use crate::engine::{ENGINE_PATH, EngineError, EngineQuery};
use crate::metrics::Metrics;

/// Marks a request one node forwarded to another; its value is the forwarding node's id.
/// Honoured only as "do not forward again" (see the module docs).
pub const FORWARDED_HEADER: &str = "x-sio-forwarded-by";

/// Most owner lookups cached (a session's owner never changes).
const CACHE_MAX: usize = 50_000;

/// How long a node seen registered is trusted before its registration is read again: a
/// cached owner is used only while its node is known alive, so a dead node's sessions
/// are never forwarded to once its registration expired.
const NODE_RECHECK: Duration = Duration::from_secs(2);

/// Buffer per direction of a forwarded websocket's byte pipe. tokio's default (8 KiB,
/// allocated up front) cost 16 KiB per forwarded connection, most of it idle; a big
/// message just takes more reads.
const PIPE_BUFFER: usize = 2 * 1024;

/// Headers that describe one hop, not the request.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Routes session requests to their owner.
pub struct Forwarder {
    node_id: String,
    cluster: RedisCluster,
    metrics: Metrics,
    client: Client<HttpConnector, Body>,
    /// Sessions this node created by a polling handshake, with when.
    owned: Mutex<HashMap<String, Instant>>,
    /// Owners of other nodes' sessions.
    cache: Mutex<HashMap<String, SessionOwner>>,
    /// Other nodes seen registered: their address, and when it was read.
    nodes: Mutex<HashMap<String, (String, Instant)>>,
    /// When the owned sessions' entries were last refreshed.
    refreshed: Mutex<Instant>,
}

/// Reads the sid from an Engine.IO open packet in a polling response body:
/// `0{"sid":...}` (v4) or `<len>:0{"sid":...}` (v3 framing).
pub fn sid_from_open_packet(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("0{")?;
    let rest = &text[start + 1..];
    let end = rest.find('}')?;
    let open: serde_json::Value = serde_json::from_str(&rest[..=end]).ok()?;
    open["sid"].as_str().map(str::to_string)
}

impl Forwarder {
    /// A forwarder for node `node_id`. Pooled connections to other nodes are dropped
    /// after half of `peer_idle_timeout` unused, well before the other node (configured
    /// alike) closes them as idle, so a request is not sent on a connection being closed.
    pub fn new(
        node_id: String,
        cluster: RedisCluster,
        metrics: Metrics,
        peer_idle_timeout: Duration,
    ) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout((peer_idle_timeout / 2).min(Duration::from_secs(60)))
            .build(connector);
        Arc::new(Self {
            node_id,
            cluster,
            metrics,
            client,
            owned: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
            refreshed: Mutex::new(Instant::now()),
        })
    }

    fn is_owned(&self, sid: &str) -> bool {
        lock(&self.owned).contains_key(sid)
    }

    async fn owner(&self, sid: &str) -> Option<SessionOwner> {
        let cached = lock(&self.cache).get(sid).cloned();
        if let Some(owner) = cached {
            self.metrics.forward_lookup(true);
            if self.node_alive(&owner.node_id).await {
                return Some(owner);
            }
            debug!(sid, owner = %owner.node_id, "owner no longer registered: session dropped");
            self.forget(sid).await;
            return None;
        }
        self.metrics.forward_lookup(false);
        // One `GET` for the owner's id; its address comes from the node cache while
        // fresh, so a session of an already known node costs one Redis round trip.
        let node_id = match with_retries(|| self.cluster.session_node(sid)).await {
            Ok(Some(node_id)) => node_id,
            Ok(None) => return None,
            Err(e) => {
                warn!(sid, error = %e, "session lookup failed");
                return None;
            }
        };
        let address = match with_retries(|| self.node_address(&node_id)).await {
            Ok(Some(address)) => address,
            Ok(None) => {
                debug!(sid, owner = %node_id, "owner no longer registered: session dropped");
                self.forget(sid).await;
                return None;
            }
            Err(e) => {
                warn!(sid, error = %e, "session lookup failed");
                return None;
            }
        };
        let owner = SessionOwner { node_id, address };
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(sid.to_string(), owner.clone());
        Some(owner)
    }

    /// Node `node_id`'s advertised address: cached for [`NODE_RECHECK`], then read from
    /// the registry again (`None`: no longer registered). `Err`: Redis was not reached.
    async fn node_address(&self, node_id: &str) -> Result<Option<String>, AdapterError> {
        let fresh = lock(&self.nodes)
            .get(node_id)
            .filter(|(_, at)| at.elapsed() < NODE_RECHECK)
            .map(|(address, _)| address.clone());
        if fresh.is_some() {
            return Ok(fresh);
        }
        let address = self.cluster.node_address(node_id).await?;
        let mut nodes = lock(&self.nodes);
        match &address {
            Some(address) => {
                nodes.insert(node_id.to_string(), (address.clone(), Instant::now()));
            }
            None => {
                nodes.remove(node_id);
            }
        }
        Ok(address)
    }

    /// Whether node `node_id` is still registered (read again after [`NODE_RECHECK`]).
    /// A failed read trusts the last answer: Redis trouble is not a node's death.
    async fn node_alive(&self, node_id: &str) -> bool {
        match self.node_address(node_id).await {
            Ok(address) => address.is_some(),
            Err(e) => {
                debug!(node = node_id, error = %e, "cannot check a node's registration");
                true
            }
        }
    }

    async fn forget(&self, sid: &str) {
        lock(&self.cache).remove(sid);
        if let Err(e) = self.cluster.forget_session(sid).await {
            debug!(sid, error = %e, "cannot delete a stale session entry");
        }
    }

    /// The owner of `sid` did not answer: the session is dropped, and the owner's cached
    /// address too (it may be stale after a restart elsewhere; read it again next time).
    async fn owner_unreachable(&self, sid: &str, owner: &SessionOwner) {
        self.forget(sid).await;
        lock(&self.nodes).remove(&owner.node_id);
    }

    /// Records a session this node just created.
    async fn record(&self, sid: &str) {
        lock(&self.owned).insert(sid.to_string(), Instant::now());
        if let Err(e) = self.cluster.record_session(sid, &self.node_id).await {
            warn!(sid, error = %e, "cannot record a session: other nodes will not find it");
        }
    }

    /// Forgets owned sessions that no namespace holds any more (checked by `alive`),
    /// once they are older than `min_age` (a session may not have joined a namespace yet).
    pub async fn sweep(&self, min_age: Duration, alive: impl Fn(&str) -> bool) {
        let dead: Vec<String> = lock(&self.owned)
            .iter()
            .filter(|(sid, at)| at.elapsed() > min_age && !alive(sid))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in dead {
            lock(&self.owned).remove(&sid);
            if let Err(e) = self.cluster.forget_session(&sid).await {
                debug!(sid, error = %e, "cannot delete an ended session");
            }
        }
        let due = {
            let mut refreshed = lock(&self.refreshed);
            let due = refreshed.elapsed() >= sio_adapter_redis::registry::SESSION_REFRESH;
            if due {
                *refreshed = Instant::now();
            }
            due
        };
        if due {
            let live: Vec<String> = lock(&self.owned).keys().cloned().collect();
            match self.cluster.refresh_sessions(&live).await {
                Ok(n) => debug!(sessions = n, "session entries refreshed"),
                Err(e) => warn!(error = %e, "cannot refresh session entries"),
            }
        }
    }

    /// Writes the entries of every session this node owns again (after a reconnect to
    /// Redis: the Redis reached now may have lost them in a restart or a failover).
    pub async fn record_all(&self) {
        let live: Vec<String> = lock(&self.owned).keys().cloned().collect();
        match self.cluster.record_sessions(&live, &self.node_id).await {
            Ok(n) => info!(
                sessions = n,
                "session entries written again after a Redis reconnect"
            ),
            Err(e) => warn!(error = %e, "cannot write session entries after a Redis reconnect"),
        }
    }

    /// Deletes every session entry this node owns (shutdown).
    pub async fn forget_all(&self) {
        let owned: Vec<String> = lock(&self.owned).drain().map(|(sid, _)| sid).collect();
        for sid in owned {
            let _ = self.cluster.forget_session(&sid).await;
        }
    }

    fn upstream_uri(owner: &SessionOwner, uri: &Uri) -> Option<Uri> {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        format!("http://{}{}", owner.address, path).parse().ok()
    }

    fn prepare_headers(&self, headers: &mut HeaderMap, peer: Option<SocketAddr>, upgrade: bool) {
        if !upgrade {
            for name in HOP_BY_HOP {
                headers.remove(name);
            }
        }
        if let Some(peer) = peer {
            let ip = peer.ip().to_string();
            let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip,
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static("x-forwarded-for"), v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&self.node_id) {
            headers.insert(HeaderName::from_static(FORWARDED_HEADER), v);
        }
    }

    async fn forward_http(&self, sid: &str, owner: &SessionOwner, req: Request) -> Response {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let (mut parts, body) = req.into_parts();
        let Some(uri) = Self::upstream_uri(owner, &parts.uri) else {
            return EngineError::BadRequest.into_response();
        };
        parts.uri = uri;
        self.prepare_headers(&mut parts.headers, peer, false);
        let upstream = Request::from_parts(parts, body);
        match self.client.request(upstream).await {
            Ok(resp) => {
                self.metrics.forwarded("polling");
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    parts.headers.remove(name);
                }
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                self.metrics.forward_error();
                warn!(sid, owner = %owner.node_id, error = %e, "owner unreachable: session dropped");
                self.owner_unreachable(sid, owner).await;
                EngineError::UnknownSid.into_response()
            }
        }
    }

    async fn forward_upgrade(&self, sid: &str, owner: &SessionOwner, mut req: Request) -> Response {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let client_upgrade = hyper::upgrade::on(&mut req);
        let (mut parts, _body) = req.into_parts();
        let Some(uri) = Self::upstream_uri(owner, &parts.uri) else {
            return EngineError::BadRequest.into_response();
        };
        parts.uri = uri;
        self.prepare_headers(&mut parts.headers, peer, true);
        let upstream = Request::from_parts(parts, Body::empty());
        let mut resp = match self.client.request(upstream).await {
            Ok(resp) => resp,
            Err(e) => {
                self.metrics.forward_error();
                warn!(sid, owner = %owner.node_id, error = %e, "owner unreachable: upgrade refused");
                self.owner_unreachable(sid, owner).await;
                return EngineError::UnknownSid.into_response();
            }
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (parts, body) = resp.into_parts();
            return Response::from_parts(parts, Body::new(body));
        }
        self.metrics.forwarded("websocket");
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        let sid = sid.to_string();
        // The client side completes only after our 101 is written: pipe in a task.
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    let piped = tokio::io::copy_bidirectional_with_sizes(
                        &mut client,
                        &mut upstream,
                        PIPE_BUFFER,
                        PIPE_BUFFER,
                    )
                    .await;
                    if let Err(e) = piped {
                        debug!(sid, error = %e, "forwarded websocket ended");
                    }
                }
                Err(e) => debug!(sid, error = %e, "websocket upgrade not completed"),
            }
        });
        let (parts, _) = resp.into_parts();
        Response::from_parts(parts, Body::empty())
    }
}

/// Waits between the tries of a session lookup that Redis failed to answer.
const LOOKUP_RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(200)];

/// Runs a registry read again when Redis failed it (a timeout or a dropped connection
/// under load), at most [`LOOKUP_RETRY_DELAYS`] more times. A failed lookup refuses the
/// request with "Session ID unknown": for a websocket upgrade that leaves the client on
/// polling for the rest of its session (socket.io-client never tries the upgrade again),
/// so a passing hiccup must not decide it.
async fn with_retries<T, F, Fut>(mut read: F) -> Result<T, AdapterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AdapterError>>,
{
    let mut delays = LOOKUP_RETRY_DELAYS.iter();
    loop {
        match read().await {
            Ok(v) => return Ok(v),
            Err(e) => match delays.next() {
                Some(delay) => {
                    debug!(error = %e, "session lookup failed: trying again");
                    tokio::time::sleep(*delay).await;
                }
                None => return Err(e),
            },
        }
    }
}

/// Locks `m`, through a poisoned lock (its data stays consistent: no panic holds it).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The forwarding middleware (cluster mode), outermost in front of socket.io.
pub async fn forward_gate(State(fw): State<Arc<Forwarder>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(ENGINE_PATH) {
        return next.run(req).await;
    }
    let query = EngineQuery::parse(req.uri().query());
    let Some(sid) = query.sid.map(str::to_string) else {
        // A polling handshake: record the new session before the client learns its sid.
        let polling = req.method() == Method::GET && query.transport != Some("websocket");
        let resp = next.run(req).await;
        if !polling || resp.status() != StatusCode::OK {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
            return EngineError::BadRequest.into_response();
        };
        if let Some(sid) = sid_from_open_packet(&bytes) {
            fw.record(&sid).await;
        }
        return Response::from_parts(parts, Body::from(bytes));
    };
    if fw.is_owned(&sid) {
        return next.run(req).await;
    }
    if req.headers().contains_key(FORWARDED_HEADER) {
        // Forwarded here, but not ours (a loop, a stale registry entry, or a client
        // forging the header): never forward twice, never hand an unknown sid to
        // socket.io (which would answer an upgrade with 101-then-close).
        debug!(
            sid,
            "forwarded request for a session this node does not own"
        );
        fw.metrics.forward_error();
        return EngineError::UnknownSid.into_response();
    }
    match fw.owner(&sid).await {
        None => {
            // counted: a refused upgrade leaves its client on polling without a sign
            let transport = if is_upgrade(req.headers()) {
                "websocket"
            } else {
                "polling"
            };
            fw.metrics.forward_refused(transport);
            EngineError::UnknownSid.into_response()
        }
        Some(owner) if owner.node_id == fw.node_id => next.run(req).await,
        Some(owner) => {
            if is_upgrade(req.headers()) {
                fw.forward_upgrade(&sid, &owner, req).await
            } else {
                fw.forward_http(&sid, &owner, req).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_lookup_is_tried_again_then_given_up() {
        let tries = std::cell::Cell::new(0);
        let read = || {
            tries.set(tries.get() + 1);
            let n = tries.get();
            async move {
                if n < 3 {
                    Err(AdapterError::Closed)
                } else {
                    Ok(n)
                }
            }
        };
        assert_eq!(with_retries(read).await.unwrap(), 3);
        tries.set(0);
        let never = || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>(AdapterError::Closed) }
        };
        assert!(with_retries(never).await.is_err());
        assert_eq!(tries.get(), 1 + LOOKUP_RETRY_DELAYS.len());
    }

    #[test]
    fn open_packet_sid_in_v4_and_v3_framing() {
        let v4 = br#"0{"sid":"lv_VI97HAXpY6yYW","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(
            sid_from_open_packet(v4).as_deref(),
            Some("lv_VI97HAXpY6yYW")
        );
        let v3 = br#"96:0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}2:40"#;
        assert_eq!(sid_from_open_packet(v3).as_deref(), Some("abc"));
        assert_eq!(sid_from_open_packet(b"garbage"), None);
        assert_eq!(sid_from_open_packet(b"0{not json}"), None);
        assert_eq!(sid_from_open_packet(&[0xff, 0xfe]), None);
    }

    #[test]
    fn upgrade_header_is_case_insensitive() {
        let mut h = HeaderMap::new();
        assert!(!is_upgrade(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(is_upgrade(&h));
    }
}

//! The node's plain HTTP surface and the gate in front of socket.io.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the demo chat page (when chat is on) |
//! | `GET /assets/socket.io.min.js` | the local client bundle (when `SIO_CLIENT_JS` is set) |
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 when the node takes new sessions, 503 while draining |
//! | `GET /metrics` | Prometheus text |
//! | `/socket.io/` | socket.io, behind [`session_gate`] |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::config::CorsOrigins;
use crate::engine::{ENGINE_PATH, EngineError, EngineQuery};
use crate::metrics::Metrics;

/// What one namespace holds on this node, counted at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceCount {
    /// The namespace's path.
    pub nsp: String,
    /// Rooms with at least one local member.
    pub rooms: usize,
    /// Sockets connected to it on this node.
    pub sockets: usize,
}

/// Counts rooms and sockets per namespace at scrape time (type-erased over the adapter).
pub type NamespaceCounter =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<NamespaceCount>> + Send>> + Send + Sync>;

/// What the HTTP handlers share.
pub struct AppState {
    /// This node's id.
    pub node_id: String,
    /// Set once shutdown starts: not ready, no new sessions.
    pub draining: AtomicBool,
    /// Metrics registry.
    pub metrics: Metrics,
    /// The chat page, rendered at start-up; `None` when chat is off.
    pub index_html: Option<String>,
    /// Local client bundle bytes, when configured.
    pub client_js: Option<Vec<u8>>,
    /// Origins allowed to open sessions.
    pub cors: CorsOrigins,
    /// Room and socket counts for `/metrics`.
    pub namespaces: NamespaceCounter,
    /// The cluster connection, in cluster mode.
    pub cluster: Option<sio_adapter_redis::RedisCluster>,
    /// Per-client-IP handshake limit (`SIO_HANDSHAKE_RATE`); `None`: off.
    pub handshake_limit: Option<crate::limits::HandshakeLimiter>,
    /// Pids waiting for their CONNECT reply (`SIO_RECOVERY_WINDOW_MS`); `None`:
    /// connection state recovery off. See [`crate::connect_reply`].
    pub recovery_pids: Option<crate::connect_reply::PidTable>,
}

impl AppState {
    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Ready for new sessions: not draining, and in cluster mode Redis connected with a
    /// pub/sub round trip seen recently.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.cluster.as_ref().is_none_or(|c| c.is_ready())
    }
}

/// `GET /`.
pub async fn index(State(state): State<Arc<AppState>>) -> Response {
    match &state.index_html {
        Some(html) => Html(html.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "chat demo disabled").into_response(),
    }
}

/// `GET /assets/socket.io.min.js`.
pub async fn client_js(State(state): State<Arc<AppState>>) -> Response {
    match &state.client_js {
        Some(js) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/javascript; charset=utf-8",
                ),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            js.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "node": state.node_id }))
}

/// `GET /readyz`: 200 while the node takes new sessions.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.is_ready() {
        let status = if state.is_draining() {
            "draining"
        } else {
            "redis unavailable"
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": status, "node": state.node_id })),
        )
            .into_response()
    } else {
        Json(serde_json::json!({ "status": "ready", "node": state.node_id })).into_response()
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    for count in (state.namespaces)().await {
        state.metrics.set_rooms(&count.nsp, count.rooms);
        state.metrics.set_sockets(&count.nsp, count.sockets);
    }
    if let Some(cluster) = &state.cluster {
        state
            .metrics
            .set_cluster(&cluster.stats(), cluster.is_ready());
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Middleware in front of socket.io: refuses every request (handshake, poll, upgrade)
/// from an origin outside an explicit `SIO_CORS_ORIGINS` list (403, code 4), new
/// sessions while draining (503) and over the per-IP handshake limit (429, code 4), and
/// counts the sessions opened.
///
/// A request forwarded from another node arrives here at the session's owner with the
/// client's `Origin` header, so going through another node does not skip the check.
pub async fn session_gate(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with(ENGINE_PATH) {
        return next.run(req).await;
    }
    let query = EngineQuery::parse(req.uri().query());
    if !query.is_handshake() {
        if !origin_allowed(&state.cors, req.headers()) {
            state.metrics.error("origin_refused");
            return EngineError::Forbidden.into_response();
        }
        return node_style_error(next.run(req).await).await;
    }
    if state.is_draining() {
        state.metrics.error("handshake_refused");
        return EngineError::ShuttingDown.into_response();
    }
    if !origin_allowed(&state.cors, req.headers()) {
        state.metrics.error("handshake_refused");
        return EngineError::Forbidden.into_response();
    }
    if let Some(limiter) = &state.handshake_limit {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        if let Err(wait) = limiter.admit(peer, req.headers()) {
            state.metrics.rate_limited("handshake");
            tracing::debug!(%peer, wait_ms = wait.as_millis() as u64, "handshake over the rate limit");
            let mut resp = EngineError::TooManyHandshakes.into_response();
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
            return resp;
        }
    }
    let transport = match query.transport {
        Some("websocket") => "websocket",
        _ => "polling",
    };
    let resp = next.run(req).await;
    if resp.status() == StatusCode::OK || resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        state.metrics.handshake(transport);
    }
    node_style_error(resp).await
}

/// engineioxide answers errors as `{"code":"1",...}` (a string) or with an empty body;
/// Node's engine.io sends `{"code":1,...}` (a number), and clients such as
/// python-socketio read it. Rewrites 400 answers to Node's shape; others pass untouched.
async fn node_style_error(resp: Response) -> Response {
    if resp.status() != StatusCode::BAD_REQUEST {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let code = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| match &v["code"] {
                serde_json::Value::String(s) => s.parse::<u8>().ok(),
                serde_json::Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
                _ => None,
            }),
        Err(_) => None,
    };
    let error = match code {
        Some(0) => EngineError::UnknownTransport,
        Some(1) => EngineError::UnknownSid,
        Some(2) => EngineError::BadHandshakeMethod,
        Some(5) => EngineError::UnsupportedVersion,
        _ => EngineError::BadRequest,
    };
    let mut out = error.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// With an explicit origin list, a request carrying an `Origin` header must match it,
/// or be same-origin (its `host[:port]` is the request's `Host`, as for the demo page
/// served by the node itself). Requests without `Origin` (non-browser clients) pass:
/// CORS protects browsers.
fn origin_allowed(cors: &CorsOrigins, headers: &HeaderMap) -> bool {
    let CorsOrigins::List(list) = cors else {
        return true;
    };
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => {
            let same_origin = origin
                .split_once("://")
                .map(|(_, authority)| authority)
                .zip(headers.get(header::HOST).and_then(|h| h.to_str().ok()))
                .is_some_and(|(authority, host)| authority.eq_ignore_ascii_case(host));
            same_origin || list.iter().any(|allowed| allowed == origin)
        }
        Some(Err(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::any;
    use tower::ServiceExt;

    fn state(cors: CorsOrigins) -> Arc<AppState> {
        Arc::new(AppState {
            node_id: "n".into(),
            draining: AtomicBool::new(false),
            metrics: Metrics::new(),
            index_html: None,
            client_js: None,
            cors,
            namespaces: Arc::new(|| Box::pin(async { Vec::new() })),
            cluster: None,
            handshake_limit: None,
            recovery_pids: None,
        })
    }

    /// The gate in front of a stand-in for socket.io that answers 200.
    fn app(state: Arc<AppState>) -> axum::Router {
        axum::Router::new()
            .route("/socket.io/", any(|| async { "engine" }))
            .route("/readyz", axum::routing::get(readyz))
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(state, session_gate))
    }

    async fn call(app: axum::Router, uri: &str, origin: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn draining_refuses_new_sessions_but_serves_existing_ones() {
        let st = state(CorsOrigins::SameOrigin);
        let handshake = "/socket.io/?EIO=4&transport=polling";
        assert_eq!(
            call(app(st.clone()), handshake, None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(app(st.clone()), "/readyz", None).await.0,
            StatusCode::OK
        );

        st.draining.store(true, Ordering::Release);
        let (status, body) = call(app(st.clone()), handshake, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, r#"{"code":3,"message":"Server is shutting down"}"#);
        let existing = "/socket.io/?EIO=4&transport=polling&sid=abc";
        assert_eq!(
            call(app(st.clone()), existing, None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(app(st.clone()), "/readyz", None).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let text = st.metrics.render();
        assert!(
            text.contains("sio_handshakes_total{transport=\"polling\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sio_errors_total{kind=\"handshake_refused\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn foreign_origin_is_forbidden_with_code_4() {
        let st = state(CorsOrigins::List(vec!["https://app.example".into()]));
        let handshake = "/socket.io/?EIO=4&transport=websocket";
        let (status, body) = call(app(st.clone()), handshake, Some("https://evil.example")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body, r#"{"code":4,"message":"Forbidden"}"#);
        let ok = call(app(st), handshake, Some("https://app.example")).await;
        assert_eq!(ok.0, StatusCode::OK);
    }

    #[test]
    fn origin_list_is_enforced_only_when_configured() {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(origin_allowed(&CorsOrigins::SameOrigin, &h));
        assert!(origin_allowed(&CorsOrigins::Any, &h));
        let list = CorsOrigins::List(vec!["https://app.example".into()]);
        assert!(!origin_allowed(&list, &h));
        h.insert(header::ORIGIN, "https://app.example".parse().unwrap());
        assert!(origin_allowed(&list, &h));
        assert!(origin_allowed(&list, &HeaderMap::new()));
        // same-origin: the page was served by this node
        h.insert(header::ORIGIN, "http://node.example:3000".parse().unwrap());
        assert!(!origin_allowed(&list, &h));
        h.insert(header::HOST, "node.example:3000".parse().unwrap());
        assert!(origin_allowed(&list, &h));
        h.insert(header::HOST, "node.example:3001".parse().unwrap());
        assert!(!origin_allowed(&list, &h));
    }
}

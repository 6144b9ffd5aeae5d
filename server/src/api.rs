//! The HTTP emit API (`SIO_API_KEY`): a backend in any language pushes events into the
//! cluster with one HTTP request, no Redis client and no MessagePack.
//!
//! `POST /api/v1/emit` with `Authorization: Bearer <key>` and a JSON body
//!
//! ```json
//! {"nsp": "/", "rooms": ["news"], "except": ["user:bob"], "event": "headline", "args": [{"title": "…"}]}
//! ```
//!
//! emits `event` with `args` (each element one argument; JSON values, so no binary) to the
//! namespace's sockets in any of `rooms` (all of them when empty or absent) but not in
//! `except`, on every node: it is the namespace's broadcast, which the adapter publishes
//! to the cluster as any broadcast. Answers:
//!
//! | status | when |
//! |---|---|
//! | `200 {"ok":true}` | emitted |
//! | `401 {"ok":false,"error":…}` | no or another key (compared in constant time, never logged) |
//! | `400 {"ok":false,"error":…}` | a body that is not such an object, or a namespace this node does not serve |
//! | `413 {"ok":false,"error":…}` | a body over `SIO_MAX_PAYLOAD` |
//! | `503 {"ok":false,"error":…}` | the broadcast could not be sent to the other nodes (Redis away, publish queue full) |
//!
//! The same key and body rules serve the room operations, on every node too:
//! `POST /api/v1/join` and `/api/v1/leave` with `{nsp?, rooms?, except?, join|leave: [..]}`
//! make the selected sockets join or leave rooms (`socketsJoin` / `socketsLeave`), and
//! `POST /api/v1/disconnect` with `{nsp?, rooms?, except?}` disconnects them.
//!
//! Without `SIO_API_KEY` the routes do not exist (404).

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::ser::{Serialize, SerializeTuple, Serializer};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use subtle::ConstantTimeEq;
use tracing::debug;

use crate::metrics::Metrics;

/// The path of the emit endpoint.
pub const EMIT_PATH: &str = "/api/v1/emit";

/// A room operation's body: which sockets (as for an emit), and the rooms to join or leave.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsRequest {
    /// Namespace, `/` when absent.
    #[serde(default = "root")]
    pub nsp: String,
    /// The sockets in any of these rooms; every socket of the namespace when empty.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Sockets in these rooms are left out.
    #[serde(default)]
    pub except: Vec<String>,
    /// `/api/v1/join`: the rooms they join.
    #[serde(default)]
    pub join: Vec<String>,
    /// `/api/v1/leave`: the rooms they leave.
    #[serde(default)]
    pub leave: Vec<String>,
}

/// A room operation.
#[derive(Debug, Clone, Copy)]
enum RoomOp {
    Join,
    Leave,
    Disconnect,
}

/// What the emit endpoint needs.
pub struct EmitApi<A: Adapter> {
    io: SocketIo<A>,
    key: String,
    max_body: usize,
    metrics: Metrics,
}

/// The body of `POST /api/v1/emit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitRequest {
    /// Namespace, `/` when absent.
    #[serde(default = "root")]
    pub nsp: String,
    /// Rooms to emit to; every socket of the namespace when empty.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Rooms whose sockets are left out.
    #[serde(default)]
    pub except: Vec<String>,
    /// Event name.
    pub event: String,
    /// The event's arguments, one per element.
    #[serde(default)]
    pub args: Vec<Value>,
}

fn root() -> String {
    "/".into()
}

/// A list of arguments, serialized as a tuple so socketioxide sends each element as an
/// argument of its own (a `Vec` would be one array argument).
struct Args<'a>(&'a [Value]);

impl Serialize for Args<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for arg in self.0 {
            t.serialize_element(arg)?;
        }
        t.end()
    }
}

impl<A: Adapter> EmitApi<A> {
    /// The endpoint over `io`, for bearer `key`, bodies up to `max_body` bytes.
    pub fn new(io: SocketIo<A>, key: String, max_body: usize, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            io,
            key,
            max_body,
            metrics,
        })
    }

    fn authorized(&self, req: &Request) -> bool {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // constant time over the key's bytes; the length is not a secret worth hiding
        given.len() == self.key.len() && bool::from(given.as_bytes().ct_eq(self.key.as_bytes()))
    }

    /// The body of an authorized request, parsed; `Err`: the answer.
    async fn body<T: serde::de::DeserializeOwned>(
        &self,
        req: Request,
        shape: &str,
    ) -> Result<T, Response> {
        if !self.authorized(&req) {
            return Err(self.refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong API key",
            ));
        }
        let Ok(bytes) = to_bytes(req.into_body(), self.max_body).await else {
            return Err(self.refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("body over {} bytes (SIO_MAX_PAYLOAD)", self.max_body),
            ));
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            self.refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("expected {shape}: {e}"),
            )
        })
    }

    /// Serves `POST /api/v1/join`, `/leave` and `/disconnect`.
    async fn rooms(self: Arc<Self>, req: Request, op: RoomOp) -> Response {
        let request: RoomsRequest = match self
            .body(req, "{nsp?, rooms?, except?, join? | leave?}")
            .await
        {
            Ok(r) => r,
            Err(res) => return res,
        };
        let Some(sockets) = self.io.of(&request.nsp) else {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("namespace {:?} is not served", request.nsp),
            );
        };
        let sockets = sockets.to(request.rooms).except(request.except);
        let done = match op {
            RoomOp::Join => sockets.join(request.join).await.map_err(|e| e.to_string()),
            RoomOp::Leave => sockets
                .leave(request.leave)
                .await
                .map_err(|e| e.to_string()),
            RoomOp::Disconnect => sockets.disconnect().await.map_err(|e| e.to_string()),
        };
        match done {
            Ok(()) => {
                self.metrics.api_request("ok");
                Json(json!({"ok": true})).into_response()
            }
            Err(e) => self.refuse(StatusCode::SERVICE_UNAVAILABLE, "failed", &e),
        }
    }

    /// Serves `POST /api/v1/emit`.
    pub async fn emit(self: Arc<Self>, req: Request) -> Response {
        let request: EmitRequest = match self
            .body(req, "{nsp?, rooms?, except?, event, args?}")
            .await
        {
            Ok(r) => r,
            Err(res) => return res,
        };
        if request.event.is_empty() {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "event must not be empty",
            );
        }
        let Some(op) = self.io.of(&request.nsp) else {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("namespace {:?} is not served", request.nsp),
            );
        };
        let op = op.to(request.rooms).except(request.except);
        match op.emit(&request.event, &Args(&request.args)).await {
            Ok(()) => {
                self.metrics.api_request("ok");
                Json(json!({"ok": true})).into_response()
            }
            Err(e) => {
                debug!(error = %e, "API emit not sent to every node");
                self.refuse(StatusCode::SERVICE_UNAVAILABLE, "failed", &e.to_string())
            }
        }
    }

    fn refuse(&self, status: StatusCode, kind: &'static str, error: &str) -> Response {
        self.metrics.api_request(kind);
        let mut res = Json(json!({"ok": false, "error": error})).into_response();
        *res.status_mut() = status;
        res
    }
}

/// A router with only the API's endpoints, to merge into the node's.
pub fn router<A: Adapter>(api: Arc<EmitApi<A>>) -> axum::Router {
    let emit = api.clone();
    let mut router = axum::Router::new().route(
        EMIT_PATH,
        axum::routing::post(move |req: Request<Body>| {
            let api = emit.clone();
            async move { api.emit(req).await }
        }),
    );
    for (path, op) in [
        ("/api/v1/join", RoomOp::Join),
        ("/api/v1/leave", RoomOp::Leave),
        ("/api/v1/disconnect", RoomOp::Disconnect),
    ] {
        let api = api.clone();
        router = router.route(
            path,
            axum::routing::post(move |req: Request<Body>| {
                let api = api.clone();
                async move { api.rooms(req, op).await }
            }),
        );
    }
    router
}

//! The polling route: CONNECT replies in the bodies of polling `GET`s.
//!
//! [`rewrite_polling`] sits right around socketioxide's layer. A polling `GET` waits until
//! the session has packets, so the reply is usually already on its way when the connect
//! middleware records the pid: the middleware looks at the table when the response is
//! ready, not when the request arrives. Only when the table has a pid for the request's
//! `sid` (socketioxide gives a session's sockets, in every namespace, the Engine.IO
//! session's id, so the query's `sid` is the reply's) is the body collected (engineioxide answers polls with a complete body and its
//! `Content-Length`), split into packets, rewritten ([`super::packet::rewrite_connect`]),
//! and its `Content-Length` set to the new length. Every other response passes through
//! unbuffered, at the cost of one atomic load (and a query parse while some pid is
//! pending anywhere).
//!
//! Engine.IO v4 payloads only (packets separated by the byte `0x1e`, binary packets as
//! `b<base64>`). Engine.IO v3 (`EIO=3`, `<len>:<packet>` framing) passes through untouched:
//! its clients (socket.io-client 2.x) speak Socket.IO protocol v4, whose CONNECT reply has
//! no sid and no pid, and have no connection state recovery.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::PidTable;
use super::packet::{may_be_connect, rewrite_connect};
use crate::engine::{ENGINE_PATH, EngineQuery};

/// The separator of packets in an Engine.IO v4 polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// Middleware (`axum::middleware::from_fn_with_state(table, rewrite_polling)`) adding
/// pids to the CONNECT replies in polling `GET` responses; see the module doc.
pub async fn rewrite_polling(State(table): State<PidTable>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !req.uri().path().starts_with(ENGINE_PATH) {
        return next.run(req).await;
    }
    // A clone of the URI is a reference count (its parts share hyper's bytes).
    let uri = req.uri().clone();
    let res = next.run(req).await;
    if table.is_empty() || res.status() != StatusCode::OK {
        return res;
    }
    let query = EngineQuery::parse(uri.query());
    let Some(sid) = query.sid else {
        return res;
    };
    if query.transport != Some("polling") || query.eio == Some("3") || !table.contains_sid(sid) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::debug!(sid, error = %e, "cannot read a polling response body");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let Some(rewritten) = rewrite_payload(&bytes, &table) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
    Response::from_parts(parts, Body::from(rewritten))
}

/// An Engine.IO v4 polling payload with its CONNECT replies rewritten; `None` when no
/// packet changed.
///
/// ```
/// use sio_server::connect_reply::{PidTable, polling::rewrite_payload};
///
/// let table = PidTable::new();
/// table.insert("/", "X", "P".to_string());
/// let out = rewrite_payload(b"42[\"a\"]\x1e40{\"sid\":\"X\"}", &table);
/// assert_eq!(out.as_deref(), Some(&b"42[\"a\"]\x1e40{\"sid\":\"X\",\"pid\":\"P\"}"[..]));
/// ```
pub fn rewrite_payload(payload: &[u8], table: &PidTable) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut start = 0;
    for packet in payload.split(|&b| b == RECORD_SEPARATOR) {
        let end = start + packet.len();
        let new = may_be_connect(packet)
            .then(|| rewrite_connect(packet, table))
            .flatten();
        match (new, &mut out) {
            (Some(new), out) => {
                let out = out.get_or_insert_with(|| {
                    let mut v = Vec::with_capacity(payload.len() + 32);
                    v.extend_from_slice(&payload[..start]);
                    v
                });
                out.extend_from_slice(&new);
            }
            (None, Some(out)) => out.extend_from_slice(packet),
            (None, None) => {}
        }
        if end < payload.len()
            && let Some(out) = &mut out
        {
            out.push(RECORD_SEPARATOR);
        }
        start = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt as _;

    #[test]
    fn payloads() {
        let t = PidTable::new();
        t.insert("/", "S", "P".into());
        t.insert("/chat", "S", "Q".into());
        let out = rewrite_payload(
            b"40{\"sid\":\"S\"}\x1e42[\"x\"]\x1eb AQID\x1e40/chat,{\"sid\":\"S\"}",
            &t,
        )
        .unwrap();
        assert_eq!(
            out,
            b"40{\"sid\":\"S\",\"pid\":\"P\"}\x1e42[\"x\"]\x1eb AQID\x1e40/chat,{\"sid\":\"S\",\"pid\":\"Q\"}"
        );
        assert!(t.is_empty());

        t.insert("/", "S", "P".into());
        assert_eq!(rewrite_payload(b"", &t), None);
        assert_eq!(rewrite_payload(b"\x1e\x1e", &t), None);
        assert_eq!(rewrite_payload(b"42[\"x\"]\x1e2", &t), None);
        assert_eq!(
            rewrite_payload(b"\x1e40{\"sid\":\"S\"}\x1e", &t).unwrap(),
            b"\x1e40{\"sid\":\"S\",\"pid\":\"P\"}\x1e"
        );
    }

    fn app(table: &PidTable, body: &'static str) -> Router {
        Router::new()
            .route("/socket.io/", get(move || async move { body }))
            .layer(axum::middleware::from_fn_with_state(
                table.clone(),
                rewrite_polling,
            ))
    }

    async fn get_body(app: Router, uri: &str) -> (Option<String>, String) {
        let req = Request::get(uri).body(Body::empty()).unwrap();
        let res = app.oneshot(req).await.unwrap();
        let len = res
            .headers()
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (len, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn rewrites_a_pending_sessions_poll_and_fixes_the_length() {
        let t = PidTable::new();
        t.insert("/", "S", "P".into());
        let app = app(&t, "40{\"sid\":\"S\"}");
        let (len, body) = get_body(app, "/socket.io/?EIO=4&transport=polling&sid=S").await;
        assert_eq!(body, r#"40{"sid":"S","pid":"P"}"#);
        assert_eq!(len.as_deref(), Some("23"));
        assert!(t.is_empty());
    }

    #[tokio::test]
    async fn passes_other_requests_through() {
        let t = PidTable::new();
        t.insert("/", "S", "P".into());
        let reply = "40{\"sid\":\"S\"}";
        for uri in [
            "/socket.io/?EIO=4&transport=polling&sid=other",
            "/socket.io/?EIO=4&transport=polling",
            "/socket.io/?EIO=3&transport=polling&sid=S",
            "/socket.io/?EIO=4&transport=websocket&sid=S",
        ] {
            let (_, body) = get_body(app(&t, reply), uri).await;
            assert_eq!(body, reply, "{uri}");
        }
        assert_eq!(t.len(), 1);
        t.remove("/", "S");
        let (_, body) = get_body(app(&t, reply), "/socket.io/?EIO=4&transport=polling&sid=S").await;
        assert_eq!(body, reply);
    }
}

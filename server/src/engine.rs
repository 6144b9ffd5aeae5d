//! Engine.IO request facts the node needs before socketioxide sees a request: which
//! session a request belongs to (the query string), and Node-compatible error answers.
//!
//! ```
//! use sio_server::engine::EngineQuery;
//!
//! let q = EngineQuery::parse(Some("EIO=4&transport=polling&t=N8hyd6w&sid=lv_VI97HAXpY6yYWAAAC"));
//! assert_eq!(q.sid, Some("lv_VI97HAXpY6yYWAAAC"));
//! assert_eq!(q.transport, Some("polling"));
//! assert_eq!(q.eio, Some("4"));
//! assert!(!q.is_handshake());
//! ```

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The path socket.io serves under.
pub const ENGINE_PATH: &str = "/socket.io/";

/// The Engine.IO parameters of a request's query string. Values are borrowed and left
/// percent-encoded: sids and transport names never contain escapes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineQuery<'a> {
    /// `sid`: present on every request after the handshake.
    pub sid: Option<&'a str>,
    /// `transport`: `polling` or `websocket`.
    pub transport: Option<&'a str>,
    /// `EIO`: protocol version, `4` (or `3` for v2 clients).
    pub eio: Option<&'a str>,
}

impl<'a> EngineQuery<'a> {
    /// Parses a query string (without the leading `?`). Unknown parameters are ignored;
    /// an empty value counts as absent; the first occurrence of a parameter wins.
    pub fn parse(query: Option<&'a str>) -> Self {
        let mut q = EngineQuery::default();
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if value.is_empty() {
                continue;
            }
            let slot = match key {
                "sid" => &mut q.sid,
                "transport" => &mut q.transport,
                "EIO" => &mut q.eio,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        q
    }

    /// A request without `sid` opens a new session.
    pub fn is_handshake(&self) -> bool {
        self.sid.is_none()
    }
}

/// Engine.IO error codes as Node's engine.io numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    /// 0 Transport unknown.
    UnknownTransport,
    /// 1 Session ID unknown.
    UnknownSid,
    /// 2 Bad handshake method.
    BadHandshakeMethod,
    /// 3 Bad request.
    BadRequest,
    /// 4 Forbidden (403).
    Forbidden,
    /// 5 Unsupported protocol version.
    UnsupportedVersion,
    /// The node is draining and takes no new sessions (503, code 3).
    ShuttingDown,
    /// The client's IP is over the handshake rate limit (429, code 4, with
    /// `Retry-After`; see [`crate::limits`]).
    TooManyHandshakes,
}

impl EngineError {
    fn parts(self) -> (StatusCode, u8, &'static str) {
        match self {
            EngineError::UnknownTransport => (StatusCode::BAD_REQUEST, 0, "Transport unknown"),
            EngineError::UnknownSid => (StatusCode::BAD_REQUEST, 1, "Session ID unknown"),
            EngineError::BadHandshakeMethod => (StatusCode::BAD_REQUEST, 2, "Bad handshake method"),
            EngineError::BadRequest => (StatusCode::BAD_REQUEST, 3, "Bad request"),
            EngineError::Forbidden => (StatusCode::FORBIDDEN, 4, "Forbidden"),
            EngineError::UnsupportedVersion => {
                (StatusCode::BAD_REQUEST, 5, "Unsupported protocol version")
            }
            EngineError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                3,
                "Server is shutting down",
            ),
            EngineError::TooManyHandshakes => (
                StatusCode::TOO_MANY_REQUESTS,
                4,
                "Too many handshakes from this address",
            ),
        }
    }
}

impl IntoResponse for EngineError {
    /// `{"code":N,"message":"..."}` with a numeric code, as Node's engine.io answers.
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v3_queries() {
        let q = EngineQuery::parse(Some("EIO=3&transport=websocket&sid=abc"));
        assert_eq!(q.eio, Some("3"));
        assert_eq!(q.transport, Some("websocket"));
        assert_eq!(q.sid, Some("abc"));
    }

    #[test]
    fn handshake_has_no_sid() {
        let q = EngineQuery::parse(Some("EIO=4&transport=polling&t=x"));
        assert!(q.is_handshake());
        assert!(EngineQuery::parse(None).is_handshake());
        assert!(EngineQuery::parse(Some("")).is_handshake());
    }

    #[test]
    fn malformed_pairs_are_ignored() {
        let q = EngineQuery::parse(Some("&&sid&=x&sid=&transport=polling&=&EIO"));
        assert_eq!(q.sid, None);
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.eio, None);
    }

    #[test]
    fn first_occurrence_wins_and_extra_params_pass() {
        let q = EngineQuery::parse(Some("sid=a&foo=bar&sid=b&token=xyz"));
        assert_eq!(q.sid, Some("a"));
    }

    #[test]
    fn keys_are_case_sensitive() {
        let q = EngineQuery::parse(Some("SID=a&eio=4"));
        assert_eq!(q, EngineQuery::default());
    }

    #[tokio::test]
    async fn error_body_matches_node() {
        let resp = EngineError::UnknownSid.into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"code":1,"message":"Session ID unknown"}"#);
    }
}

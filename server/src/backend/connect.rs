//! The connect proxy (`SIO_CONNECT_PROXY_URL`): on each namespace connect the gateway's
//! connect middleware asks the backend, before socketioxide sends the CONNECT packet.
//!
//! Request: `{nsp, sid, node, transport, address, auth, headers, user}` where `headers`
//! holds the handshake's [`FORWARDED_HEADERS`] that are present, `auth` is the handshake's
//! `auth` object as the client sent it, and `user` the JWT's `sub` when JWT auth is on
//! (else `null`).
//!
//! Answer: `200 {"user"?: string, "rooms"?: [string], "data"?: object}` accepts
//! ([`Grant`]); `4xx {"error": string}` refuses with that message; anything else
//! refuses with `backend unavailable`.
//!
//! With JWT auth on, the token is checked first (a bad one never reaches the backend);
//! the backend may then name no `user` (the token's `sub` stays) or the token's `sub`,
//! and naming another refuses the connect: the backend adds rooms and data to a token's
//! identity, it does not replace it.

use serde_json::{Map, Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::Unavailable;
use crate::gateway::check_room_name;

/// The handshake headers sent to the backend, when present.
pub const FORWARDED_HEADERS: [&str; 8] = [
    "cookie",
    "authorization",
    "user-agent",
    "origin",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
    "accept-language",
];

/// Longest user id the backend may give, in bytes.
pub const MAX_USER_LEN: usize = 200;

/// At most this many rooms per connect.
pub const MAX_ROOMS: usize = 256;

/// What an accepting backend gave the socket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grant {
    /// The user: the socket joins `user:<id>`.
    pub user: Option<String>,
    /// Rooms the socket joins.
    pub rooms: Vec<String>,
    /// Kept with the socket: the keys of its `data` in fetched sockets.
    pub data: Map<String, Value>,
}

/// The socket's user and data, kept in its extensions: what fetched sockets show as
/// `data` (`{user, ...data}`) and what the event proxy names as `user`.
#[derive(Debug, Clone, Default)]
pub struct SocketData {
    /// The user id (the backend's, or the token's `sub`).
    pub user: Option<String>,
    /// The backend's `data`.
    pub data: std::sync::Arc<Map<String, Value>>,
}

impl SocketData {
    /// `data` as fetched sockets show it: the backend's keys and `user`.
    pub fn to_json(&self) -> Value {
        let mut map = (*self.data).clone();
        if let Some(user) = &self.user {
            map.insert("user".into(), user.clone().into());
        }
        Value::Object(map)
    }
}

/// The connect request's body for `socket`.
pub fn request<A: Adapter>(
    socket: &SocketRef<A>,
    node: &str,
    user: Option<&str>,
    auth: Option<&Value>,
) -> Value {
    let parts = socket.req_parts();
    let headers: Map<String, Value> = FORWARDED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.into()))
        })
        .collect();
    json!({
        "nsp": socket.ns(),
        "sid": socket.id.as_str(),
        "node": node,
        "transport": serde_json::to_value(socket.transport_type()).unwrap_or(Value::Null),
        "address": crate::cluster::client_address(parts),
        "auth": auth.cloned().unwrap_or_else(|| json!({})),
        "headers": headers,
        "user": user,
    })
}

/// Reads an accepting answer: `user` a non-empty string without control characters,
/// `rooms` valid room names, `data` an object. Anything else is a bad answer.
pub fn grant(mut answer: Map<String, Value>) -> Result<Grant, Unavailable> {
    let user = match answer.remove("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(u))
            if !u.is_empty() && u.len() <= MAX_USER_LEN && !u.chars().any(char::is_control) =>
        {
            Some(u)
        }
        Some(_) => return Err(Unavailable::BadAnswer),
    };
    let rooms = match answer.remove("rooms") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(rooms)) if rooms.len() <= MAX_ROOMS => rooms
            .into_iter()
            .map(|r| match r {
                Value::String(r) if check_room_name(&r).is_ok() => Ok(r),
                _ => Err(Unavailable::BadAnswer),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Unavailable::BadAnswer),
    };
    let data = match answer.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => return Err(Unavailable::BadAnswer),
    };
    Ok(Grant { user, rooms, data })
}

/// The backend named another user than the token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend user does not match the token")]
pub struct UserMismatch;

/// The user a connect ends with, from the token's `sub` and the backend's `user`:
/// `Err` when both are set and differ (see the module's rules).
pub fn combine_user(
    token_sub: Option<&str>,
    granted: Option<String>,
) -> Result<Option<String>, UserMismatch> {
    match (token_sub, granted) {
        (Some(sub), Some(user)) if sub != user => Err(UserMismatch),
        (Some(sub), _) => Ok(Some(sub.to_string())),
        (None, user) => Ok(user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_grant_is_read_strictly() {
        let g = grant(map(
            json!({"user": "alice", "rooms": ["a", "b"], "data": {"plan": "pro"}}),
        ))
        .unwrap();
        assert_eq!(g.user.as_deref(), Some("alice"));
        assert_eq!(g.rooms, ["a", "b"]);
        assert_eq!(g.data["plan"], "pro");
        assert_eq!(grant(map(json!({}))).unwrap(), Grant::default());
        for bad in [
            json!({"user": 7}),
            json!({"user": ""}),
            json!({"user": "a\nb"}),
            json!({"rooms": "a"}),
            json!({"rooms": [1]}),
            json!({"rooms": [""]}),
            json!({"data": [1]}),
        ] {
            assert_eq!(
                grant(map(bad.clone())),
                Err(Unavailable::BadAnswer),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_backend_cannot_rename_a_token_s_user() {
        assert_eq!(combine_user(Some("a"), None), Ok(Some("a".into())));
        assert_eq!(
            combine_user(Some("a"), Some("a".into())),
            Ok(Some("a".into()))
        );
        assert_eq!(combine_user(Some("a"), Some("b".into())), Err(UserMismatch));
        assert_eq!(combine_user(None, Some("b".into())), Ok(Some("b".into())));
        assert_eq!(combine_user(None, None), Ok(None));
    }

    #[test]
    fn fetched_data_is_the_backend_s_keys_and_the_user() {
        let d = SocketData {
            user: Some("alice".into()),
            data: std::sync::Arc::new(map(json!({"plan": "pro", "user": "spoof"}))),
        };
        assert_eq!(d.to_json(), json!({"plan": "pro", "user": "alice"}));
        assert_eq!(SocketData::default().to_json(), json!({}));
    }
}

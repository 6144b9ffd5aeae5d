//! Recoverable sessions, as `@socket.io/redis-streams-adapter` 0.3 stores them for connection
//! state recovery: `SET <sessionKeyPrefix><pid> <value> PX <maxDisconnectionDuration>`, the
//! value being the base64 (standard, padded) of `@msgpack/msgpack`'s encoding of the object
//! `{sid, pid, rooms, data}`. A Node.js node restores such a session with `GETDEL` and reads
//! those four properties; any other property is ignored there, so sio-cluster adds one of its
//! own, `offset`, the stream position the session stood at when it was created (a client that
//! reconnects before receiving any event has no offset of its own).
//!
//! Stream ids are the offsets clients hold ([`is_stream_id`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rmpv::Value;

use super::entry::BASE64_READ;
use super::pubsub::encode_js;
use crate::error::ProtocolError;
use crate::msgpack;

/// A stored session: what a socket gets back when it recovers.
///
/// ```
/// use sio_protocol::streams::{Session, session_key, SESSION_KEY_PREFIX};
///
/// let session = Session {
///     sid: "aaaaaaaaaaaaaaaa".into(),
///     pid: "pPpPpPpPpPpPpPpPpPpP".into(),
///     rooms: vec!["aaaaaaaaaaaaaaaa".into(), "user:ada".into()],
///     data: rmpv::Value::Map(vec![("user".into(), "ada".into())]),
///     offset: Some("1700000000000-0".into()),
/// };
/// let stored = session.encode()?;
/// assert_eq!(Session::decode(stored.as_bytes())?, session);
/// assert_eq!(session_key(SESSION_KEY_PREFIX, &session.pid), "sio:session:pPpPpPpPpPpPpPpPpPpP");
/// # Ok::<(), sio_protocol::ProtocolError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The socket id the session had.
    pub sid: String,
    /// The private session id the client holds (the CONNECT reply's `pid`).
    pub pid: String,
    /// The rooms the socket was in (a Node.js socket's include its own id).
    pub rooms: Vec<String>,
    /// The socket's `data` (sio-cluster keeps the authenticated identity there).
    pub data: Value,
    /// sio-cluster's own: the stream position when the session was created.
    pub offset: Option<String>,
}

/// The Redis key of session `pid`.
pub fn session_key(prefix: &str, pid: &str) -> String {
    format!("{prefix}{pid}")
}

impl Session {
    /// The stored value: base64 of `@msgpack/msgpack`'s encoding of `{sid, pid, rooms, data}`
    /// (plus `offset` when set).
    pub fn encode(&self) -> Result<String, ProtocolError> {
        let mut entries = vec![
            (Value::from("sid"), Value::from(self.sid.as_str())),
            (Value::from("pid"), Value::from(self.pid.as_str())),
            (
                Value::from("rooms"),
                Value::Array(self.rooms.iter().map(|r| Value::from(r.as_str())).collect()),
            ),
            (Value::from("data"), self.data.clone()),
        ];
        if let Some(offset) = &self.offset {
            entries.push((Value::from("offset"), Value::from(offset.as_str())));
        }
        Ok(STANDARD.encode(encode_js(&Value::Map(entries))?))
    }

    /// Reads a stored value (whoever wrote it: a Node.js node or this one). Rooms that are not
    /// strings are skipped; a missing `data` is nil.
    pub fn decode(stored: &[u8]) -> Result<Self, ProtocolError> {
        let bytes = BASE64_READ
            .decode(stored)
            .map_err(|_| ProtocolError::InvalidField {
                field: "session",
                expected: "base64 of MessagePack",
            })?;
        let Value::Map(entries) = msgpack::decode(&bytes)? else {
            return Err(ProtocolError::InvalidField {
                field: "session",
                expected: "a map",
            });
        };
        let get = |name: &str| {
            entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(name))
                .map(|(_, v)| v)
        };
        let string = |name: &'static str| match get(name) {
            Some(Value::String(s)) => {
                s.as_str()
                    .map(str::to_string)
                    .ok_or(ProtocolError::InvalidField {
                        field: name,
                        expected: "a UTF-8 string",
                    })
            }
            Some(_) => Err(ProtocolError::InvalidField {
                field: name,
                expected: "a string",
            }),
            None => Err(ProtocolError::MissingField(name)),
        };
        let rooms = match get("rooms") {
            Some(Value::Array(rooms)) => rooms
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            sid: string("sid")?,
            pid: string("pid")?,
            rooms,
            data: get("data").cloned().unwrap_or(Value::Nil),
            offset: string("offset").ok().filter(|o| is_stream_id(o)),
        })
    }
}

/// Whether `s` is a complete stream entry id, `<ms>-<seq>` in decimal: what a client may hand
/// back as its offset. Anything else (forged, garbage, too long) is not looked up at all.
///
/// ```
/// use sio_protocol::streams::is_stream_id;
/// assert!(is_stream_id("1700000000000-12"));
/// assert!(!is_stream_id("1700000000000"));
/// assert!(!is_stream_id("-1"));
/// assert!(!is_stream_id("1-2-3"));
/// assert!(!is_stream_id("99999999999999999999999-0"));
/// ```
pub fn is_stream_id(s: &str) -> bool {
    let Some((ms, seq)) = s.split_once('-') else {
        return false;
    };
    let part = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u64>().is_ok()
    };
    part(ms) && part(seq)
}

/// Stream id `a` compared with `b` (both [`is_stream_id`]; anything else sorts first).
pub fn compare_stream_ids(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_written_session_is_read() {
        // What the Node adapter stores for {sid, pid, rooms: [sid, "r"], data: {}}
        let js = Value::Map(vec![
            ("sid".into(), "abcdefghijklmnopqrst".into()),
            ("pid".into(), "PIDPIDPIDPIDPIDPIDPI".into()),
            (
                "rooms".into(),
                Value::Array(vec!["abcdefghijklmnopqrst".into(), "r".into(), 3.into()]),
            ),
            ("data".into(), Value::Map(vec![])),
        ]);
        let stored = STANDARD.encode(encode_js(&js).expect("encodes"));
        let s = Session::decode(stored.as_bytes()).expect("decodes");
        assert_eq!(s.sid, "abcdefghijklmnopqrst");
        assert_eq!(s.rooms, vec!["abcdefghijklmnopqrst", "r"]);
        assert_eq!(s.offset, None);
        assert_eq!(s.data, Value::Map(vec![]));
    }

    #[test]
    fn garbage_is_an_error_not_a_session() {
        for bad in [&b"not base64 !!"[..], b"", b"kQ==", b"gqNzaWSj"] {
            assert!(Session::decode(bad).is_err(), "{bad:?}");
        }
        let no_pid = STANDARD
            .encode(encode_js(&Value::Map(vec![("sid".into(), "x".into())])).expect("encodes"));
        assert!(matches!(
            Session::decode(no_pid.as_bytes()),
            Err(ProtocolError::MissingField("pid"))
        ));
    }

    #[test]
    fn stream_ids_order_by_time_then_sequence() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_stream_ids("2-0", "1-9"), Greater);
        assert_eq!(compare_stream_ids("1-10", "1-9"), Greater);
        assert_eq!(compare_stream_ids("1-1", "1-1"), Equal);
        assert_eq!(compare_stream_ids("1-6", "1-5"), Greater);
        assert_eq!(compare_stream_ids("0-0", "1-0"), Less);
    }
}

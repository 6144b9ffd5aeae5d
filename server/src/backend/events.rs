//! The event proxy (`SIO_EVENT_PROXY_URL`, `SIO_EVENT_PROXY_EVENTS`): a client event whose
//! name matches goes to the backend as `{nsp, sid, user, event, args}`, and the backend's
//! answer becomes the client's ack: `200 {"result": any}` → `{ok:true, result}`,
//! `4xx {"error": string}` → `{ok:false, error}`, no usable answer within
//! `SIO_PROXY_TIMEOUT_MS` of the event's arrival → `{ok:false, error:"backend unavailable"}`.
//!
//! **Order.** Each socket has one queue ([`EventQueue`]), filled inline in the socket's
//! receive loop and drained by one task, one request at a time: a socket's events reach
//! the backend in the order it sent them, and a slow backend holds that socket's later
//! events, never another socket's. The queue holds [`QUEUE_LEN`] events; beyond that an
//! event is answered `backend unavailable` at once (counted as `queue_full`).
//!
//! **Binary.** JSON has no bytes: a binary argument (anywhere inside an argument) travels
//! as `{"_binary": "<base64>"}`, and the same object in the backend's `result` becomes
//! bytes again in the ack ([`to_json`], [`from_json`]).

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tracing::debug;

use super::{Answer, Backend, Kind, UNAVAILABLE, Unavailable};
use std::sync::Arc;

/// Events a socket may have waiting for the backend.
pub const QUEUE_LEN: usize = 128;

/// The key of a binary placeholder.
pub const BINARY_KEY: &str = "_binary";

/// Every argument of an event (socketioxide hands a tuple type all of them, binaries
/// put back in place).
#[derive(Debug, Default)]
pub struct ArgList(pub Vec<rmpv::Value>);

impl<'de> Deserialize<'de> for ArgList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Args;
        impl<'de> Visitor<'de> for Args {
            type Value = ArgList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<ArgList, S::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(ArgList(args))
            }
        }
        // a tuple struct: socketioxide then passes every argument, not only the first
        d.deserialize_tuple_struct("ArgList", usize::MAX, Args)
    }
}

/// An argument as JSON: bytes become `{"_binary": base64}`; map keys that are not
/// strings are written as JSON text.
pub fn to_json(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => (*b).into(),
        M::Integer(i) => i
            .as_i64()
            .map(Value::from)
            .or_else(|| i.as_u64().map(Value::from))
            .unwrap_or(Value::Null),
        M::F32(f) => json!(f),
        M::F64(f) => json!(f),
        M::String(s) => s.as_str().map_or(Value::Null, Value::from),
        M::Binary(b) => json!({ BINARY_KEY: STANDARD.encode(b) }),
        M::Array(a) => a.iter().map(to_json).collect(),
        M::Map(m) => m
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    M::String(s) => s.as_str().unwrap_or_default().to_string(),
                    other => to_json(other).to_string(),
                };
                (key, to_json(v))
            })
            .collect::<Map<_, _>>()
            .into(),
        M::Ext(_, _) => Value::Null,
    }
}

/// A backend's JSON as an ack value: `{"_binary": base64}` (that one key, valid base64)
/// becomes bytes.
pub fn from_json(v: Value) -> rmpv::Value {
    use rmpv::Value as M;
    match v {
        Value::Null => M::Nil,
        Value::Bool(b) => M::Boolean(b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => M::from(i),
            (_, Some(u)) => M::from(u),
            _ => M::F64(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => M::from(s),
        Value::Array(a) => M::Array(a.into_iter().map(from_json).collect()),
        Value::Object(m) => {
            if m.len() == 1
                && let Some(Value::String(b64)) = m.get(BINARY_KEY)
                && let Ok(bytes) = STANDARD.decode(b64)
            {
                return M::Binary(bytes);
            }
            M::Map(
                m.into_iter()
                    .map(|(k, v)| (M::from(k), from_json(v)))
                    .collect(),
            )
        }
    }
}

/// The ack of a proxied event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventReply {
    /// `{ok:true, result}`.
    Ok(rmpv::Value),
    /// `{ok:false, error}`.
    Err(String),
}

impl Serialize for EventReply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        match self {
            EventReply::Ok(result) => {
                m.serialize_entry("ok", &true)?;
                m.serialize_entry("result", result)?;
            }
            EventReply::Err(error) => {
                m.serialize_entry("ok", &false)?;
                m.serialize_entry("error", error)?;
            }
        }
        m.end()
    }
}

/// How a proxied event's ack is sent (socketioxide's ack sender, type-erased).
pub type Answerer = Box<dyn FnOnce(EventReply) + Send>;

/// One event waiting for the backend.
pub struct Job {
    /// The event name.
    pub event: String,
    /// Its arguments as JSON.
    pub args: Vec<Value>,
    /// Answered by then at the latest.
    pub deadline: Instant,
    /// Sends the ack.
    pub answer: Answerer,
}

/// A socket's queue of proxied events, kept in its extensions.
#[derive(Clone)]
pub struct EventQueue(mpsc::Sender<Job>);

impl EventQueue {
    /// Starts the queue of socket `sid` of `nsp` (user `user`) and its draining task,
    /// which ends once the queue is dropped with the socket and emptied.
    pub fn start(backend: Arc<Backend>, nsp: String, sid: String, user: Option<String>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_LEN);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let Some(url) = backend.config().event_url.clone() else {
                    return;
                };
                let body = json!({
                    "nsp": nsp, "sid": sid, "user": user, "event": job.event, "args": job.args,
                });
                let reply = match backend
                    .call(Kind::Event, &url, &body, Some(job.deadline))
                    .await
                {
                    Ok(Answer::Ok(mut answer)) => {
                        EventReply::Ok(from_json(answer.remove("result").unwrap_or(Value::Null)))
                    }
                    Ok(Answer::Refused(error)) => EventReply::Err(error),
                    Err(_) => EventReply::Err(UNAVAILABLE.into()),
                };
                (job.answer)(reply);
            }
        });
        Self(tx)
    }

    /// Queues `job` (inline: this fixes its place in the socket's order). A full queue
    /// answers it `backend unavailable` at once.
    pub fn push(&self, job: Job, backend: &Backend) {
        if let Err(e) = self.0.try_send(job) {
            let job = match e {
                mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job) => {
                    job
                }
            };
            debug!(event = %job.event, "event queue full");
            backend.count_error(Unavailable::QueueFull);
            (job.answer)(EventReply::Err(UNAVAILABLE.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_travels_as_base64_placeholders_both_ways() {
        let arg = rmpv::Value::Map(vec![
            ("name".into(), "f".into()),
            ("bytes".into(), rmpv::Value::Binary(vec![0, 1, 255])),
            (
                "list".into(),
                rmpv::Value::Array(vec![1.into(), rmpv::Value::Nil]),
            ),
        ]);
        let j = to_json(&arg);
        assert_eq!(
            j,
            json!({"name": "f", "bytes": {"_binary": "AAH/"}, "list": [1, null]})
        );
        assert_eq!(from_json(j), arg);
        // not a placeholder: two keys, or not base64
        let two = json!({"_binary": "AAH/", "x": 1});
        assert!(matches!(from_json(two), rmpv::Value::Map(m) if m.len() == 2));
        assert!(matches!(
            from_json(json!({"_binary": "!"})),
            rmpv::Value::Map(_)
        ));
    }

    #[test]
    fn replies_have_the_ack_shape() {
        let ok = serde_json::to_value(EventReply::Ok(rmpv::Value::from(3))).unwrap();
        assert_eq!(ok, json!({"ok": true, "result": 3}));
        let err = serde_json::to_value(EventReply::Err("no".into())).unwrap();
        assert_eq!(err, json!({"ok": false, "error": "no"}));
    }
}

//! What socketioxide has no words for: ids of sockets on Node.js nodes, and server-side
//! events between nodes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketioxide_core::{Sid, Uid};
use tracing::debug;

use crate::AdapterError;
use crate::cluster::RedisCluster;
use crate::protocol::{Request, Response, ServerSideEmitRequest};

/// Most foreign ids remembered; the map starts over when full (a fetched socket's
/// operations use its id within moments of the fetch).
const MAX_IDS: usize = 100_000;

/// socketioxide ids are exactly 16 characters; Node's socket ids are 20. A foreign id
/// gets a stable 16-character stand-in, remembered so operations on it reach the real id.
#[derive(Default)]
pub(crate) struct IdMap {
    foreign: Mutex<HashMap<Sid, String>>,
    seed: std::collections::hash_map::RandomState,
}

impl IdMap {
    /// The [`Sid`] for a socket id seen on the wire.
    pub(crate) fn to_sid(&self, id: &str) -> Sid {
        if let Ok(sid) = id.parse::<Sid>() {
            return sid;
        }
        let sid = self.stand_in(id);
        let mut map = self.foreign.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_IDS {
            map.clear();
        }
        map.insert(sid, id.to_string());
        sid
    }

    /// The id on the wire (and the socket's own room) for a [`Sid`].
    pub(crate) fn wire_id(&self, sid: Sid) -> String {
        let map = self.foreign.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&sid).cloned().unwrap_or_else(|| sid.to_string())
    }

    fn stand_in(&self, id: &str) -> Sid {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(16);
        for round in 0..2u8 {
            let mut h = self.seed.build_hasher();
            h.write_u8(round);
            h.write(id.as_bytes());
            let mut bits = h.finish();
            for _ in 0..8 {
                out.push(ALPHABET[(bits & 63) as usize] as char);
                bits >>= 6;
            }
        }
        // 16 characters of the base64url alphabet always parse.
        out.parse().unwrap_or(Sid::ZERO)
    }
}

/// What a node tells other nodes about one of its sockets when they fetch it
/// (`fetchSockets` in Node gives `handshake` and `data`).
#[derive(Debug, Clone, Default)]
pub struct SocketInfo {
    /// The socket's handshake.
    pub handshake: crate::protocol::Handshake,
    /// Application data (Node's `socket.data`).
    pub data: serde_json::Value,
}

/// Describes a local socket of a namespace, for fetch answers.
pub(crate) type SocketInfoProvider = Arc<dyn Fn(&str, Sid) -> Option<SocketInfo> + Send + Sync>;

/// The server id reported for sockets on other nodes (responses do not name their node).
pub(crate) const REMOTE_UID: Uid = Uid::ZERO;

/// A server-side event from another node (`io.serverSideEmit(..)` in Node).
pub struct ServerSideEvent {
    /// The event name.
    pub event: String,
    /// Its arguments.
    pub args: Vec<serde_json::Value>,
    ack: Option<ServerSideAck>,
}

impl ServerSideEvent {
    /// Whether the sender waits for an answer.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Answers the sender (once; later calls and events without ack do nothing).
    pub fn ack(&mut self, data: serde_json::Value) {
        if let Some(ack) = self.ack.take() {
            ack.send(data);
        }
    }
}

struct ServerSideAck {
    cluster: RedisCluster,
    nsp: String,
    /// The requesting node (some modes answer on its own channel).
    requester: Option<String>,
    request_id: String,
}

impl ServerSideAck {
    fn send(self, data: serde_json::Value) {
        let response = Response::ServerSideEmit(crate::protocol::ServerSideEmitResponse {
            request_id: self.request_id,
            data: Some(data),
        });
        self.cluster
            .respond(&self.nsp, self.requester.as_deref(), response);
    }
}

/// Handles server-side events of one namespace.
pub(crate) type ServerSideHandler = Arc<dyn Fn(ServerSideEvent) + Send + Sync>;

impl RedisCluster {
    /// Registers the handler for server-side events sent to namespace `nsp` by other
    /// nodes (Rust or Node.js, `io.serverSideEmit(event, ...args)`). Replaces any
    /// previous one.
    ///
    /// ```no_run
    /// # fn demo(cluster: sio_adapter_redis::RedisCluster) {
    /// cluster.on_server_side_emit("/", |mut ev| {
    ///     if ev.event == "ping" {
    ///         ev.ack(serde_json::json!("pong"));
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on_server_side_emit(
        &self,
        nsp: &str,
        handler: impl Fn(ServerSideEvent) + Send + Sync + 'static,
    ) {
        self.set_server_side_handler(nsp, Arc::new(handler));
    }

    /// Registers how to describe a local socket (`handshake`, `data`) when another node
    /// fetches it. Without one, fetched sockets have an empty handshake and `{}` data.
    pub fn set_socket_info(
        &self,
        provider: impl Fn(&str, Sid) -> Option<SocketInfo> + Send + Sync + 'static,
    ) {
        self.set_socket_info_provider(Arc::new(provider));
    }

    /// Sends a server-side event to every other node serving `nsp`.
    pub async fn server_side_emit(
        &self,
        nsp: &str,
        event: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<(), AdapterError> {
        let request = Request::ServerSideEmit(ServerSideEmitRequest {
            uid: Some(self.uid().to_string()),
            request_id: None,
            data: ServerSideEmitRequest::data_for(event, args),
        });
        self.publish_request(nsp, request)
    }

    /// Sends a server-side event to every other node serving `nsp` and waits (at most
    /// `timeout`, default the configured request timeout) for each one's answer.
    pub async fn server_side_emit_with_ack(
        &self,
        nsp: &str,
        event: &str,
        args: Vec<serde_json::Value>,
        timeout: Option<Duration>,
    ) -> Result<Vec<serde_json::Value>, AdapterError> {
        let request = Request::ServerSideEmit(ServerSideEmitRequest {
            uid: Some(self.uid().to_string()),
            request_id: Some(crate::protocol::new_request_id()),
            data: ServerSideEmitRequest::data_for(event, args),
        });
        let timeout = timeout.unwrap_or(self.request_timeout());
        let responses = self.request(nsp, request, timeout).await?;
        Ok(responses
            .into_iter()
            .filter_map(|r| match r {
                Response::ServerSideEmit(r) => Some(r.data.unwrap_or(serde_json::Value::Null)),
                _ => None,
            })
            .collect())
    }

    /// How many nodes serve namespace `nsp` (this one included): `PUBSUB NUMSUB` of its
    /// request channel, as Node's `serverCount()`.
    pub async fn server_count(&self, nsp: &str) -> Result<usize, AdapterError> {
        self.node_count(nsp).await
    }

    /// Cluster requests still waiting for answers (each is removed when answered or timed out).
    pub fn pending_requests(&self) -> usize {
        self.pending().len()
    }

    /// Hands a received server-side event to the namespace's handler.
    pub(crate) fn dispatch_server_side(&self, nsp: &str, request: ServerSideEmitRequest) {
        let Some(handler) = self.server_side_handler(nsp) else {
            debug!(nsp, "server-side event without a handler ignored");
            return;
        };
        let mut data = request.data.into_iter();
        let Some(serde_json::Value::String(event)) = data.next() else {
            debug!(nsp, "server-side event without a name ignored");
            return;
        };
        let ack = request.request_id.map(|request_id| ServerSideAck {
            cluster: self.clone(),
            nsp: nsp.to_string(),
            requester: request.uid.clone(),
            request_id,
        });
        handler(ServerSideEvent {
            event,
            args: data.collect(),
            ack,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_ids_pass_and_foreign_ids_get_stable_stand_ins() {
        let map = IdMap::default();
        let native = Sid::new();
        assert_eq!(map.to_sid(&native.to_string()), native);
        assert_eq!(map.wire_id(native), native.to_string());

        let node_id = "lv_VI97HAXpY6yYWAAAC";
        let a = map.to_sid(node_id);
        assert_eq!(a, map.to_sid(node_id));
        assert_eq!(a.to_string().len(), 16);
        assert_eq!(map.wire_id(a), node_id);
        assert_ne!(map.to_sid("another-node-id-0001"), a);
    }
}

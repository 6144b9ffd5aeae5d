//! What the node plugs into its cluster member: how local sockets are described to
//! nodes that fetch them, and what to do with other nodes' server-side events.

use std::sync::Arc;

use socketioxide_core::Sid;

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

/// A server-side event from another node (`io.serverSideEmit(..)` in Node).
pub struct ServerSideEvent {
    /// The event name.
    pub event: String,
    /// Its arguments.
    pub args: Vec<serde_json::Value>,
    ack: Option<Box<dyn FnOnce(serde_json::Value) + Send + Sync>>,
}

impl ServerSideEvent {
    /// An event, answered through `ack` when the sender waits for an answer.
    pub(crate) fn new(
        event: String,
        args: Vec<serde_json::Value>,
        ack: Option<Box<dyn FnOnce(serde_json::Value) + Send + Sync>>,
    ) -> Self {
        Self { event, args, ack }
    }

    /// Whether the sender waits for an answer.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Answers the sender (once; later calls and events without ack do nothing).
    pub fn ack(&mut self, data: serde_json::Value) {
        if let Some(ack) = self.ack.take() {
            ack(data);
        }
    }
}

/// Handles server-side events of one namespace.
pub(crate) type ServerSideHandler = Arc<dyn Fn(ServerSideEvent) + Send + Sync>;

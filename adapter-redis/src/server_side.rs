//! The cluster API socketioxide has no words for: server-side events between nodes
//! (Node's `io.serverSideEmit`), the server count, and how local sockets are described to
//! nodes that fetch them.

use std::sync::Arc;
use std::time::Duration;

use socketioxide_core::Sid;
use tracing::debug;

use crate::AdapterError;
use crate::cluster::RedisCluster;
use crate::hooks::{ServerSideEvent, SocketInfo};
use crate::protocol::{Request, Response, ServerSideEmitRequest, ServerSideEmitResponse};

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
        let ack = request.request_id.map(|request_id| {
            let (cluster, nsp, requester) = (self.clone(), nsp.to_string(), request.uid.clone());
            Box::new(move |data| {
                let response = Response::ServerSideEmit(ServerSideEmitResponse {
                    request_id,
                    data: Some(data),
                });
                cluster.respond(&nsp, requester.as_deref(), response);
            }) as Box<dyn FnOnce(serde_json::Value) + Send + Sync>
        });
        handler(ServerSideEvent::new(event, data.collect(), ack));
    }
}

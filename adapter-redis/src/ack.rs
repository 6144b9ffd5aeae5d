//! [`AckStream`]: the acknowledgements of a broadcast-with-ack across the cluster.
//!
//! Local clients' acks come from socketioxide's own stream. Each other node first says
//! how many of its clients got the packet (`BROADCAST_CLIENT_COUNT`), then sends one
//! `BROADCAST_ACK` per client answer. The stream ends when every node has counted and
//! every counted client has answered, or at the timeout; each ack still missing then
//! is yielded as a timeout error, as socketioxide does for local sockets.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};
use socketioxide_core::Sid;
use socketioxide_core::adapter::{AckStreamItem, SocketEmitter};
use tokio::sync::mpsc;

use crate::protocol::Response;
use crate::requests::StreamGuard;

/// Turns a remote client's answer into the value the namespace's parser hands out (its
/// `encode_value`); `None` when it cannot.
pub(crate) type AckDecoder =
    Box<dyn Fn(&rmpv::Value) -> Option<socketioxide_core::Value> + Send + Sync>;

/// The other nodes' side of a broadcast-with-ack.
pub(crate) struct RemoteAcks {
    /// Turns a remote client's answer into the value the namespace's parser hands out.
    pub(crate) decode: AckDecoder,
    pub(crate) rx: mpsc::UnboundedReceiver<Response>,
    /// Keeps the request registered while the stream lives.
    pub(crate) _guard: StreamGuard,
    pub(crate) deadline: Pin<Box<tokio::time::Sleep>>,
    /// Other nodes that must report a client count.
    pub(crate) nodes: usize,
    pub(crate) counted: usize,
    pub(crate) clients: u64,
    pub(crate) acked: u64,
    /// Timeouts still to yield after the deadline.
    pub(crate) missing: Option<u64>,
}

/// Acknowledgements from local and remote clients, in arrival order. Remote acks carry
/// [`Sid::ZERO`]: the Node protocol does not say which socket answered.
pub struct AckStream<E: SocketEmitter> {
    pub(crate) local: Option<Pin<Box<E::AckStream>>>,
    pub(crate) remote: Option<RemoteAcks>,
}

impl<E: SocketEmitter> AckStream<E> {
    pub(crate) fn new(local: E::AckStream, remote: Option<RemoteAcks>) -> Self {
        Self {
            local: Some(Box::pin(local)),
            remote,
        }
    }
}

impl RemoteAcks {
    fn complete(&self) -> bool {
        self.counted >= self.nodes && self.acked >= self.clients
    }

    fn poll_item<Err: serde::de::DeserializeOwned>(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<AckStreamItem<Err>>> {
        if let Some(missing) = self.missing.as_mut() {
            if *missing == 0 {
                return Poll::Ready(None);
            }
            *missing -= 1;
            return match serde_json::from_value::<Err>(serde_json::json!("Timeout")) {
                Ok(err) => Poll::Ready(Some((Sid::ZERO, Err(err)))),
                Err(_) => Poll::Ready(None),
            };
        }
        loop {
            if self.complete() {
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Response::BroadcastClientCount(c))) => {
                    self.counted += 1;
                    self.clients += c.client_count;
                }
                Poll::Ready(Some(Response::BroadcastAck(ack))) => {
                    self.acked += 1;
                    let arg = ack.packet.unwrap_or(rmpv::Value::Nil);
                    if let Some(value) = (self.decode)(&arg) {
                        return Poll::Ready(Some((Sid::ZERO, Ok(value))));
                    }
                }
                Poll::Ready(Some(_)) => {}
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    if self.deadline.as_mut().poll(cx).is_ready() {
                        // Clients counted but silent time out; nodes that never counted
                        // add nothing we could name.
                        self.missing = Some(self.clients.saturating_sub(self.acked));
                        return self.poll_item(cx);
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<E: SocketEmitter> Stream for AckStream<E> {
    type Item = AckStreamItem<E::AckError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin: the local stream and the sleep are boxed.
        let this = self.get_mut();
        if let Some(local) = this.local.as_mut() {
            match local.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Ready(None) => this.local = None,
                Poll::Pending => {}
            }
        }
        if let Some(remote) = this.remote.as_mut() {
            match remote.poll_item(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Ready(None) => this.remote = None,
                Poll::Pending => {}
            }
        }
        if this.local.is_none() && this.remote.is_none() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl<E: SocketEmitter> FusedStream for AckStream<E> {
    fn is_terminated(&self) -> bool {
        self.local.is_none() && self.remote.is_none()
    }
}

//! Requests this node sends to the others and the answers it waits for.
//!
//! Every pending request lives in one map until it is answered by every other node or
//! times out; a guard removes it in either case (and if the caller gives up), so the
//! map never grows without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::AdapterError;
use crate::protocol::{IncomingResponse, RequestType, Response};

struct Entry {
    kind: RequestType,
    expected: usize,
    responses: Vec<Response>,
    done: Option<oneshot::Sender<Vec<Response>>>,
    /// For broadcast-with-ack: every response is forwarded here instead.
    stream: Option<mpsc::UnboundedSender<Response>>,
}

/// The requests waiting for answers.
#[derive(Default)]
pub(crate) struct Pending {
    map: Mutex<HashMap<String, Entry>>,
}

/// What became of a payload on the classic response channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseOutcome {
    /// An answer to one of this node's pending requests, handed over.
    Delivered,
    /// A well-formed answer to someone else's request (or to one that already ended).
    NotOurs,
    /// Not a response, or the wrong shape for the request it names: counted and dropped.
    Malformed,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes an untyped response (typed by its pending request) to its request.
    /// Every node receives every answer on the shared response channel, so a response to
    /// a request this node did not send (or that already completed) is normal:
    /// [`ResponseOutcome::NotOurs`]. A payload that is not a response at all, or an answer
    /// of the wrong shape for our request, is [`ResponseOutcome::Malformed`].
    pub(crate) fn on_response(&self, payload: &[u8]) -> ResponseOutcome {
        let incoming = match IncomingResponse::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "malformed response dropped");
                return ResponseOutcome::Malformed;
            }
        };
        let kind = match self.lock().get(incoming.request_id()) {
            Some(entry) => entry.kind,
            None => return ResponseOutcome::NotOurs,
        };
        match incoming.into_response(kind) {
            Ok(response) => self.on_typed_response(response),
            Err(e) => {
                warn!(error = %e, "response of the wrong shape dropped");
                ResponseOutcome::Malformed
            }
        }
    }

    /// Routes a decoded response to its request (see [`Pending::on_response`]).
    pub(crate) fn on_typed_response(&self, response: Response) -> ResponseOutcome {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(response.request_id()) else {
            return ResponseOutcome::NotOurs;
        };
        if let Some(stream) = &entry.stream {
            let _ = stream.send(response);
            return ResponseOutcome::Delivered;
        }
        entry.responses.push(response);
        if entry.responses.len() >= entry.expected
            && let Some(done) = entry.done.take()
        {
            let responses = std::mem::take(&mut entry.responses);
            let _ = done.send(responses);
        }
        ResponseOutcome::Delivered
    }

    /// How many requests are waiting (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Keeps a streamed request registered; removes it when dropped.
pub(crate) struct StreamGuard {
    pending: Arc<Pending>,
    id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl Pending {
    /// Registers request `id` whose responses are forwarded to the returned receiver
    /// for as long as the guard lives.
    pub(crate) fn register_stream(
        self: &Arc<Self>,
        id: String,
        kind: RequestType,
    ) -> (StreamGuard, mpsc::UnboundedReceiver<Response>) {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(
            id.clone(),
            Entry {
                kind,
                expected: usize::MAX,
                responses: Vec::new(),
                done: None,
                stream: Some(tx),
            },
        );
        (
            StreamGuard {
                pending: self.clone(),
                id,
            },
            rx,
        )
    }
}

/// A request registered to collect a given number of answers: removed from the map
/// when dropped, whatever happened.
pub(crate) struct Waiting {
    pending: Arc<Pending>,
    id: String,
    kind: RequestType,
    expected: usize,
    rx: oneshot::Receiver<Vec<Response>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.id);
    }
}

impl Pending {
    /// Registers request `id` of type `kind`, complete once `expected` answers came.
    /// Register before publishing, so no early answer is missed.
    pub(crate) fn expect(
        self: &Arc<Self>,
        id: String,
        kind: RequestType,
        expected: usize,
    ) -> Waiting {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            id.clone(),
            Entry {
                kind,
                expected,
                responses: Vec::new(),
                done: Some(tx),
                stream: None,
            },
        );
        Waiting {
            pending: self.clone(),
            id,
            kind,
            expected,
            rx,
        }
    }
}

impl Waiting {
    /// Every expected answer, or a timeout error saying how many came.
    pub(crate) async fn answers(
        mut self,
        timeout: Duration,
    ) -> Result<Vec<Response>, AdapterError> {
        match tokio::time::timeout(timeout, &mut self.rx).await {
            Ok(Ok(responses)) => Ok(responses),
            Ok(Err(_)) => Err(AdapterError::Closed),
            Err(_) => {
                let answered = self
                    .pending
                    .lock()
                    .get(&self.id)
                    .map(|e| e.responses.len())
                    .unwrap_or(0);
                Err(AdapterError::Timeout {
                    kind: format!("{:?}", self.kind),
                    timeout,
                    answered,
                    expected: self.expected,
                })
            }
        }
    }
}

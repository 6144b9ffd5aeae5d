//! The app's backend behind the gateway (issue #19): the **connect proxy** asks it whether
//! a socket may connect (and as whom, in which rooms), the **event proxy** hands it the
//! client events that match `SIO_EVENT_PROXY_EVENTS` and returns its answer as the ack.
//! Every request is a signed JSON `POST` ([`signature`]).
//!
//! [`Backend::call`] is the one way out: a pooled HTTP/1 client, a per-node cap on
//! requests in flight (`SIO_PROXY_CONCURRENCY`, a semaphore), and a deadline
//! (`SIO_PROXY_TIMEOUT_MS`) covering the wait for a slot, the connection, the request
//! and the answer's body. Its answer is [`Answer::Ok`] (2xx, a JSON object),
//! [`Answer::Refused`] (4xx with a JSON `error` string) or [`Unavailable`] (anything
//! else: unreachable, timeout, 5xx, garbage), which the client sees as
//! `backend unavailable`. A slow backend holds only the sockets waiting for it: nothing
//! else on the node waits for a request.
//!
//! - [`connect`]: the request a namespace connect makes and what the answer grants.
//! - [`events`]: the per-socket queue of proxied events and how arguments (binary
//!   included) travel as JSON.

pub mod connect;
pub mod events;
pub mod signature;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::debug;

use crate::metrics::Metrics;
use crate::patterns::RoomPatterns;
use signature::WebhookSecret;

/// The message a client gets when the backend could not answer.
pub const UNAVAILABLE: &str = "backend unavailable";

/// Largest answer body read from the backend, in bytes.
pub const MAX_ANSWER: usize = 1 << 20;

/// The backend settings (`SIO_CONNECT_PROXY_URL`, `SIO_EVENT_PROXY_URL`, …), checked.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// Where namespace connects are asked; `None`: no connect proxy.
    pub connect_url: Option<Uri>,
    /// Where matching events are sent; `None`: no event proxy.
    pub event_url: Option<Uri>,
    /// Which event names are proxied.
    pub events: RoomPatterns,
    /// The signing key.
    pub secret: WebhookSecret,
    /// Deadline of one request, from the moment it is asked for.
    pub timeout: Duration,
    /// Requests in flight at most, per node.
    pub concurrency: usize,
}

/// What a request is for: its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A namespace connect.
    Connect,
    /// A client event.
    Event,
}

impl Kind {
    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Connect => "connect",
            Kind::Event => "event",
        }
    }
}

/// The backend's answer to a request it handled.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 2xx with a JSON object.
    Ok(serde_json::Map<String, Value>),
    /// 4xx with `{"error": string}`: the message the client gets.
    Refused(String),
}

/// Why the backend gave no usable answer; the client sees [`UNAVAILABLE`]. Each is a
/// `sio_proxy_errors_total` kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No answer within the deadline (slot, connection and answer included).
    #[error("timeout")]
    Timeout,
    /// Every slot (`SIO_PROXY_CONCURRENCY`) stayed taken until the deadline.
    #[error("saturated")]
    Saturated,
    /// The connection failed.
    #[error("unreachable")]
    Unreachable,
    /// A 5xx, or a status that is neither 2xx nor 4xx.
    #[error("status")]
    Status,
    /// A body that is not the JSON the protocol asks for, or too large.
    #[error("bad_answer")]
    BadAnswer,
    /// The socket's event queue was full.
    #[error("queue_full")]
    QueueFull,
}

impl Unavailable {
    /// Every kind, for metrics registered at 0.
    pub const ALL: [Unavailable; 6] = [
        Unavailable::Timeout,
        Unavailable::Saturated,
        Unavailable::Unreachable,
        Unavailable::Status,
        Unavailable::BadAnswer,
        Unavailable::QueueFull,
    ];

    /// The `sio_proxy_errors_total` kind.
    pub fn label(self) -> &'static str {
        match self {
            Unavailable::Timeout => "timeout",
            Unavailable::Saturated => "saturated",
            Unavailable::Unreachable => "unreachable",
            Unavailable::Status => "status",
            Unavailable::BadAnswer => "bad_answer",
            Unavailable::QueueFull => "queue_full",
        }
    }
}

/// The node's link to the backend, shared by every namespace.
pub struct Backend {
    config: BackendConfig,
    node: String,
    client: Client<HttpConnector, Body>,
    slots: Semaphore,
    metrics: Metrics,
}

impl Backend {
    /// The link for `config`, on behalf of node `node`.
    pub fn new(config: BackendConfig, node: String, metrics: Metrics) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Arc::new(Self {
            slots: Semaphore::new(config.concurrency),
            config,
            node,
            client,
            metrics,
        })
    }

    /// The settings.
    pub fn config(&self) -> &BackendConfig {
        &self.config
    }

    /// This node's id, as the connect request names it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Counts a request that never left the node.
    pub fn count_error(&self, error: Unavailable) {
        self.metrics.proxy_error(error.label());
    }

    /// Whether `event` goes to the backend: an event proxy is set, the name matches
    /// `SIO_EVENT_PROXY_EVENTS`, and it is not one of the gateway's own events.
    pub fn proxies_event(&self, event: &str) -> bool {
        self.config.event_url.is_some()
            && !matches!(event, "join" | "leave" | "publish")
            && self.config.events.matches(event)
    }

    /// POSTs `body` (signed) to `url` and reads the answer, within `deadline` (at the
    /// latest: the configured timeout from now). Counted by kind and outcome.
    pub async fn call(
        &self,
        kind: Kind,
        url: &Uri,
        body: &Value,
        deadline: Option<Instant>,
    ) -> Result<Answer, Unavailable> {
        let started = Instant::now();
        let deadline = deadline.unwrap_or(started + self.config.timeout);
        let deadline = tokio::time::Instant::from(deadline);
        let outcome = match tokio::time::timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(_slot)) => match tokio::time::timeout_at(deadline, self.send(url, body)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Unavailable::Timeout),
            },
            _ => Err(Unavailable::Saturated),
        };
        self.metrics
            .proxy_request(kind.label(), outcome_label(&outcome), started.elapsed());
        if let Err(e) = &outcome {
            self.metrics.proxy_error(e.label());
            debug!(kind = kind.label(), error = %e, "backend unavailable");
        }
        outcome
    }

    async fn send(&self, url: &Uri, body: &Value) -> Result<Answer, Unavailable> {
        let body = serde_json::to_vec(body).map_err(|_| Unavailable::BadAnswer)?;
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let signature = self.config.secret.sign(&id, timestamp, &body);
        let request = Request::post(url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "sio-cluster")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(Body::from(body))
            .map_err(|_| Unavailable::Unreachable)?;
        let response = self.client.request(request).await.map_err(|e| {
            debug!(error = %e, "backend request failed");
            Unavailable::Unreachable
        })?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_ANSWER)
            .await
            .map_err(|_| Unavailable::BadAnswer)?;
        read_answer(status, &bytes)
    }
}

/// The protocol's reading of an answer: 2xx with a JSON object, 4xx with
/// `{"error": string}`; anything else is unavailable.
fn read_answer(status: StatusCode, body: &[u8]) -> Result<Answer, Unavailable> {
    if status.is_success() {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Answer::Ok(map)),
            _ => Err(Unavailable::BadAnswer),
        }
    } else if status.is_client_error() {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => match map.get("error") {
                Some(Value::String(e)) if !e.is_empty() => Ok(Answer::Refused(shorten(e))),
                _ => Err(Unavailable::BadAnswer),
            },
            _ => Err(Unavailable::BadAnswer),
        }
    } else {
        Err(Unavailable::Status)
    }
}

/// A backend's error message, cut at 256 characters for the client.
fn shorten(message: &str) -> String {
    message.chars().take(256).collect()
}

fn outcome_label(outcome: &Result<Answer, Unavailable>) -> &'static str {
    match outcome {
        Ok(Answer::Ok(_)) => "ok",
        Ok(Answer::Refused(_)) => "refused",
        Err(_) => "unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_status_and_shape() {
        let ok = read_answer(StatusCode::OK, br#"{"user":"a"}"#).unwrap();
        assert!(matches!(ok, Answer::Ok(m) if m["user"] == "a"));
        assert_eq!(
            read_answer(StatusCode::FORBIDDEN, br#"{"error":"no"}"#),
            Ok(Answer::Refused("no".into()))
        );
        assert_eq!(
            read_answer(StatusCode::OK, b"<html>"),
            Err(Unavailable::BadAnswer)
        );
        assert_eq!(
            read_answer(StatusCode::OK, b"[1]"),
            Err(Unavailable::BadAnswer)
        );
        assert_eq!(
            read_answer(StatusCode::BAD_REQUEST, b"{}"),
            Err(Unavailable::BadAnswer)
        );
        assert_eq!(
            read_answer(StatusCode::BAD_GATEWAY, br#"{"error":"x"}"#),
            Err(Unavailable::Status)
        );
        assert_eq!(
            read_answer(StatusCode::MOVED_PERMANENTLY, b"{}"),
            Err(Unavailable::Status)
        );
    }
}

//! Prometheus metrics of one node, served at `/metrics`.
//!
//! Each node owns its own recorder (no global state), so several nodes can run in one
//! process, as the cluster tests do. Label values come from a fixed set, never from
//! client input, to keep cardinality bounded.
//!
//! Counters of a fixed label set are listed at 0 from the start.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `sio_handshakes_total` | counter | `transport` (polling, websocket) |
//! | `sio_connects_total` | counter | `nsp` |
//! | `sio_connect_rejected_total` | counter | `reason` (auth; backend: refused by the connect proxy; backend_unavailable) |
//! | `sio_sockets_connected` | gauge (at scrape) | `nsp`: the sockets socketioxide holds in the namespace |
//! | `sio_rooms` | gauge (at scrape) | `nsp` |
//! | `sio_events_received_total` | counter | `event` (join, leave, publish, chat, other) |
//! | `sio_events_emitted_total` | counter | `event` (publish, chat) |
//! | `sio_errors_total` | counter | `kind` (join_denied, publish_denied, publish_failed, bad_request, handshake_refused, origin_refused) |
//! | `sio_forwarded_total` | counter | `transport` (polling, websocket): requests sent to the session's owner |
//! | `sio_forward_errors_total` | counter | owner unreachable |
//! | `sio_forward_refused_total` | counter | `transport` (polling, websocket): requests for a session of another node whose owner could not be found (unknown, gone, or Redis not answering after retries), answered "Session ID unknown"; a refused upgrade leaves its client on polling |
//! | `sio_session_lookups_total` | counter | `source` (cache, redis) |
//! | `sio_rate_limited_total` | counter | `limit` (handshake, event, event_disconnect): requests refused by a rate limit, and sockets disconnected for repeated abuse |
//! | `sio_http_timeouts_total` | counter | `kind`: `header` (no complete request head within `SIO_HEADER_TIMEOUT_MS`: slow, silent or idle keep-alive), `body` (a request body not in within `SIO_BODY_TIMEOUT_MS`): connections closed |
//! | `sio_http_connection_limit_total` | counter | times every `SIO_MAX_CONNECTIONS` slot was taken and the node stopped accepting until one was freed |
//! | `sio_recovery_total` | counter | `outcome`: connection state recovery (`SIO_RECOVERY_WINDOW_MS`): `recovered`, `new` (no pid sent), `unknown` (pid not stored: expired, taken, forged), `refused` (another identity), `gap` (the offset is no longer in the stream), `failed` (Redis did not answer; a new session) |
//! | `sio_api_requests_total` | counter | `outcome`: HTTP emit API requests (`SIO_API_KEY`): `ok`, `unauthorized`, `bad_request`, `too_large`, `failed` |
//! | `sio_proxy_requests_total` | counter | `kind` (connect, event), `outcome` (ok, refused: a 4xx with an error, unavailable): requests to the backend (`SIO_CONNECT_PROXY_URL`, `SIO_EVENT_PROXY_URL`) |
//! | `sio_proxy_request_seconds` | histogram | `kind`: time to the backend's answer (or to giving up) |
//! | `sio_proxy_errors_total` | counter | `kind` (timeout, saturated, unreachable, status, bad_answer, queue_full): why the backend was `unavailable` |
//! | `sio_redis_ready` | gauge | cluster mode: 1 when Redis pub/sub round trips succeed |
//! | `sio_redis_published_total`, `sio_redis_publish_failed_total`, `sio_redis_received_total` | counter | cluster mode |
//! | `sio_redis_publish_queue` | gauge | cluster mode: messages queued for Redis, not answered yet (over the queue's cap, 65536, they are dropped: `sio_redis_publish_dropped_total`) |
//! | `sio_redis_publish_batches_total`, `sio_redis_publish_wait_microseconds_total` | counter | cluster mode: pipelines sent to Redis and the time spent waiting for their answers (the second over the first: the mean publish latency) |
//! | `sio_redis_lagged_total`, `sio_redis_malformed_total`, `sio_redis_local_delivery_failed_total`, `sio_redis_volatile_dropped_total`, `sio_redis_publish_dropped_total`, `sio_redis_stream_entries_lost_total` | counter | cluster mode: every loss, counted (the last: streams mode, entries trimmed before this node read them) |
//!
//! ```
//! let m = sio_server::metrics::Metrics::new();
//! m.event_received("join");
//! assert!(m.render().contains("sio_events_received_total{event=\"join\"} 1"));
//! ```

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const META: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// Event names counted under their own label; every other event counts as `other`.
const KNOWN_EVENTS: [&str; 4] = ["join", "leave", "publish", "chat"];

/// Every `event` label of `sio_events_received_total`.
const EVENT_LABELS: [&str; 5] = ["join", "leave", "publish", "chat", "other"];

/// Every `kind` label of `sio_errors_total`.
const ERROR_KINDS: [&str; 6] = [
    "join_denied",
    "publish_denied",
    "publish_failed",
    "bad_request",
    "handshake_refused",
    "origin_refused",
];

/// Every `outcome` label of `sio_recovery_total`.
pub const RECOVERY_OUTCOMES: [&str; 6] =
    ["recovered", "new", "unknown", "refused", "gap", "failed"];

/// Every `outcome` label of `sio_api_requests_total`.
pub const API_OUTCOMES: [&str; 5] = ["ok", "unauthorized", "bad_request", "too_large", "failed"];

/// Every `outcome` label of `sio_proxy_requests_total`.
pub const PROXY_OUTCOMES: [&str; 3] = ["ok", "refused", "unavailable"];

/// Every `kind` label of `sio_proxy_errors_total`.
pub const PROXY_ERRORS: [&str; 6] = [
    "timeout",
    "saturated",
    "unreachable",
    "status",
    "bad_answer",
    "queue_full",
];

/// `sio_proxy_request_seconds` buckets: 1 ms to 10 s.
const PROXY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The node's metrics registry and typed accessors for every metric it exports.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh, empty registry.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("sio_proxy_request_seconds".into()),
                &PROXY_BUCKETS,
            )
            // a fixed, non-empty bucket list: cannot be refused
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, help: &'static str| {
            recorder.describe_counter(name.into(), None, help.into());
        };
        describe("sio_handshakes_total", "Engine.IO sessions opened");
        describe("sio_connects_total", "Sockets connected to a namespace");
        describe(
            "sio_connect_rejected_total",
            "Namespace connections refused",
        );
        describe("sio_events_received_total", "Events received from clients");
        describe("sio_events_emitted_total", "Broadcasts emitted by the node");
        describe("sio_errors_total", "Requests answered with an error");
        describe(
            "sio_api_requests_total",
            "HTTP emit API requests by outcome",
        );
        describe("sio_proxy_requests_total", "Requests to the backend");
        describe(
            "sio_proxy_errors_total",
            "Backend requests that got no usable answer, by why",
        );
        recorder.describe_histogram(
            "sio_proxy_request_seconds".into(),
            Some(metrics::Unit::Seconds),
            "Time to the backend's answer".into(),
        );
        describe(
            "sio_recovery_total",
            "Connection state recovery attempts by outcome",
        );
        describe(
            "sio_http_timeouts_total",
            "HTTP connections closed by the header (and keep-alive idle) or body timeout",
        );
        describe(
            "sio_rate_limited_total",
            "Requests refused and sockets disconnected by rate limits",
        );
        recorder.describe_gauge(
            "sio_sockets_connected".into(),
            None,
            "Sockets currently connected".into(),
        );
        recorder.describe_gauge("sio_rooms".into(), None, "Rooms with members".into());
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
        };
        metrics.register_zeroes();
        metrics
    }

    /// Registers every counter of a fixed label set at 0, so `/metrics` lists them
    /// before their first event: a dashboard's `rate()` then reads 0 rather than no data.
    fn register_zeroes(&self) {
        let labelled: [(&'static str, &'static str, &[&'static str]); 12] = [
            ("sio_proxy_errors_total", "kind", &PROXY_ERRORS),
            (
                "sio_handshakes_total",
                "transport",
                &["polling", "websocket"],
            ),
            (
                "sio_connect_rejected_total",
                "reason",
                &["auth", "backend", "backend_unavailable"],
            ),
            ("sio_events_received_total", "event", &EVENT_LABELS),
            ("sio_events_emitted_total", "event", &["publish", "chat"]),
            ("sio_errors_total", "kind", &ERROR_KINDS),
            (
                "sio_forwarded_total",
                "transport",
                &["polling", "websocket"],
            ),
            (
                "sio_forward_refused_total",
                "transport",
                &["polling", "websocket"],
            ),
            ("sio_session_lookups_total", "source", &["cache", "redis"]),
            ("sio_recovery_total", "outcome", &RECOVERY_OUTCOMES),
            ("sio_api_requests_total", "outcome", &API_OUTCOMES),
            (
                "sio_rate_limited_total",
                "limit",
                &["handshake", "event", "event_disconnect"],
            ),
        ];
        for (name, label, values) in labelled {
            for value in values {
                self.counter(name, label, (*value).into()).increment(0);
            }
        }
        for kind in ["connect", "event"] {
            for outcome in PROXY_OUTCOMES {
                self.proxy_counter(kind, outcome).increment(0);
            }
        }
        for (name, label, values) in [("sio_http_timeouts_total", "kind", ["header", "body"])] {
            for value in values {
                self.counter(name, label, value.into()).increment(0);
            }
        }
        for name in [
            "sio_forward_errors_total",
            "sio_http_connection_limit_total",
        ] {
            self.recorder
                .register_counter(&Key::from_name(name), &META)
                .increment(0);
        }
    }

    fn counter(&self, name: &'static str, label: &'static str, value: String) -> Counter {
        let key = Key::from_parts(name, vec![Label::new(label, value)]);
        self.recorder.register_counter(&key, &META)
    }

    fn gauge(&self, name: &'static str, label: &'static str, value: String) -> Gauge {
        let key = Key::from_parts(name, vec![Label::new(label, value)]);
        self.recorder.register_gauge(&key, &META)
    }

    /// An Engine.IO session was opened over `transport`.
    pub fn handshake(&self, transport: &'static str) {
        self.counter("sio_handshakes_total", "transport", transport.into())
            .increment(1);
    }

    /// A socket passed the connect middleware of namespace `nsp`.
    ///
    /// The connected sockets are not counted up and down here but read at scrape time
    /// ([`Metrics::set_sockets`]): a session that closes while its namespace connect is
    /// in progress never gets its disconnect handler called by socketioxide, so a gauge
    /// raised here would stay up for a socket that no longer exists (issue #20).
    pub fn socket_connected(&self, nsp: &str) {
        self.counter("sio_connects_total", "nsp", nsp.into())
            .increment(1);
    }

    /// Sets the number of sockets connected to namespace `nsp` on this node.
    pub fn set_sockets(&self, nsp: &str, sockets: usize) {
        self.gauge("sio_sockets_connected", "nsp", nsp.into())
            .set(sockets as f64);
    }

    /// A namespace connection was refused for `reason`.
    pub fn connect_rejected(&self, reason: &'static str) {
        self.counter("sio_connect_rejected_total", "reason", reason.into())
            .increment(1);
    }

    /// A client event arrived.
    pub fn event_received(&self, event: &str) {
        let label = KNOWN_EVENTS
            .iter()
            .find(|e| **e == event)
            .copied()
            .unwrap_or("other");
        self.counter("sio_events_received_total", "event", label.into())
            .increment(1);
    }

    /// The node emitted a broadcast on behalf of `event` (publish, chat).
    pub fn event_emitted(&self, event: &'static str) {
        self.counter("sio_events_emitted_total", "event", event.into())
            .increment(1);
    }

    /// A request was answered with an error of `kind`.
    pub fn error(&self, kind: &'static str) {
        self.counter("sio_errors_total", "kind", kind.into())
            .increment(1);
    }

    /// Sets the room count of namespace `nsp`.
    pub fn set_rooms(&self, nsp: &str, rooms: usize) {
        self.gauge("sio_rooms", "nsp", nsp.into()).set(rooms as f64);
    }

    /// A request was forwarded to the session's owner over `transport`.
    pub fn forwarded(&self, transport: &'static str) {
        self.counter("sio_forwarded_total", "transport", transport.into())
            .increment(1);
    }

    /// A request over `transport` for another node's session was refused: its owner
    /// could not be found (the client got "Session ID unknown").
    pub fn forward_refused(&self, transport: &'static str) {
        self.counter("sio_forward_refused_total", "transport", transport.into())
            .increment(1);
    }

    /// A forward failed (owner unreachable); the client got "Session ID unknown".
    pub fn forward_error(&self) {
        let key = Key::from_name("sio_forward_errors_total");
        self.recorder.register_counter(&key, &META).increment(1);
    }

    /// A session owner was looked up: from the local cache (`hit`) or from Redis.
    pub fn forward_lookup(&self, hit: bool) {
        let source = if hit { "cache" } else { "redis" };
        self.counter("sio_session_lookups_total", "source", source.into())
            .increment(1);
    }

    /// A namespace connect with connection state recovery on ended in `outcome` (one of
    /// [`RECOVERY_OUTCOMES`]).
    pub fn recovery(&self, outcome: &'static str) {
        self.counter("sio_recovery_total", "outcome", outcome.into())
            .increment(1);
    }

    /// An HTTP emit API request ended in `outcome` (one of [`API_OUTCOMES`]).
    pub fn api_request(&self, outcome: &'static str) {
        self.counter("sio_api_requests_total", "outcome", outcome.into())
            .increment(1);
    }

    fn proxy_counter(&self, kind: &'static str, outcome: &'static str) -> Counter {
        let key = Key::from_parts(
            "sio_proxy_requests_total",
            vec![Label::new("kind", kind), Label::new("outcome", outcome)],
        );
        self.recorder.register_counter(&key, &META)
    }

    /// A request to the backend of `kind` (connect, event) ended in `outcome` (one of
    /// [`PROXY_OUTCOMES`]) after `elapsed`.
    pub fn proxy_request(&self, kind: &'static str, outcome: &'static str, elapsed: Duration) {
        self.proxy_counter(kind, outcome).increment(1);
        let key = Key::from_parts("sio_proxy_request_seconds", vec![Label::new("kind", kind)]);
        self.recorder
            .register_histogram(&key, &META)
            .record(elapsed.as_secs_f64());
    }

    /// A backend request got no usable answer, for reason `kind` (one of [`PROXY_ERRORS`]).
    pub fn proxy_error(&self, kind: &'static str) {
        self.counter("sio_proxy_errors_total", "kind", kind.into())
            .increment(1);
    }

    /// A rate limit refused a request (`handshake`, `event`) or disconnected a socket
    /// (`event_disconnect`).
    pub fn rate_limited(&self, limit: &'static str) {
        self.counter("sio_rate_limited_total", "limit", limit.into())
            .increment(1);
    }

    /// An HTTP connection was closed by a timeout: `header` (no complete request head in
    /// time: a slow or silent client, or an idle keep-alive connection) or `body` (a
    /// request body not received in time).
    pub fn http_timeout(&self, kind: &'static str) {
        self.counter("sio_http_timeouts_total", "kind", kind.into())
            .increment(1);
    }

    /// Every connection slot (`SIO_MAX_CONNECTIONS`) was taken: the node stopped
    /// accepting until one was freed. Counted once per episode.
    pub fn http_connection_limit(&self) {
        let key = Key::from_name("sio_http_connection_limit_total");
        self.recorder.register_counter(&key, &META).increment(1);
    }

    /// Copies the Redis adapter's counters (cluster mode).
    pub fn set_cluster(&self, stats: &sio_adapter_redis::StatsSnapshot, ready: bool) {
        let counters = [
            ("sio_redis_published_total", stats.published),
            ("sio_redis_publish_failed_total", stats.publish_failed),
            ("sio_redis_received_total", stats.received),
            ("sio_redis_lagged_total", stats.lagged),
            ("sio_redis_malformed_total", stats.malformed),
            (
                "sio_redis_local_delivery_failed_total",
                stats.local_delivery_failed,
            ),
            ("sio_redis_volatile_dropped_total", stats.volatile_dropped),
            ("sio_redis_publish_dropped_total", stats.publish_dropped),
            (
                "sio_redis_stream_entries_lost_total",
                stats.stream_entries_lost,
            ),
            ("sio_redis_publish_batches_total", stats.publish_batches),
            (
                "sio_redis_publish_wait_microseconds_total",
                stats.publish_wait_us,
            ),
        ];
        for (name, value) in counters {
            let key = Key::from_name(name);
            self.recorder.register_counter(&key, &META).absolute(value);
        }
        let key = Key::from_name("sio_redis_publish_queue");
        self.recorder
            .register_gauge(&key, &META)
            .set(stats.publish_queued as f64);
        let key = Key::from_name("sio_redis_ready");
        self.recorder
            .register_gauge(&key, &META)
            .set(if ready { 1.0 } else { 0.0 });
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_independent() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.handshake("polling");
        a.handshake("polling");
        assert!(
            a.render()
                .contains("sio_handshakes_total{transport=\"polling\"} 2")
        );
        assert!(
            b.render()
                .contains("sio_handshakes_total{transport=\"polling\"} 0")
        );
    }

    #[test]
    fn unknown_events_are_folded_into_other() {
        let m = Metrics::new();
        m.event_received("whatever-the-client-sent");
        m.event_received("publish");
        let text = m.render();
        assert!(
            text.contains("sio_events_received_total{event=\"other\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sio_events_received_total{event=\"publish\"} 1"),
            "{text}"
        );
        assert!(!text.contains("whatever"));
    }

    #[test]
    fn connected_gauge_is_what_was_counted_last() {
        let m = Metrics::new();
        m.socket_connected("/");
        m.socket_connected("/");
        m.set_sockets("/", 1);
        assert!(m.render().contains("sio_sockets_connected{nsp=\"/\"} 1"));
        assert!(m.render().contains("sio_connects_total{nsp=\"/\"} 2"));
    }
}

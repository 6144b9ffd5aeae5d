//! Adapter settings.

use std::time::Duration;

use crate::protocol::DEFAULT_PREFIX;
use crate::protocol::streams::StreamsOptions;
use crate::wire::AdapterMode;

/// Settings of a [`RedisCluster`](crate::RedisCluster). Every field has a documented
/// default; `with_*` setters keep the values sane.
///
/// ```
/// use std::time::Duration;
/// use sio_adapter_redis::RedisAdapterConfig;
///
/// let config = RedisAdapterConfig::default()
///     .with_prefix("my-app")
///     .with_request_timeout(Duration::from_secs(2));
/// assert_eq!(config.prefix, "my-app");
/// ```
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// Channel prefix, the Node adapter's `key`. Default `socket.io`.
    pub prefix: String,
    /// How long a cluster request (fetch sockets, server-side emit with ack, ...) waits
    /// for the other nodes. Default 5 s, as Node's `requestsTimeout`.
    pub request_timeout: Duration,
    /// Messages waiting to be published at most; beyond, a message is refused with
    /// [`AdapterError::Overloaded`](crate::AdapterError::Overloaded) and counted (never
    /// reordered, never held in memory without bound). Default 65,536.
    pub publish_queue: usize,
    /// Pub/sub messages buffered between the Redis connection and the dispatcher; beyond
    /// this the oldest are lost and counted. Default 65,536. The buffer takes memory only
    /// as far as it fills.
    pub subscriber_buffer: usize,
    /// How often the node sends itself a message through Redis pub/sub to prove the
    /// subscription is alive. Default 1 s; the node is not ready after 3 missed rounds.
    pub liveness_interval: Duration,
    /// Classic (`PUBLISH`, default), sharded (`SPUBLISH`, Redis 7) pub/sub, or streams
    /// (`XADD`/`XREAD`, at-least-once). Every node of a cluster must use the same mode
    /// (and, for sharded, the same subscription mode; for streams, the same options).
    pub mode: AdapterMode,
    /// Streams mode: stream name, stream count and maximum length (Node's `streamName`,
    /// `streamCount`, `maxLen`; defaults `socket.io`, 1, 10,000). Ignored in other modes.
    pub streams: StreamsOptions,
    /// PEM file of the CA(s) a `rediss://` server must chain to. Default `None`: the
    /// system's roots.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Connection state recovery (streams mode only): how long a disconnected socket's
    /// session is kept (Node's `maxDisconnectionDuration`). When set, broadcasts reach
    /// this node's own sockets through the stream too, each carrying its entry id (the
    /// offset) as its last argument. Default `None`: off.
    pub recovery: Option<Duration>,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_string(),
            request_timeout: Duration::from_secs(5),
            publish_queue: 65_536,
            subscriber_buffer: 65_536,
            liveness_interval: Duration::from_secs(1),
            mode: AdapterMode::Classic,
            streams: StreamsOptions::default(),
            tls_ca_file: None,
            recovery: None,
        }
    }
}

impl RedisAdapterConfig {
    /// Sets the channel prefix (must not be empty).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        if !prefix.is_empty() {
            self.prefix = prefix;
        }
        self
    }

    /// Sets the request timeout (at least 1 ms).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the pub/sub mode.
    pub fn with_mode(mut self, mode: AdapterMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the streams-mode options.
    pub fn with_streams(mut self, streams: StreamsOptions) -> Self {
        self.streams = streams;
        self
    }

    /// Trusts the CA certificates of this PEM file for `rediss://` (see [`crate::tls`]).
    pub fn with_tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }

    /// Turns connection state recovery on, sessions kept for `window` after a disconnect
    /// (streams mode only; [`RedisCluster::connect`](crate::RedisCluster::connect) refuses
    /// it in another mode).
    pub fn with_recovery(mut self, window: Duration) -> Self {
        self.recovery = Some(window.max(Duration::from_millis(1)));
        self
    }

    /// Sets the liveness round-trip interval (at least 50 ms).
    pub fn with_liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval.max(Duration::from_millis(50));
        self
    }
}

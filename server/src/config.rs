//! Node configuration: command-line flags and `SIO_*` environment variables.
//!
//! [`Cli`] is what clap parses; [`Config::from_cli`] checks it and turns it into the
//! validated [`Config`] the rest of the node uses. Every setting has a flag and an
//! environment variable ([`mod@env`]); the flag wins. Each setting is documented once, on
//! its [`Cli`] field, which is also its `--help` text.
//!
//! ```
//! use clap::Parser;
//! use sio_server::config::{Cli, Config};
//!
//! let cli = Cli::try_parse_from(["sio-server", "--listen", "127.0.0.1:0"]).unwrap();
//! let config = Config::from_cli(cli).unwrap();
//! assert!(config.redis_url.is_none()); // no Redis: one node, in-memory adapter
//! assert_eq!(config.ping_interval.as_millis(), 25_000);
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use ipnet::IpNet;

use axum::http::Uri;

use crate::auth::{AuthError, JwtVerifier};
use crate::backend::BackendConfig;
use crate::backend::signature::WebhookSecret;
use crate::limits::RateLimit;
use crate::patterns::{PatternError, RoomPatterns};

/// Environment variable names, one constant each so the flags, the error messages and the
/// tests agree. Each setting is documented once, on its [`Cli`] field.
pub mod env {
    /// [`Cli::listen`](super::Cli::listen).
    pub const LISTEN: &str = "SIO_LISTEN";
    /// [`Cli::redis_url`](super::Cli::redis_url).
    pub const REDIS_URL: &str = "SIO_REDIS_URL";
    /// [`Cli::redis_prefix`](super::Cli::redis_prefix).
    pub const REDIS_PREFIX: &str = "SIO_REDIS_PREFIX";
    /// [`Cli::redis_mode`](super::Cli::redis_mode).
    pub const REDIS_MODE: &str = "SIO_REDIS_MODE";
    /// [`Cli::redis_stream_name`](super::Cli::redis_stream_name).
    pub const REDIS_STREAM_NAME: &str = "SIO_REDIS_STREAM_NAME";
    /// [`Cli::redis_stream_count`](super::Cli::redis_stream_count).
    pub const REDIS_STREAM_COUNT: &str = "SIO_REDIS_STREAM_COUNT";
    /// [`Cli::redis_stream_max_len`](super::Cli::redis_stream_max_len).
    pub const REDIS_STREAM_MAX_LEN: &str = "SIO_REDIS_STREAM_MAX_LEN";
    /// [`Cli::recovery_window_ms`](super::Cli::recovery_window_ms).
    pub const RECOVERY_WINDOW_MS: &str = "SIO_RECOVERY_WINDOW_MS";
    /// [`Cli::advertise_addr`](super::Cli::advertise_addr).
    pub const ADVERTISE_ADDR: &str = "SIO_ADVERTISE_ADDR";
    /// [`Cli::node_id`](super::Cli::node_id).
    pub const NODE_ID: &str = "SIO_NODE_ID";
    /// [`Cli::cors_origins`](super::Cli::cors_origins).
    pub const CORS_ORIGINS: &str = "SIO_CORS_ORIGINS";
    /// [`Cli::jwt_secret`](super::Cli::jwt_secret).
    pub const JWT_SECRET: &str = "SIO_JWT_SECRET";
    /// [`Cli::jwt_public_key`](super::Cli::jwt_public_key).
    pub const JWT_PUBLIC_KEY: &str = "SIO_JWT_PUBLIC_KEY";
    /// [`Cli::client_publish`](super::Cli::client_publish).
    pub const CLIENT_PUBLISH: &str = "SIO_CLIENT_PUBLISH";
    /// [`Cli::api_key`](super::Cli::api_key).
    pub const API_KEY: &str = "SIO_API_KEY";
    /// [`Cli::connect_proxy_url`](super::Cli::connect_proxy_url).
    pub const CONNECT_PROXY_URL: &str = "SIO_CONNECT_PROXY_URL";
    /// [`Cli::event_proxy_url`](super::Cli::event_proxy_url).
    pub const EVENT_PROXY_URL: &str = "SIO_EVENT_PROXY_URL";
    /// [`Cli::event_proxy_events`](super::Cli::event_proxy_events).
    pub const EVENT_PROXY_EVENTS: &str = "SIO_EVENT_PROXY_EVENTS";
    /// [`Cli::proxy_secret`](super::Cli::proxy_secret).
    pub const PROXY_SECRET: &str = "SIO_PROXY_SECRET";
    /// [`Cli::proxy_timeout_ms`](super::Cli::proxy_timeout_ms).
    pub const PROXY_TIMEOUT_MS: &str = "SIO_PROXY_TIMEOUT_MS";
    /// [`Cli::proxy_concurrency`](super::Cli::proxy_concurrency).
    pub const PROXY_CONCURRENCY: &str = "SIO_PROXY_CONCURRENCY";
    /// [`Cli::namespaces`](super::Cli::namespaces).
    pub const NAMESPACES: &str = "SIO_NAMESPACES";
    /// [`Cli::ping_interval_ms`](super::Cli::ping_interval_ms).
    pub const PING_INTERVAL_MS: &str = "SIO_PING_INTERVAL_MS";
    /// [`Cli::ping_timeout_ms`](super::Cli::ping_timeout_ms).
    pub const PING_TIMEOUT_MS: &str = "SIO_PING_TIMEOUT_MS";
    /// [`Cli::max_payload`](super::Cli::max_payload).
    pub const MAX_PAYLOAD: &str = "SIO_MAX_PAYLOAD";
    /// [`Cli::ws_read_buffer`](super::Cli::ws_read_buffer).
    pub const WS_READ_BUFFER: &str = "SIO_WS_READ_BUFFER";
    /// [`Cli::worker_threads`](super::Cli::worker_threads).
    pub const WORKER_THREADS: &str = "SIO_WORKER_THREADS";
    /// [`Cli::shutdown_grace_ms`](super::Cli::shutdown_grace_ms).
    pub const SHUTDOWN_GRACE_MS: &str = "SIO_SHUTDOWN_GRACE_MS";
    /// [`Cli::chat`](super::Cli::chat).
    pub const CHAT: &str = "SIO_CHAT";
    /// [`Cli::client_js`](super::Cli::client_js).
    pub const CLIENT_JS: &str = "SIO_CLIENT_JS";
    /// [`Cli::log_format`](super::Cli::log_format).
    pub const LOG_FORMAT: &str = "SIO_LOG_FORMAT";
    /// [`Cli::redis_ca_file`](super::Cli::redis_ca_file).
    pub const REDIS_CA_FILE: &str = "SIO_REDIS_CA_FILE";
    /// [`Cli::handshake_rate`](super::Cli::handshake_rate).
    pub const HANDSHAKE_RATE: &str = "SIO_HANDSHAKE_RATE";
    /// [`Cli::handshake_burst`](super::Cli::handshake_burst).
    pub const HANDSHAKE_BURST: &str = "SIO_HANDSHAKE_BURST";
    /// [`Cli::event_rate`](super::Cli::event_rate).
    pub const EVENT_RATE: &str = "SIO_EVENT_RATE";
    /// [`Cli::event_burst`](super::Cli::event_burst).
    pub const EVENT_BURST: &str = "SIO_EVENT_BURST";
    /// [`Cli::trusted_proxies`](super::Cli::trusted_proxies).
    pub const TRUSTED_PROXIES: &str = "SIO_TRUSTED_PROXIES";
    /// [`Cli::header_timeout_ms`](super::Cli::header_timeout_ms).
    pub const HEADER_TIMEOUT_MS: &str = "SIO_HEADER_TIMEOUT_MS";
    /// [`Cli::body_timeout_ms`](super::Cli::body_timeout_ms).
    pub const BODY_TIMEOUT_MS: &str = "SIO_BODY_TIMEOUT_MS";
    /// [`Cli::max_connections`](super::Cli::max_connections).
    pub const MAX_CONNECTIONS: &str = "SIO_MAX_CONNECTIONS";
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Raw command line and environment, as parsed by clap. Turn it into a [`Config`]
/// with [`Config::from_cli`].
#[derive(Debug, Clone, Parser)]
#[command(name = "sio-server", version, about = "A Socket.IO v4 cluster node")]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = env::LISTEN, default_value = "0.0.0.0:3000")]
    pub listen: SocketAddr,

    /// Redis URL (redis://, rediss://). Unset: a single node with the in-memory adapter.
    #[arg(long, env = env::REDIS_URL, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Channel prefix on Redis, the Node adapter's `key` option: every node of a cluster must use the same.
    #[arg(long, env = env::REDIS_PREFIX, default_value = "socket.io")]
    pub redis_prefix: String,

    /// How messages travel through Redis: `classic` (PUBLISH, Node's createAdapter),
    /// sharded (Redis 7 SPUBLISH, Node's createShardedAdapter) with its subscription mode:
    /// `sharded` (= `sharded-dynamic`, Node's default), `sharded-dynamic-private`,
    /// `sharded-static`; or `streams` (a Redis stream each node reads from where it
    /// stopped, so a dropped Redis link loses nothing: @socket.io/redis-streams-adapter).
    #[arg(long, env = env::REDIS_MODE, default_value = "classic")]
    pub redis_mode: String,

    /// Streams mode: the stream's name (Node's `streamName`).
    #[arg(long, env = env::REDIS_STREAM_NAME, default_value = "socket.io")]
    pub redis_stream_name: String,

    /// Streams mode: how many streams the namespaces are spread over (Node's
    /// `streamCount`; more than one spreads them over a Redis Cluster's shards).
    #[arg(long, env = env::REDIS_STREAM_COUNT, default_value_t = 1)]
    pub redis_stream_count: u64,

    /// Streams mode: the length each stream is trimmed to, about (`XADD MAXLEN ~`, Node's
    /// `maxLen`). A node disconnected longer than it takes to add this many entries misses
    /// the oldest ones, and counts them.
    #[arg(long, env = env::REDIS_STREAM_MAX_LEN, default_value_t = 10_000)]
    pub redis_stream_max_len: u64,

    /// Connection state recovery (Node's `maxDisconnectionDuration`), in milliseconds; 0:
    /// off. A client that reconnects within this long, to any node, gets its rooms back
    /// and every broadcast it missed, once, in order (`socket.recovered` is true). Needs
    /// `SIO_REDIS_MODE=streams` (the stream is the log replayed). Each broadcast then
    /// carries its offset (a stream id) as an extra last argument, as in Node.
    #[arg(long, env = env::RECOVERY_WINDOW_MS, default_value_t = 0)]
    pub recovery_window_ms: u64,

    /// Address (`host:port`) other nodes use to forward requests to this one. Default:
    /// `$POD_IP:<port>` when POD_IP is set, else the listen address (127.0.0.1 for 0.0.0.0).
    #[arg(long, env = env::ADVERTISE_ADDR)]
    pub advertise_addr: Option<String>,

    /// This node's id in the cluster. Default: a random UUID.
    #[arg(long, env = env::NODE_ID)]
    pub node_id: Option<String>,

    /// Origins allowed by CORS, comma separated, or `*` for any. Default: none (same-origin only).
    #[arg(long, env = env::CORS_ORIGINS, value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// HS256 secret for JWT auth from the handshake `auth.token`.
    #[arg(long, env = env::JWT_SECRET, hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// RS256 public key for JWT auth: PEM text, or a path to a PEM file.
    #[arg(long, env = env::JWT_PUBLIC_KEY)]
    pub jwt_public_key: Option<String>,

    /// Bearer key of the HTTP emit API (`POST /api/v1/emit`), at least 16 characters;
    /// unset: no API.
    #[arg(long, env = env::API_KEY, hide_env_values = true)]
    pub api_key: Option<String>,

    /// Connect proxy: on each namespace connect the node POSTs the handshake to this
    /// `http://` URL and the backend accepts (with a user, rooms, data) or refuses it.
    /// See README "Your backend". Needs `SIO_PROXY_SECRET`.
    #[arg(long, env = env::CONNECT_PROXY_URL)]
    pub connect_proxy_url: Option<String>,

    /// Event proxy: client events named in `SIO_EVENT_PROXY_EVENTS` are POSTed to this
    /// `http://` URL and the backend's answer is their ack. Needs `SIO_PROXY_SECRET`.
    #[arg(long, env = env::EVENT_PROXY_URL)]
    pub event_proxy_url: Option<String>,

    /// Event names (globs, comma separated) the event proxy sends to the backend; never
    /// `join`, `leave`, `publish`.
    #[arg(long, env = env::EVENT_PROXY_EVENTS, value_delimiter = ',', default_value = "*")]
    pub event_proxy_events: Vec<String>,

    /// The key requests to the backend are signed with (Standard Webhooks), as
    /// `whsec_<base64 of the key>`.
    #[arg(long, env = env::PROXY_SECRET, hide_env_values = true)]
    pub proxy_secret: Option<String>,

    /// How long the backend has to answer a connect or an event, in milliseconds (from
    /// the event's arrival, so time waiting behind the socket's earlier events counts);
    /// past it the client gets `backend unavailable`.
    #[arg(long, env = env::PROXY_TIMEOUT_MS, default_value_t = 5_000)]
    pub proxy_timeout_ms: u64,

    /// Requests to the backend in flight at once, per node; more wait for a slot
    /// (within the timeout).
    #[arg(long, env = env::PROXY_CONCURRENCY, default_value_t = 256)]
    pub proxy_concurrency: u64,

    /// Room patterns (globs, comma separated) that clients may `publish` to. Default: none.
    #[arg(long, env = env::CLIENT_PUBLISH, value_delimiter = ',')]
    pub client_publish: Vec<String>,

    /// Namespaces that run the gateway events, comma separated.
    #[arg(long, env = env::NAMESPACES, value_delimiter = ',', default_value = "/")]
    pub namespaces: Vec<String>,

    /// Engine.IO ping interval in milliseconds.
    #[arg(long, env = env::PING_INTERVAL_MS, default_value_t = 25_000)]
    pub ping_interval_ms: u64,

    /// Engine.IO ping timeout in milliseconds.
    #[arg(long, env = env::PING_TIMEOUT_MS, default_value_t = 20_000)]
    pub ping_timeout_ms: u64,

    /// Largest accepted polling body or websocket message, in bytes.
    #[arg(long, env = env::MAX_PAYLOAD, default_value_t = 1_000_000)]
    pub max_payload: u64,

    /// Bytes each websocket reads from its socket at a time: the read buffer every
    /// connection keeps while open. Larger messages still arrive whole, in more reads.
    #[arg(long, env = env::WS_READ_BUFFER, default_value_t = 1024)]
    pub ws_read_buffer: usize,

    /// Threads the node runs its work on; default: one per CPU the process may use.
    /// Running one node per core? 1 is cheaper: a broadcast's queue pushes and the
    /// sockets' writers then share one core's cache instead of bouncing between cores.
    #[arg(long, env = env::WORKER_THREADS)]
    pub worker_threads: Option<usize>,

    /// How long a SIGTERM/SIGINT drain may take before the node exits anyway, in milliseconds.
    #[arg(long, env = env::SHUTDOWN_GRACE_MS, default_value_t = 25_000)]
    pub shutdown_grace_ms: u64,

    /// Serve the demo chat page at `/` and its `/chat` namespace.
    #[arg(long, env = env::CHAT, default_value_t = true, action = clap::ArgAction::Set)]
    pub chat: bool,

    /// Serve this local socket.io client bundle to the demo page instead of loading it from the CDN.
    #[arg(long, env = env::CLIENT_JS)]
    pub client_js: Option<PathBuf>,

    /// Log format on stderr. The level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = env::LOG_FORMAT, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// PEM file with the CA certificate(s) that a `rediss://` server must chain to
    /// (instead of the system's roots).
    #[arg(long, env = env::REDIS_CA_FILE)]
    pub redis_ca_file: Option<PathBuf>,

    /// New sessions (handshakes) allowed per second per client IP; 0 = no limit.
    #[arg(long, env = env::HANDSHAKE_RATE, default_value_t = 0.0)]
    pub handshake_rate: f64,

    /// Handshakes a client IP may make at once. Default: the rate, rounded up.
    #[arg(long, env = env::HANDSHAKE_BURST)]
    pub handshake_burst: Option<u32>,

    /// Events allowed per second per socket; 0 = no limit.
    #[arg(long, env = env::EVENT_RATE, default_value_t = 0.0)]
    pub event_rate: f64,

    /// Events a socket may send at once. Default: the rate, rounded up.
    #[arg(long, env = env::EVENT_BURST)]
    pub event_burst: Option<u32>,

    /// Proxies (IPs or CIDRs, comma separated) whose `X-Forwarded-For` names the client
    /// for the handshake limit. Default: none (the TCP peer is the client).
    #[arg(long, env = env::TRUSTED_PROXIES, value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// An HTTP connection must deliver a complete request head within this many
    /// milliseconds of opening, or of the end of its previous response, or it is closed
    /// (slow or silent clients; also the keep-alive idle timeout). A long-poll in progress
    /// and a websocket are not affected.
    #[arg(long, env = env::HEADER_TIMEOUT_MS, default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// A request with a body (a polling POST) must be received and answered within this
    /// many milliseconds, or it gets 408 and the connection is closed (slowly dribbled
    /// bodies). Requests without a body (long-polls, upgrades) are not timed.
    #[arg(long, env = env::BODY_TIMEOUT_MS, default_value_t = 60_000)]
    pub body_timeout_ms: u64,

    /// Most TCP connections open at once, websockets included; at the cap the node stops
    /// accepting (logged) until one closes. 0 = no cap.
    #[arg(long, env = env::MAX_CONNECTIONS, default_value_t = 0)]
    pub max_connections: u64,
}

/// Which origins may make cross-origin requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers: browsers allow only same-origin pages.
    SameOrigin,
    /// Any origin (`*`).
    Any,
    /// Exactly these origins (`scheme://host[:port]`).
    List(Vec<String>),
}

/// The validated node configuration. Each field is the [`Cli`] setting it names,
/// documented there, checked and in the type the node uses.
#[derive(Clone)]
pub struct Config {
    /// [`Cli::listen`].
    pub listen: SocketAddr,
    /// [`Cli::redis_url`]; `None` (unset or empty): single node, in-memory adapter.
    pub redis_url: Option<String>,
    /// [`Cli::redis_prefix`].
    pub redis_prefix: String,
    /// [`Cli::redis_mode`].
    pub redis_mode: sio_adapter_redis::AdapterMode,
    /// [`Cli::redis_stream_name`], [`Cli::redis_stream_count`], [`Cli::redis_stream_max_len`].
    pub redis_streams: sio_adapter_redis::protocol::streams::StreamsOptions,
    /// [`Cli::recovery_window_ms`]; `None`: off.
    pub recovery_window: Option<Duration>,
    /// [`Cli::advertise_addr`] (or `$POD_IP:<port>`); `None`: derived from the bound
    /// address.
    pub advertise_addr: Option<String>,
    /// [`Cli::node_id`] (a random UUID when unset).
    pub node_id: String,
    /// [`Cli::cors_origins`].
    pub cors: CorsOrigins,
    /// [`Cli::api_key`]; `None`: no HTTP emit API.
    pub api_key: Option<String>,
    /// [`Cli::connect_proxy_url`], [`Cli::event_proxy_url`] and their settings; `None`:
    /// no backend.
    pub backend: Option<BackendConfig>,
    /// [`Cli::jwt_secret`] or [`Cli::jwt_public_key`]; `None`: auth off.
    pub jwt: Option<JwtVerifier>,
    /// [`Cli::client_publish`].
    pub client_publish: RoomPatterns,
    /// [`Cli::namespaces`].
    pub namespaces: Vec<String>,
    /// [`Cli::ping_interval_ms`].
    pub ping_interval: Duration,
    /// [`Cli::ping_timeout_ms`].
    pub ping_timeout: Duration,
    /// [`Cli::max_payload`].
    pub max_payload: u64,
    /// [`Cli::ws_read_buffer`].
    pub ws_read_buffer: usize,
    /// [`Cli::worker_threads`]; `None`: one per available CPU.
    pub worker_threads: Option<usize>,
    /// [`Cli::shutdown_grace_ms`].
    pub shutdown_grace: Duration,
    /// [`Cli::chat`].
    pub chat: bool,
    /// [`Cli::client_js`].
    pub client_js: Option<PathBuf>,
    /// [`Cli::log_format`].
    pub log_format: LogFormat,
    /// [`Cli::redis_ca_file`]; `None`: the system's roots.
    pub redis_ca_file: Option<PathBuf>,
    /// [`Cli::handshake_rate`] and [`Cli::handshake_burst`]; `None`: no limit.
    pub handshake_limit: Option<RateLimit>,
    /// [`Cli::event_rate`] and [`Cli::event_burst`]; `None`: no limit.
    pub event_limit: Option<RateLimit>,
    /// [`Cli::trusted_proxies`].
    pub trusted_proxies: Vec<IpNet>,
    /// [`Cli::header_timeout_ms`].
    pub header_timeout: Duration,
    /// [`Cli::body_timeout_ms`].
    pub body_timeout: Duration,
    /// [`Cli::max_connections`]; `None`: no cap.
    pub max_connections: Option<usize>,
}

/// A configuration value that cannot be used. Its message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Both JWT key kinds were given.
    #[error("set only one of {} and {}", env::JWT_SECRET, env::JWT_PUBLIC_KEY)]
    BothJwtKeys,
    /// The JWT key could not be loaded.
    #[error("invalid JWT key: {0}")]
    Jwt(#[from] AuthError),
    /// A publish pattern is not a valid glob.
    #[error("invalid {var}: {0}", var = env::CLIENT_PUBLISH)]
    PublishPattern(#[from] PatternError),
    /// A namespace name is not valid.
    #[error("invalid namespace {0:?} in {ns}: must start with '/'", ns = env::NAMESPACES)]
    Namespace(String),
    /// `/chat` is reserved for the demo.
    #[error(
        "namespace \"/chat\" in {} is reserved for the demo chat; set {}=false to use it",
        env::NAMESPACES,
        env::CHAT
    )]
    ChatNamespace,
    /// A CORS origin is malformed.
    #[error("invalid origin {0:?} in {o}: expected scheme://host[:port] or *", o = env::CORS_ORIGINS)]
    Origin(String),
    /// A duration or size is out of range.
    #[error("{name} must be {rule}, got {value}")]
    Range {
        /// The setting.
        name: &'static str,
        /// The rule it breaks.
        rule: &'static str,
        /// The value given.
        value: u64,
    },
    /// The node id is empty or has characters unsafe for Redis keys and logs.
    #[error("invalid {var}: {0:?} (1-64 characters of A-Z a-z 0-9 - _ .)", var = env::NODE_ID)]
    NodeId(String),
    /// The Redis URL is malformed.
    #[error(
        "invalid {}: expected {} URL",
        env::REDIS_URL,
        sio_adapter_redis::redis_url::SCHEMES
    )]
    RedisUrl,
    /// The Redis mode is unknown.
    #[error("invalid {var}: {0:?} (classic, sharded, sharded-dynamic, sharded-dynamic-private, sharded-static, streams)", var = env::REDIS_MODE)]
    RedisMode(String),
    /// The Redis channel prefix is empty or has a `#`.
    #[error("invalid {}: must be non-empty and without '#'", env::REDIS_PREFIX)]
    RedisPrefix,
    /// The client bundle file is missing.
    #[error("{var} {0:?} is not a readable file", var = env::CLIENT_JS)]
    ClientJs(PathBuf),
    /// The Redis CA file cannot be used.
    #[error("invalid {var}: {0}", var = env::REDIS_CA_FILE)]
    RedisCa(String),
    /// A rate or burst is out of range.
    #[error(
        "invalid {name}: {value} (a rate must be 0 for off, or above 0 up to 1000000; a burst at least 1)"
    )]
    Rate {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: String,
    },
    /// The API key is too short to be a secret.
    #[error("{var} must be at least 16 characters", var = env::API_KEY)]
    ApiKey,
    /// Connection state recovery is on without a cluster in streams mode.
    #[error(
        "{var} needs {url} and {mode}=streams: the Redis stream is the log a recovering client's missed broadcasts are read from",
        var = env::RECOVERY_WINDOW_MS, url = env::REDIS_URL, mode = env::REDIS_MODE
    )]
    RecoveryNeedsStreams,
    /// A proxy URL is not a plain `http://host[:port]/path` URL.
    #[error(
        "invalid {var}: {url:?} (expected http://host[:port]/path; https is not supported yet, reach the backend over a private network)"
    )]
    ProxyUrl {
        /// The setting.
        var: &'static str,
        /// The value given.
        url: String,
    },
    /// The proxy secret is missing or not in `whsec_` form.
    #[error("invalid {var}: {0}", var = env::PROXY_SECRET)]
    ProxySecret(String),
    /// An event pattern is not a valid glob.
    #[error("invalid {var}: {0}", var = env::EVENT_PROXY_EVENTS)]
    EventPattern(PatternError),
    /// A trusted proxy is not an IP address or CIDR.
    #[error("invalid {var}: {0:?} (expected an IP address or CIDR such as 10.0.0.0/8)", var = env::TRUSTED_PROXIES)]
    TrustedProxy(String),
}

impl Config {
    /// Checks every value and builds the configuration. Settings are checked in a fixed
    /// order; the first bad one is the error.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let jwt = jwt_verifier(cli.jwt_secret.as_deref(), cli.jwt_public_key.as_deref())?;
        let api_key = match cli.api_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) if key.chars().count() < 16 => return Err(ConfigError::ApiKey),
            Some(key) => Some(key.to_string()),
        };
        let redis_url = redis_url(cli.redis_url.as_deref())?;
        let redis_mode = redis_mode(&cli.redis_mode)?;
        let redis_streams = redis_streams(&cli)?;
        let recovery_window = recovery_window(&cli, redis_url.as_deref(), redis_mode)?;
        let redis_prefix = redis_prefix(&cli.redis_prefix)?;
        let node_id = node_id(cli.node_id.clone())?;
        let cors = parse_origins(&cli.cors_origins)?;
        let namespaces = namespaces(&cli.namespaces, cli.chat)?;
        check_ranges(&cli)?;
        if let Some(path) = &cli.client_js
            && !path.is_file()
        {
            return Err(ConfigError::ClientJs(path.clone()));
        }
        let redis_ca_file = redis_ca_file(cli.redis_ca_file.clone(), redis_url.as_deref())?;
        let handshake_limit = rate_limit(
            (env::HANDSHAKE_RATE, cli.handshake_rate),
            (env::HANDSHAKE_BURST, cli.handshake_burst),
        )?;
        let event_limit = rate_limit(
            (env::EVENT_RATE, cli.event_rate),
            (env::EVENT_BURST, cli.event_burst),
        )?;
        let trusted_proxies = trusted_proxies(&cli.trusted_proxies)?;
        let backend = backend(&cli)?;
        let advertise_addr = advertise_addr(
            cli.advertise_addr,
            std::env::var("POD_IP").ok(),
            cli.listen.port(),
        );
        Ok(Config {
            listen: cli.listen,
            redis_url,
            redis_prefix,
            redis_mode,
            redis_streams,
            recovery_window,
            advertise_addr,
            node_id,
            cors,
            jwt,
            backend,
            api_key,
            client_publish: RoomPatterns::new(&cli.client_publish)?,
            namespaces,
            ping_interval: Duration::from_millis(cli.ping_interval_ms),
            ping_timeout: Duration::from_millis(cli.ping_timeout_ms),
            max_payload: cli.max_payload,
            ws_read_buffer: cli.ws_read_buffer,
            worker_threads: cli.worker_threads,
            shutdown_grace: Duration::from_millis(cli.shutdown_grace_ms),
            chat: cli.chat,
            client_js: cli.client_js,
            log_format: cli.log_format,
            redis_ca_file,
            handshake_limit,
            event_limit,
            trusted_proxies,
            header_timeout: Duration::from_millis(cli.header_timeout_ms),
            body_timeout: Duration::from_millis(cli.body_timeout_ms),
            max_connections: (cli.max_connections > 0).then_some(cli.max_connections as usize),
        })
    }

    /// A configuration for tests and embedding: listen on `addr`, everything else default.
    ///
    /// ```
    /// let config = sio_server::Config::for_addr("127.0.0.1:0".parse().unwrap());
    /// assert_eq!(config.namespaces, ["/"]);
    /// ```
    pub fn for_addr(addr: SocketAddr) -> Self {
        let mut cli = Cli::parse_from(["sio-server"]);
        cli.listen = addr;
        // Defaults are valid by construction (covered by the `defaults_are_valid` test).
        Config::from_cli(cli).expect("default configuration is valid")
    }
}

/// The JWT verifier of [`Cli::jwt_secret`] or [`Cli::jwt_public_key`] (not both);
/// `None`: auth off.
fn jwt_verifier(
    secret: Option<&str>,
    public_key: Option<&str>,
) -> Result<Option<JwtVerifier>, ConfigError> {
    Ok(match (secret, public_key) {
        (Some(_), Some(_)) => return Err(ConfigError::BothJwtKeys),
        (Some(secret), None) => Some(JwtVerifier::hs256(secret.as_bytes())?),
        (None, Some(key)) => Some(JwtVerifier::rs256_from_pem_or_path(key)?),
        (None, None) => None,
    })
}

/// [`Cli::redis_url`], checked; empty counts as unset.
fn redis_url(raw: Option<&str>) -> Result<Option<String>, ConfigError> {
    let url = raw.filter(|u| !u.trim().is_empty());
    if let Some(url) = url
        && !sio_adapter_redis::redis_url::is_redis_url(url)
    {
        return Err(ConfigError::RedisUrl);
    }
    Ok(url.map(str::to_string))
}

/// [`Cli::redis_mode`] read.
fn redis_mode(raw: &str) -> Result<sio_adapter_redis::AdapterMode, ConfigError> {
    use sio_adapter_redis::{AdapterMode, SubscriptionMode};
    Ok(match raw.trim() {
        "classic" => AdapterMode::Classic,
        "sharded" | "sharded-dynamic" => AdapterMode::Sharded(SubscriptionMode::Dynamic),
        "sharded-dynamic-private" => AdapterMode::Sharded(SubscriptionMode::DynamicPrivate),
        "sharded-static" => AdapterMode::Sharded(SubscriptionMode::Static),
        "streams" => AdapterMode::Streams,
        other => return Err(ConfigError::RedisMode(other.to_string())),
    })
}

/// The streams-mode settings: a name without `#`, 1 to 1024 streams, a length of at
/// least 1.
fn redis_streams(
    cli: &Cli,
) -> Result<sio_adapter_redis::protocol::streams::StreamsOptions, ConfigError> {
    let stream_name = cli.redis_stream_name.trim().to_string();
    if stream_name.is_empty() {
        return Err(ConfigError::Range {
            name: env::REDIS_STREAM_NAME,
            rule: "not empty",
            value: 0,
        });
    }
    Ok(sio_adapter_redis::protocol::streams::StreamsOptions {
        stream_name,
        stream_count: cli.redis_stream_count as u32,
        max_len: cli.redis_stream_max_len,
    })
}

/// [`Cli::recovery_window_ms`]: 0 is off; otherwise at most a day, and only in a cluster
/// in streams mode (the stream is the log a recovering client's missed broadcasts come
/// from).
fn recovery_window(
    cli: &Cli,
    redis_url: Option<&str>,
    mode: sio_adapter_redis::AdapterMode,
) -> Result<Option<Duration>, ConfigError> {
    let ms = cli.recovery_window_ms;
    if ms == 0 {
        return Ok(None);
    }
    if ms > 86_400_000 {
        return Err(ConfigError::Range {
            name: env::RECOVERY_WINDOW_MS,
            rule: "0 (off) or at most 86400000",
            value: ms,
        });
    }
    if redis_url.is_none() || mode != sio_adapter_redis::AdapterMode::Streams {
        return Err(ConfigError::RecoveryNeedsStreams);
    }
    Ok(Some(Duration::from_millis(ms)))
}

/// [`Cli::redis_prefix`], trimmed: non-empty and without `#` (the channel separator).
fn redis_prefix(raw: &str) -> Result<String, ConfigError> {
    let prefix = raw.trim();
    if prefix.is_empty() || prefix.contains('#') {
        return Err(ConfigError::RedisPrefix);
    }
    Ok(prefix.to_string())
}

/// [`Cli::node_id`] (a random UUID when unset), safe for Redis keys and logs.
fn node_id(raw: Option<String>) -> Result<String, ConfigError> {
    let node_id = raw.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let id_ok = !node_id.is_empty()
        && node_id.len() <= 64
        && node_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_ok {
        return Err(ConfigError::NodeId(node_id));
    }
    Ok(node_id)
}

/// [`Cli::namespaces`], trimmed, deduplicated, `/` when none; `/chat` is the demo's
/// while the chat is on.
fn namespaces(raw: &[String], chat: bool) -> Result<Vec<String>, ConfigError> {
    let mut namespaces = Vec::new();
    for ns in raw {
        let ns = ns.trim().to_string();
        if ns.is_empty() {
            continue;
        }
        if !ns.starts_with('/') || ns.contains(char::is_whitespace) {
            return Err(ConfigError::Namespace(ns));
        }
        if chat && ns == "/chat" {
            return Err(ConfigError::ChatNamespace);
        }
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    if namespaces.is_empty() {
        namespaces.push("/".into());
    }
    Ok(namespaces)
}

/// The numeric settings' bounds, checked in this order.
fn check_ranges(cli: &Cli) -> Result<(), ConfigError> {
    let workers = cli.worker_threads.map_or(1, |n| n as u64); // unset: nothing to check
    let buffer = cli.ws_read_buffer as u64;
    #[rustfmt::skip]
    let checks: [(&'static str, u64, RangeInclusive<u64>, &'static str); 14] = [
        (env::PROXY_TIMEOUT_MS, cli.proxy_timeout_ms, 100..=120_000, "between 100 and 120000"),
        (env::PROXY_CONCURRENCY, cli.proxy_concurrency, 1..=100_000, "between 1 and 100000"),
        (env::REDIS_STREAM_COUNT, cli.redis_stream_count, 1..=1024, "between 1 and 1024"),
        (env::REDIS_STREAM_MAX_LEN, cli.redis_stream_max_len, 1..=1_000_000_000, "between 1 and 1000000000"),
        (env::PING_INTERVAL_MS, cli.ping_interval_ms, 1_000..=600_000, "between 1000 and 600000"),
        (env::PING_TIMEOUT_MS, cli.ping_timeout_ms, 1_000..=600_000, "between 1000 and 600000"),
        (env::MAX_PAYLOAD, cli.max_payload, 1024..=104_857_600, "between 1024 and 104857600"),
        (env::WS_READ_BUFFER, buffer, 256..=1_048_576, "between 256 and 1048576"),
        (env::WORKER_THREADS, workers, 1..=1024, "between 1 and 1024"),
        (env::HEADER_TIMEOUT_MS, cli.header_timeout_ms, 100..=600_000, "between 100 and 600000"),
        (env::BODY_TIMEOUT_MS, cli.body_timeout_ms, 100..=3_600_000, "between 100 and 3600000"),
        (env::MAX_CONNECTIONS, cli.max_connections, 0..=10_000_000, "0 (no cap) or at most 10000000"),
        (env::SHUTDOWN_GRACE_MS, cli.shutdown_grace_ms, 0..=3_600_000, "at most 3600000"),
        (env::RECOVERY_WINDOW_MS, cli.recovery_window_ms, 0..=86_400_000, "0 (off) or at most 86400000"),
    ];
    for (name, value, range, rule) in checks {
        if !range.contains(&value) {
            return Err(ConfigError::Range { name, rule, value });
        }
    }
    Ok(())
}

/// [`Cli::redis_ca_file`] (empty counts as unset), loaded once to check it; only with a
/// `rediss://` URL.
fn redis_ca_file(
    raw: Option<PathBuf>,
    redis_url: Option<&str>,
) -> Result<Option<PathBuf>, ConfigError> {
    let ca_file = raw.filter(|p| !p.as_os_str().is_empty());
    if let Some(path) = &ca_file {
        if !redis_url.is_some_and(|u| u.starts_with("rediss")) {
            return Err(ConfigError::RedisCa(format!(
                "it needs a TLS URL in {} (rediss://...)",
                env::REDIS_URL
            )));
        }
        sio_adapter_redis::tls::load_ca_file(path)
            .map_err(|e| ConfigError::RedisCa(e.to_string()))?;
    }
    Ok(ca_file)
}

/// The backend settings: `None` when neither proxy URL is set (empty counts as unset);
/// otherwise each URL plain `http://`, the secret in `whsec_` form, the event globs valid.
fn backend(cli: &Cli) -> Result<Option<BackendConfig>, ConfigError> {
    let connect_url = proxy_url(env::CONNECT_PROXY_URL, cli.connect_proxy_url.as_deref())?;
    let event_url = proxy_url(env::EVENT_PROXY_URL, cli.event_proxy_url.as_deref())?;
    if connect_url.is_none() && event_url.is_none() {
        return Ok(None);
    }
    let secret = match cli.proxy_secret.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(ConfigError::ProxySecret(
                "required with a proxy URL: every request to the backend is signed".into(),
            ));
        }
        Some(raw) => {
            WebhookSecret::parse(raw).map_err(|e| ConfigError::ProxySecret(e.to_string()))?
        }
    };
    let events = RoomPatterns::new(&cli.event_proxy_events).map_err(ConfigError::EventPattern)?;
    Ok(Some(BackendConfig {
        connect_url,
        event_url,
        events,
        secret,
        timeout: Duration::from_millis(cli.proxy_timeout_ms),
        concurrency: cli.proxy_concurrency as usize,
    }))
}

/// A proxy URL: `http://` with a host (empty counts as unset).
fn proxy_url(var: &'static str, raw: Option<&str>) -> Result<Option<Uri>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let bad = || ConfigError::ProxyUrl {
        var,
        url: raw.to_string(),
    };
    let uri: Uri = raw.parse().map_err(|_| bad())?;
    let host_ok = uri.host().is_some_and(|h| !h.is_empty());
    if uri.scheme_str() != Some("http")
        || !host_ok
        || uri.authority().is_some_and(|a| a.as_str().contains('@'))
    {
        return Err(bad());
    }
    Ok(Some(uri))
}

/// [`Cli::trusted_proxies`] as networks (a bare IP is a /32 or /128).
fn trusted_proxies(raw: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    let mut trusted = Vec::new();
    for raw in raw {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let net = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| ConfigError::TrustedProxy(raw.to_string()))?;
        trusted.push(net);
    }
    Ok(trusted)
}

/// [`Cli::advertise_addr`] (empty counts as unset), else `$POD_IP:<listen port>` when
/// `pod_ip` is set and not empty; `None`: derived from the bound address later.
fn advertise_addr(raw: Option<String>, pod_ip: Option<String>, port: u16) -> Option<String> {
    raw.filter(|a| !a.trim().is_empty()).or_else(|| {
        pod_ip
            .filter(|ip| !ip.is_empty())
            .map(|ip| format!("{ip}:{port}"))
    })
}

/// A rate (0 = off) and an optional burst (default: the rate rounded up) as a limit.
fn rate_limit(
    (rate_name, rate): (&'static str, f64),
    (burst_name, burst): (&'static str, Option<u32>),
) -> Result<Option<RateLimit>, ConfigError> {
    if rate == 0.0 {
        return Ok(None);
    }
    let bad = |name, value: String| ConfigError::Rate { name, value };
    if burst == Some(0) {
        return Err(bad(burst_name, "0".into()));
    }
    let burst = burst.unwrap_or_else(|| rate.ceil().clamp(1.0, u32::MAX as f64) as u32);
    RateLimit::new(rate, burst)
        .map(Some)
        .ok_or_else(|| bad(rate_name, rate.to_string()))
}

fn parse_origins(raw: &[String]) -> Result<CorsOrigins, ConfigError> {
    let list: Vec<String> = raw
        .iter()
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if list.is_empty() {
        return Ok(CorsOrigins::SameOrigin);
    }
    if list.iter().any(|o| o == "*") {
        return Ok(CorsOrigins::Any);
    }
    for o in &list {
        let rest = o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains('/') => {}
            _ => return Err(ConfigError::Origin(o.clone())),
        }
    }
    Ok(CorsOrigins::List(list))
}

/// Replaces the password in a Redis URL with `***` (see
/// [`sio_adapter_redis::redis_url::mask`], the one place that knows how).
pub fn mask_url(url: &str) -> String {
    sio_adapter_redis::redis_url::mask(url)
}

impl fmt::Display for Config {
    /// The effective configuration, one `key=value` per setting, secrets masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cors = match &self.cors {
            CorsOrigins::SameOrigin => "same-origin".to_string(),
            CorsOrigins::Any => "*".to_string(),
            CorsOrigins::List(l) => l.join(","),
        };
        let redis = self
            .redis_url
            .as_deref()
            .map(mask_url)
            .unwrap_or_else(|| "(none: single node, in-memory adapter)".into());
        let auth = self
            .jwt
            .as_ref()
            .map(|j| j.describe())
            .unwrap_or("off".into());
        let limit =
            |l: &Option<RateLimit>| l.map(|l| l.to_string()).unwrap_or_else(|| "off".into());
        write!(
            f,
            "listen={} node_id={} redis={} redis_prefix={} redis_mode={:?} recovery_window_ms={} redis_ca_file={} cors={} auth={} api={} backend={} client_publish=[{}] namespaces=[{}] \
             ping_interval_ms={} ping_timeout_ms={} max_payload={} ws_read_buffer={} worker_threads={} shutdown_grace_ms={} chat={} client_js={} \
             handshake_limit={} event_limit={} trusted_proxies=[{}] header_timeout_ms={} body_timeout_ms={} max_connections={}",
            self.listen,
            self.node_id,
            redis,
            self.redis_prefix,
            self.redis_mode,
            self.recovery_window.map_or(0, |w| w.as_millis()),
            self.redis_ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "system roots".into()),
            cors,
            auth,
            if self.api_key.is_some() { "on" } else { "off" },
            self.backend
                .as_ref()
                .map_or_else(|| "off".to_string(), describe_backend),
            self.client_publish,
            self.namespaces.join(","),
            self.ping_interval.as_millis(),
            self.ping_timeout.as_millis(),
            self.max_payload,
            self.ws_read_buffer,
            self.worker_threads
                .map(|n| n.to_string())
                .unwrap_or_else(|| "per-cpu".into()),
            self.shutdown_grace.as_millis(),
            self.chat,
            self.client_js
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "cdn".into()),
            limit(&self.handshake_limit),
            limit(&self.event_limit),
            self.trusted_proxies
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(","),
            self.header_timeout.as_millis(),
            self.body_timeout.as_millis(),
            self.max_connections
                .map(|n| n.to_string())
                .unwrap_or_else(|| "off".into()),
        )
    }
}

/// The backend settings for the config line (the secret left out).
fn describe_backend(b: &BackendConfig) -> String {
    let url = |u: &Option<Uri>| u.as_ref().map_or_else(|| "off".to_string(), Uri::to_string);
    format!(
        "connect:{},event:{}[{}],timeout_ms:{},concurrency:{}",
        url(&b.connect_url),
        url(&b.event_url),
        b.events,
        b.timeout.as_millis(),
        b.concurrency
    )
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["sio-server"];
        full.extend_from_slice(args);
        Config::from_cli(Cli::try_parse_from(full).expect("clap accepts the flags"))
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:3000".parse().unwrap());
        assert!(c.redis_url.is_none());
        assert!(c.jwt.is_none());
        assert_eq!(c.cors, CorsOrigins::SameOrigin);
        assert_eq!(c.namespaces, ["/"]);
        assert!(c.chat);
        assert_eq!(c.ping_interval, Duration::from_secs(25));
        assert_eq!(c.ping_timeout, Duration::from_secs(20));
        assert_eq!(c.max_payload, 1_000_000);
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.body_timeout, Duration::from_secs(60));
        assert_eq!(c.max_connections, None);
        assert_eq!(c.recovery_window, None);
        let streams = ["--redis-url", "redis://r:6379", "--redis-mode", "streams"];
        assert_eq!(
            parse(&[&streams[..], &["--recovery-window-ms", "120000"]].concat())
                .unwrap()
                .recovery_window,
            Some(Duration::from_secs(120))
        );
        for without_streams in [
            &["--recovery-window-ms", "120000"][..],
            &["--recovery-window-ms", "1", "--redis-url", "redis://r:6379"][..],
        ] {
            let err = parse(without_streams)
                .map(|_| ())
                .expect_err("refused")
                .to_string();
            assert!(err.contains("SIO_RECOVERY_WINDOW_MS needs"), "{err}");
        }
        assert_eq!(
            parse(&["--max-connections", "500"])
                .unwrap()
                .max_connections,
            Some(500)
        );
        assert!(!c.client_publish.matches("anything"));
        // A random UUID node id.
        assert_eq!(c.node_id.len(), 36);
    }

    #[test]
    fn lists_are_split_and_trimmed() {
        let c = parse(&[
            "--cors-origins",
            "https://a.example, http://b.example:8080/",
            "--namespaces",
            "/,/admin,/admin",
            "--client-publish",
            "news:*,public",
        ])
        .unwrap();
        assert_eq!(
            c.cors,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://b.example:8080".into()
            ])
        );
        assert_eq!(c.namespaces, ["/", "/admin"]);
        assert!(c.client_publish.matches("news:today"));
        assert!(c.client_publish.matches("public"));
        assert!(!c.client_publish.matches("private"));
    }

    /// The error once told users to write `redis+sentinel://`, which does not parse: every
    /// scheme it names must be one the node accepts.
    #[test]
    fn an_unsupported_redis_url_is_refused_naming_schemes_that_work() {
        let err = parse(&["--redis-url", "redis+sentinel://h:26379"])
            .expect_err("not a scheme fred reads")
            .to_string();
        let schemes: Vec<&str> = err
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| w.ends_with("://"))
            .collect();
        assert_eq!(schemes.len(), 4, "{err}");
        for scheme in schemes {
            let url = format!("{scheme}h:26379/0?sentinelServiceName=m");
            assert!(
                parse(&["--redis-url", &url]).is_ok(),
                "{scheme} is named but refused: {err}"
            );
        }
    }

    #[test]
    fn redis_url_selects_cluster_mode() {
        let c = parse(&["--redis-url", "redis://:pw@localhost:6379/1"]).unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://:pw@localhost:6379/1"));
        assert_eq!(c.redis_prefix, "socket.io");
        assert_eq!(c.redis_mode, sio_adapter_redis::AdapterMode::Classic);
        let s = parse(&["--redis-url", "redis://h", "--redis-mode", "sharded"]).unwrap();
        assert_eq!(
            s.redis_mode,
            sio_adapter_redis::AdapterMode::Sharded(sio_adapter_redis::SubscriptionMode::Dynamic)
        );
        assert!(parse(&["--redis-url", ""]).unwrap().redis_url.is_none());
        assert!(
            c.to_string()
                .contains("redis=redis://:***@localhost:6379/1")
        );
    }

    #[test]
    fn advertise_addr_is_the_flag_else_the_pod_ip_with_the_listen_port() {
        let pod = || Some("10.1.2.3".to_string());
        assert_eq!(
            advertise_addr(Some("n1:3000".into()), pod(), 80).as_deref(),
            Some("n1:3000")
        );
        assert_eq!(
            advertise_addr(Some(" ".into()), pod(), 80).as_deref(),
            Some("10.1.2.3:80")
        );
        assert_eq!(advertise_addr(None, Some(String::new()), 80), None);
        assert_eq!(advertise_addr(None, None, 80), None);
    }

    #[test]
    fn star_origin_means_any() {
        let c = parse(&["--cors-origins", "https://a.example,*"]).unwrap();
        assert_eq!(c.cors, CorsOrigins::Any);
    }

    #[test]
    fn bad_values_are_rejected_with_the_setting_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--cors-origins", "a.example"], "SIO_CORS_ORIGINS"),
            (&["--namespaces", "admin"], "SIO_NAMESPACES"),
            (&["--namespaces", "/chat"], "/chat"),
            (&["--ping-interval-ms", "10"], "SIO_PING_INTERVAL_MS"),
            (&["--max-payload", "1"], "SIO_MAX_PAYLOAD"),
            (&["--ws-read-buffer", "16"], "SIO_WS_READ_BUFFER"),
            (&["--worker-threads", "0"], "SIO_WORKER_THREADS"),
            (&["--worker-threads", "1025"], "SIO_WORKER_THREADS"),
            (&["--header-timeout-ms", "0"], "SIO_HEADER_TIMEOUT_MS"),
            (&["--header-timeout-ms", "600001"], "SIO_HEADER_TIMEOUT_MS"),
            (&["--body-timeout-ms", "99"], "SIO_BODY_TIMEOUT_MS"),
            (&["--max-connections", "10000001"], "SIO_MAX_CONNECTIONS"),
            (
                &["--recovery-window-ms", "86400001"],
                "SIO_RECOVERY_WINDOW_MS",
            ),
            (&["--api-key", "too-short"], "SIO_API_KEY"),
            (&["--node-id", "a b"], "SIO_NODE_ID"),
            (&["--client-publish", "a[b"], "SIO_CLIENT_PUBLISH"),
            (&["--redis-url", "http://x"], "SIO_REDIS_URL"),
            (&["--redis-prefix", "a#b"], "SIO_REDIS_PREFIX"),
            (&["--redis-mode", "fancy"], "SIO_REDIS_MODE"),
            (
                &["--jwt-secret", "s", "--jwt-public-key", "k"],
                "SIO_JWT_SECRET",
            ),
            (&["--jwt-public-key", "/nonexistent.pem"], "JWT"),
            (&["--client-js", "/nonexistent.js"], "SIO_CLIENT_JS"),
        ];
        for (args, needle) in cases {
            let err = parse(args).expect_err(&format!("{args:?} must be rejected"));
            let msg = err.to_string();
            assert!(msg.contains(needle), "{args:?}: {msg:?} lacks {needle:?}");
        }
    }

    #[test]
    fn limits_are_off_by_default_and_checked() {
        let c = parse(&[]).unwrap();
        assert!(c.handshake_limit.is_none() && c.event_limit.is_none());
        assert!(
            c.to_string()
                .contains("handshake_limit=off event_limit=off")
        );
        let c = parse(&[
            "--handshake-rate",
            "2.5",
            "--event-rate",
            "10",
            "--event-burst",
            "20",
            "--trusted-proxies",
            "10.0.0.0/8, 192.0.2.7",
        ])
        .unwrap();
        assert_eq!(c.handshake_limit, RateLimit::new(2.5, 3));
        assert_eq!(c.event_limit, RateLimit::new(10.0, 20));
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.trusted_proxies[1].to_string(), "192.0.2.7/32");
        let cases: &[(&[&str], &str)] = &[
            (&["--handshake-rate=-1"], "SIO_HANDSHAKE_RATE"),
            (
                &["--event-rate", "1", "--event-burst", "0"],
                "SIO_EVENT_BURST",
            ),
            (&["--event-rate", "inf"], "SIO_EVENT_RATE"),
            (&["--trusted-proxies", "nginx"], "SIO_TRUSTED_PROXIES"),
            (&["--redis-ca-file", "/etc/hosts"], "SIO_REDIS_CA_FILE"),
            (
                &[
                    "--redis-url",
                    "rediss://h",
                    "--redis-ca-file",
                    "/no/such.pem",
                ],
                "/no/such.pem",
            ),
            (
                &["--redis-url", "rediss://h", "--redis-ca-file", "/etc/hosts"],
                "SIO_REDIS_CA_FILE",
            ),
        ];
        for (args, needle) in cases {
            let err = parse(args).expect_err(&format!("{args:?} must be rejected"));
            assert!(err.to_string().contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_backend_needs_http_urls_and_a_whsec_secret() {
        assert!(parse(&[]).unwrap().backend.is_none());
        let secret = ["--proxy-secret", "whsec_c2VjcmV0LWtleQ=="];
        let c = parse(
            &[
                &["--connect-proxy-url", "http://backend:8000/connect"][..],
                &secret,
            ]
            .concat(),
        )
        .unwrap();
        let b = c.backend.as_ref().unwrap();
        assert_eq!(
            b.connect_url.as_ref().unwrap().to_string(),
            "http://backend:8000/connect"
        );
        assert!(b.event_url.is_none());
        assert_eq!(b.timeout, Duration::from_secs(5));
        let shown = c.to_string();
        assert!(
            shown.contains("backend=connect:http://backend:8000/connect,event:off"),
            "{shown}"
        );
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        let cases: &[(&[&str], &str)] = &[
            (&["--connect-proxy-url", "http://b/c"], "SIO_PROXY_SECRET"),
            (
                &[
                    "--event-proxy-url",
                    "http://b/e",
                    "--proxy-secret",
                    "c2VjcmV0",
                ],
                "whsec_",
            ),
            (
                &[
                    "--event-proxy-url",
                    "http://b/e",
                    "--proxy-secret",
                    "whsec_***",
                ],
                "SIO_PROXY_SECRET",
            ),
            (
                &[
                    "--connect-proxy-url",
                    "https://b/c",
                    "--proxy-secret",
                    "whsec_c2VjcmV0",
                ],
                "SIO_CONNECT_PROXY_URL",
            ),
            (
                &[
                    "--connect-proxy-url",
                    "backend:8000",
                    "--proxy-secret",
                    "whsec_c2VjcmV0",
                ],
                "SIO_CONNECT_PROXY_URL",
            ),
            (
                &[
                    "--event-proxy-url",
                    "http:///x",
                    "--proxy-secret",
                    "whsec_c2VjcmV0",
                ],
                "SIO_EVENT_PROXY_URL",
            ),
            (
                &[
                    "--event-proxy-url",
                    "http://b/e",
                    "--proxy-secret",
                    "whsec_c2VjcmV0",
                    "--event-proxy-events",
                    "a[b",
                ],
                "SIO_EVENT_PROXY_EVENTS",
            ),
            (&["--proxy-timeout-ms", "50"], "SIO_PROXY_TIMEOUT_MS"),
            (&["--proxy-concurrency", "0"], "SIO_PROXY_CONCURRENCY"),
        ];
        for (args, needle) in cases {
            let err = parse(args).expect_err(&format!("{args:?} must be rejected"));
            assert!(err.to_string().contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn chat_namespace_is_free_when_chat_is_off() {
        let c = parse(&["--chat", "false", "--namespaces", "/chat"]).unwrap();
        assert_eq!(c.namespaces, ["/chat"]);
        assert!(!c.chat);
    }

    #[test]
    fn clap_rejects_malformed_numbers_and_addresses() {
        assert!(Cli::try_parse_from(["sio-server", "--listen", "nope"]).is_err());
        assert!(Cli::try_parse_from(["sio-server", "--ping-interval-ms", "-1"]).is_err());
    }

    #[test]
    fn display_masks_secrets() {
        let c = parse(&["--jwt-secret", "hunter2-very-secret"]).unwrap();
        let shown = c.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("auth=jwt HS256"), "{shown}");
        assert_eq!(
            mask_url("redis://user:pw@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(mask_url("redis://:pw@host"), "redis://:***@host");
        assert_eq!(mask_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            mask_url("redis-sentinel://:pw@h:26379/0?sentinelServiceName=m&sentinelPassword=sp"),
            "redis-sentinel://:***@h:26379/0?sentinelServiceName=m&sentinelPassword=***"
        );
        assert_eq!(
            mask_url("rediss://user:p@ss@host"),
            "rediss://user:***@host"
        );
    }
}

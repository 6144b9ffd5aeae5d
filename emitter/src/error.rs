//! Errors of the emitter.

use std::time::Duration;

use sio_protocol::ProtocolError;

/// Why an emit or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The event name is reserved by Socket.IO (`connect`, `disconnect`, ...).
    #[error("event {0:?} is reserved by Socket.IO")]
    ReservedEvent(String),
    /// An argument could not be turned into a MessagePack value.
    #[error("cannot encode the arguments: {0}")]
    Args(String),
    /// The message could not be encoded.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The Redis URL is not a Redis URL.
    #[error("invalid Redis URL {0:?}: expected {schemes}", schemes = sio_redis_config::redis_url::SCHEMES)]
    Url(String),
    /// The CA file for `rediss://` cannot be used.
    #[error("Redis CA file: {0}")]
    Tls(#[from] sio_redis_config::tls::TlsError),
    /// Redis refused the command or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// Not every node answered a request in time.
    #[error("timed out after {timeout:?}: {answered} of {expected} nodes answered")]
    Timeout {
        /// The timeout.
        timeout: Duration,
        /// Nodes that answered.
        answered: usize,
        /// Nodes subscribed to the namespace.
        expected: usize,
    },
}

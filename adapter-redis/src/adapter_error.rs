//! Errors of the adapter's Redis side.

use std::time::Duration;

use crate::ProtocolError;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// Redis answered with an error or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// The Redis URL or client settings are invalid.
    #[error("invalid Redis configuration: {0}")]
    Config(String),
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A cluster request did not get every answer in time.
    #[error(
        "{kind} request timed out after {timeout:?}: {answered} of {expected} other nodes answered"
    )]
    Timeout {
        /// The request type.
        kind: String,
        /// The timeout that ran out.
        timeout: Duration,
        /// Nodes that answered.
        answered: usize,
        /// Nodes that were expected to answer.
        expected: usize,
    },
    /// The adapter was closed.
    #[error("the adapter is closed")]
    Closed,
    /// The publish queue is full (Redis is slower than the broadcasts, or away): the
    /// message was not sent to the other nodes, and was counted.
    #[error("overloaded: the publish queue to Redis is full")]
    Overloaded,
    /// socketioxide could not encode or decode event data.
    #[error("event data: {0}")]
    Parser(String),
}

impl AdapterError {
    pub(crate) fn config(e: fred::error::Error) -> Self {
        AdapterError::Config(e.to_string())
    }

    /// Whether retrying cannot help: bad configuration or credentials refused.
    pub fn is_permanent(&self) -> bool {
        use fred::error::ErrorKind;
        match self {
            AdapterError::Config(_) => true,
            AdapterError::Redis(e) => {
                matches!(
                    e.kind(),
                    ErrorKind::Auth | ErrorKind::Config | ErrorKind::Url | ErrorKind::Tls
                ) || e.details().contains("WRONGPASS")
                    || e.details().contains("NOAUTH")
                    // rustls: the server's certificate does not verify against the CAs
                    // trusted (wrong CA, wrong host name, expired): retrying cannot help.
                    || e.details().contains("invalid peer certificate")
                    || e.details().contains("InvalidCertificate")
            }
            _ => false,
        }
    }
}

impl From<AdapterError> for socketioxide_core::adapter::errors::AdapterError {
    fn from(e: AdapterError) -> Self {
        Self(Box::new(e))
    }
}

//! Errors of the emitter.

use sio_adapter_redis::ProtocolError;

/// Why an emit was not published.
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
}

//! The error type of the wire-protocol layer.

use crate::RequestType;

/// Why a channel name or a message could not be read or written.
///
/// Decoding never panics: garbage on a channel (a foreign publisher, a truncated payload, a
/// newer protocol) always ends up here, so a receive loop can log it, count it and go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The channel name does not start with any channel of the expected prefix.
    #[error("channel {channel:?} is not one of the {prefix:?} channels")]
    ForeignChannel {
        /// The channel name as received.
        channel: String,
        /// The prefix (`key`) the channels were expected to use.
        prefix: String,
    },
    /// The channel name has the right prefix but the rest of it is not well formed.
    #[error("channel {channel:?} is malformed: {reason}")]
    MalformedChannel {
        /// The channel name as received.
        channel: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The channel belongs to the right prefix but to another namespace.
    #[error("channel {channel:?} is not a channel of namespace {expected:?}")]
    ForeignNamespace {
        /// The channel name as received.
        channel: String,
        /// The namespace the channels were expected to belong to.
        expected: String,
    },
    /// The payload is empty.
    #[error("empty payload")]
    EmptyPayload,
    /// The payload is not valid MessagePack.
    #[error("invalid MessagePack at byte {offset}: {kind}")]
    Msgpack {
        /// Byte offset in the payload of the value that could not be read, or of the
        /// trailing bytes.
        offset: usize,
        /// What went wrong there.
        kind: MsgpackErrorKind,
    },
    /// The payload starts with `{` but is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A required field is absent (or `nil` / `null`).
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field is present but holds the wrong kind of value.
    #[error("field `{field}` must be {expected}")]
    InvalidField {
        /// Dotted path of the field, e.g. `opts.rooms`.
        field: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
    /// The `type` of a request or response is not one this protocol knows.
    #[error("unknown request type {0}")]
    UnknownRequestType(u64),
    /// The `type` of a sharded-mode message is not one of socket.io-adapter's `MessageType`s.
    #[error("unknown sharded message type {0}")]
    UnknownMessageType(u64),
    /// A response type (`BROADCAST_CLIENT_COUNT`, `BROADCAST_ACK`) arrived as a request.
    #[error("{0:?} is a response, not a request")]
    NotARequest(RequestType),
    /// A response arrived for a kind of request that gets no response of that shape.
    #[error("no response of this shape is expected for a {0:?} request")]
    UnexpectedResponse(RequestType),
    /// A broadcast carried a Socket.IO packet type other than EVENT (2) or BINARY_EVENT (5).
    #[error("unsupported packet type {0}: only EVENT (2) and BINARY_EVENT (5) are broadcast")]
    UnsupportedPacketType(u64),
    /// A value is too large or too deeply nested to be encoded.
    #[error("cannot encode: {0}")]
    Encode(&'static str),
}

/// What exactly was wrong with a MessagePack payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgpackErrorKind {
    /// The payload ends in the middle of a value.
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// The byte 0xc1, which MessagePack reserves and never uses.
    #[error("reserved marker 0xc1")]
    ReservedMarker,
    /// A complete value was read but bytes remain after it.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// Arrays and maps nest deeper than [`crate::msgpack::MAX_DEPTH`].
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
}

//! Building the messages (no I/O): what to `PUBLISH`, and where.

/// A message ready to be sent with `PUBLISH channel payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The Redis channel.
    pub channel: String,
    /// The payload: MessagePack for broadcasts, JSON for requests.
    pub payload: Vec<u8>,
}

//! Sharded mode's timing defaults and subscription modes: which rooms get a channel of
//! their own.

/// How long `fetchSockets` (without a `timeout` flag) and `serverSideEmit` with an ack wait for
/// the other nodes, in milliseconds (socket.io-adapter's `DEFAULT_TIMEOUT`).
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// `ClusterAdapterWithHeartbeat`'s default `heartbeatInterval`, in milliseconds: a node that has
/// published nothing for this long sends a `HEARTBEAT`. Not used by the 8.3.0 sharded adapter.
pub const HEARTBEAT_INTERVAL_MS: u64 = 5_000;

/// `ClusterAdapterWithHeartbeat`'s default `heartbeatTimeout`, in milliseconds: a node not heard
/// from for longer is considered gone. Not used by the 8.3.0 sharded adapter.
pub const HEARTBEAT_TIMEOUT_MS: u64 = 10_000;

/// The length, in UTF-16 code units, of a Socket.IO socket id, and so of a room the publisher
/// takes for a socket's private room.
pub const SOCKET_ID_LEN: usize = 20;

/// Whether the publisher takes `room` for a socket id: the sharded adapter's
/// `looksLikeASocketId`, which only checks that the JavaScript string length (UTF-16 code units,
/// not bytes or chars) is [`SOCKET_ID_LEN`].
pub fn looks_like_a_socket_id(room: &str) -> bool {
    room.chars().map(char::len_utf16).sum::<usize>() == SOCKET_ID_LEN
}

/// Which rooms get a channel of their own (the adapter's `subscriptionMode` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SubscriptionMode {
    /// `"static"`: only the main and response channels, 2 per namespace.
    Static,
    /// `"dynamic"`, the default: also one channel per public room (not a socket's own room).
    #[default]
    Dynamic,
    /// `"dynamic-private"`: one channel per room, sockets' own rooms included.
    DynamicPrivate,
}

impl SubscriptionMode {
    /// The option's value in Node: `static`, `dynamic` or `dynamic-private`.
    pub fn name(self) -> &'static str {
        match self {
            SubscriptionMode::Static => "static",
            SubscriptionMode::Dynamic => "dynamic",
            SubscriptionMode::DynamicPrivate => "dynamic-private",
        }
    }

    /// The mode an option value names, if any. (Node treats an unknown value like `static`.)
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "static" => Some(SubscriptionMode::Static),
            "dynamic" => Some(SubscriptionMode::Dynamic),
            "dynamic-private" => Some(SubscriptionMode::DynamicPrivate),
            _ => None,
        }
    }

    /// Publisher side: whether a broadcast without ack to exactly `room` goes on the room's
    /// channel rather than the main one.
    pub fn publishes_on_room_channel(self, room: &str) -> bool {
        match self {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !looks_like_a_socket_id(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Subscriber side: whether a node subscribes to the channel of a room while the room has
    /// local members. `is_local_socket_id`: the room is the id of a socket connected to this
    /// node in this namespace (that socket's own room).
    pub fn subscribes_to_room(self, is_local_socket_id: bool) -> bool {
        match self {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !is_local_socket_id,
            SubscriptionMode::DynamicPrivate => true,
        }
    }
}

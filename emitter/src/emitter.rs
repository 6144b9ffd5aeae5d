//! The emitter and its broadcast operator.

use serde::Serialize;
use sio_adapter_redis::protocol::{
    BroadcastMessage, BroadcastOptions, Channels, DEFAULT_PREFIX, Layout, Packet,
};
use sio_adapter_redis::rmpv;

use crate::EmitError;

/// Event names a server never sends to clients; emitting one is an error.
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// A message ready to be sent with `PUBLISH channel payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The Redis channel.
    pub channel: String,
    /// The MessagePack payload.
    pub payload: Vec<u8>,
}

/// Entry point: a key prefix (default `socket.io`, as the Node adapter's `key`).
#[derive(Debug, Clone)]
pub struct Emitter {
    prefix: String,
}

impl Default for Emitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Emitter {
    /// An emitter with the default prefix `socket.io`.
    pub fn new() -> Self {
        Self::with_prefix(DEFAULT_PREFIX)
    }

    /// An emitter for clusters configured with another key prefix.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// Targets namespace `nsp`.
    pub fn of(&self, nsp: impl Into<String>) -> Operator {
        Operator {
            channels: Channels::new(self.prefix.clone(), nsp),
            opts: BroadcastOptions::default(),
        }
    }

    /// Targets `room` in namespace `/`.
    pub fn to(&self, room: impl Into<String>) -> Operator {
        self.of("/").to(room)
    }
}

/// A broadcast being built: namespace, rooms, exceptions, flags.
#[derive(Debug, Clone)]
pub struct Operator {
    channels: Channels,
    opts: BroadcastOptions,
}

impl Operator {
    /// Adds a target room (sockets in any target room receive the event once).
    pub fn to(mut self, room: impl Into<String>) -> Self {
        self.opts.rooms.push(room.into());
        self
    }

    /// Same as [`Operator::to`].
    pub fn within(self, room: impl Into<String>) -> Self {
        self.to(room)
    }

    /// Excludes sockets in `room`.
    pub fn except(mut self, room: impl Into<String>) -> Self {
        self.opts.except.push(room.into());
        self
    }

    /// The event may be dropped for clients that are not ready to receive it.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = Some(true);
        self
    }

    /// Whether to compress the event on the websocket.
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.flags.compress = Some(compress);
        self
    }

    /// Builds the broadcast of `event` with `args` (a tuple or array of arguments; byte
    /// buffers serialized as bytes, e.g. `serde_bytes`, travel as binary).
    pub fn emit<T: Serialize>(&self, event: &str, args: T) -> Result<Publish, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_string()));
        }
        let value = rmpv::ext::to_value(args).map_err(|e| EmitError::Args(e.to_string()))?;
        let args = match value {
            rmpv::Value::Array(items) => items,
            rmpv::Value::Nil => Vec::new(),
            other => vec![other],
        };
        let packet = Packet::event(self.channels.nsp(), event, args);
        let message = BroadcastMessage::from_emitter(packet, self.opts.clone());
        Ok(Publish {
            channel: self.channels.for_rooms(&self.opts.rooms),
            payload: message.encode(Layout::Emitter)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_broadcast_goes_to_the_room_channel() {
        let p = Emitter::new().to("r1").emit("ev", ("a", 1)).unwrap();
        assert_eq!(p.channel, "socket.io#/#r1#");
        let back = BroadcastMessage::decode(&p.payload).unwrap();
        assert!(back.is_from_emitter());
        assert_eq!(back.packet.event_name(), Some("ev"));
        assert_eq!(
            back.packet.args(),
            [rmpv::Value::from("a"), rmpv::Value::from(1)]
        );
        assert_eq!(back.opts.rooms, ["r1"]);
    }

    #[test]
    fn several_rooms_or_none_use_the_namespace_channel() {
        let two = Emitter::new()
            .of("/n")
            .to("a")
            .to("b")
            .emit("e", [1])
            .unwrap();
        assert_eq!(two.channel, "socket.io#/n#");
        let all = Emitter::with_prefix("app").of("/").emit("e", [1]).unwrap();
        assert_eq!(all.channel, "app#/#");
    }

    #[test]
    fn flags_and_except_travel() {
        let p = Emitter::new()
            .of("/")
            .except("x")
            .volatile()
            .compress(false)
            .emit("e", ())
            .unwrap();
        let back = BroadcastMessage::decode(&p.payload).unwrap();
        assert_eq!(back.opts.except, ["x"]);
        assert_eq!(back.opts.flags.volatile, Some(true));
        assert_eq!(back.opts.flags.compress, Some(false));
    }

    #[test]
    fn reserved_events_are_refused() {
        let err = Emitter::new().of("/").emit("disconnect", ()).unwrap_err();
        assert!(matches!(err, EmitError::ReservedEvent(e) if e == "disconnect"));
    }
}

//! Redis channel names, as `@socket.io/redis-adapter` 8.x (classic mode) and
//! `@socket.io/redis-emitter` 5.x build them.
//!
//! For the prefix `key` (default `socket.io`) and a namespace `nsp`:
//!
//! | channel | name | carries |
//! |---|---|---|
//! | broadcast | `socket.io#<nsp>#` | broadcasts to several rooms or to all |
//! | room | `socket.io#<nsp>#<room>#` | broadcasts to exactly one room |
//! | pattern | `socket.io#<nsp>#*` | what a node `PSUBSCRIBE`s to receive both |
//! | request | `socket.io-request#<nsp>#` | requests between nodes (JSON, or msgpack for BROADCAST) |
//! | response | `socket.io-response#<nsp>#` | responses, unless sent to a specific node |
//! | specific response | `socket.io-response#<nsp>#<uid>#` | responses for node `uid` (`publishOnSpecificResponseChannel`) |
//!
//! Nothing is escaped: a `#` inside a namespace or room name is kept as is, which is why
//! [`Channels::parse`], knowing the namespace, is exact, while [`parse_channel`] has to assume
//! that the namespace holds no `#`.

use crate::error::ProtocolError;

/// The prefix (`key` option) the Node adapter and emitter use by default.
pub const DEFAULT_PREFIX: &str = "socket.io";

/// All channel names of one namespace under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    prefix: String,
    nsp: String,
    broadcast: String,
    request: String,
    response: String,
}

/// What a received channel name designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel<'a> {
    /// A broadcast channel: to the whole namespace (`room` is `None`) or to one room.
    Broadcast {
        /// The namespace, e.g. `/`.
        nsp: &'a str,
        /// The single targeted room, for `socket.io#<nsp>#<room>#`.
        room: Option<&'a str>,
    },
    /// The request channel of a namespace.
    Request {
        /// The namespace, e.g. `/`.
        nsp: &'a str,
    },
    /// A response channel: the shared one (`uid` is `None`) or a node's own.
    Response {
        /// The namespace, e.g. `/`.
        nsp: &'a str,
        /// The node the responses are for, on a specific response channel.
        uid: Option<&'a str>,
    },
}

impl<'a> Channel<'a> {
    /// The namespace the channel belongs to.
    pub fn nsp(&self) -> &'a str {
        match *self {
            Channel::Broadcast { nsp, .. }
            | Channel::Request { nsp }
            | Channel::Response { nsp, .. } => nsp,
        }
    }
}

impl Channels {
    /// The channels of namespace `nsp` (e.g. `/`, `/chat`) under `prefix` (e.g. `socket.io`).
    pub fn new(prefix: impl Into<String>, nsp: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let nsp = nsp.into();
        Self {
            broadcast: format!("{prefix}#{nsp}#"),
            request: format!("{prefix}-request#{nsp}#"),
            response: format!("{prefix}-response#{nsp}#"),
            prefix,
            nsp,
        }
    }

    /// The channels of namespace `nsp` under [`DEFAULT_PREFIX`].
    pub fn with_default_prefix(nsp: impl Into<String>) -> Self {
        Self::new(DEFAULT_PREFIX, nsp)
    }

    /// The prefix (`key`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// `socket.io#<nsp>#`: broadcasts to the whole namespace or to several rooms.
    pub fn broadcast(&self) -> &str {
        &self.broadcast
    }

    /// `socket.io#<nsp>#<room>#`: broadcasts to exactly one room.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.broadcast)
    }

    /// Where a broadcast to `rooms` is published: the room channel when exactly one distinct
    /// room is targeted, the broadcast channel otherwise (as the Node adapter and emitter do).
    pub fn for_rooms<S: AsRef<str>>(&self, rooms: &[S]) -> String {
        match rooms.split_first() {
            Some((first, rest)) if rest.iter().all(|r| r.as_ref() == first.as_ref()) => {
                self.room(first.as_ref())
            }
            _ => self.broadcast.clone(),
        }
    }

    /// `socket.io#<nsp>#*`: the pattern a node `PSUBSCRIBE`s to for every broadcast.
    pub fn broadcast_pattern(&self) -> String {
        format!("{}*", self.broadcast)
    }

    /// `socket.io-request#<nsp>#`: requests between nodes. `PUBSUB NUMSUB` on it counts nodes.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// `socket.io-response#<nsp>#`: the shared response channel.
    pub fn response(&self) -> &str {
        &self.response
    }

    /// `socket.io-response#<nsp>#<uid>#`: responses meant for node `uid` only.
    pub fn specific_response(&self, uid: &str) -> String {
        format!("{}{uid}#", self.response)
    }

    /// Reads a received channel name, which must belong to this prefix and namespace.
    ///
    /// Exact even when the namespace or room holds a `#`.
    pub fn parse<'c>(&self, channel: &'c str) -> Result<Channel<'c>, ProtocolError> {
        if let Some(rest) = channel.strip_prefix(self.broadcast.as_str()) {
            let nsp = &channel[self.prefix.len() + 1..self.broadcast.len() - 1];
            let room = trailing_part(channel, rest, "room channel must end with '#'")?;
            return Ok(Channel::Broadcast { nsp, room });
        }
        if channel == self.request {
            let nsp = &channel[self.prefix.len() + "-request#".len()..channel.len() - 1];
            return Ok(Channel::Request { nsp });
        }
        if let Some(rest) = channel.strip_prefix(self.response.as_str()) {
            let nsp = &channel[self.prefix.len() + "-response#".len()..self.response.len() - 1];
            let uid = trailing_part(channel, rest, "specific response channel must end with '#'")?;
            return Ok(Channel::Response { nsp, uid });
        }
        // Same prefix, other namespace? Say so rather than "foreign".
        parse_channel(&self.prefix, channel)?;
        Err(ProtocolError::ForeignNamespace {
            channel: channel.to_owned(),
            expected: self.nsp.clone(),
        })
    }
}

/// What follows a known channel: nothing, or `<part>#`.
fn trailing_part<'c>(
    channel: &'c str,
    rest: &'c str,
    reason: &'static str,
) -> Result<Option<&'c str>, ProtocolError> {
    if rest.is_empty() {
        return Ok(None);
    }
    match rest.strip_suffix('#') {
        Some("") => Ok(None),
        Some(part) => Ok(Some(part)),
        None => Err(malformed(channel, reason)),
    }
}

fn malformed(channel: &str, reason: &'static str) -> ProtocolError {
    ProtocolError::MalformedChannel {
        channel: channel.to_owned(),
        reason,
    }
}

/// Reads any channel name of `prefix`, whatever its namespace.
///
/// The namespace runs up to the first `#` after the channel kind, so a namespace containing `#`
/// is misread; use [`Channels::parse`] when the namespace is known.
pub fn parse_channel<'c>(prefix: &str, channel: &'c str) -> Result<Channel<'c>, ProtocolError> {
    let foreign = || ProtocolError::ForeignChannel {
        channel: channel.to_owned(),
        prefix: prefix.to_owned(),
    };
    let rest = channel.strip_prefix(prefix).ok_or_else(foreign)?;
    #[derive(PartialEq)]
    enum Kind {
        Broadcast,
        Request,
        Response,
    }
    let (kind, body) = if let Some(body) = rest.strip_prefix("-request#") {
        (Kind::Request, body)
    } else if let Some(body) = rest.strip_prefix("-response#") {
        (Kind::Response, body)
    } else if let Some(body) = rest.strip_prefix('#') {
        (Kind::Broadcast, body)
    } else {
        return Err(foreign());
    };
    let inner = body
        .strip_suffix('#')
        .ok_or_else(|| malformed(channel, "channel must end with '#'"))?;
    // A request channel has nothing after the namespace; the others may have `<room|uid>#`.
    let (nsp, tail) = match inner.split_once('#') {
        Some((nsp, tail)) if kind != Kind::Request => (nsp, Some(tail).filter(|t| !t.is_empty())),
        _ => (inner, None),
    };
    if nsp.is_empty() {
        return Err(malformed(channel, "empty namespace"));
    }
    Ok(match kind {
        Kind::Broadcast => Channel::Broadcast { nsp, room: tail },
        Kind::Request => Channel::Request { nsp },
        Kind::Response => Channel::Response { nsp, uid: tail },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_node_adapter() {
        let c = Channels::with_default_prefix("/");
        assert_eq!(c.broadcast(), "socket.io#/#");
        assert_eq!(c.room("room1"), "socket.io#/#room1#");
        assert_eq!(c.broadcast_pattern(), "socket.io#/#*");
        assert_eq!(c.request(), "socket.io-request#/#");
        assert_eq!(c.response(), "socket.io-response#/#");
        assert_eq!(
            c.specific_response("abc123"),
            "socket.io-response#/#abc123#"
        );
        let custom = Channels::new("myapp", "/chat");
        assert_eq!(custom.broadcast(), "myapp#/chat#");
        assert_eq!(custom.request(), "myapp-request#/chat#");
    }

    #[test]
    fn one_distinct_room_uses_the_room_channel() {
        let c = Channels::with_default_prefix("/");
        assert_eq!(c.for_rooms::<&str>(&[]), "socket.io#/#");
        assert_eq!(c.for_rooms(&["a"]), "socket.io#/#a#");
        assert_eq!(c.for_rooms(&["a", "a"]), "socket.io#/#a#");
        assert_eq!(c.for_rooms(&["a", "b"]), "socket.io#/#");
    }

    #[test]
    fn parse_own_channels() {
        let c = Channels::with_default_prefix("/");
        assert_eq!(
            c.parse("socket.io#/#").expect("broadcast"),
            Channel::Broadcast {
                nsp: "/",
                room: None
            }
        );
        assert_eq!(
            c.parse("socket.io#/#a#b#").expect("room with #"),
            Channel::Broadcast {
                nsp: "/",
                room: Some("a#b")
            }
        );
        assert_eq!(
            c.parse("socket.io-request#/#").expect("request"),
            Channel::Request { nsp: "/" }
        );
        assert_eq!(
            c.parse("socket.io-response#/#").expect("response"),
            Channel::Response {
                nsp: "/",
                uid: None
            }
        );
        assert_eq!(
            c.parse("socket.io-response#/#x1#").expect("specific"),
            Channel::Response {
                nsp: "/",
                uid: Some("x1")
            }
        );
    }

    #[test]
    fn parse_knows_a_namespace_with_a_hash() {
        let c = Channels::with_default_prefix("/a#b");
        assert_eq!(
            c.parse("socket.io#/a#b#r#").expect("room"),
            Channel::Broadcast {
                nsp: "/a#b",
                room: Some("r")
            }
        );
    }

    #[test]
    fn parse_rejects_foreign_and_malformed_channels() {
        let c = Channels::with_default_prefix("/");
        assert!(matches!(
            c.parse("other#/#"),
            Err(ProtocolError::ForeignChannel { .. })
        ));
        assert!(matches!(
            c.parse("socket.iox#/#"),
            Err(ProtocolError::ForeignChannel { .. })
        ));
        assert!(matches!(
            c.parse("socket.io#/chat#"),
            Err(ProtocolError::ForeignNamespace { .. })
        ));
        assert!(matches!(
            c.parse("socket.io#/#room"),
            Err(ProtocolError::MalformedChannel { .. })
        ));
        assert!(matches!(
            c.parse(""),
            Err(ProtocolError::ForeignChannel { .. })
        ));
    }

    #[test]
    fn parse_any_namespace() {
        assert_eq!(
            parse_channel("socket.io", "socket.io#/chat#lobby#").expect("room"),
            Channel::Broadcast {
                nsp: "/chat",
                room: Some("lobby")
            }
        );
        assert_eq!(
            parse_channel("socket.io", "socket.io-response#/admin#srv001#").expect("specific"),
            Channel::Response {
                nsp: "/admin",
                uid: Some("srv001")
            }
        );
        assert_eq!(
            parse_channel("myapp", "myapp-request#/#").expect("request"),
            Channel::Request { nsp: "/" }
        );
        assert!(matches!(
            parse_channel("socket.io", "socket.io##"),
            Err(ProtocolError::MalformedChannel { .. })
        ));
        assert!(matches!(
            parse_channel("socket.io", "socket.io#/"),
            Err(ProtocolError::MalformedChannel { .. })
        ));
        assert!(matches!(
            parse_channel("socket.io", "socket.io-other#/#"),
            Err(ProtocolError::ForeignChannel { .. })
        ));
    }
}

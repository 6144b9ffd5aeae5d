//! Channel names: what a pattern subscription delivers is matched by Redis glob, so any
//! name under the prefix can arrive, including names another application (or another
//! prefix that starts with ours) publishes on.
//!
//! - `parse_channel`, `Channels::parse` and `parse_sharded_channel` never panic, on any
//!   UTF-8 (multi-byte characters at the cut points included);
//! - round trip: the channels a node builds for a prefix, namespace and room parse back
//!   to that namespace and room.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_adapter_redis::protocol::sharded::parse_sharded_channel;
use sio_adapter_redis::protocol::{Channel, Channels, ShardedChannels, parse_channel};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    // Input: "<prefix>\n<nsp>\n<room>\n<channel>"; missing parts are empty.
    let mut parts = text.splitn(4, '\n');
    let prefix = parts.next().unwrap_or_default();
    let nsp = parts.next().unwrap_or_default();
    let room = parts.next().unwrap_or_default();
    let channel = parts.next().unwrap_or(text);

    for p in [prefix, "socket.io"] {
        let _ = parse_channel(p, channel);
        let _ = Channels::new(p, nsp).parse(channel);
        let _ = parse_sharded_channel(p, channel, room);
        let _ = ShardedChannels::new(p, nsp).parse(channel, room);
    }

    let channels = Channels::new(prefix, nsp);
    assert_eq!(
        channels.parse(channels.broadcast()).ok(),
        Some(Channel::Broadcast { nsp, room: None })
    );
    assert_eq!(
        channels.parse(channels.request()).ok(),
        Some(Channel::Request { nsp })
    );
    let room_channel = channels.room(room);
    let expected_room = (!room.is_empty()).then_some(room);
    assert_eq!(
        channels.parse(&room_channel).ok(),
        Some(Channel::Broadcast {
            nsp,
            room: expected_room
        }),
        "{room_channel:?}"
    );
    assert_eq!(channels.for_rooms(&[room]), room_channel);
});

//! A payload on a sharded channel (`createShardedAdapter`: `{type, data, uid, nsp}`).
//!
//! - never panics: decoding, the translation to domain messages the dispatcher does
//!   (`wire::incoming`), and for broadcasts the conversion to the local packet;
//! - a decoded message re-encodes to bytes that decode and re-encode identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_adapter_redis::decode_broadcast_for_delivery;
use sio_adapter_redis::protocol::{BroadcastMessage, Layout, ShardedMessage};
use sio_adapter_redis::wire::{Incoming, incoming};
use socketioxide_parser_common::CommonParser;

fuzz_target!(|payload: &[u8]| {
    let Ok(message) = ShardedMessage::decode(payload) else {
        return;
    };
    let _ = message.message_type();
    if let Ok(bytes) = message.encode() {
        let again = ShardedMessage::decode(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded sharded message does not decode: {e}"));
        assert_eq!(
            again.encode().expect("a decoded re-encoding encodes"),
            bytes,
            "encode(decode(encode(m))) != encode(m)"
        );
    }
    if let Some(Incoming::Broadcast(broadcast)) = incoming(message) {
        // The adapter delivers it like a classic broadcast.
        let Ok(classic) = BroadcastMessage::new(broadcast.uid, broadcast.packet, broadcast.opts)
            .encode(Layout::Adapter)
        else {
            return;
        };
        let _ = decode_broadcast_for_delivery(&CommonParser, "/", &classic);
    }
});

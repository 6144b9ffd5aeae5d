//! A payload on a classic broadcast channel (`<prefix>#<nsp>#`, `<prefix>#<nsp>#<room>#`):
//! what Node adapters and `@socket.io/redis-emitter` publish, or anything else.
//!
//! - never panics, whatever the bytes;
//! - runs the node's whole receive path: decode, conversion to the local packet through
//!   socketioxide's common parser, and the client-facing encoding of that packet;
//! - a decoded message re-encodes (both key layouts) to bytes that decode to a message
//!   which encodes to the very same bytes (encode ∘ decode is stable).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_adapter_redis::decode_broadcast_for_delivery;
use sio_adapter_redis::protocol::{BroadcastMessage, Layout};
use socketioxide_core::parser::Parse;
use socketioxide_parser_common::CommonParser;

fuzz_target!(|payload: &[u8]| {
    let Ok(message) = BroadcastMessage::decode(payload) else {
        assert!(decode_broadcast_for_delivery(&CommonParser, "/", payload).is_err());
        return;
    };
    if let Ok((_, packet, _opts)) = decode_broadcast_for_delivery(&CommonParser, "/", payload) {
        // What a client on this node would receive.
        let _ = CommonParser.encode(packet);
    }
    for layout in [Layout::Adapter, Layout::Emitter] {
        let Ok(bytes) = message.encode(layout) else {
            continue;
        };
        let again = BroadcastMessage::decode(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded broadcast does not decode: {e}"));
        let bytes2 = again.encode(layout).expect("a decoded re-encoding encodes");
        assert_eq!(bytes, bytes2, "encode(decode(encode(m))) != encode(m)");
    }
});

//! A payload on a streams-mode channel (`@msgpack/msgpack` of `{type, data, uid, nsp}`).
//!
//! - never panics: decoding, and the translation to domain messages the dispatcher does
//!   (`wire::incoming`);
//! - a decoded message re-encodes to bytes that decode and re-encode identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_adapter_redis::protocol::streams::{decode_pubsub, encode_pubsub};
use sio_adapter_redis::wire::incoming;

fuzz_target!(|payload: &[u8]| {
    let Ok(message) = decode_pubsub(payload) else {
        return;
    };
    if let Ok(bytes) = encode_pubsub(&message) {
        let again = decode_pubsub(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded payload does not decode: {e}"));
        assert_eq!(
            encode_pubsub(&again).expect("a decoded re-encoding encodes"),
            bytes,
            "encode(decode(encode(m))) != encode(m)"
        );
    }
    let _ = incoming(message);
});

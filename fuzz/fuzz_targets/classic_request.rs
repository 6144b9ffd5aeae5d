//! A payload on the classic request channel (`<prefix>-request#<nsp>#`): JSON requests
//! from Node adapters and `@socket.io/redis-emitter` (join, leave, disconnect, fetch,
//! server-side emit…), MessagePack broadcasts-with-ack, or anything else.
//!
//! - never panics;
//! - a decoded request re-encodes to bytes that decode and re-encode identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_adapter_redis::protocol::Request;

fuzz_target!(|payload: &[u8]| {
    let Ok(request) = Request::decode(payload) else {
        return;
    };
    let _ = request.request_type();
    let Ok(bytes) = request.encode() else {
        return;
    };
    let again = Request::decode(&bytes)
        .unwrap_or_else(|e| panic!("re-encoded request does not decode: {e}"));
    assert_eq!(
        again.encode().expect("a decoded re-encoding encodes"),
        bytes,
        "encode(decode(encode(r))) != encode(r)"
    );
});

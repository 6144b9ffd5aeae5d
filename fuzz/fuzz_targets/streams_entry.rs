//! A stream entry of the streams adapter (`XADD ... uid <uid> nsp <nsp> type <type> data
//! <data>`), as `XREAD` hands it over: the input is split on NUL bytes into field, value,
//! field, value, ... (an odd last piece is dropped).
//!
//! - never panics: reading the entry, and the translation to domain messages the dispatcher
//!   does (`wire::incoming`);
//! - a decoded message re-encodes to fields that decode and re-encode identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_adapter_redis::protocol::streams::{entry_fields, message_from_entry};
use sio_adapter_redis::wire::incoming;

fuzz_target!(|input: &[u8]| {
    let pieces: Vec<&[u8]> = input.split(|b| *b == 0).collect();
    let fields = pieces.chunks_exact(2).map(|pair| (pair[0], pair[1]));
    let Ok(Some(message)) = message_from_entry(fields) else {
        return;
    };
    let _ = message.message_type();
    if let Ok(written) = entry_fields(&message) {
        let read = |fields: &[(&'static str, String)]| {
            message_from_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
        };
        let again = read(&written)
            .unwrap_or_else(|e| panic!("re-encoded entry does not decode: {e}"))
            .expect("a re-encoded entry has its namespace");
        assert_eq!(
            entry_fields(&again).expect("a decoded re-encoding encodes"),
            written,
            "fields(read(fields(m))) != fields(m)"
        );
    }
    let _ = incoming(message);
});

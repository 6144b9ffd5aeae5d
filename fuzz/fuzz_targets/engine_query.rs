//! What the forwarding layer reads from every request before socket.io sees it: the
//! Engine.IO query string (`sid`, `transport`, `EIO`), and the sid in a polling
//! handshake's open packet (recorded in the session registry).
//!
//! - never panics;
//! - every value found is a non-empty `key=value` value of the query, without `&`, and
//!   the first occurrence of its key;
//! - a request is a handshake exactly when it has no sid;
//! - an open packet written by the node round-trips its sid (v4 and v3 framing).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_server::engine::EngineQuery;
use sio_server::forward::sid_from_open_packet;

fn first_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, v)| *k == key && !v.is_empty())
        .map(|(_, v)| v)
}

fuzz_target!(|input: &[u8]| {
    let _ = sid_from_open_packet(input);
    let Ok(query) = std::str::from_utf8(input) else {
        return;
    };
    let q = EngineQuery::parse(Some(query));
    assert_eq!(q.is_handshake(), q.sid.is_none());
    for (key, found) in [("sid", q.sid), ("transport", q.transport), ("EIO", q.eio)] {
        if let Some(v) = found {
            assert!(!v.is_empty() && !v.contains('&'), "{key}={v:?}");
        }
        assert_eq!(found, first_value(query, key), "{key} in {query:?}");
    }

    // A sid the node generated (any JSON string) survives its open packet.
    let sid = query;
    let open = format!(
        "0{{\"sid\":{},\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}}",
        serde_json_string(sid)
    );
    if !sid.contains('}') {
        assert_eq!(sid_from_open_packet(open.as_bytes()).as_deref(), Some(sid));
        let v3 = format!("{}:{open}2:40", open.len());
        assert_eq!(sid_from_open_packet(v3.as_bytes()).as_deref(), Some(sid));
    }
});

/// `s` as a JSON string literal.
fn serde_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

//! Every emitter message kind, byte for byte against what the real
//! `@socket.io/redis-emitter` 5.1.0 publishes, and in streams mode against what a
//! `@socket.io/redis-streams-adapter` 0.3.1 node writes for the same call (fixtures generated
//! by `adapter-redis/tests/golden/gen.mjs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::json;
use sio_emitter::{Emitter, Outgoing};
use sio_protocol::{AdapterMode, StreamsOptions};

fn fixture(name: &str) -> Outgoing {
    let all: serde_json::Value = serde_json::from_str(include_str!(
        "../../adapter-redis/tests/golden/fixtures.json"
    ))
    .unwrap();
    let case = &all["cases"][name];
    let hex = case["hex"].as_str().unwrap();
    Outgoing::Publish {
        channel: case["channel"].as_str().unwrap().to_string(),
        payload: (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
    }
}

fn emitter() -> Emitter {
    // Building messages never touches the connection.
    Emitter::new(fred::types::Builder::default_centralized().build().unwrap())
}

#[test]
fn emit_to_everyone() {
    assert_eq!(
        emitter().of("/").emit_message("hello", ["world"]).unwrap(),
        fixture("emitter_emit")
    );
}

#[test]
fn room_except_volatile_compress() {
    let got = emitter()
        .to("room1")
        .except("room2")
        .volatile()
        .compress(false)
        .emit_message("alert", [json!({"level": 2})])
        .unwrap();
    assert_eq!(got, fixture("emitter_room_flags"));
}

#[test]
fn namespace_without_slash_two_rooms_binary() {
    let got = emitter()
        .of("admin")
        .to("a")
        .to("b")
        .emit_message(
            "blob",
            [bytes::Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])],
        )
        .unwrap();
    assert_eq!(got, fixture("emitter_nsp_rooms_binary"));
}

#[test]
fn custom_key_and_no_args() {
    let got = Emitter::with_prefix(emitter(), "myapp")
        .to("r")
        .emit_message("x", ())
        .unwrap();
    assert_eq!(got, fixture("emitter_custom_key"));
}

#[test]
fn sockets_join_leave_disconnect_server_side_emit() {
    let e = emitter();
    assert_eq!(
        e.of("/").sockets_join_message(["room9"]).unwrap(),
        fixture("emitter_sockets_join")
    );
    assert_eq!(
        e.of("/")
            .within("r1")
            .sockets_leave_message(["r2", "r3"])
            .unwrap(),
        fixture("emitter_sockets_leave")
    );
    assert_eq!(
        e.of("/")
            .except("r4")
            .disconnect_sockets_message(true)
            .unwrap(),
        fixture("emitter_disconnect")
    );
    assert_eq!(
        e.of("/")
            .server_side_emit_message("hello", vec![json!("world"), json!(1)])
            .unwrap(),
        fixture("emitter_server_side_emit")
    );
}

#[test]
fn reserved_events_are_refused() {
    for event in ["connect", "disconnect", "connect_error"] {
        let err = emitter().of("/").emit_message(event, ()).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
    }
}

/// The uids of the streams-adapter nodes that wrote the fixtures: the main one and the one
/// with custom options. The emitter writes `emitter` instead.
const STREAMS_NODE: &str = "5000000000000001";
const STREAMS_CUSTOM_NODE: &str = "5000000000000007";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What streams-adapter node `node` wrote for case `name`, as the emitter must write it: the
/// same, from uid `emitter` (in an entry's `uid` field, or as the msgpack payload's `uid`).
fn streams_fixture(name: &str, node: &str) -> Outgoing {
    let all: serde_json::Value = serde_json::from_str(include_str!(
        "../../adapter-redis/tests/golden/fixtures.json"
    ))
    .unwrap();
    let case = &all["streams"]["cases"][name];
    let text = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    if case["kind"] == "xadd" {
        let fields = case["fields"].as_array().unwrap().iter().map(|pair| {
            let field = ["uid", "nsp", "type", "data"]
                .into_iter()
                .find(|f| *f == pair[0])
                .unwrap();
            assert!(
                field != "uid" || pair[1] == node,
                "{name}: written by {node}"
            );
            let value = if field == "uid" {
                "emitter".to_string()
            } else {
                text(&pair[1])
            };
            (field, value)
        });
        return Outgoing::Append {
            stream: text(&case["stream"]),
            max_len: text(&case["cap"][2]).parse().unwrap(),
            fields: fields.collect(),
        };
    }
    // `uid` then its value: str 16 with the node's id → fixstr 7 `emitter`.
    let node_uid = format!("a3756964b0{}", hex(node.as_bytes()));
    let emitter_uid = format!("a3756964a7{}", hex(b"emitter"));
    let payload = text(&case["hex"]);
    assert!(payload.contains(&node_uid), "{name}: written by {node}");
    let payload = payload.replace(&node_uid, &emitter_uid);
    Outgoing::Publish {
        channel: text(&case["channel"]),
        payload: (0..payload.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&payload[i..i + 2], 16).unwrap())
            .collect(),
    }
}

fn streams_emitter() -> Emitter {
    emitter().with_mode(AdapterMode::Streams)
}

#[test]
fn streams_broadcasts_are_the_nodes_entries() {
    let e = streams_emitter();
    let node = |name| streams_fixture(name, STREAMS_NODE);
    assert_eq!(
        e.of("/").emit_message("hello", ("world", "again")).unwrap(),
        node("emit_strings")
    );
    assert_eq!(
        e.to("room1").emit_message("news", ["a"]).unwrap(),
        node("to_one_room")
    );
    assert_eq!(
        e.to("room1")
            .to("room2")
            .except("room3")
            .except("SocketB0000000000000")
            .emit_message("msg", [1])
            .unwrap(),
        node("rooms_except")
    );
    assert_eq!(
        e.of("/")
            .volatile()
            .compress(true)
            .emit_message("tick", [42])
            .unwrap(),
        node("volatile_compress")
    );
    assert_eq!(
        e.to("room1")
            .emit_message("file", [bytes::Bytes::from_static(&[4])])
            .unwrap(),
        node("binary_to_one_room")
    );
}

#[test]
fn streams_requests_are_the_nodes() {
    let e = streams_emitter();
    let node = |name| streams_fixture(name, STREAMS_NODE);
    assert_eq!(
        e.of("/").sockets_join_message(["room5"]).unwrap(),
        node("sockets_join")
    );
    assert_eq!(
        e.of("/")
            .within("room1")
            .except("room2")
            .sockets_leave_message(["room3", "room4"])
            .unwrap(),
        node("sockets_leave")
    );
    assert_eq!(
        e.of("/")
            .within("room1")
            .disconnect_sockets_message(true)
            .unwrap(),
        node("disconnect_sockets")
    );
    assert_eq!(
        e.of("/")
            .server_side_emit_message("hello", vec![json!("world"), json!(42)])
            .unwrap(),
        node("server_side_emit")
    );
}

#[test]
fn streams_options_and_prefix() {
    let e = streams_emitter()
        .with_prefix("myapp")
        .with_streams(StreamsOptions {
            stream_name: "app".into(),
            max_len: 500,
            ..StreamsOptions::default()
        });
    let node = |name| streams_fixture(name, STREAMS_CUSTOM_NODE);
    assert_eq!(
        e.of("/chat")
            .to("lobby")
            .emit_message("msg", ["hi"])
            .unwrap(),
        node("custom_options_emit")
    );
    assert_eq!(
        e.of("/chat")
            .server_side_emit_message("hey", vec![])
            .unwrap(),
        node("custom_options_server_side_emit")
    );
    // The options survive a later change of mode or prefix.
    let e = e.with_mode(AdapterMode::Streams).with_prefix("myapp");
    assert_eq!(
        e.of("/chat")
            .to("lobby")
            .emit_message("msg", ["hi"])
            .unwrap(),
        node("custom_options_emit")
    );
}

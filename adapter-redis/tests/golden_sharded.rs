//! Golden-byte tests for the sharded mode: our encoder must produce exactly the bytes the real
//! `createShardedAdapter` of @socket.io/redis-adapter 8.3.0 (on socket.io-adapter 2.5's
//! `ClusterAdapter`, socket.io 4.8, notepack.io 3.0.1) `SPUBLISH`es, on the same channel, and our
//! decoder must read those bytes back. The subscription rule and the node-counting command are
//! checked against what the real adapter did too.
//!
//! The fixtures come from `tests/golden/gen.mjs` (the `sharded` part of `fixtures.json`);
//! regenerate them with `cd adapter-redis/tests/golden && npm ci && node gen.mjs > fixtures.json`.

mod common;

use common::{Fixture, fixture_handshake, fixtures, map, s, strings, to_hex};
use serde_json::json;
use sio_adapter_redis::protocol::sharded::{
    HEARTBEAT_INTERVAL_MS, HEARTBEAT_TIMEOUT_MS, looks_like_a_socket_id,
};
use sio_adapter_redis::protocol::{
    BroadcastAckResponse, BroadcastClientCountResponse, BroadcastFlags, BroadcastOptions,
    FetchResponse, FetchedSocket, MessageType, Packet, ShardedBody, ShardedBroadcast,
    ShardedChannel, ShardedChannels, ShardedDisconnectRequest, ShardedFetchRequest, ShardedMessage,
    ShardedRoomsRequest, ShardedServerSideEmit, ShardedServerSideEmitResponse, SubscriptionMode,
};
use sio_adapter_redis::rmpv::Value;

/// Every case in the `sharded` part of `fixtures.json` must be checked by a test below.
const CHECKED: &[&str] = &[
    "emit_strings",
    "to_one_room",
    "to_one_room_except",
    "to_socket_id",
    "to_twenty_char_room",
    "to_emoji_room",
    "to_nineteen_unit_room",
    "rooms_except",
    "volatile_compress",
    "binary",
    "binary_to_one_room",
    "dates",
    "numbers",
    "nested",
    "broadcast_with_ack",
    "sockets_join",
    "sockets_leave",
    "disconnect_sockets",
    "fetch_sockets",
    "fetch_sockets_timeout",
    "server_side_emit",
    "server_side_emit_with_ack",
    "server_side_emit_binary",
    "fetch_sockets_response",
    "server_side_emit_response",
    "server_side_emit_response_binary",
    "broadcast_ack_responses_1",
    "broadcast_ack_responses_2",
    "broadcast_ack_responses_binary_1",
    "broadcast_ack_responses_binary_2",
    "private_to_socket_id",
    "private_with_ack",
    "static_to_one_room",
    "custom_prefix_nsp_room",
    "initial_heartbeat",
    "heartbeat",
    "adapter_close",
];

/// The uid of the server under observation (gen.mjs draws 8-byte ids from a counter).
const SRV: &str = "0000000000000004";
/// The node whose requests the server answers.
const REMOTE: &str = "remote";
const SOCKET_A: &str = "SocketA0000000000000";
const SOCKET_B: &str = "SocketB0000000000000";

fn fixture(name: &str) -> Fixture {
    assert!(CHECKED.contains(&name), "add {name} to CHECKED");
    fixtures()
        .sharded
        .cases
        .remove(name)
        .unwrap_or_else(|| panic!("no sharded fixture {name}"))
}

fn root() -> ShardedChannels {
    ShardedChannels::with_default_prefix("/")
}

/// One case: channel, encoding, bytes and decoded message all match.
fn check(name: &str, channels: &ShardedChannels, mode: SubscriptionMode, message: &ShardedMessage) {
    check_decoding_to(name, channels, mode, message, message);
}

/// Like [`check`], for messages whose decoded form differs from the encoded one (JS numbers,
/// dates in JSON).
fn check_decoding_to(
    name: &str,
    channels: &ShardedChannels,
    mode: SubscriptionMode,
    message: &ShardedMessage,
    decoded: &ShardedMessage,
) {
    let fixture = fixture(name);

    // The channel, and what the receiving side makes of it.
    let kind = message.message_type();
    let channel = channels
        .channel_for(&message.body, mode)
        .unwrap_or_else(|| channels.response(REMOTE));
    assert_eq!(channel, fixture.channel, "{name}: channel");
    if kind.is_response() {
        assert_eq!(
            channels.parse(&fixture.channel, REMOTE).expect("parses"),
            ShardedChannel::Response {
                nsp: channels.nsp(),
                uid: REMOTE
            },
            "{name}"
        );
    } else {
        let parsed = channels
            .parse(&fixture.channel, &message.uid)
            .expect("parses");
        assert!(!parsed.carries_responses(), "{name}");
        if let ShardedChannel::Room { room, .. } = parsed {
            let ShardedBody::Broadcast(broadcast) = &message.body else {
                panic!("{name}: only broadcasts go on room channels");
            };
            assert_eq!(broadcast.opts.rooms, [room], "{name}");
        }
    }

    let bytes = message.encode().expect("encodes");
    assert_eq!(
        to_hex(&bytes),
        fixture.hex,
        "{name}: bytes differ from Node's"
    );
    let json = bytes.first() == Some(&b'{');
    assert_eq!(
        fixture.encoding,
        if json { "json" } else { "msgpack" },
        "{name}"
    );
    assert!(json || kind.may_contain_binary(), "{name}");

    let read = ShardedMessage::decode(&fixture.bytes()).expect("decodes");
    assert_eq!(&read, decoded, "{name}: decoded message");
}

fn srv(body: ShardedBody) -> ShardedMessage {
    ShardedMessage::new(SRV, "/", body)
}

fn broadcast(packet: Packet, opts: BroadcastOptions) -> ShardedBody {
    ShardedBody::Broadcast(ShardedBroadcast {
        packet,
        request_id: None,
        opts,
    })
}

fn dynamic(name: &str, message: &ShardedMessage) {
    check(name, &root(), SubscriptionMode::Dynamic, message);
}

#[test]
fn every_fixture_is_checked_and_versions_are_pinned() {
    let fixtures = fixtures();
    let names: Vec<&str> = fixtures.sharded.cases.keys().map(String::as_str).collect();
    let mut checked = CHECKED.to_vec();
    checked.sort_unstable();
    assert_eq!(names, checked);
    assert_eq!(fixtures.versions["@socket.io/redis-adapter"], "8.3.0");
    assert!(fixtures.versions["socket.io-adapter"].starts_with("2.5."));
}

#[test]
fn io_emit_goes_on_the_main_channel_as_json() {
    dynamic(
        "emit_strings",
        &srv(broadcast(
            Packet::event("/", "hello", [s("world"), s("again")]),
            BroadcastOptions::default(),
        )),
    );
}

#[test]
fn one_public_room_gets_its_own_channel() {
    dynamic(
        "to_one_room",
        &srv(broadcast(
            Packet::event("/", "news", [s("a")]),
            BroadcastOptions::to_rooms(["room1"]),
        )),
    );
    let mut opts = BroadcastOptions::to_rooms(["room1"]);
    opts.except = strings(&["room2"]);
    dynamic(
        "to_one_room_except",
        &srv(broadcast(Packet::event("/", "news", [s("b")]), opts)),
    );
}

#[test]
fn rooms_that_look_like_socket_ids_use_the_main_channel() {
    dynamic(
        "to_socket_id",
        &srv(broadcast(
            Packet::event("/", "dm", [Value::from(1)]),
            BroadcastOptions::to_rooms([SOCKET_A]),
        )),
    );
    // Only the length counts, in UTF-16 code units.
    let emoji = "😀".repeat(10);
    let nineteen = format!("{}a", "😀".repeat(9));
    for (name, room) in [
        ("to_twenty_char_room", "abcdefghijklmnopqrst"),
        ("to_emoji_room", emoji.as_str()),
        ("to_nineteen_unit_room", nineteen.as_str()),
    ] {
        dynamic(
            name,
            &srv(broadcast(
                Packet::event("/", "x", []),
                BroadcastOptions::to_rooms([room]),
            )),
        );
    }
    assert!(looks_like_a_socket_id(&emoji) && !looks_like_a_socket_id(&nineteen));
}

#[test]
fn several_rooms_and_except() {
    let opts = BroadcastOptions {
        rooms: strings(&["room1", "room2"]),
        except: strings(&["room3", SOCKET_B]),
        flags: BroadcastFlags::default(),
    };
    dynamic(
        "rooms_except",
        &srv(broadcast(Packet::event("/", "msg", [Value::from(1)]), opts)),
    );
}

#[test]
fn volatile_and_compress_flags() {
    let mut opts = BroadcastOptions::default();
    opts.flags.volatile = Some(true);
    opts.flags.compress = Some(true);
    dynamic(
        "volatile_compress",
        &srv(broadcast(
            Packet::event("/", "tick", [Value::from(42)]),
            opts,
        )),
    );
}

#[test]
fn binaries_switch_to_msgpack() {
    dynamic(
        "binary",
        &srv(broadcast(
            Packet::event(
                "/",
                "file",
                [
                    Value::Binary(vec![1, 2, 3]),
                    map(vec![
                        ("name", s("x")),
                        ("content", Value::Binary(b"hi".to_vec())),
                    ]),
                ],
            ),
            BroadcastOptions::default(),
        )),
    );
    dynamic(
        "binary_to_one_room",
        &srv(broadcast(
            Packet::event("/", "file", [Value::Binary(vec![4])]),
            BroadcastOptions::to_rooms(["room1"]),
        )),
    );
}

#[test]
fn dates_in_json_are_iso_strings() {
    let ts64 = ((678_000_000u64 << 34) | 1_704_164_645)
        .to_be_bytes()
        .to_vec();
    // A 96-bit timestamp too far out for a JS Date: an invalid date, `null` in JSON.
    let mut invalid = vec![0, 0, 0, 0];
    invalid.extend_from_slice(&i64::MAX.to_be_bytes());
    let message = srv(broadcast(
        Packet::event("/", "when", [Value::Ext(-1, ts64), Value::Ext(-1, invalid)]),
        BroadcastOptions::default(),
    ));
    let decoded = srv(broadcast(
        Packet::event("/", "when", [s("2024-01-02T03:04:05.678Z"), Value::Nil]),
        BroadcastOptions::default(),
    ));
    check_decoding_to(
        "dates",
        &root(),
        SubscriptionMode::Dynamic,
        &message,
        &decoded,
    );
}

#[test]
fn numbers_in_json_follow_json_stringify() {
    let two_pow_53 = 9_007_199_254_740_992i64;
    let common = [
        Value::from(0),
        Value::from(-1),
        Value::F64(1.5),
        Value::F64(-0.25),
    ];
    let mut args = common.to_vec();
    args.extend([
        Value::F64(2.0),
        Value::F64(-0.0),
        Value::from(4_294_967_296u64),
        Value::from(two_pow_53),
        Value::F64(f64::NAN),
        Value::F64(f64::INFINITY),
    ]);
    let mut decoded_args = common.to_vec();
    decoded_args.extend([
        Value::from(2),
        Value::from(0),
        Value::from(4_294_967_296u64),
        Value::from(two_pow_53),
        Value::Nil,
        Value::Nil,
    ]);
    check_decoding_to(
        "numbers",
        &root(),
        SubscriptionMode::Dynamic,
        &srv(broadcast(
            Packet::event("/", "n", args),
            BroadcastOptions::default(),
        )),
        &srv(broadcast(
            Packet::event("/", "n", decoded_args),
            BroadcastOptions::default(),
        )),
    );
}

#[test]
fn nested_objects_keep_key_order() {
    let object = map(vec![
        ("a", Value::from(1)),
        (
            "b",
            Value::Array(vec![
                Value::Boolean(true),
                Value::Boolean(false),
                Value::Nil,
            ]),
        ),
        ("c", map(vec![("d", s("e"))])),
        ("u", s("héllo ✓ 😀")),
    ]);
    dynamic(
        "nested",
        &srv(broadcast(
            Packet::event(
                "/",
                "obj",
                [
                    object,
                    Value::Array(vec![Value::Array(vec![]), map(vec![])]),
                ],
            ),
            BroadcastOptions::default(),
        )),
    );
}

#[test]
fn broadcast_with_ack_always_uses_the_main_channel() {
    let mut opts = BroadcastOptions::to_rooms(["room1"]);
    opts.flags.timeout = Some(1000);
    dynamic(
        "broadcast_with_ack",
        &srv(ShardedBody::Broadcast(ShardedBroadcast {
            packet: Packet::event("/", "ask", [s("q")]),
            request_id: Some("0000000000000005".into()),
            opts,
        })),
    );
}

#[test]
fn sockets_join_leave_and_disconnect() {
    dynamic(
        "sockets_join",
        &srv(ShardedBody::SocketsJoin(ShardedRoomsRequest {
            opts: BroadcastOptions::default(),
            rooms: strings(&["room5"]),
        })),
    );
    dynamic(
        "sockets_leave",
        &srv(ShardedBody::SocketsLeave(ShardedRoomsRequest {
            opts: BroadcastOptions {
                rooms: strings(&["room1"]),
                except: strings(&["room2"]),
                flags: BroadcastFlags::default(),
            },
            rooms: strings(&["room3", "room4"]),
        })),
    );
    dynamic(
        "disconnect_sockets",
        &srv(ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
            opts: BroadcastOptions::to_rooms(["room1"]),
            close: true,
        })),
    );
}

#[test]
fn fetch_sockets_requests_carry_flags() {
    dynamic(
        "fetch_sockets",
        &srv(ShardedBody::FetchSockets(ShardedFetchRequest {
            opts: BroadcastOptions {
                rooms: strings(&["room1"]),
                except: strings(&["room2"]),
                flags: BroadcastFlags::default(),
            },
            request_id: "0000000000000006".into(),
        })),
    );
    let mut opts = BroadcastOptions::default();
    opts.flags.timeout = Some(1000);
    dynamic(
        "fetch_sockets_timeout",
        &srv(ShardedBody::FetchSockets(ShardedFetchRequest {
            opts,
            request_id: "0000000000000007".into(),
        })),
    );
}

#[test]
fn server_side_emit_with_and_without_ack() {
    let emit = |request_id: Option<&str>, packet: Vec<Value>| {
        srv(ShardedBody::ServerSideEmit(ShardedServerSideEmit {
            request_id: request_id.map(str::to_owned),
            packet,
        }))
    };
    dynamic(
        "server_side_emit",
        &emit(None, vec![s("hello"), s("world"), Value::from(42)]),
    );
    dynamic(
        "server_side_emit_with_ack",
        &emit(Some("0000000000000008"), vec![s("ping")]),
    );
    dynamic(
        "server_side_emit_binary",
        &emit(None, vec![s("blob"), Value::Binary(vec![0xde, 0xad])]),
    );
}

#[test]
fn fetch_sockets_response_goes_to_the_requester() {
    let handshake = fixture_handshake();
    dynamic(
        "fetch_sockets_response",
        &srv(ShardedBody::FetchSocketsResponse(FetchResponse {
            request_id: "rq0001".into(),
            sockets: vec![FetchedSocket {
                id: SOCKET_A.into(),
                handshake,
                rooms: strings(&[SOCKET_A, "room1"]),
                data: json!({"user": "alice", "n": 1}),
            }],
        })),
    );
}

#[test]
fn server_side_emit_responses() {
    let response = |request_id: &str, packet: Value| {
        srv(ShardedBody::ServerSideEmitResponse(
            ShardedServerSideEmitResponse {
                request_id: request_id.into(),
                packet: Some(packet),
            },
        ))
    };
    dynamic(
        "server_side_emit_response",
        &response(
            "rq0002",
            map(vec![("ok", Value::Boolean(true)), ("got", s("x"))]),
        ),
    );
    dynamic(
        "server_side_emit_response_binary",
        &response("rq0003", Value::Binary(vec![1, 2])),
    );
}

#[test]
fn broadcast_client_count_then_ack() {
    for (case, request_id, ack) in [
        ("broadcast_ack_responses", "rq0004", s("answer")),
        (
            "broadcast_ack_responses_binary",
            "rq0005",
            Value::Binary(vec![0xca, 0xfe]),
        ),
    ] {
        dynamic(
            &format!("{case}_1"),
            &srv(ShardedBody::BroadcastClientCount(
                BroadcastClientCountResponse {
                    request_id: request_id.into(),
                    client_count: 1,
                },
            )),
        );
        dynamic(
            &format!("{case}_2"),
            &srv(ShardedBody::BroadcastAck(BroadcastAckResponse {
                request_id: request_id.into(),
                packet: Some(ack),
            })),
        );
    }
}

#[test]
fn other_modes_and_a_custom_prefix() {
    check(
        "private_to_socket_id",
        &root(),
        SubscriptionMode::DynamicPrivate,
        &ShardedMessage::new(
            "0000000000000009",
            "/",
            broadcast(
                Packet::event("/", "dm", [Value::from(2)]),
                BroadcastOptions::to_rooms([SOCKET_A]),
            ),
        ),
    );
    let mut opts = BroadcastOptions::to_rooms([SOCKET_A]);
    opts.flags.timeout = Some(5);
    check(
        "private_with_ack",
        &root(),
        SubscriptionMode::DynamicPrivate,
        &ShardedMessage::new(
            "000000000000000a",
            "/",
            ShardedBody::Broadcast(ShardedBroadcast {
                packet: Packet::event("/", "dm", []),
                request_id: Some("000000000000000b".into()),
                opts,
            }),
        ),
    );
    check(
        "static_to_one_room",
        &root(),
        SubscriptionMode::Static,
        &ShardedMessage::new(
            "000000000000000c",
            "/",
            broadcast(
                Packet::event("/", "news", [s("c")]),
                BroadcastOptions::to_rooms(["room1"]),
            ),
        ),
    );
    check(
        "custom_prefix_nsp_room",
        &ShardedChannels::new("myapp", "/chat"),
        SubscriptionMode::Dynamic,
        &ShardedMessage::new(
            "000000000000000e",
            "/chat",
            broadcast(
                Packet::event("/chat", "msg", [s("hi")]),
                BroadcastOptions::to_rooms(["lobby"]),
            ),
        ),
    );
}

/// The heartbeat types come from socket.io-adapter's `ClusterAdapterWithHeartbeat` publishing
/// through the sharded adapter's encoder; the 8.3.0 sharded adapter itself never sends them.
#[test]
fn heartbeats_and_adapter_close_have_no_data() {
    let uid = "0000000000000011";
    for (name, body) in [
        ("initial_heartbeat", ShardedBody::InitialHeartbeat),
        ("heartbeat", ShardedBody::Heartbeat),
        ("adapter_close", ShardedBody::AdapterClose),
    ] {
        check(
            name,
            &root(),
            SubscriptionMode::Dynamic,
            &ShardedMessage::new(uid, "/", body),
        );
    }
    assert_eq!(MessageType::AdapterClose.code(), 13);
    let defaults = fixtures().sharded.heartbeat_defaults;
    assert_eq!(defaults["heartbeatInterval"], HEARTBEAT_INTERVAL_MS);
    assert_eq!(defaults["heartbeatTimeout"], HEARTBEAT_TIMEOUT_MS);
}

#[test]
fn the_sharded_adapter_publishes_nothing_on_init_and_close() {
    assert!(fixtures().sharded.published_on_init_and_close.is_empty());
}

#[test]
fn servers_are_counted_with_shardnumsub_on_the_main_channel() {
    assert_eq!(
        fixtures().sharded.server_count,
        ["PUBSUB", "SHARDNUMSUB", root().main()]
    );
}

/// Replays gen.mjs's scenario with [`SubscriptionMode::subscribes_to_room`]: sockets A (rooms A,
/// room1) and B (rooms B, room1, room2) join; B leaves room2, then disconnects; the adapter
/// closes.
#[test]
fn subscriptions_follow_the_mode() {
    let recorded = fixtures().sharded.subscriptions;
    let c = root();
    for (mode, uid) in [
        (SubscriptionMode::Dynamic, "0000000000000001"),
        (SubscriptionMode::DynamicPrivate, "0000000000000002"),
        (SubscriptionMode::Static, "0000000000000003"),
    ] {
        let mut ops: Vec<(String, String)> = Vec::new();
        let mut op = |verb: &str, channel: String| ops.push((verb.to_owned(), channel));
        op("SSUBSCRIBE", c.main().to_owned());
        op("SSUBSCRIBE", c.response(uid));
        // Rooms in creation order, with "is the id of a local socket".
        let created = [
            (SOCKET_A, true),
            ("room1", false),
            (SOCKET_B, true),
            ("room2", false),
        ];
        for (room, is_socket) in created {
            if mode.subscribes_to_room(is_socket) {
                op("SSUBSCRIBE", c.room(room));
            }
        }
        for (room, is_socket) in [("room2", false), (SOCKET_B, true)] {
            if mode.subscribes_to_room(is_socket) {
                op("SUNSUBSCRIBE", c.room(room));
            }
        }
        op("SUNSUBSCRIBE", c.main().to_owned());
        op("SUNSUBSCRIBE", c.response(uid));
        for (room, is_socket) in [(SOCKET_A, true), ("room1", false)] {
            if mode.subscribes_to_room(is_socket) {
                op("SUNSUBSCRIBE", c.room(room));
            }
        }
        assert_eq!(recorded[mode.name()], ops, "{}", mode.name());
    }
    assert_eq!(recorded.len(), 3);
}

//! Golden-byte tests: our encoder must produce exactly the bytes the real Node packages publish
//! (socket.io 4.8, @socket.io/redis-adapter 8.3.0, @socket.io/redis-emitter 5.1.0,
//! notepack.io 3.0.1), on the same channel, and our decoder must read those bytes back.
//!
//! The fixtures come from `tests/golden/gen.mjs`; regenerate them with
//! `cd adapter-redis/tests/golden && npm ci && node gen.mjs > fixtures.json`.

mod common;

use common::{Fixture, fixture_handshake, fixtures, map, s, strings, to_hex};
use serde_json::json;
use sio_adapter_redis::protocol::{
    AllRoomsRequest, AllRoomsResponse, BroadcastAckResponse, BroadcastClientCountResponse,
    BroadcastFlags, BroadcastMessage, BroadcastOptions, BroadcastRequest, Channels,
    DisconnectRequest, FetchRequest, FetchResponse, FetchedSocket, Layout, Packet, Request,
    RequestOpts, RequestType, Response, RoomsRequest, ServerSideEmitRequest,
    ServerSideEmitResponse, SocketsResponse,
};
use sio_adapter_redis::rmpv::Value;

/// Every case in `fixtures.json` must be checked by a test below.
const CHECKED: &[&str] = &[
    "emit_strings",
    "to_one_room",
    "rooms_except",
    "volatile_compress",
    "compress_false",
    "custom_nsp_room",
    "numbers",
    "huge_whole_numbers",
    "binary",
    "dates",
    "nested",
    "sizes",
    "broadcast_with_ack",
    "sockets_join",
    "sockets_leave",
    "disconnect_sockets",
    "server_side_emit",
    "server_side_emit_with_ack",
    "fetch_sockets",
    "all_rooms",
    "sockets_response",
    "all_rooms_response",
    "fetch_response",
    "server_side_emit_response",
    "broadcast_ack_responses_1",
    "broadcast_ack_responses_2",
    "all_rooms_response_specific",
    "emitter_emit",
    "emitter_room_flags",
    "emitter_nsp_rooms_binary",
    "emitter_custom_key",
    "emitter_sockets_join",
    "emitter_sockets_leave",
    "emitter_disconnect",
    "emitter_server_side_emit",
];

fn fixture(name: &str) -> Fixture {
    assert!(CHECKED.contains(&name), "add {name} to CHECKED");
    fixtures()
        .cases
        .remove(name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

fn assert_bytes(name: &str, ours: &[u8], fixture: &Fixture) {
    assert_eq!(
        to_hex(ours),
        fixture.hex,
        "{name}: encoded bytes differ from Node's"
    );
}

/// A broadcast case: encoded bytes, decoded value and channel all match.
fn check_broadcast(name: &str, channels: &Channels, layout: Layout, message: &BroadcastMessage) {
    check_broadcast_decoding_to(name, channels, layout, message, message);
}

/// Like [`check_broadcast`], for messages whose decoded form differs from the encoded one
/// (JS numbers, dates).
fn check_broadcast_decoding_to(
    name: &str,
    channels: &Channels,
    layout: Layout,
    message: &BroadcastMessage,
    decoded: &BroadcastMessage,
) {
    let fixture = fixture(name);
    assert_eq!(fixture.encoding, "msgpack", "{name}");
    assert_eq!(
        channels.for_rooms(&message.opts.rooms),
        fixture.channel,
        "{name}: channel"
    );
    assert_bytes(name, &message.encode(layout).expect("encodes"), &fixture);
    let read = BroadcastMessage::decode(&fixture.bytes()).expect("decodes");
    assert_eq!(&read, decoded, "{name}: decoded message");
}

fn node(packet: Packet, opts: BroadcastOptions) -> BroadcastMessage {
    BroadcastMessage::new("srv001", packet, opts)
}

fn root() -> Channels {
    Channels::with_default_prefix("/")
}

#[test]
fn every_fixture_is_checked_and_versions_are_pinned() {
    let fixtures = fixtures();
    let names: Vec<&str> = fixtures.cases.keys().map(String::as_str).collect();
    let mut checked = CHECKED.to_vec();
    checked.sort_unstable();
    assert_eq!(names, checked);
    assert_eq!(fixtures.versions["@socket.io/redis-adapter"], "8.3.0");
    assert_eq!(fixtures.versions["@socket.io/redis-emitter"], "5.1.0");
    assert_eq!(fixtures.versions["notepack.io"], "3.0.1");
    assert!(fixtures.versions["socket.io"].starts_with("4.8."));
}

#[test]
fn io_emit_with_string_args() {
    let message = node(
        Packet::event("/", "hello", [s("world"), s("again")]),
        BroadcastOptions::default(),
    );
    check_broadcast("emit_strings", &root(), Layout::Adapter, &message);
}

#[test]
fn to_one_room_uses_the_room_channel() {
    let message = node(
        Packet::event("/", "news", [s("a")]),
        BroadcastOptions::to_rooms(["room1"]),
    );
    check_broadcast("to_one_room", &root(), Layout::Adapter, &message);
}

#[test]
fn several_rooms_and_except() {
    let opts = BroadcastOptions {
        rooms: strings(&["room1", "room2"]),
        except: strings(&["room3", "sockB"]),
        flags: BroadcastFlags::default(),
    };
    let message = node(Packet::event("/", "msg", [Value::from(1)]), opts);
    check_broadcast("rooms_except", &root(), Layout::Adapter, &message);
}

#[test]
fn volatile_and_compress_flags() {
    let mut opts = BroadcastOptions::default();
    opts.flags.volatile = Some(true);
    opts.flags.compress = Some(true);
    let message = node(Packet::event("/", "tick", [Value::from(42)]), opts);
    check_broadcast("volatile_compress", &root(), Layout::Adapter, &message);
}

#[test]
fn compress_false_is_kept() {
    let mut opts = BroadcastOptions::default();
    opts.flags.compress = Some(false);
    let message = node(Packet::event("/", "tick", [Value::from(43)]), opts);
    check_broadcast("compress_false", &root(), Layout::Adapter, &message);
}

#[test]
fn custom_namespace_room() {
    let message = node(
        Packet::event("/chat", "msg", [s("hi")]),
        BroadcastOptions::to_rooms(["lobby"]),
    );
    check_broadcast(
        "custom_nsp_room",
        &Channels::with_default_prefix("/chat"),
        Layout::Adapter,
        &message,
    );
}

#[test]
fn numbers_are_encoded_as_javascript_numbers() {
    let ints: [i64; 19] = [
        0,
        127,
        128,
        255,
        256,
        65535,
        65536,
        4_294_967_295,
        4_294_967_296,
        9_007_199_254_740_992,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        -2_147_483_648,
        -2_147_483_649,
    ];
    let mut args: Vec<Value> = ints.iter().map(|i| Value::from(*i)).collect();
    args.extend([Value::F64(1.5), Value::F64(-0.25), Value::F64(1e-300)]);
    let mut decoded_args = args.clone();
    // JS has one number type: 2.0 and -0 travel as the integers 2 and 0.
    args.extend([Value::F64(2.0), Value::F64(-0.0)]);
    decoded_args.extend([Value::from(2), Value::from(0)]);

    let message = node(Packet::event("/", "n", args), BroadcastOptions::default());
    let decoded = node(
        Packet::event("/", "n", decoded_args),
        BroadcastOptions::default(),
    );
    check_broadcast_decoding_to("numbers", &root(), Layout::Adapter, &message, &decoded);
}

/// The one deliberate difference: notepack writes whole numbers beyond 64 bits modulo 2^64
/// (`1e300` arrives as `0`); we write them as float 64, which notepack reads back intact.
#[test]
fn huge_whole_numbers_stay_floats_where_notepack_wraps_them() {
    let fixture = fixture("huge_whole_numbers");
    let two_pow_63 = 9_223_372_036_854_775_808.0;
    let args = [
        1e300,
        -1e300,
        18_446_744_073_709_551_616.0,
        two_pow_63,
        -two_pow_63,
    ]
    .map(Value::F64);
    let message = node(
        Packet::event("/", "n", args.clone()),
        BroadcastOptions::default(),
    );
    let ours = message.encode(Layout::Adapter).expect("encodes");
    let node_bytes = fixture.bytes();
    assert_ne!(ours, node_bytes);

    // Node's bytes decode as what a Node peer sees: the wrapped values.
    let read = BroadcastMessage::decode(&node_bytes).expect("decodes");
    let wrapped = [
        Value::from(0),
        Value::from(0),
        Value::from(0),
        Value::from(1u64 << 63),
        Value::from(i64::MIN),
    ];
    assert_eq!(read.packet.args(), wrapped);

    // Ours keep the values; the 2^63 cases, in range, are byte-identical to Node's.
    let read = BroadcastMessage::decode(&ours).expect("decodes");
    assert_eq!(read.packet.args()[..3], args[..3]);
    assert_eq!(read.packet.args()[3..], wrapped[3..]);
    // `93 a6"srv001" 83 a4"type" 02 a4"data" 96 a1"n"` is 23 bytes; then three 9-byte numbers.
    let (args_at, wrapped_len) = (23, 27);
    let float = |f: f64| [&[0xcb][..], &f.to_be_bytes()].concat();
    let expected: Vec<u8> = [
        &node_bytes[..args_at],
        &float(1e300)[..],
        &float(-1e300)[..],
        &float(18_446_744_073_709_551_616.0)[..],
        &node_bytes[args_at + wrapped_len..],
    ]
    .concat();
    assert_eq!(to_hex(&ours), to_hex(&expected));
}

#[test]
fn buffers_are_msgpack_bin() {
    let message = node(
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
    );
    check_broadcast("binary", &root(), Layout::Adapter, &message);
}

#[test]
fn dates_are_timestamps_and_decode_to_iso_strings() {
    // notepack: timestamp 64 when there are milliseconds, timestamp 32 for whole seconds.
    let ts64 = ((678_000_000u64 << 34) | 1_704_164_645)
        .to_be_bytes()
        .to_vec();
    let ts32 = 1_700_000_000u32.to_be_bytes().to_vec();
    let message = node(
        Packet::event("/", "when", [Value::Ext(-1, ts64), Value::Ext(-1, ts32)]),
        BroadcastOptions::default(),
    );
    let decoded = node(
        Packet::event(
            "/",
            "when",
            [s("2024-01-02T03:04:05.678Z"), s("2023-11-14T22:13:20.000Z")],
        ),
        BroadcastOptions::default(),
    );
    check_broadcast_decoding_to("dates", &root(), Layout::Adapter, &message, &decoded);
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
        ("c", map(vec![("d", s("e")), ("f", Value::F64(2.5))])),
        ("g h", s("")),
        ("u", s("héllo ✓ 😀")),
    ]);
    let message = node(
        Packet::event(
            "/",
            "obj",
            [
                object,
                Value::Array(vec![Value::Array(vec![]), map(vec![])]),
            ],
        ),
        BroadcastOptions::default(),
    );
    check_broadcast("nested", &root(), Layout::Adapter, &message);
}

#[test]
fn length_headers_grow_like_notepacks() {
    let keys: Vec<String> = (0..16).map(|i| format!("k{i:02}")).collect();
    let big_map = Value::Map(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (Value::from(k.as_str()), Value::from(i)))
            .collect(),
    );
    let message = node(
        Packet::event(
            "/",
            "big",
            [
                s(&"x".repeat(40)),
                s(&"y".repeat(300)),
                Value::Array((0..20).map(Value::from).collect()),
                Value::Binary(vec![7; 300]),
                big_map,
            ],
        ),
        BroadcastOptions::default(),
    );
    check_broadcast("sizes", &root(), Layout::Adapter, &message);
}

/// A request case: encoded bytes, decoded value and channel all match.
fn check_request(name: &str, request: &Request) {
    let fixture = fixture(name);
    assert_eq!(fixture.channel, root().request(), "{name}: channel");
    let bytes = request.encode().expect("encodes");
    assert_bytes(name, &bytes, &fixture);
    let expected_encoding = if request.request_type() == RequestType::Broadcast {
        "msgpack"
    } else {
        "json"
    };
    assert_eq!(fixture.encoding, expected_encoding, "{name}");
    assert_eq!(
        &Request::decode(&fixture.bytes()).expect("decodes"),
        request,
        "{name}"
    );
}

fn srv() -> Option<String> {
    Some("srv001".to_owned())
}

#[test]
fn broadcast_with_ack_request_is_msgpack() {
    let mut opts = BroadcastOptions::to_rooms(["room1"]);
    opts.flags.timeout = Some(1000);
    let request = Request::Broadcast(BroadcastRequest {
        uid: srv(),
        request_id: "id0003".into(),
        packet: Packet::event("/", "ask", [s("q")]),
        opts,
    });
    check_request("broadcast_with_ack", &request);
}

#[test]
fn sockets_join_and_leave() {
    check_request(
        "sockets_join",
        &Request::RemoteJoin(RoomsRequest {
            uid: srv(),
            opts: RequestOpts::default(),
            rooms: strings(&["room5"]),
        }),
    );
    check_request(
        "sockets_leave",
        &Request::RemoteLeave(RoomsRequest {
            uid: srv(),
            opts: RequestOpts {
                rooms: strings(&["room1"]),
                except: strings(&["room2"]),
            },
            rooms: strings(&["room3", "room4"]),
        }),
    );
}

#[test]
fn disconnect_sockets() {
    check_request(
        "disconnect_sockets",
        &Request::RemoteDisconnect(DisconnectRequest {
            uid: srv(),
            opts: RequestOpts {
                rooms: strings(&["room1"]),
                except: vec![],
            },
            close: true,
        }),
    );
}

#[test]
fn server_side_emit_with_and_without_ack() {
    check_request(
        "server_side_emit",
        &Request::ServerSideEmit(ServerSideEmitRequest {
            uid: srv(),
            request_id: None,
            data: vec![json!("hello"), json!("world"), json!(42)],
        }),
    );
    check_request(
        "server_side_emit_with_ack",
        &Request::ServerSideEmit(ServerSideEmitRequest {
            uid: srv(),
            request_id: Some("id0004".into()),
            data: vec![json!("ping")],
        }),
    );
}

#[test]
fn fetch_sockets_and_all_rooms() {
    check_request(
        "fetch_sockets",
        &Request::RemoteFetch(FetchRequest {
            uid: srv(),
            request_id: "id0005".into(),
            opts: RequestOpts {
                rooms: strings(&["room1"]),
                except: strings(&["room2"]),
            },
        }),
    );
    check_request(
        "all_rooms",
        &Request::AllRooms(AllRoomsRequest {
            uid: srv(),
            request_id: "id0006".into(),
        }),
    );
}

/// A response case: encoded bytes, decoded value and channel all match.
fn check_response(name: &str, channel: &str, pending: RequestType, response: &Response) {
    let fixture = fixture(name);
    assert_eq!(fixture.channel, channel, "{name}: channel");
    assert_bytes(name, &response.encode().expect("encodes"), &fixture);
    assert_eq!(
        &Response::decode(&fixture.bytes(), pending).expect("decodes"),
        response,
        "{name}"
    );
}

#[test]
fn sockets_and_all_rooms_responses() {
    check_response(
        "sockets_response",
        root().response(),
        RequestType::Sockets,
        &Response::Sockets(SocketsResponse {
            request_id: "rq0000".into(),
            sockets: strings(&["sockA", "sockB"]),
        }),
    );
    check_response(
        "all_rooms_response",
        root().response(),
        RequestType::AllRooms,
        &Response::AllRooms(AllRoomsResponse {
            request_id: "rq0001".into(),
            rooms: strings(&["sockA", "room1", "sockB", "room2"]),
        }),
    );
    check_response(
        "all_rooms_response_specific",
        &root().specific_response("remote"),
        RequestType::AllRooms,
        &Response::AllRooms(AllRoomsResponse {
            request_id: "rq0005".into(),
            rooms: strings(&["sockC"]),
        }),
    );
}

#[test]
fn fetch_response_with_handshake() {
    let handshake = fixture_handshake();
    check_response(
        "fetch_response",
        root().response(),
        RequestType::RemoteFetch,
        &Response::RemoteFetch(FetchResponse {
            request_id: "rq0002".into(),
            sockets: vec![FetchedSocket {
                id: "sockA".into(),
                handshake,
                rooms: strings(&["sockA", "room1"]),
                data: json!({"user": "alice", "n": 1}),
            }],
        }),
    );
}

#[test]
fn server_side_emit_ack_response() {
    check_response(
        "server_side_emit_response",
        root().response(),
        RequestType::ServerSideEmit,
        &Response::ServerSideEmit(ServerSideEmitResponse {
            request_id: "rq0003".into(),
            data: Some(json!({"ok": true, "got": "x"})),
        }),
    );
}

#[test]
fn broadcast_client_count_then_ack() {
    check_response(
        "broadcast_ack_responses_1",
        root().response(),
        RequestType::Broadcast,
        &Response::BroadcastClientCount(BroadcastClientCountResponse {
            request_id: "rq0004".into(),
            client_count: 1,
        }),
    );
    let ack = fixture("broadcast_ack_responses_2");
    assert_eq!(ack.encoding, "msgpack");
    check_response(
        "broadcast_ack_responses_2",
        root().response(),
        RequestType::Broadcast,
        &Response::BroadcastAck(BroadcastAckResponse {
            request_id: "rq0004".into(),
            packet: Some(s("answer")),
        }),
    );
}

#[test]
fn emitter_broadcasts() {
    let emitter = |packet, opts| BroadcastMessage::from_emitter(packet, opts);
    check_broadcast(
        "emitter_emit",
        &root(),
        Layout::Emitter,
        &emitter(
            Packet::event("/", "hello", [s("world")]),
            BroadcastOptions::default(),
        ),
    );

    let mut opts = BroadcastOptions::to_rooms(["room1"]);
    opts.except = strings(&["room2"]);
    opts.flags.volatile = Some(true);
    opts.flags.compress = Some(false);
    check_broadcast(
        "emitter_room_flags",
        &root(),
        Layout::Emitter,
        &emitter(
            Packet::event("/", "alert", [map(vec![("level", Value::from(2))])]),
            opts,
        ),
    );

    check_broadcast(
        "emitter_nsp_rooms_binary",
        &Channels::with_default_prefix("/admin"),
        Layout::Emitter,
        &emitter(
            Packet::event(
                "/admin",
                "blob",
                [Value::Binary(vec![0xde, 0xad, 0xbe, 0xef])],
            ),
            BroadcastOptions::to_rooms(["a", "b"]),
        ),
    );

    check_broadcast(
        "emitter_custom_key",
        &Channels::new("myapp", "/"),
        Layout::Emitter,
        &emitter(
            Packet::event("/", "x", []),
            BroadcastOptions::to_rooms(["r"]),
        ),
    );
}

#[test]
fn emitter_requests_have_no_uid_except_server_side_emit() {
    check_request(
        "emitter_sockets_join",
        &Request::RemoteJoin(RoomsRequest {
            uid: None,
            opts: RequestOpts::default(),
            rooms: strings(&["room9"]),
        }),
    );
    check_request(
        "emitter_sockets_leave",
        &Request::RemoteLeave(RoomsRequest {
            uid: None,
            opts: RequestOpts {
                rooms: strings(&["r1"]),
                except: vec![],
            },
            rooms: strings(&["r2", "r3"]),
        }),
    );
    check_request(
        "emitter_disconnect",
        &Request::RemoteDisconnect(DisconnectRequest {
            uid: None,
            opts: RequestOpts {
                rooms: vec![],
                except: strings(&["r4"]),
            },
            close: true,
        }),
    );
    check_request(
        "emitter_server_side_emit",
        &Request::ServerSideEmit(ServerSideEmitRequest {
            uid: Some("emitter".into()),
            request_id: None,
            data: vec![json!("hello"), json!("world"), json!(1)],
        }),
    );
}

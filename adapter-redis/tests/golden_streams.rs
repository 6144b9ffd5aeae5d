//! Golden tests for the streams mode: our encoders must produce exactly the stream entries the
//! real `@socket.io/redis-streams-adapter` 0.3.1 (on socket.io-adapter 2.5's `ClusterAdapter`,
//! socket.io 4.8, `@msgpack/msgpack` 2.8.0) `XADD`s and the payloads it `PUBLISH`es, on the same
//! stream or channel, and our decoders must read them back. Stream names, what the nodes read,
//! subscribe to and count with are checked against the real adapter too.
//!
//! The fixtures come from `tests/golden/gen.mjs` (the `streams` part of `fixtures.json`);
//! regenerate them with `cd adapter-redis/tests/golden && npm ci && npm run gen`.

mod common;

use common::{StreamsFixture, fixture_handshake, fixtures, from_hex, to_hex};
use serde_json::json;
use sio_adapter_redis::protocol::msgpack;
use sio_adapter_redis::protocol::streams::{
    DEFAULT_BLOCK_MS, DEFAULT_READ_COUNT, SESSION_KEY_PREFIX, StreamsOptions, decode_pubsub,
    encode_pubsub, entry_fields, is_ephemeral, message_from_entry,
};
use sio_adapter_redis::protocol::{
    BroadcastAckResponse, BroadcastClientCountResponse, BroadcastFlags, BroadcastOptions,
    FetchResponse, FetchedSocket, Packet, ShardedBody, ShardedBroadcast, ShardedChannels,
    ShardedDisconnectRequest, ShardedFetchRequest, ShardedMessage, ShardedRoomsRequest,
    ShardedServerSideEmit, ShardedServerSideEmitResponse,
};
use sio_adapter_redis::rmpv::Value;
use sio_adapter_redis::wire::{AdapterMode, Incoming, Outgoing, Wire, incoming};

/// Every case in the `streams` part of `fixtures.json` must be checked by a test below.
const CHECKED: &[&str] = &[
    "emit_strings",
    "to_one_room",
    "rooms_except",
    "volatile_compress",
    "numbers",
    "dates",
    "nested",
    "binary",
    "binary_to_one_room",
    "binary_numbers",
    "binary_undefined",
    "binary_dates",
    "binary_sizes",
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
    "server_side_emit_response_undefined",
    "broadcast_ack_responses_1",
    "broadcast_ack_responses_2",
    "broadcast_ack_responses_binary_1",
    "broadcast_ack_responses_binary_2",
    "broadcast_ack_responses_undefined_1",
    "broadcast_ack_responses_undefined_2",
    "custom_options_emit",
    "custom_options_server_side_emit",
];

/// The uid of the server under observation (gen.mjs draws 8-byte ids from a counter).
const SRV: &str = "5000000000000001";
/// The node whose requests the server answers.
const REMOTE: &str = "remote";
const SOCKET_A: &str = "SocketA0000000000000";
const SOCKET_B: &str = "SocketB0000000000000";

fn fixture(name: &str) -> StreamsFixture {
    assert!(CHECKED.contains(&name), "add {name} to CHECKED");
    fixtures()
        .streams
        .cases
        .remove(name)
        .unwrap_or_else(|| panic!("no streams fixture {name}"))
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Where and how a message travels: the options and channels of one server.
struct Setup {
    options: StreamsOptions,
    channels: ShardedChannels,
}

fn default_setup() -> Setup {
    Setup {
        options: StreamsOptions::default(),
        channels: ShardedChannels::with_default_prefix("/"),
    }
}

/// One case: the write (stream or channel), the bytes and the decoded message all match.
fn check(name: &str, message: &ShardedMessage) {
    check_decoding_to(name, &default_setup(), message, message);
}

/// Like [`check`], for messages whose decoded form differs from the encoded one (JS numbers,
/// dates, acks without argument).
fn check_decoding_to(
    name: &str,
    setup: &Setup,
    message: &ShardedMessage,
    decoded: &ShardedMessage,
) {
    let kind = message.message_type();
    match fixture(name) {
        StreamsFixture::Xadd {
            stream,
            cap,
            fields,
        } => {
            assert!(
                !is_ephemeral(&message.body) && !kind.is_response(),
                "{name}: appended"
            );
            assert_eq!(
                stream,
                setup.options.stream_for(&message.nsp),
                "{name}: stream"
            );
            assert_eq!(
                cap,
                ["MAXLEN", "~", &setup.options.max_len.to_string(), "*"],
                "{name}: cap"
            );
            let ours: Vec<(String, String)> = entry_fields(message)
                .expect("encodes")
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            assert_eq!(ours, fields, "{name}: fields differ from Node's");
            let read = message_from_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
                .expect("decodes")
                .expect("has a namespace");
            assert_eq!(&read, decoded, "{name}: decoded entry");
        }
        StreamsFixture::Publish { channel, hex } => {
            let expected_channel = if kind.is_response() {
                setup.channels.response(REMOTE)
            } else {
                assert!(is_ephemeral(&message.body), "{name}: published");
                setup.channels.main().to_owned()
            };
            assert_eq!(channel, expected_channel, "{name}: channel");
            let bytes = encode_pubsub(message).expect("encodes");
            assert_eq!(to_hex(&bytes), hex, "{name}: bytes differ from Node's");
            let read = decode_pubsub(&from_hex(&hex)).expect("decodes");
            assert_eq!(&read, decoded, "{name}: decoded payload");
        }
    }
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

fn emit(event: &str, args: Vec<Value>) -> ShardedMessage {
    srv(broadcast(
        Packet::event("/", event, args),
        BroadcastOptions::default(),
    ))
}

/// A 64-bit MessagePack timestamp: nanoseconds in the top 30 bits, seconds in the low 34.
fn timestamp64(seconds: u64, nanos: u64) -> Vec<u8> {
    ((nanos << 34) | seconds).to_be_bytes().to_vec()
}

#[test]
fn every_fixture_is_checked_and_versions_are_pinned() {
    let fixtures = fixtures();
    let names: Vec<&str> = fixtures.streams.cases.keys().map(String::as_str).collect();
    let mut checked = CHECKED.to_vec();
    checked.sort_unstable();
    assert_eq!(names, checked);
    assert_eq!(
        fixtures.versions["@socket.io/redis-streams-adapter"],
        "0.3.1"
    );
    assert_eq!(fixtures.versions["@msgpack/msgpack"], "2.8.0");
    assert!(fixtures.versions["socket.io-adapter"].starts_with("2.5."));
}

#[test]
fn broadcasts_are_json_entries() {
    check("emit_strings", &emit("hello", vec![s("world"), s("again")]));
    check(
        "to_one_room",
        &srv(broadcast(
            Packet::event("/", "news", [s("a")]),
            BroadcastOptions::to_rooms(["room1"]),
        )),
    );
    let opts = BroadcastOptions {
        rooms: strings(&["room1", "room2"]),
        except: strings(&["room3", SOCKET_B]),
        flags: BroadcastFlags::default(),
    };
    check(
        "rooms_except",
        &srv(broadcast(Packet::event("/", "msg", [Value::from(1)]), opts)),
    );
    let mut opts = BroadcastOptions::default();
    opts.flags.volatile = Some(true);
    opts.flags.compress = Some(true);
    check(
        "volatile_compress",
        &srv(broadcast(
            Packet::event("/", "tick", [Value::from(42)]),
            opts,
        )),
    );
}

#[test]
fn json_entries_follow_json_stringify() {
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
    let mut decoded = common.to_vec();
    decoded.extend([
        Value::from(2),
        Value::from(0),
        Value::from(4_294_967_296u64),
        Value::from(two_pow_53),
        Value::Nil,
        Value::Nil,
    ]);
    check_decoding_to(
        "numbers",
        &default_setup(),
        &emit("n", args),
        &emit("n", decoded),
    );

    // A 96-bit timestamp too far out for a JS Date: an invalid date, `null` in JSON.
    let mut invalid = vec![0, 0, 0, 0];
    invalid.extend_from_slice(&i64::MAX.to_be_bytes());
    check_decoding_to(
        "dates",
        &default_setup(),
        &emit(
            "when",
            vec![
                Value::Ext(-1, timestamp64(1_704_164_645, 678_000_000)),
                Value::Ext(-1, invalid),
            ],
        ),
        &emit("when", vec![s("2024-01-02T03:04:05.678Z"), Value::Nil]),
    );

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
    check(
        "nested",
        &emit(
            "obj",
            vec![
                object,
                Value::Array(vec![Value::Array(vec![]), map(vec![])]),
            ],
        ),
    );
}

#[test]
fn binaries_make_base64_msgpack_entries() {
    check(
        "binary",
        &emit(
            "file",
            vec![
                Value::Binary(vec![1, 2, 3]),
                map(vec![
                    ("name", s("x")),
                    ("content", Value::Binary(b"hi".to_vec())),
                ]),
            ],
        ),
    );
    check(
        "binary_to_one_room",
        &srv(broadcast(
            Packet::event("/", "file", [Value::Binary(vec![4])]),
            BroadcastOptions::to_rooms(["room1"]),
        )),
    );
}

/// `@msgpack/msgpack` writes an integer only for a safe integer (|n| ≤ 2^53 − 1): 2^53, 2^63,
/// 2^64 and 1e300 are float 64 (notepack writes the first two as uint 64, the others modulo
/// 2^64).
#[test]
fn msgpack_entries_write_only_safe_integers_as_integers() {
    let safe = (1u64 << 53) - 1;
    let ints: Vec<Value> = [
        0u64,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        4_294_967_295,
        4_294_967_296,
        safe,
    ]
    .into_iter()
    .map(Value::from)
    .collect();
    let negatives: Vec<Value> = [
        -1i64,
        -32,
        -33,
        -128,
        -129,
        -32_768,
        -32_769,
        -2_147_483_648,
        -2_147_483_649,
        -(safe as i64),
    ]
    .into_iter()
    .map(Value::from)
    .collect();
    let unsafe_in = [
        Value::from(1u64 << 53),
        Value::from(1u64 << 63),
        Value::F64(18_446_744_073_709_551_616.0),
        Value::F64(1e300),
    ];
    let unsafe_out = [
        Value::F64(9_007_199_254_740_992.0),
        Value::F64(9_223_372_036_854_775_808.0),
        Value::F64(18_446_744_073_709_551_616.0),
        Value::F64(1e300),
    ];
    let floats_in = [
        Value::F64(1.5),
        Value::F64(-0.25),
        Value::F64(2.0),
        Value::F64(-0.0),
        Value::F64(f64::NAN),
        Value::F64(f64::INFINITY),
        Value::F64(f64::NEG_INFINITY),
    ];
    let args = |unsafe_: &[Value], negative_unsafe: Value, floats: Vec<Value>| {
        let mut args = vec![Value::Binary(vec![0])];
        args.extend(ints.iter().cloned());
        args.extend(unsafe_.iter().cloned());
        args.extend(negatives.iter().cloned());
        args.push(negative_unsafe);
        args.extend(floats);
        args
    };
    let sent = args(&unsafe_in, Value::from(-(1i64 << 53)), floats_in.to_vec());
    let mut floats_out = floats_in.to_vec();
    floats_out[2] = Value::from(2);
    floats_out[3] = Value::from(0);
    let read = args(
        &unsafe_out,
        Value::F64(-9_007_199_254_740_992.0),
        floats_out,
    );
    let StreamsFixture::Xadd {
        stream,
        cap,
        fields,
    } = fixture("binary_numbers")
    else {
        panic!("binary_numbers: an entry");
    };
    assert_eq!((stream.as_str(), cap[3].as_str()), ("socket.io", "*"));
    let ours: Vec<(String, String)> = entry_fields(&emit("n", sent))
        .expect("encodes")
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(ours, fields, "bytes differ from Node's");
    // NaN != NaN: compare the re-encoding of what was read instead.
    let decoded = message_from_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
        .expect("decodes")
        .expect("nsp");
    assert_eq!(
        entry_fields(&decoded).expect("encodes"),
        entry_fields(&emit("n", read)).expect("encodes")
    );
}

/// `@msgpack/msgpack` keeps `undefined` properties and array items, as nil.
#[test]
fn msgpack_entries_keep_undefined_as_nil() {
    check(
        "binary_undefined",
        &emit(
            "u",
            vec![
                Value::Binary(vec![9]),
                map(vec![("skipped", Value::Nil), ("kept", Value::from(1))]),
                Value::Array(vec![Value::Nil]),
            ],
        ),
    );
}

/// Dates are timestamps in MessagePack: 32-bit for whole seconds, 64-bit otherwise; read back
/// as ISO-8601 strings.
#[test]
fn msgpack_entries_write_dates_as_timestamps() {
    check_decoding_to(
        "binary_dates",
        &default_setup(),
        &emit(
            "when",
            vec![
                Value::Binary(vec![1]),
                Value::Ext(-1, timestamp64(1_704_164_645, 678_000_000)),
                Value::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec()),
            ],
        ),
        &emit(
            "when",
            vec![
                Value::Binary(vec![1]),
                s("2024-01-02T03:04:05.678Z"),
                s("2023-11-14T22:13:20.000Z"),
            ],
        ),
    );
}

#[test]
fn msgpack_entries_pick_the_smallest_headers() {
    let numbered = |n: u64| -> Vec<Value> { (0..n).map(Value::from).collect() };
    let keyed = |n: u64| {
        Value::Map(
            (0..n)
                .map(|i| (Value::from(format!("k{i:02}")), Value::from(i)))
                .collect(),
        )
    };
    check(
        "binary_sizes",
        &emit(
            "big",
            vec![
                Value::Binary(vec![7; 300]),
                s(&"x".repeat(31)),
                s(&"x".repeat(32)),
                s(&"y".repeat(255)),
                s(&"y".repeat(256)),
                Value::Array(numbered(15)),
                Value::Array(numbered(16)),
                keyed(15),
                keyed(16),
                s("é✓😀"),
            ],
        ),
    );
}

#[test]
fn broadcast_with_ack_is_published() {
    let mut opts = BroadcastOptions::to_rooms(["room1"]);
    opts.flags.timeout = Some(1000);
    check(
        "broadcast_with_ack",
        &srv(ShardedBody::Broadcast(ShardedBroadcast {
            packet: Packet::event("/", "ask", [s("q")]),
            request_id: Some("5000000000000002".into()),
            opts,
        })),
    );
}

#[test]
fn room_changes_and_disconnects_are_entries() {
    check(
        "sockets_join",
        &srv(ShardedBody::SocketsJoin(ShardedRoomsRequest {
            opts: BroadcastOptions::default(),
            rooms: strings(&["room5"]),
        })),
    );
    check(
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
    check(
        "disconnect_sockets",
        &srv(ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
            opts: BroadcastOptions::to_rooms(["room1"]),
            close: true,
        })),
    );
}

#[test]
fn fetch_sockets_and_server_side_emits_are_published() {
    check(
        "fetch_sockets",
        &srv(ShardedBody::FetchSockets(ShardedFetchRequest {
            opts: BroadcastOptions {
                rooms: strings(&["room1"]),
                except: strings(&["room2"]),
                flags: BroadcastFlags::default(),
            },
            request_id: "5000000000000003".into(),
        })),
    );
    let mut opts = BroadcastOptions::default();
    opts.flags.timeout = Some(1000);
    check(
        "fetch_sockets_timeout",
        &srv(ShardedBody::FetchSockets(ShardedFetchRequest {
            opts,
            request_id: "5000000000000004".into(),
        })),
    );
    let server_side = |request_id: Option<&str>, packet: Vec<Value>| {
        srv(ShardedBody::ServerSideEmit(ShardedServerSideEmit {
            request_id: request_id.map(str::to_owned),
            packet,
        }))
    };
    check(
        "server_side_emit",
        &server_side(None, vec![s("hello"), s("world"), Value::from(42)]),
    );
    check(
        "server_side_emit_with_ack",
        &server_side(Some("5000000000000005"), vec![s("ping")]),
    );
    check(
        "server_side_emit_binary",
        &server_side(None, vec![s("blob"), Value::Binary(vec![0xde, 0xad])]),
    );
}

#[test]
fn responses_go_to_the_requester() {
    check(
        "fetch_sockets_response",
        &srv(ShardedBody::FetchSocketsResponse(FetchResponse {
            request_id: "rq0001".into(),
            sockets: vec![FetchedSocket {
                id: SOCKET_A.into(),
                handshake: fixture_handshake(),
                rooms: strings(&[SOCKET_A, "room1"]),
                data: json!({"user": "alice", "n": 1}),
            }],
        })),
    );
    let response = |request_id: &str, packet: Option<Value>| {
        srv(ShardedBody::ServerSideEmitResponse(
            ShardedServerSideEmitResponse {
                request_id: request_id.into(),
                packet,
            },
        ))
    };
    check(
        "server_side_emit_response",
        &response(
            "rq0002",
            Some(map(vec![("ok", Value::Boolean(true)), ("got", s("x"))])),
        ),
    );
    check(
        "server_side_emit_response_binary",
        &response("rq0003", Some(Value::Binary(vec![1, 2]))),
    );
    // `ack()`: `{requestId, packet: undefined}`, written with a nil packet, read as that nil.
    check_decoding_to(
        "server_side_emit_response_undefined",
        &default_setup(),
        &response("rq0004", None),
        &response("rq0004", Some(Value::Nil)),
    );
}

#[test]
fn broadcast_client_count_then_ack() {
    for (case, request_id, ack, read) in [
        ("broadcast_ack_responses", "rq0005", Some(s("answer")), None),
        (
            "broadcast_ack_responses_binary",
            "rq0006",
            Some(Value::Binary(vec![0xca, 0xfe])),
            None,
        ),
        (
            "broadcast_ack_responses_undefined",
            "rq0007",
            None,
            Some(Value::Nil),
        ),
    ] {
        check(
            &format!("{case}_1"),
            &srv(ShardedBody::BroadcastClientCount(
                BroadcastClientCountResponse {
                    request_id: request_id.into(),
                    client_count: 1,
                },
            )),
        );
        let ack_message = |packet| {
            srv(ShardedBody::BroadcastAck(BroadcastAckResponse {
                request_id: request_id.into(),
                packet,
            }))
        };
        check_decoding_to(
            &format!("{case}_2"),
            &default_setup(),
            &ack_message(ack.clone()),
            &ack_message(read.or(ack)),
        );
    }
}

#[test]
fn custom_stream_name_length_and_prefix() {
    let setup = Setup {
        options: StreamsOptions {
            stream_name: "app".into(),
            max_len: 500,
            ..StreamsOptions::default()
        },
        channels: ShardedChannels::new("myapp", "/chat"),
    };
    let uid = "5000000000000007";
    let message = ShardedMessage::new(
        uid,
        "/chat",
        broadcast(
            Packet::event("/chat", "msg", [s("hi")]),
            BroadcastOptions::to_rooms(["lobby"]),
        ),
    );
    check_decoding_to("custom_options_emit", &setup, &message, &message);
    let message = ShardedMessage::new(
        uid,
        "/chat",
        ShardedBody::ServerSideEmit(ShardedServerSideEmit {
            request_id: None,
            packet: vec![s("hey")],
        }),
    );
    check_decoding_to(
        "custom_options_server_side_emit",
        &setup,
        &message,
        &message,
    );
}

/// Stream names by namespace hash, negative indexes included (JS's `%` keeps the dividend's
/// sign: `/a-long-namespace-name` writes to `socket.io--1`, which nobody reads).
#[test]
fn stream_names_match_nodes() {
    let recorded = fixtures().streams.stream_names;
    assert_eq!(recorded.len(), 3);
    for (count, names) in recorded {
        let options = StreamsOptions {
            stream_count: count.parse().expect("a count"),
            ..StreamsOptions::default()
        };
        for (nsp, stream) in names {
            assert_eq!(options.stream_for(&nsp), stream, "{nsp} over {count}");
        }
    }
    let names = &fixtures().streams.stream_names["4"];
    assert_eq!(names["/a-long-namespace-name"], "socket.io--1");
}

/// Each node reads every stream, from `$`, with `XREAD BLOCK 5000 COUNT 100`.
#[test]
fn nodes_read_every_stream() {
    let reads = fixtures().streams.reads;
    let setups = [
        ("default", StreamsOptions::default()),
        (
            "custom",
            StreamsOptions {
                stream_name: "app".into(),
                ..StreamsOptions::default()
            },
        ),
        (
            "count_2",
            StreamsOptions {
                stream_count: 2,
                ..StreamsOptions::default()
            },
        ),
        (
            "count_3",
            StreamsOptions {
                stream_count: 3,
                ..StreamsOptions::default()
            },
        ),
        (
            "count_4",
            StreamsOptions {
                stream_count: 4,
                ..StreamsOptions::default()
            },
        ),
    ];
    assert_eq!(reads.len(), setups.len());
    for (name, options) in setups {
        let expected: Vec<Vec<serde_json::Value>> = options
            .streams()
            .into_iter()
            .map(|stream| {
                vec![
                    json!("BLOCK"),
                    json!(DEFAULT_BLOCK_MS),
                    json!("COUNT"),
                    json!(DEFAULT_READ_COUNT),
                    json!("STREAMS"),
                    json!(stream),
                    json!("$"),
                ]
            })
            .collect();
        assert_eq!(reads[name], expected, "{name}");
    }
}

#[test]
fn subscriptions_and_the_server_count_use_the_sharded_names_with_classic_pubsub() {
    let fixtures = fixtures().streams;
    let channels = ShardedChannels::with_default_prefix("/");
    assert_eq!(
        fixtures.subscriptions,
        [[channels.main().to_owned(), channels.response(SRV)]]
    );
    assert_eq!(fixtures.server_count, ["PUBSUB", "NUMSUB", channels.main()]);
    assert!(fixtures.published_on_init_and_close.is_empty());
}

/// What a persisted session looks like (not written by this crate yet): `SET
/// sio:session:<pid> base64(msgpack({sid, pid, rooms, data})) PX <maxDisconnectionDuration>`.
#[test]
fn sessions_are_base64_msgpack_under_the_prefix() {
    let session = fixtures().streams.session;
    let pid = "PidA0000000000000000";
    assert_eq!(session[0], format!("{SESSION_KEY_PREFIX}{pid}"));
    assert_eq!(session[2..], ["PX", "120000"]);
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&session[1])
        .expect("base64");
    assert_eq!(
        msgpack::decode(&bytes).expect("msgpack"),
        map(vec![
            ("sid", s(SOCKET_A)),
            ("pid", s(pid)),
            ("rooms", Value::Array(vec![s(SOCKET_A), s("room1")])),
            (
                "data",
                map(vec![("user", s("alice")), ("n", Value::from(1))])
            ),
        ])
    );
}

/// [`Wire`] in streams mode, from the domain messages the adapter and the emitter use, writes
/// what Node writes, where Node writes it (for the cases the domain types carry whole: they
/// have no flags on requests and JSON server-side-emit data).
#[test]
fn the_wire_writes_what_node_writes() {
    let mut cases: Vec<(&str, Setup, ShardedMessage)> = Vec::new();
    let mut add = |name, message| cases.push((name, default_setup(), message));
    add("emit_strings", emit("hello", vec![s("world"), s("again")]));
    add(
        "binary",
        emit(
            "file",
            vec![
                Value::Binary(vec![1, 2, 3]),
                map(vec![
                    ("name", s("x")),
                    ("content", Value::Binary(b"hi".to_vec())),
                ]),
            ],
        ),
    );
    add(
        "sockets_join",
        srv(ShardedBody::SocketsJoin(ShardedRoomsRequest {
            opts: BroadcastOptions::default(),
            rooms: strings(&["room5"]),
        })),
    );
    add(
        "disconnect_sockets",
        srv(ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
            opts: BroadcastOptions::to_rooms(["room1"]),
            close: true,
        })),
    );
    add(
        "fetch_sockets",
        srv(ShardedBody::FetchSockets(ShardedFetchRequest {
            opts: BroadcastOptions {
                rooms: strings(&["room1"]),
                except: strings(&["room2"]),
                flags: BroadcastFlags::default(),
            },
            request_id: "5000000000000003".into(),
        })),
    );
    add(
        "server_side_emit",
        srv(ShardedBody::ServerSideEmit(ShardedServerSideEmit {
            request_id: None,
            packet: vec![s("hello"), s("world"), Value::from(42)],
        })),
    );
    let mut opts = BroadcastOptions::to_rooms(["room1"]);
    opts.flags.timeout = Some(1000);
    add(
        "broadcast_with_ack",
        srv(ShardedBody::Broadcast(ShardedBroadcast {
            packet: Packet::event("/", "ask", [s("q")]),
            request_id: Some("5000000000000002".into()),
            opts,
        })),
    );
    add(
        "server_side_emit_response",
        srv(ShardedBody::ServerSideEmitResponse(
            ShardedServerSideEmitResponse {
                request_id: "rq0002".into(),
                packet: Some(map(vec![("ok", Value::Boolean(true)), ("got", s("x"))])),
            },
        )),
    );
    add(
        "broadcast_ack_responses_undefined_2",
        srv(ShardedBody::BroadcastAck(BroadcastAckResponse {
            request_id: "rq0007".into(),
            packet: None,
        })),
    );
    cases.push((
        "custom_options_emit",
        Setup {
            options: StreamsOptions {
                stream_name: "app".into(),
                max_len: 500,
                ..StreamsOptions::default()
            },
            channels: ShardedChannels::new("myapp", "/chat"),
        },
        ShardedMessage::new(
            "5000000000000007",
            "/chat",
            broadcast(
                Packet::event("/chat", "msg", [s("hi")]),
                BroadcastOptions::to_rooms(["lobby"]),
            ),
        ),
    ));

    for (name, setup, message) in cases {
        let wire = Wire::new(AdapterMode::Streams, setup.channels.prefix(), &message.uid)
            .with_streams(setup.options.clone());
        let nsp = message.nsp.clone();
        let outgoing = match incoming(message).expect("carries something") {
            Incoming::Broadcast(b) => wire.broadcast(&nsp, &b),
            Incoming::Request(r) => wire.request(&nsp, r).map(|o| o.expect("a streams request")),
            Incoming::Response(r) => wire
                .response(&nsp, Some(REMOTE), r)
                .map(|o| o.expect("a streams response")),
        }
        .expect("encodes");
        match (outgoing, fixture(name)) {
            (
                Outgoing::Append {
                    stream,
                    max_len,
                    fields,
                },
                StreamsFixture::Xadd {
                    stream: node_stream,
                    cap,
                    fields: node_fields,
                },
            ) => {
                assert_eq!(stream, node_stream, "{name}: stream");
                assert_eq!(max_len.to_string(), cap[2], "{name}: MAXLEN");
                let fields: Vec<(String, String)> =
                    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                assert_eq!(fields, node_fields, "{name}: fields");
            }
            (
                Outgoing::Publish { channel, payload },
                StreamsFixture::Publish {
                    channel: node_channel,
                    hex,
                },
            ) => {
                assert_eq!(channel, node_channel, "{name}: channel");
                assert_eq!(to_hex(&payload), hex, "{name}: payload");
            }
            (ours, node) => panic!("{name}: we send {ours:?}, Node sent {node:?}"),
        }
    }
}

use rmpv::Value;

use super::pubsub::encode_js;
use super::*;
use crate::{
    BroadcastAckResponse, BroadcastClientCountResponse, BroadcastOptions, FetchResponse,
    MessageType, Packet, ProtocolError, ShardedBroadcast, ShardedDisconnectRequest,
    ShardedFetchRequest, ShardedMessage, ShardedRoomsRequest, ShardedServerSideEmit,
    ShardedServerSideEmitResponse,
};

const UID: &str = "5000000000000001";

fn message(body: ShardedBody) -> ShardedMessage {
    ShardedMessage::new(UID, "/", body)
}

fn broadcast(args: Vec<Value>, request_id: Option<&str>) -> ShardedBody {
    ShardedBody::Broadcast(ShardedBroadcast {
        packet: Packet::event("/", "ev", args),
        request_id: request_id.map(str::to_owned),
        opts: BroadcastOptions::to_rooms(["r"]),
    })
}

/// One body of every type.
fn every_body() -> Vec<ShardedBody> {
    let opts = BroadcastOptions {
        rooms: vec!["a".into()],
        except: vec!["b".into()],
        ..BroadcastOptions::default()
    };
    vec![
        ShardedBody::InitialHeartbeat,
        ShardedBody::Heartbeat,
        broadcast(vec![Value::from("x"), Value::from(1)], None),
        broadcast(vec![Value::Binary(vec![0, 1, 2])], None),
        broadcast(vec![Value::from("q")], Some("rq")),
        ShardedBody::SocketsJoin(ShardedRoomsRequest {
            opts: opts.clone(),
            rooms: vec!["c".into(), "c".into()],
        }),
        ShardedBody::SocketsLeave(ShardedRoomsRequest {
            opts: opts.clone(),
            rooms: vec!["d".into()],
        }),
        ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
            opts: opts.clone(),
            close: true,
        }),
        ShardedBody::FetchSockets(ShardedFetchRequest {
            opts,
            request_id: "rq".into(),
        }),
        ShardedBody::FetchSocketsResponse(FetchResponse {
            request_id: "rq".into(),
            sockets: Vec::new(),
        }),
        ShardedBody::ServerSideEmit(ShardedServerSideEmit {
            request_id: None,
            packet: vec![Value::from("hello"), Value::Binary(vec![9])],
        }),
        ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
            request_id: "rq".into(),
            packet: Some(Value::from("ok")),
        }),
        ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
            request_id: "rq".into(),
            packet: None,
        }),
        ShardedBody::BroadcastClientCount(BroadcastClientCountResponse {
            request_id: "rq".into(),
            client_count: 3,
        }),
        ShardedBody::BroadcastAck(BroadcastAckResponse {
            request_id: "rq".into(),
            packet: Some(Value::Binary(vec![7])),
        }),
        ShardedBody::BroadcastAck(BroadcastAckResponse {
            request_id: "rq".into(),
            packet: None,
        }),
        ShardedBody::AdapterClose,
    ]
}

fn entry(fields: &[(&'static str, &str)]) -> Result<Option<ShardedMessage>, ProtocolError> {
    message_from_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
}

fn read_back(fields: &[(&'static str, String)]) -> Result<Option<ShardedMessage>, ProtocolError> {
    message_from_entry(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn defaults_are_nodes() {
    let options = StreamsOptions::default();
    assert_eq!(options.stream_name, "socket.io");
    assert_eq!(options.stream_count, 1);
    assert_eq!(options.max_len, 10_000);
    assert_eq!(DEFAULT_READ_COUNT, 100);
    assert_eq!(DEFAULT_BLOCK_MS, 5_000);
    assert_eq!(SESSION_KEY_PREFIX, "sio:session:");
}

#[test]
fn one_stream_for_every_namespace_by_default() {
    let options = StreamsOptions {
        stream_name: "app".into(),
        ..StreamsOptions::default()
    };
    for nsp in ["/", "/chat", "/a-long-namespace-name"] {
        assert_eq!(options.stream_for(nsp), "app");
    }
    assert_eq!(options.streams(), ["app"]);
}

#[test]
fn hash_code_counts_utf16_units_and_wraps() {
    assert_eq!(hash_code(""), 0);
    assert_eq!(hash_code("/"), 47);
    assert_eq!(hash_code("/x"), 47 * 31 + 120);
    // Values computed by the adapter's own `hashCode` (see golden_streams.rs for the streams).
    assert_eq!(hash_code("/chat"), 46_457_863);
    assert_eq!(hash_code("/admin"), 1_438_238_848);
    assert_eq!(hash_code("/😀"), 1_818_066); // two UTF-16 units
    assert_eq!(hash_code("/a-long-namespace-name"), -227_082_509);
}

#[test]
fn several_streams_by_namespace_hash() {
    let count = |stream_count| StreamsOptions {
        stream_count,
        ..StreamsOptions::default()
    };
    assert_eq!(count(4).stream_for("/"), "socket.io-3");
    assert_eq!(count(4).stream_for("/admin"), "socket.io-0");
    assert_eq!(count(3).stream_for("/😀"), "socket.io-0");
    assert_eq!(
        count(3).streams(),
        ["socket.io-0", "socket.io-1", "socket.io-2"]
    );
}

/// JavaScript's `%` keeps the dividend's sign: a namespace whose hash is negative writes to a
/// stream with a negative index, which no node reads. Replicated on purpose.
#[test]
fn negative_hashes_give_streams_nobody_reads() {
    let nsp = "/a-long-namespace-name";
    for (count, stream) in [
        (2, "socket.io--1"),
        (3, "socket.io--2"),
        (4, "socket.io--1"),
    ] {
        let options = StreamsOptions {
            stream_count: count,
            ..StreamsOptions::default()
        };
        assert_eq!(options.stream_for(nsp), stream);
        assert!(!options.streams().iter().any(|s| s == stream));
    }
    // `i32::MIN % n` must not overflow.
    let options = StreamsOptions {
        stream_count: u32::MAX,
        ..StreamsOptions::default()
    };
    assert!(options.stream_for(nsp).starts_with("socket.io--"));
}

#[test]
fn zero_streams_is_nan_as_in_javascript() {
    let options = StreamsOptions {
        stream_count: 0,
        ..StreamsOptions::default()
    };
    assert_eq!(options.stream_for("/"), "socket.io-NaN");
    assert!(options.streams().is_empty());
}

#[test]
fn ephemeral_messages_are_the_nodes() {
    let ephemeral: Vec<MessageType> = every_body()
        .iter()
        .filter(|b| is_ephemeral(b))
        .map(ShardedBody::message_type)
        .collect();
    assert_eq!(
        ephemeral,
        [
            MessageType::Broadcast,
            MessageType::FetchSockets,
            MessageType::ServerSideEmit
        ]
    );
    assert!(!is_ephemeral(&broadcast(vec![], None)));
    assert!(is_ephemeral(&broadcast(vec![], Some("rq"))));
}

#[test]
fn entries_round_trip_for_every_type() {
    for body in every_body() {
        let sent = message(body);
        let fields = entry_fields(&sent).expect("encodes");
        let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        let has_data = !matches!(
            sent.body,
            ShardedBody::InitialHeartbeat | ShardedBody::Heartbeat | ShardedBody::AdapterClose
        );
        let expected: &[&str] = if has_data {
            &["uid", "nsp", "type", "data"]
        } else {
            &["uid", "nsp", "type"]
        };
        assert_eq!(names, expected, "{sent:?}");
        assert_eq!(fields[2].1, sent.message_type().code().to_string());
        assert_eq!(read_back(&fields).expect("decodes"), Some(sent));
    }
}

#[test]
fn binaries_make_base64_msgpack_only_where_the_type_allows() {
    let fields =
        entry_fields(&message(broadcast(vec![Value::Binary(vec![1])], None))).expect("encodes");
    let data = &fields[3].1;
    assert!(!data.starts_with('{'), "{data}");
    // A room name cannot be binary; a `DISCONNECT_SOCKETS` never holds one: JSON.
    let fields = entry_fields(&message(ShardedBody::SocketsJoin(
        ShardedRoomsRequest::default(),
    )))
    .expect("encodes");
    assert!(fields[3].1.starts_with('{'));
}

#[test]
fn dates_are_iso_in_json_and_timestamps_in_msgpack() {
    let ts32 = Value::Ext(-1, vec![0x65, 0x53, 0xf1, 0x00]);
    let json = entry_fields(&message(broadcast(vec![ts32.clone()], None))).expect("encodes");
    assert!(
        json[3].1.contains("\"2023-11-14T22:13:20.000Z\""),
        "{}",
        json[3].1
    );
    let with_binary = entry_fields(&message(broadcast(vec![ts32, Value::Binary(vec![])], None)))
        .expect("encodes");
    let read = read_back(&with_binary).expect("decodes").expect("nsp");
    let ShardedBody::Broadcast(b) = read.body else {
        panic!("not a broadcast")
    };
    assert_eq!(
        b.packet.args(),
        [
            Value::from("2023-11-14T22:13:20.000Z"),
            Value::Binary(vec![])
        ]
    );
}

#[test]
fn pubsub_round_trips_for_every_type() {
    for body in every_body() {
        let sent = message(body);
        let bytes = encode_pubsub(&sent).expect("encodes");
        let read = decode_pubsub(&bytes).expect("decodes");
        // An ack without argument is sent as `packet: nil` and read as that nil (JS `null`).
        let mut expected = sent.clone();
        match &mut expected.body {
            ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
                packet, ..
            })
            | ShardedBody::BroadcastAck(BroadcastAckResponse { packet, .. }) => {
                packet.get_or_insert(Value::Nil);
            }
            _ => {}
        }
        assert_eq!(read, expected);
        assert_eq!(encode_pubsub(&read).expect("encodes again"), bytes);
        let keys = if matches!(
            sent.body,
            ShardedBody::InitialHeartbeat | ShardedBody::Heartbeat | ShardedBody::AdapterClose
        ) {
            0x83
        } else {
            0x84
        };
        assert_eq!(bytes[0], keys);
    }
}

/// `@msgpack/msgpack` keeps `undefined` properties, as nil: `{requestId, packet: undefined}`.
#[test]
fn an_ack_without_argument_has_a_nil_packet() {
    let bytes = encode_pubsub(&message(ShardedBody::BroadcastAck(BroadcastAckResponse {
        request_id: "r".into(),
        packet: None,
    })))
    .expect("encodes");
    let needle = [&[0xa6][..], b"packet", &[0xc0]].concat();
    assert!(bytes.windows(needle.len()).any(|w| w == needle));
    // In JSON, `JSON.stringify` drops it.
    let fields = entry_fields(&message(ShardedBody::ServerSideEmitResponse(
        ShardedServerSideEmitResponse {
            request_id: "r".into(),
            packet: None,
        },
    )))
    .expect("encodes");
    assert_eq!(fields[3].1, r#"{"requestId":"r"}"#);
}

#[test]
fn numbers_are_written_as_msgpack_javascript_writes_them() {
    let enc = |v: Value| encode_js(&v).expect("encodes");
    const SAFE: u64 = (1 << 53) - 1;
    assert_eq!(enc(Value::from(SAFE))[0], 0xcf);
    assert_eq!(enc(Value::from(-(SAFE as i64)))[0], 0xd3);
    // 2^53 is not a safe integer: float 64, where notepack writes uint 64.
    assert_eq!(
        enc(Value::from(SAFE + 1)),
        [&[0xcb][..], &(9_007_199_254_740_992f64).to_be_bytes()].concat()
    );
    assert_eq!(enc(Value::from(u64::MAX))[0], 0xcb);
    assert_eq!(enc(Value::from(i64::MIN))[0], 0xcb);
    assert_eq!(enc(Value::F64(2.0)), [0x02]);
    assert_eq!(enc(Value::F64(-0.0)), [0x00]);
    assert_eq!(enc(Value::F32(-33.0)), [0xd0, 0xdf]);
    assert_eq!(enc(Value::F64(1e300))[0], 0xcb);
    assert_eq!(
        enc(Value::F64(f64::from_bits(0x7ff8_0000_0000_0001))),
        [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(enc(Value::F64(f64::INFINITY))[0], 0xcb);
}

#[test]
fn map_keys_become_property_names() {
    let map = Value::Map(vec![(Value::from(1), Value::Nil), (Value::Nil, Value::Nil)]);
    assert_eq!(
        encode_js(&map).expect("encodes"),
        [0x82, 0xa1, b'1', 0xc0, 0xa4, b'n', b'u', b'l', b'l', 0xc0]
    );
}

#[test]
fn nesting_is_bounded_as_in_msgpack_javascript() {
    let nested = |levels: usize| (0..levels).fold(Value::Nil, |inner, _| Value::Array(vec![inner]));
    // The value passed to `encode` is level 1: 99 arrays and their nil make 100 levels.
    assert!(encode_js(&nested(99)).is_ok());
    assert!(matches!(
        encode_js(&nested(100)),
        Err(ProtocolError::Encode(_))
    ));
    // In a message, `data` is level 2 and a broadcast's arguments level 5.
    let deep = message(broadcast(vec![nested(200)], Some("rq")));
    assert!(encode_pubsub(&deep).is_err());
}

#[test]
fn entries_without_a_namespace_are_skipped() {
    assert!(entry(&[("uid", "u"), ("type", "3")]).expect("ok").is_none());
    assert!(
        entry(&[("uid", "u"), ("nsp", ""), ("type", "3")])
            .expect("ok")
            .is_none()
    );
    assert!(entry(&[]).expect("ok").is_none());
}

#[test]
fn last_duplicate_wins_and_unknown_fields_are_ignored() {
    let read = entry(&[
        ("nsp", "/other"),
        ("uid", "u"),
        ("extra", "\u{0}"),
        ("type", "2"),
        ("nsp", "/"),
        ("data", ""),
    ])
    .expect("decodes")
    .expect("nsp");
    assert_eq!(read, ShardedMessage::new("u", "/", ShardedBody::Heartbeat));
}

#[test]
fn garbage_entries_are_errors() {
    let ok = [("uid", "u"), ("nsp", "/"), ("type", "4")];
    let with = |name: &'static str, value: &str| {
        let mut fields: Vec<(&'static str, String)> = ok
            .iter()
            .filter(|(k, _)| *k != name)
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        fields.push((name, value.to_owned()));
        read_back(&fields)
    };
    let join = r#"{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["a"]}"#;
    assert!(with("data", join).expect("valid").is_some());
    for (name, value) in [
        ("type", ""),
        ("type", "3x"),
        ("type", "-3"),
        ("type", " 3"),
        ("type", "99999999999999999999"),
        ("type", "999999999999999999999999"),
        ("type", "0"),
        ("type", "14"),
        ("data", "{oops"),
        ("data", "{\"rooms\":[\"a\"]}"),
        ("data", "[1]"),
        ("data", "!!!!"),
        ("data", "gqZwYWNr"),
        ("data", "wQ=="),
    ] {
        assert!(with(name, value).is_err(), "{name} = {value:?}");
    }
    // A required field missing, data missing.
    assert!(matches!(
        entry(&[("nsp", "/"), ("type", "4")]),
        Err(ProtocolError::MissingField("uid"))
    ));
    assert!(matches!(
        entry(&[("nsp", "/"), ("uid", "u")]),
        Err(ProtocolError::MissingField("type"))
    ));
    assert!(matches!(
        entry(&ok),
        Err(ProtocolError::MissingField("data"))
    ));
    assert!(matches!(
        with("type", "14"),
        Err(ProtocolError::UnknownMessageType(14))
    ));
    // Fields that are not UTF-8.
    for name in [&b"uid"[..], b"nsp", b"type", b"data"] {
        let mut fields: Vec<(&[u8], &[u8])> = vec![(b"uid", b"u"), (b"nsp", b"/"), (b"type", b"4")];
        fields.push((name, b"\xff\xfe"));
        assert!(message_from_entry(fields).is_err());
    }
}

#[test]
fn huge_declared_counts_in_entries_are_errors() {
    for msgpack in [
        &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
        &[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0],
        &[
            0x81, 0xa4, b'o', b'p', b't', b's', 0xdb, 0xff, 0xff, 0xff, 0xff,
        ],
        &[0x81, 0xa5, b'r', b'o', b'o', b'm', b's', 0xdc, 0xff, 0xff],
    ] {
        let data = base64(msgpack);
        let read = entry(&[("uid", "u"), ("nsp", "/"), ("type", "4"), ("data", &data)]);
        assert!(read.is_err(), "{msgpack:02x?}");
    }
    let deep = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
    assert!(entry(&[("uid", "u"), ("nsp", "/"), ("type", "4"), ("data", &deep)]).is_err());
}

#[test]
fn garbage_pubsub_payloads_are_errors() {
    let valid = encode_pubsub(&message(broadcast(vec![], Some("rq")))).expect("encodes");
    assert!(decode_pubsub(&valid).is_ok());
    assert!(matches!(
        decode_pubsub(&[]),
        Err(ProtocolError::EmptyPayload)
    ));
    for len in 1..valid.len() {
        assert!(decode_pubsub(&valid[..len]).is_err(), "truncated at {len}");
    }
    let json = br#"{"type":9,"data":{"packet":["x"]},"uid":"u","nsp":"/"}"#;
    assert!(decode_pubsub(json).is_err(), "pub/sub is msgpack only");
    for bytes in [
        &[0xdf, 0xff, 0xff, 0xff, 0xff][..],
        &[0x84, 0xa4, b't', b'y', b'p', b'e', 0x0e],
        &[0xc1],
        &[0x90],
    ] {
        assert!(decode_pubsub(bytes).is_err(), "{bytes:02x?}");
    }
}

#[test]
fn base64_padding_is_optional_on_read() {
    let fields =
        entry_fields(&message(broadcast(vec![Value::Binary(vec![1])], None))).expect("encodes");
    let unpadded: Vec<(&'static str, String)> = fields
        .iter()
        .map(|(k, v)| (*k, v.trim_end_matches('=').to_owned()))
        .collect();
    assert_eq!(
        read_back(&unpadded).expect("decodes"),
        read_back(&fields).expect("decodes")
    );
}

/// Found by mutating the golden payloads: a handshake's `issued` beyond 2^53 is written as a
/// float 64 (as `@msgpack/msgpack` writes that JS number), which must read back.
#[test]
fn a_fetched_handshake_with_a_huge_issued_date_reads_back() {
    let mut socket = crate::FetchedSocket::default();
    socket.handshake.issued = u64::MAX - 1;
    let sent = message(ShardedBody::FetchSocketsResponse(FetchResponse {
        request_id: "rq".into(),
        sockets: vec![socket],
    }));
    let bytes = encode_pubsub(&sent).expect("encodes");
    let read = decode_pubsub(&bytes).expect("decodes");
    let ShardedBody::FetchSocketsResponse(response) = &read.body else {
        panic!("not a fetch response");
    };
    assert_eq!(response.sockets[0].handshake.issued, u64::MAX);
    assert_eq!(encode_pubsub(&read).expect("encodes again"), bytes);
}

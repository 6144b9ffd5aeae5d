//! Hostile input: whatever arrives on a channel, decoding returns an error or a value, and never
//! panics, loops or blows the stack.

mod common;

use common::fixtures;
use sio_adapter_redis::ProtocolError;
use sio_adapter_redis::protocol::sharded::parse_sharded_channel;
use sio_adapter_redis::protocol::{
    BroadcastMessage, Channels, IncomingResponse, MessageType, Request, RequestType, Response,
    ShardedBody, ShardedChannels, ShardedMessage, msgpack, parse_channel,
};

/// Runs every decoder on `payload`; only panics matter here, results are dropped.
fn decode_everything(payload: &[u8]) {
    let _ = msgpack::decode(payload);
    let _ = BroadcastMessage::decode(payload);
    let _ = Request::decode(payload);
    let _ = ShardedMessage::decode(payload);
    if let Ok(incoming) = IncomingResponse::decode(payload) {
        for pending in [
            RequestType::Sockets,
            RequestType::AllRooms,
            RequestType::RemoteFetch,
            RequestType::ServerSideEmit,
            RequestType::Broadcast,
            RequestType::RemoteJoin,
        ] {
            let _ = incoming.clone().into_response(pending);
        }
    }
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for _ in 0..20_000 {
        let len = rng.below(96);
        let mut payload = rng.bytes(len);
        // Bias some payloads towards containers and the JSON path.
        match rng.below(4) {
            0 if !payload.is_empty() => payload[0] = 0x93,
            1 if !payload.is_empty() => payload[0] = b'{',
            _ => {}
        }
        decode_everything(&payload);
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0xfeed_beef_0bad_cafe);
    let fixtures = fixtures();
    for fixture in fixtures
        .cases
        .values()
        .chain(fixtures.sharded.cases.values())
    {
        let original = fixture.bytes();
        for _ in 0..300 {
            let mut payload = original.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(payload.len());
                payload[at] = rng.bytes(1)[0];
            }
            decode_everything(&payload);
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    for (name, fixture) in fixtures().cases {
        let bytes = fixture.bytes();
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            decode_everything(cut);
            if fixture.encoding == "msgpack" {
                assert!(msgpack::decode(cut).is_err(), "{name} cut at {len} decoded");
            } else {
                assert!(Request::decode(cut).is_err(), "{name} cut at {len} decoded");
                assert!(
                    IncomingResponse::decode(cut).is_err(),
                    "{name} cut at {len} decoded"
                );
            }
        }
    }
}

#[test]
fn every_truncation_of_a_sharded_message_is_an_error() {
    for (name, fixture) in fixtures().sharded.cases {
        let bytes = fixture.bytes();
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            decode_everything(cut);
            assert!(
                ShardedMessage::decode(cut).is_err(),
                "{name} cut at {len} decoded"
            );
        }
    }
}

#[test]
fn huge_declared_lengths_do_not_allocate_or_panic() {
    for payload in [
        &[0xdd, 0xff, 0xff, 0xff, 0xff][..],   // array of 4 billion items
        &[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0], // map of 4 billion entries
        &[0xc6, 0xff, 0xff, 0xff, 0xff, 0x00], // 4 GiB binary
        &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01], // 4 GiB extension
    ] {
        assert!(matches!(
            msgpack::decode(payload),
            Err(ProtocolError::Msgpack { .. })
        ));
    }
}

/// Runs `f` on a thread with a small stack: the depth limits, not luck, must stop recursion.
fn on_small_stack(kib: usize, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}

#[test]
fn deep_msgpack_nesting_is_refused_without_exhausting_the_stack() {
    on_small_stack(STACK_KIB, || {
        let deepest_allowed: Vec<u8> = vec![0x91; msgpack::MAX_DEPTH]
            .into_iter()
            .chain([0xc0])
            .collect();
        assert!(msgpack::decode(&deepest_allowed).is_ok());
        assert!(BroadcastMessage::decode(&deepest_allowed).is_err());
        let too_deep = vec![0x91; 100_000];
        assert!(matches!(
            msgpack::decode(&too_deep),
            Err(ProtocolError::Msgpack { .. })
        ));
    });
}

#[test]
fn deep_json_nesting_is_refused_without_exhausting_the_stack() {
    // serde_json stops at 128 levels, but its debug-build frames need more than 256 KiB for that.
    on_small_stack(4 * STACK_KIB, || {
        let json_deep = format!("{{\"type\":6,\"data\":{}}}", "[".repeat(100_000));
        assert!(Request::decode(json_deep.as_bytes()).is_err());
    });
}

const STACK_KIB: usize = 256;

#[test]
fn json_with_wrong_types_is_rejected() {
    let cases: &[(&str, &str)] = &[
        (r#"{}"#, "missing type"),
        (r#"{"type":"2","opts":{},"rooms":[]}"#, "type as string"),
        (r#"{"type":1.5,"requestId":"r"}"#, "fractional type"),
        (r#"{"type":-1}"#, "negative type"),
        (
            r#"{"type":2,"opts":{"rooms":"abc"},"rooms":[]}"#,
            "rooms as string",
        ),
        (r#"{"type":2,"opts":[],"rooms":[]}"#, "opts as array"),
        (r#"{"type":3,"opts":{},"rooms":[true]}"#, "room as bool"),
        (r#"{"type":4,"opts":{},"close":"yes"}"#, "close as string"),
        (
            r#"{"type":5,"requestId":7,"opts":{}}"#,
            "requestId as number",
        ),
        (r#"{"type":1}"#, "missing requestId"),
        (r#"{"type":6,"data":"x"}"#, "data as string"),
        (r#"{"type":6,"uid":["u"],"data":[]}"#, "uid as array"),
        (
            r#"{"type":7,"requestId":"r","packet":{"type":3,"data":[]}}"#,
            "ack packet",
        ),
        (
            r#"{"type":7,"requestId":"r","packet":{"type":2,"data":"x"}}"#,
            "data not array",
        ),
        (
            r#"{"type":7,"requestId":"r","packet":{"type":2,"data":[]},"opts":{"flags":{"volatile":1}}}"#,
            "flag as number",
        ),
        (
            r#"{"type":7,"requestId":"r","packet":{"type":2,"data":[]},"opts":{"flags":{"timeout":-5}}}"#,
            "negative timeout",
        ),
        (r#"{"type":2,"#, "truncated JSON"),
        (
            "[1,2,3]",
            "JSON array: not JSON by the first-byte rule, and not msgpack",
        ),
        ("", "empty"),
    ];
    for (payload, what) in cases {
        assert!(
            Request::decode(payload.as_bytes()).is_err(),
            "{what}: {payload}"
        );
    }
}

#[test]
fn responses_with_wrong_types_are_rejected() {
    let cases: &[(&str, RequestType)] = &[
        (r#"{"requestId":5,"rooms":[]}"#, RequestType::AllRooms),
        (r#"{"requestId":"r","rooms":{}}"#, RequestType::AllRooms),
        (r#"{"requestId":"r","sockets":[1.5]}"#, RequestType::Sockets),
        (
            r#"{"requestId":"r","sockets":["a"]}"#,
            RequestType::RemoteFetch,
        ),
        (
            r#"{"requestId":"r","sockets":[{"id":"a","handshake":{"issued":"x"}}]}"#,
            RequestType::RemoteFetch,
        ),
        (
            r#"{"type":8,"requestId":"r","clientCount":"1"}"#,
            RequestType::Broadcast,
        ),
        (r#"{"type":8,"requestId":"r"}"#, RequestType::Broadcast),
        (r#"{"requestId":"r"}"#, RequestType::RemoteDisconnect),
    ];
    for (payload, pending) in cases {
        assert!(
            Response::decode(payload.as_bytes(), *pending).is_err(),
            "{payload}"
        );
    }
}

#[test]
fn broadcasts_with_wrong_shapes_are_rejected() {
    use sio_adapter_redis::rmpv::Value;
    let packet = || {
        Value::Map(vec![
            (Value::from("type"), Value::from(2)),
            (Value::from("data"), Value::Array(vec![Value::from("ev")])),
        ])
    };
    let cases = [
        ("not an array", Value::from("hello")),
        ("empty array", Value::Array(vec![])),
        (
            "uid is a number",
            Value::Array(vec![Value::from(1), packet()]),
        ),
        ("no packet", Value::Array(vec![Value::from("u")])),
        (
            "packet is a string",
            Value::Array(vec![Value::from("u"), Value::from("p")]),
        ),
        (
            "packet type 0",
            Value::Array(vec![
                Value::from("u"),
                Value::Map(vec![
                    (Value::from("type"), Value::from(0)),
                    (Value::from("data"), Value::Array(vec![])),
                ]),
            ]),
        ),
        (
            "opts.except is a map",
            Value::Array(vec![
                Value::from("u"),
                packet(),
                Value::Map(vec![(Value::from("except"), Value::Map(vec![]))]),
            ]),
        ),
        (
            "nsp is a number",
            Value::Array(vec![
                Value::from("u"),
                Value::Map(vec![
                    (Value::from("type"), Value::from(2)),
                    (Value::from("data"), Value::Array(vec![])),
                    (Value::from("nsp"), Value::from(1)),
                ]),
            ]),
        ),
    ];
    for (what, message) in cases {
        let bytes = msgpack::encode(&message).expect("encodes");
        assert!(BroadcastMessage::decode(&bytes).is_err(), "{what}");
    }
    assert!(matches!(
        BroadcastMessage::decode(&[]),
        Err(ProtocolError::EmptyPayload)
    ));
}

#[test]
fn broadcasts_are_read_tolerantly() {
    use sio_adapter_redis::rmpv::Value;
    // [uid, {type: 5, data, ignored}, {flags: {unknown, timeout: 1.0e3}}]: no nsp, no rooms.
    let message = Value::Array(vec![
        Value::from("old"),
        Value::Map(vec![
            (Value::from("type"), Value::from(5)),
            (
                Value::from("data"),
                Value::Array(vec![Value::from("ev"), Value::Binary(vec![1])]),
            ),
            (Value::from("attachments"), Value::from(1)),
        ]),
        Value::Map(vec![
            (Value::from("rooms"), Value::Nil),
            (
                Value::from("flags"),
                Value::Map(vec![
                    (Value::from("expectSingleResponse"), Value::Boolean(true)),
                    (Value::from("timeout"), Value::F64(1000.0)),
                ]),
            ),
        ]),
    ]);
    let decoded =
        BroadcastMessage::decode(&msgpack::encode(&message).expect("encodes")).expect("tolerated");
    assert_eq!(decoded.packet.nsp, "/");
    assert_eq!(decoded.packet.event_name(), Some("ev"));
    assert!(decoded.opts.rooms.is_empty() && decoded.opts.except.is_empty());
    assert_eq!(decoded.opts.flags.timeout, Some(1000));
    // No opts at all.
    let bare = Value::Array(vec![
        Value::from("u"),
        message.as_array().expect("array")[1].clone(),
    ]);
    assert!(BroadcastMessage::decode(&msgpack::encode(&bare).expect("encodes")).is_ok());
}

#[test]
fn foreign_channels_are_errors() {
    let channels = Channels::with_default_prefix("/");
    for channel in [
        "",
        "#",
        "redis#/#",
        "socket.i#/#",
        "socket.ioo#/#",
        "Socket.IO#/#",
        "socket.io:/#",
    ] {
        assert!(
            matches!(
                channels.parse(channel),
                Err(ProtocolError::ForeignChannel { .. })
            ),
            "{channel:?}"
        );
        assert!(matches!(
            parse_channel("socket.io", channel),
            Err(ProtocolError::ForeignChannel { .. })
        ));
    }
    for channel in [
        "socket.io#/chat#",
        "socket.io-request#/chat#",
        "socket.io-response#/chat#x#",
    ] {
        assert!(
            matches!(
                channels.parse(channel),
                Err(ProtocolError::ForeignNamespace { .. })
            ),
            "{channel:?}"
        );
    }
    for channel in [
        "socket.io#",
        "socket.io#/",
        "socket.io-request#",
        "socket.io-response##",
    ] {
        assert!(
            matches!(
                parse_channel("socket.io", channel),
                Err(ProtocolError::MalformedChannel { .. })
            ),
            "{channel:?}"
        );
    }
    // Multi-byte characters around the cut points must not panic the slicing.
    for channel in [
        "socket.io#é#",
        "socket.io#/#é",
        "é",
        "socket.io-request#/é#",
        "socket.io-response#/#é",
    ] {
        let _ = channels.parse(channel);
        let _ = parse_channel("socket.io", channel);
    }
}

#[test]
fn sharded_messages_with_wrong_shapes_are_rejected() {
    let cases: &[(&str, &str)] = &[
        (r#"{}"#, "missing type"),
        (r#"{"type":0,"uid":"u","nsp":"/"}"#, "type 0"),
        (r#"{"type":14,"uid":"u","nsp":"/"}"#, "type 14"),
        (r#"{"type":"2","uid":"u","nsp":"/"}"#, "type as string"),
        (r#"{"type":2.5,"uid":"u","nsp":"/"}"#, "fractional type"),
        (r#"{"type":-2,"uid":"u","nsp":"/"}"#, "negative type"),
        (r#"{"type":2,"nsp":"/"}"#, "missing uid"),
        (r#"{"type":2,"uid":7,"nsp":"/"}"#, "uid as number"),
        (r#"{"type":2,"uid":"u"}"#, "missing nsp"),
        (r#"{"type":2,"uid":"u","nsp":null}"#, "nsp null"),
        (
            r#"{"type":3,"uid":"u","nsp":"/"}"#,
            "broadcast without data",
        ),
        (
            r#"{"type":3,"data":[],"uid":"u","nsp":"/"}"#,
            "data as array",
        ),
        (
            r#"{"type":3,"data":{"opts":{}},"uid":"u","nsp":"/"}"#,
            "broadcast without packet",
        ),
        (
            r#"{"type":3,"data":{"packet":{"type":2,"data":["e"]}},"uid":"u","nsp":"/"}"#,
            "broadcast without opts",
        ),
        (
            r#"{"type":3,"data":{"packet":{"type":3,"data":[]},"opts":{}},"uid":"u","nsp":"/"}"#,
            "ack packet",
        ),
        (
            r#"{"type":3,"data":{"packet":{"type":2,"data":"e"},"opts":{}},"uid":"u","nsp":"/"}"#,
            "packet data as string",
        ),
        (
            r#"{"type":3,"data":{"packet":{"type":2,"data":[]},"requestId":1,"opts":{}},"uid":"u","nsp":"/"}"#,
            "requestId as number",
        ),
        (
            r#"{"type":3,"data":{"packet":{"type":2,"data":[]},"opts":{"flags":{"timeout":"1"}}},"uid":"u","nsp":"/"}"#,
            "timeout as string",
        ),
        (
            r#"{"type":4,"data":{"rooms":["r"]},"uid":"u","nsp":"/"}"#,
            "join without opts",
        ),
        (
            r#"{"type":4,"data":{"opts":{"rooms":"r"},"rooms":[]},"uid":"u","nsp":"/"}"#,
            "opts.rooms as string",
        ),
        (
            r#"{"type":5,"data":{"opts":{},"rooms":[null]},"uid":"u","nsp":"/"}"#,
            "room null",
        ),
        (
            r#"{"type":6,"data":{"opts":{},"close":1},"uid":"u","nsp":"/"}"#,
            "close as number",
        ),
        (
            r#"{"type":7,"data":{"opts":{}},"uid":"u","nsp":"/"}"#,
            "fetch without requestId",
        ),
        (
            r#"{"type":8,"data":{"requestId":"r","sockets":{}},"uid":"u","nsp":"/"}"#,
            "sockets as map",
        ),
        (
            r#"{"type":8,"data":{"requestId":"r","sockets":[{"id":"s","handshake":{"issued":"x"}}]},"uid":"u","nsp":"/"}"#,
            "bad handshake",
        ),
        (
            r#"{"type":9,"data":{"packet":"ev"},"uid":"u","nsp":"/"}"#,
            "server-side emit packet as string",
        ),
        (
            r#"{"type":10,"data":{"packet":1},"uid":"u","nsp":"/"}"#,
            "response without requestId",
        ),
        (
            r#"{"type":11,"data":{"requestId":"r","clientCount":-1},"uid":"u","nsp":"/"}"#,
            "negative client count",
        ),
        (
            r#"{"type":11,"data":{"requestId":"r"},"uid":"u","nsp":"/"}"#,
            "missing client count",
        ),
        (r#"{"type":12,"data":{"#, "truncated JSON"),
        ("[1,2,3]", "JSON array"),
        ("", "empty"),
    ];
    for (payload, what) in cases {
        assert!(
            ShardedMessage::decode(payload.as_bytes()).is_err(),
            "{what}: {payload}"
        );
    }
    assert!(matches!(
        ShardedMessage::decode(br#"{"type":99,"uid":"u","nsp":"/"}"#),
        Err(ProtocolError::UnknownMessageType(99))
    ));
    assert!(matches!(
        ShardedMessage::decode(br#"{"type":4,"data":{"rooms":[]},"uid":"u","nsp":"/"}"#),
        Err(ProtocolError::MissingField("data.opts"))
    ));
}

#[test]
fn sharded_messages_are_read_tolerantly() {
    use sio_adapter_redis::rmpv::Value;
    // MessagePack where Node would have sent JSON, a float type, a packet with its own nsp and
    // extra fields, no rooms / except / flags, unknown keys everywhere.
    let message = Value::Map(vec![
        (Value::from("type"), Value::F64(3.0)),
        (
            Value::from("data"),
            Value::Map(vec![
                (
                    Value::from("packet"),
                    Value::Map(vec![
                        (Value::from("type"), Value::from(2)),
                        (Value::from("data"), Value::Array(vec![Value::from("ev")])),
                        (Value::from("nsp"), Value::from("/elsewhere")),
                        (Value::from("id"), Value::from(7)),
                    ]),
                ),
                (Value::from("opts"), Value::Map(vec![])),
                (Value::from("extra"), Value::Boolean(true)),
            ]),
        ),
        (Value::from("uid"), Value::from("u")),
        (Value::from("nsp"), Value::from("/chat")),
        (Value::from("offset"), Value::from("1-0")),
    ]);
    let decoded =
        ShardedMessage::decode(&msgpack::encode(&message).expect("encodes")).expect("tolerated");
    let ShardedBody::Broadcast(broadcast) = decoded.body else {
        panic!("not a broadcast");
    };
    assert_eq!(
        broadcast.packet.nsp, "/chat",
        "the message's namespace wins"
    );
    assert!(broadcast.opts.rooms.is_empty() && broadcast.request_id.is_none());

    // Heartbeats ignore any data; disconnect defaults `close` to false; null packets are values.
    let heartbeat = br#"{"type":2,"data":"whatever","uid":"u","nsp":"/"}"#;
    assert_eq!(
        ShardedMessage::decode(heartbeat)
            .expect("heartbeat")
            .message_type(),
        MessageType::Heartbeat
    );
    let disconnect = br#"{"type":6,"data":{"opts":{"except":null}},"uid":"u","nsp":"/"}"#;
    assert!(matches!(
        ShardedMessage::decode(disconnect).expect("disconnect").body,
        ShardedBody::DisconnectSockets(d) if !d.close
    ));
    let ack = br#"{"type":12,"data":{"requestId":"r","packet":null},"uid":"u","nsp":"/"}"#;
    assert!(matches!(
        ShardedMessage::decode(ack).expect("ack").body,
        ShardedBody::BroadcastAck(a) if a.packet == Some(Value::Nil)
    ));
}

#[test]
fn deep_sharded_messages_are_refused_without_exhausting_the_stack() {
    on_small_stack(STACK_KIB, || {
        let mut payload = vec![0x84, 0xa4];
        payload.extend_from_slice(b"type");
        payload.extend_from_slice(&[0x09, 0xa4]);
        payload.extend_from_slice(b"data");
        payload.extend(vec![0x91; 100_000]);
        assert!(ShardedMessage::decode(&payload).is_err());
    });
    on_small_stack(4 * STACK_KIB, || {
        let json = format!(
            "{{\"type\":9,\"data\":{{\"packet\":{}}},\"uid\":\"u\",\"nsp\":\"/\"}}",
            "[".repeat(100_000)
        );
        assert!(ShardedMessage::decode(json.as_bytes()).is_err());
    });
}

#[test]
fn foreign_and_malformed_sharded_channels_are_errors() {
    let channels = ShardedChannels::with_default_prefix("/");
    for channel in [
        "",
        "#",
        "redis#/#",
        "socket.i#/#",
        "socket.io-request#/#",
        "Socket.IO#/#",
    ] {
        assert!(
            matches!(
                channels.parse(channel, "me"),
                Err(ProtocolError::ForeignChannel { .. })
            ),
            "{channel:?}"
        );
        assert!(matches!(
            parse_sharded_channel("socket.io", channel, "me"),
            Err(ProtocolError::ForeignChannel { .. })
        ));
    }
    for channel in ["socket.io#/chat#", "socket.io#/chat#me#"] {
        assert!(
            matches!(
                channels.parse(channel, "me"),
                Err(ProtocolError::ForeignNamespace { .. })
            ),
            "{channel:?}"
        );
    }
    for channel in [
        "socket.io#",
        "socket.io#/",
        "socket.io##",
        "socket.io#/##",
        "socket.io#/#r",
    ] {
        assert!(
            matches!(
                parse_sharded_channel("socket.io", channel, "me"),
                Err(ProtocolError::MalformedChannel { .. })
            ),
            "{channel:?}"
        );
    }
    for channel in [
        "socket.io#é#",
        "socket.io#/#é",
        "é",
        "socket.io#/é#",
        "socket.io#/#é#",
    ] {
        let _ = channels.parse(channel, "é");
        let _ = parse_sharded_channel("socket.io", channel, "é");
    }
}

use rmpv::Value;

use super::*;
use crate::msgpack;
use crate::{
    BroadcastAckResponse, BroadcastClientCountResponse, BroadcastOptions, FetchResponse, Packet,
    ProtocolError,
};

/// Found by the `sharded_message` fuzz target: serde_json's default float parsing can
/// be one ULP off, so a number a Node peer sent (JavaScript parses and prints floats
/// exactly) reached clients changed, and decode∘encode was not stable. The
/// `float_roundtrip` feature makes parsing exact.
#[test]
fn json_floats_pass_through_exactly() {
    let json = br#"{"type":3,"data":{"packet":{"type":2,"data":["n",4294967290907199254740992,4.2949672909072e+24,-0.15]},"opts":{}},"uid":"u","nsp":"/"}"#;
    let message = ShardedMessage::decode(json).expect("decodes");
    let ShardedBody::Broadcast(broadcast) = &message.body else {
        panic!("not a broadcast");
    };
    assert_eq!(
        broadcast.packet.args(),
        [
            Value::F64(4_294_967_290_907_199_254_740_992.0),
            Value::F64(4.2949672909072e24),
            Value::F64(-0.15)
        ]
    );
    let bytes = message.encode().expect("encodes");
    let again = ShardedMessage::decode(&bytes).expect("decodes again");
    assert_eq!(again, message);
    assert_eq!(again.encode().expect("encodes again"), bytes);
}

#[test]
fn type_codes_match_socket_io_adapter() {
    for code in 1..=13 {
        let kind = MessageType::from_code(code).expect("known");
        assert_eq!(u64::from(kind.code()), code);
    }
    assert_eq!(MessageType::from_code(0), None);
    assert_eq!(MessageType::from_code(14), None);
    assert_eq!(MessageType::from_code(u64::MAX), None);
    assert_eq!(
        MessageType::ALL.iter().filter(|t| t.is_response()).count(),
        4
    );
    assert_eq!(
        MessageType::ALL
            .iter()
            .filter(|t| t.may_contain_binary())
            .count(),
        5
    );
}

#[test]
fn room_channel_only_for_one_room_without_ack() {
    let c = ShardedChannels::with_default_prefix("/");
    let opts = |rooms: &[&str]| BroadcastOptions::to_rooms(rooms.iter().copied());
    let dynamic = SubscriptionMode::Dynamic;
    assert_eq!(c.channel_for_broadcast(&opts(&[]), dynamic), "socket.io#/#");
    assert_eq!(
        c.channel_for_broadcast(&opts(&["a", "a"]), dynamic),
        "socket.io#/#a#"
    );
    assert_eq!(
        c.channel_for_broadcast(&opts(&["a", "b"]), dynamic),
        "socket.io#/#"
    );
    let sid = "A".repeat(SOCKET_ID_LEN);
    assert_eq!(
        c.channel_for_broadcast(&opts(&[&sid]), dynamic),
        "socket.io#/#"
    );
    assert_eq!(
        c.channel_for_broadcast(&opts(&[&sid]), SubscriptionMode::DynamicPrivate),
        format!("socket.io#/#{sid}#")
    );
    assert_eq!(
        c.channel_for_broadcast(&opts(&["a"]), SubscriptionMode::Static),
        "socket.io#/#"
    );
    let with_ack = ShardedBody::Broadcast(ShardedBroadcast {
        request_id: Some("r".into()),
        opts: opts(&["a"]),
        ..ShardedBroadcast::default()
    });
    assert_eq!(
        c.channel_for(&with_ack, dynamic).as_deref(),
        Some("socket.io#/#")
    );
    let response = ShardedBody::BroadcastClientCount(BroadcastClientCountResponse::default());
    assert_eq!(c.channel_for(&response, dynamic), None);
}

#[test]
fn socket_ids_are_measured_in_utf16() {
    assert!(looks_like_a_socket_id(&"😀".repeat(10)));
    assert!(!looks_like_a_socket_id(&"é".repeat(10)));
    assert!(looks_like_a_socket_id(&"é".repeat(20)));
}

#[test]
fn modes_by_name() {
    for mode in [
        SubscriptionMode::Static,
        SubscriptionMode::Dynamic,
        SubscriptionMode::DynamicPrivate,
    ] {
        assert_eq!(SubscriptionMode::from_name(mode.name()), Some(mode));
    }
    assert_eq!(SubscriptionMode::from_name("Dynamic"), None);
    assert_eq!(SubscriptionMode::default(), SubscriptionMode::Dynamic);
}

#[test]
fn parse_channels() {
    let c = ShardedChannels::with_default_prefix("/");
    assert_eq!(
        c.parse("socket.io#/#", "me").expect("main"),
        ShardedChannel::Main { nsp: "/" }
    );
    let response = c.parse("socket.io#/#me#", "me").expect("response");
    assert_eq!(
        response,
        ShardedChannel::Response {
            nsp: "/",
            uid: "me"
        }
    );
    assert!(response.carries_responses());
    assert_eq!(
        c.parse("socket.io#/#a#b#", "me").expect("room with #"),
        ShardedChannel::Room {
            nsp: "/",
            room: "a#b"
        }
    );
    assert!(matches!(
        c.parse("socket.io#/chat#", "me"),
        Err(ProtocolError::ForeignNamespace { .. })
    ));
    assert!(matches!(
        c.parse("other#/#", "me"),
        Err(ProtocolError::ForeignChannel { .. })
    ));
    assert!(matches!(
        c.parse("socket.io#/#room", "me"),
        Err(ProtocolError::MalformedChannel { .. })
    ));
    assert!(matches!(
        c.parse("socket.io#/##", "me"),
        Err(ProtocolError::MalformedChannel { .. })
    ));
    assert_eq!(
        parse_sharded_channel("myapp", "myapp#/chat#lobby#", "me").expect("room"),
        ShardedChannel::Room {
            nsp: "/chat",
            room: "lobby"
        }
    );
    assert_eq!(
        parse_sharded_channel("myapp", "myapp#/chat#", "me")
            .expect("main")
            .nsp(),
        "/chat"
    );
    assert!(matches!(
        parse_sharded_channel("socket.io", "socket.io##", "me"),
        Err(ProtocolError::MalformedChannel { .. })
    ));
    assert!(matches!(
        parse_sharded_channel("socket.io", "socket.io#/", "me"),
        Err(ProtocolError::MalformedChannel { .. })
    ));
    assert!(matches!(
        parse_sharded_channel("socket.io", "socket.io-request#/#", "me"),
        Err(ProtocolError::ForeignChannel { .. })
    ));
}

#[test]
fn every_body_round_trips() {
    let opts = BroadcastOptions {
        rooms: vec!["a".into()],
        except: vec!["b".into()],
        ..BroadcastOptions::default()
    };
    let bodies = [
        ShardedBody::InitialHeartbeat,
        ShardedBody::Heartbeat,
        ShardedBody::Broadcast(ShardedBroadcast {
            packet: Packet::event("/x", "ev", [Value::Binary(vec![1])]),
            request_id: Some("r".into()),
            opts: opts.clone(),
        }),
        ShardedBody::SocketsJoin(ShardedRoomsRequest {
            opts: opts.clone(),
            rooms: vec!["c".into(), "c".into()],
        }),
        ShardedBody::SocketsLeave(ShardedRoomsRequest::default()),
        ShardedBody::DisconnectSockets(ShardedDisconnectRequest {
            opts: opts.clone(),
            close: true,
        }),
        ShardedBody::FetchSockets(ShardedFetchRequest {
            opts,
            request_id: "r".into(),
        }),
        ShardedBody::FetchSocketsResponse(FetchResponse {
            request_id: "r".into(),
            sockets: vec![],
        }),
        ShardedBody::ServerSideEmit(ShardedServerSideEmit {
            request_id: None,
            packet: vec![Value::from("ev"), Value::from(1)],
        }),
        ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
            request_id: "r".into(),
            packet: Some(Value::Nil),
        }),
        ShardedBody::BroadcastClientCount(BroadcastClientCountResponse {
            request_id: "r".into(),
            client_count: 2,
        }),
        ShardedBody::BroadcastAck(BroadcastAckResponse {
            request_id: "r".into(),
            packet: None,
        }),
        ShardedBody::AdapterClose,
    ];
    for body in bodies {
        let message = ShardedMessage::new("u", "/x", body);
        let bytes = message.encode().expect("encodes");
        assert_eq!(
            bytes[0] == b'{',
            message.message_type() != MessageType::Broadcast,
            "{message:?}"
        );
        assert_eq!(ShardedMessage::decode(&bytes).expect("decodes"), message);
    }
}

#[test]
fn dates_are_iso_strings_in_json_and_timestamps_in_msgpack() {
    let date = Value::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec());
    let emit = |args: Vec<Value>| {
        ShardedMessage::new(
            "u",
            "/",
            ShardedBody::ServerSideEmit(ShardedServerSideEmit {
                request_id: None,
                packet: args,
            }),
        )
    };
    let json = emit(vec![Value::from("ev"), date.clone()])
        .encode()
        .expect("encodes");
    assert_eq!(
        String::from_utf8(json).expect("utf-8"),
        r#"{"type":9,"data":{"packet":["ev","2023-11-14T22:13:20.000Z"]},"uid":"u","nsp":"/"}"#
    );
    let binary = emit(vec![Value::from("ev"), date, Value::Binary(vec![])])
        .encode()
        .expect("encodes");
    assert_ne!(binary[0], b'{');
    assert!(
        binary.windows(2).any(|w| w == [0xd6, 0xff]),
        "fixext 4 timestamp"
    );
}

#[test]
fn too_deep_data_is_refused_on_both_paths() {
    let mut deep = Value::Nil;
    for _ in 0..msgpack::MAX_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    for extra in [Value::Nil, Value::Binary(vec![])] {
        let message = ShardedMessage::new(
            "u",
            "/",
            ShardedBody::ServerSideEmit(ShardedServerSideEmit {
                request_id: None,
                packet: vec![deep.clone(), extra],
            }),
        );
        assert!(matches!(message.encode(), Err(ProtocolError::Encode(_))));
    }
}

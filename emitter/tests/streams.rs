//! The emitter's requests in streams mode, on a real Redis (testcontainers), against a stand-in
//! for a `@socket.io/redis-streams-adapter` node: subscribed to the namespace's public channel
//! (so `PUBSUB NUMSUB` counts it), it answers `FETCH_SOCKETS` and `SERVER_SIDE_EMIT` on the
//! emitter's channel `socket.io#/#emitter#`, in the package's MessagePack (whose bytes
//! `adapter-redis/tests/golden_streams.rs` checks).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Value as RedisValue;
use serde_json::json;
use sio_emitter::Emitter;
use sio_protocol::streams::{decode_pubsub, encode_pubsub};
use sio_protocol::{
    AdapterMode, FetchResponse, FetchedSocket, ShardedBody, ShardedMessage,
    ShardedServerSideEmitResponse,
};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;

#[tokio::test]
async fn fetch_sockets_and_server_side_emit_with_ack_get_the_nodes_answers() {
    let redis = testcontainers::GenericImage::new("redis", "7.2")
        .with_exposed_port(6379.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .start()
        .await
        .unwrap();
    let url = format!(
        "redis://127.0.0.1:{}",
        redis.get_host_port_ipv4(6379.tcp()).await.unwrap()
    );
    let config = fred::types::config::Config::from_url(&url).unwrap();

    let emitter = Emitter::connect(&url)
        .await
        .unwrap()
        .with_mode(AdapterMode::Streams)
        .with_request_timeout(Duration::from_secs(5));
    // No node yet: nothing to wait for.
    assert!(emitter.of("/").fetch_sockets().await.unwrap().is_empty());

    // The stand-in node.
    let sub = fred::clients::SubscriberClient::new(config.clone(), None, None, None);
    sub.init().await.unwrap();
    let publisher = fred::clients::Client::new(config, None, None, None);
    publisher.init().await.unwrap();
    let mut rx = sub.message_rx();
    sub.subscribe("socket.io#/#").await.unwrap();
    // Counted by `PUBSUB NUMSUB` once Redis has processed the subscription.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let reply: Vec<RedisValue> = publisher.pubsub_numsub("socket.io#/#").await.unwrap();
            if reply.get(1).and_then(RedisValue::as_u64) == Some(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the node is subscribed");
    let node = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(message) = rx.recv().await {
            let request = decode_pubsub(message.value.as_bytes().unwrap()).unwrap();
            let body = match &request.body {
                ShardedBody::FetchSockets(r) => ShardedBody::FetchSocketsResponse(FetchResponse {
                    request_id: r.request_id.clone(),
                    sockets: vec![FetchedSocket {
                        id: "sockA".into(),
                        rooms: vec!["sockA".into(), "room1".into()],
                        data: json!({"user": "alice"}),
                        ..FetchedSocket::default()
                    }],
                }),
                ShardedBody::ServerSideEmit(r) => {
                    ShardedBody::ServerSideEmitResponse(ShardedServerSideEmitResponse {
                        request_id: r.request_id.clone().unwrap(),
                        packet: Some(r.packet[1].clone()),
                    })
                }
                other => panic!("unexpected {other:?}"),
            };
            let answer = ShardedMessage::new("node-a", "/", body);
            let channel = format!("socket.io#/#{}#", request.uid);
            let payload = RedisValue::Bytes(encode_pubsub(&answer).unwrap().into());
            let _: i64 = publisher.publish(channel, payload).await.unwrap();
            seen.push(request);
            if seen.len() == 2 {
                return seen;
            }
        }
        seen
    });

    let sockets = emitter
        .of("/")
        .within("room1")
        .fetch_sockets()
        .await
        .unwrap();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].id, "sockA");
    assert_eq!(sockets[0].data, json!({"user": "alice"}));
    let answers = emitter
        .of("/")
        .server_side_emit_with_ack("ping", vec![json!({"n": 1})])
        .await
        .unwrap();
    assert_eq!(answers, [json!({"n": 1})]);

    let seen = tokio::time::timeout(Duration::from_secs(5), node)
        .await
        .unwrap()
        .unwrap();
    assert!(seen.iter().all(|m| m.uid == "emitter" && m.nsp == "/"));
    let ShardedBody::FetchSockets(fetch) = &seen[0].body else {
        panic!("not a fetch");
    };
    assert_eq!(fetch.opts.rooms, ["room1"]);
}

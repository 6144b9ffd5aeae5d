//! Garbage and foreign-prefix messages on every Redis channel a node listens to (issue #8),
//! classic and sharded, and in streams mode on the stream every node reads and on the
//! streams pub/sub channels (issue #17): each bad message is counted in `sio_redis_malformed_total` on the
//! nodes that receive it, messages of another application (another prefix) never reach a
//! client, and real clients are served throughout (a `Witness` on the node taking the
//! garbage) and afterwards across nodes (`fanout`). Hostile sids, which the forwarding
//! layer turns into Redis lookups, get Node's 400 code 1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use fred::interfaces::PubsubInterface;
use serde_json::json;
use sio_adapter_redis::protocol::{
    BroadcastMessage, BroadcastOptions, EMITTER_UID, Layout, Packet,
};
use sio_adapter_redis::rmpv::Value;
use sio_cluster_tests::http::{SESSION_UNKNOWN, http_get};
use sio_cluster_tests::node::{NodeBuilder, TestNode, metric_sum, urls};
use sio_cluster_tests::redis::TestRedis;
use sio_cluster_tests::scenario::{assert_every_member_got, fanout};
use sio_cluster_tests::witness::Witness;

/// Payloads no peer would send: not MessagePack, not JSON, wrong shapes, truncated, empty.
const GARBAGE: [&[u8]; 7] = [
    b"\xc1\xff\x00garbage",
    b"{not json",
    b"{\"type\":99,\"uid\":\"x\"}",
    b"\x93\xa1x\x01\x02", // [uid, 1, 2]
    b"\x91",              // an array missing its item
    b"",
    b"\xdd\xff\xff\xff\xff", // an array announcing 4 billion items
];

/// A well-formed `@socket.io/redis-emitter` message emitting `tick` to `room`: a client
/// would receive it if a node delivered it.
fn valid_tick(room: &str) -> Vec<u8> {
    let packet = Packet::event("/", "tick", [Value::from(999_999)]);
    BroadcastMessage::new(EMITTER_UID, packet, BroadcastOptions::to_rooms([room]))
        .encode(Layout::Emitter)
        .unwrap()
}

async fn malformed(node: &TestNode) -> f64 {
    metric_sum(std::slice::from_ref(node), "sio_redis_malformed_total")
        .await
        .unwrap()
}

/// Waits (bounded) until each node's malformed counter reaches `expected`.
async fn wait_malformed(nodes: &[TestNode], expected: &[f64]) -> Vec<f64> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut got = Vec::new();
        for n in nodes {
            got.push(malformed(n).await);
        }
        if got.iter().zip(expected).all(|(g, e)| g >= e) || tokio::time::Instant::now() > deadline {
            // a little longer, so that a count above the expectation shows too
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let mut last = Vec::new();
            for n in nodes {
                last.push(malformed(n).await);
            }
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn fanout_after(nodes: &[TestNode]) {
    let f = fanout(&urls(nodes), "room-after", 20, json!({}))
        .await
        .unwrap();
    assert_every_member_got(&f, 20);
}

/// Classic mode. Node 1 hosts the witnesses (rooms `witness-0`, `witness-1`); node 0 has
/// no member in them.
#[tokio::test]
async fn garbage_and_foreign_messages_on_every_classic_channel() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--client-publish", "room-*,witness-*"])
        .cluster(2)
        .await
        .unwrap();
    let witness = Witness::start(&nodes[1].url()).await.unwrap();
    let client = redis.client().await.unwrap();
    let g = GARBAGE.len() as f64;

    // (channel, malformed counted on node 0, on node 1)
    let channels: [(&str, f64, f64); 8] = [
        ("socket.io#/#", g, g),
        ("socket.io#/#witness-0#", 0.0, g), // node 0 skips rooms it has no member in
        ("socket.io#/#nobody#", 0.0, 0.0),
        ("socket.io-request#/#", g, g),
        ("socket.io-response#/#", g, g),
        ("socket.io-response#/#another-node#", 0.0, 0.0), // answers for someone else
        ("socket.io#/not-served#", 0.0, 0.0),             // a namespace nobody serves
        ("other-app#/#", 0.0, 0.0),                       // not subscribed at all
    ];
    for (channel, _, _) in channels {
        for payload in GARBAGE {
            let _: i64 = client.publish(channel, payload.to_vec()).await.unwrap();
        }
    }
    // Another application's well-formed messages: never delivered to a client (the
    // witness would count an extra `tick`). An app whose prefix is `socket.io-request`
    // broadcasts on our request channel: not a request, so counted as malformed.
    for channel in [
        "other-app#/#",
        "other-app#/#witness-0#",
        "socket.io-request#/#",
        "socket.io-response#/#",
    ] {
        let _: i64 = client
            .publish(channel, valid_tick("witness-0"))
            .await
            .unwrap();
    }
    // The forwarding layer's sid lookups with hostile sids (Redis keys built from them):
    // Node's 400 code 1, from the node that has to look them up.
    let long = "x".repeat(4000);
    for sid in [
        long.as_str(),
        "%00%ff",
        "a*",
        "..%2F..%2Fx",
        "socket.io:node:node-0",
    ] {
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let got = http_get(nodes[0].addr(), &path).await.unwrap();
        assert_eq!(got, (400, SESSION_UNKNOWN.to_string()), "{sid}");
    }
    let expected: Vec<f64> = vec![
        channels.iter().map(|c| c.1).sum::<f64>() + 2.0,
        channels.iter().map(|c| c.2).sum::<f64>() + 2.0,
    ];
    let got = wait_malformed(&nodes, &expected).await;
    let f = witness.assert_unharmed(5).await;
    println!(
        "{}",
        json!({"malformed": got, "expected": expected, "witness": f})
    );
    assert_eq!(got, expected);
    fanout_after(&nodes).await;
}

/// Sharded mode (`SPUBLISH`): the main channel, a room channel, each node's own response
/// channel, and a foreign prefix.
#[tokio::test]
async fn garbage_and_foreign_messages_on_every_sharded_channel() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&[
            "--redis-mode",
            "sharded",
            "--client-publish",
            "room-*,witness-*",
        ])
        .cluster(2)
        .await
        .unwrap();
    let witness = Witness::start(&nodes[1].url()).await.unwrap();
    let client = redis.client().await.unwrap();
    let g = GARBAGE.len() as f64;

    // Each node's response channel `socket.io#/#<uid>#`. Room channels look the same
    // (`socket.io#/#<room>#`, sockets' own-id rooms included), so take the node uids from
    // the demo chat namespace, which has no rooms: `socket.io#/chat#<uid>#`.
    let listed = redis.cli(&["PUBSUB", "SHARDCHANNELS"]).await.unwrap();
    let response_channels: Vec<String> = listed
        .lines()
        .filter_map(|c| c.trim().strip_prefix("socket.io#/chat#"))
        .filter(|uid| !uid.is_empty())
        .map(|uid| format!("socket.io#/#{uid}"))
        .collect();
    assert_eq!(
        response_channels.len(),
        2,
        "{response_channels:?} in {listed}"
    );

    let mut channels: Vec<(&str, f64, f64)> = vec![
        ("socket.io#/#", g, g),
        ("socket.io#/#witness-0#", 0.0, g), // only node 1 subscribes to its rooms
        ("other-app#/#", 0.0, 0.0),
    ];
    for c in &response_channels {
        channels.push((c.as_str(), 0.0, 0.0)); // counted below: one of the two nodes each
    }
    for (channel, _, _) in &channels {
        for payload in GARBAGE {
            let _: i64 = client.spublish(*channel, payload.to_vec()).await.unwrap();
        }
    }
    // A well-formed classic (not sharded) broadcast on the sharded main channel: a foreign
    // dialect, counted; and a well-formed one on another prefix: never delivered.
    let _: i64 = client
        .spublish("socket.io#/#", valid_tick("witness-0"))
        .await
        .unwrap();
    let _: i64 = client
        .spublish("other-app#/#witness-0#", valid_tick("witness-0"))
        .await
        .unwrap();
    let own_response = g; // each node gets the garbage of its own response channel
    let expected: Vec<f64> = vec![
        channels.iter().map(|c| c.1).sum::<f64>() + own_response + 1.0,
        channels.iter().map(|c| c.2).sum::<f64>() + own_response + 1.0,
    ];
    let got = wait_malformed(&nodes, &expected).await;
    let f = witness.assert_unharmed(5).await;
    println!(
        "{}",
        json!({"malformed": got, "expected": expected, "witness": f})
    );
    assert_eq!(got, expected);
    fanout_after(&nodes).await;
}

/// An entry's fields, as a foreign writer would `XADD` them.
type Entry = Vec<(Vec<u8>, Vec<u8>)>;

fn entry(fields: &[(&[u8], &[u8])]) -> Entry {
    fields
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

async fn xadd(client: &fred::clients::Client, stream: &str, fields: Entry) {
    use fred::interfaces::StreamsInterface;
    use fred::types::{Key, Value as RedisValue};
    let fields: Vec<(Key, RedisValue)> = fields
        .into_iter()
        .map(|(k, v)| (Key::from(k.as_slice()), RedisValue::Bytes(v.into())))
        .collect();
    let _: RedisValue = client
        .xadd(stream, false, ("MAXLEN", "~", 10_000), "*", fields)
        .await
        .unwrap();
}

/// Streams mode. A foreign writer `XADD`s garbage to the stream every node reads (node 1
/// hosts the witnesses): each entry that claims a namespace but cannot be read is dropped
/// and counted by both nodes; entries with no namespace at all are skipped uncounted, as
/// Node's adapter skips them; other streams and a namespace nobody serves reach no client.
/// Garbage on the streams pub/sub channels (the namespace's and each node's own) is
/// counted by the nodes subscribed to it. The witnesses keep receiving everything, and
/// broadcasts still cross the nodes afterwards.
#[tokio::test]
async fn garbage_entries_and_messages_in_streams_mode() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&[
            "--redis-mode",
            "streams",
            "--client-publish",
            "room-*,witness-*",
        ])
        .cluster(2)
        .await
        .unwrap();
    let witness = Witness::start(&nodes[1].url()).await.unwrap();
    let client = redis.client().await.unwrap();

    let tick = br#"{"packet":{"type":2,"data":["tick",999999],"nsp":"/"},"opts":{"rooms":["witness-0"],"except":[],"flags":{}}}"#;
    let many_fields: Entry = (0..1000)
        .map(|i| (format!("f{i}").into_bytes(), vec![b'x'; 100]))
        .chain([(b"nsp".to_vec(), b"/".to_vec())])
        .collect();
    // dropped and counted by each node
    let counted: Vec<Entry> = vec![
        entry(&[(b"nsp", b"/"), (b"type", b"3"), (b"data", tick)]), // no uid
        entry(&[(b"uid", b"x"), (b"nsp", b"/"), (b"data", tick)]),  // no type
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"/"),
            (b"type", b"3"),
            (b"data", b"{not json"),
        ]),
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"/"),
            (b"type", b"3"),
            (b"data", b"%%not base64%%"),
        ]),
        // base64 of MessagePack announcing an array of 4 billion items
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"/"),
            (b"type", b"3"),
            (b"data", b"3f////8="),
        ]),
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"/"),
            (b"type", b"99999999999999999999999"),
        ]),
        entry(&[(b"uid", b"x"), (b"nsp", b"/"), (b"type", b"99")]),
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"/"),
            (b"type", b"3abc"),
            (b"data", tick),
        ]),
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"\xff\xfe/"),
            (b"type", b"3"),
            (b"data", tick),
        ]),
        entry(&[
            (b"uid", b"\xc1\x00"),
            (b"nsp", b"/"),
            (b"type", b"3"),
            (b"data", tick),
        ]),
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"/"),
            (b"type", b"3"),
            (b"data", b"\x00\xff\xc1\x91"),
        ]),
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b"/"),
            (b"type", b"3"),
            (b"data", br#"{"opts":5}"#),
        ]),
        many_fields,
    ];
    // skipped without a count: no namespace (Node skips these too)
    let uncounted: Vec<Entry> = vec![
        entry(&[(b"foo", b"bar")]),
        entry(&[(b"uid", b"x"), (b"type", b"3"), (b"data", tick)]),
        entry(&[
            (b"uid", b"x"),
            (b"nsp", b""),
            (b"type", b"3"),
            (b"data", tick),
        ]),
    ];
    let c = counted.len() as f64;
    for fields in counted.into_iter().chain(uncounted) {
        xadd(&client, "socket.io", fields).await;
    }
    // well-formed ticks a client would receive if they were delivered: on another
    // application's stream, and for a namespace no node serves
    let foreign = entry(&[
        (b"uid", b"x"),
        (b"nsp", b"/"),
        (b"type", b"3"),
        (b"data", tick),
    ]);
    xadd(&client, "other-app", foreign).await;
    let not_served = br#"{"packet":{"type":2,"data":["tick",999999],"nsp":"/not-served"},"opts":{"rooms":["witness-0"],"except":[],"flags":{}}}"#;
    let unserved = [
        (b"uid".as_slice(), b"x".as_slice()),
        (b"nsp", b"/not-served"),
        (b"type", b"3"),
        (b"data", not_served),
    ];
    xadd(&client, "socket.io", entry(&unserved)).await;

    // pub/sub: the namespace's channel, each node's own (`socket.io#/#<uid>#`: in streams
    // mode no room has a channel), one nobody subscribes to, another application's
    let listed = redis
        .cli(&["PUBSUB", "CHANNELS", "socket.io#/#?*#"])
        .await
        .unwrap();
    let own: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(own.len(), 2, "{listed}");
    let g = GARBAGE.len() as f64;
    let mut channels = vec!["socket.io#/#", "socket.io#/#nobody-0000#", "other-app#/#"];
    channels.extend(own.iter().copied());
    for channel in &channels {
        for payload in GARBAGE {
            let _: i64 = client.publish(*channel, payload.to_vec()).await.unwrap();
        }
    }
    // a classic-mode broadcast on the streams channel: a foreign dialect, counted
    let _: i64 = client
        .publish("socket.io#/#", valid_tick("witness-0"))
        .await
        .unwrap();

    // per node: the counted entries, the namespace channel's garbage, its own channel's,
    // the classic broadcast
    let each = c + g + g + 1.0;
    let expected = vec![each, each];
    let got = wait_malformed(&nodes, &expected).await;
    let f = witness.assert_unharmed(5).await;
    println!(
        "{}",
        json!({"malformed": got, "expected": expected, "witness": f})
    );
    assert_eq!(got, expected);
    fanout_after(&nodes).await;
}

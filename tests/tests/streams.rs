//! Streams mode in a mixed cluster (issue #17): Rust nodes with `SIO_REDIS_MODE=streams`
//! and a real Node.js node with `@socket.io/redis-streams-adapter` 0.3.1 on one Redis;
//! broadcasts at volume both ways, a Node broadcast with except and binary, the server
//! count both ways, the emitter (library and `sio-emit`) reaching clients on both kinds
//! of node, and readiness, which waits for the stream readers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sio_adapter_redis::{AdapterMode, RedisAdapterConfig};
use sio_cluster_tests::clients::{NodePeer, js_scenario};
use sio_cluster_tests::http::http_get;
use sio_cluster_tests::node::{NodeBuilder, wait_ready};
use sio_cluster_tests::redis::TestRedis;
use sio_cluster_tests::rust_peer::RustPeer;
use sio_cluster_tests::scenario::{assert_fanout, count, fanout, op, steps};

/// A `sio-server` node in streams mode on `redis`, clients may publish to `room-*`.
fn streams_node(redis: &TestRedis) -> NodeBuilder {
    NodeBuilder::new().redis(&redis.url).args(&[
        "--redis-mode",
        "streams",
        "--client-publish",
        "room-*",
    ])
}

async fn streams_peer(redis: &TestRedis) -> RustPeer {
    let config = RedisAdapterConfig::default().with_mode(AdapterMode::Streams);
    RustPeer::start_with(redis, config).await.unwrap()
}

/// Bursts of 300 room broadcasts, published on a Rust node then on the Node.js node, reach
/// every member (two Rust nodes, one Node.js node) once each and in order, and no
/// outsider: XADD order from either implementation is the order every reader delivers.
#[tokio::test]
async fn broadcasts_at_volume_flow_both_ways_between_rust_and_node_streams_nodes() {
    let redis = TestRedis::start().await.unwrap();
    let rust = streams_node(&redis).cluster(2).await.unwrap();
    let node = NodePeer::start_streams(&redis).await.unwrap();
    let (r0, r1, n) = (rust[0].url(), rust[1].url(), node.url.clone());
    for (i, urls) in [
        [r0.clone(), n.clone(), r1.clone()],
        [n.clone(), r0.clone(), r1.clone()],
    ]
    .into_iter()
    .enumerate()
    {
        let f = fanout(&urls, &format!("room-streams-{i}"), 300, json!({}))
            .await
            .unwrap();
        println!("publisher on {} (Node.js: {n}): {f}", urls[0]);
        assert_fanout(&f, 300);
    }
    // the entries really went through the stream (not pub/sub): 600 broadcasts, plus
    // the joins' nothing (a join is local), so at least 600 entries
    let len: u64 = redis
        .cli(&["XLEN", "socket.io"])
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(len >= 600, "XLEN socket.io = {len}");
    node.stop().await;
}

/// Node's `serverCount()` counts the Rust nodes, and a Rust node counts the Node.js node:
/// 3 seen from each kind (a RustPeer, a sio-server node, a Node.js node).
#[tokio::test]
async fn server_count_spans_rust_and_node_streams_nodes() {
    let redis = TestRedis::start().await.unwrap();
    let rust = streams_peer(&redis).await;
    let server = streams_node(&redis).start().await.unwrap();
    let node = NodePeer::start_streams(&redis).await.unwrap();
    let f = steps(json!([
        {"connect": "rc", "url": rust.url},
        {"connect": "nc", "url": node.url},
        {"op": {"kind": "serverCount"}, "via": "rc", "as": "countRust"},
        {"op": {"kind": "serverCount"}, "via": "nc", "as": "countNode"},
    ]))
    .await
    .unwrap();
    assert_eq!(f["countRust"], json!({"ok": true, "count": 3}), "{f}");
    assert_eq!(f["countNode"], json!({"ok": true, "count": 3}), "{f}");
    drop(server);
    node.stop().await;
}

/// The emitter in streams mode, as a library (`sio_emitter::Emitter` in the RustPeer,
/// through its `op`) and as `sio-emit --redis-mode streams`: reaches clients on a Rust
/// streams node and on a Node.js streams node with rooms, except and binary; makes them
/// join and leave rooms, disconnects them, and its server-side emit reaches both kinds of
/// node.
#[tokio::test]
async fn the_emitter_in_streams_mode_reaches_rust_and_node_streams_nodes() {
    let redis = TestRedis::start().await.unwrap();
    let server = streams_node(&redis).start().await.unwrap();
    let peer = streams_peer(&redis).await; // hosts the library emitter, via `op`
    let node = NodePeer::start_streams(&redis).await.unwrap();
    let (s, n) = (server.url(), node.url.clone());
    let em = |extra: Value| op("emitter", extra);
    let cli = [
        env!("CARGO_BIN_EXE_sio-test-emit"),
        "--redis",
        &redis.url,
        "--redis-mode",
        "streams",
        "--to",
        "news",
        "--except",
        "muted",
        "from-cli",
        "\"text\"",
        "{\"k\":[1,2.5,null]}",
    ];
    let f = steps(json!([
        {"connect": "s1", "url": s, "rooms": ["news"]},
        {"connect": "s2", "url": s, "rooms": ["news", "muted"]},
        {"connect": "n1", "url": n, "rooms": ["news"]},
        {"connect": "n2", "url": n, "rooms": ["news", "muted"]},
        {"connect": "out", "url": n},
        {"connect": "ctrl", "url": peer.url},
        {"connect": "ctrlN", "url": n},
        {"op": em(json!({"action": "emit", "rooms": ["news"], "except": ["muted"], "event": "e1", "args": ["x", {"$binary": "0a0b"}]})), "via": "ctrl", "as": "e1"},
        {"run": cli, "as": "cli"},
        {"op": em(json!({"action": "socketsJoin", "rooms": ["news"], "join": ["vip"]})), "via": "ctrl"},
        {"op": em(json!({"action": "emit", "rooms": ["vip"], "event": "e2", "args": []})), "via": "ctrl"},
        {"op": em(json!({"action": "socketsLeave", "rooms": ["vip"], "leave": ["vip"]})), "via": "ctrl"},
        {"op": em(json!({"action": "emit", "rooms": ["vip"], "event": "e3", "args": []})), "via": "ctrl"},
        {"op": em(json!({"action": "serverSideEmit", "event": "notice", "args": ["from-emitter"]})), "via": "ctrl"},
        {"waitEvent": {"client": "n1", "event": "e2"}},
        {"waitEvent": {"client": "s1", "event": "from-cli"}},
        {"op": em(json!({"action": "disconnectSockets", "rooms": ["muted"]})), "via": "ctrl"},
        {"waitDisconnect": "s2", "as": "s2Reason"},
        {"waitDisconnect": "n2", "as": "n2Reason"},
        {"sleep": 300},
        {"op": {"kind": "serverSideLog"}, "via": "ctrl", "as": "rustLog"},
        {"op": {"kind": "serverSideLog"}, "via": "ctrlN", "as": "nodeLog"},
        {"log": "s1", "as": "s1"},
        {"log": "s2", "as": "s2"},
        {"log": "n1", "as": "n1"},
        {"log": "n2", "as": "n2"},
        {"log": "out", "as": "out"},
    ]))
    .await
    .unwrap();
    assert_eq!(f["e1"], json!({"ok": true}), "{f}");
    assert_eq!(f["cli"]["code"], 0, "{f}");
    let e1 = json!(["e1", "x", {"$binary": "0a0b"}]);
    let from_cli = json!(["from-cli", "text", {"k": [1, 2.5, null]}]);
    // every event once, in the order sent (entries of one stream); the excepted and
    // the outsider get none of the room broadcasts
    for c in ["s1", "n1"] {
        assert_eq!(f[c], json!([e1, from_cli, ["e2"]]), "{c}: {f}");
    }
    for c in ["s2", "n2"] {
        assert_eq!(f[c], json!([["e2"]]), "{c}: {f}");
        assert_eq!(f[format!("{c}Reason")], "io server disconnect", "{f}");
    }
    assert_eq!(f["out"], json!([]), "{f}");
    assert_eq!(count(&f, "s1", "e3"), 0, "left vip: {f}");
    assert_eq!(
        f["rustLog"]["log"],
        json!([["notice", "from-emitter"]]),
        "{f}"
    );
    assert_eq!(
        f["nodeLog"]["log"],
        json!([["notice", "from-emitter"]]),
        "{f}"
    );
    node.stop().await;
}

/// A streams node is not ready while a stream reader cannot read (here the stream's key
/// holds a string, so reading its end fails with WRONGTYPE): `/readyz` answers 503 though
/// the pub/sub link is up, and 200 once the key is gone and the reader has started.
#[tokio::test]
async fn a_streams_node_is_not_ready_until_its_stream_reader_reads() {
    let redis = TestRedis::start().await.unwrap();
    redis
        .cli(&["SET", "socket.io", "not a stream"])
        .await
        .unwrap();
    let node = NodeBuilder::new()
        .redis(&redis.url)
        .env(&[("SIO_REDIS_MODE", "streams")])
        .spawn_process()
        .await
        .unwrap();
    // long enough for the pub/sub link and the liveness round trip (ready in ~100 ms)
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let (status, body) = http_get(node.addr(), "/readyz").await.unwrap();
        assert_eq!(status, 503, "ready with no stream reader: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warned = node
        .log()
        .wait_for("cannot read the stream's end", Duration::from_secs(1))
        .await;
    assert!(warned, "{}", node.log().text());
    redis.cli(&["DEL", "socket.io"]).await.unwrap();
    wait_ready(node.addr()).await.unwrap();
}

/// The Node.js streams node broadcasts to several rooms with an exception and binary
/// arguments (an entry whose data is base64 MessagePack): clients on two Rust streams
/// nodes in either room get it once with bytes and numbers intact; the excepted one and
/// the outsider get nothing.
#[tokio::test]
async fn node_streams_broadcast_with_rooms_except_and_binary_reaches_rust_clients() {
    let redis = TestRedis::start().await.unwrap();
    let rust = streams_node(&redis).cluster(2).await.unwrap();
    let node = NodePeer::start_streams(&redis).await.unwrap();
    let (r0, r1) = (rust[0].url(), rust[1].url());
    let args =
        json!(["text", {"$binary": "00ff10"}, {"nested": {"n": 1.5, "list": [1, "two", null]}}]);
    let f = js_scenario(json!({
        "scenario": "ops",
        "controller": node.url,
        "event": "from-node",
        "clients": [
            {"url": r0, "rooms": ["a", "b"]},
            {"url": r1, "rooms": ["b"]},
            {"url": r1, "rooms": ["a", "c"]},
            {"url": r0, "rooms": []},
        ],
        "op": {"kind": "emit", "rooms": ["a", "b"], "except": ["c"], "event": "from-node", "args": args},
    }))
    .await
    .unwrap();
    assert_eq!(f["reply"], json!({"ok": true}), "{f}");
    let got = &f["received"];
    assert_eq!(got[0], json!([args]), "in a and b: once");
    assert_eq!(got[1], json!([args]), "in b, on the other Rust node");
    assert_eq!(got[2], json!([]), "in c: excepted");
    assert_eq!(got[3], json!([]), "in no room");
    node.stop().await;
}

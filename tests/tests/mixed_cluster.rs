//! A mixed cluster: Rust nodes and a real Node.js node (socket.io 4.8.1 +
//! `@socket.io/redis-adapter` 8.3.0) on one Redis, with official clients on each.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::json;
use sio_cluster_tests::clients::{NodePeer, js_scenario};
use sio_cluster_tests::node::NodeBuilder;
use sio_cluster_tests::redis::TestRedis;
use sio_cluster_tests::scenario::{assert_fanout, fanout};

/// Room broadcasts flow both ways between Rust and Node.js nodes, once each and in
/// order: a publisher on a Rust node, then a publisher on the Node node.
#[tokio::test]
async fn broadcasts_flow_between_rust_and_node_nodes() {
    let redis = TestRedis::start().await.unwrap();
    let rust = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--client-publish", "room-*"])
        .cluster(2)
        .await
        .unwrap();
    let node = NodePeer::start(&redis).await.unwrap();

    let (r0, r1, n) = (rust[0].url(), rust[1].url(), node.url.clone());
    for urls in [
        [r0.clone(), n.clone(), r1.clone()],
        [n.clone(), r0.clone(), r1.clone()],
    ] {
        let f = fanout(&urls, "room-mixed", 200, json!({})).await.unwrap();
        assert_fanout(&f, 200);
    }
    node.stop().await;
}

/// The Node.js node broadcasts to several rooms with an exception and binary
/// arguments: Rust-side clients in both rooms get it once with bytes intact, the
/// excepted one and the outsider get nothing.
#[tokio::test]
async fn node_broadcast_with_rooms_except_and_binary_reaches_rust_clients() {
    let redis = TestRedis::start().await.unwrap();
    let rust = NodeBuilder::new()
        .redis(&redis.url)
        .cluster(2)
        .await
        .unwrap();
    let node = NodePeer::start(&redis).await.unwrap();
    let (r0, r1) = (rust[0].url(), rust[1].url());
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
        "op": {
            "kind": "emit",
            "rooms": ["a", "b"],
            "except": ["c"],
            "event": "from-node",
            "args": ["text", {"$binary": "00ff10"}, {"nested": {"n": 1.5, "list": [1, "two", null]}}],
        },
    }))
    .await
    .unwrap();
    assert_eq!(f["reply"], json!({"ok": true}), "{f}");
    let expected =
        json!([["text", {"$binary": "00ff10"}, {"nested": {"n": 1.5, "list": [1, "two", null]}}]]);
    let got = &f["received"];
    assert_eq!(got[0], expected, "in a and b: once");
    assert_eq!(got[1], expected, "in b, on the other Rust node");
    assert_eq!(got[2], json!([]), "in c: excepted");
    assert_eq!(got[3], json!([]), "in no room");
    node.stop().await;
}

/// Node's `serverCount()` counts the Rust nodes (they subscribe to the request channel).
#[tokio::test]
async fn node_counts_rust_nodes_as_servers() {
    let redis = TestRedis::start().await.unwrap();
    let _rust = NodeBuilder::new()
        .redis(&redis.url)
        .cluster(2)
        .await
        .unwrap();
    let node = NodePeer::start(&redis).await.unwrap();
    let f = js_scenario(json!({
        "scenario": "ops",
        "controller": node.url,
        "event": "none",
        "clients": [],
        "op": {"kind": "serverCount"},
    }))
    .await
    .unwrap();
    assert_eq!(f["reply"], json!({"ok": true, "count": 3}), "{f}");
    node.stop().await;
}

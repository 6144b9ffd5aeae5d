//! A mixed cluster: Rust nodes and a real Node.js node (socket.io 4.8.1 +
//! `@socket.io/redis-adapter` 8.3.0) on one Redis, with official clients on each.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::{Value, json};
use sio_cluster_tests::{NodePeer, TestRedis, js_scenario, start_cluster};

fn assert_fanout(f: &Value, n: u64) {
    assert_eq!(f["acked"], n, "{f}");
    for m in f["perMember"].as_array().unwrap() {
        assert_eq!(
            *m,
            json!({"count": n, "unique": n, "inOrder": true, "missing": []}),
            "{f}"
        );
    }
    assert_eq!(f["outsiderGot"], 0, "{f}");
}

/// Room broadcasts flow both ways between Rust and Node.js nodes, once each and in
/// order: a publisher on a Rust node, then a publisher on the Node node.
#[tokio::test]
async fn broadcasts_flow_between_rust_and_node_nodes() {
    let redis = TestRedis::start().await.unwrap();
    let rust = start_cluster(&redis, 2, &["--client-publish", "room-*"])
        .await
        .unwrap();
    let node = NodePeer::start(&redis).await.unwrap();

    for urls in [
        json!([rust[0].url(), node.url, rust[1].url()]),
        json!([node.url, rust[0].url(), rust[1].url()]),
    ] {
        let f = js_scenario(json!({
            "scenario": "fanout",
            "urls": urls,
            "room": "room-mixed",
            "messages": 200,
            "waitMs": 20000,
        }))
        .await
        .unwrap();
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
    let rust = start_cluster(&redis, 2, &[]).await.unwrap();
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
    let _rust = start_cluster(&redis, 2, &[]).await.unwrap();
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

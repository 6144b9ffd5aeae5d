//! The emitter in three directions: `sio-emitter` → Rust nodes, `sio-emitter` → a
//! Node.js node, and Node's `@socket.io/redis-emitter` → Rust nodes. Assertions are what
//! real clients received.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::{Value, json};
use sio_cluster_tests::clients::NodePeer;
use sio_cluster_tests::node::NodeBuilder;
use sio_cluster_tests::redis::TestRedis;
use sio_cluster_tests::rust_peer::RustPeer;
use sio_cluster_tests::scenario::{count, op, steps};

#[tokio::test]
async fn our_emitter_reaches_clients_on_every_rust_node() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--namespaces", "/,/admin"])
        .cluster(2)
        .await
        .unwrap();
    let peer = RustPeer::start(&redis).await.unwrap(); // hosts the emitter, via `op`
    let (n0, n1) = (nodes[0].url(), nodes[1].url());
    let em = |extra: Value| op("emitter", extra);
    let f = steps(json!([
        {"connect": "a1", "url": n0, "rooms": ["news"]},
        {"connect": "a2", "url": n1, "rooms": ["news", "muted"]},
        {"connect": "adm", "url": n1, "nsp": "/admin", "rooms": ["news"]},
        {"connect": "out", "url": n0},
        {"connect": "ctrl", "url": peer.url},
        {"op": em(json!({"action": "emit", "rooms": ["news"], "except": ["muted"], "event": "n1", "args": ["x", {"$binary": "0a0b"}]})), "via": "ctrl"},
        {"op": em(json!({"action": "emit", "nsp": "/admin", "rooms": ["news"], "event": "n2", "args": []})), "via": "ctrl"},
        {"op": em(json!({"action": "emit", "event": "n3", "args": [1]})), "via": "ctrl"},
        {"op": em(json!({"action": "socketsJoin", "rooms": ["news"], "join": ["vip"]})), "via": "ctrl"},
        {"sleep": 200},
        {"op": em(json!({"action": "emit", "rooms": ["vip"], "event": "n4", "args": []})), "via": "ctrl"},
        {"op": em(json!({"action": "socketsLeave", "rooms": ["vip"], "leave": ["vip"]})), "via": "ctrl"},
        {"sleep": 200},
        {"op": em(json!({"action": "emit", "rooms": ["vip"], "event": "n5", "args": []})), "via": "ctrl"},
        {"waitEvent": {"client": "a2", "event": "n4"}},
        {"op": em(json!({"action": "disconnectSockets", "rooms": ["muted"]})), "via": "ctrl"},
        {"waitDisconnect": "a2", "as": "a2Reason"},
        {"sleep": 200},
        {"log": "a1", "as": "a1"},
        {"log": "a2", "as": "a2"},
        {"log": "adm", "as": "adm"},
        {"log": "out", "as": "out"},
    ]))
    .await
    .unwrap();
    assert_eq!(f["a1"][0], json!(["n1", "x", {"$binary": "0a0b"}]), "{f}");
    assert_eq!(
        (
            count(&f, "a1", "n1"),
            count(&f, "a2", "n1"),
            count(&f, "adm", "n1"),
            count(&f, "out", "n1")
        ),
        (1, 0, 0, 0),
        "{f}"
    );
    assert_eq!(
        (count(&f, "adm", "n2"), count(&f, "a1", "n2")),
        (1, 0),
        "{f}"
    );
    assert_eq!(
        (
            count(&f, "a1", "n3"),
            count(&f, "a2", "n3"),
            count(&f, "out", "n3"),
            count(&f, "adm", "n3")
        ),
        (1, 1, 1, 0),
        "{f}"
    );
    assert_eq!(
        (
            count(&f, "a1", "n4"),
            count(&f, "a2", "n4"),
            count(&f, "out", "n4")
        ),
        (1, 1, 0),
        "{f}"
    );
    assert_eq!(
        (count(&f, "a1", "n5"), count(&f, "a2", "n5")),
        (0, 0),
        "{f}"
    );
    assert_eq!(f["a2Reason"], "io server disconnect", "{f}");
}

#[tokio::test]
async fn our_emitter_reaches_a_node_js_server_and_waits_for_answers() {
    let redis = TestRedis::start().await.unwrap();
    let peer = RustPeer::start(&redis).await.unwrap();
    let node = NodePeer::start(&redis).await.unwrap();
    let em = |extra: Value| op("emitter", extra);
    let f = steps(json!([
        {"connect": "nc", "url": node.url, "rooms": ["r"]},
        {"connect": "rc", "url": peer.url, "rooms": ["r"]},
        {"connect": "ctrl", "url": peer.url},
        {"id": "nc", "as": "ncId"},
        {"op": em(json!({"action": "emit", "rooms": ["r"], "event": "hello", "args": [{"$binary": "ff00"}, {"k": [1, 2]}]})), "via": "ctrl"},
        {"op": em(json!({"action": "socketsJoin", "rooms": ["r"], "join": ["joined"]})), "via": "ctrl"},
        {"sleep": 200},
        {"op": em(json!({"action": "fetchSockets", "rooms": ["joined"]})), "via": "ctrl", "as": "fetched"},
        {"op": em(json!({"action": "serverSideEmitWithAck", "event": "ping-servers", "args": ["e"]})), "via": "ctrl", "as": "ssewa"},
        {"waitEvent": {"client": "nc", "event": "hello"}},
        {"log": "nc", "as": "nc"},
        {"log": "rc", "as": "rc"},
    ]))
    .await
    .unwrap();
    assert_eq!(
        f["nc"][0],
        json!(["hello", {"$binary": "ff00"}, {"k": [1, 2]}]),
        "{f}"
    );
    assert_eq!(f["rc"][0], f["nc"][0], "{f}");
    // fetchSockets from the emitter: both nodes answered, the Node socket joined
    assert_eq!(f["fetched"]["count"], 2, "{f}");
    let node_socket = f["fetched"]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == f["ncId"])
        .cloned()
        .unwrap_or_else(|| panic!("{f}"));
    assert!(
        node_socket["rooms"]
            .as_array()
            .unwrap()
            .contains(&json!("joined")),
        "{f}"
    );
    // serverSideEmitWithAck from the emitter: one answer per node
    let mut replies: Vec<String> = f["ssewa"]["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["from"].as_str().unwrap().to_string())
        .collect();
    replies.sort();
    assert_eq!(replies, ["node", "rust"], "{f}");
    node.stop().await;
}

#[tokio::test]
async fn node_emitter_reaches_the_rust_cluster() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .cluster(2)
        .await
        .unwrap();
    let peer = RustPeer::start(&redis).await.unwrap();
    let node = NodePeer::start(&redis).await.unwrap(); // hosts Node's emitter, via `op`
    let (n0, n1) = (nodes[0].url(), nodes[1].url());
    let ne = |extra: Value| op("nodeEmitter", extra);
    let f = steps(json!([
        {"connect": "a", "url": n0, "rooms": ["room"]},
        {"connect": "b", "url": n1, "rooms": ["room", "quiet"]},
        {"connect": "c", "url": n1},
        {"connect": "ctrl", "url": node.url},
        {"connect": "ctrlR", "url": peer.url},
        {"op": ne(json!({"action": "emit", "rooms": ["room"], "except": ["quiet"], "event": "e1", "args": ["v", {"$binary": "beef"}]})), "via": "ctrl"},
        {"op": ne(json!({"action": "socketsJoin", "rooms": ["room"], "join": "extra"})), "via": "ctrl"},
        {"sleep": 200},
        {"op": ne(json!({"action": "emit", "rooms": ["extra"], "event": "e2", "args": []})), "via": "ctrl"},
        {"op": ne(json!({"action": "serverSideEmit", "event": "notice", "args": ["from-node-emitter"]})), "via": "ctrl"},
        {"waitEvent": {"client": "b", "event": "e2"}},
        {"op": ne(json!({"action": "disconnectSockets", "rooms": ["quiet"]})), "via": "ctrl"},
        {"waitDisconnect": "b", "as": "bReason"},
        {"op": {"kind": "serverSideLog"}, "via": "ctrlR", "as": "rustLog"},
        {"log": "a", "as": "a"},
        {"log": "b", "as": "b"},
        {"log": "c", "as": "c"},
    ]))
    .await
    .unwrap();
    assert_eq!(f["a"][0], json!(["e1", "v", {"$binary": "beef"}]), "{f}");
    assert_eq!(
        (
            count(&f, "a", "e1"),
            count(&f, "b", "e1"),
            count(&f, "c", "e1")
        ),
        (1, 0, 0),
        "{f}"
    );
    assert_eq!(
        (
            count(&f, "a", "e2"),
            count(&f, "b", "e2"),
            count(&f, "c", "e2")
        ),
        (1, 1, 0),
        "{f}"
    );
    assert_eq!(f["bReason"], "io server disconnect", "{f}");
    assert_eq!(
        f["rustLog"]["log"],
        json!([["notice", "from-node-emitter"]]),
        "{f}"
    );
    node.stop().await;
}

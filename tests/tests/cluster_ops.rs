//! Cluster operations across a mixed cluster: a Rust node built on the adapter library
//! (`RustPeer`), a real Node.js node (socket.io 4.8.1 + @socket.io/redis-adapter 8.3.0)
//! and a `sio-server` node, on one Redis. Every operation is asserted from the clients'
//! side or from the answers the other implementation gives.
//!
//! Each test runs twice: in classic mode (`…::classic`, Node's `@socket.io/redis-adapter`)
//! and in streams mode (`…::streams`, Node's `@socket.io/redis-streams-adapter` 0.3.1 and
//! Rust nodes with `SIO_REDIS_MODE=streams`), except the all-rooms request, which only
//! classic mode has.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::json;
use sio_adapter_redis::{AdapterMode, RedisAdapterConfig};
use sio_cluster_tests::clients::NodePeer;
use sio_cluster_tests::node::{NodeBuilder, TestNode};
use sio_cluster_tests::redis::TestRedis;
use sio_cluster_tests::rust_peer::RustPeer;
use sio_cluster_tests::scenario::{count, events, steps};

// Fields drop in order: the nodes go before their Redis.
struct Mixed {
    rust: RustPeer,
    node: NodePeer,
    server: TestNode,
    _redis: TestRedis,
}

/// How the cluster's messages travel through Redis.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Classic,
    Streams,
}

impl Mode {
    async fn rust_peer(self, redis: &TestRedis) -> RustPeer {
        let mode = match self {
            Mode::Classic => AdapterMode::Classic,
            Mode::Streams => AdapterMode::Streams,
        };
        RustPeer::start_with(redis, RedisAdapterConfig::default().with_mode(mode))
            .await
            .unwrap()
    }

    async fn node_peer(self, redis: &TestRedis) -> NodePeer {
        match self {
            Mode::Classic => NodePeer::start(redis).await,
            Mode::Streams => NodePeer::start_streams(redis).await,
        }
        .unwrap()
    }

    fn server(self, redis: &TestRedis) -> NodeBuilder {
        let mode = match self {
            Mode::Classic => "classic",
            Mode::Streams => "streams",
        };
        NodeBuilder::new()
            .redis(&redis.url)
            .args(&["--redis-mode", mode])
    }
}

/// Runs the test `$name(mode)` once per mode, as `$name::classic` and `$name::streams`.
macro_rules! in_each_mode {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn classic() {
                super::$name(super::Mode::Classic).await
            }
            #[tokio::test]
            async fn streams() {
                super::$name(super::Mode::Streams).await
            }
        }
    )*};
}

async fn mixed(mode: Mode) -> Mixed {
    let redis = TestRedis::start().await.unwrap();
    let rust = mode.rust_peer(&redis).await;
    let node = mode.node_peer(&redis).await;
    let server = mode.server(&redis).start().await.unwrap();
    Mixed {
        rust,
        node,
        server,
        _redis: redis,
    }
}

async fn fetch_sockets_sees_every_node_both_ways(mode: Mode) {
    let m = mixed(mode).await;
    let (r, n, s) = (&m.rust.url, &m.node.url, m.server.url());
    let f = steps(json!([
        {"connect": "rc", "url": r, "rooms": ["f"]},
        {"connect": "nc", "url": n, "rooms": ["f"]},
        {"connect": "sc", "url": s, "rooms": ["f"]},
        {"connect": "other", "url": s},
        {"connect": "ctrlR", "url": r},
        {"connect": "ctrlN", "url": n},
        {"id": "rc", "as": "rcId"},
        {"id": "sc", "as": "scId"},
        {"op": {"kind": "fetchSockets", "rooms": ["f"]}, "via": "ctrlN", "as": "fromNode"},
        {"op": {"kind": "fetchSockets", "rooms": ["f"]}, "via": "ctrlR", "as": "fromRust"},
        {"op": {"kind": "fetchSockets"}, "via": "ctrlR", "as": "allFromRust"},
    ]))
    .await
    .unwrap();
    assert_eq!(f["fromNode"]["count"], 3, "{f}");
    assert_eq!(f["fromRust"], json!({"ok": true, "count": 3}), "{f}");
    assert_eq!(f["allFromRust"]["count"], 6, "{f}");
    // Node sees the Rust sockets with their ids and rooms (own id room included)
    let sockets = f["fromNode"]["sockets"].as_array().unwrap();
    for id_key in ["rcId", "scId"] {
        let id = f[id_key].as_str().unwrap();
        let s = sockets
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {f}"));
        let rooms: Vec<&str> = s["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(rooms.contains(&"f") && rooms.contains(&id), "{rooms:?}");
    }
    // a sio-server socket comes with its handshake
    let sc = sockets.iter().find(|s| s["id"] == f["scId"]).unwrap();
    let hs = &sc["handshake"];
    assert!(
        hs["url"].as_str().unwrap().starts_with("/socket.io/?EIO=4"),
        "{hs}"
    );
    assert_eq!(hs["query"]["EIO"], "4", "{hs}");
    assert_eq!(hs["address"], "127.0.0.1", "{hs}");
    assert!(hs["headers"]["host"].is_string(), "{hs}");
    assert!(hs["issued"].as_u64().unwrap() > 1_700_000_000_000, "{hs}");
    assert_eq!(sc["data"], json!({}), "{sc}");
}

async fn remote_join_and_leave_both_ways(mode: Mode) {
    let m = mixed(mode).await;
    let (r, n, s) = (&m.rust.url, &m.node.url, m.server.url());
    let f = steps(json!([
        {"connect": "rc", "url": r, "rooms": ["a"]},
        {"connect": "nc", "url": n, "rooms": ["a", "b"]},
        {"connect": "sc", "url": s, "rooms": ["a"]},
        {"connect": "out", "url": s},
        {"connect": "ctrlR", "url": r},
        {"connect": "ctrlN", "url": n},
        // Node makes everyone in `a` join `by-node`; a Node broadcast there reaches all
        {"op": {"kind": "socketsJoin", "rooms": ["a"], "join": "by-node"}, "via": "ctrlN"},
        {"sleep": 200},
        {"op": {"kind": "emit", "rooms": ["by-node"], "event": "e1", "args": [1]}, "via": "ctrlN"},
        // Rust makes everyone in `a` join `by-rust`
        {"op": {"kind": "socketsJoin", "rooms": ["a"], "join": "by-rust"}, "via": "ctrlR"},
        {"sleep": 200},
        {"op": {"kind": "emit", "rooms": ["by-rust"], "event": "e2", "args": [2]}, "via": "ctrlN"},
        // Rust fetches the sockets in `b` (a Node socket: 20-char id) and joins each
        {"op": {"kind": "fetchAndJoin", "rooms": ["b"], "join": "fetched"}, "via": "ctrlR", "as": "fetched"},
        {"sleep": 200},
        {"op": {"kind": "emit", "rooms": ["fetched"], "event": "e3", "args": [3]}, "via": "ctrlR"},
        // Node makes everyone leave `by-rust`: the next broadcast there reaches nobody
        {"op": {"kind": "socketsLeave", "rooms": ["a"], "leave": "by-rust"}, "via": "ctrlN"},
        {"sleep": 200},
        {"op": {"kind": "emit", "rooms": ["by-rust"], "event": "e4", "args": [4]}, "via": "ctrlR"},
        {"waitEvent": {"client": "nc", "event": "e3"}},
        {"sleep": 300},
        {"log": "rc", "as": "rc"},
        {"log": "nc", "as": "nc"},
        {"log": "sc", "as": "sc"},
        {"log": "out", "as": "out"},
    ]))
    .await
    .unwrap();
    assert_eq!(f["fetched"], json!({"ok": true, "count": 1}), "{f}");
    for c in ["rc", "nc", "sc"] {
        assert_eq!(events(&f[c], "e1"), [json!(["e1", 1])], "{c}: {f}");
        assert_eq!(events(&f[c], "e2"), [json!(["e2", 2])], "{c}: {f}");
        assert!(events(&f[c], "e4").is_empty(), "{c} left by-rust: {f}");
    }
    assert_eq!(events(&f["nc"], "e3"), [json!(["e3", 3])], "{f}");
    assert!(events(&f["rc"], "e3").is_empty());
    assert_eq!(f["out"], json!([]), "{f}");
}

async fn remote_disconnect_both_ways(mode: Mode) {
    let m = mixed(mode).await;
    let (r, n, s) = (&m.rust.url, &m.node.url, m.server.url());
    let f = steps(json!([
        {"connect": "rc", "url": r, "rooms": ["d1"]},
        {"connect": "sc", "url": s, "rooms": ["d1"]},
        {"connect": "nc", "url": n, "rooms": ["d2"]},
        {"connect": "stay", "url": s, "rooms": ["d2-not"]},
        {"connect": "ctrlR", "url": r},
        {"connect": "ctrlN", "url": n},
        {"op": {"kind": "disconnectSockets", "rooms": ["d1"]}, "via": "ctrlN"},
        {"waitDisconnect": "rc", "as": "rcReason"},
        {"waitDisconnect": "sc", "as": "scReason"},
        {"op": {"kind": "disconnectSockets", "rooms": ["d2"]}, "via": "ctrlR"},
        {"waitDisconnect": "nc", "as": "ncReason"},
        {"op": {"kind": "fetchSockets"}, "via": "ctrlN", "as": "left"},
    ]))
    .await
    .unwrap();
    for c in ["rcReason", "scReason", "ncReason"] {
        assert_eq!(f[c], "io server disconnect", "{c}: {f}");
    }
    // the controllers and `stay` remain
    assert_eq!(f["left"]["count"], 3, "{f}");
}

async fn server_side_emit_with_and_without_ack_both_ways(mode: Mode) {
    let redis = TestRedis::start().await.unwrap();
    let rust = mode.rust_peer(&redis).await;
    let node = mode.node_peer(&redis).await;
    let f = steps(json!([
        {"connect": "ctrlR", "url": rust.url},
        {"connect": "ctrlN", "url": node.url},
        {"op": {"kind": "serverSideEmit", "event": "ping-servers", "args": ["r", 1], "withAck": true}, "via": "ctrlR", "as": "fromRust"},
        {"op": {"kind": "serverSideEmit", "event": "ping-servers", "args": ["n", 2], "withAck": true}, "via": "ctrlN", "as": "fromNode"},
        {"op": {"kind": "serverSideEmit", "event": "notice", "args": [{"k": "v"}]}, "via": "ctrlR"},
        {"op": {"kind": "serverSideEmit", "event": "notice", "args": [[1, 2]]}, "via": "ctrlN"},
        {"sleep": 300},
        {"op": {"kind": "serverSideLog"}, "via": "ctrlR", "as": "rustLog"},
        {"op": {"kind": "serverSideLog"}, "via": "ctrlN", "as": "nodeLog"},
    ]))
    .await
    .unwrap();
    assert_eq!(
        f["fromRust"],
        json!({"ok": true, "replies": [{"from": "node", "got": ["r", 1]}], "pending": 0}),
        "{f}"
    );
    assert_eq!(
        f["fromNode"],
        json!({"ok": true, "replies": [{"from": "rust", "got": ["n", 2]}]}),
        "{f}"
    );
    assert_eq!(
        f["nodeLog"]["log"],
        json!([["ping-servers", "r", 1], ["notice", {"k": "v"}]]),
        "{f}"
    );
    assert_eq!(
        f["rustLog"]["log"],
        json!([["ping-servers", "n", 2], ["notice", [1, 2]]]),
        "{f}"
    );
    node.stop().await;
}

/// A node that never answers (a sio-server node has no server-side handler) makes a
/// request with ack time out with a clear error, and the pending request is removed.
async fn unanswered_request_times_out_with_a_clear_error(mode: Mode) {
    let m = mixed(mode).await;
    let f = steps(json!([
        {"connect": "ctrlR", "url": m.rust.url},
        {"op": {"kind": "serverSideEmit", "event": "ping-servers", "args": [], "withAck": true, "timeout": 500}, "via": "ctrlR", "as": "reply"},
    ]))
    .await
    .unwrap();
    let error = f["reply"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("timed out after 500ms: 1 of 2 other nodes answered"),
        "{f}"
    );
    assert_eq!(m.rust.cluster.pending_requests(), 0);
}

#[tokio::test]
async fn rooms_and_server_count_span_the_cluster() {
    // streams mode has no all-rooms request (neither has Node's); its server count, both
    // ways, is in streams.rs
    let mode = Mode::Classic;
    let m = mixed(mode).await;
    let (r, n, s) = (&m.rust.url, &m.node.url, m.server.url());
    let f = steps(json!([
        {"connect": "rc", "url": r, "rooms": ["only-on-rust"]},
        {"connect": "nc", "url": n, "rooms": ["only-on-node"]},
        {"connect": "sc", "url": s, "rooms": ["only-on-server"]},
        {"op": {"kind": "rooms"}, "via": "rc", "as": "fromRust"},
        {"op": {"kind": "rooms"}, "via": "nc", "as": "fromNode"},
        {"op": {"kind": "serverCount"}, "via": "rc", "as": "countRust"},
        {"op": {"kind": "serverCount"}, "via": "nc", "as": "countNode"},
    ]))
    .await
    .unwrap();
    for key in ["fromRust", "fromNode"] {
        let rooms: Vec<&str> = f[key]["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        for want in ["only-on-rust", "only-on-node", "only-on-server"] {
            assert!(rooms.contains(&want), "{key} lacks {want}: {rooms:?}");
        }
    }
    assert_eq!(f["countRust"]["count"], 3, "{f}");
    assert_eq!(f["countNode"]["count"], 3, "{f}");
}

/// Node's `emitWithAck` to a room spanning nodes collects the acks of Rust-side clients
/// (BROADCAST / CLIENT_COUNT / ACK answered by the Rust adapter).
async fn node_broadcast_with_ack_collects_rust_clients_acks(mode: Mode) {
    let m = mixed(mode).await;
    let (r, n, s) = (&m.rust.url, &m.node.url, m.server.url());
    let f = steps(json!([
        {"connect": "rc", "url": r, "rooms": ["k"]},
        {"connect": "sc", "url": s, "rooms": ["k"]},
        {"connect": "nc", "url": n, "rooms": ["k"]},
        {"connect": "ctrlN", "url": n},
        {"op": {"kind": "emitWithAck", "rooms": ["k"], "event": "ask", "args": ["q"]}, "via": "ctrlN", "as": "acks"},
    ]))
    .await
    .unwrap();
    assert_eq!(f["acks"]["ok"], true, "{f}");
    let mut from: Vec<String> = f["acks"]["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["from"].as_str().unwrap().to_string())
        .collect();
    from.sort();
    assert_eq!(from, ["nc", "rc", "sc"], "{f}");
}

/// Broadcast flavours from a Rust node and from the Node.js node: several rooms (a
/// socket in both gets it once), binary, `local()`, `volatile`, `compress(false)`, and
/// the whole namespace.
async fn broadcast_flavours_reach_exactly_the_right_clients(mode: Mode) {
    let m = mixed(mode).await;
    let (r, n, s) = (&m.rust.url, &m.node.url, m.server.url());
    let f = steps(json!([
        {"connect": "r1", "url": r, "rooms": ["x", "y"]},
        {"connect": "r2", "url": r, "rooms": ["x"]},
        {"connect": "n1", "url": n, "rooms": ["x", "y"]},
        {"connect": "s1", "url": s, "rooms": ["y"]},
        {"connect": "ctrlR", "url": r},
        {"connect": "ctrlN", "url": n},
        {"op": {"kind": "emit", "rooms": ["x", "y"], "event": "multi", "args": [{"$binary": "0102"}, "t"]}, "via": "ctrlR"},
        {"op": {"kind": "emit", "rooms": ["x"], "local": true, "event": "loc", "args": []}, "via": "ctrlR"},
        // Node's socket.io discards a volatile packet while the websocket is still sending
        // the previous one (`transport.writable` is false): let `multi` leave n1's socket
        // first, or n1 misses `vol` now and then (seen in CI).
        {"sleep": 200},
        {"op": {"kind": "emit", "rooms": ["y"], "volatile": true, "event": "vol", "args": [1]}, "via": "ctrlR"},
        {"op": {"kind": "emit", "event": "all", "args": []}, "via": "ctrlR"},
        {"op": {"kind": "emit", "rooms": ["x", "y"], "compress": false, "event": "nmulti", "args": [{"$binary": "ff"}]}, "via": "ctrlN"},
        {"op": {"kind": "emit", "rooms": ["x"], "local": true, "event": "nloc", "args": []}, "via": "ctrlN"},
        {"waitEvent": {"client": "s1", "event": "nmulti"}},
        {"sleep": 300},
        {"log": "r1", "as": "r1"},
        {"log": "r2", "as": "r2"},
        {"log": "n1", "as": "n1"},
        {"log": "s1", "as": "s1"},
        {"log": "ctrlN", "as": "ctrlN"},
    ]))
    .await
    .unwrap();
    let count = |c: &str, e: &str| count(&f, c, e);
    // several rooms: once per socket, binary intact
    for c in ["r1", "r2", "n1", "s1"] {
        assert_eq!(
            events(&f[c], "multi"),
            [json!(["multi", {"$binary": "0102"}, "t"])],
            "{c}: {f}"
        );
        assert_eq!(
            events(&f[c], "nmulti"),
            [json!(["nmulti", {"$binary": "ff"}])],
            "{c}: {f}"
        );
    }
    // local: only the sending node's sockets
    assert_eq!(
        (count("r1", "loc"), count("r2", "loc"), count("n1", "loc")),
        (1, 1, 0),
        "{f}"
    );
    assert_eq!(
        (
            count("n1", "nloc"),
            count("r1", "nloc"),
            count("s1", "nloc")
        ),
        (1, 0, 0),
        "{f}"
    );
    // volatile: delivered when nothing is congested
    assert_eq!(
        (
            count("r1", "vol"),
            count("n1", "vol"),
            count("s1", "vol"),
            count("r2", "vol")
        ),
        (1, 1, 1, 0),
        "{f}"
    );
    // whole namespace, other nodes' controllers included
    for c in ["r1", "r2", "n1", "s1", "ctrlN"] {
        assert_eq!(count(c, "all"), 1, "{c}: {f}");
    }
}

/// A Rust node's broadcast with acks collects the acks of clients on every node (the
/// Node.js node answers with BROADCAST_CLIENT_COUNT and BROADCAST_ACK); a silent client
/// counts as one timeout; nothing stays pending.
async fn rust_broadcast_with_ack_collects_acks_from_every_node(mode: Mode) {
    let m = mixed(mode).await;
    let (r, n, s) = (&m.rust.url, &m.node.url, m.server.url());
    let f = steps(json!([
        {"connect": "rc", "url": r, "rooms": ["k2"]},
        {"connect": "nc", "url": n, "rooms": ["k2"]},
        {"connect": "sc", "url": s, "rooms": ["k2"]},
        {"connect": "ctrlR", "url": r},
        {"op": {"kind": "emitWithAck", "rooms": ["k2"], "event": "ask", "args": [1], "timeout": 3000}, "via": "ctrlR", "as": "all"},
        {"connect": "silent", "url": n, "rooms": ["k2"], "noAck": true},
        {"op": {"kind": "emitWithAck", "rooms": ["k2"], "event": "ask", "args": [2], "timeout": 700}, "via": "ctrlR", "as": "oneSilent"},
    ]))
    .await
    .unwrap();
    let from = |key: &str| {
        let mut v: Vec<String> = f[key]["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["from"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(from("all"), ["nc", "rc", "sc"], "{f}");
    assert_eq!(f["all"]["errors"], 0, "{f}");
    assert_eq!(from("oneSilent"), ["nc", "rc", "sc"], "{f}");
    assert_eq!(f["oneSilent"]["errors"], 1, "{f}");
    assert_eq!(f["oneSilent"]["pending"], 0, "{f}");
}

in_each_mode!(
    fetch_sockets_sees_every_node_both_ways,
    remote_join_and_leave_both_ways,
    remote_disconnect_both_ways,
    server_side_emit_with_and_without_ack_both_ways,
    unanswered_request_times_out_with_a_clear_error,
    node_broadcast_with_ack_collects_rust_clients_acks,
    broadcast_flavours_reach_exactly_the_right_clients,
    rust_broadcast_with_ack_collects_acks_from_every_node,
);

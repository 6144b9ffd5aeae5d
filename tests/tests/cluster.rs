//! Several nodes on one real Redis (testcontainers): broadcasts cross nodes, in order,
//! without loss; the chat history is shared.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::json;
use sio_cluster_tests::clients::{js_scenario, js_script};
use sio_cluster_tests::http::http_get;
use sio_cluster_tests::node::{NodeBuilder, urls, wait_ready};
use sio_cluster_tests::redis::TestRedis;
use sio_cluster_tests::scenario::{
    assert_browser_chat, assert_every_member_got, assert_fanout, fanout,
};

/// Three nodes, one member and one outsider per node: a burst of 300 publishes from a
/// client on node 0 reaches the members on every node, each exactly once and in send
/// order; outsiders get nothing.
#[tokio::test]
async fn room_broadcast_crosses_nodes_in_order_without_loss() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--client-publish", "room-*"])
        .cluster(3)
        .await
        .unwrap();
    for transports in [json!(["websocket"]), json!(["polling"])] {
        let extra = json!({"transports": transports});
        let f = fanout(&urls(&nodes), "room-x", 300, extra).await.unwrap();
        assert_fanout(&f, 300);
    }

    // the counters saw the traffic and no loss
    let (_, metrics) = http_get(nodes[0].addr(), "/metrics").await.unwrap();
    assert!(metrics.contains("sio_redis_ready 1"), "{metrics}");
    for lost in [
        "sio_redis_lagged_total 0",
        "sio_redis_publish_failed_total 0",
        "sio_redis_malformed_total 0",
        "sio_redis_local_delivery_failed_total 0",
    ] {
        assert!(metrics.contains(lost), "{lost}: {metrics}");
    }
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

/// The demo chat in a real browser across nodes: tab A on node 0, tab B on node 1, a
/// late tab on node 2 sees the history kept in Redis.
#[tokio::test]
async fn chat_page_across_nodes_with_shared_history() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .cluster(3)
        .await
        .unwrap();
    let f = js_script("browser-chat.mjs", json!({"urls": urls(&nodes)}))
        .await
        .unwrap();
    // the late tab is on another node: its history comes from Redis
    assert_browser_chat(&f);
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

/// `/readyz` reflects Redis: ready with it, not ready once it is gone.
#[tokio::test]
async fn readiness_follows_redis() {
    let redis = TestRedis::start().await.unwrap();
    let node = NodeBuilder::new().redis(&redis.url).start().await.unwrap();
    let addr = node.addr();
    assert_eq!(http_get(addr, "/readyz").await.unwrap().0, 200);
    redis.container().stop().await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, body) = http_get(addr, "/readyz").await.unwrap();
        if status == 503 {
            assert!(body.contains("redis unavailable"), "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still ready without Redis"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // the process keeps serving HTTP meanwhile
    assert_eq!(http_get(addr, "/healthz").await.unwrap().0, 200);
}

/// Redis drops every client connection (as on a Redis restart or failover): the nodes
/// reconnect, resubscribe, become ready again, and broadcasts cross nodes again.
#[tokio::test]
async fn nodes_reconnect_and_resubscribe_after_redis_drops_them() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--client-publish", "room-*"])
        .cluster(2)
        .await
        .unwrap();
    let urls = urls(&nodes);
    let fanout = || fanout(&urls, "room-r", 50, json!({}));
    assert_eq!(fanout().await.unwrap()["perMember"][1]["count"], 50);

    for kind in ["pubsub", "normal"] {
        let killed = redis.cli(&["CLIENT", "KILL", "TYPE", kind]).await.unwrap();
        assert!(
            killed.trim().parse::<u32>().unwrap_or(0) >= 2,
            "{kind}: {killed}"
        );
    }
    for node in &nodes {
        wait_ready(node.addr()).await.unwrap();
    }
    let f = fanout().await.unwrap();
    assert_every_member_got(&f, 50);
}

/// Garbage, wrong shapes and foreign prefixes on every channel are logged, counted and
/// dropped; the nodes keep delivering.
#[tokio::test]
async fn malformed_messages_on_the_channels_are_dropped() {
    use fred::interfaces::PubsubInterface;
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--client-publish", "room-*"])
        .cluster(2)
        .await
        .unwrap();
    let client = redis.client().await.unwrap();
    let garbage: [&[u8]; 6] = [
        b"\xc1\xff\x00garbage",
        b"{not json",
        b"{\"type\":99,\"uid\":\"x\"}",
        b"\x93\xa1x\x01\x02", // [uid, 1, 2]: wrong shapes
        b"\x91",              // truncated array
        b"",
    ];
    let mut sent = 0;
    for channel in [
        "socket.io#/#",
        "socket.io#/#room-g#",
        "socket.io-request#/#",
        "socket.io-response#/#",
        "other-app#/#",
    ] {
        for g in garbage {
            let _: i64 = client.publish(channel, g.to_vec()).await.unwrap();
            sent += 1;
        }
    }
    assert_eq!(sent, 30);

    let f = fanout(&urls(&nodes), "room-g", 20, json!({}))
        .await
        .unwrap();
    assert_every_member_got(&f, 20);
    let (_, metrics) = http_get(nodes[1].addr(), "/metrics").await.unwrap();
    let malformed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sio_redis_malformed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    // the namespace channel and request channel garbage (the room channel is skipped
    // before decoding on a node without members; responses match no request)
    assert!(malformed >= 10, "{malformed}");
}

/// A password and a database number in the URL are honoured; a wrong password stops
/// the node at start with a clear error instead of retrying.
#[tokio::test]
async fn redis_url_with_password_and_db() {
    let redis = TestRedis::start_with(&["--requirepass", "s3cret"])
        .await
        .unwrap();
    let port = redis.port();
    let good = format!("redis://:s3cret@127.0.0.1:{port}/3");
    let nodes = NodeBuilder::new()
        .redis(&good)
        .args(&["--client-publish", "room-*"])
        .cluster(2)
        .await
        .unwrap();
    let f = fanout(&urls(&nodes), "room-p", 20, json!({}))
        .await
        .unwrap();
    assert_eq!(f["perMember"][1]["count"], 20, "{f}");
    // the chat history went to db 3
    js_scenario(json!({"scenario": "chat", "url": nodes[0].url()}))
        .await
        .unwrap();
    let len = redis
        .cli(&[
            "-a",
            "s3cret",
            "--no-auth-warning",
            "-n",
            "3",
            "LLEN",
            "socket.io:chat-history",
        ])
        .await
        .unwrap();
    assert_eq!(len.trim(), "3");

    let bad = format!("redis://:wrong@127.0.0.1:{port}/3");
    let started = std::time::Instant::now();
    let err = NodeBuilder::new()
        .redis(&bad)
        .cluster(1)
        .await
        .err()
        .expect("wrong password refused");
    assert!(
        format!("{err:#}").contains("cannot start cluster mode"),
        "{err:#}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "no retry loop on a wrong password"
    );
}

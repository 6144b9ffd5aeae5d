//! Any node accepts any session: three nodes behind a real nginx with plain round robin
//! (no stickiness), official clients over polling and polling→websocket.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::net::SocketAddr;

use futures_util::SinkExt;
use serde_json::json;
use sio_cluster_tests::clients::{js_scenario, read_line, spawn_js};
use sio_cluster_tests::http::{
    SESSION_UNKNOWN, Ws, http_request, metric_at, polling_sid, publish_large_messages, ws_join,
    ws_next_text,
};
use sio_cluster_tests::nginx::{Balance, Nginx};
use sio_cluster_tests::node::{NodeBuilder, metric_sum};
use sio_cluster_tests::redis::TestRedis;
use sio_cluster_tests::scenario::assert_quiet_clients_unharmed;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What a crowd run left: the scenario's facts, the requests forwarded (all, and
/// websocket upgrades) and, to explain a failure, the nodes' forwarding counters.
struct Crowd {
    facts: serde_json::Value,
    forwarded: f64,
    forwarded_ws: f64,
    figures: String,
}

async fn crowd_through(balance: Balance) -> Crowd {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--client-publish", "room-*"])
        .cluster(3)
        .await
        .unwrap();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    let nginx = Nginx::start(&addrs, balance).await.unwrap();
    let facts = js_scenario(json!({
        "scenario": "crowd", "url": nginx.url, "polling": 200, "upgrading": 200,
        "roomSize": 20, "messages": 3, "waitMs": 30000,
    }))
    .await
    .unwrap();
    let forwarded = metric_sum(&nodes, "sio_forwarded_total").await.unwrap();
    let forwarded_ws = metric_sum(&nodes, r#"sio_forwarded_total{transport="websocket"}"#)
        .await
        .unwrap();
    let mut figures = String::new();
    for name in [
        r#"sio_forwarded_total{transport="polling"}"#,
        r#"sio_forwarded_total{transport="websocket"}"#,
        r#"sio_forward_refused_total{transport="polling"}"#,
        r#"sio_forward_refused_total{transport="websocket"}"#,
        "sio_forward_errors_total",
        r#"sio_session_lookups_total{source="redis"}"#,
        r#"sio_handshakes_total{transport="polling"}"#,
    ] {
        let mut per_node = Vec::new();
        for node in &nodes {
            per_node.push(metric_at(node.addr(), name).await.unwrap_or(f64::NAN));
        }
        figures.push_str(&format!("\n  {name} per node: {per_node:?}"));
    }
    Crowd {
        facts,
        forwarded,
        forwarded_ws,
        figures,
    }
}

/// Three nodes behind plain round robin: about two thirds of every client's requests
/// land on a node that does not own its session. Every check prints the scenario's
/// facts (transports at the end; upgrades and upgradeErrors, as a failed upgrade probe
/// leaves a client on polling without any other sign; errors) and the nodes' counters.
#[tokio::test]
async fn round_robin_without_stickiness_loses_nobody() {
    let Crowd {
        facts: f,
        forwarded,
        forwarded_ws,
        figures,
    } = crowd_through(Balance::RoundRobin).await;
    let why = format!("\n  scenario: {f}{figures}");
    assert_eq!(f["connectErrors"], 0, "{why}");
    assert_eq!(f["disconnects"], json!([]), "{why}");
    assert_eq!(f["delivered"], f["expected"], "{why}");
    assert_eq!(f["upgradeErrors"], 0, "{why}");
    assert_eq!(f["upgrades"], 200, "{why}");
    assert_eq!(f["transports"]["polling"], 200, "{why}");
    assert_eq!(f["transports"]["websocket"], 200, "{why}");
    assert!(forwarded > 0.0, "the forwarding path was exercised{why}");
    // each of the 200 upgrades lands on its session's owner about 1 time in 3
    assert!(
        forwarded_ws > 0.0,
        "websocket upgrades were forwarded: {forwarded_ws}{why}"
    );
}

#[tokio::test]
async fn ip_hash_stickiness_works_too() {
    let f = crowd_through(Balance::IpHash).await.facts;
    assert_eq!(f["connectErrors"], 0, "{f}");
    assert_eq!(f["disconnects"], json!([]), "{f}");
    assert_eq!(f["delivered"], f["expected"], "{f}");
}

/// A session opened and connected over polling on `owner`, then upgraded to websocket
/// through `other`, which forwards the upgrade and pipes the bytes.
async fn upgraded_through(owner: SocketAddr, other: SocketAddr) -> Ws {
    let sid = polling_sid(owner, &[]).await.unwrap();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, body) = http_request(owner, "POST", &path, b"40").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http_request(owner, "GET", &path, b"").await.unwrap();
    assert!(status == 200 && body.contains("40{"), "{status} {body}");
    let config = WebSocketConfig::default().write_buffer_size(0);
    let url = format!("ws://{other}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .expect("forwarded upgrade");
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(ws_next_text(&mut ws).await.as_deref(), Some("3probe"));
    ws.send(Message::text("5")).await.unwrap();
    ws
}

/// Large messages cross a forwarded websocket whole, in both directions: the forwarding
/// node's pipe reads them through buffers far smaller than the messages.
#[tokio::test]
async fn forwarded_websocket_carries_large_messages_both_ways() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--client-publish", "big"])
        .cluster(2)
        .await
        .unwrap();
    let (owner, other) = (nodes[0].addr(), nodes[1].addr());
    let mut receiver = upgraded_through(owner, other).await;
    ws_join(&mut receiver, "big").await;
    let mut sender = upgraded_through(owner, other).await;
    let sizes = [990_000, 300_001, 1, 65_537, 2_047, 2_049];
    publish_large_messages(&mut sender, &mut receiver, "big", &sizes).await;
    let forwarded = metric_at(other, r#"sio_forwarded_total{transport="websocket"}"#)
        .await
        .unwrap();
    assert_eq!(forwarded, 2.0, "both upgrades went through the other node");
}

/// An unknown sid gets Node's 400 at once, for polling and for a websocket upgrade
/// (before any 101), on a node that owns nothing.
#[tokio::test]
async fn unknown_sid_is_refused_before_any_upgrade() {
    let redis = TestRedis::start().await.unwrap();
    let node = NodeBuilder::new().redis(&redis.url).start().await.unwrap();
    let addr = node.addr();
    let (status, body) = http_request(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=nosuchsid0000000",
        b"",
    )
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (400, SESSION_UNKNOWN));

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket&sid=nosuchsid0000000 HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(head.contains(SESSION_UNKNOWN), "{head}");
    // both refusals counted, by transport: a refused upgrade leaves a client on polling
    for transport in ["polling", "websocket"] {
        let name = format!(r#"sio_forward_refused_total{{transport="{transport}"}}"#);
        assert_eq!(metric_at(addr, &name).await.unwrap(), 1.0, "{name}");
    }
}

/// SIGKILL one of three nodes under nginx round robin: websocket clients of the dead
/// node reconnect through nginx to the survivors within the reconnection delay and the
/// others are undisturbed; polling clients of the dead node (and at most a few whose
/// request was in flight through it) reconnect likewise; every client is reachable
/// afterwards, and the dead node's sessions are answered "unknown" at once instead of
/// being forwarded into the void.
#[tokio::test]
async fn a_killed_node_s_clients_move_to_the_survivors() {
    use tokio::io::BufReader;
    let redis = TestRedis::start().await.unwrap();
    let mut nodes = NodeBuilder::new()
        .redis(&redis.url)
        .id("proc")
        .env(&[("SIO_CLIENT_PUBLISH", "room-*")])
        .process_cluster(3)
        .await
        .unwrap();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    let nginx = Nginx::start(&addrs, Balance::RoundRobin).await.unwrap();

    // a polling session owned by the node about to die
    let victim_sid = polling_sid(addrs[2], &[]).await.unwrap();

    let mut child = spawn_js(&json!({
        "scenario": "failover", "url": nginx.url, "websocket": 60, "polling": 30, "observeMs": 5000, "waitMs": 15000,
    }))
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let ready = read_line(&mut out).await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");

    nodes[2].kill();
    let started = std::time::Instant::now();
    let (status, body) = http_request(
        addrs[0],
        "GET",
        &format!("/socket.io/?EIO=4&transport=polling&sid={victim_sid}"),
        b"",
    )
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (400, SESSION_UNKNOWN));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "answered at once"
    );

    let f = read_line(&mut out).await.unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{f}");
    let ws = &f["websocket"];
    let disturbed = ws["disturbed"].as_u64().unwrap();
    // round robin spread the 60 sessions: about a third lived on the killed node
    assert!((5..=35).contains(&disturbed), "{f}");
    for ms in ws["reconnectedMs"].as_array().unwrap() {
        assert!(
            ms.as_u64().unwrap() < 3000,
            "reconnected within the delay: {f}"
        );
    }
    assert_eq!(
        ws["reconnectedMs"].as_array().unwrap().len() as u64,
        disturbed,
        "{f}"
    );
    // polling clients: those of the dead node, plus at most a few whose request was in
    // flight through it, reconnect; all within the reconnection delay
    let polling = &f["polling"];
    let disturbed = polling["disturbed"].as_u64().unwrap();
    assert!((3..=18).contains(&disturbed), "{f}");
    assert_eq!(
        polling["reconnectedMs"].as_array().unwrap().len() as u64,
        disturbed,
        "{f}"
    );
    for ms in polling["reconnectedMs"].as_array().unwrap() {
        assert!(ms.as_u64().unwrap() < 3000, "{f}");
    }
    assert_eq!(
        f["checkReceived"], 90,
        "every client reachable afterwards: {f}"
    );
}

/// Session entries expire unless their owner refreshes them: a node that dies without
/// deleting its entries leaves them for at most `SESSION_TTL`, and a live owner keeps
/// its sessions' entries alive.
#[tokio::test]
async fn session_entries_expire_unless_refreshed() {
    use sio_adapter_redis::registry::SESSION_TTL;
    use sio_adapter_redis::{RedisAdapterConfig, RedisCluster};
    let redis = TestRedis::start().await.unwrap();
    let cluster = RedisCluster::connect(&redis.url, RedisAdapterConfig::default())
        .await
        .unwrap();
    cluster.record_session("sid-a", "node-x").await.unwrap();
    let ttl = |key: &'static str| {
        let redis = &redis;
        async move {
            redis
                .cli(&["TTL", key])
                .await
                .unwrap()
                .trim()
                .parse::<i64>()
                .unwrap()
        }
    };
    let full = SESSION_TTL.as_secs() as i64;
    assert!((full - 5..=full).contains(&ttl("socket.io:sid:sid-a").await));
    redis
        .cli(&["EXPIRE", "socket.io:sid:sid-a", "5"])
        .await
        .unwrap();
    assert!(ttl("socket.io:sid:sid-a").await <= 5);
    let refreshed = cluster
        .refresh_sessions(&["sid-a".to_string(), "sid-gone".to_string()])
        .await
        .unwrap();
    assert_eq!(refreshed, 1, "only the live entry");
    assert!((full - 5..=full).contains(&ttl("socket.io:sid:sid-a").await));
    assert_eq!(ttl("socket.io:sid:sid-gone").await, -2, "nothing created");
    cluster.close(std::time::Duration::from_secs(1)).await;
}

// ---- Slow and idle HTTP connections: the header timeout through nginx and forwarding ----

/// With a short header timeout (500 ms, so the keep-alive idle timeout too) and pings 2 s
/// apart, official clients behind round-robin nginx (polling requests land on both nodes
/// and are forwarded to the session's owner) sit quiet with long-polls waiting past the
/// timeout on the client's, nginx's and the forwarding node's connections, then exchange
/// events: nothing is cut, no error, no disconnect, while idle connections between nginx,
/// the nodes and each other are closed and reopened underneath.
#[tokio::test]
async fn short_header_timeout_cuts_no_forwarded_long_poll() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&[
            "--client-publish",
            "room-*",
            "--header-timeout-ms",
            "500",
            "--ping-interval-ms",
            "2000",
        ])
        .cluster(2)
        .await
        .unwrap();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    let nginx = Nginx::start(&addrs, Balance::RoundRobin).await.unwrap();
    let facts = js_scenario(json!({
        "scenario": "quiet", "url": nginx.url, "quietMs": 4500, "messages": 5,
    }))
    .await
    .unwrap();
    println!("clients: {facts}");
    assert_quiet_clients_unharmed(&facts, 500);
    let forwarded = metric_sum(&nodes, "sio_forwarded_total").await.unwrap();
    assert!(forwarded > 0.0, "nothing was forwarded: {forwarded}");
    let timeouts = metric_sum(&nodes, "sio_http_timeouts_total").await.unwrap();
    println!("forwarded {forwarded}, idle connections closed {timeouts}");
}

//! What operators watch: the Grafana dashboard plots metrics a node really exports, and
//! the gauges it plots come back down when their sessions are gone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sio_cluster_tests::http::{http_get, http_request, metric_at, polling_sid};
use sio_cluster_tests::node::NodeBuilder;
use sio_cluster_tests::redis::TestRedis;
use tokio_tungstenite::tungstenite::Message;

/// One session of an eager client (as rust_socketio 0.6): open a websocket, send the
/// namespace CONNECT and an event at once, without waiting for the CONNECT's answer,
/// then close. `wait` is how long it lingers before closing, so the close lands at
/// different points of the namespace connect.
async fn eager_session(url: &str, wait: Duration) {
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        url.replace("http://", "ws://")
    );
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(ws_url.as_str()).await else {
        return;
    };
    // the Engine.IO open packet
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    // buffered, not flushed: with `wait` zero the CONNECT, the event and the close frame
    // leave in one write, so the node reads the close right after the CONNECT
    let _ = ws.feed(Message::text("40")).await;
    let _ = ws.feed(Message::text(r#"42["chat","hello"]"#)).await;
    if !wait.is_zero() {
        let _ = ws.flush().await;
        tokio::time::sleep(wait).await;
    }
    let _ = ws.close(None).await;
}

/// The same client over HTTP long-polling, in one request: the namespace CONNECT, an
/// event and the Engine.IO close packet in a single POST payload.
async fn eager_polling_session(addr: std::net::SocketAddr) {
    let Ok(sid) = polling_sid(addr, &[]).await else {
        return;
    };
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let _ = http_request(addr, "POST", &path, "40\x1e42[\"chat\",\"hello\"]\x1e1".as_bytes()).await;
}

/// `sio_sockets_connected` once nothing is connected any more: sessions that closed
/// while their namespace connect was in progress left it raised (issue #20), although
/// the node holds no socket.
#[tokio::test]
async fn sockets_gauge_returns_to_zero_after_eager_clients_close() {
    let redis = TestRedis::start().await.unwrap();
    // its own process: the real binary's multi-threaded runtime, where the connect task
    // and the session's close run side by side
    let node = NodeBuilder::new()
        .redis(&redis.url)
        .start_process()
        .await
        .unwrap();
    let url = node.url();
    let node_addr = node.addr();
    for round in 0..10u64 {
        let sessions = (0..20u64).map(|i| {
            let url = url.clone();
            // at once (3 in 4 sessions: 0 ms), 0.3, 0.6 or 0.9 ms after
            let wait = Duration::from_micros(if i % 4 == 0 { round % 4 * 300 } else { 0 });
            let addr = node_addr;
            tokio::spawn(async move {
                if i % 2 == 0 {
                    eager_session(&url, wait).await
                } else {
                    eager_polling_session(addr).await
                }
            })
        });
        for s in sessions.collect::<Vec<_>>() {
            s.await.unwrap();
        }
    }
    let connects = metric_at(node.addr(), "sio_connects_total").await.unwrap();
    assert!(connects > 0.0, "no eager client connected a socket at all");
    eprintln!("connects {connects}");
    // every session is closed: the node notices within a ping period at most
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut gauge;
    loop {
        gauge = metric_at(node.addr(), "sio_sockets_connected").await.unwrap();
        if gauge == 0.0 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = http_get(node.addr(), "/metrics").await.unwrap();
    assert_eq!(
        gauge, 0.0,
        "sio_sockets_connected after {connects} connects of 200 closed sessions:\n{metrics}"
    );
}

//! What operators watch: the Grafana dashboard plots metrics a node really exports, and
//! the gauges it plots come back down when their sessions are gone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sio_cluster_tests::clients::js_script;
use sio_cluster_tests::http::{
    http_get, http_request, metric_at, metric_in, polling_sid, ws_next_text,
};
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
    let _ = http_request(
        addr,
        "POST",
        &path,
        "40\x1e42[\"chat\",\"hello\"]\x1e1".as_bytes(),
    )
    .await;
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
    // every session is closed: the node notices within a ping period at most
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut gauge;
    loop {
        gauge = metric_at(node.addr(), "sio_sockets_connected")
            .await
            .unwrap();
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

/// Every `sio_*` metric name in the PromQL expressions of `dashboard` (panels and
/// template variables), sorted and deduplicated.
fn dashboard_metrics(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(e)) => {
                            out.extend(metric_names(e))
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out.sort();
    out.dedup();
    out
}

/// The `sio_*` identifiers in one PromQL expression (outside label values).
fn metric_names(expr: &str) -> Vec<String> {
    // label values are quoted: keep what is outside the quotes
    let expr: String = expr
        .split('"')
        .enumerate()
        .map(|(i, part)| if i % 2 == 0 { part } else { " " })
        .collect();
    let expr = expr.as_str();
    let bytes = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("sio_") {
        let start = i + at;
        let word_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = start
            + expr[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len() - start);
        if word_start {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names(r#"sum by (instance) (rate(sio_a_total{x="sio_not"}[5m])) / sio_b"#),
        ["sio_a_total", "sio_b"]
    );
    assert_eq!(metric_names("rate(my_sio_x[1m])"), Vec::<String>::new());
}

/// The Grafana dashboard (k8s/grafana/sio-cluster.json) plots only metrics that a
/// cluster-mode node lists on `/metrics` from the start, and imports as is: its data
/// source is a variable, every panel uses it, every panel has a query.
#[tokio::test]
async fn dashboard_plots_metrics_a_node_exports() {
    let path = sio_cluster_tests::files::tests_dir().join("../k8s/grafana/sio-cluster.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let plotted = dashboard_metrics(&dashboard);
    assert!(plotted.len() >= 15, "too few metrics plotted: {plotted:?}");

    let panels = dashboard["panels"].as_array().unwrap();
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{}",
            p["title"]
        );
    }
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Delivery rate",
        "Latency",
        "Sessions per node",
        "Forwarded requests",
        "Redis publish queue",
        "Malformed messages",
        "Timeouts",
        "Rate-limit refusals",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(wanted)),
            "no panel {wanted:?} in {titles:?}"
        );
    }
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource"),
        "the data source is not a variable"
    );

    let redis = TestRedis::start().await.unwrap();
    let node = NodeBuilder::new().redis(&redis.url).start().await.unwrap();
    // one chat message: a broadcast the node publishes to Redis (for the latency panel)
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        node.url().replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    ws_next_text(&mut ws).await.unwrap(); // open
    ws.send(Message::text("40/chat,")).await.unwrap();
    let connected = ws_next_text(&mut ws).await.unwrap();
    assert!(connected.starts_with("40/chat,"), "{connected}");
    ws.send(Message::text(
        r#"42/chat,["chat",{"name":"ops","text":"hello"}]"#,
    ))
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric_at(node.addr(), "sio_redis_publish_batches_total")
        .await
        .unwrap()
        < 1.0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, metrics) = http_get(node.addr(), "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let exported: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = plotted
        .iter()
        .filter(|m| !exported.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard plots metrics the node does not export: {missing:?}\n/metrics:\n{metrics}"
    );
    // the latency panel's figures move: the chat broadcast went out in a batch whose
    // answer from Redis the publisher waited for
    let batches = metric_in(&metrics, "sio_redis_publish_batches_total");
    let waited = metric_in(&metrics, "sio_redis_publish_wait_microseconds_total");
    assert!(
        batches >= 1.0 && waited > 0.0,
        "{batches} batches, {waited} us"
    );
}

/// The demo page when the Socket.IO client library cannot be loaded (offline and no
/// local bundle; here every request for it is refused in a real Chromium): it says so,
/// names what failed and how to fix it (SIO_CLIENT_JS), and does not pretend to be
/// connecting.
#[tokio::test]
async fn demo_page_says_when_the_client_library_is_missing() {
    let node = NodeBuilder::new().start().await.unwrap();
    let shot = std::env::temp_dir().join(format!("sio-offline-{}.png", node.addr().port()));
    let f = js_script(
        "browser-offline.mjs",
        json!({"url": node.url(), "screenshot": shot}),
    )
    .await
    .unwrap();
    assert!(f.get("error").is_none(), "{f}");
    assert!(
        !f["blocked"].as_array().unwrap().is_empty(),
        "the page never asked for the client library: {f}"
    );
    assert_eq!(f["status"]["class"], "failed", "{f}");
    assert_eq!(f["status"]["text"], "client library not loaded", "{f}");
    let message = f["message"].as_str().unwrap();
    for needed in [
        "could not be loaded",
        "/assets/socket.io.min.js",
        "SIO_CLIENT_JS",
    ] {
        assert!(message.contains(needed), "{needed:?} not in {message:?}");
    }
    assert_eq!(f["inputsDisabled"], true, "{f}");
    assert!(f.get("pageErrors").is_none(), "{f}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    node.shutdown().await.unwrap();
}

/// The client bundle the image installs from npm is the version the page expects (the
/// CDN fallback's, with its integrity hash) and the one the tests serve.
#[test]
fn image_ships_the_client_version_the_page_expects() {
    let root = sio_cluster_tests::files::tests_dir().join("..");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let arg = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG SOCKET_IO_CLIENT_VERSION="))
        .expect("no ARG SOCKET_IO_CLIENT_VERSION in the Dockerfile");
    assert_eq!(arg.trim(), sio_server::chat::CLIENT_VERSION);
    assert!(dockerfile.contains("SIO_CLIENT_JS=/usr/share/sio-cluster/socket.io.min.js"));
    let npm = sio_cluster_tests::files::js_dir().join("node_modules/socket.io-client/package.json");
    let npm: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(npm).unwrap()).unwrap();
    assert_eq!(npm["version"], sio_server::chat::CLIENT_VERSION);
}

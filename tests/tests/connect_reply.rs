//! The pid in Socket.IO CONNECT replies (`crate::connect_reply`), as the official client
//! sees it, over websocket only, polling only, and polling upgraded to websocket, on
//! namespace `/` and a custom one sharing the session.
//!
//! The server is socketioxide served by the node's own accept loop (`http::serve` with
//! the pid table, so every stream is wrapped) and polling middleware, with a connect
//! middleware standing in for the one that will choose pids: it records a pid of its
//! choosing for each socket. The client must report exactly that pid.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde_json::{Value, json};
use sio_cluster_tests::clients::js_script;
use sio_cluster_tests::node::NodeBuilder;
use sio_server::connect_reply::PidTable;
use sio_server::connect_reply::polling::rewrite_polling;
use sio_server::http::{HttpSettings, serve};
use sio_server::metrics::Metrics;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler as _;
use tokio_util::sync::CancellationToken;

/// (namespace, socket id) → the pid the server chose.
type Chosen = Arc<Mutex<HashMap<(String, String), String>>>;

const NAMESPACES: [&str; 2] = ["/", "/custom"];

/// Serves socketioxide on `127.0.0.1:0` the way a node with recovery on does; returns the
/// URL, the pids chosen so far and the token that stops it.
async fn start_server(table: &PidTable) -> (String, Chosen, CancellationToken) {
    let (layer, io) = SocketIo::builder().build_layer();
    let chosen: Chosen = Arc::default();
    let counter = Arc::new(AtomicUsize::new(0));
    for nsp in NAMESPACES {
        let table = table.clone();
        let chosen = chosen.clone();
        let counter = counter.clone();
        let middleware = move |s: SocketRef| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            // a pid with characters JSON escapes, different in every namespace
            let pid = format!("pid-{n}-{}-\"q\"", s.ns().trim_start_matches('/'));
            let sid = s.id.to_string();
            table.insert(s.ns(), &sid, pid.clone());
            chosen
                .lock()
                .unwrap()
                .insert((s.ns().to_string(), sid), pid);
            s.on("echo", async |Data(d): Data<Value>, ack: AckSender| {
                let _ = ack.send(&d);
            });
            async move { Ok::<(), Infallible>(()) }
        };
        io.ns(nsp, { async || {} }.with(middleware));
    }
    let router = Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(layer)
        .layer(axum::middleware::from_fn_with_state(
            table.clone(),
            rewrite_polling,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let settings = HttpSettings {
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        max_connections: None,
    };
    tokio::spawn(serve(
        listener,
        router,
        settings,
        Metrics::new(),
        stop.clone(),
        Some(table.clone()),
    ));
    (url, chosen, stop)
}

fn runs() -> Value {
    json!([
        {"name": "websocket", "transports": ["websocket"]},
        {"name": "polling", "transports": ["polling"]},
        {"name": "upgrade", "transports": ["polling", "websocket"]},
    ])
}

#[tokio::test]
async fn the_official_client_gets_the_pid_the_server_chose() {
    let table = PidTable::new();
    let (url, chosen, stop) = start_server(&table).await;
    let facts = js_script(
        "connect-reply.mjs",
        json!({ "url": url, "namespaces": NAMESPACES, "echo": true, "runs": runs() }),
    )
    .await
    .unwrap();
    eprintln!("{facts}");

    let runs = facts["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{facts}");
    // (run, the transports its CONNECT replies may come on, the transport it ends on):
    // when upgrading, a reply goes out on polling, or on the websocket once the upgrade
    // is done (on loopback, often before the second namespace's reply)
    let expect: [(&str, &[&str], &str); 3] = [
        ("websocket", &["websocket"], "websocket"),
        ("polling", &["polling"], "polling"),
        ("upgrade", &["polling", "websocket"], "websocket"),
    ];
    let chosen = chosen.lock().unwrap().clone();
    for (run, (name, connect, last)) in runs.iter().zip(expect) {
        assert_eq!(run["name"], name, "{run}");
        assert_eq!(run["finalTransport"], last, "{run}");
        let sockets = run["sockets"].as_array().unwrap();
        assert_eq!(sockets.len(), NAMESPACES.len(), "{run}");
        for (socket, nsp) in sockets.iter().zip(NAMESPACES) {
            assert_eq!(socket["nsp"], nsp, "{run}");
            let on = socket["connectedOn"].as_str().unwrap();
            assert!(connect.contains(&on), "{run}");
            let id = socket["id"].as_str().unwrap();
            let pid = chosen
                .get(&(nsp.to_string(), id.to_string()))
                .unwrap_or_else(|| panic!("no pid chosen for {nsp} {id}: {run}"));
            assert_eq!(socket["pid"], pid.as_str(), "{name} {nsp}: {run}");
            assert_eq!(socket["echo"], format!("hi {name}"), "{run}");
        }
    }
    assert_eq!(chosen.len(), 6);
    // every pid was taken by its reply: nothing left behind
    assert!(table.is_empty(), "{table:?}");
    stop.cancel();
}

/// A real node with recovery on (streams mode) gives every socket of every transport and
/// namespace a pid of its own in the CONNECT reply, and serves the official client as
/// before.
#[tokio::test]
async fn a_node_with_recovery_on_serves_every_transport() {
    let redis = sio_cluster_tests::redis::TestRedis::start().await.unwrap();
    let node = NodeBuilder::new()
        .redis(&redis.url)
        .args(&[
            "--redis-mode",
            "streams",
            "--recovery-window-ms",
            "60000",
            "--namespaces",
            "/,/custom",
        ])
        .start()
        .await
        .unwrap();
    let facts = js_script(
        "connect-reply.mjs",
        json!({ "url": node.url(), "namespaces": NAMESPACES, "echo": false, "runs": runs() }),
    )
    .await
    .unwrap();
    let runs = facts["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{facts}");
    let mut pids = std::collections::HashSet::new();
    for run in runs {
        for socket in run["sockets"].as_array().unwrap() {
            assert!(socket["id"].is_string(), "{run}");
            let pid = socket["pid"]
                .as_str()
                .unwrap_or_else(|| panic!("no pid: {run}"));
            assert!(pids.insert(pid.to_string()), "a pid given twice: {facts}");
        }
    }
    assert_eq!(runs[2]["finalTransport"], "websocket", "{facts}");
}

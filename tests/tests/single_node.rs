//! One node, real clients: the official socket.io-client 4.8 (Node.js) and
//! python-socketio, over polling-only, websocket-only and the default upgrade path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::{Value, json};
use sio_cluster_tests::clients::{js_scenario, js_script, py_script};
use sio_cluster_tests::files::{client_bundle, js_dir};
use sio_cluster_tests::http::{http_get, http_request, polling_sid};
use sio_cluster_tests::node::NodeBuilder;
use sio_cluster_tests::scenario::{assert_browser_chat, merged};

const GATEWAY_FLAGS: [&str; 4] = ["--namespaces", "/,/admin", "--client-publish", "room-*"];

async fn gateway_scenario(transports: Value, expect_transport: &str) {
    let node = NodeBuilder::new()
        .args(&GATEWAY_FLAGS)
        .start()
        .await
        .unwrap();
    let f = js_scenario(json!({
        "scenario": "gateway",
        "url": node.url(),
        "transports": transports,
        "secondNamespace": "/admin",
    }))
    .await
    .unwrap();

    assert_eq!(f["transport"], expect_transport, "{f}");
    assert_eq!(f["joinAck"], json!({"ok": true}));
    assert_eq!(f["badJoinAck"]["ok"], false);
    assert_eq!(f["badJoinAck"]["error"], "room must be a string");
    assert_eq!(f["publishAck"], json!({"ok": true}));
    assert_eq!(f["news"], json!({"hello": "world", "n": 1}));

    assert_eq!(f["binaryAck"], json!({"ok": true}));
    assert_eq!(
        f["blob"]["bin"],
        json!({"binary": true, "hex": "000102fdfeff"})
    );
    assert_eq!(f["blob"]["nested"], json!({"binary": true, "hex": "0001"}));
    assert_eq!(f["blob"]["label"], "x");

    assert_eq!(f["otherRoomAck"], json!({"ok": true}));
    assert_eq!(f["strayReceived"], false, "a room the client is not in");
    assert_eq!(f["deniedAck"]["ok"], false);
    assert!(
        f["deniedAck"]["error"]
            .as_str()
            .unwrap()
            .contains("not allowed"),
        "{f}"
    );
    assert!(
        f["reservedAck"]["error"]
            .as_str()
            .unwrap()
            .contains("reserved")
    );
    assert!(
        f["malformedAck"]["error"]
            .as_str()
            .unwrap()
            .starts_with("publish expects")
    );
    assert_eq!(f["leaveAck"], json!({"ok": true}));
    assert_eq!(f["afterLeaveReceived"], false);

    let ns = &f["secondNamespace"];
    assert_eq!(ns["connected"], true);
    assert_eq!(ns["sameEngine"], true, "namespaces share one connection");
    assert_eq!(ns["received"], "from-admin");
    assert_eq!(
        ns["leakedToMain"], false,
        "a room broadcast stays in its namespace"
    );

    // The node counted what happened.
    let (status, metrics) = http_get(node.addr(), "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("sio_events_received_total{event=\"publish\"}"),
        "{metrics}"
    );
    // the room outside SIO_CLIENT_PUBLISH and the reserved event name
    assert!(
        metrics.contains("sio_errors_total{kind=\"publish_denied\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("sio_connects_total{nsp=\"/admin\"} 1"));
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn gateway_over_polling_only() {
    gateway_scenario(json!(["polling"]), "polling").await;
}

#[tokio::test]
async fn gateway_over_websocket_only() {
    gateway_scenario(json!(["websocket"]), "websocket").await;
}

#[tokio::test]
async fn gateway_over_polling_upgraded_to_websocket() {
    gateway_scenario(json!(["polling", "websocket"]), "websocket").await;
}

/// 200 clients emit `join` in their `connect` listener, with no await in between; every
/// one gets its ack (handlers exist before the CONNECT packet leaves the server).
#[tokio::test]
async fn join_emitted_on_connect_is_never_lost() {
    let node = NodeBuilder::new().start().await.unwrap();
    for transports in [json!(["polling"]), json!(["websocket"])] {
        let f = js_scenario(json!({
            "scenario": "burst",
            "url": node.url(),
            "clients": 200,
            "transports": transports,
            "waitMs": 20000,
        }))
        .await
        .unwrap();
        assert_eq!(f["acked"], 200, "{transports}: {f}");
    }
    node.shutdown().await.unwrap();
}

fn hs256(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret"),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_auth_gates_connect_and_rooms() {
    let node = NodeBuilder::new()
        .args(&["--jwt-secret", "test-secret", "--client-publish", "user:*"])
        .start()
        .await
        .unwrap();
    let handshake = |token: Option<String>, extra: Value| {
        let opts = json!({"scenario": "handshake", "url": node.url(), "token": token});
        js_scenario(merged(opts, &extra))
    };

    let none = handshake(None, json!({})).await.unwrap();
    assert_eq!(none["connected"], false);
    assert_eq!(
        none["error"],
        "connect_error: authentication required: send auth.token"
    );

    let wrong = handshake(Some(hs256(json!({"sub": "x"})) + "tampered"), json!({}))
        .await
        .unwrap();
    assert_eq!(wrong["connected"], false);
    assert!(
        wrong["error"]
            .as_str()
            .unwrap()
            .starts_with("connect_error: invalid token"),
        "{wrong}"
    );

    let expired = handshake(
        Some(hs256(json!({"sub": "x", "exp": 1_000_000}))),
        json!({}),
    )
    .await
    .unwrap();
    assert!(
        expired["error"].as_str().unwrap().contains("invalid token"),
        "{expired}"
    );

    let alice = handshake(
        Some(hs256(json!({"sub": "alice", "rooms": ["team:*"]}))),
        json!({"join": ["team:red", "lobby", "user:bob"], "publishToSelf": "user:alice"}),
    )
    .await
    .unwrap();
    assert_eq!(alice["connected"], true, "{alice}");
    assert_eq!(alice["joinAcks"][0], json!({"ok": true}));
    assert_eq!(alice["joinAcks"][1]["ok"], false);
    assert_eq!(alice["joinAcks"][2]["ok"], false);
    // auto-joined `user:alice`: a publish there reaches her
    assert_eq!(alice["publishAck"], json!({"ok": true}));
    assert_eq!(alice["received"], "hi");

    let (_, metrics) = http_get(node.addr(), "/metrics").await.unwrap();
    assert!(
        metrics.contains("sio_connect_rejected_total{reason=\"auth\"} 3"),
        "{metrics}"
    );
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_namespace_is_refused() {
    let node = NodeBuilder::new().start().await.unwrap();
    let f = js_scenario(json!({"scenario": "handshake", "url": node.url(), "namespace": "/nope"}))
        .await
        .unwrap();
    assert_eq!(f["connected"], false);
    assert_eq!(f["error"], "connect_error: Invalid namespace");
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn chat_broadcasts_and_serves_history() {
    let node = NodeBuilder::new().start().await.unwrap();
    let f = js_scenario(json!({"scenario": "chat", "url": node.url()}))
        .await
        .unwrap();
    assert_eq!(f["initialHistory"], json!([]));
    let acks = f["acks"].as_array().unwrap();
    assert!(acks[..3].iter().all(|a| *a == json!({"ok": true})), "{f}");
    assert_eq!(acks[3]["ok"], false, "empty text is refused");
    let texts = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(texts(&f["received"]), ["hello", "how are you", "bye"]);
    assert_eq!(texts(&f["history"]), ["hello", "how are you", "bye"]);
    assert_eq!(f["history"][0]["name"], "ann");
    node.shutdown().await.unwrap();
}

/// A person's view: two Chromium tabs chat through the page, a late tab sees history.
#[tokio::test]
async fn chat_page_in_a_real_browser() {
    let node = NodeBuilder::new().start().await.unwrap();
    let shot = std::env::temp_dir().join(format!("sio-chat-{}.png", node.addr().port()));
    let f = js_script(
        "browser-chat.mjs",
        json!({"urls": [node.url()], "screenshot": shot}),
    )
    .await
    .unwrap();
    assert_browser_chat(&f);
    assert_eq!(f["namesInB"], json!(["alice", "bob"]));
    assert!(f.get("pageErrors").is_none(), "{f}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn python_socketio_client_smoke() {
    let node = NodeBuilder::new()
        .args(&["--client-publish", "room-*"])
        .start()
        .await
        .unwrap();
    for transport in ["polling", "websocket"] {
        let f = py_script("smoke.py", &[&node.url(), transport])
            .await
            .unwrap();
        assert_eq!(f["transport"], transport, "{f}");
        assert_eq!(f["join"], json!({"ok": true}));
        assert_eq!(f["publish"], json!({"ok": true}));
        assert_eq!(f["received"], json!({"from": "python"}));
    }
    node.shutdown().await.unwrap();
}

/// Socket.IO v2 clients (protocol v4 over Engine.IO v3) still connect and use the gateway.
#[tokio::test]
async fn legacy_v2_client_over_engine_io_v3() {
    let node = NodeBuilder::new()
        .args(&["--client-publish", "room-*"])
        .start()
        .await
        .unwrap();
    for transports in [
        json!(["polling"]),
        json!(["websocket"]),
        json!(["polling", "websocket"]),
    ] {
        let f = js_script(
            "legacy-v2.cjs",
            json!({"url": node.url(), "transports": transports}),
        )
        .await
        .unwrap();
        assert_eq!(f["joinAck"], json!({"ok": true}), "{transports}: {f}");
        assert_eq!(f["received"], json!({"v": 2}), "{transports}: {f}");
    }
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_readiness_and_page() {
    let node = NodeBuilder::new().id("node-a").start().await.unwrap();
    let (s, body) = http_get(node.addr(), "/healthz").await.unwrap();
    assert_eq!((s, body.contains("node-a")), (200, true));
    let (s, body) = http_get(node.addr(), "/readyz").await.unwrap();
    assert_eq!(s, 200);
    assert!(body.contains("ready"));
    let (s, page) = http_get(node.addr(), "/").await.unwrap();
    assert_eq!(s, 200);
    assert!(page.contains("sio-cluster chat"));
    assert!(page.contains(r#"src="/assets/socket.io.min.js""#));
    let (s, js) = http_get(node.addr(), "/assets/socket.io.min.js")
        .await
        .unwrap();
    assert_eq!(s, 200);
    assert!(js.contains("Socket.IO v4.8"));
    node.shutdown().await.unwrap();
}

/// The SRI hash the page uses for the CDN must be the hash of the pinned npm bundle.
#[test]
fn cdn_sri_matches_the_pinned_client() {
    use base64::Engine;
    use sha2::Digest;
    let bundle = std::fs::read(client_bundle())
        .expect("socket.io-client installed (npm ci --prefix tests/js)");
    let sri = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&bundle))
    );
    assert_eq!(sri, sio_server::node::CLIENT_SRI);
    let pkg: Value = serde_json::from_str(
        &std::fs::read_to_string(js_dir().join("node_modules/socket.io-client/package.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pkg["version"], sio_server::node::CLIENT_VERSION);
}

/// Bad Engine.IO requests get Node's error answers (numeric codes) and cost nobody else
/// anything: a client connected before and after is served normally.
#[tokio::test]
async fn bad_http_requests_get_node_style_errors() {
    let node = NodeBuilder::new()
        .args(&["--max-payload", "2000"])
        .start()
        .await
        .unwrap();
    let addr = node.addr();
    let e = "/socket.io/?EIO=4&transport=polling";
    let cases: [(&str, String, &[u8], u16, &str); 4] = [
        (
            "GET",
            format!("{e}&sid=nope"),
            b"",
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#,
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=carrier-pigeon".into(),
            b"",
            400,
            r#"{"code":0,"message":"Transport unknown"}"#,
        ),
        (
            "GET",
            "/socket.io/?EIO=7&transport=polling".into(),
            b"",
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
        (
            "PUT",
            e.into(),
            b"",
            400,
            r#"{"code":2,"message":"Bad handshake method"}"#,
        ),
    ];
    for (method, path, body, status, answer) in cases {
        let got = http_request(addr, method, &path, body).await.unwrap();
        assert_eq!(got, (status, answer.to_string()), "{method} {path}");
    }

    // a session that sends garbage, and one that sends too much
    for (body, status) in [(b"garbage{{".to_vec(), 400), (vec![b'a'; 5000], 413)] {
        let sid = polling_sid(addr, &[]).await.unwrap();
        let (got, _) = http_request(addr, "POST", &format!("{e}&sid={sid}"), &body)
            .await
            .unwrap();
        assert_eq!(got, status);
    }

    let f = js_scenario(json!({"scenario": "handshake", "url": node.url(), "join": ["after"]}))
        .await
        .unwrap();
    assert_eq!(f["joinAcks"], json!([{"ok": true}]), "{f}");
    node.shutdown().await.unwrap();
}

/// `SIO_WORKER_THREADS` sizes the node's runtime: a node told to use 4 worker threads
/// runs at least 3 more threads than one told to use 1 (jemalloc may add background
/// threads for the extra workers' arenas), and both serve clients.
#[tokio::test]
async fn worker_threads_setting_sizes_the_runtime() {
    use sio_cluster_tests::process::ProcFigures;
    let mut threads = Vec::new();
    for n in ["1", "4"] {
        let node = NodeBuilder::new()
            .env(&[("SIO_WORKER_THREADS", n), ("SIO_CHAT", "false")])
            .start_process()
            .await
            .unwrap();
        let (status, body) = http_get(node.addr(), "/socket.io/?EIO=4&transport=polling")
            .await
            .unwrap();
        assert!(status == 200 && body.starts_with("0{"), "{status} {body}");
        threads.push(ProcFigures::read(node.pid()).unwrap().threads);
    }
    assert!(
        threads[1] >= threads[0] + 3,
        "threads with 1 and 4 workers: {threads:?}"
    );
}

/// The kit starts node processes from the binary cargo built for these tests.
#[test]
fn node_processes_run_the_binary_cargo_built() {
    let bin = sio_cluster_tests::process::node_bin().unwrap();
    assert_eq!(
        bin,
        std::path::Path::new(env!("CARGO_BIN_EXE_sio-test-node"))
    );
}

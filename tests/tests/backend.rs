//! The app's backend behind the gateway (issue #19): the connect proxy and the event
//! proxy, against the example backend (`examples/backend/backend.py`, a real process that
//! verifies every request's Standard Webhooks signature with the `standardwebhooks`
//! package) and official clients (`tests/js/backend.mjs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sio_cluster_tests::clients::{js_script, read_line};
use sio_cluster_tests::files::tests_dir;
use sio_cluster_tests::http::http_get;
use sio_cluster_tests::node::{NodeBuilder, TestNode, metric_sum};
use tokio::io::BufReader;
use tokio::process::{Child, Command};

const SECRET: &str = "whsec_c2lvLWNsdXN0ZXItdGVzdC1rZXktMDEyMzQ1Njc4OQ==";
const OTHER_SECRET: &str = "whsec_YW5vdGhlci1rZXktdGhhdC1kb2VzLW5vdC1tYXRjaA==";

/// The example backend as a child process, killed on drop.
struct Backend {
    _child: Child,
    port: u16,
}

impl Backend {
    async fn start(secret: &str, extra: &[&str]) -> Self {
        let script = tests_dir().join("../examples/backend/backend.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--secret", secret, "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let line = read_line(&mut out)
            .await
            .expect("the backend says where it listens");
        let port = line["listening"].as_u64().expect("a port") as u16;
        Self {
            _child: child,
            port,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The verified requests, in arrival order, and the count of bad signatures.
    async fn log(&self) -> (Vec<Value>, u64) {
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let (status, body) = http_get(addr, "/log").await.unwrap();
        assert_eq!(status, 200);
        let log: Value = serde_json::from_str(&body).unwrap();
        (
            log["requests"].as_array().cloned().unwrap_or_default(),
            log["badSignatures"].as_u64().unwrap(),
        )
    }
}

/// A node with `args` plus the proxy secret and an 800 ms backend timeout.
async fn node(args: &[&str]) -> TestNode {
    node_with_timeout(args, "800").await
}

async fn node_with_timeout(args: &[&str], timeout_ms: &str) -> TestNode {
    let mut all = vec!["--proxy-secret", SECRET, "--proxy-timeout-ms", timeout_ms];
    all.extend_from_slice(args);
    NodeBuilder::new().args(&all).start().await.unwrap()
}

async fn client(node: &TestNode, opts: Value) -> Value {
    let mut opts = opts;
    opts["url"] = node.url().into();
    js_script("backend.mjs", opts).await.unwrap()
}

/// Accepted by the backend (a cookie session): the socket is in `user:alice` and in
/// `lobby` (a publish to each comes back); the
/// backend's RPC answers are acks, a 4xx is `{ok:false,error}`, binary arguments go as
/// base64 placeholders and come back as bytes; `publish` never reaches the backend;
/// every request verified.
#[tokio::test]
async fn an_accepted_socket_gets_its_rooms_and_its_events_answered_by_the_backend() {
    let backend = Backend::start(SECRET, &[]).await;
    let n = node(&[
        "--connect-proxy-url",
        &backend.url("/connect"),
        "--event-proxy-url",
        &backend.url("/event"),
        "--event-proxy-events",
        "add,echo,fail",
        "--client-publish",
        "lobby,user:*",
    ])
    .await;
    let facts = client(
        &n,
        json!({
            "headers": {"cookie": "session=alice; theme=dark"},
            "emits": [
                {"event": "add", "args": [1, 2, 39]},
                {"event": "fail", "args": []},
                {"event": "echo", "args": [{"$binary": "00ff10"}, {"name": "f", "bytes": {"$binary": "cafe"}}]},
                {"event": "publish", "args": [{"room": "lobby", "event": "hello", "data": 1}]},
                {"event": "publish", "args": [{"room": "user:alice", "event": "hello", "data": 2}]},
                {"event": "unlisted", "args": [1], "ack": false},
            ],
            "waitEvents": 2,
        }),
    )
    .await;
    assert_eq!(facts["connected"], true, "{facts}");
    let acks = &facts["acks"];
    assert_eq!(acks[0], json!({"ok": true, "result": 42}), "{facts}");
    assert_eq!(
        acks[1],
        json!({"ok": false, "error": "cannot do that"}),
        "{facts}"
    );
    assert_eq!(
        acks[2],
        json!({"ok": true, "result": [{"$binary": "00ff10"}, {"name": "f", "bytes": {"$binary": "cafe"}}]}),
        "{facts}"
    );
    assert_eq!(acks[3], json!({"ok": true}), "{facts}");
    assert_eq!(acks[4], json!({"ok": true}), "{facts}");
    // in `lobby` (the backend's room) and `user:alice`: both publishes came back
    assert_eq!(
        facts["received"],
        json!([{"event": "hello", "args": [1]}, {"event": "hello", "args": [2]}]),
        "{facts}"
    );

    let (log, bad) = backend.log().await;
    assert_eq!(bad, 0);
    let connect = &log[0]["body"];
    assert_eq!(log[0]["path"], "/connect");
    assert_eq!(connect["nsp"], "/");
    assert_eq!(connect["transport"], "websocket");
    assert_eq!(connect["address"], "127.0.0.1");
    assert_eq!(connect["headers"]["cookie"], "session=alice; theme=dark");
    assert!(
        connect["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "{connect}"
    );
    let events: Vec<&Value> = log[1..].iter().map(|r| &r["body"]["event"]).collect();
    // `publish` (a gateway event) and `unlisted` (not in SIO_EVENT_PROXY_EVENTS) stayed on the node
    assert_eq!(
        events,
        [&json!("add"), &json!("fail"), &json!("echo")],
        "{log:?}"
    );
    assert_eq!(log[1]["body"]["user"], "alice");
    assert_eq!(log[1]["body"]["args"], json!([1, 2, 39]));
    assert_eq!(
        log[3]["body"]["args"],
        json!([{"_binary": "AP8Q"}, {"name": "f", "bytes": {"_binary": "yv4="}}])
    );
    assert_eq!(
        metric_sum(
            std::slice::from_ref(&n),
            "sio_proxy_requests_total{kind=\"event\",outcome=\"ok\"}"
        )
        .await
        .unwrap(),
        2.0
    );
}

/// The backend refuses: its `error` is the client's `connect_error` message, and the
/// socket never connects.
#[tokio::test]
async fn a_refusal_is_the_client_s_connect_error_message() {
    let backend = Backend::start(SECRET, &[]).await;
    let n = node(&["--connect-proxy-url", &backend.url("/connect")]).await;
    let refused = client(&n, json!({"auth": {"refuse": "account suspended"}})).await;
    assert_eq!(refused["connected"], false, "{refused}");
    assert_eq!(refused["error"], "account suspended", "{refused}");
    let anonymous = client(&n, json!({})).await;
    assert_eq!(anonymous["error"], "login required", "{anonymous}");
    // the handshake auth reaches the backend as the client sent it
    let ok = client(&n, json!({"auth": {"user": "bob", "rooms": ["team:red"]}})).await;
    assert_eq!(ok["connected"], true, "{ok}");
    let (log, _) = backend.log().await;
    assert_eq!(
        log[2]["body"]["auth"],
        json!({"user": "bob", "rooms": ["team:red"]})
    );
    assert_eq!(
        metric_sum(
            std::slice::from_ref(&n),
            "sio_connect_rejected_total{reason=\"backend\"}"
        )
        .await
        .unwrap(),
        2.0
    );
}

/// No backend listening, one slower than `SIO_PROXY_TIMEOUT_MS`, one answering garbage,
/// one answering 500: every connect is refused with `backend unavailable`, the slow one
/// within the timeout.
#[tokio::test]
async fn a_down_slow_or_broken_backend_refuses_with_backend_unavailable() {
    // a port nothing listens on: bind, learn it, close
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/connect", dead.local_addr().unwrap());
    drop(dead);
    let slow = Backend::start(SECRET, &["--mode", "slow", "--delay-ms", "3000"]).await;
    let garbage = Backend::start(SECRET, &["--mode", "garbage"]).await;
    let error = Backend::start(SECRET, &["--mode", "error"]).await;
    for (what, url) in [
        ("down", dead_url),
        ("slow", slow.url("/connect")),
        ("garbage", garbage.url("/connect")),
        ("500", error.url("/connect")),
    ] {
        let n = node(&["--connect-proxy-url", &url]).await;
        let started = Instant::now();
        let facts = client(&n, json!({"auth": {"user": "alice"}})).await;
        assert_eq!(facts["error"], "backend unavailable", "{what}: {facts}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{what}: took {:?}",
            started.elapsed()
        );
        let unavailable = metric_sum(
            std::slice::from_ref(&n),
            "sio_connect_rejected_total{reason=\"backend_unavailable\"}",
        )
        .await
        .unwrap();
        assert_eq!(unavailable, 1.0, "{what}");
    }
    assert!(slow.log().await.0.len() == 1);
}

/// An event the backend is too slow for is acked `backend unavailable` within the timeout,
/// and the socket's other events still get their answers.
#[tokio::test]
async fn a_slow_backend_acks_backend_unavailable_within_the_timeout() {
    let slow = Backend::start(SECRET, &["--mode", "slow", "--delay-ms", "3000"]).await;
    let n = node(&["--event-proxy-url", &slow.url("/event")]).await;
    let started = Instant::now();
    let facts = client(&n, json!({"emits": [{"event": "add", "args": [1]}]})).await;
    assert_eq!(facts["connected"], true, "{facts}");
    assert_eq!(
        facts["acks"][0],
        json!({"ok": false, "error": "backend unavailable"}),
        "{facts}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        metric_sum(
            std::slice::from_ref(&n),
            "sio_proxy_errors_total{kind=\"timeout\"}"
        )
        .await
        .unwrap(),
        1.0
    );
}

/// 50 numbered events sent at once by one socket reach the backend in the order sent,
/// each acked with its own answer.
#[tokio::test]
async fn one_socket_s_events_reach_the_backend_in_order() {
    let backend = Backend::start(SECRET, &[]).await;
    let n = node(&[
        "--event-proxy-url",
        &backend.url("/event"),
        "--event-proxy-events",
        "seq",
    ])
    .await;
    let facts = client(&n, json!({"seq": 50, "transports": ["polling"]})).await;
    let acks = facts["seqAcks"].as_array().unwrap();
    assert_eq!(acks.len(), 50, "{facts}");
    assert!(
        acks.iter()
            .all(|a| a == &json!({"ok": true, "result": null})),
        "{facts}"
    );
    let (log, bad) = backend.log().await;
    assert_eq!(bad, 0);
    let sent: Vec<i64> = log
        .iter()
        .map(|r| r["body"]["args"][0].as_i64().unwrap())
        .collect();
    assert_eq!(sent, (0..50).collect::<Vec<_>>());
}

/// The backend checks the signature: a node signing with another key is refused by it
/// (its 401 `bad signature` is the client's message) and nothing is handled.
#[tokio::test]
async fn a_backend_rejects_requests_signed_with_another_key() {
    let backend = Backend::start(OTHER_SECRET, &[]).await;
    let n = node(&["--connect-proxy-url", &backend.url("/connect")]).await;
    let facts = client(&n, json!({"auth": {"user": "alice"}})).await;
    assert_eq!(facts["error"], "bad signature", "{facts}");
    let (log, bad) = backend.log().await;
    assert_eq!((log.len(), bad), (0, 1));
}

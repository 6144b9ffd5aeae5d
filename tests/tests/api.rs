//! The HTTP emit API (issue #19, `SIO_API_KEY`): a backend pushes with one HTTP request;
//! official clients on every node of the cluster get the event, with each element of
//! `args` as an argument; wrong keys, malformed and oversized bodies get clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use serde_json::{Value, json};
use sio_cluster_tests::clients::{read_line, spawn_js_script};
use sio_cluster_tests::http::raw_http;
use sio_cluster_tests::node::{NodeBuilder, metric_sum};
use sio_cluster_tests::redis::TestRedis;
use tokio::io::BufReader;

const KEY: &str = "test-api-key-0123456789";

async fn post(addr: std::net::SocketAddr, key: Option<&str>, body: &[u8]) -> (u16, Value) {
    post_at(addr, "/api/v1/emit", key, body).await
}

/// POSTs `body` to `path` with bearer `key`: the status and the answer (JSON, else text).
async fn post_at(
    addr: std::net::SocketAddr,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let (status, _, body) = raw_http(addr, "POST", path, &headers, body).await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// A POST to one node reaches a client of the other node, in the room, with every
/// argument; the client outside the room's `except` gets it, the excepted one does not.
#[tokio::test]
async fn an_emit_posted_to_one_node_reaches_clients_on_every_node() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--api-key", KEY])
        .cluster(2)
        .await
        .unwrap();
    // a client on node 1 in room "news"
    let mut child = spawn_js_script(
        "recovery.mjs",
        &json!({"urls": [nodes[1].url()], "transports": ["websocket"], "room": "news",
                "event": "headline", "expect": 2, "timeoutMs": 3000}),
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        if read_line(&mut out).await.unwrap()["event"] == "joined" {
            break;
        }
    }
    for n in 1..=2 {
        let body = json!({"rooms": ["news"], "event": "headline", "args": [{"n": n}, "second"]});
        let (status, answer) = post(nodes[0].addr(), Some(KEY), body.to_string().as_bytes()).await;
        assert_eq!((status, answer), (200, json!({"ok": true})));
    }
    // another room: not for this client
    let body = json!({"rooms": ["sports"], "event": "headline", "args": [{"n": 99}]});
    assert_eq!(
        post(nodes[0].addr(), Some(KEY), body.to_string().as_bytes())
            .await
            .0,
        200
    );
    let done = loop {
        let fact = read_line(&mut out).await.unwrap();
        if fact["event"] == "done" {
            break fact;
        }
    };
    let _ = child.wait().await;
    assert_eq!(done["received"], json!([1, 2]), "{done}");
    // the last argument of each event: the second element of `args`
    assert_eq!(done["offsets"], json!(["second", "second"]), "{done}");
    assert_eq!(
        metric_sum(&nodes, "sio_api_requests_total{outcome=\"ok\"}")
            .await
            .unwrap(),
        3.0
    );
}

/// Every refusal: no key, another key (401); not JSON, unknown field, no event, a
/// namespace not served (400); a body over SIO_MAX_PAYLOAD (413); and no API without a
/// key (404).
#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let node = NodeBuilder::new()
        .args(&["--api-key", KEY, "--max-payload", "2048"])
        .start()
        .await
        .unwrap();
    let addr = node.addr();
    let ok = json!({"event": "e", "args": [1]}).to_string();
    assert_eq!(post(addr, None, ok.as_bytes()).await.0, 401);
    assert_eq!(
        post(addr, Some("test-api-key-0123456780"), ok.as_bytes())
            .await
            .0,
        401
    );
    assert_eq!(post(addr, Some("short"), ok.as_bytes()).await.0, 401);
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "expected"),
        (br#"{"event":"e","room":"typo"}"#, "unknown field"),
        (br#"{"args":[1]}"#, "missing field"),
        (br#"{"event":""}"#, "must not be empty"),
        (br#"{"nsp":"/nope","event":"e"}"#, "not served"),
    ];
    for (body, says) in cases {
        let (status, answer) = post(addr, Some(KEY), body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["ok"], false);
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let big = json!({"event": "e", "args": ["x".repeat(4096)]}).to_string();
    let (status, answer) = post(addr, Some(KEY), big.as_bytes()).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(post(addr, Some(KEY), ok.as_bytes()).await.0, 200);
    let counted = |outcome: &str| {
        let name = format!("sio_api_requests_total{{outcome=\"{outcome}\"}}");
        let node = &node;
        async move { metric_sum(std::slice::from_ref(node), &name).await.unwrap() }
    };
    assert_eq!(counted("unauthorized").await, 3.0);
    assert_eq!(counted("bad_request").await, 5.0);
    assert_eq!(counted("too_large").await, 1.0);
    assert_eq!(counted("ok").await, 1.0);
    // without a key there is no API
    let plain = NodeBuilder::new().start().await.unwrap();
    assert_eq!(post(plain.addr(), Some(KEY), ok.as_bytes()).await.0, 404);
}

async fn post_to(addr: std::net::SocketAddr, path: &str, body: Value) -> u16 {
    post_at(addr, path, Some(KEY), body.to_string().as_bytes())
        .await
        .0
}

/// Room operations over HTTP, posted to one node, applied to a client of the other: it
/// joins `vip` (and gets what is emitted there), leaves it (and gets nothing more), and
/// is disconnected.
#[tokio::test]
async fn join_leave_and_disconnect_apply_on_every_node() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--api-key", KEY])
        .cluster(2)
        .await
        .unwrap();
    let mut child = spawn_js_script(
        "recovery.mjs",
        &json!({"urls": [nodes[1].url()], "transports": ["websocket"], "event": "vip-news",
                "expect": 2, "timeoutMs": 3000}),
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut next = async || read_line(&mut out).await.unwrap();
    assert_eq!(next().await["event"], "connect");
    let a = nodes[0].addr();
    let emit = |n: u32| json!({"rooms": ["vip"], "event": "vip-news", "args": [n]});
    assert_eq!(post_to(a, "/api/v1/emit", emit(1)).await, 200); // not in vip yet
    assert_eq!(
        post_to(a, "/api/v1/join", json!({"join": ["vip"]})).await,
        200
    );
    assert_eq!(post_to(a, "/api/v1/emit", emit(2)).await, 200);
    assert_eq!(
        post_to(a, "/api/v1/leave", json!({"leave": ["vip"]})).await,
        200
    );
    assert_eq!(post_to(a, "/api/v1/emit", emit(3)).await, 200);
    assert_eq!(
        post_to(a, "/api/v1/join", json!({"rooms": ["vip"], "join": ["x"]})).await,
        200
    );
    assert_eq!(post_to(a, "/api/v1/disconnect", json!({})).await, 200);
    let disconnect = next().await;
    assert_eq!(disconnect["event"], "disconnect", "{disconnect}");
    assert_eq!(disconnect["reason"], "io server disconnect", "{disconnect}");
    let done = loop {
        let fact = next().await;
        if fact["event"] == "done" {
            break fact;
        }
    };
    let _ = child.wait().await;
    assert_eq!(done["received"], json!([2]), "only while in vip: {done}");
    assert_eq!(
        post_to(a, "/api/v1/join", json!({"join": "not-a-list"})).await,
        400
    );
}

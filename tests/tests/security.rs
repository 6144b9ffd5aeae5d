//! Security checks of issue #8, end to end with real clients, real Redis and raw HTTP:
//! JWT forgeries, token room bounds, the CORS allowlist on every node and transport, the
//! forwarded marker, rate limits, Redis ACL users and TLS, and secrets kept out of logs.
//! Each test states what an attacker tries and asserts what the node answered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use sio_cluster_tests::clients::{js_scenario, read_line, spawn_js};
use sio_cluster_tests::files::TempDir;
use sio_cluster_tests::http::{http_get, polling_sid, raw_http};
use sio_cluster_tests::node::{NodeBuilder, metric_sum, urls};
use sio_cluster_tests::process::ProcessStart;
use sio_cluster_tests::redis::{TestPki, TestRedis};
use sio_cluster_tests::scenario::fanout;

const SECRET: &str = "test-secret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256_with(claims: Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn hs256(claims: Value) -> String {
    hs256_with(claims, SECRET.as_bytes())
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn rs256(claims: Value) -> String {
    let pem = std::fs::read(fixture("jwt-rs256-test-key.pem")).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap()
}

/// A token with header `{"alg":"none"}` and no signature, built by hand as an attacker would.
fn alg_none(claims: Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

/// Connects with `token` (the official client, `handshake` scenario) and returns the facts.
async fn try_token(url: &str, token: Option<String>) -> Value {
    js_scenario(json!({"scenario": "handshake", "url": url, "token": token}))
        .await
        .unwrap()
}

fn refused_with(facts: &Value, needle: &str) {
    assert_eq!(facts["connected"], false, "{facts}");
    let err = facts["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("connect_error: ") && err.contains(needle),
        "expected a connect_error containing {needle:?}: {facts}"
    );
}

/// Wrong signature, `alg: none`, expired, not yet valid, garbage and missing tokens are
/// refused with a connect_error naming the reason; the 60 s leeway is honoured both ways.
#[tokio::test]
async fn hs256_node_refuses_forged_and_stale_tokens() {
    let node = NodeBuilder::new()
        .args(&["--jwt-secret", SECRET])
        .start()
        .await
        .unwrap();
    let url = node.url();
    let t = now();
    let cases: Vec<(&str, Option<String>, Option<&str>)> = vec![
        (
            "valid",
            Some(hs256(json!({"sub": "u", "exp": t + 600}))),
            None,
        ),
        (
            "wrong signature",
            Some(hs256_with(json!({"sub": "u"}), b"not-the-secret")),
            Some("invalid token: InvalidSignature"),
        ),
        (
            "alg none",
            Some(alg_none(json!({"sub": "admin", "rooms": ["*"]}))),
            Some("invalid token"),
        ),
        (
            "expired an hour ago",
            Some(hs256(json!({"sub": "u", "exp": t - 3600}))),
            Some("invalid token: ExpiredSignature"),
        ),
        (
            "expired 30 s ago, within the 60 s leeway",
            Some(hs256(json!({"sub": "u", "exp": t - 30}))),
            None,
        ),
        (
            "valid only in an hour",
            Some(hs256(json!({"sub": "u", "nbf": t + 3600}))),
            Some("invalid token: ImmatureSignature"),
        ),
        (
            "valid in 30 s, within the 60 s leeway",
            Some(hs256(json!({"sub": "u", "nbf": t + 30}))),
            None,
        ),
        (
            "garbage",
            Some("garbage.garbage.garbage".into()),
            Some("invalid token"),
        ),
        (
            "not a JWT at all",
            Some("hello".into()),
            Some("invalid token"),
        ),
        ("missing", None, Some("authentication required")),
    ];
    let results = futures_util::future::join_all(
        cases
            .iter()
            .map(|(_, token, _)| try_token(&url, token.clone())),
    )
    .await;
    for ((what, _, expect), facts) in cases.iter().zip(&results) {
        match expect {
            None => assert_eq!(facts["connected"], true, "{what}: {facts}"),
            Some(needle) => refused_with(facts, needle),
        }
    }
    let refused = cases.iter().filter(|c| c.2.is_some()).count() as f64;
    assert_eq!(
        metric_sum(std::slice::from_ref(&node), "sio_connect_rejected_total")
            .await
            .unwrap(),
        refused
    );
    node.shutdown().await.unwrap();
}

/// An RS256 node: its own tokens pass; the classic confusion (an HS256 token whose HMAC
/// key is the node's RSA public key, which an attacker can know) and `alg: none` fail.
#[tokio::test]
async fn rs256_node_refuses_hs256_signed_with_its_public_key() {
    let public = fixture("jwt-rs256-test-pub.pem");
    let node = NodeBuilder::new()
        .args(&["--jwt-public-key", public.to_str().unwrap()])
        .start()
        .await
        .unwrap();
    let url = node.url();
    let public_pem = std::fs::read(&public).unwrap();
    let (ok, confused, none) = tokio::join!(
        try_token(&url, Some(rs256(json!({"sub": "u"})))),
        try_token(
            &url,
            Some(hs256_with(
                json!({"sub": "admin", "rooms": ["*"]}),
                &public_pem
            ))
        ),
        try_token(&url, Some(alg_none(json!({"sub": "admin"})))),
    );
    assert_eq!(ok["connected"], true, "{ok}");
    refused_with(&confused, "invalid token: InvalidAlgorithm");
    refused_with(&none, "invalid token");
    node.shutdown().await.unwrap();
}

/// A token limited to `team:*` can neither join nor publish into another user's room or
/// any room outside its patterns (even though SIO_CLIENT_PUBLISH allows every room), and
/// the victim receives nothing; its own rooms work.
#[tokio::test]
async fn token_rooms_bound_join_and_publish() {
    let node = NodeBuilder::new()
        .args(&["--jwt-secret", SECRET, "--client-publish", "*"])
        .start()
        .await
        .unwrap();
    let f = js_scenario(json!({
        "scenario": "authRooms",
        "url": node.url(),
        "victimToken": hs256(json!({"sub": "bob", "rooms": ["team:*"]})),
        "token": hs256(json!({"sub": "mallory", "rooms": ["team:*"]})),
        "rooms": ["user:bob", "admin", "team:red", "user:mallory"],
    }))
    .await
    .unwrap();
    for room in ["user:bob", "admin"] {
        assert_eq!(f["joins"][room]["ok"], false, "{room}: {f}");
        assert!(
            f["joins"][room]["error"]
                .as_str()
                .unwrap()
                .contains("not allowed to join"),
            "{f}"
        );
        assert_eq!(
            f["publishes"][room],
            json!({"ok": false, "error": format!("publishing to room {room:?} is not allowed")}),
            "{f}"
        );
    }
    for room in ["team:red", "user:mallory"] {
        assert_eq!(f["joins"][room], json!({"ok": true}), "{f}");
        assert_eq!(f["publishes"][room], json!({"ok": true}), "{f}");
    }
    assert_eq!(
        f["victimGot"],
        json!([]),
        "the victim received nothing: {f}"
    );
    node.shutdown().await.unwrap();
}

const WS_HEADERS: [(&str, &str); 4] = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

fn with_ws(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    WS_HEADERS.iter().chain(extra).copied().collect()
}

const FORBIDDEN: &str = r#"{"code":4,"message":"Forbidden"}"#;
const EVIL: (&str, &str) = ("Origin", "https://evil.example");
const GOOD: (&str, &str) = ("Origin", "https://app.example");

/// With SIO_CORS_ORIGINS set, a foreign Origin is refused with 403 code 4 on every kind
/// of request (polling handshake, preflight, websocket handshake, later polls and
/// upgrades of an existing session), also when the request reaches the session through
/// another node; allowed and same-origin requests pass and get the CORS headers.
#[tokio::test]
async fn cors_allowlist_holds_on_every_transport_and_node() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--cors-origins", "https://app.example"])
        .cluster(2)
        .await
        .unwrap();
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let hs = "/socket.io/?EIO=4&transport=polling";
    let ws = "/socket.io/?EIO=4&transport=websocket";

    // handshakes
    let (status, _, body) = raw_http(a, "GET", hs, &[EVIL], b"").await.unwrap();
    assert_eq!((status, body.as_str()), (403, FORBIDDEN));
    let (status, head, _) = raw_http(a, "GET", hs, &[GOOD], b"").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    let same_origin = format!("http://{a}");
    let (status, _, _) = raw_http(a, "GET", hs, &[("Origin", &same_origin)], b"")
        .await
        .unwrap();
    assert_eq!(status, 200, "a page served by the node itself");
    assert_eq!(raw_http(a, "GET", hs, &[], b"").await.unwrap().0, 200);
    let preflight = [EVIL, ("Access-Control-Request-Method", "POST")];
    assert_eq!(
        raw_http(a, "OPTIONS", hs, &preflight, b"").await.unwrap().0,
        403
    );
    let (status, head, body) = raw_http(a, "GET", ws, &with_ws(&[EVIL]), b"")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (403, FORBIDDEN), "{head}");
    let (status, head, _) = raw_http(a, "GET", ws, &with_ws(&[GOOD]), b"")
        .await
        .unwrap();
    assert_eq!(status, 101, "{head}");

    // an existing session on node A, reached directly and through node B
    let sid = polling_sid(a, &[GOOD]).await.unwrap();
    let poll = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let upgrade = format!("/socket.io/?EIO=4&transport=websocket&sid={sid}");
    for node in [a, b] {
        let (status, _, body) = raw_http(node, "POST", &poll, &[EVIL], b"40").await.unwrap();
        assert_eq!((status, body.as_str()), (403, FORBIDDEN), "POST via {node}");
        let (status, _, body) = raw_http(node, "GET", &poll, &[EVIL], b"").await.unwrap();
        assert_eq!((status, body.as_str()), (403, FORBIDDEN), "GET via {node}");
        let (status, _, body) = raw_http(node, "GET", &upgrade, &with_ws(&[EVIL]), b"")
            .await
            .unwrap();
        assert_eq!(
            (status, body.as_str()),
            (403, FORBIDDEN),
            "upgrade via {node}"
        );
    }
    // the allowed origin through node B: forwarded to A, served
    let (status, _, body) = raw_http(b, "POST", &poll, &[GOOD], b"40").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, body) = raw_http(b, "GET", &poll, &[GOOD], b"").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("40{\"sid\":"), "{body}");
    let (status, _, _) = raw_http(b, "GET", &upgrade, &with_ws(&[GOOD]), b"")
        .await
        .unwrap();
    assert_eq!(status, 101, "the upgrade is forwarded to the owner");
    assert!(metric_sum(&nodes, "sio_forwarded_total").await.unwrap() >= 3.0);
}

/// A client sending `x-sio-forwarded-by` itself gains nothing: handshakes still meet the
/// origin check and the rate limit, and a request for a session the node does not own is
/// answered 400 code 1 (before any 101) instead of being served; the session itself is
/// untouched and still reachable through that node.
#[tokio::test]
async fn a_forged_forwarded_marker_grants_nothing() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&[
            "--cors-origins",
            "https://app.example",
            "--handshake-rate",
            "0.001",
            "--handshake-burst",
            "2",
        ])
        .cluster(2)
        .await
        .unwrap();
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let marker = ("x-sio-forwarded-by", "node-0");
    let hs = "/socket.io/?EIO=4&transport=polling";

    let sid = polling_sid(a, &[]).await.unwrap();
    // handshakes on B with the marker: origin check and rate limit still apply
    let (status, _, body) = raw_http(b, "GET", hs, &[marker, EVIL], b"").await.unwrap();
    assert_eq!((status, body.as_str()), (403, FORBIDDEN));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(raw_http(b, "GET", hs, &[marker], b"").await.unwrap().0);
    }
    assert_eq!(statuses, [200, 200, 429]);

    // A's session, asked of B with the marker: refused, not served, no 101
    let poll = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let upgrade = format!("/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let unknown = r#"{"code":1,"message":"Session ID unknown"}"#;
    let (status, _, body) = raw_http(b, "POST", &poll, &[marker], b"40").await.unwrap();
    assert_eq!((status, body.as_str()), (400, unknown));
    let (status, head, body) = raw_http(b, "GET", &upgrade, &with_ws(&[marker]), b"")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (400, unknown), "{head}");
    // ... and with a foreign origin the origin check answers first, as for any request
    let (status, _, _) = raw_http(b, "GET", &poll, &[marker, EVIL], b"")
        .await
        .unwrap();
    assert!(status == 403 || status == 400, "{status}");

    // the session is intact: through B without the marker it is forwarded and served
    let (status, _, body) = raw_http(b, "POST", &poll, &[], b"40").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, body) = raw_http(b, "GET", &poll, &[], b"").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("40{\"sid\":"), "{body}");
}

/// Opens a raw polling handshake from a chosen loopback source address.
async fn handshake_from(source: &str, addr: std::net::SocketAddr) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let req = format!(
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text)
}

/// SIO_HANDSHAKE_RATE: past the burst, a client IP's handshakes get 429 with a JSON body
/// and Retry-After (the official client sees a connect_error with status 429); other IPs,
/// and the requests of sessions already open, are not affected; X-Forwarded-For counts
/// only from a trusted proxy. Off by default.
#[tokio::test]
async fn handshake_rate_limit_per_client_ip() {
    let node = NodeBuilder::new()
        .args(&["--handshake-rate", "0.001", "--handshake-burst", "3"])
        .start()
        .await
        .unwrap();
    let addr = node.addr();
    let hs = "/socket.io/?EIO=4&transport=polling";
    let sid = polling_sid(addr, &[]).await.unwrap();
    assert_eq!(raw_http(addr, "GET", hs, &[], b"").await.unwrap().0, 200);
    assert_eq!(raw_http(addr, "GET", hs, &[], b"").await.unwrap().0, 200);
    let (status, head, body) = raw_http(addr, "GET", hs, &[], b"").await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (
            429,
            r#"{"code":4,"message":"Too many handshakes from this address"}"#
        )
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: "),
        "{head}"
    );
    // a websocket handshake is a handshake too: 429 before any 101
    let ws = "/socket.io/?EIO=4&transport=websocket";
    assert_eq!(
        raw_http(addr, "GET", ws, &WS_HEADERS, b"").await.unwrap().0,
        429
    );
    // forging X-Forwarded-For does not help: the node trusts no proxy
    let xff = [("X-Forwarded-For", "198.51.100.9")];
    assert_eq!(raw_http(addr, "GET", hs, &xff, b"").await.unwrap().0, 429);
    // the official client: a connect_error carrying the status and the body
    let f = js_scenario(
        json!({"scenario": "connectError", "url": node.url(), "transports": ["polling"]}),
    )
    .await
    .unwrap();
    assert_eq!(f["connected"], false, "{f}");
    assert_eq!(f["description"], 429, "{f}");
    assert!(
        f["body"]
            .as_str()
            .unwrap_or("")
            .contains("Too many handshakes"),
        "{f}"
    );
    // the open session is not counted: its requests go on
    let poll = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, _, body) = raw_http(addr, "POST", &poll, &[], b"40").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    // another client IP has its own bucket
    assert_eq!(handshake_from("127.0.0.2", addr).await.0, 200);
    let text = http_get(addr, "/metrics").await.unwrap().1;
    assert!(
        text.contains("sio_rate_limited_total{limit=\"handshake\"} 4"),
        "{text}"
    );

    // behind a trusted proxy (here: loopback), the client is X-Forwarded-For's last hop
    let proxied = NodeBuilder::new()
        .args(&[
            "--handshake-rate",
            "0.001",
            "--handshake-burst",
            "1",
            "--trusted-proxies",
            "127.0.0.0/8",
        ])
        .start()
        .await
        .unwrap();
    let p = proxied.addr();
    let via = |chain: &'static str| [("X-Forwarded-For", chain)];
    assert_eq!(
        raw_http(p, "GET", hs, &via("203.0.113.1"), b"")
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        raw_http(p, "GET", hs, &via("203.0.113.1"), b"")
            .await
            .unwrap()
            .0,
        429
    );
    assert_eq!(
        raw_http(p, "GET", hs, &via("203.0.113.2"), b"")
            .await
            .unwrap()
            .0,
        200
    );
    // a client prepending a fake address is still counted as what the proxy saw
    let forged = via("203.0.113.99, 203.0.113.1");
    assert_eq!(raw_http(p, "GET", hs, &forged, b"").await.unwrap().0, 429);

    // default: no limit
    let open = NodeBuilder::new().start().await.unwrap();
    for _ in 0..30 {
        assert_eq!(
            raw_http(open.addr(), "GET", hs, &[], b"").await.unwrap().0,
            200
        );
    }
    node.shutdown().await.unwrap();
}

/// SIO_EVENT_RATE: a socket flooding events gets its burst through, then acks
/// `{ok:false,error:"rate limit exceeded: ..."}` and one `error` event, and is
/// disconnected ("io server disconnect") after 50 refusals in a row; another socket is
/// unaffected, and without the setting nothing is limited.
#[tokio::test]
async fn event_rate_limit_per_socket() {
    let node = NodeBuilder::new()
        .args(&[
            "--event-rate",
            "0.001",
            "--event-burst",
            "5",
            "--client-publish",
            "room-*",
        ])
        .start()
        .await
        .unwrap();
    let f = js_scenario(json!({
        "scenario": "flood", "url": node.url(), "count": 100, "expectDisconnect": true,
        "event": "publish",
        "companionEvents": 5,
    }))
    .await
    .unwrap();
    assert_eq!(f["ok"], 5, "{f}");
    assert_eq!(f["okIndexes"], json!([0, 1, 2, 3, 4]), "{f}");
    // 50 refusals disconnect it; acks still in flight then are never answered (counted
    // as unanswered below), so on a busy machine fewer refusals arrive
    let refused = f["refused"].as_u64().unwrap();
    assert!((1..=50).contains(&refused), "{f}");
    assert_eq!(
        f["firstRefusal"],
        json!({"ok": false, "error": "rate limit exceeded: at most 0.001/s burst 5 events"}),
        "{f}"
    );
    assert_eq!(
        f["ok"].as_u64().unwrap() + refused + f["unanswered"].as_u64().unwrap(),
        100,
        "{f}"
    );
    assert_eq!(f["errors"].as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f["errors"][0]["code"], "rate_limited", "{f}");
    assert_eq!(f["disconnectReason"], "io server disconnect", "{f}");
    assert_eq!(
        f["companionReplies"],
        json!(vec![json!({"ok": true}); 5]),
        "{f}"
    );
    let text = http_get(node.addr(), "/metrics").await.unwrap().1;
    assert!(
        text.contains("sio_rate_limited_total{limit=\"event_disconnect\"} 1"),
        "{text}"
    );

    // publish is limited the same way; a client within its burst never notices
    let calm = js_scenario(
        json!({"scenario": "flood", "url": node.url(), "count": 5, "event": "publish"}),
    )
    .await
    .unwrap();
    assert_eq!(calm["refused"], 0, "{calm}");
    assert_eq!(calm["errors"], json!([]), "{calm}");
    assert_eq!(calm["disconnectReason"], "io client disconnect", "{calm}");

    let open = NodeBuilder::new().start().await.unwrap();
    let f = js_scenario(json!({"scenario": "flood", "url": open.url(), "count": 300}))
        .await
        .unwrap();
    assert_eq!(
        (f["ok"].as_u64(), f["refused"].as_u64()),
        (Some(300), Some(0)),
        "{f}"
    );
    node.shutdown().await.unwrap();
}

/// A Redis ACL user (`redis://user:password@`) carries a cluster; a wrong password or
/// no credentials stop the node at start with a clear error, without a retry loop.
#[tokio::test]
async fn redis_acl_user() {
    let redis = TestRedis::start_with(&[
        "--user", "sio", "on", ">acl-pw", "~*", "&*", "+@all", "--user", "default", "off",
    ])
    .await
    .unwrap();
    let port = redis.port();
    let good = format!("redis://sio:acl-pw@127.0.0.1:{port}");
    let nodes = NodeBuilder::new()
        .redis(&good)
        .args(&["--client-publish", "room-*"])
        .cluster(2)
        .await
        .unwrap();
    let f = fanout(&urls(&nodes), "room-acl", 20, json!({}))
        .await
        .unwrap();
    assert_eq!(f["perMember"][1]["count"], 20, "{f}");

    for bad in [
        format!("redis://sio:wrong@127.0.0.1:{port}"),
        format!("redis://127.0.0.1:{port}"),
    ] {
        let started = Instant::now();
        let err = NodeBuilder::new()
            .redis(&bad)
            .start()
            .await
            .err()
            .expect("refused");
        let msg = format!("{err:#}");
        eprintln!("refused as expected: {msg}");
        assert!(msg.contains("cannot start cluster mode"), "{msg}");
        assert!(
            msg.contains("WRONGPASS") || msg.contains("NOAUTH") || msg.contains("Auth"),
            "{msg}"
        );
        assert!(
            !msg.contains("wrong@"),
            "the URL's password is not echoed: {msg}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "no retry loop");
    }
}

/// `rediss://` to a TLS-only redis-server whose certificate comes from a test CA:
/// nodes that trust the CA (SIO_REDIS_CA_FILE) form a cluster and a broadcast crosses
/// them; the emitter reaches their clients over TLS too; a node trusting another CA,
/// or only the system roots, stops at start with a certificate error.
#[tokio::test]
async fn redis_over_tls_with_a_private_ca() {
    let pki = TestPki::generate("good").unwrap();
    let redis = TestRedis::start_tls(&pki, &["--requirepass", "tls-pw"])
        .await
        .unwrap();
    let dir = TempDir::create("sio-tls").unwrap();
    let ca = dir.0.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let ca_str = ca.to_str().unwrap();
    let url = redis.url.replace("rediss://", "rediss://:tls-pw@");

    let nodes = NodeBuilder::new()
        .redis(&url)
        .args(&["--redis-ca-file", ca_str, "--client-publish", "room-*"])
        .cluster(2)
        .await
        .unwrap();
    let urls = urls(&nodes);
    let f = fanout(&urls, "room-tls", 20, json!({})).await.unwrap();
    assert_eq!(f["perMember"][0]["count"], 20, "{f}");
    assert_eq!(f["perMember"][1]["count"], 20, "{f}");

    // the emitter over TLS with the same CA
    let child = spawn_js(&json!({
        "scenario": "sink", "urls": urls, "clients": 2, "room": "tls-room",
        "event": "tls-news", "expect": 1, "waitMs": 15000,
    }))
    .unwrap();
    let mut child = child;
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line(&mut out).await.unwrap()["ready"], true);
    let emitter = sio_emitter::Emitter::connect_with_ca(&url, Some(&ca))
        .await
        .unwrap();
    emitter
        .to("tls-room")
        .emit("tls-news", [json!({"over": "tls"})])
        .await
        .unwrap();
    let facts = read_line(&mut out).await.unwrap();
    assert_eq!(facts["complete"], 2, "{facts}");
    let _ = child.wait().await;

    // a node that trusts another CA, or only the system roots: a clear, fast failure
    let other = TestPki::generate("other").unwrap();
    let other_ca = dir.0.join("other-ca.pem");
    std::fs::write(&other_ca, &other.ca_pem).unwrap();
    for ca_args in [vec!["--redis-ca-file", other_ca.to_str().unwrap()], vec![]] {
        let started = Instant::now();
        let err = NodeBuilder::new()
            .redis(&url)
            .args(&ca_args)
            .start()
            .await
            .err()
            .expect("untrusted certificate");
        let msg = format!("{err:#}");
        eprintln!("refused as expected: {msg}");
        assert!(msg.contains("cannot start cluster mode"), "{msg}");
        assert!(msg.to_lowercase().contains("certificate"), "{msg}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no retry loop: {msg}"
        );
    }
    let err = sio_emitter::Emitter::connect_with_ca(&url, Some(&other_ca))
        .await
        .expect_err("the emitter refuses the certificate too");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

/// The JWT secret, the Redis password and client tokens never appear in a node's output,
/// at debug level, through start-up, refused handshakes, a Redis outage and a refused
/// Redis password.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    const JWT_SECRET: &str = "jwt-secret-c0ffee-4242";
    const REDIS_PW: &str = "redis-pw-7f3a9c51";
    let redis = TestRedis::start_with(&["--requirepass", REDIS_PW])
        .await
        .unwrap();
    let url = format!("redis://:{REDIS_PW}@127.0.0.1:{}", redis.port());
    let env = [("SIO_JWT_SECRET", JWT_SECRET), ("RUST_LOG", "debug")];
    let node = NodeBuilder::new()
        .redis(&url)
        .env(&env)
        .start_process()
        .await
        .expect("the node started");
    let log = node.log();
    let good = hs256_with(json!({"sub": "u"}), JWT_SECRET.as_bytes());
    let forged = hs256_with(json!({"sub": "u"}), b"guess");
    let node_url = node.url();
    let (ok, bad) = tokio::join!(
        try_token(&node_url, Some(good.clone())),
        try_token(&node_url, Some(forged.clone())),
    );
    assert_eq!(ok["connected"], true, "{ok}");
    refused_with(&bad, "InvalidSignature");
    // a Redis outage: the node notices (not ready) and logs it
    redis.container().stop().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_get(node.addr(), "/readyz").await.unwrap().0 != 503 {
        assert!(
            Instant::now() < deadline,
            "the node never noticed Redis went away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(node);
    redis.container().start().await.unwrap();

    // a refused password: the node exits with an error
    let port = redis
        .container()
        .get_host_port_ipv4(testcontainers::core::IntoContainerPort::tcp(6379))
        .await
        .unwrap();
    let wrong = format!("redis://:{REDIS_PW}-wrong@127.0.0.1:{port}");
    let start = NodeBuilder::new()
        .redis(&wrong)
        .env(&env)
        .try_start_process()
        .await
        .unwrap();
    let ProcessStart::Exited {
        status,
        log: fail_log,
    } = start
    else {
        panic!("a refused password stops the node");
    };
    assert_eq!(status.code(), Some(1));

    let text = format!("{}\n{}", log.text(), fail_log.text());
    assert!(
        text.contains("redis=redis://:***@127.0.0.1"),
        "masked URL in the config line"
    );
    assert!(text.contains("handshake refused"), "the refusal is logged");
    assert!(
        text.contains("sio-server failed"),
        "the Redis failure is logged"
    );
    for secret in [JWT_SECRET, REDIS_PW, good.as_str(), forged.as_str()] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into the log:\n{}",
            text.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

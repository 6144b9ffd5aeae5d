//! Connection state recovery (issue #18) with the official client: a client that loses its
//! connection and reconnects, to another node, or because its node was SIGKILLed, gets
//! `socket.recovered === true`, its rooms back, and every broadcast it missed exactly once
//! and in order, on websocket, polling and upgrading transports; forged, garbage or stolen
//! pids get a new session. In a mixed cluster the client recovers from a Rust node onto a
//! real Node.js node (socket.io 4.8 + `@socket.io/redis-streams-adapter` 0.3.1) and back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use serde_json::{Value, json};
use sio_adapter_redis::AdapterMode;
use sio_adapter_redis::protocol::streams::StreamsOptions;
use sio_cluster_tests::clients::{NodePeer, read_line, spawn_js_script};
use sio_cluster_tests::node::{NodeBuilder, metric_sum};
use sio_cluster_tests::redis::TestRedis;
use sio_emitter::Emitter;
use tokio::io::BufReader;
use tokio::process::Child;

const SECRET: &str = "recovery-secret";
const WINDOW_MS: &str = "20000";

fn window_ms() -> u64 {
    WINDOW_MS.parse().unwrap()
}

/// A node in streams mode with recovery on.
fn node(redis: &TestRedis) -> NodeBuilder {
    NodeBuilder::new().redis(&redis.url).args(&[
        "--redis-mode",
        "streams",
        "--recovery-window-ms",
        WINDOW_MS,
    ])
}

fn token(sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": sub, "exp": exp, "rooms": ["news"]}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn emitter(redis: &TestRedis) -> Emitter {
    Emitter::connect(&redis.url)
        .await
        .unwrap()
        .with_mode(AdapterMode::Streams)
        .with_streams(StreamsOptions::default())
}

/// A running `recovery.mjs` client and the facts it printed so far.
struct Client {
    child: Child,
    out: BufReader<tokio::process::ChildStdout>,
    facts: Vec<Value>,
}

impl Client {
    fn spawn(opts: Value) -> Self {
        let mut child = spawn_js_script("recovery.mjs", &opts).unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            out,
            facts: Vec::new(),
        }
    }

    /// Reads facts until one of `event` (returned).
    async fn until(&mut self, event: &str) -> Value {
        loop {
            let fact = read_line(&mut self.out).await.unwrap_or_else(|e| {
                panic!("{e}; facts so far: {:?}", self.facts);
            });
            self.facts.push(fact.clone());
            if fact["event"] == event {
                return fact;
            }
        }
    }

    async fn done(mut self) -> Value {
        let done = self.until("done").await;
        let _ = self.child.wait().await;
        done
    }
}

/// Publishes `n` numbered events `n` to room `news`, one every `every`.
async fn publish(emitter: &Emitter, range: std::ops::RangeInclusive<u32>, every: Duration) {
    for i in range {
        emitter.to("news").emit("n", [i]).await.unwrap();
        tokio::time::sleep(every).await;
    }
}

/// Every number once, in order; every reconnect recovered with the first pid.
fn assert_recovered_all(done: &Value, expect: u32) {
    let received: Vec<u64> = done["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let want: Vec<u64> = (1..=u64::from(expect)).collect();
    assert_eq!(received, want, "lost, duplicated or reordered: {done}");
    let connects = done["connects"].as_array().unwrap();
    assert!(connects.len() >= 2, "no reconnect: {done}");
    assert_eq!(connects[0]["recovered"], false, "{done}");
    let pid = &connects[0]["pid"];
    assert!(pid.is_string(), "no pid in the CONNECT reply: {done}");
    for c in &connects[1..] {
        assert_eq!(
            c["recovered"], true,
            "a reconnect was not recovered: {done}"
        );
        assert_eq!(&c["pid"], pid, "{done}");
    }
    // the offset the client keeps is a stream id
    let offset = done["lastOffset"].as_str().unwrap();
    assert!(
        sio_adapter_redis::protocol::streams::is_stream_id(offset),
        "{offset}"
    );
}

/// A client on `from` that joins `news` loses its connection after 15 of 40 broadcasts
/// (published to `news` by the emitter, one every 15 ms) and reconnects to `to`. Returns
/// its `done` facts. Numbers 16 to 20 are published at once when the client reports its
/// disconnect, so they are surely missed (its first reconnect attempt waits 50 to 150 ms);
/// the rest are published while it reconnects and is caught up.
async fn blip_from_to(emitter: &Emitter, from: &str, to: &str, transports: Value) -> Value {
    let mut client = Client::spawn(json!({
        "urls": [from, to],
        "transports": transports,
        "room": "news",
        "expect": 40,
        "blipAfter": 15,
    }));
    let joined = client.until("joined").await;
    assert_eq!(joined["reply"]["ok"], true, "{joined}");
    publish(emitter, 1..=15, Duration::from_millis(15)).await;
    client.until("disconnect").await;
    publish(emitter, 16..=20, Duration::ZERO).await;
    publish(emitter, 21..=40, Duration::from_millis(15)).await;
    let done = client.done().await;
    println!("{done}");
    done
}

/// The client loses its connection after 15 of 40 broadcasts and reconnects to the other
/// node: it is recovered there and gets all 40, once each, in order.
async fn blip_and_recover_on_another_node(transports: Value) {
    let redis = TestRedis::start().await.unwrap();
    let nodes = node(&redis).cluster(2).await.unwrap();
    let emitter = emitter(&redis).await;
    let done = blip_from_to(&emitter, &nodes[0].url(), &nodes[1].url(), transports).await;
    assert_recovered_all(&done, 40);
    assert!(
        metric_sum(&nodes, "sio_recovery_total{outcome=\"recovered\"}")
            .await
            .unwrap()
            >= 1.0
    );
}

/// The control: the same blip on nodes without recovery (streams mode alone) loses the
/// broadcasts published while the client was away, and nothing is `recovered`.
#[tokio::test]
async fn without_recovery_the_same_blip_loses_broadcasts() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--redis-mode", "streams"])
        .cluster(2)
        .await
        .unwrap();
    let emitter = emitter(&redis).await;
    let mut client = Client::spawn(json!({
        "urls": [nodes[0].url(), nodes[1].url()],
        "transports": ["websocket"],
        "room": "news",
        "expect": 40,
        "blipAfter": 15,
        "timeoutMs": 3000,
    }));
    client.until("joined").await;
    publish(&emitter, 1..=40, Duration::from_millis(15)).await;
    let done = client.done().await;
    let received = done["received"].as_array().unwrap().len();
    assert!(received < 40, "nothing lost without recovery? {done}");
    let connects = done["connects"].as_array().unwrap();
    assert!(
        connects
            .iter()
            .all(|c| c["recovered"] != true && c["pid"].is_null()),
        "{done}"
    );
}

#[tokio::test]
async fn a_websocket_client_recovers_on_another_node_with_every_broadcast_once_in_order() {
    blip_and_recover_on_another_node(json!(["websocket"])).await;
}

#[tokio::test]
async fn a_polling_client_recovers_on_another_node_with_every_broadcast_once_in_order() {
    blip_and_recover_on_another_node(json!(["polling"])).await;
}

#[tokio::test]
async fn an_upgrading_client_recovers_on_another_node_with_every_broadcast_once_in_order() {
    blip_and_recover_on_another_node(json!(["polling", "websocket"])).await;
}

/// The client's node is SIGKILLed mid-stream: its session was in Redis all along, so the
/// client recovers on the survivor with everything published meanwhile.
#[tokio::test]
async fn the_clients_of_a_sigkilled_node_recover_on_a_survivor() {
    let redis = TestRedis::start().await.unwrap();
    let mut doomed = node(&redis).start_process().await.unwrap();
    let survivor = node(&redis).start().await.unwrap();
    let emitter = emitter(&redis).await;
    let mut client = Client::spawn(json!({
        "urls": [doomed.url(), survivor.url()],
        "transports": ["websocket"],
        "room": "news",
        "expect": 40,
    }));
    client.until("joined").await;
    publish(&emitter, 1..=10, Duration::from_millis(15)).await;
    doomed.kill();
    publish(&emitter, 11..=40, Duration::from_millis(15)).await;
    let done = client.done().await;
    println!("{done}");
    assert_recovered_all(&done, 40);
}

/// A pid is bound to its identity: another token presenting it gets a new session (and the
/// owner's session is still there for the owner); garbage pid and offset values get a new
/// session too, never an error.
#[tokio::test]
async fn stolen_forged_and_garbage_pids_get_a_new_session() {
    let redis = TestRedis::start().await.unwrap();
    let server = node(&redis)
        .args(&["--jwt-secret", SECRET])
        .start()
        .await
        .unwrap();
    let url = server.url();
    let emitter = emitter(&redis).await;
    // alice connects and gets a pid
    let mut alice = Client::spawn(json!({
        "urls": [url],
        "transports": ["websocket"],
        "room": "news",
        "auth": {"token": token("alice")},
        "expect": 20,
        "blipAfter": 10,
    }));
    let first = alice.until("connect").await;
    let alice_pid = first["pid"].as_str().unwrap().to_string();
    alice.until("joined").await;
    publish(&emitter, 1..=5, Duration::from_millis(10)).await;
    // mallory presents alice's pid with her own token, and an offset
    let attempts = [
        json!({"token": token("mallory"), "pid": alice_pid, "offset": "0-0"}),
        json!({"token": token("mallory"), "pid": alice_pid}),
        json!({"token": token("mallory"), "pid": 42, "offset": {"$gt": ""}}),
        json!({"token": token("mallory"), "pid": "../../etc", "offset": "9999999999999-0"}),
        json!({"token": token("mallory"), "pid": "x".repeat(10_000), "offset": "-1"}),
    ];
    for auth in attempts {
        let facts = Client::spawn(json!({
            "urls": [url],
            "transports": ["websocket"],
            "auth": auth,
            "stopAfterConnect": true,
        }))
        .done()
        .await;
        let c = &facts["connects"][0];
        assert_eq!(c["recovered"], false, "{auth}: {facts}");
        assert!(c["pid"].is_string(), "{facts}");
        assert_ne!(c["pid"], Value::from(alice_pid.clone()), "{auth}: {facts}");
    }
    // alice's session survived the attempts: her blip is recovered
    publish(&emitter, 6..=20, Duration::from_millis(10)).await;
    let done = alice.done().await;
    assert_recovered_all(&done, 20);
    let refused = metric_sum(
        std::slice::from_ref(&server),
        "sio_recovery_total{outcome=\"refused\"}",
    )
    .await
    .unwrap();
    assert_eq!(refused, 2.0, "mallory's two tries with alice's pid");
}

/// The demo chat: a `/chat` client whose node drains (SIGTERM) reconnects to another node
/// and gets the messages it missed, not the history again: no gap, no repeat.
#[tokio::test]
async fn the_demo_chat_shows_no_gap_after_a_node_restart() {
    let redis = TestRedis::start().await.unwrap();
    let mut draining = node(&redis).start_process().await.unwrap();
    let other = node(&redis).start().await.unwrap();
    let emitter = emitter(&redis).await;
    let mut client = Client::spawn(json!({
        "urls": [draining.url(), other.url()],
        "nsp": "/chat",
        "event": "chat",
        "transports": ["websocket"],
        "expect": 30,
    }));
    client.until("connect").await;
    let say = |range: std::ops::RangeInclusive<u32>| {
        let emitter = &emitter;
        async move {
            for i in range {
                emitter
                    .of("/chat")
                    .emit(
                        "chat",
                        [json!({"n": i, "name": "job", "text": format!("#{i}")})],
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        }
    };
    say(1..=10).await;
    let (stopped, ()) = tokio::join!(draining.terminate(Duration::from_secs(15)), say(11..=30));
    assert_eq!(stopped.unwrap(), Some(0));
    let done = client.done().await;
    println!("{done}");
    assert_recovered_all(&done, 30);
    assert_eq!(
        done["histories"], 1,
        "the history once, on the first connect: {done}"
    );
}

/// A mixed cluster: a Rust node and a real Node.js node (socket.io 4.8 +
/// `@socket.io/redis-streams-adapter` 0.3.1, recovery on), the same window.
async fn mixed(redis: &TestRedis) -> (sio_cluster_tests::node::TestNode, NodePeer) {
    let rust = node(redis).start().await.unwrap();
    let peer = NodePeer::start_streams_with_recovery(redis, window_ms())
        .await
        .unwrap();
    (rust, peer)
}

/// A session made on a Rust node is restored by a Node.js node of the same cluster: the
/// session's format, its key and the offsets are `@socket.io/redis-streams-adapter`'s, so
/// Node finds the session, finds the client's offset in the stream and replays what the
/// client missed.
#[tokio::test]
async fn a_client_recovers_from_a_rust_node_onto_a_node_js_node() {
    let redis = TestRedis::start().await.unwrap();
    let (rust, peer) = mixed(&redis).await;
    let emitter = emitter(&redis).await;
    let done = blip_from_to(&emitter, &rust.url(), &peer.url, json!(["websocket"])).await;
    assert_recovered_all(&done, 40);
}

/// A session a Node.js node persisted (on the transport close: `{sid, pid, rooms, data}`,
/// its rooms holding Node's own socket id, its data Node's `socket.data`) is restored by a
/// Rust node, which catches the client up from the offset the client holds.
#[tokio::test]
async fn a_client_recovers_from_a_node_js_node_onto_a_rust_node() {
    let redis = TestRedis::start().await.unwrap();
    let (rust, peer) = mixed(&redis).await;
    let emitter = emitter(&redis).await;
    let done = blip_from_to(&emitter, &peer.url, &rust.url(), json!(["websocket"])).await;
    assert_recovered_all(&done, 40);
    let recovered = metric_sum(
        std::slice::from_ref(&rust),
        "sio_recovery_total{outcome=\"recovered\"}",
    )
    .await
    .unwrap();
    assert_eq!(recovered, 1.0);
}

/// python-socketio 5.x has no client side for recovery (no pid sent: a new session each
/// time); with recovery on its handlers get each broadcast's offset as an extra last
/// argument, as Node's clients do.
#[tokio::test]
async fn python_socketio_gets_the_offset_as_a_last_argument_and_new_sessions() {
    let redis = TestRedis::start().await.unwrap();
    let server = node(&redis)
        .args(&["--client-publish", "room-*"])
        .start()
        .await
        .unwrap();
    let facts = sio_cluster_tests::clients::py_script("recovery.py", &[&server.url()])
        .await
        .unwrap();
    let args = facts["args"].as_array().unwrap();
    assert_eq!(args.len(), 2, "{facts}");
    assert_eq!(args[0], json!({"from": "python"}), "{facts}");
    let offset = args[1].as_str().unwrap();
    assert!(
        sio_adapter_redis::protocol::streams::is_stream_id(offset),
        "{facts}"
    );
    let new = metric_sum(
        std::slice::from_ref(&server),
        "sio_recovery_total{outcome=\"new\"}",
    )
    .await
    .unwrap();
    assert_eq!(new, 1.0, "python-socketio sends no pid");
}

/// Beyond Node: a client that loses its connection before it received any event has a
/// pid but no offset; it still recovers, from where its session started, and gets what
/// was published while it was away.
#[tokio::test]
async fn a_client_without_an_offset_yet_still_recovers() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = node(&redis).cluster(2).await.unwrap();
    let emitter = emitter(&redis).await;
    let mut client = Client::spawn(json!({
        "urls": [nodes[0].url(), nodes[1].url()],
        "transports": ["websocket"],
        "room": "news",
        "expect": 20,
        "blipOnJoin": true,
    }));
    client.until("disconnect").await;
    publish(&emitter, 1..=10, Duration::ZERO).await;
    publish(&emitter, 11..=20, Duration::from_millis(15)).await;
    let done = client.done().await;
    println!("{done}");
    assert_recovered_all(&done, 20);
}

/// Claiming a session is one compare-and-set: the stored session becomes the recovering
/// socket's at once (never absent, so a reconnect that fails half-way can try again), and
/// a second claim of the value read before (a racing reconnect with the same pid) fails.
#[tokio::test]
async fn a_claim_replaces_the_session_in_one_step_and_only_once() {
    use sio_adapter_redis::{RedisAdapterConfig, RedisCluster, Session};
    let redis = TestRedis::start().await.unwrap();
    let config = RedisAdapterConfig::default()
        .with_mode(AdapterMode::Streams)
        .with_recovery(Duration::from_secs(30));
    let cluster = RedisCluster::connect(&redis.url, config).await.unwrap();
    let old = Session {
        sid: "aaaaaaaaaaaaaaaa".into(),
        pid: "p1".into(),
        rooms: vec!["aaaaaaaaaaaaaaaa".into(), "news".into()],
        data: sio_adapter_redis::rmpv::Value::Nil,
        offset: Some("0-0".into()),
    };
    cluster
        .save_sessions(std::slice::from_ref(&old))
        .await
        .unwrap();
    let (loaded, raw) = cluster.load_session("p1").await.unwrap().unwrap();
    assert_eq!(loaded, old);
    let new = Session {
        sid: "bbbbbbbbbbbbbbbb".into(),
        rooms: vec!["bbbbbbbbbbbbbbbb".into(), "news".into()],
        ..old.clone()
    };
    assert!(cluster.claim_session(&raw, &new).await.unwrap());
    let (now, _) = cluster.load_session("p1").await.unwrap().unwrap();
    assert_eq!(now, new, "the session is the new socket's, never absent");
    let ttl: i64 = redis
        .cli(&["PTTL", "sio:session:p1"])
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        (1..=30_000).contains(&ttl),
        "expires within the window: {ttl}"
    );
    let racer = Session {
        sid: "cccccccccccccccc".into(),
        ..old.clone()
    };
    assert!(
        !cluster.claim_session(&raw, &racer).await.unwrap(),
        "a second claim of the same read loses"
    );
    assert_eq!(cluster.load_session("p1").await.unwrap().unwrap().0, new);
    assert!(cluster.load_session("nope").await.unwrap().is_none());
    cluster.close(Duration::from_secs(1)).await;
}

/// Broadcasts made by a node itself (an official client's `publish` through the gateway on
/// node 0), not by the emitter: the subscriber on node 0 loses its connection after 15 and
/// recovers on node 1 with all 40, once each, in order.
#[tokio::test]
async fn broadcasts_published_through_the_gateway_are_recovered_too() {
    let redis = TestRedis::start().await.unwrap();
    let nodes = node(&redis)
        .args(&["--client-publish", "news"])
        .cluster(2)
        .await
        .unwrap();
    let client = Client::spawn(json!({
        "urls": [nodes[0].url(), nodes[1].url()],
        "transports": ["websocket"],
        "room": "news",
        "expect": 40,
        "blipAfter": 15,
        "publish": {"url": nodes[0].url(), "count": 40, "everyMs": 15},
    }));
    let done = client.done().await;
    println!("{done}");
    assert_recovered_all(&done, 40);
}

/// Away longer than the window: the session expired, so the reconnect is a new session
/// (`recovered` false, a new pid), and nothing is replayed.
#[tokio::test]
async fn a_client_away_longer_than_the_window_gets_a_new_session() {
    let redis = TestRedis::start().await.unwrap();
    let server = NodeBuilder::new()
        .redis(&redis.url)
        .args(&["--redis-mode", "streams", "--recovery-window-ms", "600"])
        .start()
        .await
        .unwrap();
    let emitter = emitter(&redis).await;
    let mut client = Client::spawn(json!({
        "urls": [server.url()],
        "transports": ["websocket"],
        "room": "news",
        "expect": 3,
        "blipAfter": 1,
        "reconnectionDelay": 1500,
        "timeoutMs": 5000,
    }));
    client.until("joined").await;
    publish(&emitter, 1..=1, Duration::ZERO).await;
    client.until("disconnect").await;
    publish(&emitter, 2..=3, Duration::ZERO).await;
    let done = client.done().await;
    let connects = done["connects"].as_array().unwrap();
    assert_eq!(connects.len(), 2, "{done}");
    assert_ne!(connects[1]["recovered"], true, "{done}");
    assert_ne!(connects[1]["pid"], connects[0]["pid"], "{done}");
    assert_eq!(done["received"], json!([1]), "nothing replayed: {done}");
    let unknown = metric_sum(
        std::slice::from_ref(&server),
        "sio_recovery_total{outcome=\"unknown\"}",
    )
    .await
    .unwrap();
    assert_eq!(unknown, 1.0, "{done}");
}

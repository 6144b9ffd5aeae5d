//! Faults: Redis unreachable at start, Redis restarted mid-traffic, one node's link to
//! Redis cut or black-holed, a node killed under load, a slow consumer. Real Redis
//! (testcontainers), real node processes, real socket.io clients; each test prints its
//! measured outcome (`FAULT ...` lines, collected in RELIABILITY.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use serde_json::{Value, json};
use sio_cluster_tests::clients::{finish, read_line, spawn_js_script};
use sio_cluster_tests::faults::{LinkState, ReadyWatch, TcpProxy, epoch_ms};
use sio_cluster_tests::http::{
    SESSION_UNKNOWN, assert_session_served, http_get, metric_at, polling_sid,
};
use sio_cluster_tests::node::NodeBuilder;
use sio_cluster_tests::redis::TestRedis;
use tokio::io::BufReader;
use tokio::process::Child;

/// A Redis (`redis-server` with extra `args`) reached through a [`TcpProxy`].
async fn redis_behind_proxy(args: &[&str]) -> (TestRedis, TcpProxy) {
    let redis = TestRedis::start_with(args).await.unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], redis.port()).into())
        .await
        .unwrap();
    (redis, proxy)
}

/// The faults tests' node process on `redis_url`: id `id`, clients may publish to
/// `room-*`.
fn node(id: &str, redis_url: &str) -> NodeBuilder {
    NodeBuilder::new()
        .redis(redis_url)
        .id(id)
        .env(&[("SIO_CLIENT_PUBLISH", "room-*")])
}

/// Starts the `stream` traffic (tests/js/faults.mjs) and waits until every subscriber is
/// in the room.
async fn stream(opts: Value) -> (Child, BufReader<tokio::process::ChildStdout>) {
    let mut child = spawn_js_script("faults.mjs", &opts).unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let ready = read_line(&mut out).await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    (child, out)
}

async fn stream_facts(child: Child, mut out: BufReader<tokio::process::ChildStdout>) -> Value {
    let facts = read_line(&mut out).await.unwrap();
    let _ = finish(child, "faults.mjs stream").await;
    assert!(facts.get("error").is_none(), "{facts}");
    facts
}

/// The newest publish time of a message some subscriber missed (0: none missed).
fn last_lost_sent_at(facts: &Value) -> u64 {
    facts["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["lastSentAt"].as_u64().unwrap())
        .max()
        .unwrap_or(0)
}

/// A node whose Redis is unreachable starts anyway: `/healthz` answers, `/readyz` and
/// socket.io say 503, it logs each retry with a growing delay, and it becomes ready by
/// itself once Redis answers.
#[tokio::test]
async fn redis_unreachable_at_start_node_waits_not_ready_then_serves() {
    let (_redis, proxy) = redis_behind_proxy(&[]).await;
    proxy.set(LinkState::Down);
    let mut node = NodeBuilder::new()
        .redis(&proxy.redis_url())
        .id("late")
        .spawn_process()
        .await
        .unwrap();
    let (status, body) = http_get(node.addr(), "/healthz").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("starting"), "{body}");
    let (status, body) = http_get(node.addr(), "/readyz").await.unwrap();
    assert_eq!(status, 503, "{body}");
    let (status, body) = http_get(node.addr(), "/socket.io/?EIO=4&transport=polling")
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Redis not reachable"), "{body}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(node.is_running(), "the node keeps waiting");
    let retries: Vec<Value> = node
        .log()
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .or(v["message"].as_str())
                .is_some_and(|m| m.starts_with("Redis not reachable yet"))
        })
        .collect();
    assert!(retries.len() >= 3, "each retry is logged: {retries:?}");
    let delays: Vec<u64> = retries
        .iter()
        .map(|v| {
            v["fields"]["retry_in_ms"]
                .as_u64()
                .or(v["retry_in_ms"].as_u64())
                .unwrap()
        })
        .collect();
    assert!(
        delays.windows(2).all(|w| w[1] >= w[0]),
        "backoff grows: {delays:?}"
    );
    assert!(delays[1] > delays[0], "backoff grows: {delays:?}");

    let watch = ReadyWatch::start(node.addr());
    let restored = epoch_ms();
    proxy.set(LinkState::Pass);
    let ready_at = watch.wait_for(200, Duration::from_secs(15)).await.unwrap();
    println!(
        "FAULT redis-unreachable-at-start: {} retries logged (delays {delays:?} ms), ready {} ms after Redis came back",
        retries.len(),
        ready_at.saturating_sub(restored)
    );
    let (status, body) = http_get(node.addr(), "/socket.io/?EIO=4&transport=polling")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("0{"), "{body}");
}

/// Redis stops and starts again while a publisher streams 50 messages/s to subscribers
/// on two nodes: the nodes stay up, `/readyz` goes 503 and back to 200, the
/// subscriptions come back and cross-node deliveries resume; subscribers on the
/// publisher's own node miss nothing. The messages lost in the gap are counted.
#[tokio::test]
async fn redis_restart_mid_traffic_nodes_recover() {
    // without persistence, as Redis often runs as a cache: a restart loses every key
    let (redis, proxy) = redis_behind_proxy(&["--save", "", "--appendonly", "no"]).await;
    let url = proxy.redis_url();
    let mut a = node("restart-a", &url).start_process().await.unwrap();
    let mut b = node("restart-b", &url).start_process().await.unwrap();
    let (wa, wb) = (ReadyWatch::start(a.addr()), ReadyWatch::start(b.addr()));
    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": a.url(), "rate": 50, "durationMs": 14000,
        "subscribers": [{"url": a.url(), "n": 10}, {"url": b.url(), "n": 10}],
        "settleMs": 5000, "waitMs": 15000,
    }))
    .await;

    // a session of node a's, to be continued through node b after the restart
    let sid = polling_sid(a.addr(), &[]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = epoch_ms();
    redis.container().stop().await.unwrap();
    wa.wait_for(503, Duration::from_secs(10)).await.unwrap();
    wb.wait_for(503, Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.container().start().await.unwrap();
    let port = redis.container().get_host_port_ipv4(6379).await.unwrap();
    proxy.set_upstream(([127, 0, 0, 1], port).into());
    let up = epoch_ms();
    let ready_a = wa.wait_for(200, Duration::from_secs(20)).await.unwrap();
    let ready_b = wb.wait_for(200, Duration::from_secs(20)).await.unwrap();

    // The restarted Redis has lost every key: the nodes wrote their registrations and
    // a's session entries again on reconnecting, so b still forwards a's session.
    assert_eq!(
        redis
            .cli(&["get", &format!("socket.io:sid:{sid}")])
            .await
            .unwrap()
            .trim(),
        "restart-a",
        "a's session entry is back"
    );
    // b forwards a's session
    assert_session_served(b.addr(), &sid).await;

    let f = stream_facts(child, out).await;
    assert!(a.is_running() && b.is_running(), "no node crashed");
    let local = &f["groups"][a.url()];
    let remote = &f["groups"][b.url()];
    assert_eq!(
        local["received"], local["expected"],
        "local deliveries go on: {f}"
    );
    assert_eq!(local["outOfOrder"], 0, "{f}");
    assert_eq!(remote["outOfOrder"], 0, "{f}");
    assert_eq!(local["disconnects"], 0, "clients stay connected: {f}");
    assert_eq!(remote["disconnects"], 0, "clients stay connected: {f}");
    let last_lost = last_lost_sent_at(&f);
    let ready = ready_a.max(ready_b);
    assert!(
        last_lost <= ready + 1000,
        "deliveries resume once ready: last lost message sent at {last_lost}, ready at {ready}: {f}"
    );
    println!(
        "FAULT redis-restart: Redis down {} ms; nodes ready again {} / {} ms after Redis came back; {} of {} messages lost for the other node's subscribers (gaps {}), 0 for the publisher's node; last lost message published {} after Redis came back",
        up - down,
        ready_a.saturating_sub(up),
        ready_b.saturating_sub(up),
        f["lostSeqs"],
        f["sent"],
        f["gaps"],
        if last_lost == 0 {
            "(none lost)".to_string()
        } else {
            format!("{} ms", last_lost as i64 - up as i64)
        },
    );
}

/// One node's link to Redis is cut (connections reset), restored, then black-holed
/// (silence), restored: that node goes not-ready each time and comes back; the other
/// node stays ready and keeps delivering to its clients throughout.
#[tokio::test]
async fn one_node_losing_redis_goes_not_ready_others_keep_delivering() {
    // only node b goes through the proxy
    let (redis, proxy) = redis_behind_proxy(&[]).await;
    let mut a = node("link-a", &redis.url).start_process().await.unwrap();
    let mut b = node("link-b", &proxy.redis_url())
        .start_process()
        .await
        .unwrap();
    let (wa, wb) = (ReadyWatch::start(a.addr()), ReadyWatch::start(b.addr()));
    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": a.url(), "rate": 50, "durationMs": 24000,
        "subscribers": [{"url": a.url(), "n": 10}, {"url": b.url(), "n": 10}],
        "settleMs": 5000, "waitMs": 15000,
    }))
    .await;

    let mut report = Vec::new();
    for mode in [LinkState::Down, LinkState::Blackhole] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cut = epoch_ms();
        proxy.set(mode);
        let not_ready = wb.wait_for(503, Duration::from_secs(10)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let restored = epoch_ms();
        proxy.set(LinkState::Pass);
        let ready = wb.wait_for(200, Duration::from_secs(20)).await.unwrap();
        report.push(format!(
            "{mode:?}: not ready after {} ms, ready {} ms after restore",
            not_ready - cut,
            ready - restored
        ));
    }
    let f = stream_facts(child, out).await;
    assert!(a.is_running() && b.is_running());
    assert!(
        wa.transitions().iter().all(|(_, s)| *s == 200),
        "the healthy node stayed ready: {:?}",
        wa.transitions()
    );
    let local = &f["groups"][a.url()];
    assert_eq!(local["received"], local["expected"], "{f}");
    assert_eq!(local["disconnects"], 0, "{f}");
    let remote = &f["groups"][b.url()];
    assert_eq!(remote["outOfOrder"], 0, "{f}");
    let last_lost = last_lost_sent_at(&f);
    let last_ready = wb.transitions().last().unwrap().0;
    assert!(
        last_lost <= last_ready + 1000,
        "the cut node receives again once ready: {last_lost} vs {last_ready}: {f}"
    );
    println!(
        "FAULT link-cut: {}; the other node stayed ready and delivered {}/{}; the cut node's subscribers lost {} of {} messages (gaps {}), {} disconnects",
        report.join("; "),
        local["received"],
        local["expected"],
        f["lostSeqs"],
        f["sent"],
        f["gaps"],
        remote["disconnects"],
    );
}

/// SIGKILL one of three nodes behind nginx round robin while a publisher streams to 30
/// subscribers: the dead node's clients reconnect to the survivors and receive again,
/// the dead node's registration expires within its TTL, and a survivor that had cached
/// the owner of one of its sessions answers "Session ID unknown" without trying to
/// forward to the dead address.
#[tokio::test]
async fn killed_node_under_load_clients_move_and_registry_expires() {
    use sio_cluster_tests::http::{http_request, metric_at};
    use sio_cluster_tests::nginx::{Balance, Nginx};
    let redis = TestRedis::start().await.unwrap();
    let mut nodes = node("kill", &redis.url).process_cluster(3).await.unwrap();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    let nginx = Nginx::start(&addrs, Balance::RoundRobin).await.unwrap();

    // a polling session of the victim whose owner node 0 has cached (one forwarded poll)
    let sid = polling_sid(addrs[2], &[]).await.unwrap();
    let poll = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    // forwarded to its owner
    assert_session_served(addrs[0], &sid).await;

    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": nginx.url, "rate": 50, "durationMs": 16000,
        "subscribers": [{"url": nginx.url, "n": 30}], "settleMs": 5000, "waitMs": 15000,
    }))
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = epoch_ms();
    nodes[2].kill();

    // the registration expires within its TTL (10 s), nothing deletes it
    let key = "socket.io:node:kill-2";
    let expired = loop {
        if redis.cli(&["EXISTS", key]).await.unwrap().trim() == "0" {
            break epoch_ms();
        }
        assert!(epoch_ms() - killed < 15_000, "{key} never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let errors_before = metric_at(addrs[0], "sio_forward_errors_total")
        .await
        .unwrap();
    let (status, body) = http_request(addrs[0], "GET", &poll, b"").await.unwrap();
    assert_eq!((status, body.as_str()), (400, SESSION_UNKNOWN));
    let errors_after = metric_at(addrs[0], "sio_forward_errors_total")
        .await
        .unwrap();
    assert_eq!(
        errors_before, errors_after,
        "no forwarding attempt to the dead node"
    );

    let f = stream_facts(child, out).await;
    assert!(nodes[0].is_running() && nodes[1].is_running());
    let group = &f["groups"][nginx.url.as_str()];
    assert_eq!(group["outOfOrder"], 0, "{f}");
    let last_lost = last_lost_sent_at(&f);
    assert!(
        last_lost < killed + 5_000,
        "everyone receives again within seconds of the kill: last lost {last_lost}, killed {killed}: {f}"
    );
    println!(
        "FAULT sigkill: registration expired {} ms after the kill; {} subscriber disconnects, {} of {} messages missed by some subscriber (gaps {}), last one published {} ms after the kill; stale session answered 400 without a forwarding attempt",
        expired - killed,
        group["disconnects"],
        f["lostSeqs"],
        f["sent"],
        f["gaps"],
        last_lost as i64 - killed as i64,
    );
}

/// What one run of the slow-consumer traffic showed.
struct SlowRun {
    baseline_mib: f64,
    growth_mib: f64,
    /// RSS above the baseline once the readers have received everything.
    held_mib: f64,
    refused: f64,
    facts: Value,
}

/// `messages` messages of 8 KiB at 2,000/s into a room with two well-behaved clients,
/// and, when `slow`, a third client that never reads after joining (it keeps answering
/// pings blindly, so it stays connected).
async fn slow_consumer_run(slow: bool, messages: usize) -> SlowRun {
    use futures_util::{SinkExt as _, StreamExt as _};
    use sio_cluster_tests::clients::spawn_js;
    use sio_cluster_tests::http::metric_at;
    use sio_cluster_tests::process::ProcFigures;
    use tokio_tungstenite::tungstenite::Message;

    const SIZE: usize = 8 * 1024;
    let redis = TestRedis::start().await.unwrap();
    // jemalloc hands freed pages back at once, so RSS after the traffic is what the node
    // still holds, not what the allocator keeps for later
    let node = node("slow", &redis.url)
        .env(&[("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")])
        .start_process()
        .await
        .unwrap();

    // the next text frame starting with `prefix`, pings skipped
    async fn next_with<S>(rx: &mut S, prefix: &str) -> String
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + Unpin,
    {
        loop {
            let m = rx.next().await.unwrap().unwrap();
            let text = m.to_text().unwrap().to_string();
            if text.starts_with(prefix) {
                return text;
            }
            assert_eq!(text, "2", "only pings in between");
        }
    }
    let mut keepalive = None;
    if slow {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", node.addr());
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        next_with(&mut rx, "0{").await;
        tx.send(Message::text("40")).await.unwrap();
        next_with(&mut rx, "40").await;
        tx.send(Message::text(r#"421["join","room-slow"]"#))
            .await
            .unwrap();
        let joined = next_with(&mut rx, "431").await;
        assert!(joined.contains("true"), "{joined}");
        // from here on: never read `rx` again
        keepalive = Some(tokio::spawn(async move {
            let _rx = rx;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if tx.send(Message::text("3")).await.is_err() {
                    return;
                }
            }
        }));
    }

    let mut sink = spawn_js(&json!({
        "scenario": "sink", "urls": [node.url()], "clients": 2, "room": "room-slow",
        "event": "big", "expect": messages, "waitMs": 60000,
    }))
    .unwrap();
    let mut sink_out = BufReader::new(sink.stdout.take().unwrap());
    assert_eq!(read_line(&mut sink_out).await.unwrap()["ready"], true);

    let pid = node.pid();
    let baseline = ProcFigures::read(pid).unwrap().rss_kib;
    let refused_before = metric_at(node.addr(), "sio_redis_local_delivery_failed_total")
        .await
        .unwrap();
    let emitter = sio_emitter::Emitter::connect(&redis.url).await.unwrap();
    let payload = "x".repeat(SIZE);
    let mut peak = baseline;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for i in 0..messages {
        if i % 20 == 0 {
            tick.tick().await;
        }
        let op = emitter.to("room-slow");
        op.emit("big", (i, &payload)).await.unwrap();
        if i % 500 == 0 {
            peak = peak.max(ProcFigures::read(pid).unwrap().rss_kib);
        }
    }
    let facts = loop {
        tokio::select! {
            line = read_line(&mut sink_out) => break line.unwrap(),
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                peak = peak.max(ProcFigures::read(pid).unwrap().rss_kib);
            }
        }
    };
    let _ = finish(sink, "sink").await;
    // the readers have everything: what is left is the slow client's queue, if any
    tokio::time::sleep(Duration::from_secs(1)).await;
    let end = ProcFigures::read(pid).unwrap().rss_kib;
    peak = peak.max(end);
    let refused = metric_at(node.addr(), "sio_redis_local_delivery_failed_total")
        .await
        .unwrap()
        - refused_before;
    if let Some(keepalive) = keepalive {
        assert!(
            !keepalive.is_finished(),
            "the slow client is still connected"
        );
        keepalive.abort();
    }
    SlowRun {
        baseline_mib: baseline as f64 / 1024.0,
        growth_mib: peak.saturating_sub(baseline) as f64 / 1024.0,
        held_mib: end.saturating_sub(baseline) as f64 / 1024.0,
        refused,
        facts,
    }
}

/// A client that stops reading costs the node a bounded amount, its own queue (4,096
/// packets): once the room's other clients have received everything, the node holds
/// that queue and no more, whether 78 or 234 MiB flowed past the slow client (an
/// unbounded queue would hold all of it); every delivery that did not fit is counted,
/// none without a slow client, and the other clients receive everything.
#[tokio::test]
async fn a_slow_consumer_cannot_grow_server_memory() {
    let control = slow_consumer_run(false, 10_000).await;
    let slow = slow_consumer_run(true, 10_000).await;
    let more = slow_consumer_run(true, 30_000).await;
    println!(
        "FAULT slow-consumer: 8 KiB messages at 2,000/s into a room of 2 clients, RSS above a {:.1} MiB baseline at peak / once delivered: 10,000 (78 MiB) +{:.1} / +{:.1}; with a third client that never reads: 10,000 +{:.1} / +{:.1} ({} deliveries to it refused and counted), 30,000 (234 MiB) +{:.1} / +{:.1} ({} refused); the 2 others received {} and {}",
        control.baseline_mib,
        control.growth_mib,
        control.held_mib,
        slow.growth_mib,
        slow.held_mib,
        slow.refused,
        more.growth_mib,
        more.held_mib,
        more.refused,
        slow.facts["received"],
        more.facts["received"],
    );
    for run in [&control, &slow, &more] {
        assert_eq!(
            run.facts["complete"], 2,
            "the others got everything: {}",
            run.facts
        );
    }
    assert_eq!(control.refused, 0.0);
    // what did not fit in the queue (nor in the TCP buffers, a few hundred messages)
    let queue = sio_server::node::MAX_BUFFERED_PACKETS as f64;
    for (run, messages) in [(&slow, 10_000.0), (&more, 30_000.0)] {
        assert!(
            run.refused > messages - 2.0 * queue,
            "deliveries to the full socket are counted: {} of {messages}",
            run.refused
        );
    }
    // A full queue holds 4,096 packets of 8 KiB: 32 MiB of payload, more with the
    // frames and allocation sizes. Unbounded, the slow client would keep 78 MiB after
    // the first run and 234 MiB after the second.
    let queue_mib = queue * 8.0 * 1024.0 / 1024.0 / 1024.0;
    assert!(
        slow.held_mib < control.held_mib + 3.0 * queue_mib,
        "the slow client holds more than its queue: +{:.1} vs +{:.1} MiB without it",
        slow.held_mib,
        control.held_mib
    );
    assert!(
        more.held_mib < slow.held_mib + queue_mib,
        "the slow client's cost grew with the traffic: +{:.1} MiB after 30,000 vs +{:.1} after 10,000",
        more.held_mib,
        slow.held_mib
    );
}

/// SIGTERM one of three nodes behind nginx round robin while a publisher streams to 30
/// subscribers: the node exits 0 after its drain, removes its registration at once, its
/// clients see a clean "transport close" and reconnect through nginx to the others,
/// nobody sees an error, and everyone receives again.
#[tokio::test]
async fn sigterm_drain_moves_clients_cleanly() {
    use sio_cluster_tests::nginx::{Balance, Nginx};
    let redis = TestRedis::start().await.unwrap();
    let mut nodes = node("drain", &redis.url).process_cluster(3).await.unwrap();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    let nginx = Nginx::start(&addrs, Balance::RoundRobin).await.unwrap();
    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": nginx.url, "rate": 50, "durationMs": 10000,
        "subscribers": [{"url": nginx.url, "n": 30}], "settleMs": 5000, "waitMs": 15000,
    }))
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let term = epoch_ms();
    let code = nodes[2].terminate(Duration::from_secs(15)).await.unwrap();
    let exited = epoch_ms();
    assert_eq!(code, Some(0), "a clean drain exits 0");
    assert_eq!(
        redis
            .cli(&["EXISTS", "socket.io:node:drain-2"])
            .await
            .unwrap()
            .trim(),
        "0",
        "deregistered on the way out"
    );
    let f = stream_facts(child, out).await;
    let group = &f["groups"][nginx.url.as_str()];
    assert_eq!(group["outOfOrder"], 0, "{f}");
    assert_eq!(group["connectErrors"], 0, "nobody saw an error: {f}");
    assert!(
        group["notConnectedAtEnd"].is_null(),
        "everyone is connected again: {f}"
    );
    let disconnects = group["disconnects"].as_u64().unwrap();
    assert!(
        (1..=20).contains(&disconnects),
        "the drained node's clients moved: {f}"
    );
    assert_eq!(
        group["reasons"],
        json!({"transport close": disconnects}),
        "only clean transport closes: {f}"
    );
    let last_lost = last_lost_sent_at(&f);
    assert!(
        last_lost < exited + 3_000,
        "everyone receives again within seconds: {last_lost} vs {exited}: {f}"
    );
    println!(
        "FAULT sigterm-drain: exit 0 after {} ms; {disconnects} clients closed with \"transport close\" and reconnected, 0 errors; {} of {} messages missed by some subscriber (gaps {})",
        exited - term,
        f["lostSeqs"],
        f["sent"],
        f["gaps"],
    );
}

/// A streams-mode node process (`SIO_REDIS_MODE=streams`), as [`node`].
fn streams_node(id: &str, redis_url: &str) -> NodeBuilder {
    NodeBuilder::new().redis(redis_url).id(id).env(&[
        ("SIO_CLIENT_PUBLISH", "room-*"),
        ("SIO_REDIS_MODE", "streams"),
    ])
}

/// What streams mode promises the subscribers of the node whose link broke: everything,
/// once, in order.
fn assert_nothing_lost(f: &Value, urls: &[String]) {
    for url in urls {
        let g = &f["groups"][url];
        assert_eq!(g["received"], g["expected"], "{url}: {f}");
        assert_eq!(g["duplicates"], 0, "{url}: {f}");
        assert_eq!(g["outOfOrder"], 0, "{url}: {f}");
    }
    assert_eq!(f["lostSeqs"], 0, "{f}");
}

/// Streams mode: one node's link to Redis is reset, restored, then black-holed, restored,
/// while a publisher on the other node streams 50 messages/s: the cut node reads the
/// stream on from its last entry, so its subscribers receive every message, once, in
/// order (classic mode loses what was published during each cut).
#[tokio::test]
async fn streams_mode_a_node_losing_redis_misses_nothing() {
    a_node_losing_redis_misses_nothing(false).await;
}

/// The same link cuts with connection state recovery on (issue #18: "a Redis link blip of
/// the owning node"): the node whose link broke keeps its clients, reads on after the
/// gap, and its own broadcasts, delivered when read back from the stream, arrive too.
#[tokio::test]
async fn recovery_on_a_node_losing_redis_misses_nothing() {
    a_node_losing_redis_misses_nothing(true).await;
}

async fn a_node_losing_redis_misses_nothing(recovery: bool) {
    let (redis, proxy) = redis_behind_proxy(&[]).await;
    let with_recovery = |b: NodeBuilder| {
        if recovery {
            b.env(&[("SIO_RECOVERY_WINDOW_MS", "20000")])
        } else {
            b
        }
    };
    let a = with_recovery(streams_node("s-link-a", &redis.url))
        .start_process()
        .await
        .unwrap();
    let b = with_recovery(streams_node("s-link-b", &proxy.redis_url()))
        .start_process()
        .await
        .unwrap();
    let wb = ReadyWatch::start(b.addr());
    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": a.url(), "rate": 50, "durationMs": 16000,
        "subscribers": [{"url": a.url(), "n": 5}, {"url": b.url(), "n": 10}],
        "settleMs": 8000, "waitMs": 15000,
    }))
    .await;
    let mut report = Vec::new();
    for mode in [LinkState::Down, LinkState::Blackhole] {
        tokio::time::sleep(Duration::from_secs(2)).await;
        proxy.set(mode);
        wb.wait_for(503, Duration::from_secs(10)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let restored = epoch_ms();
        proxy.set(LinkState::Pass);
        let ready = wb.wait_for(200, Duration::from_secs(20)).await.unwrap();
        report.push(format!(
            "{mode:?}: ready {} ms after restore",
            ready - restored
        ));
    }
    let f = stream_facts(child, out).await;
    assert_nothing_lost(&f, &[a.url(), b.url()]);
    println!(
        "FAULT streams link-cut (recovery {}): {}; {} messages, 0 lost, 0 duplicated, 0 reordered for both nodes' subscribers ({} disconnects)",
        if recovery { "on" } else { "off" },
        report.join("; "),
        f["sent"],
        f["groups"][b.url()]["disconnects"],
    );
}

/// Streams mode: every Redis connection of every node is killed (`CLIENT KILL`) twice
/// mid-stream: the nodes reconnect and read on from where they were; nothing is lost.
#[tokio::test]
async fn streams_mode_client_kill_loses_nothing() {
    let redis = TestRedis::start().await.unwrap();
    let a = streams_node("s-kill-a", &redis.url)
        .start_process()
        .await
        .unwrap();
    let b = streams_node("s-kill-b", &redis.url)
        .start_process()
        .await
        .unwrap();
    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": a.url(), "rate": 50, "durationMs": 8000,
        "subscribers": [{"url": a.url(), "n": 5}, {"url": b.url(), "n": 10}],
        "settleMs": 8000, "waitMs": 15000,
    }))
    .await;
    let mut killed = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for kind in ["normal", "pubsub"] {
            killed.push(redis.cli(&["CLIENT", "KILL", "TYPE", kind]).await.unwrap());
        }
    }
    let f = stream_facts(child, out).await;
    assert_nothing_lost(&f, &[a.url(), b.url()]);
    println!(
        "FAULT streams client-kill: connections killed {killed:?}; {} messages, 0 lost, 0 duplicated, 0 reordered",
        f["sent"],
    );
}

/// Streams mode: Redis (append-only file on) restarts mid-stream: the stream survives,
/// and every node reads it on from its last entry once Redis is back.
#[tokio::test]
async fn streams_mode_redis_restart_with_persistence_loses_nothing() {
    streams_redis_restart(true).await;
}

/// Streams mode: Redis restarts mid-stream without persistence, so the stream starts
/// anew. What the other node had not read when Redis went is gone with the old stream:
/// logged (`the stream was recreated`), not countable; an `XADD` the sender could not
/// make is counted on it (`sio_redis_publish_failed_total`). The `XADD`s made once Redis
/// was down wait in the client and go to the new stream, which the nodes read from where
/// they were: nothing published after Redis had stopped is lost. The sender's own
/// subscribers get everything; nothing is duplicated or reordered.
#[tokio::test]
async fn streams_mode_redis_restart_without_persistence_loses_only_what_it_counts() {
    streams_redis_restart(false).await;
}

async fn streams_redis_restart(persistent: bool) {
    let args: &[&str] = if persistent {
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &["--save", "", "--appendonly", "no"]
    };
    let (redis, proxy) = redis_behind_proxy(args).await;
    let url = proxy.redis_url();
    let a = streams_node("s-restart-a", &url)
        .start_process()
        .await
        .unwrap();
    let b = streams_node("s-restart-b", &url)
        .start_process()
        .await
        .unwrap();
    let (wa, wb) = (ReadyWatch::start(a.addr()), ReadyWatch::start(b.addr()));
    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": a.url(), "rate": 50, "durationMs": 12000,
        "subscribers": [{"url": a.url(), "n": 5}, {"url": b.url(), "n": 10}],
        "settleMs": 10000, "waitMs": 20000,
    }))
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = epoch_ms();
    redis.container().stop().await.unwrap();
    let stopped = epoch_ms();
    wa.wait_for(503, Duration::from_secs(10)).await.unwrap();
    redis.container().start().await.unwrap();
    let port = redis.container().get_host_port_ipv4(6379).await.unwrap();
    proxy.set_upstream(([127, 0, 0, 1], port).into());
    let up = epoch_ms();
    wa.wait_for(200, Duration::from_secs(20)).await.unwrap();
    wb.wait_for(200, Duration::from_secs(20)).await.unwrap();
    let f = stream_facts(child, out).await;
    if persistent {
        assert_nothing_lost(&f, &[a.url(), b.url()]);
        println!(
            "FAULT streams redis-restart (appendonly): Redis down {} ms; {} messages, 0 lost, 0 duplicated, 0 reordered",
            up - down,
            f["sent"],
        );
        return;
    }
    let failed = metric_at(a.addr(), "sio_redis_publish_failed_total")
        .await
        .unwrap() as u64;
    let (ga, gb) = (&f["groups"][a.url()], &f["groups"][b.url()]);
    assert_eq!(ga["received"], ga["expected"], "the sender's node: {f}");
    let missed_b = gb["expected"].as_u64().unwrap() - gb["received"].as_u64().unwrap();
    assert!(
        missed_b >= failed * 10,
        "b misses what a counted (10 subscribers): {f}"
    );
    let recreated = b.log().text().contains("the stream was recreated");
    if missed_b > failed * 10 {
        assert!(recreated, "an uncounted loss, not logged: {f}");
    }
    for g in [ga, gb] {
        assert_eq!(g["duplicates"], 0, "{f}");
        assert_eq!(g["outOfOrder"], 0, "{f}");
    }
    for gap in f["gaps"].as_array().unwrap() {
        let last = gap["lastSentAt"].as_u64().unwrap();
        assert!(
            last < stopped,
            "a message published after Redis had stopped was lost ({} ms after): {f}",
            last.saturating_sub(stopped)
        );
    }
    println!(
        "FAULT streams redis-restart (no persistence): Redis down {} ms (stop took {} ms); {} messages, {failed} XADDs failed and counted, {missed_b} deliveries missed on the other node ({} messages, gaps {}, all published before Redis had stopped; stream recreated logged: {recreated}), 0 duplicated, 0 reordered",
        up - down,
        stopped - down,
        f["sent"],
        f["lostSeqs"],
        f["gaps"],
    );
}

/// Streams mode: a node cut off long enough for the stream to be trimmed past its last
/// entry cannot deliver what was trimmed: it counts it
/// (`sio_redis_stream_entries_lost_total`) instead of skipping it silently, and serves on.
#[tokio::test]
async fn streams_mode_entries_trimmed_during_a_cut_are_counted() {
    let (redis, proxy) = redis_behind_proxy(&[]).await;
    let a = streams_node("s-trim-a", &redis.url)
        .start_process()
        .await
        .unwrap();
    let b = streams_node("s-trim-b", &proxy.redis_url())
        .start_process()
        .await
        .unwrap();
    let wb = ReadyWatch::start(b.addr());
    let (child, out) = stream(json!({
        "scenario": "stream", "publisherUrl": a.url(), "rate": 50, "durationMs": 8000,
        "subscribers": [{"url": a.url(), "n": 2}, {"url": b.url(), "n": 2}],
        "settleMs": 5000, "waitMs": 15000,
    }))
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set(LinkState::Down);
    wb.wait_for(503, Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // what b has not read yet goes (and what it had: 0 entries left)
    redis
        .cli(&["XTRIM", "socket.io", "MAXLEN", "0"])
        .await
        .unwrap();
    proxy.set(LinkState::Pass);
    wb.wait_for(200, Duration::from_secs(20)).await.unwrap();
    let f = stream_facts(child, out).await;
    let lost_b = f["groups"][b.url()]["expected"].as_u64().unwrap()
        - f["groups"][b.url()]["received"].as_u64().unwrap();
    let counted = metric_at(b.addr(), "sio_redis_stream_entries_lost_total")
        .await
        .unwrap();
    assert!(lost_b > 0, "the trim took entries b had not read: {f}");
    assert_eq!(
        counted as u64 * 2,
        lost_b,
        "each trimmed entry is counted once (2 subscribers on b): {f}"
    );
    let local = &f["groups"][a.url()];
    assert_eq!(local["received"], local["expected"], "{f}");
    assert_eq!(f["groups"][b.url()]["outOfOrder"], 0, "{f}");
    println!(
        "FAULT streams trimmed-gap: {} entries trimmed before node b read them, counted by b; its subscribers missed {} deliveries, the publisher's node none",
        counted, lost_b,
    );
}

/// Issue #18's headline: 3 streams-mode nodes behind round-robin nginx, 30 official
/// clients (10 polling-only, 10 websocket-only, 10 upgrading) in one room, 250 numbered
/// broadcasts at 50/s; one node drained (SIGTERM) 1.5 s in, another SIGKILLed 3 s in.
/// With `recovery`, the nodes have a recovery window and the subscribers join on their
/// first connect only (`faults.mjs` scenario `recover`), so a reconnect that was not
/// recovered leaves its client out of the room and shows as loss; without it (the
/// control) they join again on every connect, as applications do. The broadcasts come
/// from the emitter, straight into the stream, so what was sent is known exactly (a
/// publisher socket would itself be moved by the faults and its publishes delayed or
/// failed meanwhile). Returns the subscribers' facts.
async fn drain_and_sigkill_under_load(recovery: bool) -> Value {
    // one such cluster at a time: three nodes, nginx and 30 clients on a small machine
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    use sio_adapter_redis::AdapterMode;
    use sio_adapter_redis::protocol::streams::StreamsOptions;
    use sio_cluster_tests::nginx::{Balance, Nginx};
    use sio_emitter::Emitter;
    const MESSAGES: u32 = 250;
    const RATE: u32 = 50;
    let redis = TestRedis::start().await.unwrap();
    let mut builder = streams_node(if recovery { "recover" } else { "norecover" }, &redis.url);
    if recovery {
        builder = builder.env(&[("SIO_RECOVERY_WINDOW_MS", "20000")]);
    }
    let mut nodes = builder.process_cluster(3).await.unwrap();
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr()).collect();
    let nginx = Nginx::start(&addrs, Balance::RoundRobin).await.unwrap();
    let emitter = Emitter::connect(&redis.url)
        .await
        .unwrap()
        .with_mode(AdapterMode::Streams)
        .with_streams(StreamsOptions::default());

    let group = |name: &str, transports: Value| json!({"name": name, "url": nginx.url, "n": 10, "transports": transports});
    let (child, mut out) = stream(json!({
        "scenario": "recover", "room": "room-recover", "expect": MESSAGES,
        "rejoin": !recovery,
        "groups": [
            group("polling", json!(["polling"])),
            group("websocket", json!(["websocket"])),
            group("upgrading", json!(["polling", "websocket"])),
        ],
        "timeoutMs": 15000, "waitMs": 15000,
    }))
    .await;

    let started = tokio::time::Instant::now();
    let publisher = tokio::spawn(async move {
        for seq in 1..=MESSAGES {
            let due = started + Duration::from_millis(u64::from(seq - 1) * 1000 / u64::from(RATE));
            tokio::time::sleep_until(due).await;
            emitter
                .to("room-recover")
                .emit("tick", [seq])
                .await
                .unwrap();
        }
    });
    // how many sockets each fault hits: round robin spreads requests, not clients
    let sockets = |addr| async move { metric_at(addr, "sio_sockets_connected").await.unwrap() };
    tokio::time::sleep_until(started + Duration::from_millis(1500)).await;
    let on_drained = sockets(addrs[2]).await;
    let code = nodes[2].terminate(Duration::from_secs(15)).await.unwrap();
    assert_eq!(code, Some(0), "a clean drain exits 0");
    tokio::time::sleep_until(started + Duration::from_millis(3000)).await;
    let on_killed = sockets(addrs[1]).await;
    nodes[1].kill();
    publisher.await.unwrap();

    let mut facts = read_line(&mut out).await.unwrap();
    let _ = finish(child, "faults.mjs recover").await;
    assert!(facts.get("error").is_none(), "{facts}");
    assert_eq!(
        facts["total"]["expected"],
        u64::from(MESSAGES) * 30,
        "{facts}"
    );
    // what the survivor counted
    let mut outcomes = serde_json::Map::new();
    for outcome in ["recovered", "new", "unknown", "refused", "gap", "failed"] {
        let name = format!("sio_recovery_total{{outcome=\"{outcome}\"}}");
        outcomes.insert(
            outcome.into(),
            metric_at(addrs[0], &name).await.unwrap().into(),
        );
    }
    facts["survivorRecovery"] = outcomes.into();
    facts["socketsOnDrained"] = on_drained.into();
    facts["socketsOnKilled"] = on_killed.into();
    // both faults hit subscribers, who came back (the reconnect count itself depends on
    // where round robin put each client's requests when the faults struck)
    let reconnects = facts["total"]["reconnects"].as_f64().unwrap();
    assert!(on_drained >= 1.0 && on_killed >= 1.0, "{facts}");
    assert!(reconnects >= 1.0, "{facts}");
    assert_eq!(facts["total"]["notConnectedAtEnd"], 0, "{facts}");
    facts
}

/// Issue #18's headline with connection state recovery on ([`drain_and_sigkill_under_load`]):
/// every subscriber gets every number exactly once and in order, and every reconnect is
/// recovered (`socket.recovered`).
#[tokio::test]
async fn recovery_on_drain_and_sigkill_lose_nothing() {
    let facts = drain_and_sigkill_under_load(true).await;
    let t = &facts["total"];
    assert_eq!(t["lost"], 0, "lost: {facts}");
    assert_eq!(t["duplicated"], 0, "duplicated: {facts}");
    assert_eq!(t["reordered"], 0, "reordered: {facts}");
    assert_eq!(t["unexpected"], 0, "{facts}");
    assert_eq!(t["received"], t["expected"], "{facts}");
    let reconnects = t["reconnects"].as_u64().unwrap();
    assert_eq!(
        t["recovered"], reconnects,
        "every reconnect recovered: {facts}"
    );
    assert_eq!(t["notRecovered"], 0, "{facts}");
    assert_eq!(t["pidChanged"], 0, "{facts}");
    assert_eq!(t["notConnectedAtEnd"], 0, "{facts}");
    // the survivor restored sessions and turned none away
    let counted = &facts["survivorRecovery"];
    assert!(counted["recovered"].as_f64().unwrap() >= 1.0, "{facts}");
    for outcome in ["unknown", "refused", "gap", "failed"] {
        assert_eq!(counted[outcome], 0.0, "{outcome}: {facts}");
    }
    println!(
        "FAULT recovery drain+sigkill: {} deliveries (250 messages x 30 subscribers): 0 lost, 0 duplicated, 0 reordered; {} sockets on the drained node, {} on the killed one; {reconnects} reconnects, {} recovered (disconnects {}, connect errors {}); per group {}; survivor's sio_recovery_total {}",
        t["expected"],
        facts["socketsOnDrained"],
        facts["socketsOnKilled"],
        t["recovered"],
        t["disconnects"],
        t["connectErrors"],
        facts["groups"],
        facts["survivorRecovery"],
    );
}

/// The control: the same faults without recovery (streams mode alone, subscribers joining
/// again on every connect) lose deliveries and recover nothing, though nothing arrives
/// twice or out of order.
#[tokio::test]
async fn without_recovery_drain_and_sigkill_lose_deliveries() {
    let facts = drain_and_sigkill_under_load(false).await;
    let t = &facts["total"];
    assert!(t["lost"].as_u64().unwrap() > 0, "nothing lost? {facts}");
    assert_eq!(t["recovered"], 0, "{facts}");
    assert_eq!(t["duplicated"], 0, "{facts}");
    assert_eq!(t["reordered"], 0, "{facts}");
    println!(
        "FAULT no-recovery drain+sigkill: {} of {} deliveries lost, 0 duplicated, 0 reordered; {} sockets on the drained node, {} on the killed one; {} reconnects, 0 recovered (disconnects {}, connect errors {}); per group {}",
        t["lost"],
        t["expected"],
        facts["socketsOnDrained"],
        facts["socketsOnKilled"],
        t["reconnects"],
        t["disconnects"],
        t["connectErrors"],
        facts["groups"],
    );
}

//! Cluster mode on the Redis topologies production runs: Sentinel (with a failover while
//! the nodes serve) and Redis Cluster (classic and sharded adapter modes).
//!
//! The Redis processes run in `redis:7.2` containers on the host network, so that the
//! addresses Sentinel and the cluster hand out (`127.0.0.1:PORT`) are the ones the nodes
//! can reach, exactly as in a deployment where every address is routable.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant};

use serde_json::json;
use sio_cluster_tests::http::{assert_session_served, polling_sid};
use sio_cluster_tests::node::{NodeBuilder, TestNode, urls, wait_ready};
use sio_cluster_tests::redis::redis_cli;
use sio_cluster_tests::scenario::{assert_fanout, fanout};
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// `n` ports free right now on 127.0.0.1 (bound together, so all distinct).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A `redis:7.2` container on the host network running `sh -c script`, started once
/// `ready` appears on its standard output.
async fn redis_container(script: String, ready: &str) -> ContainerAsync<GenericImage> {
    GenericImage::new("redis", "7.2")
        .with_wait_for(WaitFor::message_on_stdout(ready))
        .with_network("host")
        .with_cmd(["sh".to_string(), "-c".to_string(), script])
        .start()
        .await
        .expect("start a redis:7.2 container on the host network")
}

/// A Redis (or Sentinel) server at `port` in `container`, reached with `redis-cli` inside
/// it, authenticated with `password` when it has one.
struct Server<'a> {
    container: &'a ContainerAsync<GenericImage>,
    port: u16,
    password: Option<&'static str>,
}

impl Server<'_> {
    async fn cli(&self, args: &[&str]) -> String {
        let port = self.port.to_string();
        let mut all = vec!["-p", &port];
        if let Some(pw) = self.password {
            all.extend(["-a", pw, "--no-auth-warning"]);
        }
        all.extend_from_slice(args);
        redis_cli(self.container, &all).await.unwrap()
    }

    /// `ROLE` (its first line: `master` or `slave`).
    async fn role(&self) -> String {
        self.cli(&["role"]).await
    }

    async fn exists(&self, key: &str) -> bool {
        self.cli(&["exists", key]).await.trim() == "1"
    }
}

/// A burst of `messages` publishes from a client of the first node to a room with a
/// member on every node: every member gets every message, in order.
async fn fanout_across(nodes: &[TestNode], room: &str, messages: u64) {
    let f = fanout(&urls(nodes), room, messages, json!({}))
        .await
        .unwrap();
    assert_fanout(&f, messages);
}

/// Polls `check` every 100 ms until it returns true, at most `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Passwords of a Sentinel set-up: the master's (and its replica's), and the Sentinel's
/// own, a different one.
#[derive(Clone, Copy)]
struct SentinelAuth {
    master: &'static str,
    sentinel: &'static str,
}

/// `redis-sentinel://` URLs: two nodes find the master through Sentinel and serve; the
/// master is then failed over to its replica (`SENTINEL FAILOVER`, which demotes the old
/// master and disconnects its clients) and the nodes follow the new master: ready again,
/// broadcasts cross them, and registry writes (which the demoted, read-only master would
/// refuse) succeed.
#[tokio::test]
async fn sentinel_failover_is_followed() {
    sentinel_failover(None, "classic").await;
}

/// The same in streams mode: the stream readers move to the new master too, and read on
/// from their last entry there (the replica had the stream).
#[tokio::test]
async fn sentinel_failover_is_followed_in_streams_mode() {
    sentinel_failover(None, "streams").await;
}

/// The same with passwords: the master's in the URL, the Sentinel's own
/// (`sentinelPassword`), which the nodes' connections through Sentinel and their
/// failover watchers must both use (Sentinel refuses the master's).
#[tokio::test]
async fn sentinel_with_its_own_password_failover_is_followed() {
    sentinel_failover(
        Some(SentinelAuth {
            master: "master-secret",
            sentinel: "sentinel-secret",
        }),
        "classic",
    )
    .await;
}

async fn sentinel_failover(auth: Option<SentinelAuth>, mode: &str) {
    let [master, replica, sentinel] = free_ports(3)[..] else {
        unreachable!()
    };
    // a Redis with a password also needs it to replicate from the other one later
    let redis_auth = auth
        .map(|a| format!(" --requirepass {0} --masterauth {0}", a.master))
        .unwrap_or_default();
    let sentinel_auth = auth
        .map(|a| {
            format!(
                "requirepass {}\\nsentinel auth-pass mymaster {}\\n",
                a.sentinel, a.master
            )
        })
        .unwrap_or_default();
    let master_c = redis_container(
        format!("exec redis-server --port {master} --protected-mode no --save ''{redis_auth}"),
        "Ready to accept connections",
    )
    .await;
    let replica_c = redis_container(
        format!(
            "exec redis-server --port {replica} --protected-mode no --save '' \
             --replicaof 127.0.0.1 {master}{redis_auth}"
        ),
        "MASTER <-> REPLICA sync: Finished with success",
    )
    .await;
    let sentinel_c = redis_container(
        format!(
            "printf 'port {sentinel}\\nprotected-mode no\\n\
             sentinel monitor mymaster 127.0.0.1 {master} 1\\n\
             sentinel down-after-milliseconds mymaster 2000\\n\
             sentinel failover-timeout mymaster 10000\\n{sentinel_auth}' > /data/sentinel.conf \
             && exec redis-server /data/sentinel.conf --sentinel"
        ),
        "+monitor master mymaster",
    )
    .await;
    let master_r = Server {
        container: &master_c,
        port: master,
        password: auth.map(|a| a.master),
    };
    let replica_r = Server {
        container: &replica_c,
        port: replica,
        password: auth.map(|a| a.master),
    };
    let sentinel_r = Server {
        container: &sentinel_c,
        port: sentinel,
        password: auth.map(|a| a.sentinel),
    };
    // Sentinel learns the replica from the master's INFO (polled every 10 s at most).
    eventually(
        Duration::from_secs(30),
        "Sentinel to see the replica",
        || async {
            sentinel_r
                .cli(&["sentinel", "replicas", "mymaster"])
                .await
                .contains(&replica.to_string())
        },
    )
    .await;

    let url = match auth {
        None => format!("redis-sentinel://127.0.0.1:{sentinel}/0?sentinelServiceName=mymaster"),
        Some(a) => format!(
            "redis-sentinel://:{}@127.0.0.1:{sentinel}/0?sentinelServiceName=mymaster\
             &sentinelPassword={}",
            a.master, a.sentinel
        ),
    };
    let nodes = NodeBuilder::new()
        .redis(&url)
        .args(&["--client-publish", "room-*", "--redis-mode", mode])
        .cluster(2)
        .await
        .unwrap();
    fanout_across(&nodes, "room-sentinel-1", 20).await;
    // Node 0's sessions continued through node 1, which finds the owner in the session
    // registry (a key on whichever Redis instance or slot holds it) and forwards.
    let before = polling_sid(nodes[0].addr(), &[]).await.unwrap();
    assert_session_served(nodes[1].addr(), &before).await;

    let failover = sentinel_r.cli(&["sentinel", "failover", "mymaster"]).await;
    assert!(failover.contains("OK"), "{failover}");
    eventually(
        Duration::from_secs(30),
        "the replica to be promoted",
        || async { replica_r.role().await.starts_with("master") },
    )
    .await;
    let promoted = Instant::now();
    // The nodes leave the old master on Sentinel's `+switch-master`, before Sentinel
    // gets round to demoting it: sessions opened now are recorded on the new master.
    eventually(
        Duration::from_secs(20),
        "a session recorded on the new master",
        || async {
            let sid = polling_sid(nodes[0].addr(), &[]).await.unwrap();
            replica_r.exists(&format!("socket.io:sid:{sid}")).await
        },
    )
    .await;
    let old_role = master_r.role().await;
    eprintln!(
        "new master written to {:?} after the promotion; the old master's role then: {}",
        promoted.elapsed(),
        old_role.lines().next().unwrap_or("")
    );
    assert!(
        old_role.starts_with("master"),
        "the nodes kept writing to the old master until Sentinel demoted it: {old_role}"
    );
    // The registrations are written again at once, not at the next heartbeat or
    // refresh: the node keys and the session opened before the failover.
    for key in [
        "socket.io:node:node-0".to_string(),
        "socket.io:node:node-1".to_string(),
        format!("socket.io:sid:{before}"),
    ] {
        eventually(Duration::from_secs(10), &key, || replica_r.exists(&key)).await;
    }
    for node in &nodes {
        wait_ready(node.addr()).await.unwrap();
    }
    eventually(
        Duration::from_secs(30),
        "the old master to be demoted",
        || async { master_r.role().await.starts_with("slave") },
    )
    .await;
    assert_session_served(nodes[1].addr(), &before).await;
    let after = polling_sid(nodes[0].addr(), &[]).await.unwrap();
    assert_session_served(nodes[1].addr(), &after).await;
    fanout_across(&nodes, "room-sentinel-2", 20).await;
}

/// A three-master Redis Cluster in one container (`redis-cli --cluster create`).
async fn redis_cluster() -> (ContainerAsync<GenericImage>, Vec<u16>) {
    let ports = free_ports(3);
    let start: String = ports
        .iter()
        .map(|p| {
            format!(
                "redis-server --port {p} --cluster-enabled yes --cluster-config-file nodes-{p}.conf \
                 --protected-mode no --save '' --daemonize yes && "
            )
        })
        .collect();
    let members: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let wait: String = ports
        .iter()
        .map(|p| format!("until redis-cli -p {p} ping >/dev/null 2>&1; do :; done && "))
        .collect();
    let script = format!(
        "{start}{wait}redis-cli --cluster create {} --cluster-yes && \
         until redis-cli -p {} cluster info | grep -q cluster_state:ok; do :; done && \
         echo CLUSTER-UP && exec redis-cli -p {} psubscribe keep-the-container-running",
        members.join(" "),
        ports[0],
        ports[0],
    );
    (redis_container(script, "CLUSTER-UP").await, ports)
}

/// `redis-cluster://` URLs with the classic adapter (`PUBLISH` reaches every shard's
/// subscribers) and with the sharded one (`SPUBLISH` to each channel's slot): broadcasts
/// cross the nodes in order, and the session registry (keys spread over the slots of
/// three masters) serves forwarding.
#[tokio::test]
async fn redis_cluster_in_classic_and_sharded_modes() {
    let (_cluster, ports) = redis_cluster().await;
    let url = format!(
        "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
        ports[0], ports[1], ports[2]
    );
    for (mode, room) in [("classic", "room-cluster-c"), ("sharded", "room-cluster-s")] {
        let nodes = NodeBuilder::new()
            .redis(&url)
            .args(&["--client-publish", "room-*", "--redis-mode", mode])
            .cluster(2)
            .await
            .unwrap();
        fanout_across(&nodes, room, 30).await;
        for _ in 0..5 {
            let sid = polling_sid(nodes[0].addr(), &[]).await.unwrap();
            assert_session_served(nodes[1].addr(), &sid).await;
        }
    }
}

/// Streams mode on the three-master Redis Cluster with `SIO_REDIS_STREAM_COUNT=3`: the
/// namespaces `/`, `/a` and `/b` write to `socket.io-2`, `-0` and `-1` (JS `hashCode % 3`:
/// 47, 1554, 1555), keys whose slots (9584, 1330, 5395) two masters own. Each node reads
/// all three streams; a burst on every namespace reaches every member once, in order, and
/// the streams are found on more than one master.
#[tokio::test]
async fn redis_cluster_in_streams_mode_with_three_streams() {
    let (cluster, ports) = redis_cluster().await;
    let url = format!(
        "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
        ports[0], ports[1], ports[2]
    );
    let nodes = NodeBuilder::new()
        .redis(&url)
        .args(&[
            "--client-publish",
            "room-*",
            "--redis-mode",
            "streams",
            "--redis-stream-count",
            "3",
            "--namespaces",
            "/,/a,/b",
        ])
        .cluster(2)
        .await
        .unwrap();
    for nsp in ["/", "/a", "/b"] {
        let extra = json!({"nsp": if nsp == "/" { "" } else { nsp }});
        let f = fanout(&urls(&nodes), "room-streams", 30, extra)
            .await
            .unwrap();
        println!("{nsp}: {f}");
        assert_fanout(&f, 30);
    }
    // which master holds each stream (the others answer MOVED)
    let mut owners = std::collections::BTreeMap::new();
    for stream in ["socket.io-0", "socket.io-1", "socket.io-2"] {
        for port in &ports {
            let server = Server {
                container: &cluster,
                port: *port,
                password: None,
            };
            let kind = server.cli(&["type", stream]).await;
            if kind.trim() == "stream" {
                owners.insert(stream, *port);
            }
        }
    }
    println!("stream owners: {owners:?} (masters {ports:?})");
    assert_eq!(owners.len(), 3, "every stream written: {owners:?}");
    let masters: std::collections::BTreeSet<u16> = owners.values().copied().collect();
    assert!(
        masters.len() > 1,
        "the streams live on one master: {owners:?}"
    );
}

//! The adapter's cluster semantics across several nodes, on the in-process transport
//! (`transport::stub`): no Redis, so they run in milliseconds. What travels through Redis
//! itself is tested against a real Redis and real Node.js peers in `tests/`.

use std::time::Duration;

use engineioxide::Packet as EnginePacket;
use futures_util::StreamExt;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use tokio::sync::mpsc;

use crate::transport::stub::Bus;
use crate::{RedisAdapter, RedisAdapterConfig, RedisCluster};

type Adapter = RedisAdapter<socketioxide::adapter::Emitter>;
type Io = SocketIo<Adapter>;

/// How long a test waits for something that must not arrive.
const QUIET: Duration = Duration::from_millis(30);
/// How long a test waits for something that must arrive.
const PATIENCE: Duration = Duration::from_secs(2);

/// `n` nodes on one bus, each serving `/`: a socket joins its own room (as the gateway
/// makes it) and the rooms listed in its auth's `rooms`.
async fn nodes(n: usize) -> Vec<(Io, RedisCluster)> {
    let bus = Bus::new();
    let mut out = Vec::new();
    for _ in 0..n {
        let cluster = bus.join(RedisAdapterConfig::default().with_request_timeout(PATIENCE));
        let (_svc, io) = SocketIo::builder()
            .with_adapter::<Adapter>(cluster.clone())
            .build_svc();
        io.ns("/", |s: SocketRef<Adapter>, Data(auth): Data<Value>| {
            let mut rooms = vec![s.id.to_string()];
            if let Some(listed) = auth["rooms"].as_array() {
                rooms.extend(listed.iter().filter_map(Value::as_str).map(str::to_string));
            }
            s.join(rooms);
            async {}
        })
        .await
        .expect("namespace ready");
        out.push((io, cluster));
    }
    out
}

/// A client connected to a node, reading the Socket.IO packets the node sends it.
struct Client {
    id: String,
    tx: mpsc::Sender<EnginePacket>,
    rx: mpsc::Receiver<EnginePacket>,
}

impl Client {
    async fn connect(io: &Io, rooms: &[&str]) -> Self {
        let (tx, mut rx) = io.new_dummy_sock("/", json!({ "rooms": rooms })).await;
        let connect = next_message(&mut rx).await.expect("a CONNECT reply");
        let reply: Value = serde_json::from_str(&connect[1..]).expect("CONNECT data");
        let id = reply["sid"].as_str().expect("a sid").to_string();
        // the connect handler joins the rooms after the CONNECT reply
        let mut all: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
        all.push(id.clone());
        wait_until(|| async {
            all.iter().all(|room| {
                io.local()
                    .within(room.clone())
                    .sockets()
                    .iter()
                    .any(|s| s.id.to_string() == id)
            })
        })
        .await;
        Self { id, tx, rx }
    }

    /// The next event's `[name, ...args]`, answering it when it asks for an ack.
    async fn event(&mut self) -> Option<Value> {
        let packet = tokio::time::timeout(PATIENCE, next_message(&mut self.rx))
            .await
            .ok()??;
        let body = packet.strip_prefix('2').expect("an EVENT packet");
        let split = body.find('[').expect("event data");
        let (ack_id, data) = body.split_at(split);
        if !ack_id.is_empty() {
            let ack = format!("3{ack_id}[\"ack from {}\"]", self.id);
            self.tx
                .send(EnginePacket::Message(ack.into()))
                .await
                .expect("socket alive");
        }
        serde_json::from_str(data).ok()
    }

    /// Fails if an event arrives within [`QUIET`].
    async fn assert_quiet(&mut self) {
        if let Ok(Some(packet)) = tokio::time::timeout(QUIET, next_message(&mut self.rx)).await {
            panic!("client {} got an unexpected packet: {packet}", self.id);
        }
    }
}

async fn next_message(rx: &mut mpsc::Receiver<EnginePacket>) -> Option<String> {
    loop {
        match rx.recv().await? {
            EnginePacket::Message(m) => return Some(m.to_string()),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_broadcast_reaches_every_node_once() {
    let nodes = nodes(3).await;
    let mut clients = Vec::new();
    for (io, _) in &nodes {
        clients.push(Client::connect(io, &[]).await);
    }
    nodes[0].0.emit("news", &"hello").await.expect("emitted");
    for client in &mut clients {
        assert_eq!(client.event().await, Some(json!(["news", "hello"])));
        client.assert_quiet().await;
    }
}

#[tokio::test]
async fn rooms_except_and_local_select_sockets_across_nodes() {
    let nodes = nodes(3).await;
    let mut a = Client::connect(&nodes[0].0, &["a"]).await;
    let mut ab = Client::connect(&nodes[1].0, &["a", "b"]).await;
    let mut b = Client::connect(&nodes[2].0, &["b"]).await;
    let mut none = Client::connect(&nodes[2].0, &[]).await;

    nodes[2]
        .0
        .to("a")
        .except("b")
        .emit("e1", &1)
        .await
        .expect("emitted");
    assert_eq!(a.event().await, Some(json!(["e1", 1])));
    nodes[0]
        .0
        .to(["a", "b"])
        .emit("e2", &2)
        .await
        .expect("emitted");
    for client in [&mut a, &mut ab, &mut b] {
        assert_eq!(client.event().await, Some(json!(["e2", 2])));
    }
    nodes[1].0.local().emit("e3", &3).await.expect("emitted");
    assert_eq!(ab.event().await, Some(json!(["e3", 3])));
    // a socket's own room addresses it on any node
    nodes[0]
        .0
        .to(b.id.clone())
        .emit("e4", &4)
        .await
        .expect("emitted");
    assert_eq!(b.event().await, Some(json!(["e4", 4])));

    for client in [&mut a, &mut ab, &mut b, &mut none] {
        client.assert_quiet().await;
    }
}

#[tokio::test]
async fn servers_are_counted_and_fetch_sockets_sees_every_node() {
    let nodes = nodes(3).await;
    assert_eq!(nodes[0].1.server_count("/").await.expect("counted"), 3);
    let in_room = [
        Client::connect(&nodes[0].0, &["r"]).await,
        Client::connect(&nodes[2].0, &["r"]).await,
    ];
    let _outside = Client::connect(&nodes[1].0, &[]).await;

    let fetched = nodes[1]
        .0
        .within("r")
        .fetch_sockets()
        .await
        .expect("fetched");
    let mut ids: Vec<String> = fetched.iter().map(|s| s.data().id.to_string()).collect();
    ids.sort();
    let mut expected: Vec<String> = in_room.iter().map(|c| c.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);

    let rooms = nodes[0].0.rooms().await.expect("rooms");
    assert!(rooms.iter().any(|r| r == "r"), "{rooms:?}");
    assert!(rooms.iter().any(|r| *r == in_room[1].id), "{rooms:?}");
}

#[tokio::test]
async fn remote_join_leave_and_disconnect_apply_on_the_sockets_node() {
    let nodes = nodes(2).await;
    let mut far = Client::connect(&nodes[1].0, &[]).await;

    nodes[0]
        .0
        .within(far.id.clone())
        .join("z")
        .await
        .expect("joined");
    wait_until(|| async { nodes[1].0.within("z").sockets().len() == 1 }).await;
    nodes[0]
        .0
        .to("z")
        .emit("in-z", &"z")
        .await
        .expect("emitted");
    assert_eq!(far.event().await, Some(json!(["in-z", "z"])));

    nodes[0]
        .0
        .within(far.id.clone())
        .leave("z")
        .await
        .expect("left");
    wait_until(|| async { nodes[1].0.within("z").sockets().is_empty() }).await;

    nodes[0]
        .0
        .within(far.id.clone())
        .disconnect()
        .await
        .expect("sent");
    wait_until(|| async { nodes[1].0.sockets().is_empty() }).await;
}

#[tokio::test]
async fn broadcast_with_ack_collects_the_acks_of_every_node() {
    let nodes = nodes(3).await;
    let mut clients = Vec::new();
    for (io, _) in &nodes {
        clients.push(Client::connect(io, &[]).await);
    }
    let stream = nodes[0]
        .0
        .timeout(PATIENCE)
        .emit_with_ack::<_, String>("ask", &"?")
        .await
        .expect("sent");
    let answers = tokio::spawn(stream.collect::<Vec<_>>());
    for client in &mut clients {
        assert_eq!(client.event().await, Some(json!(["ask", "?"])));
    }
    let mut acks: Vec<String> = answers
        .await
        .expect("collected")
        .into_iter()
        .map(|(_, ack)| ack.expect("acked"))
        .collect();
    acks.sort();
    let mut expected: Vec<String> = clients
        .iter()
        .map(|c| format!("ack from {}", c.id))
        .collect();
    expected.sort();
    assert_eq!(acks, expected);
}

#[tokio::test]
async fn server_side_emit_with_ack_gets_every_other_nodes_answer() {
    let nodes = nodes(3).await;
    for (i, (_, cluster)) in nodes.iter().enumerate() {
        cluster.on_server_side_emit("/", move |mut ev| {
            ev.ack(json!({ "node": i, "event": ev.event.clone(), "args": ev.args.clone() }));
        });
    }
    let mut answers = nodes[1]
        .1
        .server_side_emit_with_ack("/", "ping", vec![json!(7)], None)
        .await
        .expect("answered");
    answers.sort_by_key(|a| a["node"].as_u64());
    assert_eq!(
        answers,
        [
            json!({"node": 0, "event": "ping", "args": [7]}),
            json!({"node": 2, "event": "ping", "args": [7]}),
        ]
    );
}

async fn wait_until<F, Fut>(mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

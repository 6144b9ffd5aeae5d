//! A Rust cluster member built the way a user of `sio-adapter-redis` builds one: a plain
//! socketioxide app on [`RedisAdapter`], with the gateway's `join` / `leave` and a
//! test-only `op` event mirroring `tests/js/peer-node.mjs`, so the same client script
//! drives server-side operations on a Rust node and on a Node.js node.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::ser::SerializeTuple;
use serde_json::{Value, json};
use sio_adapter_redis::rmpv;
use sio_adapter_redis::{RedisAdapter, RedisAdapterConfig, RedisCluster};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio_util::sync::CancellationToken;

use crate::redis::TestRedis;

type Io = SocketIo<RedisAdapter<socketioxide::adapter::Emitter>>;
type Sock = SocketRef<RedisAdapter<socketioxide::adapter::Emitter>>;

/// A socketioxide node on the Redis adapter, stopped on drop.
pub struct RustPeer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its cluster connection.
    pub cluster: RedisCluster,
    stop: CancellationToken,
}

impl Drop for RustPeer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Arguments spread as separate event arguments.
struct Spread(Vec<rmpv::Value>);

impl serde::Serialize for Spread {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for v in &self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// JSON test arguments as MessagePack values; `{"$binary": hex}` becomes binary.
fn to_rmpv(v: &Value) -> rmpv::Value {
    match v {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => rmpv::Value::from(i),
            (_, Some(u), _) => rmpv::Value::from(u),
            (_, _, Some(f)) => rmpv::Value::F64(f),
            _ => rmpv::Value::Nil,
        },
        Value::String(s) => rmpv::Value::from(s.as_str()),
        Value::Array(a) => rmpv::Value::Array(a.iter().map(to_rmpv).collect()),
        Value::Object(o) => match o.get("$binary").and_then(Value::as_str) {
            Some(hex) if o.len() == 1 => rmpv::Value::Binary(
                (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect(),
            ),
            _ => rmpv::Value::Map(
                o.iter()
                    .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_rmpv(v)))
                    .collect(),
            ),
        },
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl RustPeer {
    /// Starts the peer on `127.0.0.1:0` and waits until its namespace is subscribed.
    pub async fn start(redis: &TestRedis) -> anyhow::Result<Self> {
        Self::start_with(redis, RedisAdapterConfig::default()).await
    }

    /// [`RustPeer::start`] with an adapter configuration (e.g. sharded mode).
    pub async fn start_with(redis: &TestRedis, config: RedisAdapterConfig) -> anyhow::Result<Self> {
        let mode = config.mode;
        let cluster = RedisCluster::connect(&redis.url, config).await?;
        let (layer, io) = SocketIo::builder()
            .with_adapter::<RedisAdapter<_>>(cluster.clone())
            .build_layer();

        let log: Arc<Mutex<Vec<Value>>> = Arc::default();
        let server_side_log = log.clone();
        cluster.on_server_side_emit("/", move |mut ev| {
            let mut entry = vec![Value::from(ev.event.as_str())];
            entry.extend(ev.args.iter().cloned());
            server_side_log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Value::Array(entry));
            if ev.wants_ack() {
                let got = Value::Array(ev.args.clone());
                ev.ack(json!({"from": "rust", "got": got}));
            }
        });

        let peer_cluster = cluster.clone();
        let peer_emitter = sio_emitter::Emitter::connect(&redis.url)
            .await?
            .with_mode(mode)
            .with_request_timeout(Duration::from_secs(3));
        io.ns("/", move |s: Sock, io: Io| {
            s.join(s.id.to_string());
            let join_cluster = peer_cluster.clone();
            s.on(
                "join",
                move |s: Sock, Data(room): Data<String>, ack: AckSender<_>| {
                    s.join(room);
                    // sharded mode: the room's channel is live before the client hears "ok"
                    let cluster = join_cluster.clone();
                    async move {
                        cluster.sync_rooms("/").await;
                        let _ = ack.send(&json!({"ok": true}));
                    }
                },
            );
            s.on(
                "leave",
                |s: Sock, Data(room): Data<String>, ack: AckSender<_>| {
                    s.leave(room);
                    let _ = ack.send(&json!({"ok": true}));
                    async {}
                },
            );
            let cluster = peer_cluster.clone();
            let emitter = peer_emitter.clone();
            let log = log.clone();
            s.on("op", move |Data(op): Data<Value>, ack: AckSender<_>| {
                let io = io.clone();
                let emitter = emitter.clone();
                async move {
                    let reply = run_op(&io, &cluster, &emitter, &log, &op)
                        .await
                        .unwrap_or_else(|e| json!({"ok": false, "error": format!("{e:#}")}));
                    let _ = ack.send(&reply);
                }
            });
            async {}
        })
        .await
        .context("subscribe the namespace")?;

        let app = axum::Router::new().layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
        });
        cluster.wait_ready(Duration::from_secs(10)).await;
        Ok(Self {
            url: format!("http://{addr}"),
            cluster,
            stop,
        })
    }
}

/// Operations through `sio_emitter::Emitter`, a separate Redis client that is not a
/// cluster member: what a backend job would do.
async fn emitter_op(emitter: &sio_emitter::Emitter, op: &Value) -> anyhow::Result<Value> {
    let mut target = emitter.of(op["nsp"].as_str().unwrap_or("/"));
    for room in strings(&op["rooms"]) {
        target = target.to(room);
    }
    for room in strings(&op["except"]) {
        target = target.except(room);
    }
    if op["volatile"].as_bool() == Some(true) {
        target = target.volatile();
    }
    let event = op["event"].as_str().unwrap_or("event");
    let args = op["args"].as_array().cloned().unwrap_or_default();
    Ok(match op["action"].as_str().unwrap_or_default() {
        "emit" => {
            let args: Vec<rmpv::Value> = args.iter().map(to_rmpv).collect();
            target.emit(event, args).await?;
            json!({"ok": true})
        }
        "socketsJoin" => {
            target.sockets_join(strings(&op["join"])).await?;
            json!({"ok": true})
        }
        "socketsLeave" => {
            target.sockets_leave(strings(&op["leave"])).await?;
            json!({"ok": true})
        }
        "disconnectSockets" => {
            target
                .disconnect_sockets(op["close"].as_bool().unwrap_or(false))
                .await?;
            json!({"ok": true})
        }
        "serverSideEmit" => {
            target.server_side_emit(event, args).await?;
            json!({"ok": true})
        }
        "serverSideEmitWithAck" => {
            let replies = target.server_side_emit_with_ack(event, args).await?;
            json!({"ok": true, "replies": replies})
        }
        "fetchSockets" => {
            let sockets = target.fetch_sockets().await?;
            let sockets: Vec<Value> = sockets
                .iter()
                .map(|s| json!({"id": s.id, "rooms": s.rooms}))
                .collect();
            json!({"ok": true, "count": sockets.len(), "sockets": sockets})
        }
        other => json!({"ok": false, "error": format!("unknown emitter action {other}")}),
    })
}

async fn run_op(
    io: &Io,
    cluster: &RedisCluster,
    emitter: &sio_emitter::Emitter,
    log: &Mutex<Vec<Value>>,
    op: &Value,
) -> anyhow::Result<Value> {
    let rooms = strings(&op["rooms"]);
    let except = strings(&op["except"]);
    let target = || {
        let mut t = io.broadcast();
        if !rooms.is_empty() {
            t = t.to(rooms.clone());
        }
        if !except.is_empty() {
            t = t.except(except.clone());
        }
        if op["local"].as_bool() == Some(true) {
            t = t.local();
        }
        if op["volatile"].as_bool() == Some(true) {
            t = t.volatile();
        }
        t
    };
    let kind = op["kind"].as_str().unwrap_or_default();
    Ok(match kind {
        "emit" => {
            let args = op["args"].as_array().cloned().unwrap_or_default();
            let event = op["event"].as_str().unwrap_or("event").to_string();
            target()
                .emit(&event, &Spread(args.iter().map(to_rmpv).collect()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            json!({"ok": true})
        }
        "emitWithAck" => {
            use futures_util::StreamExt;
            let args = op["args"].as_array().cloned().unwrap_or_default();
            let event = op["event"].as_str().unwrap_or("event").to_string();
            let timeout = Duration::from_millis(op["timeout"].as_u64().unwrap_or(2000));
            let stream = target()
                .timeout(timeout)
                .emit_with_ack::<_, Value>(&event, &Spread(args.iter().map(to_rmpv).collect()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let results: Vec<_> = stream.collect().await;
            let replies: Vec<Value> = results
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok().cloned())
                .collect();
            let errors = results.iter().filter(|(_, r)| r.is_err()).count();
            json!({"ok": true, "replies": replies, "errors": errors, "pending": cluster.pending_requests()})
        }
        "fetchSockets" => {
            let sockets = target().fetch_sockets().await?;
            let ids: Vec<String> = sockets.iter().map(|s| s.data().id.to_string()).collect();
            json!({"ok": true, "count": ids.len()})
        }
        "fetchAndJoin" => {
            let room = op["join"].as_str().unwrap_or_default().to_string();
            let sockets = target().fetch_sockets().await?;
            for s in &sockets {
                s.join(room.clone()).await?;
            }
            json!({"ok": true, "count": sockets.len()})
        }
        "socketsJoin" => {
            target()
                .join(op["join"].as_str().unwrap_or_default().to_string())
                .await?;
            json!({"ok": true})
        }
        "socketsLeave" => {
            target()
                .leave(op["leave"].as_str().unwrap_or_default().to_string())
                .await?;
            json!({"ok": true})
        }
        "disconnectSockets" => {
            target()
                .disconnect()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            json!({"ok": true})
        }
        "rooms" => {
            let rooms: Vec<String> = io.rooms().await?.iter().map(|r| r.to_string()).collect();
            json!({"ok": true, "rooms": rooms})
        }
        "serverCount" => json!({"ok": true, "count": cluster.server_count("/").await?}),
        "serverSideEmit" => {
            let event = op["event"].as_str().unwrap_or_default();
            let args = op["args"].as_array().cloned().unwrap_or_default();
            if op["withAck"].as_bool() == Some(true) {
                let timeout = op["timeout"].as_u64().map(Duration::from_millis);
                let replies = cluster
                    .server_side_emit_with_ack("/", event, args, timeout)
                    .await?;
                json!({"ok": true, "replies": replies, "pending": cluster.pending_requests()})
            } else {
                cluster.server_side_emit("/", event, args).await?;
                json!({"ok": true})
            }
        }
        "emitter" => emitter_op(emitter, op).await?,
        "serverSideLog" => {
            let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            json!({"ok": true, "log": log})
        }
        other => json!({"ok": false, "error": format!("unknown op {other}")}),
    })
}

//! Benchmark peer: socketioxide 0.18 + socketioxide-redis 0.4 (fred driver), written the
//! way the socketioxide docs show it, with the sio-cluster gateway contract:
//! `join(room, ack)` → `{ok:true}`; `publish({room, event, data}, ack)` →
//! `io.to(room).emit(event, data)` then `{ok:true}`. No auth.
//!
//! ```text
//! bench-peer-socketioxide '{"redis":"redis://127.0.0.1:6379","port":0,"buffer":128}'
//! ```
//!
//! Prints `{"port":N}` once listening on 127.0.0.1. `buffer` sets socketioxide's
//! per-socket `max_buffer_size` and fred's pub/sub broadcast capacity (library
//! defaults when absent: 128 and 32).

use std::sync::Arc;

use fred::prelude::{ClientLike, Config};
use fred::types::RespVersion;
use serde::Deserialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide_redis::{FredAdapter, RedisAdapterCtr};

#[derive(Deserialize)]
struct Opts {
    redis: String,
    #[serde(default)]
    port: u16,
    buffer: Option<usize>,
}

#[derive(Deserialize)]
struct Publish {
    room: String,
    event: String,
    #[serde(default)]
    data: serde_json::Value,
}

fn ok() -> serde_json::Value {
    serde_json::json!({ "ok": true })
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    socket.on(
        "join",
        async |s: SocketRef<A>, Data(room): Data<String>, ack: AckSender<A>| {
            s.join(room);
            let _ = ack.send(&ok());
        },
    );
    socket.on(
        "publish",
        async |s: SocketRef<A>, Data(req): Data<Publish>, ack: AckSender<A>| {
            let _ = s.within(req.room).emit(&req.event, &req.data).await;
            let _ = ack.send(&ok());
        },
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "{}".into());
    let opts: Opts = serde_json::from_str(&arg)?;
    let mut config = Config::from_url(&opts.redis)?;
    config.version = RespVersion::RESP3;
    let mut builder = fred::prelude::Builder::from_config(config);
    if let Some(n) = opts.buffer {
        builder.with_performance_config(|p| p.broadcast_channel_capacity = n);
    }
    let client = builder.build_subscriber_client()?;
    client.init().await?;
    let adapter = RedisAdapterCtr::new_with_fred(client).await?;
    let mut io = SocketIo::builder();
    if let Some(n) = opts.buffer {
        io = io.max_buffer_size(n);
    }
    let (layer, io) = io.with_adapter::<FredAdapter<_>>(adapter).build_layer();
    io.ns("/", on_connect).await?;
    let io = Arc::new(io);
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
    println!(
        "{}",
        serde_json::json!({ "port": listener.local_addr()?.port() })
    );
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = io.close().await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

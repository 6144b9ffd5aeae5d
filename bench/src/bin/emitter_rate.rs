//! Emitter throughput: how many messages per second one `sio-emitter` publishes, and how
//! many deliveries per second reach real clients through a cluster.
//!
//! ```text
//! cargo run --release -p sio-bench --bin emitter-rate -- --redis redis://127.0.0.1:6379
//! cargo run --release -p sio-bench --bin emitter-rate -- --redis ... --smoke   # seconds, for CI
//! ```
//!
//! Phase 1 publishes `--messages` events into an empty room, one at a time and then
//! with up to `--in-flight` outstanding. Phase 2 starts `--nodes` sio-server nodes in
//! this process (cluster mode on the same Redis), connects `--clients` official
//! socket.io clients (Node.js, `tests/js/scenarios.mjs sink`) spread over them in one
//! room, and times `--messages` emits until every client has every message. Prints one
//! JSON line per phase. Figures depend on the machine: compare runs on one machine.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{StreamExt, stream};
use serde_json::json;
use sio_emitter::Emitter;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, Parser)]
struct Args {
    /// Redis of the benchmark (a throwaway one: the bench publishes into it).
    #[arg(long, env = "SIO_REDIS_URL")]
    redis: String,
    /// Messages per phase.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Outstanding publishes in the pipelined run.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// sio-server nodes for the end-to-end phase.
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Clients for the end-to-end phase.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// A few seconds: 500 messages, 10 clients (keeps the bench working in CI).
    #[arg(long)]
    smoke: bool,
}

async fn publish_all(
    emitter: &Emitter,
    room: &str,
    n: usize,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..n)
        .map(|i| async move {
            emitter
                .to(room.to_string())
                .emit("bench", [json!({"seq": i})])
                .await
        })
        .buffered(in_flight.max(1))
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        bail!("publish failed: {e}");
    }
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.messages = 500;
        args.clients = 10;
    }
    let emitter = Emitter::connect(&args.redis).await?;

    for in_flight in [1, args.in_flight] {
        let elapsed = publish_all(&emitter, "nobody-here", args.messages, in_flight).await?;
        println!(
            "{}",
            json!({
                "phase": "publish",
                "messages": args.messages,
                "in_flight": in_flight,
                "ms": elapsed.as_millis() as u64,
                "msgs_per_s": (args.messages as f64 / elapsed.as_secs_f64()).round(),
            })
        );
    }

    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let cli = sio_server::config::Cli::try_parse_from([
            "sio-server",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &args.redis,
            "--node-id",
            &format!("bench-{i}"),
        ])?;
        let config = sio_server::Config::from_cli(cli)?;
        nodes.push(sio_server::node::spawn(config).await?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let urls: Vec<String> = nodes.iter().map(|n| format!("http://{}", n.addr)).collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js/scenarios.mjs");
    let opts = json!({
        "scenario": "sink", "urls": urls, "clients": args.clients, "room": "bench",
        "expect": args.messages, "waitMs": 120_000,
    });
    let mut sink = tokio::process::Command::new("node")
        .arg(script)
        .arg(opts.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("run node (npm ci --prefix tests/js first)")?;
    let mut lines = BufReader::new(sink.stdout.take().context("sink stdout")?).lines();
    let ready = lines.next_line().await?.unwrap_or_default();
    if !ready.contains("ready") {
        bail!("sink did not get ready: {ready}");
    }
    let started = Instant::now();
    publish_all(&emitter, "bench", args.messages, args.in_flight).await?;
    let report = lines.next_line().await?.unwrap_or_default();
    let elapsed = started.elapsed();
    let report: serde_json::Value = serde_json::from_str(&report).context("sink report")?;
    let received = report["received"].as_u64().unwrap_or(0);
    let expected = (args.messages * args.clients) as u64;
    println!(
        "{}",
        json!({
            "phase": "end-to-end",
            "nodes": args.nodes,
            "clients": args.clients,
            "messages": args.messages,
            "deliveries": received,
            "lost": expected.saturating_sub(received),
            "ms": elapsed.as_millis() as u64,
            "deliveries_per_s": (received as f64 / elapsed.as_secs_f64()).round(),
        })
    );
    for node in nodes {
        node.shutdown().await?;
    }
    if received < expected {
        bail!("{} of {expected} deliveries missing", expected - received);
    }
    Ok(())
}

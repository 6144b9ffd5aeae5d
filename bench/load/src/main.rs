//! `sio-load`: a load generator for Socket.IO v5 / Engine.IO v4 servers that follow the
//! sio-cluster gateway contract (`join(room, ack)`, `publish({room, event, data}, ack)`).
//!
//! ```text
//! sio-load fanout --url http://127.0.0.1:3001 --url http://127.0.0.1:3002 --subscribers 1000 --messages 2000 --pid 123 --pid 124
//! sio-load fanout ... --rate 50            # fixed rate: latency
//! sio-load fanout ... --in-flight 0        # unbounded publisher: overload
//! sio-load sink --url ... --messages N     # receive N messages sent by an emitter
//! sio-load emit --redis redis://.. --messages N   # the Rust emitter (sio-emitter)
//! sio-load emit ... --redis-mode streams           # to a streams-mode cluster
//! sio-load emit ... --redis-mode sharded           # to a sharded-mode cluster (SPUBLISH)
//! sio-load idle --url ... --connections 10000 --pid ..
//! sio-load storm --url http://127.0.0.1:8080 --sessions 2000 --pid ..
//! ```
//!
//! Every subcommand prints one JSON line with its figures; `--pid` names server processes
//! whose CPU time and RSS are read from `/proc` around the measured phase.

mod client;
mod fanout;
mod idle;
mod procstat;
mod stats;
mod storm;

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use futures_util::{StreamExt, stream};
use serde_json::json;
use sio_protocol::{AdapterMode, SubscriptionMode};

use client::Target;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Runtime worker threads (default: 1; the servers need the other cores).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Servers {
    /// A node URL (`http://127.0.0.1:3001`); repeat for each node. Clients are spread
    /// round robin; publishers use the first.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// A server process to measure (CPU, RSS); repeat.
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Concurrent connection attempts.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Subscribers in one room, publishers through the gateway's `publish`.
    Fanout {
        #[command(flatten)]
        servers: Servers,
        /// Subscribers, spread over the nodes.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Publishers (on the first node), each with its own sequence.
        #[arg(long, default_value_t = 1)]
        publishers: u32,
        /// Messages per publisher.
        #[arg(long, default_value_t = 2000)]
        messages: u64,
        /// Messages per second per publisher (default: as fast as acks allow).
        #[arg(long)]
        rate: Option<f64>,
        /// Unacked publishes per publisher; 0 = unbounded.
        #[arg(long, default_value_t = 100)]
        in_flight: u64,
        /// Room name.
        #[arg(long, default_value = "bench")]
        room: String,
        /// Give up this long after the last delivery.
        #[arg(long, default_value = "3s", value_parser = humantime_secs)]
        drain: Duration,
    },
    /// Subscribers that wait for `--messages` messages from an emitter; prints
    /// `{"ready":true}` when joined, then the report.
    Sink {
        #[command(flatten)]
        servers: Servers,
        /// Subscribers, spread over the nodes.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Messages the emitter sends.
        #[arg(long)]
        messages: u64,
        /// Room name.
        #[arg(long, default_value = "bench")]
        room: String,
        /// Give up this long after the last delivery.
        #[arg(long, default_value = "3s", value_parser = humantime_secs)]
        drain: Duration,
    },
    /// Publishes `m {s,q,t}` messages into a room with the Rust emitter (sio-emitter).
    Emit {
        /// Redis URL.
        #[arg(long)]
        redis: String,
        /// Room name.
        #[arg(long, default_value = "bench")]
        room: String,
        /// Messages.
        #[arg(long, default_value_t = 20_000)]
        messages: u64,
        /// Outstanding publishes.
        #[arg(long, default_value_t = 100)]
        in_flight: usize,
        /// The cluster's Redis mode: classic, sharded (SPUBLISH, dynamic subscription
        /// mode: a room's broadcasts on the room's channel) or streams (Node's stream
        /// defaults).
        #[arg(long, default_value = "classic", value_parser = ["classic", "sharded", "streams"])]
        redis_mode: String,
    },
    /// Idle websocket connections: server RSS per connection.
    Idle {
        #[command(flatten)]
        servers: Servers,
        /// Connections, spread over the nodes.
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        /// Wait this long before reading RSS.
        #[arg(long, default_value = "3s", value_parser = humantime_secs)]
        settle: Duration,
    },
    /// Polling handshakes upgraded to websocket, through one address (a balancer).
    Storm {
        #[command(flatten)]
        servers: Servers,
        /// Sessions in total.
        #[arg(long, default_value_t = 2000)]
        sessions: usize,
        /// Distinct client source addresses (127.1.x.y).
        #[arg(long, default_value_t = 500)]
        sources: usize,
        /// Polling only: no websocket upgrade.
        #[arg(long)]
        no_upgrade: bool,
        /// Start sessions at this many per second (at most `--concurrency` open at once)
        /// instead of as fast as they complete: two set-ups then do the same work per
        /// second, so their CPU per session compares cost, not throughput.
        #[arg(long)]
        rate: Option<f64>,
    },
}

fn humantime_secs(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let v: f64 = num.parse().map_err(|_| format!("bad duration {s}"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs_f64(v)),
        "ms" => Ok(Duration::from_secs_f64(v / 1000.0)),
        _ => Err(format!("bad duration unit in {s} (s or ms)")),
    }
}

fn targets(urls: &[String]) -> anyhow::Result<Vec<Target>> {
    urls.iter().map(|u| Target::parse(u)).collect()
}

async fn emit(
    redis: &str,
    mode: AdapterMode,
    room: &str,
    messages: u64,
    in_flight: usize,
) -> anyhow::Result<serde_json::Value> {
    let emitter = sio_emitter::Emitter::connect(redis).await?.with_mode(mode);
    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..messages)
        .map(|q| {
            let emitter = &emitter;
            async move {
                emitter
                    .to(room.to_string())
                    .emit("m", [json!({"s": 0, "q": q, "t": stats::now_us()})])
                    .await
            }
        })
        .buffered(in_flight.max(1))
        .collect()
        .await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        bail!("publish failed: {e}");
    }
    Ok(
        json!({"messages": messages, "ms": ms.round(), "msgs_per_s": (messages as f64 / ms * 1000.0).round()}),
    )
}

async fn run(cli: Cli) -> anyhow::Result<serde_json::Value> {
    match cli.command {
        Command::Fanout {
            servers,
            subscribers,
            publishers,
            messages,
            rate,
            in_flight,
            room,
            drain,
        } => {
            fanout::run(fanout::Fanout {
                targets: targets(&servers.urls)?,
                subscribers,
                room,
                source: fanout::Source::Gateway {
                    publishers,
                    messages,
                    rate,
                    in_flight,
                },
                pids: servers.pids,
                drain,
                concurrency: servers.concurrency,
            })
            .await
        }
        Command::Sink {
            servers,
            subscribers,
            messages,
            room,
            drain,
        } => {
            fanout::run(fanout::Fanout {
                targets: targets(&servers.urls)?,
                subscribers,
                room,
                source: fanout::Source::External { messages },
                pids: servers.pids,
                drain,
                concurrency: servers.concurrency,
            })
            .await
        }
        Command::Emit {
            redis,
            room,
            messages,
            in_flight,
            redis_mode,
        } => {
            let mode = match redis_mode.as_str() {
                "streams" => AdapterMode::Streams,
                "sharded" => AdapterMode::Sharded(SubscriptionMode::Dynamic),
                _ => AdapterMode::Classic,
            };
            emit(&redis, mode, &room, messages, in_flight).await
        }
        Command::Idle {
            servers,
            connections,
            settle,
        } => {
            idle::run(
                &targets(&servers.urls)?,
                connections,
                &servers.pids,
                settle,
                servers.concurrency,
            )
            .await
        }
        Command::Storm {
            servers,
            sessions,
            sources,
            no_upgrade,
            rate,
        } => {
            let t = targets(&servers.urls)?;
            storm::run(
                &t[0],
                storm::Storm {
                    sessions,
                    concurrency: servers.concurrency,
                    sources,
                    upgrade: !no_upgrade,
                    rate,
                },
                &servers.pids,
            )
            .await
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?;
    let report = rt.block_on(run(cli))?;
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(humantime_secs("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(humantime_secs("250ms"), Ok(Duration::from_millis(250)));
        assert!(humantime_secs("3h").is_err());
    }
}

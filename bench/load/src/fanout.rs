//! Fan-out: subscribers in one room spread over the nodes, publishers sending
//! `publish({room, event:"m", data:{s,q,t}})` through the gateway (or an external
//! emitter), every delivery counted and timed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Target, Ws};
use crate::procstat;
use crate::stats::{Receiver, Totals, now_us};

/// How long one client may take to connect and join.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects `n` websocket clients spread round-robin over `targets` (`concurrency` at a
/// time), each joined to `room` when given; each with the index of its target.
pub async fn connect_many(
    targets: &[Target],
    n: usize,
    room: Option<&str>,
    concurrency: usize,
) -> anyhow::Result<Vec<(usize, Ws)>> {
    let results: Vec<anyhow::Result<(usize, Ws)>> = stream::iter(0..n)
        .map(|i| {
            let node = i % targets.len();
            let target = targets[node].clone();
            async move {
                let connect = async {
                    let mut ws = client::connect_ws(&target, None).await?;
                    if let Some(room) = room {
                        client::join(&mut ws, room).await?;
                    }
                    Ok((node, ws))
                };
                tokio::time::timeout(CONNECT_TIMEOUT, connect)
                    .await
                    .unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "no connect/join answer in {CONNECT_TIMEOUT:?}"
                        ))
                    })
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut out = Vec::with_capacity(n);
    let mut first_error = None;
    for r in results {
        match r {
            Ok(ws) => out.push(ws),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if out.is_empty() {
        return Err(first_error.unwrap_or_else(|| anyhow::anyhow!("no clients")))
            .context("no client connected");
    }
    if let Some(e) = first_error {
        eprintln!(
            "{} of {n} clients failed to connect, e.g.: {e:#}",
            n - out.len()
        );
    }
    Ok(out)
}

/// Runs a subscriber connected to node `node` until `stop`, counting every message into
/// `totals`.
pub async fn subscribe(
    (node, mut ws): (usize, Ws),
    expected: u64,
    totals: Arc<Totals>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rx = Receiver::new(expected, node);
    // one future for the whole run, not one per frame
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if t.as_str() == "2" {
                        if ws.send(Message::text("3")).await.is_err() {
                            totals.disconnects.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    } else {
                        rx.on_frame(t.as_str(), &totals);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    totals.disconnects.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = &mut stopped => break,
        }
    }
    rx.flush(&totals);
    let _ = ws.close(None).await;
}

/// What one publisher did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Published {
    /// Publishes sent.
    pub sent: u64,
    /// Publishes acked `{ok:true}`.
    pub acked: u64,
    /// Publishes refused or unanswered.
    pub failed: u64,
}

/// Sends `n` publishes as sender `sender`: at `rate` per second, or as fast as the
/// window of `in_flight` unacked publishes allows (`in_flight == 0`: unbounded).
pub async fn publish(
    mut ws: Ws,
    sender: u32,
    room: &str,
    n: u64,
    rate: Option<f64>,
    in_flight: u64,
    ack_timeout: Duration,
) -> anyhow::Result<Published> {
    let mut out = Published::default();
    let mut tick = rate.map(|r| {
        let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001)));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        i
    });
    let window = if in_flight == 0 { u64::MAX } else { in_flight };
    // Acks that stop coming (a server may drop them) end the run: the rest count as failed.
    let mut last_ack = Instant::now();
    let mut stalled = tokio::time::interval(Duration::from_millis(250));
    while out.acked + out.failed < n {
        if last_ack.elapsed() > ack_timeout {
            // reported as sent < messages, or as failed publishes
            out.failed = out.sent - out.acked;
            break;
        }
        let can_send = out.sent < n && out.sent - out.acked - out.failed < window;
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if t.as_str() == "2" {
                        ws.send(Message::text("3")).await?;
                    } else if t.starts_with("43") {
                        last_ack = Instant::now();
                        if t.contains("\"ok\":true") { out.acked += 1 } else { out.failed += 1 }
                    }
                }
                Some(Ok(Message::Close(_))) | None => bail!("publisher connection closed after {} sends", out.sent),
                Some(Err(e)) => bail!("publisher connection failed after {} sends: {e}", out.sent),
                Some(Ok(_)) => {}
            },
            _ = async { if let Some(t) = tick.as_mut() { t.tick().await; } }, if can_send => {
                // One tick at a fixed rate; a batch (flushed once) at max rate.
                let batch = if rate.is_some() { 1 } else { 64 };
                let mut k = 0;
                while k < batch && out.sent < n && out.sent - out.acked - out.failed < window {
                    let q = out.sent;
                    let packet = format!(
                        "42{q}{}",
                        json!(["publish", {"room": room, "event": "m", "data": {"s": sender, "q": q, "t": now_us()}}])
                    );
                    ws.feed(Message::text(packet)).await?;
                    out.sent += 1;
                    k += 1;
                }
                ws.flush().await?;
            },
            _ = stalled.tick() => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(out)
}

/// Where the messages come from.
pub enum Source {
    /// `publishers` gateway clients on the first target.
    Gateway {
        /// Number of publishers (sender ids 0..).
        publishers: u32,
        /// Messages per publisher.
        messages: u64,
        /// Messages per second per publisher; `None`: as fast as the window allows.
        rate: Option<f64>,
        /// Unacked publishes per publisher; 0: unbounded.
        in_flight: u64,
    },
    /// Something else (an emitter) sends `messages` messages; prints `{"ready":true}` when
    /// the subscribers are in the room.
    External {
        /// Messages the external sender will send.
        messages: u64,
    },
}

/// Options of a fan-out run.
pub struct Fanout {
    /// The nodes.
    pub targets: Vec<Target>,
    /// Subscribers in the room, spread over the targets.
    pub subscribers: usize,
    /// The room.
    pub room: String,
    /// Message source.
    pub source: Source,
    /// Server processes to measure.
    pub pids: Vec<u32>,
    /// Stop waiting when no message arrived for this long after the last publish.
    pub drain: Duration,
    /// Concurrent connects.
    pub concurrency: usize,
}

/// Runs a fan-out and prints one JSON report line.
pub async fn run(opts: Fanout) -> anyhow::Result<serde_json::Value> {
    let messages = match &opts.source {
        Source::Gateway {
            publishers,
            messages,
            ..
        } => *publishers as u64 * messages,
        Source::External { messages } => *messages,
    };
    let subs = connect_many(
        &opts.targets,
        opts.subscribers,
        Some(&opts.room),
        opts.concurrency,
    )
    .await?;
    let connect_failed = opts.subscribers - subs.len();
    let subscribers = subs.len();
    let totals = Arc::new(Totals::new(opts.targets.len())?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = subs
        .into_iter()
        .map(|ws| tokio::spawn(subscribe(ws, messages, totals.clone(), stop_rx.clone())))
        .collect();
    let expected = messages * subscribers as u64;

    // peak RSS while the run lasts
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (pids, peak) = (opts.pids.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(s) = procstat::sample(&pids) {
                    peak.fetch_max(s.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let before = procstat::sample(&opts.pids)?;
    let started = Instant::now();
    let started_us = now_us();
    let mut published = Published::default();
    match opts.source {
        Source::Gateway {
            publishers,
            messages,
            rate,
            in_flight,
        } => {
            let mut handles = Vec::new();
            let drain = opts.drain;
            for s in 0..publishers {
                let ws = client::connect_ws(&opts.targets[0], None).await?;
                let room = opts.room.clone();
                handles.push(tokio::spawn(async move {
                    publish(ws, s, &room, messages, rate, in_flight, drain).await
                }));
            }
            for h in handles {
                let p = h.await??;
                published.sent += p.sent;
                published.acked += p.acked;
                published.failed += p.failed;
            }
        }
        Source::External { .. } => {
            println!("{}", json!({"ready": true}));
        }
    }
    // wait for every delivery, or until deliveries stop coming
    let mut last = (totals.received.load(Ordering::Relaxed), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let got = totals.received.load(Ordering::Relaxed);
        if got >= expected {
            break;
        }
        if got != last.0 {
            last = (got, Instant::now());
        } else if last.1.elapsed() > opts.drain && (got > 0 || started.elapsed() > opts.drain * 10)
        {
            break;
        }
    }
    let after = procstat::sample(&opts.pids)?;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    sampler.abort();
    let received = totals.received.load(Ordering::Relaxed);
    let end_us = totals.last_us.load(Ordering::Relaxed).max(started_us + 1);
    let secs = (end_us - started_us) as f64 / 1e6;
    let cpu_ms = after.cpu_ms.saturating_sub(before.cpu_ms);
    Ok(json!({
        "subscribers": subscribers,
        "connect_failed": connect_failed,
        "messages": messages,
        "published": published.sent,
        "acked": published.acked,
        "publish_failed": published.failed,
        "expected": expected,
        "received": received,
        "lost": expected.saturating_sub(received),
        "reordered": totals.reordered.load(Ordering::Relaxed),
        "disconnects": totals.disconnects.load(Ordering::Relaxed),
        "seconds": (secs * 1000.0).round() / 1000.0,
        "delivered_per_s": (received as f64 / secs).round(),
        "p50_ms": totals.percentile_ms(0.50),
        "p99_ms": totals.percentile_ms(0.99),
        "p999_ms": totals.percentile_ms(0.999),
        "max_ms": totals.percentile_ms(1.0),
        // by the node the receivers are on (the publisher is on the first)
        "p50_ms_by_node": totals.percentile_ms_by_node(0.50),
        "p99_ms_by_node": totals.percentile_ms_by_node(0.99),
        "latency_samples": totals.samples(),
        "server_cpu_ms": cpu_ms,
        "server_cpu_us_per_delivery": if received > 0 { (cpu_ms as f64 * 1000.0 / received as f64 * 100.0).round() / 100.0 } else { 0.0 },
        "server_rss_kib_end": after.rss_kib,
        "server_rss_kib_peak": peak.load(Ordering::Relaxed).max(after.rss_kib),
    }))
}

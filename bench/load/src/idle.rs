//! Idle memory: server RSS before and after `n` websocket connections that do nothing
//! but answer heartbeats.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use crate::client::Target;
use crate::fanout::{connect_many, subscribe};
use crate::procstat;
use crate::stats::Totals;

/// Connects `n` idle clients, waits `settle`, and reports server RSS per connection.
pub async fn run(
    targets: &[Target],
    n: usize,
    pids: &[u32],
    settle: Duration,
    concurrency: usize,
) -> anyhow::Result<serde_json::Value> {
    let base = procstat::sample(pids)?;
    let conns = connect_many(targets, n, None, concurrency).await?;
    let connect_failed = n - conns.len();
    let n = conns.len();
    let totals = Arc::new(Totals::new(targets.len())?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(subscribe(ws, 0, totals.clone(), stop_rx.clone())))
        .collect();
    tokio::time::sleep(settle).await;
    let loaded = procstat::sample(pids)?;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let per = loaded.rss_kib.saturating_sub(base.rss_kib) as f64 / n.max(1) as f64;
    Ok(json!({
        "connections": n,
        "connect_failed": connect_failed,
        "server_rss_kib_base": base.rss_kib,
        "server_rss_kib": loaded.rss_kib,
        "kib_per_connection": (per * 100.0).round() / 100.0,
        "disconnects": totals.disconnects.load(std::sync::atomic::Ordering::Relaxed),
        "server_cpu_ms_connecting": loaded.cpu_ms.saturating_sub(base.cpu_ms),
    }))
}

//! Connect storm: complete Socket.IO sessions per second, each a long-polling handshake
//! upgraded to websocket (the official client's default), through a balancer.
//!
//! Session `i` binds its sockets to the source address `127.1.x.y` (one of `sources`),
//! so a balancer hashing on the client address (`hash $remote_addr`) keeps a session on
//! one node while round robin spreads its requests over all of them.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::{StreamExt, stream};
use serde_json::json;

use crate::client::{self, Target};
use crate::procstat;

fn source(i: usize, sources: usize) -> IpAddr {
    let j = i % sources.max(1);
    IpAddr::V4(Ipv4Addr::new(127, 1, (j / 250) as u8, (j % 250 + 1) as u8))
}

/// What a storm does.
pub struct Storm {
    /// Sessions in total.
    pub sessions: usize,
    /// Sessions open at once, at most.
    pub concurrency: usize,
    /// Distinct source addresses.
    pub sources: usize,
    /// Upgrade each session to websocket after the polling connect.
    pub upgrade: bool,
    /// Sessions started per second; `None`: each slot starts the next session as soon as
    /// its last one ended.
    pub rate: Option<f64>,
}

/// Runs the storm and reports the rate reached and the servers' CPU per session.
pub async fn run(target: &Target, storm: Storm, pids: &[u32]) -> anyhow::Result<serde_json::Value> {
    let Storm {
        sessions,
        concurrency,
        sources,
        upgrade,
        rate,
    } = storm;
    let before = procstat::sample(pids)?;
    let start = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(0..sessions)
        .map(|i| async move {
            if let Some(rate) = rate {
                let at = Duration::from_secs_f64(i as f64 / rate.max(0.001));
                tokio::time::sleep_until(start + at).await;
            }
            let ws = client::polling_session(target, Some(source(i, sources)), upgrade).await?;
            if let Some(mut ws) = ws {
                let _ = ws.close(None).await;
            }
            Ok(())
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let secs = start.elapsed().as_secs_f64();
    let after = procstat::sample(pids)?;
    let mut errors: Vec<String> = Vec::new();
    let mut failed = 0u64;
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        failed += 1;
        let s = format!("{e:#}");
        if errors.len() < 3 && !errors.contains(&s) {
            errors.push(s);
        }
    }
    let ok = sessions as u64 - failed;
    let cpu_ms = after.cpu_ms.saturating_sub(before.cpu_ms);
    Ok(json!({
        "sessions": sessions,
        "upgrade": upgrade,
        "rate": rate,
        "ok": ok,
        "failed": failed,
        "errors": errors,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "sessions_per_s": (ok as f64 / secs).round(),
        "server_cpu_ms": cpu_ms,
        "server_cpu_us_per_session": if ok > 0 { (cpu_ms as f64 * 1000.0 / ok as f64).round() } else { 0.0 },
    }))
}

//! What the receivers measure: deliveries, loss, per-sender order, end-to-end latency.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Deserialize;

/// Microseconds since the Unix epoch: the send time carried in every message, comparable
/// across processes on one machine.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The payload of a benchmark message: sender, sequence number, send time (µs).
#[derive(Debug, Deserialize)]
pub struct Stamp {
    /// Sender id.
    pub s: u32,
    /// Sequence number of this sender, from 0.
    pub q: u64,
    /// Send time, [`now_us`].
    pub t: u64,
}

/// Counters shared by every receiver of a run.
pub struct Totals {
    /// Messages delivered to receivers.
    pub received: AtomicU64,
    /// Messages that arrived after a later message of the same sender.
    pub reordered: AtomicU64,
    /// Receivers whose connection ended before the run did.
    pub disconnects: AtomicU64,
    /// When a message last arrived ([`now_us`]).
    pub last_us: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    /// The same latencies split by the node a receiver is connected to.
    by_node: Vec<Mutex<Histogram<u64>>>,
}

impl Totals {
    /// Empty counters for receivers on `nodes` nodes; latencies from 1 µs to 10 minutes,
    /// 3 significant digits.
    pub fn new(nodes: usize) -> anyhow::Result<Self> {
        let histogram = || Histogram::new_with_bounds(1, 600_000_000, 3).map(Mutex::new);
        Ok(Self {
            received: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
            latency: histogram()?,
            by_node: (0..nodes.max(1))
                .map(|_| histogram())
                .collect::<Result<_, _>>()?,
        })
    }

    /// Latency percentile in milliseconds of each node's receivers.
    pub fn percentile_ms_by_node(&self, q: f64) -> Vec<f64> {
        self.by_node
            .iter()
            .map(|h| {
                let h = h.lock().unwrap_or_else(|e| e.into_inner());
                if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(q) as f64 / 1000.0
                }
            })
            .collect()
    }

    /// Latency percentile in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        if h.is_empty() {
            return 0.0;
        }
        h.value_at_quantile(q) as f64 / 1000.0
    }

    /// Latency samples recorded.
    pub fn samples(&self) -> u64 {
        self.latency.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One receiver's bookkeeping, flushed into [`Totals`] in batches (one lock per batch).
pub struct Receiver {
    next: Vec<u64>,
    received: u64,
    reordered: u64,
    latencies: Vec<u64>,
    expected: u64,
    node: usize,
}

const BATCH: usize = 256;

impl Receiver {
    /// A receiver connected to node `node` that flushes at once when it has `expected`
    /// messages.
    pub fn new(expected: u64, node: usize) -> Self {
        Self {
            next: Vec::new(),
            received: 0,
            reordered: 0,
            latencies: Vec::with_capacity(BATCH),
            expected,
            node,
        }
    }

    /// Counts one `42[event, stamp]` frame; other frames are ignored.
    pub fn on_frame(&mut self, frame: &str, totals: &Totals) {
        let Some(body) = frame.strip_prefix("42") else {
            return;
        };
        let Ok((_, stamp)) = serde_json::from_str::<(serde::de::IgnoredAny, Stamp)>(body) else {
            return;
        };
        let s = stamp.s as usize;
        if self.next.len() <= s {
            self.next.resize(s + 1, 0);
        }
        if stamp.q < self.next[s] {
            self.reordered += 1;
        } else {
            self.next[s] = stamp.q + 1;
        }
        self.received += 1;
        // counted at once: the run watches this total to know when it is complete
        totals.received.fetch_add(1, Ordering::Relaxed);
        totals.last_us.store(now_us(), Ordering::Relaxed);
        self.latencies.push(now_us().saturating_sub(stamp.t).max(1));
        if self.latencies.len() >= BATCH || self.received == self.expected {
            self.flush(totals);
        }
    }

    /// Moves everything counted so far into `totals`.
    pub fn flush(&mut self, totals: &Totals) {
        if self.latencies.is_empty() && self.reordered == 0 {
            return;
        }
        totals
            .reordered
            .fetch_add(self.reordered, Ordering::Relaxed);
        self.reordered = 0;
        let mut h = totals.latency.lock().unwrap_or_else(|e| e.into_inner());
        for &l in &self.latencies {
            h.saturating_record(l);
        }
        drop(h);
        if let Some(node) = totals.by_node.get(self.node) {
            let mut h = node.lock().unwrap_or_else(|e| e.into_inner());
            for &l in &self.latencies {
                h.saturating_record(l);
            }
        }
        self.latencies.clear();
    }
}

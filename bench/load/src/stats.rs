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
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Stamp {
    /// Sender id.
    pub s: u32,
    /// Sequence number of this sender, from 0.
    pub q: u64,
    /// Send time, [`now_us`].
    pub t: u64,
}

impl Stamp {
    /// Reads `s`, `q` and `t` straight from an event's JSON text (`["m",{"s":0,"q":7,
    /// "t":…}]`, keys in any order): a fraction of a general JSON parse, which was the
    /// largest part of this client's work per frame at max rate. `None` when a key is
    /// missing; the caller then parses properly.
    pub fn scan(body: &str) -> Option<Self> {
        let b = body.as_bytes();
        let (mut s, mut q, mut t) = (None, None, None);
        let mut i = 0;
        // one pass: at every `"k":` read the unsigned integer that follows, if any
        while i + 3 < b.len() {
            if !(b[i] == b'"' && b[i + 2] == b'"' && b[i + 3] == b':') {
                i += 1;
                continue;
            }
            let key = b[i + 1];
            let mut j = i + 4;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let start = j;
            let mut v: u64 = 0;
            while j < b.len() && b[j].is_ascii_digit() {
                v = v.checked_mul(10)?.checked_add(u64::from(b[j] - b'0'))?;
                j += 1;
            }
            if j > start {
                match key {
                    b's' => s = Some(v),
                    b'q' => q = Some(v),
                    b't' => t = Some(v),
                    _ => {}
                }
            }
            i = j.max(i + 1);
        }
        Some(Self {
            s: u32::try_from(s?).ok()?,
            q: q?,
            t: t?,
        })
    }
}

impl Stamp {
    /// The stamp of an event's JSON text by a general parse: the second element of the
    /// array, whatever follows it (a server with connection state recovery on appends the
    /// event's offset, a string, as a last argument).
    pub fn parse(body: &str) -> Option<Self> {
        let mut args: Vec<serde_json::Value> = serde_json::from_str(body).ok()?;
        if args.len() < 2 {
            return None;
        }
        serde_json::from_value(args.swap_remove(1)).ok()
    }
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
        self.by_node.iter().map(|h| quantile_ms(h, q)).collect()
    }

    /// Latency percentile in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latency, q)
    }

    /// Latency samples recorded.
    pub fn samples(&self) -> u64 {
        self.latency.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Quantile `q` of `h` in milliseconds; 0 when it holds nothing.
fn quantile_ms(h: &Mutex<Histogram<u64>>, q: f64) -> f64 {
    let h = h.lock().unwrap_or_else(|e| e.into_inner());
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Records every latency of `values` (µs) into `h` under one lock.
fn record_all(h: &Mutex<Histogram<u64>>, values: &[u64]) {
    let mut h = h.lock().unwrap_or_else(|e| e.into_inner());
    for &l in values {
        h.saturating_record(l);
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

    /// Counts one `42[event, stamp]` frame (`42[event, stamp, offset]` when the server
    /// has connection state recovery on); other frames are ignored.
    pub fn on_frame(&mut self, frame: &str, totals: &Totals) {
        let Some(body) = frame.strip_prefix("42") else {
            return;
        };
        let Some(stamp) = Stamp::scan(body).or_else(|| Stamp::parse(body)) else {
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
        let now = now_us();
        totals.last_us.store(now, Ordering::Relaxed);
        self.latencies.push(now.saturating_sub(stamp.t).max(1));
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
        record_all(&totals.latency, &self.latencies);
        if let Some(node) = totals.by_node.get(self.node) {
            record_all(node, &self.latencies);
        }
        self.latencies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_reads_a_stamp_as_serde_does() {
        for body in [
            r#"["m",{"q":7,"s":1,"t":1733500000000000}]"#,
            r#"["m",{"s":1,"q":7,"t":1733500000000000}]"#,
            r#"["m", {"t": 1733500000000000, "s": 1, "q": 7}]"#,
        ] {
            let (_, parsed): (serde::de::IgnoredAny, Stamp) = serde_json::from_str(body).unwrap();
            assert_eq!(Stamp::scan(body), Some(parsed), "{body}");
        }
        assert_eq!(Stamp::scan(r#"["m",{"s":1,"q":7}]"#), None);
        assert_eq!(Stamp::parse(r#"["m",{"s":1,"q":7}]"#), None);
    }

    #[test]
    fn an_offset_after_the_stamp_changes_nothing() {
        // connection state recovery: the stream entry id as the event's last argument
        let stamp = Stamp {
            s: 1,
            q: 7,
            t: 1_733_500_000_000_000,
        };
        for body in [
            r#"["m",{"s":1,"q":7,"t":1733500000000000},"1733500000000-0"]"#,
            r#"["m",{"q":7,"s":1,"t":1733500000000000},"1733500000123-42"]"#,
            r#"["m", {"t": 1733500000000000, "s": 1, "q": 7}, "1-0"]"#,
        ] {
            assert_eq!(Stamp::scan(body).as_ref(), Some(&stamp), "{body}");
            assert_eq!(Stamp::parse(body).as_ref(), Some(&stamp), "{body}");
        }
        let totals = Totals::new(1).unwrap();
        let mut rx = Receiver::new(3, 0);
        for q in [0, 2, 1] {
            let frame = format!(
                r#"42["m",{{"s":0,"q":{q},"t":{}}},"1733500000000-{q}"]"#,
                now_us()
            );
            rx.on_frame(&frame, &totals);
        }
        rx.flush(&totals);
        assert_eq!(totals.received.load(Ordering::Relaxed), 3);
        assert_eq!(totals.reordered.load(Ordering::Relaxed), 1);
        assert_eq!(totals.samples(), 3);
        assert_eq!(Stamp::scan(r#"["m",{"s":"x","q":7,"t":1}]"#), None);
    }
}

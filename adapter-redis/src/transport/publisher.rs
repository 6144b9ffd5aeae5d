//! One ordered queue of outgoing messages, drained by one task that publishes them in
//! pipelined batches on one connection.
//!
//! Why: socketioxide calls `broadcast` once per emit, in the order a sender's events
//! were handled. Publishing each from its own task would let them overtake each other;
//! a single FIFO queue keeps per-sender order across nodes, and batching keeps the cost
//! of a publish to a fraction of a round trip under load.
//!
//! A message takes its place in the queue when [`Publisher::enqueue`] is *called*, not
//! when some future is later polled: callers whose continuation runs in a spawned task
//! (the gateway's publishes under load) could otherwise be polled out of order after a
//! wait and overtake each other. Memory is bounded by a hard cap instead of a wait: over
//! `capacity` queued messages a message is refused and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fred::clients::Client;
use fred::interfaces::PubsubInterface;
use fred::types::Value;
use tokio::sync::mpsc;
use tracing::warn;

use crate::AdapterError;
use crate::stats::Stats;

/// The command a publisher sends each message with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `PUBLISH` (classic pub/sub).
    Publish,
    /// `SPUBLISH` (sharded pub/sub, Redis 7).
    SPublish,
}

/// Most messages put in one pipeline.
const MAX_BATCH: usize = 512;

struct Outgoing {
    channel: String,
    payload: Vec<u8>,
}

/// The sending side of the queue.
pub(crate) struct Publisher {
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Enqueued but not yet answered by Redis.
    pending: Arc<AtomicU64>,
    /// Most messages queued at once.
    capacity: u64,
    stats: Arc<Stats>,
}

impl Publisher {
    /// Starts the publishing task, which sends every message with `command`.
    pub(crate) fn spawn(
        client: Client,
        capacity: usize,
        stats: Arc<Stats>,
        command: Command,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(client, rx, pending.clone(), stats.clone(), command));
        Self {
            tx,
            pending,
            capacity: capacity.max(1) as u64,
            stats,
        }
    }

    /// Queues a message now, in call order: `Ok` once queued,
    /// [`AdapterError::Overloaded`] (counted as `publish_dropped`) when `capacity`
    /// messages are already waiting for Redis.
    pub(crate) fn enqueue(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        let res = self.push(Outgoing { channel, payload });
        if matches!(res, Err(AdapterError::Overloaded)) {
            Stats::add(&self.stats.publish_dropped, 1);
        }
        res
    }

    /// Queues a message that may be dropped: when the queue is full it is dropped and
    /// counted as `volatile_dropped`.
    pub(crate) fn enqueue_volatile(&self, channel: String, payload: Vec<u8>) {
        if self.push(Outgoing { channel, payload }).is_err() {
            Stats::add(&self.stats.volatile_dropped, 1);
        }
    }

    fn push(&self, message: Outgoing) -> Result<(), AdapterError> {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(AdapterError::Overloaded);
        }
        self.tx.send(message).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            AdapterError::Closed
        })
    }

    /// Waits until every queued message was handed to Redis, at most `timeout`.
    pub(crate) async fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.pending.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn run(
    client: Client,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    pending: Arc<AtomicU64>,
    stats: Arc<Stats>,
    command: Command,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let n = batch.len() as u64;
        let failed = publish_batch(&client, &mut batch, command).await;
        Stats::add(&stats.published, n - failed);
        Stats::add(&stats.publish_failed, failed);
        pending.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Publishes `batch` (emptying it) as one pipeline; returns how many failed.
async fn publish_batch(client: &Client, batch: &mut Vec<Outgoing>, command: Command) -> u64 {
    let n = batch.len() as u64;
    if batch.len() == 1 {
        let Some(m) = batch.pop() else { return 0 };
        let payload = Value::Bytes(m.payload.into());
        let res: Result<i64, _> = match command {
            Command::SPublish => client.spublish(m.channel.as_str(), payload).await,
            Command::Publish => client.publish(m.channel.as_str(), payload).await,
        };
        return match res {
            Ok(_) => 0,
            Err(e) => {
                warn!(channel = %m.channel, error = %e, "publish failed: message lost");
                1
            }
        };
    }
    let pipeline = client.pipeline();
    for m in batch.drain(..) {
        let payload = Value::Bytes(m.payload.into());
        let queued: Result<(), _> = match command {
            Command::SPublish => pipeline.spublish(m.channel.as_str(), payload).await,
            Command::Publish => pipeline.publish(m.channel.as_str(), payload).await,
        };
        if let Err(e) = queued {
            warn!(error = %e, "cannot queue a publish in the pipeline");
        }
    }
    let results = pipeline.try_all::<i64>().await;
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        warn!(failed, of = n, error = %e, "pipelined publish failed: messages lost");
    }
    // A pipeline that could not be sent at all returns fewer results.
    failed + n.saturating_sub(results.len() as u64)
}

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
use fred::interfaces::{PubsubInterface, StreamsInterface};
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

/// One queued message.
enum Outgoing {
    /// `PUBLISH`/`SPUBLISH` (by the publisher's [`Command`]) `payload` on `channel`.
    Publish { channel: String, payload: Vec<u8> },
    /// `XADD stream MAXLEN ~ max_len * fields..`.
    Append {
        stream: String,
        max_len: u64,
        fields: Vec<(&'static str, String)>,
    },
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
        let res = self.push(Outgoing::Publish { channel, payload });
        if matches!(res, Err(AdapterError::Overloaded)) {
            Stats::add(&self.stats.publish_dropped, 1);
        }
        res
    }

    /// Queues a message that may be dropped: when the queue is full it is dropped and
    /// counted as `volatile_dropped`.
    pub(crate) fn enqueue_volatile(&self, channel: String, payload: Vec<u8>) {
        if self.push(Outgoing::Publish { channel, payload }).is_err() {
            Stats::add(&self.stats.volatile_dropped, 1);
        }
    }

    /// Queues an entry for `stream` now, in call order, like [`Publisher::enqueue`].
    pub(crate) fn enqueue_append(
        &self,
        stream: String,
        max_len: u64,
        fields: Vec<(&'static str, String)>,
    ) -> Result<(), AdapterError> {
        let res = self.push(Outgoing::Append {
            stream,
            max_len,
            fields,
        });
        if matches!(res, Err(AdapterError::Overloaded)) {
            Stats::add(&self.stats.publish_dropped, 1);
        }
        res
    }

    fn push(&self, message: Outgoing) -> Result<(), AdapterError> {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(AdapterError::Overloaded);
        }
        self.tx.send(message).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            AdapterError::Closed
        })?;
        Stats::add(&self.stats.publish_queued, 1);
        Ok(())
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
        let sent = Instant::now();
        let failed = publish_batch(&client, &mut batch, command).await;
        let waited = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        Stats::add(&stats.publish_wait_us, waited);
        Stats::add(&stats.publish_batches, 1);
        Stats::add(&stats.published, n - failed);
        Stats::add(&stats.publish_failed, failed);
        stats.publish_queued.fetch_sub(n, Ordering::AcqRel);
        pending.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Publishes `batch` (emptying it) as one pipeline; returns how many failed.
async fn publish_batch(client: &Client, batch: &mut Vec<Outgoing>, command: Command) -> u64 {
    let n = batch.len() as u64;
    if batch.len() == 1 {
        let Some(m) = batch.pop() else { return 0 };
        return match send(client, m, command).await {
            Ok(()) => 0,
            Err((what, e)) => {
                warn!(to = %what, error = %e, "publish failed: message lost");
                1
            }
        };
    }
    let pipeline = client.pipeline();
    for m in batch.drain(..) {
        if let Err((_, e)) = send(&pipeline, m, command).await {
            warn!(error = %e, "cannot queue a publish in the pipeline");
        }
    }
    let results = pipeline.try_all::<Value>().await;
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        warn!(failed, of = n, error = %e, "pipelined publish failed: messages lost");
    }
    // A pipeline that could not be sent at all returns fewer results.
    failed + n.saturating_sub(results.len() as u64)
}

/// Sends one message on `client` (or queues it, on a pipeline); on failure, where it went.
async fn send<C>(
    client: &C,
    message: Outgoing,
    command: Command,
) -> Result<(), (String, fred::error::Error)>
where
    C: PubsubInterface + StreamsInterface,
{
    match message {
        Outgoing::Publish { channel, payload } => {
            let payload = Value::Bytes(payload.into());
            let res: Result<Value, _> = match command {
                Command::SPublish => client.spublish(channel.as_str(), payload).await,
                Command::Publish => client.publish(channel.as_str(), payload).await,
            };
            res.map(drop).map_err(|e| (channel, e))
        }
        Outgoing::Append {
            stream,
            max_len,
            fields,
        } => {
            let cap = ("MAXLEN", "~", max_len as i64);
            let res: Result<Value, _> = client.xadd(stream.as_str(), false, cap, "*", fields).await;
            res.map(drop).map_err(|e| (stream, e))
        }
    }
}

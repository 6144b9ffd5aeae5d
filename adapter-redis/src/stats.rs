//! Counters of everything that can go wrong silently, for metrics and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// The live counters, shared by the cluster glue and its transport.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Broadcast and request messages published.
    pub published: AtomicU64,
    /// Messages that could not be published (Redis error); each one is also logged.
    pub publish_failed: AtomicU64,
    /// Pub/sub messages received for a namespace of this node.
    pub received: AtomicU64,
    /// Pub/sub messages lost because the subscriber buffer overflowed.
    pub lagged: AtomicU64,
    /// Received messages that could not be decoded (logged and dropped).
    pub malformed: AtomicU64,
    /// Deliveries to local sockets that failed because a socket's buffer was full or closed.
    pub local_delivery_failed: AtomicU64,
    /// Volatile broadcasts dropped because the publish queue was full.
    pub volatile_dropped: AtomicU64,
    /// Other messages refused because the publish queue was full.
    pub publish_dropped: AtomicU64,
    /// Stream entries trimmed before this node read them (streams mode).
    pub stream_entries_lost: AtomicU64,
    /// Messages in the publish queue now (a gauge).
    pub publish_queued: AtomicU64,
    /// Batches (pipelines or single commands) the publisher sent.
    pub publish_batches: AtomicU64,
    /// Time the publisher waited for Redis to answer its batches, in microseconds.
    pub publish_wait_us: AtomicU64,
}

/// A point-in-time copy of the adapter's counters. Every way a message can be lost
/// has its own counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Broadcast and request messages published.
    pub published: u64,
    /// Messages that could not be published (Redis error); each is also logged.
    pub publish_failed: u64,
    /// Pub/sub messages received for a namespace of this node.
    pub received: u64,
    /// Pub/sub messages lost because the subscriber buffer overflowed.
    pub lagged: u64,
    /// Received messages that could not be decoded (logged and dropped).
    pub malformed: u64,
    /// Deliveries to local sockets refused because a socket's buffer was full or closed.
    pub local_delivery_failed: u64,
    /// Volatile broadcasts dropped because the publish queue was full.
    pub volatile_dropped: u64,
    /// Other messages (broadcasts, requests) refused because the publish queue was full.
    pub publish_dropped: u64,
    /// Stream entries trimmed (`MAXLEN`) before this node read them, in streams mode:
    /// broadcasts its clients did not get. Each loss is also logged.
    pub stream_entries_lost: u64,
    /// Messages queued for Redis and not answered yet, at the time of the snapshot.
    pub publish_queued: u64,
    /// Batches (pipelines or single commands) the publisher sent to Redis.
    pub publish_batches: u64,
    /// Time the publisher waited for Redis to answer those batches, in microseconds:
    /// over `publish_batches`, the mean publish latency.
    pub publish_wait_us: u64,
}

impl Stats {
    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A copy of every counter.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            published: get(&self.published),
            publish_failed: get(&self.publish_failed),
            received: get(&self.received),
            lagged: get(&self.lagged),
            malformed: get(&self.malformed),
            local_delivery_failed: get(&self.local_delivery_failed),
            volatile_dropped: get(&self.volatile_dropped),
            publish_dropped: get(&self.publish_dropped),
            stream_entries_lost: get(&self.stream_entries_lost),
            publish_queued: get(&self.publish_queued),
            publish_batches: get(&self.publish_batches),
            publish_wait_us: get(&self.publish_wait_us),
        }
    }
}

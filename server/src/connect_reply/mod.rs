//! Adding the `pid` to Socket.IO CONNECT replies, for connection state recovery, without
//! forking socketioxide.
//!
//! The official client reads the session's private id from the CONNECT reply
//! (`40{"sid":"X","pid":"P"}`, or `40/chat,{"sid":"X","pid":"P"}` for another namespace),
//! keeps it (`socket._pid`) and sends it back in `auth` when it reconnects. socketioxide
//! 0.18 writes that reply as `{"sid":..}` only and has no hook to add a field, so the node
//! adds it on the way out, where the reply crosses code the node owns:
//!
//! 1. The connect middleware (elsewhere) decides the pid and records it in a [`PidTable`]
//!    under (namespace, sid) before socketioxide sends the reply.
//! 2. Polling: the reply is part of a polling `GET`'s body. The axum middleware
//!    [`polling::rewrite_polling`], right around socketioxide's layer, collects the body of
//!    a response to a session that has a pending pid, and rewrites it.
//! 3. Websocket: the reply is a text frame written to the TCP stream that the accept loop
//!    (`crate::http`) accepted. [`websocket::ReplyRewriter`] wraps that stream, follows the
//!    frames the server writes after its `101 Switching Protocols`, and rewrites the small
//!    text frames that start with `40`.
//!
//! In both places the packet itself is rewritten by [`packet::rewrite_connect`], which
//! takes the pid out of the table (one-shot). When the table is empty (no connect in
//! flight, or recovery off) both routes cost about one atomic load per response or write.
//! Pids never taken (a client that went away before its reply was written, a reply that
//! never crossed either route) expire after [`PidTable::DEFAULT_TTL`], purged on insert.
//!
//! The node builds a table only when connection state recovery is on
//! (`SIO_RECOVERY_WINDOW_MS`); without one neither route is installed.

pub mod packet;
pub mod polling;
pub mod websocket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Pids waiting for their CONNECT reply, by namespace and socket id. Cheap to clone (an
/// `Arc` inside); every clone is the same table.
///
/// ```
/// use sio_server::connect_reply::PidTable;
///
/// let table = PidTable::new();
/// assert!(table.is_empty());
/// table.insert("/", "sid1", "pid1".to_string());
/// assert!(table.contains_sid("sid1"));
/// assert_eq!(table.take("/", "sid1").as_deref(), Some("pid1"));
/// assert_eq!(table.take("/", "sid1"), None); // one-shot
/// assert!(table.is_empty());
/// ```
#[derive(Clone)]
pub struct PidTable {
    inner: Arc<Inner>,
}

struct Inner {
    /// Entries in `map` (all namespaces); read without the lock by [`PidTable::is_empty`].
    count: AtomicUsize,
    ttl: Duration,
    state: Mutex<State>,
}

struct State {
    /// socket id → its pending pids, one per namespace (almost always exactly one).
    map: HashMap<String, Vec<Entry>>,
    /// When expired entries were last purged.
    purged: Instant,
}

struct Entry {
    nsp: String,
    pid: String,
    at: Instant,
}

impl std::fmt::Debug for PidTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PidTable")
            .field("pending", &self.len())
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

impl Default for PidTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PidTable {
    /// How long a pid waits for its CONNECT reply before it is dropped.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

    /// An empty table whose entries expire after [`Self::DEFAULT_TTL`].
    pub fn new() -> Self {
        Self::with_ttl(Self::DEFAULT_TTL)
    }

    /// An empty table whose entries expire after `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                ttl,
                state: Mutex::new(State {
                    map: HashMap::new(),
                    purged: Instant::now(),
                }),
            }),
        }
    }

    /// Records `pid` for the CONNECT reply of socket `sid` in namespace `nsp` (replacing
    /// a pid already pending for the pair). Expired entries are purged first, at most once
    /// a second.
    pub fn insert(&self, nsp: &str, sid: &str, pid: String) {
        let now = Instant::now();
        let mut state = self.lock();
        self.purge(&mut state, now);
        let entries = state.map.entry(sid.to_string()).or_default();
        match entries.iter_mut().find(|e| e.nsp == nsp) {
            Some(entry) => {
                entry.pid = pid;
                entry.at = now;
            }
            None => {
                entries.push(Entry {
                    nsp: nsp.to_string(),
                    pid,
                    at: now,
                });
                self.inner.count.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Takes (removes and returns) the pid pending for `sid` in `nsp`.
    pub fn take(&self, nsp: &str, sid: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut state = self.lock();
        let entries = state.map.get_mut(sid)?;
        let i = entries.iter().position(|e| e.nsp == nsp)?;
        let entry = entries.swap_remove(i);
        if entries.is_empty() {
            state.map.remove(sid);
        }
        self.inner.count.fetch_sub(1, Ordering::Release);
        Some(entry.pid)
    }

    /// Forgets the pid pending for `sid` in `nsp`, if any (a connect refused after its
    /// pid was recorded, a reply seen already carrying a pid).
    pub fn remove(&self, nsp: &str, sid: &str) {
        let _ = self.take(nsp, sid);
    }

    /// Whether a pid is pending for socket `sid` in any namespace.
    pub fn contains_sid(&self, sid: &str) -> bool {
        !self.is_empty() && self.lock().map.contains_key(sid)
    }

    /// Whether no pid is pending at all: one atomic load, no lock.
    pub fn is_empty(&self) -> bool {
        self.inner.count.load(Ordering::Acquire) == 0
    }

    /// How many pids are pending (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The map stays consistent at every step, so a panic elsewhere cannot leave it
        // half-updated.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops entries older than the ttl, at most once a second.
    fn purge(&self, state: &mut State, now: Instant) {
        if now.duration_since(state.purged) < Duration::from_secs(1) {
            return;
        }
        state.purged = now;
        let ttl = self.inner.ttl;
        let mut dropped = 0;
        state.map.retain(|_, entries| {
            let before = entries.len();
            entries.retain(|e| now.duration_since(e.at) < ttl);
            dropped += before - entries.len();
            !entries.is_empty()
        });
        if dropped > 0 {
            self.inner.count.fetch_sub(dropped, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_per_namespace() {
        let t = PidTable::new();
        t.insert("/", "s", "p1".into());
        t.insert("/chat", "s", "p2".into());
        assert_eq!(t.len(), 2);
        assert!(t.contains_sid("s"));
        assert!(!t.contains_sid("other"));
        assert_eq!(t.take("/chat", "s").as_deref(), Some("p2"));
        assert_eq!(t.take("/chat", "s"), None);
        assert!(t.contains_sid("s"));
        t.remove("/", "s");
        assert!(!t.contains_sid("s"));
        assert!(t.is_empty());
    }

    #[test]
    fn insert_replaces_a_pending_pid() {
        let t = PidTable::new();
        t.insert("/", "s", "old".into());
        t.insert("/", "s", "new".into());
        assert_eq!(t.len(), 1);
        assert_eq!(t.take("/", "s").as_deref(), Some("new"));
        assert!(t.is_empty());
    }

    #[test]
    fn entries_never_taken_expire() {
        let t = PidTable::with_ttl(Duration::from_millis(10));
        t.insert("/", "stale", "p".into());
        std::thread::sleep(Duration::from_millis(20));
        // Purges run at most once a second: pretend the last one was long ago.
        let mut state = t.lock();
        state.purged = state.purged.checked_sub(Duration::from_secs(2)).unwrap();
        drop(state);
        t.insert("/", "fresh", "q".into());
        assert_eq!(t.len(), 1);
        assert!(!t.contains_sid("stale"));
        assert_eq!(t.take("/", "fresh").as_deref(), Some("q"));
        assert!(t.is_empty());
    }

    #[test]
    fn clones_share_the_table() {
        let t = PidTable::new();
        let u = t.clone();
        t.insert("/", "s", "p".into());
        assert_eq!(u.take("/", "s").as_deref(), Some("p"));
        assert!(t.is_empty());
    }
}

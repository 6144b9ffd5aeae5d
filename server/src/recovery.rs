//! Connection state recovery, the node's side (`SIO_RECOVERY_WINDOW_MS`, streams mode).
//!
//! The official client (4.6+) keeps the `pid` of its CONNECT reply and the last string
//! argument of every event (its offset), and sends `{pid, offset}` in the `auth` of its
//! next CONNECT. This module:
//!
//! - gives every socket a pid (a new one, or the one it recovered), which the
//!   [`connect_reply`](crate::connect_reply) layer writes into the CONNECT reply;
//! - keeps each socket's session in Redis while it lives, written when it connects and
//!   whenever its rooms change, with an expiry pushed forward every third of the window,
//!   so a node that dies without a word leaves its sockets' sessions behind for the window
//!   ([`sio_adapter_redis::recovery`] has the storage and the catch-up);
//! - on a CONNECT with a pid, on whatever node: restores the session if it is stored, was
//!   made by the same identity (the token's `sub`; anonymous only for anonymous) and its
//!   offset is still in the stream; the socket gets its rooms back and, once connected,
//!   every broadcast after the offset. The socket id is not kept: socketioxide gives each
//!   connection its own (the pid is what identifies the session).
//!
//! A session whose client disconnects on purpose (`socket.disconnect()`, or the server
//! disconnecting it) is deleted; any other end (transport closed or failed, ping timeout,
//! the node draining) keeps it for the window from then (only its expiry is written: a
//! disconnect noticed late must not overwrite the session the client recovered elsewhere).
//! Claiming a session replaces it with the recovering socket's in one compare-and-set,
//! so it is never absent from Redis: a reconnect that fails half-way can try again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as Json;
use sio_adapter_redis::{RedisCluster, Session};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::DisconnectReason;
use socketioxide_core::Sid;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::connect_reply::PidTable;
use crate::forward::lock;
use crate::gateway::Identity;
use crate::metrics::Metrics;

/// What a client may send in its handshake `auth` for recovery, read leniently: a value
/// of the wrong type is as good as absent (a new session), never a refused connection.
#[derive(Debug, Default, Clone)]
pub struct RecoveryAuth {
    /// The session id the client was given.
    pub pid: Option<String>,
    /// The last offset it received.
    pub offset: Option<String>,
}

impl RecoveryAuth {
    /// Reads `pid` and `offset` out of a handshake `auth` object.
    pub fn from_auth(auth: Option<&Json>) -> Self {
        let text = |name: &str| {
            auth.and_then(|a| a.get(name))
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty() && s.len() <= 128)
                .map(str::to_string)
        };
        Self {
            pid: text("pid"),
            offset: text("offset"),
        }
    }
}

/// A session claimed for a recovering socket.
struct Restored {
    /// The socket id it had.
    old_sid: String,
    /// The rooms it gets back.
    rooms: Vec<String>,
    /// The offset to catch it up from.
    from: String,
    /// Its session now (the new socket id, the same pid).
    session: Session,
}

/// The socket is recovering: catch it up from this offset once it is connected.
#[derive(Debug, Clone)]
struct CatchUpFrom(String);

/// The socket's session pid, in its extensions.
#[derive(Debug, Clone)]
pub struct SessionPid(pub String);

/// A session write, in the order they were asked for.
enum Write {
    Save(Session),
    Touch(String),
    Delete(String),
}

/// Connection state recovery of one node.
pub struct Recovery {
    cluster: RedisCluster,
    pids: PidTable,
    window: Duration,
    metrics: Metrics,
    /// The live sockets' sessions, by namespace and socket id.
    live: Mutex<HashMap<(String, Sid), Session>>,
    writes: mpsc::UnboundedSender<Write>,
}

impl Recovery {
    /// Recovery on `cluster` (which must have it on), pids handed to the CONNECT replies
    /// through `pids`. Starts the session writer and the expiry refresher.
    pub fn start(cluster: RedisCluster, pids: PidTable, metrics: Metrics) -> Option<Arc<Self>> {
        let window = cluster.recovery_window()?;
        let (writes, rx) = mpsc::unbounded_channel();
        let recovery = Arc::new(Self {
            cluster: cluster.clone(),
            pids,
            window,
            metrics,
            live: Mutex::new(HashMap::new()),
            writes,
        });
        tokio::spawn(write_sessions(cluster, rx));
        tokio::spawn(refresh_sessions(Arc::downgrade(&recovery), window));
        Some(recovery)
    }

    /// The connect middleware's part, after authentication (`identity`) and after the
    /// socket joined its own and its user's rooms: recovers the session the client names,
    /// or starts a new one. `may_join` re-checks each restored room against the current
    /// token. Never refuses the connection: whatever goes wrong makes a new session.
    pub async fn on_connect<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        identity: &Identity,
        auth: RecoveryAuth,
        may_join: impl Fn(&str) -> bool,
    ) {
        let nsp = socket.ns().to_string();
        let (outcome, restored) = match auth.pid {
            None => ("new", None),
            Some(pid) => match self
                .restore(socket, &pid, identity, auth.offset, &may_join)
                .await
            {
                Ok(restored) => ("recovered", Some(restored)),
                Err(outcome) => (outcome, None),
            },
        };
        self.metrics.recovery(outcome);
        let session = match restored {
            Some(Restored {
                old_sid,
                rooms,
                from,
                session,
            }) => {
                let mut catch_up_rooms = rooms.clone();
                catch_up_rooms.push(old_sid.clone());
                catch_up_rooms.extend(socket.rooms().iter().map(|r| r.to_string()));
                self.cluster.begin_catch_up(&nsp, socket.id, catch_up_rooms);
                socket.join(rooms);
                socket.extensions.insert(CatchUpFrom(from));
                info!(sid = %socket.id, old_sid, nsp, "session recovered");
                session
            }
            None => Session {
                sid: socket.id.to_string(),
                pid: new_pid(),
                rooms: socket.rooms().iter().map(|r| r.to_string()).collect(),
                data: identity_data(identity),
                offset: self.cluster.log_position(&nsp),
            },
        };
        self.pids
            .insert(&nsp, &socket.id.to_string(), session.pid.clone());
        socket.extensions.insert(SessionPid(session.pid.clone()));
        lock(&self.live).insert((nsp, socket.id), session);
    }

    /// Session `pid` for `socket`, if this identity may have it and it can be caught up
    /// without a gap; claimed in Redis (replaced by the new socket's session in one step).
    /// `Err`: the outcome to count.
    async fn restore<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        pid: &str,
        identity: &Identity,
        offset: Option<String>,
        may_join: &impl Fn(&str) -> bool,
    ) -> Result<Restored, &'static str> {
        let nsp = socket.ns();
        let failed = |e: sio_adapter_redis::AdapterError| {
            warn!(error = %e, "session recovery failed: a new session");
            "failed"
        };
        let (stored, raw) = self
            .cluster
            .load_session(pid)
            .await
            .map_err(failed)?
            .ok_or("unknown")?;
        if session_user(&stored.data) != identity_user(identity) {
            debug!(nsp, "session recovery refused: another identity");
            return Err("refused");
        }
        let offset = offset.filter(|o| sio_adapter_redis::protocol::streams::is_stream_id(o));
        // a client that got no event yet recovers from where its session started
        let from = match (offset, &stored.offset) {
            (Some(mine), Some(start))
                if sio_adapter_redis::protocol::streams::compare_stream_ids(&mine, start)
                    .is_lt() =>
            {
                start.clone()
            }
            (Some(mine), _) => mine,
            (None, Some(start)) => start.clone(),
            (None, None) => return Err("gap"),
        };
        if !self.cluster.log_holds(nsp, &from).await.map_err(failed)? {
            return Err("gap");
        }
        // the rooms it gets back: not its old id, and only those the token still allows
        let rooms: Vec<String> = stored
            .rooms
            .iter()
            .filter(|r| **r != stored.sid && may_join(r))
            .cloned()
            .collect();
        let mut now_in: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
        now_in.extend(
            rooms
                .iter()
                .filter(|r| !now_in.contains(r))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let session = Session {
            sid: socket.id.to_string(),
            pid: stored.pid.clone(),
            rooms: now_in,
            data: stored.data.clone(),
            offset: stored.offset.clone().or(Some(from.clone())),
        };
        if !self
            .cluster
            .claim_session(&raw, &session)
            .await
            .map_err(failed)?
        {
            return Err("unknown"); // another reconnect claimed it first
        }
        Ok(Restored {
            old_sid: stored.sid,
            rooms,
            from,
            session,
        })
    }

    /// The connect handler's part: a recovering socket, now in its namespace, is caught up
    /// on what it missed; every socket's session is written to Redis. Returns whether the
    /// socket recovered its session.
    pub fn on_connected<A: Adapter>(self: &Arc<Self>, socket: SocketRef<A>) -> bool {
        let me = self.clone();
        let register = {
            let me = me.clone();
            move |s: SocketRef<A>, reason: DisconnectReason| {
                me.on_disconnect(&s, reason);
                async {}
            }
        };
        socket.on_disconnect(register);
        let key = (socket.ns().to_string(), socket.id);
        if let Some(session) = lock(&me.live).get(&key).cloned() {
            let _ = me.writes.send(Write::Save(session));
        }
        let Some(CatchUpFrom(from)) = socket.extensions.get::<CatchUpFrom>() else {
            return false;
        };
        tokio::spawn(async move {
            match me.cluster.catch_up(&key.0, socket.id, &from).await {
                Ok(count) => debug!(sid = %socket.id, nsp = key.0, count, "caught up"),
                Err(e) => {
                    // it may have missed something: make its client reconnect
                    warn!(sid = %socket.id, error = %e, "catch-up failed: disconnecting the socket");
                    let _ = socket.disconnect();
                }
            }
        });
        true
    }

    /// After the socket's rooms changed (a join or leave): its session follows.
    pub fn rooms_changed<A: Adapter>(&self, socket: &SocketRef<A>) {
        let rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
        let key = (socket.ns().to_string(), socket.id);
        let mut live = lock(&self.live);
        if let Some(session) = live.get_mut(&key) {
            session.rooms = rooms;
            let _ = self.writes.send(Write::Save(session.clone()));
        }
    }

    fn on_disconnect<A: Adapter>(&self, socket: &SocketRef<A>, reason: DisconnectReason) {
        let nsp = socket.ns().to_string();
        self.pids.remove(&nsp, &socket.id.to_string());
        self.cluster.abort_catch_up(&nsp, socket.id);
        let Some(session) = lock(&self.live).remove(&(nsp, socket.id)) else {
            return;
        };
        let on_purpose = matches!(
            reason,
            DisconnectReason::ClientNSDisconnect | DisconnectReason::ServerNSDisconnect
        );
        let _ = self.writes.send(if on_purpose {
            Write::Delete(session.pid)
        } else {
            // the window counts from now; only the expiry: the session is current already,
            // and a disconnect noticed late (a ping timeout) must not overwrite what the
            // node where the client has recovered meanwhile wrote
            Write::Touch(session.pid)
        });
    }

    /// The recovery window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// Who a socket is, as sessions remember it: `None` when auth is off, the token's `sub`
/// (empty when it has none) when on.
fn identity_user(identity: &Identity) -> Option<String> {
    match identity {
        Identity::Anonymous => None,
        Identity::Token(claims) => Some(claims.sub.clone().unwrap_or_default()),
    }
}

/// What a session keeps of the socket's identity (its `data`, as Node's `socket.data`).
fn identity_data(identity: &Identity) -> rmpv::Value {
    let user = identity_user(identity).map_or(rmpv::Value::Nil, rmpv::Value::from);
    rmpv::Value::Map(vec![(rmpv::Value::from("user"), user)])
}

/// The identity a stored session was made by: `data.user` when a string, else none (an
/// anonymous session; Node.js nodes store their `socket.data`, which has no `user`).
fn session_user(data: &rmpv::Value) -> Option<String> {
    let rmpv::Value::Map(entries) = data else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some("user"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// A new private session id: 122 random bits (a v4 UUID), 32 hex digits.
fn new_pid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Writes sessions in the order asked, batching what is waiting into one pipeline.
async fn write_sessions(cluster: RedisCluster, mut rx: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        let mut saves = Vec::new();
        for write in batch.drain(..) {
            match write {
                Write::Save(session) => saves.push(session),
                Write::Delete(pid) => {
                    flush(&cluster, &mut saves).await;
                    if let Err(e) = cluster.delete_session(&pid).await {
                        warn!(error = %e, "session not deleted");
                    }
                }
                Write::Touch(pid) => {
                    flush(&cluster, &mut saves).await;
                    if let Err(e) = cluster.touch_sessions(&[pid]).await {
                        warn!(error = %e, "session expiry not refreshed");
                    }
                }
            }
        }
        flush(&cluster, &mut saves).await;
    }
}

async fn flush(cluster: &RedisCluster, saves: &mut Vec<Session>) {
    if saves.is_empty() {
        return;
    }
    if let Err(e) = cluster.save_sessions(saves).await {
        warn!(error = %e, sessions = saves.len(), "sessions not saved");
    }
    saves.clear();
}

/// Every third of the window, pushes the live sockets' sessions' expiry a window away.
async fn refresh_sessions(recovery: std::sync::Weak<Recovery>, window: Duration) {
    let every = (window / 3).clamp(Duration::from_millis(200), Duration::from_secs(60));
    loop {
        tokio::time::sleep(every).await;
        let Some(recovery) = recovery.upgrade() else {
            return;
        };
        let pids: Vec<String> = lock(&recovery.live)
            .values()
            .map(|s| s.pid.clone())
            .collect();
        if let Err(e) = recovery.cluster.touch_sessions(&pids).await {
            warn!(error = %e, "session expiries not refreshed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_values_of_the_wrong_type_are_absent() {
        let auth = serde_json::json!({"pid": 42, "offset": ["x"], "token": "t"});
        let read = RecoveryAuth::from_auth(Some(&auth));
        assert!(read.pid.is_none() && read.offset.is_none());
        let auth = serde_json::json!({"pid": "abc", "offset": "1-0"});
        let read = RecoveryAuth::from_auth(Some(&auth));
        assert_eq!(read.pid.as_deref(), Some("abc"));
        assert_eq!(read.offset.as_deref(), Some("1-0"));
        let long = "p".repeat(500);
        let read = RecoveryAuth::from_auth(Some(&serde_json::json!({ "pid": long })));
        assert!(read.pid.is_none());
    }

    #[test]
    fn a_session_belongs_to_the_identity_that_made_it() {
        let anonymous = identity_data(&Identity::Anonymous);
        assert_eq!(session_user(&anonymous), None);
        // a Node.js node's session (its socket.data) is anonymous
        assert_eq!(session_user(&rmpv::Value::Map(vec![])), None);
        let alice = rmpv::Value::Map(vec![("user".into(), "alice".into())]);
        assert_eq!(session_user(&alice).as_deref(), Some("alice"));
    }

    #[test]
    fn pids_are_unguessable_and_url_safe() {
        let (a, b) = (new_pid(), new_pid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}

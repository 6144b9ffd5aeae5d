//! Connection state recovery across nodes (streams mode): the sessions kept in Redis, and
//! catching a recovering socket up on what it missed (`impl RedisCluster`).
//!
//! A session is stored the way `@socket.io/redis-streams-adapter` stores it
//! ([`Session`]), under `sio:session:<pid>`, with the recovery window as its expiry. The
//! node writes it when the socket connects and again whenever its rooms change, and keeps
//! it from expiring while the socket lives, so the session outlives a node that dies
//! without a word. Offsets are stream entry ids; the log is the stream itself.
//!
//! Recovering a socket on any node, in order:
//!
//! 1. [`RedisCluster::load_session`] the client's `pid`, check it is the same identity,
//!    check its offset is still in the log ([`RedisCluster::log_holds`]) and claim the
//!    session ([`RedisCluster::claim_session`]: a compare-and-set to the new socket's
//!    session, so only one reconnect gets it and it is never absent);
//! 2. in socketioxide's connect middleware, before the socket joins its namespace:
//!    [`RedisCluster::begin_catch_up`], and join the session's rooms;
//! 3. once connected: [`RedisCluster::catch_up`] emits every broadcast after the offset,
//!    once, in order, before anything newer.

use std::time::Duration;

use fred::interfaces::{KeysInterface, LuaInterface};
use fred::types::{Expiration, Value as RedisValue};
use socketioxide_core::Sid;
use tracing::warn;

use crate::AdapterError;
use crate::cluster::{RedisCluster, read};
use crate::protocol::streams::{SESSION_KEY_PREFIX, Session, session_key};

/// Compare-and-set of a session: `KEYS[1]` becomes `ARGV[2]` (expiring in `ARGV[3]` ms)
/// only if it still holds `ARGV[1]`.
const CLAIM_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";

impl RedisCluster {
    /// The recovery window, when connection state recovery is on.
    pub fn recovery_window(&self) -> Option<Duration> {
        self.inner.config.recovery
    }

    /// Whether connection state recovery is on.
    pub(crate) fn recovers(&self) -> bool {
        self.inner.config.recovery.is_some()
    }

    fn key(pid: &str) -> String {
        session_key(SESSION_KEY_PREFIX, pid)
    }

    /// The session `pid`, if stored and readable (an unreadable one is logged and `None`),
    /// with the value as stored (to claim it with [`RedisCluster::claim_session`]).
    pub async fn load_session(
        &self,
        pid: &str,
    ) -> Result<Option<(Session, Vec<u8>)>, AdapterError> {
        let stored: Option<Vec<u8>> = self.client().get(Self::key(pid)).await?;
        Ok(stored.and_then(|stored| match Session::decode(&stored) {
            Ok(session) if session.pid == pid => Some((session, stored)),
            Ok(_) => {
                warn!("a stored session names another pid: ignored");
                None
            }
            Err(e) => {
                warn!(error = %e, "an unreadable stored session: ignored");
                None
            }
        }))
    }

    /// Claims session `pid` for a recovering socket: replaces the value [`load_session`]
    /// read (`stored`) with `replacement` (the new socket's session, same pid) in one step,
    /// so the session is never absent from Redis, even if the new connection fails before
    /// it is caught up. `false` when the value changed meanwhile (another reconnect with the
    /// same pid claimed it first, or it expired).
    ///
    /// [`load_session`]: RedisCluster::load_session
    pub async fn claim_session(
        &self,
        stored: &[u8],
        replacement: &Session,
    ) -> Result<bool, AdapterError> {
        let window = self.recovery_window().unwrap_or(Duration::from_secs(60));
        let claimed: u64 = self
            .client()
            .eval(
                CLAIM_SCRIPT,
                vec![Self::key(&replacement.pid)],
                vec![
                    RedisValue::Bytes(stored.to_vec().into()),
                    RedisValue::from(replacement.encode()?),
                    RedisValue::from(window.as_millis() as i64),
                ],
            )
            .await?;
        Ok(claimed == 1)
    }

    /// Stores these sessions (one pipeline), each expiring after the recovery window.
    pub async fn save_sessions(&self, sessions: &[Session]) -> Result<(), AdapterError> {
        let Some(window) = self.recovery_window() else {
            return Ok(());
        };
        if sessions.is_empty() {
            return Ok(());
        }
        let pipeline = self.client().pipeline();
        for session in sessions {
            let value = session.encode()?;
            let _: () = pipeline
                .set(
                    Self::key(&session.pid),
                    value,
                    Some(Expiration::PX(window.as_millis() as i64)),
                    None,
                    false,
                )
                .await?;
        }
        let _: Vec<RedisValue> = pipeline.all().await?;
        Ok(())
    }

    /// Pushes the expiry of these sessions one recovery window away (one pipeline): the
    /// sessions of live sockets never expire, and those of a node that died do.
    pub async fn touch_sessions(&self, pids: &[String]) -> Result<(), AdapterError> {
        let Some(window) = self.recovery_window() else {
            return Ok(());
        };
        for chunk in pids.chunks(1_000) {
            let pipeline = self.client().pipeline();
            for pid in chunk {
                let _: () = pipeline
                    .pexpire(Self::key(pid), window.as_millis() as i64, None)
                    .await?;
            }
            let _: Vec<RedisValue> = pipeline.all().await?;
        }
        Ok(())
    }

    /// Deletes session `pid` (the client left on purpose: nothing to recover).
    pub async fn delete_session(&self, pid: &str) -> Result<(), AdapterError> {
        let _: u64 = self.client().del(Self::key(pid)).await?;
        Ok(())
    }

    /// Where `nsp`'s log stands for this node: the last entry delivered to its sockets (or
    /// where the stream reader started). A new session starts here.
    pub fn log_position(&self, nsp: &str) -> Option<String> {
        let sink = read(&self.inner.namespaces).get(nsp).cloned();
        sink.and_then(|s| s.log_position())
            .or_else(|| self.inner.transport.log_position(nsp))
    }

    /// Whether everything after entry `after` is still in `nsp`'s log, so a socket whose
    /// offset it is can be caught up without a gap.
    pub async fn log_holds(&self, nsp: &str, after: &str) -> Result<bool, AdapterError> {
        if !self.inner.transport.has_log() {
            return Ok(false);
        }
        self.inner.transport.log_holds(nsp, after).await
    }

    /// Registers local socket `sid` of `nsp` as recovering, in `rooms` (its restored rooms
    /// and its old id): call it in the connect middleware, before socketioxide inserts the
    /// socket. From then on, broadcasts delivered here skip it and are kept for it.
    pub fn begin_catch_up(&self, nsp: &str, sid: Sid, rooms: Vec<String>) -> bool {
        let sink = read(&self.inner.namespaces).get(nsp).cloned();
        sink.map(|s| s.begin_catch_up(sid, rooms)).is_some()
    }

    /// Forgets recovering socket `sid` (it left before it was caught up).
    pub fn abort_catch_up(&self, nsp: &str, sid: Sid) {
        if let Some(sink) = read(&self.inner.namespaces).get(nsp).cloned() {
            sink.abort_catch_up(sid);
        }
    }

    /// Catches up recovering socket `sid`: emits to it every broadcast of `nsp` logged
    /// after entry `after` that targets its rooms, once each, in log order, before anything
    /// newer reaches it. Returns how many it got. On an error the socket is no longer
    /// recovering (and has missed something: disconnect it so its client reconnects).
    pub async fn catch_up(&self, nsp: &str, sid: Sid, after: &str) -> Result<usize, AdapterError> {
        let sink = read(&self.inner.namespaces).get(nsp).cloned();
        let Some(sink) = sink else {
            return Err(AdapterError::Closed);
        };
        let logged = match self.inner.transport.log_after(nsp, after).await {
            Ok(logged) => logged,
            Err(e) => {
                sink.abort_catch_up(sid);
                return Err(e);
            }
        };
        let fallback = self.inner.transport.log_position(nsp);
        Ok(sink.finish_catch_up(sid, logged, fallback).unwrap_or(0))
    }
}

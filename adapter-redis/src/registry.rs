//! Who serves which session: the node registry (`node id → internal address`, kept
//! alive by a heartbeat) and the session registry (`sid → node id`), in Redis.
//!
//! Keys, under the channel prefix:
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `<prefix>:node:<node id>` | the node's advertised address (`host:port`) | TTL [`NODE_TTL`], refreshed every [`NODE_HEARTBEAT`]; deleted on shutdown |
//! | `<prefix>:sid:<sid>` | the owning node's id | TTL [`SESSION_TTL`], refreshed by the owner every [`SESSION_REFRESH`] while the session lives, deleted when it ends |
//!
//! A session whose owner's node key has expired is dead: lookups report it unknown and
//! delete the stale entry.

use std::time::Duration;

use fred::interfaces::KeysInterface;
use fred::prelude::FredResult;
use fred::types::{Expiration, FromValue};

use crate::{AdapterError, RedisCluster};

/// How long a node's registration lives without a heartbeat.
pub const NODE_TTL: Duration = Duration::from_secs(10);
/// How often a node refreshes its registration.
pub const NODE_HEARTBEAT: Duration = Duration::from_secs(3);
/// How long a session entry lives without its owner refreshing it: the entries of a
/// node that died without deleting them are gone this long after its death.
pub const SESSION_TTL: Duration = Duration::from_secs(10 * 60);
/// How often an owner refreshes the entries of its live sessions.
pub const SESSION_REFRESH: Duration = Duration::from_secs(3 * 60);

/// Where a session lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    /// The owning node's id.
    pub node_id: String,
    /// Its advertised internal address (`host:port`).
    pub address: String,
}

impl RedisCluster {
    fn node_key(&self, node_id: &str) -> String {
        format!("{}:node:{node_id}", self.prefix())
    }

    fn sid_key(&self, sid: &str) -> String {
        format!("{}:sid:{sid}", self.prefix())
    }

    /// Registers this node as `node_id` reachable at `address`, and keeps the
    /// registration alive in the background until [`RedisCluster::deregister_node`].
    pub async fn register_node(&self, node_id: &str, address: &str) -> Result<(), AdapterError> {
        let key = self.node_key(node_id);
        self.set_node(&key, address).await?;
        let this = self.clone();
        let address = address.to_string();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(NODE_HEARTBEAT);
            tick.tick().await;
            // After a reconnect the registration is written at once: the Redis reached now
            // may have lost it (a restart without persistence, a failover to a replica
            // that missed the last heartbeats).
            let mut reconnects = this.reconnects();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    open = reconnects.next() => if !open { return },
                }
                if let Err(e) = this.set_node(&key, &address).await {
                    tracing::warn!(error = %e, "node registry heartbeat failed");
                }
            }
        });
        self.keep_task(task);
        Ok(())
    }

    async fn set_node(&self, key: &str, address: &str) -> Result<(), AdapterError> {
        let _: () = set_with_ttl(self.client(), key, address, NODE_TTL).await?;
        Ok(())
    }

    /// The advertised address of node `node_id`, or `None` when it is not registered
    /// (stopped, or dead for longer than [`NODE_TTL`]).
    pub async fn node_address(&self, node_id: &str) -> Result<Option<String>, AdapterError> {
        Ok(self.client().get(self.node_key(node_id)).await?)
    }

    /// Removes this node's registration (shutdown).
    pub async fn deregister_node(&self, node_id: &str) -> Result<(), AdapterError> {
        let _: i64 = self.client().del(self.node_key(node_id)).await?;
        Ok(())
    }

    /// Records that `node_id` owns session `sid`.
    pub async fn record_session(&self, sid: &str, node_id: &str) -> Result<(), AdapterError> {
        let _: () = set_with_ttl(self.client(), &self.sid_key(sid), node_id, SESSION_TTL).await?;
        Ok(())
    }

    /// Extends the life of the entries of `sids` (sessions this node owns and that are
    /// still alive) by [`SESSION_TTL`], in one pipeline. Returns how many were refreshed.
    pub async fn refresh_sessions(&self, sids: &[String]) -> Result<usize, AdapterError> {
        if sids.is_empty() {
            return Ok(0);
        }
        let pipeline = self.client().pipeline();
        for sid in sids {
            let _: () = pipeline
                .expire(self.sid_key(sid), SESSION_TTL.as_secs() as i64, None)
                .await?;
        }
        let results: Vec<bool> = pipeline.all().await?;
        Ok(results.into_iter().filter(|set| *set).count())
    }

    /// Records `node_id` as the owner of every session in `sids` (fresh entries with a
    /// full [`SESSION_TTL`]), in one pipeline: after a reconnect, so that entries the
    /// Redis now reached has lost (restart, failover) are back. Returns how many.
    pub async fn record_sessions(
        &self,
        sids: &[String],
        node_id: &str,
    ) -> Result<usize, AdapterError> {
        if sids.is_empty() {
            return Ok(0);
        }
        let pipeline = self.client().pipeline();
        for sid in sids {
            let _: () = set_with_ttl(&pipeline, &self.sid_key(sid), node_id, SESSION_TTL).await?;
        }
        let _: Vec<fred::types::Value> = pipeline.all().await?;
        Ok(sids.len())
    }

    /// Forgets session `sid`.
    pub async fn forget_session(&self, sid: &str) -> Result<(), AdapterError> {
        let _: i64 = self.client().del(self.sid_key(sid)).await?;
        Ok(())
    }

    /// The id of the node recorded as session `sid`'s owner, in one `GET` (`None` when
    /// unknown). Whether that node is still registered, and where, is
    /// [`node_address`](Self::node_address)'s answer: callers may cache it.
    pub async fn session_node(&self, sid: &str) -> Result<Option<String>, AdapterError> {
        Ok(self.client().get(self.sid_key(sid)).await?)
    }
}

/// `SET key value EX ttl` on a client or into a pipeline (where the reply comes later).
async fn set_with_ttl<C, R>(on: &C, key: &str, value: &str, ttl: Duration) -> FredResult<R>
where
    C: KeysInterface + Sync,
    R: FromValue,
{
    on.set(
        key,
        value,
        Some(Expiration::EX(ttl.as_secs() as i64)),
        None,
        false,
    )
    .await
}

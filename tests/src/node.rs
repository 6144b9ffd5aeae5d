//! Starting nodes: one [`NodeBuilder`] for a node in this process ([`TestNode`]), a
//! cluster of them, or a node as its own process ([`NodeProcess`]).
//!
//! ```no_run
//! # async fn demo(redis_url: &str) -> anyhow::Result<()> {
//! use sio_cluster_tests::node::NodeBuilder;
//! let alone = NodeBuilder::new().args(&["--client-publish", "room-*"]).start().await?;
//! let three = NodeBuilder::new().redis(redis_url).cluster(3).await?;
//! let child = NodeBuilder::new()
//!     .redis(redis_url)
//!     .env(&[("SIO_CHAT", "false")])
//!     .start_process()
//!     .await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use sio_server::config::{Cli, Config};
use sio_server::node::RunningNode;

use crate::files::client_bundle;
use crate::http::{http_get, metric_at};
use crate::process::{Launch, NodeProcess, ProcessStart};

/// What a node is started with. In this process the settings are command-line flags; a
/// node process gets `redis` and `id` as `SIO_REDIS_URL` and `SIO_NODE_ID`, `args` as its
/// command line and `env` added to its environment.
#[derive(Debug, Clone, Default)]
pub struct NodeBuilder {
    redis: Option<String>,
    id: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl NodeBuilder {
    /// A standalone node (no Redis) on `127.0.0.1:0` with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cluster mode on the Redis at `url` (`--redis-url`).
    pub fn redis(mut self, url: &str) -> Self {
        self.redis = Some(url.to_string());
        self
    }

    /// The node id (`--node-id`); for a cluster, the prefix of `<id>-<i>` (default
    /// `node`, so `node-0`, `node-1`, ...).
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// Extra command-line flags, e.g. `["--client-publish", "room-*"]`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Environment variables of a node process (`SIO_*` settings, `RUST_LOG`, allocator
    /// options). Nodes in this process refuse them: the environment is the process's.
    pub fn env(mut self, vars: &[(&str, &str)]) -> Self {
        self.env
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Starts the node in this process and waits until `/readyz` answers 200 (Redis
    /// connected, pub/sub round trip seen, in cluster mode). The demo page gets the local
    /// client bundle; a drain may take 5 s.
    pub async fn start(self) -> anyhow::Result<TestNode> {
        let node = self.spawn_in_process().await?;
        wait_ready(node.addr()).await?;
        Ok(node)
    }

    /// Starts `n` nodes in this process with ids `<id>-0` .. (see [`NodeBuilder::id`]),
    /// then waits until every one is ready.
    pub async fn cluster(self, n: usize) -> anyhow::Result<Vec<TestNode>> {
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(self.member(i).spawn_in_process().await?);
        }
        for node in &nodes {
            wait_ready(node.addr()).await?;
        }
        Ok(nodes)
    }

    /// Starts the node as its own process (`sio-test-node`) and returns once it listens;
    /// it may still be waiting for Redis. Fails when the process exits first.
    pub async fn spawn_process(self) -> anyhow::Result<NodeProcess> {
        match NodeProcess::launch(&self.process_env(), &self.args).await? {
            Launch::Listening(node) => Ok(node),
            Launch::Exited(status, log) => {
                bail!(
                    "the node exited ({status}) before listening:\n{}",
                    log.text()
                )
            }
        }
    }

    /// Starts the node as its own process and waits until it is ready; fails when it
    /// exits first.
    pub async fn start_process(self) -> anyhow::Result<NodeProcess> {
        match self.try_start_process().await? {
            ProcessStart::Ready(node) => Ok(node),
            ProcessStart::Exited { status, log } => {
                bail!(
                    "the node exited ({status}) instead of becoming ready:\n{}",
                    log.text()
                )
            }
        }
    }

    /// Starts the node as its own process and waits until it is ready or has exited (a
    /// start-up failure): which one, with everything it logged.
    pub async fn try_start_process(self) -> anyhow::Result<ProcessStart> {
        match NodeProcess::launch(&self.process_env(), &self.args).await? {
            Launch::Listening(node) => node.ready_or_exited().await,
            Launch::Exited(status, log) => Ok(ProcessStart::Exited { status, log }),
        }
    }

    /// Starts `n` node processes with ids `<id>-0` .. (see [`NodeBuilder::id`]), one after
    /// the other, each ready before the next starts.
    pub async fn process_cluster(self, n: usize) -> anyhow::Result<Vec<NodeProcess>> {
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(self.member(i).start_process().await?);
        }
        Ok(nodes)
    }

    /// Member `i` of a cluster built from this builder.
    fn member(&self, i: usize) -> Self {
        let prefix = self.id.as_deref().unwrap_or("node");
        self.clone().id(&format!("{prefix}-{i}"))
    }

    fn process_env(&self) -> Vec<(String, String)> {
        let named = [("SIO_REDIS_URL", &self.redis), ("SIO_NODE_ID", &self.id)];
        let mut env: Vec<(String, String)> = named
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
            .collect();
        env.extend(self.env.iter().cloned());
        env
    }

    async fn spawn_in_process(self) -> anyhow::Result<TestNode> {
        if !self.env.is_empty() {
            bail!("env() is for node processes; give a node in this process flags (args)");
        }
        let bundle = client_bundle();
        let mut full = vec![
            "sio-server".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--shutdown-grace-ms".into(),
            "5000".into(),
        ];
        if bundle.is_file() {
            full.push("--client-js".into());
            full.push(bundle.display().to_string());
        }
        if let Some(url) = self.redis {
            full.extend(["--redis-url".to_string(), url]);
        }
        if let Some(id) = self.id {
            full.extend(["--node-id".to_string(), id]);
        }
        full.extend(self.args);
        let cli = Cli::try_parse_from(full).context("test flags")?;
        let config = Config::from_cli(cli).context("test config")?;
        let node = sio_server::node::spawn(config).await?;
        Ok(TestNode { node: Some(node) })
    }
}

/// A node running in this process, stopped when dropped.
pub struct TestNode {
    node: Option<RunningNode>,
}

impl TestNode {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.node.as_ref().expect("node is running").addr
    }

    /// Drains and stops the node, returning what `run` returned.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        match self.node.take() {
            Some(n) => n.shutdown().await,
            None => Ok(()),
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(n) = &self.node {
            n.stop_token().cancel();
        }
    }
}

/// The URLs of `nodes`, in order.
pub fn urls(nodes: &[TestNode]) -> Vec<String> {
    nodes.iter().map(TestNode::url).collect()
}

/// Polls `/readyz` until 200 (bounded).
pub async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok((200, _)) = http_get(addr, "/readyz").await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("node {addr} not ready in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sums the value of metric `name` (all label sets) over the `/metrics` of `nodes`.
pub async fn metric_sum(nodes: &[TestNode], name: &str) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for node in nodes {
        total += metric_at(node.addr(), name).await?;
    }
    Ok(total)
}

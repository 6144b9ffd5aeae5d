//! Real clients as child processes: the official `socket.io-client` scripts in `tests/js`
//! and `python-socketio` in `tests/py`, each printing the facts it observed as JSON lines;
//! and the real Node.js cluster member of `tests/js/peer-node.mjs` ([`NodePeer`]).

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::files::{js_dir, tests_dir};
use crate::redis::TestRedis;
use crate::scenario::merged;

/// How long one client scenario may run before the test fails.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// Fails with the install command when the npm packages of `tests/js` are missing.
pub(crate) fn ensure_installed() -> anyhow::Result<()> {
    if !js_dir().join("node_modules/socket.io-client").is_dir() {
        bail!("socket.io-client is not installed: run `npm ci --prefix tests/js`");
    }
    Ok(())
}

/// `node tests/js/<script> <opts>`, stdout and stderr piped, killed on drop.
pub(crate) fn node_command(script: &str, opts: &Value) -> anyhow::Result<Command> {
    ensure_installed()?;
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join(script))
        .arg(opts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(cmd)
}

/// Spawns `node tests/js/scenarios.mjs <opts>`.
pub fn spawn_js(opts: &Value) -> anyhow::Result<Child> {
    spawn_js_script("scenarios.mjs", opts)
}

/// Spawns `node tests/js/<script> <opts>` (read its lines with [`read_line`], end it
/// with [`finish`]).
pub fn spawn_js_script(script: &str, opts: &Value) -> anyhow::Result<Child> {
    node_command(script, opts)?
        .spawn()
        .context("cannot run `node`: is Node.js installed?")
}

/// Runs `node tests/js/<script> <opts>` to its end and returns the facts it printed.
pub async fn js_script(script: &str, opts: Value) -> anyhow::Result<Value> {
    let child = spawn_js_script(script, &opts)?;
    finish(child, script).await
}

/// Runs a scenario of `tests/js/scenarios.mjs` to its end and returns its facts.
pub async fn js_scenario(opts: Value) -> anyhow::Result<Value> {
    let child = spawn_js(&opts)?;
    finish(child, &format!("js scenario {}", opts["scenario"])).await
}

/// Waits (bounded) for a scenario process and parses the last line it printed.
pub async fn finish(child: Child, what: &str) -> anyhow::Result<Value> {
    let out = tokio::time::timeout(SCENARIO_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("{what} did not finish in {SCENARIO_TIMEOUT:?}"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or("");
    let facts: Value = serde_json::from_str(last)
        .with_context(|| format!("{what} printed no JSON; stdout={stdout:?} stderr={stderr:?}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {facts} stderr={stderr}", out.status);
    }
    Ok(facts)
}

/// Reads the next stdout line of a running scenario as JSON (bounded).
pub async fn read_line<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> anyhow::Result<Value> {
    let mut line = String::new();
    tokio::time::timeout(SCENARIO_TIMEOUT, reader.read_line(&mut line))
        .await
        .context("no line from the client in time")??;
    serde_json::from_str(line.trim()).with_context(|| format!("not JSON: {line:?}"))
}

/// Runs `python3 tests/py/<script> <args>` and returns the JSON it printed last.
pub async fn py_script(script: &str, args: &[&str]) -> anyhow::Result<Value> {
    let child = Command::new("python3")
        .arg(tests_dir().join("py").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run python3")?;
    finish(child, &format!("python {script}")).await
}

/// A real Node.js cluster member (`tests/js/peer-node.mjs`: socket.io 4.8 +
/// `@socket.io/redis-adapter` 8.3, or `@socket.io/redis-streams-adapter` 0.3.1) on `redis`,
/// killed on drop.
pub struct NodePeer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl NodePeer {
    /// Starts the peer and waits until it listens with its adapter subscribed.
    pub async fn start(redis: &TestRedis) -> anyhow::Result<Self> {
        Self::start_with(redis, serde_json::json!({})).await
    }

    /// Starts a peer with `createShardedAdapter` in `subscription_mode` (`dynamic`,
    /// `dynamic-private`, `static`).
    pub async fn start_sharded(redis: &TestRedis, subscription_mode: &str) -> anyhow::Result<Self> {
        Self::start_with(redis, serde_json::json!({"sharded": subscription_mode})).await
    }

    /// Starts a peer with `@socket.io/redis-streams-adapter` 0.3.1 on its defaults.
    pub async fn start_streams(redis: &TestRedis) -> anyhow::Result<Self> {
        Self::start_with(redis, serde_json::json!({"streams": {}})).await
    }

    /// Starts a peer with `@socket.io/redis-streams-adapter` 0.3.1 on its defaults and
    /// connection state recovery on (`maxDisconnectionDuration: window_ms`,
    /// `skipMiddlewares: true`).
    pub async fn start_streams_with_recovery(
        redis: &TestRedis,
        window_ms: u64,
    ) -> anyhow::Result<Self> {
        Self::start_with(
            redis,
            serde_json::json!({"streams": {}, "recovery": window_ms}),
        )
        .await
    }

    async fn start_with(redis: &TestRedis, extra: Value) -> anyhow::Result<Self> {
        let opts = merged(serde_json::json!({"redis": redis.url}), &extra);
        let mut child = node_command("peer-node.mjs", &opts)?
            .stdin(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run the Node.js peer")?;
        let stdout = child.stdout.take().context("peer stdout")?;
        let first = read_line(&mut BufReader::new(stdout)).await?;
        let port = first["port"].as_u64().context("peer printed no port")?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Stops the peer.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

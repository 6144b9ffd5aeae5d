//! A node as its own process (`sio-test-node`, the server's entry point), so a test can
//! SIGKILL or SIGTERM it, read its logs and measure it in `/proc`. Started through
//! [`crate::node::NodeBuilder`].

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::http::http_get;

/// How long a node process may take to log its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(40);

/// How long a listening node process may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The `sio-test-node` binary cargo built for this package's integration tests: next to
/// the `deps/` folder the running test executable is in (the path that
/// `CARGO_BIN_EXE_sio-test-node` names).
pub fn node_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("the test executable's path")?;
    let mut dir = exe.parent().context("the test executable's folder")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("the folder above deps/")?;
    }
    let bin = dir.join(format!("sio-test-node{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "no {} (cargo builds it for this package's integration tests)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Every line a [`NodeProcess`] wrote to stdout and stderr so far (JSON log lines).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<String>>>);

impl LogCapture {
    /// All lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// All lines, joined by newlines.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits (bounded by `within`) until the log contains `needle`: the log is read from
    /// the node's output by other threads. Whether it did.
    pub async fn wait_for(&self, needle: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.text().contains(needle) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    fn push(&self, line: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

/// How a node process started: ready, or exited (a start-up failure) with its log.
pub enum ProcessStart {
    /// Listening and ready.
    Ready(NodeProcess),
    /// It exited before it was ready.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// Everything it logged.
        log: LogCapture,
    },
}

/// What became of a node process right after it was spawned.
pub(crate) enum Launch {
    /// It logged its address (it may still be waiting for Redis).
    Listening(NodeProcess),
    /// It exited first.
    Exited(ExitStatus, LogCapture),
}

/// A node as its own process on `127.0.0.1:0` with JSON logs, killed on drop.
pub struct NodeProcess {
    child: std::process::Child,
    addr: SocketAddr,
    log: LogCapture,
}

impl NodeProcess {
    /// Runs [`node_bin`] with `args` and `env` (after `SIO_LISTEN=127.0.0.1:0`,
    /// `SIO_LOG_FORMAT=json`, `RUST_LOG=info`), capturing every output line, until it
    /// logs its address or exits.
    pub(crate) async fn launch(
        env: &[(String, String)],
        args: &[String],
    ) -> anyhow::Result<Launch> {
        let mut child = std::process::Command::new(node_bin()?)
            .args(args)
            .env("SIO_LISTEN", "127.0.0.1:0")
            .env("SIO_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn the node process")?;
        let log = LogCapture::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let outputs = [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ];
        for output in outputs.into_iter().flatten() {
            let (log, tx) = (log.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(output)
                    .lines()
                    .map_while(Result::ok)
                {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["message"] == "listening"
                        && let Some(addr) = v["addr"].as_str()
                    {
                        let _ = tx.send(addr.to_string());
                    }
                    log.push(line);
                }
            });
        }
        // Once both readers end (the process exited), `recv` stops waiting.
        drop(tx);
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(LISTEN_TIMEOUT)).await?;
        match addr {
            Ok(addr) => Ok(Launch::Listening(Self {
                child,
                addr: addr.parse()?,
                log,
            })),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = tokio::task::spawn_blocking(move || child.wait()).await??;
                Ok(Launch::Exited(status, log))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                bail!("the node never logged its address:\n{}", log.text())
            }
        }
    }

    /// Polls `/readyz` (bounded) until 200, or until the process exits: listening is not
    /// started, the node may still give up on Redis and exit.
    pub(crate) async fn ready_or_exited(mut self) -> anyhow::Result<ProcessStart> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = self.log.clone();
                return Ok(ProcessStart::Exited { status, log });
            }
            if let Ok((200, _)) = http_get(self.addr, "/readyz").await {
                return Ok(ProcessStart::Ready(self));
            }
            if tokio::time::Instant::now() > deadline {
                bail!("node {} neither ready nor stopped in time", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the node has logged, now and later (it outlives the process).
    pub fn log(&self) -> LogCapture {
        self.log.clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM: the node drains and exits; waits (bounded) and returns its exit code.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<Option<i32>> {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()?;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the node did not exit within {within:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no drain, no deregistration.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Memory and file descriptors of a process, from `/proc/<pid>` (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcFigures {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size so far, KiB (`VmHWM`).
    pub peak_rss_kib: u64,
    /// Open file descriptors (entries of `/proc/<pid>/fd`).
    pub fds: usize,
    /// Threads.
    pub threads: u64,
}

impl ProcFigures {
    /// Reads the figures of process `pid` now.
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("read /proc/{pid}/status"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            peak_rss_kib: field("VmHWM:")?,
            threads: field("Threads:")?,
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count(),
        })
    }

    /// RSS in MiB, for messages.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
}

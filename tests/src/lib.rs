//! Test support for sio-cluster: start nodes in-process, drive real clients.
//!
//! Clients are the official `socket.io-client` (npm, pinned in `tests/js/package.json`)
//! and `python-socketio` (pinned in `tests/py/requirements.txt`), run as child
//! processes that print the facts they observed as JSON. Install them once with
//! `npm ci --prefix tests/js` and `pip install -r tests/py/requirements.txt`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let node = sio_cluster_tests::start_node(&[]).await?;
//! let facts = sio_cluster_tests::js_scenario(serde_json::json!({
//!     "scenario": "handshake",
//!     "url": node.url(),
//! })).await?;
//! assert_eq!(facts["connected"], true);
//! # Ok(()) }
//! ```

pub mod faults;
mod rust_peer;

pub use rust_peer::RustPeer;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::Value;
use sio_server::config::{Cli, Config};
use sio_server::node::{self, RunningNode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long one client scenario may run before the test fails.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// The `tests/` folder of the repository.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder of the Node.js clients.
pub fn js_dir() -> PathBuf {
    tests_dir().join("js")
}

/// The npm copy of the browser bundle, served to the demo page in tests.
pub fn client_bundle() -> PathBuf {
    js_dir().join("node_modules/socket.io-client/dist/socket.io.min.js")
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
    pub fn addr(&self) -> std::net::SocketAddr {
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

/// Starts a node on `127.0.0.1:0` with `args` as extra command-line flags
/// (e.g. `["--client-publish", "room-*"]`). The demo page gets the local client bundle.
pub async fn start_node(args: &[&str]) -> anyhow::Result<TestNode> {
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
    full.extend(args.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(full).context("test flags")?;
    let config = Config::from_cli(cli).context("test config")?;
    let node = node::spawn(config).await?;
    Ok(TestNode { node: Some(node) })
}

fn ensure_installed() -> anyhow::Result<()> {
    if !js_dir().join("node_modules/socket.io-client").is_dir() {
        bail!("socket.io-client is not installed: run `npm ci --prefix tests/js`");
    }
    Ok(())
}

/// Spawns `node tests/js/scenarios.mjs <opts>`.
pub fn spawn_js(opts: &Value) -> anyhow::Result<Child> {
    spawn_js_script("scenarios.mjs", opts)
}

/// Spawns `node tests/js/<script> <opts>` (read its lines with [`read_line`], end it
/// with [`finish`]).
pub fn spawn_js_script(script: &str, opts: &Value) -> anyhow::Result<Child> {
    ensure_installed()?;
    Command::new("node")
        .arg(js_dir().join(script))
        .arg(opts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run `node`: is Node.js installed?")
}

/// Runs `node tests/js/<script> <opts>` to its end and returns the facts it printed.
pub async fn js_script(script: &str, opts: Value) -> anyhow::Result<Value> {
    ensure_installed()?;
    let child = Command::new("node")
        .arg(js_dir().join(script))
        .arg(opts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run `node`: is Node.js installed?")?;
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

/// A minimal HTTP/1.1 GET on loopback: `(status, body)`. Enough for health, readiness
/// and metrics; no client library needed.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    http_request(addr, "GET", path, b"").await
}

/// A minimal HTTP/1.1 request with a body on loopback: `(status, body)` ([`raw_http`]
/// without extra headers).
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let (status, _, body) = raw_http(addr, method, path, &[], body).await?;
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A Redis server in a container (testcontainers; image `redis:7.2`), removed on drop.
pub struct TestRedis {
    container: testcontainers::ContainerAsync<testcontainers::GenericImage>,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
}

impl TestRedis {
    /// Starts a fresh Redis.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts a fresh Redis with extra `redis-server` arguments (e.g. `--requirepass`).
    pub async fn start_with(args: &[&str]) -> anyhow::Result<Self> {
        use testcontainers::ImageExt;
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        let mut cmd = vec!["redis-server".to_string()];
        cmd.extend(args.iter().map(|a| a.to_string()));
        let container = testcontainers::GenericImage::new("redis", "7.2")
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
            .with_cmd(cmd)
            .start()
            .await
            .context("start the redis:7.2 container (is Docker running and the image present?)")?;
        let port = container.get_host_port_ipv4(6379.tcp()).await?;
        Ok(Self {
            container,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }

    /// The container, for fault tests (stop, start, pause).
    pub fn container(&self) -> &testcontainers::ContainerAsync<testcontainers::GenericImage> {
        &self.container
    }

    /// Runs `redis-cli ARGS...` inside the container and returns its output.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        redis_cli(&self.container, args).await
    }
}

/// Runs `redis-cli ARGS...` inside a Redis `container` and returns its output.
pub async fn redis_cli(
    container: &testcontainers::ContainerAsync<testcontainers::GenericImage>,
    args: &[&str],
) -> anyhow::Result<String> {
    use testcontainers::core::ExecCommand;
    let mut cmd = vec!["redis-cli"];
    cmd.extend_from_slice(args);
    let mut res = container.exec(ExecCommand::new(cmd)).await?;
    let out = res.stdout_to_vec().await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Starts `n` nodes sharing `redis`, each with `args` as extra flags, and waits until
/// every one reports ready (Redis connected, pub/sub round trip seen).
pub async fn start_cluster(
    redis: &TestRedis,
    n: usize,
    args: &[&str],
) -> anyhow::Result<Vec<TestNode>> {
    start_cluster_at(&redis.url, n, args).await
}

/// [`start_cluster`] with an explicit Redis URL (credentials, db number).
pub async fn start_cluster_at(url: &str, n: usize, args: &[&str]) -> anyhow::Result<Vec<TestNode>> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("node-{i}");
        let mut full = vec!["--redis-url", url, "--node-id", id.as_str()];
        full.extend_from_slice(args);
        nodes.push(start_node(&full).await?);
    }
    for node in &nodes {
        wait_ready(node.addr()).await?;
    }
    Ok(nodes)
}

/// Polls `/readyz` until 200 (bounded).
pub async fn wait_ready(addr: std::net::SocketAddr) -> anyhow::Result<()> {
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

/// A real Node.js cluster member (`tests/js/peer-node.mjs`: socket.io 4.8 +
/// `@socket.io/redis-adapter` 8.3) on `redis`, killed on drop.
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

    async fn start_with(redis: &TestRedis, extra: Value) -> anyhow::Result<Self> {
        ensure_installed()?;
        let mut opts = serde_json::json!({"redis": redis.url});
        if let (Some(o), Some(e)) = (opts.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        let mut child = Command::new("node")
            .arg(js_dir().join("peer-node.mjs"))
            .arg(opts.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
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

/// A real nginx (Debian's `/usr/sbin/nginx`) in front of some nodes, on loopback, stopped
/// on drop. Its own prefix directory holds the generated config and logs.
pub struct Nginx {
    child: std::process::Child,
    _dir: TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// How nginx picks a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Plain round robin: no stickiness at all.
    RoundRobin,
    /// `ip_hash`: one client address always reaches one node.
    IpHash,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Nginx {
    /// Starts nginx balancing over `upstreams`.
    pub async fn start(
        upstreams: &[std::net::SocketAddr],
        balance: Balance,
    ) -> anyhow::Result<Self> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let dir = std::env::temp_dir().join(format!("sio-nginx-{port}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp"))?;
        let servers: String = upstreams
            .iter()
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=30s;\n"))
            .collect();
        let hash = if balance == Balance::IpHash {
            "    ip_hash;\n"
        } else {
            ""
        };
        let d = dir.display();
        let conf = format!(
            r#"# one process: killing it (Drop) leaves no orphaned worker holding the port
master_process off;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream sio {{
{hash}{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://sio;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 60s;
      proxy_buffering off;
      # a refused connection sent nothing: safe to try another node
      proxy_next_upstream error non_idempotent;
      proxy_next_upstream_tries 3;
    }}
  }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = std::process::Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("run /usr/sbin/nginx (Debian: apt-get install nginx-light)")?;
        let nginx = Self {
            child,
            _dir: TempDir(dir),
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("nginx did not start listening");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// [`metric_sum`] for one node at `addr`.
pub async fn metric_at(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<f64> {
    let (_, text) = http_get(addr, "/metrics").await?;
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with(name)
            && line[name.len()..].starts_with(['{', ' '])
            && let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())
        {
            total += v;
        }
    }
    Ok(total)
}

/// A node as its own process (`sio-test-node`, the server's entry point), so a test can
/// kill it with SIGKILL. Killed on drop.
pub struct NodeProcess {
    child: std::process::Child,
    /// The bound address.
    pub addr: std::net::SocketAddr,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NodeProcess {
    /// Starts `bin` (pass `env!("CARGO_BIN_EXE_sio-test-node")`) with `SIO_*` settings
    /// `env` on `127.0.0.1:0`, and waits until it is ready.
    pub async fn start(bin: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let node = Self::spawn(bin, env).await?;
        wait_ready(node.addr).await?;
        Ok(node)
    }

    /// [`NodeProcess::start`] without waiting for readiness: returns once the node
    /// listens (it may still be waiting for Redis).
    pub async fn spawn(bin: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin)
            .env("SIO_LISTEN", "127.0.0.1:0")
            .env("SIO_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn the node process")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                if !sent
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                    && let Some(addr) = v["addr"].as_str()
                {
                    let _ = tx.send(addr.to_string());
                    sent = true;
                }
            }
        });
        let addr: std::net::SocketAddr =
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(40)))
                .await?
                .context("the node never logged its address")?
                .parse()?;
        Ok(Self { child, addr, logs })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines (JSON) the node has written so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

/// An `op` request for a test peer: `{"kind": kind, ...extra}`.
pub fn op(kind: &str, extra: Value) -> Value {
    let mut op = serde_json::json!({ "kind": kind });
    if let (Some(o), Some(e)) = (op.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    op
}

// ---- security (issue #8): TLS Redis, captured node logs, raw HTTP with headers --------

/// A CA and a server certificate for `127.0.0.1`/`localhost` signed by it, all PEM, made
/// fresh for a test (rcgen).
pub struct TestPki {
    /// The CA certificate (what clients trust).
    pub ca_pem: String,
    /// The server certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

impl TestPki {
    /// Generates a CA named `name` and a server certificate signed by it.
    pub fn generate(name: &str) -> anyhow::Result<Self> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "redis test server");
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl TestRedis {
    /// Starts a Redis that speaks only TLS (`--port 0 --tls-port 6379`) with the server
    /// certificate of `pki`, plus extra `args`; `url` is `rediss://127.0.0.1:PORT`.
    pub async fn start_tls(pki: &TestPki, args: &[&str]) -> anyhow::Result<Self> {
        use testcontainers::CopyTargetOptions;
        use testcontainers::ImageExt;
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        let mut cmd: Vec<String> = [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            "6379",
            "--tls-cert-file",
            "/tls/server.crt",
            "--tls-key-file",
            "/tls/server.key",
            "--tls-ca-cert-file",
            "/tls/ca.crt",
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cmd.extend(args.iter().map(|a| a.to_string()));
        let file = |path: &str, pem: &str| {
            (
                CopyTargetOptions::new(path).with_mode(0o644),
                pem.as_bytes().to_vec(),
            )
        };
        let (ca, cert, key) = (
            file("/tls/ca.crt", &pki.ca_pem),
            file("/tls/server.crt", &pki.cert_pem),
            file("/tls/server.key", &pki.key_pem),
        );
        let container = testcontainers::GenericImage::new("redis", "7.2")
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
            .with_copy_to(ca.0, ca.1)
            .with_copy_to(cert.0, cert.1)
            .with_copy_to(key.0, key.1)
            .with_cmd(cmd)
            .start()
            .await
            .context("start a TLS redis:7.2 container")?;
        let port = container.get_host_port_ipv4(6379.tcp()).await?;
        Ok(Self {
            container,
            url: format!("rediss://127.0.0.1:{port}"),
        })
    }
}

/// Every log line a [`NodeProcess`] wrote to stderr so far.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl LogCapture {
    /// All lines, joined by newlines.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|l| l.join("\n"))
            .unwrap_or_else(|e| e.into_inner().join("\n"))
    }
}

/// Runs `bin` with `env` (and `SIO_LISTEN=127.0.0.1:0`, JSON logs) capturing every
/// stderr line, until it logs its address; `None` when it exited first (a start-up
/// failure). Returns the running node (killed on drop), its log, and the exit status
/// when it exited instead.
pub async fn start_node_process_logged(
    bin: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<(
    Option<NodeProcess>,
    LogCapture,
    Option<std::process::ExitStatus>,
)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .env("SIO_LISTEN", "127.0.0.1:0")
        .env("SIO_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn the node process")?;
    let log = LogCapture::default();
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let (log, tx) = (log.clone(), tx.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                    && let Some(addr) = v["addr"].as_str()
                {
                    let _ = tx.send(addr.to_string());
                }
                if let Ok(mut l) = log.0.lock() {
                    l.push(line);
                }
            }
        });
    }
    drop(tx);
    let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await?
        .ok();
    match addr {
        // Listening is not started: the node may still give up on Redis and exit.
        Some(addr) => {
            let mut node = NodeProcess {
                child,
                addr: addr.parse()?,
                logs: log.0.clone(),
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                if let Some(status) = node.child.try_wait()? {
                    return Ok((None, log, Some(status)));
                }
                if let Ok((200, _)) = http_get(node.addr, "/readyz").await {
                    return Ok((Some(node), log, None));
                }
                if tokio::time::Instant::now() > deadline {
                    bail!("node {addr} neither ready nor stopped in time");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        None => {
            let status = tokio::task::spawn_blocking(move || child.wait()).await??;
            Ok((None, log, Some(status)))
        }
    }
}

/// A raw HTTP/1.1 request with extra `headers` on loopback: `(status, head, body)`; the
/// head is the status line and headers as text. A `101` answer is returned as soon as
/// its head arrives.
pub async fn raw_http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, String, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    let upgrade = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("upgrade") && v.eq_ignore_ascii_case("websocket"));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !upgrade {
        head.push_str(&format!(
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            // Keep-alive answers (upgrade requests do not say `close`): stop once the
            // head and its Content-Length body are in.
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                if head.starts_with("http/1.1 101") {
                    break;
                }
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|len| raw.len() >= end + 4 + len) {
                    break;
                }
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .context("HTTP response timed out")??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, head.to_string(), body))
}

/// A websocket client connection, as the tests open them with tokio-tungstenite.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message on `ws` (Engine.IO pings answered on the way), or `None` when
/// the connection ended or nothing came for 10 s.
pub async fn ws_next_text(ws: &mut Ws) -> Option<String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                ws.send(Message::text("3")).await.ok()?;
            }
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Publishes one message per entry of `sizes` (bytes of data, letters) through the
/// gateway from `sender` to `room`, all back to back, then asserts each publish was acked
/// and that `receiver` (already in `room`) got every message whole and in order.
pub async fn publish_large_messages(
    sender: &mut Ws,
    receiver: &mut Ws,
    room: &str,
    sizes: &[usize],
) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let data = |i: usize, size: usize| -> String {
        (0..size)
            .map(|j| char::from(b'a' + ((i + j) % 26) as u8))
            .collect()
    };
    for (i, size) in sizes.iter().enumerate() {
        let packet = format!(
            r#"42{i}["publish",{{"room":"{room}","event":"e{i}","data":"{}"}}]"#,
            data(i, *size)
        );
        sender
            .send(Message::text(packet))
            .await
            .expect("send a publish");
    }
    for (i, size) in sizes.iter().enumerate() {
        assert_eq!(
            ws_next_text(sender).await.as_deref(),
            Some(format!(r#"43{i}[{{"ok":true}}]"#).as_str())
        );
        let got = ws_next_text(receiver).await.expect("the event");
        assert!(
            got == format!(r#"42["e{i}","{}"]"#, data(i, *size)),
            "message {i} ({size} bytes) arrived as {} bytes: {}…",
            got.len(),
            &got[..got.len().min(40)]
        );
    }
}

/// Opens an Engine.IO v4 polling session on `addr` (request `headers` added) and returns
/// its sid, read from the open packet as the forwarding layer reads it.
pub async fn polling_sid(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
) -> anyhow::Result<String> {
    let (status, _, body) = raw_http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        headers,
        b"",
    )
    .await?;
    if status != 200 {
        bail!("polling handshake answered {status}: {body}");
    }
    sio_server::forward::sid_from_open_packet(body.as_bytes())
        .with_context(|| format!("no sid in the open packet {body}"))
}

// --- Process figures for the bad-input and soak tests (issue #8) ---

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

/// Real `socket.io-client`s (`witness` in `tests/js/scenarios.mjs`: one websocket, one
/// polling-only) publishing and receiving numbered events while a test misbehaves, to
/// show the node keeps serving others. Needs `--client-publish 'witness-*'` on the node.
pub struct Witness {
    child: Child,
    stdin: Option<tokio::process::ChildStdin>,
}

impl Witness {
    /// Connects the witnesses to `url` and waits until they are in their rooms.
    pub async fn start(url: &str) -> anyhow::Result<Self> {
        ensure_installed()?;
        let opts = serde_json::json!({"scenario": "witness", "url": url, "room": "witness", "waitMs": 20000});
        let mut child = Command::new("node")
            .arg(js_dir().join("scenarios.mjs"))
            .arg(opts.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot run `node`: is Node.js installed?")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("witness stdout")?);
        let ready = read_line(&mut stdout).await?;
        if ready["ready"] != true {
            bail!("witnesses not ready: {ready}");
        }
        // `finish` reads the rest of stdout (nothing was buffered beyond the first line).
        child.stdout = Some(stdout.into_inner());
        Ok(Self { child, stdin })
    }

    /// Stops the witnesses and asserts each one sent at least `min_sent` events, got every
    /// one back in order, and was never disconnected. Returns their facts.
    pub async fn assert_unharmed(mut self, min_sent: u64) -> Value {
        drop(self.stdin.take());
        let f = match finish(self.child, "witness").await {
            Ok(f) => f,
            Err(e) => panic!("witness failed: {e:#}"),
        };
        for w in f["witnesses"].as_array().into_iter().flatten() {
            let sent = w["sent"].as_u64().unwrap_or(0);
            assert!(sent >= min_sent, "too few events during the test: {w}");
            assert_eq!(w["acked"], sent, "{w}");
            assert_eq!(w["received"], sent, "{w}");
            assert_eq!(w["inOrder"], true, "{w}");
            assert_eq!(w["disconnects"], serde_json::json!([]), "{w}");
            assert_eq!(w["connectErrors"], serde_json::json!([]), "{w}");
        }
        assert_eq!(f["witnesses"].as_array().map(Vec::len), Some(2), "{f}");
        f
    }
}

// --- Slow and idle HTTP connections: the header timeout (issue #8) ---

/// Asserts the facts of the `quiet` scenario (tests/js/scenarios.mjs): the polling-only,
/// websocket-only and upgrading clients ended on their transports, were never
/// disconnected, got events 0..5 back in order, and the polling client saw a long-poll
/// held longer than `header_timeout_ms` (so the quiet time really waited across the
/// node's header timeout).
pub fn assert_quiet_clients_unharmed(facts: &Value, header_timeout_ms: u64) {
    let wanted = [
        ("polling", "polling"),
        ("websocket", "websocket"),
        ("upgrade", "websocket"),
    ];
    for (mode, transport) in wanted {
        let c = &facts[mode];
        assert_eq!(c["transport"], transport, "{mode}: {c}");
        assert_eq!(c["connected"], true, "{mode}: {c}");
        assert_eq!(c["disconnects"], serde_json::json!([]), "{mode}: {c}");
        assert_eq!(c["connectErrors"], serde_json::json!([]), "{mode}: {c}");
        assert_eq!(
            c["received"],
            serde_json::json!([0, 1, 2, 3, 4]),
            "{mode}: {c}"
        );
    }
    let longest = facts["polling"]["longestPollMs"].as_u64().unwrap_or(0);
    assert!(
        longest > header_timeout_ms,
        "no long-poll outlasted the header timeout ({header_timeout_ms} ms): {longest} ms"
    );
}

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
//! The deploy files, exercised: the image built from `Dockerfile`, the cluster of
//! `docker-compose.yml` (Redis, three nodes, nginx with `ip_hash`) reached only through
//! its one published port by official socket.io clients, events sent with `sio-emit` from
//! a job container, one node stopped and its clients back through nginx, and
//! `down -v` leaving nothing behind. Also: every Kubernetes manifest in `k8s/` and the
//! rendered kustomization validate against the Kubernetes schemas.
//!
//! Needs Docker, docker compose (v2 plugin or docker-compose v1.29; `SIO_TEST_COMPOSE`
//! names another compose command) and the images named
//! by the compose file (`redis:7.2`, `nginx:1.27`; overridable with `REDIS_IMAGE`,
//! `NGINX_IMAGE`) plus `debian:bookworm-slim` for the runtime image, all local.
//! The image is built with `--target from-host` from this package's debug binaries:
//! `sio-test-node` (the server's entry point) and `sio-test-emit` (`sio-emit`'s source),
//! staged in `docker-bin/` for the time of the build.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sio_cluster_tests::clients::{read_line, spawn_js};
use sio_cluster_tests::files::{TempDir, tests_dir};
use sio_cluster_tests::http::{http_get, metric_in};
use tokio::io::BufReader;

/// The image tag the test builds and the compose file runs (`SIO_IMAGE`).
const IMAGE: &str = "sio-cluster:test";
/// Longest any one docker / compose command may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(240);

fn repo() -> PathBuf {
    tests_dir().parent().expect("repository root").to_path_buf()
}

/// Debian's docker CLI when present (its classic builder matches the engine here), else
/// whatever `docker` is on PATH.
fn docker() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// Runs a command to its end (bounded), failing with its output unless it exits 0.
async fn run(mut cmd: tokio::process::Command, what: &str) -> anyhow::Result<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(STEP_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("{what}: no end within {STEP_TIMEOUT:?}"))?
        .with_context(|| format!("{what}: cannot run"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "{what} failed ({}): stdout={stdout} stderr={}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Builds [`IMAGE`] as the README says: the two (stripped) binaries and the client
/// bundle in `docker-bin/`,
/// `docker build --target from-host .` with the repository as context (so `.dockerignore`
/// must keep `target/` out), then `docker-bin/` emptied again.
async fn build_image() -> anyhow::Result<()> {
    static BUILT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BUILT.get_or_try_init(build_image_once).await.map(|_| ())
}

/// One compose cluster at a time: each is three nodes, Redis and nginx on a small machine.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn build_image_once() -> anyhow::Result<()> {
    struct Staged(Vec<PathBuf>);
    impl Drop for Staged {
        fn drop(&mut self) {
            for f in &self.0 {
                let _ = std::fs::remove_file(f);
            }
        }
    }
    let dir = repo().join("docker-bin");
    let mut staged = Staged(Vec::new());
    // the demo page's client bundle, from npm (tests/js), as the image's SIO_CLIENT_JS
    let bundle = sio_cluster_tests::files::client_bundle();
    let staged_bundle = dir.join("socket.io.min.js");
    staged.0.push(staged_bundle.clone());
    std::fs::copy(&bundle, &staged_bundle)
        .with_context(|| format!("{} (npm ci --prefix tests/js)", bundle.display()))?;
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_sio-test-node"), "sio-server"),
        (env!("CARGO_BIN_EXE_sio-test-emit"), "sio-emit"),
    ] {
        let dest = dir.join(name);
        staged.0.push(dest.clone());
        let stripped = std::process::Command::new("strip")
            .arg("-o")
            .arg(&dest)
            .arg(bin)
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(bin, &dest)?;
        }
    }
    let mut cmd = tokio::process::Command::new(docker());
    cmd.env("DOCKER_BUILDKIT", "0").current_dir(repo()).args([
        "build",
        "-q",
        "--target",
        "from-host",
        "-t",
        IMAGE,
        ".",
    ]);
    run(cmd, "docker build --target from-host .").await?;
    Ok(())
}

/// One compose project of `docker-compose.yml`, taken down (`down -v`) on drop.
struct Compose {
    program: Vec<String>,
    project: String,
    port: u16,
    /// Seconds between the demo job's notifications (`EMIT_EVERY`).
    emit_every: &'static str,
}

impl Compose {
    fn new() -> anyhow::Result<Self> {
        // SIO_TEST_COMPOSE (a command, e.g. a standalone v2 binary), else `docker compose`
        // (v2) when the plugin exists, else docker-compose v1
        let program: Vec<String> = match std::env::var("SIO_TEST_COMPOSE") {
            Ok(cmd) if !cmd.trim().is_empty() => {
                cmd.split_whitespace().map(str::to_string).collect()
            }
            _ => {
                let v2 = std::process::Command::new("docker")
                    .args(["compose", "version"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if v2 {
                    vec!["docker".into(), "compose".into()]
                } else {
                    vec!["docker-compose".into()]
                }
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(Self {
            program,
            project: format!("siodeploy{}", std::process::id()),
            port,
            emit_every: "1",
        })
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(repo().join("docker-compose.yml"))
            .args(args)
            .env("SIO_IMAGE", IMAGE)
            .env("SIO_BIND", "127.0.0.1")
            .env("SIO_PORT", self.port.to_string())
            .env("EMIT_EVERY", self.emit_every);
        cmd
    }

    async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        run(
            self.command(args).into(),
            &format!("compose {}", args.join(" ")),
        )
        .await
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// `sio-emit` in a one-off job container of the `emitter` service.
    async fn emit(&self, room: &str, event: &str, data: &Value) -> anyhow::Result<()> {
        let data = data.to_string();
        self.run(&[
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "emitter",
            "sio-emit",
            "--to",
            room,
            event,
            &data,
        ])
        .await?;
        Ok(())
    }

    /// What docker still holds of this project: containers, networks, volumes.
    async fn leftovers(&self) -> anyhow::Result<String> {
        let filter = format!("label=com.docker.compose.project={}", self.project);
        let mut all = String::new();
        for args in [
            vec!["ps", "-aq", "--filter", &filter],
            vec!["network", "ls", "-q", "--filter", &filter],
            vec!["volume", "ls", "-q", "--filter", &filter],
        ] {
            let mut cmd = tokio::process::Command::new(docker());
            cmd.args(&args);
            all.push_str(&run(cmd, &format!("docker {}", args.join(" "))).await?);
        }
        Ok(all.trim().to_string())
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        // also on a failed assertion: never leave a cluster running
        let _ = self
            .command(&["down", "-v", "--remove-orphans", "-t", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A container started next to a compose project with `docker run`, removed on drop
/// (before the project's `down`, which could not remove a network still in use).
struct Container(String);

impl Container {
    /// Another sio-server node on the project's network under the alias `sio-nodes`,
    /// the way a scaled-up or rescheduled node appears: a new name and a new address.
    async fn extra_node(compose: &Compose, node_id: &str) -> anyhow::Result<Self> {
        let name = format!("{}-{node_id}", compose.project);
        let container = Self(name.clone());
        let mut cmd = tokio::process::Command::new(docker());
        cmd.args(["run", "-d", "--name", &name, "--network"])
            .arg(format!("{}_default", compose.project))
            .args(["--network-alias", "sio-nodes", "-e"])
            .arg("SIO_REDIS_URL=redis://redis:6379")
            .args([
                "-e",
                "SIO_REDIS_MODE=streams",
                "-e",
                "SIO_RECOVERY_WINDOW_MS=120000",
            ])
            .arg("-e")
            .arg(format!("SIO_NODE_ID={node_id}"))
            .arg("-e")
            .arg(format!("SIO_ADVERTISE_ADDR={name}:3000"))
            .arg(IMAGE);
        run(cmd, "docker run (another node)").await?;
        Ok(container)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new(docker())
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A container's address on its (one) network.
async fn ip_of(container: &str) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new(docker());
    cmd.args([
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container,
    ]);
    let ip = run(cmd, "docker inspect (address)")
        .await?
        .trim()
        .to_string();
    if ip.is_empty() {
        bail!("{container} has no address");
    }
    Ok(ip)
}

/// Polls a GET through nginx until it answers 200 (bounded); returns the body.
async fn get_ok(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match http_get(addr, path).await {
            Ok((200, body)) => return Ok(body),
            other if tokio::time::Instant::now() > deadline => {
                bail!("GET {path} never answered 200: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The id of the node nginx sends this host's requests to (`/healthz` names it).
async fn serving_node(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let body: Value = serde_json::from_str(&get_ok(addr, "/healthz").await?)?;
    body["node"]
        .as_str()
        .map(str::to_string)
        .context("node in /healthz")
}

/// `sio_sockets_connected` of the node at `addr` (through nginx: the one serving this host).
async fn sockets_connected(addr: std::net::SocketAddr) -> anyhow::Result<f64> {
    let text = get_ok(addr, "/metrics").await?;
    Ok(metric_in(&text, "sio_sockets_connected"))
}

/// The whole compose life cycle, as a user runs it, with official clients through nginx;
/// then a node that appears with a new address while the others stop, which nginx
/// (started by `k8s/nginx/follow.sh`) must find without a restart.
#[tokio::test]
async fn compose_cluster_serves_through_nginx_survives_a_node_follows_new_nodes_and_leaves_nothing()
{
    let _one = ONE_CLUSTER.lock().await;
    build_image().await.unwrap();
    let compose = Compose::new().unwrap();
    compose.run(&["up", "-d"]).await.unwrap();
    let addr = compose.addr();
    get_ok(addr, "/nginx-healthz").await.unwrap();
    get_ok(addr, "/readyz").await.unwrap();
    // the demo page loads its client from the node: the bundle the image ships
    let page = get_ok(addr, "/").await.unwrap();
    assert!(
        page.contains(r#"<script src="/assets/socket.io.min.js"></script>"#),
        "{page}"
    );
    let served = get_ok(addr, "/assets/socket.io.min.js").await.unwrap();
    let shipped = std::fs::read_to_string(sio_cluster_tests::files::client_bundle()).unwrap();
    assert!(served == shipped, "the image serves another client bundle");
    // the node addresses nginx resolved when it started
    let mut nodes = Vec::new();
    for node in ["sio-1", "sio-2", "sio-3"] {
        let id = compose.run(&["ps", "-q", node]).await.unwrap();
        nodes.push((node, ip_of(id.trim()).await.unwrap()));
    }

    // official clients (polling, websocket, upgrade) through nginx
    let mut child = spawn_js(&json!({
        "scenario": "deploy", "url": compose.url(), "rooms": ["room-deploy", "demo"],
        "event": "deploy-event", "demo": true, "waitMs": 30000, "recoverMs": 60000,
    }))
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let ready = read_line(&mut out).await.unwrap();
    assert_eq!(ready["phase"], "ready", "{ready}");
    assert_eq!(
        ready["transports"],
        json!({"polling": "polling", "websocket": "websocket", "upgrade": "websocket"})
    );

    // ip_hash: every client here comes from the same address, so one node serves them all
    let victim = serving_node(addr).await.unwrap();
    assert_eq!(sockets_connected(addr).await.unwrap(), 3.0, "{victim}");

    // an event from a job container, through Redis, reaches every client
    compose
        .emit("room-deploy", "deploy-event", &json!({"n": 1}))
        .await
        .unwrap();
    let got1 = read_line(&mut out).await.unwrap();
    assert_eq!(got1["phase"], "got1", "{got1}");

    // stop the node serving them: it drains, clients reconnect through nginx elsewhere
    let stopping = std::time::Instant::now();
    compose.run(&["stop", &victim]).await.unwrap();
    let recovered = read_line(&mut out).await.unwrap();
    eprintln!(
        "stopped {victim}; clients back through nginx {:?} after `stop` began: {recovered}",
        stopping.elapsed()
    );
    assert_eq!(recovered["phase"], "recovered", "{recovered}");
    for mode in ["polling", "websocket", "upgrade"] {
        assert_eq!(
            recovered["reasons"][mode][0], "transport close",
            "a drained node closes the transport: {recovered}"
        );
    }
    let survivor = serving_node(addr).await.unwrap();
    assert_ne!(survivor, victim, "nginx moved this client address");
    // nginx re-resolved `sio-nodes` without the stopped node and reloaded, which may have
    // moved this address to the other survivor after the clients came back: count them
    // on both survivors (the host reaches the containers' addresses)
    let mut connected = 0.0;
    for (node, ip) in nodes.iter().filter(|(node, _)| *node != victim) {
        let at = std::net::SocketAddr::new(ip.parse().unwrap(), 3000);
        let n = sockets_connected(at).await.unwrap();
        eprintln!("{node}: {n} sockets");
        connected += n;
    }
    assert_eq!(connected, 3.0, "the three clients are on the survivors");
    let id = compose.run(&["ps", "-a", "-q", &victim]).await.unwrap();
    let mut cmd = tokio::process::Command::new(docker());
    cmd.args([
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        id.trim(),
    ]);
    let state = run(cmd, "docker inspect").await.unwrap();
    assert_eq!(
        state.trim(),
        "exited 0",
        "the stopped node drained and exited cleanly"
    );

    // after recovery: another event, and the optional demo job's notifications
    compose
        .emit("room-deploy", "deploy-event", &json!({"n": 2}))
        .await
        .unwrap();
    compose
        .run(&["up", "-d", "--no-deps", "emitter"])
        .await
        .unwrap();
    let done = read_line(&mut out).await.unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{done}");
    assert_eq!(done["phase"], "done", "{done}");
    eprintln!("survivor {survivor}: {done}");
    assert_eq!(
        done["got"],
        json!([[{"n": 1}, {"n": 2}], [{"n": 1}, {"n": 2}], [{"n": 1}, {"n": 2}]]),
        "each event exactly once at each client: {done}"
    );
    assert_eq!(done["disconnects"], json!([1, 1, 1]), "{done}");

    // a fourth node joins with an address nginx has never resolved, and the three
    // compose nodes stop: without re-resolving `sio-nodes` nginx would know only
    // stopped addresses and answer 502 from here on
    let extra = Container::extra_node(&compose, "sio-4").await.unwrap();
    let new_address = ip_of(&extra.0).await.unwrap();
    assert!(
        nodes.iter().all(|(_, ip)| *ip != new_address),
        "the new node must have an address nginx has not seen: {new_address} {nodes:?}"
    );
    let following = std::time::Instant::now();
    compose
        .run(&["stop", "-t", "12", "sio-1", "sio-2", "sio-3"])
        .await
        .unwrap();
    assert_eq!(serving_node(addr).await.unwrap(), "sio-4");
    eprintln!(
        "nginx served from the new node {:?} after it started",
        following.elapsed()
    );
    drop(extra);

    // down -v leaves no container, network or volume of the project
    compose
        .run(&[
            "--profile",
            "demo",
            "down",
            "-v",
            "--remove-orphans",
            "-t",
            "5",
        ])
        .await
        .unwrap();
    assert_eq!(compose.leftovers().await.unwrap(), "");
}

/// A rolling restart of the three compose nodes (`restart`, 3 s apart; each drains) while
/// the demo job pushes numbered notifications through Redis to 9 official clients
/// (polling, websocket, upgrading) behind nginx: every client gets every notification once
/// and in order, and every reconnect is a recovered session (connection state recovery
/// is on in the compose file). The clients join their room once, on their first connect:
/// a reconnect that was not recovered would show as a gap.
#[tokio::test]
async fn compose_rolling_restart_under_traffic_loses_nothing() {
    let _one = ONE_CLUSTER.lock().await;
    build_image().await.unwrap();
    let mut compose = Compose::new().unwrap();
    compose.emit_every = "0.2";
    compose.run(&["up", "-d"]).await.unwrap();
    let addr = compose.addr();
    get_ok(addr, "/nginx-healthz").await.unwrap();
    get_ok(addr, "/readyz").await.unwrap();
    let mut child = sio_cluster_tests::clients::spawn_js_script(
        "recovery-many.mjs",
        &json!({
            "url": compose.url(), "room": "demo", "event": "notification",
            "clients": {"polling": 3, "websocket": 3, "upgrade": 3},
            "quietMs": 5000, "timeoutMs": 150000,
        }),
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let ready = read_line(&mut out).await.unwrap();
    assert_eq!(ready["phase"], "ready", "{ready}");
    compose
        .run(&["up", "-d", "--no-deps", "emitter"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for node in ["sio-1", "sio-2", "sio-3"] {
        compose.run(&["restart", "-t", "10", node]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    compose.run(&["stop", "-t", "2", "emitter"]).await.unwrap();
    let done = read_line(&mut out).await.unwrap();
    let _ = child.wait().await;
    assert_eq!(done["phase"], "done", "{done}");
    let clients = done["clients"].as_array().unwrap();
    let last = clients[0]["received"]
        .as_array()
        .and_then(|r| r.last())
        .and_then(Value::as_u64)
        .unwrap_or(0);
    assert!(last >= 20, "the job ran through the restarts: {done}");
    let (mut reconnects, mut recovered) = (0, 0);
    for c in clients {
        let received: Vec<u64> = c["received"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(
            received,
            (1..=last).collect::<Vec<_>>(),
            "lost, duplicated or reordered at a {} client: {c}",
            c["transport"]
        );
        let connects = c["connects"].as_array().unwrap();
        reconnects += connects.len() - 1;
        recovered += connects[1..]
            .iter()
            .filter(|c| c["recovered"] == true)
            .count();
    }
    eprintln!(
        "rolling restart: {last} notifications to {} clients, {reconnects} reconnects, {recovered} recovered",
        clients.len()
    );
    assert!(
        reconnects >= clients.len(),
        "every client was moved at least once: {done}"
    );
    assert_eq!(recovered, reconnects, "every reconnect recovered: {done}");
}

fn kubectl_installed() -> bool {
    std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The stand-in renderer (`tests/py/kustomize_lite.py`, used where kubectl is missing)
/// renders the same objects as `kubectl kustomize`, generated names aside.
#[tokio::test]
async fn kustomize_stand_in_matches_kubectl() {
    if !kubectl_installed() {
        eprintln!("kubectl not installed: nothing to compare the stand-in with");
        return;
    }
    let script = r#"
import sys, json, subprocess, yaml
def norm(text):
    docs = [d for d in yaml.safe_load_all(text) if d]
    cms = {d["metadata"]["name"]: d["metadata"]["name"].rsplit("-", 1)[0] for d in docs if d["kind"] == "ConfigMap"}
    def plain(d):
        text = json.dumps(d, sort_keys=True)
        for full, base in cms.items():
            text = text.replace(full, base)
        return text
    return sorted(plain(d) for d in docs)
for entry in sys.argv[1:]:
    a = subprocess.run(["kubectl", "kustomize", entry], check=True, capture_output=True, text=True).stdout
    b = subprocess.run([sys.executable, "tests/py/kustomize_lite.py", entry], check=True, capture_output=True, text=True).stdout
    if norm(a) != norm(b):
        sys.exit(f"{entry}: the stand-in renders differently from kubectl")
print("same")
"#;
    let mut cmd = tokio::process::Command::new("python3");
    cmd.current_dir(repo())
        .arg("-c")
        .arg(script)
        .arg("k8s")
        .arg("k8s/nginx");
    let out = run(cmd, "compare renders").await.unwrap();
    assert_eq!(out.trim(), "same");
}

/// Every manifest under `k8s/`, and both kustomizations as `kubectl kustomize` renders
/// them, validate against the Kubernetes 1.33 schemas (PyPI `kubernetes-validate`,
/// strict: an unknown field fails too); the renders hold what a deployment needs, and the
/// plain nginx's ConfigMap is `k8s/nginx/sio.conf` and `follow.sh` themselves. A broken
/// manifest fails the same check.
#[tokio::test]
async fn k8s_manifests_and_kustomizations_validate() {
    let k8s = repo().join("k8s");
    let mut files = Vec::new();
    let mut dirs = vec![k8s.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && path.file_name().is_some_and(|n| n != "kustomization.yaml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 6, "{files:?}");

    let out = TempDir::create("sio-k8s").unwrap();
    let mut renders = Vec::new();
    for (entry, name) in [
        (k8s.clone(), "ingress-nginx"),
        (k8s.join("nginx"), "plain-nginx"),
    ] {
        // kubectl when installed; otherwise the stand-in for exactly the kustomize
        // features k8s/ uses (it refuses any other), checked equal to kubectl's render
        // where both exist
        let text = if kubectl_installed() {
            let mut cmd = tokio::process::Command::new("kubectl");
            cmd.arg("kustomize").arg(&entry);
            run(cmd, "kubectl kustomize").await.unwrap()
        } else {
            eprintln!("kubectl not installed: rendering {name} with tests/py/kustomize_lite.py");
            let mut cmd = tokio::process::Command::new("python3");
            cmd.arg(repo().join("tests/py/kustomize_lite.py"))
                .arg(&entry);
            run(cmd, "kustomize_lite.py").await.unwrap()
        };
        let path = out.0.join(format!("{name}.yaml"));
        std::fs::write(&path, &text).unwrap();
        renders.push((name, text));
        files.push(path);
    }
    validate(&files).await.unwrap();

    let kinds = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("kind: "))
            .map(str::to_string)
            .collect()
    };
    for (name, text) in &renders {
        let kinds = kinds(text);
        for kind in [
            "Namespace",
            "ConfigMap",
            "Secret",
            "StatefulSet",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
        ] {
            assert!(kinds.iter().any(|k| k == kind), "{name}: no {kind}");
        }
        assert!(text.contains("namespace: sio"), "{name}");
        assert!(text.contains("path: /readyz") && text.contains("path: /healthz"));
        assert!(text.contains("fieldPath: status.podIP"), "{name}: POD_IP");
    }
    let (_, ingress) = &renders[0];
    assert!(kinds(ingress).iter().any(|k| k == "Ingress"));
    assert!(ingress.contains("nginx.ingress.kubernetes.io/upstream-hash-by: $remote_addr"));
    let (_, plain) = &renders[1];
    assert!(!kinds(plain).iter().any(|k| k == "Ingress"));
    // the ConfigMap carries sio.conf and follow.sh (which the nginx container runs so
    // that new pods get traffic) line for line (YAML blocks, indented 4)
    let in_configmap = |file: &str| {
        let text = std::fs::read_to_string(k8s.join("nginx").join(file)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                plain.contains(&format!("\n    {line}\n")),
                "{file}: not in the ConfigMap: {line:?}"
            );
        }
        text
    };
    let conf = in_configmap("sio.conf");
    assert!(conf.contains("ip_hash;") && conf.contains("server sio-nodes:3000"));
    let follow = in_configmap("follow.sh");
    assert!(follow.contains("nginx -s reload") && follow.contains("exec nginx"));
    assert!(plain.contains("- /etc/nginx/conf.d/follow.sh"), "{plain}");

    // the check fails on a broken manifest: a string where a number belongs
    let good = std::fs::read_to_string(k8s.join("base/sio-server.yaml")).unwrap();
    assert!(good.contains("  replicas: 3\n"));
    let broken = out.0.join("broken.yaml");
    std::fs::write(
        &broken,
        good.replace("  replicas: 3\n", "  replicas: three\n"),
    )
    .unwrap();
    let err = validate(&[broken]).await.unwrap_err().to_string();
    assert!(err.contains("spec.replicas"), "{err}");
}

/// `kubernetes-validate --strict` against Kubernetes 1.33 (pip: tests/py/requirements.txt).
async fn validate(files: &[PathBuf]) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args([
        "-m",
        "kubernetes_validate",
        "--strict",
        "--quiet",
        "-k",
        "1.33.0",
    ])
    .args(files);
    run(
        cmd,
        "kubernetes-validate (pip install -r tests/py/requirements.txt)",
    )
    .await
}

//! The `sio-server` binary as an operator runs it: exit codes, start-up log, and the
//! SIGTERM drain seen by a real socket.io client.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sio-server");

fn scenarios() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/js/scenarios.mjs")
}

/// Starts the binary with JSON logs and returns it, its address, and a channel of its
/// log lines.
fn start(envs: &[(&str, &str)]) -> (Child, String, mpsc::Receiver<serde_json::Value>) {
    let mut child = Command::new(BIN)
        .env("SIO_LISTEN", "127.0.0.1:0")
        .env("SIO_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sio-server");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let addr = wait_log(&rx, "listening")["addr"]
        .as_str()
        .expect("addr field")
        .to_string();
    (child, addr, rx)
}

fn wait_log(rx: &mpsc::Receiver<serde_json::Value>, message: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if v["message"] == message => return v,
            Ok(_) => continue,
            Err(e) => panic!("no {message:?} log line: {e}"),
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sio-server did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_config_exits_2_with_one_clear_line() {
    let cases = [
        (vec![("SIO_PING_INTERVAL_MS", "5")], "SIO_PING_INTERVAL_MS"),
        (vec![("SIO_CORS_ORIGINS", "nope")], "SIO_CORS_ORIGINS"),
        (
            vec![("SIO_JWT_SECRET", "a"), ("SIO_JWT_PUBLIC_KEY", "b")],
            "set only one of",
        ),
        (
            vec![("SIO_LISTEN", "not-an-address")],
            "invalid socket address",
        ),
    ];
    for (env, needle) in cases {
        let out = Command::new(BIN).envs(env.clone()).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("sio-server: invalid configuration: "));
    }
}

#[test]
fn startup_log_shows_config_with_secrets_masked() {
    let mut child = Command::new(BIN)
        .env("SIO_LISTEN", "127.0.0.1:0")
        .env("SIO_LOG_FORMAT", "json")
        .env("SIO_JWT_SECRET", "super-secret-value")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stderr.take().expect("stderr"))
        .read_line(&mut first)
        .expect("read");
    child.kill().ok();
    child.wait().ok();
    let v: serde_json::Value = serde_json::from_str(&first).expect("json log line");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("starting sio-server")
    );
    let config = v["config"].as_str().expect("config field");
    assert!(config.contains("auth=jwt HS256"), "{config}");
    assert!(config.contains("redis=(none: single node"), "{config}");
    assert!(!first.contains("super-secret-value"), "{first}");
}

/// SIGTERM: the node stops being ready, closes the transport (so the client's reason is
/// "transport close" and it will reconnect elsewhere, not "io server disconnect"), and
/// exits 0 well within the grace period.
#[test]
fn sigterm_drains_and_clients_would_reconnect() {
    let (mut child, addr, rx) = start(&[("SIO_SHUTDOWN_GRACE_MS", "10000")]);
    let opts = serde_json::json!({"scenario": "drain", "url": format!("http://{addr}"), "drainWaitMs": 20000});
    let mut client = Command::new("node")
        .arg(scenarios())
        .arg(opts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let mut out = BufReader::new(client.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    assert!(line.contains("\"ready\":true"), "{line}");

    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());

    line.clear();
    out.read_line(&mut line).expect("result line");
    let facts: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(facts["reason"], "transport close", "{facts}");
    assert_eq!(facts["active"], true, "the client keeps reconnecting");
    client.wait().ok();

    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    wait_log(&rx, "drained, stopped");
}

/// `sio-server healthcheck` (the container HEALTHCHECK): exit 0 while a node serves on
/// the port of `SIO_LISTEN` (an unspecified address is probed on loopback), 1 with one
/// line once nothing answers there.
#[test]
fn healthcheck_subcommand_probes_the_listen_port() {
    let (mut child, addr, _rx) = start(&[]);
    let port = addr.rsplit(':').next().expect("port");
    let out = Command::new(BIN)
        .arg("healthcheck")
        .env("SIO_LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .expect("run healthcheck");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = Command::new(BIN)
        .args(["healthcheck", &addr])
        .output()
        .expect("run healthcheck");
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    child.kill().expect("kill");
    child.wait().expect("wait");
    let out = Command::new(BIN)
        .arg("healthcheck")
        .env("SIO_LISTEN", &addr)
        .output()
        .expect("run healthcheck");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("sio-server healthcheck: "), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

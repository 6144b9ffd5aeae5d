//! The `sio-emit` binary as a shell script uses it: exit codes, and the exact message
//! it publishes on a real Redis (testcontainers).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use sio_protocol::BroadcastMessage;
use sio_protocol::rmpv::Value;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;

const BIN: &str = env!("CARGO_BIN_EXE_sio-emit");

fn run(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("SIO_REDIS_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_usage_bad_json_and_bad_url_exit_2() {
    let (code, err) = run(&["notice"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--redis"), "{err}");

    let (code, err) = run(&["--redis", "redis://127.0.0.1:1", "notice", "{bad"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("argument 1 is not JSON"), "{err}");

    let (code, err) = run(
        &["--redis", "redis://127.0.0.1:1", "notice", "-"],
        Some("[1, oops"),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("stdin"), "{err}");

    let (code, err) = run(&["--redis", "http://127.0.0.1:1", "notice"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid Redis URL"), "{err}");

    let (code, err) = run(&["--redis", "redis://127.0.0.1:1", "disconnect"], None);
    assert_ne!(code, Some(0), "{err}");
}

#[test]
fn unusable_redis_ca_file_exits_2() {
    let (code, err) = run(
        &[
            "--redis",
            "rediss://127.0.0.1:1",
            "--redis-ca-file",
            "/no/such/ca.pem",
            "notice",
        ],
        None,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("Redis CA file") && err.contains("/no/such/ca.pem"),
        "{err}"
    );
}

#[test]
fn unreachable_redis_exits_1_quickly() {
    let started = Instant::now();
    let (code, err) = run(&["--redis", "redis://127.0.0.1:1", "notice", "1"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("sio-emit: redis:"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn publishes_the_emitter_message_on_the_room_channel() {
    let redis = testcontainers::GenericImage::new("redis", "7.2")
        .with_exposed_port(6379.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .start()
        .await
        .unwrap();
    let url = format!(
        "redis://127.0.0.1:{}",
        redis.get_host_port_ipv4(6379.tcp()).await.unwrap()
    );
    let sub = fred::clients::SubscriberClient::new(
        fred::types::config::Config::from_url(&url).unwrap(),
        None,
        None,
        None,
    );
    sub.init().await.unwrap();
    let mut rx = sub.message_rx();
    sub.subscribe("socket.io#/#user:42#").await.unwrap();

    for (args, stdin, expected) in [
        (
            vec!["\"hi\"", "3"],
            None,
            vec![Value::from("hi"), Value::from(3)],
        ),
        (
            vec!["-"],
            Some("{\"a\":1}\n[2]"),
            vec![
                Value::Map(vec![(Value::from("a"), Value::from(1))]),
                Value::Array(vec![Value::from(2)]),
            ],
        ),
    ] {
        let mut full = vec![
            "--redis",
            url.as_str(),
            "--to",
            "user:42",
            "--except",
            "muted",
            "notice",
        ];
        full.extend(args);
        let (code, err) = tokio::task::spawn_blocking({
            let full: Vec<String> = full.iter().map(|s| s.to_string()).collect();
            move || {
                let refs: Vec<&str> = full.iter().map(String::as_str).collect();
                run(&refs, stdin)
            }
        })
        .await
        .unwrap();
        assert_eq!(code, Some(0), "{err}");
        let message = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        let decoded = BroadcastMessage::decode(message.value.as_bytes().unwrap()).unwrap();
        assert!(decoded.is_from_emitter());
        assert_eq!(decoded.packet.event_name(), Some("notice"));
        assert_eq!(decoded.packet.args(), expected.as_slice());
        assert_eq!(decoded.opts.rooms, ["user:42"]);
        assert_eq!(decoded.opts.except, ["muted"]);
    }
}

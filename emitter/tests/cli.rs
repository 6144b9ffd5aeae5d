//! The `sio-emit` binary as a shell script uses it: exit codes, and the exact message
//! it publishes on a real Redis (testcontainers).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fred::interfaces::{ClientLike, EventInterface, PubsubInterface, StreamsInterface};
use fred::types::Value as RedisValue;
use sio_emitter::{Emitter, Outgoing};
use sio_protocol::rmpv::Value;
use sio_protocol::{AdapterMode, BroadcastMessage, StreamsOptions};
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

/// A Redis 7.2 container and its URL.
async fn redis() -> (
    testcontainers::ContainerAsync<testcontainers::GenericImage>,
    String,
) {
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
    (redis, url)
}

/// Runs the binary with `args` off the async runtime.
async fn run_async(args: Vec<String>) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, None)
    })
    .await
    .unwrap()
}

/// The entries of `stream`, fields in order.
async fn entries(client: &fred::clients::Client, stream: &str) -> Vec<Vec<(String, String)>> {
    let reply: RedisValue = client.xrange(stream, "-", "+", None).await.unwrap();
    let text = |v: &RedisValue| v.as_string().unwrap();
    reply
        .into_array()
        .iter()
        .map(|entry| {
            let entry = entry.clone().into_array();
            let fields = entry[1].clone().into_array();
            fields
                .chunks(2)
                .map(|pair| (text(&pair[0]), text(&pair[1])))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn streams_mode_appends_the_entry_a_streams_node_would() {
    let (_redis, url) = redis().await;
    let client = fred::clients::Client::new(
        fred::types::config::Config::from_url(&url).unwrap(),
        None,
        None,
        None,
    );
    client.init().await.unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["--redis", url.as_str(), "--redis-mode", "streams"];
        args.extend(extra);
        args.into_iter().map(str::to_string).collect()
    };

    let (code, err) = run_async(args(&[
        "--to", "user:42", "--except", "muted", "notice", "\"hi\"", "3",
    ]))
    .await;
    assert_eq!(code, Some(0), "{err}");
    // What the library (checked against the Node package's own entries in golden.rs) makes.
    let Outgoing::Append {
        stream,
        max_len,
        fields,
    } = Emitter::new(client.clone())
        .with_mode(AdapterMode::Streams)
        .to("user:42")
        .except("muted")
        .emit_message("notice", ("hi", 3))
        .unwrap()
    else {
        panic!("not an entry");
    };
    assert_eq!((stream.as_str(), max_len), ("socket.io", 10_000));
    let fields: Vec<(String, String)> = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(entries(&client, "socket.io").await, [fields]);

    // Several streams: `/admin` hashes to stream 0 of 4.
    let (code, err) = run_async(args(&[
        "--stream-name",
        "app",
        "--stream-count",
        "4",
        "--stream-max-len",
        "100",
        "--nsp",
        "/admin",
        "ping",
    ]))
    .await;
    assert_eq!(code, Some(0), "{err}");
    let written = entries(&client, "app-0").await;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0][1], ("nsp".to_string(), "/admin".to_string()));
    let Outgoing::Append { stream, .. } = Emitter::new(client.clone())
        .with_mode(AdapterMode::Streams)
        .with_streams(StreamsOptions {
            stream_name: "app".into(),
            stream_count: 4,
            max_len: 100,
        })
        .of("/admin")
        .emit_message("ping", ())
        .unwrap()
    else {
        panic!("not an entry");
    };
    assert_eq!(stream, "app-0");

    let (code, err) = run_async(args(&["--stream-count", "x", "ping"])).await;
    assert_eq!(code, Some(2), "{err}");
}

#[tokio::test]
async fn publishes_the_emitter_message_on_the_room_channel() {
    let (_redis, url) = redis().await;
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

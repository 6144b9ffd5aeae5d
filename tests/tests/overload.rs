//! The publish queue to Redis under overload: bounded, in order, every refusal counted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use fred::interfaces::{ClientLike as _, EventInterface as _, PubsubInterface as _};
use sio_adapter_redis::{AdapterError, RedisAdapterConfig, RedisCluster};
use sio_cluster_tests::redis::TestRedis;

/// Redis stops answering (CLIENT PAUSE) while 20 messages are published through a queue
/// of 8: 8 are queued, 12 are refused at once with `Overloaded` and counted; when Redis
/// answers again the 8 arrive, in the order they were queued.
#[tokio::test]
async fn a_full_publish_queue_refuses_and_counts_and_keeps_order() {
    let redis = TestRedis::start().await.unwrap();
    let config = RedisAdapterConfig {
        publish_queue: 8,
        ..Default::default()
    };
    let cluster = RedisCluster::connect(&redis.url, config).await.unwrap();
    assert!(cluster.wait_ready(Duration::from_secs(10)).await);

    let watcher = fred::types::Builder::from_config(
        fred::types::config::Config::from_url(&redis.url).unwrap(),
    )
    .build_subscriber_client()
    .unwrap();
    watcher.init().await.unwrap();
    let mut rx = watcher.message_rx();
    watcher.psubscribe("socket.io-request#*").await.unwrap();

    redis
        .cli(&["CLIENT", "PAUSE", "1500", "ALL"])
        .await
        .unwrap();
    let mut results = Vec::new();
    for i in 0..20 {
        let res = cluster
            .server_side_emit("/", "tick", vec![serde_json::json!(i)])
            .await;
        results.push(res);
    }
    let queued = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(AdapterError::Overloaded)))
        .count();
    assert_eq!((queued, refused), (8, 12), "{results:?}");
    assert_eq!(cluster.stats().publish_dropped, 12);

    let mut seen = Vec::new();
    while seen.len() < 8 {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the queued messages arrive once Redis answers")
            .unwrap();
        let bytes = m.value.as_bytes().unwrap().to_vec();
        seen.push(String::from_utf8_lossy(&bytes).to_string());
    }
    for (i, text) in seen.iter().enumerate() {
        assert!(text.contains(&format!("[\"tick\",{i}]")), "{i}: {text}");
    }
    cluster.close(Duration::from_secs(1)).await;
}

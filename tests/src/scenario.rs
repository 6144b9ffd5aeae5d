//! The facts the client scenarios of `tests/js/scenarios.mjs` report, and the checks
//! several test files make on them.

use serde_json::{Value, json};

use crate::clients::js_scenario;

/// `base` with the fields of `extra` (both JSON objects) added or replaced.
pub fn merged(mut base: Value, extra: &Value) -> Value {
    if let (Some(o), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    base
}

/// An `op` request for a test peer: `{"kind": kind, ...extra}`.
pub fn op(kind: &str, extra: Value) -> Value {
    merged(json!({ "kind": kind }), &extra)
}

/// Runs the `steps` scenario (clients connect, peers run `op`s, logs are collected; see
/// `tests/js/scenarios.mjs`) and returns its facts.
pub async fn steps(steps: Value) -> anyhow::Result<Value> {
    js_scenario(json!({"scenario": "steps", "steps": steps})).await
}

/// The events named `event` in a client's event log (`[[event, args...], ...]`).
pub fn events(log: &Value, event: &str) -> Vec<Value> {
    log.as_array()
        .unwrap_or_else(|| panic!("not an event log: {log}"))
        .iter()
        .filter(|e| e[0] == event)
        .cloned()
        .collect()
}

/// How many `event`s the log of `client` in the facts `f` holds.
pub fn count(f: &Value, client: &str, event: &str) -> usize {
    assert!(f[client].is_array(), "no log for {client}: {f}");
    events(&f[client], event).len()
}

/// Runs the `fanout` scenario: a member and an outsider on each of `urls`, the members
/// join `room`, the first one publishes `messages` numbered events in a burst. `extra`
/// adds options (`transports`, `settleMs`); the wait is 20 s.
pub async fn fanout(
    urls: &[String],
    room: &str,
    messages: u64,
    extra: Value,
) -> anyhow::Result<Value> {
    let opts = json!({
        "scenario": "fanout", "urls": urls, "room": room, "messages": messages, "waitMs": 20000,
    });
    js_scenario(merged(opts, &extra)).await
}

/// Asserts the facts of a [`fanout`] of `n` messages: every one acked, every member got
/// each exactly once and in order, no outsider got any.
pub fn assert_fanout(f: &Value, n: u64) {
    assert_eq!(f["acked"], n, "{f}");
    assert_every_member_got(f, n);
    assert_eq!(f["outsiderGot"], 0, "{f}");
}

/// Asserts that every member of a [`fanout`] got each of the `n` messages exactly once
/// and in order.
pub fn assert_every_member_got(f: &Value, n: u64) {
    let members = f["perMember"]
        .as_array()
        .unwrap_or_else(|| panic!("no perMember: {f}"));
    for m in members {
        assert_eq!(
            *m,
            json!({"count": n, "unique": n, "inOrder": true, "missing": []}),
            "{f}"
        );
    }
}

/// Asserts the facts of `tests/js/browser-chat.mjs`: tab A and tab B saw both chat
/// messages in order, and the tab opened late got them as history.
pub fn assert_browser_chat(f: &Value) {
    assert_eq!(
        f["tabA"],
        json!(["hello from tab A", "hi back from tab B"]),
        "{f}"
    );
    assert_eq!(f["tabB"], f["tabA"], "{f}");
    assert_eq!(f["lateTab"], f["tabA"], "history for a late tab: {f}");
}

/// Asserts the facts of the `quiet` scenario: the polling-only, websocket-only and
/// upgrading clients ended on their transports, were never disconnected, got events 0..5
/// back in order, and the polling client saw a long-poll held longer than
/// `header_timeout_ms` (so the quiet time really waited across the node's header timeout).
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
        assert_eq!(c["disconnects"], json!([]), "{mode}: {c}");
        assert_eq!(c["connectErrors"], json!([]), "{mode}: {c}");
        assert_eq!(c["received"], json!([0, 1, 2, 3, 4]), "{mode}: {c}");
    }
    let longest = facts["polling"]["longestPollMs"].as_u64().unwrap_or(0);
    assert!(
        longest > header_timeout_ms,
        "no long-poll outlasted the header timeout ({header_timeout_ms} ms): {longest} ms"
    );
}

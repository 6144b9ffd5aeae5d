//! Witnesses: real clients kept busy while a test misbehaves, to show the node keeps
//! serving everyone else.

use std::process::Stdio;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::process::{Child, ChildStdin};

use crate::clients::{finish, node_command, read_line};

/// Real `socket.io-client`s (`witness` in `tests/js/scenarios.mjs`: one websocket, one
/// polling-only) publishing and receiving numbered events while a test misbehaves, to
/// show the node keeps serving others. Needs `--client-publish 'witness-*'` on the node.
pub struct Witness {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Witness {
    /// Connects the witnesses to `url` and waits until they are in their rooms.
    pub async fn start(url: &str) -> anyhow::Result<Self> {
        let opts = json!({"scenario": "witness", "url": url, "room": "witness", "waitMs": 20000});
        let mut child = node_command("scenarios.mjs", &opts)?
            .stdin(Stdio::piped())
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
            assert_eq!(w["disconnects"], json!([]), "{w}");
            assert_eq!(w["connectErrors"], json!([]), "{w}");
        }
        assert_eq!(f["witnesses"].as_array().map(Vec::len), Some(2), "{f}");
        f
    }
}

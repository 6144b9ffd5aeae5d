//! The demo chat: the page at `/` ([`render_index`]) and its `/chat` namespace
//! ([`register`]).
//!
//! A client emits `chat` with `{name, text}` (or just the text); every socket in `/chat`,
//! the sender included, receives `chat` with `{id, name, text, ts}`. A socket that
//! connects receives `history` first: the most recent messages, oldest first. The
//! history is kept in memory on a single node and in a capped Redis list in a cluster,
//! so every node serves the same history.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use fred::clients::Client;
use fred::interfaces::ListInterface;
use serde::{Deserialize, Serialize};
use sio_adapter_redis::RedisCluster;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::{ParserError, SocketIo};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::gateway::{Gateway, HandshakeAuth, Refusal, Reply, admit_event, drive_inline, reply};
use crate::metrics::Metrics;

/// The chat namespace.
pub const NAMESPACE: &str = "/chat";
/// The socket.io client version the demo page loads from the CDN.
pub const CLIENT_VERSION: &str = "4.8.3";
/// Subresource-integrity hash of `socket.io.min.js` at [`CLIENT_VERSION`] (the file on
/// the CDN is the npm package's `dist/socket.io.min.js`; a test checks the pair).
pub const CLIENT_SRI: &str =
    "sha384-kzavj5fiMwLKzzD1f8S7TeoVIEi7uKHvbTA3ueZkrzYq75pNQUiUi6Dy98Q3fxb0";

const INDEX_HTML: &str = include_str!("../assets/index.html");
/// Messages kept and sent to a newcomer.
pub const HISTORY_LEN: usize = 100;
/// Longest message text, in characters.
pub const MAX_TEXT: usize = 2000;
/// Longest display name, in characters.
pub const MAX_NAME: usize = 40;

/// One chat message as clients receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique per node and message: `<node>-<n>`.
    pub id: String,
    /// Display name (`anonymous` when none was given).
    pub name: String,
    /// Text.
    pub text: String,
    /// Milliseconds since the Unix epoch, stamped by the server.
    pub ts: u64,
}

/// What a client may send: an object, or the bare text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatInput {
    Full { name: Option<String>, text: String },
    Text(String),
}

/// The last [`HISTORY_LEN`] messages, in memory.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    messages: Mutex<VecDeque<ChatMessage>>,
}

impl MemoryHistory {
    /// Appends a message, dropping the oldest beyond [`HISTORY_LEN`].
    pub fn push(&self, msg: ChatMessage) {
        let mut m = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() == HISTORY_LEN {
            m.pop_front();
        }
        m.push_back(msg);
    }

    /// The kept messages, oldest first.
    pub fn recent(&self) -> Vec<ChatMessage> {
        let m = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().cloned().collect()
    }
}

enum HistoryOp {
    Push(ChatMessage),
    Read(oneshot::Sender<Vec<ChatMessage>>),
}

/// The last [`HISTORY_LEN`] messages in a Redis list (`LPUSH` + `LTRIM`), shared by every
/// node. One task applies pushes and reads in order, so a node never reads a history
/// older than the messages it has already broadcast.
#[derive(Debug, Clone)]
pub struct RedisHistory {
    tx: mpsc::Sender<HistoryOp>,
}

impl RedisHistory {
    /// Starts the history task on `client`, keeping the list at `key`.
    pub fn new(client: Client, key: String) -> Self {
        let (tx, mut rx) = mpsc::channel::<HistoryOp>(1024);
        tokio::spawn(async move {
            while let Some(op) = rx.recv().await {
                match op {
                    HistoryOp::Push(msg) => {
                        let Ok(json) = serde_json::to_string(&msg) else {
                            continue;
                        };
                        let pipe = client.pipeline();
                        let _: Result<(), _> = pipe.lpush(&key, json).await;
                        let _: Result<(), _> = pipe.ltrim(&key, 0, HISTORY_LEN as i64 - 1).await;
                        if let Err(e) = pipe.all::<fred::types::Value>().await {
                            warn!(error = %e, "cannot store a chat message in Redis");
                        }
                    }
                    HistoryOp::Read(reply) => {
                        let list: Vec<String> = client
                            .lrange(&key, 0, HISTORY_LEN as i64 - 1)
                            .await
                            .unwrap_or_else(|e| {
                                warn!(error = %e, "cannot read the chat history from Redis");
                                Vec::new()
                            });
                        let mut msgs: Vec<ChatMessage> = list
                            .iter()
                            .filter_map(|j| serde_json::from_str(j).ok())
                            .collect();
                        msgs.reverse(); // LPUSH keeps the newest first
                        let _ = reply.send(msgs);
                    }
                }
            }
        });
        Self { tx }
    }
}

/// Where the history lives.
#[derive(Debug)]
pub enum History {
    /// In this node's memory (single node).
    Memory(MemoryHistory),
    /// In Redis (cluster).
    Redis(RedisHistory),
}

impl History {
    /// A node's history: in memory on a single node; in a cluster, the Redis list
    /// `<prefix>:chat-history` that every node shares.
    pub fn for_node(cluster: Option<&RedisCluster>, redis_prefix: &str) -> Self {
        match cluster {
            None => History::Memory(MemoryHistory::default()),
            Some(cluster) => {
                let key = format!("{redis_prefix}:chat-history");
                History::Redis(RedisHistory::new(cluster.client().clone(), key))
            }
        }
    }

    fn push(&self, msg: ChatMessage) {
        match self {
            History::Memory(h) => h.push(msg),
            History::Redis(h) => {
                if h.tx.try_send(HistoryOp::Push(msg)).is_err() {
                    warn!("chat history queue full: message not stored");
                }
            }
        }
    }

    async fn recent(&self) -> Vec<ChatMessage> {
        match self {
            History::Memory(h) => h.recent(),
            History::Redis(h) => {
                let (tx, rx) = oneshot::channel();
                if h.tx.send(HistoryOp::Read(tx)).await.is_err() {
                    return Vec::new();
                }
                rx.await.unwrap_or_default()
            }
        }
    }
}

/// The chat service: history plus the message counter.
pub struct Chat {
    node_id: String,
    seq: AtomicU64,
    history: History,
    metrics: Metrics,
}

impl Chat {
    /// A chat keeping its history in `history`.
    pub fn new(node_id: String, history: History, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            node_id,
            seq: AtomicU64::new(0),
            history,
            metrics,
        })
    }

    /// Checks client input and stamps it into a message.
    fn accept(&self, input: ChatInput) -> Result<ChatMessage, String> {
        let (name, text) = match input {
            ChatInput::Full { name, text } => (name, text),
            ChatInput::Text(text) => (None, text),
        };
        let text = text.trim().to_string();
        if text.is_empty() || text.chars().count() > MAX_TEXT {
            return Err(format!("text must be 1 to {MAX_TEXT} characters"));
        }
        let name = name
            .map(|n| n.trim().chars().take(MAX_NAME).collect::<String>())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "anonymous".into());
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ok(ChatMessage {
            id: format!("{}-{n}", self.node_id),
            name,
            text,
            ts,
        })
    }

    /// The connect handler of `/chat`: registers the `chat` event, whose closure runs
    /// inline and only calls `Chat::post` and the gateway's reply path. Runs inside the
    /// connect middleware, before the CONNECT packet (see [`crate::gateway`]).
    pub fn on_connect<A: Adapter>(self: &Arc<Self>, socket: &SocketRef<A>) {
        let chat = self.clone();
        socket.on(
            "chat",
            move |s: SocketRef<A>,
                  io: SocketIo<A>,
                  TryData(input): TryData<ChatInput>,
                  ack: AckSender<A>| {
                let reply = reply(&chat.metrics, chat.post(&s, &io, input));
                if let Err(e) = ack.send(&reply) {
                    debug!(error = %e, "could not send chat ack");
                }
                async {}
            },
        );
    }

    /// `chat(input)`: stamps the message, keeps it in the history and broadcasts it to
    /// every socket in `/chat`. Every refusal counts as `bad_request`, one over the
    /// event rate limit included.
    fn post<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        io: &SocketIo<A>,
        input: Result<ChatInput, ParserError>,
    ) -> Result<Reply, Refusal> {
        self.metrics.event_received("chat");
        admit_event(socket, &self.metrics).map_err(|r| Refusal::bad_request(r.message))?;
        let input =
            input.map_err(|_| Refusal::bad_request("chat expects {name, text} or a string"))?;
        let msg = self.accept(input).map_err(Refusal::bad_request)?;
        self.history.push(msg.clone());
        self.metrics.event_emitted("chat");
        if let Some(ns) = io.of(NAMESPACE)
            && let Err(e) = drive_inline(async move { ns.emit("chat", &msg).await }, "chat")
        {
            debug!(error = %e, "chat message not sent to every node");
        }
        Ok(Reply::ok())
    }

    /// Sends the history to a socket that just connected. Called from the connect
    /// handler, after the CONNECT packet, so the client is ready to receive it.
    pub async fn send_history<A: Adapter>(&self, socket: &SocketRef<A>) {
        if let Err(e) = socket.emit("history", &self.history.recent().await) {
            debug!(sid = %socket.id, error = %e, "could not send chat history");
        }
    }
}

/// Registers the `/chat` namespace on `io`. Its connect middleware runs the gateway's
/// handshake ([`Gateway::on_connect`]) and, when that passed, registers the chat's
/// handlers and restores a recovered session ([`Gateway::recover`]), all before
/// socketioxide sends the CONNECT packet; its connect handler then sends the history, or,
/// to a recovered socket, the messages it missed ([`Gateway::connected`]). Resolves as the adapter's namespace registration does.
pub fn register<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    gateway: &Arc<Gateway>,
    chat: Arc<Chat>,
) -> A::InitRes {
    let gw = gateway.clone();
    let chat_mw = chat.clone();
    let middleware = move |s: SocketRef<A>,
                           TryData(auth): TryData<HandshakeAuth>,
                           TryData(raw): TryData<serde_json::Value>| {
        let res = gw.on_connect(s.clone(), auth.ok());
        if res.is_ok() {
            chat_mw.on_connect(&s);
        }
        let gw = gw.clone();
        async move {
            res?;
            gw.recover(&s, raw.ok().as_ref()).await;
            Ok::<(), crate::auth::AuthError>(())
        }
    };
    let gw = gateway.clone();
    let handler = move |s: SocketRef<A>| {
        let chat = chat.clone();
        // a recovered socket gets the messages it missed instead of the history again
        let recovered = gw.connected(s.clone());
        async move {
            if !recovered {
                chat.send_history(&s).await
            }
        }
    };
    io.ns(NAMESPACE, handler.with(middleware))
}

/// The demo page, loading the socket.io client from `/assets/socket.io.min.js` when the
/// node serves a local bundle (`local_client`), else from the CDN at
/// [`CLIENT_VERSION`], checked against [`CLIENT_SRI`].
pub fn render_index(local_client: bool) -> String {
    let script = if local_client {
        r#"<script src="/assets/socket.io.min.js"></script>"#.to_string()
    } else {
        format!(
            r#"<script src="https://cdn.socket.io/{CLIENT_VERSION}/socket.io.min.js" integrity="{CLIENT_SRI}" crossorigin="anonymous"></script>"#
        )
    };
    INDEX_HTML.replace("<!--SOCKET_IO_CLIENT-->", &script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Arc<Chat> {
        Chat::new(
            "n1".into(),
            History::Memory(MemoryHistory::default()),
            Metrics::new(),
        )
    }

    #[test]
    fn messages_are_stamped_and_trimmed() {
        let c = chat();
        let m = c
            .accept(ChatInput::Full {
                name: Some("  ann ".into()),
                text: " hi ".into(),
            })
            .unwrap();
        assert_eq!((m.name.as_str(), m.text.as_str()), ("ann", "hi"));
        assert_eq!(m.id, "n1-0");
        assert!(m.ts > 0);
        let m2 = c.accept(ChatInput::Text("yo".into())).unwrap();
        assert_eq!((m2.name.as_str(), m2.id.as_str()), ("anonymous", "n1-1"));
    }

    #[test]
    fn empty_and_oversized_text_is_refused() {
        let c = chat();
        assert!(c.accept(ChatInput::Text("   ".into())).is_err());
        assert!(c.accept(ChatInput::Text("x".repeat(MAX_TEXT + 1))).is_err());
        assert!(c.accept(ChatInput::Text("x".repeat(MAX_TEXT))).is_ok());
    }

    #[test]
    fn index_loads_the_pinned_client_from_the_cdn_with_sri_by_default() {
        let html = render_index(false);
        assert!(html.contains(&format!("cdn.socket.io/{CLIENT_VERSION}/socket.io.min.js")));
        assert!(html.contains(CLIENT_SRI));
        assert!(!html.contains("<!--SOCKET_IO_CLIENT-->"));
        let local = render_index(true);
        assert!(local.contains(r#"src="/assets/socket.io.min.js""#));
        assert!(!local.contains("cdn.socket.io"));
    }

    #[test]
    fn index_explains_a_missing_client_library_after_loading_it_either_way() {
        for local in [false, true] {
            let html = render_index(local);
            let library = html.find(".min.js").unwrap();
            let check = html.find(r#"li.id = "client-missing""#).unwrap();
            let connect = html.find(r#"io("/chat""#).unwrap();
            assert!(library < check && check < connect, "local={local}");
            assert!(html.contains("could not be loaded"));
            assert!(html.contains("SIO_CLIENT_JS"));
        }
    }

    #[test]
    fn history_keeps_the_last_hundred_oldest_first() {
        let h = MemoryHistory::default();
        for i in 0..(HISTORY_LEN + 5) {
            h.push(ChatMessage {
                id: i.to_string(),
                name: "a".into(),
                text: "t".into(),
                ts: 0,
            });
        }
        let r = h.recent();
        assert_eq!(r.len(), HISTORY_LEN);
        assert_eq!(r[0].id, "5");
        assert_eq!(r[HISTORY_LEN - 1].id, (HISTORY_LEN + 4).to_string());
    }
}

//! A minimal Engine.IO v4 / Socket.IO v5 client: websocket sessions, and long-polling
//! handshakes upgraded to websocket, on the default namespace `/`.
//!
//! Only what the benchmark needs: open, connect, events with acks, heartbeats (the server
//! pings with `2`, the client answers `3`).

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A websocket session on `/`.
pub type Ws = WebSocketStream<TcpStream>;

/// tungstenite zero-fills its read buffer up to `read_buffer_size` before every read
/// (128 KiB by default): with 1,000 sockets each reading one small frame at a time that
/// memset was 60 % of this client's CPU and made the client, not the servers, the
/// bottleneck of the latency scenario. Frames here are small; 8 KiB still takes dozens
/// of them per read.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

async fn ws_handshake(url: String, stream: TcpStream) -> anyhow::Result<Ws> {
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config()))
        .await
        .context("websocket handshake")?;
    Ok(ws)
}

/// Where a server (or balancer) listens.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` as written in the URL.
    pub authority: String,
    /// The resolved address.
    pub addr: SocketAddr,
}

impl Target {
    /// Parses `http://host:port` (or `host:port`).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .unwrap_or(url);
        let authority = rest.split('/').next().unwrap_or(rest).to_string();
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&authority)
            .with_context(|| format!("bad address {url}"))?
            .next()
            .with_context(|| format!("no address for {url}"))?;
        Ok(Self { authority, addr })
    }
}

async fn tcp(target: &Target, source: Option<IpAddr>) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .with_context(|| format!("connect {}", target.authority))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The next text frame, answering heartbeats on the way.
pub async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            None => bail!("connection closed"),
            Some(Err(e)) => bail!("websocket error: {e}"),
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_string()),
            Some(Ok(Message::Close(_))) => bail!("connection closed by the server"),
            Some(Ok(_)) => {}
        }
    }
}

/// Opens a websocket-only session and connects to `/`.
pub async fn connect_ws(target: &Target, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        target.authority
    );
    let mut ws = ws_handshake(url, tcp(target, source).await?).await?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with("0{") {
        bail!("expected an open packet, got {open:.80}");
    }
    ws.send(Message::text("40")).await?;
    expect_connected(&mut ws).await?;
    Ok(ws)
}

async fn expect_connected(ws: &mut Ws) -> anyhow::Result<()> {
    loop {
        let t = next_text(ws).await?;
        if t.starts_with("40") {
            return Ok(());
        }
        if t.starts_with("44") {
            bail!("connect refused: {t:.120}");
        }
    }
}

/// Emits `event` with one JSON argument and waits for its ack; fails unless the ack is
/// `{ok:true}`.
pub async fn call(
    ws: &mut Ws,
    id: u64,
    event: &str,
    arg: &serde_json::Value,
) -> anyhow::Result<()> {
    let packet = format!("42{id}{}", serde_json::json!([event, arg]));
    ws.send(Message::text(packet)).await?;
    let prefix = format!("43{id}");
    loop {
        let t = next_text(ws).await?;
        if let Some(rest) = t.strip_prefix(&prefix) {
            let reply: serde_json::Value =
                serde_json::from_str(rest).with_context(|| format!("bad ack {t:.80}"))?;
            if reply[0]["ok"] != serde_json::Value::Bool(true) {
                bail!("{event} refused: {rest:.120}");
            }
            return Ok(());
        }
    }
}

/// Joins `room` (the gateway's `join` event).
pub async fn join(ws: &mut Ws, room: &str) -> anyhow::Result<()> {
    call(ws, 0, "join", &serde_json::Value::String(room.into())).await
}

async fn http(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    target: &Target,
    method: &str,
    query: &str,
    body: &'static str,
) -> anyhow::Result<String> {
    let req = Request::builder()
        .method(method)
        .uri(format!("/socket.io/?EIO=4&transport=polling{query}"))
        .header("host", &target.authority)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))?;
    sender.ready().await.context("polling connection")?;
    let resp = sender.send_request(req).await.context("polling request")?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        bail!("{method} {query}: HTTP {status}: {text:.120}");
    }
    Ok(text)
}

/// A long-polling handshake and connect to `/`, then (when `upgrade`) the websocket
/// upgrade with its probe, then a `join` over the upgraded transport. Every request goes
/// to `target` on its own connection bound to `source` (a balancer sees the same client
/// address for the whole session).
pub async fn polling_session(
    target: &Target,
    source: Option<IpAddr>,
    upgrade: bool,
) -> anyhow::Result<Option<Ws>> {
    let io = TokioIo::new(tcp(target, source).await?);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let open = http(&mut sender, target, "GET", "", "").await?;
    let sid = open
        .strip_prefix("0")
        .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
        .and_then(|v| v["sid"].as_str().map(str::to_string))
        .with_context(|| format!("bad open packet {open:.80}"))?;
    let q = format!("&sid={sid}");
    let ok = http(&mut sender, target, "POST", &q, "40").await?;
    if ok != "ok" {
        bail!("POST 40 answered {ok:.80}");
    }
    // A polling payload holds packets separated by \x1e (a ping may come first).
    let mut connected = false;
    for _ in 0..3 {
        let payload = http(&mut sender, target, "GET", &q, "").await?;
        if payload.split('\x1e').any(|p| p.starts_with("40")) {
            connected = true;
            break;
        }
        if payload.split('\x1e').any(|p| p.starts_with("44")) {
            bail!("connect refused: {payload:.120}");
        }
    }
    if !connected {
        bail!("no connect packet after three polls");
    }
    if !upgrade {
        drop(sender);
        driver.abort();
        return Ok(None);
    }
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket&sid={sid}",
        target.authority
    );
    let mut ws = ws_handshake(url, tcp(target, source).await?)
        .await
        .context("websocket upgrade")?;
    ws.send(Message::text("2probe")).await?;
    let probe = next_text(&mut ws).await?;
    if probe != "3probe" {
        bail!("expected 3probe, got {probe:.80}");
    }
    ws.send(Message::text("5")).await?;
    drop(sender);
    driver.abort();
    join(&mut ws, "storm").await?;
    Ok(Some(ws))
}

//! Plain HTTP and websocket clients on loopback, enough for health, metrics, Engine.IO
//! sessions and forwarding checks; no client library beyond tokio-tungstenite.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Node's answer to a request for a session nobody owns (400, Engine.IO code 1).
pub const SESSION_UNKNOWN: &str = r#"{"code":1,"message":"Session ID unknown"}"#;

/// A minimal HTTP/1.1 GET on loopback: `(status, body)`. Enough for health, readiness
/// and metrics; no client library needed.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    http_request(addr, "GET", path, b"").await
}

/// A minimal HTTP/1.1 request with a body on loopback: `(status, body)` ([`raw_http`]
/// without extra headers).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> anyhow::Result<(u16, String)> {
    let (status, _, body) = raw_http(addr, method, path, &[], body).await?;
    Ok((status, body))
}

/// A raw HTTP/1.1 request with extra `headers` on loopback: `(status, head, body)`; the
/// head is the status line and headers as text. A `101` answer is returned as soon as
/// its head arrives.
pub async fn raw_http(
    addr: SocketAddr,
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

/// The sum of metric `name` (all label sets, or the one label set `name` spells out) in a
/// Prometheus `/metrics` text.
pub fn metric_in(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(name).filter(|r| r.starts_with([' ', '{'])))
        .filter_map(|r| r.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// [`metric_in`] of the node at `addr`'s `/metrics`.
pub async fn metric_at(addr: SocketAddr, name: &str) -> anyhow::Result<f64> {
    let (_, text) = http_get(addr, "/metrics").await?;
    Ok(metric_in(&text, name))
}

/// Opens an Engine.IO v4 polling session on `addr` (request `headers` added) and returns
/// its sid, read from the open packet as the forwarding layer reads it.
pub async fn polling_sid(addr: SocketAddr, headers: &[(&str, &str)]) -> anyhow::Result<String> {
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

/// Posts `40` (connect to `/`) for polling session `sid` to the node at `via` and asserts
/// it is answered `200 ok`: served by `via` when it owns the session, else forwarded to
/// the owner `via` finds in the session registry.
pub async fn assert_session_served(via: SocketAddr, sid: &str) {
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let answer = http_request(via, "POST", &path, b"40").await;
    let (status, body) = answer.unwrap_or_else(|e| panic!("POST 40 of {sid} via {via}: {e:#}"));
    assert_eq!(
        (status, body.as_str()),
        (200, "ok"),
        "POST 40 of session {sid} via {via}"
    );
}

// ---- websockets --------------------------------------------------------------------

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

/// Sends the gateway's `join` for `room` on a connected Socket.IO websocket (ack id 0)
/// and asserts it is acked `{ok: true}`.
pub async fn ws_join(ws: &mut Ws, room: &str) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::text(format!(r#"420["join","{room}"]"#)))
        .await
        .unwrap_or_else(|e| panic!("send join {room}: {e}"));
    assert_eq!(
        ws_next_text(ws).await.as_deref(),
        Some(r#"430[{"ok":true}]"#),
        "join {room}"
    );
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

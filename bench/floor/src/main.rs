//! `sio-floor`: a reference line for the fan-out benchmark, the least work a Socket.IO
//! server can do for it. Not a server anyone should run.
//!
//! One process listens on two ports (the two "nodes"), so a room spans both without an
//! adapter or a Redis hop. It speaks just enough Engine.IO v4 / Socket.IO v5 for
//! `sio-load`: websocket transport only, the default namespace, the gateway's `join` and
//! `publish` events with their acks; no heartbeats, no limits, no checks. A broadcast is
//! encoded once into a websocket frame and written with one non-blocking `send` per
//! member, straight from the publishing socket's task, the members split over the
//! runtime's worker threads: no per-socket queue, no task wake-up per delivery.
//!
//! What is left per delivery is what the kernel's loopback TCP path and the client cost,
//! so on a given machine no real stack can beat its fan-out latency by much; bench/NOTES.md
//! compares it with the others.
//!
//! ```text
//! sio-floor PORT1 PORT2    # prints {"ports":[P1,P2]} once listening on 127.0.0.1 (0: any)
//! bench/run.sh --stacks "ours node floor" --scenarios "fanout-50 fanout-max idle-2k"
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// One websocket connection: the socket, and a lock that keeps two writers (a broadcast
/// and the connection's own acks) from interleaving the bytes of their frames.
struct Conn {
    tcp: TcpStream,
    writing: tokio::sync::Mutex<()>,
}

impl Conn {
    /// Writes all of `bytes`: `send` directly, waiting for room only when the socket's
    /// buffer is full.
    async fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let _guard = self.writing.lock().await;
        let mut at = 0;
        while at < bytes.len() {
            match self.tcp.try_write(&bytes[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.tcp.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Room name → members.
type Rooms = Arc<Mutex<HashMap<String, Vec<Arc<Conn>>>>>;

/// An unmasked text frame (server to client).
fn text_frame(payload: &str) -> Vec<u8> {
    let n = payload.len();
    let mut f = Vec::with_capacity(n + 10);
    f.push(0x81);
    if n < 126 {
        f.push(n as u8);
    } else if let Ok(n16) = u16::try_from(n) {
        f.push(126);
        f.extend_from_slice(&n16.to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload.as_bytes());
    f
}

/// Takes one whole client frame off the front of `buf`: `(opcode, unmasked payload)`.
fn next_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let mut len = usize::from(b1 & 0x7f);
    let mut at = 2;
    if len == 126 {
        len = usize::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?));
        at = 4;
    } else if len == 127 {
        len = usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?;
        at = 10;
    }
    let mask: Option<[u8; 4]> = if b1 & 0x80 != 0 {
        let m = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(m) = mask {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= m[i % 4]);
    }
    buf.drain(..at + len);
    Some((b0 & 0x0f, payload))
}

/// Reads the HTTP request head and answers it: `101` for a websocket upgrade (returns
/// true), a plain `200` otherwise (the harness's readiness probe; returns false).
async fn handshake(tcp: &mut TcpStream) -> anyhow::Result<bool> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 || head.len() > 16 * 1024 {
            bail!("no request head");
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let key = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    });
    let Some(key) = key else {
        let body = "sio-floor: websocket only";
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(answer.as_bytes()).await?;
        return Ok(false);
    };
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    tcp.write_all(answer.as_bytes()).await?;
    Ok(true)
}

/// Sends `frame` to every member, the members split over the runtime's worker threads.
async fn broadcast(members: Vec<Arc<Conn>>, frame: Vec<u8>) {
    let workers = tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .max(1);
    let frame = Arc::new(frame);
    let chunk = members.len().div_ceil(workers).max(1);
    let mut parts = members.chunks(chunk).map(<[Arc<Conn>]>::to_vec);
    let mine = parts.next().unwrap_or_default();
    let others: Vec<_> = parts
        .map(|part| {
            let frame = frame.clone();
            tokio::spawn(async move {
                for m in part {
                    let _ = m.write(&frame).await;
                }
            })
        })
        .collect();
    for m in mine {
        let _ = m.write(&frame).await;
    }
    for task in others {
        let _ = task.await;
    }
}

/// Handles one Socket.IO event packet `42[id][name, arg]`.
async fn on_event(conn: &Arc<Conn>, rooms: &Rooms, packet: &str) -> anyhow::Result<()> {
    let body = packet.trim_start_matches(|c: char| c.is_ascii_digit());
    let id = &packet[..packet.len() - body.len()];
    let args: Vec<Value> = serde_json::from_str(body).context("event payload")?;
    match (args.first().and_then(Value::as_str), args.get(1)) {
        (Some("join"), Some(Value::String(room))) => {
            let mut rooms = rooms.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            rooms.entry(room.clone()).or_default().push(conn.clone());
        }
        (Some("publish"), Some(req)) => {
            let room = req["room"].as_str().unwrap_or_default();
            let event = json!([req["event"], req["data"]]);
            let frame = text_frame(&format!("42{event}"));
            let members = {
                let rooms = rooms.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                rooms.get(room).cloned().unwrap_or_default()
            };
            // awaited: the next publish of this socket goes out after this one everywhere
            broadcast(members, frame).await;
        }
        _ => {}
    }
    if !id.is_empty() {
        conn.write(&text_frame(&format!("43{id}[{{\"ok\":true}}]")))
            .await?;
    }
    Ok(())
}

/// One client connection, from its HTTP request to its close.
async fn serve(mut tcp: TcpStream, rooms: Rooms) -> anyhow::Result<()> {
    tcp.set_nodelay(true)?;
    if !handshake(&mut tcp).await? {
        return Ok(());
    }
    let conn = Arc::new(Conn {
        tcp,
        writing: tokio::sync::Mutex::new(()),
    });
    let open = r#"0{"sid":"floor","upgrades":[],"pingInterval":25000,"pingTimeout":60000,"maxPayload":1000000}"#;
    conn.write(&text_frame(open)).await?;
    let result = read_loop(&conn, &rooms).await;
    if let Ok(mut rooms) = rooms.lock() {
        rooms
            .values_mut()
            .for_each(|members| members.retain(|m| !Arc::ptr_eq(m, &conn)));
    }
    result
}

async fn read_loop(conn: &Arc<Conn>, rooms: &Rooms) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        conn.tcp.readable().await?;
        match conn.tcp.try_read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
        while let Some((opcode, payload)) = next_frame(&mut buf) {
            match opcode {
                0x8 => return Ok(()),
                0x1 => {
                    let text = String::from_utf8_lossy(&payload);
                    if text == "40" {
                        conn.write(&text_frame(r#"40{"sid":"floor"}"#)).await?;
                    } else if let Some(packet) = text.strip_prefix("42") {
                        on_event(conn, rooms, packet).await?;
                    }
                }
                _ => {}
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rooms: Rooms = Arc::default();
    let mut ports = Vec::new();
    for arg in std::env::args().skip(1).take(2) {
        let port: u16 = arg.parse().with_context(|| format!("bad port {arg}"))?;
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        ports.push(listener.local_addr()?.port());
        let rooms = rooms.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, rooms.clone()));
            }
        });
    }
    if ports.len() != 2 {
        bail!("usage: sio-floor PORT1 PORT2");
    }
    println!("{}", json!({ "ports": ports }));
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_client_side_parser() {
        for n in [0, 5, 125, 126, 300, 70_000] {
            let text = "x".repeat(n);
            let mut buf = text_frame(&text);
            buf.extend_from_slice(b"\x81"); // the start of the next frame stays put
            let (opcode, payload) = next_frame(&mut buf).expect("a whole frame");
            assert_eq!((opcode, payload.len()), (1, n));
            assert_eq!(buf, b"\x81");
        }
        // a masked client frame "40", and a frame cut short
        let mut masked = vec![0x81, 0x82, 1, 2, 3, 4, b'4' ^ 1, b'0' ^ 2];
        assert_eq!(next_frame(&mut masked), Some((1, b"40".to_vec())));
        let mut short = vec![0x81, 0x85, 1, 2];
        assert_eq!(next_frame(&mut short), None);
        assert_eq!(short.len(), 4);
    }
}

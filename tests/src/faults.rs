//! Fault injection for the reliability tests: a TCP proxy the test controls (put it
//! between a node and Redis to cut or black-hole the node's link) and a `/readyz`
//! watcher. Process figures (memory, descriptors) are [`crate::process::ProcFigures`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What a [`TcpProxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Bytes flow both ways.
    Pass = 0,
    /// Every connection is closed and new ones are closed at once (a dead peer: the
    /// client sees resets and refused reconnects).
    Down = 1,
    /// Connections stay open but nothing flows (a partition: the client sees silence).
    Blackhole = 2,
}

/// A TCP proxy on `127.0.0.1` in front of an upstream address, with a switch: pass,
/// down or black-hole. Stops on drop.
pub struct TcpProxy {
    /// The address clients connect to.
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    state: Arc<AtomicU8>,
    /// Cancelled to end every open connection; replaced by a fresh token each time.
    conns: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl TcpProxy {
    /// Starts a proxy to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let proxy = Self {
            addr,
            upstream: Arc::new(Mutex::new(upstream)),
            state: Arc::new(AtomicU8::new(LinkState::Pass as u8)),
            conns: Arc::new(Mutex::new(CancellationToken::new())),
            stop: CancellationToken::new(),
        };
        let (upstream, state, conns, stop) = (
            proxy.upstream.clone(),
            proxy.state.clone(),
            proxy.conns.clone(),
            proxy.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    () = stop.cancelled() => return,
                    res = listener.accept() => match res {
                        Ok(c) => c,
                        Err(_) => continue,
                    },
                };
                let to = *upstream.lock().unwrap_or_else(|e| e.into_inner());
                let token = conns.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let state = state.clone();
                tokio::spawn(relay(client, to, state, token));
            }
        });
        Ok(proxy)
    }

    /// A `redis://` URL through this proxy.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.addr.port())
    }

    /// Where new connections go from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = upstream;
    }

    /// Switches the link. Going to [`LinkState::Down`] closes every open connection; leaving
    /// [`LinkState::Blackhole`] closes the connections that were silenced (bytes were
    /// swallowed, their streams are not whole any more).
    pub fn set(&self, to: LinkState) {
        let from = self.state.swap(to as u8, Ordering::SeqCst);
        if to == LinkState::Down
            || (from == LinkState::Blackhole as u8 && to != LinkState::Blackhole)
        {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            conns.cancel();
            *conns = CancellationToken::new();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancel();
    }
}

fn state_of(state: &AtomicU8) -> LinkState {
    match state.load(Ordering::SeqCst) {
        0 => LinkState::Pass,
        1 => LinkState::Down,
        _ => LinkState::Blackhole,
    }
}

async fn relay(
    mut client: TcpStream,
    to: SocketAddr,
    state: Arc<AtomicU8>,
    token: CancellationToken,
) {
    match state_of(&state) {
        LinkState::Down => return, // dropped: closed at once
        LinkState::Blackhole => {
            // accepted, never answered
            token.cancelled().await;
            return;
        }
        LinkState::Pass => {}
    }
    let Ok(server) = TcpStream::connect(to).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.into_split();
    let up = pump(&mut cr, &mut sw, &state, &token);
    let down = pump(&mut sr, &mut cw, &state, &token);
    tokio::select! {
        _ = up => {}
        _ = down => {}
        () = token.cancelled() => {}
    }
    let _ = cw.shutdown().await;
}

/// Copies `from` to `to` while the link passes; swallows bytes while it is black-holed.
async fn pump<R, W>(from: &mut R, to: &mut W, state: &AtomicU8, token: &CancellationToken)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt as _;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            () = token.cancelled() => return,
            res = from.read(&mut buf) => match res {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        match state_of(state) {
            LinkState::Pass => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            LinkState::Blackhole => {}
            LinkState::Down => return,
        }
    }
}

/// Milliseconds since the Unix epoch (to line test events up with a JS scenario's
/// `Date.now()` stamps).
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Watches a node's `/readyz` every 50 ms and keeps the transitions: `(epoch ms,
/// status)`, status 0 when the request failed. Stops on drop.
pub struct ReadyWatch {
    seen: Arc<Mutex<Vec<(u64, u16)>>>,
    stop: CancellationToken,
}

impl ReadyWatch {
    /// Starts watching `addr`.
    pub fn start(addr: SocketAddr) -> Self {
        let seen: Arc<Mutex<Vec<(u64, u16)>>> = Arc::default();
        let stop = CancellationToken::new();
        let (kept, token) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !token.is_cancelled() {
                let status = match tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    crate::http::http_get(addr, "/readyz"),
                )
                .await
                {
                    Ok(Ok((s, _))) => s,
                    _ => 0,
                };
                {
                    let mut seen = kept.lock().unwrap_or_else(|e| e.into_inner());
                    if seen.last().is_none_or(|(_, s)| *s != status) {
                        seen.push((epoch_ms(), status));
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        Self { seen, stop }
    }

    /// The transitions so far.
    pub fn transitions(&self) -> Vec<(u64, u16)> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current status.
    pub fn current(&self) -> u16 {
        self.transitions().last().map_or(0, |(_, s)| *s)
    }

    /// Waits (bounded) until the status is `status`; returns when it was first seen.
    pub async fn wait_for(&self, status: u16, within: std::time::Duration) -> anyhow::Result<u64> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some((at, s)) = self.transitions().last().copied()
                && s == status
            {
                return Ok(at);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "readyz never answered {status} within {within:?}: {:?}",
                    self.transitions()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

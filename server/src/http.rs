//! The node's HTTP/1 server: the accept loop, per-connection timeouts and the graceful
//! stop of the HTTP side.
//!
//! `axum::serve` has no settings, so a client could hold a connection forever by sending
//! nothing, by dribbling a request head byte by byte (slowloris), or by idling on a
//! keep-alive connection. Here each connection is served by hyper's HTTP/1 connection
//! builder with its header read timeout on (hyper's [`TokioTimer`]):
//!
//! - hyper starts the clock when the connection opens and again when a response ends
//!   (the connection goes idle), and stops it once a complete request head has arrived.
//!   A connection that delivers no complete head within [`HttpSettings::header_timeout`]
//!   is closed. That one timeout is therefore both the header timeout and the keep-alive
//!   idle timeout.
//! - A request being served is not idle: a long-poll `GET` held open until there is data
//!   (up to the ping interval) runs with the clock stopped, however long it lasts.
//! - A websocket upgrade leaves HTTP: after the `101` the connection belongs to the
//!   websocket, whose liveness is the Engine.IO ping/pong.
//!
//! Once the head is in, hyper times nothing, so a client could also send a polling `POST`
//! for a live session announcing a large body and then dribble it. A request that has a
//! body must therefore be received and answered within [`HttpSettings::body_timeout`]
//! (Node's `requestTimeout` idea); past it the client gets `408` and the connection is
//! closed. Requests without a body (long-polls, upgrades, probes) are not timed.
//!
//! With [`HttpSettings::max_connections`] set, each connection holds a slot from accept
//! until its socket closes (a websocket keeps the slot of the connection it upgraded).
//! With every slot taken the node stops accepting, logs it once, and new connections
//! wait in the listen backlog until one closes.
//!
//! With connection state recovery on, `serve` gets the node's [`PidTable`] and wraps every
//! accepted stream in [`ReplyRewriter`], which adds the pid to the Socket.IO CONNECT
//! replies written on websockets (see [`crate::connect_reply`]); without it streams are
//! served as they are.
//!
//! Stopping works as `axum::serve`'s graceful shutdown did: accept no more connections,
//! ask every open connection to finish its request in flight and close, and return once
//! all have closed. A connection stalled mid-head is closed by the header timeout, so it
//! holds the drain up for that long at most, not for the whole grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::connect_reply::PidTable;
use crate::connect_reply::websocket::ReplyRewriter;
use crate::metrics::Metrics;

/// How connections are timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// A connection must deliver a complete request head within this long of opening, or
    /// of the end of its previous response (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// A request with a body must be received and answered within this long.
    pub body_timeout: Duration,
    /// Most connections open at once (websockets included); `None`: no cap.
    pub max_connections: Option<usize>,
}

/// Serves `router` on `listener` until `stop` is cancelled, then closes every connection
/// once its request in flight is answered and returns when all are closed. With
/// `recovery_pids`, websocket CONNECT replies get their pids from it (module doc).
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    metrics: Metrics,
    stop: CancellationToken,
    recovery_pids: Option<PidTable>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    let connections = TaskTracker::new();
    let slots = settings
        .max_connections
        .map(|max| (Arc::new(Semaphore::new(max)), max));
    loop {
        let Some((stream, peer)) = next_connection(&mut listener, &slots, &stop, &metrics).await
        else {
            break;
        };
        let conn = Connection {
            peer,
            router: &router,
            builder: &builder,
            body_timeout: settings.body_timeout,
            metrics: &metrics,
            stop: &stop,
            connections: &connections,
        };
        match &recovery_pids {
            None => conn.spawn(stream),
            Some(pids) => conn.spawn(ReplyRewriter::new(stream, pids.clone())),
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// What serving one accepted connection takes.
struct Connection<'a> {
    peer: SocketAddr,
    router: &'a Router,
    builder: &'a hyper::server::conn::http1::Builder,
    body_timeout: Duration,
    metrics: &'a Metrics,
    stop: &'a CancellationToken,
    connections: &'a TaskTracker,
}

impl Connection<'_> {
    /// Serves `stream` in a task of `connections` until it closes (or, once `stop` is
    /// cancelled, its request in flight is answered).
    fn spawn<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection { peer, .. } = self;
        let router = self.router.clone();
        let body_timeout = self.body_timeout;
        let body_metrics = self.metrics.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            handle(&router, req, peer, body_timeout, &body_metrics)
        });
        let conn = self
            .builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = self.stop.clone();
        let metrics = self.metrics.clone();
        self.connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let res = tokio::select! {
                res = conn.as_mut() => res,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = res {
                connection_error(&e, peer, &metrics);
            }
        });
    }
}

/// The next connection, with its slot when connections are capped (`slots`: the
/// semaphore and the cap); `None` once `stop` is cancelled.
async fn next_connection(
    listener: &mut TcpListener,
    slots: &Option<(Arc<Semaphore>, usize)>,
    stop: &CancellationToken,
    metrics: &Metrics,
) -> Option<(Slotted, SocketAddr)> {
    let slot = match slots {
        None => None,
        Some((slots, max)) => tokio::select! {
            slot = take_slot(slots, *max, metrics) => Some(slot?),
            () = stop.cancelled() => return None,
        },
    };
    let (stream, peer) = tokio::select! {
        // axum's accept: logs and backs off on errors such as EMFILE.
        conn = axum::serve::Listener::accept(listener) => conn,
        () = stop.cancelled() => return None,
    };
    // Small frames leave at once (as Node's HTTP server does by default): with Nagle's
    // algorithm a frame written while an earlier one is unacknowledged waits for the
    // peer's delayed ACK, up to 40 ms on Linux.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let stream = Slotted {
        stream,
        _slot: slot,
    };
    Some((stream, peer))
}

/// One request of a connection from `peer`, to `router`: a handshake's head detached
/// from the read buffer, the peer's address in its extensions, and, when it has a body,
/// answered `408` unless received and answered within `body_timeout`.
fn handle(
    router: &Router,
    mut req: hyper::Request<Incoming>,
    peer: SocketAddr,
    body_timeout: Duration,
    metrics: &Metrics,
) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + use<> {
    // A new session keeps its handshake's head (and axum's `OriginalUri` copy of
    // the URI): detach it from hyper's read buffer first, see `crate::head`.
    if crate::engine::EngineQuery::parse(req.uri().query()).is_handshake() {
        req = crate::head::detached(req);
    }
    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
    let has_body = !hyper::body::Body::is_end_stream(req.body());
    let response = tower::ServiceExt::oneshot(router.clone(), req);
    let metrics = metrics.clone();
    async move {
        if !has_body {
            return response.await;
        }
        match tokio::time::timeout(body_timeout, response).await {
            Ok(res) => res,
            Err(_) => {
                metrics.http_timeout("body");
                debug!(%peer, "closed: request body not received in time");
                Ok(request_timeout())
            }
        }
    }
}

/// Logs (and, for the header timeout, counts) how a connection ended with an error.
fn connection_error(e: &hyper::Error, peer: SocketAddr, metrics: &Metrics) {
    if e.is_timeout() {
        metrics.http_timeout("header");
        debug!(%peer, "closed: no complete request head within the header timeout");
    } else {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A free connection slot, waiting (logged once per episode) while there is none.
/// `None` only if the semaphore was closed, which never happens.
async fn take_slot(
    slots: &Arc<Semaphore>,
    max: usize,
    metrics: &Metrics,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return Some(slot);
    }
    metrics.http_connection_limit();
    warn!(
        max_connections = max,
        "connection limit reached: not accepting; new connections wait in the listen backlog until one closes"
    );
    let slot = slots.clone().acquire_owned().await.ok()?;
    info!(
        max_connections = max,
        "below the connection limit: accepting again"
    );
    Some(slot)
}

/// A TCP connection holding its connection slot (if any) until it is dropped: when the
/// HTTP connection ends, or, after an upgrade, when the websocket does.
struct Slotted {
    stream: TcpStream,
    _slot: Option<OwnedSemaphorePermit>,
}

impl AsyncRead for Slotted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slotted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// `408 Request Timeout`, closing the connection (the rest of the body is never read).
fn request_timeout() -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse as _;
    (StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")]).into_response()
}

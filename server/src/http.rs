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
//! Stopping works as `axum::serve`'s graceful shutdown did: accept no more connections,
//! ask every open connection to finish its request in flight and close, and return once
//! all have closed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::metrics::Metrics;

/// How connections are timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// A connection must deliver a complete request head within this long of opening, or
    /// of the end of its previous response (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
}

/// Serves `router` on `listener` until `stop` is cancelled, then closes every connection
/// once its request in flight is answered and returns when all are closed.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            // axum's accept: logs and backs off on errors such as EMFILE.
            conn = axum::serve::Listener::accept(&mut listener) => conn,
            () = stop.cancelled() => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            tower::ServiceExt::oneshot(router.clone(), req)
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = stop.clone();
        let metrics = metrics.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let res = tokio::select! {
                res = conn.as_mut() => res,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = res {
                if e.is_timeout() {
                    metrics.http_timeout();
                    debug!(%peer, "closed: no complete request head within the header timeout");
                } else {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

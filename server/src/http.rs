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
    /// A request with a body must be received and answered within this long.
    pub body_timeout: Duration,
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
        let body_metrics = metrics.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let has_body = !hyper::body::Body::is_end_stream(req.body());
            let response = tower::ServiceExt::oneshot(router.clone(), req);
            let metrics = body_metrics.clone();
            async move {
                if !has_body {
                    return response.await;
                }
                match tokio::time::timeout(settings.body_timeout, response).await {
                    Ok(res) => res,
                    Err(_) => {
                        metrics.http_timeout("body");
                        debug!(%peer, "closed: request body not received in time");
                        Ok(request_timeout())
                    }
                }
            }
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
                    metrics.http_timeout("header");
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

/// `408 Request Timeout`, closing the connection (the rest of the body is never read).
fn request_timeout() -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse as _;
    (StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")]).into_response()
}

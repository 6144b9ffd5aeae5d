//! A polling answer that got lost on its way is answered again (with connection state
//! recovery on).
//!
//! Behind a round-robin balancer a polling `GET` often reaches the session's owner through
//! another node, which forwards it. If that node dies after the owner answered, the
//! packets of the answer are gone, and the client, whose session is alive on the owner,
//! never disconnects: recovery never runs, and the packets are lost without a trace. The
//! balancer retries the request on another node (nginx `proxy_next_upstream error`), with
//! the same URL: the official client stamps every poll with its own `t` query value.
//!
//! So the owner keeps, per polling session, its last answer and the `t` it answered, and
//! a `GET` with the same `sid` and `t` gets that answer again instead of a new long-poll.
//! A client's next poll has a new `t`, and replaces the kept answer. Kept answers of
//! sessions that stopped polling are dropped after [`KEEP`]. Only polls carrying `t` are
//! kept (clients that send none are served as before).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tracing::debug;

use crate::engine::{ENGINE_PATH, EngineQuery};

/// How long a session's last answer is kept without a new poll.
pub const KEEP: Duration = Duration::from_secs(120);

/// The last polling answer of each session on this node.
#[derive(Clone, Default)]
pub struct PollReplay(Arc<Mutex<Kept>>);

#[derive(Default)]
struct Kept {
    answers: HashMap<String, Answer>,
    last_purge: Option<Instant>,
}

struct Answer {
    t: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl PollReplay {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer kept for poll `t` of session `sid`.
    fn answer(&self, sid: &str, t: &str) -> Option<Response> {
        let state = self.lock();
        let answer = state.answers.get(sid).filter(|a| a.t == t)?;
        let mut res = Response::new(Body::from(answer.body.clone()));
        *res.headers_mut() = answer.headers.clone();
        Some(res)
    }

    fn keep(&self, sid: &str, t: &str, headers: &HeaderMap, body: &Bytes) {
        let now = Instant::now();
        let mut state = self.lock();
        if state
            .last_purge
            .is_none_or(|at| now.duration_since(at) > Duration::from_secs(10))
        {
            state.answers.retain(|_, a| now.duration_since(a.at) < KEEP);
            state.last_purge = Some(now);
        }
        state.answers.insert(
            sid.to_string(),
            Answer {
                t: t.to_string(),
                headers: headers.clone(),
                body: body.clone(),
                at: now,
            },
        );
    }

    /// Sessions with a kept answer.
    pub fn len(&self) -> usize {
        self.lock().answers.len()
    }

    /// Whether no answer is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `t` value of a query string, if any.
fn t_of(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("t="))
        .filter(|t| !t.is_empty() && t.len() <= 64)
}

/// Middleware (`axum::middleware::from_fn_with_state(replay, replay_polls)`) around
/// socket.io: answers a repeated poll with the kept answer, keeps every other poll's.
pub async fn replay_polls(State(replay): State<PollReplay>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !req.uri().path().starts_with(ENGINE_PATH) {
        return next.run(req).await;
    }
    let uri = req.uri().clone();
    let query = EngineQuery::parse(uri.query());
    let (Some(sid), Some(t), Some("polling")) = (query.sid, t_of(uri.query()), query.transport)
    else {
        return next.run(req).await;
    };
    if let Some(res) = replay.answer(sid, t) {
        debug!(sid, t, "a poll asked again: its answer sent again");
        return res;
    }
    let res = next.run(req).await;
    if res.status() != StatusCode::OK {
        return res;
    }
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            debug!(sid, error = %e, "cannot read a polling response body");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    replay.keep(sid, t, &parts.headers, &bytes);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt as _;

    #[test]
    fn t_is_read_from_the_query() {
        assert_eq!(
            t_of(Some("EIO=4&transport=polling&t=PxYz1&sid=a")),
            Some("PxYz1")
        );
        assert_eq!(t_of(Some("EIO=4&transport=polling")), None);
        assert_eq!(t_of(Some("t=")), None);
        assert_eq!(t_of(None), None);
    }

    #[tokio::test]
    async fn the_same_poll_gets_the_same_answer_and_a_new_poll_a_new_one() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = Router::new()
            .route(
                "/socket.io/",
                get(move || {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    async move { format!("42[\"n\",{n}]") }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                PollReplay::default(),
                replay_polls,
            ));
        let poll = |t: &str| {
            Request::get(format!("/socket.io/?EIO=4&transport=polling&sid=S&t={t}"))
                .body(Body::empty())
                .expect("request")
        };
        let body = |res: Response| async move {
            String::from_utf8(
                axum::body::to_bytes(res.into_body(), 1024)
                    .await
                    .expect("body")
                    .to_vec(),
            )
            .expect("utf-8")
        };
        let first = body(app.clone().oneshot(poll("a")).await.expect("served")).await;
        let again = body(app.clone().oneshot(poll("a")).await.expect("served")).await;
        let next = body(app.clone().oneshot(poll("b")).await.expect("served")).await;
        assert_eq!(first, "42[\"n\",1]");
        assert_eq!(again, first, "the lost answer, again");
        assert_eq!(next, "42[\"n\",2]");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the repeat never reached socket.io"
        );
    }
}

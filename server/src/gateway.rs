//! The gateway events every namespace in `SIO_NAMESPACES` runs.
//!
//! - Handshake: with JWT auth on, `auth.token` must verify or the client gets a
//!   `connect_error` whose message says why. A token with `sub` puts the socket in
//!   `user:<sub>`.
//! - `join(room, ack)` / `leave(room, ack)`: answered `{ok:true}` or
//!   `{ok:false,error}`. With auth on, `join` needs the room to match the token's
//!   `rooms` patterns; with auth off every room is open.
//! - `publish({room, event, data}, ack)`: `io.to(room).emit(event, data)`, the sender
//!   included when it is in the room, binary inside `data` kept; only for rooms matching
//!   `SIO_CLIENT_PUBLISH`, and, with auth on, also the token's `rooms` patterns (or the
//!   socket's own `user:<sub>`): a token cannot publish where it may not join.
//! - With `SIO_EVENT_RATE` set, every event (these three, the chat demo's, and any
//!   other) first takes a token from the socket's bucket; see [`crate::limits`] for what
//!   a client over the limit gets.
//!
//! **Invariant:** event handlers are registered in the connect *middleware*, which
//! socketioxide runs before it sends the CONNECT packet, so an event a client emits the
//! instant it is connected always finds its handler. Handlers are plain closures whose
//! body runs inline in the socket's receive loop, so one client's events take effect in
//! the order it sent them.
//!
//! Each event is a method from its decoded input to `Result<Reply, Refusal>`
//! ([`Gateway::join`], [`Gateway::leave`], [`Gateway::publish`], [`Gateway::other`]);
//! a [`Refusal`] carries its message and the `sio_errors_total` kind it is counted
//! under, and [`reply`] is the one place either outcome becomes the ack. The closure
//! registered for an event only calls these.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::{ParserError, SocketIo};
use socketioxide_core::adapter::DefinedAdapter;
use tracing::{debug, warn};

use crate::auth::{AuthError, Claims, JwtVerifier};
use crate::backend::connect::{self, SocketData};
use crate::backend::events::{self, ArgList, EventQueue, Job};
use crate::backend::{Answer, Backend, Kind, UNAVAILABLE};
use crate::limits::{EventBucket, RateLimit};
use crate::metrics::Metrics;
use crate::patterns::RoomPatterns;
use crate::recovery::{Recovery, RecoveryAuth};

/// Longest room name a client may use, in bytes.
pub const MAX_ROOM_LEN: usize = 256;
/// Longest event name a client may publish, in bytes.
pub const MAX_EVENT_LEN: usize = 128;
/// Event names that clients may not publish: the Socket.IO client reserves them.
pub use sio_adapter_redis::protocol::RESERVED_EVENTS;

/// Called after a socket joined a room, before the client's ack: lets the cluster make
/// the room live (sharded pub/sub subscribes to the room's channel).
pub type JoinHook = Arc<dyn Fn(String) -> HookFuture + Send + Sync>;

/// What a [`JoinHook`] returns for the ack to await.
pub type HookFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Shared state of the gateway handlers.
#[derive(Clone)]
pub struct Gateway {
    jwt: Option<JwtVerifier>,
    publish: RoomPatterns,
    metrics: Metrics,
    on_join: Option<JoinHook>,
    event_limit: Option<RateLimit>,
    recovery: Option<Arc<Recovery>>,
    backend: Option<Arc<Backend>>,
}

/// Why a namespace connect was refused; its message is the client's `connect_error`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectRefused {
    /// The JWT check failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The backend refused (its message) or could not answer (`backend unavailable`).
    #[error("{0}")]
    Backend(String),
}

/// The answer to `join`, `leave` and `publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// Success.
    pub fn ok() -> Self {
        Self {
            ok: true,
            error: None,
        }
    }
    /// Failure with a reason the client can show.
    pub fn err(reason: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(reason.into()),
        }
    }
}

/// Why an event was not carried out: the message the client's ack carries, and the
/// `sio_errors_total` kind it is counted under. [`reply`] turns it into the ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The `sio_errors_total` kind; `None` for a refusal counted elsewhere (over the
    /// event rate limit: `sio_rate_limited_total`) or not at all.
    pub kind: Option<&'static str>,
    /// The ack's `error`.
    pub message: String,
}

impl Refusal {
    fn counted(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: Some(kind),
            message: message.into(),
        }
    }
    /// Input the event cannot use (counted as `bad_request`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::counted("bad_request", message)
    }
    /// A `join` the identity may not make (`join_denied`).
    pub fn join_denied(message: impl Into<String>) -> Self {
        Self::counted("join_denied", message)
    }
    /// A `publish` the identity may not make (`publish_denied`).
    pub fn publish_denied(message: impl Into<String>) -> Self {
        Self::counted("publish_denied", message)
    }
    /// A `publish` the cluster did not take (`publish_failed`).
    pub fn publish_failed(message: impl Into<String>) -> Self {
        Self::counted("publish_failed", message)
    }
    /// A refusal not counted under `sio_errors_total`.
    pub fn uncounted(message: impl Into<String>) -> Self {
        Self {
            kind: None,
            message: message.into(),
        }
    }
}

/// What the handshake `auth` object may carry.
#[derive(Debug, Default, Deserialize)]
pub struct HandshakeAuth {
    /// A JWT, checked when auth is on.
    pub token: Option<String>,
}

/// The authenticated identity of a socket, kept in its extensions.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Auth is off: every room is open.
    Anonymous,
    /// Auth is on and the token verified.
    Token(Arc<Claims>),
}

/// When the socket connected, for its handshake description.
#[derive(Debug, Clone, Copy)]
pub struct ConnectedAt(pub std::time::SystemTime);

/// A `publish` request.
#[derive(Debug, Deserialize)]
pub struct PublishRequest {
    /// Target room.
    pub room: String,
    /// Event name the room's sockets receive.
    pub event: String,
    /// Payload; binary values are kept.
    #[serde(default = "nil")]
    pub data: rmpv::Value,
}

fn nil() -> rmpv::Value {
    rmpv::Value::Nil
}

impl Gateway {
    /// Builds the gateway state.
    pub fn new(jwt: Option<JwtVerifier>, publish: RoomPatterns, metrics: Metrics) -> Arc<Self> {
        Self::with_join_hook(jwt, publish, metrics, None)
    }

    /// [`Gateway::new`] with a hook awaited after every `join`, before the ack.
    pub fn with_join_hook(
        jwt: Option<JwtVerifier>,
        publish: RoomPatterns,
        metrics: Metrics,
        on_join: Option<JoinHook>,
    ) -> Arc<Self> {
        Arc::new(Self {
            jwt,
            publish,
            metrics,
            on_join,
            event_limit: None,
            recovery: None,
            backend: None,
        })
    }

    /// The same gateway with connection state recovery (`None`: off).
    pub fn with_recovery(self: Arc<Self>, recovery: Option<Arc<Recovery>>) -> Arc<Self> {
        let mut gw = Arc::unwrap_or_clone(self);
        gw.recovery = recovery;
        Arc::new(gw)
    }

    /// The same gateway with the app's backend (connect and event proxies; `None`: off).
    pub fn with_backend(self: Arc<Self>, backend: Option<Arc<Backend>>) -> Arc<Self> {
        let mut gw = Arc::unwrap_or_clone(self);
        gw.backend = backend;
        Arc::new(gw)
    }

    /// The same gateway with a per-socket event rate limit (`None`: no limit).
    pub fn with_event_limit(self: Arc<Self>, limit: Option<RateLimit>) -> Arc<Self> {
        let mut gw = Arc::unwrap_or_clone(self);
        gw.event_limit = limit;
        Arc::new(gw)
    }

    /// Checks the handshake `auth` payload. `Ok(Identity::Anonymous)` when auth is off.
    pub fn authenticate(&self, auth: Option<HandshakeAuth>) -> Result<Identity, AuthError> {
        let Some(jwt) = &self.jwt else {
            return Ok(Identity::Anonymous);
        };
        let token = auth
            .and_then(|a| a.token)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        Ok(Identity::Token(Arc::new(jwt.verify(&token)?)))
    }

    /// Whether `identity` may join `room`.
    pub fn check_join(&self, identity: &Identity, room: &str) -> Result<(), String> {
        check_room_name(room)?;
        match identity {
            Identity::Anonymous => Ok(()),
            Identity::Token(claims) => {
                let own = claims
                    .sub
                    .as_deref()
                    .is_some_and(|sub| room.strip_prefix("user:") == Some(sub));
                if own || claims.rooms.matches(room) {
                    Ok(())
                } else {
                    Err(format!("not allowed to join room {room:?}"))
                }
            }
        }
    }

    /// Whether a client with `identity` may publish `event` to `room`: the room must
    /// match `SIO_CLIENT_PUBLISH` and, with auth on, be a room the token may join.
    pub fn check_publish(
        &self,
        identity: &Identity,
        room: &str,
        event: &str,
    ) -> Result<(), String> {
        check_room_name(room)?;
        if event.is_empty() || event.len() > MAX_EVENT_LEN {
            return Err(format!("event must be 1 to {MAX_EVENT_LEN} bytes"));
        }
        if RESERVED_EVENTS.contains(&event) {
            return Err(format!("event {event:?} is reserved"));
        }
        if !self.publish.matches(room) || self.check_join(identity, room).is_err() {
            return Err(format!("publishing to room {room:?} is not allowed"));
        }
        Ok(())
    }

    /// Runs the gateway on namespace `path` of `io`: [`Gateway::on_connect`] is its
    /// connect middleware, so the handlers exist before socketioxide sends the CONNECT
    /// packet. Resolves as the adapter's namespace registration does.
    pub fn attach<A: Adapter + DefinedAdapter>(
        self: &Arc<Self>,
        io: &SocketIo<A>,
        path: String,
    ) -> A::InitRes {
        let gw = self.clone();
        let middleware = move |s: SocketRef<A>,
                               TryData(auth): TryData<HandshakeAuth>,
                               TryData(raw): TryData<serde_json::Value>| {
            let gw = gw.clone();
            async move {
                let raw = raw.ok();
                gw.connect(&s, auth.ok(), raw.as_ref()).await?;
                gw.recover(&s, raw.as_ref()).await;
                Ok::<(), ConnectRefused>(())
            }
        };
        let gw = self.clone();
        let connected = move |s: SocketRef<A>| {
            gw.connected(s);
            async {}
        };
        io.ns(path, connected.with(middleware))
    }

    /// Connection state recovery's part of a connect middleware, once
    /// [`Gateway::on_connect`] passed: restores the session the handshake `auth` names, or
    /// starts one (nothing when recovery is off).
    pub async fn recover<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        auth: Option<&serde_json::Value>,
    ) {
        if let Some(recovery) = &self.recovery {
            let identity = identity(socket);
            let may_join = |room: &str| self.check_join(&identity, room).is_ok();
            let auth = RecoveryAuth::from_auth(auth);
            recovery.on_connect(socket, &identity, auth, may_join).await;
        }
    }

    /// Connection state recovery's part of a connect handler: catches a recovered socket
    /// up and keeps its session. Returns whether the socket recovered its session.
    pub fn connected<A: Adapter>(&self, socket: SocketRef<A>) -> bool {
        match &self.recovery {
            Some(recovery) => recovery.on_connected(socket),
            None => false,
        }
    }

    /// The gateway namespaces' connect middleware: the JWT check, then the connect
    /// proxy when one is set (see [`crate::backend::connect`] for how they combine), then
    /// `set_up` (rooms, identity, handlers): all before socketioxide sends the CONNECT packet. An `Err`
    /// becomes the client's `connect_error` message.
    pub async fn connect<A: Adapter>(
        self: &Arc<Self>,
        socket: &SocketRef<A>,
        auth: Option<HandshakeAuth>,
        raw_auth: Option<&serde_json::Value>,
    ) -> Result<(), ConnectRefused> {
        let identity = self.check_token(socket, auth)?;
        let token_sub = match &identity {
            Identity::Token(claims) => claims.sub.clone(),
            Identity::Anonymous => None,
        };
        let backend = self.backend.as_ref();
        let Some((backend, url)) =
            backend.and_then(|b| Some((b, b.config().connect_url.as_ref()?)))
        else {
            self.set_up(
                socket,
                identity,
                SocketData {
                    user: token_sub,
                    data: Default::default(),
                },
                Vec::new(),
            );
            return Ok(());
        };
        let body = connect::request(socket, backend.node(), token_sub.as_deref(), raw_auth);
        let refuse = |reason: &'static str, message: String| {
            debug!(sid = %socket.id, nsp = socket.ns(), reason, message, "connect refused by the backend");
            self.metrics.connect_rejected(reason);
            Err(ConnectRefused::Backend(message))
        };
        let grant = match backend.call(Kind::Connect, url, &body, None).await {
            Ok(Answer::Ok(answer)) => match connect::grant(answer) {
                Ok(grant) => grant,
                Err(e) => {
                    backend.count_error(e);
                    return refuse("backend_unavailable", UNAVAILABLE.into());
                }
            },
            Ok(Answer::Refused(message)) => return refuse("backend", message),
            Err(_) => return refuse("backend_unavailable", UNAVAILABLE.into()),
        };
        let user = match connect::combine_user(token_sub.as_deref(), grant.user) {
            Ok(user) => user,
            Err(e) => return refuse("backend", e.to_string()),
        };
        let data = SocketData {
            user,
            data: Arc::new(grant.data),
        };
        self.set_up(socket, identity, data, grant.rooms);
        Ok(())
    }

    /// The JWT check of a handshake (anonymous when auth is off), counted when it fails.
    fn check_token<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        auth: Option<HandshakeAuth>,
    ) -> Result<Identity, AuthError> {
        self.authenticate(auth).inspect_err(|e| {
            debug!(sid = %socket.id, nsp = socket.ns(), error = %e, "handshake refused");
            self.metrics.connect_rejected("auth");
        })
    }

    /// The connect middleware of namespaces without the connect proxy (the demo chat):
    /// the JWT check, then `set_up` (rooms, identity, handlers). An `Err` becomes the client's
    /// `connect_error` message.
    pub fn on_connect<A: Adapter>(
        self: &Arc<Self>,
        socket: SocketRef<A>,
        auth: Option<HandshakeAuth>,
    ) -> Result<(), AuthError> {
        let identity = self.check_token(&socket, auth)?;
        let user = match &identity {
            Identity::Token(claims) => claims.sub.clone(),
            Identity::Anonymous => None,
        };
        self.set_up(
            &socket,
            identity,
            SocketData {
                user,
                data: Default::default(),
            },
            Vec::new(),
        );
        Ok(())
    }

    /// A socket admitted: its rooms (its id, `user:<id>`, the backend's), its identity
    /// and data, its event bucket and queue, and every handler.
    fn set_up<A: Adapter>(
        self: &Arc<Self>,
        socket: &SocketRef<A>,
        identity: Identity,
        data: SocketData,
        rooms: Vec<String>,
    ) {
        // Every socket is in a room named by its id, as in Node: that is how other
        // nodes (Rust or Node.js) address one socket (`io.to(id)`, remote join/leave).
        socket.join(socket.id.to_string());
        if let Some(user) = &data.user {
            socket.join(format!("user:{user}"));
        }
        if !rooms.is_empty() {
            socket.join(rooms);
        }
        if let Some(backend) = self
            .backend
            .as_ref()
            .filter(|b| b.config().event_url.is_some())
        {
            socket.extensions.insert(EventQueue::start(
                backend.clone(),
                socket.ns().to_string(),
                socket.id.to_string(),
                data.user.clone(),
            ));
        }
        socket.extensions.insert(data);
        socket.extensions.insert(identity);
        socket
            .extensions
            .insert(ConnectedAt(std::time::SystemTime::now()));
        if let Some(limit) = &self.event_limit {
            socket.extensions.insert(limit.socket_bucket());
        }
        self.register_handlers(socket);
        // counted as connected at scrape time, from the namespace's sockets (see
        // Metrics::socket_connected): no disconnect handler to miss
        self.metrics.socket_connected(socket.ns());
    }

    /// Registers the event handlers. Each closure runs inline in the socket's receive
    /// loop and only calls its event's function and the reply path ([`Gateway::reply`]).
    fn register_handlers<A: Adapter>(self: &Arc<Self>, socket: &SocketRef<A>) {
        let gw = self.clone();
        socket.on(
            "join",
            move |s: SocketRef<A>, TryData(room): TryData<String>, ack: AckSender<A>| {
                let outcome = gw.join(&s, room);
                let live = gw.room_live(&s, outcome.is_ok());
                let reply = gw.reply(outcome);
                async move {
                    if let Some(live) = live {
                        live.await;
                    }
                    answer(ack, &reply);
                }
            },
        );

        let gw = self.clone();
        socket.on(
            "leave",
            move |s: SocketRef<A>, TryData(room): TryData<String>, ack: AckSender<A>| {
                answer(ack, &gw.reply(gw.leave(&s, room)));
                async {}
            },
        );

        let gw = self.clone();
        socket.on(
            "publish",
            move |s: SocketRef<A>, TryData(req): TryData<PublishRequest>, ack: AckSender<A>| {
                answer(ack, &gw.reply(gw.publish(&s, req)));
                async {}
            },
        );

        let gw = self.clone();
        socket.on_fallback(
            move |s: SocketRef<A>,
                  Event(event): Event,
                  TryData(args): TryData<ArgList>,
                  ack: AckSender<A>| {
                match gw.other(&s) {
                    Err(refusal) => answer(ack, &gw.reply(Err(refusal))),
                    Ok(()) => gw.proxy_event(&s, event, args, ack),
                }
                async {}
            },
        );
    }

    /// `join(room)`: the socket joins `room` if its identity may (see [`Gateway::check_join`]).
    pub fn join<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        room: Result<String, ParserError>,
    ) -> Result<Reply, Refusal> {
        self.admit(socket, "join")?;
        // Not counted, unlike the same refusal of `leave` (as it has always been).
        let room = room.map_err(|_| Refusal::uncounted("room must be a string"))?;
        self.check_join(&identity(socket), &room)
            .map_err(Refusal::join_denied)?;
        // Applied here, in the receive loop: later events see it.
        socket.join(room);
        if let Some(recovery) = &self.recovery {
            recovery.rooms_changed(socket);
        }
        Ok(Reply::ok())
    }

    /// What a `join` ack waits for: after a join that happened, the join hook (the
    /// cluster making the room live), when there is one.
    fn room_live<A: Adapter>(&self, socket: &SocketRef<A>, joined: bool) -> Option<HookFuture> {
        let hook = self.on_join.as_ref().filter(|_| joined)?;
        Some(hook(socket.ns().to_string()))
    }

    /// `leave(room)`: the socket leaves `room`; never its own id room.
    pub fn leave<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        room: Result<String, ParserError>,
    ) -> Result<Reply, Refusal> {
        self.admit(socket, "leave")?;
        let room = room.map_err(|_| Refusal::bad_request("room must be a string"))?;
        if room == socket.id.as_str() {
            return Err(Refusal::bad_request("a socket cannot leave its own room"));
        }
        check_room_name(&room).map_err(Refusal::bad_request)?;
        socket.leave(room);
        if let Some(recovery) = &self.recovery {
            recovery.rooms_changed(socket);
        }
        Ok(Reply::ok())
    }

    /// `publish({room, event, data})`: broadcasts `event` to `room` (the sender included
    /// when it is in it) if the identity may publish there (see [`Gateway::check_publish`]).
    /// The broadcast reaches the adapter before this returns ([`drive_inline`]).
    pub fn publish<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        req: Result<PublishRequest, ParserError>,
    ) -> Result<Reply, Refusal> {
        self.admit(socket, "publish")?;
        let req = req.map_err(|e| {
            Refusal::bad_request(format!(
                "publish expects {{room, event, data}}: {}",
                short(&e.to_string())
            ))
        })?;
        self.check_publish(&identity(socket), &req.room, &req.event)
            .map_err(Refusal::publish_denied)?;
        self.metrics.event_emitted("publish");
        let op = socket.within(req.room);
        let (event, data) = (req.event, req.data);
        drive_inline(async move { op.emit(event, &data).await }, "publish").map_err(|e| {
            // not sent to the other nodes (e.g. the publish queue to Redis is full):
            // counted, and the sender is told
            debug!(error = %e, "publish not sent to every node");
            Refusal::publish_failed(short(&e.to_string()))
        })?;
        Ok(Reply::ok())
    }

    /// Any other event: counted, and refused like the others when over the rate limit
    /// (it has no handler, so nothing else happens to it, and an admitted one gets no ack).
    pub fn other<A: Adapter>(&self, socket: &SocketRef<A>) -> Result<(), Refusal> {
        self.admit(socket, "other")
    }

    /// An event for the backend (when its name matches `SIO_EVENT_PROXY_EVENTS`): queued
    /// here, in the socket's receive loop, so the backend gets a socket's events in the
    /// order sent; the answer is the ack ([`crate::backend::events`]).
    fn proxy_event<A: Adapter>(
        &self,
        socket: &SocketRef<A>,
        event: String,
        args: Result<ArgList, ParserError>,
        ack: AckSender<A>,
    ) {
        let Some(backend) = self.backend.as_ref().filter(|b| b.proxies_event(&event)) else {
            return;
        };
        let Some(queue) = socket.extensions.get::<EventQueue>() else {
            return;
        };
        let args = match args {
            Ok(ArgList(args)) => args.iter().map(events::to_json).collect(),
            Err(e) => {
                let message = format!("bad arguments: {}", short(&e.to_string()));
                answer(ack, &self.reply(Err(Refusal::bad_request(message))));
                return;
            }
        };
        let job = Job {
            event,
            args,
            deadline: std::time::Instant::now() + backend.config().timeout,
            answer: Box::new(move |reply| {
                if let Err(e) = ack.send(&reply) {
                    debug!(error = %e, "could not send ack");
                }
            }),
        };
        queue.push(job, backend);
    }

    /// Counts an event as received and takes a token for it ([`admit_event`]).
    fn admit<A: Adapter>(&self, socket: &SocketRef<A>, event: &str) -> Result<(), Refusal> {
        self.metrics.event_received(event);
        admit_event(socket, &self.metrics)
    }

    /// The reply path of every gateway event: a refusal is counted under its kind, and
    /// either outcome becomes the ack's `{ok:true}` or `{ok:false,error}`.
    pub fn reply(&self, outcome: Result<Reply, Refusal>) -> Reply {
        reply(&self.metrics, outcome)
    }
}

/// The identity the connect middleware gave `socket` (anonymous when it has none).
fn identity<A: Adapter>(socket: &SocketRef<A>) -> Identity {
    socket
        .extensions
        .get::<Identity>()
        .unwrap_or(Identity::Anonymous)
}

/// Turns an event's outcome into its ack, counting a refusal under its kind: the one
/// place a refusal becomes `{ok:false,error}` (the chat's events use it too).
pub fn reply(metrics: &Metrics, outcome: Result<Reply, Refusal>) -> Reply {
    match outcome {
        Ok(reply) => reply,
        Err(refusal) => {
            if let Some(kind) = refusal.kind {
                metrics.error(kind);
            }
            Reply::err(refusal.message)
        }
    }
}

/// Takes one token from the socket's event bucket (when `SIO_EVENT_RATE` is set).
/// Over the limit: counted, the client gets an `error` event on the first refusal of a
/// streak, the socket is disconnected after
/// [`EVENT_STRIKES_BEFORE_DISCONNECT`](crate::limits::EVENT_STRIKES_BEFORE_DISCONNECT)
/// refusals in a row, and `Err` holds the ack answer (already counted, as
/// `sio_rate_limited_total`).
pub fn admit_event<A: Adapter>(socket: &SocketRef<A>, metrics: &Metrics) -> Result<(), Refusal> {
    let Some(bucket) = socket.extensions.get::<EventBucket>() else {
        return Ok(());
    };
    let refused = match bucket.admit() {
        Ok(()) => return Ok(()),
        Err(refused) => refused,
    };
    metrics.rate_limited("event");
    if refused.is_first() {
        debug!(sid = %socket.id, nsp = socket.ns(), "event over the rate limit");
        let notice = serde_json::json!({"code": "rate_limited", "message": refused.message});
        if let Err(e) = socket.emit("error", &notice) {
            debug!(sid = %socket.id, error = %e, "could not send the rate-limit notice");
        }
    }
    if refused.disconnect() {
        metrics.rate_limited("event_disconnect");
        warn!(sid = %socket.id, nsp = socket.ns(), strikes = refused.strikes, "disconnecting a socket that keeps exceeding the event rate limit");
        if let Err(e) = socket.clone().disconnect() {
            debug!(sid = %socket.id, error = %e, "could not disconnect");
        }
    }
    Err(Refusal::uncounted(refused.message))
}

/// Validates a client-supplied room name.
pub fn check_room_name(room: &str) -> Result<(), String> {
    if room.is_empty() || room.len() > MAX_ROOM_LEN {
        return Err(format!("room must be 1 to {MAX_ROOM_LEN} bytes"));
    }
    if room.chars().any(char::is_control) {
        return Err("room must not contain control characters".into());
    }
    Ok(())
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(120) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn answer<A: Adapter>(ack: AckSender<A>, reply: &Reply) {
    if let Err(e) = ack.send(reply) {
        debug!(error = %e, "could not send ack");
    }
}

/// Polls a broadcast once, right here, and spawns it only if it is not done yet.
///
/// socketioxide's `emit` is lazy: nothing is sent until the future is polled. Polling it
/// inline, inside the handler body that socketioxide runs in the sender's receive loop,
/// hands the packet to the adapter in the order the client sent its events; spawning it
/// straight away would let tasks overtake each other.
///
/// An error known at once (e.g. the cluster's publish queue is full) is returned for
/// the caller to answer with; one that comes later is logged.
pub fn drive_inline<F, E>(fut: F, what: &'static str) -> Result<(), E>
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(res) => res,
        Poll::Pending => {
            tokio::spawn(async move {
                if let Err(e) = fut.await {
                    warn!(error = %e, what, "broadcast failed");
                }
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn gw(jwt: bool, publish: &[&str]) -> Arc<Gateway> {
        Gateway::new(
            jwt.then(|| JwtVerifier::hs256(b"k").unwrap()),
            RoomPatterns::new(publish).unwrap(),
            Metrics::new(),
        )
    }

    fn token(claims: serde_json::Value) -> Option<HandshakeAuth> {
        Some(HandshakeAuth {
            token: Some(
                encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k")).unwrap(),
            ),
        })
    }

    #[test]
    fn auth_off_lets_everyone_in_and_opens_every_room() {
        let g = gw(false, &[]);
        let id = g.authenticate(None).unwrap();
        assert!(matches!(id, Identity::Anonymous));
        assert!(g.check_join(&id, "user:bob").is_ok());
    }

    #[test]
    fn auth_on_needs_a_token() {
        let g = gw(true, &[]);
        assert!(matches!(g.authenticate(None), Err(AuthError::Missing)));
        assert!(matches!(
            g.authenticate(Some(HandshakeAuth {
                token: Some(String::new())
            })),
            Err(AuthError::Missing)
        ));
    }

    #[test]
    fn token_rooms_govern_joins_and_own_user_room_is_allowed() {
        let g = gw(true, &[]);
        let id = g
            .authenticate(token(
                serde_json::json!({"sub": "alice", "rooms": ["team:*"]}),
            ))
            .unwrap();
        assert!(g.check_join(&id, "team:red").is_ok());
        assert!(g.check_join(&id, "user:alice").is_ok());
        let err = g.check_join(&id, "user:bob").unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        assert!(g.check_join(&id, "lobby").is_err());
    }

    #[test]
    fn publish_needs_an_allowed_room_and_a_normal_event() {
        let g = gw(false, &["news:*"]);
        let anon = Identity::Anonymous;
        assert!(g.check_publish(&anon, "news:a", "headline").is_ok());
        assert!(
            g.check_publish(&anon, "other", "headline")
                .unwrap_err()
                .contains("not allowed")
        );
        assert!(
            g.check_publish(&anon, "news:a", "connect")
                .unwrap_err()
                .contains("reserved")
        );
        assert!(g.check_publish(&anon, "news:a", "").is_err());
        assert!(gw(false, &[]).check_publish(&anon, "news:a", "x").is_err());
    }

    #[test]
    fn with_auth_publish_needs_the_token_s_rooms_too() {
        let g = gw(true, &["*"]);
        let id = g
            .authenticate(token(
                serde_json::json!({"sub": "alice", "rooms": ["team:*"]}),
            ))
            .unwrap();
        assert!(g.check_publish(&id, "team:red", "e").is_ok());
        assert!(g.check_publish(&id, "user:alice", "e").is_ok());
        let err = g.check_publish(&id, "user:bob", "e").unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        assert!(g.check_publish(&id, "lobby", "e").is_err());
    }

    #[test]
    fn the_reply_path_counts_a_refusal_under_its_kind() {
        let g = gw(false, &[]);
        assert_eq!(g.reply(Ok(Reply::ok())), Reply::ok());
        let denied = g.reply(Err(Refusal::join_denied("no")));
        assert_eq!(denied, Reply::err("no"));
        assert_eq!(
            g.reply(Err(Refusal::uncounted("slow down"))),
            Reply::err("slow down")
        );
        let text = g.metrics.render();
        assert!(
            text.contains("sio_errors_total{kind=\"join_denied\"} 1"),
            "{text}"
        );
        // the uncounted refusal counted nothing: every other kind is still at 0
        let counted: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("sio_errors_total{") && !l.ends_with(" 0"))
            .collect();
        assert_eq!(counted.len(), 1, "{text}");
    }

    #[test]
    fn room_names_are_bounded() {
        assert!(check_room_name("").is_err());
        assert!(check_room_name(&"x".repeat(MAX_ROOM_LEN + 1)).is_err());
        assert!(check_room_name(&"x".repeat(MAX_ROOM_LEN)).is_ok());
        assert!(check_room_name("a\nb").is_err());
    }
}

//! The emitter and its operator.

use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface};
use fred::types::Builder;
use serde::Serialize;
use sio_protocol::{
    AdapterMode, BroadcastMessage, BroadcastOptions, DEFAULT_PREFIX, DisconnectRequest,
    EMITTER_UID, FetchRequest, FetchedSocket, Layout, Outgoing, Packet, RESERVED_EVENTS, Request,
    RequestOpts, RequestType, Response, RoomsRequest, ServerSideEmitRequest, StreamsOptions, Wire,
    new_request_id, rmpv,
};

use sio_redis_config::redis_url;

use crate::EmitError;
use crate::redis_io;

/// Publishes into a cluster through one Redis connection. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    client: Client,
    wire: Wire,
    request_timeout: Duration,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("prefix", &self.wire.prefix())
            .field("mode", &self.wire.mode())
            .finish()
    }
}

fn emitter_wire(mode: AdapterMode, prefix: &str, streams: StreamsOptions) -> Wire {
    Wire::new(mode, prefix, EMITTER_UID)
        .with_layout(Layout::Emitter)
        .with_streams(streams)
}

impl Emitter {
    /// An emitter on an already connected fred client, with the default prefix
    /// `socket.io` (the Node adapter's default `key`).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            wire: emitter_wire(
                AdapterMode::Classic,
                DEFAULT_PREFIX,
                StreamsOptions::default(),
            ),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Connects to Redis at `url` (`redis://[user:password@]host:port[/db]`, `rediss://`,
    /// `redis-sentinel://`, `redis-cluster://`). Fails at once if Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, EmitError> {
        Self::connect_with_ca(url, None).await
    }

    /// [`Emitter::connect`] to a `rediss://` server whose certificate chains to the CA
    /// certificates of the PEM file `ca_file` (instead of the system's roots).
    pub async fn connect_with_ca(
        url: &str,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, EmitError> {
        if !redis_url::is_redis_url(url) {
            return Err(EmitError::Url(redis_url::mask(url)));
        }
        let mut config = redis_url::config_from_url(url)?;
        if let Some(ca) = ca_file {
            sio_redis_config::tls::trust_ca_file(&mut config, ca)?;
        }
        let mut builder = Builder::from_config(config);
        builder.with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
        });
        let client = builder.build()?;
        client.init().await?;
        Ok(Self::new(client))
    }

    /// Uses another channel prefix (must match the cluster's).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.wire = emitter_wire(
            self.wire.mode(),
            &prefix.into(),
            self.wire.streams().clone(),
        );
        self
    }

    /// Publishes for a cluster in this mode: classic (default), sharded or streams, which
    /// Node's emitter cannot do. It must match the cluster's adapters.
    ///
    /// In streams mode the emitter writes what a `@socket.io/redis-streams-adapter` node
    /// would, as node `emitter`: broadcasts, `socketsJoin` / `socketsLeave` and
    /// `disconnectSockets` are `XADD`ed to the namespace's stream (see
    /// [`Emitter::with_streams`]); server-side emits and `fetchSockets` are `PUBLISH`ed on the
    /// namespace's channel `<prefix>#<nsp>#`, and answers come back on
    /// `<prefix>#<nsp>#emitter#`.
    pub fn with_mode(mut self, mode: AdapterMode) -> Self {
        self.wire = emitter_wire(mode, self.wire.prefix(), self.wire.streams().clone());
        self
    }

    /// The cluster's streams options (stream name, count, length; default: Node's), used in
    /// streams mode ([`AdapterMode::Streams`], set with [`Emitter::with_mode`]); they must
    /// match the cluster's adapters.
    pub fn with_streams(mut self, options: StreamsOptions) -> Self {
        self.wire = self.wire.with_streams(options);
        self
    }

    /// How long [`Operator::fetch_sockets`] and
    /// [`Operator::server_side_emit_with_ack`] wait for answers. Default 5 s.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The Redis client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Targets namespace `nsp` (a leading `/` is added if missing, as Node does).
    pub fn of(&self, nsp: &str) -> Operator<'_> {
        let nsp = if nsp.starts_with('/') {
            nsp.to_string()
        } else {
            format!("/{nsp}")
        };
        Operator {
            emitter: self,
            nsp,
            opts: BroadcastOptions::default(),
        }
    }

    /// Targets `room` in namespace `/`.
    pub fn to(&self, room: impl Into<String>) -> Operator<'_> {
        self.of("/").to(room)
    }

    /// Emits `event` to every socket of namespace `/`.
    pub async fn emit<T: Serialize>(&self, event: &str, args: T) -> Result<(), EmitError> {
        self.of("/").emit(event, args).await
    }

    async fn publish(&self, message: Outgoing) -> Result<(), EmitError> {
        redis_io::send(&self.client, &self.wire, message).await
    }
}

/// A target being built: namespace, rooms, exceptions, flags.
#[derive(Debug, Clone)]
pub struct Operator<'a> {
    emitter: &'a Emitter,
    nsp: String,
    opts: BroadcastOptions,
}

impl Operator<'_> {
    /// Adds a target room (a socket in several target rooms gets the event once).
    pub fn to(mut self, room: impl Into<String>) -> Self {
        self.opts.rooms.push(room.into());
        self
    }

    /// Same as [`Operator::to`] (Node's `in`).
    pub fn within(self, room: impl Into<String>) -> Self {
        self.to(room)
    }

    /// Excludes the sockets in `room`.
    pub fn except(mut self, room: impl Into<String>) -> Self {
        self.opts.except.push(room.into());
        self
    }

    /// The event may be dropped for clients that are not ready to receive it.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = Some(true);
        self
    }

    /// Whether to compress the event on the websocket.
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.flags.compress = Some(compress);
        self
    }

    /// The message [`Operator::emit`] sends: `args` is a tuple, array or `Vec` of
    /// arguments (or one value); byte buffers (`bytes::Bytes`, `serde_bytes`) travel
    /// as binary.
    pub fn emit_message<T: Serialize>(&self, event: &str, args: T) -> Result<Outgoing, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_string()));
        }
        let value = rmpv::ext::to_value(args).map_err(|e| EmitError::Args(e.to_string()))?;
        let args = match value {
            rmpv::Value::Array(items) => items,
            rmpv::Value::Nil => Vec::new(),
            other => vec![other],
        };
        let packet = Packet::event(self.nsp.clone(), event, args);
        let message = BroadcastMessage::from_emitter(packet, self.opts.clone());
        Ok(self.emitter.wire.broadcast(&self.nsp, &message)?)
    }

    /// Emits `event` with `args` to the targeted sockets on every node.
    pub async fn emit<T: Serialize>(&self, event: &str, args: T) -> Result<(), EmitError> {
        self.emitter.publish(self.emit_message(event, args)?).await
    }

    fn request_opts(&self) -> RequestOpts {
        RequestOpts {
            rooms: self.opts.rooms.clone(),
            except: self.opts.except.clone(),
        }
    }

    fn request_message(&self, request: Request) -> Result<Outgoing, EmitError> {
        match self.emitter.wire.request(&self.nsp, request) {
            Ok(Some(outgoing)) => Ok(outgoing),
            Ok(None) => Err(EmitError::Args("request not available in this mode".into())),
            Err(e) => Err(EmitError::Protocol(e)),
        }
    }

    /// The message [`Operator::sockets_join`] sends.
    pub fn sockets_join_message<I, S>(&self, rooms: I) -> Result<Outgoing, EmitError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.request_message(Request::RemoteJoin(RoomsRequest {
            uid: None,
            opts: self.request_opts(),
            rooms: rooms.into_iter().map(Into::into).collect(),
        }))
    }

    /// Makes the targeted sockets join `rooms`, on every node.
    pub async fn sockets_join<I, S>(&self, rooms: I) -> Result<(), EmitError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.emitter
            .publish(self.sockets_join_message(rooms)?)
            .await
    }

    /// The message [`Operator::sockets_leave`] sends.
    pub fn sockets_leave_message<I, S>(&self, rooms: I) -> Result<Outgoing, EmitError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.request_message(Request::RemoteLeave(RoomsRequest {
            uid: None,
            opts: self.request_opts(),
            rooms: rooms.into_iter().map(Into::into).collect(),
        }))
    }

    /// Makes the targeted sockets leave `rooms`, on every node.
    pub async fn sockets_leave<I, S>(&self, rooms: I) -> Result<(), EmitError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.emitter
            .publish(self.sockets_leave_message(rooms)?)
            .await
    }

    /// The message [`Operator::disconnect_sockets`] sends.
    pub fn disconnect_sockets_message(&self, close: bool) -> Result<Outgoing, EmitError> {
        self.request_message(Request::RemoteDisconnect(DisconnectRequest {
            uid: None,
            opts: self.request_opts(),
            close,
        }))
    }

    /// Disconnects the targeted sockets on every node (`close`: also close the
    /// underlying connection, where the node supports it).
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitError> {
        self.emitter
            .publish(self.disconnect_sockets_message(close)?)
            .await
    }

    /// The message [`Operator::server_side_emit`] sends.
    pub fn server_side_emit_message(
        &self,
        event: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<Outgoing, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_string()));
        }
        self.request_message(Request::ServerSideEmit(ServerSideEmitRequest {
            uid: Some(EMITTER_UID.to_string()),
            request_id: None,
            data: ServerSideEmitRequest::data_for(event, args),
        }))
    }

    /// Sends a server-side event to every node of the namespace (Node:
    /// `io.on(event, ...)`; sio-cluster: `RedisCluster::on_server_side_emit`).
    pub async fn server_side_emit(
        &self,
        event: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<(), EmitError> {
        self.emitter
            .publish(self.server_side_emit_message(event, args)?)
            .await
    }

    /// Sends a server-side event and waits for every node's answer (Node's emitter
    /// cannot: socket.io-redis-emitter issue #133).
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_string()));
        }
        let request = Request::ServerSideEmit(ServerSideEmitRequest {
            uid: Some(EMITTER_UID.to_string()),
            request_id: Some(new_request_id()),
            data: ServerSideEmitRequest::data_for(event, args),
        });
        let responses = self.request(request, RequestType::ServerSideEmit).await?;
        Ok(responses
            .into_iter()
            .filter_map(|r| match r {
                Response::ServerSideEmit(r) => Some(r.data.unwrap_or(serde_json::Value::Null)),
                _ => None,
            })
            .collect())
    }

    /// The targeted sockets of every node: id, handshake, rooms, data (Node's emitter
    /// cannot: socket.io-redis-emitter issue #132).
    pub async fn fetch_sockets(&self) -> Result<Vec<FetchedSocket>, EmitError> {
        let request = Request::RemoteFetch(FetchRequest {
            uid: Some(EMITTER_UID.to_string()),
            request_id: new_request_id(),
            opts: self.request_opts(),
        });
        let responses = self.request(request, RequestType::RemoteFetch).await?;
        Ok(responses
            .into_iter()
            .flat_map(|r| match r {
                Response::RemoteFetch(r) => r.sockets,
                _ => Vec::new(),
            })
            .collect())
    }

    /// Publishes `request` and collects one answer per node serving the namespace.
    async fn request(
        &self,
        request: Request,
        kind: RequestType,
    ) -> Result<Vec<Response>, EmitError> {
        let emitter = self.emitter;
        let expected = redis_io::node_count(&emitter.client, &emitter.wire, &self.nsp).await?;
        if expected == 0 {
            return Ok(Vec::new());
        }
        let id = request.request_id().map(str::to_string).unwrap_or_default();
        let subscriber =
            redis_io::listen_for_answers(&emitter.client, &emitter.wire, &self.nsp).await?;
        let mut rx = subscriber.message_rx();
        let publish = self.request_message(request)?;
        let result = async {
            emitter.publish(publish).await?;
            let mut responses = Vec::with_capacity(expected);
            let timeout = emitter.request_timeout;
            let collect = async {
                while responses.len() < expected {
                    let Ok(message) = rx.recv().await else { break };
                    let answer = message.value.as_bytes();
                    if let Some(response) =
                        answer.and_then(|bytes| emitter.wire.read_response(bytes, &id, kind))
                    {
                        responses.push(response);
                    }
                }
            };
            match tokio::time::timeout(timeout, collect).await {
                Ok(()) => Ok(responses),
                Err(_) => Err(EmitError::Timeout {
                    timeout,
                    answered: responses.len(),
                    expected,
                }),
            }
        }
        .await;
        let _ = subscriber.quit().await;
        result
    }
}

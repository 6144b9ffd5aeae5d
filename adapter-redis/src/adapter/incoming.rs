//! What a namespace does with the other nodes' messages: deliver their broadcasts to
//! local sockets, apply their requests here, and answer them.

use std::sync::Arc;
use std::time::Duration;

use socketioxide_core::adapter::{
    BroadcastFlags, BroadcastOptions, RemoteSocketData, Room, SocketEmitter,
};
use socketioxide_core::parser::Parse;
use tracing::{debug, warn};

use socketioxide_core::Sid;

use super::{Logged, RedisAdapter};
use crate::cluster::NamespaceSink;
use crate::convert;
use crate::protocol::{
    self, BroadcastAckResponse, BroadcastClientCountResponse, BroadcastMessage, FetchResponse,
    FetchedSocket, Request, RequestOpts, Response,
};
use crate::stats::Stats;
use crate::transport::{Inbound, Payload};

impl<E: SocketEmitter> NamespaceSink for RedisAdapter<E> {
    fn on_message(self: Arc<Self>, message: Inbound<'_>) {
        match message {
            Inbound::Broadcast {
                room,
                message,
                offset,
            } => self.on_broadcast(room, message, offset),
            Inbound::Request(request) => match request.decode() {
                Ok(request) => self.handle_request(request),
                Err(e) => {
                    Stats::add(&self.stats().malformed, 1);
                    warn!(nsp = %self.local.path(), error = %e, "malformed request dropped");
                }
            },
        }
    }

    fn log_position(&self) -> Option<String> {
        self.catch_ups.position()
    }

    fn begin_catch_up(&self, sid: Sid, rooms: Vec<String>) {
        self.catch_ups.begin(sid, rooms);
    }

    fn abort_catch_up(&self, sid: Sid) {
        self.catch_ups.abort(sid);
    }

    fn finish_catch_up(
        &self,
        sid: Sid,
        logged: Vec<(String, BroadcastMessage)>,
        fallback: Option<String>,
    ) -> Option<usize> {
        let logged = logged
            .into_iter()
            .filter(|(_, m)| m.opts.flags.volatile != Some(true))
            .filter_map(|(id, mut message)| {
                message.packet.data.push(rmpv::Value::from(id.as_str()));
                let (packet, _) =
                    convert::from_wire(&self.local.parser(), self.local.path(), &message).ok()?;
                Some(Logged {
                    id,
                    opts: message.opts,
                    packet,
                })
            })
            .collect();
        let mut to_socket = BroadcastOptions::default();
        to_socket.rooms.push(Room::Owned(sid.to_string()));
        to_socket.add_flag(BroadcastFlags::Broadcast);
        self.catch_ups.finish(
            sid,
            logged,
            || fallback,
            |packet| self.deliver_locally(packet, to_socket.clone()),
        )
    }

    fn local_rooms(&self) -> Vec<String> {
        let mut all = BroadcastOptions::default();
        all.add_flag(BroadcastFlags::Broadcast);
        self.local
            .rooms(all)
            .into_iter()
            .map(|r| r.to_string())
            .collect()
    }
}

impl<E: SocketEmitter> RedisAdapter<E> {
    /// Another node's broadcast, delivered to the local sockets it targets. With recovery
    /// on, a broadcast read from the log (`offset`, its entry id) is delivered whoever sent
    /// it, carries its offset as its last argument (unless volatile), and passes the
    /// recovering sockets' catch-up ([`super::CatchUps`]).
    fn on_broadcast(
        &self,
        room: Option<&str>,
        message: Payload<'_, BroadcastMessage>,
        offset: Option<&str>,
    ) {
        if let (Some(room), Payload::Encoded(_)) = (room, &message) {
            let mut probe = BroadcastOptions::default();
            probe.rooms.push(Room::Owned(room.to_string()));
            if self.local.sockets(probe).is_empty() {
                return; // nobody here is in that room: skip decoding
            }
        }
        let message = match message.decode() {
            Ok(m) => m,
            Err(e) => {
                Stats::add(&self.stats().malformed, 1);
                warn!(nsp = %self.local.path(), error = %e, "malformed broadcast dropped");
                return;
            }
        };
        let logged = offset.filter(|_| self.cluster.recovers());
        if message.uid == self.cluster.uid() && logged.is_none() {
            return; // our own, already delivered locally
        }
        let mut message = message;
        if let Some(id) = logged
            && message.opts.flags.volatile != Some(true)
        {
            message.packet.data.push(rmpv::Value::from(id));
        }
        match convert::from_wire(&self.local.parser(), self.local.path(), &message) {
            Ok((packet, opts)) => match logged {
                Some(id) => self
                    .catch_ups
                    .deliver(id, &message.opts, packet, opts, |p, o| {
                        self.deliver_locally(p, o)
                    }),
                None => self.deliver_locally(packet, opts),
            },
            Err(e) => {
                Stats::add(&self.stats().malformed, 1);
                warn!(nsp = %self.local.path(), from = %message.uid, error = %e, "broadcast with undeliverable data dropped");
            }
        }
    }

    /// Publishes a response to node `to`'s request.
    fn respond(&self, to: Option<&str>, response: Response) {
        self.cluster.respond(self.local.path(), to, response);
    }

    /// A local socket as a fetch answer describes it.
    fn fetched(&self, data: &RemoteSocketData) -> FetchedSocket {
        let info = self
            .cluster
            .socket_info(self.local.path(), data.id)
            .unwrap_or_else(|| crate::hooks::SocketInfo {
                data: serde_json::Value::Object(Default::default()),
                ..Default::default()
            });
        FetchedSocket {
            id: data.id.to_string(),
            handshake: info.handshake,
            rooms: self
                .local
                .socket_rooms(data.id)
                .into_iter()
                .map(|r| r.to_string())
                .collect(),
            data: info.data,
        }
    }

    /// Applies another node's request here, and answers it when it wants an answer. Our
    /// own requests come back too: they were applied locally when sent, so are skipped.
    fn handle_request(self: Arc<Self>, request: Request) {
        if request.uid() == Some(self.cluster.uid()) {
            return;
        }
        let from = request.uid().map(str::to_string);
        let from = from.as_deref();
        match request {
            Request::RemoteJoin(r) => {
                self.local.add_sockets(Self::local_opts(&r.opts), r.rooms);
                let (cluster, nsp) = (self.cluster.clone(), self.local.path().to_string());
                tokio::spawn(async move { cluster.sync_rooms(&nsp).await });
            }
            Request::RemoteLeave(r) => {
                self.local.del_sockets(Self::local_opts(&r.opts), r.rooms);
            }
            Request::RemoteDisconnect(r) => {
                if let Err(e) = self.local.disconnect_socket(Self::local_opts(&r.opts)) {
                    debug!(failed = e.len(), "some sockets could not be disconnected");
                }
            }
            Request::RemoteFetch(r) => {
                let sockets = self.local.fetch_sockets(Self::local_opts(&r.opts));
                self.respond(
                    from,
                    Response::RemoteFetch(FetchResponse {
                        request_id: r.request_id,
                        sockets: sockets.iter().map(|s| self.fetched(s)).collect(),
                    }),
                );
            }
            Request::AllRooms(r) => {
                let rooms = self.local.rooms(Self::local_opts(&RequestOpts::default()));
                self.respond(
                    from,
                    Response::AllRooms(protocol::AllRoomsResponse {
                        request_id: r.request_id,
                        rooms: rooms.into_iter().map(|r| r.to_string()).collect(),
                    }),
                );
            }
            Request::Sockets(r) => {
                let opts = Self::local_opts(&RequestOpts {
                    rooms: r.rooms,
                    except: Vec::new(),
                });
                self.respond(
                    from,
                    Response::Sockets(protocol::SocketsResponse {
                        request_id: r.request_id,
                        sockets: self
                            .local
                            .sockets(opts)
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    }),
                );
            }
            Request::ServerSideEmit(r) => {
                self.cluster.dispatch_server_side(self.local.path(), r);
            }
            Request::Broadcast(r) => self.answer_broadcast_with_ack(r),
        }
    }

    /// Delivers another node's broadcast-with-ack here and reports back: how many
    /// clients got it, then each client's acknowledgement.
    fn answer_broadcast_with_ack(self: Arc<Self>, request: protocol::BroadcastRequest) {
        let message = BroadcastMessage::new(String::new(), request.packet, request.opts);
        let (packet, opts) =
            match convert::from_wire(&self.local.parser(), self.local.path(), &message) {
                Ok(p) => p,
                Err(e) => {
                    Stats::add(&self.stats().malformed, 1);
                    warn!(error = %e, "broadcast-with-ack request dropped");
                    return;
                }
            };
        let timeout = message.opts.flags.timeout.map(Duration::from_millis);
        let (stream, count) = self.local.broadcast_with_ack(packet, opts, timeout);
        let request_id = request.request_id;
        let from = request.uid;
        self.respond(
            from.as_deref(),
            Response::BroadcastClientCount(BroadcastClientCountResponse {
                request_id: request_id.clone(),
                client_count: u64::from(count),
            }),
        );
        if count == 0 {
            return;
        }
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut stream = std::pin::pin!(stream);
            while let Some((_sid, result)) = stream.next().await {
                let Ok(mut value) = result else { continue };
                let first: Option<crate::rmpv::Value> =
                    self.local.parser().decode_value(&mut value, false).ok();
                self.respond(
                    from.as_deref(),
                    Response::BroadcastAck(BroadcastAckResponse {
                        request_id: request_id.clone(),
                        packet: first,
                    }),
                );
            }
        });
    }
}

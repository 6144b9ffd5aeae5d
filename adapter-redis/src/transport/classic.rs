//! Classic mode, as `createAdapter` of `@socket.io/redis-adapter`: `PUBLISH`, a
//! `PSUBSCRIBE` per namespace for its broadcasts, `SUBSCRIBE` for requests and responses,
//! `PUBSUB NUMSUB` to count nodes.
//!
//! Messages stay encoded until a namespace needs them: a broadcast on a room channel is
//! decoded only by nodes with members in that room, and a response's shape is known only
//! from the pending request it names.

use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::PubsubInterface;
use tracing::debug;

use super::link::Link;
use super::publisher::Command;
use super::{BoxFuture, Inbound, InboundResponse, Payload, Receiver, Transport};
use crate::AdapterError;
use crate::config::RedisAdapterConfig;
use crate::protocol::{BroadcastMessage, Channel, Channels, Request, Response, parse_channel};
use crate::stats::Stats;
use crate::wire::{AdapterMode, Wire};

/// The classic-mode transport.
pub(crate) struct Classic {
    link: Link,
    prefix: String,
    uid: String,
    wire: Wire,
}

impl Classic {
    /// Connects for node `uid`.
    pub(crate) async fn connect(
        url: &str,
        config: &RedisAdapterConfig,
        uid: &str,
        stats: Arc<Stats>,
    ) -> Result<Self, AdapterError> {
        let link = Link::connect(url, config, uid, stats, Command::Publish).await?;
        Ok(Self {
            link,
            prefix: config.prefix.clone(),
            uid: uid.to_string(),
            wire: Wire::new(AdapterMode::Classic, config.prefix.clone(), uid),
        })
    }

    fn channels(&self, nsp: &str) -> Channels {
        Channels::new(self.prefix.clone(), nsp.to_string())
    }

    /// The request and response channels of `nsp`.
    fn plain_channels(&self, nsp: &str) -> Vec<String> {
        let channels = self.channels(nsp);
        vec![
            channels.request().to_string(),
            channels.response().to_string(),
            channels.specific_response(&self.uid),
        ]
    }
}

impl Transport for Classic {
    fn start(&self, receiver: Arc<dyn Receiver>) -> Vec<tokio::task::JoinHandle<()>> {
        let (prefix, uid) = (self.prefix.clone(), self.uid.clone());
        let mut tasks = self
            .link
            .spawn_receiving(receiver.clone(), move |channel, payload| {
                route(&prefix, &uid, receiver.as_ref(), channel, payload)
            });
        tasks.push(self.link.subscribe_liveness(false));
        tasks
    }

    fn join_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        let subscriber = self.link.subscriber.clone();
        let pattern = self.channels(nsp).broadcast_pattern();
        let channels = self.plain_channels(nsp);
        Box::pin(async move {
            subscriber.psubscribe(pattern).await?;
            subscriber.subscribe(channels).await?;
            Ok(())
        })
    }

    fn leave_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        let subscriber = self.link.subscriber.clone();
        let pattern = self.channels(nsp).broadcast_pattern();
        let channels = self.plain_channels(nsp);
        Box::pin(async move {
            subscriber.punsubscribe(pattern).await?;
            subscriber.unsubscribe(channels).await?;
            Ok(())
        })
    }

    fn broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
        volatile: bool,
    ) -> Result<(), AdapterError> {
        self.link.broadcast(&self.wire, nsp, message, volatile)
    }

    fn request(&self, nsp: &str, request: Request) -> Result<bool, AdapterError> {
        self.link.request(&self.wire, nsp, request)
    }

    fn respond(&self, nsp: &str, to: Option<&str>, response: Response) -> Result<(), AdapterError> {
        self.link.respond(&self.wire, nsp, to, response)
    }

    fn node_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        self.link
            .subscribers(self.channels(nsp).request().to_string(), false)
    }

    fn probe(&self) -> BoxFuture<'static, ()> {
        self.link.probe(false)
    }

    fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    fn client(&self) -> &Client {
        &self.link.client
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.link.close(timeout))
    }
}

/// Hands a message to the receiver by its channel: broadcasts and requests to their
/// namespace, answers addressed to everyone or to this node as responses.
fn route(prefix: &str, uid: &str, receiver: &dyn Receiver, channel: &str, payload: &[u8]) {
    let target = match parse_channel(prefix, channel) {
        Ok(t) => t,
        Err(e) => {
            debug!(channel, error = %e, "message on a foreign channel ignored");
            return;
        }
    };
    match target {
        Channel::Response { uid: to, .. } => {
            if to.is_none_or(|to| to == uid) {
                receiver.on_response(InboundResponse::Untyped(payload));
            }
        }
        Channel::Broadcast { nsp, room } => receiver.on_message(
            nsp,
            Inbound::Broadcast {
                room,
                message: Payload::Encoded(payload),
                offset: None,
            },
        ),
        Channel::Request { nsp } => {
            receiver.on_message(nsp, Inbound::Request(Payload::Encoded(payload)))
        }
    }
}

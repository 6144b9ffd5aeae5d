//! An in-process transport for unit tests: the nodes of one [`Bus`] reach each other
//! through channels instead of Redis, with Redis pub/sub's rules (a message reaches
//! every node subscribed to its namespace, the sender included, in the order sent;
//! answers reach the node they name, or everyone).
//!
//! It lets the adapter's broadcast / except / ack / fetch logic be tested across several
//! nodes in milliseconds; the integration tests still run on a real Redis.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Client;
use tokio::sync::mpsc;

use super::{BoxFuture, Inbound, InboundResponse, Payload, Receiver, Transport};
use crate::config::RedisAdapterConfig;
use crate::protocol::{BroadcastMessage, Request, Response};
use crate::stats::Stats;
use crate::{AdapterError, RedisCluster};

/// Nodes that hear each other.
#[derive(Default)]
pub(crate) struct Bus {
    members: Mutex<Vec<Arc<Member>>>,
}

struct Member {
    uid: String,
    nsps: Mutex<HashSet<String>>,
    tx: mpsc::UnboundedSender<Delivery>,
}

enum Delivery {
    Broadcast(String, BroadcastMessage),
    Request(String, Request),
    Response(Response),
    Alive,
}

impl Bus {
    /// A new, empty bus.
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A new node on this bus.
    pub(crate) fn join(self: &Arc<Self>, config: RedisAdapterConfig) -> RedisCluster {
        let uid = format!("node-{}", self.lock().len() + 1);
        let (tx, rx) = mpsc::unbounded_channel();
        let me = Arc::new(Member {
            uid: uid.clone(),
            nsps: Mutex::default(),
            tx,
        });
        self.lock().push(me.clone());
        let stub = Stub {
            bus: self.clone(),
            me,
            rx: Mutex::new(Some(rx)),
            client: Client::new(fred::types::config::Config::default(), None, None, None),
        };
        RedisCluster::start(uid, Box::new(stub), config, Arc::new(Stats::default()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Member>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends to every member `to` picks.
    fn send(&self, to: impl Fn(&Member) -> bool, delivery: impl Fn() -> Delivery) {
        for member in self.lock().iter().filter(|m| to(m)) {
            let _ = member.tx.send(delivery());
        }
    }

    fn serving(nsp: &str) -> impl Fn(&Member) -> bool + '_ {
        move |m| lock(&m.nsps).contains(nsp)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One node's end of a [`Bus`].
struct Stub {
    bus: Arc<Bus>,
    me: Arc<Member>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Delivery>>>,
    /// Never connected: nothing of the adapter uses it.
    client: Client,
}

impl Transport for Stub {
    fn start(&self, receiver: Arc<dyn Receiver>) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(mut rx) = lock(&self.rx).take() else {
            return Vec::new();
        };
        vec![tokio::spawn(async move {
            while let Some(delivery) = rx.recv().await {
                match delivery {
                    Delivery::Broadcast(nsp, message) => receiver.on_message(
                        &nsp,
                        Inbound::Broadcast {
                            room: None,
                            message: Payload::Decoded(message),
                            offset: None,
                        },
                    ),
                    Delivery::Request(nsp, request) => {
                        receiver.on_message(&nsp, Inbound::Request(Payload::Decoded(request)))
                    }
                    Delivery::Response(response) => {
                        receiver.on_response(InboundResponse::Typed(response))
                    }
                    Delivery::Alive => receiver.on_alive(),
                }
            }
        })]
    }

    fn join_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        lock(&self.me.nsps).insert(nsp.to_string());
        Box::pin(async { Ok(()) })
    }

    fn leave_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        lock(&self.me.nsps).remove(nsp);
        Box::pin(async { Ok(()) })
    }

    fn broadcast(
        &self,
        nsp: &str,
        message: &BroadcastMessage,
        _volatile: bool,
    ) -> Result<(), AdapterError> {
        self.bus.send(Bus::serving(nsp), || {
            Delivery::Broadcast(nsp.to_string(), message.clone())
        });
        Ok(())
    }

    fn request(&self, nsp: &str, request: Request) -> Result<bool, AdapterError> {
        self.bus.send(Bus::serving(nsp), || {
            Delivery::Request(nsp.to_string(), request.clone())
        });
        Ok(true)
    }

    fn respond(
        &self,
        _nsp: &str,
        to: Option<&str>,
        response: Response,
    ) -> Result<(), AdapterError> {
        self.bus.send(
            |m| to.is_none_or(|to| to == m.uid),
            || Delivery::Response(response.clone()),
        );
        Ok(())
    }

    fn node_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        let count = self
            .bus
            .lock()
            .iter()
            .filter(|m| Bus::serving(nsp)(m))
            .count();
        Box::pin(async move { Ok(count) })
    }

    fn probe(&self) -> BoxFuture<'static, ()> {
        let _ = self.me.tx.send(Delivery::Alive);
        Box::pin(async {})
    }

    fn is_connected(&self) -> bool {
        true
    }

    fn client(&self) -> &Client {
        &self.client
    }

    fn close(&self, _timeout: Duration) -> BoxFuture<'_, ()> {
        lock(&self.me.nsps).clear();
        Box::pin(async {})
    }
}

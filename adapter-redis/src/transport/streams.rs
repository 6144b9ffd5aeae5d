//! Streams mode, as `@socket.io/redis-streams-adapter` 0.3: broadcasts and room
//! operations are entries of a Redis stream (`XADD … MAXLEN ~`), which every node reads
//! from the last entry it saw (`XREAD BLOCK`), so a node whose connection drops resumes
//! where it stopped instead of missing what was published meanwhile. Broadcasts with
//! acks, server-side emits, fetches and every answer are ephemeral: MessagePack by
//! `PUBLISH` on the namespace's public channel `<prefix>#<nsp>#` and each node's own
//! `<prefix>#<nsp>#<uid>#`. Nodes are counted with `PUBSUB NUMSUB` of the public channel.
//!
//! Each stream has its own reader connection, since `XREAD BLOCK` holds its connection.
//! A reader starts at the stream's last entry when the node starts and keeps its place
//! across reconnects. When a gap outlived the stream (entries trimmed by `MAXLEN` before
//! this node read them), the entries it can no longer deliver are counted
//! (`stream_entries_lost`) and logged, never skipped silently.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface, StreamsInterface};
use fred::types::Value as RedisValue;
use tokio::sync::broadcast::error::TryRecvError;
use tracing::{debug, info, warn};

use super::link::Link;
use super::publisher::Command;
use super::{BoxFuture, Inbound, InboundResponse, Payload, Receiver, Transport};
use crate::AdapterError;
use crate::config::RedisAdapterConfig;
use crate::protocol::sharded::{ShardedChannel, ShardedChannels, parse_sharded_channel};
use crate::protocol::streams::{self, StreamsOptions, compare_stream_ids};
use crate::protocol::{BroadcastMessage, Request, Response, ShardedMessage};
use crate::stats::Stats;
use crate::wire::{AdapterMode, Incoming, Wire};

/// The streams-mode transport.
pub(crate) struct Streams {
    link: Link,
    prefix: String,
    uid: String,
    wire: Wire,
    options: StreamsOptions,
    /// Connection state recovery: this node's own broadcasts come back through the
    /// stream and are delivered then, with their offsets.
    read_back: bool,
    /// One reader connection per stream.
    readers: Vec<Reader>,
}

/// A stream and the connection that reads it.
struct Reader {
    stream: String,
    client: Client,
    /// Set once the reader has found its starting place.
    started: Arc<AtomicBool>,
    /// The last entry handed to the receiver (or where reading started).
    position: Arc<Mutex<String>>,
}

impl Streams {
    /// Connects for node `uid`: the shared link, and one reader connection per stream.
    pub(crate) async fn connect(
        url: &str,
        config: &RedisAdapterConfig,
        uid: &str,
        stats: Arc<Stats>,
    ) -> Result<Self, AdapterError> {
        let link = Link::connect(url, config, uid, stats, Command::Publish).await?;
        let options: &StreamsOptions = &config.streams;
        let mut readers = Vec::new();
        for stream in options.streams() {
            let client = reader_client(&link.client)?;
            client.init().await?;
            link.follow_failovers(client.clone());
            readers.push(Reader {
                stream,
                client,
                started: Arc::default(),
                position: Arc::new(Mutex::new("0-0".to_string())),
            });
        }
        Ok(Self {
            link,
            prefix: config.prefix.clone(),
            uid: uid.to_string(),
            wire: Wire::new(AdapterMode::Streams, config.prefix.clone(), uid)
                .with_streams(options.clone()),
            options: options.clone(),
            read_back: config.recovery.is_some(),
            readers,
        })
    }

    fn channels(&self, nsp: &str) -> ShardedChannels {
        ShardedChannels::new(self.prefix.clone(), nsp.to_string())
    }

    /// The public channel of `nsp` and this node's own.
    fn namespace_channels(&self, nsp: &str) -> Vec<String> {
        let channels = self.channels(nsp);
        vec![channels.main().to_string(), channels.response(&self.uid)]
    }
}

impl Transport for Streams {
    fn start(&self, receiver: Arc<dyn Receiver>) -> Vec<tokio::task::JoinHandle<()>> {
        let (prefix, uid, stats) = (
            self.prefix.clone(),
            self.uid.clone(),
            self.link.stats.clone(),
        );
        let pubsub_receiver = receiver.clone();
        let mut tasks = self
            .link
            .spawn_receiving(receiver.clone(), move |channel, payload| {
                route_pubsub(
                    &prefix,
                    &uid,
                    &stats,
                    pubsub_receiver.as_ref(),
                    channel,
                    payload,
                )
            });
        for reader in &self.readers {
            tasks.push(tokio::spawn(read_stream(
                reader.client.clone(),
                reader.stream.clone(),
                reader.started.clone(),
                reader.position.clone(),
                ReadBack(self.read_back.then(|| self.uid.clone())),
                self.uid.clone(),
                receiver.clone(),
                self.link.stats.clone(),
            )));
        }
        tasks.push(self.link.subscribe_liveness(false));
        tasks
    }

    fn join_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        let subscriber = self.link.subscriber.clone();
        let channels = self.namespace_channels(nsp);
        Box::pin(async move { Ok(subscriber.subscribe(channels).await?) })
    }

    fn leave_namespace(&self, nsp: &str) -> BoxFuture<'static, Result<(), AdapterError>> {
        let subscriber = self.link.subscriber.clone();
        let channels = self.namespace_channels(nsp);
        Box::pin(async move { Ok(subscriber.unsubscribe(channels).await?) })
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
            .subscribers(self.channels(nsp).main().to_string(), false)
    }

    fn probe(&self) -> BoxFuture<'static, ()> {
        self.link.probe(false)
    }

    fn is_connected(&self) -> bool {
        self.link.is_connected()
            && self
                .readers
                .iter()
                .all(|r| r.client.is_connected() && r.started.load(Ordering::Acquire))
    }

    fn client(&self) -> &Client {
        &self.link.client
    }

    fn close(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.link.close(timeout).await;
            for reader in &self.readers {
                let _ = reader.client.quit().await;
            }
        })
    }

    fn has_log(&self) -> bool {
        true
    }

    fn log_position(&self, nsp: &str) -> Option<String> {
        let stream = self.options.stream_for(nsp);
        let reader = self.readers.iter().find(|r| r.stream == stream)?;
        Some(crate::cluster::lock(&reader.position).clone())
    }

    fn log_holds(&self, nsp: &str, after: &str) -> BoxFuture<'static, Result<bool, AdapterError>> {
        let (client, stream, after) = (
            self.link.client.clone(),
            self.options.stream_for(nsp),
            after.to_string(),
        );
        Box::pin(async move {
            if after == "0-0" {
                // the stream was empty then: nothing may have been trimmed since
                return Ok(match stream_info(&client, &stream).await? {
                    None => true,
                    Some(info) => info.added.is_some_and(|added| added == info.length),
                });
            }
            let there: RedisValue = client
                .xrange(stream.as_str(), after.as_str(), after.as_str(), Some(1))
                .await?;
            Ok(!entries_of_range(there).is_empty())
        })
    }

    fn log_after(
        &self,
        nsp: &str,
        after: &str,
    ) -> BoxFuture<'static, Result<Vec<(String, BroadcastMessage)>, AdapterError>> {
        let (client, stream, nsp, mut after) = (
            self.link.client.clone(),
            self.options.stream_for(nsp),
            nsp.to_string(),
            after.to_string(),
        );
        Box::pin(async move {
            let mut out = Vec::new();
            loop {
                let page: RedisValue = client
                    .xrange(
                        stream.as_str(),
                        format!("({after}").as_str(),
                        "+",
                        Some(LOG_PAGE),
                    )
                    .await?;
                let entries = entries_of_range(page);
                let full = entries.len() as u64 >= LOG_PAGE;
                for (id, fields) in entries {
                    after.clone_from(&id);
                    let parsed =
                        streams::message_from_entry(fields.iter().map(|(k, v)| (&k[..], &v[..])));
                    if let Ok(Some(message)) = parsed
                        && message.nsp == nsp
                        && let Some(Incoming::Broadcast(message)) = crate::wire::incoming(message)
                    {
                        out.push((id, message));
                    }
                }
                if !full {
                    return Ok(out);
                }
            }
        })
    }
}

/// Entries read per `XRANGE` when replaying a log.
const LOG_PAGE: u64 = 1_000;

/// Connection state recovery: this node's uid, whose broadcasts are delivered when read
/// back from the stream (they were not delivered when sent).
struct ReadBack(Option<String>);

/// An ephemeral message or an answer, by pub/sub.
fn route_pubsub(
    prefix: &str,
    uid: &str,
    stats: &Stats,
    receiver: &dyn Receiver,
    channel: &str,
    payload: &[u8],
) {
    match parse_sharded_channel(prefix, channel, uid) {
        Ok(ShardedChannel::Main { .. } | ShardedChannel::Response { .. }) => {}
        Ok(ShardedChannel::Room { .. }) | Err(_) => {
            debug!(channel, "message on a foreign channel ignored");
            return;
        }
    }
    match streams::decode_pubsub(payload) {
        Ok(message) => deliver(uid, receiver, message, None),
        Err(e) => {
            Stats::add(&stats.malformed, 1);
            warn!(channel, error = %e, "malformed streams-mode message dropped");
        }
    }
}

/// Hands a decoded message to the receiver as what its type says it is; a node's own
/// messages are skipped (applied locally when sent), except its broadcasts read back from
/// the stream with recovery on. `offset`: the stream entry's id.
fn deliver(uid: &str, receiver: &dyn Receiver, message: ShardedMessage, offset: Option<&str>) {
    if message.uid == uid {
        return;
    }
    let nsp = message.nsp.clone();
    match crate::wire::incoming(message) {
        Some(Incoming::Broadcast(message)) => receiver.on_message(
            &nsp,
            Inbound::Broadcast {
                room: None,
                message: Payload::Decoded(message),
                offset,
            },
        ),
        Some(Incoming::Request(request)) => {
            receiver.on_message(&nsp, Inbound::Request(Payload::Decoded(request)))
        }
        Some(Incoming::Response(response)) => {
            receiver.on_response(InboundResponse::Typed(response))
        }
        None => {} // heartbeats, adapter close
    }
}

/// Reads `stream` for as long as the node runs: from its last entry when the node
/// started, then from the last entry read, whatever happens to the connection.
#[allow(clippy::too_many_arguments)]
async fn read_stream(
    client: Client,
    stream: String,
    started: Arc<AtomicBool>,
    position: Arc<Mutex<String>>,
    read_back: ReadBack,
    uid: String,
    receiver: Arc<dyn Receiver>,
    stats: Arc<Stats>,
) {
    let mut cursor = loop {
        match Cursor::at_end(&client, &stream).await {
            Ok(cursor) => break cursor,
            Err(e) => {
                warn!(stream, error = %e, "cannot read the stream's end; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    crate::cluster::lock(&position).clone_from(&cursor.last);
    started.store(true, Ordering::Release);
    info!(stream, from = %cursor.last, "reading the stream");
    let mut reconnects = client.reconnect_rx();
    let mut check_gap = false;
    loop {
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = reconnects.try_recv() {
            check_gap = true;
        }
        if check_gap && let Some(lost) = cursor.lost_since_last(&client, &stream).await {
            Stats::add(&stats.stream_entries_lost, lost);
            warn!(stream, lost, after = %cursor.last, "stream entries trimmed before this node read them: their broadcasts are lost");
        }
        let reply: Result<RedisValue, _> = client
            .xread(
                Some(streams::DEFAULT_READ_COUNT),
                Some(streams::DEFAULT_BLOCK_MS),
                stream.as_str(),
                cursor.last.as_str(),
            )
            .await;
        let entries = match reply {
            Ok(reply) => entries_of(reply),
            Err(e) => {
                debug!(stream, error = %e, "stream read failed; resuming from the last entry");
                check_gap = true;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A full batch means this node is behind: entries may have been trimmed.
        check_gap = entries.len() as u64 >= streams::DEFAULT_READ_COUNT;
        for (id, fields) in entries {
            match streams::message_from_entry(fields.iter().map(|(k, v)| (&k[..], &v[..]))) {
                Ok(Some(message)) => {
                    // with recovery on, our own broadcasts are delivered now, not when sent
                    let own_delivered_now = read_back.0.as_deref() == Some(message.uid.as_str())
                        && matches!(message.body, crate::protocol::ShardedBody::Broadcast(_));
                    let from = if own_delivered_now { "" } else { uid.as_str() };
                    deliver(from, receiver.as_ref(), message, Some(&id))
                }
                Ok(None) => {} // no namespace: not a message (Node skips it too)
                Err(e) => {
                    Stats::add(&stats.malformed, 1);
                    warn!(stream, error = %e, "malformed stream entry dropped");
                }
            }
            // after delivery: a position names an entry every local socket has been
            // handed (or that came before this node read the stream)
            crate::cluster::lock(&position).clone_from(&id);
            cursor.read(id);
        }
    }
}

/// Where a reader is in its stream.
struct Cursor {
    /// The last entry read (or the stream's last id when reading started).
    last: String,
    /// The stream's `entries-added` when reading started (and after a rebase), when
    /// Redis reports it (7.0+).
    added_at_start: Option<u64>,
    /// Entries read (or known lost) since.
    read: u64,
}

impl Cursor {
    /// At the stream's current end (`0-0` when it does not exist yet).
    async fn at_end(client: &Client, stream: &str) -> Result<Self, fred::error::Error> {
        Ok(match stream_info(client, stream).await? {
            Some(info) => Self {
                last: info.last_generated.unwrap_or_else(|| "0-0".into()),
                added_at_start: info.added,
                read: 0,
            },
            None => Self {
                last: "0-0".into(),
                added_at_start: Some(0),
                read: 0,
            },
        })
    }

    fn read(&mut self, id: String) {
        self.last = id;
        self.read += 1;
    }

    /// After a break in reading: how many entries were added after the last one read but
    /// trimmed before they could be read (`None` when none, or when Redis cannot tell).
    async fn lost_since_last(&mut self, client: &Client, stream: &str) -> Option<u64> {
        let still_there: RedisValue = client
            .xrange(stream, self.last.as_str(), self.last.as_str(), Some(1))
            .await
            .ok()?;
        if !entries_of_range(still_there).is_empty() {
            return None; // nothing after it can be gone: trimming takes the oldest first
        }
        let info = stream_info(client, stream).await.ok()??;
        if info
            .first
            .as_deref()
            .is_some_and(|first| !compare_stream_ids(first, &self.last).is_gt())
        {
            return None; // entries were deleted, not trimmed past us
        }
        let (added, start) = (info.added?, self.added_at_start?);
        // Everything added since reading started was read, is still there (all of it
        // after the last entry read), or is lost.
        let Some(lost) = added
            .checked_sub(start)
            .and_then(|n| n.checked_sub(self.read + info.length))
        else {
            // fewer entries than this node already knows of: the stream is a new one
            // (Redis restarted without persistence, or the key was deleted)
            warn!(
                stream,
                "the stream was recreated: entries of the old one that were not read are gone, uncounted"
            );
            self.added_at_start = Some(added - info.length.min(added));
            self.read = 0;
            return None;
        };
        self.read += lost; // counted once: from now on they count as consumed
        (lost > 0).then_some(lost)
    }
}

/// What `XINFO STREAM` says of a stream.
struct StreamInfo {
    length: u64,
    /// `entries-added` (Redis 7.0+).
    added: Option<u64>,
    last_generated: Option<String>,
    /// The first entry's id, if any.
    first: Option<String>,
}

/// `XINFO STREAM` of `stream`; `None` when it does not exist.
async fn stream_info(
    client: &Client,
    stream: &str,
) -> Result<Option<StreamInfo>, fred::error::Error> {
    let info: RedisValue = match client.xinfo_stream(stream, false, None).await {
        Ok(info) => info,
        Err(e) if e.details().contains("no such key") => return Ok(None),
        Err(e) => return Err(e),
    };
    let pairs: Vec<(String, RedisValue)> = match info {
        RedisValue::Array(items) => items
            .chunks(2)
            .filter(|kv| kv.len() == 2)
            .filter_map(|kv| Some((kv[0].as_string()?, kv[1].clone())))
            .collect(),
        RedisValue::Map(map) => map
            .inner()
            .into_iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
            .collect(),
        _ => return Ok(None),
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let first = get("first-entry")
        .and_then(|e| {
            entries_of_range(RedisValue::Array(vec![e]))
                .into_iter()
                .next()
        })
        .map(|(id, _)| id);
    Ok(Some(StreamInfo {
        length: get("length").and_then(|v| v.as_u64()).unwrap_or(0),
        added: get("entries-added").and_then(|v| v.as_u64()),
        last_generated: get("last-generated-id").and_then(|v| v.as_string()),
        first,
    }))
}

/// A connection of its own for a stream's blocking reads: a read cut by a broken
/// connection fails instead of being sent again after the reconnect (the reader checks
/// for a gap first), and a connection silent for longer than a read blocks is replaced.
fn reader_client(like: &Client) -> Result<Client, AdapterError> {
    let mut builder = fred::types::Builder::from_config(like.client_config());
    builder
        .set_policy(fred::types::config::ReconnectPolicy::new_exponential(
            0, 100, 5_000, 2,
        ))
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.internal_command_timeout = Duration::from_secs(5);
            c.max_command_attempts = 1;
            c.unresponsive = fred::types::config::UnresponsiveConfig {
                max_timeout: Some(Duration::from_millis(streams::DEFAULT_BLOCK_MS + 5_000)),
                interval: Duration::from_secs(1),
            };
        });
    builder.build().map_err(AdapterError::config)
}

/// A stream entry: its id and its fields in order.
type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The entries of an `XREAD` reply for one stream (`[[stream, [[id, [k, v, ..]], ..]]]`).
fn entries_of(reply: RedisValue) -> Vec<Entry> {
    match reply {
        RedisValue::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                RedisValue::Array(mut pair) if pair.len() == 2 => entries_of_range(pair.remove(1)),
                _ => Vec::new(),
            })
            .collect(),
        RedisValue::Map(map) => map
            .inner()
            .into_values()
            .flat_map(entries_of_range)
            .collect(),
        _ => Vec::new(),
    }
}

/// The entries of an `XRANGE` reply (`[[id, [k, v, ..]], ..]`). Entries whose id is not a
/// string are skipped; fields are kept as bytes, whatever they hold.
fn entries_of_range(reply: RedisValue) -> Vec<Entry> {
    let RedisValue::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let RedisValue::Array(mut entry) = entry else {
                return None;
            };
            if entry.len() != 2 {
                return None;
            }
            let fields = entry.pop()?;
            let id = entry.pop()?.as_string()?;
            let fields = match fields {
                RedisValue::Array(values) => values
                    .chunks(2)
                    .filter(|kv| kv.len() == 2)
                    .map(|kv| (bytes_of(&kv[0]), bytes_of(&kv[1])))
                    .collect(),
                _ => Vec::new(),
            };
            Some((id, fields))
        })
        .collect()
}

fn bytes_of(value: &RedisValue) -> Vec<u8> {
    match value {
        RedisValue::Bytes(b) => b.to_vec(),
        RedisValue::String(s) => s.as_bytes().to_vec(),
        other => other.as_string().unwrap_or_default().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xread_replies_are_read_whatever_the_field_bytes() {
        let entry = |id: &str, fields: Vec<RedisValue>| {
            RedisValue::Array(vec![id.into(), RedisValue::Array(fields)])
        };
        let reply = RedisValue::Array(vec![RedisValue::Array(vec![
            "socket.io".into(),
            RedisValue::Array(vec![
                entry(
                    "1-0",
                    vec!["uid".into(), "a".into(), "nsp".into(), "/".into()],
                ),
                entry(
                    "1-1",
                    vec![
                        RedisValue::Bytes(vec![0xff].into()),
                        "x".into(),
                        "odd".into(),
                    ],
                ),
                RedisValue::Integer(3),
            ]),
        ])]);
        let entries = entries_of(reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "1-0");
        assert_eq!(entries[0].1[1], (b"nsp".to_vec(), b"/".to_vec()));
        assert_eq!(entries[1].1, vec![(vec![0xff], b"x".to_vec())]);
    }
}

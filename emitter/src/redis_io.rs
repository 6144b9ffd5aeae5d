//! The emitter's Redis commands, whatever the mode: sending, listening for answers and
//! counting nodes. The only module of the emitter whose commands depend on the mode; what is
//! sent, and how answers are read, is [`Wire`]'s business.
//!
//! | mode | send | answers | nodes |
//! |---|---|---|---|
//! | classic | `PUBLISH` | `SUBSCRIBE` | `PUBSUB NUMSUB <request channel>` |
//! | sharded | `SPUBLISH` | `SSUBSCRIBE` | `PUBSUB SHARDNUMSUB <main channel>` |
//! | streams | `XADD` or `PUBLISH` | `SUBSCRIBE` | `PUBSUB NUMSUB <public channel>` |

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, PubsubInterface, StreamsInterface};
use fred::types::{Builder, Value as RedisValue};
use sio_protocol::{Outgoing, Wire};

use crate::EmitError;

/// Sends one message: `PUBLISH` (`SPUBLISH` in sharded mode) of a payload on its channel, or
/// `XADD <stream> MAXLEN ~ <max_len> * <fields>` of a stream entry.
pub(crate) async fn send(client: &Client, wire: &Wire, message: Outgoing) -> Result<(), EmitError> {
    match message {
        Outgoing::Publish { channel, payload } => {
            let payload = RedisValue::Bytes(payload.into());
            let _: i64 = if wire.is_sharded() {
                client.spublish(channel, payload).await?
            } else {
                client.publish(channel, payload).await?
            };
        }
        Outgoing::Append {
            stream,
            max_len,
            fields,
        } => {
            // The threshold as text: fred would write a u64 through an i64.
            let cap = ("MAXLEN", "~", max_len.to_string());
            let _: RedisValue = client.xadd(stream, false, cap, "*", fields).await?;
        }
    }
    Ok(())
}

/// A new connection subscribed to the channel answers to this emitter arrive on in `nsp`.
pub(crate) async fn listen_for_answers(
    client: &Client,
    wire: &Wire,
    nsp: &str,
) -> Result<SubscriberClient, EmitError> {
    let subscriber: SubscriberClient =
        Builder::from_config(client.client_config()).build_subscriber_client()?;
    subscriber.init().await?;
    let channel = wire.response_channel(nsp);
    if wire.is_sharded() {
        subscriber.ssubscribe(channel).await?;
    } else {
        subscriber.subscribe(channel).await?;
    }
    Ok(subscriber)
}

/// How many nodes serve `nsp`: `PUBSUB NUMSUB` of its request channel, `PUBSUB SHARDNUMSUB`
/// of its main channel in sharded mode, `PUBSUB NUMSUB` of its public channel in streams mode.
pub(crate) async fn node_count(
    client: &Client,
    wire: &Wire,
    nsp: &str,
) -> Result<usize, EmitError> {
    let main = || {
        sio_protocol::ShardedChannels::new(wire.prefix(), nsp)
            .main()
            .to_string()
    };
    let reply: Vec<RedisValue> = if wire.is_sharded() {
        client.pubsub_shardnumsub(main()).await?
    } else if wire.is_streams() {
        client.pubsub_numsub(main()).await?
    } else {
        client
            .pubsub_numsub(
                sio_protocol::Channels::new(wire.prefix(), nsp)
                    .request()
                    .to_string(),
            )
            .await?
    };
    Ok(reply.get(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize)
}

//! The emitter's Redis commands, whatever the mode: publishing, listening for answers
//! and counting nodes. The only module of the emitter whose commands depend on the mode;
//! what is sent, and how answers are read, is [`Wire`]'s business.

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, PubsubInterface};
use fred::types::{Builder, Value as RedisValue};
use sio_protocol::Wire;

use crate::EmitError;

/// Publishes `payload` on `channel` (`PUBLISH`, or `SPUBLISH` in sharded mode).
pub(crate) async fn publish(
    client: &Client,
    wire: &Wire,
    channel: String,
    payload: Vec<u8>,
) -> Result<(), EmitError> {
    let payload = RedisValue::Bytes(payload.into());
    let _: i64 = if wire.is_sharded() {
        client.spublish(channel, payload).await?
    } else {
        client.publish(channel, payload).await?
    };
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

/// How many nodes serve `nsp`: `PUBSUB NUMSUB` of its request channel, or `PUBSUB
/// SHARDNUMSUB` of its main channel in sharded mode.
pub(crate) async fn node_count(
    client: &Client,
    wire: &Wire,
    nsp: &str,
) -> Result<usize, EmitError> {
    let reply: Vec<RedisValue> = if wire.is_sharded() {
        client
            .pubsub_shardnumsub(
                sio_protocol::ShardedChannels::new(wire.prefix(), nsp)
                    .main()
                    .to_string(),
            )
            .await?
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

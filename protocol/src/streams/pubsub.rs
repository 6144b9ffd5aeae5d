//! Streams mode's pub/sub payloads, and MessagePack as `@msgpack/msgpack` 2.8 writes it (see
//! [`encode_pubsub`] for how that differs from notepack.io).
//!
//! Decoding goes through [`crate::msgpack::decode`], which reads everything `@msgpack/msgpack`
//! writes. It is more lenient in a few places `@msgpack/msgpack` throws (map keys that are not
//! strings or numbers, the key `__proto__`), and it reads extension type 0 as notepack 2.x's
//! legacy types where `@msgpack/msgpack` returns an `ExtData`.

use rmpv::Value;

use crate::error::ProtocolError;
use crate::msgpack;
use crate::sharded::{ShardedBody, ShardedMessage};
use crate::value;

/// `@msgpack/msgpack`'s default `maxDepth`: `encode` throws on a value nested deeper, counting
/// the value passed to it as level 1.
pub const JS_MSGPACK_MAX_DEPTH: usize = 100;

/// `Number.MAX_SAFE_INTEGER`, 2^53 − 1.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The payload the Node streams adapter `PUBLISH`es for `message`: `@msgpack/msgpack`'s
/// `encode` of the JavaScript object `{type, data, uid, nsp}` (no `data` for the types without
/// one), for the ephemeral messages ([`super::is_ephemeral`]) on the main channel and for every
/// response on the requester's channel.
///
/// `@msgpack/msgpack` 2.8 and notepack.io write some JavaScript values differently:
///
/// - **numbers**: `@msgpack/msgpack` writes an integer only for a *safe* integer
///   (`Number.isSafeInteger`, |n| ≤ 2^53 − 1) and float 64 for every other number, so `2**53`
///   and `2**63` are float 64 here where notepack writes uint 64 (and whole numbers beyond 64
///   bits, which notepack writes modulo 2^64, are float 64 too);
/// - **`undefined` properties**: written as a key with nil (`ignoreUndefined` is off), where
///   notepack leaves the key out; this shows in the responses `{requestId, packet}` of an
///   acknowledgement without arguments, and in data a Node peer forwards;
/// - **nesting**: any value deeper than [`JS_MSGPACK_MAX_DEPTH`] (the message being level 1)
///   makes `encode` throw, and so an error here.
///
/// They agree on the rest: the smallest integer, string (with str 8), binary, array, map and
/// fixext / ext header, float 64 for non-integers (never float 32), keys in insertion order,
/// `Date`s as timestamp extensions (type -1) and `Buffer`s as bin. Map keys are written as the
/// JavaScript property names they would be (`1` as `"1"`).
///
/// ```
/// use sio_protocol::streams::{decode_pubsub, encode_pubsub};
/// use sio_protocol::{ShardedBody, ShardedMessage, ShardedServerSideEmit};
///
/// let message = ShardedMessage::new("0123456789abcdef", "/", ShardedBody::ServerSideEmit(
///     ShardedServerSideEmit { request_id: None, packet: vec!["hello".into()] },
/// ));
/// let bytes = encode_pubsub(&message)?;
/// assert_eq!(bytes[0], 0x84); // a map of 4: type, data, uid, nsp
/// assert_eq!(decode_pubsub(&bytes)?, message);
/// # Ok::<(), sio_protocol::ProtocolError>(())
/// ```
pub fn encode_pubsub(message: &ShardedMessage) -> Result<Vec<u8>, ProtocolError> {
    let mut entries = vec![(
        Value::from("type"),
        Value::from(message.message_type().code()),
    )];
    if let Some(data) = js_data(&message.body)? {
        entries.push((Value::from("data"), data));
    }
    entries.push((Value::from("uid"), Value::from(message.uid.as_str())));
    entries.push((Value::from("nsp"), Value::from(message.nsp.as_str())));
    encode_js(&Value::Map(entries))
}

/// Reads a payload received on a streams-mode channel: MessagePack only, as the Node adapter
/// decodes it (a JSON payload is an error). Tolerant like [`ShardedMessage::decode`], whose
/// rules it shares.
pub fn decode_pubsub(bytes: &[u8]) -> Result<ShardedMessage, ProtocolError> {
    if bytes.is_empty() {
        return Err(ProtocolError::EmptyPayload);
    }
    ShardedMessage::from_value(&msgpack::decode(bytes)?)
}

/// The message's `data` as the JavaScript object the Node adapter builds: like
/// [`ShardedBody`]'s JSON form, plus `packet: undefined` in the two acknowledgement responses
/// when there is no argument (`@msgpack/msgpack` writes that key, with nil).
pub(crate) fn js_data(body: &ShardedBody) -> Result<Option<Value>, ProtocolError> {
    let mut data = body.data_value()?;
    let undefined_packet = match body {
        ShardedBody::ServerSideEmitResponse(r) => r.packet.is_none(),
        ShardedBody::BroadcastAck(r) => r.packet.is_none(),
        _ => false,
    };
    if undefined_packet && let Some(Value::Map(entries)) = &mut data {
        entries.push((Value::from("packet"), Value::Nil));
    }
    Ok(data)
}

/// Writes `value` the way `@msgpack/msgpack` 2.8's `encode` writes the equivalent JavaScript
/// value (see [`encode_pubsub`]).
pub(crate) fn encode_js(value: &Value) -> Result<Vec<u8>, ProtocolError> {
    let value = as_js(value, 1)?;
    let mut out = Vec::with_capacity(64);
    // Writing to a `Vec` does not fail; mapped rather than unwrapped all the same.
    rmpv::encode::write_value(&mut out, &value)
        .map_err(|_| ProtocolError::Encode("write failed"))?;
    Ok(out)
}

/// A copy of `value` as the JavaScript value would be written at nesting `depth`: JS numbers, map
/// keys as property names, valid UTF-8; errors where `@msgpack/msgpack` throws (too deep, a
/// length of 2^32 or more) or rmpv would truncate.
fn as_js(value: &Value, depth: usize) -> Result<Value, ProtocolError> {
    if depth > JS_MSGPACK_MAX_DEPTH {
        return Err(ProtocolError::Encode(
            "value nests deeper than @msgpack/msgpack's maxDepth (100)",
        ));
    }
    let len = match value {
        Value::String(s) => s.as_bytes().len(),
        Value::Binary(bytes) | Value::Ext(_, bytes) => bytes.len(),
        Value::Array(items) => items.len(),
        Value::Map(entries) => entries.len(),
        _ => 0,
    };
    if u32::try_from(len).is_err() {
        return Err(ProtocolError::Encode("length over 2^32"));
    }
    Ok(match value {
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) if u <= MAX_SAFE_INTEGER => value.clone(),
            (Some(u), _) => Value::F64(u as f64),
            (None, Some(i)) if i.unsigned_abs() <= MAX_SAFE_INTEGER => value.clone(),
            (None, Some(i)) => Value::F64(i as f64),
            (None, None) => Value::F64(f64::NAN), // rmpv integers are u64 or i64
        },
        Value::F32(f) => js_number(f64::from(*f)),
        Value::F64(f) => js_number(*f),
        Value::String(s) if s.is_err() => {
            Value::from(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| as_js(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(key, item)| {
                    let key = match key {
                        Value::String(s) if s.is_str() => key.clone(),
                        other => Value::from(value::js_property_name(other)),
                    };
                    Ok((key, as_js(item, depth + 1)?))
                })
                .collect::<Result<_, ProtocolError>>()?,
        ),
        other => other.clone(),
    })
}

/// How `@msgpack/msgpack` writes the JS number `f`: a safe integer as an integer (`-0` as 0),
/// anything else as float 64 (JavaScript's one NaN for any NaN).
fn js_number(f: f64) -> Value {
    if f.is_nan() {
        Value::F64(f64::NAN)
    } else if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 {
        // Exact: a whole number within 2^53. `-0.0 as i64` is 0.
        Value::from(f as i64)
    } else {
        Value::F64(f) // also ±Infinity, whose fraction is NaN
    }
}

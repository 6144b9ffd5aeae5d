//! Streams mode's stream entries: the fields of an `XADD`, and reading them back.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::pubsub::{encode_js, js_data};
use crate::error::ProtocolError;
use crate::msgpack;
use crate::sharded::{MessageType, Scan, ShardedBody, ShardedMessage, dates_to_iso};
use crate::value;

/// The entry field holding the sender's uid.
pub const FIELD_UID: &str = "uid";
/// The entry field holding the namespace; entries without it are skipped.
pub const FIELD_NSP: &str = "nsp";
/// The entry field holding the message type, in decimal (`"3"`).
pub const FIELD_TYPE: &str = "type";
/// The entry field holding the data: JSON text, or base64 of MessagePack.
pub const FIELD_DATA: &str = "data";

/// Decimal digits a `type` field may have: more is not a message type.
const MAX_TYPE_DIGITS: usize = 20;

/// Base64 as Node's `Buffer.from(text, "base64")` reads the adapter's own output: the standard
/// alphabet, with or without padding.
pub(super) const BASE64_READ: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The fields the Node streams adapter writes with `XADD <stream> MAXLEN ~ <maxLen> *` for
/// `message`, in its order: `uid`, `nsp`, `type` (decimal), and `data` unless the type has none.
///
/// `data` is `JSON.stringify(message.data)`, except for the five types whose data may hold
/// binaries ([`MessageType::may_contain_binary`]) when it does hold one: then it is the base64
/// (standard, padded) of `@msgpack/msgpack`'s encoding of the data (see [`encode_pubsub`](super::encode_pubsub) for
/// how that differs from notepack). The JSON form follows [`ShardedMessage::encode`]'s: dates
/// (timestamp extensions) as ISO-8601 strings, an absent `packet` left out, numbers formatted by
/// `serde_json`.
///
/// ```
/// use sio_protocol::streams::entry_fields;
/// use sio_protocol::{BroadcastOptions, Packet, ShardedBody, ShardedBroadcast, ShardedMessage};
///
/// let message = ShardedMessage::new("0123456789abcdef", "/", ShardedBody::Broadcast(
///     ShardedBroadcast {
///         packet: Packet::event("/", "news", ["hi".into()]),
///         request_id: None,
///         opts: BroadcastOptions::to_rooms(["sport"]),
///     },
/// ));
/// let fields = entry_fields(&message)?;
/// assert_eq!(fields, [
///     ("uid", "0123456789abcdef".to_owned()),
///     ("nsp", "/".to_owned()),
///     ("type", "3".to_owned()),
///     ("data", r#"{"packet":{"type":2,"data":["news","hi"]},"opts":{"rooms":["sport"],"except":[],"flags":{}}}"#.to_owned()),
/// ]);
/// # Ok::<(), sio_protocol::ProtocolError>(())
/// ```
pub fn entry_fields(
    message: &ShardedMessage,
) -> Result<Vec<(&'static str, String)>, ProtocolError> {
    let kind = message.message_type();
    let mut fields = vec![
        (FIELD_UID, message.uid.clone()),
        (FIELD_NSP, message.nsp.clone()),
        (FIELD_TYPE, kind.code().to_string()),
    ];
    if let Some(data) = message.body.data_value()? {
        let mut scan = Scan::default();
        // One level of margin under the bound, as for sharded messages, so that what is
        // written here can be parsed back by `serde_json`.
        scan.visit(&data, 1)?;
        let text = if scan.binary && kind.may_contain_binary() {
            // `js_data` is `data` plus the `packet: undefined` msgpack writes as nil.
            let data = js_data(&message.body)?.unwrap_or(data);
            STANDARD.encode(encode_js(&data)?)
        } else {
            let data = if scan.dates {
                dates_to_iso(data)?
            } else {
                data
            };
            serde_json::to_string(&value::json_from_msgpack(&data))?
        };
        fields.push((FIELD_DATA, text));
    }
    Ok(fields)
}

/// Reads a stream entry's fields (as `XREAD` / `XRANGE` return them, in any order; the last of
/// duplicate fields wins, unknown ones are ignored), as the Node adapter's `decode` does.
///
/// `Ok(None)` for an entry without `nsp` (or with an empty one): Node skips those. Otherwise
/// `uid` and `type` are required (`type` in decimal digits only, where Node's `parseInt` would
/// also take `"3abc"`), every field must be UTF-8, and an empty `data` is no data. A `data`
/// starting with `{` is JSON, anything else base64 (standard alphabet, padding optional) of
/// MessagePack. The data is then read as [`ShardedMessage::decode`] reads it, with the same
/// tolerance and bounds: garbage is an error, never a panic.
///
/// ```
/// use sio_protocol::streams::message_from_entry;
/// use sio_protocol::MessageType;
///
/// let entry: [(&[u8], &[u8]); 4] = [
///     (b"uid", b"0123456789abcdef"),
///     (b"nsp", b"/"),
///     (b"type", b"4"),
///     (b"data", br#"{"opts":{"rooms":["a"],"except":[],"flags":{}},"rooms":["b"]}"#),
/// ];
/// let message = message_from_entry(entry)?.expect("has a namespace");
/// assert_eq!(message.message_type(), MessageType::SocketsJoin);
///
/// let no_nsp: [(&[u8], &[u8]); 1] = [(b"uid", b"x")];
/// assert!(message_from_entry(no_nsp)?.is_none());
/// # Ok::<(), sio_protocol::ProtocolError>(())
/// ```
pub fn message_from_entry<'a>(
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Option<ShardedMessage>, ProtocolError> {
    let (mut uid, mut nsp, mut kind, mut data) = (None, None, None, None);
    for (name, value) in fields {
        let slot = match name {
            b"uid" => &mut uid,
            b"nsp" => &mut nsp,
            b"type" => &mut kind,
            b"data" => &mut data,
            _ => continue,
        };
        *slot = Some(value);
    }
    let Some(nsp) = nsp.filter(|nsp| !nsp.is_empty()) else {
        return Ok(None);
    };
    let nsp = utf8(nsp, "nsp")?;
    let uid = utf8(uid.ok_or(ProtocolError::MissingField("uid"))?, "uid")?;
    let code = type_code(kind.ok_or(ProtocolError::MissingField("type"))?)?;
    let kind = MessageType::from_code(code).ok_or(ProtocolError::UnknownMessageType(code))?;
    let data = match data.filter(|data| !data.is_empty()) {
        None => None,
        Some(json) if json.first() == Some(&b'{') => {
            Some(value::msgpack_from_json(serde_json::from_slice(json)?))
        }
        Some(text) => {
            let bytes = BASE64_READ
                .decode(text)
                .map_err(|_| ProtocolError::InvalidField {
                    field: "data",
                    expected: "JSON or base64 MessagePack",
                })?;
            Some(msgpack::decode(&bytes)?)
        }
    };
    let body = ShardedBody::from_data(kind, data.as_ref(), nsp)?;
    Ok(Some(ShardedMessage::new(uid, nsp, body)))
}

fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, ProtocolError> {
    std::str::from_utf8(bytes).map_err(|_| ProtocolError::InvalidField {
        field,
        expected: "UTF-8 text",
    })
}

/// A `type` field: decimal digits.
fn type_code(bytes: &[u8]) -> Result<u64, ProtocolError> {
    let invalid = || ProtocolError::InvalidField {
        field: "type",
        expected: "a message type number in decimal",
    };
    if bytes.is_empty() || bytes.len() > MAX_TYPE_DIGITS {
        return Err(invalid());
    }
    bytes.iter().try_fold(0u64, |n, &digit| {
        if !digit.is_ascii_digit() {
            return Err(invalid());
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(digit - b'0')))
            .ok_or_else(invalid)
    })
}

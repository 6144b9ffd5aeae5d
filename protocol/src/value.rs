//! Reading typed fields out of decoded messages, and moving values between the JSON and
//! MessagePack worlds the way JavaScript would.
//!
//! Every message, JSON or MessagePack, is first turned into an [`rmpv::Value`] and read with the
//! helpers here, so both encodings get the same tolerance and the same errors. As in the Node
//! adapter, an absent field and a `nil`/`null`/`undefined` one are the same thing.

use rmpv::Value;

use crate::error::ProtocolError;

/// The payload's encoding, told apart by its first byte as the Node adapter does.
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Value, ProtocolError> {
    match payload.first() {
        None => Err(ProtocolError::EmptyPayload),
        Some(b'{') => {
            let json: serde_json::Value = serde_json::from_slice(payload)?;
            Ok(msgpack_from_json(json))
        }
        Some(_) => super::msgpack::decode(payload),
    }
}

/// The entries of a map, or an error naming `field`.
pub(crate) fn as_map<'a>(
    value: &'a Value,
    field: &'static str,
) -> Result<&'a [(Value, Value)], ProtocolError> {
    match value {
        Value::Map(entries) => Ok(entries),
        _ => Err(ProtocolError::InvalidField {
            field,
            expected: "a map",
        }),
    }
}

/// The value under the string key `key`; the last one wins, as in a JS object. Nil is absent.
pub(crate) fn get<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .rev()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_nil())
}

/// A required field.
pub(crate) fn require<'a>(
    map: &'a [(Value, Value)],
    key: &str,
    field: &'static str,
) -> Result<&'a Value, ProtocolError> {
    get(map, key).ok_or(ProtocolError::MissingField(field))
}

/// An optional string field.
pub(crate) fn opt_string(
    map: &[(Value, Value)],
    key: &str,
    field: &'static str,
) -> Result<Option<String>, ProtocolError> {
    get(map, key)
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or(ProtocolError::InvalidField {
                    field,
                    expected: "a string",
                })
        })
        .transpose()
}

/// A required string field.
pub(crate) fn string(
    map: &[(Value, Value)],
    key: &str,
    field: &'static str,
) -> Result<String, ProtocolError> {
    opt_string(map, key, field)?.ok_or(ProtocolError::MissingField(field))
}

/// An optional boolean field.
pub(crate) fn opt_bool(
    map: &[(Value, Value)],
    key: &str,
    field: &'static str,
) -> Result<Option<bool>, ProtocolError> {
    get(map, key)
        .map(|v| {
            v.as_bool().ok_or(ProtocolError::InvalidField {
                field,
                expected: "a boolean",
            })
        })
        .transpose()
}

/// A non-negative whole JS number: an integer, or a float with no fractional part.
pub(crate) fn as_whole_number(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(n) => n.as_u64(),
        Value::F32(_) | Value::F64(_) => {
            let f = value.as_f64()?;
            // `as` saturates; the range check keeps only values that are exact.
            (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0)
                .then_some(f as u64)
        }
        _ => None,
    }
}

/// An optional non-negative whole-number field.
pub(crate) fn opt_whole_number(
    map: &[(Value, Value)],
    key: &str,
    field: &'static str,
) -> Result<Option<u64>, ProtocolError> {
    get(map, key)
        .map(|v| {
            as_whole_number(v).ok_or(ProtocolError::InvalidField {
                field,
                expected: "a non-negative whole number",
            })
        })
        .transpose()
}

/// A list of room names; absent means empty. Integer rooms (`io.to(42)` in JS) become strings,
/// which is how the Node adapter matches them too.
pub(crate) fn rooms(
    value: Option<&Value>,
    field: &'static str,
) -> Result<Vec<String>, ProtocolError> {
    let invalid = ProtocolError::InvalidField {
        field,
        expected: "an array of room names",
    };
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(invalid);
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => s.as_str().map(str::to_owned),
            Value::Integer(n) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(invalid)
}

/// A JSON value as MessagePack: lossless, object keys in order.
pub(crate) fn msgpack_from_json(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                // serde_json numbers are u64, i64 or finite f64.
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::Array(items.into_iter().map(msgpack_from_json).collect())
        }
        serde_json::Value::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::from(k), msgpack_from_json(v)))
                .collect(),
        ),
    }
}

/// A MessagePack value as `JSON.stringify` would see the object notepack decodes it into:
/// binaries as Node `Buffer`s (`{"type":"Buffer","data":[..]}`), NaN and ±Infinity as `null`,
/// whole floats as integers, map keys as strings.
pub(crate) fn json_from_msgpack(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Json::from(u),
            (None, Some(i)) => Json::from(i),
            (None, None) => Json::Null,
        },
        Value::F32(_) | Value::F64(_) => {
            let f = value.as_f64().unwrap_or(f64::NAN);
            const SAFE: f64 = 9_007_199_254_740_992.0; // 2^53
            if f.fract() == 0.0 && f.abs() <= SAFE {
                Json::from(f as i64)
            } else {
                serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
            }
        }
        Value::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(bytes) => buffer_json(bytes),
        Value::Array(items) => Json::Array(items.iter().map(json_from_msgpack).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (js_property_name(k), json_from_msgpack(v)))
                .collect(),
        ),
        Value::Ext(ty, data) => Json::Array(vec![Json::from(*ty), buffer_json(data)]),
    }
}

fn buffer_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({ "type": "Buffer", "data": bytes })
}

/// The property name a JS object gets for a decoded map key.
pub(crate) fn js_property_name(key: &Value) -> String {
    match key {
        Value::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Value::Nil => "null".to_owned(),
        other => match json_from_msgpack(other) {
            serde_json::Value::String(s) => s,
            json => json.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_msgpack() {
        let json = serde_json::json!({"z": 1, "a": [-1, 1.5, "s", null, true], "m": {}});
        assert_eq!(json_from_msgpack(&msgpack_from_json(json.clone())), json);
    }

    #[test]
    fn json_keeps_object_key_order() {
        let json: serde_json::Value = serde_json::from_str(r#"{"z":1,"a":2}"#).expect("json");
        assert_eq!(json.to_string(), r#"{"z":1,"a":2}"#);
    }

    #[test]
    fn msgpack_only_values_become_what_node_would_stringify() {
        let value = Value::Map(vec![
            (Value::from(1), Value::Binary(vec![1, 2])),
            (Value::from("f"), Value::F64(2.0)),
            (Value::from("n"), Value::F64(f64::INFINITY)),
        ]);
        assert_eq!(
            json_from_msgpack(&value).to_string(),
            r#"{"1":{"type":"Buffer","data":[1,2]},"f":2,"n":null}"#
        );
    }

    #[test]
    fn rooms_accept_integers_and_reject_other_things() {
        let list = Value::Array(vec![Value::from("a"), Value::from(42)]);
        assert_eq!(rooms(Some(&list), "rooms").expect("rooms"), ["a", "42"]);
        assert!(rooms(Some(&Value::from("a")), "rooms").is_err());
        assert!(rooms(Some(&Value::Array(vec![Value::Boolean(true)])), "rooms").is_err());
        assert!(rooms(None, "rooms").expect("absent").is_empty());
    }
}

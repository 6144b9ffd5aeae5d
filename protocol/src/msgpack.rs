//! MessagePack exactly as notepack.io 3.x (the Node adapter's and emitter's codec) writes and
//! reads it, over [`rmpv::Value`]: rmpv does the reading and writing, this module the few
//! things notepack does differently.
//!
//! # Encoding
//!
//! [`encode`] produces the bytes notepack.io produces for the same JavaScript value. rmpv
//! already picks the headers notepack picks: the smallest integer format (an unsigned one for
//! every non-negative integer, a signed one for negatives), the smallest fixstr/str 8/16/32,
//! bin 8/16/32, array, map and fixext 1/2/4/8/16 or ext 8/16/32 header, and map entries in
//! their [`Value::Map`] order (notepack writes a JS object's keys in insertion order). Before
//! handing the value to rmpv, [`encode`] rewrites what notepack writes differently:
//!
//! - every number is a JS number: a float whose value is a whole number (`2.0`, `-0.0`) becomes
//!   an integer, other floats (and NaN, ±Infinity) are float 64 — never float 32. One
//!   deliberate difference: whole numbers outside the 64-bit integer range (`1e300`) stay
//!   float 64, where notepack writes them modulo 2^64 (as `0`);
//! - every NaN becomes JavaScript's one NaN (0x7ff8000000000000);
//! - a string that is not valid UTF-8 is written as a string (lossily), not as rmpv's binary.
//!
//! It also refuses what rmpv would write without bound or wrongly: nesting deeper than
//! [`MAX_DEPTH`] (rmpv recurses without limit) and lengths beyond 32 bits (rmpv truncates them).
//! The rewrite copies the value only when it holds something to rewrite.
//!
//! # Decoding
//!
//! [`decode`] reads any MessagePack, plus notepack's special cases, into values a JSON
//! consumer can use:
//!
//! - timestamps (extension type -1, 32/64/96-bit) and notepack 2.x dates (fixext 8, type 0)
//!   become the ISO-8601 string `Date.prototype.toJSON` would give (`nil` for an invalid date);
//! - notepack 2.x `ArrayBuffer`s (ext 8/16/32, type 0) become binaries and its `undefined`
//!   (fixext 1, type 0) becomes nil;
//! - any other extension becomes the array `[type, binary]`, as notepack returns it;
//! - float 32 becomes float 64, and strings that are not valid UTF-8 are decoded lossily.
//!
//! rmpv reads every value except arrays and maps, which [`decode`] assembles in a loop of its
//! own: rmpv's recursive reader takes over 4 KiB of stack per level in debug builds, counts its
//! depth limit per internal call rather than per array or map, and reads the reserved marker
//! 0xc1 as nil where notepack throws. rmpv also drops whether an extension had a fixext or an
//! ext 8/16/32 header, which notepack's type 0 depends on; the marker byte tells. Declared
//! lengths are safe with rmpv: it reserves at most 64 KiB up front and reads through
//! `Read::take`, so a 4 GiB header in a few bytes is an error, not an allocation (arrays and
//! maps here reserve at most 16 items, for the same reason). Decoding limits nesting to
//! [`MAX_DEPTH`], rejects trailing bytes, never panics, and its stack use does not grow with
//! nesting.

use rmpv::Value;

use super::timestamp::{
    iso_from_millis, millis_from_legacy_date, millis_from_timestamp32, millis_from_timestamp64,
    millis_from_timestamp96,
};
use crate::error::{MsgpackErrorKind, ProtocolError};

/// Deepest nesting of arrays and maps that [`decode`] and [`encode`] accept: the recursion
/// limit `serde_json` applies to the JSON that socket.io clients send, and well within a 2 MiB
/// thread stack even in debug builds.
pub const MAX_DEPTH: usize = 128;

/// Extension type of the MessagePack timestamp.
const TIMESTAMP_EXT: i8 = -1;
/// Extension type notepack.io 2.x used for `undefined`, `Date` and `ArrayBuffer`.
const LEGACY_EXT: i8 = 0;

/// Reads one complete MessagePack value; bytes left after it are an error.
pub fn decode(bytes: &[u8]) -> Result<Value, ProtocolError> {
    let mut rest = bytes;
    // The arrays and maps being read, innermost last.
    let mut open: Vec<Open> = Vec::new();
    'values: loop {
        let offset = bytes.len() - rest.len();
        let error = |kind| ProtocolError::Msgpack { offset, kind };
        let mut value = match Open::read_header(&mut rest).map_err(error)? {
            Some(_) if open.len() >= MAX_DEPTH => {
                return Err(error(MsgpackErrorKind::TooDeep(MAX_DEPTH)));
            }
            Some(container) if !container.is_full() => {
                open.push(container);
                continue;
            }
            Some(empty) => empty.into_value(),
            None => read_leaf(&mut rest).map_err(error)?,
        };
        // `value` is complete: it goes into its array or map, which may be complete in turn.
        while let Some(parent) = open.last_mut() {
            if !parent.push(value) {
                continue 'values;
            }
            // `open` is not empty: `last_mut` just found `parent`.
            value = open.pop().map_or(Value::Nil, Open::into_value);
        }
        return match rest.len() {
            0 => Ok(value),
            left => Err(ProtocolError::Msgpack {
                offset: bytes.len() - left,
                kind: MsgpackErrorKind::TrailingBytes(left),
            }),
        };
    }
}

/// An array or map being decoded.
enum Open {
    /// The items so far, and how many the header declares.
    Array(Vec<Value>, usize),
    /// The entries so far, the key of the next one once read, and how many the header declares.
    Map(Vec<(Value, Value)>, Option<Value>, usize),
}

impl Open {
    /// Consumes the header at the start of `rest` if it is an array's or a map's; any other
    /// value is left for [`read_leaf`].
    fn read_header(rest: &mut &[u8]) -> Result<Option<Open>, MsgpackErrorKind> {
        let eof = MsgpackErrorKind::UnexpectedEof;
        let (&marker, after) = rest.split_first().ok_or(eof)?;
        // (length given by the marker, size of the length field after it, is a map)
        let (len, field, is_map) = match marker {
            0x80..=0x8f => (usize::from(marker & 0x0f), 0, true),
            0x90..=0x9f => (usize::from(marker & 0x0f), 0, false),
            0xdc => (0, 2, false),
            0xdd => (0, 4, false),
            0xde => (0, 2, true),
            0xdf => (0, 4, true),
            _ => return Ok(None),
        };
        let (field, after) = after.split_at_checked(field).ok_or(eof)?;
        *rest = after;
        let len = field.iter().fold(len, |n, b| n << 8 | usize::from(*b));
        // A declared length costs nothing to forge, at every level: reserve little.
        let reserve = len.min(16);
        Ok(Some(if is_map {
            Open::Map(Vec::with_capacity(reserve), None, len)
        } else {
            Open::Array(Vec::with_capacity(reserve), len)
        }))
    }

    /// Adds the next item (or a map's next key or value); true once all are there.
    fn push(&mut self, value: Value) -> bool {
        match self {
            Open::Array(items, _) => items.push(value),
            Open::Map(entries, key, _) => match key.take() {
                Some(key) => entries.push((key, value)),
                None => *key = Some(value),
            },
        }
        self.is_full()
    }

    fn is_full(&self) -> bool {
        match self {
            Open::Array(items, len) => items.len() == *len,
            Open::Map(entries, key, len) => entries.len() == *len && key.is_none(),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Open::Array(items, _) => Value::Array(items),
            Open::Map(entries, ..) => Value::Map(entries),
        }
    }
}

/// Reads any value but an array or a map, with rmpv, and returns what notepack would.
fn read_leaf(rest: &mut &[u8]) -> Result<Value, MsgpackErrorKind> {
    let marker = rest.first().copied();
    if marker == Some(0xc1) {
        return Err(MsgpackErrorKind::ReservedMarker); // rmpv would read nil
    }
    // Any error is the input ending early: rmpv has no other way to fail on a slice here.
    let value = rmpv::decode::read_value(rest).map_err(|_| MsgpackErrorKind::UnexpectedEof)?;
    Ok(match value {
        Value::F32(f) => Value::F64(f64::from(f)),
        Value::String(s) if s.is_err() => lossy(s.as_bytes()),
        // 0xd4..=0xd8 are fixext 1/2/4/8/16.
        Value::Ext(ty, data) => extension(ty, data, matches!(marker, Some(0xd4..=0xd8))),
        other => other,
    })
}

/// What notepack returns for an extension; `fixed` tells fixext from ext 8/16/32, which
/// notepack treats differently for its legacy type 0.
fn extension(ty: i8, data: Vec<u8>, fixed: bool) -> Value {
    let ms = match (ty, fixed, data.len()) {
        (TIMESTAMP_EXT, true, 4) => data.try_into().ok().map(millis_from_timestamp32),
        (TIMESTAMP_EXT, true, 8) => data.try_into().ok().map(millis_from_timestamp64),
        (TIMESTAMP_EXT, false, 12) => data.try_into().ok().and_then(millis_from_timestamp96),
        (LEGACY_EXT, true, 8) => data.try_into().ok().map(millis_from_legacy_date),
        (LEGACY_EXT, true, 1) => return Value::Nil,
        (LEGACY_EXT, false, _) => return Value::Binary(data),
        _ => return Value::Array(vec![Value::from(ty), Value::Binary(data)]),
    };
    // A date: nil where JavaScript would have an invalid one.
    ms.and_then(iso_from_millis).map_or(Value::Nil, Value::from)
}

/// Writes `value` the way notepack.io writes the equivalent JavaScript value.
pub fn encode(value: &Value) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(64);
    let written = if needs_rewrite(value, 0)? {
        rmpv::encode::write_value(&mut out, &rewrite(value))
    } else {
        rmpv::encode::write_value(&mut out, value)
    };
    // Writing to a `Vec` does not fail; mapped rather than unwrapped all the same.
    written.map_err(|_| ProtocolError::Encode("write failed"))?;
    Ok(out)
}

/// Checks the depth and lengths of `value` everywhere, and tells whether it holds anything
/// notepack would write differently from rmpv (see [`rewrite`]).
fn needs_rewrite(value: &Value, depth: usize) -> Result<bool, ProtocolError> {
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
    if matches!(value, Value::Array(_) | Value::Map(_)) && depth >= MAX_DEPTH {
        return Err(ProtocolError::Encode("value nests deeper than MAX_DEPTH"));
    }
    // No short cut once something needs rewriting: the rest must be checked all the same.
    let mut any = false;
    match value {
        Value::F32(_) => any = true,
        Value::F64(f) => any = js_number(*f).is_some(),
        Value::String(s) => any = s.is_err(),
        Value::Array(items) => {
            for item in items {
                any |= needs_rewrite(item, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            for (key, item) in entries {
                any |= needs_rewrite(key, depth + 1)? | needs_rewrite(item, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(any)
}

/// A copy of `value` with every number a JS number and every string valid UTF-8.
fn rewrite(value: &Value) -> Value {
    let number = |f: f64| js_number(f).unwrap_or(Value::F64(f));
    match value {
        Value::F32(f) => number(f64::from(*f)),
        Value::F64(f) => number(*f),
        Value::String(s) if s.is_err() => lossy(s.as_bytes()),
        Value::Array(items) => Value::Array(items.iter().map(rewrite).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(key, item)| (rewrite(key), rewrite(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What notepack writes for the JS number `f` where that is not `f` as a float 64: an integer
/// for a whole number within 64 bits, JavaScript's NaN for any other NaN.
fn js_number(f: f64) -> Option<Value> {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return (f.to_bits() != f64::NAN.to_bits()).then_some(Value::F64(f64::NAN));
    }
    if f.fract() != 0.0 {
        None // also ±Infinity, whose fraction is NaN
    } else if (0.0..TWO_POW_64).contains(&f) {
        // `-0.0 >= 0.0` holds, so negative zero becomes 0, as in notepack.
        Some(Value::from(f as u64))
    } else if (-TWO_POW_63..0.0).contains(&f) {
        Some(Value::from(f as i64))
    } else {
        None // beyond 64 bits: notepack would write it modulo 2^64
    }
}

fn lossy(bytes: &[u8]) -> Value {
    Value::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(value: Value) -> Vec<u8> {
        encode(&value).expect("encodable")
    }

    #[test]
    fn numbers_follow_javascript() {
        assert_eq!(enc(Value::F64(2.0)), [0x02]);
        assert_eq!(enc(Value::F64(-0.0)), [0x00]);
        assert_eq!(enc(Value::F32(-33.0)), [0xd0, 0xdf]);
        assert_eq!(enc(Value::F64(1.5)), [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            enc(Value::F64(f64::NAN)),
            [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(enc(Value::from(255u8)), [0xcc, 0xff]);
        assert_eq!(enc(Value::from(-32i8)), [0xe0]);
        assert_eq!(
            enc(Value::from(i64::MIN)),
            [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            enc(Value::from(u64::MAX)),
            [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn containers_and_ext_pick_the_smallest_header() {
        assert_eq!(enc(Value::Array(vec![Value::Nil; 15]))[0], 0x9f);
        assert_eq!(enc(Value::Array(vec![Value::Nil; 16]))[..3], [0xdc, 0, 16]);
        assert_eq!(enc(Value::from("x".repeat(31)))[0], 0xbf);
        assert_eq!(enc(Value::from("x".repeat(32)))[..2], [0xd9, 32]);
        assert_eq!(enc(Value::Binary(vec![1])), [0xc4, 1, 1]);
        assert_eq!(enc(Value::Ext(-1, vec![0; 4]))[..2], [0xd6, 0xff]);
        assert_eq!(enc(Value::Ext(5, vec![0; 3]))[..3], [0xc7, 3, 5]);
    }

    #[test]
    fn round_trips_plain_values() {
        let value = Value::Map(vec![
            (
                Value::from("a"),
                Value::Array(vec![Value::from(-200i64), Value::F64(0.5)]),
            ),
            (Value::from("b"), Value::Binary(vec![0; 300])),
            (Value::from("c"), Value::from("é".repeat(100))),
        ]);
        assert_eq!(decode(&enc(value.clone())).expect("decodes"), value);
    }

    #[test]
    fn dates_become_iso_strings() {
        let ts32 = [0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00];
        assert_eq!(
            decode(&ts32).expect("ts32"),
            Value::from("2023-11-14T22:13:20.000Z")
        );
        let legacy = [0xd7, 0x00, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00];
        assert_eq!(
            decode(&legacy).expect("legacy"),
            Value::from("2023-11-14T22:13:20.000Z")
        );
        let mut ts96 = vec![0xc7, 12, 0xff, 0, 0, 0, 0];
        ts96.extend_from_slice(&i64::MAX.to_be_bytes());
        assert_eq!(decode(&ts96).expect("ts96"), Value::Nil, "invalid date");
    }

    #[test]
    fn notepack_legacy_and_unknown_extensions() {
        assert_eq!(decode(&[0xd4, 0x00, 0x00]).expect("undefined"), Value::Nil);
        assert_eq!(
            decode(&[0xc7, 2, 0x00, 9, 8]).expect("arraybuffer"),
            Value::Binary(vec![9, 8])
        );
        assert_eq!(
            decode(&[0xd5, 7, 1, 2]).expect("ext"),
            Value::Array(vec![Value::from(7), Value::Binary(vec![1, 2])])
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        let kind = |bytes: &[u8]| match decode(bytes) {
            Err(ProtocolError::Msgpack { kind, .. }) => kind,
            other => panic!("expected a msgpack error, got {other:?}"),
        };
        assert_eq!(kind(&[]), MsgpackErrorKind::UnexpectedEof);
        assert_eq!(kind(&[0xc1]), MsgpackErrorKind::ReservedMarker);
        assert_eq!(kind(&[0x01, 0x02]), MsgpackErrorKind::TrailingBytes(1));
        assert_eq!(
            kind(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            MsgpackErrorKind::UnexpectedEof
        );
        assert_eq!(
            kind(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
            MsgpackErrorKind::UnexpectedEof
        );
        assert_eq!(
            kind(&[0x91; MAX_DEPTH + 1]),
            MsgpackErrorKind::TooDeep(MAX_DEPTH)
        );
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        assert_eq!(
            decode(&[0xa2, 0xff, b'a']).expect("lossy"),
            Value::from("\u{fffd}a")
        );
    }

    #[test]
    fn too_deep_values_are_not_encoded() {
        let mut value = Value::Nil;
        for _ in 0..=MAX_DEPTH {
            value = Value::Array(vec![value]);
        }
        assert!(matches!(encode(&value), Err(ProtocolError::Encode(_))));
    }

    #[test]
    fn positive_signed_integers_use_unsigned_formats() {
        assert_eq!(enc(Value::from(200i64)), [0xcc, 200]);
        assert_eq!(enc(Value::from(-200i64)), [0xd1, 0xff, 0x38]);
        assert_eq!(enc(Value::from(70_000i32)), [0xce, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn every_float_is_a_float_64_or_an_integer() {
        assert_eq!(enc(Value::F32(0.5)), [0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]);
        let js_nan = [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0];
        assert_eq!(enc(Value::F32(f32::NAN)), js_nan);
        assert_eq!(
            enc(Value::F64(f64::from_bits(0xfff0_0000_0000_0001))),
            js_nan
        );
        assert_eq!(
            enc(Value::F64(f64::NEG_INFINITY)),
            [0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn invalid_utf8_is_encoded_as_a_string() {
        // rmpv keeps the raw bytes of an invalid string (and would write them as a binary).
        let raw = rmpv::decode::read_value(&mut &[0xa2, 0xff, b'a'][..]).expect("rmpv reads it");
        assert_eq!(enc(raw), [0xa4, 0xef, 0xbf, 0xbd, b'a']);
    }

    #[test]
    fn depth_is_checked_beside_values_that_need_rewriting() {
        let mut deep = Value::Nil;
        for _ in 0..MAX_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        assert!(encode(&deep).is_ok());
        let value = Value::Array(vec![Value::F64(2.0), deep]);
        assert!(matches!(encode(&value), Err(ProtocolError::Encode(_))));
    }

    #[test]
    fn reserved_marker_is_refused_anywhere() {
        for bytes in [&[0x91, 0xc1][..], &[0x81, 0xc0, 0xc1], &[0x92, 0x01, 0xc1]] {
            assert!(
                matches!(
                    decode(bytes),
                    Err(ProtocolError::Msgpack {
                        kind: MsgpackErrorKind::ReservedMarker,
                        ..
                    })
                ),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn extension_header_form_matters_like_in_notepack() {
        // ext 8 where a fixext would do: notepack 2.x ArrayBuffers, not `undefined` or a date.
        assert_eq!(
            decode(&[0xc7, 1, 0x00, 9]).expect("ext 8"),
            Value::Binary(vec![9])
        );
        let legacy_date = [0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00];
        let ext8: Vec<u8> = [0xc7, 8, 0x00]
            .iter()
            .chain(&legacy_date)
            .copied()
            .collect();
        assert_eq!(
            decode(&ext8).expect("ext 8"),
            Value::Binary(legacy_date.to_vec())
        );
        // A 32-bit timestamp is a fixext 4; in an ext 8 it is an unknown extension.
        assert_eq!(
            decode(&[0xc7, 4, 0xff, 1, 2, 3, 4]).expect("ext 8"),
            Value::Array(vec![Value::from(-1), Value::Binary(vec![1, 2, 3, 4])])
        );
        // Inside containers, each extension keeps its own form.
        assert_eq!(
            decode(&[
                0x82, 0xd4, 0x00, 1, 0xc7, 1, 0x00, 9, 0xa1, b'k', 0xd4, 0x00, 9
            ])
            .expect("map"),
            Value::Map(vec![
                (Value::Nil, Value::Binary(vec![9])),
                (Value::from("k"), Value::Nil),
            ])
        );
    }

    #[test]
    fn nesting_counts_arrays_and_maps_only() {
        let nested = |levels: usize, container: &[u8], leaf: &[u8]| -> Vec<u8> {
            let mut bytes = container.repeat(levels);
            bytes.extend_from_slice(leaf);
            bytes
        };
        // `{nil: {nil: ... "a"}}`, and arrays around every kind of leaf.
        assert!(decode(&nested(MAX_DEPTH, &[0x81, 0xc0], &[0xa1, b'a'])).is_ok());
        for leaf in [&[0xa1, b'a'][..], &[0xc4, 0], &[0xd4, 1, 1], &[0x01]] {
            assert!(decode(&nested(MAX_DEPTH, &[0x91], leaf)).is_ok());
        }
        assert!(decode(&nested(MAX_DEPTH - 1, &[0x91], &[0x80])).is_ok());
        for too_deep in [
            nested(MAX_DEPTH + 1, &[0x81, 0xc0], &[0xc0]),
            nested(MAX_DEPTH, &[0x91], &[0x90]),
        ] {
            assert!(matches!(
                decode(&too_deep),
                Err(ProtocolError::Msgpack {
                    kind: MsgpackErrorKind::TooDeep(MAX_DEPTH),
                    ..
                })
            ));
        }
    }

    #[test]
    fn huge_declared_lengths_are_errors() {
        for bytes in [
            &[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'][..],
            &[0xc6, 0xff, 0xff, 0xff, 0xff],
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x05, 1],
            &[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0],
            &[
                0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x91, 0xdd, 0xff, 0xff, 0xff, 0xff,
            ],
        ] {
            assert!(
                matches!(
                    decode(bytes),
                    Err(ProtocolError::Msgpack {
                        kind: MsgpackErrorKind::UnexpectedEof,
                        ..
                    })
                ),
                "{bytes:02x?}"
            );
        }
    }
}

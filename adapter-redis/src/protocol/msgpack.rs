//! MessagePack exactly as notepack.io 3.x (the Node adapter's and emitter's codec) writes and
//! reads it, over [`rmpv::Value`].
//!
//! # Encoding
//!
//! [`encode`] produces the bytes notepack.io produces for the same JavaScript value:
//!
//! - every number is a JS number: a float whose value is a whole number (`2.0`, `-0.0`) is
//!   written as the smallest integer format that holds it, other floats (and NaN, ±Infinity) as
//!   float 64 — never float 32. One deliberate difference: whole numbers outside the 64-bit
//!   integer range (`1e300`) stay float 64, where notepack writes them modulo 2^64 (as `0`);
//! - integers use the smallest format; non-negative ones always an unsigned format;
//! - strings, binaries, arrays, maps and extensions use the smallest length format
//!   (fixstr/str 8/16/32, bin 8/16/32, fixext 1/2/4/8/16 or ext 8/16/32).
//!
//! Map entries are written in the order they have in the [`Value::Map`]: notepack writes a JS
//! object's keys in insertion order.
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
//! Decoding checks every length against the bytes that remain, limits nesting to
//! [`MAX_DEPTH`] and rejects trailing bytes; it never panics on any input.

use rmpv::Value;

use super::timestamp;
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
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(0)?;
    match bytes.len() - reader.pos {
        0 => Ok(value),
        rest => Err(reader.error(MsgpackErrorKind::TrailingBytes(rest))),
    }
}

/// Writes `value` the way notepack.io writes the equivalent JavaScript value.
pub fn encode(value: &Value) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out` (see [`encode`]).
fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), ProtocolError> {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => write_uint(out, u),
            (None, Some(i)) => write_negative(out, i),
            // An rmpv integer is always one or the other.
            (None, None) => return Err(ProtocolError::Encode("integer out of range")),
        },
        Value::F32(f) => write_number(out, f64::from(*f)),
        Value::F64(f) => write_number(out, *f),
        Value::String(s) => {
            let bytes = s.as_bytes();
            write_len(
                out,
                bytes.len(),
                Some(0xa0),
                [0xd9, 0xda, 0xdb],
                "string over 4 GiB",
            )?;
            out.extend_from_slice(bytes);
        }
        Value::Binary(bytes) => {
            write_len(
                out,
                bytes.len(),
                None,
                [0xc4, 0xc5, 0xc6],
                "binary over 4 GiB",
            )?;
            out.extend_from_slice(bytes);
        }
        Value::Array(items) => {
            check_depth(depth)?;
            write_container_len(
                out,
                items.len(),
                0x90,
                [0xdc, 0xdd],
                "array over 2^32 items",
            )?;
            for item in items {
                write_value(out, item, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            check_depth(depth)?;
            write_container_len(
                out,
                entries.len(),
                0x80,
                [0xde, 0xdf],
                "map over 2^32 entries",
            )?;
            for (key, item) in entries {
                write_value(out, key, depth + 1)?;
                write_value(out, item, depth + 1)?;
            }
        }
        Value::Ext(ty, data) => {
            match data.len() {
                1 => out.push(0xd4),
                2 => out.push(0xd5),
                4 => out.push(0xd6),
                8 => out.push(0xd7),
                16 => out.push(0xd8),
                len => write_len(out, len, None, [0xc7, 0xc8, 0xc9], "extension over 4 GiB")?,
            }
            out.push(ty.to_be_bytes()[0]);
            out.extend_from_slice(data);
        }
    }
    Ok(())
}

fn check_depth(depth: usize) -> Result<(), ProtocolError> {
    if depth >= MAX_DEPTH {
        return Err(ProtocolError::Encode("value nests deeper than MAX_DEPTH"));
    }
    Ok(())
}

/// A JS number: whole values as integers, the rest as float 64.
fn write_number(out: &mut Vec<u8>, f: f64) {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.fract() == 0.0 {
        // `-0.0 >= 0.0` holds, so negative zero is written as 0, like notepack does.
        if (0.0..TWO_POW_64).contains(&f) {
            return write_uint(out, f as u64);
        }
        if (-TWO_POW_63..0.0).contains(&f) {
            return write_negative(out, f as i64);
        }
        // Whole numbers beyond 64 bits: notepack writes them modulo 2^64 (1e300 arrives as 0);
        // a float 64 keeps the value, and notepack reads it back intact.
    }
    out.push(0xcb);
    // JS has a single NaN bit pattern on the wire (0x7ff8000000000000).
    let f = if f.is_nan() { f64::NAN } else { f };
    out.extend_from_slice(&f.to_be_bytes());
}

fn write_uint(out: &mut Vec<u8>, u: u64) {
    if u < 0x80 {
        out.push(u as u8);
    } else if let Ok(u) = u8::try_from(u) {
        out.extend_from_slice(&[0xcc, u]);
    } else if let Ok(u) = u16::try_from(u) {
        out.push(0xcd);
        out.extend_from_slice(&u.to_be_bytes());
    } else if let Ok(u) = u32::try_from(u) {
        out.push(0xce);
        out.extend_from_slice(&u.to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&u.to_be_bytes());
    }
}

/// Writes a negative integer (`i < 0`).
fn write_negative(out: &mut Vec<u8>, i: i64) {
    if i >= -32 {
        out.push(i.to_be_bytes()[7]);
    } else if let Ok(i) = i8::try_from(i) {
        out.push(0xd0);
        out.extend_from_slice(&i.to_be_bytes());
    } else if let Ok(i) = i16::try_from(i) {
        out.push(0xd1);
        out.extend_from_slice(&i.to_be_bytes());
    } else if let Ok(i) = i32::try_from(i) {
        out.push(0xd2);
        out.extend_from_slice(&i.to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Length header of a str / bin / ext: an optional 5-bit fix form, then 8, 16 and 32 bits;
/// `too_large` is the error beyond 32 bits.
fn write_len(
    out: &mut Vec<u8>,
    len: usize,
    fix: Option<u8>,
    [m8, m16, m32]: [u8; 3],
    too_large: &'static str,
) -> Result<(), ProtocolError> {
    match (fix, len) {
        (Some(fix), 0..=31) => out.push(fix | len as u8),
        (_, 0..=0xff) => out.extend_from_slice(&[m8, len as u8]),
        (_, 0x100..=0xffff) => {
            out.push(m16);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            let len = u32::try_from(len).map_err(|_| ProtocolError::Encode(too_large))?;
            out.push(m32);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

/// Length header of an array or map: 4-bit fix form, then 16 and 32 bits; `too_large` is the
/// error beyond 32 bits.
fn write_container_len(
    out: &mut Vec<u8>,
    len: usize,
    fix: u8,
    [m16, m32]: [u8; 2],
    too_large: &'static str,
) -> Result<(), ProtocolError> {
    if len < 16 {
        out.push(fix | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(m16);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        let len = u32::try_from(len).map_err(|_| ProtocolError::Encode(too_large))?;
        out.push(m32);
        out.extend_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// A cursor over the payload; every read checks the remaining length.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, kind: MsgpackErrorKind) -> ProtocolError {
        ProtocolError::Msgpack {
            offset: self.pos,
            kind,
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error(MsgpackErrorKind::UnexpectedEof))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, ProtocolError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, ProtocolError> {
        let n = u32::from_be_bytes(self.array()?);
        // A length beyond usize cannot fit in the payload anyway.
        usize::try_from(n).map_err(|_| self.error(MsgpackErrorKind::UnexpectedEof))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// One value; only arrays and maps recurse, so this frame stays small.
    fn value(&mut self, depth: usize) -> Result<Value, ProtocolError> {
        let marker = self.u8()?;
        match marker {
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth),
            0x90..=0x9f => self.seq(usize::from(marker & 0x0f), depth),
            0xdc => {
                let len = self.u16()?;
                self.seq(len, depth)
            }
            0xdd => {
                let len = self.u32()?;
                self.seq(len, depth)
            }
            0xde => {
                let len = self.u16()?;
                self.map(len, depth)
            }
            0xdf => {
                let len = self.u32()?;
                self.map(len, depth)
            }
            _ => self.scalar(marker),
        }
    }

    /// Every value that is not an array or a map.
    #[inline(never)]
    fn scalar(&mut self, marker: u8) -> Result<Value, ProtocolError> {
        let value = match marker {
            0x00..=0x7f => Value::from(marker),
            0xa0..=0xbf => self.str(usize::from(marker & 0x1f))?,
            0xc0 => Value::Nil,
            0xc1 => {
                self.pos -= 1;
                return Err(self.error(MsgpackErrorKind::ReservedMarker));
            }
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 => {
                let len = usize::from(self.u8()?);
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc5 => {
                let len = self.u16()?;
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc6 => {
                let len = self.u32()?;
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc7 => {
                let len = usize::from(self.u8()?);
                self.ext(len, false)?
            }
            0xc8 => {
                let len = self.u16()?;
                self.ext(len, false)?
            }
            0xc9 => {
                let len = self.u32()?;
                self.ext(len, false)?
            }
            0xca => Value::F64(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Value::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Value::from(self.u8()?),
            0xcd => Value::from(u16::from_be_bytes(self.array()?)),
            0xce => Value::from(u32::from_be_bytes(self.array()?)),
            0xcf => Value::from(u64::from_be_bytes(self.array()?)),
            0xd0 => Value::from(i8::from_be_bytes(self.array()?)),
            0xd1 => Value::from(i16::from_be_bytes(self.array()?)),
            0xd2 => Value::from(i32::from_be_bytes(self.array()?)),
            0xd3 => Value::from(i64::from_be_bytes(self.array()?)),
            0xd4 => self.ext(1, true)?,
            0xd5 => self.ext(2, true)?,
            0xd6 => self.ext(4, true)?,
            0xd7 => self.ext(8, true)?,
            0xd8 => self.ext(16, true)?,
            0xd9 => {
                let len = usize::from(self.u8()?);
                self.str(len)?
            }
            0xda => {
                let len = self.u16()?;
                self.str(len)?
            }
            0xdb => {
                let len = self.u32()?;
                self.str(len)?
            }
            // Negative fixint; the container markers never reach here.
            _ => Value::from(i8::from_be_bytes([marker])),
        };
        Ok(value)
    }

    fn str(&mut self, len: usize) -> Result<Value, ProtocolError> {
        let bytes = self.take(len)?;
        Ok(Value::from(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn seq(&mut self, len: usize, depth: usize) -> Result<Value, ProtocolError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(MsgpackErrorKind::TooDeep(MAX_DEPTH)));
        }
        // Each item takes at least one byte: never reserve more than the payload can hold.
        let mut items = Vec::with_capacity(len.min(self.remaining()));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, ProtocolError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(MsgpackErrorKind::TooDeep(MAX_DEPTH)));
        }
        let mut entries = Vec::with_capacity(len.min(self.remaining() / 2));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }

    /// An extension of `len` data bytes; `fixed` tells fixext from ext 8/16/32, which notepack
    /// treats differently for its legacy type 0.
    fn ext(&mut self, len: usize, fixed: bool) -> Result<Value, ProtocolError> {
        let ty = i8::from_be_bytes([self.u8()?]);
        let data = self.take(len)?;
        let date = |ms: Option<i64>| {
            ms.and_then(timestamp::iso_from_millis)
                .map_or(Value::Nil, Value::from)
        };
        let value = match (ty, fixed, data.len()) {
            (TIMESTAMP_EXT, true, 4) => {
                date(data.try_into().ok().map(timestamp::millis_from_timestamp32))
            }
            (TIMESTAMP_EXT, true, 8) => {
                date(data.try_into().ok().map(timestamp::millis_from_timestamp64))
            }
            (TIMESTAMP_EXT, false, 12) => date(
                data.try_into()
                    .ok()
                    .and_then(timestamp::millis_from_timestamp96),
            ),
            (LEGACY_EXT, true, 1) => Value::Nil,
            (LEGACY_EXT, true, 8) => {
                date(data.try_into().ok().map(timestamp::millis_from_legacy_date))
            }
            (LEGACY_EXT, false, _) => Value::Binary(data.to_vec()),
            _ => Value::Array(vec![Value::from(ty), Value::Binary(data.to_vec())]),
        };
        Ok(value)
    }
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
}

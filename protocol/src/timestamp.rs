//! JavaScript `Date` values as they travel through notepack.io, and their ISO-8601 form.
//!
//! notepack.io 3.x encodes a `Date` as the MessagePack timestamp extension (type -1): 32-bit
//! seconds when the time is a whole second, else 64-bit (30-bit nanoseconds + 34-bit seconds),
//! and 96-bit for times before 1970 or after 2514. notepack.io 2.x used a private fixext 8 of
//! type 0 holding the milliseconds as a signed 64-bit integer; 3.x still reads it.
//!
//! A Node peer would hand such a value to `JSON.stringify`, which calls `Date.prototype.toJSON`:
//! the ISO string of `toISOString()`, or `null` for an invalid date. [`iso_from_millis`] is that.

/// The largest distance from the epoch, in milliseconds, that a JS `Date` can hold (±8.64e15).
const MAX_DATE_MS: i64 = 8_640_000_000_000_000;
const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the epoch of a 32-bit timestamp (whole seconds).
pub(crate) fn millis_from_timestamp32(data: [u8; 4]) -> i64 {
    i64::from(u32::from_be_bytes(data)) * 1000
}

/// Milliseconds since the epoch of a 64-bit timestamp, truncated like `new Date(ms)` does.
pub(crate) fn millis_from_timestamp64(data: [u8; 8]) -> i64 {
    let raw = u64::from_be_bytes(data);
    let nanos = raw >> 34;
    let secs = raw & 0x3_ffff_ffff;
    // Both fit easily: secs < 2^34, nanos < 2^30 (notepack does not reject nanos >= 1e9).
    (secs * 1000 + nanos / 1_000_000) as i64
}

/// Milliseconds since the epoch of a 96-bit timestamp (u32 nanos, then i64 seconds).
pub(crate) fn millis_from_timestamp96(data: [u8; 12]) -> Option<i64> {
    let [n0, n1, n2, n3, s @ ..] = data;
    let nanos = i128::from(u32::from_be_bytes([n0, n1, n2, n3]));
    let secs = i128::from(i64::from_be_bytes(s));
    // `new Date(x)` truncates the fractional milliseconds towards zero; i128 division does too.
    i64::try_from((secs * 1_000_000_000 + nanos) / 1_000_000).ok()
}

/// Milliseconds of notepack.io 2.x's private date encoding (fixext 8, type 0).
pub(crate) fn millis_from_legacy_date(data: [u8; 8]) -> i64 {
    i64::from_be_bytes(data)
}

/// `new Date(ms).toISOString()`, or `None` where JavaScript would have an invalid date.
///
/// Years 0 to 9999 print with four digits, others as a signed six-digit year, as in JS.
pub(crate) fn iso_from_millis(ms: i64) -> Option<String> {
    if !(-MAX_DATE_MS..=MAX_DATE_MS).contains(&ms) {
        return None;
    }
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let year = match year {
        0..=9999 => format!("{year:04}"),
        y if y < 0 => format!("-{:06}", -y),
        y => format!("+{y:06}"),
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    ))
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
///
/// Works in 400-year eras of 146,097 days, with years starting on March 1st so that the leap
/// day is the last day of the year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // day is in 1..=31 and month in 1..=12 by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_javascript_to_iso_string() {
        // Expected values printed by `new Date(ms).toISOString()` in Node 20.
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (1_700_000_000_000, "2023-11-14T22:13:20.000Z"),
            (1_704_164_645_678, "2024-01-02T03:04:05.678Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
            (-62_167_219_200_001, "-000001-12-31T23:59:59.999Z"),
            (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
            (MAX_DATE_MS, "+275760-09-13T00:00:00.000Z"),
            (-MAX_DATE_MS, "-271821-04-20T00:00:00.000Z"),
        ];
        for (ms, iso) in cases {
            assert_eq!(iso_from_millis(ms).as_deref(), Some(iso), "{ms}");
        }
    }

    #[test]
    fn out_of_range_is_an_invalid_date() {
        assert_eq!(iso_from_millis(MAX_DATE_MS + 1), None);
        assert_eq!(iso_from_millis(i64::MIN), None);
    }

    #[test]
    fn timestamp_layouts() {
        assert_eq!(
            millis_from_timestamp32(1_700_000_000u32.to_be_bytes()),
            1_700_000_000_000
        );
        // 2024-01-02T03:04:05.678Z as notepack writes it: ns << 34 | secs.
        let raw: u64 = (678_000_000u64 << 34) | 1_704_164_645;
        assert_eq!(
            millis_from_timestamp64(raw.to_be_bytes()),
            1_704_164_645_678
        );
        let mut t96 = [0u8; 12];
        t96[..4].copy_from_slice(&500_000u32.to_be_bytes());
        t96[4..].copy_from_slice(&(-1i64).to_be_bytes());
        // -1 s + 0.5 ms = -999.5 ms, truncated towards zero like `new Date(-999.5)`.
        assert_eq!(millis_from_timestamp96(t96), Some(-999));
        assert_eq!(millis_from_legacy_date((-5i64).to_be_bytes()), -5);
    }
}

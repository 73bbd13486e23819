//! Fast serde serialization of UTC timestamps, byte for byte what chrono writes
//! (`2025-10-08T09:28:12.540198Z`: 0, 3, 6 or 9 fraction digits, whichever is exact).
//!
//! A folded call state holds about twenty timestamps and is written for every changed call;
//! chrono's `Display` machinery was half the cost of encoding it. Years outside 0000–9999 and
//! leap seconds fall back to chrono.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Serializes a timestamp as chrono does, faster.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0_u8; 30];
    match format(at, &mut buffer) {
        Some(text) => serializer.serialize_str(text),
        None => at.serialize(serializer),
    }
}

/// [`serialize`] for an optional timestamp (`None` as `null`).
pub fn serialize_option<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Writes `at` into `buffer`; `None` when chrono's own output has another shape.
fn format<'b>(at: &DateTime<Utc>, buffer: &'b mut [u8; 30]) -> Option<&'b str> {
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut out = Writer { buffer, len: 0 };
    out.digits(year, 4);
    out.byte(b'-');
    out.digits(at.month(), 2);
    out.byte(b'-');
    out.digits(at.day(), 2);
    out.byte(b'T');
    out.digits(at.hour(), 2);
    out.byte(b':');
    out.digits(at.minute(), 2);
    out.byte(b':');
    out.digits(at.second(), 2);
    if nanos != 0 {
        out.byte(b'.');
        if nanos.is_multiple_of(1_000_000) {
            out.digits(nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            out.digits(nanos / 1_000, 6);
        } else {
            out.digits(nanos, 9);
        }
    }
    out.byte(b'Z');
    let len = out.len;
    std::str::from_utf8(buffer.get(..len)?).ok()
}

/// A cursor over the output buffer (its size fits the longest form).
struct Writer<'b> {
    buffer: &'b mut [u8; 30],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, byte: u8) {
        if let Some(slot) = self.buffer.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    /// `value`'s last `width` decimal digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: usize) {
        let start = self.len;
        self.len += width;
        for i in (start..self.len).rev() {
            if let Some(slot) = self.buffer.get_mut(i) {
                // A digit: value % 10 < 10 always fits a byte.
                *slot = b'0' + u8::try_from(value % 10).unwrap_or(0);
            }
            value /= 10;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn ours(at: &DateTime<Utc>) -> String {
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::new(&mut out);
        serialize(at, &mut serializer).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_chrono_on_every_fraction_width() {
        for nanos in [0, 540_000_000, 540_198_000, 540_198_123, 1_000, 1] {
            let at = Utc
                .with_ymd_and_hms(2025, 10, 8, 9, 28, 12)
                .unwrap()
                .with_nanosecond(nanos)
                .unwrap();
            assert_eq!(ours(&at), serde_json::to_string(&at).unwrap());
        }
    }

    proptest! {
        #[test]
        fn matches_chrono_everywhere(secs in -70_000_000_000_i64..300_000_000_000, nanos in 0_u32..2_000_000_000) {
            if let Some(at) = DateTime::from_timestamp(secs, nanos) {
                prop_assert_eq!(ours(&at), serde_json::to_string(&at).unwrap());
            }
        }
    }
}

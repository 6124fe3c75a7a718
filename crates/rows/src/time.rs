//! The row's `timestamp`: what is accepted, and how numbers are read.

use cdp_calls::{Timestamp, TimestampError};

use crate::decimal::{normalize, split};
use crate::{RowErrorReason, Value};

/// Numbers below this magnitude are Unix seconds; from it on, milliseconds.
/// `10^11` seconds is the year 5138; `10^11` milliseconds is 1973-03-03.
pub(crate) const SECONDS_BELOW: u64 = 100_000_000_000;

/// The value as JSON, cut to 100 characters, for error messages.
pub(crate) fn shown(value: &Value<'_>) -> String {
    let mut out = Vec::new();
    crate::render::push_value_lenient(&mut out, value, 100);
    String::from_utf8_lossy(&out).into_owned()
}

fn invalid(value: &Value<'_>, detail: Option<TimestampError>) -> RowErrorReason {
    RowErrorReason::InvalidTimestamp { found: value.kind(), value: shown(value), detail }
}

/// Text: RFC 3339, or the SQL form without a zone (`2026-11-22 10:00:00[.fff]`,
/// SQLite's `datetime()`), taken as UTC.
fn parse_text(text: &str) -> Result<Timestamp, TimestampError> {
    let err = match Timestamp::parse_rfc3339(text) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let b = text.as_bytes();
    if err == TimestampError::Shape
        && b.len() >= 19
        && b.len() < 40
        && b.last().is_some_and(u8::is_ascii_digit)
    {
        let mut buf = [0u8; 41];
        buf[..b.len()].copy_from_slice(b);
        buf[b.len()] = b'Z';
        let with_zone = std::str::from_utf8(&buf[..=b.len()]).unwrap_or_default();
        if let Ok(t) = Timestamp::parse_rfc3339(with_zone) {
            return Ok(t);
        }
    }
    Err(err)
}

/// Microseconds since 1970 of a Unix time given in seconds or milliseconds by its
/// magnitude, from the magnitude scaled by 10^6 (`micros_if_secs`).
fn from_scaled(neg: bool, micros_if_secs: u128) -> Option<Timestamp> {
    let micros = if micros_if_secs < u128::from(SECONDS_BELOW) * 1_000_000 {
        micros_if_secs
    } else {
        micros_if_secs / 1000
    };
    let micros = i64::try_from(micros).ok()?;
    Timestamp::from_micros(if neg { -micros } else { micros })
}

/// The row's timestamp from the `timestamp` column: `None` for null.
pub(crate) fn row_timestamp(value: &Value<'_>) -> Result<Option<Timestamp>, RowErrorReason> {
    let t = match value {
        Value::Null => return Ok(None),
        Value::Timestamp(t) | Value::TimestampWithoutZone(t) => Some(*t),
        Value::Text(text) => match parse_text(text) {
            Ok(t) => Some(t),
            Err(e) => return Err(invalid(value, Some(e))),
        },
        Value::Int(i) => from_scaled(*i < 0, u128::from(i.unsigned_abs()) * 1_000_000),
        Value::UInt(u) => from_scaled(false, u128::from(*u) * 1_000_000),
        Value::Float(f) if f.is_finite() => {
            let abs = f.abs();
            // Rounded to the microsecond: a float's decimal form is approximate.
            let micros = if abs < SECONDS_BELOW as f64 { (abs * 1e6).round() } else { (abs * 1e3).round() };
            // Out-of-range floats saturate here and are rejected below.
            let micros = micros as i64;
            Timestamp::from_micros(if *f < 0.0 { -micros } else { micros })
        }
        Value::Decimal(d) => split(d)
            .and_then(|p| normalize(&p))
            .and_then(|n| Some((n.is_negative(), n.scaled_magnitude(6)?)))
            .and_then(|(neg, scaled)| from_scaled(neg, scaled)),
        _ => None,
    };
    t.map(Some).ok_or_else(|| invalid(value, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_picks_seconds_or_millis() {
        let t = |v: Value<'_>| row_timestamp(&v).unwrap().unwrap().to_string();
        assert_eq!(t(Value::Int(1_795_341_600)), "2026-11-22T10:00:00.000Z");
        assert_eq!(t(Value::Int(1_795_341_600_250)), "2026-11-22T10:00:00.250Z");
        assert_eq!(t(Value::Int(99_999_999_999)), "5138-11-16T09:46:39.000Z");
        assert_eq!(t(Value::Int(100_000_000_000)), "1973-03-03T09:46:40.000Z");
        assert_eq!(t(Value::Int(-1)), "1969-12-31T23:59:59.000Z");
        assert_eq!(t(Value::text("2026-11-22 10:00:00.5")), "2026-11-22T10:00:00.500Z");
    }
}

//! Snowflake's JSON result format, cell by cell: each cell arrives as text (or `null`),
//! whose form depends on the column's type. These pure functions turn that text into
//! a [`Value`], exactly (see the table in the crate docs).
//!
//! The forms, as Snowflake's own connectors read them:
//! - `fixed` (NUMBER, DECIMAL, INT, …): the decimal text, with the column's scale
//!   (`-12.340`, `99999999999999999999999999999999999999`).
//! - `real` (FLOAT, DOUBLE): the decimal text, or `NaN`, `inf`, `-inf`.
//! - `boolean`: `1`/`0` (older servers: `true`/`false`).
//! - `binary`: hexadecimal digits.
//! - `date`: days since 1970-01-01 (`-1` is 1969-12-31).
//! - `time`: seconds since midnight with the column's fraction (`45296.123456789`).
//! - `timestamp_ntz`, `timestamp_ltz`: seconds since the Unix epoch as a decimal with
//!   the column's fraction; negative before 1970, read as a decimal (`-1.5` is
//!   1969-12-31T23:59:58.5).
//! - `timestamp_tz`: `<epoch seconds.fraction> <offset minutes + 1440>`, where the
//!   epoch seconds are already the instant in UTC and the second number only records
//!   the offset the value was written with (`1704083400.000000000 1770` is
//!   2024-01-01 10:00:00 +05:30). Older servers pack both into one integer, `epoch ×
//!   10^scale × 16384 + (offset + 1440)`.
//! - `variant`, `object`, `array`: JSON text as Snowflake prints it (indented), with
//!   the bare word `undefined` for an SQL NULL inside an array.
//! - `vector`: `[1,2,3]`, or `[1.500000,inf]` for `VECTOR(FLOAT)`.

use std::borrow::Cow;

use cdp_calls::Timestamp;
use cdp_rows::{Date, Time, Value};

/// Nanoseconds in one second.
const NANOS_PER_SEC: i128 = 1_000_000_000;
/// Seconds in one day.
const SECS_PER_DAY: i128 = 86_400;
/// The factor older servers pack a `timestamp_tz`'s offset index with.
const LEGACY_TZ_SHIFT: i128 = 16_384;

/// How the cells of one result column are read: Snowflake's type for it (the result's
/// `rowtype[].type`), with the parameters that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// NUMBER and its synonyms, with the column's scale.
    Fixed {
        /// Digits after the decimal point.
        scale: u8,
    },
    /// DECFLOAT: a decimal with its own exponent.
    DecFloat,
    /// FLOAT, DOUBLE, REAL.
    Real,
    /// VARCHAR, CHAR, STRING, TEXT.
    Text,
    /// BOOLEAN.
    Boolean,
    /// BINARY, VARBINARY.
    Binary,
    /// DATE.
    Date,
    /// TIME.
    Time,
    /// TIMESTAMP_NTZ.
    TimestampNtz,
    /// TIMESTAMP_LTZ.
    TimestampLtz,
    /// TIMESTAMP_TZ, with the column's scale (for the older packed form).
    TimestampTz {
        /// Digits of the second's fraction (0 to 9).
        scale: u8,
    },
    /// VARIANT, OBJECT, ARRAY.
    Json,
    /// VECTOR(INT, n) or VECTOR(FLOAT, n).
    Vector,
}

/// Reads one non-NULL cell of a column of `kind`; the error says why the text is not
/// a value of that type.
pub(crate) fn decode(kind: Kind, raw: &str) -> Result<Value<'static>, String> {
    match kind {
        Kind::Fixed { scale } => fixed(raw, scale),
        Kind::DecFloat => decfloat(raw),
        Kind::Real => real(raw).map(Value::Float),
        Kind::Text => Ok(Value::Text(Cow::Owned(raw.to_owned()))),
        Kind::Boolean => boolean(raw).map(Value::Bool),
        Kind::Binary => hex(raw).map(|bytes| Value::Bytes(Cow::Owned(bytes))),
        Kind::Date => date(raw).map(Value::Date),
        Kind::Time => time(raw).map(Value::Time),
        Kind::TimestampNtz => epoch(raw).map(Value::TimestampWithoutZone),
        Kind::TimestampLtz => epoch(raw).map(Value::Timestamp),
        Kind::TimestampTz { scale } => timestamp_tz(raw, scale).map(Value::Timestamp),
        Kind::Json => json(raw).map(|text| Value::Json(Cow::Owned(text.into_owned()))),
        Kind::Vector => vector(raw),
    }
}

/// A NUMBER: `Int` when the column's scale is 0 and the value fits an `i64`, else
/// `Decimal` with the text exactly as sent (every digit, the scale's zeros).
pub(crate) fn fixed(raw: &str, scale: u8) -> Result<Value<'static>, String> {
    if !is_plain_decimal(raw) {
        return Err(format!("{raw:?} is not a decimal number"));
    }
    if scale == 0
        && !raw.contains('.')
        && let Ok(i) = raw.parse::<i64>()
    {
        return Ok(Value::Int(i));
    }
    Ok(Value::Decimal(Cow::Owned(raw.to_owned())))
}

/// A DECFLOAT: `Decimal` with the text as sent (it may carry an exponent).
pub(crate) fn decfloat(raw: &str) -> Result<Value<'static>, String> {
    let (mantissa, exponent) = match raw.find(['e', 'E']) {
        Some(at) => (&raw[..at], Some(&raw[at + 1..])),
        None => (raw, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    if is_plain_decimal(mantissa) && exponent_ok {
        Ok(Value::Decimal(Cow::Owned(raw.to_owned())))
    } else {
        Err(format!("{raw:?} is not a decimal number"))
    }
}

/// `[+-]digits[.digits]`.
fn is_plain_decimal(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && fraction.is_none_or(all_digits)
}

/// A FLOAT: its decimal text, or `NaN`, `inf`/`Infinity`, `-inf`/`-Infinity`.
pub(crate) fn real(raw: &str) -> Result<f64, String> {
    let bad = || format!("{raw:?} is not a floating-point number");
    // Rust reads `inf`, `infinity` and `nan` in any case; it also reads forms Snowflake
    // never sends (`+5`, `.5`), which do no harm.
    if raw.is_empty() || raw.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(bad());
    }
    raw.parse::<f64>().map_err(|_| bad())
}

/// A BOOLEAN: `1`/`0`, or `true`/`false` in any case.
pub(crate) fn boolean(raw: &str) -> Result<bool, String> {
    if raw == "1" || raw.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if raw == "0" || raw.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("{raw:?} is not a boolean"))
    }
}

/// A BINARY: hexadecimal digits, two per byte, in either case.
pub(crate) fn hex(raw: &str) -> Result<Vec<u8>, String> {
    if !raw.len().is_multiple_of(2) {
        return Err(format!("binary value of {} hexadecimal digits (an odd number)", raw.len()));
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(format!("binary value with {:?}, which is not a hexadecimal digit", char::from(b))),
    };
    raw.as_bytes().chunks_exact(2).map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

/// A DATE: days since 1970-01-01.
pub(crate) fn date(raw: &str) -> Result<Date, String> {
    let days: i64 = raw.parse().map_err(|_| format!("{raw:?} is not a number of days"))?;
    Date::from_days_since_unix_epoch(days)
        .ok_or_else(|| "the date is outside the years 0000 to 9999".to_owned())
}

/// A TIME: seconds since midnight with a fraction; digits past the microsecond are
/// dropped.
pub(crate) fn time(raw: &str) -> Result<Time, String> {
    let nanos = decimal_nanos(raw).ok_or_else(|| format!("{raw:?} is not a number of seconds"))?;
    if !(0..SECS_PER_DAY * NANOS_PER_SEC).contains(&nanos) {
        return Err(format!("{raw:?} seconds is not a time of day"));
    }
    let micros = u64::try_from(nanos / 1000).map_err(|_| format!("{raw:?} seconds is not a time of day"))?;
    Time::from_micros_since_midnight(micros).ok_or_else(|| format!("{raw:?} seconds is not a time of day"))
}

/// A TIMESTAMP_NTZ or TIMESTAMP_LTZ: seconds since the Unix epoch as a decimal. The
/// instant is rounded down to the microsecond, which drops the digits past it from
/// the written time (`…59.9999995` is `…59.999999`, before 1970 as after).
pub(crate) fn epoch(raw: &str) -> Result<Timestamp, String> {
    let nanos = decimal_nanos(raw).ok_or_else(|| format!("{raw:?} is not a number of seconds"))?;
    timestamp_from_nanos(nanos)
}

/// A TIMESTAMP_TZ: the instant in UTC; the offset it was written with is checked and
/// dropped. `scale` is the column's, needed for the older packed form only.
pub(crate) fn timestamp_tz(raw: &str, scale: u8) -> Result<Timestamp, String> {
    let bad = || format!("{raw:?} is not a TIMESTAMP_TZ value (epoch seconds and an offset)");
    let mut parts = raw.split_ascii_whitespace();
    let first = parts.next().ok_or_else(bad)?;
    let nanos = match (parts.next(), parts.next()) {
        (Some(index), None) => {
            check_offset_index(index.parse::<i128>().map_err(|_| bad())?, raw)?;
            decimal_nanos(first).ok_or_else(bad)?
        }
        (None, None) => {
            // The older packed form: an integer.
            if scale > 9 || first.contains('.') {
                return Err(bad());
            }
            let packed: i128 = first.parse().map_err(|_| bad())?;
            check_offset_index(packed.rem_euclid(LEGACY_TZ_SHIFT), raw)?;
            let scaled = packed.div_euclid(LEGACY_TZ_SHIFT);
            scaled.checked_mul(10_i128.pow(9 - u32::from(scale))).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    timestamp_from_nanos(nanos)
}

/// Offsets run from -24:00 to +24:00: indexes 0 to 2880.
fn check_offset_index(index: i128, raw: &str) -> Result<(), String> {
    if (0..=2880).contains(&index) {
        Ok(())
    } else {
        Err(format!("{raw:?} has a time zone offset outside -24:00 to +24:00"))
    }
}

fn timestamp_from_nanos(nanos: i128) -> Result<Timestamp, String> {
    i64::try_from(nanos.div_euclid(1000))
        .ok()
        .and_then(Timestamp::from_micros)
        .ok_or_else(|| "the timestamp is outside the years 0000 to 9999".to_owned())
}

/// `[+-]digits[.digits]` seconds as nanoseconds (a minus sign applies to the whole
/// number); `None` when it is not such a number or is too large. Digits past the
/// nanosecond are dropped (Snowflake sends at most nine).
fn decimal_nanos(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (digits, ""),
    };
    if whole.is_empty() || whole.len() > 20 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.contains('.') && fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let mut fraction_nanos: i128 = 0;
    for i in 0..9 {
        let digit = fraction.as_bytes().get(i).map_or(0, |b| b - b'0');
        fraction_nanos = fraction_nanos * 10 + i128::from(digit);
    }
    let nanos = whole * NANOS_PER_SEC + fraction_nanos;
    Some(if negative { -nanos } else { nanos })
}

/// VARIANT, OBJECT and ARRAY text: kept as sent (every digit of every number), except
/// that Snowflake's bare `undefined` (an SQL NULL inside an array) becomes `null`.
/// `NaN` and `Infinity`, which JSON cannot carry, are refused.
pub(crate) fn json(raw: &str) -> Result<Cow<'_, str>, String> {
    let bytes = raw.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
        } else if b.is_ascii_alphabetic() && (i == 0 || !is_word_byte(bytes[i - 1])) {
            let end = bytes[i..].iter().position(|b| !is_word_byte(*b)).map_or(bytes.len(), |n| i + n);
            match &raw[i..end] {
                "undefined" => {
                    let buf = out.get_or_insert_with(|| String::with_capacity(raw.len()));
                    buf.push_str(&raw[copied..i]);
                    buf.push_str("null");
                    copied = end;
                }
                word @ ("NaN" | "Infinity" | "inf" | "nan") => {
                    return Err(format!(
                        "the value holds the number {word}, which JSON cannot carry; \
                         convert it in the query (TO_VARCHAR, or IFF with IS_NULL_VALUE)"
                    ));
                }
                _ => {}
            }
            i = end;
            continue;
        }
        i += 1;
    }
    Ok(match out {
        None => Cow::Borrowed(raw),
        Some(mut buf) => {
            buf.push_str(&raw[copied..]);
            Cow::Owned(buf)
        }
    })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A VECTOR: an `Array` of `Int`s (`VECTOR(INT)`) or `Float`s (`VECTOR(FLOAT)`, whose
/// elements always carry a decimal point, or are `inf`, `-inf`, `nan`).
pub(crate) fn vector(raw: &str) -> Result<Value<'static>, String> {
    let bad = || format!("{raw:?} is not a VECTOR value");
    let body = raw.trim().strip_prefix('[').and_then(|r| r.strip_suffix(']')).ok_or_else(bad)?;
    if body.trim().is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    body.split(',')
        .map(|token| {
            let token = token.trim();
            if token.contains(['.', 'e', 'E']) || matches!(token, "inf" | "-inf" | "nan") {
                real(token).map(Value::Float).map_err(|_| bad())
            } else {
                token.parse::<i64>().map(Value::Int).map_err(|_| bad())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn numbers_keep_every_digit() {
        assert_eq!(fixed("42", 0), Ok(Value::Int(42)));
        assert_eq!(fixed("-9223372036854775808", 0), Ok(Value::Int(i64::MIN)));
        assert_eq!(fixed("9223372036854775807", 0), Ok(Value::Int(i64::MAX)));
        // One past i64: every digit, as a decimal.
        assert_eq!(fixed("9223372036854775808", 0), Ok(Value::decimal("9223372036854775808")));
        let n38 = "99999999999999999999999999999999999999";
        assert_eq!(fixed(n38, 0), Ok(Value::decimal(n38)));
        assert_eq!(fixed(&format!("-{n38}"), 0), Ok(Value::decimal(format!("-{n38}"))));
        // A scale keeps the text as sent, zeros and all, even for whole values.
        assert_eq!(fixed("-12.340", 3), Ok(Value::decimal("-12.340")));
        assert_eq!(fixed("-0.05", 2), Ok(Value::decimal("-0.05")));
        assert_eq!(fixed("7.00", 2), Ok(Value::decimal("7.00")));
        let scaled38 = "-9999999999999999999999999999.9999999999";
        assert_eq!(fixed(scaled38, 10), Ok(Value::decimal(scaled38)));
        for bad in ["", "-", "1.", ".5", "1e5", "NaN", "1 ", "0x10", "1.2.3"] {
            assert!(fixed(bad, 0).is_err(), "{bad:?}");
        }
        assert_eq!(decfloat("1.5E+3"), Ok(Value::decimal("1.5E+3")));
        assert_eq!(decfloat("-123.456e-7"), Ok(Value::decimal("-123.456e-7")));
        assert!(decfloat("1e").is_err() && decfloat("e5").is_err());
    }

    #[test]
    fn floats_include_nan_and_infinities() {
        assert_eq!(real("1.5"), Ok(1.5));
        assert_eq!(real("-0"), Ok(-0.0));
        assert_eq!(real("1.7976931348623157e308"), Ok(f64::MAX));
        assert_eq!(real("inf"), Ok(f64::INFINITY));
        assert_eq!(real("-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(real("Infinity"), Ok(f64::INFINITY));
        assert_eq!(real("-Infinity"), Ok(f64::NEG_INFINITY));
        assert!(real("NaN").unwrap().is_nan());
        assert!(real("").is_err() && real("one").is_err() && real(" 1").is_err());
    }

    #[test]
    fn booleans_binary_and_text() {
        assert_eq!((boolean("1"), boolean("0")), (Ok(true), Ok(false)));
        assert_eq!((boolean("TRUE"), boolean("false")), (Ok(true), Ok(false)));
        assert!(boolean("2").is_err() && boolean("").is_err());
        assert_eq!(hex("00ff10Ab"), Ok(vec![0x00, 0xff, 0x10, 0xab]));
        assert_eq!(hex(""), Ok(vec![]));
        assert!(hex("abc").unwrap_err().contains("odd"));
        assert!(hex("zz").is_err());
        assert_eq!(decode(Kind::Text, "ümlaut ✓"), Ok(Value::text("ümlaut ✓")));
        assert_eq!(decode(Kind::Binary, "CAFE"), Ok(Value::bytes(vec![0xca, 0xfe])));
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date("0").unwrap().to_string(), "1970-01-01");
        assert_eq!(date("-1").unwrap().to_string(), "1969-12-31");
        assert_eq!(date("19723").unwrap().to_string(), "2024-01-01");
        assert_eq!(date("-719528").unwrap().to_string(), "0000-01-01");
        assert_eq!(date("2932896").unwrap().to_string(), "9999-12-31");
        assert!(date("2932897").is_err() && date("-719529").is_err() && date("1.5").is_err());

        assert_eq!(time("0").unwrap().to_string(), "00:00:00");
        assert_eq!(time("45296.123456789").unwrap().to_string(), "12:34:56.123456");
        assert_eq!(time("45296.5").unwrap().to_string(), "12:34:56.500");
        assert_eq!(time("86399.999999999").unwrap().to_string(), "23:59:59.999999");
        assert!(time("86400").is_err() && time("-1").is_err() && time("noon").is_err());
    }

    #[test]
    fn timestamps_without_zone_and_local() {
        assert_eq!(epoch("0.000000000"), Ok(Timestamp::UNIX_EPOCH));
        assert_eq!(epoch("1704103200.123456789"), Ok(ts("2024-01-01T10:00:00.123456Z")));
        assert_eq!(epoch("1704103200"), Ok(ts("2024-01-01T10:00:00Z")));
        // Before 1970 the whole number is negative: -1.5 s is 23:59:58.5.
        assert_eq!(epoch("-1.500000000"), Ok(ts("1969-12-31T23:59:58.5Z")));
        assert_eq!(epoch("-0.000000500"), Ok(ts("1969-12-31T23:59:59.999999Z")));
        assert_eq!(epoch("-86399.999999999"), Ok(ts("1969-12-31T00:00:00.000000Z")));
        assert_eq!(epoch("-2208988800.250000000"), Ok(ts("1899-12-31T23:59:59.750Z")));
        assert_eq!(epoch("253402300799.999999999"), Ok(ts("9999-12-31T23:59:59.999999Z")));
        assert!(epoch("253402300800").unwrap_err().contains("0000 to 9999"));
        assert!(epoch("-62167219201").is_err());
        for bad in ["", "-", "1.", ".5", "1e9", "1 2", "99999999999999999999999"] {
            assert!(epoch(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            decode(Kind::TimestampNtz, "1.5"),
            Ok(Value::TimestampWithoutZone(ts("1970-01-01T00:00:01.5Z")))
        );
        assert_eq!(decode(Kind::TimestampLtz, "1.5"), Ok(Value::Timestamp(ts("1970-01-01T00:00:01.5Z"))));
    }

    #[test]
    fn timestamps_with_zone_are_the_instant_in_utc() {
        // '2024-01-01 10:00:00 +05:30'::TIMESTAMP_TZ is 04:30 UTC; 330 + 1440 = 1770.
        assert_eq!(timestamp_tz("1704083400.000000000 1770", 9), Ok(ts("2024-01-01T04:30:00Z")));
        // The same instant written at -08:00 (index 960) is the same value.
        assert_eq!(timestamp_tz("1704083400.000000000 960", 9), Ok(ts("2024-01-01T04:30:00Z")));
        assert_eq!(timestamp_tz("-1.250000000 1440", 9), Ok(ts("1969-12-31T23:59:58.750Z")));
        assert_eq!(timestamp_tz("0 0", 0), Ok(Timestamp::UNIX_EPOCH));
        assert_eq!(timestamp_tz("0 2880", 0), Ok(Timestamp::UNIX_EPOCH));
        assert!(timestamp_tz("0 2881", 0).unwrap_err().contains("offset"));
        assert!(timestamp_tz("0 -1", 0).is_err());
        assert!(timestamp_tz("0 1440 1", 0).is_err() && timestamp_tz("", 0).is_err());
        // The older packed form: (epoch × 10^scale) × 16384 + index.
        let packed = |scaled: i128, index: i128| (scaled * 16_384 + index).to_string();
        assert_eq!(timestamp_tz(&packed(1_704_083_400_123, 1770), 3), Ok(ts("2024-01-01T04:30:00.123Z")));
        assert_eq!(timestamp_tz(&packed(-1_500, 1440), 3), Ok(ts("1969-12-31T23:59:58.5Z")));
        assert!(timestamp_tz(&packed(0, 3000), 3).is_err());
        assert_eq!(
            decode(Kind::TimestampTz { scale: 9 }, "1704083400.5 1770"),
            Ok(Value::Timestamp(ts("2024-01-01T04:30:00.5Z")))
        );
    }

    #[test]
    fn json_is_kept_digit_for_digit() {
        let nested = "{\n  \"big\": 9223372036854775808,\n  \"list\": [\n    1.000000000000000000001,\n    \"undefined NaN\"\n  ]\n}";
        assert_eq!(json(nested), Ok(Cow::Borrowed(nested)));
        assert_eq!(decode(Kind::Json, nested), Ok(Value::json(nested)));
        assert_eq!(json("[1, undefined, 2]").unwrap(), "[1, null, 2]");
        assert_eq!(json("[undefined]").unwrap(), "[null]");
        assert_eq!(
            json("{\"undefined\": [true, false, null, undefined]}").unwrap(),
            "{\"undefined\": [true, false, null, null]}"
        );
        assert_eq!(json("\"a \\\" undefined\"").unwrap(), "\"a \\\" undefined\"");
        assert_eq!(json("[1e5, -2E-3]").unwrap(), "[1e5, -2E-3]");
        assert!(json("[1, NaN]").unwrap_err().contains("NaN"));
        assert!(json("{\"x\": -Infinity}").unwrap_err().contains("Infinity"));
    }

    #[test]
    fn vectors_are_arrays() {
        assert_eq!(vector("[1,2,-3]"), Ok(Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(-3)])));
        let floats = vector("[1.500000,inf,-inf]").unwrap();
        assert_eq!(
            floats,
            Value::Array(vec![
                Value::Float(1.5),
                Value::Float(f64::INFINITY),
                Value::Float(f64::NEG_INFINITY)
            ])
        );
        assert!(vector("1,2").is_err() && vector("[1,x]").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Snowflake's text for `nanos` nanoseconds: a decimal with nine fraction digits.
        fn seconds_text(nanos: i128) -> String {
            let sign = if nanos < 0 { "-" } else { "" };
            let abs = nanos.unsigned_abs();
            format!("{sign}{}.{:09}", abs / 1_000_000_000, abs % 1_000_000_000)
        }

        const MIN_NANOS: i128 = Timestamp::MIN.as_micros() as i128 * 1000;
        const MAX_NANOS: i128 = Timestamp::MAX.as_micros() as i128 * 1000 + 999;

        proptest! {
            #[test]
            fn integers_are_ints(i in any::<i64>()) {
                prop_assert_eq!(fixed(&i.to_string(), 0), Ok(Value::Int(i)));
            }

            #[test]
            fn decimals_keep_their_text(negative in any::<bool>(), digits in "[0-9]{1,38}", scale in 0_usize..=37) {
                let digits = if scale > 0 && scale < digits.len() {
                    format!("{}.{}", &digits[..digits.len() - scale], &digits[digits.len() - scale..])
                } else {
                    digits
                };
                let text = format!("{}{digits}", if negative { "-" } else { "" });
                let scale = if digits.contains('.') { scale as u8 } else { 0 };
                match fixed(&text, scale).unwrap() {
                    Value::Int(i) => prop_assert_eq!(i128::from(i), text.parse::<i128>().unwrap()),
                    Value::Decimal(d) => prop_assert_eq!(d.as_ref(), text.as_str()),
                    other => prop_assert!(false, "{other:?}"),
                }
            }

            #[test]
            fn epoch_seconds_are_the_instant_cut_to_the_microsecond(nanos in MIN_NANOS..=MAX_NANOS) {
                let expected = Timestamp::from_micros(i64::try_from(nanos.div_euclid(1000)).unwrap()).unwrap();
                let text = seconds_text(nanos);
                prop_assert_eq!(epoch(&text), Ok(expected));
                // The written time is the text's reading with its digits cut: compare
                // the fraction digits for instants after 1970.
                if nanos >= 0 {
                    let written = expected.to_string();
                    let micros = &text[text.len() - 9..text.len() - 3];
                    prop_assert!(written.contains(micros.trim_end_matches('0')), "{written} {text}");
                }
            }

            #[test]
            fn timestamp_tz_is_its_epoch_whatever_the_offset(nanos in MIN_NANOS..=MAX_NANOS, index in 0_i32..=2880) {
                let text = seconds_text(nanos);
                prop_assert_eq!(timestamp_tz(&format!("{text} {index}"), 9), epoch(&text));
            }

            #[test]
            fn times_of_day(nanos in 0_i128..86_400_000_000_000) {
                let time = time(&seconds_text(nanos)).unwrap();
                prop_assert_eq!(i128::from(time.micros_since_midnight()), nanos / 1000);
            }

            #[test]
            fn dates_by_days(days in -719_528_i64..=2_932_896) {
                prop_assert_eq!(i64::from(date(&days.to_string()).unwrap().days_since_unix_epoch()), days);
            }

            #[test]
            fn binary_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64), upper in any::<bool>()) {
                let text: String = bytes.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect();
                prop_assert_eq!(hex(&text), Ok(bytes));
            }

            #[test]
            fn json_without_snowflake_words_is_untouched(text in "[ \\[\\]{}:,\"a-z0-9.eE+-]{0,64}") {
                if !text.contains("undefined") && !text.contains("inf") && !text.contains("nan") {
                    prop_assert_eq!(json(&text), Ok(Cow::Borrowed(text.as_str())));
                }
            }

            #[test]
            fn no_decoder_panics(text in "\\PC{0,40}", scale in 0_u8..=12) {
                for kind in [
                    Kind::Fixed { scale }, Kind::DecFloat, Kind::Real, Kind::Text, Kind::Boolean, Kind::Binary,
                    Kind::Date, Kind::Time, Kind::TimestampNtz, Kind::TimestampLtz, Kind::TimestampTz { scale },
                    Kind::Json, Kind::Vector,
                ] {
                    let _ = decode(kind, &text);
                }
            }
        }
    }
}

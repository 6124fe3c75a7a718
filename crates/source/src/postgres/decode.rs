//! PostgreSQL's binary wire format to [`Value`]s: one [`Decoder`] per result column,
//! chosen once from the column's type, then applied to every row.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use cdp_calls::Timestamp;
use cdp_rows::{Date, Time, Value};
use tokio_postgres::types::{FromSql, Kind, Type};

use super::numeric::write_numeric;

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
/// Microseconds in a day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Type OIDs of the built-in types read here (`pg_type.oid`).
mod oid {
    pub(super) const BOOL: u32 = 16;
    pub(super) const BYTEA: u32 = 17;
    pub(super) const CHAR: u32 = 18;
    pub(super) const NAME: u32 = 19;
    pub(super) const INT8: u32 = 20;
    pub(super) const INT2: u32 = 21;
    pub(super) const INT4: u32 = 23;
    pub(super) const TEXT: u32 = 25;
    pub(super) const OID: u32 = 26;
    pub(super) const JSON: u32 = 114;
    pub(super) const XML: u32 = 142;
    pub(super) const CIDR: u32 = 650;
    pub(super) const FLOAT4: u32 = 700;
    pub(super) const FLOAT8: u32 = 701;
    pub(super) const UNKNOWN: u32 = 705;
    pub(super) const MACADDR8: u32 = 774;
    pub(super) const MACADDR: u32 = 829;
    pub(super) const INET: u32 = 869;
    pub(super) const BPCHAR: u32 = 1042;
    pub(super) const VARCHAR: u32 = 1043;
    pub(super) const DATE: u32 = 1082;
    pub(super) const TIME: u32 = 1083;
    pub(super) const TIMESTAMP: u32 = 1114;
    pub(super) const TIMESTAMPTZ: u32 = 1184;
    pub(super) const INTERVAL: u32 = 1186;
    pub(super) const TIMETZ: u32 = 1266;
    pub(super) const NUMERIC: u32 = 1700;
    pub(super) const UUID: u32 = 2950;
    pub(super) const JSONB: u32 = 3802;
    pub(super) const VOID: u32 = 2278;
}

/// How one column's binary values become [`Value`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoder {
    /// `bool` → [`Value::Bool`].
    Bool,
    /// `int2` → [`Value::Int`].
    Int2,
    /// `int4` → [`Value::Int`].
    Int4,
    /// `int8` → [`Value::Int`].
    Int8,
    /// `oid` → [`Value::Int`].
    Oid,
    /// `float4` → [`Value::Float`] through its shortest decimal form.
    Float4,
    /// `float8` → [`Value::Float`].
    Float8,
    /// `numeric` → [`Value::Decimal`] with the server's text.
    Numeric,
    /// `text`, `varchar`, `bpchar`, `name`, `xml`, `citext`, enums → [`Value::Text`].
    Text,
    /// `"char"` (one byte) → [`Value::Text`].
    Char,
    /// `json` → [`Value::Json`].
    Json,
    /// `jsonb` (a version byte, then the text) → [`Value::Json`].
    Jsonb,
    /// `bytea` → [`Value::Bytes`].
    Bytea,
    /// `uuid` → [`Value::Text`], lower-case with hyphens.
    Uuid,
    /// `date` → [`Value::Date`].
    Date,
    /// `time` → [`Value::Time`].
    Time,
    /// `timetz` → [`Value::Text`] as the server writes it.
    TimeTz,
    /// `timestamp` → [`Value::TimestampWithoutZone`].
    Timestamp,
    /// `timestamptz` → [`Value::Timestamp`].
    TimestampTz,
    /// `interval` → [`Value::Text`] as the server writes it (`IntervalStyle` postgres).
    Interval,
    /// `inet`, `cidr` → [`Value::Text`] as the server writes them.
    Inet,
    /// `macaddr` → [`Value::Text`].
    MacAddr,
    /// `macaddr8` → [`Value::Text`].
    MacAddr8,
    /// `void` (what `SELECT pg_sleep(1)` returns) → [`Value::Null`].
    Void,
    /// An array whose elements decode with the inner decoder → nested [`Value::Array`]s.
    Array(Box<Decoder>),
}

/// Why a column's type cannot be read, with a hint on what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported {
    /// How to change the query.
    pub(crate) hint: String,
}

impl Decoder {
    /// The decoder for values of type `ty` in column `column`.
    pub(crate) fn for_type(ty: &Type, column: &str) -> Result<Decoder, Unsupported> {
        let cast_hint = || Unsupported {
            hint: format!("cast it in the query, for example `{}::text`", quote_ident(column)),
        };
        match ty.kind() {
            Kind::Enum(_) => return Ok(Decoder::Text),
            Kind::Domain(base) => return Decoder::for_type(base, column),
            Kind::Array(element) => {
                return Decoder::for_type(element, column).map(|d| Decoder::Array(Box::new(d))).map_err(
                    |_| Unsupported {
                        hint: format!("cast it in the query, for example `{}::text[]`", quote_ident(column)),
                    },
                );
            }
            Kind::Composite(_) => {
                return Err(Unsupported {
                    hint: format!("convert it in the query, for example `to_jsonb({})`", quote_ident(column)),
                });
            }
            Kind::Simple if ty.name() == "citext" => return Ok(Decoder::Text),
            _ => {}
        }
        Ok(match ty.oid() {
            oid::BOOL => Decoder::Bool,
            oid::INT2 => Decoder::Int2,
            oid::INT4 => Decoder::Int4,
            oid::INT8 => Decoder::Int8,
            oid::OID => Decoder::Oid,
            oid::FLOAT4 => Decoder::Float4,
            oid::FLOAT8 => Decoder::Float8,
            oid::NUMERIC => Decoder::Numeric,
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::XML | oid::UNKNOWN => Decoder::Text,
            oid::CHAR => Decoder::Char,
            oid::JSON => Decoder::Json,
            oid::JSONB => Decoder::Jsonb,
            oid::BYTEA => Decoder::Bytea,
            oid::UUID => Decoder::Uuid,
            oid::DATE => Decoder::Date,
            oid::TIME => Decoder::Time,
            oid::TIMETZ => Decoder::TimeTz,
            oid::TIMESTAMP => Decoder::Timestamp,
            oid::TIMESTAMPTZ => Decoder::TimestampTz,
            oid::INTERVAL => Decoder::Interval,
            oid::INET | oid::CIDR => Decoder::Inet,
            oid::MACADDR => Decoder::MacAddr,
            oid::MACADDR8 => Decoder::MacAddr8,
            oid::VOID => Decoder::Void,
            _ => return Err(cast_hint()),
        })
    }

    /// The value of one field: `None` is SQL `NULL`. Text, JSON and bytes borrow
    /// from `raw` (the driver's buffer): nothing is copied.
    pub(crate) fn decode<'a>(&self, raw: Option<&'a [u8]>) -> Result<Value<'a>, String> {
        match raw {
            None => Ok(Value::Null),
            Some(raw) => self.decode_present(raw),
        }
    }

    /// The value of one non-null field.
    fn decode_present<'a>(&self, raw: &'a [u8]) -> Result<Value<'a>, String> {
        Ok(match self {
            Decoder::Bool => match raw {
                [b] => Value::Bool(*b != 0),
                _ => return Err(length_error("boolean", 1, raw)),
            },
            Decoder::Int2 => Value::Int(i64::from(i16::from_be_bytes(fixed(raw, "int2")?))),
            Decoder::Int4 => Value::Int(i64::from(i32::from_be_bytes(fixed(raw, "int4")?))),
            Decoder::Int8 => Value::Int(i64::from_be_bytes(fixed(raw, "int8")?)),
            Decoder::Oid => Value::Int(i64::from(u32::from_be_bytes(fixed(raw, "oid")?))),
            Decoder::Float4 => Value::from(f32::from_be_bytes(fixed(raw, "float4")?)),
            Decoder::Float8 => Value::Float(f64::from_be_bytes(fixed(raw, "float8")?)),
            Decoder::Numeric => {
                let mut text = String::new();
                write_numeric(raw, &mut text)?;
                Value::Decimal(Cow::Owned(text))
            }
            Decoder::Text => Value::Text(Cow::Borrowed(utf8(raw)?)),
            Decoder::Char => Value::Text(Cow::Owned(char_text(raw)?)),
            Decoder::Json => Value::Json(Cow::Borrowed(utf8(raw)?)),
            Decoder::Jsonb => match raw.split_first() {
                Some((1, text)) => Value::Json(Cow::Borrowed(utf8(text)?)),
                Some((version, _)) => return Err(format!("unknown jsonb format version {version}")),
                None => return Err("an empty jsonb value".to_owned()),
            },
            Decoder::Bytea => Value::Bytes(Cow::Borrowed(raw)),
            Decoder::Uuid => Value::Text(Cow::Owned(uuid_text(fixed(raw, "uuid")?))),
            Decoder::Date => date(i32::from_be_bytes(fixed(raw, "date")?))?,
            Decoder::Time => time(i64::from_be_bytes(fixed(raw, "time")?))?,
            Decoder::TimeTz => Value::Text(Cow::Owned(timetz_text(raw)?)),
            Decoder::Timestamp => {
                timestamp(i64::from_be_bytes(fixed(raw, "timestamp")?), Value::TimestampWithoutZone)?
            }
            Decoder::TimestampTz => {
                timestamp(i64::from_be_bytes(fixed(raw, "timestamptz")?), Value::Timestamp)?
            }
            Decoder::Interval => Value::Text(Cow::Owned(interval_text(fixed(raw, "interval")?))),
            Decoder::Inet => Value::Text(Cow::Owned(inet_text(raw)?)),
            Decoder::MacAddr => Value::Text(Cow::Owned(mac_text(&fixed::<6>(raw, "macaddr")?))),
            Decoder::MacAddr8 => Value::Text(Cow::Owned(mac_text(&fixed::<8>(raw, "macaddr8")?))),
            Decoder::Void => Value::Null,
            Decoder::Array(element) => array(element, raw)?,
        })
    }
}

/// The raw bytes of one field, borrowed from the driver's row: any type is accepted,
/// and `NULL` is `None`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawField<'a>(pub(crate) Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawField<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawField(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawField(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `name` double-quoted when it is not a plain lower-case identifier.
fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_owned() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// A fixed-size value.
fn fixed<const N: usize>(raw: &[u8], what: &str) -> Result<[u8; N], String> {
    raw.try_into().map_err(|_| length_error(what, N, raw))
}

/// A value of the wrong length.
fn length_error(what: &str, expected: usize, raw: &[u8]) -> String {
    format!("a binary {what} is {expected} bytes long, got {}", raw.len())
}

/// Text that must be UTF-8 (the connection's client encoding).
fn utf8(raw: &[u8]) -> Result<&str, String> {
    match std::str::from_utf8(raw) {
        Ok(text) => Ok(text),
        Err(e) => Err(format!("text is not valid UTF-8 (at byte {})", e.valid_up_to())),
    }
}

/// `"char"`: one byte, written as `charout` does (`\ooo` for bytes over 127, nothing
/// for the zero byte).
fn char_text(raw: &[u8]) -> Result<String, String> {
    match raw {
        [] | [0] => Ok(String::new()),
        [b] if b.is_ascii() => Ok(char::from(*b).to_string()),
        [b] => Ok(format!("\\{b:03o}")),
        _ => Err(length_error("\"char\"", 1, raw)),
    }
}

/// Lower-case hexadecimal digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `b` as two lower-case hexadecimal digits.
fn push_hex(out: &mut String, b: u8) {
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0F)]));
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower-case.
fn uuid_text(bytes: [u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        push_hex(&mut out, *b);
    }
    out
}

/// A `date`: days since 2000-01-01; `i32::MAX` and `i32::MIN` are ±infinity.
fn date(days: i32) -> Result<Value<'static>, String> {
    match days {
        i32::MAX => Ok(Value::Text(Cow::Borrowed("infinity"))),
        i32::MIN => Ok(Value::Text(Cow::Borrowed("-infinity"))),
        _ => Date::from_days_since_unix_epoch(i64::from(days) + PG_EPOCH_DAYS)
            .map(Value::Date)
            .ok_or_else(|| "the date is outside the years 0000 to 9999".to_owned()),
    }
}

/// A `time`: microseconds since midnight, up to and including `24:00:00`.
fn time(micros: i64) -> Result<Value<'static>, String> {
    if micros == MICROS_PER_DAY {
        return Ok(Value::Text(Cow::Borrowed("24:00:00")));
    }
    u64::try_from(micros)
        .ok()
        .and_then(Time::from_micros_since_midnight)
        .map(Value::Time)
        .ok_or_else(|| format!("{micros} microseconds is not a time of day"))
}

/// A `timestamp` or `timestamptz`: microseconds since 2000-01-01 (UTC for
/// `timestamptz`); `i64::MAX` and `i64::MIN` are ±infinity.
fn timestamp(micros: i64, variant: fn(Timestamp) -> Value<'static>) -> Result<Value<'static>, String> {
    match micros {
        i64::MAX => Ok(Value::Text(Cow::Borrowed("infinity"))),
        i64::MIN => Ok(Value::Text(Cow::Borrowed("-infinity"))),
        _ => micros
            .checked_add(PG_EPOCH_MICROS)
            .and_then(Timestamp::from_micros)
            .map(variant)
            .ok_or_else(|| "the timestamp is outside the years 0000 to 9999".to_owned()),
    }
}

/// Writes `HH:MM:SS` with the fraction of a second, trailing zeros dropped, as
/// PostgreSQL does for `time`, `timetz` and `interval` (hours may exceed 23).
fn write_clock(out: &mut String, hours: u64, minutes: u64, seconds: u64, micros: u64) {
    let _ = write!(out, "{hours:02}:{minutes:02}:{seconds:02}");
    if micros != 0 {
        let fraction = format!("{micros:06}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
}

/// `timetz`: microseconds since midnight, then the zone's offset in seconds *west*
/// of UTC; written as `10:00:00.5+02`, `10:00:00-03:30`.
fn timetz_text(raw: &[u8]) -> Result<String, String> {
    let bytes: [u8; 12] = fixed(raw, "timetz")?;
    let micros = i64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
    let zone = i32::from_be_bytes(bytes[8..].try_into().unwrap_or_default());
    let micros = u64::try_from(micros)
        .ok()
        .filter(|&m| m <= MICROS_PER_DAY as u64)
        .ok_or_else(|| format!("{micros} microseconds is not a time of day"))?;
    let mut out = String::with_capacity(24);
    let secs = micros / 1_000_000;
    write_clock(&mut out, secs / 3600, secs / 60 % 60, secs % 60, micros % 1_000_000);
    let abs = zone.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    out.push(if zone <= 0 { '+' } else { '-' });
    let _ = match (m, s) {
        (_, s) if s != 0 => write!(out, "{h:02}:{m:02}:{s:02}"),
        (m, _) if m != 0 => write!(out, "{h:02}:{m:02}"),
        _ => write!(out, "{h:02}"),
    };
    Ok(out)
}

/// `interval`: microseconds, days and months, written as the server does with the
/// default `IntervalStyle` (`postgres`): `1 year 2 mons -3 days +04:05:06.5`.
fn interval_text(bytes: [u8; 16]) -> String {
    let micros = i64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
    let days = i32::from_be_bytes(bytes[8..12].try_into().unwrap_or_default());
    let months = i32::from_be_bytes(bytes[12..].try_into().unwrap_or_default());
    let (years, months) = (months / 12, months % 12);
    let hours = micros / 3_600_000_000;
    let rest = micros % 3_600_000_000;
    let minutes = rest / 60_000_000;
    let rest = rest % 60_000_000;
    let seconds = rest / 1_000_000;
    let fraction = rest % 1_000_000;

    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    for (value, unit) in [(i64::from(years), "year"), (i64::from(months), "mon"), (i64::from(days), "day")] {
        if value == 0 {
            continue;
        }
        let _ = write!(
            out,
            "{}{}{value} {unit}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || micros != 0 {
        let minus = micros < 0;
        out.push_str(if is_zero { "" } else { " " });
        out.push_str(if minus {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        });
        write_clock(
            &mut out,
            hours.unsigned_abs(),
            minutes.unsigned_abs(),
            seconds.unsigned_abs(),
            fraction.unsigned_abs(),
        );
    }
    out
}

/// `inet` and `cidr`: family, prefix bits, a cidr flag, the address length, the
/// address; written as the server does (`inet` shows the prefix only when it is not
/// the whole address, `cidr` always).
fn inet_text(raw: &[u8]) -> Result<String, String> {
    let [family, bits, is_cidr, len, address @ ..] = raw else {
        return Err(format!("a binary inet needs at least 4 bytes, got {}", raw.len()));
    };
    let (text, max_bits) = match (family, address.len(), usize::from(*len)) {
        (2, 4, 4) => (Ipv4Addr::from(<[u8; 4]>::try_from(address).unwrap_or_default()).to_string(), 32),
        (3, 16, 16) => (ipv6_text(<[u8; 16]>::try_from(address).unwrap_or_default()), 128),
        _ => return Err(format!("malformed binary inet (family {family}, {} address bytes)", address.len())),
    };
    if *bits > max_bits {
        return Err(format!("inet prefix /{bits} is longer than the address"));
    }
    Ok(if *is_cidr != 0 || *bits != max_bits { format!("{text}/{bits}") } else { text })
}

/// An IPv6 address as the server writes it: like [`Ipv6Addr`]'s text, except that an
/// IPv4-compatible address (`::1.2.3.4`, the first 96 bits zero and the next 16 not)
/// keeps its dotted form.
fn ipv6_text(bytes: [u8; 16]) -> String {
    if bytes[..12].iter().all(|&b| b == 0) && bytes[12..14] != [0, 0] {
        return format!("::{}", Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]));
    }
    Ipv6Addr::from(bytes).to_string()
}

/// `08:00:2b:01:02:03`.
fn mac_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        push_hex(&mut out, *b);
    }
    out
}

/// Reads big-endian integers off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn i32(&mut self) -> Result<i32, String> {
        let (head, rest) = self.0.split_first_chunk::<4>().ok_or("a binary array is cut short")?;
        self.0 = rest;
        Ok(i32::from_be_bytes(*head))
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], String> {
        let (head, rest) = self.0.split_at_checked(len).ok_or("a binary array is cut short")?;
        self.0 = rest;
        Ok(head)
    }
}

/// Most dimensions an array may have (PostgreSQL's `MAXDIM`).
const MAX_DIMENSIONS: usize = 6;

/// An array: dimensions, a has-nulls flag, the element type, each dimension's length
/// and lower bound, then each element (length −1 for `NULL`) in row-major order. A
/// multi-dimensional array becomes arrays of arrays; an empty array is `[]`.
fn array<'a>(element: &Decoder, raw: &'a [u8]) -> Result<Value<'a>, String> {
    let mut reader = Reader(raw);
    let dimensions = reader.i32()?;
    let _has_nulls = reader.i32()?;
    let _element_oid = reader.i32()?;
    let dimensions = usize::try_from(dimensions)
        .ok()
        .filter(|&d| d <= MAX_DIMENSIONS)
        .ok_or_else(|| format!("an array cannot have {dimensions} dimensions"))?;
    let mut lengths = [0_usize; MAX_DIMENSIONS];
    let mut total: usize = 1;
    for length in lengths.iter_mut().take(dimensions) {
        let n = reader.i32()?;
        let _lower_bound = reader.i32()?;
        *length = usize::try_from(n).map_err(|_| format!("an array dimension cannot have length {n}"))?;
        total = total.checked_mul(*length).ok_or("an array is too large")?;
    }
    if dimensions == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    // Each element takes at least its 4-byte length: a bound on what to allocate.
    if total > reader.0.len() / 4 {
        return Err(format!("a binary array announces {total} elements but is too short for them"));
    }
    let mut elements = Vec::with_capacity(total);
    for _ in 0..total {
        let len = reader.i32()?;
        let value = if len < 0 {
            Value::Null
        } else {
            element.decode_present(reader.bytes(len as usize)?).map_err(|e| format!("array element: {e}"))?
        };
        elements.push(value);
    }
    if !reader.0.is_empty() {
        return Err("a binary array has bytes after its last element".to_owned());
    }
    Ok(nest(elements, &lengths[..dimensions]))
}

/// Groups a flat row-major list into nested arrays of the given dimensions.
fn nest<'a>(mut flat: Vec<Value<'a>>, lengths: &[usize]) -> Value<'a> {
    for &length in lengths[1..].iter().rev() {
        if length == 0 {
            break;
        }
        let mut grouped = Vec::with_capacity(flat.len() / length);
        let mut items = flat.into_iter();
        loop {
            let chunk: Vec<Value<'a>> = items.by_ref().take(length).collect();
            if chunk.is_empty() {
                break;
            }
            grouped.push(Value::Array(chunk));
        }
        flat = grouped;
    }
    Value::Array(flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interval's binary form.
    fn interval(micros: i64, days: i32, months: i32) -> String {
        let mut b = [0_u8; 16];
        b[..8].copy_from_slice(&micros.to_be_bytes());
        b[8..12].copy_from_slice(&days.to_be_bytes());
        b[12..].copy_from_slice(&months.to_be_bytes());
        interval_text(b)
    }

    #[test]
    fn intervals_as_the_server_writes_them() {
        // Expected texts from PostgreSQL 15's `interval::text` (IntervalStyle postgres).
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(0, 3, 14), "1 year 2 mons 3 days");
        assert_eq!(interval(14_706_500_000, 0, 0), "04:05:06.5");
        assert_eq!(interval(-14_706_000_000, -3, 1), "1 mon -3 days -04:05:06");
        assert_eq!(interval(3_600_000_000, -1, 0), "-1 days +01:00:00");
        assert_eq!(interval(90_000_000_000, 1, 0), "1 day 25:00:00");
    }

    #[test]
    fn arrays_nest_and_keep_nulls() {
        // int4[][] '{{1,NULL},{3,4}}' built by hand.
        let mut raw = Vec::new();
        for v in [2_i32, 1, 23, 2, 1, 2, 1] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        for v in [Some(1_i32), None, Some(3), Some(4)] {
            match v {
                Some(v) => {
                    raw.extend_from_slice(&4_i32.to_be_bytes());
                    raw.extend_from_slice(&v.to_be_bytes());
                }
                None => raw.extend_from_slice(&(-1_i32).to_be_bytes()),
            }
        }
        let value = Decoder::Array(Box::new(Decoder::Int4)).decode(Some(&raw)).unwrap();
        assert_eq!(
            value,
            Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Null]),
                Value::Array(vec![Value::Int(3), Value::Int(4)]),
            ])
        );
        // Malformed arrays are errors, never panics or huge allocations.
        let decoder = Decoder::Array(Box::new(Decoder::Int4));
        assert!(decoder.decode(Some(&raw[..raw.len() - 1])).is_err());
        let mut huge = Vec::new();
        for v in [1_i32, 0, 23, i32::MAX, 1] {
            huge.extend_from_slice(&v.to_be_bytes());
        }
        assert!(decoder.decode(Some(&huge)).is_err());
    }

    #[test]
    fn fixed_width_values_check_their_length() {
        assert!(Decoder::Int4.decode(Some(&[0, 0, 1])).is_err());
        assert!(Decoder::Uuid.decode(Some(&[0; 15])).is_err());
        assert!(Decoder::Bool.decode(Some(&[])).is_err());
        assert_eq!(Decoder::Int2.decode(Some(&[0xFF, 0xFE])).unwrap(), Value::Int(-2));
        assert_eq!(Decoder::Int8.decode(None).unwrap(), Value::Null);
    }

    proptest::proptest! {
        #[test]
        fn no_decoder_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let decoders = [
                Decoder::Bool, Decoder::Int2, Decoder::Int4, Decoder::Int8, Decoder::Oid, Decoder::Float4,
                Decoder::Float8, Decoder::Numeric, Decoder::Text, Decoder::Char, Decoder::Json, Decoder::Jsonb,
                Decoder::Bytea, Decoder::Uuid, Decoder::Date, Decoder::Time, Decoder::TimeTz,
                Decoder::Timestamp, Decoder::TimestampTz, Decoder::Interval, Decoder::Inet,
                Decoder::MacAddr, Decoder::MacAddr8,
                Decoder::Array(Box::new(Decoder::Int4)),
                Decoder::Array(Box::new(Decoder::Array(Box::new(Decoder::Text)))),
            ];
            for d in &decoders {
                let _ = d.decode(Some(&raw));
            }
        }
    }
}

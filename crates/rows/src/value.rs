//! [`Value`]: what a database returns in one cell, and [`Date`] and [`Time`], the
//! calendar types it uses.

use std::borrow::Cow;
use std::fmt;

use cdp_calls::Timestamp;

/// Microseconds in one day.
const MICROS_PER_DAY: u64 = 86_400 * 1_000_000;

/// One value of a query result, as a source hands it over.
///
/// Sources (PostgreSQL, SQLite, …) convert each database value into this type; the
/// mapper then writes it as JSON (see the crate docs for the exact rules). Text,
/// bytes, decimals and JSON borrow from the source's row where it allows
/// (`Value<'a>`), or own their data (`Value<'static>`, [`Value::into_owned`]).
///
/// ```
/// use cdp_rows::{Date, Value};
///
/// assert_eq!(Value::from(42_i32), Value::Int(42));
/// assert_eq!(Value::from("ada@example.com"), Value::Text("ada@example.com".into()));
/// assert_eq!(Value::from(None::<i64>), Value::Null);
/// assert_eq!(Value::decimal("19.99"), Value::Decimal("19.99".into()));
/// assert_eq!(Value::from(Date::from_ymd(2026, 11, 22).unwrap()).kind(), "date");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// SQL `NULL`: JSON `null`, or an absent field where a reserved field is set.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer (any width up to 64 bits).
    Int(i64),
    /// An unsigned integer (any width up to 64 bits).
    UInt(u64),
    /// A binary floating-point number (`real`, `double precision`, `FLOAT`).
    Float(f64),
    /// An exact decimal as its decimal text (`numeric`, `DECIMAL`, Snowflake `NUMBER`),
    /// such as `-12.340` or `1.5E+3`: a JSON number when it fits exactly, a string
    /// otherwise (see the crate docs).
    Decimal(Cow<'a, str>),
    /// Text (`text`, `varchar`, `uuid` as text, …).
    Text(Cow<'a, str>),
    /// Binary data (`bytea`, `BLOB`, `BINARY`): written as standard base64 with
    /// padding.
    Bytes(Cow<'a, [u8]>),
    /// A calendar date: written as `YYYY-MM-DD`.
    Date(Date),
    /// A time of day: written as `HH:MM:SS`, with a fraction when it has one.
    Time(Time),
    /// A timestamp with a time zone (`timestamptz`, `TIMESTAMP_TZ`): an instant,
    /// written as RFC 3339 UTC.
    Timestamp(Timestamp),
    /// A timestamp without a time zone (`timestamp`, `TIMESTAMP_NTZ`, `datetime`):
    /// the wall-clock reading is taken as UTC. Build it with the reading's fields as
    /// if they were UTC, e.g. `"2026-11-22T10:00:00Z".parse()` for
    /// `2026-11-22 10:00:00`.
    TimestampWithoutZone(Timestamp),
    /// JSON text (`json`, `jsonb`, Snowflake `VARIANT`/`OBJECT`/`ARRAY`, the result
    /// of `json_object` or `json_build_object`): any JSON value, validated and
    /// compacted when written; an object nests.
    Json(Cow<'a, str>),
    /// An array (`text[]`, `ARRAY`): a JSON array of its elements.
    Array(Vec<Value<'a>>),
}

impl<'a> Value<'a> {
    /// An exact decimal from its decimal text.
    pub fn decimal(text: impl Into<Cow<'a, str>>) -> Value<'a> {
        Value::Decimal(text.into())
    }

    /// A text value.
    pub fn text(text: impl Into<Cow<'a, str>>) -> Value<'a> {
        Value::Text(text.into())
    }

    /// A JSON value from its JSON text (checked when the row is mapped).
    pub fn json(text: impl Into<Cow<'a, str>>) -> Value<'a> {
        Value::Json(text.into())
    }

    /// A binary value.
    pub fn bytes(bytes: impl Into<Cow<'a, [u8]>>) -> Value<'a> {
        Value::Bytes(bytes.into())
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// What kind of value this is, as error messages name it: `null`, `boolean`,
    /// `integer`, `float`, `decimal`, `text`, `bytes`, `date`, `time`, `timestamp`,
    /// `timestamp without zone`, `JSON` or `array`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampWithoutZone(_) => "timestamp without zone",
            Value::Json(_) => "JSON",
            Value::Array(_) => "array",
        }
    }

    /// The value with all borrowed data copied, free of the source's row.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::UInt(u) => Value::UInt(u),
            Value::Float(f) => Value::Float(f),
            Value::Decimal(d) => Value::Decimal(Cow::Owned(d.into_owned())),
            Value::Text(t) => Value::Text(Cow::Owned(t.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Date(d) => Value::Date(d),
            Value::Time(t) => Value::Time(t),
            Value::Timestamp(t) => Value::Timestamp(t),
            Value::TimestampWithoutZone(t) => Value::TimestampWithoutZone(t),
            Value::Json(j) => Value::Json(Cow::Owned(j.into_owned())),
            Value::Array(items) => Value::Array(items.into_iter().map(Value::into_owned).collect()),
        }
    }
}

macro_rules! from_int {
    ($variant:ident, $wide:ty: $($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(<$wide>::from(v))
            }
        }
    )*};
}
from_int!(Int, i64: i8, i16, i32, i64);
from_int!(UInt, u64: u8, u16, u32, u64);

impl From<i128> for Value<'_> {
    /// An [`Value::Int`] or [`Value::UInt`] when it fits, else an exact
    /// [`Value::Decimal`].
    fn from(v: i128) -> Self {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Value::Int(i),
            (_, Ok(u)) => Value::UInt(u),
            _ => Value::Decimal(Cow::Owned(v.to_string())),
        }
    }
}

impl From<u128> for Value<'_> {
    /// A [`Value::UInt`] when it fits, else an exact [`Value::Decimal`].
    fn from(v: u128) -> Self {
        u64::try_from(v).map_or_else(|_| Value::Decimal(Cow::Owned(v.to_string())), Value::UInt)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value<'_> {
    /// Converts through the shortest decimal form of the `f32`, so that `0.1_f32`
    /// becomes `0.1` rather than `0.10000000149011612`.
    fn from(v: f32) -> Self {
        Value::Float(v.to_string().parse::<f64>().unwrap_or(f64::from(v)))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}

impl<'a> From<Cow<'a, str>> for Value<'a> {
    fn from(v: Cow<'a, str>) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Bytes(Cow::Borrowed(v))
    }
}

impl From<Vec<u8>> for Value<'_> {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Cow::Owned(v))
    }
}

impl From<Date> for Value<'_> {
    fn from(v: Date) -> Self {
        Value::Date(v)
    }
}

impl From<Time> for Value<'_> {
    fn from(v: Time) -> Self {
        Value::Time(v)
    }
}

impl From<Timestamp> for Value<'_> {
    /// A timestamp with a zone.
    fn from(v: Timestamp) -> Self {
        Value::Timestamp(v)
    }
}

impl<'a> From<Vec<Value<'a>>> for Value<'a> {
    fn from(v: Vec<Value<'a>>) -> Self {
        Value::Array(v)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    /// `None` is [`Value::Null`].
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A calendar date between the years 0000 and 9999 (proleptic Gregorian), written as
/// `YYYY-MM-DD`.
///
/// ```
/// use cdp_rows::Date;
///
/// let d = Date::from_ymd(2024, 2, 29).unwrap();
/// assert_eq!(d.to_string(), "2024-02-29");
/// assert_eq!(Date::from_days_since_unix_epoch(0).unwrap().to_string(), "1970-01-01");
/// assert_eq!(Date::from_ymd(2025, 2, 29), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Days since 1970-01-01.
    days: i32,
}

impl Date {
    /// The date `year-month-day`, if it exists and lies within the years 0000 to 9999.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(0..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let text = format!("{year:04}-{month:02}-{day:02}T00:00:00Z");
        let t = Timestamp::parse_rfc3339(&text).ok()?;
        Date::from_days_since_unix_epoch(t.as_secs().div_euclid(86_400))
    }

    /// The date `days` days after 1970-01-01 (before it when negative), if it lies
    /// within the years 0000 to 9999. PostgreSQL's binary `date` is days since
    /// 2000-01-01: add 10,957.
    pub fn from_days_since_unix_epoch(days: i64) -> Option<Date> {
        let micros = days.checked_mul(MICROS_PER_DAY as i64)?;
        Timestamp::from_micros(micros)?;
        Some(Date { days: i32::try_from(days).ok()? })
    }

    /// Days since 1970-01-01 (negative before it).
    pub const fn days_since_unix_epoch(self) -> i32 {
        self.days
    }

    /// Midnight UTC of this date.
    pub fn at_midnight_utc(self) -> Timestamp {
        Timestamp::from_secs(i64::from(self.days) * 86_400).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Writes `YYYY-MM-DD` into `buf` and returns it.
    pub(crate) fn format_into(self, buf: &mut [u8; 27]) -> &str {
        &self.at_midnight_utc().format_into(buf)[..10]
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format_into(&mut [0; 27]))
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A time of day with microsecond precision, written as `HH:MM:SS`, `HH:MM:SS.mmm`
/// when it has whole milliseconds, or `HH:MM:SS.uuuuuu`.
///
/// ```
/// use cdp_rows::Time;
///
/// assert_eq!(Time::from_hms_micro(9, 5, 0, 0).unwrap().to_string(), "09:05:00");
/// assert_eq!(Time::from_hms_micro(9, 5, 0, 250_000).unwrap().to_string(), "09:05:00.250");
/// assert_eq!(Time::from_hms_micro(9, 5, 0, 1).unwrap().to_string(), "09:05:00.000001");
/// assert_eq!(Time::from_hms_micro(24, 0, 0, 0), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Microseconds since midnight.
    micros: u64,
}

impl Time {
    /// The time `hour:minute:second.micro`, if every part is in range.
    pub fn from_hms_micro(hour: u32, minute: u32, second: u32, micro: u32) -> Option<Time> {
        if hour > 23 || minute > 59 || second > 59 || micro > 999_999 {
            return None;
        }
        let secs = u64::from(hour) * 3600 + u64::from(minute) * 60 + u64::from(second);
        Some(Time { micros: secs * 1_000_000 + u64::from(micro) })
    }

    /// The time `micros` microseconds after midnight (PostgreSQL's binary `time`), if
    /// less than a day.
    pub fn from_micros_since_midnight(micros: u64) -> Option<Time> {
        (micros < MICROS_PER_DAY).then_some(Time { micros })
    }

    /// Microseconds since midnight.
    pub const fn micros_since_midnight(self) -> u64 {
        self.micros
    }

    /// Writes the text form into `buf` and returns it.
    pub(crate) fn format_into(self, buf: &mut [u8; 15]) -> &str {
        let secs = self.micros / 1_000_000;
        let frac = self.micros % 1_000_000;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let digit = |v: u64| b'0' + (v % 10) as u8;
        *buf = [
            digit(h / 10),
            digit(h),
            b':',
            digit(m / 10),
            digit(m),
            b':',
            digit(s / 10),
            digit(s),
            b'.',
            digit(frac / 100_000),
            digit(frac / 10_000),
            digit(frac / 1000),
            digit(frac / 100),
            digit(frac / 10),
            digit(frac),
        ];
        let len = match frac {
            0 => 8,
            f if f % 1000 == 0 => 12,
            _ => 15,
        };
        std::str::from_utf8(&buf[..len]).unwrap_or_default()
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format_into(&mut [0; 15]))
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

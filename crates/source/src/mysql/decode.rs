//! MySQL and MariaDB values, as mysql_async reads them from the binary protocol, to
//! [`Value`]s: one [`Decoder`] per result column, chosen once from the column's
//! metadata (type, flags, character set, display length), then applied to every row.
//! Everything here is a pure function of its arguments.

use std::borrow::Cow;
use std::fmt::Write as _;

use cdp_calls::Timestamp;
use cdp_rows::{Date, Time, Value};
use mysql_async::Column;
use mysql_async::Value as Wire;
use mysql_async::consts::{ColumnFlags, ColumnType};

/// The `binary` character set (63): a string column with it holds bytes (`BINARY`,
/// `VARBINARY`, `BLOB`), any other holds text.
pub(crate) const BINARY_CHARSET: u16 = 63;
/// Microseconds in a day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// How one column's values become [`Value`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoder {
    /// `TINYINT` … `BIGINT` (signed), `YEAR` → [`Value::Int`].
    Int,
    /// `TINYINT UNSIGNED` … `BIGINT UNSIGNED` → [`Value::UInt`].
    UInt,
    /// `TINYINT(1)` → [`Value::Bool`] for 0 and 1, [`Value::Int`] for anything else
    /// it holds.
    Bool,
    /// `BIT(1)` → [`Value::Bool`].
    Bit1,
    /// `BIT(n)`, n > 1 → [`Value::UInt`] of its bits, big-endian.
    Bits,
    /// `FLOAT` → [`Value::Float`] through its shortest decimal text.
    Float,
    /// `DOUBLE` → [`Value::Float`].
    Double,
    /// `DECIMAL` → [`Value::Decimal`] with the server's text.
    Decimal,
    /// `CHAR`, `VARCHAR`, `TEXT`, `ENUM`, `SET` → [`Value::Text`].
    Text,
    /// `BINARY`, `VARBINARY`, `BLOB` (the binary character set) → [`Value::Bytes`].
    Bytes,
    /// `JSON` (MySQL) → [`Value::Json`].
    Json,
    /// `DATE` → [`Value::Date`].
    Date,
    /// `DATETIME` → [`Value::TimestampWithoutZone`].
    DateTime,
    /// `TIMESTAMP` → [`Value::Timestamp`] (read in the session time zone, UTC).
    Timestamp,
    /// `TIME` → [`Value::Time`] within a day, else [`Value::Text`].
    Time,
    /// The type of a bare `NULL` → [`Value::Null`].
    Null,
}

/// Why a column's type cannot be read, with a hint on what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported {
    /// How to change the query.
    pub(crate) hint: String,
}

impl Decoder {
    /// The decoder for the values of `column`.
    pub(crate) fn for_column(column: &Column) -> Result<Decoder, Unsupported> {
        let flags = column.flags();
        let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
        let name = column.name_str();
        Ok(match column.column_type() {
            ColumnType::MYSQL_TYPE_TINY if column.column_length() == 1 => Decoder::Bool,
            ColumnType::MYSQL_TYPE_TINY
            | ColumnType::MYSQL_TYPE_SHORT
            | ColumnType::MYSQL_TYPE_INT24
            | ColumnType::MYSQL_TYPE_LONG
            | ColumnType::MYSQL_TYPE_LONGLONG => {
                if unsigned {
                    Decoder::UInt
                } else {
                    Decoder::Int
                }
            }
            ColumnType::MYSQL_TYPE_YEAR => Decoder::Int,
            ColumnType::MYSQL_TYPE_BIT if column.column_length() == 1 => Decoder::Bit1,
            ColumnType::MYSQL_TYPE_BIT => Decoder::Bits,
            ColumnType::MYSQL_TYPE_FLOAT => Decoder::Float,
            ColumnType::MYSQL_TYPE_DOUBLE => Decoder::Double,
            ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => Decoder::Decimal,
            ColumnType::MYSQL_TYPE_JSON => Decoder::Json,
            ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET => Decoder::Text,
            ColumnType::MYSQL_TYPE_STRING
            | ColumnType::MYSQL_TYPE_VAR_STRING
            | ColumnType::MYSQL_TYPE_VARCHAR
            | ColumnType::MYSQL_TYPE_TINY_BLOB
            | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
            | ColumnType::MYSQL_TYPE_LONG_BLOB
            | ColumnType::MYSQL_TYPE_BLOB => {
                if flags.intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG)
                    || column.character_set() != BINARY_CHARSET
                {
                    Decoder::Text
                } else {
                    Decoder::Bytes
                }
            }
            ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => Decoder::Date,
            ColumnType::MYSQL_TYPE_DATETIME => Decoder::DateTime,
            ColumnType::MYSQL_TYPE_TIMESTAMP => Decoder::Timestamp,
            ColumnType::MYSQL_TYPE_TIME => Decoder::Time,
            ColumnType::MYSQL_TYPE_NULL => Decoder::Null,
            ColumnType::MYSQL_TYPE_GEOMETRY => {
                return Err(Unsupported {
                    hint: format!(
                        "convert it in the query, for example `ST_AsGeoJSON({})` (a JSON object) or \
                         `ST_AsText({})`",
                        quote_ident(&name),
                        quote_ident(&name)
                    ),
                });
            }
            ColumnType::MYSQL_TYPE_VECTOR => {
                return Err(Unsupported {
                    hint: format!(
                        "convert it in the query, for example `VEC_ToText({})` on MariaDB or \
                         `VECTOR_TO_STRING({})` on MySQL",
                        quote_ident(&name),
                        quote_ident(&name)
                    ),
                });
            }
            _ => {
                return Err(Unsupported {
                    hint: format!("cast it in the query, for example `CAST({} AS CHAR)`", quote_ident(&name)),
                });
            }
        })
    }

    /// The value of one field.
    pub(crate) fn decode(self, wire: Wire) -> Result<Value<'static>, String> {
        if let Wire::NULL = wire {
            return Ok(Value::Null);
        }
        Ok(match (self, wire) {
            (Decoder::Int, Wire::Int(i)) => Value::Int(i),
            (Decoder::Int, Wire::UInt(u)) => {
                Value::Int(i64::try_from(u).map_err(|_| format!("{u} is out of the signed range"))?)
            }
            // The driver gives unsigned values that fit an i64 as `Int`.
            (Decoder::UInt, Wire::Int(i)) => {
                Value::UInt(u64::try_from(i).map_err(|_| format!("{i} is negative in an unsigned column"))?)
            }
            (Decoder::UInt, Wire::UInt(u)) => Value::UInt(u),
            (Decoder::Bool, Wire::Int(i)) => match i {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => Value::Int(other),
            },
            (Decoder::Bool, Wire::UInt(u)) => match u {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => Value::UInt(other),
            },
            (Decoder::Bit1, Wire::Bytes(bytes)) => Value::Bool(bits(&bytes)? != 0),
            (Decoder::Bits, Wire::Bytes(bytes)) => Value::UInt(bits(&bytes)?),
            (Decoder::Float, Wire::Float(f)) => Value::from(f),
            (Decoder::Float | Decoder::Double, Wire::Double(f)) => Value::Float(f),
            (Decoder::Double, Wire::Float(f)) => Value::Float(f64::from(f)),
            (Decoder::Decimal, Wire::Bytes(bytes)) => Value::Decimal(Cow::Owned(utf8(bytes)?)),
            (Decoder::Text, Wire::Bytes(bytes)) => Value::Text(Cow::Owned(utf8(bytes)?)),
            (Decoder::Bytes, Wire::Bytes(bytes)) => Value::Bytes(Cow::Owned(bytes)),
            (Decoder::Json, Wire::Bytes(bytes)) => Value::Json(Cow::Owned(utf8(bytes)?)),
            (Decoder::Date, Wire::Date(y, m, d, 0, 0, 0, 0)) => Value::Date(date(y, m, d)?),
            (Decoder::DateTime, Wire::Date(y, m, d, h, i, s, us)) => {
                Value::TimestampWithoutZone(timestamp(y, m, d, h, i, s, us)?)
            }
            (Decoder::Timestamp, Wire::Date(y, m, d, h, i, s, us)) => {
                Value::Timestamp(timestamp(y, m, d, h, i, s, us)?)
            }
            (Decoder::Time, Wire::Time(negative, days, h, m, s, us)) => time(negative, days, h, m, s, us)?,
            (decoder, wire) => return Err(format!("unexpected value {wire:?} for a {decoder:?} column")),
        })
    }
}

/// Whether a column may be a MariaDB `JSON` column: text of a `LONGTEXT` (blob type,
/// not the binary character set) that comes straight from a table column.
pub(crate) fn may_be_mariadb_json(column: &Column) -> bool {
    matches!(
        column.column_type(),
        ColumnType::MYSQL_TYPE_BLOB | ColumnType::MYSQL_TYPE_LONG_BLOB | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
    ) && column.character_set() != BINARY_CHARSET
        && !column.flags().intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG)
        && !column.schema_ref().is_empty()
        && !column.org_table_ref().is_empty()
        && !column.org_name_ref().is_empty()
}

/// The database's name for a column's type, as errors show it: `BIGINT UNSIGNED`,
/// `TINYINT(1)`, `VARCHAR`, `BLOB`, `JSON`, `GEOMETRY`, …
pub(crate) fn type_name(column: &Column) -> String {
    let flags = column.flags();
    let unsigned = if flags.contains(ColumnFlags::UNSIGNED_FLAG) { " UNSIGNED" } else { "" };
    let binary = column.character_set() == BINARY_CHARSET;
    let text_or = |text: &'static str, bytes: &'static str| if binary { bytes } else { text };
    let base = match column.column_type() {
        ColumnType::MYSQL_TYPE_TINY if column.column_length() == 1 => "TINYINT(1)",
        ColumnType::MYSQL_TYPE_TINY => "TINYINT",
        ColumnType::MYSQL_TYPE_SHORT => "SMALLINT",
        ColumnType::MYSQL_TYPE_INT24 => "MEDIUMINT",
        ColumnType::MYSQL_TYPE_LONG => "INT",
        ColumnType::MYSQL_TYPE_LONGLONG => "BIGINT",
        ColumnType::MYSQL_TYPE_YEAR => return "YEAR".to_owned(),
        ColumnType::MYSQL_TYPE_BIT => return format!("BIT({})", column.column_length()),
        ColumnType::MYSQL_TYPE_FLOAT => "FLOAT",
        ColumnType::MYSQL_TYPE_DOUBLE => "DOUBLE",
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => "DECIMAL",
        ColumnType::MYSQL_TYPE_JSON => return "JSON".to_owned(),
        _ if flags.contains(ColumnFlags::ENUM_FLAG) => return "ENUM".to_owned(),
        _ if flags.contains(ColumnFlags::SET_FLAG) => return "SET".to_owned(),
        ColumnType::MYSQL_TYPE_ENUM => return "ENUM".to_owned(),
        ColumnType::MYSQL_TYPE_SET => return "SET".to_owned(),
        ColumnType::MYSQL_TYPE_STRING => return text_or("CHAR", "BINARY").to_owned(),
        ColumnType::MYSQL_TYPE_VAR_STRING | ColumnType::MYSQL_TYPE_VARCHAR => {
            return text_or("VARCHAR", "VARBINARY").to_owned();
        }
        ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB => return text_or("TEXT", "BLOB").to_owned(),
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => "DATE",
        ColumnType::MYSQL_TYPE_DATETIME => "DATETIME",
        ColumnType::MYSQL_TYPE_TIMESTAMP => "TIMESTAMP",
        ColumnType::MYSQL_TYPE_TIME => "TIME",
        ColumnType::MYSQL_TYPE_NULL => "NULL",
        ColumnType::MYSQL_TYPE_GEOMETRY => "GEOMETRY",
        ColumnType::MYSQL_TYPE_VECTOR => "VECTOR",
        other => return format!("{other:?}"),
    };
    format!("{base}{unsigned}")
}

/// A `BIT(n)` value: up to 8 bytes, big-endian.
fn bits(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() > 8 {
        return Err(format!("a BIT value of {} bytes is longer than 64 bits", bytes.len()));
    }
    Ok(bytes.iter().fold(0_u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Text the server sent: it must be UTF-8 (the connection's character set is
/// `utf8mb4`, so the server converts every text column to it).
fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| format!("the text is not valid UTF-8 ({})", e.utf8_error()))
}

/// A calendar date; the zero date and dates with a zero or impossible part (which
/// MySQL stores under some SQL modes) are errors.
pub(crate) fn date(year: u16, month: u8, day: u8) -> Result<Date, String> {
    days_since_unix_epoch(year, month, day)
        .and_then(Date::from_days_since_unix_epoch)
        .ok_or_else(|| bad_date(year, month, day))
}

/// An instant from its UTC calendar reading.
pub(crate) fn timestamp(
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
) -> Result<Timestamp, String> {
    let days = days_since_unix_epoch(year, month, day).ok_or_else(|| bad_date(year, month, day))?;
    if hour > 23 || minute > 59 || second > 59 || micros > 999_999 {
        return Err(format!(
            "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06} is not a valid time"
        ));
    }
    let secs = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Timestamp::from_micros(days * MICROS_PER_DAY + secs * 1_000_000 + i64::from(micros))
        .ok_or_else(|| format!("{year:04}-{month:02}-{day:02} is outside the years 0000 to 9999"))
}

fn bad_date(year: u16, month: u8, day: u8) -> String {
    if (year, month, day) == (0, 0, 0) {
        "the zero date 0000-00-00 is not a date (MySQL keeps it for a missing or invalid value): \
         turn it into NULL in the query, for example `NULLIF(column, '0000-00-00')`"
            .to_owned()
    } else {
        format!("{year:04}-{month:02}-{day:02} is not a valid date")
    }
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date of the years 0000 to
/// 9999 (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_since_unix_epoch(year: u16, month: u8, day: u8) -> Option<i64> {
    if year > 9999 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let (y, m, d) = (i64::from(year), i64::from(month), i64::from(day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A `TIME` value: a [`Value::Time`] when it is a time of day (0 to 24 hours), else
/// (negative, or 24 hours and more: MySQL's `TIME` is a duration from `-838:59:59`
/// to `838:59:59`) the text MySQL itself prints, `-01:30:00` or `100:00:00.5`, with
/// the fraction as [`Time`] writes it.
pub(crate) fn time(
    negative: bool,
    days: u32,
    hours: u8,
    minutes: u8,
    seconds: u8,
    micros: u32,
) -> Result<Value<'static>, String> {
    if minutes > 59 || seconds > 59 || micros > 999_999 || hours > 23 {
        return Err(format!("{days}d {hours:02}:{minutes:02}:{seconds:02}.{micros:06} is not a valid time"));
    }
    if !negative && days == 0 {
        let time = Time::from_hms_micro(u32::from(hours), u32::from(minutes), u32::from(seconds), micros)
            .ok_or_else(|| format!("{hours:02}:{minutes:02}:{seconds:02} is not a valid time"))?;
        return Ok(Value::Time(time));
    }
    let total_hours = u64::from(days) * 24 + u64::from(hours);
    let mut text = String::with_capacity(20);
    if negative {
        text.push('-');
    }
    let _ = write!(text, "{total_hours:02}:{minutes:02}:{seconds:02}");
    match micros {
        0 => {}
        us if us.is_multiple_of(1000) => {
            let _ = write!(text, ".{:03}", us / 1000);
        }
        us => {
            let _ = write!(text, ".{us:06}");
        }
    }
    Ok(Value::Text(Cow::Owned(text)))
}

/// `name` quoted as a MySQL identifier, with backticks when it needs them.
fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if plain { name.to_owned() } else { format!("`{}`", name.replace('`', "``")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(ty: ColumnType) -> Column {
        Column::new(ty).with_name(b"c").with_character_set(45)
    }

    fn decode(column: &Column, wire: Wire) -> Result<Value<'static>, String> {
        Decoder::for_column(column).unwrap().decode(wire)
    }

    #[test]
    fn integers_of_every_width_and_sign() {
        for ty in [
            ColumnType::MYSQL_TYPE_TINY,
            ColumnType::MYSQL_TYPE_SHORT,
            ColumnType::MYSQL_TYPE_INT24,
            ColumnType::MYSQL_TYPE_LONG,
            ColumnType::MYSQL_TYPE_LONGLONG,
        ] {
            let signed = column(ty).with_column_length(4);
            assert_eq!(Decoder::for_column(&signed), Ok(Decoder::Int), "{ty:?}");
            assert_eq!(decode(&signed, Wire::Int(-5)), Ok(Value::Int(-5)));
            let unsigned = signed.clone().with_flags(ColumnFlags::UNSIGNED_FLAG);
            assert_eq!(Decoder::for_column(&unsigned), Ok(Decoder::UInt), "{ty:?}");
            assert_eq!(decode(&unsigned, Wire::Int(200)), Ok(Value::UInt(200)));
        }
        let bigint = column(ColumnType::MYSQL_TYPE_LONGLONG).with_column_length(20);
        assert_eq!(decode(&bigint, Wire::Int(i64::MIN)), Ok(Value::Int(i64::MIN)));
        let unsigned = bigint.with_flags(ColumnFlags::UNSIGNED_FLAG);
        assert_eq!(decode(&unsigned, Wire::UInt(u64::MAX)), Ok(Value::UInt(u64::MAX)));
        assert!(decode(&unsigned, Wire::Int(-1)).is_err());
        assert_eq!(decode(&unsigned, Wire::NULL), Ok(Value::Null));
        let year = column(ColumnType::MYSQL_TYPE_YEAR)
            .with_flags(ColumnFlags::UNSIGNED_FLAG | ColumnFlags::ZEROFILL_FLAG)
            .with_column_length(4);
        assert_eq!(decode(&year, Wire::Int(2155)), Ok(Value::Int(2155)));
        assert_eq!(type_name(&year), "YEAR");
        assert_eq!(
            type_name(&column(ColumnType::MYSQL_TYPE_LONGLONG).with_flags(ColumnFlags::UNSIGNED_FLAG)),
            "BIGINT UNSIGNED"
        );
    }

    #[test]
    fn tinyint_1_is_a_boolean_like_mysqls_connectors_read_it() {
        let flag = column(ColumnType::MYSQL_TYPE_TINY).with_column_length(1);
        assert_eq!(Decoder::for_column(&flag), Ok(Decoder::Bool));
        assert_eq!(type_name(&flag), "TINYINT(1)");
        assert_eq!(decode(&flag, Wire::Int(1)), Ok(Value::Bool(true)));
        assert_eq!(decode(&flag, Wire::Int(0)), Ok(Value::Bool(false)));
        assert_eq!(decode(&flag, Wire::Int(7)), Ok(Value::Int(7)), "other values stay numbers");
        let tiny = column(ColumnType::MYSQL_TYPE_TINY).with_column_length(4);
        assert_eq!(decode(&tiny, Wire::Int(1)), Ok(Value::Int(1)));
    }

    #[test]
    fn bits() {
        let one = column(ColumnType::MYSQL_TYPE_BIT).with_column_length(1).with_character_set(63);
        assert_eq!(decode(&one, Wire::Bytes(vec![1])), Ok(Value::Bool(true)));
        assert_eq!(decode(&one, Wire::Bytes(vec![0])), Ok(Value::Bool(false)));
        let wide = column(ColumnType::MYSQL_TYPE_BIT).with_column_length(64).with_character_set(63);
        assert_eq!(decode(&wide, Wire::Bytes(vec![0xff; 8])), Ok(Value::UInt(u64::MAX)));
        assert_eq!(decode(&wide, Wire::Bytes(vec![1, 0])), Ok(Value::UInt(256)));
        assert!(decode(&wide, Wire::Bytes(vec![1; 9])).is_err());
        assert_eq!(type_name(&wide), "BIT(64)");
    }

    #[test]
    fn floats_and_decimals() {
        let float = column(ColumnType::MYSQL_TYPE_FLOAT);
        assert_eq!(decode(&float, Wire::Float(0.1)), Ok(Value::Float(0.1)), "shortest text of the f32");
        let double = column(ColumnType::MYSQL_TYPE_DOUBLE);
        assert_eq!(decode(&double, Wire::Double(1e308)), Ok(Value::Float(1e308)));
        let decimal = column(ColumnType::MYSQL_TYPE_NEWDECIMAL);
        let digits = "-12345678901234567890123456789012345.123456789012345678901234567890";
        assert_eq!(decode(&decimal, Wire::Bytes(digits.into())), Ok(Value::decimal(digits)));
    }

    #[test]
    fn text_bytes_enum_set_and_json() {
        let varchar = column(ColumnType::MYSQL_TYPE_VAR_STRING);
        assert_eq!(decode(&varchar, Wire::Bytes("é".into())), Ok(Value::from("é")));
        let error = decode(&varchar, Wire::Bytes(vec![0xff, 0xfe])).unwrap_err();
        assert!(error.contains("UTF-8"), "{error}");
        let blob = column(ColumnType::MYSQL_TYPE_BLOB)
            .with_character_set(BINARY_CHARSET)
            .with_flags(ColumnFlags::BLOB_FLAG | ColumnFlags::BINARY_FLAG);
        assert_eq!(decode(&blob, Wire::Bytes(vec![0xff, 0])), Ok(Value::bytes(vec![0xff, 0])));
        assert_eq!(type_name(&blob), "BLOB");
        let text = column(ColumnType::MYSQL_TYPE_BLOB).with_flags(ColumnFlags::BLOB_FLAG);
        assert_eq!(Decoder::for_column(&text), Ok(Decoder::Text));
        assert_eq!(type_name(&text), "TEXT");
        let binary = column(ColumnType::MYSQL_TYPE_STRING).with_character_set(BINARY_CHARSET);
        assert_eq!(
            (Decoder::for_column(&binary), type_name(&binary).as_str()),
            (Ok(Decoder::Bytes), "BINARY")
        );
        let enumeration = column(ColumnType::MYSQL_TYPE_STRING).with_flags(ColumnFlags::ENUM_FLAG);
        assert_eq!(decode(&enumeration, Wire::Bytes("pro".into())), Ok(Value::from("pro")));
        assert_eq!(type_name(&enumeration), "ENUM");
        let set = column(ColumnType::MYSQL_TYPE_STRING).with_flags(ColumnFlags::SET_FLAG);
        assert_eq!(decode(&set, Wire::Bytes("a,b".into())), Ok(Value::from("a,b")));
        // MySQL's JSON type arrives with the binary character set, and is still text.
        let json = column(ColumnType::MYSQL_TYPE_JSON).with_character_set(BINARY_CHARSET);
        assert_eq!(decode(&json, Wire::Bytes(br#"{"a": 1}"#.to_vec())), Ok(Value::json(r#"{"a": 1}"#)));
    }

    #[test]
    fn dates_and_timestamps() {
        let d = column(ColumnType::MYSQL_TYPE_DATE);
        assert_eq!(
            decode(&d, Wire::Date(2024, 2, 29, 0, 0, 0, 0)),
            Ok(Value::Date(Date::from_ymd(2024, 2, 29).unwrap()))
        );
        assert_eq!(
            decode(&d, Wire::Date(0, 1, 1, 0, 0, 0, 0)),
            Ok(Value::Date(Date::from_ymd(0, 1, 1).unwrap()))
        );
        let zero = decode(&d, Wire::Date(0, 0, 0, 0, 0, 0, 0)).unwrap_err();
        assert!(zero.contains("zero date 0000-00-00"), "{zero}");
        for (y, m, day) in [(2024, 0, 1), (2024, 1, 0), (2023, 2, 29), (2024, 4, 31), (2024, 13, 1)] {
            let error = decode(&d, Wire::Date(y, m, day, 0, 0, 0, 0)).unwrap_err();
            assert!(error.ends_with("is not a valid date"), "{error}");
        }
        let dt = column(ColumnType::MYSQL_TYPE_DATETIME).with_decimals(6);
        assert_eq!(
            decode(&dt, Wire::Date(2026, 11, 22, 10, 0, 0, 123_456)),
            Ok(Value::TimestampWithoutZone("2026-11-22T10:00:00.123456Z".parse().unwrap()))
        );
        assert_eq!(
            decode(&dt, Wire::Date(9999, 12, 31, 23, 59, 59, 999_999)),
            Ok(Value::TimestampWithoutZone("9999-12-31T23:59:59.999999Z".parse().unwrap()))
        );
        assert!(decode(&dt, Wire::Date(0, 0, 0, 0, 0, 0, 0)).unwrap_err().contains("zero date"));
        let ts = column(ColumnType::MYSQL_TYPE_TIMESTAMP);
        assert_eq!(
            decode(&ts, Wire::Date(1970, 1, 1, 0, 0, 1, 0)),
            Ok(Value::Timestamp("1970-01-01T00:00:01Z".parse().unwrap()))
        );
    }

    #[test]
    fn days_match_the_calendar() {
        assert_eq!(days_since_unix_epoch(1970, 1, 1), Some(0));
        assert_eq!(days_since_unix_epoch(2000, 1, 1), Some(10_957));
        assert_eq!(days_since_unix_epoch(1969, 12, 31), Some(-1));
        // Every day from 0000-01-01 to 9999-12-31 against cdp-rows' own calendar.
        let mut expected = i64::from(Date::from_ymd(0, 1, 1).unwrap().days_since_unix_epoch());
        for year in 0..=9999_u16 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(
                        days_since_unix_epoch(year, month, day),
                        Some(expected),
                        "{year}-{month}-{day}"
                    );
                    expected += 1;
                }
            }
        }
        assert_eq!(expected - 1, i64::from(Date::from_ymd(9999, 12, 31).unwrap().days_since_unix_epoch()));
        assert_eq!(days_since_unix_epoch(1900, 2, 29), None);
        assert_eq!(days_since_unix_epoch(2000, 2, 29), Some(11_016));
    }

    #[test]
    fn times_of_day_and_durations() {
        let t = column(ColumnType::MYSQL_TYPE_TIME);
        assert_eq!(
            decode(&t, Wire::Time(false, 0, 6, 30, 0, 0)),
            Ok(Value::Time(Time::from_hms_micro(6, 30, 0, 0).unwrap()))
        );
        assert_eq!(decode(&t, Wire::Time(true, 0, 1, 30, 0, 0)), Ok(Value::from("-01:30:00")));
        assert_eq!(decode(&t, Wire::Time(true, 0, 0, 0, 0, 500_000)), Ok(Value::from("-00:00:00.500")));
        assert_eq!(decode(&t, Wire::Time(false, 34, 22, 59, 59, 0)), Ok(Value::from("838:59:59")));
        assert_eq!(decode(&t, Wire::Time(true, 34, 22, 59, 59, 1)), Ok(Value::from("-838:59:59.000001")));
        assert_eq!(decode(&t, Wire::Time(false, 1, 0, 0, 0, 0)), Ok(Value::from("24:00:00")));
        assert!(decode(&t, Wire::Time(false, 0, 0, 60, 0, 0)).is_err());
    }

    #[test]
    fn unsupported_types_say_how_to_convert_them() {
        let geometry =
            Column::new(ColumnType::MYSQL_TYPE_GEOMETRY).with_name(b"shape").with_character_set(63);
        let hint = Decoder::for_column(&geometry).unwrap_err().hint;
        assert!(hint.contains("ST_AsGeoJSON(shape)"), "{hint}");
        let odd = Column::new(ColumnType::MYSQL_TYPE_TIME2).with_name(b"odd name");
        assert_eq!(
            Decoder::for_column(&odd).unwrap_err().hint,
            "cast it in the query, for example `CAST(`odd name` AS CHAR)`"
        );
        assert_eq!(decode(&column(ColumnType::MYSQL_TYPE_NULL), Wire::NULL), Ok(Value::Null));
    }

    #[test]
    fn mismatched_values_are_errors_not_panics() {
        let d = column(ColumnType::MYSQL_TYPE_DATE);
        assert!(decode(&d, Wire::Int(1)).unwrap_err().starts_with("unexpected value"));
        assert!(decode(&d, Wire::Date(2024, 1, 1, 1, 0, 0, 0)).is_err());
    }
}

//! The deterministic `messageId` of a row that has none: a ULID whose time part is
//! the row's timestamp and whose random part is a hash of the row.
//!
//! # Encoding (version 1)
//! The hash is XXH3 (the `xxhash-rust` crate; the algorithm's output is frozen by its
//! specification). Integers are little-endian and `len` is a `u64` byte count.
//!
//! - The *header* is the same for every row of a result set: the tag
//!   `cdp-rows/messageId/v1`; `len` and UTF-8 of the sync name; `len` and the call
//!   type's wire name; the number of columns as a `u64`, then `len` and UTF-8 of each
//!   column name as returned. Its XXH3-64 is the seed.
//! - The row's hash is the XXH3-128, with that seed, of each value in column order,
//!   as a type tag byte and its content:
//!   null `0`; boolean `1` and a byte 0 or 1; signed integer `2` and `i64`; unsigned
//!   integer `3` and `u64`; float `4` and the `f64` bits (every NaN as
//!   `0x7ff8000000000000`); decimal `5`, `len` and the text; text `6`, `len` and the
//!   text; bytes `7`, `len` and the bytes; date `8` and days since 1970 as `i32`; time
//!   `9` and microseconds since midnight as `u64`; timestamp `10` and microseconds
//!   since 1970 as `i64`; timestamp without zone `11` and the same; JSON `12`, `len`
//!   and the text as given; array `13`, the element count as `u64`, then each
//!   element encoded the same way.
//!
//! The ULID's 80-bit random part is the low 80 bits of the hash; its 48-bit time
//! part is the timestamp's milliseconds since 1970 (0 before 1970).

use cdp_calls::{CallType, Timestamp};

use crate::Value;
use crate::render::MAX_DEPTH;

const TAG: &[u8] = b"cdp-rows/messageId/v1";

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    push_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Hashes rows of one result set into message ids, reusing one buffer.
#[derive(Debug, Clone)]
pub(crate) struct IdHasher {
    /// XXH3-64 of the encoding of everything that is the same for every row.
    seed: u64,
    buf: Vec<u8>,
}

impl IdHasher {
    pub(crate) fn new(sync_name: &str, call_type: CallType, columns: &[String]) -> IdHasher {
        let mut header = TAG.to_vec();
        push_bytes(&mut header, sync_name.as_bytes());
        push_bytes(&mut header, call_type.as_str().as_bytes());
        push_len(&mut header, columns.len());
        for name in columns {
            push_bytes(&mut header, name.as_bytes());
        }
        IdHasher { seed: xxhash_rust::xxh3::xxh3_64(&header), buf: Vec::with_capacity(512) }
    }

    /// The 128-bit hash of a row.
    pub(crate) fn hash(&mut self, values: &[Value<'_>]) -> u128 {
        self.buf.clear();
        for value in values {
            encode(&mut self.buf, value, 0);
        }
        xxhash_rust::xxh3::xxh3_128_with_seed(&self.buf, self.seed)
    }

    /// The message id of a row whose time is `at`.
    pub(crate) fn message_id(&mut self, values: &[Value<'_>], at: Timestamp) -> String {
        let ms = u64::try_from(at.as_millis()).unwrap_or(0);
        let random = self.hash(values) & ((1u128 << 80) - 1);
        ulid::Ulid::from_parts(ms, random).to_string()
    }
}

fn encode(out: &mut Vec<u8>, value: &Value<'_>, depth: usize) {
    match value {
        Value::Null => out.push(0),
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::UInt(u) => {
            out.push(3);
            out.extend_from_slice(&u.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(4);
            let bits = if f.is_nan() { 0x7ff8_0000_0000_0000 } else { f.to_bits() };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Value::Decimal(d) => {
            out.push(5);
            push_bytes(out, d.as_bytes());
        }
        Value::Text(t) => {
            out.push(6);
            push_bytes(out, t.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(7);
            push_bytes(out, b);
        }
        Value::Date(d) => {
            out.push(8);
            out.extend_from_slice(&d.days_since_unix_epoch().to_le_bytes());
        }
        Value::Time(t) => {
            out.push(9);
            out.extend_from_slice(&t.micros_since_midnight().to_le_bytes());
        }
        Value::Timestamp(t) => {
            out.push(10);
            out.extend_from_slice(&t.as_micros().to_le_bytes());
        }
        Value::TimestampWithoutZone(t) => {
            out.push(11);
            out.extend_from_slice(&t.as_micros().to_le_bytes());
        }
        Value::Json(j) => {
            out.push(12);
            push_bytes(out, j.as_bytes());
        }
        Value::Array(items) => {
            out.push(13);
            push_len(out, items.len());
            // Rows with deeper arrays are row errors before ids are made; stop anyway.
            if depth < MAX_DEPTH {
                for item in items {
                    encode(out, item, depth + 1);
                }
            }
        }
    }
}

/// The deterministic message id of a row (the same one [`crate::RowMapper`] gives a
/// row without a `messageId`): sync name, call type, the result's column names, the
/// row's values, and its time (`timestamp`, or the run's start).
///
/// ```
/// use cdp_calls::{CallType, Timestamp};
/// use cdp_rows::{Value, message_id::message_id};
///
/// let at: Timestamp = "2026-11-22T10:00:00Z".parse()?;
/// let columns = ["userId".to_owned()];
/// let id = message_id("users", CallType::Identify, &columns, &[Value::from("u1")], at);
/// assert_eq!(id.len(), 26);
/// assert_eq!(id, message_id("users", CallType::Identify, &columns, &[Value::from("u1")], at));
/// assert_ne!(id, message_id("users", CallType::Identify, &columns, &[Value::from("u2")], at));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn message_id(
    sync_name: &str,
    call_type: CallType,
    columns: &[String],
    values: &[Value<'_>],
    at: Timestamp,
) -> String {
    IdHasher::new(sync_name, call_type, columns).message_id(values, at)
}

//! RFC 4180 CSV with a header row; nested objects as compact JSON text.

use std::io::Write;

use cdp_calls::{Call, CallType, Value};

use crate::json::{rows_to_chunks, write_rows};
use crate::{Encode, EncodeError, EncodeOptions, FileFormat, Pending, encode_common};

/// Encodes calls as RFC 4180 CSV (`.csv`).
///
/// A header row names the columns of the type; every row has every column. Fields
/// are separated by `,`, lines end with `\n`, and a field is enclosed in `"` (with
/// inner quotes doubled) when it holds a comma, a quote, CR or LF. Timestamps are
/// RFC 3339 UTC text; `traits`, `properties` and `context` are their compact JSON
/// text; absent values are empty fields. The file loads unchanged in Python's csv
/// module, DuckDB, and Snowflake `COPY` with `FIELD_OPTIONALLY_ENCLOSED_BY='"'`.
///
/// ```
/// use cdp_calls::{Call, CallType};
/// use cdp_encode::{CsvEncoder, Encode, EncodeOptions};
///
/// let mut enc = CsvEncoder::new(CallType::Page, EncodeOptions::default());
/// enc.write(&Call::page("u1", "Home, \"new\"").with_message_id("m1"))?;
/// let text = String::from_utf8(enc.finish_to_vec()?)?;
/// assert_eq!(
///     text,
///     "received_at,id,user_id,anonymous_id,sent_at,timestamp,original_timestamp,name,properties,context\n\
///      ,m1,u1,,,,,\"Home, \"\"new\"\"\",,\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CsvEncoder {
    pending: Pending,
}

impl CsvEncoder {
    /// An encoder for calls of `call_type`.
    pub fn new(call_type: CallType, options: EncodeOptions) -> CsvEncoder {
        CsvEncoder { pending: Pending::new(call_type, options) }
    }

    fn encode_row(call: &Call, out: &mut Vec<u8>) {
        let row = call.row();
        let mut stamp = [0u8; 27];
        for i in 0..row.columns().len() {
            if i > 0 {
                out.push(b',');
            }
            match row.value(i) {
                Value::Null => {}
                Value::Timestamp(t) => out.extend_from_slice(t.format_into(&mut stamp).as_bytes()),
                Value::Text(s) => push_field(out, s.as_bytes()),
                Value::Json(o) => push_field(out, o.as_str().as_bytes()),
            }
        }
        out.push(b'\n');
    }
}

/// Appends one field, enclosed in quotes (inner quotes doubled) when it holds a
/// comma, a quote, CR or LF.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    // A JSON object other than `{}` always holds a quote: skip the check.
    let quote = (field.first() == Some(&b'{') && field.len() > 2)
        || field.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !quote {
        out.extend_from_slice(field);
        return;
    }
    out.reserve(field.len() + field.len() / 4 + 2);
    out.push(b'"');
    let mut from = 0;
    for at in memchr::memchr_iter(b'"', field) {
        out.extend_from_slice(&field[from..=at]);
        out.push(b'"');
        from = at + 1;
    }
    out.extend_from_slice(&field[from..]);
    out.push(b'"');
}

impl Encode for CsvEncoder {
    encode_common!();

    fn finish<W: Write + Send>(self, out: W) -> Result<W, EncodeError> {
        let names: Vec<&str> = self.pending.call_type.columns().iter().map(|c| c.name).collect();
        let header = format!("{}\n", names.join(","));
        write_rows(self.pending, FileFormat::Csv, header.as_bytes(), out)
    }

    fn finish_to_chunks(self) -> Result<Vec<bytes::Bytes>, EncodeError> {
        let names: Vec<&str> = self.pending.call_type.columns().iter().map(|c| c.name).collect();
        let header = format!("{}\n", names.join(","));
        rows_to_chunks(self.pending, FileFormat::Csv, header.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::push_field;

    #[test]
    fn quotes_only_when_needed() {
        let cases: [(&str, &str); 7] = [
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("line\nbreak", "\"line\nbreak\""),
            ("cr\r", "\"cr\r\""),
            ("\"", "\"\"\"\""),
        ];
        for (field, want) in cases {
            let mut out = Vec::new();
            push_field(&mut out, field.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), want, "{field:?}");
        }
    }
}

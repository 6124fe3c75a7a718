//! RFC 4180 CSV with a header row; nested objects as compact JSON text.

use cdp_calls::{Call, CallType, Value};

use crate::{Encode, EncodeOptions, FileFormat, Pending, encode_text};

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
        let names: Vec<&str> = call_type.columns().iter().map(|c| c.name).collect();
        let header = format!("{}\n", names.join(","));
        CsvEncoder { pending: Pending::new(call_type, options, header.into_bytes()) }
    }

    fn encode_row(call: &Call, out: &mut Vec<u8>) {
        let row = call.row();
        for i in 0..row.columns().len() {
            if i > 0 {
                out.push(b',');
            }
            match row.value(i) {
                Value::Null => {}
                Value::Timestamp(t) => t.push_rfc3339(out),
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
    push_quoted(out, field);
}

/// Appends `field` enclosed in quotes, inner quotes doubled. The output is written
/// into room made up front (at most twice the field, plus the quotes): eight bytes
/// at a time where they hold no quote, else byte by byte without branches.
fn push_quoted(out: &mut Vec<u8>, field: &[u8]) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    let start = out.len();
    out.resize(start + 2 * field.len() + 2, 0);
    let buf = &mut out[start..];
    buf[0] = b'"';
    let mut at = 1;
    let mut words = field.chunks_exact(8);
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ QUOTES;
        if x.wrapping_sub(ONES) & !x & HIGHS == 0 {
            buf[at..at + 8].copy_from_slice(word);
            at += 8;
        } else {
            at = double_quotes(buf, at, word);
        }
    }
    at = double_quotes(buf, at, words.remainder());
    buf[at] = b'"';
    out.truncate(start + at + 1);
}

/// Writes `bytes` into `buf` from `at`, doubling quotes; returns where it ended.
/// Each byte is written twice (at `at` and `at + 1`); the cursor moves past the
/// copy only for a quote, so any other byte's copy is overwritten by the next.
fn double_quotes(buf: &mut [u8], mut at: usize, bytes: &[u8]) -> usize {
    for &b in bytes {
        buf[at] = b;
        buf[at + 1] = b;
        at += 1 + usize::from(b == b'"');
    }
    at
}

impl Encode for CsvEncoder {
    encode_text!(FileFormat::Csv);
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

    #[test]
    fn doubles_every_quote_at_every_offset() {
        // Quotes at each position of the eight-byte words and in the tail, runs of
        // quotes, and text after them, appended behind what `out` already holds.
        for len in 0..40 {
            for every in 1..10 {
                let field: String = (0..len).map(|i| if i % every == 0 { '"' } else { 'é' }).collect();
                let mut out = b"x,".to_vec();
                super::push_quoted(&mut out, field.as_bytes());
                let want = format!("x,\"{}\"", field.replace('"', "\"\""));
                assert_eq!(String::from_utf8(out).unwrap(), want, "{field:?}");
            }
        }
    }
}

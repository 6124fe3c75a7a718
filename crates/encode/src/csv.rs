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

/// At least the bytes `call`'s line takes (exact but for fields that would need
/// no quotes yet are counted as quoted; see [`crate::row_bytes_bound`]).
pub(crate) fn row_bytes_bound(call: &Call) -> u64 {
    let row = call.row();
    let mut bytes = row.columns().len(); // the commas and the newline
    let field = |text: &[u8]| text.len() + 2 + memchr::memchr_iter(b'"', text).count();
    for value in row.values() {
        bytes += match value {
            Value::Null => 0,
            Value::Timestamp(t) => t.rfc3339_len(),
            Value::Text(s) => field(s.as_bytes()),
            Value::Json(o) => field(o.as_str().as_bytes()),
        };
    }
    bytes as u64
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

/// Appends `field` enclosed in quotes, inner quotes doubled.
///
/// Eight bytes at a time: each word is stored whole, and for each quote in it the
/// rest of the word, from that quote on, is stored again one byte further along,
/// which doubles the quote and shifts what follows. The room is made up front (at
/// most twice the field, the two quotes, and slack for the eight-byte stores).
fn push_quoted(out: &mut Vec<u8>, field: &[u8]) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const QUOTES: u64 = 0x2222_2222_2222_2222;
    let start = out.len();
    out.resize(start + 2 * field.len() + 2 + 16, 0);
    let buf = &mut out[start..];
    buf[0] = b'"';
    let mut at = 1;
    let mut put = |word: u64, len: usize, at: &mut usize| {
        buf[*at..*at + 8].copy_from_slice(&word.to_le_bytes());
        // The high bit of each byte of `word` that is a quote, exactly.
        let x = word ^ QUOTES;
        let mut quotes = !(((x & LOW7) + LOW7) | x | LOW7);
        let mut shift = 0;
        while quotes != 0 {
            let q = (quotes.trailing_zeros() / 8) as usize;
            if q >= len {
                break;
            }
            let from = *at + q + shift + 1;
            buf[from..from + 8].copy_from_slice(&(word >> (8 * q)).to_le_bytes());
            shift += 1;
            quotes &= quotes - 1;
        }
        *at += len + shift;
    };
    let mut words = field.chunks_exact(8);
    for word in &mut words {
        put(u64::from_le_bytes(word.try_into().expect("eight bytes")), 8, &mut at);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        put(u64::from_le_bytes(last), tail.len(), &mut at);
    }
    buf[at] = b'"';
    out.truncate(start + at + 1);
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

    proptest::proptest! {
        #[test]
        fn doubles_quotes_in_any_bytes(
            field in proptest::collection::vec(proptest::sample::select(vec![b'"', 0xa2, 0, b'a', 0xff, 0x7f]), 0..70),
        ) {
            let mut out = vec![b'x'];
            super::push_quoted(&mut out, &field);
            let mut want = vec![b'x', b'"'];
            for &b in &field {
                want.push(b);
                if b == b'"' {
                    want.push(b'"');
                }
            }
            want.push(b'"');
            proptest::prop_assert_eq!(out, want);
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

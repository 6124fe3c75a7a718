//! RFC 4180 CSV with a header row; nested objects as compact JSON text.

use cdp_calls::{Call, CallType, Value};

use crate::{Encode, EncodeOptions, FileFormat, Pending, encode_text};

/// Encodes calls as RFC 4180 CSV (`.csv`).
///
/// A header row names the columns of the type; every row has every column. Fields
/// are separated by `,`, lines end with `\n`, and a field is enclosed in `"` (with
/// inner quotes doubled) when it holds a comma, a quote, CR or LF (`csv_core`'s
/// writer, `QuoteStyle::Necessary`). Timestamps are RFC 3339 UTC text; `traits`,
/// `properties` and `context` are their compact JSON text; absent values are empty
/// fields. The file loads unchanged in Python's csv module, DuckDB, and Snowflake
/// `COPY` with `FIELD_OPTIONALLY_ENCLOSED_BY='"'`.
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

    /// Appends `call`'s line: text and JSON fields through a `csv_core::Writer`
    /// (`QuoteStyle::Necessary`: quoted when they hold a comma, a quote, CR or LF),
    /// timestamps as they are (digits and `-:.TZ` never need quotes).
    fn encode_row(call: &Call, out: &mut Vec<u8>) {
        let row = call.row();
        // Room for the worst case: every text field quoted with every byte a quote,
        // a closing quote and a separator after each field, and the newline.
        let room = row.columns().len()
            + row
                .values()
                .map(|value| match value {
                    Value::Null => 0,
                    Value::Timestamp(_) => 27,
                    Value::Text(s) => 2 * s.len() + 2,
                    Value::Json(o) => 2 * o.as_str().len() + 2,
                })
                .sum::<usize>();
        let start = out.len();
        out.resize(start + room, 0);
        let mut writer = csv_core::Writer::new();
        let mut at = start;
        for (i, value) in row.values().enumerate() {
            if i > 0 {
                at += written(writer.delimiter(&mut out[at..]));
            }
            match value {
                Value::Null => {}
                Value::Timestamp(t) => {
                    let text: &mut [u8; 27] = (&mut out[at..at + 27]).try_into().expect("27 bytes");
                    at += t.format_into(text).len();
                }
                Value::Text(s) => at += field(&mut writer, s.as_bytes(), &mut out[at..]),
                Value::Json(o) => at += field(&mut writer, o.as_str().as_bytes(), &mut out[at..]),
            }
        }
        at += written(writer.terminator(&mut out[at..]));
        out.truncate(at);
    }
}

/// Writes `text` as one field at the start of `room` and returns the bytes written
/// (the closing quote, if any, comes with the next separator).
fn field(writer: &mut csv_core::Writer, text: &[u8], room: &mut [u8]) -> usize {
    let (result, read, wrote) = writer.field(text, room);
    debug_assert!(result == csv_core::WriteResult::InputEmpty && read == text.len(), "room for the field");
    wrote
}

/// The bytes a separator or the line's end took (`room` always has space for them).
fn written((result, wrote): (csv_core::WriteResult, usize)) -> usize {
    debug_assert_eq!(result, csv_core::WriteResult::InputEmpty, "room for the separator");
    wrote
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

impl Encode for CsvEncoder {
    encode_text!(FileFormat::Csv);
}

#[cfg(test)]
mod tests {
    use cdp_calls::{Call, CallType};

    use crate::{CsvEncoder, Encode, EncodeOptions};

    /// The page call's line, and its `name` field as the csv crate reads it back.
    fn page_line(name: &str) -> (String, String) {
        let mut enc = CsvEncoder::new(CallType::Page, EncodeOptions::default());
        enc.write(&Call::page("u1", name).with_message_id("m1")).unwrap();
        let file = enc.finish_to_vec().unwrap();
        let mut reader = csv::ReaderBuilder::new().from_reader(&file[..]);
        let header = reader.headers().unwrap().clone();
        let record = reader.records().next().unwrap().unwrap();
        let at = header.iter().position(|h| h == "name").unwrap();
        let text = String::from_utf8(file).unwrap();
        (text.split_once('\n').unwrap().1.to_owned(), record[at].to_owned())
    }

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
        for (name, want) in cases {
            let (line, read) = page_line(name);
            assert_eq!(line, format!(",m1,u1,,,,,{want},,\n"), "{name:?}");
            assert_eq!(read, name);
        }
    }

    proptest::proptest! {
        #[test]
        fn doubles_quotes_in_any_text(
            name in proptest::collection::vec(
                proptest::sample::select(vec!['"', '¢', '\0', 'a', 'ÿ', '\x7f', ',', '\n', '\r', '{', '}']),
                0..70,
            ),
        ) {
            let name: String = name.into_iter().collect();
            let (line, read) = page_line(&name);
            let quote = name.contains([',', '"', '\n', '\r']);
            let want = if quote { format!("\"{}\"", name.replace('"', "\"\"")) } else { name.clone() };
            proptest::prop_assert_eq!(line, format!(",m1,u1,,,,,{want},,\n"));
            proptest::prop_assert_eq!(read, name);
        }
    }

    #[test]
    fn doubles_every_quote_at_every_offset() {
        // Quotes at each position of the text, runs of quotes, and text after them.
        for len in 0..40 {
            for every in 1..10 {
                let name: String = (0..len).map(|i| if i % every == 0 { '"' } else { 'é' }).collect();
                let (line, read) = page_line(&name);
                let want = if name.is_empty() {
                    String::new()
                } else {
                    format!("\"{}\"", name.replace('"', "\"\""))
                };
                assert_eq!(line, format!(",m1,u1,,,,,{want},,\n"), "{name:?}");
                assert_eq!(read, name);
            }
        }
    }

    #[test]
    fn json_fields_and_timestamps_keep_their_bytes() {
        let mut call = Call::page("u1", "Home").with_message_id("m1");
        call.received_at = Some("2026-11-22T10:00:00.000001Z".parse().unwrap());
        call.sent_at = Some("2026-11-22T10:00:00Z".parse().unwrap());
        call.context = Some(cdp_calls::JsonObject::from_json(r#"{"a": "x,\"y\"", "b": {}}"#).unwrap());
        let mut enc = CsvEncoder::new(CallType::Page, EncodeOptions::default());
        enc.write(&call).unwrap();
        let file = String::from_utf8(enc.finish_to_vec().unwrap()).unwrap();
        let context = r#""{""a"":""x,\""y\"""",""b"":{}}""#;
        let want = format!("2026-11-22T10:00:00.000001Z,m1,u1,,2026-11-22T10:00:00.000Z,,,Home,,{context}\n");
        assert_eq!(file.split_once('\n').unwrap().1, want);
    }
}

//! Newline-delimited JSON: one object per row, nested objects kept as objects.

use cdp_calls::{Call, CallType, Value, json_string_len, push_json_string};

use crate::{Encode, EncodeOptions, FileFormat, Pending, encode_text};

/// Encodes calls as newline-delimited JSON (`.json`).
///
/// Each row is one object with the columns of its type, in column order: timestamps
/// as RFC 3339 UTC text, `traits`, `properties` and `context` as objects (their text
/// copied byte for byte), absent values as `null`. Lines end with `\n`.
///
/// ```
/// use cdp_calls::{Call, CallType};
/// use cdp_encode::{Encode, EncodeOptions, JsonEncoder};
///
/// let mut enc = JsonEncoder::new(CallType::Alias, EncodeOptions::default());
/// enc.write(&Call::alias("u1", "anon-1").with_message_id("m1"))?;
/// let text = String::from_utf8(enc.finish_to_vec()?)?;
/// assert_eq!(
///     text,
///     "{\"received_at\":null,\"id\":\"m1\",\"user_id\":\"u1\",\"anonymous_id\":null,\"sent_at\":null,\
///      \"timestamp\":null,\"original_timestamp\":null,\"previous_id\":\"anon-1\",\"context\":null}\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct JsonEncoder {
    pending: Pending,
}

impl JsonEncoder {
    /// An encoder for calls of `call_type`.
    pub fn new(call_type: CallType, options: EncodeOptions) -> JsonEncoder {
        JsonEncoder { pending: Pending::new(call_type, options, Vec::new()) }
    }

    fn encode_row(call: &Call, out: &mut Vec<u8>) {
        let row = call.row();
        for (i, column) in row.columns().iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
            out.extend_from_slice(column.name.as_bytes());
            out.extend_from_slice(b"\":");
            match row.value(i) {
                Value::Null => out.extend_from_slice(b"null"),
                Value::Timestamp(t) => {
                    out.push(b'"');
                    t.push_rfc3339(out);
                    out.push(b'"');
                }
                Value::Text(s) => push_json_string(out, &s),
                Value::Json(o) => out.extend_from_slice(o.as_str().as_bytes()),
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

/// The bytes `call`'s line takes, exactly (see [`crate::row_bytes_bound`]).
pub(crate) fn row_bytes(call: &Call) -> u64 {
    let row = call.row();
    let mut bytes = 2; // "}\n"
    for (i, column) in row.columns().iter().enumerate() {
        bytes += 4 + column.name.len(); // `{"` or `,"`, the name, `":`
        bytes += match row.value(i) {
            Value::Null => 4,
            Value::Timestamp(t) => 2 + t.rfc3339_len(),
            Value::Text(s) => json_string_len(&s),
            Value::Json(o) => o.as_str().len(),
        };
    }
    bytes as u64
}

impl Encode for JsonEncoder {
    encode_text!(FileFormat::Json);
}

//! Writing [`Value`]s as JSON text, straight into a byte buffer.

use base64::Engine as _;
use cdp_calls::{Timestamp, TimestampText, push_json_string};

use crate::Value;
use crate::decimal::push_decimal_json;

/// Arrays nest at most this deep (the depth serde_json accepts in JSON text too).
pub(crate) const MAX_DEPTH: usize = 128;

/// Why a value cannot be written as JSON.
#[derive(Debug)]
pub(crate) enum RenderError {
    /// A [`Value::Json`] holds text that is not JSON.
    InvalidJson(serde_json::Error),
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Appends the decimal digits of `v`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends the decimal digits of `v`, with a `-` when negative.
pub(crate) fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// Appends a finite float in its shortest round-trip form; NaN and the infinities,
/// which JSON cannot hold, as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
pub(crate) fn push_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &v);
    } else if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

/// Appends `at` as a quoted RFC 3339 string, as [`push_value`] writes a timestamp,
/// through `last`: the text of the column's last instant, formatted again only when
/// the instant changes (rows written by one transaction share it).
pub(crate) fn push_time(out: &mut Vec<u8>, last: &mut TimestampText, at: Timestamp) {
    out.push(b'"');
    last.push(out, at);
    out.push(b'"');
}

/// Appends `s` as a quoted string of ASCII text that needs no escaping.
fn push_quoted_ascii(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// The compact text of a JSON object held in text, when the text is one: after
/// trimming JSON white space it starts with `{` and ends with `}`, and it parses.
pub(crate) fn text_object(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    // Most text is not an object: decide on the first byte before trimming.
    if !matches!(text.as_bytes().first(), Some(b'{' | b' ' | b'\t' | b'\n' | b'\r')) {
        return None;
    }
    let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return None;
    }
    cdp_calls::compact_json(trimmed).ok()
}

/// Appends `value` as JSON. Text that holds a JSON object is written as that object
/// when `parse_text` is set (only at the top level, never inside arrays).
pub(crate) fn push_value(out: &mut Vec<u8>, value: &Value<'_>, parse_text: bool) -> Result<(), RenderError> {
    push_at_depth(out, value, parse_text, 0)
}

fn push_at_depth(
    out: &mut Vec<u8>,
    value: &Value<'_>,
    parse_text: bool,
    depth: usize,
) -> Result<(), RenderError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => push_i64(out, *i),
        Value::UInt(u) => push_u64(out, *u),
        Value::Float(f) => push_f64(out, *f),
        Value::Decimal(d) => push_decimal_json(out, d),
        Value::Text(t) => match parse_text.then(|| text_object(t)).flatten() {
            Some(object) => out.extend_from_slice(object.as_bytes()),
            None => push_json_string(out, t),
        },
        Value::Bytes(b) => {
            let engine = &base64::engine::general_purpose::STANDARD;
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
            let written = engine.encode_slice(b, &mut out[start..]).unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
        Value::Date(d) => push_quoted_ascii(out, d.format_into(&mut [0; 27])),
        Value::Time(t) => push_quoted_ascii(out, t.format_into(&mut [0; 15])),
        Value::Timestamp(t) | Value::TimestampWithoutZone(t) => {
            push_quoted_ascii(out, t.format_into(&mut [0; 27]));
        }
        Value::Json(j) => {
            let compact = cdp_calls::compact_json(j).map_err(RenderError::InvalidJson)?;
            out.extend_from_slice(compact.as_bytes());
        }
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(RenderError::TooDeep);
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_at_depth(out, item, false, depth + 1)?;
            }
            out.push(b']');
        }
    }
    Ok(())
}

/// Appends `value` as JSON for a row error's record of the row: never fails (JSON
/// that does not parse and arrays nested too deep are written as strings), and a value
/// longer than `max` bytes as JSON is cut to a string of the first `max` bytes of its
/// text (or of its JSON, for values other than text) followed by `…`.
pub(crate) fn push_value_lenient(out: &mut Vec<u8>, value: &Value<'_>, max: usize) {
    let start = out.len();
    let fallback = match push_value(out, value, false) {
        Ok(()) if out.len() - start <= max => return,
        // Long text is cut as text, anything else as its JSON.
        Ok(()) => match value {
            Value::Text(t) => Some(t.as_ref()),
            _ => None,
        },
        Err(RenderError::InvalidJson(_)) => match value {
            Value::Json(j) => Some(j.as_ref()),
            _ => None,
        },
        Err(RenderError::TooDeep) => Some("(arrays nested too deep)"),
    };
    let text = match fallback {
        Some(text) => text.to_owned(),
        None => String::from_utf8_lossy(&out[start..]).into_owned(),
    };
    out.truncate(start);
    if text.len() <= max {
        push_json_string(out, &text);
    } else {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        push_json_string(out, &format!("{}…", &text[..cut]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_floats() {
        let render = |v: Value<'_>| {
            let mut out = Vec::new();
            push_value(&mut out, &v, true).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(render(Value::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(render(Value::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(render(Value::Int(0)), "0");
        assert_eq!(render(Value::Float(f64::NEG_INFINITY)), "\"-Infinity\"");
    }

    /// The kept text is reused only for its own instant: a column's instants in any
    /// order (runs of one, alternating, sub-second and whole-second forms) come out
    /// as `push_value` writes each on its own.
    #[test]
    fn push_time_writes_each_instant_as_push_value_does() {
        let instants: Vec<Timestamp> = [
            "2026-11-22T10:00:00+02:00",
            "2026-11-22T08:00:00Z",
            "2026-11-22T08:00:00.25Z",
            "2026-11-22T08:00:00Z",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        let mut last = TimestampText::default();
        for &t in &instants {
            let (mut ours, mut plain) = (Vec::new(), Vec::new());
            push_time(&mut ours, &mut last, t);
            push_value(&mut plain, &Value::Timestamp(t), true).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(plain).unwrap());
        }
    }
}

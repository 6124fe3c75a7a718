//! [`JsonObject`]: a nested JSON object kept as compact text.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON object (`context`, `traits`, `properties`, `integrations`, …) kept as its
/// compact JSON text, never parsed into a map.
///
/// Exported files carry nested values as text (CSV, Parquet) or copy them through
/// (NDJSON), so the object is stored exactly as it arrived, minus insignificant
/// white space: key order, duplicate keys, number spelling and string escapes are kept
/// byte for byte. That makes copying it into a file a `memcpy`.
///
/// ```
/// use cdp_calls::JsonObject;
///
/// let obj = JsonObject::from_json(r#"{ "plan": "pro",  "seats": [1, 2] }"#)?;
/// assert_eq!(obj.as_str(), r#"{"plan":"pro","seats":[1,2]}"#);
/// assert!(JsonObject::from_json("[1, 2]").is_err());
/// # Ok::<(), cdp_calls::JsonObjectError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonObject(Box<str>);

/// Why a text is not a JSON object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonObjectError {
    /// The text is not valid JSON.
    #[error("invalid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// The text is valid JSON, but not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead: `array`, `string`, `number`, `boolean` or `null`.
        found: &'static str,
    },
}

impl JsonObject {
    /// Parses and compacts a JSON object.
    pub fn from_json(text: &str) -> Result<JsonObject, JsonObjectError> {
        let raw: &RawValue = serde_json::from_str(text).map_err(JsonObjectError::Syntax)?;
        JsonObject::from_raw(raw)
    }

    /// Wraps an already parsed raw JSON value, compacting it if needed.
    pub fn from_raw(raw: &RawValue) -> Result<JsonObject, JsonObjectError> {
        match json_kind(raw.get()) {
            "object" => Ok(JsonObject::from_valid(compact_cow(raw.get()))),
            found => Err(JsonObjectError::NotAnObject { found }),
        }
    }

    /// Wraps text known to be a compact, valid JSON object.
    pub(crate) fn from_valid(text: Cow<'_, str>) -> JsonObject {
        debug_assert_eq!(json_kind(&text), "object");
        JsonObject(text.into_owned().into_boxed_str())
    }

    /// Wraps text that the caller has built as a compact, valid JSON object (by
    /// writing keys with [`crate::push_json_string`] and values that are themselves
    /// compact JSON), without parsing it again.
    ///
    /// This is for writers that build objects on a hot path (the reverse-ETL row
    /// mapper). The promise is checked in debug builds only; breaking it cannot cause
    /// memory unsafety, but the object then writes invalid JSON. Use
    /// [`JsonObject::from_json`] for text from anywhere else.
    ///
    /// ```
    /// use cdp_calls::JsonObject;
    ///
    /// let obj = JsonObject::from_compact_unchecked(String::from(r#"{"plan":"pro"}"#));
    /// assert_eq!(obj.as_str(), r#"{"plan":"pro"}"#);
    /// ```
    pub fn from_compact_unchecked(text: String) -> JsonObject {
        debug_assert!(
            JsonObject::from_json(&text).is_ok_and(|o| o.as_str() == text),
            "not a compact JSON object: {text}"
        );
        JsonObject(text.into_boxed_str())
    }

    /// An empty object, `{}`.
    pub fn empty() -> JsonObject {
        JsonObject("{}".into())
    }

    /// The compact JSON text of the object.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the object into a [`serde_json::Value`] (a copy; for inspection).
    ///
    /// Fails on valid JSON that a `Value` cannot hold: a string with a lone
    /// surrogate escape (`"\ud800"`), a number out of range (`1e400`), or nesting
    /// deeper than serde_json's limit of 128. Such objects are kept and passed
    /// through as text, so reading them must not panic.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }

    /// Looks up the value at a dotted path of keys (`device.token`), as raw JSON text.
    ///
    /// This parses the object, so keep it off hot paths; the last duplicate key wins.
    pub fn lookup(&self, path: &str) -> Option<String> {
        let mut current: &RawValue = serde_json::from_str(self.as_str()).ok()?;
        for key in path.split('.') {
            let mut map: std::collections::HashMap<Cow<'_, str>, &RawValue> =
                serde_json::from_str(current.get()).ok()?;
            current = map.remove(key)?;
        }
        Some(current.get().to_owned())
    }

    /// The size in bytes of the compact JSON text.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for `{}`.
    pub fn is_empty(&self) -> bool {
        self.as_str() == "{}"
    }
}

impl TryFrom<serde_json::Value> for JsonObject {
    type Error = JsonObjectError;

    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        match value {
            serde_json::Value::Object(_) => Ok(JsonObject(value.to_string().into_boxed_str())),
            other => Err(JsonObjectError::NotAnObject { found: json_kind(&other.to_string()) }),
        }
    }
}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks that `text` is one valid JSON value (of any kind) and returns its compact
/// form: all white space outside strings removed, everything else kept byte for byte
/// (key order, duplicate keys, number spelling, string escapes).
///
/// ```
/// let compact = cdp_calls::compact_json(" [1, {\"a b\" : true}] ")?;
/// assert_eq!(compact, r#"[1,{"a b":true}]"#);
/// assert!(cdp_calls::compact_json("[1,").is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn compact_json(text: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    let raw: &RawValue = serde_json::from_str(text)?;
    // `raw` borrows the value without the white space around it.
    Ok(compact_cow(raw.get()))
}

/// serde_json's marker for a value to be written as raw JSON text. It is how
/// `serde_json::value::RawValue` serialises itself; other serializers see a struct
/// with one string field, exactly as they would for a `RawValue`.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Serialises valid JSON text so that serde_json writes it as is.
pub(crate) fn serialize_raw<S: Serializer>(json: &str, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut s = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
    s.serialize_field(RAW_VALUE_TOKEN, json)?;
    s.end()
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_raw(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        JsonObject::from_raw(&raw).map_err(serde::de::Error::custom)
    }
}

/// The JSON kind of a valid JSON text, by its first significant byte.
pub(crate) fn json_kind(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// Valid JSON text with all white space outside strings removed.
pub(crate) fn compact_cow(text: &str) -> Cow<'_, str> {
    match compact(text) {
        None => Cow::Borrowed(text),
        Some(compacted) => Cow::Owned(compacted),
    }
}

/// The compact form of valid JSON text, or `None` when it is compact already.
pub(crate) fn compact(text: &str) -> Option<String> {
    let first = first_insignificant_space(text.as_bytes())?;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                let end = string_end(bytes, i);
                out.extend_from_slice(&bytes[i..end]);
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8(out).expect("only ASCII white space was removed"))
}

/// The index of the first white-space byte outside a string, if any.
fn first_insignificant_space(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => return Some(i),
            b'"' => i = string_end(bytes, i),
            _ => i += 1,
        }
    }
    None
}

/// Given the index of an opening quote, the index just past the closing quote.
fn string_end(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while let Some(off) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
        i += off;
        if bytes[i] == b'\\' {
            i += 2;
        } else {
            return i + 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_only_outside_strings() {
        let obj = JsonObject::from_json(" {\"a b\" :\t\"c \\\" d\" ,\n\"e\":[ 1 , {} ]}\r\n").unwrap();
        assert_eq!(obj.as_str(), r#"{"a b":"c \" d","e":[1,{}]}"#);
        assert_eq!(compact(r#"{"k":"v w"}"#), None, "already compact");
        assert_eq!(compact(r#"{"k":"\\"} "#).as_deref(), Some(r#"{"k":"\\"}"#));
    }

    #[test]
    fn rejects_non_objects_by_kind() {
        for (text, kind) in
            [("[]", "array"), ("\"x\"", "string"), ("1.5", "number"), ("null", "null"), ("true", "boolean")]
        {
            match JsonObject::from_json(text) {
                Err(JsonObjectError::NotAnObject { found }) => assert_eq!(found, kind),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(JsonObject::from_json("{"), Err(JsonObjectError::Syntax(_))));
    }

    #[test]
    fn looks_up_dotted_paths() {
        let obj = JsonObject::from_json(r#"{"device":{"token":"abc","n":1},"x":2}"#).unwrap();
        assert_eq!(obj.lookup("device.token").unwrap(), r#""abc""#);
        assert_eq!(obj.lookup("x").unwrap(), "2");
        assert!(obj.lookup("device.missing").is_none());
        assert!(obj.lookup("x.y").is_none());
    }
}

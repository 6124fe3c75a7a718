//! Turning request bodies into stamped, valid calls and the calls rejected on the
//! way, or an [`ApiError`] when the body itself cannot be read.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use cdp_calls::{Call, CallError, CallType, JsonObject, MAX_CALL_BYTES, RawValue, Timestamp};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use crate::ApiError;

/// The most bytes of a batch body, after decompression (the Segment and
/// Customer.io limit: 500 KB).
pub const MAX_BATCH_BYTES: usize = 500 * 1000;

/// What a request posts calls to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/<type>`: one call, whose type is the path's.
    Single(CallType),
    /// `/v1/batch`: `{"batch": [...], "context"?, "integrations"?, "sentAt"?}`.
    Batch,
}

impl Endpoint {
    /// The endpoint of a path, if it is one.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        let name = path.strip_prefix("/v1/")?.trim_end_matches('/');
        match name {
            "batch" | "import" => Some(Endpoint::Batch),
            other => other.parse().ok().map(Endpoint::Single),
        }
    }
}

/// The calls of a request: the valid ones, stamped, and the ones that are not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decoded {
    /// The valid calls, stamped as received, in request order.
    pub calls: Vec<Call>,
    /// The calls that failed validation, in request order.
    pub rejected: Vec<Rejected>,
}

/// A call of a request that is not valid, with why, and the call as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejected {
    /// Its index in the batch (0 for a single call).
    pub index: usize,
    /// Its type, when it names a known one (the path's for a single call).
    pub call_type: Option<CallType>,
    /// What is wrong with it.
    pub error: CallError,
    /// The call as the client sent it, as compact JSON (without the batch's
    /// `context` or anything the collector adds).
    pub call: String,
}

/// Reads a body as sent: gunzips it when it is gzip-encoded, and refuses more than
/// `limit` bytes after decompression.
pub fn decompress(body: &[u8], gzip: bool, limit: usize) -> Result<Vec<u8>, ApiError> {
    if !gzip {
        if body.len() > limit {
            return Err(ApiError::TooLarge { what: "the body", bytes: body.len(), limit });
        }
        return Ok(body.to_vec());
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest { message: format!("the gzip body cannot be decoded: {e}") })?;
    if out.len() > limit {
        return Err(ApiError::TooLarge { what: "the decompressed body", bytes: out.len(), limit });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
    #[serde(borrow, default)]
    integrations: Option<&'a RawValue>,
    #[serde(rename = "sentAt", borrow, default)]
    sent_at: Option<&'a RawValue>,
}

/// Decodes a (decompressed) body into calls stamped as received at `now`
/// ([`Call::stamp_received`]) and validated, and the calls that are not valid.
///
/// Each call is measured as the client sent it: at most
/// [`MAX_CALL_BYTES`] of compact JSON, before the batch's fields are merged into it
/// or `receivedAt` is stamped. For a batch, the batch's `context` and
/// `integrations` are merged into each item key by key, the item's own keys
/// winning, and the batch's `sentAt` applies to items without one.
///
/// An error is returned only when the body as a whole cannot be read (not UTF-8,
/// not JSON, not an object, no `batch` array, a batch field of the wrong type).
///
/// ```
/// use cdp_collector::{Endpoint, decode};
///
/// let body = br#"{"batch": [{"type": "track", "userId": "u1", "event": "Signed Up"},
///                           {"type": "track", "userId": "u2"}]}"#;
/// let decoded = decode(Endpoint::Batch, body, "2026-11-30T10:00:00Z".parse()?)?;
/// assert_eq!(decoded.calls.len(), 1);
/// assert_eq!(decoded.rejected[0].index, 1);
/// assert_eq!(decoded.rejected[0].error.code(), "missing_field");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode(endpoint: Endpoint, body: &[u8], now: Timestamp) -> Result<Decoded, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest {
        message: format!("the body is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
    })?;
    let mut decoded = Decoded::default();
    match endpoint {
        Endpoint::Single(call_type) => {
            let fields = single_fields(text)?;
            let checked = check_size(text).and_then(|()| {
                let mut call = Call::parse_json(&with_type(&fields, call_type))?;
                finish(&mut call, now)?;
                Ok(call)
            });
            match checked {
                Ok(call) => decoded.calls.push(call),
                Err(error) => decoded.rejected.push(Rejected {
                    index: 0,
                    call_type: Some(call_type),
                    error,
                    call: compact(text),
                }),
            }
        }
        Endpoint::Batch => {
            let body: BatchBody<'_> = serde_json::from_str(text).map_err(|e| ApiError::BadRequest {
                message: format!("invalid batch body at line {} column {}: {e}", e.line(), e.column()),
            })?;
            let context = batch_object("context", body.context)?;
            let integrations = batch_object("integrations", body.integrations)?;
            let sent_at = batch_sent_at(body.sent_at)?;
            decoded.calls.reserve(body.batch.len());
            for (index, item) in body.batch.iter().enumerate() {
                let checked = check_size(item.get()).and_then(|()| {
                    let mut call = Call::parse_json(item.get())?;
                    if let Some(batch) = &context {
                        call.context = Some(merge(batch, call.context.as_ref())?);
                    }
                    if let Some(batch) = &integrations {
                        call.integrations = Some(merge(batch, call.integrations.as_ref())?);
                    }
                    if call.sent_at.is_none() {
                        call.sent_at = sent_at;
                    }
                    finish(&mut call, now)?;
                    Ok(call)
                });
                match checked {
                    Ok(call) => decoded.calls.push(call),
                    Err(error) => decoded.rejected.push(Rejected {
                        index,
                        call_type: named_type(item.get()),
                        error,
                        call: compact(item.get()),
                    }),
                }
            }
        }
    }
    Ok(decoded)
}

/// The bytes of JSON text without the white space between its tokens.
fn compact_bytes(text: &str) -> impl Iterator<Item = u8> + '_ {
    let mut in_string = false;
    let mut escaped = false;
    text.bytes().filter(move |&b| {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            true
        } else {
            in_string = b == b'"';
            !matches!(b, b' ' | b'\t' | b'\n' | b'\r')
        }
    })
}

/// The length of valid JSON text as compact JSON: what the 32 KiB limit measures.
pub fn compact_len(text: &str) -> usize {
    compact_bytes(text).count()
}

/// Valid JSON text as compact JSON (one line).
fn compact(text: &str) -> String {
    // Only ASCII white space is taken out of valid UTF-8: the rest stays valid.
    String::from_utf8(compact_bytes(text).collect()).unwrap_or_else(|_| text.to_owned())
}

fn check_size(text: &str) -> Result<(), CallError> {
    // Compact text is never longer than the text as sent.
    if text.len() <= MAX_CALL_BYTES {
        return Ok(());
    }
    let bytes = compact_len(text);
    if bytes > MAX_CALL_BYTES { Err(CallError::TooLarge { bytes, limit: MAX_CALL_BYTES }) } else { Ok(()) }
}

/// The `type` an item names, if it is one of the six.
fn named_type(text: &str) -> Option<CallType> {
    #[derive(Deserialize)]
    struct TypeOnly<'a> {
        #[serde(rename = "type", borrow, default)]
        call_type: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<TypeOnly<'_>>(text).ok()?.call_type?.parse().ok()
}

/// The top-level fields of an object, in order, their values as sent.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// A single call's body: it must be a JSON object.
fn single_fields(text: &str) -> Result<Fields<'_>, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            ApiError::BadRequest { message: "the body must be a JSON object".into() }
        } else {
            ApiError::BadRequest {
                message: format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()),
            }
        }
    })
}

/// The call's text with the path's `type`, whatever the body says; every other
/// value exactly as sent.
fn with_type(fields: &Fields<'_>, call_type: CallType) -> String {
    let mut text =
        String::with_capacity(64 + fields.0.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>());
    text.push_str("{\"type\":\"");
    text.push_str(call_type.as_str());
    text.push('"');
    for (key, value) in fields.0.iter().filter(|(key, _)| key != "type") {
        text.push(',');
        push_field(&mut text, key, value);
    }
    text.push('}');
    text
}

/// Appends `"key":value`, the key escaped as JSON, the value as sent.
fn push_field(text: &mut String, key: &str, value: &RawValue) {
    text.push_str(&serde_json::to_string(key).unwrap_or_default());
    text.push(':');
    text.push_str(value.get());
}

fn batch_object(field: &'static str, raw: Option<&RawValue>) -> Result<Option<JsonObject>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => JsonObject::from_raw(raw).map(Some).map_err(|e| ApiError::BadRequest {
            message: format!("batch field `{field}` must be an object: {e}"),
        }),
    }
}

fn batch_sent_at(raw: Option<&RawValue>) -> Result<Option<Timestamp>, ApiError> {
    let Some(raw) = raw.filter(|raw| raw.get() != "null") else { return Ok(None) };
    let text: Cow<'_, str> = serde_json::from_str(raw.get()).map_err(|_| ApiError::BadRequest {
        message: "batch field `sentAt` must be an RFC 3339 string".into(),
    })?;
    text.parse::<Timestamp>().map(Some).map_err(|e| ApiError::BadRequest {
        message: format!("batch field `sentAt` ({text:?}) is not an RFC 3339 timestamp: {e}"),
    })
}

/// The batch's object with the item's keys on top.
fn merge(batch: &JsonObject, item: Option<&JsonObject>) -> Result<JsonObject, CallError> {
    let Some(item) = item else { return Ok(batch.clone()) };
    let invalid =
        |e: serde_json::Error| CallError::InvalidJson { line: 1, column: e.column(), message: e.to_string() };
    let batch: Fields<'_> = serde_json::from_str(batch.as_str()).map_err(invalid)?;
    let own: Fields<'_> = serde_json::from_str(item.as_str()).map_err(invalid)?;
    let mut text = String::with_capacity(batch_len(&batch) + batch_len(&own) + 2);
    text.push('{');
    let from_batch = batch.0.iter().filter(|(key, _)| !own.0.iter().any(|(k, _)| k == key));
    for (i, (key, value)) in from_batch.chain(own.0.iter()).enumerate() {
        if i > 0 {
            text.push(',');
        }
        push_field(&mut text, key, value);
    }
    text.push('}');
    JsonObject::from_json(&text).map_err(|e| CallError::InvalidJson {
        line: 1,
        column: 1,
        message: e.to_string(),
    })
}

fn batch_len(fields: &Fields<'_>) -> usize {
    fields.0.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum()
}

/// Stamps a call as received now, and checks its fields (its size was checked as
/// sent).
fn finish(call: &mut Call, now: Timestamp) -> Result<(), CallError> {
    call.stamp_received(now);
    call.validate_fields()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_length_skips_white_space_between_tokens_only() {
        assert_eq!(compact_len(r#"{ "a" : 1 ,	"b":[ 1, 2 ] }"#), r#"{"a":1,"b":[1,2]}"#.len());
        assert_eq!(compact_len(r#"{"a b": " x\" y "}"#), r#"{"a b": " x\" y "}"#.len() - 1);
        assert_eq!(compact(r#"{ "k" :"\\" , "l": "\\\" " }"#), r#"{"k":"\\","l":"\\\" "}"#);
        assert_eq!(compact("{\n  \"é\": \"ü ü\"\n}"), "{\"é\":\"ü ü\"}");
    }

    #[test]
    fn merged_objects_keep_every_value_as_sent() {
        let batch = JsonObject::from_json(r#"{"ip":"1.2.3.4","n":123456789012345678901234567890}"#).unwrap();
        let item = JsonObject::from_json(r#"{"ip":"5.6.7.8","locale":"de"}"#).unwrap();
        let merged = merge(&batch, Some(&item)).unwrap();
        assert_eq!(merged.as_str(), r#"{"n":123456789012345678901234567890,"ip":"5.6.7.8","locale":"de"}"#);
    }
}

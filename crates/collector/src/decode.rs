//! Turning request bodies into stamped, valid calls, or an [`ApiError`] that says
//! what is wrong and where.

use std::io::Read;

use cdp_calls::{Call, CallError, CallType, JsonObject, RawValue, Timestamp};
use serde::Deserialize;

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

/// Reads a body as sent: gunzips it when it is gzip-encoded, and refuses more than
/// `limit` bytes after decompression.
pub fn decompress(body: &[u8], gzip: bool, limit: usize) -> Result<Vec<u8>, ApiError> {
    if !gzip {
        if body.len() > limit {
            return Err(ApiError::TooLarge { what: "the body", bytes: body.len(), limit, index: None });
        }
        return Ok(body.to_vec());
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| ApiError::BadRequest {
        message: format!("the gzip body cannot be decoded: {e}"),
        index: None,
    })?;
    if out.len() > limit {
        return Err(ApiError::TooLarge {
            what: "the decompressed body",
            bytes: out.len(),
            limit,
            index: None,
        });
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

/// Decodes a (decompressed) body into calls, stamped as received at `now`
/// ([`Call::stamp_received`]) and validated. Any bad call fails the whole request,
/// naming its index in the batch.
///
/// For a batch, the batch's `context` and `integrations` are merged into each item
/// key by key, the item's own keys winning, and the batch's `sentAt` applies to
/// items without one.
pub fn decode(endpoint: Endpoint, body: &[u8], now: Timestamp) -> Result<Vec<Call>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest {
        message: format!("the body is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        index: None,
    })?;
    match endpoint {
        Endpoint::Single(call_type) => {
            let mut call = parse_single(text, call_type)?;
            finish(&mut call, now, None)?;
            Ok(vec![call])
        }
        Endpoint::Batch => {
            let body: BatchBody<'_> = serde_json::from_str(text).map_err(|e| ApiError::BadRequest {
                message: format!("invalid batch body at line {} column {}: {e}", e.line(), e.column()),
                index: None,
            })?;
            let context = batch_object("context", body.context)?;
            let integrations = batch_object("integrations", body.integrations)?;
            let sent_at = match body.sent_at {
                None => None,
                Some(raw) if raw.get() == "null" => None,
                Some(raw) => {
                    let text: &str = serde_json::from_str(raw.get()).map_err(|_| ApiError::BadRequest {
                        message: "batch field `sentAt` must be an RFC 3339 string".into(),
                        index: None,
                    })?;
                    Some(text.parse::<Timestamp>().map_err(|e| ApiError::BadRequest {
                        message: format!("batch field `sentAt` ({text:?}) is not an RFC 3339 timestamp: {e}"),
                        index: None,
                    })?)
                }
            };
            let mut calls = Vec::with_capacity(body.batch.len());
            for (index, item) in body.batch.iter().enumerate() {
                let at = |e: CallError| ApiError::from_call_error(e, Some(index));
                let mut call = Call::parse_json(item.get()).map_err(at)?;
                if let Some(batch) = &context {
                    call.context = Some(merge(batch, call.context.as_ref()).map_err(at)?);
                }
                if let Some(batch) = &integrations {
                    call.integrations = Some(merge(batch, call.integrations.as_ref()).map_err(at)?);
                }
                if call.sent_at.is_none() {
                    call.sent_at = sent_at;
                }
                finish(&mut call, now, Some(index))?;
                calls.push(call);
            }
            Ok(calls)
        }
    }
}

/// A single call: the path gives its type, whatever the body says.
fn parse_single(text: &str, call_type: CallType) -> Result<Call, ApiError> {
    let fields: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(text) {
        Ok(fields) => fields,
        Err(e) if e.is_data() => {
            return Err(ApiError::BadRequest {
                message: "the body must be a JSON object".into(),
                index: None,
            });
        }
        Err(e) => {
            return Err(ApiError::BadRequest {
                message: format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()),
                index: None,
            });
        }
    };
    let mut fields = fields;
    fields.insert("type".into(), serde_json::Value::String(call_type.as_str().into()));
    let text = serde_json::Value::Object(fields).to_string();
    Call::parse_json(&text).map_err(|e| ApiError::from_call_error(e, None))
}

fn batch_object(field: &'static str, raw: Option<&RawValue>) -> Result<Option<JsonObject>, ApiError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => JsonObject::from_raw(raw).map(Some).map_err(|e| ApiError::BadRequest {
            message: format!("batch field `{field}` must be an object: {e}"),
            index: None,
        }),
    }
}

/// The batch's object with the item's keys on top.
fn merge(batch: &JsonObject, item: Option<&JsonObject>) -> Result<JsonObject, CallError> {
    let Some(item) = item else { return Ok(batch.clone()) };
    let invalid =
        |e: serde_json::Error| CallError::InvalidJson { line: 1, column: e.column(), message: e.to_string() };
    let mut merged: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(batch.as_str()).map_err(invalid)?;
    let own: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(item.as_str()).map_err(invalid)?;
    merged.extend(own);
    JsonObject::from_json(&serde_json::Value::Object(merged).to_string())
        .map_err(|e| CallError::InvalidJson { line: 1, column: 1, message: e.to_string() })
}

/// Stamps and validates a call.
fn finish(call: &mut Call, now: Timestamp, index: Option<usize>) -> Result<(), ApiError> {
    call.stamp_received(now);
    call.validate().map_err(|e| ApiError::from_call_error(e, index))
}

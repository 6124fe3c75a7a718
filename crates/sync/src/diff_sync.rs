//! What a diff sync's run hands the [diff engine](crate::diff) for each row, and the
//! delete events it sends for keys that disappeared.
//!
//! For each row of the result:
//! - **key**: the text of the primary key column's value ([`key_text`]): text as it
//!   is, integers and decimals as their digits, floats as Rust writes them (`7` for
//!   a whole one), booleans `true`/`false`, bytes as lower-case hex, dates, times and
//!   timestamps as RFC 3339, JSON as its compact text. NULL is no key (a row error).
//! - **content**: the compact JSON of the row's call as the mapping made it, with its
//!   `messageId` removed. The mapping sets no `receivedAt`, `sentAt` or
//!   `originalTimestamp` (the run stamps those when it sends the call), so they are
//!   never part of it; a `timestamp` the *row* sets is row data and is part of it.
//! - **ids**: what a delete event needs, as a compact JSON object: `userId` and
//!   `anonymousId` (identify and group syncs), `groupId` and `objectTypeId` (group
//!   syncs; `"1"` when the row sets none). Empty for other call types.
//! - **payload**: the call's compact JSON, `messageId` included, parsed back and
//!   stamped as received when it is sent.

use cdp_calls::{Call, CallType, JsonObject, Track};
use cdp_rows::{RowError, RowErrorReason, Value};

/// Reserved field names a primary key may name without regard to case.
const RESERVED: &[&str] = &[
    "userId",
    "anonymousId",
    "groupId",
    "objectTypeId",
    "event",
    "name",
    "previousId",
    "messageId",
    "timestamp",
];

/// The index of the primary key column among `columns`: a reserved field name
/// (`userId`) matches without regard to case, as the mapping does; any other name
/// matches a column exactly, or its lower-cased name when `lowercase` is on.
pub(crate) fn key_column(primary_key: &str, columns: &[String], lowercase: bool) -> Option<usize> {
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(primary_key)) {
        return columns.iter().position(|c| c.eq_ignore_ascii_case(primary_key));
    }
    columns.iter().position(|c| c == primary_key).or_else(|| {
        if lowercase { columns.iter().position(|c| c.to_lowercase() == primary_key) } else { None }
    })
}

/// Writes the key text of `value` to `out` (cleared first); `false` for NULL.
pub(crate) fn key_text(value: &Value<'_>, out: &mut Vec<u8>) -> bool {
    out.clear();
    push_key_text(value, out);
    !value.is_null()
}

fn push_key_text(value: &Value<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = match value {
        Value::Null => Ok(()),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Int(i) => write!(out, "{i}"),
        Value::UInt(u) => write!(out, "{u}"),
        Value::Float(f) => write!(out, "{f}"),
        Value::Decimal(d) => write!(out, "{}", d.trim()),
        Value::Text(t) => out.write_all(t.as_bytes()),
        Value::Bytes(b) => b.iter().try_for_each(|byte| write!(out, "{byte:02x}")),
        Value::Date(d) => write!(out, "{d}"),
        Value::Time(t) => write!(out, "{t}"),
        Value::Timestamp(t) | Value::TimestampWithoutZone(t) => write!(out, "{t}"),
        Value::Json(j) => match cdp_calls::compact_json(j) {
            Ok(compact) => out.write_all(compact.as_bytes()),
            Err(_) => out.write_all(j.as_bytes()),
        },
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_key_text(item, out);
            }
            out.push(b']');
            Ok(())
        }
        // A kind of value this build does not know: its Debug text.
        other => write!(out, "{other:?}"),
    };
}

/// The content (`content`) and payload (`payload`) bytes of a mapped call; see the
/// module docs.
pub(crate) fn content_and_payload(call: &mut Call, content: &mut Vec<u8>, payload: &mut Vec<u8>) {
    payload.clear();
    call.write_json(payload);
    content.clear();
    let message_id = call.message_id.take();
    call.write_json(content);
    call.message_id = message_id;
}

/// The ids a delete event of `call`'s key needs, as a compact JSON object (empty for
/// call types without delete events).
pub(crate) fn ids_of(call: &Call, out: &mut Vec<u8>) {
    out.clear();
    let mut ids = serde_json::Map::new();
    match call.call_type() {
        CallType::Identify => {}
        CallType::Group => {
            if let Some(group_id) = call.group_id() {
                ids.insert("groupId".into(), group_id.into());
            }
            let object_type = call.traits().and_then(|t| t.lookup("objectTypeId")).and_then(|raw| {
                match serde_json::from_str::<serde_json::Value>(&raw).ok()? {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            });
            ids.insert("objectTypeId".into(), object_type.unwrap_or_else(|| "1".into()).into());
        }
        _ => return,
    }
    if let Some(user_id) = &call.user_id {
        ids.insert("userId".into(), user_id.as_str().into());
    }
    if let Some(anonymous_id) = &call.anonymous_id {
        ids.insert("anonymousId".into(), anonymous_id.as_str().into());
    }
    serde_json::to_writer(out, &ids).expect("a map of strings serialises");
}

/// What makes a delete event's `messageId` the same when a run is repeated against
/// the same snapshot: the start of the last successful run (`last_sync_time`) and the
/// snapshot file's header (its record count, length and checksum), if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotBase {
    pub(crate) last_sync_time: i64,
    pub(crate) header: [u8; 24],
}

impl SnapshotBase {
    /// Reads the header of the snapshot at `path` (zeros when there is none, or it is
    /// too short: [`crate::diff::DiffBuilder::new`] refuses a damaged one anyway).
    pub(crate) fn read(path: &std::path::Path, last_sync_time: i64) -> SnapshotBase {
        use std::io::Read;
        let mut header = [0u8; 40];
        let read = std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut header));
        let mut base = SnapshotBase { last_sync_time, header: [0; 24] };
        if read.is_ok() {
            base.header.copy_from_slice(&header[16..40]);
        }
        base
    }

    /// The delete event's `messageId` for `key` of sync `sync`: a ULID whose time part
    /// is `last_sync_time` (in milliseconds) and whose random part is the low 80 bits
    /// of the XXH3-128 of `cdp-sync/delete/v1`, then the sync name, the key (each as
    /// a little-endian `u64` length and the bytes), `last_sync_time` (`i64`, little
    /// endian) and the 24 header bytes.
    pub(crate) fn message_id(&self, sync: &str, key: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(64 + sync.len() + key.len());
        bytes.extend_from_slice(b"cdp-sync/delete/v1");
        for part in [sync.as_bytes(), key] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        bytes.extend_from_slice(&self.last_sync_time.to_le_bytes());
        bytes.extend_from_slice(&self.header);
        let random = xxhash_rust::xxh3::xxh3_128(&bytes) & ((1u128 << 80) - 1);
        let ms = u64::try_from(self.last_sync_time.saturating_mul(1000)).unwrap_or(0);
        ulid::Ulid::from_parts(ms, random).to_string()
    }
}

/// The delete event for a key that disappeared, from the `ids` stored with it: `User
/// Deleted` (identify) or `Object Deleted` (group), valid, with `message_id`; or the
/// row error (row 0: no row of this result) saying why it cannot be sent.
pub(crate) fn delete_event(
    call_type: CallType,
    key: &[u8],
    ids: &[u8],
    message_id: String,
) -> Result<Call, RowError> {
    let failed = |reason: RowErrorReason| RowError {
        row_number: 0,
        column: None,
        reason,
        values:
            serde_json::json!({ "key": String::from_utf8_lossy(key), "ids": String::from_utf8_lossy(ids) })
                .to_string()
                .into(),
    };
    let ids: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(ids).unwrap_or_default();
    let text = |name: &str| ids.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let mut call = match call_type {
        CallType::Group => {
            let mut properties = serde_json::Map::new();
            if let Some(group_id) = text("groupId") {
                properties.insert("objectId".into(), group_id.into());
            }
            properties
                .insert("objectTypeId".into(), text("objectTypeId").unwrap_or_else(|| "1".into()).into());
            let properties =
                JsonObject::try_from(serde_json::Value::Object(properties)).expect("a map is a JSON object");
            Call::new(Track { event: Some("Object Deleted".into()), properties: Some(properties) })
        }
        _ => Call::new(Track { event: Some("User Deleted".into()), properties: None }),
    };
    call.user_id = text("userId");
    call.anonymous_id = text("anonymousId");
    call.message_id = Some(message_id);
    call.validate().map_err(|e| failed(RowErrorReason::Call(e)))?;
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_keys_match_as_the_mapping_does() {
        let columns: Vec<String> = ["USERID", "Email", "plan"].map(String::from).to_vec();
        assert_eq!(key_column("userId", &columns, false), Some(0));
        assert_eq!(key_column("userid", &columns, false), Some(0));
        assert_eq!(key_column("Email", &columns, false), Some(1));
        assert_eq!(key_column("email", &columns, false), None);
        assert_eq!(key_column("email", &columns, true), Some(1));
        assert_eq!(key_column("PLAN", &columns, true), None);
        assert_eq!(key_column("id", &columns, true), None);
    }

    #[test]
    fn key_texts() {
        let mut out = Vec::new();
        let text = |value: Value<'_>, out: &mut Vec<u8>| {
            let some = key_text(&value, out);
            (some, String::from_utf8(out.clone()).unwrap())
        };
        assert_eq!(text(Value::Null, &mut out), (false, String::new()));
        assert_eq!(text(Value::from(7), &mut out), (true, "7".into()));
        assert_eq!(text(Value::from("u-7"), &mut out), (true, "u-7".into()));
        assert_eq!(
            text(Value::decimal("12345678901234567890"), &mut out),
            (true, "12345678901234567890".into())
        );
        assert_eq!(text(Value::Float(7.0), &mut out), (true, "7".into()));
        assert_eq!(text(Value::bytes(vec![0u8, 255]), &mut out), (true, "00ff".into()));
        assert_eq!(text(Value::json(r#"{ "a" : 1 }"#), &mut out), (true, r#"{"a":1}"#.into()));
    }

    #[test]
    fn delete_events_are_valid_semantic_events() {
        let id = SnapshotBase { last_sync_time: 1_764_000_000, header: [1; 24] }.message_id("people", b"7");
        assert_eq!(
            id,
            SnapshotBase { last_sync_time: 1_764_000_000, header: [1; 24] }.message_id("people", b"7")
        );
        assert_ne!(
            id,
            SnapshotBase { last_sync_time: 1_764_000_001, header: [1; 24] }.message_id("people", b"7")
        );
        assert_ne!(
            id,
            SnapshotBase { last_sync_time: 1_764_000_000, header: [2; 24] }.message_id("people", b"7")
        );
        assert_ne!(
            id,
            SnapshotBase { last_sync_time: 1_764_000_000, header: [1; 24] }.message_id("people", b"8")
        );

        let mut ids = Vec::new();
        ids_of(&Call::identify("7"), &mut ids);
        let user = delete_event(CallType::Identify, b"7", &ids, id.clone()).unwrap();
        assert_eq!(
            user.to_json(),
            format!(r#"{{"type":"track","messageId":"{id}","userId":"7","event":"User Deleted"}}"#)
        );
        let mut group = Call::group("7", "acme");
        group.body = cdp_calls::Group {
            group_id: Some("acme".into()),
            traits: Some(JsonObject::from_json(r#"{"objectTypeId":"2","name":"Acme"}"#).unwrap()),
        }
        .into();
        ids_of(&group, &mut ids);
        let object = delete_event(CallType::Group, b"acme", &ids, id.clone()).unwrap();
        assert_eq!(object.properties().unwrap().as_str(), r#"{"objectId":"acme","objectTypeId":"2"}"#);
        assert_eq!(object.user_id.as_deref(), Some("7"));
        ids_of(&Call::group("7", "acme"), &mut ids);
        let object = delete_event(CallType::Group, b"acme", &ids, id.clone()).unwrap();
        assert_eq!(object.properties().unwrap().as_str(), r#"{"objectId":"acme","objectTypeId":"1"}"#);

        // An identify row with only an anonymousId: User Deleted needs a userId.
        let error = delete_event(CallType::Identify, b"a", br#"{"anonymousId":"a"}"#, id).unwrap_err();
        assert_eq!(error.row_number, 0);
        assert!(error.to_string().contains("userId"), "{error}");
    }
}

//! The JSON wire form of a [`Call`]: reading (lenient where the spec says so, with
//! structured errors), writing, and the exact size of the compact form.

use std::collections::BTreeMap;
use std::fmt;

use std::borrow::Cow;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::json::json_kind;
use crate::{Body, Call, CallError, CallType, Extra, JsonObject, Timestamp};

/// A scalar field as found, before its type is checked.
enum Scalar {
    Null,
    Str(String),
    /// A JSON number, as its decimal text.
    Number(String),
    Other(&'static str),
}

impl Scalar {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Str(_) => "string",
            Scalar::Number(_) => "number",
            Scalar::Other(kind) => kind,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                // `Display` for f64 never uses exponent notation and drops `.0`.
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other("boolean"))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A call as found on the wire, every field unchecked.
#[derive(Default)]
struct Loose {
    kind: Option<Scalar>,
    message_id: Option<Scalar>,
    user_id: Option<Scalar>,
    anonymous_id: Option<Scalar>,
    timestamp: Option<Scalar>,
    original_timestamp: Option<Scalar>,
    sent_at: Option<Scalar>,
    received_at: Option<Scalar>,
    context: Option<Box<RawValue>>,
    integrations: Option<Box<RawValue>>,
    /// Fields that belong to some types only; unknown fields for the others.
    typed: BTreeMap<&'static str, Box<RawValue>>,
    extra: BTreeMap<String, Box<RawValue>>,
}

/// Wire names of the fields that only some call types have.
const TYPED_FIELDS: [&str; 6] = ["event", "name", "groupId", "previousId", "traits", "properties"];

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
                let mut c = Loose::default();
                while let Some(key) = map.next_key::<KeyBuf>()? {
                    let key = key.0;
                    let slot = match &*key {
                        "type" => &mut c.kind,
                        "messageId" => &mut c.message_id,
                        "userId" => &mut c.user_id,
                        "anonymousId" => &mut c.anonymous_id,
                        "timestamp" => &mut c.timestamp,
                        "originalTimestamp" => &mut c.original_timestamp,
                        "sentAt" => &mut c.sent_at,
                        "receivedAt" => &mut c.received_at,
                        "context" => {
                            c.context = Some(map.next_value()?);
                            continue;
                        }
                        "integrations" => {
                            c.integrations = Some(map.next_value()?);
                            continue;
                        }
                        other => {
                            let value: Box<RawValue> = map.next_value()?;
                            match TYPED_FIELDS.iter().find(|f| **f == other) {
                                Some(field) => c.typed.insert(field, value),
                                None => c.extra.insert(key.into_owned(), value),
                            };
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

/// An object key, borrowed where the input allows (no escapes) and copied otherwise.
struct KeyBuf<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyBuf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyBuf<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<KeyBuf<'de>, E> {
                Ok(KeyBuf(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyBuf<'de>, E> {
                Ok(KeyBuf(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyBuf<'de>, E> {
                Ok(KeyBuf(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn id_field(value: Option<Scalar>, field: &'static str) -> Result<Option<String>, CallError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s) | Scalar::Number(s)) => Ok(Some(s)),
        Some(other) => {
            Err(CallError::InvalidField { field, expected: "a string or number", found: other.kind() })
        }
    }
}

fn string_field(value: Option<Scalar>, field: &'static str) -> Result<Option<String>, CallError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s)),
        Some(other) => Err(CallError::InvalidField { field, expected: "a string", found: other.kind() }),
    }
}

fn time_field(value: Option<Scalar>, field: &'static str) -> Result<Option<Timestamp>, CallError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => match Timestamp::parse_rfc3339(&s) {
            Ok(t) => Ok(Some(t)),
            Err(reason) => Err(CallError::InvalidTimestamp { field, value: s, reason }),
        },
        Some(other) => Err(CallError::InvalidField {
            field,
            expected: "an RFC 3339 timestamp string",
            found: other.kind(),
        }),
    }
}

fn object_field(value: Option<Box<RawValue>>, field: &'static str) -> Result<Option<JsonObject>, CallError> {
    let Some(raw) = value else { return Ok(None) };
    match json_kind(raw.get()) {
        "null" => Ok(None),
        "object" => Ok(Some(JsonObject::from_raw(raw).expect("checked to be an object"))),
        found => Err(CallError::InvalidField { field, expected: "an object", found }),
    }
}

fn raw_scalar(value: Option<Box<RawValue>>) -> Option<Scalar> {
    value.map(|raw| serde_json::from_str(raw.get()).expect("a raw value is valid JSON"))
}

impl Loose {
    fn into_call(mut self) -> Result<Call, CallError> {
        let kind = match self.kind.take() {
            None | Some(Scalar::Null) => return Err(CallError::MissingType),
            Some(Scalar::Str(s)) => {
                s.parse::<CallType>().map_err(|e| CallError::UnknownType { value: e.0 })?
            }
            Some(other) => {
                return Err(CallError::InvalidField {
                    field: "type",
                    expected: "a string",
                    found: other.kind(),
                });
            }
        };
        let message_id = string_field(self.message_id.take(), "messageId")?;
        let user_id = id_field(self.user_id.take(), "userId")?;
        let anonymous_id = id_field(self.anonymous_id.take(), "anonymousId")?;
        let timestamp = time_field(self.timestamp.take(), "timestamp")?;
        let original_timestamp = time_field(self.original_timestamp.take(), "originalTimestamp")?;
        let sent_at = time_field(self.sent_at.take(), "sentAt")?;
        let received_at = time_field(self.received_at.take(), "receivedAt")?;
        let context = object_field(self.context.take(), "context")?;
        let integrations = object_field(self.integrations.take(), "integrations")?;
        let mut typed = std::mem::take(&mut self.typed);
        let mut take = |field: &'static str| typed.remove(field);
        let body = match kind {
            CallType::Identify => {
                Body::Identify(crate::Identify { traits: object_field(take("traits"), "traits")? })
            }
            CallType::Track => Body::Track(crate::Track {
                event: string_field(raw_scalar(take("event")), "event")?,
                properties: object_field(take("properties"), "properties")?,
            }),
            CallType::Page => Body::Page(crate::Page {
                name: string_field(raw_scalar(take("name")), "name")?,
                properties: object_field(take("properties"), "properties")?,
            }),
            CallType::Screen => Body::Screen(crate::Screen {
                name: string_field(raw_scalar(take("name")), "name")?,
                properties: object_field(take("properties"), "properties")?,
            }),
            CallType::Group => Body::Group(crate::Group {
                group_id: id_field(raw_scalar(take("groupId")), "groupId")?,
                traits: object_field(take("traits"), "traits")?,
            }),
            CallType::Alias => Body::Alias(crate::Alias {
                previous_id: id_field(raw_scalar(take("previousId")), "previousId")?,
            }),
        };
        // Fields of other types are unknown fields for this one: keep them.
        let mut extra = self.extra;
        extra.extend(typed.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Ok(Call {
            message_id,
            user_id,
            anonymous_id,
            timestamp,
            original_timestamp,
            sent_at,
            received_at,
            context,
            integrations,
            body,
            extra: Extra(extra),
        })
    }
}

/// The message of a serde_json error without its " at line L column C" suffix.
fn bare_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

impl Call {
    /// Reads a call from its JSON text, checking the types of its fields.
    ///
    /// Numeric `userId`, `anonymousId`, `groupId` and `previousId` become decimal
    /// strings; timestamps must be RFC 3339 text and are moved to UTC; `null` is the
    /// same as absent. Fields the call's type does not have (a `traits` on a track
    /// call, say) are unknown fields, kept in [`Call::extra`]. Required fields are
    /// not checked here: see [`Call::validate`].
    pub fn parse_json(text: &str) -> Result<Call, CallError> {
        match serde_json::from_str::<Loose>(text) {
            Ok(loose) => loose.into_call(),
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                // `Loose` accepts any object, so a data error is a non-object.
                Err(CallError::NotAnObject { found: json_kind(text) })
            }
            Err(e) => {
                Err(CallError::InvalidJson { line: e.line(), column: e.column(), message: bare_message(&e) })
            }
        }
    }

    /// The call as compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serialising a call to memory cannot fail")
    }

    /// Writes the call's compact JSON text (no newline) to `out`.
    pub fn write_json<W: std::io::Write>(&self, out: W) -> std::io::Result<()> {
        serde_json::to_writer(out, self).map_err(std::io::Error::from)
    }

    /// The exact length in bytes of [`Call::to_json`], computed without writing it.
    pub fn compact_json_len(&self) -> usize {
        let mut n = 2; // braces
        let mut fields = 0usize;
        let mut field = |key_len: usize, value_len: usize| {
            fields += 1;
            n += key_len + 3 + value_len; // "key":value
        };
        field(4, self.call_type().as_str().len() + 2);
        for (key, value) in wire_strings(self) {
            if let Some(v) = value {
                field(key.len(), escaped_len(v));
            }
        }
        for (key, value) in wire_objects(self) {
            if let Some(v) = value {
                field(key.len(), v.len());
            }
        }
        for (key, value) in wire_times(self) {
            if let Some(t) = value {
                field(key.len(), if t.as_micros() % 1000 == 0 { 26 } else { 29 });
            }
        }
        for (key, value) in self.extra.iter() {
            field(escaped_len(key) - 2, value.get().len());
        }
        n + fields.saturating_sub(1) // commas
    }
}

/// The string fields of a call in wire order, with their wire names.
fn wire_strings(c: &Call) -> [(&'static str, Option<&str>); 7] {
    [
        ("messageId", c.message_id.as_deref()),
        ("userId", c.user_id.as_deref()),
        ("anonymousId", c.anonymous_id.as_deref()),
        ("event", c.event()),
        ("name", c.name()),
        ("groupId", c.group_id()),
        ("previousId", c.previous_id()),
    ]
}

/// The object fields of a call in wire order, with their wire names.
fn wire_objects(c: &Call) -> [(&'static str, Option<&JsonObject>); 4] {
    [
        ("traits", c.traits()),
        ("properties", c.properties()),
        ("context", c.context.as_ref()),
        ("integrations", c.integrations.as_ref()),
    ]
}

/// The timestamp fields of a call in wire order, with their wire names.
fn wire_times(c: &Call) -> [(&'static str, Option<Timestamp>); 4] {
    [
        ("timestamp", c.timestamp),
        ("originalTimestamp", c.original_timestamp),
        ("sentAt", c.sent_at),
        ("receivedAt", c.received_at),
    ]
}

/// The length of `s` as a JSON string literal, quotes included, as serde_json writes it.
pub(crate) fn escaped_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

impl Serialize for Call {
    /// Writes the wire form: `type`, the string fields, the objects, the timestamps,
    /// then the unknown fields in key order. Absent fields are left out.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.call_type().as_str())?;
        for (key, value) in wire_strings(self) {
            if let Some(v) = value {
                map.serialize_entry(key, v)?;
            }
        }
        for (key, value) in wire_objects(self) {
            if let Some(v) = value {
                map.serialize_entry(key, v)?;
            }
        }
        for (key, value) in wire_times(self) {
            if let Some(t) = value {
                map.serialize_entry(key, t.format_into(&mut [0; 27]))?;
            }
        }
        for (key, value) in self.extra.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Call {
    /// Reads the wire form as [`Call::parse_json`] does (errors become serde errors).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Loose::deserialize(d)?.into_call().map_err(de::Error::custom)
    }
}

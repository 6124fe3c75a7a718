//! The JSON wire form of a [`Call`]: reading (lenient where the spec says so, with
//! structured errors), writing, and the exact size of the compact form.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use std::borrow::Cow;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::json::{compact_cow, json_kind, serialize_raw};
use crate::scan::{Scanner, unescape};
use crate::{Body, Call, CallError, CallType, Extra, JsonObject, Timestamp, TimestampText};

/// A scalar field as found, before its type is checked.
enum Scalar<'a> {
    Null,
    Str(Cow<'a, str>),
    /// A JSON number, as its decimal text.
    Number(String),
    Other(&'static str),
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Str(_) => "string",
            Scalar::Number(_) => "number",
            Scalar::Other(kind) => kind,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
                // `Display` for f64 never uses exponent notation and drops `.0`.
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other("boolean"))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar from a value's raw JSON text.
fn scalar_from_raw(raw: Cow<'_, str>) -> Scalar<'_> {
    if raw.starts_with('"') {
        let mut scanner = Scanner::new(&raw);
        if let Some((content, false)) = scanner.string() {
            return Scalar::Str(match &raw {
                Cow::Borrowed(text) => Cow::Borrowed(&text[1..text.len() - 1]),
                Cow::Owned(_) => Cow::Owned(content.to_owned()),
            });
        }
    }
    // Raw values are valid JSON, but not every valid JSON value decodes: a string
    // with a lone surrogate escape (`"\ud800"`) or a number out of range (`1e400`).
    let Ok(scalar) = serde_json::from_str::<Scalar<'_>>(&raw) else {
        return Scalar::Other(if raw.starts_with('"') {
            "a string with a lone surrogate escape"
        } else {
            "a number out of range"
        });
    };
    match scalar {
        Scalar::Str(s) => Scalar::Str(Cow::Owned(s.into_owned())),
        Scalar::Null => Scalar::Null,
        Scalar::Number(n) => Scalar::Number(n),
        Scalar::Other(kind) => Scalar::Other(kind),
    }
}

/// A call as found on the wire, every field unchecked. Both readers (the fast
/// scanner and serde) fill one, and [`Loose::into_call`] checks it.
#[derive(Default)]
struct Loose<'a> {
    /// The scalar fields every call may have: `type`, `messageId`, `userId`,
    /// `anonymousId`, `timestamp`, `originalTimestamp`, `sentAt`, `receivedAt`.
    scalars: [Option<Scalar<'a>>; 8],
    /// Compact raw JSON of `context`.
    context: Option<Cow<'a, str>>,
    /// Compact raw JSON of `integrations`.
    integrations: Option<Cow<'a, str>>,
    /// Fields that belong to some types only (unknown fields for the others), as
    /// compact raw JSON, indexed like [`TYPED_FIELDS`].
    typed: [Option<Cow<'a, str>>; 6],
    extra: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

/// Wire names of the scalar fields every call may have, by their index in
/// [`Loose::scalars`] ([`slot`] maps them; a test checks that it agrees).
#[cfg(test)]
const SCALAR_FIELDS: [&str; 8] =
    ["type", "messageId", "userId", "anonymousId", "timestamp", "originalTimestamp", "sentAt", "receivedAt"];

/// Wire names of the fields that only some call types have.
const TYPED_FIELDS: [&str; 6] = ["event", "name", "groupId", "previousId", "traits", "properties"];
const EVENT: usize = 0;
const NAME: usize = 1;
const GROUP_ID: usize = 2;
const PREVIOUS_ID: usize = 3;
const TRAITS: usize = 4;
const PROPERTIES: usize = 5;

/// Where a top-level key goes.
enum Slot {
    Scalar(usize),
    Context,
    Integrations,
    Typed(usize),
    Extra,
}

fn slot(key: &str) -> Slot {
    // Indices into SCALAR_FIELDS and TYPED_FIELDS (checked by a test).
    match key {
        "type" => Slot::Scalar(0),
        "messageId" => Slot::Scalar(1),
        "userId" => Slot::Scalar(2),
        "anonymousId" => Slot::Scalar(3),
        "timestamp" => Slot::Scalar(4),
        "originalTimestamp" => Slot::Scalar(5),
        "sentAt" => Slot::Scalar(6),
        "receivedAt" => Slot::Scalar(7),
        "context" => Slot::Context,
        "integrations" => Slot::Integrations,
        "event" => Slot::Typed(EVENT),
        "name" => Slot::Typed(NAME),
        "groupId" => Slot::Typed(GROUP_ID),
        "previousId" => Slot::Typed(PREVIOUS_ID),
        "traits" => Slot::Typed(TRAITS),
        "properties" => Slot::Typed(PROPERTIES),
        _ => Slot::Extra,
    }
}

/// The fast path: scans the common shape of a call without serde. `None` when the
/// text is invalid or unusual (escaped keys, numeric or non-scalar values where
/// text belongs, deep nesting): the serde path then decides.
fn scan_call(text: &str) -> Option<Loose<'_>> {
    let mut p = Scanner::new(text);
    let mut c = Loose::default();
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if p.peek()? == b'}' {
        p.at += 1;
    } else {
        loop {
            let (key, escaped) = p.string()?;
            if escaped {
                return None;
            }
            p.ws();
            p.eat(b':')?;
            p.ws();
            match slot(key) {
                Slot::Scalar(i) => {
                    let value = match p.peek()? {
                        b'"' => match p.string()? {
                            (s, false) => Scalar::Str(Cow::Borrowed(s)),
                            (s, true) => Scalar::Str(Cow::Owned(unescape(s)?)),
                        },
                        b'n' => {
                            p.raw()?;
                            Scalar::Null
                        }
                        _ => return None,
                    };
                    c.scalars[i] = Some(value);
                }
                Slot::Context => c.context = Some(p.raw()?),
                Slot::Integrations => c.integrations = Some(p.raw()?),
                Slot::Typed(i) => c.typed[i] = Some(p.raw()?),
                Slot::Extra => {
                    let value = p.raw()?;
                    c.extra.insert(Cow::Borrowed(key), value);
                }
            }
            p.ws();
            match p.peek()? {
                b',' => {
                    p.at += 1;
                    p.ws();
                }
                b'}' => {
                    p.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    p.ws();
    p.at_end().then_some(c)
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
                let mut c = Loose::default();
                let raw = |value: Box<RawValue>| Cow::Owned(compact_cow(value.get()).into_owned());
                while let Some(KeyBuf(key)) = map.next_key::<KeyBuf<'de>>()? {
                    match slot(&key) {
                        Slot::Scalar(i) => c.scalars[i] = Some(map.next_value()?),
                        Slot::Context => c.context = Some(raw(map.next_value()?)),
                        Slot::Integrations => c.integrations = Some(raw(map.next_value()?)),
                        Slot::Typed(i) => c.typed[i] = Some(raw(map.next_value()?)),
                        Slot::Extra => {
                            let value = raw(map.next_value()?);
                            c.extra.insert(key, value);
                        }
                    }
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
        match Scalar::deserialize(d)? {
            Scalar::Str(key) => Ok(KeyBuf(key)),
            other => Err(de::Error::invalid_type(de::Unexpected::Other(other.kind()), &"a string key")),
        }
    }
}

fn id_field(value: Option<Scalar<'_>>, field: &'static str) -> Result<Option<String>, CallError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
        Some(Scalar::Number(s)) => Ok(Some(s)),
        Some(other) => {
            Err(CallError::InvalidField { field, expected: "a string or number", found: other.kind() })
        }
    }
}

fn string_field(value: Option<Scalar<'_>>, field: &'static str) -> Result<Option<String>, CallError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
        Some(other) => Err(CallError::InvalidField { field, expected: "a string", found: other.kind() }),
    }
}

fn time_field(value: Option<Scalar<'_>>, field: &'static str) -> Result<Option<Timestamp>, CallError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => match Timestamp::parse_rfc3339(&s) {
            Ok(t) => Ok(Some(t)),
            Err(reason) => Err(CallError::InvalidTimestamp { field, value: s.into_owned(), reason }),
        },
        Some(other) => Err(CallError::InvalidField {
            field,
            expected: "an RFC 3339 timestamp string",
            found: other.kind(),
        }),
    }
}

fn object_field(value: Option<Cow<'_, str>>, field: &'static str) -> Result<Option<JsonObject>, CallError> {
    let Some(raw) = value else { return Ok(None) };
    match json_kind(&raw) {
        "null" => Ok(None),
        "object" => Ok(Some(JsonObject::from_valid(raw))),
        found => Err(CallError::InvalidField { field, expected: "an object", found }),
    }
}

impl<'a> Loose<'a> {
    fn into_call(mut self) -> Result<Call, CallError> {
        let [kind, message_id, user_id, anonymous_id, timestamp, original_timestamp, sent_at, received_at] =
            std::mem::take(&mut self.scalars);
        let kind = match kind {
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
        let message_id = string_field(message_id, "messageId")?;
        let user_id = id_field(user_id, "userId")?;
        let anonymous_id = id_field(anonymous_id, "anonymousId")?;
        let timestamp = time_field(timestamp, "timestamp")?;
        let original_timestamp = time_field(original_timestamp, "originalTimestamp")?;
        let sent_at = time_field(sent_at, "sentAt")?;
        let received_at = time_field(received_at, "receivedAt")?;
        let context = object_field(self.context.take(), "context")?;
        let integrations = object_field(self.integrations.take(), "integrations")?;
        let typed = &mut self.typed;
        let scalar = |raw: Option<Cow<'a, str>>| raw.map(scalar_from_raw);
        let body = match kind {
            CallType::Identify => {
                Body::Identify(crate::Identify { traits: object_field(typed[TRAITS].take(), "traits")? })
            }
            CallType::Track => Body::Track(crate::Track {
                event: string_field(scalar(typed[EVENT].take()), "event")?,
                properties: object_field(typed[PROPERTIES].take(), "properties")?,
            }),
            CallType::Page => Body::Page(crate::Page {
                name: string_field(scalar(typed[NAME].take()), "name")?,
                properties: object_field(typed[PROPERTIES].take(), "properties")?,
            }),
            CallType::Screen => Body::Screen(crate::Screen {
                name: string_field(scalar(typed[NAME].take()), "name")?,
                properties: object_field(typed[PROPERTIES].take(), "properties")?,
            }),
            CallType::Group => Body::Group(crate::Group {
                group_id: id_field(scalar(typed[GROUP_ID].take()), "groupId")?,
                traits: object_field(typed[TRAITS].take(), "traits")?,
            }),
            CallType::Alias => Body::Alias(crate::Alias {
                previous_id: id_field(scalar(typed[PREVIOUS_ID].take()), "previousId")?,
            }),
        };
        // Fields of other types are unknown fields for this one: keep them.
        let mut extra: BTreeMap<String, Box<str>> =
            self.extra.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned().into_boxed_str())).collect();
        for (name, value) in TYPED_FIELDS.iter().zip(self.typed) {
            if let Some(value) = value {
                extra.insert((*name).to_owned(), value.into_owned().into_boxed_str());
            }
        }
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
    /// same as absent. Nested objects and unknown fields are kept as compact JSON
    /// text. Fields the call's type does not have (a `traits` on a track call, say)
    /// are unknown fields, kept in [`Call::extra`]. Required fields are not checked
    /// here: see [`Call::validate`].
    pub fn parse_json(text: &str) -> Result<Call, CallError> {
        if let Some(loose) = scan_call(text) {
            return loose.into_call();
        }
        match serde_json::from_str::<Loose<'_>>(text) {
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
        let mut out = Vec::with_capacity(self.compact_json_len());
        self.write_json(&mut out);
        String::from_utf8(out).expect("the writer writes UTF-8")
    }

    /// Appends the call's compact JSON text (no newline) to `out`.
    ///
    /// The output is the same as serde_json's for [`Call`]'s `Serialize`: `type`,
    /// the string fields, the objects, the timestamps, then the unknown fields in key
    /// order; absent fields are left out.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(self.call_type().as_str().as_bytes());
        out.push(b'"');
        let key = |out: &mut Vec<u8>, key: &str| {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
        };
        for (name, value) in wire_strings(self) {
            if let Some(v) = value {
                key(out, name);
                push_json_string(out, v);
            }
        }
        for (name, value) in wire_objects(self) {
            if let Some(v) = value {
                key(out, name);
                out.extend_from_slice(v.as_str().as_bytes());
            }
        }
        // A call's timestamps are often the same instant (`timestamp` and
        // `receivedAt` when stamped): each instant is formatted once, and copied.
        let mut written: [Option<(Timestamp, usize)>; 4] = [None; 4];
        for (i, (name, value)) in wire_times(self).into_iter().enumerate() {
            if let Some(t) = value {
                key(out, name);
                out.push(b'"');
                let start = out.len();
                match written.iter().flatten().find(|(earlier, _)| *earlier == t) {
                    Some(&(_, at)) => out.extend_from_within(at..at + t.rfc3339_len()),
                    None => push_time(out, t),
                }
                written[i] = Some((t, start));
                out.push(b'"');
            }
        }
        for (name, value) in self.extra.iter() {
            out.push(b',');
            push_json_string(out, name);
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'}');
    }

    /// The exact length in bytes of [`Call::to_json`], computed without writing it.
    pub fn compact_json_len(&self) -> usize {
        self.json_len_with(escaped_len)
    }

    /// An upper bound of [`Call::compact_json_len`] that does not look inside
    /// strings (every byte counted as its longest escape).
    pub(crate) fn compact_json_len_bound(&self) -> usize {
        self.json_len_with(|s| 2 + 6 * s.len())
    }

    fn json_len_with(&self, string_len: impl Fn(&str) -> usize) -> usize {
        let mut n = 2; // braces
        let mut fields = 0usize;
        let mut field = |key_len: usize, value_len: usize| {
            fields += 1;
            n += key_len + 3 + value_len; // "key":value
        };
        field(4, self.call_type().as_str().len() + 2);
        for (key, value) in wire_strings(self) {
            if let Some(v) = value {
                field(key.len(), string_len(v));
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
            field(string_len(key) - 2, value.len());
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

/// Which bytes need escaping inside a JSON string: `"`, `\\` and control bytes.
const fn needs_escape_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
}
static NEEDS_ESCAPE: [bool; 256] = needs_escape_table();

/// The length of `s` as a JSON string literal, quotes included, as
/// [`push_json_string`] writes it.
///
/// ```
/// let mut out = Vec::new();
/// cdp_calls::push_json_string(&mut out, "a \"quote\"\n\u{1}");
/// assert_eq!(cdp_calls::json_string_len("a \"quote\"\n\u{1}"), out.len());
/// ```
pub fn escaped_len(s: &str) -> usize {
    2 + s.len()
        + s.bytes()
            .filter(|b| NEEDS_ESCAPE[usize::from(*b)])
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                _ => 5,
            })
            .sum::<usize>()
}

thread_local! {
    /// The last instant [`push_time`] wrote on this thread, and its text.
    static LAST_TIME: Cell<TimestampText> = const { Cell::new(TimestampText::new()) };
}

/// Appends the RFC 3339 text of `t` ([`Timestamp::push_rfc3339`]). Calls written one
/// after the other often share an instant (a run stamps a batch of calls with one
/// `receivedAt`): the text of the last instant written on the thread is copied when
/// the same instant comes again ([`TimestampText`]).
fn push_time(out: &mut Vec<u8>, t: Timestamp) {
    LAST_TIME.with(|last| {
        let mut text = last.get();
        text.push(out, t);
        last.set(text);
    });
}

/// Appends `s` as a JSON string literal, escaped exactly as serde_json escapes it:
/// `"` and `\\` with a backslash, `\n \r \t \b \f` by name, other control bytes as
/// `\u00XX`, everything else as is.
///
/// ```
/// let mut out = Vec::new();
/// cdp_calls::push_json_string(&mut out, "say \"hi\"\n");
/// assert_eq!(out, br#""say \"hi\"\n""#);
/// ```
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
            map.serialize_entry(key, &RawJson(value))?;
        }
        map.end()
    }
}

/// Valid JSON text, serialised as is.
struct RawJson<'a>(&'a str);

impl Serialize for RawJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_raw(self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Call {
    /// Reads the wire form as [`Call::parse_json`] does (errors become serde errors).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Loose::deserialize(d)?.into_call().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_key_has_the_slot_of_its_table() {
        for (i, key) in SCALAR_FIELDS.iter().enumerate() {
            assert!(matches!(slot(key), Slot::Scalar(j) if j == i), "{key}");
        }
        for (i, key) in TYPED_FIELDS.iter().enumerate() {
            assert!(matches!(slot(key), Slot::Typed(j) if j == i), "{key}");
        }
        assert!(matches!(slot("context"), Slot::Context));
        assert!(matches!(slot("integrations"), Slot::Integrations));
        for other in ["", "Type", "user_id", "contexts", "extra"] {
            assert!(matches!(slot(other), Slot::Extra), "{other}");
        }
    }

    /// The text kept for the last instant is only ever reused for that instant:
    /// runs of equal instants, alternating ones, and millisecond and microsecond
    /// forms all come out as serde writes them.
    #[test]
    fn timestamps_written_one_after_another_are_each_their_own_text() {
        let instants: Vec<Timestamp> = [
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00.000001Z",
            "2026-11-22T10:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59.999999Z",
            "1969-12-31T23:59:59.999Z",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        for (i, &t) in instants.iter().enumerate() {
            let mut call = Call::parse_json(r#"{"type":"track","event":"E","userId":"u"}"#).unwrap();
            call.stamp_received(t);
            call.sent_at = Some(instants[(i + 3) % instants.len()]);
            let mut out = Vec::new();
            call.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&call).unwrap());
        }
    }
}

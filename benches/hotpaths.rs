//! Each hand-written hot path of the export against the crate that does the same
//! job, on the same input (issue 17): one criterion group per piece.
//!
//! - `json`: reading a call from its NDJSON line. Ours is [`Call::parse_json`]
//!   (cdp-calls' one-pass scanner); against it, serde_json (a borrowed `RawValue`
//!   per nested object, the sibling path `parse_json` falls back on) and sonic-rs
//!   (a checked `LazyValue` per nested object), both building the same [`Call`].
//! - `timestamp`: parsing RFC 3339 text and writing it back in UTC. The
//!   hand-written parser and writer cdp-calls had (now in `retired::time`, kept
//!   only to measure) against chrono and jiff, and against what
//!   [`Timestamp::parse_rfc3339`] and [`Timestamp::push_rfc3339`] are now (chrono's
//!   parser, jiff's printer).
//! - `csv`: the CSV encoder's field quoting, one row at a time. Ours is cdp-encode's
//!   `push_field` (private, so copied in `retired::csv` and checked against the
//!   encoder's output at start); against it, `csv_core::Writer` and `csv::Writer`.
//! - `export`: the whole export in memory (NDJSON in, one file per call type out),
//!   per format, so that each piece's share is measured in the same run.
//!
//! Before timing anything, every variant is checked to give the same result as ours
//! on every input (the same calls, instants, text and bytes); a difference panics.
//! Set `CDP_BENCH_CALLS` to change the input (default 20,000 calls of
//! `benches/data/gen_calls.py`).
//!
//! ```text
//! cargo bench -p cdp-warehouse --bench hotpaths
//! ```

mod common;
#[path = "hotpaths/retired.rs"]
mod retired;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use cdp_warehouse::calls::ndjson::CallReader;
use cdp_warehouse::calls::{
    Alias, Body, Call, CallType, Group, Identify, JsonObject, Page, Screen, Timestamp, Track, Value,
};
use cdp_warehouse::encode::{Encode, EncodeOptions, FileEncoder, FileFormat};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

// ---------------------------------------------------------------------------------
// JSON: the same `Call` through serde_json and sonic-rs.
// ---------------------------------------------------------------------------------

/// A scalar field as found, before its type is checked (as in cdp-calls' wire.rs).
enum Scalar<'a> {
    Null,
    Str(Cow<'a, str>),
    Number(String),
    Other(&'static str),
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

/// A checked raw JSON value borrowed from the line: serde_json's `&RawValue` or
/// sonic-rs's `LazyValue`.
trait RawText<'de> {
    fn text(&self) -> Cow<'de, str>;
}

impl<'de> RawText<'de> for &'de serde_json::value::RawValue {
    fn text(&self) -> Cow<'de, str> {
        Cow::Borrowed(self.get())
    }
}

impl<'de> RawText<'de> for sonic_rs::LazyValue<'de> {
    fn text(&self) -> Cow<'de, str> {
        self.as_raw_cow()
    }
}

/// A call as found on the wire, every field unchecked, nested values raw.
struct Wire<'a, R> {
    /// `type`, `messageId`, `userId`, `anonymousId`, `timestamp`,
    /// `originalTimestamp`, `sentAt`, `receivedAt`.
    scalars: [Option<Scalar<'a>>; 8],
    context: Option<R>,
    integrations: Option<R>,
    /// `event`, `name`, `groupId`, `previousId`, `traits`, `properties`.
    typed: [Option<R>; 6],
    extra: Vec<(Cow<'a, str>, R)>,
}

const TYPED_FIELDS: [&str; 6] = ["event", "name", "groupId", "previousId", "traits", "properties"];

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Wire<'de, R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(std::marker::PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for V<R> {
            type Value = Wire<'de, R>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire<'de, R>, A::Error> {
                let mut w = Wire {
                    scalars: Default::default(),
                    context: None,
                    integrations: None,
                    typed: Default::default(),
                    extra: Vec::new(),
                };
                while let Some(key) = map.next_key::<Scalar<'de>>()? {
                    let Scalar::Str(key) = key else {
                        return Err(de::Error::custom("a key that is not a string"));
                    };
                    let scalar = |i: usize| -> Option<usize> { Some(i) };
                    let slot = match &*key {
                        "type" => scalar(0),
                        "messageId" => scalar(1),
                        "userId" => scalar(2),
                        "anonymousId" => scalar(3),
                        "timestamp" => scalar(4),
                        "originalTimestamp" => scalar(5),
                        "sentAt" => scalar(6),
                        "receivedAt" => scalar(7),
                        _ => None,
                    };
                    if let Some(i) = slot {
                        w.scalars[i] = Some(map.next_value()?);
                        continue;
                    }
                    match &*key {
                        "context" => w.context = map.next_value()?,
                        "integrations" => w.integrations = map.next_value()?,
                        other => match TYPED_FIELDS.iter().position(|f| *f == other) {
                            Some(i) => w.typed[i] = map.next_value()?,
                            None => {
                                let value = map.next_value()?;
                                w.extra.push((key, value));
                            }
                        },
                    }
                }
                Ok(w)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Valid JSON text with all white space outside strings removed (cdp-calls'
/// `compact_cow`, which a crate-based reader would keep: neither crate compacts
/// while keeping every other byte).
fn compact_cow(text: Cow<'_, str>) -> Cow<'_, str> {
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
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut first = None;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                first = Some(i);
                break;
            }
            b'"' => i = string_end(bytes, i),
            _ => i += 1,
        }
    }
    let Some(first) = first else { return text };
    let mut out = Vec::with_capacity(bytes.len());
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
    Cow::Owned(String::from_utf8(out).expect("only ASCII white space was removed"))
}

fn id_field(value: Option<Scalar<'_>>, field: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
        Some(Scalar::Number(n)) => Ok(Some(n)),
        Some(Scalar::Other(kind)) => Err(format!("{field}: expected a string or number, found {kind}")),
    }
}

fn string_field(value: Option<Scalar<'_>>, field: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
        Some(_) => Err(format!("{field}: expected a string")),
    }
}

fn time_field(value: Option<Scalar<'_>>, field: &str) -> Result<Option<Timestamp>, String> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Timestamp::parse_rfc3339(&s).map(Some).map_err(|e| format!("{field}: {e}")),
        Some(_) => Err(format!("{field}: expected an RFC 3339 timestamp string")),
    }
}

fn object_field<'a, R: RawText<'a>>(value: Option<R>, field: &str) -> Result<Option<JsonObject>, String> {
    let Some(raw) = value else { return Ok(None) };
    let text = raw.text();
    match text.as_bytes().first() {
        Some(b'n') => Ok(None),
        Some(b'{') => Ok(Some(JsonObject::from_compact_unchecked(compact_cow(text).into_owned()))),
        _ => Err(format!("{field}: expected an object")),
    }
}

/// A scalar from a checked raw value: a string without escapes is borrowed; anything
/// else is decoded by serde_json (rare: escapes, numbers).
fn scalar_from_raw<'a, R: RawText<'a>>(raw: Option<R>) -> Option<Scalar<'a>> {
    let text = raw?.text();
    if let Cow::Borrowed(t) = text
        && t.len() >= 2
        && t.starts_with('"')
        && !t[1..t.len() - 1].contains(['"', '\\'])
    {
        return Some(Scalar::Str(Cow::Borrowed(&t[1..t.len() - 1])));
    }
    Some(match serde_json::from_str::<Scalar<'_>>(&text) {
        Ok(Scalar::Str(s)) => Scalar::Str(Cow::Owned(s.into_owned())),
        Ok(Scalar::Null) => Scalar::Null,
        Ok(Scalar::Number(n)) => Scalar::Number(n),
        Ok(Scalar::Other(kind)) => Scalar::Other(kind),
        Err(_) => Scalar::Other("a value that does not decode"),
    })
}

impl<'a, R: RawText<'a>> Wire<'a, R> {
    /// The same checks and the same `Call` as cdp-calls' `Loose::into_call`.
    fn into_call(self) -> Result<Call, String> {
        let [kind, message_id, user_id, anonymous_id, timestamp, original_timestamp, sent_at, received_at] =
            self.scalars;
        let kind = match kind {
            Some(Scalar::Str(s)) => s.parse::<CallType>().map_err(|e| format!("unknown type {}", e.0))?,
            _ => return Err("missing or invalid type".to_owned()),
        };
        let [event, name, group_id, previous_id, traits, properties] = self.typed;
        let mut leftover: Vec<(&str, R)> = Vec::new();
        let mut keep = |field: &'static str, raw: Option<R>| {
            if let Some(raw) = raw {
                leftover.push((field, raw));
            }
        };
        let body = match kind {
            CallType::Identify => {
                keep("event", event);
                keep("name", name);
                keep("groupId", group_id);
                keep("previousId", previous_id);
                keep("properties", properties);
                Body::Identify(Identify { traits: object_field(traits, "traits")? })
            }
            CallType::Track => {
                keep("name", name);
                keep("groupId", group_id);
                keep("previousId", previous_id);
                keep("traits", traits);
                Body::Track(Track {
                    event: string_field(scalar_from_raw(event), "event")?,
                    properties: object_field(properties, "properties")?,
                })
            }
            CallType::Page | CallType::Screen => {
                keep("event", event);
                keep("groupId", group_id);
                keep("previousId", previous_id);
                keep("traits", traits);
                let name = string_field(scalar_from_raw(name), "name")?;
                let properties = object_field(properties, "properties")?;
                if kind == CallType::Page {
                    Body::Page(Page { name, properties })
                } else {
                    Body::Screen(Screen { name, properties })
                }
            }
            CallType::Group => {
                keep("event", event);
                keep("name", name);
                keep("previousId", previous_id);
                keep("properties", properties);
                Body::Group(Group {
                    group_id: id_field(scalar_from_raw(group_id), "groupId")?,
                    traits: object_field(traits, "traits")?,
                })
            }
            CallType::Alias => {
                keep("event", event);
                keep("name", name);
                keep("groupId", group_id);
                keep("traits", traits);
                keep("properties", properties);
                Body::Alias(Alias { previous_id: id_field(scalar_from_raw(previous_id), "previousId")? })
            }
        };
        let mut call = Call::new(body);
        call.message_id = string_field(message_id, "messageId")?;
        call.user_id = id_field(user_id, "userId")?;
        call.anonymous_id = id_field(anonymous_id, "anonymousId")?;
        call.timestamp = time_field(timestamp, "timestamp")?;
        call.original_timestamp = time_field(original_timestamp, "originalTimestamp")?;
        call.sent_at = time_field(sent_at, "sentAt")?;
        call.received_at = time_field(received_at, "receivedAt")?;
        call.context = object_field(self.context, "context")?;
        call.integrations = object_field(self.integrations, "integrations")?;
        // Rare (none in the generated calls): unknown fields, and fields of other types.
        let unknown = self.extra.into_iter().map(|(k, v)| (k, v.text()));
        for (key, text) in unknown.chain(leftover.into_iter().map(|(k, v)| (Cow::Borrowed(k), v.text()))) {
            call.extra.insert_json(key.into_owned(), &text).map_err(|e| e.to_string())?;
        }
        Ok(call)
    }
}

/// serde_json: the line into a `Wire` with a borrowed `RawValue` per nested value.
fn parse_serde_json(line: &str) -> Result<Call, String> {
    serde_json::from_str::<Wire<'_, &serde_json::value::RawValue>>(line)
        .map_err(|e| e.to_string())?
        .into_call()
}

/// sonic-rs: the line into a `Wire` with a checked `LazyValue` per nested value.
fn parse_sonic_rs(line: &str) -> Result<Call, String> {
    sonic_rs::from_str::<Wire<'_, sonic_rs::LazyValue<'_>>>(line).map_err(|e| e.to_string())?.into_call()
}

fn lines(input: &[u8]) -> Vec<&str> {
    std::str::from_utf8(input)
        .expect("the generator writes UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn json(c: &mut Criterion, input: &[u8]) {
    let lines = lines(input);
    for line in &lines {
        let ours = Call::parse_json(line).expect("the generator writes valid calls");
        assert_eq!(parse_serde_json(line).as_ref(), Ok(&ours), "serde_json differs on {line}");
        assert_eq!(parse_sonic_rs(line).as_ref(), Ok(&ours), "sonic-rs differs on {line}");
    }
    // Bad lines are rejected by all three.
    for bad in [r#"{"type":"track","userId":"u1","context":{"a":1,}}"#, r#"{"type":"track""#, "[1]"] {
        assert!(
            Call::parse_json(bad).is_err() && parse_serde_json(bad).is_err() && parse_sonic_rs(bad).is_err()
        );
    }
    let mut group = c.benchmark_group("json/parse_call");
    group.sample_size(20).throughput(Throughput::Elements(lines.len() as u64));
    let lines = &lines[..];
    let run = |f: fn(&str) -> Result<Call, String>| {
        move |b: &mut criterion::Bencher<'_>| {
            b.iter(|| lines.iter().map(|l| f(l).expect("valid").extra.len()).sum::<usize>())
        }
    };
    group.bench_function("ours_scanner", run(|l| Call::parse_json(l).map_err(|e| e.to_string())));
    group.bench_function("serde_json_rawvalue", run(parse_serde_json));
    group.bench_function("sonic_rs_lazyvalue", run(parse_sonic_rs));
    group.finish();
}

// ---------------------------------------------------------------------------------
// Timestamps: chrono and jiff against ours.
// ---------------------------------------------------------------------------------

/// A small deterministic generator (SplitMix64), so the inputs never change.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 4,096 RFC 3339 texts between 1970 and 2099: no fraction, milliseconds,
/// microseconds or nanoseconds; `Z` or an offset up to ±14:00.
fn mixed_timestamp_texts() -> Vec<String> {
    let mut mix = Mix(17);
    (0..4096)
        .map(|_| {
            let micros = mix.below(4_102_444_800_000_000) as i64; // to 2100-01-01
            let utc = chrono::DateTime::from_timestamp_micros(micros).expect("in range");
            let fraction = match mix.below(4) {
                0 => String::new(),
                1 => format!(".{:03}", utc.timestamp_subsec_millis()),
                2 => format!(".{:06}", utc.timestamp_subsec_micros()),
                _ => format!(".{:06}{:03}", utc.timestamp_subsec_micros(), mix.below(1000)),
            };
            let (offset, suffix) = match mix.below(3) {
                0 => (0, "Z".to_owned()),
                _ => {
                    let minutes = mix.below(14 * 60 * 2 + 1) as i32 - 14 * 60;
                    let sign = if minutes < 0 { '-' } else { '+' };
                    (minutes, format!("{sign}{:02}:{:02}", minutes.abs() / 60, minutes.abs() % 60))
                }
            };
            let local = utc.naive_utc() + chrono::Duration::minutes(i64::from(offset));
            format!("{}{fraction}{suffix}", local.format("%Y-%m-%dT%H:%M:%S"))
        })
        .collect()
}

fn parse_hand_written(text: &str) -> Timestamp {
    retired::time::parse_rfc3339(text).expect("valid")
}

fn parse_cdp_calls(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("valid")
}

fn parse_chrono(text: &str) -> Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(text).expect("valid");
    Timestamp::from_micros(t.timestamp_micros()).expect("in range")
}

fn parse_jiff(text: &str) -> Timestamp {
    let t: jiff::Timestamp = text.parse().expect("valid");
    Timestamp::from_micros(t.as_microsecond()).expect("in range")
}

fn push_hand_written(t: Timestamp, out: &mut Vec<u8>) {
    retired::time::push_rfc3339(t, out);
}

fn push_cdp_calls(t: Timestamp, out: &mut Vec<u8>) {
    t.push_rfc3339(out);
}

fn push_chrono(t: Timestamp, out: &mut Vec<u8>) {
    let utc = chrono::DateTime::from_timestamp_micros(t.as_micros()).expect("in range");
    let digits =
        if t.as_micros() % 1000 == 0 { chrono::SecondsFormat::Millis } else { chrono::SecondsFormat::Micros };
    out.extend_from_slice(utc.to_rfc3339_opts(digits, true).as_bytes());
}

fn push_jiff(t: Timestamp, out: &mut Vec<u8>) {
    const MILLIS: jiff::fmt::temporal::DateTimePrinter =
        jiff::fmt::temporal::DateTimePrinter::new().precision(Some(3));
    const MICROS: jiff::fmt::temporal::DateTimePrinter =
        jiff::fmt::temporal::DateTimePrinter::new().precision(Some(6));
    let ts = jiff::Timestamp::from_microsecond(t.as_micros()).expect("in range");
    let printer = if t.as_micros() % 1000 == 0 { &MILLIS } else { &MICROS };
    printer.print_timestamp(&ts, out).expect("writing to memory");
}

/// A timestamp parser: RFC 3339 text in, our `Timestamp` out.
type Parse = fn(&str) -> Timestamp;
/// A timestamp writer: RFC 3339 UTC text appended.
type Push = fn(Timestamp, &mut Vec<u8>);

/// Texts near `texts`: each cut short, and with each byte replaced, removed or
/// preceded by one of a few telling bytes; and every part out of its range.
fn mutated_timestamp_texts(texts: &[String]) -> Vec<String> {
    const BYTES: &[u8] = b"0123456789-:.+TtZz x";
    let mut out = Vec::new();
    for text in texts {
        let b = text.as_bytes();
        for i in 0..=b.len() {
            out.push(text[..i].to_owned());
            if i < b.len() {
                out.push(format!("{}{}", &text[..i], &text[i + 1..]));
            }
            for &c in BYTES {
                let c = char::from(c);
                if i < b.len() {
                    out.push(format!("{}{c}{}", &text[..i], &text[i + 1..]));
                }
                out.push(format!("{}{c}{}", &text[..i], &text[i..]));
            }
            out.push(format!("{}\u{2212}{}", &text[..i], &text[i..]));
        }
    }
    for (at, values) in [
        (5, &["00", "13", "99"][..]),
        (8, &["00", "29", "30", "31", "32"][..]),
        (11, &["23", "24", "99"][..]),
        (14, &["59", "60", "99"][..]),
        (17, &["59", "60", "61", "99"][..]),
    ] {
        for text in texts {
            for value in values {
                out.push(format!("{}{value}{}", &text[..at], &text[at + 2..]));
            }
        }
    }
    for offset in ["+23:59", "-24:00", "+23:60", "-99:99", "+0100", "-00:00"] {
        for text in texts {
            let end =
                text.find(['Z', '+']).or_else(|| text.rfind('-').filter(|&i| i > 10)).expect("an offset");
            out.push(format!("{}{offset}", &text[..end]));
        }
    }
    out
}

fn timestamps(c: &mut Criterion, calls: &[Call]) {
    // The export's timestamps: the four of every call, in the order of its row.
    let export_values: Vec<Timestamp> = calls
        .iter()
        .flat_map(|c| [c.received_at, c.sent_at, c.timestamp, c.original_timestamp])
        .flatten()
        .collect();
    let export_texts: Vec<String> = export_values.iter().map(Timestamp::to_string).collect();
    let mixed_texts = mixed_timestamp_texts();
    let mixed_values: Vec<Timestamp> = mixed_texts.iter().map(|t| parse_hand_written(t)).collect();

    let parsers: [(&str, Parse); 4] = [
        ("hand_written", parse_hand_written),
        ("cdp_calls", parse_cdp_calls),
        ("chrono", parse_chrono),
        ("jiff", parse_jiff),
    ];
    let pushers: [(&str, Push); 4] = [
        ("hand_written", push_hand_written),
        ("cdp_calls", push_cdp_calls),
        ("chrono", push_chrono),
        ("jiff", push_jiff),
    ];
    for texts in [&export_texts, &mixed_texts] {
        for text in texts {
            let ours = parse_hand_written(text);
            for (name, parse) in &parsers[1..] {
                assert_eq!(parse(text), ours, "{name} parses {text} differently");
            }
        }
    }
    // cdp-calls gives what the hand-written parser gave on bad text too, reason and all.
    for text in mutated_timestamp_texts(&mixed_texts[..256]) {
        let want = retired::time::parse_rfc3339(&text);
        assert_eq!(Timestamp::parse_rfc3339(&text), want, "cdp-calls parses {text:?} differently");
    }
    for values in [&export_values, &mixed_values] {
        for &t in values {
            let mut ours = Vec::new();
            push_hand_written(t, &mut ours);
            for (name, push) in &pushers[1..] {
                let mut theirs = Vec::new();
                push(t, &mut theirs);
                assert_eq!(theirs, ours, "{name} writes {t} differently");
            }
        }
    }

    let mut group = c.benchmark_group("timestamp/parse");
    for (input, texts) in [("export", &export_texts), ("mixed", &mixed_texts)] {
        group.throughput(Throughput::Elements(texts.len() as u64));
        for (name, parse) in parsers {
            group.bench_with_input(BenchmarkId::new(name, input), texts, |b, texts| {
                b.iter(|| texts.iter().map(|t| parse(t).as_micros()).fold(0i64, i64::wrapping_add))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("timestamp/format");
    for (input, values) in [("export", &export_values), ("mixed", &mixed_values)] {
        group.throughput(Throughput::Elements(values.len() as u64));
        for (name, push) in pushers {
            let mut out = Vec::with_capacity(values.len() * 27);
            group.bench_with_input(BenchmarkId::new(name, input), values, |b, values| {
                b.iter(|| {
                    out.clear();
                    for &t in values {
                        push(t, &mut out);
                    }
                    out.len()
                })
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------------
// CSV quoting: csv_core and csv against ours.
// ---------------------------------------------------------------------------------

/// The text fields of a row (timestamps left out: they are the timestamp piece's;
/// absent values are empty fields).
type Row = Vec<Box<[u8]>>;

fn csv_rows(calls: &[Call]) -> Vec<Row> {
    calls
        .iter()
        .map(|call| {
            call.row()
                .values()
                .filter_map(|v| match v {
                    Value::Null => Some(Box::default()),
                    Value::Timestamp(_) => None,
                    Value::Text(s) => Some(s.as_bytes().into()),
                    Value::Json(o) => Some(o.as_str().as_bytes().into()),
                })
                .collect()
        })
        .collect()
}

/// The same rows, with every third row's text fields turned into names with commas
/// and quotes (`Cart` becomes `Cart, "Cart"`).
fn csv_rows_quoted(rows: &[Row]) -> Vec<Row> {
    let mut rows = rows.to_vec();
    for row in rows.iter_mut().step_by(3) {
        for field in row.iter_mut().filter(|f| !f.is_empty() && f[0] != b'{') {
            let text = String::from_utf8_lossy(field).into_owned();
            *field = format!("{text}, \"{text}\"").into_bytes().into();
        }
    }
    rows
}

fn rows_ours(rows: &[Row], out: &mut Vec<u8>) {
    for row in rows {
        for (i, field) in row.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            retired::csv::push_field(out, field);
        }
        out.push(b'\n');
    }
}

fn rows_csv_core(rows: &[Row], out: &mut Vec<u8>) {
    let mut writer = csv_core::Writer::new();
    for row in rows {
        let room = row.iter().map(|f| 2 * f.len() + 3).sum::<usize>() + 2;
        let start = out.len();
        out.resize(start + room, 0);
        let mut at = start;
        for (i, field) in row.iter().enumerate() {
            if i > 0 {
                let (_, n) = writer.delimiter(&mut out[at..]);
                at += n;
            }
            let (_, _, n) = writer.field(field, &mut out[at..]);
            at += n;
        }
        let (_, n) = writer.terminator(&mut out[at..]);
        at += n;
        out.truncate(at);
    }
}

fn rows_csv(rows: &[Row], out: &mut Vec<u8>) {
    let mut writer = csv::WriterBuilder::new().has_headers(false).flexible(true).from_writer(&mut *out);
    for row in rows {
        writer.write_record(row.iter()).expect("writing to memory");
    }
    writer.flush().expect("writing to memory");
}

/// The copied `push_field`, with the encoder's timestamps, writes exactly the
/// encoder's rows.
fn check_csv_copy(calls: &[Call]) {
    let mut by_type: BTreeMap<CallType, Vec<&Call>> = BTreeMap::new();
    for call in calls {
        by_type.entry(call.call_type()).or_default().push(call);
    }
    for (call_type, calls) in by_type {
        let mut encoder = FileEncoder::new(FileFormat::Csv, call_type, EncodeOptions::default());
        let mut want = Vec::new();
        for call in calls {
            encoder.write(call).expect("encoding to memory");
            let row = call.row();
            for (i, value) in row.values().enumerate() {
                if i > 0 {
                    want.push(b',');
                }
                match value {
                    Value::Null => {}
                    Value::Timestamp(t) => t.push_rfc3339(&mut want),
                    Value::Text(s) => retired::csv::push_field(&mut want, s.as_bytes()),
                    Value::Json(o) => retired::csv::push_field(&mut want, o.as_str().as_bytes()),
                }
            }
            want.push(b'\n');
        }
        let file = encoder.finish_to_vec().expect("finishing to memory");
        let body = &file[memchr::memchr(b'\n', &file).expect("a header") + 1..];
        assert!(body == want, "the copy of push_field differs from the {call_type} encoder");
    }
}

/// A CSV row writer: rows in, CSV text appended.
type WriteRows = fn(&[Row], &mut Vec<u8>);

fn csv_quoting(c: &mut Criterion, calls: &[Call]) {
    check_csv_copy(calls);
    let export_rows = csv_rows(calls);
    let quoted_rows = csv_rows_quoted(&export_rows);
    let writers: [(&str, WriteRows); 3] =
        [("ours", rows_ours), ("csv_core", rows_csv_core), ("csv", rows_csv)];
    for rows in [&export_rows, &quoted_rows] {
        let mut ours = Vec::new();
        rows_ours(rows, &mut ours);
        for (name, write) in &writers[1..] {
            let mut theirs = Vec::new();
            write(rows, &mut theirs);
            assert!(theirs == ours, "{name} writes the rows differently");
        }
    }
    let mut group = c.benchmark_group("csv/rows");
    for (input, rows) in [("export", &export_rows), ("quoted_names", &quoted_rows)] {
        group.throughput(Throughput::Elements(rows.len() as u64));
        for (name, write) in writers {
            let mut out = Vec::with_capacity(rows.iter().flatten().map(|f| 2 * f.len() + 3).sum());
            group.bench_with_input(BenchmarkId::new(name, input), rows, |b, rows| {
                b.iter(|| {
                    out.clear();
                    write(rows, &mut out);
                    out.len()
                })
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------------
// The export as a whole, in memory, for the shares.
// ---------------------------------------------------------------------------------

/// Reads every call and encodes one file per call type (as `benches/encode.rs`);
/// returns the bytes written.
fn export(input: &[u8], format: FileFormat) -> usize {
    let mut encoders: BTreeMap<CallType, FileEncoder> = BTreeMap::new();
    for call in CallReader::with_received_at(input, Timestamp::UNIX_EPOCH) {
        let call = call.expect("the generator writes valid calls");
        encoders
            .entry(call.call_type())
            .or_insert_with(|| FileEncoder::new(format, call.call_type(), EncodeOptions::default()))
            .write(&call)
            .expect("encoding to memory");
    }
    encoders.into_values().map(|e| e.finish_to_vec().expect("finishing to memory").len()).sum()
}

fn whole_export(c: &mut Criterion, input: &[u8], calls: u64) {
    let mut group = c.benchmark_group("export/calls");
    group.sample_size(10).throughput(Throughput::Elements(calls));
    for format in FileFormat::ALL {
        group.bench_with_input(BenchmarkId::from_parameter(format), &input, |b, input| {
            b.iter(|| export(input, format))
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let (input, count) = common::generated_calls(20_000);
    let calls: Vec<Call> = CallReader::with_received_at(&input[..], Timestamp::UNIX_EPOCH)
        .map(|c| c.expect("the generator writes valid calls"))
        .collect();
    json(c, &input);
    timestamps(c, &calls);
    csv_quoting(c, &calls);
    whole_export(c, &input, count);
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Round trips of every call type through every file format (SPEC sections 1-3 and 6).
//!
//! Files are read back with readers independent of the encoders: `serde_json` per
//! line for JSON, the `csv` crate (and Python's csv module) for CSV, and the parquet
//! crate's Arrow reader for Parquet. Expected rows are built here from the calls'
//! fields and the column lists of SPEC section 2; timestamps are formatted by an
//! independent formatter in this file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::process::Command;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use cdp_warehouse::calls::{Body, Call, CallType, ColumnKind, JsonObject, Timestamp, Value, event_slug};
use cdp_warehouse::encode::{
    Compression, CsvEncoder, Encode, EncodeError, EncodeOptions, FileEncoder, FileFormat, JsonEncoder,
    ParquetEncoder,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{LogicalType, TimeUnit as ParquetTimeUnit, Type as PhysicalType};
use parquet::file::metadata::{ParquetMetaData, SortingColumn};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Value as J, json};

// ---------------------------------------------------------------------------
// The expected model: SPEC section 2, written out independently of the crates.

/// How a column is typed in files (SPEC section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Time,
    Text,
    Json,
}

/// The columns of every call type's table, as SPEC section 2 lists them.
fn spec_columns(call_type: CallType) -> Vec<(&'static str, Kind)> {
    let mut columns = vec![
        ("received_at", Kind::Time),
        ("id", Kind::Text),
        ("user_id", Kind::Text),
        ("anonymous_id", Kind::Text),
        ("sent_at", Kind::Time),
        ("timestamp", Kind::Time),
        ("original_timestamp", Kind::Time),
    ];
    let own: &[(&str, Kind)] = match call_type {
        CallType::Identify => &[("traits", Kind::Json), ("context", Kind::Json)],
        CallType::Track => &[
            ("event", Kind::Text),
            ("event_text", Kind::Text),
            ("properties", Kind::Json),
            ("context", Kind::Json),
        ],
        CallType::Page | CallType::Screen => {
            &[("name", Kind::Text), ("properties", Kind::Json), ("context", Kind::Json)]
        }
        CallType::Group => &[
            ("group_id", Kind::Text),
            ("object_type_id", Kind::Text),
            ("traits", Kind::Json),
            ("context", Kind::Json),
        ],
        CallType::Alias => &[("previous_id", Kind::Text), ("context", Kind::Json)],
    };
    columns.extend_from_slice(own);
    columns
}

fn spec_names(call_type: CallType) -> Vec<&'static str> {
    spec_columns(call_type).into_iter().map(|(name, _)| name).collect()
}

fn spec_kinds(call_type: CallType) -> Vec<Kind> {
    spec_columns(call_type).into_iter().map(|(_, kind)| kind).collect()
}

/// One cell of a row, as expected or as read back from a file.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    /// Microseconds since the Unix epoch.
    Time(i64),
    Text(String),
    /// A JSON object: its value, and its text as found in the file.
    Json {
        value: J,
        text: String,
    },
}

fn time_cell(t: Option<Timestamp>) -> Cell {
    t.map_or(Cell::Null, |t| Cell::Time(t.as_micros()))
}

fn text_cell(s: Option<&str>) -> Cell {
    s.map_or(Cell::Null, |s| Cell::Text(s.to_owned()))
}

fn object_cell(o: Option<&JsonObject>) -> Cell {
    o.map_or(Cell::Null, |o| Cell::Json {
        value: o.to_value().unwrap_or_else(|e| panic!("test object {o} must parse: {e}")),
        text: o.as_str().to_owned(),
    })
}

/// `object_type_id` of a group call (SPEC section 1): `traits.objectTypeId` as text,
/// `"1"` when absent or null.
fn expected_object_type_id(traits: Option<&JsonObject>) -> String {
    let Some(traits) = traits else { return "1".to_owned() };
    match traits.to_value().expect("test traits parse").get("objectTypeId") {
        None | Some(J::Null) => "1".to_owned(),
        Some(J::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The warehouse row a call should become, built from its fields alone.
fn expected_row(call: &Call) -> Vec<Cell> {
    let mut row = vec![
        time_cell(call.received_at),
        text_cell(call.message_id.as_deref()),
        text_cell(call.user_id.as_deref()),
        text_cell(call.anonymous_id.as_deref()),
        time_cell(call.sent_at),
        time_cell(call.timestamp),
        time_cell(call.original_timestamp),
    ];
    let context = object_cell(call.context.as_ref());
    match &call.body {
        Body::Identify(b) => row.extend([object_cell(b.traits.as_ref()), context]),
        Body::Track(b) => row.extend([
            text_cell(b.event.as_deref().map(event_slug).as_deref()),
            text_cell(b.event.as_deref()),
            object_cell(b.properties.as_ref()),
            context,
        ]),
        Body::Page(b) => {
            row.extend([text_cell(b.name.as_deref()), object_cell(b.properties.as_ref()), context])
        }
        Body::Screen(b) => {
            row.extend([text_cell(b.name.as_deref()), object_cell(b.properties.as_ref()), context])
        }
        Body::Group(b) => row.extend([
            text_cell(b.group_id.as_deref()),
            Cell::Text(expected_object_type_id(b.traits.as_ref())),
            object_cell(b.traits.as_ref()),
            context,
        ]),
        Body::Alias(b) => row.extend([text_cell(b.previous_id.as_deref()), context]),
    }
    row
}

/// The calls in file order: a stable sort by `receivedAt`, absent first.
fn file_order(calls: &[Call]) -> Vec<&Call> {
    let mut sorted: Vec<&Call> = calls.iter().collect();
    sorted.sort_by_key(|c| c.received_at); // `None < Some(_)`; `sort_by_key` is stable.
    sorted
}

fn expected_rows(calls: &[Call]) -> Vec<Vec<Cell>> {
    file_order(calls).into_iter().map(expected_row).collect()
}

/// CSV cannot tell an empty string from an absent value: both are empty fields.
fn csv_view(rows: &[Vec<Cell>]) -> Vec<Vec<Cell>> {
    let blank = |cell: &Cell| match cell {
        Cell::Text(s) if s.is_empty() => Cell::Null,
        other => other.clone(),
    };
    rows.iter().map(|row| row.iter().map(blank).collect()).collect()
}

// ---------------------------------------------------------------------------
// An independent RFC 3339 formatter (day counting by loops, not by formula).

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_year(year: i64) -> i64 {
    if is_leap(year) { 366 } else { 365 }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    const DAYS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if month == 2 && is_leap(year) { 29 } else { DAYS[(month - 1) as usize] }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, or `.uuuuuuZ` when there is a sub-millisecond part.
fn rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let sub = micros.rem_euclid(1_000_000);
    let mut days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let mut year = 1970;
    while days < 0 {
        year -= 1;
        days += days_in_year(year);
    }
    while days >= days_in_year(year) {
        days -= days_in_year(year);
        year += 1;
    }
    let mut month = 1;
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        month += 1;
    }
    let fraction = if sub % 1000 == 0 { format!("{:03}", sub / 1000) } else { format!("{sub:06}") };
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}.{fraction}Z",
        days + 1,
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

#[test]
fn independent_formatter_agrees_with_known_instants() {
    // Written from the calendar, not from running the encoders.
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339(-62_167_219_200_000_000), "0000-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(253_402_300_799_999_999), "9999-12-31T23:59:59.999999Z");
    assert_eq!(rfc3339(1_795_341_600_500_000), "2026-11-22T10:00:00.500Z");
}

/// A timestamp as text in a JSON or CSV file: it must be the canonical RFC 3339 UTC
/// form of the instant it denotes.
fn time_from_text(text: &str, at: &str) -> Cell {
    let t: Timestamp =
        text.parse().unwrap_or_else(|e| panic!("{at}: timestamp {text:?} does not parse: {e}"));
    assert_eq!(
        text,
        rfc3339(t.as_micros()),
        "{at}: timestamps are RFC 3339 UTC with a Z suffix and millisecond (or microsecond) precision"
    );
    Cell::Time(t.as_micros())
}

fn json_cell_from_text(text: &str, at: &str) -> Cell {
    let value: J = serde_json::from_str(text).unwrap_or_else(|e| panic!("{at}: {text:?} is not JSON: {e}"));
    assert!(value.is_object(), "{at}: {text:?} is not a JSON object");
    Cell::Json { value, text: text.to_owned() }
}

// ---------------------------------------------------------------------------
// Encoding and the independent readers.

fn encode_with(format: FileFormat, call_type: CallType, options: EncodeOptions, calls: &[Call]) -> Vec<u8> {
    let mut encoder = FileEncoder::new(format, call_type, options);
    for call in calls {
        encoder.write(call).unwrap_or_else(|e| panic!("{format} {call_type}: write failed: {e}"));
    }
    assert_eq!(encoder.rows(), calls.len() as u64);
    encoder.finish_to_vec().unwrap_or_else(|e| panic!("{format} {call_type}: finish failed: {e}"))
}

fn encode(format: FileFormat, call_type: CallType, calls: &[Call]) -> Vec<u8> {
    encode_with(format, call_type, EncodeOptions::default(), calls)
}

/// The keys of the top-level object of a JSON text, in order.
fn top_level_keys(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                let rest = text[i..].trim_start();
                if depth == 1 && rest.starts_with(':') {
                    keys.push(serde_json::from_str(&text[start..i]).expect("a JSON string key"));
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    keys
}

fn read_json(call_type: CallType, bytes: &[u8]) -> Vec<Vec<Cell>> {
    let text = std::str::from_utf8(bytes).expect("the JSON file is UTF-8");
    if text.is_empty() {
        return Vec::new();
    }
    assert!(text.ends_with('\n'), "every NDJSON line ends with \\n");
    let columns = spec_columns(call_type);
    let names = spec_names(call_type);
    text.split_terminator('\n')
        .enumerate()
        .map(|(n, line)| {
            let at = format!("json {call_type} line {}", n + 1);
            assert!(!line.ends_with('\r'), "{at}: lines end with \\n only");
            assert_eq!(top_level_keys(line), names, "{at}: keys and their order are the columns");
            let values: serde_json::Map<String, J> =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: {e}: {line}"));
            let raw: HashMap<String, Box<RawValue>> =
                serde_json::from_str(line).expect("parsed once already");
            columns
                .iter()
                .map(|(name, kind)| {
                    let at = format!("{at} column {name}");
                    match (kind, &values[*name]) {
                        (_, J::Null) => Cell::Null,
                        (Kind::Time, J::String(s)) => time_from_text(s, &at),
                        (Kind::Text, J::String(s)) => Cell::Text(s.clone()),
                        (Kind::Json, value @ J::Object(_)) => {
                            Cell::Json { value: value.clone(), text: raw[*name].get().to_owned() }
                        }
                        (kind, other) => panic!("{at}: a {kind:?} column holds {other}"),
                    }
                })
                .collect()
        })
        .collect()
}

fn read_csv(call_type: CallType, bytes: &[u8]) -> Vec<Vec<Cell>> {
    let names = spec_names(call_type);
    let header = format!("{}\n", names.join(","));
    assert!(bytes.starts_with(header.as_bytes()), "csv {call_type}: header row, ending in \\n");
    assert!(bytes.ends_with(b"\n"), "csv {call_type}: the last record ends with \\n");
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let headers: Vec<String> = reader.headers().expect("a header row").iter().map(str::to_owned).collect();
    assert_eq!(headers, names, "csv {call_type}: header");
    let kinds = spec_kinds(call_type);
    reader
        .records()
        .enumerate()
        .map(|(n, record)| {
            let record = record.unwrap_or_else(|e| panic!("csv {call_type} record {}: {e}", n + 1));
            assert_eq!(record.len(), kinds.len(), "csv {call_type} record {}: every column", n + 1);
            record
                .iter()
                .zip(&names)
                .zip(&kinds)
                .map(|((field, name), kind)| {
                    let at = format!("csv {call_type} record {} column {name}", n + 1);
                    match kind {
                        _ if field.is_empty() => Cell::Null,
                        Kind::Time => time_from_text(field, &at),
                        Kind::Text => Cell::Text(field.to_owned()),
                        Kind::Json => json_cell_from_text(field, &at),
                    }
                })
                .collect()
        })
        .collect()
}

fn temp_file_with(bytes: &[u8]) -> File {
    let mut file = tempfile::tempfile().expect("a temporary file");
    file.write_all(bytes).expect("write the temporary file");
    file.seek(SeekFrom::Start(0)).expect("rewind");
    file
}

fn parquet_metadata(bytes: &[u8]) -> Arc<ParquetMetaData> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(temp_file_with(bytes)).expect("a Parquet file");
    builder.metadata().clone()
}

fn string_at(column: &ArrayRef, row: usize) -> String {
    match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(row).to_owned(),
        DataType::LargeUtf8 => column.as_string::<i64>().value(row).to_owned(),
        DataType::Utf8View => column.as_string_view().value(row).to_owned(),
        other => panic!("a text column read back as {other}"),
    }
}

fn read_parquet(call_type: CallType, bytes: &[u8]) -> Vec<Vec<Cell>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(temp_file_with(bytes)).expect("a Parquet file");
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, spec_names(call_type), "parquet {call_type}: columns");
    let kinds = spec_kinds(call_type);
    let mut rows = Vec::new();
    for batch in builder.build().expect("a reader") {
        let batch = batch.expect("a record batch");
        let mut batch_rows = vec![Vec::with_capacity(kinds.len()); batch.num_rows()];
        for ((column, kind), name) in batch.columns().iter().zip(&kinds).zip(&names) {
            if *kind == Kind::Time {
                match column.data_type() {
                    DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if &**tz == "UTC" => {}
                    other => panic!("parquet {call_type} column {name}: read back as {other}"),
                }
            }
            for (r, row) in batch_rows.iter_mut().enumerate() {
                let at = format!("parquet {call_type} column {name}");
                row.push(match kind {
                    _ if column.is_null(r) => Cell::Null,
                    Kind::Time => Cell::Time(column.as_primitive::<TimestampMicrosecondType>().value(r)),
                    Kind::Text => Cell::Text(string_at(column, r)),
                    Kind::Json => json_cell_from_text(&string_at(column, r), &at),
                });
            }
        }
        rows.extend(batch_rows);
    }
    rows
}

fn read(format: FileFormat, call_type: CallType, bytes: &[u8]) -> Vec<Vec<Cell>> {
    match format {
        FileFormat::Json => read_json(call_type, bytes),
        FileFormat::Csv => read_csv(call_type, bytes),
        FileFormat::Parquet => read_parquet(call_type, bytes),
    }
}

fn assert_rows_eq(got: &[Vec<Cell>], want: &[Vec<Cell>], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "{what}: row {i} differs");
    }
    assert_eq!(got.len(), want.len(), "{what}: row count");
}

/// The expected rows of `calls` for a format.
fn expected_for(format: FileFormat, calls: &[Call]) -> Vec<Vec<Cell>> {
    let rows = expected_rows(calls);
    if format == FileFormat::Csv { csv_view(&rows) } else { rows }
}

/// Cells of the crate's own row view, for a consistency check with `expected_row`.
fn row_view_cells(call: &Call) -> Vec<Cell> {
    call.row()
        .values()
        .map(|v| match v {
            Value::Null => Cell::Null,
            Value::Timestamp(t) => Cell::Time(t.as_micros()),
            Value::Text(s) => Cell::Text(s.into_owned()),
            Value::Json(o) => object_cell(Some(o)),
        })
        .collect()
}

/// Column names and kinds of the API equal SPEC section 2.
fn assert_columns_match_spec(call_type: CallType) {
    let api: Vec<(&str, Kind)> = call_type
        .columns()
        .iter()
        .map(|c| {
            let kind = match c.kind {
                ColumnKind::Timestamp => Kind::Time,
                ColumnKind::Text => Kind::Text,
                ColumnKind::Json => Kind::Json,
            };
            (c.name, kind)
        })
        .collect();
    assert_eq!(api, spec_columns(call_type), "{call_type}: CallType::columns()");
}

/// Encodes `calls` (all of `call_type`) in every format with `options` and checks
/// that every file reads back as the expected rows.
fn assert_round_trip_with(call_type: CallType, calls: &[Call], options: &EncodeOptions) {
    assert_columns_match_spec(call_type);
    for call in calls {
        assert_eq!(row_view_cells(call), expected_row(call), "row view of {call:?}");
    }
    for format in FileFormat::ALL {
        let bytes = encode_with(format, call_type, options.clone(), calls);
        let got = read(format, call_type, &bytes);
        assert_rows_eq(&got, &expected_for(format, calls), &format!("{format} {call_type}"));
    }
}

fn assert_round_trip(call_type: CallType, calls: &[Call]) {
    assert_round_trip_with(call_type, calls, &EncodeOptions::default());
}

// ---------------------------------------------------------------------------
// Fixtures.

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Strings that trouble text formats.
const TRICKY: &[&str] = &[
    "plain",
    "",
    "comma, separated",
    "say \"hi\"",
    "\"",
    "\"\"",
    ",",
    "line\nbreak",
    "carriage\rreturn",
    "crlf\r\nend\r\n",
    "\n",
    "tab\there",
    "controls \u{0}\u{1}\u{1b}\u{1f}\u{7f}",
    "unicode: Grüße, 日本語, emoji 😀👍🏽, RTL \u{202e}abc",
    "\u{feff}bom first",
    " leading and trailing spaces ",
    "=formula,\"x\"",
    "back\\slash \\\" \\n",
    "{\"looks\":\"like json\"}",
    "null",
    "\u{2028}\u{2029}",
];

/// Awkward nested JSON: arrays, deep nesting, nulls, empty containers, big and
/// negative numbers, tricky strings and keys.
fn nested(tag: &str) -> J {
    let deep =
        (0..12).fold(json!({"bottom": [null, {}, []]}), |acc, level| json!({"level": level, "down": acc}));
    json!({
        "tag": tag,
        "plan": "pro",
        "seats": 3,
        "u64_max": u64::MAX,
        "i64_min": i64::MIN,
        "negative": -42,
        "huge": 1e308,
        "negative_huge": -1e308,
        "tiny": 5e-324,
        "pi": std::f64::consts::PI,
        "null": null,
        "empty_object": {},
        "empty_array": [],
        "array": [1, "two", null, {"three": [3, [3.5, {}]]}, [], true, false, -0.5],
        "quote\"key,\r\n": "va,l\"ue\r\n",
        "unicode 😀": "Grüße 日本語 😀 \u{0}\u{1f}",
        "": "empty key",
        "deep": deep,
    })
}

/// Sets the fields particular to a call type: `text` goes into the type's own text
/// field (event, name, groupId, previousId), `payload` into traits or properties.
fn set_type_fields(call: &mut J, call_type: CallType, text: Option<J>, payload: Option<J>) {
    let object = call.as_object_mut().expect("a call object");
    object.insert("type".into(), J::from(call_type.as_str()));
    let (text_field, payload_field) = match call_type {
        CallType::Identify => (None, Some("traits")),
        CallType::Track => (Some("event"), Some("properties")),
        CallType::Page | CallType::Screen => (Some("name"), Some("properties")),
        CallType::Group => (Some("groupId"), Some("traits")),
        CallType::Alias => (Some("previousId"), None),
    };
    if let (Some(field), Some(text)) = (text_field, text) {
        object.insert(field.into(), text);
    }
    if let (Some(field), Some(payload)) = (payload_field, payload) {
        object.insert(field.into(), payload);
    }
}

/// The SPEC's event slug vectors (section 2).
const SLUG_VECTORS: [(&str, &str); 12] = [
    ("Order Completed", "order_completed"),
    ("sample___text", "sample_text"),
    ("sampleText", "sample_text"),
    ("samPLE text", "sam_ple_text"),
    ("CStringRef", "cstring_ref"),
    ("5TEst", "5test"),
    ("2FA Enabled", "2fa_enabled"),
    ("FOO:BAR$BAZ", "foo_bar_baz"),
    ("___$$Base64Encode", "base64_encode"),
    ("user.signed-up", "user_signed_up"),
    ("Product Viewed (v2)", "product_viewed_v2"),
    ("Über Event", "ber_event"),
];

fn parse(line: &str) -> Call {
    Call::parse_json(line).unwrap_or_else(|e| panic!("fixture does not parse: {e}: {line}"))
}

/// A varied set of calls of one type, parsed from JSON input, in an order that is
/// not sorted by `receivedAt` and with ties and absent `receivedAt`.
fn fixtures(call_type: CallType) -> Vec<Call> {
    let mut inputs: Vec<J> = Vec::new();

    // Every optional field present, timestamps in other offsets and with micros.
    let mut full = json!({
        "messageId": "msg-full",
        "userId": "user-1",
        "anonymousId": "anon-1",
        "timestamp": "2026-11-22T11:00:00.123+01:00",
        "originalTimestamp": "2026-11-22T09:59:58.000456Z",
        "sentAt": "2026-11-22T10:00:00.5-00:30",
        "receivedAt": "2026-11-22T10:00:01.999999Z",
        "context": {"ip": "203.0.113.7", "library": {"name": "analytics.js", "version": "2.11.1"},
                    "device": {"token": "tok,\"en\"\n"}, "locale": "de-DE", "traits": {"email": "a@b.c"}},
        "integrations": {"All": true, "Mixpanel": false},
        "someUnknownField": [1, {"x": null}],
    });
    set_type_fields(&mut full, call_type, Some(J::from("Order Completed")), Some(nested("full")));
    inputs.push(full);

    // The bare minimum (no messageId, no timestamps, anonymousId only where allowed).
    let mut minimal = if call_type == CallType::Alias {
        json!({"userId": "u-min"})
    } else {
        json!({"anonymousId": "a-min"})
    };
    set_type_fields(&mut minimal, call_type, Some(J::from("Minimal")), None);
    inputs.push(minimal);

    // Tricky strings in every text field, in keys and in values.
    for (i, s) in TRICKY.iter().enumerate() {
        let mut call = json!({
            "messageId": format!("m{i}:{s}"),
            "userId": s,
            "anonymousId": format!("{s}{s}"),
            "context": {"ip": s, (*s): [s, {(*s): s}]},
        });
        set_type_fields(&mut call, call_type, Some(J::from(*s)), Some(json!({"s": s, (*s): s, "n": i})));
        inputs.push(call);
    }

    // Numeric ids given in JSON input.
    let mut numeric = json!({"messageId": "numeric", "userId": u64::MAX, "anonymousId": -7});
    set_type_fields(
        &mut numeric,
        call_type,
        Some(json!(12_345_678_901_234_567_890u64)),
        Some(json!({"n": 1})),
    );
    if call_type == CallType::Track || call_type == CallType::Page || call_type == CallType::Screen {
        // event and name are strings only.
        set_type_fields(&mut numeric, call_type, Some(J::from("Numeric Ids")), None);
    }
    inputs.push(numeric);
    let mut small = json!({"messageId": "numeric-small", "userId": 0, "anonymousId": 1.5});
    set_type_fields(&mut small, call_type, Some(J::from("Small")), None);
    if call_type == CallType::Alias {
        small["previousId"] = json!(-12);
    }
    inputs.push(small);

    // Empty objects everywhere, and explicit nulls (which mean absent).
    let mut empty = json!({"messageId": "empty", "userId": "u-empty", "context": {}, "integrations": {}});
    set_type_fields(&mut empty, call_type, Some(J::from("Empty")), Some(json!({})));
    inputs.push(empty);
    let mut nulls = json!({"messageId": null, "userId": "u-null", "anonymousId": null, "context": null,
                           "timestamp": null, "sentAt": null});
    set_type_fields(&mut nulls, call_type, Some(J::from("Nulls")), Some(J::Null));
    inputs.push(nulls);

    // Timestamps at the edges of the range, before 1970, on a leap day, with micros.
    for (i, (received, sent)) in [
        ("0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T23:59:59.999999Z", "0000-01-01T00:00:00.000001Z"),
        ("1969-12-31T23:59:59.999999Z", "1900-01-01T00:00:00+14:00"),
        ("2024-02-29T12:00:00.000001Z", "2024-02-29T23:59:59.999-23:59"),
        ("2016-12-31T23:59:60Z", "1970-01-01T00:00:00.001Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut call = json!({"messageId": format!("edge-{i}"), "userId": "u-edge", "receivedAt": received,
                              "sentAt": sent, "originalTimestamp": sent, "timestamp": received});
        set_type_fields(&mut call, call_type, Some(J::from("Edge")), Some(json!({"i": i})));
        inputs.push(call);
    }

    // Type-specific cases.
    match call_type {
        CallType::Track => {
            for (name, _) in SLUG_VECTORS {
                let mut call = json!({"messageId": format!("slug {name}"), "userId": "u-slug"});
                set_type_fields(&mut call, call_type, Some(J::from(name)), None);
                inputs.push(call);
            }
        }
        CallType::Group => {
            for (i, object_type_id) in
                [json!(2), json!("3"), J::Null, json!("a,\"b\"\n"), json!(-4), json!(u64::MAX)]
                    .into_iter()
                    .enumerate()
            {
                let mut call = json!({"messageId": format!("otid-{i}"), "userId": "u-group"});
                let traits = json!({"name": "Acme", "objectTypeId": object_type_id,
                                    "relationshipAttributes": {"role": "admin"}});
                set_type_fields(&mut call, call_type, Some(J::from(format!("g{i}"))), Some(traits));
                inputs.push(call);
            }
            let mut no_type_id = json!({"messageId": "otid-absent", "userId": "u-group"});
            set_type_fields(
                &mut no_type_id,
                call_type,
                Some(J::from("g-absent")),
                Some(json!({"name": "Acme"})),
            );
            inputs.push(no_type_id);
        }
        _ => {}
    }

    // Spread receivedAt: out of order, with ties, some absent.
    let base = ts("2026-11-22T10:00:00Z");
    for (i, input) in inputs.iter_mut().enumerate() {
        let object = input.as_object_mut().expect("an object");
        if !object.contains_key("receivedAt") && i % 6 != 4 {
            let micros = ((i as i64 * 37) % 11) * 1_000_000 + if i % 3 == 0 { 123 } else { 0 };
            let at = base.checked_add_micros(micros).expect("in range");
            object.insert("receivedAt".into(), J::from(at.to_string()));
        }
    }

    let mut calls: Vec<Call> = inputs.iter().map(|input| parse(&input.to_string())).collect();

    // Raw text, as a client sends it: white space, number spellings, escapes and a
    // duplicate key, all of which the nested objects keep.
    let own = match call_type {
        CallType::Identify | CallType::Group => r#""traits": { "b" : 1.50 , "a":1E+2, "objectTypeId" : 7 }"#,
        CallType::Alias => r#""previousId": "p-raw""#,
        _ => {
            r#""properties" : { "b": 1.50, "a" : 1E+2, "z": -0, "dup": 1, "dup": 2, "esc": "\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t\u0000" }"#
        }
    };
    let text_field = match call_type {
        CallType::Track => r#""event": "Raw Event","#,
        CallType::Page | CallType::Screen => r#""name": "Raw Page","#,
        CallType::Group => r#""groupId": 99,"#,
        _ => "",
    };
    let raw = format!(
        "{{ \"type\" : \"{call_type}\", \"messageId\":\"raw\", \"userId\" : 42, {text_field}
            \"receivedAt\": \"2026-11-22T10:00:03+00:00\",
            \"context\": {{ \"z\" : [ 1 , 2.0e1 , {{ }} ] , \"a\" : \"\\u263a\" }}, {own} }}"
    );
    calls.insert(3, parse(&raw));

    // The parse turned numeric ids into their decimal text (SPEC section 1).
    let numeric = calls.iter().find(|c| c.message_id.as_deref() == Some("numeric")).expect("numeric call");
    assert_eq!(numeric.user_id.as_deref(), Some("18446744073709551615"));
    assert_eq!(numeric.anonymous_id.as_deref(), Some("-7"));
    let small = calls.iter().find(|c| c.message_id.as_deref() == Some("numeric-small")).expect("small call");
    assert_eq!(small.user_id.as_deref(), Some("0"));
    assert_eq!(small.anonymous_id.as_deref(), Some("1.5"));
    match call_type {
        CallType::Group => assert_eq!(numeric.group_id(), Some("12345678901234567890")),
        CallType::Alias => {
            assert_eq!(numeric.previous_id(), Some("12345678901234567890"));
            assert_eq!(small.previous_id(), Some("-12"));
        }
        _ => {}
    }
    assert!(calls.iter().all(|c| c.call_type() == call_type));
    calls
}

// ---------------------------------------------------------------------------
// 1. Round trips for every format and every call type.

#[test]
fn every_format_round_trips_every_call_type() {
    for call_type in CallType::ALL {
        let calls = fixtures(call_type);
        assert!(calls.iter().any(|c| c.received_at.is_none()), "some calls lack receivedAt");
        assert_round_trip(call_type, &calls);

        // Given already in order (the Parquet encoder streams these).
        let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
        assert_round_trip(call_type, &in_order);
    }
}

#[test]
fn track_event_column_is_the_spec_slug() {
    let calls = fixtures(CallType::Track);
    for format in FileFormat::ALL {
        let rows = read(format, CallType::Track, &encode(format, CallType::Track, &calls));
        for (name, slug) in SLUG_VECTORS {
            let row = rows
                .iter()
                .find(|r| r[1] == Cell::Text(format!("slug {name}")))
                .unwrap_or_else(|| panic!("{format}: row of {name:?}"));
            assert_eq!(row[7], Cell::Text(slug.to_owned()), "{format}: event of {name:?}");
            assert_eq!(row[8], Cell::Text(name.to_owned()), "{format}: event_text of {name:?}");
        }
    }
}

#[test]
fn group_object_type_id_defaults_to_1() {
    let calls = fixtures(CallType::Group);
    let want =
        [("otid-0", "2"), ("otid-1", "3"), ("otid-2", "1"), ("otid-3", "a,\"b\"\n"), ("otid-absent", "1")];
    for format in FileFormat::ALL {
        let rows = read(format, CallType::Group, &encode(format, CallType::Group, &calls));
        for (id, object_type_id) in want {
            let row = rows.iter().find(|r| r[1] == Cell::Text(id.into())).expect("the row");
            assert_eq!(row[8], Cell::Text(object_type_id.into()), "{format}: object_type_id of {id}");
        }
        let without_traits = rows.iter().find(|r| r[1] == Cell::Text("empty".into()).clone());
        assert!(without_traits.is_some());
        let minimal = rows.iter().find(|r| r[8] == Cell::Text("1".into()) && r[10] == Cell::Null);
        assert!(minimal.is_some(), "{format}: a group call without traits has object_type_id 1");
    }
}

#[test]
fn empty_files_have_only_a_header_or_nothing() {
    for call_type in CallType::ALL {
        for format in FileFormat::ALL {
            let bytes = encode(format, call_type, &[]);
            assert!(read(format, call_type, &bytes).is_empty(), "{format} {call_type}");
            if format == FileFormat::Parquet {
                let meta = parquet_metadata(&bytes);
                assert_eq!(meta.file_metadata().num_rows(), 0);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Parquet metadata.

fn assert_parquet_schema(call_type: CallType, meta: &ParquetMetaData) {
    let schema = meta.file_metadata().schema_descr();
    let columns = spec_columns(call_type);
    assert_eq!(schema.num_columns(), columns.len(), "{call_type}: number of Parquet columns");
    for (descr, (name, kind)) in schema.columns().iter().zip(&columns) {
        assert_eq!(descr.name(), *name, "{call_type}: column name");
        assert_eq!(descr.max_rep_level(), 0, "{call_type} {name}: flat");
        let (physical, logical) = match kind {
            Kind::Time => (PhysicalType::INT64, LogicalType::timestamp(true, ParquetTimeUnit::MICROS)),
            Kind::Text => (PhysicalType::BYTE_ARRAY, LogicalType::String),
            Kind::Json => (PhysicalType::BYTE_ARRAY, LogicalType::Json),
        };
        assert_eq!(descr.physical_type(), physical, "{call_type} {name}: physical type");
        assert_eq!(descr.logical_type_ref(), Some(&logical), "{call_type} {name}: logical type");
    }
}

fn assert_sorting_metadata(meta: &ParquetMetaData, what: &str) {
    let sort_key = SortingColumn { column_idx: 0, descending: false, nulls_first: true };
    assert!(meta.num_row_groups() > 0, "{what}: has row groups");
    for (i, group) in meta.row_groups().iter().enumerate() {
        assert_eq!(
            group.sorting_columns(),
            Some(&vec![sort_key.clone()]),
            "{what}: row group {i} sorting columns"
        );
    }
}

#[test]
fn parquet_schema_has_the_spec_logical_types() {
    for call_type in CallType::ALL {
        let bytes = encode(FileFormat::Parquet, call_type, &fixtures(call_type));
        let meta = parquet_metadata(&bytes);
        assert_parquet_schema(call_type, &meta);
        assert_sorting_metadata(&meta, &format!("{call_type}"));
        // The schema is the same for a file without rows.
        assert_parquet_schema(call_type, &parquet_metadata(&encode(FileFormat::Parquet, call_type, &[])));
    }
}

/// Whether a column chunk's codec is the expected one.
type CodecCheck = fn(&parquet::basic::Compression) -> bool;

#[test]
fn parquet_compression_is_snappy_by_default_and_selectable() {
    let calls = fixtures(CallType::Track);
    let cases: [(EncodeOptions, CodecCheck, &str); 4] = [
        (EncodeOptions::default(), |c| matches!(c, parquet::basic::Compression::SNAPPY), "SNAPPY"),
        (
            EncodeOptions::default().with_compression(Compression::Snappy),
            |c| matches!(c, parquet::basic::Compression::SNAPPY),
            "SNAPPY",
        ),
        (
            EncodeOptions::default().with_compression(Compression::Zstd(3)),
            |c| matches!(c, parquet::basic::Compression::ZSTD(_)),
            "ZSTD",
        ),
        (
            EncodeOptions::default().with_compression(Compression::None),
            |c| matches!(c, parquet::basic::Compression::UNCOMPRESSED),
            "UNCOMPRESSED",
        ),
    ];
    for (options, is_expected, name) in cases {
        // Both the streaming (in order) and the sorting (out of order) paths.
        let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
        for input in [&calls, &in_order] {
            let bytes = encode_with(FileFormat::Parquet, CallType::Track, options.clone(), input);
            let meta = parquet_metadata(&bytes);
            for group in meta.row_groups() {
                for column in group.columns() {
                    assert!(
                        is_expected(&column.compression()),
                        "{options:?}: column {} is {:?}, expected {name}",
                        column.column_path(),
                        column.compression()
                    );
                }
            }
            assert_rows_eq(
                &read_parquet(CallType::Track, &bytes),
                &expected_rows(&calls),
                &format!("parquet {name}"),
            );
        }
    }
}

/// `n` identify calls with distinct, shuffled `receivedAt` (plus a few without).
fn many_calls(n: usize) -> Vec<Call> {
    let base = ts("2026-11-22T10:00:00Z");
    let mut calls: Vec<Call> = (0..n)
        .map(|i| {
            let call = Call::identify(format!("user-{i}"))
                .with_message_id(format!("m{i:05}"))
                .with_payload(JsonObject::from_json(&format!(r#"{{"i":{i},"s":"x,\"y\"\n"}}"#)).unwrap());
            if i % 500 == 7 {
                call
            } else {
                call.with_received_at(base.checked_add_micros(i as i64 * 1_001).unwrap())
            }
        })
        .collect();
    shuffle(&mut calls, 42);
    calls
}

/// A deterministic Fisher-Yates shuffle (no rand dependency).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
}

#[test]
fn parquet_row_groups_hold_at_most_row_group_rows() {
    let calls = many_calls(3_500);
    let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
    let options = EncodeOptions::default().with_row_group_rows(1000);
    for (input, path) in [(&calls, "sorting"), (&in_order, "streaming")] {
        let bytes = encode_with(FileFormat::Parquet, CallType::Identify, options.clone(), input);
        let meta = parquet_metadata(&bytes);
        assert_eq!(meta.num_row_groups(), 4, "{path}: 3,500 rows in groups of 1,000");
        let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert!(sizes.iter().all(|&n| n > 0 && n <= 1000), "{path}: row group sizes {sizes:?}");
        assert_eq!(sizes.iter().sum::<i64>(), 3_500, "{path}");
        assert_eq!(meta.file_metadata().num_rows(), 3_500, "{path}");
        assert_sorting_metadata(&meta, path);
        assert_rows_eq(&read_parquet(CallType::Identify, &bytes), &expected_rows(&calls), path);
    }
    // The default puts them all in one row group.
    let bytes = encode(FileFormat::Parquet, CallType::Identify, &calls);
    assert_eq!(parquet_metadata(&bytes).num_row_groups(), 1);
}

// ---------------------------------------------------------------------------
// 3. Sorting, in memory and through spilled runs.

/// Calls of one type whose `receivedAt` takes only a few values (many ties) or is
/// absent, with distinct messageIds in input order, shuffled.
fn tied_calls(call_type: CallType, n: usize, seed: u64) -> Vec<Call> {
    let base = ts("2026-11-22T10:00:00Z");
    let mut keys: Vec<Option<Timestamp>> = (0..n)
        .map(|i| match i % 6 {
            0 => None,
            k => Some(base.checked_add_micros((5 - k as i64) * 1_000_500).unwrap()),
        })
        .collect();
    shuffle(&mut keys, seed);
    let mut calls = fixtures(call_type);
    let template = calls.remove(0);
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let mut call = calls.get(i % calls.len()).cloned().unwrap_or_else(|| template.clone());
            call.message_id = Some(format!("tie-{i:05}"));
            call.received_at = key;
            call
        })
        .collect()
}

fn spill_options(dir: &std::path::Path, rows: usize, bytes: usize) -> EncodeOptions {
    EncodeOptions::default().with_row_group_rows(rows).with_sort_buffer_bytes(bytes).with_spill_dir(dir)
}

#[test]
fn rows_are_sorted_by_received_at_stably_with_absent_first() {
    for call_type in CallType::ALL {
        let calls = tied_calls(call_type, 300, call_type as u64 + 1);
        let absent = calls.iter().filter(|c| c.received_at.is_none()).count();
        assert!(absent > 0);
        for format in FileFormat::ALL {
            let rows = read(format, call_type, &encode(format, call_type, &calls));
            let what = format!("{format} {call_type}");
            let ids: Vec<&Cell> = rows.iter().map(|r| &r[1]).collect();
            let want_ids: Vec<Cell> =
                file_order(&calls).iter().map(|c| text_cell(c.message_id.as_deref())).collect();
            assert_eq!(ids, want_ids.iter().collect::<Vec<_>>(), "{what}: ids in stable received_at order");
            assert!(rows[..absent].iter().all(|r| r[0] == Cell::Null), "{what}: absent receivedAt first");
            assert!(rows[absent..].iter().all(|r| r[0] != Cell::Null), "{what}");
            assert!(rows.windows(2).all(|w| match (&w[0][0], &w[1][0]) {
                (Cell::Time(a), Cell::Time(b)) => a <= b,
                (Cell::Null, _) => true,
                _ => false,
            }));
            assert_rows_eq(&rows, &expected_for(format, &calls), &what);
        }
    }
}

#[test]
fn distinct_keys_give_the_same_text_files_whatever_the_input_order() {
    let calls = many_calls(400);
    let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
    for format in [FileFormat::Json, FileFormat::Csv] {
        assert_eq!(
            encode(format, CallType::Identify, &calls),
            encode(format, CallType::Identify, &in_order),
            "{format}: the bytes depend only on the sorted rows"
        );
    }
    assert_eq!(
        read_parquet(CallType::Identify, &encode(FileFormat::Parquet, CallType::Identify, &calls)),
        read_parquet(CallType::Identify, &encode(FileFormat::Parquet, CallType::Identify, &in_order)),
    );
}

#[test]
fn spilled_and_merged_runs_give_the_same_output() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing_dir = dir.path().join("does-not-exist");
    for call_type in CallType::ALL {
        let calls = tied_calls(call_type, 250, 100 + call_type as u64);
        for (rows, bytes) in [(7, 2048), (7, usize::MAX), (1_000_000, 1), (3, 0)] {
            let tiny = spill_options(dir.path(), rows, bytes);
            for format in FileFormat::ALL {
                let what = format!("{format} {call_type} rows={rows} bytes={bytes}");
                let default = encode(format, call_type, &calls);
                let spilled = encode_with(format, call_type, tiny.clone(), &calls);
                if format == FileFormat::Parquet {
                    assert_rows_eq(
                        &read_parquet(call_type, &spilled),
                        &read_parquet(call_type, &default),
                        &what,
                    );
                    assert_rows_eq(&read_parquet(call_type, &spilled), &expected_rows(&calls), &what);
                    let meta = parquet_metadata(&spilled);
                    assert!(meta.row_groups().iter().all(|g| g.num_rows() as usize <= rows), "{what}");
                    assert_sorting_metadata(&meta, &what);
                } else {
                    assert!(spilled == default, "{what}: spilled output differs from in-memory output");
                }

                // The same options with a spill directory that does not exist must
                // fail, which shows that these options really spill runs to disk.
                let mut encoder =
                    FileEncoder::new(format, call_type, spill_options(&missing_dir, rows, bytes));
                let wrote = calls.iter().try_for_each(|c| encoder.write(c));
                let failed = wrote.is_err() || encoder.finish_to_vec().is_err();
                assert!(failed, "{what}: expected these options to spill");
            }
        }
        // The spill files are anonymous: nothing is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "spill directory is empty after use");
    }
}

#[test]
fn text_rows_streamed_into_the_file_then_out_of_order_give_the_sorted_file() {
    // Megabytes of rows in order (written through to the file as they come), then a
    // tail out of order (merged with what was streamed), through every way out.
    let sorted: Vec<Call> = file_order(&many_calls(20_000)).into_iter().cloned().collect();
    let mut calls = sorted.clone();
    let late = calls.split_off(19_000);
    calls.extend(late.into_iter().rev());
    for format in [FileFormat::Json, FileFormat::Csv] {
        let what = format!("{format}");
        let bytes = encode(format, CallType::Identify, &calls);
        assert!(bytes.len() > 3 << 19, "{what}: {} bytes, more than the megabyte buffered", bytes.len());
        assert!(bytes == encode(format, CallType::Identify, &sorted), "{what}: same bytes as sorted input");
        assert_rows_eq(&read(format, CallType::Identify, &bytes), &expected_for(format, &calls), &what);
        for input in [&sorted, &calls] {
            let mut encoder = FileEncoder::new(format, CallType::Identify, EncodeOptions::default());
            input.iter().for_each(|c| encoder.write(c).expect("write"));
            let mut file = encoder.finish_to_file().expect("finish to a file");
            let mut from_file = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut from_file).expect("read back");
            assert!(from_file == bytes, "{what}: finish_to_file gives the same bytes");
            let mut encoder = FileEncoder::new(format, CallType::Identify, EncodeOptions::default());
            input.iter().for_each(|c| encoder.write(c).expect("write"));
            let chunks = encoder.finish_to_chunks().expect("finish to chunks");
            assert!(chunks.concat() == bytes, "{what}: finish_to_chunks gives the same bytes");
        }
    }
}

#[test]
fn parquet_switches_from_streaming_to_sorting_after_spilling() {
    // In order for more than the rows held back (16,384), many Arrow batches and
    // past the in-memory spool limit, then a call older than every row encoded: the
    // encoder reads back what it streamed and sorts.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut calls: Vec<Call> = file_order(&many_calls(40_000)).into_iter().cloned().collect();
    let late = calls.split_off(39_990);
    calls.extend(late.into_iter().rev());
    let early = Call::identify("early").with_message_id("early").with_received_at(ts("2000-01-01T00:00:00Z"));
    calls.push(early);
    for options in [
        EncodeOptions::default(),
        EncodeOptions::default().with_sort_buffer_bytes(4096).with_spill_dir(dir.path()),
        EncodeOptions::default()
            .with_sort_buffer_bytes(4096)
            .with_row_group_rows(1000)
            .with_spill_dir(dir.path()),
    ] {
        let mut encoder = ParquetEncoder::new(CallType::Identify, options.clone());
        for call in &calls[..calls.len() - 1] {
            encoder.write(call).unwrap();
        }
        assert!(encoder.is_streaming(), "the last ten rows reversed are put in order while streaming");
        encoder.write(&calls[calls.len() - 1]).unwrap();
        assert!(!encoder.is_streaming(), "a call older than the rows encoded turns it to sorting");
        let bytes = encoder.finish(Vec::new()).unwrap();
        assert_rows_eq(
            &read_parquet(CallType::Identify, &bytes),
            &expected_rows(&calls),
            &format!("{options:?}"),
        );
        assert_sorting_metadata(&parquet_metadata(&bytes), "switched");
        // Streaming only, through a spooled file: the same bytes.
        let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
        let streamed = encode_with(FileFormat::Parquet, CallType::Identify, options.clone(), &in_order);
        assert!(streamed == bytes, "{options:?}: streamed and sorted files differ");
    }
}

/// `calls` in file order, then each block of `block` calls reversed: every call is
/// at most `block` places from where it belongs.
fn nearly_ordered(calls: &[Call], block: usize) -> Vec<Call> {
    let mut out: Vec<Call> = file_order(calls).into_iter().cloned().collect();
    for chunk in out.chunks_mut(block) {
        chunk.reverse();
    }
    out
}

#[test]
fn parquet_puts_calls_slightly_out_of_order_in_order_while_streaming() {
    // What a collector sees: requests stamped on different threads, appended a few
    // milliseconds out of order. Blocks of up to 8,000 reversed stay within the
    // 16,384 rows held back (2,000 within the 5,000 held with row groups of 5,000);
    // the file is the one the calls in order give, byte for byte.
    let calls: Vec<Call> = many_calls(60_000).into_iter().filter(|c| c.received_at.is_some()).collect();
    let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
    for (options, largest) in
        [(EncodeOptions::default(), 8_000), (EncodeOptions::default().with_row_group_rows(5_000), 2_000)]
    {
        let want = encode_with(FileFormat::Parquet, CallType::Identify, options.clone(), &in_order);
        for block in [2, 100, 1_024, largest] {
            let input = nearly_ordered(&calls, block);
            let mut encoder = ParquetEncoder::new(CallType::Identify, options.clone());
            for call in &input {
                encoder.write(call).unwrap();
                assert!(encoder.is_streaming(), "block {block}: still streaming");
            }
            let got = encoder.finish(Vec::new()).unwrap();
            assert!(got == want, "block {block} {options:?}: the file differs from the in-order one");
        }
        // Reversed blocks far larger than the rows held back: sorted at the end,
        // the same file again.
        let input = nearly_ordered(&calls, 30_000);
        let mut encoder = ParquetEncoder::new(CallType::Identify, options.clone());
        for call in &input {
            encoder.write(call).unwrap();
        }
        assert!(!encoder.is_streaming());
        assert!(encoder.finish(Vec::new()).unwrap() == want, "sorted at the end");
    }
}

// ---------------------------------------------------------------------------
// 4. Determinism.

#[test]
fn encoding_is_deterministic() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for call_type in CallType::ALL {
        let calls = fixtures(call_type);
        let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
        for options in [
            EncodeOptions::default(),
            EncodeOptions::default().with_compression(Compression::Zstd(3)),
            EncodeOptions::default().with_compression(Compression::None),
            spill_options(dir.path(), 7, 1024),
        ] {
            for format in FileFormat::ALL {
                for input in [&calls, &in_order] {
                    let first = encode_with(format, call_type, options.clone(), input);
                    let second = encode_with(format, call_type, options.clone(), input);
                    assert!(first == second, "{format} {call_type} {options:?}: two encodings differ");
                    // The format's own encoder gives the same bytes as FileEncoder.
                    let direct = match format {
                        FileFormat::Json => {
                            direct_encode(JsonEncoder::new(call_type, options.clone()), input)
                        }
                        FileFormat::Csv => direct_encode(CsvEncoder::new(call_type, options.clone()), input),
                        FileFormat::Parquet => {
                            direct_encode(ParquetEncoder::new(call_type, options.clone()), input)
                        }
                    };
                    assert!(
                        first == direct,
                        "{format} {call_type}: FileEncoder and the format's encoder differ"
                    );
                }
            }
        }
    }
}

fn direct_encode(mut encoder: impl Encode, calls: &[Call]) -> Vec<u8> {
    for call in calls {
        encoder.write(call).expect("write");
    }
    encoder.finish(Vec::new()).expect("finish")
}

#[test]
fn finish_writes_into_any_writer() {
    let calls = fixtures(CallType::Page);
    for format in FileFormat::ALL {
        let in_memory = encode(format, CallType::Page, &calls);
        let mut encoder = FileEncoder::new(format, CallType::Page, EncodeOptions::default());
        calls.iter().for_each(|c| encoder.write(c).unwrap());
        let mut file = encoder.finish(tempfile::tempfile().unwrap()).expect("finish into a file");
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut on_disk = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut on_disk).unwrap();
        assert!(on_disk == in_memory, "{format}: file and memory outputs differ");
    }
}

// ---------------------------------------------------------------------------
// 5. Random calls.

/// Strings with everything text formats find hard.
fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => r#"[a-zA-Z0-9 ,"'\\\r\n\t\x00-\x1f\x7féü日本😀👍🏽\u{2028}{}:\[\]]{0,16}"#,
        2 => proptest::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
        1 => Just(String::new()),
        1 => proptest::sample::select(TRICKY).prop_map(str::to_owned),
    ]
}

fn arb_json() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        prop_oneof![Just(u64::MAX), Just(0u64)].prop_map(J::from),
        Just(J::from(i64::MIN)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(J::Number)),
        prop_oneof![Just(1e308), Just(-1e308), Just(5e-324), Just(-0.0), Just(0.1)].prop_map(J::from),
        arb_string().prop_map(J::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
            proptest::collection::btree_map(arb_string(), inner, 0..5)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = JsonObject> {
    proptest::collection::btree_map(arb_string(), arb_json(), 0..5)
        .prop_map(|m| JsonObject::try_from(J::Object(m.into_iter().collect())).expect("an object"))
}

fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    let (min, max) = (Timestamp::MIN.as_micros(), Timestamp::MAX.as_micros());
    let near = ts("2026-11-22T10:00:00Z").as_micros();
    prop_oneof![
        (min..=max).prop_map(|m| Timestamp::from_micros(m).unwrap()),
        (min / 1000..=max / 1000).prop_map(|ms| Timestamp::from_millis(ms).unwrap()),
        // A narrow range, so that ties happen.
        (0i64..4).prop_map(move |s| Timestamp::from_micros(near + s * 1_000_000).unwrap()),
    ]
}

/// A group's traits, sometimes with an `objectTypeId`.
fn arb_group_traits() -> impl Strategy<Value = Option<JsonObject>> {
    let object_type_id = prop_oneof![
        Just(None),
        Just(Some(J::Null)),
        any::<i64>().prop_map(|n| Some(J::from(n))),
        arb_string().prop_map(|s| Some(J::String(s))),
    ];
    (proptest::option::of(arb_object()), object_type_id).prop_map(|(traits, id)| match (traits, id) {
        (Some(traits), Some(id)) => {
            let mut value = traits.to_value().expect("parses");
            value.as_object_mut().unwrap().insert("objectTypeId".into(), id);
            Some(JsonObject::try_from(value).unwrap())
        }
        (traits, _) => traits,
    })
}

fn arb_call() -> impl Strategy<Value = Call> {
    let ids = (
        proptest::option::of(arb_string()),
        proptest::option::of(arb_string()),
        proptest::option::of(arb_string()),
    );
    let times = (
        proptest::option::of(arb_timestamp()),
        proptest::option::of(arb_timestamp()),
        proptest::option::of(arb_timestamp()),
        proptest::option::of(arb_timestamp()),
    );
    let objects =
        (proptest::option::of(arb_object()), proptest::option::of(arb_object()), arb_group_traits());
    (0..6usize, proptest::option::of(arb_string()), ids, times, objects).prop_map(
        |(
            kind,
            text,
            (message_id, user_id, anonymous_id),
            (received, sent, timestamp, original),
            objects,
        )| {
            let (context, payload, group_traits) = objects;
            let body = match CallType::ALL[kind] {
                CallType::Identify => Body::Identify(cdp_warehouse::calls::Identify { traits: payload }),
                CallType::Track => {
                    Body::Track(cdp_warehouse::calls::Track { event: text, properties: payload })
                }
                CallType::Page => Body::Page(cdp_warehouse::calls::Page { name: text, properties: payload }),
                CallType::Screen => {
                    Body::Screen(cdp_warehouse::calls::Screen { name: text, properties: payload })
                }
                CallType::Group => {
                    Body::Group(cdp_warehouse::calls::Group { group_id: text, traits: group_traits })
                }
                CallType::Alias => Body::Alias(cdp_warehouse::calls::Alias { previous_id: text }),
            };
            let mut call = Call::new(body);
            call.message_id = message_id;
            call.user_id = user_id;
            call.anonymous_id = anonymous_id;
            call.received_at = received;
            call.sent_at = sent;
            call.timestamp = timestamp;
            call.original_timestamp = original;
            call.context = context;
            call
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_calls_survive_every_format(calls in proptest::collection::vec(arb_call(), 1..12)) {
        for call_type in CallType::ALL {
            let of_type: Vec<Call> = calls.iter().filter(|c| c.call_type() == call_type).cloned().collect();
            if !of_type.is_empty() {
                assert_round_trip(call_type, &of_type);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 6. A call of the wrong type.

#[test]
fn wrong_call_type_is_rejected_and_the_file_still_finishes() {
    let good_late =
        Call::identify("late").with_message_id("late").with_received_at(ts("2026-11-22T10:00:02Z"));
    let good_early =
        Call::identify("early").with_message_id("early").with_received_at(ts("2026-11-22T10:00:01Z"));
    for format in FileFormat::ALL {
        for wrong_type in CallType::ALL.into_iter().filter(|&t| t != CallType::Identify) {
            let mut wrong = fixtures(wrong_type).remove(0);
            wrong.received_at = Some(ts("2026-11-22T10:00:00Z"));
            let mut encoder = FileEncoder::new(format, CallType::Identify, EncodeOptions::default());
            encoder.write(&good_late).unwrap();
            match encoder.write(&wrong) {
                Err(EncodeError::WrongCallType { expected, found }) => {
                    assert_eq!((expected, found), (CallType::Identify, wrong_type), "{format}");
                }
                other => panic!("{format}: a {wrong_type} call gave {other:?}"),
            }
            assert_eq!(encoder.rows(), 1, "{format}: the wrong call is not counted");
            assert_eq!(encoder.call_type(), CallType::Identify);
            encoder.write(&good_early).unwrap();
            let bytes = encoder.finish_to_vec().expect("the encoder still finishes");
            let good = [good_late.clone(), good_early.clone()];
            assert_rows_eq(
                &read(format, CallType::Identify, &bytes),
                &expected_for(format, &good),
                &format!("{format} after a {wrong_type} call"),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 7. CSV that Python's csv module loads unchanged.

const PYTHON_CSV: &str = r#"
import csv, json, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
sys.stdout.write(json.dumps(rows))
"#;

/// The text of a cell as CSV holds it.
fn csv_text(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Time(micros) => rfc3339(*micros),
        Cell::Text(s) => s.clone(),
        Cell::Json { text, .. } => text.clone(),
    }
}

#[test]
fn csv_loads_unchanged_in_python() {
    let probe = Command::new("python3").args(["-c", "import csv"]).output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "python3 is present but `import csv` failed ({}): this test needs Python's csv module\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            panic!("python3 is required for this test (it checks SPEC section 3) but could not run: {e}")
        }
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    for call_type in CallType::ALL {
        let calls = fixtures(call_type);
        let path = dir.path().join(format!("1.1.1.{call_type}.csv"));
        std::fs::write(&path, encode(FileFormat::Csv, call_type, &calls)).expect("write the CSV file");
        let out = Command::new("python3").arg("-c").arg(PYTHON_CSV).arg(&path).output().expect("run python3");
        assert!(out.status.success(), "{call_type}: python failed: {}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).expect("python printed JSON rows");
        let mut want: Vec<Vec<String>> = vec![spec_names(call_type).into_iter().map(str::to_owned).collect()];
        want.extend(expected_rows(&calls).iter().map(|row| row.iter().map(csv_text).collect()));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{call_type}: python row {i} (0 is the header)");
        }
        assert_eq!(got.len(), want.len(), "{call_type}: python row count");
    }
}

/// `finish_to_chunks` gives the same file as `finish`, in order or not, in memory or
/// spilled, for every format; in-order text rows are handed over in several chunks
/// rather than copied into one.
#[test]
fn finishing_into_chunks_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let calls = many_calls(3_000);
    let in_order: Vec<Call> = file_order(&calls).into_iter().cloned().collect();
    let options = [
        EncodeOptions::default(),
        spill_options(dir.path(), 700, usize::MAX),
        spill_options(dir.path(), usize::MAX, 64 * 1024),
    ];
    for format in FileFormat::ALL {
        for (input, order) in [(&calls, "shuffled"), (&in_order, "in order")] {
            for options in &options {
                let whole = encode_with(format, CallType::Identify, options.clone(), input);
                let mut encoder = FileEncoder::new(format, CallType::Identify, options.clone());
                for call in input.iter() {
                    encoder.write(call).unwrap();
                }
                let chunks = encoder.finish_to_chunks().unwrap();
                let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
                assert!(joined == whole, "{format}, {order}, {options:?}: chunks differ from the file");
                assert!(chunks.iter().all(|c| !c.is_empty()), "{format}, {order}: no empty chunks");
            }
        }
    }
    // In-order JSON rows of a big file come out in several chunks.
    let big: Vec<Call> = (0..20_000)
        .map(|i| {
            Call::track(format!("u{i}"), "E")
                .with_message_id(format!("m{i}"))
                .with_received_at(ts("2026-11-22T10:00:00Z").checked_add_micros(i).unwrap())
        })
        .collect();
    let mut encoder = FileEncoder::new(FileFormat::Json, CallType::Track, EncodeOptions::default());
    for call in &big {
        encoder.write(call).unwrap();
    }
    assert!(encoder.finish_to_chunks().unwrap().len() > 1);
}

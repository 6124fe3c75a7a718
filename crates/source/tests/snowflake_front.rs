//! The Snowflake source against the Snowflake test front (`tests/snowflake/front.py`:
//! fakesnow behind real key-pair JWT checks, Snowflake's JSON result format with
//! chunks, canned results, fault injection, a request log). Needs the front running
//! and `CDP_TEST_SNOWFLAKE_URL` set (`bash .ci/test` does both); fails without it.
//!
//! The tests run in parallel against one shared front. Each registers users of its own
//! and sends SQL texts of its own; every fault it injects is scoped to its own SQL text
//! (`sql_match`) or to its own query's chunk paths (`path_match` with the query id), so
//! no test can take another's fault and no lock is needed. No test changes the
//! front's configuration, except that the helpers raise how many finished results it
//! keeps (`common::snowflake::prepare`: 32 are too few for parallel tests).
#![cfg(feature = "snowflake")]

mod common;

use std::error::Error as _;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdp_calls::Timestamp;
use cdp_rows::{Date, Time, Value};
use cdp_source::{SNOWFLAKE_PKCS1_TO_PKCS8, SnowflakeOptions, SnowflakeSource, Source, SourceError};
use common::snowflake::{
    ACCOUNT, EC_KEY, ENCRYPTED_KEY, FINGERPRINT, KEY, OTHER_FINGERPRINT, OTHER_KEY, PASSPHRASE, PKCS1_KEY,
    PUBLIC_KEY, chunk_downloads, chunk_index, control, control_text, log as front_log, logins, new_user,
    options, queries_of, register_user, submissions, unique, wait_for_log,
};
use common::{read_all, read_ok};
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn date(y: i32, m: u32, d: u32) -> Value<'static> {
    Value::Date(Date::from_ymd(y, m, d).unwrap())
}

fn time(h: u32, m: u32, s: u32, micro: u32) -> Value<'static> {
    Value::Time(Time::from_hms_micro(h, m, s, micro).unwrap())
}

/// Equal values, floats bit for bit (NaN equals NaN, -0.0 differs from 0.0).
fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

/// A source for `user` at the front, called `name`.
fn source(name: &str, options: SnowflakeOptions) -> SnowflakeSource {
    SnowflakeSource::new(name, options).expect("valid options")
}

/// Registers a canned result (`rows` as JSON text, so every digit and key order is
/// kept) for exactly `sql`.
async fn can(sql: &str, rowtype: &Json, rows: &str) {
    let body = format!(r#"{{"sql": {}, "rowtype": {rowtype}, "rows": {rows}, "times": 1}}"#, json!(sql));
    control_text("POST", "/canned", body).await;
}

/// The id of the (last) query the front ran for `sql`.
fn query_id_of(log: &[Json], sql: &str) -> String {
    let entries = submissions(log, sql);
    let last = entries.last().unwrap_or_else(|| panic!("no query {sql:?} in the front's log"));
    last["query_id"].as_str().expect("a query id").to_owned()
}

/// An error's `Display`, its `Debug` and the `Display` of each of its causes.
fn texts(error: &SourceError) -> Vec<String> {
    let mut texts = vec![error.to_string(), format!("{error:?}")];
    let mut cause = error.source();
    while let Some(c) = cause {
        texts.push(c.to_string());
        texts.push(format!("{c:?}"));
        cause = c.source();
    }
    texts
}

/// Every base64 body line of every test private key (all are 24 characters or more).
fn secret_lines() -> Vec<&'static str> {
    [KEY, ENCRYPTED_KEY, PKCS1_KEY, OTHER_KEY, EC_KEY]
        .iter()
        .flat_map(|pem| pem.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect()
}

/// Panics when `text` holds a private key line or the passphrase.
fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(PASSPHRASE) && !text.contains("correct-horse"),
        "{what} shows the passphrase: {text}"
    );
    for line in secret_lines() {
        assert!(!text.contains(line), "{what} shows a private key line ({line}): {text}");
    }
    for pem in [KEY, ENCRYPTED_KEY, PKCS1_KEY, OTHER_KEY] {
        assert!(!text.contains(pem.trim()), "{what} shows a private key: {text}");
    }
}

/// The uuid Snowflake puts in `JWT token is invalid. [<uuid>]`.
fn failure_uuid(text: &str) -> String {
    let start = text.find("JWT token is invalid. [").unwrap_or_else(|| panic!("no JWT failure in: {text}"))
        + "JWT token is invalid. [".len();
    text[start..start + 36].to_owned()
}

/// Why the front refused the login with failure `uuid`, as
/// `SYSTEM$GET_LOGIN_FAILURE_DETAILS` would name it.
async fn failure_reason(uuid: &str) -> String {
    let failures = control("GET", "/login_failures", None).await;
    let failure = failures
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["uuid"] == uuid)
        .unwrap_or_else(|| panic!("no login failure {uuid} at the front: {failures}"));
    failure["errorCode"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------
// Log capture: a minimal `tracing` subscriber (cdp-source has no tracing-subscriber
// dev-dependency) that writes every span and event, with all their fields, as text.
// Installed as the thread's default: `#[tokio::test]` runs the test and every task it
// spawns (the source's reader, the HTTP connections) on that one thread.
// ---------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_error(&mut self, field: &tracing::field::Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={value}", field.name());
        let mut cause = value.source();
        while let Some(c) = cause {
            let _ = write!(self.0, ": {c}");
            cause = c.source();
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut line = format!("span {} {}", span.metadata().target(), span.metadata().name());
        span.record(&mut Fields(&mut line));
        self.push(line);
        tracing::span::Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = "span record".to_owned();
        values.record(&mut Fields(&mut line));
        self.push(line);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Fields(&mut line));
        self.push(line);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Captures every log line of the current thread until the guard is dropped.
fn capture_logs() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let guard = tracing::subscriber::set_default(capture.clone());
    (capture, guard)
}

/// Panics when a captured log line holds a secret.
fn assert_logs_clean(capture: &Capture) {
    for line in capture.lines() {
        assert_no_secret("a log line", &line);
    }
}

// ---------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------

/// One Snowflake type: its rowtype entry, canned values (JSON text, typed as the front
/// reads them) and the values the source must give, in order.
struct TypeCase {
    name: &'static str,
    column: Json,
    rows: &'static str,
    expected: Vec<Value<'static>>,
}

fn type_table() -> Vec<TypeCase> {
    let n38 = "99999999999999999999999999999999999999";
    let pretty_variant = "{\n  \"big\": 9223372036854775808,\n  \"n\": [\n    1,\n    2.50,\n    -1e-7,\n    \
                          18446744073709551616\n  ],\n  \"s\": \"\u{fc} \\\"q\\\" \\\\ \u{1f980}\",\n  \"nested\": \
                          {\n    \"a\": [\n      true,\n      null,\n      {}\n    ],\n    \"e\": []\n  }\n}";
    vec![
        TypeCase {
            name: "NUMBER(38,0)",
            column: json!({"type": "fixed", "precision": 38, "scale": 0}),
            rows: r#"[["99999999999999999999999999999999999999"], ["-99999999999999999999999999999999999999"],
                      ["9223372036854775807"], ["-9223372036854775808"], ["9223372036854775808"],
                      ["-9223372036854775809"], [0], [null]]"#,
            expected: vec![
                Value::decimal(n38),
                Value::decimal(format!("-{n38}")),
                Value::Int(i64::MAX),
                Value::Int(i64::MIN),
                Value::decimal("9223372036854775808"),
                Value::decimal("-9223372036854775809"),
                Value::Int(0),
                Value::Null,
            ],
        },
        TypeCase {
            name: "NUMBER(12,3)",
            column: json!({"type": "fixed", "precision": 12, "scale": 3}),
            rows: r#"[["-12.34"], ["0.001"], ["-0.5"], ["7"], ["-999999999.999"], [null]]"#,
            expected: vec![
                Value::decimal("-12.340"),
                Value::decimal("0.001"),
                Value::decimal("-0.500"),
                Value::decimal("7.000"),
                Value::decimal("-999999999.999"),
                Value::Null,
            ],
        },
        TypeCase {
            name: "NUMBER(38,10)",
            column: json!({"type": "fixed", "precision": 38, "scale": 10}),
            rows: r#"[["-9999999999999999999999999999.9999999999"], ["0.0000000001"], ["-0.0000000001"], [null]]"#,
            expected: vec![
                Value::decimal("-9999999999999999999999999999.9999999999"),
                Value::decimal("0.0000000001"),
                Value::decimal("-0.0000000001"),
                Value::Null,
            ],
        },
        TypeCase {
            name: "NUMBER(38,37)",
            column: json!({"type": "fixed", "precision": 38, "scale": 37}),
            rows: r#"[["-9.9999999999999999999999999999999999999"], [null]]"#,
            expected: vec![Value::decimal("-9.9999999999999999999999999999999999999"), Value::Null],
        },
        TypeCase {
            name: "FLOAT",
            column: json!({"type": "real"}),
            rows: r#"[[1.5], [-0.0], [0.1], [1.7976931348623157e308], [5e-324], [-2.5e-300], ["NaN"], ["inf"],
                      ["-inf"], [null]]"#,
            expected: vec![
                Value::Float(1.5),
                Value::Float(-0.0),
                Value::Float(0.1),
                Value::Float(f64::MAX),
                Value::Float(5e-324),
                Value::Float(-2.5e-300),
                Value::Float(f64::NAN),
                Value::Float(f64::INFINITY),
                Value::Float(f64::NEG_INFINITY),
                Value::Null,
            ],
        },
        TypeCase {
            name: "BOOLEAN",
            column: json!({"type": "boolean"}),
            rows: r#"[[true], [false], [null]]"#,
            expected: vec![Value::Bool(true), Value::Bool(false), Value::Null],
        },
        TypeCase {
            name: "VARCHAR",
            column: json!({"type": "text", "length": 16777216}),
            rows: r#"[["Ada \u00fc \u2713 \ud83e\udd80 \u65e5\u672c\u8a9e"], [""], ["null"], ["line\nbreak \"q\" \\ tab\t"],
                      [" padded "], [null]]"#,
            expected: vec![
                Value::text("Ada ü ✓ 🦀 日本語"),
                Value::text(""),
                Value::text("null"),
                Value::text("line\nbreak \"q\" \\ tab\t"),
                Value::text(" padded "),
                Value::Null,
            ],
        },
        TypeCase {
            name: "BINARY",
            column: json!({"type": "binary", "length": 8388608}),
            rows: r#"[["CAFE"], [""], ["00ff10"], [{"base64": "AAEC/w=="}], [null]]"#,
            expected: vec![
                Value::bytes(vec![0xca, 0xfe]),
                Value::bytes(Vec::new()),
                Value::bytes(vec![0x00, 0xff, 0x10]),
                Value::bytes(vec![0x00, 0x01, 0x02, 0xff]),
                Value::Null,
            ],
        },
        TypeCase {
            name: "DATE",
            column: json!({"type": "date"}),
            rows: r#"[["1970-01-01"], ["1969-12-31"], ["1900-02-28"], ["1582-10-04"], ["0001-01-01"],
                      ["2024-02-29"], ["9999-12-31"], [null]]"#,
            expected: vec![
                date(1970, 1, 1),
                date(1969, 12, 31),
                date(1900, 2, 28),
                date(1582, 10, 4),
                date(1, 1, 1),
                date(2024, 2, 29),
                date(9999, 12, 31),
                Value::Null,
            ],
        },
        TypeCase {
            name: "TIME(9)",
            column: json!({"type": "time", "scale": 9}),
            rows: r#"[["00:00:00"], ["12:34:56.123456789"], ["23:59:59.999999999"], ["00:00:00.000001"], [null]]"#,
            expected: vec![
                time(0, 0, 0, 0),
                time(12, 34, 56, 123_456),
                time(23, 59, 59, 999_999),
                time(0, 0, 0, 1),
                Value::Null,
            ],
        },
        TypeCase {
            name: "TIME(3)",
            column: json!({"type": "time", "scale": 3}),
            rows: r#"[["12:34:56.5"], [null]]"#,
            expected: vec![time(12, 34, 56, 500_000), Value::Null],
        },
        TypeCase {
            name: "TIMESTAMP_NTZ(9)",
            column: json!({"type": "timestamp_ntz", "scale": 9}),
            rows: r#"[["1969-12-31 23:59:58.5"], ["1969-12-31 23:59:59.999999999"], ["1900-01-01 00:00:00.000001"],
                      ["1970-01-01 00:00:00"], ["2024-01-01 10:00:00.123456789"], ["0001-01-01 00:00:00"],
                      ["9999-12-31 23:59:59.999999"], [null]]"#,
            expected: vec![
                Value::TimestampWithoutZone(ts("1969-12-31T23:59:58.5Z")),
                // Cut to the microsecond towards the past, as every instant is.
                Value::TimestampWithoutZone(ts("1969-12-31T23:59:59.999999Z")),
                Value::TimestampWithoutZone(ts("1900-01-01T00:00:00.000001Z")),
                Value::TimestampWithoutZone(Timestamp::UNIX_EPOCH),
                Value::TimestampWithoutZone(ts("2024-01-01T10:00:00.123456Z")),
                Value::TimestampWithoutZone(ts("0001-01-01T00:00:00Z")),
                Value::TimestampWithoutZone(ts("9999-12-31T23:59:59.999999Z")),
                Value::Null,
            ],
        },
        TypeCase {
            name: "TIMESTAMP_LTZ(9)",
            column: json!({"type": "timestamp_ltz", "scale": 9}),
            rows: r#"[["1969-07-20 20:17:40.5Z"], ["1960-01-01 00:00:00.25+02:00"],
                      ["2024-01-01 10:00:00.123456789-08:00"], [null]]"#,
            expected: vec![
                Value::Timestamp(ts("1969-07-20T20:17:40.5Z")),
                Value::Timestamp(ts("1959-12-31T22:00:00.25Z")),
                Value::Timestamp(ts("2024-01-01T18:00:00.123456Z")),
                Value::Null,
            ],
        },
        TypeCase {
            name: "TIMESTAMP_TZ(9)",
            column: json!({"type": "timestamp_tz", "scale": 9}),
            rows: r#"[["2024-01-01 10:00:00+05:30"], ["2024-01-01 10:00:00-14:00"], ["2024-01-01 00:00:00+14:00"],
                      ["1969-12-31 23:59:59.5+05:30"], ["1900-06-15 12:00:00.000001-14:00"],
                      ["2024-01-01 04:30:00.123456789Z"], [null]]"#,
            expected: vec![
                // The instant in UTC, whatever offset it was written with.
                Value::Timestamp(ts("2024-01-01T04:30:00Z")),
                Value::Timestamp(ts("2024-01-02T00:00:00Z")),
                Value::Timestamp(ts("2023-12-31T10:00:00Z")),
                Value::Timestamp(ts("1969-12-31T18:29:59.5Z")),
                Value::Timestamp(ts("1900-06-16T02:00:00.000001Z")),
                Value::Timestamp(ts("2024-01-01T04:30:00.123456Z")),
                Value::Null,
            ],
        },
        TypeCase {
            name: "TIMESTAMP_TZ(0)",
            column: json!({"type": "timestamp_tz", "scale": 0}),
            rows: r#"[["1969-12-31 23:59:59-00:30"], [null]]"#,
            expected: vec![Value::Timestamp(ts("1970-01-01T00:29:59Z")), Value::Null],
        },
        TypeCase {
            name: "VARIANT",
            column: json!({"type": "variant"}),
            rows: r#"[[{"big": 9223372036854775808, "n": [1, 2.50, -1e-7, 18446744073709551616],
                        "s": "\u00fc \"q\" \\ \ud83e\udd80", "nested": {"a": [true, null, {}], "e": []}}],
                      ["text"], [18446744073709551616], [{"$raw": "null"}], [{"$raw": "[\n  1,\n  undefined\n]"}],
                      [null]]"#,
            expected: vec![
                Value::json(pretty_variant),
                Value::json("\"text\""),
                Value::json("18446744073709551616"),
                // A JSON null inside a VARIANT is a value, not SQL NULL.
                Value::json("null"),
                // Snowflake prints an SQL NULL inside an array as `undefined`.
                Value::json("[\n  1,\n  null\n]"),
                Value::Null,
            ],
        },
        TypeCase {
            name: "OBJECT",
            column: json!({"type": "object"}),
            rows: r#"[[{"k": {"deep": [1, [2, [3]]]}, "empty": {}}], [{}], [null]]"#,
            expected: vec![
                Value::json(
                    "{\n  \"k\": {\n    \"deep\": [\n      1,\n      [\n        2,\n        [\n          3\n        \
                     ]\n      ]\n    ]\n  },\n  \"empty\": {}\n}",
                ),
                Value::json("{}"),
                Value::Null,
            ],
        },
        TypeCase {
            name: "ARRAY",
            column: json!({"type": "array"}),
            rows: r#"[[[9223372036854775808, "x", null, [], {}]], [[]], [null]]"#,
            expected: vec![
                Value::json("[\n  9223372036854775808,\n  \"x\",\n  null,\n  [],\n  {}\n]"),
                Value::json("[]"),
                Value::Null,
            ],
        },
    ]
}

#[tokio::test]
async fn every_type_arrives_exactly_value_by_value() {
    let user = new_user("SF_TYPES").await;
    let source = source("sf-types", options(&user));
    for case in type_table() {
        let sql = format!("SELECT V FROM TYPES /* {} {} */", case.name, unique("T"));
        let mut column = case.column.clone();
        column["name"] = json!("V");
        can(&sql, &json!([column]), case.rows).await;
        let mut stream = source.query(&sql).await.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(stream.columns().names(), ["V"], "{}", case.name);
        let rows = read_ok(&mut stream).await;
        assert_eq!(rows.len(), case.expected.len(), "{}: {rows:?}", case.name);
        for (i, (row, expected)) in rows.iter().zip(&case.expected).enumerate() {
            assert_eq!(row.len(), 1);
            assert!(same(&row[0], expected), "{} row {i}: got {:?}, want {expected:?}", case.name, row[0]);
        }
    }
}

#[tokio::test]
async fn every_type_in_one_row_and_null_of_every_type() {
    let user = new_user("SF_WIDE").await;
    let source = source("sf-wide", options(&user));
    let table = type_table();
    let rowtype: Vec<Json> = table
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let mut column = case.column.clone();
            column["name"] = json!(format!("C{i}"));
            column
        })
        .collect();
    // The first value of each case side by side, then a row of NULLs.
    let firsts: Vec<String> = table
        .iter()
        .map(|case| {
            let rows: Json = serde_json::from_str(case.rows).unwrap();
            rows[0][0].to_string()
        })
        .collect();
    // (serde_json re-serializes the values here, losing digits and key order: the
    // VARIANT and OBJECT of the wide row are simpler ones; the type table checks the
    // others digit for digit.)
    let overrides = [("VARIANT", r#""wide""#, Value::json("\"wide\"")), ("OBJECT", "{}", Value::json("{}"))];
    let mut first_row = firsts.clone();
    for (name, text, _) in &overrides {
        first_row[table.iter().position(|c| c.name == *name).unwrap()] = (*text).to_owned();
    }
    let rows = format!("[[{}], [{}]]", first_row.join(", "), vec!["null"; table.len()].join(", "));
    let sql = format!("SELECT * FROM WIDE /* {} */", unique("W"));
    can(&sql, &json!(rowtype), &rows).await;

    let mut stream = source.query(&sql).await.unwrap();
    let names: Vec<String> = (0..table.len()).map(|i| format!("C{i}")).collect();
    assert_eq!(stream.columns().names(), names);
    let rows = read_ok(&mut stream).await;
    assert_eq!(rows.len(), 2);
    for (i, case) in table.iter().enumerate() {
        let expected = overrides
            .iter()
            .find(|(name, _, _)| *name == case.name)
            .map_or_else(|| case.expected[0].clone(), |(_, _, value)| value.clone());
        assert!(same(&rows[0][i], &expected), "{}: got {:?}, want {expected:?}", case.name, rows[0][i]);
        assert_eq!(rows[1][i], Value::Null, "NULL of type {}", case.name);
    }
    assert_eq!(stream.rows_read(), 2);
}

#[tokio::test]
async fn real_sql_runs_on_fakesnow_and_names_arrive_as_snowflake_returns_them() {
    let user = new_user("SF_SQL").await;
    let source = source("sf-sql", options(&user));
    let table = unique("CDP_T");
    let ddl = format!(
        "CREATE TABLE {table} (id INT, name VARCHAR, amount NUMBER(10,2), ok BOOLEAN, day DATE, \
         ts TIMESTAMP_NTZ(9), bin BINARY, f FLOAT, v VARIANT, tm TIME)"
    );
    let status = read_ok(&mut source.query(&ddl).await.unwrap()).await;
    assert_eq!(status, vec![vec![Value::text(format!("Table {table} successfully created."))]]);
    for insert in [
        format!(
            "INSERT INTO {table} SELECT 1, 'Ada ü', -12.5, TRUE, '1969-12-31'::DATE, \
             '1969-12-31 23:59:58.5'::TIMESTAMP_NTZ, TO_BINARY('CAFE', 'HEX'), 1.5, PARSE_JSON('{{\"a\": [1, 2]}}'), \
             '12:34:56.123456'::TIME"
        ),
        format!("INSERT INTO {table} (id) VALUES (2)"),
        format!("INSERT INTO {table} (id, name, amount, ok) VALUES (3, 'Grace', 1000000.05, FALSE)"),
    ] {
        let inserted = read_ok(&mut source.query(&insert).await.unwrap()).await;
        assert_eq!(inserted, vec![vec![Value::Int(1)]], "{insert}");
    }

    let mut stream = source
        .query(&format!(
            "SELECT id, name, amount, ok, day, ts, bin, f, v, tm, id AS \"userId\", name AS userName \
             FROM {table} ORDER BY id"
        ))
        .await
        .unwrap();
    // Unquoted names come back upper case, quoted ones as written.
    assert_eq!(
        stream.columns().names(),
        ["ID", "NAME", "AMOUNT", "OK", "DAY", "TS", "BIN", "F", "V", "TM", "userId", "USERNAME"]
    );
    let rows = read_ok(&mut stream).await;
    let nulls = |n: usize| vec![Value::Null; n];
    let mut two = vec![Value::Int(2)];
    two.extend(nulls(9));
    two.extend([Value::Int(2), Value::Null]);
    let mut three =
        vec![Value::Int(3), Value::text("Grace"), Value::decimal("1000000.05"), Value::Bool(false)];
    three.extend(nulls(6));
    three.extend([Value::Int(3), Value::text("Grace")]);
    assert_eq!(
        rows,
        vec![
            vec![
                Value::Int(1),
                Value::text("Ada ü"),
                Value::decimal("-12.50"),
                Value::Bool(true),
                date(1969, 12, 31),
                Value::TimestampWithoutZone(ts("1969-12-31T23:59:58.5Z")),
                Value::bytes(vec![0xca, 0xfe]),
                Value::Float(1.5),
                Value::json("{\n  \"a\": [\n    1,\n    2\n  ]\n}"),
                time(12, 34, 56, 123_456),
                Value::Int(1),
                Value::text("Ada ü"),
            ],
            two,
            three,
        ]
    );

    // The session's database and schema are the configured ones.
    let mut stream = source.query("SELECT CURRENT_DATABASE() AS db, CURRENT_SCHEMA() AS sch").await.unwrap();
    assert_eq!(stream.columns().names(), ["DB", "SCH"]);
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::text("CDP_TEST"), Value::text("PUBLIC")]]);

    // An empty result still has its columns.
    let mut stream = source.query(&format!("SELECT id AS \"Id\" FROM {table} WHERE id > 99")).await.unwrap();
    assert_eq!(stream.columns().names(), ["Id"]);
    assert!(read_all(&mut stream).await.is_empty());
}

// ---------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_result_in_many_chunks_arrives_complete_and_in_order() {
    const ROWS: i64 = 150_000;
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_STREAM").await;
    let source = source("sf-stream", options(&user));
    let column = unique("N");
    let sql = format!("SELECT seq4() AS {column} FROM TABLE(GENERATOR(ROWCOUNT => {ROWS})) ORDER BY 1");
    let mut stream = source.query(&sql).await.unwrap();
    assert_eq!(stream.columns().names(), [column.as_str()]);
    let mut expected = 0_i64;
    while let Some(row) = stream.next().await {
        assert_eq!(row.unwrap(), vec![Value::Int(expected)]);
        expected += 1;
    }
    assert_eq!((expected, stream.rows_read()), (ROWS, ROWS as u64));

    // The front sent the first 1,000 rows inline and the rest in chunks of 10,000 (its
    // defaults): 15 chunks, each downloaded once, in order.
    let log = front_log().await;
    let submission = submissions(&log, &sql)[0];
    assert_eq!((submission["total"].as_i64(), submission["chunks"].as_u64()), (Some(ROWS), Some(15)));
    let downloads = chunk_downloads(&log, submission["query_id"].as_str().unwrap());
    assert_eq!(downloads.iter().map(|e| chunk_index(e)).collect::<Vec<_>>(), (0..15).collect::<Vec<_>>());
    assert!(downloads.iter().all(|e| e["status"] == 200 && e["sse_c"] == "ok"), "{downloads:?}");
    assert_logs_clean(&capture);
}

// ---------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_login_sends_the_session_settings_and_the_statement_timeout() {
    let user = new_user("SF_LOGIN").await;
    // The encrypted key with its passphrase, and a timeout that rounds up to 2 s.
    let source = source(
        "sf-login",
        options(&user)
            .private_key_pem(ENCRYPTED_KEY)
            .private_key_passphrase(PASSPHRASE)
            .statement_timeout(Duration::from_millis(1500)),
    );
    assert_eq!(source.fingerprint(), FINGERPRINT);
    source.check().await.unwrap();
    source.check().await.unwrap();

    let log = front_log().await;
    let logins = logins(&log, &user);
    assert_eq!(logins.len(), 1, "the session is kept for the second query");
    let login = logins[0];
    assert_eq!(login["status"], 200);
    assert_eq!(
        login["query"],
        json!({"databaseName": "CDP_TEST", "schemaName": "PUBLIC", "warehouse": "CDP_WH", "roleName": "CDP_READER"}),
        "the login's query parameters"
    );
    let body = &login["body"];
    assert_eq!(body["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"], 2);
    assert_eq!(body["SESSION_PARAMETERS"]["MULTI_STATEMENT_COUNT"], 1, "one statement per request");
    assert_eq!(login["session_parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"], 2);
    assert_eq!(body["AUTHENTICATOR"], "SNOWFLAKE_JWT");
    assert_eq!(body["ACCOUNT_NAME"], ACCOUNT);
    assert_eq!(body["LOGIN_NAME"].as_str().map(str::to_ascii_uppercase), Some(user.clone()));
    assert_eq!(body["TOKEN"]["jwt_header"]["alg"], "RS256");
    assert_eq!(body["TOKEN"]["jwt_claims"]["iss"], format!("{ACCOUNT}.{user}.{FINGERPRINT}"));
    assert_eq!(body["TOKEN"]["jwt_claims"]["sub"], format!("{ACCOUNT}.{user}"));
    assert_no_secret("the login request", &login.to_string());

    // The front holds the session with that context, and ran both queries under the
    // 2 s statement timeout.
    let queries = queries_of(&log, &user);
    assert_eq!(queries.len(), 2);
    let sessions = control("GET", "/sessions", None).await;
    let session = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session"] == login["session"])
        .expect("the session at the front");
    assert_eq!(session["user"], user.as_str());
    assert_eq!(
        session["context"],
        json!({"database": "CDP_TEST", "schema": "PUBLIC", "warehouse": "CDP_WH", "role": "CDP_READER"})
    );
    assert_eq!(session["parameters"]["STATEMENT_TIMEOUT_IN_SECONDS"], 2);
    let ran = control("GET", "/queries", None).await;
    let ids: Vec<&Json> = queries.iter().map(|q| &q["query_id"]).collect();
    let ours: Vec<&Json> = ran.as_array().unwrap().iter().filter(|q| ids.contains(&&q["query_id"])).collect();
    assert_eq!(ours.len(), 2, "{ran}");
    assert!(ours.iter().all(|q| q["statement_timeout_in_seconds"] == 2), "{ours:?}");
}

// ---------------------------------------------------------------------------------
// Authentication errors
// ---------------------------------------------------------------------------------

/// Checks a refused login: a `Connect` error naming the user, the account and the
/// configured key's fingerprint, with Snowflake's message; refused for `reason` at the
/// front; tried once; no secret anywhere.
async fn assert_refused(error: &SourceError, user: &str, account: &str, fingerprint: &str, reason: &str) {
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    for part in [
        format!("`{user}`"),
        format!("`{account}`"),
        fingerprint.to_owned(),
        "JWT token is invalid".to_owned(),
        format!("DESC USER {user}"),
    ] {
        assert!(text.contains(&part), "{part} is not in: {text}");
    }
    assert_eq!(failure_reason(&failure_uuid(&text)).await, reason, "{text}");
    for text in texts(error) {
        assert_no_secret("the error", &text);
    }
    let log = front_log().await;
    assert_eq!(logins(&log, user).len(), 1, "a refused login is not tried again");
    for login in logins(&log, user) {
        assert_no_secret("the login request", &login.to_string());
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_naming_the_user_the_account_and_the_key() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_WRONG_KEY").await; // registered with the test key…
    let source = source("sf-auth", options(&user).private_key_pem(OTHER_KEY)); // …signs with another
    assert_eq!(source.fingerprint(), OTHER_FINGERPRINT);
    let error = source.check().await.unwrap_err();
    assert_refused(
        &error,
        &user,
        ACCOUNT,
        OTHER_FINGERPRINT,
        "JWT_TOKEN_INVALID_PUBLIC_KEY_FINGERPRINT_MISMATCH",
    )
    .await;
    assert_no_secret("the source's Debug", &format!("{source:?}"));
    assert!(capture.lines().iter().any(|l| l.contains("logging in")), "{:?}", capture.lines());
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn an_unknown_user_is_refused_naming_the_user_the_account_and_the_key() {
    let (capture, _guard) = capture_logs();
    common::snowflake::prepare().await;
    let user = unique("SF_NOBODY"); // never registered
    let error = source("sf-auth", options(&user)).check().await.unwrap_err();
    assert_refused(&error, &user, ACCOUNT, FINGERPRINT, "JWT_TOKEN_INVALID_USER_IN_ISSUER").await;
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn a_wrong_account_is_refused_naming_the_user_the_account_and_the_key() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_ACCOUNT").await;
    let options = SnowflakeOptions::new("OTHERACCOUNT", &user)
        .private_key_pem(ENCRYPTED_KEY)
        .private_key_passphrase(PASSPHRASE)
        .base_url(common::snowflake::front_url())
        .retry_delay(Duration::from_millis(20));
    let error = source("sf-auth", options).check().await.unwrap_err();
    assert_refused(&error, &user, "OTHERACCOUNT", FINGERPRINT, "JWT_TOKEN_ACCOUNT_MISMATCH").await;
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn keys_that_cannot_be_used_are_refused_before_any_login() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_BADKEY").await;
    let refused = |options: SnowflakeOptions| SnowflakeSource::new("sf-auth", options).unwrap_err();
    let whose = format!("user `{user}` in account `{ACCOUNT}`");

    // A wrong passphrase: the key cannot be decrypted, so there is no fingerprint to
    // name; the error says the passphrase does not decrypt the key.
    let wrong_passphrase = refused(
        options(&user).private_key_pem(ENCRYPTED_KEY).private_key_passphrase("correct-horse-battery-staple"),
    );
    // A PKCS#1 key: refused with the command that converts it.
    let pkcs1 = refused(options(&user).private_key_pem(PKCS1_KEY));
    // An encrypted key without its passphrase; an EC key.
    let no_passphrase = refused(options(&user).private_key_pem(ENCRYPTED_KEY));
    let ec = refused(options(&user).private_key_pem(EC_KEY));

    let expect = [
        (&wrong_passphrase, "the passphrase does not decrypt the private key"),
        (&pkcs1, SNOWFLAKE_PKCS1_TO_PKCS8),
        (&no_passphrase, "no passphrase was given"),
        (&ec, "not an RSA key"),
    ];
    for (error, says) in expect {
        assert!(matches!(error, SourceError::Config { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "source `sf-auth`: invalid configuration: the private key of {whose}: "
            )),
            "{text}"
        );
        assert!(text.contains(says), "{says}: {text}");
        for text in texts(error) {
            assert_no_secret("the error", &text);
            // (The passphrase given here, a longer one, must not show either.)
            assert!(!text.contains("battery-staple"), "{text}");
        }
    }
    assert!(pkcs1.to_string().contains("openssl pkcs8 -topk8"), "{pkcs1}");
    assert!(pkcs1.to_string().contains("PKCS#1"), "{pkcs1}");
    assert!(logins(&front_log().await, &user).is_empty(), "no login was tried");
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn successful_logins_and_queries_log_no_secret() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_LOGS").await;
    let options = options(&user).private_key_pem(ENCRYPTED_KEY).private_key_passphrase(PASSPHRASE);
    assert_no_secret("the options' Debug", &format!("{options:?}"));
    let source = source("sf-logs", options);
    for text in [format!("{source:?}"), source.to_string()] {
        assert_no_secret("the source", &text);
        assert!(text.contains(FINGERPRINT), "{text}");
    }
    source.check().await.unwrap();
    let mut stream = source.query("SELECT 'x' AS x").await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::text("x")]]);
    let lines = capture.lines();
    assert!(lines.iter().any(|l| l.contains("logging in") && l.contains("sf-logs")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("result read")), "{lines:?}");
    assert_logs_clean(&capture);
}

// ---------------------------------------------------------------------------------
// Timeouts and failures
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_statement_longer_than_the_statement_timeout_is_a_timeout_error() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_TIMEOUT").await;
    let source = source("sf-timeout", options(&user).statement_timeout(Duration::from_secs(1)));
    let started = Instant::now();
    let error = source.query("SELECT SYSTEM$WAIT(5)").await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error, SourceError::Timeout { timeout, rows_read: 0, .. } if timeout == Duration::from_secs(1)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "source `sf-timeout`: the query was cancelled after the statement timeout of 1s"
    );
    let causes = texts(&error).join("\n");
    assert!(causes.contains("000630") || causes.contains("statement or warehouse timeout"), "{causes}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "{took:?}");

    // Snowflake (the front) cancelled it under the session's timeout.
    let log = front_log().await;
    let queries = queries_of(&log, &user);
    assert_eq!(queries.len(), 1, "a timeout is not retried");
    assert_eq!(queries[0]["sf_code"], "000630");
    assert_eq!(logins(&log, &user)[0]["body"]["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"], 1);

    // A statement within the timeout runs.
    let tag = unique("QUICK");
    control("POST", "/delay", Some(json!({"seconds": 0.3, "sql_match": tag, "times": 1}))).await;
    let mut stream = source.query(&format!("SELECT 'done' AS {tag}")).await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::text("done")]]);
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn query_errors_carry_snowflakes_message_and_query_id() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_ERRORS").await;
    let source = source("sf-errors", options(&user));

    // Snowflake's error, as the front injects it.
    let tag = unique("MISSING");
    let message =
        format!("SQL compilation error:\nObject 'CDP_TEST.PUBLIC.{tag}' does not exist or not authorized.");
    control(
        "POST",
        "/query_error",
        Some(json!({
            "code": "002003", "message": message, "sql_state": "42S02",
            "query_id": "01b3c0de-0000-4a5b-0000-00000000abcd", "sql_match": tag, "times": 1,
        })),
    )
    .await;
    let sql = format!("SELECT * FROM {tag}");
    let error = source.query(&sql).await.unwrap_err();
    assert!(matches!(error, SourceError::Query { rows_read: 0, .. }), "{error:?}");
    assert_eq!(error.code(), Some("002003"));
    assert_eq!(error.query_id(), Some("01b3c0de-0000-4a5b-0000-00000000abcd"));
    assert_eq!(
        error.to_string(),
        format!(
            "source `sf-errors`: query failed: Snowflake error 002003: {message} (query id \
             01b3c0de-0000-4a5b-0000-00000000abcd)"
        )
    );
    assert_eq!(submissions(&front_log().await, &sql).len(), 1, "a query error is not retried");

    // An error from the SQL itself (fakesnow's words), with the id of the query.
    let table = unique("NO_SUCH_TABLE");
    let sql = format!("SELECT * FROM {table}");
    let error = source.query(&sql).await.unwrap_err();
    assert!(matches!(error, SourceError::Query { .. }), "{error:?}");
    assert_eq!(error.code(), Some("002003"), "{error}");
    let id = query_id_of(&front_log().await, &sql);
    assert_eq!(error.query_id(), Some(id.as_str()));
    let text = error.to_string();
    assert!(text.contains(&table) && text.contains("does not exist"), "{text}");
    assert!(text.ends_with(&format!("(query id {id})")), "{text}");

    // A syntax error.
    let error = source.query(&format!("SELEC 1 AS {}", unique("X"))).await.unwrap_err();
    assert_eq!(error.code(), Some("001003"), "{error}");
    assert!(error.query_id().is_some(), "{error:?}");

    // The source is still usable.
    source.check().await.unwrap();
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn an_expired_session_logs_in_again_and_the_query_succeeds() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_EXPIRED").await;
    let source = source("sf-expired", options(&user));
    source.check().await.unwrap();
    let tag = unique("EXPIRE");
    control("POST", "/expire_session", Some(json!({"sql_match": tag, "times": 1, "invalidate": true}))).await;
    let sql = format!("SELECT 'renewed' AS {tag}");
    let mut stream = source.query(&sql).await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::text("renewed")]]);

    let log = front_log().await;
    let sessions = logins(&log, &user);
    assert_eq!(sessions.len(), 2, "one new login after the session expired");
    let tries = submissions(&log, &sql);
    assert_eq!(tries.len(), 2);
    assert_eq!(tries[0]["sf_code"], "390112");
    assert_eq!(
        (&tries[0]["session"], &tries[1]["session"]),
        (&sessions[0]["session"], &sessions[1]["session"])
    );
    assert_eq!(tries[1]["status"], 200);
    assert!(tries[1]["sf_code"].is_null(), "{}", tries[1]);

    // The new session serves the next queries: no further login.
    source.check().await.unwrap();
    assert_eq!(logins(&front_log().await, &user).len(), 2);
    assert!(
        capture.lines().iter().any(|l| l.contains("the session expired; logging in again")),
        "{:?}",
        capture.lines()
    );
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn a_503_on_the_query_is_retried_and_one_that_persists_fails_clearly() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_503").await;
    let source = source("sf-503", options(&user));

    let tag = unique("BUSY");
    control(
        "POST",
        "/faults",
        Some(json!([
            {"kind": "http_status", "status": 503, "target": "query", "sql_match": tag, "times": 1},
            {"kind": "http_status", "status": 429, "target": "query", "sql_match": tag, "times": 1},
        ])),
    )
    .await;
    let sql = format!("SELECT 'served' AS {tag}");
    let mut stream = source.query(&sql).await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::text("served")]]);
    let statuses: Vec<Json> =
        submissions(&front_log().await, &sql).iter().map(|e| e["status"].clone()).collect();
    assert_eq!(statuses, [json!(503), json!(429), json!(200)]);

    // Down for good: three attempts, then a clear error.
    let tag = unique("DOWN");
    control(
        "POST",
        "/fail_requests",
        Some(json!({"status": 503, "target": "query", "sql_match": tag, "times": 10})),
    )
    .await;
    let sql = format!("SELECT 'never' AS {tag}");
    let error = source.query(&sql).await.unwrap_err();
    assert!(matches!(error, SourceError::Connection { rows_read: 0, .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("source `sf-503`: connection lost: "), "{text}");
    assert!(text.contains("503") && text.contains("gave up after 3 attempts"), "{text}");
    let statuses: Vec<Json> =
        submissions(&front_log().await, &sql).iter().map(|e| e["status"].clone()).collect();
    assert_eq!(statuses, [json!(503), json!(503), json!(503)], "three attempts in all");
    assert_eq!(logins(&front_log().await, &user).len(), 1, "a 503 is not a reason to log in again");
    assert!(
        capture.lines().iter().any(|l| l.contains("query submission failed; retrying")),
        "{:?}",
        capture.lines()
    );
    assert_logs_clean(&capture);
}

/// Runs a query of `rows` rows (1,000 inline, then chunks of 10,000) and waits until
/// the source has downloaded its first two chunks, when it holds back (its reader
/// stopped): the query id and the stream.
async fn big_query(source: &SnowflakeSource, rows: i64) -> (String, String, cdp_source::RowStream) {
    let column = unique("N");
    let sql = format!("SELECT seq4() AS {column} FROM TABLE(GENERATOR(ROWCOUNT => {rows})) ORDER BY 1");
    let stream = source.query(&sql).await.unwrap();
    let id = query_id_of(&front_log().await, &sql);
    let log = wait_for_log("the first two chunks downloaded", |log| {
        let done: Vec<usize> = chunk_downloads(log, &id).iter().map(|e| chunk_index(e)).collect();
        done.contains(&0) && done.contains(&1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ahead: Vec<usize> = chunk_downloads(&log, &id).iter().map(|e| chunk_index(e)).collect();
    assert_eq!(ahead, [0, 1], "the source reads two chunks ahead of a reader that does not read");
    (sql, id, stream)
}

#[tokio::test]
async fn chunk_downloads_that_fail_once_are_retried_and_the_result_is_complete() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_CHUNKS").await;
    let source = source("sf-chunks", options(&user));
    let (_, id, mut stream) = big_query(&source, 80_000).await;
    // Chunks 2, 4 and 6 of this query fail once each: an HTTP 500, a truncated body, a
    // dropped connection.
    control(
        "POST",
        "/faults",
        Some(json!([
            {"kind": "http_status", "status": 500, "target": "chunk", "path_match": format!("^/_chunks/{id}/2$")},
            {"kind": "truncate_chunk", "target": "chunk", "path_match": format!("^/_chunks/{id}/4$")},
            {"kind": "drop_connection", "target": "chunk", "path_match": format!("^/_chunks/{id}/6$")},
        ])),
    )
    .await;
    let mut expected = 0_i64;
    while let Some(row) = stream.next().await {
        assert_eq!(row.unwrap_or_else(|e| panic!("row {expected}: {e}")), vec![Value::Int(expected)]);
        expected += 1;
    }
    assert_eq!((expected, stream.rows_read()), (80_000, 80_000));

    let log = front_log().await;
    let downloads = chunk_downloads(&log, &id);
    let of = |index: usize| downloads.iter().filter(|e| chunk_index(e) == index).collect::<Vec<_>>();
    for index in 0..8 {
        let tries = of(index);
        let expected_tries = if [2, 4, 6].contains(&index) { 2 } else { 1 };
        assert_eq!(tries.len(), expected_tries, "chunk {index}: {tries:?}");
        assert_eq!(tries.last().unwrap()["status"], 200, "chunk {index}");
        assert!(tries.last().unwrap().get("fault").is_none_or(Json::is_null), "chunk {index}");
    }
    assert_eq!(of(2)[0]["status"], 500);
    assert_eq!(of(4)[0]["fault"]["kind"], "truncate_chunk");
    assert_eq!(of(6)[0]["fault"]["kind"], "drop_connection");
    assert!(
        capture.lines().iter().any(|l| l.contains("a result chunk could not be read; downloading it again")),
        "{:?}",
        capture.lines()
    );
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn a_chunk_that_keeps_failing_ends_the_query_with_a_clear_error() {
    let (capture, _guard) = capture_logs();
    let user = new_user("SF_CHUNK_FAIL").await;
    let source = source("sf-chunk-fail", options(&user));

    // Truncated every time: downloaded three times in all, then the query fails after
    // the rows before it.
    let (_, id, mut stream) = big_query(&source, 30_000).await;
    control(
        "POST",
        "/faults",
        Some(json!({"kind": "truncate_chunk", "target": "chunk", "path_match": format!("^/_chunks/{id}/2$"), "times": 10})),
    )
    .await;
    let rows = read_all(&mut stream).await;
    let (ok, errors): (Vec<_>, Vec<_>) = rows.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 21_000, "the rows before the broken chunk");
    assert_eq!(errors.len(), 1);
    let error = errors.into_iter().next().unwrap().unwrap_err();
    assert!(!error.is_row_error(), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("source `sf-chunk-fail`: "), "{text}");
    assert!(text.contains("after 21000 rows") || text.contains("after 21,000 rows"), "{text}");
    assert!(texts(&error).iter().any(|t| t.contains(&id)), "the error names the query: {error:?}");
    assert!(stream.next().await.is_none(), "the stream ends after the error");
    let tries = chunk_downloads(&front_log().await, &id).iter().filter(|e| chunk_index(e) == 2).count();
    assert_eq!(tries, 3, "one download and two more");

    // Refused (HTTP 403): not downloaded again.
    let (_, id, mut stream) = big_query(&source, 30_000).await;
    control(
        "POST",
        "/fail_chunk",
        Some(json!({"status": 403, "times": 10, "path_match": format!("^/_chunks/{id}/2$")})),
    )
    .await;
    let rows = read_all(&mut stream).await;
    assert_eq!(rows.iter().filter(|r| r.is_ok()).count(), 21_000);
    let error = rows.into_iter().find_map(Result::err).expect("an error");
    assert!(matches!(error, SourceError::Connection { rows_read: 21_000, .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("could not be downloaded") && text.contains("403") && text.contains(&id), "{text}");
    let tries = chunk_downloads(&front_log().await, &id).iter().filter(|e| chunk_index(e) == 2).count();
    assert_eq!(tries, 1, "a 403 is not downloaded again");
    assert_logs_clean(&capture);
}

#[tokio::test]
async fn the_front_answers_the_control_api() {
    // A check of the helpers themselves: the front knows the account, and keys
    // registered for a user answer the fingerprints the source computes.
    let health = control("GET", "/health", None).await;
    assert_eq!(health["account"], ACCOUNT);
    let user = unique("SF_KEYS");
    let answer =
        control("POST", "/users", Some(json!({"user": user, "public_keys": [PUBLIC_KEY, PUBLIC_KEY]}))).await;
    assert_eq!(answer["fingerprints"], json!([FINGERPRINT, FINGERPRINT]));
    assert_eq!(register_user(&user, PUBLIC_KEY).await, FINGERPRINT);
}

#[tokio::test]
async fn columns_come_from_a_query_that_returns_no_rows() {
    let user = new_user("SF_COLUMNS").await;
    let source = source("sf-columns", options(&user));
    let table = unique("CDP_COLS");
    read_ok(&mut source.query(&format!("CREATE TABLE {table} (id INT, name VARCHAR)")).await.unwrap()).await;
    read_ok(
        &mut source.query(&format!("INSERT INTO {table} VALUES (1, 'Ada'), (2, 'Grace')")).await.unwrap(),
    )
    .await;

    // Names arrive as Snowflake returns them (unquoted ones upper case); a trailing
    // semicolon and comment do not get in the way.
    let select = format!("SELECT id AS \"userId\", id AS userId, name AS \"a.b\" FROM {table}");
    let sql = format!("{select} ; -- the people");
    assert_eq!(source.columns(&sql).await.unwrap(), ["userId", "USERID", "a.b"]);
    // A query with a limit of its own is wrapped.
    let limited = format!("SELECT name AS \"Name\" FROM {table} ORDER BY id LIMIT 1");
    assert_eq!(source.columns(&limited).await.unwrap(), ["Name"]);
    let log = front_log().await;
    for sent in
        [format!("{select}\nLIMIT 0"), format!("SELECT * FROM (\n{limited}\n) AS cdp_preview\nLIMIT 0")]
    {
        let submitted = submissions(&log, &sent);
        assert_eq!(submitted.len(), 1, "{sent:?} in {log:?}");
        assert_eq!(submitted[0]["total"], 0, "no row came back: {}", submitted[0]);
    }
    assert!(
        submissions(&log, &sql).is_empty() && submissions(&log, &limited).is_empty(),
        "the queries never ran"
    );

    // An unknown table is the query's error, naming the source.
    let error = source.columns("SELECT * FROM CDP_NO_SUCH_TABLE").await.unwrap_err();
    assert!(matches!(error, SourceError::Query { .. }), "{error:?}");
    assert!(error.to_string().starts_with("source `sf-columns`: query failed"), "{error}");
}

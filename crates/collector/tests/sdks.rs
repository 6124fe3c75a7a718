//! Four real tracking SDKs against a collector on loopback, in every file format.
//!
//! The drivers in `tests/sdk/` (see its README) run `segment-analytics-python`,
//! `customerio-cdp-analytics` (PyPI), `@segment/analytics-node` and
//! `@customerio/cdp-analytics-node` (npm), each through the scenarios `calls` (every
//! call type), `mixed` (one request mixing valid and invalid calls, one near 32 KiB,
//! one over it), `wrong_key`, `bearer`, and `mixed` again with `X-Strict-Mode: 1`.
//! Each driver prints what it sent (`expect: kept | rejected | dropped_by_sdk`), what
//! the SDK reported and every HTTP attempt it made. The bucket is then read back with
//! readers of our own (serde_json, the `csv` crate, the `parquet` crate's record
//! reader) and compared with that: every kept call exactly once with its fields,
//! nothing else; every call dropped by the collector in the rejected-calls file with
//! its reason; the strict batch refused whole, once, with nothing kept.
//!
//! Needs `python3`, `node` and the pinned SDKs: `bash crates/collector/tests/sdk/install.sh`.
//! The test never skips: anything missing fails it with that hint.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cdp_calls::Timestamp;
use cdp_encode::FileFormat;
use common::{KEY, client, rejected_lines, start_collector};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// A key shaped like a Customer.io CDP API key: `customerio-cdp-analytics` (Python)
/// sends it as `Authorization: Bearer`.
const BEARER_KEY: &str = "pk_us_cdpsdktest0123456789";
const INSTALL_HINT: &str = "run `bash crates/collector/tests/sdk/install.sh` (it needs python3 with pip and \
     Node 18 or newer with npm); this test never skips";
/// A driver finishes within about 20 s (its own flush deadline); past this it is killed.
const DRIVER_DEADLINE: Duration = Duration::from_secs(60);
const MAX_CALL_BYTES: u64 = 32 * 1024;
/// Drivers running at once, over the whole test binary (the three formats run in
/// parallel): enough to overlap the SDKs' idle waits, few enough that a starved
/// process does not hit an SDK's 5 s request timeout and retry a request the
/// collector already took.
static SLOTS: Semaphore = Semaphore::const_new(6);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Node,
}

impl Lang {
    fn program(self) -> &'static str {
        match self {
            Lang::Python => "python3",
            Lang::Node => "node",
        }
    }

    fn script(self) -> &'static str {
        match self {
            Lang::Python => "drive.py",
            Lang::Node => "drive.mjs",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Node => "node",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sdk {
    lang: Lang,
    name: &'static str,
    package: &'static str,
    version: &'static str,
}

/// The pinned SDKs (tests/sdk/requirements.txt and package.json).
const SDKS: [Sdk; 4] = [
    Sdk { lang: Lang::Python, name: "segment", package: "segment-analytics-python", version: "2.4.0" },
    Sdk { lang: Lang::Python, name: "customerio", package: "customerio-cdp-analytics", version: "1.1.0" },
    Sdk { lang: Lang::Node, name: "segment", package: "@segment/analytics-node", version: "3.1.0" },
    Sdk { lang: Lang::Node, name: "customerio", package: "@customerio/cdp-analytics-node", version: "0.5.9" },
];

/// One driver run.
#[derive(Debug, Clone)]
struct Run {
    sdk: Sdk,
    scenario: &'static str,
    strict: bool,
    gzip: bool,
}

impl Run {
    fn label(&self) -> String {
        let mode = match (self.strict, self.gzip) {
            (true, _) => " (strict)",
            (_, true) => " (gzip)",
            _ => "",
        };
        format!("{}/{}/{}{mode}", self.sdk.lang.name(), self.sdk.name, self.scenario)
    }

    /// Unique per run of the test, per format and per mode: the prefix of every
    /// messageId the driver makes (`<run>-<sdk>-<lang>-…`).
    fn run_id(&self, base: &str) -> String {
        let mode = match (self.strict, self.gzip) {
            (true, _) => "s",
            (_, true) => "g",
            _ => "",
        };
        format!("{base}{mode}")
    }

    fn is_customerio_python(&self) -> bool {
        self.sdk.lang == Lang::Python && self.sdk.name == "customerio"
    }
}

/// Every SDK through every scenario, strict `mixed` too; the Python SDKs' gzip
/// option once (in the JSON run: the SDK side does not depend on the format).
fn plan(format: FileFormat) -> Vec<Run> {
    let mut runs = Vec::new();
    for sdk in SDKS {
        for scenario in ["calls", "mixed", "wrong_key", "bearer"] {
            runs.push(Run { sdk, scenario, strict: false, gzip: false });
        }
        runs.push(Run { sdk, scenario: "mixed", strict: true, gzip: false });
        if sdk.lang == Lang::Python && format == FileFormat::Json {
            runs.push(Run { sdk, scenario: "calls", strict: false, gzip: true });
        }
    }
    runs
}

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("sdk")
}

/// Fails (never skips) when python3, node or an SDK is missing.
fn require_sdks() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(problem) = CHECKED.get_or_init(check_sdks) {
        panic!("the real-SDK test cannot run: {problem}\n{INSTALL_HINT}");
    }
}

fn check_sdks() -> Result<(), String> {
    let probes: [(&str, [&str; 2]); 2] = [
        ("python3", ["-c", "import segment.analytics, customerio.analytics"]),
        ("node", ["-e", "require('@segment/analytics-node'); require('@customerio/cdp-analytics-node')"]),
    ];
    for (program, args) in probes {
        let output = Command::new(program)
            .args(args)
            .current_dir(sdk_dir())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{program} cannot load the SDKs ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// What a driver printed, with its run.
struct Outcome {
    run: Run,
    out: Value,
}

/// Runs one driver to the end (blocking) and parses its last stdout line.
fn drive(run: &Run, url: &str, run_id: &str) -> Outcome {
    let label = run.label();
    let program = run.sdk.lang.program();
    let key = if run.scenario == "bearer" { BEARER_KEY } else { KEY };
    let mut command = Command::new(program);
    command
        .arg(run.sdk.lang.script())
        .arg(run.sdk.name)
        .arg(run.scenario)
        .current_dir(sdk_dir())
        .env("CDP_COLLECTOR_URL", url)
        .env("CDP_WRITE_KEY", key)
        .env("CDP_RUN_ID", run_id)
        .env_remove("CDP_STRICT_MODE")
        .env_remove("CDP_GZIP")
        .env_remove("CDP_SDK_DEBUG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if run.strict {
        command.env("CDP_STRICT_MODE", "1");
    }
    if run.gzip {
        command.env("CDP_GZIP", "1");
    }
    let mut child =
        command.spawn().unwrap_or_else(|e| panic!("{label}: cannot start {program}: {e}\n{INSTALL_HINT}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DRIVER_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{label}: the driver did not finish within {DRIVER_DEADLINE:?}; stderr:\n{}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "{label}: the driver broke ({status}); if an SDK is missing, {INSTALL_HINT}\nstderr:\n{stderr}"
    );
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let out: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("{label}: the last stdout line is not JSON ({e}): {line:?}\nstderr:\n{stderr}")
    });
    assert_eq!(
        out["version"], run.sdk.version,
        "{label}: {} is not at the pinned version; {INSTALL_HINT}",
        run.sdk.package
    );
    Outcome { run: run.clone(), out }
}

// ---- the collector ---------------------------------------------------------------

/// The value of one series of a Prometheus text scrape (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

// ---- reading the bucket back --------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Text(String),
    /// Microseconds since the Unix epoch.
    Time(i64),
    Json(Value),
}

#[derive(Debug)]
struct Row {
    file: String,
    call_type: String,
    cells: BTreeMap<String, Cell>,
}

impl Row {
    fn cell(&self, column: &str) -> &Cell {
        self.cells.get(column).unwrap_or(&Cell::Null)
    }

    fn text(&self, column: &str) -> Option<&str> {
        match self.cell(column) {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    fn time(&self, column: &str) -> Option<i64> {
        match self.cell(column) {
            Cell::Time(t) => Some(*t),
            _ => None,
        }
    }

    fn json(&self, column: &str) -> Option<&Value> {
        match self.cell(column) {
            Cell::Json(v) => Some(v),
            _ => None,
        }
    }
}

/// SPEC section 2: the columns of each call type's files, in order.
fn columns(call_type: &str) -> Vec<&'static str> {
    let mut columns =
        vec!["received_at", "id", "user_id", "anonymous_id", "sent_at", "timestamp", "original_timestamp"];
    columns.extend_from_slice(match call_type {
        "identify" => &["traits", "context"][..],
        "track" => &["event", "event_text", "properties", "context"],
        "page" | "screen" => &["name", "properties", "context"],
        "group" => &["group_id", "object_type_id", "traits", "context"],
        "alias" => &["previous_id", "context"],
        other => panic!("a file of unknown type {other}"),
    });
    columns
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Time,
    Text,
    Json,
}

fn kind(column: &str) -> Kind {
    match column {
        "received_at" | "sent_at" | "timestamp" | "original_timestamp" => Kind::Time,
        "traits" | "properties" | "context" => Kind::Json,
        _ => Kind::Text,
    }
}

fn micros(text: &str, at: &str) -> i64 {
    Timestamp::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("{at}: {text:?} is not RFC 3339: {e}"))
        .as_micros()
}

/// A text cell of a JSON or CSV file, typed by its column.
fn text_cell(column: &str, text: &str, at: &str) -> Cell {
    match kind(column) {
        Kind::Text => Cell::Text(text.to_owned()),
        Kind::Time => {
            assert!(text.ends_with('Z'), "{at}: {column} {text:?} is not UTC with a Z suffix");
            Cell::Time(micros(text, at))
        }
        Kind::Json => {
            let value: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("{at}: {column} is not JSON ({e}): {text}"));
            assert!(value.is_object(), "{at}: {column} is not an object: {text}");
            Cell::Json(value)
        }
    }
}

/// Every row of every file in the bucket, with our own readers.
fn read_bucket(dir: &Path, format: FileFormat) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    for name in names {
        // web.events.<position>.<type>.<ext>
        let parts: Vec<&str> = name.split('.').collect();
        assert!(
            parts.len() == 5
                && parts[..2] == ["web", "events"]
                && parts[2].parse::<u64>().is_ok_and(|p| p >= 1)
                && parts[4] == format.extension(),
            "unexpected object in the bucket: {name}"
        );
        let call_type = parts[3].to_owned();
        let columns = columns(&call_type);
        let path = dir.join(&name);
        let before = rows.len();
        match format {
            FileFormat::Json => {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let at = format!("{name} line {}", n + 1);
                    let object: serde_json::Map<String, Value> =
                        serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: {e}"));
                    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
                    assert_eq!(keys, columns.iter().copied().collect(), "{at}: the keys are the columns");
                    let cells = object
                        .iter()
                        .map(|(column, value)| {
                            let cell = match (kind(column), value) {
                                (_, Value::Null) => Cell::Null,
                                (Kind::Json, Value::Object(_)) => Cell::Json(value.clone()),
                                (_, Value::String(s)) if kind(column) != Kind::Json => {
                                    text_cell(column, s, &at)
                                }
                                (_, other) => panic!("{at}: column {column} holds {other}"),
                            };
                            (column.clone(), cell)
                        })
                        .collect();
                    rows.push(Row { file: name.clone(), call_type: call_type.clone(), cells });
                }
            }
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(&path).unwrap();
                let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
                assert_eq!(header, columns, "{name}: the header row");
                for (n, record) in reader.records().enumerate() {
                    let at = format!("{name} record {}", n + 1);
                    let record = record.unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert_eq!(record.len(), header.len(), "{at}: every column");
                    let cells = header
                        .iter()
                        .zip(record.iter())
                        .map(|(column, field)| {
                            let cell =
                                if field.is_empty() { Cell::Null } else { text_cell(column, field, &at) };
                            (column.clone(), cell)
                        })
                        .collect();
                    rows.push(Row { file: name.clone(), call_type: call_type.clone(), cells });
                }
            }
            FileFormat::Parquet => {
                use parquet::file::reader::{FileReader, SerializedFileReader};
                use parquet::record::Field;

                let reader = SerializedFileReader::try_from(std::fs::File::open(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{name}: not a Parquet file: {e}"));
                let schema: Vec<String> = reader
                    .metadata()
                    .file_metadata()
                    .schema_descr()
                    .columns()
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect();
                assert_eq!(schema, columns, "{name}: the columns");
                for (n, row) in reader.get_row_iter(None).unwrap().enumerate() {
                    let at = format!("{name} row {}", n + 1);
                    let row = row.unwrap_or_else(|e| panic!("{at}: {e}"));
                    let cells = row
                        .get_column_iter()
                        .map(|(column, field)| {
                            let cell = match (kind(column), field) {
                                (_, Field::Null) => Cell::Null,
                                (Kind::Time, Field::TimestampMicros(t)) => Cell::Time(*t),
                                (Kind::Text | Kind::Json, Field::Str(s)) => text_cell(column, s, &at),
                                (_, other) => panic!("{at}: column {column} read back as {other:?}"),
                            };
                            (column.clone(), cell)
                        })
                        .collect();
                    rows.push(Row { file: name.clone(), call_type: call_type.clone(), cells });
                }
            }
        }
        // Every file is sorted by received_at (SPEC section 3).
        let times: Vec<Option<i64>> = rows[before..].iter().map(|r| r.time("received_at")).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{name}: rows are not sorted by received_at");
    }
    rows
}

// ---- what the drivers said, against what was stored ---------------------------------------

/// The collector's error code for a call the driver sent invalid, by the driver's
/// reason (in strict mode a reason gets a suffix; a valid call's reason is replaced).
fn expected_code(reason: &str) -> Option<&'static str> {
    [
        ("missing event", "missing_field"),
        ("empty event", "missing_field"),
        ("messageId over 100 characters", "message_id_too_long"),
        ("over 32 KiB", "too_large"),
    ]
    .into_iter()
    .find_map(|(prefix, code)| reason.starts_with(prefix).then_some(code))
}

/// The `event` column of these simple names (words of letters, spaces between).
fn slug(event: &str) -> String {
    event
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("_")
}

/// Every key the caller sent is stored with the same value.
fn check_subset(sent: &Value, stored: Option<&Value>, what: &str, problems: &mut Vec<String>) {
    let Some(sent) = sent.as_object() else { return };
    let Some(stored) = stored.and_then(Value::as_object) else {
        problems.push(format!("{what}: sent {sent:?}, stored nothing"));
        return;
    };
    for (key, value) in sent {
        if stored.get(key) != Some(value) {
            problems.push(format!("{what}.{key}: sent {value}, stored {:?}", stored.get(key)));
        }
    }
}

/// The fields of a kept call, against its row.
fn check_row(call: &Value, row: &Row, wire: &Value, sent_at_sent: bool, problems: &mut Vec<String>) {
    let id = call["messageId"].as_str().unwrap();
    let call_type = call["type"].as_str().unwrap();
    let at = format!("{id} ({})", row.file);
    if row.call_type != call_type {
        problems.push(format!("{at}: a {call_type} call is in a {} file", row.call_type));
    }
    let mut expect_text = |column: &str, want: Option<&str>| {
        if row.text(column) != want {
            problems.push(format!("{at}: {column} is {:?}, sent {want:?}", row.cell(column)));
        }
    };
    expect_text("user_id", call["userId"].as_str());
    // The Python SDKs send `"anonymousId": null`: no anonymous id.
    expect_text("anonymous_id", call["anonymousId"].as_str());
    match call_type {
        "track" => {
            let event = call["event"].as_str().unwrap();
            expect_text("event_text", Some(event));
            expect_text("event", Some(&slug(event)));
        }
        "page" | "screen" => expect_text("name", call["name"].as_str()),
        "group" => {
            expect_text("group_id", call["groupId"].as_str());
            expect_text("object_type_id", Some("1"));
        }
        "alias" => expect_text("previous_id", call["previousId"].as_str()),
        _ => {}
    }
    let element = &wire["element"];
    for field in ["properties", "traits"] {
        if call.get(field).is_none() {
            continue;
        }
        let stored = row.json(field);
        check_subset(&call[field], stored, &format!("{at}: {field}"), problems);
        if let Some(pad) = call.get("pad") {
            let length = pad["length"].as_u64().unwrap() as usize;
            let blob = stored.and_then(|s| s["blob"].as_str());
            if blob.map(str::len) != Some(length) || !blob.unwrap().bytes().all(|b| b == b'x') {
                problems.push(format!("{at}: {field}.blob is not the {length} x's sent"));
            }
        }
        // Exactly what went out, when the driver kept it (not for padded calls).
        if !element.is_null() && stored != element.get(field) {
            problems.push(format!("{at}: {field} stored {stored:?}, sent {}", element[field]));
        }
    }
    if let Some(context) = call.get("context") {
        check_subset(context, row.json("context"), &format!("{at}: context"), problems);
    }
    if !wire["library"].is_null() && row.json("context").map(|c| &c["library"]) != Some(&wire["library"]) {
        problems.push(format!("{at}: context.library is not the SDK's {}", wire["library"]));
    }
    // The SDK's timestamp (Python: `+00:00`) is the original timestamp; the corrected
    // one lies a little before receivedAt.
    // sentAt is stored when the SDK sent one (the Python SDKs and Segment's Node SDK
    // put it on the batch; Customer.io's Node SDK sends none); without it the
    // timestamp is the client's own.
    let received = row.time("received_at");
    if received.is_none() || row.time("sent_at").is_some() != sent_at_sent {
        problems.push(format!(
            "{at}: received_at {:?}, sent_at {:?} (the SDK sent {})",
            row.cell("received_at"),
            row.cell("sent_at"),
            if sent_at_sent { "one" } else { "none" }
        ));
    }
    if !sent_at_sent && row.time("timestamp") != row.time("original_timestamp") {
        problems.push(format!("{at}: without sentAt the timestamp is not the client's"));
    }
    match wire["timestamp"].as_str() {
        Some(sent) if row.time("original_timestamp") != Some(micros(sent, &at)) => problems.push(format!(
            "{at}: original_timestamp {:?}, the SDK sent {sent}",
            row.cell("original_timestamp")
        )),
        _ => {}
    }
    match (row.time("timestamp"), received) {
        (Some(t), Some(r)) if t <= r && r - t < 60_000_000 => {}
        (t, r) => problems.push(format!("{at}: timestamp {t:?} is not shortly before received_at {r:?}")),
    }
}

/// Whether the SDK told its caller about an error, and the text of what it said.
fn reported_errors(out: &Value) -> (bool, String) {
    let reported = &out["reported"];
    let any = reported["error_count"].as_u64().unwrap_or(0) > 0
        || reported["callback_errors"].as_u64().unwrap_or(0) > 0
        || reported["per_call"]
            .as_object()
            .is_some_and(|calls| calls.values().any(|v| v.as_str().is_some_and(|s| s.starts_with("error"))));
    (any, reported.to_string())
}

/// The position of a call in the batch of the request that carried it.
fn batch_index(out: &Value, id: &str, wire: &Value) -> Option<usize> {
    let request = wire["request"].as_u64()? as usize;
    out["http"][request]["messageIds"].as_array()?.iter().position(|m| m == id)
}

/// Whether an answer's `errors` are the bad calls, by index and code. The drivers
/// keep the first 500 characters of an answer: a longer one is checked as far as it
/// goes (the entries that are whole, at least one).
fn answer_names(text: &str, bad: &BTreeMap<usize, String>) -> bool {
    if let Ok(answer) = serde_json::from_str::<Value>(text) {
        let errors = answer["errors"].as_array().map(Vec::as_slice).unwrap_or_default();
        let answered: Option<BTreeMap<usize, String>> = errors
            .iter()
            .map(|e| Some((e["index"].as_u64()? as usize, e["code"].as_str()?.to_owned())))
            .collect();
        return answered.as_ref() == Some(bad);
    }
    let whole: BTreeMap<usize, String> = text
        .split(r#"{"index":"#)
        .skip(1)
        .filter_map(|entry| {
            let (index, rest) = entry.split_once(',')?;
            let (code, _) = rest.strip_prefix(r#""code":""#)?.split_once('"')?;
            Some((index.parse().ok()?, code.to_owned()))
        })
        .collect();
    text.chars().count() >= 500 && !whole.is_empty() && whole.iter().all(|(i, code)| bad.get(i) == Some(code))
}

/// Checks one driver run against the bucket and the rejected-calls file.
fn check_outcome(
    outcome: &Outcome,
    rows: &HashMap<&str, Vec<&Row>>,
    rejected: &HashMap<String, Vec<&Value>>,
    problems: &mut Vec<String>,
) {
    let Outcome { run, out } = outcome;
    let label = run.label();
    let mut p: Vec<String> = Vec::new();
    let calls = out["calls"].as_array().unwrap();
    let http = out["http"].as_array().unwrap();
    let statuses: Vec<u64> = http.iter().map(|h| h["status"].as_u64().unwrap_or(0)).collect();
    let (error_reported, reported) = reported_errors(out);

    if (out["sdk"].as_str(), out["lang"].as_str(), out["scenario"].as_str(), out["strict_mode"].as_bool())
        != (Some(run.sdk.name), Some(run.sdk.lang.name()), Some(run.scenario), Some(run.strict))
    {
        p.push(format!("the driver ran something else: {} {} {}", out["sdk"], out["lang"], out["scenario"]));
    }
    if http.is_empty() {
        p.push("no HTTP request was made".into());
    }
    for (i, h) in http.iter().enumerate() {
        if let Some(error) = h.get("error") {
            p.push(format!("HTTP attempt {i} failed on the client side: {error}"));
        }
        if !h["url"].as_str().is_some_and(|u| u.ends_with("/v1/batch")) {
            p.push(format!("HTTP attempt {i} went to {}", h["url"]));
        }
        if run.strict && h["strict_header"] != "1" {
            p.push(format!("HTTP attempt {i} lacks X-Strict-Mode: 1"));
        }
        if h["gzip"].as_bool() != Some(run.gzip) {
            p.push(format!("HTTP attempt {i}: gzip {}, want {}", h["gzip"], run.gzip));
        }
    }
    // The Python SDKs read `payload['code']` and `payload['message']` from any JSON
    // answer other than 200: an error body without them is a KeyError in the SDK.
    if reported.contains("KeyError") {
        p.push(format!("the SDK reported a KeyError: {reported}"));
    }

    // ---- each call ------------------------------------------------------------------
    for call in calls {
        let id = call["messageId"].as_str().unwrap();
        let expect = call["expect"].as_str().unwrap();
        let reason = call["reason"].as_str().unwrap_or_default();
        let wire = &call["wire"];
        let hits = rows.get(id).map_or(&[][..], Vec::as_slice);
        let dropped = rejected.get(id).map_or(&[][..], Vec::as_slice);
        let in_requests =
            http.iter().filter(|h| h["messageIds"].as_array().is_some_and(|m| m.contains(&json!(id))));
        match expect {
            "kept" => match hits {
                [row] => {
                    let request = wire["request"].as_u64().map(|r| &http[r as usize]);
                    let sent_at_sent = !wire["element"]["sentAt"].is_null()
                        || request.is_some_and(|h| {
                            h["top_level_keys"].as_array().is_some_and(|k| k.contains(&json!("sentAt")))
                        });
                    check_row(call, row, wire, sent_at_sent, &mut p);
                }
                _ => p.push(format!("{id} ({reason}) is in the bucket {} times, want once", hits.len())),
            },
            "rejected" | "dropped_by_sdk" if !hits.is_empty() => {
                p.push(format!("{id} ({expect}: {reason}) is in the bucket {} times", hits.len()));
            }
            "rejected" | "dropped_by_sdk" => {}
            other => p.push(format!("{id}: unknown expectation {other}")),
        }
        if expect == "dropped_by_sdk" {
            // Only what the README says the SDKs refuse: a track without event, and
            // (Python) the call over 32 KiB.
            if !(reason.starts_with("missing event") || reason.starts_with("over 32 KiB")) {
                p.push(format!("the SDK refused {id} ({reason}): {}", call["sdk_error"]));
            }
            if !wire.is_null() || in_requests.count() > 0 {
                p.push(format!("{id} was dropped by the SDK but went out"));
            }
        }
        let permissive_reject = expect == "rejected" && run.scenario == "mixed" && !run.strict;
        if permissive_reject {
            let want_code = expected_code(reason);
            let want_index = batch_index(out, id, wire);
            match dropped {
                [line] => {
                    if line["code"].as_str() != want_code
                        || line["index"].as_u64().map(|i| i as usize) != want_index
                        || line["type"] != call["type"]
                        || line["route"] != "/v1/batch"
                        || line["reason"].as_str().is_none_or(str::is_empty)
                    {
                        let mut line = (*line).clone();
                        line["call"] = json!("…");
                        p.push(format!(
                            "{id} ({reason}): rejected-calls line {line}, want code {want_code:?} index {want_index:?}"
                        ));
                    }
                    // The call as the client sent it: no receivedAt, no batch fields merged.
                    let as_sent = &wire["element"];
                    if (!as_sent.is_null() && line["call"] != *as_sent)
                        || line["call"].to_string().len() as u64
                            != wire["compact_bytes"].as_u64().unwrap_or(0)
                    {
                        p.push(format!("{id}: the rejected-calls file does not hold the call as sent"));
                    }
                }
                _ => p.push(format!(
                    "{id} ({reason}) is in the rejected-calls file {} times, want once",
                    dropped.len()
                )),
            }
        } else if !dropped.is_empty() {
            p.push(format!("{id} ({expect}: {reason}) is in the rejected-calls file"));
        }
    }

    // ---- each scenario ----------------------------------------------------------------------
    let attempts_per_call: Vec<u64> =
        out["http_attempts_per_call"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).collect();
    let sent: Vec<&str> =
        calls.iter().filter(|c| !c["wire"].is_null()).map(|c| c["messageId"].as_str().unwrap()).collect();
    match (run.scenario, run.strict) {
        ("calls", _) | ("bearer", _) => {
            let types: BTreeSet<&str> = calls.iter().map(|c| c["type"].as_str().unwrap()).collect();
            if run.scenario == "calls" && types.len() != 6 {
                p.push(format!("the calls scenario sent types {types:?}, want all six"));
            }
            if calls.iter().any(|c| c["expect"] != "kept") {
                p.push("a call of a valid scenario is not expected kept".into());
            }
            if statuses.iter().any(|s| *s != 200) || attempts_per_call.iter().any(|a| *a != 1) {
                p.push(format!(
                    "statuses {statuses:?}, attempts per call {attempts_per_call:?}; want 200, once each"
                ));
            }
            if error_reported {
                p.push(format!("the SDK reported an error: {reported}"));
            }
            if run.scenario == "bearer" {
                let scheme = if run.is_customerio_python() { "Bearer" } else { "Basic" };
                if run.is_customerio_python() && out["auth_scheme_expected"] != "Bearer" {
                    p.push(format!("auth_scheme_expected {} for a pk_us_ key", out["auth_scheme_expected"]));
                }
                for h in http {
                    if h["auth_scheme"] != scheme || h["auth_key"] != BEARER_KEY {
                        p.push(format!(
                            "sent auth {} {}, want {scheme} {BEARER_KEY}",
                            h["auth_scheme"], h["auth_key"]
                        ));
                    }
                }
            }
        }
        ("mixed", strict) => {
            // One request, valid and invalid calls together.
            if http.len() != 1 || sent.is_empty() {
                p.push(format!("the mixed batch went in {} HTTP requests, want 1", http.len()));
            }
            let request = &http[0];
            let in_request: Vec<&str> =
                request["messageIds"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
            if in_request != sent {
                p.push(format!("the one request carried {in_request:?}, the calls sent were {sent:?}"));
            }
            if attempts_per_call.iter().any(|a| *a != 1) {
                p.push(format!("attempts per call {attempts_per_call:?}: a call was retried"));
            }
            // The bad calls, by their position in the batch, with the code the
            // collector should give them.
            let bad: BTreeMap<usize, String> = calls
                .iter()
                .filter(|c| !c["wire"].is_null())
                .filter_map(|c| {
                    let code = expected_code(c["reason"].as_str().unwrap_or_default())?;
                    Some((batch_index(out, c["messageId"].as_str().unwrap(), &c["wire"])?, code.to_owned()))
                })
                .collect();
            if bad.is_empty() {
                p.push("the mixed batch sent no invalid call".into());
            }
            let response_text = request["response"].as_str().unwrap_or_default();
            let names_bad = answer_names(response_text, &bad);
            if !strict {
                if statuses != [200] || error_reported {
                    p.push(format!("statuses {statuses:?}, reported {reported}; want 200 and no error"));
                }
                if !response_text.starts_with(r#"{"success":true"#) || !names_bad {
                    p.push(format!("answered {response_text}, want success with errors at {bad:?}"));
                }
                // A call under 32 KiB as sent, over it once receivedAt is added: kept.
                let near = calls.iter().find(|c| c["messageId"].as_str().unwrap().ends_with("-near32k"));
                match near.map(|c| (&c["expect"], c["wire"]["compact_bytes"].as_u64(), &c["wire"])) {
                    Some((expect, Some(bytes), wire))
                        if expect == "kept"
                            && bytes <= MAX_CALL_BYTES
                            && wire["compact_bytes_plus_receivedAt"].as_u64().unwrap() > MAX_CALL_BYTES => {}
                    other => p.push(format!("no near-32 KiB call was sent and expected kept: {other:?}")),
                }
                if run.sdk.lang == Lang::Node {
                    // The Node SDKs let the call of exactly 32 KiB and the one over it through.
                    for (suffix, bytes, expect) in
                        [("-at32k", MAX_CALL_BYTES, "kept"), ("-over32k", MAX_CALL_BYTES + 1, "rejected")]
                    {
                        let call = calls.iter().find(|c| c["messageId"].as_str().unwrap().ends_with(suffix));
                        if call.map(|c| (c["wire"]["compact_bytes"].as_u64(), c["expect"].as_str()))
                            != Some((Some(bytes), Some(expect)))
                        {
                            p.push(format!(
                                "the {suffix} call was not sent at {bytes} bytes, expected {expect}"
                            ));
                        }
                    }
                }
            } else {
                // Strict: 400 once (no retry of a 400), the bad indexes named, nothing kept
                // (every call is expected `rejected`, checked above).
                if statuses != [400] {
                    p.push(format!("strict statuses {statuses:?}, want one 400"));
                }
                if !error_reported || !reported.contains("400") {
                    p.push(format!("the SDK did not report the 400: {reported}"));
                }
                if calls.iter().any(|c| c["expect"] == "kept") {
                    p.push("a call of the strict batch is expected kept".into());
                }
                let first = bad.keys().next().copied().unwrap_or_default();
                let named_first = response_text.starts_with(r#"{"code":"invalid_calls","message":""#)
                    && response_text.contains(&format!("the first, call {first}:"));
                if !named_first || !names_bad {
                    p.push(format!("strict answer {response_text}, want invalid_calls naming {bad:?}"));
                }
                if run.sdk.lang == Lang::Python {
                    let errors = out["reported"]["errors"].as_array().unwrap();
                    if errors.len() != 1 || errors[0]["status"] != 400 || errors[0]["code"] != "invalid_calls"
                    {
                        p.push(format!("on_error got {errors:?}, want one APIError 400 invalid_calls"));
                    }
                }
            }
        }
        ("wrong_key", _) => {
            if statuses.is_empty() || statuses.iter().any(|s| *s != 401) {
                p.push(format!("wrong key answered {statuses:?}, want 401"));
            }
            if http.iter().any(|h| h["auth_key"] != "wrong-key") {
                p.push("a wrong_key attempt did not send the wrong key".into());
            }
            if !error_reported || !reported.contains("401") {
                p.push(format!("the SDK did not report the 401: {reported}"));
            }
            if run.sdk.lang == Lang::Python {
                let errors = out["reported"]["errors"].as_array().unwrap();
                if errors.is_empty()
                    || errors.iter().any(|e| e["status"] != 401 || e["code"] != "unauthorized")
                {
                    p.push(format!("on_error got {errors:?}, want APIError 401 unauthorized"));
                }
            }
        }
        (other, _) => p.push(format!("unknown scenario {other}")),
    }
    problems.extend(p.into_iter().map(|text| format!("{label}: {text}")));
}

async fn sdks_against_the_collector(format: FileFormat) {
    require_sdks();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let collector = start_collector(
        dir.path(),
        format,
        |w| w,
        |mut c| {
            c.write_keys.push(BEARER_KEY.to_owned());
            c
        },
    )
    .await;
    let url = collector.url("");
    let unique = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
        ^ u64::from(std::process::id());
    let base = format!("{}{:x}", format.extension(), unique & 0xff_ffff_ffff);

    let runs = plan(format);
    let handles: Vec<_> = runs
        .into_iter()
        .map(|run| {
            let (url, run_id) = (url.clone(), run.run_id(&base));
            tokio::spawn(async move {
                let _slot = SLOTS.acquire().await.unwrap();
                tokio::task::spawn_blocking(move || drive(&run, &url, &run_id)).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for handle in handles {
        match handle.await.unwrap() {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let driven = started.elapsed();

    // Every HTTP answer the drivers saw was counted by the collector, and nothing
    // more: in particular one 400 per strict run (no SDK retried a 400).
    let http = client();
    let scrape = http.get(collector.url("/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let scrape = scrape.text().await.unwrap();
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for outcome in &outcomes {
        for h in outcome.out["http"].as_array().unwrap() {
            *seen.entry(h["status"].as_u64().unwrap_or(0)).or_default() += 1;
        }
    }
    let strict_runs = outcomes.iter().filter(|o| o.run.strict).count();
    assert_eq!(strict_runs, SDKS.len());
    let mut problems = Vec::new();
    let batch_400 = metric(&scrape, r#"cdp_collector_requests_total{route="/v1/batch",status="400"}"#);
    if batch_400 != strict_runs as f64 {
        problems.push(format!("the collector answered {batch_400} batches with 400, want {strict_runs}"));
    }
    for status in [200, 400, 401] {
        let series = format!(r#"cdp_collector_requests_total{{route="/v1/batch",status="{status}"}}"#);
        let counted = metric(&scrape, &series);
        let observed = seen.remove(&status).unwrap_or(0);
        if counted != observed as f64 {
            problems.push(format!("{series} is {counted}, the SDKs saw {observed} answers {status}"));
        }
    }
    if !seen.is_empty() {
        problems.push(format!("the SDKs saw other answers (status: count, 0 = none): {seen:?}"));
    }

    // Publishes the open window (the only one, unless the run crossed a window's end).
    collector.shutdown().await;
    let rows = read_bucket(&dir.path().join("bucket"), format);
    let lines = rejected_lines(dir.path());

    let mut by_id: HashMap<&str, Vec<&Row>> = HashMap::new();
    for row in &rows {
        match row.text("id") {
            Some(id) => by_id.entry(id).or_default().push(row),
            None => problems.push(format!("a row of {} has no id", row.file)),
        }
    }
    let mut rejected: HashMap<String, Vec<&Value>> = HashMap::new();
    for line in &lines {
        match line["call"]["messageId"].as_str() {
            Some(id) => rejected.entry(id.to_owned()).or_default().push(line),
            None => problems.push(format!("a rejected-calls line without a messageId: {}", line["code"])),
        }
    }
    for outcome in &outcomes {
        check_outcome(outcome, &by_id, &rejected, &mut problems);
    }
    // Nothing else is in the bucket or the rejected-calls file.
    let described: BTreeSet<&str> = outcomes
        .iter()
        .flat_map(|o| o.out["calls"].as_array().unwrap())
        .map(|c| c["messageId"].as_str().unwrap())
        .collect();
    for id in by_id.keys().copied().chain(rejected.keys().map(String::as_str)) {
        if !described.contains(id) {
            problems.push(format!("{id} is stored but no driver sent it"));
        }
    }
    let kept =
        outcomes.iter().flat_map(|o| o.out["calls"].as_array().unwrap()).filter(|c| c["expect"] == "kept");
    let kept = kept.count();
    if rows.len() != kept {
        problems.push(format!("{} rows in the bucket, {kept} calls expected kept", rows.len()));
    }

    eprintln!(
        "{format}: {} driver runs in {driven:.1?}, {} rows, {} rejected calls, {:.1?} in all",
        outcomes.len(),
        rows.len(),
        lines.len(),
        started.elapsed()
    );
    if !problems.is_empty() {
        // What the drivers with a problem printed (without the bulky parts).
        let details: Vec<String> = outcomes
            .iter()
            .filter(|o| problems.iter().any(|p| p.starts_with(&format!("{}: ", o.run.label()))))
            .map(|o| {
                let mut out = o.out.clone();
                for call in out["calls"].as_array_mut().unwrap() {
                    let call = call.as_object_mut().unwrap();
                    call.remove("context");
                    if let Some(wire) = call.get_mut("wire").and_then(Value::as_object_mut) {
                        wire.remove("element");
                    }
                }
                let text = out.to_string();
                let cut = text.char_indices().nth(6000).map_or(text.len(), |(i, _)| i);
                format!("{}: {}", o.run.label(), &text[..cut])
            })
            .collect();
        panic!(
            "{format}: {} problems:\n- {}\n\nwhat the drivers printed:\n{}",
            problems.len(),
            problems.join("\n- "),
            details.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sdks_to_json() {
    sdks_against_the_collector(FileFormat::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sdks_to_csv() {
    sdks_against_the_collector(FileFormat::Csv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_sdks_to_parquet() {
    sdks_against_the_collector(FileFormat::Parquet).await;
}

//! End to end against the Snowflake test front (`crates/source/tests/snowflake/front.py`:
//! fakesnow behind key-pair JWT checks, answering in Snowflake's JSON result format),
//! started by `bash .ci/test`, which sets `CDP_TEST_SNOWFLAKE_URL`.
//!
//! Every example query of Customer.io's Snowflake reverse-ETL reference (identify, its
//! `COALESCE` and `CASE` variants, the `IFF` boolean conversion, the lower-case `AS
//! "…"` aliases, track, group, group with `OBJECT_CONSTRUCT` relationship attributes,
//! page, screen, alias) and the semantic events run as written (only the tables are
//! ours) through what `reverse_etl --config FILE once` does: a TOML file, a
//! [`Runner`], every enabled sync run once. Each sync delivers once into an NDJSON file
//! and once into the HTTP destination on loopback; both must carry the same calls, and
//! each call is checked field by field, upper-case names included: unquoted aliases
//! arrive upper-case from Snowflake (`EMAIL AS email` is the trait `EMAIL`), reserved
//! fields match them without regard to case (`USERID` sets `userId`).
//!
//! Each test logs in as a user of its own, registered with the front, in a database of
//! its own, so the tests run in parallel (with each other and with other users of the
//! same front).
#![cfg(feature = "snowflake")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use cdp_bucket::{Clock, ManualClock};
use cdp_source::{SnowflakeOptions, SnowflakeSource, Source};
use cdp_sync::{Config, Outcome, RunRecord, Runner, RunnerError};
use serde_json::{Value, json};

const API_KEY: &str = "e2e-api-key";

/// The first run's start: `{{last_sync_time}}` is 0 in it, and the start of the last
/// successful run after it.
const FIRST_RUN: &str = "2026-11-23T10:00:00.000Z";
/// Unix seconds of [`FIRST_RUN`].
const FIRST_RUN_SECS: i64 = 1_795_428_000;
/// The rows' change times (Unix seconds, compared with `{{last_sync_time}}`): before
/// the first run.
const CHANGED: i64 = 1_795_420_000;

fn front_url() -> String {
    std::env::var("CDP_TEST_SNOWFLAKE_URL").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_SNOWFLAKE_URL is not set: these tests need the Snowflake test front \
             (crates/source/tests/snowflake/front.py) that `bash .ci/test` installs and starts on \
             loopback. Run them with `bash .ci/test`, or start the front yourself (see \
             crates/source/tests/snowflake/README.md) and export CDP_TEST_SNOWFLAKE_URL."
        )
    })
}

fn key_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../source/tests/data").join(name)
}

/// A name no other test (nor an earlier run against the same front) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("CDP_E2E_{prefix}_{}_{nanos}", std::process::id())
}

async fn control(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{}/_cdp_test{path}", front_url()));
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let answer = request.send().await.unwrap_or_else(|e| panic!("the front at {}: {e}", front_url()));
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// A user of the front with the test key, and a database of its own (fakesnow creates
/// it at login) holding the tables the reference queries read.
struct Warehouse {
    user: String,
    database: String,
    /// The tables are written through the source itself: the front runs any SQL, and
    /// only the runner checks that a sync's query is read-only.
    admin: SnowflakeSource,
}

impl Warehouse {
    async fn new(test: &str) -> Warehouse {
        let user = unique(test);
        let database = user.clone();
        let pem = std::fs::read_to_string(key_file("snowflake-key.pub")).unwrap();
        let answer =
            control(reqwest::Method::POST, "/users", Some(json!({"user": user, "public_key_pem": pem})))
                .await;
        assert_eq!(answer["fingerprints"], json!(["SHA256:VJko0EMUB8hCv9GV4Shi3rvtPMfkVxu7DcCOkElxIho="]));
        let options = SnowflakeOptions::new("TESTACCOUNT", &user)
            .private_key_pem(std::fs::read_to_string(key_file("snowflake-key.p8")).unwrap())
            .database(&database)
            .schema("PUBLIC")
            .base_url(front_url());
        let admin = SnowflakeSource::new("admin", options).unwrap();
        Warehouse { user, database, admin }
    }

    /// Runs each statement.
    async fn sql(&self, statements: &[&str]) {
        for sql in statements {
            let mut rows = self.admin.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            while let Some(row) = rows.next().await {
                row.unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// The `[sources.snowflake]` table of a configuration.
    fn source(&self) -> String {
        format!(
            r#"[sources.snowflake]
kind = "snowflake"
account = "testaccount"
user = "{user}"
role = "CUSTOMERIO_REVERSE_ETL"
warehouse = "CUSTOMERIO_REVERSE_ETL"
database = "{database}"
schema = "PUBLIC"
private_key_path = "{key}"
statement_timeout = "2m"
base_url = "{url}"
"#,
            user = self.user,
            database = self.database,
            key = key_file("snowflake-key.p8").display(),
            url = front_url(),
        )
    }
}

/// One `[[syncs]]` entry.
struct Sync {
    name: &'static str,
    call_type: &'static str,
    query: &'static str,
}

/// A configuration file: the Snowflake source, `destination`, the syncs.
fn config_file(warehouse: &Warehouse, destination: &str, syncs: &[Sync]) -> String {
    let mut text =
        format!("state_dir = \"state\"\n\n{}\n[destinations.out]\n{destination}\n", warehouse.source());
    for sync in syncs {
        assert!(!sync.query.contains("'''"));
        text.push_str(&format!(
            "\n[[syncs]]\nname = \"{}\"\ntype = \"{}\"\nsource = \"snowflake\"\ndestination = \"out\"\nevery = \"1h\"\n",
            sync.name, sync.call_type
        ));
        text.push_str("query = '''");
        text.push_str(sync.query);
        text.push_str("'''\n");
    }
    text
}

/// What `reverse_etl --config FILE once` does (examples/reverse_etl.rs): reads the
/// file (secrets from the environment: here only the API key), sets up the runner,
/// runs every enabled sync once in file order, shuts the runner down.
async fn reverse_etl_once(file: &Path, at: &str) -> Result<Vec<RunRecord>, RunnerError> {
    let text = std::fs::read_to_string(file).unwrap();
    let env = |name: &str| (name == "CDP_E2E_API_KEY").then(|| API_KEY.to_owned());
    let config = Config::parse(&text, file.parent().unwrap(), &env).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at.parse().unwrap()));
    let runner = Runner::new(config, clock).await?;
    let mut records = Vec::new();
    for sync in runner.config().syncs.clone() {
        if runner.is_enabled(&sync.name)? {
            records.push(runner.run(&sync.name).await?.record);
        }
    }
    runner.shutdown().await?;
    Ok(records)
}

/// A request the loopback API got.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A loopback HTTP server standing in for the ingestion API: takes every request
/// with `200 {"success":true}` and keeps it. Returns the API's base URL.
fn ingestion_api(requests: Arc<Mutex<Vec<Request>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                continue;
            }
            let mut parts = request_line.split_whitespace();
            let (method, target) =
                (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
            let mut headers = BTreeMap::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
            let length: usize = headers.get("content-length").map(|v| v.parse().unwrap()).unwrap_or(0);
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            requests.lock().unwrap().push(Request { method, target, headers, body });
            let answer = r#"{"success":true}"#;
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    base_url
}

/// The same syncs twice: into an NDJSON file, and into the HTTP destination on
/// loopback; each with its own state directory, kept between runs.
struct Pipeline {
    ndjson: tempfile::TempDir,
    http: tempfile::TempDir,
    requests: Arc<Mutex<Vec<Request>>>,
    syncs: Vec<&'static str>,
    ndjson_seen: usize,
    requests_seen: usize,
}

/// One `once` of both pipelines.
#[derive(Debug)]
struct Once {
    /// The run records, in sync order (the NDJSON pipeline's; the HTTP one's match).
    runs: Vec<RunRecord>,
    /// The calls each sync delivered, in row order (the same through both).
    calls: BTreeMap<&'static str, Vec<Value>>,
    /// Each sync's row-error CSV, when it had row errors (the same through both).
    row_errors: BTreeMap<&'static str, Vec<Vec<String>>>,
    /// The NDJSON lines this run appended, as written.
    lines: Vec<String>,
}

impl Pipeline {
    fn new(warehouse: &Warehouse, syncs: &[Sync]) -> Pipeline {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let base_url = ingestion_api(requests.clone());
        let ndjson = tempfile::tempdir().unwrap();
        let http = tempfile::tempdir().unwrap();
        let to_file = "kind = \"ndjson\"\npath = \"calls.ndjson\"";
        std::fs::write(ndjson.path().join("reverse_etl.toml"), config_file(warehouse, to_file, syncs))
            .unwrap();
        let to_api = format!("kind = \"http\"\nbase_url = \"{base_url}\"\napi_key_env = \"CDP_E2E_API_KEY\"");
        std::fs::write(http.path().join("reverse_etl.toml"), config_file(warehouse, &to_api, syncs)).unwrap();
        Pipeline {
            ndjson,
            http,
            requests,
            syncs: syncs.iter().map(|s| s.name).collect(),
            ndjson_seen: 0,
            requests_seen: 0,
        }
    }

    /// `reverse_etl once` through both destinations, at `at`; the calls delivered by
    /// this run, checked to be the same through both.
    async fn once(&mut self, at: &str) -> Once {
        let runs = reverse_etl_once(&self.ndjson.path().join("reverse_etl.toml"), at).await.unwrap();
        let http_runs = reverse_etl_once(&self.http.path().join("reverse_etl.toml"), at).await.unwrap();
        assert_eq!(runs.len(), self.syncs.len());
        for (file, api) in runs.iter().zip(&http_runs) {
            assert_eq!(file.outcome, Outcome::Succeeded, "{file:?}");
            assert_eq!(api.outcome, Outcome::Succeeded, "{api:?}");
            assert_eq!(
                (
                    &file.sync,
                    file.run,
                    file.last_sync_time,
                    file.rows_read,
                    file.calls_delivered,
                    file.row_errors
                ),
                (&api.sync, api.run, api.last_sync_time, api.rows_read, api.calls_delivered, api.row_errors)
            );
        }

        // The NDJSON file: the lines this run appended.
        let text = std::fs::read_to_string(self.ndjson.path().join("calls.ndjson")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let lines: Vec<String> = lines[self.ndjson_seen..].iter().map(|l| (*l).to_owned()).collect();
        self.ndjson_seen += lines.len();
        let from_file: Vec<Value> =
            lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();

        // The API: every request a batch, as the ingestion API takes it.
        let requests: Vec<Request> = self.requests.lock().unwrap()[self.requests_seen..].to_vec();
        self.requests_seen += requests.len();
        let basic =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:")));
        let mut from_api = Vec::new();
        for request in &requests {
            assert_eq!((request.method.as_str(), request.target.as_str()), ("POST", "/v1/batch"));
            assert_eq!(request.headers.get("authorization"), Some(&basic));
            assert_eq!(request.headers.get("x-strict-mode").map(String::as_str), Some("1"));
            assert_eq!(request.headers.get("content-type").map(String::as_str), Some("application/json"));
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let body = body.as_object().unwrap();
            assert_eq!(body.keys().collect::<Vec<_>>(), ["batch"], "{body:?}");
            from_api.extend(body["batch"].as_array().unwrap().iter().cloned());
        }
        // Same sync names, same clock: the same calls, message ids included.
        assert_eq!(from_file, from_api, "the NDJSON file and the API got different calls");
        let delivered: u64 = runs.iter().map(|r| r.calls_delivered).sum();
        assert_eq!(from_file.len() as u64, delivered);

        // The calls of each sync, in run order.
        let mut calls = BTreeMap::new();
        let mut rest = from_file.into_iter();
        let mut row_errors = BTreeMap::new();
        for ((name, run), http_run) in self.syncs.iter().zip(&runs).zip(&http_runs) {
            assert_eq!(&run.sync, name);
            calls.insert(*name, rest.by_ref().take(run.calls_delivered as usize).collect());
            match (&run.row_errors_file, &http_run.row_errors_file) {
                (Some(file), Some(http_file)) => {
                    let rows = read_csv(file);
                    assert_eq!(rows, read_csv(http_file));
                    assert_eq!(rows.len() as u64, run.row_errors);
                    row_errors.insert(*name, rows);
                }
                (None, None) => assert_eq!(run.row_errors, 0),
                other => panic!("{other:?}"),
            }
        }
        Once { runs, calls, row_errors, lines }
    }
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    assert_eq!(reader.headers().unwrap(), vec!["row_number", "column", "code", "reason", "values"]);
    reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect()
}

/// Checks `got` against `want` field by field (naming the first field that differs),
/// after checking and taking out its `messageId`: a ULID, unique among `got`.
fn check_calls(sync: &str, got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len(), "{sync}: {} calls, want {}: {got:#?}", got.len(), want.len());
    let mut ids = std::collections::BTreeSet::new();
    for (i, (call, want)) in got.iter().zip(want).enumerate() {
        let mut call = call.clone();
        let id = call.as_object_mut().unwrap().remove("messageId").expect("a messageId");
        let id = id.as_str().unwrap().to_owned();
        let crockford = |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c));
        assert!(
            id.len() == 26 && id.chars().all(crockford) && id.as_str() <= "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "{sync} call {i}: messageId {id} is not a ULID"
        );
        assert!(ids.insert(id), "{sync}: message ids repeat");
        compare(&format!("{sync} call {i}"), &call, want);
    }
}

fn compare(path: &str, got: &Value, want: &Value) {
    match (got, want) {
        (Value::Object(got), Value::Object(want)) => {
            for (key, value) in want {
                let at = format!("{path}.{key}");
                compare(&at, got.get(key).unwrap_or_else(|| panic!("{at} is missing: {got:?}")), value);
            }
            for key in got.keys() {
                assert!(want.contains_key(key), "{path}.{key} is not expected: {got:?}");
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// Checks that the front ran each query as written, with `{{last_sync_time}}` as
/// `last_sync_time`, for this test's user: once per pipeline.
async fn check_queries_ran_as_written(warehouse: &Warehouse, syncs: &[Sync], last_sync_time: i64) {
    let log = control(reqwest::Method::GET, "/log", None).await;
    let log = log.as_array().unwrap();
    let sessions: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["path"] == "/session/v1/login-request" && e["body"]["LOGIN_NAME"] == warehouse.user.as_str()
        })
        .filter_map(|e| e.get("session"))
        .collect();
    let ran: Vec<&str> = log
        .iter()
        .filter(|e| {
            e["path"] == "/queries/v1/query-request"
                && e.get("session").is_some_and(|s| sessions.contains(&s))
        })
        .filter_map(|e| e["body"]["sqlText"].as_str())
        .collect();
    for sync in syncs {
        let sql = sync.query.replace("{{last_sync_time}}", &last_sync_time.to_string());
        let times = ran.iter().filter(|text| **text == sql).count();
        assert_eq!(times, 2, "{}: the front ran {sql:?} {times} times for {}", sync.name, warehouse.user);
    }
}

fn identify(user: &str, traits: Value, at: &str) -> Value {
    json!({"type": "identify", "userId": user, "traits": traits, "timestamp": at, "receivedAt": at})
}

// The reference's identify queries (“Identify”, “Identify people by email or ID”:
// COALESCE and CASE, “Convert boolean values …”: IFF, “Convert your column names from
// all caps”), as written.
const IDENTIFY: &str =
    "SELECT ID AS userId, EMAIL AS email, MSISDN AS phone, FNAME AS first_name, LNAME AS last_name
FROM users
WHERE TIMESTAMP >= {{last_sync_time}}";
const COALESCE: &str = r#"SELECT
  COALESCE(CAST(USER_ID AS VARCHAR), EMAIL) AS "userId",
  EMAIL AS "email",
  FIRST_NAME AS "first_name",
  LAST_NAME AS "last_name"
FROM users
WHERE LAST_UPDATED >= {{last_sync_time}}"#;
const CASE: &str = r#"SELECT
  CASE
    WHEN USER_ID IS NOT NULL THEN CAST(USER_ID AS VARCHAR)
    ELSE EMAIL
  END AS "userId",
  EMAIL AS "email",
  FIRST_NAME AS "first_name",
  LAST_NAME AS "last_name"
FROM users
WHERE LAST_UPDATED >= {{last_sync_time}}"#;
const IFF: &str = r#"SELECT
  ID AS "userId",
  IFF(IS_ACTIVE, 'true', 'false') AS "is_active"
FROM
  users
WHERE
  LAST_UPDATED >= {{last_sync_time}}"#;
const LOWER_CASE_ALIASES: &str = r#"SELECT ID AS "id", EMAIL AS "email", PRIMARY_PHONE AS "phone"
FROM people
WHERE LAST_UPDATED >= {{last_sync_time}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_queries_with_coalesce_case_iff_and_upper_case_names() {
    let warehouse = Warehouse::new("IDENTIFY").await;
    warehouse
        .sql(&[
            "CREATE TABLE users (ID NUMBER(38, 0), USER_ID NUMBER(38, 0), EMAIL VARCHAR, MSISDN VARCHAR, \
             FNAME VARCHAR, LNAME VARCHAR, FIRST_NAME VARCHAR, LAST_NAME VARCHAR, IS_ACTIVE BOOLEAN, \
             LAST_UPDATED NUMBER(38, 0), TIMESTAMP NUMBER(38, 0))",
            // A customer, a lead (no USER_ID yet), a customer without an email.
            &format!(
                "INSERT INTO users VALUES \
                 (1, 1001, 'ada@example.com', '+15550100001', 'Ada', 'Lovelace', 'Ada', 'Lovelace', TRUE, {c}, {c}), \
                 (2, NULL, 'lead@example.com', NULL, 'Lee', NULL, 'Lee', NULL, FALSE, {c}, {c}), \
                 (3, 1003, NULL, '+15550100003', 'Cy', 'Young', 'Cy', 'Young', NULL, {c}, {c})",
                c = CHANGED
            ),
            "CREATE TABLE people (ID NUMBER(38, 0), EMAIL VARCHAR, PRIMARY_PHONE VARCHAR, LAST_UPDATED NUMBER(38, 0))",
            &format!("INSERT INTO people VALUES (7, 'pat@example.com', '+15550100007', {CHANGED})"),
        ])
        .await;
    let syncs = [
        Sync { name: "identify", call_type: "identify", query: IDENTIFY },
        Sync { name: "identify_coalesce", call_type: "identify", query: COALESCE },
        Sync { name: "identify_case", call_type: "identify", query: CASE },
        Sync { name: "identify_iff", call_type: "identify", query: IFF },
        Sync { name: "identify_lower_case_aliases", call_type: "identify", query: LOWER_CASE_ALIASES },
    ];
    let mut pipeline = Pipeline::new(&warehouse, &syncs);
    let first = pipeline.once(FIRST_RUN).await;
    check_queries_ran_as_written(&warehouse, &syncs, 0).await;
    for run in &first.runs {
        assert_eq!((run.run, run.last_sync_time), (1, 0), "{run:?}");
    }
    let reads: Vec<(u64, u64, u64)> =
        first.runs.iter().map(|r| (r.rows_read, r.calls_delivered, r.row_errors)).collect();
    assert_eq!(reads, [(3, 3, 0), (3, 3, 0), (3, 3, 0), (3, 3, 0), (1, 0, 1)]);

    // Unquoted aliases arrive upper-case: USERID sets userId; EMAIL, PHONE, FIRST_NAME
    // and LAST_NAME stay upper-case traits. A NUMBER id becomes its decimal string.
    let at = FIRST_RUN;
    check_calls(
        "identify",
        &first.calls["identify"],
        &[
            identify(
                "1",
                json!({"EMAIL": "ada@example.com", "PHONE": "+15550100001", "FIRST_NAME": "Ada", "LAST_NAME": "Lovelace"}),
                at,
            ),
            identify(
                "2",
                json!({"EMAIL": "lead@example.com", "PHONE": null, "FIRST_NAME": "Lee", "LAST_NAME": null}),
                at,
            ),
            identify(
                "3",
                json!({"EMAIL": null, "PHONE": "+15550100003", "FIRST_NAME": "Cy", "LAST_NAME": "Young"}),
                at,
            ),
        ],
    );
    // Quoted aliases keep their case; the customer id when there is one, else the email.
    let by_id_or_email = [
        identify(
            "1001",
            json!({"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}),
            at,
        ),
        identify(
            "lead@example.com",
            json!({"email": "lead@example.com", "first_name": "Lee", "last_name": null}),
            at,
        ),
        identify("1003", json!({"email": null, "first_name": "Cy", "last_name": "Young"}), at),
    ];
    check_calls("identify_coalesce", &first.calls["identify_coalesce"], &by_id_or_email);
    check_calls("identify_case", &first.calls["identify_case"], &by_id_or_email);
    // IFF turns the BOOLEAN into the strings 'true' / 'false' (a NULL is 'false').
    check_calls(
        "identify_iff",
        &first.calls["identify_iff"],
        &[
            identify("1", json!({"is_active": "true"}), at),
            identify("2", json!({"is_active": "false"}), at),
            identify("3", json!({"is_active": "false"}), at),
        ],
    );
    // `ID AS "id"` is not `userId`: the row cannot become an identify call, and is a row
    // error with its values, as Snowflake returned them.
    let errors = &first.row_errors["identify_lower_case_aliases"];
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0][0].as_str(), errors[0][1].as_str(), errors[0][2].as_str()),
        ("1", "", "missing_identity")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&errors[0][4]).unwrap(),
        json!({"id": 7, "email": "pat@example.com", "phone": "+15550100007"})
    );
    assert!(first.calls["identify_lower_case_aliases"].is_empty());

    // The next run reads only what changed since the first run started.
    warehouse
        .sql(&[&format!(
            "INSERT INTO users VALUES (4, 1004, 'new@example.com', NULL, 'Nu', 'Comer', 'Nu', 'Comer', TRUE, {c}, {c})",
            c = FIRST_RUN_SECS + 300
        )])
        .await;
    let at = "2026-11-23T11:00:00.000Z";
    let second = pipeline.once(at).await;
    for run in &second.runs {
        assert_eq!((run.run, run.last_sync_time), (2, FIRST_RUN_SECS), "{run:?}");
    }
    let reads: Vec<u64> = second.runs.iter().map(|r| r.rows_read).collect();
    assert_eq!(reads, [1, 1, 1, 1, 0]);
    check_queries_ran_as_written(&warehouse, &syncs, FIRST_RUN_SECS).await;
    let nu = json!({"email": "new@example.com", "first_name": "Nu", "last_name": "Comer"});
    check_calls(
        "identify",
        &second.calls["identify"],
        &[identify(
            "4",
            json!({"EMAIL": "new@example.com", "PHONE": null, "FIRST_NAME": "Nu", "LAST_NAME": "Comer"}),
            at,
        )],
    );
    check_calls("identify_coalesce", &second.calls["identify_coalesce"], &[identify("1004", nu.clone(), at)]);
    check_calls("identify_case", &second.calls["identify_case"], &[identify("1004", nu, at)]);
    check_calls(
        "identify_iff",
        &second.calls["identify_iff"],
        &[identify("4", json!({"is_active": "true"}), at)],
    );
}

fn track(user: &str, event: &str, properties: Value, at: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "properties": properties, "timestamp": at, "receivedAt": at})
}

// The reference's track query, exactly as printed: it aliases `id` twice.
const TRACK_AS_PRINTED: &str =
    "SELECT id AS USERID As userId, EVENT_NAME AS event, PRODUCTS AS products, TOTAL_PRICE AS value
FROM events
WHERE TIMESTAMP > {{last_sync_time}}";
// The same query with one alias for `id` (either spelling arrives as USERID).
const TRACK: &str = "SELECT id AS userId, EVENT_NAME AS event, PRODUCTS AS products, TOTAL_PRICE AS value
FROM events
WHERE TIMESTAMP > {{last_sync_time}}";
// Semantic events (the reference gives no query for them): a track sync whose rows
// carry the fields each event's action needs, in the reference's style.
const SEMANTIC_EVENTS: &str = r#"SELECT ID AS "userId", EVENT_NAME AS "event", DEVICE_TOKEN AS "context.device.token",
  OBJECT_ID AS "objectId", OBJECT_TYPE_ID AS "objectTypeId", DELIVERY_ID AS "deliveryId", METRIC AS "metric"
FROM semantic_events
WHERE TIMESTAMP > {{last_sync_time}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_query_and_every_semantic_event() {
    let warehouse = Warehouse::new("TRACK").await;

    // The query as printed does not parse (in Snowflake either): the sync is not set
    // up and its run refuses to start, pointing at the second alias, before anything
    // connects.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reverse_etl.toml");
    let as_printed = [Sync { name: "track", call_type: "track", query: TRACK_AS_PRINTED }];
    std::fs::write(&file, config_file(&warehouse, "kind = \"ndjson\"\npath = \"calls.ndjson\"", &as_printed))
        .unwrap();
    let error = reverse_etl_once(&file, FIRST_RUN).await.unwrap_err();
    assert!(matches!(error, RunnerError::Query { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("SQL syntax error") && text.contains("line 1, column 21"), "{text}");
    assert!(!dir.path().join("calls.ndjson").exists());

    warehouse
        .sql(&[
            "CREATE TABLE events (ID NUMBER(38, 0), EVENT_NAME VARCHAR, PRODUCTS ARRAY, TOTAL_PRICE NUMBER(10, 2), \
             TIMESTAMP NUMBER(38, 0))",
            &format!(
                "INSERT INTO events \
                 SELECT 1, 'Order Completed', PARSE_JSON('[{{\"sku\":\"A-1\",\"qty\":2}},{{\"sku\":\"B-2\",\"qty\":1}}]'), 59.90, {c} \
                 UNION ALL SELECT 2, 'Video Viewed', NULL, NULL, {c} \
                 UNION ALL SELECT 3, 'User Deleted', NULL, NULL, {c} \
                 UNION ALL SELECT 4, 'Suppress Person', NULL, NULL, {c} \
                 UNION ALL SELECT 5, 'Unsuppress Person', NULL, NULL, {c} \
                 UNION ALL SELECT 6, 'Device Deleted', NULL, NULL, {c} \
                 UNION ALL SELECT 7, 'Order Completed', NULL, 1.00, 0",
                c = CHANGED
            ),
            "CREATE TABLE semantic_events (ID VARCHAR, EVENT_NAME VARCHAR, DEVICE_TOKEN VARCHAR, OBJECT_ID VARCHAR, \
             OBJECT_TYPE_ID NUMBER(38, 0), DELIVERY_ID VARCHAR, METRIC VARCHAR, TIMESTAMP NUMBER(38, 0))",
            &format!(
                "INSERT INTO semantic_events VALUES \
                 ('u-1', 'Device Added or Updated', 'tok-1', NULL, NULL, NULL, NULL, {c}), \
                 ('u-1', 'Device Deleted', 'tok-1', NULL, NULL, NULL, NULL, {c}), \
                 ('u-2', 'User Deleted', NULL, NULL, NULL, NULL, NULL, {c}), \
                 ('u-3', 'Object Deleted', NULL, 'acme', 2, NULL, NULL, {c}), \
                 ('u-4', 'Relationship Deleted', NULL, 'acme', 2, NULL, NULL, {c}), \
                 ('u-5', 'Suppress Person', NULL, NULL, NULL, NULL, NULL, {c}), \
                 ('u-5', 'Unsuppress Person', NULL, NULL, NULL, NULL, NULL, {c}), \
                 ('u-6', 'Report Delivery Event', NULL, NULL, NULL, 'dlv-1', 'opened', {c}), \
                 ('u-7', 'Object Deleted', NULL, NULL, 2, NULL, NULL, {c}), \
                 ('u-8', 'Report Delivery Event', NULL, NULL, NULL, 'dlv-2', NULL, {c})",
                c = CHANGED
            ),
        ])
        .await;
    let syncs = [
        Sync { name: "track", call_type: "track", query: TRACK },
        Sync { name: "semantic_events", call_type: "track", query: SEMANTIC_EVENTS },
    ];
    let mut pipeline = Pipeline::new(&warehouse, &syncs);
    let run = pipeline.once(FIRST_RUN).await;
    check_queries_ran_as_written(&warehouse, &syncs, 0).await;
    let reads: Vec<(u64, u64, u64)> =
        run.runs.iter().map(|r| (r.rows_read, r.calls_delivered, r.row_errors)).collect();
    // Row 7 changed at 0, which is not after last_sync_time = 0.
    assert_eq!(reads, [(6, 5, 1), (10, 8, 2)]);

    // USERID and EVENT set userId and event; PRODUCTS (an ARRAY) and VALUE (a
    // NUMBER(10,2), every digit kept) stay upper-case properties.
    let at = FIRST_RUN;
    let nothing = json!({"PRODUCTS": null, "VALUE": null});
    check_calls(
        "track",
        &run.calls["track"],
        &[
            track(
                "1",
                "Order Completed",
                json!({"PRODUCTS": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}], "VALUE": 59.90}),
                at,
            ),
            track("2", "Video Viewed", nothing.clone(), at),
            track("3", "User Deleted", nothing.clone(), at),
            track("4", "Suppress Person", nothing.clone(), at),
            track("5", "Unsuppress Person", nothing, at),
        ],
    );
    assert!(
        run.lines[0].contains(
            r#""properties":{"PRODUCTS":[{"sku":"A-1","qty":2},{"sku":"B-2","qty":1}],"VALUE":59.90}"#
        ),
        "{}",
        run.lines[0]
    );
    // Device Deleted needs context.device.token, which this query has no column for.
    let errors = &run.row_errors["track"];
    assert_eq!((errors[0][0].as_str(), errors[0][2].as_str()), ("6", "semantic_event_field"));
    assert!(
        errors[0][3].contains("Device Deleted") && errors[0][3].contains("context.device.token"),
        "{errors:?}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&errors[0][4]).unwrap(),
        json!({"USERID": 6, "EVENT": "Device Deleted", "PRODUCTS": null, "VALUE": null})
    );

    // Every semantic event of the reference, with the fields its action needs.
    let semantic = |user: &str, event: &str, token: Value, properties: Value| {
        let mut call = track(user, event, properties, at);
        call["context"] = json!({"device": {"token": token}});
        call
    };
    let props = |object: Value, object_type: Value, delivery: Value, metric: Value| json!({"objectId": object, "objectTypeId": object_type, "deliveryId": delivery, "metric": metric});
    let none = props(Value::Null, Value::Null, Value::Null, Value::Null);
    check_calls(
        "semantic_events",
        &run.calls["semantic_events"],
        &[
            semantic("u-1", "Device Added or Updated", json!("tok-1"), none.clone()),
            semantic("u-1", "Device Deleted", json!("tok-1"), none.clone()),
            semantic("u-2", "User Deleted", Value::Null, none.clone()),
            semantic(
                "u-3",
                "Object Deleted",
                Value::Null,
                props(json!("acme"), json!(2), Value::Null, Value::Null),
            ),
            semantic(
                "u-4",
                "Relationship Deleted",
                Value::Null,
                props(json!("acme"), json!(2), Value::Null, Value::Null),
            ),
            semantic("u-5", "Suppress Person", Value::Null, none.clone()),
            semantic("u-5", "Unsuppress Person", Value::Null, none),
            semantic(
                "u-6",
                "Report Delivery Event",
                Value::Null,
                props(Value::Null, Value::Null, json!("dlv-1"), json!("opened")),
            ),
        ],
    );
    // Without its required field, a semantic event is a row error; the run goes on.
    let errors = &run.row_errors["semantic_events"];
    let reasons: Vec<(&str, &str)> = errors.iter().map(|e| (e[0].as_str(), e[2].as_str())).collect();
    assert_eq!(reasons, [("9", "semantic_event_field"), ("10", "semantic_event_field")]);
    assert!(
        errors[0][3].contains("Object Deleted") && errors[0][3].contains("properties.objectId"),
        "{errors:?}"
    );
    assert!(
        errors[1][3].contains("Report Delivery Event") && errors[1][3].contains("properties.metric"),
        "{errors:?}"
    );
}

// The reference's group queries: unquoted aliases, and quoted ones with the
// relationship attributes built by OBJECT_CONSTRUCT.
const GROUP: &str = "SELECT COMPANYID AS groupId, OBJECT_TYPE_ID AS objectTypeId, COMPANYNAME as company_name, EMPLOYEES AS employees, PERSONID AS userId
FROM companies
WHERE LAST_UPDATED >= {{last_sync_time}}";
const GROUP_RELATIONSHIPS: &str = r#"SELECT COMPANYID AS "groupId", OBJECTTYPEID AS "objectTypeId", 
    COMPANYNAME AS "companyname", EMPLOYEES AS "employees", 
    PERSONID AS "userId",
    OBJECT_CONSTRUCT(
        'is_manager', IS_MANAGER,
        'role', ROLE,
        'start_date', START_DATE
    ) AS "relationshipAttributes"
FROM companies
WHERE LAST_UPDATED >= {{last_sync_time}}"#;

fn group(group: &str, user: &str, traits: Value, at: &str) -> Value {
    json!({"type": "group", "groupId": group, "userId": user, "traits": traits, "timestamp": at, "receivedAt": at})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_queries_with_object_types_and_relationship_attributes() {
    let warehouse = Warehouse::new("GROUP").await;
    warehouse
        .sql(&[
            "CREATE TABLE companies (COMPANYID VARCHAR, OBJECT_TYPE_ID NUMBER(38, 0), OBJECTTYPEID NUMBER(38, 0), \
             COMPANYNAME VARCHAR, EMPLOYEES NUMBER(38, 0), PERSONID VARCHAR, IS_MANAGER BOOLEAN, ROLE VARCHAR, \
             START_DATE DATE, LAST_UPDATED NUMBER(38, 0))",
            &format!(
                "INSERT INTO companies VALUES \
                 ('acme', 1, 1, 'Acme Inc', 250, 'u-1', TRUE, 'admin', '2024-01-15', {c}), \
                 ('globex', 2, 2, 'Globex', 12, 'u-2', FALSE, NULL, NULL, {c}), \
                 ('initech', NULL, NULL, 'Initech', NULL, 'u-3', NULL, NULL, NULL, {c}), \
                 (NULL, 1, 1, 'Nameless', 1, 'u-4', TRUE, 'owner', '2020-02-29', {c})",
                c = CHANGED
            ),
        ])
        .await;
    let syncs = [
        Sync { name: "group", call_type: "group", query: GROUP },
        Sync { name: "group_relationships", call_type: "group", query: GROUP_RELATIONSHIPS },
    ];
    let mut pipeline = Pipeline::new(&warehouse, &syncs);
    let run = pipeline.once(FIRST_RUN).await;
    check_queries_ran_as_written(&warehouse, &syncs, 0).await;
    let reads: Vec<(u64, u64, u64)> =
        run.runs.iter().map(|r| (r.rows_read, r.calls_delivered, r.row_errors)).collect();
    assert_eq!(reads, [(4, 3, 1), (4, 3, 1)]);

    // GROUPID, OBJECTTYPEID and USERID are the reserved fields; objectTypeId goes into
    // the traits as the string of its integer (null: object type 1); COMPANY_NAME and
    // EMPLOYEES stay upper-case traits.
    let at = FIRST_RUN;
    check_calls(
        "group",
        &run.calls["group"],
        &[
            group(
                "acme",
                "u-1",
                json!({"objectTypeId": "1", "COMPANY_NAME": "Acme Inc", "EMPLOYEES": 250}),
                at,
            ),
            group(
                "globex",
                "u-2",
                json!({"objectTypeId": "2", "COMPANY_NAME": "Globex", "EMPLOYEES": 12}),
                at,
            ),
            group(
                "initech",
                "u-3",
                json!({"objectTypeId": null, "COMPANY_NAME": "Initech", "EMPLOYEES": null}),
                at,
            ),
        ],
    );
    // OBJECT_CONSTRUCT's OBJECT (which leaves out NULL values) is the nested
    // relationshipAttributes object, in the order Snowflake built it.
    check_calls(
        "group_relationships",
        &run.calls["group_relationships"],
        &[
            group(
                "acme",
                "u-1",
                json!({"objectTypeId": "1", "companyname": "Acme Inc", "employees": 250,
                       "relationshipAttributes": {"is_manager": true, "role": "admin", "start_date": "2024-01-15"}}),
                at,
            ),
            group(
                "globex",
                "u-2",
                json!({"objectTypeId": "2", "companyname": "Globex", "employees": 12,
                       "relationshipAttributes": {"is_manager": false}}),
                at,
            ),
            group(
                "initech",
                "u-3",
                json!({"objectTypeId": null, "companyname": "Initech", "employees": null, "relationshipAttributes": {}}),
                at,
            ),
        ],
    );
    let acme = &run.lines[3];
    assert!(
        acme.contains(
            r#""relationshipAttributes":{"is_manager":true,"role":"admin","start_date":"2024-01-15"}"#
        ),
        "{acme}"
    );
    // A row without a groupId is a row error in both.
    for sync in ["group", "group_relationships"] {
        let errors = &run.row_errors[sync];
        assert_eq!((errors[0][0].as_str(), errors[0][2].as_str()), ("4", "missing_field"), "{errors:?}");
        assert!(errors[0][3].contains("groupId"), "{errors:?}");
    }
}

// The reference's page, screen and alias queries.
const PAGE: &str = "SELECT ID AS userId, METATITLE AS name, URL AS url, TIME_ON_PAGE AS time_on_page
FROM pages
WHERE TIMESTAMP > {{last_sync_time}}";
const SCREEN: &str = "SELECT ID AS userId, SCREEN_NAME AS name, SESSION_STARTED AS session_started
FROM screens
WHERE TIMESTAMP > {{last_sync_time}}";
const ALIAS: &str = "SELECT ID AS userId, OLD_ID AS previousId
FROM user_resolution
WHERE TIMESTAMP >= {{last_sync_time}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_screen_and_alias_queries() {
    let warehouse = Warehouse::new("PAGE").await;
    warehouse
        .sql(&[
            "CREATE TABLE pages (ID NUMBER(38, 0), METATITLE VARCHAR, URL VARCHAR, TIME_ON_PAGE FLOAT, TIMESTAMP NUMBER(38, 0))",
            &format!(
                "INSERT INTO pages VALUES \
                 (1, 'Pricing', 'https://example.com/pricing', 12.5, {c}), \
                 (2, 'Docs', 'https://example.com/docs', NULL, {c}), \
                 (3, NULL, 'https://example.com/untitled', 1, {c})",
                c = CHANGED
            ),
            "CREATE TABLE screens (ID NUMBER(38, 0), SCREEN_NAME VARCHAR, SESSION_STARTED TIMESTAMP_NTZ, TIMESTAMP NUMBER(38, 0))",
            &format!(
                "INSERT INTO screens VALUES (1, 'Home', '2026-11-22 08:30:00.250', {c}), (2, 'Settings', NULL, {c})",
                c = CHANGED
            ),
            "CREATE TABLE user_resolution (ID VARCHAR, OLD_ID VARCHAR, TIMESTAMP NUMBER(38, 0))",
            &format!(
                "INSERT INTO user_resolution VALUES ('u-1', 'anon-1', {c}), ('u-2', NULL, {c}), ('u-3', 'anon-3', {c})",
                c = CHANGED
            ),
        ])
        .await;
    let syncs = [
        Sync { name: "page", call_type: "page", query: PAGE },
        Sync { name: "screen", call_type: "screen", query: SCREEN },
        Sync { name: "alias", call_type: "alias", query: ALIAS },
    ];
    let mut pipeline = Pipeline::new(&warehouse, &syncs);
    let run = pipeline.once(FIRST_RUN).await;
    check_queries_ran_as_written(&warehouse, &syncs, 0).await;
    let reads: Vec<(u64, u64, u64)> =
        run.runs.iter().map(|r| (r.rows_read, r.calls_delivered, r.row_errors)).collect();
    assert_eq!(reads, [(3, 2, 1), (2, 2, 0), (3, 2, 1)]);

    // NAME is the page's and screen's name; URL, TIME_ON_PAGE and SESSION_STARTED stay
    // upper-case properties; a TIMESTAMP_NTZ is read as UTC.
    let at = FIRST_RUN;
    let view = |kind: &str, user: &str, name: &str, properties: Value| json!({"type": kind, "userId": user, "name": name, "properties": properties, "timestamp": at, "receivedAt": at});
    check_calls(
        "page",
        &run.calls["page"],
        &[
            view("page", "1", "Pricing", json!({"URL": "https://example.com/pricing", "TIME_ON_PAGE": 12.5})),
            view("page", "2", "Docs", json!({"URL": "https://example.com/docs", "TIME_ON_PAGE": null})),
        ],
    );
    let errors = &run.row_errors["page"];
    assert_eq!((errors[0][0].as_str(), errors[0][2].as_str()), ("3", "missing_field"), "{errors:?}");
    assert!(errors[0][3].contains("name"), "{errors:?}");
    check_calls(
        "screen",
        &run.calls["screen"],
        &[
            view("screen", "1", "Home", json!({"SESSION_STARTED": "2026-11-22T08:30:00.250Z"})),
            view("screen", "2", "Settings", json!({"SESSION_STARTED": null})),
        ],
    );
    // USERID and PREVIOUSID are alias's fields; an alias has nothing else.
    let alias = |user: &str, previous: &str| json!({"type": "alias", "userId": user, "previousId": previous, "timestamp": at, "receivedAt": at});
    check_calls("alias", &run.calls["alias"], &[alias("u-1", "anon-1"), alias("u-3", "anon-3")]);
    let errors = &run.row_errors["alias"];
    assert_eq!((errors[0][0].as_str(), errors[0][2].as_str()), ("2", "missing_field"), "{errors:?}");
    assert!(errors[0][3].contains("previousId"), "{errors:?}");
}

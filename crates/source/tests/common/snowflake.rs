//! The Snowflake test front (`tests/snowflake/front.py`): where it is, its control API
//! (`/_cdp_test/…`), the test keys, and a source pointed at it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdp_source::SnowflakeOptions;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The account the front serves (`--account TESTACCOUNT` in `.ci/test`).
pub const ACCOUNT: &str = "TESTACCOUNT";
/// The test key, unencrypted PKCS#8.
pub const KEY: &str = include_str!("../data/snowflake-key.p8");
/// The same key, encrypted with [`PASSPHRASE`].
pub const ENCRYPTED_KEY: &str = include_str!("../data/snowflake-key-encrypted.p8");
/// The same key as PKCS#1.
pub const PKCS1_KEY: &str = include_str!("../data/snowflake-key-pkcs1.pem");
/// Another RSA key: the "wrong" key.
pub const OTHER_KEY: &str = include_str!("../data/snowflake-other-key.p8");
/// A P-256 key, not RSA.
pub const EC_KEY: &str = include_str!("../data/snowflake-ec-key.p8");
/// The public key of [`KEY`], as `ALTER USER … SET RSA_PUBLIC_KEY` takes it.
pub const PUBLIC_KEY: &str = include_str!("../data/snowflake-key.pub");
/// The passphrase of [`ENCRYPTED_KEY`].
pub const PASSPHRASE: &str = "correct-horse-battery";
/// The fingerprint of [`KEY`] (tests/data/README.md).
pub const FINGERPRINT: &str = "SHA256:VJko0EMUB8hCv9GV4Shi3rvtPMfkVxu7DcCOkElxIho=";
/// The fingerprint of [`OTHER_KEY`].
pub const OTHER_FINGERPRINT: &str = "SHA256:1juZIRfvm9lzXIAOplstCUepCA5HSHJV5n6DkwnZTPI=";

/// The front's URL. The tests that need it fail (never skip) without it.
pub fn front_url() -> String {
    std::env::var("CDP_TEST_SNOWFLAKE_URL").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_SNOWFLAKE_URL is not set: these tests need the Snowflake test front \
             (crates/source/tests/snowflake/front.py); run them with `bash .ci/test`, which starts it and \
             sets the variable"
        )
    })
}

/// A name no other test, run or process uses: `PREFIX_<pid>_<n>_<time>`, upper case
/// (Snowflake's unquoted identifiers).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000_000;
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
        .to_ascii_uppercase()
}

/// Sends a request to the front's control API (`/_cdp_test{path}`) and returns its JSON
/// answer; panics unless it answers 200.
pub async fn control(method: &str, path: &str, body: Option<Json>) -> Json {
    control_text(method, path, body.map(|b| b.to_string()).unwrap_or_default()).await
}

/// [`control`] with the body as JSON text, written by hand: object keys stay in their
/// order and numbers keep every digit (the front reads them so).
pub async fn control_text(method: &str, path: &str, body: String) -> Json {
    let url = front_url();
    let authority = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("CDP_TEST_SNOWFLAKE_URL={url:?} is not an http:// URL"))
        .trim_end_matches('/')
        .to_owned();
    let mut socket = TcpStream::connect(&authority)
        .await
        .unwrap_or_else(|e| panic!("the Snowflake test front at {url} does not answer: {e}"));
    let request = format!(
        "{method} /_cdp_test{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer") + 4;
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    let text = String::from_utf8_lossy(&answer[head_end..]);
    assert_eq!(status, "200", "{method} /_cdp_test{path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

/// Registers `user` with one public key (PEM) and returns the fingerprint the front
/// computed for it.
pub async fn register_user(user: &str, public_key_pem: &str) -> String {
    let answer =
        control("POST", "/users", Some(json!({"user": user, "public_key_pem": public_key_pem}))).await;
    answer["fingerprints"][0].as_str().expect("a fingerprint").to_owned()
}

/// How many finished results the front keeps (with their chunk files) at the least.
/// Its default, 32 results counted over every client, is too few for tests that run
/// in parallel: a result still being read (a chunk downloaded again after the
/// connector's one-second pause) would be dropped under its reader, where Snowflake
/// keeps results for a day. Raising it changes no other test's results.
const RETAINED_RESULTS: u64 = 2000;

/// Readies the front for this process, once: makes it keep at least
/// [`RETAINED_RESULTS`] results, and notes where its log stands, so that [`log`] only
/// reads the requests of this process's era (a front that ran for long holds those of
/// earlier runs too). Every test awaits it before its first request to the front.
pub async fn prepare() {
    prepared().await;
}

async fn prepared() -> u64 {
    static BASELINE: tokio::sync::OnceCell<u64> = tokio::sync::OnceCell::const_new();
    *BASELINE
        .get_or_init(|| async {
            let config = control("GET", "/config", None).await;
            if config["retain_results"].as_u64().unwrap_or(0) < RETAINED_RESULTS {
                control("POST", "/config", Some(json!({"retain_results": RETAINED_RESULTS}))).await;
            }
            log_since(0).await.iter().filter_map(|e| e["seq"].as_u64()).max().unwrap_or(0)
        })
        .await
}

/// A fresh user with [`KEY`] registered (and the front keeping results long enough).
pub async fn new_user(prefix: &str) -> String {
    prepare().await;
    let user = unique(prefix);
    assert_eq!(register_user(&user, PUBLIC_KEY).await, FINGERPRINT);
    user
}

/// Options for `user` at the front: [`KEY`], a role, warehouse, database and schema,
/// retries after 20 ms.
pub fn options(user: &str) -> SnowflakeOptions {
    SnowflakeOptions::new(ACCOUNT, user)
        .role("CDP_READER")
        .warehouse("CDP_WH")
        .database("CDP_TEST")
        .schema("PUBLIC")
        .private_key_pem(KEY)
        .statement_timeout(Duration::from_secs(120))
        .base_url(front_url())
        .retry_delay(Duration::from_millis(20))
}

/// Every request the front logged since this process [`prepare`]d it.
pub async fn log() -> Vec<Json> {
    log_since(prepared().await).await
}

async fn log_since(seq: u64) -> Vec<Json> {
    match control("GET", &format!("/log?since={seq}"), None).await {
        Json::Array(entries) => entries,
        other => panic!("the log is not a list: {other}"),
    }
}

/// The login requests of `user`, in order.
pub fn logins<'a>(log: &'a [Json], user: &str) -> Vec<&'a Json> {
    log.iter()
        .filter(|e| {
            e["path"] == "/session/v1/login-request"
                && e["body"]["LOGIN_NAME"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(user))
        })
        .collect()
}

/// The query requests whose SQL text is `sql`, in order.
pub fn submissions<'a>(log: &'a [Json], sql: &str) -> Vec<&'a Json> {
    log.iter().filter(|e| e["path"] == "/queries/v1/query-request" && e["body"]["sqlText"] == sql).collect()
}

/// The query requests sent in the sessions of `user`, in order.
pub fn queries_of<'a>(log: &'a [Json], user: &str) -> Vec<&'a Json> {
    let sessions: Vec<&Json> =
        logins(log, user).into_iter().filter_map(|e| e.get("session")).filter(|s| !s.is_null()).collect();
    log.iter()
        .filter(|e| {
            e["path"] == "/queries/v1/query-request"
                && e.get("session").is_some_and(|s| sessions.contains(&s))
        })
        .collect()
}

/// The chunk downloads of query `query_id`, in order.
pub fn chunk_downloads<'a>(log: &'a [Json], query_id: &str) -> Vec<&'a Json> {
    let prefix = format!("/_chunks/{query_id}/");
    log.iter().filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with(&prefix))).collect()
}

/// The chunk index of a logged chunk download (`/_chunks/<query id>/<index>`).
pub fn chunk_index(entry: &Json) -> usize {
    entry["path"]
        .as_str()
        .and_then(|p| p.rsplit('/').next())
        .and_then(|i| i.parse().ok())
        .expect("a chunk path")
}

/// Waits up to 10 s for `check` to hold on the front's log; returns that log.
pub async fn wait_for_log(what: &str, check: impl Fn(&[Json]) -> bool) -> Vec<Json> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = log().await;
        if check(&log) {
            return log;
        }
        assert!(tokio::time::Instant::now() < deadline, "the front's log never showed {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

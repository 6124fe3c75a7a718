//! Snowflake sources in the runner: the TOML keys, the query checks in Snowflake's
//! dialect before anything runs, key errors at setup, and runs against a scripted
//! stand-in for Snowflake's HTTP API (a failed run keeps `last_sync_time`).
#![cfg(feature = "snowflake")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cdp_bucket::{Clock, ManualClock};
use cdp_sync::{Config, ConfigError, Outcome, Runner, RunnerError, SourceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FINGERPRINT: &str = "SHA256:VJko0EMUB8hCv9GV4Shi3rvtPMfkVxu7DcCOkElxIho=";

fn key_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../source/tests/data").join(name)
}

fn config_text(source: &str, query: &str) -> String {
    format!(
        r#"
        state_dir = "state"
        [sources.sf]
        kind = "snowflake"
        {source}
        [destinations.out]
        kind = "ndjson"
        path = "calls.ndjson"
        [[syncs]]
        name = "people"
        type = "identify"
        source = "sf"
        destination = "out"
        query = "{query}"
        every = "10m"
        "#
    )
}

const QUERY: &str =
    "SELECT ID AS USERID, EMAIL, PLAN FROM PEOPLE WHERE UPDATED_AT > TO_TIMESTAMP({{last_sync_time}})";

fn source_keys(base_url: &str) -> String {
    format!(
        r#"account = "myorg-acct"
        user = "CDP_USER"
        role = "CDP_ROLE"
        warehouse = "CDP_WH"
        database = "ANALYTICS"
        schema = "PUBLIC"
        private_key_path = "{}"
        statement_timeout = "5m"
        base_url = "{base_url}""#,
        key_file("snowflake-key.p8").display()
    )
}

fn env(name: &str) -> Option<String> {
    match name {
        "SF_KEY" => Some(std::fs::read_to_string(key_file("snowflake-key-encrypted.p8")).unwrap()),
        "SF_PASSPHRASE" => Some("correct-horse-battery".to_owned()),
        "SF_PKCS1" => Some(std::fs::read_to_string(key_file("snowflake-key-pkcs1.pem")).unwrap()),
        _ => None,
    }
}

fn parse(source: &str, query: &str) -> Result<Config, ConfigError> {
    Config::parse(&config_text(source, query), Path::new("/etc/cdp"), &env)
}

#[test]
fn the_configuration_reads_every_key() {
    let config = parse(&source_keys("http://127.0.0.1:9"), QUERY).unwrap();
    match &config.sources["sf"] {
        SourceConfig::Snowflake {
            account,
            user,
            role,
            warehouse,
            database,
            schema,
            private_key_path,
            private_key,
            private_key_passphrase,
            statement_timeout,
            base_url,
        } => {
            assert_eq!((account.as_str(), user.as_str()), ("myorg-acct", "CDP_USER"));
            assert_eq!(
                (role.as_deref(), warehouse.as_deref(), database.as_deref(), schema.as_deref()),
                (Some("CDP_ROLE"), Some("CDP_WH"), Some("ANALYTICS"), Some("PUBLIC"))
            );
            assert_eq!(private_key_path.as_deref(), Some(key_file("snowflake-key.p8").as_path()));
            assert!(private_key.is_none() && private_key_passphrase.is_none());
            assert_eq!(*statement_timeout, Some(std::time::Duration::from_secs(300)));
            assert_eq!(base_url.as_deref(), Some("http://127.0.0.1:9"));
        }
        other => panic!("{other:?}"),
    }

    // The key and its passphrase from the environment; never shown.
    let from_env = r#"account = "a"
        user = "u"
        private_key_env = "SF_KEY"
        private_key_passphrase_env = "SF_PASSPHRASE""#;
    let config = parse(from_env, QUERY).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("correct-horse") && !debug.contains("PRIVATE KEY"), "{debug}");

    let error = |source: &str| parse(source, QUERY).unwrap_err().to_string();
    let both = format!("{from_env}\nprivate_key_path = \"key.p8\"");
    assert!(error(&both).contains("`sources.sf`: give the private key"), "{}", error(&both));
    assert!(error("account = \"a\"\nuser = \"u\"").contains("one of them"));
    let unset = "account = \"a\"\nuser = \"u\"\nprivate_key_env = \"UNSET\"";
    assert!(error(unset).contains("`sources.sf.private_key_env` names the environment variable UNSET"));
    let unknown = format!("{}\npassword_env = \"X\"", source_keys("http://h"));
    assert!(error(&unknown).contains("password_env"), "{}", error(&unknown));
    let timeout = source_keys("http://h").replace("\"5m\"", "\"soon\"");
    assert!(error(&timeout).contains("`sources.sf.statement_timeout`"));
}

#[tokio::test]
async fn queries_are_checked_in_snowflakes_dialect_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
    // Nothing listens there: checking queries never connects (asking for the
    // columns would).
    let keys = source_keys("http://127.0.0.1:9");
    let config = Config::parse(&config_text(&keys, QUERY), dir.path(), &env).unwrap();
    let runner = Runner::without_column_checks(config, clock.clone()).await.unwrap();
    let warnings: Vec<String> = runner.warnings("people").iter().map(|w| w.to_string()).collect();
    assert!(warnings.iter().any(|w| w.contains("EMAIL") && w.contains("\"email\"")), "{warnings:?}");

    let config = Config::parse(&config_text(&keys, "DELETE FROM PEOPLE"), dir.path(), &env).unwrap();
    let runner = Runner::without_column_checks(config, clock.clone()).await.unwrap();
    let error = runner.run("people").await.unwrap_err();
    assert!(matches!(error, RunnerError::Query { .. }), "{error:?}");

    // A PKCS#1 key is refused at setup, with the command that converts it.
    let pkcs1 = "account = \"myorg-acct\"\nuser = \"CDP_USER\"\nprivate_key_env = \"SF_PKCS1\"";
    let config = Config::parse(&config_text(pkcs1, QUERY), dir.path(), &env).unwrap();
    let error = Runner::new(config, clock).await.unwrap_err();
    let text =
        format!("{error}: {}", std::error::Error::source(&error).map(|s| s.to_string()).unwrap_or_default());
    assert!(
        text.contains(
            "openssl pkcs8 -topk8 -inform PEM -outform PEM -in existing_key.pem -out new_key.p8 -nocrypt"
        ),
        "{text}"
    );
    assert!(text.contains("CDP_USER") && text.contains("myorg-acct"), "{text}");
}

/// A stand-in for Snowflake: refuses every login with HTTP 403 while `down`, else
/// logs in and answers every query with two people.
async fn stand_in(down: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let down = down.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0_u8; 8192];
                // The head, then a body of its content-length.
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(at) = text.find("\r\n\r\n") {
                        let length: usize = text[..at]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= at + 4 + length {
                            break;
                        }
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let (status, body) = if down.load(Ordering::SeqCst) {
                    (403, "Forbidden".to_owned())
                } else if head.starts_with("POST /session/v1/login-request") {
                    (200, r#"{"success":true,"data":{"token":"t"}}"#.to_owned())
                } else {
                    (
                        200,
                        r#"{"success":true,"data":{"queryId":"q1","queryResultFormat":"json","rowtype":[
                            {"name":"USERID","type":"fixed","precision":38,"scale":0,"nullable":true},
                            {"name":"EMAIL","type":"text","length":100,"nullable":true},
                            {"name":"PLAN","type":"variant","nullable":true}],
                          "rowset":[["12345678901234567890","ada@example.com","{\n  \"tier\": \"pro\",\n  \"seats\": 9223372036854775808\n}"],
                                    ["2","bob@example.com",null]]}}"#
                            .to_owned(),
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    base_url
}

#[tokio::test]
async fn a_failed_run_keeps_last_sync_time_and_the_next_one_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(AtomicBool::new(true));
    let base_url = stand_in(down.clone()).await;
    let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
    let extra = "lowercase_names = true";
    let text = config_text(&source_keys(&base_url), QUERY)
        .replace("every = \"10m\"", &format!("every = \"10m\"\n{extra}"));
    let config = Config::parse(&text, dir.path(), &env).unwrap();
    let runner = Runner::new(config, clock.clone() as Arc<dyn Clock>).await.unwrap();

    let failed = runner.run("people").await.unwrap().record;
    assert_eq!(failed.outcome, Outcome::Failed);
    let error = failed.error.unwrap();
    for part in ["myorg-acct", "CDP_USER", FINGERPRINT, "HTTP 403"] {
        assert!(error.contains(part), "{part}: {error}");
    }
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, 0);

    down.store(false, Ordering::SeqCst);
    clock.set("2026-11-23T10:10:00Z".parse().unwrap());
    let run = runner.run("people").await.unwrap().record;
    assert_eq!(run.outcome, Outcome::Succeeded, "{:?}", run.error);
    assert_eq!((run.rows_read, run.calls_delivered, run.row_errors), (2, 2, 0));
    assert_eq!(run.last_sync_time, 0, "the run read from the last successful start");
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, 1_795_428_600);
    let calls: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("calls.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // USERID sets userId (reserved names match without case); the others are
    // lower-cased; a number past 2^63 inside the VARIANT keeps every digit.
    assert_eq!(calls[0]["userId"], "12345678901234567890");
    assert_eq!(calls[0]["traits"]["email"], "ada@example.com");
    assert_eq!(calls[0]["traits"]["plan"]["tier"], "pro");
    let line = std::fs::read_to_string(dir.path().join("calls.ndjson")).unwrap();
    assert!(line.lines().next().unwrap().contains(r#""seats":9223372036854775808"#), "{line}");
    assert_eq!(calls[1]["userId"], "2");
    assert_eq!(calls[1]["traits"]["plan"], serde_json::Value::Null);
}

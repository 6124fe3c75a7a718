//! The Snowflake source against a scripted stand-in for Snowflake's HTTP API on
//! loopback: what it sends at login, how it reads every type and several result
//! chunks, and what it does when the login, the submission or a chunk fails. (The
//! tests against a fuller fake Snowflake live apart; these need nothing running.)
#![cfg(feature = "snowflake")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use cdp_rows::Value;
use cdp_source::{SnowflakeOptions, SnowflakeSource, Source, SourceError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = include_str!("data/snowflake-key.p8");
const FINGERPRINT: &str = "SHA256:VJko0EMUB8hCv9GV4Shi3rvtPMfkVxu7DcCOkElxIho=";

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    body: String,
}

/// Answers a request with a status and a JSON body; `n` counts the requests to the
/// same endpoint (the path without its query), from 0.
type Script = dyn Fn(&Request, usize, &str) -> (u16, String) + Send + Sync;

struct Server {
    base_url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    async fn start(
        script: impl Fn(&Request, usize, &str) -> (u16, String) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::<Request>::new()));
        let script: Arc<Script> = Arc::new(script);
        let (log, base) = (requests.clone(), base_url.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let (log, script, base) = (log.clone(), script.clone(), base.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else { return };
                    let endpoint = request.path.split('?').next().unwrap_or_default().to_owned();
                    let n = {
                        let mut log = log.lock().unwrap();
                        let n = log.iter().filter(|r| r.path.split('?').next() == Some(&endpoint)).count();
                        log.push(request.clone());
                        n
                    };
                    let (status, body) = script(&request, n, &base);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Server { base_url, requests }
    }

    fn count(&self, endpoint: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.path.starts_with(endpoint)).count()
    }

    fn first(&self, endpoint: &str) -> Request {
        self.requests.lock().unwrap().iter().find(|r| r.path.starts_with(endpoint)).cloned().unwrap()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let path = head.split_whitespace().nth(1)?.to_owned();
    Some(Request { path, body: String::from_utf8_lossy(&buf[head_end..]).to_string() })
}

const LOGIN: &str = "/session/v1/login-request";
const QUERY: &str = "/queries/v1/query-request";
const CHUNK: &str = "/chunk/";

fn logged_in(n: usize) -> (u16, String) {
    (200, format!(r#"{{"success":true,"data":{{"token":"token-{n}"}}}}"#))
}

fn options(server: &Server) -> SnowflakeOptions {
    SnowflakeOptions::new("myorg-acct", "cdp_user")
        .role("CDP_ROLE")
        .warehouse("CDP_WH")
        .database("ANALYTICS")
        .schema("PUBLIC")
        .private_key_pem(KEY)
        .statement_timeout(Duration::from_secs(300))
        .base_url(&server.base_url)
        .retry_delay(Duration::from_millis(10))
}

fn column(name: &str, ty: &str, extra: &str) -> String {
    format!(r#"{{"name":"{name}","type":"{ty}","nullable":true{extra}}}"#)
}

fn one_text_column(query_id: &str, rows: &str) -> String {
    format!(
        r#"{{"success":true,"data":{{"queryId":"{query_id}","queryResultFormat":"json","rowtype":[{}],"rowset":{rows}}}}}"#,
        column("X", "text", r#","length":16"#)
    )
}

#[tokio::test]
async fn every_type_and_every_chunk_arrives_exactly() {
    let server = Server::start(|request, n, base| match request.path.split('?').next().unwrap() {
        LOGIN => logged_in(n),
        QUERY => {
            let rowtype = [
                column("ID", "fixed", r#","precision":38,"scale":0"#),
                column("AMOUNT", "fixed", r#","precision":12,"scale":3"#),
                column("SCORE", "real", ""),
                column("NAME", "text", r#","length":100"#),
                column("ACTIVE", "boolean", ""),
                column("PAYLOAD", "binary", r#","length":8"#),
                column("DAY", "date", ""),
                column("AT_TIME", "time", r#","scale":9"#),
                column("NTZ", "timestamp_ntz", r#","scale":9"#),
                column("LTZ", "timestamp_ltz", r#","scale":9"#),
                column("TZ", "timestamp_tz", r#","scale":9"#),
                column("V", "variant", ""),
                column("userId", "text", r#","length":10"#),
            ]
            .join(",");
            let row = r#"["99999999999999999999999999999999999999","-12.340","NaN","Ada \u00fc","1","CAFE","-1","45296.123456789","-1.500000000","1704103200.123456789","1704083400.000000000 1770","{\n  \"big\": 9223372036854775808,\n  \"list\": [1, undefined]\n}","u1"]"#;
            let nulls = format!("[{}]", ["null"; 13].join(","));
            let chunks = (1..=2)
                .map(|i| format!(r#"{{"url":"{base}/chunk/{i}","rowCount":2,"uncompressedSize":100,"compressedSize":100}}"#))
                .collect::<Vec<_>>()
                .join(",");
            (
                200,
                format!(
                    r#"{{"success":true,"data":{{"queryId":"q-types","queryResultFormat":"json","rowtype":[{rowtype}],"rowset":[{row},{nulls}],"chunkHeaders":{{}},"chunks":[{chunks}]}}}}"#
                ),
            )
        }
        path if path.starts_with(CHUNK) => {
            let i: u64 = path[CHUNK.len()..].parse().unwrap();
            // Chunk 1 fails once with a 503: the connector downloads it again.
            if i == 1 && n == 0 {
                return (503, "busy".to_owned());
            }
            let row = |id: u64| {
                format!(
                    r#"["{id}","1.000","2.5","n{id}","0","","0","0","0","0","0 1440","[]","u{id}"]"#
                )
            };
            (200, format!("{},{}", row(i * 10), row(i * 10 + 1)))
        }
        _ => (404, "{}".to_owned()),
    })
    .await;
    let source = SnowflakeSource::new("sf", options(&server)).unwrap();
    let mut rows = source.query("SELECT …").await.unwrap();
    assert_eq!(rows.columns().names()[0], "ID");
    assert_eq!(rows.columns().names()[12], "userId");

    let first = rows.next().await.unwrap().unwrap();
    let ts = |text: &str| text.parse::<cdp_calls::Timestamp>().unwrap();
    assert_eq!(first[0], Value::decimal("99999999999999999999999999999999999999"));
    assert_eq!(first[1], Value::decimal("-12.340"));
    assert!(matches!(first[2], Value::Float(f) if f.is_nan()));
    assert_eq!(first[3], Value::text("Ada ü"));
    assert_eq!(first[4], Value::Bool(true));
    assert_eq!(first[5], Value::bytes(vec![0xca, 0xfe]));
    assert_eq!(first[6], Value::Date(cdp_rows::Date::from_ymd(1969, 12, 31).unwrap()));
    assert_eq!(first[7], Value::Time(cdp_rows::Time::from_hms_micro(12, 34, 56, 123_456).unwrap()));
    assert_eq!(first[8], Value::TimestampWithoutZone(ts("1969-12-31T23:59:58.5Z")));
    assert_eq!(first[9], Value::Timestamp(ts("2024-01-01T10:00:00.123456Z")));
    assert_eq!(first[10], Value::Timestamp(ts("2024-01-01T04:30:00Z")));
    assert_eq!(first[11], Value::json("{\n  \"big\": 9223372036854775808,\n  \"list\": [1, null]\n}"));
    assert_eq!(first[12], Value::text("u1"));
    let second = rows.next().await.unwrap().unwrap();
    assert!(second.iter().all(Value::is_null), "{second:?}");

    let mut ids = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row.unwrap();
        assert_eq!(
            (&row[1], &row[10]),
            (&Value::decimal("1.000"), &Value::Timestamp(cdp_calls::Timestamp::UNIX_EPOCH))
        );
        ids.push(row[0].clone());
    }
    assert_eq!(ids, [10, 11, 20, 21].map(Value::Int));
    assert_eq!(rows.rows_read(), 6);
    assert_eq!(server.count("/chunk/1"), 2, "chunk 1 was downloaded again after its 503");

    // The login: a JWT for ACCOUNT.USER with the key's fingerprint, the session's
    // settings, and its statement timeout.
    let login = server.first(LOGIN);
    for setting in ["warehouse=CDP_WH", "databaseName=ANALYTICS", "schemaName=PUBLIC", "roleName=CDP_ROLE"] {
        assert!(login.path.contains(setting), "{}", login.path);
    }
    let body: serde_json::Value = serde_json::from_str(&login.body).unwrap();
    assert_eq!(body["data"]["ACCOUNT_NAME"], "myorg-acct");
    assert_eq!(body["data"]["LOGIN_NAME"], "cdp_user");
    assert_eq!(body["data"]["AUTHENTICATOR"], "SNOWFLAKE_JWT");
    assert_eq!(body["data"]["SESSION_PARAMETERS"]["STATEMENT_TIMEOUT_IN_SECONDS"], 300);
    let jwt = body["data"]["TOKEN"].as_str().unwrap();
    let claims =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["iss"], format!("MYORG-ACCT.CDP_USER.{FINGERPRINT}"));
    assert_eq!(claims["sub"], "MYORG-ACCT.CDP_USER");
    assert!(!login.body.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn the_session_is_kept_and_renewed_when_it_expires() {
    let server = Server::start(|request, n, _| match request.path.split('?').next().unwrap() {
        LOGIN => logged_in(n),
        QUERY if n == 1 => (
            200,
            r#"{"success":false,"code":"390112","message":"Your session has expired. Please login again.","data":null}"#
                .to_owned(),
        ),
        QUERY if n == 3 => (
            401,
            r#"{"success":false,"code":"390104","message":"User must login again to access this resource.","data":null}"#
                .to_owned(),
        ),
        QUERY => (200, one_text_column(&format!("q{n}"), r#"[["a"]]"#)),
        _ => (404, "{}".to_owned()),
    })
    .await;
    let source = SnowflakeSource::new("sf", options(&server)).unwrap();
    source.check().await.unwrap();
    assert_eq!(server.count(LOGIN), 1);
    // The second query finds the session expired: one new login, then it runs.
    source.check().await.unwrap();
    assert_eq!((server.count(LOGIN), server.count(QUERY)), (2, 3));
    // A token Snowflake no longer knows (HTTP 401): the same.
    source.check().await.unwrap();
    assert_eq!((server.count(LOGIN), server.count(QUERY)), (3, 5));
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let server = Server::start(|request, n, _| match request.path.split('?').next().unwrap() {
        LOGIN if n == 0 => (503, "unavailable".to_owned()),
        LOGIN => logged_in(n),
        QUERY if n == 0 => (502, "bad gateway".to_owned()),
        QUERY if n == 1 => (429, "slow down".to_owned()),
        QUERY => (200, one_text_column("q-ok", r#"[["a"],["b"]]"#)),
        _ => (404, "{}".to_owned()),
    })
    .await;
    let source = SnowflakeSource::new("sf", options(&server)).unwrap();
    let mut rows = source.query("SELECT X FROM T").await.unwrap();
    assert_eq!(rows.next().await.unwrap().unwrap(), vec![Value::text("a")]);
    assert_eq!((server.count(LOGIN), server.count(QUERY)), (2, 3));

    // A 403 at login is not retried.
    let forbidden = Server::start(|_, _, _| (403, "account unknown".to_owned())).await;
    let error = SnowflakeSource::new("sf", options(&forbidden)).unwrap().check().await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    assert_eq!(forbidden.count(LOGIN), 1);
    let text = error.to_string();
    for part in ["myorg-acct", "cdp_user", FINGERPRINT, "HTTP 403"] {
        assert!(text.contains(part), "{part}: {text}");
    }

    // A submission that keeps failing gives up after three attempts.
    let down = Server::start(|request, n, _| match request.path.split('?').next().unwrap() {
        LOGIN => logged_in(n),
        _ => (503, "down".to_owned()),
    })
    .await;
    let error = SnowflakeSource::new("sf", options(&down)).unwrap().check().await.unwrap_err();
    assert!(matches!(error, SourceError::Connection { .. }), "{error:?}");
    assert_eq!(down.count(QUERY), 3);
}

#[tokio::test]
async fn a_refused_login_names_the_user_the_account_and_the_key() {
    let server = Server::start(|_, _, _| {
        (200, r#"{"success":false,"code":"390144","message":"JWT token is invalid.","data":null}"#.to_owned())
    })
    .await;
    let source = SnowflakeSource::new("sf", options(&server)).unwrap();
    let error = source.check().await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    for part in ["`cdp_user`", "`myorg-acct`", FINGERPRINT, "JWT token is invalid", "DESC USER cdp_user"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert_eq!(server.count(LOGIN), 1, "a refused login is not retried");
    let body_line = &KEY.lines().nth(1).unwrap()[..20];
    for text in [text, format!("{error:?}"), format!("{source:?}")] {
        assert!(!text.contains(body_line) && !text.contains("PRIVATE KEY"), "{text}");
    }
}

#[tokio::test]
async fn query_errors_carry_snowflakes_message_and_query_id() {
    let server = Server::start(|request, n, _| match request.path.split('?').next().unwrap() {
        LOGIN => logged_in(n),
        QUERY if request.body.contains("MISSING") => (
            200,
            r#"{"success":false,"code":"002003","sqlState":"42S02","message":"SQL compilation error:\nObject 'MISSING' does not exist or not authorized.","data":{"queryId":"01b2-missing"}}"#
                .to_owned(),
        ),
        QUERY if request.body.contains("SLOW") => (
            200,
            r#"{"success":false,"code":"000630","message":"Statement reached its statement or warehouse timeout of 300 second(s) and was canceled.","data":{"queryId":"01b2-slow"}}"#
                .to_owned(),
        ),
        QUERY => (
            200,
            format!(
                r#"{{"success":true,"data":{{"queryId":"q-geo","queryResultFormat":"json","rowtype":[{}],"rowset":[]}}}}"#,
                column("G", "geography", "")
            ),
        ),
        _ => (404, "{}".to_owned()),
    })
    .await;
    let source = SnowflakeSource::new("sf", options(&server)).unwrap();

    let error = source.query("SELECT * FROM MISSING").await.unwrap_err();
    assert_eq!((error.code(), error.query_id()), (Some("002003"), Some("01b2-missing")));
    assert_eq!(
        error.to_string(),
        "source `sf`: query failed: Snowflake error 002003: SQL compilation error:\nObject 'MISSING' does not \
         exist or not authorized. (query id 01b2-missing)"
    );

    let error = source.query("SELECT SLOW()").await.unwrap_err();
    assert!(
        matches!(error, SourceError::Timeout { timeout, .. } if timeout == Duration::from_secs(300)),
        "{error:?}"
    );

    let error = source.query("SELECT G FROM PLACES").await.unwrap_err();
    assert!(matches!(error, SourceError::UnsupportedType { ref column, .. } if column == "G"), "{error:?}");
    assert!(error.to_string().contains("ST_ASGEOJSON"), "{error}");
    assert_eq!(server.count(QUERY), 3, "query errors are not retried");
}

#[tokio::test]
async fn a_chunk_that_cannot_be_had_ends_the_query_after_the_rows_before_it() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let server = Server::start(move |request, n, base| match request.path.split('?').next().unwrap() {
        LOGIN => logged_in(n),
        QUERY => (
            200,
            format!(
                r#"{{"success":true,"data":{{"queryId":"q-gone","queryResultFormat":"json","rowtype":[{}],"rowset":[["a"],["bad"]],"chunkHeaders":{{}},"chunks":[{{"url":"{base}/chunk/1","rowCount":1,"uncompressedSize":10,"compressedSize":10}}]}}}}"#,
                column("D", "date", "")
            ),
        ),
        _ => {
            counter.fetch_add(1, Ordering::SeqCst);
            (403, "<Error>AccessDenied</Error>".to_owned())
        }
    })
    .await;
    let source = SnowflakeSource::new("sf", options(&server)).unwrap();
    let mut rows = source.query("SELECT D FROM T").await.unwrap();
    // Row 1 cannot be read as a date: a row error, and reading goes on.
    let error = rows.next().await.unwrap().unwrap_err();
    assert!(error.is_row_error(), "{error:?}");
    assert_eq!((error.row(), error.column()), (Some(1), Some("D")));
    assert!(error.to_string().contains("(DATE)"), "{error}");
    assert!(rows.next().await.unwrap().unwrap_err().is_row_error());
    let error = rows.next().await.unwrap().unwrap_err();
    assert!(matches!(error, SourceError::Connection { rows_read: 2, .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("result chunk 2") && text.contains("403") && text.contains("q-gone"), "{text}");
    assert!(rows.next().await.is_none());
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "a 403 is not downloaded again");
}

#[tokio::test]
async fn a_slow_reader_holds_back_the_downloads() {
    const CHUNKS: usize = 10;
    const ROWS_PER_CHUNK: usize = 600;
    let server = Server::start(|request, n, base| match request.path.split('?').next().unwrap() {
        LOGIN => logged_in(n),
        QUERY => {
            let chunks = (1..=CHUNKS)
                .map(|i| format!(r#"{{"url":"{base}/chunk/{i}","rowCount":{ROWS_PER_CHUNK},"uncompressedSize":1,"compressedSize":1}}"#))
                .collect::<Vec<_>>()
                .join(",");
            (
                200,
                format!(
                    r#"{{"success":true,"data":{{"queryId":"q-big","queryResultFormat":"json","rowtype":[{}],"chunkHeaders":{{}},"chunks":[{chunks}]}}}}"#,
                    column("N", "fixed", r#","precision":38,"scale":0"#)
                ),
            )
        }
        path => {
            let i: usize = path[CHUNK.len()..].parse().unwrap();
            let rows: Vec<String> = (0..ROWS_PER_CHUNK).map(|r| format!(r#"["{}"]"#, (i - 1) * ROWS_PER_CHUNK + r)).collect();
            (200, rows.join(","))
        }
    })
    .await;
    let source = SnowflakeSource::new("sf", options(&server)).unwrap();
    let mut rows = source.query("SELECT N FROM BIG").await.unwrap();
    assert_eq!(rows.next().await.unwrap().unwrap(), vec![Value::Int(0)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Decoded rows wait in a bounded channel (1,024 rows); past it, one chunk is being
    // read and one more downloaded, no further.
    let downloaded = server.count(CHUNK);
    assert!(downloaded <= 3, "{downloaded} chunks downloaded ahead of a reader that stopped");
    let mut expected = 1_i64;
    while let Some(row) = rows.next().await {
        assert_eq!(row.unwrap(), vec![Value::Int(expected)]);
        expected += 1;
    }
    assert_eq!(expected as usize, CHUNKS * ROWS_PER_CHUNK);
    assert_eq!(server.count(CHUNK), CHUNKS);

    // Dropping the stream stops the downloads.
    let mut rows = source.query("SELECT N FROM BIG").await.unwrap();
    rows.next().await.unwrap().unwrap();
    drop(rows);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_drop = server.count(CHUNK) - CHUNKS;
    assert!(after_drop <= 3, "{after_drop}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.count(CHUNK) - CHUNKS, after_drop);
}

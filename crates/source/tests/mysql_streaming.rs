//! A million wide rows from MariaDB, read one at a time in bounded memory. The only test
//! in its binary, so the process's peak memory is its own. Needs the MySQL test server
//! (`bash .ci/test`; `CDP_TEST_MYSQL_URL`, `CDP_TEST_MYSQL_PASSWORD`).
#![cfg(feature = "mysql")]

mod common;

use std::time::{Duration, Instant};

use cdp_rows::Value;
use cdp_source::{MysqlOptions, Source};
use common::mysql::{admin, mysql_source};
use mysql_async::prelude::Queryable;

/// The process's peak resident memory (`VmHWM`) in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of KiB")
}

#[tokio::test]
async fn a_million_rows_stream_lazily_in_bounded_memory() {
    let mut admin = admin().await;
    let source = mysql_source(MysqlOptions::new());
    // 1,000,000 rows of ~330 bytes: about 330 MB if they were ever collected.
    let sql = "SELECT CAST(seq AS SIGNED) AS n, REPEAT('x', 300) AS pad, 'src_stream_marker' AS marker, \
               TIMESTAMP('2026-11-22 10:00:00') + INTERVAL seq SECOND AS at FROM seq_1_to_1000000";
    let before = peak_rss_kib();
    let mut stream = source.query(sql).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first[0], Value::Int(1));

    // While nothing more is read, the server is left waiting to write to us: rows
    // are pulled, not pushed into memory.
    let waiting = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%src_stream_marker%' \
                   AND INFO NOT LIKE '%PROCESSLIST%' AND STATE = 'Writing to net'";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let blocked: Option<i64> = admin.query_first(waiting).await.unwrap();
        if blocked == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "the server never blocked writing to the unread stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut count = 1_u64;
    let mut sum = 1_i64;
    let mut pad_bytes = 0_usize;
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        let (Value::Int(n), Value::Text(pad), Value::TimestampWithoutZone(_)) = (&row[0], &row[1], &row[3])
        else {
            panic!("unexpected row {row:?}")
        };
        sum += n;
        pad_bytes += pad.len();
        count += 1;
    }
    assert_eq!(count, 1_000_000);
    assert_eq!(sum, (1..=1_000_000_i64).sum::<i64>());
    assert_eq!(pad_bytes, 999_999 * 300);
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!("peak memory grew by {grown_mib} MiB over {count} rows");
    assert!(grown_mib < 64, "peak memory grew by {grown_mib} MiB while streaming ~330 MB of rows");
}

//! A MySQL source through an SSH tunnel, end to end: a real OpenSSH server
//! (`crates/source/tests/ssh/start.sh`; `CDP_TEST_SSH_*`) in front of the MariaDB test
//! server (`crates/source/tests/mysql/start.sh`; `CDP_TEST_MYSQL_URL`,
//! `CDP_TEST_MYSQL_PASSWORD`), both started by `bash .ci/test`. Keys come from
//! `generate_key`, what `reverse_etl keygen` runs. Without the servers' variables the
//! tests fail, never skip.
#![cfg(all(feature = "mysql", feature = "ssh"))]

#[path = "../../source/tests/ssh/support.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cdp_bucket::{Clock, ManualClock};
use cdp_source::CheckStep;
use cdp_sync::{Config, Outcome, Runner, RunnerError};
use mysql_async::prelude::Queryable;
use serde_json::Value;
use support::{SshServer, new_key, server};

fn ts(s: &str) -> cdp_calls::Timestamp {
    s.parse().unwrap()
}

fn env(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{name} is not set: these tests need the MySQL test server that `bash .ci/test` installs and \
             starts on loopback (crates/source/tests/mysql/start.sh). Run them with `bash .ci/test`."
        )
    })
}

/// The test server's options, straight (not through the tunnel).
fn direct_opts() -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&env("CDP_TEST_MYSQL_URL")).unwrap())
        .pass(Some(env("CDP_TEST_MYSQL_PASSWORD")))
        .prefer_socket(false)
}

/// Runs SQL (several statements) on the test server.
async fn sql(statements: &str) {
    let mut conn = mysql_async::Conn::new(direct_opts()).await.unwrap();
    conn.query_drop(statements).await.unwrap_or_else(|e| panic!("{statements}: {e}"));
    conn.disconnect().await.unwrap();
}

/// A configuration with one MySQL source through `ssh` (with the key at `key`,
/// relative to `dir`, and the host key `host_key` pinned), logging in with
/// `password`, an NDJSON destination and the sync `people` running `query`.
fn config(dir: &Path, ssh: &SshServer, key: &str, host_key: &str, password: &str, query: &str) -> Config {
    let text = format!(
        r#"
        state_dir = "state"
        [sources.shop]
        kind = "mysql"
        url = "{url}"
        password_env = "SHOP_DB_PASSWORD"
        statement_timeout = "1m"
        [sources.shop.ssh]
        host = "{host}"
        port = {port}
        user = "{user}"
        private_key_path = "{key}"
        host_key = "{host_key}"
        [destinations.out]
        kind = "ndjson"
        path = "calls.ndjson"
        [[syncs]]
        name = "people"
        type = "identify"
        source = "shop"
        destination = "out"
        query = """{query}"""
        every = "1m"
        "#,
        url = env("CDP_TEST_MYSQL_URL"),
        host = ssh.host,
        port = ssh.port,
        user = ssh.user,
    );
    let password = password.to_owned();
    Config::parse(&text, dir, &|name| (name == "SHOP_DB_PASSWORD").then(|| password.clone())).unwrap()
}

async fn runner(config: Config, clock: &Arc<ManualClock>) -> Runner {
    Runner::new(config, clock.clone() as Arc<dyn Clock>).await.unwrap()
}

fn calls(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("calls.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const PEOPLE: &str = "SELECT id AS userId, email, plan FROM ssh_people \
                      WHERE UNIX_TIMESTAMP(updated_at) > {{last_sync_time}} ORDER BY id";

/// `ssh_people`: 1,000 people updated at 09:00 UTC on 2026-11-23 (enough rows to fill
/// several SSH channel windows).
async fn people_table() {
    sql("DROP TABLE IF EXISTS ssh_people;
         CREATE TABLE ssh_people (id BIGINT PRIMARY KEY, email VARCHAR(64), plan VARCHAR(8),
                                  updated_at TIMESTAMP(3) NULL);
         SET time_zone = '+00:00';
         INSERT INTO ssh_people SELECT seq, CONCAT('person', seq, '@example.com'),
             ELT(1 + seq % 2, 'free', 'pro'), '2026-11-23 09:00:00' FROM seq_1_to_1000;")
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_sync_runs_through_the_tunnel_with_a_generated_key() {
    people_table().await;
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let key = new_key(&dir.path().join("keys"), "id_ed25519");
    ssh.authorize(&key);
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let password = env("CDP_TEST_MYSQL_PASSWORD");
    let runner =
        runner(config(dir.path(), &ssh, "keys/id_ed25519", &ssh.host_key, &password, PEOPLE), &clock).await;

    runner.check_source("shop").await.unwrap();
    // `once`: one run, every row into the NDJSON file.
    let first = runner.run("people").await.unwrap().record;
    assert_eq!(
        (first.outcome, first.rows_read, first.calls_delivered, first.row_errors),
        (Outcome::Succeeded, 1000, 1000, 0),
        "{:?}",
        first.error
    );
    let sent = calls(dir.path());
    assert_eq!(sent.len(), 1000);
    for (i, call) in sent.iter().enumerate() {
        let id = i + 1;
        assert_eq!(call["type"], "identify");
        assert_eq!(call["userId"], id.to_string());
        assert_eq!(call["traits"]["email"], format!("person{id}@example.com"));
        assert_eq!(call["traits"]["plan"], if id % 2 == 0 { "free" } else { "pro" });
    }
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, ts("2026-11-23T10:00:00Z").as_secs());

    // Incremental, as without a tunnel: the next run sends only what changed.
    sql("UPDATE ssh_people SET email = 'changed@example.com', updated_at = '2026-11-23 10:05:00' WHERE id = 7")
        .await;
    clock.set(ts("2026-11-23T10:10:00Z"));
    let second = runner.run("people").await.unwrap().record;
    assert_eq!((second.outcome, second.rows_read), (Outcome::Succeeded, 1), "{:?}", second.error);
    let sent = calls(dir.path());
    assert_eq!((sent.len(), &sent[1000]["userId"]), (1001, &Value::from("7")));
    assert_eq!(sent[1000]["traits"]["email"], "changed@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_source_through_the_tunnel_names_the_step_that_failed() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    ssh.authorize(&key);
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let password = env("CDP_TEST_MYSQL_PASSWORD");
    let step = |error: RunnerError| match error {
        RunnerError::Source { source, .. } => (source.check_step(), source.to_string()),
        other => panic!("{other:?}"),
    };

    // Everything right: the check passes.
    let good = runner(config(dir.path(), &ssh, "id_ed25519", &ssh.host_key, &password, PEOPLE), &clock).await;
    good.check_source("shop").await.unwrap();

    // The tunnel opens, but the database refuses the password: the database login,
    // and the password never shows.
    let wrong_password = "not-the-password-7f3a";
    let refused =
        runner(config(dir.path(), &ssh, "id_ed25519", &ssh.host_key, wrong_password, PEOPLE), &clock).await;
    let (failed, message) = step(refused.check_source("shop").await.unwrap_err());
    assert_eq!(failed, CheckStep::DatabaseLogin, "{message}");
    assert!(message.contains("via SSH"), "the error says the tunnel was used: {message}");
    assert!(!message.contains(wrong_password) && !message.contains(&password), "{message}");

    // Another host key pinned: the SSH host key, naming both fingerprints.
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let pinned_elsewhere =
        runner(config(dir.path(), &ssh, "id_ed25519", wrong, &password, PEOPLE), &clock).await;
    let (failed, message) = step(pinned_elsewhere.check_source("shop").await.unwrap_err());
    assert_eq!(failed, CheckStep::SshHostKey, "{message}");
    assert!(message.contains(wrong) && message.contains(&ssh.host_key), "{message}");
}

/// A query dropped mid-stream is ended by `KILL CONNECTION`, sent through the same
/// tunnel (which stays open until it is sent): the server's connection goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_query_is_killed_through_the_tunnel() {
    use cdp_source::tunnel::SshConfig;
    use cdp_source::{MysqlOptions, MysqlSource, Source};

    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    ssh.authorize(&key);
    let config: SshConfig = ssh.config(&key.private_key_path);
    let options = MysqlOptions::new().password(env("CDP_TEST_MYSQL_PASSWORD")).ssh_tunnel(config);
    let source = MysqlSource::new("shop", &env("CDP_TEST_MYSQL_URL"), options).unwrap();
    assert!(source.target().contains(" via SSH "), "{}", source.target());

    // A million rows, far more than the socket buffers hold.
    let mut rows = source
        .query("SELECT a.seq * 1000 + b.seq AS n, 'ssh_kill_marker' AS marker FROM seq_1_to_1000 a, seq_1_to_1000 b")
        .await
        .unwrap();
    for _ in 0..10 {
        rows.next().await.unwrap().unwrap();
    }
    let mut admin = mysql_async::Conn::new(direct_opts()).await.unwrap();
    let running = "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                   WHERE INFO LIKE '%ssh_kill_marker%' AND INFO NOT LIKE '%PROCESSLIST%'";
    let count: Option<u64> = admin.query_first(running).await.unwrap();
    assert_eq!(count, Some(1), "the query runs on the server");
    let kills =
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_KILL'";
    let before: Option<u64> = admin.query_first(kills).await.unwrap();
    drop(rows);
    let mut gone = false;
    for _ in 0..100 {
        let count: Option<u64> = admin.query_first(running).await.unwrap();
        if count == Some(0) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the cancelled query's connection was killed");
    let after: Option<u64> = admin.query_first(kills).await.unwrap();
    assert!(after > before, "a KILL reached the server: {before:?} -> {after:?}");
    admin.disconnect().await.unwrap();
}

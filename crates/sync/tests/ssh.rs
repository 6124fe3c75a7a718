//! Reverse ETL through an SSH tunnel, end to end: a real OpenSSH server
//! (`crates/source/tests/ssh/start.sh`; `bash .ci/test` starts one and sets
//! `CDP_TEST_SSH_*`) in front of the PostgreSQL test server (`CDP_TEST_POSTGRES_URL`).
//! Keys come from `generate_key`, what `reverse_etl keygen` runs.
#![cfg(feature = "ssh")]

#[path = "../../source/tests/ssh/support.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cdp_bucket::{Clock, ManualClock};
use cdp_source::CheckStep;
use cdp_sync::{Config, Outcome, Runner, RunnerError};
use serde_json::Value;
use support::{OwnSshServer, SshServer, new_key, server};

fn ts(s: &str) -> cdp_calls::Timestamp {
    s.parse().unwrap()
}

fn postgres_url() -> String {
    std::env::var("CDP_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_POSTGRES_URL is not set: these tests need the PostgreSQL server that `bash .ci/test` \
             installs and starts on loopback. Run them with `bash .ci/test`."
        )
    })
}

async fn sql(statements: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(statements).await.unwrap();
    client
}

/// A configuration with one PostgreSQL source through `ssh` (with the key at
/// `key`, relative to `dir`), an NDJSON destination and the sync `people`.
fn config(dir: &Path, ssh: &SshServer, key: &str, host_key: &str, query: &str) -> Config {
    let text = format!(
        r#"
        state_dir = "state"
        [sources.pg]
        kind = "postgres"
        url = "{url}"
        statement_timeout = "1m"
        [sources.pg.ssh]
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
        source = "pg"
        destination = "out"
        query = """{query}"""
        every = "1m"
        "#,
        url = postgres_url(),
        host = ssh.host,
        port = ssh.port,
        user = ssh.user,
    );
    Config::parse(&text, dir, &|_| None).unwrap()
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

const PEOPLE: &str = r#"SELECT id AS "userId", email FROM ssh_sync.people
    WHERE updated_at > to_timestamp({{last_sync_time}}) ORDER BY id"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_runs_through_the_tunnel_with_a_generated_key() {
    sql("DROP SCHEMA IF EXISTS ssh_sync CASCADE; CREATE SCHEMA ssh_sync;
         CREATE TABLE ssh_sync.people (id int8, email text, updated_at timestamptz);
         INSERT INTO ssh_sync.people VALUES (1, 'ada@example.com', '2026-11-23T09:00:00Z'),
                                            (2, 'bob@example.com', '2026-11-23T09:00:00Z');")
    .await;
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let key = new_key(&dir.path().join("keys"), "id_ed25519");
    ssh.authorize(&key);
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = runner(config(dir.path(), &ssh, "keys/id_ed25519", &ssh.host_key, PEOPLE), &clock).await;

    runner.check_source("pg").await.unwrap();
    let first = runner.run("people").await.unwrap().record;
    assert_eq!(
        (first.outcome, first.rows_read, first.calls_delivered),
        (Outcome::Succeeded, 2, 2),
        "{first:?}"
    );
    let sent = calls(dir.path());
    assert_eq!(
        (sent[0]["userId"].as_str(), sent[1]["traits"]["email"].as_str()),
        (Some("1"), Some("bob@example.com"))
    );
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, ts("2026-11-23T10:00:00Z").as_secs());

    // Incremental, as without a tunnel.
    sql("UPDATE ssh_sync.people SET email = 'bobby@example.com', updated_at = '2026-11-23T10:05:00Z' WHERE id = 2")
        .await;
    clock.set(ts("2026-11-23T10:10:00Z"));
    let second = runner.run("people").await.unwrap().record;
    assert_eq!((second.outcome, second.rows_read), (Outcome::Succeeded, 1));
    assert_eq!(calls(dir.path())[2]["traits"]["email"], "bobby@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_source_names_the_step_that_failed() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let step = |error: RunnerError| match error {
        RunnerError::Source { source, .. } => (source.check_step(), source.to_string()),
        other => panic!("{other:?}"),
    };

    // Not authorized yet: the SSH login.
    let unauthorized = runner(config(dir.path(), &ssh, "id_ed25519", &ssh.host_key, PEOPLE), &clock).await;
    let (failed, message) = step(unauthorized.check_source("pg").await.unwrap_err());
    assert_eq!(failed, CheckStep::SshLogin, "{message}");
    assert!(message.contains(&key.fingerprint), "{message}");

    // Authorized, but another host key configured: the host key, naming both.
    ssh.authorize(&key);
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let pinned_elsewhere = runner(config(dir.path(), &ssh, "id_ed25519", wrong, PEOPLE), &clock).await;
    let (failed, message) = step(pinned_elsewhere.check_source("pg").await.unwrap_err());
    assert_eq!(failed, CheckStep::SshHostKey, "{message}");
    assert!(message.contains(wrong) && message.contains(&ssh.host_key), "{message}");

    // Both right: the check passes. An unknown source is a configuration error.
    let good = runner(config(dir.path(), &ssh, "id_ed25519", &ssh.host_key, PEOPLE), &clock).await;
    good.check_source("pg").await.unwrap();
    let (failed, _) = step(good.check_source("nope").await.unwrap_err());
    assert_eq!(failed, CheckStep::Configuration);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_is_a_new_key_the_configuration_points_at() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let old = new_key(dir.path(), "key-1");
    ssh.authorize(&old);
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let check = |key: &'static str| {
        let (config, clock) = (config(dir.path(), &ssh, key, &ssh.host_key, PEOPLE), clock.clone());
        async move { runner(config, &clock).await.check_source("pg").await }
    };
    check("key-1").await.unwrap();

    // keygen, authorize, point the configuration at the new key: the check passes
    // (and only then is the old key removed from the server).
    let new = new_key(dir.path(), "key-2");
    ssh.authorize(&new);
    check("key-2").await.unwrap();
    ssh.revoke(&old);
    match check("key-1").await.unwrap_err() {
        RunnerError::Source { source, .. } => {
            assert_eq!(source.check_step(), CheckStep::SshLogin, "{source}")
        }
        other => panic!("{other:?}"),
    }
    check("key-2").await.unwrap();
}

/// Rows one by one, each `delay` seconds apart (from `ssh_midrun.knob`).
const SLOW: &str = r#"SELECT g AS "userId", 'ssh_midrun_marker' AS marker
    FROM generate_series(1, 400) AS g CROSS JOIN ssh_midrun.knob AS k
    WHERE pg_sleep(k.delay * sign(g))::text = '' AND to_timestamp({{last_sync_time}}) <= now()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_killed_mid_run_fails_the_run_and_the_next_run_succeeds() {
    let admin = sql("DROP SCHEMA IF EXISTS ssh_midrun CASCADE; CREATE SCHEMA ssh_midrun;
                     CREATE TABLE ssh_midrun.knob (delay float8); INSERT INTO ssh_midrun.knob VALUES (0);")
    .await;
    // An OpenSSH server of this test's own, so its sessions are ours to kill.
    let own = OwnSshServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    own.server.authorize(&key);
    let clock = Arc::new(ManualClock::new(ts("2026-11-23T10:00:00Z")));
    let runner = Arc::new(
        runner(config(dir.path(), &own.server, "id_ed25519", &own.server.host_key, SLOW), &clock).await,
    );

    let first = runner.run("people").await.unwrap().record;
    assert_eq!((first.outcome, first.rows_read), (Outcome::Succeeded, 400), "{first:?}");
    let kept = runner.state().load("people").unwrap().last_sync_time;
    assert_eq!(kept, ts("2026-11-23T10:00:00Z").as_secs());

    // The next run is slow (10 ms a row); kill its SSH session while the query runs.
    admin.batch_execute("UPDATE ssh_midrun.knob SET delay = 0.01").await.unwrap();
    clock.set(ts("2026-11-23T10:10:00Z"));
    let running = tokio::spawn({
        let runner = runner.clone();
        async move { runner.run("people").await }
    });
    let active = "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%ssh_midrun_marker%' \
                  AND query NOT LIKE '%pg_stat_activity%' AND state = 'active'";
    let mut seen = false;
    for _ in 0..200 {
        if !admin.query(active, &[]).await.unwrap().is_empty() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(seen, "the query runs on the server");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(own.kill_sessions() > 0, "the session's sshd processes were found and killed");

    let second = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap()
        .record;
    assert_eq!(second.outcome, Outcome::Failed, "{second:?}");
    let error = second.error.clone().unwrap_or_default();
    assert!(
        error.contains("connection lost") && error.contains("through the SSH tunnel via 127.0.0.1:"),
        "{error}"
    );
    assert!(second.rows_read < 400, "{second:?}");
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, kept, "last_sync_time stays");

    // The next run opens a new tunnel and reads everything since the last success.
    admin.batch_execute("UPDATE ssh_midrun.knob SET delay = 0").await.unwrap();
    clock.set(ts("2026-11-23T10:20:00Z"));
    let third = runner.run("people").await.unwrap().record;
    assert_eq!(
        (third.outcome, third.rows_read, third.last_sync_time),
        (Outcome::Succeeded, 400, kept),
        "{third:?}"
    );
    assert_eq!(runner.state().load("people").unwrap().last_sync_time, ts("2026-11-23T10:20:00Z").as_secs());
    let history = runner.history("people").unwrap();
    let outcomes: Vec<Outcome> = history.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Failed, Outcome::Succeeded]);
}

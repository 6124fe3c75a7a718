//! The `reverse_etl` example as a user meets it, run as a program on a configuration of
//! SQLite syncs: a sync whose query fails its checks, or whose columns cannot be
//! mapped, does not stop `history`, `once` or `preview` of the others and is named on
//! standard error; a failed run's kind shows in `history`; `preview` prints each
//! warning once (no "warning: warning:"); an unknown command prints the usage with
//! status 2; a redirected standard error gets no progress line and no escape code.
//!
//! The example is built and run by `common` (`cargo build --example reverse_etl`).

mod common;

use common::{Ran, run};

/// A SQLite database of three people, and a configuration with four syncs: `good`
/// works; `bad`'s query fails its checks; `conflict`'s result has `userId` and
/// `USERID`; `broken` reads a table that does not exist.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("app.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TABLE people (id INTEGER, email TEXT, updated_at INTEGER);
         INSERT INTO people VALUES (1, 'ada@example.com', 1763888400), (2, 'bob@example.com', 1763888400),
                                   (3, 'cy@example.com', 1763888400);",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("reverse_etl.toml"),
        r#"
state_dir = "state"
[sources.app]
kind = "sqlite"
path = "app.sqlite"
[destinations.out]
kind = "ndjson"
path = "calls.ndjson"

[[syncs]]
name = "good"
type = "identify"
source = "app"
destination = "out"
# No {{last_sync_time}}: a warning, not an error.
query = "SELECT id AS userId, email FROM people"
every = "10m"

[[syncs]]
name = "bad"
type = "identify"
source = "app"
destination = "out"
query = "DELETE FROM people WHERE updated_at > {{last_sync_time}}"
every = "10m"

[[syncs]]
name = "conflict"
type = "identify"
source = "app"
destination = "out"
query = "SELECT id AS userId, id AS USERID, email FROM people WHERE updated_at > {{last_sync_time}}"
every = "10m"

[[syncs]]
name = "broken"
type = "identify"
source = "app"
destination = "out"
query = "SELECT id AS userId FROM missing_table WHERE updated_at > {{last_sync_time}}"
every = "10m"
"#,
    )
    .unwrap();
    dir
}

const CONFIG: &str = "reverse_etl.toml";

fn assert_names_bad(ran: &Ran) {
    assert!(
        ran.stderr.contains(
            "reverse_etl: not set up, does not run: sync \"bad\": the query does not pass its checks"
        ),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("read-only"), "{}", ran.stderr);
}

#[test]
fn once_runs_every_sync_that_is_set_up_and_names_the_others() {
    let dir = setup();
    let ran = run(dir.path(), &["--config", CONFIG, "once"]);
    assert_eq!(ran.status, 1, "a sync failed or did not run\n{}\n{}", ran.stdout, ran.stderr);
    let stdout = &ran.stdout;
    assert!(
        stdout.contains("good: run 1 succeeded — 3 rows read, 3 calls delivered, 0 row errors"),
        "{stdout}"
    );
    assert!(stdout.contains("bad: not run: not set up"), "{stdout}");
    assert!(stdout.contains("sync \"bad\": the query does not pass its checks"), "{stdout}");
    assert!(stdout.contains("conflict: not run: not set up"), "{stdout}");
    assert!(
        stdout.contains("columns `userId` and `USERID` both set `userId`")
            && stdout.contains("reserved names such as userId match without regard to case"),
        "{stdout}"
    );
    assert!(stdout.contains("broken: run 1 failed"), "{stdout}");
    assert!(stdout.contains("[source] source `app`: query failed: no such table: missing_table"), "{stdout}");
    assert_eq!(std::fs::read_to_string(dir.path().join("calls.ndjson")).unwrap().lines().count(), 3);

    // The failed run's kind is in the history; the syncs not set up have none.
    let ran = run(dir.path(), &["--config", CONFIG, "history", "broken"]);
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", ran.stdout);
    assert!(lines[0].contains("kind") && lines[0].contains("error"), "{}", lines[0]);
    assert!(lines[1].starts_with("1    failed ") && lines[1].contains(" source "), "{}", lines[1]);
    assert!(lines[1].contains("no such table: missing_table"), "{}", lines[1]);
    assert_names_bad(&ran);
    for sync in ["bad", "conflict"] {
        let ran = run(dir.path(), &["--config", CONFIG, "history", sync]);
        assert_eq!((ran.status, ran.stdout.lines().count()), (0, 1), "{sync}: {}", ran.stdout);
    }

    // One sync by name.
    let ran = run(dir.path(), &["--config", CONFIG, "once", "good"]);
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert!(ran.stdout.starts_with("good: run 2 succeeded"), "{}", ran.stdout);
    assert_names_bad(&ran);
    let ran = run(dir.path(), &["--config", CONFIG, "once", "conflict"]);
    assert_eq!(ran.status, 1);
    assert!(ran.stdout.contains("conflict: not run: not set up"), "{}", ran.stdout);
    assert!(!ran.stderr.contains("sync \"conflict\""), "said once, on stdout: {}", ran.stderr);
}

#[test]
fn history_works_for_the_others_and_names_the_sync_not_set_up() {
    let dir = setup();
    let ran = run(dir.path(), &["--config", CONFIG, "history", "good"]);
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    assert_eq!(ran.stdout.lines().count(), 1, "no run yet: {}", ran.stdout);
    assert!(ran.stdout.starts_with("run  outcome"), "{}", ran.stdout);
    assert_names_bad(&ran);
}

#[test]
fn preview_works_for_the_others_and_prints_each_warning_once() {
    let dir = setup();
    let ran = run(dir.path(), &["--config", CONFIG, "preview", "good", "--rows", "2"]);
    assert_eq!(ran.status, 0, "{}", ran.stderr);
    let stdout = &ran.stdout;
    assert!(!stdout.contains("warning: warning:") && !ran.stderr.contains("warning: warning:"), "{stdout}");
    assert_eq!(stdout.matches("warning: the query does not use {{last_sync_time}}").count(), 1, "{stdout}");
    assert!(stdout.contains("column \"email\" -> traits.email"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with('{')).count(), 2, "two calls: {stdout}");
    assert_names_bad(&ran);
    assert!(!dir.path().join("calls.ndjson").exists(), "a preview delivers nothing");

    // A sync that is not set up cannot be previewed: said once, status 1.
    let ran = run(dir.path(), &["--config", CONFIG, "preview", "conflict"]);
    assert_eq!(ran.status, 1, "{}", ran.stderr);
    assert_eq!(
        ran.stderr.matches("sync \"conflict\": the query's columns cannot be mapped").count(),
        1,
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
}

#[test]
fn an_unknown_command_prints_the_usage() {
    let dir = setup();
    for args in [
        &["--config", CONFIG, "frobnicate", "good"][..],
        &["--config", "no-such-file.toml", "histroy", "good"],
        &["--config", CONFIG],
        &["--config", CONFIG, "once", "good", "extra"],
    ] {
        let ran = run(dir.path(), args);
        assert_eq!(ran.status, 2, "{args:?}");
        assert!(ran.stdout.is_empty(), "{args:?}: {}", ran.stdout);
        assert!(
            ran.stderr.contains("usage: reverse_etl --config FILE (run | once [SYNC]"),
            "{args:?}: {}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("no-such-file"), "the command is read before the file: {}", ran.stderr);
    }
    let ran = run(dir.path(), &["--config", CONFIG, "frobnicate"]);
    assert!(ran.stderr.starts_with("reverse_etl: unknown command \"frobnicate\"\nusage: "), "{}", ran.stderr);
}

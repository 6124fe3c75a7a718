//! The `reverse_etl` example on a diff sync (`mode = "diff"`): `once` prints a run's
//! added/changed/deleted counts, `preview` prints the diff without delivering or
//! touching the snapshot, and `history` shows the three counts of each run.
//!
//! The example is built and run by `common` (`cargo build --example reverse_etl`).

mod common;

use std::path::Path;

use common::run;

const CONFIG: &str = "reverse_etl.toml";

fn sql(dir: &Path, statements: &str) {
    rusqlite::Connection::open(dir.join("app.sqlite")).unwrap().execute_batch(statements).unwrap();
}

#[test]
fn a_diff_sync_shows_its_changes_in_once_preview_and_history() {
    let dir = tempfile::tempdir().unwrap();
    sql(
        dir.path(),
        "CREATE TABLE people (id INTEGER, email TEXT, plan TEXT);
         INSERT INTO people VALUES (1, 'ada@example.com', 'pro'), (2, 'bob@example.com', 'free'),
                                   (3, 'cy@example.com', 'free');",
    );
    std::fs::write(
        dir.path().join(CONFIG),
        r#"
state_dir = "state"
[sources.app]
kind = "sqlite"
path = "app.sqlite"
[destinations.out]
kind = "ndjson"
path = "calls.ndjson"

[[syncs]]
name = "people"
type = "identify"
source = "app"
destination = "out"
query = "SELECT id AS userId, email, plan FROM people"
every = "15m"
mode = "diff"
primary_key = "userId"
on_delete = "event"
"#,
    )
    .unwrap();
    let ran = run(dir.path(), &["--config", CONFIG, "once", "people"]);
    assert_eq!(ran.status, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains(
            "people: run 1 succeeded — 3 rows read, 3 calls delivered, 0 row errors (3 added, 0 changed, 0 deleted)"
        ),
        "{}",
        ran.stdout
    );

    sql(dir.path(), "UPDATE people SET plan = 'pro' WHERE id = 2; DELETE FROM people WHERE id = 3;");
    let snapshot = std::fs::read(dir.path().join("state/people/snapshot.diff")).unwrap();
    let ran = run(dir.path(), &["--config", CONFIG, "preview", "people"]);
    assert_eq!(ran.status, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("diff: 0 added, 1 changed, 1 deleted, 1 unchanged"), "{}", ran.stdout);
    assert!(ran.stdout.contains("deleted key \"3\""), "{}", ran.stdout);
    assert!(ran.stdout.contains(r#""event":"User Deleted""#), "{}", ran.stdout);
    assert_eq!(std::fs::read(dir.path().join("state/people/snapshot.diff")).unwrap(), snapshot);
    assert_eq!(std::fs::read_to_string(dir.path().join("calls.ndjson")).unwrap().lines().count(), 3);

    let ran = run(dir.path(), &["--config", CONFIG, "once", "people"]);
    assert!(
        ran.stdout.contains("2 calls delivered, 0 row errors (0 added, 1 changed, 1 deleted)"),
        "{}",
        ran.stdout
    );
    let ran = run(dir.path(), &["--config", CONFIG, "history", "people"]);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", ran.stdout);
    assert!(lines[0].contains("added/changed/deleted"), "{}", lines[0]);
    assert!(lines[1].starts_with("1    succeeded") && lines[1].contains(" 3/0/0 "), "{}", lines[1]);
    assert!(lines[2].starts_with("2    succeeded") && lines[2].contains(" 0/1/1 "), "{}", lines[2]);
}

//! The `reverse_etl` example on a diff sync (`mode = "diff"`): `once` prints a run's
//! added/changed/deleted counts, `preview` prints the diff without delivering or
//! touching the snapshot, and `history` shows the three counts of each run.
//!
//! Cargo builds no example for an integration test, so the test builds it with
//! `cargo build --example reverse_etl` (with the features this test was built with)
//! and runs the executable cargo reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The example's executable, built once per test process.
fn reverse_etl() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            "cdp-warehouse",
            "--example",
            "reverse_etl",
        ]);
        // The features this test was built with, so the build shares its artifacts.
        let features: Vec<&str> = [
            ("snowflake", cfg!(feature = "snowflake")),
            ("mysql", cfg!(feature = "mysql")),
            ("ssh", cfg!(feature = "ssh")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        if features.len() == 3 {
            cargo.arg("--all-features");
        } else if !features.is_empty() {
            cargo.args(["--features", &features.join(",")]);
        }
        let output = cargo.output().expect("running cargo");
        assert!(
            output.status.success(),
            "cargo build --example reverse_etl failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| {
                message["reason"] == "compiler-artifact" && message["target"]["name"] == "reverse_etl"
            })
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the example's executable")
    })
}

/// What a run of the example gave.
struct Ran {
    status: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Ran {
    let Output { status, stdout, stderr } = Command::new(reverse_etl())
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("running the example");
    let ran = Ran {
        status: status.code().expect("an exit status"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    // Standard error is a pipe here: no progress line, no escape code.
    assert!(!ran.stderr.contains('\x1b') && !ran.stderr.contains('\r'), "{args:?}: {:?}", ran.stderr);
    ran
}

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

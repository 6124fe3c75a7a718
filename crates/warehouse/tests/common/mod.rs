//! Running the examples from an integration test.
//!
//! Cargo builds no example for an integration test, so the tests build one with
//! `cargo build --example NAME` (with the features the test was built with) and run
//! the executable cargo reports.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `reverse_etl` example's executable, built once per test process.
pub(crate) fn reverse_etl() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| build("reverse_etl"))
}

/// The `export` example's executable, built once per test process.
pub(crate) fn export() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| build("export"))
}

/// Builds the example `name` and returns its executable.
fn build(name: &str) -> PathBuf {
    {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            "cdp-warehouse",
            "--example",
            name,
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
            "cargo build --example {name} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == name)
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the example's executable")
    }
}

/// What a run of the example gave.
pub(crate) struct Ran {
    pub(crate) status: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the example in `dir`; checks that its standard error (a pipe) has no
/// progress line and no escape code.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Ran {
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

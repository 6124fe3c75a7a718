//! Bench input: the peer benchmark's generator (`benches/data/gen_calls.py`, a copy
//! of `../shared/bench/gen_calls.py`), so the numbers compare with the side-by-side
//! runs against DuckDB in the README.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Command;

/// `CDP_BENCH_CALLS` calls (default `default`) from the generator, and how many.
pub fn generated_calls(default: u64) -> (Vec<u8>, u64) {
    let calls: u64 = std::env::var("CDP_BENCH_CALLS").ok().and_then(|n| n.parse().ok()).unwrap_or(default);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/data/gen_calls.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(calls.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.stdout, calls)
}

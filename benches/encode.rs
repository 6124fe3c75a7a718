//! NDJSON in, files out: the export example's work, per format.
//!
//! The input comes from the peer benchmark's generator
//! (`../shared/bench/gen_calls.py`, the same realistic mix DuckDB is measured on),
//! so the numbers compare with the side-by-side runs in the README. Set
//! `CDP_BENCH_CALLS` to change the number of calls (default 20,000, about 16 MB).
//!
//! ```text
//! cargo bench -p cdp-warehouse --bench encode
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use cdp_warehouse::calls::ndjson::CallReader;
use cdp_warehouse::calls::{CallType, Timestamp};
use cdp_warehouse::encode::{Encode, EncodeOptions, FileEncoder, FileFormat};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Generates the input with the peer benchmark's script; fails loudly without it.
fn input() -> (Vec<u8>, u64) {
    let calls: u64 = std::env::var("CDP_BENCH_CALLS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/gen_calls.py");
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

/// Reads every call and encodes one file per call type; returns the bytes written.
fn export(input: &[u8], format: FileFormat) -> usize {
    let received_at = Timestamp::UNIX_EPOCH;
    let mut encoders: BTreeMap<CallType, FileEncoder> = BTreeMap::new();
    for call in CallReader::with_received_at(input, received_at) {
        let call = call.expect("the generator writes valid calls");
        encoders
            .entry(call.call_type())
            .or_insert_with(|| FileEncoder::new(format, call.call_type(), EncodeOptions::default()))
            .write(&call)
            .expect("encoding to memory");
    }
    encoders.into_values().map(|e| e.finish_to_vec().expect("finishing to memory").len()).sum()
}

fn bench(c: &mut Criterion) {
    let (input, calls) = input();
    for (unit, throughput) in
        [("bytes", Throughput::Bytes(input.len() as u64)), ("calls", Throughput::Elements(calls))]
    {
        let mut group = c.benchmark_group(format!("ndjson_to_file/{unit}"));
        group.sample_size(10).throughput(throughput);
        for format in FileFormat::ALL {
            group.bench_with_input(BenchmarkId::from_parameter(format), &input, |b, input| {
                b.iter(|| export(input, format))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

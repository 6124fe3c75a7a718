//! NDJSON in, files out: the export example's work, per format.
//!
//! The input comes from the peer benchmark's generator
//! (`benches/data/gen_calls.py`, the same realistic mix DuckDB is measured on),
//! so the numbers compare with the side-by-side runs in the README. Set
//! `CDP_BENCH_CALLS` to change the number of calls (default 20,000, about 16 MB).
//!
//! ```text
//! cargo bench -p cdp-warehouse --bench encode
//! ```

mod common;

use std::collections::BTreeMap;

use cdp_warehouse::calls::ndjson::CallReader;
use cdp_warehouse::calls::{CallType, Timestamp};
use cdp_warehouse::encode::{Encode, EncodeOptions, FileEncoder, FileFormat};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

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
    let (input, calls) = common::generated_calls(20_000);
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

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
//!
//! The `floor` group times what no NDJSON-to-Parquet export on one thread can
//! avoid, on the same input: checking that every line is JSON (serde_json into a
//! borrowed `RawValue`, keeping nothing), and arrow-rs's Parquet writer alone,
//! with Snappy, writing the export's finished Arrow batches (read back from its
//! files) with no dictionaries and no statistics, its cheapest settings.

mod common;

use std::collections::BTreeMap;

use cdp_warehouse::calls::ndjson::CallReader;
use cdp_warehouse::calls::{CallType, Timestamp};
use cdp_warehouse::encode::{Encode, EncodeOptions, FileEncoder, FileFormat};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// Reads every call into one encoder per call type.
fn encoders(input: &[u8], format: FileFormat) -> BTreeMap<CallType, FileEncoder> {
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
    encoders
}

/// Reads every call and encodes one file per call type; returns the bytes written.
fn export(input: &[u8], format: FileFormat) -> usize {
    encoders(input, format).into_values().map(|e| e.finish_to_vec().expect("finishing to memory").len()).sum()
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

/// Checks that every line is JSON, keeping nothing; returns the lines checked.
fn validate_only(input: &[u8]) -> usize {
    input
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let text = std::str::from_utf8(line).expect("UTF-8");
            serde_json::from_str::<&serde_json::value::RawValue>(text).expect("valid JSON")
        })
        .count()
}

/// The export's Parquet files as Arrow batches of 1,024 rows, with their schemas.
fn parquet_batches(input: &[u8]) -> Vec<(arrow_schema::SchemaRef, Vec<arrow_array::RecordBatch>)> {
    encoders(input, FileFormat::Parquet)
        .into_values()
        .map(|encoder| {
            let file = encoder.finish_to_file().expect("finishing to a temporary file");
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(file).expect("a Parquet file").with_batch_size(1024);
            let schema = reader.schema().clone();
            let batches = reader.build().expect("a reader").map(|b| b.expect("a batch")).collect();
            (schema, batches)
        })
        .collect()
}

/// arrow-rs's Parquet writer alone, Snappy, no dictionaries, no statistics;
/// returns the bytes written.
fn arrow_writer_only(files: &[(arrow_schema::SchemaRef, Vec<arrow_array::RecordBatch>)]) -> u64 {
    let properties = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    files
        .iter()
        .map(|(schema, batches)| {
            let mut writer = ArrowWriter::try_new(std::io::sink(), schema.clone(), Some(properties.clone()))
                .expect("a writer");
            for batch in batches {
                writer.write(batch).expect("writing to a sink");
            }
            writer.flush().expect("flushing to a sink");
            let written = writer.bytes_written() as u64;
            writer.close().expect("closing");
            written
        })
        .sum()
}

fn floor(c: &mut Criterion) {
    let (input, calls) = common::generated_calls(20_000);
    let files = parquet_batches(&input);
    let mut group = c.benchmark_group("floor/calls");
    group.sample_size(10).throughput(Throughput::Elements(calls));
    group.bench_function("validate_json_serde", |b| b.iter(|| validate_only(&input)));
    group.bench_function("read_calls", |b| {
        b.iter(|| CallReader::with_received_at(&input[..], Timestamp::UNIX_EPOCH).count())
    });
    group.bench_function("arrow_parquet_writer_snappy", |b| b.iter(|| arrow_writer_only(&files)));
    group.finish();
}

criterion_group!(benches, bench, floor);
criterion_main!(benches);

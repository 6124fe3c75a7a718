//! NDJSON into a local bucket through the spool and the bucket writer, per format
//! and per durability setting: what the collector does with every batch.
//!
//! Each iteration reads the generated NDJSON, appends it in batches of 500 calls
//! (the collector's batch size) to a writer spooling into a fresh directory, and
//! shuts the writer down, which publishes one file per call type into a local
//! bucket directory. Set `CDP_BENCH_CALLS` to change the input (default 20,000
//! calls, about 16 MB).
//!
//! ```text
//! cargo bench -p cdp-warehouse --bench export
//! ```

mod common;

use std::sync::Arc;
use std::time::Duration;

use cdp_warehouse::bucket::{Bucket, BucketWriter, Durability, Id, ManualClock, WriterConfig};
use cdp_warehouse::calls::Timestamp;
use cdp_warehouse::calls::ndjson::CallReader;
use cdp_warehouse::encode::FileFormat;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 500;

fn export(
    runtime: &tokio::runtime::Runtime,
    input: &[u8],
    format: FileFormat,
    durability: Durability,
) -> u64 {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let received_at: Timestamp = "2026-11-22T10:00:00Z".parse().expect("a timestamp");
    runtime.block_on(async {
        let bucket = Bucket::local(dir.path().join("bucket")).expect("a local bucket");
        let config = WriterConfig::new(Id::new("bench").unwrap(), Id::new("export").unwrap(), format)
            .with_spool_dir(dir.path().join("spool"))
            .with_durability(durability);
        let clock = Arc::new(ManualClock::new(received_at));
        let (mut writer, _) = BucketWriter::open(bucket, config, clock).await.expect("opening the writer");
        let mut batch = Vec::with_capacity(BATCH);
        for call in CallReader::with_received_at(input, received_at) {
            batch.push(call.expect("the generator writes valid calls"));
            if batch.len() == BATCH {
                writer.append(std::mem::take(&mut batch)).await.expect("appending");
            }
        }
        writer.append(batch).await.expect("appending");
        writer.shutdown().await.expect("publishing").iter().map(|r| r.bytes()).sum()
    })
}

fn bench(c: &mut Criterion) {
    let (input, calls) = common::generated_calls(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    for (unit, throughput) in
        [("bytes", Throughput::Bytes(input.len() as u64)), ("calls", Throughput::Elements(calls))]
    {
        let mut group = c.benchmark_group(format!("ndjson_to_bucket/{unit}"));
        group.sample_size(10).throughput(throughput);
        for format in FileFormat::ALL {
            for (name, durability) in [
                ("every_append", Durability::EveryAppend),
                ("every_second", Durability::Interval(Duration::from_secs(1))),
                ("never", Durability::Never),
            ] {
                group.bench_with_input(BenchmarkId::new(format.extension(), name), &input, |b, input| {
                    b.iter(|| export(&runtime, input, format, durability))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

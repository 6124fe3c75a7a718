//! Exports an NDJSON stream of calls into a bucket through the bucket writer: one
//! sync with the next position, one file per call type.
//!
//! ```text
//! cargo run --release --example export -- --format json|csv|parquet --bucket URL|DIR \
//!     [--integration ID] [--action ID] [--compression snappy|zstd|none] [--spool DIR] \
//!     [--max-file-bytes N] [--sort-buffer-bytes N] [--row-group-rows N] [--no-fsync] [--threads N] \
//!     [INPUT.ndjson | -]
//! ```
//!
//! The NDJSON is parsed on `--threads` threads (by default one per core) in blocks
//! of whole lines, handed back in order ([`ParallelCallReader`]), and each call
//! type's file is encoded on a thread of its own: the files are byte for byte those
//! of `--threads 1`, which parses on the main thread.
//!
//! [`ParallelCallReader`]: cdp_warehouse::calls::ndjson::ParallelCallReader
//!
//! Files are named `<integration>.<action>.<position>.<type>.<ext>`; each run is
//! one sync, numbered one past the highest position already in the bucket (a run
//! whose files would pass `--max-file-bytes`, 256 MiB by default, is split into
//! several syncs). Bad lines are reported on stderr with their line numbers and
//! skipped; every good line is written. Exit status: 0 when every line was
//! written, 2 when some lines were rejected (the files are still written), 1 on any
//! other error.
//!
//! The input file is the durable copy, so by default the writer keeps no spool;
//! `--spool DIR` spools the calls like the collector does. Either way rows are
//! written as they come into anonymous temporary files in the bucket directory
//! (or the system temporary directory for an object store), which get their names
//! when the sync is published: memory stays at a few tens of MB whatever the input.
//! Local files are synced to disk before they get their names; `--no-fsync` skips
//! that (for benchmarks against tools that do not sync).
//!
//! When standard error is a terminal, a progress line there shows the calls read and
//! rejected and the rate; redirected, standard error gets the bad lines only.

/// mimalloc keeps freed memory mapped for reuse, which spares the page faults of
/// glibc's malloc giving large buffers back and taking them again per batch.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{self, BufReader, Read};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cdp_warehouse::bucket::{Bucket, BucketWriter, Id, Published, SyncReport, SystemClock, WriterConfig};
use cdp_warehouse::calls::Call;
use cdp_warehouse::calls::ndjson::{CallReader, LineError, LineErrorKind, ParallelCallReader};
use cdp_warehouse::encode::{Compression, EncodeOptions, FileFormat};

#[path = "common/progress.rs"]
mod progress;

use progress::ProgressLine;

const USAGE: &str = "usage: export --format json|csv|parquet --bucket URL|DIR [--integration ID] [--action ID] \
                     [--compression snappy|zstd|none] [--spool DIR] [--max-file-bytes N] [--sort-buffer-bytes N] [--row-group-rows N] \
                     [--no-fsync] [--threads N] [INPUT.ndjson | -]";

/// Calls handed to the writer at a time.
const BATCH: usize = 4096;

struct Args {
    format: FileFormat,
    bucket: String,
    integration: Id,
    action: Id,
    compression: Compression,
    spool: Option<PathBuf>,
    max_file_bytes: Option<u64>,
    sort_buffer_bytes: Option<usize>,
    row_group_rows: Option<usize>,
    fsync: bool,
    threads: NonZeroUsize,
    input: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut format = None;
    let mut bucket = None;
    let mut integration = Id::new("cdp").expect("a valid id");
    let mut action = Id::new("export").expect("a valid id");
    let mut compression = Compression::Snappy;
    let mut spool = None;
    let mut max_file_bytes = None;
    let mut sort_buffer_bytes = None;
    let mut row_group_rows = None;
    let mut fsync = true;
    let mut threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let mut input = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--format" => format = Some(value("--format")?.parse::<FileFormat>().map_err(|e| e.to_string())?),
            "--bucket" | "--out" => bucket = Some(value("--bucket")?),
            "--integration" => integration = value("--integration")?.parse().map_err(|e| format!("{e}"))?,
            "--action" => action = value("--action")?.parse().map_err(|e| format!("{e}"))?,
            "--compression" => {
                compression = match value("--compression")?.as_str() {
                    "snappy" => Compression::Snappy,
                    "zstd" => Compression::Zstd(3),
                    "none" => Compression::None,
                    other => {
                        return Err(format!("unknown compression {other:?}: expected snappy, zstd or none"));
                    }
                }
            }
            "--spool" => spool = Some(PathBuf::from(value("--spool")?)),
            "--max-file-bytes" => {
                let text = value("--max-file-bytes")?;
                max_file_bytes =
                    Some(text.parse().map_err(|_| format!("--max-file-bytes {text:?}: not a number"))?);
            }
            "--sort-buffer-bytes" => {
                let text = value("--sort-buffer-bytes")?;
                sort_buffer_bytes =
                    Some(text.parse().map_err(|_| format!("--sort-buffer-bytes {text:?}: not a number"))?);
            }
            "--row-group-rows" => {
                let text = value("--row-group-rows")?;
                row_group_rows =
                    Some(text.parse().map_err(|_| format!("--row-group-rows {text:?}: not a number"))?);
            }
            "--no-fsync" => fsync = false,
            "--threads" => {
                let text = value("--threads")?;
                threads =
                    text.parse().map_err(|_| format!("--threads {text:?}: not a number of at least 1"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "-" => input = None,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}\n{USAGE}")),
            path => input = Some(PathBuf::from(path)),
        }
    }
    Ok(Args {
        format: format.ok_or_else(|| format!("--format is required\n{USAGE}"))?,
        bucket: bucket.ok_or_else(|| format!("--bucket is required\n{USAGE}"))?,
        integration,
        action,
        compression,
        spool,
        max_file_bytes,
        sort_buffer_bytes,
        row_group_rows,
        fsync,
        threads,
        input,
    })
}

fn print(report: &SyncReport) {
    for file in &report.files {
        let how = match file.published {
            Published::Created => "wrote",
            _ => "kept (already there with identical bytes)",
        };
        println!("{how} {} ({} rows, {} bytes)", file.object, file.rows, file.bytes);
    }
}

/// Draws how far the export has got.
fn show(line: &ProgressLine, started: std::time::Instant, calls: u64, rejected: u64) {
    line.draw(|| {
        let seconds = started.elapsed().as_secs_f64().max(0.001);
        format!(
            "export: {calls} calls read, {rejected} lines rejected ({:.0} calls/s)",
            calls as f64 / seconds
        )
    });
}

/// The calls of the input, parsed on the main thread for one thread, else on
/// `threads` threads of their own.
fn calls(args: &Args) -> Result<Box<dyn Iterator<Item = Result<Call, LineError>>>, String> {
    let input: Box<dyn Read + Send> = match &args.input {
        Some(path) => {
            Box::new(std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?)
        }
        None => Box::new(io::stdin()),
    };
    Ok(if args.threads.get() == 1 {
        Box::new(CallReader::new(BufReader::with_capacity(1 << 20, input)))
    } else {
        Box::new(ParallelCallReader::new(input, args.threads))
    })
}

async fn run(args: Args, line: &ProgressLine) -> Result<u64, Box<dyn std::error::Error>> {
    let input = calls(&args)?;
    let bucket = if args.fsync {
        Bucket::from_url(&args.bucket)?
    } else if args.bucket.contains("://") {
        return Err("--no-fsync is for a local directory bucket".into());
    } else {
        Bucket::local_with_fsync(&args.bucket, false)?
    };
    let mut encode = EncodeOptions::default().with_compression(args.compression);
    if let Some(bytes) = args.sort_buffer_bytes {
        encode = encode.with_sort_buffer_bytes(bytes);
    }
    if let Some(rows) = args.row_group_rows {
        encode = encode.with_row_group_rows(rows);
    }
    // One run, one sync: the window outlasts any run, and shutdown publishes it.
    let mut config = WriterConfig::new(args.integration, args.action, args.format)
        .with_encode_options(encode)
        .with_interval(Duration::from_secs(100 * 365 * 24 * 3600));
    if let Some(dir) = args.spool {
        config = config.with_spool_dir(dir);
    }
    if let Some(bytes) = args.max_file_bytes {
        config = config.with_max_file_bytes(bytes);
    }
    let (mut writer, recovery) = BucketWriter::open(bucket, config, Arc::new(SystemClock)).await?;
    for report in &recovery.republished {
        print(report);
    }
    let mut rejected = 0u64;
    let mut read = 0u64;
    let started = std::time::Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for item in input {
        match item {
            Ok(call) => {
                read += 1;
                batch.push(call);
                if batch.len() == BATCH {
                    let calls = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    let appended = writer.append(calls).await?;
                    if !appended.published.is_empty() {
                        line.clear();
                    }
                    appended.published.iter().for_each(print);
                    show(line, started, read, rejected);
                }
            }
            Err(e) if matches!(e.kind, LineErrorKind::Io(_)) => return Err(e.into()),
            Err(e) => {
                rejected += 1;
                line.eprintln(&e);
            }
        }
    }
    line.clear();
    writer.append(batch).await?.published.iter().for_each(print);
    writer.shutdown().await?.iter().for_each(print);
    Ok(rejected)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let line = ProgressLine::new();
    match runtime.block_on(run(args, &line)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(rejected) => {
            eprintln!("{rejected} line(s) rejected; every other line was written");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("export failed: {e}");
            ExitCode::from(1)
        }
    }
}

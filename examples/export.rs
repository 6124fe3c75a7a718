//! Converts an NDJSON stream of calls into one file per call type.
//!
//! ```text
//! cargo run --release --example export -- --format json|csv|parquet --out DIR \
//!     [--integration ID] [--action ID] [--compression snappy|zstd|none] [--no-fsync] [INPUT.ndjson | -]
//! ```
//!
//! Files are named `<integration>.<action>.1.<type>.<ext>` (position 1 until the
//! bucket writer numbers syncs). Bad lines are reported on stderr with their line
//! numbers and skipped; every good line is written. Exit status: 0 when every line
//! was written, 2 when some lines were rejected (the files are still written), 1 on
//! any other error. Files are synced to disk before they get their names;
//! `--no-fsync` skips that (for benchmarks against tools that do not sync).

mod common;

/// mimalloc keeps freed memory mapped for reuse, which spares the page faults of
/// glibc's malloc giving large buffers back and taking them again per batch.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use cdp_warehouse::calls::CallType;
use cdp_warehouse::calls::ndjson::CallReader;
use cdp_warehouse::encode::{Compression, Encode, EncodeOptions, FileEncoder, FileFormat};
use common::{Published, check_id, publish_local};

const USAGE: &str = "usage: export --format json|csv|parquet --out DIR [--integration ID] [--action ID] \
                     [--compression snappy|zstd|none] [--no-fsync] [INPUT.ndjson | -]";

struct Args {
    format: FileFormat,
    out: PathBuf,
    integration: String,
    action: String,
    compression: Compression,
    sync: bool,
    input: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut format = None;
    let mut out = None;
    let mut integration = "cdp".to_owned();
    let mut action = "export".to_owned();
    let mut compression = Compression::Snappy;
    let mut sync = true;
    let mut input = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--format" => format = Some(value("--format")?.parse::<FileFormat>().map_err(|e| e.to_string())?),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--integration" => integration = check_id("integration", &value("--integration")?)?,
            "--action" => action = check_id("action", &value("--action")?)?,
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
            "--no-fsync" => sync = false,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "-" => input = None,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}\n{USAGE}")),
            path => input = Some(PathBuf::from(path)),
        }
    }
    Ok(Args {
        format: format.ok_or_else(|| format!("--format is required\n{USAGE}"))?,
        out: out.ok_or_else(|| format!("--out is required\n{USAGE}"))?,
        integration,
        action,
        compression,
        sync,
        input,
    })
}

fn run(args: Args) -> Result<u64, Box<dyn std::error::Error>> {
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        )),
        None => Box::new(BufReader::with_capacity(1 << 20, io::stdin().lock())),
    };
    let options = EncodeOptions::default().with_compression(args.compression);
    let mut encoders: BTreeMap<CallType, FileEncoder> = BTreeMap::new();
    let mut rejected = 0u64;
    for item in CallReader::new(input) {
        match item {
            Ok(call) => {
                let call_type = call.call_type();
                encoders
                    .entry(call_type)
                    .or_insert_with(|| FileEncoder::new(args.format, call_type, options.clone()))
                    .write(&call)?;
            }
            Err(e) => {
                if matches!(e.kind, cdp_warehouse::calls::ndjson::LineErrorKind::Io(_)) {
                    return Err(e.into());
                }
                rejected += 1;
                eprintln!("{e}");
            }
        }
    }
    for (call_type, encoder) in encoders {
        let rows = encoder.rows();
        let name =
            format!("{}.{}.1.{}.{}", args.integration, args.action, call_type, args.format.extension());
        let published = publish_local(&args.out, &name, args.sync, |out| Ok(encoder.finish(out)?))?;
        match published {
            Published::Created(path, bytes) => {
                println!("wrote {} ({rows} rows, {bytes} bytes)", path.display())
            }
            Published::AlreadyThere(path, bytes) => {
                println!(
                    "kept {} ({rows} rows, {bytes} bytes): already there with identical bytes",
                    path.display()
                )
            }
        }
    }
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
    match run(args) {
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

//! A self-hosted data-out pipeline: the Segment / Customer.io tracking API on HTTP,
//! every accepted call spooled and exported to a bucket once per window.
//!
//! ```text
//! CDP_WRITE_KEY=secret cargo run --release --example collector -- \
//!     --listen 127.0.0.1:8080 --bucket URL|DIR --format json|csv|parquet \
//!     --interval 10m --spool DIR --write-key-env CDP_WRITE_KEY \
//!     [--integration ID] [--action ID] [--durability every-append|interval:1s|never] \
//!     [--rejected DIR] [--header-timeout 10s] [--body-timeout 30s] [--max-connections 1024]
//! ```
//!
//! `--write-key-env` names an environment variable holding one write key or several
//! separated by commas (keys never go on the command line). Every argument and the
//! keys are checked, and the address bound, before anything is created on disk.
//! Calls dropped as invalid go to `--rejected` (default: `rejected` in the spool
//! directory). SIGTERM or Ctrl-C stops accepting, lets requests in flight finish,
//! and publishes the open window. Logs go to stderr, coloured only on a terminal
//! (`RUST_LOG=debug` for more).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cdp_warehouse::bucket::{Bucket, BucketWriter, Clock, Durability, Id, SystemClock, WriterConfig};
use cdp_warehouse::collector::{Collector, CollectorConfig, RejectedConfig};
use cdp_warehouse::encode::FileFormat;

const USAGE: &str = "usage: collector --listen ADDR --bucket URL|DIR --format json|csv|parquet --spool DIR \
                     --write-key-env VAR [--interval 10m] [--integration ID] [--action ID] \
                     [--durability every-append|interval:1s|never] [--rejected DIR] \
                     [--header-timeout 10s] [--body-timeout 30s] [--max-connections 1024]";

/// What the command line asks for.
enum Command {
    Run(Box<Args>),
    Help,
}

struct Args {
    listen: SocketAddr,
    bucket: String,
    format: FileFormat,
    interval: Duration,
    spool: PathBuf,
    integration: Id,
    action: Id,
    durability: Durability,
    collector: CollectorConfig,
}

/// `500ms`, `30s`, `10m`, `1h`.
fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 500ms, 30s, 10m or 1h");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = text[..split].parse().map_err(|_| bad())?;
    match &text[split..] {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(bad()),
    }
}

fn parse_args() -> Result<Command, String> {
    let mut listen = None;
    let mut bucket = None;
    let mut format = None;
    let mut interval = Duration::from_secs(600);
    let mut spool = None;
    let mut key_env = None;
    let mut integration = Id::new("cdp").expect("a valid id");
    let mut action = Id::new("collector").expect("a valid id");
    let mut durability = Durability::default();
    let mut rejected = None;
    let mut collector = CollectorConfig::new([""]);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--listen" => {
                let text = value("--listen")?;
                listen = Some(text.parse().map_err(|e| format!("--listen {text:?}: {e}"))?);
            }
            "--bucket" => bucket = Some(value("--bucket")?),
            "--format" => format = Some(value("--format")?.parse::<FileFormat>().map_err(|e| e.to_string())?),
            "--interval" => interval = duration(&value("--interval")?)?,
            "--spool" => spool = Some(PathBuf::from(value("--spool")?)),
            "--write-key-env" => key_env = Some(value("--write-key-env")?),
            "--integration" => integration = value("--integration")?.parse().map_err(|e| format!("{e}"))?,
            "--action" => action = value("--action")?.parse().map_err(|e| format!("{e}"))?,
            "--rejected" => rejected = Some(PathBuf::from(value("--rejected")?)),
            "--header-timeout" => collector.header_timeout = duration(&value("--header-timeout")?)?,
            "--body-timeout" => collector.body_timeout = duration(&value("--body-timeout")?)?,
            "--max-connections" => {
                let text = value("--max-connections")?;
                collector.max_connections =
                    text.parse().map_err(|_| format!("--max-connections {text:?} is not a number"))?;
            }
            "--durability" => {
                let text = value("--durability")?;
                durability = match text.as_str() {
                    "every-append" => Durability::EveryAppend,
                    "never" => Durability::Never,
                    other => match other.strip_prefix("interval:") {
                        Some(every) => Durability::Interval(duration(every)?),
                        None => {
                            return Err(format!(
                                "--durability {other:?}: expected every-append, interval:1s or never"
                            ));
                        }
                    },
                };
            }
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let key_env = key_env.ok_or_else(|| format!("--write-key-env is required\n{USAGE}"))?;
    let keys =
        std::env::var(&key_env).map_err(|_| format!("the environment variable {key_env} is not set"))?;
    collector.write_keys =
        keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect();
    if collector.write_keys.is_empty() {
        return Err(format!("the environment variable {key_env} holds no write key"));
    }
    let spool = spool.ok_or_else(|| format!("--spool is required\n{USAGE}"))?;
    collector.rejected = Some(RejectedConfig::new(rejected.unwrap_or_else(|| spool.join("rejected"))));
    collector.check().map_err(|e| e.to_string())?;
    Ok(Command::Run(Box::new(Args {
        listen: listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?,
        bucket: bucket.ok_or_else(|| format!("--bucket is required\n{USAGE}"))?,
        format: format.ok_or_else(|| format!("--format is required\n{USAGE}"))?,
        interval,
        spool,
        integration,
        action,
        durability,
        collector,
    })))
}

/// Completes on SIGTERM or Ctrl-C.
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Nothing is created on disk before the address is bound and the bucket URL read.
    let collector = Collector::bind(args.listen, args.collector).await?;
    let bucket = Bucket::from_url(&args.bucket)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = WriterConfig::new(args.integration, args.action, args.format)
        .with_spool_dir(args.spool)
        .with_interval(args.interval)
        .with_durability(args.durability);
    let (writer, recovery) = BucketWriter::open(bucket, config, clock.clone()).await?;
    if recovery.resumed_calls > 0 || !recovery.republished.is_empty() {
        eprintln!(
            "recovered: {} calls resumed, {} syncs republished",
            recovery.resumed_calls,
            recovery.republished.len()
        );
    }
    eprintln!("listening on http://{}", collector.local_addr());
    let done = collector.serve(writer, clock, terminated()).await?;
    for report in done.published {
        eprintln!("published position {} ({} calls)", report.position, report.rows());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(*args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collector failed: {e}");
            ExitCode::from(1)
        }
    }
}

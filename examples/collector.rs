//! A self-hosted data-out pipeline: the Segment / Customer.io tracking API on HTTP,
//! every accepted call spooled and exported to a bucket once per window.
//!
//! ```text
//! CDP_WRITE_KEY=secret cargo run --release --example collector -- \
//!     --listen 127.0.0.1:8080 --bucket URL|DIR --format json|csv|parquet \
//!     --interval 10m --spool DIR --write-key-env CDP_WRITE_KEY \
//!     [--integration ID] [--action ID] [--durability every-append|interval:1s|never]
//! ```
//!
//! `--write-key-env` names an environment variable holding one write key or several
//! separated by commas (keys never go on the command line). SIGTERM or Ctrl-C stops
//! accepting, lets requests in flight finish, and publishes the open window. Logs go
//! to stderr (`RUST_LOG=debug` for more).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cdp_warehouse::bucket::{Bucket, BucketWriter, Clock, Durability, Id, SystemClock, WriterConfig};
use cdp_warehouse::collector::{Collector, CollectorConfig};
use cdp_warehouse::encode::FileFormat;

const USAGE: &str = "usage: collector --listen ADDR --bucket URL|DIR --format json|csv|parquet --spool DIR \
                     --write-key-env VAR [--interval 10m] [--integration ID] [--action ID] \
                     [--durability every-append|interval:1s|never]";

struct Args {
    listen: SocketAddr,
    bucket: String,
    format: FileFormat,
    interval: Duration,
    spool: PathBuf,
    write_keys: Vec<String>,
    integration: Id,
    action: Id,
    durability: Durability,
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

fn parse_args() -> Result<Args, String> {
    let mut listen = None;
    let mut bucket = None;
    let mut format = None;
    let mut interval = Duration::from_secs(600);
    let mut spool = None;
    let mut key_env = None;
    let mut integration = Id::new("cdp").expect("a valid id");
    let mut action = Id::new("collector").expect("a valid id");
    let mut durability = Durability::default();
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
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let key_env = key_env.ok_or_else(|| format!("--write-key-env is required\n{USAGE}"))?;
    let keys =
        std::env::var(&key_env).map_err(|_| format!("the environment variable {key_env} is not set"))?;
    Ok(Args {
        listen: listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?,
        bucket: bucket.ok_or_else(|| format!("--bucket is required\n{USAGE}"))?,
        format: format.ok_or_else(|| format!("--format is required\n{USAGE}"))?,
        interval,
        spool: spool.ok_or_else(|| format!("--spool is required\n{USAGE}"))?,
        write_keys: keys.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect(),
        integration,
        action,
        durability,
    })
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = WriterConfig::new(args.integration, args.action, args.format)
        .with_spool_dir(args.spool)
        .with_interval(args.interval)
        .with_durability(args.durability);
    let (writer, recovery) =
        BucketWriter::open(Bucket::from_url(&args.bucket)?, config, clock.clone()).await?;
    if recovery.resumed_calls > 0 || !recovery.republished.is_empty() {
        eprintln!(
            "recovered: {} calls resumed, {} syncs republished",
            recovery.resumed_calls,
            recovery.republished.len()
        );
    }
    let collector =
        Collector::bind(args.listen, CollectorConfig::new(args.write_keys), writer, clock).await?;
    eprintln!("listening on http://{}", collector.local_addr());
    let done = collector.serve(terminated()).await?;
    for report in done.published {
        eprintln!("published position {} ({} calls)", report.position, report.rows());
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collector failed: {e}");
            ExitCode::from(1)
        }
    }
}

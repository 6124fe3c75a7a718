//! Reverse ETL from the command line: syncs defined in a TOML file, run on their
//! schedules, once (for cron), previewed, or looked back on.
//!
//! ```text
//! cargo run --release --example reverse_etl -- --config FILE run
//! cargo run --release --example reverse_etl -- --config FILE once [SYNC]
//! cargo run --release --example reverse_etl -- --config FILE preview SYNC [--rows N]
//! cargo run --release --example reverse_etl -- --config FILE history SYNC
//! cargo run --release --example reverse_etl -- --config FILE enable|disable SYNC
//! cargo run --release --example reverse_etl -- --config FILE check SOURCE
//! cargo run --release --features ssh --example reverse_etl -- keygen PATH
//! ```
//!
//! `run` is the scheduler: every enabled sync runs every `every` until SIGTERM or
//! Ctrl-C. `once` runs one sync, or every enabled sync, once and exits (status 1 if
//! a run failed), for people who schedule with cron; overlapping runs of a sync are
//! skipped. `preview` maps the first rows (10 by default) and prints the calls and
//! row errors, delivering nothing; for a diff sync (`mode = "diff"`) it diffs the
//! whole result against the last successful run and prints how many rows would be
//! added, changed and deleted, the first calls of each and the deleted keys, without
//! touching the snapshot. `history` lists a sync's runs, each failure with its kind
//! (`render`, `source`, `mapping`, `destination`, `record_cap`, `state`, `diff`, …),
//! and a diff sync's added/changed/deleted counts.
//! See `cdp_sync::Config` for the file's keys.
//!
//! A sync whose query fails its checks, or whose result has columns that cannot be
//! mapped (`userId` and `USERID`, `a` and `a.b`: found from the column names when the
//! syncs are set up, before any run), is not set up: it is named on standard error
//! and does not run (`once` then exits with status 1), and every other sync works as
//! usual. An unknown command prints the usage (status 2). When standard error is a
//! terminal, `once` shows each run's progress there (rows read, calls delivered, row
//! errors); redirected, it gets log lines only.
//!
//! `check SOURCE` connects to a source (through its SSH tunnel when it has one), runs
//! `SELECT 1`, and says which step failed, if one did: the SSH connection, the SSH
//! host key, the SSH login, the SSH forwarding, the database connection, the
//! database login or the database itself (status 1). `keygen PATH` (with the `ssh`
//! feature) writes a new Ed25519 key pair, the private key to PATH (mode 0600, never
//! printed) and the public key to PATH.pub, and prints the line to add to the SSH
//! user's `authorized_keys`. Rotating a key: `keygen` a new one, add its line on the
//! SSH server, point `private_key_path` at it, `check` the source, and only then
//! remove the old line.

/// mimalloc's per-thread heaps: rows are decoded on one thread and mapped and freed on
/// another, where glibc's malloc contends on its arena lock for every value.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cdp_warehouse::bucket::{Clock, SystemClock};
use cdp_warehouse::sync::{Config, Outcome, RunReport, Runner, RunnerError, Scheduler};

#[path = "common/progress.rs"]
mod progress;

use progress::ProgressLine;

const USAGE: &str = "usage: reverse_etl --config FILE (run | once [SYNC] | preview SYNC [--rows N] | history SYNC | \
                     enable SYNC | disable SYNC | check SOURCE)\n       reverse_etl keygen PATH";

/// What the command line asks for.
enum Command {
    Run,
    Once(Option<String>),
    Preview(String),
    History(String),
    Enable(String),
    Disable(String),
    Check(String),
    Keygen(String),
}

impl Command {
    /// The command, or `None` for words that are not one.
    fn parse(words: &[&str]) -> Option<Command> {
        let owned = |name: &&str| (*name).to_owned();
        Some(match words {
            ["run"] => Command::Run,
            ["once"] => Command::Once(None),
            ["once", name] => Command::Once(Some(owned(name))),
            ["preview", name] => Command::Preview(owned(name)),
            ["history", name] => Command::History(owned(name)),
            ["enable", name] => Command::Enable(owned(name)),
            ["disable", name] => Command::Disable(owned(name)),
            ["check", name] => Command::Check(owned(name)),
            ["keygen", path] => Command::Keygen(owned(path)),
            _ => return None,
        })
    }

    /// The sync the command reports on itself (its setup error is not repeated).
    fn sync(&self) -> Option<&str> {
        match self {
            Command::Once(Some(name)) | Command::Preview(name) => Some(name),
            _ => None,
        }
    }
}

/// A command line that is not understood: the usage goes to standard error, status 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{USAGE}", self.0)
    }
}

impl std::error::Error for Usage {}

async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn run(args: Vec<String>, line: &ProgressLine) -> Result<bool, Box<dyn std::error::Error>> {
    let mut config = None;
    let mut rest = Vec::new();
    let mut rows = 10u64;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or_else(|| Usage("--config needs a file".into()))?),
            "--rows" => {
                rows = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| Usage("--rows needs a number".into()))?;
            }
            "-h" | "--help" => return Err(Usage(String::new()).into()),
            _ => rest.push(arg),
        }
    }
    let words: Vec<&str> = rest.iter().map(String::as_str).collect();
    let command = Command::parse(&words).ok_or_else(|| {
        Usage(if words.is_empty() {
            "no command given".to_owned()
        } else {
            format!("unknown command {:?}", words.join(" "))
        })
    })?;
    if let Command::Keygen(path) = &command {
        return keygen(path);
    }
    let config = Config::load(config.ok_or_else(|| Usage("--config FILE is required".into()))?)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Commands that run queries set the syncs up fully (their result's columns
    // checked); the others do not connect to every database for that.
    let runner = match command {
        Command::Run | Command::Once(_) | Command::Preview(_) => Runner::new(config, clock).await?,
        _ => Runner::without_column_checks(config, clock).await?,
    };
    // `once` says it for each sync it runs, and the scheduler (`run`) logs it.
    if !matches!(command, Command::Once(None) | Command::Run) {
        for error in runner.setup_errors() {
            if error.sync() != command.sync() {
                line.eprintln(format_args!("reverse_etl: not set up, does not run: {error}"));
            }
        }
    }
    let mut ok = true;
    match command {
        Command::Run => {
            let runner = Arc::new(runner);
            line.eprintln("scheduler running; SIGTERM or Ctrl-C to stop");
            Scheduler::new(runner.clone()).run(terminated()).await?;
            if let Ok(runner) = Arc::try_unwrap(runner) {
                runner.shutdown().await?;
            }
            return Ok(true);
        }
        Command::Once(name) => {
            let names: Vec<String> = match name {
                Some(name) => vec![name],
                None => {
                    let mut names = Vec::new();
                    for sync in &runner.config().syncs {
                        if runner.is_enabled(&sync.name)? {
                            names.push(sync.name.clone());
                        }
                    }
                    names
                }
            };
            if names.is_empty() {
                line.eprintln("nothing to run: every sync is disabled");
            }
            for name in names {
                let report = match run_once(&runner, &name, line).await {
                    Ok(report) => report,
                    Err(error) if error.is_setup_error() => {
                        println!("{name}: not run: not set up\n  {}", indent(&error.to_string()));
                        ok = false;
                        continue;
                    }
                    Err(error) => return Err(error.into()),
                };
                let record = report.record;
                println!(
                    "{}: run {} {} — {} rows read, {} calls delivered, {} row errors{}{}{}",
                    record.sync,
                    record.run,
                    record.outcome,
                    record.rows_read,
                    record.calls_delivered,
                    record.row_errors,
                    diff_counts(&record).map(|c| format!(" ({c})")).unwrap_or_default(),
                    record.row_errors_file.map(|p| format!(" (in {})", p.display())).unwrap_or_default(),
                    report
                        .error
                        .map(|e| format!("\n  [{}] {}", e.kind(), indent(&e.to_string())))
                        .unwrap_or_default(),
                );
                ok &= record.outcome != Outcome::Failed;
            }
        }
        Command::Preview(name) => {
            let preview = match runner.preview(&name, rows).await {
                Ok(preview) => preview,
                Err(error) if error.is_setup_error() => {
                    line.eprintln(format_args!("reverse_etl: not set up, cannot preview: {error}"));
                    runner.shutdown().await?;
                    return Ok(false);
                }
                Err(error) => return Err(error.into()),
            };
            println!("-- {}", preview.sql.replace('\n', "\n-- "));
            // Each warning is a whole diagnostic: `warning: …`, its line and a caret.
            for warning in &preview.warnings {
                println!("{warning}");
            }
            for (column, field) in preview.columns.iter().zip(&preview.fields) {
                println!("column {column:?} -> {field}");
            }
            // A diff sync: what a run now would send, against the last successful run.
            if let Some(diff) = &preview.diff {
                println!(
                    "diff: {} added, {} changed, {} deleted, {} unchanged",
                    diff.added, diff.changed, diff.deleted, diff.unchanged
                );
                for key in &diff.deleted_keys {
                    println!("deleted key {key:?}");
                }
            }
            for call in &preview.calls {
                println!("{}", call.to_json());
            }
            for error in &preview.row_errors {
                println!("row error: {error}");
            }
        }
        Command::History(name) => {
            println!(
                "run  outcome    started                      rows     calls    errors   added/changed/deleted  kind               error"
            );
            for r in runner.history(&name)? {
                // A diff sync's run shows its three counts; a cursor sync's a dash.
                let diff = match (r.added, r.changed, r.deleted) {
                    (Some(a), Some(c), Some(d)) => format!("{a}/{c}/{d}"),
                    _ => "-".to_owned(),
                };
                println!(
                    "{:<4} {:<10} {:<28} {:<8} {:<8} {:<8} {:<22} {:<18} {}",
                    r.run,
                    r.outcome.to_string(),
                    r.started_at.to_string(),
                    r.rows_read,
                    r.calls_delivered,
                    r.row_errors,
                    diff,
                    r.error_kind.map_or("", |kind| kind.as_str()),
                    indent(&r.error.unwrap_or_default()),
                );
            }
        }
        Command::Check(name) => match runner.check_source(&name).await {
            Ok(()) => println!("{name}: ok (connected and ran SELECT 1)"),
            Err(RunnerError::Source { source, .. }) => {
                println!("{name}: the {} step failed: {source}", source.check_step());
                ok = false;
            }
            Err(e) => return Err(e.into()),
        },
        Command::Enable(name) => runner.set_enabled(&name, true)?,
        Command::Disable(name) => runner.set_enabled(&name, false)?,
        Command::Keygen(_) => unreachable!("handled above"),
    }
    runner.shutdown().await?;
    Ok(ok)
}

/// Runs `sync` once, showing its progress on the progress line while it goes.
async fn run_once(runner: &Runner, sync: &str, line: &ProgressLine) -> Result<RunReport, RunnerError> {
    let run = runner.run(sync);
    tokio::pin!(run);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = std::time::Instant::now();
    loop {
        tokio::select! {
            report = &mut run => {
                line.clear();
                return report;
            }
            _ = ticker.tick(), if line.is_enabled() => {
                if let Some(p) = runner.progress(sync) {
                    line.draw(|| {
                        let seconds = started.elapsed().as_secs_f64().max(0.001);
                        format!(
                            "{sync}: run {} — {} rows read, {} calls delivered, {} row errors ({:.0} rows/s)",
                            p.run, p.rows_read, p.calls_delivered, p.row_errors, p.rows_read as f64 / seconds
                        )
                    });
                }
            }
        }
    }
}

/// Lines after the first indented under it.
fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

/// `keygen PATH`: a new Ed25519 key pair; prints the public key's authorized_keys line.
#[cfg(feature = "ssh")]
fn keygen(path: &str) -> Result<bool, Box<dyn std::error::Error>> {
    let key = cdp_warehouse::source::tunnel::generate_key(path)?;
    eprintln!(
        "wrote the private key {} (mode 0600) and the public key {} ({}); add this line to the SSH user's \
         ~/.ssh/authorized_keys, then point `private_key_path` at the key and run `check`:",
        key.private_key_path.display(),
        key.public_key_path.display(),
        key.fingerprint
    );
    println!("{}", key.authorized_keys_line);
    Ok(true)
}

#[cfg(not(feature = "ssh"))]
fn keygen(_path: &str) -> Result<bool, Box<dyn std::error::Error>> {
    Err("keygen needs the `ssh` feature: cargo run --features ssh --example reverse_etl -- keygen PATH"
        .into())
}

fn main() -> ExitCode {
    use std::io::IsTerminal;
    let line = ProgressLine::new();
    tracing_subscriber::fmt()
        .with_writer(line.log_writer())
        // Colours only on a terminal: a redirected standard error gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(std::env::args().skip(1).collect(), &line)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            line.eprintln(format_args!("reverse_etl: {e}"));
            ExitCode::from(2)
        }
    }
}

/// A diff sync's run counts (`3 added, 1 changed, 0 deleted`); `None` for a cursor
/// sync's run, or a diff run that failed before its changes were read.
fn diff_counts(record: &cdp_warehouse::sync::RunRecord) -> Option<String> {
    match (record.added, record.changed, record.deleted) {
        (Some(a), Some(c), Some(d)) => Some(format!("{a} added, {c} changed, {d} deleted")),
        _ => None,
    }
}

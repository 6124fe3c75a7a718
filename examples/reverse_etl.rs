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
//! row errors, delivering nothing. See `cdp_sync::Config` for the file's keys.
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

use std::process::ExitCode;
use std::sync::Arc;

use cdp_warehouse::bucket::{Clock, SystemClock};
use cdp_warehouse::sync::{Config, Outcome, Runner, RunnerError, Scheduler};

const USAGE: &str = "usage: reverse_etl --config FILE (run | once [SYNC] | preview SYNC [--rows N] | history SYNC | \
                     enable SYNC | disable SYNC | check SOURCE)\n       reverse_etl keygen PATH";

async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn run(args: Vec<String>) -> Result<bool, Box<dyn std::error::Error>> {
    let mut config = None;
    let mut rest = Vec::new();
    let mut rows = 10u64;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or(USAGE)?),
            "--rows" => rows = args.next().ok_or(USAGE)?.parse().map_err(|_| "--rows needs a number")?,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => rest.push(arg),
        }
    }
    if let ["keygen", path] = rest.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        return keygen(path);
    }
    let config = Config::load(config.ok_or(USAGE)?)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let runner = Runner::new(config, clock).await?;
    let words: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut ok = true;
    match words.as_slice() {
        ["run"] => {
            let runner = Arc::new(runner);
            eprintln!("scheduler running; SIGTERM or Ctrl-C to stop");
            Scheduler::new(runner.clone()).run(terminated()).await?;
            if let Ok(runner) = Arc::try_unwrap(runner) {
                runner.shutdown().await?;
            }
            return Ok(true);
        }
        ["once", rest @ ..] => {
            let names: Vec<String> = match rest {
                [name] => vec![(*name).to_owned()],
                [] => {
                    let mut names = Vec::new();
                    for sync in &runner.config().syncs {
                        if runner.is_enabled(&sync.name)? {
                            names.push(sync.name.clone());
                        }
                    }
                    names
                }
                _ => return Err(USAGE.into()),
            };
            if names.is_empty() {
                eprintln!("nothing to run: every sync is disabled");
            }
            for name in names {
                let record = runner.run(&name).await?;
                println!(
                    "{}: run {} {} — {} rows read, {} calls delivered, {} row errors{}{}",
                    record.sync,
                    record.run,
                    record.outcome,
                    record.rows_read,
                    record.calls_delivered,
                    record.row_errors,
                    record.row_errors_file.map(|p| format!(" (in {})", p.display())).unwrap_or_default(),
                    record.error.map(|e| format!("\n  {e}")).unwrap_or_default(),
                );
                ok &= record.outcome != Outcome::Failed;
            }
        }
        ["preview", name] => {
            let preview = runner.preview(name, rows).await?;
            println!("-- {}", preview.sql.replace('\n', "\n-- "));
            for warning in &preview.warnings {
                println!("warning: {warning}");
            }
            for (column, field) in preview.columns.iter().zip(&preview.fields) {
                println!("column {column:?} -> {field}");
            }
            for call in &preview.calls {
                println!("{}", call.to_json());
            }
            for error in &preview.row_errors {
                println!("row error: {error}");
            }
        }
        ["history", name] => {
            println!("run  outcome    started                      rows     calls    errors   error");
            for r in runner.history(name)? {
                println!(
                    "{:<4} {:<10} {:<28} {:<8} {:<8} {:<8} {}",
                    r.run,
                    r.outcome.to_string(),
                    r.started_at.to_string(),
                    r.rows_read,
                    r.calls_delivered,
                    r.row_errors,
                    r.error.unwrap_or_default()
                );
            }
        }
        ["check", name] => match runner.check_source(name).await {
            Ok(()) => println!("{name}: ok (connected and ran SELECT 1)"),
            Err(RunnerError::Source { source, .. }) => {
                println!("{name}: the {} step failed: {source}", source.check_step());
                ok = false;
            }
            Err(e) => return Err(e.into()),
        },
        ["enable", name] => runner.set_enabled(name, true)?,
        ["disable", name] => runner.set_enabled(name, false)?,
        _ => return Err(USAGE.into()),
    }
    runner.shutdown().await?;
    Ok(ok)
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(std::env::args().skip(1).collect())) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("reverse_etl: {e}");
            ExitCode::from(2)
        }
    }
}

//! Reads a query's rows through a source as fast as it can and prints rows per
//! second: the number to compare with `psql -c "\copy (query) to stdout"`.
//!
//! ```text
//! cargo run --release -p cdp-source --example throughput -- \
//!     postgres://cdp@127.0.0.1:55432/cdp_test "SELECT * FROM users"
//! cargo run --release -p cdp-source --example throughput -- demo.db "SELECT * FROM users"
//! ```
//! The first argument is a PostgreSQL URL, or else a SQLite file. The password, if
//! any, comes from `PGPASSWORD`.

use std::time::Instant;

use cdp_source::{PostgresOptions, PostgresSource, Source, SqliteOptions, SqliteSource};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(sql)) = (args.next(), args.next()) else {
        eprintln!("usage: throughput <postgres URL | SQLite file> <query>");
        std::process::exit(2);
    };
    let source: Box<dyn Source> = if target.starts_with("postgres://") || target.starts_with("postgresql://")
    {
        let mut options = PostgresOptions::new();
        if let Ok(password) = std::env::var("PGPASSWORD") {
            options = options.password(password);
        }
        Box::new(PostgresSource::new("throughput", &target, options)?)
    } else {
        Box::new(SqliteSource::open("throughput", &target, SqliteOptions::new())?)
    };
    let started = Instant::now();
    let mut stream = source.query(&sql).await?;
    let mut rows = 0_u64;
    let mut values = 0_u64;
    while let Some(row) = stream.next().await {
        values += row?.len() as u64;
        rows += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{rows} rows ({values} values) in {seconds:.3} s: {:.0} rows/s", rows as f64 / seconds);
    Ok(())
}

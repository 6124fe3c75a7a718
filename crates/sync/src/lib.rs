//! Reverse ETL runs: syncs that read rows from a database on a schedule, turn each
//! row into a call and deliver the calls to the HTTP ingestion API, the bucket
//! export or an NDJSON stream, with per-row errors and run history.
//!
//! ```
//! use std::sync::Arc;
//!
//! use cdp_bucket::{Clock, ManualClock};
//! use cdp_sync::{Config, Outcome, Runner};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! // A database to read from (any SQLite file; PostgreSQL works the same way).
//! let db = rusqlite::Connection::open(dir.path().join("app.sqlite"))?;
//! db.execute_batch(
//!     "CREATE TABLE people (id INTEGER, email TEXT, plan TEXT, updated_at INTEGER);
//!      INSERT INTO people VALUES (1, 'ada@example.com', 'pro', 1764000000),
//!                                (2, 'bob@example.com', 'free', 1764000100),
//!                                (NULL, 'nobody@example.com', 'free', 1764000200);",
//! )?;
//! drop(db);
//!
//! let config = Config::parse(
//!     r#"
//!     state_dir = "state"
//!     [sources.app]
//!     kind = "sqlite"
//!     path = "app.sqlite"
//!     [destinations.out]
//!     kind = "ndjson"
//!     path = "calls.ndjson"
//!     [[syncs]]
//!     name = "people"
//!     type = "identify"
//!     source = "app"
//!     destination = "out"
//!     query = "SELECT id AS userId, email, plan FROM people WHERE updated_at > {{last_sync_time}}"
//!     every = "15m"
//!     "#,
//!     dir.path(),
//!     &|_| None, // environment variables (for secrets)
//! )?;
//! let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse()?));
//! let runner = Runner::new(config, clock as Arc<dyn Clock>).await?;
//!
//! let run = runner.run("people").await?.record;
//! assert_eq!(run.outcome, Outcome::Succeeded);
//! assert_eq!((run.rows_read, run.calls_delivered, run.row_errors), (3, 2, 1)); // no userId in row 3
//! let calls = std::fs::read_to_string(dir.path().join("calls.ndjson"))?;
//! assert!(calls.lines().next().unwrap().contains(r#""traits":{"email":"ada@example.com","plan":"pro"}"#));
//!
//! // The next run only reads rows updated since this run started.
//! let again = runner.run("people").await?.record;
//! assert_eq!((again.run, again.rows_read), (2, 0));
//! assert_eq!(runner.history("people")?.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The parts
//! - [`Config`]: sources, destinations and syncs from a TOML file; secrets come from
//!   environment variables the file names; errors name the key at fault.
//! - [`Runner`]: sets the syncs up (their queries and their result's column names
//!   checked), runs a sync once ([`Runner::run`]), previews it ([`Runner::preview`]),
//!   enables and disables it, and keeps its state and history in a [`StateDir`].
//!   A failed run's [`RunError`] comes back typed, and the history records its
//!   [`RunErrorKind`] next to its message.
//! - [`Scheduler`]: runs every enabled sync every `every`, skipping (and recording)
//!   a run that falls due while the previous one is still going.
//! - Destinations ([`Destination`]): the HTTP ingestion API ([`http`]), the bucket
//!   export writer ([`BucketDestination`]), NDJSON ([`NdjsonDestination`]).
//!
//! # A run
//! 1. The query is rendered with `{{last_sync_time}}` (Unix seconds at which the
//!    last successful run started, 0 before the first), `{{last_sync_time_iso}}`
//!    and `{{sync_started_at}}`. Queries, and the names of the columns they return,
//!    were checked when the runner was set up: a sync that fails a check does not
//!    run (and records no run), the others do.
//! 2. Rows stream from the source in a read-only transaction; each is mapped to a
//!    call of the sync's type ([`cdp_rows`]), stamped as received by the run, and
//!    handed to the destination. Memory stays bounded whatever the result's size.
//! 3. Rows that cannot become calls, values the source cannot read, and calls the
//!    destination refuses for good are row errors: counted, written to
//!    `<state dir>/<sync>/runs/<run>.row-errors.csv`, and the run goes on.
//! 4. The run succeeds when every row was read and the destination took every
//!    call; `last_sync_time` then moves to the run's start. A run that fails (the
//!    query, the source, the destination after its retries) leaves it, so the next
//!    run reads the same rows again. Its [`RunError`] says why, and its kind
//!    (`render`, `source`, `mapping`, `destination`, `record_cap`, `state`) is
//!    recorded with its message in the run history.
//!
//! # Snowflake sources
//! With the `snowflake` feature (cdp-warehouse's `snowflake` feature turns it on), a
//! source of `kind = "snowflake"` reads from Snowflake with key-pair authentication
//! ([`cdp_source`]'s `SnowflakeSource`; its docs give the types, retries and errors):
//!
//! ```toml
//! [sources.warehouse]
//! kind = "snowflake"
//! account = "myorg-myaccount"          # as in https://myorg-myaccount.snowflakecomputing.com
//! user = "CUSTOMERIO_REVERSE_ETL_USER"
//! role = "CUSTOMERIO_REVERSE_ETL"      # optional: the user's default role
//! warehouse = "CUSTOMERIO_REVERSE_ETL" # optional: the user's default warehouse
//! database = "MY_DATABASE"             # optional
//! schema = "MY_SCHEMA"                 # optional
//! private_key_path = "rsa_key.p8"      # PKCS#8 PEM; or private_key_env = "VAR" holding the PEM
//! private_key_passphrase_env = "SNOWFLAKE_KEY_PASSPHRASE" # only for an encrypted key
//! statement_timeout = "10m"            # optional: STATEMENT_TIMEOUT_IN_SECONDS
//! # base_url = "https://myorg-myaccount.privatelink.snowflakecomputing.com" # optional
//! ```
//!
//! The key is read and checked when the runner is set up ([`Runner::new`]): a PKCS#1
//! key, a wrong passphrase or a non-RSA key stops it there, naming the user and the
//! account. Queries are checked in Snowflake's dialect at the same time, and the
//! checks warn about result names that will arrive upper-case; `lowercase_names =
//! true` on a sync lower-cases them. Built without the feature, a `snowflake` source
//! is a configuration error at `sources.NAME.kind`.
//!
//! # SSH tunnels
//! A PostgreSQL source reaches its database through an SSH server when it has an
//! `ssh` table ([`SshTunnelConfig`]; opening it needs the `ssh` feature, which
//! cdp-warehouse's `ssh` feature turns on). The URL's host and port are then the
//! database as the SSH server sees it:
//!
//! ```toml
//! [sources.app]
//! kind = "postgres"
//! url = "postgres://reverse_etl@db.internal:5432/app"
//! password_env = "APP_DB_PASSWORD"
//! [sources.app.ssh]
//! host = "bastion.example.com"
//! port = 22                             # optional
//! user = "tunnel"
//! private_key_path = "keys/id_ed25519"  # `reverse_etl keygen keys/id_ed25519` writes it
//! host_key = "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4" # required
//! ```
//!
//! Each run opens its own tunnel, and a run whose SSH session dies fails (keeping
//! `last_sync_time`); the next run opens a new one. [`Runner::check_source`] connects
//! and runs `SELECT 1`, and its error says which step failed
//! ([`cdp_source::CheckStep`]): check a new key (or password) with it before putting
//! it to use, then remove the old key from the server.
//!
//! # Decisions where the spec is silent
//! - Reaching the record cap (30,000,000 rows) delivers the rows read, then fails
//!   the run: `last_sync_time` stays, so no row past the cap is skipped for good.
//!   Narrow the query (it should compare a timestamp with `last_sync_time`).
//! - Overlapping runs of a sync are detected with a lock file in its state
//!   directory, so a run started by cron while the scheduler's run is going is
//!   skipped too.
//! - A bucket destination publishes each run's calls as one sync (one position).
//! - An HTTP destination limits calls to 32 KiB when mapping, so that an oversize
//!   call is a row error naming its row.
//! - Calls are stamped as received when their row is mapped.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bucket;
mod config;
mod destination;
pub mod diff;
pub mod http;
mod ndjson;
mod run_error;
mod runner;
mod scheduler;
mod sources;
mod ssh;
mod state;

pub use crate::bucket::BucketDestination;
pub use crate::config::{
    Config, ConfigError, DestinationConfig, MIN_EVERY, OnDelete, Secret, SourceConfig, SyncConfig, SyncMode,
    parse_duration,
};
pub use crate::destination::{Delivery, Destination, DestinationError, Rejection};
pub use crate::ndjson::NdjsonDestination;
pub use crate::run_error::{RunError, RunErrorKind};
pub use crate::runner::{Preview, RunProgress, RunReport, Runner, RunnerError};
pub use crate::scheduler::Scheduler;
pub use crate::ssh::SshTunnelConfig;
pub use crate::state::{Outcome, RunLock, RunRecord, StateDir, StateError, SyncState};

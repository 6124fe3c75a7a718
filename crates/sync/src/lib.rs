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
//! # Diff syncs
//! A sync with `mode = "diff"` and a `primary_key` reads the whole result on each run
//! and sends only what changed since the last successful run, without a cursor
//! column ([`SyncMode::Diff`]; the [`diff`] engine keeps memory bounded at any size):
//!
//! ```toml
//! [[syncs]]
//! name = "people"
//! type = "identify"
//! source = "app"
//! destination = "cio"
//! query = "SELECT id AS userId, email, plan FROM people"
//! every = "15m"
//! mode = "diff"            # "cursor" (the default) sends every row the query returns
//! primary_key = "userId"   # a reserved field matches without regard to case
//! on_delete = "event"      # "ignore" (the default); "event" for identify and group syncs
//! ```
//!
//! 1. Each row is mapped to its call as in a cursor run. Its key is the text of the
//!    primary key column's value; its content is the call's compact JSON without
//!    its `messageId` (the mapping sets no `receivedAt`, `sentAt` or
//!    `originalTimestamp`: the run stamps them when it sends, so they are never
//!    compared; a `timestamp` the row sets is row data and is compared). Keys, 128-bit
//!    content hashes and calls go to the diff engine, in batches on the blocking pool.
//! 2. The result is merge-joined with the snapshot of the last successful run
//!    (`<state dir>/<sync>/snapshot.diff`; sorted runs spill into the same
//!    directory). In key order: the calls of added and changed keys are sent, stamped
//!    as received; with `on_delete = "event"`, a key that disappeared sends `User
//!    Deleted` (identify: its last `userId`, and `anonymousId`) or `Object Deleted`
//!    (group: `properties.objectId` the group id and `properties.objectTypeId` the
//!    row's object type, `"1"` when it had none, with its last `userId`/`anonymousId`).
//! 3. Once the destination took every call (its finish: the bucket destination then
//!    publishes the run's changes as one position), the new snapshot replaces the old
//!    one atomically. A run that fails before (the source, the destination, the record
//!    cap) leaves the snapshot, so the next run sends the same changes again.
//!
//! Row errors: a NULL or empty key, and *every* row of a key on more than one row,
//! are row errors (`missing_key`, `duplicate_key`) in the run's CSV; a duplicated key
//! keeps its last known state, neither sent nor deleted. A row that cannot become a
//! call is a row error whose key also keeps its last known state: it never looks
//! deleted. The run history records the counts ([`RunRecord::added`],
//! [`RunRecord::changed`], [`RunRecord::deleted`]) and [`Runner::preview`] shows them
//! with the first calls of each ([`DiffPreview`]), diffing the whole result without
//! delivering or touching the snapshot.
//!
//! `messageId`s: an added or changed row's call carries the mapping's deterministic
//! `messageId` (see [`cdp_rows`]): when the row has a `timestamp`, it is the same on
//! every run, so a run that crashes between delivering and replacing the snapshot
//! re-sends its changes with the same ids (without one, the id's time part is the
//! run's start). A delete event's `messageId` is a ULID whose time part is the
//! `last_sync_time` of the snapshot's run and whose random part is the low 80 bits of
//! the XXH3-128 of `cdp-sync/delete/v1`, the sync name and the key (each with a `u64`
//! little-endian length), that `last_sync_time` (`i64` little-endian) and bytes 16..40
//! of the snapshot's header (its record count, length and checksum; zeros before the
//! first snapshot): the same for a repeated run against the same snapshot, and new
//! once the snapshot moved on.
//!
//! Decisions where the issue is silent:
//! - Calls the HTTP API refuses for good (400) are row errors and their content is
//!   still recorded in the snapshot: they are not sent again until the row changes,
//!   as a cursor sync would not read them again.
//! - A row the source cannot read at all has no known key. With `on_delete = "event"`
//!   and keys that look deleted in the same run, the run sends no delete event and
//!   fails ([`RunError::DeletesHeldBack`]) without finishing its destination, keeping
//!   the snapshot (the next run sends the same changes again): a delete event for a
//!   row that is still there is worse than a late one. With `on_delete = "ignore"`
//!   the run goes on; the unreadable row's key leaves the snapshot and is sent as
//!   added once it reads again. A delete event that cannot be made (an identify row that had only an
//!   `anonymousId`) is a row error numbered 0.
//! - The primary key must be a column of the result: checked from the result's
//!   column names when the sync is set up (a sync whose result lacks it is not set
//!   up: [`RunnerError::PrimaryKey`], no run recorded), and again when a run starts
//!   (a result that changed since fails the run: [`RunError::PrimaryKey`], kind
//!   `mapping`). A diff sync's query is not warned that it does not use
//!   `{{last_sync_time}}`.
//! - The snapshot is replaced after the destination's finish and before the new
//!   `last_sync_time` is saved. A run whose snapshot cannot be replaced fails (kind
//!   `diff`) after its calls were delivered (and, for a bucket, published): its next
//!   run sends them again. One whose state cannot be saved after that fails too
//!   (kind `state`), but its snapshot moved on: its changes are not sent again.
//!   Delivery is therefore at least once, never lost.
//! - The query should return the whole set each time: a key it does not return
//!   looks deleted. `{{last_sync_time}}` still renders, but narrowing a diff sync's
//!   query with it makes every row outside the window a delete.
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
mod diff_sync;
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
pub use crate::runner::{DiffPreview, Preview, RunProgress, RunReport, Runner, RunnerError};
pub use crate::scheduler::Scheduler;
pub use crate::ssh::SshTunnelConfig;
pub use crate::state::{Outcome, RunLock, RunRecord, StateDir, StateError, SyncState};

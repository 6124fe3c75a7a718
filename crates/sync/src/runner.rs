//! [`Runner`]: one run of a sync, a preview, and the syncs' state.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cdp_bucket::{Bucket, Clock, WriterConfig, WriterThread};
use cdp_calls::{Call, Timestamp};
use cdp_query::{CheckOptions, QueryError, QueryTemplate, QueryWarning, SyncVariables};
use cdp_rows::{
    CapReached, Columns, DEFAULT_MAX_RECORDS, MappingOptions, RecordCap, RowError, RowErrorCsvWriter,
    RowErrorReason, RowMapper, SyncError,
};
use cdp_source::{Source, SourceError};
use tokio::sync::Mutex;

use crate::config::{Config, DestinationConfig, OnDelete, SyncConfig, SyncMode};
use crate::diff::{
    Change, DiffBuilder, DiffCounts, DiffError, DiffOptions, DiffRow, DiffRun, RejectReason, RejectedRow,
};
use crate::diff_sync::{SnapshotBase, content_and_payload, delete_event, ids_of, key_column, key_text};
use crate::state::{Outcome, RunRecord, StateDir, StateError, SyncState};
use crate::{
    BucketDestination, Delivery, Destination, DestinationError, NdjsonDestination, Rejection, RunError,
};

/// Why the runner could not start, or could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// No sync has this name.
    #[error("no sync is called {0:?}")]
    NoSuchSync(String),
    /// A sync's query does not pass its checks: the sync is not set up, and does not
    /// run (the other syncs do).
    #[error("sync {sync:?}: the query does not pass its checks:\n{error}")]
    Query {
        /// The sync.
        sync: String,
        /// The diagnostic, with its line and column in the template.
        error: Box<QueryError>,
    },
    /// A sync's result has columns that cannot be mapped to calls (two columns that set
    /// the same field, a column inside another's field, too many columns, …), found
    /// from the result's column names when the sync was set up: the sync is not set
    /// up, and does not run (the other syncs do). No run is recorded.
    #[error("sync {sync:?}: the query's columns cannot be mapped: {error}{}", rule_of(.error))]
    Columns {
        /// The sync.
        sync: String,
        /// Which columns, and why.
        #[source]
        error: SyncError,
    },
    /// A diff sync's primary key is not a column of its query's result, found from the
    /// result's column names when the sync was set up: the sync is not set up, and
    /// does not run (the other syncs do). No run is recorded.
    #[error(
        "sync {sync:?}: the primary key `{primary_key}` is not a column of the query's result (its columns: {})",
        columns.join(", ")
    )]
    PrimaryKey {
        /// The sync.
        sync: String,
        /// The primary key, as the sync names it.
        primary_key: String,
        /// The result's columns.
        columns: Vec<String>,
    },
    /// A source cannot be set up.
    #[error("source {name:?}: {source}")]
    Source {
        /// The source.
        name: String,
        /// Why.
        #[source]
        source: Box<SourceError>,
    },
    /// A bucket destination cannot be set up.
    #[error("destination {name:?}: {source}")]
    Bucket {
        /// The destination.
        name: String,
        /// Why.
        #[source]
        source: Box<cdp_bucket::BucketError>,
    },
    /// A destination cannot be opened for a preview or run.
    #[error(transparent)]
    Destination(#[from] DestinationError),
    /// The state directory failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The preview's query could not be rendered, run or mapped.
    #[error("sync {sync:?}: {error}")]
    Preview {
        /// The sync.
        sync: String,
        /// Why, typed as a run's error would be.
        #[source]
        error: Box<RunError>,
    },
    /// A bucket destination's writer is still in use (by a run or a clone of the
    /// runner's handle) when the runner is shut down.
    #[error("destination {destination:?} is still in use")]
    InUse {
        /// The destination.
        destination: String,
    },
}

impl RunnerError {
    /// Whether this is a sync that could not be set up ([`RunnerError::Query`],
    /// [`RunnerError::Columns`] or [`RunnerError::PrimaryKey`]): that sync does not
    /// run, and the others do.
    pub fn is_setup_error(&self) -> bool {
        matches!(
            self,
            RunnerError::Query { .. } | RunnerError::Columns { .. } | RunnerError::PrimaryKey { .. }
        )
    }

    /// The sync the error is about, when it is about one.
    pub fn sync(&self) -> Option<&str> {
        match self {
            RunnerError::NoSuchSync(sync)
            | RunnerError::Query { sync, .. }
            | RunnerError::Columns { sync, .. }
            | RunnerError::PrimaryKey { sync, .. }
            | RunnerError::Preview { sync, .. } => Some(sync),
            _ => None,
        }
    }
}

/// The rule a column conflict breaks, said after it.
fn rule_of(error: &SyncError) -> &'static str {
    match error {
        SyncError::SameField { .. } => {
            " (two columns cannot set the same field; reserved names such as userId match without regard to \
             case): rename or remove one of them"
        }
        SyncError::NestedInsideField { .. } => {
            " (a dot in a column name nests, so no column can set a field inside the field another column \
             sets): rename one of them"
        }
        _ => "",
    }
}

/// What a preview shows: the first rows of the query as calls and row errors,
/// with nothing delivered and no state changed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Preview {
    /// The SQL that ran (the rendered query, limited in the source's dialect; for a
    /// diff sync not limited, as the whole result is diffed).
    pub sql: String,
    /// The result's column names.
    pub columns: Vec<String>,
    /// Where each column lands in the call (`userId`, `traits.email`, …).
    pub fields: Vec<String>,
    /// The calls the rows became, stamped as a run would stamp them.
    pub calls: Vec<Call>,
    /// The rows that could not become calls.
    pub row_errors: Vec<RowError>,
    /// The query's warnings. Each one's `Display` is the whole diagnostic
    /// (`warning: …`, its line and a caret).
    pub warnings: Vec<QueryWarning>,
    /// For a diff sync: what a run now would send. Its `calls` are then the first
    /// added, changed and delete calls (up to the preview's row count of each), and
    /// `row_errors` the first row errors of the whole result.
    pub diff: Option<DiffPreview>,
}

/// What a diff sync's run would send now ([`Preview::diff`]): the whole result diffed
/// against the snapshot of the last successful run, nothing delivered, the snapshot
/// untouched.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiffPreview {
    /// Keys new since the last successful run.
    pub added: u64,
    /// Keys whose call changed.
    pub changed: u64,
    /// Keys of the last successful run in no row of the result.
    pub deleted: u64,
    /// Keys whose call is the same (not sent).
    pub unchanged: u64,
    /// The first calls of added keys, stamped as a run would stamp them.
    pub added_calls: Vec<Call>,
    /// The first calls of changed keys.
    pub changed_calls: Vec<Call>,
    /// The first keys that disappeared (as text).
    pub deleted_keys: Vec<String>,
    /// The first delete events (with `on_delete = "event"`).
    pub deleted_calls: Vec<Call>,
}

/// What [`Runner::run`] returns: the run's record, as the history keeps it, and the
/// typed error when the run failed or was skipped.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunReport {
    /// The record (also written to the run history).
    pub record: RunRecord,
    /// Why the run failed or was skipped; `None` when it succeeded. The record holds
    /// its message and [`RunError::kind`].
    pub error: Option<RunError>,
}

/// How far a run in progress has got: [`Runner::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunProgress {
    /// The run's number.
    pub run: u64,
    /// When it started.
    pub started_at: Timestamp,
    /// Rows read so far.
    pub rows_read: u64,
    /// Calls handed to the destination so far (less those it refused).
    pub calls_delivered: u64,
    /// Row errors so far.
    pub row_errors: u64,
}

/// The live counters of a run, read by [`Runner::progress`].
#[derive(Debug)]
struct Counters {
    run: u64,
    started_at: Timestamp,
    rows_read: AtomicU64,
    calls_delivered: AtomicU64,
    row_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RunProgress {
        RunProgress {
            run: self.run,
            started_at: self.started_at,
            rows_read: self.rows_read.load(Ordering::Relaxed),
            calls_delivered: self.calls_delivered.load(Ordering::Relaxed),
            row_errors: self.row_errors.load(Ordering::Relaxed),
        }
    }
}

/// Whether a sync's result columns were checked, and what was found.
#[derive(Debug, Clone)]
enum ColumnCheck {
    /// They map.
    Mapped,
    /// They cannot be mapped: the sync is not set up.
    Refused(SyncError),
    /// They map, but a diff sync's primary key is not among them (the columns): the
    /// sync is not set up.
    NoPrimaryKey(Vec<String>),
}

/// Runs the syncs of a [`Config`]: one at a time on request ([`Runner::run`]), or
/// on their schedules ([`crate::Scheduler`]).
///
/// Each run renders the sync's query with `{{last_sync_time}}` (the start of the
/// last successful run, in Unix seconds), streams its rows from the source, maps
/// each row to a call (stamped as received by the run), and hands the calls to the
/// destination one at a time; rows that cannot become calls, and calls the
/// destination refuses, are row errors written to a CSV file, and the run goes on.
/// A run that succeeds moves `last_sync_time` to its start; one that fails leaves
/// it, so the next run reads the same rows again, and its [`RunError`] is returned
/// typed and recorded in the history with its kind. A run that would start while
/// another run of the same sync holds its lock (in this process or another) is
/// recorded as skipped.
///
/// A diff sync (`mode = "diff"`) reads the whole result instead, and sends only the
/// calls of keys that are new or changed since its last successful run, and delete
/// events with `on_delete = "event"`; its snapshot is replaced once the destination
/// took every call (see the crate docs' "Diff syncs").
///
/// # Setting syncs up
/// [`Runner::new`] sets every sync up: its query is checked in its source's dialect
/// (no connection), then the source is asked for the names of the columns the query
/// returns ([`Source::columns`]: a prepared statement or a zero-row query, no row
/// read), and the names are checked against the mapping rules (two columns that set
/// the same field, `userId` and `USERID` or `a` and `a.b`, cannot be mapped; a diff
/// sync's primary key must be one of them). A sync
/// that fails either check is not set up ([`Runner::setup_errors`]): it does not run,
/// its [`Runner::run`] and [`Runner::preview`] return the error and record nothing,
/// and every other sync runs as usual. A source that cannot be reached during setup
/// leaves the sync's columns to be checked before its next run or preview (no run is
/// recorded for a conflict found then either).
pub struct Runner {
    config: Config,
    state: StateDir,
    clock: Arc<dyn Clock>,
    sources: BTreeMap<String, Arc<dyn Source>>,
    writers: BTreeMap<String, Arc<Mutex<WriterThread>>>,
    /// The syncs whose query passed its checks.
    templates: BTreeMap<String, QueryTemplate>,
    warnings: BTreeMap<String, Vec<QueryWarning>>,
    /// The syncs whose query failed its checks.
    query_errors: BTreeMap<String, QueryError>,
    /// The syncs whose columns were checked.
    columns: std::sync::Mutex<BTreeMap<String, ColumnCheck>>,
    /// The runs going, by sync.
    running: std::sync::Mutex<BTreeMap<String, Arc<Counters>>>,
    max_records: u64,
    http_retries: Option<(u32, Duration)>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("state", &self.state)
            .field("syncs", &self.config.syncs.iter().map(|s| &s.name).collect::<Vec<_>>())
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("not_set_up", &self.query_errors.keys().collect::<Vec<_>>())
            .field("max_records", &self.max_records)
            .finish()
    }
}

impl Runner {
    /// Opens every source and bucket destination of the configuration and sets every
    /// sync up (see "Setting syncs up" above): queries are checked in their source's
    /// dialect, and each source is asked for the column names of its syncs' queries,
    /// so that a mistake surfaces before anything runs. A sync that fails its checks
    /// is kept aside ([`Runner::setup_errors`]); a source or bucket that cannot be set
    /// up is an error.
    pub async fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Runner, RunnerError> {
        let sources = open_sources(&config).await?;
        Runner::set_up(config, clock, sources, true).await
    }

    /// As [`Runner::new`], but no source is asked for columns now: for looking at and
    /// changing the syncs' state (history, enable, disable) and checking sources,
    /// which should not connect to every database. Queries are still checked; each
    /// sync's columns are checked before its first run or preview.
    pub async fn without_column_checks(config: Config, clock: Arc<dyn Clock>) -> Result<Runner, RunnerError> {
        let sources = open_sources(&config).await?;
        Runner::set_up(config, clock, sources, false).await
    }

    /// As [`Runner::new`], with sources made by the caller (by name, for every
    /// source the syncs use).
    pub async fn with_sources(
        config: Config,
        clock: Arc<dyn Clock>,
        sources: BTreeMap<String, Arc<dyn Source>>,
    ) -> Result<Runner, RunnerError> {
        Runner::set_up(config, clock, sources, true).await
    }

    async fn set_up(
        config: Config,
        clock: Arc<dyn Clock>,
        sources: BTreeMap<String, Arc<dyn Source>>,
        check_columns: bool,
    ) -> Result<Runner, RunnerError> {
        let mut writers = BTreeMap::new();
        for (name, destination) in &config.destinations {
            if let DestinationConfig::Bucket { bucket, format, integration, action, spool } = destination {
                let bad = |source| RunnerError::Bucket { name: name.clone(), source: Box::new(source) };
                // One window that never ends: a run's calls are published as one
                // sync when the run finishes (or taken back when it fails).
                let mut writer_config = WriterConfig::new(integration.clone(), action.clone(), *format)
                    .with_interval(std::time::Duration::MAX);
                if let Some(spool) = spool {
                    writer_config = writer_config.with_spool_dir(spool);
                }
                // On a thread of its own: its spool I/O never holds up a worker.
                let (writer, recovery) =
                    WriterThread::open(Bucket::from_url(bucket).map_err(bad)?, writer_config, clock.clone())
                        .await
                        .map_err(bad)?;
                // Calls in the open window belong to a run that never finished: it
                // failed, and its next run reads the same rows again.
                if recovery.resumed_calls > 0 {
                    let discarded = writer.discard_open().await.map_err(bad)?;
                    tracing::warn!(destination = %name, calls = discarded, "took back the calls of a run that did not finish");
                }
                writers.insert(name.clone(), Arc::new(Mutex::new(writer)));
            }
        }
        let mut templates = BTreeMap::new();
        let mut warnings = BTreeMap::new();
        let mut query_errors = BTreeMap::new();
        for sync in &config.syncs {
            let source = sources.get(&sync.source).ok_or_else(|| RunnerError::Source {
                name: sync.source.clone(),
                source: Box::new(SourceError::not_configured(&sync.source)),
            })?;
            let checked = QueryTemplate::new(sync.query.clone()).and_then(|template| {
                let report = template.check(CheckOptions::new(source.dialect()).call_type(sync.call_type))?;
                Ok((template, report))
            });
            match checked {
                Ok((template, report)) => {
                    for warning in report.warnings().iter().filter(|w| {
                        !(sync.mode.is_diff()
                            && matches!(w.kind(), cdp_query::WarningKind::LastSyncTimeUnused))
                    }) {
                        // One line: the whole diagnostic (`warning: …`, its line and a
                        // caret) is for Preview::warnings and the query checks' users.
                        tracing::warn!(sync = %sync.name, at = %warning.position(), "query: {}", warning.message());
                    }
                    let mut sync_warnings = report.into_warnings();
                    // A diff sync reads the whole result by design.
                    if sync.mode.is_diff() {
                        sync_warnings
                            .retain(|w| !matches!(w.kind(), cdp_query::WarningKind::LastSyncTimeUnused));
                    }
                    warnings.insert(sync.name.clone(), sync_warnings);
                    templates.insert(sync.name.clone(), template);
                }
                // Kept for Runner::setup_errors, run and preview (and logged by the
                // scheduler), not logged here: the caller says it its own way.
                Err(error) => {
                    query_errors.insert(sync.name.clone(), error);
                }
            }
        }
        let runner = Runner {
            state: StateDir::new(&config.state_dir),
            config,
            clock,
            sources,
            writers,
            templates,
            warnings,
            query_errors,
            columns: std::sync::Mutex::new(BTreeMap::new()),
            running: std::sync::Mutex::new(BTreeMap::new()),
            max_records: DEFAULT_MAX_RECORDS,
            http_retries: None,
        };
        if check_columns {
            let names: Vec<String> = runner.templates.keys().cloned().collect();
            for name in names {
                // A conflict is kept (and logged); a source that cannot answer is
                // asked again before the sync's next run.
                let _ = runner.check_columns(&name, true).await;
            }
        }
        Ok(runner)
    }

    /// Sets the most records (rows read, row errors included) one run reads:
    /// 30,000,000 ([`DEFAULT_MAX_RECORDS`]) unless set. A run that reaches it fails
    /// ([`RunError::RecordCap`]) without moving `last_sync_time`.
    pub fn with_max_records(mut self, limit: u64) -> Runner {
        self.max_records = limit;
        self
    }

    /// Sets how HTTP destinations retry a batch that fails with a transport error,
    /// 429 or 5xx: `max_attempts` attempts in all, the first retry after up to
    /// `initial_backoff` (doubling each time). The defaults are
    /// [`crate::http::HttpConfig`]'s.
    pub fn with_http_retries(mut self, max_attempts: u32, initial_backoff: Duration) -> Runner {
        self.http_retries = Some((max_attempts, initial_backoff));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state directory.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// The clock runs are timed with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The warnings of a sync's query.
    pub fn warnings(&self, sync: &str) -> &[QueryWarning] {
        self.warnings.get(sync).map_or(&[], Vec::as_slice)
    }

    /// Why `sync` is not set up, if it is not: [`RunnerError::Query`] (its query fails
    /// its checks) or [`RunnerError::Columns`] (its result's columns cannot be mapped).
    /// `None` for a sync that is set up, or whose columns were not checked yet, and for
    /// an unknown sync.
    pub fn setup_error(&self, sync: &str) -> Option<RunnerError> {
        if let Some(error) = self.query_errors.get(sync) {
            return Some(RunnerError::Query { sync: sync.to_owned(), error: Box::new(error.clone()) });
        }
        match self.columns.lock().expect("the column checks").get(sync) {
            Some(ColumnCheck::Refused(error)) => {
                Some(RunnerError::Columns { sync: sync.to_owned(), error: error.clone() })
            }
            Some(ColumnCheck::NoPrimaryKey(columns)) => Some(self.no_primary_key(sync, columns)),
            _ => None,
        }
    }

    /// [`RunnerError::PrimaryKey`] for `sync`, whose result has `columns`.
    fn no_primary_key(&self, sync: &str, columns: &[String]) -> RunnerError {
        let primary_key = self.config.sync(sync).and_then(|c| c.mode.primary_key()).unwrap_or_default();
        RunnerError::PrimaryKey {
            sync: sync.to_owned(),
            primary_key: primary_key.to_owned(),
            columns: columns.to_vec(),
        }
    }

    /// The syncs that are not set up, in the configuration's order, each with why
    /// ([`Runner::setup_error`]).
    pub fn setup_errors(&self) -> Vec<RunnerError> {
        self.config.syncs.iter().filter_map(|sync| self.setup_error(&sync.name)).collect()
    }

    /// Checks the column names of `sync`'s query against the mapping rules, asking
    /// its source for them ([`Source::columns`]) unless that was done: `Ok` when they
    /// map, or when the source could not answer (asked again next time; logged as a
    /// warning `at_setup`, else the run about to start meets the same error).
    async fn check_columns(&self, sync: &str, at_setup: bool) -> Result<(), RunnerError> {
        let refused =
            |error: &SyncError| RunnerError::Columns { sync: sync.to_owned(), error: error.clone() };
        match self.columns.lock().expect("the column checks").get(sync) {
            Some(ColumnCheck::Mapped) => return Ok(()),
            Some(ColumnCheck::Refused(error)) => return Err(refused(error)),
            Some(ColumnCheck::NoPrimaryKey(columns)) => return Err(self.no_primary_key(sync, columns)),
            None => {}
        }
        let config = self.sync(sync)?;
        let Some(template) = self.templates.get(sync) else { return Ok(()) };
        let now = self.clock.now();
        // The query as the next run renders it.
        let last_sync_time = self.state.load(sync).map_or(0, |state| state.last_sync_time);
        let rendered = match template.render(&SyncVariables::new(last_sync_time, now.as_secs())) {
            Ok(rendered) => rendered,
            // The run meets (and records) the same error.
            Err(_) => return Ok(()),
        };
        let names = match self.sources[&config.source].columns(rendered.sql()).await {
            Ok(names) => names,
            Err(error) if at_setup => {
                tracing::warn!(sync, %error, "cannot read the query's columns to check them; they are checked again before its next run");
                return Ok(());
            }
            Err(error) => {
                tracing::debug!(sync, %error, "cannot read the query's columns to check them");
                return Ok(());
            }
        };
        let check = match RowMapper::new(self.mapping_options(config), &Columns::new(names.clone()), now) {
            Ok(_) => match config.mode.primary_key() {
                Some(primary_key) if key_column(primary_key, &names, config.lowercase_names).is_none() => {
                    ColumnCheck::NoPrimaryKey(names)
                }
                _ => ColumnCheck::Mapped,
            },
            Err(error) => ColumnCheck::Refused(error),
        };
        self.columns.lock().expect("the column checks").insert(sync.to_owned(), check.clone());
        match check {
            ColumnCheck::Mapped => Ok(()),
            ColumnCheck::Refused(error) => Err(refused(&error)),
            ColumnCheck::NoPrimaryKey(columns) => Err(self.no_primary_key(sync, &columns)),
        }
    }

    /// `Err` when `sync` is not set up; checks its columns first if that was not
    /// done.
    async fn ready(&self, sync: &str) -> Result<(), RunnerError> {
        if let Some(error) = self.setup_error(sync) {
            return Err(error);
        }
        self.check_columns(sync, false).await
    }

    fn mapping_options(&self, config: &SyncConfig) -> MappingOptions {
        MappingOptions::new(&config.name, config.call_type)
            .lowercase_names(config.lowercase_names)
            .limit_call_size(matches!(
                self.config.destinations[&config.destination],
                DestinationConfig::Http { .. }
            ))
    }

    fn sync(&self, name: &str) -> Result<&SyncConfig, RunnerError> {
        self.config.sync(name).ok_or_else(|| RunnerError::NoSuchSync(name.to_owned()))
    }

    /// Whether the sync runs on its schedule: the state directory's setting, or the
    /// configuration's.
    pub fn is_enabled(&self, sync: &str) -> Result<bool, RunnerError> {
        let config = self.sync(sync)?;
        Ok(self.state.load(sync)?.enabled.unwrap_or(config.enabled))
    }

    /// Enables or disables a sync (kept in the state directory). Re-enabled, it goes
    /// on from its last successful `last_sync_time`.
    pub fn set_enabled(&self, sync: &str, enabled: bool) -> Result<(), RunnerError> {
        self.sync(sync)?;
        let mut state = self.state.load(sync)?;
        state.enabled = Some(enabled);
        self.state.save(sync, &state)?;
        Ok(())
    }

    /// A sync's run history, oldest first (also for a sync that is not set up).
    pub fn history(&self, sync: &str) -> Result<Vec<RunRecord>, RunnerError> {
        self.sync(sync)?;
        Ok(self.state.history(sync)?)
    }

    /// How far the run of `sync` going in this process has got; `None` when none is
    /// going. Reading it does not slow the run (a few relaxed atomic loads).
    pub fn progress(&self, sync: &str) -> Option<RunProgress> {
        self.running.lock().expect("the runs going").get(sync).map(|counters| counters.snapshot())
    }

    /// Checks that the source called `name` can be reached, through its SSH tunnel
    /// when it has one, and answers `SELECT 1`. A failure is [`RunnerError::Source`];
    /// its [`SourceError::check_step`] says which step failed (the SSH connection,
    /// host key or login, the database login, the database). `reverse_etl check
    /// SOURCE` runs this: do it before putting a new key or password to use.
    pub async fn check_source(&self, name: &str) -> Result<(), RunnerError> {
        let failed =
            |source: SourceError| RunnerError::Source { name: name.to_owned(), source: Box::new(source) };
        let source = self.sources.get(name).ok_or_else(|| failed(SourceError::not_configured(name)))?;
        source.check().await.map_err(failed)
    }

    /// Runs a sync once, now, and records the run. A run of the same sync already
    /// going gives a skipped run ([`RunError::PreviousRunGoing`]). Errors of the run
    /// itself (rendering the query, the source, the mapping, the destination, the
    /// record cap, saving the new state) end up in the report as a failed outcome,
    /// typed ([`RunReport::error`]), and in the history with their kind. `Err` is for
    /// a sync that is not set up ([`RunnerError::Query`], [`RunnerError::Columns`]:
    /// nothing is recorded), an unknown sync, or the state directory failing.
    pub async fn run(&self, sync: &str) -> Result<RunReport, RunnerError> {
        let config = self.sync(sync)?;
        self.ready(sync).await?;
        let started_at = self.clock.now();
        let name = sync.to_owned();
        let Some(_lock) = self.on_state(move |state| state.try_lock(&name)).await? else {
            return self.record_skipped(sync, started_at);
        };
        let name = sync.to_owned();
        let (state, run) = self
            .on_state(move |state| {
                let loaded = state.load(&name)?;
                let run = state.next_run(&name)?;
                // Recorded at once, so the run's number is taken and a process that
                // dies mid-run leaves it in the history as failed.
                state.record(&RunRecord::nothing_read(
                    run,
                    &name,
                    started_at,
                    loaded.last_sync_time,
                    Outcome::Failed,
                    &RunError::Interrupted,
                ))?;
                Ok((loaded, run))
            })
            .await?;
        let counters = Arc::new(Counters {
            run,
            started_at,
            rows_read: AtomicU64::new(0),
            calls_delivered: AtomicU64::new(0),
            row_errors: AtomicU64::new(0),
        });
        let _going = Going::start(&self.running, sync, counters.clone());
        let mut tally = Tally::new(self.state.row_errors_path(sync, run), counters);
        let mut error = self.run_inner(config, state, started_at, &mut tally).await.err();
        let row_errors_file = tally.finish_csv();
        if error.is_none() {
            let (name, done) = (sync.to_owned(), SyncState { last_sync_time: started_at.as_secs(), ..state });
            if let Err(e) = self.on_state(move |state| state.save(&name, &done)).await {
                error = Some(RunError::State(e));
            }
        }
        let outcome = if error.is_none() { Outcome::Succeeded } else { Outcome::Failed };
        let record = RunRecord {
            run,
            sync: sync.to_owned(),
            started_at,
            finished_at: self.clock.now(),
            last_sync_time: state.last_sync_time,
            rows_read: tally.rows_read,
            calls_delivered: tally.calls_delivered,
            row_errors: tally.row_errors,
            row_errors_file,
            outcome,
            error: error.as_ref().map(ToString::to_string),
            error_kind: error.as_ref().map(RunError::kind),
            added: tally.diff.map(|c| c.added),
            changed: tally.diff.map(|c| c.changed),
            deleted: tally.diff.map(|c| c.deleted),
        };
        let recorded = record.clone();
        self.on_state(move |state| state.record(&recorded)).await?;
        match &error {
            None => tracing::info!(
                sync,
                run,
                rows_read = record.rows_read,
                calls_delivered = record.calls_delivered,
                row_errors = record.row_errors,
                "run succeeded"
            ),
            Some(error) => tracing::error!(sync, run, kind = %error.kind(), "run failed: {error}"),
        }
        Ok(RunReport { record, error })
    }

    /// Runs work on the state directory (small files, each written with an
    /// `fsync`) on the blocking pool, off the async workers.
    async fn on_state<T: Send + 'static>(
        &self,
        work: impl FnOnce(&StateDir) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let state = self.state.clone();
        match tokio::task::spawn_blocking(move || work(&state)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StateError::Io {
                path: self.state.path().to_owned(),
                source: std::io::Error::other(format!("the state task was cancelled: {e}")),
            }),
        }
    }

    /// Records a run of `sync` due at `now` as skipped: the previous run is still
    /// going.
    pub(crate) fn record_skipped(&self, sync: &str, now: Timestamp) -> Result<RunReport, RunnerError> {
        let error = RunError::PreviousRunGoing;
        let record = RunRecord::nothing_read(
            self.state.next_run(sync)?,
            sync,
            now,
            self.state.load(sync)?.last_sync_time,
            Outcome::Skipped,
            &error,
        );
        self.state.record(&record)?;
        tracing::warn!(sync, run = record.run, "skipped: the previous run is still going");
        Ok(RunReport { record, error: Some(error) })
    }

    /// The run's work; `Err` with the reason when it fails.
    async fn run_inner(
        &self,
        config: &SyncConfig,
        state: SyncState,
        started_at: Timestamp,
        tally: &mut Tally,
    ) -> Result<(), RunError> {
        let template = &self.templates[&config.name];
        let variables = SyncVariables::new(state.last_sync_time, started_at.as_secs());
        let rendered = template.render(&variables).map_err(|e| RunError::Render(Box::new(e)))?;
        let source = &self.sources[&config.source];
        let mut rows = source.query(rendered.sql()).await?;
        let mut mapper = RowMapper::new(self.mapping_options(config), rows.columns(), started_at)
            .map_err(RunError::Mapping)?;
        let mut destination = self.open_destination(&config.destination).await?;
        let delivered = match &config.mode {
            SyncMode::Diff { primary_key, on_delete } => {
                let diff = DiffSync {
                    config,
                    primary_key,
                    on_delete: *on_delete,
                    last_sync_time: state.last_sync_time,
                };
                self.deliver_diff(&diff, &mut rows, &mut mapper, destination.as_mut(), tally).await
            }
            _ => self.deliver(rows, mapper, destination.as_mut(), tally).await,
        };
        if delivered.is_err() {
            destination.abort().await;
        }
        delivered
    }

    /// Reads every row, maps it and hands the call to the destination; finishes the
    /// destination when every row is read.
    ///
    /// The source is read on a task of its own ([`spawn_reader`]) that takes the rows
    /// in batches and maps each batch on a task of its own (decoding its rows in
    /// place, so their values are never copied); the run takes the batches' calls in
    /// order and stamps them (one clock read per batch), sends the calls between two
    /// rows that are not calls in one go ([`Destination::send_all`]: no task per
    /// call) and counts them.
    /// Reading, mapping and sending go on at the same time on every core, while at
    /// most [`READ_AHEAD_BATCHES`] batches of [`READ_BATCH_ROWS`] rows are held.
    /// Rows keep their order; dropping the run aborts the reader, which cancels the
    /// query.
    async fn deliver(
        &self,
        rows: cdp_source::RowStream,
        mapper: RowMapper,
        destination: &mut dyn Destination,
        tally: &mut Tally,
    ) -> Result<(), RunError> {
        let mut reader = spawn_reader(rows, mapper, RecordCap::new(self.max_records));
        while let Some(mapped) = reader.batches.recv().await {
            let MappedRows { mut calls, others } = mapped.rows().await;
            // One clock read per batch: its calls are received together, at the time
            // the run takes them from the reader.
            let received_at = self.clock.now();
            for delivery in calls.iter_mut().flatten() {
                delivery.call.stamp_received(received_at);
            }
            let mut taken = 0;
            for (calls_before, item) in others {
                send_calls(&mut calls[taken..calls_before], destination, tally).await?;
                taken = calls_before;
                match item {
                    ReadRow::Unmapped(error) => {
                        tally.rows_read += 1;
                        tally.row_error(error);
                    }
                    ReadRow::Unreadable { row_number, error } => {
                        tally.rows_read += 1;
                        tally.row_error(RowError {
                            row_number,
                            column: error.column().map(Into::into),
                            reason: RowErrorReason::Unreadable { message: error.to_string() },
                            values: "{}".into(),
                        });
                        tally.publish();
                    }
                    ReadRow::Failed(error) => return Err(error.into()),
                    // Past the cap the run fails: last_sync_time stays, so no row past
                    // the cap is skipped for good.
                    ReadRow::Capped(reached) => return Err(reached.into()),
                }
            }
            send_calls(&mut calls[taken..], destination, tally).await?;
            tally.publish();
        }
        reader.finished().await;
        let rejections = destination.finish().await?;
        tally.rejected(rejections);
        tally.publish();
        Ok(())
    }

    /// A diff run: reads every row into the diff engine (keys, content hashes, calls),
    /// then delivers the added and changed calls and, with `on_delete = "event"`, a
    /// delete event per key that disappeared; finishes the destination and only then
    /// replaces the snapshot. Every step that touches the snapshot or spill files runs
    /// on the blocking pool.
    async fn deliver_diff(
        &self,
        diff: &DiffSync<'_>,
        rows: &mut cdp_source::RowStream,
        mapper: &mut RowMapper,
        destination: &mut dyn Destination,
        tally: &mut Tally,
    ) -> Result<(), RunError> {
        let path = self.state.snapshot_path(&diff.config.name);
        let last_sync_time = diff.last_sync_time;
        let (builder, base) = on_blocking(&path, {
            let path = path.clone();
            move || {
                let dir = path.parent().expect("a sync directory").to_owned();
                std::fs::create_dir_all(&dir).map_err(|source| DiffError::Io {
                    action: "create the sync directory",
                    path: dir.clone(),
                    source,
                })?;
                // Under the run lock: no other run of this sync is going.
                crate::diff::remove_leftovers(&path)?;
                let base = SnapshotBase::read(&path, last_sync_time);
                Ok((DiffBuilder::new(&path, DiffOptions::new().with_spill_dir(dir))?, base))
            }
        })
        .await?;
        let mut cap = RecordCap::new(self.max_records);
        let (builder, unreadable) = self.collect_diff(diff, rows, mapper, builder, &mut cap, tally).await?;
        let mut run = Some(on_blocking(&path, move || builder.finish()).await?);
        let mut held_back = 0u64;
        loop {
            let going = run.take().expect("the diff run");
            let (going, changes) = on_blocking(&path, move || next_changes(going)).await?;
            run = Some(going);
            if changes.is_empty() {
                break;
            }
            for change in changes {
                match change {
                    Change::Added { payload, .. } | Change::Changed { payload, .. } => {
                        let (row_number, json) = split_payload(&payload);
                        match Call::parse_json(&String::from_utf8_lossy(json)) {
                            Ok(mut call) => {
                                call.stamp_received(self.clock.now());
                                let rejections = destination.send(Delivery { row_number, call }).await?;
                                tally.calls_delivered += 1;
                                tally.rejected(rejections);
                            }
                            Err(e) => tally.row_error(RowError {
                                row_number,
                                column: None,
                                reason: RowErrorReason::Call(e),
                                values: "{}".into(),
                            }),
                        }
                    }
                    Change::Deleted { key, ids } => {
                        if diff.on_delete != OnDelete::Event {
                            continue;
                        }
                        if unreadable > 0 {
                            held_back += 1;
                            continue;
                        }
                        let message_id = base.message_id(&diff.config.name, &key);
                        match delete_event(diff.config.call_type, &key, &ids, message_id) {
                            Ok(mut call) => {
                                call.stamp_received(self.clock.now());
                                let rejections = destination.send(Delivery { row_number: 0, call }).await?;
                                tally.calls_delivered += 1;
                                tally.rejected(rejections);
                            }
                            Err(error) => tally.row_error(error),
                        }
                    }
                    Change::Rejected(rejected) => tally.row_error(diff.row_error(rejected)),
                }
                tally.publish();
            }
        }
        let run = run.expect("the diff run");
        if held_back > 0 {
            return Err(RunError::DeletesHeldBack { unreadable, deleted: held_back });
        }
        let counts = run.counts();
        let rejections = destination.finish().await?;
        tally.rejected(rejections);
        tally.publish();
        // Only now that the destination took every call: a run that failed before
        // this point leaves the snapshot, and its next run sends the same changes.
        on_blocking(&path, move || run.commit()).await?;
        tally.diff = Some(counts);
        Ok(())
    }

    /// Reads every row of a diff sync's result, maps it and pushes it into `builder`
    /// (in batches, on the blocking pool). Rows that cannot become calls are row
    /// errors whose key keeps its snapshot entry ([`DiffBuilder::keep`]). Returns the
    /// builder and how many rows could not be read at all (their keys are unknown).
    async fn collect_diff(
        &self,
        diff: &DiffSync<'_>,
        rows: &mut cdp_source::RowStream,
        mapper: &mut RowMapper,
        mut builder: DiffBuilder,
        cap: &mut RecordCap,
        sink: &mut dyn RowSink,
    ) -> Result<(DiffBuilder, u64), RunError> {
        let names = rows.columns().names().to_vec();
        let key_index =
            key_column(diff.primary_key, &names, diff.config.lowercase_names).ok_or_else(|| {
                RunError::PrimaryKey { primary_key: diff.primary_key.to_owned(), columns: names.clone() }
            })?;
        let path = builder.snapshot_path().to_owned();
        let mut batch = Batch::default();
        let mut unreadable = 0u64;
        let mut key = Vec::new();
        loop {
            let values = match rows.next().await {
                None => break,
                Some(Ok(values)) => values,
                Some(Err(e)) if e.is_row_error() => {
                    let row_number = cap.admit()?;
                    sink.row_read();
                    unreadable += 1;
                    sink.row_error(RowError {
                        row_number,
                        column: e.column().map(Into::into),
                        reason: RowErrorReason::Unreadable { message: e.to_string() },
                        values: "{}".into(),
                    });
                    continue;
                }
                Some(Err(e)) => return Err(e.into()),
            };
            let row = cap.admit()?;
            sink.row_read();
            let has_key = values.get(key_index).is_some_and(|value| key_text(value, &mut key));
            let key = has_key.then(|| key.clone());
            match mapper.map_values(row, &values) {
                Ok(mut call) => {
                    let mut content = Vec::new();
                    let mut payload = row.to_le_bytes().to_vec();
                    let mut json = Vec::new();
                    content_and_payload(&mut call, &mut content, &mut json);
                    payload.extend_from_slice(&json);
                    let mut ids = Vec::new();
                    ids_of(&call, &mut ids);
                    batch.bytes +=
                        content.len() + payload.len() + ids.len() + key.as_ref().map_or(0, Vec::len);
                    batch.items.push(Pending::Push { row, key, content, ids, payload });
                }
                Err(error) => {
                    // A row error must not look like a deleted key.
                    sink.row_error(error);
                    batch.items.push(Pending::Keep { row, key });
                }
            }
            if batch.items.len() >= BATCH_ROWS || batch.bytes >= BATCH_BYTES {
                let items = std::mem::take(&mut batch).items;
                let rejected;
                (builder, rejected) = on_blocking(&path, move || push_batch(builder, items)).await?;
                for row in rejected {
                    sink.row_error(diff.row_error(row));
                }
            }
            sink.publish();
        }
        let items = batch.items;
        let (builder, rejected) = on_blocking(&path, move || push_batch(builder, items)).await?;
        for row in rejected {
            sink.row_error(diff.row_error(row));
        }
        sink.publish();
        Ok((builder, unreadable))
    }

    /// A diff sync's preview: the whole result diffed against the snapshot without
    /// writing a new one.
    async fn preview_diff(
        &self,
        diff: &DiffSync<'_>,
        rows: u64,
        mut preview: Preview,
        stream: &mut cdp_source::RowStream,
        mapper: &mut RowMapper,
    ) -> Result<Preview, RunError> {
        let (config, on_delete, last_sync_time) = (diff.config, diff.on_delete, diff.last_sync_time);
        let path = self.state.snapshot_path(&config.name);
        let (builder, base) = on_blocking(&path, {
            let path = path.clone();
            move || {
                let dir = path.parent().expect("a sync directory").to_owned();
                std::fs::create_dir_all(&dir).map_err(|source| DiffError::Io {
                    action: "create the sync directory",
                    path: dir.clone(),
                    source,
                })?;
                let base = SnapshotBase::read(&path, last_sync_time);
                let options = DiffOptions::new().with_spill_dir(dir).with_snapshot_update(false);
                Ok((DiffBuilder::new(&path, options)?, base))
            }
        })
        .await?;
        let mut sink = PreviewSink { limit: rows, errors: Vec::new() };
        let mut cap = RecordCap::new(u64::MAX);
        let (builder, _) = self.collect_diff(diff, stream, mapper, builder, &mut cap, &mut sink).await?;
        let mut run = Some(on_blocking(&path, move || builder.finish()).await?);
        let mut shown = DiffPreview::default();
        let limit = usize::try_from(rows).unwrap_or(usize::MAX);
        let now = self.clock.now();
        loop {
            let going = run.take().expect("the diff run");
            let (going, changes) = on_blocking(&path, move || next_changes(going)).await?;
            run = Some(going);
            if changes.is_empty() {
                break;
            }
            for change in changes {
                match change {
                    Change::Added { ref payload, .. } | Change::Changed { ref payload, .. } => {
                        let added = matches!(change, Change::Added { .. });
                        let calls = if added { &mut shown.added_calls } else { &mut shown.changed_calls };
                        if calls.len() < limit {
                            let (_, json) = split_payload(payload);
                            if let Ok(mut call) = Call::parse_json(&String::from_utf8_lossy(json)) {
                                call.stamp_received(now);
                                calls.push(call);
                            }
                        }
                    }
                    Change::Deleted { key, ids } => {
                        if shown.deleted_keys.len() < limit {
                            shown.deleted_keys.push(String::from_utf8_lossy(&key).into_owned());
                            if on_delete == OnDelete::Event {
                                let message_id = base.message_id(&config.name, &key);
                                match delete_event(config.call_type, &key, &ids, message_id) {
                                    Ok(mut call) => {
                                        call.stamp_received(now);
                                        shown.deleted_calls.push(call);
                                    }
                                    Err(error) => sink.row_error(error),
                                }
                            }
                        }
                    }
                    Change::Rejected(rejected) => sink.row_error(diff.row_error(rejected)),
                }
            }
        }
        let counts = run.expect("the diff run").counts();
        (shown.added, shown.changed, shown.deleted, shown.unchanged) =
            (counts.added, counts.changed, counts.deleted, counts.unchanged);
        preview.calls = shown
            .added_calls
            .iter()
            .chain(&shown.changed_calls)
            .chain(&shown.deleted_calls)
            .cloned()
            .collect();
        preview.row_errors = sink.errors;
        preview.diff = Some(shown);
        Ok(preview)
    }

    /// A destination for one run.
    async fn open_destination(&self, name: &str) -> Result<Box<dyn Destination>, DestinationError> {
        Ok(match &self.config.destinations[name] {
            DestinationConfig::Http { base_url, api_key } => {
                let mut config = crate::http::HttpConfig::custom(base_url.as_str(), api_key.expose());
                if let Some((attempts, backoff)) = self.http_retries {
                    config = config.with_max_attempts(attempts).with_initial_backoff(backoff);
                }
                Box::new(crate::http::HttpDestination::new(name, config).map_err(|e| {
                    DestinationError::Http {
                        destination: name.to_owned(),
                        status: None,
                        message: e.to_string(),
                    }
                })?)
            }
            DestinationConfig::Bucket { .. } => {
                Box::new(BucketDestination::new(name, self.writers[name].clone()))
            }
            DestinationConfig::Ndjson { path } => Box::new(NdjsonDestination::open(name, path).await?),
        })
    }

    /// Runs the sync's query limited to `rows` rows in the source's dialect and maps
    /// them, delivering nothing and changing no state. A sync that is not set up gives
    /// its setup error ([`Runner::setup_error`]).
    pub async fn preview(&self, sync: &str, rows: u64) -> Result<Preview, RunnerError> {
        let config = self.sync(sync)?;
        self.ready(sync).await?;
        let failed = |error: RunError| RunnerError::Preview { sync: sync.to_owned(), error: Box::new(error) };
        let render_failed = |error: QueryError| failed(RunError::Render(Box::new(error)));
        let started_at = self.clock.now();
        let state = self.state.load(sync)?;
        let source = &self.sources[&config.source];
        let rendered = self.templates[sync]
            .render(&SyncVariables::new(state.last_sync_time, started_at.as_secs()))
            .map_err(render_failed)?;
        // A diff sync's preview diffs the whole result: the query is not limited.
        let sql = match &config.mode {
            SyncMode::Diff { .. } => rendered.sql().to_owned(),
            _ => rendered.preview(source.dialect(), rows).map_err(render_failed)?,
        };
        let mut stream = source.query(&sql).await.map_err(|e| failed(e.into()))?;
        let options = match &config.mode {
            SyncMode::Diff { .. } => self.mapping_options(config),
            _ => MappingOptions::new(&config.name, config.call_type).lowercase_names(config.lowercase_names),
        };
        let mut mapper = RowMapper::new(options, stream.columns(), started_at)
            .map_err(|e| failed(RunError::Mapping(e)))?;
        let mut preview = Preview {
            sql,
            columns: stream.columns().names().to_vec(),
            fields: mapper.fields().to_vec(),
            calls: Vec::new(),
            row_errors: Vec::new(),
            warnings: self.warnings(sync).to_vec(),
            diff: None,
        };
        if let SyncMode::Diff { primary_key, on_delete } = &config.mode {
            let diff =
                DiffSync { config, primary_key, on_delete: *on_delete, last_sync_time: state.last_sync_time };
            return self.preview_diff(&diff, rows, preview, &mut stream, &mut mapper).await.map_err(failed);
        }
        let mut row_number = 0;
        while let Some(values) = stream.next().await {
            row_number += 1;
            match values {
                Ok(values) => match mapper.map_values(row_number, &values) {
                    Ok(mut call) => {
                        call.stamp_received(started_at);
                        preview.calls.push(call);
                    }
                    Err(error) => preview.row_errors.push(error),
                },
                Err(e) if e.is_row_error() => preview.row_errors.push(RowError {
                    row_number,
                    column: e.column().map(Into::into),
                    reason: RowErrorReason::Unreadable { message: e.to_string() },
                    values: "{}".into(),
                }),
                Err(e) => return Err(failed(e.into())),
            }
            if row_number >= rows {
                break;
            }
        }
        Ok(preview)
    }

    /// Shuts the bucket destinations' writers down, publishing what they hold.
    pub async fn shutdown(self) -> Result<(), RunnerError> {
        for (name, writer) in self.writers {
            let writer =
                Arc::try_unwrap(writer).map_err(|_| RunnerError::InUse { destination: name.clone() })?;
            writer
                .into_inner()
                .shutdown()
                .await
                .map_err(|source| RunnerError::Bucket { name, source: Box::new(source) })?;
        }
        Ok(())
    }
}

/// Opens every source of the configuration.
async fn open_sources(config: &Config) -> Result<BTreeMap<String, Arc<dyn Source>>, RunnerError> {
    let mut sources = BTreeMap::new();
    for (name, source) in &config.sources {
        let opened = crate::sources::open(name, source)
            .await
            .map_err(|source| RunnerError::Source { name: name.clone(), source: Box::new(source) })?;
        sources.insert(name.clone(), opened);
    }
    Ok(sources)
}

/// A run going, listed for [`Runner::progress`] until dropped (also when the run's
/// future is dropped midway).
struct Going<'a> {
    running: &'a std::sync::Mutex<BTreeMap<String, Arc<Counters>>>,
    sync: &'a str,
}

impl<'a> Going<'a> {
    fn start(
        running: &'a std::sync::Mutex<BTreeMap<String, Arc<Counters>>>,
        sync: &'a str,
        counters: Arc<Counters>,
    ) -> Going<'a> {
        running.lock().expect("the runs going").insert(sync.to_owned(), counters);
        Going { running, sync }
    }
}

impl Drop for Going<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(self.sync);
        }
    }
}

/// What a run counted, and its row-error file.
struct Tally {
    rows_read: u64,
    calls_delivered: u64,
    row_errors: u64,
    /// The same counts, for [`Runner::progress`].
    counters: Arc<Counters>,
    csv_path: std::path::PathBuf,
    csv: Option<RowErrorCsvWriter<std::io::BufWriter<std::fs::File>>>,
    csv_failed: bool,
    /// A diff run's counts, once its changes were delivered.
    diff: Option<DiffCounts>,
}

impl Tally {
    fn new(csv_path: std::path::PathBuf, counters: Arc<Counters>) -> Tally {
        Tally {
            rows_read: 0,
            calls_delivered: 0,
            row_errors: 0,
            counters,
            csv_path,
            csv: None,
            csv_failed: false,
            diff: None,
        }
    }

    /// Makes the counts visible to [`Runner::progress`].
    fn publish(&self) {
        self.counters.rows_read.store(self.rows_read, Ordering::Relaxed);
        self.counters.calls_delivered.store(self.calls_delivered, Ordering::Relaxed);
        self.counters.row_errors.store(self.row_errors, Ordering::Relaxed);
    }

    fn row_error(&mut self, error: RowError) {
        self.row_errors += 1;
        if self.row_errors <= 10 {
            tracing::warn!(row = error.row_number, "row error: {error}");
        }
        if self.csv.is_none() && !self.csv_failed {
            let opened = self
                .csv_path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::File::create(&self.csv_path))
                .and_then(|file| RowErrorCsvWriter::new(std::io::BufWriter::new(file)));
            match opened {
                Ok(writer) => self.csv = Some(writer),
                Err(e) => {
                    tracing::error!(path = %self.csv_path.display(), error = %e, "cannot write row errors");
                    self.csv_failed = true;
                }
            }
        }
        if let Some(csv) = &mut self.csv
            && let Err(e) = csv.write(&error)
        {
            tracing::error!(path = %self.csv_path.display(), error = %e, "cannot write row errors");
            self.csv = None;
            self.csv_failed = true;
        }
    }

    fn rejected(&mut self, rejections: Vec<Rejection>) {
        for rejection in rejections {
            self.calls_delivered = self.calls_delivered.saturating_sub(1);
            self.row_error(RowError {
                row_number: rejection.row_number,
                column: None,
                reason: RowErrorReason::Rejected { status: rejection.status, message: rejection.message },
                values: serde_json::json!({"messageId": rejection.message_id}).to_string().into(),
            });
        }
    }

    fn finish_csv(&mut self) -> Option<std::path::PathBuf> {
        let csv = self.csv.take()?;
        match csv.finish() {
            Ok(_) => Some(self.csv_path.clone()),
            Err(e) => {
                tracing::error!(path = %self.csv_path.display(), error = %e, "cannot write row errors");
                None
            }
        }
    }
}

/// Where a diff sync's rows report themselves while they are read: a run's [`Tally`]
/// or a preview's [`PreviewSink`].
trait RowSink: Send {
    /// A row was read.
    fn row_read(&mut self);
    /// A row error.
    fn row_error(&mut self, error: RowError);
    /// Makes the counts visible (a run's progress).
    fn publish(&self) {}
}

impl RowSink for Tally {
    fn row_read(&mut self) {
        self.rows_read += 1;
    }

    fn row_error(&mut self, error: RowError) {
        Tally::row_error(self, error);
    }

    fn publish(&self) {
        Tally::publish(self);
    }
}

/// A preview's row errors: the first `limit` of them.
struct PreviewSink {
    limit: u64,
    errors: Vec<RowError>,
}

impl RowSink for PreviewSink {
    fn row_read(&mut self) {}

    fn row_error(&mut self, error: RowError) {
        if (self.errors.len() as u64) < self.limit {
            self.errors.push(error);
        }
    }
}

/// A diff sync being run or previewed.
struct DiffSync<'a> {
    config: &'a SyncConfig,
    primary_key: &'a str,
    on_delete: OnDelete,
    /// The `last_sync_time` of the snapshot's run (part of delete events' ids).
    last_sync_time: i64,
}

impl DiffSync<'_> {
    /// The row error of a row the diff engine refused.
    fn row_error(&self, rejected: RejectedRow) -> RowError {
        let column = self.primary_key.to_owned();
        let reason = match rejected.reason {
            RejectReason::MissingKey => RowErrorReason::MissingKey { column },
            RejectReason::DuplicateKey { other_row } => RowErrorReason::DuplicateKey { column, other_row },
            RejectReason::TooLarge { len, max, .. } => {
                RowErrorReason::RecordTooLarge { bytes: len, limit: max }
            }
        };
        let (_, json) = split_payload(&rejected.payload);
        let values = if json.is_empty() {
            serde_json::json!({ "key": String::from_utf8_lossy(&rejected.key) }).to_string()
        } else {
            String::from_utf8_lossy(json).into_owned()
        };
        RowError { row_number: rejected.row, column: None, reason, values: values.into() }
    }
}

/// Rows pushed to the diff engine at once, on the blocking pool.
const BATCH_ROWS: usize = 1024;
/// Bytes (keys, contents, ids, payloads) pushed to the diff engine at once.
const BATCH_BYTES: usize = 4 << 20;
/// Changes read from a diff run at once, on the blocking pool.
const CHANGES_AT_ONCE: usize = 1024;

/// A row waiting to be pushed to the diff engine.
enum Pending {
    /// A row that became a call ([`DiffBuilder::push`]).
    Push { row: u64, key: Option<Vec<u8>>, content: Vec<u8>, ids: Vec<u8>, payload: Vec<u8> },
    /// A row error whose key keeps its snapshot entry ([`DiffBuilder::keep`]).
    Keep { row: u64, key: Option<Vec<u8>> },
}

#[derive(Default)]
struct Batch {
    items: Vec<Pending>,
    bytes: usize,
}

/// Pushes a batch of rows (blocking: may spill a sorted run to disk). Returns the
/// builder and the rows it refused.
fn push_batch(
    mut builder: DiffBuilder,
    items: Vec<Pending>,
) -> Result<(DiffBuilder, Vec<RejectedRow>), DiffError> {
    let mut rejected = Vec::new();
    for item in items {
        match item {
            Pending::Push { row, key, content, ids, payload } => {
                let pushed = builder.push(DiffRow {
                    row,
                    key: key.as_deref(),
                    content: &content,
                    ids: &ids,
                    payload: &payload,
                })?;
                if let Err(row) = pushed {
                    rejected.push(row);
                }
            }
            Pending::Keep { row, key } => builder.keep(row, key.as_deref())?,
        }
    }
    Ok((builder, rejected))
}

/// Reads the next changes of a diff run (blocking: reads the snapshot and sorted
/// runs, writes the new snapshot); none when it has ended.
fn next_changes(mut run: DiffRun) -> Result<(DiffRun, Vec<Change>), DiffError> {
    let mut changes = Vec::new();
    let mut bytes = 0usize;
    while changes.len() < CHANGES_AT_ONCE && bytes < BATCH_BYTES {
        match run.next() {
            None => break,
            Some(change) => {
                let change = change?;
                bytes += match &change {
                    Change::Added { key, payload } | Change::Changed { key, payload } => {
                        key.len() + payload.len()
                    }
                    Change::Deleted { key, ids } => key.len() + ids.len(),
                    Change::Rejected(row) => row.key.len() + row.payload.len(),
                };
                changes.push(change);
            }
        }
    }
    Ok((run, changes))
}

/// A payload as the runner pushes it: the row number (`u64`, little-endian), then the
/// call's compact JSON.
fn split_payload(payload: &[u8]) -> (u64, &[u8]) {
    match payload.split_first_chunk::<8>() {
        Some((row, json)) => (u64::from_le_bytes(*row), json),
        None => (0, payload),
    }
}

/// Runs diff engine work (blocking file I/O) on the blocking pool.
async fn on_blocking<T: Send + 'static>(
    snapshot: &std::path::Path,
    work: impl FnOnce() -> Result<T, DiffError> + Send + 'static,
) -> Result<T, DiffError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(DiffError::Io {
            action: "run the diff",
            path: snapshot.to_owned(),
            source: std::io::Error::other(format!("the diff task was cancelled: {e}")),
        }),
    }
}

/// Rows per batch read and mapped together: enough to make the cost of a task and
/// of the channel per row small, few enough that mapping one batch keeps an async
/// worker busy for well under a millisecond.
const READ_BATCH_ROWS: usize = 512;

/// Batches read (and being mapped) ahead of the run; with [`READ_BATCH_ROWS`] this
/// bounds the rows in flight between reading and sending.
const READ_AHEAD_BATCHES: usize = 4;

/// Sends `calls` in order, counting each one read and, once taken, delivered (less
/// what the destination refused); the call whose sending failed is counted read.
async fn send_calls(
    calls: &mut [Option<Delivery>],
    destination: &mut dyn Destination,
    tally: &mut Tally,
) -> Result<(), RunError> {
    let sent = {
        let mut sent = |rejections| {
            tally.rows_read += 1;
            tally.calls_delivered += 1;
            tally.rejected(rejections);
        };
        destination.send_all(calls, &mut sent).await
    };
    if let Err(error) = sent {
        tally.rows_read += 1;
        return Err(error.into());
    }
    Ok(())
}

/// A row that did not become a call, as the reader hands it over.
enum ReadRow {
    /// The row could not become a call.
    Unmapped(RowError),
    /// The source could not read the row ([`SourceError::is_row_error`]).
    Unreadable { row_number: u64, error: SourceError },
    /// An error that ended the query; nothing follows it.
    Failed(SourceError),
    /// The row after the last the cap admits was read; nothing follows it.
    Capped(CapReached),
}

/// A mapped batch: the calls of its rows, in order (each `None` once sent), and the
/// rows that are not calls, each with the number of the batch's calls that come
/// before it.
struct MappedRows {
    calls: Vec<Option<Delivery>>,
    others: Vec<(usize, ReadRow)>,
}

/// Decodes and maps a batch of rows whose first row is `first_row_number`, in
/// order: its first `admitted` items, then `capped` if the cap stopped the batch.
fn map_batch(
    batch: cdp_source::RowBatch,
    mut mapper: RowMapper,
    first_row_number: u64,
    admitted: usize,
    capped: Option<CapReached>,
) -> MappedRows {
    let mut calls = Vec::with_capacity(admitted);
    let mut others = Vec::new();
    let mut row_number = first_row_number;
    batch.for_each(|row| {
        if calls.len() + others.len() >= admitted {
            return;
        }
        let other = match row {
            Ok(values) => match mapper.map_values(row_number, values) {
                Ok(call) => {
                    calls.push(Some(Delivery { row_number, call }));
                    None
                }
                Err(error) => Some(ReadRow::Unmapped(error)),
            },
            Err(error) if error.is_row_error() => Some(ReadRow::Unreadable { row_number, error }),
            Err(error) => Some(ReadRow::Failed(error)),
        };
        if let Some(other) = other {
            others.push((calls.len(), other));
        }
        row_number += 1;
    });
    others.extend(capped.map(|reached| (calls.len(), ReadRow::Capped(reached))));
    MappedRows { calls, others }
}

/// A batch being mapped on a task of its own; the task is aborted if the batch is
/// dropped before it is taken.
struct MappedBatch(tokio::task::JoinHandle<MappedRows>);

impl MappedBatch {
    /// The batch's rows, in order, once mapped. A panic while mapping is the run's
    /// panic, as it was when the run mapped the rows itself.
    async fn rows(mut self) -> MappedRows {
        match (&mut self.0).await {
            Ok(rows) => rows,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels the task: nothing is left to run.
            Err(_) => MappedRows { calls: Vec::new(), others: Vec::new() },
        }
    }
}

impl Drop for MappedBatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A source's rows being read and mapped on tasks of their own.
struct Reader {
    /// The batches being mapped, in order; closed after the last row, a fatal error
    /// or the cap.
    batches: tokio::sync::mpsc::Receiver<MappedBatch>,
    /// The reading task; aborted (dropping the [`cdp_source::RowStream`], which
    /// cancels the query) when the reader is dropped before the end.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Reader {
    /// Waits for the reading task after its last batch. A panic while reading is
    /// the run's panic, as it was when the run read the rows itself.
    async fn finished(mut self) {
        let Some(task) = self.task.take() else { return };
        if let Err(e) = task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reads `rows` on a spawned task in batches of the rows that are ready (at most
/// [`READ_BATCH_ROWS`], at least one: a slow source's rows are not held back),
/// counting them against `cap`, and maps each batch on a spawned task of its own with
/// a copy of `mapper`, handing the batches over in order through a channel of
/// [`READ_AHEAD_BATCHES`]. Reading stops at a fatal error or once a row past the cap
/// is read (dropping the rows cancels the query if it is still going).
fn spawn_reader(mut rows: cdp_source::RowStream, mapper: RowMapper, mut cap: RecordCap) -> Reader {
    let (sender, batches) = tokio::sync::mpsc::channel(READ_AHEAD_BATCHES);
    let task = tokio::spawn(async move {
        let mut batches_read = 0_u64;
        while let Some(batch) = rows.next_batch(READ_BATCH_ROWS).await {
            batches_read += 1;
            let first_row_number = cap.records() + 1;
            let mut admitted = 0;
            let mut capped = None;
            for _ in 0..batch.rows() {
                match cap.admit() {
                    Ok(_) => admitted += 1,
                    Err(reached) => {
                        capped = Some(reached);
                        break;
                    }
                }
            }
            // The error that ended the query is an item too, unless the cap came first.
            let failed = capped.is_none() && batch.ends_with_error();
            admitted += usize::from(failed);
            let ends = failed || capped.is_some();
            let mapper = mapper.clone();
            let mapping =
                tokio::spawn(async move { map_batch(batch, mapper, first_row_number, admitted, capped) });
            if sender.send(MappedBatch(mapping)).await.is_err() || ends {
                // The run stopped reading, or nothing is left to read: dropping the
                // rows cancels the query if it is still going.
                break;
            }
        }
        tracing::debug!(
            source = rows.source_name(),
            rows = rows.rows_read(),
            batches = batches_read,
            "reading ended"
        );
    });
    Reader { batches, task: Some(task) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes calls one at a time (the trait's default `send_all`), refusing the calls
    /// of `refuse` and failing at the call of row `fail_at`.
    struct Picky {
        taken: Vec<u64>,
        refuse: Vec<u64>,
        fail_at: u64,
    }

    #[async_trait::async_trait]
    impl Destination for Picky {
        fn name(&self) -> &str {
            "picky"
        }

        async fn send(&mut self, delivery: Delivery) -> Result<Vec<Rejection>, DestinationError> {
            let row_number = delivery.row_number;
            self.taken.push(row_number);
            if row_number == self.fail_at {
                return Err(DestinationError::Io {
                    destination: "picky".into(),
                    path: "-".into(),
                    source: std::io::Error::other("refused"),
                });
            }
            let refused = self.refuse.contains(&row_number).then(|| Rejection {
                row_number,
                message_id: delivery.call.message_id.clone(),
                status: None,
                message: "no".into(),
            });
            Ok(refused.into_iter().collect())
        }

        async fn finish(&mut self) -> Result<Vec<Rejection>, DestinationError> {
            Ok(Vec::new())
        }
    }

    fn tally(dir: &std::path::Path) -> Tally {
        let counters = Counters {
            run: 1,
            started_at: Timestamp::from_secs(0).unwrap(),
            rows_read: AtomicU64::new(0),
            calls_delivered: AtomicU64::new(0),
            row_errors: AtomicU64::new(0),
        };
        Tally::new(dir.join("errors.csv"), Arc::new(counters))
    }

    #[tokio::test]
    async fn calls_sent_together_are_counted_as_one_at_a_time_up_to_the_call_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let mut tally = tally(dir.path());
        let mut picky = Picky { taken: Vec::new(), refuse: vec![2], fail_at: 3 };
        let mut calls: Vec<_> =
            (1..=4).map(|row_number| Some(Delivery { row_number, call: Call::identify("u") })).collect();
        let sent = send_calls(&mut calls, &mut picky, &mut tally).await;
        assert!(matches!(sent, Err(RunError::Destination(_))), "{sent:?}");
        assert_eq!(picky.taken, [1, 2, 3], "nothing is taken past the failure");
        assert_eq!(calls.iter().flatten().map(|d| d.row_number).collect::<Vec<_>>(), [4]);
        // Read: the three taken; delivered: 1 and 2, less 2 refused; 3 failed.
        assert_eq!((tally.rows_read, tally.calls_delivered, tally.row_errors), (3, 1, 1));

        let mut picky = Picky { taken: Vec::new(), refuse: vec![], fail_at: 0 };
        let mut tally = self::tally(dir.path());
        send_calls(
            &mut (5..=6)
                .map(|row_number| Some(Delivery { row_number, call: Call::identify("u") }))
                .collect::<Vec<_>>(),
            &mut picky,
            &mut tally,
        )
        .await
        .unwrap();
        assert_eq!((tally.rows_read, tally.calls_delivered, tally.row_errors), (2, 2, 0));
    }
}

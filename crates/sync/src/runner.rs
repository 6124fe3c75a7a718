//! [`Runner`]: one run of a sync, a preview, and the syncs' state.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cdp_bucket::{Bucket, BucketWriter, Clock, WriterConfig};
use cdp_calls::{Call, Timestamp};
use cdp_query::{CheckOptions, QueryTemplate, QueryWarning, SyncVariables};
use cdp_rows::{MappingOptions, RecordCap, RowError, RowErrorCsvWriter, RowErrorReason, RowMapper};
use cdp_source::{Source, SourceError};
use tokio::sync::Mutex;

use crate::config::{Config, DestinationConfig, SyncConfig};
use crate::state::{Outcome, RunRecord, StateDir, StateError, SyncState};
use crate::{BucketDestination, Delivery, Destination, DestinationError, NdjsonDestination, Rejection};

/// Why the runner could not start, or could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// No sync has this name.
    #[error("no sync is called {0:?}")]
    NoSuchSync(String),
    /// A sync's query does not pass its checks (setup is refused).
    #[error("sync {sync:?}: the query does not pass its checks:\n{error}")]
    Query {
        /// The sync.
        sync: String,
        /// The diagnostic, with its line and column in the template.
        error: Box<cdp_query::QueryError>,
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
    /// The preview's query could not run or be mapped.
    #[error("sync {sync:?}: {message}")]
    Preview {
        /// The sync.
        sync: String,
        /// Why.
        message: String,
    },
}

/// What a preview shows: the first rows of the query as calls and row errors,
/// with nothing delivered and no state changed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Preview {
    /// The SQL that ran (the rendered query, limited in the source's dialect).
    pub sql: String,
    /// The result's column names.
    pub columns: Vec<String>,
    /// Where each column lands in the call (`userId`, `traits.email`, …).
    pub fields: Vec<String>,
    /// The calls the rows became, stamped as a run would stamp them.
    pub calls: Vec<Call>,
    /// The rows that could not become calls.
    pub row_errors: Vec<RowError>,
    /// The query's warnings.
    pub warnings: Vec<String>,
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
/// it, so the next run reads the same rows again. A run that would start while
/// another run of the same sync holds its lock (in this process or another) is
/// recorded as skipped.
pub struct Runner {
    config: Config,
    state: StateDir,
    clock: Arc<dyn Clock>,
    sources: BTreeMap<String, Arc<dyn Source>>,
    writers: BTreeMap<String, Arc<Mutex<BucketWriter>>>,
    templates: BTreeMap<String, QueryTemplate>,
    warnings: BTreeMap<String, Vec<QueryWarning>>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("state", &self.state)
            .field("syncs", &self.config.syncs.iter().map(|s| &s.name).collect::<Vec<_>>())
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Runner {
    /// Sets up every source, bucket destination and query of the configuration.
    /// Queries are compiled and checked in their source's dialect now, so that a
    /// mistake surfaces before anything runs.
    pub async fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Runner, RunnerError> {
        let mut sources = BTreeMap::new();
        for (name, source) in &config.sources {
            let opened = crate::sources::open(name, source)
                .await
                .map_err(|source| RunnerError::Source { name: name.clone(), source: Box::new(source) })?;
            sources.insert(name.clone(), opened);
        }
        Runner::with_sources(config, clock, sources).await
    }

    /// As [`Runner::new`], with sources made by the caller (by name, for every
    /// source the syncs use).
    pub async fn with_sources(
        config: Config,
        clock: Arc<dyn Clock>,
        sources: BTreeMap<String, Arc<dyn Source>>,
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
                let (mut writer, recovery) =
                    BucketWriter::open(Bucket::from_url(bucket).map_err(bad)?, writer_config, clock.clone())
                        .await
                        .map_err(bad)?;
                // Calls in the open window belong to a run that never finished: it
                // failed, and its next run reads the same rows again.
                if recovery.resumed_calls > 0 {
                    let discarded = writer.discard_open().map_err(bad)?;
                    tracing::warn!(destination = %name, calls = discarded, "took back the calls of a run that did not finish");
                }
                writers.insert(name.clone(), Arc::new(Mutex::new(writer)));
            }
        }
        let mut templates = BTreeMap::new();
        let mut warnings = BTreeMap::new();
        for sync in &config.syncs {
            let source = sources.get(&sync.source).ok_or_else(|| RunnerError::Source {
                name: sync.source.clone(),
                source: Box::new(SourceError::not_configured(&sync.source)),
            })?;
            let query_error = |error| RunnerError::Query { sync: sync.name.clone(), error: Box::new(error) };
            let template = QueryTemplate::new(sync.query.clone()).map_err(query_error)?;
            let report = template
                .check(CheckOptions::new(source.dialect()).call_type(sync.call_type))
                .map_err(query_error)?;
            for warning in report.warnings() {
                tracing::warn!(sync = %sync.name, "{warning}");
            }
            warnings.insert(sync.name.clone(), report.into_warnings());
            templates.insert(sync.name.clone(), template);
        }
        Ok(Runner {
            state: StateDir::new(&config.state_dir),
            config,
            clock,
            sources,
            writers,
            templates,
            warnings,
        })
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

    /// A sync's run history, oldest first.
    pub fn history(&self, sync: &str) -> Result<Vec<RunRecord>, RunnerError> {
        self.sync(sync)?;
        Ok(self.state.history(sync)?)
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
    /// going gives a skipped run. Errors of the run itself (the query, the source,
    /// the destination) end up in the record as a failed outcome; `Err` is for the
    /// state directory failing, or an unknown sync.
    pub async fn run(&self, sync: &str) -> Result<RunRecord, RunnerError> {
        let config = self.sync(sync)?;
        let started_at = self.clock.now();
        let Some(_lock) = self.state.try_lock(sync)? else {
            return self.record_skipped(sync, started_at);
        };
        let state = self.state.load(sync)?;
        let run = self.state.next_run(sync)?;
        // Recorded at once, so the run's number is taken and a process that dies
        // mid-run leaves it in the history as failed.
        self.state.record(&RunRecord::nothing_read(
            run,
            sync,
            started_at,
            state.last_sync_time,
            Outcome::Failed,
            "the run did not finish: the process stopped while it was going",
        ))?;
        let mut tally = Tally { csv_path: self.state.row_errors_path(sync, run), ..Tally::default() };
        let result = self.run_inner(config, state, started_at, &mut tally).await;
        let (outcome, error) = match result {
            Ok(()) => (Outcome::Succeeded, None),
            Err(message) => (Outcome::Failed, Some(message)),
        };
        let row_errors_file = tally.finish_csv();
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
            error,
        };
        if outcome == Outcome::Succeeded {
            self.state.save(sync, &SyncState { last_sync_time: started_at.as_secs(), ..state })?;
        }
        self.state.record(&record)?;
        match outcome {
            Outcome::Succeeded => tracing::info!(
                sync,
                run,
                rows_read = record.rows_read,
                calls_delivered = record.calls_delivered,
                row_errors = record.row_errors,
                "run succeeded"
            ),
            _ => tracing::error!(sync, run, error = record.error.as_deref().unwrap_or(""), "run failed"),
        }
        Ok(record)
    }

    /// Records a run of `sync` due at `now` as skipped: the previous run is still
    /// going.
    pub(crate) fn record_skipped(&self, sync: &str, now: Timestamp) -> Result<RunRecord, RunnerError> {
        let record = RunRecord::nothing_read(
            self.state.next_run(sync)?,
            sync,
            now,
            self.state.load(sync)?.last_sync_time,
            Outcome::Skipped,
            "the previous run of this sync was still going",
        );
        self.state.record(&record)?;
        tracing::warn!(sync, run = record.run, "skipped: the previous run is still going");
        Ok(record)
    }

    /// The run's work; `Err` with the reason when it fails.
    async fn run_inner(
        &self,
        config: &SyncConfig,
        state: SyncState,
        started_at: Timestamp,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let template = &self.templates[&config.name];
        let variables = SyncVariables::new(state.last_sync_time, started_at.as_secs());
        let rendered = template.render(&variables).map_err(|e| e.to_string())?;
        let source = &self.sources[&config.source];
        let mut rows = source.query(rendered.sql()).await.map_err(|e| e.to_string())?;
        let options = MappingOptions::new(&config.name, config.call_type)
            .lowercase_names(config.lowercase_names)
            .limit_call_size(matches!(
                self.config.destinations[&config.destination],
                DestinationConfig::Http { .. }
            ));
        let mut mapper = RowMapper::new(options, rows.columns(), started_at).map_err(|e| e.to_string())?;
        let mut destination = self.open_destination(&config.destination).await.map_err(|e| e.to_string())?;
        let delivered = self.deliver(&mut rows, &mut mapper, destination.as_mut(), tally).await;
        if delivered.is_err() {
            destination.abort().await;
        }
        delivered
    }

    /// Reads every row, maps it and hands the call to the destination; finishes the
    /// destination when every row is read.
    async fn deliver(
        &self,
        rows: &mut cdp_source::RowStream,
        mapper: &mut RowMapper,
        destination: &mut dyn Destination,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let mut cap = RecordCap::default();
        loop {
            let values = match rows.next().await {
                None => break,
                Some(Ok(values)) => values,
                Some(Err(e)) if e.is_row_error() => {
                    let row_number = cap.admit().map_err(|e| e.to_string())?;
                    tally.rows_read += 1;
                    tally.row_error(RowError {
                        row_number,
                        column: e.column().map(Into::into),
                        reason: RowErrorReason::Unreadable { message: e.to_string() },
                        values: "{}".into(),
                    });
                    continue;
                }
                Some(Err(e)) => return Err(e.to_string()),
            };
            // Past the cap the run fails: last_sync_time stays, so no row past the
            // cap is skipped for good.
            let row_number = cap.admit().map_err(|reached| reached.to_string())?;
            tally.rows_read += 1;
            match mapper.map_values(row_number, &values) {
                Ok(mut call) => {
                    call.stamp_received(self.clock.now());
                    let rejections =
                        destination.send(Delivery { row_number, call }).await.map_err(|e| e.to_string())?;
                    tally.calls_delivered += 1;
                    tally.rejected(rejections);
                }
                Err(error) => tally.row_error(error),
            }
        }
        let rejections = destination.finish().await.map_err(|e| e.to_string())?;
        tally.rejected(rejections);
        Ok(())
    }

    /// A destination for one run.
    async fn open_destination(&self, name: &str) -> Result<Box<dyn Destination>, DestinationError> {
        Ok(match &self.config.destinations[name] {
            DestinationConfig::Http { base_url, api_key } => {
                let config = crate::http::HttpConfig::custom(base_url.as_str(), api_key.expose());
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
    /// them, delivering nothing and changing no state.
    pub async fn preview(&self, sync: &str, rows: u64) -> Result<Preview, RunnerError> {
        let config = self.sync(sync)?;
        let failed = |message: String| RunnerError::Preview { sync: sync.to_owned(), message };
        let started_at = self.clock.now();
        let state = self.state.load(sync)?;
        let source = &self.sources[&config.source];
        let rendered = self.templates[sync]
            .render(&SyncVariables::new(state.last_sync_time, started_at.as_secs()))
            .map_err(|e| failed(e.to_string()))?;
        let sql = rendered.preview(source.dialect(), rows).map_err(|e| failed(e.to_string()))?;
        let mut stream = source.query(&sql).await.map_err(|e| failed(e.to_string()))?;
        let options =
            MappingOptions::new(&config.name, config.call_type).lowercase_names(config.lowercase_names);
        let mut mapper =
            RowMapper::new(options, stream.columns(), started_at).map_err(|e| failed(e.to_string()))?;
        let mut preview = Preview {
            sql,
            columns: stream.columns().names().to_vec(),
            fields: mapper.fields().to_vec(),
            calls: Vec::new(),
            row_errors: Vec::new(),
            warnings: self.warnings(sync).iter().map(|w| w.to_string()).collect(),
        };
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
                Err(e) => return Err(failed(e.to_string())),
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
            let writer = Arc::try_unwrap(writer).map_err(|_| RunnerError::Preview {
                sync: String::new(),
                message: format!("destination {name:?} is still in use"),
            })?;
            writer
                .into_inner()
                .shutdown()
                .await
                .map_err(|source| RunnerError::Bucket { name, source: Box::new(source) })?;
        }
        Ok(())
    }
}

/// What a run counted, and its row-error file.
#[derive(Default)]
struct Tally {
    rows_read: u64,
    calls_delivered: u64,
    row_errors: u64,
    csv_path: std::path::PathBuf,
    csv: Option<RowErrorCsvWriter<std::io::BufWriter<std::fs::File>>>,
    csv_failed: bool,
}

impl Tally {
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

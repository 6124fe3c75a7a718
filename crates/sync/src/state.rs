//! Each sync's state (`last_sync_time`, enabled) and run history, in a state
//! directory, written atomically.
//!
//! ```text
//! <state dir>/<sync>/state.json            {"last_sync_time": 1764000000, "enabled": null}
//! <state dir>/<sync>/LOCK                  held while a run of the sync is going
//! <state dir>/<sync>/runs/00000001.json    one record per run (RunRecord as JSON)
//! <state dir>/<sync>/runs/00000001.row-errors.csv
//! <state dir>/<sync>/snapshot.diff         a diff sync's last successful run (see cdp_sync::diff)
//! ```
//!
//! Files are replaced by writing a temporary file, syncing it, renaming it over the
//! old one and syncing the directory: a crash leaves the old file or the new one,
//! never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cdp_calls::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{RunError, RunErrorKind};

/// Why the state directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing a file failed.
    #[error("state file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file holds something else than what was written there.
    #[error("state file {} is damaged: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_owned(), source }
}

/// What is kept of a sync between runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncState {
    /// Unix seconds at which the last successful run started; 0 before the first.
    pub last_sync_time: i64,
    /// Enabled or disabled here, overriding the configuration; `None` follows it.
    pub enabled: Option<bool>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// Every row was read and every call delivered (row errors do not fail a run);
    /// `last_sync_time` moved to the run's start.
    Succeeded,
    /// The query, the source, the mapping of the columns or the destination failed,
    /// or the record cap was reached; `last_sync_time` did not move.
    Failed,
    /// The previous run of the sync was still going; nothing ran.
    Skipped,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        })
    }
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's number within its sync, from 1.
    pub run: u64,
    /// The sync.
    pub sync: String,
    /// When it started (RFC 3339).
    #[serde(with = "rfc3339")]
    pub started_at: Timestamp,
    /// When it finished.
    #[serde(with = "rfc3339")]
    pub finished_at: Timestamp,
    /// The `last_sync_time` the query was rendered with.
    pub last_sync_time: i64,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Calls the destination took.
    pub calls_delivered: u64,
    /// Rows that became row errors.
    pub row_errors: u64,
    /// The CSV file of the row errors, when there were any.
    pub row_errors_file: Option<PathBuf>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed or was skipped: the [`RunError`]'s message.
    pub error: Option<String>,
    /// The kind of [`RunRecord::error`] ([`RunError::kind`]), stored as its stable
    /// snake_case name (`"source"`, `"destination"`, …). `None` for a run that
    /// succeeded, and in records written before kinds were recorded (they still read).
    #[serde(default)]
    pub error_kind: Option<RunErrorKind>,
    /// A diff sync's run: keys new since the last successful run (rows sent as
    /// added). `None` for a cursor sync's run, a run that failed before the diff
    /// was read, and records written before diff syncs existed (they still read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
    /// A diff sync's run: keys whose call changed (rows sent as changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<u64>,
    /// A diff sync's run: keys of the last successful run in no row of this one
    /// (sent as delete events with `on_delete = "event"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
}

impl RunRecord {
    /// The record of a run that read nothing (yet): skipped, or just started.
    pub(crate) fn nothing_read(
        run: u64,
        sync: &str,
        at: Timestamp,
        last_sync_time: i64,
        outcome: Outcome,
        error: &RunError,
    ) -> RunRecord {
        RunRecord {
            run,
            sync: sync.to_owned(),
            started_at: at,
            finished_at: at,
            last_sync_time,
            rows_read: 0,
            calls_delivered: 0,
            row_errors: 0,
            row_errors_file: None,
            outcome,
            error: Some(error.to_string()),
            error_kind: Some(error.kind()),
            added: None,
            changed: None,
            deleted: None,
        }
    }
}

mod rfc3339 {
    use cdp_calls::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The state directory at `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn sync_dir(&self, sync: &str) -> PathBuf {
        self.dir.join(sync)
    }

    /// The snapshot of a diff sync's last successful run: `<state dir>/<sync>/snapshot.diff`
    /// (its sorted runs are spilled in the same directory).
    pub fn snapshot_path(&self, sync: &str) -> PathBuf {
        self.sync_dir(sync).join("snapshot.diff")
    }

    /// The sync's state (the default before its first run).
    pub fn load(&self, sync: &str) -> Result<SyncState, StateError> {
        let path = self.sync_dir(sync).join("state.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StateError::Damaged { path: path.clone(), reason: e.to_string() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SyncState::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Replaces the sync's state, atomically.
    pub fn save(&self, sync: &str, state: &SyncState) -> Result<(), StateError> {
        let dir = self.sync_dir(sync);
        let bytes = serde_json::to_vec_pretty(state).expect("the state serialises");
        write_atomically(&dir, "state.json", &bytes)
    }

    /// Takes the sync's run lock; `None` when a run holds it (in this process or
    /// another). The lock is released when the guard is dropped.
    pub fn try_lock(&self, sync: &str) -> Result<Option<RunLock>, StateError> {
        let dir = self.sync_dir(sync);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join("LOCK");
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// The next run's number.
    pub fn next_run(&self, sync: &str) -> Result<u64, StateError> {
        Ok(self.history(sync)?.last().map_or(1, |r| r.run + 1))
    }

    /// Where the row errors of a run go.
    pub fn row_errors_path(&self, sync: &str, run: u64) -> PathBuf {
        self.sync_dir(sync).join("runs").join(format!("{run:08}.row-errors.csv"))
    }

    /// Records a run, atomically.
    pub fn record(&self, record: &RunRecord) -> Result<(), StateError> {
        let dir = self.sync_dir(&record.sync).join("runs");
        let bytes = serde_json::to_vec_pretty(record).expect("a run record serialises");
        write_atomically(&dir, &format!("{:08}.json", record.run), &bytes)
    }

    /// Every recorded run of the sync, oldest first.
    pub fn history(&self, sync: &str) -> Result<Vec<RunRecord>, StateError> {
        let dir = self.sync_dir(sync).join("runs");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut records = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_err(&dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let is_record =
                name.len() == 13 && name.ends_with(".json") && name[..8].bytes().all(|b| b.is_ascii_digit());
            if !is_record {
                continue;
            }
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let record: RunRecord = serde_json::from_slice(&bytes)
                .map_err(|e| StateError::Damaged { path: path.clone(), reason: e.to_string() })?;
            records.push(record);
        }
        records.sort_by_key(|r| r.run);
        Ok(records)
    }
}

/// Held while a run of a sync is going.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StateError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    })()
    .map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(run: u64, outcome: Outcome) -> RunRecord {
        RunRecord {
            run,
            sync: "people".into(),
            started_at: "2026-11-22T10:00:00Z".parse().unwrap(),
            finished_at: "2026-11-22T10:00:05.250Z".parse().unwrap(),
            last_sync_time: 1_763_800_000,
            rows_read: 10,
            calls_delivered: 9,
            row_errors: 1,
            row_errors_file: Some(PathBuf::from("x.csv")),
            outcome,
            error: None,
            error_kind: None,
            added: None,
            changed: None,
            deleted: None,
        }
    }

    #[test]
    fn diff_counts_round_trip_and_old_records_read_without_them() {
        let mut diff = record(3, Outcome::Succeeded);
        (diff.added, diff.changed, diff.deleted) = (Some(2), Some(1), Some(4));
        let json = serde_json::to_string(&diff).unwrap();
        assert!(json.contains(r#""added":2,"changed":1,"deleted":4"#), "{json}");
        assert_eq!(serde_json::from_str::<RunRecord>(&json).unwrap(), diff);
        let cursor = record(4, Outcome::Succeeded);
        let json = serde_json::to_string(&cursor).unwrap();
        assert!(!json.contains("added"), "a cursor run's record is as before: {json}");
        assert_eq!(serde_json::from_str::<RunRecord>(&json).unwrap(), cursor);
    }

    #[test]
    fn state_and_history_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert_eq!(state.load("people").unwrap(), SyncState::default());
        state.save("people", &SyncState { last_sync_time: 42, enabled: Some(false) }).unwrap();
        assert_eq!(state.load("people").unwrap(), SyncState { last_sync_time: 42, enabled: Some(false) });
        assert_eq!(state.next_run("people").unwrap(), 1);
        for (run, outcome) in [(1, Outcome::Succeeded), (2, Outcome::Skipped), (3, Outcome::Failed)] {
            state.record(&record(run, outcome)).unwrap();
        }
        let history = state.history("people").unwrap();
        assert_eq!(
            history.iter().map(|r| (r.run, r.outcome)).collect::<Vec<_>>(),
            [(1, Outcome::Succeeded), (2, Outcome::Skipped), (3, Outcome::Failed)]
        );
        assert_eq!(history[0], record(1, Outcome::Succeeded));
        assert_eq!(state.next_run("people").unwrap(), 4);
        // No temporary files are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("people/runs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_damaged_state_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        fs::create_dir_all(dir.path().join("people")).unwrap();
        fs::write(dir.path().join("people/state.json"), b"{\"last_sync").unwrap();
        assert!(matches!(state.load("people"), Err(StateError::Damaged { .. })));
    }

    #[test]
    fn a_crash_mid_write_leaves_the_old_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.save("people", &SyncState { last_sync_time: 7, enabled: None }).unwrap();
        // A crash after writing the temporary file but before the rename: the
        // half-written temporary file is ignored.
        fs::write(dir.path().join("people/.state.json.tmp"), b"{\"last_sync_time\": 9").unwrap();
        assert_eq!(state.load("people").unwrap().last_sync_time, 7);
        state.save("people", &SyncState { last_sync_time: 8, enabled: None }).unwrap();
        assert_eq!(state.load("people").unwrap().last_sync_time, 8);
    }

    #[test]
    fn the_run_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let held = state.try_lock("people").unwrap().expect("free");
        assert!(state.try_lock("people").unwrap().is_none());
        assert!(state.try_lock("other").unwrap().is_some());
        drop(held);
        assert!(state.try_lock("people").unwrap().is_some());
    }
}

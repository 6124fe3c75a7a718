//! Diff engine for diff-based syncs: which rows of a result were added, changed or
//! deleted since the last successful run, in bounded memory at any size.
//!
//! The state of the last successful run is a **snapshot file**: the run's keys in
//! byte order, each with a 128-bit hash of its content and a small opaque blob of
//! ids (what a delete event for that key needs). A run pushes its rows in any order
//! ([`DiffBuilder::push`]); they are buffered up to a memory budget, sorted by key
//! and spilled to temporary files as sorted runs. [`DiffBuilder::finish`] then
//! merges the runs and merge-joins them with the snapshot, giving the changes in
//! key order ([`DiffRun`], an iterator of [`Change`]) while it writes the new
//! snapshot next to the old one. [`DiffRun::commit`] replaces the old snapshot
//! with the new one atomically; a run that is dropped, fails, or is not read to
//! its end leaves the old snapshot as it was, so the next run diffs against the
//! same base and yields the same changes again.
//!
//! ```
//! use cdp_sync::diff::{Change, DiffBuilder, DiffOptions, DiffRow};
//!
//! let dir = tempfile::tempdir()?;
//! let snapshot = dir.path().join("people.snapshot");
//! // Pushes the rows of a table `(id, email)`: the key is the id, the content is what
//! // the call would carry, the ids are what a delete event needs, the payload is the
//! // call to deliver when the row turns out new or changed.
//! let run = |rows: &[(&str, &str)]| -> Result<Vec<String>, Box<dyn std::error::Error>> {
//!     let mut builder = DiffBuilder::new(&snapshot, DiffOptions::new())?;
//!     for (row, (id, email)) in rows.iter().enumerate() {
//!         let call = format!(r#"{{"userId":"{id}","traits":{{"email":"{email}"}}}}"#);
//!         let pushed = builder.push(DiffRow {
//!             row: row as u64 + 1,
//!             key: Some(id.as_bytes()),
//!             content: call.as_bytes(),
//!             ids: id.as_bytes(),
//!             payload: call.as_bytes(),
//!         })?;
//!         assert!(pushed.is_ok()); // no NULL or empty key here
//!     }
//!     let mut run = builder.finish()?;
//!     let mut seen = Vec::new();
//!     for change in &mut run {
//!         seen.push(match change? {
//!             Change::Added { key, .. } => format!("added {}", String::from_utf8(key)?),
//!             Change::Changed { key, .. } => format!("changed {}", String::from_utf8(key)?),
//!             Change::Deleted { key, .. } => format!("deleted {}", String::from_utf8(key)?),
//!             Change::Rejected(row) => format!("row error {row}"),
//!         });
//!     }
//!     run.commit()?; // only once every change was delivered
//!     Ok(seen)
//! };
//!
//! assert_eq!(run(&[("1", "ada@example.com"), ("2", "bob@example.com")])?, ["added 1", "added 2"]);
//! assert_eq!(run(&[("2", "bob@example.com"), ("1", "ada@example.com")])?, Vec::<String>::new());
//! assert_eq!(run(&[("1", "ada@new.example.com"), ("3", "cy@example.com")])?,
//!            ["changed 1", "deleted 2", "added 3"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Rows the engine refuses
//! Row errors do not stop the run; each is a [`RejectedRow`] with the row number
//! the caller gave, so that it can be written out with the row's other errors:
//! - A NULL or empty key ([`RejectReason::MissingKey`]) is refused by
//!   [`DiffBuilder::push`] at once.
//! - A key longer than [`MAX_KEY_LEN`], ids longer than [`MAX_IDS_LEN`], or a
//!   payload longer than [`MAX_PAYLOAD_LEN`] ([`RejectReason::TooLarge`]) too.
//! - A row that the caller finds to be a row error (it could not become a call)
//!   is given with [`DiffBuilder::keep`], and so is, by the engine, a row with
//!   oversize ids or payload: its key keeps its snapshot entry. A row error must
//!   never look like a deleted row (and send a delete event for a user who is
//!   still there).
//! - **A key that appears on more than one row of the result**
//!   ([`RejectReason::DuplicateKey`]): *every* row with that key is a row error
//!   (yielded as [`Change::Rejected`], in row order, each naming another row with
//!   the same key), none of them is sent, and the key keeps its previous snapshot
//!   entry unchanged: it is neither deleted nor sent. Picking one of the rows
//!   ("first wins") would depend on the order the database returns them in, which
//!   is not stable; refusing them all and keeping the last known state means that
//!   once the duplicates are fixed, the next run sends the row if it differs from
//!   what was last delivered, and nothing otherwise.
//!
//! # Memory and disk
//! Pushed rows are held in one buffer of about [`DiffOptions::memory_budget`]
//! bytes (32 MiB by default; its vectors reserve at most a quarter more); a full buffer is sorted and written to a temporary
//! file in the spill directory (the snapshot's directory by default), removed from
//! the directory as soon as it is created on Unix, so that nothing is left behind
//! even by a crash. The merge reads at most 64 runs at a time (with more, the
//! smallest runs are first merged into one, as few as that takes), through
//! buffers of at most 64 KiB each, and holds one row per run. Memory therefore
//! does not grow with the number of keys (the budget, plus about 5 MiB at most);
//! disk use is about the size of the result's keys, ids and payloads plus the new
//! snapshot.
//!
//! A process that dies between writing a new snapshot and renaming it into place
//! leaves a `.NAME.PID-N.tmp` file next to the snapshot; it is never read, and
//! [`remove_leftovers`] removes it (call it while holding the sync's run lock).
//!
//! All I/O here is blocking: call it from a blocking thread in async code
//! ([`DiffBuilder`] and [`DiffRun`] are `Send`).
//!
//! # Snapshot file format (version 1)
//! All integers are little-endian.
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `CDPDIFF\0` |
//! | 8..12 | version, `1` |
//! | 12..16 | flags, `0` |
//! | 16..24 | number of records |
//! | 24..32 | length in bytes of the records that follow the header |
//! | 32..40 | XXH3-64 checksum of those bytes |
//! | 40.. | the records |
//!
//! A record is the key's length (`u32`), the key, its content hash (XXH3-128 of
//! the content, 16 bytes), the ids' length (`u32`) and the ids. Keys are non-empty
//! and strictly increasing in byte order. [`DiffBuilder::new`] reads the whole
//! file and checks all of this before a row is pushed, so a damaged snapshot is an
//! error naming the file and what is wrong ([`SnapshotProblem`]), never a diff
//! against garbage; the file is checked again while the run reads it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use xxhash_rust::xxh3::{Xxh3Default, xxh3_128};

/// The longest key accepted, in bytes (1 MiB).
pub const MAX_KEY_LEN: usize = 1 << 20;
/// The longest ids blob accepted, in bytes (1 MiB).
pub const MAX_IDS_LEN: usize = 1 << 20;
/// The longest payload accepted, in bytes (64 MiB).
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;
/// The default memory budget of a [`DiffBuilder`]: 32 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 32 << 20;

const MAGIC: [u8; 8] = *b"CDPDIFF\0";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 40;
/// How many sorted runs are merged at once.
const FAN_IN: usize = 64;
const MAX_IO_BUFFER: usize = 64 << 10;
const MIN_IO_BUFFER: usize = 4 << 10;

/// Options of a [`DiffBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    memory_budget: usize,
    spill_dir: Option<PathBuf>,
    write_snapshot: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions::new()
    }
}

impl DiffOptions {
    /// A 32 MiB budget, spills in the snapshot's directory, a new snapshot written.
    pub fn new() -> DiffOptions {
        DiffOptions { memory_budget: DEFAULT_MEMORY_BUDGET, spill_dir: None, write_snapshot: true }
    }

    /// Bytes of pushed rows held in memory before they are sorted and spilled to a
    /// temporary file (at least 1; a row bigger than the budget is held alone).
    pub fn with_memory_budget(mut self, bytes: usize) -> DiffOptions {
        self.memory_budget = bytes.max(1);
        self
    }

    /// The directory for the temporary files of sorted runs (the snapshot's
    /// directory when not set).
    pub fn with_spill_dir(mut self, dir: impl Into<PathBuf>) -> DiffOptions {
        self.spill_dir = Some(dir.into());
        self
    }

    /// Whether the run writes a new snapshot (true by default). A run that does not
    /// (a preview) cannot be committed and writes nothing next to the snapshot.
    pub fn with_snapshot_update(mut self, write: bool) -> DiffOptions {
        self.write_snapshot = write;
        self
    }

    /// The memory budget in bytes.
    pub fn memory_budget(&self) -> usize {
        self.memory_budget
    }

    /// The spill directory, when one was set.
    pub fn spill_dir(&self) -> Option<&Path> {
        self.spill_dir.as_deref()
    }

    /// Whether the run writes a new snapshot.
    pub fn snapshot_update(&self) -> bool {
        self.write_snapshot
    }
}

/// One row of a run's result, as [`DiffBuilder::push`] takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffRow<'a> {
    /// The row's number in the result (from 1), given back with its row errors.
    pub row: u64,
    /// The key's canonical text; `None` for NULL. Keys compare as bytes.
    pub key: Option<&'a [u8]>,
    /// What is compared between runs: the row counts as changed when the XXH3-128
    /// hash of these bytes differs from the last run's (for a call, its canonical
    /// JSON without the fields each run sets anew, such as `messageId`).
    pub content: &'a [u8],
    /// Kept in the new snapshot and given back with [`Change::Deleted`] when the key
    /// disappears: what a delete event for the key needs.
    pub ids: &'a [u8],
    /// Given back with [`Change::Added`] or [`Change::Changed`]: what to deliver.
    pub payload: &'a [u8],
}

/// What the diff of a row (or of a key that disappeared) says to do, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The key was not in the snapshot: deliver the payload.
    Added {
        /// The row's key.
        key: Vec<u8>,
        /// The row's payload.
        payload: Vec<u8>,
    },
    /// The key was in the snapshot with another content hash: deliver the payload.
    Changed {
        /// The row's key.
        key: Vec<u8>,
        /// The row's payload.
        payload: Vec<u8>,
    },
    /// The key was in the snapshot and is in no row of this result.
    Deleted {
        /// The key.
        key: Vec<u8>,
        /// The ids stored with the key by the run that last saw it.
        ids: Vec<u8>,
    },
    /// A row error found while merging: a row whose key is on other rows too.
    Rejected(RejectedRow),
}

/// A row the engine refused, with what the caller needs to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// The row's number, as pushed.
    pub row: u64,
    /// The row's key (empty when it had none).
    pub key: Vec<u8>,
    /// Why the row was refused.
    pub reason: RejectReason,
    /// The row's payload, as pushed (empty for [`RejectReason::TooLarge`]).
    pub payload: Vec<u8>,
}

impl fmt::Display for RejectedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.row, self.reason)
    }
}

/// Why a row was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The key is NULL or empty.
    MissingKey,
    /// Another row of the result has the same key (`other_row`: one of them).
    DuplicateKey {
        /// Another row with the same key.
        other_row: u64,
    },
    /// A part of the row is longer than the engine takes.
    TooLarge {
        /// Which part: `key`, `ids` or `payload`.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The longest accepted.
        max: usize,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::MissingKey => write!(f, "the primary key is NULL or empty"),
            RejectReason::DuplicateKey { other_row } => {
                write!(f, "the primary key is also on row {other_row} (duplicate keys are not sent)")
            }
            RejectReason::TooLarge { field, len, max } => {
                write!(f, "the {field} is {len} bytes, more than the {max} accepted")
            }
        }
    }
}

/// How many rows and keys a run found of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffCounts {
    /// Keys not in the snapshot.
    pub added: u64,
    /// Keys whose content hash changed.
    pub changed: u64,
    /// Keys of the snapshot in no row of the result.
    pub deleted: u64,
    /// Keys whose content hash is the snapshot's.
    pub unchanged: u64,
    /// Rows refused ([`RejectedRow`]): missing or duplicate keys, oversize parts.
    pub rejected: u64,
    /// Keys whose only row was a row error ([`DiffBuilder::keep`]), kept as they
    /// were.
    pub kept: u64,
}

/// What is wrong with a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotProblem {
    /// The file does not start with the snapshot magic bytes.
    NotASnapshot,
    /// The file's format version is not one this build reads.
    UnsupportedVersion(u32),
    /// The header's flags are not zero.
    UnknownFlags(u32),
    /// The file is shorter or longer than its header says.
    WrongLength {
        /// The length the header gives (header included).
        expected: u64,
        /// The file's length.
        found: u64,
    },
    /// The records do not match the header's checksum.
    ChecksumMismatch,
    /// A record is cut short or has an impossible length.
    Malformed {
        /// Which record (from 0).
        record: u64,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A key is empty or not greater than the key before it.
    OutOfOrder {
        /// Which record (from 0).
        record: u64,
    },
    /// The number of records is not the header's.
    WrongCount {
        /// The header's count.
        expected: u64,
        /// The records found.
        found: u64,
    },
}

impl fmt::Display for SnapshotProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotProblem::NotASnapshot => write!(f, "not a diff snapshot (wrong magic bytes)"),
            SnapshotProblem::UnsupportedVersion(v) => {
                write!(f, "format version {v}, this build reads version {VERSION}")
            }
            SnapshotProblem::UnknownFlags(flags) => write!(f, "unknown header flags {flags:#x}"),
            SnapshotProblem::WrongLength { expected, found } => {
                write!(f, "the header says {expected} bytes but the file has {found} (truncated or damaged)")
            }
            SnapshotProblem::ChecksumMismatch => write!(f, "the records do not match the checksum (damaged)"),
            SnapshotProblem::Malformed { record, what } => write!(f, "record {record}: {what}"),
            SnapshotProblem::OutOfOrder { record } => {
                write!(f, "record {record}: key empty or not after the key before it")
            }
            SnapshotProblem::WrongCount { expected, found } => {
                write!(f, "the header says {expected} records but the file has {found}")
            }
        }
    }
}

/// An error that stops a diff run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// Reading or writing a file failed.
    #[error("diff: cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read the snapshot`, `write a sorted run`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The snapshot file is damaged or not a snapshot. Remove it to send every row
    /// again (as a first run does), or restore it from a backup.
    #[error("diff snapshot {}: {problem}", path.display())]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        problem: SnapshotProblem,
    },
    /// A temporary file of sorted rows read back wrong (the disk or another process
    /// changed it).
    #[error("diff: the sorted run {} read back damaged: {what}", path.display())]
    SpillDamaged {
        /// The spill directory.
        path: PathBuf,
        /// What was wrong.
        what: &'static str,
    },
    /// [`DiffRun::commit`] before every change was read.
    #[error("diff: cannot commit snapshot {} before every change was read", path.display())]
    Incomplete {
        /// The snapshot file.
        path: PathBuf,
    },
    /// [`DiffRun::commit`] after the run yielded an error.
    #[error("diff: cannot commit snapshot {} after the run failed", path.display())]
    Failed {
        /// The snapshot file.
        path: PathBuf,
    },
    /// [`DiffRun::commit`] of a run made with `with_snapshot_update(false)`.
    #[error("diff: the run of snapshot {} writes no new snapshot to commit", path.display())]
    NoSnapshotUpdate {
        /// The snapshot file.
        path: PathBuf,
    },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DiffError + 'a {
    move |source| DiffError::Io { action, path: path.to_path_buf(), source }
}

/// One row (of a sorted run or the merge).
#[derive(Debug, Default)]
struct Record {
    key: Vec<u8>,
    row: u64,
    /// A row error whose key keeps its previous state ([`DiffBuilder::keep`]).
    kept: bool,
    hash: u128,
    ids: Vec<u8>,
    payload: Vec<u8>,
}

impl Record {
    fn view(&self) -> RecordView<'_> {
        RecordView {
            key: &self.key,
            row: self.row,
            kept: self.kept,
            hash: self.hash,
            ids: &self.ids,
            payload: &self.payload,
        }
    }
}

/// A record's fields, wherever its bytes are.
#[derive(Debug, Clone, Copy)]
struct RecordView<'a> {
    key: &'a [u8],
    row: u64,
    kept: bool,
    hash: u128,
    ids: &'a [u8],
    payload: &'a [u8],
}

/// A record of the in-memory buffer: where its bytes are in the arena.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    key_len: u32,
    ids_len: u32,
    payload_len: u32,
    kept: bool,
    row: u64,
    hash: [u64; 2],
}

impl Entry {
    fn key<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        &arena[self.start..self.start + self.key_len as usize]
    }

    fn ids<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        let start = self.start + self.key_len as usize;
        &arena[start..start + self.ids_len as usize]
    }

    fn payload<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        let start = self.start + self.key_len as usize + self.ids_len as usize;
        &arena[start..start + self.payload_len as usize]
    }

    fn hash(&self) -> u128 {
        (u128::from(self.hash[1]) << 64) | u128::from(self.hash[0])
    }

    fn view<'a>(&self, arena: &'a [u8]) -> RecordView<'a> {
        RecordView {
            key: self.key(arena),
            row: self.row,
            kept: self.kept,
            hash: self.hash(),
            ids: self.ids(arena),
            payload: self.payload(arena),
        }
    }
}

const ENTRY_SIZE: usize = std::mem::size_of::<Entry>();

/// Pushed rows held in memory: their bytes in one arena, their entries in another.
#[derive(Debug, Default)]
struct SortBuffer {
    arena: Vec<u8>,
    entries: Vec<Entry>,
}

impl SortBuffer {
    fn used(&self) -> usize {
        self.arena.len() + self.entries.len() * ENTRY_SIZE
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn capacity(&self) -> usize {
        self.arena.capacity() + self.entries.capacity() * ENTRY_SIZE
    }

    /// Adds a row. Each vector grows (by doubling, at least by an eighth) up to its
    /// share of `budget`, in proportion to the bytes it holds, so that together they
    /// reserve about `budget` bytes (unless one row alone needs more).
    fn push(&mut self, rec: RecordView<'_>, budget: usize) {
        let bytes = rec.key.len() + rec.ids.len() + rec.payload.len();
        let used_after = (self.used() + bytes + ENTRY_SIZE) as u128;
        let share = |bytes: usize| (budget as u128 * bytes as u128 / used_after) as usize;
        let (arena_limit, entries_limit) =
            (share(self.arena.len() + bytes), share((self.entries.len() + 1) * ENTRY_SIZE) / ENTRY_SIZE);
        grow(&mut self.arena, bytes, arena_limit);
        grow(&mut self.entries, 1, entries_limit);
        let start = self.arena.len();
        self.arena.extend_from_slice(rec.key);
        self.arena.extend_from_slice(rec.ids);
        self.arena.extend_from_slice(rec.payload);
        self.entries.push(Entry {
            start,
            key_len: rec.key.len() as u32,
            ids_len: rec.ids.len() as u32,
            payload_len: rec.payload.len() as u32,
            kept: rec.kept,
            row: rec.row,
            hash: [rec.hash as u64, (rec.hash >> 64) as u64],
        });
    }

    fn sort(&mut self) {
        let arena = &self.arena;
        self.entries.sort_unstable_by(|a, b| a.key(arena).cmp(b.key(arena)).then(a.row.cmp(&b.row)));
    }

    fn clear(&mut self) {
        self.arena.clear();
        self.entries.clear();
    }

    fn read_into(&self, index: usize, rec: &mut Record) {
        let entry = &self.entries[index];
        rec.key.clear();
        rec.key.extend_from_slice(entry.key(&self.arena));
        rec.ids.clear();
        rec.ids.extend_from_slice(entry.ids(&self.arena));
        rec.payload.clear();
        rec.payload.extend_from_slice(entry.payload(&self.arena));
        rec.row = entry.row;
        rec.kept = entry.kept;
        rec.hash = entry.hash();
    }
}

/// Reserves room for `additional` more elements: doubling (or at least an eighth
/// more), but to no more than `limit` elements unless the elements themselves need
/// more.
fn grow<T>(v: &mut Vec<T>, additional: usize, limit: usize) {
    let need = v.len() + additional;
    let cap = v.capacity();
    if need > cap {
        let target = (cap * 2).max(64).min(limit).max(need).max(cap + cap / 8);
        v.reserve_exact(target - v.len());
    }
}

static SPILL_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file of sorted records. On Unix its name is removed as soon as it is
/// created; elsewhere when it is dropped.
#[derive(Debug)]
struct SpillFile {
    file: File,
    dir: PathBuf,
    path: Option<PathBuf>,
    records: u64,
    bytes: u64,
}

impl SpillFile {
    fn create(dir: &Path) -> Result<SpillFile, DiffError> {
        fs::create_dir_all(dir).map_err(io_error("create the spill directory", dir))?;
        loop {
            let n = SPILL_COUNTER.fetch_add(1, AtomicOrdering::Relaxed);
            let path = dir.join(format!(".cdp-diff-{}-{n}.run", std::process::id()));
            match OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let path = if cfg!(unix) {
                        fs::remove_file(&path).map_err(io_error("remove the name of a sorted run", &path))?;
                        None
                    } else {
                        Some(path)
                    };
                    return Ok(SpillFile { file, dir: dir.to_path_buf(), path, records: 0, bytes: 0 });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("create a sorted run in", dir)(e)),
            }
        }
    }

    fn write_err(&self) -> impl FnOnce(io::Error) -> DiffError + '_ {
        io_error("write a sorted run in", &self.dir)
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes records to a spill file.
struct RunWriter {
    out: BufWriter<File>,
    spill: SpillFile,
}

impl RunWriter {
    fn new(dir: &Path, buffer: usize) -> Result<RunWriter, DiffError> {
        let spill = SpillFile::create(dir)?;
        let file = spill.file.try_clone().map_err(spill.write_err())?;
        Ok(RunWriter { out: BufWriter::with_capacity(buffer, file), spill })
    }

    fn write(&mut self, rec: RecordView<'_>) -> Result<(), DiffError> {
        let out = &mut self.out;
        (|| {
            out.write_all(&(rec.key.len() as u32).to_le_bytes())?;
            out.write_all(rec.key)?;
            out.write_all(&rec.row.to_le_bytes())?;
            out.write_all(&[u8::from(rec.kept)])?;
            out.write_all(&rec.hash.to_le_bytes())?;
            out.write_all(&(rec.ids.len() as u32).to_le_bytes())?;
            out.write_all(rec.ids)?;
            out.write_all(&(rec.payload.len() as u32).to_le_bytes())?;
            out.write_all(rec.payload)
        })()
        .map_err(io_error("write a sorted run in", &self.spill.dir))?;
        self.spill.records += 1;
        self.spill.bytes += 41 + (rec.key.len() + rec.ids.len() + rec.payload.len()) as u64;
        Ok(())
    }

    fn finish(mut self, buffer: usize) -> Result<RunSource, DiffError> {
        self.out.flush().map_err(self.spill.write_err())?;
        drop(self.out);
        let mut file = self.spill.file.try_clone().map_err(self.spill.write_err())?;
        file.seek(SeekFrom::Start(0)).map_err(self.spill.write_err())?;
        let remaining = self.spill.records;
        Ok(RunSource::File { reader: BufReader::with_capacity(buffer, file), remaining, spill: self.spill })
    }
}

/// One sorted run the merge reads from.
#[derive(Debug)]
enum RunSource {
    File { reader: BufReader<File>, remaining: u64, spill: SpillFile },
    Memory { buffer: SortBuffer, next: usize },
}

impl RunSource {
    /// The bytes of the records of a spilled run (0 for the buffer).
    fn bytes(&self) -> u64 {
        match self {
            RunSource::File { spill, .. } => spill.bytes,
            RunSource::Memory { .. } => 0,
        }
    }

    /// Reads the next record into `rec`; false at the end of the run.
    fn read_into(&mut self, rec: &mut Record) -> Result<bool, DiffError> {
        match self {
            RunSource::Memory { buffer, next } => {
                if *next == buffer.entries.len() {
                    return Ok(false);
                }
                buffer.read_into(*next, rec);
                *next += 1;
                Ok(true)
            }
            RunSource::File { reader, remaining, spill } => {
                if *remaining == 0 {
                    return Ok(false);
                }
                *remaining -= 1;
                let damaged = |what| DiffError::SpillDamaged { path: spill.dir.clone(), what };
                let read_err = |e: io::Error| {
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        damaged("cut short")
                    } else {
                        io_error("read a sorted run in", &spill.dir)(e)
                    }
                };
                read_field(reader, &mut rec.key, MAX_KEY_LEN).map_err(read_err)?.map_err(damaged)?;
                let mut row = [0; 8];
                reader.read_exact(&mut row).map_err(read_err)?;
                rec.row = u64::from_le_bytes(row);
                let mut kept = [0; 1];
                reader.read_exact(&mut kept).map_err(read_err)?;
                rec.kept = match kept[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(damaged("a flag neither 0 nor 1")),
                };
                let mut hash = [0; 16];
                reader.read_exact(&mut hash).map_err(read_err)?;
                rec.hash = u128::from_le_bytes(hash);
                read_field(reader, &mut rec.ids, MAX_IDS_LEN).map_err(read_err)?.map_err(damaged)?;
                read_field(reader, &mut rec.payload, MAX_PAYLOAD_LEN).map_err(read_err)?.map_err(damaged)?;
                Ok(true)
            }
        }
    }
}

/// Reads a `u32` length and that many bytes into `buf`; the inner error when the
/// length is over `max`.
fn read_field(reader: &mut impl Read, buf: &mut Vec<u8>, max: usize) -> io::Result<Result<(), &'static str>> {
    let mut len = [0; 4];
    reader.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Ok(Err("a length over the maximum"));
    }
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf)?;
    Ok(Ok(()))
}

/// The current record of a run, ordered for a min-heap by (key, row, run).
#[derive(Debug)]
struct HeapItem {
    rec: Record,
    source: usize,
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for HeapItem {}

impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        (&other.rec.key, other.rec.row, other.source).cmp(&(&self.rec.key, self.rec.row, self.source))
    }
}

/// The k-way merge of sorted runs.
#[derive(Debug)]
struct Merger {
    sources: Vec<RunSource>,
    heap: BinaryHeap<HeapItem>,
    spare: Vec<Record>,
}

impl Merger {
    fn new(mut sources: Vec<RunSource>) -> Result<Merger, DiffError> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (source, run) in sources.iter_mut().enumerate() {
            let mut rec = Record::default();
            if run.read_into(&mut rec)? {
                heap.push(HeapItem { rec, source });
            }
        }
        Ok(Merger { sources, heap, spare: Vec::new() })
    }

    fn peek(&self) -> Option<&Record> {
        self.heap.peek().map(|item| &item.rec)
    }

    fn pop(&mut self) -> Result<Option<Record>, DiffError> {
        let Some(item) = self.heap.pop() else { return Ok(None) };
        let mut next = self.spare.pop().unwrap_or_default();
        if self.sources[item.source].read_into(&mut next)? {
            self.heap.push(HeapItem { rec: next, source: item.source });
        } else {
            self.spare.push(next);
        }
        Ok(Some(item.rec))
    }

    fn recycle(&mut self, rec: Record) {
        if self.spare.len() < 4 {
            self.spare.push(rec);
        }
    }
}

/// Reads a snapshot file record by record, checking it as it goes.
struct SnapshotReader {
    path: PathBuf,
    reader: BufReader<File>,
    hasher: Xxh3Default,
    count: u64,
    body_len: u64,
    checksum: u64,
    read: u64,
    remaining: u64,
    /// The current record, when there is one.
    current: Option<(Vec<u8>, u128, Vec<u8>)>,
    spare_key: Vec<u8>,
    spare_ids: Vec<u8>,
    /// The key of the record before (kept apart from `current`, which the merge
    /// takes), to check the order.
    last_key: Vec<u8>,
}

impl fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("path", &self.path)
            .field("count", &self.count)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl SnapshotReader {
    /// Opens the snapshot; `None` when there is none.
    fn open(path: &Path, buffer: usize) -> Result<Option<SnapshotReader>, DiffError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("open the snapshot", path)(e)),
        };
        let len = file.metadata().map_err(io_error("read the snapshot", path))?.len();
        let mut reader = SnapshotReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(buffer, file),
            hasher: Xxh3Default::new(),
            count: 0,
            body_len: 0,
            checksum: 0,
            read: 0,
            remaining: 0,
            current: None,
            spare_key: Vec::new(),
            spare_ids: Vec::new(),
            last_key: Vec::new(),
        };
        reader.start(len)?;
        Ok(Some(reader))
    }

    fn problem(&self, problem: SnapshotProblem) -> DiffError {
        DiffError::Snapshot { path: self.path.clone(), problem }
    }

    fn read_err(&self, e: io::Error) -> DiffError {
        DiffError::Io { action: "read the snapshot", path: self.path.clone(), source: e }
    }

    /// Reads and checks the header, leaving the reader at the first record.
    fn start(&mut self, file_len: u64) -> Result<(), DiffError> {
        self.reader.seek(SeekFrom::Start(0)).map_err(|e| self.read_err(e))?;
        let mut header = [0u8; HEADER_LEN as usize];
        if file_len < HEADER_LEN {
            // Enough to tell a foreign file from a truncated snapshot.
            let mut head = vec![0; file_len as usize];
            self.reader.read_exact(&mut head).map_err(|e| self.read_err(e))?;
            let n = head.len().min(MAGIC.len());
            return Err(self.problem(if head[..n] == MAGIC[..n] {
                SnapshotProblem::WrongLength { expected: HEADER_LEN, found: file_len }
            } else {
                SnapshotProblem::NotASnapshot
            }));
        }
        self.reader.read_exact(&mut header).map_err(|e| self.read_err(e))?;
        let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
        if header[..8] != MAGIC {
            return Err(self.problem(SnapshotProblem::NotASnapshot));
        }
        if u32_at(8) != VERSION {
            return Err(self.problem(SnapshotProblem::UnsupportedVersion(u32_at(8))));
        }
        if u32_at(12) != 0 {
            return Err(self.problem(SnapshotProblem::UnknownFlags(u32_at(12))));
        }
        self.count = u64_at(16);
        self.body_len = u64_at(24);
        self.checksum = u64_at(32);
        let expected = HEADER_LEN.saturating_add(self.body_len);
        if expected != file_len {
            return Err(self.problem(SnapshotProblem::WrongLength { expected, found: file_len }));
        }
        self.hasher.reset();
        self.read = 0;
        self.remaining = self.body_len;
        self.current = None;
        self.advance()
    }

    /// Reads every record, checking the file whole; then goes back to the start.
    fn verify(&mut self) -> Result<(), DiffError> {
        while self.current.is_some() {
            self.advance()?;
        }
        let len = HEADER_LEN + self.body_len;
        self.start(len)
    }

    fn current(&self) -> Option<&(Vec<u8>, u128, Vec<u8>)> {
        self.current.as_ref()
    }

    fn read_hashed(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), DiffError> {
        if (buf.len() as u64) > self.remaining {
            return Err(self.problem(SnapshotProblem::Malformed { record: self.read, what }));
        }
        self.reader.read_exact(buf).map_err(|e| self.read_err(e))?;
        self.hasher.update(buf);
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    fn read_len(&mut self, max: usize, what: &'static str) -> Result<usize, DiffError> {
        let mut len = [0; 4];
        self.read_hashed(&mut len, what)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > max || len as u64 > self.remaining {
            return Err(self.problem(SnapshotProblem::Malformed { record: self.read, what }));
        }
        Ok(len)
    }

    /// Moves to the next record; at the end, checks the count and checksum.
    fn advance(&mut self) -> Result<(), DiffError> {
        if let Some((key, _, ids)) = self.current.take() {
            (self.spare_key, self.spare_ids) = (key, ids);
        }
        if self.remaining == 0 {
            if self.read != self.count {
                return Err(
                    self.problem(SnapshotProblem::WrongCount { expected: self.count, found: self.read })
                );
            }
            if self.hasher.digest() != self.checksum {
                return Err(self.problem(SnapshotProblem::ChecksumMismatch));
            }
            return Ok(());
        }
        let (mut key, mut ids) = (std::mem::take(&mut self.spare_key), std::mem::take(&mut self.spare_ids));
        let key_len = self.read_len(MAX_KEY_LEN, "a key length past the end or over the maximum")?;
        key.resize(key_len, 0);
        self.read_hashed(&mut key, "cut short in its key")?;
        let mut hash = [0; 16];
        self.read_hashed(&mut hash, "cut short in its hash")?;
        let ids_len = self.read_len(MAX_IDS_LEN, "an ids length past the end or over the maximum")?;
        ids.resize(ids_len, 0);
        self.read_hashed(&mut ids, "cut short in its ids")?;
        if key.is_empty() || (self.read > 0 && self.last_key >= key) {
            return Err(self.problem(SnapshotProblem::OutOfOrder { record: self.read }));
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(&key);
        self.read += 1;
        self.current = Some((key, u128::from_le_bytes(hash), ids));
        Ok(())
    }
}

/// Writes the new snapshot to a temporary file next to the old one.
struct SnapshotWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    hasher: Xxh3Default,
    count: u64,
    body_len: u64,
    done: bool,
}

impl fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("tmp", &self.tmp)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl SnapshotWriter {
    fn create(snapshot: &Path, buffer: usize) -> Result<SnapshotWriter, DiffError> {
        let dir = snapshot_dir(snapshot);
        fs::create_dir_all(dir).map_err(io_error("create the snapshot's directory", dir))?;
        let name = snapshot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        loop {
            let n = SPILL_COUNTER.fetch_add(1, AtomicOrdering::Relaxed);
            let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    let mut writer = SnapshotWriter {
                        out: BufWriter::with_capacity(buffer, file),
                        tmp,
                        hasher: Xxh3Default::new(),
                        count: 0,
                        body_len: 0,
                        done: false,
                    };
                    writer
                        .out
                        .write_all(&[0; HEADER_LEN as usize])
                        .map_err(io_error("write the new snapshot", &writer.tmp))?;
                    return Ok(writer);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("create the new snapshot", &tmp)(e)),
            }
        }
    }

    fn write(&mut self, key: &[u8], hash: u128, ids: &[u8]) -> Result<(), DiffError> {
        let parts: [&[u8]; 5] = [
            &(key.len() as u32).to_le_bytes(),
            key,
            &hash.to_le_bytes(),
            &(ids.len() as u32).to_le_bytes(),
            ids,
        ];
        for part in parts {
            self.out.write_all(part).map_err(io_error("write the new snapshot", &self.tmp))?;
            self.hasher.update(part);
            self.body_len += part.len() as u64;
        }
        self.count += 1;
        Ok(())
    }

    /// Writes the header and makes the file durable.
    fn finish(&mut self) -> Result<(), DiffError> {
        let mut header = [0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&self.count.to_le_bytes());
        header[24..32].copy_from_slice(&self.body_len.to_le_bytes());
        header[32..40].copy_from_slice(&self.hasher.digest().to_le_bytes());
        let out = &mut self.out;
        (|| {
            out.flush()?;
            let file = out.get_mut();
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header)?;
            file.sync_all()
        })()
        .map_err(io_error("write the new snapshot", &self.tmp))
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn snapshot_dir(snapshot: &Path) -> &Path {
    match snapshot.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The I/O buffer size for each file the merge reads: at most 64 KiB, smaller for
/// small budgets.
fn io_buffer(budget: usize) -> usize {
    (budget / (2 * (FAN_IN + 2))).clamp(MIN_IO_BUFFER, MAX_IO_BUFFER)
}

/// Collects a run's rows: see the [module docs](self).
#[derive(Debug)]
pub struct DiffBuilder {
    snapshot_path: PathBuf,
    options: DiffOptions,
    snapshot: Option<SnapshotReader>,
    buffer: SortBuffer,
    runs: Vec<RunSource>,
    spilled: u64,
    rejected: u64,
    io_buffer: usize,
}

impl DiffBuilder {
    /// Starts a run against the snapshot at `snapshot_path` (none there: a first
    /// run, every row is new). Reads the whole snapshot to check it, so a damaged
    /// one fails here, before any row is read.
    pub fn new(snapshot_path: impl Into<PathBuf>, options: DiffOptions) -> Result<DiffBuilder, DiffError> {
        let snapshot_path = snapshot_path.into();
        let io_buffer = io_buffer(options.memory_budget);
        let mut snapshot = SnapshotReader::open(&snapshot_path, io_buffer)?;
        if let Some(reader) = &mut snapshot {
            reader.verify()?;
        }
        Ok(DiffBuilder {
            snapshot_path,
            options,
            snapshot,
            buffer: SortBuffer::default(),
            runs: Vec::new(),
            spilled: 0,
            rejected: 0,
            io_buffer,
        })
    }

    /// The snapshot's path.
    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot_path
    }

    /// Whether there is a snapshot to diff against (false on a first run).
    pub fn has_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Adds a row of the result. The outer error stops the run (a spill file could
    /// not be written); the inner one is a row error after which the run goes on:
    /// a NULL or empty key ([`RejectReason::MissingKey`]), or a part of the row over
    /// its maximum ([`RejectReason::TooLarge`]; with a key of an accepted length,
    /// that key keeps its snapshot entry as with [`keep`](Self::keep)). Duplicate
    /// keys are found later and come out of [`DiffRun`] as [`Change::Rejected`].
    pub fn push(&mut self, row: DiffRow<'_>) -> Result<Result<(), RejectedRow>, DiffError> {
        let key = match row.key {
            Some(key) if !key.is_empty() => key,
            _ => return Ok(Err(self.reject(&row, RejectReason::MissingKey, true))),
        };
        for (field, len, max) in [
            ("key", key.len(), MAX_KEY_LEN),
            ("ids", row.ids.len(), MAX_IDS_LEN),
            ("payload", row.payload.len(), MAX_PAYLOAD_LEN),
        ] {
            if len > max {
                self.keep(row.row, Some(key))?;
                return Ok(Err(self.reject(&row, RejectReason::TooLarge { field, len, max }, false)));
            }
        }
        let rec = RecordView {
            key,
            row: row.row,
            kept: false,
            hash: xxh3_128(row.content),
            ids: row.ids,
            payload: row.payload,
        };
        self.buffer_push(rec)?;
        Ok(Ok(()))
    }

    /// Adds a row of the result that is a row error the caller reports itself (say,
    /// a row that could not become a call) but whose key is known: its key counts
    /// as present, so it is neither sent nor deleted and keeps its snapshot entry as
    /// it was (or stays absent). Without this the key would look deleted. With
    /// another row of the same key, the key is a duplicate: that row is
    /// [`Change::Rejected`] (this one is not, as the caller reports it). A NULL,
    /// empty or oversize key is ignored: it cannot be in the snapshot.
    pub fn keep(&mut self, row: u64, key: Option<&[u8]>) -> Result<(), DiffError> {
        match key {
            Some(key) if !key.is_empty() && key.len() <= MAX_KEY_LEN => {
                self.buffer_push(RecordView { key, row, kept: true, hash: 0, ids: &[], payload: &[] })
            }
            _ => Ok(()),
        }
    }

    fn buffer_push(&mut self, rec: RecordView<'_>) -> Result<(), DiffError> {
        let record_bytes = rec.key.len() + rec.ids.len() + rec.payload.len() + ENTRY_SIZE;
        if !self.buffer.is_empty() && self.buffer.used() + record_bytes > self.options.memory_budget {
            self.spill()?;
        }
        self.buffer.push(rec, self.options.memory_budget);
        Ok(())
    }

    fn reject(&mut self, row: &DiffRow<'_>, reason: RejectReason, with_payload: bool) -> RejectedRow {
        self.rejected += 1;
        let key = row.key.filter(|k| k.len() <= MAX_KEY_LEN).unwrap_or_default().to_vec();
        let payload = if with_payload { row.payload.to_vec() } else { Vec::new() };
        RejectedRow { row: row.row, key, reason, payload }
    }

    fn spill_dir(&self) -> PathBuf {
        self.options.spill_dir.clone().unwrap_or_else(|| snapshot_dir(&self.snapshot_path).to_path_buf())
    }

    /// Sorts the buffer and writes it out as a sorted run.
    fn spill(&mut self) -> Result<(), DiffError> {
        self.buffer.sort();
        let mut writer = RunWriter::new(&self.spill_dir(), self.io_buffer)?;
        let arena = &self.buffer.arena;
        for entry in &self.buffer.entries {
            writer.write(entry.view(arena))?;
        }
        self.runs.push(writer.finish(self.io_buffer)?);
        self.spilled += 1;
        self.buffer.clear();
        // Rows of another shape than the first ones may have left one vector too big.
        if self.buffer.capacity() > self.options.memory_budget + self.options.memory_budget / 4 {
            self.buffer = SortBuffer::default();
        }
        Ok(())
    }

    /// Ends the pushes and starts the merge: the changes come out of the
    /// [`DiffRun`] in key order.
    pub fn finish(mut self) -> Result<DiffRun, DiffError> {
        // At most FAN_IN runs (the buffer being one) for the last merge: merges the
        // smallest runs into one, as few of them as that takes, so that a run count
        // just over FAN_IN costs a pass over a few runs, not over the whole result.
        while self.runs.len() + 1 > FAN_IN {
            let group_len = (self.runs.len() + 2 - FAN_IN).min(FAN_IN);
            self.runs.sort_by_key(RunSource::bytes);
            let group: Vec<RunSource> = self.runs.drain(..group_len).collect();
            let mut merger = Merger::new(group)?;
            let mut writer = RunWriter::new(&self.spill_dir(), self.io_buffer)?;
            while let Some(rec) = merger.pop()? {
                writer.write(rec.view())?;
                merger.recycle(rec);
            }
            self.runs.push(writer.finish(self.io_buffer)?);
            self.spilled += 1;
        }
        let mut sources = std::mem::take(&mut self.runs);
        if !self.buffer.is_empty() {
            self.buffer.sort();
            let mut buffer = std::mem::take(&mut self.buffer);
            // Keeps only what the records need.
            buffer.arena.shrink_to_fit();
            buffer.entries.shrink_to_fit();
            sources.push(RunSource::Memory { buffer, next: 0 });
        }
        let writer = if self.options.write_snapshot {
            Some(SnapshotWriter::create(&self.snapshot_path, self.io_buffer)?)
        } else {
            None
        };
        Ok(DiffRun {
            merger: Merger::new(sources)?,
            snapshot: self.snapshot,
            writer,
            snapshot_path: self.snapshot_path,
            counts: DiffCounts { rejected: self.rejected, ..DiffCounts::default() },
            duplicate: None,
            spilled: self.spilled,
            state: RunState::Going,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Going,
    Done,
    Failed,
}

/// The changes of a run, in key order, and its counts; see the [module docs](self).
/// Read it to its end (an iterator of `Result<Change, DiffError>`, which ends after
/// its first error), deliver the changes, then [`commit`](DiffRun::commit).
#[derive(Debug)]
pub struct DiffRun {
    merger: Merger,
    snapshot: Option<SnapshotReader>,
    writer: Option<SnapshotWriter>,
    snapshot_path: PathBuf,
    counts: DiffCounts,
    /// In a group of rows with one key: the key and the group's first row.
    duplicate: Option<(Vec<u8>, u64)>,
    spilled: u64,
    state: RunState,
}

impl DiffRun {
    /// The counts so far (final once the iterator has ended).
    pub fn counts(&self) -> DiffCounts {
        self.counts
    }

    /// How many sorted runs were written to temporary files (0 when every row fit
    /// in the memory budget).
    pub fn runs_spilled(&self) -> u64 {
        self.spilled
    }

    /// The snapshot's path.
    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot_path
    }

    /// Whether every change was read and no error came out.
    pub fn is_complete(&self) -> bool {
        self.state == RunState::Done
    }

    /// Replaces the old snapshot with the one this run wrote: the new file is made
    /// durable, renamed over the old one, and its directory synced. Call it once
    /// every change was read (and delivered). Dropping the run instead leaves the
    /// old snapshot as it was. An error from the last step (syncing the directory)
    /// means the new snapshot is in place but might not survive a power loss.
    pub fn commit(mut self) -> Result<(), DiffError> {
        match self.state {
            RunState::Going => return Err(DiffError::Incomplete { path: self.snapshot_path.clone() }),
            RunState::Failed => return Err(DiffError::Failed { path: self.snapshot_path.clone() }),
            RunState::Done => {}
        }
        let Some(writer) = &mut self.writer else {
            return Err(DiffError::NoSnapshotUpdate { path: self.snapshot_path.clone() });
        };
        writer.finish()?;
        self.snapshot = None; // closes the old snapshot before it is replaced
        fs::rename(&writer.tmp, &self.snapshot_path)
            .map_err(io_error("replace the snapshot", &self.snapshot_path))?;
        writer.done = true;
        sync_dir(snapshot_dir(&self.snapshot_path))
    }

    fn write_snapshot(&mut self, key: &[u8], hash: u128, ids: &[u8]) -> Result<(), DiffError> {
        match &mut self.writer {
            Some(writer) => writer.write(key, hash, ids),
            None => Ok(()),
        }
    }

    fn step(&mut self) -> Result<Option<Change>, DiffError> {
        loop {
            // The rest of a group of rows with one key: each is a row error, but
            // those the caller reports itself (kept) are not reported again.
            if let Some((key, first_row)) = &self.duplicate {
                if self.merger.peek().is_some_and(|next| next.key == *key) {
                    let (key, other_row) = (key.clone(), *first_row);
                    let rec = self.merger.pop()?.expect("peeked");
                    if rec.kept {
                        self.merger.recycle(rec);
                        continue;
                    }
                    self.counts.rejected += 1;
                    let reason = RejectReason::DuplicateKey { other_row };
                    return Ok(Some(Change::Rejected(RejectedRow {
                        row: rec.row,
                        key,
                        reason,
                        payload: rec.payload,
                    })));
                }
                self.duplicate = None;
            }
            let snap_first = match (self.snapshot.as_ref().and_then(|s| s.current()), self.merger.peek()) {
                (None, None) => return Ok(None),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((snap_key, _, _)), Some(next)) => *snap_key < next.key,
            };
            let snapshot = self.snapshot.as_mut();
            if snap_first {
                let snapshot = snapshot.expect("a current snapshot record");
                let (key, _, ids) = snapshot.current.take().expect("a current snapshot record");
                snapshot.advance()?;
                self.counts.deleted += 1;
                return Ok(Some(Change::Deleted { key, ids }));
            }
            let mut rec = self.merger.pop()?.expect("peeked");
            let duplicate_row = self.merger.peek().filter(|next| next.key == rec.key).map(|next| next.row);
            let previous = match snapshot {
                Some(s) if s.current().is_some_and(|(key, _, _)| *key == rec.key) => {
                    let (_, hash, ids) = s.current.take().expect("checked");
                    s.advance()?;
                    Some((hash, ids))
                }
                _ => None,
            };
            if let Some(other_row) = duplicate_row {
                // Every row of the key is an error; the key keeps its last state.
                if let Some((hash, ids)) = &previous {
                    self.write_snapshot(&rec.key, *hash, ids)?;
                }
                self.duplicate = Some((rec.key.clone(), rec.row));
                if rec.kept {
                    self.merger.recycle(rec);
                    continue;
                }
                self.counts.rejected += 1;
                let reason = RejectReason::DuplicateKey { other_row };
                return Ok(Some(Change::Rejected(RejectedRow {
                    row: rec.row,
                    key: std::mem::take(&mut rec.key),
                    reason,
                    payload: std::mem::take(&mut rec.payload),
                })));
            }
            if rec.kept {
                if let Some((hash, ids)) = &previous {
                    self.write_snapshot(&rec.key, *hash, ids)?;
                }
                self.counts.kept += 1;
                self.merger.recycle(rec);
                continue;
            }
            self.write_snapshot(&rec.key, rec.hash, &rec.ids)?;
            match previous {
                Some((hash, _)) if hash == rec.hash => {
                    self.counts.unchanged += 1;
                    self.merger.recycle(rec);
                }
                Some(_) => {
                    self.counts.changed += 1;
                    return Ok(Some(Change::Changed { key: rec.key, payload: rec.payload }));
                }
                None => {
                    self.counts.added += 1;
                    return Ok(Some(Change::Added { key: rec.key, payload: rec.payload }));
                }
            }
        }
    }
}

impl Iterator for DiffRun {
    type Item = Result<Change, DiffError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state != RunState::Going {
            return None;
        }
        match self.step() {
            Ok(Some(change)) => Some(Ok(change)),
            Ok(None) => {
                self.state = RunState::Done;
                None
            }
            Err(e) => {
                self.state = RunState::Failed;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for DiffRun {}

/// Removes what runs of the snapshot at `snapshot_path` that crashed (or were
/// killed) left next to it: new snapshots never renamed into place
/// (`.NAME.PID-N.tmp`) and, on systems other than Unix, sorted runs
/// (`.cdp-diff-PID-N.run`, in the snapshot's directory only). Returns how many
/// files it removed. Call it only while no run of this snapshot is going (while
/// holding the sync's run lock), as it would remove that run's files too.
pub fn remove_leftovers(snapshot_path: impl AsRef<Path>) -> Result<usize, DiffError> {
    let snapshot_path = snapshot_path.as_ref();
    let dir = snapshot_dir(snapshot_path);
    let name = snapshot_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("list the snapshot's directory", dir)(e)),
    };
    let prefix = format!(".{name}.");
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io_error("list the snapshot's directory", dir))?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let leftover = (file_name.starts_with(&prefix) && file_name.ends_with(".tmp"))
            || (!cfg!(unix) && file_name.starts_with(".cdp-diff-") && file_name.ends_with(".run"));
        if leftover {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error("remove a leftover file", &path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), DiffError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("sync the snapshot's directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), DiffError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut DiffBuilder, row: u64, key: &str, content: &str) {
        let pushed = b
            .push(DiffRow {
                row,
                key: Some(key.as_bytes()),
                content: content.as_bytes(),
                ids: format!("ids-{key}").as_bytes(),
                payload: format!("{key}={content}").as_bytes(),
            })
            .expect("push");
        pushed.expect("a row with a key");
    }

    fn changes(run: &mut DiffRun) -> Vec<Change> {
        run.map(|c| c.expect("change")).collect()
    }

    #[test]
    fn first_run_adds_then_unchanged_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        assert!(!b.has_snapshot());
        push(&mut b, 1, "b", "x");
        push(&mut b, 2, "a", "y");
        let mut run = b.finish().unwrap();
        let got = changes(&mut run);
        assert_eq!(
            got,
            vec![
                Change::Added { key: b"a".to_vec(), payload: b"a=y".to_vec() },
                Change::Added { key: b"b".to_vec(), payload: b"b=x".to_vec() },
            ]
        );
        assert_eq!(run.runs_spilled(), 0);
        run.commit().unwrap();

        let mut b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        push(&mut b, 1, "a", "y");
        push(&mut b, 2, "b", "x");
        let mut run = b.finish().unwrap();
        assert!(changes(&mut run).is_empty());
        assert_eq!(run.counts(), DiffCounts { unchanged: 2, ..DiffCounts::default() });
        run.commit().unwrap();
    }

    #[test]
    fn deleted_keys_carry_their_last_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        push(&mut b, 1, "gone", "x");
        let mut run = b.finish().unwrap();
        changes(&mut run);
        run.commit().unwrap();
        let b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        let mut run = b.finish().unwrap();
        assert_eq!(
            changes(&mut run),
            vec![Change::Deleted { key: b"gone".to_vec(), ids: b"ids-gone".to_vec() }]
        );
    }

    #[test]
    fn missing_and_oversize_keys_are_row_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiffBuilder::new(dir.path().join("s"), DiffOptions::new()).unwrap();
        for (row, key) in [(1, None), (2, Some(&b""[..]))] {
            let rejected =
                b.push(DiffRow { row, key, content: b"c", ids: b"", payload: b"p" }).unwrap().unwrap_err();
            assert_eq!((rejected.row, rejected.reason), (row, RejectReason::MissingKey));
            assert_eq!(rejected.payload, b"p");
        }
        let long = vec![b'k'; MAX_KEY_LEN + 1];
        let rejected = b
            .push(DiffRow { row: 3, key: Some(&long), content: b"", ids: b"", payload: b"" })
            .unwrap()
            .unwrap_err();
        assert_eq!(
            rejected.reason,
            RejectReason::TooLarge { field: "key", len: MAX_KEY_LEN + 1, max: MAX_KEY_LEN }
        );
        assert!(rejected.to_string().starts_with("row 3: the key is"));
        let run = b.finish().unwrap();
        assert_eq!(run.counts().rejected, 3);
    }

    #[test]
    fn keys_of_row_errors_keep_their_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        for (row, key) in [(1, "a"), (2, "b"), (3, "c")] {
            push(&mut b, row, key, "v1");
        }
        let mut run = b.finish().unwrap();
        changes(&mut run);
        run.commit().unwrap();

        // a: its row failed to map; b: its payload is too large; c: failed and also
        // on another row; d: a new key whose row failed.
        let mut b = DiffBuilder::new(&path, DiffOptions::new().with_memory_budget(1)).unwrap();
        b.keep(1, Some(b"a")).unwrap();
        let big = vec![0; MAX_PAYLOAD_LEN + 1];
        let row = DiffRow { row: 2, key: Some(b"b"), content: b"v2", ids: b"", payload: &big };
        let rejected = b.push(row).unwrap().unwrap_err();
        assert!(matches!(rejected.reason, RejectReason::TooLarge { field: "payload", .. }));
        b.keep(3, Some(b"c")).unwrap();
        push(&mut b, 4, "c", "v2");
        b.keep(5, Some(b"d")).unwrap();
        b.keep(6, None).unwrap();
        let mut run = b.finish().unwrap();
        let got = changes(&mut run);
        assert_eq!(
            got,
            [Change::Rejected(RejectedRow {
                row: 4,
                key: b"c".to_vec(),
                reason: RejectReason::DuplicateKey { other_row: 3 },
                payload: b"c=v2".to_vec(),
            })]
        );
        assert_eq!(run.counts(), DiffCounts { rejected: 2, kept: 3, ..DiffCounts::default() });
        run.commit().unwrap();

        // Every entry is as the first run left it: ids and all.
        let b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        let mut run = b.finish().unwrap();
        let deleted: Vec<_> = changes(&mut run)
            .into_iter()
            .map(|c| match c {
                Change::Deleted { key, ids } => {
                    (String::from_utf8(key).unwrap(), String::from_utf8(ids).unwrap())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            deleted,
            [("a", "ids-a"), ("b", "ids-b"), ("c", "ids-c")].map(|(k, i)| (k.into(), i.into()))
        );
    }

    #[test]
    fn commit_needs_a_complete_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        push(&mut b, 1, "a", "x");
        let run = b.finish().unwrap();
        assert!(matches!(run.commit(), Err(DiffError::Incomplete { .. })));
        assert!(!path.exists());
        // Nothing but the (absent) snapshot is left in the directory.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut b = DiffBuilder::new(&path, DiffOptions::new().with_snapshot_update(false)).unwrap();
        push(&mut b, 1, "a", "x");
        let mut run = b.finish().unwrap();
        assert_eq!(changes(&mut run).len(), 1);
        assert!(matches!(run.commit(), Err(DiffError::NoSnapshotUpdate { .. })));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_sort_buffer_stays_within_its_budget() {
        for (budget, payload) in [(64 << 10, 100), (64 << 10, 5), (1 << 20, 1000), (1 << 20, 0)] {
            let mut buffer = SortBuffer::default();
            let payload = vec![7; payload];
            let rec = RecordView {
                key: b"key",
                row: 1,
                kept: false,
                hash: 0,
                ids: b"0123456789",
                payload: &payload,
            };
            let record = 13 + payload.len() + ENTRY_SIZE;
            let mut pushes = 0;
            while buffer.used() + record <= budget {
                buffer.push(rec, budget);
                pushes += 1;
            }
            assert_eq!(buffer.entries.len(), pushes);
            let reserved = buffer.capacity();
            assert!(reserved <= budget + budget / 4 + 4096, "{reserved} reserved for a budget of {budget}");
            assert!(buffer.used() > budget - record, "the budget is used");
        }
    }

    #[test]
    fn many_runs_merge_in_passes() {
        for n in [FAN_IN - 1, FAN_IN, FAN_IN + 1, 3 * FAN_IN] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s");
            let key = |i: usize| format!("k{:05}", (i * 7919) % 1000);
            let mut b = DiffBuilder::new(&path, DiffOptions::new().with_memory_budget(1)).unwrap();
            for i in 0..n {
                push(&mut b, i as u64 + 1, &key(i), "v");
            }
            let mut run = b.finish().unwrap();
            assert!(run.runs_spilled() >= n as u64 - 1, "{n}: {}", run.runs_spilled());
            let keys: Vec<Vec<u8>> = changes(&mut run)
                .into_iter()
                .map(|c| match c {
                    Change::Added { key, .. } => key,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(keys.len(), n);
            assert!(keys.windows(2).all(|w| w[0] < w[1]));
            run.commit().unwrap();
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "only the snapshot is left");

            let mut b = DiffBuilder::new(&path, DiffOptions::new().with_memory_budget(1)).unwrap();
            for i in (0..n).rev() {
                push(&mut b, i as u64 + 1, &key(i), if i == 3 { "w" } else { "v" });
            }
            let mut run = b.finish().unwrap();
            assert_eq!(changes(&mut run).len(), 1);
            assert_eq!(
                run.counts(),
                DiffCounts { changed: 1, unchanged: n as u64 - 1, ..DiffCounts::default() }
            );
        }
    }

    #[test]
    fn leftover_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut b = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
        push(&mut b, 1, "a", "x");
        let mut run = b.finish().unwrap();
        changes(&mut run);
        run.commit().unwrap();
        // As a crash between creating and renaming a new snapshot leaves them.
        fs::write(dir.path().join(".s.123-4.tmp"), b"partial").unwrap();
        fs::write(dir.path().join(".other.123-4.tmp"), b"another snapshot's").unwrap();
        assert_eq!(remove_leftovers(&path).unwrap(), 1);
        let mut names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, [".other.123-4.tmp", "s"]);
        assert_eq!(remove_leftovers(dir.path().join("missing/s")).unwrap(), 0);
    }
}

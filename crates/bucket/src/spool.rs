//! The durable spool: the calls of each window, appended to a local file before
//! `append` returns, so that a crash loses no accepted call.
//!
//! # Layout
//! A spool directory holds:
//! - `LOCK`: held with an exclusive file lock while a writer uses the directory;
//! - `POSITION`: the last position sealed, as decimal text, replaced atomically;
//! - one file per window that had calls, `segment-<20-digit sequence>.spool`.
//!
//! A segment starts with the 8 bytes `CDPSPL01`, then records:
//!
//! ```text
//! length: u32 LE   (of the payload)
//! crc32:  u32 LE   (CRC-32/ISO-HDLC of the kind byte and the payload)
//! kind:   u8       1 = window, 2 = calls, 3 = seal
//! payload
//! ```
//!
//! - window: start and end of the window, i64 LE microseconds since the epoch each;
//!   always the first record;
//! - calls: one `append`'s batch: a u32 LE count, then per call a u32 LE length and
//!   the call's compact JSON;
//! - seal: the position (u64 LE) and the end of the sync (i64 LE microseconds);
//!   always the last record. A sealed segment is published, then deleted.
//!
//! A record is whole or it is not there: reading stops at the first record that is
//! cut short or fails its checksum, and the file is cut back to the record before
//! it ([`SpoolRepair`]). A batch is one record, so a batch is kept whole or not at
//! all.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdp_calls::Timestamp;

use crate::{BucketError, Position};

const MAGIC: &[u8; 8] = b"CDPSPL01";
const HEADER: usize = 9;
/// A record larger than this is taken as damage, not allocated.
const MAX_RECORD: u32 = 1 << 30;

const KIND_WINDOW: u8 = 1;
const KIND_CALLS: u8 = 2;
const KIND_SEAL: u8 = 3;

/// When appended calls are forced to disk with `fsync`.
///
/// Whatever the setting, an `append` has written its calls to the spool file before
/// it returns, so they survive the writer's process being killed; the setting is
/// about surviving the machine losing power. Seals (which fix a sync's position)
/// are always synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// `fsync` before every `append` returns: nothing acknowledged is ever lost.
    EveryAppend,
    /// `fsync` at most once per interval (started by an `append` or a `tick` once
    /// the interval has passed, on a thread of its own: no append waits for it): a
    /// power loss loses at most about this much, and the time the `fsync` takes.
    Interval(Duration),
    /// Never `fsync` appended calls; the operating system writes them back.
    Never,
}

impl Default for Durability {
    /// Once per second, as Redis's `appendfsync everysec` and most log-structured
    /// stores do by default.
    fn default() -> Durability {
        Durability::Interval(Duration::from_secs(1))
    }
}

/// A spool file cut back after a crash: its tail was torn or damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRepair {
    /// The spool file.
    pub path: PathBuf,
    /// Its length now: the end of the last whole record.
    pub kept_bytes: u64,
    /// The bytes cut off.
    pub cut_bytes: u64,
    /// What was wrong at the cut.
    pub reason: String,
}

fn spool_err(path: &Path) -> impl FnOnce(io::Error) -> BucketError + '_ {
    move |source| BucketError::Spool { path: path.to_owned(), source }
}

/// An open spool directory, locked for this writer.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    _lock: File,
    next_seq: u64,
}

impl Spool {
    /// Opens (creating) and locks a spool directory; returns the segments found, in
    /// order.
    pub(crate) fn open(dir: &Path) -> Result<(Spool, Vec<PathBuf>), BucketError> {
        fs::create_dir_all(dir).map_err(spool_err(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(spool_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(BucketError::SpoolLocked { dir: dir.to_owned() });
            }
            Err(fs::TryLockError::Error(e)) => return Err(spool_err(&lock_path)(e)),
        }
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(spool_err(dir))? {
            let entry = entry.map_err(spool_err(dir))?;
            let name = entry.file_name();
            if let Some(seq) = name.to_str().and_then(segment_seq) {
                segments.push((seq, entry.path()));
            }
        }
        segments.sort();
        let next_seq = segments.last().map_or(1, |(seq, _)| seq + 1);
        let spool = Spool { dir: dir.to_owned(), _lock: lock, next_seq };
        Ok((spool, segments.into_iter().map(|(_, path)| path).collect()))
    }

    /// The last position sealed, if recorded.
    pub(crate) fn last_position(&self) -> Result<Option<Position>, BucketError> {
        let path = self.dir.join("POSITION");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(spool_err(&path)(e)),
        };
        match text.trim().parse::<u64>().ok().and_then(Position::new) {
            Some(p) => Ok(Some(p)),
            None => Err(BucketError::SpoolCorrupt {
                path,
                offset: 0,
                reason: format!("expected a position, found {:?}", text.trim()),
            }),
        }
    }

    /// Records `position` as the last sealed, atomically and durably.
    pub(crate) fn set_last_position(&self, position: Position) -> Result<(), BucketError> {
        let path = self.dir.join("POSITION");
        let tmp = self.dir.join("POSITION.tmp");
        (|| {
            let mut file = File::create(&tmp)?;
            writeln!(file, "{position}")?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        })()
        .map_err(spool_err(&path))
    }

    /// Starts the segment of a new window with its first batch, as one write.
    pub(crate) fn create_segment(
        &mut self,
        window: (Timestamp, Timestamp),
        first_batch: &[u8],
        durability: Durability,
    ) -> Result<Segment, BucketError> {
        let path = self.dir.join(format!("segment-{:020}.spool", self.next_seq));
        let mut bytes = Vec::with_capacity(MAGIC.len() + 2 * HEADER + 16 + first_batch.len());
        bytes.extend_from_slice(MAGIC);
        let mut window_payload = [0u8; 16];
        window_payload[..8].copy_from_slice(&window.0.as_micros().to_le_bytes());
        window_payload[8..].copy_from_slice(&window.1.as_micros().to_le_bytes());
        push_record(&mut bytes, KIND_WINDOW, &window_payload);
        push_record(&mut bytes, KIND_CALLS, first_batch);
        let result = (|| {
            let mut file = OpenOptions::new().create_new(true).write(true).open(&path)?;
            file.write_all(&bytes)?;
            if durability != Durability::Never {
                file.sync_data()?;
                sync_dir(&self.dir)?;
            }
            Ok(file)
        })();
        let file = match result {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(spool_err(&path)(e));
            }
        };
        self.next_seq += 1;
        let len = bytes.len() as u64;
        Ok(Segment { file, path, len, records: 1, unsynced: false, last_sync: Instant::now(), syncing: None })
    }

    /// Reopens a recovered segment for appending, at its (repaired) length.
    pub(crate) fn reopen_segment(&self, path: &Path, usage: SpoolUsage) -> Result<Segment, BucketError> {
        let file = OpenOptions::new().append(true).open(path).map_err(spool_err(path))?;
        Ok(Segment {
            file,
            path: path.to_owned(),
            len: usage.bytes,
            records: usage.records,
            unsynced: false,
            last_sync: Instant::now(),
            syncing: None,
        })
    }
}

fn segment_seq(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".spool")?;
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) { digits.parse().ok() } else { None }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn push_record(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(payload);
    // Batches are bounded far below 4 GiB by the call size limit and batch sizes.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// Encodes a batch of calls' JSON texts as the payload of a calls record.
#[derive(Debug, Default)]
pub(crate) struct BatchPayload {
    bytes: Vec<u8>,
    count: u32,
}

impl BatchPayload {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.bytes.extend_from_slice(&0u32.to_le_bytes());
        self.count = 0;
    }

    /// Adds one call; `write` appends its JSON.
    pub(crate) fn push(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        write(&mut self.bytes);
        let len = self.bytes.len() - at - 4;
        self.bytes[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
        self.count += 1;
        self.bytes[..4].copy_from_slice(&self.count.to_le_bytes());
        len
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// What part of the spool holds: bytes on disk, and records of calls (one per
/// appended batch). See [`crate::BucketWriter::spool_usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolUsage {
    /// Bytes of the segment files.
    pub bytes: u64,
    /// Records of calls in them (one per [`crate::BucketWriter::append`]).
    pub records: u64,
}

impl std::ops::Add for SpoolUsage {
    type Output = SpoolUsage;

    fn add(self, other: SpoolUsage) -> SpoolUsage {
        SpoolUsage { bytes: self.bytes + other.bytes, records: self.records + other.records }
    }
}

/// The segment of the open window, appended to.
#[derive(Debug)]
pub(crate) struct Segment {
    file: File,
    path: PathBuf,
    len: u64,
    /// Records of calls appended.
    records: u64,
    unsynced: bool,
    last_sync: Instant,
    /// An interval's `fsync`, running on a thread of its own.
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Segment {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its bytes and records of calls.
    pub(crate) fn usage(&self) -> SpoolUsage {
        SpoolUsage { bytes: self.len, records: self.records }
    }

    /// Appends one batch. On failure the file is cut back to where it was, so that
    /// nothing of the batch stays.
    pub(crate) fn append_calls(&mut self, batch: &[u8], durability: Durability) -> Result<(), BucketError> {
        self.append(KIND_CALLS, batch)?;
        self.records += 1;
        self.unsynced = true;
        match durability {
            Durability::EveryAppend => self.sync(),
            Durability::Interval(every) if self.last_sync.elapsed() >= every => self.sync_in_background(),
            Durability::Interval(_) | Durability::Never => Ok(()),
        }
    }

    /// Starts an `fsync` on a thread of its own, unless one is still running; an
    /// error of the last one is returned (once it has finished). The appends go on
    /// meanwhile: what was written before the `fsync` started is durable when it
    /// ends.
    fn sync_in_background(&mut self) -> Result<(), BucketError> {
        if let Some(syncing) = &self.syncing {
            if !syncing.is_finished() {
                return Ok(());
            }
            self.finish_background_sync()?;
        }
        let file = self.file.try_clone().map_err(spool_err(&self.path))?;
        let thread = std::thread::Builder::new()
            .name("cdp-spool-sync".into())
            .spawn(move || file.sync_data())
            .map_err(spool_err(&self.path))?;
        self.syncing = Some(thread);
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Waits for the background `fsync`, if any, and returns its error.
    fn finish_background_sync(&mut self) -> Result<(), BucketError> {
        let Some(syncing) = self.syncing.take() else { return Ok(()) };
        match syncing.join() {
            Ok(result) => result.map_err(spool_err(&self.path)),
            Err(_) => Err(BucketError::Spool {
                path: self.path.clone(),
                source: std::io::Error::other("the thread syncing the spool file panicked"),
            }),
        }
    }

    /// Appends the seal and syncs it.
    pub(crate) fn seal(&mut self, position: Position, end: Timestamp) -> Result<(), BucketError> {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&position.get().to_le_bytes());
        payload[8..].copy_from_slice(&end.as_micros().to_le_bytes());
        self.append(KIND_SEAL, &payload)?;
        self.unsynced = true;
        self.sync()
    }

    /// Syncs if the interval has passed since the last sync and there is anything
    /// to sync.
    pub(crate) fn sync_if_due(&mut self, durability: Durability) -> Result<(), BucketError> {
        match durability {
            Durability::Interval(every) if self.unsynced && self.last_sync.elapsed() >= every => {
                self.sync_in_background()
            }
            _ => Ok(()),
        }
    }

    fn sync(&mut self) -> Result<(), BucketError> {
        self.finish_background_sync()?;
        self.file.sync_data().map_err(spool_err(&self.path))?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn append(&mut self, kind: u8, payload: &[u8]) -> Result<(), BucketError> {
        let mut record = Vec::with_capacity(HEADER + payload.len());
        push_record(&mut record, kind, payload);
        if let Err(e) = self.file.write_all(&record) {
            // Take back whatever part of the record reached the file.
            let _ = self.file.set_len(self.len);
            return Err(spool_err(&self.path)(e));
        }
        self.len += record.len() as u64;
        Ok(())
    }
}

/// A record read back.
#[derive(Debug)]
pub(crate) enum Record {
    /// The window of the segment.
    Window { start: Timestamp, end: Timestamp },
    /// A batch of calls' JSON texts.
    Calls(Vec<Vec<u8>>),
    /// The seal.
    Seal { position: Position, end: Timestamp },
}

/// Reads a segment's records in order, and cuts off a torn or damaged tail.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    input: BufReader<File>,
    path: PathBuf,
    /// End of the last whole record.
    offset: u64,
    file_len: u64,
    records: u64,
    sealed: bool,
    done: bool,
    cut_reason: Option<String>,
}

impl SegmentReader {
    pub(crate) fn open(path: &Path) -> Result<SegmentReader, BucketError> {
        let file = File::open(path).map_err(spool_err(path))?;
        let file_len = file.metadata().map_err(spool_err(path))?.len();
        Ok(SegmentReader {
            input: BufReader::with_capacity(1 << 20, file),
            path: path.to_owned(),
            offset: 0,
            file_len,
            records: 0,
            sealed: false,
            done: false,
            cut_reason: None,
        })
    }

    /// The end of the last whole record read.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record; `Ok(None)` at the end, or where the file must be cut
    /// (see [`SegmentReader::repair`]).
    pub(crate) fn next_record(&mut self) -> Result<Option<Record>, BucketError> {
        if self.done {
            return Ok(None);
        }
        match self.read_record() {
            Ok(Some(record)) => Ok(Some(record)),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(Damage::Cut(reason)) => {
                self.done = true;
                self.cut_reason = Some(reason);
                Ok(None)
            }
            Err(Damage::Io(e)) => Err(spool_err(&self.path)(e)),
            Err(Damage::Foreign(reason)) => {
                Err(BucketError::SpoolCorrupt { path: self.path.clone(), offset: 0, reason })
            }
        }
    }

    /// After the last record: cuts the file back to the end of the last whole
    /// record when anything follows it, and says so.
    pub(crate) fn repair(&self) -> Result<Option<SpoolRepair>, BucketError> {
        if self.offset >= self.file_len {
            return Ok(None);
        }
        let file = OpenOptions::new().write(true).open(&self.path).map_err(spool_err(&self.path))?;
        file.set_len(self.offset).map_err(spool_err(&self.path))?;
        file.sync_all().map_err(spool_err(&self.path))?;
        let reason = self.cut_reason.clone().unwrap_or_else(|| "damaged".to_owned());
        Ok(Some(SpoolRepair {
            path: self.path.clone(),
            kept_bytes: self.offset,
            cut_bytes: self.file_len - self.offset,
            reason,
        }))
    }

    fn read_record(&mut self) -> Result<Option<Record>, Damage> {
        if self.offset == 0 {
            let mut magic = [0u8; 8];
            match read_full(&mut self.input, &mut magic)? {
                8 if &magic == MAGIC => self.offset = 8,
                n if n < 8 && MAGIC.starts_with(&magic[..n]) => {
                    return Err(Damage::Cut("the file header is cut short".into()));
                }
                _ => return Err(Damage::Foreign("not a spool file (wrong header)".into())),
            }
        }
        if self.sealed {
            // Nothing may follow a seal.
            return Err(Damage::Cut("bytes after the seal".into()));
        }
        let mut head = [0u8; HEADER];
        match read_full(&mut self.input, &mut head)? {
            0 => return Ok(None),
            HEADER => {}
            _ => return Err(Damage::Cut("a record header is cut short".into())),
        }
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let kind = head[8];
        if len > MAX_RECORD || u64::from(len) > self.file_len.saturating_sub(self.offset + HEADER as u64) {
            return Err(Damage::Cut("a record is cut short".into()));
        }
        let mut payload = vec![0u8; len as usize];
        if read_full(&mut self.input, &mut payload)? != payload.len() {
            return Err(Damage::Cut("a record is cut short".into()));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[kind]);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            return Err(Damage::Cut("a record fails its checksum".into()));
        }
        let first = self.records == 0;
        let record = match (kind, first) {
            (KIND_WINDOW, true) if payload.len() == 16 => {
                let start = micros(&payload[..8]).ok_or(Damage::Cut("bad window start".into()))?;
                let end = micros(&payload[8..]).ok_or(Damage::Cut("bad window end".into()))?;
                Record::Window { start, end }
            }
            (KIND_CALLS, false) => {
                Record::Calls(split_batch(&payload).ok_or(Damage::Cut("bad batch".into()))?)
            }
            (KIND_SEAL, false) if payload.len() == 16 => {
                let position = Position::new(u64::from_le_bytes(payload[..8].try_into().expect("8 bytes")))
                    .ok_or(Damage::Cut("bad seal".into()))?;
                let end = micros(&payload[8..]).ok_or(Damage::Cut("bad seal end".into()))?;
                self.sealed = true;
                Record::Seal { position, end }
            }
            _ => return Err(Damage::Cut(format!("unexpected record of kind {kind}"))),
        };
        self.records += 1;
        self.offset += (HEADER + payload.len()) as u64;
        Ok(Some(record))
    }
}

enum Damage {
    /// The file is ours but damaged from here on: cut it.
    Cut(String),
    /// Reading failed.
    Io(io::Error),
    /// The file is not ours: do not touch it.
    Foreign(String),
}

impl From<io::Error> for Damage {
    fn from(e: io::Error) -> Damage {
        Damage::Io(e)
    }
}

fn micros(bytes: &[u8]) -> Option<Timestamp> {
    Timestamp::from_micros(i64::from_le_bytes(bytes.try_into().ok()?))
}

fn split_batch(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let count = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let mut calls = Vec::with_capacity(count.min(payload.len() / 4));
    let mut at = 4;
    for _ in 0..count {
        let len = u32::from_le_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        calls.push(payload.get(at..at.checked_add(len)?)?.to_vec());
        at += len;
    }
    (at == payload.len()).then_some(calls)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn batch(calls: &[&str]) -> Vec<u8> {
        let mut b = BatchPayload::default();
        b.clear();
        for c in calls {
            b.push(|out| out.extend_from_slice(c.as_bytes()));
        }
        b.as_bytes().to_vec()
    }

    fn read_all(path: &Path) -> (Vec<String>, Option<SpoolRepair>) {
        let mut reader = SegmentReader::open(path).unwrap();
        let mut seen = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            seen.push(match record {
                Record::Window { start, end } => format!("window {start} {end}"),
                Record::Calls(calls) => {
                    let texts: Vec<String> =
                        calls.into_iter().map(|c| String::from_utf8(c).unwrap()).collect();
                    format!("calls {}", texts.join(" "))
                }
                Record::Seal { position, end } => format!("seal {position} {end}"),
            });
        }
        let repair = reader.repair().unwrap();
        (seen, repair)
    }

    #[test]
    fn records_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, segments) = Spool::open(dir.path()).unwrap();
        assert!(segments.is_empty());
        let window = (t("2026-11-22T10:00:00Z"), t("2026-11-22T10:10:00Z"));
        let mut seg = spool.create_segment(window, &batch(&["a", "bb"]), Durability::EveryAppend).unwrap();
        seg.append_calls(&batch(&["ccc"]), Durability::Never).unwrap();
        seg.seal(Position::new(7).unwrap(), t("2026-11-22T10:05:00Z")).unwrap();
        let (seen, repair) = read_all(seg.path());
        assert_eq!(
            seen,
            [
                "window 2026-11-22T10:00:00.000Z 2026-11-22T10:10:00.000Z",
                "calls a bb",
                "calls ccc",
                "seal 7 2026-11-22T10:05:00.000Z"
            ]
        );
        assert_eq!(repair, None);
    }

    #[test]
    fn every_torn_tail_is_cut_back_to_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        let window = (t("2026-11-22T10:00:00Z"), t("2026-11-22T10:10:00Z"));
        let mut seg = spool.create_segment(window, &batch(&["one"]), Durability::Never).unwrap();
        let whole = fs::metadata(seg.path()).unwrap().len();
        seg.append_calls(&batch(&["two", "three"]), Durability::Never).unwrap();
        let full = fs::read(seg.path()).unwrap();
        // Cut the second batch at every byte: the first batch always survives whole.
        for cut in whole as usize + 1..full.len() {
            fs::write(seg.path(), &full[..cut]).unwrap();
            let (seen, repair) = read_all(seg.path());
            assert_eq!(seen.len(), 2, "cut at {cut}: {seen:?}");
            assert_eq!(seen[1], "calls one");
            let repair = repair.expect("a repair");
            assert_eq!((repair.kept_bytes, repair.cut_bytes), (whole, cut as u64 - whole));
            assert_eq!(fs::metadata(seg.path()).unwrap().len(), whole, "the file is cut back");
        }
    }

    #[test]
    fn a_flipped_byte_cuts_from_its_record_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        let window = (t("2026-11-22T10:00:00Z"), t("2026-11-22T10:10:00Z"));
        let mut seg = spool.create_segment(window, &batch(&["one"]), Durability::Never).unwrap();
        let whole = fs::metadata(seg.path()).unwrap().len();
        seg.append_calls(&batch(&["two"]), Durability::Never).unwrap();
        seg.append_calls(&batch(&["three"]), Durability::Never).unwrap();
        let mut bytes = fs::read(seg.path()).unwrap();
        bytes[whole as usize + HEADER + 5] ^= 0x20; // inside "two"
        fs::write(seg.path(), &bytes).unwrap();
        let (seen, repair) = read_all(seg.path());
        assert_eq!(seen.len(), 2);
        let repair = repair.unwrap();
        assert_eq!(repair.kept_bytes, whole);
        assert!(repair.reason.contains("checksum"), "{}", repair.reason);
    }

    #[test]
    fn a_foreign_file_is_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment-00000000000000000001.spool");
        fs::write(&path, b"hello world, not ours").unwrap();
        let mut reader = SegmentReader::open(&path).unwrap();
        assert!(matches!(reader.next_record(), Err(BucketError::SpoolCorrupt { .. })));
        assert_eq!(fs::read(&path).unwrap(), b"hello world, not ours");
    }

    #[test]
    fn a_spool_is_locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path()).unwrap();
        assert!(matches!(Spool::open(dir.path()), Err(BucketError::SpoolLocked { .. })));
        drop(spool);
        assert!(Spool::open(dir.path()).is_ok());
    }

    #[test]
    fn positions_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.last_position().unwrap(), None);
        spool.set_last_position(Position::new(41).unwrap()).unwrap();
        spool.set_last_position(Position::new(42).unwrap()).unwrap();
        assert_eq!(spool.last_position().unwrap(), Position::new(42));
        fs::write(dir.path().join("POSITION"), "x").unwrap();
        assert!(matches!(spool.last_position(), Err(BucketError::SpoolCorrupt { .. })));
    }

    #[test]
    fn segments_are_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path()).unwrap();
        let window = (t("2026-11-22T10:00:00Z"), t("2026-11-22T10:10:00Z"));
        let a = spool.create_segment(window, &batch(&["a"]), Durability::Never).unwrap();
        let b = spool.create_segment(window, &batch(&["b"]), Durability::Never).unwrap();
        fs::write(dir.path().join("segment-x.spool"), b"").unwrap();
        drop(spool);
        let (_, segments) = Spool::open(dir.path()).unwrap();
        assert_eq!(segments, [a.path().to_owned(), b.path().to_owned()]);
    }
}

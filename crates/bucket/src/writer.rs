//! [`BucketWriter`]: sync windows, positions, the spool and create-only publishing.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cdp_calls::{Call, CallType, Timestamp};
use cdp_encode::{Encode, EncodeOptions, FileEncoder, FileFormat, row_bytes_bound};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::encoder_thread::EncoderThread;
use crate::spool::{BatchPayload, Record, Segment, SegmentReader, Spool, SpoolUsage};
use crate::{
    Bucket, BucketError, Clock, Durability, FileReport, Id, ObjectName, Position, Published, SpoolRepair,
    SyncReport, Window,
};

/// The settings of a [`BucketWriter`].
///
/// ```
/// use std::time::Duration;
/// use cdp_bucket::{Durability, Id, WriterConfig};
/// use cdp_encode::FileFormat;
///
/// let config = WriterConfig::new(Id::new("2184")?, Id::new("13699")?, FileFormat::Parquet)
///     .with_spool_dir("/var/lib/cdp/spool")
///     .with_interval(Duration::from_secs(300))
///     .with_durability(Durability::EveryAppend);
/// assert_eq!(config.max_file_bytes, 256 * 1024 * 1024);
/// # Ok::<(), cdp_bucket::InvalidId>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriterConfig {
    /// The integration id, first part of every object name.
    pub integration: Id,
    /// The action id, second part of every object name.
    pub action: Id,
    /// The files' format.
    pub format: FileFormat,
    /// The encoders' options (Parquet compression, row groups, spill directory).
    /// For a local directory bucket, an unset spill directory becomes the bucket's
    /// directory: the files are then written where they are published and get
    /// their names without being copied.
    pub encode: EncodeOptions,
    /// The length of a sync window. Default: 10 minutes. Windows are aligned to
    /// multiples of the interval since the Unix epoch (10:00, 10:10, … UTC).
    /// `Duration::MAX` makes one window that never ends: syncs happen only when
    /// asked ([`BucketWriter::sync_now`]) or when a file is full.
    pub interval: Duration,
    /// A sync happens early when a file of the window would grow past this many
    /// bytes ([`Encode::encoded_bytes`]). Default: 256 MiB.
    pub max_file_bytes: u64,
    /// The spool directory. `None` keeps the open window only in its encoders
    /// (buffers and anonymous temporary files): a crash loses it. That suits
    /// converting a file that is itself the durable copy.
    pub spool_dir: Option<PathBuf>,
    /// When the spool is forced to disk. Default: at most once per second.
    pub durability: Durability,
}

impl WriterConfig {
    /// Settings with the defaults: 10-minute windows, 256 MiB files, no spool.
    pub fn new(integration: Id, action: Id, format: FileFormat) -> WriterConfig {
        WriterConfig {
            integration,
            action,
            format,
            encode: EncodeOptions::default(),
            interval: Duration::from_secs(600),
            max_file_bytes: 256 * 1024 * 1024,
            spool_dir: None,
            durability: Durability::default(),
        }
    }

    /// Sets [`WriterConfig::spool_dir`].
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> WriterConfig {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Sets [`WriterConfig::interval`].
    pub fn with_interval(mut self, interval: Duration) -> WriterConfig {
        self.interval = interval;
        self
    }

    /// Sets [`WriterConfig::max_file_bytes`].
    pub fn with_max_file_bytes(mut self, bytes: u64) -> WriterConfig {
        self.max_file_bytes = bytes;
        self
    }

    /// Sets [`WriterConfig::durability`].
    pub fn with_durability(mut self, durability: Durability) -> WriterConfig {
        self.durability = durability;
        self
    }

    /// Sets [`WriterConfig::encode`].
    pub fn with_encode_options(mut self, options: EncodeOptions) -> WriterConfig {
        self.encode = options;
        self
    }

    fn check(&self) -> Result<i64, BucketError> {
        let micros = i64::try_from(self.interval.as_micros()).unwrap_or(i64::MAX);
        if micros < 1000 {
            return Err(BucketError::InvalidConfig {
                setting: "interval",
                reason: format!("{:?} is shorter than a millisecond", self.interval),
            });
        }
        if self.max_file_bytes == 0 {
            return Err(BucketError::InvalidConfig {
                setting: "max_file_bytes",
                reason: "must not be 0".into(),
            });
        }
        if let Durability::Interval(every) = self.durability
            && every.is_zero()
        {
            return Err(BucketError::InvalidConfig {
                setting: "durability",
                reason: "an fsync interval of 0: use Durability::EveryAppend".into(),
            });
        }
        Ok(micros)
    }
}

/// What [`BucketWriter::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Spool files whose torn or damaged tail was cut off.
    pub repairs: Vec<SpoolRepair>,
    /// Syncs sealed before the restart and published now.
    pub republished: Vec<SyncReport>,
    /// Calls of the open window read back from the spool; they go on into it.
    pub resumed_calls: u64,
    /// The position the next sync will have.
    pub next_position: Option<Position>,
}

/// What an [`BucketWriter::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Appended {
    /// How many calls were spooled.
    pub calls: usize,
    /// The window they went into.
    pub window: Window,
    /// Syncs published on the way: the previous window when it had ended, or an
    /// early sync when a file reached its size limit.
    pub published: Vec<SyncReport>,
}

/// The calls of the window being filled.
struct OpenWindow {
    segment: Option<Segment>,
    /// The window's files, each encoded on a thread of its own.
    files: BTreeMap<CallType, EncoderThread>,
    calls: u64,
}

/// A finished file: in memory for an object store, or in an anonymous temporary
/// file in the directory for a local directory.
enum Encoded {
    Chunks(Vec<Bytes>),
    File(crate::local::Finished),
}

impl Encoded {
    fn bytes(&self) -> u64 {
        match self {
            Encoded::Chunks(chunks) => chunks.iter().map(|c| c.len() as u64).sum(),
            Encoded::File(file) => file.bytes(),
        }
    }
}

/// A sync that has its position and is being published.
struct Sealed {
    position: Position,
    window: Window,
    /// The spool file, deleted once everything is published.
    segment: Option<PathBuf>,
    /// What the spool file holds (nothing without one).
    usage: SpoolUsage,
    /// The encoders of the files not published yet. `None` after an attempt that
    /// failed (or was dropped half-way) when the spool has the calls: they are
    /// encoded again from it, so that an outage holds no memory.
    encoders: Option<BTreeMap<CallType, EncoderThread>>,
    /// Without a spool: a file encoded by an attempt that failed, kept for the next.
    kept: BTreeMap<CallType, (u64, Encoded)>,
    /// An encoder is out of `encoders` being finished (cleared when its file is
    /// published or kept); found set, an attempt was dropped half-way.
    in_flight: bool,
    /// Files already in the bucket.
    done: Vec<FileReport>,
    recovered: bool,
}

impl Sealed {
    fn new(
        position: Position,
        window: Window,
        segment: Option<(PathBuf, SpoolUsage)>,
        encoders: BTreeMap<CallType, EncoderThread>,
        recovered: bool,
    ) -> Sealed {
        let (segment, usage) = segment.map_or((None, SpoolUsage::default()), |(p, u)| (Some(p), u));
        let mut encoders = encoders;
        // The files take no more calls: their threads encode what is queued, free
        // the encoders' buffers and end, so that a sync waiting to be published
        // holds no memory.
        encoders.values_mut().for_each(EncoderThread::close);
        Sealed {
            position,
            window,
            segment,
            usage,
            encoders: Some(encoders),
            kept: BTreeMap::new(),
            in_flight: false,
            done: Vec::new(),
            recovered,
        }
    }
}

/// Writes the calls it accepts into a bucket, one sync per window, never losing,
/// duplicating or overwriting anything.
///
/// - [`BucketWriter::append`] stamps what the calls lack (`receivedAt` and so on,
///   [`Call::fill_missing`]), validates them, appends them to the spool (one record
///   per batch, synced per [`Durability`]) and encodes them into the window's
///   files. It returns once they are in the spool: each file of the open window is
///   encoded on a thread of its own, fed through a bounded queue (an append waits
///   only when that queue is full), so that encoding, a Parquet row group's
///   compression above all, never holds up an append nor runs on an async worker
///   ([`BucketWriter::encoding_backlog`]). A batch with an invalid call is refused
///   whole.
/// - The window `[start, start + interval)` that was open when a call arrived is
///   the one it is published with. When the window has ended (checked by `append`
///   and [`BucketWriter::tick`]), its files are published: one per call type with
///   calls, all with the next [`Position`], each with a create-only put. An empty
///   window publishes nothing and uses no position.
/// - A sync happens early when a file would pass [`WriterConfig::max_file_bytes`].
/// - [`BucketWriter::shutdown`] publishes the open window.
/// - [`BucketWriter::open`] recovers: it cuts torn spool tails, republishes sealed
///   syncs (an object already there with identical bytes counts as published; other
///   bytes are a [`BucketError::PositionConflict`]), resumes the open window, and
///   continues numbering (from the spool's record, or one past the highest
///   position in the bucket for a new spool).
///
/// Publishing errors of the store are retried on the next call; the calls wait in
/// the spool meanwhile, and `append` goes on taking calls. A position conflict stops
/// the writer.
///
/// The methods are `async` because the store is; file I/O on the spool is done
/// inline (one write per `append`, plus an `fsync` per the durability), and
/// encoding a finished file runs on tokio's blocking pool. A future dropped midway
/// loses nothing that the spool holds.
pub struct BucketWriter {
    bucket: Bucket,
    config: WriterConfig,
    interval_micros: i64,
    clock: Arc<dyn Clock>,
    spool: Option<Spool>,
    bounds: Window,
    open: Option<OpenWindow>,
    next_position: Position,
    /// Sealed syncs waiting to be published, oldest first (the one being published
    /// is in `publishing`).
    unpublished: VecDeque<Sealed>,
    /// The sync being published, on a task of its own.
    publishing: Option<InFlight>,
    /// What publishes the sealed syncs.
    publisher: Arc<Publisher>,
    /// Syncs published and not reported yet.
    published: Vec<SyncReport>,
    /// After a failed publish: not before then again (unless asked to wait).
    retry_at: Option<std::time::Instant>,
    /// Published spool files being deleted on the blocking pool.
    deleting: Vec<tokio::task::JoinHandle<()>>,
    stopped: Option<String>,
    batch: BatchPayload,
}

/// A sync being published in the background.
struct InFlight {
    usage: SpoolUsage,
    task: tokio::task::JoinHandle<(Sealed, Result<SyncReport, BucketError>)>,
}

/// Sealed syncs waiting behind the one being published at most; an append or
/// tick that seals another waits for the one in flight first (back-pressure), so
/// that windows sealed faster than the store takes them do not pile up.
const WAITING_SYNCS: usize = 2;

/// A failed publish is tried again after this long (or when asked to wait).
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Drop for BucketWriter {
    fn drop(&mut self) {
        // What it published stays; the rest is in the spool for the next start.
        if let Some(in_flight) = &self.publishing {
            in_flight.task.abort();
        }
    }
}

impl fmt::Debug for BucketWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketWriter")
            .field("bucket", &self.bucket)
            .field("config", &self.config)
            .field("window", &self.bounds)
            .field("open_calls", &self.open.as_ref().map_or(0, |w| w.calls))
            .field("next_position", &self.next_position)
            .field("unpublished", &(self.unpublished.len() + usize::from(self.publishing.is_some())))
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl BucketWriter {
    /// Opens a writer: locks and recovers the spool, republishes what a crash left
    /// sealed, and finds the next position.
    pub async fn open(
        bucket: Bucket,
        config: WriterConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(BucketWriter, Recovery), BucketError> {
        let interval_micros = config.check()?;
        let (spool, segments) = match &config.spool_dir {
            Some(dir) => {
                let (spool, segments) = Spool::open(dir)?;
                (Some(spool), segments)
            }
            None => (None, Vec::new()),
        };
        let now = clock.now();
        let mut writer = BucketWriter {
            bounds: aligned_window(now, interval_micros),
            bucket: bucket.clone(),
            config: config.clone(),
            interval_micros,
            clock,
            spool,
            open: None,
            next_position: Position::FIRST,
            unpublished: VecDeque::new(),
            publishing: None,
            publisher: Arc::new(Publisher { bucket: bucket.clone(), config: config.clone() }),
            published: Vec::new(),
            retry_at: None,
            deleting: Vec::new(),
            stopped: None,
            batch: BatchPayload::default(),
        };
        if let Some(local) = writer.bucket.local_dir() {
            let prefix = format!("{}.{}.", writer.config.integration, writer.config.action);
            crate::local::sweep_temp_files(&local.root, &prefix);
            // Files written where they are published are linked, not copied.
            if writer.config.encode.spill_dir.is_none() {
                writer.config.encode.spill_dir = Some(local.root.clone());
            }
        }
        writer.publisher =
            Arc::new(Publisher { bucket: writer.bucket.clone(), config: writer.config.clone() });
        let mut recovery = Recovery::default();
        let last = match &writer.spool {
            Some(spool) => spool.last_position()?,
            None => None,
        };
        let mut highest = last;
        // Read every segment: sealed ones go to be published, the last unsealed one
        // is the open window. An unsealed window before the last one cannot come
        // from a crash (a window is sealed before the next one starts), but a
        // copied spool could hold one: it is sealed after the others are numbered.
        let mut unsealed = Vec::new();
        let count = segments.len();
        for (i, path) in segments.into_iter().enumerate() {
            let replay = writer.replay(&path)?;
            let usage = replay.usage();
            recovery.repairs.extend(replay.repair);
            if replay.calls == 0 {
                std::fs::remove_file(&path)
                    .map_err(|source| BucketError::Spool { path: path.clone(), source })?;
                continue;
            }
            let window = Window { start: replay.window.0, end: replay.window.1 };
            let spool = writer.spool.as_ref().expect("segments come from a spool");
            match replay.seal {
                Some((position, end)) => {
                    highest = highest.max(Some(position));
                    let window = Window { start: window.start, end };
                    let files = on_threads(replay.files, writer.config.format)?;
                    writer.unpublished.push_back(Sealed::new(
                        position,
                        window,
                        Some((path, usage)),
                        files,
                        true,
                    ));
                }
                None if i + 1 == count => {
                    let segment = spool.reopen_segment(&path, usage)?;
                    recovery.resumed_calls = replay.calls;
                    writer.bounds = window;
                    let files = on_threads(replay.files, writer.config.format)?;
                    writer.open = Some(OpenWindow { segment: Some(segment), files, calls: replay.calls });
                }
                None => unsealed.push((spool.reopen_segment(&path, usage)?, window, replay.files)),
            }
        }
        // A crash between sealing a segment and recording its position leaves the
        // record behind: bring it up to date before the sealed segment is
        // published and deleted, or its position would be handed out again.
        if let (Some(spool), Some(h)) = (&writer.spool, highest)
            && Some(h) > last
        {
            spool.set_last_position(h)?;
        }
        writer.next_position = match highest {
            Some(p) => p.next(),
            None => {
                highest_listed(&writer.bucket, &writer.config).await?.map_or(Position::FIRST, Position::next)
            }
        };
        for (mut segment, window, files) in unsealed {
            let position = writer.next_position;
            segment.seal(position, window.end)?;
            writer.spool.as_ref().expect("segments come from a spool").set_last_position(position)?;
            writer.next_position = position.next();
            let segment = Some((segment.path().to_owned(), segment.usage()));
            let files = on_threads(files, writer.config.format)?;
            writer.unpublished.push_back(Sealed::new(position, window, segment, files, true));
        }
        recovery.republished = writer.publish_unpublished().await?;
        recovery.next_position = Some(writer.next_position);
        for repair in &recovery.repairs {
            tracing::warn!(
                path = %repair.path.display(),
                kept_bytes = repair.kept_bytes,
                cut_bytes = repair.cut_bytes,
                reason = %repair.reason,
                "cut a torn spool tail"
            );
        }
        tracing::info!(
            bucket = %writer.bucket,
            next_position = %writer.next_position,
            resumed_calls = recovery.resumed_calls,
            republished = recovery.republished.len(),
            "bucket writer open"
        );
        Ok((writer, recovery))
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// The settings.
    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    /// The window calls go into now (it may have ended, if nothing ticked since).
    pub fn window(&self) -> Window {
        self.bounds
    }

    /// The calls in the open window.
    pub fn open_calls(&self) -> u64 {
        self.open.as_ref().map_or(0, |w| w.calls)
    }

    /// The position the next sync will have.
    pub fn next_position(&self) -> Position {
        self.next_position
    }

    /// Calls of the open window appended but not encoded into its files yet (each
    /// file is encoded on a thread of its own; [`BucketWriter::append`] does not
    /// wait for it). At most a bounded queue's worth per file.
    pub fn encoding_backlog(&self) -> u64 {
        self.open.as_ref().map_or(0, |w| w.files.values().map(EncoderThread::backlog).sum())
    }

    /// What the spool holds now: the open window's segment and the sealed ones
    /// not published yet (nothing without a spool).
    pub fn spool_usage(&self) -> SpoolUsage {
        let open =
            self.open.as_ref().and_then(|w| w.segment.as_ref()).map(Segment::usage).unwrap_or_default();
        let in_flight = self.publishing.as_ref().map(|p| p.usage).unwrap_or_default();
        self.unpublished.iter().fold(open + in_flight, |sum, sealed| sum + sealed.usage)
    }

    /// Accepts a batch of calls: fills in what they lack, validates them, and
    /// appends them to the spool and the open window's files. Returns once they are
    /// in the spool (and synced, per the durability). A batch with an invalid call
    /// is refused whole; so is one the spool cannot take.
    ///
    /// The fields are validated ([`Call::validate_fields`]), not the 32 KiB limit:
    /// that applies where calls enter, as they were sent (the collector, the NDJSON
    /// reader, row mapping), and the fields stamped on the way may take a call a
    /// little past it.
    pub async fn append(&mut self, mut calls: Vec<Call>) -> Result<Appended, BucketError> {
        self.check_running()?;
        let now = self.clock.now();
        let mut published = self.roll(now).await?;
        for (index, call) in calls.iter_mut().enumerate() {
            call.fill_missing(now);
            call.validate_fields().map_err(|source| BucketError::InvalidCall { index, source })?;
        }
        let count = calls.len();
        // What each call adds to its file at most, from the file's own encoding: a
        // batch that would take a file past `max_file_bytes` is split there, and the
        // window synced early before the rest.
        let (format, options) = (self.config.format, &self.config.encode);
        let mut bounds: Vec<u64> = calls.iter().map(|c| row_bytes_bound(format, options, c)).collect();
        while !calls.is_empty() {
            let fit = self.fitting(&calls, &bounds).await?;
            if fit == 0 {
                published.extend(self.sync_early(now).await?);
                continue;
            }
            let rest = calls.split_off(fit);
            let rest_bounds = bounds.split_off(fit);
            self.append_part(calls, &bounds).await?;
            (calls, bounds) = (rest, rest_bounds);
        }
        published.append(&mut self.published);
        Ok(Appended { calls: count, window: self.bounds, published })
    }

    /// How many of `calls` (from the first) fit the open window's files without
    /// taking one past `max_file_bytes`, given what each adds at most (`bounds`).
    /// Zero when the first call needs a new file; a call larger than the limit fits
    /// an empty file alone. Decided from the files' sizes as their threads last
    /// reported them plus the bounds of the calls queued since (an upper bound);
    /// only near the limit does it wait for a file's thread to report its size with
    /// every queued call encoded.
    async fn fitting(&mut self, calls: &[Call], bounds: &[u64]) -> Result<usize, BucketError> {
        let (max, format) = (self.config.max_file_bytes, self.config.format);
        let open =
            self.open.get_or_insert_with(|| OpenWindow { segment: None, files: BTreeMap::new(), calls: 0 });
        match fitting_in(open, format, &self.config.encode, max, calls, bounds).await {
            Ok(fit) => Ok(fit),
            Err(e) => Err(self.stop(e)),
        }
    }

    /// Appends calls that fit the open window's files: to the spool (one record),
    /// then to the files' queues. `bounds` is what each adds to its file at most.
    async fn append_part(&mut self, calls: Vec<Call>, bounds: &[u64]) -> Result<(), BucketError> {
        if self.spool.is_some() {
            self.batch.clear();
            for call in &calls {
                self.batch.push(|out| call.write_json(out));
            }
        }
        self.spool_batch()?;
        // The calls are in the spool: encoding them happens on the files' threads,
        // and this returns once they are queued there.
        let count = calls.len();
        let mut by_type: BTreeMap<CallType, (Vec<Call>, u64)> = BTreeMap::new();
        for (call, bound) in calls.into_iter().zip(bounds) {
            let (calls, sum) = by_type.entry(call.call_type()).or_default();
            calls.push(call);
            *sum += bound;
        }
        let open = self.open.as_mut().expect("the spool record or `fitting` opened the window");
        open.calls += count as u64;
        for (call_type, (calls, bound)) in by_type {
            let file = open.files.get_mut(&call_type).expect("`fitting` made a file for every type");
            if let Err(source) = file.write(calls, bound).await {
                // The calls are in the spool but not in the files: only a restart,
                // which reads the spool again, makes them whole.
                return Err(self.stop(BucketError::Encode { call_type, source }));
            }
        }
        Ok(())
    }

    /// Does what is due: syncs the spool when the durability interval has passed,
    /// publishes the window if it has ended, and retries syncs the store refused
    /// before; waits for the publishing and returns what was published (also by
    /// appends since the last call). Call it regularly (every second or so), or
    /// [`BucketWriter::tick_in_background`].
    pub async fn tick(&mut self) -> Result<Vec<SyncReport>, BucketError> {
        let mut published = self.tick_in_background().await?;
        published.extend(self.publish_unpublished().await?);
        Ok(published)
    }

    /// [`BucketWriter::tick`] without waiting for the publishing it starts: a
    /// sealed window is published on a task of its own while appends go on (the
    /// collector does this, so that no request waits for a publish), and its
    /// report comes from a later `tick`, `append` or `sync_now`. A store error
    /// of a publish in the background is returned by the next call after it.
    pub async fn tick_in_background(&mut self) -> Result<Vec<SyncReport>, BucketError> {
        self.check_running()?;
        if let Some(segment) = self.open.as_mut().and_then(|w| w.segment.as_mut()) {
            segment.sync_if_due(self.config.durability)?;
        }
        self.collect_publishing(false).await?;
        let now = self.clock.now();
        let mut published = self.roll(now).await?;
        self.start_publishing();
        published.append(&mut self.published);
        Ok(published)
    }

    /// Publishes the open window now, before its end (an early sync; the window
    /// goes on from now), and everything still unpublished. Store errors are
    /// returned; the calls stay in the spool and publishing is retried later.
    pub async fn sync_now(&mut self) -> Result<Vec<SyncReport>, BucketError> {
        self.check_running()?;
        let now = self.clock.now();
        let mut published = self.roll(now).await?;
        self.seal_early(now)?;
        published.extend(self.publish_unpublished().await?);
        Ok(published)
    }

    /// Takes back every call of the open window: its spool segment is deleted and
    /// its files dropped, so they are never published; the window goes on, empty.
    /// Returns how many calls were discarded. Sealed syncs are not touched.
    ///
    /// For callers whose appends form one unit that must be published whole or not
    /// at all, such as a reverse-ETL run: such a caller syncs with
    /// [`BucketWriter::sync_now`] when the unit is complete, and discards when it
    /// fails (or, after [`BucketWriter::open`], the calls a crashed unit left).
    pub fn discard_open(&mut self) -> Result<u64, BucketError> {
        let Some(open) = self.open.take() else { return Ok(0) };
        if let Some(segment) = open.segment {
            let path = segment.path().to_owned();
            drop(segment);
            std::fs::remove_file(&path).map_err(|source| BucketError::Spool { path, source })?;
        }
        if open.calls > 0 {
            tracing::info!(bucket = %self.bucket, calls = open.calls, "discarded the open window's calls");
        }
        Ok(open.calls)
    }

    /// Publishes the open window now, whatever the time, and everything still
    /// unpublished; then releases the spool. On an error the calls stay in the
    /// spool for the next start.
    pub async fn shutdown(mut self) -> Result<Vec<SyncReport>, BucketError> {
        let published = self.sync_now().await?;
        tracing::info!(bucket = %self.bucket, next_position = %self.next_position, "bucket writer shut down");
        Ok(published)
    }

    fn check_running(&self) -> Result<(), BucketError> {
        match &self.stopped {
            Some(reason) => Err(BucketError::Stopped { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    fn stop(&mut self, error: BucketError) -> BucketError {
        tracing::error!(bucket = %self.bucket, error = %error, "bucket writer stopped");
        self.stopped = Some(error.to_string());
        error
    }

    /// Appends the batch in `self.batch` to the open window's segment.
    fn spool_batch(&mut self) -> Result<(), BucketError> {
        let Some(spool) = self.spool.as_mut() else { return Ok(()) };
        let durability = self.config.durability;
        match self.open.as_mut().and_then(|w| w.segment.as_mut()) {
            Some(segment) => segment.append_calls(self.batch.as_bytes(), durability),
            None => {
                let window = (self.bounds.start, self.bounds.end);
                let segment = spool.create_segment(window, self.batch.as_bytes(), durability)?;
                let open = self.open.get_or_insert_with(|| OpenWindow {
                    segment: None,
                    files: BTreeMap::new(),
                    calls: 0,
                });
                open.segment = Some(segment);
                Ok(())
            }
        }
    }

    /// When the window has ended at `now`: seals and publishes it, and opens the
    /// window `now` falls in.
    async fn roll(&mut self, now: Timestamp) -> Result<Vec<SyncReport>, BucketError> {
        if now < self.bounds.end {
            return Ok(Vec::new());
        }
        let end = self.bounds.end;
        self.seal_open(end)?;
        self.bounds = aligned_window(now, self.interval_micros);
        self.publish_unpublished_or_defer().await
    }

    /// Seals and publishes the open window now, before its end.
    async fn sync_early(&mut self, now: Timestamp) -> Result<Vec<SyncReport>, BucketError> {
        self.seal_early(now)?;
        self.publish_unpublished_or_defer().await
    }

    /// Seals the open window at `now`, before its end; the window goes on from
    /// `now`.
    fn seal_early(&mut self, now: Timestamp) -> Result<(), BucketError> {
        let end = now.max(self.bounds.start);
        if self.open.as_ref().is_some_and(|w| w.calls > 0) {
            self.seal_open(end)?;
            self.bounds.start = end;
        }
        Ok(())
    }

    /// Moves publishing on without waiting for it (but for back-pressure): takes
    /// the outcome of the sync published in the background if it has finished, and
    /// starts the next. A store error is logged and left for a retry; anything else
    /// is returned.
    async fn publish_unpublished_or_defer(&mut self) -> Result<Vec<SyncReport>, BucketError> {
        let deferred = |writer: &BucketWriter, e: BucketError| {
            if e.is_transient() {
                tracing::warn!(bucket = %writer.bucket, error = %e, "publishing failed; will retry");
                Ok(())
            } else {
                Err(e)
            }
        };
        if let Err(e) = self.collect_publishing(false).await {
            deferred(self, e)?;
        }
        self.start_publishing();
        while self.unpublished.len() >= WAITING_SYNCS && self.publishing.is_some() {
            if let Err(e) = self.collect_publishing(true).await {
                deferred(self, e)?;
                break;
            }
            self.start_publishing();
        }
        Ok(std::mem::take(&mut self.published))
    }

    /// Gives the open window, if it has calls, the next position, and queues it for
    /// publishing.
    fn seal_open(&mut self, end: Timestamp) -> Result<(), BucketError> {
        let Some(open) = self.open.as_mut() else { return Ok(()) };
        if open.calls == 0 {
            return Ok(());
        }
        let position = self.next_position;
        if let Some(segment) = open.segment.as_mut() {
            segment.seal(position, end)?;
        }
        if let Some(spool) = &self.spool {
            spool.set_last_position(position)?;
        }
        let open = self.open.take().expect("checked above");
        self.next_position = position.next();
        let window = Window { start: self.bounds.start, end };
        let segment = open.segment.map(|s| (s.path().to_owned(), s.usage()));
        self.unpublished.push_back(Sealed::new(position, window, segment, open.files, false));
        Ok(())
    }

    /// Publishes the sealed syncs in order and waits for them all (a failed one is
    /// tried again at once).
    async fn publish_unpublished(&mut self) -> Result<Vec<SyncReport>, BucketError> {
        self.retry_at = None;
        loop {
            self.collect_publishing(true).await?;
            if self.unpublished.is_empty() {
                for deleting in std::mem::take(&mut self.deleting) {
                    let _ = deleting.await;
                }
                return Ok(std::mem::take(&mut self.published));
            }
            self.start_publishing();
        }
    }

    /// Starts publishing the oldest sealed sync on a task of its own, unless one is
    /// being published, the writer stopped, or a failed publish waits for its retry.
    fn start_publishing(&mut self) {
        if self.publishing.is_some() || self.stopped.is_some() {
            return;
        }
        if self.retry_at.is_some_and(|at| std::time::Instant::now() < at) {
            return;
        }
        let Some(mut sealed) = self.unpublished.pop_front() else { return };
        let publisher = self.publisher.clone();
        let usage = sealed.usage;
        let task = tokio::spawn(async move {
            let result = publisher.publish(&mut sealed).await;
            (sealed, result)
        });
        self.publishing = Some(InFlight { usage, task });
    }

    /// Takes the outcome of the sync being published if it has finished, or (with
    /// `wait`) once it has: a published sync's spool file is deleted and its report
    /// kept for the caller; a failed one goes back to the front of the queue, to be
    /// tried again (with a spool its calls are encoded again from it then, and
    /// nothing is held in memory meanwhile). A position conflict stops the writer.
    async fn collect_publishing(&mut self, wait: bool) -> Result<(), BucketError> {
        let Some(in_flight) = &self.publishing else { return Ok(()) };
        if !wait && !in_flight.task.is_finished() {
            return Ok(());
        }
        let in_flight = self.publishing.take().expect("checked above");
        let (mut sealed, result) = match in_flight.task.await {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(
                    self.stop(BucketError::Stopped { reason: format!("publishing was cancelled: {e}") })
                );
            }
        };
        match result {
            Ok(report) => {
                self.retry_at = None;
                if let Some(path) = sealed.segment.take() {
                    // Deleting a spool file of gigabytes takes the file system a
                    // while: off the writer's path. A crash before it is done leaves
                    // the file, whose sync the next start finds published already.
                    self.deleting.retain(|d| !d.is_finished());
                    self.deleting.push(tokio::task::spawn_blocking(move || {
                        if let Err(e) = std::fs::remove_file(&path) {
                            tracing::error!(path = %path.display(), error = %e, "a published spool file could not be deleted");
                        }
                    }));
                }
                self.published.push(report);
                Ok(())
            }
            Err(e @ BucketError::PositionConflict { .. }) => {
                self.unpublished.push_front(sealed);
                Err(self.stop(e))
            }
            Err(e) => {
                if sealed.segment.is_some() {
                    sealed.encoders = None;
                    sealed.kept.clear();
                }
                self.unpublished.push_front(sealed);
                self.retry_at = Some(std::time::Instant::now() + RETRY_AFTER);
                Err(e)
            }
        }
    }

    fn replay(&self, path: &std::path::Path) -> Result<Replay, BucketError> {
        replay_segment(path, self.config.format, &self.config.encode)
    }
}

/// Puts an object only if absent; an object already there with the same bytes
/// counts as published.
async fn put_create(
    bucket: &Bucket,
    path: &object_store::path::Path,
    chunks: &[Bytes],
    position: Position,
) -> Result<Published, BucketError> {
    let store = bucket.store();
    let store_err = |operation, source| BucketError::Store { operation, object: path.to_string(), source };
    let payload: PutPayload = chunks.iter().cloned().collect();
    match store.put_opts(path, payload, PutOptions::from(PutMode::Create)).await {
        Ok(_) => Ok(Published::Created),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = store.get(path).await.map_err(|e| store_err("get", e))?;
            if same_bytes(existing.into_stream(), chunks).await.map_err(|e| store_err("get", e))? {
                Ok(Published::AlreadyPresent)
            } else {
                Err(BucketError::PositionConflict { object: path.to_string(), position })
            }
        }
        Err(e) => Err(store_err("put", e)),
    }
}

/// Whether a stream of bytes is the concatenation of `chunks`, read as it comes.
async fn same_bytes(
    mut stream: impl futures::Stream<Item = object_store::Result<Bytes>> + Unpin,
    chunks: &[Bytes],
) -> object_store::Result<bool> {
    use futures::StreamExt;
    let mut ours = chunks.iter().flat_map(|c| c.chunks(64 * 1024));
    let mut pending: &[u8] = &[];
    while let Some(theirs) = stream.next().await {
        let theirs = theirs?;
        let mut theirs: &[u8] = &theirs;
        while !theirs.is_empty() {
            if pending.is_empty() {
                match ours.next() {
                    Some(next) => pending = next,
                    None => return Ok(false),
                }
            }
            let n = pending.len().min(theirs.len());
            if pending[..n] != theirs[..n] {
                return Ok(false);
            }
            pending = &pending[n..];
            theirs = &theirs[n..];
        }
    }
    Ok(pending.is_empty() && ours.all(<[u8]>::is_empty))
}

/// One past the highest position of this (integration, action) in the bucket.
async fn highest_listed(bucket: &Bucket, config: &WriterConfig) -> Result<Option<Position>, BucketError> {
    let prefix = bucket.prefix();
    let listing = bucket
        .store()
        .list_with_delimiter(Some(prefix))
        .await
        .map_err(|source| BucketError::Store { operation: "list", object: format!("{}/", prefix), source })?;
    Ok(listing
        .objects
        .iter()
        .filter_map(|meta| meta.location.filename().and_then(ObjectName::parse))
        .filter(|name| name.integration == config.integration && name.action == config.action)
        .map(|name| name.position)
        .max())
}

/// The window of length `interval` that `now` falls in, aligned to the epoch.
fn aligned_window(now: Timestamp, interval_micros: i64) -> Window {
    let start_micros = now.as_micros().div_euclid(interval_micros) * interval_micros;
    let start = Timestamp::from_micros(start_micros).unwrap_or(Timestamp::MIN);
    let end = start.checked_add_micros(interval_micros).unwrap_or(Timestamp::MAX);
    Window { start, end }
}

/// A segment read back into encoders.
struct Replay {
    window: (Timestamp, Timestamp),
    seal: Option<(Position, Timestamp)>,
    files: BTreeMap<CallType, FileEncoder>,
    calls: u64,
    len: u64,
    /// Records of calls.
    records: u64,
    repair: Option<SpoolRepair>,
}

impl Replay {
    fn usage(&self) -> SpoolUsage {
        SpoolUsage { bytes: self.len, records: self.records }
    }
}

/// Reads a segment, cutting a torn tail, and encodes its calls in spool order,
/// which gives the same bytes as when they were first appended.
fn replay_segment(
    path: &std::path::Path,
    format: FileFormat,
    options: &EncodeOptions,
) -> Result<Replay, BucketError> {
    let mut reader = SegmentReader::open(path)?;
    let mut replay = Replay {
        window: (Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH),
        seal: None,
        files: BTreeMap::new(),
        calls: 0,
        len: 0,
        records: 0,
        repair: None,
    };
    while let Some(record) = reader.next_record()? {
        match record {
            Record::Window { start, end } => replay.window = (start, end),
            Record::Calls(calls) => {
                replay.records += 1;
                for json in calls {
                    let corrupt = |reason: String| BucketError::SpoolCorrupt {
                        path: path.to_owned(),
                        offset: reader.offset(),
                        reason,
                    };
                    let text = std::str::from_utf8(&json).map_err(|e| corrupt(e.to_string()))?;
                    let call = Call::parse_json(text).map_err(|e| corrupt(e.to_string()))?;
                    let call_type = call.call_type();
                    replay
                        .files
                        .entry(call_type)
                        .or_insert_with(|| FileEncoder::new(format, call_type, options.clone()))
                        .write(&call)
                        .map_err(|source| BucketError::Encode { call_type, source })?;
                    replay.calls += 1;
                }
            }
            Record::Seal { position, end } => replay.seal = Some((position, end)),
        }
    }
    replay.repair = reader.repair()?;
    replay.len = reader.offset();
    Ok(replay)
}

/// Moves each encoder to a thread of its own.
fn on_threads(
    files: BTreeMap<CallType, FileEncoder>,
    format: FileFormat,
) -> Result<BTreeMap<CallType, EncoderThread>, BucketError> {
    files
        .into_iter()
        .map(|(call_type, encoder)| {
            EncoderThread::spawn(encoder, format)
                .map(|thread| (call_type, thread))
                .map_err(|source| BucketError::Encode { call_type, source: thread_error(format, source) })
        })
        .collect()
}

/// Publishes sealed syncs: what a background publish needs of the writer.
struct Publisher {
    bucket: Bucket,
    config: WriterConfig,
}

impl Publisher {
    /// For a local directory, finishes the files of `types` still being encoded all
    /// at once, each on a thread of the blocking pool, and keeps them (in `kept`) to
    /// be linked in order: finishing one (its last Parquet row group encoded and
    /// compressed) no longer waits for the one before. The files are finished on
    /// disk, so nothing more is held in memory; an object store's files, finished in
    /// memory, are still finished one at a time.
    async fn finish_local_files_at_once(
        &self,
        sealed: &mut Sealed,
        types: &[CallType],
    ) -> Result<(), BucketError> {
        let Some(local) = self.bucket.local_dir() else {
            return Ok(());
        };
        let Some(encoders) = sealed.encoders.as_mut() else {
            return Ok(());
        };
        let finishing: Vec<CallType> = types
            .iter()
            .copied()
            .filter(|t| !sealed.kept.contains_key(t) && encoders.contains_key(t))
            .collect();
        if finishing.len() < 2 {
            return Ok(());
        }
        sealed.in_flight = true;
        let tasks: Vec<_> = finishing
            .into_iter()
            .map(|call_type| {
                let thread = encoders.remove(&call_type).expect("listed above");
                let local = Some((local.root.clone(), local.fsync));
                // Spawned now (not when awaited), so that they run side by side.
                (call_type, tokio::task::spawn_blocking(move || finish_file(thread, call_type, local)))
            })
            .collect();
        // Every file is waited for, so that those finished are kept even when
        // another failed; the first failure is returned (and, as when one file
        // fails, the sync starts over from its spool next time, if it has one).
        let mut failed = None;
        for (call_type, task) in tasks {
            match joined(task).await {
                Ok(done) => {
                    sealed.kept.insert(call_type, done);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => {
                sealed.in_flight = false;
                Ok(())
            }
        }
    }

    /// Publishes a sealed sync (its spool file is the writer's to delete), one file at a time: each file is encoded
    /// (on the blocking pool) and put before the next is encoded, so that at most one
    /// finished file is in memory (none for a local directory, whose files are
    /// linked from disk).
    async fn publish(&self, sealed: &mut Sealed) -> Result<SyncReport, BucketError> {
        let format = self.config.format;
        let encode_options = self.config.encode.clone();
        if sealed.in_flight && sealed.segment.is_some() {
            // An attempt was dropped while finishing a file: start over from the spool.
            sealed.encoders = None;
            sealed.kept.clear();
        }
        sealed.in_flight = false;
        if sealed.encoders.is_none() {
            let mut encoders = match &sealed.segment {
                Some(path) => on_threads(replay_segment(path, format, &encode_options)?.files, format)?,
                None => BTreeMap::new(),
            };
            encoders.values_mut().for_each(EncoderThread::close);
            sealed.encoders = Some(encoders);
        }
        let (position, window) = (sealed.position, sealed.window);
        let mut types: Vec<CallType> = sealed
            .encoders
            .iter()
            .flat_map(|e| e.keys().copied())
            .chain(sealed.kept.keys().copied())
            .collect();
        types.sort();
        types.dedup();
        types.retain(|t| !sealed.done.iter().any(|f| f.call_type == *t));
        self.finish_local_files_at_once(sealed, &types).await?;
        for call_type in types {
            let name = ObjectName {
                integration: self.config.integration.clone(),
                action: self.config.action.clone(),
                position,
                call_type,
                format,
            };
            let path = self.bucket.object_path(&name);
            let local = self.bucket.local_dir().cloned();
            let (rows, encoded) = match sealed.kept.remove(&call_type) {
                Some(kept) => kept,
                None => {
                    let thread =
                        sealed.encoders.as_mut().and_then(|e| e.remove(&call_type)).expect("listed above");
                    sealed.in_flight = true;
                    // On the blocking pool: wait for the file's thread to encode every
                    // call, then finish the file.
                    let local = local.as_ref().map(|l| (l.root.clone(), l.fsync));
                    blocking(move || finish_file(thread, call_type, local)).await?
                }
            };
            let bytes = encoded.bytes();
            let (encoded, result) = match (encoded, &local) {
                (Encoded::Chunks(chunks), _) => {
                    let result = put_create(&self.bucket, &path, chunks.as_slice(), position).await;
                    (Encoded::Chunks(chunks), result)
                }
                (Encoded::File(file), Some(local)) => {
                    let target = local.root.join(path.as_ref());
                    let (object, fsync) = (path.to_string(), local.fsync);
                    blocking(move || {
                        let result = crate::local::link_create(&file, &target, position, &object, fsync);
                        Ok((Encoded::File(file), result))
                    })
                    .await?
                }
                (Encoded::File(_), None) => unreachable!("temporary files are only made for local buckets"),
            };
            sealed.in_flight = false;
            match result {
                Ok(published) => sealed.done.push(FileReport {
                    call_type,
                    rows,
                    bytes,
                    object: path.to_string(),
                    published,
                }),
                Err(e) => {
                    // With a spool the file is encoded again next time; without one,
                    // the encoded file (in memory, or its temporary file) is kept.
                    if sealed.segment.is_none() {
                        sealed.kept.insert(call_type, (rows, encoded));
                    }
                    return Err(e);
                }
            }
        }
        sealed.done.sort_by_key(|f| f.call_type);
        let files = std::mem::take(&mut sealed.done);
        let report = SyncReport { position, window, files, recovered: sealed.recovered };
        tracing::info!(
            bucket = %self.bucket,
            position = %report.position,
            window_start = %report.window.start,
            window_end = %report.window.end,
            rows = report.rows(),
            bytes = report.bytes(),
            files = ?report.files.iter().map(|f| (&f.object, f.rows, f.bytes)).collect::<Vec<_>>(),
            recovered = report.recovered,
            "published sync"
        );
        Ok(report)
    }
}

/// [`BucketWriter::fitting`] on the open window's files; every error is the files'
/// (a thread that cannot start, or stopped).
async fn fitting_in(
    open: &mut OpenWindow,
    format: FileFormat,
    options: &EncodeOptions,
    max: u64,
    calls: &[Call],
    bounds: &[u64],
) -> Result<usize, BucketError> {
    // Per type: the file's size so far at most, whether it is exact (settled), and
    // whether the file has rows.
    let mut sizes: BTreeMap<CallType, (u64, bool, bool)> = BTreeMap::new();
    for (i, call) in calls.iter().enumerate() {
        let call_type = call.call_type();
        let file = match open.files.entry(call_type) {
            std::collections::btree_map::Entry::Occupied(file) => file.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let thread =
                    EncoderThread::spawn(FileEncoder::new(format, call_type, options.clone()), format)
                        .map_err(|source| BucketError::Encode {
                            call_type,
                            source: thread_error(format, source),
                        })?;
                slot.insert(thread)
            }
        };
        let (size, settled, has_rows) =
            sizes.entry(call_type).or_insert_with(|| (file.expected_bytes(), false, file.calls_sent() > 0));
        if *size + bounds[i] > max && !*settled {
            // Exact for the calls queued before this batch; this batch's calls
            // before this one are added back.
            let earlier: u64 = calls[..i]
                .iter()
                .zip(bounds)
                .filter(|(c, _)| c.call_type() == call_type)
                .map(|(_, b)| b)
                .sum();
            let exact =
                file.settled_bytes().await.map_err(|source| BucketError::Encode { call_type, source })?;
            *size = exact + earlier;
            *settled = true;
        }
        if *size + bounds[i] > max {
            // A call larger than the limit on its own goes alone into a new file.
            return Ok(if i == 0 && !*has_rows { 1 } else { i });
        }
        *size += bounds[i];
        *has_rows = true;
    }
    Ok(calls.len())
}

/// A thread that could not be started, as an encoding error of its file.
fn thread_error(format: FileFormat, source: std::io::Error) -> cdp_encode::EncodeError {
    cdp_encode::EncodeError::Write {
        format,
        source: format!("cannot start an encoder thread: {source}").into(),
    }
}

/// Runs blocking work (encoding, file I/O) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BucketError> + Send + 'static,
) -> Result<T, BucketError> {
    joined(tokio::task::spawn_blocking(work)).await
}

/// What blocking work spawned earlier gave; its panic goes on here.
async fn joined<T>(task: tokio::task::JoinHandle<Result<T, BucketError>>) -> Result<T, BucketError> {
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a blocking task was cancelled: {e}"),
    }
}

/// Waits for a file's thread to encode every call, then finishes the file: into a
/// temporary file in the local directory `local` (with its fsync setting), or in
/// memory for an object store. Blocking: run on the blocking pool.
fn finish_file(
    thread: EncoderThread,
    call_type: CallType,
    local: Option<(std::path::PathBuf, bool)>,
) -> Result<(u64, Encoded), BucketError> {
    let encoder = thread.into_encoder().map_err(|source| BucketError::Encode { call_type, source })?;
    let rows = encoder.rows();
    let encoded = match local {
        Some((dir, fsync)) => Encoded::File(crate::local::finish(&dir, call_type, encoder, fsync)?),
        None => Encoded::Chunks(
            encoder.finish_to_chunks().map_err(|source| BucketError::Encode { call_type, source })?,
        ),
    };
    Ok((rows, encoded))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn stream(parts: &[&[u8]]) -> impl futures::Stream<Item = object_store::Result<Bytes>> + Unpin {
        futures::stream::iter(parts.iter().map(|p| Ok(Bytes::copy_from_slice(p))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn bytes_compare_across_any_chunk_boundaries() {
        let ours = [Bytes::from_static(b"abc"), Bytes::from_static(b""), Bytes::from_static(b"defgh")];
        for theirs in
            [&[&b"abcdefgh"[..]][..], &[b"a", b"bcd", b"efgh"], &[b"abcdefg", b"h"], &[b"", b"abcdefgh", b""]]
        {
            assert!(same_bytes(stream(theirs), &ours).await.unwrap(), "{theirs:?}");
        }
        for theirs in [&[&b"abcdefg"[..]][..], &[b"abcdefghi"], &[b"abcXefgh"], &[], &[b"abc", b"defgX"]] {
            assert!(!same_bytes(stream(theirs), &ours).await.unwrap(), "{theirs:?}");
        }
        assert!(same_bytes(stream(&[]), &[]).await.unwrap());
    }
}

//! Encoded rows on their way into a file, sorted by `received_at` in bounded memory.
//!
//! Each format encodes a call into its row bytes as soon as it is written (an NDJSON
//! line, a CSV record, or a compact binary row for Parquet), so the call itself is
//! not kept. Rows are appended to a buffer with a small index entry each.
//!
//! Calls nearly always arrive in `received_at` order. While they do, the buffer is
//! written through, a megabyte at a time, to the *stream*: an anonymous temporary
//! file that starts with the file's header, so that when the last row is in it, it
//! is the finished file, and memory holds no more than the buffer. Out-of-order rows
//! are gathered until [`EncodeOptions::row_group_rows`] rows or
//! [`EncodeOptions::sort_buffer_bytes`] bytes (row bytes and index entries counted),
//! sorted, and spilled as a *run*; the stream and the runs are merged when the file
//! is written. A file of less than a megabyte never touches the disk. Ties keep
//! their input order (the stream holds the earliest rows, then come the runs in the
//! order they were spilled, then the buffer): a stable sort.
//!
//! Memory does not grow with the number of rows: besides the buffer, a merge reads
//! at most [`MERGE_FAN_IN`] runs at once, each through 72 KiB of read buffers,
//! and a run waiting on disk holds no buffer. When [`MERGE_FAN_IN`] runs of the same size class have been spilled one
//! after the other, they are merged into one run that takes their place (runs next
//! to each other, so ties keep their order), and before the final merge the last
//! runs are merged the same way until at most [`MERGE_FAN_IN`] files remain.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use bytes::Bytes;

use crate::{ChunkWriter, EncodeError, EncodeOptions, FileFormat};

/// Size of one chunk of row bytes.
const CHUNK_BYTES: usize = 4 << 20;
/// A new chunk is started when the current one has less room than this.
const CHUNK_SLACK: usize = 64 << 10;
/// Rows in order are written through to the stream once this many bytes are buffered.
const STREAM_BYTES: usize = 1 << 20;
/// The most runs (the stream counted) read at once by a merge.
pub(crate) const MERGE_FAN_IN: usize = 64;
/// Read buffer of a run's row bytes during a merge.
const RUN_DATA_READ_BYTES: usize = 64 << 10;
/// Read buffer of a run's index during a merge.
const RUN_INDEX_READ_BYTES: usize = 8 << 10;
/// What an index entry of a buffered row takes, counted against the sort buffer.
const INDEX_ENTRY_BYTES: usize = std::mem::size_of::<RowRef>();

/// Where one row's bytes are.
#[derive(Debug, Clone, Copy)]
struct RowRef {
    key: i64,
    chunk: u32,
    start: u32,
    len: u32,
}

/// Sorted rows on disk: the row bytes one after the other in `data` (after `skip`
/// bytes of header), and a record of key (i64 LE) and length (u32 LE) per row in
/// `index`.
#[derive(Debug)]
struct Run {
    data: BufWriter<File>,
    index: BufWriter<File>,
    skip: u64,
    last_key: i64,
    /// How many merges made this run: runs of one level are merged into one of
    /// the next.
    level: u32,
}

impl Run {
    fn create(options: &EncodeOptions, header: &[u8]) -> Result<Run, EncodeError> {
        let mut data = BufWriter::with_capacity(256 << 10, temp_file(options)?);
        let index = BufWriter::with_capacity(64 << 10, temp_file(options)?);
        data.write_all(header).map_err(spill_err)?;
        Ok(Run { data, index, skip: header.len() as u64, last_key: i64::MIN, level: 0 })
    }

    /// Records a row whose bytes were written to `data`.
    fn push(&mut self, key: i64, len: u32) -> io::Result<()> {
        self.index.write_all(&key.to_le_bytes())?;
        self.index.write_all(&len.to_le_bytes())?;
        self.last_key = key;
        Ok(())
    }

    /// The run complete: its files flushed and its write buffers freed (a run
    /// waits for the merge holding no memory).
    fn sealed(self) -> Result<Run, EncodeError> {
        let unbuffered = |out: BufWriter<File>| -> Result<BufWriter<File>, EncodeError> {
            let file = out.into_inner().map_err(|e| spill_err(e.into_error()))?;
            Ok(BufWriter::with_capacity(0, file))
        };
        Ok(Run { data: unbuffered(self.data)?, index: unbuffered(self.index)?, ..self })
    }

    /// The run with write buffers again, after [`Run::sealed`].
    fn buffered(self) -> Result<Run, EncodeError> {
        if self.data.capacity() > 0 {
            return Ok(self);
        }
        let rebuffered = |out: BufWriter<File>, capacity: usize| -> Result<BufWriter<File>, EncodeError> {
            let file = out.into_inner().map_err(|e| spill_err(e.into_error()))?;
            Ok(BufWriter::with_capacity(capacity, file))
        };
        Ok(Run { data: rebuffered(self.data, 256 << 10)?, index: rebuffered(self.index, 64 << 10)?, ..self })
    }

    /// The data file, complete and positioned at its start.
    fn into_data(self) -> Result<File, EncodeError> {
        rewind(self.data)
    }

    fn into_reader(self) -> Result<RunReader, EncodeError> {
        let Run { data, index, skip, .. } = self;
        let mut data = data.into_inner().map_err(|e| spill_err(e.into_error()))?;
        let mut index = index.into_inner().map_err(|e| spill_err(e.into_error()))?;
        data.seek(SeekFrom::Start(skip)).map_err(spill_err)?;
        index.seek(SeekFrom::Start(0)).map_err(spill_err)?;
        Ok(RunReader {
            data: BufReader::with_capacity(RUN_DATA_READ_BYTES, data),
            index: BufReader::with_capacity(RUN_INDEX_READ_BYTES, index),
            row: Vec::new(),
        })
    }
}

fn spill_err(source: io::Error) -> EncodeError {
    EncodeError::Spill { source }
}

/// An anonymous temporary file in [`EncodeOptions::spill_dir`].
pub(crate) fn temp_file(options: &EncodeOptions) -> Result<File, EncodeError> {
    temp_file_in(options.spill_dir.as_deref()).map_err(spill_err)
}

/// An anonymous temporary file in `dir`, or the system temporary directory.
pub(crate) fn temp_file_in(dir: Option<&std::path::Path>) -> io::Result<File> {
    match dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    }
}

/// The file under a buffered writer, flushed and positioned at its start.
pub(crate) fn rewind(out: BufWriter<File>) -> Result<File, EncodeError> {
    let mut file = out.into_inner().map_err(|e| spill_err(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(spill_err)?;
    Ok(file)
}

/// Reads a whole file (from its current position) into chunks.
pub(crate) fn read_chunks(mut file: File) -> Result<Vec<Bytes>, EncodeError> {
    let mut chunks = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        let n = (&mut file).take(CHUNK_BYTES as u64).read_to_end(&mut chunk).map_err(spill_err)?;
        if n == 0 {
            return Ok(chunks);
        }
        chunks.push(chunk.into());
    }
}

/// Encoded rows on their way into a file.
#[derive(Debug)]
pub(crate) struct SortedRows {
    /// What the file starts with (the CSV header).
    header: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    index: Vec<RowRef>,
    buffered_bytes: usize,
    /// Whether `index` is already in key order.
    in_order: bool,
    /// Whether sorting moved rows, so that `index` is no longer in chunk order.
    reordered: bool,
    /// The earliest rows, in order, starting with the header.
    stream: Option<Run>,
    /// Sorted runs of later rows.
    runs: Vec<Run>,
    rows: u64,
    /// Bytes of every row pushed so far, buffered or written.
    total_bytes: u64,
    /// The buffer size at which rows in order go to the stream.
    stream_bytes: usize,
    /// The most runs read at once by a merge ([`MERGE_FAN_IN`]; smaller in tests).
    fan_in: usize,
    /// A write to a temporary file failed: the rows are no longer whole.
    failed: bool,
    options: EncodeOptions,
}

impl SortedRows {
    pub(crate) fn new(options: EncodeOptions, header: Vec<u8>) -> SortedRows {
        SortedRows {
            header,
            chunks: Vec::new(),
            index: Vec::new(),
            buffered_bytes: 0,
            in_order: true,
            reordered: false,
            stream: None,
            runs: Vec::new(),
            rows: 0,
            total_bytes: 0,
            stream_bytes: STREAM_BYTES,
            fan_in: MERGE_FAN_IN,
            failed: false,
            options,
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of every row pushed so far, buffered or written.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The header's bytes.
    pub(crate) fn header_bytes(&self) -> u64 {
        self.header.len() as u64
    }

    /// Fails once a write to a temporary file has failed.
    fn check(&self) -> Result<(), EncodeError> {
        if self.failed {
            let broken = "an earlier write to a temporary file failed; the file cannot be finished";
            return Err(spill_err(io::Error::other(broken)));
        }
        Ok(())
    }

    /// Appends one row with sort key `key`; `encode` writes its bytes.
    pub(crate) fn push(&mut self, key: i64, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(), EncodeError> {
        self.check()?;
        let needs_chunk = self.chunks.last().is_none_or(|c| c.capacity() - c.len() < CHUNK_SLACK);
        if needs_chunk {
            self.chunks.push(Vec::with_capacity(CHUNK_BYTES));
        }
        let chunk_no = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_no];
        let start = chunk.len();
        encode(chunk);
        let len = chunk.len() - start;
        if let Some(last) = self.index.last() {
            self.in_order &= last.key <= key;
        }
        let narrow = |n: usize| u32::try_from(n).map_err(|_| EncodeError::RowTooLarge { bytes: n });
        self.index.push(RowRef { key, chunk: narrow(chunk_no)?, start: narrow(start)?, len: narrow(len)? });
        self.buffered_bytes += len + INDEX_ENTRY_BYTES;
        self.total_bytes += len as u64;
        self.rows += 1;
        let written = if self.index.len() >= self.options.row_group_rows
            || self.buffered_bytes >= self.options.sort_buffer_bytes
        {
            self.spill()
        } else if self.buffered_bytes >= self.stream_bytes && self.in_order && self.stream_takes_buffer() {
            self.write_buffer_to_stream()
        } else {
            Ok(())
        };
        self.failed = written.is_err();
        written
    }

    fn row(&self, r: &RowRef) -> &[u8] {
        let start = r.start as usize;
        &self.chunks[r.chunk as usize][start..start + r.len as usize]
    }

    fn sort(&mut self) {
        if !self.in_order {
            self.index.sort_by_key(|r| r.key);
            self.in_order = true;
            self.reordered = true;
        }
    }

    /// Whether the (sorted) buffer may go on the end of the stream: no run was
    /// spilled yet (the stream must hold only rows older than every run's) and the
    /// buffer starts at or after the stream's last key.
    fn stream_takes_buffer(&self) -> bool {
        let first = self.index.first().map_or(i64::MAX, |r| r.key);
        self.runs.is_empty() && self.stream.as_ref().is_none_or(|s| first >= s.last_key)
    }

    /// Empties the buffer, keeping one chunk's memory for the next rows.
    fn clear_buffer(&mut self) {
        self.chunks.truncate(1);
        if let Some(chunk) = self.chunks.first_mut() {
            chunk.clear();
        }
        self.index.clear();
        self.buffered_bytes = 0;
        self.in_order = true;
        self.reordered = false;
    }

    /// Writes the sorted buffer to `run`.
    fn write_buffer(&self, run: &mut Run) -> Result<(), EncodeError> {
        debug_assert!(self.in_order);
        let mut write = || -> io::Result<()> {
            if self.reordered {
                for r in &self.index {
                    run.data.write_all(self.row(r))?;
                }
            } else {
                // Rows never reordered lie in the chunks in their order: write them whole.
                for chunk in &self.chunks {
                    run.data.write_all(chunk)?;
                }
            }
            self.index.iter().try_for_each(|r| run.push(r.key, r.len))
        };
        write().map_err(spill_err)
    }

    fn write_buffer_to_stream(&mut self) -> Result<(), EncodeError> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream.buffered()?,
            None => Run::create(&self.options, &self.header)?,
        };
        self.write_buffer(&mut stream)?;
        self.stream = Some(stream);
        self.clear_buffer();
        Ok(())
    }

    /// Sorts the buffered rows and writes them to the stream, or else as a run.
    fn spill(&mut self) -> Result<(), EncodeError> {
        self.sort();
        if self.stream_takes_buffer() {
            return self.write_buffer_to_stream();
        }
        let mut run = Run::create(&self.options, &[])?;
        self.write_buffer(&mut run)?;
        self.runs.push(run.sealed()?);
        self.clear_buffer();
        self.merge_spilled_runs()
    }

    /// Writes the buffered rows to the stream or as a run, as finishing does
    /// first, and frees the buffer and the stream's write buffers: the rows then
    /// hold no memory until the file is finished.
    pub(crate) fn release_buffers(&mut self) -> Result<(), EncodeError> {
        self.check()?;
        if self.stream.is_none() && self.runs.is_empty() && self.buffered_bytes < self.stream_bytes {
            // A small file stays in memory (it never touches the disk), in no more
            // memory than its rows take.
            self.chunks.iter_mut().for_each(Vec::shrink_to_fit);
            self.index.shrink_to_fit();
            return Ok(());
        }
        let released = if self.index.is_empty() { Ok(()) } else { self.spill() };
        self.failed = released.is_err();
        released?;
        self.chunks = Vec::new();
        self.index = Vec::new();
        if let Some(stream) = self.stream.take() {
            self.stream = Some(stream.sealed()?);
        }
        Ok(())
    }

    /// Merges the last [`MERGE_FAN_IN`] runs into one while they are all of the
    /// last run's level: the runs on disk stay few, and each row is rewritten once
    /// per level, so the merges cost a logarithmic number of passes.
    fn merge_spilled_runs(&mut self) -> Result<(), EncodeError> {
        let fan_in = self.fan_in;
        while self.runs.len() >= fan_in {
            let tail = &self.runs[self.runs.len() - fan_in..];
            let level = tail[fan_in - 1].level;
            if tail.iter().any(|run| run.level != level) {
                break;
            }
            self.merge_last_runs(fan_in)?;
        }
        Ok(())
    }

    /// Merges the last `count` runs into one run in their place, a level above the
    /// highest of them.
    fn merge_last_runs(&mut self, count: usize) -> Result<(), EncodeError> {
        let tail = self.runs.split_off(self.runs.len() - count);
        let level = tail.iter().map(|run| run.level).max().unwrap_or(0) + 1;
        let mut merged = Run::create(&self.options, &[])?;
        merged.level = level;
        let mut readers = Vec::with_capacity(tail.len());
        for run in tail {
            readers.push(run.into_reader()?);
        }
        merge(readers, |key, row| {
            merged.data.write_all(row).map_err(spill_err)?;
            // Rows are under 4 GiB: `push` checked them.
            merged.push(key, row.len() as u32).map_err(spill_err)
        })?;
        self.runs.push(merged.sealed()?);
        Ok(())
    }

    /// Puts the buffer on the end of the stream if the stream then is the whole
    /// file; true if it is.
    fn complete_stream(&mut self) -> Result<bool, EncodeError> {
        if self.stream.is_none() {
            return Ok(false);
        }
        self.sort();
        if !self.stream_takes_buffer() {
            return Ok(false);
        }
        if !self.index.is_empty() {
            self.write_buffer_to_stream()?;
        }
        Ok(true)
    }

    /// Writes the header and every row, in key order, into `out`.
    pub(crate) fn write_to<W: Write>(mut self, format: FileFormat, mut out: W) -> Result<W, EncodeError> {
        self.check()?;
        let fail = |e: io::Error| EncodeError::write(format, e);
        if self.complete_stream()? {
            let mut data = self.stream.take().expect("completed above").into_data()?;
            io::copy(&mut data, &mut out).map_err(fail)?;
            return Ok(out);
        }
        out.write_all(&self.header).map_err(fail)?;
        if self.stream.is_none() && self.runs.is_empty() && self.in_order && !self.reordered {
            for chunk in &self.chunks {
                out.write_all(chunk).map_err(fail)?;
            }
        } else {
            self.drain(|row| out.write_all(row).map_err(fail))?;
        }
        Ok(out)
    }

    /// The file in an anonymous temporary file in [`EncodeOptions::spill_dir`],
    /// positioned at its start: the stream itself when it holds every row.
    pub(crate) fn finish_to_file(mut self, format: FileFormat) -> Result<File, EncodeError> {
        self.check()?;
        if self.complete_stream()? {
            return self.stream.take().expect("completed above").into_data();
        }
        let file = temp_file(&self.options)?;
        rewind(self.write_to(format, BufWriter::with_capacity(1 << 20, file))?)
    }

    /// The file as chunks; rows held in memory in order are handed over uncopied.
    pub(crate) fn finish_to_chunks(mut self, format: FileFormat) -> Result<Vec<Bytes>, EncodeError> {
        self.check()?;
        if self.stream.is_none() && self.runs.is_empty() && self.in_order && !self.reordered {
            let mut out = ChunkWriter::default();
            out.push_chunk(std::mem::take(&mut self.header).into());
            for chunk in self.chunks {
                out.push_chunk(chunk.into());
            }
            return Ok(out.into_chunks());
        }
        if self.complete_stream()? {
            return read_chunks(self.stream.take().expect("completed above").into_data()?);
        }
        Ok(self.write_to(format, ChunkWriter::default())?.into_chunks())
    }

    /// Hands every row (not the header) to `sink` in key order.
    pub(crate) fn drain(
        mut self,
        mut sink: impl FnMut(&[u8]) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.check()?;
        if self.stream.is_none() && self.runs.is_empty() {
            self.sort();
            return self.index.iter().try_for_each(|r| sink(self.row(r)));
        }
        if !self.index.is_empty() {
            self.spill()?;
        }
        // Free the buffer before the merge: it holds no rows any more.
        self.chunks = Vec::new();
        self.index = Vec::new();
        let (stream, fan_in) = (usize::from(self.stream.is_some()), self.fan_in);
        while stream + self.runs.len() > fan_in {
            let count = (stream + self.runs.len() + 1 - fan_in).min(fan_in);
            self.merge_last_runs(count.max(2))?;
        }
        let mut readers = Vec::with_capacity(self.runs.len() + 1);
        for run in self.stream.into_iter().chain(self.runs) {
            readers.push(run.into_reader()?);
        }
        merge(readers, |_, row| sink(row))
    }
}

/// Merges sorted runs, handing each row and its key to `sink` in key order; ties
/// come out by run, in the order of `readers`.
fn merge(
    mut readers: Vec<RunReader>,
    mut sink: impl FnMut(i64, &[u8]) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, reader) in readers.iter_mut().enumerate() {
        if let Some(key) = reader.next()? {
            heap.push(Reverse((key, i)));
        }
    }
    while let Some(Reverse((key, i))) = heap.pop() {
        sink(key, &readers[i].row)?;
        if let Some(key) = readers[i].next()? {
            heap.push(Reverse((key, i)));
        }
    }
    Ok(())
}

/// Reads a run back, one row at a time.
struct RunReader {
    data: BufReader<File>,
    index: BufReader<File>,
    row: Vec<u8>,
}

impl RunReader {
    /// Reads the next row into `self.row` and returns its key.
    fn next(&mut self) -> Result<Option<i64>, EncodeError> {
        let mut head = [0u8; 12];
        match self.index.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(spill_err(e)),
        }
        let key = i64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        self.row.resize(len, 0);
        self.data.read_exact(&mut self.row).map_err(spill_err)?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rows of `key:n;` text, so that every row's origin shows in the output.
    fn encode(rows: &mut SortedRows, input: &[(i64, u8)]) {
        for (n, (key, len)) in input.iter().enumerate() {
            let text = format!("{key}:{n}{};", "x".repeat(usize::from(*len)));
            rows.push(*key, |out| out.extend_from_slice(text.as_bytes())).unwrap();
        }
    }

    fn expected(header: &str, input: &[(i64, u8)]) -> String {
        let mut sorted: Vec<(usize, &(i64, u8))> = input.iter().enumerate().collect();
        sorted.sort_by_key(|(_, (key, _))| *key); // stable
        let rows: String = sorted
            .iter()
            .map(|(n, (key, len))| format!("{key}:{n}{};", "x".repeat(usize::from(*len))))
            .collect();
        format!("{header}{rows}")
    }

    fn sorted_rows(group: usize, buffer: usize, stream: usize) -> SortedRows {
        let options = EncodeOptions::default().with_row_group_rows(group).with_sort_buffer_bytes(buffer);
        let mut rows = SortedRows::new(options, b"h\n".to_vec());
        rows.stream_bytes = stream;
        rows
    }

    #[test]
    fn many_runs_are_merged_a_few_at_a_time_into_the_same_bytes() {
        // Keys going back in time every 7 rows, with ties across the repeats: every
        // row after the first stretch is out of order, and one row per run gives 223
        // runs. Merged 4 at a time, they are 3 + 1 + 3 + 3 runs of levels 3, 2, 1 and
        // 0 (223 = 3133 in base 4), reduced to 4 (with the stream) before the merge.
        let input: Vec<(i64, u8)> = (0..230).map(|n| (i64::from(n % 7) * 2 - i64::from(n / 50), 3)).collect();
        let mut rows = sorted_rows(1, 1 << 20, 1);
        rows.fan_in = 4;
        encode(&mut rows, &input);
        let levels: Vec<u32> = rows.runs.iter().map(|run| run.level).collect();
        assert_eq!(levels, [3, 3, 3, 2, 1, 1, 1, 0, 0, 0]);
        assert!(rows.runs.iter().any(|run| run.level > 0));
        assert!(
            rows.runs.iter().all(|run| run.data.capacity() == 0 && run.index.capacity() == 0),
            "a run waiting for the merge holds no buffer"
        );
        let bytes = rows.write_to(FileFormat::Csv, Vec::new()).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected("h\n", &input));
    }

    #[test]
    fn rows_and_their_index_entries_count_against_the_sort_buffer() {
        // 100 rows of 8 bytes and their index entries pass 1,000 bytes: spilled.
        let mut rows = sorted_rows(1_000_000, 1_000, 1 << 20);
        let input: Vec<(i64, u8)> = (0..100).map(|k| (100 - k, 2)).collect();
        encode(&mut rows, &input);
        assert!(!rows.runs.is_empty() || rows.stream.is_some(), "the buffer was spilled");
        assert!(rows.buffered_bytes < 1_000);
        let bytes = rows.write_to(FileFormat::Json, Vec::new()).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected("h\n", &input));
    }

    #[test]
    fn rows_in_order_end_up_in_the_stream_alone() {
        let mut rows = sorted_rows(1000, 1 << 20, 10);
        let input: Vec<(i64, u8)> = (0..100).map(|k| (k / 3, 4)).collect();
        encode(&mut rows, &input);
        assert!(rows.stream.is_some() && rows.runs.is_empty());
        assert!(rows.buffered_bytes < 10 + 20, "the buffer is written through");
        let mut file = rows.finish_to_file(FileFormat::Csv).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, expected("h\n", &input));
    }

    #[test]
    fn a_late_row_turns_the_stream_into_the_first_run() {
        let mut rows = sorted_rows(4, 1 << 20, 10);
        let mut input: Vec<(i64, u8)> = (10..40).map(|k| (k, 3)).collect();
        input.extend([(5, 1), (10, 1), (39, 1), (45, 1), (0, 1), (39, 2), (50, 0)]);
        encode(&mut rows, &input);
        assert!(!rows.runs.is_empty());
        let bytes = rows.write_to(FileFormat::Json, Vec::new()).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected("h\n", &input));
    }

    #[test]
    fn after_a_failed_write_the_rows_are_refused() {
        let options = EncodeOptions::default().with_spill_dir("/nonexistent/cdp-spill");
        let mut rows = SortedRows::new(options, Vec::new());
        rows.stream_bytes = 4;
        let first = rows.push(1, |out| out.extend_from_slice(b"12345"));
        assert!(matches!(first, Err(EncodeError::Spill { .. })), "{first:?}");
        // The row that could not be written is not dropped silently: nothing more
        // is taken, and the file cannot be finished.
        assert!(rows.push(2, |out| out.push(b'x')).is_err());
        let err = rows.write_to(FileFormat::Json, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("earlier write"), "{err}");
    }

    proptest! {
        #[test]
        fn every_way_out_gives_the_stably_sorted_rows(
            input in proptest::collection::vec((0i64..20, 0u8..12), 0..120),
            group in 1usize..30,
            buffer in 1usize..400,
            stream in 1usize..200,
            fan_in in 2usize..6,
            way in 0..3,
        ) {
            let mut rows = sorted_rows(group, buffer, stream);
            rows.fan_in = fan_in;
            encode(&mut rows, &input);
            let bytes = match way {
                0 => rows.write_to(FileFormat::Csv, Vec::new()).unwrap(),
                1 => {
                    let mut text = Vec::new();
                    rows.finish_to_file(FileFormat::Csv).unwrap().read_to_end(&mut text).unwrap();
                    text
                }
                _ => rows.finish_to_chunks(FileFormat::Csv).unwrap().concat(),
            };
            prop_assert_eq!(String::from_utf8(bytes).unwrap(), expected("h\n", &input));
        }
    }
}
